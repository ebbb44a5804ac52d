/*
 * When to stop: on SIGINT or SIGTERM, or once --duration has elapsed; and
 * when to stop waiting for the graceful drain: on a second signal.
 *
 * The signals are blocked in every thread and taken by one thread with
 * sigtimedwait(), which then raises a flag and wakes the lws loop with
 * lws_cancel_service(), the one lws call allowed from any thread. Nothing
 * runs in signal-handler context, and no wake-up can be lost between the
 * loop's test of the flag and its poll().
 */
#ifndef PROGRESS_BROADCAST_STOPPER_H
#define PROGRESS_BROADCAST_STOPPER_H

#include <stdbool.h>

struct lws_context;
struct stopper;

/*
 * Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it
 * creates afterwards, and ignores SIGPIPE. Call it first thing in main().
 */
int stopper_block_signals(void);

/* Starts watching; duration_s 0 waits for a signal only. NULL on failure. */
struct stopper *stopper_start(struct lws_context *ctx, unsigned duration_s);

/* True once a stop is due. Any thread. */
bool stopper_requested(struct stopper *s);

/* True once a second signal asks not to wait any longer. Any thread. */
bool stopper_urgent(struct stopper *s);

/* Why: "SIGINT", "SIGTERM" or "duration elapsed"; NULL while running. */
const char *stopper_reason(struct stopper *s);

/* Ends the watching thread and frees s. Call it before the context goes. */
void stopper_free(struct stopper *s);

#endif
