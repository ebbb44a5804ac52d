/*
 * libwsm - WebSocket connection lifecycle management for libwebsockets hosts.
 *
 * The whole public API. Everything here is part of the stable ABI: handles are
 * opaque, options are set through enum-keyed setters, and the only struct that
 * crosses the boundary (wsm_metrics_t) starts with its own size and only grows
 * at its end. Overview: wsm(7). Each function has its own page in section 3.
 */
#ifndef WSM_H
#define WSM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BUILDING_WSM) && defined(__GNUC__)
#define WSM_EXTERN __attribute__((visibility("default")))
#else
#define WSM_EXTERN
#endif

#define WSM_VERSION_MAJOR 1
#define WSM_VERSION_MINOR 2
#define WSM_VERSION_PATCH 0
/* 0xMMmmpp: compare with >= to test for a feature's presence. */
#define WSM_VERSION_HEX \
	((WSM_VERSION_MAJOR << 16) | (WSM_VERSION_MINOR << 8) | WSM_VERSION_PATCH)
#define WSM_VERSION_STRING "1.2.0"

/* libwebsockets types the API refers to, without pulling in its header. */
struct lws;
struct lws_protocols;
struct lws_context_creation_info;

/* The manager: one per lws context. Opaque; see wsm_manager_new(3). */
typedef struct wsm_manager wsm_manager_t;
/* Options for a manager, consumed by wsm_manager_new(). See wsm_config_new(3). */
typedef struct wsm_config wsm_config_t;

/*
 * Error codes: 0 is success, failures are negative and live in the -100 band.
 * Codes are never renumbered or reused; new ones are added at the end.
 */
enum wsm_error {
	WSM_OK = 0,
	WSM_EINVAL = -101,       /* invalid argument (NULL, unknown enum value) */
	WSM_ENOMEM = -102,       /* out of memory */
	WSM_ERANGE = -103,       /* numeric value out of its documented range */
	WSM_EOPTION = -104,      /* unknown option, or option of another type */
	WSM_ESESSIONID = -105,   /* session id breaks the rules in wsm(7) */
	WSM_EUTF8 = -106,        /* string is not valid UTF-8 */
	WSM_ETOOLONG = -107,     /* string or metadata longer than its limit */
	WSM_EJSON = -108,        /* metadata is not a JSON object */
	WSM_ESESSIONFULL = -109, /* per-session connection limit reached */
	WSM_EFULL = -110,        /* global connection limit reached */
	WSM_EDENIED = -111,      /* the host's authorize callback refused */
	WSM_ENOTFOUND = -112,    /* no such session */
	WSM_EEXIST = -113,       /* connection already managed */
	WSM_ESHUTDOWN = -114,    /* manager destroyed, or being destroyed */
	WSM_EAGAIN = -115,       /* cross-thread inbox full; try again later */
	WSM_ETHREAD = -116,      /* call belongs on the lws service thread */
	WSM_ENOTBOUND = -117,    /* manager not yet attached to an lws context */
	WSM_ETIMEDOUT = -118,    /* since 1.1: the wait ended before the event */
	WSM_ENOCLUSTER = -119,   /* since 1.2: built without cluster mode */
	WSM_EOUTBOX = -120       /* since 1.2: the cluster's outbox is full */
};

/* Static, never NULL, for every input. wsm_strerror(3). */
WSM_EXTERN const char *wsm_strerror(int code);
/*
 * Since 1.1: what the calling thread's last failed configuration setter or
 * wsm_manager_new() found wrong, naming the option and the rule; "" after
 * a success. Static per thread, never NULL. wsm_error_detail(3).
 */
WSM_EXTERN const char *wsm_error_detail(void);
/* WSM_VERSION_HEX of the library actually loaded. wsm_version(3). */
WSM_EXTERN unsigned int wsm_version(void);

/*
 * Options. Values are spaced in bands by kind and never reused.
 * Times are in milliseconds. Defaults and ranges: wsm_option_bounds(3), wsm(7).
 */
typedef enum wsm_option {
	/* limits */
	WSM_OPT_MAX_CONNECTIONS_PER_SESSION = 100, /* default 5 */
	WSM_OPT_MAX_CONNECTIONS = 101,             /* default 10000 */
	WSM_OPT_SESSION_LIMIT_POLICY = 102,        /* wsm_limit_policy_t */
	WSM_OPT_MAX_CONNECTIONS_PER_IP = 103,      /* 0 (default): no cap */
	WSM_OPT_MAX_UPGRADE_RATE = 104,            /* per second; 0: no limit */
	WSM_OPT_ANNOUNCED_ONLY = 105, /* since 1.1; 1: only wsm_session_open()
					 ids (or broadcast ones) admitted */
	/* time */
	WSM_OPT_MAX_LIFETIME_MS = 200,   /* default 300000 (5 min) */
	WSM_OPT_PING_INTERVAL_MS = 201,  /* default 30000 */
	WSM_OPT_STALE_TIMEOUT_MS = 202,  /* default 120000 */
	WSM_OPT_SWEEP_INTERVAL_MS = 203, /* default 60000 */
	WSM_OPT_CLOSE_GRACE_MS = 204,    /* default 5000 */
	WSM_OPT_LIFETIME_JITTER_PERCENT = 205, /* closes spread over the last
						  10% of the lifetime */
	WSM_OPT_APP_PING = 206, /* 1: JSON ping the client must echo; default 0 */
	/* strings */
	WSM_OPT_PATH_PREFIX = 300,   /* default "/api/images_mvp/progress/" */
	WSM_OPT_PROTOCOL_NAME = 301, /* default "wsm" */
	WSM_OPT_ORIGIN_ALLOW = 302,  /* "a,b": exact Origins admitted; "" any */
	/* session ids */
	WSM_OPT_SESSION_ID_MAX_LEN = 400, /* default 64 */
	/* frames, queues, payloads */
	WSM_OPT_MAX_MESSAGE_SIZE = 500,    /* largest client message, default 1024 */
	WSM_OPT_RX_BUFFER_SIZE = 501,      /* lws receive buffer, default 128 */
	WSM_OPT_MAX_QUEUED_MESSAGES = 502, /* per connection, default 32 */
	WSM_OPT_MAX_TEXT_LEN = 503,        /* message/stage/error, default 1024 */
	WSM_OPT_MAX_METADATA_LEN = 504,    /* complete metadata, default 16384 */
	WSM_OPT_INBOX_CAPACITY = 505,      /* pending cross-thread calls, 65536 */
	WSM_OPT_MAX_QUEUED_BYTES = 506,    /* per connection, default 262144 */
	/* late join and replay */
	WSM_OPT_RETENTION_MS = 600,         /* keep state after the last leaves */
	WSM_OPT_RETAIN_MAX_SESSIONS = 601,  /* idle sessions kept, 10000 */
	WSM_OPT_RETAIN_MAX_BYTES = 602,     /* bytes of replay state, 16 MiB */
	/* Since 1.2: cluster mode through Redis, wsm(7) CLUSTER MODE. */
	WSM_OPT_CLUSTER_REDIS = 700,      /* "redis[s]://host[:port][/db]",
					   * "unix:/path[?db=N]" or
					   * "redis[s]-sentinel://host[:port],
					   * .../primary[/db]", ','-separated
					   * instances; "" (default): off */
	WSM_OPT_CLUSTER_NODE_ID = 701,    /* default: host name and pid */
	WSM_OPT_CLUSTER_KEY_PREFIX = 702, /* keys and channels, default "wsm:" */
	WSM_OPT_CLUSTER_TIMEOUT_MS = 703, /* a Redis command, default 2000 */
	WSM_OPT_CLUSTER_RETRY_MAX_MS = 704,      /* reconnect backoff bound, 5000 */
	WSM_OPT_CLUSTER_OUTBOX_MESSAGES = 705,   /* unconfirmed broadcasts, 65536 */
	WSM_OPT_CLUSTER_OUTBOX_BYTES = 706,      /* all waiting bytes, 16 MiB */
	WSM_OPT_CLUSTER_HISTORY = 707,           /* since 1.2: messages kept per
						  * session for exact repair and
						  * resume; 0 (default): state */
	/*
	 * Since 1.2: Redis as it runs in production, wsm(7) PRODUCTION
	 * REDIS. A subscriber that stays connected and delivers nothing is
	 * found within WSM_OPT_CLUSTER_PROBE_MS (default 5000).
	 */
	WSM_OPT_CLUSTER_PROBE_MS = 708,
	WSM_OPT_CLUSTER_USER = 709,      /* ACL user AUTH names; "": default */
	WSM_OPT_CLUSTER_PASSWORD = 710,  /* "" (default): no AUTH; never shown */
	WSM_OPT_CLUSTER_TLS_CA_FILE = 711, /* PEM; "" and no CA path: system's */
	WSM_OPT_CLUSTER_TLS_CA_PATH = 712, /* a hashed directory (c_rehash) */
	WSM_OPT_CLUSTER_TLS_CERT_FILE = 713, /* client certificate, PEM */
	WSM_OPT_CLUSTER_TLS_KEY_FILE = 714,  /* its key, PEM */
	WSM_OPT_CLUSTER_SENTINEL_USER = 715, /* for redis-sentinel:// */
	WSM_OPT_CLUSTER_SENTINEL_PASSWORD = 716, /* "": no AUTH; never shown */
	/*
	 * A broadcast counts as confirmed once this many replicas hold it
	 * (WAIT), so a failover cannot lose it; default 0: once the primary
	 * has it.
	 */
	WSM_OPT_CLUSTER_REPLICAS = 717
} wsm_option_t;

/* Values of WSM_OPT_SESSION_LIMIT_POLICY. */
typedef enum wsm_limit_policy {
	WSM_LIMIT_REJECT = 0,      /* refuse the newcomer (default) */
	WSM_LIMIT_EVICT_OLDEST = 1 /* close the session's oldest connection */
} wsm_limit_policy_t;

/* Why a connection ended. Reported by the event callback and the metrics. */
typedef enum wsm_close_cause {
	WSM_CAUSE_NONE = 0,           /* not closed (open events) */
	WSM_CAUSE_PEER = 1,           /* the client sent a close frame */
	WSM_CAUSE_ERROR = 2,          /* the connection failed or dropped */
	WSM_CAUSE_STALE = 3,          /* no frame from the client in time */
	WSM_CAUSE_LIFETIME = 4,       /* maximum lifetime reached */
	WSM_CAUSE_EVICTED = 5,        /* pushed out by a newer one (policy) */
	WSM_CAUSE_SESSION_CLOSED = 6, /* wsm_session_close() */
	WSM_CAUSE_SHUTDOWN = 7,       /* wsm_manager_destroy() or wsm_drain() */
	WSM_CAUSE_SLOW_CONSUMER = 8,  /* outbound queue full */
	WSM_CAUSE_PROTOCOL = 9,       /* binary, oversized or invalid frame */
	/*
	 * Since 1.2: a session no node announced (WSM_OPT_ANNOUNCED_ONLY in
	 * cluster mode, found once Redis answered): 4005 "unknown_session".
	 */
	WSM_CAUSE_REFUSED = 10
} wsm_close_cause_t;
/* Room in wsm_metrics_t.closed[]; causes are always below it. */
#define WSM_CAUSE_SLOTS 16

/* Stable lowercase name of a cause ("stale"), "unknown" otherwise. */
WSM_EXTERN const char *wsm_cause_name(wsm_close_cause_t cause);

/* WebSocket close codes libwsm sends, one per cause. */
#define WSM_CLOSE_GOING_AWAY 1001      /* shutdown */
#define WSM_CLOSE_UNSUPPORTED 1003     /* binary frame */
#define WSM_CLOSE_INVALID_PAYLOAD 1007 /* text frame not UTF-8 */
#define WSM_CLOSE_TOO_BIG 1009         /* message over WSM_OPT_MAX_MESSAGE_SIZE */
#define WSM_CLOSE_STALE 4000
#define WSM_CLOSE_LIFETIME 4001
#define WSM_CLOSE_EVICTED 4002
#define WSM_CLOSE_SESSION_CLOSED 4003
#define WSM_CLOSE_SLOW_CONSUMER 4004
/* Since 1.1: wsm_register() refused; the reason is wsm_refusal_name(). */
#define WSM_CLOSE_REFUSED 4005

/*
 * Host hook deciding whether an upgrade may join a session. Runs on the service
 * thread before the upgrade completes; it may read headers and cookies from
 * wsi. Return 0 to admit, or an HTTP status in 400..599 to refuse with it
 * (anything else refuses with 403).
 */
typedef int (*wsm_authorize_cb)(void *user, struct lws *wsi,
				const char *session_id);

typedef enum wsm_event {
	WSM_EVENT_OPEN = 1, /* connection admitted and registered */
	WSM_EVENT_CLOSE = 2, /* connection gone; cause says why */
	WSM_EVENT_DRAINED = 3, /* wsm_drain() finished: no connection left */
	/* Since 1.2, cluster mode: conn_id 0, session_id "". */
	WSM_EVENT_CLUSTER_DOWN = 4, /* a Redis instance became unreachable */
	WSM_EVENT_CLUSTER_UP = 5,   /* every Redis instance reachable (again) */
	/*
	 * wsm_manager_destroy() dropped broadcasts to session_id (cause
	 * WSM_CAUSE_SHUTDOWN) that Redis had not confirmed.
	 */
	WSM_EVENT_CLUSTER_DROPPED = 6
} wsm_event_t;

/*
 * Lifecycle notification, on the service thread. It may broadcast and read
 * metrics; it must not destroy the manager.
 */
typedef void (*wsm_event_cb)(void *user, wsm_event_t event, uint64_t conn_id,
			     const char *session_id, wsm_close_cause_t cause);

/* Why an upgrade was refused. Values are never renumbered or reused. */
typedef enum wsm_refusal {
	WSM_REFUSAL_NONE = 0,
	WSM_REFUSAL_BAD_PATH = 1,      /* 404: path outside the prefix */
	WSM_REFUSAL_BAD_ID = 2,        /* 400: session id breaks the rules */
	WSM_REFUSAL_BAD_RESUME = 3,    /* 400: malformed lastSeq/epoch, long query */
	WSM_REFUSAL_BAD_HANDSHAKE = 4, /* 400: bad Sec-WebSocket-Key, empty Origin */
	WSM_REFUSAL_BAD_VERSION = 5,   /* 426: Sec-WebSocket-Version is not 13 */
	WSM_REFUSAL_SUBPROTOCOL = 6,   /* 400: bound for a protocol not libwsm's */
	WSM_REFUSAL_ORIGIN = 7,        /* 403: Origin not in the allow-list */
	WSM_REFUSAL_PER_IP = 8,        /* 429: peer address at its cap */
	WSM_REFUSAL_RATE = 9,          /* 503: over the upgrade rate */
	WSM_REFUSAL_DENIED = 10,       /* the authorize hook's status */
	WSM_REFUSAL_SESSION_FULL = 11, /* 429: per-session limit */
	WSM_REFUSAL_GLOBAL_LIMIT = 12, /* 503: global limit */
	WSM_REFUSAL_SHUTDOWN = 13,     /* 503: draining or destroyed */
	WSM_REFUSAL_UNKNOWN_SESSION = 14 /* 404: not announced (ANNOUNCED_ONLY) */
} wsm_refusal_t;
/* Room in wsm_metrics_t.refused[]; reasons are always below it. */
#define WSM_REFUSAL_SLOTS 16

/* Stable lowercase name of a reason ("session_full"), "unknown" otherwise. */
WSM_EXTERN const char *wsm_refusal_name(wsm_refusal_t why);

/*
 * A refused upgrade, on the service thread, before the refusal is answered:
 * status is the HTTP status sent, session_id "" when none was parsed, peer
 * the client's address ("" when lws cannot tell).
 */
typedef void (*wsm_refused_cb)(void *user, wsm_refusal_t why, int status,
			       const char *session_id, const char *peer);

/* Configuration. wsm_config_new(3). Any thread, one thread per config. */
WSM_EXTERN wsm_config_t *wsm_config_new(void);
WSM_EXTERN void wsm_config_free(wsm_config_t *cfg);
WSM_EXTERN int wsm_config_set_int(wsm_config_t *cfg, wsm_option_t opt,
				  int64_t value);
WSM_EXTERN int wsm_config_set_str(wsm_config_t *cfg, wsm_option_t opt,
				  const char *value);
WSM_EXTERN int wsm_config_set_authorize_cb(wsm_config_t *cfg,
					   wsm_authorize_cb cb, void *user);
WSM_EXTERN int wsm_config_set_event_cb(wsm_config_t *cfg, wsm_event_cb cb,
				       void *user);
/* Since 1.1. wsm_config_set_refused_cb(3). */
WSM_EXTERN int wsm_config_set_refused_cb(wsm_config_t *cfg, wsm_refused_cb cb,
					 void *user);
/* Valid range and default of an integer option. wsm_option_bounds(3). */
WSM_EXTERN int wsm_option_bounds(wsm_option_t opt, int64_t *min, int64_t *max,
				 int64_t *def);

/* Manager lifetime. wsm_manager_new(3). */
WSM_EXTERN wsm_manager_t *wsm_manager_new(const wsm_config_t *cfg, int *err);
WSM_EXTERN void wsm_manager_destroy(wsm_manager_t *m);

/* Plugging into lws. wsm_protocol(3), wsm_callback(3), wsm_register(3). */
WSM_EXTERN const struct lws_protocols *wsm_protocol(wsm_manager_t *m);
WSM_EXTERN int wsm_callback(wsm_manager_t *m, struct lws *wsi, int reason,
			    void *user, void *in, size_t len);
WSM_EXTERN int64_t wsm_register(wsm_manager_t *m, struct lws *wsi,
				const char *session_id);
/*
 * Since 1.1: libwsm's admission for a host that finds the session itself,
 * from its LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: 0 admits, 1 refused
 * (answered; return it to lws), or a negative error. wsm_admit(3).
 */
WSM_EXTERN int wsm_admit(wsm_manager_t *m, struct lws *wsi,
			 const char *session_id);
/*
 * Since 1.1: puts libwsm's protocol into the host's lws creation info as the
 * vhost's default, guards the host's other protocols against upgrades, and
 * turns off lws's own validity timer. wsm_setup_info(3).
 */
WSM_EXTERN int wsm_setup_info(wsm_manager_t *m,
			      struct lws_context_creation_info *info);

/* Broadcasts, from any thread. wsm_broadcast_progress(3). */
WSM_EXTERN int wsm_broadcast_progress(wsm_manager_t *m, const char *session_id,
				      double progress, const char *message,
				      const char *stage);
WSM_EXTERN int wsm_broadcast_error(wsm_manager_t *m, const char *session_id,
				   const char *error);
WSM_EXTERN int wsm_broadcast_complete(wsm_manager_t *m, const char *session_id,
				      const char *metadata_json);

/*
 * Since 1.1: announces a session, from any thread, so that upgrades to it
 * are admitted under WSM_OPT_ANNOUNCED_ONLY; it is held like a retained
 * session until its first connection. wsm_session_open(3).
 */
WSM_EXTERN int wsm_session_open(wsm_manager_t *m, const char *session_id);
/* Manual cleanup, from any thread. wsm_session_close(3). */
WSM_EXTERN int wsm_session_close(wsm_manager_t *m, const char *session_id);
/* On-demand sweep, service thread. wsm_sweep(3). */
WSM_EXTERN int wsm_sweep(wsm_manager_t *m);
/*
 * Graceful shutdown, service thread: refuse new upgrades (503), flush, then
 * close every connection with 1001 spread over window_ms. wsm_drain(3).
 */
WSM_EXTERN int wsm_drain(wsm_manager_t *m, int64_t window_ms);
/*
 * Since 1.1: services the manager's lws context (poll loop) until the
 * manager holds no connection or timeout_ms passes: the bounded wait
 * between wsm_drain() and wsm_manager_destroy(). Service thread, outside
 * callbacks. wsm_drain_wait(3).
 */
WSM_EXTERN int wsm_drain_wait(wsm_manager_t *m, int64_t timeout_ms);

/*
 * Metrics snapshot. Set size to sizeof(wsm_metrics_t) before the call; the
 * library fills only what both sides know. Fields are appended, never moved.
 * Each figure is exact when read; the set is not one atomic cut.
 */
typedef struct wsm_metrics {
	size_t size;
	uint64_t connections; /* held now: open plus closing */
	uint64_t active;      /* open and heard from within a ping interval */
	uint64_t stale;       /* open, a ping went unanswered */
	uint64_t closing;     /* close sent, waiting for lws to finish */
	uint64_t sessions;    /* sessions held: with connections or retained */
	uint64_t held_bytes;  /* heap bytes the library holds right now */
	uint64_t opened;      /* connections admitted since creation */
	uint64_t refused_bad_request;   /* bad path or session id (400, 404) */
	uint64_t refused_denied;        /* authorize callback refused */
	uint64_t refused_session_limit; /* per-session limit (429) */
	uint64_t refused_global_limit;  /* global limit (503) */
	uint64_t refused_shutdown;      /* manager shutting down (503) */
	uint64_t closed[WSM_CAUSE_SLOTS]; /* torn down, by wsm_close_cause_t */
	uint64_t broadcasts;      /* broadcasts accepted */
	uint64_t unrouted;        /* broadcasts to sessions with no connection */
	uint64_t messages_queued; /* message copies queued to connections */
	uint64_t messages_sent;   /* data frames written */
	uint64_t bytes_sent;      /* payload bytes written */
	uint64_t pings_sent;
	uint64_t coalesced;    /* queued progress replaced by a newer one */
	uint64_t queued_bytes; /* payload bytes waiting in connection queues */
	uint64_t retained_sessions; /* kept for replay with no connection */
	uint64_t retained_bytes;    /* held by replay state, all sessions */
	uint64_t retained_evicted;  /* idle sessions dropped to stay in bounds */
	uint64_t resets;            /* reconnects told to reset (epoch changed) */
	uint64_t app_pings_sent;    /* JSON pings (WSM_OPT_APP_PING) */
	uint64_t rtt_samples;       /* JSON pongs matched to their ping */
	uint64_t rtt_sum_us;        /* their round trips, summed */
	uint64_t rtt_max_us;        /* the longest round trip seen */
	uint64_t refused_origin;    /* Origin not in the allow-list (403) */
	uint64_t refused_per_ip;    /* peer address at its cap (429) */
	uint64_t refused_rate;      /* over the upgrade rate (503) */
	/* Since 1.1. */
	uint64_t refused[WSM_REFUSAL_SLOTS]; /* by wsm_refusal_t */
	uint64_t setup_problems; /* WSM_SETUP_* bits seen as vhosts started */
	uint64_t queue_peak_bytes;    /* most bytes one queue has held */
	uint64_t queue_peak_messages; /* most messages one queue has held */
	/* Since 1.2: cluster mode (all 0 on a single node). */
	uint64_t cluster_link_up;    /* 1 while every Redis instance is reachable */
	uint64_t cluster_reconnects; /* Redis connections made again after a loss */
	uint64_t cluster_publishes;  /* broadcasts and closes Redis confirmed */
	uint64_t cluster_publish_failures; /* publishes to send again (lost, refused) */
	uint64_t cluster_publish_rtt_sum_us; /* their round trips, summed */
	uint64_t cluster_publish_rtt_max_us; /* the longest round trip seen */
	uint64_t cluster_outbox_messages; /* errors, completes, closes waiting */
	uint64_t cluster_outbox_bytes;    /* theirs and waiting progress's */
	uint64_t cluster_gap_repairs;     /* sessions brought up to date in place */
	uint64_t cluster_epoch_resets;    /* live connections reset: epoch changed */
	uint64_t cluster_subscribed;      /* sessions subscribed now */
	uint64_t cluster_bad_messages;    /* dropped from a channel as malformed */
	uint64_t cluster_link_losses; /* times the link went down, each counted */
	uint64_t cluster_dropped; /* accepted broadcasts never confirmed: gone
				   * with wsm_manager_destroy() */
	uint64_t cluster_wedged; /* silent subscribers found by the probe */
	uint64_t cluster_connect_failures; /* attempts refused: name, TLS,
					    * AUTH, socket */
	uint64_t cluster_unreplicated; /* publishes sent again: fewer than
					* WSM_OPT_CLUSTER_REPLICAS had them */
} wsm_metrics_t;

/* Bits of wsm_metrics_t.setup_problems. */
#define WSM_SETUP_NOT_DEFAULT 1 /* libwsm's protocol is not the default */
#define WSM_SETUP_UNGUARDED 2   /* other protocols not guarded */

/* Any thread. wsm_metrics(3). */
WSM_EXTERN int wsm_metrics(wsm_manager_t *m, wsm_metrics_t *out);
/*
 * JSON status document into buf, snprintf-style: returns the length it needs
 * (without the NUL) or a negative error. Any thread. wsm_status_json(3).
 */
WSM_EXTERN int wsm_status_json(wsm_manager_t *m, char *buf, size_t size);
/*
 * Since 1.1: the metrics in the Prometheus text format (0.0.4), with the
 * same buffer rules as wsm_status_json(). Any thread.
 * wsm_metrics_prometheus(3).
 */
WSM_EXTERN int wsm_metrics_prometheus(wsm_manager_t *m, char *buf,
				      size_t size);

#ifdef __cplusplus
}
#endif

#endif /* WSM_H */
