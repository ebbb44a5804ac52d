/*
 * Discovery of an instance's primary through Redis Sentinel. For an
 * address "redis-sentinel://h:p,h:p/master", a node asks one Sentinel at a
 * time (the next one when it fails) for the primary's address, points the
 * instance's two connections there (redis_conn.c resolves, connects, and
 * backs off as for any address), and follows "+switch-master" on a
 * subscriber connection to a Sentinel. It asks again whenever the data
 * connections suspect the primary is not one any more: a connection lost
 * or never made, ROLE answering "slave", a READONLY.
 *
 * The sessions never see any of this: a failover is, to them, a link lost
 * and back, into another Redis life (the promoted replica has another
 * master_replid), which the scripts already turn into new epochs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

struct wsm_sentinel {
	struct wsm_instance *in;
	wsm_manager_t *m;
	struct wsm_redis_addr at[WSM_SENTINEL_MAX];
	unsigned n, ask_at, watch_at;
	struct wsm_redis_conn *ask, *watch;
	char master[65];
	bool asking;  /* a question is out */
	bool wanted;  /* ask once the connection is up */
	bool armed;   /* a question waits for its backoff */
	bool running; /* bound to a context: not while it is going */
	bool move_on; /* the next question goes to the next Sentinel */
	bool complained; /* an unknown name is logged once per outage */
	int64_t backoff_us;
	int64_t retry_max_us;
	lws_sorted_usec_list_t sul;
};

/* The instance's connections go where the Sentinels say the primary is. */
static void point_at(struct wsm_sentinel *s, const char *host, uint16_t port)
{
	struct wsm_instance *in = s->in;

	wsm__rconn_retarget(in->cmd, host, port, true);
	wsm__rconn_retarget(in->sub, host, port, true);
}

static void rotate(struct wsm_redis_conn *rc, unsigned *at,
		   struct wsm_sentinel *s)
{
	if (s->n < 2 || !s->running)
		return;
	*at = (*at + 1) % s->n;
	wsm__rconn_retarget(rc, s->at[*at].host, s->at[*at].port, false);
}

static void ask_now(struct wsm_sentinel *s);

static void answered(void *user, const redisReply *r)
{
	struct wsm_sentinel *s = user;
	char host[254];
	long port;

	s->asking = false;
	if (!r)
		return; /* the Sentinel went: asked again when one is up */
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len >= sizeof(host) || r->element[1]->len > 5) {
		/* Nil: this Sentinel monitors no such primary. Ask another. */
		if (!s->complained)
			lwsl_err("wsm: the Sentinel at %s:%u names no primary "
				 "\"%s\"%s%.*s\n",
				 s->at[s->ask_at].host, s->at[s->ask_at].port,
				 s->master,
				 r->type == REDIS_REPLY_ERROR ? ": " : "",
				 r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
				 r->type == REDIS_REPLY_ERROR ? r->str : "");
		s->complained = true;
		s->move_on = true;
		wsm__sentinel_suspect(s);
		return;
	}
	memcpy(host, r->element[0]->str, r->element[0]->len);
	host[r->element[0]->len] = '\0';
	port = strtol(r->element[1]->str, NULL, 10);
	if (port < 1 || port > 65535)
		return;
	s->complained = false;
	point_at(s, host, (uint16_t)port);
}

static void ask_now(struct wsm_sentinel *s)
{
	const char *argv[3] = { "SENTINEL", "get-master-addr-by-name",
				s->master };
	size_t lens[3] = { 8, 23, strlen(s->master) };

	if (s->asking)
		return;
	if (!wsm__rconn_is_up(s->ask)) {
		s->wanted = true; /* asked from ask_up() */
		return;
	}
	s->wanted = false;
	if (!wsm__rconn_send(s->ask, 3, argv, lens, 1, answered, s))
		s->asking = true;
}

static void waited(lws_sorted_usec_list_t *sul)
{
	struct wsm_sentinel *s = wsm_container_of(sul, struct wsm_sentinel,
						  sul);

	s->armed = false;
	if (s->move_on) {
		/* Paced by the backoff: ask_up() asks the next one. */
		s->move_on = false;
		s->wanted = true;
		wsm__rconn_reset(s->ask); /* ask_failed() moves to the next */
		return;
	}
	ask_now(s);
}

/*
 * Asked at once the first time, then after a backoff that doubles while
 * the primary it names keeps failing: a Sentinel that has not noticed the
 * failure yet names the dead primary again.
 */
void wsm__sentinel_suspect(struct wsm_sentinel *s)
{
	if (!s || s->armed || !s->running)
		return;
	s->armed = true;
	lws_sul_schedule(s->m->context, 0, &s->sul, waited, s->backoff_us);
	s->backoff_us = s->backoff_us ? s->backoff_us * 2 : 50 * 1000;
	if (s->backoff_us > s->retry_max_us)
		s->backoff_us = s->retry_max_us;
}

void wsm__sentinel_trusted(struct wsm_sentinel *s)
{
	if (s)
		s->backoff_us = 0;
}

static void ask_up(struct wsm_redis_conn *rc, void *user)
{
	struct wsm_sentinel *s = user;

	(void)rc;
	s->asking = false;
	if (s->wanted)
		ask_now(s);
}

static void ask_failed(struct wsm_redis_conn *rc, void *user)
{
	struct wsm_sentinel *s = user;

	s->asking = false;
	rotate(rc, &s->ask_at, s);
	/* With no Sentinel to ask, a primary never found is a link down. */
	if (s->running)
		wsm__instance_unreachable(s->in);
}

/* "+switch-master": "<name> <old ip> <old port> <new ip> <new port>". */
static void switched(struct wsm_redis_conn *rc, void *user,
		     const redisReply *reply)
{
	struct wsm_sentinel *s = user;
	const redisReply *data = reply->element[2];
	char name[65], host[254];
	unsigned port;

	(void)rc;
	if (data->type != REDIS_REPLY_STRING || data->len > 600)
		return;
	{
		char text[601];

		memcpy(text, data->str, data->len);
		text[data->len] = '\0';
		if (sscanf(text, "%64s %*s %*s %253s %u", name, host, &port) !=
			    3 ||
		    strcmp(name, s->master) || port < 1 || port > 65535)
			return;
	}
	lwsl_notice("wsm: Sentinel: %s is now at %s:%u\n", name, host, port);
	point_at(s, host, (uint16_t)port);
}

static void watch_up(struct wsm_redis_conn *rc, void *user)
{
	const char *argv[2] = { "SUBSCRIBE", "+switch-master" };
	size_t lens[2] = { 9, 14 };

	(void)user;
	if (wsm__rconn_send(rc, 2, argv, lens, 1, NULL, NULL))
		wsm__rconn_reset(rc);
}

static void watch_failed(struct wsm_redis_conn *rc, void *user)
{
	struct wsm_sentinel *s = user;

	rotate(rc, &s->watch_at, s);
	/* A switch may have gone by unheard: ask. */
	wsm__sentinel_suspect(s);
}

static const struct wsm_redis_conn_ops ask_ops = { ask_up, ask_failed, NULL,
						   ask_failed };
static const struct wsm_redis_conn_ops watch_ops = { watch_up, watch_failed,
						     switched, watch_failed };

struct wsm_sentinel *wsm__sentinel_new(struct wsm_instance *in,
				       const struct wsm_redis_addr *addr,
				       const struct wsm_redis_timing *timing,
				       const struct wsm_redis_access *access)
{
	wsm_manager_t *m = in->cl->m;
	struct wsm_sentinel *s = wsm__alloc(m, sizeof(*s));
	const char *p = addr->sentinels, *q;

	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->in = in;
	s->m = m;
	s->retry_max_us = timing->retry_max_us;
	snprintf(s->master, sizeof(s->master), "%s", addr->master);
	for (; *p && s->n < WSM_SENTINEL_MAX; p = *q ? q + 1 : q) {
		q = strchr(p, ',');
		if (!q)
			q = p + strlen(p);
		if (wsm__sentinel_parse(p, (size_t)(q - p), &s->at[s->n]))
			continue; /* checked when the list was set */
		s->at[s->n].tls = addr->tls;
		s->n++;
	}
	s->ask = wsm__rconn_new(m, &s->at[0], timing, access, false, &ask_ops,
				s);
	s->watch = wsm__rconn_new(m, &s->at[s->n > 1 ? 1 : 0], timing, access,
				  true, &watch_ops, s);
	s->watch_at = s->n > 1 ? 1 : 0;
	if (!s->n || !s->ask || !s->watch) {
		wsm__sentinel_free(s);
		return NULL;
	}
	return s;
}

void wsm__sentinel_start(struct wsm_sentinel *s)
{
	s->running = true;
	s->wanted = true;
	wsm__rconn_start(s->ask);
	wsm__rconn_start(s->watch);
}

void wsm__sentinel_stop(struct wsm_sentinel *s)
{
	if (!s)
		return;
	if (s->armed && s->m->context)
		lws_sul_cancel(&s->sul);
	s->armed = false;
	s->running = false;
}

enum wsm_redis_failure wsm__sentinel_failure(const struct wsm_sentinel *s)
{
	enum wsm_redis_failure a = wsm__rconn_failure(s->ask),
			       b = wsm__rconn_failure(s->watch);

	return a > b ? a : b;
}

void wsm__sentinel_free(struct wsm_sentinel *s)
{
	if (!s)
		return;
	wsm__sentinel_stop(s);
	wsm__rconn_free(s->ask);
	wsm__rconn_free(s->watch);
	wsm__free(s->m, s, sizeof(*s));
}
