/*
 * Simulated image jobs. Each runs on its own thread: it waits a moment so a
 * browser can connect, then goes through four stages, broadcasting progress
 * every tick, and ends with a complete message carrying the result's
 * metadata, or with an error. A job told to stop just ends where it is:
 * destroying the manager afterwards closes its connections with 1001, which
 * tells the browsers.
 *
 * Threads are joinable. A finished thread marks itself done; jobs_start()
 * joins finished threads before it looks for a free slot, and
 * jobs_destroy() wakes every sleeping job and joins the rest, so no thread
 * outlives the pool.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <libwebsockets.h>

#include "jobs.h"

#define GRACE_MS 1000 /* before the first progress: time to connect */
#define TICK_MS 100   /* between progress messages */
#define RETRY_MS 10   /* before retrying a final message the inbox refused */

struct stage {
	const char *name;
	int ticks;
	double from, to; /* percent */
};

/* 30 ticks of 100 ms: with the grace period, about 4 s per job. */
static const struct stage stages[] = {
	{ "upload", 8, 0.0, 25.0 },
	{ "analyse", 4, 25.0, 40.0 },
	{ "resize", 10, 40.0, 80.0 },
	{ "encode", 8, 80.0, 100.0 },
};
#define STAGE_COUNT (sizeof(stages) / sizeof(stages[0]))
#define FAIL_STAGE 2 /* a failing job fails while resizing, */
#define FAIL_TICK 5  /* half way through */

struct job {
	struct jobs *owner;
	pthread_t thread;
	bool used;        /* a thread not yet joined; jobs_start()'s thread */
	atomic_bool done; /* the thread's last act */
	bool fail;
	uint32_t seed; /* picks the simulated image */
	int width, height;
	double megabytes;
	char id[JOBS_ID_SIZE];
};

struct jobs {
	wsm_manager_t *m;
	pthread_mutex_t lock; /* guards stopping */
	pthread_cond_t wake;  /* broadcast when stopping is set */
	bool stopping;
	unsigned cap;
	struct job slots[];
};

/* ---- time ---------------------------------------------------------- */

static struct timespec deadline_after(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Sleeps ms milliseconds; returns false at once if the pool is stopping. */
static bool pause_ms(struct jobs *jobs, long ms)
{
	struct timespec until = deadline_after(ms);
	bool stopping;

	pthread_mutex_lock(&jobs->lock);
	while (!jobs->stopping &&
	       pthread_cond_timedwait(&jobs->wake, &jobs->lock, &until) !=
		       ETIMEDOUT)
		continue;
	stopping = jobs->stopping;
	pthread_mutex_unlock(&jobs->lock);
	return !stopping;
}

/* ---- randomness ---------------------------------------------------- */

static int random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 16 random hex characters: 64 bits, plenty to make ids unguessable. */
static int random_id(char out[JOBS_ID_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[8];
	size_t i;

	if (random_bytes(raw, sizeof(raw)))
		return -1;
	for (i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * sizeof(raw)] = '\0';
	return 0;
}

/* ---- the simulated work -------------------------------------------- */

static void pick_image(struct job *job)
{
	static const int sizes[][2] = {
		{ 1920, 1080 }, { 1600, 1200 }, { 2048, 1365 },
		{ 1080, 1350 }, { 1280, 720 },	{ 3000, 2000 },
	};
	const int *wh = sizes[job->seed % (sizeof(sizes) / sizeof(sizes[0]))];

	job->width = wh[0];
	job->height = wh[1];
	job->megabytes = 2.0 + (double)(job->seed >> 8 & 0xff) / 32.0;
}

/* The human-readable line for tick `tick` of stage `s`. */
static void describe(const struct job *job, size_t s, int tick, char *buf,
		     size_t size)
{
	static const char *const checks[] = {
		"reading EXIF data", "detecting edges",
		"estimating the colour profile", "choosing the crop"
	};
	const struct stage *st = &stages[s];
	double done = (double)(tick + 1) / st->ticks;

	switch (s) {
	case 0:
		snprintf(buf, size, "uploading: %.1f of %.1f MB",
			 job->megabytes * done, job->megabytes);
		break;
	case 1:
		snprintf(buf, size, "analysing: %s",
			 checks[tick % (int)(sizeof(checks) / sizeof(*checks))]);
		break;
	case 2:
		snprintf(buf, size, "resizing to %dx%d: row %d of %d",
			 job->width / 2, job->height / 2,
			 (int)(job->height / 2 * done), job->height / 2);
		break;
	default:
		snprintf(buf, size, "encoding WebP: pass %d of %d", tick + 1,
			 st->ticks);
		break;
	}
}

/*
 * Progress may be dropped when the inbox is full: the next tick carries
 * newer figures anyway. Any other failure is a bug worth reporting.
 */
static void send_progress(struct job *job, double pct, const char *msg,
			  const char *stage)
{
	int rc = wsm_broadcast_progress(job->owner->m, job->id, pct, msg,
					stage);

	if (rc != 0 && rc != WSM_EAGAIN)
		lwsl_err("job %s: progress: %s\n", job->id, wsm_strerror(rc));
}

/* Final messages matter: retry while the inbox is full, unless stopping. */
static void send_error(struct job *job, const char *error)
{
	int rc;

	while ((rc = wsm_broadcast_error(job->owner->m, job->id, error)) ==
		       WSM_EAGAIN &&
	       pause_ms(job->owner, RETRY_MS))
		continue;
	if (rc != 0)
		lwsl_err("job %s: error: %s\n", job->id, wsm_strerror(rc));
}

static void send_complete(struct job *job)
{
	int w = job->width / 2, h = job->height / 2;
	char meta[160];
	long bytes;
	int rc;

	/* WebP at about 0.6 bit per pixel, give or take a few kB. */
	bytes = (long)w * h * 6 / 80 + (long)(job->seed >> 16 & 0xfff);
	snprintf(meta, sizeof(meta),
		 "{\"width\":%d,\"height\":%d,\"format\":\"webp\","
		 "\"bytes\":%ld}",
		 w, h, bytes);
	while ((rc = wsm_broadcast_complete(job->owner->m, job->id, meta)) ==
		       WSM_EAGAIN &&
	       pause_ms(job->owner, RETRY_MS))
		continue;
	if (rc != 0)
		lwsl_err("job %s: complete: %s\n", job->id, wsm_strerror(rc));
}

static void *job_main(void *arg)
{
	struct job *job = arg;
	char msg[96];
	size_t s;
	int t;

	if (!pause_ms(job->owner, GRACE_MS))
		goto out;
	for (s = 0; s < STAGE_COUNT; s++) {
		const struct stage *st = &stages[s];

		for (t = 0; t < st->ticks; t++) {
			if (job->fail && s == FAIL_STAGE && t == FAIL_TICK) {
				send_error(job, "resize failed: simulated "
						"decoder error (the job was "
						"started with \"fail\": true)");
				goto out;
			}
			describe(job, s, t, msg, sizeof(msg));
			send_progress(job,
				      st->from + (st->to - st->from) *
							 (t + 1) / st->ticks,
				      msg, st->name);
			if (!pause_ms(job->owner, TICK_MS))
				goto out;
		}
	}
	send_complete(job);
out:
	atomic_store(&job->done, true);
	return NULL;
}

/* ---- the pool ------------------------------------------------------ */

struct jobs *jobs_new(wsm_manager_t *m, unsigned max_jobs)
{
	struct jobs *jobs;
	pthread_condattr_t ca;

	if (max_jobs == 0 ||
	    !(jobs = calloc(1, sizeof(*jobs) + max_jobs * sizeof(struct job))))
		return NULL;
	jobs->m = m;
	jobs->cap = max_jobs;
	pthread_mutex_init(&jobs->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&jobs->wake, &ca);
	pthread_condattr_destroy(&ca);
	return jobs;
}

static bool stopping(struct jobs *jobs)
{
	bool s;

	pthread_mutex_lock(&jobs->lock);
	s = jobs->stopping;
	pthread_mutex_unlock(&jobs->lock);
	return s;
}

/* Joins finished workers; their threads are exiting, so this is quick. */
static void reap(struct jobs *jobs)
{
	unsigned i;

	for (i = 0; i < jobs->cap; i++) {
		struct job *job = &jobs->slots[i];

		if (job->used && atomic_load(&job->done)) {
			pthread_join(job->thread, NULL);
			job->used = false;
		}
	}
}

int jobs_start(struct jobs *jobs, const char *id, bool fail,
	       char id_out[JOBS_ID_SIZE])
{
	struct job *job = NULL;
	unsigned i;

	if (stopping(jobs))
		return JOBS_STOPPING;
	reap(jobs);
	for (i = 0; i < jobs->cap && !job; i++)
		if (!jobs->slots[i].used)
			job = &jobs->slots[i];
	if (!job)
		return JOBS_FULL;

	memset(job, 0, sizeof(*job));
	job->owner = jobs;
	job->fail = fail;
	if (id)
		snprintf(job->id, sizeof(job->id), "%s", id);
	else if (random_id(job->id))
		return JOBS_SYSTEM;
	if (random_bytes(&job->seed, sizeof(job->seed)))
		return JOBS_SYSTEM;
	pick_image(job);
	atomic_init(&job->done, false);
	if (pthread_create(&job->thread, NULL, job_main, job) != 0)
		return JOBS_SYSTEM;
	job->used = true;
	memcpy(id_out, job->id, sizeof(job->id));
	return JOBS_OK;
}

void jobs_destroy(struct jobs *jobs)
{
	unsigned i;

	if (!jobs)
		return;
	pthread_mutex_lock(&jobs->lock);
	jobs->stopping = true;
	pthread_cond_broadcast(&jobs->wake);
	pthread_mutex_unlock(&jobs->lock);

	for (i = 0; i < jobs->cap; i++) {
		if (jobs->slots[i].used) {
			pthread_join(jobs->slots[i].thread, NULL);
			jobs->slots[i].used = false;
		}
	}
	pthread_cond_destroy(&jobs->wake);
	pthread_mutex_destroy(&jobs->lock);
	free(jobs);
}
