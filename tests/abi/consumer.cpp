// A C++ user of libwsm: creates a manager, checks the library's version
// against the header's, reads the metrics and the status document, and
// destroys the manager. <wsm.h> comes first, so it must stand alone as
// C++11 (header-cxx.sh compiles this with -std=c++11 -pedantic -Wall
// -Wextra -Werror), and its extern "C" block must give the functions C
// linkage, or the program does not link. consumer-pkgconfig.sh builds it
// again from the installed files, with `pkg-config --cflags --libs wsm`.
#include <wsm.h>

#include <cstdio>
#include <cstring>
#include <vector>

static int fail(const char *what, int code)
{
	std::fprintf(stderr, "consumer.cpp: %s: %s (%d)\n", what,
		     wsm_strerror(code), code);
	return 1;
}

int main()
{
	int err = WSM_OK;
	wsm_config_t *cfg = wsm_config_new();
	if (!cfg)
		return fail("wsm_config_new", WSM_ENOMEM);
	int rc = wsm_config_set_int(cfg, WSM_OPT_MAX_CONNECTIONS_PER_SESSION, 3);
	if (rc != WSM_OK)
		return fail("wsm_config_set_int", rc);
	wsm_manager_t *m = wsm_manager_new(cfg, &err);
	wsm_config_free(cfg);
	if (!m)
		return fail("wsm_manager_new", err);

	if (wsm_version() != WSM_VERSION_HEX) {
		std::fprintf(stderr, "consumer.cpp: library version %#x, header"
			     " %#x\n", wsm_version(), WSM_VERSION_HEX);
		return 1;
	}

	wsm_metrics_t metrics;
	std::memset(&metrics, 0, sizeof metrics);
	metrics.size = sizeof metrics;
	rc = wsm_metrics(m, &metrics);
	if (rc != WSM_OK)
		return fail("wsm_metrics", rc);
	if (metrics.connections != 0 || metrics.sessions != 0) {
		std::fprintf(stderr, "consumer.cpp: a new manager holds"
			     " connections\n");
		return 1;
	}

	int n = wsm_status_json(m, nullptr, 0);
	if (n <= 0)
		return fail("wsm_status_json", n);
	std::vector<char> status(static_cast<size_t>(n) + 1);
	rc = wsm_status_json(m, status.data(), status.size());
	if (rc != n || status[0] != '{')
		return fail("wsm_status_json", rc);

	wsm_manager_destroy(m);
	std::printf("consumer.cpp: libwsm %u.%u.%u (%s), status %d bytes\n",
		    wsm_version() >> 16, (wsm_version() >> 8) & 0xff,
		    wsm_version() & 0xff, WSM_VERSION_STRING, n);
	return 0;
}
