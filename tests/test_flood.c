/*
 * Floods and isolation under load, over real sockets: many more upgrades
 * than the limits allow, from several addresses at once, are refused with
 * the documented statuses (and 503 carries Retry-After) while a legitimate
 * session keeps receiving; and across four thousand sessions with random
 * traffic no client ever sees another session's message.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/must.h"

#define FLOODERS 8
#define ATTEMPTS 40

struct flooder {
	harness_t *h;
	int index;
	int ok, too_many, unavailable, other;
	wsc_t *held[ATTEMPTS];
};

static void *flood(void *arg)
{
	struct flooder *f = arg;
	char from[32], session[64];
	int i, st;

	snprintf(from, sizeof(from), "127.0.0.%d", 2 + f->index);
	for (i = 0; i < ATTEMPTS; i++) {
		snprintf(session, sizeof(session), PREFIX "flood-%d", i % 4);
		f->held[i] = wsc_connect_from(from, harness_port(f->h), session,
					      NULL, 5000, &st);
		if (st == 101)
			f->ok++;
		else if (st == 429)
			f->too_many++;
		else if (st == 503)
			f->unavailable++;
		else
			f->other++;
	}
	return NULL;
}

/* The raw response head of one upgrade attempt (for Retry-After). */
static int raw_upgrade_head(int port, char *head, size_t size)
{
	static const char req[] =
		"GET " PREFIX "raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct pollfd pfd;
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (got + 1 < size && poll(&pfd, 1, 5000) == 1 &&
	       (n = read(fd, head + got, size - 1 - got)) > 0) {
		got += (size_t)n;
		head[got] = '\0';
		if (strstr(head, "\r\n\r\n"))
			break;
	}
	head[got] = '\0';
	close(fd);
	return (int)got;
}

struct ticker {
	harness_t *h;
	atomic_bool stop;
	int sent;
};

static void *tick(void *arg)
{
	struct ticker *t = arg;
	struct timespec step = { 0, 5 * 1000000 };

	while (!atomic_load(&t->stop) && t->sent < 2000) {
		if (wsm_broadcast_error(harness_mgr(t->h), "legit", "tick") == 0)
			t->sent++;
		nanosleep(&step, NULL);
	}
	wsm_broadcast_complete(harness_mgr(t->h), "legit", NULL);
	return NULL;
}

static void test_upgrade_flood(void **state)
{
	struct harness_opts opts = { .mode = HARNESS_READY };
	harness_t *h = HARNESS_START(&opts, { WSM_OPT_MAX_CONNECTIONS_PER_IP, 6 },
				     { WSM_OPT_MAX_UPGRADE_RATE, 100 },
				     { WSM_OPT_MAX_CONNECTIONS, 40 },
				     { WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 20 });
	struct flooder f[FLOODERS];
	struct ticker t = { h, false, 0 };
	pthread_t ft[FLOODERS], tt;
	int i, k, got = 0, ok = 0, refused = 0, other = 0;
	char head[1024];
	wsc_t *legit;
	json_t *j;
	wsm_metrics_t s;

	(void)state;
	assert_non_null(h);
	legit = must_join(h, "legit");
	pthread_create(&tt, NULL, tick, &t);
	for (i = 0; i < FLOODERS; i++) {
		f[i] = (struct flooder){ .h = h, .index = i };
		pthread_create(&ft[i], NULL, flood, &f[i]);
	}
	/* The legitimate client reads throughout the flood. */
	while ((j = recv_json(legit, 5000))) {
		const char *type = json_string_value(json_object_get(j, "type"));

		assert_string_equal(json_string_value(json_object_get(j, "sessionId")),
				    "legit");
		got++;
		if (!strcmp(type, "complete")) {
			json_decref(j);
			break;
		}
		json_decref(j);
		if (got == 50)
			for (i = 0; i < FLOODERS; i++)
				pthread_join(ft[i], NULL);
		if (got == 60)
			atomic_store(&t.stop, true);
	}
	pthread_join(tt, NULL);
	assert_true(got >= 60);
	assert_int_equal(wsc_close_code(legit), 0);
	for (i = 0; i < FLOODERS; i++) {
		ok += f[i].ok;
		refused += f[i].too_many + f[i].unavailable;
		other += f[i].other;
		/* Per address: never more than the cap. */
		assert_true(f[i].ok <= 6);
	}
	assert_int_equal(other, 0);
	assert_int_equal(ok + refused, FLOODERS * ATTEMPTS);
	assert_true(refused > FLOODERS * ATTEMPTS / 2);
	s = harness_metrics(h);
	assert_true(s.connections <= 40);
	assert_int_equal(s.refused_per_ip + s.refused_rate + s.refused_global_limit,
			 (uint64_t)refused);
	/* A refusal with 503 carries Retry-After (the global cap is reached). */
	for (k = 0; k < 50; k++) {
		assert_true(raw_upgrade_head(harness_port(h), head, sizeof(head)) > 0);
		if (!strncmp(head, "HTTP/1.1 503", 12))
			break;
	}
	assert_true(k < 50);
	assert_non_null(strstr(head, "\r\nRetry-After: 1\r\n"));
	for (i = 0; i < FLOODERS; i++)
		for (k = 0; k < ATTEMPTS; k++)
			wsc_free(f[i].held[k]);
	wsc_free(legit);
	harness_stop(h);
}

#define SESSIONS 4000
#define MESSAGES_PER_PRODUCER 40000
/* Both ends of every connection live in this process. */
#define FILES_NEEDED (2 * SESSIONS + 256)

static bool files_enough;

struct producer {
	harness_t *h;
	unsigned seed;
	int sent[SESSIONS];
};

static void *random_traffic(void *arg)
{
	struct producer *p = arg;
	char session[16];
	int i, s;

	for (i = 0; i < MESSAGES_PER_PRODUCER; i++) {
		s = (int)(rand_r(&p->seed) % SESSIONS);
		snprintf(session, sizeof(session), "iso-%d", s);
		if (wsm_broadcast_error(harness_mgr(p->h), session, session) == 0)
			p->sent[s]++;
	}
	return NULL;
}

/* Tens of thousands of messages over thousands of sessions: each lands only
 * at home. */
static void test_isolation_under_load(void **state)
{
	struct harness_opts opts = { .mode = HARNESS_READY };
	harness_t *h = HARNESS_START(&opts, { WSM_OPT_MAX_QUEUED_MESSAGES, 4096 },
				     { WSM_OPT_MAX_QUEUED_BYTES, 67108864 });
	static struct producer p[2];
	static wsc_t *c[SESSIONS];
	static int got[SESSIONS];
	pthread_t pt[2];
	char session[16];
	int i, done = 0, total = 0, expected = 0;
	int64_t end;

	(void)state;
	assert_non_null(h);
	if (!files_enough) {
		harness_stop(h);
		harness_note_skip(__func__, "the open-file limit is too low");
		skip();
	}
	for (i = 0; i < SESSIONS; i++) {
		snprintf(session, sizeof(session), "iso-%d", i);
		c[i] = join_session(h, session, NULL);
		assert_non_null(c[i]);
		got[i] = 0;
	}
	assert_int_equal(harness_wait_events(h, WSM_EVENT_OPEN, -1, NULL, SESSIONS,
					     10000), 0);
	for (i = 0; i < 2; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].h = h;
		p[i].seed = 1234u + (unsigned)i;
		pthread_create(&pt[i], NULL, random_traffic, &p[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(pt[i], NULL);
	for (i = 0; i < SESSIONS; i++)
		expected += p[0].sent[i] + p[1].sent[i];
	end = now_ms() + 60000;
	while (total < expected && now_ms() < end) {
		for (i = 0, done = 0; i < SESSIONS; i++) {
			char *text = NULL;
			json_t *j;

			if (got[i] == p[0].sent[i] + p[1].sent[i]) {
				done++;
				continue;
			}
			if (wsc_recv(c[i], &text, NULL, 0) != 1)
				continue;
			j = json_loads(text, 0, NULL);
			free(text);
			snprintf(session, sizeof(session), "iso-%d", i);
			assert_string_equal(json_string_value(json_object_get(j,
							"sessionId")), session);
			assert_string_equal(json_string_value(json_object_get(j,
							"error")), session);
			json_decref(j);
			got[i]++;
			total++;
		}
	}
	assert_int_equal(total, expected);
	for (i = 0; i < SESSIONS; i++)
		wsc_free(c[i]);
	harness_stop(h);
}

/* Raises the soft open-file limit to what the isolation test needs. */
static bool raise_file_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		perror("test_flood: getrlimit (isolation test skipped)");
		return false;
	}
	if (rl.rlim_cur >= FILES_NEEDED)
		return true;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < FILES_NEEDED) {
		fprintf(stderr, "test_flood: the isolation test needs %d open "
				"files, the hard limit is %lu: skipped\n",
			FILES_NEEDED, (unsigned long)rl.rlim_max);
		return false;
	}
	rl.rlim_cur = FILES_NEEDED;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		return true;
	perror("test_flood: raising the open-file limit (isolation test skipped)");
	return false;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upgrade_flood),
		cmocka_unit_test(test_isolation_under_load),
	};

	files_enough = raise_file_limit();
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
