/*
 * buf.h: explicit little-endian encoding into a growable byte buffer, and
 * a bounds-checked reader for decoding it back.
 *
 * Journal records and snapshot records are built with these, never by
 * copying structs, so the on-disk format does not depend on the compiler,
 * the padding or the host's byte order.  The reader never reads past its
 * end: the first short read sets r->err and every later get returns zero,
 * so a decoder checks r->err once at the end.
 */
#ifndef SIMQ_BUF_H
#define SIMQ_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t	*p;
	size_t	 len;
	size_t	 cap;
};

/* Growth logs and exits on allocation failure (lib/xmalloc.h): buffers
 * hold small internal records; sizes a client controls are checked
 * before they get here. */
void	buf_init(struct buf *);
void	buf_free(struct buf *);
void	buf_reset(struct buf *);		/* len = 0, keeps memory */
void	buf_reserve(struct buf *, size_t more);
void	buf_put(struct buf *, const void *, size_t);
void	buf_put_u8(struct buf *, uint8_t);
void	buf_put_u16(struct buf *, uint16_t);
void	buf_put_u32(struct buf *, uint32_t);
void	buf_put_u64(struct buf *, uint64_t);
void	buf_put_i64(struct buf *, int64_t);
/* An unsigned LEB128 varint: 7 bits a byte, low first; 1 to 10 bytes.
 * Small numbers (counts, deltas, states) then take one byte. */
void	buf_put_uv(struct buf *, uint64_t);
/* A byte string: varint length, then the bytes. */
void	buf_put_vstr(struct buf *, const void *, size_t);
/* Overwrites 4 bytes at off (for lengths known only at the end). */
void	buf_set_u32(struct buf *, size_t off, uint32_t);

struct rbuf {
	const uint8_t	*p;
	size_t		 len;
	size_t		 off;
	int		 err;	/* set on the first short read */
};

void		 rbuf_init(struct rbuf *, const void *, size_t);
uint8_t		 rbuf_u8(struct rbuf *);
uint16_t	 rbuf_u16(struct rbuf *);
uint32_t	 rbuf_u32(struct rbuf *);
uint64_t	 rbuf_u64(struct rbuf *);
int64_t		 rbuf_i64(struct rbuf *);
/* A varint; err is set for a truncated one or one beyond 64 bits. */
uint64_t	 rbuf_uv(struct rbuf *);
/* A byte string written by buf_put_vstr: returns a pointer into the
 * reader's memory (not NUL-terminated) and its length in *len; NULL with
 * err set when truncated.  An empty string returns a non-NULL pointer. */
const void	*rbuf_vstr(struct rbuf *, size_t *len);
/* Raw bytes. */
const void	*rbuf_bytes(struct rbuf *, size_t n);
/* Bytes not yet read. */
size_t		 rbuf_left(const struct rbuf *);

/* Little-endian loads and stores on raw memory. */
static inline void
le32_put(uint8_t *p, uint32_t v)
{
	p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}

static inline uint32_t
le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static inline void
le64_put(uint8_t *p, uint64_t v)
{
	le32_put(p, (uint32_t)v);
	le32_put(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t
le64_get(const uint8_t *p)
{
	return (uint64_t)le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}

#endif
