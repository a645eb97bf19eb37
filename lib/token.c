/*
 * token.c: reading a token file, and comparing tokens in constant time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "token.h"
#include "xmalloc.h"

/* A token file may hold this much: the token and its trailing blank
 * lines.  A larger one is refused rather than cut. */
#define TOKEN_FILE_MAX	(4 * TOKEN_MAX)

char *
token_read(const char *path, char *why, size_t whylen)
{
	char	 buf[TOKEN_FILE_MAX + 1];
	size_t	 n = 0;
	ssize_t	 r;
	int	 fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, whylen, "cannot read the token file %s (%s)",
		    path, strerror(errno));
		return NULL;
	}
	while (n < sizeof buf) {
		if ((r = read(fd, buf + n, sizeof buf - n)) > 0)
			n += (size_t)r;
		else if (r == 0)
			break;
		else if (errno != EINTR) {
			e = errno;
			close(fd);
			snprintf(why, whylen, "cannot read the token file %s "
			    "(%s)", path, strerror(e));
			return NULL;
		}
	}
	close(fd);
	while (n > 0 && n <= TOKEN_FILE_MAX && (buf[n - 1] == '\n' ||
	    buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	if (n == 0) {
		snprintf(why, whylen, "the token file %s is empty", path);
		return NULL;
	}
	if (n > TOKEN_MAX) {
		snprintf(why, whylen, "the token file %s is too long: a token "
		    "is at most %d bytes", path, TOKEN_MAX);
		return NULL;
	}
	if (memchr(buf, '\0', n) != NULL) {
		snprintf(why, whylen, "the token file %s holds a NUL byte",
		    path);
		return NULL;
	}
	return xstrndup(buf, n);
}

int
token_load(const char *path, char **tok, char *why, size_t whylen)
{
	const char	*s;

	*tok = NULL;
	if (path != NULL)
		return (*tok = token_read(path, why, whylen)) ? 0 : -1;
	if ((s = getenv("SIMQ_TOKEN")) != NULL && *s != '\0')
		*tok = xstrdup(s);
	return 0;
}

int
token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char	d = (unsigned char)(alen != blen);
	size_t		i;

	for (i = 0; i < alen; i++)
		d |= (unsigned char)(a[i] ^ b[i < blen ? i : 0]);
	return d == 0 && blen > 0;
}
