/*
 * Simulated image jobs, one worker thread each, reporting their progress to
 * the browsers watching them through libwsm's broadcasts, and a table of the
 * jobs the server knows: the running ones and the most recent finished ones.
 * With a store (store.h) each job's record is kept on disk as it goes, and
 * the jobs a previous run left unfinished are resumed.
 */
#ifndef PROGRESS_BROADCAST_JOBS_H
#define PROGRESS_BROADCAST_JOBS_H

#include <stdbool.h>

#include <jansson.h>
#include <wsm.h>

/* Room for a session id: libwsm's longest (128 bytes) and its NUL. */
#define JOBS_ID_SIZE 129

enum jobs_error {
	JOBS_OK = 0,
	JOBS_FULL = -1,     /* as many jobs running as allowed */
	JOBS_STOPPING = -2, /* jobs_destroy() has begun */
	JOBS_SYSTEM = -3,   /* no randomness or no thread */
	JOBS_EXISTS = -4    /* a job with that id is running */
};

struct jobs;
struct store;

/*
 * A pool running at most max_running jobs at once, broadcasting through m,
 * keeping records in store if it is not NULL (the pool does not own it).
 */
struct jobs *jobs_new(wsm_manager_t *m, unsigned max_running,
		      struct store *store);

/*
 * Loads the store's records: finished jobs are listed again, unfinished ones
 * resume from their last step. Call it once the manager is attached to its
 * lws context. Returns the number of jobs resumed.
 */
int jobs_resume(struct jobs *jobs);

/*
 * Starts a job under session id `id`, or under 16 random hex characters if
 * id is NULL, and copies the id into id_out. A failing job ends with an error
 * message instead of its result. Returns a jobs_error. Call it from one
 * thread only (here, the lws service thread).
 */
int jobs_start(struct jobs *jobs, const char *id, bool fail,
	       char id_out[JOBS_ID_SIZE]);

/*
 * {"jobs":[...]}, newest first, or the one job with that id (NULL if
 * unknown), each as {"sessionId","state","progress","stage","message",
 * "viewers","resumed","startedAt","updatedAt"} plus "metadata" once complete
 * or "error" once failed; state is "running", "complete" or "failed". NULL
 * also when out of memory. Any thread.
 */
json_t *jobs_list_json(struct jobs *jobs);
json_t *jobs_get_json(struct jobs *jobs, const char *id);

/* Counts a WebSocket joining (+1) or leaving (-1) a job's session. */
void jobs_viewers(struct jobs *jobs, const char *id, int delta);

struct jobs_counts {
	unsigned running, complete, failed;
};
void jobs_count(struct jobs *jobs, struct jobs_counts *out);

/*
 * Tells running jobs to stop, waits for every worker thread and frees the
 * pool. Their records stay as they were, so that the next run resumes them.
 * Call it from the thread that calls jobs_start(), before the manager is
 * destroyed.
 */
void jobs_destroy(struct jobs *jobs);

#endif
