/*
 * Forced into every libwsm source of the tracked test build (-include):
 * the library's own allocator calls go through a tracker that knows each
 * block's size, so a test can check held_bytes against every byte libwsm's
 * code holds. Allocations made inside lws or jansson are theirs, not seen.
 */
#ifndef LIBWSM_TESTS_ALLOC_TRACK_H
#define LIBWSM_TESTS_ALLOC_TRACK_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void *wsm_track_malloc(size_t n);
void *wsm_track_calloc(size_t n, size_t size);
void wsm_track_free(void *p);
/* Bytes allocated through the tracker and not yet freed. */
size_t wsm_track_live_bytes(void);

#ifdef BUILDING_WSM
#define malloc(n) wsm_track_malloc(n)
#define calloc(n, size) wsm_track_calloc(n, size)
/* Not tracked: a use fails to link, so it cannot slip past the test. */
#define realloc(p, n) wsm_untracked_realloc(p, n)
#define strdup(s) wsm_untracked_strdup(s)
#define free(p) wsm_track_free(p)
#endif

#endif
