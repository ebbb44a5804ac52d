/*
 * Application-level liveness (WSM_OPT_APP_PING): for clients behind proxies
 * that answer WebSocket pings themselves, a JSON ping carrying a nonce that
 * the client must echo as {"type":"pong","nonce":...}; its round trip feeds
 * the metrics.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/*
 * The nonce of the JSON ping sent at last_ping_us: derived, not stored, so
 * it costs no bytes in a connection. It only has to be one a proxy would
 * not make up, and a stale echo must not match a newer ping.
 */
static uint64_t nonce_of(wsm_manager_t *m, const struct wsm_conn *c)
{
	uint64_t key[2] = { c->id, (uint64_t)c->last_ping_us };

	return wsm__hash(m->table.seed, (const char *)key, sizeof(key)) | 1;
}

int wsm__app_ping_send(wsm_manager_t *m, struct wsm_conn *c)
{
	unsigned char buf[LWS_PRE + 128];
	char *p = (char *)buf + LWS_PRE;
	int n;

	c->app_ping_due = 0;
	c->app_ping_open = 1;
	n = snprintf(p, 128, "{\"type\":\"ping\",\"nonce\":\"%016llx\",\"timestamp\":%lld}",
		     (unsigned long long)nonce_of(m, c), (long long)wsm__wall_ms());
	if (lws_write(c->wsi, (unsigned char *)p, (size_t)n, LWS_WRITE_TEXT) < n)
		return -1;
	wsm__bump(&m->c.app_pings_sent, 1);
	return 0;
}

/* A whole client message arrived in one piece: is it our pong? */
void wsm__app_pong_check(wsm_manager_t *m, struct wsm_conn *c, const void *in,
			 size_t len)
{
	char want[17];
	const char *type, *nonce;
	json_t *j;
	int64_t rtt;

	if (!c->app_ping_open || len > 256)
		return;
	j = json_loadb(in, len, 0, NULL);
	type = json_string_value(json_object_get(j, "type"));
	nonce = json_string_value(json_object_get(j, "nonce"));
	snprintf(want, sizeof(want), "%016llx", (unsigned long long)nonce_of(m, c));
	if (type && nonce && !strcmp(type, "pong") && !strcmp(nonce, want)) {
		rtt = wsm__now_us() - c->last_ping_us;
		c->app_ping_open = 0;
		wsm__bump(&m->c.rtt_samples, 1);
		wsm__bump(&m->c.rtt_sum_us, rtt);
		if ((uint64_t)rtt > atomic_load_explicit(&m->c.rtt_max_us,
							 memory_order_relaxed))
			atomic_store_explicit(&m->c.rtt_max_us, (uint64_t)rtt,
					      memory_order_relaxed);
	}
	json_decref(j);
}
