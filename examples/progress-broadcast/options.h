/* Command line of progress-broadcast. */
#ifndef PROGRESS_BROADCAST_OPTIONS_H
#define PROGRESS_BROADCAST_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <wsm.h>

#define OPTIONS_DEFAULT_PORT 7681

struct options {
	int port;                /* --port, 0 for any free port */
	unsigned duration_s;     /* --duration, 0 for until a signal */
	bool demo;               /* --demo */
	unsigned max_jobs;       /* --max-jobs: jobs running at once */
	int64_t drain_ms;        /* --drain-ms: window of the graceful drain */
	int64_t close_grace_ms;  /* --close-grace-ms, also given to cfg */
	const char *state_dir;   /* --state-dir, or NULL: jobs not kept */
	const char *admin_token; /* --admin-token or $WSM_ADMIN_TOKEN, or NULL */
	const char *tls_cert;    /* --tls-cert and --tls-key, both or neither */
	const char *tls_key;
};

enum options_result {
	OPTIONS_RUN = 0,  /* go ahead */
	OPTIONS_DONE = 1, /* --help was printed: exit 0 */
	OPTIONS_BAD = 2   /* an error was printed: exit 2 */
};

/*
 * Parses argv into *out, and every libwsm manager option straight into cfg
 * with wsm_config_set_int() and wsm_config_set_str(). Strings in *out point
 * into argv or the environment. Returns an options_result.
 */
int options_parse(int argc, char **argv, struct options *out,
		  wsm_config_t *cfg);

#endif
