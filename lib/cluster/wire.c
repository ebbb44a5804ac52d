/*
 * The messages on a session's channel. Other nodes publish them through
 * the PUBLISH script, but anyone with access to Redis could publish
 * anything: each is checked before it reaches a browser (numbers in range,
 * valid UTF-8, a JSON object of the channel's session and the kind's type),
 * and anything else is dropped.
 */
#include <jansson.h>
#include <string.h>

#include "cluster.h"

/* Largest body accepted: a complete with the largest metadata, and room. */
#define WSM_WIRE_BODY_MAX (2u * 1048576u + 65536u)

static const char *number(const char *p, const char *end, uint64_t max,
			  uint64_t *out)
{
	uint64_t v = 0;
	const char *start = p;

	while (p < end && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');

		if (v > (max - d) / 10)
			return NULL;
		v = v * 10 + d;
		p++;
	}
	if (p == start || p - start > 20 || (*start == '0' && p - start > 1))
		return NULL;
	*out = v;
	return p;
}

int wsm__wire_parse(const char *s, size_t len, struct wsm_wire *w)
{
	const char *p = s, *end = s + len;
	uint64_t epoch;

	memset(w, 0, sizeof(*w));
	if (!(p = number(p, end, (1ull << 53) - 1, &w->seq)) || p == end ||
	    *p++ != ' ')
		return WSM_EINVAL;
	if (!(p = number(p, end, 0x7fffffff, &epoch)) || p == end ||
	    *p++ != ' ' || p == end)
		return WSM_EINVAL;
	w->epoch = (uint32_t)epoch;
	w->kind = *p++;
	w->body = p;
	w->body_len = (size_t)(end - p);
	if (w->kind == 'x')
		return w->body_len ? WSM_EINVAL : WSM_OK;
	if ((w->kind != 'p' && w->kind != 'e' && w->kind != 'c') ||
	    !w->seq || !w->epoch || w->body_len < 2 ||
	    w->body_len > WSM_WIRE_BODY_MAX || p[w->body_len - 1] != '}')
		return WSM_EINVAL;
	return WSM_OK;
}

char wsm__wire_kind(enum wsm_msg_kind kind)
{
	switch (kind) {
	case WSM_MSG_PROGRESS: return 'p';
	case WSM_MSG_ERROR: return 'e';
	case WSM_MSG_COMPLETE: return 'c';
	default: return 'x';
	}
}

static bool is_ours(json_t *o, const char *type, const char *id,
		    size_t id_len)
{
	json_t *t = json_object_get(o, "type"), *sid = json_object_get(o, "sessionId");

	/* The stamp puts seq and epoch in front: a second pair would lie. */
	return json_is_object(o) && json_is_string(t) &&
	       !json_object_get(o, "seq") && !json_object_get(o, "epoch") &&
	       !strcmp(json_string_value(t), type) && json_is_string(sid) &&
	       json_string_length(sid) == id_len &&
	       !memcmp(json_string_value(sid), id, id_len);
}

int wsm__wire_message(wsm_manager_t *m, const char *id, size_t id_len,
		      char kind, const char *body, size_t body_len,
		      struct wsm_msg **out)
{
	enum wsm_msg_kind k = kind == 'p' ? WSM_MSG_PROGRESS
			      : kind == 'e' ? WSM_MSG_ERROR
					    : WSM_MSG_COMPLETE;
	const char *type = kind == 'p' ? "progress"
			   : kind == 'e' ? "error"
					 : "complete";
	struct wsm_msg *msg = NULL;
	uint32_t st = 0;
	json_t *o;
	int rc;

	*out = NULL;
	if (body_len > WSM_WIRE_BODY_MAX ||
	    !wsm__utf8_feed(&st, (const unsigned char *)body, body_len) || st)
		return WSM_EINVAL;
	if ((rc = wsm__msg_new_raw(m, k, id, id_len, body, body_len, &msg)))
		return rc;
	/* The object as a browser will read it: '{' and the body. */
	o = json_loadb((const char *)msg->buf + LWS_PRE + WSM_SEQ_ROOM - 1,
		       body_len + 1, JSON_REJECT_DUPLICATES, NULL);
	if (!is_ours(o, type, id, id_len)) {
		json_decref(o);
		wsm__free(m, msg, msg->alloc_size);
		return WSM_EINVAL;
	}
	json_decref(o);
	*out = msg;
	return WSM_OK;
}
