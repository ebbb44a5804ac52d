/*
 * One connection to one Redis. The socket is an lws raw client connection
 * on the host's context, so it runs on the host's loop (poll or libuv) with
 * no thread of its own; hiredis only encodes commands and parses replies.
 * An attempt to connect resolves a host name off the loop (resolve.c),
 * tries each address found, runs TLS over the socket for rediss://
 * (tls.c) and AUTHenticates before the link counts as up.
 * The wsi's user pointer names its wsm_redis_conn (libwsm's WebSocket
 * connections use the opaque pointer instead), and is checked against the
 * manager's list before use.
 *
 * Failures of any kind (refused connect, timeout, reset, a reply that does
 * not parse) end the same way: pending replies fail, the owner is told the
 * link is down, and a reconnect is scheduled after a delay drawn at random
 * below a bound that doubles per consecutive failure (full jitter), so that
 * a Redis that comes back is not hit by every node at once.
 */
#include <string.h>

#include "cluster.h"

/* Bounds on what a Redis may make libwsm hold: replies are small. */
#define WSM_REDIS_MAX_ELEMENTS 4096
#define WSM_REDIS_MAX_BUFFERED (64u << 20)
/* Written per writeable callback: lws buffers what the socket refuses. */
#define WSM_REDIS_WRITE_CHUNK 65536
/* An output buffer larger than this is freed once it empties. */
#define WSM_REDIS_OUT_KEEP 16384
/* Plaintext per TLS record written; what one record takes encrypted. */
#define WSM_TLS_PLAIN_CHUNK 16384
#define WSM_TLS_BUF (WSM_TLS_PLAIN_CHUNK + 1024)

enum rconn_state {
	RCONN_IDLE,       /* not started, or waiting to reconnect */
	RCONN_RESOLVING,  /* its host name, off the loop */
	RCONN_CONNECTING, /* socket, TLS, then a first answer */
	RCONN_UP
};

struct pending {
	wsm_redis_reply_fn fn;
	void *user;
	int64_t deadline_us;
	unsigned replies; /* still expected */
};

struct wsm_redis_conn {
	struct wsm_link in_manager; /* m->redis_conns */
	wsm_manager_t *m;
	struct wsm_redis_addr addr;
	struct wsm_redis_timing timing;
	struct wsm_redis_access access;
	const struct wsm_redis_conn_ops *ops;
	void *user;
	bool subscriber;
	enum rconn_state state;
	_Atomic int failure; /* enum wsm_redis_failure: status reads it */
	struct wsm_lookup *lookup;
	char addrs[WSM_LOOKUP_MAX][INET6_ADDRSTRLEN]; /* the name's, this attempt */
	int naddrs, next_addr;
	bool try_next; /* the retry timer tries the next address at once */
	struct wsm_tls *tls;
	bool tls_up;
	unsigned char *tls_buf; /* WSM_TLS_BUF: encrypted, or decrypted */
	struct lws *wsi;
	redisReader *reader;
	redisReplyObjectFunctions fn; /* hiredis's, with bounded arrays */
	void *(*hiredis_create_array)(const redisReadTask *, int);
	char *out;
	size_t out_len, out_off, out_cap;
	struct pending *pend;
	size_t pend_head, pend_len, pend_cap;
	lws_sorted_usec_list_t sul_retry;
	bool retry_armed;
	lws_sorted_usec_list_t sul_timeout;
	int64_t retry_bound_us;
	uint64_t reconnects;
	uint64_t rng;
};

/* ---- replies ------------------------------------------------------------ */

/*
 * hiredis 0.14 allocates an array of the length Redis announces before any
 * element arrives: a bound keeps a bad peer from making that huge.
 */
static void *create_array(const redisReadTask *task, int elements)
{
	struct wsm_redis_conn *rc = task->privdata;

	if (elements < 0 || elements > WSM_REDIS_MAX_ELEMENTS)
		return NULL; /* the reader fails, and the link resets */
	return rc->hiredis_create_array(task, elements);
}

static redisReader *new_reader(struct wsm_redis_conn *rc)
{
	redisReader *r = redisReaderCreate();

	if (!r)
		return NULL;
	rc->fn = *r->fn;
	rc->hiredis_create_array = rc->fn.createArray;
	rc->fn.createArray = create_array;
	r->fn = &rc->fn;
	r->privdata = rc;
	return r;
}

/* A published message, on a subscriber connection: not a command's reply. */
static bool is_push(const redisReply *r)
{
	return r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	       r->element[0]->type == REDIS_REPLY_STRING &&
	       r->element[0]->len == 7 && !memcmp(r->element[0]->str, "message", 7);
}

/* ---- timers ---------------------------------------------------------------- */

static struct wsm_redis_conn *of_sul(lws_sorted_usec_list_t *sul, size_t off)
{
	return (struct wsm_redis_conn *)(void *)((char *)sul - off);
}

static void arm_timeout(struct wsm_redis_conn *rc, int64_t at_us)
{
	int64_t now = wsm__now_us();

	if (!rc->m->context)
		return; /* unbound: nothing runs timers (wsm__rconn_feed()) */
	lws_sul_schedule(rc->m->context, 0, &rc->sul_timeout,
			 rc->sul_timeout.cb, at_us > now ? at_us - now : 0);
}

/* The oldest unanswered command's deadline, or none. */
static void rearm_timeout(struct wsm_redis_conn *rc)
{
	if ((rc->state == RCONN_CONNECTING || rc->state == RCONN_RESOLVING) &&
	    !rc->pend_len)
		return; /* the connect deadline stands */
	if (!rc->pend_len) {
		lws_sul_cancel(&rc->sul_timeout);
		return;
	}
	arm_timeout(rc, rc->pend[rc->pend_head].deadline_us);
}

static void lost(struct wsm_redis_conn *rc, const char *why);
static void lost_as(struct wsm_redis_conn *rc, enum wsm_redis_failure failure,
		    const char *why);

static void on_timeout(lws_sorted_usec_list_t *sul)
{
	struct wsm_redis_conn *rc =
		of_sul(sul, offsetof(struct wsm_redis_conn, sul_timeout));

	if (rc->state == RCONN_RESOLVING)
		lost_as(rc, WSM_REDIS_FAILED_NAME, "name lookup timed out");
	else if (rc->state == RCONN_CONNECTING && !rc->pend_len)
		lost(rc, "connect timed out");
	else if (rc->pend_len &&
		 rc->pend[rc->pend_head].deadline_us <= wsm__now_us())
		lost(rc, "command timed out");
	else
		rearm_timeout(rc);
}

/* ---- connecting ------------------------------------------------------------ */

static void connect_now(struct wsm_redis_conn *rc);
static void connect_to(struct wsm_redis_conn *rc, const char *address);

static void on_retry(lws_sorted_usec_list_t *sul)
{
	struct wsm_redis_conn *rc =
		of_sul(sul, offsetof(struct wsm_redis_conn, sul_retry));

	rc->retry_armed = false;
	if (rc->try_next) {
		rc->try_next = false;
		rc->state = RCONN_CONNECTING;
		connect_to(rc, rc->addrs[rc->next_addr]);
		return;
	}
	connect_now(rc);
}

/* Full jitter: uniform below a bound that doubles per failure. */
static void schedule_retry(struct wsm_redis_conn *rc)
{
	uint64_t x = rc->rng;
	int64_t delay;

	if (!rc->m->context)
		return; /* unbound: it connects when started */
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rc->rng = x;
	delay = rc->timing.retry_min_us / 2 +
		(int64_t)(x % (uint64_t)(rc->retry_bound_us + 1));
	rc->retry_bound_us = rc->retry_bound_us * 2 > rc->timing.retry_max_us
				     ? rc->timing.retry_max_us
				     : rc->retry_bound_us * 2;
	rc->retry_armed = true;
	lws_sul_schedule(rc->m->context, 0, &rc->sul_retry, on_retry, delay);
}

static void fail_pending(struct wsm_redis_conn *rc)
{
	while (rc->pend_len) {
		struct pending p = rc->pend[rc->pend_head];

		rc->pend_head = (rc->pend_head + 1) % rc->pend_cap;
		rc->pend_len--;
		if (p.fn)
			p.fn(p.user, NULL);
	}
	rc->pend_head = 0;
}

/* Forgets the socket (lws closes it later) without hearing of it again. */
static void drop_socket(struct wsm_redis_conn *rc)
{
	if (rc->wsi) {
		lws_set_wsi_user(rc->wsi, NULL);
		lws_set_timeout(rc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		rc->wsi = NULL;
	}
	if (rc->reader) {
		redisReaderFree(rc->reader);
		rc->reader = NULL;
	}
	wsm__lookup_release(rc->lookup);
	rc->lookup = NULL;
	wsm__tls_free(rc->m, rc->tls);
	rc->tls = NULL;
	rc->tls_up = false;
	rc->out_len = rc->out_off = 0;
}

/*
 * The attempt or the link ends; failure says why an attempt failed
 * (WSM_REDIS_FAILED_NOT for a link that was up, or a reset).
 */
static void lost_as(struct wsm_redis_conn *rc, enum wsm_redis_failure failure,
		    const char *why)
{
	bool was_up = rc->state == RCONN_UP;
	bool attempt = !was_up && rc->state != RCONN_IDLE;

	/* The first of its kind is an error an operator must see. */
	if (failure > WSM_REDIS_FAILED_SOCKET && (int)failure != rc->failure)
		lwsl_err("wsm: redis %s%s:%u: %s\n", rc->addr.host,
			 rc->addr.path, rc->addr.port, why);
	else
		lwsl_notice("wsm: redis %s%s:%u: %s\n", rc->addr.host,
			    rc->addr.path, rc->addr.port, why);
	drop_socket(rc);
	rc->state = RCONN_IDLE;
	lws_sul_cancel(&rc->sul_timeout);
	fail_pending(rc);
	/* An ACL refusal fails the attempt, however far it had got. */
	if (attempt || failure == WSM_REDIS_FAILED_AUTH)
		wsm__bump(&rc->m->c.cluster_connect_failures, 1);
	if (failure != WSM_REDIS_FAILED_NOT)
		rc->failure = failure;
	/* A name's next address is tried at once; the last one's failure waits. */
	if (!was_up && failure == WSM_REDIS_FAILED_SOCKET &&
	    rc->next_addr + 1 < rc->naddrs && rc->m->context) {
		rc->next_addr++;
		rc->try_next = true;
		rc->retry_armed = true;
		lws_sul_schedule(rc->m->context, 0, &rc->sul_retry, on_retry,
				 0);
		return;
	}
	schedule_retry(rc);
	if (was_up && rc->ops->down)
		rc->ops->down(rc, rc->user);
	else if (!was_up && rc->ops->failed)
		rc->ops->failed(rc, rc->user);
}

static void lost(struct wsm_redis_conn *rc, const char *why)
{
	lost_as(rc, rc->state == RCONN_UP ? WSM_REDIS_FAILED_NOT
					  : WSM_REDIS_FAILED_SOCKET, why);
}

static int queue_command(struct wsm_redis_conn *rc, int argc,
			 const char **argv, const size_t *lens,
			 unsigned replies, wsm_redis_reply_fn fn, void *user);

static void became_up(struct wsm_redis_conn *rc)
{
	rc->state = RCONN_UP;
	/*
	 * An ACL that refuses a command after AUTH passed is found later:
	 * until the owner says the link works, reconnects keep backing off.
	 */
	if (rc->failure != WSM_REDIS_FAILED_AUTH) {
		rc->failure = WSM_REDIS_FAILED_NOT;
		rc->retry_bound_us = rc->timing.retry_min_us;
	}
	if (rc->ops->up)
		rc->ops->up(rc, rc->user);
}

/* An error that says who we are is not welcome: no retry will change it. */
static bool refused_us(const redisReply *r)
{
	static const char *const codes[] = { "NOAUTH", "WRONGPASS", "NOPERM",
					     "ERR invalid password",
					     "ERR AUTH" };
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (r->len >= strlen(codes[i]) &&
		    !memcmp(r->str, codes[i], strlen(codes[i])))
			return true;
	return false;
}

/* The greeting refused: AUTH errors, and any answer to AUTH, are ours. */
static void refused_greeting(struct wsm_redis_conn *rc, const redisReply *r,
			     const char *what, bool auth)
{
	bool error = r->type == REDIS_REPLY_ERROR;
	char why[160];

	snprintf(why, sizeof(why), "%s refused: %.*s", what,
		 error ? (r->len < 100 ? (int)r->len : 100) : 0,
		 error ? r->str : "");
	lost_as(rc, auth || (error && refused_us(r)) ? WSM_REDIS_FAILED_AUTH
						     : WSM_REDIS_FAILED_SOCKET,
		why);
}

static void authed(void *user, const redisReply *r)
{
	if (r && r->type != REDIS_REPLY_STATUS)
		refused_greeting(user, r, "AUTH", true);
}

static void greeted(void *user, const redisReply *r)
{
	struct wsm_redis_conn *rc = user;

	if (!r)
		return; /* the link is already down */
	if (r->type != REDIS_REPLY_STATUS) {
		refused_greeting(rc, r, "the first command", false);
		return;
	}
	became_up(rc);
}

/*
 * A socket that connects proves little (the kernel accepts for a Redis
 * stuck in a long command): the link is up once Redis has answered, to
 * its SELECT or to a PING, within the timeout.
 */
static void connected(struct wsm_redis_conn *rc)
{
	char db[8];
	const char *argv[2] = { "SELECT", db };
	size_t lens[2] = { 6, 0 };
	/* "AUTH user password", or "AUTH password" for the default user. */
	const char *auth[3] = { "AUTH", rc->access.user, rc->access.password };
	size_t auth_lens[3] = { 4, strlen(rc->access.user),
				strlen(rc->access.password) };
	int skip = auth_lens[1] ? 0 : 1;

	if (!(rc->reader = new_reader(rc))) {
		lost(rc, "out of memory");
		return;
	}
	if (skip) {
		auth[1] = auth[0];
		auth_lens[1] = auth_lens[0];
	}
	/* Pipelined with the first command: one round trip either way. */
	if (auth_lens[2] && queue_command(rc, 3 - skip, auth + skip,
					  auth_lens + skip, 1, authed, rc)) {
		lost(rc, "out of memory");
		return;
	}
	if (rc->addr.db) {
		lens[1] = (size_t)snprintf(db, sizeof(db), "%u", rc->addr.db);
	} else {
		argv[0] = "PING";
		lens[0] = 4;
	}
	if (queue_command(rc, rc->addr.db ? 2 : 1, argv, lens, 1, greeted, rc))
		lost(rc, "out of memory");
}

/* One socket to address (a literal, or a unix socket's path). */
static void connect_to(struct wsm_redis_conn *rc, const char *address)
{
	struct lws_client_connect_info i;
	char unix_addr[sizeof(rc->addr.path) + 1];
	struct lws *wsi;

	if (rc->addr.tls) {
		if (!rc->access.tls) {
			lost_as(rc, WSM_REDIS_FAILED_TLS, "rediss:// with no TLS "
				"context");
			return;
		}
		/* The certificate must name the host as written. */
		if (!(rc->tls = wsm__tls_new(rc->m, rc->access.tls,
					     rc->addr.host)) ||
		    (!rc->tls_buf &&
		     !(rc->tls_buf = wsm__alloc(rc->m, WSM_TLS_BUF)))) {
			lost(rc, "out of memory");
			return;
		}
	}
	memset(&i, 0, sizeof(i));
	i.context = rc->m->context;
	i.vhost = rc->m->vhost;
	i.method = "RAW";
	i.local_protocol_name = rc->m->cfg.protocol_name;
	i.userdata = rc;
	if (rc->addr.path[0]) {
		/* lws's spelling of a unix socket address. */
		snprintf(unix_addr, sizeof(unix_addr), "+%s", rc->addr.path);
		i.address = unix_addr;
	} else {
		i.address = address;
		i.port = rc->addr.port;
	}
	i.host = i.address;
	i.origin = i.address;
	arm_timeout(rc, wsm__now_us() + rc->timing.timeout_us);
	/*
	 * A failure may be reported from inside this call (the error
	 * callback finds rc by the user pointer) or by a NULL result.
	 */
	wsi = lws_client_connect_via_info(&i);
	if (rc->state != RCONN_CONNECTING)
		return; /* already failed, and rescheduled */
	if (!wsi) {
		lost(rc, "connect failed");
		return;
	}
	rc->wsi = wsi;
}

/* The name's addresses are in (or it did not resolve): connect. */
static void resolved(struct wsm_redis_conn *rc)
{
	const char *why = "";
	char text[320];
	int n = wsm__lookup_result(rc->lookup, rc->addrs, WSM_LOOKUP_MAX, &why);

	if (n < 0)
		return; /* still running: woken for another */
	wsm__lookup_release(rc->lookup);
	rc->lookup = NULL;
	if (!n) {
		snprintf(text, sizeof(text), "%s does not resolve: %s",
			 rc->addr.host, why);
		lost_as(rc, WSM_REDIS_FAILED_NAME, text);
		return;
	}
	rc->naddrs = n;
	rc->next_addr = 0;
	rc->state = RCONN_CONNECTING;
	connect_to(rc, rc->addrs[0]);
}

/* A new attempt: a name is resolved again each time (DNS may have moved it). */
static void connect_now(struct wsm_redis_conn *rc)
{
	if (!rc->m->context || rc->state != RCONN_IDLE)
		return;
	if (!rc->addr.path[0] && !rc->addr.host[0])
		return; /* no target yet: the Sentinels name it (retarget) */
	rc->reconnects++;
	rc->naddrs = rc->next_addr = 0;
	if (rc->addr.path[0] || rc->addr.literal) {
		rc->state = RCONN_CONNECTING;
		connect_to(rc, rc->addr.host);
		return;
	}
	rc->state = RCONN_RESOLVING;
	arm_timeout(rc, wsm__now_us() + rc->timing.timeout_us);
	if (!(rc->lookup = wsm__lookup_start(rc->m->context, rc->addr.host)))
		lost(rc, "out of memory or threads for a name lookup");
}

void wsm__redis_woken(wsm_manager_t *m)
{
	struct wsm_link *l, *next;

	for (l = m->redis_conns.next; l != &m->redis_conns; l = next) {
		struct wsm_redis_conn *rc =
			wsm_container_of(l, struct wsm_redis_conn, in_manager);

		next = l->next; /* rc stays listed: freed only by its owner */
		if (rc->state == RCONN_RESOLVING && rc->lookup)
			resolved(rc);
	}
}

/* ---- the pipeline ---------------------------------------------------------- */

static int grow_pending(struct wsm_redis_conn *rc)
{
	size_t cap = rc->pend_cap ? rc->pend_cap * 2 : 16, k;
	struct pending *p = wsm__alloc(rc->m, cap * sizeof(*p));

	if (!p)
		return WSM_ENOMEM;
	for (k = 0; k < rc->pend_len; k++)
		p[k] = rc->pend[(rc->pend_head + k) % rc->pend_cap];
	wsm__free(rc->m, rc->pend, rc->pend_cap * sizeof(*rc->pend));
	rc->pend = p;
	rc->pend_cap = cap;
	rc->pend_head = 0;
	return WSM_OK;
}

static int reserve_out(struct wsm_redis_conn *rc, size_t more)
{
	size_t cap = rc->out_cap ? rc->out_cap : 4096;
	char *p;

	if (rc->out_len + more <= rc->out_cap)
		return WSM_OK;
	while (cap < rc->out_len + more)
		cap *= 2;
	if (!(p = wsm__alloc(rc->m, cap)))
		return WSM_ENOMEM;
	if (rc->out_len)
		memcpy(p, rc->out, rc->out_len);
	wsm__free(rc->m, rc->out, rc->out_cap);
	rc->out = p;
	rc->out_cap = cap;
	return WSM_OK;
}

static int queue_command(struct wsm_redis_conn *rc, int argc,
			 const char **argv, const size_t *lens,
			 unsigned replies, wsm_redis_reply_fn fn, void *user)
{
	char *cmd = NULL;
	int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
	struct pending *p;

	if (len < 0)
		return WSM_ENOMEM;
	if ((rc->pend_len == rc->pend_cap && grow_pending(rc)) ||
	    reserve_out(rc, (size_t)len)) {
		redisFreeCommand(cmd);
		return WSM_ENOMEM;
	}
	memcpy(rc->out + rc->out_len, cmd, (size_t)len);
	redisFreeCommand(cmd);
	if (rc->out_len == rc->out_off && rc->wsi)
		lws_callback_on_writable(rc->wsi);
	rc->out_len += (size_t)len;
	p = &rc->pend[(rc->pend_head + rc->pend_len) % rc->pend_cap];
	p->fn = fn;
	p->user = user;
	p->replies = replies;
	p->deadline_us = wsm__now_us() + rc->timing.timeout_us;
	if (rc->pend_len++ == 0)
		rearm_timeout(rc);
	return WSM_OK;
}

int wsm__rconn_send(struct wsm_redis_conn *rc, int argc, const char **argv,
		    const size_t *lens, unsigned replies,
		    wsm_redis_reply_fn fn, void *user)
{
	if (rc->state != RCONN_UP)
		return WSM_EAGAIN;
	return queue_command(rc, argc, argv, lens, replies ? replies : 1, fn,
			     user);
}

/* What OpenSSL wrote, one lws_write() per writeable callback. */
static int write_tls(struct wsm_redis_conn *rc)
{
	size_t n = rc->out_len - rc->out_off;
	int k;

	if (!wsm__tls_pending(rc->tls) && rc->tls_up && n) {
		if (n > WSM_TLS_PLAIN_CHUNK)
			n = WSM_TLS_PLAIN_CHUNK;
		if (wsm__tls_write(rc->tls, rc->out + rc->out_off, (int)n))
			return -1;
		rc->out_off += n;
		if (rc->out_off == rc->out_len)
			rc->out_off = rc->out_len = 0;
	}
	k = wsm__tls_take(rc->tls, rc->tls_buf, WSM_TLS_BUF);
	if (k && lws_write(rc->wsi, rc->tls_buf, (size_t)k, LWS_WRITE_RAW) < k)
		return -1;
	if (wsm__tls_pending(rc->tls) || rc->out_len > rc->out_off)
		lws_callback_on_writable(rc->wsi);
	return 0;
}

static int write_some(struct wsm_redis_conn *rc)
{
	size_t n = rc->out_len - rc->out_off;

	if (rc->tls)
		return write_tls(rc);
	if (!n)
		return 0;
	if (n > WSM_REDIS_WRITE_CHUNK)
		n = WSM_REDIS_WRITE_CHUNK;
	if (lws_write(rc->wsi, (unsigned char *)rc->out + rc->out_off, n,
		      LWS_WRITE_RAW) < (int)n)
		return -1;
	rc->out_off += n;
	if (rc->out_off < rc->out_len) {
		lws_callback_on_writable(rc->wsi);
		return 0;
	}
	rc->out_off = rc->out_len = 0;
	if (rc->out_cap > WSM_REDIS_OUT_KEEP) {
		wsm__free(rc->m, rc->out, rc->out_cap);
		rc->out = NULL;
		rc->out_cap = 0;
	}
	return 0;
}

static void answer(struct wsm_redis_conn *rc, const redisReply *r)
{
	struct pending *p = &rc->pend[rc->pend_head];
	wsm_redis_reply_fn fn = p->fn;
	void *user = p->user;

	/*
	 * The ACL user lacks a command libwsm needs: nothing works until an
	 * operator grants it (wsm(7) lists them), whatever command it was.
	 */
	if (r->type == REDIS_REPLY_ERROR && r->len >= 6 &&
	    !memcmp(r->str, "NOPERM", 6)) {
		char why[200];

		snprintf(why, sizeof(why), "the ACL refused: %.*s",
			 r->len < 160 ? (int)r->len : 160, r->str);
		lost_as(rc, WSM_REDIS_FAILED_AUTH, why);
		return;
	}
	if (--p->replies == 0) {
		rc->pend_head = (rc->pend_head + 1) % rc->pend_cap;
		rc->pend_len--;
		rearm_timeout(rc);
	}
	if (fn)
		fn(user, r);
}

/* false when the connection was lost meanwhile (rc may be idle again). */
static bool receive(struct wsm_redis_conn *rc, const void *in, size_t len)
{
	void *reply;

	if (redisReaderFeed(rc->reader, in, len) != REDIS_OK ||
	    rc->reader->len - rc->reader->pos > WSM_REDIS_MAX_BUFFERED) {
		lost(rc, "reply too large");
		return false;
	}
	for (;;) {
		struct lws *wsi = rc->wsi;

		if (redisReaderGetReply(rc->reader, &reply) != REDIS_OK) {
			lost(rc, rc->reader->errstr[0] ? rc->reader->errstr
						       : "bad reply");
			return false;
		}
		if (!reply)
			return true;
		if (rc->subscriber && is_push(reply)) {
			if (rc->ops->push)
				rc->ops->push(rc, rc->user, reply);
		} else if (rc->pend_len) {
			answer(rc, reply);
		} else {
			freeReplyObject(reply);
			lost(rc, "reply to no command");
			return false;
		}
		freeReplyObject(reply);
		/* A callback may have reset the link: stop reading its bytes. */
		if (rc->wsi != wsi || !rc->reader)
			return false;
	}
}

/* ---- TLS ---------------------------------------------------------------------- */

/* The handshake goes on; once it is done the greeting goes out. */
static void tls_step(struct wsm_redis_conn *rc)
{
	char why[256];
	int rc_hs = wsm__tls_handshake(rc->tls, why, sizeof(why));

	if (rc_hs < 0) {
		lost_as(rc, WSM_REDIS_FAILED_TLS, why);
		return;
	}
	if (rc_hs == 1) {
		rc->tls_up = true;
		connected(rc);
	}
	if (rc->wsi && (wsm__tls_pending(rc->tls) || rc->out_len))
		lws_callback_on_writable(rc->wsi);
}

/* Bytes from the socket, decrypted into replies. */
static void receive_tls(struct wsm_redis_conn *rc, const void *in, size_t len)
{
	struct lws *wsi = rc->wsi;
	char why[256];
	int n;

	if (wsm__tls_feed(rc->tls, in, len)) {
		lost(rc, "out of memory");
		return;
	}
	if (!rc->tls_up) {
		tls_step(rc);
		if (rc->wsi != wsi || !rc->tls_up)
			return;
	}
	while ((n = wsm__tls_read(rc->tls, rc->tls_buf, WSM_TLS_BUF, why,
				  sizeof(why))) > 0)
		if (!receive(rc, rc->tls_buf, (size_t)n) || rc->wsi != wsi)
			return;
	if (n < 0) {
		/* Before the greeting's answer, TLS is why it never came up. */
		lost_as(rc, rc->state == RCONN_UP ? WSM_REDIS_FAILED_NOT
						  : WSM_REDIS_FAILED_TLS,
			why);
		return;
	}
	/* Reading may answer the server (an alert, a key update). */
	if (wsm__tls_pending(rc->tls))
		lws_callback_on_writable(rc->wsi);
}

/* ---- lws's side ------------------------------------------------------------ */

static struct wsm_redis_conn *owned(wsm_manager_t *m, void *user)
{
	struct wsm_link *l;

	if (!user)
		return NULL;
	for (l = m->redis_conns.next; l != &m->redis_conns; l = l->next)
		if (l == &((struct wsm_redis_conn *)user)->in_manager)
			return user;
	return NULL;
}

int wsm__redis_callback(wsm_manager_t *m, struct lws *wsi, int reason,
			void *user, void *in, size_t len, bool *handled)
{
	struct wsm_redis_conn *rc;

	switch (reason) {
	case LWS_CALLBACK_RAW_CONNECTED:
	case LWS_CALLBACK_RAW_RX:
	case LWS_CALLBACK_RAW_WRITEABLE:
	case LWS_CALLBACK_RAW_CLOSE:
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		break;
	default:
		return 0;
	}
	if (!(rc = owned(m, user)))
		return 0;
	*handled = true;
	if (!rc->wsi)
		rc->wsi = wsi; /* called back from inside the connect call */
	else if (rc->wsi != wsi)
		return -1; /* not the socket rc uses now */
	switch (reason) {
	case LWS_CALLBACK_RAW_CONNECTED:
		if (rc->tls) {
			tls_step(rc);
			return 0;
		}
		connected(rc);
		if (rc->wsi && rc->out_len)
			lws_callback_on_writable(rc->wsi);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (rc->tls)
			receive_tls(rc, in, len);
		else if (rc->reader)
			receive(rc, in, len);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (write_some(rc)) {
			lost(rc, "write failed");
			return -1;
		}
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		rc->wsi = NULL; /* lws frees it */
		lost(rc, in ? (const char *)in : "connect failed");
		return 0;
	default: /* LWS_CALLBACK_RAW_CLOSE */
		rc->wsi = NULL;
		lost(rc, "connection closed");
		return 0;
	}
}

void wsm__redis_unbind(wsm_manager_t *m)
{
	struct wsm_link *l;

	for (l = m->redis_conns.next; l != &m->redis_conns; l = l->next) {
		struct wsm_redis_conn *rc =
			wsm_container_of(l, struct wsm_redis_conn, in_manager);
		bool was_up = rc->state == RCONN_UP;

		lws_sul_cancel(&rc->sul_retry);
		rc->retry_armed = false;
		lws_sul_cancel(&rc->sul_timeout);
		/* lws has closed, or is closing, the socket with its context. */
		rc->wsi = NULL;
		drop_socket(rc);
		rc->state = RCONN_IDLE;
		fail_pending(rc);
		if (was_up && rc->ops->down)
			rc->ops->down(rc, rc->user);
	}
}

/* ---- lifetime -------------------------------------------------------------- */

struct wsm_redis_conn *wsm__rconn_new(wsm_manager_t *m,
				      const struct wsm_redis_addr *addr,
				      const struct wsm_redis_timing *timing,
				      const struct wsm_redis_access *access,
				      bool subscriber,
				      const struct wsm_redis_conn_ops *ops,
				      void *user)
{
	struct wsm_redis_conn *rc = wsm__alloc(m, sizeof(*rc));

	if (!rc)
		return NULL;
	rc->m = m;
	rc->addr = *addr;
	rc->timing = *timing;
	if (access)
		rc->access = *access;
	if (!rc->access.user)
		rc->access.user = "";
	if (!rc->access.password)
		rc->access.password = "";
	rc->subscriber = subscriber;
	rc->ops = ops;
	rc->user = user;
	rc->retry_bound_us = timing->retry_min_us;
	rc->rng = wsm__hash((uint64_t)(uintptr_t)rc, addr->host,
			    strlen(addr->host)) | 1;
	rc->sul_timeout.cb = on_timeout;
	wsm_list_append(&m->redis_conns, &rc->in_manager);
	return rc;
}

void wsm__rconn_feed(struct wsm_redis_conn *rc, const void *in, size_t len)
{
	if (!rc->reader && !(rc->reader = new_reader(rc)))
		return;
	if (rc->state == RCONN_IDLE)
		rc->state = RCONN_UP;
	if (len)
		receive(rc, in, len);
}

void wsm__rconn_start(struct wsm_redis_conn *rc)
{
	connect_now(rc);
}

bool wsm__rconn_is_up(const struct wsm_redis_conn *rc)
{
	return rc->state == RCONN_UP;
}

size_t wsm__rconn_pending(const struct wsm_redis_conn *rc)
{
	return rc->pend_len;
}

void wsm__rconn_proven(struct wsm_redis_conn *rc)
{
	if (rc->failure == WSM_REDIS_FAILED_AUTH) {
		rc->failure = WSM_REDIS_FAILED_NOT;
		rc->retry_bound_us = rc->timing.retry_min_us;
	}
}

enum wsm_redis_failure wsm__rconn_failure(const struct wsm_redis_conn *rc)
{
	return (enum wsm_redis_failure)atomic_load_explicit(
		&((struct wsm_redis_conn *)rc)->failure, memory_order_relaxed);
}

uint64_t wsm__rconn_reconnects(const struct wsm_redis_conn *rc)
{
	return rc->reconnects ? rc->reconnects - 1 : 0;
}

void wsm__rconn_retarget(struct wsm_redis_conn *rc, const char *host,
			 uint16_t port, bool now)
{
	unsigned char bin[16];

	if (!strcmp(rc->addr.host, host) && rc->addr.port == port) {
		if (rc->state == RCONN_IDLE && !rc->retry_armed)
			connect_now(rc); /* a first target, or a parked one */
		return;
	}
	snprintf(rc->addr.host, sizeof(rc->addr.host), "%s", host);
	rc->addr.port = port;
	rc->addr.literal = inet_pton(AF_INET, host, bin) == 1 ||
			   inet_pton(AF_INET6, host, bin) == 1;
	if (!now) {
		if (rc->state == RCONN_IDLE && !rc->retry_armed)
			connect_now(rc);
		return; /* the next attempt goes there */
	}
	/* Somewhere else now: no backoff earned at the old address applies. */
	rc->retry_bound_us = rc->timing.retry_min_us;
	if (rc->state != RCONN_IDLE) {
		lost(rc, "moving to another server");
		return;
	}
	if (rc->retry_armed && rc->m->context)
		lws_sul_cancel(&rc->sul_retry);
	rc->retry_armed = false;
	rc->try_next = false;
	connect_now(rc);
}

void wsm__rconn_reset(struct wsm_redis_conn *rc)
{
	if (rc->state != RCONN_IDLE)
		lost(rc, "reset");
}

void wsm__redis_free_all(wsm_manager_t *m)
{
	while (!wsm_list_empty(&m->redis_conns))
		wsm__rconn_free(wsm_container_of(m->redis_conns.next,
						 struct wsm_redis_conn,
						 in_manager));
}

void wsm__rconn_free(struct wsm_redis_conn *rc)
{
	if (!rc)
		return;
	wsm_link_remove(&rc->in_manager);
	if (rc->m->context) {
		lws_sul_cancel(&rc->sul_retry);
		lws_sul_cancel(&rc->sul_timeout);
	}
	drop_socket(rc);
	fail_pending(rc);
	wsm__free(rc->m, rc->pend, rc->pend_cap * sizeof(*rc->pend));
	wsm__free(rc->m, rc->out, rc->out_cap);
	wsm__free(rc->m, rc->tls_buf, rc->tls_buf ? WSM_TLS_BUF : 0);
	wsm__free(rc->m, rc, sizeof(*rc));
}
