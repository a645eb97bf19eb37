/*
 * log.c: one line per message on stderr, written with one write(2).
 *
 * A line is formatted whole into a buffer on the stack, then written at
 * once: the lines of a worker and of its shepherds, which share stderr,
 * never interleave within a line, and logging needs no memory, so it
 * still works when the allocator has just failed.
 */
#include <sys/time.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Longer lines are cut, and end in "...": a message names a few things,
 * never a payload. */
#define LOG_LINE_MAX	4096

int			 log_verbosity;
static const char	*log_prog = "simq";
static enum log_style	 log_style = LOG_STAMPED;
static int		 log_status = 1;

void
log_init(const char *prog, enum log_style style, int fatal_status)
{
	log_prog = prog;
	log_style = style;
	log_status = fatal_status;
}

static void __attribute__((format(printf, 2, 0)))
log_line(const char *level, const char *fmt, va_list ap)
{
	struct timeval	 tv;
	struct tm	 tm;
	char		 line[LOG_LINE_MAX], ts[32];
	size_t		 n = 0, off;
	ssize_t		 w;
	int		 r, saved = errno;

	if (log_style == LOG_PLAIN) {
		fflush(stdout);		/* what was printed comes first */
		r = snprintf(line, sizeof line, "%s: ", log_prog);
	} else {
		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
		r = snprintf(line, sizeof line, "%s.%03ld %s %s: ", ts,
		    (long)tv.tv_usec / 1000, log_prog, level);
	}
	if (r > 0)
		n = (size_t)r < sizeof line ? (size_t)r : sizeof line - 1;
	r = vsnprintf(line + n, sizeof line - n, fmt, ap);
	if (r > 0)
		n += (size_t)r;
	if (n > sizeof line - 2) {
		n = sizeof line - 2;
		memcpy(line + n - 3, "...", 3);
	}
	line[n++] = '\n';
	for (off = 0; off < n;) {
		if ((w = write(STDERR_FILENO, line + off, n - off)) > 0)
			off += (size_t)w;
		else if (w == 0 || errno != EINTR)
			break;
	}
	errno = saved;
}

void
log_vwarn(const char *fmt, va_list ap)
{
	log_line("warning", fmt, ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_line("warning", fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_line("info", fmt, ap);
	va_end(ap);
}

/* A daemon's -v: a line per job. */
void
log_verbose(const char *fmt, ...)
{
	va_list	ap;

	if (log_verbosity < 1)
		return;
	va_start(ap, fmt);
	log_line("info", fmt, ap);
	va_end(ap);
}

/* -vv: the protocol, the connections. */
void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_verbosity < 2)
		return;
	va_start(ap, fmt);
	log_line("debug", fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_line("fatal", fmt, ap);
	va_end(ap);
	exit(log_status);
}
