/*
 * buf.c: little-endian record encoding and a reader that cannot overrun.
 *
 * Growth goes through lib/xmalloc.c, so running out of memory here ends
 * the way it does everywhere else (logged, then exit).
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

void
buf_init(struct buf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
}

void
buf_free(struct buf *b)
{
	free(b->p);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
}

void
buf_reserve(struct buf *b, size_t more)
{
	size_t	 cap;
	uint8_t	*p;

	if (b->cap - b->len >= more)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2)
			xoom(SIZE_MAX);
		cap *= 2;
	}
	p = xrealloc(b->p, cap);
	b->p = p;
	b->cap = cap;
}

void
buf_put(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	buf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void
buf_put_u8(struct buf *b, uint8_t v)
{
	buf_reserve(b, 1);
	b->p[b->len++] = v;
}

void
buf_put_u16(struct buf *b, uint16_t v)
{
	buf_reserve(b, 2);
	b->p[b->len++] = v;
	b->p[b->len++] = v >> 8;
}

void
buf_put_u32(struct buf *b, uint32_t v)
{
	buf_reserve(b, 4);
	le32_put(b->p + b->len, v);
	b->len += 4;
}

void
buf_put_u64(struct buf *b, uint64_t v)
{
	buf_reserve(b, 8);
	le64_put(b->p + b->len, v);
	b->len += 8;
}

void
buf_put_i64(struct buf *b, int64_t v)
{
	buf_put_u64(b, (uint64_t)v);
}

void
buf_put_uv(struct buf *b, uint64_t v)
{
	buf_reserve(b, 10);
	while (v >= 0x80) {
		b->p[b->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b->p[b->len++] = (uint8_t)v;
}

void
buf_put_vstr(struct buf *b, const void *p, size_t n)
{
	buf_put_uv(b, n);
	buf_put(b, p, n);
}

void
buf_set_u32(struct buf *b, size_t off, uint32_t v)
{
	le32_put(b->p + off, v);
}

void
rbuf_init(struct rbuf *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

const void *
rbuf_bytes(struct rbuf *r, size_t n)
{
	const void	*p;

	if (r->err || r->len - r->off < n) {
		r->err = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t
rbuf_u8(struct rbuf *r)
{
	const uint8_t	*p = rbuf_bytes(r, 1);

	return p ? p[0] : 0;
}

uint16_t
rbuf_u16(struct rbuf *r)
{
	const uint8_t	*p = rbuf_bytes(r, 2);

	return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

uint32_t
rbuf_u32(struct rbuf *r)
{
	const uint8_t	*p = rbuf_bytes(r, 4);

	return p ? le32_get(p) : 0;
}

uint64_t
rbuf_u64(struct rbuf *r)
{
	const uint8_t	*p = rbuf_bytes(r, 8);

	return p ? le64_get(p) : 0;
}

int64_t
rbuf_i64(struct rbuf *r)
{
	return (int64_t)rbuf_u64(r);
}

uint64_t
rbuf_uv(struct rbuf *r)
{
	uint64_t	v = 0;
	int		shift;
	uint8_t		c;

	for (shift = 0; shift < 64; shift += 7) {
		if (r->err || r->off >= r->len) {
			r->err = 1;
			return 0;
		}
		c = r->p[r->off++];
		if (shift == 63 && c > 1) {
			r->err = 1;	/* more than 64 bits */
			return 0;
		}
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	r->err = 1;
	return 0;
}

const void *
rbuf_vstr(struct rbuf *r, size_t *len)
{
	uint64_t	 n = rbuf_uv(r);
	const void	*p;

	*len = 0;
	if (r->err || n > r->len - r->off) {
		r->err = 1;
		return NULL;
	}
	p = rbuf_bytes(r, (size_t)n);
	*len = (size_t)n;
	return p;
}

size_t
rbuf_left(const struct rbuf *r)
{
	return r->err ? 0 : r->len - r->off;
}
