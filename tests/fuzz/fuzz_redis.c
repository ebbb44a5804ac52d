/*
 * Target 7: what Redis sends a node, as another node or an attacker with
 * access to Redis could make it: replies on the command connection (the
 * RESP parser with its bounds, pipelined answers in order), published
 * messages on the subscriber connection, and the message format of a
 * session's channel. Whatever arrives, nothing crashes or leaks, every
 * pending command is answered exactly once (by a reply, or failed when the
 * link is dropped), and a channel message a node accepts is one a browser
 * can read: a JSON object of the channel's session, stamped with its seq.
 *
 * Mode 3: the reply to a JOIN, the state and the history with it, for a
 * session whose connections saw seq 0-7 in epoch 1 and lost some: taken, or
 * refused with the link reset, and nothing leaks either way.
 *
 * Input: [mode: 1][pending commands, or mode 3's seq: 1][chunk size: 1]
 * then the bytes (modes 1, 2 and 3), or a channel message (mode 0).
 */
#include <jansson.h>

#include "fuzz.h"

#include "../../lib/cluster/cluster.h"

struct tally {
	unsigned replies, failures;
};

static void counted(void *user, const redisReply *r)
{
	struct tally *t = user;

	if (r)
		t->replies++;
	else
		t->failures++;
}

static wsm_manager_t *cluster_manager(void)
{
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;

	FZ_CHECK(cfg, "config");
	FZ_CHECK(!wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS,
				     "unix:/nonexistent/redis.sock"),
		 "cluster option");
	FZ_CHECK(!wsm_config_set_int(cfg, WSM_OPT_CLUSTER_HISTORY, 8),
		 "history option");
	m = wsm_manager_new(cfg, NULL);
	wsm_config_free(cfg);
	FZ_CHECK(m && m->cluster, "cluster manager");
	return m;
}

/* The channel format: parsed, and turned into a message only when sound. */
static void channel_message(const uint8_t *data, size_t size)
{
	wsm_manager_t *m = wsm_manager_new(NULL, NULL);
	struct wsm_msg *msg = NULL;
	struct wsm_wire w;
	json_t *o;

	FZ_CHECK(m, "manager");
	if (wsm__wire_parse((const char *)data, size, &w) || w.kind == 'x') {
		wsm_manager_destroy(m);
		return;
	}
	FZ_CHECK(w.seq > 0 && w.epoch > 0 && w.epoch <= 0x7fffffff, "numbers");
	if (!wsm__wire_message(m, "fz", 2, w.kind, w.body, w.body_len, &msg)) {
		wsm__msg_stamp(msg, w.seq, w.epoch);
		o = json_loadb((const char *)msg->payload, msg->payload_len,
			       JSON_REJECT_DUPLICATES, NULL);
		FZ_CHECK(json_is_object(o), "accepted, but not a JSON object: %.*s",
			 (int)msg->payload_len, (const char *)msg->payload);
		FZ_CHECK(json_integer_value(json_object_get(o, "seq")) ==
				 (json_int_t)w.seq,
			 "seq");
		FZ_CHECK(!strcmp(json_string_value(json_object_get(o, "sessionId")),
				 "fz"),
			 "another session's message accepted");
		json_decref(o);
		wsm__free(m, msg, msg->alloc_size);
	}
	wsm_manager_destroy(m);
}

static void replies(const uint8_t *data, size_t size, bool subscriber,
		    unsigned pending, size_t chunk)
{
	wsm_manager_t *m = cluster_manager();
	struct wsm_instance *in = &m->cluster->inst[0];
	struct wsm_redis_conn *rc = subscriber ? in->sub : in->cmd;
	const char *argv[1] = { "PING" };
	size_t lens[1] = { 4 }, off;
	struct tally t = { 0, 0 };
	unsigned i;

	wsm__rconn_feed(rc, NULL, 0);
	for (i = 0; i < pending; i++)
		FZ_CHECK(!wsm__rconn_send(rc, 1, argv, lens, 1, counted, &t),
			 "send");
	for (off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		wsm__rconn_feed(rc, data + off, n);
		FZ_CHECK(t.replies + t.failures <= pending,
			 "%u answers to %u commands", t.replies + t.failures,
			 pending);
	}
	wsm_manager_destroy(m);
	/* Freed with the manager: what was left is failed, once. */
	FZ_CHECK(t.replies + t.failures == pending, "%u + %u answers to %u",
		 t.replies, t.failures, pending);
}

static void join_reply(const uint8_t *data, size_t size, uint64_t seen,
		       size_t chunk)
{
	wsm_manager_t *m = cluster_manager();
	struct wsm_cluster *cl = m->cluster;
	struct wsm_instance *in = &cl->inst[0];
	struct wsm_session *s;
	struct wsm_csess *cs;
	size_t off;

	pthread_mutex_lock(&m->table_lock);
	s = wsm__table_get(m, "fz", 2);
	pthread_mutex_unlock(&m->table_lock);
	FZ_CHECK(s, "session");
	s->epoch = 1;
	s->seq = seen;
	/* Live, and reading the state again after a gap: history wanted. */
	cs = wsm__csess_get(cl, "fz", 2);
	FZ_CHECK(cs, "cluster session");
	cs->sub = WSM_SUB_LIVE;
	cs->resync = cs->was_live = cs->load_wanted = true;
	in->ready = in->life_known = true; /* scripts loaded, life read */
	wsm__rconn_feed(in->cmd, NULL, 0);
	wsm__sync_load_waiting(cl, 0);
	FZ_CHECK(cs->pending == 1 && !cs->load_wanted, "the JOIN was not sent");
	for (off = 0; off < size && cs->pending; off += chunk)
		wsm__rconn_feed(in->cmd, data + off,
				size - off < chunk ? size - off : chunk);
	if (!cs->pending && !cs->load_wanted)
		FZ_CHECK(!cs->resync && s->epoch != 0 &&
				 s->seq <= (1ull << 53),
			 "a state taken, but epoch %u seq %llu", s->epoch,
			 (unsigned long long)s->seq);
	wsm_manager_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode, pending;
	size_t chunk;

	if (size < 3)
		return 0;
	mode = data[0] % 4;
	pending = data[1] % 8;
	chunk = (size_t)data[2] % 64 + 1;
	if (mode == 0)
		channel_message(data + 1, size - 1);
	else if (mode == 3)
		join_reply(data + 3, size - 3, pending, chunk);
	else
		replies(data + 3, size - 3, mode == 2, pending, chunk);
	return 0;
}
