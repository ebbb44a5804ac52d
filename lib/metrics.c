/* The metrics snapshot and the JSON status document. Any thread. */
#include <jansson.h>
#include <string.h>

#include "internal.h"

static uint64_t rd(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void snapshot(wsm_manager_t *m, wsm_metrics_t *s)
{
	uint64_t open;
	size_t i;

	memset(s, 0, sizeof(*s));
	s->size = sizeof(*s);

	s->closing = rd(&m->c.closing);
	s->stale = rd(&m->c.stale);
	/* One read of open for both figures, and stale within it: another
	 * thread's snapshot must still find active + stale <= connections. */
	open = rd(&m->c.open);
	if (s->stale > open)
		s->stale = open;
	s->active = open - s->stale;
	s->connections = open + s->closing;
	s->sessions = rd(&m->c.sessions);
	s->held_bytes = rd(&m->c.held_bytes);
	s->opened = rd(&m->c.opened);
	s->refused_bad_request = rd(&m->c.refused_bad_request);
	s->refused_denied = rd(&m->c.refused_denied);
	s->refused_session_limit = rd(&m->c.refused_session_limit);
	s->refused_global_limit = rd(&m->c.refused_global_limit);
	s->refused_shutdown = rd(&m->c.refused_shutdown);
	for (i = 0; i < WSM_CAUSE_SLOTS; i++)
		s->closed[i] = rd(&m->c.closed[i]);
	s->broadcasts = rd(&m->c.broadcasts);
	s->unrouted = rd(&m->c.unrouted);
	s->messages_queued = rd(&m->c.messages_queued);
	s->messages_sent = rd(&m->c.messages_sent);
	s->bytes_sent = rd(&m->c.bytes_sent);
	s->pings_sent = rd(&m->c.pings_sent);
	s->coalesced = rd(&m->c.coalesced);
	s->queued_bytes = rd(&m->c.queued_bytes);
	s->retained_sessions = rd(&m->c.retained_sessions);
	s->retained_bytes = rd(&m->c.retained_bytes);
	s->retained_evicted = rd(&m->c.retained_evicted);
	s->resets = rd(&m->c.resets);
	s->app_pings_sent = rd(&m->c.app_pings_sent);
	s->rtt_samples = rd(&m->c.rtt_samples);
	s->rtt_sum_us = rd(&m->c.rtt_sum_us);
	s->rtt_max_us = rd(&m->c.rtt_max_us);
	s->refused_origin = rd(&m->c.refused_origin);
	s->refused_per_ip = rd(&m->c.refused_per_ip);
	s->refused_rate = rd(&m->c.refused_rate);
	for (i = 0; i < WSM_REFUSAL_SLOTS; i++)
		s->refused[i] = rd(&m->c.refused[i]);
	s->setup_problems = rd(&m->c.setup_problems);
	s->queue_peak_bytes = rd(&m->c.queue_peak_bytes);
	s->queue_peak_messages = rd(&m->c.queue_peak_messages);
	s->cluster_link_up = rd(&m->c.cluster_link_up);
	s->cluster_reconnects = rd(&m->c.cluster_reconnects);
	s->cluster_publishes = rd(&m->c.cluster_publishes);
	s->cluster_publish_failures = rd(&m->c.cluster_publish_failures);
	s->cluster_publish_rtt_sum_us = rd(&m->c.cluster_rtt_sum_us);
	s->cluster_publish_rtt_max_us = rd(&m->c.cluster_rtt_max_us);
#ifdef WSM_WITH_CLUSTER
	if (m->cluster) {
		s->cluster_outbox_messages = wsm__cluster_outbox(m, false);
		s->cluster_outbox_bytes = wsm__cluster_outbox(m, true);
	}
#endif
	s->cluster_gap_repairs = rd(&m->c.cluster_gap_repairs);
	s->cluster_epoch_resets = rd(&m->c.cluster_epoch_resets);
	s->cluster_subscribed = rd(&m->c.cluster_subscribed);
	s->cluster_bad_messages = rd(&m->c.cluster_bad_messages);
	s->cluster_link_losses = rd(&m->c.cluster_link_losses);
	s->cluster_dropped = rd(&m->c.cluster_dropped);
	s->cluster_wedged = rd(&m->c.cluster_wedged);
	s->cluster_connect_failures = rd(&m->c.cluster_connect_failures);
	s->cluster_unreplicated = rd(&m->c.cluster_unreplicated);
}

int wsm_metrics(wsm_manager_t *m, wsm_metrics_t *out)
{
	wsm_metrics_t s;
	size_t n;
	int rc;

	if (!out || out->size < sizeof(size_t) + sizeof(uint64_t))
		return WSM_EINVAL;
	if ((rc = wsm__acquire(m)))
		return rc;
	snapshot(m, &s);
	wsm__release(m);
	/* An older caller's struct is shorter: fill what it knows, keep its size. */
	n = out->size < sizeof(s) ? out->size : sizeof(s);
	memcpy((char *)out + sizeof(size_t), (char *)&s + sizeof(size_t),
	       n - sizeof(size_t));
	return WSM_OK;
}

/* Refusals by reason name, the reasons that ever happened only. */
static json_t *refused_json(const wsm_metrics_t *s)
{
	json_t *obj = json_object();
	int i;

	for (i = 1; obj && i < WSM_REFUSAL_SLOTS; i++)
		if (s->refused[i] &&
		    json_object_set_new(obj, wsm_refusal_name((wsm_refusal_t)i),
					json_integer((json_int_t)s->refused[i]))) {
			json_decref(obj);
			return NULL;
		}
	return obj;
}

/* What the vhost checks found wrong with the host's setup. */
static json_t *setup_json(uint64_t problems)
{
	json_t *arr = json_array();

	if (arr && (problems & WSM_SETUP_NOT_DEFAULT))
		json_array_append_new(arr, json_string("not_default"));
	if (arr && (problems & WSM_SETUP_UNGUARDED))
		json_array_append_new(arr, json_string("unguarded"));
	return arr;
}

static json_t *metrics_json(const wsm_metrics_t *s)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:{s:I}, s:o, s:o}",
			 "totalConnections", (json_int_t)s->connections,
			 "activeConnections", (json_int_t)s->active,
			 "staleConnections", (json_int_t)s->stale,
			 "closingConnections", (json_int_t)s->closing,
			 "sessions", (json_int_t)s->sessions,
			 "memoryUsage", "heldBytes", (json_int_t)s->held_bytes,
			 "refused", refused_json(s),
			 "setupProblems", setup_json(s->setup_problems));
}

/* This node in the cluster, or JSON null on a single node. */
static json_t *cluster_json(const wsm_manager_t *m, const wsm_metrics_t *s)
{
#ifdef WSM_WITH_CLUSTER
	if (m->cluster)
		return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, "
				 "s:I}",
				 "nodeId", wsm__cluster_node_id(m), "link",
				 wsm__cluster_link_name(m),
				 "outboxMessages",
				 (json_int_t)s->cluster_outbox_messages,
				 "subscribedSessions",
				 (json_int_t)s->cluster_subscribed, "publishes",
				 (json_int_t)s->cluster_publishes, "reconnects",
				 (json_int_t)s->cluster_reconnects, "linkLosses",
				 (json_int_t)s->cluster_link_losses, "wedged",
				 (json_int_t)s->cluster_wedged, "connectFailures",
				 (json_int_t)s->cluster_connect_failures);
#else
	(void)m;
	(void)s;
#endif
	return json_null();
}

int wsm_status_json(wsm_manager_t *m, char *buf, size_t size)
{
	wsm_metrics_t s;
	json_t *doc;
	size_t n;
	int rc;

	if (!buf && size)
		return WSM_EINVAL;
	if ((rc = wsm__acquire(m)))
		return rc;
	snapshot(m, &s);
	doc = json_pack("{s:s, s:o, s:o, s:o, s:I}", "status",
			atomic_load(&m->shutting_down) ? "shutting_down"
			: atomic_load(&m->draining)    ? "draining"
						       : "ok",
			"metrics", metrics_json(&s), "cluster",
			cluster_json(m, &s), "config",
			wsm__settings_json(&m->cfg), "timestamp",
			(json_int_t)wsm__wall_ms());
	wsm__release(m);
	if (!doc)
		return WSM_ENOMEM;
	n = json_dumpb(doc, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (n && size > n) {
		json_dumpb(doc, buf, n, JSON_COMPACT | JSON_PRESERVE_ORDER);
		buf[n] = '\0';
	} else if (size) {
		buf[0] = '\0';
	}
	json_decref(doc);
	return n ? (int)n : WSM_ENOMEM;
}
