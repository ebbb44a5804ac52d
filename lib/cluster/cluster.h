/*
 * Cluster mode's own types. Only lib/cluster/ includes this header: the
 * core sees the cluster through the few calls internal.h declares, and
 * nothing here knows how lws frames a WebSocket message.
 */
#ifndef WSM_CLUSTER_H
#define WSM_CLUSTER_H

#include <hiredis/hiredis.h>

#include "../internal.h"

/* ---- where a Redis listens (redis_addr.c) ------------------------------- */
#define WSM_REDIS_MAX_INSTANCES 16

struct wsm_redis_addr {
	char host[46];  /* an IPv4 or IPv6 literal; "" for a unix socket */
	char path[108]; /* the unix socket, as sun_path takes it */
	uint16_t port;
	uint16_t db;    /* SELECTed after connecting when not 0 */
};

/*
 * "redis://IP[:port][/db]" or "unix:/path[?db=N]", comma-separated: 0, or
 * WSM_EINVAL for anything else (names need DNS, which would block the
 * loop). At most max addresses.
 */
int wsm__redis_parse_list(const char *list, struct wsm_redis_addr *out,
			  size_t max, size_t *n);

/* ---- one connection to one Redis (redis_conn.c) ------------------------- */
/*
 * A raw lws client connection on the host's context, RESP encoded and
 * parsed by hiredis: commands are pipelined, each answered by its reply
 * callback in order. It reconnects by itself, after a jittered exponential
 * backoff, until freed. Service thread only.
 */
struct wsm_redis_conn;

struct wsm_redis_timing {
	int64_t timeout_us;   /* a connect, or the oldest unanswered command */
	int64_t retry_min_us; /* first reconnect delay; doubles per failure */
	int64_t retry_max_us;
};

/*
 * reply is NULL when the command cannot be answered any more: the
 * connection was lost or timed out, or is being freed. reply is valid
 * during the call only.
 */
typedef void (*wsm_redis_reply_fn)(void *user, const redisReply *reply);

struct wsm_redis_conn_ops {
	void (*up)(struct wsm_redis_conn *rc, void *user);   /* ready */
	void (*down)(struct wsm_redis_conn *rc, void *user); /* lost; pending
							       * replies failed */
	/* A subscriber connection's published message ("message", ch, data). */
	void (*push)(struct wsm_redis_conn *rc, void *user,
		     const redisReply *reply);
};

struct wsm_redis_conn *wsm__rconn_new(wsm_manager_t *m,
				      const struct wsm_redis_addr *addr,
				      const struct wsm_redis_timing *timing,
				      bool subscriber,
				      const struct wsm_redis_conn_ops *ops,
				      void *user);
/* Starts connecting; the manager must be bound to its context. */
void wsm__rconn_start(struct wsm_redis_conn *rc);
bool wsm__rconn_is_up(const struct wsm_redis_conn *rc);
/*
 * Queues one command, answered by 'replies' replies (SUBSCRIBE with k
 * channels: k). WSM_ENOTCONN-like failures come back as WSM_EAGAIN: the
 * connection is not up; WSM_ENOMEM.
 */
int wsm__rconn_send(struct wsm_redis_conn *rc, int argc, const char **argv,
		    const size_t *lens, unsigned replies,
		    wsm_redis_reply_fn fn, void *user);
/* Commands sent and not yet answered. */
size_t wsm__rconn_pending(const struct wsm_redis_conn *rc);
uint64_t wsm__rconn_reconnects(const struct wsm_redis_conn *rc);
/* Drops the connection now (as a lost link would) and reconnects later. */
void wsm__rconn_reset(struct wsm_redis_conn *rc);
/* Fails what is pending and closes the socket; not from rc's callbacks. */
void wsm__rconn_free(struct wsm_redis_conn *rc);

#endif
