/* Client-side helpers shared by the integration tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "session_client.h"

wsc_t *join_session(harness_t *h, const char *session, int *status)
{
	char path[512];
	int st;

	snprintf(path, sizeof(path), PREFIX "%s", session);
	return wsc_connect(harness_port(h), path, NULL, 5000, status ? status : &st);
}

wsc_t *join_and_wait(harness_t *h, const char *path, int *status)
{
	size_t before = harness_events(h, WSM_EVENT_OPEN, -1, NULL);
	wsc_t *c = join_session(h, path, status);

	if (c && harness_wait_events(h, WSM_EVENT_OPEN, -1, NULL, before + 1,
				     5000)) {
		wsc_free(c);
		return NULL;
	}
	return c;
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *repeat_char(char ch, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memset(s, ch, n);
		s[n] = '\0';
	}
	return s;
}

json_t *recv_json(wsc_t *c, int timeout_ms)
{
	char *text = NULL;
	size_t len = 0;
	json_t *j;

	if (wsc_recv(c, &text, &len, timeout_ms) != 1)
		return NULL;
	j = json_loadb(text, len, 0, NULL);
	free(text);
	return j;
}

json_t *recv_type(wsc_t *c, const char *type, int timeout_ms)
{
	json_t *j;

	while ((j = recv_json(c, timeout_ms))) {
		if (!strcmp(json_string_value(json_object_get(j, "type")), type))
			return j;
		json_decref(j);
	}
	return NULL;
}

struct queued_target {
	harness_t *h;
	uint64_t count;
};

static bool queued_reached(void *arg)
{
	struct queued_target *t = arg;

	return harness_metrics(t->h).messages_queued >= t->count;
}

int back_up_queues(harness_t *h, const char *session, unsigned conns,
		   size_t len, uint64_t min_bytes)
{
	struct queued_target t = { h, harness_metrics(h).messages_queued };
	char *big = repeat_char('x', len);
	int sent = 0, k;

	if (!big)
		return -1;
	while (sent < 4000 && harness_metrics(h).queued_bytes < min_bytes) {
		for (k = 0; k < 8; k++, sent++)
			if (wsm_broadcast_error(harness_mgr(h), session, big)) {
				free(big);
				return -1;
			}
		/* Each broadcast queues one copy per connection. */
		t.count += 8 * (uint64_t)conns;
		if (harness_wait_until(queued_reached, &t, 5000)) {
			free(big);
			return -1;
		}
	}
	free(big);
	return harness_metrics(h).queued_bytes >= min_bytes ? sent : -1;
}
