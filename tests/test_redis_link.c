/*
 * The link to Redis on its own (lib/cluster/redis_conn.c), against a real
 * redis-server each test starts: pipelined replies in order, on a unix
 * socket and on TCP with a database, on the poll and libuv loops and both
 * ways of plugging into lws; a Redis killed and restarted; a command that
 * outlives its timeout; a peer that answers garbage; and a connection freed
 * with commands pending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../lib/cluster/cluster.h"
#include "support/harness.h"
#include "support/redis_server.h"

/* What the connection's callbacks saw; written on the service thread. */
struct link {
	harness_t *h;
	struct wsm_redis_conn *rc;
	struct wsm_redis_addr addr;
	struct wsm_redis_timing timing;
	_Atomic int ups, downs, replies, failures, errors, out_of_order;
	_Atomic long long last_int;
	_Atomic int64_t failed_at_ms;
	char text[256]; /* the last string reply, read after a harness_call */
};

static int64_t now_ms(void)
{
	return wsm__now_us() / 1000;
}

static void on_up(struct wsm_redis_conn *rc, void *user)
{
	struct link *l = user;

	(void)rc;
	l->ups++;
}

static void on_down(struct wsm_redis_conn *rc, void *user)
{
	struct link *l = user;

	(void)rc;
	l->downs++;
}

static const struct wsm_redis_conn_ops link_ops = { on_up, on_down, NULL,
						     NULL };

static void on_reply(void *user, const redisReply *r)
{
	struct link *l = user;

	if (!r) {
		l->failures++;
		l->failed_at_ms = now_ms();
		return;
	}
	l->replies++;
	if (r->type == REDIS_REPLY_INTEGER) {
		if (r->integer != l->last_int + 1)
			l->out_of_order++;
		l->last_int = r->integer;
	} else if (r->type == REDIS_REPLY_ERROR) {
		l->errors++;
	} else if (r->type == REDIS_REPLY_STRING ||
		   r->type == REDIS_REPLY_STATUS) {
		snprintf(l->text, sizeof(l->text), "%.*s", (int)r->len, r->str);
	}
}

static void start_link(harness_t *h, void *arg)
{
	struct link *l = arg;

	l->rc = wsm__rconn_new(harness_mgr(h), &l->addr, &l->timing, NULL, false,
			       &link_ops, l);
	if (l->rc)
		wsm__rconn_start(l->rc);
}

static void free_link(harness_t *h, void *arg)
{
	struct link *l = arg;

	(void)h;
	wsm__rconn_free(l->rc);
	l->rc = NULL;
}

/* One command of space-separated words, on the service thread. */
struct command {
	struct link *l;
	const char *words;
	int times;
	int rc;
};

static void send_words(harness_t *h, void *arg)
{
	struct command *c = arg;
	char copy[256], *w, *save = NULL;
	const char *argv[16];
	size_t lens[16];
	int argc = 0, i;

	(void)h;
	snprintf(copy, sizeof(copy), "%s", c->words);
	for (w = strtok_r(copy, " ", &save); w && argc < 16;
	     w = strtok_r(NULL, " ", &save)) {
		argv[argc] = w;
		lens[argc++] = strlen(w);
	}
	for (i = 0; i < (c->times ? c->times : 1); i++)
		if ((c->rc = wsm__rconn_send(c->l->rc, argc, argv, lens, 1,
					     on_reply, c->l)))
			return;
}

static int send_cmd(struct link *l, const char *words, int times)
{
	struct command c = { l, words, times, -1 };

	assert_int_equal(harness_call(l->h, send_words, &c), 0);
	return c.rc;
}

static void read_text(harness_t *h, void *arg)
{
	(void)h;
	(void)arg; /* the call itself orders the reads after the writes */
}

#define WAIT_FOR(cond, ms)                                                  \
	do {                                                                \
		int64_t wait_end_ = now_ms() + (ms);                        \
		while (!(cond) && now_ms() < wait_end_)                     \
			poll(NULL, 0, 1);                                   \
		assert_true(cond);                                          \
	} while (0)

static bool have_redis(const char *test)
{
	if (redis_server_path())
		return true;
	harness_note_skip(test, "redis-server is not installed");
	return false;
}

static void link_init(struct link *l, harness_t *h, const char *url)
{
	size_t n = 0;

	memset(l, 0, sizeof(*l));
	l->h = h;
	assert_int_equal(wsm__redis_parse_list(url, &l->addr, 1, &n), 0);
	assert_int_equal(n, 1);
	l->timing.timeout_us = 2000 * 1000;
	l->timing.retry_min_us = 20 * 1000;
	l->timing.retry_max_us = 200 * 1000;
}

static void pipeline(const struct harness_opts *opts, bool tcp)
{
	struct redis_server r;
	struct link l;
	harness_t *h;
	char url[200];

	assert_int_equal(redis_start(&r, tcp), 0);
	h = harness_start(NULL, opts);
	assert_non_null(h);
	snprintf(url, sizeof(url), "%s%s", r.url, tcp ? "/3" : "?db=3");
	link_init(&l, h, url);
	assert_int_equal(harness_call(h, start_link, &l), 0);
	WAIT_FOR(l.ups == 1, 5000);

	/* 2,000 commands in one pipeline: every reply, in order. */
	assert_int_equal(send_cmd(&l, "INCR counter", 2000), 0);
	WAIT_FOR(l.replies == 2000, 10000);
	assert_int_equal(l.out_of_order, 0);
	assert_int_equal(l.last_int, 2000);
	assert_int_equal(l.failures, 0);

	/* The database of the address was selected. */
	assert_int_equal(send_cmd(&l, "CLIENT INFO", 1), 0);
	WAIT_FOR(l.replies == 2001, 5000);
	assert_int_equal(harness_call(h, read_text, NULL), 0);
	assert_non_null(strstr(l.text, " db=3 "));

	assert_int_equal(harness_call(h, free_link, &l), 0);
	harness_stop(h);
	redis_stop(&r);
}

static void test_pipeline_unix_poll_ready(void **state)
{
	struct harness_opts o = { .mode = HARNESS_READY };

	(void)state;
	if (have_redis(__func__))
		pipeline(&o, false);
}

static void test_pipeline_tcp_libuv_delegate(void **state)
{
	struct harness_opts o = { .mode = HARNESS_DELEGATE, .libuv = true };

	(void)state;
	if (have_redis(__func__))
		pipeline(&o, true);
}

static void test_reconnects_after_kill(void **state)
{
	struct redis_server r;
	struct link l;
	harness_t *h;

	(void)state;
	if (!have_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = harness_start(NULL, NULL);
	assert_non_null(h);
	link_init(&l, h, r.url);
	assert_int_equal(harness_call(h, start_link, &l), 0);
	WAIT_FOR(l.ups == 1, 5000);

	/* A command Redis never answers is failed when the link goes. */
	assert_int_equal(send_cmd(&l, "BLPOP nothing 0", 1), 0);
	redis_kill(&r, SIGKILL);
	WAIT_FOR(l.downs == 1, 5000);
	assert_int_equal(l.failures, 1);
	/* Down is down: nothing is accepted until the link is back. */
	assert_int_equal(send_cmd(&l, "PING", 1), WSM_EAGAIN);

	assert_int_equal(redis_restart(&r), 0);
	WAIT_FOR(l.ups == 2, 5000);
	assert_int_equal(send_cmd(&l, "INCR after", 1), 0);
	WAIT_FOR(l.replies == 1, 5000);
	assert_int_equal(l.last_int, 1);

	assert_int_equal(harness_call(h, free_link, &l), 0);
	harness_stop(h);
	redis_stop(&r);
}

static void test_command_timeout(void **state)
{
	struct redis_server r;
	struct link l;
	harness_t *h;
	int64_t sent;

	(void)state;
	if (!have_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = harness_start(NULL, NULL);
	assert_non_null(h);
	link_init(&l, h, r.url);
	l.timing.timeout_us = 300 * 1000;
	assert_int_equal(harness_call(h, start_link, &l), 0);
	WAIT_FOR(l.ups == 1, 5000);

	/* Redis is stuck for 1.5 s: the command fails after its 300 ms. */
	sent = now_ms();
	assert_int_equal(send_cmd(&l, "DEBUG SLEEP 1.5", 1), 0);
	WAIT_FOR(l.failures == 1, 5000);
	print_message("failed after %lld ms\n",
		      (long long)(l.failed_at_ms - sent));
	assert_true(l.failed_at_ms - sent >= 300);
	assert_true(l.failed_at_ms - sent < 1500); /* before Redis answered */
	assert_int_equal(l.downs, 1);
	/* Back once Redis is: connects time out meanwhile, then one holds. */
	WAIT_FOR(l.ups == 2, 10000);
	assert_int_equal(send_cmd(&l, "INCR after", 1), 0);
	WAIT_FOR(l.replies == 1, 5000);

	assert_int_equal(harness_call(h, free_link, &l), 0);
	harness_stop(h);
	redis_stop(&r);
}

/* ---- a peer that is not Redis -------------------------------------------- */

static const char *const bad_replies[] = {
	"*99999999\r\n",              /* an array too large to allocate */
	"!what\r\n",                  /* no such type */
	"$-7\r\n",                    /* a negative length */
	"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
	"-ERR not today\r\n",         /* the first command refused */
	"+PONG\r\n+OK\r\n",           /* up, then a reply to no command */
};
#define NBAD (sizeof(bad_replies) / sizeof(bad_replies[0]))

struct fake {
	int listen_fd;
	char path[108];
	_Atomic int served;
	pthread_t thread;
};

static void *fake_serve(void *arg)
{
	struct fake *f = arg;
	int k;

	for (k = 0; k < (int)NBAD; k++) {
		struct pollfd p = { f->listen_fd, POLLIN, 0 };
		char buf[512];
		int fd;

		if (poll(&p, 1, 10000) != 1)
			break;
		if ((fd = accept(f->listen_fd, NULL, NULL)) < 0)
			break;
		/* Wait for the first PING, answer, then see the link close. */
		p.fd = fd;
		if (poll(&p, 1, 5000) == 1 && read(fd, buf, sizeof(buf)) > 0 &&
		    write(fd, bad_replies[k], strlen(bad_replies[k])) > 0) {
			p.events = POLLIN;
			while (poll(&p, 1, 5000) == 1 &&
			       read(fd, buf, sizeof(buf)) > 0)
				;
		}
		close(fd);
		f->served++;
	}
	return NULL;
}

static void test_garbage_from_peer_resets_link(void **state)
{
	struct fake f;
	struct sockaddr_un a;
	struct link l;
	harness_t *h;
	char url[160];
	wsm_metrics_t before, after;

	(void)state;
	memset(&f, 0, sizeof(f));
	snprintf(f.path, sizeof(f.path), "/tmp/wsm-fake-redis-%d.sock",
		 (int)getpid());
	unlink(f.path);
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", f.path);
	f.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f.listen_fd >= 0);
	assert_int_equal(bind(f.listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f.listen_fd, 8), 0);
	assert_int_equal(pthread_create(&f.thread, NULL, fake_serve, &f), 0);

	h = harness_start(NULL, NULL);
	assert_non_null(h);
	before = harness_metrics(h);
	snprintf(url, sizeof(url), "unix:%s", f.path);
	link_init(&l, h, url);
	assert_int_equal(harness_call(h, start_link, &l), 0);
	/*
	 * Each bad answer ends that connection and the link tries again:
	 * before it is up when it answers the link's first PING, after it
	 * once for the last.
	 */
	WAIT_FOR(f.served == (int)NBAD, 20000);
	pthread_join(f.thread, NULL);
	WAIT_FOR(l.downs == 1, 5000);
	assert_int_equal(l.ups, 1);

	assert_int_equal(harness_call(h, free_link, &l), 0);
	after = harness_metrics(h);
	assert_int_equal(after.held_bytes, before.held_bytes);
	harness_stop(h);
	close(f.listen_fd);
	unlink(f.path);
}

/* ---- freed with work pending ---------------------------------------------- */

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_free_with_pending_commands(void **state)
{
	struct redis_server r;
	struct link l;
	harness_t *h;
	int fds;
	uint64_t held;
	char big[4096];
	char words[sizeof(big) + 16];

	(void)state;
	if (!have_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = harness_start(NULL, NULL);
	assert_non_null(h);
	/*
	 * Counted with the context up: lws 4.3.4 to 4.3.6 leave the context's
	 * own wake-up eventfd open when it is destroyed (fixed in 4.3.7).
	 */
	fds = open_fds();
	held = harness_metrics(h).held_bytes;
	link_init(&l, h, r.url);
	assert_int_equal(harness_call(h, start_link, &l), 0);
	WAIT_FOR(l.ups == 1, 5000);

	/* Blocked in Redis, and more behind it (4 MiB of output). */
	assert_int_equal(send_cmd(&l, "BLPOP nothing 0", 1), 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(words, sizeof(words), "SET k %s", big);
	assert_int_equal(send_cmd(&l, words, 1000), 0);
	assert_int_equal(harness_call(h, free_link, &l), 0);
	/* Every pending reply was failed, once. */
	assert_int_equal(l.failures + l.replies, 1001);
	assert_int_equal(harness_metrics(h).held_bytes, held);
	/* lws closes the socket on its next turn (LWS_TO_KILL_ASYNC). */
	WAIT_FOR(open_fds() == fds, 5000);
	harness_stop(h);
	redis_stop(&r);
}

static void test_context_destroyed_first(void **state)
{
	struct harness_opts o = { .mode = HARNESS_READY, .context_first = true };
	struct redis_server r;
	struct link l;
	harness_t *h;

	(void)state;
	if (!have_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	h = harness_start(NULL, &o);
	assert_non_null(h);
	link_init(&l, h, r.url);
	assert_int_equal(harness_call(h, start_link, &l), 0);
	WAIT_FOR(l.ups == 1, 5000);
	assert_int_equal(send_cmd(&l, "BLPOP nothing 0", 1), 0);
	/*
	 * The context goes with the link up and a command pending, then the
	 * manager, which frees the connection it still holds.
	 */
	harness_stop(h);
	assert_int_equal(l.failures, 1);
	assert_int_equal(l.downs, 1);
	redis_stop(&r);
}

static void test_addresses(void **state)
{
	struct wsm_redis_addr a[4];
	size_t n;

	(void)state;
	assert_int_equal(wsm__redis_parse_list("redis://127.0.0.1", a, 4, &n), 0);
	assert_string_equal(a[0].host, "127.0.0.1");
	assert_int_equal(a[0].port, 6379);
	assert_int_equal(a[0].db, 0);
	assert_int_equal(wsm__redis_parse_list(
				 "redis://[::1]:7000/2,unix:/run/r.sock?db=5,"
				 "redis://10.0.0.2:6380",
				 a, 4, &n),
			 0);
	assert_int_equal(n, 3);
	assert_string_equal(a[0].host, "::1");
	assert_int_equal(a[0].port, 7000);
	assert_int_equal(a[0].db, 2);
	assert_string_equal(a[1].path, "/run/r.sock");
	assert_int_equal(a[1].db, 5);
	assert_int_equal(a[2].port, 6380);
	assert_true(a[2].literal);
	assert_false(a[2].tls);
	/* Names are resolved when connecting; rediss:// is TLS. */
	assert_int_equal(wsm__redis_parse_list(
				 "rediss://redis.internal:6380/1,redis://r_1",
				 a, 4, &n),
			 0);
	assert_int_equal(n, 2);
	assert_string_equal(a[0].host, "redis.internal");
	assert_false(a[0].literal);
	assert_true(a[0].tls);
	assert_int_equal(a[0].port, 6380);
	assert_int_equal(a[0].db, 1);
	assert_string_equal(a[1].host, "r_1");
	assert_false(a[1].tls);
	/* Sentinels: a list of their own inside the list, then the name. */
	assert_int_equal(wsm__redis_parse_list(
				 "redis-sentinel://10.0.0.1,s2:5000/main/3,"
				 "rediss-sentinel://[::1]/other,unix:/r.sock",
				 a, 4, &n),
			 0);
	assert_int_equal(n, 3);
	assert_string_equal(a[0].sentinels, "10.0.0.1,s2:5000");
	assert_string_equal(a[0].master, "main");
	assert_int_equal(a[0].db, 3);
	assert_false(a[0].tls);
	assert_string_equal(a[1].sentinels, "[::1]");
	assert_string_equal(a[1].master, "other");
	assert_true(a[1].tls);
	assert_string_equal(a[2].path, "/r.sock");

	static const char *const bad[] = {
		"", "redis://", "redis://local host", "redis://.a",
		"redis://a..b", "redis://-a", "redis://[redis.internal]",
		"rediss://", "redis://127.0.0.1:0",
		"redis://127.0.0.1:65536", "redis://127.0.0.1/x",
		"redis://[::1", "unix:", "unix:relative", "unix:/a?db=",
		"unix:/a?x=1", "http://127.0.0.1", "redis://127.0.0.1,",
		"redis://127.0.0.1:6379:1", "redis://1.2.3.4/99999",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(wsm__redis_parse_list(bad[i], a, 4, &n),
				 WSM_EINVAL);
	/* More instances than room. */
	assert_int_equal(wsm__redis_parse_list("redis://1.1.1.1,redis://1.1.1.2",
					       a, 1, &n),
			 WSM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_pipeline_unix_poll_ready),
		cmocka_unit_test(test_pipeline_tcp_libuv_delegate),
		cmocka_unit_test(test_reconnects_after_kill),
		cmocka_unit_test(test_command_timeout),
		cmocka_unit_test(test_garbage_from_peer_resets_link),
		cmocka_unit_test(test_free_with_pending_commands),
		cmocka_unit_test(test_context_destroyed_first),
	};

	signal(SIGPIPE, SIG_IGN);
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
