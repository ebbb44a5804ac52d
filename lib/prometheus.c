/*
 * The metrics in the Prometheus text exposition format (0.0.4): one
 * snapshot rendered as families, each a "# HELP" and a "# TYPE" line and
 * its samples. Counters end in _total, units are in the names (bytes,
 * seconds), and label values are fixed words, so nothing needs escaping.
 * Written into the caller's buffer, snprintf-style, like the status
 * document.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The caller's buffer; len counts what the whole text needs. */
struct out {
	char *buf;
	size_t size, len;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->len < o->size ? o->buf + o->len : NULL,
		      o->len < o->size ? o->size - o->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static void family(struct out *o, const char *name, const char *type,
		   const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void single(struct out *o, const char *name, const char *type,
		   const char *help, uint64_t value)
{
	family(o, name, type, help);
	put(o, "%s %" PRIu64 "\n", name, value);
}

/*
 * Round trips: a summary "<base>_seconds" (sum and count) and the longest
 * as the gauge "<base>_max_seconds".
 */
static void round_trips(struct out *o, const char *base, const char *help,
			const char *max_help, uint64_t sum_us, uint64_t count,
			uint64_t max_us)
{
	char name[64];

	snprintf(name, sizeof(name), "%s_seconds", base);
	family(o, name, "summary", help);
	put(o, "%s_sum %.6f\n", name, (double)sum_us / 1e6);
	put(o, "%s_count %" PRIu64 "\n", name, count);
	snprintf(name, sizeof(name), "%s_max_seconds", base);
	family(o, name, "gauge", max_help);
	put(o, "%s %.6f\n", name, (double)max_us / 1e6);
}

static void labelled(struct out *o, const char *name, const char *label,
		     const char *value, uint64_t n)
{
	put(o, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, value, n);
}

static void connections(struct out *o, const wsm_metrics_t *mx)
{
	family(o, "wsm_connections", "gauge",
	       "WebSocket connections held, by state.");
	labelled(o, "wsm_connections", "state", "active", mx->active);
	labelled(o, "wsm_connections", "state", "stale", mx->stale);
	labelled(o, "wsm_connections", "state", "closing", mx->closing);
	single(o, "wsm_sessions", "gauge",
	       "Sessions held, retained ones included.", mx->sessions);
	single(o, "wsm_retained_sessions", "gauge",
	       "Sessions kept for replay without a connection.",
	       mx->retained_sessions);
	single(o, "wsm_held_bytes", "gauge",
	       "Heap bytes libwsm holds right now.", mx->held_bytes);
	single(o, "wsm_queued_bytes", "gauge",
	       "Payload bytes waiting in connection queues.", mx->queued_bytes);
	single(o, "wsm_retained_bytes", "gauge",
	       "Bytes held by replay state, all sessions.", mx->retained_bytes);
	single(o, "wsm_queue_peak_bytes", "gauge",
	       "Most payload bytes one connection queue has held.",
	       mx->queue_peak_bytes);
	single(o, "wsm_queue_peak_messages", "gauge",
	       "Most messages one connection queue has held.",
	       mx->queue_peak_messages);
}

static void admissions(struct out *o, const wsm_metrics_t *mx)
{
	static const char refused[] = "wsm_connections_refused_total",
			  closed[] = "wsm_connections_closed_total";
	int i;

	single(o, "wsm_connections_opened_total", "counter",
	       "Connections admitted.", mx->opened);
	family(o, refused, "counter", "Upgrades refused, by reason.");
	for (i = 1; i < WSM_REFUSAL_SLOTS; i++)
		if (strcmp(wsm_refusal_name((wsm_refusal_t)i), "unknown"))
			labelled(o, refused, "reason",
				 wsm_refusal_name((wsm_refusal_t)i),
				 mx->refused[i]);
	family(o, closed, "counter", "Connections torn down, by cause.");
	for (i = 1; i < WSM_CAUSE_SLOTS; i++)
		if (strcmp(wsm_cause_name((wsm_close_cause_t)i), "unknown"))
			labelled(o, closed, "cause",
				 wsm_cause_name((wsm_close_cause_t)i),
				 mx->closed[i]);
	family(o, "wsm_setup_problem", "gauge",
	       "1 when the vhost checks found this setup problem.");
	labelled(o, "wsm_setup_problem", "problem", "not_default",
		 !!(mx->setup_problems & WSM_SETUP_NOT_DEFAULT));
	labelled(o, "wsm_setup_problem", "problem", "unguarded",
		 !!(mx->setup_problems & WSM_SETUP_UNGUARDED));
}

static void delivery(struct out *o, const wsm_metrics_t *mx)
{
	single(o, "wsm_broadcasts_total", "counter", "Broadcasts accepted.",
	       mx->broadcasts);
	single(o, "wsm_broadcasts_unrouted_total", "counter",
	       "Broadcasts to sessions with no connection.", mx->unrouted);
	single(o, "wsm_messages_queued_total", "counter",
	       "Message copies queued to connections.", mx->messages_queued);
	single(o, "wsm_messages_sent_total", "counter", "Data frames written.",
	       mx->messages_sent);
	single(o, "wsm_sent_bytes_total", "counter", "Payload bytes written.",
	       mx->bytes_sent);
	single(o, "wsm_messages_coalesced_total", "counter",
	       "Queued progress messages replaced by a newer one.",
	       mx->coalesced);
	single(o, "wsm_pings_sent_total", "counter", "WebSocket pings sent.",
	       mx->pings_sent);
	single(o, "wsm_app_pings_sent_total", "counter",
	       "JSON pings sent (WSM_OPT_APP_PING).", mx->app_pings_sent);
	single(o, "wsm_retained_evicted_total", "counter",
	       "Idle sessions dropped to stay within the retention bounds.",
	       mx->retained_evicted);
	single(o, "wsm_resets_total", "counter",
	       "Reconnecting clients told to reset.", mx->resets);
	round_trips(o, "wsm_app_ping_rtt", "Round trips of the JSON pings.",
		    "Longest round trip of a JSON ping.", mx->rtt_sum_us,
		    mx->rtt_samples, mx->rtt_max_us);
}

static void cluster(struct out *o, const wsm_metrics_t *mx)
{
	single(o, "wsm_cluster_link_up", "gauge",
	       "1 while every Redis instance is reachable (cluster mode).",
	       mx->cluster_link_up);
	single(o, "wsm_cluster_reconnects_total", "counter",
	       "Redis connections made again after a loss.",
	       mx->cluster_reconnects);
	single(o, "wsm_cluster_publishes_total", "counter",
	       "Broadcasts and closes Redis confirmed.", mx->cluster_publishes);
	single(o, "wsm_cluster_publish_failures_total", "counter",
	       "Publishes to send again: the link was lost, or Redis refused.",
	       mx->cluster_publish_failures);
	round_trips(o, "wsm_cluster_publish_rtt",
		    "Round trips of the publishes Redis confirmed.",
		    "Longest publish round trip.",
		    mx->cluster_publish_rtt_sum_us, mx->cluster_publishes,
		    mx->cluster_publish_rtt_max_us);
	single(o, "wsm_cluster_outbox_messages", "gauge",
	       "Errors, completes and closes waiting for Redis.",
	       mx->cluster_outbox_messages);
	single(o, "wsm_cluster_outbox_bytes", "gauge",
	       "Bytes of the messages waiting for Redis.",
	       mx->cluster_outbox_bytes);
	single(o, "wsm_cluster_gap_repairs_total", "counter",
	       "Sessions brought up to date in place after a gap.",
	       mx->cluster_gap_repairs);
	single(o, "wsm_cluster_epoch_resets_total", "counter",
	       "Live connections reset because Redis's epoch changed.",
	       mx->cluster_epoch_resets);
	single(o, "wsm_cluster_subscribed_sessions", "gauge",
	       "Sessions this node is subscribed to.", mx->cluster_subscribed);
	single(o, "wsm_cluster_bad_messages_total", "counter",
	       "Messages dropped from a session's channel as malformed.",
	       mx->cluster_bad_messages);
	single(o, "wsm_cluster_link_losses_total", "counter",
	       "Times a Redis instance became unreachable.",
	       mx->cluster_link_losses);
	single(o, "wsm_cluster_dropped_total", "counter",
	       "Accepted broadcasts dropped unconfirmed at destroy.",
	       mx->cluster_dropped);
	single(o, "wsm_cluster_wedged_total", "counter",
	       "Redis subscribers found silent by the probe, and reconnected.",
	       mx->cluster_wedged);
	single(o, "wsm_cluster_connect_failures_total", "counter",
	       "Attempts to connect to Redis that failed (name, TLS, AUTH, "
	       "socket).",
	       mx->cluster_connect_failures);
	single(o, "wsm_cluster_unreplicated_total", "counter",
	       "Publishes sent again: fewer replicas than asked had them in "
	       "time.",
	       mx->cluster_unreplicated);
}

int wsm_metrics_prometheus(wsm_manager_t *m, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };
	wsm_metrics_t mx;
	int rc;

	if (!buf && size)
		return WSM_EINVAL;
	memset(&mx, 0, sizeof(mx));
	mx.size = sizeof(mx);
	if ((rc = wsm_metrics(m, &mx)))
		return rc;
	connections(&o, &mx);
	admissions(&o, &mx);
	delivery(&o, &mx);
	cluster(&o, &mx);
	if (o.len >= size && size)
		buf[0] = '\0'; /* too small: nothing half-written */
	return o.len > INT32_MAX ? WSM_ENOMEM : (int)o.len;
}
