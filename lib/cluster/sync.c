/*
 * Keeping a session's local connections in step with Redis. The first local
 * connection subscribes to the session's channel, then reads its state
 * (after the subscription holds, so nothing published falls between), and
 * the connections that joined meanwhile get their replay from that state.
 * Messages that arrive before the state are held and delivered after it,
 * those it already covers dropped by seq. A message past a gap, or of
 * another epoch, makes the node read the state again: every local
 * connection is then brought up to date once, in place, with a reset if
 * the epoch changed. The same happens for every session after the
 * subscriber connection is lost and restored.
 */
#include <stdio.h>
#include <string.h>

#include "cluster.h"

#define KEY_SIZE (WSM_KEY_PREFIX_LIMIT + WSM_SESSION_ID_LIMIT + 16)
/*
 * Messages, and their bytes, held per session while its state loads; past
 * either, they are dropped and the state read again covers them.
 */
#define WSM_HELD_MAX 1024
#define WSM_HELD_MAX_BYTES (4u << 20)

static void drop_held(struct wsm_csess *cs)
{
	struct wsm_held *h, *next;

	for (h = cs->held_head; h; h = next) {
		next = h->next;
		wsm__free(cs->cl->m, h, sizeof(*h) + h->w.body_len + 1);
	}
	cs->held_head = NULL;
	cs->held_tail = &cs->held_head;
	cs->nheld = 0;
	cs->held_bytes = 0;
}

void wsm__sync_free(struct wsm_csess *cs)
{
	drop_held(cs);
	wsm__free(cs->cl->m, cs->waiters,
		  cs->waiters_cap * sizeof(*cs->waiters));
	cs->waiters = NULL;
	cs->nwaiters = cs->waiters_cap = 0;
}

/* ---- the state ----------------------------------------------------------- */

static void loaded(void *user, const redisReply *r);

/*
 * The oldest point, in one epoch, that the local connections and those
 * waiting to resume have seen: the history is read from there. False when
 * none has seen anything (a new connection gets the state). A client's
 * lastSeq past any seq a state holds (2^53) is passed over: it is told to
 * reset whatever Redis says.
 */
static bool history_from(const struct wsm_csess *cs,
			 const struct wsm_session *s, uint32_t *epoch,
			 uint64_t *after)
{
	bool any = false;
	size_t i;

	if (!cs->cl->m->cfg.cluster_history)
		return false;
	if (s && cs->was_live) {
		*epoch = s->epoch;
		*after = s->seq;
		any = true;
	}
	for (i = 0; i < cs->nwaiters; i++) {
		const struct wsm_resume *r = &cs->waiters[i].resume;

		if (!r->present || r->seq >= WSM_SEQ_MAX ||
		    (any && r->epoch != *epoch))
			continue;
		if (!any || r->seq < *after)
			*after = r->seq;
		*epoch = r->epoch;
		any = true;
	}
	return any;
}

static void load(struct wsm_csess *cs)
{
	struct wsm_cluster *cl = cs->cl;
	struct wsm_instance *in = &cl->inst[cs->instance];
	struct wsm_session *s = wsm__table_find(cl->m, cs->id, cs->id_len);
	char key[KEY_SIZE], hkey[KEY_SIZE], epoch[16], ttl[24], known_e[16];
	char known_s[24], hcount[16], hafter[24], hepoch[16], hbytes[16];
	const char *argv[15] = { "EVALSHA", in->sha[WSM_SCRIPT_JOIN], "2", key,
				 hkey, epoch, ttl, known_e, known_s, hcount,
				 hafter, hepoch, hbytes, in->life, "0" };
	size_t lens[15] = { 7, 40, 1 };
	uint32_t from_epoch = 0, ke;
	uint64_t after = 0, ks;
	bool history = history_from(cs, s, &from_epoch, &after);

	cs->load_wanted = false;
	if (!wsm__instance_open(in)) {
		cs->load_wanted = true;
		return;
	}
	lens[3] = wsm__cluster_key(cl, cs->id, cs->id_len, ":state", key,
				   sizeof(key));
	lens[4] = wsm__cluster_key(cl, cs->id, cs->id_len, ":hist", hkey,
				   sizeof(hkey));
	lens[5] = (size_t)snprintf(epoch, sizeof(epoch), "%u",
				   wsm__cluster_epoch(cl));
	lens[6] = (size_t)snprintf(ttl, sizeof(ttl), "%lld",
				   (long long)cl->m->cfg.retention_ms);
	/* What this node knows was assigned, to catch lost writes. */
	wsm__csess_known(cs, &ke, &ks);
	lens[7] = (size_t)snprintf(known_e, sizeof(known_e), "%u", ke);
	lens[8] = (size_t)snprintf(known_s, sizeof(known_s), "%llu",
				   (unsigned long long)ks);
	lens[9] = (size_t)snprintf(hcount, sizeof(hcount), "%lld",
				   history ? (long long)cl->m->cfg.cluster_history
					   : 0LL);
	/* The stream id to read from, written here: Redis's Lua prints
	 * numbers from 1e14 on in exponent form. */
	lens[10] = (size_t)snprintf(hafter, sizeof(hafter), "%llu-0",
				    (unsigned long long)after + 1);
	lens[11] = (size_t)snprintf(hepoch, sizeof(hepoch), "%u", from_epoch);
	lens[12] = (size_t)snprintf(hbytes, sizeof(hbytes), "%u",
				    WSM_HISTORY_REPLY_BYTES);
	lens[13] = WSM_LIFE_LEN;
	/*
	 * A state is created only to move clients off an epoch they were
	 * shown: a mere connect writes nothing to Redis.
	 */
	if (ke)
		argv[14] = "1";
	lens[14] = 1;
	if (wsm__rconn_send(in->cmd, 15, argv, lens, 1, loaded, cs)) {
		cs->load_wanted = true;
		return;
	}
	cs->pending++;
}

void wsm__sync_reload(struct wsm_csess *cs)
{
	cs->resync = true;
	load(cs);
}

static bool field_u64(const redisReply *r, uint64_t max, uint64_t *out)
{
	char buf[24];

	if (!r || r->type != REDIS_REPLY_STRING || !r->len || r->len > 20)
		return false;
	memcpy(buf, r->str, r->len);
	buf[r->len] = '\0';
	return !wsm__parse_decimal(buf, max, out);
}

/* The stored progress or terminal as a stamped message; NULL if none. */
static struct wsm_msg *stored(struct wsm_csess *cs, const redisReply *body,
			      const redisReply *seq, const redisReply *kind,
			      char default_kind, uint32_t epoch)
{
	struct wsm_msg *msg = NULL;
	uint64_t n;
	char k = default_kind;

	if (!body || body->type != REDIS_REPLY_STRING ||
	    !field_u64(seq, WSM_SEQ_MAX, &n))
		return NULL;
	if (kind && kind->type == REDIS_REPLY_STRING && kind->len == 1)
		k = kind->str[0];
	if (k != 'p' && k != 'e' && k != 'c')
		return NULL;
	if (wsm__wire_message(cs->cl->m, cs->id, cs->id_len, k, body->str,
			      body->len, &msg))
		return NULL;
	wsm__msg_stamp(msg, n, epoch);
	msg->refs = 1;
	return msg;
}

/*
 * The history into st, when it is whole: one message per seq from its
 * first, in the state's epoch, up to the state's seq. Otherwise (trimmed
 * to nothing, a node without history published meanwhile, bad data) none,
 * and the state serves. Returns the slots allocated, for free_history().
 */
static size_t read_history(struct wsm_csess *cs, const redisReply *h,
			   struct wsm_state *st)
{
	wsm_manager_t *m = cs->cl->m;
	struct wsm_msg **msgs;
	struct wsm_wire w;
	size_t i, n = 0;

	if (!h || h->type != REDIS_REPLY_ARRAY || !h->elements ||
	    h->elements > (size_t)m->cfg.cluster_history ||
	    !(msgs = wsm__alloc(m, h->elements * sizeof(*msgs))))
		return 0;
	for (i = 0; i < h->elements; i++) {
		const redisReply *e = h->element[i];

		if (e->type != REDIS_REPLY_STRING ||
		    wsm__wire_parse(e->str, e->len, &w) || w.kind == 'x' ||
		    wsm__wire_message(m, cs->id, cs->id_len, w.kind, w.body,
				      w.body_len, &msgs[n])) {
			wsm__bump(&m->c.cluster_bad_messages, 1);
			break;
		}
		wsm__msg_stamp(msgs[n], w.seq, w.epoch);
		msgs[n]->refs = 1;
		n++;
		if (w.epoch != st->epoch ||
		    (n > 1 && w.seq != msgs[n - 2]->seq + 1))
			break;
	}
	if (i < h->elements || msgs[n - 1]->seq != st->seq)
		while (n)
			wsm__msg_unref(m, msgs[--n]);
	st->history = msgs;
	st->nhistory = n;
	return h->elements;
}

static void free_history(wsm_manager_t *m, struct wsm_state *st,
			 size_t slots)
{
	while (st->nhistory)
		wsm__msg_unref(m, st->history[--st->nhistory]);
	if (slots)
		wsm__free(m, (void *)st->history, slots * sizeof(*st->history));
}

static void deliver_wire(struct wsm_csess *cs, struct wsm_session *s,
			 const struct wsm_wire *w);

static void flush_held(struct wsm_csess *cs, struct wsm_session *s)
{
	struct wsm_held *h = cs->held_head, *next;

	cs->held_head = NULL;
	cs->held_tail = &cs->held_head;
	cs->nheld = 0;
	cs->held_bytes = 0;
	for (; h; h = next) {
		next = h->next;
		if (cs->sub == WSM_SUB_LIVE && !cs->resync)
			deliver_wire(cs, s, &h->w);
		wsm__free(cs->cl->m, h, sizeof(*h) + h->w.body_len + 1);
	}
}

/* This node's announcement of cs is on its way to Redis. */
static bool announcing(const struct wsm_csess *cs)
{
	const struct wsm_msg *msg;

	if (cs->in_flight && cs->in_flight->kind == WSM_MSG_OPEN_SESSION)
		return true;
	for (msg = cs->out_head; msg; msg = msg->next)
		if (msg->kind == WSM_MSG_OPEN_SESSION)
			return true;
	return false;
}

/*
 * WSM_OPT_ANNOUNCED_ONLY: no node announced the session, nor broadcast to
 * it. Its waiting connections are refused as an upgrade would have been.
 */
static void refuse_waiters(struct wsm_csess *cs, struct wsm_session *s)
{
	wsm_manager_t *m = cs->cl->m;
	struct wsm_link *l, *next;
	size_t i;

	/* A close unlinks its connection: keep next. */
	for (l = s->conns.next; l != &s->conns; l = next) {
		struct wsm_conn *c =
			wsm_container_of(l, struct wsm_conn, in_session);

		next = l->next;
		for (i = 0; i < cs->nwaiters && cs->waiters[i].conn_id != c->id;
		     i++)
			;
		if (i == cs->nwaiters)
			continue;
		wsm__bump(&m->c.refused[WSM_REFUSAL_UNKNOWN_SESSION], 1);
		wsm__conn_close(m, c, WSM_CAUSE_REFUSED, WSM_CLOSE_REFUSED);
	}
	cs->nwaiters = 0;
	cs->sub = WSM_SUB_LIVE;
	cs->stateless = true;
	cs->resync = false;
	drop_held(cs);
}

/* A waiter resumes from another epoch: the local one will be its reset's. */
static bool resumed_elsewhere(const struct wsm_csess *cs,
			      const struct wsm_session *s)
{
	size_t i;

	for (i = 0; i < cs->nwaiters; i++)
		if (cs->waiters[i].resume.present &&
		    cs->waiters[i].resume.epoch != s->epoch)
			return true;
	return false;
}

static void loaded(void *user, const redisReply *r)
{
	struct wsm_csess *cs = user;
	struct wsm_cluster *cl = cs->cl;
	wsm_manager_t *m = cl->m;
	struct wsm_state st = { 0 };
	struct wsm_session *s;
	uint64_t epoch;
	size_t history_slots;
	bool epoch_changed;
	int caught_up;

	cs->pending--;
	if (cl->stopping)
		return;
	if (cs->sub == WSM_SUB_NONE) {
		wsm__csess_release(cs); /* left meanwhile */
		return;
	}
	if (cs->sub != WSM_SUB_LOADING &&
	    !(cs->sub == WSM_SUB_LIVE && cs->resync))
		return; /* subscribing again: its own read follows */
	if (!r) {
		cs->load_wanted = true; /* read once the link is back */
		return;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		cs->load_wanted = true; /* read after a wait (refused.c) */
		wsm__refused(cs, r);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 8 ||
	    !field_u64(r->element[0], 0x7fffffff, &epoch) ||
	    !field_u64(r->element[1], WSM_SEQ_MAX, &st.seq) ||
	    (!epoch && st.seq)) {
		redisReply bad = { .type = REDIS_REPLY_ERROR,
				   .str = (char *)"the state does not read",
				   .len = 23 };

		/* The script reads every state it returns: not Redis's. */
		cs->load_wanted = true;
		wsm__bump(&m->c.cluster_bad_messages, 1);
		wsm__refused(cs, &bad);
		return;
	}
	wsm__refused_none(&cl->inst[cs->instance]);
	if (!(s = wsm__table_find(m, cs->id, cs->id_len))) {
		wsm__cluster_leave(m, cs->id, cs->id_len);
		return;
	}
	if (!epoch && m->cfg.announced_only && !announcing(cs)) {
		refuse_waiters(cs, s);
		return;
	}
	/*
	 * No state in Redis: no broadcast or announcement wrote one. The
	 * local epoch serves until the first message, whose epoch is taken
	 * over (deliver_wire()).
	 */
	st.epoch = epoch ? (uint32_t)epoch : s->epoch;
	epoch_changed = cs->was_live && !cs->stateless && s->epoch != st.epoch;
	if (!(cs->stateless = !epoch))
		cs->stateless_shown = false;
	else if (resumed_elsewhere(cs, s))
		cs->stateless_shown = true;
	st.progress = stored(cs, r->element[2], r->element[3], NULL, 'p',
			     st.epoch);
	st.terminal = stored(cs, r->element[4], r->element[5], r->element[6],
			     'e', st.epoch);
	history_slots = read_history(cs, r->element[7], &st);
	caught_up = wsm__session_adopt(m, s, &st, cs->waiters, cs->nwaiters);
	wsm__msg_unref(m, st.progress);
	wsm__msg_unref(m, st.terminal);
	free_history(m, &st, history_slots);
	if (epoch_changed)
		wsm__bump(&m->c.cluster_epoch_resets, caught_up);
	else if (cs->resync && caught_up > 0)
		wsm__bump(&m->c.cluster_gap_repairs, 1);
	cs->nwaiters = 0;
	cs->sub = WSM_SUB_LIVE;
	cs->was_live = true;
	cs->resync = false;
	if (cs->held_overflow) {
		cs->held_overflow = false;
		drop_held(cs);
		cs->resync = true;
		load(cs);
		return;
	}
	flush_held(cs, s);
}

/* ---- the subscription ----------------------------------------------------- */

static void subscribed(void *user, const redisReply *r)
{
	struct wsm_csess *cs = user;

	cs->pending--;
	if (cs->cl->stopping)
		return;
	if (!r) {
		cs->sub_acks = 0;
		return; /* sync_lost() takes it from here */
	}
	if (cs->sub_acks && --cs->sub_acks)
		return; /* an earlier SUBSCRIBE's: wait for the last */
	if (cs->sub != WSM_SUB_SUBSCRIBING) {
		wsm__csess_release(cs);
		return;
	}
	if (!cs->confirmed) {
		cs->confirmed = true;
		wsm__bump(&cs->cl->m->c.cluster_subscribed, 1);
	}
	cs->sub = WSM_SUB_LOADING;
	load(cs);
}

static void send_subscribe(struct wsm_csess *cs)
{
	struct wsm_instance *in = &cs->cl->inst[cs->instance];
	char channel[KEY_SIZE];
	const char *argv[2] = { "SUBSCRIBE", channel };
	size_t lens[2] = { 9, 0 };

	lens[1] = wsm__cluster_key(cs->cl, cs->id, cs->id_len, ":msgs", channel,
				   sizeof(channel));
	cs->sub = WSM_SUB_SUBSCRIBING;
	cs->sub_sent = false;
	if (!in->sub_up || wsm__rconn_send(in->sub, 2, argv, lens, 1,
					   subscribed, cs))
		return; /* sent by sync_resubscribe_all() once it is up */
	cs->sub_sent = true;
	cs->sub_acks++;
	cs->pending++;
}

void wsm__sync_subscribe(struct wsm_csess *cs)
{
	send_subscribe(cs);
}

void wsm__cluster_leave(wsm_manager_t *m, const char *id, size_t len)
{
	struct wsm_csess *cs = wsm__csess_find(m->cluster, id, len);
	struct wsm_instance *in;
	char channel[KEY_SIZE];
	const char *argv[2] = { "UNSUBSCRIBE", channel };
	size_t lens[2] = { 11, 0 };

	if (!cs)
		return;
	in = &cs->cl->inst[cs->instance];
	if (cs->sub != WSM_SUB_NONE && cs->sub_sent && in->sub_up) {
		lens[1] = wsm__cluster_key(cs->cl, id, len, ":msgs", channel,
					   sizeof(channel));
		wsm__rconn_send(in->sub, 2, argv, lens, 1, NULL, NULL);
	}
	if (cs->confirmed) {
		cs->confirmed = false;
		wsm__bump(&m->c.cluster_subscribed, -1);
	}
	cs->sub = WSM_SUB_NONE;
	cs->sub_sent = false;
	cs->was_live = false;
	cs->resync = false;
	cs->load_wanted = false;
	cs->nwaiters = 0;
	drop_held(cs);
	cs->held_overflow = false;
	wsm__csess_release(cs);
}

static void each_on(struct wsm_cluster *cl, unsigned instance,
		    void (*fn)(struct wsm_csess *cs))
{
	size_t i;
	struct wsm_csess *cs, *next;

	for (i = 0; i < cl->nbuckets; i++)
		for (cs = cl->buckets[i]; cs; cs = next) {
			next = cs->hnext;
			if (cs->instance == instance)
				fn(cs);
		}
}

static void resubscribe(struct wsm_csess *cs)
{
	if (cs->sub != WSM_SUB_NONE && !cs->sub_sent)
		send_subscribe(cs);
}

void wsm__sync_resubscribe_all(struct wsm_cluster *cl, unsigned instance)
{
	each_on(cl, instance, resubscribe);
}

static void load_if_wanted(struct wsm_csess *cs)
{
	if (cs->load_wanted && cs->sub != WSM_SUB_NONE)
		load(cs);
}

void wsm__sync_load_waiting(struct wsm_cluster *cl, unsigned instance)
{
	each_on(cl, instance, load_if_wanted);
}

/*
 * The subscription is gone with its connection: whatever was published
 * meanwhile is missed, so once subscribed again the state is read again.
 */
static void unsubscribed_by_loss(struct wsm_csess *cs)
{
	if (cs->sub == WSM_SUB_NONE)
		return;
	if (cs->sub == WSM_SUB_LIVE)
		cs->resync = true;
	if (cs->confirmed) {
		cs->confirmed = false;
		wsm__bump(&cs->cl->m->c.cluster_subscribed, -1);
	}
	cs->sub = WSM_SUB_SUBSCRIBING;
	cs->sub_sent = false;
	cs->sub_acks = 0;
	cs->load_wanted = false;
}

void wsm__sync_lost(struct wsm_cluster *cl, unsigned instance)
{
	each_on(cl, instance, unsubscribed_by_loss);
}

/* ---- messages from the channel ------------------------------------------- */

static void deliver_wire(struct wsm_csess *cs, struct wsm_session *s,
			 const struct wsm_wire *w)
{
	wsm_manager_t *m = cs->cl->m;
	struct wsm_msg *msg;

	if (w->kind == 'x') {
		wsm__session_close_now(m, cs->id, cs->id_len);
		return;
	}
	/*
	 * Taken over in silence, unless a client was reset to the local
	 * epoch: then its change is a reset too, through a state read.
	 */
	if (cs->stateless && w->seq == 1 && !cs->stateless_shown) {
		/* The session's first message: its epoch is the session's. */
		cs->stateless = false;
		s->epoch = w->epoch;
		s->seq = 0;
	}
	if (w->epoch == s->epoch && w->seq <= s->seq)
		return; /* the state, or an earlier read, had it */
	if (w->epoch != s->epoch || w->seq != s->seq + 1) {
		/* Missed something, or Redis lost it: read the state. */
		cs->resync = true;
		load(cs);
		return;
	}
	if (wsm__wire_message(m, cs->id, cs->id_len, w->kind, w->body,
			      w->body_len, &msg)) {
		wsm__bump(&m->c.cluster_bad_messages, 1);
		return;
	}
	wsm__msg_stamp(msg, w->seq, w->epoch);
	msg->refs = 1;
	wsm__session_deliver_stamped(m, s, msg);
	wsm__msg_unref(m, msg);
}

void wsm__sync_published(struct wsm_csess *cs, struct wsm_msg *msg,
			 uint64_t seq, uint32_t epoch)
{
	wsm_manager_t *m = cs->cl->m;
	struct wsm_session *s;

	/* Anything else is the channel's to bring, or a state read's. */
	if (cs->sub != WSM_SUB_LIVE || cs->resync ||
	    msg->kind == WSM_MSG_CLOSE_SESSION ||
	    msg->kind == WSM_MSG_OPEN_SESSION ||
	    !(s = wsm__table_find(m, cs->id, cs->id_len)))
		return;
	if (cs->stateless && seq == 1 && !cs->stateless_shown) {
		cs->stateless = false;
		s->epoch = epoch;
		s->seq = 0;
	}
	if (s->epoch != epoch || s->seq + 1 != seq)
		return;
	wsm__msg_stamp(msg, seq, epoch);
	wsm__session_deliver_stamped(m, s, msg);
}

static void hold(struct wsm_csess *cs, const struct wsm_wire *w)
{
	struct wsm_held *h;

	if (cs->nheld >= WSM_HELD_MAX ||
	    cs->held_bytes + w->body_len > WSM_HELD_MAX_BYTES) {
		/*
		 * Some of them may be newer than the state being read: read
		 * it once more when that read is in, which covers them.
		 */
		drop_held(cs);
		cs->held_overflow = true;
		return;
	}
	if (!(h = wsm__alloc(cs->cl->m, sizeof(*h) + w->body_len + 1)))
		return;
	h->w = *w;
	memcpy(h->text, w->body, w->body_len);
	h->w.body = h->text;
	*cs->held_tail = h;
	cs->held_tail = &h->next;
	cs->nheld++;
	cs->held_bytes += w->body_len;
}

/* "<prefix>{<id>}:msgs" to its id, or false. */
static bool channel_id(const struct wsm_cluster *cl, const redisReply *ch,
		       const char **id, size_t *len)
{
	size_t plen = strlen(cl->m->cfg.cluster_prefix);

	if (ch->type != REDIS_REPLY_STRING || ch->len < plen + 8 ||
	    memcmp(ch->str, cl->m->cfg.cluster_prefix, plen) ||
	    ch->str[plen] != '{' || memcmp(ch->str + ch->len - 6, "}:msgs", 6))
		return false;
	*id = ch->str + plen + 1;
	*len = ch->len - plen - 7;
	return *len && *len <= WSM_SESSION_ID_LIMIT;
}

void wsm__sync_push(struct wsm_redis_conn *rc, void *user,
		    const redisReply *reply)
{
	struct wsm_instance *in = user;
	struct wsm_cluster *cl = in->cl;
	wsm_manager_t *m = cl->m;
	const redisReply *data = reply->element[2];
	struct wsm_csess *cs;
	struct wsm_session *s;
	struct wsm_wire w;
	const char *id;
	size_t len;

	(void)rc;
	if (!channel_id(cl, reply->element[1], &id, &len) ||
	    data->type != REDIS_REPLY_STRING ||
	    wsm__wire_parse(data->str, data->len, &w)) {
		wsm__bump(&m->c.cluster_bad_messages, 1);
		return;
	}
	cs = wsm__csess_find(cl, id, len);
	if (!cs || cs->sub == WSM_SUB_NONE)
		return; /* unsubscribed meanwhile */
	if (cs->sub != WSM_SUB_LIVE || cs->resync) {
		hold(cs, &w);
		return;
	}
	if ((s = wsm__table_find(m, id, len)))
		deliver_wire(cs, s, &w);
}
