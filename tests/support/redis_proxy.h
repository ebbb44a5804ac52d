/*
 * A TCP relay between cluster nodes and a test's redis-server, which breaks
 * the link in the ways a network or a wedged Redis does and a running
 * redis-server will not on cue: a reply lost after the command ran, a
 * connection that stays open but stops moving, replies that come late.
 * One relay thread; every wait bounded.
 */
#ifndef LIBWSM_TESTS_REDIS_PROXY_H
#define LIBWSM_TESTS_REDIS_PROXY_H

#include <stdbool.h>

#include "redis_server.h"

struct redis_proxy;

/* Which of a node's connections: the command one, or the subscriber. */
enum proxy_link {
	PROXY_CMD, /* its first command is INFO */
	PROXY_SUB  /* it has sent SUBSCRIBE */
};

/* Listens on a free 127.0.0.1 port for r's unix socket; NULL on failure. */
struct redis_proxy *proxy_start(const struct redis_server *r);
/* "redis://127.0.0.1:<port>", for WSM_OPT_CLUSTER_REDIS. */
const char *proxy_url(const struct redis_proxy *p);
void proxy_stop(struct redis_proxy *p);

/*
 * The next command connection to send a command containing word (e.g.
 * "EVALSHA") has Redis's reply to it thrown away and both its sockets
 * closed: the command ran, its answer is lost.
 */
void proxy_lose_reply_to(struct redis_proxy *p, const char *word);
/* New connections are closed at once (on), or relayed again (off). */
void proxy_refuse(struct redis_proxy *p, bool on);
/* How many replies proxy_lose_reply_to() has thrown away. */
unsigned proxy_replies_lost(struct redis_proxy *p);
/*
 * The connections of that kind open now stop moving bytes either way (on)
 * or move them again (off), their sockets left open: a wedged link.
 * Connections made later are not affected.
 */
void proxy_freeze(struct redis_proxy *p, enum proxy_link which, bool on);
/*
 * The subscribers open now stop passing on published messages (on) while
 * every other reply, PING's included, still flows: a wedge that only a
 * message through Redis can find. Subscribers connected later pass all.
 */
void proxy_mute(struct redis_proxy *p, bool on);
/* Redis's replies on connections of that kind wait (on) until off. */
void proxy_hold_replies(struct redis_proxy *p, enum proxy_link which,
			bool on);
/*
 * Published messages passed on to subscribers so far (reads that carried
 * one): in the node's socket once counted.
 */
unsigned proxy_pushed(struct redis_proxy *p);
/* Connections of that kind open now (those that sent their first command). */
unsigned proxy_links(struct redis_proxy *p, enum proxy_link which);

#endif
