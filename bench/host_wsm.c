/*
 * host_wsm: the bench host using libwsm's ready protocol entry. A producer
 * thread broadcasts progress "t=<CLOCK_MONOTONIC ns>" to every session
 * s0..s<N-1> at --rate per session per second (one burst per period, or
 * spread over --subticks). Options: host_common.h; usage: --help.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <wsm.h>

#include "host_common.h"

struct app {
	wsm_manager_t *m;
	long eagain, errors;
	uint64_t held_at_start;
};

static void broadcast(void *user, int session, double progress,
		      int64_t now_ns)
{
	struct app *a = user;
	char id[24], msg[40];
	int rc;

	snprintf(id, sizeof(id), "s%d", session);
	snprintf(msg, sizeof(msg), "t=%" PRId64, now_ns);
	rc = wsm_broadcast_progress(a->m, id, progress, msg, "bench");
	if (rc == WSM_EAGAIN)
		a->eagain++;
	else if (rc)
		a->errors++;
}

static void report(void *user, char *buf, size_t n)
{
	struct app *a = user;
	wsm_metrics_t mt;

	memset(&mt, 0, sizeof(mt));
	mt.size = sizeof(mt);
	if (!a->m || wsm_metrics(a->m, &mt))
		return;
	snprintf(buf, n,
		 ",\"host\":\"wsm\",\"connections\":%" PRIu64
		 ",\"sessions\":%" PRIu64 ",\"held_bytes\":%" PRIu64
		 ",\"opened\":%" PRIu64 ",\"messages_sent\":%" PRIu64
		 ",\"bytes_sent\":%" PRIu64 ",\"messages_queued\":%" PRIu64
		 ",\"coalesced\":%" PRIu64 ",\"queued_bytes\":%" PRIu64
		 ",\"pings_sent\":%" PRIu64 ",\"broadcasts\":%" PRIu64
		 ",\"unrouted\":%" PRIu64 ",\"retained_bytes\":%" PRIu64
		 ",\"closed_peer\":%" PRIu64 ",\"closed_error\":%" PRIu64
		 ",\"closed_stale\":%" PRIu64 ",\"closed_slow\":%" PRIu64
		 ",\"refused\":%" PRIu64 ",\"refused_per_ip\":%" PRIu64
		 ",\"refused_rate\":%" PRIu64 ",\"eagain\":%ld,\"errors\":%ld"
		 ",\"cluster_publishes\":%" PRIu64
		 ",\"cluster_rtt_sum_us\":%" PRIu64
		 ",\"cluster_outbox\":%" PRIu64,
		 mt.connections, mt.sessions, mt.held_bytes, mt.opened,
		 mt.messages_sent, mt.bytes_sent, mt.messages_queued,
		 mt.coalesced, mt.queued_bytes, mt.pings_sent, mt.broadcasts,
		 mt.unrouted, mt.retained_bytes, mt.closed[WSM_CAUSE_PEER],
		 mt.closed[WSM_CAUSE_ERROR], mt.closed[WSM_CAUSE_STALE],
		 mt.closed[WSM_CAUSE_SLOW_CONSUMER],
		 mt.refused_bad_request + mt.refused_denied +
			 mt.refused_session_limit + mt.refused_global_limit +
			 mt.refused_shutdown + mt.refused_origin +
			 mt.refused_per_ip + mt.refused_rate,
		 mt.refused_per_ip, mt.refused_rate, a->eagain, a->errors,
		 mt.cluster_publishes, mt.cluster_publish_rtt_sum_us,
		 mt.cluster_outbox_messages);
}

static void shutdown_app(void *user)
{
	struct app *a = user;

	wsm_manager_destroy(a->m);
	a->m = NULL;
}

static int set(wsm_config_t *cfg, wsm_option_t opt, long v)
{
	int rc;

	if (v < 0)
		return 0;
	rc = wsm_config_set_int(cfg, opt, v);
	if (rc)
		fprintf(stderr, "host_wsm: option %d=%ld: %s\n", (int)opt, v,
			wsm_strerror(rc));
	return rc;
}

int main(int argc, char **argv)
{
	static const struct lws_protocols protocols[] = {
		{ "http", lws_callback_http_dummy, 0, 0, 0, NULL, 0 },
		{ NULL, NULL, 0, 0, 0, NULL, 0 }
	};
	struct lws_context_creation_info info;
	wsm_config_t *cfg;
	struct host h;
	struct app a;
	int err;

	memset(&h, 0, sizeof(h));
	memset(&a, 0, sizeof(a));
	host_parse(argc, argv, &h.o, "host_wsm");
	lws_set_log_level(LLL_ERR, NULL);

	cfg = wsm_config_new();
	if (!cfg)
		return 1;
	if (set(cfg, WSM_OPT_MAX_CONNECTIONS, h.o.max_conns) ||
	    set(cfg, WSM_OPT_MAX_CONNECTIONS_PER_SESSION, h.o.per_session) ||
	    set(cfg, WSM_OPT_PING_INTERVAL_MS, h.o.ping_ms) ||
	    set(cfg, WSM_OPT_STALE_TIMEOUT_MS, h.o.stale_ms) ||
	    set(cfg, WSM_OPT_MAX_LIFETIME_MS,
		h.o.lifetime_ms < 0 ? 86400000L : h.o.lifetime_ms) ||
	    set(cfg, WSM_OPT_RX_BUFFER_SIZE, h.o.rx) ||
	    set(cfg, WSM_OPT_MAX_QUEUED_MESSAGES, h.o.queue) ||
	    set(cfg, WSM_OPT_RETENTION_MS, h.o.retention_ms) ||
	    set(cfg, WSM_OPT_MAX_CONNECTIONS_PER_IP, h.o.max_per_ip) ||
	    set(cfg, WSM_OPT_MAX_UPGRADE_RATE, h.o.max_upgrade_rate))
		return 2;
	if ((h.o.redis &&
	     (err = wsm_config_set_str(cfg, WSM_OPT_CLUSTER_REDIS, h.o.redis))) ||
	    (h.o.node_id && (err = wsm_config_set_str(cfg, WSM_OPT_CLUSTER_NODE_ID,
						      h.o.node_id))) ||
	    (h.o.cluster_history &&
	     (err = wsm_config_set_int(cfg, WSM_OPT_CLUSTER_HISTORY,
				       h.o.cluster_history)))) {
		fprintf(stderr, "host_wsm: cluster: %s\n", wsm_strerror(err));
		return 2;
	}
	a.m = wsm_manager_new(cfg, &err);
	wsm_config_free(cfg);
	if (!a.m) {
		fprintf(stderr, "host_wsm: %s\n", wsm_strerror(err));
		return 1;
	}

	memset(&info, 0, sizeof(info));
	info.protocols = protocols;
	/* libwsm's entry as the default, the HTTP protocol guarded, and
	 * lws's per-wsi validity timer off (wsm_setup_info(3)). */
	if ((err = wsm_setup_info(a.m, &info))) {
		fprintf(stderr, "host_wsm: %s\n", wsm_strerror(err));
		wsm_manager_destroy(a.m);
		return 1;
	}
	/* --lws-validity measures lws's default policy instead. */
	if (h.o.lws_validity)
		info.retry_and_idle_policy = NULL;

	h.user = &a;
	h.broadcast = broadcast;
	h.report = report;
	h.shutdown = shutdown_app;
	if (host_create_context(&h, &info)) {
		wsm_manager_destroy(a.m);
		return 1;
	}
	return host_run(&h);
}
