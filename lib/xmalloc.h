/*
 * xmalloc.h: allocation that cannot fail quietly.
 *
 * For small internal objects (a job's strings, a request, a buffer of
 * records): when memory runs out there is nothing useful to do, so each
 * of these logs "out of memory (N bytes)" with fatal() and exits, in all
 * three programs and in proto/.  Sizes a client controls are checked
 * before they get here, or use an allocation that can fail and answer
 * with an error.
 */
#ifndef SIMQ_LIB_XMALLOC_H
#define SIMQ_LIB_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
/* realloc of n * size bytes, the product checked for overflow. */
void	*xreallocarray(void *, size_t n, size_t size);
char	*xstrdup(const char *);
/* The first n bytes of s (no NUL needed among them), NUL-terminated. */
char	*xstrndup(const char *s, size_t n);
/* A new formatted string; the caller frees it. */
char	*xprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
/* The one way out: logs "out of memory (n bytes)" and exits. */
void	 xoom(size_t n) __attribute__((noreturn));

#endif
