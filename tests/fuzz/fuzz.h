/*
 * Shared by the libwsm fuzz targets: a failed oracle check aborts (which
 * libFuzzer and the replay runner both report as a crash), a cursor over the
 * input bytes, and reference implementations of the documented input rules
 * written independently of lib/ so the targets can compare against them.
 */
#ifndef LIBWSM_FUZZ_H
#define LIBWSM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond, ...)                                                  \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, \
				__LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

/*
 * Open library bugs (README.md, "Bugs found") a target can be told to let
 * pass, to keep fuzzing beyond them: WSM_FUZZ_TOLERATE="name,name". The
 * default, and CI, tolerate nothing.
 */
static inline bool fz_tolerate(const char *bug)
{
	const char *list = getenv("WSM_FUZZ_TOLERATE"), *p;
	size_t n = strlen(bug);

	for (p = list; p && (p = strstr(p, bug)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

/* A cursor over the input; reads past the end yield zeros. */
struct fz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fz_u8(struct fz_in *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static inline uint64_t fz_u64(struct fz_in *in)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | fz_u8(in);
	return v;
}

/*
 * Takes the next field, up to a NUL byte or the end of the input, as a
 * malloc'ed NUL-terminated string of exactly its length (so ASan sees any
 * read past it). Never NULL unless out of memory.
 */
static inline char *fz_field(struct fz_in *in)
{
	const uint8_t *nul = in->left ? memchr(in->p, 0, in->left) : NULL;
	size_t n = nul ? (size_t)(nul - in->p) : in->left;
	char *s = malloc(n + 1);

	if (!s)
		abort();
	if (n)
		memcpy(s, in->p, n);
	s[n] = '\0';
	in->p += n;
	in->left -= n;
	if (nul) {
		in->p++;
		in->left--;
	}
	return s;
}

/* Session ids: 1..max bytes of A-Z a-z 0-9 - _ (wsm(7), "Session ids"). */
static inline bool fz_ref_id_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

static inline bool fz_ref_id_ok(const char *id, size_t len, int64_t max_len)
{
	size_t i;

	if (len == 0 || max_len < 1 || (uint64_t)len > (uint64_t)max_len)
		return false;
	for (i = 0; i < len; i++)
		if (!fz_ref_id_char((unsigned char)id[i]))
			return false;
	return true;
}

/*
 * RFC 3629 UTF-8, by decoding each sequence to its code point: no overlong
 * forms, no surrogates, nothing above U+10FFFF, no truncated sequence.
 */
static inline bool fz_ref_utf8(const unsigned char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned b = p[i], n, k;
		uint32_t cp, min;

		if (b < 0x80) {
			i++;
			continue;
		}
		if ((b & 0xe0) == 0xc0) {
			n = 1;
			cp = b & 0x1f;
			min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			n = 2;
			cp = b & 0x0f;
			min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			n = 3;
			cp = b & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/*
 * Unsigned decimal, digits only, at most 20 of them (the library's cut-off),
 * and not above max. The contract of wsm__parse_decimal() in lib/internal.h.
 */
static inline bool fz_ref_decimal(const char *s, uint64_t max, uint64_t *out)
{
	size_t n = strlen(s), i;
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return false;
	for (i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned)(s[i] - '0');
		if (v > UINT64_MAX / 10 || v * 10 > UINT64_MAX - d)
			return false;
		v = v * 10 + d;
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* xorshift64*, for choices derived from the input (deterministic). */
static inline uint64_t fz_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

#endif
