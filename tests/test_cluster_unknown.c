/*
 * Ids no job uses, in cluster mode. A mere connect writes nothing to Redis
 * (clients cannot fill it with random ids): the session's first broadcast
 * creates its state, and a client that was waiting gets it as seq 1, with
 * no reset. With WSM_OPT_ANNOUNCED_ONLY, a session is known once any node
 * announced it (wsm_session_open(), through Redis) or broadcast to it; a
 * client of any other id is refused with 4005 "unknown_session".
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

static harness_t *node(const struct redis_server *r, const char *id,
		       bool announced_only)
{
	struct cluster_node_opts o = { .announced_only = announced_only };
	harness_t *h = cluster_node_start(r->url, id, &o);

	assert_non_null(h);
	return h;
}

static int64_t redis_int(const struct redis_server *r, const char *words)
{
	char out[64];

	assert_int_equal(redis_cmd(r, words, out, sizeof(out)), 0);
	assert_true(out[0] == ':');
	return strtoll(out + 1, NULL, 10);
}

static const struct redis_server *watched;

static bool one_script_ran(void *arg)
{
	(void)arg;
	return redis_scripts_run(watched) >= 1;
}

static bool job_stored(void *arg)
{
	char out[16];

	(void)arg;
	return !redis_cmd(watched, "EXISTS wsm:{job}:state", out, sizeof(out)) &&
	       !strcmp(out, ":1");
}

static void test_connect_writes_nothing(void **state)
{
	struct redis_server r;
	harness_t *viewer, *producer;
	json_t *j;
	wsc_t *c;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	viewer = node(&r, "node-v", false);
	c = must_join(viewer, "ghost");
	/* The node read the session's state (the one script run so far). */
	watched = &r;
	assert_int_equal(harness_wait_until(one_script_ran, NULL, 5000), 0);
	assert_int_equal(redis_int(&r, "EXISTS wsm:{ghost}:state"), 0);
	assert_int_equal(redis_int(&r, "EXISTS wsm:{ghost}:hist"), 0);

	/* The first broadcast starts the session: seq 1, no reset first. */
	producer = node(&r, "node-p", false);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(producer), "ghost",
						10, NULL, NULL),
			 0);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")),
			    "progress");
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 1);
	json_decref(j);
	assert_int_equal(redis_int(&r, "EXISTS wsm:{ghost}:state"), 1);
	wsc_free(c);
	harness_stop(producer);
	harness_stop(viewer);
	redis_stop(&r);
}

/*
 * A client resuming into a session Redis has no state for (it expired, or
 * Redis lost it) is reset to the node's own epoch; when the session's
 * first message comes, in Redis's epoch, it gets a reset to that first.
 */
static void test_resume_into_no_state_resets_twice(void **state)
{
	struct redis_server r;
	harness_t *viewer, *producer;
	int64_t local, epoch;
	wsc_t *c;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	viewer = node(&r, "node-v", false);
	producer = node(&r, "node-p", false);
	c = must_join(viewer, "gone?lastSeq=5&epoch=77");
	must_next(c, "reset", &local);
	assert_true(local != 77);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(producer), "gone",
						10, NULL, NULL),
			 0);
	must_next(c, "reset", &epoch);
	assert_true(epoch != local);
	assert_true(must_progress(c, NULL, &local) == 10);
	assert_int_equal(local, epoch);
	wsc_free(c);
	harness_stop(producer);
	harness_stop(viewer);
	redis_stop(&r);
}

static void test_announced_only_across_nodes(void **state)
{
	struct redis_server r;
	harness_t *a, *b;
	wsc_t *c;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	a = node(&r, "node-a", true);
	b = node(&r, "node-b", true);

	/* Nobody announced it: refused once Redis said so, and counted. */
	c = must_join(b, "never");
	assert_int_equal(wsc_wait_close(c, 5000), WSM_CLOSE_REFUSED);
	assert_string_equal(wsc_close_reason(c), "unknown_session");
	wsc_free(c);
	assert_int_equal(harness_metrics(b)
				 .refused[WSM_REFUSAL_UNKNOWN_SESSION],
			 1);
	assert_int_equal(harness_wait_events(b, WSM_EVENT_CLOSE,
					     WSM_CAUSE_REFUSED, "never", 1,
					     5000),
			 0);
	assert_int_equal(redis_int(&r, "EXISTS wsm:{never}:state"), 0);

	/* Announced on A: known on B. */
	assert_int_equal(wsm_session_open(harness_mgr(a), "job"), 0);
	watched = &r;
	assert_int_equal(harness_wait_until(job_stored, NULL, 5000), 0);
	c = must_join(b, "job");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(a), "job", 40, NULL,
						NULL),
			 0);
	must_recv_type(c, "progress");
	assert_int_equal(wsc_close_code(c), 0);
	wsc_free(c);
	harness_stop(b);
	harness_stop(a);
	redis_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_writes_nothing),
		cmocka_unit_test(test_resume_into_no_state_resets_twice),
		cmocka_unit_test(test_announced_only_across_nodes),
	};

	signal(SIGPIPE, SIG_IGN);
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
