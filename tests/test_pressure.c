/*
 * Delivery under pressure: a client that never reads stays within its queue
 * bound and is closed as a slow consumer without hurting anyone else; late
 * joiners and reconnecting clients are shown the truth (replay, resume,
 * reset); retention is bounded and expires; lifetime closes are spread; a
 * drain closes everyone with 1001 after their messages.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "support/must.h"

static harness_t *start(int64_t retention_ms, int64_t max_sessions)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_RETENTION_MS, retention_ms },
				     { WSM_OPT_RETAIN_MAX_SESSIONS, max_sessions },
				     { WSM_OPT_MAX_QUEUED_BYTES, 262144 },
				     { WSM_OPT_MAX_TEXT_LEN, 65536 });

	assert_non_null(h);
	return h;
}

static const char *type_of(json_t *j)
{
	return json_string_value(json_object_get(j, "type"));
}

static json_int_t int_of(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

/* The job finished before anyone connected: a late joiner sees it all. */
static void test_late_joiner_gets_retained_state(void **state)
{
	harness_t *h = start(60000, 100);
	wsm_manager_t *m = harness_mgr(h);
	wsc_t *c;
	json_t *j;

	(void)state;
	assert_int_equal(wsm_broadcast_progress(m, "early", 40, "a", "s1"), 0);
	assert_int_equal(wsm_broadcast_progress(m, "early", 90, "b", "s2"), 0);
	assert_int_equal(wsm_broadcast_complete(m, "early", "{\"n\":7}"), 0);
	c = must_join(h, "early");
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(type_of(j), "progress");
	assert_int_equal(int_of(j, "seq"), 2);
	assert_true(json_real_value(json_object_get(j, "progress")) == 90.0);
	json_decref(j);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(type_of(j), "complete");
	assert_int_equal(int_of(j, "seq"), 3);
	assert_int_equal(int_of(json_object_get(j, "metadata"), "n"), 7);
	json_decref(j);
	assert_int_equal(wsc_recv(c, NULL, NULL, 100), 0);
	assert_int_equal(harness_metrics(h).retained_sessions, 0);
	wsc_free(c);
	harness_stop(h);
}

/* A reconnect that says what it saw gets only what is newer. */
static void test_resume_gets_only_newer(void **state)
{
	harness_t *h = start(60000, 100);
	wsm_manager_t *m = harness_mgr(h);
	char path[128];
	json_int_t epoch;
	wsc_t *c;
	json_t *j;

	(void)state;
	c = must_join(h, "res");
	assert_int_equal(wsm_broadcast_progress(m, "res", 10, NULL, NULL), 0);
	j = recv_json(c, 5000);
	assert_non_null(j);
	epoch = int_of(j, "epoch");
	assert_true(epoch > 0);
	assert_int_equal(int_of(j, "seq"), 1);
	json_decref(j);
	wsc_free(c); /* drops: the session is kept for replay */
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, -1, "res", 1,
					     5000), 0);
	assert_int_equal(wsm_broadcast_complete(m, "res", NULL), 0);

	snprintf(path, sizeof(path), "res?lastSeq=1&epoch=%lld", (long long)epoch);
	c = must_join(h, path);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(type_of(j), "complete");
	assert_int_equal(int_of(j, "seq"), 2);
	assert_int_equal(int_of(j, "epoch"), epoch);
	json_decref(j);
	assert_int_equal(wsc_recv(c, NULL, NULL, 100), 0);
	wsc_free(c);

	/* Up to date already: nothing is replayed. */
	snprintf(path, sizeof(path), "res?lastSeq=2&epoch=%lld", (long long)epoch);
	c = must_join(h, path);
	assert_int_equal(wsc_recv(c, NULL, NULL, 150), 0);
	wsc_free(c);
	harness_stop(h);
}

/* A client from an older life of the session is told to reset first. */
static void test_epoch_mismatch_resets(void **state)
{
	harness_t *h = start(60000, 100);
	wsm_manager_t *m = harness_mgr(h);
	wsc_t *c;
	json_t *j;

	(void)state;
	assert_int_equal(wsm_broadcast_progress(m, "ep", 55, NULL, NULL), 0);
	c = must_join(h, "ep?lastSeq=9&epoch=12345");
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(type_of(j), "reset");
	assert_int_equal(int_of(j, "seq"), 1);
	assert_true(int_of(j, "epoch") != 12345);
	json_decref(j);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(type_of(j), "progress");
	json_decref(j);
	assert_int_equal(harness_metrics(h).resets, 1);
	wsc_free(c);
	/* A malformed resume is refused with 400 before the upgrade. */
	{
		int status = 0;

		assert_null(join_session(h, "ep?lastSeq=x1", &status));
		assert_int_equal(status, 400);
		assert_int_equal(harness_metrics(h).refused[WSM_REFUSAL_BAD_RESUME],
				 1);
	}
	harness_stop(h);
}

/*
 * The right epoch with a seq the session never reached (a client confused
 * about its state, or 2^64-1): a reset, then the whole retained state.
 */
static void test_seq_beyond_session_resets(void **state)
{
	static const char *const beyond[] = { "3", "18446744073709551615" };
	harness_t *h = start(60000, 100);
	wsm_manager_t *m = harness_mgr(h);
	json_int_t epoch;
	char path[128];
	wsc_t *c;
	json_t *j;
	size_t i;

	(void)state;
	c = must_join(h, "far");
	assert_int_equal(wsm_broadcast_progress(m, "far", 20, NULL, NULL), 0);
	assert_int_equal(wsm_broadcast_progress(m, "far", 30, NULL, NULL), 0);
	/* Both delivered: the session's seq is 2 before anyone resumes. */
	do {
		j = recv_type(c, "progress", 5000);
		assert_non_null(j);
		epoch = int_of(j, "epoch");
		i = (size_t)int_of(j, "seq");
		json_decref(j);
	} while (i < 2);
	for (i = 0; i < sizeof(beyond) / sizeof(beyond[0]); i++) {
		wsc_t *r;

		snprintf(path, sizeof(path), "far?lastSeq=%s&epoch=%lld",
			 beyond[i], (long long)epoch);
		r = must_join(h, path);
		j = recv_json(r, 5000);
		assert_non_null(j);
		assert_string_equal(type_of(j), "reset");
		assert_int_equal(int_of(j, "seq"), 2);
		assert_int_equal(int_of(j, "epoch"), epoch);
		json_decref(j);
		j = recv_json(r, 5000);
		assert_non_null(j);
		assert_string_equal(type_of(j), "progress");
		assert_int_equal(int_of(j, "seq"), 2);
		json_decref(j);
		assert_int_equal(harness_metrics(h).resets, (uint64_t)i + 1);
		wsc_free(r);
	}
	/* The last seq itself is up to date: no reset, nothing replayed. */
	snprintf(path, sizeof(path), "far?lastSeq=2&epoch=%lld", (long long)epoch);
	wsc_t *up = must_join(h, path);
	assert_int_equal(wsc_recv(up, NULL, NULL, 150), 0);
	assert_int_equal(harness_metrics(h).resets, 2);
	wsc_free(up);
	wsc_free(c);
	harness_stop(h);
}

static bool replay_held(void *arg)
{
	return harness_metrics(arg).queued_bytes > 1024;
}

/*
 * A replay bigger than the byte bound, still queued: its complete (900
 * KiB, which lws takes and keeps flushing to a client that reads nothing
 * yet) and then a progress (a later one, over 1 KiB) that waits in libwsm
 * meanwhile. A live error that fits the bound on its own is queued behind
 * it, not refused, for the replay is outside the bound.
 */
static void test_replay_outside_the_byte_bound(void **state)
{
	/*
	 * The delegating host entry leaves tx_packet_size 0, so lws writes
	 * the complete in 532-byte pieces, one per POLLOUT: the replay's
	 * progress waits in libwsm for hundreds of loop turns, not a few
	 * (the ready entry's 64 KiB sends flush it at once).
	 */
	struct harness_opts delegate = { .mode = HARNESS_DELEGATE };
	harness_t *h = HARNESS_START(&delegate, { WSM_OPT_RETENTION_MS, 60000 },
				     { WSM_OPT_MAX_QUEUED_BYTES, 1024 },
				     { WSM_OPT_MAX_METADATA_LEN, 1048576 });
	wsm_manager_t *m = harness_mgr(h);
	char *meta = malloc(900 * 1024), *pad = repeat_char('p', 1000);
	char *err = repeat_char('e', 600);
	int attempt;
	wsc_t *c;
	json_t *j;

	(void)state;
	assert_non_null(h);
	assert_non_null(meta);
	assert_non_null(pad);
	assert_non_null(err);
	snprintf(meta, 900 * 1024, "{\"pad\":\"%0*d\"}", 900 * 1024 - 20, 0);
	assert_int_equal(wsm_broadcast_complete(m, "huge", meta), 0);
	assert_int_equal(wsm_broadcast_progress(m, "huge", 50,
						pad, NULL),
			 0);
	/* Until the replay is seen waiting in libwsm (on a loaded machine
	 * lws may flush it before the first look): only then does it count. */
	for (attempt = 0; attempt < 5; attempt++) {
		c = wsc_connect_rcvbuf(harness_port(h), PREFIX "huge", 4096, 5000,
				       NULL);
		assert_non_null(c);
		if (harness_wait_until(replay_held, h, 2000) == 0)
			break;
		wsc_free(c);
		assert_int_equal(harness_wait_until(harness_no_connections, h, 5000), 0);
	}
	assert_true(attempt < 5);
	assert_int_equal(wsm_broadcast_error(m, "huge", err), 0);
	j = recv_type(c, "complete", 10000);
	assert_non_null(j);
	json_decref(j);
	must_recv_type(c, "progress");
	must_recv_type(c, "error");
	assert_int_equal(wsc_close_code(c), 0);
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_SLOW_CONSUMER], 0);
	wsc_free(c);
	free(meta);
	free(pad);
	free(err);
	harness_stop(h);
}

/*
 * The smallest queue bounds still hold a late joiner's whole replay: reset,
 * progress and a complete bigger than the byte bound, and the live
 * messages after it get the bound to themselves.
 */
static void test_replay_fits_smallest_queue(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_RETENTION_MS, 60000 },
				     { WSM_OPT_MAX_QUEUED_MESSAGES, 1 },
				     { WSM_OPT_MAX_QUEUED_BYTES, 1024 });
	wsm_manager_t *m = harness_mgr(h);
	char meta[2100];
	wsc_t *c;
	json_t *j;
	int round;

	(void)state;
	assert_non_null(h);
	snprintf(meta, sizeof(meta), "{\"pad\":\"%0*d\"}", 2000, 0);
	assert_int_equal(wsm_broadcast_progress(m, "tiny", 99, NULL, NULL), 0);
	assert_int_equal(wsm_broadcast_complete(m, "tiny", meta), 0);
	/* Every reconnect of the finished job, with a reset or without. */
	for (round = 0; round < 3; round++) {
		c = must_join(h, round ? "tiny?lastSeq=1&epoch=1" : "tiny");
		if (round) {
			j = recv_json(c, 5000);
			assert_non_null(j);
			assert_string_equal(type_of(j), "reset");
			json_decref(j);
		}
		j = recv_json(c, 5000);
		assert_non_null(j);
		assert_string_equal(type_of(j), "progress");
		json_decref(j);
		j = recv_json(c, 5000);
		assert_non_null(j);
		assert_string_equal(type_of(j), "complete");
		assert_int_equal(
			strlen(json_string_value(json_object_get(
				json_object_get(j, "metadata"), "pad"))), 2000);
		json_decref(j);
		wsc_free(c);
	}
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_SLOW_CONSUMER], 0);
	harness_stop(h);
}

struct want {
	harness_t *h;
	uint64_t held;
};

static bool retention_over(void *arg)
{
	struct want *w = arg;
	wsm_metrics_t s = harness_metrics(w->h);

	return s.sessions == 0 && s.retained_sessions == 0 &&
	       s.retained_bytes == 0 && s.held_bytes == w->held;
}

/* Retention ends, and it is bounded: the oldest idle sessions go first. */
static void test_retention_expires_and_is_bounded(void **state)
{
	harness_t *h = start(100, 3);
	wsm_manager_t *m = harness_mgr(h);
	struct want w = { h, harness_metrics(h).held_bytes };
	char session[16];
	wsc_t *c;
	int i;

	(void)state;
	for (i = 0; i < 5; i++) {
		snprintf(session, sizeof(session), "idle-%d", i);
		assert_int_equal(wsm_broadcast_complete(m, session, NULL), 0);
	}
	/* The last broadcast is through once a later connection is open. */
	c = must_join(h, "idle-4");
	must_recv_type(c, "complete");
	assert_int_equal(harness_metrics(h).retained_sessions, 2);
	assert_int_equal(harness_metrics(h).retained_evicted, 2);
	wsc_free(c);
	c = must_join(h, "idle-0"); /* evicted: nothing to replay */
	assert_int_equal(wsc_recv(c, NULL, NULL, 100), 0);
	wsc_free(c);
	assert_int_equal(harness_wait_until(retention_over, &w, 5000), 0);
	harness_stop(h);
}

static bool closing_started(void *arg)
{
	return harness_metrics(arg).closing == 1 ||
	       harness_metrics(arg).closed[WSM_CAUSE_SLOW_CONSUMER] == 1;
}

/*
 * A client that never reads: its queue never holds more than the bound
 * (the library's own high-water mark says so), it is closed with 4004 once
 * an error cannot be queued, and another session's client keeps receiving
 * throughout. What the stuck client then reads is a prefix of what was
 * broadcast, every error of it in order (progress may be superseded), and
 * nothing after the close; the complete sent once the queue was full is
 * not lost: a resume from the last seq it read gets it.
 */
static void test_slow_consumer_is_bounded(void **state)
{
	harness_t *h = start(60000, 100);
	wsm_manager_t *m = harness_mgr(h);
	wsc_t *stuck = must_join(h, "stuck"), *fine = must_join(h, "fine");
	static char big[60001];
	json_int_t seq = 0, errors = 0, epoch = 0, sent;
	char path[128];
	wsm_metrics_t mx;
	json_t *j;
	int i;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	for (i = 0; i < 400 && !closing_started(h); i++) {
		assert_int_equal(wsm_broadcast_error(m, "stuck", big), 0);
		assert_int_equal(wsm_broadcast_progress(m, "stuck", i % 100, NULL,
							NULL), 0);
		assert_int_equal(wsm_broadcast_progress(m, "fine", i % 100, NULL,
							NULL), 0);
		j = recv_json(fine, 5000);
		assert_non_null(j);
		assert_string_equal(type_of(j), "progress");
		json_decref(j);
	}
	assert_int_equal(harness_wait_until(closing_started, h, 5000), 0);
	sent = 2 * (json_int_t)i; /* error, progress: seqs 2k+1, 2k+2 */
	mx = harness_metrics(h);
	assert_true(mx.queue_peak_bytes <= 262144);
	assert_true(mx.queue_peak_bytes > 262144 - 60100); /* it was full */
	/* Dropped at the close, not flushed: gone while the client reads nothing. */
	assert_int_equal(harness_wait_until(harness_nothing_queued, h, 5000), 0);
	assert_int_equal(wsm_broadcast_complete(m, "stuck", NULL), 0);

	/* Now read what the kernel holds: errors 1..k in order, then 4004. */
	while ((j = recv_json(stuck, 10000))) {
		assert_true(int_of(j, "seq") > seq);
		seq = int_of(j, "seq");
		epoch = int_of(j, "epoch");
		if (strcmp(type_of(j), "error") == 0) {
			assert_int_equal(seq, 2 * errors + 1);
			errors++;
		} else {
			assert_string_equal(type_of(j), "progress");
			assert_int_equal(seq % 2, 0);
		}
		json_decref(j);
	}
	assert_int_equal(wsc_close_code(stuck), WSM_CLOSE_SLOW_CONSUMER);
	assert_true(errors >= 1);
	assert_true(seq < sent); /* the queue was dropped, not flushed */
	wsc_free(stuck);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE,
					     WSM_CAUSE_SLOW_CONSUMER, "stuck", 1,
					     5000), 0);
	snprintf(path, sizeof(path), "stuck?lastSeq=%lld&epoch=%lld",
		 (long long)seq, (long long)epoch);
	stuck = must_join(h, path);
	j = recv_type(stuck, "complete", 5000);
	assert_non_null(j);
	assert_int_equal(int_of(j, "seq"), sent + 1);
	json_decref(j);
	wsc_free(stuck);

	assert_int_equal(wsm_broadcast_complete(m, "fine", NULL), 0);
	must_recv_type(fine, "complete");
	assert_int_equal(wsc_close_code(fine), 0);
	wsc_free(fine);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE,
					WSM_CAUSE_SLOW_CONSUMER, NULL), 1);
	harness_stop(h);
}

/*
 * Watches n clients at once (answering pings) and notes when each one's
 * close arrived and its code; 0 once all closed within timeout_ms.
 */
static int watch_closes(wsc_t **c, int n, int64_t *closed_at, int *code,
			int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	int i, open = n;

	for (i = 0; i < n; i++)
		code[i] = 0;
	while (open && now_ms() < end)
		for (i = 0; i < n; i++) {
			if (code[i] || !(code[i] = wsc_wait_close(c[i], 1)))
				continue;
			closed_at[i] = now_ms();
			open--;
		}
	return open ? -1 : 0;
}

/*
 * Connections opened together do not all expire together: with 50 %
 * jitter on 600 ms each lives between 300 and 600 ms. Timed from before
 * its upgrade, a connection can only look longer-lived than it was, so
 * one that looks shorter than 550 ms proves the jitter (with it off, none
 * can; with it on, all 12 above 550 ms has odds of (50/300)^12, ~1e-9).
 * And they are spread over the window, not bunched at one point of it
 * (its floor, say): 12 lifetimes drawn over 300 ms all within 80 ms of
 * each other has odds of 12 (80/300)^11, ~6e-6.
 */
static void test_lifetime_closes_are_spread(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_MAX_LIFETIME_MS, 600 },
				     { WSM_OPT_LIFETIME_JITTER_PERCENT, 50 },
				     { WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 20 });
	int64_t asked[12], closed_at[12], shortest = INT64_MAX, longest = 0;
	int code[12];
	wsc_t *c[12];
	int i;

	(void)state;
	assert_non_null(h);
	for (i = 0; i < 12; i++) {
		asked[i] = now_ms();
		c[i] = must_join(h, "herd");
	}
	assert_int_equal(watch_closes(c, 12, closed_at, code, 5000), 0);
	for (i = 0; i < 12; i++) {
		assert_int_equal(code[i], WSM_CLOSE_LIFETIME);
		/* Never before the jitter's floor, half the lifetime. */
		assert_true(closed_at[i] - asked[i] >= 300);
		if (closed_at[i] - asked[i] < shortest)
			shortest = closed_at[i] - asked[i];
		if (closed_at[i] - asked[i] > longest)
			longest = closed_at[i] - asked[i];
		wsc_free(c[i]);
	}
	print_message("lifetimes seen: %lld to %lld ms\n", (long long)shortest,
		      (long long)longest);
	assert_true(shortest < 550);
	assert_true(longest - shortest >= 80);
	harness_stop(h);
}

/*
 * With no jitter every connection lives its whole lifetime: never closed
 * before it (timed from before the upgrade), and closed once it is over
 * (timed from after the upgrade, well within a second more).
 */
static void test_lifetime_exact_without_jitter(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_MAX_LIFETIME_MS, 500 },
				     { WSM_OPT_LIFETIME_JITTER_PERCENT, 0 },
				     { WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 20 });
	int64_t asked[4], opened[4], closed_at[4];
	int code[4];
	wsc_t *c[4];
	int i;

	(void)state;
	assert_non_null(h);
	for (i = 0; i < 4; i++) {
		asked[i] = now_ms();
		c[i] = must_join(h, "exact");
		opened[i] = now_ms();
	}
	assert_int_equal(watch_closes(c, 4, closed_at, code, 5000), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(code[i], WSM_CLOSE_LIFETIME);
		assert_true(closed_at[i] - asked[i] >= 500);
		assert_true(closed_at[i] - opened[i] < 1500);
		wsc_free(c[i]);
	}
	harness_stop(h);
}

struct drain_args {
	int64_t window_ms;
	int result, complete_rc;
};

/* On the service thread: results for the test to assert. */
static void drain_on_service_thread(harness_t *h, void *arg)
{
	struct drain_args *a = arg;

	a->complete_rc = wsm_broadcast_complete(harness_mgr(h), "dr", "{}");
	a->result = wsm_drain(harness_mgr(h), a->window_ms);
}

/* Drain: terminal messages first, then 1001 for all, newcomers get 503. */
static void test_drain(void **state)
{
	harness_t *h = start(60000, 100);
	struct drain_args args = { 200, -1, -1 };
	wsc_t *c[4];
	json_t *j;
	int i, status = 0;

	(void)state;
	assert_int_equal(wsm_drain(harness_mgr(h), 10), WSM_ETHREAD);
	for (i = 0; i < 4; i++)
		c[i] = must_join(h, "dr");
	assert_int_equal(harness_call(h, drain_on_service_thread, &args), 0);
	assert_int_equal(args.complete_rc, 0);
	assert_int_equal(args.result, 4);
	assert_null(join_session(h, "dr", &status));
	assert_int_equal(status, 503);
	for (i = 0; i < 4; i++) {
		j = recv_json(c[i], 5000);
		assert_non_null(j);
		assert_string_equal(type_of(j), "complete");
		json_decref(j);
		assert_int_equal(wsc_wait_close(c[i], 5000), WSM_CLOSE_GOING_AWAY);
		wsc_free(c[i]);
	}
	assert_int_equal(harness_wait_events(h, WSM_EVENT_DRAINED, -1, NULL, 1,
					     5000), 0);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_SHUTDOWN,
					"dr"), 4);
	harness_stop(h);
}

/*
 * The drain's closes are spread over its window, evenly (the i-th of n at
 * i/n of it), not sent together; WSM_EVENT_DRAINED comes once, after the
 * last, and never again.
 */
static void test_drain_spreads_closes(void **state)
{
	harness_t *h = start(60000, 100);
	struct drain_args args = { 1000, -1, -1 };
	int64_t begun, closed_at[5], first = INT64_MAX, last = 0;
	int code[5], i;
	wsc_t *c[5];

	(void)state;
	for (i = 0; i < 5; i++)
		c[i] = must_join(h, "spread");
	begun = now_ms();
	assert_int_equal(harness_call(h, drain_on_service_thread, &args), 0);
	assert_int_equal(args.result, 5);
	assert_int_equal(watch_closes(c, 5, closed_at, code, 10000), 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(code[i], WSM_CLOSE_GOING_AWAY);
		first = closed_at[i] < first ? closed_at[i] : first;
		last = closed_at[i] > last ? closed_at[i] : last;
		wsc_free(c[i]);
	}
	/* Due at 0, 200, 400, 600 and 800 ms: never sooner. */
	print_message("drain closes from %lld to %lld ms\n",
		      (long long)(first - begun), (long long)(last - begun));
	assert_true(last - begun >= 800);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_DRAINED, -1, NULL, 1,
					     5000), 0);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_SHUTDOWN,
					"spread"), 5);
	/* Once: a later sweep or drain call finds nothing to report. */
	assert_int_equal(harness_sweep(h), 0);
	assert_int_equal(harness_call(h, drain_on_service_thread, &args), 0);
	assert_int_equal(args.result, 0);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_DRAINED, -1, NULL, 2,
					     300), -1);
	harness_stop(h);
}

struct wait_args {
	int64_t window_ms, timeout_ms;
	int drained, waited;
	uint64_t held_after;
};

/* What a host does at shutdown: drain, then wait, bounded, on its thread. */
static void drain_and_wait(harness_t *h, void *arg)
{
	struct wait_args *a = arg;
	wsm_metrics_t mx;

	a->drained = wsm_drain(harness_mgr(h), a->window_ms);
	a->waited = wsm_drain_wait(harness_mgr(h), a->timeout_ms);
	memset(&mx, 0, sizeof(mx));
	mx.size = sizeof(mx);
	wsm_metrics(harness_mgr(h), &mx);
	a->held_after = mx.connections;
}

static void *answer_close(void *arg)
{
	wsc_wait_close(arg, 10000);
	return NULL;
}

/*
 * wsm_drain_wait(): returns once every connection is gone, whether the
 * clients answer the close (they do here) or not (the close grace ends
 * them), and with WSM_ETIMEDOUT when its own bound comes first.
 */
static void test_drain_wait(void **state)
{
	struct wait_args quick = { 100, 10000, -1, -1, 99 };
	struct wait_args slow = { 3000, 50, -1, -1, 0 };
	struct wait_args deaf = { 0, 9000, -1, -1, 99 };
	pthread_t th[3];
	harness_t *h;
	wsc_t *c[3];
	int i;

	(void)state;
	h = HARNESS_START(NULL, { WSM_OPT_CLOSE_GRACE_MS, 1000 });
	assert_non_null(h);
	for (i = 0; i < 3; i++) {
		c[i] = must_join(h, "dw");
		assert_int_equal(pthread_create(&th[i], NULL, answer_close, c[i]), 0);
	}
	assert_int_equal(harness_call(h, drain_and_wait, &quick), 0);
	for (i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(wsc_close_code(c[i]), WSM_CLOSE_GOING_AWAY);
		wsc_free(c[i]);
	}
	assert_int_equal(quick.drained, 3);
	assert_int_equal(quick.waited, 0);
	assert_int_equal(quick.held_after, 0);
	assert_int_equal(harness_events(h, WSM_EVENT_DRAINED, -1, NULL), 1);
	assert_int_equal(wsm_drain_wait(harness_mgr(h), 10), WSM_ETHREAD);
	harness_stop(h);

	/*
	 * The window outlasts the wait (the second of two closes is due
	 * 1.5 s in): told so, that connection still held.
	 */
	h = HARNESS_START(NULL, { WSM_OPT_CLOSE_GRACE_MS, 1000 });
	assert_non_null(h);
	c[0] = must_join(h, "dw");
	c[1] = must_join(h, "dw");
	assert_int_equal(harness_call(h, drain_and_wait, &slow), 0);
	assert_int_equal(slow.waited, WSM_ETIMEDOUT);
	assert_true(slow.held_after >= 1);
	wsc_free(c[0]);
	wsc_free(c[1]);
	harness_stop(h);

	/* A client that never reads: the close grace ends it, the wait too. */
	h = HARNESS_START(NULL, { WSM_OPT_CLOSE_GRACE_MS, 1000 });
	assert_non_null(h);
	c[0] = must_join(h, "dw");
	assert_int_equal(harness_call(h, drain_and_wait, &deaf), 0);
	assert_int_equal(deaf.waited, 0);
	assert_int_equal(deaf.held_after, 0);
	wsc_free(c[0]);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_late_joiner_gets_retained_state),
		cmocka_unit_test(test_resume_gets_only_newer),
		cmocka_unit_test(test_epoch_mismatch_resets),
		cmocka_unit_test(test_seq_beyond_session_resets),
		cmocka_unit_test(test_replay_fits_smallest_queue),
		cmocka_unit_test(test_replay_outside_the_byte_bound),
		cmocka_unit_test(test_drain_wait),
		cmocka_unit_test(test_retention_expires_and_is_bounded),
		cmocka_unit_test(test_slow_consumer_is_bounded),
		cmocka_unit_test(test_lifetime_closes_are_spread),
		cmocka_unit_test(test_lifetime_exact_without_jitter),
		cmocka_unit_test(test_drain_spreads_closes),
		cmocka_unit_test(test_drain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
