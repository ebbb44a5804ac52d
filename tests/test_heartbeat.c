/*
 * Time-driven lifecycle with millisecond settings: heartbeat pings, pongs
 * keeping a connection alive, stale detection and close, maximum lifetime,
 * and the on-demand sweep, on the poll loop and on a libuv loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "support/must.h"

static harness_t *start(int64_t ping_ms, int64_t stale_ms, int64_t lifetime_ms,
			bool libuv)
{
	struct harness_opts opts = { .mode = HARNESS_READY, .libuv = libuv };
	harness_t *h = HARNESS_START(&opts, { WSM_OPT_PING_INTERVAL_MS, ping_ms },
				     { WSM_OPT_STALE_TIMEOUT_MS, stale_ms },
				     { WSM_OPT_MAX_LIFETIME_MS, lifetime_ms },
				     { WSM_OPT_SWEEP_INTERVAL_MS, 50 });

	assert_non_null(h);
	return h;
}

/* Reads (answering pings) until the client has seen n pings or times out. */
static void pump_until_pings(wsc_t *c, unsigned n, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (wsc_pings(c) < n && now_ms() < end)
		assert_int_equal(wsc_recv(c, NULL, NULL, 20), 0);
	assert_true(wsc_pings(c) >= n);
}

/*
 * Pings arrive every interval (never sooner than the interval less its
 * 1/16 slack, and not much later) and pongs keep the connection alive.
 */
static void heartbeat(bool libuv)
{
	harness_t *h = start(100, 500, 600000, libuv);
	wsc_t *c = must_join(h, "beat");
	int64_t t0 = now_ms(), took;

	/* 12 pings at 100 ms span over twice the stale timeout: pongs count. */
	pump_until_pings(c, 12, 10000);
	took = now_ms() - t0;
	print_message("12 pings in %lld ms\n", (long long)took);
	assert_true(took >= 12 * (100 - 100 / 16) - 100); /* the first: at 1 interval */
	assert_true(took < 12 * 100 * 3);
	assert_int_equal(wsc_close_code(c), 0);
	assert_true(harness_metrics(h).pings_sent >= 10);
	assert_int_equal(harness_metrics(h).stale, 0);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, -1, NULL), 0);
	wsc_free(c);
	harness_stop(h);
}

static void test_heartbeat_poll(void **state)
{
	(void)state;
	heartbeat(false);
}

static void test_heartbeat_libuv(void **state)
{
	(void)state;
	heartbeat(true);
}

static bool stale_counted(void *arg)
{
	return harness_metrics(arg).stale == 1;
}

/*
 * A client that stops answering (a raw socket that never reads) is counted
 * stale after an unanswered ping, then closed with 4000; a healthy client in
 * the same session stays.
 */
static void stale(bool libuv)
{
	harness_t *h = start(60, 600, 600000, libuv);
	wsc_t *dead = must_join(h, "st"), *alive = must_join(h, "st");
	int64_t end;

	wsc_set_auto_pong(dead, 0);
	end = now_ms() + 5000;
	while (harness_metrics(h).stale != 1 && now_ms() < end)
		assert_int_equal(wsc_recv(alive, NULL, NULL, 10), 0);
	assert_int_equal(harness_wait_until(stale_counted, h, 0), 0);
	assert_int_equal(harness_metrics(h).active, 1);
	end = now_ms() + 5000;
	while (!harness_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_STALE, "st") &&
	       now_ms() < end)
		assert_int_equal(wsc_recv(alive, NULL, NULL, 10), 0);
	/* Only the silent one went, and as stale. */
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, -1, "st"),
			 harness_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_STALE, "st"));
	assert_int_equal(wsc_wait_close(dead, 5000), WSM_CLOSE_STALE);
	wsc_free(dead);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_STALE,
					     "st", 1, 5000), 0);
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_STALE], 1);
	assert_int_equal(harness_metrics(h).stale, 0);
	assert_int_equal(harness_metrics(h).connections, 1);
	/* The healthy one still gets broadcasts. */
	assert_int_equal(wsm_broadcast_error(harness_mgr(h), "st", "e"), 0);
	must_recv_type(alive, "error");
	assert_int_equal(wsc_close_code(alive), 0);
	wsc_free(alive);
	harness_stop(h);
}

static void test_stale_poll(void **state)
{
	(void)state;
	stale(false);
}

static void test_stale_libuv(void **state)
{
	(void)state;
	stale(true);
}

/* Every connection ends at its maximum lifetime with 4001. */
static void test_max_lifetime(void **state)
{
	harness_t *h = start(1000, 5000, 200, false);
	wsc_t *c = must_join(h, "life");
	int64_t t0 = now_ms();

	(void)state;
	assert_int_equal(wsc_wait_close(c, 5000), WSM_CLOSE_LIFETIME);
	assert_true(now_ms() - t0 >= 150);
	wsc_free(c);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_LIFETIME,
					     "life", 1, 5000), 0);
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_LIFETIME], 1);
	harness_stop(h);
}

/*
 * Holds the service thread past every deadline so the timer cannot run,
 * then sweeps: the sweep itself must close what expired.
 */
static void hold_then_sweep(harness_t *h, void *arg)
{
	int64_t end = now_ms() + 300;

	while (now_ms() < end)
		;
	*(int *)arg = wsm_sweep(harness_mgr(h));
}

static void test_sweep(void **state)
{
	harness_t *h = start(1000, 5000, 100, false);
	wsc_t *a = must_join(h, "sw"), *b = must_join(h, "sw");
	int closed = -1;

	(void)state;
	assert_int_equal(wsm_sweep(harness_mgr(h)), WSM_ETHREAD);
	assert_int_equal(harness_call(h, hold_then_sweep, &closed), 0);
	assert_int_equal(closed, 2);
	assert_int_equal(wsc_wait_close(a, 5000), WSM_CLOSE_LIFETIME);
	assert_int_equal(wsc_wait_close(b, 5000), WSM_CLOSE_LIFETIME);
	/* Nothing left to close. */
	assert_int_equal(harness_sweep(h), 0);
	wsc_free(a);
	wsc_free(b);
	harness_stop(h);
}

static harness_t *start_app_ping(void)
{
	/* A stale window wide enough for the echoing client under TSan. */
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_APP_PING, 1 },
				     { WSM_OPT_PING_INTERVAL_MS, 100 },
				     { WSM_OPT_STALE_TIMEOUT_MS, 1500 });

	assert_non_null(h);
	return h;
}

/*
 * With JSON pings on, protocol pongs (which a proxy could fake) do not keep
 * a connection alive; echoing the JSON ping's nonce does, and is timed.
 */
static void test_app_ping(void **state)
{
	harness_t *h = start_app_ping();
	wsc_t *echoes = must_join(h, "app"), *silent = must_join(h, "app");
	int64_t end = now_ms() + 10000;
	char pong[128];
	json_t *j;
	int pongs = 0, rc = 0;

	(void)state;
	/* 'silent' answers protocol pings (auto pong) but not the JSON ones. */
	while (rc >= 0 && now_ms() < end) {
		rc = wsc_recv(silent, NULL, NULL, 0); /* -1 at its close */
		j = recv_json(echoes, 10);
		if (!j)
			continue;
		assert_string_equal(json_string_value(json_object_get(j, "type")),
				    "ping");
		snprintf(pong, sizeof(pong), "{\"type\":\"pong\",\"nonce\":\"%s\"}",
			 json_string_value(json_object_get(j, "nonce")));
		assert_int_equal(wsc_send_text(echoes, pong), 0);
		pongs++;
		json_decref(j);
	}
	assert_int_equal(rc, -1);
	assert_int_equal(wsc_close_code(silent), WSM_CLOSE_STALE);
	assert_true(wsc_pings(silent) > 0);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_STALE,
					     "app", 1, 5000), 0);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, -1, "app"), 1);
	assert_int_equal(wsc_close_code(echoes), 0);
	assert_true(pongs >= 3);
	assert_true(harness_metrics(h).rtt_samples >= 3);
	assert_true(harness_metrics(h).rtt_max_us > 0);
	assert_true(harness_metrics(h).app_pings_sent >= harness_metrics(h).rtt_samples);
	wsc_free(silent);
	wsc_free(echoes);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heartbeat_poll),
		cmocka_unit_test(test_heartbeat_libuv),
		cmocka_unit_test(test_stale_poll),
		cmocka_unit_test(test_stale_libuv),
		cmocka_unit_test(test_max_lifetime),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_app_ping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
