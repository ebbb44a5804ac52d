/*
 * Target 5: whatever a client may send after the upgrade. Each input opens a
 * real connection to the server of fuzz_server.c (one lws server with a
 * libwsm manager for the whole process), sends the input, ends the
 * connection one of three ways, and waits (bounded) for the manager's close
 * event. Every FZ_SETTLE_EVERY inputs the manager's books must balance:
 * no connection left, every one opened also closed, held bytes back to the
 * baseline.
 *
 * Input: [mode: 1] then
 *   mode & 3 == 0: raw bytes, written unframed after the handshake (garbage,
 *                  unmasked frames, bad lengths, RSV bits, partial frames).
 *   otherwise:     a frame script, records of [head: 1] ...:
 *     head & 0x80: raw record: [n: 1] then n bytes written as they are
 *     else         frame: opcode = head & 0x0f, FIN = head & 0x10, and
 *                  (head >> 5) & 3 picks the payload: 0: [n: 1] n % 126
 *                  bytes from the input; 1: [n: 2] n % 4096 bytes from the
 *                  input; 2: [ch: 1][n: 2] n copies of ch; 3: [n: 1] n
 *                  bytes from the input.
 * (mode >> 2) & 3 is the ending: 0 a close frame (1000) and wait for the
 * server's; 1 a FIN and read until the server closes; 2 or 3 drop the
 * socket at once (an RST if anything is unread). Raw input never ends with
 * a close frame (it may have left a frame half sent).
 *
 * For scripts of well-formed frames ending with a close frame or a FIN, the
 * cause the manager reports is predicted from wsm(7) ("Clients need not send
 * anything ...": binary 1003, over WSM_OPT_MAX_MESSAGE_SIZE 1009, invalid
 * UTF-8 1007, otherwise the peer's close, or an error for a FIN; nothing
 * after the client's close frame counts) and checked; so is the close code
 * the client receives when the server closes first.
 */
#include "fuzz.h"
#include "fuzz_server.h"

#define MAX_MESSAGE 100 /* small, so fuzzed inputs reach it */
#define PATH "/api/images_mvp/progress/fz"

static const struct harness_option options[] = {
	{ WSM_OPT_MAX_MESSAGE_SIZE, MAX_MESSAGE },
	{ WSM_OPT_RX_BUFFER_SIZE, 128 }, /* messages arrive in pieces */
	{ WSM_OPT_RETENTION_MS, 0 },     /* nothing kept once gone */
	{ WSM_OPT_CLOSE_GRACE_MS, 1000 },
};

static struct fz_server server = {
	.opts = options,
	.nopts = sizeof(options) / sizeof(options[0]),
};

#define ANY (-1)

/* What the manager must report, from the rules of wsm(7). */
struct predict {
	bool known;  /* false: lws's own protocol checks decide */
	bool closed; /* a cause is already fixed */
	int cause;   /* once closed */
	int code, alt_code; /* close code the server sends (0: not checked) */
	/* the text message in progress */
	bool in_msg;
	size_t len;
	size_t utf8_at;       /* index of the first bad byte, or SIZE_MAX */
	unsigned char need;   /* continuation bytes still expected */
	unsigned char lo, hi; /* range of the next one */
};

static void fix(struct predict *p, int cause, int code, int alt_code)
{
	if (!p->closed) {
		p->closed = true;
		p->cause = cause;
		p->code = code;
		p->alt_code = alt_code ? alt_code : code;
	}
}

/* Feeds one byte of a text message to a small RFC 3629 state machine. */
static bool utf8_byte(struct predict *p, unsigned char b)
{
	if (p->need) {
		if (b < p->lo || b > p->hi)
			return false;
		p->need--;
		p->lo = 0x80;
		p->hi = 0xbf;
		return true;
	}
	p->lo = 0x80;
	p->hi = 0xbf;
	if (b < 0x80)
		return true;
	if (b >= 0xc2 && b <= 0xdf)
		p->need = 1;
	else if (b >= 0xe0 && b <= 0xef) {
		p->need = 2;
		if (b == 0xe0)
			p->lo = 0xa0;
		if (b == 0xed)
			p->hi = 0x9f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		p->need = 3;
		if (b == 0xf0)
			p->lo = 0x90;
		if (b == 0xf4)
			p->hi = 0x8f;
	} else
		return false;
	return true;
}

/*
 * A text message ends (or is cut) with its first UTF-8 error at index
 * p->utf8_at (SIZE_MAX: none) and p->len bytes. Bytes reach the manager in
 * pieces whose bounds it cannot know: when both limits are broken, either
 * code may come first unless the UTF-8 error is at or past the size limit.
 */
static void judge_message(struct predict *p)
{
	bool too_big = p->len > MAX_MESSAGE, bad = p->utf8_at != SIZE_MAX;

	if (too_big && bad && p->utf8_at < MAX_MESSAGE)
		fix(p, WSM_CAUSE_PROTOCOL, WSM_CLOSE_TOO_BIG,
		    WSM_CLOSE_INVALID_PAYLOAD);
	else if (too_big)
		fix(p, WSM_CAUSE_PROTOCOL, WSM_CLOSE_TOO_BIG, 0);
	else if (bad)
		fix(p, WSM_CAUSE_PROTOCOL, WSM_CLOSE_INVALID_PAYLOAD, 0);
}

static void frame(struct predict *p, int op, bool fin, const unsigned char *d,
		  size_t n)
{
	size_t i;
	bool bad = op >= 8 ? !fin || n > 125 || op > 10 ||
				     (op == 8 && n != 0 &&
				      !(n == 2 && d[0] == 0x03 && d[1] == 0xe8))
			   : op > 2 || (op == 0) != p->in_msg;

	if (!p->known)
		return;
	if (p->closed) {
		/*
		 * lws goes on reading what follows; a frame it rejects makes it
		 * drop the connection before libwsm's close frame goes out, and
		 * it answers a close frame of the client's with its own code.
		 */
		if (bad || op == 8)
			p->code = p->alt_code = 0;
		else if (op < 8)
			p->in_msg = !fin;
		return;
	}
	if (op >= 8) {
		if (!fin || n > 125 || op > 10) {
			p->known = false; /* lws refuses these itself */
			return;
		}
		if (op == 8) {
			/* Only a plain close: codes and reasons are lws's to judge. */
			if (n == 0 || (n == 2 && d[0] == 0x03 && d[1] == 0xe8))
				fix(p, WSM_CAUSE_PEER, 0, 0);
			else
				p->known = false;
		}
		return;
	}
	if (bad) {
		p->known = false; /* reserved opcode, or out of sequence */
		return;
	}
	p->in_msg = !fin; /* lws's view, which goes on after a close */
	if (op == 2) {
		/* 1003 on its first piece */
		fix(p, WSM_CAUSE_PROTOCOL, WSM_CLOSE_UNSUPPORTED, 0);
		return;
	}
	if (op == 1) {
		p->len = 0;
		p->need = 0;
		p->utf8_at = SIZE_MAX;
	}
	for (i = 0; i < n; i++, p->len++)
		if (p->utf8_at == SIZE_MAX && !utf8_byte(p, d[i]))
			p->utf8_at = p->len;
	/* Over the limit is final whatever follows. */
	if (p->len > MAX_MESSAGE) {
		judge_message(p);
		return;
	}
	if (p->utf8_at != SIZE_MAX) {
		judge_message(p);
		return;
	}
	if (fin) {
		if (p->need) {
			/* Cut short at the end: the error is at its last byte. */
			if (n == 0) {
				p->known = false; /* an empty last frame: lws's call */
				return;
			}
			p->utf8_at = p->len - 1;
			judge_message(p);
		}
	}
}

struct script {
	const uint8_t *p;
	size_t left;
};

static size_t take(struct script *s, size_t n)
{
	return n < s->left ? n : s->left;
}

/* Sends the script; returns false once the socket is gone. */
static bool run_script(wsc_t *c, struct script *s, struct predict *pr)
{
	static unsigned char fill[65536];

	while (s->left) {
		uint8_t head = *s->p++;
		size_t n;
		const unsigned char *d;

		s->left--;
		if (head & 0x80) {
			n = take(s, s->left ? *s->p : 0);
			if (s->left) {
				s->p++;
				s->left--;
				n = take(s, n);
			}
			if (pr->closed)
				pr->code = pr->alt_code = 0;
			else
				pr->known = false;
			if (fz_send_raw(c, s->p, n, 5000))
				return false;
			s->p += n;
			s->left -= n;
			continue;
		}
		switch ((head >> 5) & 3) {
		case 0:
		case 3:
			n = s->left ? *s->p : 0;
			if (s->left) {
				s->p++;
				s->left--;
			}
			if (((head >> 5) & 3) == 0)
				n %= 126;
			n = take(s, n);
			d = s->p;
			s->p += n;
			s->left -= n;
			break;
		case 1:
			n = 0;
			if (s->left >= 2) {
				n = ((size_t)s->p[0] << 8 | s->p[1]) % 4096;
				s->p += 2;
				s->left -= 2;
			}
			n = take(s, n);
			d = s->p;
			s->p += n;
			s->left -= n;
			break;
		default: {
			unsigned char ch = s->left ? *s->p : 'a';

			n = 0;
			if (s->left >= 3) {
				n = (size_t)s->p[1] << 8 | s->p[2];
				s->p += 3;
				s->left -= 3;
			} else {
				s->p += s->left;
				s->left = 0;
			}
			memset(fill, ch, n);
			d = fill;
			break;
		}
		}
		frame(pr, head & 0x0f, head & 0x10, d, n);
		if (wsc_send_frame(c, head & 0x0f, head & 0x10, n ? d : NULL, n))
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	harness_t *h = fz_server_next(&server);
	struct predict pr = { .known = true, .utf8_at = SIZE_MAX };
	struct script s = { size ? data + 1 : data, size ? size - 1 : 0 };
	uint8_t mode = size ? data[0] : 0;
	int ending = (mode >> 2) & 3, status = 0, code = 0, got;
	size_t closes = fz_server_closes(&server, ANY);
	wsm_metrics_t m0 = harness_metrics(h), m1;
	bool alive = true, check_code = false;
	wsc_t *c;

	c = wsc_connect(harness_port(h), PATH, NULL, 5000, &status);
	FZ_CHECK(c && status == 101, "upgrade refused: %d", status);

	if ((mode & 3) == 0) {
		pr.known = false;
		alive = fz_send_raw(c, s.p, s.left, 5000) == 0;
		if (ending == 0)
			ending = 1;
	} else {
		alive = run_script(c, &s, &pr);
	}

	if (!alive || ending >= 2) {
		pr.known = false; /* an RST may beat the data to the server */
	} else if (ending == 0 && pr.known && pr.closed) {
		/* The server closes first: its close frame carries the code. */
		code = wsc_wait_close(c, 2000);
		wsc_send_close(c, 1000);
		check_code = pr.code != 0;
	} else if (ending == 0) {
		frame(&pr, 8, true, (const unsigned char *)"\x03\xe8", 2);
		wsc_send_close(c, 1000);
		/* Raw bytes may have left a frame half sent: do not wait long. */
		wsc_wait_close(c, pr.known ? 2000 : 300);
	} else {
		fix(&pr, WSM_CAUSE_ERROR, 0, 0);
		fz_shutdown_and_drain(c, 2000);
	}
	wsc_free(c);
	fz_server_wait_close(&server, closes + 1);
	if (!pr.known)
		return 0;
	m1 = harness_metrics(h);
	for (got = 0; got < WSM_CAUSE_SLOTS - 1; got++)
		if (m1.closed[got] != m0.closed[got])
			break;
	FZ_CHECK(m1.closed[pr.cause] == m0.closed[pr.cause] + 1,
		 "closed as \"%s\", wsm(7) says \"%s\"",
		 wsm_cause_name((wsm_close_cause_t)got),
		 wsm_cause_name((wsm_close_cause_t)pr.cause));
	if (check_code)
		FZ_CHECK(code == pr.code || code == pr.alt_code,
			 "close code %d, want %d (or %d)", code, pr.code,
			 pr.alt_code);
	return 0;
}
