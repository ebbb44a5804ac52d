/*
 * Job records on disk, so that a restarted server can resume the jobs the
 * previous run left unfinished: one small JSON file per job in a directory,
 * replaced whole (written to a temporary file, then renamed over the old
 * one), so that a crash leaves the old record or the new one, never half.
 */
#ifndef PROGRESS_BROADCAST_STORE_H
#define PROGRESS_BROADCAST_STORE_H

#include <jansson.h>

struct store;

/*
 * Opens the directory dir, creating it (mode 0700) if it does not exist.
 * NULL with a message on stderr if it cannot be used.
 */
struct store *store_open(const char *dir);
void store_close(struct store *s);

/*
 * Replaces the record of id with rec. Any thread; concurrent calls must be
 * for different ids. Returns 0 or -1 (and logs why).
 */
int store_put(struct store *s, const char *id, const json_t *rec);

/* Forgets id's record; a missing record is fine. */
void store_remove(struct store *s, const char *id);

/*
 * Calls each(arg, id, rec) for every record, in no particular order. Files
 * that are not records are left alone; unreadable records are logged and
 * removed. Returns the number of records seen.
 */
int store_each(struct store *s,
	       void (*each)(void *arg, const char *id, json_t *rec),
	       void *arg);

#endif
