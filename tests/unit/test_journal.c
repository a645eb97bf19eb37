/*
 * test_journal.c: the journal on real files, including the ways it breaks.
 *
 * Each test gets its own mkdtemp directory under /tmp (removed afterwards)
 * and writes records from a deterministic generator, so a replay can be
 * checked record by record without keeping a copy.  Damage is done to the
 * files directly: cut at every byte, zero tails, flipped bytes, missing
 * segments, leftover temporary files, and writes that fail with ENOSPC.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "journal.h"

#define HDR_SIZE	32	/* the segment header frame */
#define MAXFILES	256

struct tdir {
	char	root[64];
	char	jdir[96];	/* root/data/journal: exercises mkdir -p */
};

/* Record i of the generator: varied sizes, every 7th payload empty, every
 * 50th a few KB. */
static size_t
gen(uint64_t i, uint8_t *type, uint8_t *p)
{
	size_t	len, k;

	*type = (uint8_t)(16 + i % 239);
	len = (i % 7 == 0) ? 0 : (size_t)((i * 37) % 301);
	if (i % 50 == 1)
		len += 5000;
	for (k = 0; k < len; k++)
		p[k] = (uint8_t)(i * 131 + k * 7);
	return len;
}

/* Replay checker: record n must be generator record base + n. */
struct ctx {
	uint64_t	base;
	uint64_t	n;
	uint64_t	bad;
	int64_t		fail_at;	/* return -1 at this record, or -1 */
};

static int
check_cb(void *arg, uint8_t type, const uint8_t *p, size_t len)
{
	struct ctx	*c = arg;
	uint8_t		 buf[8192], t;
	size_t		 l;

	if (c->fail_at >= 0 && c->n == (uint64_t)c->fail_at)
		return -1;
	l = gen(c->base + c->n, &t, buf);
	if (t != type || l != len || (len > 0 && memcmp(buf, p, len) != 0))
		c->bad++;
	c->n++;
	return 0;
}

static void
ctx_init(struct ctx *c, uint64_t base)
{
	memset(c, 0, sizeof *c);
	c->base = base;
	c->fail_at = -1;
}

static void
opts_init(struct journal_opts *o, struct tdir *d)
{
	memset(o, 0, sizeof *o);
	o->dir = d->jdir;
	o->policy = FSYNC_NONE;
}

static struct journal *
jopen(struct journal_opts *o, struct ctx *c, uint64_t base)
{
	char		 err[512];
	struct journal	*j;

	ctx_init(c, base);
	err[0] = '\0';
	j = journal_open(o, check_cb, c, err, sizeof err);
	if (j == NULL)
		print_message("# journal_open: %s\n", err);
	return j;
}

/* Appends generator records [from, to), committing every per records. */
static void
put_recs(struct journal *j, uint64_t from, uint64_t to, unsigned per)
{
	uint8_t		buf[8192], t;
	size_t		len;
	uint64_t	i;

	for (i = from; i < to; i++) {
		len = gen(i, &t, buf);
		journal_append(j, t, len ? buf : NULL, len);
		if ((i - from + 1) % per == 0)
			assert_int_equal(journal_commit(j), 0);
	}
	assert_int_equal(journal_commit(j), 0);
	assert_int_equal(journal_pending(j), 0);
}

/* Prints a multi-line text as TAP comments. */
static void
tap_note(const char *text)
{
	const char	*nl;

	while (*text != '\0') {
		nl = strchr(text, '\n');
		if (nl == NULL)
			nl = text + strlen(text);
		print_message("# %.*s\n", (int)(nl - text), text);
		text = *nl ? nl + 1 : nl;
	}
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
tdir_setup(void **state)
{
	struct tdir	*d;

	d = calloc(1, sizeof *d);
	if (d == NULL)
		return -1;
	snprintf(d->root, sizeof d->root, "/tmp/simq-test-journal.XXXXXX");
	if (mkdtemp(d->root) == NULL) {
		free(d);
		return -1;
	}
	snprintf(d->jdir, sizeof d->jdir, "%s/data/journal", d->root);
	*state = d;
	return 0;
}

static int
tdir_teardown(void **state)
{
	struct tdir	*d = *state;

	rm_rf(d->root);
	free(d);
	return 0;
}

/* Empties the journal directory (keeps it). */
static void
jdir_clear(struct tdir *d)
{
	rm_rf(d->jdir);
	assert_int_equal(mkdir(d->jdir, 0700), 0);
}

static void
jpath(char *out, size_t outlen, struct tdir *d, const char *name)
{
	snprintf(out, outlen, "%s/%s", d->jdir, name);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the files ending in suffix, sorted.  Returns how many; the caller
 * frees the names with names_free(). */
static size_t
list_files(struct tdir *d, const char *suffix, char **names)
{
	DIR		*dp;
	struct dirent	*de;
	size_t		 n = 0, l, sl = strlen(suffix);

	assert_non_null(dp = opendir(d->jdir));
	while ((de = readdir(dp)) != NULL) {
		l = strlen(de->d_name);
		if (l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
			continue;
		assert_true(n < MAXFILES);
		names[n++] = strdup(de->d_name);
	}
	closedir(dp);
	qsort(names, n, sizeof *names, name_cmp);
	return n;
}

static void
names_free(char **names, size_t n)
{
	while (n-- > 0)
		free(names[n]);
}

static size_t
nfiles(struct tdir *d, const char *suffix)
{
	char	*names[MAXFILES];
	size_t	 n;

	n = list_files(d, suffix, names);
	names_free(names, n);
	return n;
}

static off_t
fsize(const char *path)
{
	struct stat	sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

static uint64_t
dir_bytes(struct tdir *d)
{
	char		*names[MAXFILES], path[PATH_MAX];
	size_t		 n, i;
	uint64_t	 total = 0;

	n = list_files(d, ".seg", names);
	for (i = 0; i < n; i++) {
		jpath(path, sizeof path, d, names[i]);
		total += (uint64_t)fsize(path);
	}
	names_free(names, n);
	return total;
}

/* Reads a whole file; the caller frees it. */
static uint8_t *
slurp(const char *path, size_t *len)
{
	uint8_t	*p;
	FILE	*f;
	off_t	 sz = fsize(path);

	assert_non_null(f = fopen(path, "rb"));
	p = malloc((size_t)sz + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	*len = (size_t)sz;
	return p;
}

static void
spew(const char *path, const void *p, size_t len)
{
	FILE	*f;

	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
flip_byte(const char *path, size_t off)
{
	uint8_t	*p;
	size_t	 len;

	p = slurp(path, &len);
	assert_true(off < len);
	p[off] ^= 0x5a;
	spew(path, p, len);
	free(p);
}

/* The framing, written out independently of journal.c. */
static void
tframe(struct buf *b, uint8_t type, const void *p, size_t len)
{
	uint8_t		hdr[9];
	uint32_t	crc;

	le32_put(hdr, (uint32_t)len + 1);
	hdr[8] = type;
	crc = crc32c(crc32c(crc32c(0, hdr, 4), hdr + 8, 1), p, len);
	le32_put(hdr + 4, crc);
	buf_put(b, hdr, 9);
	buf_put(b, p, len);
}

/* Offsets of the frames in a segment image (header included). */
static size_t
frames(const uint8_t *p, size_t len, size_t *offs, size_t max)
{
	size_t	off = 0, n = 0;

	while (off + 9 <= len && n < max) {
		offs[n++] = off;
		off += 8 + le32_get(p + off);
	}
	return n;
}

static void
test_crc32c(void **state)
{
	static const char	 check[] = "123456789";
	uint8_t			 buf[1000];
	uint32_t		 whole;
	size_t			 i;

	assert_int_equal(crc32c(0, check, 9), 0xE3069283u);
	assert_int_equal(crc32c(0, NULL, 0), 0);
	/* 32 zero bytes and 32 0xff bytes: RFC 3720, B.4. */
	memset(buf, 0, 32);
	assert_int_equal(crc32c(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, 32);
	assert_int_equal(crc32c(0, buf, 32), 0x62A8AB43u);

	for (i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 3));
	whole = crc32c(0, buf, sizeof buf);
	for (i = 0; i <= sizeof buf; i++)
		assert_int_equal(crc32c(crc32c(0, buf, i), buf + i,
		    sizeof buf - i), whole);
	/* Unaligned starts and every short length agree with byte-wise
	 * accumulation. */
	for (i = 0; i < 64; i++) {
		uint32_t	c = 0;
		size_t		k;

		for (k = 0; k < i; k++)
			c = crc32c(c, buf + 3 + k, 1);
		assert_int_equal(crc32c(0, buf + 3, i), c);
	}
	/* The hardware path (where there is one) and the tables agree, at
	 * every length and alignment. */
	assert_int_equal(crc32c_portable(0, check, 9), 0xE3069283u);
	for (i = 0; i < 200; i++)
		assert_int_equal(crc32c(0x12345678u, buf + (i % 8), i),
		    crc32c_portable(0x12345678u, buf + (i % 8), i));
}

/* The on-disk format, byte for byte: if this fails, the format changed
 * (bump JOURNAL_VERSION, keep the old reader, add a fixture). */
static void
test_format_fixture(void **state)
{
	static const uint8_t	 want[] = {
		/* segment header: len 24, crc, type 1, magic, v6, seq 1,
		 * flags SEG_SNAPSHOT (a new journal is an empty snapshot) */
		0x18, 0x00, 0x00, 0x00, 0xc9, 0x63, 0x64, 0xd4, 0x01,
		'S', 'I', 'M', 'Q', 'J', 'N', 'L',
		0x06, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00,
		/* record: len 4, crc, type 16, "abc" */
		0x04, 0x00, 0x00, 0x00, 0x17, 0x1d, 0x7e, 0x12, 0x10,
		'a', 'b', 'c',
	};
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	char			 path[PATH_MAX];
	uint8_t			*p;
	size_t			 len;

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	journal_append(j, 16, "abc", 3);
	assert_int_equal(journal_pending(j), 12);
	assert_int_equal(journal_close(j), 0);
	jpath(path, sizeof path, d, "0000000000000001.seg");
	p = slurp(path, &len);
	assert_int_equal(len, sizeof want);
	assert_memory_equal(p, want, sizeof want);
	/* The CRCs are what crc32c() says they are (and what a bitwise
	 * CRC-32C computed elsewhere said when this fixture was made). */
	assert_int_equal(le32_get(p + 36), crc32c(crc32c(0, p + 32, 4),
	    p + 40, 4));
	free(p);
}

/* A version 1 journal (the first layout, whose records version 2 still
 * decodes) opens, and its record is replayed. */
static void
test_version_1_opens(void **state)
{
	static const uint8_t	 v1[] = {
		0x18, 0x00, 0x00, 0x00, 0xd1, 0xaf, 0x98, 0x01, 0x01,
		'S', 'I', 'M', 'Q', 'J', 'N', 'L',
		0x01, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00,
		0x04, 0x00, 0x00, 0x00, 0x17, 0x1d, 0x7e, 0x12, 0x10,
		'a', 'b', 'c',
	};
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	char			 path[PATH_MAX];

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(journal_close(j), 0);
	jpath(path, sizeof path, d, "0000000000000001.seg");
	spew(path, v1, sizeof v1);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 1);	/* "abc", not the generator's: bad */
	assert_int_equal(journal_close(j), 0);
}

/* A version 2 journal (before files travelled with jobs) opens too. */
static void
test_version_2_opens(void **state)
{
	static const uint8_t	 v2[] = {
		0x18, 0x00, 0x00, 0x00, 0x22, 0xcf, 0x60, 0x12, 0x01,
		'S', 'I', 'M', 'Q', 'J', 'N', 'L',
		0x02, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00,
		0x04, 0x00, 0x00, 0x00, 0x17, 0x1d, 0x7e, 0x12, 0x10,
		'a', 'b', 'c',
	};
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	char			 path[PATH_MAX];

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(journal_close(j), 0);
	jpath(path, sizeof path, d, "0000000000000001.seg");
	spew(path, v2, sizeof v2);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 1);
	assert_int_equal(journal_close(j), 0);
}

/* A version 3 journal (resources, before files travelled with jobs)
 * opens too. */
static void
test_version_3_opens(void **state)
{
	static const uint8_t	 v3[] = {
		0x18, 0x00, 0x00, 0x00, 0xdc, 0xc2, 0x6c, 0xe0, 0x01,
		'S', 'I', 'M', 'Q', 'J', 'N', 'L',
		0x03, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00,
		0x04, 0x00, 0x00, 0x00, 0x17, 0x1d, 0x7e, 0x12, 0x10,
		'a', 'b', 'c',
	};
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	char			 path[PATH_MAX];

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(journal_close(j), 0);
	jpath(path, sizeof path, d, "0000000000000001.seg");
	spew(path, v3, sizeof v3);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 1);
	assert_int_equal(journal_close(j), 0);
}

/* A version 5 journal (before leases went out ahead of their commit,
 * with no REC_EPOCH) opens too. */
static void
test_version_5_opens(void **state)
{
	static const uint8_t	 v5[] = {
		0x18, 0x00, 0x00, 0x00, 0x3a, 0x03, 0x9c, 0xc7, 0x01,
		'S', 'I', 'M', 'Q', 'J', 'N', 'L',
		0x05, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00,
		0x04, 0x00, 0x00, 0x00, 0x17, 0x1d, 0x7e, 0x12, 0x10,
		'a', 'b', 'c',
	};
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	char			 path[PATH_MAX];

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(journal_close(j), 0);
	jpath(path, sizeof path, d, "0000000000000001.seg");
	spew(path, v5, sizeof v5);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 1);
	assert_int_equal(journal_close(j), 0);
}

static void
test_roundtrip(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	const uint64_t		 n = 5000;

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 0);
	put_recs(j, 0, n / 2, 1);
	put_recs(j, n / 2, n, 97);
	assert_int_equal(journal_close(j), 0);

	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, n);
	assert_int_equal(c.bad, 0);
	journal_stats(j, &st);
	assert_int_equal(st.records, n);
	assert_int_equal(st.torn_bytes, 0);
	assert_int_equal(st.corrupt_at, 0);
	/* Appends after a reopen go to a new segment. */
	assert_int_equal(st.segments, 2);
	assert_int_equal(st.bytes, dir_bytes(d));
	put_recs(j, n, n + 10, 3);
	assert_int_equal(journal_close(j), 0);

	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, n + 10);
	assert_int_equal(c.bad, 0);
	assert_int_equal(journal_close(j), 0);
	assert_int_equal(nfiles(d, ".seg"), 3);
}

/* Restarts that append nothing do not add segment files. */
static void
test_reopen_reuses_empty_segment(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	int			 i;

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, 10, 1);
	assert_int_equal(journal_close(j), 0);
	for (i = 0; i < 5; i++) {
		assert_non_null(j = jopen(&o, &c, 0));
		assert_int_equal(c.n, 10);
		assert_int_equal(journal_close(j), 0);
	}
	assert_int_equal(nfiles(d, ".seg"), 2);
	/* And the reused segment takes appends that replay after. */
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 10, 20, 1);
	assert_int_equal(journal_close(j), 0);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 20);
	assert_int_equal(c.bad, 0);
	assert_int_equal(journal_close(j), 0);
	assert_int_equal(nfiles(d, ".seg"), 3);
}

static void
test_rotation(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	char			*names[MAXFILES], path[PATH_MAX];
	size_t			 nseg, i;

	opts_init(&o, d);
	o.segment_max = 4096;
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, 600, 3);
	journal_stats(j, &st);
	nseg = nfiles(d, ".seg");
	assert_true(nseg > 5);
	assert_int_equal(st.segments, nseg);
	assert_int_equal(st.bytes, dir_bytes(d));
	assert_int_equal(journal_close(j), 0);

	/* Every closed segment reached the limit and stopped within one
	 * commit of it. */
	nseg = list_files(d, ".seg", names);
	for (i = 0; i + 1 < nseg; i++) {
		jpath(path, sizeof path, d, names[i]);
		assert_true(fsize(path) >= 4096);
		assert_true(fsize(path) < 4096 + 3 * 5400);
	}
	names_free(names, nseg);

	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 600);
	assert_int_equal(c.bad, 0);
	assert_int_equal(journal_close(j), 0);
}

/* Builds the one-segment journal the torn-tail tests cut up: n records in
 * 0000000000000001.seg.  Returns its bytes; the caller frees them. */
static uint8_t *
make_one_segment(struct tdir *d, uint64_t n, size_t *len)
{
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	char			 path[PATH_MAX];

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, n, 4);
	assert_int_equal(journal_close(j), 0);
	assert_int_equal(nfiles(d, ".seg"), 1);
	jpath(path, sizeof path, d, "0000000000000001.seg");
	return slurp(path, len);
}

static void
test_torn_every_byte(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	char			 path[PATH_MAX];
	uint8_t			*img;
	size_t			 len, offs[64], nf, last, cut;
	const uint64_t		 n = 20;

	img = make_one_segment(d, n, &len);
	nf = frames(img, len, offs, 64);
	assert_int_equal(nf, n + 1);
	last = offs[nf - 1];
	jpath(path, sizeof path, d, "0000000000000001.seg");
	opts_init(&o, d);

	for (cut = last + 1; cut < len; cut++) {
		jdir_clear(d);
		spew(path, img, cut);
		assert_non_null(j = jopen(&o, &c, 0));
		assert_int_equal(c.n, n - 1);
		assert_int_equal(c.bad, 0);
		journal_stats(j, &st);
		assert_int_equal(st.torn_bytes, cut - last);
		assert_int_equal(st.corrupt_at, 0);
		assert_int_equal(fsize(path), last);
		assert_int_equal(journal_close(j), 0);

		assert_non_null(j = jopen(&o, &c, 0));
		assert_int_equal(c.n, n - 1);
		journal_stats(j, &st);
		assert_int_equal(st.torn_bytes, 0);
		assert_int_equal(journal_close(j), 0);
	}
	free(img);
}

static void
test_zero_tail(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	char			 path[PATH_MAX];
	uint8_t			*img;
	size_t			 len;

	img = make_one_segment(d, 100, &len);
	img = realloc(img, len + 4096);
	assert_non_null(img);
	memset(img + len, 0, 4096);
	jpath(path, sizeof path, d, "0000000000000001.seg");
	spew(path, img, len + 4096);

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 100);
	assert_int_equal(c.bad, 0);
	journal_stats(j, &st);
	assert_int_equal(st.torn_bytes, 4096);
	assert_int_equal(fsize(path), len);
	assert_int_equal(journal_close(j), 0);
	free(img);
}

static void
test_corrupt_middle(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	char			 path[PATH_MAX], err[512], want[64];
	uint8_t			*img;
	size_t			 len, offs[64];

	img = make_one_segment(d, 30, &len);
	assert_int_equal(frames(img, len, offs, 64), 31);
	/* Record 10 is the 11th frame after the header; hit its payload. */
	jpath(path, sizeof path, d, "0000000000000001.seg");
	flip_byte(path, offs[11] + 9 + 20);
	opts_init(&o, d);

	ctx_init(&c, 0);
	assert_null(journal_open(&o, check_cb, &c, err, sizeof err));
	print_message("# %s\n", err);
	assert_non_null(strstr(err, "corrupt record in "));
	assert_non_null(strstr(err, "0000000000000001.seg"));
	snprintf(want, sizeof want, "at offset %zu ", offs[11]);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "--force"));
	assert_int_equal(fsize(path), len);	/* nothing changed */
	assert_int_equal(nfiles(d, ".seg"), 1);

	o.force = 1;
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 10);
	assert_int_equal(c.bad, 0);
	journal_stats(j, &st);
	assert_int_equal(st.corrupt_at, offs[11]);
	assert_int_equal(fsize(path), offs[11]);
	put_recs(j, 10, 15, 1);
	assert_int_equal(journal_close(j), 0);

	o.force = 0;
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 15);
	assert_int_equal(c.bad, 0);
	journal_stats(j, &st);
	assert_int_equal(st.corrupt_at, 0);
	assert_int_equal(st.torn_bytes, 0);
	assert_int_equal(journal_close(j), 0);
	free(img);
}

/* Builds a journal of several small segments holding records [0, n). */
static size_t
make_segments(struct tdir *d, uint64_t n, char **names)
{
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;

	opts_init(&o, d);
	o.segment_max = 2048;
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, n, 5);
	assert_int_equal(journal_close(j), 0);
	return list_files(d, ".seg", names);
}

static void
test_corrupt_earlier_segment(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	char			*names[MAXFILES], path[PATH_MAX], err[512];
	uint8_t			*img;
	size_t			 nseg, len, offs[256], nf, keep;

	nseg = make_segments(d, 300, names);
	assert_true(nseg >= 4);
	/* The last record of the second segment: at the end of its file,
	 * where damage would pass for a torn tail in the last segment. */
	jpath(path, sizeof path, d, names[1]);
	img = slurp(path, &len);
	nf = frames(img, len, offs, 256);
	assert_true(nf > 2);
	flip_byte(path, len - 1);
	free(img);

	opts_init(&o, d);
	ctx_init(&c, 0);
	assert_null(journal_open(&o, check_cb, &c, err, sizeof err));
	print_message("# %s\n", err);
	assert_non_null(strstr(err, names[1]));
	assert_non_null(strstr(err, "later segments follow"));
	assert_int_equal(nfiles(d, ".seg"), nseg);

	/* With force, the journal ends before that record. */
	o.force = 1;
	assert_non_null(j = jopen(&o, &c, 0));
	keep = c.n;
	assert_int_equal(c.bad, 0);
	assert_true(keep > 0 && keep < 300);
	assert_int_equal(journal_close(j), 0);
	assert_int_equal(nfiles(d, ".seg"), 3);		/* 2 kept, 1 new */
	assert_int_equal(fsize(path), offs[nf - 1]);

	o.force = 0;
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, keep);
	assert_int_equal(journal_close(j), 0);
	names_free(names, nseg);
}

/* The cutoff callback: counts the records, checking each is one of the
 * generator's first 400 (files come in no particular order). */
static int
cutoff_cb(void *arg, uint8_t type, const uint8_t *p, size_t len)
{
	struct ctx	*c = arg;
	uint8_t		 buf[8192], t;
	size_t		 l;
	uint64_t	 i;

	for (i = 0; i < 400; i++) {
		l = gen(i, &t, buf);
		if (t == type && l == len && (len == 0 ||
		    memcmp(buf, p, len) == 0))
			break;
	}
	if (i == 400)
		c->bad++;
	c->n++;
	return 0;
}

static void
test_force_moves_aside(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c, cut;
	char			*names[MAXFILES], path[PATH_MAX], cdir[256];
	uint8_t			*img, *copy;
	size_t			 nseg, len, clen, offs[256], nf, i;
	DIR			*dp;
	struct dirent		*de;
	uint64_t		 keep;

	nseg = make_segments(d, 300, names);
	assert_true(nseg >= 6);
	/* A record in the middle of the first (snapshot) segment. */
	jpath(path, sizeof path, d, names[0]);
	img = slurp(path, &len);
	nf = frames(img, len, offs, 256);
	assert_true(nf > 4);
	flip_byte(path, offs[nf / 2] + 10);
	free(img);
	img = slurp(path, &len);

	opts_init(&o, d);
	o.force = 1;
	o.cutoff_fn = cutoff_cb;
	o.cutoff_arg = &cut;
	ctx_init(&cut, 0);
	assert_non_null(j = jopen(&o, &c, 0));
	keep = c.n;
	assert_int_equal(c.bad, 0);
	assert_int_equal(keep, nf / 2 - 1);	/* frames after the header */
	/* Every record after the damaged one was seen, none twice. */
	assert_int_equal(cut.bad, 0);
	assert_int_equal(cut.n, 300 - keep - 1);
	assert_int_equal(journal_close(j), 0);

	/* Nothing was deleted: one cut-* directory holds the later
	 * segments and the damaged one as it was. */
	assert_non_null(dp = opendir(d->jdir));
	cdir[0] = '\0';
	while ((de = readdir(dp)) != NULL)
		if (strncmp(de->d_name, "cut-", 4) == 0) {
			assert_int_equal(cdir[0], '\0');
			assert_true(strlen(d->jdir) + 1 + strlen(de->d_name) <
			    sizeof cdir);
			snprintf(cdir, sizeof cdir, "%s/%.*s", d->jdir, 64,
			    de->d_name);
		}
	closedir(dp);
	assert_int_not_equal(cdir[0], '\0');
	for (i = 0; i < nseg; i++) {
		snprintf(path, sizeof path, "%s/%s", cdir, names[i]);
		assert_int_equal(access(path, F_OK), 0);
	}
	snprintf(path, sizeof path, "%s/%s", cdir, names[0]);
	copy = slurp(path, &clen);
	assert_int_equal(clen, len);
	assert_memory_equal(copy, img, len);
	free(copy);
	free(img);
	assert_int_equal(nfiles(d, ".seg"), 2);		/* cut, new */

	/* Later opens still show the cut-off records (from the copy, the
	 * kept ones too), and replay only what was kept. */
	o.force = 0;
	ctx_init(&cut, 0);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, keep);
	assert_int_equal(cut.bad, 0);
	assert_int_equal(cut.n, 299);
	assert_int_equal(journal_close(j), 0);
	names_free(names, nseg);
}

static void
test_missing_segment(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	char			*names[MAXFILES], path[PATH_MAX], err[512];
	size_t			 nseg;
	uint64_t		 keep;

	nseg = make_segments(d, 300, names);
	assert_true(nseg >= 4);
	jpath(path, sizeof path, d, names[2]);
	assert_int_equal(unlink(path), 0);

	opts_init(&o, d);
	ctx_init(&c, 0);
	assert_null(journal_open(&o, check_cb, &c, err, sizeof err));
	print_message("# %s\n", err);
	assert_non_null(strstr(err, "is missing"));

	o.force = 1;
	assert_non_null(j = jopen(&o, &c, 0));
	keep = c.n;
	assert_int_equal(c.bad, 0);
	assert_int_equal(journal_close(j), 0);
	assert_int_equal(nfiles(d, ".seg"), 3);
	o.force = 0;
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, keep);
	assert_int_equal(journal_close(j), 0);
	names_free(names, nseg);
}

static void
test_bad_header(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	char			*names[MAXFILES], path[PATH_MAX], err[512];
	size_t			 nseg;

	/* A segment only gets its name once its header is on disk, so a
	 * bad header is corruption even in the last segment. */
	nseg = make_segments(d, 100, names);
	jpath(path, sizeof path, d, names[nseg - 1]);
	flip_byte(path, 10);
	opts_init(&o, d);
	ctx_init(&c, 0);
	assert_null(journal_open(&o, check_cb, &c, err, sizeof err));
	print_message("# %s\n", err);
	assert_non_null(strstr(err, "at offset 0 "));

	o.force = 1;
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(journal_close(j), 0);
	assert_int_equal(nfiles(d, ".seg"), nseg);	/* one cut, one new */
	names_free(names, nseg);
}

/* Size and modification time of every file, to show nothing changed. */
struct fstate {
	char		name[64];
	off_t		size;
	struct timespec	mtime;
};

static size_t
dir_state(struct tdir *d, struct fstate *fs)
{
	char		*names[MAXFILES], path[PATH_MAX];
	struct stat	 sb;
	size_t		 n, i;

	n = list_files(d, "", names);
	for (i = 0; i < n; i++) {
		snprintf(fs[i].name, sizeof fs[i].name, "%s", names[i]);
		jpath(path, sizeof path, d, names[i]);
		assert_int_equal(lstat(path, &sb), 0);
		fs[i].size = sb.st_size;
		fs[i].mtime = sb.st_mtim;
	}
	names_free(names, n);
	return n;
}

static void
assert_dir_unchanged(struct tdir *d, struct fstate *before, size_t n)
{
	struct fstate	after[MAXFILES];
	size_t		i;

	assert_int_equal(dir_state(d, after), n);
	for (i = 0; i < n; i++) {
		assert_string_equal(after[i].name, before[i].name);
		assert_int_equal(after[i].size, before[i].size);
		assert_int_equal(after[i].mtime.tv_sec,
		    before[i].mtime.tv_sec);
		assert_int_equal(after[i].mtime.tv_nsec,
		    before[i].mtime.tv_nsec);
	}
}

static void
test_readonly(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	struct fstate		 before[MAXFILES];
	char			*names[MAXFILES], path[PATH_MAX], err[512];
	char			*rep;
	size_t			 nseg, n, replen, len, offs[256], nf, i, at = 0;
	uint8_t			*img;

	nseg = make_segments(d, 200, names);
	/* A torn tail and a leftover temporary file. */
	jpath(path, sizeof path, d, names[nseg - 1]);
	img = slurp(path, &len);
	spew(path, img, len - 3);
	free(img);
	jpath(path, sizeof path, d, "00000000000000ff.seg.tmp");
	spew(path, "junk", 4);
	n = dir_state(d, before);

	opts_init(&o, d);
	o.readonly = 1;
	assert_non_null(o.report = open_memstream(&rep, &replen));
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 199);
	assert_int_equal(c.bad, 0);
	journal_stats(j, &st);
	assert_true(st.torn_bytes > 0);
	assert_int_equal(st.segments, nseg);
	journal_append(j, 16, "x", 1);
	assert_int_equal(journal_commit(j), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(journal_close(j), -1);
	fclose(o.report);
	tap_note(rep);
	assert_non_null(strstr(rep, "torn tail"));
	assert_non_null(strstr(rep, "would be cut"));
	assert_non_null(strstr(rep, "leftover temporary file"));
	assert_non_null(strstr(rep, "199 records"));
	free(rep);
	assert_dir_unchanged(d, before, n);

	/* Corruption: reported, open fails, still nothing changed. */
	jpath(path, sizeof path, d, names[1]);
	img = slurp(path, &len);
	nf = frames(img, len, offs, 256);
	for (i = 0; i < nf && offs[i] <= 100; i++)
		at = offs[i];
	free(img);
	flip_byte(path, 100);
	n = dir_state(d, before);
	assert_non_null(o.report = open_memstream(&rep, &replen));
	ctx_init(&c, 0);
	assert_null(journal_open(&o, check_cb, &c, err, sizeof err));
	fclose(o.report);
	assert_non_null(strstr(rep, "CORRUPT"));
	free(rep);
	assert_dir_unchanged(d, before, n);

	/* Even with force. */
	o.force = 1;
	o.report = NULL;
	assert_non_null(j = jopen(&o, &c, 0));
	journal_stats(j, &st);
	assert_int_equal(st.corrupt_at, at);
	assert_int_equal(journal_close(j), 0);
	assert_dir_unchanged(d, before, n);

	/* A journal directory that does not exist is an error, not made. */
	rm_rf(d->jdir);
	ctx_init(&c, 0);
	assert_null(journal_open(&o, check_cb, &c, err, sizeof err));
	assert_int_equal(access(d->jdir, F_OK), -1);
	names_free(names, nseg);
}

/* Snapshot callback: writes generator records [base, base + n). */
struct snapctx {
	uint64_t	base;
	uint64_t	n;
	int		fail;
};

static int
snap_cb(void *arg, struct snapw *w)
{
	struct snapctx	*s = arg;
	uint8_t		 buf[8192], t;
	size_t		 len;
	uint64_t	 i;

	for (i = s->base; i < s->base + s->n; i++) {
		len = gen(i, &t, buf);
		if (journal_snap_append(w, t, buf, len) == -1)
			return -1;
	}
	if (s->fail) {
		errno = EDOM;
		return -1;
	}
	return 0;
}

static void
test_snapshot(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	struct snapctx		 s = { 100000, 50, 0 };
	char			*names[MAXFILES], snapname[64];
	uint64_t		 before;
	size_t			 n;

	opts_init(&o, d);
	o.segment_max = 4096;
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, 400, 4);
	/* Pending records are committed first (they then become obsolete
	 * along with the rest). */
	journal_append(j, 16, "pending", 7);
	before = dir_bytes(d);
	assert_true(nfiles(d, ".seg") > 5);

	assert_int_equal(journal_snapshot(j, snap_cb, &s), 0);
	assert_int_equal(journal_pending(j), 0);
	journal_stats(j, &st);
	assert_int_equal(st.snapshots, 1);
	assert_int_equal(st.segments, 1);
	assert_int_equal(nfiles(d, ".seg"), 1);
	assert_int_equal(nfiles(d, ".tmp"), 0);
	assert_true(dir_bytes(d) < before);
	assert_int_equal(st.bytes, dir_bytes(d));
	assert_int_equal(list_files(d, ".seg", names), 1);
	snprintf(snapname, sizeof snapname, "%s", names[0]);
	names_free(names, 1);
	put_recs(j, 100050, 100060, 3);
	assert_int_equal(journal_close(j), 0);

	assert_non_null(j = jopen(&o, &c, 100000));
	assert_int_equal(c.n, 60);
	assert_int_equal(c.bad, 0);
	assert_int_equal(journal_close(j), 0);

	/* Later segments follow the snapshot's; nothing older came back. */
	n = list_files(d, ".seg", names);
	assert_true(n >= 2);
	assert_string_equal(names[0], snapname);
	names_free(names, n);
}

static void
test_snapshot_leftover_tmp(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	struct buf		 b;
	char			 path[PATH_MAX];
	uint8_t			 pl[23];

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, 50, 5);
	assert_int_equal(journal_close(j), 0);

	/* What a crash in the middle of a snapshot leaves: a .tmp with a
	 * good snapshot header and some records, never renamed. */
	memcpy(pl, "SIMQJNL", 7);
	le32_put(pl + 7, JOURNAL_VERSION);
	le64_put(pl + 11, 2);
	le32_put(pl + 19, SEG_SNAPSHOT);
	buf_init(&b);
	tframe(&b, REC_SEGHDR, pl, sizeof pl);
	tframe(&b, 16, "abcd", 4);
	tframe(&b, 17, "efgh", 4);
	jpath(path, sizeof path, d, "0000000000000002.seg.tmp");
	spew(path, b.p, b.len);
	buf_free(&b);

	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 50);
	assert_int_equal(c.bad, 0);
	assert_int_equal(nfiles(d, ".tmp"), 0);
	put_recs(j, 50, 60, 5);
	assert_int_equal(journal_close(j), 0);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 60);
	assert_int_equal(c.bad, 0);
	assert_int_equal(journal_close(j), 0);
}

static void
test_snapshot_fails(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	struct snapctx		 s = { 100000, 400, 0 };
	size_t			 nseg;

	opts_init(&o, d);
	o.segment_max = 4096;
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, 200, 4);
	nseg = nfiles(d, ".seg");

	/* Disk full halfway through: old segments stay in use. */
	journal_fail_after(j, 20000);
	assert_int_equal(journal_snapshot(j, snap_cb, &s), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(nfiles(d, ".tmp"), 0);
	assert_int_equal(nfiles(d, ".seg"), nseg);
	journal_fail_after(j, 0);

	/* The callback fails: the same. */
	s.fail = 1;
	assert_int_equal(journal_snapshot(j, snap_cb, &s), -1);
	assert_int_equal(errno, EDOM);
	assert_int_equal(nfiles(d, ".tmp"), 0);
	assert_int_equal(nfiles(d, ".seg"), nseg);
	journal_stats(j, &st);
	assert_int_equal(st.snapshots, 0);

	put_recs(j, 200, 250, 4);
	assert_int_equal(journal_close(j), 0);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 250);
	assert_int_equal(c.bad, 0);
	assert_int_equal(journal_close(j), 0);
}

static void
msleep(unsigned ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Polls the compaction child until it has exited. */
static int
snap_wait(struct journal *j, uint64_t *bytes)
{
	int	r, i;

	for (i = 0; i < 20000; i++) {
		if ((r = journal_snapshot_poll(j, bytes)) != 1)
			return r;
		msleep(1);
	}
	fail_msg("the compaction child did not exit within 20 s");
	return -1;
}

/*
 * What a journal holds after a compaction of records [0, n) whose
 * snapshot is records [n - k, n), followed by records [n, n + m): the
 * old state (every record, 0 to n + m) or the new one (the snapshot's k
 * records and the m after it), never anything else.  Returns 0 for the
 * old, 1 for the new.
 */
static int
old_or_new(struct journal_opts *o, uint64_t n, uint64_t k, uint64_t m)
{
	struct journal	*j;
	struct ctx	 c;
	int		 which;

	assert_non_null(j = jopen(o, &c, 0));
	assert_int_equal(journal_close(j), 0);
	if (c.bad == 0 && c.n == n + m)
		return 0;
	assert_non_null(j = jopen(o, &c, n - k));
	which = c.bad == 0 && c.n == k + m;
	if (!which)
		print_message("# replayed %llu records (%llu bad): neither the "
		    "old journal nor the new\n", (unsigned long long)c.n,
		    (unsigned long long)c.bad);
	assert_true(which);
	assert_int_equal(journal_close(j), 0);
	return 1;
}

/* A snapshot written by a child while the parent goes on appending. */
static void
test_snapshot_child(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	struct snapctx		 s = { 350, 50, 0 };
	char			*names[MAXFILES];
	uint64_t		 bytes = 0, before;
	pid_t			 pid;
	size_t			 n;

	opts_init(&o, d);
	o.segment_max = 4096;
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, 400, 4);
	before = dir_bytes(d);
	assert_true((pid = journal_snapshot_start(j, snap_cb, &s, 200)) > 0);
	assert_int_equal(journal_snapshot_child(j), pid);
	/* One at a time. */
	assert_int_equal(journal_snapshot_start(j, snap_cb, &s, 0), -1);
	assert_int_equal(errno, EBUSY);
	/* The parent appends meanwhile, across segments. */
	put_recs(j, 400, 460, 3);
	assert_int_equal(journal_snapshot_poll(j, &bytes), 1);
	assert_int_equal(snap_wait(j, &bytes), 0);
	assert_int_equal(journal_snapshot_child(j), 0);
	journal_stats(j, &st);
	assert_int_equal(st.snapshots, 1);
	assert_true(bytes > HDR_SIZE);
	assert_int_equal(nfiles(d, ".tmp"), 0);
	assert_int_equal(st.bytes, dir_bytes(d));
	assert_true(dir_bytes(d) < before);
	assert_int_equal(st.segments, nfiles(d, ".seg"));
	assert_int_equal(journal_close(j), 0);

	assert_non_null(j = jopen(&o, &c, 350));
	assert_int_equal(c.n, 110);
	assert_int_equal(c.bad, 0);
	assert_int_equal(journal_close(j), 0);
	/* The snapshot is the oldest segment left. */
	n = list_files(d, ".seg", names);
	assert_true(n >= 2);
	names_free(names, n);
	assert_int_equal(old_or_new(&o, 400, 50, 60), 1);
}

/*
 * The child killed at moments before, during and after its switch-over
 * (its delay is 80 ms, half before the rename, half after it), the
 * parent appending meanwhile: the journal is always the old one or the
 * new one, and a kill during the first half always leaves the old one.
 */
static void
test_snapshot_child_killed(void **state)
{
	static const unsigned	 at[] = { 0, 5, 20, 35, 45, 60, 75, 120 };
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	struct snapctx		 s = { 350, 50, 0 };
	uint64_t		 bytes;
	pid_t			 pid;
	size_t			 i;
	int			 r, which, seen[2] = { 0, 0 };

	opts_init(&o, d);
	o.segment_max = 4096;
	for (i = 0; i < sizeof at / sizeof at[0]; i++) {
		if (i > 0)
			jdir_clear(d);
		assert_non_null(j = jopen(&o, &c, 0));
		put_recs(j, 0, 400, 4);
		assert_true((pid = journal_snapshot_start(j, snap_cb, &s,
		    80)) > 0);
		put_recs(j, 400, 410, 2);
		msleep(at[i]);
		kill(pid, SIGKILL);
		put_recs(j, 410, 420, 2);
		r = snap_wait(j, &bytes);
		if (r == -1)
			assert_int_equal(errno, EINTR);
		assert_int_equal(journal_close(j), 0);
		assert_int_equal(nfiles(d, ".tmp"), 0);
		which = old_or_new(&o, 400, 50, 20);
		/* What the parent believed is what is on disk. */
		assert_int_equal(which, r == 0);
		if (at[i] <= 20)
			assert_int_equal(which, 0);
		seen[which]++;
	}
	print_message("# killed %zu times: %d left the old journal, %d the "
	    "new\n", i, seen[0], seen[1]);
}

/*
 * The parent killed with -9 while its child writes: the child dies with
 * it, and a new open (which waits for the lock the child held) finds the
 * old journal or the new one.
 */
static void
test_snapshot_parent_killed(void **state)
{
	static const unsigned	 at[] = { 0, 10, 30, 50, 70, 150 };
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	struct snapctx		 s = { 350, 50, 0 };
	size_t			 i;
	pid_t			 p;
	char			 x;
	int			 status, fds[2], seen[2] = { 0, 0 };

	opts_init(&o, d);
	o.segment_max = 4096;
	o.lock_wait_ms = 5000;
	for (i = 0; i < sizeof at / sizeof at[0]; i++) {
		if (i > 0)
			jdir_clear(d);
		assert_non_null(j = jopen(&o, &c, 0));
		put_recs(j, 0, 400, 4);
		assert_int_equal(journal_close(j), 0);
		assert_int_equal(pipe(fds), 0);
		if ((p = fork()) == 0) {
			/* The broker: appends (all of it committed before
			 * it says so), and is killed. */
			close(fds[0]);
			j = journal_open(&o, NULL, NULL, NULL, 0);
			if (j == NULL ||
			    journal_snapshot_start(j, snap_cb, &s, 60) < 0)
				_exit(1);
			put_recs(j, 400, 420, 2);
			if (write(fds[1], "x", 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
		assert_true(p > 0);
		close(fds[1]);
		assert_int_equal(read(fds[0], &x, 1), 1);
		close(fds[0]);
		msleep(at[i]);
		kill(p, SIGKILL);
		assert_int_equal(waitpid(p, &status, 0), p);
		assert_true(WIFSIGNALED(status));
		seen[old_or_new(&o, 400, 50, 20)]++;
		assert_int_equal(nfiles(d, ".tmp"), 0);
	}
	print_message("# killed %zu times: %d left the old journal, %d the "
	    "new\n", i, seen[0], seen[1]);
}

/* The disk fills up under the child: the old segments stay in use. */
static void
test_snapshot_child_fails(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	struct snapctx		 s = { 100000, 400, 0 };
	uint64_t		 bytes;

	opts_init(&o, d);
	o.segment_max = 4096;
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, 200, 4);
	journal_fail_after(j, 20000);
	assert_true(journal_snapshot_start(j, snap_cb, &s, 0) > 0);
	journal_fail_after(j, 0);
	put_recs(j, 200, 210, 4);
	assert_int_equal(snap_wait(j, &bytes), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(nfiles(d, ".tmp"), 0);
	journal_stats(j, &st);
	assert_int_equal(st.snapshots, 0);
	assert_int_equal(st.bytes, dir_bytes(d));

	/* The callback fails: the same. */
	s.fail = 1;
	s.n = 10;
	assert_true(journal_snapshot_start(j, snap_cb, &s, 0) > 0);
	assert_int_equal(snap_wait(j, &bytes), -1);
	assert_int_equal(errno, EDOM);
	assert_int_equal(nfiles(d, ".tmp"), 0);

	put_recs(j, 210, 250, 4);
	assert_int_equal(journal_close(j), 0);
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 250);
	assert_int_equal(c.bad, 0);
	assert_int_equal(journal_close(j), 0);
}

static void
test_fail_after(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 st;
	struct ctx		 c;
	uint8_t			 buf[8192], t;
	size_t			 f0, f1, len;
	uint64_t		 i;

	opts_init(&o, d);
	o.policy = FSYNC_ALWAYS;
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, 50, 5);
	f0 = 9 + gen(50, &t, buf);
	f1 = 9 + gen(51, &t, buf);
	assert_true(f1 > 20);
	/* The commit gets out record 50 and half of record 51. */
	journal_fail_after(j, f0 + f1 / 2);
	assert_int_equal(journal_commit(j), 0);	/* nothing pending */
	for (i = 50; i < 54; i++) {
		len = gen(i, &t, buf);
		journal_append(j, t, buf, len);
	}
	assert_int_equal(journal_commit(j), -1);
	assert_int_equal(errno, ENOSPC);
	/* Broken from now on: the caller must exit. */
	journal_append(j, 16, NULL, 0);
	assert_int_equal(journal_commit(j), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(journal_close(j), -1);

	/* What reached the disk is recovered, up to the partial record. */
	o.policy = FSYNC_NONE;
	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 51);
	assert_int_equal(c.bad, 0);
	journal_stats(j, &st);
	assert_int_equal(st.torn_bytes, f1 / 2);
	assert_int_equal(journal_close(j), 0);
}

static void
test_callback_fails(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct ctx		 c;
	char			 err[512];

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	put_recs(j, 0, 20, 5);
	assert_int_equal(journal_close(j), 0);

	ctx_init(&c, 0);
	c.fail_at = 7;
	assert_null(journal_open(&o, check_cb, &c, err, sizeof err));
	print_message("# %s\n", err);
	assert_non_null(strstr(err, "replay failed"));
	assert_non_null(strstr(err, "0000000000000001.seg at offset "));
	assert_int_equal(nfiles(d, ".seg"), 1);	/* nothing created */
}

static void
test_sync_policies(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j;
	struct journal_stats	 a, b;
	struct ctx		 c;

	opts_init(&o, d);
	o.policy = FSYNC_ALWAYS;
	assert_non_null(j = jopen(&o, &c, 0));
	journal_stats(j, &a);
	put_recs(j, 0, 30, 10);
	assert_int_equal(journal_commit(j), 0);	/* nothing pending */
	journal_stats(j, &b);
	assert_int_equal(b.commits - a.commits, 3);
	assert_int_equal(b.fsyncs - a.fsyncs, 3);
	assert_int_equal(journal_sync(j), 0);	/* not dirty */
	journal_stats(j, &a);
	assert_int_equal(a.fsyncs, b.fsyncs);
	assert_int_equal(journal_close(j), 0);

	o.policy = FSYNC_INTERVAL;
	assert_non_null(j = jopen(&o, &c, 0));
	journal_stats(j, &a);
	put_recs(j, 30, 60, 10);
	journal_stats(j, &b);
	assert_int_equal(b.commits - a.commits, 3);
	assert_int_equal(b.fsyncs, a.fsyncs);
	assert_int_equal(journal_sync(j), 0);
	assert_int_equal(journal_sync(j), 0);
	journal_stats(j, &a);
	assert_int_equal(a.fsyncs - b.fsyncs, 1);
	assert_int_equal(journal_close(j), 0);

	assert_non_null(j = jopen(&o, &c, 0));
	assert_int_equal(c.n, 60);
	assert_int_equal(c.bad, 0);
	assert_int_equal(journal_close(j), 0);
}

static void
test_locked(void **state)
{
	struct tdir		*d = *state;
	struct journal_opts	 o;
	struct journal		*j, *j2;
	struct ctx		 c, c2;
	char			 err[512];

	opts_init(&o, d);
	assert_non_null(j = jopen(&o, &c, 0));
	ctx_init(&c2, 0);
	assert_null(journal_open(&o, check_cb, &c2, err, sizeof err));
	assert_non_null(strstr(err, "in use"));
	/* --check may look at a running broker's journal. */
	o.readonly = 1;
	assert_non_null(j2 = jopen(&o, &c2, 0));
	assert_int_equal(journal_close(j2), 0);
	assert_int_equal(journal_close(j), 0);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_crc32c),
#define T(f)	cmocka_unit_test_setup_teardown(f, tdir_setup, tdir_teardown)
		T(test_version_1_opens),
		T(test_format_fixture),
		T(test_version_2_opens),
		T(test_version_3_opens),
		T(test_version_5_opens),
		T(test_roundtrip),
		T(test_reopen_reuses_empty_segment),
		T(test_rotation),
		T(test_torn_every_byte),
		T(test_zero_tail),
		T(test_corrupt_middle),
		T(test_corrupt_earlier_segment),
		T(test_missing_segment),
		T(test_force_moves_aside),
		T(test_bad_header),
		T(test_readonly),
		T(test_snapshot),
		T(test_snapshot_leftover_tmp),
		T(test_snapshot_fails),
		T(test_snapshot_child),
		T(test_snapshot_child_killed),
		T(test_snapshot_parent_killed),
		T(test_snapshot_child_fails),
		T(test_fail_after),
		T(test_callback_fails),
		T(test_sync_policies),
		T(test_locked),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
