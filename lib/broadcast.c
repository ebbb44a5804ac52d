/*
 * The calls any thread may make to reach a session: progress, error and
 * complete broadcasts, the manual close of a session, and its announcement.
 */
#include <string.h>

#include "internal.h"

/*
 * Takes msg (built by the caller) into the inbox, or runs it at once on
 * the service thread, or frees it.
 */
static int submit(wsm_manager_t *m, int rc, struct wsm_msg *msg)
{
	if (!rc) {
		/* Once pushed, msg belongs to the service thread: read it first. */
		bool is_broadcast = msg->kind != WSM_MSG_CLOSE_SESSION &&
				    msg->kind != WSM_MSG_OPEN_SESSION;
#ifdef WSM_WITH_CLUSTER
		bool reserved = false;

		/* Refused now, on the caller's thread, rather than lost later. */
		if (m->cluster) {
			rc = wsm__cluster_reserve(m, msg);
			reserved = !rc;
		}
#endif
		if (!rc)
			rc = wsm__inbox_push(m, msg);
		if (rc) {
#ifdef WSM_WITH_CLUSTER
			if (reserved)
				wsm__cluster_unreserve(m, msg);
#endif
			wsm__free(m, msg, msg->alloc_size);
		}
		else if (is_broadcast)
			wsm__add(&m->c.broadcasts, 1);
	}
	wsm__release(m);
	return rc;
}

int wsm_broadcast_progress(wsm_manager_t *m, const char *session_id,
			   double progress, const char *message,
			   const char *stage)
{
	struct wsm_msg *msg = NULL;
	int rc = wsm__acquire(m);

	if (rc)
		return rc;
	rc = wsm__msg_new_progress(m, session_id, progress, message, stage, &msg);
	return submit(m, rc, msg);
}

int wsm_broadcast_error(wsm_manager_t *m, const char *session_id,
			const char *error)
{
	struct wsm_msg *msg = NULL;
	int rc = wsm__acquire(m);

	if (rc)
		return rc;
	rc = wsm__msg_new_error(m, session_id, error, &msg);
	return submit(m, rc, msg);
}

int wsm_broadcast_complete(wsm_manager_t *m, const char *session_id,
			   const char *metadata_json)
{
	struct wsm_msg *msg = NULL;
	int rc = wsm__acquire(m);

	if (rc)
		return rc;
	rc = wsm__msg_new_complete(m, session_id, metadata_json, &msg);
	return submit(m, rc, msg);
}

static int open_count(wsm_manager_t *m, const char *id, size_t len)
{
	struct wsm_session *s;
	int n;

	pthread_mutex_lock(&m->table_lock);
	s = wsm__table_find(m, id, len);
	n = s ? (int)s->open : 0;
	pthread_mutex_unlock(&m->table_lock);
	return n;
}

int wsm_session_close(wsm_manager_t *m, const char *session_id)
{
	struct wsm_msg *msg = NULL;
	int rc = wsm__acquire(m), n;

	if (rc)
		return rc;
	rc = wsm__msg_new_close(m, session_id, &msg);
	if (rc) {
		wsm__release(m);
		return rc;
	}
	if (m->cluster) {
		/*
		 * Every node closes its connections when the close comes
		 * back from Redis, after what was broadcast before it; the
		 * count is this node's, which may be 0.
		 */
		n = open_count(m, msg->session_id, msg->session_id_len);
		rc = submit(m, 0, msg);
		return rc ? rc : n;
	}
	if (!wsm__service_check(m)) {
		n = wsm__session_close_now(m, msg->session_id,
					   msg->session_id_len);
		wsm__free(m, msg, msg->alloc_size);
		wsm__release(m);
		return n ? n : WSM_ENOTFOUND;
	}
	n = open_count(m, msg->session_id, msg->session_id_len);
	if (!n) {
		wsm__free(m, msg, msg->alloc_size);
		wsm__release(m);
		return WSM_ENOTFOUND;
	}
	rc = submit(m, 0, msg);
	return rc ? rc : n;
}

int wsm_session_open(wsm_manager_t *m, const char *session_id)
{
	struct wsm_msg *msg = NULL;
	int rc = wsm__acquire(m);

	if (rc)
		return rc;
	if (!m->cfg.retention_ms) /* nothing could hold it */
		rc = WSM_ERANGE;
	if (rc || (rc = wsm__msg_new_open(m, session_id, &msg))) {
		wsm__release(m);
		return rc;
	}
	/* In cluster mode every node hears of it, through Redis. */
	if (!m->cluster && !wsm__service_check(m)) {
		rc = wsm__session_open_now(m, msg->session_id,
					   msg->session_id_len);
		wsm__free(m, msg, msg->alloc_size);
		wsm__release(m);
		return rc;
	}
	/* Admission reads the table on the service thread: go through it. */
	return submit(m, 0, msg);
}
