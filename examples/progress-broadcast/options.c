/* Command line of progress-broadcast; see options.h. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "options.h"

#define PROG "progress-broadcast"
#define DEFAULT_PORT 7681
#define MAX_DURATION_S 31536000 /* a year */

/* Manager options that can be set from the command line. */
static const struct manager_flag {
	const char *name;
	wsm_option_t opt;
	const char *help;
	const char *arg; /* shown in --help */
} manager_flags[] = {
	{ "max-per-session", WSM_OPT_MAX_CONNECTIONS_PER_SESSION,
	  "connections one session may have", "N" },
	{ "max-connections", WSM_OPT_MAX_CONNECTIONS,
	  "connections the manager may hold", "N" },
	{ "ping-interval-ms", WSM_OPT_PING_INTERVAL_MS, "time between pings", "MS" },
	{ "stale-timeout-ms", WSM_OPT_STALE_TIMEOUT_MS,
	  "silence before closing with 4000", "MS" },
	{ "max-lifetime-ms", WSM_OPT_MAX_LIFETIME_MS,
	  "age at which to close with 4001", "MS" },
	{ "sweep-interval-ms", WSM_OPT_SWEEP_INTERVAL_MS,
	  "time between safety-net sweeps", "MS" },
};
#define MANAGER_FLAGS (sizeof(manager_flags) / sizeof(manager_flags[0]))

enum { OPT_DURATION = 256, OPT_DEMO, OPT_MANAGER /* + index */ };

static void usage(FILE *f)
{
	int64_t min, max, def;
	size_t i;

	fprintf(f,
		"usage: " PROG " [options]\n"
		"\n"
		"An HTTP and WebSocket server on 127.0.0.1 that runs simulated "
		"image jobs\n"
		"and broadcasts their progress to browsers with libwsm. Open "
		"the page it\n"
		"serves and press \"Start job\".\n"
		"\n"
		"  -p, --port N                listen on port N (default %d; "
		"0: any free port)\n"
		"      --duration SECONDS      exit cleanly after SECONDS "
		"(default 0: run\n"
		"                              until SIGINT or SIGTERM)\n"
		"      --demo                  start a job with session id "
		"\"demo\" at startup\n"
		"  -h, --help                  show this help and exit\n"
		"\n"
		"libwsm manager options (times in milliseconds):\n",
		DEFAULT_PORT);
	for (i = 0; i < MANAGER_FLAGS; i++) {
		const struct manager_flag *mf = &manager_flags[i];
		char flag[40];

		if (wsm_option_bounds(mf->opt, &min, &max, &def) != 0)
			continue;
		snprintf(flag, sizeof(flag), "--%s %s", mf->name, mf->arg);
		fprintf(f, "      %-22s  %s\n", flag, mf->help);
		fprintf(f,
			"      %-22s  (default %" PRId64 ", %" PRId64
			"..%" PRId64 ")\n",
			"", def, min, max);
	}
}

static int bad_usage(void)
{
	fprintf(stderr, "Try '" PROG " --help'.\n");
	return OPTIONS_BAD;
}

/* A whole decimal integer, or false. */
static bool parse_int(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return end != s && *end == '\0' && errno == 0;
}

static bool parse_in(const char *flag, const char *s, long long min,
		     long long max, long long *out)
{
	if (parse_int(s, out) && *out >= min && *out <= max)
		return true;
	fprintf(stderr, PROG ": --%s: '%s' is not an integer from %lld to %lld\n",
		flag, s, min, max);
	return false;
}

int options_parse(int argc, char **argv, struct options *out,
		  wsm_config_t *cfg)
{
	struct option longopts[4 + MANAGER_FLAGS + 1] = {
		{ "port", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "demo", no_argument, NULL, OPT_DEMO },
		{ "help", no_argument, NULL, 'h' },
	};
	const struct manager_flag *mf;
	long long v;
	size_t i;
	int c, rc;

	for (i = 0; i < MANAGER_FLAGS; i++)
		longopts[4 + i] = (struct option){ manager_flags[i].name,
						   required_argument, NULL,
						   OPT_MANAGER + (int)i };

	out->port = DEFAULT_PORT;
	out->duration_s = 0;
	out->demo = false;

	while ((c = getopt_long(argc, argv, "hp:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return OPTIONS_DONE;
		case 'p':
			if (!parse_in("port", optarg, 0, 65535, &v))
				return OPTIONS_BAD;
			out->port = (int)v;
			break;
		case OPT_DURATION:
			if (!parse_in("duration", optarg, 0, MAX_DURATION_S, &v))
				return OPTIONS_BAD;
			out->duration_s = (unsigned)v;
			break;
		case OPT_DEMO:
			out->demo = true;
			break;
		default:
			if (c < OPT_MANAGER || c >= OPT_MANAGER + (int)MANAGER_FLAGS)
				return bad_usage();
			mf = &manager_flags[c - OPT_MANAGER];
			if (!parse_int(optarg, &v)) {
				fprintf(stderr,
					PROG ": --%s: '%s' is not an integer\n",
					mf->name, optarg);
				return OPTIONS_BAD;
			}
			if ((rc = wsm_config_set_int(cfg, mf->opt, v)) != 0) {
				fprintf(stderr, PROG ": --%s %s: %s\n", mf->name,
					optarg, wsm_strerror(rc));
				return OPTIONS_BAD;
			}
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n",
			argv[optind]);
		return bad_usage();
	}
	return OPTIONS_RUN;
}
