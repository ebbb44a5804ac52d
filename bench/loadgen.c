/*
 * loadgen: a WebSocket load generator for the libwsm benchmarks.
 *
 * A minimal RFC 6455 client (handshake, masked frames, pong replies, close
 * handling, partial frames) on epoll, non-blocking, spread over several
 * processes (fork) and loopback source addresses 127.0.0.A..127.0.0.A+N-1
 * (A: --src-base, 1 by default).
 *
 *	loadgen --port P [--mode receive|idle|churn|dead|slow|flood]
 *		[--conns N] [--per-session K] [--session-base B] [--procs P]
 *		[--src N] [--src-base A]
 *		[--duration S] [--warmup S] [--connect-timeout S]
 *		[--cycles N] [--churn-wait-msg] [--signal-pid PID]
 *		[--path-prefix /api/images_mvp/progress/] [--rcvbuf BYTES]
 *
 * flood: every slot upgrades, keeps what is accepted and retries at once
 * what is refused (an HTTP status instead of 101), for --duration; the
 * refusals are counted by status. churn also retries refused upgrades.
 *
 * Connection j joins session "s<B + j / K>". The producer embeds its
 * CLOCK_MONOTONIC time as "t=<ns>" in each message; latency is now minus
 * that. Every phase is bounded in time; the run stops by itself.
 *
 * With --signal-pid the parent sends SIGUSR1 to that process (a bench host,
 * which then prints a report) when the measurement window opens and when
 * it closes (churn: after warm-up and after the last cycle has settled).
 *
 * Output: progress on stderr; the final stdout line is one JSON object.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum mode { M_RECEIVE, M_IDLE, M_CHURN, M_DEAD, M_SLOW, M_FLOOD };
static const char *mode_names[] = { "receive", "idle", "churn", "dead",
				    "slow", "flood" };

struct opts {
	enum mode mode;
	int port, conns, per_session, session_base, procs, src, src_base;
	double duration, warmup, connect_timeout;
	long cycles;
	bool churn_wait_msg;
	pid_t signal_pid;
	const char *prefix;
	int rcvbuf, inflight;
};

/* ---- latency histogram (microseconds, log-linear) ------------------- */
#define H_LIN 10000                  /* 1 us buckets up to 10 ms */
#define H_MID 9900                   /* 100 us buckets up to 1 s */
#define H_TOP 6000                   /* 10 ms buckets up to 61 s */
#define H_N (H_LIN + H_MID + H_TOP + 1)

static int h_index(uint64_t us)
{
	if (us < H_LIN)
		return (int)us;
	if (us < 1000000)
		return H_LIN + (int)((us - H_LIN) / 100);
	if (us < 61000000)
		return H_LIN + H_MID + (int)((us - 1000000) / 10000);
	return H_N - 1;
}

static uint64_t h_value(int i)
{
	if (i < H_LIN)
		return (uint64_t)i;
	if (i < H_LIN + H_MID)
		return H_LIN + (uint64_t)(i - H_LIN) * 100;
	if (i < H_N - 1)
		return 1000000 + (uint64_t)(i - H_LIN - H_MID) * 10000;
	return 61000000;
}

#define MAX_CODES 16
struct result {
	long opened, failed, timeouts, proto_errors;
	long msgs, bytes;       /* in the measurement window */
	long msgs_total, seq_gaps, pings, closes_recv;
	long cycles;
	long refused_429, refused_503, refused_other;
	long lat_max_us;
	double dead_max_open_to_close_s;
	int64_t last_close_ns;
	int ncodes;
	int code[MAX_CODES];
	long code_count[MAX_CODES];
	uint32_t hist[H_N];
};

/* Shared between the parent and its children. */
struct shared {
	atomic_int phase; /* 0 connect, 1 measure, 2 stop */
	atomic_long connected, closed, cycles_done, handshakes_failed, refused;
};

static struct opts O;
static struct shared *S;
static struct result R;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void note_code(int code)
{
	int i;

	for (i = 0; i < R.ncodes; i++)
		if (R.code[i] == code) {
			R.code_count[i]++;
			return;
		}
	if (R.ncodes < MAX_CODES) {
		R.code[R.ncodes] = code;
		R.code_count[R.ncodes++] = 1;
	}
}

/* ---- connections ---------------------------------------------------- */
enum cstate { C_FREE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSING };

struct conn {
	int fd;
	enum cstate state;
	int idx; /* global connection index */
	bool got_msg, close_sent, counted_open, frag;
	int64_t t_open, t_state;
	long last_seq;
	uint8_t *rx;
	size_t rxlen, rxcap;
	uint8_t tx[512];
	size_t txlen;
	uint32_t frag_t_ok;
	int64_t frag_t;
};

static int ep;
static struct conn *conns;
static int nconns;   /* slots in this process */
static int first_idx; /* global index of slot 0 */
static long quota_started, quota; /* churn */
static int inflight;

static void conn_reset(struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = C_FREE;
	c->rxlen = 0;
	c->txlen = 0;
	c->got_msg = c->close_sent = c->frag = false;
	c->last_seq = -1;
}

static void set_events(struct conn *c)
{
	struct epoll_event ev;

	ev.events = (O.mode == M_SLOW && c->state == C_OPEN) ? 0 : EPOLLIN;
	if (c->txlen || c->state == C_CONNECTING)
		ev.events |= EPOLLOUT;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int flush_tx(struct conn *c)
{
	while (c->txlen) {
		ssize_t n = send(c->fd, c->tx, c->txlen, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		memmove(c->tx, c->tx + n, c->txlen - (size_t)n);
		c->txlen -= (size_t)n;
	}
	set_events(c);
	return 0;
}

static int queue_tx(struct conn *c, const void *p, size_t n)
{
	if (c->txlen + n > sizeof(c->tx)) {
		R.proto_errors++;
		return -1;
	}
	memcpy(c->tx + c->txlen, p, n);
	c->txlen += n;
	return flush_tx(c);
}

static int send_frame(struct conn *c, int opcode, const uint8_t *payload,
		      size_t len)
{
	uint8_t f[2 + 4 + 125];
	uint32_t key = (uint32_t)rand();
	size_t i;

	if (len > 125)
		len = 125;
	f[0] = (uint8_t)(0x80 | opcode);
	f[1] = (uint8_t)(0x80 | len);
	memcpy(f + 2, &key, 4);
	for (i = 0; i < len; i++)
		f[6 + i] = payload[i] ^ f[2 + (i & 3)];
	return queue_tx(c, f, 6 + len);
}

static int send_close(struct conn *c, int code)
{
	uint8_t p[2] = { (uint8_t)(code >> 8), (uint8_t)code };

	c->close_sent = true;
	return send_frame(c, 8, p, 2);
}

static void conn_start(struct conn *c);

/* Modes whose slots start again when a connection or attempt is over. */
static bool restarts(void)
{
	return O.mode == M_CHURN || O.mode == M_FLOOD;
}

static bool may_restart(void)
{
	return restarts() && atomic_load(&S->phase) < 2 &&
	       quota_started < quota;
}

/* The connection is over: record, and in churn mode start the next cycle. */
static void conn_done(struct conn *c, int code, bool cycle_ok)
{
	int64_t t = now_ns();

	if (code)
		note_code(code);
	if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
		inflight--;
		R.failed++;
		atomic_fetch_add(&S->handshakes_failed, 1);
	} else if (c->counted_open) {
		double life = (double)(t - c->t_open) / 1e9;

		if (life > R.dead_max_open_to_close_s)
			R.dead_max_open_to_close_s = life;
		R.last_close_ns = t;
		atomic_fetch_add(&S->closed, 1);
	}
	c->counted_open = false;
	conn_reset(c);
	if (O.mode == M_CHURN && cycle_ok) {
		R.cycles++;
		atomic_fetch_add(&S->cycles_done, 1);
	}
	if (may_restart())
		conn_start(c);
}

/* The server answered the upgrade with an HTTP status, not 101. */
static void conn_refused(struct conn *c, int status)
{
	inflight--;
	atomic_fetch_add(&S->refused, 1);
	if (status == 429)
		R.refused_429++;
	else if (status == 503)
		R.refused_503++;
	else
		R.refused_other++;
	conn_reset(c);
	if (may_restart())
		conn_start(c);
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void conn_start(struct conn *c)
{
	struct sockaddr_in src, dst;
	struct epoll_event ev;
	int one = 1, fd;

	if (restarts())
		quota_started++;
	c->idx = first_idx + (int)(c - conns);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		R.failed++;
		atomic_fetch_add(&S->handshakes_failed, 1);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
#ifdef IP_BIND_ADDRESS_NO_PORT
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
	if (O.rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &O.rcvbuf,
			   sizeof(O.rcvbuf));
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7f000000u + (uint32_t)O.src_base +
			       (uint32_t)(c->idx % O.src));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		close(fd);
		R.failed++;
		atomic_fetch_add(&S->handshakes_failed, 1);
		return;
	}
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)O.port);
	dst.sin_addr.s_addr = htonl(0x7f000001u);
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		R.failed++;
		atomic_fetch_add(&S->handshakes_failed, 1);
		return;
	}
	c->fd = fd;
	c->state = C_CONNECTING;
	c->t_state = now_ns();
	c->last_seq = -1;
	inflight++;
	ev.events = EPOLLOUT | EPOLLIN;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void send_request(struct conn *c)
{
	char req[400], key[25];
	int i, n;

	for (i = 0; i < 22; i++)
		key[i] = b64[rand() & 63];
	key[22] = '=';
	key[23] = '=';
	key[24] = 0;
	n = snprintf(req, sizeof(req),
		     "GET %ss%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
		     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
		     "Origin: http://127.0.0.1\r\n\r\n",
		     O.prefix, O.session_base + c->idx / O.per_session, O.port,
		     key);
	c->state = C_HANDSHAKE;
	queue_tx(c, req, (size_t)n);
}

static bool measuring(void)
{
	return atomic_load_explicit(&S->phase, memory_order_relaxed) == 1;
}

static void on_text(struct conn *c, const uint8_t *p, size_t len, bool fin)
{
	const char *t;
	int64_t now = now_ns();

	/* Latency: "t=<ns>" in the message; seq gaps: "seq":N. */
	if (!c->frag) {
		t = memmem(p, len, "t=", 2);
		c->frag_t_ok = 0;
		if (t) {
			c->frag_t = strtoll(t + 2, NULL, 10);
			c->frag_t_ok = 1;
		}
		t = memmem(p, len, "\"seq\":", 6);
		if (t && (size_t)(t - (const char *)p) + 6 < len) {
			long seq = strtol(t + 6, NULL, 10);

			if (c->last_seq >= 0 && seq > c->last_seq + 1 &&
			    measuring())
				R.seq_gaps += seq - c->last_seq - 1;
			c->last_seq = seq;
		}
	}
	c->frag = !fin;
	if (!fin)
		return;
	R.msgs_total++;
	c->got_msg = true;
	if (c->frag_t_ok && (measuring() || O.mode == M_CHURN)) {
		int64_t d = (now - c->frag_t) / 1000;

		if (d < 0)
			d = 0;
		R.hist[h_index((uint64_t)d)]++;
		if (d > R.lat_max_us)
			R.lat_max_us = d;
	}
	if (measuring())
		R.msgs++;
	if (O.mode == M_CHURN && c->state == C_OPEN && !c->close_sent &&
	    O.churn_wait_msg)
		send_close(c, 1000);
}

/* Returns -1 when the connection is finished (already torn down). */
static int parse_frames(struct conn *c)
{
	size_t off = 0;

	while (c->rxlen - off >= 2) {
		uint8_t *f = c->rx + off;
		int op = f[0] & 0x0f;
		bool fin = f[0] & 0x80, masked = f[1] & 0x80;
		uint64_t len = f[1] & 0x7f;
		size_t hdr = 2, i;

		if (len == 126) {
			if (c->rxlen - off < 4)
				break;
			len = (uint64_t)f[2] << 8 | f[3];
			hdr = 4;
		} else if (len == 127) {
			if (c->rxlen - off < 10)
				break;
			len = 0;
			for (i = 0; i < 8; i++)
				len = len << 8 | f[2 + i];
			hdr = 10;
		}
		if (masked)
			hdr += 4;
		if (len > (1u << 24)) {
			R.proto_errors++;
			conn_done(c, 1009, false);
			return -1;
		}
		if (c->rxlen - off < hdr + len) {
			if (hdr + len > c->rxcap) {
				size_t cap = hdr + len;
				uint8_t *n;

				memmove(c->rx, c->rx + off, c->rxlen - off);
				c->rxlen -= off;
				off = 0;
				n = realloc(c->rx, cap);
				if (!n) {
					conn_done(c, 0, false);
					return -1;
				}
				c->rx = n;
				c->rxcap = cap;
			}
			break;
		}
		if (masked)
			for (i = 0; i < len; i++)
				f[hdr + i] ^= f[hdr - 4 + (i & 3)];
		if (measuring())
			R.bytes += (long)(hdr + len);
		switch (op) {
		case 0:
		case 1:
		case 2:
			on_text(c, f + hdr, (size_t)len, fin);
			break;
		case 9: /* ping */
			R.pings++;
			if (O.mode != M_DEAD)
				send_frame(c, 10, f + hdr, (size_t)len);
			break;
		case 10:
			break;
		case 8: {
			int code = len >= 2 ? (f[hdr] << 8 | f[hdr + 1]) : 1005;

			R.closes_recv++;
			if (!c->close_sent)
				send_close(c, len >= 2 ? code : 1000);
			/* Our close (or echo) is queued or sent; done. */
			conn_done(c, code, O.mode == M_CHURN && c->close_sent);
			return -1;
		}
		default:
			R.proto_errors++;
			break;
		}
		off += hdr + (size_t)len;
	}
	if (off) {
		memmove(c->rx, c->rx + off, c->rxlen - off);
		c->rxlen -= off;
	}
	return 0;
}

/* The run is over: close politely (never-reading clients just vanish). */
static void start_closing(struct conn *c)
{
	if (O.mode == M_SLOW)
		return;
	c->state = C_CLOSING;
	if (!c->close_sent)
		send_close(c, 1000);
}

static void on_open(struct conn *c)
{
	c->state = C_OPEN;
	c->t_open = now_ns();
	c->counted_open = true;
	inflight--;
	R.opened++;
	atomic_fetch_add(&S->connected, 1);
	set_events(c);
	if (O.mode == M_CHURN && !O.churn_wait_msg)
		send_close(c, 1000);
	/* Admitted after the closing pass (a refusal retried, a handshake in
	 * flight): close it too, or the server sees a reset. */
	if (atomic_load(&S->phase) == 2)
		start_closing(c);
}

static void on_readable(struct conn *c)
{
	for (;;) {
		ssize_t n;

		if (c->rxcap - c->rxlen < 1024) {
			size_t cap = c->rxcap * 2;
			uint8_t *p = realloc(c->rx, cap);

			if (!p) {
				conn_done(c, 0, false);
				return;
			}
			c->rx = p;
			c->rxcap = cap;
		}
		n = recv(c->fd, c->rx + c->rxlen, c->rxcap - c->rxlen, 0);
		if (n == 0) {
			conn_done(c, c->state == C_OPEN ? 1006 : 0,
				  O.mode == M_CHURN && c->close_sent);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_done(c, c->state == C_OPEN ? 1006 : 0, false);
			return;
		}
		c->rxlen += (size_t)n;
		if (c->state == C_HANDSHAKE) {
			uint8_t *end = memmem(c->rx, c->rxlen, "\r\n\r\n", 4);
			size_t hl;

			if (!end) {
				if (c->rxlen > 8192) {
					conn_done(c, 0, false);
					return;
				}
				continue;
			}
			if (c->rxlen < 12 || memcmp(c->rx, "HTTP/1.1 ", 9)) {
				conn_done(c, 0, false);
				return;
			}
			if (memcmp(c->rx + 9, "101", 3)) {
				conn_refused(c, atoi((char *)c->rx + 9));
				return;
			}
			hl = (size_t)(end - c->rx) + 4;
			memmove(c->rx, c->rx + hl, c->rxlen - hl);
			c->rxlen -= hl;
			on_open(c);
			if (O.mode == M_SLOW)
				return; /* never reads again */
		}
		if (c->state == C_OPEN || c->state == C_CLOSING)
			if (parse_frames(c) < 0)
				return;
	}
}

static void on_event(struct conn *c, uint32_t ev)
{
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (ev & EPOLLOUT) {
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err) {
				conn_done(c, 0, false);
				return;
			}
			send_request(c);
		}
		if (ev & (EPOLLERR | EPOLLHUP) && c->state == C_CONNECTING) {
			conn_done(c, 0, false);
			return;
		}
		return;
	}
	if ((ev & EPOLLOUT) && flush_tx(c) < 0) {
		conn_done(c, c->state == C_OPEN ? 1006 : 0, false);
		return;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(c);
}

/* ---- one child process ---------------------------------------------- */
static void child(int slot0, int n, long cycles_quota, int out_fd)
{
	struct epoll_event evs[256];
	int64_t t_close_deadline = 0, t_scan = 0;
	int i, next = 0;

	ep = epoll_create1(0);
	nconns = n;
	first_idx = slot0;
	quota = cycles_quota;
	conns = calloc((size_t)n, sizeof(*conns));
	srand((unsigned)getpid());
	for (i = 0; i < n; i++) {
		conns[i].fd = -1;
		conns[i].rxcap = 4096;
		conns[i].rx = malloc(conns[i].rxcap);
		conns[i].last_seq = -1;
	}
	for (;;) {
		int phase = atomic_load(&S->phase), k, live = 0;
		int64_t t = now_ns();

		/* Start connections, a bounded number of handshakes at once. */
		while (phase < 2 && next < n && inflight < O.inflight &&
		       (!restarts() || quota_started < quota))
			conn_start(&conns[next++]);
		k = epoll_wait(ep, evs, 256, 20);
		for (i = 0; i < k; i++)
			on_event(evs[i].data.ptr, evs[i].events);
		/* Handshake and close timeouts: 10 s. */
		if (t - t_scan > 500000000LL) {
			t_scan = t;
			for (i = 0; i < n; i++) {
				struct conn *c = &conns[i];

				if (c->state == C_FREE)
					continue;
				live++;
				if ((c->state == C_CONNECTING ||
				     c->state == C_HANDSHAKE) &&
				    t - c->t_state > 10000000000LL) {
					R.timeouts++;
					conn_done(c, 0, false);
				}
			}
		}
		if (O.mode == M_CHURN && quota_started >= quota) {
			bool any = false;

			for (i = 0; i < n && !any; i++)
				any = conns[i].state != C_FREE;
			if (!any)
				break;
		}
		if (phase == 2) {
			if (!t_close_deadline) {
				t_close_deadline = t + 2000000000LL;
				for (i = 0; i < n; i++) {
					struct conn *c = &conns[i];

					if (c->state == C_OPEN)
						start_closing(c);
				}
			}
			/* Wait for the close handshakes, and for the upgrades
			 * still in flight, which may yet be admitted. */
			live = 0;
			for (i = 0; i < n; i++)
				if (conns[i].state == C_CLOSING ||
				    conns[i].state == C_CONNECTING ||
				    conns[i].state == C_HANDSHAKE)
					live++;
			if (!live || t > t_close_deadline)
				break;
		}
		(void)live;
	}
	for (i = 0; i < n; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	if (write(out_fd, &R, sizeof(R)) != (ssize_t)sizeof(R))
		_exit(1);
	_exit(0);
}

/* ---- parent ----------------------------------------------------------- */
static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen --port P [--mode receive|idle|churn|dead|slow|"
		"flood] [--conns N]\n"
		"  [--per-session K] [--session-base B] [--procs P] [--src N] "
		"[--src-base A]\n"
		"  [--duration S] [--warmup S]\n"
		"  [--connect-timeout S] [--cycles N] [--churn-wait-msg] "
		"[--signal-pid PID]\n"
		"  [--path-prefix STR] [--rcvbuf BYTES] [--inflight N]\n");
	exit(2);
}

static void poke_host(void)
{
	if (O.signal_pid > 0)
		kill(O.signal_pid, SIGUSR1);
}

static void merge(struct result *a, const struct result *b)
{
	int i, j;

	a->opened += b->opened;
	a->failed += b->failed;
	a->timeouts += b->timeouts;
	a->proto_errors += b->proto_errors;
	a->msgs += b->msgs;
	a->bytes += b->bytes;
	a->msgs_total += b->msgs_total;
	a->seq_gaps += b->seq_gaps;
	a->pings += b->pings;
	a->closes_recv += b->closes_recv;
	a->cycles += b->cycles;
	a->refused_429 += b->refused_429;
	a->refused_503 += b->refused_503;
	a->refused_other += b->refused_other;
	if (b->lat_max_us > a->lat_max_us)
		a->lat_max_us = b->lat_max_us;
	if (b->dead_max_open_to_close_s > a->dead_max_open_to_close_s)
		a->dead_max_open_to_close_s = b->dead_max_open_to_close_s;
	if (b->last_close_ns > a->last_close_ns)
		a->last_close_ns = b->last_close_ns;
	for (i = 0; i < H_N; i++)
		a->hist[i] += b->hist[i];
	for (j = 0; j < b->ncodes; j++) {
		for (i = 0; i < a->ncodes; i++)
			if (a->code[i] == b->code[j])
				break;
		if (i == a->ncodes) {
			if (a->ncodes == MAX_CODES)
				continue;
			a->code[a->ncodes++] = b->code[j];
		}
		a->code_count[i] += b->code_count[j];
	}
}

static uint64_t pct(const struct result *r, double p)
{
	uint64_t total = 0, acc = 0, want;
	int i;

	for (i = 0; i < H_N; i++)
		total += r->hist[i];
	if (!total)
		return 0;
	want = (uint64_t)(p * (double)total);
	if (want >= total)
		want = total - 1;
	for (i = 0; i < H_N; i++) {
		acc += r->hist[i];
		if (acc > want)
			return h_value(i);
	}
	return h_value(H_N - 1);
}

static double arg_d(const char *s)
{
	char *e;
	double v = strtod(s, &e);

	if (*e || v < 0)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	struct result total;
	pid_t pids[64];
	int fds[64], i, per;
	int64_t t0, t_conn = 0, t_measure = 0, t_end = 0;
	long cycles_at_measure = 0, cycles_at_end = 0;
	double window;

	O.mode = M_RECEIVE;
	O.conns = 100;
	O.per_session = 2;
	O.procs = 2;
	O.src = 9;
	O.src_base = 1;
	O.duration = 10;
	O.warmup = 1;
	O.connect_timeout = 60;
	O.cycles = 1000;
	O.prefix = "/api/images_mvp/progress/";
	O.inflight = 64;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--churn-wait-msg")) {
			O.churn_wait_msg = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--mode")) {
			int m, nm = (int)(sizeof(mode_names) / sizeof(*mode_names));

			for (m = 0; m < nm; m++)
				if (!strcmp(v, mode_names[m]))
					break;
			if (m == nm)
				usage();
			O.mode = (enum mode)m;
		} else if (!strcmp(a, "--port"))
			O.port = atoi(v);
		else if (!strcmp(a, "--conns"))
			O.conns = atoi(v);
		else if (!strcmp(a, "--per-session"))
			O.per_session = atoi(v);
		else if (!strcmp(a, "--session-base"))
			O.session_base = atoi(v);
		else if (!strcmp(a, "--procs"))
			O.procs = atoi(v);
		else if (!strcmp(a, "--src"))
			O.src = atoi(v);
		else if (!strcmp(a, "--src-base"))
			O.src_base = atoi(v);
		else if (!strcmp(a, "--duration"))
			O.duration = arg_d(v);
		else if (!strcmp(a, "--warmup"))
			O.warmup = arg_d(v);
		else if (!strcmp(a, "--connect-timeout"))
			O.connect_timeout = arg_d(v);
		else if (!strcmp(a, "--cycles"))
			O.cycles = atol(v);
		else if (!strcmp(a, "--signal-pid"))
			O.signal_pid = (pid_t)atoi(v);
		else if (!strcmp(a, "--path-prefix"))
			O.prefix = v;
		else if (!strcmp(a, "--rcvbuf"))
			O.rcvbuf = atoi(v);
		else if (!strcmp(a, "--inflight"))
			O.inflight = atoi(v);
		else
			usage();
	}
	if (O.port <= 0 || O.port > 65535 || O.conns < 1 || O.per_session < 1 ||
	    O.procs < 1 || O.procs > 64 || O.src < 1 || O.src > 9 ||
	    O.src_base < 1 || O.src_base + O.src > 255 ||
	    O.inflight < 1 || O.cycles < 1)
		usage();
	if (O.procs > O.conns)
		O.procs = O.conns;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((long)O.conns / O.procs + 64 > (long)rl.rlim_cur) {
		fprintf(stderr, "loadgen: %d connections per process exceed the "
				"open file limit %ld; use more --procs\n",
			O.conns / O.procs, (long)rl.rlim_cur);
		return 2;
	}
	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (S == MAP_FAILED)
		return 1;
	memset(S, 0, sizeof(*S));
	signal(SIGPIPE, SIG_IGN);

	t0 = now_ns();
	per = O.conns / O.procs;
	for (i = 0; i < O.procs; i++) {
		int p[2], n = i == O.procs - 1 ? O.conns - per * i : per;
		long q = O.cycles / O.procs +
			 (i < O.cycles % O.procs ? 1 : 0);

		if (pipe(p) < 0)
			return 1;
		pids[i] = fork();
		if (pids[i] < 0)
			return 1;
		if (pids[i] == 0) {
			close(p[0]);
			child(per * i, n, q, p[1]);
		}
		close(p[1]);
		fds[i] = p[0];
	}

	/* Phases, every wait bounded. */
	if (O.mode == M_CHURN) {
		long warm = O.cycles / 10;
		int64_t limit = t0 + (int64_t)((O.connect_timeout + O.duration) * 1e9);

		while (atomic_load(&S->cycles_done) < warm && now_ns() < limit)
			sleep_s(0.01);
		t_measure = now_ns();
		cycles_at_measure = atomic_load(&S->cycles_done);
		poke_host();
		atomic_store(&S->phase, 1);
		while (atomic_load(&S->cycles_done) +
				       atomic_load(&S->handshakes_failed) +
				       atomic_load(&S->refused) <
			       O.cycles &&
		       now_ns() < limit)
			sleep_s(0.01);
		t_end = now_ns();
		cycles_at_end = atomic_load(&S->cycles_done);
		atomic_store(&S->phase, 2);
	} else if (O.mode == M_FLOOD) {
		/* Attempts go on until the duration or the quota is spent. */
		t_measure = t0;
		atomic_store(&S->phase, 1);
		sleep_s(O.duration);
		t_end = now_ns();
		atomic_store(&S->phase, 2);
	} else {
		int64_t limit = t0 + (int64_t)(O.connect_timeout * 1e9);

		while (atomic_load(&S->connected) +
				       atomic_load(&S->handshakes_failed) +
				       atomic_load(&S->refused) <
			       O.conns &&
		       now_ns() < limit)
			sleep_s(0.01);
		t_conn = now_ns();
		fprintf(stderr, "loadgen: %ld connected in %.2f s\n",
			atomic_load(&S->connected), (double)(t_conn - t0) / 1e9);
		if (O.mode == M_DEAD) {
			limit = t_conn + (int64_t)(O.duration * 1e9);
			atomic_store(&S->phase, 1);
			while (atomic_load(&S->closed) <
				       atomic_load(&S->connected) &&
			       now_ns() < limit)
				sleep_s(0.01);
			t_measure = t_conn;
			t_end = now_ns();
		} else {
			sleep_s(O.warmup);
			poke_host();
			t_measure = now_ns();
			atomic_store(&S->phase, 1);
			sleep_s(O.duration);
			t_end = now_ns();
			poke_host();
			sleep_s(0.2); /* the host reports before we close */
		}
		atomic_store(&S->phase, 2);
	}

	memset(&total, 0, sizeof(total));
	for (i = 0; i < O.procs; i++) {
		struct result r;
		size_t got = 0;
		int st;

		while (got < sizeof(r)) {
			ssize_t n = read(fds[i], (char *)&r + got,
					 sizeof(r) - got);

			if (n <= 0)
				break;
			got += (size_t)n;
		}
		close(fds[i]);
		waitpid(pids[i], &st, 0);
		if (got == sizeof(r))
			merge(&total, &r);
	}
	if (O.mode == M_CHURN) {
		/* Let the server settle, then ask for its final report. */
		sleep_s(1.5);
		poke_host();
	}

	window = (double)(t_end - t_measure) / 1e9;
	if (window <= 0)
		window = 1e-9;
	printf("{\"mode\":\"%s\",\"conns\":%d,\"procs\":%d,\"opened\":%ld,"
	       "\"failed\":%ld,\"timeouts\":%ld,\"proto_errors\":%ld,"
	       "\"connect_s\":%.3f,\"window_s\":%.3f,\"msgs\":%ld,"
	       "\"msgs_total\":%ld,\"seq_gaps\":%ld,\"msgs_per_s\":%.1f,"
	       "\"bytes_per_s\":%.1f,\"pings\":%ld,",
	       mode_names[O.mode], O.conns, O.procs, total.opened, total.failed,
	       total.timeouts, total.proto_errors,
	       t_conn ? (double)(t_conn - t0) / 1e9 : 0.0, window, total.msgs,
	       total.msgs_total, total.seq_gaps, (double)total.msgs / window,
	       (double)total.bytes / window, total.pings);
	printf("\"lat_us\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
	       ",\"p99\":%" PRIu64 ",\"max\":%ld},",
	       pct(&total, 0.50), pct(&total, 0.90), pct(&total, 0.99),
	       total.lat_max_us);
	printf("\"refused\":{\"429\":%ld,\"503\":%ld,\"other\":%ld},",
	       total.refused_429, total.refused_503, total.refused_other);
	printf("\"cycles\":%ld,\"cycles_per_s\":%.1f,",
	       total.cycles,
	       O.mode == M_CHURN ? (double)(cycles_at_end - cycles_at_measure) /
					   window
				 : 0.0);
	printf("\"dead_max_open_to_close_s\":%.3f,\"dead_all_closed_s\":%.3f,",
	       total.dead_max_open_to_close_s,
	       O.mode == M_DEAD && total.last_close_ns > t_conn
		       ? (double)(total.last_close_ns - t_conn) / 1e9
		       : 0.0);
	printf("\"close_codes\":{");
	for (i = 0; i < total.ncodes; i++)
		printf("%s\"%d\":%ld", i ? "," : "", total.code[i],
		       total.code_count[i]);
	printf("}}\n");
	fflush(stdout);
	return 0;
}
