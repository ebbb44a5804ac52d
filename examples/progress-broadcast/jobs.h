/*
 * Simulated image jobs, one worker thread each, reporting their progress to
 * the browsers watching them through libwsm's broadcasts.
 */
#ifndef PROGRESS_BROADCAST_JOBS_H
#define PROGRESS_BROADCAST_JOBS_H

#include <stdbool.h>

#include <wsm.h>

/* Room for a session id: libwsm's longest (128 bytes) and its NUL. */
#define JOBS_ID_SIZE 129

enum jobs_error {
	JOBS_OK = 0,
	JOBS_FULL = -1,     /* as many jobs running as allowed */
	JOBS_STOPPING = -2, /* jobs_destroy() has begun */
	JOBS_SYSTEM = -3    /* no randomness or no thread */
};

struct jobs;

/* A pool of at most max_jobs concurrent jobs broadcasting through m. */
struct jobs *jobs_new(wsm_manager_t *m, unsigned max_jobs);

/*
 * Starts a job under session id `id`, or under 16 random hex characters if
 * id is NULL, and copies the id into id_out. A failing job ends with an error
 * message instead of its result. Returns a jobs_error. Call it from one
 * thread only (here, the lws service thread).
 */
int jobs_start(struct jobs *jobs, const char *id, bool fail,
	       char id_out[JOBS_ID_SIZE]);

/*
 * Tells running jobs to stop, waits for every worker thread and frees the
 * pool. Call it from the thread that calls jobs_start(), before the manager
 * is destroyed.
 */
void jobs_destroy(struct jobs *jobs);

#endif
