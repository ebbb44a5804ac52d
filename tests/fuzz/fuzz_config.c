/*
 * Target 3: configuration. A script of wsm_config_set_int/set_str calls with
 * fuzzed option keys and values (and NULL arguments), each compared with the
 * ranges and string rules documented in wsm(7), kept in a shadow copy; then
 * wsm_manager_new(), which must refuse exactly the documented cross-check
 * failures and otherwise serve the configured values (status JSON, protocol
 * entry), holding its baseline bytes only.
 *
 * Input: a sequence of operations, each [op: 1] then its arguments:
 *   op % 6 == 0  set_int: [option selector: 1][value selector: 1][value: 8]
 *   op % 6 == 1  set_str: [option selector: 1] value up to the next NUL
 *   op % 6 == 2  NULL arguments
 *   op % 6 == 3  wsm_manager_new() now
 *   op % 6 == 4  set_str of a string built from a repeated byte: [option
 *                selector: 1][byte: 1][length: 2]
 *   op % 6 == 5  wsm_option_bounds() of a fuzzed key
 * and a final wsm_manager_new().
 */
#include <jansson.h>

#include "fuzz.h"

#include "../../lib/internal.h"

/* The integer options of wsm(7), "Options": key, range, default. */
static const struct ref_opt {
	int key;
	int64_t min, max, def;
	const char *json; /* name in the status document's config; NULL: not
			   * an integer there (the policy, a string) */
} ref_opts[] = {
	{ 100, 1, 65535, 5, "maxConnectionsPerSession" },
	{ 101, 1, 1000000, 10000, "maxConnections" },
	{ 102, 0, 1, 0, NULL },
	{ 103, 0, 1000000, 0, "maxConnectionsPerIp" },
	{ 104, 0, 1000000, 0, "maxUpgradeRate" },
	{ 105, 0, 1, 0, "announcedOnly" },
	{ 200, 10, 2592000000LL, 300000, "maxLifetimeMs" },
	{ 201, 10, 86400000, 30000, "pingIntervalMs" },
	{ 202, 11, 172800000, 120000, "staleTimeoutMs" },
	{ 203, 10, 86400000, 60000, "sweepIntervalMs" },
	{ 204, 1000, 60000, 5000, "closeGraceMs" },
	{ 205, 0, 50, 10, "lifetimeJitterPercent" },
	{ 206, 0, 1, 0, "appPing" },
	{ 400, 1, 128, 64, "sessionIdMaxLen" },
	{ 500, 16, 1048576, 1024, "maxMessageSize" },
	{ 501, 128, 65536, 128, "rxBufferSize" },
	{ 502, 1, 4096, 32, "maxQueuedMessages" },
	{ 503, 1, 65536, 1024, "maxTextLen" },
	{ 504, 2, 1048576, 16384, "maxMetadataLen" },
	{ 505, 1, 16777216, 65536, "inboxCapacity" },
	{ 506, 1024, 67108864, 262144, "maxQueuedBytes" },
	{ 600, 0, 86400000, 60000, "retentionMs" },
	{ 601, 0, 1000000, 10000, "retainMaxSessions" },
	{ 602, 0, 1073741824, 16777216, "retainMaxBytes" },
	{ 703, 10, 600000, 2000, "clusterTimeoutMs" },
	{ 704, 10, 600000, 5000, "clusterRetryMaxMs" },
	{ 705, 1, 16777216, 65536, "clusterOutboxMessages" },
	{ 706, 1024, 1073741824, 16777216, "clusterOutboxBytes" },
	{ 707, 0, 1024, 0, "clusterHistory" },
};
#define NOPTS (sizeof(ref_opts) / sizeof(ref_opts[0]))

/* Keys that are no integer option: string options, gaps, odd values. */
static const int other_keys[] = { 300, 301, 302, 0, -1, 99, 105, 199, 207,
				  299, 303, 401, 507, 603, 700, 701, 702, 707,
				  1000, INT32_MAX, INT32_MIN };
#define NOTHER (sizeof(other_keys) / sizeof(other_keys[0]))

struct shadow {
	int64_t v[NOPTS];
	char prefix[256], protocol[128], origin[1100];
};

static int ref_index(int key)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (ref_opts[i].key == key)
			return (int)i;
	return -1;
}

static int pick_key(uint8_t sel)
{
	if (sel < 0xc0)
		return ref_opts[sel % NOPTS].key;
	return other_keys[sel % NOTHER];
}

static int64_t pick_value(int key, uint8_t sel, uint64_t raw)
{
	int i = ref_index(key);
	int64_t lo = i >= 0 ? ref_opts[i].min : 0, hi = i >= 0 ? ref_opts[i].max : 0;

	switch (sel % 8) {
	case 0: return lo - 1;
	case 1: return lo;
	case 2: return hi;
	case 3: return hi + 1;
	case 4: return lo + (int64_t)(raw % (uint64_t)(hi - lo + 1));
	case 5: return (int64_t)(raw % 2000000) - 1000;
	default: return (int64_t)raw;
	}
}

/* wsm(7): the rules of the string options. */
static bool prefix_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (ch && strchr("-._~!$&'()*+,;=:@/", ch));
}

static int ref_str(int key, const char *v)
{
	size_t n = strlen(v), i;

	switch (key) {
	case WSM_OPT_PATH_PREFIX:
		if (n < 2 || n > 200 || v[0] != '/' || v[n - 1] != '/')
			return WSM_ERANGE;
		for (i = 0; i < n; i++)
			if (!prefix_char((unsigned char)v[i]))
				return WSM_ERANGE;
		return WSM_OK;
	case WSM_OPT_PROTOCOL_NAME:
		if (n < 1 || n > 64)
			return WSM_ERANGE;
		for (i = 0; i < n; i++)
			if (!fz_ref_id_char((unsigned char)v[i]) && v[i] != '.')
				return WSM_ERANGE;
		return WSM_OK;
	case WSM_OPT_ORIGIN_ALLOW:
		if (n > 1024)
			return WSM_ERANGE;
		for (i = 0; i < n; i++)
			if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f)
				return WSM_ERANGE;
		return WSM_OK;
	default:
		return WSM_EOPTION;
	}
}

static int pick_str_key(uint8_t sel)
{
	static const int keys[] = { 300, 301, 302, 300, 301, 302, 100, 0, 303, -7 };

	return keys[sel % (sizeof(keys) / sizeof(keys[0]))];
}

static void do_set_str(wsm_config_t *cfg, struct shadow *sh, int key,
		       const char *v)
{
	int want = ref_str(key, v), rc = wsm_config_set_str(cfg, (wsm_option_t)key, v);

	FZ_CHECK(rc == want, "set_str(%d, \"%.60s\" (%zu bytes)) = %d, wsm(7) says %d",
		 key, v, strlen(v), rc, want);
	if (rc)
		return;
	if (key == WSM_OPT_PATH_PREFIX)
		snprintf(sh->prefix, sizeof(sh->prefix), "%s", v);
	else if (key == WSM_OPT_PROTOCOL_NAME)
		snprintf(sh->protocol, sizeof(sh->protocol), "%s", v);
	else
		snprintf(sh->origin, sizeof(sh->origin), "%s", v);
}

static void check_bounds(int key)
{
	int64_t lo = -5, hi = -5, def = -5;
	int i = ref_index(key), rc = wsm_option_bounds((wsm_option_t)key, &lo, &hi, &def);

	if (i < 0) {
		FZ_CHECK(rc == WSM_EOPTION && lo == -5 && hi == -5 && def == -5,
			 "bounds of %d: %d", key, rc);
		return;
	}
	FZ_CHECK(rc == WSM_OK && lo == ref_opts[i].min && hi == ref_opts[i].max &&
			 def == ref_opts[i].def,
		 "bounds of %d: %lld..%lld (%lld), wsm(7) says %lld..%lld (%lld)",
		 key, (long long)lo, (long long)hi, (long long)def,
		 (long long)ref_opts[i].min, (long long)ref_opts[i].max,
		 (long long)ref_opts[i].def);
	FZ_CHECK(wsm_option_bounds((wsm_option_t)key, NULL, NULL, NULL) == WSM_OK,
		 "NULL outputs");
}

static int64_t sv(const struct shadow *sh, int key)
{
	return sh->v[ref_index(key)];
}

/*
 * Protocol names are kept for the life of the process (lws holds on to them):
 * fold fuzzed names onto a few, so a long run does not grow without bound.
 */
static void tame_protocol(wsm_config_t *cfg, struct shadow *sh)
{
	char name[16];
	unsigned h = 0;
	const char *p;

	if (!strcmp(sh->protocol, "wsm"))
		return;
	for (p = sh->protocol; *p; p++)
		h = h * 31 + (unsigned char)*p;
	snprintf(name, sizeof(name), "fz-%u", h % 8);
	do_set_str(cfg, sh, WSM_OPT_PROTOCOL_NAME, name);
}

static void check_manager(wsm_config_t *cfg, struct shadow *sh)
{
	bool want_ok = sv(sh, 202) > sv(sh, 201) && sv(sh, 100) <= sv(sh, 101) &&
		       !(sv(sh, 105) && !sv(sh, 600));
	const struct lws_protocols *proto;
	wsm_manager_t *m;
	wsm_metrics_t s;
	json_t *doc, *conf;
	char *buf;
	int err = 12345, n;
	size_t i;

	tame_protocol(cfg, sh);
	m = wsm_manager_new(cfg, &err);
	if (!want_ok) {
		FZ_CHECK(!m && err == WSM_ERANGE,
			 "stale %lld ping %lld per-session %lld max %lld: err %d",
			 (long long)sv(sh, 202), (long long)sv(sh, 201),
			 (long long)sv(sh, 100), (long long)sv(sh, 101), err);
		return;
	}
	FZ_CHECK(m && err == WSM_OK, "wsm_manager_new refused a valid config: %d", err);
	/* NULL err is allowed too. */
	{
		wsm_manager_t *m2 = wsm_manager_new(cfg, NULL);

		FZ_CHECK(m2, "wsm_manager_new(cfg, NULL)");
		wsm_manager_destroy(m2);
	}
	proto = wsm_protocol(m);
	FZ_CHECK(proto && !strcmp(proto->name, sh->protocol) &&
			 proto->rx_buffer_size == (size_t)sv(sh, 501),
		 "protocol entry: \"%s\" rx %zu, want \"%s\" rx %lld",
		 proto ? proto->name : "(null)", proto ? proto->rx_buffer_size : 0,
		 sh->protocol, (long long)sv(sh, 501));
	FZ_CHECK(!memcmp(&m->cfg.path_prefix, sh->prefix, strlen(sh->prefix) + 1) &&
			 !strcmp(m->cfg.origin_allow, sh->origin),
		 "strings not copied");
	memset(&s, 0, sizeof(s));
	s.size = sizeof(s);
	FZ_CHECK(wsm_metrics(m, &s) == WSM_OK && s.connections == 0 &&
			 s.sessions == 0 && s.held_bytes > 0 && s.held_bytes < 4096,
		 "fresh manager: %llu connections, %llu held",
		 (unsigned long long)s.connections, (unsigned long long)s.held_bytes);

	n = wsm_status_json(m, NULL, 0);
	FZ_CHECK(n > 0, "status length %d", n);
	buf = malloc((size_t)n + 1);
	if (!buf)
		abort();
	FZ_CHECK(wsm_status_json(m, buf, (size_t)n + 1) == n, "status length changed");
	doc = json_loads(buf, 0, NULL);
	conf = json_object_get(doc, "config");
	FZ_CHECK(conf, "status: %s", buf);
	for (i = 0; i < NOPTS; i++)
		if (ref_opts[i].json)
			FZ_CHECK(json_integer_value(json_object_get(conf, ref_opts[i].json)) ==
					 sh->v[i],
				 "%s in status: %s", ref_opts[i].json, buf);
	FZ_CHECK(!strcmp(json_string_value(json_object_get(conf, "pathPrefix")),
			 sh->prefix),
		 "pathPrefix: %s", buf);
	FZ_CHECK(!strcmp(json_string_value(json_object_get(conf, "protocolName")),
			 sh->protocol),
		 "protocolName: %s", buf);
	FZ_CHECK(!strcmp(json_string_value(json_object_get(conf, "originAllow")),
			 sh->origin),
		 "originAllow: %s", buf);
	FZ_CHECK(!strcmp(json_string_value(json_object_get(conf, "sessionLimitPolicy")),
			 sv(sh, 102) ? "evict_oldest" : "reject"),
		 "policy: %s", buf);
	json_decref(doc);
	free(buf);
	wsm_manager_destroy(m);
	/* A destroyed handle is refused, not used. */
	FZ_CHECK(wsm_status_json(m, NULL, 0) == WSM_ESHUTDOWN, "destroyed handle");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	wsm_config_t *cfg = wsm_config_new();
	struct shadow sh;
	size_t i, ops = 0;

	FZ_CHECK(cfg, "wsm_config_new");
	for (i = 0; i < NOPTS; i++)
		sh.v[i] = ref_opts[i].def;
	snprintf(sh.prefix, sizeof(sh.prefix), "/api/images_mvp/progress/");
	snprintf(sh.protocol, sizeof(sh.protocol), "wsm");
	sh.origin[0] = '\0';

	while (in.left && ops++ < 64) {
		uint8_t op = fz_u8(&in);

		switch (op % 6) {
		case 0: {
			int key = pick_key(fz_u8(&in)), idx = ref_index(key), rc, want;
			uint8_t vsel = fz_u8(&in);
			int64_t v = pick_value(key, vsel, fz_u64(&in));

			want = idx < 0 ? WSM_EOPTION
			       : v < ref_opts[idx].min || v > ref_opts[idx].max
				       ? WSM_ERANGE
				       : WSM_OK;
			rc = wsm_config_set_int(cfg, (wsm_option_t)key, v);
			FZ_CHECK(rc == want, "set_int(%d, %lld) = %d, wsm(7) says %d",
				 key, (long long)v, rc, want);
			if (!rc)
				sh.v[idx] = v;
			break;
		}
		case 1: {
			int key = pick_str_key(fz_u8(&in));
			char *v = fz_field(&in);

			do_set_str(cfg, &sh, key, v);
			free(v);
			break;
		}
		case 2: {
			uint8_t k = fz_u8(&in);

			FZ_CHECK(wsm_config_set_str(cfg, (wsm_option_t)pick_str_key(k),
						    NULL) == WSM_EINVAL, "NULL value");
			FZ_CHECK(wsm_config_set_str(NULL, WSM_OPT_PATH_PREFIX, "/a/") ==
					 WSM_EINVAL, "NULL cfg");
			FZ_CHECK(wsm_config_set_int(NULL, (wsm_option_t)pick_key(k), 1) ==
					 WSM_EINVAL, "NULL cfg");
			break;
		}
		case 3:
			check_manager(cfg, &sh);
			break;
		case 4: {
			int key = pick_str_key(fz_u8(&in));
			uint8_t ch = fz_u8(&in);
			size_t len = (size_t)fz_u8(&in) << 8;
			char *v;

			len |= fz_u8(&in);
			len %= 1100; /* across every length limit */
			v = malloc(len + 1);
			if (!v)
				abort();
			memset(v, ch ? ch : 'a', len);
			v[len] = '\0';
			/* Slashes at both ends give the prefix a chance. */
			if (len >= 2 && (op & 0x40)) {
				v[0] = '/';
				v[len - 1] = '/';
			}
			do_set_str(cfg, &sh, key, v);
			free(v);
			break;
		}
		default: {
			int key = (int)(fz_u64(&in) >> 32);

			check_bounds(op & 0x80 ? key : pick_key((uint8_t)key));
			break;
		}
		}
	}
	check_manager(cfg, &sh);
	wsm_config_free(cfg);
	wsm_config_free(NULL);
	return 0;
}
