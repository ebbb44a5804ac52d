/* The server of the network fuzz targets; see fuzz_server.h. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz_server.h"

static struct fz_server *running;

static wsm_metrics_t metrics(harness_t *h)
{
	return harness_metrics(h);
}

static uint64_t closed_total(const wsm_metrics_t *s)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < WSM_CAUSE_SLOTS; i++)
		n += s->closed[i];
	return n;
}

struct settle_arg {
	harness_t *h;
	uint64_t resident, baseline;
};

static bool settled(void *arg)
{
	struct settle_arg *a = arg;
	wsm_metrics_t s = metrics(a->h);

	return s.connections == a->resident && s.closing == 0 &&
	       s.opened == closed_total(&s) + a->resident &&
	       s.queued_bytes == 0 && s.held_bytes == a->baseline;
}

void fz_server_settle(struct fz_server *s)
{
	struct settle_arg a = { s->h, s->resident, s->baseline };
	wsm_metrics_t m;

	if (!s->h || !harness_wait_until(settled, &a, FZ_WAIT_MS))
		return;
	m = metrics(s->h);
	FZ_CHECK(false,
		 "books do not balance after %d ms: connections %llu (want %llu), "
		 "closing %llu, opened %llu, closed %llu, queued bytes %llu, "
		 "held %llu (baseline %llu)",
		 FZ_WAIT_MS, (unsigned long long)m.connections,
		 (unsigned long long)s->resident, (unsigned long long)m.closing,
		 (unsigned long long)m.opened,
		 (unsigned long long)closed_total(&m),
		 (unsigned long long)m.queued_bytes,
		 (unsigned long long)m.held_bytes, (unsigned long long)s->baseline);
}

static void stop(struct fz_server *s)
{
	if (!s->h)
		return;
	fz_server_settle(s);
	harness_stop(s->h);
	s->h = NULL;
}

static void stop_at_exit(void)
{
	if (running)
		stop(running);
}

harness_t *fz_server_next(struct fz_server *s)
{
	static const struct harness_opts opts = { .mode = HARNESS_READY };

	if (s->h && s->inputs % FZ_SETTLE_EVERY == 0)
		fz_server_settle(s);
	if (s->h && s->inputs % FZ_RESTART_EVERY == 0)
		stop(s);
	s->inputs++;
	if (s->h)
		return s->h;
	s->h = harness_start_with(s->opts, s->nopts, &opts);
	FZ_CHECK(s->h, "the server did not start");
	if (!running) {
		running = s;
		atexit(stop_at_exit);
	}
	if (s->on_start)
		s->on_start(s);
	s->baseline = metrics(s->h).held_bytes;
	return s->h;
}

size_t fz_server_closes(struct fz_server *s, int cause)
{
	return harness_events(s->h, WSM_EVENT_CLOSE, cause, NULL);
}

void fz_server_wait_close(struct fz_server *s, size_t count)
{
	wsm_metrics_t m;

	if (!harness_wait_events(s->h, WSM_EVENT_CLOSE, -1, NULL, count, FZ_WAIT_MS))
		return;
	m = metrics(s->h);
	FZ_CHECK(false,
		 "no close event within %d ms: connections %llu, closing %llu",
		 FZ_WAIT_MS, (unsigned long long)m.connections,
		 (unsigned long long)m.closing);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fz_send_raw(wsc_t *c, const void *data, size_t len, int timeout_ms)
{
	return wsc_send_raw(c, data, len, timeout_ms);
}

void fz_shutdown_and_drain(wsc_t *c, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;
	int fd = wsc_fd(c);
	char buf[4096];

	shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int64_t left = end - mono_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return;
	}
}
