/*
 * The session table: session id -> session, chained hashing with a seeded
 * FNV-1a (ids come from the network, so the seed is random per manager). It
 * grows and shrinks with the session count, so held bytes return to their
 * baseline once sessions are gone.
 */
#include <string.h>
#include <sys/random.h>

#include "internal.h"

#define MIN_BUCKETS 16

uint64_t wsm__hash(uint64_t seed, const char *id, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)id[i];
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

int wsm__table_init(wsm_manager_t *m)
{
	struct wsm_table *t = &m->table;

	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(t->seed))
		t->seed = (uint64_t)wsm__now_us() ^ (uint64_t)(uintptr_t)m;
	t->nbuckets = MIN_BUCKETS;
	t->buckets = wsm__alloc(m, t->nbuckets * sizeof(*t->buckets));
	return t->buckets ? WSM_OK : WSM_ENOMEM;
}

static size_t session_size(size_t id_len)
{
	return sizeof(struct wsm_session) + id_len + 1;
}

void wsm__table_free(wsm_manager_t *m)
{
	struct wsm_table *t = &m->table;
	size_t i;

	for (i = 0; t->buckets && i < t->nbuckets; i++) {
		while (t->buckets[i]) {
			struct wsm_session *s = t->buckets[i];

			t->buckets[i] = s->hnext;
			wsm__msg_unref(m, s->last_progress);
			wsm__msg_unref(m, s->terminal);
			wsm__free(m, s, session_size(s->id_len));
		}
	}
	wsm__free(m, t->buckets, t->nbuckets * sizeof(*t->buckets));
	t->buckets = NULL;
	t->count = 0;
}

struct wsm_session *wsm__table_find(wsm_manager_t *m, const char *id,
				    size_t len)
{
	struct wsm_table *t = &m->table;
	uint64_t h = wsm__hash(t->seed, id, len);
	struct wsm_session *s;

	for (s = t->buckets[h & (t->nbuckets - 1)]; s; s = s->hnext)
		if (s->hash == (uint32_t)h && s->id_len == len && !memcmp(s->id, id, len))
			return s;
	return NULL;
}

/* A failed resize leaves the table as it was: it only gets slower. */
static void resize(wsm_manager_t *m, size_t nbuckets)
{
	struct wsm_table *t = &m->table;
	struct wsm_session **nb = wsm__alloc(m, nbuckets * sizeof(*nb));
	size_t i;

	if (!nb)
		return;
	for (i = 0; i < t->nbuckets; i++) {
		while (t->buckets[i]) {
			struct wsm_session *s = t->buckets[i];

			t->buckets[i] = s->hnext;
			s->hnext = nb[s->hash & (nbuckets - 1)];
			nb[s->hash & (nbuckets - 1)] = s;
		}
	}
	wsm__free(m, t->buckets, t->nbuckets * sizeof(*t->buckets));
	t->buckets = nb;
	t->nbuckets = nbuckets;
}

struct wsm_session *wsm__table_get(wsm_manager_t *m, const char *id,
				   size_t len)
{
	struct wsm_table *t = &m->table;
	struct wsm_session *s = wsm__table_find(m, id, len);

	if (s)
		return s;
	s = wsm__alloc(m, session_size(len));
	if (!s)
		return NULL;
	s->hash = (uint32_t)wsm__hash(t->seed, id, len);
	s->epoch = wsm__new_epoch(m);
	s->id_len = (uint8_t)len;
	memcpy(s->id, id, len);
	wsm_list_init(&s->conns);
	s->hnext = t->buckets[s->hash & (t->nbuckets - 1)];
	t->buckets[s->hash & (t->nbuckets - 1)] = s;
	t->count++;
	wsm__bump(&m->c.sessions, 1);
	if (t->count > t->nbuckets)
		resize(m, t->nbuckets * 2);
	return s;
}

void wsm__table_remove(wsm_manager_t *m, struct wsm_session *s)
{
	struct wsm_table *t = &m->table;
	struct wsm_session **p = &t->buckets[s->hash & (t->nbuckets - 1)];

	while (*p != s)
		p = &(*p)->hnext;
	*p = s->hnext;
	t->count--;
	wsm__bump(&m->c.sessions, -1);
	wsm__free(m, s, session_size(s->id_len));
	if (t->nbuckets > MIN_BUCKETS && t->count < t->nbuckets / 4)
		resize(m, t->nbuckets / 2);
}
