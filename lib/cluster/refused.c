/*
 * When Redis refuses a command. Some errors are the instance's: NOSCRIPT
 * (its script cache was flushed) has the scripts loaded again on the same
 * connection; LOADING, BUSY, READONLY, OOM and their kind make every
 * session of the instance wait out a backoff (doubling per refusal up to
 * WSM_OPT_CLUSTER_RETRY_MAX_MS, back to the shortest after a success).
 * Any other error is the session's own, from data the scripts cannot use:
 * that session alone waits out the backoff. Either way the publish stays in
 * flight with its publish id, so a retry is applied once, and the link
 * stays up: other sessions never wait for one session's trouble, and
 * nothing is dropped (the outbox's bound tells callers when it is full).
 */
#include <string.h>

#include "cluster.h"

enum refusal { REFUSED_NOSCRIPT, REFUSED_INSTANCE, REFUSED_SESSION };

/* Redis's error codes that speak of the instance, not of the keys. */
static enum refusal kind_of(const redisReply *r)
{
	static const char *const instance[] = {
		"LOADING", "BUSY", "READONLY", "OOM", "MASTERDOWN", "MISCONF",
		"TRYAGAIN", "NOREPLICAS", "CLUSTERDOWN", "NOAUTH", "NOPERM",
	};
	size_t n = 0, i;

	while (n < r->len && r->str[n] != ' ')
		n++;
	if (n == 8 && !memcmp(r->str, "NOSCRIPT", 8))
		return REFUSED_NOSCRIPT;
	for (i = 0; i < sizeof(instance) / sizeof(instance[0]); i++)
		if (strlen(instance[i]) == n && !memcmp(r->str, instance[i], n))
			return REFUSED_INSTANCE;
	return REFUSED_SESSION;
}

static bool life_may_change(const redisReply *r)
{
	return (r->len >= 8 && !memcmp(r->str, "READONLY", 8)) ||
	       (r->len >= 7 && !memcmp(r->str, "LOADING", 7)) ||
	       (r->len >= 10 && !memcmp(r->str, "MASTERDOWN", 10));
}

bool wsm__instance_open(const struct wsm_instance *in)
{
	return in->ready && in->life_known && !in->paused && !in->reloading;
}

static unsigned index_of(const struct wsm_instance *in)
{
	return (unsigned)(in - in->cl->inst);
}

void wsm__instance_resume(struct wsm_instance *in)
{
	struct wsm_cluster *cl = in->cl;

	while (!wsm_list_empty(&in->waiting)) {
		struct wsm_csess *cs = wsm_container_of(in->waiting.next,
							struct wsm_csess,
							in_ready);

		wsm_link_remove(&cs->in_ready);
		cs->waiting = false;
		wsm_list_append(&cl->ready, &cs->in_ready);
	}
	wsm__sync_load_waiting(cl, index_of(in));
	wsm__outbox_pump_all(cl, index_of(in));
}

/* The wait is over: everything the instance holds back is tried again. */
static void waited(lws_sorted_usec_list_t *sul)
{
	struct wsm_instance *in = wsm_container_of(sul, struct wsm_instance,
						   sul_waiting);

	in->waiting_armed = false;
	in->paused = false;
	if (!in->life_known) {
		/* Asked again first: what is held back resumes on the answer. */
		wsm__instance_read_life(in);
		return;
	}
	wsm__instance_resume(in);
}

static void wait_out(struct wsm_instance *in)
{
	struct wsm_cluster *cl = in->cl;

	if (in->waiting_armed || !cl->m->context)
		return;
	in->backoff_us = in->backoff_us ? in->backoff_us * 2
					: cl->timing.retry_min_us;
	if (in->backoff_us > cl->timing.retry_max_us)
		in->backoff_us = cl->timing.retry_max_us;
	in->waiting_armed = true;
	lws_sul_schedule(cl->m->context, 0, &in->sul_waiting, waited,
			 in->backoff_us);
}

void wsm__refused(struct wsm_csess *cs, const redisReply *r)
{
	struct wsm_cluster *cl = cs->cl;
	struct wsm_instance *in = &cl->inst[cs->instance];
	enum refusal why = kind_of(r);

	lwsl_warn("wsm: redis refused a command of %.*s: %.*s\n",
		  (int)cs->id_len, cs->id, (int)r->len, r->str);
	if (why == REFUSED_SESSION) {
		/* Only this session waits: off the instance's ready list. */
		wsm_link_remove(&cs->in_ready);
		wsm_list_append(&in->waiting, &cs->in_ready);
		cs->waiting = true;
		wait_out(in);
		return;
	}
	if (!wsm_link_linked(&cs->in_ready))
		wsm_list_append(&cl->ready, &cs->in_ready);
	if (why == REFUSED_NOSCRIPT) {
		if (!in->reloading && in->ready) {
			in->reloading = true;
			wsm__instance_load_scripts(in);
		}
		return;
	}
	/* A replica now, a Redis loading its data: perhaps another life. */
	if (life_may_change(r))
		in->life_known = false;
	/* A replica now: the Sentinels know where the primary went. */
	if (in->sentinel && r->len >= 8 && !memcmp(r->str, "READONLY", 8)) {
		wsm__sentinel_suspect(in->sentinel);
		wsm__rconn_reset(in->cmd);
		return;
	}
	in->paused = true;
	wait_out(in);
}

void wsm__refused_life(struct wsm_instance *in, const redisReply *r)
{
	if (r)
		lwsl_warn("wsm: redis refused to tell its run id or its "
			  "place: %.*s\n",
			  r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
			  r->type == REDIS_REPLY_ERROR ? r->str : "");
	in->paused = true;
	wait_out(in);
}

void wsm__refused_none(struct wsm_instance *in)
{
	in->backoff_us = 0;
}

void wsm__refused_forget(struct wsm_instance *in)
{
	in->reloading = false;
	in->paused = false;
}

void wsm__refused_stop(struct wsm_instance *in)
{
	if (in->waiting_armed && in->cl->m->context)
		lws_sul_cancel(&in->sul_waiting);
	in->waiting_armed = false;
}
