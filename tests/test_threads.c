/*
 * Broadcasts from several threads at once, with readers, a churn of
 * connecting and leaving clients, metrics readers and a manual cleanup all
 * running concurrently. Runs under ThreadSanitizer in CI.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "support/session_client.h"

#define PRODUCERS 4
#define SESSIONS_PER_PRODUCER 50
#define CLIENTS_PER_SESSION 1
#define STEPS 200
#define READERS (PRODUCERS * SESSIONS_PER_PRODUCER * CLIENTS_PER_SESSION)

struct producer {
	harness_t *h;
	int index;
	int failures;
};

struct reader {
	wsc_t *c;
	char session[32];
	int errors, completes, bad_order, foreign, after_complete;
	json_int_t last_seq;
	double last_progress;
};

static atomic_bool stop_side_threads;

static void session_name(char *buf, size_t size, int producer, int k)
{
	snprintf(buf, size, "p%d-s%d", producer, k);
}

static void *produce(void *arg)
{
	struct producer *p = arg;
	wsm_manager_t *m = harness_mgr(p->h);
	char session[32];
	int i, k;

	for (i = 0; i <= STEPS; i++) {
		for (k = 0; k < SESSIONS_PER_PRODUCER; k++) {
			session_name(session, sizeof(session), p->index, k);
			if (wsm_broadcast_progress(m, session, i * 100.0 / STEPS,
						   "working", "stage") != 0)
				p->failures++;
			if (i == STEPS / 2 &&
			    wsm_broadcast_error(m, session, "half way") != 0)
				p->failures++;
		}
	}
	for (k = 0; k < SESSIONS_PER_PRODUCER; k++) {
		session_name(session, sizeof(session), p->index, k);
		if (wsm_broadcast_complete(m, session, "{\"done\":true}") != 0)
			p->failures++;
	}
	return NULL;
}

static void *read_all(void *arg)
{
	struct reader *r = arg;
	json_t *j;

	while ((j = recv_json(r->c, 10000))) {
		const char *type = json_string_value(json_object_get(j, "type"));
		json_int_t seq = json_integer_value(json_object_get(j, "seq"));

		if (strcmp(json_string_value(json_object_get(j, "sessionId")),
			   r->session))
			r->foreign++;
		if (seq <= r->last_seq)
			r->bad_order++;
		r->last_seq = seq;
		if (!strcmp(type, "progress")) {
			double v = json_real_value(json_object_get(j, "progress"));

			if (v < r->last_progress)
				r->bad_order++;
			r->last_progress = v;
		} else if (!strcmp(type, "error")) {
			r->errors++;
		} else if (!strcmp(type, "complete")) {
			r->completes++;
			json_decref(j);
			/* complete is the last word: nothing may follow it. */
			while ((j = recv_json(r->c, 100))) {
				r->after_complete++;
				json_decref(j);
			}
			break;
		}
		json_decref(j);
	}
	return NULL;
}

/* Clients of other sessions come and go while the producers run. */
static void *churn(void *arg)
{
	harness_t *h = arg;
	char session[32];
	int i = 0;

	while (!atomic_load(&stop_side_threads) && i < 200) {
		wsc_t *c;

		snprintf(session, sizeof(session), "churn-%d", i++ % 5);
		c = join_session(h, session, NULL);
		if (c) {
			wsm_broadcast_progress(harness_mgr(h), session, 1, NULL, NULL);
			json_decref(recv_json(c, 1000));
			wsc_free(c);
		}
	}
	return NULL;
}

/* Inconsistencies the watcher saw; asserted on the test's thread. */
static atomic_int watch_failures;

static void *watch(void *arg)
{
	harness_t *h = arg;
	char buf[4096];
	int i = 0;

	while (!atomic_load(&stop_side_threads) && i++ < 100000) {
		wsm_metrics_t s = harness_metrics(h);

		if (s.active + s.stale > s.connections ||
		    wsm_status_json(harness_mgr(h), buf, sizeof(buf)) <= 0)
			atomic_fetch_add(&watch_failures, 1);
		wsm_session_close(harness_mgr(h), "nobody-here");
	}
	return NULL;
}

static bool all_gone(void *arg)
{
	wsm_metrics_t s = harness_metrics(arg);

	return s.connections == 0 && s.sessions == 0;
}

static void test_concurrent_broadcasts(void **state)
{
	wsm_config_t *cfg = wsm_config_new();
	harness_t *h;
	struct producer producers[PRODUCERS];
	struct reader readers[READERS];
	pthread_t pt[PRODUCERS], rt[READERS], ct, wt;
	uint64_t baseline;
	int i, p, k, n = 0;

	(void)state;
	/* Idle sessions are kept for replay: briefly, so all_gone() can hold. */
	assert_int_equal(wsm_config_set_int(cfg, WSM_OPT_RETENTION_MS, 20), 0);
	h = harness_start(cfg, NULL);
	wsm_config_free(cfg);
	baseline = harness_metrics(h).held_bytes;
	for (p = 0; p < PRODUCERS; p++)
		for (k = 0; k < SESSIONS_PER_PRODUCER; k++)
			for (i = 0; i < CLIENTS_PER_SESSION; i++) {
				struct reader *r = &readers[n++];

				memset(r, 0, sizeof(*r));
				session_name(r->session, sizeof(r->session), p, k);
				r->c = join_session(h, r->session, NULL);
				assert_non_null(r->c);
			}
	assert_int_equal(harness_wait_events(h, WSM_EVENT_OPEN, -1, NULL, READERS,
					     5000), 0);
	for (i = 0; i < READERS; i++)
		pthread_create(&rt[i], NULL, read_all, &readers[i]);
	pthread_create(&ct, NULL, churn, h);
	pthread_create(&wt, NULL, watch, h);
	for (p = 0; p < PRODUCERS; p++) {
		producers[p] = (struct producer){ h, p, 0 };
		pthread_create(&pt[p], NULL, produce, &producers[p]);
	}
	for (p = 0; p < PRODUCERS; p++) {
		pthread_join(pt[p], NULL);
		assert_int_equal(producers[p].failures, 0);
	}
	for (i = 0; i < READERS; i++)
		pthread_join(rt[i], NULL);
	atomic_store(&stop_side_threads, true);
	pthread_join(ct, NULL);
	pthread_join(wt, NULL);
	assert_int_equal(atomic_load(&watch_failures), 0);

	for (i = 0; i < READERS; i++) {
		struct reader *r = &readers[i];

		assert_int_equal(r->completes, 1);
		assert_int_equal(r->after_complete, 0);
		assert_int_equal(r->errors, 1);
		assert_int_equal(r->foreign, 0);
		assert_int_equal(r->bad_order, 0);
		assert_true(r->last_progress == 100.0);
		assert_int_equal(wsc_close_code(r->c), 0);
		wsc_free(r->c);
	}
	assert_int_equal(harness_wait_until(all_gone, h, 10000), 0);
	assert_int_equal(harness_metrics(h).held_bytes, baseline);
	assert_int_equal(harness_metrics(h).closed[WSM_CAUSE_SLOW_CONSUMER], 0);
	harness_stop(h);
}

/* ---- a full inbox never refuses a terminal message ------------------- */

#define FLOODERS 4
#define INBOX 16

struct flooder {
	wsm_manager_t *m;
	char session[16];
	int progress_ok, refused, terminal_rc;
};

/* Progress until the inbox is full (bounded), then the job's complete. */
static void *flood(void *arg)
{
	struct flooder *f = arg;
	int i, rc;

	for (i = 0; i < 10 * INBOX; i++) {
		rc = wsm_broadcast_progress(f->m, f->session, i % 100, NULL, NULL);
		if (rc == WSM_EAGAIN)
			f->refused++;
		else if (rc == 0)
			f->progress_ok++;
	}
	f->terminal_rc = wsm_broadcast_complete(f->m, f->session, NULL);
	return NULL;
}

static void test_full_inbox_keeps_terminals(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_INBOX_CAPACITY, INBOX });
	struct harness_hold *hold;
	struct flooder f[FLOODERS];
	pthread_t th[FLOODERS];
	wsc_t *c[FLOODERS];
	int i, progress = 0, refused = 0;
	json_t *j;

	(void)state;
	assert_non_null(h);
	for (i = 0; i < FLOODERS; i++) {
		memset(&f[i], 0, sizeof(f[i]));
		f[i].m = harness_mgr(h);
		snprintf(f[i].session, sizeof(f[i].session), "full%d", i);
		c[i] = join_and_wait(h, f[i].session, NULL);
		assert_non_null(c[i]);
	}
	hold = harness_hold(h); /* nothing drains the inbox meanwhile */
	assert_non_null(hold);
	for (i = 0; i < FLOODERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, flood, &f[i]), 0);
	for (i = 0; i < FLOODERS; i++)
		pthread_join(th[i], NULL);
	harness_release(hold);
	/* Asserted here, on the test's thread, from what the threads saw. */
	for (i = 0; i < FLOODERS; i++) {
		progress += f[i].progress_ok;
		refused += f[i].refused;
		assert_int_equal(f[i].terminal_rc, 0);
	}
	assert_int_equal(progress, INBOX); /* the progress share was full */
	assert_int_equal(refused, FLOODERS * 10 * INBOX - INBOX);
	for (i = 0; i < FLOODERS; i++) {
		j = recv_type(c[i], "complete", 5000);
		assert_non_null(j);
		json_decref(j);
		wsc_free(c[i]);
	}
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_broadcasts),
		cmocka_unit_test(test_full_inbox_keeps_terminals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
