/*
 * Target 2: every argument check of the broadcasts, on managers with no lws
 * context (created once per process, with a large inbox, and recreated every
 * RECREATE_EVERY inputs). Each call is compared with the rules of wsm(7):
 * the exact error code a rejected call must return, no byte held after a
 * rejection, and for an accepted call the rendered message itself, stamped
 * with a fuzzed seq and epoch and parsed back, must hold exactly the fields
 * given; progress and error, which libwsm writes without jansson, must be
 * byte for byte what jansson makes of the same object. Every FLUSH_EVERY inputs the held bytes must equal the baseline plus
 * the messages waiting in the inbox, and the baseline once they are dropped.
 * Also: wsm__utf8_feed() over random chunk splits agrees with one call over
 * the whole text, prefix by prefix, and with the reference decoder.
 *
 * Input: [op: 1][flags: 1][progress: 8 bytes, a double][seq: 8][epoch: 4]
 *        then NUL-separated fields: session id, text (message, error or
 *        metadata), stage.
 */
#include <jansson.h>
#include <math.h>

#include "fuzz.h"

#include "../../lib/internal.h"

#define FLUSH_EVERY 256
#define RECREATE_EVERY 8192

struct mgr {
	wsm_manager_t *m;
	uint64_t baseline;
	int64_t id_max, text_max, meta_max;
};

static struct mgr mgrs[2];
static unsigned long inputs;

static wsm_metrics_t metrics_of(wsm_manager_t *m)
{
	wsm_metrics_t s;

	memset(&s, 0, sizeof(s));
	s.size = sizeof(s);
	FZ_CHECK(wsm_metrics(m, &s) == WSM_OK, "metrics");
	return s;
}

static uint64_t held(wsm_manager_t *m)
{
	return metrics_of(m).held_bytes;
}

static uint64_t broadcasts(wsm_manager_t *m)
{
	return metrics_of(m).broadcasts;
}

static void create(struct mgr *g, bool tight)
{
	wsm_config_t *cfg = wsm_config_new();
	int err = 1;

	FZ_CHECK(cfg, "config");
	FZ_CHECK(!wsm_config_set_int(cfg, WSM_OPT_INBOX_CAPACITY, 16777216), "inbox");
	g->id_max = 64;
	g->text_max = 1024;
	g->meta_max = 16384;
	if (tight) {
		/* Small limits, so that the edges are within reach. */
		g->id_max = 8;
		g->text_max = 16;
		g->meta_max = 40;
		FZ_CHECK(!wsm_config_set_int(cfg, WSM_OPT_SESSION_ID_MAX_LEN, g->id_max), "id");
		FZ_CHECK(!wsm_config_set_int(cfg, WSM_OPT_MAX_TEXT_LEN, g->text_max), "text");
		FZ_CHECK(!wsm_config_set_int(cfg, WSM_OPT_MAX_METADATA_LEN, g->meta_max), "meta");
	}
	g->m = wsm_manager_new(cfg, &err);
	wsm_config_free(cfg);
	FZ_CHECK(g->m && err == WSM_OK, "wsm_manager_new: %d", err);
	g->baseline = held(g->m);
}

/* Everything the inbox holds is counted, and nothing else is left over. */
static void flush(struct mgr *g)
{
	uint64_t sum = 0;
	struct wsm_msg *msg;

	for (msg = g->m->inbox_head; msg; msg = msg->next)
		sum += msg->alloc_size;
	FZ_CHECK(held(g->m) == g->baseline + sum,
		 "held %llu, baseline %llu + inbox %llu",
		 (unsigned long long)held(g->m), (unsigned long long)g->baseline,
		 (unsigned long long)sum);
	wsm__inbox_discard(g->m);
	FZ_CHECK(held(g->m) == g->baseline, "held %llu after discard, baseline %llu",
		 (unsigned long long)held(g->m), (unsigned long long)g->baseline);
}

static void destroy_all(void)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (!mgrs[i].m)
			continue;
		flush(&mgrs[i]);
		wsm_manager_destroy(mgrs[i].m);
		mgrs[i].m = NULL;
	}
}

/* --- UTF-8: streamed in chunks, one-shot, and the reference decoder ---- */
static void check_utf8(const unsigned char *p, size_t len, uint64_t seed)
{
	uint32_t whole = 0, part = 0, pre;
	bool ok_whole = wsm__utf8_feed(&whole, p, len) && whole == 0;
	bool ok_part = true;
	size_t off = 0, n;

	FZ_CHECK(ok_whole == fz_ref_utf8(p, len),
		 "wsm__utf8_feed says %s, the reference decoder disagrees (%zu bytes)",
		 ok_whole ? "valid" : "invalid", len);
	while (off < len || (off == len && ok_part && (fz_rand(&seed) & 3) == 0)) {
		uint64_t r = fz_rand(&seed);

		/* Mostly tiny pieces (empty ones too), sometimes long ones. */
		n = (size_t)(r & 0x100 ? (r >> 12) % 300 : (r >> 12) % 6);
		if (n > len - off)
			n = len - off;
		/* An exact copy of the chunk: the feed must stay inside it. */
		{
			unsigned char *chunk = malloc(n ? n : 1);

			if (!chunk)
				abort();
			if (n)
				memcpy(chunk, p + off, n);
			ok_part = wsm__utf8_feed(&part, chunk, n);
			free(chunk);
		}
		off += n;
		/*
		 * The same prefix in one call: same verdict, same state. Checked
		 * at the failure and at a few boundaries (each check rereads the
		 * prefix), always for short texts.
		 */
		if (!ok_part || off == len || len < 64 ||
		    (fz_rand(&seed) & 15) == 0) {
			pre = 0;
			FZ_CHECK(ok_part == wsm__utf8_feed(&pre, p, off),
				 "chunked and one-shot feeds disagree at %zu", off);
			if (ok_part)
				FZ_CHECK(pre == part,
					 "state %#x streamed, %#x one-shot at %zu",
					 part, pre, off);
		}
		if (!ok_part)
			break;
		if (off == len && n == 0)
			break;
	}
	if (ok_part)
		ok_part = part == 0;
	FZ_CHECK(ok_part == ok_whole, "chunked %d, whole %d", ok_part, ok_whole);
}

/* --- the expected result, from wsm(7) ----------------------------------- */
static int ref_text(const char *s, int64_t max)
{
	size_t n = strlen(s);

	if ((int64_t)n > max)
		return WSM_ETOOLONG;
	return fz_ref_utf8((const unsigned char *)s, n) ? WSM_OK : WSM_EUTF8;
}

static int ref_id(const struct mgr *g, const char *id)
{
	if (!id)
		return WSM_EINVAL;
	return fz_ref_id_ok(id, strlen(id), g->id_max) ? WSM_OK : WSM_ESESSIONID;
}

static int ref_metadata(const struct mgr *g, const char *text)
{
	json_t *j;
	int rc;

	if (!text)
		return WSM_OK;
	if ((rc = ref_text(text, g->meta_max)))
		return rc;
	j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	rc = j && json_is_object(j) ? WSM_OK : WSM_EJSON;
	json_decref(j);
	return rc;
}

/* Reals survive to 15 significant digits (the library renders them so). */
static bool same_json(json_t *a, json_t *b)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_real(a) && json_is_real(b)) {
		double x = json_real_value(a), y = json_real_value(b);

		return x == y || fabs(x - y) <= 1e-14 * fmax(fabs(x), fabs(y));
	}
	if (json_typeof(a) != json_typeof(b))
		return false;
	if (json_is_object(a)) {
		if (json_object_size(a) != json_object_size(b))
			return false;
		json_object_foreach(a, key, v)
			if (!json_object_get(b, key) ||
			    !same_json(v, json_object_get(b, key)))
				return false;
		return true;
	}
	if (json_is_array(a)) {
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (i = 0; i < json_array_size(a); i++)
			if (!same_json(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	}
	return json_equal(a, b);
}

static void expect_string(json_t *doc, const char *key, const char *want)
{
	const char *got = json_string_value(json_object_get(doc, key));

	if (!want) {
		FZ_CHECK(!json_object_get(doc, key), "\"%s\" present", key);
		return;
	}
	FZ_CHECK(got && !strcmp(got, want), "\"%s\" is \"%s\", want \"%s\"", key,
		 got ? got : "(none)", want);
}

struct call {
	int op;
	const char *id, *text, *stage;
	double progress;
	uint64_t seq;
	uint32_t epoch;
};

/*
 * What jansson writes for this call, with libwsm's dump flags and key order
 * and the timestamp the message got, the body only (no stamp, no brace).
 */
static char *jansson_body(const struct call *c, json_int_t timestamp)
{
	json_t *obj = json_object();
	char *text, *body;

	if (!obj)
		abort();
	json_object_set_new(obj, "type", json_string(c->op ? "error" : "progress"));
	json_object_set_new(obj, "sessionId", json_string(c->id));
	if (c->op == 0) {
		json_object_set_new(obj, "progress", json_real(c->progress));
		if (c->text)
			json_object_set_new(obj, "message", json_string(c->text));
		if (c->stage)
			json_object_set_new(obj, "stage", json_string(c->stage));
	} else {
		json_object_set_new(obj, "error", json_string(c->text));
	}
	json_object_set_new(obj, "timestamp", json_integer(timestamp));
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER |
				       JSON_REAL_PRECISION(15));
	json_decref(obj);
	if (!text)
		abort();
	body = strdup(text + 1);
	free(text);
	if (!body)
		abort();
	return body;
}


/* An accepted broadcast, as a client would receive it. */
static void check_rendered(const struct mgr *g, struct wsm_msg *msg,
			   const struct call *c)
{
	static const char *const types[] = { "progress", "error", "complete" };
	json_t *doc, *meta;
	json_error_t e;
	size_t keys = 3; /* type, sessionId, timestamp */
	char head[WSM_SEQ_ROOM + 8], *rest;
	int n;

	(void)g;
	FZ_CHECK(msg->kind == (c->op == 0   ? WSM_MSG_PROGRESS
			       : c->op == 1 ? WSM_MSG_ERROR
					    : WSM_MSG_COMPLETE),
		 "kind %d", msg->kind);
	FZ_CHECK(msg->session_id_len == strlen(c->id) &&
			 !memcmp(msg->session_id, c->id, msg->session_id_len),
		 "session id");
	wsm__msg_stamp(msg, c->seq, c->epoch);
	FZ_CHECK(msg->payload >= msg->buf + LWS_PRE &&
			 msg->payload + msg->payload_len <=
				 (unsigned char *)msg + msg->alloc_size,
		 "payload outside its buffer");
	/*
	 * The stamp, checked as text (a seq above 2^63 is no JSON integer
	 * jansson reads), then the rest as the object it opens.
	 */
	n = snprintf(head, sizeof(head), "{\"seq\":%llu,\"epoch\":%lu,",
		     (unsigned long long)c->seq, (unsigned long)c->epoch);
	FZ_CHECK(msg->payload_len > (size_t)n &&
			 !memcmp(msg->payload, head, (size_t)n),
		 "payload does not start with %s", head);
	rest = malloc(msg->payload_len - (size_t)n + 2);
	if (!rest)
		abort();
	rest[0] = '{';
	memcpy(rest + 1, msg->payload + n, msg->payload_len - (size_t)n);
	rest[msg->payload_len - (size_t)n + 1] = '\0';
	doc = json_loads(rest, 0, &e);
	FZ_CHECK(doc && json_is_object(doc), "payload is not a JSON object: %s: %.300s",
		 e.text, rest);
	free(rest);
	expect_string(doc, "type", types[c->op]);
	expect_string(doc, "sessionId", c->id);
	FZ_CHECK(json_is_integer(json_object_get(doc, "timestamp")), "timestamp");
	if (c->op < 2) {
		char *want = jansson_body(
			c, json_integer_value(json_object_get(doc, "timestamp")));

		FZ_CHECK(msg->payload_len - (size_t)n == strlen(want) &&
				 !memcmp(msg->payload + n, want, strlen(want)),
			 "not jansson's bytes: %.*s, jansson: %s",
			 (int)(msg->payload_len - (size_t)n), msg->payload + n,
			 want);
		free(want);
	}
	if (c->op == 0) {
		json_t *p = json_object_get(doc, "progress");
		double v = json_number_value(p);

		FZ_CHECK(json_is_number(p) &&
				 fabs(v - c->progress) <= 1e-13 * fmax(1.0, c->progress),
			 "progress %.17g, sent %.17g", v, c->progress);
		expect_string(doc, "message", c->text);
		expect_string(doc, "stage", c->stage);
		keys += 1 + (c->text != NULL) + (c->stage != NULL);
	} else if (c->op == 1) {
		expect_string(doc, "error", c->text);
		keys++;
	} else {
		meta = c->text ? json_loads(c->text, JSON_REJECT_DUPLICATES, NULL)
			       : json_object();
		FZ_CHECK(meta && json_object_get(doc, "metadata") &&
				 same_json(json_object_get(doc, "metadata"), meta),
			 "metadata differs from what was given");
		json_decref(meta);
		keys++;
	}
	FZ_CHECK(json_object_size(doc) == keys, "%zu keys, want %zu",
		 json_object_size(doc), keys);
	json_decref(doc);
}

static void run_call(struct mgr *g, const struct call *c)
{
	uint64_t before = held(g->m), sent = broadcasts(g->m);
	struct wsm_msg **tail = g->m->inbox_tail, *msg;
	int rc = 0, want = ref_id(g, c->id);

	switch (c->op) {
	case 0:
		if (!want && (!isfinite(c->progress) || c->progress < 0.0 ||
			      c->progress > 100.0))
			want = WSM_ERANGE;
		if (!want && c->text)
			want = ref_text(c->text, g->text_max);
		if (!want && c->stage)
			want = ref_text(c->stage, g->text_max);
		rc = wsm_broadcast_progress(g->m, c->id, c->progress, c->text,
					    c->stage);
		break;
	case 1:
		if (!want)
			want = c->text ? ref_text(c->text, g->text_max) : WSM_EINVAL;
		rc = wsm_broadcast_error(g->m, c->id, c->text);
		break;
	case 2:
		if (!want)
			want = ref_metadata(g, c->text);
		rc = wsm_broadcast_complete(g->m, c->id, c->text);
		break;
	default:
		/* Not bound to a context: found by nobody, or refused. */
		if (!want)
			want = WSM_ENOTFOUND;
		rc = wsm_session_close(g->m, c->id);
		break;
	}
	FZ_CHECK(rc == want, "op %d returned %d (%s), wsm(7) says %d (%s)", c->op,
		 rc, wsm_strerror(rc), want, wsm_strerror(want));
	if (rc) {
		FZ_CHECK(held(g->m) == before, "a refused call holds %lld bytes",
			 (long long)(held(g->m) - before));
		FZ_CHECK(broadcasts(g->m) == sent, "a refused call was counted");
		FZ_CHECK(g->m->inbox_tail == tail, "a refused call was queued");
		return;
	}
	FZ_CHECK(broadcasts(g->m) == sent + 1, "broadcast not counted");
	FZ_CHECK(g->m->inbox_tail != tail, "accepted but not queued");
	msg = *tail; /* the link the push filled in */
	FZ_CHECK(held(g->m) == before + msg->alloc_size, "held %llu, want %llu",
		 (unsigned long long)held(g->m),
		 (unsigned long long)(before + msg->alloc_size));
	check_rendered(g, msg, c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct call c;
	struct mgr *g;
	uint8_t op = fz_u8(&in), flags = fz_u8(&in);
	uint64_t bits = fz_u64(&in), seed;
	char *id, *text, *stage;
	int i;

	if (!mgrs[0].m) {
		create(&mgrs[0], false);
		create(&mgrs[1], true);
		atexit(destroy_all);
	}
	g = &mgrs[flags & 1];
	memset(&c, 0, sizeof(c));
	c.op = op & 3;
	memcpy(&c.progress, &bits, sizeof(c.progress));
	if (op & 0x80) /* plain numbers are likelier to reach the text checks */
		c.progress = (double)(bits % 10001) / 100.0;
	c.seq = fz_u64(&in);
	for (i = 0; i < 4; i++)
		c.epoch = c.epoch << 8 | fz_u8(&in);
	id = fz_field(&in);
	text = fz_field(&in);
	stage = fz_field(&in);
	c.id = flags & 0x02 ? NULL : id;
	c.text = flags & 0x04 ? NULL : text;
	c.stage = flags & 0x08 ? NULL : stage;

	seed = bits ^ c.seq ^ flags;
	check_utf8((const unsigned char *)text, strlen(text), seed);
	check_utf8((const unsigned char *)stage, strlen(stage), seed + 1);
	check_utf8(data, size, seed + 2);

	run_call(g, &c);
	free(id);
	free(text);
	free(stage);

	if (++inputs % FLUSH_EVERY == 0) {
		flush(&mgrs[0]);
		flush(&mgrs[1]);
	}
	if (inputs % RECREATE_EVERY == 0) {
		destroy_all();
		create(&mgrs[0], false);
		create(&mgrs[1], true);
	}
	return 0;
}
