/*
 * Redis addresses as a host writes them: "redis://10.0.0.5:6379/0",
 * "rediss://redis.internal" (TLS), "redis://[::1]/2",
 * "unix:/run/redis.sock?db=1", or a primary its Sentinels name,
 * "redis-sentinel://10.0.0.7:26379,10.0.0.8/mymaster/0" ("rediss-" for
 * TLS), comma-separated for several independent instances. A host name is
 * checked here and resolved later, off the service loop, on every connect
 * (resolve.c).
 */
#include <arpa/inet.h>
#include <string.h>

#include "cluster.h"

/* Decimal in [lo, hi] spanning exactly len bytes. */
static int number(const char *s, size_t len, unsigned lo, unsigned hi,
		  uint16_t *out)
{
	unsigned v = 0;
	size_t i;

	if (!len || len > 5)
		return WSM_EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return WSM_EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < lo || v > hi)
		return WSM_EINVAL;
	*out = (uint16_t)v;
	return WSM_OK;
}

static int parse_unix(const char *s, size_t len, struct wsm_redis_addr *a)
{
	const char *q = memchr(s, '?', len);
	size_t plen = q ? (size_t)(q - s) : len;

	if (!plen || s[0] != '/' || plen >= sizeof(a->path) ||
	    memchr(s, '\0', plen))
		return WSM_EINVAL;
	memcpy(a->path, s, plen);
	a->path[plen] = '\0';
	if (!q)
		return WSM_OK;
	if (len - plen < 5 || memcmp(q, "?db=", 4))
		return WSM_EINVAL;
	return number(q + 4, len - plen - 4, 0, 65535, &a->db);
}

/* Labels of letters, digits, '-' and '_' (service names), joined by dots. */
static bool host_name(const char *h)
{
	size_t label = 0, len = strlen(h);

	if (!len || len > 253 || h[0] == '.' || h[0] == '-')
		return false;
	for (; *h; h++) {
		if (*h == '.') {
			if (!label)
				return false;
			label = 0;
		} else if ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
			   (*h >= '0' && *h <= '9') || *h == '-' || *h == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static int parse_host(const char *s, size_t len, uint16_t port,
		      struct wsm_redis_addr *a);

static int parse_tcp(const char *s, size_t len, struct wsm_redis_addr *a)
{
	return parse_host(s, len, 6379, a);
}

static int parse_host(const char *s, size_t len, uint16_t port,
		      struct wsm_redis_addr *a)
{
	const char *end = s + len, *host = s, *host_end, *p;
	unsigned char bin[16];

	if (len && s[0] == '[') {
		host = s + 1;
		if (!(host_end = memchr(host, ']', (size_t)(end - host))))
			return WSM_EINVAL;
		p = host_end + 1;
	} else {
		for (p = s; p < end && *p != ':' && *p != '/'; p++)
			;
		host_end = p;
	}
	if (host_end == host || (size_t)(host_end - host) >= sizeof(a->host))
		return WSM_EINVAL;
	memcpy(a->host, host, (size_t)(host_end - host));
	a->host[host_end - host] = '\0';
	a->literal = inet_pton(AF_INET, a->host, bin) == 1 ||
		     inet_pton(AF_INET6, a->host, bin) == 1;
	if (!a->literal && (s[0] == '[' || !host_name(a->host)))
		return WSM_EINVAL;
	a->port = port;
	if (p < end && *p == ':') {
		const char *q = ++p;

		while (p < end && *p != '/')
			p++;
		if (number(q, (size_t)(p - q), 1, 65535, &a->port))
			return WSM_EINVAL;
	}
	if (p < end) { /* "/db" */
		if (*p != '/')
			return WSM_EINVAL;
		p++;
		if (p < end && number(p, (size_t)(end - p), 0, 65535, &a->db))
			return WSM_EINVAL;
	}
	return WSM_OK;
}

int wsm__sentinel_parse(const char *s, size_t len, struct wsm_redis_addr *a)
{
	return parse_host(s, len, 26379, a);
}

/*
 * "h[:p],h[:p]/master[/db]" after the scheme: the Sentinels as written
 * (each checked as a host and port), the primary's name, the database.
 */
static int parse_sentinels(const char *s, size_t len,
			   struct wsm_redis_addr *a)
{
	const char *end = s + len, *slash = memchr(s, '/', len), *p, *q;
	struct wsm_redis_addr one;
	unsigned n = 0;

	if (!slash || slash == s ||
	    (size_t)(slash - s) >= sizeof(a->sentinels))
		return WSM_EINVAL;
	for (p = s; p < slash; p = q + 1) {
		q = memchr(p, ',', (size_t)(slash - p));
		if (!q)
			q = slash;
		memset(&one, 0, sizeof(one));
		if (parse_host(p, (size_t)(q - p), 26379, &one) ||
		    one.db || ++n > WSM_SENTINEL_MAX)
			return WSM_EINVAL;
	}
	memcpy(a->sentinels, s, (size_t)(slash - s));
	a->sentinels[slash - s] = '\0';
	for (p = slash + 1; p < end && *p != '/'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		      *p == '.'))
			return WSM_EINVAL;
	if (p == slash + 1 || (size_t)(p - slash - 1) >= sizeof(a->master))
		return WSM_EINVAL;
	memcpy(a->master, slash + 1, (size_t)(p - slash - 1));
	a->master[p - slash - 1] = '\0';
	if (p < end && (p + 1 == end ||
			number(p + 1, (size_t)(end - p - 1), 0, 65535, &a->db)))
		return WSM_EINVAL;
	return WSM_OK;
}

/* The length of the list's next entry: a Sentinel list has commas in it. */
static size_t entry_len(const char *s)
{
	const char *comma, *slash;

	if (!strncmp(s, "redis-sentinel://", 17) ||
	    !strncmp(s, "rediss-sentinel://", 18)) {
		/* The hosts end at the first '/', the entry at the next ','. */
		if ((slash = strchr(s, '/')) && (slash = strchr(slash + 2, '/')))
			return (comma = strchr(slash, ','))
				       ? (size_t)(comma - s)
				       : strlen(s);
	}
	comma = strchr(s, ',');
	return comma ? (size_t)(comma - s) : strlen(s);
}

int wsm__redis_check_list(const char *list)
{
	struct wsm_redis_addr a[WSM_REDIS_MAX_INSTANCES];
	size_t n;

	return wsm__redis_parse_list(list, a, WSM_REDIS_MAX_INSTANCES, &n);
}

int wsm__redis_parse_list(const char *list, struct wsm_redis_addr *out,
			  size_t max, size_t *n)
{
	const char *s = list;

	*n = 0;
	if (!list || !*list)
		return WSM_EINVAL;
	for (;;) {
		size_t len = entry_len(s);
		struct wsm_redis_addr a;
		int rc;

		memset(&a, 0, sizeof(a));
		if (len > 8 && !memcmp(s, "redis://", 8)) {
			rc = parse_tcp(s + 8, len - 8, &a);
		} else if (len > 9 && !memcmp(s, "rediss://", 9)) {
			a.tls = true;
			rc = parse_tcp(s + 9, len - 9, &a);
		} else if (len > 17 && !memcmp(s, "redis-sentinel://", 17)) {
			rc = parse_sentinels(s + 17, len - 17, &a);
		} else if (len > 18 && !memcmp(s, "rediss-sentinel://", 18)) {
			a.tls = true;
			rc = parse_sentinels(s + 18, len - 18, &a);
		} else if (len > 5 && !memcmp(s, "unix:", 5)) {
			rc = parse_unix(s + 5, len - 5, &a);
		} else {
			rc = WSM_EINVAL;
		}
		if (rc || *n == max)
			return WSM_EINVAL;
		out[(*n)++] = a;
		if (!s[len])
			return WSM_OK;
		s += len + 1;
	}
}
