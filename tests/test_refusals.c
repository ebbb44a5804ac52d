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

static bool outbox_empty(void *arg)
{
	return harness_metrics(arg).cluster_outbox_messages == 0 &&
	       harness_metrics(arg).cluster_outbox_bytes == 0;
}

static void test_bad_state_costs_only_its_session(void **state)
{
	struct redis_server r;
	harness_t *h;
	wsc_t *bad, *good;
	int64_t e1, e2;
	int i;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = node(&r, "node-a");
	bad = must_join(h, "bad");
	good = must_join(h, "good");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "bad", 1, NULL,
						NULL),
			 0);
	assert_int_equal(next_of(bad, "progress", &e1), 1);
	/* Another program's data under the session's key, twice over. */
	for (i = 0; i < 2; i++) {
		cmd(&r, i ? "SET wsm:{bad}:state not-a-hash"
			  : "HSET wsm:{bad}:state s not-a-number");
		assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "bad",
							10 + i, NULL, NULL),
				 0);
		assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "good",
							10 + i, NULL, NULL),
				 0);
		/* The other session goes on at once, in its epoch. */
		assert_int_equal(next_of(good, "progress", NULL), i + 1);
		/* This one starts over in a new epoch: a reset, then seq 1. */
		next_of(bad, "reset", &e2);
		assert_true(e2 != e1);
		assert_int_equal(next_of(bad, "progress", &e2), 1);
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
	h = node(&r, "node-a");
	c = must_join(h, "refused");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "refused", 1,
						NULL, NULL),
			 0);
	seq = next_of(c, "progress", NULL);

	/* The script cache flushed: NOSCRIPT, the scripts loaded again. */
	cmd(&r, "SCRIPT FLUSH");
	assert_int_equal(wsm_broadcast_error(harness_mgr(h), "refused", "one"),
			 0);
	assert_int_equal(next_of(c, "error", NULL), seq + 1);

	/* Out of memory: held back while it lasts, sent once it passes. */
	cmd(&r, "CONFIG SET maxmemory 1");
	assert_int_equal(wsm_broadcast_error(harness_mgr(h), "refused", "two"),
			 0);
	assert_int_equal(harness_wait_until(failed_once, h, 5000), 0);
	assert_int_equal(harness_metrics(h).cluster_outbox_messages, 1);
	cmd(&r, "CONFIG SET maxmemory 0");
	assert_int_equal(next_of(c, "error", NULL), seq + 2);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(h), "refused",
						NULL),
			 0);
	assert_int_equal(next_of(c, "complete", NULL), seq + 3);
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
	viewer = node(&r, "node-v");
	c = must_join(viewer, "job");
	h = node(&r, "node-p");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "job", 50, NULL,
						NULL),
			 0);
	seq = next_of(c, "progress", NULL);
	assert_int_equal(harness_wait_until(published, h, 5000), 0);
	harness_stop(h);

	h = node(&r, "node-p");
	assert_int_equal(wsm_broadcast_complete(harness_mgr(h), "job", NULL), 0);
	assert_int_equal(next_of(c, "complete", NULL), seq + 1);
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
