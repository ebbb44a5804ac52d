/*
 * The cross-thread inbox. Any thread appends under a lock and wakes the
 * service loop with lws_cancel_service() only when the inbox was empty (one
 * wake-up per batch); the service thread takes the whole batch in
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED and works on it without the lock.
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
	wake = m->inbox_progress + m->inbox_other == 0;
	msg->next = NULL;
	*m->inbox_tail = msg;
	m->inbox_tail = &msg->next;
	(*share)++;
	/* Under the lock, so the context cannot be unbound meanwhile. */
	if (wake && m->context && !here)
		lws_cancel_service(m->context);
	pthread_mutex_unlock(&m->inbox_lock);
	if (here)
		wsm__inbox_drain(m); /* others' earlier calls, then this one */
	return WSM_OK;
}

static struct wsm_msg *take_all(wsm_manager_t *m)
{
	struct wsm_msg *batch;

	pthread_mutex_lock(&m->inbox_lock);
	batch = m->inbox_head;
	m->inbox_head = NULL;
	m->inbox_tail = &m->inbox_head;
	m->inbox_progress = m->inbox_other = 0;
	pthread_mutex_unlock(&m->inbox_lock);
	return batch;
}

void wsm__inbox_drain(wsm_manager_t *m)
{
	struct wsm_msg *msg = take_all(m), *next;

	for (; msg; msg = next) {
		next = msg->next;
		run(m, msg);
	}
}

void wsm__inbox_discard(wsm_manager_t *m)
{
	struct wsm_msg *msg = take_all(m), *next;

	for (; msg; msg = next) {
		next = msg->next;
		wsm__free(m, msg, msg->alloc_size);
	}
}
