/*
 * The HTTP side; see http.h.
 *
 *	GET  /                                 the page (index.html, embedded)
 *	POST /api/images_mvp/jobs              start a job: {"sessionId":"..."}
 *	GET  /api/images_mvp/websocket/status  wsm_status_json()
 *
 * Anything else is 404. A request is answered once its body, if it has one,
 * has been read; the response is then written from LWS_CALLBACK_HTTP_WRITEABLE,
 * headers first, then the body in chunks, the last one marked
 * LWS_WRITE_HTTP_FINAL, after which the transaction is completed so that a
 * keep-alive connection can carry the next request.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "index_html.h"
#include "jobs.h"

#define JOBS_PATH "/api/images_mvp/jobs"
#define STATUS_PATH "/api/images_mvp/websocket/status"

#define MAX_BODY 1024 /* largest job request body read */
#define CHUNK 4096    /* response bytes per write */

enum route { ROUTE_NOT_FOUND, ROUTE_PAGE, ROUTE_STATUS, ROUTE_JOBS };

/* One transaction. lws allocates it zeroed each time it binds us. */
struct pss {
	enum route route;
	size_t body_len;
	bool body_too_long;
	char body[MAX_BODY];

	bool responding, headers_sent, retry_after;
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

/* Writes the headers, or the next chunk of the body. */
static int write_some(struct lws *wsi, struct pss *pss)
{
	unsigned char buf[LWS_PRE + CHUNK], *start = buf + LWS_PRE, *p = start,
					    *end = buf + sizeof(buf);
	static const char no_store[] = "no-store", retry[] = "1";
	size_t n;
	bool final;

	if (!pss->headers_sent) {
		if (lws_add_http_common_headers(wsi, pss->status,
						pss->content_type, pss->len,
						&p, end) ||
		    lws_add_http_header_by_token(
			    wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
			    (const unsigned char *)no_store,
			    (int)strlen(no_store), &p, end) ||
		    (pss->retry_after &&
		     lws_add_http_header_by_token(
			     wsi, WSI_TOKEN_HTTP_RETRY_AFTER,
			     (const unsigned char *)retry, (int)strlen(retry),
			     &p, end)) ||
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
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- routes -------------------------------------------------------- */

static int respond_status(struct lws *wsi, struct pss *pss,
			  struct http_app *app)
{
	size_t size = 1024;
	char *doc;
	int n, tries;

	/* The figures may grow between two calls: retry a few times. */
	for (tries = 0; tries < 4; tries++) {
		if (!(doc = malloc(size)))
			return -1;
		n = wsm_status_json(app->m, doc, size);
		if (n < 0) {
			free(doc);
			return respond_error(wsi, pss, 500, wsm_strerror(n));
		}
		if ((size_t)n < size) {
			pss->owned = doc;
			return respond(wsi, pss, 200, "application/json", doc,
				       (size_t)n);
		}
		free(doc);
		size = (size_t)n + 64;
	}
	return respond_error(wsi, pss, 500, "status document kept growing");
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

static int answer(struct lws *wsi, struct pss *pss)
{
	static const char not_found[] = "not found\n";
	struct http_app *app = lws_get_protocol(wsi)->user;

	if ((pss->route == ROUTE_STATUS || pss->route == ROUTE_JOBS) &&
	    (!app->m || !app->jobs)) {
		/* main() is tearing down the manager and the jobs. */
		pss->retry_after = true;
		return respond_error(wsi, pss, 503,
				     "the server is shutting down");
	}
	switch (pss->route) {
	case ROUTE_PAGE:
		return respond(wsi, pss, 200, "text/html; charset=utf-8",
			       index_html, index_html_len);
	case ROUTE_STATUS:
		return respond_status(wsi, pss, app);
	case ROUTE_JOBS:
		return start_job(wsi, pss, app);
	default:
		return respond(wsi, pss, 404, "text/plain; charset=utf-8",
			       not_found, strlen(not_found));
	}
}

static bool path_is(const char *uri, int len, const char *path)
{
	return (size_t)len == strlen(path) && !memcmp(uri, path, (size_t)len);
}

static enum route route_of(int method, const char *uri, int len)
{
	if (method == LWSHUMETH_GET && path_is(uri, len, "/"))
		return ROUTE_PAGE;
	if (method == LWSHUMETH_GET && path_is(uri, len, STATUS_PATH))
		return ROUTE_STATUS;
	if (method == LWSHUMETH_POST && path_is(uri, len, JOBS_PATH))
		return ROUTE_JOBS;
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

/* ---- the protocol callback ----------------------------------------- */

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	struct pss *pss = user;
	char *uri = NULL;
	int method, uri_len = 0;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		response_free(pss);
		memset(pss, 0, sizeof(*pss));
		method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
		pss->route = route_of(method, uri, uri_len);
		if (has_body(wsi, method))
			return 0; /* answered at LWS_CALLBACK_HTTP_BODY_COMPLETION */
		if (method == LWSHUMETH_POST && pss->route == ROUTE_JOBS)
			/* Without a length lws would read until the peer closes. */
			return respond_error(wsi, pss, 411,
					     "Content-Length required");
		return answer(wsi, pss);

	case LWS_CALLBACK_HTTP_BODY:
		if (pss->route != ROUTE_JOBS || len == 0)
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
