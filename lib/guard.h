/*
 * The upgrade guard: what keeps WebSocket upgrades on a vhost from reaching
 * any protocol but libwsm's. wsm_setup_info() puts a guard in front of each
 * of the host's other protocols; the guard forwards every callback to the
 * host's own and refuses the upgrades lws would hand to that protocol.
 */
#ifndef WSM_GUARD_H
#define WSM_GUARD_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "wsm.h"

/*
 * A guarding callback for orig on behalf of m: NULL when every guard is in
 * use. A guard forwards to orig for the life of the process; it serves m
 * until m is destroyed.
 */
lws_callback_function *wsm__guard_new(wsm_manager_t *m,
				      lws_callback_function *orig);
/* Whether cb is one of the guards (a list set up twice stays as it is). */
bool wsm__guard_is(lws_callback_function *cb);
/* m is being destroyed: its guards forward, and refuse every upgrade. */
void wsm__guard_release(wsm_manager_t *m);

/*
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, seen by libwsm's entry or a guard:
 * 0 when the upgrade may go on to the protocol lws will pick, else the
 * refusal was answered and the value is what the callback returns.
 */
int wsm__confirm_upgrade(wsm_manager_t *m, struct lws *wsi, const char *up);

#endif /* WSM_GUARD_H */
