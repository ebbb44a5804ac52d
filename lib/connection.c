/*
 * A managed connection from registration to teardown: its session
 * membership, deadlines, outbound queue, frames in both directions, and the
 * one idempotent path every close cause goes through.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static void set_stale(wsm_manager_t *m, struct wsm_conn *c, bool stale)
{
	if (c->is_stale == stale)
		return;
	c->is_stale = stale;
	wsm__bump(&m->c.stale, stale ? 1 : -1);
}

static void emit(wsm_manager_t *m, wsm_event_t ev, struct wsm_conn *c,
		 wsm_close_cause_t cause)
{
	if (!m->cfg.on_event)
		return;
	/* Its broadcasts wait in the inbox: the connection is half made. */
	m->in_event++;
	m->cfg.on_event(m->cfg.event_user, ev, c->id, c->session->id, cause);
	m->in_event--;
}

int64_t wsm__conn_open(wsm_manager_t *m, struct lws *wsi, const char *id,
		       size_t len, const struct wsm_resume *resume)
{
	struct wsm_session *s;
	struct wsm_conn *c = wsm__alloc(m, sizeof(*c));
	int64_t now = wsm__now_us();

	if (!c)
		return WSM_ENOMEM;
	pthread_mutex_lock(&m->table_lock);
	s = wsm__table_get(m, id, len);
	if (!s) {
		pthread_mutex_unlock(&m->table_lock);
		wsm__free(m, c, sizeof(*c));
		return WSM_ENOMEM;
	}
	wsm_list_append(&s->conns, &c->in_session);
	s->open++;
	s->refs++;
	pthread_mutex_unlock(&m->table_lock);
	wsm__session_busy(m, s);

	c->wsi = wsi;
	c->session = s;
	c->id = ++m->next_conn_id;
	c->last_rx_us = now;
	c->last_ping_us = now; /* the first ping is due an interval from now */
	wsm_list_append(&m->pings, &c->in_pings);
	wsm__dq_arm(&m->q_lifetime[wsm__new_epoch(m) % WSM_LIFETIME_SLOTS],
		    &c->lifetime, now);
	c->peer = wsm__peer_ref(m, wsi);
	lws_set_opaque_user_data(wsi, c);
	wsm__bump(&m->c.open, 1);
	wsm__bump(&m->c.opened, 1);
	wsm__timer_rearm(m);
	emit(m, WSM_EVENT_OPEN, c, WSM_CAUSE_NONE);
#ifdef WSM_WITH_CLUSTER
	if (m->cluster && wsm__cluster_join(m, s, c, resume))
		return (int64_t)c->id; /* replayed once Redis's state is in */
#endif
	wsm__replay(m, c, resume);
	return (int64_t)c->id;
}

/* Leaves the session's open list and every deadline queue. */
static void detach_open(wsm_manager_t *m, struct wsm_conn *c)
{
	pthread_mutex_lock(&m->table_lock);
	wsm_link_remove(&c->in_session);
	c->session->open--;
	pthread_mutex_unlock(&m->table_lock);
	wsm_link_remove(&c->in_pings);
	wsm__dq_cancel(&c->lifetime);
	set_stale(m, c, false);
	wsm__bump(&m->c.open, -1);
}

static const char *close_text(wsm_close_cause_t cause, int code)
{
	switch (code) {
	case WSM_CLOSE_UNSUPPORTED: return "binary frames not accepted";
	case WSM_CLOSE_INVALID_PAYLOAD: return "invalid UTF-8";
	case WSM_CLOSE_TOO_BIG: return "message too big";
	case LWS_CLOSE_STATUS_PROTOCOL_ERR: return "invalid close frame";
	case WSM_CLOSE_REFUSED: return "unknown_session";
	default: return wsm_cause_name(cause);
	}
}

/* Queued messages are still delivered unless the peer cannot take them. */
static bool drops_queue(wsm_close_cause_t cause)
{
	return cause == WSM_CAUSE_STALE || cause == WSM_CAUSE_SLOW_CONSUMER ||
	       cause == WSM_CAUSE_PROTOCOL || cause == WSM_CAUSE_ERROR ||
	       cause == WSM_CAUSE_REFUSED;
}

/*
 * libwsm writes the close frame itself, from the writeable callback once
 * the queue is flushed or dropped, and then waits for the client's answer
 * within the grace that conn_close() armed. Handing the close to lws
 * instead (lws_close_reason() and a kill) would re-arm lws's own 5 s
 * timeouts, twice, after libwsm had already been told CLOSED: a client
 * that never answers would hold its socket for up to 10 s, whatever
 * WSM_OPT_CLOSE_GRACE_MS says. lws_write() frames the close opcode; its
 * value, 4, is kept out of lws's public header (which points to
 * lws_close_reason()) but has not changed since lws 1.x, and every close
 * code test reads what it frames.
 */
#define WSM_LWS_WRITE_CLOSE ((enum lws_write_protocol)4)

/* Code and reason, as RFC 6455 5.5.1 lays them out; at most 125 bytes. */
static int write_close_frame(wsm_manager_t *m, struct wsm_conn *c)
{
	wsm_close_cause_t cause = (wsm_close_cause_t)c->cause;
	const char *text = close_text(cause, c->close_code);
	unsigned char frame[LWS_PRE + 125];
	unsigned char *p = &frame[LWS_PRE];
	int n;

	p[0] = (unsigned char)(c->close_code >> 8);
	p[1] = (unsigned char)c->close_code;
	if (cause == WSM_CAUSE_LIFETIME || cause == WSM_CAUSE_SHUTDOWN) {
		/* Spread the reconnects too: suggest a delay in the reason. */
		int64_t spread = m->cfg.max_lifetime_ms *
				 m->cfg.lifetime_jitter_pct / 100;

		if (spread < 1000)
			spread = 1000;
		n = snprintf((char *)p + 2, 123, "%s; retry_ms=%lld", text,
			     (long long)(wsm__new_epoch(m) %
					 (uint64_t)(spread + 1)));
	} else {
		n = snprintf((char *)p + 2, 123, "%s", text);
	}
	if (n < 0 || n > 122)
		n = 0;
	c->close_sent = 1;
	return lws_write(c->wsi, p, (size_t)n + 2, WSM_LWS_WRITE_CLOSE) < n + 2
		       ? -1
		       : 0;
}

void wsm__conn_close(wsm_manager_t *m, struct wsm_conn *c,
		     wsm_close_cause_t cause, int code)
{
	int grace_s = (int)((m->cfg.close_grace_ms + 999) / 1000);

	if (c->closing)
		return;
	detach_open(m, c);
	wsm_list_append(&m->closing, &c->in_session);
	c->closing = 1;
	c->cause = (uint8_t)cause;
	c->close_code = (uint16_t)code;
	wsm__bump(&m->c.closing, 1);
	if (drops_queue(cause))
		wsm__queue_free(m, &c->out);
	/* Bounds the whole close, however the peer behaves. */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, grace_s);
	/* Flushed first, if anything is left: the callback sends the close. */
	lws_callback_on_writable(c->wsi);
}

void wsm__conn_teardown(wsm_manager_t *m, struct wsm_conn *c,
			wsm_close_cause_t cause)
{
	struct wsm_session *s = c->session;

	if (c->closing) {
		wsm_link_remove(&c->in_session);
		wsm__bump(&m->c.closing, -1);
	} else {
		detach_open(m, c);
	}
	wsm__queue_free(m, &c->out);
	wsm__peer_unref(m, c->peer);
	lws_set_opaque_user_data(c->wsi, NULL);
	wsm__bump(&m->c.closed[cause], 1);
	emit(m, WSM_EVENT_CLOSE, c, cause);
	wsm__free(m, c, sizeof(*c));
	if (--s->refs == 0)
		wsm__session_idle(m, s);
	wsm__drain_check(m);
}

struct wsm_conn *wsm__any_conn(wsm_manager_t *m)
{
	if (!wsm_list_empty(&m->pings))
		return wsm_container_of(m->pings.next, struct wsm_conn,
					in_pings);
	if (!wsm_list_empty(&m->closing))
		return wsm_container_of(m->closing.next, struct wsm_conn,
					in_session);
	return NULL;
}

void wsm__conn_activity(wsm_manager_t *m, struct wsm_conn *c)
{
	c->last_rx_us = wsm__now_us();
	if (c->closing)
		return;
	set_stale(m, c, false);
}

static void enqueue(wsm_manager_t *m, struct wsm_conn *c, struct wsm_msg *msg,
		    enum wsm_push_how how)
{
	bool was_empty = wsm__queue_empty(&c->out);

	switch (wsm__queue_push(m, &c->out, msg, how)) {
	case WSM_PUSH_COALESCED:
		wsm__bump(&m->c.coalesced, 1);
		/* fall through */
	case WSM_PUSH_QUEUED:
		wsm__bump(&m->c.messages_queued, 1);
		if (was_empty)
			lws_callback_on_writable(c->wsi);
		break;
	case WSM_PUSH_FULL:
		/* Never drop error/complete silently: the client reconnects. */
		wsm__conn_close(m, c, WSM_CAUSE_SLOW_CONSUMER,
				WSM_CLOSE_SLOW_CONSUMER);
		break;
	case WSM_PUSH_NOMEM:
		wsm__conn_close(m, c, WSM_CAUSE_ERROR,
				LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
		break;
	}
}

void wsm__conn_enqueue(wsm_manager_t *m, struct wsm_conn *c,
		       struct wsm_msg *msg)
{
	enqueue(m, c, msg, WSM_QUEUE_LIVE);
}

void wsm__conn_enqueue_replay(wsm_manager_t *m, struct wsm_conn *c,
			      struct wsm_msg *msg)
{
	enqueue(m, c, msg, WSM_QUEUE_REPLAY);
}

void wsm__conn_enqueue_history(wsm_manager_t *m, struct wsm_conn *c,
			       struct wsm_msg *msg)
{
	enqueue(m, c, msg, WSM_QUEUE_IN_ORDER);
}

/* One frame per writeable callback, as lws expects; asks again if more. */
int wsm__conn_writeable(wsm_manager_t *m, struct wsm_conn *c)
{
	unsigned char ping[LWS_PRE + 8];
	struct wsm_msg *msg;
	int n;

	if (c->close_sent || c->peer_closed)
		return 0; /* nothing follows a close frame; lws answers the peer's */
	if (c->closing)
		c->ping_due = c->app_ping_due = 0; /* the close is the answer */
	if (c->ping_due) {
		c->ping_due = 0;
		/* lws hides pongs with no payload, so carry the send time. */
		for (n = 0; n < 8; n++)
			ping[LWS_PRE + n] =
				(unsigned char)(c->last_ping_us >> (56 - 8 * n));
		if (lws_write(c->wsi, &ping[LWS_PRE], 8, LWS_WRITE_PING) < 8)
			goto failed;
		wsm__bump(&m->c.pings_sent, 1);
		if (!wsm__queue_empty(&c->out) || c->app_ping_due)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (c->app_ping_due) {
		if (wsm__app_ping_send(m, c))
			goto failed;
		if (!wsm__queue_empty(&c->out))
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (c->closing && wsm__queue_empty(&c->out))
		return write_close_frame(m, c);
	if ((msg = wsm__queue_pop(m, &c->out))) {
		n = lws_write(c->wsi, msg->payload, msg->payload_len,
			      LWS_WRITE_TEXT);
		if (n < (int)msg->payload_len) {
			wsm__msg_unref(m, msg);
			goto failed;
		}
		wsm__bump(&m->c.messages_sent, 1);
		wsm__bump(&m->c.bytes_sent, (int64_t)msg->payload_len);
		wsm__msg_unref(m, msg);
		if (!wsm__queue_empty(&c->out) || c->closing)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	return 0;

failed:
	wsm__conn_close(m, c, WSM_CAUSE_ERROR,
			LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
	return -1;
}

/*
 * RFC 6455 7.4: the codes a peer may send. lws turns the reserved ones
 * below 3000 into 1002 before libwsm sees them; 5000 and up it passes.
 */
static bool peer_code_ok(unsigned code)
{
	return (code >= 1000 && code <= 1003) ||
	       (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

/*
 * lws echoes whatever close payload a client sends, on 4.1 and 4.3 alike:
 * a forbidden code, a one-byte payload, a reason that is not UTF-8. Such a
 * close gets 1002 (1007 for the reason) from libwsm instead, written at
 * once; the nonzero return then makes lws drop the connection unechoed.
 */
int wsm__conn_peer_close(wsm_manager_t *m, struct wsm_conn *c, const void *in,
			 size_t len)
{
	const unsigned char *p = in;
	uint32_t utf8 = 0;
	int code = 0;

	if (len == 1 || (len >= 2 && !peer_code_ok((unsigned)(p[0] << 8 | p[1]))))
		code = LWS_CLOSE_STATUS_PROTOCOL_ERR;
	else if (len > 2 && (!wsm__utf8_feed(&utf8, p + 2, len - 2) || utf8))
		code = WSM_CLOSE_INVALID_PAYLOAD;
	if (!code)
		return 0;
	wsm__conn_close(m, c, WSM_CAUSE_PROTOCOL, code);
	write_close_frame(m, c);
	return -1;
}

int wsm__conn_receive(wsm_manager_t *m, struct wsm_conn *c, const void *in,
		      size_t len)
{
	struct lws *wsi = c->wsi;

	wsm__conn_activity(m, c);
	/* Nothing a client sends after its close frame counts (RFC 6455 5.5.1). */
	if (c->closing || c->peer_closed)
		return 0;
	if (lws_frame_is_binary(wsi)) {
		wsm__conn_close(m, c, WSM_CAUSE_PROTOCOL, WSM_CLOSE_UNSUPPORTED);
		return 0;
	}
	if (len > (size_t)m->cfg.max_message_size - c->rx_bytes) {
		wsm__conn_close(m, c, WSM_CAUSE_PROTOCOL, WSM_CLOSE_TOO_BIG);
		return 0;
	}
	c->rx_bytes += (uint32_t)len;
	if (!wsm__utf8_feed(&c->rx_utf8, in, len)) {
		wsm__conn_close(m, c, WSM_CAUSE_PROTOCOL,
				WSM_CLOSE_INVALID_PAYLOAD);
		return 0;
	}
	if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
		if (m->cfg.app_ping && c->rx_bytes == len && !c->rx_utf8)
			wsm__app_pong_check(m, c, in, len);
		if (c->rx_utf8)
			wsm__conn_close(m, c, WSM_CAUSE_PROTOCOL,
					WSM_CLOSE_INVALID_PAYLOAD);
		c->rx_bytes = 0;
		c->rx_utf8 = 0;
	}
	return 0;
}

void wsm__session_deliver(wsm_manager_t *m, struct wsm_msg *msg)
{
	struct wsm_session *s =
		wsm__table_find(m, msg->session_id, msg->session_id_len);

	if (!s && m->cfg.retention_ms) {
		/* Kept for whoever connects later (the job may finish first). */
		pthread_mutex_lock(&m->table_lock);
		s = wsm__table_get(m, msg->session_id, msg->session_id_len);
		pthread_mutex_unlock(&m->table_lock);
		if (s && !wsm__session_idle(m, s))
			s = NULL;
	}
	if (!s || !s->open)
		wsm__bump(&m->c.unrouted, 1);
	if (!s)
		return;
	wsm__msg_stamp(msg, s->seq + 1, s->epoch);
	wsm__session_deliver_stamped(m, s, msg);
}

void wsm__session_deliver_stamped(wsm_manager_t *m, struct wsm_session *s,
				  struct wsm_msg *msg)
{
	struct wsm_link *l, *next;

	s->seq = msg->seq;
	if (!wsm__session_keep(m, s, msg))
		return;
	/* A full queue closes its connection, which unlinks it: keep next. */
	for (l = s->conns.next; l != &s->conns; l = next) {
		next = l->next;
		wsm__conn_enqueue(m, wsm_container_of(l, struct wsm_conn, in_session),
				  msg);
	}
}

int wsm__session_close_now(wsm_manager_t *m, const char *id, size_t len)
{
	struct wsm_session *s = wsm__table_find(m, id, len);
	int n = 0;

	while (s && !wsm_list_empty(&s->conns)) {
		wsm__conn_close(m,
				wsm_container_of(s->conns.next, struct wsm_conn,
						 in_session),
				WSM_CAUSE_SESSION_CLOSED, WSM_CLOSE_SESSION_CLOSED);
		n++;
	}
	return n;
}

int wsm__session_open_now(wsm_manager_t *m, const char *id, size_t len)
{
	struct wsm_session *s = wsm__table_find(m, id, len);

	if (s) {
		/* Announced again while idle: its retention starts over. */
		if (!s->refs) {
			wsm__session_busy(m, s);
			wsm__session_idle(m, s);
		}
		return WSM_OK;
	}
	pthread_mutex_lock(&m->table_lock);
	s = wsm__table_get(m, id, len);
	pthread_mutex_unlock(&m->table_lock);
	if (!s)
		return WSM_ENOMEM;
	/* Held like a retained session, within the same bounds. */
	return wsm__session_idle(m, s) ? WSM_OK : WSM_EFULL;
}
