/*
 * Simulated image jobs. Each runs on its own thread: it waits a moment so a
 * browser can connect, then goes through four stages, broadcasting progress
 * every tick, and ends with a complete message carrying the result's
 * metadata, or with an error. A job told to stop just ends where it is:
 * draining the manager afterwards closes its connections with 1001, which
 * tells the browsers to come back later.
 *
 * The table. Every job has a slot holding its record: what it is (id, seed,
 * whether it fails), where it is (stage, tick, progress, message) and how it
 * ended. Worker threads update their own record under the pool's lock and,
 * with a store, write it to disk after every tick; the service thread reads
 * records for the HTTP API. Slots of finished jobs are kept for the page's
 * list and reused oldest first.
 *
 * Resuming. A record on disk still marked running belongs to a job that a
 * previous run of the server stopped. jobs_resume() starts it again at the
 * tick after the last one it recorded, with the same seed and so the same
 * result: the browsers that were watching it reconnect, are told to reset
 * (the new run's sessions have a new epoch) and follow it to its end.
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
#include "store.h"

#define GRACE_MS 1000 /* before the first progress: time to connect */
#define TICK_MS 100   /* between progress messages */
#define RETRY_MS 10   /* before retrying a final message the inbox refused */
#define HISTORY 64    /* finished jobs kept in the table */

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
#define STAGE_COUNT ((int)(sizeof(stages) / sizeof(stages[0])))
#define FAIL_STAGE 2 /* a failing job fails while resizing, */
#define FAIL_TICK 5  /* half way through */

enum job_state { JOB_RUNNING, JOB_COMPLETE, JOB_FAILED };
static const char *const state_names[] = { "running", "complete", "failed" };

struct job {
	struct jobs *owner;
	bool used;        /* the slot holds a record */
	bool has_thread;  /* a thread not yet joined; jobs_start()'s thread */
	atomic_bool done; /* the thread's last act */
	pthread_t thread;

	/* Set before the thread starts, then read-only. */
	char id[JOBS_ID_SIZE];
	bool fail, resumed;
	uint32_t seed; /* picks the simulated image */
	int width, height;
	double megabytes;
	int64_t started_ms;

	/* Guarded by owner->lock. */
	enum job_state state;
	int stage, tick; /* the next step to run */
	double progress;
	char message[96];
	char metadata[160]; /* JSON object, once complete */
	char error[160];    /* once failed */
	int64_t updated_ms;
	int viewers;
};

struct jobs {
	wsm_manager_t *m;
	struct store *store;
	pthread_mutex_t lock; /* guards stopping and the records */
	pthread_cond_t wake;  /* broadcast when stopping is set */
	bool stopping;
	unsigned max_running, cap;
	struct job slots[];
};

/* ---- time ---------------------------------------------------------- */

static int64_t wall_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

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

/* ---- records ------------------------------------------------------- */

/* The job as the API shows it, or for the store with its private fields. */
static json_t *job_json(const struct job *job, bool for_store)
{
	json_t *o = json_pack(
		"{s:s, s:s, s:f, s:s, s:s, s:b, s:I, s:I}", "sessionId",
		job->id, "state", state_names[job->state], "progress",
		job->progress, "stage",
		job->stage < STAGE_COUNT ? stages[job->stage].name : "done",
		"message", job->message, "resumed", job->resumed, "startedAt",
		(json_int_t)job->started_ms, "updatedAt",
		(json_int_t)job->updated_ms);

	if (!o)
		return NULL;
	if (job->state == JOB_COMPLETE)
		json_object_set_new(o, "metadata",
				    json_loads(job->metadata, 0, NULL));
	if (job->state == JOB_FAILED)
		json_object_set_new(o, "error", json_string(job->error));
	if (for_store) {
		json_object_set_new(o, "fail", json_boolean(job->fail));
		json_object_set_new(o, "seed", json_integer(job->seed));
		json_object_set_new(o, "stageIndex", json_integer(job->stage));
		json_object_set_new(o, "tick", json_integer(job->tick));
	} else {
		json_object_set_new(o, "viewers", json_integer(job->viewers));
	}
	return o;
}

/* The record to save, if there is a store. Caller holds the lock. */
static json_t *record_locked(const struct job *job)
{
	return job->owner->store ? job_json(job, true) : NULL;
}

/* ... and the write itself, outside the lock. */
static void record_save(struct job *job, json_t *rec)
{
	if (rec)
		store_put(job->owner->store, job->id, rec);
	json_decref(rec);
}

/*
 * Moves the job to its next step, or ends it with `final`: the metadata
 * when complete, the error when failed. Saves the record.
 */
static void job_update(struct job *job, int stage, int tick, double progress,
		       const char *message, enum job_state state,
		       const char *final)
{
	json_t *rec;

	if (stage < STAGE_COUNT && tick >= stages[stage].ticks) {
		stage++;
		tick = 0;
	}
	pthread_mutex_lock(&job->owner->lock);
	job->stage = stage;
	job->tick = tick;
	job->progress = progress;
	job->state = state;
	snprintf(job->message, sizeof(job->message), "%s", message);
	if (state == JOB_COMPLETE)
		snprintf(job->metadata, sizeof(job->metadata), "%s", final);
	else if (state == JOB_FAILED)
		snprintf(job->error, sizeof(job->error), "%s", final);
	job->updated_ms = wall_ms();
	rec = record_locked(job);
	pthread_mutex_unlock(&job->owner->lock);
	record_save(job, rec);
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
static void describe(const struct job *job, int s, int tick, char *buf,
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

/* Progress once `tick` ticks of stage `s` are done. */
static double percent(int s, int tick)
{
	if (s >= STAGE_COUNT)
		return 100.0;
	return stages[s].from +
	       (stages[s].to - stages[s].from) * tick / stages[s].ticks;
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
static void finish_error(struct job *job, double pct, const char *error)
{
	int rc;

	job_update(job, FAIL_STAGE, FAIL_TICK, pct, "failed", JOB_FAILED,
		   error);
	while ((rc = wsm_broadcast_error(job->owner->m, job->id, error)) ==
		       WSM_EAGAIN &&
	       pause_ms(job->owner, RETRY_MS))
		continue;
	if (rc != 0)
		lwsl_err("job %s: error: %s\n", job->id, wsm_strerror(rc));
}

static void finish_complete(struct job *job)
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
	job_update(job, STAGE_COUNT, 0, 100.0, "done", JOB_COMPLETE, meta);
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
	int s, t;

	/* Only this thread writes these fields: reading them is safe. */
	s = job->stage;
	t = job->tick;
	if (job->resumed)
		/* Tell whoever reconnects where the job stands, at once. */
		send_progress(job, percent(s, t),
			      "resumed after a server restart",
			      s < STAGE_COUNT ? stages[s].name : "encode");
	if (!pause_ms(job->owner, GRACE_MS))
		goto out;
	for (; s < STAGE_COUNT; s++, t = 0) {
		for (; t < stages[s].ticks; t++) {
			double pct = percent(s, t + 1);

			if (job->fail && s == FAIL_STAGE && t == FAIL_TICK) {
				finish_error(job, percent(s, t),
					     "resize failed: simulated decoder "
					     "error (the job was started with "
					     "\"fail\": true)");
				goto out;
			}
			describe(job, s, t, msg, sizeof(msg));
			send_progress(job, pct, msg, stages[s].name);
			job_update(job, s, t + 1, pct, msg, JOB_RUNNING, NULL);
			if (!pause_ms(job->owner, TICK_MS))
				goto out;
		}
	}
	finish_complete(job);
out:
	atomic_store(&job->done, true);
	return NULL;
}

/* ---- the pool ------------------------------------------------------ */

struct jobs *jobs_new(wsm_manager_t *m, unsigned max_running,
		      struct store *store)
{
	unsigned cap = max_running + HISTORY;
	struct jobs *jobs;
	pthread_condattr_t ca;

	if (max_running == 0 ||
	    !(jobs = calloc(1, sizeof(*jobs) + cap * sizeof(struct job))))
		return NULL;
	jobs->m = m;
	jobs->store = store;
	jobs->max_running = max_running;
	jobs->cap = cap;
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
static unsigned reap(struct jobs *jobs)
{
	unsigned i, running = 0;

	for (i = 0; i < jobs->cap; i++) {
		struct job *job = &jobs->slots[i];

		if (job->has_thread && atomic_load(&job->done)) {
			pthread_join(job->thread, NULL);
			job->has_thread = false;
		}
		running += job->has_thread;
	}
	return running;
}

static struct job *find(struct jobs *jobs, const char *id)
{
	unsigned i;

	for (i = 0; i < jobs->cap; i++)
		if (jobs->slots[i].used && !strcmp(jobs->slots[i].id, id))
			return &jobs->slots[i];
	return NULL;
}

/*
 * A slot for a record last updated at updated_ms: a free one, else that of
 * the finished job updated longest ago (its record is forgotten), if older.
 * Service thread; threads are reaped.
 */
static struct job *free_slot(struct jobs *jobs, int64_t updated_ms)
{
	struct job *oldest = NULL;
	unsigned i;

	for (i = 0; i < jobs->cap; i++) {
		struct job *job = &jobs->slots[i];

		if (!job->used)
			return job;
		if (!job->has_thread && job->state != JOB_RUNNING &&
		    (!oldest || job->updated_ms < oldest->updated_ms))
			oldest = job;
	}
	if (!oldest || oldest->updated_ms > updated_ms)
		return NULL;
	if (jobs->store)
		store_remove(jobs->store, oldest->id);
	pthread_mutex_lock(&jobs->lock);
	oldest->used = false;
	pthread_mutex_unlock(&jobs->lock);
	return oldest;
}

/* Fills a slot under the lock, so that readers never see half a record. */
static void occupy(struct jobs *jobs, struct job *slot, const struct job *rec)
{
	pthread_mutex_lock(&jobs->lock);
	*slot = *rec;
	slot->owner = jobs;
	slot->used = true;
	slot->has_thread = false;
	atomic_init(&slot->done, false);
	pthread_mutex_unlock(&jobs->lock);
}

static int launch(struct job *job)
{
	if (pthread_create(&job->thread, NULL, job_main, job) != 0) {
		pthread_mutex_lock(&job->owner->lock);
		job->used = false;
		pthread_mutex_unlock(&job->owner->lock);
		return JOBS_SYSTEM;
	}
	job->has_thread = true;
	return JOBS_OK;
}

int jobs_start(struct jobs *jobs, const char *id, bool fail,
	       char id_out[JOBS_ID_SIZE])
{
	struct job rec, *slot;
	json_t *saved;

	if (stopping(jobs))
		return JOBS_STOPPING;
	if (reap(jobs) >= jobs->max_running)
		return JOBS_FULL;

	memset(&rec, 0, sizeof(rec));
	rec.fail = fail;
	if (id)
		snprintf(rec.id, sizeof(rec.id), "%s", id);
	else if (random_id(rec.id))
		return JOBS_SYSTEM;
	if (random_bytes(&rec.seed, sizeof(rec.seed)))
		return JOBS_SYSTEM;
	pick_image(&rec);
	rec.state = JOB_RUNNING;
	rec.started_ms = rec.updated_ms = wall_ms();
	snprintf(rec.message, sizeof(rec.message), "waiting to start");

	if ((slot = find(jobs, rec.id))) {
		if (slot->has_thread)
			return JOBS_EXISTS;
	} else if (!(slot = free_slot(jobs, rec.updated_ms))) {
		return JOBS_FULL;
	}
	occupy(jobs, slot, &rec);
	saved = jobs->store ? job_json(slot, true) : NULL;
	record_save(slot, saved);
	if (launch(slot) != JOBS_OK)
		return JOBS_SYSTEM;
	/* Its browsers may come now (--announced-only admits no other id). */
	wsm_session_open(jobs->m, slot->id);
	memcpy(id_out, slot->id, sizeof(slot->id));
	return JOBS_OK;
}

/* ---- resuming ------------------------------------------------------ */

struct loading {
	struct jobs *jobs;
	int resumed;
};

/* A record from the store back into the table; resumes it if unfinished. */
static void load_one(void *arg, const char *id, json_t *o)
{
	struct loading *ld = arg;
	struct jobs *jobs = ld->jobs;
	const char *state = json_string_value(json_object_get(o, "state"));
	const char *msg = json_string_value(json_object_get(o, "message"));
	const char *err = json_string_value(json_object_get(o, "error"));
	json_t *meta = json_object_get(o, "metadata");
	struct job rec, *slot;
	char *meta_text;
	int i;

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.id, sizeof(rec.id), "%s", id);
	for (i = 0; i < 3 && (!state || strcmp(state, state_names[i])); i++)
		continue;
	rec.state = (enum job_state)i;
	rec.fail = json_is_true(json_object_get(o, "fail"));
	rec.seed = (uint32_t)json_integer_value(json_object_get(o, "seed"));
	rec.stage = (int)json_integer_value(json_object_get(o, "stageIndex"));
	rec.tick = (int)json_integer_value(json_object_get(o, "tick"));
	rec.progress = json_number_value(json_object_get(o, "progress"));
	rec.started_ms = json_integer_value(json_object_get(o, "startedAt"));
	rec.updated_ms = json_integer_value(json_object_get(o, "updatedAt"));
	rec.resumed = json_is_true(json_object_get(o, "resumed"));
	snprintf(rec.message, sizeof(rec.message), "%s", msg ? msg : "");
	snprintf(rec.error, sizeof(rec.error), "%s", err ? err : "");
	if (json_is_object(meta) &&
	    (meta_text = json_dumps(meta, JSON_COMPACT))) {
		snprintf(rec.metadata, sizeof(rec.metadata), "%s", meta_text);
		free(meta_text);
	}
	if (i == 3 || rec.stage < 0 || rec.stage > STAGE_COUNT ||
	    rec.tick < 0 ||
	    (rec.stage < STAGE_COUNT && rec.tick >= stages[rec.stage].ticks) ||
	    (rec.state == JOB_COMPLETE && !rec.metadata[0])) {
		lwsl_warn("job %s: record makes no sense: removed\n", id);
		store_remove(jobs->store, id);
		return;
	}
	pick_image(&rec);

	if (rec.state == JOB_RUNNING && reap(jobs) >= jobs->max_running) {
		/* Fewer jobs allowed than last time: say so, honestly. */
		rec.state = JOB_FAILED;
		snprintf(rec.error, sizeof(rec.error),
			 "interrupted by a server restart and not resumed: "
			 "too many jobs (--max-jobs)");
	}
	if (!(slot = free_slot(jobs, rec.updated_ms))) {
		store_remove(jobs->store, id); /* older than all we keep */
		return;
	}
	if (rec.state != JOB_RUNNING) {
		occupy(jobs, slot, &rec);
		record_save(slot, job_json(slot, true));
		return;
	}
	rec.resumed = true;
	rec.updated_ms = wall_ms();
	snprintf(rec.message, sizeof(rec.message),
		 "resumed after a server restart");
	occupy(jobs, slot, &rec);
	record_save(slot, job_json(slot, true));
	if (launch(slot) == JOBS_OK) {
		lwsl_user("job %s resumed at %.0f%%\n", id, rec.progress);
		ld->resumed++;
	}
}

int jobs_resume(struct jobs *jobs)
{
	struct loading ld = { jobs, 0 };

	if (jobs->store)
		store_each(jobs->store, load_one, &ld);
	return ld.resumed;
}

/* ---- reading ------------------------------------------------------- */

json_t *jobs_list_json(struct jobs *jobs)
{
	const struct job **order = malloc(jobs->cap * sizeof(*order));
	json_t *list = json_array();
	unsigned i, j, n = 0;

	if (!list || !order) {
		free(order);
		json_decref(list);
		return NULL;
	}
	pthread_mutex_lock(&jobs->lock);
	for (i = 0; i < jobs->cap; i++) {
		const struct job *job = &jobs->slots[i];

		if (!job->used)
			continue;
		/* Insertion sort, newest first: the table is small. */
		for (j = n++; j > 0 && order[j - 1]->started_ms < job->started_ms;
		     j--)
			order[j] = order[j - 1];
		order[j] = job;
	}
	for (i = 0; i < n; i++)
		json_array_append_new(list, job_json(order[i], false));
	pthread_mutex_unlock(&jobs->lock);
	free(order);
	return json_pack("{s:o}", "jobs", list);
}

json_t *jobs_get_json(struct jobs *jobs, const char *id)
{
	const struct job *job;
	json_t *o = NULL;

	pthread_mutex_lock(&jobs->lock);
	if ((job = find(jobs, id)))
		o = job_json(job, false);
	pthread_mutex_unlock(&jobs->lock);
	return o;
}

void jobs_viewers(struct jobs *jobs, const char *id, int delta)
{
	struct job *job;

	pthread_mutex_lock(&jobs->lock);
	if ((job = find(jobs, id)) && job->viewers + delta >= 0)
		job->viewers += delta;
	pthread_mutex_unlock(&jobs->lock);
}

void jobs_count(struct jobs *jobs, struct jobs_counts *out)
{
	unsigned i;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&jobs->lock);
	for (i = 0; i < jobs->cap; i++) {
		const struct job *job = &jobs->slots[i];

		if (!job->used)
			continue;
		if (job->state == JOB_RUNNING)
			out->running++;
		else if (job->state == JOB_COMPLETE)
			out->complete++;
		else
			out->failed++;
	}
	pthread_mutex_unlock(&jobs->lock);
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
		if (jobs->slots[i].has_thread) {
			pthread_join(jobs->slots[i].thread, NULL);
			jobs->slots[i].has_thread = false;
		}
	}
	pthread_cond_destroy(&jobs->wake);
	pthread_mutex_destroy(&jobs->lock);
	free(jobs);
}
