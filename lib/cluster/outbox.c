/*
 * A session's outbox on this node: broadcasts wait here, in call order,
 * until Redis has run the PUBLISH script for them, one at a time per
 * session (so Redis assigns seqs in call order), pipelined across
 * sessions. A progress waiting here is replaced by a newer one in its place,
 * as in a connection's queue; errors, completes and closes are kept. If the
 * link fails with a publish outstanding, or Redis refuses it (refused.c),
 * it is sent again with the same publish id, which the script applies at
 * most once.
 */
#include <stdio.h>
#include <string.h>

#include "cluster.h"

#define KEY_SIZE (WSM_KEY_PREFIX_LIMIT + WSM_SESSION_ID_LIMIT + 16)

static void publish_done(void *user, const redisReply *r);
static void replicated(void *user, const redisReply *r);

/*
 * WAIT, pipelined behind the script: its answer says how many replicas
 * hold the publish. Within half the command timeout, so that a replica
 * slow to answer is a publish sent again, not a link lost.
 */
static bool wait_replicas(struct wsm_csess *cs)
{
	struct wsm_cluster *cl = cs->cl;
	char n[8], ms[24];
	const char *argv[3] = { "WAIT", n, ms };
	size_t lens[3] = { 4, 0, 0 };

	lens[1] = (size_t)snprintf(n, sizeof(n), "%lld",
				   (long long)cl->m->cfg.cluster_replicas);
	lens[2] = (size_t)snprintf(ms, sizeof(ms), "%lld",
				   (long long)(cl->timing.timeout_us / 2000));
	if (wsm__rconn_send(cl->inst[cs->instance].cmd, 3, argv, lens, 1,
			    replicated, cs))
		return false;
	cs->pending++;
	return true;
}

static bool send_in_flight(struct wsm_csess *cs)
{
	struct wsm_cluster *cl = cs->cl;
	struct wsm_instance *in = &cl->inst[cs->instance];
	struct wsm_msg *msg = cs->in_flight;
	char key[KEY_SIZE], channel[KEY_SIZE], kind[2] = { 0, 0 };
	char hkey[KEY_SIZE], epoch[16], ttl[24], id[WSM_NODE_ID_LIMIT + 48];
	char history[16], known_e[16], known_s[24];
	const char *argv[15];
	size_t lens[15];
	uint32_t ke;
	uint64_t ks;
	int argc;

	bool closing = msg->kind == WSM_MSG_CLOSE_SESSION;
	size_t channel_len = wsm__cluster_key(cl, cs->id, cs->id_len, ":msgs",
					      channel, sizeof(channel));

	if (msg->kind == WSM_MSG_OPEN_SESSION) {
		argv[0] = "EVALSHA";
		lens[0] = 7;
		argv[1] = in->sha[WSM_SCRIPT_ANNOUNCE];
		lens[1] = 40;
		argv[2] = "2";
		lens[2] = 1;
		argv[3] = key;
		lens[3] = wsm__cluster_key(cl, cs->id, cs->id_len, ":state",
					   key, sizeof(key));
		argv[4] = hkey;
		lens[4] = wsm__cluster_key(cl, cs->id, cs->id_len, ":hist",
					   hkey, sizeof(hkey));
		argv[5] = epoch;
		lens[5] = (size_t)snprintf(epoch, sizeof(epoch), "%u",
					   wsm__cluster_epoch(cl));
		argv[6] = in->life;
		lens[6] = WSM_LIFE_LEN;
		argv[7] = ttl;
		lens[7] = (size_t)snprintf(ttl, sizeof(ttl), "%lld",
					   (long long)cl->m->cfg.retention_ms);
		argc = 8;
		goto send;
	}
	argv[0] = "EVALSHA";
	lens[0] = 7;
	argv[1] = in->sha[closing ? WSM_SCRIPT_CLOSE : WSM_SCRIPT_PUBLISH];
	lens[1] = 40;
	argv[2] = closing ? "1" : "2"; /* how many keys */
	lens[2] = 1;
	argv[3] = key;
	lens[3] = wsm__cluster_key(cl, cs->id, cs->id_len, ":state", key,
				   sizeof(key));
	if (closing) {
		argv[4] = channel;
		lens[4] = channel_len;
		argc = 5;
	} else {
		kind[0] = wsm__wire_kind((enum wsm_msg_kind)msg->kind);
		argv[4] = hkey;
		lens[4] = wsm__cluster_key(cl, cs->id, cs->id_len, ":hist",
					   hkey, sizeof(hkey));
		argv[5] = kind;
		lens[5] = 1;
		argv[6] = (const char *)msg->buf + LWS_PRE + WSM_SEQ_ROOM;
		lens[6] = msg->body_len;
		argv[7] = epoch;
		lens[7] = (size_t)snprintf(epoch, sizeof(epoch), "%u",
					   wsm__cluster_epoch(cl));
		argv[8] = ttl;
		lens[8] = (size_t)snprintf(ttl, sizeof(ttl), "%lld",
					   (long long)cl->m->cfg.retention_ms);
		argv[9] = channel;
		lens[9] = channel_len;
		argv[10] = id;
		lens[10] = (size_t)snprintf(id, sizeof(id), "%s:%016llx:%llu",
					    cl->node_id,
					    (unsigned long long)cl->incarnation,
					    (unsigned long long)cs->in_flight_id);
		argv[11] = history;
		lens[11] = (size_t)snprintf(history, sizeof(history), "%lld",
					    (long long)cl->m->cfg.cluster_history);
		argv[12] = in->life;
		lens[12] = WSM_LIFE_LEN;
		/* What this node knows was assigned, to catch lost writes. */
		wsm__csess_known(cs, &ke, &ks);
		argv[13] = known_e;
		lens[13] = (size_t)snprintf(known_e, sizeof(known_e), "%u", ke);
		argv[14] = known_s;
		lens[14] = (size_t)snprintf(known_s, sizeof(known_s), "%llu",
					    (unsigned long long)ks);
		argc = 15;
	}
send:
	if (wsm__rconn_send(in->cmd, argc, argv, lens, 1, publish_done, cs))
		return false;
	cs->publishing = true;
	cs->sent_us = wsm__now_us();
	cs->pending++;
	if (cl->m->cfg.cluster_replicas && !wait_replicas(cs))
		wsm__rconn_reset(in->cmd); /* no memory: it is all sent again */
	return true;
}

void wsm__outbox_pump(struct wsm_csess *cs)
{
	struct wsm_cluster *cl = cs->cl;

	if (cl->stopping || cs->publishing || cs->waiting)
		return;
	if (!cs->in_flight) {
		if (!(cs->in_flight = cs->out_head))
			return;
		if (!(cs->out_head = cs->in_flight->next))
			cs->out_tail = &cs->out_head;
		if (cs->out_progress == cs->in_flight)
			cs->out_progress = NULL;
		cs->in_flight->next = NULL;
		cs->in_flight_id = ++cl->next_publish;
	}
	/* Not now (link down or waiting, no memory): again when it is open. */
	if (!wsm__instance_open(&cl->inst[cs->instance]) ||
	    !send_in_flight(cs)) {
		if (!wsm_link_linked(&cs->in_ready))
			wsm_list_append(&cl->ready, &cs->in_ready);
	}
}

void wsm__outbox_pump_all(struct wsm_cluster *cl, unsigned instance)
{
	struct wsm_link todo, *l;

	/* Pumping may put a session back on the list: take the list first. */
	wsm_list_init(&todo);
	while (!wsm_list_empty(&cl->ready)) {
		l = cl->ready.next;
		wsm_link_remove(l);
		wsm_list_append(&todo, l);
	}
	while (!wsm_list_empty(&todo)) {
		struct wsm_csess *cs = wsm_container_of(todo.next,
							struct wsm_csess,
							in_ready);

		wsm_link_remove(&cs->in_ready);
		if (cs->instance == instance)
			wsm__outbox_pump(cs);
		else
			wsm_list_append(&cl->ready, &cs->in_ready);
	}
}

static void confirmed(struct wsm_csess *cs)
{
	wsm_manager_t *m = cs->cl->m;

	wsm__cluster_unreserve(m, cs->in_flight);
	wsm__msg_unref(m, cs->in_flight);
	cs->in_flight = NULL;
}

/* The script's { seq, epoch, new } for a publish it applied now, or false. */
static bool applied(const redisReply *r, uint64_t *seq, uint32_t *epoch)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER ||
	    r->element[2]->type != REDIS_REPLY_INTEGER ||
	    r->element[2]->integer != 1 || r->element[0]->integer < 1 ||
	    r->element[1]->integer < 1 || r->element[1]->integer > 0x7fffffff)
		return false;
	*seq = (uint64_t)r->element[0]->integer;
	*epoch = (uint32_t)r->element[1]->integer;
	return true;
}

static void publish_done(void *user, const redisReply *r)
{
	struct wsm_csess *cs = user;
	struct wsm_cluster *cl = cs->cl;

	cs->pending--;
	cs->publishing = false;
	if (cl->stopping)
		return;
	if (!r || r->type == REDIS_REPLY_ERROR)
		wsm__bump(&cl->m->c.cluster_publish_failures, 1);
	if (!r) {
		/* Lost with the link: kept, and sent again once it is back. */
		wsm__outbox_pump(cs);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		/* Kept in flight, and sent again after a wait (refused.c). */
		wsm__refused(cs, r);
		return;
	}
	wsm__refused_none(&cl->inst[cs->instance]);
	if (cl->m->cfg.cluster_replicas)
		cs->replicating = true; /* confirmed, or not, by the WAIT */
	{
		uint64_t rtt = (uint64_t)(wsm__now_us() - cs->sent_us);
		wsm_manager_t *m = cl->m;

		wsm__bump(&m->c.cluster_publishes, 1);
		wsm__bump(&m->c.cluster_rtt_sum_us, (int64_t)rtt);
		if (rtt > atomic_load_explicit(&m->c.cluster_rtt_max_us,
					       memory_order_relaxed))
			atomic_store_explicit(&m->c.cluster_rtt_max_us, rtt,
					      memory_order_relaxed);
	}
	{
		uint64_t seq;
		uint32_t epoch;

		/* This node's clients need not wait for the channel's echo. */
		if (applied(r, &seq, &epoch)) {
			if (epoch != cs->known_epoch || seq > cs->known_seq) {
				cs->known_epoch = epoch;
				cs->known_seq = seq;
			}
			wsm__sync_published(cs, cs->in_flight, seq, epoch);
		}
	}
	if (cs->replicating) {
		cs->publishing = true; /* the session's next waits for it */
		return;
	}
	confirmed(cs);
	wsm__outbox_pump(cs);
	wsm__drain_confirmed(cl->m);
	wsm__csess_release(cs);
}

/*
 * The WAIT behind a publish: confirmed once enough replicas hold it, so a
 * failover to one of them cannot lose it. Fewer in time, or the link lost,
 * and it is sent again with its publish id (applied once, WAITed again):
 * if the primary that took it is gone, the new one takes it.
 */
static void replicated(void *user, const redisReply *r)
{
	struct wsm_csess *cs = user;
	struct wsm_cluster *cl = cs->cl;

	cs->pending--;
	if (!cs->replicating || cl->stopping) {
		/* Its publish failed: publish_done() has seen to it. */
		wsm__csess_release(cs);
		return;
	}
	cs->replicating = false;
	cs->publishing = false;
	if (r && r->type == REDIS_REPLY_INTEGER &&
	    r->integer >= cl->m->cfg.cluster_replicas) {
		confirmed(cs);
		wsm__outbox_pump(cs);
		wsm__drain_confirmed(cl->m);
		wsm__csess_release(cs);
		return;
	}
	wsm__bump(&cl->m->c.cluster_unreplicated, 1);
	wsm__outbox_pump(cs);
}

void wsm__cluster_publish(wsm_manager_t *m, struct wsm_msg *msg)
{
	struct wsm_csess *cs = wsm__csess_get(m->cluster, msg->session_id,
					      msg->session_id_len);
	struct wsm_msg **p;

	if (!cs) {
		lwsl_err("wsm: out of memory: a broadcast to %.*s is lost\n",
			 (int)msg->session_id_len, msg->session_id);
		wsm__cluster_unreserve(m, msg);
		return;
	}
	msg->refs++;
	msg->next = NULL;
	if (msg->kind == WSM_MSG_PROGRESS && cs->out_progress) {
		/* The newer progress takes the waiting one's place. */
		for (p = &cs->out_head; *p != cs->out_progress; p = &(*p)->next)
			;
		msg->next = cs->out_progress->next;
		*p = msg;
		if (cs->out_tail == &cs->out_progress->next)
			cs->out_tail = &msg->next;
		wsm__cluster_unreserve(m, cs->out_progress);
		wsm__msg_unref(m, cs->out_progress);
	} else {
		*cs->out_tail = msg;
		cs->out_tail = &msg->next;
	}
	if (msg->kind == WSM_MSG_PROGRESS)
		cs->out_progress = msg;
	wsm__outbox_pump(cs);
}

void wsm__outbox_free(struct wsm_csess *cs)
{
	wsm_manager_t *m = cs->cl->m;
	struct wsm_msg *msg, *next;

	for (msg = cs->out_head; msg; msg = next) {
		next = msg->next;
		wsm__cluster_unreserve(m, msg);
		wsm__msg_unref(m, msg);
	}
	cs->out_head = NULL;
	cs->out_tail = &cs->out_head;
	cs->out_progress = NULL;
	if (cs->in_flight)
		confirmed(cs); /* not confirmed: but nobody will send it now */
}
