/*
 * This node's part of the cluster: one command and one subscriber
 * connection per Redis instance, the scripts each instance runs, the map
 * from a session to its instance (jump hash, so adding an instance moves
 * only the sessions it takes), the per-session records, and the link's
 * events. The core reaches it through the wsm__cluster_* calls.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"

/* ---- sessions' records ---------------------------------------------------- */

/* Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm". */
unsigned wsm__jump_hash(uint64_t key, unsigned buckets)
{
	int64_t b = -1, j = 0;

	while (j < (int64_t)buckets) {
		b = j;
		key = key * 2862933555777941757ULL + 1;
		j = (int64_t)((double)(b + 1) *
			      ((double)(1LL << 31) / (double)((key >> 33) + 1)));
	}
	return (unsigned)b;
}

/* The instance is fixed by the id alone: every node agrees. */
static uint64_t id_hash(const char *id, size_t len)
{
	return wsm__hash(0x77736d636c757374ULL, id, len);
}

struct wsm_csess *wsm__csess_find(struct wsm_cluster *cl, const char *id,
				  size_t len)
{
	uint32_t h = (uint32_t)id_hash(id, len);
	struct wsm_csess *cs;

	if (!cl->nbuckets)
		return NULL;
	for (cs = cl->buckets[h & (cl->nbuckets - 1)]; cs; cs = cs->hnext)
		if (cs->hash == h && cs->id_len == len && !memcmp(cs->id, id, len))
			return cs;
	return NULL;
}

static int grow(struct wsm_cluster *cl)
{
	size_t n = cl->nbuckets ? cl->nbuckets * 2 : 64, i;
	struct wsm_csess **nb = wsm__alloc(cl->m, n * sizeof(*nb));

	if (!nb)
		return WSM_ENOMEM;
	for (i = 0; i < cl->nbuckets; i++)
		while (cl->buckets[i]) {
			struct wsm_csess *cs = cl->buckets[i];

			cl->buckets[i] = cs->hnext;
			cs->hnext = nb[cs->hash & (n - 1)];
			nb[cs->hash & (n - 1)] = cs;
		}
	wsm__free(cl->m, cl->buckets, cl->nbuckets * sizeof(*cl->buckets));
	cl->buckets = nb;
	cl->nbuckets = n;
	return WSM_OK;
}

struct wsm_csess *wsm__csess_get(struct wsm_cluster *cl, const char *id,
				 size_t len)
{
	struct wsm_csess *cs = wsm__csess_find(cl, id, len);
	uint64_t h;

	if (cs)
		return cs;
	if (cl->count >= cl->nbuckets && grow(cl))
		return NULL;
	if (!(cs = wsm__alloc(cl->m, sizeof(*cs) + len + 1)))
		return NULL;
	h = id_hash(id, len);
	cs->cl = cl;
	cs->hash = (uint32_t)h;
	cs->instance = wsm__jump_hash(h, cl->ninst);
	cs->out_tail = &cs->out_head;
	cs->held_tail = &cs->held_head;
	cs->id_len = (uint8_t)len;
	memcpy(cs->id, id, len);
	cs->hnext = cl->buckets[cs->hash & (cl->nbuckets - 1)];
	cl->buckets[cs->hash & (cl->nbuckets - 1)] = cs;
	cl->count++;
	return cs;
}

static void csess_free(struct wsm_csess *cs)
{
	struct wsm_cluster *cl = cs->cl;
	struct wsm_csess **p = &cl->buckets[cs->hash & (cl->nbuckets - 1)];

	while (*p != cs)
		p = &(*p)->hnext;
	*p = cs->hnext;
	cl->count--;
	wsm_link_remove(&cs->in_ready);
	wsm__outbox_free(cs);
	wsm__sync_free(cs);
	wsm__free(cl->m, cs, sizeof(*cs) + cs->id_len + 1);
}

static bool csess_idle(const struct wsm_csess *cs)
{
	return !cs->pending && !cs->out_head && !cs->in_flight &&
	       cs->sub == WSM_SUB_NONE && !cs->nwaiters;
}

void wsm__csess_release(struct wsm_csess *cs)
{
	if (!csess_idle(cs))
		return;
	/*
	 * What Redis confirmed to this node is kept as long as Redis keeps
	 * the state (the retention time): a state found behind it lost
	 * writes. refresh() frees the record after that.
	 */
	if (cs->known_epoch) {
		cs->idle_since_us = wsm__now_us();
		return;
	}
	csess_free(cs);
}

/* Records idle for longer than the retention time go. */
static void expire_idle(struct wsm_cluster *cl)
{
	int64_t before = wsm__now_us() - cl->m->cfg.retention_ms * 1000;
	struct wsm_csess *cs, *next;
	size_t i;

	for (i = 0; i < cl->nbuckets; i++)
		for (cs = cl->buckets[i]; cs; cs = next) {
			next = cs->hnext;
			if (csess_idle(cs) && cs->idle_since_us < before)
				csess_free(cs);
		}
}

void wsm__csess_known(const struct wsm_csess *cs, uint32_t *epoch,
		      uint64_t *seq)
{
	const struct wsm_session *s = NULL;

	*epoch = cs->known_epoch;
	*seq = cs->known_seq;
	/* A local epoch no state in Redis had is nothing to protect. */
	if (cs->was_live && !cs->stateless)
		s = wsm__table_find(cs->cl->m, cs->id, cs->id_len);
	if (!s)
		return;
	/* What the clients were shown, in the epoch they were shown it. */
	if (s->epoch != *epoch) {
		*epoch = s->epoch;
		*seq = s->seq;
	} else if (s->seq > *seq) {
		*seq = s->seq;
	}
}

size_t wsm__cluster_key(const struct wsm_cluster *cl, const char *id,
			size_t id_len, const char *suffix, char *buf,
			size_t size)
{
	int n = snprintf(buf, size, "%s{%.*s}%s", cl->m->cfg.cluster_prefix,
			 (int)id_len, id, suffix);

	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

uint32_t wsm__cluster_epoch(struct wsm_cluster *cl)
{
	return wsm__new_epoch(cl->m);
}

/* ---- the link's state, and its events ------------------------------------ */

static bool healthy(const struct wsm_instance *in)
{
	return in->ready && in->sub_up && !in->misplaced;
}

static void emit(struct wsm_cluster *cl, wsm_event_t ev)
{
	wsm_manager_t *m = cl->m;

	if (!m->cfg.on_event || cl->stopping)
		return;
	m->in_event++;
	m->cfg.on_event(m->cfg.event_user, ev, 0, "", WSM_CAUSE_NONE);
	m->in_event--;
}

static void tell(struct wsm_cluster *cl);

static void told(lws_sorted_usec_list_t *sul)
{
	struct wsm_cluster *cl = wsm_container_of(sul, struct wsm_cluster,
						  sul_link_event);

	cl->link_event_armed = false;
	tell(cl);
}

/*
 * The host hears the link's state at once, then at most once per
 * WSM_LINK_EVENT_GAP_US (or WSM_OPT_CLUSTER_RETRY_MAX_MS if shorter): a
 * flapping link is a steady stream of state changes (counted every time in
 * cluster_link_losses), not of events. The last event always says the state
 * the link settled in.
 */
static void tell(struct wsm_cluster *cl)
{
	int64_t now = wsm__now_us();

	if (cl->said == cl->link || cl->link_event_armed)
		return;
	if (now < cl->next_link_event_us) {
		if (cl->m->context) {
			cl->link_event_armed = true;
			lws_sul_schedule(cl->m->context, 0, &cl->sul_link_event,
					 told, cl->next_link_event_us - now);
		}
		return;
	}
	cl->said = cl->link;
	/* Tests reconnect in milliseconds: their gap is as short. */
	cl->next_link_event_us = now + (cl->timing.retry_max_us <
						WSM_LINK_EVENT_GAP_US
					? cl->timing.retry_max_us
					: WSM_LINK_EVENT_GAP_US);
	emit(cl, cl->link == WSM_LINK_UP ? WSM_EVENT_CLUSTER_UP
					 : WSM_EVENT_CLUSTER_DOWN);
}

/*
 * Up once all instances are healthy; down when one fails, including an
 * instance that was never reached (the first connect failing).
 */
static void report(struct wsm_cluster *cl, bool failure)
{
	unsigned i, ok = 0;

	for (i = 0; i < cl->ninst; i++)
		ok += healthy(&cl->inst[i]);
	if (ok == cl->ninst && cl->link != WSM_LINK_UP) {
		cl->link = WSM_LINK_UP;
		atomic_store(&cl->m->c.cluster_link_up, 1);
	} else if (ok < cl->ninst && failure && cl->link != WSM_LINK_DOWN) {
		cl->link = WSM_LINK_DOWN;
		atomic_store(&cl->m->c.cluster_link_up, 0);
		wsm__bump(&cl->m->c.cluster_link_losses, 1);
	} else {
		return;
	}
	tell(cl);
}

void wsm__instance_unreachable(struct wsm_instance *in)
{
	report(in->cl, true);
}

static unsigned index_of(const struct wsm_instance *in)
{
	return (unsigned)(in - in->cl->inst);
}

static void script_loaded(void *user, const redisReply *r)
{
	const struct wsm_script_load *l = user;
	struct wsm_instance *in = l->in;

	if (!r)
		return; /* the link went: loaded again when it is back */
	if (r->type != REDIS_REPLY_STRING || r->len != 40) {
		lwsl_err("wsm: redis refused a script: %.*s\n",
			 r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
			 r->type == REDIS_REPLY_ERROR ? r->str : "");
		wsm__rconn_reset(in->cmd);
		return;
	}
	memcpy(in->sha[l->which], r->str, 40);
	in->sha[l->which][40] = '\0';
	if (++in->scripts_loaded < WSM_SCRIPT_COUNT)
		return;
	in->ready = true;
	in->reloading = false;
	wsm__rconn_proven(in->cmd);
	wsm__sentinel_trusted(in->sentinel);
	report(in->cl, false);
	wsm__sync_load_waiting(in->cl, index_of(in));
	wsm__outbox_pump_all(in->cl, index_of(in));
}

void wsm__instance_load_scripts(struct wsm_instance *in)
{
	unsigned k;

	in->scripts_loaded = 0;
	for (k = 0; k < WSM_SCRIPT_COUNT; k++) {
		const char *argv[3] = { "SCRIPT", "LOAD", wsm__scripts[k] };
		size_t lens[3] = { 6, 4, strlen(wsm__scripts[k]) };

		if (wsm__rconn_send(in->cmd, 3, argv, lens, 1, script_loaded,
				    &in->load[k])) {
			wsm__rconn_reset(in->cmd);
			return;
		}
	}
}

/* "<key>:<value>\r\n" in INFO's text: the value's first len characters. */
static bool info_field(const redisReply *r, const char *key, char *out,
		       size_t len)
{
	size_t klen = strlen(key), i;
	const char *p = r->str, *end = r->str + r->len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) >= klen + 1 + len &&
		    !memcmp(p, key, klen) && p[klen] == ':') {
			for (i = 0; i < len; i++)
				out[i] = p[klen + 1 + i];
			return true;
		}
		p = eol + 1;
	}
	return false;
}

static void life_read(void *user, const redisReply *r)
{
	struct wsm_instance *in = user;

	in->life_seen[0] = '\0';
	if (!r || r->type != REDIS_REPLY_STRING)
		return; /* judged with the place's answer, which comes next */
	/* A Redis too old for master_replid (before 4.0) has only run_id. */
	if (!info_field(r, "run_id", in->life_seen, 16))
		return;
	in->life_seen[16] = ':';
	if (!info_field(r, "master_replid", in->life_seen + 17, 16))
		memset(in->life_seen + 17, '-', 16);
	in->life_seen[WSM_LIFE_LEN] = '\0';
}

/*
 * The instance's place in every node's list: jump hash maps a session to
 * an index, so nodes that list the instances in different orders would
 * split sessions without a word. The first node to reach an instance
 * writes its index there ("<prefix>instance:<count>", one key per list
 * length, so a rollout to a longer list is possible); a node that finds
 * another index does not use the instance, says why, and checks again
 * after a backoff (an operator fixes the list, or deletes the key).
 */
static void place_read(void *user, const redisReply *r)
{
	struct wsm_instance *in = user;
	char want[12];

	if (!r)
		return; /* the link went: asked again when it is back */
	snprintf(want, sizeof(want), "%u", index_of(in));
	if (r->type != REDIS_REPLY_STRING) {
		wsm__refused_life(in, r);
		return;
	}
	if (!in->life_seen[0]) {
		lwsl_warn("wsm: redis's INFO has no run_id\n");
		wsm__refused_life(in, NULL);
		return;
	}
	if (r->len != strlen(want) || memcmp(r->str, want, r->len)) {
		lwsl_err("wsm: redis instance %u of %u is number %.*s in "
			 "another node's list: every node must list the "
			 "instances in one order (or delete %sinstance:%u "
			 "after changing it)\n",
			 index_of(in) + 1, in->cl->ninst,
			 r->len < 12 ? (int)r->len : 12, r->str,
			 in->cl->m->cfg.cluster_prefix, in->cl->ninst);
		in->misplaced = true;
		report(in->cl, true);
		wsm__refused_life(in, NULL);
		return;
	}
	in->misplaced = false;
	if (in->life_known && strcmp(in->life, in->life_seen))
		lwsl_notice("wsm: redis is in another life (%s, was %s): "
			    "sessions it holds start new epochs\n",
			    in->life_seen, in->life);
	memcpy(in->life, in->life_seen, sizeof(in->life));
	in->life_known = true;
	if (in->ready)
		wsm__instance_resume(in);
	else
		wsm__instance_load_scripts(in);
}

static void ignore(void *user, const redisReply *r)
{
	(void)user;
	(void)r;
}

void wsm__instance_read_life(struct wsm_instance *in)
{
	char key[WSM_KEY_PREFIX_LIMIT + 24], index[12];
	const char *info[1] = { "INFO" };
	const char *set[4] = { "SET", key, index, "NX" };
	const char *get[2] = { "GET", key };
	size_t info_len[1] = { 4 }, set_lens[4] = { 3, 0, 0, 2 };
	size_t get_lens[2] = { 3, 0 };

	in->life_known = false;
	set_lens[1] = get_lens[1] =
		(size_t)snprintf(key, sizeof(key), "%sinstance:%u",
				 in->cl->m->cfg.cluster_prefix, in->cl->ninst);
	set_lens[2] = (size_t)snprintf(index, sizeof(index), "%u",
				       index_of(in));
	if (wsm__rconn_send(in->cmd, 1, info, info_len, 1, life_read, in) ||
	    wsm__rconn_send(in->cmd, 4, set, set_lens, 1, ignore, NULL) ||
	    wsm__rconn_send(in->cmd, 2, get, get_lens, 1, place_read, in))
		wsm__rconn_reset(in->cmd);
}

/*
 * A Sentinel's answer may be stale (the failover is under way, or this
 * Sentinel is on the wrong side of a partition): only a primary that says
 * it is one gets commands.
 */
static void role_read(void *user, const redisReply *r)
{
	struct wsm_instance *in = user;

	if (!r)
		return; /* the link went: asked again when it is back */
	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[0]->len == 6 && !memcmp(r->element[0]->str, "master", 6)) {
		wsm__instance_read_life(in);
		return;
	}
	lwsl_warn("wsm: the server the Sentinels named is not a primary: "
		  "asking them again\n");
	wsm__sentinel_suspect(in->sentinel);
	wsm__rconn_reset(in->cmd);
}

static void cmd_up(struct wsm_redis_conn *rc, void *user)
{
	struct wsm_instance *in = user;
	const char *role[1] = { "ROLE" };
	size_t role_len[1] = { 4 };

	(void)rc;
	if (in->cmd_was_up)
		wsm__bump(&in->cl->m->c.cluster_reconnects, 1);
	in->cmd_was_up = true;
	wsm__refused_forget(in);
	if (in->sentinel) {
		if (wsm__rconn_send(in->cmd, 1, role, role_len, 1, role_read,
				    in))
			wsm__rconn_reset(in->cmd);
		return;
	}
	/* The life first: no script runs without it. */
	wsm__instance_read_life(in);
}

static void cmd_down(struct wsm_redis_conn *rc, void *user)
{
	struct wsm_instance *in = user;

	(void)rc;
	in->ready = false;
	in->life_known = false;
	report(in->cl, true);
	wsm__sentinel_suspect(in->sentinel);
}

/* Either connection of an instance never reached. */
static void never_up(struct wsm_redis_conn *rc, void *user)
{
	struct wsm_instance *in = user;

	(void)rc;
	report(in->cl, true);
	wsm__sentinel_suspect(in->sentinel);
}

static void probe_subscribed(void *user, const redisReply *r)
{
	struct wsm_instance *in = user;

	if (r && r->type == REDIS_REPLY_ARRAY)
		wsm__rconn_proven(in->sub);
}

static void sub_up(struct wsm_redis_conn *rc, void *user)
{
	struct wsm_instance *in = user;
	const char *argv[2] = { "SUBSCRIBE", in->cl->probe_channel };
	size_t lens[2] = { 9, in->cl->probe_channel_len };

	(void)rc;
	if (in->sub_was_up)
		wsm__bump(&in->cl->m->c.cluster_reconnects, 1);
	in->sub_was_up = true;
	in->sub_up = true;
	in->heard_us = wsm__now_us();
	in->probe_due_us = 0;
	if (wsm__rconn_send(in->sub, 2, argv, lens, 1, probe_subscribed, in)) {
		wsm__rconn_reset(in->sub);
		return;
	}
	report(in->cl, false);
	wsm__sync_resubscribe_all(in->cl, index_of(in));
}

static void sub_down(struct wsm_redis_conn *rc, void *user)
{
	struct wsm_instance *in = user;

	(void)rc;
	in->sub_up = false;
	report(in->cl, true);
	wsm__sentinel_suspect(in->sentinel);
	wsm__sync_lost(in->cl, index_of(in));
}

/* Anything the subscriber hears proves it delivers; its probe, too. */
static void sub_push(struct wsm_redis_conn *rc, void *user,
		     const redisReply *reply)
{
	struct wsm_instance *in = user;
	const redisReply *ch = reply->element[1];

	in->heard_us = wsm__now_us();
	if (ch->type == REDIS_REPLY_STRING &&
	    ch->len == in->cl->probe_channel_len &&
	    !memcmp(ch->str, in->cl->probe_channel, ch->len)) {
		in->probe_due_us = 0;
		return;
	}
	wsm__sync_push(rc, user, reply);
}

static const struct wsm_redis_conn_ops cmd_ops = { cmd_up, cmd_down, NULL,
						   never_up };
static const struct wsm_redis_conn_ops sub_ops = { sub_up, sub_down,
						   sub_push, never_up };

/* ---- the core's calls ------------------------------------------------------ */

int wsm__cluster_new(wsm_manager_t *m)
{
	struct wsm_redis_addr addr[WSM_REDIS_MAX_INSTANCES];
	struct wsm_cluster *cl;
	size_t n, i, k;
	char host[48], why[256];
	bool tls = false;

	if (wsm__redis_parse_list(m->cfg.cluster_redis, addr,
				  WSM_REDIS_MAX_INSTANCES, &n))
		return wsm__fail(WSM_EINVAL, "WSM_OPT_CLUSTER_REDIS: bad list");
	if (!(cl = wsm__alloc(m, sizeof(*cl))))
		return wsm__fail(WSM_ENOMEM, "out of memory");
	cl->m = m;
	for (i = 0; i < n; i++)
		tls |= addr[i].tls;
	/* Files that do not load are the host's to hear of now, not later. */
	if (tls && !(cl->tls = wsm__tls_ctx_new(&m->cfg, why, sizeof(why)))) {
		wsm__free(m, cl, sizeof(*cl));
		return wsm__fail(WSM_EINVAL, "%s", why);
	}
	cl->access.user = m->cfg.cluster_user;
	cl->access.password = m->cfg.cluster_password;
	cl->access.tls = cl->tls;
	cl->sentinel_access.user = m->cfg.cluster_sentinel_user;
	cl->sentinel_access.password = m->cfg.cluster_sentinel_password;
	cl->sentinel_access.tls = cl->tls;
	cl->ninst = (unsigned)n;
	wsm_list_init(&cl->ready);
	cl->timing.timeout_us = m->cfg.cluster_timeout_ms * 1000;
	cl->timing.retry_min_us = 50 * 1000;
	if (cl->timing.retry_min_us > m->cfg.cluster_retry_max_ms * 1000)
		cl->timing.retry_min_us = m->cfg.cluster_retry_max_ms * 1000;
	cl->timing.retry_max_us = m->cfg.cluster_retry_max_ms * 1000;
	if (m->cfg.cluster_node_id[0]) {
		snprintf(cl->node_id, sizeof(cl->node_id), "%s",
			 m->cfg.cluster_node_id);
	} else {
		if (gethostname(host, sizeof(host)))
			strcpy(host, "node");
		host[sizeof(host) - 1] = '\0';
		snprintf(cl->node_id, sizeof(cl->node_id), "%.40s-%ld", host,
			 (long)getpid());
	}
	/*
	 * A publish id is "<node id>:<incarnation>:<count>": a process that
	 * takes a dead one's node id (a restart) never repeats its ids,
	 * which the scripts would skip as retries.
	 */
	cl->incarnation = ((uint64_t)wsm__new_epoch(m) << 32 |
			   wsm__new_epoch(m)) ^ (uint64_t)getpid();
	cl->probe_channel_len = (size_t)snprintf(cl->probe_channel,
						 sizeof(cl->probe_channel),
						 "%sprobe:%s",
						 m->cfg.cluster_prefix,
						 cl->node_id);
	m->cluster = cl;
	for (i = 0; i < n; i++) {
		struct wsm_instance *in = &cl->inst[i];

		in->cl = cl;
		wsm_list_init(&in->waiting);
		for (k = 0; k < WSM_SCRIPT_COUNT; k++) {
			in->load[k].in = in;
			in->load[k].which = (enum wsm_script)k;
		}
		if (addr[i].master[0]) {
			in->sentinel = wsm__sentinel_new(in, &addr[i],
							 &cl->timing,
							 &cl->sentinel_access);
			/* Nowhere until the Sentinels name the primary. */
			addr[i].host[0] = '\0';
			addr[i].port = 0;
		}
		in->cmd = wsm__rconn_new(m, &addr[i], &cl->timing, &cl->access,
					 false, &cmd_ops, in);
		in->sub = wsm__rconn_new(m, &addr[i], &cl->timing, &cl->access,
					 true, &sub_ops, in);
		if (!in->cmd || !in->sub || (addr[i].master[0] && !in->sentinel)) {
			wsm__cluster_free(m);
			return wsm__fail(WSM_ENOMEM, "out of memory");
		}
	}
	return WSM_OK;
}

/*
 * A session's state (and history) lives in Redis for WSM_OPT_RETENTION_MS
 * after its last publish or join; a node keeps that alive for the sessions
 * it serves.
 */
static void refresh(lws_sorted_usec_list_t *sul)
{
	struct wsm_cluster *cl = wsm_container_of(sul, struct wsm_cluster,
						  sul_refresh);
	char ttl[24], key[WSM_KEY_PREFIX_LIMIT + WSM_SESSION_ID_LIMIT + 16];
	const char *argv[3] = { "PEXPIRE", key, ttl };
	size_t lens[3] = { 7, 0, 0 }, i;
	struct wsm_csess *cs;

	lens[2] = (size_t)snprintf(ttl, sizeof(ttl), "%lld",
				   (long long)cl->m->cfg.retention_ms);
	expire_idle(cl);
	for (i = 0; i < cl->nbuckets; i++)
		for (cs = cl->buckets[i]; cs; cs = cs->hnext) {
			struct wsm_instance *in = &cl->inst[cs->instance];

			if (cs->sub != WSM_SUB_LIVE || cs->stateless ||
			    !in->ready)
				continue;
			lens[1] = wsm__cluster_key(cl, cs->id, cs->id_len,
						   ":state", key, sizeof(key));
			wsm__rconn_send(in->cmd, 3, argv, lens, 1, NULL, NULL);
			if (!cl->m->cfg.cluster_history)
				continue;
			lens[1] = wsm__cluster_key(cl, cs->id, cs->id_len,
						   ":hist", key, sizeof(key));
			wsm__rconn_send(in->cmd, 3, argv, lens, 1, NULL, NULL);
		}
	lws_sul_schedule(cl->m->context, 0, &cl->sul_refresh, refresh,
			 cl->m->cfg.retention_ms * 1000 / 3);
}

/*
 * A connection with nothing outstanding would never notice a Redis that
 * stopped answering (a subscriber wedged after a failover, a half-open
 * socket): each gets a PING per timeout, which the timeout then judges.
 */
static void heartbeat(lws_sorted_usec_list_t *sul)
{
	struct wsm_cluster *cl = wsm_container_of(sul, struct wsm_cluster,
						  sul_heartbeat);
	const char *argv[1] = { "PING" };
	size_t lens[1] = { 4 };
	unsigned i;

	for (i = 0; i < cl->ninst; i++) {
		struct wsm_instance *in = &cl->inst[i];

		if (in->ready && !wsm__rconn_pending(in->cmd))
			wsm__rconn_send(in->cmd, 1, argv, lens, 1, NULL, NULL);
		if (in->sub_up && !wsm__rconn_pending(in->sub))
			wsm__rconn_send(in->sub, 1, argv, lens, 1, NULL, NULL);
	}
	lws_sul_schedule(cl->m->context, 0, &cl->sul_heartbeat, heartbeat,
			 cl->timing.timeout_us);
}

static void probe_answered(void *user, const redisReply *r)
{
	struct wsm_instance *in = user;

	/*
	 * PUBLISH counts the subscribers it reached: none means the
	 * subscriber is not where the commands go (a failover moved one).
	 */
	if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0 &&
	    in->probe_due_us)
		in->probe_due_us = wsm__now_us();
}

/*
 * A subscriber can stay connected and answer PINGs while it delivers
 * nothing (a primary demoted under it, a proxy forwarding one way): only a
 * message through the path every publish takes proves it works. The probe
 * costs nothing while messages flow, and one PUBLISH per quarter
 * WSM_OPT_CLUSTER_PROBE_MS when they do not; a wedge is found within the
 * whole of it.
 */
static void probe(lws_sorted_usec_list_t *sul)
{
	struct wsm_cluster *cl = wsm_container_of(sul, struct wsm_cluster,
						  sul_probe);
	int64_t now = wsm__now_us(), quarter = cl->m->cfg.cluster_probe_ms * 250;
	char token[24];
	const char *argv[3] = { "PUBLISH", cl->probe_channel, token };
	size_t lens[3] = { 7, cl->probe_channel_len, 0 };
	unsigned i;

	for (i = 0; i < cl->ninst; i++) {
		struct wsm_instance *in = &cl->inst[i];

		if (!in->sub_up || !in->ready) {
			in->probe_due_us = 0;
			continue;
		}
		if (in->probe_due_us && now >= in->probe_due_us) {
			lwsl_warn("wsm: redis instance %u: the subscriber heard "
				  "nothing for %lld ms, its own probe included: "
				  "connecting again\n", i + 1,
				  (long long)(now - in->heard_us) / 1000);
			wsm__bump(&cl->m->c.cluster_wedged, 1);
			in->probe_due_us = 0;
			wsm__rconn_reset(in->sub);
			continue;
		}
		if (in->probe_due_us || now - in->heard_us < quarter)
			continue;
		lens[2] = (size_t)snprintf(token, sizeof(token), "%llu",
					   (unsigned long long)++in->probe_token);
		if (!wsm__rconn_send(in->cmd, 3, argv, lens, 1, probe_answered,
				     in))
			in->probe_due_us = now + quarter;
	}
	lws_sul_schedule(cl->m->context, 0, &cl->sul_probe, probe, quarter);
}

void wsm__cluster_start(wsm_manager_t *m)
{
	struct wsm_cluster *cl = m->cluster;
	unsigned i;

	for (i = 0; i < cl->ninst; i++) {
		wsm__rconn_start(cl->inst[i].cmd);
		wsm__rconn_start(cl->inst[i].sub);
		if (cl->inst[i].sentinel)
			wsm__sentinel_start(cl->inst[i].sentinel);
	}
	lws_sul_schedule(m->context, 0, &cl->sul_refresh, refresh,
			 m->cfg.retention_ms * 1000 / 3);
	lws_sul_schedule(m->context, 0, &cl->sul_heartbeat, heartbeat,
			 cl->timing.timeout_us);
	lws_sul_schedule(m->context, 0, &cl->sul_probe, probe,
			 m->cfg.cluster_probe_ms * 250);
}

void wsm__cluster_unbind(wsm_manager_t *m)
{
	unsigned i;

	lws_sul_cancel(&m->cluster->sul_refresh);
	lws_sul_cancel(&m->cluster->sul_heartbeat);
	lws_sul_cancel(&m->cluster->sul_probe);
	lws_sul_cancel(&m->cluster->sul_link_event);
	m->cluster->link_event_armed = false;
	for (i = 0; i < m->cluster->ninst; i++) {
		wsm__refused_stop(&m->cluster->inst[i]);
		wsm__sentinel_stop(m->cluster->inst[i].sentinel);
	}
}

void wsm__cluster_drop_unsent(wsm_manager_t *m, const struct wsm_msg *msg)
{
	struct wsm_csess *cs;

	if ((cs = wsm__csess_get(m->cluster, msg->session_id,
				 msg->session_id_len)))
		cs->unsent++;
	else /* out of memory: counted, but told without its session */
		wsm__bump(&m->c.cluster_dropped, 1);
}

/* What the outbox still holds is dropped: the host hears of each session. */
static void tell_dropped(struct wsm_cluster *cl)
{
	wsm_manager_t *m = cl->m;
	struct wsm_csess *cs;
	struct wsm_msg *msg;
	uint64_t n, total = 0;
	size_t i;

	for (i = 0; i < cl->nbuckets; i++)
		for (cs = cl->buckets[i]; cs; cs = cs->hnext) {
			n = cs->unsent + (cs->in_flight != NULL);
			for (msg = cs->out_head; msg; msg = msg->next)
				n++;
			if (!n)
				continue;
			total += n;
			wsm__bump(&m->c.cluster_dropped, (int64_t)n);
			if (m->cfg.on_event)
				m->cfg.on_event(m->cfg.event_user,
						WSM_EVENT_CLUSTER_DROPPED, 0,
						cs->id, WSM_CAUSE_SHUTDOWN);
		}
	if (total)
		lwsl_warn("wsm: destroyed with %llu broadcasts Redis had not "
			  "confirmed\n", (unsigned long long)total);
}

void wsm__cluster_free(wsm_manager_t *m)
{
	struct wsm_cluster *cl = m->cluster;
	size_t i;

	if (!cl)
		return;
	tell_dropped(cl);
	cl->stopping = true;
	if (m->context) {
		lws_sul_cancel(&cl->sul_refresh);
		lws_sul_cancel(&cl->sul_heartbeat);
		lws_sul_cancel(&cl->sul_probe);
		lws_sul_cancel(&cl->sul_link_event);
	}
	for (i = 0; i < cl->ninst; i++)
		wsm__refused_stop(&cl->inst[i]);
	/* Their pending replies fail first: nothing is sent any more. */
	for (i = 0; i < cl->ninst; i++) {
		wsm__sentinel_free(cl->inst[i].sentinel);
		wsm__rconn_free(cl->inst[i].cmd);
		wsm__rconn_free(cl->inst[i].sub);
	}
	for (i = 0; i < cl->nbuckets; i++)
		while (cl->buckets[i]) {
			cl->buckets[i]->pending = 0;
			csess_free(cl->buckets[i]);
		}
	wsm__free(m, cl->buckets, cl->nbuckets * sizeof(*cl->buckets));
	wsm__tls_ctx_free(cl->tls);
	wsm__free(m, cl, sizeof(*cl));
	m->cluster = NULL;
}

int wsm__cluster_reserve(wsm_manager_t *m, const struct wsm_msg *msg)
{
	struct wsm_cluster *cl = m->cluster;
	bool progress = msg->kind == WSM_MSG_PROGRESS;
	uint64_t n, b;

	/*
	 * A progress is not counted among the messages: each session keeps
	 * one waiting, the newest, and one not yet coalesced could make the
	 * count refuse a terminal for nothing. Its bytes count: one progress
	 * per session of many sessions is still memory.
	 */
	n = progress ? atomic_load(&cl->outbox_msgs)
		     : atomic_fetch_add(&cl->outbox_msgs, 1) + 1;
	b = atomic_fetch_add(&cl->outbox_bytes, msg->alloc_size) +
	    msg->alloc_size;
	if ((!progress && n > (uint64_t)m->cfg.cluster_outbox_messages) ||
	    b > (uint64_t)m->cfg.cluster_outbox_bytes) {
		wsm__cluster_unreserve(m, msg);
		return wsm__fail(WSM_EOUTBOX, "the cluster outbox holds %llu "
				 "broadcasts (%llu bytes) Redis has not "
				 "confirmed: at its bound",
				 (unsigned long long)(progress ? n : n - 1),
				 (unsigned long long)(b - msg->alloc_size));
	}
	return WSM_OK;
}

uint64_t wsm__cluster_outbox(wsm_manager_t *m, bool bytes)
{
	return atomic_load_explicit(bytes ? &m->cluster->outbox_bytes
					  : &m->cluster->outbox_msgs,
				    memory_order_relaxed);
}

const char *wsm__cluster_node_id(const wsm_manager_t *m)
{
	return m->cluster->node_id;
}

const char *wsm__cluster_link_name(const wsm_manager_t *m)
{
	const struct wsm_cluster *cl = m->cluster;
	unsigned i;

	static const char *const failed[] = { "down", "down", "unresolved",
					      "tls_failed", "auth_failed" };
	enum wsm_redis_failure worst = WSM_REDIS_FAILED_NOT, f;

	for (i = 0; i < cl->ninst; i++)
		if (cl->inst[i].misplaced)
			return "misordered";
	if (atomic_load(&m->c.cluster_link_up))
		return "up";
	/* What an operator must fix first: credentials, then TLS, then DNS. */
	for (i = 0; i < cl->ninst; i++) {
		if ((f = wsm__rconn_failure(cl->inst[i].cmd)) > worst)
			worst = f;
		if ((f = wsm__rconn_failure(cl->inst[i].sub)) > worst)
			worst = f;
		if (cl->inst[i].sentinel &&
		    (f = wsm__sentinel_failure(cl->inst[i].sentinel)) > worst)
			worst = f;
	}
	return failed[worst];
}

void wsm__cluster_unreserve(wsm_manager_t *m, const struct wsm_msg *msg)
{
	if (msg->kind != WSM_MSG_PROGRESS)
		atomic_fetch_sub(&m->cluster->outbox_msgs, 1);
	atomic_fetch_sub(&m->cluster->outbox_bytes, msg->alloc_size);
}

bool wsm__cluster_join(wsm_manager_t *m, struct wsm_session *s,
		       struct wsm_conn *c, const struct wsm_resume *resume)
{
	struct wsm_csess *cs = wsm__csess_get(m->cluster, s->id, s->id_len);
	struct wsm_join *w;

	bool history_wanted = m->cfg.cluster_history && resume &&
			      resume->present && resume->epoch == s->epoch &&
			      resume->seq < s->seq;

	if (!cs)
		return false; /* out of memory: what this node holds, at least */
	/*
	 * The local state is Redis's; but a client resuming from further back
	 * is owed each message it missed, which only the history holds.
	 */
	if (cs->sub == WSM_SUB_LIVE && !cs->resync && !history_wanted &&
	    !(cs->stateless && m->cfg.announced_only)) {
		/* Its replay, from the local state, resets it to that epoch. */
		if (cs->stateless && resume && resume->present &&
		    resume->epoch != s->epoch)
			cs->stateless_shown = true;
		return false;
	}
	if (cs->nwaiters == cs->waiters_cap) {
		size_t cap = cs->waiters_cap ? cs->waiters_cap * 2 : 2;

		if (!(w = wsm__alloc(m, cap * sizeof(*w))))
			return false;
		if (cs->nwaiters)
			memcpy(w, cs->waiters, cs->nwaiters * sizeof(*w));
		wsm__free(m, cs->waiters, cs->waiters_cap * sizeof(*w));
		cs->waiters = w;
		cs->waiters_cap = cap;
	}
	w = &cs->waiters[cs->nwaiters++];
	w->conn_id = c->id;
	if (resume)
		w->resume = *resume;
	else
		memset(&w->resume, 0, sizeof(w->resume));
	if (cs->sub == WSM_SUB_NONE)
		wsm__sync_subscribe(cs);
	else if (cs->sub == WSM_SUB_LIVE && !cs->resync)
		wsm__sync_reload(cs); /* for the history, or to be known */
	return true;
}
