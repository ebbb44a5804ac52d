/*
 * What a client may send, over real sockets: binary frames (1003), messages
 * over WSM_OPT_MAX_MESSAGE_SIZE whole or fragmented (1009), text that is not
 * UTF-8 (1007), frames that are not WebSocket at all; what it may not be
 * closed for: messages of exactly the limit, characters split across
 * fragments or receive buffers, pings, text counting as activity. Every bad
 * client ends with one WSM_EVENT_CLOSE and a count in metrics.closed[], and
 * leaves other sessions alone. Then refused upgrades (404, 400), which must
 * allocate nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "support/session_client.h"

#define LIMIT 64 /* WSM_OPT_MAX_MESSAGE_SIZE of most tests */
#define WAIT_MS 5000

enum { OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8,
       OP_PING = 0x9, OP_PONG = 0xA };

static const char *str(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

/* ---- raw frames from the server ----------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exactly n bytes from the client's socket: 0, or -1 on EOF/timeout. */
static int read_exact(wsc_t *c, void *buf, size_t n, int64_t deadline)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(wsc_fd(c), p + got, n - got, 0);
		struct pollfd pfd = { .fd = wsc_fd(c), .events = POLLIN };
		int64_t left;

		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
			       errno != EINTR))
			return -1;
		left = deadline - mono_ms();
		if (left <= 0)
			return -1;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

/*
 * One frame, read below wsc (whose own buffer must be empty, as it is when
 * nothing but these raw reads has consumed server frames). Returns the
 * opcode, or -1; the payload is truncated to cap bytes.
 */
static int read_frame(wsc_t *c, unsigned char *payload, size_t cap,
		      size_t *len, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	unsigned char h[8], skip;
	uint64_t n;
	size_t i;

	if (read_exact(c, h, 2, deadline))
		return -1;
	n = h[1] & 0x7f;
	if (n == 126) {
		if (read_exact(c, h + 2, 2, deadline))
			return -1;
		n = (uint64_t)h[2] << 8 | h[3];
	} else if (n == 127) {
		return -1; /* nothing here is that big */
	}
	for (i = 0; i < n; i++) {
		unsigned char *dst = i < cap ? &payload[i] : &skip;

		if (read_exact(c, dst, 1, deadline))
			return -1;
	}
	*len = n < cap ? (size_t)n : cap;
	return h[0] & 0x0f;
}

/*
 * Sends a ping and waits for its pong. Frames are handled in order, so the
 * pong also proves the server has processed everything sent before it.
 * Returns 0, the close code if the server closed instead, or -1.
 */
static int ping_sync(wsc_t *c, const char *data)
{
	unsigned char buf[128];
	size_t len, n = strlen(data);
	int op;

	if (wsc_send_frame(c, OP_PING, 1, data, n))
		return -1;
	for (;;) {
		op = read_frame(c, buf, sizeof(buf), &len, WAIT_MS);
		if (op == OP_PONG && len == n && !memcmp(buf, data, n))
			return 0;
		if (op == OP_CLOSE)
			return len >= 2 ? buf[0] << 8 | buf[1] : 1005;
		if (op == OP_PING || op == OP_PONG)
			continue;
		return -1;
	}
}

/* ---- fixtures ----------------------------------------------------------- */

/*
 * What a test has open, so that the teardown closes it even when the test
 * fails halfway (no leak reports piling up behind a real failure).
 */
static harness_t *open_harnesses[4];
static wsc_t *open_clients[64];

static void track(void **slots, size_t n, void *p)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!slots[i]) {
			slots[i] = p;
			return;
		}
	fail_msg("too many open handles");
}

static void untrack(void **slots, size_t n, void *p)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (slots[i] == p)
			slots[i] = NULL;
}

static harness_t *keep_harness(harness_t *h)
{
	assert_non_null(h);
	track((void **)open_harnesses, 4, h);
	return h;
}

static void stop_harness(harness_t *h)
{
	untrack((void **)open_harnesses, 4, h);
	harness_stop(h);
}

static wsc_t *keep_client(wsc_t *c)
{
	if (c)
		track((void **)open_clients, 64, c);
	return c;
}

static void close_client(wsc_t *c)
{
	untrack((void **)open_clients, 64, c);
	wsc_free(c);
}

static int cleanup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < 64; i++)
		if (open_clients[i])
			close_client(open_clients[i]);
	for (i = 0; i < 4; i++)
		if (open_harnesses[i])
			stop_harness(open_harnesses[i]);
	return 0;
}

struct fx {
	harness_t *h;
	wsc_t *by; /* a well-behaved client in another session */
	uint64_t protocol_closed;
	int round;
};

/* On the service thread: no cmocka assertion here, the caller checks. */
static void read_metrics(harness_t *h, void *arg)
{
	wsm_metrics_t *s = arg;

	memset(s, 0, sizeof(*s));
	s->size = sizeof(*s);
	if (wsm_metrics(harness_mgr(h), s) != 0)
		s->size = 0;
}

/*
 * Metrics read on the service thread between callbacks: settled figures,
 * with no teardown half done (the close event comes before the session of
 * the connection is released, for instance).
 */
static wsm_metrics_t metrics_settled(harness_t *h)
{
	wsm_metrics_t s;

	s.size = 0;
	assert_int_equal(harness_call(h, read_metrics, &s), 0);
	assert_int_equal(s.size, sizeof(s));
	return s;
}

static uint64_t held_settled(harness_t *h)
{
	return metrics_settled(h).held_bytes;
}

static wsc_t *join(harness_t *h, const char *session)
{
	size_t before = harness_events(h, WSM_EVENT_OPEN, -1, session);
	wsc_t *c;
	int status = 0;

	c = keep_client(join_session(h, session, &status));
	assert_int_equal(status, 101);
	assert_non_null(c);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_OPEN, -1, session,
					     before + 1, WAIT_MS), 0);
	return c;
}

/* A broadcast to session reaches c, intact. */
static void expect_delivery(harness_t *h, wsc_t *c, const char *session,
			    int round)
{
	char text[32];
	json_t *j;

	snprintf(text, sizeof(text), "round %d", round);
	assert_int_equal(wsm_broadcast_error(harness_mgr(h), session, text), 0);
	j = recv_json(c, WAIT_MS);
	assert_non_null(j);
	assert_string_equal(str(j, "type"), "error");
	assert_string_equal(str(j, "sessionId"), session);
	assert_string_equal(str(j, "error"), text);
	json_decref(j);
}

static harness_t *start(int64_t max_message, int64_t rx_buffer,
			const struct harness_opts *opts)
{
	wsm_config_t *cfg = wsm_config_new();
	harness_t *h;

	assert_non_null(cfg);
	/* No state kept for late joiners: a session ends with its last
	 * connection, and everything a connection held must come back. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_RETENTION_MS, 0), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_MESSAGE_SIZE,
					    max_message), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_RX_BUFFER_SIZE,
					    rx_buffer), 0);
	h = keep_harness(harness_start(cfg, opts));
	wsm_config_free(cfg);
	assert_non_null(h);
	return h;
}

static void fx_start(struct fx *f, int64_t max_message, int64_t rx_buffer,
		     const struct harness_opts *opts)
{
	memset(f, 0, sizeof(*f));
	f->h = start(max_message, rx_buffer, opts);
	f->by = join(f->h, "bystander");
	expect_delivery(f->h, f->by, "bystander", ++f->round);
}

static void fx_stop(struct fx *f)
{
	close_client(f->by);
	stop_harness(f->h);
}

/*
 * The client c in session was closed by libwsm for a protocol violation with
 * code: the client saw the code, the event callback one close with
 * WSM_CAUSE_PROTOCOL, metrics.closed[] counted it, everything the connection
 * held was given back, and the bystander still gets its messages.
 */
static void expect_protocol_close(struct fx *f, wsc_t *c, const char *session,
				  int code, uint64_t held_before)
{
	wsm_metrics_t s;

	assert_int_equal(wsc_wait_close(c, WAIT_MS), code);
	assert_int_equal(harness_wait_events(f->h, WSM_EVENT_CLOSE,
					     WSM_CAUSE_PROTOCOL, session, 1,
					     WAIT_MS), 0);
	assert_int_equal(harness_events(f->h, WSM_EVENT_CLOSE, -1, session), 1);
	f->protocol_closed++;
	s = metrics_settled(f->h);
	assert_int_equal(s.closed[WSM_CAUSE_PROTOCOL], f->protocol_closed);
	assert_int_equal(s.connections, 1);
	assert_int_equal(s.closing, 0);
	assert_int_equal(s.sessions, 1);
	assert_int_equal(s.held_bytes, held_before);
	close_client(c);
	expect_delivery(f->h, f->by, "bystander", ++f->round);
	assert_int_equal(harness_events(f->h, WSM_EVENT_CLOSE, -1, "bystander"), 0);
}

/*
 * c in session is still open after what it sent: the server answered a ping
 * sent after it, closed nothing, and still delivers to it.
 */
static void expect_open(struct fx *f, wsc_t *c, const char *session)
{
	wsm_metrics_t s;

	assert_int_equal(ping_sync(c, "sync"), 0);
	s = harness_metrics(f->h);
	assert_int_equal(s.closing, 0);
	assert_int_equal(s.closed[WSM_CAUSE_PROTOCOL], f->protocol_closed);
	assert_int_equal(harness_events(f->h, WSM_EVENT_CLOSE, -1, session), 0);
	expect_delivery(f->h, c, session, ++f->round);
	expect_delivery(f->h, f->by, "bystander", ++f->round);
}

static char *repeat(char ch, size_t n)
{
	char *s = repeat_char(ch, n);

	assert_non_null(s);
	return s;
}

/* ---- binary ------------------------------------------------------------- */

static void binary_frames_in_mode(const struct harness_opts *mode)
{
	static const unsigned char bin[] = { 0x00, 0xff, 0x10, 'a' };
	struct fx f;
	uint64_t held;
	wsc_t *c;

	fx_start(&f, LIMIT, 512, mode);
	/* A whole binary message. */
	held = held_settled(f.h);
	c = join(f.h, "bin-1");
	assert_int_equal(wsc_send_frame(c, OP_BINARY, 1, bin, sizeof(bin)), 0);
	expect_protocol_close(&f, c, "bin-1", WSM_CLOSE_UNSUPPORTED, held);
	/* The first fragment of one is enough. */
	c = join(f.h, "bin-2");
	assert_int_equal(wsc_send_frame(c, OP_BINARY, 0, bin, sizeof(bin)), 0);
	expect_protocol_close(&f, c, "bin-2", WSM_CLOSE_UNSUPPORTED, held);
	/* Valid UTF-8 in a binary frame is still binary. */
	c = join(f.h, "bin-3");
	assert_int_equal(wsc_send_frame(c, OP_BINARY, 1, "hello", 5), 0);
	expect_protocol_close(&f, c, "bin-3", WSM_CLOSE_UNSUPPORTED, held);
	/* After good text, on a connection that was fine until then. */
	c = join(f.h, "bin-4");
	assert_int_equal(wsc_send_text(c, "fine"), 0);
	assert_int_equal(ping_sync(c, "p"), 0);
	assert_int_equal(wsc_send_frame(c, OP_BINARY, 1, bin, sizeof(bin)), 0);
	expect_protocol_close(&f, c, "bin-4", WSM_CLOSE_UNSUPPORTED, held);
	fx_stop(&f);
}

static void test_binary_frame(void **state)
{
	static const struct harness_opts ready = { .mode = HARNESS_READY };

	(void)state;
	binary_frames_in_mode(&ready);
}

static void test_binary_frame_delegate(void **state)
{
	static const struct harness_opts delegate = { .mode = HARNESS_DELEGATE };

	(void)state;
	binary_frames_in_mode(&delegate);
}

static void test_binary_frame_register(void **state)
{
	static const struct harness_opts reg = { .mode = HARNESS_REGISTER };

	(void)state;
	binary_frames_in_mode(&reg);
}

/* An empty binary frame is a binary frame too. */
static void test_empty_binary_frame(void **state)
{
	struct fx f;
	uint64_t held;
	wsc_t *c;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	held = held_settled(f.h);
	c = join(f.h, "bin-empty");
	assert_int_equal(wsc_send_frame(c, OP_BINARY, 1, NULL, 0), 0);
	expect_protocol_close(&f, c, "bin-empty", WSM_CLOSE_UNSUPPORTED, held);
	fx_stop(&f);
}

/* ---- size --------------------------------------------------------------- */

static void test_oversized_message(void **state)
{
	char *big = repeat('x', LIMIT + 1), *part = repeat('y', 40);
	struct fx f;
	uint64_t held;
	wsc_t *c;
	int i;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	held = held_settled(f.h);
	/* One frame, one byte over. */
	c = join(f.h, "big-1");
	assert_int_equal(wsc_send_text(c, big), 0);
	expect_protocol_close(&f, c, "big-1", WSM_CLOSE_TOO_BIG, held);
	/* Two fragments that fit on their own but not together. */
	c = join(f.h, "big-2");
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, part, 40), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 1, part, 40), 0);
	expect_protocol_close(&f, c, "big-2", WSM_CLOSE_TOO_BIG, held);
	/* limit + 1 one-byte fragments. */
	c = join(f.h, "big-3");
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, "z", 1), 0);
	for (i = 1; i < LIMIT; i++)
		assert_int_equal(wsc_send_frame(c, OP_CONT, 0, "z", 1), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 1, "z", 1), 0);
	expect_protocol_close(&f, c, "big-3", WSM_CLOSE_TOO_BIG, held);
	/* Far over, and not finished when the server gives up. */
	c = join(f.h, "big-4");
	free(big);
	big = repeat('w', 10000);
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, big, 10000), 0);
	expect_protocol_close(&f, c, "big-4", WSM_CLOSE_TOO_BIG, held);
	free(big);
	free(part);
	fx_stop(&f);
}

static void test_exact_limit_stays_open(void **state)
{
	char *exact = repeat('e', LIMIT);
	struct fx f;
	wsc_t *c;
	int i;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	c = join(f.h, "exact");
	/* One frame of exactly the limit, several times: the count is per
	 * message, not per connection. */
	for (i = 0; i < 4; i++)
		assert_int_equal(wsc_send_text(c, exact), 0);
	expect_open(&f, c, "exact");
	/* The limit in two fragments, then in one-byte fragments. */
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, exact, LIMIT / 2), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 1, exact, LIMIT / 2), 0);
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, "e", 1), 0);
	for (i = 1; i < LIMIT - 1; i++)
		assert_int_equal(wsc_send_frame(c, OP_CONT, 0, "e", 1), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 1, "e", 1), 0);
	/* Empty text and empty fragments. */
	assert_int_equal(wsc_send_text(c, ""), 0);
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, NULL, 0), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 0, exact, LIMIT), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 1, NULL, 0), 0);
	/* A ping between the fragments of a message of the limit. */
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, exact, LIMIT - 1), 0);
	assert_int_equal(ping_sync(c, "mid"), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 1, "e", 1), 0);
	expect_open(&f, c, "exact");
	assert_int_equal(harness_metrics(f.h).connections, 2);
	close_client(c);
	free(exact);
	fx_stop(&f);
}

/* Messages larger than the lws receive buffer arrive in pieces. */
static void test_message_across_rx_buffers(void **state)
{
	const size_t limit = 1024;
	char *msg = malloc(limit + 2);
	struct fx f;
	uint64_t held;
	size_t i;
	wsc_t *c;

	(void)state;
	assert_non_null(msg);
	fx_start(&f, (int64_t)limit, 128, NULL);
	held = held_settled(f.h);
	/* 341 euro signs (3 bytes each) and a '!': exactly the limit, with
	 * characters straddling every 128-byte piece. */
	for (i = 0; i + 3 <= limit; i += 3)
		memcpy(msg + i, "\xe2\x82\xac", 3);
	memset(msg + i, '!', limit - i);
	msg[limit] = '\0';
	assert_int_equal(strlen(msg), limit);
	c = join(f.h, "pieces");
	assert_int_equal(wsc_send_text(c, msg), 0);
	assert_int_equal(wsc_send_text(c, msg), 0);
	expect_open(&f, c, "pieces");
	/* One more byte in the last piece is too big. */
	msg[limit] = '!';
	msg[limit + 1] = '\0';
	assert_int_equal(wsc_send_text(c, msg), 0);
	expect_protocol_close(&f, c, "pieces", WSM_CLOSE_TOO_BIG, held);
	/* A bad byte deep inside the last piece. */
	msg[limit] = '\0';
	msg[limit - 2] = (char)0xff;
	c = join(f.h, "pieces-utf8");
	assert_int_equal(wsc_send_text(c, msg), 0);
	expect_protocol_close(&f, c, "pieces-utf8", WSM_CLOSE_INVALID_PAYLOAD,
			      held);
	free(msg);
	fx_stop(&f);
}

/* ---- UTF-8 -------------------------------------------------------------- */

static void test_invalid_utf8(void **state)
{
	static const char *const bad[] = {
		"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok\x80",
		"\xff", "abc\xe2\x82", "\xe0\x80\xaf",
	};
	char session[32];
	struct fx f;
	uint64_t held;
	wsc_t *c;
	size_t i;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	held = held_settled(f.h);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(session, sizeof(session), "utf8-%zu", i);
		c = join(f.h, session);
		assert_int_equal(wsc_send_text(c, bad[i]), 0);
		expect_protocol_close(&f, c, session, WSM_CLOSE_INVALID_PAYLOAD,
				      held);
	}
	/* A character cut by the end of the message, not of a fragment. */
	c = join(f.h, "utf8-cut");
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, "ab", 2), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 1, "\xe2\x82", 2), 0);
	expect_protocol_close(&f, c, "utf8-cut", WSM_CLOSE_INVALID_PAYLOAD, held);
	/* A character whose continuation, in the next fragment, is wrong. */
	c = join(f.h, "utf8-wrong");
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, "ab\xe2\x82", 4), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 1, "A", 1), 0);
	expect_protocol_close(&f, c, "utf8-wrong", WSM_CLOSE_INVALID_PAYLOAD, held);
	fx_stop(&f);
}

static void test_utf8_split_across_fragments(void **state)
{
	struct fx f;
	wsc_t *c;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	c = join(f.h, "split");
	/* U+20AC cut after two of its three bytes. */
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, "ab\xe2\x82", 4), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 1, "\xac cd", 4), 0);
	/* U+1F600 one byte per fragment. */
	assert_int_equal(wsc_send_frame(c, OP_TEXT, 0, "\xf0", 1), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 0, "\x9f", 1), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 0, "\x98", 1), 0);
	assert_int_equal(wsc_send_frame(c, OP_CONT, 1, "\x80", 1), 0);
	/* Whole multibyte text, up to U+10FFFF. */
	assert_int_equal(wsc_send_text(c, "caf\xc3\xa9 \xf4\x8f\xbf\xbf"), 0);
	expect_open(&f, c, "split");
	close_client(c);
	fx_stop(&f);
}

/* ---- the client's close frame ------------------------------------------- */

/* The close frame the server sends next, raw: its code, or -1. */
static int server_close_code(wsc_t *c, char *reason, size_t size)
{
	unsigned char buf[128];
	size_t len;
	int op;

	for (;;) {
		op = read_frame(c, buf, sizeof(buf), &len, WAIT_MS);
		if (op < 0)
			return -1;
		if (op != OP_CLOSE)
			continue;
		if (len < 2)
			return -1; /* an echo of a one-byte payload, or none */
		snprintf(reason, size, "%.*s", (int)(len - 2), buf + 2);
		return buf[0] << 8 | buf[1];
	}
}

/*
 * RFC 6455 7.4 and 5.5.1: a close whose code a peer may not send, whose
 * payload is one byte, or whose reason is not UTF-8 is answered with 1002
 * (1007 for the reason), not echoed; lws 4.1 and 4.3 both echo it.
 */
static void test_client_close_frames(void **state)
{
	static const struct {
		const char *payload;
		size_t len;
		int answer;
		wsm_close_cause_t cause;
	} cases[] = {
		{ "\x13\x88", 2, 1002, WSM_CAUSE_PROTOCOL },       /* 5000 */
		{ "\xff\xff", 2, 1002, WSM_CAUSE_PROTOCOL },       /* 65535 */
		{ "\x03", 1, 1002, WSM_CAUSE_PROTOCOL },            /* one byte */
		{ "\x03\xe8\xff\xfe", 4, 1007, WSM_CAUSE_PROTOCOL }, /* bad UTF-8 */
		{ "\x03\xe8" "ab\xe2\x82", 6, 1007, WSM_CAUSE_PROTOCOL }, /* cut */
		/* lws itself turns the reserved codes into 1002, and echoes. */
		{ "\x03\xed", 2, 1002, WSM_CAUSE_PEER },           /* 1005 */
		{ "\x03\xee", 2, 1002, WSM_CAUSE_PEER },           /* 1006 */
		{ "\x03\xe7", 2, 1002, WSM_CAUSE_PEER },           /* 999 */
		{ "\x0b\xb7", 2, 1002, WSM_CAUSE_PEER },           /* 2999 */
		/* Valid closes are echoed. */
		{ "\x03\xe8" "bye", 5, 1000, WSM_CAUSE_PEER },
		{ "\x03\xe9", 2, 1001, WSM_CAUSE_PEER },
		{ "\x03\xf3", 2, 1011, WSM_CAUSE_PEER },
		{ "\x0b\xb8", 2, 3000, WSM_CAUSE_PEER },
		{ "\x13\x87" "caf\xc3\xa9", 7, 4999, WSM_CAUSE_PEER },
	};
	char session[32], reason[128];
	struct fx f;
	wsc_t *c;
	size_t i;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(session, sizeof(session), "close-%zu", i);
		c = join(f.h, session);
		assert_int_equal(wsc_send_frame(c, OP_CLOSE, 1, cases[i].payload,
						cases[i].len),
				 0);
		assert_int_equal(server_close_code(c, reason, sizeof(reason)),
				 cases[i].answer);
		if (cases[i].cause == WSM_CAUSE_PEER && cases[i].answer != 1002)
			assert_memory_equal(reason, cases[i].payload + 2,
					    cases[i].len - 2);
		assert_int_equal(harness_wait_events(f.h, WSM_EVENT_CLOSE,
						     (int)cases[i].cause,
						     session, 1, WAIT_MS),
				 0);
		close_client(c);
	}
	/* The others went on: the bystander still gets its messages. */
	expect_delivery(f.h, f.by, "bystander", ++f.round);
	fx_stop(&f);
}

/* ---- control frames and activity --------------------------------------- */

static void test_client_ping_answered(void **state)
{
	char payload[126];
	struct fx f;
	wsc_t *c;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	c = join(f.h, "pinger");
	assert_int_equal(ping_sync(c, "hello"), 0);
	assert_int_equal(ping_sync(c, ""), 0);
	/* The largest control payload, 125 bytes, comes back whole. */
	memset(payload, 'p', 125);
	payload[125] = '\0';
	assert_int_equal(ping_sync(c, payload), 0);
	expect_open(&f, c, "pinger");
	close_client(c);
	fx_stop(&f);
}

struct stale_wait {
	harness_t *h;
	uint64_t stale;
};

static bool stale_is(void *arg)
{
	struct stale_wait *w = arg;

	return harness_metrics(w->h).stale == w->stale;
}

/*
 * Two silent clients that ignore pings; one says something. It stops being
 * stale at once and outlives the other by the time it spoke.
 */
static void test_client_text_is_activity(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	struct stale_wait w;
	harness_t *h;
	wsc_t *quiet, *chatty;
	int64_t spoke;
	int i;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_PING_INTERVAL_MS, 200), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_STALE_TIMEOUT_MS, 3000), 0);
	h = keep_harness(harness_start(cfg, NULL));
	wsm_config_free(cfg);
	assert_non_null(h);
	w.h = h;
	quiet = join(h, "quiet");
	chatty = join(h, "chatty");
	wsc_set_auto_pong(quiet, 0);
	wsc_set_auto_pong(chatty, 0);
	/* Both miss pings and count as stale. */
	w.stale = 2;
	assert_int_equal(harness_wait_until(stale_is, &w, WAIT_MS), 0);
	assert_int_equal(harness_metrics(h).active, 0);
	/* Let a few more pings go by, so that speaking moves the deadline
	 * well clear of the quiet one's. */
	for (i = 0; i < 100 && wsc_pings(chatty) < 5; i++)
		assert_int_equal(wsc_recv(chatty, NULL, NULL, 100), 0);
	assert_true(wsc_pings(chatty) >= 5);
	spoke = mono_ms();
	assert_int_equal(wsc_send_text(chatty, "still here"), 0);
	w.stale = 1;
	assert_int_equal(harness_wait_until(stale_is, &w, WAIT_MS), 0);
	/* The quiet one is closed as stale (the event comes once the client
	 * has answered the close), the chatty one not yet. */
	assert_int_equal(wsc_wait_close(quiet, WAIT_MS), WSM_CLOSE_STALE);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_STALE,
					     "quiet", 1, WAIT_MS), 0);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, -1, "chatty"), 0);
	/* Silent again, it follows a stale timeout after it spoke. */
	assert_int_equal(wsc_wait_close(chatty, WAIT_MS), WSM_CLOSE_STALE);
	assert_true(mono_ms() - spoke >= 3000 - 50);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_STALE,
					     "chatty", 1, WAIT_MS), 0);
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_STALE], 2);
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_PROTOCOL], 0);
	close_client(quiet);
	close_client(chatty);
	stop_harness(h);
}

/*
 * lws answers a client's own pings itself and does not report them, so they
 * are not activity (wsm(7)): a client that pings but ignores the server's
 * pings is still closed as stale, at the stale timeout, while its own pings
 * keep being answered.
 */
static void test_client_ping_is_not_activity(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	unsigned char buf[128];
	unsigned server_pings = 0, pongs = 0;
	harness_t *h;
	size_t len;
	wsc_t *c;
	int op, code = 0;
	int64_t asked, closed;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_PING_INTERVAL_MS, 100), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_STALE_TIMEOUT_MS, 600), 0);
	h = keep_harness(harness_start(cfg, NULL));
	wsm_config_free(cfg);
	assert_non_null(h);
	asked = now_ms();
	c = join(h, "keepalive");
	while (server_pings < 40) {
		op = read_frame(c, buf, sizeof(buf), &len, WAIT_MS);
		if (op == OP_CLOSE) {
			code = len >= 2 ? buf[0] << 8 | buf[1] : 1005;
			break;
		}
		assert_true(op == OP_PING || op == OP_PONG);
		if (op == OP_PONG)
			pongs++;
		if (op == OP_PING) {
			server_pings++;
			assert_int_equal(wsc_send_frame(c, OP_PING, 1, "ka", 2), 0);
		}
	}
	closed = now_ms();
	assert_int_equal(code, WSM_CLOSE_STALE);
	/* At the stale timeout after the upgrade, its last activity. */
	assert_true(closed - asked >= 600);
	assert_true(closed - asked < 600 + 1500);
	assert_true(server_pings >= 1);
	assert_true(pongs >= 1);
	close_client(c);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_STALE,
					     "keepalive", 1, 5000), 0);
	stop_harness(h);
}

/* ---- not WebSocket at all ----------------------------------------------- */

static int send_raw(wsc_t *c, const void *data, size_t len)
{
	return wsc_send_raw(c, data, len, WAIT_MS);
}

/* A masked frame header + payload, with b0 (FIN, RSV, opcode) as given. */
static int send_odd_frame(wsc_t *c, unsigned char b0, const char *payload)
{
	unsigned char buf[64];
	size_t n = strlen(payload), i;

	buf[0] = b0;
	buf[1] = (unsigned char)(0x80 | n);
	memcpy(buf + 2, "\x11\x22\x33\x44", 4);
	for (i = 0; i < n; i++)
		buf[6 + i] = (unsigned char)payload[i] ^ buf[2 + (i & 3)];
	return send_raw(c, buf, 6 + n);
}

static void test_garbage_after_upgrade(void **state)
{
	static const struct {
		const char *what;
		unsigned char b0; /* 0: raw bytes below instead */
		const char *raw;
		size_t raw_len;
	} cases[] = {
		{ "reserved opcode 0x3", 0x83, NULL, 0 },
		{ "reserved opcode 0x7", 0x87, NULL, 0 },
		{ "reserved control opcode 0xB", 0x8b, NULL, 0 },
		{ "RSV1 without an extension", 0xc1, NULL, 0 },
		{ "RSV2", 0xa1, NULL, 0 },
		{ "RSV3", 0x91, NULL, 0 },
		{ "continuation with no message", 0x80, NULL, 0 },
		{ "fragmented ping", 0x09, NULL, 0 },
		{ "HTTP again", 0, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27 },
		{ "noise", 0, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 10 },
	};
	char session[32];
	struct fx f;
	size_t i;
	wsc_t *c;
	int code;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t held = held_settled(f.h);

		snprintf(session, sizeof(session), "garbage-%zu", i);
		c = join(f.h, session);
		if (cases[i].b0)
			assert_int_equal(send_odd_frame(c, cases[i].b0, "abc"), 0);
		else
			assert_int_equal(send_raw(c, cases[i].raw,
						  cases[i].raw_len), 0);
		/* The server ends it one way or another, never silently keeps it:
		 * a close frame (lws says 1002) or the connection dropped. */
		code = wsc_wait_close(c, WAIT_MS);
		if (code != 1002 && code != 1006)
			fail_msg("%s: %s (%d)", cases[i].what,
				 code ? "closed with an odd code"
				      : "connection left open", code);
		/* Having had its answer, the client goes away. */
		close_client(c);
		if (harness_wait_events(f.h, WSM_EVENT_CLOSE, -1, session, 1,
					WAIT_MS))
			fail_msg("%s: no close event", cases[i].what);
		/* Once. lws rejects these frames itself, so libwsm sees a
		 * connection that failed (WSM_CAUSE_ERROR); it may also call it
		 * an invalid frame (WSM_CAUSE_PROTOCOL), never anything else. */
		assert_int_equal(harness_events(f.h, WSM_EVENT_CLOSE, -1, session), 1);
		assert_int_equal(harness_events(f.h, WSM_EVENT_CLOSE,
						WSM_CAUSE_PROTOCOL, session) +
				 harness_events(f.h, WSM_EVENT_CLOSE,
						WSM_CAUSE_ERROR, session), 1);
		assert_int_equal(held_settled(f.h), held);
		expect_delivery(f.h, f.by, "bystander", ++f.round);
	}
	{
		wsm_metrics_t s = harness_metrics(f.h);

		assert_int_equal(s.connections, 1);
		assert_int_equal(s.closed[WSM_CAUSE_PROTOCOL] +
				 s.closed[WSM_CAUSE_ERROR],
				 sizeof(cases) / sizeof(cases[0]));
	}
	/* Still exactly one close each, after everything settled. */
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(session, sizeof(session), "garbage-%zu", i);
		assert_int_equal(harness_events(f.h, WSM_EVENT_CLOSE, -1, session), 1);
	}
	fx_stop(&f);
}

/* ---- refused upgrades --------------------------------------------------- */

static void test_refused_upgrades(void **state)
{
	static const struct {
		const char *path;
		int status;
	} cases[] = {
		{ "/", 404 },
		{ "/other/job-1", 404 },
		{ "/api/images_mvp/progress", 404 },
		{ "/api/images_mvp/progres/job-1", 404 },
		{ "/API/images_mvp/progress/job-1", 404 },
		{ "/x/api/images_mvp/progress/job-1", 404 },
		{ PREFIX, 400 },
		{ PREFIX "bad.id", 400 },
		{ PREFIX "a/b", 400 },
		{ PREFIX "job-1/", 400 },
		{ PREFIX "a+b", 400 },
		{ PREFIX "a%20b", 400 },
		{ PREFIX "caf%C3%A9", 400 },
		{ PREFIX "~x", 400 },
	};
	char path[1024];
	struct fx f;
	wsm_metrics_t before, after;
	uint64_t held;
	size_t i, refused = 0, opens;
	char *id;
	int status;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	held = held_settled(f.h);
	before = harness_metrics(f.h);
	opens = harness_events(f.h, WSM_EVENT_OPEN, -1, NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		status = 0;
		if (keep_client(wsc_connect(harness_port(f.h), cases[i].path, NULL,
					WAIT_MS, &status)))
			fail_msg("%s was upgraded", cases[i].path);
		if (status != cases[i].status)
			fail_msg("%s: status %d, want %d", cases[i].path, status,
				 cases[i].status);
		refused++;
	}
	/* One byte over the default 64-byte id limit, and 150 bytes. */
	id = repeat('i', 65);
	snprintf(path, sizeof(path), PREFIX "%s", id);
	assert_null(keep_client(wsc_connect(harness_port(f.h), path, NULL,
					     WAIT_MS, &status)));
	assert_int_equal(status, 400);
	refused++;
	free(id);
	id = repeat('i', 150);
	snprintf(path, sizeof(path), PREFIX "%s", id);
	assert_null(keep_client(wsc_connect(harness_port(f.h), path, NULL,
					     WAIT_MS, &status)));
	assert_int_equal(status, 400);
	refused++;
	/* And with a query string behind it. */
	snprintf(path, sizeof(path), PREFIX "%s?t=1", id);
	assert_null(keep_client(wsc_connect(harness_port(f.h), path, NULL,
					     WAIT_MS, &status)));
	assert_int_equal(status, 400);
	refused++;
	free(id);

	/* Nothing was allocated, admitted or opened for any of them. */
	assert_int_equal(held_settled(f.h), held);
	after = harness_metrics(f.h);
	assert_int_equal(after.held_bytes, before.held_bytes);
	assert_int_equal(after.connections, before.connections);
	assert_int_equal(after.active, before.active);
	assert_int_equal(after.closing, before.closing);
	assert_int_equal(after.sessions, before.sessions);
	assert_int_equal(after.opened, before.opened);
	assert_int_equal(after.refused_bad_request,
			 before.refused_bad_request + refused);
	assert_int_equal(after.refused_denied, before.refused_denied);
	assert_int_equal(after.refused_session_limit, before.refused_session_limit);
	assert_int_equal(after.refused_global_limit, before.refused_global_limit);
	assert_int_equal(after.refused_shutdown, before.refused_shutdown);
	assert_int_equal(harness_events(f.h, WSM_EVENT_OPEN, -1, NULL), opens);
	assert_int_equal(harness_events(f.h, WSM_EVENT_CLOSE, -1, NULL), 0);
	expect_delivery(f.h, f.by, "bystander", ++f.round);
	fx_stop(&f);
}

/*
 * wsm(7): 400 when "the URL is too long". The library copies the path into
 * a fixed buffer; a longer one must still be a bad request, not a 404.
 */
static void test_refused_long_url(void **state)
{
	static const size_t lens[] = { 300, 400, 1000 };
	char path[1200];
	struct fx f;
	wsm_metrics_t before, after;
	uint64_t held;
	size_t i;
	char *id;
	int status;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	held = held_settled(f.h);
	before = harness_metrics(f.h);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		id = repeat('u', lens[i]);
		snprintf(path, sizeof(path), PREFIX "%s", id);
		free(id);
		status = 0;
		assert_null(keep_client(wsc_connect(harness_port(f.h), path, NULL,
						     WAIT_MS, &status)));
		if (status != 400)
			fail_msg("id of %zu bytes (URL of %zu): status %d, want 400",
				 lens[i], strlen(path), status);
	}
	after = harness_metrics(f.h);
	assert_int_equal(held_settled(f.h), held);
	assert_int_equal(after.opened, before.opened);
	assert_int_equal(after.refused_bad_request,
			 before.refused_bad_request + sizeof(lens) / sizeof(lens[0]));
	fx_stop(&f);
}

/* The longest id is admitted; the query string is not part of it. */
static void test_admitted_edges(void **state)
{
	char path[256];
	struct fx f;
	char *id = repeat('L', 64);
	wsc_t *c, *q;
	int status = 0;

	(void)state;
	fx_start(&f, LIMIT, 512, NULL);
	c = join(f.h, id);
	expect_delivery(f.h, c, id, ++f.round);
	snprintf(path, sizeof(path), PREFIX "job-42?t=1&u=/x");
	q = keep_client(wsc_connect(harness_port(f.h), path, NULL, WAIT_MS,
				    &status));
	assert_int_equal(status, 101);
	assert_non_null(q);
	assert_int_equal(harness_wait_events(f.h, WSM_EVENT_OPEN, -1, "job-42", 1,
					     WAIT_MS), 0);
	expect_delivery(f.h, q, "job-42", ++f.round);
	assert_int_equal(harness_metrics(f.h).refused_bad_request, 0);
	close_client(q);
	close_client(c);
	free(id);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_binary_frame, cleanup),
		cmocka_unit_test_teardown(test_binary_frame_delegate, cleanup),
		cmocka_unit_test_teardown(test_binary_frame_register, cleanup),
		cmocka_unit_test_teardown(test_empty_binary_frame, cleanup),
		cmocka_unit_test_teardown(test_oversized_message, cleanup),
		cmocka_unit_test_teardown(test_exact_limit_stays_open, cleanup),
		cmocka_unit_test_teardown(test_message_across_rx_buffers, cleanup),
		cmocka_unit_test_teardown(test_invalid_utf8, cleanup),
		cmocka_unit_test_teardown(test_utf8_split_across_fragments, cleanup),
		cmocka_unit_test_teardown(test_client_close_frames, cleanup),
		cmocka_unit_test_teardown(test_client_ping_answered, cleanup),
		cmocka_unit_test_teardown(test_client_text_is_activity, cleanup),
		cmocka_unit_test_teardown(test_client_ping_is_not_activity, cleanup),
		cmocka_unit_test_teardown(test_garbage_after_upgrade, cleanup),
		cmocka_unit_test_teardown(test_refused_upgrades, cleanup),
		cmocka_unit_test_teardown(test_refused_long_url, cleanup),
		cmocka_unit_test_teardown(test_admitted_edges, cleanup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
