/*
 * sha256.c: SHA-256 through libcrypto's EVP interface.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sha256.h"
#include "xmalloc.h"

void
sha256_init(struct sha256 *h)
{
	EVP_MD_CTX *ctx;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		xoom(sizeof(void *));
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		xoom(sizeof(void *));
	h->ctx = ctx;
}

void
sha256_update(struct sha256 *h, const void *p, size_t n)
{
	if (n > 0)
		EVP_DigestUpdate(h->ctx, p, n);
}

void
sha256_final(struct sha256 *h, unsigned char out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;

	EVP_DigestFinal_ex(h->ctx, out, &n);
	sha256_abandon(h);
}

void
sha256_abandon(struct sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

void
sha256_buf(const void *p, size_t n, unsigned char out[SHA256_LEN])
{
	struct sha256 h;

	sha256_init(&h);
	sha256_update(&h, p, n);
	sha256_final(&h, out);
}

void
sha256_hex(const unsigned char d[SHA256_LEN], char out[SHA256_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < SHA256_LEN; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[SHA256_HEX_LEN] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
sha256_parse_hex(const char *s, unsigned char out[SHA256_LEN])
{
	int i, hi, lo;

	for (i = 0; i < SHA256_LEN; i++) {
		if ((hi = hexval(s[2 * i])) < 0 ||
		    (lo = hexval(s[2 * i + 1])) < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return s[SHA256_HEX_LEN] == '\0' ? 0 : -1;
}

int
sha256_fd(int fd, unsigned char out[SHA256_LEN], uint64_t *size)
{
	unsigned char buf[1 << 15];
	struct sha256 h;
	uint64_t total = 0;
	ssize_t n;

	sha256_init(&h);
	for (;;) {
		n = read(fd, buf, sizeof buf);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sha256_abandon(&h);
			return -1;
		}
		sha256_update(&h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	sha256_final(&h, out);
	*size = total;
	return 0;
}
