/*
 * Checks on outside input: session ids, UTF-8 text (whole or streamed across
 * WebSocket fragments) and the length limits of broadcast strings.
 */
#include <string.h>

#include "internal.h"

/* Ids are used verbatim in URLs, JSON and logs: keep them to [A-Za-z0-9_-]. */
static bool id_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

int wsm__check_session_id(const char *id, size_t len, int64_t max_len)
{
	size_t i;

	if (len == 0 || (int64_t)len > max_len)
		return WSM_ESESSIONID;
	for (i = 0; i < len; i++)
		if (!id_char((unsigned char)id[i]))
			return WSM_ESESSIONID;
	return WSM_OK;
}

/*
 * state: 0 between characters, else (bytes still expected << 16) |
 * (highest allowed next byte << 8) | lowest allowed next byte. The first
 * continuation byte's range excludes overlongs, surrogates and > U+10FFFF.
 */
static uint32_t expect(unsigned n, unsigned lo, unsigned hi)
{
	return (uint32_t)(n << 16 | hi << 8 | lo);
}

bool wsm__utf8_feed(uint32_t *state, const unsigned char *p, size_t len)
{
	uint32_t st = *state;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned b = p[i];

		if (st) {
			if (b < (st & 0xff) || b > ((st >> 8) & 0xff))
				return false;
			st = (st >> 16) - 1 ? expect((st >> 16) - 1, 0x80, 0xbf)
					   : 0;
			continue;
		}
		if (b < 0x80)
			continue;
		if (b >= 0xc2 && b <= 0xdf)
			st = expect(1, 0x80, 0xbf);
		else if (b == 0xe0)
			st = expect(2, 0xa0, 0xbf);
		else if (b == 0xed)
			st = expect(2, 0x80, 0x9f);
		else if (b >= 0xe1 && b <= 0xef)
			st = expect(2, 0x80, 0xbf);
		else if (b == 0xf0)
			st = expect(3, 0x90, 0xbf);
		else if (b >= 0xf1 && b <= 0xf3)
			st = expect(3, 0x80, 0xbf);
		else if (b == 0xf4)
			st = expect(3, 0x80, 0x8f);
		else
			return false;
	}
	*state = st;
	return true;
}

int wsm__parse_decimal(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 20)
		return -1;
	for (; *s; s++) {
		uint64_t d = (uint64_t)(*s - '0');

		/* v * 10 + d <= max, without overflowing on the way */
		if (*s < '0' || *s > '9' || d > max || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int wsm__check_text(const char *s, int64_t max_len)
{
	size_t len = strnlen(s, (size_t)max_len + 1);
	uint32_t st = 0;

	if ((int64_t)len > max_len)
		return WSM_ETOOLONG;
	if (!wsm__utf8_feed(&st, (const unsigned char *)s, len) || st)
		return WSM_EUTF8;
	return WSM_OK;
}
