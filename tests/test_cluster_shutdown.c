/*
 * A cluster node going away cleanly. wsm_drain() waits, within its window,
 * for Redis to confirm what the node accepted before it closes its own
 * clients (who get a message only through Redis) and before it reports the
 * drain done; wsm_manager_destroy() tells the host of every session whose
 * broadcasts it drops unconfirmed. And a flapping link is told to the host
 * at a bounded rate, counted every time.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>

#include "support/cluster_must.h"
#include "support/redis_server.h"

static bool outbox_holds(void *arg)
{
	return harness_metrics(arg).cluster_outbox_messages > 0;
}

struct shutdown {
	int64_t window_ms, timeout_ms;
	int drained, waited;
	uint64_t outbox_after;
};

/* What a host does on SIGTERM: drain, then wait (bounded) on its thread. */
static void drain_and_wait(harness_t *h, void *arg)
{
	struct shutdown *a = arg;
	wsm_metrics_t mx;

	a->drained = wsm_drain(harness_mgr(h), a->window_ms);
	a->waited = wsm_drain_wait(harness_mgr(h), a->timeout_ms);
	memset(&mx, 0, sizeof(mx));
	mx.size = sizeof(mx);
	wsm_metrics(harness_mgr(h), &mx);
	a->outbox_after = mx.cluster_outbox_messages;
}

/*
 * A producer node with no client of its own: its last broadcast, accepted
 * while Redis held every command back, still reaches the clients on
 * another node after that node drained and went away.
 */
static void test_drain_waits_for_the_outbox(void **state)
{
	struct shutdown sd = { 5000, 5000, -1, -1, 99 };
	struct redis_server r;
	harness_t *producer, *viewer;
	wsc_t *c;
	int64_t seq;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	viewer = must_node(r.url, "node-v");
	producer = must_node(r.url, "node-p");
	c = must_join(viewer, "last-words");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(producer),
						"last-words", 50, NULL, NULL),
			 0);
	seq = must_next(c, "progress", NULL);
	/* Redis takes no command for a while: the error waits in the outbox. */
	must_redis(&r, "CLIENT PAUSE 400 ALL");
	assert_int_equal(wsm_broadcast_error(harness_mgr(producer),
					     "last-words", "disk full"),
			 0);
	assert_int_equal(harness_call(producer, drain_and_wait, &sd), 0);
	assert_int_equal(sd.drained, 0);
	assert_int_equal(sd.waited, WSM_OK);
	assert_int_equal(sd.outbox_after, 0);
	assert_int_equal(harness_events(producer, WSM_EVENT_DRAINED, -1, NULL),
			 1);
	harness_stop(producer);
	assert_int_equal(must_next(c, "error", NULL), seq + 1);
	wsc_free(c);
	harness_stop(viewer);
	redis_stop(&r);
}

static void *read_error_then_close(void *arg)
{
	wsc_t *c = arg;
	json_t *j = recv_type(c, "error", 5000);

	if (j) {
		json_decref(j);
		wsc_wait_close(c, 5000);
	}
	return j ? c : NULL;
}

/*
 * A node with clients of its own: they get its last broadcast (which comes
 * to them through Redis) before their 1001, and so do the clients on
 * another node.
 */
static void test_drain_delivers_before_closing(void **state)
{
	struct shutdown sd = { 2000, 5000, -1, -1, 99 };
	struct redis_server r;
	harness_t *leaving, *staying;
	wsc_t *here, *there;
	pthread_t th;
	void *got;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	staying = must_node(r.url, "node-s");
	leaving = must_node(r.url, "node-l");
	here = must_join(leaving, "goodbye");
	there = must_join(staying, "goodbye");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(leaving), "goodbye",
						10, NULL, NULL),
			 0);
	must_next(here, "progress", NULL);
	must_next(there, "progress", NULL);
	must_redis(&r, "CLIENT PAUSE 300 ALL");
	assert_int_equal(wsm_broadcast_error(harness_mgr(leaving), "goodbye",
					     "shutting down"),
			 0);
	assert_int_equal(pthread_create(&th, NULL, read_error_then_close, here),
			 0);
	assert_int_equal(harness_call(leaving, drain_and_wait, &sd), 0);
	pthread_join(th, &got);
	assert_ptr_equal(got, here);
	assert_int_equal(wsc_close_code(here), WSM_CLOSE_GOING_AWAY);
	assert_int_equal(sd.drained, 1);
	assert_int_equal(sd.waited, WSM_OK);
	assert_int_equal(sd.outbox_after, 0);
	must_next(there, "error", NULL);
	wsc_free(here);
	wsc_free(there);
	harness_stop(leaving);
	harness_stop(staying);
	redis_stop(&r);
}

/*
 * Redis stopped: the drain's window ends with the outbox full, the wait
 * says so, and the destroy tells the host which sessions lost what.
 */
static void test_destroy_tells_what_it_drops(void **state)
{
	struct shutdown sd = { 100, 2000, -1, -1, 0 };
	struct redis_server r;
	harness_t *h;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = must_node(r.url, "node-d");
	/* Stopped, not killed: connects still succeed, nothing is answered. */
	assert_int_equal(kill(r.pid, SIGSTOP), 0);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(h), "d1", NULL), 0);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "d2", 5, NULL,
						NULL),
			 0);
	assert_int_equal(harness_wait_until(outbox_holds, h, 5000), 0);
	assert_int_equal(harness_call(h, drain_and_wait, &sd), 0);
	assert_int_equal(sd.waited, WSM_ETIMEDOUT);
	assert_int_equal(sd.outbox_after, 1);
	/* The drain is over all the same: its window is. */
	assert_int_equal(harness_events(h, WSM_EVENT_DRAINED, -1, NULL), 1);
	assert_int_equal(harness_events(h, WSM_EVENT_CLUSTER_DROPPED, -1, NULL),
			 0);
	harness_destroy_manager(h);
	assert_int_equal(harness_events(h, WSM_EVENT_CLUSTER_DROPPED,
					WSM_CAUSE_SHUTDOWN, NULL),
			 2);
	assert_int_equal(harness_events(h, WSM_EVENT_CLUSTER_DROPPED, -1, "d1"),
			 1);
	assert_int_equal(harness_events(h, WSM_EVENT_CLUSTER_DROPPED, -1, "d2"),
			 1);
	harness_stop(h);
	kill(r.pid, SIGCONT);
	redis_stop(&r);
}

struct flap {
	harness_t *h;
	uint64_t losses;
};

static bool lost_and_back(void *arg)
{
	struct flap *f = arg;
	wsm_metrics_t mx = harness_metrics(f->h);

	return mx.cluster_link_losses > f->losses && mx.cluster_link_up;
}

/*
 * A link that goes down and up six times within a second gives the host
 * the first change and then at most one event per second, each loss still
 * counted; a lasting outage is told, and so is the recovery.
 */
static void test_flapping_link_is_told_at_a_bounded_rate(void **state)
{
	struct cluster_node_opts o = { .retry_max_ms = 1000 };
	struct redis_server r;
	struct flap f;
	size_t downs, ups, ups_before;
	int64_t began, took;
	int i;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	f.h = cluster_node_start(r.url, "node-f", &o);
	assert_non_null(f.h);
	ups_before = harness_events(f.h, WSM_EVENT_CLUSTER_UP, -1, NULL);
	began = now_ms();
	for (i = 0; i < 6; i++) {
		f.losses = harness_metrics(f.h).cluster_link_losses;
		must_redis(&r, "CLIENT KILL TYPE normal");
		assert_int_equal(harness_wait_until(lost_and_back, &f, 5000), 0);
	}
	took = now_ms() - began;
	assert_true(harness_metrics(f.h).cluster_link_losses >= 6);
	downs = harness_events(f.h, WSM_EVENT_CLUSTER_DOWN, -1, NULL);
	ups = harness_events(f.h, WSM_EVENT_CLUSTER_UP, -1, NULL);
	/*
	 * At most one event per second after the first (and the one a timer
	 * may owe), however slow the flaps were (valgrind): never one per
	 * flap, which is 12 here.
	 */
	print_message("6 flaps in %lld ms: %zu down, %zu up events\n",
		      (long long)took, downs, ups - ups_before);
	assert_true(downs + ups - ups_before <= 2 + (size_t)(took / 1000));
	/* A lasting outage is told, spacing or not, and so is the end. */
	redis_kill(&r, SIGKILL);
	assert_int_equal(harness_wait_events(f.h, WSM_EVENT_CLUSTER_DOWN, -1,
					     NULL, downs + 1, 5000),
			 0);
	assert_int_equal(redis_restart(&r), 0);
	assert_int_equal(harness_wait_events(f.h, WSM_EVENT_CLUSTER_UP, -1,
					     NULL, ups + 1, 5000),
			 0);
	harness_stop(f.h);
	redis_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drain_waits_for_the_outbox),
		cmocka_unit_test(test_drain_delivers_before_closing),
		cmocka_unit_test(test_destroy_tells_what_it_drops),
		cmocka_unit_test(test_flapping_link_is_told_at_a_bounded_rate),
	};

	signal(SIGPIPE, SIG_IGN);
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
