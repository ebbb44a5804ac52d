/*
 * Target 6 (and the wsi-bound half of target 1): upgrade requests with
 * fuzzed URLs through the real server of fuzz_server.c, which keeps one
 * client ("the holder") on the session "fz" with a known replay state: a
 * progress (seq 1) and a complete (seq 2) under an epoch E read back by the
 * holder.
 *
 * Input: [mode: 1] then
 *   mode & 1 == 0: a query string for PREFIX "fz", built from tokens (one per
 *     input byte: "lastSeq=", "epoch=", separators, digits, E and the seq S
 *     of the session, edge values, literal characters). The answer must be
 *     what wsm(7) says ("Admission", "Late join and replay"): 400 for a
 *     query over 2048 bytes, or when lastSeq is present and not a decimal
 *     below 2^64, or it is and epoch is present and not a decimal below
 *     2^32; 101 otherwise. After a 101 the replay must be: the
 *     retained messages above lastSeq with epoch E, a reset then everything
 *     with another epoch, everything without lastSeq.
 *   mode & 1 == 1: any path: bit 1 puts PREFIX in front; the bytes up to
 *     a NUL follow, %-escaped unless unreserved ('/' kept too with bit 2),
 *     so that lws decodes them back and folds dot segments; then '?' and the
 *     rest, escaped the same way but for '=', '&' and ';', which lws must see
 *     as they are. The status must be one libwsm (101, 400, 404) or lws
 *     itself (403 for bad escapes; no answer) gives. Where nothing can
 *     fold (no '/' or '.') and lws keeps the request (no NUL or LF), it
 *     must be exactly what the session id and resume rules say for the id
 *     and query as lws hands them over, but a CR, even an escaped one,
 *     ends lws's request line early, which libwsm refuses (400). A path
 *     over 300 bytes may also get 400 ("the URL is too long").
 * lws may not answer at all a query of 64 arguments or more (its table of
 * header fragments is full): not judged.
 * Every refusal by libwsm counts in refused_bad_request; every 101 opens a
 * connection whose close event is awaited.
 */
#include <jansson.h>

#include "fuzz.h"
#include "fuzz_server.h"

#define PREFIX "/api/images_mvp/progress/"
#define MAX_PATH 3000

static const struct harness_option options[] = {
	{ WSM_OPT_RETENTION_MS, 10 }, /* fuzzed sessions go soon; "fz" is held */
	{ WSM_OPT_PING_INTERVAL_MS, 43200000 },
	{ WSM_OPT_STALE_TIMEOUT_MS, 86400000 },
	{ WSM_OPT_MAX_LIFETIME_MS, 2592000000LL },
	{ WSM_OPT_CLOSE_GRACE_MS, 1000 },
};

static wsc_t *holder;
static uint32_t epoch;
static uint64_t last_seq;

static void on_start(struct fz_server *s);

static struct fz_server server = {
	.opts = options,
	.nopts = sizeof(options) / sizeof(options[0]),
	.on_start = on_start,
	.resident = 1, /* the holder */
};

static json_t *next_json(wsc_t *c, int timeout_ms)
{
	char *text = NULL;
	size_t len = 0;
	json_t *j = NULL;

	if (wsc_recv(c, &text, &len, timeout_ms) == 1)
		j = json_loadb(text, len, 0, NULL);
	free(text);
	return j;
}

static void on_start(struct fz_server *s)
{
	harness_t *h = s->h;
	int status = 0, i;
	json_t *j;

	/* The holder of the old server went with it. */
	wsc_free(holder);
	holder = wsc_connect(harness_port(h), PREFIX "fz", NULL, 5000, &status);
	FZ_CHECK(holder && status == 101, "holder: %d", status);
	FZ_CHECK(!harness_wait_events(h, WSM_EVENT_OPEN, -1, "fz", 1, FZ_WAIT_MS),
		 "holder not registered");
	FZ_CHECK(!wsm_broadcast_progress(harness_mgr(h), "fz", 50, "half", "x"),
		 "progress");
	FZ_CHECK(!wsm_broadcast_complete(harness_mgr(h), "fz", "{\"k\":[1,2]}"),
		 "complete");
	for (i = 0; i < 2; i++) {
		j = next_json(holder, FZ_WAIT_MS);
		FZ_CHECK(j, "the holder got no message %d", i + 1);
		epoch = (uint32_t)json_integer_value(json_object_get(j, "epoch"));
		last_seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
		json_decref(j);
	}
	FZ_CHECK(epoch && last_seq == 2, "epoch %u seq %llu", epoch,
		 (unsigned long long)last_seq);
}

/* --- building URLs ------------------------------------------------------ */
struct buf {
	char s[MAX_PATH + 64];
	size_t n;
};

static void put(struct buf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->n + n < MAX_PATH) {
		memcpy(b->s + b->n, s, n);
		b->n += n;
	}
	b->s[b->n] = '\0';
}

static const char *const tokens[] = {
	"lastSeq=", "epoch=", "&", ";", "=", "0", "1", "2", "3", "9",
	"$E", "$S", "18446744073709551615", "18446744073709551616",
	"4294967295", "4294967296", "99999999999999999999",
	"00000000000000000000000000000000000000000000000000",
	"-", "x", "lastseq=", "LastSeq=", "epoch", "lastSeq", "a=b", "_", ".",
	"~", "lastSeq=1", "epoch=$E", "/", "?", "lastSeq=$S", "lastSeq=0",
};
#define NTOKENS (sizeof(tokens) / sizeof(tokens[0]))

static void put_token(struct buf *b, uint8_t byte)
{
	char num[24];

	if (byte >= 0xc0) { /* a literal unreserved character */
		static const char lit[] = "abcXYZ0123456789-._~!$'()*,:@/?";

		num[0] = lit[byte % (sizeof(lit) - 1)];
		num[1] = '\0';
		put(b, num);
		return;
	}
	const char *t = tokens[byte % NTOKENS];

	for (; *t; t++) {
		if (t[0] == '$' && t[1] == 'E') {
			snprintf(num, sizeof(num), "%u", epoch);
			put(b, num);
			t++;
		} else if (t[0] == '$' && t[1] == 'S') {
			snprintf(num, sizeof(num), "%llu", (unsigned long long)last_seq);
			put(b, num);
			t++;
		} else {
			num[0] = *t;
			num[1] = '\0';
			put(b, num);
		}
	}
}

/* wsm(7): the resume arguments of a query built from tokens. */
struct resume {
	bool refused; /* 400 */
	bool maybe;   /* either answer is defensible (leading zeros) */
	bool has_seq, has_epoch;
	uint64_t seq;
	uint64_t epoch;
};

/* "a decimal number below 2^k": digits only; returns false if not. */
static bool doc_decimal(const char *s, size_t n, uint64_t max, uint64_t *out,
			bool *long_zeros)
{
	char tmp[64];
	size_t z = 0;

	if (n == 0)
		return false;
	while (z < n - 1 && s[z] == '0')
		z++;
	if (n - z > 20 || n - z >= sizeof(tmp))
		return false;
	memcpy(tmp, s + z, n - z);
	tmp[n - z] = '\0';
	if (strspn(s, "0123456789") < n)
		return false;
	if (!fz_ref_decimal(tmp, max, out))
		return false;
	*long_zeros = n > 20; /* the library's cut-off is 20 characters */
	return true;
}

/* The query as lws reads it: '&' and ';' both separate arguments. */
static struct resume judge(const char *q)
{
	struct resume r = { false, false, false, false, 0, 0 };
	const char *p = q, *ls = NULL, *ep = NULL;
	size_t lsn = 0, epn = 0;
	bool z1 = false, z2 = false;

	while (*p) {
		size_t n = strcspn(p, "&;");

		if (!ls && n >= 8 && !strncmp(p, "lastSeq=", 8)) {
			ls = p + 8;
			lsn = n - 8;
		}
		if (!ep && n >= 6 && !strncmp(p, "epoch=", 6)) {
			ep = p + 6;
			epn = n - 6;
		}
		p += n;
		if (*p)
			p++;
	}
	if (!ls)
		return r;
	r.has_seq = true;
	if (!doc_decimal(ls, lsn, UINT64_MAX, &r.seq, &z1)) {
		r.refused = true;
		return r;
	}
	if (ep) {
		r.has_epoch = true;
		if (!doc_decimal(ep, epn, UINT32_MAX, &r.epoch, &z2)) {
			r.refused = true;
			return r;
		}
	}
	r.maybe = z1 || z2;
	return r;
}

/*
 * wsm(7): a query string longer than 2048 bytes is refused with 400. lws
 * measures the decoded arguments plus one byte per separator, and one more
 * after a trailing separator (measured, lws 4.1.6).
 */
static bool query_too_long(const char *q, size_t n)
{
	return n + (n && (q[n - 1] == '&' || q[n - 1] == ';')) > 2048;
}

static size_t separators(const char *url)
{
	const char *q = strchr(url, '?');
	size_t n = 0;

	for (; q && *q; q++)
		n += *q == '&' || *q == ';';
	return n;
}

static void expect_msg(wsc_t *c, const char *type, uint64_t seq, const char *url)
{
	json_t *j = next_json(c, FZ_WAIT_MS);

	FZ_CHECK(j, "%s: no \"%s\" message", url, type);
	FZ_CHECK(!strcmp(json_string_value(json_object_get(j, "type")), type) &&
			 (uint64_t)json_integer_value(json_object_get(j, "seq")) == seq &&
			 (uint32_t)json_integer_value(json_object_get(j, "epoch")) == epoch,
		 "%s: got %s seq %lld, want %s seq %llu", url,
		 json_string_value(json_object_get(j, "type")),
		 (long long)json_integer_value(json_object_get(j, "seq")), type,
		 (unsigned long long)seq);
	json_decref(j);
}

/* The replay a connection admitted with this query must get. */
static void check_replay(wsc_t *c, const struct resume *r, const char *url)
{
	uint64_t after = 0;

	if (r->has_seq) {
		if (r->has_epoch && r->epoch == epoch)
			after = r->seq;
		else
			expect_msg(c, "reset", last_seq, url);
	}
	if (after < 1)
		expect_msg(c, "progress", 1, url);
	if (after < 2)
		expect_msg(c, "complete", 2, url);
}

static bool unreserved(unsigned char ch)
{
	return fz_ref_id_char(ch) || ch == '.' || ch == '~';
}

/* %-escapes every byte but the unreserved ones and those in keep. */
static void put_escaped(struct buf *b, const uint8_t *p, size_t n,
			const char *keep)
{
	char e[4];
	size_t i;

	for (i = 0; i < n; i++) {
		if (unreserved(p[i]) || (p[i] && strchr(keep, p[i])))
			snprintf(e, sizeof(e), "%c", p[i]);
		else
			snprintf(e, sizeof(e), "%%%02X", p[i]);
		put(b, e);
	}
}

/* Bytes up to the first CR: lws ends the URL there, even when it comes
 * from an escape, and drops the rest (the query too). */
static size_t before_eol(const uint8_t *p, size_t n)
{
	const uint8_t *cr = memchr(p, '\r', n);

	return cr ? (size_t)(cr - p) : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	harness_t *h = fz_server_next(&server);
	uint8_t mode = size ? data[0] : 0;
	const uint8_t *rest = size ? data + 1 : data;
	size_t n = size ? size - 1 : 0, i, closes;
	struct buf url = { "", 0 };
	struct resume r = { false, false, false, false, 0, 0 };
	int status = 0, want = 0;
	bool fz_session = false; /* the holder's session, with its replay */
	bool long_url = false;
	wsm_metrics_t m0, m1;
	wsc_t *c;

	if (!(mode & 1)) {
		fz_session = true;
		put(&url, PREFIX "fz?");
		for (i = 0; i < n; i++)
			put_token(&url, rest[i]);
		r = judge(url.s + strlen(PREFIX "fz?"));
		want = r.refused ? 400 : 101;
		if (query_too_long(url.s + strlen(PREFIX "fz?"),
				   strlen(url.s + strlen(PREFIX "fz?"))))
			want = 400;
	} else {
		const uint8_t *nul = memchr(rest, 0, n), *qs = NULL;
		size_t pn = nul ? (size_t)(nul - rest) : n, qn = 0, idn;
		bool plain = true;

		put(&url, mode & 2 ? PREFIX : "/");
		put_escaped(&url, rest, pn, mode & 4 ? "/" : "");
		if (nul) {
			/* Separators and '=' as they are: lws splits and reads
			 * them; an escaped '=' would turn into '_'. */
			put(&url, "?");
			qs = nul + 1;
			qn = n - pn - 1;
			put_escaped(&url, qs, qn, "/=&;");
		}
		/*
		 * A NUL or a LF anywhere, even past a CR, and lws may drop the
		 * request or lose its HTTP version: not judged.
		 */
		if ((qs && (memchr(qs, 0, qn) || memchr(qs, '\n', qn))) ||
		    memchr(rest, 0, pn) || memchr(rest, '\n', pn))
			plain = false;
		idn = before_eol(rest, pn);
		if (idn < pn)
			qs = NULL; /* the query went with the rest of the line */
		else if (qs)
			qn = before_eol(qs, qn);
		/* Without '/' or '.' nothing folds: the id is the bytes. */
		for (i = 0; i < idn; i++)
			if (rest[i] == '/' || rest[i] == '.')
				plain = false;
		if (plain && url.n < MAX_PATH - 1 && (mode & 2)) {
			want = fz_ref_id_ok((const char *)rest, idn, 64) ? 101 : 400;
			fz_session = idn == 2 && !memcmp(rest, "fz", 2);
			if (want == 101 && qs) {
				char *q = strndup((const char *)qs, qn);

				if (!q)
					abort();
				r = judge(q);
				if (r.refused || query_too_long(q, strlen(q)))
					want = 400;
				free(q);
			}
		} else if (plain && url.n < MAX_PATH - 1 && idn &&
			   !(idn >= 3 && !memcmp(rest, "api", 3))) {
			want = 404;
		}
		/*
		 * A CR ends the request line early, so the rest of it is not
		 * "HTTP/1.1": libwsm refuses that request line with 400.
		 */
		if (plain && url.n < MAX_PATH - 1 && memchr(rest, '\r', n)) {
			want = 400;
			fz_session = false;
		}
		/* "the URL is too long": 400, at some length libwsm picks. */
		if (want && idn + (mode & 2 ? strlen(PREFIX) : 1) > 300)
			long_url = true;
	}

	m0 = harness_metrics(h);
	closes = fz_server_closes(&server, -1);
	c = wsc_connect(harness_port(h), url.s, NULL, 5000, &status);
	m1 = harness_metrics(h);
	if (long_url && status == 400)
		want = 400;
	/* lws has room for some 80 header fragments; past that, no answer. */
	if (status == 0 && separators(url.s) >= 64)
		want = 0;
	if (want == 101 && r.maybe)
		FZ_CHECK(status == 101 || status == 400, "%s: status %d", url.s, status);
	else if (want)
		FZ_CHECK(status == want, "%s: status %d, wsm(7) says %d", url.s,
			 status, want);
	else
		FZ_CHECK(status == 101 || status == 400 || status == 404 ||
				 status == 403 || status == 0,
			 "%s: status %d", url.s, status);
	if (status == 400 || status == 404)
		FZ_CHECK(m1.refused_bad_request == m0.refused_bad_request + 1,
			 "%s: %d not counted as a bad request", url.s, status);
	if (!c)
		return 0;
	if (want == 101 && !r.maybe && fz_session)
		check_replay(c, &r, url.s);
	wsc_send_close(c, 1000);
	wsc_wait_close(c, 2000);
	wsc_free(c);
	fz_server_wait_close(&server, closes + 1);
	return 0;
}
