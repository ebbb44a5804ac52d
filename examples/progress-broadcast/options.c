/* Command line of progress-broadcast; see options.h. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libwebsockets.h> /* struct lws_protocols */

#include "options.h"

#define PROG "progress-broadcast"
#define MAX_DURATION_S 31536000 /* a year */
#define DEFAULT_MAX_JOBS 16
#define MAX_MAX_JOBS 1024
#define DEFAULT_DRAIN_MS 2000
#define MAX_DRAIN_MS 3600000 /* wsm_drain()'s own bound */
#define MAX_TOKEN_LEN 256

/* How a manager option is given on the command line. */
enum kind {
	KIND_INT,    /* a decimal integer */
	KIND_POLICY, /* "reject" or "evict-oldest" */
	KIND_STRING
};

/* Every libwsm manager option, by the name of its flag. */
static const struct manager_flag {
	const char *name;
	wsm_option_t opt;
	enum kind kind;
	const char *arg; /* shown in --help */
	const char *help;
} manager_flags[] = {
	{ "max-per-session", WSM_OPT_MAX_CONNECTIONS_PER_SESSION, KIND_INT,
	  "N", "connections one session may have" },
	{ "max-connections", WSM_OPT_MAX_CONNECTIONS, KIND_INT, "N",
	  "connections the manager may hold" },
	{ "max-per-ip", WSM_OPT_MAX_CONNECTIONS_PER_IP, KIND_INT, "N",
	  "connections one peer address may hold, 0: no cap" },
	{ "max-upgrade-rate", WSM_OPT_MAX_UPGRADE_RATE, KIND_INT, "N",
	  "upgrades admitted per second, 0: no limit" },
	{ "announced-only", WSM_OPT_ANNOUNCED_ONLY, KIND_INT, "0|1",
	  "1: WebSockets for this server's jobs only" },
	{ "limit-policy", WSM_OPT_SESSION_LIMIT_POLICY, KIND_POLICY, "P",
	  "full session: reject (429) or evict-oldest" },
	{ "max-lifetime-ms", WSM_OPT_MAX_LIFETIME_MS, KIND_INT, "MS",
	  "age at which a connection is closed with 4001" },
	{ "ping-interval-ms", WSM_OPT_PING_INTERVAL_MS, KIND_INT, "MS",
	  "time between pings" },
	{ "stale-timeout-ms", WSM_OPT_STALE_TIMEOUT_MS, KIND_INT, "MS",
	  "silence before closing with 4000" },
	{ "sweep-interval-ms", WSM_OPT_SWEEP_INTERVAL_MS, KIND_INT, "MS",
	  "time between safety-net sweeps" },
	{ "close-grace-ms", WSM_OPT_CLOSE_GRACE_MS, KIND_INT, "MS",
	  "longest a close may take before a hard drop" },
	{ "lifetime-jitter-percent", WSM_OPT_LIFETIME_JITTER_PERCENT, KIND_INT,
	  "PCT", "end of the lifetime over which closes are spread" },
	{ "app-ping", WSM_OPT_APP_PING, KIND_INT, "0|1",
	  "1: JSON pings the client must echo" },
	{ "session-id-max-len", WSM_OPT_SESSION_ID_MAX_LEN, KIND_INT, "N",
	  "longest session id, in bytes" },
	{ "max-message-size", WSM_OPT_MAX_MESSAGE_SIZE, KIND_INT, "BYTES",
	  "largest message a client may send" },
	{ "rx-buffer-size", WSM_OPT_RX_BUFFER_SIZE, KIND_INT, "BYTES",
	  "lws receive buffer of each connection" },
	{ "max-queued-messages", WSM_OPT_MAX_QUEUED_MESSAGES, KIND_INT, "N",
	  "messages waiting per connection before 4004" },
	{ "max-queued-bytes", WSM_OPT_MAX_QUEUED_BYTES, KIND_INT, "BYTES",
	  "bytes waiting per connection before 4004" },
	{ "max-text-len", WSM_OPT_MAX_TEXT_LEN, KIND_INT, "BYTES",
	  "longest message, stage or error of a broadcast" },
	{ "max-metadata-len", WSM_OPT_MAX_METADATA_LEN, KIND_INT, "BYTES",
	  "longest metadata of a complete broadcast" },
	{ "inbox-capacity", WSM_OPT_INBOX_CAPACITY, KIND_INT, "N",
	  "calls from job threads waiting for the loop" },
	{ "retention-ms", WSM_OPT_RETENTION_MS, KIND_INT, "MS",
	  "how long an idle session is kept for replay" },
	{ "retain-max-sessions", WSM_OPT_RETAIN_MAX_SESSIONS, KIND_INT, "N",
	  "sessions without connections kept for replay" },
	{ "retain-max-bytes", WSM_OPT_RETAIN_MAX_BYTES, KIND_INT, "BYTES",
	  "bytes of replay state, all sessions together" },
	{ "path-prefix", WSM_OPT_PATH_PREFIX, KIND_STRING, "PATH",
	  "URL path of the WebSocket upgrades" },
	{ "protocol-name", WSM_OPT_PROTOCOL_NAME, KIND_STRING, "NAME",
	  "lws protocol and WebSocket subprotocol name" },
	{ "origin-allow", WSM_OPT_ORIGIN_ALLOW, KIND_STRING, "LIST",
	  "comma-separated Origins admitted, others 403" },
	{ "redis", WSM_OPT_CLUSTER_REDIS, KIND_STRING, "URL",
	  "redis[s]://host[:port][/db] or unix:/path, ..." },
	{ "redis-user", WSM_OPT_CLUSTER_USER, KIND_STRING, "USER",
	  "ACL user (password: --redis-password-file)" },
	{ "redis-sentinel-user", WSM_OPT_CLUSTER_SENTINEL_USER, KIND_STRING,
	  "USER", "the Sentinels' ACL user (redis-sentinel://)" },
	{ "redis-tls-ca", WSM_OPT_CLUSTER_TLS_CA_FILE, KIND_STRING, "FILE",
	  "CAs (PEM) a rediss:// server must chain to" },
	{ "redis-tls-ca-path", WSM_OPT_CLUSTER_TLS_CA_PATH, KIND_STRING, "DIR",
	  "the same as a hashed directory" },
	{ "redis-tls-cert", WSM_OPT_CLUSTER_TLS_CERT_FILE, KIND_STRING, "FILE",
	  "client certificate (PEM) for rediss://" },
	{ "redis-tls-key", WSM_OPT_CLUSTER_TLS_KEY_FILE, KIND_STRING, "FILE",
	  "its private key (PEM)" },
	{ "cluster-replicas", WSM_OPT_CLUSTER_REPLICAS, KIND_INT, "N",
	  "replicas that must hold a broadcast (WAIT)" },
	{ "cluster-probe-ms", WSM_OPT_CLUSTER_PROBE_MS, KIND_INT, "MS",
	  "a silent Redis subscriber is found within it" },
	{ "node-id", WSM_OPT_CLUSTER_NODE_ID, KIND_STRING, "ID",
	  "this node's name in the cluster" },
	{ "cluster-key-prefix", WSM_OPT_CLUSTER_KEY_PREFIX, KIND_STRING,
	  "PREFIX", "start of every Redis key and channel" },
	{ "cluster-timeout-ms", WSM_OPT_CLUSTER_TIMEOUT_MS, KIND_INT, "MS",
	  "longest a Redis command may take" },
	{ "cluster-retry-max-ms", WSM_OPT_CLUSTER_RETRY_MAX_MS, KIND_INT, "MS",
	  "bound of the reconnect backoff" },
	{ "cluster-outbox-messages", WSM_OPT_CLUSTER_OUTBOX_MESSAGES, KIND_INT,
	  "N", "errors and completes waiting for Redis" },
	{ "cluster-outbox-bytes", WSM_OPT_CLUSTER_OUTBOX_BYTES, KIND_INT,
	  "BYTES", "bytes waiting for Redis, progress too" },
	{ "cluster-history", WSM_OPT_CLUSTER_HISTORY, KIND_INT, "N",
	  "messages kept per session, for exact resume" },
};
#define MANAGER_FLAGS (sizeof(manager_flags) / sizeof(manager_flags[0]))

enum {
	OPT_DURATION = 256,
	OPT_DEMO,
	OPT_MAX_JOBS,
	OPT_DRAIN_MS,
	OPT_STATE_DIR,
	OPT_ADMIN_TOKEN,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_REDIS_PASSWORD_FILE,
	OPT_SENTINEL_PASSWORD_FILE,
	OPT_MANAGER /* + index in manager_flags */
};
#define OWN_FLAGS 12 /* entries of longopts before the manager's */
#define MAX_PASSWORD_FILE 4096

static const char *policy_name(int64_t v)
{
	return v == WSM_LIMIT_EVICT_OLDEST ? "evict-oldest" : "reject";
}

/*
 * The library's defaults of its string options: there is no bounds call for
 * them, so ask a manager made from a default configuration. The path prefix
 * is in its status document, the protocol name in its protocol entry.
 */
static void string_defaults(char *prefix, size_t prefix_size, char *name,
			    size_t name_size)
{
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	char doc[2048];
	int err;
	json_t *root = NULL;
	const char *p;

	m = cfg ? wsm_manager_new(cfg, &err) : NULL;
	snprintf(prefix, prefix_size, "?");
	snprintf(name, name_size, "?");
	wsm_config_free(cfg);
	if (!m)
		return;
	snprintf(name, name_size, "%s", wsm_protocol(m)->name);
	if (wsm_status_json(m, doc, sizeof(doc)) < (int)sizeof(doc) &&
	    (root = json_loads(doc, 0, NULL)) &&
	    (p = json_string_value(json_object_get(
		     json_object_get(root, "config"), "pathPrefix"))))
		snprintf(prefix, prefix_size, "%s", p);
	json_decref(root);
	wsm_manager_destroy(m);
}

static void usage(FILE *f)
{
	char prefix[256], name[80], flag[48], range[300];
	int64_t min, max, def;
	size_t i;

	fprintf(f,
"usage: " PROG " [options]\n"
"\n"
"An HTTP and WebSocket server on 127.0.0.1 that runs simulated image jobs\n"
"and broadcasts their progress to browsers with libwsm. Open the page it\n"
"serves and press \"Start job\".\n"
"\n"
"  -p, --port N                 listen on port N (default %d; 0: any free\n"
"                               port, printed at startup)\n"
"      --tls-cert FILE          serve https and wss with this PEM certificate\n"
"      --tls-key FILE           and this PEM private key (both or neither)\n"
"      --admin-token TOKEN      bearer token of POST .../websocket/cleanup/ID;\n"
"                               default $WSM_ADMIN_TOKEN, which keeps it out\n"
"                               of ps; without either, cleanup answers 403\n"
"      --redis-password-file FILE\n"
"                               Redis's AUTH password, the file's first\n"
"                               line; default $WSM_REDIS_PASSWORD (never on\n"
"                               the command line, where ps shows it)\n"
"      --redis-sentinel-password-file FILE\n"
"                               the same for the Sentinels; default\n"
"                               $WSM_REDIS_SENTINEL_PASSWORD\n"
"      --state-dir DIR          keep a record of every job in DIR and, on\n"
"                               start, resume the jobs a previous run left\n"
"                               unfinished (default: no records)\n"
"      --max-jobs N             jobs running at once (default %d, 1..%d)\n"
"      --drain-ms MS            on SIGINT or SIGTERM, close the WebSockets\n"
"                               with 1001 spread over MS milliseconds\n"
"                               (default %d, 0..%d)\n"
"      --duration SECONDS       stop as on SIGTERM after SECONDS (default 0:\n"
"                               run until SIGINT or SIGTERM)\n"
"      --demo                   start a job with session id \"demo\" at startup\n"
"  -h, --help                   show this help and exit\n"
"\n"
"libwsm manager options (times in milliseconds; see wsm(7)):\n",
		OPTIONS_DEFAULT_PORT, DEFAULT_MAX_JOBS, MAX_MAX_JOBS,
		DEFAULT_DRAIN_MS, MAX_DRAIN_MS);

	string_defaults(prefix, sizeof(prefix), name, sizeof(name));
	for (i = 0; i < MANAGER_FLAGS; i++) {
		const struct manager_flag *mf = &manager_flags[i];

		snprintf(flag, sizeof(flag), "--%s %s", mf->name, mf->arg);
		if (mf->opt == WSM_OPT_ORIGIN_ALLOW)
			snprintf(range, sizeof(range), "default empty: any Origin");
		else if (mf->opt == WSM_OPT_CLUSTER_REDIS)
			snprintf(range, sizeof(range), "default empty: one node");
		else if (mf->opt == WSM_OPT_CLUSTER_NODE_ID)
			snprintf(range, sizeof(range),
				 "default host name and pid");
		else if (mf->opt == WSM_OPT_CLUSTER_KEY_PREFIX)
			snprintf(range, sizeof(range), "default wsm:");
		else if (mf->opt == WSM_OPT_CLUSTER_USER)
			snprintf(range, sizeof(range), "default: the default user");
		else if (mf->kind == KIND_STRING && mf->opt != WSM_OPT_PATH_PREFIX &&
			 mf->opt != WSM_OPT_PROTOCOL_NAME)
			snprintf(range, sizeof(range), "default none");
		else if (mf->kind == KIND_STRING)
			snprintf(range, sizeof(range), "default %s",
				 mf->opt == WSM_OPT_PATH_PREFIX ? prefix : name);
		else if (wsm_option_bounds(mf->opt, &min, &max, &def) != 0)
			snprintf(range, sizeof(range), "unknown to this libwsm");
		else if (mf->kind == KIND_POLICY)
			snprintf(range, sizeof(range), "default %s",
				 policy_name(def));
		else
			snprintf(range, sizeof(range),
				 "default %" PRId64 ", %" PRId64 "..%" PRId64,
				 def, min, max);
		/* Flags too long for their column get a line of their own. */
		if (strlen(flag) < 24)
			fprintf(f, "      %-24s %s\n", flag, mf->help);
		else
			fprintf(f, "      %s\n%31s%s\n", flag, "", mf->help);
		fprintf(f, "%31s(%s)\n", "", range);
	}
}

static int bad_usage(void)
{
	fprintf(stderr, "Try '" PROG " --help'.\n");
	return OPTIONS_BAD;
}

/* A whole decimal integer, or false. */
static bool parse_int(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return end != s && *end == '\0' && errno == 0;
}

static bool parse_in(const char *flag, const char *s, long long min,
		     long long max, long long *out)
{
	if (parse_int(s, out) && *out >= min && *out <= max)
		return true;
	fprintf(stderr, PROG ": --%s: '%s' is not an integer from %lld to %lld\n",
		flag, s, min, max);
	return false;
}

/*
 * A token as RFC 6750 lets a client send it (b64token): letters, digits and
 * "-._~+/", then optional "=" padding.
 */
static bool valid_token(const char *t)
{
	size_t n = strlen(t), i = 0;

	if (n == 0 || n > MAX_TOKEN_LEN)
		return false;
	while (i < n && (strchr("-._~+/", t[i]) ||
			 (t[i] >= '0' && t[i] <= '9') ||
			 (t[i] >= 'A' && t[i] <= 'Z') ||
			 (t[i] >= 'a' && t[i] <= 'z')))
		i++;
	if (i == 0)
		return false;
	while (i < n && t[i] == '=')
		i++;
	return i == n;
}

/*
 * The password of Redis's AUTH from a file (its first line) or the
 * environment, so that it is in neither the command line nor a URL.
 */
static int set_redis_password(const char *file, const char *env,
			      wsm_option_t opt, wsm_config_t *cfg)
{
	char buf[MAX_PASSWORD_FILE];
	const char *pw = getenv(env);
	size_t n;
	FILE *f;
	int rc;

	if (file) {
		if (!(f = fopen(file, "r"))) {
			fprintf(stderr, PROG ": %s: %s\n", file,
				strerror(errno));
			return OPTIONS_BAD;
		}
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		pw = buf;
	}
	if (!pw || !*pw)
		return OPTIONS_RUN;
	rc = wsm_config_set_str(cfg, opt, pw);
	memset(buf, 0, sizeof(buf));
	if (rc != 0) {
		/* The detail names the option, never the password. */
		fprintf(stderr, PROG ": a Redis password: %s (%s)\n",
			wsm_strerror(rc), wsm_error_detail());
		return OPTIONS_BAD;
	}
	return OPTIONS_RUN;
}

static int set_manager_option(const struct manager_flag *mf, const char *arg,
			      wsm_config_t *cfg, struct options *out)
{
	long long v;
	int rc;

	if (mf->kind == KIND_STRING) {
		rc = wsm_config_set_str(cfg, mf->opt, arg);
	} else if (mf->kind == KIND_POLICY) {
		if (!strcmp(arg, "reject"))
			v = WSM_LIMIT_REJECT;
		else if (!strcmp(arg, "evict-oldest"))
			v = WSM_LIMIT_EVICT_OLDEST;
		else {
			fprintf(stderr,
				PROG ": --%s: '%s' is neither reject nor "
				     "evict-oldest\n",
				mf->name, arg);
			return OPTIONS_BAD;
		}
		rc = wsm_config_set_int(cfg, mf->opt, v);
	} else if (!parse_int(arg, &v)) {
		fprintf(stderr, PROG ": --%s: '%s' is not an integer\n",
			mf->name, arg);
		return OPTIONS_BAD;
	} else {
		rc = wsm_config_set_int(cfg, mf->opt, v);
		if (rc == 0 && mf->opt == WSM_OPT_CLOSE_GRACE_MS)
			out->close_grace_ms = v;
	}
	if (rc != 0) {
		/* The detail names the option and the rule it broke. */
		fprintf(stderr, PROG ": --%s %s: %s (%s)\n", mf->name, arg,
			wsm_strerror(rc), wsm_error_detail());
		return OPTIONS_BAD;
	}
	return OPTIONS_RUN;
}

int options_parse(int argc, char **argv, struct options *out,
		  wsm_config_t *cfg)
{
	struct option longopts[OWN_FLAGS + MANAGER_FLAGS + 1] = {
		{ "port", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "demo", no_argument, NULL, OPT_DEMO },
		{ "max-jobs", required_argument, NULL, OPT_MAX_JOBS },
		{ "drain-ms", required_argument, NULL, OPT_DRAIN_MS },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "admin-token", required_argument, NULL, OPT_ADMIN_TOKEN },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "redis-password-file", required_argument, NULL,
		  OPT_REDIS_PASSWORD_FILE },
		{ "redis-sentinel-password-file", required_argument, NULL,
		  OPT_SENTINEL_PASSWORD_FILE },
		{ "help", no_argument, NULL, 'h' },
	};
	const char *password_file = NULL, *sentinel_password_file = NULL;
	long long v;
	size_t i;
	int c;

	for (i = 0; i < MANAGER_FLAGS; i++)
		longopts[OWN_FLAGS + i] = (struct option){
			manager_flags[i].name, required_argument, NULL,
			OPT_MANAGER + (int)i
		};

	memset(out, 0, sizeof(*out));
	out->port = OPTIONS_DEFAULT_PORT;
	out->max_jobs = DEFAULT_MAX_JOBS;
	out->drain_ms = DEFAULT_DRAIN_MS;
	if (wsm_option_bounds(WSM_OPT_CLOSE_GRACE_MS, NULL, NULL,
			      &out->close_grace_ms) != 0)
		out->close_grace_ms = 5000;

	while ((c = getopt_long(argc, argv, "hp:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return OPTIONS_DONE;
		case 'p':
			if (!parse_in("port", optarg, 0, 65535, &v))
				return OPTIONS_BAD;
			out->port = (int)v;
			break;
		case OPT_DURATION:
			if (!parse_in("duration", optarg, 0, MAX_DURATION_S, &v))
				return OPTIONS_BAD;
			out->duration_s = (unsigned)v;
			break;
		case OPT_DEMO:
			out->demo = true;
			break;
		case OPT_MAX_JOBS:
			if (!parse_in("max-jobs", optarg, 1, MAX_MAX_JOBS, &v))
				return OPTIONS_BAD;
			out->max_jobs = (unsigned)v;
			break;
		case OPT_DRAIN_MS:
			if (!parse_in("drain-ms", optarg, 0, MAX_DRAIN_MS, &v))
				return OPTIONS_BAD;
			out->drain_ms = v;
			break;
		case OPT_STATE_DIR:
			out->state_dir = optarg;
			break;
		case OPT_ADMIN_TOKEN:
			out->admin_token = optarg;
			break;
		case OPT_TLS_CERT:
			out->tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			out->tls_key = optarg;
			break;
		case OPT_REDIS_PASSWORD_FILE:
			password_file = optarg;
			break;
		case OPT_SENTINEL_PASSWORD_FILE:
			sentinel_password_file = optarg;
			break;
		default:
			if (c < OPT_MANAGER || c >= OPT_MANAGER + (int)MANAGER_FLAGS)
				return bad_usage();
			if (set_manager_option(&manager_flags[c - OPT_MANAGER],
					       optarg, cfg, out) != OPTIONS_RUN)
				return OPTIONS_BAD;
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n",
			argv[optind]);
		return bad_usage();
	}
	if (set_redis_password(password_file, "WSM_REDIS_PASSWORD",
			       WSM_OPT_CLUSTER_PASSWORD, cfg) != OPTIONS_RUN ||
	    set_redis_password(sentinel_password_file,
			       "WSM_REDIS_SENTINEL_PASSWORD",
			       WSM_OPT_CLUSTER_SENTINEL_PASSWORD,
			       cfg) != OPTIONS_RUN)
		return OPTIONS_BAD;
	if (!out->tls_cert != !out->tls_key) {
		fprintf(stderr, PROG ": --tls-cert and --tls-key go together\n");
		return bad_usage();
	}
	if (!out->admin_token) {
		const char *env = getenv("WSM_ADMIN_TOKEN");

		out->admin_token = env && *env ? env : NULL;
	}
	if (out->admin_token && !valid_token(out->admin_token)) {
		fprintf(stderr,
			PROG ": the admin token must be 1 to %d characters "
			     "of A-Z a-z 0-9 - . _ ~ + / (then = padding)\n",
			MAX_TOKEN_LEN);
		return OPTIONS_BAD;
	}
	return OPTIONS_RUN;
}
