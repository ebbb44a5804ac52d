/*
 * Target 1: session ids and resume values, the pure parsers of what arrives
 * in the URL. wsm__check_session_id() with any bytes (NULs included) and any
 * maximum length, and wsm__parse_decimal() with any text and any maximum,
 * each compared with the reference rules in fuzz.h. The parts of admission
 * that need a wsi (the prefix match on the decoded path, the query
 * arguments) are driven through a real server by fuzz_upgrade.
 *
 * Input: [max selector: 1][decimal max selector: 1][bytes...]
 */
#include "fuzz.h"

#include "../../lib/internal.h"

static int64_t pick_max_len(uint8_t sel, const uint8_t *data, size_t size)
{
	switch (sel >> 6) {
	case 0: /* the option's whole range, and its edges */
		return sel & 0x3f ? (int64_t)(sel & 0x3f) * 2 : WSM_SESSION_ID_LIMIT;
	case 1:
		return (int64_t)(sel & 0x3f) - 2; /* -2..61: zero and below too */
	case 2:
		return (int64_t)size - (int64_t)(sel & 0x0f); /* around the length */
	default:
		return size >= 10 ? (int64_t)(((uint64_t)data[2] << 56) |
					      ((uint64_t)data[3] << 48) |
					      ((uint64_t)data[4] << 40) |
					      ((uint64_t)data[5] << 8) | data[6])
				  : INT64_MAX;
	}
}

static uint64_t pick_decimal_max(uint8_t sel, const char *s)
{
	uint64_t v;

	switch (sel & 7) {
	case 0:
	case 1:
		return UINT64_MAX; /* lastSeq */
	case 2:
	case 3:
		return UINT32_MAX; /* epoch */
	case 4:
		return sel >> 3; /* small maxima: 0..31 */
	case 5:
		/* the value itself, one less and one more, when it parses */
		if (fz_ref_decimal(s, UINT64_MAX, &v))
			return v + (uint64_t)((sel >> 3) % 3) - 1;
		return 0;
	case 6:
		return (uint64_t)1 << (sel >> 3 & 63);
	default:
		return ((uint64_t)1 << (sel >> 3 & 63)) - 1;
	}
}

static void check_id(const uint8_t *id, size_t len, int64_t max_len)
{
	/* An exact-size copy: the check must not read past len. */
	char *copy = calloc(1, len ? len : 1);
	int rc;
	bool want;

	if (!copy)
		abort();
	if (len)
		memcpy(copy, id, len);
	rc = wsm__check_session_id(copy, len, max_len);
	want = fz_ref_id_ok(copy, len, max_len);
	FZ_CHECK(rc == WSM_OK || rc == WSM_ESESSIONID, "rc %d", rc);
	FZ_CHECK((rc == WSM_OK) == want,
		 "wsm__check_session_id(len %zu, max %lld) = %d, reference says %s",
		 len, (long long)max_len, rc, want ? "valid" : "invalid");
	free(copy);
}

static void check_decimal(const char *s, uint64_t max)
{
	uint64_t got = 0xdeadbeefULL, want = 0;
	int rc = wsm__parse_decimal(s, max, &got);
	bool ok = fz_ref_decimal(s, max, &want);

	FZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	FZ_CHECK((rc == 0) == ok,
		 "wsm__parse_decimal(\"%.40s\", max %llu) = %d (value %llu), "
		 "reference says %s",
		 s, (unsigned long long)max, rc, (unsigned long long)got,
		 ok ? "valid" : "invalid");
	if (ok)
		FZ_CHECK(got == want && got <= max, "value %llu, want %llu",
			 (unsigned long long)got, (unsigned long long)want);
	else
		FZ_CHECK(got == 0xdeadbeefULL, "*out written on failure");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest = size > 2 ? data + 2 : data + size;
	size_t n = size > 2 ? size - 2 : 0, i;
	char *text;

	if (size < 1)
		return 0;
	check_id(rest, n, pick_max_len(data[0], data, size));
	/* The same bytes under the option's default and its bounds. */
	check_id(rest, n, 64);
	check_id(rest, n, 1);
	check_id(rest, n, WSM_SESSION_ID_LIMIT);

	/* As text: every NUL-separated piece is a candidate resume value. */
	text = malloc(n + 1);
	if (!text)
		abort();
	memcpy(text, rest, n);
	text[n] = '\0';
	for (i = 0; i <= n; i += strlen(text + i) + 1) {
		check_decimal(text + i, pick_decimal_max(size > 1 ? data[1] : 0,
							 text + i));
		check_decimal(text + i, UINT64_MAX);
		check_decimal(text + i, UINT32_MAX);
	}
	free(text);
	return 0;
}
