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

#include "support/cluster_node.h"
#include "support/must.h"
#include "support/redis_server.h"

static bool no_redis(const char *test)
{
	if (redis_server_path())
		return false;
	harness_note_skip(test, "redis-server is not installed");
	return true;
}

static harness_t *node(const struct redis_server *r, const char *id)
{
	struct cluster_node_opts o = { 0 };
	harness_t *h = cluster_node_start(r->url, id, &o);

	assert_non_null(h);
	return h;
}

static void cmd(const struct redis_server *r, const char *words)
{
	char out[128];

	assert_int_equal(redis_cmd(r, words, out, sizeof(out)), 0);
	if (out[0] == '-')
		fail_msg("%s: %s", words, out);
}

static int64_t int_of(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

/* The next message must be of this type; its seq, and its epoch in *epoch. */
static int64_t next_of(wsc_t *c, const char *type, int64_t *epoch)
{
	json_t *j = recv_json(c, 5000);
	int64_t seq;

	assert_non_null(j);
	if (strcmp(json_string_value(json_object_get(j, "type")), type))
		fail_msg("%s, not %s",
			 json_string_value(json_object_get(j, "type")), type);
	seq = int_of(j, "seq");
	if (epoch)
		*epoch = int_of(j, "epoch");
	json_decref(j);
	return seq;
}

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
	int64_t epoch, e2;
	int i;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	viewer = node(&r, "node-v");
	producer = node(&r, "node-p");
	c = must_join(viewer, "snap");
	for (i = 1; i <= 6; i++) {
		if (i == 4)
			cmd(&r, "SAVE"); /* the snapshot holds seq 3 */
		progress(producer, "snap", i * 10);
		assert_int_equal(next_of(c, "progress", &epoch), i);
	}
	wsc_free(c);
	harness_stop(producer);
	assert_int_equal(harness_wait_until(harness_no_connections, viewer,
					    5000),
			 0);
	redis_kill(&r, SIGKILL);
	assert_int_equal(redis_restart(&r), 0);
	assert_int_equal(harness_wait_until(link_back, viewer, 10000), 0);

	producer = node(&r, "node-p");
	progress(producer, "snap", 85);
	snprintf(path, sizeof(path), "snap?lastSeq=6&epoch=%lld",
		 (long long)epoch);
	c = must_join(viewer, path);
	next_of(c, "reset", &e2);
	assert_true(e2 != epoch);
	assert_int_equal(next_of(c, "progress", &e2), 1);
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
	int64_t epoch, e2;
	int i;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	viewer = node(&r, "node-v");
	producer = node(&r, "node-p");
	c = must_join(viewer, "rewound");
	for (i = 1; i <= 5; i++) {
		progress(producer, "rewound", i * 10);
		assert_int_equal(next_of(c, "progress", &epoch), i);
	}
	cmd(&r, "HSET wsm:{rewound}:state s 2");
	progress(producer, "rewound", 60);
	next_of(c, "reset", &e2);
	assert_true(e2 != epoch);
	assert_int_equal(next_of(c, "progress", &e2), 1);
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
	h = node(&r, "node-a");
	c = must_join(h, "reread");
	for (i = 1; i <= 5; i++) {
		progress(h, "reread", i * 10);
		assert_int_equal(next_of(c, "progress", &epoch), i);
	}
	cmd(&r, "HSET wsm:{reread}:state s 2");
	cmd(&r, "CLIENT KILL TYPE pubsub");
	next_of(c, "reset", &e2);
	assert_true(e2 != epoch);
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
	};

	signal(SIGPIPE, SIG_IGN);
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
