/*
 * A CMake user of libwsm, linked with wsm::wsm alone: a real lws server on
 * an ephemeral loopback port with libwsm's protocol, serviced until the
 * manager attaches, then drained, destroyed and torn down. Exits 0 when
 * every step worked.
 */
#include <wsm.h>

#include <libwebsockets.h>

#include <stdio.h>
#include <string.h>

static int drained;

static void on_event(void *user, wsm_event_t event, uint64_t conn_id,
		     const char *session_id, wsm_close_cause_t cause)
{
	(void)user;
	(void)conn_id;
	(void)session_id;
	(void)cause;
	if (event == WSM_EVENT_DRAINED)
		drained = 1;
}

static int fail(const char *what, int code)
{
	fprintf(stderr, "cmake consumer: %s: %s (%d)\n", what,
		wsm_strerror(code), code);
	return 1;
}

int main(void)
{
	static const struct lws_protocols protocols[] = {
		{ "http", lws_callback_http_dummy, 0, 0, 0, NULL, 0 },
		{ NULL, NULL, 0, 0, 0, NULL, 0 }
	};
	struct lws_context_creation_info info;
	struct lws_context *ctx;
	wsm_config_t *cfg = wsm_config_new();
	wsm_manager_t *m;
	wsm_metrics_t mt;
	int err = WSM_OK, rc, i;

	if (wsm_version() != WSM_VERSION_HEX) {
		fprintf(stderr, "cmake consumer: library %#x, header %#x\n",
			wsm_version(), WSM_VERSION_HEX);
		return 1;
	}
	if (!cfg)
		return fail("wsm_config_new", WSM_ENOMEM);
	if ((rc = wsm_config_set_event_cb(cfg, on_event, NULL)) != 0)
		return fail("wsm_config_set_event_cb", rc);
	m = wsm_manager_new(cfg, &err);
	wsm_config_free(cfg);
	if (!m)
		return fail("wsm_manager_new", err);

	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = 0; /* any free port */
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	if ((rc = wsm_setup_info(m, &info)) != 0)
		return fail("wsm_setup_info", rc);
	if (!(ctx = lws_create_context(&info))) {
		fprintf(stderr, "cmake consumer: lws_create_context failed\n");
		return 1;
	}
	/* The manager attaches at PROTOCOL_INIT; a broadcast then finds it. */
	for (i = 0; i < 5; i++)
		lws_service(ctx, -1);
	if ((rc = wsm_broadcast_progress(m, "job-1", 50.0, "half", NULL)) < 0)
		return fail("wsm_broadcast_progress", rc);
	mt.size = sizeof(mt);
	if ((rc = wsm_metrics(m, &mt)) != 0)
		return fail("wsm_metrics", rc);
	if ((rc = wsm_drain(m, 0)) < 0)
		return fail("wsm_drain", rc);
	if (!drained) {
		fprintf(stderr, "cmake consumer: no WSM_EVENT_DRAINED\n");
		return 1;
	}
	wsm_manager_destroy(m);
	lws_context_destroy(ctx);
	printf("cmake consumer: libwsm %s, a server drained and stopped\n",
	       WSM_VERSION_STRING);
	return 0;
}
