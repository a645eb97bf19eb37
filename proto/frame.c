/*
 * frame.c: cuts the input stream into request lines and bodies.
 *
 * The framer owns no memory.  The caller shows it a prefix of the bytes
 * it has received; the framer says what the prefix starts with and how
 * many bytes that took.  The one idea is that every malformed input has a
 * state that eats it incrementally (like beanstalkd's want-endline), so a
 * bad client can never make the caller hold more than one maximal line or
 * one acceptable body, and the stream is always back in step afterwards:
 *
 *   LINE      looking for LF within the first SIMQ_LINE_MAX bytes
 *   SKIPLINE  discarding up to and including the next LF (the rest of a
 *             too-long line, or what follows a body with a bad terminator)
 *   BODY      waiting for want body bytes and CR LF or LF after them
 *   SWALLOW   discarding skip bytes of an oversized body
 *   SWALLOWT  discarding that body's terminator, then reporting the error
 *
 * Events are produced in stream order, so replies to them are in the order
 * of the requests that caused them.
 */
#include <string.h>

#include "proto.h"

enum {
	FR_LINE = 0,
	FR_SKIPLINE,
	FR_BODY,
	FR_SWALLOW,
	FR_SWALLOWT,
};

/*
 * In FR_LINE, in->skip holds how many bytes at the start of the buffer are
 * known to contain no LF, so a line that arrives a byte at a time is
 * scanned once, not once per byte.  That relies on the contract: between
 * calls the caller drains exactly *used bytes and keeps the rest.
 */

void
proto_in_init(struct proto_in *in)
{
	in->state = FR_LINE;
	in->want = 0;
	in->skip = 0;
}

/* Looks at the terminator after a body in p[0..n): returns its length (1
 * or 2), 0 if more bytes are needed to tell, or -1 if it is wrong. */
static int
proto_in_term(const char *p, size_t n)
{
	if (n == 0)
		return (0);
	if (p[0] == '\n')
		return (1);
	if (p[0] != '\r')
		return (-1);
	if (n == 1)
		return (0);
	return (p[1] == '\n' ? 2 : -1);
}

/*
 * Returns the next event at the start of buf[0..len).  *used is always
 * set, and may be non-zero with PROTO_NEED: skipped bytes are consumed as
 * they arrive.  PROTO_NEED means nothing more can be done with these
 * bytes: drain *used and call again when more have arrived.  At that point
 * fewer than proto_in_want() bytes are left.  Never reads outside
 * buf[0..len) and never writes to it.
 */
enum proto_ev
proto_in_next(struct proto_in *in, char *buf, size_t len, size_t *used,
    struct proto_word *tok, enum proto_err *err)
{
	char	*p, *lf;
	size_t	 n, lim, off;
	int	 t;

	*used = 0;
	*err = PERR_NONE;
	tok->p = NULL;
	tok->len = 0;
	for (;;) {
		p = buf + *used;
		n = len - *used;
		switch (in->state) {
		case FR_LINE:
			lim = n < SIMQ_LINE_MAX ? n : SIMQ_LINE_MAX;
			off = in->skip <= lim ? in->skip : 0;
			lf = off < lim ? memchr(p + off, '\n', lim - off) :
			    NULL;
			if (lf != NULL) {
				in->skip = 0;
				tok->p = p;
				tok->len = lf - p;
				if (tok->len > 0 && p[tok->len - 1] == '\r')
					tok->len--;
				*used += lf - p + 1;
				return (PROTO_LINE);
			}
			if (n >= SIMQ_LINE_MAX) {
				/* No LF in SIMQ_LINE_MAX bytes: too long. */
				in->skip = 0;
				in->state = FR_SKIPLINE;
				*used += SIMQ_LINE_MAX;
				*err = PERR_LINE;
				return (PROTO_ERR);
			}
			in->skip = lim;
			return (PROTO_NEED);
		case FR_SKIPLINE:
			if ((lf = memchr(p, '\n', n)) == NULL) {
				*used += n;
				return (PROTO_NEED);
			}
			*used += lf - p + 1;
			in->state = FR_LINE;
			in->skip = 0;
			break;
		case FR_BODY:
			if (n < in->want)
				return (PROTO_NEED);
			t = proto_in_term(p + in->want, n - in->want);
			if (t == 0)
				return (PROTO_NEED);
			if (t == -1) {
				/* Whatever follows the body is suspect:
				 * skip it to the next LF. */
				*used += in->want;
				in->want = 0;
				in->state = FR_SKIPLINE;
				*err = PERR_BODY;
				return (PROTO_ERR);
			}
			tok->p = p;
			tok->len = in->want;
			*used += in->want + t;
			in->want = 0;
			in->skip = 0;
			in->state = FR_LINE;
			return (PROTO_BODY);
		case FR_SWALLOW:
			lim = n < in->skip ? n : in->skip;
			*used += lim;
			in->skip -= lim;
			if (in->skip > 0)
				return (PROTO_NEED);
			in->state = FR_SWALLOWT;
			break;
		case FR_SWALLOWT:
			t = proto_in_term(p, n);
			if (t == 0)
				return (PROTO_NEED);
			*err = PERR_BODYSIZE;
			if (t == -1) {
				/* Still one error for one request. */
				in->state = FR_SKIPLINE;
				return (PROTO_ERR);
			}
			*used += t;
			in->skip = 0;
			in->state = FR_LINE;
			return (PROTO_ERR);
		default:
			/* A corrupted struct: resynchronise at a line. */
			in->state = FR_SKIPLINE;
			in->want = in->skip = 0;
			break;
		}
	}
}

/*
 * Called right after the PROTO_LINE that announced the body.  A body that
 * could not be held (over max, or so large that n + 2 overflows) is
 * swallowed; the PROTO_ERR comes once it and its terminator are gone.
 */
void
proto_in_body(struct proto_in *in, size_t n, size_t max)
{
	in->skip = 0;
	if (n > max || n > SIZE_MAX - 2) {
		in->state = FR_SWALLOW;
		in->skip = n;
		in->want = 0;
	} else {
		in->state = FR_BODY;
		in->want = n;
	}
}

size_t
proto_in_want(const struct proto_in *in)
{
	switch (in->state) {
	case FR_LINE:
		return (SIMQ_LINE_MAX);
	case FR_BODY:
		return (in->want + 2);
	case FR_SWALLOWT:
		return (2);
	default:
		return (1);
	}
}
