/*
 * Graceful drain: refuse newcomers with 503, let queued messages (terminal
 * ones included) go out, then close every connection with 1001, spread over
 * a window so clients do not all reconnect at once, and report when done.
 */
#include "internal.h"

void wsm__drain_check(wsm_manager_t *m)
{
	wsm_event_cb cb = m->cfg.on_event;

	if (!atomic_load(&m->draining) || m->drained_reported ||
	    !wsm_list_empty(&m->conns))
		return;
	m->drained_reported = true;
	if (cb)
		cb(m->cfg.event_user, WSM_EVENT_DRAINED, 0, "",
		   WSM_CAUSE_SHUTDOWN);
}

void wsm__drain_expire(wsm_manager_t *m, int64_t now_us)
{
	struct wsm_deadline *d;

	/* The drain borrows each connection's lifetime deadline. */
	while ((d = wsm__dq_due(&m->q_drain, now_us)))
		wsm__conn_close(m, wsm_container_of(d, struct wsm_conn, lifetime),
				WSM_CAUSE_SHUTDOWN, WSM_CLOSE_GOING_AWAY);
}

int wsm_drain(wsm_manager_t *m, int64_t window_ms)
{
	struct wsm_link *l;
	int64_t now, n = 0, i = 0;
	int rc = wsm__acquire(m);

	if (rc)
		return rc;
	if (window_ms < 0 || window_ms > 3600000)
		rc = WSM_ERANGE;
	else if (!(rc = wsm__service_check(m)) &&
		 !atomic_exchange(&m->draining, true)) {
		/* What was broadcast before the drain reaches its clients. */
		wsm__inbox_drain(m);
		now = wsm__now_us();
		for (l = m->conns.next; l != &m->conns; l = l->next)
			n += !wsm_container_of(l, struct wsm_conn, in_all)->closing;
		for (l = m->conns.next; l != &m->conns; l = l->next) {
			struct wsm_conn *c =
				wsm_container_of(l, struct wsm_conn, in_all);

			if (c->closing)
				continue;
			wsm__dq_arm_at(&m->q_drain, &c->lifetime,
				       now + window_ms * 1000 * i++ / n);
		}
		wsm__timer_rearm(m);
		wsm__drain_check(m);
		rc = (int)n;
	}
	wsm__release(m);
	return rc;
}
