/*
 * The HTTP side; see http.h.
 *
 *	GET  /                                      the page (index.html, embedded)
 *	GET  /wsm-client.js                         the client module it imports
 *	POST /api/images_mvp/jobs                   start a job: {"sessionId":"..."}
 *	GET  /api/images_mvp/jobs                   the jobs the server knows
 *	GET  /api/images_mvp/jobs/<id>              one of them
 *	GET  /api/images_mvp/websocket/status       wsm_status_json()
 *	POST /api/images_mvp/websocket/cleanup/<id> wsm_session_close(), with
 *	                                            "Authorization: Bearer <token>"
 *	GET  /metrics                               Prometheus text format
 *
 * A known path with another method is 405, anything else 404. A request is
 * answered once its body, if it has one, has been read; the response is then
 * written from LWS_CALLBACK_HTTP_WRITEABLE, headers first, then the body in
 * chunks, the last one marked LWS_WRITE_HTTP_FINAL, after which the
 * transaction is completed so that a keep-alive connection can carry the
 * next request.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "index_html.h"
#include "wsm_client_js.h"
#include "jobs.h"

#define JOBS_PATH "/api/images_mvp/jobs"
#define STATUS_PATH "/api/images_mvp/websocket/status"
#define CLEANUP_PREFIX "/api/images_mvp/websocket/cleanup/"
#define METRICS_PATH "/metrics"
#define CLIENT_PATH "/wsm-client.js"

#define MAX_BODY 1024 /* largest job request body read */
#define MAX_AUTH 512  /* longest Authorization header looked at */
#define CHUNK 4096    /* response bytes per write */
#define REALM "Bearer realm=\"progress-broadcast\""

enum route {
	ROUTE_NOT_FOUND,
	ROUTE_BAD_METHOD,
	ROUTE_PAGE,
	ROUTE_CLIENT,
	/* The routes from here on need the manager. */
	ROUTE_STATUS,
	ROUTE_START_JOB,
	ROUTE_JOB_LIST,
	ROUTE_JOB,
	ROUTE_CLEANUP,
	ROUTE_METRICS
};

/* What the Authorization header said, judged when the request came in. */
enum auth { AUTH_DISABLED, AUTH_MISSING, AUTH_WRONG, AUTH_OK };

/* One transaction. lws allocates it zeroed each time it binds us. */
struct pss {
	enum route route;
	const char *allow; /* ROUTE_BAD_METHOD: the method the path takes */
	char id[JOBS_ID_SIZE]; /* ROUTE_JOB, ROUTE_CLEANUP: from the path */
	bool id_too_long;
	enum auth auth;
	size_t body_len;
	bool body_too_long;
	char body[MAX_BODY];

	bool responding, headers_sent, retry_after;
	bool close_after; /* the request said "Connection: close" */
	const char *www_authenticate;
	unsigned status;
	const char *content_type;
	const unsigned char *data;
	size_t len, sent;
	char *owned; /* data, when it was allocated for this response */
};

/* ---- responses ----------------------------------------------------- */

static void response_free(struct pss *pss)
{
	free(pss->owned);
	pss->owned = NULL;
	pss->responding = false;
}

/* Queues a response; data must stay valid until it is written. */
static int respond(struct lws *wsi, struct pss *pss, unsigned status,
		   const char *content_type, const void *data, size_t len)
{
	pss->responding = true;
	pss->headers_sent = false;
	pss->status = status;
	pss->content_type = content_type;
	pss->data = data;
	pss->len = len;
	pss->sent = 0;
	lws_callback_on_writable(wsi);
	return 0;
}

/* Sends obj, which it consumes; NULL (out of memory) closes. */
static int respond_json(struct lws *wsi, struct pss *pss, unsigned status,
			json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	if (!text)
		return -1;
	pss->owned = text;
	return respond(wsi, pss, status, "application/json", text,
		       strlen(text));
}

static int respond_error(struct lws *wsi, struct pss *pss, unsigned status,
			 const char *message)
{
	return respond_json(wsi, pss, status,
			    json_pack("{s:s}", "error", message));
}

static int add_header(struct lws *wsi, enum lws_token_indexes token,
		      const char *value, unsigned char **p, unsigned char *end)
{
	return lws_add_http_header_by_token(wsi, token,
					    (const unsigned char *)value,
					    (int)strlen(value), p, end);
}

/* Writes the headers, or the next chunk of the body. */
static int write_some(struct lws *wsi, struct pss *pss)
{
	unsigned char buf[LWS_PRE + CHUNK], *start = buf + LWS_PRE, *p = start,
					    *end = buf + sizeof(buf);
	size_t n;
	bool final;

	if (!pss->headers_sent) {
		if (lws_add_http_common_headers(wsi, pss->status,
						pss->content_type, pss->len,
						&p, end) ||
		    add_header(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, "no-store", &p,
			       end) ||
		    (pss->retry_after &&
		     add_header(wsi, WSI_TOKEN_HTTP_RETRY_AFTER, "1", &p, end)) ||
		    (pss->www_authenticate &&
		     add_header(wsi, WSI_TOKEN_HTTP_WWW_AUTHENTICATE,
				pss->www_authenticate, &p, end)) ||
		    (pss->route == ROUTE_BAD_METHOD &&
		     add_header(wsi, WSI_TOKEN_HTTP_ALLOW, pss->allow, &p, end)) ||
		    lws_finalize_write_http_header(wsi, start, &p, end))
			return -1;
		pss->headers_sent = true;
		lws_callback_on_writable(wsi);
		return 0;
	}

	n = pss->len - pss->sent;
	if (n > CHUNK)
		n = CHUNK;
	final = pss->sent + n == pss->len;
	memcpy(start, pss->data + pss->sent, n);
	if (lws_write(wsi, start, n,
		      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
		return -1;
	pss->sent += n;
	if (!final) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	response_free(pss);
	/*
	 * lws 4.1 keeps a POST without Content-Length open for the next
	 * request even when it asked for "Connection: close": honour it.
	 */
	if (pss->close_after)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- authentication ------------------------------------------------ */

/*
 * Whether given (glen bytes) equals secret, in a time that depends on the
 * secret's length only, never on where the first difference is.
 */
static bool same_secret(const char *given, size_t glen, const char *secret)
{
	size_t slen = strlen(secret), i;
	unsigned char diff = glen != slen;

	for (i = 0; i < slen; i++)
		diff |= (unsigned char)secret[i] ^
			(unsigned char)(i < glen ? given[i] : 0);
	return diff == 0;
}

/* "Authorization: Bearer <token>" (RFC 6750), the scheme in any case. */
static enum auth check_auth(struct lws *wsi, const char *token)
{
	char h[MAX_AUTH];
	const char *p;
	size_t n;
	int len;

	if (!token)
		return AUTH_DISABLED;
	len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (len <= 0)
		return AUTH_MISSING;
	if (len >= (int)sizeof(h) ||
	    (len = lws_hdr_copy(wsi, h, sizeof(h),
				WSI_TOKEN_HTTP_AUTHORIZATION)) < 0)
		return AUTH_WRONG;
	if (len < 7 || strncasecmp(h, "Bearer ", 7) != 0)
		return AUTH_MISSING; /* another scheme: no bearer token */
	/* The whole value as copied: a NUL inside must not end the token. */
	for (p = h + 7; p < h + len && *p == ' '; p++)
		continue;
	for (n = (size_t)(h + len - p); n > 0 && p[n - 1] == ' '; n--)
		continue;
	return same_secret(p, n, token) ? AUTH_OK : AUTH_WRONG;
}

/* ---- routes -------------------------------------------------------- */

/*
 * A document from libwsm's snprintf-style calls, in a buffer of room extra
 * bytes more. The figures may grow between two calls: retry a few times.
 * NULL with *err set on failure.
 */
static char *library_doc(wsm_manager_t *m,
			 int (*render)(wsm_manager_t *, char *, size_t),
			 size_t room, size_t *len, int *err)
{
	size_t size = 1024;
	char *doc;
	int n, tries;

	for (tries = 0; tries < 4; tries++) {
		if (!(doc = malloc(size + room))) {
			*err = WSM_ENOMEM;
			return NULL;
		}
		n = render(m, doc, size);
		if (n < 0) {
			free(doc);
			*err = n;
			return NULL;
		}
		if ((size_t)n < size) {
			*len = (size_t)n;
			return doc;
		}
		free(doc);
		size = (size_t)n + 256;
	}
	*err = WSM_EAGAIN;
	return NULL;
}

static int respond_status(struct lws *wsi, struct pss *pss,
			  struct http_app *app)
{
	size_t len;
	int err;
	char *doc = library_doc(app->m, wsm_status_json, 0, &len, &err);

	if (!doc)
		return respond_error(wsi, pss, 500, wsm_strerror(err));
	pss->owned = doc;
	return respond(wsi, pss, 200, "application/json", doc, len);
}

#define PROMETHEUS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define JOBS_FAMILY_ROOM 512 /* the example's own family, after libwsm's */

/* libwsm's metrics, then the example's jobs by state. */
static int respond_metrics(struct lws *wsi, struct pss *pss,
			   struct http_app *app)
{
	struct jobs_counts jc = { 0, 0, 0 };
	size_t len;
	int err, n;
	char *text = library_doc(app->m, wsm_metrics_prometheus,
				 JOBS_FAMILY_ROOM, &len, &err);

	if (!text)
		return respond_error(wsi, pss, 500, wsm_strerror(err));
	if (app->jobs)
		jobs_count(app->jobs, &jc);
	n = snprintf(text + len, JOBS_FAMILY_ROOM,
		     "# HELP progress_broadcast_jobs Jobs the example server "
		     "knows, by state.\n"
		     "# TYPE progress_broadcast_jobs gauge\n"
		     "progress_broadcast_jobs{state=\"running\"} %u\n"
		     "progress_broadcast_jobs{state=\"complete\"} %u\n"
		     "progress_broadcast_jobs{state=\"failed\"} %u\n",
		     jc.running, jc.complete, jc.failed);
	pss->owned = text;
	return respond(wsi, pss, 200, PROMETHEUS_CONTENT_TYPE, text,
		       len + (size_t)n);
}

static int start_job(struct lws *wsi, struct pss *pss, struct http_app *app)
{
	char id[JOBS_ID_SIZE];
	bool fail = false;
	json_t *req;

	if (pss->body_too_long)
		return respond_error(wsi, pss, 413, "request body too long");
	if (pss->body_len > 0) {
		req = json_loadb(pss->body, pss->body_len, 0, NULL);
		if (!json_is_object(req)) {
			json_decref(req);
			return respond_error(wsi, pss, 400,
					     "the body must be a JSON object");
		}
		fail = json_is_true(json_object_get(req, "fail"));
		json_decref(req);
	}

	switch (jobs_start(app->jobs, NULL, fail, id)) {
	case JOBS_OK:
		lwsl_user("job %s started%s\n", id, fail ? " (set to fail)" : "");
		return respond_json(wsi, pss, 200,
				    json_pack("{s:s}", "sessionId", id));
	case JOBS_FULL:
		pss->retry_after = true;
		return respond_error(wsi, pss, 503, "too many jobs running");
	case JOBS_STOPPING:
		return respond_error(wsi, pss, 503,
				     "the server is shutting down");
	default:
		return respond_error(wsi, pss, 500, "could not start a job");
	}
}

/* The characters libwsm allows in a session id; its length is checked too. */
static bool plausible_id(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && strspn(id, "abcdefghijklmnopqrstuvwxyz"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789-_") == n;
}

static int show_job(struct lws *wsi, struct pss *pss, struct http_app *app)
{
	json_t *job;

	if (pss->id_too_long || !plausible_id(pss->id))
		return respond_error(wsi, pss, 400, "bad session id");
	if (!(job = jobs_get_json(app->jobs, pss->id)))
		return respond_error(wsi, pss, 404, "no such job");
	return respond_json(wsi, pss, 200, job);
}

static int cleanup(struct lws *wsi, struct pss *pss, struct http_app *app)
{
	int n;

	switch (pss->auth) {
	case AUTH_DISABLED:
		return respond_error(wsi, pss, 403,
				     "cleanup is disabled: start the server "
				     "with --admin-token or WSM_ADMIN_TOKEN");
	case AUTH_MISSING:
		pss->www_authenticate = REALM;
		return respond_error(wsi, pss, 401, "bearer token required");
	case AUTH_WRONG:
		pss->www_authenticate = REALM ", error=\"invalid_token\"";
		return respond_error(wsi, pss, 401, "wrong token");
	case AUTH_OK:
		break;
	}
	/* On the service thread, so the closing starts now; see wsm(7). */
	n = pss->id_too_long ? WSM_ESESSIONID
			     : wsm_session_close(app->m, pss->id);
	if (n >= 0) {
		lwsl_user("session %s cleaned up: %d connection(s)\n", pss->id,
			  n);
		return respond_json(wsi, pss, 200, json_pack("{s:i}", "closed",
							     n));
	}
	switch (n) {
	case WSM_ESESSIONID:
		return respond_error(wsi, pss, 400, "bad session id");
	case WSM_ENOTFOUND:
		return respond_error(wsi, pss, 404,
				     "no open connection in this session");
	case WSM_ESHUTDOWN:
		pss->retry_after = true;
		return respond_error(wsi, pss, 503,
				     "the server is shutting down");
	default:
		return respond_error(wsi, pss, 500, wsm_strerror(n));
	}
}

static int answer(struct lws *wsi, struct pss *pss)
{
	static const char not_found[] = "not found\n",
			  bad_method[] = "method not allowed\n";
	struct http_app *app = lws_get_protocol(wsi)->user;
	bool needs_jobs = pss->route == ROUTE_START_JOB ||
			  pss->route == ROUTE_JOB_LIST ||
			  pss->route == ROUTE_JOB;

	if ((needs_jobs && !app->jobs) ||
	    (pss->route >= ROUTE_STATUS && !app->m)) {
		/* main() is tearing down the manager and the jobs. */
		pss->retry_after = true;
		return respond_error(wsi, pss, 503,
				     "the server is shutting down");
	}
	switch (pss->route) {
	case ROUTE_PAGE:
		return respond(wsi, pss, 200, "text/html; charset=utf-8",
			       index_html, index_html_len);
	case ROUTE_CLIENT:
		return respond(wsi, pss, 200, "text/javascript; charset=utf-8",
			       wsm_client_js, wsm_client_js_len);
	case ROUTE_STATUS:
		return respond_status(wsi, pss, app);
	case ROUTE_METRICS:
		return respond_metrics(wsi, pss, app);
	case ROUTE_START_JOB:
		return start_job(wsi, pss, app);
	case ROUTE_JOB_LIST:
		return respond_json(wsi, pss, 200, jobs_list_json(app->jobs));
	case ROUTE_JOB:
		return show_job(wsi, pss, app);
	case ROUTE_CLEANUP:
		return cleanup(wsi, pss, app);
	case ROUTE_BAD_METHOD:
		return respond(wsi, pss, 405, "text/plain; charset=utf-8",
			       bad_method, strlen(bad_method));
	default:
		return respond(wsi, pss, 404, "text/plain; charset=utf-8",
			       not_found, strlen(not_found));
	}
}

static bool path_is(const char *uri, int len, const char *path)
{
	return (size_t)len == strlen(path) && !memcmp(uri, path, (size_t)len);
}

/* Whether uri is prefix + something; copies the something into pss->id. */
static bool path_under(struct pss *pss, const char *uri, int len,
		       const char *prefix)
{
	size_t plen = strlen(prefix), rest;

	if ((size_t)len < plen || memcmp(uri, prefix, plen))
		return false;
	rest = (size_t)len - plen;
	pss->id_too_long = rest >= sizeof(pss->id);
	if (!pss->id_too_long) {
		memcpy(pss->id, uri + plen, rest);
		pss->id[rest] = '\0';
	}
	return true;
}

/* The route, for the method the path takes; else ROUTE_BAD_METHOD. */
static enum route only(struct pss *pss, int method, int wanted, enum route r)
{
	if (method == wanted)
		return r;
	pss->allow = wanted == LWSHUMETH_POST ? "POST" : "GET";
	return ROUTE_BAD_METHOD;
}

static enum route route_of(struct pss *pss, int method, const char *uri,
			   int len)
{
	if (path_is(uri, len, "/"))
		return only(pss, method, LWSHUMETH_GET, ROUTE_PAGE);
	if (path_is(uri, len, CLIENT_PATH))
		return only(pss, method, LWSHUMETH_GET, ROUTE_CLIENT);
	if (path_is(uri, len, STATUS_PATH))
		return only(pss, method, LWSHUMETH_GET, ROUTE_STATUS);
	if (path_is(uri, len, METRICS_PATH))
		return only(pss, method, LWSHUMETH_GET, ROUTE_METRICS);
	if (path_is(uri, len, JOBS_PATH)) {
		if (method == LWSHUMETH_GET)
			return ROUTE_JOB_LIST;
		pss->allow = "GET, POST";
		return method == LWSHUMETH_POST ? ROUTE_START_JOB
						: ROUTE_BAD_METHOD;
	}
	if (path_under(pss, uri, len, JOBS_PATH "/"))
		return only(pss, method, LWSHUMETH_GET, ROUTE_JOB);
	if (path_under(pss, uri, len, CLEANUP_PREFIX))
		return only(pss, method, LWSHUMETH_POST, ROUTE_CLEANUP);
	return ROUTE_NOT_FOUND;
}

/*
 * Whether lws will deliver a body (and LWS_CALLBACK_HTTP_BODY_COMPLETION):
 * for a POST with any Content-Length, 0 included, and for other methods
 * with a positive one.
 */
static bool has_body(struct lws *wsi, int method)
{
	char cl[32];

	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <=
	    0)
		return false;
	return method == LWSHUMETH_POST || atoll(cl) > 0;
}

/* "Connection: close", among the header's comma-separated options. */
static bool asks_close(struct lws *wsi)
{
	char v[64], *tok, *save = NULL;

	if (lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_CONNECTION) <= 0)
		return false;
	for (tok = strtok_r(v, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
		if (!strcasecmp(tok, "close"))
			return true;
	return false;
}

/* ---- the protocol callback ----------------------------------------- */

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	struct http_app *app;
	struct pss *pss = user;
	char *uri = NULL;
	int method, uri_len = 0;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		app = lws_get_protocol(wsi)->user;
		response_free(pss);
		memset(pss, 0, sizeof(*pss));
		method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
		pss->route = route_of(pss, method, uri, uri_len);
		pss->close_after = asks_close(wsi);
		if (pss->route == ROUTE_CLEANUP)
			pss->auth = check_auth(wsi, app->admin_token);
		if (has_body(wsi, method))
			return 0; /* answered at LWS_CALLBACK_HTTP_BODY_COMPLETION */
		/*
		 * No Content-Length and no Transfer-Encoding is an empty body
		 * (RFC 9112 6.3), what `curl -X POST` sends. A chunked body
		 * lws 4.1 does not read for us: ask for a length.
		 */
		if (method == LWSHUMETH_POST && pss->route == ROUTE_START_JOB &&
		    lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING))
			return respond_error(wsi, pss, 411,
					     "Content-Length required");
		return answer(wsi, pss);

	case LWS_CALLBACK_HTTP_BODY:
		if (pss->route != ROUTE_START_JOB || len == 0)
			return 0; /* other routes ignore their body */
		if (len > sizeof(pss->body) - pss->body_len) {
			pss->body_too_long = true;
			return 0;
		}
		memcpy(pss->body + pss->body_len, in, len);
		pss->body_len += len;
		return 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return answer(wsi, pss);

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!pss || !pss->responding)
			return 0;
		return write_some(wsi, pss);

	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (pss)
			response_free(pss);
		break;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_protocols http_protocol(struct http_app *app)
{
	return (struct lws_protocols){
		.name = "http",
		.callback = http_callback,
		.per_session_data_size = sizeof(struct pss),
		.user = app,
	};
}
