/* Uses libwsm built as a subproject: a manager, its status, its end. */
#include <wsm.h>

#include <stdio.h>

int main(void)
{
	char status[4096];
	int err = WSM_OK;
	wsm_manager_t *m = wsm_manager_new(NULL, &err);
	int n;

	if (!m) {
		fprintf(stderr, "fixture: wsm_manager_new: %s\n",
			wsm_strerror(err));
		return 1;
	}
	n = wsm_status_json(m, status, sizeof status);
	wsm_manager_destroy(m);
	if (n <= 0 || (size_t)n >= sizeof status || status[0] != '{') {
		fprintf(stderr, "fixture: wsm_status_json: %d\n", n);
		return 1;
	}
	if (wsm_version() != WSM_VERSION_HEX) {
		fprintf(stderr, "fixture: library %#x, header %#x\n",
			wsm_version(), WSM_VERSION_HEX);
		return 1;
	}
	printf("fixture: libwsm %s as a subproject, status %d bytes\n",
	       WSM_VERSION_STRING, n);
	return 0;
}
