/* Client-side helpers shared by the integration tests. */
#ifndef LIBWSM_TESTS_SESSION_CLIENT_H
#define LIBWSM_TESTS_SESSION_CLIENT_H

#include <jansson.h>

#include "harness.h"
#include "wsclient.h"

#define PREFIX "/api/images_mvp/progress/"

/* Upgrades to PREFIX<session>; *status gets the HTTP status (may be NULL). */
wsc_t *join_session(harness_t *h, const char *session, int *status);
/*
 * Upgrades to PREFIX<path> (path may carry a query) and waits for the
 * manager's open event; NULL unless both happened (*status may be NULL).
 */
wsc_t *join_and_wait(harness_t *h, const char *path, int *status);
/* Monotonic milliseconds, for tests that time what they watch. */
int64_t now_ms(void);
/* A malloc'ed string of n copies of ch (NULL on out of memory). */
char *repeat_char(char ch, size_t n);
/* Next message as JSON (NULL on timeout, close or bad JSON). */
json_t *recv_json(wsc_t *c, int timeout_ms);
/* Reads messages until one of this type arrives; NULL otherwise. */
json_t *recv_type(wsc_t *c, const char *type, int timeout_ms);

/*
 * Broadcasts errors of len bytes (errors are never coalesced) to session,
 * whose conns clients read nothing, until libwsm itself holds min_bytes
 * for them: the kernel's socket buffers are full by then. Returns how
 * many were broadcast, or -1 (a call failed, or nothing backed up).
 */
int back_up_queues(harness_t *h, const char *session, unsigned conns,
		   size_t len, uint64_t min_bytes);
#endif
