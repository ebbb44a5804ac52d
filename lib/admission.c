/*
 * Admission: every new connection passes here before it is registered, in
 * lws's filter callback (before the 101 is sent) or through wsm_register().
 * A refusal allocates nothing and answers with a documented HTTP status.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int wsm__session_from_uri(wsm_manager_t *m, struct lws *wsi, char *id,
			  size_t *len)
{
	char uri[WSM_PREFIX_LIMIT + WSM_SESSION_ID_LIMIT + 2];
	size_t plen = strlen(m->cfg.path_prefix);
	int n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);

	if (n == 0) /* no GET line: an h2 upgrade carries the path in :path */
		n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_HTTP_COLON_PATH);
	if (n < 0)
		return 400; /* longer than any valid path */
	if ((size_t)n < plen || memcmp(uri, m->cfg.path_prefix, plen))
		return 404;
	*len = (size_t)n - plen;
	if (wsm__check_session_id(uri + plen, *len, m->cfg.session_id_max_len))
		return 400;
	memcpy(id, uri + plen, *len);
	id[*len] = '\0';
	return 0;
}

int wsm__resume_from_uri(struct lws *wsi, struct wsm_resume *r)
{
	/* Room for any one argument: lws skips those that do not fit. */
	char buf[WSM_QUERY_LIMIT + 1];
	const char *seq;
	uint64_t v;

	r->present = 0;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) > WSM_QUERY_LIMIT)
		return 400; /* too long, like the path */
	seq = lws_get_urlarg_by_name(wsi, "lastSeq=", buf, sizeof(buf));
	if (!seq)
		return 0;
	if (wsm__parse_decimal(seq, UINT64_MAX, &r->seq))
		return 400;
	r->present = 1;
	r->epoch = 0; /* matches no session: a reset */
	if (lws_get_urlarg_by_name(wsi, "epoch=", buf, sizeof(buf))) {
		if (wsm__parse_decimal(strchr(buf, '=') + 1, UINT32_MAX, &v))
			return 400;
		r->epoch = (uint32_t)v;
	}
	return 0;
}

static int map_error_to_status(int err)
{
	switch (err) {
	case WSM_ESESSIONFULL: return 429;
	case WSM_EDENIED: return 403;
	default: return 503;
	}
}

/* Checks limits (and the host's hook); returns 0 or a WSM_E* code. */
static int admit(wsm_manager_t *m, struct lws *wsi, const char *id, size_t len,
		 bool ask_host, int *status)
{
	struct wsm_session *s;
	uint32_t open;

	*status = 0;
	if (atomic_load(&m->shutting_down) || atomic_load(&m->draining)) {
		wsm__add(&m->c.refused_shutdown, 1);
		return WSM_ESHUTDOWN;
	}
	if (ask_host && m->cfg.authorize) {
		int st = m->cfg.authorize(m->cfg.authorize_user, wsi, id);

		if (st) {
			wsm__add(&m->c.refused_denied, 1);
			*status = st >= 400 && st <= 599 ? st : 403;
			return WSM_EDENIED;
		}
	}
	s = wsm__table_find(m, id, len);
	open = s ? s->open : 0;
	if (open >= (uint64_t)m->cfg.max_per_session) {
		if (m->cfg.limit_policy == WSM_LIMIT_REJECT) {
			wsm__add(&m->c.refused_session_limit, 1);
			return WSM_ESESSIONFULL;
		}
		/* Evicting frees a global slot too, so no global check. */
		wsm__conn_close(m,
				wsm_container_of(s->conns.next, struct wsm_conn,
						 in_session),
				WSM_CAUSE_EVICTED, WSM_CLOSE_EVICTED);
		return WSM_OK;
	}
	if (atomic_load_explicit(&m->c.open, memory_order_relaxed) >=
	    (uint64_t)m->cfg.max_connections) {
		wsm__add(&m->c.refused_global_limit, 1);
		return WSM_EFULL;
	}
	return WSM_OK;
}

static const char *status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 413: return "Payload Too Large";
	case 404: return "Not Found";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return "Refused";
	}
}

/*
 * lws has already switched the wsi to the ws role when it asks the filter,
 * but HTTP writes still go out raw: answer, then deny so lws closes it.
 */
int wsm__refuse(struct lws *wsi, int status)
{
	unsigned char buf[LWS_PRE + 256];
	char *p = (char *)buf + LWS_PRE;
	const char *text = status_text(status);
	int n = snprintf(p, 256,
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: text/plain\r\n"
			 "Content-Length: %zu\r\n"
			 "%s"
			 "Connection: close\r\n\r\n%s\n",
			 status, text, strlen(text) + 1,
			 status == 503 ? "Retry-After: 1\r\n" : "", text);

	lws_write(wsi, (unsigned char *)p, (size_t)n, LWS_WRITE_HTTP_HEADERS);
	return 1;
}

int wsm__filter(wsm_manager_t *m, struct lws *wsi)
{
	char id[WSM_SESSION_ID_LIMIT + 1];
	struct wsm_resume resume;
	size_t len;
	int status = wsm__session_from_uri(m, wsi, id, &len), rc;

	if (!status)
		status = wsm__resume_from_uri(wsi, &resume);
	if (status) {
		wsm__add(&m->c.refused_bad_request, 1);
		return wsm__refuse(wsi, status);
	}
	if ((status = wsm__edge_admit(m, wsi)))
		return wsm__refuse(wsi, status);
	rc = admit(m, wsi, id, len, true, &status);
	if (rc)
		return wsm__refuse(wsi, status ? status : map_error_to_status(rc));
	return 0;
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

int64_t wsm_register(wsm_manager_t *m, struct lws *wsi, const char *session_id)
{
	size_t len;
	int64_t rc = wsm__acquire(m);
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
		rc = wsm__check_session_id(session_id, len,
					   m->cfg.session_id_max_len);
		if (rc)
			wsm__add(&m->c.refused_bad_request, 1);
		else
			rc = admit(m, wsi, session_id, len, false, &status);
		if (!rc)
			rc = wsm__conn_open(m, wsi, session_id, len, NULL);
	}
	wsm__release(m);
	return rc;
}
