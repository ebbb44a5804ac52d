/*
 * TLS at the edge: a peer that opens a TCP connection to a TLS listener and
 * never finishes the handshake (silent, or a ClientHello cut short) is timed
 * out by lws, and libwsm holds nothing for it: no event, no byte. Skips,
 * saying why, when the openssl command is not there to make a certificate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/must.h"

static char dir[64] = "/tmp/wsm-tls.XXXXXX", cert[128], key[128];

static int make_pair(void)
{
	char cmd[512];

	if (!mkdtemp(dir))
		return -1;
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
		 " -keyout %s -out %s >/dev/null 2>&1", key, cert);
	return system(cmd);
}

/* A connection that sends only 'bytes' (maybe none) and then waits. */
static int stalled_handshake(int port, const void *bytes, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (len)
		assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	return fd;
}

/* Reads whatever the server says (an alert at most) until it hangs up. */
static void wait_hangup(int fd, int64_t until_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[256];
	ssize_t n = 1;

	while (n > 0 && now_ms() < until_ms &&
	       poll(&pfd, 1, (int)(until_ms - now_ms())) == 1)
		n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

static void test_unfinished_handshakes_time_out(void **state)
{
	/* A TLS record header announcing a ClientHello that never comes. */
	static const unsigned char partial[] = { 0x16, 0x03, 0x01, 0x02, 0x00,
						 0x01, 0x00, 0x01, 0xfc, 0x03 };
	struct harness_opts opts = { .mode = HARNESS_READY };
	uint64_t held;
	harness_t *h;
	int silent, cut;

	(void)state;
	if (make_pair()) {
		harness_note_skip(__func__, "openssl cannot make a certificate");
		skip();
	}
	opts.tls_cert = cert;
	opts.tls_key = key;
	h = harness_start(NULL, &opts);
	assert_non_null(h);
	held = harness_metrics(h).held_bytes;
	silent = stalled_handshake(harness_port(h), NULL, 0);
	cut = stalled_handshake(harness_port(h), partial, sizeof(partial));
	/* lws gives up on them by itself (about 10 s with this lws). */
	wait_hangup(silent, now_ms() + 30000);
	wait_hangup(cut, now_ms() + 30000);
	assert_int_equal(harness_events(h, WSM_EVENT_OPEN, -1, NULL), 0);
	assert_int_equal(harness_metrics(h).held_bytes, held);
	assert_int_equal(harness_metrics(h).connections, 0);
	harness_stop(h);
}

static int cleanup(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_unfinished_handshakes_time_out,
					  cleanup),
	};

	return harness_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
