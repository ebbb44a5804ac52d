/*
 * Replays inputs through a fuzz target without libFuzzer (any compiler):
 *
 *   fuzz-replay-<target> [--exclude=PREFIX] [--only=PREFIX] [--fork] PATH...
 *
 * Each PATH is a file, or a directory walked recursively in name order;
 * files whose name starts with '.' are skipped, and so are those whose name
 * starts with the --exclude prefix or does not start with the --only one.
 * Every file is run once, all in this process (so per-process state, such
 * as a target's server, lives across them), where a failed check aborts;
 * or with --fork each in a child process of its own, so that every failing
 * file is reported. Exits 0 when all ran, 1 if one failed or could not be
 * read, 77 (skipped) if there was no input at all.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long ran;
static int failed;
static const char *exclude, *only;
static bool forking;

static void run_input(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *copy;
	size_t len = 0, cap = 0, n;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			if (!(buf = realloc(buf, cap)))
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		if (!n)
			break;
		len += n;
	}
	fclose(f);
	/* An exact-size copy, so reads past the input are caught under ASan. */
	if (!(copy = malloc(len ? len : 1)))
		abort();
	if (len)
		memcpy(copy, buf, len);
	free(buf);
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
}

static void run_file(const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	pid_t pid;
	int st;

	if (base[0] == '.' || (exclude && !strncmp(base, exclude, strlen(exclude))) ||
	    (only && strncmp(base, only, strlen(only))))
		return;
	ran++;
	if (!forking) {
		run_input(path);
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("replay: fork");
		exit(1);
	}
	if (pid == 0) {
		run_input(path);
		exit(0); /* atexit handlers stop what the target started */
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "replay: FAILED: %s\n", path);
		failed = 1;
	}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0, i;

	if (stat(path, &st)) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		failed = 1;
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	if (!(d = opendir(path))) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		failed = 1;
		return;
	}
	while ((e = readdir(d))) {
		size_t len;

		if (e->d_name[0] == '.')
			continue; /* ., .. and hidden files */
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if (!(names = realloc(names, cap * sizeof(*names))))
				abort();
		}
		len = strlen(path) + strlen(e->d_name) + 2;
		if (!(names[n] = malloc(len)))
			abort();
		snprintf(names[n], len, "%s/%s", path, e->d_name);
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (i = 0; i < n; i++) {
		run_path(names[i]);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--exclude=", 10))
			exclude = argv[i] + 10;
		else if (!strncmp(argv[i], "--only=", 7))
			only = argv[i] + 7;
		else if (!strcmp(argv[i], "--fork"))
			forking = true;
		else
			run_path(argv[i]);
	}
	fprintf(stderr, "replay: %lu input(s) ran%s\n", ran,
		failed ? ", some FAILED" : "");
	if (failed)
		return 1;
	return ran ? 0 : 77;
}
