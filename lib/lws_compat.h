/*
 * Every difference between the lws versions libwsm supports (4.1.6 as
 * Debian 12 ships it, 4.3.x as Debian 13, Ubuntu 24.04, Fedora and Alpine
 * do) lives behind this header: the rest of lib/ calls these and never
 * tests LWS_LIBRARY_VERSION_*. wsm(7), "LIBWEBSOCKETS VERSIONS", lists the
 * differences and what libwsm makes of each.
 */
#ifndef WSM_LWS_COMPAT_H
#define WSM_LWS_COMPAT_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The value of the upgrade URL's query argument `name` (given without its
 * '='), NUL-terminated in buf: its length, or -1 when no argument has that
 * name or the first that has does not fit. lws 4.1 returns a pointer past
 * "name=" inside buf, 4.3 moves the value to the start of buf.
 */
int wsm__lws_query_arg(struct lws *wsi, const char *name, char *buf,
		       size_t size);

/*
 * Whether the request target holds a NUL (from %00), which lws drops
 * unanswered before any callback, but not everywhere: 4.1 keeps one right
 * after a '/' in the path, 4.3 one in a query argument's value (where it
 * can be seen: not at the end of a value). libwsm drops those too, so
 * both versions answer every %00 alike.
 */
bool wsm__lws_request_unparsable(struct lws *wsi);

/*
 * The peer's address as text, an IPv4 peer always as a.b.c.d: false when
 * lws cannot tell. For a vhost with no interface, lws 4.1 listens on one
 * dual-stack socket (IPv4 peers come as ::ffff:a.b.c.d), 4.3 on an IPv4
 * and an IPv6 socket.
 */
bool wsm__lws_peer_address(struct lws *wsi, char *ip, size_t size);

#endif
