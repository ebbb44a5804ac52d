/*
 * Checks at the network edge, for upgrades arriving on the automatic path
 * (before the authorize hook and the session limits): an Origin allow-list,
 * a cap on connections per peer address (lws 4.1 as packaged has no peer
 * limits of its own), and a token bucket on the rate of upgrades.
 */
#include <string.h>

#include "internal.h"
#include "lws_compat.h"

#define PEER_BUCKETS 256

static struct wsm_peer **slot(wsm_manager_t *m, const char *ip, size_t len)
{
	struct wsm_peer **p;

	if (!m->peers)
		return NULL;
	p = &m->peers[wsm__hash(m->table.seed, ip, len) % PEER_BUCKETS];
	while (*p && ((*p)->len != len || memcmp((*p)->ip, ip, len)))
		p = &(*p)->next;
	return p;
}

static uint32_t peer_count(wsm_manager_t *m, const char *ip)
{
	struct wsm_peer **p = slot(m, ip, strlen(ip));

	return p && *p ? (*p)->count : 0;
}

struct wsm_peer *wsm__peer_ref(wsm_manager_t *m, struct lws *wsi)
{
	char ip[WSM_IP_LIMIT + 1];
	struct wsm_peer **p, *peer;
	size_t len;

	if (!m->cfg.max_per_ip || !wsm__lws_peer_address(wsi, ip, sizeof(ip)))
		return NULL;
	if (!m->peers &&
	    !(m->peers = wsm__alloc(m, PEER_BUCKETS * sizeof(*m->peers))))
		return NULL;
	len = strlen(ip);
	p = slot(m, ip, len);
	if (!*p) {
		if (!(*p = wsm__alloc(m, sizeof(**p))))
			return NULL;
		memcpy((*p)->ip, ip, len);
		(*p)->len = (uint8_t)len;
		m->npeers++;
	}
	peer = *p;
	peer->count++;
	return peer;
}

void wsm__peer_unref(wsm_manager_t *m, struct wsm_peer *peer)
{
	struct wsm_peer **p;

	if (!peer || --peer->count)
		return;
	p = slot(m, peer->ip, peer->len);
	*p = peer->next;
	wsm__free(m, peer, sizeof(*peer));
	/* The bucket array goes with the last peer: held bytes come back. */
	if (--m->npeers == 0) {
		wsm__free(m, m->peers, PEER_BUCKETS * sizeof(*m->peers));
		m->peers = NULL;
	}
}

/* Exact, case-sensitive match against the comma-separated allow-list. */
static bool origin_allowed(const char *list, const char *origin)
{
	size_t n = strlen(origin);
	const char *p = list, *end;

	while (*p) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		if ((size_t)(end - p) == n && !memcmp(p, origin, n))
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

static bool rate_ok(wsm_manager_t *m)
{
	int64_t now = wsm__now_us(), rate = m->cfg.max_upgrade_rate;

	if (!rate)
		return true;
	/* Refill: rate tokens a second, at most one second's worth banked. */
	m->tokens += (double)(now - m->tokens_at_us) * (double)rate / 1e6;
	if (m->tokens > (double)rate)
		m->tokens = (double)rate;
	m->tokens_at_us = now;
	if (m->tokens < 1.0)
		return false;
	m->tokens -= 1.0;
	return true;
}

wsm_refusal_t wsm__edge_admit(wsm_manager_t *m, struct lws *wsi)
{
	char buf[WSM_ORIGIN_LIMIT + 1];
	int n;

	if (m->cfg.origin_allow[0]) {
		/* A header sent empty has a fragment; a missing one has none. */
		if (lws_hdr_copy_fragment(wsi, buf, sizeof(buf), WSI_TOKEN_ORIGIN,
					  0) == 0)
			return WSM_REFUSAL_BAD_HANDSHAKE;
		n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_ORIGIN);
		/* No Origin: not a browser, which the list cannot vouch for. */
		if (n < 0 || (n > 0 && !origin_allowed(m->cfg.origin_allow, buf)))
			return WSM_REFUSAL_ORIGIN;
	}
	if (m->cfg.max_per_ip && wsm__lws_peer_address(wsi, buf, sizeof(buf)) &&
	    peer_count(m, buf) >= (uint64_t)m->cfg.max_per_ip)
		return WSM_REFUSAL_PER_IP;
	if (!rate_ok(m))
		return WSM_REFUSAL_RATE;
	return WSM_REFUSAL_NONE;
}
