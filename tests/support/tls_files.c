/* A test's CA and certificates, made with openssl; see tls_files.h. */
#include "tls_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Extension sections for req's -extensions: what each certificate is for. */
static const char config[] =
	"[req]\n"
	"distinguished_name = dn\n"
	"[dn]\n"
	"[ca]\n"
	"basicConstraints = critical, CA:true\n"
	"keyUsage = critical, keyCertSign, cRLSign\n"
	"subjectKeyIdentifier = hash\n"
	"[server]\n"
	"basicConstraints = critical, CA:false\n"
	"keyUsage = critical, digitalSignature\n"
	"extendedKeyUsage = serverAuth\n"
	"subjectAltName = DNS:localhost, DNS:redis.test, IP:127.0.0.1, IP:::1\n"
	"subjectKeyIdentifier = hash\n"
	"authorityKeyIdentifier = keyid\n"
	"[elsewhere]\n"
	"basicConstraints = critical, CA:false\n"
	"keyUsage = critical, digitalSignature\n"
	"extendedKeyUsage = serverAuth\n"
	"subjectAltName = DNS:other.test\n"
	"subjectKeyIdentifier = hash\n"
	"authorityKeyIdentifier = keyid\n"
	"[client]\n"
	"basicConstraints = critical, CA:false\n"
	"keyUsage = critical, digitalSignature\n"
	"extendedKeyUsage = clientAuth\n"
	"subjectKeyIdentifier = hash\n"
	"authorityKeyIdentifier = keyid\n";

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs argv (openssl ...) quietly, its stdout into out when given. */
static int run(const char *const argv[], const char *out)
{
	int64_t deadline = now_ms() + 10000;
	int status = 0;
	pid_t pid = fork(), w;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		int fd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)
			     : null;

		/* It must not outlive a test that fails meanwhile. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1 || null < 0 || fd < 0)
			_exit(127);
		dup2(null, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	/* Its exit is polled, so that a wedged openssl is killed in time. */
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 ||
	       (w < 0 && errno == EINTR)) {
		struct timespec ts = { 0, 1000 * 1000 };

		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	return w == pid && WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
}

/*
 * A P-256 key and a certificate for subj with the extensions of section,
 * signed by ca/ca_key, or self-signed when ca is NULL.
 */
static int make_cert(const char *cnf, const char *subj, const char *section,
		     const char *cert, const char *key, const char *ca,
		     const char *ca_key)
{
	const char *const argv[] = {
		"openssl", "req", "-x509", "-new", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-days", "3",
		"-config", cnf, "-extensions", section, "-subj", subj,
		"-keyout", key, "-out", cert,
		ca ? "-CA" : NULL, ca, "-CAkey", ca_key, NULL
	};

	return run(argv, NULL);
}

/* ca_dir/<subject hash>.0 -> ca: how OpenSSL looks a CA up in a CApath. */
static int link_by_hash(struct tls_files *t)
{
	const char *const argv[] = { "openssl", "x509", "-hash", "-noout",
				     "-in", t->ca, NULL };
	char out[160], hash[16], link[160];
	FILE *f;
	int ok;

	snprintf(out, sizeof(out), "%s/ca.hash", t->dir);
	if (run(argv, out) || !(f = fopen(out, "r")))
		return -1;
	ok = fscanf(f, "%15s", hash) == 1;
	fclose(f);
	snprintf(link, sizeof(link), "%s/%s.0", t->ca_dir, hash);
	return ok && !mkdir(t->ca_dir, 0700) && !symlink(t->ca, link) ? 0 : -1;
}

int tls_files_make(struct tls_files *t)
{
	char cnf[96], ca_key[96], other_key[96];
	FILE *f;
	int written;

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/wsm-tls-XXXXXX");
	if (!mkdtemp(t->dir)) {
		t->dir[0] = '\0';
		return -1;
	}
	snprintf(cnf, sizeof(cnf), "%s/openssl.cnf", t->dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", t->dir);
	snprintf(other_key, sizeof(other_key), "%s/other_ca.key", t->dir);
	snprintf(t->ca, sizeof(t->ca), "%s/ca.crt", t->dir);
	snprintf(t->ca_dir, sizeof(t->ca_dir), "%s/ca.d", t->dir);
	snprintf(t->server_cert, sizeof(t->server_cert), "%s/server.crt",
		 t->dir);
	snprintf(t->server_key, sizeof(t->server_key), "%s/server.key",
		 t->dir);
	snprintf(t->client_cert, sizeof(t->client_cert), "%s/client.crt",
		 t->dir);
	snprintf(t->client_key, sizeof(t->client_key), "%s/client.key",
		 t->dir);
	snprintf(t->other_ca, sizeof(t->other_ca), "%s/other_ca.crt", t->dir);
	snprintf(t->elsewhere_cert, sizeof(t->elsewhere_cert),
		 "%s/elsewhere.crt", t->dir);
	snprintf(t->elsewhere_key, sizeof(t->elsewhere_key),
		 "%s/elsewhere.key", t->dir);
	if (!(f = fopen(cnf, "w")))
		goto fail;
	written = fputs(config, f) >= 0;
	if (fclose(f) || !written ||
	    make_cert(cnf, "/CN=wsm test CA", "ca", t->ca, ca_key, NULL,
		      NULL) ||
	    make_cert(cnf, "/CN=localhost", "server", t->server_cert,
		      t->server_key, t->ca, ca_key) ||
	    make_cert(cnf, "/CN=other.test", "elsewhere", t->elsewhere_cert,
		      t->elsewhere_key, t->ca, ca_key) ||
	    make_cert(cnf, "/CN=wsm test client", "client", t->client_cert,
		      t->client_key, t->ca, ca_key) ||
	    make_cert(cnf, "/CN=wsm other CA", "ca", t->other_ca, other_key,
		      NULL, NULL) ||
	    link_by_hash(t))
		goto fail;
	return 0;
fail:
	tls_files_remove(t);
	return -1;
}

/* Removes the files in path (it holds no directories), then path. */
static void remove_flat(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(path);
}

void tls_files_remove(struct tls_files *t)
{
	if (!t->dir[0])
		return;
	remove_flat(t->ca_dir);
	remove_flat(t->dir);
	t->dir[0] = '\0';
}
