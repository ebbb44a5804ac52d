/*
 * The tracker behind alloc_track.h: an open-addressing table of live
 * blocks and their sizes, under one lock (libwsm allocates from any
 * thread). Blocks it never saw, such as jansson's json_dumps() results
 * that libwsm frees, pass straight to free().
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_track.h"

#define SLOTS (1u << 20) /* far more blocks than any test holds */
#define GONE ((void *)1)

static struct block {
	void *p;
	size_t n;
} table[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t live;

static size_t hash(const void *p)
{
	return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) & (SLOTS - 1);
}

static void remember(void *p, size_t n)
{
	size_t i;

	if (!p)
		return;
	pthread_mutex_lock(&lock);
	for (i = hash(p); table[i].p && table[i].p != GONE; i = (i + 1) & (SLOTS - 1))
		;
	table[i].p = p;
	table[i].n = n;
	live += n;
	pthread_mutex_unlock(&lock);
}

static void forget(void *p)
{
	size_t i;

	if (!p)
		return;
	pthread_mutex_lock(&lock);
	for (i = hash(p); table[i].p; i = (i + 1) & (SLOTS - 1))
		if (table[i].p == p) {
			table[i].p = GONE;
			live -= table[i].n;
			break;
		}
	pthread_mutex_unlock(&lock);
}

void *wsm_track_malloc(size_t n)
{
	void *p = malloc(n);

	remember(p, n);
	return p;
}

void *wsm_track_calloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	remember(p, n * size);
	return p;
}

void wsm_track_free(void *p)
{
	forget(p);
	free(p);
}

size_t wsm_track_live_bytes(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = live;
	pthread_mutex_unlock(&lock);
	return n;
}
