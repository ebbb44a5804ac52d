/*
 * Deadline queues. Every entry of a queue is armed at now + the same offset,
 * so appending keeps the queue sorted and only its head can be due: idle
 * connections are never scanned, and there is no lws_sul per connection.
 */
#include "internal.h"

void wsm__dq_init(struct wsm_deadline_queue *q, int64_t offset_us)
{
	wsm_list_init(&q->head);
	q->offset_us = offset_us;
}

void wsm__dq_arm_at(struct wsm_deadline_queue *q, struct wsm_deadline *d,
		    int64_t at_us)
{
	wsm_link_remove(&d->link);
	d->at_us = at_us;
	wsm_list_append(&q->head, &d->link);
}

void wsm__dq_arm(struct wsm_deadline_queue *q, struct wsm_deadline *d,
		 int64_t now_us)
{
	wsm__dq_arm_at(q, d, now_us + q->offset_us);
}

void wsm__dq_cancel(struct wsm_deadline *d)
{
	wsm_link_remove(&d->link);
}

struct wsm_deadline *wsm__dq_due(struct wsm_deadline_queue *q, int64_t now_us)
{
	struct wsm_deadline *d;

	if (wsm_list_empty(&q->head))
		return NULL;
	d = wsm_container_of(q->head.next, struct wsm_deadline, link);
	return d->at_us <= now_us ? d : NULL;
}

int64_t wsm__dq_next(const struct wsm_deadline_queue *q)
{
	if (wsm_list_empty(&q->head))
		return INT64_MAX;
	return wsm_container_of(q->head.next, struct wsm_deadline, link)->at_us;
}
