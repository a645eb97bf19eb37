/*
 * entries.c: the lines of an EACHLINE array (simq submit --each-line),
 * stored once for all its tasks.
 *
 * The lines are kept as they came, each followed by its newline, in one
 * buffer with an offset per line: a million lines cost their bytes and
 * 4 MB of offsets, not a million records.  Task index i gets line i; a
 * TAKE or STATUS item puts it in place of each {} of the command and
 * gives it as entry= (SIMQ_ENTRY for the job).  The journal (REC_SUBMIT)
 * and the snapshot (REC_JOB) carry the same buffer, read back through
 * entries_parse, which checks it as it does a request's body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simqd.h"

/*
 * Lines from p[0, len): each ends with a newline, is at most
 * SIMQ_ENTRY_MAX bytes and holds no NUL (a job's argument cannot).  At
 * least one line, at most SIMQ_INDEX_MAX.  Returns them (a copy), or
 * NULL with why.
 */
struct entries *
entries_parse(const char *p, size_t len, char *why, size_t whylen)
{
	struct entries	*e;
	const char	*q, *nl, *end = p + len;
	uint64_t	 n = 0, cap;

	if (len == 0 || p[len - 1] != '\n') {
		snprintf(why, whylen, "the lines must each end with a newline");
		return NULL;
	}
	if (len > UINT32_MAX) {
		snprintf(why, whylen, "too many bytes of lines");
		return NULL;
	}
	for (q = p; q < end; q = nl + 1) {
		nl = memchr(q, '\n', (size_t)(end - q));
		if ((size_t)(nl - q) > SIMQ_ENTRY_MAX) {
			snprintf(why, whylen, "line %llu is %zu bytes long; a "
			    "line may be at most %d", (unsigned long long)n + 1,
			    (size_t)(nl - q), SIMQ_ENTRY_MAX);
			return NULL;
		}
		if (memchr(q, '\0', (size_t)(nl - q)) != NULL) {
			snprintf(why, whylen, "line %llu holds a NUL byte",
			    (unsigned long long)n + 1);
			return NULL;
		}
		if (++n > SIMQ_INDEX_MAX) {
			snprintf(why, whylen, "more than %u lines",
			    SIMQ_INDEX_MAX);
			return NULL;
		}
	}
	e = xcalloc(1, sizeof *e);
	e->n = n;
	e->len = len;
	e->data = xmalloc(len);
	memcpy(e->data, p, len);
	cap = n + 1;
	e->off = xreallocarray(NULL, (size_t)cap, sizeof *e->off);
	e->off[0] = 0;
	n = 0;
	for (q = e->data, end = e->data + len; q < end; q = nl + 1) {
		nl = memchr(q, '\n', (size_t)(end - q));
		e->off[++n] = (uint32_t)(nl + 1 - e->data);
	}
	return e;
}

void
entries_free(struct entries *e)
{
	if (e == NULL)
		return;
	free(e->off);
	free(e->data);
	free(e);
}

/* Line index (1 to n), without its newline. */
const char *
entries_get(const struct entries *e, uint32_t index, size_t *len)
{
	if (index == 0 || index > e->n) {
		*len = 0;
		return "";
	}
	*len = e->off[index] - e->off[index - 1] - 1;
	return e->data + e->off[index - 1];
}

/* The longest line, for the checks of a submit. */
size_t
entries_maxlen(const struct entries *e)
{
	uint64_t	i;
	size_t		m = 0;

	for (i = 0; i < e->n; i++)
		if (e->off[i + 1] - e->off[i] - 1 > m)
			m = e->off[i + 1] - e->off[i] - 1;
	return m;
}

void
rec_put_entries(struct buf *b, const struct entries *e)
{
	buf_put_uv(b, e->n);
	buf_put_vstr(b, e->data, e->len);
}

struct entries *
rec_get_entries(struct rbuf *r)
{
	uint64_t	 n = rbuf_uv(r);
	size_t		 len;
	const char	*p = rbuf_vstr(r, &len);
	struct entries	*e;
	char		 why[128];

	if (r->err || p == NULL || (e = entries_parse(p, len, why,
	    sizeof why)) == NULL) {
		r->err = 1;
		return NULL;
	}
	if (e->n != n) {
		entries_free(e);
		r->err = 1;
		return NULL;
	}
	return e;
}
