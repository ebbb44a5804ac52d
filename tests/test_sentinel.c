/*
 * Cluster mode on a Sentinel-managed Redis (one primary, one replica,
 * three redis-sentinel, all started by the test): the primary killed mid
 * job, a clean failover that demotes it, a Sentinel down, passwords on
 * the data nodes and on the Sentinels. Every browser ends with the job's
 * terminal message, and never sees a seq again, or an epoch change,
 * without a reset.
 */
#include <jansson.h>
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
#include "support/redis_sentinel.h"

static bool no_sentinel(const char *test)
{
	if (redis_sentinel_path())
		return false;
	harness_note_skip(test, "redis-sentinel is not installed");
	return true;
}

/* Fast enough for a failover of a few seconds. */
static harness_t *node(const struct sentinel_env *e, const char *id,
		       const char *password, const char *sentinel_password)
{
	struct cluster_node_opts o = { .timeout_ms = 1000,
				       .retry_max_ms = 200,
				       .probe_ms = 1000,
				       .password = password,
				       .sentinel_password = sentinel_password };
	harness_t *h = cluster_node_start(e->url, id, &o);

	assert_non_null(h);
	return h;
}

static bool up(void *h)
{
	return harness_metrics(h).cluster_link_up == 1;
}

/*
 * Reads until the job's complete: seqs only grow within an epoch, and an
 * epoch changes only right after a reset. How many resets came.
 */
static int until_complete(wsc_t *c)
{
	int64_t epoch = -1, seq = 0;
	int resets = 0;
	bool reset = false;

	for (;;) {
		json_t *j = recv_json(c, 15000);
		const char *type;
		int64_t e, s;

		assert_non_null(j);
		type = json_string_value(json_object_get(j, "type"));
		e = json_integer_value(json_object_get(j, "epoch"));
		s = json_integer_value(json_object_get(j, "seq"));
		if (!strcmp(type, "reset")) {
			resets++;
			reset = true;
			json_decref(j);
			continue;
		}
		if (epoch != -1 && e != epoch && !reset)
			fail_msg("epoch %lld after %lld with no reset",
				 (long long)e, (long long)epoch);
		if (e == epoch && !reset && s <= seq)
			fail_msg("seq %lld after %lld in one epoch",
				 (long long)s, (long long)seq);
		epoch = e;
		seq = s;
		reset = false;
		if (!strcmp(type, "complete")) {
			json_decref(j);
			return resets;
		}
		json_decref(j);
	}
}

static void progress(harness_t *h, const char *id, int pct)
{
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), id, pct, NULL,
						NULL),
			 0);
}

/* A browser on a follows a job b publishes, across a failure. */
static void job_across(struct sentinel_env *e, harness_t *a, harness_t *b,
		       const char *id, void (*fault)(struct sentinel_env *))
{
	wsc_t *c = must_join(a, id);
	int pct;

	progress(b, id, 10);
	assert_true(must_progress(c, NULL, NULL) == 10);
	progress(b, id, 20);
	fault(e);
	/* Accepted while Redis fails over: they wait in the outbox. */
	for (pct = 30; pct <= 60; pct += 10)
		progress(b, id, pct);
	assert_int_equal(harness_wait_until(up, a, 20000), 0);
	assert_int_equal(harness_wait_until(up, b, 20000), 0);
	progress(b, id, 90);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(b), id, NULL), 0);
	/*
	 * The promoted replica is another Redis life (its replication id is
	 * new): what it holds may be behind what the browser saw, so the
	 * session starts a new epoch, which the browser is told.
	 */
	assert_true(until_complete(c) >= 1);
	wsc_free(c);
}

static void kill_primary(struct sentinel_env *e)
{
	int was = sentinel_env_primary(e);

	assert_true(was == 0 || was == 1);
	sentinel_env_kill_data(e, was, SIGKILL);
	assert_int_equal(sentinel_env_wait_primary(e, 1 - was, 20000), 0);
}

static void switch_primary(struct sentinel_env *e)
{
	assert_int_equal(sentinel_env_failover(e), 0);
}

static void test_primary_killed_mid_job(void **state)
{
	struct sentinel_env e;
	harness_t *a, *b;

	(void)state;
	if (no_redis(__func__) || no_sentinel(__func__))
		return;
	assert_int_equal(sentinel_env_start(&e, NULL), 0);
	a = node(&e, "node-a", NULL, NULL);
	b = node(&e, "node-b", NULL, NULL);
	job_across(&e, a, b, "killed", kill_primary);
	assert_true(harness_metrics(a).cluster_reconnects >= 1);
	harness_stop(b);
	harness_stop(a);
	sentinel_env_stop(&e);
}

static void test_clean_failover_demotes_the_primary(void **state)
{
	struct sentinel_env e;
	harness_t *a, *b;

	(void)state;
	if (no_redis(__func__) || no_sentinel(__func__))
		return;
	assert_int_equal(sentinel_env_start(&e, NULL), 0);
	a = node(&e, "node-a", NULL, NULL);
	b = node(&e, "node-b", NULL, NULL);
	job_across(&e, a, b, "switched", switch_primary);
	harness_stop(b);
	harness_stop(a);
	sentinel_env_stop(&e);
}

static void test_a_sentinel_down_and_passwords(void **state)
{
	struct sentinel_env_opts o = { .password = "data-pw",
				       .sentinel_password = "sentinel-pw" };
	struct sentinel_env e;
	harness_t *a, *b;

	(void)state;
	if (no_redis(__func__) || no_sentinel(__func__))
		return;
	assert_int_equal(sentinel_env_start(&e, &o), 0);
	/* The first Sentinel of the list is gone: the next one answers. */
	sentinel_env_kill_sentinel(&e, 0);
	a = node(&e, "node-a", "data-pw", "sentinel-pw");
	b = node(&e, "node-b", "data-pw", "sentinel-pw");
	job_across(&e, a, b, "down", kill_primary);
	harness_stop(b);
	harness_stop(a);
	sentinel_env_stop(&e);
}

static bool sentinels_refused(void *h)
{
	return harness_metrics(h).cluster_connect_failures >= 2;
}

/* Refused by every Sentinel, or told of no such primary: said so. */
static void test_sentinels_refuse(void **state)
{
	struct sentinel_env_opts o = { .sentinel_password = "sentinel-pw" };
	struct cluster_node_opts no = { .retry_max_ms = 200, .unchecked = true,
					.sentinel_password = "wrong" };
	struct sentinel_env e;
	char url[300];
	harness_t *h;

	(void)state;
	if (no_sentinel(__func__))
		return;
	assert_int_equal(sentinel_env_start(&e, &o), 0);
	h = cluster_node_start(e.url, "refused", &no);
	assert_non_null(h);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLUSTER_DOWN, -1,
					     NULL, 1, 5000),
			 0);
	assert_int_equal(harness_wait_until(sentinels_refused, h, 5000), 0);
	must_link(h, "auth_failed");
	harness_stop(h);

	/* A primary no Sentinel knows: down, and asked again at a pace. */
	snprintf(url, sizeof(url), "%.*s/nosuchprimary",
		 (int)(strrchr(e.url, '/') - e.url), e.url);
	no.sentinel_password = "sentinel-pw";
	h = cluster_node_start(url, "unknown", &no);
	assert_non_null(h);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLUSTER_DOWN, -1,
					     NULL, 1, 5000),
			 0);
	must_link(h, "down");
	harness_stop(h);
	sentinel_env_stop(&e);
}

static bool unreplicated(void *h)
{
	return harness_metrics(h).cluster_unreplicated >= 1;
}

/*
 * Replication is asynchronous: the primary takes a job's complete, dies
 * before its replica has it, and the promoted replica never had it. With
 * WSM_OPT_CLUSTER_REPLICAS a publish is confirmed only once a replica
 * holds it: the complete stays in the outbox, goes to the new primary, and
 * a browser that comes after the failover is shown it.
 */
static void test_replicated_complete_survives_a_failover(void **state)
{
	struct cluster_node_opts o = { .timeout_ms = 1000, .retry_max_ms = 200,
				       .replicas = 1 };
	struct sentinel_env e;
	harness_t *a, *b;
	char out[64];
	int primary;
	wsc_t *c;

	(void)state;
	if (no_sentinel(__func__))
		return;
	assert_int_equal(sentinel_env_start(&e, NULL), 0);
	a = cluster_node_start(e.url, "node-a", &o);
	b = cluster_node_start(e.url, "node-b", &o);
	assert_non_null(a);
	assert_non_null(b);
	progress(b, "lost", 40);
	assert_int_equal(harness_wait_until(outbox_empty, b, 5000), 0);
	primary = sentinel_env_primary(&e);
	assert_true(primary == 0 || primary == 1);
	/*
	 * The replica takes nothing more (stopped, and cut off: what its
	 * socket held before is all it will read), so the complete is the
	 * primary's alone.
	 */
	assert_int_equal(kill(e.data_pid[1 - primary], SIGSTOP), 0);
	assert_int_equal(sentinel_env_cmd(&e, primary, "CLIENT KILL TYPE replica",
					  out, sizeof(out)),
			 0);
	assert_string_equal(out, ":1");
	assert_int_equal(wsm_broadcast_complete(harness_mgr(b), "lost", NULL),
			 0);
	assert_int_equal(harness_wait_until(unreplicated, b, 5000), 0);
	assert_false(outbox_empty(b));
	sentinel_env_kill_data(&e, primary, SIGKILL);
	assert_int_equal(kill(e.data_pid[1 - primary], SIGCONT), 0);
	assert_int_equal(sentinel_env_wait_primary(&e, 1 - primary, 20000), 0);
	/* Confirmed once a replica holds it again: the old primary, back. */
	assert_int_equal(sentinel_env_restart_data(&e, primary), 0);
	assert_int_equal(harness_wait_until(outbox_empty, b, 20000), 0);
	/* Whoever comes now sees the job end. */
	c = must_join(a, "lost");
	until_complete(c);
	wsc_free(c);
	harness_stop(b);
	harness_stop(a);
	sentinel_env_stop(&e);
}

/* Which deployment holds the session's state. */
static int holder(struct sentinel_env *e, int n, const char *id)
{
	char words[128], out[64];
	int k;

	snprintf(words, sizeof(words), "EXISTS wsm:{%s}:state", id);
	for (k = 0; k < n; k++) {
		assert_int_equal(sentinel_env_cmd(&e[k], sentinel_env_primary(&e[k]),
						  words, out, sizeof(out)),
				 0);
		if (!strcmp(out, ":1"))
			return k;
	}
	return -1;
}

/*
 * Two independent Sentinel-managed primaries, listed as two instances:
 * sessions spread over both by the jump hash, and one failing over resets
 * its own sessions alone.
 */
static void test_two_sentinel_primaries(void **state)
{
	struct sentinel_env_opts o1 = { .master_name = "wsmone" };
	struct sentinel_env_opts o2 = { .master_name = "wsmtwo" };
	struct sentinel_env e[2];
	char url[600], id[16], on[2][16] = { "", "" };
	harness_t *a, *b;
	wsc_t *c[2];
	int i, k;

	(void)state;
	if (no_sentinel(__func__))
		return;
	assert_int_equal(sentinel_env_start(&e[0], &o1), 0);
	assert_int_equal(sentinel_env_start(&e[1], &o2), 0);
	snprintf(url, sizeof(url), "%s,%s", e[0].url, e[1].url);
	{
		struct cluster_node_opts o = { .timeout_ms = 1000,
					       .retry_max_ms = 200 };

		a = cluster_node_start(url, "node-a", &o);
		b = cluster_node_start(url, "node-b", &o);
	}
	assert_non_null(a);
	assert_non_null(b);
	/* Sessions land on both, one of each kept. */
	for (i = 0; i < 16 && (!on[0][0] || !on[1][0]); i++) {
		snprintf(id, sizeof(id), "two-%d", i);
		progress(b, id, 1);
		assert_int_equal(harness_wait_until(outbox_empty, b, 5000), 0);
		k = holder(e, 2, id);
		assert_true(k == 0 || k == 1);
		if (!on[k][0])
			snprintf(on[k], sizeof(on[k]), "%s", id);
	}
	assert_true(on[0][0] && on[1][0]);
	for (k = 0; k < 2; k++) {
		c[k] = must_join(a, on[k]);
		must_next(c[k], "progress", NULL);
	}
	kill_primary(&e[0]);
	assert_int_equal(harness_wait_until(up, a, 20000), 0);
	assert_int_equal(harness_wait_until(up, b, 20000), 0);
	for (k = 0; k < 2; k++)
		assert_int_equal(wsm_broadcast_complete(harness_mgr(b), on[k],
							NULL),
				 0);
	/* The failed-over one's browser was reset; the other's was not. */
	assert_true(until_complete(c[0]) >= 1);
	assert_int_equal(until_complete(c[1]), 0);
	for (k = 0; k < 2; k++)
		wsc_free(c[k]);
	harness_stop(b);
	harness_stop(a);
	sentinel_env_stop(&e[1]);
	sentinel_env_stop(&e[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_primary_killed_mid_job),
		cmocka_unit_test(test_clean_failover_demotes_the_primary),
		cmocka_unit_test(test_a_sentinel_down_and_passwords),
		cmocka_unit_test(test_sentinels_refuse),
		cmocka_unit_test(test_two_sentinel_primaries),
		cmocka_unit_test(test_replicated_complete_survives_a_failover),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
