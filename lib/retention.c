/*
 * Late join and replay. A session keeps its last progress and its terminal
 * message (the last error or complete), already rendered and stamped, so a
 * client that connects late or reconnects is shown the truth first. Sessions
 * with no connection stay for WSM_OPT_RETENTION_MS in a FIFO deadline queue,
 * bounded in count and bytes (the oldest idle session goes first).
 */
#include "internal.h"

uint32_t wsm__new_epoch(wsm_manager_t *m)
{
	uint64_t x = m->rng ? m->rng : m->table.seed | 1;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	m->rng = x;
	/* Nonzero and below 2^31: exact in every JSON reader. */
	return (uint32_t)(x >> 33) | 1;
}

static void keep_bytes(wsm_manager_t *m, struct wsm_msg *msg, int sign)
{
	if (msg)
		wsm__bump(&m->c.retained_bytes, sign * (int64_t)msg->alloc_size);
}

void wsm__session_free(wsm_manager_t *m, struct wsm_session *s)
{
	if (wsm_link_linked(&s->retain.link)) {
		wsm__dq_cancel(&s->retain);
		wsm__bump(&m->c.retained_sessions, -1);
	}
	keep_bytes(m, s->last_progress, -1);
	keep_bytes(m, s->terminal, -1);
	wsm__msg_unref(m, s->last_progress);
	wsm__msg_unref(m, s->terminal);
	wsm__table_remove(m, s);
}

static void evict_oldest(wsm_manager_t *m)
{
	struct wsm_session *s = wsm_container_of(m->q_retain.head.next,
						 struct wsm_session, retain.link);

	pthread_mutex_lock(&m->table_lock);
	wsm__session_free(m, s);
	pthread_mutex_unlock(&m->table_lock);
	wsm__bump(&m->c.retained_evicted, 1);
}

/* Returns false if s itself had to go. */
static bool enforce_bounds(wsm_manager_t *m, const struct wsm_session *s)
{
	bool alive = true;

	while (!wsm_list_empty(&m->q_retain.head) &&
	       (atomic_load_explicit(&m->c.retained_sessions,
				     memory_order_relaxed) >
			(uint64_t)m->cfg.retain_max_sessions ||
		atomic_load_explicit(&m->c.retained_bytes, memory_order_relaxed) >
			(uint64_t)m->cfg.retain_max_bytes)) {
		if (m->q_retain.head.next == &s->retain.link)
			alive = false;
		evict_oldest(m);
	}
	return alive;
}

bool wsm__session_idle(wsm_manager_t *m, struct wsm_session *s)
{
	bool alive;

#ifdef WSM_WITH_CLUSTER
	/* Redis keeps the state: the node drops its copy and subscription. */
	if (m->cluster)
		wsm__cluster_leave(m, s->id, s->id_len);
#endif
	if (m->cfg.retention_ms == 0 || m->cluster) {
		pthread_mutex_lock(&m->table_lock);
		wsm__session_free(m, s);
		pthread_mutex_unlock(&m->table_lock);
		return false;
	}
	wsm__dq_arm(&m->q_retain, &s->retain, wsm__now_us());
	wsm__bump(&m->c.retained_sessions, 1);
	alive = enforce_bounds(m, s);
	wsm__timer_rearm(m);
	return alive;
}

void wsm__session_busy(wsm_manager_t *m, struct wsm_session *s)
{
	if (!wsm_link_linked(&s->retain.link))
		return;
	wsm__dq_cancel(&s->retain);
	wsm__bump(&m->c.retained_sessions, -1);
}

static void replace(wsm_manager_t *m, struct wsm_msg **slot,
		    struct wsm_msg *msg)
{
	keep_bytes(m, *slot, -1);
	wsm__msg_unref(m, *slot);
	msg->refs++;
	*slot = msg;
	keep_bytes(m, msg, 1);
}

bool wsm__session_keep(wsm_manager_t *m, struct wsm_session *s,
		       struct wsm_msg *msg)
{
	if (m->cfg.retention_ms == 0)
		return true;
	if (msg->kind == WSM_MSG_PROGRESS)
		replace(m, &s->last_progress, msg);
	else if (msg->kind == WSM_MSG_ERROR || msg->kind == WSM_MSG_COMPLETE)
		replace(m, &s->terminal, msg);
	/* An idle session's state counts as it was refreshed. */
	if (wsm_link_linked(&s->retain.link))
		wsm__dq_arm(&m->q_retain, &s->retain, wsm__now_us());
	return enforce_bounds(m, s);
}

static uint64_t seq_of(const struct wsm_msg *msg)
{
	return msg ? msg->seq : 0;
}

/* A new connection's replay goes outside its bounds; a live one's inside. */
static void queue(wsm_manager_t *m, struct wsm_conn *c, struct wsm_msg *msg,
		  bool replay)
{
	if (replay)
		wsm__conn_enqueue_replay(m, c, msg);
	else
		wsm__conn_enqueue(m, c, msg);
}

static void send_reset(wsm_manager_t *m, struct wsm_conn *c, bool replay)
{
	struct wsm_session *s = c->session;
	struct wsm_msg *reset = NULL;

	if (wsm__msg_new_reset(m, s->id, s->id_len, &reset))
		return; /* the state that follows still tells the truth */
	wsm__msg_stamp(reset, s->seq, s->epoch);
	reset->refs = 1;
	queue(m, c, reset, replay);
	wsm__msg_unref(m, reset);
	wsm__bump(&m->c.resets, 1);
}

/*
 * A client that saw up to after, in s's epoch, can be sent each message it
 * missed when the history reaches back to after + 1 and forward to s->seq.
 * They go in order, every progress included (coalescing is for a live
 * queue that fell behind, not for what the client asked for), inside the
 * connection's bounds: past them the oldest progress are left out,
 * errors and completes never.
 */
static int serve_history(wsm_manager_t *m, struct wsm_conn *c, uint64_t after,
			 const struct wsm_state *st)
{
	uint64_t count = 0, bytes = 0, skip = 0;
	size_t i, from;
	int n = 0;

	if (!st || !st->nhistory || st->history[0]->seq > after + 1 ||
	    st->history[st->nhistory - 1]->seq != c->session->seq)
		return -1;
	for (from = 0; from < st->nhistory && st->history[from]->seq <= after;
	     from++)
		;
	for (i = from; i < st->nhistory; i++) {
		count++;
		bytes += st->history[i]->payload_len;
	}
	for (i = from; i + 1 < st->nhistory &&
		       (count > (uint64_t)m->cfg.max_queued ||
			bytes > (uint64_t)m->cfg.max_queued_bytes);
	     i++)
		if (st->history[i]->kind == WSM_MSG_PROGRESS) {
			skip++;
			count--;
			bytes -= st->history[i]->payload_len;
		}
	for (i = from; i < st->nhistory && !c->closing; i++) {
		if (st->history[i]->kind == WSM_MSG_PROGRESS && skip) {
			skip--;
			continue;
		}
		wsm__conn_enqueue_history(m, c, st->history[i]);
		n++;
	}
	return n;
}

/* Queues what a client that saw resume lacks of s's state; how many. */
static int serve(wsm_manager_t *m, struct wsm_conn *c,
		 const struct wsm_resume *resume, const struct wsm_state *st,
		 bool replay)
{
	struct wsm_session *s = c->session;
	struct wsm_msg *first = s->last_progress, *second = s->terminal;
	uint64_t after = 0;
	int n = 0;

	/*
	 * A client that saw another epoch, or a seq this session never
	 * reached, holds a state that is not this session's: start it over.
	 */
	if (resume && resume->present) {
		if (resume->epoch == s->epoch && resume->seq <= s->seq) {
			after = resume->seq;
			if ((n = serve_history(m, c, after, st)) >= 0)
				return n;
			n = 0;
		} else {
			send_reset(m, c, replay);
			n++;
		}
	}
	if (seq_of(first) > seq_of(second)) {
		first = s->terminal;
		second = s->last_progress;
	}
	if (first && first->seq > after && !c->closing) {
		queue(m, c, first, replay);
		n++;
	}
	if (second && second->seq > after && !c->closing) {
		queue(m, c, second, replay);
		n++;
	}
	return n;
}

void wsm__replay(wsm_manager_t *m, struct wsm_conn *c,
		 const struct wsm_resume *resume)
{
	serve(m, c, resume, NULL, true);
}

static void set_slot(wsm_manager_t *m, struct wsm_msg **slot,
		     struct wsm_msg *msg)
{
	if (msg) {
		replace(m, slot, msg);
		return;
	}
	keep_bytes(m, *slot, -1);
	wsm__msg_unref(m, *slot);
	*slot = NULL;
}

int wsm__session_adopt(wsm_manager_t *m, struct wsm_session *s,
		       const struct wsm_state *st, const struct wsm_join *joins,
		       size_t njoins)
{
	/* What the connections already there were shown. */
	struct wsm_resume shown = { s->seq, s->epoch, 1 };
	struct wsm_link *l, *next;
	int caught_up = 0;
	size_t i;

	s->epoch = st->epoch;
	s->seq = st->seq;
	set_slot(m, &s->last_progress, st->progress);
	set_slot(m, &s->terminal, st->terminal);
	/* A full queue closes its connection, which unlinks it: keep next. */
	for (l = s->conns.next; l != &s->conns; l = next) {
		struct wsm_conn *c =
			wsm_container_of(l, struct wsm_conn, in_session);

		next = l->next;
		for (i = 0; i < njoins && joins[i].conn_id != c->id; i++)
			;
		if (i < njoins)
			serve(m, c, &joins[i].resume, st, true);
		else
			caught_up += serve(m, c, &shown, st, false) > 0;
	}
	return caught_up;
}

int wsm__retention_expire(wsm_manager_t *m, int64_t now_us)
{
	struct wsm_deadline *d;
	int n = 0;

	while ((d = wsm__dq_due(&m->q_retain, now_us))) {
		pthread_mutex_lock(&m->table_lock);
		wsm__session_free(m, wsm_container_of(d, struct wsm_session,
						      retain));
		pthread_mutex_unlock(&m->table_lock);
		n++;
	}
	return n;
}
