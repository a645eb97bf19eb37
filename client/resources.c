/*
 * resources.c: simq submit's --cpus, --gpus and --mem, checked here so
 * that a mistake is said before anything is sent (the broker checks them
 * again: SUBMIT cpus= gpus= mem=).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"
#include "size.h"

/* Appends the option word for --cpus (key "cpus"), --gpus or --mem to
 * opts, or dies with a usage error. */
void
submit_resource(struct buf *opts, const char *key, const char *arg)
{
	uint64_t	 v;
	char		*tmp;

	if (strcmp(key, "mem") == 0) {
		if (parse_size(arg, &v) < 0 || v == 0 || v > SIMQ_MEM_MAX)
			die(EXIT_USAGE, "bad --mem '%s': use a size like 512M, "
			    "4G or 1T (at most 1024T)", arg);
		tmp = xprintf("%llu", (unsigned long long)v);
		req_kv(opts, "mem", tmp);
		free(tmp);
		return;
	}
	if (strcmp(key, "cpus") == 0) {
		if (proto_parse_u64(arg, strlen(arg), SIMQ_CPUS_MAX, &v) < 0 ||
		    v == 0)
			die(EXIT_USAGE, "bad --cpus '%s': use a number from 1 "
			    "to %d", arg, SIMQ_CPUS_MAX);
	} else if (proto_parse_u64(arg, strlen(arg), SIMQ_GPUS_MAX, &v) < 0)
		die(EXIT_USAGE, "bad --gpus '%s': use a number from 0 to %d",
		    arg, SIMQ_GPUS_MAX);
	req_kv(opts, key, arg);
}
