/*
 * Prints wsm_metrics_prometheus() of a real server that has admitted,
 * refused, broadcast and closed, for check-prometheus.sh to hand to a real
 * parser (promtool). Exits nonzero if the text could not be made.
 */
#include <stdio.h>
#include <stdlib.h>

#include "support/session_client.h"

int main(void)
{
	harness_t *h = harness_start(NULL, NULL);
	json_t *got = NULL;
	wsc_t *c;
	char *text;
	int status, n, rc = 1;

	if (!h)
		return 1;
	c = join_and_wait(h, "prom", &status);
	wsc_free(join_session(h, "bad.id", &status));
	if (c && wsm_broadcast_progress(harness_mgr(h), "prom", 50, "half",
					NULL) == 0 &&
	    (got = recv_json(c, 5000)) &&
	    (n = wsm_metrics_prometheus(harness_mgr(h), NULL, 0)) > 0 &&
	    (text = malloc((size_t)n + 1))) {
		if (wsm_metrics_prometheus(harness_mgr(h), text, (size_t)n + 1) == n &&
		    fputs(text, stdout) >= 0)
			rc = 0;
		free(text);
	}
	json_decref(got);
	wsc_free(c);
	harness_stop(h);
	return rc;
}
