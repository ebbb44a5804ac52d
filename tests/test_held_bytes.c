/*
 * What libwsm holds: held_bytes is every byte its own code has allocated
 * and not freed (checked against an allocator tracker forced into a build
 * of the library's sources), and one broadcast to N connections is one
 * rendered buffer, not N copies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "support/alloc_track.h"
#include "support/must.h"

struct tally {
	uint64_t held, queued, messages_queued;
	size_t tracked;
};

/* On the service thread: nothing else allocates meanwhile. */
static void take_tally(harness_t *h, void *arg)
{
	struct tally *t = arg;
	wsm_metrics_t mx;

	memset(&mx, 0, sizeof(mx));
	mx.size = sizeof(mx);
	if (wsm_metrics(harness_mgr(h), &mx) == WSM_OK) {
		t->held = mx.held_bytes;
		t->queued = mx.queued_bytes;
		t->messages_queued = mx.messages_queued;
	}
	t->tracked = wsm_track_live_bytes();
}

static struct tally tally(harness_t *h)
{
	struct tally t = { 0, 0, 0, 0 };

	assert_int_equal(harness_call(h, take_tally, &t), 0);
	return t;
}

/* held_bytes moved by exactly what the tracker saw allocated and freed. */
static void assert_counts_all(const struct tally *base, const struct tally *now)
{
	int64_t held = (int64_t)(now->held - base->held);
	int64_t tracked = (int64_t)now->tracked - (int64_t)base->tracked;

	print_message("held %+lld, tracked %+lld\n", (long long)held,
		      (long long)tracked);
	assert_int_equal(held, tracked);
}

static void test_held_bytes_counts_every_byte(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_RETENTION_MS, 60000 },
				     { WSM_OPT_MAX_CONNECTIONS_PER_IP, 100 },
				     { WSM_OPT_MAX_QUEUED_BYTES, 4 << 20 },
				     { WSM_OPT_MAX_QUEUED_MESSAGES, 4096 },
				     { WSM_OPT_MAX_TEXT_LEN, 65536 });
	struct tally base, t;
	char id[16], path[64];
	wsc_t *c[12], *stuck;
	int i;

	(void)state;
	assert_non_null(h);
	base = tally(h);
	/* Connections in four sessions, one of them resuming. */
	for (i = 0; i < 12; i++) {
		snprintf(id, sizeof(id), "hb-%d", i % 4);
		c[i] = must_join(h, id);
	}
	t = tally(h);
	assert_true(t.held > base.held);
	assert_counts_all(&base, &t);
	/* Replay state of every kind, and messages on the way. */
	for (i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "hb-%d", i);
		assert_int_equal(wsm_broadcast_progress(harness_mgr(h), id, 40,
							"stage", "half"), 0);
		assert_int_equal(wsm_broadcast_complete(harness_mgr(h), id,
							"{\"n\":[1,2,3]}"), 0);
	}
	for (i = 0; i < 12; i++)
		must_recv_type(c[i], "complete");
	snprintf(path, sizeof(path), "hb-0?lastSeq=1&epoch=1");
	stuck = must_join(h, path); /* an epoch of its own: told to reset */
	must_recv_type(stuck, "reset");
	t = tally(h);
	assert_counts_all(&base, &t);
	/*
	 * A queue backed up for real: the kernel's buffers are full. Backed
	 * up well past what is checked, since a socket's send buffer may still
	 * grow (autotuning) and take some of it before the tally.
	 */
	assert_true(back_up_queues(h, "hb-0", 4, 30000, 1024 * 1024) > 0);
	t = tally(h);
	assert_true(t.queued >= 256 * 1024);
	assert_counts_all(&base, &t);
	/* All gone: what is left is the retained state of four sessions. */
	for (i = 0; i < 12; i++)
		wsc_free(c[i]);
	wsc_free(stuck);
	assert_int_equal(harness_wait_until(harness_no_connections, h, 10000), 0);
	t = tally(h);
	assert_true(harness_metrics(h).retained_sessions == 4);
	assert_counts_all(&base, &t);
	/* Announced sessions are held too. */
	assert_int_equal(wsm_session_open(harness_mgr(h), "hb-announced"), 0);
	t = tally(h);
	assert_counts_all(&base, &t);
	harness_stop(h);
}

/*
 * One broadcast to eight connections whose queues are backed up: eight
 * queued copies in the counts, one buffer in memory.
 */
static void test_one_buffer_per_broadcast(void **state)
{
	harness_t *h = HARNESS_START(NULL, { WSM_OPT_MAX_QUEUED_BYTES, 16 << 20 },
				     { WSM_OPT_MAX_QUEUED_MESSAGES, 4096 },
				     { WSM_OPT_MAX_TEXT_LEN, 65536 },
				     { WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 8 });
	struct tally before, after;
	char *big = repeat_char('y', 16384);
	wsc_t *c[8];
	int i;

	(void)state;
	assert_non_null(h);
	assert_non_null(big);
	for (i = 0; i < 8; i++)
		c[i] = must_join(h, "one");
	assert_true(back_up_queues(h, "one", 8, 16384, 8 * 64 * 1024) > 0);
	before = tally(h);
	assert_int_equal(wsm_broadcast_error(harness_mgr(h), "one", big), 0);
	do
		after = tally(h);
	while (after.messages_queued < before.messages_queued + 8);
	assert_int_equal(after.messages_queued, before.messages_queued + 8);
	print_message("one broadcast to 8: held %+lld bytes\n",
		      (long long)(after.held - before.held));
	/* Writes meanwhile can only free older messages, never add. */
	assert_true((int64_t)(after.held - before.held) <= 16384 + 1024);
	for (i = 0; i < 8; i++)
		wsc_free(c[i]);
	free(big);
	harness_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_held_bytes_counts_every_byte),
		cmocka_unit_test(test_one_buffer_per_broadcast),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
