/*
 * redis_prod: cluster mode on Redis as production runs it (#23), in one
 * run. Three figures, each over fresh Redis processes per repetition:
 *
 *  failover  one primary, one replica, three redis-sentinel; nodes A and B
 *            on the redis-sentinel:// URL; a browser on A follows a session
 *            B broadcasts to every 10 ms. SIGKILL of the primary at t0; the
 *            time to the browser's first message broadcast after t0, and
 *            Sentinel's own part (promotion, the first Sentinel and a
 *            majority naming the new primary), and each node's link.
 *  wedge     A through a relay that stops passing published messages to
 *            its subscriber at t0 (PING replies still pass), B direct; the
 *            same time, with the default WSM_OPT_CLUSTER_PROBE_MS, and
 *            whether the probe or a command timeout found it.
 *  cpu       one node, no browser, broadcasting to 100 sessions over TLS
 *            with AUTH, plain TCP with AUTH, and plain TCP without a
 *            password; this process's CPU per broadcast Redis confirmed.
 *
 * Reuses the tests' support code (tests/support/): the Redis processes
 * die with this process, and every wait is bounded.
 */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <wsm.h>

#include "support/cluster_node.h"
#include "support/redis_proxy.h"
#include "support/redis_sentinel.h"
#include "support/redis_server.h"
#include "support/session_client.h"
#include "support/tls_files.h"

/* What a production host would set; every other option is the default. */
#define TIMEOUT_MS 1000
#define RETRY_MAX_MS 1000
#define PERIOD_MS 10         /* node B's broadcast period */
#define FOLLOW_LIMIT_MS 30000 /* a repetition that takes longer failed */
#define PASSWORD "bench-pw"
#define MAX_REPS 15
#define MAX_RUNS (2 * MAX_REPS) /* the wedge's, timeouts included */

/* ---- time, statistics ---------------------------------------------------- */

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
	struct timespec ts = { (time_t)(ms / 1e3),
			       (long)(fmod(ms, 1e3) * 1e6) };

	nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median, min and max of the figures that are not NaN (failed runs). */
struct stat3 {
	double med, min, max;
	int n;
};

static struct stat3 stat_of(const double *v, int n)
{
	double s[MAX_RUNS];
	struct stat3 r = { NAN, NAN, NAN, 0 };
	int i;

	for (i = 0; i < n && i < MAX_RUNS; i++)
		if (!isnan(v[i]))
			s[r.n++] = v[i];
	if (!r.n)
		return r;
	qsort(s, (size_t)r.n, sizeof(s[0]), cmp_double);
	r.med = r.n % 2 ? s[r.n / 2] : (s[r.n / 2 - 1] + s[r.n / 2]) / 2;
	r.min = s[0];
	r.max = s[r.n - 1];
	return r;
}

static void print_stat(const char *label, const char *unit, const double *v,
		       int n, const char *fmt)
{
	struct stat3 s = stat_of(v, n);
	char med[32], min[32], max[32];

	snprintf(med, sizeof(med), fmt, s.med);
	snprintf(min, sizeof(min), fmt, s.min);
	snprintf(max, sizeof(max), fmt, s.max);
	printf("| %s | %s %s [%s–%s] | %d of %d |\n", label, med, unit, min,
	       max, s.n, n);
}

/* "[a,b,...]" into buf, null for a failed repetition. */
static const char *json_list(char *buf, size_t size, const double *v, int n)
{
	size_t used = 0;
	int i;

	used += (size_t)snprintf(buf + used, size - used, "[");
	for (i = 0; i < n && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used,
					 isnan(v[i]) ? "%snull" : "%s%.3f",
					 i ? "," : "", isnan(v[i]) ? 0.0 : v[i]);
	if (used < size)
		snprintf(buf + used, size - used, "]");
	return buf;
}

/* ---- node B's producer, the browser on node A ------------------------------ */

/*
 * Broadcasts a progress to one session every PERIOD_MS, each tagged
 * "k=<n>" with n from next, which the measuring thread reads to know
 * which broadcasts came after t0. Owned by the thread that starts it.
 */
struct producer {
	harness_t *h;
	const char *session;
	atomic_uint next;
	atomic_bool stop;
	atomic_uint refused; /* calls that returned an error */
	pthread_t thread;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct timespec at;

	clock_gettime(CLOCK_MONOTONIC, &at);
	while (!atomic_load(&p->stop)) {
		unsigned k = atomic_fetch_add(&p->next, 1);
		char text[32];

		snprintf(text, sizeof(text), "k=%u", k);
		if (wsm_broadcast_progress(harness_mgr(p->h), p->session,
					   (double)(k % 100), text, NULL))
			atomic_fetch_add(&p->refused, 1);
		at.tv_nsec += PERIOD_MS * 1000000L;
		if (at.tv_nsec >= 1000000000L) {
			at.tv_sec++;
			at.tv_nsec -= 1000000000L;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
	}
	return NULL;
}

static int producer_start(struct producer *p, harness_t *h,
			  const char *session)
{
	p->h = h;
	p->session = session;
	atomic_init(&p->next, 0);
	atomic_init(&p->stop, false);
	atomic_init(&p->refused, 0);
	return pthread_create(&p->thread, NULL, produce, p) ? -1 : 0;
}

static void producer_stop(struct producer *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	if (atomic_load(&p->refused))
		fprintf(stderr, "%s: %u broadcasts refused\n", p->session,
			atomic_load(&p->refused));
}

/* What the browser saw after t0. */
struct followed {
	double first_ms;  /* first progress with k >= k0; NaN: none in time */
	double reset_ms;  /* first "reset"; NaN: none */
	unsigned resets;
};

/*
 * One message: its type into type, and k of a progress (-1 otherwise).
 * 1 on a message, 0 on a timeout, -1 when the connection is gone.
 */
static int next_message(wsc_t *c, int timeout_ms, char *type, size_t size,
			long *k)
{
	char *text = NULL;
	size_t len = 0;
	int rc = wsc_recv(c, &text, &len, timeout_ms);
	json_t *j;
	const char *t, *msg;

	*k = -1;
	type[0] = '\0';
	if (rc != 1)
		return rc == 0 ? 0 : -1;
	j = json_loadb(text, len, 0, NULL);
	free(text);
	if (!j)
		return 1;
	t = json_string_value(json_object_get(j, "type"));
	snprintf(type, size, "%s", t ? t : "");
	msg = json_string_value(json_object_get(j, "message"));
	if (t && !strcmp(t, "progress") && msg && !strncmp(msg, "k=", 2))
		*k = strtol(msg + 2, NULL, 10);
	json_decref(j);
	return 1;
}

/* Reads until a progress with k >= k0 arrives, at most limit_ms after t0. */
static struct followed follow(wsc_t *c, long k0, double t0, int limit_ms)
{
	struct followed f = { NAN, NAN, 0 };
	char type[32];
	long k;

	for (;;) {
		double left = t0 + limit_ms - mono_ms();
		int rc;

		if (left <= 0)
			return f;
		rc = next_message(c, (int)left + 1, type, sizeof(type), &k);
		if (rc < 0)
			return f;
		if (rc == 0)
			continue;
		if (!strcmp(type, "reset")) {
			if (!f.resets++)
				f.reset_ms = mono_ms() - t0;
			continue;
		}
		if (k >= k0) {
			f.first_ms = mono_ms() - t0;
			return f;
		}
	}
}

/* Reads (and drops) for ms; 0 if at least one progress came, else -1. */
static int read_for(wsc_t *c, double ms)
{
	double end = mono_ms() + ms;
	char type[32];
	long k;
	int got = 0;

	for (;;) {
		double left = end - mono_ms();

		if (left <= 0)
			return got ? 0 : -1;
		if (next_message(c, (int)left + 1, type, sizeof(type), &k) < 0)
			return -1;
		if (k >= 0)
			got = 1;
	}
}

static harness_t *prod_node(const char *url, const char *id,
			    const char *password, const char *ca_file)
{
	struct cluster_node_opts o = { .timeout_ms = TIMEOUT_MS,
				       .retry_max_ms = RETRY_MAX_MS,
				       .password = password,
				       .ca_file = ca_file };

	return cluster_node_start(url, id, &o);
}

/* A browser on a, live: it has seen one of the producer's progresses. */
static wsc_t *live_browser(harness_t *a, const char *session)
{
	wsc_t *c = join_and_wait(a, session, NULL);

	if (c && read_for(c, 2000)) {
		wsc_free(c);
		return NULL;
	}
	return c;
}

/* ---- 1. failover --------------------------------------------------------- */

/*
 * Watches the deployment and the nodes from t0: when the replica's ROLE
 * first says master, when the first Sentinel and then a majority name it,
 * and when each node's link is up again after it went down. Reads the
 * deployment only; the main thread leaves it alone meanwhile.
 */
struct watch {
	const struct sentinel_env *e;
	harness_t *node[2]; /* A, B */
	int new_primary;
	double t0;
	/* From t0; NaN: not within the limit. */
	double promoted_ms, first_ms, majority_ms, up_ms[2];
	bool down[2];
	_Atomic double stop_at; /* the main thread may bring it forward */
	pthread_t thread;
};

/* How many live Sentinels name data node which as primary. */
static int naming(const struct sentinel_env *e, int which)
{
	char words[128], addr[64], *nl;
	int k, n = 0;

	snprintf(words, sizeof(words), "SENTINEL get-master-addr-by-name %s",
		 e->name);
	for (k = 0; k < 3; k++)
		if (e->sentinel_pid[k] &&
		    !sentinel_env_cmd(e, -1 - k, words, addr, sizeof(addr)) &&
		    (nl = strchr(addr, '\n')) &&
		    atoi(nl + 1) == e->data_port[which])
			n++;
	return n;
}

static bool watch_done(const struct watch *w)
{
	return !isnan(w->promoted_ms) && !isnan(w->majority_ms) &&
	       !isnan(w->up_ms[0]) && !isnan(w->up_ms[1]);
}

static void *watch_failover(void *arg)
{
	struct watch *w = arg;
	char role[512];
	int i, n;

	while (mono_ms() < atomic_load(&w->stop_at) && !watch_done(w)) {
		for (i = 0; i < 2; i++) {
			bool up = harness_metrics(w->node[i]).cluster_link_up;

			if (!up)
				w->down[i] = true;
			else if (w->down[i] && isnan(w->up_ms[i]))
				w->up_ms[i] = mono_ms() - w->t0;
		}
		if (isnan(w->promoted_ms) &&
		    !sentinel_env_cmd(w->e, w->new_primary, "ROLE", role,
				      sizeof(role)) &&
		    !strncmp(role, "master\n", 7))
			w->promoted_ms = mono_ms() - w->t0;
		if (isnan(w->majority_ms) &&
		    (n = naming(w->e, w->new_primary)) > 0) {
			if (isnan(w->first_ms))
				w->first_ms = mono_ms() - w->t0;
			if (n >= 2)
				w->majority_ms = mono_ms() - w->t0;
		}
		sleep_ms(2);
	}
	return NULL;
}

struct failover_rep {
	double client_ms, reset_ms;
	double promoted_ms, first_ms, majority_ms, up_ms[2];
	uint64_t reconnects_a;
};

static int failover_once(int rep, struct failover_rep *out)
{
	struct sentinel_env e;
	struct producer p;
	struct watch w = { 0 };
	struct followed f;
	harness_t *a = NULL, *b = NULL;
	wsc_t *c = NULL;
	char ida[32], idb[32];
	wsm_metrics_t m0, m1;
	int was, rc = -1;
	long k0;

	if (sentinel_env_start(&e, NULL)) {
		fprintf(stderr, "failover %d: the Sentinel deployment did not "
				"start\n", rep);
		return -1;
	}
	snprintf(ida, sizeof(ida), "fo%d-a", rep);
	snprintf(idb, sizeof(idb), "fo%d-b", rep);
	a = prod_node(e.url, ida, NULL, NULL);
	b = a ? prod_node(e.url, idb, NULL, NULL) : NULL;
	if (!b || producer_start(&p, b, "failover")) {
		fprintf(stderr, "failover %d: a node did not come up\n", rep);
		goto out;
	}
	c = live_browser(a, "failover");
	/* t0 falls at another point of Sentinel's 500 ms ping period each time. */
	if (!c || read_for(c, 1000 + 100 * rep) ||
	    (was = sentinel_env_primary(&e)) < 0) {
		fprintf(stderr, "failover %d: the browser is not live\n", rep);
		goto stop;
	}
	m0 = harness_metrics(a);
	w.e = &e;
	w.node[0] = a;
	w.node[1] = b;
	w.new_primary = 1 - was;
	w.promoted_ms = w.first_ms = w.majority_ms = NAN;
	w.up_ms[0] = w.up_ms[1] = NAN;
	w.t0 = mono_ms();
	atomic_init(&w.stop_at, w.t0 + FOLLOW_LIMIT_MS);
	sentinel_env_kill_data(&e, was, SIGKILL);
	/* Reaped: every k from here on was broadcast with the primary dead. */
	k0 = (long)atomic_load(&p.next);
	if (pthread_create(&w.thread, NULL, watch_failover, &w))
		goto stop;
	f = follow(c, k0, w.t0, FOLLOW_LIMIT_MS);
	/* What it has not seen by now came after the browser's message. */
	atomic_store(&w.stop_at, mono_ms() + 3000);
	pthread_join(w.thread, NULL);
	m1 = harness_metrics(a);
	out->client_ms = f.first_ms;
	out->reset_ms = f.reset_ms;
	out->promoted_ms = w.promoted_ms;
	out->first_ms = w.first_ms;
	out->majority_ms = w.majority_ms;
	out->up_ms[0] = w.up_ms[0];
	out->up_ms[1] = w.up_ms[1];
	out->reconnects_a = m1.cluster_reconnects - m0.cluster_reconnects;
	rc = isnan(f.first_ms) ? -1 : 0;
	if (rc)
		fprintf(stderr, "failover %d: no message after t0 within %d ms\n",
			rep, FOLLOW_LIMIT_MS);
stop:
	producer_stop(&p);
out:
	wsc_free(c);
	if (b)
		harness_stop(b);
	if (a)
		harness_stop(a);
	sentinel_env_stop(&e);
	return rc;
}

static void run_failover(int reps, FILE *json)
{
	double client[MAX_REPS], majority[MAX_REPS], first[MAX_REPS],
		promoted[MAX_REPS], share[MAX_REPS], up_a[MAX_REPS],
		up_b[MAX_REPS];
	char l1[256], l2[256], l3[256], l4[256], l5[256];
	int i;

	printf("\n## 1. Failover: SIGKILL of the Sentinel-managed primary\n\n");
	printf("Milliseconds from t0 (the SIGKILL). The deployment is "
	       "tests/support/redis_sentinel.c's: quorum 2, "
	       "down-after-milliseconds 1000, failover-timeout 2000, "
	       "ping/hello periods 500 ms, INFO every 1000 ms.\n\n");
	printf("| rep | browser's first message broadcast after t0 | "
	       "replica's ROLE says master | first Sentinel names it | "
	       "majority names it | A's link up | B's link up | "
	       "browser − majority | browser's first reset | A's reconnects |\n"
	       "|---|---|---|---|---|---|---|---|---|---|\n");
	for (i = 0; i < reps; i++) {
		struct failover_rep r = { NAN, NAN, NAN, NAN, NAN, { NAN, NAN },
					  0 };

		failover_once(i, &r);
		client[i] = r.client_ms;
		majority[i] = r.majority_ms;
		first[i] = r.first_ms;
		promoted[i] = r.promoted_ms;
		up_a[i] = r.up_ms[0];
		up_b[i] = r.up_ms[1];
		share[i] = r.client_ms - r.majority_ms;
		printf("| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | "
		       "%+.0f | %.0f | %llu |\n",
		       i + 1, r.client_ms, promoted[i], first[i], majority[i],
		       up_a[i], up_b[i], share[i], r.reset_ms,
		       (unsigned long long)r.reconnects_a);
		fflush(stdout);
	}
	printf("\n| figure | median [min–max] | runs |\n|---|---|---|\n");
	print_stat("t0 → browser's first message broadcast after t0", "ms",
		   client, reps, "%.0f");
	print_stat("t0 → replica promoted (ROLE master)", "ms", promoted,
		   reps, "%.0f");
	print_stat("t0 → the first Sentinel names the new primary", "ms",
		   first, reps, "%.0f");
	print_stat("t0 → a majority of Sentinels name the new primary", "ms",
		   majority, reps, "%.0f");
	print_stat("t0 → node A's link up again", "ms", up_a, reps, "%.0f");
	print_stat("t0 → node B's link up again", "ms", up_b, reps, "%.0f");
	print_stat("browser − majority (libwsm's share)", "ms", share, reps,
		   "%+.0f");
	fprintf(json, "\"failover\":{\"client_ms\":%s,\"majority_ms\":%s,"
		      "\"first_sentinel_ms\":%s,\"promoted_ms\":%s,"
		      "\"b_up_ms\":%s},",
		json_list(l1, sizeof(l1), client, reps),
		json_list(l2, sizeof(l2), majority, reps),
		json_list(l3, sizeof(l3), first, reps),
		json_list(l4, sizeof(l4), promoted, reps),
		json_list(l5, sizeof(l5), up_b, reps));
}

/* ---- 2. wedge ------------------------------------------------------------ */

struct wedge_rep {
	double client_ms;
	uint64_t wedged, losses, reconnects;
};

static int wedge_once(int rep, struct wedge_rep *out)
{
	struct redis_server r;
	struct redis_proxy *px = NULL;
	struct producer p;
	struct followed f;
	harness_t *a = NULL, *b = NULL;
	wsc_t *c = NULL;
	char ida[32], idb[32];
	wsm_metrics_t m0, m1;
	double t0;
	long k0;
	int rc = -1;

	if (redis_start(&r, false)) {
		fprintf(stderr, "wedge %d: redis-server did not start\n", rep);
		return -1;
	}
	snprintf(ida, sizeof(ida), "wedge%d-a", rep);
	snprintf(idb, sizeof(idb), "wedge%d-b", rep);
	if (!(px = proxy_start(&r)) ||
	    !(a = prod_node(proxy_url(px), ida, NULL, NULL)) ||
	    !(b = prod_node(r.url, idb, NULL, NULL)) ||
	    producer_start(&p, b, "wedge")) {
		fprintf(stderr, "wedge %d: a node did not come up\n", rep);
		goto out;
	}
	/*
	 * The probe ticks every quarter of WSM_OPT_CLUSTER_PROBE_MS (1.25 s):
	 * t0 falls at another point of it each time.
	 */
	if (!(c = live_browser(a, "wedge")) ||
	    read_for(c, 1000 + 250 * (rep % 5))) {
		fprintf(stderr, "wedge %d: the browser is not live\n", rep);
		goto stop;
	}
	m0 = harness_metrics(a);
	t0 = mono_ms();
	proxy_mute(px, true);
	k0 = (long)atomic_load(&p.next);
	f = follow(c, k0, t0, FOLLOW_LIMIT_MS);
	m1 = harness_metrics(a);
	out->client_ms = f.first_ms;
	out->wedged = m1.cluster_wedged - m0.cluster_wedged;
	out->losses = m1.cluster_link_losses - m0.cluster_link_losses;
	out->reconnects = m1.cluster_reconnects - m0.cluster_reconnects;
	rc = isnan(f.first_ms) ? -1 : 0;
	if (rc)
		fprintf(stderr, "wedge %d: no message after t0 within %d ms\n",
			rep, FOLLOW_LIMIT_MS);
stop:
	producer_stop(&p);
out:
	wsc_free(c);
	if (b)
		harness_stop(b);
	if (a)
		harness_stop(a);
	if (px)
		proxy_stop(px);
	redis_stop(&r);
	return rc;
}

/*
 * The relay drops a whole read that carries a published message: a PING
 * reply that Redis wrote in the same batch goes with it, and the command
 * timeout, not the probe, ends the link. Such runs are shown and set
 * aside; runs go on until reps were found by the probe (at most twice
 * reps in all).
 */
static void run_wedge(int reps, FILE *json)
{
	double client[MAX_RUNS], by_probe[MAX_RUNS], by_timeout[MAX_RUNS];
	char l1[512], l2[512];
	int i, probed = 0, runs = 0;

	printf("\n## 2. Wedge: the relay stops passing published messages to "
	       "A's subscriber (PING replies pass)\n\n");
	printf("| run | browser's first message broadcast after t0 | "
	       "cluster_wedged (Δ) | cluster_link_losses (Δ) | "
	       "cluster_reconnects (Δ) | found by |\n"
	       "|---|---|---|---|---|---|\n");
	for (i = 0; i < 2 * reps && probed < reps; i++, runs++) {
		struct wedge_rep r = { NAN, 0, 0, 0 };
		bool probe;

		wedge_once(i, &r);
		probe = !isnan(r.client_ms) && r.wedged == 1;
		client[i] = r.client_ms;
		by_probe[i] = probe ? r.client_ms : NAN;
		by_timeout[i] = probe ? NAN : r.client_ms;
		probed += probe;
		printf("| %d | %.0f ms | %llu | %llu | %llu | %s |\n", i + 1,
		       r.client_ms, (unsigned long long)r.wedged,
		       (unsigned long long)r.losses,
		       (unsigned long long)r.reconnects,
		       isnan(r.client_ms) ? "(failed)"
		       : probe		  ? "the probe"
					  : "a command timeout");
		fflush(stdout);
	}
	printf("\n| figure | median [min–max] | runs |\n|---|---|---|\n");
	print_stat("t0 → browser's first message, found by the probe", "ms",
		   by_probe, runs, "%.0f");
	print_stat("t0 → browser's first message, every run", "ms", client,
		   runs, "%.0f");
	fprintf(json, "\"wedge\":{\"by_probe_ms\":%s,\"by_timeout_ms\":%s},",
		json_list(l1, sizeof(l1), by_probe, runs),
		json_list(l2, sizeof(l2), by_timeout, runs));
}

/* ---- 3. CPU per broadcast ------------------------------------------------- */

struct variant {
	const char *name;
	const struct redis_server *r;
	const char *url, *password, *ca_file;
	double proc_us[MAX_REPS], thread_us[MAX_REPS], redis_us[MAX_REPS];
	double rate[MAX_REPS], rtt_us[MAX_REPS];
	double others[MAX_REPS]; /* % of a core the rest of the machine used */
};

static double tv_us(struct timeval tv)
{
	return (double)tv.tv_sec * 1e6 + (double)tv.tv_usec;
}

/* User + system CPU of this whole process: every node thread is in it. */
static double process_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return tv_us(ru.ru_utime) + tv_us(ru.ru_stime);
}

/* Runs on the node's service thread (harness_call): its own CPU time. */
static void service_cpu(harness_t *h, void *arg)
{
	struct timespec ts;

	(void)h;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	*(double *)arg = (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* A process's user + system CPU from /proc (clock ticks), NaN if unread. */
static double pid_cpu_us(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return NAN;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15, counted after the ")" that ends the name. */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		return NAN;
	return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/*
 * The machine's busy CPU time, all cores, from /proc/stat (clock ticks):
 * what else ran during a window is this less the window's own.
 */
static double machine_busy_us(void)
{
	unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return NAN;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user,
		   &nice, &sys, &idle, &iowait, &irq, &softirq, &steal);
	fclose(f);
	if (n != 8)
		return NAN;
	return (double)(user + nice + sys + irq + softirq + steal) * 1e6 /
	       (double)sysconf(_SC_CLK_TCK);
}

static uint64_t publishes(harness_t *h)
{
	return harness_metrics(h).cluster_publishes;
}

/*
 * rounds rounds of one progress to each session, each round waiting until
 * Redis confirmed all of it: one publish in flight per session (so none
 * replaces another in the outbox), all sessions' pipelined. 0, or -1 when
 * a call is refused or a round is not confirmed within 10 s.
 */
static int broadcast_rounds(harness_t *h, char (*ids)[16], int sessions,
			    int rounds, unsigned *k)
{
	uint64_t want = publishes(h);
	int i, s;

	for (i = 0; i < rounds; i++) {
		double deadline = mono_ms() + 10000;

		for (s = 0; s < sessions; s++, (*k)++) {
			char text[32];

			snprintf(text, sizeof(text), "k=%u", *k);
			if (wsm_broadcast_progress(harness_mgr(h), ids[s],
						   (double)(*k % 100), text,
						   NULL))
				return -1;
		}
		want += (uint64_t)sessions;
		while (publishes(h) < want) {
			if (mono_ms() > deadline)
				return -1;
			sleep_ms(0.1);
		}
	}
	return 0;
}

static int cpu_once(struct variant *v, int rep, int sessions, int total)
{
	char id[48], ids[256][16], out[64];
	double p0, p1, s0 = NAN, s1 = NAN, r0, r1, w0, w1, b0, b1;
	wsm_metrics_t m0, m1;
	harness_t *h;
	unsigned k = 0;
	int s, rc = -1;

	/* Each repetition creates its sessions' state afresh. */
	if (redis_cmd(v->r, "FLUSHALL", out, sizeof(out)) || strcmp(out, "+OK"))
		return -1;
	/* A node id of letters, digits and dashes. */
	snprintf(id, sizeof(id), "cpu%d-%s", rep, v->name);
	for (s = 0; id[s]; s++)
		if (id[s] == '+' || id[s] == ' ' || id[s] == ',')
			id[s] = '-';
	if (!(h = prod_node(v->url, id, v->password, v->ca_file))) {
		fprintf(stderr, "cpu %s %d: the node did not come up\n", v->name,
			rep);
		return -1;
	}
	for (s = 0; s < sessions; s++)
		snprintf(ids[s], sizeof(ids[s]), "s%d", s);
	/* Warm-up: the sessions' state exists, the buffers have grown. */
	if (broadcast_rounds(h, ids, sessions, 10, &k))
		goto out;
	m0 = harness_metrics(h);
	harness_call(h, service_cpu, &s0);
	r0 = pid_cpu_us(v->r->pid);
	b0 = machine_busy_us();
	p0 = process_cpu_us();
	w0 = mono_ms();
	if (broadcast_rounds(h, ids, sessions, total / sessions, &k))
		goto out;
	w1 = mono_ms();
	p1 = process_cpu_us();
	b1 = machine_busy_us();
	r1 = pid_cpu_us(v->r->pid);
	harness_call(h, service_cpu, &s1);
	m1 = harness_metrics(h);
	{
		double n = (double)(m1.cluster_publishes - m0.cluster_publishes);

		v->proc_us[rep] = (p1 - p0) / n;
		v->thread_us[rep] = (s1 - s0) / n;
		v->redis_us[rep] = (r1 - r0) / n;
		v->rate[rep] = n / (w1 - w0) * 1e3;
		v->rtt_us[rep] = (double)(m1.cluster_publish_rtt_sum_us -
					  m0.cluster_publish_rtt_sum_us) / n;
		v->others[rep] = ((b1 - b0) - (p1 - p0) - (r1 - r0)) /
				 ((w1 - w0) * 1e3) * 100;
		if (m1.cluster_publish_failures != m0.cluster_publish_failures)
			fprintf(stderr, "cpu %s %d: %llu publishes sent again\n",
				v->name, rep,
				(unsigned long long)(m1.cluster_publish_failures -
						     m0.cluster_publish_failures));
	}
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "cpu %s %d: a round was not confirmed\n", v->name,
			rep);
	harness_stop(h);
	return rc;
}

static void print_variant_row(const struct variant *v, int reps)
{
	struct stat3 p = stat_of(v->proc_us, reps),
		     t = stat_of(v->thread_us, reps),
		     r = stat_of(v->redis_us, reps),
		     q = stat_of(v->rate, reps), rt = stat_of(v->rtt_us, reps),
		     o = stat_of(v->others, reps);

	printf("| %s | %.2f µs [%.2f–%.2f] | %.2f µs [%.2f–%.2f] | "
	       "%.1f µs [%.1f–%.1f] | %.0f/s [%.0f–%.0f] | %.0f µs [%.0f–%.0f] "
	       "| %.0f %% [%.0f–%.0f] | %d of %d |\n",
	       v->name, p.med, p.min, p.max, t.med, t.min, t.max, r.med, r.min,
	       r.max, q.med, q.min, q.max, rt.med, rt.min, rt.max, o.med, o.min,
	       o.max, p.n, reps);
}

static void run_cpu(int reps, int sessions, int total, FILE *json)
{
	struct redis_options ro = { .password = PASSWORD };
	struct redis_server secured, open;
	struct tls_files t;
	struct variant v[3];
	char l1[256], l2[256], l3[256];
	int i, j, nv = 3;

	printf("\n## 3. CPU per broadcast: TLS + AUTH against plain TCP\n\n");
	if (tls_files_make(&t)) {
		printf("openssl could not make the certificates: skipped\n");
		return;
	}
	ro.tls = &t;
	if (redis_start_with(&secured, true, &ro)) {
		printf("redis-server with TLS did not start: skipped\n");
		tls_files_remove(&t);
		return;
	}
	if (redis_start(&open, true)) {
		printf("the password-less redis-server did not start: skipped\n");
		redis_stop(&secured);
		tls_files_remove(&t);
		return;
	}
	v[0] = (struct variant){ .name = "TLS+AUTH", .r = &secured,
				 .url = secured.tls_url, .password = PASSWORD,
				 .ca_file = t.ca };
	v[1] = (struct variant){ .name = "plain+AUTH", .r = &secured,
				 .url = secured.url, .password = PASSWORD };
	v[2] = (struct variant){ .name = "plain, no password", .r = &open,
				 .url = open.url };
	for (i = 0; i < nv; i++)
		for (j = 0; j < MAX_REPS; j++)
			v[i].proc_us[j] = v[i].thread_us[j] = v[i].redis_us[j] =
				v[i].rate[j] = v[i].rtt_us[j] =
					v[i].others[j] = NAN;
	printf("%d broadcasts per repetition (%d rounds of one progress to "
	       "each of %d sessions, each round confirmed before the next), "
	       "after 10 rounds of warm-up; variants alternate, the order "
	       "reversed every other repetition.\n",
	       total / sessions * sessions, total / sessions, sessions);
	printf("TLS+AUTH: %s (TLS 1.3 as negotiated, CA checked, no client "
	       "certificate); plain+AUTH: %s, the same redis-server; plain, no "
	       "password: %s, a second redis-server.\n\n",
	       secured.tls_url, secured.url, open.url);
	for (j = 0; j < reps; j++)
		for (i = 0; i < nv; i++)
			cpu_once(&v[j % 2 ? nv - 1 - i : i], j, sessions, total);
	printf("| variant | this process's CPU per broadcast | node's service "
	       "thread | redis-server's CPU per broadcast | confirmed/s | "
	       "publish round trip | the rest of the machine | runs |\n"
	       "|---|---|---|---|---|---|---|---|\n");
	for (i = 0; i < nv; i++)
		print_variant_row(&v[i], reps);
	printf("\nThe rest of the machine: CPU used during the window by "
	       "anything but this process and that redis-server, in %% of one "
	       "core (/proc/stat, 10 ms ticks); far from 0, the CPU figures are "
	       "another program's noise.\n");
	{
		double ratio[MAX_REPS], ratio_open[MAX_REPS],
			ratio_thr[MAX_REPS];
		struct stat3 a, b, c;

		for (j = 0; j < reps; j++) {
			ratio[j] = v[0].proc_us[j] / v[1].proc_us[j];
			ratio_open[j] = v[0].proc_us[j] / v[2].proc_us[j];
			ratio_thr[j] = v[0].thread_us[j] / v[1].thread_us[j];
		}
		a = stat_of(v[0].proc_us, reps);
		b = stat_of(v[1].proc_us, reps);
		c = stat_of(v[2].proc_us, reps);
		printf("\nTLS+AUTH / plain+AUTH, process CPU: %.2f (of the "
		       "medians); per repetition: median %.2f [%.2f–%.2f]\n",
		       a.med / b.med, stat_of(ratio, reps).med,
		       stat_of(ratio, reps).min, stat_of(ratio, reps).max);
		printf("TLS+AUTH / plain+AUTH, service thread: %.2f "
		       "(per repetition, median)\n",
		       stat_of(ratio_thr, reps).med);
		printf("TLS+AUTH / plain without password, process CPU: %.2f "
		       "(of the medians); per repetition: median %.2f\n",
		       a.med / c.med, stat_of(ratio_open, reps).med);
		fprintf(json, "\"cpu\":{\"broadcasts\":%d,\"sessions\":%d,"
			      "\"tls_auth_us\":%s,\"plain_auth_us\":%s,"
			      "\"plain_us\":%s,\"ratio_tls_plain_auth\":%.3f},",
			total / sessions * sessions, sessions,
			json_list(l1, sizeof(l1), v[0].proc_us, reps),
			json_list(l2, sizeof(l2), v[1].proc_us, reps),
			json_list(l3, sizeof(l3), v[2].proc_us, reps),
			a.med / b.med);
	}
	redis_stop(&open);
	redis_stop(&secured);
	tls_files_remove(&t);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: redis_prod [--reps N] [--only failover|wedge|cpu]... "
		"[--broadcasts N] [--sessions N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int reps = 5, sessions = 100, total = 20000, i;
	bool only = false, want[3] = { false, false, false };
	static const char *const parts[3] = { "failover", "wedge", "cpu" };
	char *json = NULL;
	size_t json_len = 0;
	FILE *js;

	for (i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--reps"))
			reps = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--broadcasts"))
			total = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--sessions"))
			sessions = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--only")) {
			int p;

			only = true;
			for (p = 0; p < 3 && strcmp(argv[i + 1], parts[p]); p++)
				;
			if (p == 3)
				usage();
			want[p] = true;
			i++;
		} else
			usage();
	}
	if (reps < 1 || reps > MAX_REPS || sessions < 1 || sessions > 256 ||
	    total < sessions)
		usage();
	if (!only)
		want[0] = want[1] = want[2] = true;
	if (!redis_server_path()) {
		printf("redis-server is not installed: nothing to measure\n");
		return 77;
	}
	/* A relay or a node writing to a socket its peer closed. */
	signal(SIGPIPE, SIG_IGN);
	if (!(js = open_memstream(&json, &json_len)))
		return 1;
	printf("# redis_prod: cluster mode on production-style Redis (#23)\n\n");
	printf("libwsm 0x%06x; nodes: WSM_OPT_CLUSTER_TIMEOUT_MS %d, "
	       "WSM_OPT_CLUSTER_RETRY_MAX_MS %d, every other option its default "
	       "(WSM_OPT_CLUSTER_PROBE_MS 5000); %d repetitions; each figure "
	       "median [min–max].\n",
	       wsm_version(), TIMEOUT_MS, RETRY_MAX_MS, reps);
	fprintf(js, "{\"timeout_ms\":%d,\"retry_max_ms\":%d,\"reps\":%d,",
		TIMEOUT_MS, RETRY_MAX_MS, reps);
	if (want[0]) {
		if (redis_sentinel_path())
			run_failover(reps, js);
		else
			printf("\nredis-sentinel is not installed: no failover\n");
	}
	if (want[1])
		run_wedge(reps, js);
	if (want[2])
		run_cpu(reps, sessions, total, js);
	fprintf(js, "\"done\":true}");
	fclose(js);
	printf("\nJSON %s\n", json);
	free(json);
	return 0;
}
