/* A throwaway redis-server per test; see redis_server.h. */
#include "redis_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *redis_server_path(void)
{
	static const char *const paths[] = { "/usr/bin/redis-server",
					     "/usr/local/bin/redis-server" };
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* A loopback port nobody listens on now (bound, read, released). */
static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port == 6379 ? -1 : port;
}

static int read_line(int fd, char *out, size_t size, int64_t deadline)
{
	size_t n = 0;

	while (n + 1 < size) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline - now_ms();
		ssize_t k;

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return -1;
		k = read(fd, out + n, 1);
		if (k != 1)
			return -1;
		if (out[n] == '\n') {
			out[n > 0 && out[n - 1] == '\r' ? n - 1 : n] = '\0';
			return 0;
		}
		n++;
	}
	return -1;
}

/* want bytes of lines into out, joined by '\n', cut to fit. */
static int read_bulk(int fd, long want, char *out, size_t size,
		     int64_t deadline)
{
	char *line = malloc(size);
	size_t used = 0, k;
	int rc = line ? 0 : -1;

	while (!rc && want > 0 &&
	       !(rc = read_line(fd, line, size, deadline))) {
		k = strlen(line);
		want -= (long)k + 2;
		if (used + k + 1 < size) {
			memcpy(out + used, line, k);
			used += k;
			out[used++] = '\n';
		}
	}
	out[used ? used - 1 : 0] = '\0';
	free(line);
	return rc;
}

int redis_cmd(const struct redis_server *r, const char *words, char *out,
	      size_t size)
{
	char copy[512], *w, *save = NULL;
	const char *argv[32];
	int argc = 0;

	snprintf(copy, sizeof(copy), "%s", words);
	for (w = strtok_r(copy, " ", &save); w && argc < 32;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	return redis_cmdv(r, argc, argv, out, size);
}

/* The command's reply's first line into out. */
static int send_cmd(int fd, int argc, const char **argv, char *out,
		    size_t size, int64_t deadline)
{
	char buf[4096];
	int len, i;

	len = snprintf(buf, sizeof(buf), "*%d\r\n", argc);
	for (i = 0; i < argc && len < (int)sizeof(buf); i++)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len,
				"$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
	if (len >= (int)sizeof(buf) || write(fd, buf, (size_t)len) != len)
		return -1;
	return read_line(fd, out, size, deadline);
}

/*
 * AUTH with r's credentials, when it has some. Its reply is awaited before
 * the command is sent: refused, the command would run as the default user.
 */
static int auth(const struct redis_server *r, int fd, char *out,
		size_t size, int64_t deadline)
{
	const char *argv[3] = { "AUTH" };
	int argc = 1;

	if (!r->auth_password[0])
		return 0;
	if (r->auth_user[0])
		argv[argc++] = r->auth_user;
	argv[argc++] = r->auth_password;
	if (send_cmd(fd, argc, argv, out, size, deadline))
		return -1;
	return strcmp(out, "+OK") ? -1 : 0;
}

int redis_cmdv(const struct redis_server *r, int argc, const char **argv,
	       char *out, size_t size)
{
	struct sockaddr_un a;
	int fd, rc = -1;
	int64_t deadline = now_ms() + 5000;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", r->sock);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return -1;
	if (!connect(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !auth(r, fd, out, size, deadline))
		rc = send_cmd(fd, argc, argv, out, size, deadline);
	/* A bulk string: its value, on the next lines (INFO has many). */
	if (!rc && out[0] == '$' && out[1] != '-')
		rc = read_bulk(fd, strtol(out + 1, NULL, 10), out, size,
			       deadline);
	close(fd);
	return rc;
}

static int spawn(struct redis_server *r)
{
	const char *bin = redis_server_path(), *argv[40];
	char port[16], tls_port[16], log[96];
	/*
	 * Persistence off: a test that wants it restarts with a dump.
	 * No protected mode: r->ip is loopback, or an address in a
	 * network namespace of the test's own.
	 */
	const char *const plain[] = {
		bin, "--port", port, "--bind", r->ip, "--protected-mode", "no",
		"--unixsocket", r->sock, "--unixsocketperm", "700",
		"--dir", r->dir, "--logfile", log, "--save", "",
		"--appendonly", "no", "--daemonize", "no",
		"--enable-debug-command", "yes"
	};
	const char *const tls[] = {
		"--tls-port", tls_port,
		"--tls-cert-file", r->tls.server_cert,
		"--tls-key-file", r->tls.server_key,
		"--tls-ca-cert-file", r->tls.ca,
		"--tls-auth-clients", r->tls.require_client_cert ? "yes" : "no"
	};
	int64_t deadline;
	pid_t pid;
	int n;

	if (!bin)
		return -1;
	snprintf(port, sizeof(port), "%d", r->port);
	snprintf(tls_port, sizeof(tls_port), "%d", r->tls_port);
	snprintf(log, sizeof(log), "%s/redis.log", r->dir);
	memcpy(argv, plain, sizeof(plain));
	n = (int)(sizeof(plain) / sizeof(plain[0]));
	if (r->requirepass[0]) {
		argv[n++] = "--requirepass";
		argv[n++] = r->requirepass;
	}
	if (r->aclfile[0]) {
		argv[n++] = "--aclfile";
		argv[n++] = r->aclfile;
	}
	if (r->tls_port) {
		memcpy(argv + n, tls, sizeof(tls));
		n += (int)(sizeof(tls) / sizeof(tls[0]));
	}
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		/*
		 * A failed test longjmps past its redis_stop(): the server
		 * must not outlive the test process, nor hold its output
		 * pipe open (a runner reading it would wait forever).
		 */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(127);
		if (null >= 0) {
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	r->pid = pid;
	deadline = now_ms() + 10000;
	while (now_ms() < deadline) {
		char reply[64] = "";
		int status;

		if (!redis_cmd(r, "PING", reply, sizeof(reply)) &&
		    !strcmp(reply, "+PONG"))
			return 0;
		/* Up but refusing r's credentials: waiting will not help. */
		if (reply[0] == '-' && strncmp(reply, "-LOADING", 8))
			break;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			r->pid = 0;
			return -1; /* exited: the port was taken meanwhile */
		}
		/* Readiness is polled, within the bound above. */
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	redis_kill(r, SIGKILL);
	return -1;
}

/* Copies src ("" for NULL) into dst; -1 when it does not fit. */
static int keep(char *dst, size_t size, const char *src)
{
	return snprintf(dst, size, "%s", src ? src : "") < (int)size ? 0 : -1;
}

static int keep_options(struct redis_server *r, const struct redis_options *o)
{
	/* Redis 7.0.15 would drop the password for the file's default user. */
	if (o->password && o->aclfile)
		return -1;
	if (o->admin_user && !o->admin_password)
		return -1;
	if (o->tls)
		r->tls = *o->tls;
	if (keep(r->requirepass, sizeof(r->requirepass), o->password) ||
	    keep(r->aclfile, sizeof(r->aclfile), o->aclfile) ||
	    keep(r->auth_user, sizeof(r->auth_user), o->admin_user) ||
	    keep(r->auth_password, sizeof(r->auth_password),
		 o->admin_password ? o->admin_password : o->password))
		return -1;
	return 0;
}

static int start(struct redis_server *r, bool tcp, const char *ip,
		 const struct redis_options *o)
{
	bool tls = o && o->tls;
	int attempt;

	memset(r, 0, sizeof(*r));
	if (o && keep_options(r, o))
		return -1;
	snprintf(r->ip, sizeof(r->ip), "%s", ip);
	snprintf(r->dir, sizeof(r->dir), "/tmp/wsm-redis-XXXXXX");
	if (!mkdtemp(r->dir))
		return -1;
	snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
	for (attempt = 0; attempt < 5; attempt++) {
		r->port = tcp ? free_port() : 0;
		r->tls_port = tls ? free_port() : 0;
		if (r->port < 0 || r->tls_port < 0 ||
		    (r->port && r->port == r->tls_port))
			continue;
		if (tcp)
			snprintf(r->url, sizeof(r->url),
				 "redis://%s:%d", r->ip, r->port);
		else
			snprintf(r->url, sizeof(r->url), "unix:%s", r->sock);
		if (tls)
			snprintf(r->tls_url, sizeof(r->tls_url),
				 "rediss://%s:%d", r->ip, r->tls_port);
		if (!spawn(r))
			return 0;
		if (!tcp && !tls)
			break;
	}
	redis_stop(r);
	return -1;
}

int redis_start(struct redis_server *r, bool tcp)
{
	return start(r, tcp, "127.0.0.1", NULL);
}

int redis_start_at(struct redis_server *r, const char *ip)
{
	return start(r, true, ip, NULL);
}

int redis_start_with(struct redis_server *r, bool tcp,
		     const struct redis_options *o)
{
	return start(r, tcp, "127.0.0.1", o);
}

int redis_restart(struct redis_server *r)
{
	if (r->pid)
		return 0;
	return spawn(r);
}

void redis_kill(struct redis_server *r, int sig)
{
	int status;

	if (!r->pid)
		return;
	kill(r->pid, sig);
	waitpid(r->pid, &status, 0);
	r->pid = 0;
}

void redis_stop(struct redis_server *r)
{
	char path[192];

	redis_kill(r, SIGTERM);
	if (!r->dir[0])
		return;
	snprintf(path, sizeof(path), "%s/redis.log", r->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/dump.rdb", r->dir);
	unlink(path);
	unlink(r->sock);
	rmdir(r->dir);
	r->dir[0] = '\0';
}
