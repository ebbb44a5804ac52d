/*
 * chaos_node: one libwsm cluster node as a process, for tests/chaos/chaos.py.
 *
 * It serves WebSockets on 127.0.0.1:<port> with a manager in cluster mode,
 * and runs one producer thread (a host's job runs on a worker thread) that
 * owns the jobs given with --job and broadcasts to them on their schedule:
 * progress calls, then exactly one terminal (complete, or error) per job.
 *
 * Everything it does goes to an append-only log, one line per write(2) (no
 * stdio buffer, so a kill -9 keeps every line written). All times are
 * CLOCK_MONOTONIC nanoseconds, the clock Python's time.monotonic_ns() reads.
 *
 *   S <inc> <t> <pid>                       an incarnation starts
 *   B <inc> <call> <kind> <session> <idx> <rc> <t_start> <t_end>
 *                                           one broadcast call, kind p/c/e
 *   C <inc> <call> <t>                      every call of <inc> numbered up
 *                                           to <call> is confirmed (below)
 *   M <inc> <t> <key=value ...>             metrics, every second
 *   E <inc> <t> up|down|drained             the manager's events
 *   E <inc> <t> dropped <session>           destroy dropped its broadcasts
 *   T <inc> <t> sigterm                     SIGTERM (or SIGINT) seen
 *   D <inc> <t> <drain_rc> <wait_rc> <outbox_msgs> <outbox_bytes>
 *                                           after wsm_drain() and the wait
 *   X <inc> <t> <outbox_msgs> <outbox_bytes> just before the clean exit
 *
 * Confirmation. A broadcast call reserves its room in the cluster outbox on
 * the calling thread, before it returns, and the room is released when
 * Redis confirms the publish (or when a newer progress supersedes a waiting
 * one: latest wins). So when the outbox reads empty (cluster_outbox_messages
 * and cluster_outbox_bytes both 0) after call N has returned, every call up
 * to N has been confirmed by Redis or superseded by a later call that was.
 * A thread samples that every 20 ms and logs "C". Calls after the last "C"
 * of an incarnation that ended by kill -9 may legitimately be lost (wsm(7):
 * the outbox is in the node's memory).
 *
 * Message contents name the call, so that the checker can map every message
 * a client saw to the exact line of this log:
 *   progress: message "g<inc> c<call> i<idx>"
 *   complete: metadata {"g":<inc>,"c":<call>}
 *   error:    error "g<inc> c<call> failed"
 *
 * A restarted node (same --log) resumes its jobs from the log: after a
 * clean exit (an X line) from the call after the last one it made; after a
 * crash, from the first call of that incarnation that no C line covers, so
 * a job's unconfirmed progress and terminal are made again (with the new
 * incarnation's numbers). Each job has one terminal: once one is confirmed,
 * or accepted before a clean exit, the job is done.
 *
 * On SIGTERM: the producer stops, wsm_drain(), wsm_drain_wait(), the
 * outbox's state is logged, the manager and the context are destroyed, exit
 * 0. That is the documented shutdown; it does not wait for the outbox.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <wsm.h>

#define MAX_JOBS 256

struct job {
	char id[65];
	int64_t start_ms;    /* after --t0-ms */
	int steps;           /* progress calls before the terminal */
	int64_t interval_ms; /* between two calls */
	char terminal;       /* 'c' or 'e' */
	/* Where it stands (the producer thread's only). */
	int next_idx;        /* progress index next; steps: the terminal */
	bool done;
	int64_t due_ns;
};

static struct job jobs[MAX_JOBS];
static int njobs;
static int log_fd = -1;
static unsigned inc;
static int64_t t0_ns;
static wsm_manager_t *mgr;
static struct lws_context *ctx;
static atomic_bool stop_requested, producer_stop, marker_stop, drained;
static atomic_uint_fast64_t calls_returned;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One line, one write(2). */
static void logf_line(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(log_fd, buf + off, (size_t)(n - off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += w;
	}
}

/* ---- resuming from the log ---------------------------------------------- */

struct logcall {
	unsigned inc;
	uint64_t call;
	char kind;
	int job;
	int idx;
	int rc;
};

static int find_job(const char *id)
{
	for (int i = 0; i < njobs; i++)
		if (!strcmp(jobs[i].id, id))
			return i;
	return -1;
}

/* Applies incarnation g's calls (in call order) and, if it crashed, rolls
 * back what its last C line does not cover. */
static void apply_incarnation(const struct logcall *c, size_t n,
			      uint64_t confirmed, bool clean)
{
	for (size_t i = 0; i < n; i++) {
		struct job *j = &jobs[c[i].job];

		if (c[i].kind == 'p') {
			if (c[i].idx + 1 > j->next_idx)
				j->next_idx = c[i].idx + 1;
			if (j->next_idx > j->steps)
				j->next_idx = j->steps;
		} else if (c[i].rc == 0) {
			j->done = true;
			j->next_idx = j->steps;
		}
	}
	if (clean)
		return;
	for (size_t i = 0; i < n; i++) {
		struct job *j = &jobs[c[i].job];

		if (c[i].call <= confirmed || c[i].rc != 0)
			continue;
		if (c[i].kind == 'p') {
			if (c[i].idx < j->next_idx)
				j->next_idx = c[i].idx;
		} else {
			j->done = false;
		}
	}
}

static int cmp_call(const void *a, const void *b)
{
	const struct logcall *x = a, *y = b;

	return x->call < y->call ? -1 : x->call > y->call;
}

/* Reads the log a previous incarnation left; returns the incarnations. */
static unsigned resume_from_log(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	struct logcall *calls = NULL;
	size_t ncalls = 0, cap = 0;
	unsigned cur = 0, seen = 0;
	uint64_t confirmed = 0;
	bool clean = false, any = false;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned g;
		char kind, sess[128];
		unsigned long long call;
		int idx, rc;

		if (line[0] == 'S' && sscanf(line, "S %u", &g) == 1) {
			if (any) {
				qsort(calls, ncalls, sizeof(*calls), cmp_call);
				apply_incarnation(calls, ncalls, confirmed,
						  clean);
			}
			any = true;
			cur = g;
			seen++;
			ncalls = 0;
			confirmed = 0;
			clean = false;
		} else if (line[0] == 'B' &&
			   sscanf(line, "B %u %llu %c %127s %d %d", &g, &call,
				  &kind, sess, &idx, &rc) == 6 &&
			   g == cur) {
			int jn = find_job(sess);

			if (jn < 0)
				continue;
			if (ncalls == cap) {
				cap = cap ? cap * 2 : 1024;
				calls = realloc(calls, cap * sizeof(*calls));
				if (!calls) {
					fprintf(stderr, "out of memory\n");
					exit(1);
				}
			}
			calls[ncalls++] = (struct logcall){ g, call, kind, jn,
							    idx, rc };
		} else if (line[0] == 'C' &&
			   sscanf(line, "C %u %llu", &g, &call) == 2 &&
			   g == cur) {
			if (call > confirmed)
				confirmed = call;
		} else if (line[0] == 'X' && sscanf(line, "X %u", &g) == 1 &&
			   g == cur) {
			clean = true;
		}
	}
	if (any) {
		qsort(calls, ncalls, sizeof(*calls), cmp_call);
		apply_incarnation(calls, ncalls, confirmed, clean);
	}
	free(calls);
	fclose(f);
	return seen;
}

/* ---- the producer --------------------------------------------------------- */

static int64_t clamp_sleep(int64_t ns)
{
	return ns > 50000000 ? 50000000 : ns;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

	if (ns > 0)
		nanosleep(&ts, NULL);
}

static void *producer(void *arg)
{
	uint64_t call = 0;
	int64_t now = now_ns();

	(void)arg;
	for (int i = 0; i < njobs; i++) {
		int64_t start = t0_ns + jobs[i].start_ms * 1000000;

		/* On schedule, or at once where a restart left it behind. */
		jobs[i].due_ns = start + (int64_t)jobs[i].next_idx *
					 jobs[i].interval_ms * 1000000;
		if (jobs[i].next_idx > 0 && jobs[i].due_ns < now)
			jobs[i].due_ns = now;
	}
	while (!atomic_load(&producer_stop)) {
		struct job *j = NULL;
		char text[96], meta[64];
		int64_t ts, te;
		int rc, idx;
		char kind;

		for (int i = 0; i < njobs; i++)
			if (!jobs[i].done && (!j || jobs[i].due_ns < j->due_ns))
				j = &jobs[i];
		now = now_ns();
		if (!j) {
			sleep_ns(50000000);
			continue;
		}
		if (j->due_ns > now) {
			sleep_ns(clamp_sleep(j->due_ns - now));
			continue;
		}
		idx = j->next_idx;
		call++;
		ts = now_ns();
		if (idx < j->steps) {
			kind = 'p';
			snprintf(text, sizeof(text), "g%u c%" PRIu64 " i%d", inc,
				 call, idx);
			rc = wsm_broadcast_progress(mgr, j->id,
						    100.0 * idx / j->steps,
						    text, "chaos");
		} else if (j->terminal == 'e') {
			kind = 'e';
			snprintf(text, sizeof(text), "g%u c%" PRIu64 " failed",
				 inc, call);
			rc = wsm_broadcast_error(mgr, j->id, text);
		} else {
			kind = 'c';
			snprintf(meta, sizeof(meta), "{\"g\":%u,\"c\":%" PRIu64 "}",
				 inc, call);
			rc = wsm_broadcast_complete(mgr, j->id, meta);
		}
		te = now_ns();
		logf_line("B %u %" PRIu64 " %c %s %d %d %" PRId64 " %" PRId64, inc,
			  call, kind, j->id, idx, rc, ts, te);
		atomic_store(&calls_returned, call);
		if (kind == 'p') {
			/* A refused progress is skipped: a newer one follows. */
			j->next_idx++;
			j->due_ns += j->interval_ms * 1000000;
			if (j->due_ns < te - 1000000000)
				j->due_ns = te; /* no burst after a stall */
		} else if (rc == 0) {
			j->done = true;
		} else {
			j->due_ns = te + 100000000; /* a terminal is retried */
		}
	}
	return NULL;
}

/* ---- confirmation markers and metrics ------------------------------------ */

static void *marker(void *arg)
{
	uint64_t marked = 0;
	int64_t last_m = 0;

	(void)arg;
	while (!atomic_load(&marker_stop)) {
		uint64_t n = atomic_load(&calls_returned);
		wsm_metrics_t mt;
		int64_t t;

		memset(&mt, 0, sizeof(mt));
		mt.size = sizeof(mt);
		if (wsm_metrics(mgr, &mt) == 0) {
			t = now_ns();
			if (n > marked && mt.cluster_outbox_messages == 0 &&
			    mt.cluster_outbox_bytes == 0) {
				logf_line("C %u %" PRIu64 " %" PRId64, inc, n, t);
				marked = n;
			}
			if (t - last_m >= 1000000000) {
				last_m = t;
				logf_line("M %u %" PRId64 " link_up=%" PRIu64
					  " publishes=%" PRIu64
					  " publish_failures=%" PRIu64
					  " gap_repairs=%" PRIu64
					  " epoch_resets=%" PRIu64
					  " outbox_msgs=%" PRIu64
					  " outbox_bytes=%" PRIu64
					  " reconnects=%" PRIu64
					  " connections=%" PRIu64
					  " subscribed=%" PRIu64
					  " bad_messages=%" PRIu64
					  " coalesced=%" PRIu64
					  " resets=%" PRIu64,
					  inc, t, mt.cluster_link_up,
					  mt.cluster_publishes,
					  mt.cluster_publish_failures,
					  mt.cluster_gap_repairs,
					  mt.cluster_epoch_resets,
					  mt.cluster_outbox_messages,
					  mt.cluster_outbox_bytes,
					  mt.cluster_reconnects, mt.connections,
					  mt.cluster_subscribed,
					  mt.cluster_bad_messages, mt.coalesced,
					  mt.resets);
			}
		}
		sleep_ns(20000000);
	}
	return NULL;
}

/* ---- the service loop ------------------------------------------------------ */

static void on_event(void *user, wsm_event_t event, uint64_t conn_id,
		     const char *session_id, wsm_close_cause_t cause)
{
	(void)user;
	(void)conn_id;
	(void)session_id;
	(void)cause;
	switch (event) {
	case WSM_EVENT_CLUSTER_UP:
		logf_line("E %u %" PRId64 " up", inc, now_ns());
		break;
	case WSM_EVENT_CLUSTER_DOWN:
		logf_line("E %u %" PRId64 " down", inc, now_ns());
		break;
	case WSM_EVENT_CLUSTER_DROPPED:
		/* wsm_manager_destroy() telling what it could not get out. */
		logf_line("E %u %" PRId64 " dropped %s", inc, now_ns(),
			  session_id);
		break;
	case WSM_EVENT_DRAINED:
		logf_line("E %u %" PRId64 " drained", inc, now_ns());
		atomic_store(&drained, true);
		if (ctx)
			lws_cancel_service(ctx);
		break;
	default:
		break;
	}
}

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT) {
			atomic_store(&stop_requested, true);
			if (ctx)
				lws_cancel_service(ctx);
			return NULL;
		}
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: chaos_node --port N --redis URL --node-id ID --log PATH\n"
		"  [--job id:start_ms:steps:interval_ms:c|e]... [--t0-ms MS]\n"
		"  [--timeout-ms MS] [--retry-max-ms MS] [--history N]\n"
		"  [--replicas N]\n"
		"  [--lifetime-ms MS] [--drain-window-ms MS]\n"
		"  [--ping-ms MS] [--stale-ms MS]\n");
	exit(2);
}

static int64_t num(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0')
		usage();
	return v;
}

static void add_job(const char *spec)
{
	struct job *j;
	char kind;
	long long start, interval;
	int steps;

	if (njobs == MAX_JOBS)
		usage();
	j = &jobs[njobs];
	memset(j, 0, sizeof(*j));
	if (sscanf(spec, "%64[A-Za-z0-9_-]:%lld:%d:%lld:%c", j->id, &start,
		   &steps, &interval, &kind) != 5 ||
	    steps < 1 || interval < 1 || start < 0 ||
	    (kind != 'c' && kind != 'e'))
		usage();
	j->start_ms = start;
	j->steps = steps;
	j->interval_ms = interval;
	j->terminal = kind;
	njobs++;
}

int main(int argc, char **argv)
{
	const char *redis = NULL, *node_id = NULL, *log_path = NULL;
	int64_t port = 0, timeout_ms = 500, retry_ms = 1000, history = 0;
	int64_t replicas = 0;
	int64_t lifetime_ms = 15000, window_ms = 500, ping_ms = 1000;
	int64_t stale_ms = 4000, t0_ms = -1;
	struct lws_context_creation_info info;
	static const struct lws_protocols protocols[] = {
		{ "http", lws_callback_http_dummy, 0, 0, 0, NULL, 0 },
		{ NULL, NULL, 0, 0, 0, NULL, 0 }
	};
	pthread_t prod, mark, sigt;
	sigset_t set;
	wsm_config_t *cfg;
	wsm_metrics_t mt;
	int err, drain_rc, wait_rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--port"))
			port = num(v);
		else if (!strcmp(a, "--redis"))
			redis = v;
		else if (!strcmp(a, "--node-id"))
			node_id = v;
		else if (!strcmp(a, "--log"))
			log_path = v;
		else if (!strcmp(a, "--job"))
			add_job(v);
		else if (!strcmp(a, "--t0-ms"))
			t0_ms = num(v);
		else if (!strcmp(a, "--timeout-ms"))
			timeout_ms = num(v);
		else if (!strcmp(a, "--retry-max-ms"))
			retry_ms = num(v);
		else if (!strcmp(a, "--history"))
			history = num(v);
		else if (!strcmp(a, "--replicas"))
			replicas = num(v);
		else if (!strcmp(a, "--lifetime-ms"))
			lifetime_ms = num(v);
		else if (!strcmp(a, "--drain-window-ms"))
			window_ms = num(v);
		else if (!strcmp(a, "--ping-ms"))
			ping_ms = num(v);
		else if (!strcmp(a, "--stale-ms"))
			stale_ms = num(v);
		else
			usage();
	}
	if (!redis || !node_id || !log_path || port <= 0 || port > 65535)
		usage();
	t0_ns = t0_ms >= 0 ? t0_ms * 1000000 : now_ns();

	inc = resume_from_log(log_path);
	log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (log_fd < 0) {
		perror(log_path);
		return 1;
	}
	logf_line("S %u %" PRId64 " %d", inc, now_ns(), (int)getpid());

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	cfg = wsm_config_new();
	if (!cfg)
		return 1;
#define SET_INT(o, v)                                                        \
	do {                                                                 \
		if ((err = wsm_config_set_int(cfg, o, v))) {                 \
			fprintf(stderr, "%s: %s (%s)\n", #o, wsm_strerror(err), \
				wsm_error_detail());                         \
			return 1;                                            \
		}                                                            \
	} while (0)
#define SET_STR(o, v)                                                        \
	do {                                                                 \
		if ((err = wsm_config_set_str(cfg, o, v))) {                 \
			fprintf(stderr, "%s: %s (%s)\n", #o, wsm_strerror(err), \
				wsm_error_detail());                         \
			return 1;                                            \
		}                                                            \
	} while (0)
	SET_STR(WSM_OPT_CLUSTER_REDIS, redis);
	SET_STR(WSM_OPT_CLUSTER_NODE_ID, node_id);
	SET_INT(WSM_OPT_CLUSTER_TIMEOUT_MS, timeout_ms);
	SET_INT(WSM_OPT_CLUSTER_RETRY_MAX_MS, retry_ms);
	SET_INT(WSM_OPT_CLUSTER_HISTORY, history);
	SET_INT(WSM_OPT_CLUSTER_REPLICAS, replicas);
	SET_INT(WSM_OPT_RETENTION_MS, 3600000);
	SET_INT(WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 1000);
	SET_INT(WSM_OPT_MAX_LIFETIME_MS, lifetime_ms);
	SET_INT(WSM_OPT_PING_INTERVAL_MS, ping_ms);
	SET_INT(WSM_OPT_STALE_TIMEOUT_MS, stale_ms);
	SET_INT(WSM_OPT_CLOSE_GRACE_MS, 1000);
	SET_INT(WSM_OPT_SWEEP_INTERVAL_MS, 1000);
	wsm_config_set_event_cb(cfg, on_event, NULL);
	mgr = wsm_manager_new(cfg, &err);
	wsm_config_free(cfg);
	if (!mgr) {
		fprintf(stderr, "wsm_manager_new: %s (%s)\n", wsm_strerror(err),
			wsm_error_detail());
		return 1;
	}
	memset(&info, 0, sizeof(info));
	info.port = (int)port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	if ((err = wsm_setup_info(mgr, &info))) {
		fprintf(stderr, "wsm_setup_info: %s\n", wsm_strerror(err));
		return 1;
	}

	/* Signals go to one thread; the loop is woken from there. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	ctx = lws_create_context(&info);
	if (!ctx) {
		fprintf(stderr, "lws_create_context failed (port %d)\n",
			(int)port);
		wsm_manager_destroy(mgr);
		return 1;
	}
	if (pthread_create(&sigt, NULL, signal_thread, &set) ||
	    pthread_create(&mark, NULL, marker, NULL) ||
	    pthread_create(&prod, NULL, producer, NULL)) {
		fprintf(stderr, "pthread_create failed\n");
		return 1;
	}
	while (!atomic_load(&stop_requested) && lws_service(ctx, 0) >= 0)
		continue;

	logf_line("T %u %" PRId64 " sigterm", inc, now_ns());
	atomic_store(&producer_stop, true);
	pthread_join(prod, NULL);
	drain_rc = wsm_drain(mgr, window_ms);
	wait_rc = drain_rc >= 0 ? wsm_drain_wait(mgr, window_ms + 3000) : 0;
	memset(&mt, 0, sizeof(mt));
	mt.size = sizeof(mt);
	wsm_metrics(mgr, &mt);
	logf_line("D %u %" PRId64 " %d %d %" PRIu64 " %" PRIu64, inc, now_ns(),
		  drain_rc, wait_rc, mt.cluster_outbox_messages,
		  mt.cluster_outbox_bytes);
	atomic_store(&marker_stop, true);
	pthread_join(mark, NULL);
	memset(&mt, 0, sizeof(mt));
	mt.size = sizeof(mt);
	wsm_metrics(mgr, &mt);
	logf_line("X %u %" PRId64 " %" PRIu64 " %" PRIu64, inc, now_ns(),
		  mt.cluster_outbox_messages, mt.cluster_outbox_bytes);
	wsm_manager_destroy(mgr);
	lws_context_destroy(ctx);
	close(log_fd);
	return 0;
}
