/*
 * The cross-thread inbox. Any thread appends under a lock and wakes the
 * service loop with lws_cancel_service() only when the inbox was empty (one
 * wake-up per batch); the service thread takes the whole batch in
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED and works on it without the lock.
 */
#include "internal.h"

int wsm__inbox_push(wsm_manager_t *m, struct wsm_msg *msg)
{
	bool wake;

	pthread_mutex_lock(&m->inbox_lock);
	if (m->inbox_len >= (size_t)m->cfg.inbox_capacity) {
		pthread_mutex_unlock(&m->inbox_lock);
		return WSM_EAGAIN;
	}
	wake = m->inbox_len == 0;
	msg->next = NULL;
	*m->inbox_tail = msg;
	m->inbox_tail = &msg->next;
	m->inbox_len++;
	/* Under the lock, so the context cannot be unbound meanwhile. */
	if (wake && m->context)
		lws_cancel_service(m->context);
	pthread_mutex_unlock(&m->inbox_lock);
	return WSM_OK;
}

static struct wsm_msg *take_all(wsm_manager_t *m)
{
	struct wsm_msg *batch;

	pthread_mutex_lock(&m->inbox_lock);
	batch = m->inbox_head;
	m->inbox_head = NULL;
	m->inbox_tail = &m->inbox_head;
	m->inbox_len = 0;
	pthread_mutex_unlock(&m->inbox_lock);
	return batch;
}

void wsm__inbox_drain(wsm_manager_t *m)
{
	struct wsm_msg *msg = take_all(m), *next;

	for (; msg; msg = next) {
		next = msg->next;
		msg->next = NULL;
		msg->refs = 1;
		if (msg->kind == WSM_MSG_CLOSE_SESSION)
			wsm__session_close_now(m, msg->session_id,
					       msg->session_id_len);
		else
			wsm__session_deliver(m, msg);
		wsm__msg_unref(m, msg);
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
