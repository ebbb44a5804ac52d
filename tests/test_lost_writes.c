/*
 * Redis losing writes while a session goes on: a seq must never be used
 * again for different content in one epoch. A Redis restarted from an
 * older snapshot is in another life (its run id changed): every state it
 * holds starts a new epoch when next touched. A state rewound while the
 * links stay up is behind what a node knows was assigned: the next
 * publish, or the next state read, starts a new epoch.
 */
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

static void progress(harness_t *h, const char *id, int pct)
{
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), id, pct, NULL,
						NULL),
			 0);
}

static bool link_back(void *arg)
{
	wsm_metrics_t mx = harness_metrics(arg);

	return mx.cluster_link_up && mx.cluster_reconnects >= 2;
}

/*
 * The case: a client saw seqs 1 to 6; Redis comes back from a
 * snapshot taken at seq 3, and a producer that knows nothing of it (a
 * restarted process) goes on. The client resuming at seq 6 must be told
 * to start over in a new epoch, not be shown a seq 4 to 6 again with
 * other content.
 */
static void test_snapshot_restart_starts_a_new_epoch(void **state)
{
	struct redis_server r;
	harness_t *viewer, *producer;
	char path[96];
	wsc_t *c;
	int64_t epoch, e2, seq;
	int i;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	viewer = must_node(r.url, "node-v");
	producer = must_node(r.url, "node-p");
	c = must_join(viewer, "snap");
	for (i = 1; i <= 6; i++) {
		if (i == 4)
			must_redis(&r, "SAVE"); /* the snapshot holds seq 3 */
		progress(producer, "snap", i * 10);
		assert_int_equal(must_next(c, "progress", &epoch), i);
	}
	wsc_free(c);
	harness_stop(producer);
	assert_int_equal(harness_wait_until(harness_no_connections, viewer,
					    5000),
			 0);
	redis_kill(&r, SIGKILL);
	assert_int_equal(redis_restart(&r), 0);
	assert_int_equal(harness_wait_until(link_back, viewer, 10000), 0);

	producer = must_node(r.url, "node-p");
	progress(producer, "snap", 85);
	/* Confirmed before the client comes: the state it reads holds 85. */
	assert_int_equal(harness_wait_until(outbox_empty, producer, 5000), 0);
	snprintf(path, sizeof(path), "snap?lastSeq=6&epoch=%lld",
		 (long long)epoch);
	c = must_join(viewer, path);
	must_next(c, "reset", &e2);
	assert_true(e2 != epoch);
	/* The snapshot's progress, kept at seq 1, then the new one at 2. */
	assert_true(must_progress(c, &seq, &e2) == 85);
	assert_int_equal(seq, 2);
	assert_true(e2 != epoch);
	wsc_free(c);
	harness_stop(producer);
	harness_stop(viewer);
	redis_stop(&r);
}

/*
 * A state rewound by hand while every link stays up: the producer's next
 * publish finds it behind what Redis confirmed to it and starts a new
 * epoch, so a live client gets a reset and the message (it would have
 * dropped seq 3 as one it already had).
 */
static void test_rewound_state_publish_starts_a_new_epoch(void **state)
{
	struct redis_server r;
	harness_t *viewer, *producer;
	wsc_t *c;
	int64_t epoch, e2, seq;
	int i;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	viewer = must_node(r.url, "node-v");
	producer = must_node(r.url, "node-p");
	c = must_join(viewer, "rewound");
	for (i = 1; i <= 5; i++) {
		progress(producer, "rewound", i * 10);
		assert_int_equal(must_next(c, "progress", &epoch), i);
	}
	must_redis(&r, "HSET wsm:{rewound}:state s 2");
	progress(producer, "rewound", 60);
	must_next(c, "reset", &e2);
	assert_true(e2 != epoch);
	assert_true(must_progress(c, &seq, &e2) == 60);
	assert_int_equal(seq, 2);
	assert_true(e2 != epoch);
	assert_int_equal(harness_metrics(viewer).cluster_reconnects, 0);
	wsc_free(c);
	harness_stop(producer);
	harness_stop(viewer);
	redis_stop(&r);
}

/*
 * The same rewind seen by a node that reads the state again (its
 * subscriber was lost) with no publish in between: the read finds the
 * state behind what its clients were shown, and starts a new epoch.
 */
static void test_rewound_state_read_starts_a_new_epoch(void **state)
{
	struct redis_server r;
	harness_t *h;
	wsc_t *c;
	int64_t epoch, e2;
	int i;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = must_node(r.url, "node-a");
	c = must_join(h, "reread");
	for (i = 1; i <= 5; i++) {
		progress(h, "reread", i * 10);
		assert_int_equal(must_next(c, "progress", &epoch), i);
	}
	must_redis(&r, "HSET wsm:{reread}:state s 2");
	must_redis(&r, "CLIENT KILL TYPE pubsub");
	must_next(c, "reset", &e2);
	assert_true(e2 != epoch);
	wsc_free(c);
	harness_stop(h);
	redis_stop(&r);
}

/*
 * A state from another life that no node knows anything of (every node
 * restarted, or none had the session): it still holds what Redis knows,
 * a complete included, and a client joining gets it, in the new epoch.
 */
static void test_state_of_another_life_keeps_its_complete(void **state)
{
	struct redis_server r;
	harness_t *h;
	wsc_t *c;
	int64_t epoch, e2, seq;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = must_node(r.url, "node-a");
	c = must_join(h, "done");
	progress(h, "done", 70);
	must_next(c, "progress", &epoch);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(h), "done", NULL),
			 0);
	must_next(c, "complete", NULL);
	wsc_free(c);
	harness_stop(h);
	must_redis(&r, "SAVE");
	redis_kill(&r, SIGKILL);
	assert_int_equal(redis_restart(&r), 0);

	h = must_node(r.url, "node-b");
	c = must_join(h, "done");
	assert_true(must_progress(c, &seq, &e2) == 70);
	assert_int_equal(seq, 1);
	assert_true(e2 != epoch);
	assert_int_equal(must_next(c, "complete", &e2), 2);
	wsc_free(c);
	harness_stop(h);
	redis_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_restart_starts_a_new_epoch),
		cmocka_unit_test(test_rewound_state_publish_starts_a_new_epoch),
		cmocka_unit_test(test_rewound_state_read_starts_a_new_epoch),
		cmocka_unit_test(test_state_of_another_life_keeps_its_complete),
	};

	signal(SIGPIPE, SIG_IGN);
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
