/*
 * Cluster mode end to end, in one process: several managers, each with its
 * own lws context and service thread (nodes), one real redis-server the
 * test starts, and real WebSocket clients on each node. A broadcast on any
 * node reaches every connection of its session on every node in one seq
 * order; late joins and resumes work on any node; a Redis that lost its
 * data changes the epoch (a reset, never a reused seq); a session closed
 * on one node closes everywhere; Redis killed and restarted: connections
 * stay, broadcasts wait (bounded), the host is told.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdlib.h>

#include "support/must.h"
#include "support/cluster_node.h"
#include "support/redis_server.h"

#define NODES 3

struct cluster {
	struct redis_server redis;
	harness_t *node[NODES];
};

static harness_t *start_node_with(const char *url, const char *id,
				  const struct cluster_node_opts *o)
{
	harness_t *h = cluster_node_start(url, id, o);

	assert_non_null(h);
	return h;
}

static harness_t *start_node(const struct redis_server *r, const char *id,
			     int64_t outbox_messages)
{
	struct cluster_node_opts o = { .outbox_messages = outbox_messages };

	return start_node_with(r->url, id, &o);
}

static bool skip_without_redis(const char *test)
{
	if (redis_server_path())
		return false;
	harness_note_skip(test, "redis-server is not installed");
	return true;
}

/* A redis-server and n nodes of it, named node-a, node-b, node-c. */
static void cluster_start_with(struct cluster *cl, unsigned n,
			       const struct cluster_node_opts *o)
{
	static const char *const ids[NODES] = { "node-a", "node-b", "node-c" };
	unsigned i;

	memset(cl, 0, sizeof(*cl));
	assert_int_equal(redis_start(&cl->redis, false), 0);
	for (i = 0; i < n; i++)
		cl->node[i] = start_node_with(cl->redis.url, ids[i], o);
}

static void cluster_start(struct cluster *cl, unsigned n)
{
	struct cluster_node_opts o = { 0 };

	cluster_start_with(cl, n, &o);
}

static void cluster_stop(struct cluster *cl)
{
	unsigned i;

	for (i = 0; i < NODES; i++)
		if (cl->node[i])
			harness_stop(cl->node[i]);
	redis_stop(&cl->redis);
}

static int64_t int_of(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

/* Reads until a complete; the seqs of what came, strictly increasing. */
struct seen {
	int64_t seqs[256];
	size_t n;
	int64_t epoch, error_seq, complete_seq;
};

static void read_all(wsc_t *c, const char *session, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	for (;;) {
		json_t *j = recv_json(c, 5000);
		const char *type;

		assert_non_null(j);
		type = json_string_value(json_object_get(j, "type"));
		assert_non_null(type);
		assert_string_equal(json_string_value(json_object_get(j, "sessionId")),
				    session);
		if (!s->epoch)
			s->epoch = int_of(j, "epoch");
		assert_int_equal(int_of(j, "epoch"), s->epoch);
		assert_true(s->n < 256);
		if (s->n)
			assert_true(int_of(j, "seq") > s->seqs[s->n - 1]);
		s->seqs[s->n++] = int_of(j, "seq");
		if (!strcmp(type, "error"))
			s->error_seq = int_of(j, "seq");
		if (!strcmp(type, "complete")) {
			s->complete_seq = int_of(j, "seq");
			json_decref(j);
			return;
		}
		json_decref(j);
	}
}

static void test_one_order_on_every_node(void **state)
{
	struct cluster cl;
	wsc_t *c[4];
	struct seen seen[4];
	int i;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start(&cl, 3);
	/* Two browsers on A, two on B; the job's worker on C. */
	c[0] = must_join(cl.node[0], "job1");
	c[1] = must_join(cl.node[0], "job1");
	c[2] = must_join(cl.node[1], "job1");
	c[3] = must_join(cl.node[1], "job1");
	/*
	 * Every browser's node live first, its state read: a burst sent while
	 * a node still reads would reach its browsers through that state,
	 * which keeps the last error or complete only.
	 */
	assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[2]), "job1",
						0, "start", NULL),
			 0);
	for (i = 0; i < 4; i++)
		must_recv_type(c[i], "progress");
	for (i = 0; i < 20; i++)
		assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[2]),
							"job1", i * 5.0, "step",
							NULL),
				 0);
	assert_int_equal(wsm_broadcast_error(harness_mgr(cl.node[2]), "job1",
					     "disk almost full"),
			 0);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(cl.node[2]), "job1",
						"{\"n\":1}"),
			 0);
	for (i = 0; i < 4; i++)
		read_all(c[i], "job1", &seen[i]);
	/* One epoch, and the error and the complete at the same seqs. */
	for (i = 1; i < 4; i++) {
		assert_int_equal(seen[i].epoch, seen[0].epoch);
		assert_int_equal(seen[i].error_seq, seen[0].error_seq);
		assert_int_equal(seen[i].complete_seq, seen[0].complete_seq);
	}
	assert_true(seen[0].error_seq > 0);
	assert_int_equal(seen[0].complete_seq, seen[0].error_seq + 1);
	print_message("complete at seq %lld on every node\n",
		      (long long)seen[0].complete_seq);
	{
		wsm_metrics_t a = harness_metrics(cl.node[0]), c2;
		int64_t end = now_ms() + 5000;
		char doc[4096];
		json_t *j, *node;

		/*
		 * Every publish confirmed, each its seq; C serves no one. Its
		 * last confirmation may come after the browsers had the
		 * message: Redis publishes before it answers the script.
		 */
		do
			c2 = harness_metrics(cl.node[2]);
		while (c2.cluster_publishes < (uint64_t)seen[0].complete_seq &&
		       now_ms() < end && !poll(NULL, 0, 1));
		assert_int_equal(c2.cluster_publishes,
				 (uint64_t)seen[0].complete_seq);
		assert_true(c2.cluster_publish_rtt_max_us > 0);
		assert_int_equal(c2.cluster_subscribed, 0);
		assert_int_equal(a.cluster_subscribed, 1);
		assert_int_equal(a.cluster_link_up, 1);
		assert_int_equal(a.cluster_bad_messages, 0);
		assert_true(wsm_status_json(harness_mgr(cl.node[1]), doc,
					    sizeof(doc)) > 0);
		j = json_loads(doc, 0, NULL);
		node = json_object_get(j, "cluster");
		assert_string_equal(json_string_value(json_object_get(node,
								      "nodeId")),
				    "node-b");
		assert_string_equal(json_string_value(json_object_get(node,
								      "link")),
				    "up");
		json_decref(j);
	}
	for (i = 0; i < 4; i++)
		wsc_free(c[i]);
	cluster_stop(&cl);
}

static void test_sessions_stay_apart(void **state)
{
	struct cluster cl;
	wsc_t *c[16];
	char id[16];
	int i;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start(&cl, 2);
	for (i = 0; i < 16; i++) {
		snprintf(id, sizeof(id), "iso-%d", i / 2);
		c[i] = must_join(cl.node[i % 2], id);
	}
	/* Each session's job on the node its first browser is not on. */
	for (i = 0; i < 8; i++) {
		char meta[32];

		snprintf(id, sizeof(id), "iso-%d", i);
		snprintf(meta, sizeof(meta), "{\"job\":%d}", i);
		assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[1]),
							id, 50, NULL, NULL),
				 0);
		assert_int_equal(wsm_broadcast_complete(harness_mgr(cl.node[1]),
							id, meta),
				 0);
	}
	for (i = 0; i < 16; i++) {
		json_t *j;

		snprintf(id, sizeof(id), "iso-%d", i / 2);
		j = recv_type(c[i], "complete", 5000);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "sessionId")),
				    id);
		assert_int_equal(int_of(json_object_get(j, "metadata"), "job"),
				 i / 2);
		json_decref(j);
		wsc_free(c[i]);
	}
	cluster_stop(&cl);
}

/* Waits until Redis holds the session's terminal at seq (published). */
/* Until the state's field (ts: the terminal's seq, ps: the progress's) is seq. */
static void wait_field(const struct redis_server *r, const char *id,
		       const char *field, const char *seq)
{
	char cmd[128], reply[64];
	int64_t end = now_ms() + 5000;

	snprintf(cmd, sizeof(cmd), "HGET wsm:{%s}:state %s", id, field);
	while (now_ms() < end) {
		if (!redis_cmd(r, cmd, reply, sizeof(reply)) &&
		    !strcmp(reply, seq))
			return;
		poll(NULL, 0, 2);
	}
	fail_msg("%s: the %s at seq %s never reached Redis", id, field, seq);
}

static void wait_stored(const struct redis_server *r, const char *id,
			const char *seq)
{
	wait_field(r, id, "ts", seq);
}

static void test_late_join_and_resume_on_other_nodes(void **state)
{
	struct cluster cl;
	json_t *j;
	wsc_t *c;
	int64_t epoch, seq;
	char path[96];

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start(&cl, 3);
	/* The job ran on A while nobody watched anywhere. */
	assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[0]), "late",
						40, "p", NULL),
			 0);
	assert_int_equal(wsm_broadcast_error(harness_mgr(cl.node[0]), "late",
					     "e1"),
			 0);
	wait_stored(&cl.redis, "late", "2");
	/* A browser on B is shown the truth: the progress, then the error. */
	c = must_join(cl.node[1], "late");
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")),
			    "progress");
	assert_int_equal(int_of(j, "seq"), 1);
	epoch = int_of(j, "epoch");
	json_decref(j);
	j = recv_type(c, "error", 5000);
	assert_non_null(j);
	seq = int_of(j, "seq");
	assert_int_equal(seq, 2);
	json_decref(j);
	wsc_free(c);

	/* More while it is away; it comes back on C and gets what it missed. */
	assert_int_equal(wsm_broadcast_complete(harness_mgr(cl.node[0]), "late",
						"{\"ok\":true}"),
			 0);
	wait_stored(&cl.redis, "late", "3");
	snprintf(path, sizeof(path), "late?lastSeq=%lld&epoch=%lld",
		 (long long)seq, (long long)epoch);
	c = must_join(cl.node[2], path);
	j = recv_json(c, 5000);
	assert_non_null(j);
	/* Not the progress or the error again: only the complete. */
	assert_string_equal(json_string_value(json_object_get(j, "type")),
			    "complete");
	assert_int_equal(int_of(j, "seq"), 3);
	assert_int_equal(int_of(j, "epoch"), epoch);
	json_decref(j);
	wsc_free(c);

	/* Another epoch is another session's history: a reset first. */
	snprintf(path, sizeof(path), "late?lastSeq=2&epoch=%lld",
		 (long long)(epoch == 7 ? 8 : 7));
	c = must_join(cl.node[1], path);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")),
			    "reset");
	json_decref(j);
	wsc_free(c);
	cluster_stop(&cl);
}

static void test_redis_losing_its_data_changes_the_epoch(void **state)
{
	struct cluster cl;
	char reply[64];
	json_t *j;
	wsc_t *c;
	int64_t epoch;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start(&cl, 2);
	c = must_join(cl.node[0], "lost");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[1]), "lost",
						10, NULL, NULL),
			 0);
	j = recv_type(c, "progress", 5000);
	assert_non_null(j);
	epoch = int_of(j, "epoch");
	assert_int_equal(int_of(j, "seq"), 1);
	json_decref(j);

	/* Redis forgets (a restart without persistence, a failover). */
	assert_int_equal(redis_cmd(&cl.redis, "FLUSHALL", reply, sizeof(reply)),
			 0);
	assert_string_equal(reply, "+OK");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[1]), "lost",
						20, NULL, NULL),
			 0);
	/* seq 1 again would be a lie: a new epoch, and the browser is told. */
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")),
			    "reset");
	assert_int_not_equal(int_of(j, "epoch"), epoch);
	json_decref(j);
	j = recv_type(c, "progress", 5000);
	assert_non_null(j);
	assert_int_not_equal(int_of(j, "epoch"), epoch);
	assert_int_equal(int_of(j, "seq"), 1);
	assert_true(json_real_value(json_object_get(j, "progress")) == 20.0 ||
		    int_of(j, "progress") == 20);
	json_decref(j);
	wsc_free(c);
	cluster_stop(&cl);
}

static void test_session_close_reaches_every_node(void **state)
{
	struct cluster cl;
	wsc_t *a, *b, *other;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start(&cl, 3);
	a = must_join(cl.node[0], "cleanup");
	b = must_join(cl.node[1], "cleanup");
	other = must_join(cl.node[1], "keep");
	/* Both nodes live in both sessions: a close sent while a node still
	 * reads the state would be covered by it. */
	assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[2]),
						"cleanup", 1, NULL, NULL),
			 0);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[2]), "keep",
						1, NULL, NULL),
			 0);
	must_recv_type(a, "progress");
	must_recv_type(b, "progress");
	must_recv_type(other, "progress");
	/* From C, which holds none of its connections: 0 here, all closed. */
	assert_int_equal(wsm_session_close(harness_mgr(cl.node[2]), "cleanup"), 0);
	assert_int_equal(wsc_wait_close(a, 5000), WSM_CLOSE_SESSION_CLOSED);
	assert_int_equal(wsc_wait_close(b, 5000), WSM_CLOSE_SESSION_CLOSED);
	/* Another session is untouched. */
	assert_int_equal(wsm_broadcast_complete(harness_mgr(cl.node[0]), "keep",
						NULL),
			 0);
	must_recv_type(other, "complete");
	wsc_free(a);
	wsc_free(b);
	wsc_free(other);
	cluster_stop(&cl);
}

static void test_redis_down_and_back(void **state)
{
	struct cluster cl;
	wsc_t *c;
	json_t *j;
	int rc, i, accepted = 0;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	memset(&cl, 0, sizeof(cl));
	assert_int_equal(redis_start(&cl.redis, false), 0);
	cl.node[0] = start_node(&cl.redis, "node-a", 0);
	cl.node[1] = start_node(&cl.redis, "node-b", 8);
	c = must_join(cl.node[0], "outage");
	/* Live: the browser has seen a message through Redis. */
	assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[1]), "outage",
						1, NULL, NULL),
			 0);
	must_recv_type(c, "progress");

	redis_kill(&cl.redis, SIGKILL);
	assert_int_equal(harness_wait_events(cl.node[1], WSM_EVENT_CLUSTER_DOWN,
					     -1, NULL, 1, 5000),
			 0);
	/* The outbox holds 8 terminals; past that the caller is told. */
	assert_int_equal(wsm_broadcast_error(harness_mgr(cl.node[1]), "outage",
					     "first"),
			 0);
	for (i = 0; i < 20; i++) {
		rc = wsm_broadcast_progress(harness_mgr(cl.node[1]), "outage",
					    i, NULL, NULL);
		assert_true(rc == 0 || rc == WSM_EOUTBOX);
		accepted += rc == 0;
	}
	/* Progress is coalesced in place: it does not fill the count. */
	assert_int_equal(accepted, 20);
	for (i = 0; i < 10; i++) {
		rc = wsm_broadcast_error(harness_mgr(cl.node[1]), "outage",
					 i == 6 ? "last" : "more");
		if (rc)
			break;
	}
	/* 8 errors fill it (progress is outside): the 9th is told. */
	assert_int_equal(rc, WSM_EOUTBOX);
	assert_int_equal(i, 7);
	/* The browser's connection stayed up all along. */
	assert_int_equal(harness_metrics(cl.node[0]).connections, 1);
	{
		wsm_metrics_t mx = harness_metrics(cl.node[1]);

		assert_int_equal(mx.cluster_link_up, 0);
		assert_int_equal(mx.cluster_outbox_messages, 8);
		assert_true(mx.cluster_outbox_bytes > 8 * 64);
	}

	assert_int_equal(redis_restart(&cl.redis), 0);
	assert_int_equal(harness_wait_events(cl.node[1], WSM_EVENT_CLUSTER_UP,
					     -1, NULL, 2, 10000),
			 0);
	/* Redis came back empty: a new epoch, so the browser resets... */
	j = recv_type(c, "reset", 10000);
	assert_non_null(j);
	json_decref(j);
	/*
	 * ...and is brought up to date: the last error that waited (all of
	 * them reached Redis, in call order: "first" 1, the progress 2, and
	 * the 7 others 3 to 9).
	 */
	for (;;) {
		j = recv_type(c, "error", 5000);
		assert_non_null(j);
		if (!strcmp(json_string_value(json_object_get(j, "error")),
			    "last"))
			break;
		json_decref(j);
	}
	assert_int_equal(int_of(j, "seq"), 9);
	json_decref(j);
	{
		wsm_metrics_t a = harness_metrics(cl.node[0]), b;
		int64_t end = now_ms() + 5000;

		/* B hears Redis confirm the last one after the browser had it. */
		do
			b = harness_metrics(cl.node[1]);
		while (b.cluster_outbox_messages && now_ms() < end &&
		       !poll(NULL, 0, 1));
		assert_int_equal(b.cluster_link_up, 1);
		assert_true(b.cluster_reconnects >= 2); /* command, subscriber */
		assert_int_equal(b.cluster_outbox_messages, 0);
		assert_int_equal(b.cluster_outbox_bytes, 0);
		assert_true(b.cluster_publishes >= 10); /* 1 before, 9 after */
		assert_int_equal(a.cluster_epoch_resets, 1);
		assert_int_equal(a.cluster_subscribed, 1);
		assert_int_equal(b.cluster_subscribed, 0);
	}
	wsc_free(c);
	cluster_stop(&cl);
}

/* A browser on A that has seen a message through Redis: A is live. */
static wsc_t *live_browser(harness_t *a, harness_t *b, const char *id)
{
	wsc_t *c = must_join(a, id);

	assert_int_equal(wsm_broadcast_progress(harness_mgr(b), id, 1, NULL,
						NULL),
			 0);
	must_recv_type(c, "progress");
	return c;
}

/* Many sessions' progress while Redis is away: bounded by bytes. */
static void test_outbox_bytes_bound_progress_of_many_sessions(void **state)
{
	struct cluster cl;
	char id[24];
	int i, rc = 0;
	wsm_config_t *cfg;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	memset(&cl, 0, sizeof(cl));
	assert_int_equal(redis_start(&cl.redis, false), 0);
	cfg = wsm_config_new();
	assert_non_null(cfg);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS,
					    cl.redis.url),
			 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_CLUSTER_OUTBOX_BYTES,
					    65536),
			 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_CLUSTER_RETRY_MAX_MS,
					    100),
			 0);
	cl.node[0] = harness_start(cfg, NULL);
	wsm_config_free(cfg);
	assert_non_null(cl.node[0]);
	assert_int_equal(harness_wait_events(cl.node[0], WSM_EVENT_CLUSTER_UP,
					     -1, NULL, 1, 10000),
			 0);
	redis_kill(&cl.redis, SIGKILL);
	assert_int_equal(harness_wait_events(cl.node[0], WSM_EVENT_CLUSTER_DOWN,
					     -1, NULL, 1, 5000),
			 0);
	for (i = 0; i < 100000 && !rc; i++) {
		snprintf(id, sizeof(id), "many-%d", i);
		rc = wsm_broadcast_progress(harness_mgr(cl.node[0]), id, 1, NULL,
					    NULL);
	}
	assert_int_equal(rc, WSM_EOUTBOX);
	print_message("refused after %d sessions' progress\n", i - 1);
	assert_true(i > 10 && i < 1000);
	assert_true(harness_metrics(cl.node[0]).cluster_outbox_bytes <= 65536);
	/* Back: everything waiting is confirmed, and the bound empties. */
	assert_int_equal(redis_restart(&cl.redis), 0);
	assert_int_equal(harness_wait_events(cl.node[0], WSM_EVENT_CLUSTER_UP,
					     -1, NULL, 2, 10000),
			 0);
	{
		int64_t end = now_ms() + 5000;

		while (harness_metrics(cl.node[0]).cluster_outbox_bytes &&
		       now_ms() < end)
			poll(NULL, 0, 2);
	}
	assert_int_equal(harness_metrics(cl.node[0]).cluster_outbox_bytes, 0);
	cluster_stop(&cl);
}

static void test_gap_repaired_after_subscriber_loss(void **state)
{
	struct cluster cl;
	char reply[64];
	wsc_t *c;
	json_t *j;
	wsm_metrics_t a;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start(&cl, 2);
	c = live_browser(cl.node[0], cl.node[1], "gap");
	/*
	 * Redis drops the subscribers (as it drops one past its output
	 * buffer limit); A reconnects after 25 ms at least, and what B
	 * publishes meanwhile never reaches A's channel.
	 */
	assert_int_equal(redis_cmd(&cl.redis, "CLIENT KILL TYPE pubsub", reply,
				   sizeof(reply)),
			 0);
	/* A's and B's: each listens for its own probe too. */
	assert_string_equal(reply, ":2");
	assert_int_equal(wsm_broadcast_error(harness_mgr(cl.node[1]), "gap",
					     "missed"),
			 0);
	wait_stored(&cl.redis, "gap", "2");
	/* A brings its browser up to date, in place: same connection. */
	j = recv_type(c, "error", 5000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
			    "missed");
	assert_int_equal(int_of(j, "seq"), 2);
	json_decref(j);
	a = harness_metrics(cl.node[0]);
	assert_int_equal(a.cluster_gap_repairs, 1);
	assert_true(a.cluster_reconnects >= 1);
	assert_int_equal(a.opened, 1);
	assert_int_equal(a.connections, 1);
	/* And it is live again. */
	assert_int_equal(wsm_broadcast_complete(harness_mgr(cl.node[1]), "gap",
						NULL),
			 0);
	j = recv_type(c, "complete", 5000);
	assert_non_null(j);
	assert_int_equal(int_of(j, "seq"), 3);
	json_decref(j);
	wsc_free(c);
	cluster_stop(&cl);
}

/*
 * Redis stuck for a second, as DEBUG SLEEP or a slow script makes it, but
 * in effect when the call returns: every client's next command waits.
 */
static void pause_redis(const struct redis_server *r)
{
	char reply[64];

	assert_int_equal(redis_cmd(r, "CLIENT PAUSE 1000 ALL", reply,
				   sizeof(reply)),
			 0);
	assert_string_equal(reply, "+OK");
}

static void test_stuck_redis_times_out_and_publishes_once(void **state)
{
	struct cluster_node_opts fast = { .timeout_ms = 200 };
	struct cluster cl;
	wsc_t *c;
	json_t *j;
	wsm_metrics_t b;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start_with(&cl, 2, &fast);
	c = live_browser(cl.node[0], cl.node[1], "stuck");

	/* Redis is stuck for 1 s: B's publish outlives its 200 ms. */
	pause_redis(&cl.redis);
	assert_int_equal(wsm_broadcast_error(harness_mgr(cl.node[1]), "stuck",
					     "late"),
			 0);
	assert_int_equal(harness_wait_events(cl.node[1], WSM_EVENT_CLUSTER_DOWN,
					     -1, NULL, 1, 5000),
			 0);
	assert_int_equal(harness_wait_events(cl.node[1], WSM_EVENT_CLUSTER_UP, -1,
					     NULL, 2, 10000),
			 0);
	/* Sent again with its publish id: delivered, and only once. */
	j = recv_type(c, "error", 5000);
	assert_non_null(j);
	assert_int_equal(int_of(j, "seq"), 2);
	json_decref(j);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(cl.node[1]), "stuck",
						NULL),
			 0);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")),
			    "complete");
	assert_int_equal(int_of(j, "seq"), 3);
	json_decref(j);
	b = harness_metrics(cl.node[1]);
	assert_true(b.cluster_publish_failures >= 1);
	assert_true(b.cluster_reconnects >= 1);

	/* Destroyed with a publish outstanding in a stuck Redis: no leak. */
	pause_redis(&cl.redis);
	assert_int_equal(wsm_broadcast_error(harness_mgr(cl.node[1]), "stuck",
					     "never confirmed"),
			 0);
	harness_stop(cl.node[1]);
	cl.node[1] = NULL;
	wsc_free(c);
	cluster_stop(&cl);
}

static void test_wedged_redis_is_noticed_without_traffic(void **state)
{
	struct cluster_node_opts fast = { .timeout_ms = 200 };
	struct cluster cl;
	wsc_t *c;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start_with(&cl, 2, &fast);
	c = live_browser(cl.node[0], cl.node[1], "wedged");
	/* Nothing is sent or published: only A's own PINGs can tell. */
	pause_redis(&cl.redis);
	assert_int_equal(harness_wait_events(cl.node[0], WSM_EVENT_CLUSTER_DOWN,
					     -1, NULL, 1, 5000),
			 0);
	assert_int_equal(harness_wait_events(cl.node[0], WSM_EVENT_CLUSTER_UP, -1,
					     NULL, 2, 10000),
			 0);
	/* Subscribed again and in step: the browser gets what follows. */
	assert_int_equal(wsm_broadcast_complete(harness_mgr(cl.node[1]), "wedged",
						NULL),
			 0);
	must_recv_type(c, "complete");
	assert_true(harness_metrics(cl.node[0]).cluster_reconnects >= 1);
	assert_int_equal(harness_metrics(cl.node[0]).connections, 1);
	wsc_free(c);
	cluster_stop(&cl);
}

static void test_two_instances_spread_sessions(void **state)
{
	struct cluster_node_opts o = { 0 };
	struct redis_server r1, r2;
	harness_t *a, *b;
	wsc_t *c[24];
	char url[2 * sizeof(r1.url) + 2], id[16], reply[64];
	int i;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	assert_int_equal(redis_start(&r1, false), 0);
	assert_int_equal(redis_start(&r2, true), 0);
	snprintf(url, sizeof(url), "%s,%s", r1.url, r2.url);
	a = start_node_with(url, "node-a", &o);
	b = start_node_with(url, "node-b", &o);
	for (i = 0; i < 24; i++) {
		snprintf(id, sizeof(id), "two-%d", i);
		c[i] = must_join(a, id);
	}
	for (i = 0; i < 24; i++) {
		snprintf(id, sizeof(id), "two-%d", i);
		assert_int_equal(wsm_broadcast_complete(harness_mgr(b), id, NULL),
				 0);
	}
	for (i = 0; i < 24; i++) {
		snprintf(id, sizeof(id), "two-%d", i);
		must_recv_type(c[i], "complete");
		wsc_free(c[i]);
	}
	/* Each instance holds a share of the sessions' state. */
	assert_int_equal(redis_cmd(&r1, "DBSIZE", reply, sizeof(reply)), 0);
	print_message("instance 1: %s keys\n", reply);
	assert_true(atoi(reply + 1) > 0 && atoi(reply + 1) < 24);
	assert_int_equal(redis_cmd(&r2, "DBSIZE", reply, sizeof(reply)), 0);
	print_message("instance 2: %s keys\n", reply);
	assert_true(atoi(reply + 1) > 0 && atoi(reply + 1) < 24);
	harness_stop(a);
	harness_stop(b);
	redis_stop(&r1);
	redis_stop(&r2);
}

/* The next message, which must be of this type and seq. */
static void expect(wsc_t *c, const char *type, int64_t seq)
{
	json_t *j = recv_json(c, 5000);

	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")), type);
	assert_int_equal(int_of(j, "seq"), seq);
	json_decref(j);
}

static void expect_nothing_more(wsc_t *c)
{
	json_t *j = recv_json(c, 200);

	if (j) {
		char *text = json_dumps(j, 0);

		fail_msg("unexpected %s", text);
	}
}

/* A browser on A that has seen seq 1 of id, and its epoch. */
static int64_t seen_first(harness_t *a, harness_t *producer, const char *id)
{
	wsc_t *c = must_join(a, id);
	json_t *j;
	int64_t epoch;

	assert_int_equal(wsm_broadcast_progress(harness_mgr(producer), id, 10,
						NULL, NULL),
			 0);
	j = recv_type(c, "progress", 5000);
	assert_non_null(j);
	assert_int_equal(int_of(j, "seq"), 1);
	epoch = int_of(j, "epoch");
	json_decref(j);
	wsc_free(c);
	return epoch;
}

static void two_errors_a_progress_and_the_end(harness_t *producer,
					      const struct redis_server *r,
					      const char *id, int first)
{
	assert_int_equal(wsm_broadcast_error(harness_mgr(producer), id, "e1"), 0);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(producer), id, 50,
						NULL, NULL),
			 0);
	assert_int_equal(wsm_broadcast_error(harness_mgr(producer), id, "e2"), 0);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(producer), id, NULL),
			 0);
	{
		char seq[24];

		snprintf(seq, sizeof(seq), "%d", first + 3);
		wait_stored(r, id, seq);
	}
}

/*
 * Every progress a resuming browser missed comes from the history, in
 * order: coalescing is for a live queue that fell behind, not for history
 * the client asked for. On a node that serves the session live as well,
 * the history is read for it too.
 */
static void test_history_resume_gets_every_progress(void **state)
{
	struct cluster_node_opts o = { .history = 16 };
	struct cluster cl;
	char path[96];
	int64_t epoch;
	wsc_t *live, *c;
	int i, n;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start_with(&cl, 3, &o);
	epoch = seen_first(cl.node[0], cl.node[2], "every");
	live = must_join(cl.node[0], "every");
	expect(live, "progress", 1);
	for (i = 2; i <= 5; i++) {
		char seq[8];

		/* One at a time: the producer's outbox would keep the last. */
		assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[2]),
							"every", i * 10, NULL,
							NULL),
				 0);
		snprintf(seq, sizeof(seq), "%d", i);
		wait_field(&cl.redis, "every", "ps", seq);
	}
	assert_int_equal(wsm_broadcast_complete(harness_mgr(cl.node[2]),
						"every", NULL),
			 0);
	wait_stored(&cl.redis, "every", "6");
	/* The live browser's node has it all: what it read does not matter. */
	must_recv_type(live, "complete");
	snprintf(path, sizeof(path), "every?lastSeq=1&epoch=%lld",
		 (long long)epoch);
	/* On a node without the session, then on the one serving it live. */
	for (n = 1; n >= 0; n--) {
		c = must_join(cl.node[n], path);
		for (i = 2; i <= 5; i++)
			expect(c, "progress", i);
		expect(c, "complete", 6);
		expect_nothing_more(c);
		wsc_free(c);
	}
	wsc_free(live);
	cluster_stop(&cl);
}

/*
 * With a history, a browser resuming on another node gets each message it
 * missed, both errors included, where the state alone has the last one.
 */
static void test_history_resume_gets_every_missed_message(void **state)
{
	struct cluster_node_opts o = { .history = 8 };
	struct cluster cl;
	char path[96];
	int64_t epoch;
	uint64_t reconnects;
	wsc_t *c;
	int i;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start_with(&cl, 3, &o);
	epoch = seen_first(cl.node[0], cl.node[2], "hist");
	two_errors_a_progress_and_the_end(cl.node[2], &cl.redis, "hist", 2);
	snprintf(path, sizeof(path), "hist?lastSeq=1&epoch=%lld",
		 (long long)epoch);
	c = must_join(cl.node[1], path);
	expect(c, "error", 2);
	expect(c, "progress", 3);
	expect(c, "error", 4);
	expect(c, "complete", 5);
	expect_nothing_more(c);
	wsc_free(c);

	/* A new browser gets the state, as without a history. */
	c = must_join(cl.node[1], "hist");
	expect(c, "progress", 3);
	expect(c, "complete", 5);
	expect_nothing_more(c);
	wsc_free(c);

	/* Past the 8 kept, the history cannot say it all: the state. */
	for (i = 0; i < 9; i++)
		assert_int_equal(wsm_broadcast_error(harness_mgr(cl.node[2]),
						     "hist", "more"),
				 0);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(cl.node[2]), "hist",
						99, NULL, NULL),
			 0);
	wait_stored(&cl.redis, "hist", "14");
	snprintf(path, sizeof(path), "hist?lastSeq=5&epoch=%lld",
		 (long long)epoch);
	c = must_join(cl.node[2], path);
	expect(c, "error", 14);
	expect(c, "progress", 15);
	expect_nothing_more(c);
	wsc_free(c);

	/*
	 * A lastSeq past any the session had, in its epoch, is a reset, and
	 * must not trouble the node's Redis link on the way (Redis's Lua
	 * prints numbers from 1e14 on in exponent form: no stream id).
	 */
	assert_int_equal(harness_wait_until(harness_no_connections, cl.node[0],
					    5000),
			 0);
	reconnects = harness_metrics(cl.node[0]).cluster_reconnects;
	snprintf(path, sizeof(path), "hist?lastSeq=100000000000000&epoch=%lld",
		 (long long)epoch);
	c = must_join(cl.node[0], path);
	expect(c, "reset", 15);
	expect(c, "error", 14);
	expect(c, "progress", 15);
	wsc_free(c);
	snprintf(path, sizeof(path), "hist?lastSeq=18446744073709551615&epoch=%lld",
		 (long long)epoch);
	c = must_join(cl.node[1], path);
	expect(c, "reset", 15);
	wsc_free(c);
	assert_int_equal(harness_metrics(cl.node[0]).cluster_reconnects,
			 reconnects);
	cluster_stop(&cl);
}

/* A node without the history publishes: a hole, and the state serves. */
static void test_history_with_a_hole_falls_back_to_the_state(void **state)
{
	struct cluster_node_opts with = { .history = 8 }, without = { 0 };
	struct cluster cl;
	char path[96];
	int64_t epoch;
	wsc_t *c;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	memset(&cl, 0, sizeof(cl));
	assert_int_equal(redis_start(&cl.redis, false), 0);
	cl.node[0] = start_node_with(cl.redis.url, "node-a", &with);
	cl.node[1] = start_node_with(cl.redis.url, "node-b", &without);
	epoch = seen_first(cl.node[0], cl.node[0], "hole");
	assert_int_equal(wsm_broadcast_error(harness_mgr(cl.node[0]), "hole",
					     "kept"),
			 0);
	assert_int_equal(wsm_broadcast_error(harness_mgr(cl.node[1]), "hole",
					     "not kept"),
			 0);
	assert_int_equal(wsm_broadcast_error(harness_mgr(cl.node[0]), "hole",
					     "kept"),
			 0);
	wait_stored(&cl.redis, "hole", "4");
	snprintf(path, sizeof(path), "hole?lastSeq=1&epoch=%lld",
		 (long long)epoch);
	c = must_join(cl.node[0], path);
	expect(c, "error", 4); /* the state: its terminal only */
	expect_nothing_more(c);
	wsc_free(c);
	cluster_stop(&cl);
}

/* A node that missed messages catches its browser up with each of them. */
static void test_history_repairs_a_gap_message_by_message(void **state)
{
	struct cluster_node_opts o = { .history = 16 };
	struct cluster cl;
	char reply[64];
	wsc_t *c;
	wsm_metrics_t a;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start_with(&cl, 2, &o);
	c = live_browser(cl.node[0], cl.node[1], "hgap");
	assert_int_equal(redis_cmd(&cl.redis, "CLIENT KILL TYPE pubsub", reply,
				   sizeof(reply)),
			 0);
	assert_string_equal(reply, ":2"); /* A's, and B's probe */
	two_errors_a_progress_and_the_end(cl.node[1], &cl.redis, "hgap", 2);
	expect(c, "error", 2);
	expect(c, "progress", 3);
	expect(c, "error", 4);
	expect(c, "complete", 5);
	a = harness_metrics(cl.node[0]);
	assert_int_equal(a.cluster_gap_repairs, 1);
	assert_int_equal(a.opened, 1);
	wsc_free(c);
	cluster_stop(&cl);
}

static void test_libuv_nodes(void **state)
{
	struct cluster_node_opts uv = { .libuv = true };
	struct cluster cl;
	wsc_t *c;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	cluster_start_with(&cl, 2, &uv);
	c = live_browser(cl.node[0], cl.node[1], "uv");
	assert_int_equal(wsm_broadcast_complete(harness_mgr(cl.node[1]), "uv",
						NULL),
			 0);
	must_recv_type(c, "complete");
	wsc_free(c);
	cluster_stop(&cl);
}

/*
 * A Redis that is not there when the node starts: the host hears DOWN once
 * (not once per attempt), then UP when it comes.
 */
static void test_down_from_the_start(void **state)
{
	struct harness_opts ho = { .mode = HARNESS_READY };
	struct redis_server r;
	wsm_config_t *cfg;
	harness_t *h;

	(void)state;
	if (skip_without_redis(__func__))
		return;
	/* A port of its own, free again once it is killed. */
	assert_int_equal(redis_start(&r, true), 0);
	redis_kill(&r, SIGKILL);
	cfg = wsm_config_new();
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS, r.url), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_CLUSTER_RETRY_MAX_MS,
					    50),
			 0);
	h = harness_start(cfg, &ho);
	wsm_config_free(cfg);
	assert_non_null(h);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLUSTER_DOWN, -1, NULL,
					     1, 5000),
			 0);
	assert_int_equal(harness_metrics(h).cluster_link_up, 0);
	assert_int_equal(redis_restart(&r), 0);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLUSTER_UP, -1, NULL,
					     1, 10000),
			 0);
	/* Every failed attempt meanwhile was one outage. */
	assert_int_equal(harness_events(h, WSM_EVENT_CLUSTER_DOWN, -1, NULL), 1);
	assert_int_equal(harness_metrics(h).cluster_link_up, 1);
	harness_stop(h);
	redis_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_order_on_every_node),
		cmocka_unit_test(test_sessions_stay_apart),
		cmocka_unit_test(test_late_join_and_resume_on_other_nodes),
		cmocka_unit_test(test_redis_losing_its_data_changes_the_epoch),
		cmocka_unit_test(test_session_close_reaches_every_node),
		cmocka_unit_test(test_redis_down_and_back),
		cmocka_unit_test(test_outbox_bytes_bound_progress_of_many_sessions),
		cmocka_unit_test(test_gap_repaired_after_subscriber_loss),
		cmocka_unit_test(test_stuck_redis_times_out_and_publishes_once),
		cmocka_unit_test(test_wedged_redis_is_noticed_without_traffic),
		cmocka_unit_test(test_two_instances_spread_sessions),
		cmocka_unit_test(test_history_resume_gets_every_missed_message),
		cmocka_unit_test(test_history_resume_gets_every_progress),
		cmocka_unit_test(test_history_with_a_hole_falls_back_to_the_state),
		cmocka_unit_test(test_history_repairs_a_gap_message_by_message),
		cmocka_unit_test(test_libuv_nodes),
		cmocka_unit_test(test_down_from_the_start),
	};

	signal(SIGPIPE, SIG_IGN);
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
