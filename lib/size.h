/*
 * size.h: sizes as people write them on a command line.
 */
#ifndef SIMQ_LIB_SIZE_H
#define SIMQ_LIB_SIZE_H

#include <stdint.h>

/* "4096", "512K", "64M", "4G", "1T" (powers of 1024, either case).
 * Returns 0 with *out set, or -1 (malformed, or more than 2^64-1). */
int	parse_size(const char *, uint64_t *out);

#endif
