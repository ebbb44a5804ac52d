/* Error strings, details of the last failure, cause names, the version. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

/* Per thread, like errno: setters run on any thread, one config each. */
static _Thread_local char detail[256];

void wsm__detail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
}

int wsm__fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return code;
}

const char *wsm_error_detail(void)
{
	return detail;
}

const char *wsm_strerror(int code)
{
	switch (code) {
	case WSM_OK: return "success";
	case WSM_EINVAL: return "invalid argument";
	case WSM_ENOMEM: return "out of memory";
	case WSM_ERANGE: return "value out of range";
	case WSM_EOPTION: return "unknown option or wrong option type";
	case WSM_ESESSIONID: return "invalid session id";
	case WSM_EUTF8: return "string is not valid UTF-8";
	case WSM_ETOOLONG: return "string or metadata too long";
	case WSM_EJSON: return "metadata is not a JSON object";
	case WSM_ESESSIONFULL: return "per-session connection limit reached";
	case WSM_EFULL: return "connection limit reached";
	case WSM_EDENIED: return "refused by the authorize callback";
	case WSM_ENOTFOUND: return "no such session";
	case WSM_EEXIST: return "connection already managed";
	case WSM_ESHUTDOWN: return "manager destroyed or shutting down";
	case WSM_EAGAIN: return "inbox full, try again";
	case WSM_ETHREAD: return "must be called on the lws service thread";
	case WSM_ENOTBOUND: return "manager not attached to an lws context";
	case WSM_ETIMEDOUT: return "timed out";
	case WSM_ENOCLUSTER: return "built without cluster mode";
	case WSM_EOUTBOX: return "cluster outbox full";
	default: return "unknown error";
	}
}

const char *wsm_cause_name(wsm_close_cause_t cause)
{
	switch (cause) {
	case WSM_CAUSE_NONE: return "none";
	case WSM_CAUSE_PEER: return "peer";
	case WSM_CAUSE_ERROR: return "error";
	case WSM_CAUSE_STALE: return "stale";
	case WSM_CAUSE_LIFETIME: return "lifetime";
	case WSM_CAUSE_EVICTED: return "evicted";
	case WSM_CAUSE_SESSION_CLOSED: return "session_closed";
	case WSM_CAUSE_SHUTDOWN: return "shutdown";
	case WSM_CAUSE_SLOW_CONSUMER: return "slow_consumer";
	case WSM_CAUSE_PROTOCOL: return "protocol";
	case WSM_CAUSE_REFUSED: return "refused";
	default: return "unknown";
	}
}

unsigned int wsm_version(void)
{
	return WSM_VERSION_HEX;
}
