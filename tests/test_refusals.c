/*
 * Redis refusing a node's commands. A session's state that does not read
 * (another type under its key, fields that are not numbers) costs that
 * session a new epoch, never the node its link. Errors that are the
 * instance's (NOSCRIPT after SCRIPT FLUSH, OOM under maxmemory) hold the
 * publish back and send it again once they pass: a broadcast the call
 * accepted is delivered. A restarted process with the same node id never
 * repeats a publish id, which the scripts would skip as a retry.
 */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/cluster_must.h"
#include "support/redis_server.h"

static void test_bad_state_costs_only_its_session(void **state)
{
	struct redis_server r;
	harness_t *h;
	wsc_t *bad, *good;
	int64_t e1, e2, seq;
	int i;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = must_node(r.url, "node-a");
	bad = must_join(h, "bad");
	good = must_join(h, "good");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "bad", 1, NULL,
						NULL),
			 0);
	assert_int_equal(must_next(bad, "progress", &e1), 1);
	/* Another program's data under the session's key, twice over. */
	for (i = 0; i < 2; i++) {
		must_redis(&r, i ? "SET wsm:{bad}:state not-a-hash"
			  : "HSET wsm:{bad}:state s not-a-number");
		assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "bad",
							10 + i, NULL, NULL),
				 0);
		assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "good",
							10 + i, NULL, NULL),
				 0);
		/* The other session goes on at once, in its epoch. */
		assert_int_equal(must_next(good, "progress", NULL), i + 1);
		/*
		 * This one starts over in a new epoch: a reset, then the new
		 * progress (what of the old state still read is kept before
		 * it, so its seq is 1 or 2).
		 */
		must_next(bad, "reset", &e2);
		assert_true(e2 != e1);
		assert_true(must_progress(bad, &seq, &e2) == 10 + i);
		assert_true(seq == 1 || seq == 2);
		e1 = e2;
	}
	/* The link was never reset for it. */
	assert_int_equal(harness_metrics(h).cluster_reconnects, 0);
	assert_int_equal(harness_wait_until(outbox_empty, h, 5000), 0);
	wsc_free(bad);
	wsc_free(good);
	harness_stop(h);
	redis_stop(&r);
}

static bool failed_once(void *arg)
{
	return harness_metrics(arg).cluster_publish_failures > 0;
}

static void test_refused_publishes_are_sent_again(void **state)
{
	struct redis_server r;
	harness_t *h;
	wsc_t *c;
	int64_t seq;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = must_node(r.url, "node-a");
	c = must_join(h, "refused");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "refused", 1,
						NULL, NULL),
			 0);
	seq = must_next(c, "progress", NULL);

	/* The script cache flushed: NOSCRIPT, the scripts loaded again. */
	must_redis(&r, "SCRIPT FLUSH");
	assert_int_equal(wsm_broadcast_error(harness_mgr(h), "refused", "one"),
			 0);
	assert_int_equal(must_next(c, "error", NULL), seq + 1);

	/* Out of memory: held back while it lasts, sent once it passes. */
	must_redis(&r, "CONFIG SET maxmemory 1");
	assert_int_equal(wsm_broadcast_error(harness_mgr(h), "refused", "two"),
			 0);
	assert_int_equal(harness_wait_until(failed_once, h, 5000), 0);
	assert_int_equal(harness_metrics(h).cluster_outbox_messages, 1);
	must_redis(&r, "CONFIG SET maxmemory 0");
	assert_int_equal(must_next(c, "error", NULL), seq + 2);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(h), "refused",
						NULL),
			 0);
	assert_int_equal(must_next(c, "complete", NULL), seq + 3);
	assert_int_equal(harness_wait_until(outbox_empty, h, 5000), 0);
	/* Neither cost the link a reconnect. */
	assert_int_equal(harness_metrics(h).cluster_reconnects, 0);
	wsc_free(c);
	harness_stop(h);
	redis_stop(&r);
}

static bool published(void *arg)
{
	return harness_metrics(arg).cluster_publishes >= 1 &&
	       outbox_empty(arg);
}

/*
 * A process restarted with the same node id (a rolling restart): its first
 * publish to a session must not carry the dead process's last id there.
 */
static void test_restarted_node_repeats_no_publish_id(void **state)
{
	struct redis_server r;
	harness_t *h, *viewer;
	wsc_t *c;
	int64_t seq;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	viewer = must_node(r.url, "node-v");
	c = must_join(viewer, "job");
	h = must_node(r.url, "node-p");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "job", 50, NULL,
						NULL),
			 0);
	seq = must_next(c, "progress", NULL);
	assert_int_equal(harness_wait_until(published, h, 5000), 0);
	harness_stop(h);

	h = must_node(r.url, "node-p");
	assert_int_equal(wsm_broadcast_complete(harness_mgr(h), "job", NULL), 0);
	assert_int_equal(must_next(c, "complete", NULL), seq + 1);
	harness_stop(h);
	wsc_free(c);
	harness_stop(viewer);
	redis_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_state_costs_only_its_session),
		cmocka_unit_test(test_refused_publishes_are_sent_again),
		cmocka_unit_test(test_restarted_node_repeats_no_publish_id),
	};

	signal(SIGPIPE, SIG_IGN);
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
