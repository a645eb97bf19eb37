/*
 * fuzz_journal.c: journal replay on arbitrary segment bytes.
 *
 * The first input byte picks the layout: odd, the rest of the input follows
 * a valid snapshot header for segment 1 (so the fuzzer spends its time on
 * records); even, the rest is the whole file.  The file is written to
 * DIR/0000000000000001.seg in a fresh temporary directory (under $TMPDIR,
 * /tmp by default; /dev/shm is much faster) and opened four ways:
 * readonly, readonly with force, read-write, read-write with force.
 *
 * Checked, besides "no crash, no sanitizer report":
 *   - every replayed record is, in order, a frame of the file with a good
 *     CRC, starting right after the header (the callback walks the file);
 *   - readonly changes no byte, and it decides as read-write does;
 *   - after a read-write open succeeded, a second open succeeds, finds
 *     nothing torn or corrupt, and replays the same records.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "journal.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define SEGNAME		"0000000000000001.seg"

/* The callback's view of the file it expects records from. */
struct walk {
	const uint8_t	*img;
	size_t		 len;
	size_t		 off;		/* where the next record must be */
	uint64_t	 n;
};

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_journal: %s\n", what);
	abort();
}

static int
walk_cb(void *arg, uint8_t type, const uint8_t *payload, size_t len)
{
	struct walk	*w = arg;
	const uint8_t	*f;
	uint32_t	 flen;

	if (w->len - w->off < 9)
		fail("record replayed past the end of the file");
	f = w->img + w->off;
	flen = le32_get(f);
	if (flen != len + 1 || w->len - w->off - 8 < flen)
		fail("replayed length does not match the file");
	if (f[8] != type || (len > 0 && memcmp(f + 9, payload, len) != 0))
		fail("replayed record does not match the file");
	if (crc32c(crc32c(0, f, 4), f + 8, flen) != le32_get(f + 4))
		fail("replayed a record with a bad checksum");
	if (type < 16)
		fail("replayed a reserved record type");
	w->off += 8 + (size_t)flen;
	w->n++;
	return 0;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
put_file(const char *path, const uint8_t *p, size_t len)
{
	FILE	*f;

	if ((f = fopen(path, "wb")) == NULL)
		fail("cannot create the segment");
	if (len > 0 && fwrite(p, 1, len, f) != len)
		fail("cannot write the segment");
	if (fclose(f) != 0)
		fail("cannot write the segment");
}

/* Recreates the journal directory holding just the image. */
static void
reset(const char *jdir, const char *seg, const uint8_t *img, size_t len)
{
	nftw(jdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	if (mkdir(jdir, 0700) == -1)
		fail("cannot make the journal directory");
	put_file(seg, img, len);
}

/* Opens, checks the replay against the image, closes.  Returns 1 if the
 * open succeeded, with the record count and stats. */
static int
try_open(const char *jdir, const uint8_t *img, size_t len, int readonly,
    int force, uint64_t *n, struct journal_stats *st)
{
	struct journal_opts	 o;
	struct journal		*j;
	struct walk		 w;
	char			 err[512];

	memset(&o, 0, sizeof o);
	o.dir = jdir;
	o.policy = FSYNC_NONE;
	o.readonly = readonly;
	o.force = force;
	memset(&w, 0, sizeof w);
	w.img = img;
	w.len = len;
	w.off = 32;
	j = journal_open(&o, walk_cb, &w, err, sizeof err);
	*n = w.n;
	if (j == NULL)
		return 0;
	journal_stats(j, st);
	if (st->records != w.n)
		fail("stats disagree with the replay");
	if (journal_close(j) == -1)
		fail("close failed");
	return 1;
}

/* After a successful read-write open: the journal is clean now. */
static void
check_clean(const char *jdir, const uint8_t *img, size_t len, uint64_t n)
{
	struct journal_stats	st;
	uint64_t		n2;

	if (!try_open(jdir, img, len, 0, 0, &n2, &st))
		fail("a repaired journal does not open");
	if (n2 != n || st.torn_bytes != 0 || st.corrupt_at != 0)
		fail("a repaired journal is not clean");
}

static void
seghdr(uint8_t *h)
{
	le32_put(h, 24);
	h[8] = REC_SEGHDR;
	memcpy(h + 9, "SIMQJNL", 7);
	le32_put(h + 16, JOURNAL_VERSION);
	le64_put(h + 20, 1);
	le32_put(h + 28, SEG_SNAPSHOT);
	le32_put(h + 4, crc32c(crc32c(0, h, 4), h + 8, 24));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char		 root[PATH_MAX];
	char			 jdir[PATH_MAX + 16], seg[PATH_MAX + 48];
	const char		*tmp;
	struct journal_stats	 st;
	struct stat		 sb;
	uint8_t			*img;
	size_t			 len;
	uint64_t		 n_ro, n_ro_force, n_rw, n;
	int			 ok_ro, ok_ro_force, ok_rw;

	if (size == 0)
		return 0;
	len = size - 1;
	if ((img = malloc(32 + len + 1)) == NULL)
		fail("out of memory");
	if (data[0] & 1) {
		seghdr(img);
		memcpy(img + 32, data + 1, len);
		len += 32;
	} else
		memcpy(img, data + 1, len);

	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(root, sizeof root, "%s/fuzz_journal.XXXXXX", tmp);
	if (mkdtemp(root) == NULL)
		fail("mkdtemp");
	snprintf(jdir, sizeof jdir, "%s/journal", root);
	snprintf(seg, sizeof seg, "%s/" SEGNAME, jdir);

	reset(jdir, seg, img, len);
	ok_ro = try_open(jdir, img, len, 1, 0, &n_ro, &st);
	ok_ro_force = try_open(jdir, img, len, 1, 1, &n_ro_force, &st);
	if (ok_ro && !ok_ro_force)
		fail("force made a readonly open fail");
	if (ok_ro && n_ro != n_ro_force)
		fail("force changed a journal that needed no cut");
	if (stat(seg, &sb) == -1 || (size_t)sb.st_size != len)
		fail("readonly open changed the segment");

	ok_rw = try_open(jdir, img, len, 0, 0, &n_rw, &st);
	if (ok_rw != ok_ro || (ok_rw && n_rw != n_ro))
		fail("readonly and read-write opens disagree");
	if (ok_rw)
		check_clean(jdir, img, len, n_rw);

	reset(jdir, seg, img, len);
	if (try_open(jdir, img, len, 0, 1, &n, &st)) {
		if (n != n_ro_force)
			fail("readonly and read-write forced opens disagree");
		check_clean(jdir, img, len, n);
	} else if (ok_ro_force)
		fail("a forced open failed where readonly succeeded");

	nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(img);
	return 0;
}
