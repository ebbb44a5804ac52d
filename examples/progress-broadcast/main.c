/*
 * progress-broadcast: a complete libwsm host.
 *
 * One lws context on 127.0.0.1 with two protocols: "http" (http.c) serves
 * the page and the job API, and libwsm's ready entry takes every WebSocket
 * upgrade under /api/images_mvp/progress/<sessionId>. Jobs (jobs.c) run on
 * worker threads and broadcast their progress to the session's browsers.
 * The lws loop runs on this thread, which is therefore the manager's service
 * thread; stopper.c decides when it ends.
 *
 * Order matters at both ends. Start: the manager before the context (its
 * protocol entry goes into the vhost); the context before the jobs run.
 * Stop: leave the loop, stop and join the workers, which may broadcast
 * until they are joined, destroy the manager here on its service thread
 * while the loop is not inside its callbacks, let lws send the close frames,
 * and only then destroy the lws context.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>
#include <wsm.h>

#include "http.h"
#include "jobs.h"
#include "options.h"
#include "stopper.h"

#define PROG "progress-broadcast"
#define MAX_JOBS 64
#define DRAIN_MS 250 /* for the close frames, at exit */

static void on_event(void *user, wsm_event_t event, uint64_t conn_id,
		     const char *session_id, wsm_close_cause_t cause)
{
	(void)user;
	if (event == WSM_EVENT_OPEN)
		lwsl_user("ws #%" PRIu64 " open, session %s\n", conn_id,
			  session_id);
	else
		lwsl_user("ws #%" PRIu64 " closed, session %s: %s\n", conn_id,
			  session_id, wsm_cause_name(cause));
}

struct drain {
	lws_sorted_usec_list_t sul;
	struct lws_context *ctx;
	bool over;
};

static void drain_over(lws_sorted_usec_list_t *sul)
{
	struct drain *d = lws_container_of(sul, struct drain, sul);

	d->over = true;
	/* lws runs timers before it polls: make that poll return at once. */
	lws_cancel_service(d->ctx);
}

/*
 * Runs the loop a little longer. wsm_manager_destroy() hands each connection
 * back to lws with 1001 as its close reason; lws sends the close frames as
 * its loop runs, so without this the peers would only see the socket drop
 * (1006) when the context is destroyed.
 */
static void drain(struct lws_context *ctx, unsigned ms)
{
	struct drain d;

	memset(&d, 0, sizeof(d));
	d.ctx = ctx;
	lws_sul_schedule(ctx, 0, &d.sul, drain_over,
			 (lws_usec_t)ms * LWS_US_PER_MS);
	while (!d.over && lws_service(ctx, 0) >= 0)
		continue;
	lws_sul_cancel(&d.sul);
}

/*
 * The manager, configured from the command line. NULL when main() should
 * exit at once, with *exit_code: 0 after --help, 2 for bad options.
 */
static wsm_manager_t *make_manager(int argc, char **argv,
				   struct options *opts, int *exit_code)
{
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m = NULL;
	int rc, err;

	*exit_code = 1;
	if (!cfg) {
		fprintf(stderr, PROG ": out of memory\n");
		return NULL;
	}
	rc = options_parse(argc, argv, opts, cfg);
	if (rc != OPTIONS_RUN) {
		*exit_code = rc == OPTIONS_DONE ? 0 : 2;
	} else if ((err = wsm_config_set_event_cb(cfg, on_event, NULL)) != 0) {
		fprintf(stderr, PROG ": event callback: %s\n",
			wsm_strerror(err));
	} else if (!(m = wsm_manager_new(cfg, &err))) {
		/* Options fine one by one may clash. */
		fprintf(stderr,
			PROG ": %s (is the stale timeout below the ping "
			     "interval, or the per-session limit above the "
			     "global one?)\n",
			wsm_strerror(err));
		*exit_code = err == WSM_ERANGE ? 2 : 1;
	} else {
		*exit_code = 0;
	}
	wsm_config_free(cfg);
	return m;
}

int main(int argc, char **argv)
{
	struct lws_protocol_vhost_options pvo_default = { NULL, NULL,
							  "default", "" };
	struct lws_protocol_vhost_options pvo = { NULL, &pvo_default, NULL,
						  "" };
	struct lws_protocols protocols[3];
	struct lws_context_creation_info info;
	struct lws_context *ctx;
	struct stopper *stopper;
	struct http_app app;
	wsm_metrics_t metrics;
	struct options opts;
	char demo_id[JOBS_ID_SIZE];
	unsigned v;
	int port, rc = 0;

	/* Before any thread exists, so that every thread inherits it. */
	if (stopper_block_signals()) {
		fprintf(stderr, PROG ": cannot block signals\n");
		return 1;
	}
	if (!(app.m = make_manager(argc, argv, &opts, &rc)))
		return rc;
	if (!(app.jobs = jobs_new(app.m, MAX_JOBS))) {
		fprintf(stderr, PROG ": out of memory\n");
		wsm_manager_destroy(app.m);
		return 1;
	}

	lws_set_log_level(LLL_ERR | LLL_WARN | LLL_USER, NULL);

	/*
	 * HTTP first: lws gives requests that match no mount to the first
	 * protocol. libwsm's entry second, made the vhost's default so that
	 * upgrades without a Sec-WebSocket-Protocol header (browsers) reach
	 * it: a per-vhost option named after it with a child named "default".
	 */
	memset(protocols, 0, sizeof(protocols));
	protocols[0] = http_protocol(&app);
	protocols[1] = *wsm_protocol(app.m);
	pvo.name = protocols[1].name;

	memset(&info, 0, sizeof(info));
	info.port = opts.port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.pvo = &pvo;
	if (!(ctx = lws_create_context(&info))) {
		fprintf(stderr, PROG ": cannot listen on 127.0.0.1:%d\n",
			opts.port);
		jobs_destroy(app.jobs);
		wsm_manager_destroy(app.m);
		return 1;
	}
	port = lws_get_vhost_listen_port(lws_get_vhost_by_name(ctx, "default"));

	v = wsm_version();
	printf(PROG ": listening on http://127.0.0.1:%d/ (libwsm %u.%u.%u)\n",
	       port, v >> 16, v >> 8 & 0xff, v & 0xff);
	if (opts.demo) {
		if (jobs_start(app.jobs, "demo", false, demo_id) == JOBS_OK)
			printf(PROG ": demo job started, session id %s\n",
			       demo_id);
		else
			fprintf(stderr, PROG ": could not start the demo job\n");
	}
	fflush(stdout);

	if (!(stopper = stopper_start(ctx, opts.duration_s))) {
		fprintf(stderr, PROG ": cannot start the signal thread\n");
		rc = 1;
	}
	while (stopper && !stopper_requested(stopper)) {
		if (lws_service(ctx, 0) < 0) {
			fprintf(stderr, PROG ": lws_service failed\n");
			rc = 1;
			break;
		}
	}
	if (stopper && stopper_reason(stopper)) {
		printf(PROG ": stopping (%s)\n", stopper_reason(stopper));
		fflush(stdout);
	}

	/* HTTP requests served from here on get 503: see http.c. */
	jobs_destroy(app.jobs);
	app.jobs = NULL;
	stopper_free(stopper);
	metrics.size = sizeof(metrics);
	if (wsm_metrics(app.m, &metrics) != 0)
		metrics.connections = 0;
	wsm_manager_destroy(app.m);
	app.m = NULL;
	if (metrics.connections > 0)
		drain(ctx, DRAIN_MS);
	lws_context_destroy(ctx);
	return rc;
}
