/*
 * Target 4: wsm_status_json() and its snprintf contract, with fuzzed buffer
 * sizes (around the document's length, tiny, zero with NULL) on managers
 * with a fuzzed path prefix and limits and some messages waiting in the
 * inbox. It must never write past size (checked by ASan on an exact-size
 * buffer, and by canary bytes without ASan), must NUL-terminate within size
 * whenever size > 0, must always return the whole length, and when the
 * buffer is big enough must hold the whole document, which parses and
 * shows the configured values and the current metrics.
 *
 * Input: [mode: 1][size: 2][policy/limits: 1][broadcasts: 1]
 *        then the path prefix candidate (up to a NUL), then the rest.
 */
#include <jansson.h>

#include "fuzz.h"

#include "../../lib/internal.h"

#define CANARY 64

/*
 * Equal but for the digits of "timestamp", which is the time of each call.
 * full is the whole document; a is a prefix of some call's document.
 */
static bool same_doc(const unsigned char *a, const char *full, size_t n)
{
	const char *ts = strstr(full, "\"timestamp\":"), *p;
	size_t i, lo = (size_t)-1, hi = 0;

	if (ts) {
		/* The document's own, the last one (the prefix cannot hold it). */
		while ((p = strstr(ts + 1, "\"timestamp\":")))
			ts = p;
		lo = (size_t)(ts - full) + 12;
		for (hi = lo; full[hi] >= '0' && full[hi] <= '9'; hi++)
			;
	}
	for (i = 0; i < n; i++) {
		if (i >= lo && i < hi && a[i] >= '0' && a[i] <= '9')
			continue;
		if (a[i] != (unsigned char)full[i])
			return false;
	}
	return true;
}

static void call(wsm_manager_t *m, size_t size, int want, const char *full)
{
	unsigned char *exact = size ? malloc(size) : NULL;
	unsigned char *guarded = malloc(size + CANARY);
	size_t i, nul;
	int rc;

	if ((size && !exact) || !guarded)
		abort();
	/* Exactly size bytes: ASan reports the first byte written past. */
	if (size) {
		memset(exact, 0xa5, size);
		rc = wsm_status_json(m, (char *)exact, size);
		FZ_CHECK(rc == want, "size %zu: returned %d, want %d", size, rc, want);
	}
	memset(guarded, 0xa5, size + CANARY);
	rc = wsm_status_json(m, (char *)guarded, size);
	FZ_CHECK(rc == want, "size %zu: returned %d, want %d", size, rc, want);
	for (i = size; i < size + CANARY; i++)
		FZ_CHECK(guarded[i] == 0xa5, "size %zu: byte %zu written", size, i);
	if (size) {
		nul = strnlen((const char *)guarded, size);
		FZ_CHECK(nul < size, "size %zu: no NUL within the buffer", size);
		/* What it holds is the document, or a prefix of it. */
		FZ_CHECK(same_doc(guarded, full, nul), "size %zu: not the document",
			 size);
		if (size > (size_t)want)
			FZ_CHECK(nul == (size_t)want,
				 "size %zu: holds %zu bytes of %d, it had room", size,
				 nul, want);
		FZ_CHECK(same_doc(exact, full, nul) && exact[nul] == '\0',
			 "two calls differ");
	}
	free(exact);
	free(guarded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	uint8_t mode = fz_u8(&in), sz_hi = fz_u8(&in), sz_lo = fz_u8(&in);
	uint8_t lim = fz_u8(&in), nb = fz_u8(&in);
	wsm_config_t *cfg = wsm_config_new();
	char *prefix = fz_field(&in), *full, id[8];
	bool custom;
	wsm_manager_t *m;
	wsm_metrics_t s;
	json_t *doc;
	int err, n, i;
	size_t want_size;

	FZ_CHECK(cfg, "config");
	custom = wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, prefix) == WSM_OK;
	wsm_config_set_int(cfg, WSM_OPT_SESSION_LIMIT_POLICY, lim & 1);
	wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS, 1 + (lim >> 1) * 3923);
	wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 1 + (lim >> 4));
	wsm_config_set_int(cfg, WSM_OPT_MAX_LIFETIME_MS, (int64_t)10 << (lim & 31));
	m = wsm_manager_new(cfg, &err);
	wsm_config_free(cfg);
	FZ_CHECK(m, "wsm_manager_new: %d", err);
	/* Messages in the inbox raise the held bytes (and their digits). */
	for (i = 0; i < nb % 16; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		wsm_broadcast_progress(m, id, i, in.left ? "x" : NULL, NULL);
	}

	n = wsm_status_json(m, NULL, 0);
	FZ_CHECK(n > 0, "length %d", n);
	FZ_CHECK(wsm_status_json(m, NULL, 1) == WSM_EINVAL, "NULL buffer, size 1");
	full = malloc((size_t)n + 1);
	if (!full)
		abort();
	FZ_CHECK(wsm_status_json(m, full, (size_t)n + 1) == n, "length changed");
	FZ_CHECK(strlen(full) == (size_t)n, "length %zu, returned %d", strlen(full), n);

	doc = json_loads(full, 0, NULL);
	FZ_CHECK(json_is_object(doc), "not JSON: %s", full);
	FZ_CHECK(!strcmp(json_string_value(json_object_get(doc, "status")), "ok"),
		 "status: %s", full);
	FZ_CHECK(!strcmp(json_string_value(json_object_get(
				 json_object_get(doc, "config"), "pathPrefix")),
			 custom ? prefix : "/api/images_mvp/progress/"),
		 "prefix: %s", full);
	memset(&s, 0, sizeof(s));
	s.size = sizeof(s);
	FZ_CHECK(wsm_metrics(m, &s) == WSM_OK, "metrics");
	FZ_CHECK(json_integer_value(json_object_get(
			 json_object_get(json_object_get(doc, "metrics"), "memoryUsage"),
			 "heldBytes")) == (json_int_t)s.held_bytes,
		 "heldBytes: %s, metrics %llu", full, (unsigned long long)s.held_bytes);
	json_decref(doc);

	switch (mode % 4) {
	case 0: /* right around the document's length */
		want_size = (size_t)n + 2 - (size_t)(sz_lo % 5);
		break;
	case 1: /* small */
		want_size = sz_lo % 32;
		break;
	case 2: /* anywhere up to a few kB */
		want_size = ((size_t)sz_hi << 8 | sz_lo) % 4096;
		break;
	default: /* NULL buffer with size 0 */
		FZ_CHECK(wsm_status_json(m, NULL, 0) == n, "NULL, 0");
		want_size = (size_t)n + 1;
		break;
	}
	call(m, want_size, n, full);
	call(m, (size_t)n, n, full);     /* room for all but the NUL */
	call(m, (size_t)n + 1, n, full); /* just enough */
	call(m, 1, n, full);

	free(full);
	free(prefix);
	wsm_manager_destroy(m);
	return 0;
}
