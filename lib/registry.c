/*
 * The registry of live managers. A handle used after wsm_manager_destroy()
 * is looked up by address (never dereferenced) and refused, and destroy
 * waits for calls already inside the manager before freeing it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t registry_idle = PTHREAD_COND_INITIALIZER;
static wsm_manager_t *live;

void wsm__registry_add(wsm_manager_t *m)
{
	pthread_mutex_lock(&registry_lock);
	m->registry_next = live;
	live = m;
	pthread_mutex_unlock(&registry_lock);
}

static wsm_manager_t **find(wsm_manager_t *m)
{
	wsm_manager_t **p;

	for (p = &live; *p; p = &(*p)->registry_next)
		if (*p == m)
			return p;
	return NULL;
}

bool wsm__registry_remove(wsm_manager_t *m)
{
	wsm_manager_t **p;

	pthread_mutex_lock(&registry_lock);
	p = find(m);
	if (!p) {
		pthread_mutex_unlock(&registry_lock);
		return false;
	}
	*p = m->registry_next;
	while (m->users)
		pthread_cond_wait(&registry_idle, &registry_lock);
	pthread_mutex_unlock(&registry_lock);
	return true;
}

/*
 * lws keeps using a protocol's name after the manager is gone, so names live
 * for the whole process: one copy per distinct name, reused by later managers.
 */
struct interned {
	struct interned *next;
	char name[];
};

static struct interned *names;

const char *wsm__intern_name(const char *name)
{
	struct interned *n;
	size_t len = strlen(name);

	pthread_mutex_lock(&registry_lock);
	for (n = names; n; n = n->next)
		if (!strcmp(n->name, name))
			break;
	if (!n && (n = malloc(sizeof(*n) + len + 1))) {
		memcpy(n->name, name, len + 1);
		n->next = names;
		names = n;
	}
	pthread_mutex_unlock(&registry_lock);
	return n ? n->name : NULL;
}

int wsm__acquire(wsm_manager_t *m)
{
	int rc = WSM_OK;

	if (!m)
		return WSM_EINVAL;
	pthread_mutex_lock(&registry_lock);
	if (find(m))
		m->users++;
	else
		rc = WSM_ESHUTDOWN;
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

void wsm__release(wsm_manager_t *m)
{
	pthread_mutex_lock(&registry_lock);
	if (--m->users == 0)
		pthread_cond_broadcast(&registry_idle);
	pthread_mutex_unlock(&registry_lock);
}
