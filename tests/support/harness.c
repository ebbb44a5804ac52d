/* Test harness; see harness.h. */
#include <libwebsockets.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "harness.h"

struct event_rec {
	wsm_event_t ev;
	int cause;
	uint64_t id;
	char session[130];
};

/*
 * A call for the service thread. Heap-allocated: a caller that times out
 * leaves; whoever of the two is last frees it (see harness_call()).
 */
struct call {
	void (*fn)(harness_t *h, void *arg);
	void *arg;
	bool running, done, abandoned;
	struct call *next;
};

struct harness {
	struct harness_opts opts;
	wsm_manager_t *m;
	struct lws_context *ctx;
	struct lws_context *live_ctx;
	struct lws_protocols protocols[3];
	struct lws_protocol_vhost_options pvo_default, pvo;
#if LWS_LIBRARY_VERSION_NUMBER >= 4003000
	/*
	 * lws 4.3 counts every context, vhost and connection in its log
	 * context, without a lock when built with LWS_MAX_SMP 1 (Debian 13
	 * is). The process-wide default would be counted by every node's
	 * service thread at once, and lws asserts when a lost update takes
	 * the count below zero: each context gets its own.
	 */
	lws_log_cx_t log_cx;
#endif
	int port;
	pthread_t thread;
	bool stop;
	int64_t last_register;
	unsigned registers;

	uv_loop_t loop;
	uv_async_t async;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	bool ready;
	struct call *calls;
	struct event_rec *events;
	size_t nevents, cap;
};

static void on_event(void *user, wsm_event_t ev, uint64_t id,
		     const char *session, wsm_close_cause_t cause)
{
	harness_t *h = user;
	struct event_rec *r;

	pthread_mutex_lock(&h->lock);
	if (h->nevents == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 256;
		h->events = realloc(h->events, h->cap * sizeof(*h->events));
	}
	r = &h->events[h->nevents++];
	r->ev = ev;
	r->cause = (int)cause;
	r->id = id;
	snprintf(r->session, sizeof(r->session), "%s", session);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* Host protocol for the delegate and register modes. */
static int host_callback(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	harness_t *h = lws_get_protocol(wsi)->user;
	char uri[256];
	const char *id;
	int64_t reg;
	int n;

	if (h->opts.mode == HARNESS_REGISTER) {
		switch (reason) {
		case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
			if (!h->opts.admit_first)
				return 0; /* the host admits everything itself */
			n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
			id = n > 0 && strrchr(uri, '/') ? strrchr(uri, '/') + 1 : "";
			return wsm_admit(h->m, wsi, id);
		case LWS_CALLBACK_ESTABLISHED:
			n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
			id = n > 0 && strrchr(uri, '/') ? strrchr(uri, '/') + 1 : "";
			reg = wsm_register(h->m, wsi, id);
			/* Ids starting "twice" check that a second call is refused. */
			if (reg > 0 && !strncmp(id, "twice", 5))
				reg = wsm_register(h->m, wsi, id);
			pthread_mutex_lock(&h->lock);
			h->last_register = reg;
			h->registers++;
			pthread_cond_broadcast(&h->cond);
			pthread_mutex_unlock(&h->lock);
			return reg > 0 ? 0 : -1;
		default:
			break;
		}
	}
	return wsm_callback(h->m, wsi, (int)reason, user, in, len);
}

static void run_calls(harness_t *h)
{
	struct call *c;

	pthread_mutex_lock(&h->lock);
	while ((c = h->calls)) {
		h->calls = c->next;
		c->running = true;
		pthread_mutex_unlock(&h->lock);
		c->fn(h, c->arg);
		pthread_mutex_lock(&h->lock);
		c->done = true;
		if (c->abandoned)
			free(c); /* its caller timed out and left */
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
}

static void on_async(uv_async_t *a)
{
	run_calls(a->data);
}

/*
 * libwsm runs the heartbeat; lws's own validity timer would be re-sorted
 * into lws's single timer list on every pong (see wsm(7)).
 */
static const lws_retry_bo_t no_lws_validity = { .secs_since_valid_ping = 0,
						.secs_since_valid_hangup = 0 };

static int create_context(harness_t *h)
{
	struct lws_context_creation_info info;
	void *foreign[1] = { &h->loop };
	const char *name = wsm_protocol(h->m)->name;

	memset(&info, 0, sizeof(info));
	h->protocols[0] = (struct lws_protocols){ "http", lws_callback_http_dummy,
						  0, 0, 0, NULL, 0 };
	if (h->opts.mode == HARNESS_READY) {
		h->protocols[1] = *wsm_protocol(h->m);
	} else {
		/* Named after the manager's protocol: wsm_setup_info() leaves
		 * that entry, the delegating one, unguarded. */
		h->protocols[1] = (struct lws_protocols){ name, host_callback,
							  0, 512, 0, h, 0 };
	}
	info.protocols = h->protocols;
	if (h->opts.by_hand) {
		/* What hosts wrote before wsm_setup_info(): the default
		 * option, the retry policy, and no guard. */
		h->pvo_default.name = "default";
		h->pvo_default.value = "";
		h->pvo.name = name;
		h->pvo.options = h->opts.no_default ? NULL : &h->pvo_default;
		h->pvo.value = "";
		info.pvo = &h->pvo;
		info.retry_and_idle_policy = &no_lws_validity;
	} else if (wsm_setup_info(h->m, &info)) {
		return -1;
	}
	info.port = 0;
	info.iface = h->opts.any_iface ? NULL
		     : h->opts.iface ? h->opts.iface
				     : "127.0.0.1";
	info.timeout_secs = 2;
	info.pcontext = &h->live_ctx; /* lws clears it when fully destroyed */
#if LWS_LIBRARY_VERSION_NUMBER >= 4003000
	h->log_cx.u.emit = lwsl_emit_stderr;
	h->log_cx.lll_flags = LLL_ERR;
	info.log_cx = &h->log_cx;
#endif
	if (h->opts.tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = h->opts.tls_cert;
		info.ssl_private_key_filepath = h->opts.tls_key;
	}
	if (h->opts.libuv) {
		info.options |= LWS_SERVER_OPTION_LIBUV;
		info.foreign_loops = foreign;
	}
	h->ctx = h->live_ctx = lws_create_context(&info);
	if (!h->ctx)
		return -1;
	h->port = lws_get_vhost_listen_port(lws_get_vhost_by_name(h->ctx, "default"));
	return h->port > 0 ? 0 : -1;
}

static void *service_thread(void *arg)
{
	harness_t *h = arg;
	int rc;

	if (h->opts.libuv) {
		uv_loop_init(&h->loop);
		uv_async_init(&h->loop, &h->async, on_async);
		h->async.data = h;
	}
	rc = create_context(h);
	pthread_mutex_lock(&h->lock);
	h->ready = true;
	if (rc)
		h->port = -1;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (rc) {
		if (h->opts.libuv) {
			uv_close((uv_handle_t *)&h->async, NULL);
			uv_run(&h->loop, UV_RUN_DEFAULT);
			uv_loop_close(&h->loop);
		}
		return NULL;
	}
	if (h->opts.libuv) {
		/* Returns once the stop call has closed every handle. */
		uv_run(&h->loop, UV_RUN_DEFAULT);
		/* With a foreign loop, lws finishes destroying after it ends. */
		if (h->live_ctx)
			lws_context_destroy(h->live_ctx);
		uv_loop_close(&h->loop);
		return NULL;
	}
	while (!h->stop) {
		lws_service(h->ctx, 0);
		run_calls(h);
	}
	if (h->opts.context_first)
		lws_context_destroy(h->ctx);
	wsm_manager_destroy(h->m);
	h->m = NULL;
	if (!h->opts.context_first)
		lws_context_destroy(h->ctx);
	return NULL;
}

static void noop(harness_t *h, void *arg)
{
	(void)h;
	(void)arg;
}

int harness_call(harness_t *h, void (*fn)(harness_t *h, void *arg), void *arg);

/*
 * Errors only; none under ThreadSanitizer: lws 4.1 formats every log line
 * into one buffer of the process (logs.c), so two contexts on two threads
 * (two nodes of a test) that both log race there, whatever libwsm does.
 */
static int quiet_level(void)
{
#if defined(__SANITIZE_THREAD__)
	return 0;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
	return 0;
#else
	return LLL_ERR;
#endif
#else
	return LLL_ERR;
#endif
}

harness_t *harness_start(wsm_config_t *cfg, const struct harness_opts *opts)
{
	harness_t *h = calloc(1, sizeof(*h));
	wsm_config_t *own = cfg ? NULL : wsm_config_new();
	int err;

	/* WSM_TEST_LOG=<lws log level bits> shows more when debugging. */
	lws_set_log_level(getenv("WSM_TEST_LOG") ? atoi(getenv("WSM_TEST_LOG"))
						 : quiet_level(),
			  NULL);
	if (opts)
		h->opts = *opts;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	wsm_config_set_event_cb(cfg ? cfg : own, on_event, h);
	h->m = wsm_manager_new(cfg ? cfg : own, &err);
	wsm_config_free(own);
	if (!h->m || pthread_create(&h->thread, NULL, service_thread, h)) {
		wsm_manager_destroy(h->m);
		free(h);
		return NULL;
	}
	pthread_mutex_lock(&h->lock);
	while (!h->ready)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
	if (h->port < 0) {
		pthread_join(h->thread, NULL);
		wsm_manager_destroy(h->m);
		free(h->events);
		free(h);
		return NULL;
	}
	/* lws initialises protocols (binding the manager) on its first turn. */
	harness_call(h, noop, NULL);
	return h;
}

harness_t *harness_start_with(const struct harness_option *set, size_t n,
			      const struct harness_opts *opts)
{
	wsm_config_t *cfg = wsm_config_new();
	harness_t *h = NULL;
	size_t i;

	for (i = 0; cfg && i < n; i++)
		if (wsm_config_set_int(cfg, set[i].opt, set[i].value))
			break;
	if (cfg && i == n)
		h = harness_start(cfg, opts);
	wsm_config_free(cfg);
	return h;
}

static void wake(harness_t *h)
{
	if (h->opts.libuv)
		uv_async_send(&h->async);
	else
		lws_cancel_service(h->ctx);
}

static struct timespec deadline_in(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int harness_call(harness_t *h, void (*fn)(harness_t *h, void *arg), void *arg)
{
	struct call *c = calloc(1, sizeof(*c)), **p;
	struct timespec until = deadline_in(10000);
	bool done;
	int rc = 0;

	if (!c)
		return -1;
	c->fn = fn;
	c->arg = arg;
	pthread_mutex_lock(&h->lock);
	for (p = &h->calls; *p; p = &(*p)->next)
		;
	*p = c;
	/*
	 * Woken under the lock: the service thread takes the call (and may
	 * stop, destroying the context and its wake-up fd) only once this
	 * has returned.
	 */
	wake(h);
	while (!c->done && rc == 0)
		rc = pthread_cond_timedwait(&h->cond, &h->lock, &until);
	done = c->done;
	if (done) {
		free(c);
	} else if (!c->running) {
		/* Never started: take it out, so it never runs on a dead arg. */
		for (p = &h->calls; *p && *p != c; p = &(*p)->next)
			;
		if (*p)
			*p = c->next;
		free(c);
	} else {
		/* Running: fn still uses arg, which the caller owns (a bug in
		 * the test); the service thread frees the call when done. */
		c->abandoned = true;
	}
	pthread_mutex_unlock(&h->lock);
	return done ? 0 : -1;
}

static void do_destroy(harness_t *h, void *arg)
{
	(void)arg;
	wsm_manager_destroy(h->m);
	h->m = NULL;
}

void harness_destroy_manager(harness_t *h)
{
	harness_call(h, do_destroy, NULL);
}

static void do_sweep(harness_t *h, void *arg)
{
	*(int *)arg = wsm_sweep(h->m);
}

int harness_sweep(harness_t *h)
{
	int rc = WSM_ETHREAD;

	harness_call(h, do_sweep, &rc);
	return rc;
}

static void do_stop(harness_t *h, void *arg)
{
	(void)arg;
	h->stop = true;
	if (h->opts.libuv) {
		if (h->opts.context_first)
			lws_context_destroy(h->ctx);
		wsm_manager_destroy(h->m);
		h->m = NULL;
		if (!h->opts.context_first)
			lws_context_destroy(h->ctx);
		uv_close((uv_handle_t *)&h->async, NULL);
	}
}

void harness_stop(harness_t *h)
{
	if (!h)
		return;
	harness_call(h, do_stop, NULL);
	pthread_join(h->thread, NULL);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h->events);
	free(h);
}

int harness_port(const harness_t *h)
{
	return h->port;
}

wsm_manager_t *harness_mgr(const harness_t *h)
{
	return h->m;
}

static struct timespec deadline_in(int timeout_ms);

int64_t harness_register_result(harness_t *h, unsigned n, int timeout_ms)
{
	struct timespec until = deadline_in(timeout_ms);
	int64_t v = 0;
	int rc = 0;

	pthread_mutex_lock(&h->lock);
	while (h->registers < n && rc == 0)
		rc = pthread_cond_timedwait(&h->cond, &h->lock, &until);
	if (h->registers >= n)
		v = h->last_register;
	pthread_mutex_unlock(&h->lock);
	return v;
}

static size_t count_locked(harness_t *h, wsm_event_t ev, int cause,
			  const char *session)
{
	size_t i, n = 0;

	for (i = 0; i < h->nevents; i++)
		if (h->events[i].ev == ev &&
		    (cause < 0 || h->events[i].cause == cause) &&
		    (!session || !strcmp(session, h->events[i].session)))
			n++;
	return n;
}

size_t harness_events(harness_t *h, wsm_event_t ev, int cause,
		      const char *session)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = count_locked(h, ev, cause, session);
	pthread_mutex_unlock(&h->lock);
	return n;
}

int harness_wait_events(harness_t *h, wsm_event_t ev, int cause,
			const char *session, size_t count, int timeout_ms)
{
	struct timespec until = deadline_in(timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&h->lock);
	while (count_locked(h, ev, cause, session) < count && rc == 0)
		rc = pthread_cond_timedwait(&h->cond, &h->lock, &until);
	rc = count_locked(h, ev, cause, session) >= count ? 0 : -1;
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int harness_wait_until(bool (*pred)(void *arg), void *arg, int timeout_ms)
{
	struct timespec step = { 0, 1000000 };
	int i;

	for (i = 0; i <= timeout_ms; i++) {
		if (pred(arg))
			return 0;
		nanosleep(&step, NULL);
	}
	return pred(arg) ? 0 : -1;
}

wsm_metrics_t harness_metrics(harness_t *h)
{
	wsm_metrics_t s;
	int rc;

	memset(&s, 0, sizeof(s));
	s.size = sizeof(s);
	/* Zeros would pass every "== 0" check: no snapshot fails the test. */
	if ((rc = wsm_metrics(h->m, &s)) != 0) {
		fprintf(stderr, "harness_metrics: %s\n", wsm_strerror(rc));
		abort();
	}
	return s;
}

static int skipped;

void harness_note_skip(const char *test, const char *why)
{
	fprintf(stderr, "%s: SKIPPED: %s\n", test, why);
	skipped = 1;
}

int harness_exit(int cmocka_rc)
{
	return cmocka_rc ? cmocka_rc : skipped ? 77 : 0;
}

struct harness_hold {
	harness_t *h;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool entered, open;
};

static void hold_here(harness_t *h, void *arg)
{
	struct harness_hold *x = arg;
	struct timespec until = deadline_in(10000);

	(void)h;
	pthread_mutex_lock(&x->lock);
	x->entered = true;
	pthread_cond_broadcast(&x->cond);
	while (!x->open &&
	       pthread_cond_timedwait(&x->cond, &x->lock, &until) == 0)
		;
	pthread_mutex_unlock(&x->lock);
}

static void *hold_thread(void *arg)
{
	struct harness_hold *x = arg;

	harness_call(x->h, hold_here, x);
	return NULL;
}

struct harness_hold *harness_hold(harness_t *h)
{
	struct harness_hold *x = calloc(1, sizeof(*x));
	struct timespec until = deadline_in(10000);
	int rc = 0;

	if (!x)
		return NULL;
	x->h = h;
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);
	if (pthread_create(&x->thread, NULL, hold_thread, x)) {
		free(x);
		return NULL;
	}
	pthread_mutex_lock(&x->lock);
	while (!x->entered && rc == 0)
		rc = pthread_cond_timedwait(&x->cond, &x->lock, &until);
	pthread_mutex_unlock(&x->lock);
	if (!x->entered) {
		harness_release(x);
		return NULL;
	}
	return x;
}

void harness_release(struct harness_hold *x)
{
	if (!x)
		return;
	pthread_mutex_lock(&x->lock);
	x->open = true;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	pthread_join(x->thread, NULL);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	free(x);
}

bool harness_no_connections(void *h)
{
	return harness_metrics(h).connections == 0;
}

bool harness_nothing_queued(void *h)
{
	return harness_metrics(h).queued_bytes == 0;
}
