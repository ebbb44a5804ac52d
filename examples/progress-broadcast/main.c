/*
 * progress-broadcast: a complete libwsm host.
 *
 * One lws context on 127.0.0.1, plain or TLS, with two protocols: "http"
 * (http.c) serves the page, the job API, the status document, the metrics
 * and the cleanup endpoint, and libwsm's ready entry, which
 * wsm_setup_info() adds, takes the WebSocket upgrades under
 * /api/images_mvp/progress/<sessionId>; an upgrade naming "http" as its
 * subprotocol is refused, not served by the HTTP protocol. Jobs (jobs.c) run on
 * worker threads and broadcast their progress to the session's browsers.
 * The lws loop runs on this thread, which is therefore the manager's service
 * thread; stopper.c decides when it ends.
 *
 * Order matters at both ends. Start: the manager before the context (its
 * protocol entry goes into the vhost); the context before the jobs run.
 * Stop: leave the loop, stop and join the workers, which may broadcast
 * until they are joined; drain the manager (wsm_drain(): new upgrades get
 * 503, every connection gets what was queued to it and then 1001, the
 * closes spread over --drain-ms) while the loop runs, until the manager
 * reports WSM_EVENT_DRAINED or a deadline passes; destroy the manager here
 * on its service thread, outside its callbacks; only then the lws context.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <wsm.h>

#include "http.h"
#include "jobs.h"
#include "options.h"
#include "stopper.h"
#include "store.h"

#define PROG "progress-broadcast"
#define LINGER_MS 250 /* for close frames still unsent, at the very end */

struct server {
	struct http_app app;
	struct lws_context *ctx;
	bool drained; /* WSM_EVENT_DRAINED seen */
};

/* On the service thread, from inside lws_service() or wsm_drain(). */
static void on_event(void *user, wsm_event_t event, uint64_t conn_id,
		     const char *session_id, wsm_close_cause_t cause)
{
	struct server *srv = user;

	switch (event) {
	case WSM_EVENT_OPEN:
		lwsl_user("ws #%" PRIu64 " open, session %s\n", conn_id,
			  session_id);
		if (srv->app.jobs)
			jobs_viewers(srv->app.jobs, session_id, 1);
		break;
	case WSM_EVENT_CLOSE:
		lwsl_user("ws #%" PRIu64 " closed, session %s: %s\n", conn_id,
			  session_id, wsm_cause_name(cause));
		if (srv->app.jobs)
			jobs_viewers(srv->app.jobs, session_id, -1);
		break;
	case WSM_EVENT_DRAINED:
		srv->drained = true;
		/*
		 * lws may be about to wait for the next event, which could be
		 * a ping interval away: make that wait return at once.
		 */
		if (srv->ctx)
			lws_cancel_service(srv->ctx);
		break;
	case WSM_EVENT_CLUSTER_DOWN:
		lwsl_warn("cluster: a Redis instance is unreachable; "
			  "broadcasts wait in the outbox\n");
		break;
	case WSM_EVENT_CLUSTER_UP:
		lwsl_user("cluster: every Redis instance reachable\n");
		break;
	case WSM_EVENT_CLUSTER_DROPPED:
		lwsl_err("cluster: broadcasts to session %s were dropped "
			 "before Redis confirmed them\n", session_id);
		break;
	}
}

/* Who was refused and why, for the operator's log. */
static void on_refused(void *user, wsm_refusal_t why, int status,
		       const char *session_id, const char *peer)
{
	(void)user;
	lwsl_user("ws refused %s: %s (%d)%s%s\n", peer[0] ? peer : "?",
		  wsm_refusal_name(why), status, session_id[0] ? ", session " : "",
		  session_id);
}

/* Ends an lws_service() wait at a deadline; see run_until(). */
struct alarm {
	lws_sorted_usec_list_t sul;
	struct lws_context *ctx;
	bool rung;
};

static void alarm_ring(lws_sorted_usec_list_t *sul)
{
	struct alarm *a = lws_container_of(sul, struct alarm, sul);

	a->rung = true;
	/* lws runs timers before it polls: make that poll return at once. */
	lws_cancel_service(a->ctx);
}

/*
 * Runs the loop until *done, a second signal (stopper may be NULL) or ms
 * milliseconds have passed. Returns whether *done came true.
 */
static bool run_until(struct lws_context *ctx, const bool *done,
		      struct stopper *stopper, int64_t ms)
{
	struct alarm a;

	memset(&a, 0, sizeof(a));
	a.ctx = ctx;
	lws_sul_schedule(ctx, 0, &a.sul, alarm_ring,
			 (lws_usec_t)ms * LWS_US_PER_MS);
	while (!*done && !a.rung && !(stopper && stopper_urgent(stopper)) &&
	       lws_service(ctx, 0) >= 0)
		continue;
	lws_sul_cancel(&a.sul);
	return *done;
}

/*
 * The manager, configured from the command line. NULL when main() should
 * exit at once, with *exit_code: 0 after --help, 2 for bad options.
 */
static wsm_manager_t *make_manager(int argc, char **argv,
				   struct options *opts, struct server *srv,
				   int *exit_code)
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
	} else if ((err = wsm_config_set_event_cb(cfg, on_event, srv)) != 0 ||
		   (err = wsm_config_set_refused_cb(cfg, on_refused, NULL)) != 0) {
		fprintf(stderr, PROG ": callbacks: %s\n", wsm_strerror(err));
	} else if (!(m = wsm_manager_new(cfg, &err))) {
		/* Options fine one by one may clash: the detail says how. */
		fprintf(stderr, PROG ": %s: %s\n", wsm_strerror(err),
			wsm_error_detail());
		*exit_code = err == WSM_ERANGE ? 2 : 1;
	} else {
		*exit_code = 0;
	}
	wsm_config_free(cfg);
	return m;
}

static bool readable(const char *what, const char *path)
{
	if (access(path, R_OK) == 0)
		return true;
	fprintf(stderr, PROG ": %s %s: cannot be read\n", what, path);
	return false;
}

/*
 * Stops gracefully: the jobs, then the WebSockets through the manager's
 * drain, then the manager. Every step is bounded: the drain by its window
 * plus the close grace, or at once on a second signal.
 */
static void shut_down(struct server *srv, struct stopper *stopper,
		      int64_t drain_ms, int64_t close_grace_ms)
{
	struct jobs *jobs = srv->app.jobs;
	wsm_metrics_t mx;
	int n;

	/* Job requests from here on get 503: see http.c. */
	srv->app.jobs = NULL;
	jobs_destroy(jobs);

	n = wsm_drain(srv->app.m, drain_ms);
	if (n < 0) {
		fprintf(stderr, PROG ": drain: %s\n", wsm_strerror(n));
	} else {
		if (n > 0)
			printf(PROG ": draining %d connection(s) over %" PRId64
				    " ms\n",
			       n, drain_ms);
		fflush(stdout);
		/* The drain's own bound: the window, then the close grace
		 * rounded up to seconds; one more second for lws. */
		if (!run_until(srv->ctx, &srv->drained, stopper,
			       drain_ms + (close_grace_ms + 999) / 1000 * 1000 +
				       1000))
			fprintf(stderr, PROG ": drain cut short\n");
	}

	memset(&mx, 0, sizeof(mx));
	mx.size = sizeof(mx);
	if (wsm_metrics(srv->app.m, &mx) != 0)
		mx.connections = 0;
	wsm_manager_destroy(srv->app.m);
	srv->app.m = NULL;
	/* Cut short: lws sends the 1001 frames of the rest as it runs. */
	if (mx.connections > 0) {
		bool never = false;

		run_until(srv->ctx, &never, NULL, LINGER_MS);
	}
}

int main(int argc, char **argv)
{
	struct lws_protocols protocols[2];
	struct lws_context_creation_info info;
	struct stopper *stopper = NULL;
	struct store *store = NULL;
	struct server srv;
	struct options opts;
	char demo_id[JOBS_ID_SIZE];
	unsigned v;
	int port, resumed, rc = 0;

	/* Before any thread exists, so that every thread inherits it. */
	if (stopper_block_signals()) {
		fprintf(stderr, PROG ": cannot block signals\n");
		return 1;
	}
	memset(&srv, 0, sizeof(srv));
	if (!(srv.app.m = make_manager(argc, argv, &opts, &srv, &rc)))
		return rc;
	srv.app.admin_token = opts.admin_token;
	if ((opts.tls_cert && (!readable("certificate", opts.tls_cert) ||
			       !readable("key", opts.tls_key))) ||
	    (opts.state_dir && !(store = store_open(opts.state_dir)))) {
		wsm_manager_destroy(srv.app.m);
		return 2;
	}
	if (!(srv.app.jobs = jobs_new(srv.app.m, opts.max_jobs, store))) {
		fprintf(stderr, PROG ": out of memory\n");
		wsm_manager_destroy(srv.app.m);
		store_close(store);
		return 1;
	}

	lws_set_log_level(LLL_ERR | LLL_WARN | LLL_USER, NULL);

	/*
	 * The host's HTTP protocol; wsm_setup_info() adds libwsm's entry as
	 * the vhost's default (browsers send no Sec-WebSocket-Protocol),
	 * guards the HTTP protocol so that no upgrade bypasses libwsm, and
	 * turns off lws's own per-connection validity timer.
	 */
	memset(protocols, 0, sizeof(protocols));
	protocols[0] = http_protocol(&srv.app);

	memset(&info, 0, sizeof(info));
	info.port = opts.port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	if ((rc = wsm_setup_info(srv.app.m, &info)) != 0) {
		fprintf(stderr, PROG ": %s\n", wsm_strerror(rc));
		jobs_destroy(srv.app.jobs);
		wsm_manager_destroy(srv.app.m);
		store_close(store);
		return 1;
	}
	if (opts.tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = opts.tls_cert;
		info.ssl_private_key_filepath = opts.tls_key;
		/*
		 * HTTP/1.1 only: with h2 a browser would carry its WebSocket
		 * inside the HTTP/2 connection (RFC 8441), which this example
		 * does not need.
		 */
		info.alpn = "http/1.1";
	}
	if (!(srv.ctx = lws_create_context(&info))) {
		fprintf(stderr, PROG ": cannot listen on 127.0.0.1:%d%s\n",
			opts.port,
			opts.tls_cert ? " (or the certificate and key do not "
					"load or do not match)"
				      : "");
		jobs_destroy(srv.app.jobs);
		wsm_manager_destroy(srv.app.m);
		store_close(store);
		return 1;
	}
	port = lws_get_vhost_listen_port(
		lws_get_vhost_by_name(srv.ctx, "default"));

	v = wsm_version();
	printf(PROG ": listening on %s://127.0.0.1:%d/ (libwsm %u.%u.%u)\n",
	       opts.tls_cert ? "https" : "http", port, v >> 16, v >> 8 & 0xff,
	       v & 0xff);
	/* The manager is attached now: resumed jobs may broadcast. */
	if ((resumed = jobs_resume(srv.app.jobs)) > 0)
		printf(PROG ": resumed %d unfinished job(s) from %s\n", resumed,
		       opts.state_dir);
	if (opts.demo) {
		int err = jobs_start(srv.app.jobs, "demo", false, demo_id);

		if (err == JOBS_OK)
			printf(PROG ": demo job started, session id %s\n",
			       demo_id);
		else if (err == JOBS_EXISTS)
			printf(PROG ": demo job already running (resumed)\n");
		else
			fprintf(stderr, PROG ": could not start the demo job\n");
	}
	fflush(stdout);

	if (!(stopper = stopper_start(srv.ctx, opts.duration_s))) {
		fprintf(stderr, PROG ": cannot start the signal thread\n");
		rc = 1;
	}
	while (stopper && !stopper_requested(stopper)) {
		if (lws_service(srv.ctx, 0) < 0) {
			fprintf(stderr, PROG ": lws_service failed\n");
			rc = 1;
			break;
		}
	}
	if (stopper && stopper_reason(stopper)) {
		printf(PROG ": stopping (%s; a second signal stops at once)\n",
		       stopper_reason(stopper));
		fflush(stdout);
	}

	shut_down(&srv, stopper, opts.drain_ms, opts.close_grace_ms);
	stopper_free(stopper);
	lws_context_destroy(srv.ctx);
	store_close(store);
	printf(PROG ": stopped\n");
	return rc;
}
