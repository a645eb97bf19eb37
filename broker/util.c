/*
 * util.c: allocation that aborts on failure (for small internal objects;
 * sizes a client controls are checked before they get here), the clock,
 * and the constant-time token compare.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simqd.h"
#include "log.h"

void *
xmalloc(size_t n)
{
	void	*p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("out of memory (%zu bytes)", n);
	return p;
}

void *
xcalloc(size_t n, size_t m)
{
	void	*p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		fatal("out of memory (%zu x %zu bytes)", n, m);
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* Constant-time comparison, so a wrong token's timing says nothing of the
 * right one.  1 if equal (and not empty). */
int
token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char	d = (unsigned char)(alen != blen);
	size_t		i;

	for (i = 0; i < alen; i++)
		d |= (unsigned char)(a[i] ^ b[i < blen ? i : 0]);
	return d == 0 && blen > 0;
}

uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
