/* When to stop; see stopper.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include <libwebsockets.h>

#include "stopper.h"

#define REASON_DURATION (-1)

struct stopper {
	struct lws_context *ctx;
	unsigned duration_s;
	pthread_t thread;
	atomic_bool requested, urgent;
	atomic_bool quitting; /* stopper_free() wants the thread back */
	atomic_int reason; /* 0 while running, a signal or REASON_DURATION */
};

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
}

int stopper_block_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	stop_signals(&set);
	return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -1;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The signal, or REASON_DURATION once the deadline (if any) has passed. */
static int wait_for_stop(const struct stopper *s)
{
	double deadline = now_s() + s->duration_s, left;
	struct timespec ts;
	sigset_t set;
	int sig;

	stop_signals(&set);
	for (;;) {
		if (s->duration_s == 0) {
			if (sigwait(&set, &sig) == 0)
				return sig;
			continue;
		}
		left = deadline - now_s();
		if (left <= 0)
			return REASON_DURATION;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig > 0)
			return sig;
		/* EAGAIN: timed out, EINTR: interrupted; the loop decides. */
	}
}

static void *stopper_main(void *arg)
{
	struct stopper *s = arg;
	sigset_t set;
	int sig, reason = wait_for_stop(s);

	if (atomic_load(&s->quitting))
		return NULL;
	atomic_store(&s->reason, reason);
	atomic_store(&s->requested, true);
	lws_cancel_service(s->ctx);

	/* A second signal: the user does not want to wait for the drain. */
	stop_signals(&set);
	while (sigwait(&set, &sig) != 0)
		continue;
	if (atomic_load(&s->quitting))
		return NULL;
	atomic_store(&s->urgent, true);
	lws_cancel_service(s->ctx);
	return NULL;
}

struct stopper *stopper_start(struct lws_context *ctx, unsigned duration_s)
{
	struct stopper *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ctx = ctx;
	s->duration_s = duration_s;
	atomic_init(&s->requested, false);
	atomic_init(&s->urgent, false);
	atomic_init(&s->quitting, false);
	atomic_init(&s->reason, 0);
	if (pthread_create(&s->thread, NULL, stopper_main, s) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

bool stopper_requested(struct stopper *s)
{
	return atomic_load(&s->requested);
}

bool stopper_urgent(struct stopper *s)
{
	return atomic_load(&s->urgent);
}

const char *stopper_reason(struct stopper *s)
{
	switch (atomic_load(&s->reason)) {
	case 0:
		return NULL;
	case SIGINT:
		return "SIGINT";
	case SIGTERM:
		return "SIGTERM";
	case REASON_DURATION:
		return "duration elapsed";
	default:
		return "signal";
	}
}

void stopper_free(struct stopper *s)
{
	if (!s)
		return;
	/*
	 * The thread waits for a first or a second signal: wake it with one
	 * of its set, aimed at it alone, which it takes for the request to
	 * return. If it has returned on its own, the signal goes nowhere.
	 */
	atomic_store(&s->quitting, true);
	if (!atomic_load(&s->urgent))
		pthread_kill(s->thread, SIGTERM);
	pthread_join(s->thread, NULL);
	free(s);
}
