/*
 * Admission: every new connection passes here before it is registered, in
 * lws's filter callback (before the 101 is sent) or through wsm_register().
 * A refusal allocates nothing and answers with a documented HTTP status.
 */
#include <ctype.h>
#include <string.h>

#include "internal.h"
#include "lws_compat.h"

wsm_refusal_t wsm__session_from_uri(wsm_manager_t *m, struct lws *wsi,
				    char *id, size_t *len)
{
	char uri[WSM_PREFIX_LIMIT + WSM_SESSION_ID_LIMIT + 2];
	size_t plen = strlen(m->cfg.path_prefix);
	int n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);

	if (n == 0) /* no GET line: an h2 upgrade carries the path in :path */
		n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_HTTP_COLON_PATH);
	if (n < 0)
		return WSM_REFUSAL_BAD_ID; /* longer than any valid path */
	if ((size_t)n < plen || memcmp(uri, m->cfg.path_prefix, plen))
		return WSM_REFUSAL_BAD_PATH;
	*len = (size_t)n - plen;
	if (wsm__check_session_id(uri + plen, *len, m->cfg.session_id_max_len))
		return WSM_REFUSAL_BAD_ID;
	memcpy(id, uri + plen, *len);
	id[*len] = '\0';
	return WSM_REFUSAL_NONE;
}

wsm_refusal_t wsm__resume_from_uri(struct lws *wsi, struct wsm_resume *r)
{
	/* Room for any one argument: a longer query is refused first. */
	char buf[WSM_QUERY_LIMIT + 1];
	uint64_t v;

	r->present = 0;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) > WSM_QUERY_LIMIT)
		return WSM_REFUSAL_BAD_RESUME; /* too long, like the path */
	if (wsm__lws_query_arg(wsi, "lastSeq", buf, sizeof(buf)) < 0)
		return WSM_REFUSAL_NONE;
	if (wsm__parse_decimal(buf, UINT64_MAX, &r->seq))
		return WSM_REFUSAL_BAD_RESUME;
	r->present = 1;
	r->epoch = 0; /* matches no session: a reset */
	if (wsm__lws_query_arg(wsi, "epoch", buf, sizeof(buf)) >= 0) {
		if (wsm__parse_decimal(buf, UINT32_MAX, &v))
			return WSM_REFUSAL_BAD_RESUME;
		r->epoch = (uint32_t)v;
	}
	return WSM_REFUSAL_NONE;
}

/*
 * RFC 6455 4.2.1: the key is the base64 of 16 bytes (22 characters of the
 * alphabet then "==") and the version is 13. lws 4.1 checks neither.
 */
static bool key_ok(const char *k, int n)
{
	int i;

	if (n != 24 || k[22] != '=' || k[23] != '=')
		return false;
	for (i = 0; i < 22; i++)
		if (!isalnum((unsigned char)k[i]) && k[i] != '+' && k[i] != '/')
			return false;
	return true;
}

static wsm_refusal_t handshake_check(struct lws *wsi)
{
	char buf[32];
	int n;

	/*
	 * lws ends the request target at the first space and keeps the rest
	 * of the request line as the version: "GET /p/a b HTTP/1.1" would
	 * join session "a".
	 */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) &&
	    (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP) != 8 ||
	     strcmp(buf, "HTTP/1.1")))
		return WSM_REFUSAL_BAD_HANDSHAKE;
	n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_VERSION);
	if (n != 2 || strcmp(buf, "13"))
		return WSM_REFUSAL_BAD_VERSION;
	n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_KEY);
	/* An h2 upgrade (RFC 8441) carries no key. */
	if (!lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COLON_PATH) &&
	    !key_ok(buf, n))
		return WSM_REFUSAL_BAD_HANDSHAKE;
	return WSM_REFUSAL_NONE;
}

static int refusal_error(wsm_refusal_t why)
{
	switch (why) {
	case WSM_REFUSAL_SESSION_FULL: return WSM_ESESSIONFULL;
	case WSM_REFUSAL_GLOBAL_LIMIT: return WSM_EFULL;
	case WSM_REFUSAL_DENIED: return WSM_EDENIED;
	case WSM_REFUSAL_SHUTDOWN: return WSM_ESHUTDOWN;
	case WSM_REFUSAL_UNKNOWN_SESSION: return WSM_ENOTFOUND;
	default: return WSM_ESESSIONID;
	}
}

/* Checks limits (and the host's hook): 0 admits, else why not. */
static wsm_refusal_t admit(wsm_manager_t *m, struct lws *wsi, const char *id,
			   size_t len, bool ask_host, int *status)
{
	struct wsm_session *s;
	uint32_t open;

	*status = 0;
	if (atomic_load(&m->shutting_down) || atomic_load(&m->draining))
		return WSM_REFUSAL_SHUTDOWN;
	s = wsm__table_find(m, id, len);
	/*
	 * Unknown ids would make the server hold state no job will use. In
	 * cluster mode another node may have announced it: Redis tells, once
	 * the connection's state is read (lib/cluster/sync.c).
	 */
	if (!s && m->cfg.announced_only && !m->cluster)
		return WSM_REFUSAL_UNKNOWN_SESSION;
	if (ask_host && m->cfg.authorize) {
		int st = m->cfg.authorize(m->cfg.authorize_user, wsi, id);

		if (st) {
			*status = st >= 400 && st <= 599 ? st : 403;
			return WSM_REFUSAL_DENIED;
		}
	}
	open = s ? s->open : 0;
	if (open >= (uint64_t)m->cfg.max_per_session) {
		if (m->cfg.limit_policy == WSM_LIMIT_REJECT)
			return WSM_REFUSAL_SESSION_FULL;
		/* Evicting frees a global slot too, so no global check. */
		wsm__conn_close(m,
				wsm_container_of(s->conns.next, struct wsm_conn,
						 in_session),
				WSM_CAUSE_EVICTED, WSM_CLOSE_EVICTED);
		return WSM_REFUSAL_NONE;
	}
	if (atomic_load_explicit(&m->c.open, memory_order_relaxed) >=
	    (uint64_t)m->cfg.max_connections)
		return WSM_REFUSAL_GLOBAL_LIMIT;
	return WSM_REFUSAL_NONE;
}

/* What follows a valid session id, the same for both ways in. */
static int judge(wsm_manager_t *m, struct lws *wsi, const char *id,
		 size_t len)
{
	int status = 0;
	wsm_refusal_t why = wsm__edge_admit(m, wsi);

	if (!why)
		why = admit(m, wsi, id, len, true, &status);
	return why ? wsm__refuse(m, wsi, why, status, id) : 0;
}

int wsm__filter(wsm_manager_t *m, struct lws *wsi)
{
	char id[WSM_SESSION_ID_LIMIT + 1];
	struct wsm_resume resume;
	size_t len;
	wsm_refusal_t why;

	if (wsm__lws_request_unparsable(wsi))
		return 1; /* dropped unanswered, as lws drops most */
	why = handshake_check(wsi);
	if (!why)
		why = wsm__session_from_uri(m, wsi, id, &len);
	if (!why)
		why = wsm__resume_from_uri(wsi, &resume);
	if (why)
		return wsm__refuse(m, wsi, why, 0, NULL);
	return judge(m, wsi, id, len);
}

int wsm_admit(wsm_manager_t *m, struct lws *wsi, const char *session_id)
{
	wsm_refusal_t why;
	size_t len;
	int rc;

	if (!wsi || !session_id)
		return WSM_EINVAL;
	if (wsm__acquire(m))
		return wsm__refuse(NULL, wsi, WSM_REFUSAL_SHUTDOWN, 0, NULL);
	if ((rc = wsm__service_check(m))) {
		wsm__release(m);
		return rc;
	}
	if (wsm__lws_request_unparsable(wsi)) {
		wsm__release(m);
		return 1; /* dropped unanswered, as lws drops most */
	}
	len = strnlen(session_id, WSM_SESSION_ID_LIMIT + 1);
	why = handshake_check(wsi);
	if (!why && wsm__check_session_id(session_id, len,
					  m->cfg.session_id_max_len))
		why = WSM_REFUSAL_BAD_ID;
	rc = why ? wsm__refuse(m, wsi, why, 0, NULL)
		 : judge(m, wsi, session_id, len);
	wsm__release(m);
	return rc;
}

/* After a successful filter: the limits cannot have changed in between. */
int wsm__established(wsm_manager_t *m, struct lws *wsi)
{
	char id[WSM_SESSION_ID_LIMIT + 1];
	struct wsm_resume resume;
	size_t len;
	int status;

	if (wsm__session_from_uri(m, wsi, id, &len) ||
	    wsm__resume_from_uri(wsi, &resume) ||
	    admit(m, wsi, id, len, false, &status))
		return -1;
	return wsm__conn_open(m, wsi, id, len, &resume) < 0 ? -1 : 0;
}

/*
 * The connection is already upgraded: it is refused with a close frame
 * naming the reason, which lws sends as the host closes it (nonzero from
 * LWS_CALLBACK_ESTABLISHED), rather than with a dropped socket.
 */
static void refuse_established(struct lws *wsi, wsm_refusal_t why)
{
	const char *name = wsm_refusal_name(why);

	lws_close_reason(wsi, (enum lws_close_status)WSM_CLOSE_REFUSED,
			 (unsigned char *)(uintptr_t)name, strlen(name));
}

int64_t wsm_register(wsm_manager_t *m, struct lws *wsi, const char *session_id)
{
	size_t len;
	int64_t rc = wsm__acquire(m);
	wsm_refusal_t why;
	int status;

	if (rc)
		return rc;
	if (!wsi || !session_id) {
		rc = WSM_EINVAL;
	} else if ((rc = wsm__service_check(m))) {
		;
	} else if (lws_get_opaque_user_data(wsi)) {
		rc = WSM_EEXIST;
	} else {
		len = strnlen(session_id, WSM_SESSION_ID_LIMIT + 1);
		why = wsm__check_session_id(session_id, len,
					    m->cfg.session_id_max_len)
			      ? WSM_REFUSAL_BAD_ID
			      : admit(m, wsi, session_id, len, false, &status);
		if (why) {
			wsm__refusal_note(m, wsi, why, wsm__refusal_status(why),
					  why == WSM_REFUSAL_BAD_ID ? NULL
								    : session_id);
			refuse_established(wsi, why);
			rc = refusal_error(why);
		} else {
			rc = wsm__conn_open(m, wsi, session_id, len, NULL);
		}
	}
	wsm__release(m);
	return rc;
}
