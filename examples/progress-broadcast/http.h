/*
 * The plain HTTP side of the server: the page, the job API and the status
 * document. WebSocket upgrades never come here; libwsm's protocol takes them.
 */
#ifndef PROGRESS_BROADCAST_HTTP_H
#define PROGRESS_BROADCAST_HTTP_H

#include <libwebsockets.h>
#include <wsm.h>

struct jobs;

struct http_app {
	wsm_manager_t *m;
	struct jobs *jobs;
};

/*
 * The lws protocol entry serving HTTP, to be put first in the vhost's
 * protocol array: lws hands every request that matches no mount to the
 * first protocol. app must outlive the lws context.
 */
struct lws_protocols http_protocol(struct http_app *app);

#endif
