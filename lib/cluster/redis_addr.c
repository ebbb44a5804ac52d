/*
 * Redis addresses as a host writes them: "redis://127.0.0.1:6379/0",
 * "redis://[::1]/2", "unix:/run/redis.sock?db=1", comma-separated for
 * several independent instances. Addresses are literal: resolving a name
 * would block the host's loop (lws 4.1 and hiredis resolve synchronously).
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

static int parse_tcp(const char *s, size_t len, struct wsm_redis_addr *a)
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
	if (inet_pton(AF_INET, a->host, bin) != 1 &&
	    inet_pton(AF_INET6, a->host, bin) != 1)
		return WSM_EINVAL; /* a name: it would need DNS */
	a->port = 6379;
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
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		struct wsm_redis_addr a;
		int rc;

		memset(&a, 0, sizeof(a));
		if (len > 8 && !memcmp(s, "redis://", 8))
			rc = parse_tcp(s + 8, len - 8, &a);
		else if (len > 5 && !memcmp(s, "unix:", 5))
			rc = parse_unix(s + 5, len - 5, &a);
		else
			rc = WSM_EINVAL;
		if (rc || *n == max)
			return WSM_EINVAL;
		out[(*n)++] = a;
		if (!comma)
			return WSM_OK;
		s = comma + 1;
	}
}
