/*
 * The Sentinel deployment tests start (support/redis_sentinel.c), on its
 * own: a crash failed over with no write lost, the crashed primary back as
 * a replica, clean switches, a failover with one sentinel gone; and the
 * same with passwords on the data nodes and on the sentinels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "support/redis_sentinel.h"

/* cmocka's skip() exits 0: main() turns a skip into meson's 77. */
static int skipped;

static int skip_unless_installed(const char *test)
{
	if (redis_sentinel_path())
		return 0;
	fprintf(stderr, "%s: SKIPPED: redis-sentinel or redis-server is not "
			"installed\n", test);
	skipped = 1;
	return 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The environment lives in the fixture: a failed assert still stops it. */
static int setup(void **state)
{
	*state = calloc(1, sizeof(struct sentinel_env));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	sentinel_env_stop(*state);
	sentinel_env_stop(*state); /* twice is safe */
	free(*state);
	return 0;
}

static void cmd_is(const struct sentinel_env *e, int node, const char *words,
		   const char *want)
{
	char out[256];

	assert_int_equal(sentinel_env_cmd(e, node, words, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

/* A write the replica has (WAIT), then the primary crashes. */
static void crash_primary(struct sentinel_env *e, int from, const char *key)
{
	char set[160], get[80], value[64];
	int64_t t;

	snprintf(value, sizeof(value), "v-%s", key);
	/* WAIT on the writing connection: the replica has it. */
	snprintf(set, sizeof(set), "SET %s %s; WAIT 1 1000", key, value);
	snprintf(get, sizeof(get), "GET %s", key);
	cmd_is(e, from, set, ":1");
	t = now_ms();
	sentinel_env_kill_data(e, from, SIGKILL);
	assert_int_equal(sentinel_env_wait_primary(e, 1 - from, 15000), 0);
	fprintf(stderr, "crash of node %d: node %d primary after %lld ms\n",
		from, 1 - from, (long long)(now_ms() - t));
	cmd_is(e, 1 - from, get, value);
}

static void rejoin(struct sentinel_env *e, int which)
{
	int64_t t = now_ms();

	assert_int_equal(sentinel_env_restart_data(e, which), 0);
	assert_int_equal(sentinel_env_wait_replica(e, which, 1 - which, 20000),
			 0);
	fprintf(stderr, "node %d back, a replica after %lld ms\n", which,
		(long long)(now_ms() - t));
}

static void switch_over(struct sentinel_env *e, int to)
{
	int64_t t = now_ms();

	assert_int_equal(sentinel_env_failover(e), 0);
	assert_int_equal(sentinel_env_primary(e), to);
	assert_int_equal(sentinel_env_wait_replica(e, 1 - to, to, 0), 0);
	fprintf(stderr, "SENTINEL FAILOVER to node %d: clean after %lld ms\n",
		to, (long long)(now_ms() - t));
}

static void failovers(void **state)
{
	struct sentinel_env *e = *state;
	char want[256];
	int64_t t;

	if (skip_unless_installed(__func__))
		skip();
	t = now_ms();
	assert_int_equal(sentinel_env_start(e, NULL), 0);
	fprintf(stderr, "started in %lld ms\n", (long long)(now_ms() - t));
	snprintf(want, sizeof(want),
		 "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/"
		 "wsmprimary",
		 e->sentinel_port[0], e->sentinel_port[1], e->sentinel_port[2]);
	assert_string_equal(e->url, want);
	assert_int_equal(sentinel_env_primary(e), 0);
	assert_int_equal(sentinel_env_wait_replica(e, 1, 0, 0), 0);

	crash_primary(e, 0, "a");
	rejoin(e, 0);
	switch_over(e, 0);
	cmd_is(e, 0, "GET a", "v-a");

	/* Two sentinels left: still a quorum (2) and a majority of 3. */
	sentinel_env_kill_sentinel(e, 2);
	switch_over(e, 1);
	crash_primary(e, 1, "b");
	cmd_is(e, 0, "GET a", "v-a");
}

static void passwords(void **state)
{
	const struct sentinel_env_opts o = { "wsmauth", "data-pw", "sent-pw" };
	struct sentinel_env *e = *state;
	char out[128];

	if (skip_unless_installed(__func__))
		skip();
	assert_int_equal(sentinel_env_start(e, &o), 0);
	assert_non_null(strstr(e->url, "/wsmauth"));
	assert_int_equal(sentinel_env_primary(e), 0);

	/* Refused without the password, or with a wrong one. */
	assert_int_equal(sentinel_env_cmd_at(e->data_port[0], NULL, NULL,
					     "PING", out, sizeof(out)), 0);
	assert_memory_equal(out, "-NOAUTH", 7);
	assert_int_equal(sentinel_env_cmd_at(e->sentinel_port[0], NULL, NULL,
					     "PING", out, sizeof(out)), 0);
	assert_memory_equal(out, "-NOAUTH", 7);
	assert_int_equal(sentinel_env_cmd_at(e->data_port[0], NULL, "nope",
					     "PING", out, sizeof(out)), -1);
	assert_int_equal(sentinel_env_cmd_at(e->sentinel_port[1], "default",
					     "sent-pw", "PING", out,
					     sizeof(out)), 0);
	assert_string_equal(out, "+PONG");

	/* The sentinels fail over with auth-pass; node 0 syncs with
	 * masterauth when it is back. */
	crash_primary(e, 0, "a");
	rejoin(e, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(failovers, setup, teardown),
		cmocka_unit_test_setup_teardown(passwords, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	return rc ? rc : skipped ? 77 : 0;
}
