/*
 * Whole-life properties: teardown on every kind of disconnect, metrics that
 * match what happened, held bytes back to their baseline after many cycles,
 * and destroy with live connections and pending cross-thread broadcasts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "support/must.h"

/* Sessions outlive their connections for replay: keep that short here. */
static harness_t *start_with_retention(int64_t ms)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_RETENTION_MS, ms });

	assert_non_null(h);
	return h;
}

struct gauge_want {
	harness_t *h;
	uint64_t connections, sessions, held;
};

static bool gauges_are(void *arg)
{
	struct gauge_want *w = arg;
	wsm_metrics_t s = harness_metrics(w->h);

	return s.connections == w->connections && s.sessions == w->sessions &&
	       (!w->held || s.held_bytes == w->held);
}

/* Abrupt drop, polite close: each torn down once, with the right cause. */
static void test_cleanup_on_disconnect(void **state)
{
	harness_t *h = start_with_retention(20);
	uint64_t baseline = harness_metrics(h).held_bytes;
	struct gauge_want w = { h, 0, 0, 0 };
	wsc_t *dropped = must_join(h, "cd"), *polite = must_join(h, "cd");
	wsm_metrics_t s = harness_metrics(h);

	(void)state;
	assert_int_equal(s.connections, 2);
	assert_int_equal(s.active, 2);
	assert_int_equal(s.sessions, 1);
	assert_int_equal(s.opened, 2);
	assert_true(s.held_bytes > baseline);

	wsc_free(dropped);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_ERROR,
					     "cd", 1, 5000), 0);
	assert_int_equal(harness_metrics(h).connections, 1);

	assert_int_equal(wsc_send_close(polite, 1000), 0);
	assert_int_equal(wsc_wait_close(polite, 5000), 1000);
	wsc_free(polite);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_PEER,
					     "cd", 1, 5000), 0);
	w.held = baseline;
	assert_int_equal(harness_wait_until(gauges_are, &w, 5000), 0);
	s = harness_metrics(h);
	assert_int_equal(s.closed[WSM_CAUSE_ERROR], 1);
	assert_int_equal(s.closed[WSM_CAUSE_PEER], 1);
	assert_int_equal(s.closing, 0);
	/* Exactly one close event per open event. */
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, -1, NULL), 2);
	harness_stop(h);
}

/*
 * Many connect / receive / disconnect cycles across sessions: the library's
 * held bytes come back to the baseline exactly, and counters add up.
 */
static void test_memory_stability(void **state)
{
	/* No replay state here, so every counter below is exact. */
	harness_t *h = start_with_retention(0);
	uint64_t baseline = harness_metrics(h).held_bytes;
	struct gauge_want w = { h, 0, 0, baseline };
	char session[32];
	wsc_t *c[4];
	json_t *j;
	int round, i;

	(void)state;
	for (round = 0; round < 60; round++) {
		snprintf(session, sizeof(session), "mem-%d", round % 7);
		for (i = 0; i < 4; i++)
			c[i] = must_join(h, session);
		assert_int_equal(wsm_broadcast_progress(harness_mgr(h), session,
							round % 100, "m", "s"), 0);
		for (i = 0; i < 4; i++) {
			j = recv_json(c[i], 5000);
			assert_non_null(j);
			json_decref(j);
			if (i % 2)
				wsc_send_close(c[i], 1000);
			wsc_free(c[i]);
		}
		/* A session nobody watches and a refused upgrade cost nothing. */
		assert_int_equal(wsm_broadcast_error(harness_mgr(h), "nobody", "x"), 0);
		assert_null(join_session(h, "bad.id", NULL));
	}
	assert_int_equal(harness_wait_until(gauges_are, &w, 10000), 0);
	assert_int_equal(harness_metrics(h).opened, 240);
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_PEER] +
				 harness_metrics(h).closed[WSM_CAUSE_ERROR],
			 240);
	assert_int_equal(harness_metrics(h).messages_sent, 240);
	assert_int_equal(harness_metrics(h).unrouted, 60);
	assert_int_equal(harness_metrics(h).refused_bad_request, 60);
	harness_stop(h);
}

/* On the service thread: failures are counted for the test to assert. */
static void queue_then_destroy(harness_t *h, void *arg)
{
	wsm_manager_t *m = harness_mgr(h);
	int *failures = arg, i;

	/* Queued from the service thread itself: still in the inbox below. */
	for (i = 0; i < 20; i++)
		*failures += wsm_broadcast_progress(m, "live", i, "pending",
						    NULL) != 0;
	*failures += wsm_broadcast_complete(m, "live", "{\"x\":1}") != 0;
	wsm_manager_destroy(m);
}

/* Destroy closes live connections with 1001 and frees what is pending. */
static void test_destroy_with_live_connections(void **state)
{
	harness_t *h = harness_start(NULL, NULL);
	wsm_manager_t *m = harness_mgr(h);
	wsc_t *c[3];
	int i, status, failures = 0;

	(void)state;
	for (i = 0; i < 3; i++)
		c[i] = must_join(h, i < 2 ? "live" : "other");
	assert_int_equal(harness_call(h, queue_then_destroy, &failures), 0);
	assert_int_equal(failures, 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(wsc_wait_close(c[i], 5000), WSM_CLOSE_GOING_AWAY);
		wsc_free(c[i]);
	}
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_SHUTDOWN,
					NULL), 3);
	/* The handle is dead: every call says so, none crashes. */
	assert_int_equal(wsm_broadcast_progress(m, "live", 1, NULL, NULL),
			 WSM_ESHUTDOWN);
	assert_int_equal(wsm_session_close(m, "live"), WSM_ESHUTDOWN);
	/* The loop still runs; the protocol now refuses newcomers. */
	assert_null(join_session(h, "live", &status));
	assert_int_equal(status, 503);
	harness_stop(h);
}

/*
 * The other order: the lws context goes first (its CLOSED callbacks tear the
 * connections down), then the manager; on both loops, nothing leaks.
 */
static void context_first(bool libuv)
{
	struct harness_opts opts = { .mode = HARNESS_READY, .libuv = libuv,
				      .context_first = true };
	harness_t *h = harness_start(NULL, &opts);
	wsc_t *c = must_join(h, "ctx");

	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "ctx", 1, NULL,
						NULL), 0);
	must_recv_type(c, "progress");
	harness_stop(h);
	/* The context went first: lws ends it, with or without a frame. */
	{
		int code = wsc_wait_close(c, 5000);

		assert_true(code == 1006 || code == WSM_CLOSE_GOING_AWAY);
	}
	wsc_free(c);
}

static void test_context_destroyed_first(void **state)
{
	(void)state;
	context_first(false);
}

static void test_context_destroyed_first_libuv(void **state)
{
	(void)state;
	context_first(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cleanup_on_disconnect),
		cmocka_unit_test(test_memory_stability),
		cmocka_unit_test(test_destroy_with_live_connections),
		cmocka_unit_test(test_context_destroyed_first),
		cmocka_unit_test(test_context_destroyed_first_libuv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
