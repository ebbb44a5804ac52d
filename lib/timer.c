/*
 * Time-driven work: one lws_sul per manager, armed at the earliest deadline
 * of its queues (pings, which also judge silence; lifetimes; retention; a
 * drain's closes) or the next sweep. Expiry only looks at queue heads, so
 * idle connections cost nothing until due.
 */
#include "internal.h"

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void on_timer(lws_sorted_usec_list_t *sul)
{
	wsm_manager_t *m = wsm_container_of(sul, wsm_manager_t, sul);

	m->sul_at_us = 0;
	wsm__expire(m, wsm__now_us());
	wsm__timer_rearm(m);
}

void wsm__timer_rearm(wsm_manager_t *m)
{
	int64_t next, now = wsm__now_us();
	int i;

	if (!m->context)
		return;
	next = min64(wsm__next_ping(m), m->next_sweep_us);
	next = min64(next, min64(wsm__dq_next(&m->q_retain),
				 wsm__dq_next(&m->q_drain)));
	next = min64(next, wsm__drain_next(m));
	for (i = 0; i < WSM_LIFETIME_SLOTS; i++)
		next = min64(next, wsm__dq_next(&m->q_lifetime[i]));
	/* Already due no later: firing early just finds nothing and rearms. */
	if (m->sul_at_us && m->sul_at_us <= next)
		return;
	lws_sul_schedule(m->context, 0, &m->sul, on_timer,
			 next > now ? next - now : 0);
	m->sul_at_us = next;
}

static struct wsm_conn *conn_of(struct wsm_deadline *d, size_t offset)
{
	return (struct wsm_conn *)(void *)((char *)d - offset);
}

static struct wsm_conn *first_ping(wsm_manager_t *m)
{
	if (wsm_list_empty(&m->pings))
		return NULL;
	return wsm_container_of(m->pings.next, struct wsm_conn, in_pings);
}

int64_t wsm__next_ping(wsm_manager_t *m)
{
	struct wsm_conn *c = first_ping(m);

	return c ? c->last_ping_us + m->ping_interval_us : INT64_MAX;
}

int wsm__expire(wsm_manager_t *m, int64_t now)
{
	struct wsm_deadline *d;
	struct wsm_conn *c;
	int closed = 0, i;

	for (i = 0; i < WSM_LIFETIME_SLOTS; i++)
		while ((d = wsm__dq_due(&m->q_lifetime[i], now))) {
			c = conn_of(d, offsetof(struct wsm_conn, lifetime));
			wsm__conn_close(m, c, WSM_CAUSE_LIFETIME,
					WSM_CLOSE_LIFETIME);
			closed++;
		}
	wsm__drain_expire(m, now);
	/* Pings due a little later go now too: fewer wake-ups, same load. */
	while ((c = first_ping(m)) &&
	       c->last_ping_us + m->ping_interval_us <= now + m->ping_slack_us) {
		/*
		 * Silence is judged at the ping ticks, so a connection needs no
		 * deadline of its own for it (24 bytes each) and a frame from
		 * the client moves nothing: stale closes come at most one
		 * interval after the stale timeout.
		 */
		if (now - c->last_rx_us >= m->cfg.stale_timeout_ms * 1000) {
			wsm__conn_close(m, c, WSM_CAUSE_STALE, WSM_CLOSE_STALE);
			closed++;
			continue;
		}
		if (c->last_rx_us < c->last_ping_us && !c->is_stale) {
			c->is_stale = 1;
			wsm__bump(&m->c.stale, 1);
		}
		c->last_ping_us = now;
		c->ping_due = 1;
		c->app_ping_due = m->cfg.app_ping ? 1 : 0;
		wsm_link_remove(&c->in_pings);
		wsm_list_append(&m->pings, &c->in_pings);
		lws_callback_on_writable(c->wsi);
	}
	wsm__retention_expire(m, now);
	if (now >= m->next_sweep_us)
		m->next_sweep_us = now + m->cfg.sweep_interval_ms * 1000;
	return closed;
}

int wsm_sweep(wsm_manager_t *m)
{
	int rc = wsm__acquire(m);

	if (rc)
		return rc;
	rc = wsm__service_check(m);
	if (!rc) {
		rc = wsm__expire(m, wsm__now_us());
		wsm__timer_rearm(m);
	}
	wsm__release(m);
	return rc;
}
