#include <wsm.h>

#include "cluster_node.h"

static int set_str(wsm_config_t *cfg, wsm_option_t opt, const char *value)
{
	return value ? wsm_config_set_str(cfg, opt, value) : 0;
}

harness_t *cluster_node_start(const char *url, const char *id,
			      const struct cluster_node_opts *o)
{
	struct harness_opts ho = { .mode = HARNESS_READY, .libuv = o->libuv,
				   .iface = o->iface };
	wsm_config_t *cfg = wsm_config_new();
	harness_t *h = NULL;

	/* Short waits: a test never sits out the defaults. */
	if (cfg && !wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS, url) &&
	    !wsm_config_set_str(cfg, WSM_OPT_CLUSTER_NODE_ID, id) &&
	    !wsm_config_set_int(cfg, WSM_OPT_CLUSTER_TIMEOUT_MS,
				o->timeout_ms ? o->timeout_ms : 1000) &&
	    !wsm_config_set_int(cfg, WSM_OPT_CLUSTER_RETRY_MAX_MS,
				o->retry_max_ms ? o->retry_max_ms : 100) &&
	    (!o->outbox_messages ||
	     !wsm_config_set_int(cfg, WSM_OPT_CLUSTER_OUTBOX_MESSAGES,
				 o->outbox_messages)) &&
	    !wsm_config_set_int(cfg, WSM_OPT_CLUSTER_HISTORY, o->history) &&
	    !wsm_config_set_int(cfg, WSM_OPT_ANNOUNCED_ONLY, o->announced_only) &&
	    !wsm_config_set_int(cfg, WSM_OPT_CLUSTER_REPLICAS, o->replicas) &&
	    (!o->probe_ms ||
	     !wsm_config_set_int(cfg, WSM_OPT_CLUSTER_PROBE_MS, o->probe_ms)) &&
	    !set_str(cfg, WSM_OPT_CLUSTER_USER, o->user) &&
	    !set_str(cfg, WSM_OPT_CLUSTER_PASSWORD, o->password) &&
	    !set_str(cfg, WSM_OPT_CLUSTER_SENTINEL_USER, o->sentinel_user) &&
	    !set_str(cfg, WSM_OPT_CLUSTER_SENTINEL_PASSWORD,
		     o->sentinel_password) &&
	    !set_str(cfg, WSM_OPT_CLUSTER_TLS_CA_FILE, o->ca_file) &&
	    !set_str(cfg, WSM_OPT_CLUSTER_TLS_CA_PATH, o->ca_path) &&
	    !set_str(cfg, WSM_OPT_CLUSTER_TLS_CERT_FILE, o->cert_file) &&
	    !set_str(cfg, WSM_OPT_CLUSTER_TLS_KEY_FILE, o->key_file))
		h = harness_start(cfg, &ho);
	wsm_config_free(cfg);
	/* Usable once every Redis link is up: the host is told. */
	if (h && !o->unchecked &&
	    harness_wait_events(h, WSM_EVENT_CLUSTER_UP, -1, NULL, 1, 10000)) {
		harness_stop(h);
		h = NULL;
	}
	return h;
}
