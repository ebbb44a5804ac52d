/*
 * A real redis-server for one test: started on a unix socket in a fresh
 * temporary directory, and on a free loopback port when asked, with no
 * persistence unless asked; never the system's Redis (port 6379 is never
 * used). With redis_start_with(): a password, ACL users, TLS on a port of
 * its own. Every wait is bounded.
 */
#ifndef LIBWSM_TESTS_REDIS_SERVER_H
#define LIBWSM_TESTS_REDIS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "tls_files.h"

/*
 * What redis_start_with() starts it with, beyond redis_start(); the strings
 * are copied. Quirk of redis 7.0.15: given both requirepass and an aclfile
 * it starts, but the file's default user (or a fresh nopass one) silently
 * replaces the password; so password and aclfile together are refused:
 * give the default user's password in the file.
 */
struct redis_options {
	const char *password; /* requirepass for the default user; NULL: none */
	const char *aclfile;  /* an ACL file (users.acl) to load; NULL: none;
				 relative paths are from its temporary dir */
	/*
	 * What redis_cmd authenticates with: AUTH [admin_user] admin_password,
	 * or AUTH password when only that is given. With an aclfile, a user
	 * allowed PING at least (spawning waits for its PONG).
	 */
	const char *admin_user, *admin_password;
	/*
	 * Non-NULL: TLS on a free loopback port too, with its server
	 * certificate, key and CA; tls-auth-clients as it says. The files
	 * must stay until redis_stop() (redis_restart reads them again).
	 */
	const struct tls_files *tls;
};

struct redis_server {
	pid_t pid;
	int port;       /* 0: unix socket only */
	char dir[64];   /* its temporary directory */
	char sock[100]; /* its unix socket (fits sun_path) */
	char url[160];  /* "unix:<sock>" or "redis://<ip>:<port>" */
	char ip[16];    /* the IPv4 address its port listens on */
	int tls_port;   /* 0: no TLS */
	char tls_url[48]; /* "rediss://127.0.0.1:<tls_port>" */
	/* The options, kept for redis_restart(); "": none. */
	char requirepass[64], aclfile[128];
	char auth_user[64], auth_password[64]; /* what redis_cmd sends */
	struct tls_files tls; /* its files when tls_port */
};

/* Path of redis-server, or NULL when it is not installed (tests skip). */
const char *redis_server_path(void);
/* 0 once it answers PING; -1 on failure. tcp: listen on a port too. */
int redis_start(struct redis_server *r, bool tcp);
/* The same with a port on ip (an IPv4 address) rather than 127.0.0.1. */
int redis_start_at(struct redis_server *r, const char *ip);
/*
 * redis_start() with the options o (NULL: none); -1 also for a string too
 * long to keep, admin_user without admin_password, or password with
 * aclfile (see struct redis_options).
 */
int redis_start_with(struct redis_server *r, bool tcp,
		     const struct redis_options *o);
/*
 * Starts it again on the same socket, ports, directory and options
 * (after a kill).
 */
int redis_restart(struct redis_server *r);
/* Sends sig (SIGKILL for a crash) and reaps the process. */
void redis_kill(struct redis_server *r, int sig);
/* Stops it (if running) and removes its directory. */
void redis_stop(struct redis_server *r);
/*
 * One command, sent on a fresh connection to its unix socket, as
 * space-separated words (no quoting); the reply's first line goes into
 * out ("+OK", ":1", "$-1"), or a bulk string's value (its lines joined by
 * '\n', cut to size). 0, or -1 on failure or after 5 s. With credentials
 * (see struct redis_options), AUTH goes first on the same connection; when
 * it is refused, out holds its error and the command is not sent.
 */
int redis_cmd(const struct redis_server *r, const char *words, char *out,
	      size_t size);
/* The same with the command's words given one by one (spaces allowed). */
int redis_cmdv(const struct redis_server *r, int argc, const char **argv,
	       char *out, size_t size);

#endif
