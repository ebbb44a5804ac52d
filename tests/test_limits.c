/*
 * Admission: per-session and global limits (reject and evict-oldest), the
 * host's authorize hook, and the same limits through wsm_register().
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/must.h"

static harness_t *start(int64_t per_session, int64_t global, int64_t policy,
			enum harness_mode mode)
{
	struct harness_opts opts = { .mode = mode };
	harness_t *h = HARNESS_START(&opts,
				     { WSM_OPT_MAX_CONNECTIONS_PER_SESSION, per_session },
				     { WSM_OPT_MAX_CONNECTIONS, global },
				     { WSM_OPT_SESSION_LIMIT_POLICY, policy });

	assert_non_null(h);
	return h;
}

static int refused_status(harness_t *h, const char *session)
{
	int status = 0;
	wsc_t *c = join_session(h, session, &status);

	assert_null(c);
	return status;
}

static void test_per_session_limit_rejects(void **state)
{
	harness_t *h = start(2, 100, WSM_LIMIT_REJECT, HARNESS_READY);
	wsc_t *a = must_join(h, "full"), *b = must_join(h, "full"), *other;
	uint64_t held = harness_metrics(h).held_bytes;
	json_t *j;

	(void)state;
	assert_int_equal(refused_status(h, "full"), 429);
	assert_int_equal(refused_status(h, "full"), 429);
	assert_int_equal(harness_metrics(h).refused_session_limit, 2);
	assert_int_equal(harness_metrics(h).connections, 2);
	assert_int_equal(harness_metrics(h).held_bytes, held);
	/* The limit is per session: another one is unaffected. */
	other = must_join(h, "other");
	/* And the admitted ones still work. */
	assert_int_equal(wsm_broadcast_progress(harness_mgr(h), "full", 1, NULL,
						NULL), 0);
	j = recv_json(a, 5000);
	assert_non_null(j);
	json_decref(j);
	j = recv_json(b, 5000);
	assert_non_null(j);
	json_decref(j);
	/* A slot freed by a departure can be taken again. */
	wsc_free(a);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, -1, "full", 1,
					     5000), 0);
	a = must_join(h, "full");
	wsc_free(a);
	wsc_free(b);
	wsc_free(other);
	harness_stop(h);
}

static void test_per_session_limit_evicts_oldest(void **state)
{
	harness_t *h = start(2, 100, WSM_LIMIT_EVICT_OLDEST, HARNESS_READY);
	wsc_t *oldest = must_join(h, "ev"), *mid = must_join(h, "ev"), *newest;
	json_t *j;

	(void)state;
	newest = must_join(h, "ev");
	assert_int_equal(wsc_wait_close(oldest, 5000), WSM_CLOSE_EVICTED);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_EVICTED,
					     "ev", 1, 5000), 0);
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_EVICTED], 1);
	assert_int_equal(wsm_broadcast_error(harness_mgr(h), "ev", "x"), 0);
	j = recv_json(mid, 5000);
	assert_non_null(j);
	json_decref(j);
	j = recv_json(newest, 5000);
	assert_non_null(j);
	json_decref(j);
	wsc_free(oldest);
	wsc_free(mid);
	wsc_free(newest);
	harness_stop(h);
}

static void test_global_limit(void **state)
{
	harness_t *h = start(2, 3, WSM_LIMIT_REJECT, HARNESS_READY);
	wsc_t *c[3];

	(void)state;
	c[0] = must_join(h, "g1");
	c[1] = must_join(h, "g1");
	c[2] = must_join(h, "g2");
	assert_int_equal(refused_status(h, "g3"), 503);
	assert_int_equal(refused_status(h, "g2"), 503);
	assert_int_equal(harness_metrics(h).refused_global_limit, 2);
	assert_int_equal(harness_metrics(h).connections, 3);
	wsc_free(c[2]);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, -1, "g2", 1,
					     5000), 0);
	c[2] = must_join(h, "g3");
	wsc_free(c[0]);
	wsc_free(c[1]);
	wsc_free(c[2]);
	harness_stop(h);
}

static int authorize(void *user, struct lws *wsi, const char *session)
{
	(void)wsi;
	(*(int *)user)++;
	if (!strcmp(session, "secret"))
		return 401;
	if (!strcmp(session, "weird"))
		return 42; /* not an HTTP error status: becomes 403 */
	return 0;
}

static void test_authorize_hook(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	int calls = 0;
	harness_t *h;
	wsc_t *c;

	(void)state;
	wsm_config_set_authorize_cb(cfg, authorize, &calls);
	h = harness_start(cfg, NULL);
	wsm_config_free(cfg);
	assert_int_equal(refused_status(h, "secret"), 401);
	assert_int_equal(refused_status(h, "weird"), 403);
	c = must_join(h, "public");
	assert_int_equal(calls, 3);
	assert_int_equal(harness_metrics(h).refused_denied, 2);
	assert_int_equal(harness_metrics(h).opened, 1);
	wsc_free(c);
	harness_stop(h);
}

/* wsm_register() applies the same validation and limits. */
static void test_register_limits(void **state)
{
	harness_t *h = start(1, 100, WSM_LIMIT_REJECT, HARNESS_REGISTER);
	wsc_t *a = must_join(h, "reg"), *b;
	int status = 0;

	(void)state;
	assert_true(harness_register_result(h, 1, 5000) > 0);
	/*
	 * The host upgraded before asking: a refusal is a close frame with
	 * 4005 and the reason, sent as the host returns nonzero.
	 */
	b = join_session(h, "reg", &status);
	assert_int_equal(harness_register_result(h, 2, 5000), WSM_ESESSIONFULL);
	assert_int_equal(wsc_wait_close(b, 5000), WSM_CLOSE_REFUSED);
	assert_string_equal(wsc_close_reason(b), "session_full");
	wsc_free(b);
	b = join_session(h, "bad.id", &status);
	assert_int_equal(harness_register_result(h, 3, 5000), WSM_ESESSIONID);
	assert_int_equal(wsc_wait_close(b, 5000), WSM_CLOSE_REFUSED);
	assert_string_equal(wsc_close_reason(b), "bad_id");
	wsc_free(b);
	assert_int_equal(harness_metrics(h).refused[WSM_REFUSAL_SESSION_FULL], 1);
	assert_int_equal(harness_metrics(h).refused[WSM_REFUSAL_BAD_ID], 1);
	wsc_free(a);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, -1, "reg", 1,
					     5000), 0);
	b = join_session(h, "twice", &status);
	assert_int_equal(harness_register_result(h, 4, 5000), WSM_EEXIST);
	assert_int_equal(wsc_wait_close(b, 5000), 1006);
	wsc_free(b);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, -1, "twice", 1,
					     5000), 0);
	assert_int_equal(harness_metrics(h).connections, 0);
	harness_stop(h);
}

static int connect_status(harness_t *h, const char *from, const char *session,
			  const char *headers, wsc_t **out)
{
	char path[128];
	int status = 0;

	snprintf(path, sizeof(path), PREFIX "%s", session);
	*out = wsc_connect_from(from, harness_port(h), path, headers, 5000, &status);
	return status;
}

struct held_want {
	harness_t *h;
	uint64_t held;
};

static bool held_is(void *arg)
{
	struct held_want *w = arg;

	return harness_metrics(w->h).held_bytes == w->held;
}

/* A cap per peer address: one address is refused, the others are not. */
static void test_per_ip_cap(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_MAX_CONNECTIONS_PER_IP, 2 },
				     { WSM_OPT_RETENTION_MS, 0 });
	uint64_t held = harness_metrics(h).held_bytes;
	wsc_t *c[5];

	(void)state;
	assert_int_equal(connect_status(h, "127.0.0.2", "ip-a", NULL, &c[0]), 101);
	assert_int_equal(connect_status(h, "127.0.0.2", "ip-b", NULL, &c[1]), 101);
	assert_int_equal(connect_status(h, "127.0.0.2", "ip-c", NULL, &c[2]), 429);
	assert_null(c[2]);
	assert_int_equal(connect_status(h, "127.0.0.3", "ip-c", NULL, &c[3]), 101);
	assert_int_equal(harness_metrics(h).refused_per_ip, 1);
	/* A departure frees the address's slot. */
	assert_int_equal(harness_wait_events(h, WSM_EVENT_OPEN, -1, NULL, 3, 5000), 0);
	wsc_free(c[0]);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, -1, "ip-a", 1,
					     5000), 0);
	assert_int_equal(connect_status(h, "127.0.0.2", "ip-d", NULL, &c[4]), 101);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_OPEN, -1, NULL, 4, 5000), 0);
	wsc_free(c[1]);
	wsc_free(c[3]);
	wsc_free(c[4]);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, -1, NULL, 4, 5000), 0);
	/* Per-peer records go with their last connection. */
	assert_int_equal(harness_wait_until(held_is, &(struct held_want){ h, held },
					    5000), 0);
	harness_stop(h);
}

static pthread_mutex_t refused_lock = PTHREAD_MUTEX_INITIALIZER;
static char refused_peer[64];

static void note_refused(void *user, wsm_refusal_t why, int status,
			 const char *session_id, const char *peer)
{
	(void)user;
	(void)why;
	(void)status;
	(void)session_id;
	pthread_mutex_lock(&refused_lock);
	snprintf(refused_peer, sizeof(refused_peer), "%s", peer);
	pthread_mutex_unlock(&refused_lock);
}

/*
 * Listening on every address, lws 4.1 takes IPv4 peers on a dual-stack
 * socket (as ::ffff:127.0.0.2) and 4.3 on an IPv4 one (as 127.0.0.2):
 * either way one address, one count, one name.
 */
static void test_per_ip_cap_on_every_address(void **state)
{
	struct harness_opts o = { .mode = HARNESS_READY, .any_iface = true };
	wsm_config_t *cfg = wsm_config_new();
	harness_t *h;
	wsc_t *c[3];

	(void)state;
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS_PER_IP,
					    1),
			 0);
	assert_int_equal(wsm_config_set_refused_cb(cfg, note_refused, NULL), 0);
	h = harness_start(cfg, &o);
	wsm_config_free(cfg);
	assert_non_null(h);
	assert_int_equal(connect_status(h, "127.0.0.2", "any-a", NULL, &c[0]), 101);
	assert_int_equal(connect_status(h, "127.0.0.2", "any-b", NULL, &c[1]), 429);
	assert_null(c[1]);
	/* Named before the answer was written. */
	pthread_mutex_lock(&refused_lock);
	assert_string_equal(refused_peer, "127.0.0.2");
	pthread_mutex_unlock(&refused_lock);
	assert_int_equal(connect_status(h, "127.0.0.3", "any-b", NULL, &c[2]), 101);
	assert_int_equal(harness_metrics(h).refused_per_ip, 1);
	wsc_free(c[0]);
	wsc_free(c[2]);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, -1, NULL, 2, 5000), 0);
	harness_stop(h);
}

static void test_origin_allow_list(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	harness_t *h;
	wsc_t *c;

	(void)state;
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_ORIGIN_ALLOW,
					    "https://a.example,http://127.0.0.1:7681"),
			 0);
	assert_int_equal(wsm_config_set_str(cfg, WSM_OPT_ORIGIN_ALLOW, "bad origin"),
			 WSM_ERANGE);
	h = harness_start(cfg, NULL);
	wsm_config_free(cfg);
	assert_int_equal(connect_status(h, "127.0.0.1", "o1",
					"Origin: https://evil.example\r\n", &c),
			 403);
	assert_int_equal(connect_status(h, "127.0.0.1", "o1",
					"Origin: https://a.example.evil\r\n", &c),
			 403);
	assert_int_equal(connect_status(h, "127.0.0.1", "o1",
					"Origin: http://127.0.0.1:7681\r\n", &c),
			 101);
	wsc_free(c);
	/* No Origin at all: not a browser, admitted. */
	assert_int_equal(connect_status(h, "127.0.0.1", "o1", NULL, &c), 101);
	wsc_free(c);
	assert_int_equal(harness_metrics(h).refused_origin, 2);
	harness_stop(h);
}

/* A burst of upgrades beyond the rate gets 503 + Retry-After; the rest pass. */
static void test_upgrade_rate(void **state)
{
	/* 2 per second: even at valgrind's pace 20 upgrades outrun it. */
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_MAX_UPGRADE_RATE, 2 },
				     { WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 50 });
	int i, ok = 0, busy = 0, st;
	wsc_t *c[20];

	(void)state;
	for (i = 0; i < 20; i++) {
		st = connect_status(h, "127.0.0.1", "rate", NULL, &c[i]);
		ok += st == 101;
		busy += st == 503;
	}
	/* The bucket holds one second's worth: 2, plus what refills meanwhile. */
	assert_true(ok >= 2 && ok < 20);
	assert_int_equal(ok + busy, 20);
	assert_int_equal(harness_metrics(h).refused_rate, (uint64_t)busy);
	/* The bucket is empty: the next refusal's head says when to retry. */
	for (i = 0; i < 10; i++) {
		char *resp = NULL;

		st = wsc_exchange(harness_port(h),
				  "GET " PREFIX "rate HTTP/1.1\r\nHost: x\r\n"
				  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				  "Sec-WebSocket-Version: 13\r\n"
				  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
				  &resp, 2000);
		if (st == 503) {
			assert_non_null(resp);
			assert_non_null(strstr(resp, "\r\nRetry-After: 1\r\n"));
		}
		free(resp);
		if (st == 503)
			break;
	}
	assert_int_equal(st, 503);
	for (i = 0; i < 20; i++)
		wsc_free(c[i]);
	harness_stop(h);
}

static void open_session(harness_t *h, void *arg)
{
	*(int *)arg = wsm_session_open(harness_mgr(h), "known");
}

static bool retained_two(void *arg)
{
	return harness_metrics(arg).retained_sessions == 2;
}

/* Under WSM_OPT_ANNOUNCED_ONLY an unknown id holds nothing and gets 404. */
static void test_announced_only(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_ANNOUNCED_ONLY, 1 });
	wsm_manager_t *m;
	wsc_t *c;
	json_t *j;
	int status = 0, rc = 1;
	uint64_t held;

	(void)state;
	assert_non_null(h);
	m = harness_mgr(h);
	held = harness_metrics(h).held_bytes;
	assert_null(join_session(h, "known", &status));
	assert_int_equal(status, 404);
	assert_int_equal(harness_metrics(h).refused[WSM_REFUSAL_UNKNOWN_SESSION], 1);
	assert_int_equal(harness_metrics(h).sessions, 0);
	assert_int_equal(harness_metrics(h).held_bytes, held);
	/* Announced on the service thread: admitted at once. */
	assert_int_equal(harness_call(h, open_session, &rc), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(harness_metrics(h).retained_sessions, 1);
	c = must_join(h, "known");
	wsc_free(c);
	/* A broadcast announces too: the job knows its own session. (The
	 * first is retained now that its client left.) */
	assert_int_equal(wsm_broadcast_progress(m, "by-job", 5, NULL, NULL), 0);
	assert_int_equal(harness_wait_until(retained_two, h, 5000), 0);
	c = must_join(h, "by-job");
	j = recv_type(c, "progress", 5000);
	assert_non_null(j);
	json_decref(j);
	wsc_free(c);
	/* Bad ids are refused before any announcement is made. */
	assert_int_equal(wsm_session_open(m, "bad.id"), WSM_ESESSIONID);
	assert_int_equal(wsm_session_open(NULL, "x"), WSM_EINVAL);
	harness_stop(h);
}

/* A host routing itself can have libwsm's admission before the upgrade. */
static void test_admit_before_register(void **state)
{
	struct harness_opts opts = { .mode = HARNESS_REGISTER,
				     .admit_first = true };
	harness_t *h = HARNESS_START(&opts,
				     { WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 1 });
	wsc_t *a;
	int status = 0;

	(void)state;
	assert_non_null(h);
	a = must_join(h, "adm");
	assert_true(harness_register_result(h, 1, 5000) > 0);
	/* Refused with the ready entry's status, before any 101. */
	assert_null(join_session(h, "adm", &status));
	assert_int_equal(status, 429);
	assert_null(join_session(h, "bad.id", &status));
	assert_int_equal(status, 400);
	assert_int_equal(harness_register_result(h, 1, 100), (int64_t)1);
	assert_int_equal(harness_metrics(h).refused[WSM_REFUSAL_SESSION_FULL], 1);
	assert_int_equal(harness_metrics(h).refused[WSM_REFUSAL_BAD_ID], 1);
	/* No connection to judge. */
	assert_int_equal(wsm_admit(harness_mgr(h), NULL, "x"), WSM_EINVAL);
	wsc_free(a);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_session_limit_rejects),
		cmocka_unit_test(test_per_session_limit_evicts_oldest),
		cmocka_unit_test(test_global_limit),
		cmocka_unit_test(test_authorize_hook),
		cmocka_unit_test(test_register_limits),
		cmocka_unit_test(test_admit_before_register),
		cmocka_unit_test(test_announced_only),
		cmocka_unit_test(test_per_ip_cap),
		cmocka_unit_test(test_per_ip_cap_on_every_address),
		cmocka_unit_test(test_origin_allow_list),
		cmocka_unit_test(test_upgrade_rate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
