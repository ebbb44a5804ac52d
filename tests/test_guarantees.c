/*
 * Guarantees of wsm(7) that no other test would catch breaking: the count
 * bound of a connection's queue, a slow consumer's queue dropped, exactly
 * one close event per connection, replay for wsm_register() connections,
 * the byte bound of retained state, and one lws timer per manager.
 */
#include <dlfcn.h> /* dladdr(), RTLD_NEXT: meson sets _GNU_SOURCE */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <libwebsockets.h>

#include "support/must.h"

/*
 * WSM_OPT_MAX_QUEUED_MESSAGES: with the service thread held, five errors
 * (never coalesced) reach a queue of four in one drain. The fifth closes
 * the connection as a slow consumer, with 4004, dropping what was queued:
 * the client gets no message, and one close event.
 */
static void test_queue_count_bound(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_MAX_QUEUED_MESSAGES, 4 });
	struct harness_hold *hold;
	wsc_t *slow, *other;
	int i;

	(void)state;
	assert_non_null(h);
	slow = must_join(h, "cnt");
	other = must_join(h, "calm");
	hold = harness_hold(h);
	assert_non_null(hold);
	for (i = 0; i < 5; i++)
		assert_int_equal(wsm_broadcast_error(harness_mgr(h), "cnt", "e"), 0);
	/* Four exactly fit: the bound is not off by one the other way. */
	for (i = 0; i < 4; i++)
		assert_int_equal(wsm_broadcast_error(harness_mgr(h), "calm", "e"), 0);
	harness_release(hold);
	assert_int_equal(wsc_wait_close(slow, 5000), WSM_CLOSE_SLOW_CONSUMER);
	for (i = 0; i < 4; i++)
		must_recv_type(other, "error");
	assert_int_equal(wsc_close_code(other), 0);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE,
					     WSM_CAUSE_SLOW_CONSUMER, "cnt", 1,
					     5000), 0);
	wsc_free(slow);
	wsc_free(other);
	assert_int_equal(harness_wait_until(harness_no_connections, h, 5000), 0);
	/* Exactly one close event for it, whatever lws reported after. */
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, -1, "cnt"), 1);
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_SLOW_CONSUMER], 1);
	harness_stop(h);
}

/* Reads (answering pings) until the close; the code stays in the client. */
static void *read_to_close(void *arg)
{
	wsc_wait_close(arg, 15000);
	return NULL;
}

/* Exactly one close event for a stale, a lifetime and an evicted close. */
static void test_one_close_event_each(void **state)
{
	harness_t *h = HARNESS_START(NULL,
				     { WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 1 },
				     { WSM_OPT_SESSION_LIMIT_POLICY,
				       WSM_LIMIT_EVICT_OLDEST },
				     /* Wide enough for valgrind's pace. */
				     { WSM_OPT_PING_INTERVAL_MS, 200 },
				     { WSM_OPT_STALE_TIMEOUT_MS, 1000 },
				     { WSM_OPT_MAX_LIFETIME_MS, 2500 },
				     { WSM_OPT_LIFETIME_JITTER_PERCENT, 0 });
	wsc_t *old, *young, *mute, *aged;

	(void)state;
	assert_non_null(h);
	old = must_join(h, "ev");
	young = must_join(h, "ev"); /* evicts old */
	assert_int_equal(wsc_wait_close(old, 5000), WSM_CLOSE_EVICTED);
	mute = must_join(h, "mute");
	wsc_set_auto_pong(mute, 0);
	aged = must_join(h, "aged");
	/* All read at once: young and aged answer pings until their lifetime. */
	{
		wsc_t *all[3] = { mute, aged, young };
		pthread_t th[3];
		int i;

		for (i = 0; i < 3; i++)
			assert_int_equal(pthread_create(&th[i], NULL,
							read_to_close, all[i]), 0);
		for (i = 0; i < 3; i++)
			pthread_join(th[i], NULL);
	}
	assert_int_equal(wsc_close_code(mute), WSM_CLOSE_STALE);
	assert_int_equal(wsc_close_code(aged), WSM_CLOSE_LIFETIME);
	assert_int_equal(wsc_close_code(young), WSM_CLOSE_LIFETIME);
	wsc_free(old);
	wsc_free(young);
	wsc_free(mute);
	wsc_free(aged);
	assert_int_equal(harness_wait_until(harness_no_connections, h, 5000), 0);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, -1, "ev"), 2);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_EVICTED,
					"ev"), 1);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, -1, "mute"), 1);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, -1, "aged"), 1);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_LIFETIME,
					NULL), 2);
	harness_stop(h);
}

/* A connection the host registers itself is shown the retained state too. */
static void test_register_gets_replay(void **state)
{
	struct harness_opts opts = { .mode = HARNESS_REGISTER };
	harness_t *h = harness_start(NULL, &opts);
	wsc_t *c;
	json_t *j;
	int status = 0;

	(void)state;
	assert_non_null(h);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "rp", 70, "x",
						NULL), 0);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(h), "rp",
						"{\"k\":1}"), 0);
	c = join_session(h, "rp", &status);
	assert_non_null(c);
	assert_true(harness_register_result(h, 1, 5000) > 0);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")),
			    "progress");
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 1);
	json_decref(j);
	must_recv_type(c, "complete");
	wsc_free(c);
	harness_stop(h);
}

/*
 * WSM_OPT_RETAIN_MAX_BYTES: idle sessions beyond the byte bound are
 * evicted, oldest first, and what is kept stays within it.
 */
static void test_retained_bytes_bound(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_RETAIN_MAX_BYTES, 20000 });
	char meta[4200], id[16];
	wsm_metrics_t mx;
	wsc_t *c;
	int i;

	(void)state;
	assert_non_null(h);
	snprintf(meta, sizeof(meta), "{\"pad\":\"%0*d\"}", 4000, 0);
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "rb-%d", i);
		assert_int_equal(wsm_broadcast_complete(harness_mgr(h), id, meta),
				 0);
	}
	/* Through the inbox once a later connection's session is open. */
	c = must_join(h, "rb-9");
	must_recv_type(c, "complete");
	mx = harness_metrics(h);
	assert_true(mx.retained_bytes <= 20000);
	/* About 4 KiB each: four fit, the six oldest went. */
	assert_int_equal(mx.retained_evicted, 6);
	assert_int_equal(mx.retained_sessions + 1, 4); /* rb-9 is busy now */
	wsc_free(c);
	/* The oldest are really gone: a late joiner gets nothing of rb-0. */
	c = must_join(h, "rb-0");
	assert_int_equal(wsc_recv(c, NULL, NULL, 150), 0);
	wsc_free(c);
	harness_stop(h);
}

/*
 * Every lws_sul_schedule() call libwsm makes comes through here first (the
 * executable's definition interposes on lws's for libwsm.so): the distinct
 * timers it arms are noted, then lws's own function does the work.
 */
static struct {
	pthread_mutex_t lock;
	const void *suls[16];
	unsigned distinct, calls;
} armed = { PTHREAD_MUTEX_INITIALIZER, { 0 }, 0, 0 };

void lws_sul_schedule(struct lws_context *ctx, int tsi,
		      lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us)
{
	static void (*real)(struct lws_context *, int, lws_sorted_usec_list_t *,
			    sul_cb_t, lws_usec_t);
	Dl_info caller;
	unsigned i;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "lws_sul_schedule");
	if (dladdr(__builtin_return_address(0), &caller) && caller.dli_fname &&
	    strstr(caller.dli_fname, "libwsm")) {
		pthread_mutex_lock(&armed.lock);
		armed.calls++;
		for (i = 0; i < armed.distinct && armed.suls[i] != sul; i++)
			;
		if (i == armed.distinct && i < 16)
			armed.suls[armed.distinct++] = sul;
		pthread_mutex_unlock(&armed.lock);
	}
	real(ctx, tsi, sul, cb, us);
}

static bool pinged_all(void *arg)
{
	return harness_metrics(arg).pings_sent >= 3 * 40;
}

/*
 * Forty connections, each with its ping, stale and lifetime deadlines, in
 * sessions kept for replay: libwsm arms one lws timer for all of it.
 */
static void test_one_timer_per_manager(void **state)
{
	harness_t *h;
	char id[16];
	wsc_t *c[40];
	int i;

	(void)state;
	pthread_mutex_lock(&armed.lock);
	armed.distinct = armed.calls = 0; /* other tests' managers had theirs */
	pthread_mutex_unlock(&armed.lock);
	h = HARNESS_START(NULL, { WSM_OPT_PING_INTERVAL_MS, 50 },
				     { WSM_OPT_STALE_TIMEOUT_MS, 5000 },
				     { WSM_OPT_MAX_LIFETIME_MS, 60000 },
				     { WSM_OPT_RETENTION_MS, 60000 },
				     { WSM_OPT_SWEEP_INTERVAL_MS, 100 });
	assert_non_null(h);
	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "tm-%d", i % 8);
		c[i] = must_join(h, id);
	}
	assert_int_equal(harness_wait_until(pinged_all, h, 10000), 0);
	for (i = 0; i < 40; i++)
		wsc_free(c[i]);
	pthread_mutex_lock(&armed.lock);
	print_message("%u lws_sul_schedule() calls, %u distinct timers\n",
		      armed.calls, armed.distinct);
	assert_true(armed.calls > 1);
	assert_int_equal(armed.distinct, 1);
	pthread_mutex_unlock(&armed.lock);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_count_bound),
		cmocka_unit_test(test_one_close_event_each),
		cmocka_unit_test(test_register_gets_replay),
		cmocka_unit_test(test_retained_bytes_bound),
		cmocka_unit_test(test_one_timer_per_manager),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
