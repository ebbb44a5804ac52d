/*
 * How connections end, as wsm(7) "Close codes" and "Draining" promise:
 * lifetime, evicted, session_closed and shutdown closes deliver what was
 * queued first; stale and protocol closes drop it; a peer that never
 * answers the close frame is dropped after WSM_OPT_CLOSE_GRACE_MS; with no
 * jitter a connection lives exactly its lifetime; a drain spreads its
 * closes over the window and reports WSM_EVENT_DRAINED once.
 *
 * The queue is made to back up for real: the client reads nothing until
 * the kernel's socket buffers are full and libwsm holds the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <poll.h>
#include <sys/socket.h>

#include "support/must.h"

#define BIG_LEN 32768
#define BACKLOG (512 * 1024) /* queued in libwsm, beyond the kernel's */

static bool closing_one(void *arg)
{
	wsm_metrics_t mx = harness_metrics(arg);

	return mx.closing == 1 || mx.connections == 0;
}

struct topped {
	harness_t *h;
	uint64_t queued_before;
};

static bool topped_up(void *arg)
{
	struct topped *t = arg;

	return harness_metrics(t->h).messages_queued > t->queued_before ||
	       closing_one(t->h);
}

/* Reads to the close: the errors must be seq 1, 2, ... with no gap. */
static int read_errors(wsc_t *c)
{
	json_t *j;
	int n = 0;

	while ((j = recv_json(c, 10000))) {
		assert_string_equal(json_string_value(json_object_get(j, "type")),
				    "error");
		assert_int_equal(json_integer_value(json_object_get(j, "seq")),
				 n + 1);
		json_decref(j);
		n++;
	}
	return n;
}

enum trigger { BY_LIFETIME, BY_EVICTION, BY_SESSION_CLOSE, BY_DRAIN,
	       BY_STALE, BY_BINARY_FRAME };

struct close_case {
	const char *name;
	enum trigger how;
	wsm_close_cause_t cause;
	int code;
	bool flushes;
};

static void drain_now(harness_t *h, void *arg)
{
	*(int *)arg = wsm_drain(harness_mgr(h), 0);
}

static void run_close_case(const struct close_case *cc)
{
	harness_t *h = HARNESS_START(NULL,
				     { WSM_OPT_MAX_QUEUED_BYTES, 16 << 20 },
				     { WSM_OPT_MAX_QUEUED_MESSAGES, 4096 },
				     { WSM_OPT_MAX_TEXT_LEN, 65536 },
				     { WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 1 },
				     { WSM_OPT_SESSION_LIMIT_POLICY,
				       WSM_LIMIT_EVICT_OLDEST },
				     /* Long enough to back the queue up first. */
				     { WSM_OPT_MAX_LIFETIME_MS,
				       cc->how == BY_LIFETIME ? 4000 : 600000 },
				     { WSM_OPT_LIFETIME_JITTER_PERCENT, 0 },
				     /* The whole close, flush included. */
				     { WSM_OPT_CLOSE_GRACE_MS, 60000 },
				     { WSM_OPT_PING_INTERVAL_MS,
				       cc->how == BY_STALE ? 500 : 30000 },
				     { WSM_OPT_STALE_TIMEOUT_MS,
				       cc->how == BY_STALE ? 4000 : 120000 });
	wsc_t *c, *newer = NULL;
	int got, drained = -1;
	uint64_t queued0, queued;
	char *big = repeat_char('x', BIG_LEN);

	print_message("close by %s\n", cc->name);
	assert_non_null(h);
	assert_non_null(big);
	c = must_join(h, "q");
	wsc_set_auto_pong(c, 0);
	queued0 = harness_metrics(h).messages_queued;
	assert_true(back_up_queues(h, "q", 1, BIG_LEN, BACKLOG) > 0);
	assert_int_equal(harness_metrics(h).closing, 0); /* not begun yet */
	/* What reached this connection's queue (a newcomer's replay aside). */
	queued = harness_metrics(h).messages_queued - queued0;
	switch (cc->how) {
	case BY_LIFETIME:
	case BY_STALE:
		/* Their timers: the kernel keeps taking a little meanwhile
		 * (more slowly under valgrind), so keep the backlog up. */
		while (!closing_one(h)) {
			struct topped t = { h, harness_metrics(h).messages_queued };

			if (harness_metrics(h).queued_bytes >= BACKLOG) {
				harness_wait_until(closing_one, h, 5);
				continue;
			}
			/* One at a time, each queued (or the close begun)
			 * before the next: never past the bound. */
			assert_int_equal(wsm_broadcast_error(harness_mgr(h), "q",
							     big), 0);
			assert_int_equal(harness_wait_until(topped_up, &t, 5000), 0);
		}
		/* Later broadcasts found it closing (or were still in the
		 * inbox): not counted, not queued to it. */
		queued = harness_metrics(h).messages_queued - queued0;
		break;
	case BY_EVICTION:
		newer = must_join(h, "q");
		break;
	case BY_SESSION_CLOSE:
		assert_int_equal(wsm_session_close(harness_mgr(h), "q"), 1);
		break;
	case BY_DRAIN:
		assert_int_equal(harness_call(h, drain_now, &drained), 0);
		assert_int_equal(drained, 1);
		break;
	case BY_BINARY_FRAME:
		assert_int_equal(wsc_send_frame(c, 0x2, 1, "x", 1), 0);
		break;
	}
	assert_int_equal(harness_wait_until(closing_one, h, 10000), 0);
	print_message("%llu messages queued, %llu bytes held as the close began\n",
		      (unsigned long long)queued,
		      (unsigned long long)harness_metrics(h).queued_bytes);
	if (cc->flushes) {
		/* Still held for the client, who has read nothing yet (the
		 * kernel may have taken some more meanwhile). */
		assert_true(harness_metrics(h).queued_bytes > 0);
	} else {
		assert_int_equal(harness_wait_until(harness_nothing_queued, h, 5000), 0);
	}
	got = read_errors(c);
	assert_int_equal(wsc_close_code(c), cc->code);
	if (cc->flushes)
		assert_int_equal(got, (int)queued);
	else
		assert_true(got < (int)queued);
	free(big);
	wsc_free(c);
	wsc_free(newer);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, (int)cc->cause,
					     "q", 1, 5000), 0);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, (int)cc->cause,
					"q"), 1);
	harness_stop(h);
}

static void test_flush_or_drop_by_cause(void **state)
{
	static const struct close_case cases[] = {
		{ "lifetime", BY_LIFETIME, WSM_CAUSE_LIFETIME,
		  WSM_CLOSE_LIFETIME, true },
		{ "eviction", BY_EVICTION, WSM_CAUSE_EVICTED, WSM_CLOSE_EVICTED,
		  true },
		{ "session close", BY_SESSION_CLOSE, WSM_CAUSE_SESSION_CLOSED,
		  WSM_CLOSE_SESSION_CLOSED, true },
		{ "drain", BY_DRAIN, WSM_CAUSE_SHUTDOWN, WSM_CLOSE_GOING_AWAY,
		  true },
		{ "stale", BY_STALE, WSM_CAUSE_STALE, WSM_CLOSE_STALE, false },
		{ "binary frame", BY_BINARY_FRAME, WSM_CAUSE_PROTOCOL,
		  WSM_CLOSE_UNSUPPORTED, false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_close_case(&cases[i]);
}

/*
 * A client that takes the close frame but never answers it (nor closes
 * its socket) is dropped once WSM_OPT_CLOSE_GRACE_MS, rounded up to a
 * second, has passed: not at lws's own 5 s close-ack timeout, and not
 * before the grace either.
 */
static void test_close_grace(void **state)
{
	harness_t *h;
	wsc_t *c;
	int64_t t0, took;

	(void)state;
	h = HARNESS_START(NULL, { WSM_OPT_CLOSE_GRACE_MS, 1000 });
	assert_non_null(h);
	c = must_join(h, "deaf");
	t0 = now_ms();
	assert_int_equal(wsm_session_close(harness_mgr(h), "deaf"), 1);
	assert_int_equal(harness_wait_until(harness_no_connections, h, 10000), 0);
	took = now_ms() - t0;
	print_message("grace 1000 ms: dropped after %lld ms\n", (long long)took);
	assert_true(took < 4000);
	/* It was the grace that ended it: the client never sent a close. */
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE,
					WSM_CAUSE_SESSION_CLOSED, "deaf"), 1);
	wsc_free(c);
	harness_stop(h);

	h = HARNESS_START(NULL, { WSM_OPT_CLOSE_GRACE_MS, 3000 });
	assert_non_null(h);
	c = must_join(h, "deaf");
	assert_int_equal(wsm_session_close(harness_mgr(h), "deaf"), 1);
	/* Not before the grace: still held 1.5 s in. */
	assert_int_equal(harness_wait_until(harness_no_connections, h, 1500), -1);
	assert_int_equal(harness_wait_until(harness_no_connections, h, 10000), 0);
	wsc_free(c);
	harness_stop(h);
}

/* Raw bytes from the client's socket until EOF or a quiet spell of ms. */
static size_t read_raw(int fd, unsigned char *buf, size_t size, int ms,
		       bool *eof)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;

	*eof = false;
	while (got < size && poll(&pfd, 1, ms) == 1) {
		n = recv(fd, buf + got, size - got, 0);
		if (n <= 0) {
			*eof = true;
			break;
		}
		got += (size_t)n;
	}
	return got;
}

/*
 * A manager destroyed while a close frame of libwsm's waits for its answer
 * drops the connection: the client sees that one close frame (4003 here),
 * then the end of the stream, never a second close frame.
 */
static void test_destroy_after_close_frame(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_CLOSE_GRACE_MS, 60000 });
	unsigned char buf[256];
	size_t n;
	bool eof;
	wsc_t *c;

	(void)state;
	assert_non_null(h);
	c = must_join(h, "once");
	assert_int_equal(wsm_session_close(harness_mgr(h), "once"), 1);
	/* Read it raw, so that nothing answers it. */
	n = read_raw(wsc_fd(c), buf, sizeof(buf), 2000, &eof);
	assert_false(eof);
	assert_true(n >= 4);
	assert_int_equal(buf[0], 0x88); /* FIN, close */
	assert_int_equal(buf[1] & 0x7f, n - 2);
	assert_int_equal(buf[2] << 8 | buf[3], WSM_CLOSE_SESSION_CLOSED);
	harness_destroy_manager(h);
	n = read_raw(wsc_fd(c), buf, sizeof(buf), 5000, &eof);
	assert_true(eof);
	assert_int_equal(n, 0);
	wsc_free(c);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_grace),
		cmocka_unit_test(test_destroy_after_close_frame),
		cmocka_unit_test(test_flush_or_drop_by_cause),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
