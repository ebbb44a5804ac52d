/*
 * render: what building one broadcast costs on the calling thread, against
 * its baseline, jansson building and writing the same object (what libwsm
 * did before 1.1: an object model, a malloc per value, a dump).
 *
 * libwsm's figure is a whole wsm_broadcast_progress() call on a manager
 * with no lws context (argument checks, the render, the message's malloc,
 * the inbox lock); each round's messages are dropped before the next, by
 * destroying the manager, outside the timing. Prints one JSON line:
 * nanoseconds per call, medians over the rounds.
 *
 *   render [--calls N] [--rounds R]
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wsm.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double libwsm_round(int calls, int error)
{
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	char text[32];
	double t0, t1;
	int i, err;

	wsm_config_set_int(cfg, WSM_OPT_INBOX_CAPACITY, calls + 1);
	m = wsm_manager_new(cfg, &err);
	wsm_config_free(cfg);
	if (!m)
		exit(1);
	t0 = now_ns();
	for (i = 0; i < calls; i++) {
		snprintf(text, sizeof(text), "t=%d", i);
		if (error ? wsm_broadcast_error(m, "session-0123456789", text)
			  : wsm_broadcast_progress(m, "session-0123456789",
						   (i % 10001) / 100.0, text,
						   "encoding"))
			exit(1);
	}
	t1 = now_ns();
	wsm_manager_destroy(m);
	return (t1 - t0) / calls;
}

static double jansson_round(int calls)
{
	char text[32], out[512];
	double t0, t1;
	int i;

	t0 = now_ns();
	for (i = 0; i < calls; i++) {
		json_t *o;

		snprintf(text, sizeof(text), "t=%d", i);
		o = json_pack("{s:s, s:s, s:f, s:s, s:s, s:I}", "type", "progress",
			      "sessionId", "session-0123456789", "progress",
			      (i % 10001) / 100.0, "message", text, "stage",
			      "encoding", "timestamp", (json_int_t)1796131772066);
		if (!o || !json_dumpb(o, out, sizeof(out),
				      JSON_COMPACT | JSON_PRESERVE_ORDER |
					      JSON_REAL_PRECISION(15)))
			exit(1);
		json_decref(o);
	}
	t1 = now_ns();
	return (t1 - t0) / calls;
}

int main(int argc, char **argv)
{
	int calls = 200000, rounds = 7, i;
	double *p, *e, *j;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--calls"))
			calls = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
	}
	if (calls < 1 || rounds < 1 || rounds > 1000)
		return 2;
	p = calloc((size_t)rounds, sizeof(*p));
	e = calloc((size_t)rounds, sizeof(*e));
	j = calloc((size_t)rounds, sizeof(*j));
	if (!p || !e || !j)
		return 1;
	for (i = 0; i < rounds; i++) {
		p[i] = libwsm_round(calls, 0);
		e[i] = libwsm_round(calls, 1);
		j[i] = jansson_round(calls);
	}
	printf("{\"calls\":%d,\"rounds\":%d,\"progress_ns\":%.0f,"
	       "\"error_ns\":%.0f,\"jansson_progress_ns\":%.0f}\n",
	       calls, rounds, median(p, rounds), median(e, rounds),
	       median(j, rounds));
	free(p);
	free(e);
	free(j);
	return 0;
}
