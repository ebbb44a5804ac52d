/* Client-side helpers shared by the integration tests. */
#ifndef LIBWSM_TESTS_SESSION_CLIENT_H
#define LIBWSM_TESTS_SESSION_CLIENT_H

#include <jansson.h>

#include "harness.h"
#include "wsclient.h"

#define PREFIX "/api/images_mvp/progress/"

/* Upgrades to PREFIX<session>; *status gets the HTTP status (may be NULL). */
wsc_t *join_session(harness_t *h, const char *session, int *status);
/* Next message as JSON (NULL on timeout, close or bad JSON). */
json_t *recv_json(wsc_t *c, int timeout_ms);
/* Reads messages until one of this type arrives; NULL otherwise. */
json_t *recv_type(wsc_t *c, const char *type, int timeout_ms);

#endif
