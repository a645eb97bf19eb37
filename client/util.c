/*
 * util.c: allocation that cannot fail quietly, and messages.
 *
 * A command-line client has nothing useful to do when malloc fails but to
 * say so and stop, so every allocation here aborts the program with a
 * message rather than returning NULL.  Messages follow one rule: one line
 * on stderr, "simq: what was wrong; what to do".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simq.h"

static NORETURN void
util_oom(size_t n)
{
	fprintf(stderr, "simq: out of memory (%zu bytes)\n", n);
	exit(EXIT_USAGE);
}

void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n ? n : 1)) == NULL)
		util_oom(n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n ? n : 1, size ? size : 1)) == NULL)
		util_oom(n * size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n ? n : 1)) == NULL)
		util_oom(n);
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		util_oom(SIZE_MAX);
	return xrealloc(p, n * size);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int
xasprintf(char **out, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vasprintf(out, fmt, ap);
	va_end(ap);
	if (n < 0)
		util_oom(0);
	return n;
}

void
vwarnmsg(const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("simq: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
warnmsg(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vwarnmsg(fmt, ap);
	va_end(ap);
}

/* Prints "simq: MESSAGE" and exits with status. */
void
die(int status, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vwarnmsg(fmt, ap);
	va_end(ap);
	exit(status);
}

/* Milliseconds since the epoch (the broker's times). */
uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Milliseconds on a clock that never jumps, for intervals. */
uint64_t
mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
sleep_ms(uint64_t ms)
{
	struct timespec	ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
