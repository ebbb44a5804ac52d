/*
 * Broadcast delivery over real sockets: content and order, seq, isolation
 * between sessions, coalescing, manual cleanup, in each way a host can plug
 * libwsm in (ready protocol, delegating callback, explicit register) and on
 * both the poll loop and a libuv loop the host owns.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "support/session_client.h"

static const struct harness_opts modes[] = {
	{ .mode = HARNESS_READY },
	{ .mode = HARNESS_DELEGATE },
	{ .mode = HARNESS_REGISTER },
	{ .mode = HARNESS_READY, .libuv = true },
};

static const char *str(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static json_int_t num(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

static void join_n(harness_t *h, const char *session, wsc_t **c, int n)
{
	size_t before = harness_events(h, WSM_EVENT_OPEN, -1, session);
	int i, status;

	for (i = 0; i < n; i++) {
		c[i] = join_session(h, session, &status);
		assert_int_equal(status, 101);
		assert_non_null(c[i]);
	}
	assert_int_equal(harness_wait_events(h, WSM_EVENT_OPEN, -1, session,
					     before + (size_t)n, 5000), 0);
}

static void check_progress(json_t *j, const char *session, json_int_t seq,
			   double progress, const char *message,
			   const char *stage)
{
	assert_non_null(j);
	assert_string_equal(str(j, "type"), "progress");
	assert_string_equal(str(j, "sessionId"), session);
	assert_int_equal(num(j, "seq"), seq);
	assert_true(json_real_value(json_object_get(j, "progress")) == progress);
	if (message)
		assert_string_equal(str(j, "message"), message);
	else
		assert_null(json_object_get(j, "message"));
	if (stage)
		assert_string_equal(str(j, "stage"), stage);
	assert_true(num(j, "timestamp") > 1700000000000LL);
}

/* progress, error and complete arrive intact and in order, seq rising. */
static void delivery_in_mode(const struct harness_opts *mode)
{
	harness_t *h = harness_start(NULL, mode);
	wsm_manager_t *m;
	wsc_t *c[2];
	json_t *j;
	int i;

	assert_non_null(h);
	m = harness_mgr(h);
	join_n(h, "job-1", c, 2);
	if (mode->mode == HARNESS_REGISTER)
		assert_true(harness_register_result(h, 2, 5000) > 0);
	assert_int_equal(wsm_broadcast_progress(m, "job-1", 12.5, "uploading",
						"upload"), 0);
	for (i = 0; i < 2; i++) {
		j = recv_json(c[i], 5000);
		check_progress(j, "job-1", 1, 12.5, "uploading", "upload");
		json_decref(j);
	}
	/* Nothing unsent to coalesce with now: all four arrive, in order. */
	assert_int_equal(wsm_broadcast_error(m, "job-1", "disk \"full\" ✓"), 0);
	assert_int_equal(wsm_broadcast_progress(m, "job-1", 100, NULL, NULL), 0);
	assert_int_equal(wsm_broadcast_complete(m, "job-1",
						"{\"width\":640,\"tags\":[\"a\"]}"),
			 0);
	for (i = 0; i < 2; i++) {
		j = recv_json(c[i], 5000);
		assert_non_null(j);
		assert_string_equal(str(j, "type"), "error");
		assert_int_equal(num(j, "seq"), 2);
		assert_string_equal(str(j, "error"), "disk \"full\" ✓");
		json_decref(j);
		j = recv_json(c[i], 5000);
		check_progress(j, "job-1", 3, 100, NULL, NULL);
		json_decref(j);
		j = recv_json(c[i], 5000);
		assert_non_null(j);
		assert_string_equal(str(j, "type"), "complete");
		assert_int_equal(num(j, "seq"), 4);
		assert_int_equal(num(json_object_get(j, "metadata"), "width"), 640);
		json_decref(j);
	}
	for (i = 0; i < 2; i++)
		wsc_free(c[i]);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_ERROR,
					     "job-1", 2, 5000), 0);
	harness_stop(h);
}

static void test_delivery_ready(void **state)
{
	(void)state;
	delivery_in_mode(&modes[0]);
}

static void test_delivery_delegate(void **state)
{
	(void)state;
	delivery_in_mode(&modes[1]);
}

static void test_delivery_register(void **state)
{
	(void)state;
	delivery_in_mode(&modes[2]);
}

static void test_delivery_libuv_foreign_loop(void **state)
{
	(void)state;
	delivery_in_mode(&modes[3]);
}

/* No message ever reaches another session's connections. */
static void test_isolation(void **state)
{
	harness_t *h = harness_start(NULL, NULL);
	char session[16], want[16];
	wsc_t *c[3][2];
	json_t *j;
	int s, i, k;

	(void)state;
	for (s = 0; s < 3; s++) {
		snprintf(session, sizeof(session), "iso-%d", s);
		join_n(h, session, c[s], 2);
	}
	for (k = 0; k < 5; k++)
		for (s = 0; s < 3; s++) {
			snprintf(session, sizeof(session), "iso-%d", s);
			assert_int_equal(wsm_broadcast_error(harness_mgr(h), session,
							     session), 0);
		}
	for (s = 0; s < 3; s++) {
		snprintf(want, sizeof(want), "iso-%d", s);
		for (i = 0; i < 2; i++) {
			for (k = 0; k < 5; k++) {
				j = recv_json(c[s][i], 5000);
				assert_non_null(j);
				assert_string_equal(str(j, "sessionId"), want);
				assert_string_equal(str(j, "error"), want);
				assert_int_equal(num(j, "seq"), k + 1);
				json_decref(j);
			}
			assert_int_equal(wsc_recv(c[s][i], NULL, NULL, 50), 0);
			wsc_free(c[s][i]);
		}
	}
	harness_stop(h);
}

/* A burst of progress collapses to the newest; complete is never merged. */
/*
 * Latest wins wherever the old progress is in the queue: everything below
 * reaches the connection's queue in one inbox drain, before lws can write
 * anything, so the queue really holds it all.
 */
static void test_progress_latest_wins_in_queue(void **state)
{
	harness_t *h = harness_start(NULL, NULL);
	wsm_manager_t *m = harness_mgr(h);
	struct harness_hold *hold;
	wsc_t *c;
	json_t *j;
	int i;

	(void)state;
	join_n(h, "held", &c, 1);
	hold = harness_hold(h);
	assert_non_null(hold);
	for (i = 0; i <= 100; i++)
		assert_int_equal(wsm_broadcast_progress(m, "held", i, NULL, NULL), 0);
	/* A terminal in the middle: the next progress replaces the one before
	 * it and goes after it, so the order of seqs holds. */
	assert_int_equal(wsm_broadcast_error(m, "held", "halfway"), 0);
	assert_int_equal(wsm_broadcast_progress(m, "held", 50, "late", NULL), 0);
	harness_release(hold);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(str(j, "type"), "error");
	assert_int_equal(num(j, "seq"), 102);
	json_decref(j);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(str(j, "type"), "progress");
	assert_int_equal(num(j, "seq"), 103);
	assert_string_equal(str(j, "message"), "late");
	json_decref(j);
	/* Nothing else: 101 progress were replaced, each by the next. */
	assert_int_equal(wsc_recv(c, NULL, NULL, 200), 0);
	assert_int_equal(harness_metrics(h).coalesced, 101);
	assert_int_equal(harness_metrics(h).messages_sent, 2);
	wsc_free(c);
	harness_stop(h);
}

static void test_progress_coalesces(void **state)
{
	harness_t *h = harness_start(NULL, NULL);
	wsm_manager_t *m = harness_mgr(h);
	wsc_t *c;
	json_t *j;
	double last = -1;
	bool completed = false;
	int i, got = 0;

	(void)state;
	join_n(h, "burst", &c, 1);
	for (i = 0; i <= 100; i++)
		assert_int_equal(wsm_broadcast_progress(m, "burst", i, NULL, NULL), 0);
	assert_int_equal(wsm_broadcast_complete(m, "burst", NULL), 0);
	while ((j = recv_json(c, 5000))) {
		if (!strcmp(str(j, "type"), "complete")) {
			assert_int_equal(num(j, "seq"), 102);
			assert_int_equal(json_object_size(json_object_get(j, "metadata")), 0);
			json_decref(j);
			completed = true;
			break;
		}
		assert_true(json_real_value(json_object_get(j, "progress")) > last);
		last = json_real_value(json_object_get(j, "progress"));
		got++;
		json_decref(j);
	}
	/* Outside the loop: a timeout must not pass for a complete. */
	assert_true(completed);
	assert_true(last == 100.0);
	assert_true(got >= 1 && got <= 101);
	assert_int_equal(harness_metrics(h).coalesced, (uint64_t)(101 - got));
	wsc_free(c);
	harness_stop(h);
}

struct close_args {
	const char *session;
	int result;
};

static void close_on_service_thread(harness_t *h, void *arg)
{
	struct close_args *a = arg;

	a->result = wsm_session_close(harness_mgr(h), a->session);
}

/* Manual cleanup closes one session (queued messages first), no other. */
static void test_manual_cleanup(void **state)
{
	harness_t *h = harness_start(NULL, NULL);
	wsm_manager_t *m = harness_mgr(h);
	struct close_args args = { "other", 0 };
	wsc_t *a[3], *b;
	json_t *j;
	int i;

	(void)state;
	join_n(h, "victim", a, 3);
	join_n(h, "other", &b, 1);
	assert_int_equal(wsm_session_close(m, "nobody"), WSM_ENOTFOUND);
	assert_int_equal(wsm_session_close(m, "bad id!"), WSM_ESESSIONID);
	assert_int_equal(wsm_broadcast_complete(m, "victim", "{\"ok\":true}"), 0);
	assert_int_equal(wsm_session_close(m, "victim"), 3);
	for (i = 0; i < 3; i++) {
		j = recv_json(a[i], 5000);
		assert_non_null(j);
		assert_string_equal(str(j, "type"), "complete");
		json_decref(j);
		assert_int_equal(wsc_wait_close(a[i], 5000), WSM_CLOSE_SESSION_CLOSED);
		wsc_free(a[i]);
	}
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE,
					     WSM_CAUSE_SESSION_CLOSED, "victim",
					     3, 5000), 0);
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_SESSION_CLOSED], 3);
	assert_int_equal(wsm_broadcast_progress(m, "other", 1, "still here", NULL), 0);
	j = recv_json(b, 5000);
	check_progress(j, "other", 1, 1, "still here", NULL);
	json_decref(j);
	/* On the service thread the close is immediate and counted the same. */
	assert_int_equal(harness_call(h, close_on_service_thread, &args), 0);
	assert_int_equal(args.result, 1);
	assert_int_equal(wsc_wait_close(b, 5000), WSM_CLOSE_SESSION_CLOSED);
	wsc_free(b);
	harness_stop(h);
}

/* Broadcasting to a session nobody watches is fine and counted. */
struct on_loop {
	uint64_t queued_before, queued_after;
	int rc_worker, rc_here;
};

static void *worker_progress(void *arg)
{
	harness_t *h = arg;

	return (void *)(intptr_t)wsm_broadcast_progress(harness_mgr(h), "svc", 10,
							NULL, NULL);
}

static uint64_t queued_now(harness_t *h)
{
	wsm_metrics_t mx;

	memset(&mx, 0, sizeof(mx));
	mx.size = sizeof(mx);
	return wsm_metrics(harness_mgr(h), &mx) ? 0 : mx.messages_queued;
}

/*
 * On the service thread: a worker's progress waits in the inbox (this
 * thread is busy), then a complete made here is delivered before the call
 * returns, after the worker's earlier progress.
 */
static void broadcast_on_loop(harness_t *h, void *arg)
{
	struct on_loop *o = arg;
	pthread_t th;
	void *rc;

	o->rc_worker = -1;
	if (pthread_create(&th, NULL, worker_progress, h) == 0) {
		pthread_join(th, &rc);
		o->rc_worker = (int)(intptr_t)rc;
	}
	o->queued_before = queued_now(h);
	o->rc_here = wsm_broadcast_complete(harness_mgr(h), "svc", NULL);
	o->queued_after = queued_now(h);
}

/* A broadcast made on the service thread skips the inbox, keeping order. */
static void test_service_thread_broadcast(void **state)
{
	harness_t *h = harness_start(NULL, NULL);
	struct on_loop o;
	wsc_t *c;
	json_t *j;

	(void)state;
	assert_non_null(h);
	c = join_and_wait(h, "svc", NULL);
	assert_non_null(c);
	assert_int_equal(harness_call(h, broadcast_on_loop, &o), 0);
	assert_int_equal(o.rc_worker, 0);
	assert_int_equal(o.rc_here, 0);
	/* Both queued by the time the call returned: no trip through the loop. */
	assert_int_equal(o.queued_after, o.queued_before + 2);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "progress");
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 1);
	json_decref(j);
	j = recv_json(c, 5000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "complete");
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 2);
	json_decref(j);
	wsc_free(c);
	harness_stop(h);
}

static void test_unrouted(void **state)
{
	harness_t *h = harness_start(NULL, NULL);
	wsc_t *c;

	(void)state;
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "empty", 5, NULL,
						NULL), 0);
	/* A connection after it proves the inbox was drained in order. */
	join_n(h, "empty", &c, 1);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "empty", 6, NULL,
						NULL), 0);
	/*
	 * The first, unrouted, was retained and is replayed, unless the
	 * second replaced it in the queue before it was written (latest
	 * wins): 5 then 6, or 6 alone.
	 */
	{
		json_t *j = recv_json(c, 5000);
		double v;

		assert_non_null(j);
		v = json_real_value(json_object_get(j, "progress"));
		json_decref(j);
		if (v == 5.0) {
			j = recv_json(c, 5000);
			assert_non_null(j);
			v = json_real_value(json_object_get(j, "progress"));
			json_decref(j);
		}
		assert_true(v == 6.0);
	}
	assert_int_equal(harness_metrics(h).unrouted, 1);
	assert_int_equal(harness_metrics(h).broadcasts, 2);
	wsc_free(c);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delivery_ready),
		cmocka_unit_test(test_delivery_delegate),
		cmocka_unit_test(test_delivery_register),
		cmocka_unit_test(test_delivery_libuv_foreign_loop),
		cmocka_unit_test(test_isolation),
		cmocka_unit_test(test_progress_coalesces),
		cmocka_unit_test(test_progress_latest_wins_in_queue),
		cmocka_unit_test(test_manual_cleanup),
		cmocka_unit_test(test_unrouted),
		cmocka_unit_test(test_service_thread_broadcast),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
