/*
 * A real Redis Sentinel deployment for one test: a primary and a replica
 * (redis-server, persistence off) and three redis-sentinel processes
 * watching them with quorum 2 and fast timings, all on free loopback ports
 * (never 6379 or 26379) with one temporary directory. Processes die with
 * the thread that started them (start and restart from the test's own
 * thread); every wait is bounded.
 *
 * Data node i (0 or 1) starts as primary (0) or replica (1) and keeps its
 * port and config file (which Sentinel rewrites) across restarts.
 */
#ifndef LIBWSM_TESTS_REDIS_SENTINEL_H
#define LIBWSM_TESTS_REDIS_SENTINEL_H

#include <stddef.h>
#include <sys/types.h>

/* Passwords go into config files and commands as one word: no spaces,
 * quotes or ';'. */
struct sentinel_env_opts {
	const char *master_name;       /* NULL: "wsmprimary" */
	const char *password;          /* data nodes' requirepass; NULL: none */
	const char *sentinel_password; /* sentinels' requirepass; NULL: none */
};

/* Owned by the test's thread; only these functions change it. */
struct sentinel_env {
	char name[64];              /* the master name the sentinels use */
	char password[64];          /* "": none */
	char sentinel_password[64]; /* "": none */
	int data_port[2];
	int sentinel_port[3];
	pid_t data_pid[2];          /* 0: not running */
	pid_t sentinel_pid[3];      /* 0: not running */
	char dir[64];               /* configs, logs, rdb files */
	/* "redis-sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/<name>" */
	char url[256];
};

/* redis-sentinel's path; NULL unless it and redis-server are installed. */
const char *redis_sentinel_path(void);
/*
 * 0 once the replica is in sync and every sentinel knows the primary, the
 * replica and the two other sentinels (at most 20 s); -1 on failure, with
 * everything stopped. o may be NULL.
 */
int sentinel_env_start(struct sentinel_env *e,
		       const struct sentinel_env_opts *o);
/* Stops everything and removes the directory; safe twice, after a failed
 * start, or on a zeroed struct. */
void sentinel_env_stop(struct sentinel_env *e);

/*
 * The data node (0 or 1) that a majority of the live sentinels name as
 * primary (SENTINEL get-master-addr-by-name), or -1.
 */
int sentinel_env_primary(const struct sentinel_env *e);
/*
 * 0 once a majority of the live sentinels name data node which as primary
 * and its ROLE says master; -1 after timeout_ms.
 */
int sentinel_env_wait_primary(const struct sentinel_env *e, int which,
			      int timeout_ms);
/*
 * Once every live sentinel sees the other data node as a healthy replica,
 * SENTINEL FAILOVER (retried while refused for want of a fit replica);
 * then waits as above for that node, and for the old primary, if running,
 * to replicate from it: at most 20 s in all. 0 or -1.
 */
int sentinel_env_failover(struct sentinel_env *e);
/* 0 once data node which's ROLE says it replicates from data node of, link
 * up; -1 after timeout_ms. */
int sentinel_env_wait_replica(const struct sentinel_env *e, int which, int of,
			      int timeout_ms);

/* Sends sig (SIGKILL: a crash) to data node which and reaps it; one that
 * outlives the signal 15 s is killed. */
void sentinel_env_kill_data(struct sentinel_env *e, int which, int sig);
/* Starts it again from its config file (as Sentinel last rewrote it); 0
 * once it answers PING. A crashed primary comes back a primary, alone,
 * until Sentinel makes it a replica. */
int sentinel_env_restart_data(struct sentinel_env *e, int which);
/* SIGKILLs sentinel which and reaps it. */
void sentinel_env_kill_sentinel(struct sentinel_env *e, int which);

/*
 * Commands as space-separated words (no quoting), several separated by ';'
 * all on one fresh connection ("SET k v; WAIT 1 500": WAIT counts the
 * connection's own writes), to data node `node`, or to sentinel k when
 * node is -1 - k, authenticated with that side's password. Into out (cut
 * to size), the last command's reply, or the first error reply ("-ERR
 * ...", ending the run): a bulk string's value (INFO's lines joined by
 * '\n'); the first line of any other reply ("+OK", ":1", "$-1"); an array's
 * elements without type prefixes, nested ones flattened, joined by '\n'.
 * 0, or -1 if Redis could not be reached or did not answer one in 2 s.
 */
int sentinel_env_cmd(const struct sentinel_env *e, int node,
		     const char *words, char *out, size_t size);
/* The same on 127.0.0.1:port, with AUTH [user] password first unless
 * password is NULL (user may be NULL); a refused AUTH is -1. */
int sentinel_env_cmd_at(int port, const char *user, const char *password,
			const char *words, char *out, size_t size);

#endif
