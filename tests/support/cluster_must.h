/*
 * cmocka-asserting helpers of the cluster tests; include after <cmocka.h>.
 */
#ifndef LIBWSM_TESTS_CLUSTER_MUST_H
#define LIBWSM_TESTS_CLUSTER_MUST_H

#include <stdlib.h>
#include <string.h>

#include "cluster_node.h"
#include "must.h"
#include "redis_server.h"

/* True, with a note, when redis-server is not installed: the test skips. */
static inline bool no_redis(const char *test)
{
	if (redis_server_path())
		return false;
	harness_note_skip(test, "redis-server is not installed");
	return true;
}

/* A node against url (the defaults of cluster_node_start()), up. */
static inline harness_t *must_node(const char *url, const char *id)
{
	struct cluster_node_opts o = { 0 };
	harness_t *h = cluster_node_start(url, id, &o);

	assert_non_null(h);
	return h;
}

/* A command Redis must take without an error reply. */
static inline void must_redis(const struct redis_server *r, const char *words)
{
	char out[128];

	assert_int_equal(redis_cmd(r, words, out, sizeof(out)), 0);
	if (out[0] == '-')
		fail_msg("%s: %s", words, out);
}

/* The next message must be of this type: its seq, its epoch in *epoch. */
static inline int64_t must_next(wsc_t *c, const char *type, int64_t *epoch)
{
	json_t *j = recv_json(c, 5000);
	int64_t seq;

	assert_non_null(j);
	if (strcmp(json_string_value(json_object_get(j, "type")), type))
		fail_msg("%s, not %s",
			 json_string_value(json_object_get(j, "type")), type);
	seq = json_integer_value(json_object_get(j, "seq"));
	if (epoch)
		*epoch = json_integer_value(json_object_get(j, "epoch"));
	json_decref(j);
	return seq;
}

/* How many scripts Redis ran so far (EVALSHA in INFO commandstats). */
static inline int64_t redis_scripts_run(const struct redis_server *r)
{
	char out[4096];
	const char *p;

	if (redis_cmd(r, "INFO commandstats", out, sizeof(out)) ||
	    !(p = strstr(out, "cmdstat_evalsha:calls=")))
		return 0;
	return strtoll(p + strlen("cmdstat_evalsha:calls="), NULL, 10);
}

/* The next message must be a progress: its value; seq, epoch if asked. */
static inline double must_progress(wsc_t *c, int64_t *seq, int64_t *epoch)
{
	json_t *j = recv_json(c, 5000);
	double v;

	assert_non_null(j);
	if (strcmp(json_string_value(json_object_get(j, "type")), "progress"))
		fail_msg("%s, not progress",
			 json_string_value(json_object_get(j, "type")));
	v = json_number_value(json_object_get(j, "progress"));
	if (seq)
		*seq = json_integer_value(json_object_get(j, "seq"));
	if (epoch)
		*epoch = json_integer_value(json_object_get(j, "epoch"));
	json_decref(j);
	return v;
}

/* The status document's cluster.link must be want. */
static inline void must_link(harness_t *h, const char *want)
{
	char buf[16384];
	json_t *doc;
	const char *link;

	assert_true(wsm_status_json(harness_mgr(h), buf, sizeof(buf)) > 0);
	doc = json_loads(buf, 0, NULL);
	assert_non_null(doc);
	link = json_string_value(
		json_object_get(json_object_get(doc, "cluster"), "link"));
	assert_non_null(link);
	if (strcmp(link, want))
		fail_msg("cluster.link is \"%s\", not \"%s\"", link, want);
	json_decref(doc);
}

/* For harness_wait_until(): nothing waits in the node's outbox. */
static inline bool outbox_empty(void *h)
{
	wsm_metrics_t mx = harness_metrics(h);

	return mx.cluster_outbox_messages == 0 && mx.cluster_outbox_bytes == 0;
}

#endif
