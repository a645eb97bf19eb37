/*
 * server.h: which broker simq and simq-worker talk to.
 *
 * -s HOST:PORT, else $SIMQ_SERVER, else 127.0.0.1:7733.  Both programs
 * understand the same forms, so an address that works for one works for
 * the other (and for the jobs, which get it in SIMQ_SERVER).
 */
#ifndef SIMQ_LIB_SERVER_H
#define SIMQ_LIB_SERVER_H

#include "proto.h"			/* SIMQ_DEFAULT_PORT */

#define SIMQ_DEFAULT_HOST	"127.0.0.1"
#define SERVER_STR_(x)		#x
#define SERVER_STR(x)		SERVER_STR_(x)
/* "127.0.0.1:7733" */
#define SIMQ_DEFAULT_SERVER	SIMQ_DEFAULT_HOST ":" SERVER_STR(SIMQ_DEFAULT_PORT)

/* What to say after "bad broker address 'X': ". */
#define SERVER_FORMS	"use HOST:PORT, HOST, :PORT or [IPV6]:PORT"

/* The address to use: opt (from -s) unless NULL or empty, else
 * $SIMQ_SERVER unless unset or empty, else SIMQ_DEFAULT_SERVER. */
const char	*server_pick(const char *opt);
/* Splits "HOST:PORT", "HOST", ":PORT", "[IPV6]:PORT", "[IPV6]" or a bare
 * IPv6 address.  An empty host is SIMQ_DEFAULT_HOST, no port
 * SIMQ_DEFAULT_PORT; a port is 1 to 65535.  Returns 0 with *host and
 * *port new strings (the caller frees both), or -1 and nothing to free. */
int		 server_split(const char *addr, char **host, char **port);

#endif
