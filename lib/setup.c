/*
 * Host setup: what every host needs on its lws context (or vhost) creation
 * info, applied by one call, and the check, when a vhost starts, that the
 * setup is in place.
 */
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "internal.h"

/*
 * libwsm runs the heartbeat itself; lws's own validity timer would be
 * re-sorted into lws's single timer list on every pong.
 */
static const lws_retry_bo_t no_lws_validity = { .secs_since_valid_ping = 0,
						.secs_since_valid_hangup = 0 };

/*
 * The per-vhost options making libwsm's protocol the default. lws reads
 * them for as long as the vhost lives, which may be past the manager, so
 * they live for the process: one pair per distinct (name, host chain),
 * reused by later calls, like the interned protocol names.
 */
struct pvo_pair {
	struct pvo_pair *next;
	struct lws_protocol_vhost_options proto, dflt;
};

static pthread_mutex_t pvo_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pvo_pair *pvo_pairs;

/* The host's own options for name, which ours must keep. */
static const struct lws_protocol_vhost_options *
host_options(const struct lws_protocol_vhost_options *pvo, const char *name)
{
	for (; pvo; pvo = pvo->next)
		if (pvo->name && !strcmp(pvo->name, name))
			return pvo->options;
	return NULL;
}

static const struct lws_protocol_vhost_options *
default_pvo(const char *name, const struct lws_protocol_vhost_options *host)
{
	const struct lws_protocol_vhost_options *own = host_options(host, name);
	struct pvo_pair *p;

	if (lws_pvo_search(own, "default"))
		return host; /* the host made it the default already */
	pthread_mutex_lock(&pvo_lock);
	for (p = pvo_pairs; p; p = p->next)
		if (p->proto.name == name && p->proto.next == host &&
		    p->dflt.next == own)
			break;
	if (!p && (p = calloc(1, sizeof(*p)))) {
		p->dflt = (struct lws_protocol_vhost_options){ own, NULL,
							       "default", "" };
		p->proto = (struct lws_protocol_vhost_options){ host, &p->dflt,
								name, "" };
		p->next = pvo_pairs;
		pvo_pairs = p;
	}
	pthread_mutex_unlock(&pvo_lock);
	return p ? &p->proto : NULL;
}

/* The host's list, counted and read whether given as array or pointers. */
static size_t host_count(const struct lws_context_creation_info *info)
{
	size_t n = 0;

	if (info->pprotocols)
		while (info->pprotocols[n])
			n++;
	else if (info->protocols)
		while (info->protocols[n].callback)
			n++;
	return n;
}

static const struct lws_protocols *
host_entry(const struct lws_context_creation_info *info, size_t i)
{
	return info->pprotocols ? info->pprotocols[i] : &info->protocols[i];
}

/* Guards every entry but libwsm's; false when out of guards or memory. */
static bool build(wsm_manager_t *m, const struct lws_context_creation_info *info,
		  struct lws_protocols *list, size_t n, bool *has_own)
{
	size_t i;

	*has_own = false;
	for (i = 0; i < n; i++) {
		list[i] = *host_entry(info, i);
		if (list[i].name && !strcmp(list[i].name, m->protocol.name)) {
			*has_own = true; /* delegation: the host's entry is ours */
			continue;
		}
		if (wsm__guard_is(list[i].callback))
			continue; /* set up already */
		if (!(list[i].callback = wsm__guard_new(m, list[i].callback)))
			return false;
	}
	return true;
}

int wsm_setup_info(wsm_manager_t *m, struct lws_context_creation_info *info)
{
	struct wsm_protocol_list *pl;
	const struct lws_protocol_vhost_options *pvo;
	size_t n;
	bool has_own;
	int rc = wsm__acquire(m);

	if (rc)
		return rc;
	if (!info) {
		wsm__release(m);
		return WSM_EINVAL;
	}
	n = host_count(info);
	/* Room for libwsm's entry and the terminator lws looks for. */
	pl = wsm__alloc(m, sizeof(*pl) + (n + 2) * sizeof(pl->entries[0]));
	if (!pl) {
		wsm__release(m);
		return WSM_ENOMEM;
	}
	memset(pl, 0, sizeof(*pl) + (n + 2) * sizeof(pl->entries[0]));
	pl->count = n + 2;
	/* Held by the manager from here, so destroy frees it on any path. */
	pthread_mutex_lock(&m->inbox_lock);
	pl->next = m->protocol_lists;
	m->protocol_lists = pl;
	pthread_mutex_unlock(&m->inbox_lock);
	if (!build(m, info, pl->entries, n, &has_own)) {
		wsm__release(m);
		return WSM_ENOMEM;
	}
	if (!has_own)
		pl->entries[n] = m->protocol;
	if (!(pvo = default_pvo(m->protocol.name, info->pvo))) {
		wsm__release(m);
		return WSM_ENOMEM;
	}
	info->protocols = pl->entries;
	info->pprotocols = NULL;
	info->pvo = pvo;
	if (!info->retry_and_idle_policy)
		info->retry_and_idle_policy = &no_lws_validity;
	atomic_store(&m->setup_applied, true);
	wsm__release(m);
	return WSM_OK;
}

void wsm__protocol_lists_free(wsm_manager_t *m)
{
	struct wsm_protocol_list *pl, *next;

	for (pl = m->protocol_lists; pl; pl = next) {
		next = pl->next;
		wsm__free(m, pl, sizeof(*pl) + pl->count * sizeof(pl->entries[0]));
	}
	m->protocol_lists = NULL;
}

/*
 * Called as libwsm's protocol (or the host's delegating one) starts on a
 * vhost, with the per-vhost options lws passes to LWS_CALLBACK_PROTOCOL_INIT.
 * Misses are logged loudly and kept in the metrics: both fail silently
 * otherwise.
 */
void wsm__setup_check(wsm_manager_t *m, struct lws *wsi, const void *pvo)
{
	const struct lws_protocols *p = lws_get_protocol(wsi);
	const char *name = p && p->name ? p->name : m->protocol.name;
	uint64_t problems = 0;

	if (!lws_pvo_search(pvo, "default")) {
		problems |= WSM_SETUP_NOT_DEFAULT;
		lwsl_err("wsm: protocol \"%s\" is not the vhost's default: "
			 "browsers (no Sec-WebSocket-Protocol) never reach "
			 "libwsm; see wsm_setup_info(3)\n", name);
	}
	if (!atomic_load(&m->setup_applied)) {
		problems |= WSM_SETUP_UNGUARDED;
		lwsl_err("wsm: the vhost's other protocols are not guarded: "
			 "a client naming one as its subprotocol bypasses "
			 "libwsm; see wsm_setup_info(3)\n");
	}
	atomic_fetch_or(&m->c.setup_problems, problems);
}
