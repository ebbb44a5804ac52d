/* Creating and destroying a manager. */
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "internal.h"

static int cross_check(const struct wsm_settings *s)
{
	/* A healthy client may stay silent until it answers a ping. */
	if (s->stale_timeout_ms <= s->ping_interval_ms)
		return wsm__fail(WSM_ERANGE,
				 "WSM_OPT_STALE_TIMEOUT_MS (%lld) must be above "
				 "WSM_OPT_PING_INTERVAL_MS (%lld): a quiet, "
				 "healthy client is heard from only when it "
				 "answers a ping",
				 (long long)s->stale_timeout_ms,
				 (long long)s->ping_interval_ms);
	if (s->announced_only && !s->retention_ms)
		return wsm__fail(WSM_ERANGE,
				 "WSM_OPT_ANNOUNCED_ONLY needs WSM_OPT_RETENTION_MS "
				 "above 0: an announced session is held as a "
				 "retained one until its first connection");
	if (s->max_per_session > s->max_connections)
		return wsm__fail(WSM_ERANGE,
				 "WSM_OPT_MAX_CONNECTIONS_PER_SESSION (%lld) "
				 "must not be above WSM_OPT_MAX_CONNECTIONS "
				 "(%lld)",
				 (long long)s->max_per_session,
				 (long long)s->max_connections);
	if (s->cluster_redis[0] && !s->retention_ms)
		return wsm__fail(WSM_ERANGE,
				 "cluster mode needs WSM_OPT_RETENTION_MS above "
				 "0: it is how long Redis keeps a session's "
				 "state");
	return WSM_OK;
}

static void set_err(int *err, int rc)
{
	if (err)
		*err = rc;
}

wsm_manager_t *wsm_manager_new(const wsm_config_t *cfg, int *err)
{
	wsm_manager_t *m;
	int64_t jitter_us;
	int rc, i;

	m = calloc(1, sizeof(*m));
	if (!m) {
		set_err(err, wsm__fail(WSM_ENOMEM, "out of memory"));
		return NULL;
	}
	if (cfg)
		m->cfg = cfg->s;
	else
		wsm__settings_defaults(&m->cfg);
	rc = cross_check(&m->cfg);
	if (!rc && (rc = wsm__table_init(m)))
		wsm__detail("out of memory");
	if (!rc && !(m->protocol.name = wsm__intern_name(m->cfg.protocol_name)))
		rc = wsm__fail(WSM_ENOMEM, "out of memory");
	if (rc) {
		wsm__table_free(m);
		wsm__settings_wipe(&m->cfg);
		free(m);
		set_err(err, rc);
		return NULL;
	}
	pthread_mutex_init(&m->inbox_lock, NULL);
	pthread_mutex_init(&m->table_lock, NULL);
	m->inbox_tail = &m->inbox_head;
	wsm_list_init(&m->pings);
	wsm_list_init(&m->redis_conns);
	wsm_list_init(&m->closing);
	m->ping_interval_us = m->cfg.ping_interval_ms * 1000;
	/* Slot k closes at lifetime - jitter + k/(slots-1) of the jitter. */
	jitter_us = m->cfg.max_lifetime_ms * 1000 * m->cfg.lifetime_jitter_pct / 100;
	for (i = 0; i < WSM_LIFETIME_SLOTS; i++)
		wsm__dq_init(&m->q_lifetime[i],
			     m->cfg.max_lifetime_ms * 1000 - jitter_us +
				     jitter_us * i / (WSM_LIFETIME_SLOTS - 1));
	wsm__dq_init(&m->q_drain, 0);
	wsm__dq_init(&m->q_retain, m->cfg.retention_ms * 1000);
	/* Batch pings due within 1/16 of the interval (at most 1 s). */
	m->ping_slack_us = m->cfg.ping_interval_ms * 1000 / 16;
	if (m->ping_slack_us > 1000000)
		m->ping_slack_us = 1000000;

	m->protocol.callback = wsm__protocol_callback;
	m->protocol.rx_buffer_size = (size_t)m->cfg.rx_buffer_size;
	/* lws caps each send() at rx_buffer_size unless told otherwise: a
	 * message longer than the receive buffer would go out in pieces. */
	m->protocol.tx_packet_size = WSM_TX_PACKET_SIZE;
	m->protocol.user = m;
#ifdef WSM_WITH_CLUSTER
	/* It says what it found wrong. */
	if (m->cfg.cluster_redis[0] && (rc = wsm__cluster_new(m))) {
		wsm__redis_free_all(m);
		wsm__table_free(m);
		pthread_mutex_destroy(&m->inbox_lock);
		pthread_mutex_destroy(&m->table_lock);
		wsm__settings_wipe(&m->cfg);
		free(m);
		set_err(err, rc);
		return NULL;
	}
#endif
	wsm__registry_add(m);
	wsm__detail("%s", "");
	set_err(err, WSM_OK);
	return m;
}

/*
 * Hands a connection back to lws with 1001 as its close reason: lws sends
 * the close frame itself as its loop runs, without calling us again. One
 * whose close frame libwsm already wrote is only dropped: a second close
 * frame would break the closing handshake.
 */
static void close_going_away(struct lws *wsi, bool frame_sent)
{
	static const char text[] = "server shutdown";

	if (!frame_sent)
		lws_close_reason(wsi, (enum lws_close_status)WSM_CLOSE_GOING_AWAY,
				 (unsigned char *)(uintptr_t)text,
				 sizeof(text) - 1);
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

void wsm_manager_destroy(wsm_manager_t *m)
{
	struct wsm_binding *b;
	struct wsm_conn *c;

	if (!m || !wsm__registry_remove(m))
		return;
	atomic_store(&m->shutting_down, true);
	for (b = m->bindings; b; b = b->next)
		b->m = NULL;
	while ((c = wsm__any_conn(m))) {
		struct lws *wsi = c->wsi;
		bool frame_sent = c->close_sent;

		wsm__conn_teardown(m, c, WSM_CAUSE_SHUTDOWN);
		close_going_away(wsi, frame_sent);
	}
	if (m->context)
		lws_sul_cancel(&m->sul);
	/* Before the cluster goes: it tells of what the inbox held. */
	wsm__inbox_discard(m);
#ifdef WSM_WITH_CLUSTER
	wsm__cluster_free(m);
	wsm__redis_free_all(m);
#endif
	wsm__guard_release(m);
	wsm__protocol_lists_free(m);
	wsm__table_free(m);
	pthread_mutex_destroy(&m->inbox_lock);
	pthread_mutex_destroy(&m->table_lock);
	wsm__settings_wipe(&m->cfg);
	free(m);
}
