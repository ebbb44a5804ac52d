/* Job records on disk; see store.h. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "store.h"

#define SUFFIX ".job.json"
#define TMP_SUFFIX ".tmp"
#define MAX_ID 128

struct store {
	char dir[PATH_MAX];
};

/* Ids become file names: only the characters libwsm allows in them. */
static bool safe_id(const char *id, size_t len)
{
	size_t i;

	if (len == 0 || len > MAX_ID)
		return false;
	for (i = 0; i < len; i++)
		if (!strchr("-_", id[i]) && !(id[i] >= '0' && id[i] <= '9') &&
		    !(id[i] >= 'A' && id[i] <= 'Z') &&
		    !(id[i] >= 'a' && id[i] <= 'z'))
			return false;
	return true;
}

static bool path_of(const struct store *s, const char *id, const char *tail,
		    char *out, size_t size)
{
	int n;

	if (!safe_id(id, strlen(id)))
		return false;
	n = snprintf(out, size, "%s/%s%s%s", s->dir, id, SUFFIX, tail);
	return n > 0 && (size_t)n < size;
}

struct store *store_open(const char *dir)
{
	struct store *s;
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "state dir %s: %s\n", dir, strerror(errno));
		return NULL;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    access(dir, R_OK | W_OK | X_OK) != 0) {
		fprintf(stderr, "state dir %s: not a writable directory\n",
			dir);
		return NULL;
	}
	if (strlen(dir) + 1 + MAX_ID + sizeof(SUFFIX TMP_SUFFIX) > PATH_MAX ||
	    !(s = calloc(1, sizeof(*s)))) {
		fprintf(stderr, "state dir %s: path too long\n", dir);
		return NULL;
	}
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	return s;
}

void store_close(struct store *s)
{
	free(s);
}

int store_put(struct store *s, const char *id, const json_t *rec)
{
	char tmp[PATH_MAX], path[PATH_MAX];

	if (!path_of(s, id, TMP_SUFFIX, tmp, sizeof(tmp)) ||
	    !path_of(s, id, "", path, sizeof(path)))
		return -1;
	if (json_dump_file(rec, tmp, JSON_COMPACT) != 0 ||
	    rename(tmp, path) != 0) {
		lwsl_err("job %s: cannot write %s: %s\n", id, path,
			 strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

void store_remove(struct store *s, const char *id)
{
	char path[PATH_MAX];

	if (path_of(s, id, "", path, sizeof(path)) && unlink(path) != 0 &&
	    errno != ENOENT)
		lwsl_warn("job %s: cannot remove %s: %s\n", id, path,
			  strerror(errno));
}

int store_each(struct store *s,
	       void (*each)(void *arg, const char *id, json_t *rec),
	       void *arg)
{
	size_t suffix = strlen(SUFFIX), tmp_suffix = strlen(TMP_SUFFIX);
	char id[MAX_ID + 1], path[PATH_MAX];
	struct dirent *e;
	json_error_t jerr;
	json_t *rec;
	DIR *d;
	int seen = 0;

	if (!(d = opendir(s->dir))) {
		lwsl_err("state dir %s: %s\n", s->dir, strerror(errno));
		return 0;
	}
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (len > tmp_suffix &&
		    !strcmp(e->d_name + len - tmp_suffix, TMP_SUFFIX)) {
			len -= tmp_suffix; /* left by a crash mid-write */
			if (len > suffix && len - suffix <= MAX_ID &&
			    !memcmp(e->d_name + len - suffix, SUFFIX, suffix) &&
			    safe_id(e->d_name, len - suffix) &&
			    snprintf(path, sizeof(path), "%s/%s", s->dir,
				     e->d_name) < (int)sizeof(path))
				unlink(path);
			continue;
		}
		if (len <= suffix || strcmp(e->d_name + len - suffix, SUFFIX) ||
		    !safe_id(e->d_name, len - suffix))
			continue; /* not ours */
		memcpy(id, e->d_name, len - suffix);
		id[len - suffix] = '\0';
		if (!path_of(s, id, "", path, sizeof(path)))
			continue;
		if (!(rec = json_load_file(path, 0, &jerr)) ||
		    !json_is_object(rec)) {
			lwsl_warn("job %s: unreadable record %s (%s): removed\n",
				  id, path, rec ? "not an object" : jerr.text);
			json_decref(rec);
			unlink(path);
			continue;
		}
		seen++;
		each(arg, id, rec);
		json_decref(rec);
	}
	closedir(d);
	return seen;
}
