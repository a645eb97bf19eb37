/*
 * size.c: the one size parser (simqd's --segment-size and --compact-min,
 * simq-worker's --mem-limit).
 */
#include <string.h>

#include "proto.h"
#include "size.h"

int
parse_size(const char *s, uint64_t *out)
{
	size_t		len = strlen(s);
	uint64_t	mul = 1, v;

	if (len > 1) {
		switch (s[len - 1]) {
		case 'K': case 'k': mul = UINT64_C(1) << 10; len--; break;
		case 'M': case 'm': mul = UINT64_C(1) << 20; len--; break;
		case 'G': case 'g': mul = UINT64_C(1) << 30; len--; break;
		case 'T': case 't': mul = UINT64_C(1) << 40; len--; break;
		}
	}
	if (proto_parse_u64(s, len, UINT64_MAX / mul, &v) < 0)
		return -1;
	*out = v * mul;
	return 0;
}
