/*
 * Counted allocation: held_bytes is the sum of what is allocated here and not
 * yet freed, so the metric is a count, never an estimate.
 */
#include <stdlib.h>

#include "internal.h"

void *wsm__alloc(wsm_manager_t *m, size_t n)
{
	void *p = calloc(1, n);

	if (p)
		atomic_fetch_add_explicit(&m->c.held_bytes, n,
					  memory_order_relaxed);
	return p;
}

void wsm__free(wsm_manager_t *m, void *p, size_t n)
{
	if (!p)
		return;
	atomic_fetch_sub_explicit(&m->c.held_bytes, n, memory_order_relaxed);
	free(p);
}
