/*
 * A real redis-server for one test: started on a unix socket in a fresh
 * temporary directory, and on a free loopback port when asked, with no
 * persistence unless asked; never the system's Redis (port 6379 is never
 * used). Every wait is bounded.
 */
#ifndef LIBWSM_TESTS_REDIS_SERVER_H
#define LIBWSM_TESTS_REDIS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

struct redis_server {
	pid_t pid;
	int port;       /* 0: unix socket only */
	char dir[64];   /* its temporary directory */
	char sock[100]; /* its unix socket (fits sun_path) */
	char url[160];  /* "unix:<sock>" or "redis://<ip>:<port>" */
	char ip[16];    /* the IPv4 address its port listens on */
};

/* Path of redis-server, or NULL when it is not installed (tests skip). */
const char *redis_server_path(void);
/* 0 once it answers PING; -1 on failure. tcp: listen on a port too. */
int redis_start(struct redis_server *r, bool tcp);
/* The same with a port on ip (an IPv4 address) rather than 127.0.0.1. */
int redis_start_at(struct redis_server *r, const char *ip);
/* Starts it again on the same socket, port and directory (after a kill). */
int redis_restart(struct redis_server *r);
/* Sends sig (SIGKILL for a crash) and reaps the process. */
void redis_kill(struct redis_server *r, int sig);
/* Stops it (if running) and removes its directory. */
void redis_stop(struct redis_server *r);
/*
 * One command, sent on a fresh connection to its unix socket, as
 * space-separated words (no quoting); the reply's first line goes into
 * out ("+OK", ":1", "$-1"), or a bulk string's value (its lines joined by
 * '\n', cut to size). 0, or -1 on failure or after 5 s.
 */
int redis_cmd(const struct redis_server *r, const char *words, char *out,
	      size_t size);
/* The same with the command's words given one by one (spaces allowed). */
int redis_cmdv(const struct redis_server *r, int argc, const char **argv,
	       char *out, size_t size);

#endif
