/*
 * Shared by the two bench hosts (host_wsm.c, host_baseline.c): options,
 * the producer thread, the service loop (lws poll or a libuv loop the host
 * owns), signals and the resource report.
 *
 * Signals: SIGUSR1 prints a report line, SIGUSR2 stops the producer for
 * good (the loop goes on, so that retained sessions can expire before the
 * final report), SIGINT/SIGTERM stop the host, which then exits 0.
 * Stdout: "READY port=<n> pid=<n>" once listening, then one
 * "REPORT {json}" line per report; the last one is printed at exit.
 */
#ifndef BENCH_HOST_COMMON_H
#define BENCH_HOST_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

struct host_opts {
	int port;          /* 0: any free port */
	int sessions;      /* producer broadcasts to s0 .. s<sessions-1> */
	double rate;       /* progress messages per session per second */
	int subticks;      /* 1: one burst per period; N: spread over N */
	bool uv;           /* libuv loop (owned by the host) instead of poll */
	int rx;            /* rx buffer size; -1: the host's default */
	long ping_ms, stale_ms, lifetime_ms; /* libwsm only; -1: default */
	long max_conns, per_session;         /* libwsm only */
	long queue;                          /* libwsm max queued messages */
	long retention_ms;                   /* libwsm only; -1: default */
	long max_per_ip, max_upgrade_rate;   /* libwsm only; -1: off */
	bool lws_validity; /* keep lws's own per-wsi validity timer (libwsm) */
	bool on_loop;      /* --producer loop: an lws_sul timer on the service
			    * thread broadcasts, not a producer thread */
	double duration;   /* the host stops by itself after this (s) */
	const char *redis;   /* libwsm only: cluster mode's Redis; NULL: off */
	const char *node_id; /* libwsm only: its node id */
	long cluster_history; /* libwsm only: WSM_OPT_CLUSTER_HISTORY */
};

/* Parses argv into o (defaults first); exits with 2 on a bad option. */
void host_parse(int argc, char **argv, struct host_opts *o, const char *prog);

/* Called by the producer thread for each session in the current sub-tick;
 * now_ns is CLOCK_MONOTONIC, to embed as "t=<ns>". */
typedef void (*host_broadcast_fn)(void *user, int session, double progress,
				  int64_t now_ns);
/* Appends host-specific ",\"key\":value" pairs to buf (size n). */
typedef void (*host_report_fn)(void *user, char *buf, size_t n);
/* Tears down the host's own objects (on the service thread, loop stopped
 * or about to stop, before lws_context_destroy()). */
typedef void (*host_shutdown_fn)(void *user);

struct host {
	struct host_opts o;
	struct lws_context *ctx;
	void *user;
	host_broadcast_fn broadcast;
	host_report_fn report;
	host_shutdown_fn shutdown;
};

/* Fills the loop-related fields of info, creates the context, prints READY. */
int host_create_context(struct host *h, struct lws_context_creation_info *info);
/* Starts the producer, runs the loop until a stop signal or the duration,
 * prints the final report, stops the producer, shuts down; returns 0. */
int host_run(struct host *h);
/* Prints a REPORT line now (service thread). */
void host_print_report(struct host *h);

int64_t host_now_ns(void);
/* Producer statistics, for the reports. */
extern volatile long host_producer_calls, host_producer_overruns;

#endif
