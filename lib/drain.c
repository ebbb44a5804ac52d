/*
 * Graceful drain: refuse newcomers with 503, let queued messages (terminal
 * ones included) go out, then close every connection with 1001, spread over
 * a window so clients do not all reconnect at once, and report when done.
 */
#include <string.h>

#include "internal.h"

void wsm__drain_check(wsm_manager_t *m)
{
	wsm_event_cb cb = m->cfg.on_event;

	/* lws may be about to poll until its next timer: wake the wait. */
	if (m->drain_waiting && wsm__no_conns(m))
		lws_cancel_service(m->context);
	if (!atomic_load(&m->draining) || m->drained_reported ||
	    !wsm__no_conns(m))
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
		n = (int64_t)atomic_load_explicit(&m->c.open,
						  memory_order_relaxed);
		for (l = m->pings.next; l != &m->pings; l = l->next)
			wsm__dq_arm_at(&m->q_drain,
				       &wsm_container_of(l, struct wsm_conn,
							 in_pings)->lifetime,
				       now + window_ms * 1000 * i++ / n);
		wsm__timer_rearm(m);
		wsm__drain_check(m);
		rc = (int)n;
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

static uint64_t held(wsm_manager_t *m)
{
	return atomic_load_explicit(&m->c.open, memory_order_relaxed) +
	       atomic_load_explicit(&m->c.closing, memory_order_relaxed);
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
