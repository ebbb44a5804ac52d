/*
 * Host names resolved off the service loop. lws 4.1's resolver and
 * hiredis's both call getaddrinfo() on the caller's thread, which would
 * stall every connection of the host for as long as DNS takes; here each
 * lookup runs getaddrinfo() on a short-lived thread of its own and wakes
 * the loop (lws_cancel_service()) when it is done. The service thread
 * then connects to the literal addresses it found, so lws never resolves.
 *
 * A lookup is shared by two owners, the thread and the connection that
 * asked, and freed by whichever lets go last: a connection that goes away
 * (a reset, the manager destroyed) does not wait for a slow DNS server.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

struct wsm_lookup {
	pthread_mutex_t lock;
	struct lws_context *cx; /* woken when done; NULL once released */
	unsigned refs;
	bool done;
	int rc; /* getaddrinfo()'s */
	int n;
	char addr[WSM_LOOKUP_MAX][INET6_ADDRSTRLEN];
	char name[];
};

static void put(struct wsm_lookup *l)
{
	bool last;

	pthread_mutex_lock(&l->lock);
	last = --l->refs == 0;
	pthread_mutex_unlock(&l->lock);
	if (last) {
		pthread_mutex_destroy(&l->lock);
		free(l);
	}
}

static void *run(void *arg)
{
	struct wsm_lookup *l = arg;
	struct addrinfo hints, *res = NULL, *ai;
	char a[WSM_LOOKUP_MAX][INET6_ADDRSTRLEN];
	int rc, n = 0, k;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(l->name, NULL, &hints, &res);
	for (ai = rc ? NULL : res; ai && n < WSM_LOOKUP_MAX; ai = ai->ai_next) {
		const void *bin = ai->ai_family == AF_INET6
			? (const void *)&((struct sockaddr_in6 *)(void *)
						  ai->ai_addr)->sin6_addr
			: (const void *)&((struct sockaddr_in *)(void *)
						  ai->ai_addr)->sin_addr;

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    !inet_ntop(ai->ai_family, bin, a[n], sizeof(a[n])))
			continue;
		for (k = 0; k < n && strcmp(a[k], a[n]); k++)
			;
		n += k == n; /* each address once, in getaddrinfo()'s order */
	}
	if (res)
		freeaddrinfo(res);
	pthread_mutex_lock(&l->lock);
	memcpy(l->addr, a, sizeof(a));
	l->n = n;
	l->rc = rc ? rc : (n ? 0 : EAI_NONAME);
	l->done = true;
	if (l->cx) /* under the lock: the context outlives an unreleased lookup */
		lws_cancel_service(l->cx);
	pthread_mutex_unlock(&l->lock);
	put(l);
	return NULL;
}

struct wsm_lookup *wsm__lookup_start(struct lws_context *cx, const char *name)
{
	size_t len = strlen(name);
	struct wsm_lookup *l = calloc(1, sizeof(*l) + len + 1);
	sigset_t all, was;
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (!l)
		return NULL;
	memcpy(l->name, name, len + 1);
	l->cx = cx;
	l->refs = 2;
	if (pthread_mutex_init(&l->lock, NULL)) {
		free(l);
		return NULL;
	}
	/* The host's signals are for its own threads, not this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &was);
	rc = pthread_attr_init(&attr);
	if (!rc) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &attr, run, l);
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &was, NULL);
	if (rc) {
		pthread_mutex_destroy(&l->lock);
		free(l);
		return NULL;
	}
	return l;
}

int wsm__lookup_result(struct wsm_lookup *l,
		       char (*addr)[INET6_ADDRSTRLEN], int max,
		       const char **why)
{
	int n = -1;

	pthread_mutex_lock(&l->lock);
	if (l->done) {
		n = l->n < max ? l->n : max;
		memcpy(addr, l->addr, (size_t)n * sizeof(*addr));
		*why = l->rc ? gai_strerror(l->rc) : "";
	}
	pthread_mutex_unlock(&l->lock);
	return n;
}

void wsm__lookup_release(struct wsm_lookup *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->cx = NULL;
	pthread_mutex_unlock(&l->lock);
	put(l);
}
