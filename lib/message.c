/*
 * Broadcast messages: validated and rendered to JSON once, on the calling
 * thread, into a buffer with LWS_PRE headroom and room to put the session's
 * seq in front on the service thread; then shared by every connection.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

static int check_id(wsm_manager_t *m, const char *id, size_t *len)
{
	if (!id)
		return WSM_EINVAL;
	*len = strnlen(id, WSM_SESSION_ID_LIMIT + 1);
	return wsm__check_session_id(id, *len, m->cfg.session_id_max_len);
}

static struct wsm_msg *msg_alloc(wsm_manager_t *m, enum wsm_msg_kind kind,
				 const char *id, size_t id_len, size_t body_len)
{
	size_t size = sizeof(struct wsm_msg) + LWS_PRE + WSM_SEQ_ROOM + body_len;
	struct wsm_msg *msg = wsm__alloc(m, size);

	if (!msg)
		return NULL;
	msg->alloc_size = size;
	msg->kind = (uint8_t)kind;
	msg->body_len = body_len;
	msg->session_id_len = (uint8_t)id_len;
	memcpy(msg->session_id, id, id_len);
	return msg;
}

/* Renders obj (which it consumes) behind the seq room. */
static int render(wsm_manager_t *m, enum wsm_msg_kind kind, const char *id,
		  size_t id_len, json_t *obj, struct wsm_msg **out)
{
	struct wsm_msg *msg;
	size_t n;

	if (!obj)
		return WSM_ENOMEM;
	json_object_set_new(obj, "timestamp", json_integer(wsm__wall_ms()));
	n = json_dumpb(obj, NULL, 0, DUMP_FLAGS);
	if (n < 2) {
		json_decref(obj);
		return WSM_ENOMEM;
	}
	/* The body is the object without its '{', which the stamp supplies. */
	msg = msg_alloc(m, kind, id, id_len, n - 1);
	if (!msg) {
		json_decref(obj);
		return WSM_ENOMEM;
	}
	json_dumpb(obj, (char *)msg->buf + LWS_PRE + WSM_SEQ_ROOM - 1, n,
		   DUMP_FLAGS);
	json_decref(obj);
	*out = msg;
	return WSM_OK;
}

static json_t *header(const char *type, const char *id, size_t id_len)
{
	json_t *obj = json_object();

	if (!obj)
		return NULL;
	if (json_object_set_new(obj, "type", json_string(type)) ||
	    json_object_set_new(obj, "sessionId", json_stringn(id, id_len))) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static int add_string(json_t *obj, const char *key, const char *value)
{
	return json_object_set_new(obj, key, json_string(value)) ? WSM_ENOMEM
								 : WSM_OK;
}

int wsm__msg_new_progress(wsm_manager_t *m, const char *id, double progress,
			  const char *message, const char *stage,
			  struct wsm_msg **out)
{
	size_t id_len;
	json_t *obj;
	int rc = check_id(m, id, &id_len);

	if (rc)
		return rc;
	if (!isfinite(progress) || progress < 0.0 || progress > 100.0)
		return WSM_ERANGE;
	if (message && (rc = wsm__check_text(message, m->cfg.max_text_len)))
		return rc;
	if (stage && (rc = wsm__check_text(stage, m->cfg.max_text_len)))
		return rc;
	obj = header("progress", id, id_len);
	if (!obj)
		return WSM_ENOMEM;
	if (json_object_set_new(obj, "progress", json_real(progress)) ||
	    (message && add_string(obj, "message", message)) ||
	    (stage && add_string(obj, "stage", stage))) {
		json_decref(obj);
		return WSM_ENOMEM;
	}
	return render(m, WSM_MSG_PROGRESS, id, id_len, obj, out);
}

int wsm__msg_new_error(wsm_manager_t *m, const char *id, const char *error,
		       struct wsm_msg **out)
{
	size_t id_len;
	json_t *obj;
	int rc = check_id(m, id, &id_len);

	if (rc)
		return rc;
	if (!error)
		return WSM_EINVAL;
	if ((rc = wsm__check_text(error, m->cfg.max_text_len)))
		return rc;
	obj = header("error", id, id_len);
	if (!obj || add_string(obj, "error", error)) {
		json_decref(obj);
		return WSM_ENOMEM;
	}
	return render(m, WSM_MSG_ERROR, id, id_len, obj, out);
}

static int parse_metadata(wsm_manager_t *m, const char *text, json_t **out)
{
	size_t len;
	uint32_t st = 0;

	if (!text) {
		*out = json_object();
		return *out ? WSM_OK : WSM_ENOMEM;
	}
	len = strnlen(text, (size_t)m->cfg.max_metadata_len + 1);
	if ((int64_t)len > m->cfg.max_metadata_len)
		return WSM_ETOOLONG;
	if (!wsm__utf8_feed(&st, (const unsigned char *)text, len) || st)
		return WSM_EUTF8;
	*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		return WSM_EJSON;
	}
	return WSM_OK;
}

int wsm__msg_new_complete(wsm_manager_t *m, const char *id,
			  const char *metadata_json, struct wsm_msg **out)
{
	size_t id_len;
	json_t *obj, *meta;
	int rc = check_id(m, id, &id_len);

	if (rc)
		return rc;
	if ((rc = parse_metadata(m, metadata_json, &meta)))
		return rc;
	obj = header("complete", id, id_len);
	if (!obj || json_object_set_new(obj, "metadata", meta)) {
		if (!obj)
			json_decref(meta);
		json_decref(obj);
		return WSM_ENOMEM;
	}
	return render(m, WSM_MSG_COMPLETE, id, id_len, obj, out);
}

static int command(wsm_manager_t *m, enum wsm_msg_kind kind, const char *id,
		   struct wsm_msg **out)
{
	size_t id_len;
	int rc = check_id(m, id, &id_len);

	if (rc)
		return rc;
	*out = msg_alloc(m, kind, id, id_len, 0);
	return *out ? WSM_OK : WSM_ENOMEM;
}

int wsm__msg_new_close(wsm_manager_t *m, const char *id, struct wsm_msg **out)
{
	return command(m, WSM_MSG_CLOSE_SESSION, id, out);
}

int wsm__msg_new_open(wsm_manager_t *m, const char *id, struct wsm_msg **out)
{
	return command(m, WSM_MSG_OPEN_SESSION, id, out);
}

int wsm__msg_new_reset(wsm_manager_t *m, const char *id, size_t id_len,
		       struct wsm_msg **out)
{
	json_t *obj = header("reset", id, id_len);

	if (!obj)
		return WSM_ENOMEM;
	return render(m, WSM_MSG_RESET, id, id_len, obj, out);
}

void wsm__msg_stamp(struct wsm_msg *msg, uint64_t seq, uint32_t epoch)
{
	char head[WSM_SEQ_ROOM + 1];
	int n = snprintf(head, sizeof(head), "{\"seq\":%llu,\"epoch\":%lu,",
			 (unsigned long long)seq, (unsigned long)epoch);

	msg->seq = seq;
	msg->payload = msg->buf + LWS_PRE + WSM_SEQ_ROOM - n;
	memcpy(msg->payload, head, (size_t)n);
	msg->payload_len = (size_t)n + msg->body_len;
}

void wsm__msg_unref(wsm_manager_t *m, struct wsm_msg *msg)
{
	if (msg && --msg->refs == 0)
		wsm__free(m, msg, msg->alloc_size);
}
