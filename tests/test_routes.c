/*
 * Routes changing under a running cluster node. lws 4.2 and later watch
 * the routing table over netlink (on by default on Linux) and close the
 * connections they think have lost their route, healthy ones included: a
 * route removed from an interface makes lws 4.3 forget every route of that
 * interface with the same priority and a prefix at least as long. In a
 * network namespace of the test's own, a browser and the node's Redis link
 * reach 10.9.9.1 on lo; a route added to lo and removed again makes lws
 * 4.3 close both. Whatever lws closes, nothing accepted is lost: the link
 * reconnects, the browser resumes with its lastSeq and gets the rest. On
 * lws 4.1, which has no route monitor, nothing is closed and the browser
 * gets everything live. Needs root; skips, saying why, otherwise.
 */
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/must.h"
#include "support/cluster_node.h"
#include "support/redis_server.h"

#define NODE_IP "10.9.9.1"

static bool in_namespace;

static int sh(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* The process's own network namespace, with NODE_IP on its lo. */
static bool namespace_up(void)
{
	return getuid() == 0 && !unshare(CLONE_NEWNET) &&
	       !sh("ip link set lo up && ip addr add " NODE_IP "/24 dev lo");
}

static harness_t *start_node(const char *url)
{
	struct cluster_node_opts o = { .iface = NODE_IP };
	harness_t *h = cluster_node_start(url, "node-r", &o);

	assert_non_null(h);
	return h;
}

static wsc_t *join_at(harness_t *h, const char *path)
{
	int status = 0;
	wsc_t *c = wsc_connect_to(NODE_IP, NODE_IP, harness_port(h), path,
				  NULL, 5000, &status);

	assert_non_null(c);
	assert_int_equal(status, 101);
	return c;
}

static int64_t int_of(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

/* A route on lo, added and removed: lws 4.3 then forgets 10.9.9.0/24. */
static void routes_change(int round)
{
	assert_int_equal(sh("ip route add 198.51.%d.0/24 dev lo && "
			    "ip route del 198.51.%d.0/24 dev lo && "
			    "ip route add 203.0.%d.0/24 dev lo",
			    round, round, round),
			 0);
}

static void test_routes_changing_lose_nothing(void **state)
{
	struct redis_server r;
	harness_t *h;
	wsc_t *c;
	json_t *j;
	char path[128];
	int64_t seq, epoch;
	uint64_t reconnects;
	int round, closed = 0;

	(void)state;
	if (!redis_server_path()) {
		harness_note_skip(__func__, "redis-server is not installed");
		skip();
	}
	if (!in_namespace) {
		harness_note_skip(__func__,
				  getuid() ? "needs root for a network namespace"
					   : "the network namespace could not be set up");
		skip();
	}
	assert_int_equal(redis_start_at(&r, NODE_IP), 0);
	h = start_node(r.url);
	c = join_at(h, PREFIX "routes");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "routes", 10,
						"before", NULL),
			 0);
	j = recv_type(c, "progress", 5000);
	assert_non_null(j);
	seq = int_of(j, "seq");
	epoch = int_of(j, "epoch");
	json_decref(j);
	reconnects = harness_metrics(h).cluster_reconnects;

#if defined(LWS_WITH_NETLINK)
	/*
	 * lws ignores route changes until its first dump of the table has
	 * settled: the change is made again, a bounded number of times, until
	 * lws acts on one.
	 */
	for (round = 1; round <= 20 && !closed; round++) {
		routes_change(round);
		closed = wsc_wait_close(c, 500) != -1;
	}
	assert_true(closed);
	/* To libwsm, a connection lost (no close frame either way). */
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_ERROR,
					     "routes", 1, 5000),
			 0);
	/* The node's link to Redis went the same way, and came back. */
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLUSTER_UP, -1, NULL,
					     2, 10000),
			 0);
	assert_true(harness_metrics(h).cluster_reconnects > reconnects);
#else
	round = 1;
	routes_change(round);
	(void)reconnects;
#endif
	/* Accepted while, or after, lws closed what it closed. */
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "routes", 50,
						"after", NULL),
			 0);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(h), "routes",
						"{\"ok\":true}"),
			 0);
	if (closed) {
		wsc_free(c);
		snprintf(path, sizeof(path), PREFIX "routes?lastSeq=%lld&epoch=%lld",
			 (long long)seq, (long long)epoch);
		c = join_at(h, path);
	}
	/* Whatever came, in one epoch and one order, ends with the complete. */
	for (;;) {
		const char *type;

		j = recv_json(c, 5000);
		assert_non_null(j);
		type = json_string_value(json_object_get(j, "type"));
		assert_non_null(type);
		assert_int_equal(int_of(j, "epoch"), epoch);
		assert_true(int_of(j, "seq") > seq);
		seq = int_of(j, "seq");
		if (!strcmp(type, "complete")) {
			json_decref(j);
			break;
		}
		json_decref(j);
	}
	assert_int_equal(harness_metrics(h).connections, 1);
	wsc_free(c);
	harness_stop(h);
	redis_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_changing_lose_nothing),
	};

	signal(SIGPIPE, SIG_IGN);
	/* Before any thread: the namespace is the calling thread's. */
	in_namespace = namespace_up();
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
