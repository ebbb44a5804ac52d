/*
 * wsclient.c - minimal blocking-with-timeouts RFC 6455 client for the
 * libwsm integration tests.  See wsclient.h for the interface.
 *
 * The socket is non-blocking; every wait goes through poll() with the time
 * left until a CLOCK_MONOTONIC deadline, so no call can hang.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "wsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define WSC_MAX_MSG ((size_t)16 * 1024 * 1024)   /* one data message */
#define WSC_MAX_HDR ((size_t)64 * 1024)          /* HTTP response head */
#define WSC_MAX_HTTP_BODY ((size_t)64 * 1024 * 1024)
#define WSC_READ_CHUNK ((size_t)16 * 1024)
#define WSC_SEND_TIMEOUT_MS 5000

/* ------------------------------------------------------------------ */
/* time                                                               */
/* ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_after(int timeout_ms)
{
	return now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
}

static int ms_left(int64_t deadline)
{
	int64_t r = deadline - now_ms();

	if (r <= 0)
		return 0;
	if (r > INT_MAX)
		return INT_MAX;
	return (int)r;
}

/* ------------------------------------------------------------------ */
/* randomness                                                         */
/* ------------------------------------------------------------------ */

static void fill_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, 0);

		if (r > 0)
			got += (size_t)r;
		else if (r < 0 && errno == EINTR)
			continue;
		else
			break;
	}
	if (got < n) {
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			while (got < n) {
				ssize_t r = read(fd, p + got, n - got);

				if (r > 0)
					got += (size_t)r;
				else if (r < 0 && errno == EINTR)
					continue;
				else
					break;
			}
			close(fd);
		}
	}
	if (got < n) {
		/* last resort: splitmix64 seeded from clock, pid and address */
		struct timespec ts;
		uint64_t x;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
		    ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)buf;
		while (got < n) {
			uint64_t z = (x += 0x9E3779B97F4A7C15ull);

			z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
			z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
			z ^= z >> 31;
			p[got++] = (unsigned char)z;
		}
	}
}

static void base64_encode(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];

		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);

		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

/* ------------------------------------------------------------------ */
/* receive buffer: valid bytes are p[start, end)                      */
/* ------------------------------------------------------------------ */

struct rbuf {
	unsigned char *p;
	size_t start, end, cap;
};

static size_t rb_avail(const struct rbuf *rb)
{
	return rb->end - rb->start;
}

/* make room for at least 'room' more bytes after end; 0 or -1 */
static int rb_reserve(struct rbuf *rb, size_t room)
{
	size_t need, ncap;
	unsigned char *np;

	if (rb->cap - rb->end >= room)
		return 0;
	if (rb->start > 0) {
		size_t n = rb_avail(rb);

		if (n)
			memmove(rb->p, rb->p + rb->start, n);
		rb->start = 0;
		rb->end = n;
		if (rb->cap - rb->end >= room)
			return 0;
	}
	need = rb->end + room;
	ncap = rb->cap ? rb->cap : WSC_READ_CHUNK;
	while (ncap < need)
		ncap *= 2;
	np = realloc(rb->p, ncap);
	if (!np)
		return -1;
	rb->p = np;
	rb->cap = ncap;
	return 0;
}

/*
 * Read whatever is available (at least one byte) into rb, waiting until
 * deadline.  'want' is a hint for how many bytes are still needed.
 * Returns 1 if bytes were read, 0 on timeout, -1 on EOF or error.
 */
static int rb_fill(struct rbuf *rb, int fd, int64_t deadline, size_t want)
{
	if (rb_reserve(rb, want > WSC_READ_CHUNK ? want : WSC_READ_CHUNK) < 0)
		return -1;
	for (;;) {
		ssize_t n = recv(fd, rb->p + rb->end, rb->cap - rb->end, 0);

		if (n > 0) {
			rb->end += (size_t)n;
			return 1;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			int left = ms_left(deadline);
			int pr;

			if (left == 0)
				return 0;
			pr = poll(&pfd, 1, left);
			if (pr == 0)
				return 0;
			if (pr < 0 && errno != EINTR)
				return -1;
			continue;
		}
		return -1;
	}
}

/* ------------------------------------------------------------------ */
/* sockets                                                            */
/* ------------------------------------------------------------------ */

static int send_all(int fd, const void *data, size_t len, int64_t deadline)
{
	const unsigned char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			int left = ms_left(deadline);
			int pr;

			if (left == 0)
				return -1;
			pr = poll(&pfd, 1, left);
			if (pr == 0)
				return -1;
			if (pr < 0 && errno != EINTR)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

/*
 * non-blocking TCP connect to dst_ip (NULL: 127.0.0.1):port, optionally from
 * src_ip, with a receive buffer of rcvbuf bytes if not 0 (set before the
 * connect, so that the window the server sees is small from the start)
 */
static int tcp_connect(const char *src_ip, const char *dst_ip, int port,
		       int rcvbuf, int64_t deadline)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	if (port <= 0 || port > 65535)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (rcvbuf &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
		goto fail;

	if (src_ip) {
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = 0;
		if (inet_pton(AF_INET, src_ip, &sa.sin_addr) != 1 ||
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (dst_ip && inet_pton(AF_INET, dst_ip, &sa.sin_addr) != 1)
		goto fail;

	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = 0;
		socklen_t elen = sizeof(err);

		if (errno != EINPROGRESS && errno != EINTR)
			goto fail;
		for (;;) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			int left = ms_left(deadline);
			int pr;

			if (left == 0)
				goto fail;
			pr = poll(&pfd, 1, left);
			if (pr > 0)
				break;
			if (pr == 0 || errno != EINTR)
				goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0)
			goto fail;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;

fail:
	close(fd);
	return -1;
}

/* ------------------------------------------------------------------ */
/* HTTP response head helpers                                         */
/* ------------------------------------------------------------------ */

/* offset just past "\r\n\r\n" in p[0,n), or 0 if not present */
static size_t find_head_end(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i + 3 < n; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
			return i + 4;
	return 0;
}

/* "HTTP/1.x NNN ..." -> NNN, else 0 */
static int parse_status_line(const unsigned char *p, size_t n)
{
	int code;

	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' ||
	    p[8] != ' ')
		return 0;
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9')
		return 0;
	code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (n > 12 && p[12] != ' ' && p[12] != '\r')
		return 0;
	return code;
}

/*
 * Find header 'name' in head p[0,n) (which includes the status line and the
 * final CRLFCRLF).  On success sets *val and *vlen (leading/trailing blanks
 * trimmed) and returns 1; else 0.
 */
static int find_header(const unsigned char *p, size_t n, const char *name,
		       const unsigned char **val, size_t *vlen)
{
	size_t nlen = strlen(name);
	size_t i = 0;

	/* skip status line */
	while (i + 1 < n && !(p[i] == '\r' && p[i + 1] == '\n'))
		i++;
	i += 2;
	while (i + 1 < n) {
		size_t ls = i, le = i, colon;

		while (le + 1 < n && !(p[le] == '\r' && p[le + 1] == '\n'))
			le++;
		if (le + 1 >= n || le == ls)
			break;
		for (colon = ls; colon < le && p[colon] != ':'; colon++)
			;
		if (colon < le && colon - ls == nlen &&
		    strncasecmp((const char *)p + ls, name, nlen) == 0) {
			size_t vs = colon + 1, ve = le;

			while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
				vs++;
			while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
				ve--;
			*val = p + vs;
			*vlen = ve - vs;
			return 1;
		}
		i = le + 2;
	}
	return 0;
}

static int contains_ci(const unsigned char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; k <= n && i <= n - k; i++)
		if (strncasecmp((const char *)s + i, needle, k) == 0)
			return 1;
	return 0;
}

/*
 * Read until the response head is complete.  Returns the head length
 * (bytes from rb->start up to and including CRLFCRLF) or 0 on failure.
 */
static size_t read_head(struct rbuf *rb, int fd, int64_t deadline)
{
	for (;;) {
		size_t he = find_head_end(rb->p ? rb->p + rb->start : NULL, rb_avail(rb));

		if (he)
			return he;
		if (rb_avail(rb) > WSC_MAX_HDR)
			return 0;
		if (rb_fill(rb, fd, deadline, WSC_READ_CHUNK) <= 0)
			return 0;
	}
}

/* ------------------------------------------------------------------ */
/* WebSocket client                                                   */
/* ------------------------------------------------------------------ */

struct wsc {
	int fd;
	struct rbuf rx;

	/* data message being reassembled */
	unsigned char *msg;
	size_t msg_len, msg_cap;
	int in_msg;

	int auto_pong;
	int closed;      /* close frame received or EOF */
	int close_sent;
	int proto_err;
	int close_code;
	char close_reason[124];
	unsigned pings;
};

static char *build_request(const char *path, int port, const char *key,
			   const char *extra)
{
	static const char fmt[] =
		"GET %s HTTP/1.1\r\n"
		"Host: 127.0.0.1:%d\r\n"
		"Upgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Key: %s\r\n"
		"Sec-WebSocket-Version: 13\r\n"
		"%s"
		"\r\n";
	int n = snprintf(NULL, 0, fmt, path, port, key, extra);
	char *req;

	if (n < 0)
		return NULL;
	req = malloc((size_t)n + 1);
	if (req)
		snprintf(req, (size_t)n + 1, fmt, path, port, key, extra);
	return req;
}

wsc_t *wsc_connect_from(const char *src_ip, int port, const char *path,
			const char *extra_headers, int timeout_ms, int *http_status)
{
	return wsc_connect_to(src_ip, NULL, port, path, extra_headers,
			      timeout_ms, http_status);
}

static wsc_t *connect_with(const char *src_ip, const char *dst_ip, int port,
			   const char *path, const char *extra_headers,
			   int rcvbuf, int timeout_ms, int *http_status)
{
	int64_t deadline = deadline_after(timeout_ms);
	unsigned char raw[16];
	char key[32];
	char *req = NULL;
	size_t head;
	int status = 0;
	wsc_t *c;

	if (http_status)
		*http_status = 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->auto_pong = 1;
	c->fd = tcp_connect(src_ip, dst_ip, port, rcvbuf, deadline);
	if (c->fd < 0)
		goto fail;

	fill_random(raw, sizeof(raw));
	base64_encode(raw, sizeof(raw), key);
	req = build_request(path ? path : "/", port, key, extra_headers ? extra_headers : "");
	if (!req || send_all(c->fd, req, strlen(req), deadline) < 0)
		goto fail;
	free(req);
	req = NULL;

	head = read_head(&c->rx, c->fd, deadline);
	if (!head)
		goto fail;
	status = parse_status_line(c->rx.p + c->rx.start, head);
	if (http_status)
		*http_status = status;
	if (status != 101)
		goto fail;
	/* anything after the head is the beginning of the frame stream */
	c->rx.start += head;
	return c;

fail:
	free(req);
	wsc_free(c);
	return NULL;
}

wsc_t *wsc_connect_to(const char *src_ip, const char *dst_ip, int port,
		      const char *path, const char *extra_headers,
		      int timeout_ms, int *http_status)
{
	return connect_with(src_ip, dst_ip, port, path, extra_headers, 0,
			    timeout_ms, http_status);
}

wsc_t *wsc_connect_rcvbuf(int port, const char *path, int rcvbuf,
			  int timeout_ms, int *http_status)
{
	return connect_with(NULL, NULL, port, path, NULL, rcvbuf, timeout_ms,
			    http_status);
}

wsc_t *wsc_connect(int port, const char *path, const char *extra_headers,
		   int timeout_ms, int *http_status)
{
	return wsc_connect_from(NULL, port, path, extra_headers, timeout_ms, http_status);
}

void wsc_set_auto_pong(wsc_t *c, int on)
{
	if (c)
		c->auto_pong = on ? 1 : 0;
}

int wsc_close_code(const wsc_t *c)
{
	return c ? c->close_code : 0;
}

const char *wsc_close_reason(const wsc_t *c)
{
	return c ? c->close_reason : "";
}

unsigned wsc_pings(const wsc_t *c)
{
	return c ? c->pings : 0;
}

int wsc_fd(const wsc_t *c)
{
	return c ? c->fd : -1;
}

void wsc_free(wsc_t *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->rx.p);
	free(c->msg);
	free(c);
}

int wsc_send_frame(wsc_t *c, int opcode, int fin, const void *data, size_t len)
{
	unsigned char buf[14 + 16384];
	const unsigned char *src = data;
	unsigned char mask[4];
	int64_t deadline;
	size_t h = 0, off = 0;

	if (!c || c->fd < 0 || (len && !data))
		return -1;

	buf[h++] = (unsigned char)((fin ? 0x80 : 0x00) | (opcode & 0x0f));
	if (len < 126) {
		buf[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		buf[h++] = 0x80 | 126;
		buf[h++] = (unsigned char)(len >> 8);
		buf[h++] = (unsigned char)len;
	} else {
		uint64_t l = (uint64_t)len;
		int i;

		buf[h++] = 0x80 | 127;
		for (i = 7; i >= 0; i--)
			buf[h++] = (unsigned char)(l >> (8 * i));
	}
	fill_random(mask, sizeof(mask));
	memcpy(buf + h, mask, 4);
	h += 4;

	if ((opcode & 0x0f) == 0x8)
		c->close_sent = 1;

	deadline = deadline_after(WSC_SEND_TIMEOUT_MS);
	/* first chunk shares the buffer with the header */
	do {
		size_t room = sizeof(buf) - h, n = len - off, i;

		if (n > room)
			n = room;
		for (i = 0; i < n; i++)
			buf[h + i] = src[off + i] ^ mask[(off + i) & 3];
		if (send_all(c->fd, buf, h + n, deadline) < 0)
			return -1;
		off += n;
		h = 0;
	} while (off < len);
	return 0;
}

int wsc_send_raw(wsc_t *c, const void *data, size_t len, int timeout_ms)
{
	if (!c || c->fd < 0)
		return -1;
	return send_all(c->fd, data, len, deadline_after(timeout_ms));
}

int wsc_send_text(wsc_t *c, const char *text)
{
	if (!text)
		text = "";
	return wsc_send_frame(c, 0x1, 1, text, strlen(text));
}

int wsc_send_close(wsc_t *c, int code)
{
	unsigned char p[2];

	if (code == 0)
		return wsc_send_frame(c, 0x8, 1, NULL, 0);
	p[0] = (unsigned char)((code >> 8) & 0xff);
	p[1] = (unsigned char)(code & 0xff);
	return wsc_send_frame(c, 0x8, 1, p, 2);
}

static int msg_append(wsc_t *c, const unsigned char *p, size_t n)
{
	size_t need;

	if (n > WSC_MAX_MSG - c->msg_len)
		return -1;
	need = c->msg_len + n + 1; /* room for the final NUL */
	if (need > c->msg_cap) {
		size_t ncap = c->msg_cap ? c->msg_cap : 256;
		unsigned char *np;

		while (ncap < need)
			ncap *= 2;
		np = realloc(c->msg, ncap);
		if (!np)
			return -1;
		c->msg = np;
		c->msg_cap = ncap;
	}
	if (n)
		memcpy(c->msg + c->msg_len, p, n);
	c->msg_len += n;
	return 0;
}

static int proto_error(wsc_t *c)
{
	c->proto_err = 1;
	return -2;
}

static int deliver(wsc_t *c, char **out, size_t *len)
{
	if (!c->msg && (msg_append(c, NULL, 0) < 0 || !c->msg))
		return proto_error(c);
	c->msg[c->msg_len] = '\0';
	if (len)
		*len = c->msg_len;
	if (out) {
		*out = (char *)c->msg;
		c->msg = NULL;
		c->msg_cap = 0;
	}
	c->msg_len = 0;
	c->in_msg = 0;
	return 1;
}

/*
 * Handle one complete frame.  Returns 1 (message delivered), -1 (closed),
 * -2 (protocol error) or 2 (keep going).
 */
static int handle_frame(wsc_t *c, int fin, int opcode, const unsigned char *pl,
			size_t plen, char **out, size_t *len)
{
	switch (opcode) {
	case 0x0:
	case 0x1:
	case 0x2:
		if (opcode != 0x0) {
			if (c->in_msg)
				return proto_error(c); /* expected a continuation */
			c->in_msg = 1;
			c->msg_len = 0;
		} else if (!c->in_msg) {
			return proto_error(c); /* continuation without a start */
		}
		if (msg_append(c, pl, plen) < 0)
			return proto_error(c);
		return fin ? deliver(c, out, len) : 2;

	case 0x8:
		if (plen == 1)
			return proto_error(c);
		if (plen >= 2) {
			size_t rl = plen - 2;

			c->close_code = (pl[0] << 8) | pl[1];
			if (rl > sizeof(c->close_reason) - 1)
				rl = sizeof(c->close_reason) - 1;
			memcpy(c->close_reason, pl + 2, rl);
			c->close_reason[rl] = '\0';
		} else {
			c->close_code = 1005;
			c->close_reason[0] = '\0';
		}
		c->closed = 1;
		if (!c->close_sent) {
			if (plen >= 2)
				(void)wsc_send_frame(c, 0x8, 1, pl, 2);
			else
				(void)wsc_send_frame(c, 0x8, 1, NULL, 0);
		}
		return -1;

	case 0x9:
		c->pings++;
		if (c->auto_pong && !c->close_sent)
			(void)wsc_send_frame(c, 0xA, 1, pl, plen);
		return 2;

	case 0xA:
		return 2;

	default:
		return proto_error(c);
	}
}

/*
 * Process buffered frames / read more until a data message is complete,
 * the connection is closed, a protocol error occurs or the deadline passes.
 * Returns 1, -1, -2 or 0 (timeout), like wsc_recv.
 */
static int pump(wsc_t *c, int64_t deadline, char **out, size_t *len)
{
	for (;;) {
		size_t need = 2, avail;
		const unsigned char *f;
		int r;

		if (c->proto_err)
			return -2;
		if (c->closed)
			return -1;

		avail = rb_avail(&c->rx);
		f = c->rx.p ? c->rx.p + c->rx.start : NULL;
		if (f && avail >= 2) {
			int fin = (f[0] & 0x80) != 0;
			int opcode = f[0] & 0x0f;
			size_t hlen = 2;
			uint64_t plen = f[1] & 0x7f;

			if ((f[0] & 0x70) != 0)       /* RSV bits: no extensions */
				return proto_error(c);
			if ((f[1] & 0x80) != 0)       /* server frames are never masked */
				return proto_error(c);
			if ((opcode >= 0x3 && opcode <= 0x7) || opcode > 0xA)
				return proto_error(c);
			if (opcode >= 0x8 && (!fin || plen > 125))
				return proto_error(c);
			if (plen == 126)
				hlen = 4;
			else if (plen == 127)
				hlen = 10;
			need = hlen;
			if (avail >= hlen) {
				if (hlen == 4) {
					plen = ((uint64_t)f[2] << 8) | f[3];
				} else if (hlen == 10) {
					int i;

					plen = 0;
					for (i = 2; i < 10; i++)
						plen = (plen << 8) | f[i];
					if (plen >> 63)
						return proto_error(c);
				}
				if (plen > WSC_MAX_MSG)
					return proto_error(c);
				need = hlen + (size_t)plen;
				if (avail >= need) {
					c->rx.start += need;
					r = handle_frame(c, fin, opcode, f + hlen,
							 (size_t)plen, out, len);
					if (c->rx.start == c->rx.end)
						c->rx.start = c->rx.end = 0;
					if (r != 2)
						return r;
					continue;
				}
			}
		}

		r = rb_fill(&c->rx, c->fd, deadline, need - avail);
		if (r == 0)
			return 0;
		if (r < 0) {
			c->closed = 1;
			if (!c->close_code)
				c->close_code = 1006;
			return -1;
		}
	}
}

int wsc_recv(wsc_t *c, char **out, size_t *len, int timeout_ms)
{
	if (out)
		*out = NULL;
	if (len)
		*len = 0;
	if (!c)
		return -1;
	return pump(c, deadline_after(timeout_ms), out, len);
}

int wsc_wait_close(wsc_t *c, int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);

	if (!c)
		return 0;
	for (;;) {
		int r = pump(c, deadline, NULL, NULL);

		if (r == 1)
			continue;
		if (r == 0)
			return 0;
		if (r == -1)
			return c->close_code;
		return -1;
	}
}

/* ------------------------------------------------------------------ */
/* plain HTTP helper                                                  */
/* ------------------------------------------------------------------ */

/* append n bytes to a malloc'ed byte string; 0 or -1 */
static int bytes_append(unsigned char **b, size_t *blen, size_t *bcap,
			const unsigned char *p, size_t n)
{
	if (n > WSC_MAX_HTTP_BODY - *blen)
		return -1;
	if (*blen + n + 1 > *bcap) {
		size_t ncap = *bcap ? *bcap : 256;
		unsigned char *np;

		while (ncap < *blen + n + 1)
			ncap *= 2;
		np = realloc(*b, ncap);
		if (!np)
			return -1;
		*b = np;
		*bcap = ncap;
	}
	if (n)
		memcpy(*b + *blen, p, n);
	*blen += n;
	return 0;
}

/* decode a chunked body from rb (consuming it); 1 done, 0 need more, -1 bad */
static int dechunk(struct rbuf *rb, unsigned char **b, size_t *blen, size_t *bcap)
{
	for (;;) {
		const unsigned char *p = rb->p + rb->start;
		size_t n = rb_avail(rb), i = 0, le;
		uint64_t sz = 0;
		int digits = 0;

		for (le = 0; le + 1 < n && !(p[le] == '\r' && p[le + 1] == '\n'); le++)
			;
		if (le + 1 >= n)
			return n > 1024 ? -1 : 0;
		for (i = 0; i < le; i++) {
			unsigned char ch = p[i];
			int v;

			if (ch >= '0' && ch <= '9')
				v = ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				v = ch - 'a' + 10;
			else if (ch >= 'A' && ch <= 'F')
				v = ch - 'A' + 10;
			else
				break; /* ';' extension or blanks */
			if (sz > (WSC_MAX_HTTP_BODY >> 4))
				return -1;
			sz = (sz << 4) | (uint64_t)v;
			digits++;
		}
		if (!digits)
			return -1;
		if (sz == 0)
			return 1; /* trailers (if any) are ignored */
		if (n < le + 2 + sz + 2)
			return 0;
		if (p[le + 2 + sz] != '\r' || p[le + 2 + sz + 1] != '\n')
			return -1;
		if (bytes_append(b, blen, bcap, p + le + 2, (size_t)sz) < 0)
			return -1;
		rb->start += le + 2 + (size_t)sz + 2;
	}
}

int wsc_http(int port, const char *method, const char *path,
	     const char *extra_headers, const char *body, char **body_out,
	     int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	struct rbuf rb = { 0 };
	unsigned char *b = NULL;
	size_t blen = 0, bcap = 0, head, vlen;
	const unsigned char *val;
	char *req = NULL, clh[64];
	int fd = -1, status = 0, n;
	size_t body_len = body ? strlen(body) : 0;

	if (body_out)
		*body_out = NULL;
	if (!method)
		method = "GET";
	if (!path)
		path = "/";
	if (!extra_headers)
		extra_headers = "";
	clh[0] = '\0';
	if (body)
		snprintf(clh, sizeof(clh), "Content-Length: %zu\r\n", body_len);

	fd = tcp_connect(NULL, NULL, port, 0, deadline);
	if (fd < 0)
		goto fail;

	n = snprintf(NULL, 0, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s%s\r\n",
		     method, path, port, extra_headers, clh);
	if (n < 0)
		goto fail;
	req = malloc((size_t)n + body_len + 1);
	if (!req)
		goto fail;
	snprintf(req, (size_t)n + 1, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s%s\r\n",
		 method, path, port, extra_headers, clh);
	if (body_len)
		memcpy(req + n, body, body_len);
	if (send_all(fd, req, (size_t)n + body_len, deadline) < 0)
		goto fail;

	head = read_head(&rb, fd, deadline);
	if (!head)
		goto fail;
	status = parse_status_line(rb.p + rb.start, head);
	if (!status)
		goto fail;

	if (strcasecmp(method, "HEAD") == 0 || status < 200 || status == 204 ||
	    status == 304) {
		/* no body */
	} else if (find_header(rb.p + rb.start, head, "Transfer-Encoding", &val, &vlen) &&
		   contains_ci(val, vlen, "chunked")) {
		rb.start += head;
		for (;;) {
			int r = dechunk(&rb, &b, &blen, &bcap);

			if (r > 0)
				break;
			if (r < 0 || rb_fill(&rb, fd, deadline, WSC_READ_CHUNK) <= 0)
				goto fail;
		}
	} else if (find_header(rb.p + rb.start, head, "Content-Length", &val, &vlen)) {
		size_t cl = 0, i;

		if (!vlen)
			goto fail;
		for (i = 0; i < vlen; i++) {
			if (val[i] < '0' || val[i] > '9' || cl > WSC_MAX_HTTP_BODY)
				goto fail;
			cl = cl * 10 + (size_t)(val[i] - '0');
		}
		if (cl > WSC_MAX_HTTP_BODY)
			goto fail;
		rb.start += head;
		while (rb_avail(&rb) < cl)
			if (rb_fill(&rb, fd, deadline, cl - rb_avail(&rb)) <= 0)
				goto fail;
		if (bytes_append(&b, &blen, &bcap, rb.p + rb.start, cl) < 0)
			goto fail;
	} else {
		/* read until EOF */
		rb.start += head;
		for (;;) {
			int r;

			if (rb_avail(&rb) > WSC_MAX_HTTP_BODY)
				goto fail;
			r = rb_fill(&rb, fd, deadline, WSC_READ_CHUNK);
			if (r == 0)
				goto fail; /* timeout */
			if (r < 0)
				break;     /* EOF (or reset) ends the body */
		}
		if (bytes_append(&b, &blen, &bcap, rb.p + rb.start, rb_avail(&rb)) < 0)
			goto fail;
	}

	if (body_out) {
		if (!b && bytes_append(&b, &blen, &bcap, NULL, 0) < 0)
			goto fail;
		b[blen] = '\0';
		*body_out = (char *)b;
		b = NULL;
	}
	free(b);
	free(req);
	free(rb.p);
	close(fd);
	return status;

fail:
	free(b);
	free(req);
	free(rb.p);
	if (fd >= 0)
		close(fd);
	return 0;
}

int wsc_exchange(int port, const char *request, char **response_out,
		 int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	struct rbuf rb = { 0 };
	int fd = tcp_connect(NULL, NULL, port, 0, deadline), status = 0, r;
	size_t head;

	if (response_out)
		*response_out = NULL;
	if (fd < 0)
		return 0;
	if (send_all(fd, request, strlen(request), deadline) < 0)
		goto done;
	/* Until the server closes: an answer that leaves the socket open fails. */
	do {
		if (rb_avail(&rb) > WSC_MAX_HTTP_BODY)
			goto done;
		r = rb_fill(&rb, fd, deadline, WSC_READ_CHUNK);
	} while (r > 0);
	if (r == 0)
		goto done; /* timeout */
	head = find_head_end(rb.p + rb.start, rb_avail(&rb));
	if (head)
		status = parse_status_line(rb.p + rb.start, head);
	if (response_out && rb_reserve(&rb, 1) == 0) {
		rb.p[rb.start + rb_avail(&rb)] = '\0';
		*response_out = strdup((char *)rb.p + rb.start);
	}
done:
	free(rb.p);
	close(fd);
	return status;
}
