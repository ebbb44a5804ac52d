/*
 * Test harness: a real lws server with a libwsm manager, serviced on its own
 * thread (default poll loop, or a libuv loop the harness owns), plus a log
 * of the manager's events that tests wait on. Every wait is bounded.
 */
#ifndef LIBWSM_TESTS_HARNESS_H
#define LIBWSM_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsm.h"

typedef struct harness harness_t;

enum harness_mode {
	HARNESS_READY,    /* the ready protocol entry from wsm_protocol() */
	HARNESS_DELEGATE, /* host protocol forwarding everything to wsm_callback() */
	HARNESS_REGISTER  /* host routes itself and calls wsm_register() */
};

struct harness_opts {
	enum harness_mode mode;
	bool libuv; /* a libuv loop owned by the harness (lws foreign loop) */
	bool context_first; /* stop: lws_context_destroy before the manager */
	const char *iface;  /* listen address; NULL: 127.0.0.1 */
	bool any_iface;     /* listen on every address (lws's iface NULL) */
	const char *tls_cert, *tls_key; /* PEM files: serve TLS only */
	bool by_hand;    /* no wsm_setup_info(): the 1.0 way, unguarded */
	bool admit_first; /* HARNESS_REGISTER: wsm_admit() in the filter */
	bool no_default; /* by_hand, and forget the "default" option */
};

/* cfg may be NULL; the harness installs its own event callback on it. */
harness_t *harness_start(wsm_config_t *cfg, const struct harness_opts *opts);

struct harness_option {
	wsm_option_t opt;
	int64_t value;
};
/* harness_start() with these integer options set; NULL if one is refused. */
harness_t *harness_start_with(const struct harness_option *set, size_t n,
			      const struct harness_opts *opts);
#define HARNESS_START(opts, ...)                                              \
	harness_start_with((const struct harness_option[]){ __VA_ARGS__ },   \
			   sizeof((const struct harness_option[]){ __VA_ARGS__ }) / \
				   sizeof(struct harness_option),            \
			   opts)
void harness_stop(harness_t *h);
int harness_port(const harness_t *h);
wsm_manager_t *harness_mgr(const harness_t *h);

/* Runs fn on the service thread, between loop iterations; waits for it. */
int harness_call(harness_t *h, void (*fn)(harness_t *h, void *arg), void *arg);
/*
 * Holds the service thread (inside a harness_call(), so lws services
 * nothing and the inbox is not drained) until harness_release(), at most
 * 10 s. Returns once the thread is held; NULL on failure.
 */
struct harness_hold *harness_hold(harness_t *h);
void harness_release(struct harness_hold *hold);
/* wsm_manager_destroy() on the service thread; the loop keeps running. */
void harness_destroy_manager(harness_t *h);
/* wsm_sweep() on the service thread; returns its result. */
int harness_sweep(harness_t *h);

/* Events: cause < 0 and session NULL match anything. */
size_t harness_events(harness_t *h, wsm_event_t ev, int cause,
		      const char *session);
/* 0 once at least count matching events were seen, -1 on timeout. */
int harness_wait_events(harness_t *h, wsm_event_t ev, int cause,
			const char *session, size_t count, int timeout_ms);
/*
 * HARNESS_REGISTER mode: waits until n wsm_register() calls have returned
 * and gives the last result (0 on timeout).
 */
int64_t harness_register_result(harness_t *h, unsigned n, int timeout_ms);

/* Polls pred every millisecond until true (0) or timeout (-1). */
int harness_wait_until(bool (*pred)(void *arg), void *arg, int timeout_ms);
/* harness_wait_until() predicates on a harness_t *: no connection held;
 * no payload byte waiting in any connection queue. */
bool harness_no_connections(void *h);
bool harness_nothing_queued(void *h);
/* A fresh metrics snapshot; aborts (failing the test) if there is none. */
wsm_metrics_t harness_metrics(harness_t *h);

/*
 * cmocka's skip() exits 0, so meson would say OK: a test that skips calls
 * harness_note_skip() first, and main() returns harness_exit(rc), which is
 * 77 (meson's SKIP) when anything was skipped and nothing failed.
 */
void harness_note_skip(const char *test, const char *why);
int harness_exit(int cmocka_rc);

#endif
