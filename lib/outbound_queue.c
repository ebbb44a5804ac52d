/*
 * A connection's outbound queue: a ring of references to shared messages,
 * bounded in messages and in bytes. Progress is "latest wins": a newer
 * progress message takes the place of an unsent older one (whose slot becomes
 * a hole, so nothing is reordered), while error and complete always queue.
 *
 * A late joiner's replay (at most a reset, a progress and a terminal) is
 * queued first, on the empty queue of a new connection, into room of its
 * own: it never counts against the bounds, so any option values can hold
 * it, and live messages get the whole bound once it is out. The replay
 * holds the first 'replay_span' positions of the ring (holes included).
 *
 * The ring starts at four slots and doubles up to the bound as it fills:
 * most connections never hold more than a message or two, and a slot
 * array sized for the bound would cost 280 bytes each by default.
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
	q->replay_span = q->replay_left; /* its holes are gone too */
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

/* Live messages queued, counting holes until compact() removes them. */
static uint32_t live_positions(const struct wsm_queue *q)
{
	return q->len - q->replay_span;
}

static bool over_bounds(wsm_manager_t *m, const struct wsm_queue *q,
			const struct wsm_msg *msg)
{
	return live_positions(q) >= (uint32_t)m->cfg.max_queued ||
	       q->bytes - q->replay_bytes + msg->payload_len >
		       (uint64_t)m->cfg.max_queued_bytes;
}

/*
 * High-water marks of what the bounds limit (the replay aside), so tests
 * and operators read the worst case rather than sample for it.
 */
static void note_peak(wsm_manager_t *m, const struct wsm_queue *q)
{
	uint64_t bytes = q->bytes - q->replay_bytes;
	uint64_t msgs = live_positions(q);

	if (bytes > atomic_load_explicit(&m->c.queue_peak_bytes,
					 memory_order_relaxed))
		atomic_store_explicit(&m->c.queue_peak_bytes, bytes,
				      memory_order_relaxed);
	if (msgs > atomic_load_explicit(&m->c.queue_peak_messages,
					memory_order_relaxed))
		atomic_store_explicit(&m->c.queue_peak_messages, msgs,
				      memory_order_relaxed);
}

/* Doubles the ring, up to the bound, keeping the order from slot 0. */
static enum wsm_push grow(wsm_manager_t *m, struct wsm_queue *q)
{
	uint32_t max = (uint32_t)m->cfg.max_queued + WSM_REPLAY_MAX;
	uint32_t cap = q->cap ? 2u * q->cap : 4u, i;
	struct wsm_msg **slots;

	if (cap > max)
		cap = max;
	if (cap <= q->cap)
		return WSM_PUSH_FULL;
	slots = wsm__alloc(m, cap * sizeof(*slots));
	if (!slots)
		return WSM_PUSH_NOMEM;
	for (i = 0; i < q->len; i++)
		slots[i] = q->slots[slot(q, i)];
	wsm__free(m, q->slots, q->cap * sizeof(*q->slots));
	q->slots = slots;
	q->head = 0;
	q->cap = (uint16_t)cap;
	return WSM_PUSH_QUEUED;
}

/* Takes the queued message at relative position pos out of the counts. */
static void forget(wsm_manager_t *m, struct wsm_queue *q, uint32_t pos,
		   const struct wsm_msg *msg)
{
	q->bytes -= msg->payload_len;
	wsm__bump(&m->c.queued_bytes, -(int64_t)msg->payload_len);
	if (pos < q->replay_span) {
		q->replay_left--;
		q->replay_bytes -= msg->payload_len;
	}
}

enum wsm_push wsm__queue_push(wsm_manager_t *m, struct wsm_queue *q,
			      struct wsm_msg *msg, enum wsm_push_how how)
{
	enum wsm_push result = WSM_PUSH_QUEUED, grown;
	bool replay = how == WSM_QUEUE_REPLAY;
	struct wsm_msg **old;

	/* A replay goes first on an empty queue; anything else is a bug. */
	if (replay && q->len != q->replay_span)
		return WSM_PUSH_FULL;
	if (msg->kind == WSM_MSG_PROGRESS && q->progress_at &&
	    how != WSM_QUEUE_IN_ORDER) {
		uint32_t pos = q->progress_at - 1;

		old = &q->slots[slot(q, pos)];
		forget(m, q, pos, *old);
		wsm__msg_unref(m, *old);
		*old = NULL;
		q->progress_at = 0;
		result = WSM_PUSH_COALESCED;
	}
	if (!replay && (over_bounds(m, q, msg) || q->len == q->cap)) {
		compact(q);
		if (over_bounds(m, q, msg))
			return WSM_PUSH_FULL;
	}
	if (q->len == q->cap && (grown = grow(m, q)) != WSM_PUSH_QUEUED)
		return grown;
	q->slots[slot(q, q->len)] = msg;
	q->len++;
	/* History stays as asked for: only a later live progress replaces. */
	if (msg->kind == WSM_MSG_PROGRESS)
		q->progress_at = how == WSM_QUEUE_IN_ORDER ? 0 : q->len;
	q->bytes += msg->payload_len;
	if (replay) {
		q->replay_span++;
		q->replay_left++;
		q->replay_bytes += msg->payload_len;
	} else {
		note_peak(m, q);
	}
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
		if (msg)
			forget(m, q, 0, msg);
		if (q->replay_span)
			q->replay_span--;
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
	q->replay_span = q->replay_left = 0;
	q->replay_bytes = 0;
}
