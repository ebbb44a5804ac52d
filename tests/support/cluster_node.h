/*
 * A cluster node for a test: a harness whose manager is in cluster mode
 * against one Redis URL, started and up (WSM_EVENT_CLUSTER_UP seen).
 */
#ifndef LIBWSM_TESTS_CLUSTER_NODE_H
#define LIBWSM_TESTS_CLUSTER_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

struct cluster_node_opts {
	int64_t outbox_messages; /* 0: the default */
	int64_t timeout_ms;      /* 0: 1000 */
	int64_t history;         /* WSM_OPT_CLUSTER_HISTORY */
	int64_t retry_max_ms;    /* 0: 100 */
	bool announced_only;     /* WSM_OPT_ANNOUNCED_ONLY */
	bool unchecked;          /* returned without waiting for an UP */
	bool libuv;
	const char *iface;       /* NULL: the harness's */
	int64_t probe_ms;        /* WSM_OPT_CLUSTER_PROBE_MS; 0: the default */
	int64_t replicas;        /* WSM_OPT_CLUSTER_REPLICAS */
	/* WSM_OPT_CLUSTER_USER, _PASSWORD and _TLS_*; NULL: not set. */
	const char *user, *password;
	const char *sentinel_user, *sentinel_password;
	const char *ca_file, *ca_path, *cert_file, *key_file;
};

/*
 * NULL when the manager or the harness could not start, or no UP came
 * (unless o->unchecked).
 */
harness_t *cluster_node_start(const char *url, const char *id,
			      const struct cluster_node_opts *o);

#endif
