/*
 * Configuration: enum-keyed setters over a table of integer options with
 * their ranges and defaults, plus the string options. Values outside a
 * range are refused (WSM_ERANGE), never clamped. The same table names each
 * option in the status document.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct int_option {
	wsm_option_t key;
	int64_t min, max, def;
	size_t offset;
	const char *json_name; /* in the status document's "config" */
	const char *enum_name; /* in error details */
};

#define OPT(k, lo, hi, d, field, name) \
	{ k, lo, hi, d, offsetof(struct wsm_settings, field), name, #k }

static const struct int_option int_options[] = {
	OPT(WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 1, 65535, 5, max_per_session,
	    "maxConnectionsPerSession"),
	OPT(WSM_OPT_MAX_CONNECTIONS, 1, 1000000, 10000, max_connections,
	    "maxConnections"),
	OPT(WSM_OPT_SESSION_LIMIT_POLICY, WSM_LIMIT_REJECT,
	    WSM_LIMIT_EVICT_OLDEST, WSM_LIMIT_REJECT, limit_policy,
	    "sessionLimitPolicy"),
	OPT(WSM_OPT_MAX_LIFETIME_MS, 10, 2592000000LL, 300000, max_lifetime_ms,
	    "maxLifetimeMs"),
	OPT(WSM_OPT_PING_INTERVAL_MS, 10, 86400000, 30000, ping_interval_ms,
	    "pingIntervalMs"),
	/* Above the ping interval (wsm_manager_new() checks), so 11 at least. */
	OPT(WSM_OPT_STALE_TIMEOUT_MS, 11, 172800000, 120000, stale_timeout_ms,
	    "staleTimeoutMs"),
	OPT(WSM_OPT_SWEEP_INTERVAL_MS, 10, 86400000, 60000, sweep_interval_ms,
	    "sweepIntervalMs"),
	OPT(WSM_OPT_CLOSE_GRACE_MS, 1000, 60000, 5000, close_grace_ms,
	    "closeGraceMs"),
	OPT(WSM_OPT_LIFETIME_JITTER_PERCENT, 0, 50, 10, lifetime_jitter_pct,
	    "lifetimeJitterPercent"),
	OPT(WSM_OPT_APP_PING, 0, 1, 0, app_ping, "appPing"),
	OPT(WSM_OPT_MAX_CONNECTIONS_PER_IP, 0, 1000000, 0, max_per_ip,
	    "maxConnectionsPerIp"),
	OPT(WSM_OPT_MAX_UPGRADE_RATE, 0, 1000000, 0, max_upgrade_rate,
	    "maxUpgradeRate"),
	OPT(WSM_OPT_ANNOUNCED_ONLY, 0, 1, 0, announced_only, "announcedOnly"),
	OPT(WSM_OPT_SESSION_ID_MAX_LEN, 1, WSM_SESSION_ID_LIMIT, 64,
	    session_id_max_len, "sessionIdMaxLen"),
	OPT(WSM_OPT_MAX_MESSAGE_SIZE, 16, 1048576, 1024, max_message_size,
	    "maxMessageSize"),
	OPT(WSM_OPT_RX_BUFFER_SIZE, 128, 65536, 128, rx_buffer_size,
	    "rxBufferSize"),
	OPT(WSM_OPT_MAX_QUEUED_MESSAGES, 1, 4096, 32, max_queued,
	    "maxQueuedMessages"),
	OPT(WSM_OPT_MAX_TEXT_LEN, 1, 65536, 1024, max_text_len, "maxTextLen"),
	OPT(WSM_OPT_MAX_METADATA_LEN, 2, 1048576, 16384, max_metadata_len,
	    "maxMetadataLen"),
	OPT(WSM_OPT_INBOX_CAPACITY, 1, 16777216, 65536, inbox_capacity,
	    "inboxCapacity"),
	OPT(WSM_OPT_MAX_QUEUED_BYTES, 1024, 67108864, 262144, max_queued_bytes,
	    "maxQueuedBytes"),
	OPT(WSM_OPT_RETENTION_MS, 0, 86400000, 60000, retention_ms,
	    "retentionMs"),
	OPT(WSM_OPT_RETAIN_MAX_SESSIONS, 0, 1000000, 10000, retain_max_sessions,
	    "retainMaxSessions"),
	OPT(WSM_OPT_RETAIN_MAX_BYTES, 0, 1073741824, 16777216, retain_max_bytes,
	    "retainMaxBytes"),
	OPT(WSM_OPT_CLUSTER_TIMEOUT_MS, 10, 600000, 2000, cluster_timeout_ms,
	    "clusterTimeoutMs"),
	OPT(WSM_OPT_CLUSTER_RETRY_MAX_MS, 10, 600000, 5000,
	    cluster_retry_max_ms, "clusterRetryMaxMs"),
	OPT(WSM_OPT_CLUSTER_OUTBOX_MESSAGES, 1, 16777216, 65536,
	    cluster_outbox_messages, "clusterOutboxMessages"),
	OPT(WSM_OPT_CLUSTER_OUTBOX_BYTES, 1024, 1073741824, 16777216,
	    cluster_outbox_bytes, "clusterOutboxBytes"),
	/* Well inside what one Redis reply may carry (WSM_REDIS_MAX_ELEMENTS). */
	OPT(WSM_OPT_CLUSTER_HISTORY, 0, 1024, 0, cluster_history,
	    "clusterHistory"),
	/* A probe every quarter of it, on a link that delivered nothing. */
	OPT(WSM_OPT_CLUSTER_PROBE_MS, 40, 600000, 5000, cluster_probe_ms,
	    "clusterProbeMs"),
	OPT(WSM_OPT_CLUSTER_REPLICAS, 0, 16, 0, cluster_replicas,
	    "clusterReplicas"),
};

/* The string options of cluster mode past the first three. */
struct str_option {
	wsm_option_t key;
	size_t offset, size;
	const char *json_name; /* NULL: a secret, never shown */
	const char *enum_name;
};

#define STR(k, field, name) \
	{ k, offsetof(struct wsm_settings, field), \
	  sizeof(((struct wsm_settings *)0)->field), name, #k }

static const struct str_option str_options[] = {
	STR(WSM_OPT_CLUSTER_USER, cluster_user, "clusterUser"),
	STR(WSM_OPT_CLUSTER_PASSWORD, cluster_password, NULL),
	STR(WSM_OPT_CLUSTER_TLS_CA_FILE, cluster_tls_ca_file,
	    "clusterTlsCaFile"),
	STR(WSM_OPT_CLUSTER_TLS_CA_PATH, cluster_tls_ca_path,
	    "clusterTlsCaPath"),
	STR(WSM_OPT_CLUSTER_TLS_CERT_FILE, cluster_tls_cert_file,
	    "clusterTlsCertFile"),
	STR(WSM_OPT_CLUSTER_TLS_KEY_FILE, cluster_tls_key_file,
	    "clusterTlsKeyFile"),
	STR(WSM_OPT_CLUSTER_SENTINEL_USER, cluster_sentinel_user,
	    "clusterSentinelUser"),
	STR(WSM_OPT_CLUSTER_SENTINEL_PASSWORD, cluster_sentinel_password, NULL),
};

static const struct str_option *find_str(wsm_option_t key)
{
	size_t i;

	for (i = 0; i < sizeof(str_options) / sizeof(str_options[0]); i++)
		if (str_options[i].key == key)
			return &str_options[i];
	return NULL;
}

#ifndef WSM_WITH_CLUSTER
static bool is_cluster_option(wsm_option_t opt)
{
	return opt >= WSM_OPT_CLUSTER_REDIS && opt < 800; /* all of 7xx */
}
#endif

#define DEFAULT_PREFIX "/api/images_mvp/progress/"
#define DEFAULT_PROTOCOL "wsm"
#define DEFAULT_KEY_PREFIX "wsm:"

static const struct int_option *find_int(wsm_option_t key)
{
	size_t i;

	for (i = 0; i < sizeof(int_options) / sizeof(int_options[0]); i++)
		if (int_options[i].key == key)
			return &int_options[i];
	return NULL;
}

const char *wsm__option_name(wsm_option_t opt)
{
	const struct int_option *o = find_int(opt);
	const struct str_option *so = find_str(opt);

	if (so)
		return so->enum_name;
	switch (opt) {
	case WSM_OPT_PATH_PREFIX: return "WSM_OPT_PATH_PREFIX";
	case WSM_OPT_PROTOCOL_NAME: return "WSM_OPT_PROTOCOL_NAME";
	case WSM_OPT_ORIGIN_ALLOW: return "WSM_OPT_ORIGIN_ALLOW";
	case WSM_OPT_CLUSTER_REDIS: return "WSM_OPT_CLUSTER_REDIS";
	case WSM_OPT_CLUSTER_NODE_ID: return "WSM_OPT_CLUSTER_NODE_ID";
	case WSM_OPT_CLUSTER_KEY_PREFIX: return "WSM_OPT_CLUSTER_KEY_PREFIX";
	default: return o ? o->enum_name : "unknown option";
	}
}

static int64_t *field(struct wsm_settings *s, const struct int_option *o)
{
	return (int64_t *)(void *)((char *)s + o->offset);
}

void wsm__settings_defaults(struct wsm_settings *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < sizeof(int_options) / sizeof(int_options[0]); i++)
		*field(s, &int_options[i]) = int_options[i].def;
	strcpy(s->path_prefix, DEFAULT_PREFIX);
	strcpy(s->protocol_name, DEFAULT_PROTOCOL);
	strcpy(s->cluster_prefix, DEFAULT_KEY_PREFIX);
}

void wsm__settings_wipe(struct wsm_settings *s)
{
	/* A secret lingers in freed memory for anyone who reads it later. */
	explicit_bzero(s->cluster_password, sizeof(s->cluster_password));
	explicit_bzero(s->cluster_sentinel_password,
		       sizeof(s->cluster_sentinel_password));
}

json_t *wsm__settings_json(const struct wsm_settings *s)
{
	json_t *doc = json_object();
	size_t i;
	int bad = !doc;

	for (i = 0; !bad && i < sizeof(int_options) / sizeof(int_options[0]);
	     i++) {
		const struct int_option *o = &int_options[i];
		int64_t v = *(const int64_t *)((const char *)s + o->offset);

		if (o->key == WSM_OPT_SESSION_LIMIT_POLICY)
			bad = json_object_set_new(doc, o->json_name,
				json_string(v == WSM_LIMIT_REJECT
						    ? "reject"
						    : "evict_oldest"));
		else
			bad = json_object_set_new(doc, o->json_name,
						  json_integer((json_int_t)v));
	}
	if (bad ||
	    json_object_set_new(doc, "pathPrefix", json_string(s->path_prefix)) ||
	    json_object_set_new(doc, "protocolName",
				json_string(s->protocol_name)) ||
	    json_object_set_new(doc, "originAllow",
				json_string(s->origin_allow)) ||
	    json_object_set_new(doc, "clusterRedis",
				json_string(s->cluster_redis)) ||
	    json_object_set_new(doc, "clusterNodeId",
				json_string(s->cluster_node_id)) ||
	    json_object_set_new(doc, "clusterKeyPrefix",
				json_string(s->cluster_prefix))) {
		json_decref(doc);
		return NULL;
	}
	for (i = 0; i < sizeof(str_options) / sizeof(str_options[0]); i++) {
		const struct str_option *o = &str_options[i];

		if (o->json_name &&
		    json_object_set_new(doc, o->json_name,
					json_string((const char *)s +
						    o->offset))) {
			json_decref(doc);
			return NULL;
		}
	}
	return doc;
}

wsm_config_t *wsm_config_new(void)
{
	wsm_config_t *cfg = malloc(sizeof(*cfg));

	if (cfg)
		wsm__settings_defaults(&cfg->s);
	return cfg;
}

void wsm_config_free(wsm_config_t *cfg)
{
	if (cfg)
		wsm__settings_wipe(&cfg->s);
	free(cfg);
}

int wsm_config_set_int(wsm_config_t *cfg, wsm_option_t opt, int64_t value)
{
	const struct int_option *o = find_int(opt);

	if (!cfg)
		return wsm__fail(WSM_EINVAL, "no configuration (NULL)");
	if (!o)
		return wsm__fail(WSM_EOPTION, "option %d is not an integer option",
				 (int)opt);
#ifndef WSM_WITH_CLUSTER
	if (is_cluster_option(opt))
		return wsm__fail(WSM_ENOCLUSTER, "%s: this libwsm was built "
				 "without cluster mode (no hiredis)",
				 o->enum_name);
#endif
	if (value < o->min || value > o->max)
		return wsm__fail(WSM_ERANGE, "%s: %lld is outside %lld..%lld",
				 o->enum_name, (long long)value,
				 (long long)o->min, (long long)o->max);
	*field(&cfg->s, o) = value;
	wsm__detail("%s", "");
	return WSM_OK;
}

int wsm_option_bounds(wsm_option_t opt, int64_t *min, int64_t *max,
		      int64_t *def)
{
	const struct int_option *o = find_int(opt);

	if (!o)
		return WSM_EOPTION;
	if (min)
		*min = o->min;
	if (max)
		*max = o->max;
	if (def)
		*def = o->def;
	return WSM_OK;
}

/* RFC 3986 path characters, without '%': lws hands us decoded paths. */
static bool prefix_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || strchr("-._~!$&'()*+,;=:@/", ch);
}

static bool protocol_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
}

/* Origins are "scheme://host[:port]"; the list separates them with ','. */
static bool origin_char(unsigned char ch)
{
	return ch > ' ' && ch < 0x7f;
}

static bool all_chars(const char *s, bool (*ok)(unsigned char))
{
	for (; *s; s++)
		if (!ok((unsigned char)*s))
			return false;
	return true;
}

#ifdef WSM_WITH_CLUSTER
/* A key prefix: no space, no control, no '{' '}' (the session's tag). */
static bool prefix_key_char(unsigned char ch)
{
	return ch > ' ' && ch < 0x7f && ch != '{' && ch != '}';
}
#endif

static int set_cluster_str(struct wsm_settings *s, wsm_option_t opt,
			   const char *value, size_t len)
{
#ifdef WSM_WITH_CLUSTER
	switch (opt) {
	case WSM_OPT_CLUSTER_REDIS:
		if (len > WSM_REDIS_LIST_LIMIT)
			return wsm__fail(WSM_ERANGE, "WSM_OPT_CLUSTER_REDIS: "
					 "longer than %d bytes",
					 WSM_REDIS_LIST_LIMIT);
		if (len && wsm__redis_check_list(value))
			return wsm__fail(WSM_ERANGE, "WSM_OPT_CLUSTER_REDIS: "
					 "\"redis[s]://host[:port][/db]\" or "
					 "\"unix:/path[?db=N]\", separated "
					 "by ','");
		memcpy(s->cluster_redis, value, len + 1);
		return WSM_OK;
	case WSM_OPT_CLUSTER_NODE_ID:
		if (len > WSM_NODE_ID_LIMIT || !all_chars(value, protocol_char))
			return wsm__fail(WSM_ERANGE, "WSM_OPT_CLUSTER_NODE_ID: "
					 "up to %d of A-Z a-z 0-9 . _ -",
					 WSM_NODE_ID_LIMIT);
		memcpy(s->cluster_node_id, value, len + 1);
		return WSM_OK;
	case WSM_OPT_CLUSTER_KEY_PREFIX:
		if (len > WSM_KEY_PREFIX_LIMIT ||
		    !all_chars(value, prefix_key_char))
			return wsm__fail(WSM_ERANGE, "WSM_OPT_CLUSTER_KEY_PREFIX: "
					 "up to %d printable ASCII characters, "
					 "no space, '{' or '}'",
					 WSM_KEY_PREFIX_LIMIT);
		memcpy(s->cluster_prefix, value, len + 1);
		return WSM_OK;
	default: {
		const struct str_option *o = find_str(opt);
		const char *p;

		if (len >= o->size)
			return wsm__fail(WSM_ERANGE, "%s: longer than %zu bytes",
					 o->enum_name, o->size - 1);
		/* Sent to Redis as one argument, or opened as a file. */
		for (p = value; *p; p++)
			if ((unsigned char)*p < ' ' || *p == 0x7f)
				return wsm__fail(WSM_ERANGE, "%s: a control "
						 "character", o->enum_name);
		memcpy((char *)s + o->offset, value, len + 1);
		return WSM_OK;
	}
	}
#else
	(void)s;
	(void)len;
	if (opt == WSM_OPT_CLUSTER_REDIS && !*value)
		return WSM_OK; /* off is off */
	return wsm__fail(WSM_ENOCLUSTER, "%s: this libwsm was built without "
			 "cluster mode (no hiredis)", wsm__option_name(opt));
#endif
}

int wsm_config_set_str(wsm_config_t *cfg, wsm_option_t opt, const char *value)
{
	size_t len;

	if (!cfg || !value)
		return wsm__fail(WSM_EINVAL, "%s is NULL",
				 cfg ? "the value" : "the configuration");
	len = strnlen(value, WSM_FILE_LIMIT + 1);
	switch (opt) {
	case WSM_OPT_ORIGIN_ALLOW:
		if (len > WSM_ORIGIN_LIMIT)
			return wsm__fail(WSM_ERANGE,
					 "WSM_OPT_ORIGIN_ALLOW: longer than %d bytes",
					 WSM_ORIGIN_LIMIT);
		if (!all_chars(value, origin_char))
			return wsm__fail(WSM_ERANGE,
					 "WSM_OPT_ORIGIN_ALLOW: only printable "
					 "ASCII without spaces, Origins "
					 "separated by ','");
		memcpy(cfg->s.origin_allow, value, len + 1);
		break;
	case WSM_OPT_PATH_PREFIX:
		if (len < 2 || len > WSM_PREFIX_LIMIT)
			return wsm__fail(WSM_ERANGE,
					 "WSM_OPT_PATH_PREFIX: 2 to %d bytes",
					 WSM_PREFIX_LIMIT);
		if (value[0] != '/' || value[len - 1] != '/')
			return wsm__fail(WSM_ERANGE,
					 "WSM_OPT_PATH_PREFIX: must start and "
					 "end with '/' (the session id follows "
					 "it)");
		if (!all_chars(value, prefix_char))
			return wsm__fail(WSM_ERANGE,
					 "WSM_OPT_PATH_PREFIX: only RFC 3986 "
					 "path characters, no '%%'");
		memcpy(cfg->s.path_prefix, value, len + 1);
		break;
	case WSM_OPT_PROTOCOL_NAME:
		if (len < 1 || len > WSM_PROTOCOL_NAME_LIMIT ||
		    !all_chars(value, protocol_char))
			return wsm__fail(WSM_ERANGE,
					 "WSM_OPT_PROTOCOL_NAME: 1 to %d of "
					 "A-Z a-z 0-9 . _ -",
					 WSM_PROTOCOL_NAME_LIMIT);
		memcpy(cfg->s.protocol_name, value, len + 1);
		break;
	case WSM_OPT_CLUSTER_REDIS:
	case WSM_OPT_CLUSTER_NODE_ID:
	case WSM_OPT_CLUSTER_KEY_PREFIX:
	case WSM_OPT_CLUSTER_USER:
	case WSM_OPT_CLUSTER_PASSWORD:
	case WSM_OPT_CLUSTER_TLS_CA_FILE:
	case WSM_OPT_CLUSTER_TLS_CA_PATH:
	case WSM_OPT_CLUSTER_TLS_CERT_FILE:
	case WSM_OPT_CLUSTER_TLS_KEY_FILE:
	case WSM_OPT_CLUSTER_SENTINEL_USER:
	case WSM_OPT_CLUSTER_SENTINEL_PASSWORD:
	{
		int rc = set_cluster_str(&cfg->s, opt, value, len);

		if (rc)
			return rc;
		break;
	}
	default:
		return wsm__fail(WSM_EOPTION, "%s (%d) is not a string option",
				 wsm__option_name(opt), (int)opt);
	}
	wsm__detail("%s", "");
	return WSM_OK;
}

int wsm_config_set_authorize_cb(wsm_config_t *cfg, wsm_authorize_cb cb,
				void *user)
{
	if (!cfg)
		return WSM_EINVAL;
	cfg->s.authorize = cb;
	cfg->s.authorize_user = cb ? user : NULL;
	return WSM_OK;
}

int wsm_config_set_event_cb(wsm_config_t *cfg, wsm_event_cb cb, void *user)
{
	if (!cfg)
		return WSM_EINVAL;
	cfg->s.on_event = cb;
	cfg->s.event_user = cb ? user : NULL;
	return WSM_OK;
}

int wsm_config_set_refused_cb(wsm_config_t *cfg, wsm_refused_cb cb, void *user)
{
	if (!cfg)
		return WSM_EINVAL;
	cfg->s.on_refused = cb;
	cfg->s.refused_user = cb ? user : NULL;
	return WSM_OK;
}
