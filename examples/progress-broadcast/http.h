/*
 * The plain HTTP side of the server: the page, the job API, the status
 * document, the metrics and the cleanup endpoint. WebSocket upgrades never
 * come here; libwsm's protocol takes them.
 */
#ifndef PROGRESS_BROADCAST_HTTP_H
#define PROGRESS_BROADCAST_HTTP_H

#include <libwebsockets.h>
#include <wsm.h>

struct jobs;

struct http_app {
	wsm_manager_t *m;        /* NULL once destroyed: requests get 503 */
	struct jobs *jobs;       /* NULL once destroyed: job requests get 503 */
	const char *admin_token; /* NULL: cleanup is disabled (403) */
};

/*
 * The lws protocol entry serving HTTP, to be put first in the vhost's
 * protocol array: lws hands every request that matches no mount to the
 * first protocol. app must outlive the lws context.
 */
struct lws_protocols http_protocol(struct http_app *app);

#endif
