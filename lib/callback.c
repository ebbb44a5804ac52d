/*
 * The boundary with lws: attaching to the host's context, the ready protocol
 * entry and its callback, and the dispatcher a host's own protocol callback
 * can delegate to. Everything here runs on the service thread.
 */
#include <strings.h>

#include "guard.h"
#include "internal.h"

int wsm__service_check(wsm_manager_t *m)
{
	int rc = WSM_OK;

	pthread_mutex_lock(&m->inbox_lock);
	if (!m->context)
		rc = WSM_ENOTBOUND;
	else if (!pthread_equal(m->service_thread, pthread_self()))
		rc = WSM_ETHREAD;
	pthread_mutex_unlock(&m->inbox_lock);
	return rc;
}

int wsm__bind(wsm_manager_t *m, struct lws *wsi)
{
	struct lws_context *ctx = lws_get_context(wsi);

	pthread_mutex_lock(&m->inbox_lock);
	if (m->context && m->context != ctx) {
		pthread_mutex_unlock(&m->inbox_lock);
		lwsl_err("wsm: a manager serves one lws context only\n");
		return -1;
	}
	m->context = ctx;
	m->service_thread = pthread_self();
	pthread_mutex_unlock(&m->inbox_lock);
	if (m->bound_vhosts++ == 0) {
		m->vhost = lws_get_vhost(wsi);
#ifdef WSM_WITH_CLUSTER
		if (m->cluster)
			wsm__cluster_start(m);
#endif
		m->next_sweep_us = wsm__now_us() + m->cfg.sweep_interval_ms * 1000;
		wsm__timer_rearm(m);
		wsm__inbox_drain(m); /* anything sent before the loop existed */
	}
	return 0;
}

/* Connections still held when the context goes: it is shutting down. */
static void teardown_all(wsm_manager_t *m)
{
	struct wsm_conn *c;

	while ((c = wsm__any_conn(m)))
		wsm__conn_teardown(m, c, WSM_CAUSE_SHUTDOWN);
}

void wsm__unbind(wsm_manager_t *m)
{
	if (m->bound_vhosts == 0 || --m->bound_vhosts > 0)
		return;
	teardown_all(m);
#ifdef WSM_WITH_CLUSTER
	if (m->cluster)
		wsm__cluster_unbind(m);
	wsm__redis_unbind(m);
#endif
	lws_sul_cancel(&m->sul);
	m->sul_at_us = 0;
	pthread_mutex_lock(&m->inbox_lock);
	m->context = NULL;
	m->vhost = NULL;
	m->wake_pending = false; /* a later context is woken afresh */
	pthread_mutex_unlock(&m->inbox_lock);
}

static struct wsm_conn *conn_of(struct lws *wsi)
{
	struct wsm_conn *c = lws_get_opaque_user_data(wsi);

	return c && c->wsi == wsi ? c : NULL;
}

static wsm_close_cause_t final_cause(const struct wsm_conn *c)
{
	if (c->closing)
		return (wsm_close_cause_t)c->cause;
	return c->peer_closed ? WSM_CAUSE_PEER : WSM_CAUSE_ERROR;
}

int wsm__dispatch(wsm_manager_t *m, struct lws *wsi, int reason, void *user,
		  void *in, size_t len, bool *handled)
{
	struct wsm_conn *c;
	int rc;

	*handled = true;
	switch (reason) {
	case LWS_CALLBACK_PROTOCOL_INIT:
		wsm__setup_check(m, wsi, in);
		return wsm__bind(m, wsi);
	case LWS_CALLBACK_PROTOCOL_DESTROY:
		wsm__unbind(m);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		wsm__inbox_drain(m);
#ifdef WSM_WITH_CLUSTER
		wsm__redis_woken(m); /* a name lookup may be done */
#endif
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		/* libwsm's entry (or the delegating one) is the vhost's first. */
		if ((rc = wsm__confirm_upgrade(m, wsi, in)))
			return rc;
		*handled = false;
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return wsm__filter(m, wsi);
	case LWS_CALLBACK_ESTABLISHED:
		return wsm__established(m, wsi);
	case LWS_CALLBACK_RECEIVE:
		c = conn_of(wsi);
		return c ? wsm__conn_receive(m, c, in, len) : 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		/* A proxy may answer protocol pings itself: with JSON pings on,
		 * only the client's own frames prove it is alive. */
		if ((c = conn_of(wsi)) && !m->cfg.app_ping)
			wsm__conn_activity(m, c);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		c = conn_of(wsi);
		return c ? wsm__conn_writeable(m, c) : 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (!(c = conn_of(wsi)))
			return 0;
		/* The answer to libwsm's own close frame: the handshake is done. */
		if (c->close_sent)
			return -1;
		c->peer_closed = 1;
		return wsm__conn_peer_close(m, c, in, len);
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		if ((c = conn_of(wsi)))
			wsm__conn_teardown(m, c, final_cause(c));
		return 0;
	default:
		*handled = false;
#ifdef WSM_WITH_CLUSTER
		return wsm__redis_callback(m, wsi, reason, user, in, len,
					   handled);
#else
		(void)user;
		return 0;
#endif
	}
}

/* What a manager that is gone answers: upgrades get 503, the rest nothing. */
static int refuse_after_destroy(struct lws *wsi, int reason, const void *in)
{
	if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION ||
	    (reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE && in &&
	     !strcasecmp(in, "websocket")))
		return wsm__refuse(NULL, wsi, WSM_REFUSAL_SHUTDOWN, 0, NULL);
	return 0;
}

int wsm_callback(wsm_manager_t *m, struct lws *wsi, int reason, void *user,
		 void *in, size_t len)
{
	bool handled;
	int rc;

	if (wsm__acquire(m))
		return refuse_after_destroy(wsi, reason, in);
	rc = wsm__dispatch(m, wsi, reason, user, in, len, &handled);
	wsm__release(m);
	return rc;
}

/*
 * The ready protocol's callback. It finds its manager through a per-vhost
 * record that lws owns, which destroy clears: callbacks that arrive after
 * the manager is gone see no manager instead of freed memory.
 */
int wsm__protocol_callback(struct lws *wsi, enum lws_callback_reasons reason,
			   void *user, void *in, size_t len)
{
	const struct lws_protocols *p = lws_get_protocol(wsi);
	struct lws_vhost *vh = lws_get_vhost(wsi);
	struct wsm_binding *b, **pb;
	bool handled = false;
	int rc;

	if (reason == LWS_CALLBACK_PROTOCOL_INIT) {
		wsm_manager_t *m = p->user;

		b = lws_protocol_vh_priv_zalloc(vh, p, sizeof(*b));
		if (!b)
			return -1;
		b->m = m;
		b->next = m->bindings;
		m->bindings = b;
		wsm__setup_check(m, wsi, in);
		return wsm__bind(m, wsi);
	}
	b = p && vh ? lws_protocol_vh_priv_get(vh, p) : NULL;
	if (b && b->m) {
		wsm_manager_t *m = b->m;

		if (reason == LWS_CALLBACK_PROTOCOL_DESTROY) {
			for (pb = &m->bindings; *pb && *pb != b; pb = &(*pb)->next)
				;
			if (*pb)
				*pb = b->next;
			b->m = NULL;
		}
		rc = wsm__dispatch(m, wsi, (int)reason, user, in, len, &handled);
		if (handled)
			return rc;
	} else {
		switch (reason) {
		case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
			if ((rc = refuse_after_destroy(wsi, (int)reason, in)))
				return rc;
			break;
		case LWS_CALLBACK_SERVER_WRITEABLE:
		case LWS_CALLBACK_RECEIVE:
			/* Left behind by destroy: let lws finish closing it. */
			return -1;
		default:
			break;
		}
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols *wsm_protocol(wsm_manager_t *m)
{
	const struct lws_protocols *p = NULL;

	if (!wsm__acquire(m)) {
		p = &m->protocol;
		wsm__release(m);
	}
	return p;
}
