/*
 * Refused upgrades: one place that counts each refusal by its reason, tells
 * the host who was refused and why, and answers the client with the status
 * and a small JSON body naming the reason.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "lws_compat.h"

static const char *const refusal_names[WSM_REFUSAL_SLOTS] = {
	[WSM_REFUSAL_NONE] = "none",
	[WSM_REFUSAL_BAD_PATH] = "bad_path",
	[WSM_REFUSAL_BAD_ID] = "bad_id",
	[WSM_REFUSAL_BAD_RESUME] = "bad_resume",
	[WSM_REFUSAL_BAD_HANDSHAKE] = "bad_handshake",
	[WSM_REFUSAL_BAD_VERSION] = "bad_version",
	[WSM_REFUSAL_SUBPROTOCOL] = "subprotocol",
	[WSM_REFUSAL_ORIGIN] = "origin",
	[WSM_REFUSAL_PER_IP] = "per_ip",
	[WSM_REFUSAL_RATE] = "rate",
	[WSM_REFUSAL_DENIED] = "denied",
	[WSM_REFUSAL_SESSION_FULL] = "session_full",
	[WSM_REFUSAL_GLOBAL_LIMIT] = "global_limit",
	[WSM_REFUSAL_SHUTDOWN] = "shutdown",
	[WSM_REFUSAL_UNKNOWN_SESSION] = "unknown_session",
};

const char *wsm_refusal_name(wsm_refusal_t why)
{
	if ((unsigned)why >= WSM_REFUSAL_SLOTS || !refusal_names[why])
		return "unknown";
	return refusal_names[why];
}

int wsm__refusal_status(wsm_refusal_t why)
{
	switch (why) {
	case WSM_REFUSAL_BAD_PATH:
	case WSM_REFUSAL_UNKNOWN_SESSION: return 404;
	case WSM_REFUSAL_BAD_VERSION: return 426;
	case WSM_REFUSAL_ORIGIN:
	case WSM_REFUSAL_DENIED: return 403;
	case WSM_REFUSAL_PER_IP:
	case WSM_REFUSAL_SESSION_FULL: return 429;
	case WSM_REFUSAL_RATE:
	case WSM_REFUSAL_GLOBAL_LIMIT:
	case WSM_REFUSAL_SHUTDOWN: return 503;
	default: return 400;
	}
}

/* The counters of version 1.0 stay exact: each reason feeds one of them. */
static _Atomic uint64_t *legacy_counter(wsm_manager_t *m, wsm_refusal_t why)
{
	switch (why) {
	case WSM_REFUSAL_ORIGIN: return &m->c.refused_origin;
	case WSM_REFUSAL_PER_IP: return &m->c.refused_per_ip;
	case WSM_REFUSAL_RATE: return &m->c.refused_rate;
	case WSM_REFUSAL_DENIED: return &m->c.refused_denied;
	case WSM_REFUSAL_SESSION_FULL: return &m->c.refused_session_limit;
	case WSM_REFUSAL_GLOBAL_LIMIT: return &m->c.refused_global_limit;
	case WSM_REFUSAL_SHUTDOWN: return &m->c.refused_shutdown;
	default: return &m->c.refused_bad_request;
	}
}

void wsm__refusal_note(wsm_manager_t *m, struct lws *wsi, wsm_refusal_t why,
		       int status, const char *session_id)
{
	char peer[WSM_IP_LIMIT + 1] = "";

	wsm__add(legacy_counter(m, why), 1);
	wsm__add(&m->c.refused[why], 1);
	if (!m->cfg.on_refused)
		return;
	if (wsi)
		wsm__lws_peer_address(wsi, peer, sizeof(peer));
	m->cfg.on_refused(m->cfg.refused_user, why, status,
			  session_id ? session_id : "", peer);
}

static const char *status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return "Refused";
	}
}

/*
 * Written raw, whether lws still treats the wsi as HTTP (the upgrade check)
 * or has already switched it to the ws role (the filter); the caller's
 * nonzero return then makes lws close it.
 */
static void answer(struct lws *wsi, wsm_refusal_t why, int status)
{
	unsigned char buf[LWS_PRE + 384];
	char *p = (char *)buf + LWS_PRE, body[64];
	int blen = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n",
			    wsm_refusal_name(why));
	int n = snprintf(p, 384,
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: application/json\r\n"
			 "Content-Length: %d\r\n"
			 "%s%s"
			 "Connection: close\r\n\r\n%s",
			 status, status_text(status), blen,
			 status == 503 ? "Retry-After: 1\r\n" : "",
			 status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
			 body);

	lws_write(wsi, (unsigned char *)p, (size_t)n, LWS_WRITE_HTTP_HEADERS);
}

int wsm__refuse(wsm_manager_t *m, struct lws *wsi, wsm_refusal_t why,
		int status, const char *session_id)
{
	if (!status)
		status = wsm__refusal_status(why);
	if (m)
		wsm__refusal_note(m, wsi, why, status, session_id);
	answer(wsi, why, status);
	return 1;
}
