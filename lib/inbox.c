/*
 * The cross-thread inbox. Any thread appends under a lock; the first to find
 * no wake-up pending wakes the service loop with lws_cancel_service(). The
 * service thread takes the whole batch in LWS_CALLBACK_EVENT_WAIT_CANCELLED
 * and works on it without the lock, then takes what arrived meanwhile, and
 * the wake-up stays pending until it finds the inbox empty: producers that
 * keep calling while the loop works cost no further wake-ups (each is a
 * pipe write, a context switch and a poll() over every socket). After a few
 * rounds it lets lws write what was queued, waking itself to come back.
 *
 * Progress and the rest (error, complete, close-session) are bounded
 * separately, each by WSM_OPT_INBOX_CAPACITY: a producer flooding progress
 * can fill only its own share, so a terminal message is never refused
 * because progress is pending.
 *
 * A call made on the service thread itself (from a callback or an lws
 * timer) skips the inbox: it is run at once, after whatever other threads
 * queued before it, so no wake-up, no lock round trip per message and no
 * reordering against a worker's earlier calls. Not from inside the host's
 * event callback, though: the connection it reports is still being made
 * (an open's replay must go first) or unmade.
 */
#include "internal.h"

static void run(wsm_manager_t *m, struct wsm_msg *msg)
{
	msg->next = NULL;
	msg->refs = 1;
#ifdef WSM_WITH_CLUSTER
	/*
	 * Through Redis, back to every node (this one too) in one order; an
	 * announcement is this node's at once, and every node's through
	 * Redis.
	 */
	if (m->cluster && msg->kind == WSM_MSG_OPEN_SESSION)
		wsm__session_open_now(m, msg->session_id, msg->session_id_len);
	if (m->cluster)
		wsm__cluster_publish(m, msg);
	else
#endif
	if (msg->kind == WSM_MSG_CLOSE_SESSION)
		wsm__session_close_now(m, msg->session_id, msg->session_id_len);
	else if (msg->kind == WSM_MSG_OPEN_SESSION)
		wsm__session_open_now(m, msg->session_id, msg->session_id_len);
	else
		wsm__session_deliver(m, msg);
	wsm__msg_unref(m, msg);
}

int wsm__inbox_push(wsm_manager_t *m, struct wsm_msg *msg)
{
	bool wake, here;
	size_t *share;

	pthread_mutex_lock(&m->inbox_lock);
	here = m->context && pthread_equal(m->service_thread, pthread_self()) &&
	       !m->in_event;
	if (here && !m->inbox_progress && !m->inbox_other) {
		pthread_mutex_unlock(&m->inbox_lock);
		run(m, msg);
		return WSM_OK;
	}
	share = msg->kind == WSM_MSG_PROGRESS ? &m->inbox_progress
					      : &m->inbox_other;
	if (*share >= (size_t)m->cfg.inbox_capacity) {
		pthread_mutex_unlock(&m->inbox_lock);
		return WSM_EAGAIN;
	}
	wake = !m->wake_pending && m->context && !here;
	msg->next = NULL;
	*m->inbox_tail = msg;
	m->inbox_tail = &msg->next;
	(*share)++;
	/* Under the lock, so the context cannot be unbound meanwhile. */
	if (wake) {
		m->wake_pending = true;
		lws_cancel_service(m->context);
	}
	pthread_mutex_unlock(&m->inbox_lock);
	if (here)
		wsm__inbox_drain(m); /* others' earlier calls, then this one */
	return WSM_OK;
}

/* The whole batch; none ends the pending wake-up. */
static struct wsm_msg *take_all(wsm_manager_t *m)
{
	struct wsm_msg *batch;

	pthread_mutex_lock(&m->inbox_lock);
	batch = m->inbox_head;
	if (!batch)
		m->wake_pending = false;
	m->inbox_head = NULL;
	m->inbox_tail = &m->inbox_head;
	m->inbox_progress = m->inbox_other = 0;
	pthread_mutex_unlock(&m->inbox_lock);
	return batch;
}

#define DRAIN_ROUNDS 4

void wsm__inbox_drain(wsm_manager_t *m)
{
	struct wsm_msg *msg, *next;
	int round;

	for (round = 0; round < DRAIN_ROUNDS; round++) {
		if (!(msg = take_all(m)))
			return;
		for (; msg; msg = next) {
			next = msg->next;
			run(m, msg);
		}
	}
	/* Still coming: sockets first, then back (the wake-up stays pending). */
	pthread_mutex_lock(&m->inbox_lock);
	if (m->context)
		lws_cancel_service(m->context);
	else
		m->wake_pending = false;
	pthread_mutex_unlock(&m->inbox_lock);
}

void wsm__inbox_discard(wsm_manager_t *m)
{
	struct wsm_msg *msg = take_all(m), *next;

	for (; msg; msg = next) {
		next = msg->next;
#ifdef WSM_WITH_CLUSTER
		if (m->cluster)
			wsm__cluster_drop_unsent(m, msg);
#endif
		wsm__free(m, msg, msg->alloc_size);
	}
}
