/*
 * The manager's metrics, and the jobs', in the Prometheus text exposition
 * format (version 0.0.4), so that GET /metrics can be scraped as is.
 */
#ifndef PROGRESS_BROADCAST_PROMETHEUS_H
#define PROGRESS_BROADCAST_PROMETHEUS_H

#include <stddef.h>

#include <wsm.h>

struct jobs;

#define PROMETHEUS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * The whole exposition, malloc'ed, its length in *len; jobs may be NULL.
 * NULL with *err set to a WSM_E* code (or WSM_ENOMEM) on failure. Any thread.
 */
char *prometheus_render(wsm_manager_t *m, struct jobs *jobs, size_t *len,
			int *err);

#endif
