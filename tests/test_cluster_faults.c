/*
 * The cluster's guarantees under faults a running redis-server does not
 * produce on cue, each made deterministic: a relay (support/redis_proxy.c)
 * loses a reply after its command ran, wedges a subscriber, or holds a
 * state read's reply back; a message past a gap is written into a
 * session's channel by hand. Each test fails when the guarantee it names
 * is broken: a retried publish applied twice, a wedged subscriber never
 * noticed, a message that arrived during a state read dropped, a message
 * past a gap delivered without the state or dropped without a read.
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
#include "support/redis_proxy.h"

static harness_t *node_at(const char *url, const char *id, int64_t timeout)
{
	struct cluster_node_opts o = { .timeout_ms = timeout };
	harness_t *h = cluster_node_start(url, id, &o);

	assert_non_null(h);
	return h;
}

static int64_t int_of(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

/* The next message: this type and seq; its progress value (or -1). */
static double expect(wsc_t *c, const char *type, int64_t seq)
{
	json_t *j = recv_json(c, 5000);
	json_t *p;
	double v;

	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")), type);
	assert_int_equal(int_of(j, "seq"), seq);
	p = json_object_get(j, "progress");
	v = p ? json_number_value(p) : -1;
	json_decref(j);
	return v;
}

static void expect_nothing_more(wsc_t *c)
{
	json_t *j = recv_json(c, 200);

	if (j) {
		char *text = json_dumps(j, 0);

		fail_msg("unexpected %s", text);
	}
}

static bool reply_lost(void *arg)
{
	return proxy_replies_lost(arg) == 1;
}

/*
 * Redis ran the publish, its reply was lost with the connection: the node
 * sends it again with the same publish id, and Redis applies it once.
 */
static void test_publish_retried_after_a_lost_reply_is_applied_once(
	void **state)
{
	struct redis_server r;
	struct redis_proxy *p;
	harness_t *viewer, *producer;
	wsc_t *c;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	assert_non_null(p = proxy_start(&r));
	viewer = node_at(r.url, "node-v", 0);
	producer = node_at(proxy_url(p), "node-p", 0);
	c = must_join(viewer, "once");
	proxy_lose_reply_to(p, "EVALSHA");
	assert_int_equal(wsm_broadcast_error(harness_mgr(producer), "once",
					     "disk full"),
			 0);
	assert_int_equal(harness_wait_until(reply_lost, p, 5000), 0);
	assert_int_equal(harness_wait_until(outbox_empty, producer, 5000), 0);
	assert_true(harness_metrics(producer).cluster_publish_failures >= 1);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(producer), "once",
						NULL),
			 0);
	expect(c, "error", 1);
	expect(c, "complete", 2);
	expect_nothing_more(c);
	wsc_free(c);
	harness_stop(producer);
	harness_stop(viewer);
	proxy_stop(p);
	redis_stop(&r);
}

/*
 * The same lost reply, and then Redis restarted (from a snapshot taken
 * after the publish ran) before the node could send it again: the state
 * is from another life and starts over in a new epoch, keeping its last
 * progress, which is that publish; the retry must not apply it twice.
 */
static void test_publish_retried_into_another_life_is_applied_once(
	void **state)
{
	struct redis_server r;
	struct redis_proxy *p;
	harness_t *viewer, *producer;
	wsc_t *c;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	assert_non_null(p = proxy_start(&r));
	producer = node_at(proxy_url(p), "node-p", 0);
	proxy_lose_reply_to(p, "EVALSHA");
	proxy_refuse(p, true);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(producer), "twice",
						10, NULL, NULL),
			 0);
	assert_int_equal(harness_wait_until(reply_lost, p, 5000), 0);
	must_redis(&r, "SAVE");
	redis_kill(&r, SIGKILL);
	assert_int_equal(redis_restart(&r), 0);
	proxy_refuse(p, false);
	assert_int_equal(harness_wait_until(outbox_empty, producer, 10000), 0);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(producer), "twice",
						NULL),
			 0);
	assert_int_equal(harness_wait_until(outbox_empty, producer, 10000), 0);
	/* The kept progress at seq 1, the complete at 2: nothing twice. */
	viewer = node_at(r.url, "node-v", 0);
	c = must_join(viewer, "twice");
	assert_true(expect(c, "progress", 1) == 10);
	expect(c, "complete", 2);
	expect_nothing_more(c);
	wsc_free(c);
	harness_stop(viewer);
	harness_stop(producer);
	proxy_stop(p);
	redis_stop(&r);
}

/*
 * A subscriber connection that stays open but stops delivering (a proxy
 * that stopped forwarding, a primary demoted under it) is noticed by its
 * own probe, however busy the command connection is, and replaced; the
 * session is brought up to date.
 */
static void test_wedged_subscriber_is_noticed(void **state)
{
	struct redis_server r;
	struct redis_proxy *p;
	harness_t *viewer, *producer;
	wsc_t *c;
	int i;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	assert_non_null(p = proxy_start(&r));
	viewer = node_at(proxy_url(p), "node-v", 300);
	producer = node_at(r.url, "node-p", 0);
	c = must_join(viewer, "wedge");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(producer), "wedge",
						10, NULL, NULL),
			 0);
	expect(c, "progress", 1);
	proxy_freeze(p, PROXY_SUB, true);
	/* The command link stays busy: its replies must not count for it. */
	for (i = 0; i < 3; i++)
		assert_int_equal(wsm_broadcast_progress(harness_mgr(viewer),
							"other", i, NULL, NULL),
				 0);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(producer), "wedge",
						20, NULL, NULL),
			 0);
	assert_true(expect(c, "progress", 2) == 20);
	assert_true(harness_metrics(viewer).cluster_reconnects >= 1);
	wsc_free(c);
	harness_stop(producer);
	harness_stop(viewer);
	proxy_stop(p);
	redis_stop(&r);
}

static const struct redis_server *watched;

static bool a_script_ran(void *arg)
{
	(void)arg;
	return redis_scripts_run(watched) >= 1;
}

static bool pushed_once(void *arg)
{
	return proxy_pushed(arg) >= 1;
}

struct growth {
	harness_t *h;
	uint64_t from;
};

/* The node holds a message more than it did (its held_bytes grew). */
static bool holds_more(void *arg)
{
	struct growth *g = arg;

	return harness_metrics(g->h).held_bytes >= g->from + 64;
}

/*
 * A message that arrives while the session's state is being read is held
 * and follows the state, not dropped: the read ran in Redis before the
 * publish, and its reply is held back until the message is in.
 */
static void test_message_during_state_read_is_held(void **state)
{
	struct redis_server r;
	struct redis_proxy *p;
	harness_t *viewer, *producer;
	struct growth grown;
	wsc_t *c;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	assert_non_null(p = proxy_start(&r));
	viewer = node_at(proxy_url(p), "node-v", 0);
	producer = node_at(r.url, "node-p", 0);
	proxy_hold_replies(p, PROXY_CMD, true);
	c = must_join(viewer, "held");
	watched = &r;
	assert_int_equal(harness_wait_until(a_script_ran, NULL, 5000), 0);
	grown.h = viewer;
	grown.from = harness_metrics(viewer).held_bytes;
	assert_int_equal(wsm_broadcast_progress(harness_mgr(producer), "held",
						30, NULL, NULL),
			 0);
	assert_int_equal(harness_wait_until(pushed_once, p, 5000), 0);
	/*
	 * The node took the message in and holds it (the only memory it
	 * takes meanwhile); now the state read's reply.
	 */
	assert_int_equal(harness_wait_until(holds_more, &grown, 5000), 0);
	proxy_hold_replies(p, PROXY_CMD, false);
	assert_true(expect(c, "progress", 1) == 30);
	expect_nothing_more(c);
	wsc_free(c);
	harness_stop(producer);
	harness_stop(viewer);
	proxy_stop(p);
	redis_stop(&r);
}

static void field(const struct redis_server *r, const char *id,
		  const char *name, char *out, size_t size)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "HGET wsm:{%s}:state %s", id, name);
	assert_int_equal(redis_cmd(r, cmd, out, size), 0);
}

/* "..."progress":10,..." with the value replaced. */
static void with_progress(const char *body, int value, char *out, size_t size)
{
	const char *at = strstr(body, "\"progress\":");
	const char *end;

	assert_non_null(at);
	at += strlen("\"progress\":");
	end = at + strspn(at, "0123456789.");
	snprintf(out, size, "%.*s%d%s", (int)(at - body), body, value, end);
}

/*
 * A message past a gap on a live subscription: the node does not deliver
 * it as it is, nor drop it; it reads the state, which serves. The channel
 * and the state disagree here on purpose (77 and 88), so the test knows
 * which one the client got.
 */
static void test_gap_on_a_live_subscription_reads_the_state(void **state)
{
	struct redis_server r;
	harness_t *h;
	char body[512], epoch[24], p77[600], p88[600], msg[700], out[64];
	const char *hset[8], *publish[3];
	wsc_t *c;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = node_at(r.url, "node-a", 0);
	c = must_join(h, "gap");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "gap", 10, NULL,
						NULL),
			 0);
	expect(c, "progress", 1);
	field(&r, "gap", "p", body, sizeof(body));
	field(&r, "gap", "e", epoch, sizeof(epoch));
	with_progress(body, 77, p77, sizeof(p77));
	with_progress(body, 88, p88, sizeof(p88));
	/* Seqs 2 and 3 happened somewhere; the channel brings only 3. */
	hset[0] = "HSET";
	hset[1] = "wsm:{gap}:state";
	hset[2] = "s";
	hset[3] = "3";
	hset[4] = "ps";
	hset[5] = "3";
	hset[6] = "p";
	hset[7] = p88;
	assert_int_equal(redis_cmdv(&r, 8, hset, out, sizeof(out)), 0);
	snprintf(msg, sizeof(msg), "3 %s p%s", epoch, p77);
	publish[0] = "PUBLISH";
	publish[1] = "wsm:{gap}:msgs";
	publish[2] = msg;
	assert_int_equal(redis_cmdv(&r, 3, publish, out, sizeof(out)), 0);
	assert_true(expect(c, "progress", 3) == 88);
	expect_nothing_more(c);
	assert_int_equal(harness_metrics(h).cluster_gap_repairs, 1);
	wsc_free(c);
	harness_stop(h);
	redis_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_publish_retried_after_a_lost_reply_is_applied_once),
		cmocka_unit_test(
			test_publish_retried_into_another_life_is_applied_once),
		cmocka_unit_test(test_wedged_subscriber_is_noticed),
		cmocka_unit_test(test_message_during_state_read_is_held),
		cmocka_unit_test(test_gap_on_a_live_subscription_reads_the_state),
	};

	signal(SIGPIPE, SIG_IGN);
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
