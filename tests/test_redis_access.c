/*
 * Reaching a Redis as production runs it: a password, an ACL user holding
 * only what libwsm needs (the ACL wsm(7) gives operators), TLS with the
 * server's certificate checked (CA file or directory, client
 * certificates), host names resolved off the service loop, and a
 * subscriber that stays connected yet delivers nothing, found by the
 * probe. Each against a real redis-server the test starts.
 */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/cluster_must.h"
#include "support/redis_proxy.h"
#include "support/redis_server.h"
#include "support/tls_files.h"

/* The ACL of wsm(7), for the prefix "wsm:". */
#define WSM_ACL                                                              \
	"resetkeys ~wsm:* resetchannels &wsm:* -@all +auth +ping +info "     \
	"+select +get +set +evalsha +script|load +pexpire +publish "         \
	"+subscribe +unsubscribe +hget +hmget +hset +hincrby +hexists +del " \
	"+xadd +xrange +wait"

static bool failed_twice(void *h)
{
	return harness_metrics(h).cluster_connect_failures >= 2;
}

static bool up(void *h)
{
	return harness_metrics(h).cluster_link_up == 1;
}

/*
 * A browser on node a follows a job published by node b: both links
 * carry a session end to end.
 */
static void job_crosses(harness_t *a, harness_t *b, const char *id)
{
	wsc_t *c = must_join(a, id);

	/* Live on a first: what b publishes next reaches it by its channel. */
	assert_int_equal(wsm_broadcast_progress(harness_mgr(a), id, 10, NULL,
						NULL),
			 0);
	assert_true(must_progress(c, NULL, NULL) == 10);
	assert_int_equal(wsm_broadcast_progress(harness_mgr(b), id, 50, NULL,
						NULL),
			 0);
	assert_true(must_progress(c, NULL, NULL) == 50);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(b), id, NULL), 0);
	must_recv_type(c, "complete");
	wsc_free(c);
}

/* A node that must not come up: its link and its failures say why. */
static harness_t *refused_node(const char *url, struct cluster_node_opts *o,
			       const char *link)
{
	harness_t *h;

	o->unchecked = true;
	h = cluster_node_start(url, "refused", o);
	assert_non_null(h);
	assert_int_equal(harness_wait_events(h, WSM_EVENT_CLUSTER_DOWN, -1,
					     NULL, 1, 5000),
			 0);
	/* Tried again after its backoff, and refused again. */
	assert_int_equal(harness_wait_until(failed_twice, h, 5000), 0);
	must_link(h, link);
	assert_int_equal(harness_metrics(h).cluster_link_up, 0);
	return h;
}

static void test_password(void **state)
{
	struct redis_options ro = { .password = "right-pw" };
	struct cluster_node_opts o = { .password = "right-pw" };
	struct cluster_node_opts wrong = { .password = "wrong-pw" };
	struct cluster_node_opts none = { 0 };
	struct redis_server r;
	harness_t *a, *b, *bad, *anon;
	char out[64];

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start_with(&r, false, &ro), 0);
	a = cluster_node_start(r.url, "node-a", &o);
	b = cluster_node_start(r.url, "node-b", &o);
	assert_non_null(a);
	assert_non_null(b);
	must_link(a, "up");
	job_crosses(a, b, "pw");

	/* A wrong password, and none: refused, said so, retried. */
	bad = refused_node(r.url, &wrong, "auth_failed");
	anon = refused_node(r.url, &none, "auth_failed");
	/* The operator fixes Redis: the next retry gets in. */
	assert_int_equal(redis_cmd(&r, "CONFIG SET requirepass wrong-pw", out,
				   sizeof(out)),
			 0);
	assert_string_equal(out, "+OK");
	assert_int_equal(harness_wait_until(up, bad, 5000), 0);
	must_link(bad, "up");
	must_link(anon, "auth_failed");
	harness_stop(anon);
	harness_stop(bad);
	harness_stop(b);
	harness_stop(a);
	redis_stop(&r);
}

/* An ACL log entry is a command libwsm needed and the ACL refused. */
static void acl_log_is_empty(const struct redis_server *r)
{
	char out[256];

	assert_int_equal(redis_cmd(r, "ACL LOG", out, sizeof(out)), 0);
	if (strcmp(out, "*0"))
		fail_msg("ACL LOG: %s", out);
}

static void test_acl_user_with_least_privilege(void **state)
{
	struct redis_options ro = { .aclfile = "users.acl",
				    .admin_user = "admin",
				    .admin_password = "admin-pw" };
	struct cluster_node_opts o = { .user = "wsm", .password = "wsm-pw",
				       .history = 8 };
	struct cluster_node_opts other = { .user = "other",
					   .password = "other-pw" };
	struct redis_server r;
	harness_t *a, *b, *bad;
	char path[160];
	FILE *f;

	(void)state;
	if (no_redis(__func__))
		return;
	/* In a directory of the test's own, written before Redis starts. */
	snprintf(path, sizeof(path), "/tmp/wsm-acl-XXXXXX");
	assert_non_null(mkdtemp(path));
	strcat(path, "/users.acl");
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "user default off\n"
		   "user admin on >admin-pw ~* &* +@all\n"
		   "user wsm on >wsm-pw " WSM_ACL "\n"
		   "user other on >other-pw ~other:* -@all +ping\n");
	assert_int_equal(fclose(f), 0);
	ro.aclfile = path;
	assert_int_equal(redis_start_with(&r, false, &ro), 0);
	a = cluster_node_start(r.url, "node-a", &o);
	b = cluster_node_start(r.url, "node-b", &o);
	assert_non_null(a);
	assert_non_null(b);
	/* Every script and command a job takes, history and close included. */
	job_crosses(a, b, "acl");
	assert_int_equal(wsm_session_open(harness_mgr(b), "acl2"), 0);
	{
		wsc_t *c = must_join(a, "acl2");

		/* Live on a first: a close is not state a late reader sees. */
		assert_int_equal(wsm_broadcast_progress(harness_mgr(b), "acl2",
							5, NULL, NULL),
				 0);
		assert_true(must_progress(c, NULL, NULL) == 5);
		assert_int_equal(wsm_session_close(harness_mgr(b), "acl2"), 0);
		assert_int_equal(wsc_wait_close(c, 5000),
				 WSM_CLOSE_SESSION_CLOSED);
		wsc_free(c);
	}
	assert_int_equal(harness_wait_until(outbox_empty, b, 5000), 0);
	acl_log_is_empty(&r);
	/* A user that may not run libwsm's commands is told so. */
	bad = refused_node(r.url, &other, "auth_failed");
	harness_stop(bad);
	harness_stop(b);
	harness_stop(a);
	redis_stop(&r);
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
}

static void test_tls(void **state)
{
	struct tls_files t;
	struct redis_options ro = { 0 };
	struct cluster_node_opts o = { 0 };
	struct redis_server r;
	harness_t *a, *b, *c;
	char url[96];

	(void)state;
	if (no_redis(__func__))
		return;
	if (tls_files_make(&t))
		fail_msg("openssl could not make the test's certificates");
	t.require_client_cert = true;
	ro.tls = &t;
	assert_int_equal(redis_start_with(&r, false, &ro), 0);
	/* The server's name as written is checked: a name, or an address. */
	snprintf(url, sizeof(url), "rediss://localhost:%d", r.tls_port);
	o.ca_file = t.ca;
	o.cert_file = t.client_cert;
	o.key_file = t.client_key;
	a = cluster_node_start(url, "node-a", &o);
	assert_non_null(a);
	/* TLS rides the raw socket: lws's libuv loop serves it the same. */
	o.ca_file = NULL;
	o.ca_path = t.ca_dir;
	o.libuv = true;
	b = cluster_node_start(r.tls_url, "node-b", &o);
	assert_non_null(b);
	must_link(a, "up");
	/* TLS and plain nodes share one Redis, and its sessions. */
	c = must_node(r.url, "node-c");
	job_crosses(a, b, "tls");
	job_crosses(c, a, "tls2");
	harness_stop(c);
	harness_stop(b);
	harness_stop(a);
	redis_stop(&r);
	tls_files_remove(&t);
}

static void test_tls_refusals(void **state)
{
	struct tls_files t, elsewhere;
	struct redis_options ro = { 0 };
	struct cluster_node_opts o = { 0 };
	struct redis_server r, e;
	harness_t *h;
	char url[96];

	(void)state;
	if (no_redis(__func__))
		return;
	if (tls_files_make(&t))
		fail_msg("openssl could not make the test's certificates");
	ro.tls = &t;
	assert_int_equal(redis_start_with(&r, false, &ro), 0);
	snprintf(url, sizeof(url), "rediss://localhost:%d", r.tls_port);

	/* Signed by a CA the node was not told to trust. */
	o.ca_file = t.other_ca;
	h = refused_node(url, &o, "tls_failed");
	harness_stop(h);
	/* A client certificate Redis requires and the node has not. */
	redis_stop(&r);
	t.require_client_cert = true;
	assert_int_equal(redis_start_with(&r, false, &ro), 0);
	snprintf(url, sizeof(url), "rediss://localhost:%d", r.tls_port);
	o.ca_file = t.ca;
	h = refused_node(url, &o, "tls_failed");
	harness_stop(h);
	/* Plain RESP to a TLS port is no greeting Redis answers. */
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", r.tls_port);
	h = refused_node(url, &o, "down");
	harness_stop(h);
	redis_stop(&r);

	/* A certificate the right CA signed, for another server's name. */
	elsewhere = t;
	snprintf(elsewhere.server_cert, sizeof(elsewhere.server_cert), "%s",
		 t.elsewhere_cert);
	snprintf(elsewhere.server_key, sizeof(elsewhere.server_key), "%s",
		 t.elsewhere_key);
	elsewhere.require_client_cert = false;
	ro.tls = &elsewhere;
	assert_int_equal(redis_start_with(&e, false, &ro), 0);
	snprintf(url, sizeof(url), "rediss://localhost:%d", e.tls_port);
	h = refused_node(url, &o, "tls_failed");
	harness_stop(h);
	redis_stop(&e);
	tls_files_remove(&t);
}

static bool opened(void *h)
{
	return harness_metrics(h).opened >= 1;
}

static void test_host_names(void **state)
{
	struct cluster_node_opts o = { 0 };
	struct redis_server r;
	harness_t *a, *b, *lost;
	char url[96];
	wsc_t *c;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, true), 0);
	/* "localhost", from /etc/hosts. */
	snprintf(url, sizeof(url), "redis://localhost:%d", r.port);
	a = cluster_node_start(url, "node-a", &o);
	assert_non_null(a);
	b = must_node(r.url, "node-b");
	job_crosses(a, b, "named");
	/* Resolved again for the reconnect after Redis came back. */
	redis_kill(&r, SIGKILL);
	assert_int_equal(harness_wait_events(a, WSM_EVENT_CLUSTER_DOWN, -1,
					     NULL, 1, 5000),
			 0);
	assert_int_equal(redis_restart(&r), 0);
	assert_int_equal(harness_wait_until(up, a, 10000), 0);
	job_crosses(a, b, "named2");

	/*
	 * A name that resolves to nothing (RFC 6761 reserves .invalid):
	 * said so, and the service loop never waits on the lookup: a
	 * browser is admitted meanwhile.
	 */
	o.unchecked = true;
	lost = cluster_node_start("redis://wsm-no-such-host.invalid", "lost",
				  &o);
	assert_non_null(lost);
	c = join_and_wait(lost, "meanwhile", NULL);
	assert_int_equal(harness_wait_until(opened, lost, 5000), 0);
	assert_int_equal(harness_wait_events(lost, WSM_EVENT_CLUSTER_DOWN, -1,
					     NULL, 1, 10000),
			 0);
	must_link(lost, "unresolved");
	wsc_free(c);
	harness_stop(lost);
	harness_stop(b);
	harness_stop(a);
	redis_stop(&r);
}

static bool wedge_found(void *h)
{
	return harness_metrics(h).cluster_wedged >= 1;
}

static bool probes_answered(void *arg)
{
	const struct redis_server *r = arg;
	char out[4096];
	const char *p;

	/* Three probes published (PUBLISH runs only for probes here). */
	if (redis_cmd(r, "INFO commandstats", out, sizeof(out)) ||
	    !(p = strstr(out, "cmdstat_publish:calls=")))
		return false;
	return strtoll(p + strlen("cmdstat_publish:calls="), NULL, 10) >= 3;
}

static void test_probe_finds_a_silent_subscriber(void **state)
{
	/* PINGs would take 5 s to tell: the probe must be what finds it. */
	struct cluster_node_opts o = { .probe_ms = 400, .timeout_ms = 5000 };
	struct redis_server r;
	struct redis_proxy *p;
	harness_t *a, *b;
	wsc_t *c;

	(void)state;
	if (no_redis(__func__))
		return;
	assert_int_equal(redis_start(&r, false), 0);
	p = proxy_start(&r);
	assert_non_null(p);
	a = cluster_node_start(proxy_url(p), "node-a", &o);
	assert_non_null(a);
	/* Quiet but healthy: probes go out and come back. */
	assert_int_equal(harness_wait_until(probes_answered, &r, 5000), 0);
	assert_int_equal(harness_metrics(a).cluster_wedged, 0);

	b = must_node(r.url, "node-b");
	c = must_join(a, "quiet");
	assert_int_equal(wsm_broadcast_progress(harness_mgr(b), "quiet", 10,
						NULL, NULL),
			 0);
	assert_true(must_progress(c, NULL, NULL) == 10);
	/* The subscriber answers PINGs and passes on no message. */
	proxy_mute(p, true);
	assert_int_equal(harness_wait_until(wedge_found, a, 5000), 0);
	/* Connected again and repaired: what was missed, then the end. */
	assert_int_equal(wsm_broadcast_progress(harness_mgr(b), "quiet", 60,
						NULL, NULL),
			 0);
	assert_int_equal(wsm_broadcast_complete(harness_mgr(b), "quiet", NULL),
			 0);
	must_recv_type(c, "complete");
	assert_true(harness_metrics(a).cluster_reconnects >= 1);
	wsc_free(c);
	harness_stop(b);
	harness_stop(a);
	proxy_stop(p);
	redis_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password),
		cmocka_unit_test(test_acl_user_with_least_privilege),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_tls_refusals),
		cmocka_unit_test(test_host_names),
		cmocka_unit_test(test_probe_finds_a_silent_subscriber),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
