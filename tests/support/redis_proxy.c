/* A relay that breaks Redis links on cue; see redis_proxy.h. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "redis_proxy.h"

#define MAX_PAIRS 32

struct pair {
	int cfd, sfd; /* the node's side, Redis's side; -1 when unused */
	int kind;     /* enum proxy_link, or -1 before its first command */
	bool frozen;
	bool lose;    /* throw away the next reply and close */
	bool mute;    /* a subscriber's reads carrying a message are dropped */
};

struct redis_proxy {
	char sock[100];
	char url[48];
	int lfd, wake[2];
	pthread_t thread;
	pthread_mutex_t lock;
	bool stop;
	bool refusing; /* new connections are closed at once */
	bool held[2];
	char lose_word[32];
	unsigned lost;
	unsigned pushed; /* reads from Redis on subscribers with a "message" */
	struct pair pairs[MAX_PAIRS];
};

static void drop(struct pair *q)
{
	if (q->cfd >= 0)
		close(q->cfd);
	if (q->sfd >= 0)
		close(q->sfd);
	q->cfd = q->sfd = -1;
	q->kind = -1;
	q->frozen = q->lose = q->mute = false;
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t k = write(fd, buf, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		buf += k;
		n -= (size_t)k;
	}
	return 0;
}

static void accept_one(struct redis_proxy *p)
{
	struct sockaddr_un a;
	int cfd = accept(p->lfd, NULL, NULL), sfd, i;

	if (cfd < 0)
		return;
	if (p->refusing) {
		close(cfd);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", p->sock);
	sfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (sfd < 0 || connect(sfd, (struct sockaddr *)&a, sizeof(a))) {
		close(cfd);
		if (sfd >= 0)
			close(sfd);
		return;
	}
	for (i = 0; i < MAX_PAIRS && p->pairs[i].cfd >= 0; i++)
		;
	if (i == MAX_PAIRS) {
		close(cfd);
		close(sfd);
		return;
	}
	p->pairs[i].cfd = cfd;
	p->pairs[i].sfd = sfd;
}

/* From the node: what kind of link it is, and whether to lose a reply. */
static void from_node(struct redis_proxy *p, struct pair *q, const char *buf,
		      size_t n)
{
	if (q->kind < 0 && memmem(buf, n, "SUBSCRIBE", 9))
		q->kind = PROXY_SUB;
	else if (q->kind < 0 && memmem(buf, n, "INFO", 4))
		q->kind = PROXY_CMD;
	if (p->lose_word[0] && q->kind == PROXY_CMD &&
	    memmem(buf, n, p->lose_word, strlen(p->lose_word))) {
		q->lose = true;
		p->lose_word[0] = '\0';
	}
}

static void *relay(void *arg)
{
	struct redis_proxy *p = arg;
	struct pollfd fds[2 + 2 * MAX_PAIRS];
	int who[2 + 2 * MAX_PAIRS];
	char buf[65536];

	for (;;) {
		nfds_t n = 0, i;

		pthread_mutex_lock(&p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		fds[n].fd = p->lfd;
		fds[n].events = POLLIN;
		who[n++] = -1;
		fds[n].fd = p->wake[0];
		fds[n].events = POLLIN;
		who[n++] = -2;
		for (i = 0; i < MAX_PAIRS; i++) {
			struct pair *q = &p->pairs[i];

			if (q->cfd < 0 || q->frozen)
				continue;
			fds[n].fd = q->cfd;
			fds[n].events = POLLIN;
			who[n++] = (int)(2 * i);
			if (q->kind >= 0 && p->held[q->kind])
				continue;
			fds[n].fd = q->sfd;
			fds[n].events = POLLIN;
			who[n++] = (int)(2 * i + 1);
		}
		pthread_mutex_unlock(&p->lock);
		if (poll(fds, n, 1000) <= 0)
			continue;
		pthread_mutex_lock(&p->lock);
		for (i = 0; i < n; i++) {
			struct pair *q;
			ssize_t k;

			if (!fds[i].revents)
				continue;
			if (who[i] == -1) {
				accept_one(p);
				continue;
			}
			if (who[i] == -2) {
				if (read(p->wake[0], buf, sizeof(buf)) < 0)
					continue;
				continue;
			}
			q = &p->pairs[who[i] / 2];
			if (q->cfd < 0)
				continue; /* dropped by an earlier event */
			if (who[i] % 2 == 0) {
				k = read(q->cfd, buf, sizeof(buf));
				if (k <= 0) {
					drop(q);
					continue;
				}
				from_node(p, q, buf, (size_t)k);
				if (write_all(q->sfd, buf, (size_t)k))
					drop(q);
				continue;
			}
			k = read(q->sfd, buf, sizeof(buf));
			/* A whole read goes: the node sees the replies alone. */
			if (k > 0 && q->mute && memmem(buf, (size_t)k, "message", 7))
				continue;
			if (k <= 0 || q->lose) {
				if (k > 0)
					p->lost++;
				drop(q);
				continue;
			}
			if (write_all(q->cfd, buf, (size_t)k)) {
				drop(q);
				continue;
			}
			/* Counted once in the node's socket, not before. */
			if (q->kind == PROXY_SUB &&
			    memmem(buf, (size_t)k, "message", 7))
				p->pushed++;
		}
		pthread_mutex_unlock(&p->lock);
	}
}

static void wake(struct redis_proxy *p)
{
	char c = 1;

	if (write(p->wake[1], &c, 1) < 0)
		return;
}

struct redis_proxy *proxy_start(const struct redis_server *r)
{
	struct redis_proxy *p = calloc(1, sizeof(*p));
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int i;

	if (!p)
		return NULL;
	for (i = 0; i < MAX_PAIRS; i++)
		drop(&p->pairs[i]);
	snprintf(p->sock, sizeof(p->sock), "%s", r->sock);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(p->lfd, 16) ||
	    getsockname(p->lfd, (struct sockaddr *)&a, &len) ||
	    pipe(p->wake)) {
		if (p->lfd >= 0)
			close(p->lfd);
		free(p);
		return NULL;
	}
	snprintf(p->url, sizeof(p->url), "redis://127.0.0.1:%u",
		 (unsigned)ntohs(a.sin_port));
	pthread_mutex_init(&p->lock, NULL);
	if (pthread_create(&p->thread, NULL, relay, p)) {
		close(p->lfd);
		close(p->wake[0]);
		close(p->wake[1]);
		free(p);
		return NULL;
	}
	return p;
}

const char *proxy_url(const struct redis_proxy *p)
{
	return p->url;
}

void proxy_stop(struct redis_proxy *p)
{
	int i;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_mutex_unlock(&p->lock);
	wake(p);
	pthread_join(p->thread, NULL);
	for (i = 0; i < MAX_PAIRS; i++)
		drop(&p->pairs[i]);
	close(p->lfd);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void proxy_lose_reply_to(struct redis_proxy *p, const char *word)
{
	pthread_mutex_lock(&p->lock);
	snprintf(p->lose_word, sizeof(p->lose_word), "%s", word);
	pthread_mutex_unlock(&p->lock);
}

unsigned proxy_replies_lost(struct redis_proxy *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->lost;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void proxy_freeze(struct redis_proxy *p, enum proxy_link which, bool on)
{
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_PAIRS; i++)
		if (p->pairs[i].cfd >= 0 && p->pairs[i].kind == (int)which)
			p->pairs[i].frozen = on;
	pthread_mutex_unlock(&p->lock);
	wake(p);
}

void proxy_mute(struct redis_proxy *p, bool on)
{
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_PAIRS; i++)
		if (p->pairs[i].cfd >= 0 && p->pairs[i].kind == PROXY_SUB)
			p->pairs[i].mute = on;
	pthread_mutex_unlock(&p->lock);
}

void proxy_hold_replies(struct redis_proxy *p, enum proxy_link which,
			bool on)
{
	pthread_mutex_lock(&p->lock);
	p->held[which] = on;
	pthread_mutex_unlock(&p->lock);
	wake(p);
}

void proxy_refuse(struct redis_proxy *p, bool on)
{
	pthread_mutex_lock(&p->lock);
	p->refusing = on;
	pthread_mutex_unlock(&p->lock);
}

unsigned proxy_pushed(struct redis_proxy *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->pushed;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned proxy_links(struct redis_proxy *p, enum proxy_link which)
{
	unsigned n = 0;
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_PAIRS; i++)
		n += p->pairs[i].cfd >= 0 && p->pairs[i].kind == (int)which;
	pthread_mutex_unlock(&p->lock);
	return n;
}
