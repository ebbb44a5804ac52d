/*
 * Cluster mode's own types. Only lib/cluster/ includes this header: the
 * core sees the cluster through the few calls internal.h declares, and
 * nothing here knows how lws frames a WebSocket message.
 */
#ifndef WSM_CLUSTER_H
#define WSM_CLUSTER_H

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

#include "../internal.h"

/* ---- where a Redis listens (redis_addr.c) ------------------------------- */
#define WSM_REDIS_MAX_INSTANCES 16

#define WSM_SENTINEL_MAX 8

struct wsm_redis_addr {
	char host[254]; /* a name or an IP literal; "" for a unix socket, or
			 * while the Sentinels have named no primary */
	char path[108]; /* the unix socket, as sun_path takes it */
	uint16_t port;
	uint16_t db;    /* SELECTed after connecting when not 0 */
	bool literal;   /* host is an IP address: nothing to resolve */
	bool tls;       /* rediss://, rediss-sentinel:// */
	/* redis[s]-sentinel://: "host[:port],..." as written, and the name. */
	char sentinels[256];
	char master[65];
};

/*
 * "redis[s]://host[:port][/db]" (host a name, an IPv4 address or an IPv6
 * one in brackets), "unix:/path[?db=N]" or
 * "redis[s]-sentinel://host[:port],.../master[/db]", comma-separated: 0,
 * or WSM_EINVAL for anything else. At most max addresses.
 */
int wsm__redis_parse_list(const char *list, struct wsm_redis_addr *out,
			  size_t max, size_t *n);
/* One Sentinel's "host[:port]" (26379 by default) into a's host and port. */
int wsm__sentinel_parse(const char *s, size_t len, struct wsm_redis_addr *a);

/* ---- host names, resolved off the service loop (resolve.c) ------------ */
#define WSM_LOOKUP_MAX 8 /* addresses tried per connect */

struct wsm_lookup;

/*
 * Resolves name on a thread of its own and wakes cx's service loop when
 * done (LWS_CALLBACK_EVENT_WAIT_CANCELLED). NULL: no memory or no thread.
 */
struct wsm_lookup *wsm__lookup_start(struct lws_context *cx, const char *name);
/*
 * -1 while it runs; then how many addresses went into addr (literal, in
 * getaddrinfo()'s order), 0 when the name did not resolve, why saying why.
 */
int wsm__lookup_result(struct wsm_lookup *l, char (*addr)[INET6_ADDRSTRLEN],
		       int max, const char **why);
/* The caller is done with l (NULL is fine); it never wakes cx again. */
void wsm__lookup_release(struct wsm_lookup *l);

/* ---- TLS over the raw socket (tls.c) ----------------------------------- */
struct wsm_tls;

/* From the WSM_OPT_CLUSTER_TLS_* settings; NULL with why filled. */
SSL_CTX *wsm__tls_ctx_new(const struct wsm_settings *s, char *why,
			  size_t size);
void wsm__tls_ctx_free(SSL_CTX *ctx);
/* A client session checking that the certificate names name (or its IP). */
struct wsm_tls *wsm__tls_new(wsm_manager_t *m, SSL_CTX *ctx, const char *name);
void wsm__tls_free(wsm_manager_t *m, struct wsm_tls *t);
/* Bytes the socket read. */
int wsm__tls_feed(struct wsm_tls *t, const void *in, size_t len);
/* 1: established; 0: waiting for the server; -1: failed (why). */
int wsm__tls_handshake(struct wsm_tls *t, char *why, size_t size);
/* Plaintext read: its length, 0 when none is complete yet, -1: failed. */
int wsm__tls_read(struct wsm_tls *t, void *buf, int size, char *why,
		  size_t why_size);
/* Plaintext to send: encrypted into the output at once. 0 or -1. */
int wsm__tls_write(struct wsm_tls *t, const void *buf, int len);
/* Encrypted bytes waiting for the socket, and taking them. */
size_t wsm__tls_pending(const struct wsm_tls *t);
int wsm__tls_take(struct wsm_tls *t, void *buf, int size);

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

/* Who a connection says it is, and its TLS for rediss:// addresses. */
struct wsm_redis_access {
	const char *user;     /* "": the default user */
	const char *password; /* "": no AUTH */
	SSL_CTX *tls;
};

/* Why the last attempt to connect failed, kept until one succeeds. */
enum wsm_redis_failure {
	WSM_REDIS_FAILED_NOT = 0,
	WSM_REDIS_FAILED_SOCKET, /* refused, reset, timed out */
	WSM_REDIS_FAILED_NAME,   /* the host name did not resolve */
	WSM_REDIS_FAILED_TLS,    /* handshake or certificate */
	WSM_REDIS_FAILED_AUTH    /* AUTH refused, or required and not given */
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
	/* An attempt to connect failed (before it was ever up); may be NULL. */
	void (*failed)(struct wsm_redis_conn *rc, void *user);
};

/* access may be NULL: no AUTH, and no TLS (a rediss:// address fails). */
struct wsm_redis_conn *wsm__rconn_new(wsm_manager_t *m,
				      const struct wsm_redis_addr *addr,
				      const struct wsm_redis_timing *timing,
				      const struct wsm_redis_access *access,
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
/*
 * The owner ran what it needs on the connection: an ACL refusal (NOPERM,
 * which drops the link as WSM_REDIS_FAILED_AUTH) is over.
 */
void wsm__rconn_proven(struct wsm_redis_conn *rc);
/* Any thread: why the connection is not up, if an attempt failed. */
enum wsm_redis_failure wsm__rconn_failure(const struct wsm_redis_conn *rc);
uint64_t wsm__rconn_reconnects(const struct wsm_redis_conn *rc);
/*
 * Bytes as if read from the socket (the fuzz target's way in; the
 * connection counts as up, and without a context nothing is scheduled).
 */
void wsm__rconn_feed(struct wsm_redis_conn *rc, const void *in, size_t len);
/*
 * Where the connection goes from its next attempt (the Sentinels named
 * another primary, or another Sentinel is tried): with now, a connection
 * up or waiting elsewhere moves at once; a connection with no target yet
 * connects.
 */
void wsm__rconn_retarget(struct wsm_redis_conn *rc, const char *host,
			 uint16_t port, bool now);
/* Drops the connection now (as a lost link would) and reconnects later. */
void wsm__rconn_reset(struct wsm_redis_conn *rc);
/* Fails what is pending and closes the socket; not from rc's callbacks. */
void wsm__rconn_free(struct wsm_redis_conn *rc);

/* ---- what a session's channel carries (wire.c) ----------------------- */
/*
 * "<seq> <epoch> <kind>[<body>]": kind 'p', 'e' or 'c' (progress, error,
 * complete) followed by the message's JSON after its opening '{', or 'x'
 * (close the session's connections) alone. Published by the scripts; read
 * from whatever Redis delivers, so parsed as untrusted.
 */
struct wsm_wire {
	uint64_t seq;
	uint32_t epoch;
	char kind;
	const char *body;
	size_t body_len;
};

int wsm__wire_parse(const char *s, size_t len, struct wsm_wire *out);
char wsm__wire_kind(enum wsm_msg_kind kind);
/* A message of kind ('p', 'e', 'c') from a body read from Redis, or NULL. */
int wsm__wire_message(wsm_manager_t *m, const char *id, size_t id_len,
		      char kind, const char *body, size_t body_len,
		      struct wsm_msg **out);

/* ---- the scripts (scripts.c) -------------------------------------------- */
/*
 * The most history one JOIN reads back, well inside what a connection
 * buffers of one reply; past it the state serves.
 */
#define WSM_HISTORY_REPLY_BYTES (16u << 20)
/* Beyond any seq Redis's Lua numbers (doubles) count exactly. */
#define WSM_SEQ_MAX (1ull << 53)

enum wsm_script {
	WSM_SCRIPT_PUBLISH, /* seq, state, history, publish: one atomic step */
	WSM_SCRIPT_JOIN,    /* the state, created with an epoch if missing */
	WSM_SCRIPT_CLOSE,   /* publishes a close at the current seq */
	WSM_SCRIPT_ANNOUNCE, /* the state, created if missing */
	WSM_SCRIPT_COUNT
};

extern const char *const wsm__scripts[WSM_SCRIPT_COUNT];

/* ---- when Redis refuses a command (refused.c) ------------------------- */
struct wsm_instance;
struct wsm_csess;

/* Whether the instance takes commands now: up, scripts loaded, not waiting. */
bool wsm__instance_open(const struct wsm_instance *in);
/*
 * Redis answered cs's publish or state read with an error: cs is tried
 * again later (its publish stays in flight; a read is marked wanted). Only
 * cs waits when the error is its own; the whole instance does for the
 * instance's errors (and loads its scripts again after NOSCRIPT).
 */
void wsm__refused(struct wsm_csess *cs, const redisReply *r);
/* Everything the instance holds back is tried again. */
void wsm__instance_resume(struct wsm_instance *in);
/*
 * INFO did not give the life, or the instance's place is not this node's
 * (r NULL: the caller said why): the instance waits, then asks again.
 */
void wsm__refused_life(struct wsm_instance *in, const redisReply *r);
/* A command the instance ran: the next refusal waits the shortest time. */
void wsm__refused_none(struct wsm_instance *in);
/* The connection came up again: nothing waits on what it said before. */
void wsm__refused_forget(struct wsm_instance *in);
/* Cancels the instance's wait (unbind, free). */
void wsm__refused_stop(struct wsm_instance *in);

/* ---- the primary the Sentinels name (sentinel.c) ----------------------- */
struct wsm_sentinel;

/* For in, whose address is a redis[s]-sentinel:// one; NULL: no memory. */
struct wsm_sentinel *wsm__sentinel_new(struct wsm_instance *in,
				       const struct wsm_redis_addr *addr,
				       const struct wsm_redis_timing *timing,
				       const struct wsm_redis_access *access);
/* Connects to the Sentinels (bound to a context), and asks. */
void wsm__sentinel_start(struct wsm_sentinel *s);
/*
 * The primary may not be one any more (a connection lost or refused, ROLE
 * saying otherwise, READONLY): the Sentinels are asked again, at once the
 * first time, then after a growing backoff. NULL is fine.
 */
void wsm__sentinel_suspect(struct wsm_sentinel *s);
/* The primary works (its scripts loaded): the backoff starts over. */
void wsm__sentinel_trusted(struct wsm_sentinel *s);
/* Why the Sentinels cannot be reached, if they cannot. */
enum wsm_redis_failure wsm__sentinel_failure(const struct wsm_sentinel *s);
/* Unbound: nothing is scheduled any more. NULL is fine. */
void wsm__sentinel_stop(struct wsm_sentinel *s);
void wsm__sentinel_free(struct wsm_sentinel *s);

/* ---- the cluster ---------------------------------------------------------- */
struct wsm_cluster;

/* What a SCRIPT LOAD reply is for. */
struct wsm_script_load {
	struct wsm_instance *in;
	enum wsm_script which;
};

#define WSM_LIFE_LEN 33

/* One Redis: a pipelined command connection and a subscriber. */
struct wsm_instance {
	struct wsm_cluster *cl;
	struct wsm_script_load load[WSM_SCRIPT_COUNT];
	struct wsm_redis_conn *cmd, *sub;
	struct wsm_sentinel *sentinel; /* NULL: a fixed address */
	char sha[WSM_SCRIPT_COUNT][41];
	unsigned scripts_loaded;
	bool ready;   /* cmd up with its scripts loaded */
	/*
	 * The Redis life: "<run_id>:<master_replid>", 16 characters of each,
	 * read with INFO when the command connection comes up and after an
	 * error that may mean another life (READONLY, LOADING, MASTERDOWN).
	 */
	char life[WSM_LIFE_LEN + 1];
	char life_seen[WSM_LIFE_LEN + 1]; /* INFO's, until the place is read */
	bool life_known;
	atomic_bool misplaced; /* another node lists it at another index */
	bool sub_up;
	bool cmd_was_up, sub_was_up; /* an up after the first is a reconnect */
	/*
	 * The probe (node.c): a subscriber that hears nothing for a quarter
	 * of WSM_OPT_CLUSTER_PROBE_MS is sent a message of its own through
	 * the command connection; one not back within another quarter means
	 * the subscriber is wedged.
	 */
	int64_t heard_us;       /* the subscriber's last message */
	int64_t probe_due_us;   /* the probe's deadline; 0: none out */
	uint64_t probe_token;
	/* Refusals (refused.c): what waits, and for how long. */
	bool paused;    /* refused as a whole: nothing is sent until the wait ends */
	bool reloading; /* its scripts are being loaded again (NOSCRIPT) */
	bool waiting_armed;
	int64_t backoff_us;       /* the last wait; 0 after a success */
	struct wsm_link waiting;  /* sessions refused on their own account */
	lws_sorted_usec_list_t sul_waiting;
};

/* Known to the host through WSM_EVENT_CLUSTER_UP and _DOWN. */
enum wsm_link_state { WSM_LINK_UNKNOWN, WSM_LINK_UP, WSM_LINK_DOWN };
/* The shortest time between two link events. */
#define WSM_LINK_EVENT_GAP_US 1000000

/* A session as the cluster sees it: its outbox here, its subscription. */
enum wsm_sub_state {
	WSM_SUB_NONE,        /* no local connection */
	WSM_SUB_SUBSCRIBING, /* SUBSCRIBE sent */
	WSM_SUB_LOADING,     /* subscribed; the state is being read */
	WSM_SUB_LIVE         /* subscribed, state applied */
};

/* A message from the channel, kept while the state loads. */
struct wsm_held {
	struct wsm_held *next;
	struct wsm_wire w; /* body points into text */
	char text[];
};

struct wsm_csess {
	struct wsm_csess *hnext;
	struct wsm_link in_ready; /* has outbox work an instance can take */
	struct wsm_cluster *cl;
	uint32_t hash;
	unsigned instance;
	unsigned pending; /* commands in flight that name this record */
	/* The outbox: messages in order, one progress replaced in place. */
	struct wsm_msg *out_head, **out_tail;
	struct wsm_msg *out_progress;
	struct wsm_msg *in_flight; /* taken from the outbox, not confirmed */
	uint64_t in_flight_id; /* its publish id: a retry is applied once */
	bool publishing;       /* its script call is outstanding */
	bool replicating;      /* applied; its WAIT is outstanding */
	/* The newest seq Redis confirmed to this node, and its epoch. */
	uint32_t known_epoch;
	uint64_t known_seq;
	int64_t idle_since_us; /* kept idle for known_*: since then */
	bool waiting;          /* refused on its own account: on in->waiting */
	int64_t sent_us;       /* when it was sent */
	/* The subscription, and what waits for the state. */
	enum wsm_sub_state sub;
	bool sub_sent;      /* its SUBSCRIBE is on the current connection */
	unsigned sub_acks;  /* SUBSCRIBE replies still to come */
	bool load_wanted;   /* read the state once the instance is ready */
	bool resync;        /* live, but the state is being read again */
	bool was_live;      /* local connections were shown Redis's state */
	bool stateless;     /* Redis holds no state yet: the local epoch serves */
	bool stateless_shown; /* a client was reset to that local epoch */
	bool confirmed;     /* counted in the subscribed gauge */
	struct wsm_join *waiters; /* connections waiting for the state */
	size_t nwaiters, waiters_cap;
	struct wsm_held *held_head, **held_tail;
	bool held_overflow; /* some were dropped: read the state again */
	size_t nheld, held_bytes;
	uint64_t unsent; /* destroy: inbox messages dropped before their turn */
	uint8_t id_len;
	char id[];
};

struct wsm_cluster {
	wsm_manager_t *m;
	struct wsm_instance inst[WSM_REDIS_MAX_INSTANCES];
	unsigned ninst;
	struct wsm_redis_timing timing;
	struct wsm_redis_access access; /* the settings' credentials */
	struct wsm_redis_access sentinel_access; /* the Sentinels' */
	SSL_CTX *tls;                   /* for rediss:// instances */
	char probe_channel[WSM_KEY_PREFIX_LIMIT + WSM_NODE_ID_LIMIT + 8];
	size_t probe_channel_len;
	lws_sorted_usec_list_t sul_probe;
	struct wsm_csess **buckets;
	size_t nbuckets, count;
	struct wsm_link ready;
	char node_id[WSM_NODE_ID_LIMIT + 1];
	uint64_t incarnation; /* drawn at start: publish ids never repeat */
	uint64_t next_publish;
	uint64_t rng;
	/* The link's state, and the last one an event told the host. */
	enum wsm_link_state link, said;
	bool link_event_armed;
	int64_t next_link_event_us; /* the next event may go then */
	lws_sorted_usec_list_t sul_link_event;
	bool stopping;
	lws_sorted_usec_list_t sul_refresh; /* TTLs of live sessions */
	lws_sorted_usec_list_t sul_heartbeat; /* PINGs on idle connections */
	/* Reserved by callers on any thread, released on the service thread. */
	_Atomic uint64_t outbox_msgs, outbox_bytes;
};

/* node.c */
unsigned wsm__jump_hash(uint64_t key, unsigned buckets);
struct wsm_csess *wsm__csess_find(struct wsm_cluster *cl, const char *id,
				  size_t len);
struct wsm_csess *wsm__csess_get(struct wsm_cluster *cl, const char *id,
				 size_t len);
/* Frees cs if nothing refers to it any more. */
void wsm__csess_release(struct wsm_csess *cs);
/* "<prefix>{<id>}<suffix>" into buf; its length. */
size_t wsm__cluster_key(const struct wsm_cluster *cl, const char *id,
			size_t id_len, const char *suffix, char *buf,
			size_t size);
uint32_t wsm__cluster_epoch(struct wsm_cluster *cl);
/* in cannot be reached (its Sentinels cannot): the host hears DOWN. */
void wsm__instance_unreachable(struct wsm_instance *in);
/* SCRIPT LOAD of every script on in's command connection. */
void wsm__instance_load_scripts(struct wsm_instance *in);
/* INFO on in's command connection: its life, then the scripts or a resume. */
void wsm__instance_read_life(struct wsm_instance *in);
/*
 * The newest (epoch, seq) this node knows Redis assigned to cs: confirmed
 * publishes, and what local connections were shown. 0 0 if none.
 */
void wsm__csess_known(const struct wsm_csess *cs, uint32_t *epoch,
		      uint64_t *seq);

/* outbox.c */
void wsm__outbox_pump(struct wsm_csess *cs);
void wsm__outbox_pump_all(struct wsm_cluster *cl, unsigned instance);
void wsm__outbox_free(struct wsm_csess *cs);

/* sync.c */
void wsm__sync_push(struct wsm_redis_conn *rc, void *user,
		    const redisReply *reply);
void wsm__sync_subscribe(struct wsm_csess *cs);
void wsm__sync_resubscribe_all(struct wsm_cluster *cl, unsigned instance);
void wsm__sync_load_waiting(struct wsm_cluster *cl, unsigned instance);
void wsm__sync_lost(struct wsm_cluster *cl, unsigned instance);
void wsm__sync_free(struct wsm_csess *cs);
/* Reads a live session's state (and history) again, for new waiters. */
void wsm__sync_reload(struct wsm_csess *cs);
/*
 * Redis applied cs's msg as seq in epoch: local connections get it now
 * when it is the next they expect (the channel's echo is then a repeat).
 */
void wsm__sync_published(struct wsm_csess *cs, struct wsm_msg *msg,
			 uint64_t seq, uint32_t epoch);

#endif
