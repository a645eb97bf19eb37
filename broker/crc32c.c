/*
 * crc32c.c: CRC-32C (Castagnoli), the checksum of every journal frame.
 *
 * Slicing-by-8: eight 256-entry tables let the loop fold eight input bytes
 * per step with eight independent lookups instead of one dependent lookup
 * per byte, which is what makes replaying a 100 MB journal take a fraction
 * of a second.  Table k maps a byte to its CRC contribution when it is
 * followed by k zero bytes.
 *
 * The polynomial is 0x1EDC6F41, used here in its reflected form 0x82F63B78
 * (the CRC of iSCSI, ext4 and SCTP), so that hardware instructions can
 * replace this code without changing the file format: on x86-64 with
 * SSE 4.2 they do.  The check value,
 * crc32c(0, "123456789", 9), is 0xE3069283.
 */
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "journal.h"

#define CRC32C_POLY	0x82F63B78u

static uint32_t	crc32c_table[8][256];
static int	crc32c_ready;

/*
 * Builds the tables.  It runs as a constructor, before main() and before
 * any thread exists, so crc32c() needs no lock; the flag only covers a
 * call from another constructor that runs first.
 */
static void	crc32c_init(void) __attribute__((constructor));

static void
crc32c_init(void)
{
	uint32_t	c;
	int		n, k;

	for (n = 0; n < 256; n++) {
		c = (uint32_t)n;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc32c_table[0][n] = c;
	}
	for (n = 0; n < 256; n++) {
		c = crc32c_table[0][n];
		for (k = 1; k < 8; k++) {
			c = crc32c_table[0][c & 0xff] ^ (c >> 8);
			crc32c_table[k][n] = c;
		}
	}
	crc32c_ready = 1;
}

/*
 * Returns the CRC-32C of the bytes that gave crc followed by these len
 * bytes.  Start with crc = 0; the pre- and post-inversion happen here, so
 * crc32c(crc32c(0, a, n), b, m) is the CRC of a and b concatenated.
 */
uint32_t
crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	uint32_t	 lo, hi;

	if (!crc32c_ready)
		crc32c_init();
	crc = ~crc;
	while (len >= 8) {
		lo = le32_get(p) ^ crc;
		hi = le32_get(p + 4);
		crc = crc32c_table[7][lo & 0xff] ^
		    crc32c_table[6][(lo >> 8) & 0xff] ^
		    crc32c_table[5][(lo >> 16) & 0xff] ^
		    crc32c_table[4][lo >> 24] ^
		    crc32c_table[3][hi & 0xff] ^
		    crc32c_table[2][(hi >> 8) & 0xff] ^
		    crc32c_table[1][(hi >> 16) & 0xff] ^
		    crc32c_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/*
 * The SSE 4.2 crc32 instruction computes the same CRC eight bytes at a
 * time, several times faster than the tables: replay of a large journal
 * spends a tenth of its time checksumming otherwise.
 */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	uint64_t	 c = ~crc, v;

	while (len >= 8) {
		v = le64_get(p);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

uint32_t
crc32c(uint32_t crc, const void *buf, size_t len)
{
	static int	hw = -1;

	if (hw < 0)
		hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	return hw ? crc32c_sse42(crc, buf, len) :
	    crc32c_portable(crc, buf, len);
}
#else
uint32_t
crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_portable(crc, buf, len);
}
#endif
