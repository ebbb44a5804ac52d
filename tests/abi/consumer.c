/*
 * A C user of libwsm, built by consumer-pkgconfig.sh from the installed
 * files with nothing but `pkg-config --cflags --libs wsm` (and --static):
 * creates a manager, checks the library's version against the header's,
 * reads the status document and destroys the manager.
 */
#include <wsm.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, int code)
{
	fprintf(stderr, "consumer.c: %s: %s (%d)\n", what, wsm_strerror(code),
		code);
	return 1;
}

int main(void)
{
	int err = WSM_OK;
	wsm_manager_t *m = wsm_manager_new(NULL, &err);
	char *status;
	int n, rc;

	if (!m)
		return fail("wsm_manager_new", err);
	if (wsm_version() != WSM_VERSION_HEX) {
		fprintf(stderr, "consumer.c: library version %#x, header %#x\n",
			wsm_version(), WSM_VERSION_HEX);
		return 1;
	}
	n = wsm_status_json(m, NULL, 0);
	if (n <= 0)
		return fail("wsm_status_json", n);
	status = malloc((size_t)n + 1);
	if (!status)
		return fail("malloc", WSM_ENOMEM);
	rc = wsm_status_json(m, status, (size_t)n + 1);
	if (rc != n || status[0] != '{') {
		free(status);
		return fail("wsm_status_json", rc);
	}
	free(status);
	wsm_manager_destroy(m);
	printf("consumer.c: libwsm %s, status %d bytes\n", WSM_VERSION_STRING, n);
	return 0;
}
