/*
 * The real server the network fuzz targets (fuzz_frames, fuzz_upgrade)
 * talk to: tests/support's harness, an lws server with a libwsm manager on
 * its own service thread, started on the first input and restarted every
 * FZ_RESTART_EVERY inputs (which bounds the harness's event log and puts
 * manager destruction with a live context under the fuzzer too). Every wait
 * is bounded; a wait that runs out aborts, since it means a connection the
 * manager never let go of.
 */
#ifndef LIBWSM_FUZZ_SERVER_H
#define LIBWSM_FUZZ_SERVER_H

#include "../support/harness.h"
#include "../support/wsclient.h"

#define FZ_RESTART_EVERY 2000
#define FZ_SETTLE_EVERY 64
#define FZ_WAIT_MS 10000

struct fz_server {
	/* Set by the target. */
	const struct harness_option *opts;
	size_t nopts;
	/* Runs after each start, before the baseline is taken. */
	void (*on_start)(struct fz_server *s);
	/* Connections the target keeps open between inputs. */
	uint64_t resident;

	/* Kept here. */
	harness_t *h;
	unsigned long inputs;
	uint64_t baseline;
};

/* The running server (started, or restarted, as due). Call once per input. */
harness_t *fz_server_next(struct fz_server *s);
/* Waits (bounded) until the books balance; aborts if they do not. */
void fz_server_settle(struct fz_server *s);
/* Closes events so far, of a cause (-1: any). */
size_t fz_server_closes(struct fz_server *s, int cause);
/* Waits for the close event number `count`; aborts after FZ_WAIT_MS. */
void fz_server_wait_close(struct fz_server *s, size_t count);

/* Writes all of data to the client's socket, unframed; -1 if it could not. */
int fz_send_raw(wsc_t *c, const void *data, size_t len, int timeout_ms);
/* Half-closes (FIN) and reads until the server closes too, or timeout. */
void fz_shutdown_and_drain(wsc_t *c, int timeout_ms);

#endif
