/*
 * The upgrade guard; see guard.h.
 *
 * lws hands a WebSocket upgrade to whichever protocol of the vhost the
 * client names in Sec-WebSocket-Protocol, and asks only that protocol's
 * callback whether to accept it: a client naming the host's HTTP protocol
 * would skip every check of libwsm's. Every h1 upgrade first passes
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE on the vhost's first protocol, so the
 * guard in front of the host's protocols works out there, as lws will, which
 * protocol the upgrade is bound for and refuses it unless it is libwsm's;
 * and in case an upgrade gets further (ws over h2), a guarded protocol
 * refuses it in its filter callback.
 *
 * lws calls the first protocol's callback for other wsis too (poll, thread
 * and wsi-destroy reasons), so a guard cannot find the host's callback
 * through the wsi. Each guard is therefore a function of its own, one per
 * slot of a fixed table. A slot keeps the host callback it was made for
 * for the life of the process, since lws may call it before the vhost's
 * LWS_CALLBACK_PROTOCOL_INIT and after the manager is gone (a context
 * destroyed before it was ever serviced); it serves a new manager guarding
 * the same callback once no manager and no initialised vhost use it.
 */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "guard.h"
#include "internal.h"

#define GUARD_SLOTS 64

struct guard {
	lws_callback_function *orig; /* the host's; never changes once set */
	wsm_manager_t *m;            /* NULL once the manager is destroyed */
	unsigned vhosts;             /* vhosts initialised and not destroyed */
};

static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static struct guard guards[GUARD_SLOTS];

/* Takes a reference on the slot's manager, or gives NULL if it is gone. */
static wsm_manager_t *slot_manager(struct guard *g)
{
	wsm_manager_t *m;

	pthread_mutex_lock(&guard_lock);
	m = g->m && !wsm__acquire(g->m) ? g->m : NULL;
	pthread_mutex_unlock(&guard_lock);
	return m;
}

static int refuse_here(struct guard *g, struct lws *wsi)
{
	wsm_manager_t *m = slot_manager(g);
	int rc;

	if (!m)
		return wsm__refuse(NULL, wsi, WSM_REFUSAL_SHUTDOWN, 0, NULL);
	rc = wsm__refuse(m, wsi, WSM_REFUSAL_SUBPROTOCOL, 0, NULL);
	wsm__release(m);
	return rc;
}

static int confirm_here(struct guard *g, struct lws *wsi, const char *up)
{
	wsm_manager_t *m = slot_manager(g);
	int rc;

	if (!m) /* what libwsm's own entry answers once its manager is gone */
		return up && !strcasecmp(up, "websocket")
			       ? wsm__refuse(NULL, wsi, WSM_REFUSAL_SHUTDOWN, 0,
					     NULL)
			       : 0;
	rc = wsm__confirm_upgrade(m, wsi, up);
	wsm__release(m);
	return rc;
}

static int guard_call(unsigned k, struct lws *wsi,
		      enum lws_callback_reasons reason, void *user, void *in,
		      size_t len)
{
	struct guard *g = &guards[k];
	lws_callback_function *orig = g->orig;
	int rc;

	switch (reason) {
	case LWS_CALLBACK_PROTOCOL_INIT:
		pthread_mutex_lock(&guard_lock);
		g->vhosts++;
		pthread_mutex_unlock(&guard_lock);
		break;
	case LWS_CALLBACK_PROTOCOL_DESTROY:
		rc = orig(wsi, reason, user, in, len);
		pthread_mutex_lock(&guard_lock);
		g->vhosts--;
		pthread_mutex_unlock(&guard_lock);
		return rc;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		if ((rc = confirm_here(g, wsi, in)))
			return rc;
		break;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return refuse_here(g, wsi);
	default:
		break;
	}
	return orig(wsi, reason, user, in, len);
}

/* One function per slot: lws gives a callback nothing that tells them apart. */
#define GUARD_FN(k)                                                          \
	static int guard_##k(struct lws *wsi,                                  \
			     enum lws_callback_reasons reason, void *user,     \
			     void *in, size_t len)                             \
	{                                                                      \
		return guard_call(k, wsi, reason, user, in, len);              \
	}
#define GUARD_FN8(k) GUARD_FN(k##0) GUARD_FN(k##1) GUARD_FN(k##2)            \
	GUARD_FN(k##3) GUARD_FN(k##4) GUARD_FN(k##5) GUARD_FN(k##6)          \
	GUARD_FN(k##7)
/* Octal slot numbers 000..077: 64 slots. */
GUARD_FN8(00) GUARD_FN8(01) GUARD_FN8(02) GUARD_FN8(03)
GUARD_FN8(04) GUARD_FN8(05) GUARD_FN8(06) GUARD_FN8(07)

#define GUARD_REF8(k) guard_##k##0, guard_##k##1, guard_##k##2, guard_##k##3, \
	guard_##k##4, guard_##k##5, guard_##k##6, guard_##k##7
static lws_callback_function *const guard_fns[GUARD_SLOTS] = {
	GUARD_REF8(00), GUARD_REF8(01), GUARD_REF8(02), GUARD_REF8(03),
	GUARD_REF8(04), GUARD_REF8(05), GUARD_REF8(06), GUARD_REF8(07),
};

bool wsm__guard_is(lws_callback_function *cb)
{
	unsigned k;

	for (k = 0; k < GUARD_SLOTS; k++)
		if (guard_fns[k] == cb)
			return true;
	return false;
}

lws_callback_function *wsm__guard_new(wsm_manager_t *m,
				      lws_callback_function *orig)
{
	lws_callback_function *fn = NULL;
	unsigned k, free_k = GUARD_SLOTS;

	pthread_mutex_lock(&guard_lock);
	for (k = 0; k < GUARD_SLOTS && !fn; k++) {
		if (guards[k].orig == orig && !guards[k].m &&
		    !guards[k].vhosts) {
			guards[k].m = m; /* idle, for the same callback */
			fn = guard_fns[k];
		} else if (!guards[k].orig && free_k == GUARD_SLOTS) {
			free_k = k;
		}
	}
	if (!fn && free_k < GUARD_SLOTS) {
		guards[free_k].orig = orig;
		guards[free_k].m = m;
		fn = guard_fns[free_k];
	}
	pthread_mutex_unlock(&guard_lock);
	return fn;
}

void wsm__guard_release(wsm_manager_t *m)
{
	unsigned k;

	pthread_mutex_lock(&guard_lock);
	for (k = 0; k < GUARD_SLOTS; k++)
		if (guards[k].m == m)
			guards[k].m = NULL;
	pthread_mutex_unlock(&guard_lock);
}

/*
 * The protocol lws will bind the upgrade to, chosen as lws 4.1 does in
 * lws_process_ws_upgrade(): the first name in Sec-WebSocket-Protocol that
 * the vhost knows, tokenised the same way. With no header lws takes the
 * vhost's default, which the bind-time check makes sure is libwsm's.
 * Returns 0 for "libwsm's", else the refusal reason.
 */
static wsm_refusal_t check_target(wsm_manager_t *m, struct lws *wsi)
{
	char buf[128] = "", name[64];
	const struct lws_protocols *p;
	struct lws_tokenize ts;
	lws_tokenize_elem e;
	int n;

	lws_tokenize_init(&ts, buf, LWS_TOKENIZE_F_COMMA_SEP_LIST |
				    LWS_TOKENIZE_F_MINUS_NONTERM |
				    LWS_TOKENIZE_F_DOT_NONTERM |
				    LWS_TOKENIZE_F_RFC7230_DELIMS);
	n = lws_hdr_copy(wsi, buf, sizeof(buf) - 1, WSI_TOKEN_PROTOCOL);
	if (n < 0)
		return WSM_REFUSAL_SUBPROTOCOL; /* lws would drop it: too long */
	if (n == 0)
		return WSM_REFUSAL_NONE;
	ts.len = (size_t)n;
	do {
		e = lws_tokenize(&ts);
		if (e == LWS_TOKZE_TOKEN) {
			if (lws_tokenize_cstr(&ts, name, sizeof(name)))
				return WSM_REFUSAL_SUBPROTOCOL;
			p = lws_vhost_name_to_protocol(lws_get_vhost(wsi), name);
			if (p)
				return p->name && !strcmp(p->name, m->protocol.name)
					       ? WSM_REFUSAL_NONE
					       : WSM_REFUSAL_SUBPROTOCOL;
		} else if (e != LWS_TOKZE_DELIMITER && e != LWS_TOKZE_ENDED) {
			return WSM_REFUSAL_SUBPROTOCOL; /* malformed list */
		}
	} while (e > 0);
	return WSM_REFUSAL_SUBPROTOCOL; /* no name the vhost knows */
}

int wsm__confirm_upgrade(wsm_manager_t *m, struct lws *wsi, const char *up)
{
	wsm_refusal_t why;

	if (!up || strcasecmp(up, "websocket"))
		return 0; /* h2c and unknown upgrades are lws's to answer */
	why = check_target(m, wsi);
	return why ? wsm__refuse(m, wsi, why, 0, NULL) : 0;
}
