/*
 * GET /metrics; see prometheus.h. One wsm_metrics() snapshot rendered as
 * metric families, each a "# HELP" and a "# TYPE" line followed by its
 * samples. Counters end in _total, units are in the names (bytes, seconds),
 * and label values are fixed words, so nothing needs escaping.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "prometheus.h"

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void single(FILE *f, const char *name, const char *type,
		   const char *help, uint64_t value)
{
	family(f, name, type, help);
	fprintf(f, "%s %" PRIu64 "\n", name, value);
}

static void labelled(FILE *f, const char *name, const char *label,
		     const char *value, uint64_t n)
{
	fprintf(f, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, value, n);
}

static void render(FILE *f, const wsm_metrics_t *mx,
		   const struct jobs_counts *jc)
{
	static const char closed[] = "wsm_connections_closed_total",
			  refused[] = "wsm_connections_refused_total";
	const char *name;
	int cause;

	family(f, "wsm_connections", "gauge",
	       "WebSocket connections held, by state.");
	labelled(f, "wsm_connections", "state", "active", mx->active);
	labelled(f, "wsm_connections", "state", "stale", mx->stale);
	labelled(f, "wsm_connections", "state", "closing", mx->closing);
	single(f, "wsm_sessions", "gauge",
	       "Sessions held, retained ones included.", mx->sessions);
	single(f, "wsm_retained_sessions", "gauge",
	       "Sessions kept for replay without a connection.",
	       mx->retained_sessions);
	single(f, "wsm_held_bytes", "gauge",
	       "Heap bytes libwsm holds right now.", mx->held_bytes);
	single(f, "wsm_queued_bytes", "gauge",
	       "Payload bytes waiting in connection queues.", mx->queued_bytes);
	single(f, "wsm_retained_bytes", "gauge",
	       "Bytes held by replay state, all sessions.", mx->retained_bytes);

	single(f, "wsm_connections_opened_total", "counter",
	       "Connections admitted.", mx->opened);
	family(f, refused, "counter", "Upgrades refused, by reason.");
	labelled(f, refused, "reason", "bad_request", mx->refused_bad_request);
	labelled(f, refused, "reason", "denied", mx->refused_denied);
	labelled(f, refused, "reason", "session_limit",
		 mx->refused_session_limit);
	labelled(f, refused, "reason", "global_limit",
		 mx->refused_global_limit);
	labelled(f, refused, "reason", "shutdown", mx->refused_shutdown);
	labelled(f, refused, "reason", "origin", mx->refused_origin);
	labelled(f, refused, "reason", "per_ip", mx->refused_per_ip);
	labelled(f, refused, "reason", "rate", mx->refused_rate);
	family(f, closed, "counter", "Connections torn down, by cause.");
	for (cause = 1; cause < WSM_CAUSE_SLOTS; cause++) {
		name = wsm_cause_name((wsm_close_cause_t)cause);
		if (strcmp(name, "unknown") != 0)
			labelled(f, closed, "cause", name, mx->closed[cause]);
	}

	single(f, "wsm_broadcasts_total", "counter", "Broadcasts accepted.",
	       mx->broadcasts);
	single(f, "wsm_broadcasts_unrouted_total", "counter",
	       "Broadcasts to sessions with no connection.", mx->unrouted);
	single(f, "wsm_messages_queued_total", "counter",
	       "Message copies queued to connections.", mx->messages_queued);
	single(f, "wsm_messages_sent_total", "counter", "Data frames written.",
	       mx->messages_sent);
	single(f, "wsm_sent_bytes_total", "counter", "Payload bytes written.",
	       mx->bytes_sent);
	single(f, "wsm_messages_coalesced_total", "counter",
	       "Queued progress messages replaced by a newer one.",
	       mx->coalesced);
	single(f, "wsm_pings_sent_total", "counter",
	       "WebSocket pings sent.", mx->pings_sent);
	single(f, "wsm_app_pings_sent_total", "counter",
	       "JSON pings sent (--app-ping 1).", mx->app_pings_sent);
	single(f, "wsm_retained_evicted_total", "counter",
	       "Idle sessions dropped to stay within the retention bounds.",
	       mx->retained_evicted);
	single(f, "wsm_resets_total", "counter",
	       "Reconnecting clients told to reset.", mx->resets);

	family(f, "wsm_app_ping_rtt_seconds", "summary",
	       "Round trips of the JSON pings.");
	fprintf(f, "wsm_app_ping_rtt_seconds_sum %.6f\n",
		(double)mx->rtt_sum_us / 1e6);
	fprintf(f, "wsm_app_ping_rtt_seconds_count %" PRIu64 "\n",
		mx->rtt_samples);
	family(f, "wsm_app_ping_rtt_max_seconds", "gauge",
	       "Longest round trip of a JSON ping.");
	fprintf(f, "wsm_app_ping_rtt_max_seconds %.6f\n",
		(double)mx->rtt_max_us / 1e6);

	if (!jc)
		return;
	family(f, "progress_broadcast_jobs", "gauge",
	       "Jobs the example server knows, by state.");
	labelled(f, "progress_broadcast_jobs", "state", "running", jc->running);
	labelled(f, "progress_broadcast_jobs", "state", "complete",
		 jc->complete);
	labelled(f, "progress_broadcast_jobs", "state", "failed", jc->failed);
}

char *prometheus_render(wsm_manager_t *m, struct jobs *jobs, size_t *len,
			int *err)
{
	struct jobs_counts jc;
	wsm_metrics_t mx;
	char *text = NULL;
	FILE *f;
	int rc;

	/* Fields this program knows and the library does not stay 0. */
	memset(&mx, 0, sizeof(mx));
	mx.size = sizeof(mx);
	if ((rc = wsm_metrics(m, &mx)) != 0) {
		*err = rc;
		return NULL;
	}
	if (jobs)
		jobs_count(jobs, &jc);
	if (!(f = open_memstream(&text, len))) {
		*err = WSM_ENOMEM;
		return NULL;
	}
	render(f, &mx, jobs ? &jc : NULL);
	if (ferror(f) | fclose(f)) {
		free(text);
		*err = WSM_ENOMEM;
		return NULL;
	}
	return text;
}
