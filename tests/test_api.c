/*
 * The API without sockets: error strings, version, cause names, options and
 * their ranges, manager creation, the status document and the metrics
 * struct, argument checking of every call, the inbox limit, and handles used
 * after (and while) the manager is destroyed. Managers here are never
 * attached to an lws context, so broadcasts are validated and queued only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <float.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "support/harness.h"
#include "support/session_client.h"

/* ---- helpers ----------------------------------------------------------- */

static wsm_metrics_t metrics(wsm_manager_t *m)
{
	wsm_metrics_t s;

	memset(&s, 0, sizeof(s));
	s.size = sizeof(s);
	assert_int_equal(wsm_metrics(m, &s), 0);
	return s;
}

static uint64_t held(wsm_manager_t *m)
{
	return metrics(m).held_bytes;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The status document, fetched with the documented two-call protocol. */
static json_t *status_doc(wsm_manager_t *m)
{
	json_error_t jerr;
	json_t *doc;
	char *buf;
	int n = wsm_status_json(m, NULL, 0);

	assert_true(n > 0);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(wsm_status_json(m, buf, (size_t)n + 1), n);
	assert_int_equal(strlen(buf), n);
	doc = json_loads(buf, 0, &jerr);
	if (!doc)
		fail_msg("status is not JSON (%s): %s", jerr.text, buf);
	free(buf);
	return doc;
}

static json_t *config_of(json_t *doc)
{
	json_t *c = json_object_get(doc, "config");

	assert_true(json_is_object(c));
	return c;
}

static json_int_t int_at(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		fail_msg("\"%s\" missing or not an integer", key);
	return json_integer_value(v);
}

static const char *str_at(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		fail_msg("\"%s\" missing or not a string", key);
	return json_string_value(v);
}

static char *repeat(char ch, size_t n)
{
	char *s = repeat_char(ch, n);

	assert_non_null(s);
	return s;
}

/* A JSON object text of exactly n bytes (n >= 2): '{', blanks, '}'. */
static char *object_of_len(size_t n)
{
	char *s = repeat(' ', n);

	s[0] = '{';
	s[n - 1] = '}';
	return s;
}

static wsm_manager_t *new_manager(wsm_config_t *cfg)
{
	int err = 12345;
	wsm_manager_t *m = wsm_manager_new(cfg, &err);

	if (!m)
		fail_msg("wsm_manager_new: %s", wsm_strerror(err));
	return m;
}

/*
 * A call that must be refused with code and leave no trace: nothing held,
 * nothing counted as a broadcast.
 */
#define assert_refused(m, code, call)                                       \
	do {                                                                \
		wsm_metrics_t before_ = metrics(m), after_;                 \
		assert_int_equal((call), (code));                           \
		after_ = metrics(m);                                        \
		assert_int_equal(after_.held_bytes, before_.held_bytes);    \
		assert_int_equal(after_.broadcasts, before_.broadcasts);    \
	} while (0)

/* A call that must be accepted: one more broadcast, more bytes held. */
#define assert_accepted(m, call)                                            \
	do {                                                                \
		wsm_metrics_t before_ = metrics(m), after_;                 \
		assert_int_equal((call), 0);                                \
		after_ = metrics(m);                                        \
		assert_true(after_.held_bytes > before_.held_bytes);        \
		assert_int_equal(after_.broadcasts, before_.broadcasts + 1);\
	} while (0)

/* ---- error strings, version, cause names ------------------------------- */

static void test_strerror(void **state)
{
	static const int codes[] = {
		WSM_OK,         WSM_EINVAL,      WSM_ENOMEM,    WSM_ERANGE,
		WSM_EOPTION,    WSM_ESESSIONID,  WSM_EUTF8,     WSM_ETOOLONG,
		WSM_EJSON,      WSM_ESESSIONFULL, WSM_EFULL,    WSM_EDENIED,
		WSM_ENOTFOUND,  WSM_EEXIST,      WSM_ESHUTDOWN, WSM_EAGAIN,
		WSM_ETHREAD,    WSM_ENOTBOUND,   WSM_ETIMEDOUT, WSM_ENOCLUSTER,
		WSM_EOUTBOX,
	};
	static const int unknown[] = { 1, -1, -100, -121, -999, 100, 899,
				       INT_MIN, INT_MAX };
	const size_t n = sizeof(codes) / sizeof(codes[0]);
	size_t i, k;

	(void)state;
	/* The documented numbering: -101 upwards, consecutive, none reused. */
	for (i = 1; i < n; i++)
		assert_int_equal(codes[i], -100 - (int)i);
	for (i = 0; i < n; i++) {
		const char *s = wsm_strerror(codes[i]);

		assert_non_null(s);
		assert_true(strlen(s) > 0);
		assert_string_not_equal(s, "unknown error");
		for (k = 0; k < i; k++)
			assert_string_not_equal(s, wsm_strerror(codes[k]));
	}
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_non_null(wsm_strerror(unknown[i]));
		assert_string_equal(wsm_strerror(unknown[i]), "unknown error");
	}
}

/* Every refused setting says which option and which rule, per thread. */
static void test_error_details(void **state)
{
	wsm_config_t *cfg = wsm_config_new();

	(void)state;
	assert_non_null(cfg);
	assert_string_equal(wsm_error_detail(), "");
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_PING_INTERVAL_MS, 5),
			 WSM_ERANGE);
	assert_string_equal(wsm_error_detail(),
			    "WSM_OPT_PING_INTERVAL_MS: 5 is outside 10..86400000");
	/* A success clears it. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_PING_INTERVAL_MS, 50), 0);
	assert_string_equal(wsm_error_detail(), "");
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, "/x"),
			 WSM_ERANGE);
	assert_non_null(strstr(wsm_error_detail(),
			       "WSM_OPT_PATH_PREFIX: must start and end with '/'"));
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, "/%/"),
			 WSM_ERANGE);
	assert_non_null(strstr(wsm_error_detail(), "no '%'"));
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PROTOCOL_NAME, "a b"),
			 WSM_ERANGE);
	assert_non_null(strstr(wsm_error_detail(), "WSM_OPT_PROTOCOL_NAME"));
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PING_INTERVAL_MS, "1"),
			 WSM_EOPTION);
	assert_non_null(strstr(wsm_error_detail(),
			       "WSM_OPT_PING_INTERVAL_MS (201) is not a string"));
	assert_int_equal(wsm_config_set_int(cfg, (wsm_option_t)999, 1),
			 WSM_EOPTION);
	assert_string_equal(wsm_error_detail(),
			    "option 999 is not an integer option");
	assert_int_equal(wsm_config_set_int(NULL, WSM_OPT_PING_INTERVAL_MS, 1),
			 WSM_EINVAL);
	assert_non_null(strstr(wsm_error_detail(), "NULL"));
	/* The per-session limit above the global one, in wsm_manager_new(). */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS, 2), 0);
	assert_null(wsm_manager_new(cfg, NULL));
	assert_string_equal(wsm_error_detail(),
			    "WSM_OPT_MAX_CONNECTIONS_PER_SESSION (5) must not be "
			    "above WSM_OPT_MAX_CONNECTIONS (2)");
	wsm_config_free(cfg);
}

/* The Prometheus text: snprintf-style buffer rules, every reason labelled. */
static void test_metrics_prometheus(void **state)
{
	wsm_manager_t *m = new_manager(NULL);
	char small[16], *text;
	int n;

	(void)state;
	assert_int_equal(wsm_broadcast_error(m, "p", "e"), 0);
	n = wsm_metrics_prometheus(m, NULL, 0);
	assert_true(n > 1000);
	text = malloc((size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(wsm_metrics_prometheus(m, text, (size_t)n + 1), n);
	assert_int_equal(strlen(text), n);
	assert_int_equal(text[n - 1], '\n');
	assert_non_null(strstr(text, "# TYPE wsm_connections_refused_total counter\n"));
	assert_non_null(strstr(text,
		"\nwsm_connections_refused_total{reason=\"unknown_session\"} 0\n"));
	assert_non_null(strstr(text, "\nwsm_connections_closed_total{cause=\"stale\"} 0\n"));
	assert_non_null(strstr(text, "\nwsm_broadcasts_total 1\n"));
	assert_null(strstr(text, "reason=\"none\""));
	assert_null(strstr(text, "=\"unknown\""));
	/* One byte short: nothing half-written, the length still told. */
	assert_int_equal(wsm_metrics_prometheus(m, text, (size_t)n), n);
	assert_string_equal(text, "");
	assert_int_equal(wsm_metrics_prometheus(m, small, sizeof(small)), n);
	assert_string_equal(small, "");
	assert_int_equal(wsm_metrics_prometheus(m, NULL, 5), WSM_EINVAL);
	assert_int_equal(wsm_metrics_prometheus(NULL, text, (size_t)n), WSM_EINVAL);
	free(text);
	wsm_manager_destroy(m);
	assert_int_equal(wsm_metrics_prometheus(m, small, sizeof(small)),
			 WSM_ESHUTDOWN);
}

static void test_version(void **state)
{
	(void)state;
	assert_int_equal(wsm_version(), WSM_VERSION_HEX);
	assert_int_equal(WSM_VERSION_HEX, 0x010200);
	assert_string_equal(WSM_VERSION_STRING, "1.2.0");
	assert_string_equal(wsm_strerror(WSM_ETIMEDOUT), "timed out");
}

static void test_cause_names(void **state)
{
	static const struct {
		wsm_close_cause_t cause;
		const char *name;
	} causes[] = {
		{ WSM_CAUSE_NONE, "none" },
		{ WSM_CAUSE_PEER, "peer" },
		{ WSM_CAUSE_ERROR, "error" },
		{ WSM_CAUSE_STALE, "stale" },
		{ WSM_CAUSE_LIFETIME, "lifetime" },
		{ WSM_CAUSE_EVICTED, "evicted" },
		{ WSM_CAUSE_SESSION_CLOSED, "session_closed" },
		{ WSM_CAUSE_SHUTDOWN, "shutdown" },
		{ WSM_CAUSE_SLOW_CONSUMER, "slow_consumer" },
		{ WSM_CAUSE_PROTOCOL, "protocol" },
		{ WSM_CAUSE_REFUSED, "refused" },
	};
	static const int unknown[] = { 11, 15, WSM_CAUSE_SLOTS, 255, -1, INT_MAX };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(causes) / sizeof(causes[0]); i++) {
		assert_true(causes[i].cause < WSM_CAUSE_SLOTS);
		assert_non_null(wsm_cause_name(causes[i].cause));
		assert_string_equal(wsm_cause_name(causes[i].cause),
				    causes[i].name);
	}
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		assert_string_equal(wsm_cause_name((wsm_close_cause_t)unknown[i]),
				    "unknown");
}

/* ---- options ----------------------------------------------------------- */

/* The integer options as documented in wsm(7) and wsm_config_set_int(3). */
static const struct int_opt {
	wsm_option_t opt;
	int64_t min, max, def;
	const char *key; /* in the status document's "config" */
} int_opts[] = {
	{ WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 1, 65535, 5,
	  "maxConnectionsPerSession" },
	{ WSM_OPT_MAX_CONNECTIONS, 1, 1000000, 10000, "maxConnections" },
	{ WSM_OPT_SESSION_LIMIT_POLICY, 0, 1, 0, "sessionLimitPolicy" },
	{ WSM_OPT_MAX_LIFETIME_MS, 10, 2592000000LL, 300000, "maxLifetimeMs" },
	{ WSM_OPT_PING_INTERVAL_MS, 10, 86400000, 30000, "pingIntervalMs" },
	{ WSM_OPT_STALE_TIMEOUT_MS, 11, 172800000, 120000, "staleTimeoutMs" },
	{ WSM_OPT_SWEEP_INTERVAL_MS, 10, 86400000, 60000, "sweepIntervalMs" },
	{ WSM_OPT_CLOSE_GRACE_MS, 1000, 60000, 5000, "closeGraceMs" },
	{ WSM_OPT_LIFETIME_JITTER_PERCENT, 0, 50, 10, "lifetimeJitterPercent" },
	{ WSM_OPT_APP_PING, 0, 1, 0, "appPing" },
	{ WSM_OPT_MAX_CONNECTIONS_PER_IP, 0, 1000000, 0, "maxConnectionsPerIp" },
	{ WSM_OPT_MAX_UPGRADE_RATE, 0, 1000000, 0, "maxUpgradeRate" },
	{ WSM_OPT_ANNOUNCED_ONLY, 0, 1, 0, "announcedOnly" },
	{ WSM_OPT_SESSION_ID_MAX_LEN, 1, 128, 64, "sessionIdMaxLen" },
	{ WSM_OPT_MAX_MESSAGE_SIZE, 16, 1048576, 1024, "maxMessageSize" },
	{ WSM_OPT_RX_BUFFER_SIZE, 128, 65536, 128, "rxBufferSize" },
	{ WSM_OPT_MAX_QUEUED_MESSAGES, 1, 4096, 32, "maxQueuedMessages" },
	{ WSM_OPT_MAX_TEXT_LEN, 1, 65536, 1024, "maxTextLen" },
	{ WSM_OPT_MAX_METADATA_LEN, 2, 1048576, 16384, "maxMetadataLen" },
	{ WSM_OPT_INBOX_CAPACITY, 1, 16777216, 65536, "inboxCapacity" },
	{ WSM_OPT_MAX_QUEUED_BYTES, 1024, 67108864, 262144, "maxQueuedBytes" },
	{ WSM_OPT_RETENTION_MS, 0, 86400000, 60000, "retentionMs" },
	{ WSM_OPT_RETAIN_MAX_SESSIONS, 0, 1000000, 10000, "retainMaxSessions" },
	{ WSM_OPT_RETAIN_MAX_BYTES, 0, 1073741824, 16777216, "retainMaxBytes" },
	{ WSM_OPT_CLUSTER_TIMEOUT_MS, 10, 600000, 2000, "clusterTimeoutMs" },
	{ WSM_OPT_CLUSTER_RETRY_MAX_MS, 10, 600000, 5000, "clusterRetryMaxMs" },
	{ WSM_OPT_CLUSTER_OUTBOX_MESSAGES, 1, 16777216, 65536,
	  "clusterOutboxMessages" },
	{ WSM_OPT_CLUSTER_OUTBOX_BYTES, 1024, 1073741824, 16777216,
	  "clusterOutboxBytes" },
	{ WSM_OPT_CLUSTER_HISTORY, 0, 1024, 0, "clusterHistory" },
	{ WSM_OPT_CLUSTER_PROBE_MS, 40, 600000, 5000, "clusterProbeMs" },
	{ WSM_OPT_CLUSTER_REPLICAS, 0, 16, 0, "clusterReplicas" },
};
#define N_INT_OPTS (sizeof(int_opts) / sizeof(int_opts[0]))

/* Whether this libwsm has cluster mode (it was built with hiredis). */
static bool built_with_cluster(void)
{
	wsm_config_t *cfg = wsm_config_new();
	int rc = wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS,
				    "redis://127.0.0.1");

	wsm_config_free(cfg);
	assert_true(rc == WSM_OK || rc == WSM_ENOCLUSTER);
	return rc == WSM_OK;
}

static bool is_cluster_opt(wsm_option_t opt)
{
	return opt >= WSM_OPT_CLUSTER_REDIS && opt < 800; /* 7xx */
}

/*
 * Not options. Options are spaced in bands of 100 from 100 on and new ones
 * are added at the end of a band, so these stay unknown.
 */
static const int bogus_opts[] = { 0, 1, 99, 9999, 12345, -1, -100, INT_MAX,
				  INT_MIN };

static void test_option_bounds(void **state)
{
	int64_t min, max, def;
	size_t i;

	(void)state;
	for (i = 0; i < N_INT_OPTS; i++) {
		const struct int_opt *o = &int_opts[i];

		min = max = def = -77;
		assert_int_equal(wsm_option_bounds(o->opt, &min, &max, &def), 0);
		assert_int_equal(min, o->min);
		assert_int_equal(max, o->max);
		assert_int_equal(def, o->def);
		/* Each out pointer may be NULL: only the others are stored. */
		assert_int_equal(wsm_option_bounds(o->opt, NULL, NULL, NULL), 0);
		max = def = -77;
		assert_int_equal(wsm_option_bounds(o->opt, NULL, &max, NULL), 0);
		assert_int_equal(max, o->max);
		min = def = -77;
		assert_int_equal(wsm_option_bounds(o->opt, &min, NULL, &def), 0);
		assert_int_equal(min, o->min);
		assert_int_equal(def, o->def);
	}
	/* String and unknown options: WSM_EOPTION, nothing stored. */
	min = max = def = -77;
	assert_int_equal(wsm_option_bounds(WSM_OPT_PATH_PREFIX, &min, &max, &def),
			 WSM_EOPTION);
	assert_int_equal(wsm_option_bounds(WSM_OPT_PROTOCOL_NAME, &min, &max,
					   &def), WSM_EOPTION);
	for (i = 0; i < sizeof(bogus_opts) / sizeof(bogus_opts[0]); i++)
		assert_int_equal(wsm_option_bounds((wsm_option_t)bogus_opts[i],
						   &min, &max, &def), WSM_EOPTION);
	assert_int_equal(min, -77);
	assert_int_equal(max, -77);
	assert_int_equal(def, -77);
}

/*
 * Every integer option the library knows, documented above or newer:
 * bounds and setter agree, the default is in range, the bounds are
 * inclusive and nothing beyond them is taken.
 */
static void test_option_bounds_consistent(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	int64_t min, max, def;
	size_t found = 0, i;
	int key;

	(void)state;
	assert_non_null(cfg);
	for (key = 0; key < 1000; key++) {
		if (wsm_option_bounds((wsm_option_t)key, &min, &max, &def)) {
			/* Unknown or string: the setter refuses it as well. */
			assert_int_equal(wsm_config_set_int(cfg, (wsm_option_t)key,
							    0), WSM_EOPTION);
			continue;
		}
		found++;
		assert_true(min <= def && def <= max);
		if (is_cluster_opt((wsm_option_t)key) && !built_with_cluster()) {
			assert_int_equal(wsm_config_set_int(cfg, (wsm_option_t)key,
							    def),
					 WSM_ENOCLUSTER);
			continue;
		}
		assert_int_equal(wsm_config_set_int(cfg, (wsm_option_t)key, min), 0);
		assert_int_equal(wsm_config_set_int(cfg, (wsm_option_t)key, max), 0);
		assert_int_equal(wsm_config_set_int(cfg, (wsm_option_t)key, def), 0);
		assert_int_equal(wsm_config_set_int(cfg, (wsm_option_t)key, min - 1),
				 WSM_ERANGE);
		assert_int_equal(wsm_config_set_int(cfg, (wsm_option_t)key, max + 1),
				 WSM_ERANGE);
		assert_int_equal(wsm_config_set_str(cfg, (wsm_option_t)key, "1"),
				 WSM_EOPTION);
	}
	/* At least every documented one was among them. */
	assert_true(found >= N_INT_OPTS);
	for (i = 0; i < N_INT_OPTS; i++)
		assert_int_equal(wsm_option_bounds(int_opts[i].opt, NULL, NULL,
						   NULL), 0);
	/* Per wsm.h, the per-connection byte bound defaults to 256 KiB. */
	assert_int_equal(wsm_option_bounds(WSM_OPT_MAX_QUEUED_BYTES, NULL, NULL,
					   &def), 0);
	assert_int_equal(def, 262144);
	wsm_config_free(cfg);
}

/* The status document of a fresh manager shows the documented defaults. */
static void check_default_config(wsm_manager_t *m)
{
	json_t *doc = status_doc(m), *cfg = config_of(doc);
	const struct lws_protocols *p;
	size_t i;

	for (i = 0; i < N_INT_OPTS; i++) {
		const struct int_opt *o = &int_opts[i];

		if (o->opt == WSM_OPT_SESSION_LIMIT_POLICY)
			assert_string_equal(str_at(cfg, o->key), "reject");
		else
			assert_int_equal(int_at(cfg, o->key), o->def);
	}
	assert_string_equal(str_at(cfg, "pathPrefix"), "/api/images_mvp/progress/");
	assert_string_equal(str_at(cfg, "protocolName"), "wsm");
	assert_string_equal(str_at(cfg, "originAllow"), "");
	assert_string_equal(str_at(cfg, "clusterRedis"), "");
	assert_string_equal(str_at(cfg, "clusterNodeId"), "");
	assert_string_equal(str_at(cfg, "clusterKeyPrefix"), "wsm:");
	assert_string_equal(str_at(cfg, "clusterUser"), "");
	assert_string_equal(str_at(cfg, "clusterTlsCaFile"), "");
	assert_string_equal(str_at(cfg, "clusterTlsCaPath"), "");
	assert_string_equal(str_at(cfg, "clusterTlsCertFile"), "");
	assert_string_equal(str_at(cfg, "clusterTlsKeyFile"), "");
	assert_string_equal(str_at(cfg, "clusterSentinelUser"), "");
	/* Nothing else (no password): every key is one of the options above. */
	assert_int_equal(json_object_size(cfg), N_INT_OPTS + 12);
	json_decref(doc);
	p = wsm_protocol(m);
	assert_non_null(p);
	assert_string_equal(p->name, "wsm");
	assert_int_equal(p->rx_buffer_size, 128);
	assert_int_equal(p->tx_packet_size, 65536); /* one send() per message */
	/* Defaults that show only in behaviour: 64-byte ids, 1024-byte text. */
	{
		char *id = repeat('i', 64), *text = repeat('t', 1024);

		assert_int_equal(wsm_broadcast_error(m, id, text), 0);
		id[63] = '\0';
		text[1023] = '\0';
		assert_int_equal(wsm_broadcast_error(m, id, text), 0);
		free(id);
		free(text);
		id = repeat('i', 65);
		assert_int_equal(wsm_broadcast_error(m, id, "x"), WSM_ESESSIONID);
		free(id);
		text = repeat('t', 1025);
		assert_int_equal(wsm_broadcast_error(m, "s", text), WSM_ETOOLONG);
		free(text);
	}
}

static void test_config_defaults(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;

	(void)state;
	assert_non_null(cfg);
	m = new_manager(cfg);
	wsm_config_free(cfg);
	check_default_config(m);
	wsm_manager_destroy(m);
	/* A NULL configuration means every default. */
	m = wsm_manager_new(NULL, NULL);
	assert_non_null(m);
	check_default_config(m);
	wsm_manager_destroy(m);
	wsm_config_free(NULL);
}

/* Partner options that must agree for wsm_manager_new() to accept value. */
static void make_consistent(wsm_config_t *cfg, wsm_option_t opt, int64_t value)
{
	switch (opt) {
	case WSM_OPT_PING_INTERVAL_MS:
		assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_STALE_TIMEOUT_MS,
						    172800000), 0);
		break;
	case WSM_OPT_STALE_TIMEOUT_MS:
		assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_PING_INTERVAL_MS,
						    10), 0);
		break;
	case WSM_OPT_MAX_CONNECTIONS_PER_SESSION:
		assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS,
						    1000000), 0);
		break;
	case WSM_OPT_MAX_CONNECTIONS:
		assert_int_equal(wsm_config_set_int(
					 cfg, WSM_OPT_MAX_CONNECTIONS_PER_SESSION,
					 value < 5 ? value : 5), 0);
		break;
	default:
		break;
	}
}

/* Checks, through a manager, that cfg holds value for o where observable. */
static void observe(wsm_config_t *cfg, const struct int_opt *o, int64_t value)
{
	wsm_manager_t *m;
	char *s;
	json_t *doc;
	int64_t i;

	make_consistent(cfg, o->opt, value);
	m = new_manager(cfg);
	doc = status_doc(m);
	if (o->opt == WSM_OPT_SESSION_LIMIT_POLICY)
		assert_string_equal(str_at(config_of(doc), o->key),
				    value ? "evict_oldest" : "reject");
	else
		assert_int_equal(int_at(config_of(doc), o->key), value);
	json_decref(doc);
	switch (o->opt) {
	case WSM_OPT_RX_BUFFER_SIZE:
		assert_int_equal(wsm_protocol(m)->rx_buffer_size, value);
		break;
	case WSM_OPT_SESSION_ID_MAX_LEN:
		s = repeat('k', (size_t)value + 1);
		assert_int_equal(wsm_broadcast_error(m, s, "e"), WSM_ESESSIONID);
		s[value] = '\0';
		assert_int_equal(wsm_broadcast_error(m, s, "e"), 0);
		free(s);
		break;
	case WSM_OPT_MAX_TEXT_LEN:
		s = repeat('t', (size_t)value + 1);
		assert_int_equal(wsm_broadcast_error(m, "s", s), WSM_ETOOLONG);
		assert_int_equal(wsm_broadcast_progress(m, "s", 1, s, NULL),
				 WSM_ETOOLONG);
		assert_int_equal(wsm_broadcast_progress(m, "s", 1, NULL, s),
				 WSM_ETOOLONG);
		s[value] = '\0';
		assert_int_equal(wsm_broadcast_error(m, "s", s), 0);
		assert_int_equal(wsm_broadcast_progress(m, "s", 1, s, s), 0);
		free(s);
		break;
	case WSM_OPT_MAX_METADATA_LEN:
		s = object_of_len((size_t)value + 1);
		assert_int_equal(wsm_broadcast_complete(m, "s", s), WSM_ETOOLONG);
		free(s);
		s = object_of_len((size_t)value);
		assert_int_equal(wsm_broadcast_complete(m, "s", s), 0);
		free(s);
		break;
	case WSM_OPT_INBOX_CAPACITY:
		for (i = 0; i < value && i < 3; i++)
			assert_int_equal(wsm_broadcast_progress(m, "s", 1, NULL,
								NULL), 0);
		if (value <= 3)
			assert_int_equal(wsm_broadcast_progress(m, "s", 1, NULL,
								NULL), WSM_EAGAIN);
		break;
	default:
		break;
	}
	wsm_manager_destroy(m);
}

static void test_config_int_ranges(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_INT_OPTS; i++) {
		const struct int_opt *o = &int_opts[i];
		wsm_config_t *cfg = wsm_config_new();

		assert_non_null(cfg);
		if (is_cluster_opt(o->opt) && !built_with_cluster()) {
			/* Refused, whatever the value: it would do nothing. */
			assert_int_equal(wsm_config_set_int(cfg, o->opt, o->def),
					 WSM_ENOCLUSTER);
			wsm_config_free(cfg);
			continue;
		}
		/* The bounds are inclusive; one step beyond is refused. */
		assert_int_equal(wsm_config_set_int(cfg, o->opt, o->min), 0);
		assert_int_equal(wsm_config_set_int(cfg, o->opt, o->min - 1),
				 WSM_ERANGE);
		assert_int_equal(wsm_config_set_int(cfg, o->opt, o->max + 1),
				 WSM_ERANGE);
		assert_int_equal(wsm_config_set_int(cfg, o->opt, INT64_MIN),
				 WSM_ERANGE);
		assert_int_equal(wsm_config_set_int(cfg, o->opt, INT64_MAX),
				 WSM_ERANGE);
		/* Refused, never clamped: the minimum is still there. */
		observe(cfg, o, o->min);

		assert_int_equal(wsm_config_set_int(cfg, o->opt, o->max), 0);
		assert_int_equal(wsm_config_set_int(cfg, o->opt, o->max + 1),
				 WSM_ERANGE);
		assert_int_equal(wsm_config_set_int(cfg, o->opt, o->min - 1),
				 WSM_ERANGE);
		assert_int_equal(wsm_config_set_int(cfg, o->opt, -1), WSM_ERANGE);
		observe(cfg, o, o->max);
		wsm_config_free(cfg);
	}
}

static void test_config_bad_keys(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	size_t i;

	(void)state;
	assert_non_null(cfg);
	for (i = 0; i < sizeof(bogus_opts) / sizeof(bogus_opts[0]); i++) {
		assert_int_equal(wsm_config_set_int(cfg, (wsm_option_t)bogus_opts[i],
						    5), WSM_EOPTION);
		assert_int_equal(wsm_config_set_str(cfg, (wsm_option_t)bogus_opts[i],
						    "/x/"), WSM_EOPTION);
	}
	/* A string option through the integer setter, and the reverse. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_PATH_PREFIX, 5),
			 WSM_EOPTION);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_PROTOCOL_NAME, 5),
			 WSM_EOPTION);
	for (i = 0; i < N_INT_OPTS; i++)
		assert_int_equal(wsm_config_set_str(cfg, int_opts[i].opt, "5"),
				 WSM_EOPTION);
	/* NULL configuration or value. */
	assert_int_equal(wsm_config_set_int(NULL, WSM_OPT_MAX_CONNECTIONS, 5),
			 WSM_EINVAL);
	assert_int_equal(wsm_config_set_str(NULL, WSM_OPT_PATH_PREFIX, "/x/"),
			 WSM_EINVAL);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, NULL),
			 WSM_EINVAL);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PROTOCOL_NAME, NULL),
			 WSM_EINVAL);
	assert_int_equal(wsm_config_set_authorize_cb(NULL, NULL, NULL), WSM_EINVAL);
	assert_int_equal(wsm_config_set_event_cb(NULL, NULL, NULL), WSM_EINVAL);
	assert_int_equal(wsm_config_set_authorize_cb(cfg, NULL, NULL), 0);
	assert_int_equal(wsm_config_set_event_cb(cfg, NULL, NULL), 0);
	/* None of it changed anything. */
	m = new_manager(cfg);
	wsm_config_free(cfg);
	check_default_config(m);
	wsm_manager_destroy(m);
}

static void test_config_path_prefix(void **state)
{
	static const char *const good[] = {
		"//", "/a/", "/jobs/progress/", "/-._~!$&'()*+,;=:@/",
		"/A-Z_a-z.0-9/", "/a//b/",
	};
	static const char *const bad[] = {
		"", "/", "a/", "/a", "a", "jobs/progress/", "/jobs/progress",
		"/a b/", "/a?/", "/a%20/", "/a#/", "/a\"/", "/a\\/", "/a</",
		"/a>/", "/a\t/", "/a\n/", "/\xc3\xa9/", "/a[/", "/a{/", "/a^/",
		"/a|/", "/a`/",
	};
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	json_t *doc;
	char *s;
	size_t i;

	(void)state;
	assert_non_null(cfg);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX,
						    good[i]), 0);
	/* 200 bytes is the longest accepted, 201 too long. */
	s = repeat('p', 200);
	s[0] = s[199] = '/';
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, s), 0);
	free(s);
	s = repeat('p', 201);
	s[0] = s[200] = '/';
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, s),
			 WSM_ERANGE);
	free(s);
	s = repeat('p', 5000);
	s[0] = s[4999] = '/';
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, s),
			 WSM_ERANGE);
	free(s);

	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, "/keep/me/"),
			 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, bad[i]) !=
		    WSM_ERANGE)
			fail_msg("prefix \"%s\" was not refused", bad[i]);
	/* Refusals left the last good value. */
	m = new_manager(cfg);
	doc = status_doc(m);
	assert_string_equal(str_at(config_of(doc), "pathPrefix"), "/keep/me/");
	json_decref(doc);
	wsm_manager_destroy(m);
	wsm_config_free(cfg);
}

static void test_cluster_options(void **state)
{
	static const char *const good[] = {
		"redis://127.0.0.1", "redis://127.0.0.1:7000/3",
		"redis://[::1]:6380", "unix:/run/redis.sock?db=2",
		"redis://localhost", "rediss://redis.internal:6380/1",
		"redis-sentinel://10.0.0.1:26379,s2,[::1]:5/main/2,redis://a",
		"redis://10.0.0.1,redis://10.0.0.2:6380/1,unix:/tmp/r.sock",
	};
	static const char *const bad[] = {
		"redis://local host", "redis://127.0.0.1:0", "127.0.0.1:6379",
		"rediss://", "redis://a..b", "redis-sentinel://10.0.0.1",
		"redis-sentinel:///m", "redis-sentinel://a/", "redis-sentinel://a/m/",
		"redis-sentinel://a/b c", "redis-sentinel://a:0/m",
		"unix:rel", "redis://127.0.0.1/x", "redis://127.0.0.1,",
		"redis://127.0.0.1:99999",
	};
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	size_t i;
	int err = 0;

	(void)state;
	assert_non_null(cfg);
	/* Off is off, with or without cluster mode. */
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS, ""), 0);
	if (!built_with_cluster()) {
		assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS,
						    good[0]),
				 WSM_ENOCLUSTER);
		assert_non_null(strstr(wsm_error_detail(), "hiredis"));
		assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_NODE_ID,
						    "a"),
				 WSM_ENOCLUSTER);
		assert_int_equal(wsm_config_set_int(cfg,
						    WSM_OPT_CLUSTER_TIMEOUT_MS,
						    100),
				 WSM_ENOCLUSTER);
		wsm_config_free(cfg);
		return;
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS,
						    good[i]),
				 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS,
						    bad[i]),
				 WSM_ERANGE);
		assert_non_null(strstr(wsm_error_detail(), "WSM_OPT_CLUSTER_REDIS"));
	}
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_NODE_ID,
					    "node-a.1_x"),
			 0);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_NODE_ID, "a b"),
			 WSM_ERANGE);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_KEY_PREFIX,
					    "app:{x}"),
			 WSM_ERANGE);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_KEY_PREFIX,
					    "app:ws:"),
			 0);
	/* The last good value is kept, and shows in the status document. */
	m = wsm_manager_new(cfg, &err);
	assert_non_null(m);
	{
		json_t *doc = status_doc(m), *c = config_of(doc);

		assert_string_equal(str_at(c, "clusterRedis"), good[7]);
		assert_string_equal(str_at(c, "clusterNodeId"), "node-a.1_x");
		assert_string_equal(str_at(c, "clusterKeyPrefix"), "app:ws:");
		json_decref(doc);
	}
	/* Announced through Redis (the outbox): taken, even unbound. */
	assert_int_equal(wsm_session_open(m, "s1"), WSM_OK);
	assert_int_equal(wsm_session_open(m, "bad id"), WSM_ESESSIONID);
	wsm_manager_destroy(m);

	/* Redis's TTL is the retention: it cannot be 0. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_RETENTION_MS, 0), 0);
	assert_null(wsm_manager_new(cfg, &err));
	assert_int_equal(err, WSM_ERANGE);
	assert_non_null(strstr(wsm_error_detail(), "WSM_OPT_RETENTION_MS"));
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_RETENTION_MS, 1000), 0);
	/* Since #22: announced-only works in cluster mode. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_ANNOUNCED_ONLY, 1), 0);
	m = wsm_manager_new(cfg, &err);
	assert_non_null(m);
	wsm_manager_destroy(m);
	wsm_config_free(cfg);
}

/* Credentials and TLS files: checked, shown (a password never), wiped. */
static void test_cluster_access_options(void **state)
{
	static const wsm_option_t strs[] = {
		WSM_OPT_CLUSTER_USER, WSM_OPT_CLUSTER_PASSWORD,
		WSM_OPT_CLUSTER_TLS_CA_FILE, WSM_OPT_CLUSTER_TLS_CA_PATH,
		WSM_OPT_CLUSTER_TLS_CERT_FILE, WSM_OPT_CLUSTER_TLS_KEY_FILE,
		WSM_OPT_CLUSTER_SENTINEL_USER, WSM_OPT_CLUSTER_SENTINEL_PASSWORD,
	};
	static const char *const names[] = {
		"WSM_OPT_CLUSTER_USER", "WSM_OPT_CLUSTER_PASSWORD",
		"WSM_OPT_CLUSTER_TLS_CA_FILE", "WSM_OPT_CLUSTER_TLS_CA_PATH",
		"WSM_OPT_CLUSTER_TLS_CERT_FILE", "WSM_OPT_CLUSTER_TLS_KEY_FILE",
		"WSM_OPT_CLUSTER_SENTINEL_USER",
		"WSM_OPT_CLUSTER_SENTINEL_PASSWORD",
	};
	wsm_config_t *cfg = wsm_config_new();
	char big[2048], status[16384];
	wsm_manager_t *m;
	size_t i;
	int err = 0;

	(void)state;
	assert_non_null(cfg);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (!built_with_cluster()) {
			assert_int_equal(wsm_config_set_str(cfg, strs[i], "x"),
					 WSM_ENOCLUSTER);
			continue;
		}
		assert_int_equal(wsm_config_set_str(cfg, strs[i], big),
				 WSM_ERANGE);
		assert_non_null(strstr(wsm_error_detail(), names[i]));
		assert_int_equal(wsm_config_set_str(cfg, strs[i], "a\nb"),
				 WSM_ERANGE);
		assert_non_null(strstr(wsm_error_detail(), "control"));
		assert_int_equal(wsm_config_set_str(cfg, strs[i], NULL),
				 WSM_EINVAL);
		assert_int_equal(wsm_config_set_int(cfg, strs[i], 1),
				 WSM_EOPTION);
	}
	if (!built_with_cluster()) {
		wsm_config_free(cfg);
		return;
	}
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS,
					    "rediss://redis.internal"),
			 0);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_USER, "wsm"), 0);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_PASSWORD,
					    "s3cret-Pw"),
			 0);
	assert_int_equal(wsm_config_set_str(cfg,
					    WSM_OPT_CLUSTER_SENTINEL_PASSWORD,
					    "s3cret-Sn"),
			 0);
	/* A CA file that does not load is an error now, not a failed link. */
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_TLS_CA_FILE,
					    "/nonexistent/ca.pem"),
			 0);
	assert_null(wsm_manager_new(cfg, &err));
	assert_int_equal(err, WSM_EINVAL);
	assert_non_null(strstr(wsm_error_detail(),
			       "WSM_OPT_CLUSTER_TLS_CA_FILE"));
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_TLS_CA_FILE, ""),
			 0);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_TLS_CERT_FILE,
					    "/nonexistent/cert.pem"),
			 0);
	assert_null(wsm_manager_new(cfg, &err));
	assert_non_null(strstr(wsm_error_detail(),
			       "WSM_OPT_CLUSTER_TLS_CERT_FILE"));
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_CLUSTER_TLS_CERT_FILE,
					    ""),
			 0);
	/* The system's CA store serves when no CA is named. */
	m = wsm_manager_new(cfg, &err);
	assert_non_null(m);
	assert_true(wsm_status_json(m, status, sizeof(status)) > 0);
	assert_non_null(strstr(status, "\"clusterUser\":\"wsm\""));
	assert_null(strstr(status, "s3cret"));
	wsm_manager_destroy(m);
	wsm_config_free(cfg);
}

static void test_config_protocol_name(void **state)
{
	static const char *const good[] = { "a", "wsm", "A-z.0_9", "my-proto.v1_2" };
	static const char *const bad[] = {
		"", "a b", "a/b", "a,b", "a:b", "a;b", "a\"b", "\xc3\xa9", "a\tb",
		"a=b", "(a)",
	};
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	char *s;
	size_t i;

	(void)state;
	assert_non_null(cfg);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PROTOCOL_NAME,
						    good[i]), 0);
	s = repeat('n', 64);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PROTOCOL_NAME, s), 0);
	free(s);
	s = repeat('n', 65);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PROTOCOL_NAME, s),
			 WSM_ERANGE);
	free(s);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PROTOCOL_NAME,
					    "my-proto.v1_2"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (wsm_config_set_str(cfg, WSM_OPT_PROTOCOL_NAME, bad[i]) !=
		    WSM_ERANGE)
			fail_msg("protocol name \"%s\" was not refused", bad[i]);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_RX_BUFFER_SIZE, 4096), 0);
	m = new_manager(cfg);
	wsm_config_free(cfg);
	/* The ready entry carries the configured name and buffer size. */
	assert_non_null(wsm_protocol(m));
	assert_string_equal(wsm_protocol(m)->name, "my-proto.v1_2");
	assert_int_equal(wsm_protocol(m)->rx_buffer_size, 4096);
	assert_non_null(wsm_protocol(m)->callback);
	assert_ptr_equal(wsm_protocol(m)->user, m);
	wsm_manager_destroy(m);
}

/* ---- wsm_manager_new --------------------------------------------------- */

static void test_manager_new_cross_checks(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	int err;

	(void)state;
	assert_non_null(cfg);
	/* Stale timeout below the ping interval. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_PING_INTERVAL_MS, 1000), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_STALE_TIMEOUT_MS, 999), 0);
	err = 0;
	assert_null(wsm_manager_new(cfg, &err));
	assert_int_equal(err, WSM_ERANGE);
	assert_null(wsm_manager_new(cfg, NULL)); /* err may be NULL */
	/* Equal is refused too: a healthy client would be closed before it
	 * could answer its first ping. The detail names both options. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_STALE_TIMEOUT_MS, 1000), 0);
	assert_string_equal(wsm_error_detail(), "");
	assert_null(wsm_manager_new(cfg, &err));
	assert_int_equal(err, WSM_ERANGE);
	assert_non_null(strstr(wsm_error_detail(), "WSM_OPT_STALE_TIMEOUT_MS (1000) "
				"must be above WSM_OPT_PING_INTERVAL_MS (1000)"));
	/* One millisecond above is the boundary. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_STALE_TIMEOUT_MS, 1001), 0);
	m = wsm_manager_new(cfg, NULL);
	assert_non_null(m);
	assert_string_equal(wsm_error_detail(), "");
	wsm_manager_destroy(m);

	/* Announced sessions are held by retention: it cannot be 0. */
	{
		wsm_config_t *a = wsm_config_new();

		assert_non_null(a);
		assert_int_equal(wsm_config_set_int(a, WSM_OPT_ANNOUNCED_ONLY, 1), 0);
		assert_int_equal(wsm_config_set_int(a, WSM_OPT_RETENTION_MS, 0), 0);
		assert_null(wsm_manager_new(a, &err));
		assert_int_equal(err, WSM_ERANGE);
		assert_non_null(strstr(wsm_error_detail(), "WSM_OPT_ANNOUNCED_ONLY"));
		assert_int_equal(wsm_config_set_int(a, WSM_OPT_ANNOUNCED_ONLY, 0), 0);
		m = wsm_manager_new(a, NULL);
		assert_non_null(m);
		assert_int_equal(wsm_session_open(m, "x"), WSM_ERANGE);
		wsm_manager_destroy(m);
		wsm_config_free(a);
	}

	/* Per-session limit above the global one. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS, 3), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS_PER_SESSION,
					    4), 0);
	err = 0;
	assert_null(wsm_manager_new(cfg, &err));
	assert_int_equal(err, WSM_ERANGE);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS_PER_SESSION,
					    3), 0);
	err = 12345;
	m = wsm_manager_new(cfg, &err);
	assert_non_null(m);
	wsm_manager_destroy(m);
	wsm_config_free(cfg);
}

/* The manager keeps its own copy: later changes and freeing don't matter. */
static void test_manager_copies_config(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	json_t *doc, *c;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS_PER_SESSION,
					    7), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS, 77), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_SESSION_LIMIT_POLICY,
					    WSM_LIMIT_EVICT_OLDEST), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_LIFETIME_MS, 123456),
			 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_PING_INTERVAL_MS, 1111), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_STALE_TIMEOUT_MS, 2222), 0);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_SWEEP_INTERVAL_MS, 3333),
			 0);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, "/x/y/"), 0);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PROTOCOL_NAME, "first"), 0);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_ORIGIN_ALLOW,
					    "https://a.example,https://b.example"),
			 0);
	m = new_manager(cfg);
	/* Changed after creation, then freed: the manager must not notice. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS, 88), 0);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PATH_PREFIX, "/z/"), 0);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_PROTOCOL_NAME, "second"), 0);
	wsm_config_free(cfg);

	doc = status_doc(m);
	c = config_of(doc);
	assert_int_equal(int_at(c, "maxConnectionsPerSession"), 7);
	assert_int_equal(int_at(c, "maxConnections"), 77);
	assert_string_equal(str_at(c, "sessionLimitPolicy"), "evict_oldest");
	assert_int_equal(int_at(c, "maxLifetimeMs"), 123456);
	assert_int_equal(int_at(c, "pingIntervalMs"), 1111);
	assert_int_equal(int_at(c, "staleTimeoutMs"), 2222);
	assert_int_equal(int_at(c, "sweepIntervalMs"), 3333);
	assert_string_equal(str_at(c, "pathPrefix"), "/x/y/");
	assert_string_equal(str_at(c, "protocolName"), "first");
	assert_string_equal(str_at(c, "originAllow"),
			    "https://a.example,https://b.example");
	json_decref(doc);
	assert_string_equal(wsm_protocol(m)->name, "first");
	wsm_manager_destroy(m);
}

/* ---- status document ---------------------------------------------------- */

static void test_status_json_document(void **state)
{
	wsm_manager_t *m = new_manager(NULL);
	int64_t before = wall_ms(), after, ts;
	json_t *doc = status_doc(m), *mt, *mem;
	wsm_metrics_t s;

	(void)state;
	after = wall_ms();
	s = metrics(m);
	assert_string_equal(str_at(doc, "status"), "ok");
	mt = json_object_get(doc, "metrics");
	assert_true(json_is_object(mt));
	assert_int_equal(int_at(mt, "totalConnections"), 0);
	assert_int_equal(int_at(mt, "activeConnections"), 0);
	assert_int_equal(int_at(mt, "staleConnections"), 0);
	assert_int_equal(int_at(mt, "closingConnections"), 0);
	assert_int_equal(int_at(mt, "sessions"), 0);
	mem = json_object_get(mt, "memoryUsage");
	assert_true(json_is_object(mem));
	assert_true(int_at(mem, "heldBytes") > 0);
	/* Nothing happened in between: the same exact count as the metrics. */
	assert_int_equal(int_at(mem, "heldBytes"), s.held_bytes);
	ts = int_at(doc, "timestamp");
	/* Milliseconds since the epoch, taken during the call (2 s of slack
	 * for a stepping wall clock). */
	assert_true(ts >= before - 2000);
	assert_true(ts <= after + 2000);
	json_decref(doc);

	/* Queued broadcasts show in heldBytes. */
	assert_int_equal(wsm_broadcast_error(m, "s", "queued"), 0);
	doc = status_doc(m);
	assert_int_equal(int_at(json_object_get(json_object_get(doc, "metrics"),
						"memoryUsage"), "heldBytes"),
			 held(m));
	assert_true((uint64_t)int_at(json_object_get(json_object_get(doc, "metrics"),
						     "memoryUsage"), "heldBytes") >
		    s.held_bytes);
	json_decref(doc);
	wsm_manager_destroy(m);
}

static void test_status_json_sizes(void **state)
{
	wsm_manager_t *m = new_manager(NULL);
	char *buf, small[16];
	int n, i;

	(void)state;
	n = wsm_status_json(m, NULL, 0);
	assert_true(n > 100);
	/* Exactly len + 1 holds it, NUL-terminated, bytes after untouched. */
	buf = malloc((size_t)n + 8);
	assert_non_null(buf);
	memset(buf, '#', (size_t)n + 8);
	assert_int_equal(wsm_status_json(m, buf, (size_t)n + 1), n);
	assert_int_equal(buf[n], '\0');
	assert_int_equal(strlen(buf), n);
	for (i = n + 1; i < n + 8; i++)
		assert_int_equal(buf[i], '#');
	assert_int_equal(buf[0], '{');
	assert_int_equal(buf[n - 1], '}');
	/* One byte short: the full length back, no overrun, and the buffer
	 * does not hold a (truncated) document passed off as whole. */
	memset(buf, '#', (size_t)n + 8);
	assert_int_equal(wsm_status_json(m, buf, (size_t)n), n);
	assert_true(strnlen(buf, (size_t)n) < (size_t)n);
	for (i = n; i < n + 8; i++)
		assert_int_equal(buf[i], '#');
	/* A much smaller buffer. */
	memset(small, '#', sizeof(small));
	assert_int_equal(wsm_status_json(m, small, 8), n);
	assert_true(strnlen(small, 8) < 8);
	for (i = 8; i < (int)sizeof(small); i++)
		assert_int_equal(small[i], '#');
	small[0] = '#';
	assert_int_equal(wsm_status_json(m, small, 1), n);
	assert_int_equal(small[0], '\0');
	assert_int_equal(small[1], '#');
	/* NULL with a size is refused; NULL manager too. */
	assert_int_equal(wsm_status_json(m, NULL, 1), WSM_EINVAL);
	assert_int_equal(wsm_status_json(m, NULL, 4096), WSM_EINVAL);
	assert_int_equal(wsm_status_json(NULL, NULL, 0), WSM_EINVAL);
	assert_int_equal(wsm_status_json(NULL, buf, (size_t)n + 1), WSM_EINVAL);
	free(buf);
	wsm_manager_destroy(m);
}

/* ---- metrics ------------------------------------------------------------ */

static void test_metrics_struct(void **state)
{
	wsm_manager_t *m = new_manager(NULL);
	const size_t old_size = offsetof(wsm_metrics_t, held_bytes);
	const size_t big = sizeof(wsm_metrics_t) + 64;
	unsigned char *raw;
	wsm_metrics_t s;
	size_t i;

	(void)state;
	assert_int_equal(wsm_metrics(m, NULL), WSM_EINVAL);
	memset(&s, 0, sizeof(s));
	s.size = 0;
	assert_int_equal(wsm_metrics(m, &s), WSM_EINVAL);
	s.size = sizeof(size_t) + sizeof(uint64_t) - 1;
	assert_int_equal(wsm_metrics(m, &s), WSM_EINVAL);
	s.size = sizeof(s);
	assert_int_equal(wsm_metrics(NULL, &s), WSM_EINVAL);

	/* The smallest accepted: the size and the first field. */
	memset(&s, 0xa5, sizeof(s));
	s.size = sizeof(size_t) + sizeof(uint64_t);
	assert_int_equal(wsm_metrics(m, &s), 0);
	assert_int_equal(s.size, sizeof(size_t) + sizeof(uint64_t));
	assert_int_equal(s.connections, 0);
	raw = (unsigned char *)&s;
	for (i = offsetof(wsm_metrics_t, active); i < sizeof(s); i++)
		assert_int_equal(raw[i], 0xa5);

	/* An older caller whose struct ends before held_bytes. */
	raw = malloc(big);
	assert_non_null(raw);
	memset(raw, 0xa5, big);
	((wsm_metrics_t *)(void *)raw)->size = old_size;
	assert_int_equal(wsm_metrics(m, (wsm_metrics_t *)(void *)raw), 0);
	assert_int_equal(((wsm_metrics_t *)(void *)raw)->size, old_size);
	assert_int_equal(((wsm_metrics_t *)(void *)raw)->connections, 0);
	assert_int_equal(((wsm_metrics_t *)(void *)raw)->active, 0);
	assert_int_equal(((wsm_metrics_t *)(void *)raw)->stale, 0);
	assert_int_equal(((wsm_metrics_t *)(void *)raw)->closing, 0);
	assert_int_equal(((wsm_metrics_t *)(void *)raw)->sessions, 0);
	for (i = old_size; i < big; i++)
		if (raw[i] != 0xa5)
			fail_msg("byte %zu beyond the caller's size was written", i);

	/* A newer caller: the library fills what it knows, keeps the size. */
	memset(raw, 0xa5, big);
	((wsm_metrics_t *)(void *)raw)->size = big;
	assert_int_equal(wsm_metrics(m, (wsm_metrics_t *)(void *)raw), 0);
	assert_int_equal(((wsm_metrics_t *)(void *)raw)->size, big);
	assert_true(((wsm_metrics_t *)(void *)raw)->held_bytes > 0);
	assert_int_equal(((wsm_metrics_t *)(void *)raw)->coalesced, 0);
	for (i = sizeof(wsm_metrics_t); i < big; i++)
		assert_int_equal(raw[i], 0xa5);
	free(raw);

	/* A fresh manager: only held_bytes is not zero. */
	s = metrics(m);
	assert_int_equal(s.size, sizeof(s));
	assert_true(s.held_bytes > 0);
	assert_int_equal(s.connections + s.active + s.stale + s.closing +
			 s.sessions + s.opened, 0);
	assert_int_equal(s.refused_bad_request + s.refused_denied +
			 s.refused_session_limit + s.refused_global_limit +
			 s.refused_shutdown, 0);
	for (i = 0; i < WSM_CAUSE_SLOTS; i++)
		assert_int_equal(s.closed[i], 0);
	assert_int_equal(s.broadcasts + s.unrouted + s.messages_queued +
			 s.messages_sent + s.bytes_sent + s.pings_sent +
			 s.coalesced, 0);
	wsm_manager_destroy(m);
}

/* ---- broadcast arguments ------------------------------------------------ */

static void test_broadcast_null_args(void **state)
{
	wsm_manager_t *m = new_manager(NULL);

	(void)state;
	assert_int_equal(wsm_broadcast_progress(NULL, "s", 1, "m", "st"), WSM_EINVAL);
	assert_int_equal(wsm_broadcast_error(NULL, "s", "e"), WSM_EINVAL);
	assert_int_equal(wsm_broadcast_complete(NULL, "s", "{}"), WSM_EINVAL);
	assert_int_equal(wsm_session_close(NULL, "s"), WSM_EINVAL);
	assert_refused(m, WSM_EINVAL, wsm_broadcast_progress(m, NULL, 1, "m", "s"));
	assert_refused(m, WSM_EINVAL, wsm_broadcast_error(m, NULL, "e"));
	assert_refused(m, WSM_EINVAL, wsm_broadcast_error(m, "s", NULL));
	assert_refused(m, WSM_EINVAL, wsm_broadcast_complete(m, NULL, "{}"));
	assert_refused(m, WSM_EINVAL, wsm_session_close(m, NULL));
	/* Optional strings may be NULL. */
	assert_accepted(m, wsm_broadcast_progress(m, "s", 1, NULL, NULL));
	assert_accepted(m, wsm_broadcast_progress(m, "s", 1, "m", NULL));
	assert_accepted(m, wsm_broadcast_progress(m, "s", 1, NULL, "st"));
	assert_accepted(m, wsm_broadcast_complete(m, "s", NULL));
	assert_int_equal(metrics(m).broadcasts, 4);
	wsm_manager_destroy(m);
}

static void test_broadcast_session_ids(void **state)
{
	static const char *const bad[] = {
		"", "a/b", "/", "a b", " ", "a.b", ".", "..", "caf\xc3\xa9",
		"\xc3\xa9", "a?b", "a%2Fb", "a#b", "a+b", "a:b", "a\tb", "a\nb",
		"a\"b", "a\\b",
	};
	wsm_manager_t *m = new_manager(NULL);
	wsm_config_t *cfg;
	char *id;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_refused(m, WSM_ESESSIONID,
			       wsm_broadcast_progress(m, bad[i], 1, NULL, NULL));
		assert_refused(m, WSM_ESESSIONID, wsm_broadcast_error(m, bad[i], "e"));
		assert_refused(m, WSM_ESESSIONID,
			       wsm_broadcast_complete(m, bad[i], NULL));
		assert_refused(m, WSM_ESESSIONID, wsm_session_close(m, bad[i]));
	}
	/* Every allowed character, and the longest allowed id. */
	assert_accepted(m, wsm_broadcast_error(m, "AZaz09-_", "e"));
	id = repeat('x', 64);
	assert_accepted(m, wsm_broadcast_progress(m, id, 1, NULL, NULL));
	assert_accepted(m, wsm_broadcast_error(m, id, "e"));
	assert_accepted(m, wsm_broadcast_complete(m, id, NULL));
	assert_refused(m, WSM_ENOTFOUND, wsm_session_close(m, id));
	free(id);
	/* One over WSM_OPT_SESSION_ID_MAX_LEN, and far over the hard limit. */
	id = repeat('x', 65);
	assert_refused(m, WSM_ESESSIONID, wsm_broadcast_progress(m, id, 1, NULL, NULL));
	assert_refused(m, WSM_ESESSIONID, wsm_broadcast_error(m, id, "e"));
	assert_refused(m, WSM_ESESSIONID, wsm_broadcast_complete(m, id, NULL));
	assert_refused(m, WSM_ESESSIONID, wsm_session_close(m, id));
	free(id);
	id = repeat('x', 4096);
	assert_refused(m, WSM_ESESSIONID, wsm_broadcast_error(m, id, "e"));
	assert_refused(m, WSM_ESESSIONID, wsm_session_close(m, id));
	free(id);
	wsm_manager_destroy(m);

	/* The limit follows the option. */
	cfg = wsm_config_new();
	assert_non_null(cfg);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_SESSION_ID_MAX_LEN, 8), 0);
	m = new_manager(cfg);
	wsm_config_free(cfg);
	assert_accepted(m, wsm_broadcast_error(m, "12345678", "e"));
	assert_refused(m, WSM_ESESSIONID, wsm_broadcast_error(m, "123456789", "e"));
	assert_refused(m, WSM_ESESSIONID, wsm_session_close(m, "123456789"));
	assert_refused(m, WSM_ENOTFOUND, wsm_session_close(m, "12345678"));
	wsm_manager_destroy(m);
}

static void test_broadcast_progress_range(void **state)
{
	const double bad[] = { NAN, -NAN, INFINITY, -INFINITY, -0.001, 100.001,
			       -1e-300, nextafter(100.0, 200.0), -1, 101, 1e308,
			       -DBL_MAX };
	const double good[] = { 0, 100, 0.001, 42.5, 99.999, nextafter(100.0, 0.0),
				DBL_MIN };
	wsm_manager_t *m = new_manager(NULL);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(m, WSM_ERANGE,
			       wsm_broadcast_progress(m, "p", bad[i], "m", "s"));
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_accepted(m, wsm_broadcast_progress(m, "p", good[i], "m", "s"));
	assert_int_equal(metrics(m).broadcasts, sizeof(good) / sizeof(good[0]));
	wsm_manager_destroy(m);
}

static const char *const bad_utf8[] = {
	"\xc0\xaf",             /* overlong '/' */
	"\xc1\xbf",             /* overlong */
	"\xe0\x80\xaf",         /* overlong, 3 bytes */
	"\xf0\x80\x80\xaf",     /* overlong, 4 bytes */
	"\xed\xa0\x80",         /* surrogate U+D800 */
	"\xed\xbf\xbf",         /* surrogate U+DFFF */
	"\xe2\x82",             /* truncated */
	"ok \xe2\x82",          /* truncated at the end */
	"\xe2\x82 ok",          /* truncated in the middle */
	"\xf4\x90\x80\x80",     /* above U+10FFFF */
	"\xf5\x80\x80\x80",
	"\x80",                 /* stray continuation */
	"ok\xbf",
	"\xff",
	"\xfe",
	"\xf8\x88\x80\x80\x80", /* 5-byte form */
	"\xc3\x28",             /* lead byte, then ASCII */
};

static const char *const good_utf8[] = {
	"plain ascii",
	"caf\xc3\xa9",                  /* U+00E9 */
	"\xe2\x82\xac 5",               /* U+20AC */
	"\xf0\x9f\x98\x80",             /* U+1F600 */
	"\xf4\x8f\xbf\xbf",             /* U+10FFFF */
	"\xed\x9f\xbf\xee\x80\x80",     /* U+D7FF U+E000 */
	"\xc2\x80\xdf\xbf",             /* U+0080 U+07FF */
	"\xe0\xa0\x80\xef\xbf\xbd",     /* U+0800 U+FFFD */
	"\xf0\x90\x80\x80",             /* U+10000 */
	"",
};

static void test_broadcast_utf8(void **state)
{
	wsm_manager_t *m = new_manager(NULL);
	char meta[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		const char *s = bad_utf8[i];

		assert_refused(m, WSM_EUTF8, wsm_broadcast_progress(m, "u", 1, s, NULL));
		assert_refused(m, WSM_EUTF8, wsm_broadcast_progress(m, "u", 1, NULL, s));
		assert_refused(m, WSM_EUTF8, wsm_broadcast_progress(m, "u", 1, "ok", s));
		assert_refused(m, WSM_EUTF8, wsm_broadcast_error(m, "u", s));
		snprintf(meta, sizeof(meta), "{\"k\":\"%s\"}", s);
		assert_refused(m, WSM_EUTF8, wsm_broadcast_complete(m, "u", meta));
		snprintf(meta, sizeof(meta), "{\"%s\":1}", s);
		assert_refused(m, WSM_EUTF8, wsm_broadcast_complete(m, "u", meta));
	}
	for (i = 0; i < sizeof(good_utf8) / sizeof(good_utf8[0]); i++) {
		const char *s = good_utf8[i];

		assert_accepted(m, wsm_broadcast_progress(m, "u", 1, s, s));
		assert_accepted(m, wsm_broadcast_error(m, "u", s));
		snprintf(meta, sizeof(meta), "{\"k\":\"%s\"}", s);
		assert_accepted(m, wsm_broadcast_complete(m, "u", meta));
	}
	wsm_manager_destroy(m);
}

static void test_broadcast_text_length(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	char *s;
	int i;

	(void)state;
	/* The default limit, 1024 bytes. */
	m = new_manager(NULL);
	s = repeat('a', 1024);
	assert_accepted(m, wsm_broadcast_progress(m, "t", 1, s, s));
	assert_accepted(m, wsm_broadcast_error(m, "t", s));
	free(s);
	s = repeat('a', 1025);
	assert_refused(m, WSM_ETOOLONG, wsm_broadcast_progress(m, "t", 1, s, NULL));
	assert_refused(m, WSM_ETOOLONG, wsm_broadcast_progress(m, "t", 1, NULL, s));
	assert_refused(m, WSM_ETOOLONG, wsm_broadcast_error(m, "t", s));
	free(s);
	wsm_manager_destroy(m);

	/* A configured one, counted in bytes, not characters. */
	assert_non_null(cfg);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_TEXT_LEN, 16), 0);
	m = new_manager(cfg);
	wsm_config_free(cfg);
	s = calloc(1, 64);
	assert_non_null(s);
	for (i = 0; i < 8; i++)
		strcat(s, "\xc3\xa9"); /* 8 characters, 16 bytes */
	assert_accepted(m, wsm_broadcast_error(m, "t", s));
	assert_accepted(m, wsm_broadcast_progress(m, "t", 1, s, s));
	strcat(s, "\xc3\xa9");
	assert_refused(m, WSM_ETOOLONG, wsm_broadcast_error(m, "t", s));
	assert_refused(m, WSM_ETOOLONG, wsm_broadcast_progress(m, "t", 1, s, NULL));
	assert_refused(m, WSM_ETOOLONG, wsm_broadcast_progress(m, "t", 1, "ok", s));
	assert_refused(m, WSM_ETOOLONG, wsm_broadcast_error(m, "t",
							    "0123456789abcdefX"));
	assert_accepted(m, wsm_broadcast_error(m, "t", "0123456789abcdef"));
	free(s);
	wsm_manager_destroy(m);
}

static void test_broadcast_metadata(void **state)
{
	static const char *const not_object[] = {
		"[1]", "1", "{bad", "{\"a\":1}x", "{\"a\":1,\"a\":2}", "", " ",
		"null", "true", "\"str\"", "{\"a\":}", "{\"a\" 1}", "{'a':1}",
		"{\"a\":1,}", "{a:1}", "{}{}", "{\"a\":[1,2}", "[]",
		"{\"a\":{\"b\":1,\"b\":2}}",
	};
	static const char *const objects[] = {
		"{}", " { } ", "{\"url\":\"/out/42.png\"}",
		"{\"a\":{\"b\":[1,2.5,true,false,null,\"x\"]},\"c\":-1e3}",
		"{\"a\":1,\"A\":2}", "{\"caf\xc3\xa9\":\"\xe2\x82\xac\"}",
		"{\"esc\":\"\\u00e9\\n\\\"\"}", "\n{\"a\":1}\n",
	};
	wsm_config_t *cfg;
	wsm_manager_t *m = new_manager(NULL);
	char *s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(not_object) / sizeof(not_object[0]); i++)
		if (wsm_broadcast_complete(m, "j", not_object[i]) != WSM_EJSON)
			fail_msg("metadata '%s' was not refused with WSM_EJSON",
				 not_object[i]);
	for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
		assert_accepted(m, wsm_broadcast_complete(m, "j", objects[i]));
	assert_accepted(m, wsm_broadcast_complete(m, "j", NULL));
	assert_refused(m, WSM_EUTF8,
		       wsm_broadcast_complete(m, "j", "{\"a\":\"\xed\xa0\x80\"}"));
	assert_refused(m, WSM_EUTF8, wsm_broadcast_complete(m, "j", "{\"a\":1}\xff"));
	/* The default limit, 16384 bytes. */
	s = object_of_len(16384);
	assert_accepted(m, wsm_broadcast_complete(m, "j", s));
	free(s);
	s = object_of_len(16385);
	assert_refused(m, WSM_ETOOLONG, wsm_broadcast_complete(m, "j", s));
	free(s);
	assert_int_equal(metrics(m).broadcasts,
			 sizeof(objects) / sizeof(objects[0]) + 2);
	wsm_manager_destroy(m);

	/* A configured limit. */
	cfg = wsm_config_new();
	assert_non_null(cfg);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_METADATA_LEN, 12), 0);
	m = new_manager(cfg);
	wsm_config_free(cfg);
	assert_accepted(m, wsm_broadcast_complete(m, "j", "{\"a\":\"1234\"}"));
	assert_refused(m, WSM_ETOOLONG,
		       wsm_broadcast_complete(m, "j", "{\"a\":\"12345\"}"));
	assert_accepted(m, wsm_broadcast_complete(m, "j", NULL));
	wsm_manager_destroy(m);
}

/* ---- the inbox ---------------------------------------------------------- */

static void test_inbox_flood(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	wsm_metrics_t s;
	uint64_t base, prev;
	int i;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_INBOX_CAPACITY, 4), 0);
	m = new_manager(cfg);
	wsm_config_free(cfg);
	base = prev = held(m);
	/*
	 * Nothing drains the inbox without a context: four progress and,
	 * in a share of their own, four of the rest fit.
	 */
	for (i = 0; i < 4; i++) {
		assert_int_equal(wsm_broadcast_progress(m, "flood", i, "a", "b"), 0);
		assert_true(held(m) > prev);
		prev = held(m);
	}
	/* Progress is full, yet the terminals still get in. */
	assert_int_equal(wsm_broadcast_progress(m, "flood", 30, NULL, NULL),
			 WSM_EAGAIN);
	assert_int_equal(wsm_broadcast_error(m, "flood", "bad"), 0);
	assert_true(held(m) > prev);
	prev = held(m);
	assert_int_equal(wsm_broadcast_complete(m, "other", "{\"a\":[1,2,3]}"), 0);
	assert_true(held(m) > prev);
	prev = held(m);
	assert_int_equal(wsm_broadcast_complete(m, "a", NULL), 0);
	assert_int_equal(wsm_broadcast_error(m, "b", "e"), 0);
	prev = held(m);
	/* The fifth of either share is turned away, holding nothing. */
	for (i = 0; i < 3; i++) {
		assert_int_equal(wsm_broadcast_progress(m, "flood", 30, NULL, NULL),
				 WSM_EAGAIN);
		assert_int_equal(wsm_broadcast_error(m, "x", "e"), WSM_EAGAIN);
		assert_int_equal(wsm_broadcast_complete(m, "y", NULL), WSM_EAGAIN);
	}
	s = metrics(m);
	assert_int_equal(s.held_bytes, prev);
	assert_true(s.held_bytes > base);
	assert_int_equal(s.broadcasts, 8);
	assert_int_equal(s.unrouted, 0);
	assert_int_equal(s.messages_queued, 0);
	/* No connections, so nothing to close: not queued either. */
	assert_int_equal(wsm_session_close(m, "flood"), WSM_ENOTFOUND);
	assert_int_equal(metrics(m).held_bytes, prev);
	/* The eight queued messages are freed by destroy (leak-checked). */
	wsm_manager_destroy(m);
}

/* ---- the rest of the calls without a context --------------------------- */

/* Stands in for a connection: never dereferenced before the checks fail. */
static _Alignas(max_align_t) unsigned char fake_wsi[4096];

static void test_unbound_calls(void **state)
{
	wsm_manager_t *m = new_manager(NULL);
	const struct lws_protocols *p;
	uint64_t before = held(m);

	(void)state;
	assert_int_equal(wsm_session_close(m, "nobody"), WSM_ENOTFOUND);
	assert_int_equal(wsm_sweep(m), WSM_ENOTBOUND);
	assert_int_equal(wsm_register(m, NULL, "s"), WSM_EINVAL);
	assert_int_equal(wsm_register(m, (struct lws *)(void *)fake_wsi, NULL),
			 WSM_EINVAL);
	assert_int_equal(wsm_register(m, (struct lws *)(void *)fake_wsi, "s"),
			 WSM_ENOTBOUND);
	assert_int_equal(wsm_sweep(NULL), WSM_EINVAL);
	assert_int_equal(wsm_register(NULL, (struct lws *)(void *)fake_wsi, "s"),
			 WSM_EINVAL);
	assert_null(wsm_protocol(NULL));
	assert_int_equal(wsm_callback(NULL, NULL, LWS_CALLBACK_RECEIVE_PONG, NULL,
				      NULL, 0), 0);
	assert_int_equal(held(m), before);
	assert_int_equal(metrics(m).opened, 0);

	p = wsm_protocol(m);
	assert_non_null(p);
	assert_string_equal(p->name, "wsm");
	assert_int_equal(p->rx_buffer_size, 128);
	assert_non_null(p->callback);
	assert_ptr_equal(p->user, m);
	/* The same entry on every call while the manager lives. */
	assert_ptr_equal(wsm_protocol(m), p);
	wsm_manager_destroy(m);
}

/* ---- after destroy ------------------------------------------------------ */

static void test_calls_after_destroy(void **state)
{
	wsm_manager_t *m = new_manager(NULL);
	wsm_metrics_t s;
	char buf[64];

	(void)state;
	assert_int_equal(wsm_broadcast_error(m, "s", "queued"), 0);
	wsm_manager_destroy(m);
	/* m dangles: the library must spot it without dereferencing it. */
	assert_int_equal(wsm_broadcast_progress(m, "s", 1, "m", "s"), WSM_ESHUTDOWN);
	assert_int_equal(wsm_broadcast_error(m, "s", "e"), WSM_ESHUTDOWN);
	assert_int_equal(wsm_broadcast_complete(m, "s", "{}"), WSM_ESHUTDOWN);
	assert_int_equal(wsm_session_close(m, "s"), WSM_ESHUTDOWN);
	assert_int_equal(wsm_sweep(m), WSM_ESHUTDOWN);
	assert_int_equal(wsm_register(m, (struct lws *)(void *)fake_wsi, "s"),
			 WSM_ESHUTDOWN);
	memset(&s, 0xa5, sizeof(s));
	s.size = sizeof(s);
	assert_int_equal(wsm_metrics(m, &s), WSM_ESHUTDOWN);
	assert_int_equal(s.size, sizeof(s));
	assert_int_equal(s.held_bytes, 0xa5a5a5a5a5a5a5a5ULL);
	assert_int_equal(wsm_status_json(m, NULL, 0), WSM_ESHUTDOWN);
	assert_int_equal(wsm_status_json(m, buf, sizeof(buf)), WSM_ESHUTDOWN);
	assert_null(wsm_protocol(m));
	assert_int_equal(wsm_callback(m, NULL, LWS_CALLBACK_RECEIVE_PONG, NULL,
				      NULL, 0), 0);
	/* Destroying again, or NULL, does nothing. */
	wsm_manager_destroy(m);
	wsm_manager_destroy(m);
	wsm_manager_destroy(NULL);
	assert_int_equal(wsm_broadcast_error(m, "s", "e"), WSM_ESHUTDOWN);
}

/* Reasons the library does not handle are left alone: 0, no wsi needed. */
static void test_callback_unhandled_reasons(void **state)
{
	static const int reasons[] = { LWS_CALLBACK_HTTP,
				       LWS_CALLBACK_CLIENT_ESTABLISHED,
				       LWS_CALLBACK_CLIENT_RECEIVE,
				       LWS_CALLBACK_GET_THREAD_ID,
				       LWS_CALLBACK_USER, -1, 100000 };
	wsm_manager_t *m = new_manager(NULL);
	uint64_t before = held(m);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		assert_int_equal(wsm_callback(m, NULL, reasons[i], NULL, NULL, 0), 0);
	assert_int_equal(held(m), before);
	wsm_manager_destroy(m);
}

/* Several threads destroying one manager at once: one does it, the rest
 * find it gone (a double free would show under ASan and valgrind). */
static void *destroy_thread(void *arg)
{
	wsm_manager_destroy(arg);
	return NULL;
}

static void test_concurrent_destroy(void **state)
{
	pthread_t t[4];
	wsm_manager_t *m = new_manager(NULL);
	int i;

	(void)state;
	assert_int_equal(wsm_broadcast_error(m, "s", "pending"), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, destroy_thread, m), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(wsm_broadcast_error(m, "s", "e"), WSM_ESHUTDOWN);
}

/* Other managers are not disturbed by one being destroyed. */
static void test_destroy_is_per_manager(void **state)
{
	wsm_manager_t *a = new_manager(NULL), *b = new_manager(NULL);

	(void)state;
	assert_ptr_not_equal(a, b);
	wsm_manager_destroy(a);
	assert_int_equal(wsm_broadcast_error(a, "s", "e"), WSM_ESHUTDOWN);
	assert_int_equal(wsm_broadcast_error(b, "s", "e"), 0);
	assert_non_null(wsm_protocol(b));
	assert_int_equal(metrics(b).broadcasts, 1);
	wsm_manager_destroy(b);
	assert_int_equal(wsm_broadcast_error(b, "s", "e"), WSM_ESHUTDOWN);
}

/* ---- destroy racing with calls from other threads ----------------------- */

/* Each thread calls until it has been refused RACE_AFTER times, bounded in
 * time rather than in calls: a starved thread must not run out of calls
 * before the destroy it is waiting for. */
enum { RACE_THREADS = 4, RACE_AFTER = 200, RACE_LIMIT_MS = 30000 };

struct racer {
	wsm_manager_t *m;
	int kind;
	pthread_t thread;
	atomic_long ok;   /* calls that succeeded */
	long shutdown;    /* calls refused with WSM_ESHUTDOWN */
	long other;       /* anything else: a failure */
	int other_rc;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	wsm_metrics_t s;
	char buf[1024];
	long i;
	int rc;

	int64_t end = now_ms() + RACE_LIMIT_MS;

	for (i = 0; r->shutdown < RACE_AFTER && (i % 256 || now_ms() < end);
	     i++) {
		switch (r->kind) {
		case 0:
			rc = wsm_broadcast_progress(r->m, "race", (double)(i % 101),
						    "hammer", "stage");
			break;
		case 1:
			rc = wsm_broadcast_complete(r->m, "race", "{\"i\":1}");
			break;
		case 2:
			s.size = sizeof(s);
			rc = wsm_metrics(r->m, &s);
			break;
		default:
			rc = wsm_status_json(r->m, buf, sizeof(buf));
			if (rc > 0)
				rc = 0;
			else if (rc == 0)
				rc = -1;
			break;
		}
		if (rc == 0) {
			atomic_fetch_add(&r->ok, 1);
		} else if (rc == WSM_ESHUTDOWN) {
			r->shutdown++;
		} else {
			r->other++;
			r->other_rc = rc;
		}
	}
	return NULL;
}

static bool racers_running(void *arg)
{
	struct racer *r = arg;
	int i;

	for (i = 0; i < RACE_THREADS; i++)
		if (atomic_load(&r[i].ok) < RACE_AFTER)
			return false;
	return true;
}

static void test_destroy_races_with_calls(void **state)
{
	struct racer r[RACE_THREADS];
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	int i;

	(void)state;
	assert_non_null(cfg);
	/* Room for everything the threads can queue: no WSM_EAGAIN. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_INBOX_CAPACITY, 16777216),
			 0);
	m = new_manager(cfg);
	wsm_config_free(cfg);
	memset(r, 0, sizeof(r));
	for (i = 0; i < RACE_THREADS; i++) {
		r[i].m = m;
		r[i].kind = i;
		atomic_init(&r[i].ok, 0);
		assert_int_equal(pthread_create(&r[i].thread, NULL, race, &r[i]), 0);
	}
	/* Destroy while every thread is known to be in full swing. */
	assert_int_equal(harness_wait_until(racers_running, r, 30000), 0);
	wsm_manager_destroy(m);
	for (i = 0; i < RACE_THREADS; i++)
		assert_int_equal(pthread_join(r[i].thread, NULL), 0);
	for (i = 0; i < RACE_THREADS; i++) {
		if (r[i].other)
			fail_msg("thread %d: %ld calls returned %s", i, r[i].other,
				 wsm_strerror(r[i].other_rc));
		assert_true(atomic_load(&r[i].ok) >= RACE_AFTER);
		assert_int_equal(r[i].shutdown, RACE_AFTER);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_error_details),
		cmocka_unit_test(test_metrics_prometheus),
		cmocka_unit_test(test_cause_names),
		cmocka_unit_test(test_option_bounds),
		cmocka_unit_test(test_option_bounds_consistent),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_int_ranges),
		cmocka_unit_test(test_config_bad_keys),
		cmocka_unit_test(test_config_path_prefix),
		cmocka_unit_test(test_config_protocol_name),
		cmocka_unit_test(test_cluster_options),
		cmocka_unit_test(test_cluster_access_options),
		cmocka_unit_test(test_manager_new_cross_checks),
		cmocka_unit_test(test_manager_copies_config),
		cmocka_unit_test(test_status_json_document),
		cmocka_unit_test(test_status_json_sizes),
		cmocka_unit_test(test_metrics_struct),
		cmocka_unit_test(test_broadcast_null_args),
		cmocka_unit_test(test_broadcast_session_ids),
		cmocka_unit_test(test_broadcast_progress_range),
		cmocka_unit_test(test_broadcast_utf8),
		cmocka_unit_test(test_broadcast_text_length),
		cmocka_unit_test(test_broadcast_metadata),
		cmocka_unit_test(test_inbox_flood),
		cmocka_unit_test(test_unbound_calls),
		cmocka_unit_test(test_calls_after_destroy),
		cmocka_unit_test(test_callback_unhandled_reasons),
		cmocka_unit_test(test_concurrent_destroy),
		cmocka_unit_test(test_destroy_is_per_manager),
		cmocka_unit_test(test_destroy_races_with_calls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
