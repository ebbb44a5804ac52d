/*
 * Broadcast messages: validated and rendered to JSON once, on the calling
 * thread, into a buffer with LWS_PRE headroom and room to put the session's
 * seq in front on the service thread; then shared by every connection.
 * Progress, error and reset are written directly (json_text.c); complete
 * goes through jansson, which parses and validates its metadata.
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

/*
 * A fixed-shape body: "type", "sessionId", up to three more fields (a
 * number or strings; NULL ones left out) and "timestamp", without the
 * opening brace. Returns its length; writes it too when out is not NULL.
 */
struct fixed {
	const char *type;
	const char *id;
	size_t id_len;
	const char *key[3];
	const char *text[3]; /* a JSON string's content, or... */
	const char *number;  /* ...for key[0] when set: written as it is */
	char stamp[24];      /* the timestamp's digits */
};

static size_t put(char *out, size_t at, const char *raw)
{
	size_t n = strlen(raw);

	if (out)
		memcpy(out + at, raw, n);
	return at + n;
}

static size_t put_str(char *out, size_t at, const char *s, size_t n)
{
	if (!out)
		return at + wsm__json_str_len(s, n);
	return (size_t)(wsm__json_str(out + at, s, n) - out);
}

static size_t fixed_body(char *out, const struct fixed *f)
{
	size_t at = put(out, 0, "\"type\":\"");
	int i;

	at = put(out, at, f->type);
	at = put(out, at, "\",\"sessionId\":");
	at = put_str(out, at, f->id, f->id_len);
	for (i = 0; i < 3; i++) {
		if (!f->key[i] || (!f->text[i] && !(i == 0 && f->number)))
			continue;
		at = put(out, at, ",\"");
		at = put(out, at, f->key[i]);
		at = put(out, at, "\":");
		if (i == 0 && f->number)
			at = put(out, at, f->number);
		else
			at = put_str(out, at, f->text[i], strlen(f->text[i]));
	}
	at = put(out, at, ",\"timestamp\":");
	at = put(out, at, f->stamp);
	return put(out, at, "}");
}

static int render_fixed(wsm_manager_t *m, enum wsm_msg_kind kind,
			struct fixed *f, struct wsm_msg **out)
{
	struct wsm_msg *msg;
	size_t n;

	snprintf(f->stamp, sizeof(f->stamp), "%lld", (long long)wsm__wall_ms());
	n = fixed_body(NULL, f);
	msg = msg_alloc(m, kind, f->id, f->id_len, n);
	if (!msg)
		return WSM_ENOMEM;
	fixed_body((char *)msg->buf + LWS_PRE + WSM_SEQ_ROOM, f);
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

int wsm__msg_new_progress(wsm_manager_t *m, const char *id, double progress,
			  const char *message, const char *stage,
			  struct wsm_msg **out)
{
	struct fixed f = { "progress", id, 0, { "progress", "message", "stage" },
			   { NULL, message, stage }, NULL, "" };
	char number[40];
	int rc = check_id(m, id, &f.id_len);

	if (rc)
		return rc;
	if (!isfinite(progress) || progress < 0.0 || progress > 100.0)
		return WSM_ERANGE;
	if (message && (rc = wsm__check_text(message, m->cfg.max_text_len)))
		return rc;
	if (stage && (rc = wsm__check_text(stage, m->cfg.max_text_len)))
		return rc;
	if (wsm__json_real(number, sizeof(number), progress) < 0)
		return WSM_ERANGE;
	f.number = number;
	return render_fixed(m, WSM_MSG_PROGRESS, &f, out);
}

int wsm__msg_new_error(wsm_manager_t *m, const char *id, const char *error,
		       struct wsm_msg **out)
{
	struct fixed f = { "error", id, 0, { "error", NULL, NULL },
			   { error, NULL, NULL }, NULL, "" };
	int rc = check_id(m, id, &f.id_len);

	if (rc)
		return rc;
	if (!error)
		return WSM_EINVAL;
	if ((rc = wsm__check_text(error, m->cfg.max_text_len)))
		return rc;
	return render_fixed(m, WSM_MSG_ERROR, &f, out);
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
	struct fixed f = { "reset", id, id_len, { NULL, NULL, NULL },
			   { NULL, NULL, NULL }, NULL, "" };

	return render_fixed(m, WSM_MSG_RESET, &f, out);
}

int wsm__msg_new_raw(wsm_manager_t *m, enum wsm_msg_kind kind, const char *id,
		     size_t id_len, const char *body, size_t body_len,
		     struct wsm_msg **out)
{
	struct wsm_msg *msg = msg_alloc(m, kind, id, id_len, body_len);

	if (!msg)
		return WSM_ENOMEM;
	/* As render() leaves it: the '{' the stamp overwrites, the body. */
	msg->buf[LWS_PRE + WSM_SEQ_ROOM - 1] = '{';
	memcpy(msg->buf + LWS_PRE + WSM_SEQ_ROOM, body, body_len);
	*out = msg;
	return WSM_OK;
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
