/*
 * The lws version differences; see lws_compat.h. Each function does the
 * same on every supported version, mostly by using only the lws calls
 * whose behaviour did not change.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lws_compat.h"

/* lws_hdr_copy_fragment() is the same in 4.1 and 4.3: one argument each. */
int wsm__lws_query_arg(struct lws *wsi, const char *name, char *buf,
		       size_t size)
{
	size_t nlen = strlen(name);
	int i, n;

	if (size > INT_MAX)
		size = INT_MAX;
	for (i = 0; (n = lws_hdr_copy_fragment(wsi, buf, (int)size,
					       WSI_TOKEN_HTTP_URI_ARGS, i)) >= 0;
	     i++) {
		if ((size_t)n > nlen && buf[nlen] == '=' &&
		    !memcmp(buf, name, nlen)) {
			n -= (int)nlen + 1;
			memmove(buf, buf + nlen + 1, (size_t)n + 1);
			return n;
		}
	}
	return -1;
}

/* Whether a fragment of header h holds a NUL. */
static bool token_has_nul(struct lws *wsi, enum lws_token_indexes h)
{
	char small[512], *buf = small;
	int size = lws_hdr_total_length(wsi, h) + 1;
	bool nul = false;
	int i, n;

	if (size > (int)sizeof(small) && !(buf = malloc((size_t)size)))
		return true; /* cannot look: drop it rather than guess */
	for (i = 0; !nul && (n = lws_hdr_copy_fragment(wsi, buf, size, h, i)) >= 0;
	     i++)
		nul = memchr(buf, '\0', (size_t)n) != NULL;
	if (buf != small)
		free(buf);
	return nul;
}

/*
 * Both versions drop a %00 in the path, but for one right after a '/',
 * which 4.1 keeps (as the path's last byte: "/p/%00y" is "/p/\0"). 4.3
 * stores a decoded NUL in a query value without counting it in the
 * argument's length, so the argument shows the NUL and loses its last
 * byte; a NUL at the end of a value does not show at all (wsm(7)).
 */
bool wsm__lws_request_unparsable(struct lws *wsi)
{
	return token_has_nul(wsi, WSI_TOKEN_GET_URI) ||
	       token_has_nul(wsi, WSI_TOKEN_HTTP_URI_ARGS);
}

bool wsm__lws_peer_address(struct lws *wsi, char *ip, size_t size)
{
	static const char mapped[] = "::ffff:";
	size_t n = sizeof(mapped) - 1;

	if (!lws_get_peer_simple(wsi, ip, size) || !ip[0])
		return false;
	/* One name for an IPv4 peer, whichever socket it came in on. */
	if (!strncmp(ip, mapped, n) && strchr(ip + n, '.'))
		memmove(ip, ip + n, strlen(ip + n) + 1);
	return true;
}
