/*
 * Fixed-shape JSON written directly: the progress, error and reset
 * messages have known keys, so building them needs no object model, only
 * string escaping and number formatting. Both give the same bytes as
 * jansson with libwsm's dump flags (compact, 15 significant digits), which
 * the broadcast fuzz target checks on every input. Only the host's
 * complete metadata, which must be parsed and validated, goes through
 * jansson.
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The escape of byte c, or NULL: the text is valid UTF-8 already. */
static const char *short_escape(unsigned char c)
{
	switch (c) {
	case '"': return "\\\"";
	case '\\': return "\\\\";
	case '\b': return "\\b";
	case '\f': return "\\f";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\t': return "\\t";
	default: return NULL;
	}
}

size_t wsm__json_str_len(const char *s, size_t n)
{
	size_t len = n + 2, i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\' || c < 0x20)
			len += short_escape(c) ? 1 : 5;
	}
	return len;
}

char *wsm__json_str(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *esc;
	size_t i;

	*out++ = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c != '"' && c != '\\' && c >= 0x20) {
			*out++ = (char)c;
		} else if ((esc = short_escape(c))) {
			*out++ = esc[0];
			*out++ = esc[1];
		} else {
			memcpy(out, "\\u00", 4);
			out[4] = hex[c >> 4];
			out[5] = hex[c & 15];
			out += 6;
		}
	}
	*out++ = '"';
	return out;
}

int wsm__json_real(char *out, size_t size, double v)
{
	const char *point = localeconv()->decimal_point;
	char *p, *e, *end;
	int n = snprintf(out, size, "%.15g", v);

	if (n < 0 || (size_t)n + 3 > size)
		return -1;
	/* A host's LC_NUMERIC may say ','; JSON says '.'. */
	if (*point != '.' && (p = strchr(out, *point)))
		*p = '.';
	/* Keep it a real for a reader: 50 becomes 50.0. */
	if (!strchr(out, '.') && !strchr(out, 'e')) {
		memcpy(out + n, ".0", 3);
		n += 2;
	}
	/* No '+' and no leading zeros in an exponent: 1e-05 is 1e-5. */
	if ((e = strchr(out, 'e'))) {
		p = e + 1;
		end = p + 1;
		if (*p == '-')
			p++;
		while (*end == '0')
			end++;
		if (end != p) {
			memmove(p, end, (size_t)(out + n - end) + 1);
			n -= (int)(end - p);
		}
	}
	return n;
}
