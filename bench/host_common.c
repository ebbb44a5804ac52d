/* See host_common.h. */
#include "host_common.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* Under callgrind (--collect-atstart=no) with BENCH_CALLGRIND=1 in the
 * environment, reports 1 and 2 open and close the measured window. */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif

volatile long host_producer_calls, host_producer_overruns;

static volatile sig_atomic_t sig_stop, sig_report;
static atomic_bool producer_stop; /* set by SIGUSR2 too */
static pthread_t producer;
static bool producer_running;
static int report_no;
static int64_t t_start;
static bool done;
static struct lws_context *live_ctx;
static uv_loop_t loop;
static uv_timer_t tick_timer;
static uv_signal_t usr1;
static lws_sorted_usec_list_t tick_sul;
static struct host *H;

int64_t host_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--port N] [--sessions N] [--rate R] [--subticks N]\n"
		"  [--loop poll|uv] [--rx BYTES] [--ping MS] [--stale MS]\n"
		"  [--lifetime MS] [--max-conns N] [--per-session N] "
		"[--queue N]\n"
		"  [--retention MS] [--lws-validity 0/1] [--duration S]\n"
		"  [--max-per-ip N] [--max-upgrade-rate N]\n"
		"  [--producer thread|loop] [--redis URL] [--node-id ID]\n"
		"  [--cluster-history N]\n",
		prog);
	exit(2);
}

void host_parse(int argc, char **argv, struct host_opts *o, const char *prog)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->sessions = 2000;
	o->rate = 10;
	o->subticks = 1;
	o->rx = -1;
	o->ping_ms = o->stale_ms = o->lifetime_ms = -1;
	o->max_conns = 100000;
	o->per_session = 16;
	o->queue = -1;
	o->retention_ms = -1;
	o->max_per_ip = o->max_upgrade_rate = -1;
	o->duration = 600;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage(prog);
		i++;
		if (!strcmp(a, "--port"))
			o->port = atoi(v);
		else if (!strcmp(a, "--sessions"))
			o->sessions = atoi(v);
		else if (!strcmp(a, "--rate"))
			o->rate = atof(v);
		else if (!strcmp(a, "--subticks"))
			o->subticks = atoi(v);
		else if (!strcmp(a, "--loop")) {
			if (!strcmp(v, "uv"))
				o->uv = true;
			else if (strcmp(v, "poll"))
				usage(prog);
		} else if (!strcmp(a, "--rx"))
			o->rx = atoi(v);
		else if (!strcmp(a, "--ping"))
			o->ping_ms = atol(v);
		else if (!strcmp(a, "--stale"))
			o->stale_ms = atol(v);
		else if (!strcmp(a, "--lifetime"))
			o->lifetime_ms = atol(v);
		else if (!strcmp(a, "--max-conns"))
			o->max_conns = atol(v);
		else if (!strcmp(a, "--per-session"))
			o->per_session = atol(v);
		else if (!strcmp(a, "--queue"))
			o->queue = atol(v);
		else if (!strcmp(a, "--retention"))
			o->retention_ms = atol(v);
		else if (!strcmp(a, "--max-per-ip"))
			o->max_per_ip = atol(v);
		else if (!strcmp(a, "--max-upgrade-rate"))
			o->max_upgrade_rate = atol(v);
		else if (!strcmp(a, "--lws-validity"))
			o->lws_validity = atoi(v) != 0;
		else if (!strcmp(a, "--duration"))
			o->duration = atof(v);
		else if (!strcmp(a, "--redis"))
			o->redis = v;
		else if (!strcmp(a, "--node-id"))
			o->node_id = v;
		else if (!strcmp(a, "--cluster-history"))
			o->cluster_history = atol(v);
		else if (!strcmp(a, "--producer")) {
			if (!strcmp(v, "loop"))
				o->on_loop = true;
			else if (strcmp(v, "thread"))
				usage(prog);
		}
		else
			usage(prog);
	}
	if (o->sessions < 1 || o->subticks < 1 || o->rate < 0 ||
	    o->duration <= 0)
		usage(prog);
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		sig_report = 1;
	else if (sig == SIGUSR2)
		atomic_store(&producer_stop, true); /* lock-free: signal-safe */
	else
		sig_stop = 1;
}

static long rss_bytes(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6)) {
			kb = atol(line + 6);
			break;
		}
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

void host_print_report(struct host *h)
{
	struct rusage ru;
	char extra[2048];
	double ut, st;

#ifdef HAVE_CALLGRIND
	{
		static int cg = -1;

		if (cg < 0)
			cg = getenv("BENCH_CALLGRIND") != NULL;
		if (cg && (report_no == 1 || report_no == 2))
			CALLGRIND_TOGGLE_COLLECT;
	}
#endif
	getrusage(RUSAGE_SELF, &ru);
	ut = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	st = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	extra[0] = 0;
	if (h->report)
		h->report(h->user, extra, sizeof(extra));
	printf("REPORT {\"n\":%d,\"t_s\":%.3f,\"cpu_s\":%.4f,\"utime_s\":%.4f,"
	       "\"stime_s\":%.4f,\"rss\":%ld,\"producer_calls\":%ld,"
	       "\"producer_overruns\":%ld,\"ctx_switches\":%ld%s}\n",
	       report_no++, (double)(host_now_ns() - t_start) / 1e9, ut + st,
	       ut, st, rss_bytes(), host_producer_calls,
	       host_producer_overruns, ru.ru_nvcsw + ru.ru_nivcsw, extra);
	fflush(stdout);
}

/* The producer's schedule, on whichever thread runs it. */
static struct {
	int64_t step, next;
	unsigned long tick;
	double progress;
} sched;
static lws_sorted_usec_list_t produce_sul;

static void sched_init(struct host *h)
{
	sched.step = (int64_t)(1e9 / h->o.rate) / h->o.subticks;
	if (sched.step < 1)
		sched.step = 1;
	sched.next = host_now_ns() + sched.step;
}

/* One sub-tick's broadcasts: the sessions s = k mod subticks. */
static void sched_run(struct host *h)
{
	int k = (int)(sched.tick % (unsigned long)h->o.subticks), s;

	sched.progress = sched.progress >= 99.9 ? 0 : sched.progress + 0.1;
	for (s = k; s < h->o.sessions; s += h->o.subticks) {
		h->broadcast(h->user, s, sched.progress, host_now_ns());
		host_producer_calls++;
	}
	sched.tick++;
	sched.next += sched.step;
	if (host_now_ns() > sched.next) {
		host_producer_overruns++;
		sched.next = host_now_ns();
	}
}

static void *producer_main(void *arg)
{
	struct host *h = arg;

	sched_init(h);
	while (!atomic_load(&producer_stop)) {
		struct timespec ts = { (time_t)(sched.next / 1000000000),
				       (long)(sched.next % 1000000000) };

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
				       NULL) == EINTR &&
		       !atomic_load(&producer_stop))
			;
		if (atomic_load(&producer_stop))
			break;
		sched_run(h);
	}
	return NULL;
}

/* --producer loop: the same schedule from an lws timer, on the loop. */
static void on_produce_sul(lws_sorted_usec_list_t *sul)
{
	int64_t wait;

	if (atomic_load(&producer_stop) || done)
		return;
	sched_run(H);
	wait = (sched.next - host_now_ns()) / 1000;
	lws_sul_schedule(H->ctx, 0, sul, on_produce_sul, wait > 0 ? wait : 0);
}

static void producer_stop_join(void)
{
	if (!producer_running)
		return;
	atomic_store(&producer_stop, true);
	pthread_join(producer, NULL);
	producer_running = false;
}

/* Checks the signal flags; true when the host should stop. */
static bool check_flags(struct host *h)
{
	if (sig_report) {
		sig_report = 0;
		host_print_report(h);
	}
	return sig_stop ||
	       (double)(host_now_ns() - t_start) / 1e9 > h->o.duration;
}

static void on_tick_sul(lws_sorted_usec_list_t *sul)
{
	if (check_flags(H)) {
		done = true;
		lws_cancel_service(H->ctx);
		return;
	}
	lws_sul_schedule(H->ctx, 0, sul, on_tick_sul, 100 * LWS_US_PER_MS);
}

static void on_tick_uv(uv_timer_t *t)
{
	struct host *h = t->data;

	if (!check_flags(h) || done)
		return;
	done = true;
	lws_sul_cancel(&produce_sul);
	producer_stop_join();
	host_print_report(h);
	if (h->shutdown)
		h->shutdown(h->user);
	lws_context_destroy(h->ctx);
	uv_timer_stop(&tick_timer);
	uv_close((uv_handle_t *)&tick_timer, NULL);
	uv_signal_stop(&usr1);
	uv_close((uv_handle_t *)&usr1, NULL);
}

static void on_usr1_uv(uv_signal_t *s, int sig)
{
	(void)sig;
	host_print_report(s->data);
}

int host_create_context(struct host *h, struct lws_context_creation_info *info)
{
	static void *foreign[1];
	struct sigaction sa;
	struct rlimit rl;

	H = h;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	info->port = h->o.port;
	info->iface = "127.0.0.1";
	info->pcontext = &live_ctx;
	if (h->o.uv) {
		uv_loop_init(&loop);
		foreign[0] = &loop;
		info->options |= LWS_SERVER_OPTION_LIBUV;
		info->foreign_loops = foreign;
	}
	h->ctx = live_ctx = lws_create_context(info);
	if (!h->ctx) {
		fprintf(stderr, "cannot create the lws context\n");
		return -1;
	}
	t_start = host_now_ns();
	return 0;
}

int host_run(struct host *h)
{
	int port = lws_get_vhost_listen_port(
		lws_get_vhost_by_name(h->ctx, "default"));

	if (h->o.uv) {
		uv_timer_init(&loop, &tick_timer);
		tick_timer.data = h;
		uv_timer_start(&tick_timer, on_tick_uv, 100, 100);
		/* Reports at once when asked, not at the next tick. */
		uv_signal_init(&loop, &usr1);
		usr1.data = h;
		uv_signal_start(&usr1, on_usr1_uv, SIGUSR1);
	} else {
		lws_sul_schedule(h->ctx, 0, &tick_sul, on_tick_sul,
				 100 * LWS_US_PER_MS);
		/* One turn so that protocols are initialised. */
		lws_service(h->ctx, 0);
	}
	printf("READY port=%d pid=%d loop=%s\n", port, (int)getpid(),
	       h->o.uv ? "uv" : "poll");
	host_print_report(h); /* report 0: nothing connected */
	if (h->o.rate > 0 && h->o.on_loop) {
		sched_init(h);
		lws_sul_schedule(h->ctx, 0, &produce_sul, on_produce_sul,
				 sched.step / 1000);
	} else if (h->o.rate > 0) {
		if (pthread_create(&producer, NULL, producer_main, h) == 0)
			producer_running = true;
	}
	if (h->o.uv) {
		uv_run(&loop, UV_RUN_DEFAULT);
		if (live_ctx)
			lws_context_destroy(live_ctx);
		uv_loop_close(&loop);
		return 0;
	}
	while (!done) {
		if (lws_service(h->ctx, 0) < 0)
			break;
		/* A signal interrupts the poll: report at once. */
		if (sig_report) {
			sig_report = 0;
			host_print_report(h);
		}
	}
	lws_sul_cancel(&tick_sul);
	lws_sul_cancel(&produce_sul);
	producer_stop_join();
	host_print_report(h);
	if (h->shutdown)
		h->shutdown(h->user);
	lws_context_destroy(h->ctx);
	return 0;
}
