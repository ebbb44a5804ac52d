/* A throwaway Redis Sentinel deployment per test; see redis_sentinel.h. */
#include "redis_sentinel.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CMD_TIMEOUT_MS 2000
#define START_TIMEOUT_MS 20000
#define POLL_MS 10

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Only ever between two checks of a condition that has a deadline. */
static void pause_ms(int ms)
{
	struct timespec ts = { 0, (long)ms * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static const char *first_executable(const char *a, const char *b)
{
	return access(a, X_OK) == 0 ? a : access(b, X_OK) == 0 ? b : NULL;
}

static const char *server_path(void)
{
	return first_executable("/usr/bin/redis-server",
				"/usr/local/bin/redis-server");
}

const char *redis_sentinel_path(void)
{
	if (!server_path())
		return NULL;
	return first_executable("/usr/bin/redis-sentinel",
				"/usr/local/bin/redis-sentinel");
}

/* ---- RESP over TCP ---- */

struct conn {
	int fd;
	int64_t deadline;
	size_t pos, len;
	char buf[4096];
};

/* Where a reply goes: cut to size, always terminated. */
struct sink {
	char *out;
	size_t size, used;
};

static void put(struct sink *s, const char *p, size_t n)
{
	for (; n > 0; p++, n--)
		if (*p != '\r' && s->used + 1 < s->size)
			s->out[s->used++] = *p;
	s->out[s->used] = '\0';
}

static int next_byte(struct conn *c, char *ch)
{
	if (c->pos == c->len) {
		struct pollfd p = { c->fd, POLLIN, 0 };
		int64_t left = c->deadline - now_ms();
		ssize_t k;

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return -1;
		k = read(c->fd, c->buf, sizeof(c->buf));
		if (k <= 0)
			return -1;
		c->pos = 0;
		c->len = (size_t)k;
	}
	*ch = c->buf[c->pos++];
	return 0;
}

/* One line without its CRLF; a longer one is cut, but consumed. */
static int read_line(struct conn *c, char *line, size_t size)
{
	size_t n = 0;
	char ch;

	while (!next_byte(c, &ch)) {
		if (ch == '\n') {
			line[n > 0 && line[n - 1] == '\r' ? n - 1 : n] = '\0';
			return 0;
		}
		if (n + 1 < size)
			line[n++] = ch;
	}
	return -1;
}

/* top: the reply itself, not an element of an array (see the header). */
static int read_reply(struct conn *c, struct sink *s, int depth, int top)
{
	char line[512], ch;
	long n, i;

	if (depth > 8 || read_line(c, line, sizeof(line)))
		return -1;
	switch (line[0]) {
	case '+':
	case ':':
		put(s, top ? line : line + 1, strlen(top ? line : line + 1));
		return 0;
	case '-':
		put(s, line, strlen(line));
		return 0;
	case '$':
		n = strtol(line + 1, NULL, 10);
		if (n < 0) {
			if (top)
				put(s, line, strlen(line));
			return 0;
		}
		for (i = 0; i < n + 2; i++) { /* the value, then CRLF */
			if (next_byte(c, &ch))
				return -1;
			if (i < n)
				put(s, &ch, 1);
		}
		return 0;
	case '*':
		n = strtol(line + 1, NULL, 10);
		if (n < 0 && top)
			put(s, line, strlen(line));
		for (i = 0; i < n; i++) {
			if (i > 0)
				put(s, "\n", 1);
			if (read_reply(c, s, depth + 1, 0))
				return -1;
		}
		return 0;
	default:
		return -1;
	}
}

/* Words to a RESP array in buf; its length, or -1 if it does not fit. */
static int encode(const char *words, char *buf, size_t size)
{
	char copy[1024], *w, *save = NULL;
	const char *argv[32];
	int argc = 0, len, i;

	if (snprintf(copy, sizeof(copy), "%s", words) >= (int)sizeof(copy))
		return -1;
	for (w = strtok_r(copy, " ", &save); w && argc < 32;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	len = snprintf(buf, size, "*%d\r\n", argc);
	for (i = 0; i < argc && len < (int)size; i++)
		len += snprintf(buf + len, size - (size_t)len,
				"$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
	return len < (int)size ? len : -1;
}

/* MSG_NOSIGNAL: a peer killed meanwhile must not SIGPIPE the test. */
static int send_words(struct conn *c, const char *words)
{
	char buf[2048];
	int len = encode(words, buf, sizeof(buf));

	return len > 0 && send(c->fd, buf, (size_t)len, MSG_NOSIGNAL) == len ?
		       0 : -1;
}

static int connect_port(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Each command on c in turn; stops at an error reply, left in s. */
static int send_each(struct conn *c, const char *words, struct sink *s)
{
	char copy[1024], *w, *save = NULL;
	int rc = -1;

	if (snprintf(copy, sizeof(copy), "%s", words) >= (int)sizeof(copy))
		return -1;
	for (w = strtok_r(copy, ";", &save); w;
	     w = strtok_r(NULL, ";", &save)) {
		if (!w[strspn(w, " ")])
			continue;
		s->used = 0;
		s->out[0] = '\0';
		c->deadline = now_ms() + CMD_TIMEOUT_MS;
		if (send_words(c, w) || read_reply(c, s, 0, 1))
			return -1;
		rc = 0;
		if (s->out[0] == '-')
			break;
	}
	return rc;
}

int sentinel_env_cmd_at(int port, const char *user, const char *password,
			const char *words, char *out, size_t size)
{
	char auth[256], ok[64];
	struct sink s = { out, size, 0 }, a = { ok, sizeof(ok), 0 };
	struct conn c = { .fd = -1 };
	int rc = -1;

	if (size == 0)
		return -1;
	out[0] = '\0';
	if ((c.fd = connect_port(port)) < 0)
		return -1;
	snprintf(auth, sizeof(auth), "AUTH %s%s%s", user ? user : "",
		 user ? " " : "", password ? password : "");
	if (!password || (!send_each(&c, auth, &a) && !strcmp(ok, "+OK")))
		rc = send_each(&c, words, &s);
	close(c.fd);
	return rc;
}

static const char *pass_of(const char *pw)
{
	return pw[0] ? pw : NULL;
}

int sentinel_env_cmd(const struct sentinel_env *e, int node,
		     const char *words, char *out, size_t size)
{
	if (node >= 0 && node < 2)
		return sentinel_env_cmd_at(e->data_port[node], NULL,
					   pass_of(e->password), words, out,
					   size);
	if (node <= -1 && node >= -3)
		return sentinel_env_cmd_at(e->sentinel_port[-1 - node], NULL,
					   pass_of(e->sentinel_password),
					   words, out, size);
	return -1;
}

/* The value after "key:" on a line of INFO, or NULL. */
static const char *info_field(const char *text, const char *key, char *val,
			      size_t size)
{
	size_t k = strlen(key), n;
	const char *p;

	for (p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, k) || p[k] != ':')
			continue;
		n = strcspn(p + k + 1, "\n");
		snprintf(val, size, "%.*s", (int)n, p + k + 1);
		return val;
	}
	return NULL;
}

/* The value after key in a flattened list of pairs ("k\nv\nk\nv"). */
static const char *pair_field(const char *flat, const char *key, char *val,
			      size_t size)
{
	size_t k = strlen(key), n;
	const char *p = flat;
	int is_key = 1;

	for (; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL, is_key ^= 1) {
		if (!is_key || strncmp(p, key, k) || p[k] != '\n')
			continue;
		n = strcspn(p + k + 1, "\n");
		snprintf(val, size, "%.*s", (int)n, p + k + 1);
		return val;
	}
	return NULL;
}

static long pair_number(const char *flat, const char *key)
{
	char v[32];

	return pair_field(flat, key, v, sizeof(v)) ? strtol(v, NULL, 10) : -1;
}

static int pair_is(const char *flat, const char *key, const char *want)
{
	char v[64];

	return pair_field(flat, key, v, sizeof(v)) && !strcmp(v, want);
}

/* ---- processes ---- */

/* A loopback port nobody listens on now, none of e's, nor Redis's own. */
static int free_port(const struct sentinel_env *e)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1, i;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	for (i = 0; i < 5; i++)
		if (port == (i < 2 ? e->data_port[i] : e->sentinel_port[i - 2]))
			return -1;
	return port == 6379 || port == 26379 ? -1 : port;
}

static pid_t spawn(const char *bin, const char *conf)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		/*
		 * A failed test longjmps past its sentinel_env_stop(): no
		 * process may outlive the test, nor hold its output pipe
		 * open. The signal follows the thread that forks, so start
		 * from the test's own thread.
		 */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(127);
		if (null >= 0) {
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		execl(bin, bin, conf, (char *)NULL);
		_exit(127);
	}
	return pid < 0 ? 0 : pid;
}

/* Kills and reaps; a process that outlives sig 15 s is SIGKILLed. */
static void reap(pid_t *pid, int sig)
{
	int64_t deadline = now_ms() + 15000;
	int status;

	if (!*pid)
		return;
	kill(*pid, sig);
	while (waitpid(*pid, &status, WNOHANG) == 0) {
		if (now_ms() >= deadline) {
			kill(*pid, SIGKILL);
			waitpid(*pid, &status, 0);
			break;
		}
		pause_ms(POLL_MS); /* polled, within the deadline */
	}
	*pid = 0;
}

/* 0 once it answers PING; -1 (and *pid 0) if it exits or at deadline. */
static int wait_pong(pid_t *pid, int port, const char *password,
		     int64_t deadline)
{
	char reply[64];
	int status;

	while (now_ms() < deadline) {
		if (!sentinel_env_cmd_at(port, NULL, password, "PING", reply,
					 sizeof(reply)) &&
		    !strcmp(reply, "+PONG"))
			return 0;
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			*pid = 0; /* exited: the port was taken meanwhile */
			return -1;
		}
		pause_ms(POLL_MS); /* polled, within the deadline */
	}
	reap(pid, SIGKILL);
	return -1;
}

static void conf_path(const struct sentinel_env *e, const char *kind, int i,
		      char *path, size_t size)
{
	snprintf(path, size, "%s/%s%d.conf", e->dir, kind, i);
}

/*
 * Persistence off, and no diskless-sync delay (7.0 waits 5 s by default
 * for more replicas before a full sync, slowing every rejoin). Each node
 * its own rdb name: a replica loads its full sync through a file.
 */
static int write_data_conf(const struct sentinel_env *e, int i)
{
	char path[128];
	FILE *f;

	conf_path(e, "node", i, path, sizeof(path));
	if (!(f = fopen(path, "w")))
		return -1;
	fprintf(f, "port %d\nbind 127.0.0.1\nprotected-mode no\n"
		   "daemonize no\ndir %s\nlogfile %s/node%d.log\n"
		   "dbfilename node%d.rdb\nsave \"\"\nappendonly no\n"
		   "repl-diskless-sync-delay 0\nenable-debug-command yes\n",
		e->data_port[i], e->dir, e->dir, i, i);
	if (e->password[0])
		fprintf(f, "requirepass %s\nmasterauth %s\n", e->password,
			e->password);
	if (i == 1)
		fprintf(f, "replicaof 127.0.0.1 %d\n", e->data_port[0]);
	return fclose(f) ? -1 : 0;
}

/*
 * down-after 1 s: twice the ping period set below. A sentinel reconnects
 * to an instance at most once a ping period, and after a failover its
 * link to the new primary starts over: a down-after shorter than that gap
 * (400 ms with the default 1 s) finds the new primary "down" and fails
 * over again, to the crashed one if it is back, empty.
 * failover-timeout 2 s bounds a failed election (retried after twice
 * that) and how long a sentinel waits before making a returning old
 * primary a replica.
 */
static int write_sentinel_conf(const struct sentinel_env *e, int k)
{
	const char *m = e->name;
	char path[128];
	FILE *f;

	conf_path(e, "sentinel", k, path, sizeof(path));
	if (!(f = fopen(path, "w")))
		return -1;
	fprintf(f, "port %d\nbind 127.0.0.1\nprotected-mode no\n"
		   "daemonize no\ndir %s\nlogfile %s/sentinel%d.log\n",
		e->sentinel_port[k], e->dir, e->dir, k);
	if (e->sentinel_password[0])
		fprintf(f, "requirepass %s\n", e->sentinel_password);
	fprintf(f, "sentinel monitor %s 127.0.0.1 %d 2\n"
		   "sentinel down-after-milliseconds %s 1000\n"
		   "sentinel failover-timeout %s 2000\n"
		   "sentinel parallel-syncs %s 1\n",
		m, e->data_port[0], m, m, m);
	if (e->password[0])
		fprintf(f, "sentinel auth-pass %s %s\n", m, e->password);
	return fclose(f) ? -1 : 0;
}

static int start_data(struct sentinel_env *e, int i, int64_t deadline)
{
	char conf[128];

	conf_path(e, "node", i, conf, sizeof(conf));
	e->data_pid[i] = spawn(server_path(), conf);
	if (!e->data_pid[i])
		return -1;
	return wait_pong(&e->data_pid[i], e->data_port[i],
			 pass_of(e->password), deadline);
}

/*
 * Runtime only (SENTINEL DEBUG, new in 7.0): INFO every second rather than
 * 10, so a returning old primary is demoted, and a replica's state seen,
 * within a second or two; hellos every 500 ms, so sentinels find each
 * other quickly; pings and reconnects every 500 ms (see down-after above).
 * Not lower: a replica is fit to promote only if it answered within 5
 * ping periods, and while the primary is down its INFO comes every 1 s.
 */
static int start_sentinel(struct sentinel_env *e, int k, int64_t deadline)
{
	char conf[128], reply[64];
	int rc;

	conf_path(e, "sentinel", k, conf, sizeof(conf));
	e->sentinel_pid[k] = spawn(redis_sentinel_path(), conf);
	if (!e->sentinel_pid[k])
		return -1;
	if (wait_pong(&e->sentinel_pid[k], e->sentinel_port[k],
		      pass_of(e->sentinel_password), deadline))
		return -1;
	rc = sentinel_env_cmd(e, -1 - k,
			      "SENTINEL DEBUG info-period 1000 "
			      "publish-period 500 ping-period 500",
			      reply, sizeof(reply));
	if (!rc && !strcmp(reply, "+OK"))
		return 0;
	reap(&e->sentinel_pid[k], SIGKILL);
	return -1;
}

/* Instance i: data node i (0, 1), or sentinel i - 2. */
static int start_one(struct sentinel_env *e, int i, int64_t deadline)
{
	if (i < 2)
		return write_data_conf(e, i) || start_data(e, i, deadline);
	return write_sentinel_conf(e, i - 2) ||
	       start_sentinel(e, i - 2, deadline);
}

/* Instances from..to-1, each on a fresh free port, again if another
 * process took it first. */
static int start_range(struct sentinel_env *e, int from, int to,
		       int64_t deadline)
{
	int i, attempt, *port;

	for (i = from; i < to; i++) {
		port = i < 2 ? &e->data_port[i] : &e->sentinel_port[i - 2];
		for (attempt = 0; attempt < 5; attempt++)
			if ((*port = free_port(e)) > 0 &&
			    !start_one(e, i, deadline))
				break;
		if (attempt == 5)
			return -1;
	}
	return 0;
}

static int replica_synced(const struct sentinel_env *e)
{
	char info[4096], v[16];

	return !sentinel_env_cmd(e, 1, "INFO replication", info,
				 sizeof(info)) &&
	       info_field(info, "master_link_status", v, sizeof(v)) &&
	       !strcmp(v, "up");
}

static int sentinels_know_all(const struct sentinel_env *e)
{
	char words[128], flat[4096];
	int k;

	snprintf(words, sizeof(words), "SENTINEL master %s", e->name);
	for (k = 0; k < 3; k++)
		if (sentinel_env_cmd(e, -1 - k, words, flat, sizeof(flat)) ||
		    pair_number(flat, "num-slaves") < 1 ||
		    pair_number(flat, "num-other-sentinels") < 2)
			return 0;
	return 1;
}

static int copy_opt(char *dst, size_t size, const char *src)
{
	return snprintf(dst, size, "%s", src ? src : "") >= (int)size ? -1 : 0;
}

int sentinel_env_start(struct sentinel_env *e,
		       const struct sentinel_env_opts *o)
{
	static const struct sentinel_env_opts none = { NULL, NULL, NULL };
	int64_t deadline = now_ms() + START_TIMEOUT_MS;
	size_t n;

	memset(e, 0, sizeof(*e));
	o = o ? o : &none;
	if (!redis_sentinel_path() ||
	    copy_opt(e->name, sizeof(e->name),
		     o->master_name ? o->master_name : "wsmprimary") ||
	    copy_opt(e->password, sizeof(e->password), o->password) ||
	    copy_opt(e->sentinel_password, sizeof(e->sentinel_password),
		     o->sentinel_password))
		return -1;
	snprintf(e->dir, sizeof(e->dir), "/tmp/wsm-sentinel-XXXXXX");
	if (!mkdtemp(e->dir)) {
		e->dir[0] = '\0';
		return -1;
	}
	/* The replica in sync first, so each sentinel's first INFO of the
	 * primary lists it. Both waits are polled within the deadline. */
	if (start_range(e, 0, 2, deadline))
		goto fail;
	while (!replica_synced(e)) {
		if (now_ms() >= deadline)
			goto fail;
		pause_ms(POLL_MS);
	}
	if (start_range(e, 2, 5, deadline))
		goto fail;
	while (!sentinels_know_all(e)) {
		if (now_ms() >= deadline)
			goto fail;
		pause_ms(POLL_MS);
	}
	n = (size_t)snprintf(e->url, sizeof(e->url),
			     "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d,"
			     "127.0.0.1:%d/%s",
			     e->sentinel_port[0], e->sentinel_port[1],
			     e->sentinel_port[2], e->name);
	if (n < sizeof(e->url))
		return 0;
fail:
	sentinel_env_stop(e);
	return -1;
}

void sentinel_env_stop(struct sentinel_env *e)
{
	char path[384];
	struct dirent *d;
	DIR *dir;
	int i;

	/* Sentinels first: none may react to the data nodes going. */
	for (i = 0; i < 3; i++)
		reap(&e->sentinel_pid[i], SIGKILL);
	for (i = 0; i < 2; i++)
		reap(&e->data_pid[i], SIGKILL);
	if (!e->dir[0])
		return;
	/* Flat: configs (and their rewrite temporaries), logs, rdb files. */
	if ((dir = opendir(e->dir))) {
		while ((d = readdir(dir)))
			if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..")) {
				snprintf(path, sizeof(path), "%s/%s", e->dir,
					 d->d_name);
				unlink(path);
			}
		closedir(dir);
	}
	rmdir(e->dir);
	e->dir[0] = '\0';
}

/* ---- roles ---- */

/* The data node a sentinel names as primary, or -1. */
static int named_by(const struct sentinel_env *e, int k)
{
	char words[128], addr[64], *nl;
	int port;

	snprintf(words, sizeof(words), "SENTINEL get-master-addr-by-name %s",
		 e->name);
	if (sentinel_env_cmd(e, -1 - k, words, addr, sizeof(addr)) ||
	    !(nl = strchr(addr, '\n')))
		return -1;
	port = atoi(nl + 1);
	return port == e->data_port[0] ? 0 : port == e->data_port[1] ? 1 : -1;
}

int sentinel_env_primary(const struct sentinel_env *e)
{
	int votes[2] = { 0, 0 }, live = 0, k, i;

	for (k = 0; k < 3; k++) {
		if (!e->sentinel_pid[k])
			continue;
		live++;
		if ((i = named_by(e, k)) >= 0)
			votes[i]++;
	}
	for (i = 0; i < 2; i++)
		if (votes[i] * 2 > live)
			return i;
	return -1;
}

/* ROLE's flattened reply ("master\n..." or "slave\nip\nport\nstate\n..."). */
static int role(const struct sentinel_env *e, int which, char *out,
		size_t size)
{
	return which < 0 || which > 1 || !e->data_pid[which] ||
	       sentinel_env_cmd(e, which, "ROLE", out, size);
}

int sentinel_env_wait_primary(const struct sentinel_env *e, int which,
			      int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	char r[512];

	for (;;) {
		if (sentinel_env_primary(e) == which &&
		    !role(e, which, r, sizeof(r)) &&
		    !strncmp(r, "master\n", 7))
			return 0;
		if (now_ms() >= deadline)
			return -1;
		pause_ms(POLL_MS); /* polled, within the deadline */
	}
}

int sentinel_env_wait_replica(const struct sentinel_env *e, int which, int of,
			      int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	char r[512], want[64];

	if (of < 0 || of > 1)
		return -1;
	snprintf(want, sizeof(want), "slave\n127.0.0.1\n%d\nconnected\n",
		 e->data_port[of]);
	for (;;) {
		if (!role(e, which, r, sizeof(r)) &&
		    !strncmp(r, want, strlen(want)))
			return 0;
		if (now_ms() >= deadline)
			return -1;
		pause_ms(POLL_MS); /* polled, within the deadline */
	}
}

static int live_sentinel(const struct sentinel_env *e)
{
	int k;

	for (k = 0; k < 3; k++)
		if (e->sentinel_pid[k])
			return k;
	return -1;
}

/*
 * Every live sentinel has seen data node which as a healthy replica in its
 * last INFO (the only replica they list: there are two data nodes).
 */
static int replica_seen(const struct sentinel_env *e, int which)
{
	char words[128], flat[4096];
	int k;

	snprintf(words, sizeof(words), "SENTINEL replicas %s", e->name);
	for (k = 0; k < 3; k++)
		if (e->sentinel_pid[k] &&
		    (sentinel_env_cmd(e, -1 - k, words, flat, sizeof(flat)) ||
		     pair_number(flat, "port") != e->data_port[which] ||
		     !pair_is(flat, "flags", "slave") ||
		     !pair_is(flat, "role-reported", "slave") ||
		     !pair_is(flat, "master-link-status", "ok")))
			return 0;
	return 1;
}

static int left_ms(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	return left > 0 ? (int)left : 0;
}

/*
 * Only once every sentinel has seen the replica as one: a sentinel that
 * last saw it as a primary (a rejoin moments ago) takes the promoted node
 * for a stale primary and makes it a replica again, and the failover
 * aborts. Sentinel may still refuse (-NOGOODSLAVE) on a stale view: asked
 * again. Sentinel sends the old primary no command; it demotes it on a
 * later INFO, waited for, so the switch is clean.
 */
int sentinel_env_failover(struct sentinel_env *e)
{
	int64_t deadline = now_ms() + 20000;
	int from = sentinel_env_primary(e), k = live_sentinel(e);
	char words[128], reply[128];

	if (from < 0 || k < 0)
		return -1;
	while (!replica_seen(e, 1 - from)) {
		if (now_ms() >= deadline)
			return -1;
		pause_ms(POLL_MS); /* polled, within the deadline */
	}
	snprintf(words, sizeof(words), "SENTINEL FAILOVER %s", e->name);
	for (;;) {
		if (sentinel_env_cmd(e, -1 - k, words, reply, sizeof(reply)))
			return -1;
		if (!strcmp(reply, "+OK"))
			break;
		if (strncmp(reply, "-NOGOODSLAVE", 12) &&
		    strncmp(reply, "-INPROG", 7))
			return -1;
		if (now_ms() >= deadline)
			return -1;
		pause_ms(100); /* asked again, within the deadline */
	}
	if (sentinel_env_wait_primary(e, 1 - from, left_ms(deadline)))
		return -1;
	if (!e->data_pid[from])
		return 0;
	return sentinel_env_wait_replica(e, from, 1 - from, left_ms(deadline));
}

void sentinel_env_kill_data(struct sentinel_env *e, int which, int sig)
{
	if (which >= 0 && which < 2)
		reap(&e->data_pid[which], sig);
}

int sentinel_env_restart_data(struct sentinel_env *e, int which)
{
	if (which < 0 || which > 1)
		return -1;
	if (e->data_pid[which])
		return 0;
	return start_data(e, which, now_ms() + 10000);
}

void sentinel_env_kill_sentinel(struct sentinel_env *e, int which)
{
	if (which >= 0 && which < 3)
		reap(&e->sentinel_pid[which], SIGKILL);
}
