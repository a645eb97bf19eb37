/*
 * sha256.h: SHA-256, the name of every blob simq stores or moves.
 *
 * A thin wrapper around OpenSSL's libcrypto (Debian's libssl-dev): its
 * digest uses the CPU's SHA extensions where there are any, which a
 * hand-written one would not, and a blob of a gigabyte is hashed at
 * both ends of every transfer.
 */
#ifndef SIMQ_LIB_SHA256_H
#define SIMQ_LIB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN	32
#define SHA256_HEX_LEN	64		/* without the NUL */

struct sha256 {
	void	*ctx;			/* EVP_MD_CTX */
};

/* Starts a digest; aborts (out of memory) as xmalloc does. */
void	sha256_init(struct sha256 *);
void	sha256_update(struct sha256 *, const void *, size_t);
/* Ends the digest, writes it to out and frees the context. */
void	sha256_final(struct sha256 *, unsigned char out[SHA256_LEN]);
/* Frees a digest that will not be finished. */
void	sha256_abandon(struct sha256 *);

/* The digest of one buffer. */
void	sha256_buf(const void *, size_t, unsigned char out[SHA256_LEN]);

/* Lower-case hex, NUL-terminated. */
void	sha256_hex(const unsigned char d[SHA256_LEN],
	    char out[SHA256_HEX_LEN + 1]);
/* Exactly 64 hex digits of either case, nothing after them.  Returns 0
 * with out set, or -1. */
int	sha256_parse_hex(const char *, unsigned char out[SHA256_LEN]);

/* Reads fd from its current offset to its end.  Returns 0 with the
 * digest and the byte count, or -1 with errno set (the read failed). */
int	sha256_fd(int fd, unsigned char out[SHA256_LEN], uint64_t *size);

#endif
