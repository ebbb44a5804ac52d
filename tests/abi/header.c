/*
 * Compiled alone by header-c99.sh with -std=c99 -pedantic -Wall -Wextra
 * -Werror: <wsm.h> must be self-contained and strict C99. Nothing else is
 * included; the function below only makes the types and macros be used.
 */
#include <wsm.h>

int header_check(void);

int header_check(void)
{
	wsm_metrics_t metrics;
	wsm_option_t opt = WSM_OPT_MAX_CONNECTIONS;
	wsm_close_cause_t cause = WSM_CAUSE_STALE;

	metrics.size = sizeof metrics;
	metrics.closed[cause] = WSM_CAUSE_SLOTS;
	return (int)metrics.size + (int)opt + WSM_VERSION_HEX +
	    (int)metrics.closed[cause] + WSM_CLOSE_GOING_AWAY;
}
