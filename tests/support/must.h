/* cmocka-asserting forms of the support helpers; include after <cmocka.h>. */
#ifndef LIBWSM_TESTS_MUST_H
#define LIBWSM_TESTS_MUST_H

#include "session_client.h"

/* join_and_wait() that must succeed. */
static inline wsc_t *must_join(harness_t *h, const char *path)
{
	wsc_t *c = join_and_wait(h, path, NULL);

	assert_non_null(c);
	return c;
}

/* The next message of this type must arrive; it is checked and freed. */
#define must_recv_type(c, type)                                              \
	do {                                                                  \
		json_t *must_j_ = recv_type((c), (type), 5000);               \
		assert_non_null(must_j_);                                     \
		json_decref(must_j_);                                         \
	} while (0)

#endif
