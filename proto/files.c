/*
 * files.c: the words of files that travel with jobs: a blob's hash, a
 * relative NAME, a collect GLOB, and file=/got= values HASH:SIZE:MODE:NAME.
 *
 * The one idea, as in proto.c: each value has exactly one spelling (hex
 * in lower case, numbers without leading zeros), so a value that parses
 * formats back to the same bytes, and the checks the broker, the worker
 * and the client make on a name are the same code.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
proto_parse_hash(const char *s, size_t len, uint8_t out[SIMQ_HASH_LEN])
{
	int	 hi, lo;
	size_t	 i;

	if (len != SIMQ_HASH_HEX)
		return -1;
	for (i = 0; i < SIMQ_HASH_LEN; i++) {
		if ((hi = hexval((unsigned char)s[2 * i])) < 0 ||
		    (lo = hexval((unsigned char)s[2 * i + 1])) < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void
proto_format_hash(char out[SIMQ_HASH_HEX + 1], const uint8_t h[SIMQ_HASH_LEN])
{
	static const char	 x[] = "0123456789abcdef";
	int			 i;

	for (i = 0; i < SIMQ_HASH_LEN; i++) {
		out[2 * i] = x[h[i] >> 4];
		out[2 * i + 1] = x[h[i] & 15];
	}
	out[SIMQ_HASH_HEX] = '\0';
}

/* Walks the '/'-separated components of s: 1 if one is "..", 2 if one is
 * "." or empty. */
static int
components(const char *s, size_t len)
{
	size_t	 i = 0, j, n;
	int	 worst = 0;

	while (i <= len) {
		for (j = i; j < len && s[j] != '/'; j++)
			;
		n = j - i;
		if (n == 2 && s[i] == '.' && s[i + 1] == '.')
			return 1;
		if (n == 0 || (n == 1 && s[i] == '.'))
			worst = 2;
		i = j + 1;
	}
	return worst;
}

const char *
proto_relpath_why(const char *s, size_t len)
{
	if (len == 0)
		return "empty";
	if (len > SIMQ_PATH_MAX)
		return "longer than 4096 bytes";
	if (memchr(s, '\0', len) != NULL)
		return "contains a NUL byte";
	if (s[0] == '/')
		return "not relative (starts with /)";
	switch (components(s, len)) {
	case 1:
		return "has a .. component";
	case 2:
		return "has an empty or . component";
	}
	return NULL;
}

const char *
proto_glob_why(const char *s, size_t len)
{
	if (len == 0)
		return "empty";
	if (len > SIMQ_PATH_MAX)
		return "longer than 4096 bytes";
	if (memchr(s, '\0', len) != NULL)
		return "contains a NUL byte";
	if (s[0] == '/')
		return "not relative (starts with /)";
	if (components(s, len) == 1)
		return "has a .. component";
	return NULL;
}

/* Octal digits, no leading zero but "0", at most 0777. */
static int
parse_mode(const char *s, size_t len, uint32_t *mode)
{
	uint32_t	 v = 0;
	size_t		 i;

	if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '7')
			return -1;
		v = v * 8 + (uint32_t)(s[i] - '0');
	}
	*mode = v;
	return 0;
}

const char *
proto_parse_file(char *s, size_t len, struct proto_file *f)
{
	char		*c1, *c2, *c3, *end = s + len;
	const char	*why;

	if ((c1 = memchr(s, ':', len)) == NULL ||
	    (c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1))) == NULL ||
	    (c3 = memchr(c2 + 1, ':', (size_t)(end - c2 - 1))) == NULL)
		return "not HASH:SIZE:MODE:NAME";
	if (proto_parse_hash(s, (size_t)(c1 - s), f->hash) != 0)
		return "HASH is not 64 lower-case hex digits";
	if (proto_parse_u64(c1 + 1, (size_t)(c2 - c1 - 1), SIMQ_BLOB_SIZE_MAX,
	    &f->size) != 0)
		return "SIZE is not a number of bytes below 2^53";
	if (parse_mode(c2 + 1, (size_t)(c3 - c2 - 1), &f->mode) != 0)
		return "MODE is not octal permissions (644, 755)";
	f->name.p = c3 + 1;
	f->name.len = (size_t)(end - c3 - 1);
	if ((why = proto_relpath_why(f->name.p, f->name.len)) != NULL)
		return why;
	return NULL;
}

size_t
proto_format_file(char *dst, size_t len, const uint8_t *hash, uint64_t size,
    uint32_t mode, const char *name, size_t namelen)
{
	char	 hex[SIMQ_HASH_HEX + 1];
	int	 n;

	proto_format_hash(hex, hash);
	n = snprintf(dst, len, "%s:%" PRIu64 ":%o:%.*s", hex, size,
	    (unsigned)mode, (int)namelen, name);
	return n < 0 ? 0 : (size_t)n;
}

int
proto_files_dup(const struct proto_file *f, int n)
{
	int	 i, j;

	/* n is at most SIMQ_FILES_MAX: half a million compares of lengths,
	 * once per submit. */
	for (i = 1; i < n; i++)
		for (j = 0; j < i; j++)
			if (f[i].name.len == f[j].name.len &&
			    memcmp(f[i].name.p, f[j].name.p, f[i].name.len) == 0)
				return i;
	return -1;
}
