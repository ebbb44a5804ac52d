/*
 * Graceful drain: refuse newcomers with 503, let queued messages (terminal
 * ones included) go out, then close every connection with 1001, spread over
 * a window so clients do not all reconnect at once, and report when done.
 * In cluster mode a broadcast reaches this node's clients too only through
 * Redis: the closes wait (within the window) until the outbox is
 * confirmed, and the drain is done when it is, or when the window is over.
 */
#include <string.h>

#include "internal.h"

/* Whether every broadcast accepted so far is confirmed by Redis. */
static bool outbox_empty(wsm_manager_t *m)
{
#ifdef WSM_WITH_CLUSTER
	return !m->cluster || (!wsm__cluster_outbox(m, false) &&
			       !wsm__cluster_outbox(m, true));
#else
	(void)m;
	return true;
#endif
}

void wsm__drain_check(wsm_manager_t *m)
{
	wsm_event_cb cb = m->cfg.on_event;
	bool done = wsm__no_conns(m) && !m->drain_closes_waiting &&
		    (m->drain_window_over || outbox_empty(m));

	/* lws may be about to poll until its next timer: wake the wait. */
	if (m->drain_waiting && done)
		lws_cancel_service(m->context);
	if (!atomic_load(&m->draining) || m->drained_reported || !done)
		return;
	m->drained_reported = true;
	if (cb)
		cb(m->cfg.event_user, WSM_EVENT_DRAINED, 0, "",
		   WSM_CAUSE_SHUTDOWN);
}

/* Every open connection gets its 1001, spread from now over window_us. */
static void schedule_closes(wsm_manager_t *m, int64_t now, int64_t window_us)
{
	struct wsm_link *l;
	int64_t n = (int64_t)atomic_load_explicit(&m->c.open,
						  memory_order_relaxed), i = 0;

	for (l = m->pings.next; l != &m->pings; l = l->next)
		wsm__dq_arm_at(&m->q_drain,
			       &wsm_container_of(l, struct wsm_conn,
						 in_pings)->lifetime,
			       now + window_us * i++ / n);
	m->drain_closes_waiting = false;
	wsm__timer_rearm(m);
}

void wsm__drain_expire(wsm_manager_t *m, int64_t now_us)
{
	struct wsm_deadline *d;

	if (atomic_load(&m->draining) && !m->drain_window_over &&
	    now_us >= m->drain_until_us) {
		m->drain_window_over = true;
		if (!outbox_empty(m))
			lwsl_warn("wsm: drain window over with broadcasts "
				  "Redis has not confirmed\n");
		if (m->drain_closes_waiting)
			schedule_closes(m, now_us, 0);
		wsm__drain_check(m);
	}
	/* The drain borrows each connection's lifetime deadline. */
	while ((d = wsm__dq_due(&m->q_drain, now_us)))
		wsm__conn_close(m, wsm_container_of(d, struct wsm_conn, lifetime),
				WSM_CAUSE_SHUTDOWN, WSM_CLOSE_GOING_AWAY);
}

int64_t wsm__drain_next(const wsm_manager_t *m)
{
	return atomic_load(&m->draining) && !m->drain_window_over
		       ? m->drain_until_us
		       : INT64_MAX;
}

void wsm__drain_confirmed(wsm_manager_t *m)
{
	int64_t now;

	if (!atomic_load_explicit(&m->draining, memory_order_relaxed) ||
	    !outbox_empty(m))
		return;
	if (m->drain_closes_waiting) {
		now = wsm__now_us();
		schedule_closes(m, now, m->drain_until_us > now
						? m->drain_until_us - now
						: 0);
	}
	wsm__drain_check(m);
}

int wsm_drain(wsm_manager_t *m, int64_t window_ms)
{
	int64_t now;
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
		m->drain_until_us = now + window_ms * 1000;
		rc = (int)atomic_load_explicit(&m->c.open,
					       memory_order_relaxed);
		if (outbox_empty(m)) {
			schedule_closes(m, now, window_ms * 1000);
		} else {
			m->drain_closes_waiting = true;
			wsm__timer_rearm(m);
		}
		wsm__drain_check(m);
	}
	wsm__release(m);
	return rc;
}

/* Ends an lws_service() wait at the deadline. */
struct drain_alarm {
	lws_sorted_usec_list_t sul;
	struct lws_context *ctx;
	bool rung;
};

static void alarm_ring(lws_sorted_usec_list_t *sul)
{
	struct drain_alarm *a = lws_container_of(sul, struct drain_alarm, sul);

	a->rung = true;
	/* lws runs timers before it polls: make that poll return at once. */
	lws_cancel_service(a->ctx);
}

/*
 * What the wait is for: connections, and (in cluster mode) broadcasts
 * Redis has not confirmed, also past the drain's window: the caller's
 * timeout bounds it.
 */
static bool held(wsm_manager_t *m)
{
	return atomic_load_explicit(&m->c.open, memory_order_relaxed) +
		       atomic_load_explicit(&m->c.closing,
					    memory_order_relaxed) ||
	       m->drain_closes_waiting || !outbox_empty(m);
}

int wsm_drain_wait(wsm_manager_t *m, int64_t timeout_ms)
{
	struct drain_alarm a;
	int rc = wsm__acquire(m);

	if (rc)
		return rc;
	if (timeout_ms < 0 || timeout_ms > 3600000)
		rc = WSM_ERANGE;
	else
		rc = wsm__service_check(m);
	if (rc) {
		wsm__release(m);
		return rc;
	}
	memset(&a, 0, sizeof(a));
	a.ctx = m->context;
	lws_sul_schedule(a.ctx, 0, &a.sul, alarm_ring,
			 (lws_usec_t)timeout_ms * LWS_US_PER_MS);
	/*
	 * Each close finishes within the close grace (lws's timeout), so the
	 * loop ends: the last teardown wakes it (wsm__drain_check()), or the
	 * alarm does.
	 */
	m->drain_waiting = true;
	while (held(m) && !a.rung && lws_service(a.ctx, 0) >= 0)
		continue;
	m->drain_waiting = false;
	lws_sul_cancel(&a.sul);
	rc = held(m) ? WSM_ETIMEDOUT : WSM_OK;
	wsm__release(m);
	return rc;
}
