/*
 * server.c: the broker's address, as simq and simq-worker both read it.
 */
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "server.h"
#include "xmalloc.h"

const char *
server_pick(const char *opt)
{
	const char	*s;

	if (opt != NULL && *opt != '\0')
		return opt;
	if ((s = getenv("SIMQ_SERVER")) != NULL && *s != '\0')
		return s;
	return SIMQ_DEFAULT_SERVER;
}

int
server_split(const char *addr, char **host, char **port)
{
	const char	*colon, *end;
	size_t		 hlen;
	uint64_t	 v;

	if (addr[0] == '[') {
		/* "[IPV6]" or "[IPV6]:PORT". */
		if ((end = strchr(addr, ']')) == NULL || end == addr + 1)
			return -1;
		if (end[1] != '\0' && end[1] != ':')
			return -1;
		colon = end[1] == ':' ? end + 1 : NULL;
		addr++;
		hlen = (size_t)(end - addr);
	} else if ((colon = strchr(addr, ':')) != NULL &&
	    strchr(colon + 1, ':') == NULL) {
		hlen = (size_t)(colon - addr);	/* "HOST:PORT", ":PORT" */
	} else {
		colon = NULL;		/* "HOST", or a bare IPv6 address */
		hlen = strlen(addr);
		if (hlen == 0)
			return -1;
	}
	if (colon != NULL && (proto_parse_u64(colon + 1, strlen(colon + 1),
	    65535, &v) < 0 || v == 0))
		return -1;
	*host = hlen ? xstrndup(addr, hlen) : xstrdup(SIMQ_DEFAULT_HOST);
	*port = colon ? xstrdup(colon + 1) : xprintf("%d", SIMQ_DEFAULT_PORT);
	return 0;
}
