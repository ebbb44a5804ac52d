/*
 * A peer that vanishes without FIN or RST: a client in its own network
 * namespace, joined to the server's by a veth pair, completes the upgrade;
 * then the link is deleted. The server must notice through its heartbeat and
 * free the connection within the stale threshold. Needs root and network
 * namespaces; skips, saying why, where they are not allowed.
 */
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/must.h"

#define SERVER_IP "10.213.77.1"
#define CLIENT_IP "10.213.77.2"

static char ns[32], veth[16];

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void net_down(void)
{
	sh("ip link del %s >/dev/null 2>&1", veth);
	sh("ip netns del %s >/dev/null 2>&1", ns);
}

static int net_up(void)
{
	snprintf(ns, sizeof(ns), "wsmtest%d", (int)getpid());
	snprintf(veth, sizeof(veth), "wsmh%d", (int)getpid() % 100000);
	net_down();
	return sh("ip netns add %s 2>/dev/null", ns) ||
	       sh("ip link add %s type veth peer name wsmn netns %s", veth, ns) ||
	       sh("ip addr add " SERVER_IP "/30 dev %s && ip link set %s up",
		  veth, veth) ||
	       sh("ip netns exec %s sh -c 'ip addr add " CLIENT_IP
		  "/30 dev wsmn && ip link set wsmn up && ip link set lo up'",
		  ns);
}

/* The client: enter the namespace, upgrade, report, then just sit there. */
static void client_in_namespace(int port, int report_fd)
{
	char path[64];
	int fd, status = 0;
	wsc_t *c;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	fd = open(path, O_RDONLY);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		_exit(2);
	c = wsc_connect_to(CLIENT_IP, SERVER_IP, port, PREFIX "halfopen", NULL,
			   5000, &status);
	if (write(report_fd, &status, sizeof(status)) != sizeof(status))
		_exit(3);
	for (;;)
		pause(); /* killed by the parent */
	(void)c;
}

static void test_vanished_peer_is_detected(void **state)
{
	struct harness_opts opts = { .mode = HARNESS_READY, .iface = SERVER_IP };
	int pipefd[2], status = 0;
	int64_t t0;
	harness_t *h;
	pid_t pid;

	(void)state;
	if (getuid() != 0 || net_up()) {
		net_down();
		harness_note_skip(__func__, getuid() != 0
						    ? "needs root for a network namespace"
						    : "the network namespace could not be set up");
		skip();
	}
	h = HARNESS_START(&opts, { WSM_OPT_PING_INTERVAL_MS, 100 },
			  { WSM_OPT_STALE_TIMEOUT_MS, 600 });
	assert_non_null(h);
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		client_in_namespace(harness_port(h), pipefd[1]);
	assert_int_equal(read(pipefd[0], &status, sizeof(status)),
			 (ssize_t)sizeof(status));
	assert_int_equal(status, 101);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_OPEN, -1, "halfopen",
					     1, 5000), 0);
	/* Gone without a FIN or RST: the link and the namespace disappear. */
	net_down();
	t0 = now_ms();
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLOSE, -1, "halfopen",
					     1, 10000), 0);
	assert_int_equal(harness_events(h, WSM_EVENT_CLOSE, WSM_CAUSE_STALE,
					"halfopen"), 1);
	/* Within the stale threshold, plus the close grace lws may take. */
	assert_true(now_ms() - t0 <= 600 + 5000 + 1000);
	assert_int_equal(harness_metrics(h).connections, 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(pipefd[0]);
	close(pipefd[1]);
	harness_stop(h);
}

static int teardown(void **state)
{
	(void)state;
	net_down();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_vanished_peer_is_detected, teardown),
	};

	if (getuid() != 0)
		fprintf(stderr, "test_halfopen: not root: network namespaces "
				"unavailable, the test is skipped\n");
	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
