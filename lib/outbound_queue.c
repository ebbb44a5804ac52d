/*
 * A connection's outbound queue: a ring of references to shared messages,
 * bounded in messages and in bytes. Progress is "latest wins": a newer
 * progress message takes the place of an unsent older one (whose slot becomes
 * a hole, so nothing is reordered), while error and complete always queue.
 */
#include "internal.h"

static uint32_t slot(const struct wsm_queue *q, uint32_t i)
{
	return (q->head + i) % q->cap;
}

/* Closes the holes left by coalescing, keeping the order. */
static void compact(struct wsm_queue *q)
{
	uint32_t i, n = 0;

	q->progress_at = 0;
	for (i = 0; i < q->len; i++) {
		struct wsm_msg *msg = q->slots[slot(q, i)];

		if (!msg)
			continue;
		q->slots[slot(q, n)] = msg;
		if (msg->kind == WSM_MSG_PROGRESS)
			q->progress_at = n + 1;
		n++;
	}
	q->len = n;
}

enum wsm_push wsm__queue_push(wsm_manager_t *m, struct wsm_queue *q,
			      struct wsm_msg *msg)
{
	enum wsm_push result = WSM_PUSH_QUEUED;
	struct wsm_msg **old;

	if (!q->slots) {
		q->cap = (uint32_t)m->cfg.max_queued;
		q->slots = wsm__alloc(m, q->cap * sizeof(*q->slots));
		if (!q->slots)
			return WSM_PUSH_NOMEM;
	}
	if (msg->kind == WSM_MSG_PROGRESS && q->progress_at) {
		old = &q->slots[slot(q, q->progress_at - 1)];
		q->bytes -= (*old)->payload_len;
		wsm__bump(&m->c.queued_bytes, -(int64_t)(*old)->payload_len);
		wsm__msg_unref(m, *old);
		*old = NULL;
		q->progress_at = 0;
		result = WSM_PUSH_COALESCED;
	}
	if (q->len == q->cap)
		compact(q);
	if (q->len == q->cap ||
	    q->bytes + msg->payload_len > (uint64_t)m->cfg.max_queued_bytes)
		return WSM_PUSH_FULL;
	q->slots[slot(q, q->len)] = msg;
	q->len++;
	if (msg->kind == WSM_MSG_PROGRESS)
		q->progress_at = q->len;
	q->bytes += msg->payload_len;
	wsm__bump(&m->c.queued_bytes, (int64_t)msg->payload_len);
	msg->refs++;
	return result;
}

struct wsm_msg *wsm__queue_pop(wsm_manager_t *m, struct wsm_queue *q)
{
	struct wsm_msg *msg = NULL;

	while (q->len && !msg) {
		msg = q->slots[q->head];
		q->head = (q->head + 1) % q->cap;
		q->len--;
		if (q->progress_at)
			q->progress_at--;
	}
	if (msg) {
		q->bytes -= msg->payload_len;
		wsm__bump(&m->c.queued_bytes, -(int64_t)msg->payload_len);
	}
	return msg;
}

bool wsm__queue_empty(const struct wsm_queue *q)
{
	uint32_t i;

	for (i = 0; i < q->len; i++)
		if (q->slots[slot(q, i)])
			return false;
	return true;
}

void wsm__queue_free(wsm_manager_t *m, struct wsm_queue *q)
{
	struct wsm_msg *msg;

	while ((msg = wsm__queue_pop(m, q)))
		wsm__msg_unref(m, msg);
	wsm__free(m, q->slots, q->cap * sizeof(*q->slots));
	q->slots = NULL;
	q->head = q->len = q->progress_at = 0;
}
