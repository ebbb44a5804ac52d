/*
 * Internal types shared by the library's translation units. Nothing here is
 * part of the ABI. Each struct says what it owns and which thread touches it.
 */
#ifndef WSM_INTERNAL_H
#define WSM_INTERNAL_H

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "wsm.h"

#define WSM_SESSION_ID_LIMIT 128 /* upper bound of WSM_OPT_SESSION_ID_MAX_LEN */
#define WSM_PREFIX_LIMIT 200
#define WSM_PROTOCOL_NAME_LIMIT 64
#define WSM_LIFETIME_SLOTS 16
#define WSM_ORIGIN_LIMIT 1024 /* the allow-list, and an Origin header */
#define WSM_IP_LIMIT 63
#define WSM_QUERY_LIMIT 2048 /* the upgrade URL's query string */
#define WSM_REDIS_LIST_LIMIT 1024 /* WSM_OPT_CLUSTER_REDIS */
#define WSM_NODE_ID_LIMIT 64
#define WSM_KEY_PREFIX_LIMIT 64
#define WSM_CREDENTIAL_LIMIT 256 /* WSM_OPT_CLUSTER_USER, _PASSWORD */
#define WSM_FILE_LIMIT 1024      /* WSM_OPT_CLUSTER_TLS_* paths */

/* ---- intrusive doubly linked list (circular, with a sentinel) ---------- */
struct wsm_link {
	struct wsm_link *prev, *next;
};

static inline void wsm_list_init(struct wsm_link *head)
{
	head->prev = head->next = head;
}

static inline bool wsm_list_empty(const struct wsm_link *head)
{
	return head->next == head;
}

static inline bool wsm_link_linked(const struct wsm_link *l)
{
	return l->next != NULL;
}

static inline void wsm_list_append(struct wsm_link *head, struct wsm_link *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

static inline void wsm_link_remove(struct wsm_link *l)
{
	if (!l->next)
		return;
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = NULL;
}

#define wsm_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- options ----------------------------------------------------------- */
/* Validated option values; a wsm_config_t and a manager each own one copy. */
struct wsm_settings {
	int64_t max_per_session;
	int64_t max_connections;
	int64_t limit_policy;
	int64_t max_lifetime_ms;
	int64_t ping_interval_ms;
	int64_t stale_timeout_ms;
	int64_t sweep_interval_ms;
	int64_t close_grace_ms;
	int64_t lifetime_jitter_pct;
	int64_t app_ping;
	int64_t max_per_ip;
	int64_t max_upgrade_rate;
	int64_t announced_only;
	int64_t session_id_max_len;
	int64_t max_message_size;
	int64_t rx_buffer_size;
	int64_t max_queued;
	int64_t max_queued_bytes;
	int64_t retention_ms;
	int64_t retain_max_sessions;
	int64_t retain_max_bytes;
	int64_t max_text_len;
	int64_t max_metadata_len;
	int64_t inbox_capacity;
	int64_t cluster_timeout_ms;
	int64_t cluster_retry_max_ms;
	int64_t cluster_outbox_messages;
	int64_t cluster_outbox_bytes;
	int64_t cluster_history;
	int64_t cluster_probe_ms;
	int64_t cluster_replicas;
	char cluster_redis[WSM_REDIS_LIST_LIMIT + 1]; /* "": single node */
	char cluster_user[WSM_CREDENTIAL_LIMIT + 1];
	char cluster_password[WSM_CREDENTIAL_LIMIT + 1]; /* wiped when freed */
	char cluster_sentinel_user[WSM_CREDENTIAL_LIMIT + 1];
	char cluster_sentinel_password[WSM_CREDENTIAL_LIMIT + 1]; /* wiped */
	char cluster_tls_ca_file[WSM_FILE_LIMIT + 1];
	char cluster_tls_ca_path[WSM_FILE_LIMIT + 1];
	char cluster_tls_cert_file[WSM_FILE_LIMIT + 1];
	char cluster_tls_key_file[WSM_FILE_LIMIT + 1];
	char cluster_node_id[WSM_NODE_ID_LIMIT + 1];  /* "": generated */
	char cluster_prefix[WSM_KEY_PREFIX_LIMIT + 1];
	char path_prefix[WSM_PREFIX_LIMIT + 1];
	char protocol_name[WSM_PROTOCOL_NAME_LIMIT + 1];
	char origin_allow[WSM_ORIGIN_LIMIT + 1];
	wsm_authorize_cb authorize;
	void *authorize_user;
	wsm_event_cb on_event;
	void *event_user;
	wsm_refused_cb on_refused;
	void *refused_user;
};

struct wsm_config {
	struct wsm_settings s;
};

void wsm__settings_defaults(struct wsm_settings *s);
/* Secrets are not left behind in freed memory. */
void wsm__settings_wipe(struct wsm_settings *s);
/* The settings as the status document's "config" object; NULL: no memory. */
struct json_t *wsm__settings_json(const struct wsm_settings *s);

/* ---- validation (validate.c) ------------------------------------------- */
int wsm__check_session_id(const char *id, size_t len, int64_t max_len);
/* Streaming UTF-8 check: state 0 = between characters; returns false on error. */
bool wsm__utf8_feed(uint32_t *state, const unsigned char *p, size_t len);
int wsm__check_text(const char *s, int64_t max_len);
/* Unsigned decimal of at most max, digits only: 0, or -1 if malformed. */
int wsm__parse_decimal(const char *s, uint64_t max, uint64_t *out);

/* ---- deadlines (deadline.c) ------------------------------------------- */
/*
 * A deadline queue holds entries whose deadlines are now + a fixed offset at
 * the time they were armed, so appending keeps it sorted: arm, cancel and
 * expire are O(1) and expiry only ever looks at the head.
 */
struct wsm_deadline {
	struct wsm_link link;
	int64_t at_us;
};

struct wsm_deadline_queue {
	struct wsm_link head;
	int64_t offset_us;
};

void wsm__dq_init(struct wsm_deadline_queue *q, int64_t offset_us);
void wsm__dq_arm(struct wsm_deadline_queue *q, struct wsm_deadline *d,
		 int64_t now_us);
void wsm__dq_cancel(struct wsm_deadline *d);
/* Appends at an explicit time; callers append in nondecreasing order. */
void wsm__dq_arm_at(struct wsm_deadline_queue *q, struct wsm_deadline *d,
		    int64_t at_us);
/* Head entry due at or before now_us, or NULL. */
struct wsm_deadline *wsm__dq_due(struct wsm_deadline_queue *q, int64_t now_us);
/* Earliest deadline, or INT64_MAX when empty. */
int64_t wsm__dq_next(const struct wsm_deadline_queue *q);

/* ---- messages (message.c) --------------------------------------------- */
enum wsm_msg_kind {
	WSM_MSG_PROGRESS,
	WSM_MSG_ERROR,
	WSM_MSG_COMPLETE,
	WSM_MSG_CLOSE_SESSION, /* a command, not a frame */
	WSM_MSG_OPEN_SESSION,  /* a command: wsm_session_open() */
	WSM_MSG_RESET          /* tells a reconnecting client to start over */
};

/* Room before the JSON body for '{"seq":N,"epoch":E,' at their widest. */
#define WSM_SEQ_ROOM 48
/* The protocol entry's tx_packet_size: one send() per message up to it. */
#define WSM_TX_PACKET_SIZE 65536

/*
 * One broadcast: created (and its JSON body rendered) on the calling thread,
 * handed over through the inbox, then shared by every connection queue of the
 * session on the service thread, which alone touches refs.
 */
struct wsm_msg {
	struct wsm_msg *next; /* inbox link */
	size_t alloc_size;
	size_t body_len;        /* JSON after its opening '{' */
	unsigned char *payload; /* frame payload inside buf, after stamping */
	size_t payload_len;
	uint64_t seq; /* once stamped */
	uint32_t refs;
	uint8_t kind;
	uint8_t session_id_len;
	char session_id[WSM_SESSION_ID_LIMIT + 1];
	unsigned char buf[]; /* LWS_PRE + WSM_SEQ_ROOM + body */
};

/* ---- outbound queue (outbound_queue.c) --------------------------------- */
/* A late joiner's replay: a reset, a progress and a terminal at most. */
#define WSM_REPLAY_MAX 3

/* Service thread only. Slots are allocated on the first message. */
/*
 * Sized for the bounds (at most 4096 + WSM_REPLAY_MAX slots, 64 MiB plus a
 * replay): one per connection, so every byte counts 15,000 times.
 */
struct wsm_queue {
	struct wsm_msg **slots; /* NULL entries are coalesced-away progress */
	uint16_t head, len;
	uint16_t cap;         /* slots allocated: grows up to the bound */
	uint16_t progress_at; /* 1 + position of the queued progress, or 0 */
	uint32_t bytes;       /* payload bytes of the queued messages */
	uint32_t replay_bytes; /* the replay's, outside the bound */
	uint8_t replay_span;  /* leading positions (holes too) of the replay */
	uint8_t replay_left;  /* replay messages still queued */
};

enum wsm_push {
	WSM_PUSH_QUEUED,
	WSM_PUSH_COALESCED, /* queued, replacing an unsent progress */
	WSM_PUSH_FULL,      /* over the message or byte bound: not queued */
	WSM_PUSH_NOMEM
};

enum wsm_push_how {
	WSM_QUEUE_LIVE,    /* inside the bounds, a waiting progress replaced */
	WSM_QUEUE_REPLAY,  /* part of a new connection's replay: outside them */
	WSM_QUEUE_IN_ORDER /* history a client asked for: inside the bounds,
			    * never replaced and replacing nothing */
};

enum wsm_push wsm__queue_push(wsm_manager_t *m, struct wsm_queue *q,
			      struct wsm_msg *msg, enum wsm_push_how how);
/* Next message to send (the caller owns the reference), or NULL. */
struct wsm_msg *wsm__queue_pop(wsm_manager_t *m, struct wsm_queue *q);
bool wsm__queue_empty(const struct wsm_queue *q);
/* Drops every queued message and the slots. */
void wsm__queue_free(wsm_manager_t *m, struct wsm_queue *q);

/* ---- network edge (edge.c) ---------------------------------------------- */
/* Connections from one peer address; service thread only. */
struct wsm_peer {
	struct wsm_peer *next;
	uint32_t count;
	uint8_t len;
	char ip[WSM_IP_LIMIT + 1];
};

/* Origin, per-peer cap and upgrade rate: 0 or why the upgrade is refused. */
wsm_refusal_t wsm__edge_admit(wsm_manager_t *m, struct lws *wsi);
/* Counts a connection against its peer (NULL when not capped). */
struct wsm_peer *wsm__peer_ref(wsm_manager_t *m, struct lws *wsi);
void wsm__peer_unref(wsm_manager_t *m, struct wsm_peer *peer);

/* ---- connections, sessions ------------------------------------------- */
struct wsm_session;

/* What a reconnecting client saw last: ?lastSeq=N&epoch=E. */
struct wsm_resume {
	uint64_t seq;
	uint32_t epoch; /* 0 matches no session: a reset */
	uint8_t present;
};

/* A connection whose replay waits for the session's state (cluster mode). */
struct wsm_join {
	uint64_t conn_id;
	struct wsm_resume resume;
};

/*
 * One managed WebSocket connection. Owned by the manager from registration
 * to teardown; service thread only. Found from its wsi through lws's opaque
 * user data.
 */
struct wsm_conn {
	struct wsm_link in_session; /* session's open list, oldest first;
				     * once closing, the manager's closing list */
	struct wsm_link in_pings;   /* the manager's ping order, while open */
	struct wsm_deadline lifetime;
	struct lws *wsi;
	struct wsm_session *session; /* held until teardown */
	struct wsm_peer *peer;       /* held until teardown, if capped */
	uint64_t id;
	int64_t last_rx_us;
	int64_t last_ping_us; /* the open time until the first ping */
	struct wsm_queue out;
	uint32_t rx_bytes;   /* of the client message being received */
	uint32_t rx_utf8;    /* UTF-8 state across fragments */
	uint16_t close_code; /* sent when the close is handed to lws */
	uint8_t cause;       /* wsm_close_cause_t once closing */
	/* Flags in bits: every byte of this record counts 15,000 times. */
	unsigned closing : 1;     /* close requested; no longer in the session */
	unsigned is_stale : 1;    /* counted in the stale gauge */
	unsigned ping_due : 1;
	unsigned peer_closed : 1; /* client sent a close frame */
	unsigned close_sent : 1;  /* written: waiting for the client's answer */
	unsigned app_ping_due : 1;
	unsigned app_ping_open : 1; /* a JSON ping, sent at last_ping_us,
				     * unanswered */
};

/*
 * Connections grouped under one id. Lives in the session table while any
 * connection (open or closing) refers to it. Service thread only, except
 * that 'open' is also read by other threads under the table lock.
 */
struct wsm_session {
	struct wsm_session *hnext;
	uint32_t hash;         /* the low bits of wsm__hash() */
	uint32_t epoch;        /* new each time the session is created */
	struct wsm_link conns; /* open connections, oldest first */
	uint32_t open;         /* length of conns */
	uint32_t refs;         /* open + closing connections */
	uint64_t seq;
	struct wsm_msg *last_progress; /* replay state, references held */
	struct wsm_msg *terminal;      /* last error or complete */
	struct wsm_deadline retain;    /* armed while refs == 0 */
	uint8_t id_len;
	char id[];
};

struct wsm_table {
	struct wsm_session **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	uint64_t seed;
};

/* ---- counters ---------------------------------------------------------- */
/*
 * Read from any thread with relaxed loads. Fields marked (svc) are written
 * only by the service thread, the rest by any thread with atomic adds.
 */
struct wsm_counters {
	_Atomic uint64_t open;    /* (svc) */
	_Atomic uint64_t closing; /* (svc) */
	_Atomic uint64_t stale;   /* (svc) */
	_Atomic uint64_t sessions; /* (svc) */
	_Atomic uint64_t held_bytes;
	_Atomic uint64_t opened; /* (svc) */
	_Atomic uint64_t refused_bad_request;
	_Atomic uint64_t refused_denied;
	_Atomic uint64_t refused_session_limit;
	_Atomic uint64_t refused_global_limit;
	_Atomic uint64_t refused_shutdown;
	_Atomic uint64_t closed[WSM_CAUSE_SLOTS]; /* (svc) */
	_Atomic uint64_t broadcasts;
	_Atomic uint64_t unrouted;        /* (svc) */
	_Atomic uint64_t messages_queued; /* (svc) */
	_Atomic uint64_t messages_sent;   /* (svc) */
	_Atomic uint64_t bytes_sent;      /* (svc) */
	_Atomic uint64_t pings_sent;      /* (svc) */
	_Atomic uint64_t coalesced;       /* (svc) */
	_Atomic uint64_t queued_bytes;    /* (svc) */
	_Atomic uint64_t retained_sessions; /* (svc) */
	_Atomic uint64_t retained_bytes;  /* (svc) */
	_Atomic uint64_t retained_evicted; /* (svc) */
	_Atomic uint64_t resets;          /* (svc) */
	_Atomic uint64_t app_pings_sent;  /* (svc) */
	_Atomic uint64_t rtt_samples;     /* (svc) */
	_Atomic uint64_t rtt_sum_us;      /* (svc) */
	_Atomic uint64_t rtt_max_us;      /* (svc) */
	_Atomic uint64_t refused_origin;
	_Atomic uint64_t refused_per_ip;
	_Atomic uint64_t refused_rate;
	_Atomic uint64_t refused[WSM_REFUSAL_SLOTS]; /* by reason */
	_Atomic uint64_t setup_problems;              /* WSM_SETUP_* bits */
	_Atomic uint64_t queue_peak_bytes;    /* (svc) live bytes, one queue */
	_Atomic uint64_t queue_peak_messages; /* (svc) live positions, one queue */
	_Atomic uint64_t cluster_link_up;      /* (svc) */
	_Atomic uint64_t cluster_reconnects;   /* (svc) */
	_Atomic uint64_t cluster_publishes;    /* (svc) */
	_Atomic uint64_t cluster_publish_failures; /* (svc) */
	_Atomic uint64_t cluster_rtt_sum_us;   /* (svc) */
	_Atomic uint64_t cluster_rtt_max_us;   /* (svc) */
	_Atomic uint64_t cluster_gap_repairs;  /* (svc) */
	_Atomic uint64_t cluster_epoch_resets; /* (svc) */
	_Atomic uint64_t cluster_subscribed;   /* (svc) */
	_Atomic uint64_t cluster_bad_messages; /* (svc) dropped from a channel */
	_Atomic uint64_t cluster_link_losses;  /* (svc) */
	_Atomic uint64_t cluster_dropped;      /* (svc) */
	_Atomic uint64_t cluster_wedged;       /* (svc) */
	_Atomic uint64_t cluster_unreplicated; /* (svc) */
	_Atomic uint64_t cluster_connect_failures; /* (svc) */
};

/* Single-writer increment: a plain load and store, no locked instruction. */
static inline void wsm__bump(_Atomic uint64_t *c, int64_t delta)
{
	atomic_store_explicit(
		c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)delta,
		memory_order_relaxed);
}

static inline void wsm__add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* Per-vhost record lws frees with the vhost; lets callbacks find the manager. */
struct wsm_binding {
	wsm_manager_t *m; /* NULL once the manager is destroyed */
	struct wsm_binding *next;
};

/* A protocol array made by wsm_setup_info(); the manager frees it. */
struct wsm_protocol_list {
	struct wsm_protocol_list *next;
	size_t count; /* entries, the terminator included */
	struct lws_protocols entries[];
};

/* ---- the manager ------------------------------------------------------- */
struct wsm_manager {
	struct wsm_manager *registry_next; /* registry lock */
	unsigned users;                    /* in-flight calls; registry lock */

	struct wsm_settings cfg; /* immutable after creation */
	struct lws_protocols protocol;
	struct wsm_protocol_list *protocol_lists; /* inbox lock */
	atomic_bool setup_applied; /* wsm_setup_info() was called */

	/* Cross-thread inbox and the context it wakes. */
	pthread_mutex_t inbox_lock;
	struct wsm_msg *inbox_head;
	struct wsm_msg **inbox_tail;
	size_t inbox_progress; /* progress messages in the inbox */
	size_t inbox_other;    /* error, complete, close-session */
	bool wake_pending;     /* lws_cancel_service() sent, inbox not yet empty */
	struct lws_context *context; /* inbox lock for other threads */
	pthread_t service_thread;
	atomic_bool shutting_down;

	/* Guards table structure and session 'open' against other threads. */
	pthread_mutex_t table_lock;
	struct wsm_table table;

	/* Service thread only below. */
	/*
	 * Every open connection, in the order of its last ping (its opening
	 * before the first): the head is due first, at last_ping_us + the
	 * interval, so the list is both the ping schedule and the set of
	 * open connections, with no deadline stored per connection.
	 */
	struct wsm_link pings;
	struct wsm_link closing; /* connections whose close has begun */
	int bound_vhosts;
	struct wsm_binding *bindings;
	int64_t ping_interval_us;
	/* Lifetime deadlines, spread over slots: each slot is still FIFO. */
	struct wsm_deadline_queue q_lifetime[WSM_LIFETIME_SLOTS];
	struct wsm_deadline_queue q_drain; /* staggered shutdown closes */
	atomic_bool draining;
	bool drained_reported;
	/*
	 * (svc) Cluster mode: the closes wait for the outbox to be confirmed,
	 * until drain_until_us at the latest (drain.c).
	 */
	bool drain_closes_waiting;
	bool drain_window_over;
	int64_t drain_until_us;
	bool drain_waiting; /* inside wsm_drain_wait() */
	unsigned in_event; /* (svc) inside the host's event callback */
	struct wsm_deadline_queue q_retain; /* idle sessions, oldest first */
	uint64_t rng;                       /* xorshift state for epochs */
	lws_sorted_usec_list_t sul;
	int64_t sul_at_us; /* 0 when not scheduled */
	int64_t next_sweep_us;
	int64_t ping_slack_us;
	uint64_t next_conn_id;
	struct wsm_peer **peers; /* PEER_BUCKETS chains while any is counted */
	size_t npeers;
	double tokens; /* upgrade rate bucket */
	int64_t tokens_at_us;

	struct wsm_cluster *cluster; /* NULL: single node */
	struct lws_vhost *vhost; /* the first bound: Redis connections use it */
	struct wsm_link redis_conns; /* lib/cluster's, while any exists */

	struct wsm_counters c;
};

/* ---- error details (errors.c) ------------------------------------------ */
/* Sets the calling thread's detail ("" clears it). */
void wsm__detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Sets the detail and returns code, for return statements. */
int wsm__fail(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The option's enum name ("WSM_OPT_PING_INTERVAL_MS"), for details. */
const char *wsm__option_name(wsm_option_t opt);

/* ---- memory (memory.c): every byte the library holds is counted ------- */
void *wsm__alloc(wsm_manager_t *m, size_t n);
void wsm__free(wsm_manager_t *m, void *p, size_t n);

/* ---- registry (registry.c): detects use of destroyed managers --------- */
void wsm__registry_add(wsm_manager_t *m);
/* Removes m and waits for calls in flight; false if m was not live. */
bool wsm__registry_remove(wsm_manager_t *m);
int wsm__acquire(wsm_manager_t *m);
/* A process-lifetime copy of a protocol name; NULL on out of memory. */
const char *wsm__intern_name(const char *name);
void wsm__release(wsm_manager_t *m);

/* ---- clock ------------------------------------------------------------- */
int64_t wsm__now_us(void);       /* monotonic */
int64_t wsm__wall_ms(void);      /* Unix epoch */
/* WSM_ENOTBOUND, WSM_ETHREAD, or 0 on the bound service thread. */
int wsm__service_check(wsm_manager_t *m);

/* ---- session table (session_table.c) ----------------------------------- */
/* Seeded FNV-1a: keys come from the network, the seed is per manager. */
uint64_t wsm__hash(uint64_t seed, const char *key, size_t len);
int wsm__table_init(wsm_manager_t *m);
void wsm__table_free(wsm_manager_t *m);
struct wsm_session *wsm__table_find(wsm_manager_t *m, const char *id,
				    size_t len);
/* Finds or creates; caller holds the table lock. NULL on out of memory. */
struct wsm_session *wsm__table_get(wsm_manager_t *m, const char *id,
				   size_t len);
/* Unlinks and frees; caller holds the table lock. */
void wsm__table_remove(wsm_manager_t *m, struct wsm_session *s);

/* ---- messages (message.c) ---------------------------------------------- */
/* json_text.c: jansson's bytes for strings and reals, without jansson. */
size_t wsm__json_str_len(const char *s, size_t n);
char *wsm__json_str(char *out, const char *s, size_t n);
int wsm__json_real(char *out, size_t size, double v);

int wsm__msg_new_progress(wsm_manager_t *m, const char *id, double progress,
			  const char *message, const char *stage,
			  struct wsm_msg **out);
int wsm__msg_new_error(wsm_manager_t *m, const char *id, const char *error,
		       struct wsm_msg **out);
int wsm__msg_new_complete(wsm_manager_t *m, const char *id,
			  const char *metadata_json, struct wsm_msg **out);
int wsm__msg_new_close(wsm_manager_t *m, const char *id, struct wsm_msg **out);
int wsm__msg_new_open(wsm_manager_t *m, const char *id, struct wsm_msg **out);
int wsm__msg_new_reset(wsm_manager_t *m, const char *id, size_t id_len,
		       struct wsm_msg **out);
/* A message around a body rendered elsewhere (another node), unchecked. */
int wsm__msg_new_raw(wsm_manager_t *m, enum wsm_msg_kind kind, const char *id,
		     size_t id_len, const char *body, size_t body_len,
		     struct wsm_msg **out);
/* Writes the session's seq and epoch in front of the body. */
void wsm__msg_stamp(struct wsm_msg *msg, uint64_t seq, uint32_t epoch);
void wsm__msg_unref(wsm_manager_t *m, struct wsm_msg *msg);

/* ---- inbox (inbox.c) --------------------------------------------------- */
int wsm__inbox_push(wsm_manager_t *m, struct wsm_msg *msg);
void wsm__inbox_drain(wsm_manager_t *m);
void wsm__inbox_discard(wsm_manager_t *m);

/* ---- connections (connection.c) ---------------------------------------- */
/* resume: from the upgrade URL, or NULL (wsm_register()). */
int64_t wsm__conn_open(wsm_manager_t *m, struct lws *wsi, const char *id,
		       size_t len, const struct wsm_resume *resume);
void wsm__conn_close(wsm_manager_t *m, struct wsm_conn *c,
		     wsm_close_cause_t cause, int code);
void wsm__conn_teardown(wsm_manager_t *m, struct wsm_conn *c,
			wsm_close_cause_t cause);
void wsm__conn_activity(wsm_manager_t *m, struct wsm_conn *c);
/* No connection left, open or closing. */
static inline bool wsm__no_conns(const wsm_manager_t *m)
{
	return wsm_list_empty(&m->pings) && wsm_list_empty(&m->closing);
}
/* Some connection, open or closing; NULL when none is left. */
struct wsm_conn *wsm__any_conn(wsm_manager_t *m);
void wsm__conn_enqueue(wsm_manager_t *m, struct wsm_conn *c,
		       struct wsm_msg *msg);
/* Queues part of the replay of a new connection (retention.c). */
void wsm__conn_enqueue_replay(wsm_manager_t *m, struct wsm_conn *c,
			      struct wsm_msg *msg);
/* Queues a message of the history the client asked for (retention.c). */
void wsm__conn_enqueue_history(wsm_manager_t *m, struct wsm_conn *c,
			       struct wsm_msg *msg);
int wsm__conn_writeable(wsm_manager_t *m, struct wsm_conn *c);
int wsm__conn_receive(wsm_manager_t *m, struct wsm_conn *c, const void *in,
		      size_t len);
/* The client's close frame: 0 lets lws echo it, -1 closes (answered). */
int wsm__conn_peer_close(wsm_manager_t *m, struct wsm_conn *c, const void *in,
			 size_t len);
void wsm__session_deliver(wsm_manager_t *m, struct wsm_msg *msg);
/* msg, stamped with its seq (by Redis), to s: kept and queued. */
void wsm__session_deliver_stamped(wsm_manager_t *m, struct wsm_session *s,
				  struct wsm_msg *msg);
int wsm__session_close_now(wsm_manager_t *m, const char *id, size_t len);
/* wsm_session_open() on the service thread. */
int wsm__session_open_now(wsm_manager_t *m, const char *id, size_t len);

/* ---- retention and replay (retention.c) -------------------------------- */
/*
 * A session just lost its last connection (or was created without one).
 * Returns false if it was freed (no retention, or over the bounds).
 */
bool wsm__session_idle(wsm_manager_t *m, struct wsm_session *s);
/* A connection joins s: it is no longer idle. */
void wsm__session_busy(wsm_manager_t *m, struct wsm_session *s);
/* msg was delivered to s: keep it for replay. False if s was evicted. */
bool wsm__session_keep(wsm_manager_t *m, struct wsm_session *s,
		       struct wsm_msg *msg);
/* A session's state as Redis holds it (cluster mode). */
struct wsm_state {
	uint32_t epoch;
	uint64_t seq;
	struct wsm_msg *progress, *terminal; /* stamped; NULL if none */
	/*
	 * Every message of the epoch up to seq, from history[0]->seq on,
	 * when the cluster keeps a history (nhistory 0 otherwise).
	 */
	struct wsm_msg *const *history;
	size_t nhistory;
};

/*
 * s takes the state Redis holds. The connections in joins get their
 * replay from it; the others, shown s's former state, what they missed of
 * it (a reset first if the epoch changed). Those the history covers get
 * each message they missed, the others the state. Returns how many of
 * those already there got anything.
 */
int wsm__session_adopt(wsm_manager_t *m, struct wsm_session *s,
		       const struct wsm_state *st, const struct wsm_join *joins,
		       size_t njoins);
/* Queues the replay state to a new connection, before any live message. */
void wsm__replay(wsm_manager_t *m, struct wsm_conn *c,
		 const struct wsm_resume *resume);
/* Frees idle sessions past their retention; returns how many. */
int wsm__retention_expire(wsm_manager_t *m, int64_t now_us);
/* Drops replay state and frees s; caller holds the table lock. */
void wsm__session_free(wsm_manager_t *m, struct wsm_session *s);
uint32_t wsm__new_epoch(wsm_manager_t *m);

/* ---- admission (admission.c) ------------------------------------------- */
/* Filter callback: 0 admits, else the refusal was answered (returns 1). */
int wsm__filter(wsm_manager_t *m, struct lws *wsi);
/* The session id from the upgrade's path: 0 or why it is refused. */
wsm_refusal_t wsm__session_from_uri(wsm_manager_t *m, struct lws *wsi,
				    char *id, size_t *len);
/* ?lastSeq=N&epoch=E: 0 (absent or valid) or WSM_REFUSAL_BAD_RESUME. */
wsm_refusal_t wsm__resume_from_uri(struct lws *wsi, struct wsm_resume *r);
/* Registers a connection that passed the filter; -1 makes lws drop it. */
int wsm__established(wsm_manager_t *m, struct lws *wsi);

/* ---- refusals (refusal.c) ---------------------------------------------- */
/* The documented HTTP status of a reason. */
int wsm__refusal_status(wsm_refusal_t why);
/* Counts a refusal and tells the host; wsi may be NULL. */
void wsm__refusal_note(wsm_manager_t *m, struct lws *wsi, wsm_refusal_t why,
		       int status, const char *session_id);
/*
 * Notes (m may be NULL) and answers a refused upgrade with status (0: the
 * reason's own) and a JSON body; returns 1, for the callback to return.
 */
int wsm__refuse(wsm_manager_t *m, struct lws *wsi, wsm_refusal_t why,
		int status, const char *session_id);

/* ---- host setup (setup.c) ----------------------------------------------- */
void wsm__setup_check(wsm_manager_t *m, struct lws *wsi, const void *pvo);
void wsm__protocol_lists_free(wsm_manager_t *m);

/* ---- application-level ping (app_ping.c) -------------------------------- */
int wsm__app_ping_send(wsm_manager_t *m, struct wsm_conn *c);
void wsm__app_pong_check(wsm_manager_t *m, struct wsm_conn *c, const void *in,
			 size_t len);

/* ---- drain (drain.c) ---------------------------------------------------- */
/* Reports WSM_EVENT_DRAINED once the last connection of a drain is gone. */
void wsm__drain_check(wsm_manager_t *m);
void wsm__drain_expire(wsm_manager_t *m, int64_t now_us);
/* When the drain's window ends, or INT64_MAX. */
int64_t wsm__drain_next(const wsm_manager_t *m);
/* Cluster mode: Redis confirmed a publish (the outbox may be empty now). */
void wsm__drain_confirmed(wsm_manager_t *m);

/* ---- cluster mode (lib/cluster/) ------------------------------------------ */
#ifdef WSM_WITH_CLUSTER
/* lws's reasons for the Redis connections: handled says they were one. */
int wsm__redis_callback(wsm_manager_t *m, struct lws *wsi, int reason,
			void *user, void *in, size_t len, bool *handled);
/* The service loop was woken: connections whose host name resolved go on. */
void wsm__redis_woken(wsm_manager_t *m);
/* The context goes: every Redis connection forgets its socket and timers. */
void wsm__redis_unbind(wsm_manager_t *m);
/* Destroy: the connections still held go, their pending replies failed. */
void wsm__redis_free_all(wsm_manager_t *m);
/* 0 when WSM_OPT_CLUSTER_REDIS's syntax is right (redis_addr.c). */
int wsm__redis_check_list(const char *list);
/* The manager's cluster, from its settings; WSM_OK, or why not. */
int wsm__cluster_new(wsm_manager_t *m);
/* Bound to a context: connect (and keep connecting). */
void wsm__cluster_start(wsm_manager_t *m);
void wsm__cluster_unbind(wsm_manager_t *m);
void wsm__cluster_free(wsm_manager_t *m);
/* Any thread: room in the outbox for msg, or WSM_EOUTBOX. */
int wsm__cluster_reserve(wsm_manager_t *m, const struct wsm_msg *msg);
void wsm__cluster_unreserve(wsm_manager_t *m, const struct wsm_msg *msg);
/* Any thread: what the outbox holds now, messages or bytes. */
uint64_t wsm__cluster_outbox(wsm_manager_t *m, bool bytes);
/* Any thread: this node's id. */
const char *wsm__cluster_node_id(const wsm_manager_t *m);
/*
 * Any thread: "up", "down", "misordered" (instance lists disagree), or why
 * an instance cannot be reached: "auth_failed", "tls_failed", "unresolved".
 */
const char *wsm__cluster_link_name(const wsm_manager_t *m);
/* A broadcast or a session close, to every node through Redis. */
void wsm__cluster_publish(wsm_manager_t *m, struct wsm_msg *msg);
/*
 * c joined s: true when its replay waits for the state Redis holds
 * (wsm__session_adopt() gives it), false when the local state is current.
 */
bool wsm__cluster_join(wsm_manager_t *m, struct wsm_session *s,
		       struct wsm_conn *c, const struct wsm_resume *resume);
/* The session has no local connection any more. */
void wsm__cluster_leave(wsm_manager_t *m, const char *id, size_t len);
/* Destroy: msg, accepted and never run, is dropped (told at free). */
void wsm__cluster_drop_unsent(wsm_manager_t *m, const struct wsm_msg *msg);
#endif

/* ---- timers (timer.c) --------------------------------------------------- */
void wsm__timer_rearm(wsm_manager_t *m);
/* Hands queued closes to lws; never from a callback of the wsi closed. */
int wsm__expire(wsm_manager_t *m, int64_t now_us);
/* When the first ping is due, or INT64_MAX with no open connection. */
int64_t wsm__next_ping(wsm_manager_t *m);

/* ---- binding to lws (callback.c) ---------------------------------------- */
int wsm__bind(wsm_manager_t *m, struct lws *wsi);
void wsm__unbind(wsm_manager_t *m);
int wsm__dispatch(wsm_manager_t *m, struct lws *wsi, int reason, void *user,
		  void *in, size_t len, bool *handled);
int wsm__protocol_callback(struct lws *wsi, enum lws_callback_reasons reason,
			   void *user, void *in, size_t len);

void wsm__emit(wsm_manager_t *m, wsm_event_t ev, struct wsm_conn *c,
	       wsm_close_cause_t cause);

#endif /* WSM_INTERNAL_H */
