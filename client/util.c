/*
 * util.c: how simq stops with a message.
 *
 * Messages follow one rule: one line on stderr, "simq: what was wrong;
 * what to do" (lib/log.c writes it, flushing stdout first so that what
 * was already printed comes before it).  Allocation, which exits on
 * failure, and the clocks are lib/'s.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "simq.h"

/* Prints "simq: MESSAGE" and exits with status. */
void
die(int status, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwarn(fmt, ap);
	va_end(ap);
	exit(status);
}
