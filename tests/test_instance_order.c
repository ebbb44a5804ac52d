/*
 * Nodes that list the Redis instances in different orders would map a
 * session to different instances (jump hash over the list's indexes) and
 * split it without a word. The first node to reach an instance writes its
 * place there; a node that finds another does not use the instance, stays
 * down and says why, and takes it once the list agrees.
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

static bool says(harness_t *h, const char *link)
{
	char doc[8192], want[64];

	snprintf(want, sizeof(want), "\"link\":\"%s\"", link);
	return wsm_status_json(harness_mgr(h), doc, sizeof(doc)) > 0 &&
	       strstr(doc, want);
}

static bool says_misordered(void *arg)
{
	return says(arg, "misordered");
}

static void test_instances_in_another_order_are_refused(void **state)
{
	struct redis_server r1, r2;
	char ab[400], ba[400], out[32];
	struct cluster_node_opts o = { 0 };
	harness_t *a, *b;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r1, false), 0);
	assert_int_equal(redis_start(&r2, false), 0);
	snprintf(ab, sizeof(ab), "%s,%s", r1.url, r2.url);
	snprintf(ba, sizeof(ba), "%s,%s", r2.url, r1.url);
	a = cluster_node_start(ab, "node-a", &o);
	assert_non_null(a);
	o.unchecked = true; /* it never comes up */
	b = cluster_node_start(ba, "node-b", &o);
	assert_non_null(b);
	o.unchecked = false;
	assert_int_equal(harness_wait_until(says_misordered, b, 5000), 0);
	assert_int_equal(harness_wait_events(b, WSM_EVENT_CLUSTER_DOWN, -1,
					     NULL, 1, 5000),
			 0);
	assert_int_equal(harness_events(b, WSM_EVENT_CLUSTER_UP, -1, NULL), 0);
	assert_int_equal(harness_metrics(b).cluster_link_up, 0);
	/* The first node's places stand; it is up. */
	assert_true(says(a, "up"));
	assert_int_equal(redis_cmd(&r1, "GET wsm:instance:2", out, sizeof(out)),
			 0);
	assert_string_equal(out, "0");
	harness_stop(b);

	/* The same order is taken at once. */
	b = cluster_node_start(ab, "node-b", &o);
	assert_non_null(b);
	assert_true(says(b, "up"));
	harness_stop(b);
	harness_stop(a);
	redis_stop(&r1);
	redis_stop(&r2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_instances_in_another_order_are_refused),
	};

	signal(SIGPIPE, SIG_IGN);
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
