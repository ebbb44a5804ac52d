/* Command line of progress-broadcast. */
#ifndef PROGRESS_BROADCAST_OPTIONS_H
#define PROGRESS_BROADCAST_OPTIONS_H

#include <stdbool.h>

#include <wsm.h>

struct options {
	int port;            /* --port, 0 for any free port */
	unsigned duration_s; /* --duration, 0 for until a signal */
	bool demo;           /* --demo */
};

enum options_result {
	OPTIONS_RUN = 0,  /* go ahead */
	OPTIONS_DONE = 1, /* --help was printed: exit 0 */
	OPTIONS_BAD = 2   /* an error was printed: exit 2 */
};

/*
 * Parses argv into *out, and the libwsm manager options straight into cfg
 * with wsm_config_set_int(). Returns an options_result.
 */
int options_parse(int argc, char **argv, struct options *out,
		  wsm_config_t *cfg);

#endif
