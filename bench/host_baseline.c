/*
 * host_baseline: the same job as host_wsm with bare lws only, the thinnest
 * correct lws program: a session table (array, O(1)), a list of
 * connections per session, a producer thread rendering each broadcast once
 * into a locked queue and waking the loop with lws_cancel_service(), and a
 * per-connection pending slot (a newer progress replaces an unsent one).
 * With --producer loop it is thinner still: the broadcasts come from an
 * lws timer on the service thread and go straight into the pending slots,
 * with no queue, no lock and no wake-up.
 * No limits, heartbeat, lifetime or replay. --rx 0 keeps lws's default
 * receive buffer; --rx 128 matches libwsm's default.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "host_common.h"

#define PREFIX "/api/images_mvp/progress/s"

/* A rendered message, shared by the connections of its session. Reference
 * counts are touched only on the service thread. */
struct msg {
	struct msg *next; /* in the producer queue */
	int session, refs;
	size_t len;
	unsigned char buf[]; /* LWS_PRE + len */
};

struct pss {
	struct pss *prev, *next; /* in the session's list */
	struct lws *wsi;
	int session;
	struct msg *pending;
};

struct session {
	struct pss *head;
	unsigned long seq;
};

struct app {
	struct lws_context *ctx;
	struct session *sessions;
	int nsessions;
	pthread_mutex_t lock;
	struct msg *q_head, **q_tail;
	/* service thread only */
	long connections, opened, closed, sent, bytes, coalesced, writes_failed;
	long dropped_unrouted;
	bool on_loop; /* broadcasts made on the service thread */
};

static struct app A;

static void msg_put(struct msg *m)
{
	if (--m->refs <= 0)
		free(m);
}

/* Hands m to every connection of its session (service thread). */
static void fan_out(struct app *a, struct msg *m)
{
	struct pss *p;

	m->refs = 1; /* ours, during the fan-out */
	for (p = a->sessions[m->session].head; p; p = p->next) {
		if (p->pending) {
			msg_put(p->pending);
			a->coalesced++;
		}
		p->pending = m;
		m->refs++;
		lws_callback_on_writable(p->wsi);
	}
	if (m->refs == 1)
		a->dropped_unrouted++;
	msg_put(m);
}

static void broadcast(void *user, int session, double progress,
		      int64_t now_ns)
{
	struct app *a = user;
	struct session *s = &a->sessions[session];
	struct timespec rt;
	char text[512];
	struct msg *m;
	int n;

	clock_gettime(CLOCK_REALTIME, &rt);
	/* seq is written by this thread only. */
	n = snprintf(text, sizeof(text),
		     "{\"type\":\"progress\",\"sessionId\":\"s%d\",\"seq\":%lu,"
		     "\"progress\":%.1f,\"message\":\"t=%" PRId64 "\","
		     "\"stage\":\"bench\",\"timestamp\":%" PRId64 "}",
		     session, ++s->seq, progress, now_ns,
		     (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000);
	m = malloc(sizeof(*m) + LWS_PRE + (size_t)n);
	if (!m)
		return;
	m->next = NULL;
	m->session = session;
	m->refs = 0;
	m->len = (size_t)n;
	memcpy(m->buf + LWS_PRE, text, (size_t)n);
	if (a->on_loop) {
		fan_out(a, m);
		return;
	}
	pthread_mutex_lock(&a->lock);
	*a->q_tail = m;
	a->q_tail = &m->next;
	pthread_mutex_unlock(&a->lock);
	lws_cancel_service(a->ctx);
}

static void drain(struct app *a)
{
	struct msg *m, *next;

	pthread_mutex_lock(&a->lock);
	m = a->q_head;
	a->q_head = NULL;
	a->q_tail = &a->q_head;
	pthread_mutex_unlock(&a->lock);
	for (; m; m = next) {
		next = m->next;
		fan_out(a, m);
	}
}

static int session_of(struct lws *wsi)
{
	char uri[128];
	char *end;
	long s;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    strncmp(uri, PREFIX, strlen(PREFIX)))
		return -1;
	s = strtol(uri + strlen(PREFIX), &end, 10);
	if (*end || s < 0 || s >= A.nsessions)
		return -1;
	return (int)s;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
		    void *user, void *in, size_t len)
{
	struct pss *p = user;
	struct session *s;
	int n;

	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return session_of(wsi) < 0 ? -1 : 0;
	case LWS_CALLBACK_ESTABLISHED:
		p->wsi = wsi;
		p->session = session_of(wsi);
		if (p->session < 0)
			return -1;
		s = &A.sessions[p->session];
		p->prev = NULL;
		p->next = s->head;
		if (s->head)
			s->head->prev = p;
		s->head = p;
		A.connections++;
		A.opened++;
		break;
	case LWS_CALLBACK_CLOSED:
		if (!p->wsi)
			break;
		if (p->prev)
			p->prev->next = p->next;
		else
			A.sessions[p->session].head = p->next;
		if (p->next)
			p->next->prev = p->prev;
		if (p->pending)
			msg_put(p->pending);
		p->pending = NULL;
		p->wsi = NULL;
		A.connections--;
		A.closed++;
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!p->pending)
			break;
		n = lws_write(wsi, p->pending->buf + LWS_PRE, p->pending->len,
			      LWS_WRITE_TEXT);
		if (n < (int)p->pending->len) {
			A.writes_failed++;
			return -1;
		}
		A.sent++;
		A.bytes += (long)p->pending->len;
		msg_put(p->pending);
		p->pending = NULL;
		break;
	case LWS_CALLBACK_RECEIVE:
		break;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		drain(&A);
		break;
	default:
		break;
	}
	return 0;
}

static void report(void *user, char *buf, size_t n)
{
	struct app *a = user;

	snprintf(buf, n,
		 ",\"host\":\"baseline\",\"connections\":%ld,\"opened\":%ld,"
		 "\"closed\":%ld,\"messages_sent\":%ld,\"bytes_sent\":%ld,"
		 "\"coalesced\":%ld,\"writes_failed\":%ld,\"unrouted\":%ld",
		 a->connections, a->opened, a->closed, a->sent, a->bytes,
		 a->coalesced, a->writes_failed, a->dropped_unrouted);
}

static void shutdown_app(void *user)
{
	struct app *a = user;
	struct msg *m, *next;

	/* The producer is joined: nothing else touches the queue. */
	for (m = a->q_head; m; m = next) {
		next = m->next;
		free(m);
	}
	a->q_head = NULL;
	a->q_tail = &a->q_head;
}

int main(int argc, char **argv)
{
	struct lws_protocol_vhost_options pvo_default = { NULL, NULL,
							  "default", "" };
	struct lws_protocol_vhost_options pvo = { NULL, &pvo_default, NULL,
						  "" };
	struct lws_protocols protocols[3];
	struct lws_context_creation_info info;
	struct host h;

	memset(&h, 0, sizeof(h));
	host_parse(argc, argv, &h.o, "host_baseline");
	lws_set_log_level(LLL_ERR, NULL);

	A.nsessions = h.o.sessions;
	A.on_loop = h.o.on_loop;
	A.sessions = calloc((size_t)A.nsessions, sizeof(*A.sessions));
	if (!A.sessions)
		return 1;
	pthread_mutex_init(&A.lock, NULL);
	A.q_tail = &A.q_head;

	memset(protocols, 0, sizeof(protocols));
	protocols[0] = (struct lws_protocols){ "http", lws_callback_http_dummy,
					       0, 0, 0, NULL, 0 };
	protocols[1] = (struct lws_protocols){
		"baseline", callback, sizeof(struct pss),
		h.o.rx > 0 ? (size_t)h.o.rx : 0, 0, NULL,
		/* One send() per message, as libwsm's entry does. */
		65536
	};
	pvo.name = protocols[1].name;
	memset(&info, 0, sizeof(info));
	info.protocols = protocols;
	info.pvo = &pvo;

	h.user = &A;
	h.broadcast = broadcast;
	h.report = report;
	h.shutdown = shutdown_app;
	if (host_create_context(&h, &info))
		return 1;
	A.ctx = h.ctx;
	return host_run(&h);
}
