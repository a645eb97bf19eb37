/*
 * journal.c: the broker's durable log, as segment files of framed,
 * checksummed records.
 *
 * The one idea: a segment file only ever gets a name once its header is on
 * disk.  Segments are created as SEQ.seg.tmp, given their header (and, for
 * a snapshot, the whole snapshot), fsynced, renamed to SEQ.seg, and the
 * directory is fsynced.  So after any crash every *.seg file has a good
 * header, a snapshot segment is complete, and the only damage a crash can
 * do is a torn tail on the last segment: the part of the last write() that
 * did not reach the disk.  Anything else is corruption, which is never
 * repaired silently.
 *
 * Appending is memory only: journal_append() frames the record into the
 * pending buffer (CRC computed there), journal_commit() writes the buffer
 * with one write() and, under FSYNC_ALWAYS, one fdatasync().
 *
 * On open the segments from the newest snapshot on are mmapped one at a
 * time and replayed in place: no read copies, no allocation per record
 * (so a payload pointer is valid only during its callback).  Then the
 * journal always starts a new segment (last + 1): appending after a cut
 * tail would mix old and new writes in one file for no gain.  Each start
 * thus adds a segment; the next snapshot removes them.
 *
 * Torn or corrupt?  A bad record in the last segment with no plausible,
 * checksum-valid frame at any byte offset after it is a torn tail, cut and
 * logged.  Otherwise it is corruption and needs --force.  One crash can
 * still look like corruption: a large commit whose pages reached the disk
 * out of order (a hole, then good records).  Under FSYNC_ALWAYS nothing
 * after the hole was acknowledged, so --force loses nothing promised.
 *
 * Order of events at open (not readonly): replay everything (nothing is
 * changed before the replay succeeded); remove the segments after a forced
 * cut, newest first, and fsync the directory; truncate the cut segment
 * (torn tail or forced cut) and fsync it; remove obsolete segments (older
 * than the snapshot) and *.seg.tmp leftovers; fsync the directory; create
 * the new segment.  A crash at any point repeats or completes that work on
 * the next start.
 *
 * A forced cut deletes nothing: what it leaves out (the later segments, a
 * copy of the cut segment as it was, the obsolete segments) is moved to a
 * new directory cut-YYYYMMDDTHHMMSSZ beside the segments, for the operator
 * to examine.  And it must not make the broker hand out an id twice: ids
 * acknowledged in what was cut off are in no replayed record, so every
 * checksum-valid record there (and in the cut-* directories of earlier
 * cuts) goes to opts->cutoff_fn, which keeps the id counter above them.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "journal.h"
#include "log.h"

/* u32 len, u32 crc, u8 type; len counts the type byte and the payload. */
#define FRAME_HDR	9

/* The segment header record: magic, version, sequence number, flags. */
#define SEGHDR_MAGIC	"SIMQJNL"
#define SEGHDR_MAGICLEN	7
#define SEGHDR_PAYLOAD	(SEGHDR_MAGICLEN + 4 + 8 + 4)
#define SEGHDR_SIZE	(FRAME_HDR + SEGHDR_PAYLOAD)

/* "%016llx.seg.tmp" and its NUL. */
#define SEG_NAMELEN	32

/* Snapshot records are written in chunks of this size: few enough write()
 * calls to be free, small enough not to hold a copy of a large state. */
#define SNAP_CHUNK	((size_t)1 << 20)

/* After a commit larger than this (a big BATCH) the pending buffer is
 * freed rather than kept, so one burst does not pin its memory forever. */
#define PENDING_KEEP	((size_t)4 << 20)

struct journal {
	char			*dir;
	int			 dirfd;		/* also holds the flock */
	int			 fd;		/* current segment; -1 readonly */
	enum fsync_policy	 policy;
	uint64_t		 seg_max;
	int			 readonly;
	int			 broken;	/* a write failed: no more */
	FILE			*report;

	uint64_t		 nseg;		/* segments first..seq */
	uint64_t		 first;
	uint64_t		 seq;
	uint64_t		 size;		/* of segment seq */
	uint64_t		 older;		/* of segments first..seq-1 */

	struct buf		 pending;
	int			 dirty;		/* written, not fdatasynced */

	int			 fail_armed;
	uint64_t		 fail_left;

	/* A snapshot written by a child (journal_snapshot_start): its pid
	 * (0: none), its segment, the bytes of the segments it replaces
	 * (first..snap_seq). */
	pid_t			 snap_pid;
	uint64_t		 snap_seq;
	uint64_t		 snap_older;
	/* The oldest segment that may still be on disk: the segments from
	 * here to first are obsolete, left by a compaction interrupted
	 * after its switch-over, and the next one removes them. */
	uint64_t		 oldest;

	struct journal_stats	 st;
};

struct snapw {
	struct journal		*j;
	int			 fd;
	struct buf		 buf;
	uint64_t		 size;		/* of the file when flushed */
	int			 err;		/* errno of a failure, or 0 */
	int			 trickle;	/* write back as it goes */
	uint64_t		 wb_start;	/* the chunk under writeback */
};

/* The segment files found at open, sorted by sequence number. */
struct seglist {
	uint64_t		*seq;
	uint64_t		*size;		/* after replay and cuts */
	size_t			 n;
	char			**tmp;		/* *.seg.tmp leftovers */
	size_t			 ntmp;
};

/* What the replay decided to keep: segments [start, keep), the last of
 * them cut to cut_len when cut is set. */
struct plan {
	size_t			 start;
	size_t			 keep;
	int			 cut;
	uint64_t		 cut_len;
	int			 forced;	/* cut for corruption */
};

static void	jerr(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	jreport(struct journal *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static void
jerr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Prints a finding for --check, when there is somewhere to print it. */
static void
jreport(struct journal *j, const char *fmt, ...)
{
	va_list	ap;

	if (j->report == NULL)
		return;
	va_start(ap, fmt);
	vfprintf(j->report, fmt, ap);
	va_end(ap);
	fputc('\n', j->report);
}

static void
seg_name(char *name, uint64_t seq, int tmp)
{
	snprintf(name, SEG_NAMELEN, "%016llx.seg%s", (unsigned long long)seq,
	    tmp ? ".tmp" : "");
}

/* Parses exactly 16 lowercase hex digits.  Returns 0, or -1. */
static int
seg_parse_seq(const char *s, uint64_t *seq)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 16; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			v = v << 4 | (uint64_t)(s[i] - '0');
		else if (s[i] >= 'a' && s[i] <= 'f')
			v = v << 4 | (uint64_t)(s[i] - 'a' + 10);
		else
			return -1;
	}
	*seq = v;
	return 0;
}

/* Appends one frame to b.  The CRC covers the length bytes, the type and
 * the payload, so a torn or shifted length cannot pass. */
static void
frame_put(struct buf *b, uint8_t type, const void *payload, size_t len)
{
	size_t		off = b->len;
	uint32_t	crc;

	buf_reserve(b, FRAME_HDR + len);
	buf_put_u32(b, (uint32_t)len + 1);
	buf_put_u32(b, 0);
	buf_put_u8(b, type);
	buf_put(b, payload, len);
	crc = crc32c(0, b->p + off, 4);
	crc = crc32c(crc, b->p + off + 8, len + 1);
	buf_set_u32(b, off + 4, crc);
}

/*
 * Checks the frame at p, with n bytes available.  Returns 0 and its total
 * size in *flen, or -1 with the reason in why.
 */
static int
frame_check(const uint8_t *p, size_t n, size_t *flen, char *why,
    size_t whylen)
{
	uint32_t	len;

	if (n < FRAME_HDR) {
		jerr(why, whylen, "record header cut short, %zu bytes left",
		    n);
		return -1;
	}
	len = le32_get(p);
	if (len == 0 || len > JOURNAL_RECORD_MAX) {
		jerr(why, whylen, "impossible record length %u", len);
		return -1;
	}
	if (len > n - 8) {
		jerr(why, whylen, "record of %u bytes cut short, %zu left",
		    len, n - 8);
		return -1;
	}
	if (crc32c(crc32c(0, p, 4), p + 8, len) != le32_get(p + 4)) {
		jerr(why, whylen, "checksum mismatch");
		return -1;
	}
	*flen = 8 + (size_t)len;
	return 0;
}

/*
 * Looks for a plausible frame with a good checksum at any byte offset from
 * off on.  Returns 1 if there is one: then the damage before it is not a
 * torn tail, since a crash only loses the end of a file.  Each candidate
 * costs a CRC over its length, bounded by what is left of the file.
 */
static int
frame_follows(const uint8_t *p, size_t n, size_t off)
{
	uint32_t	len;

	for (; n >= FRAME_HDR && off <= n - FRAME_HDR; off++) {
		len = le32_get(p + off);
		if (len == 0 || len > JOURNAL_RECORD_MAX || len > n - off - 8)
			continue;
		if (crc32c(crc32c(0, p + off, 4), p + off + 8, len) ==
		    le32_get(p + off + 4))
			return 1;
	}
	return 0;
}

static void
seghdr_put(struct buf *b, uint64_t seq, uint32_t flags)
{
	struct buf	pl;

	buf_init(&pl);
	buf_put(&pl, SEGHDR_MAGIC, SEGHDR_MAGICLEN);
	buf_put_u32(&pl, JOURNAL_VERSION);
	buf_put_u64(&pl, seq);
	buf_put_u32(&pl, flags);
	frame_put(b, REC_SEGHDR, pl.p, pl.len);
	buf_free(&pl);
}

/*
 * Checks a segment header.  Returns 0 with the flags, -1 with the reason
 * in why when it is damaged, or -2 when it is from a newer simqd (not
 * damage: that must never be cut, even with --force).
 */
static int
seghdr_check(const uint8_t *p, size_t n, uint64_t seq, uint32_t *flags,
    char *why, size_t whylen)
{
	struct rbuf	 r;
	const void	*magic;
	uint32_t	 version;
	uint64_t	 hseq;
	size_t		 flen;
	char		 fwhy[128];

	if (frame_check(p, n, &flen, fwhy, sizeof fwhy) == -1) {
		jerr(why, whylen, "bad segment header: %s", fwhy);
		return -1;
	}
	if (p[8] != REC_SEGHDR) {
		jerr(why, whylen, "no segment header");
		return -1;
	}
	rbuf_init(&r, p + FRAME_HDR, flen - FRAME_HDR);
	magic = rbuf_bytes(&r, SEGHDR_MAGICLEN);
	version = rbuf_u32(&r);
	if (r.err || memcmp(magic, SEGHDR_MAGIC, SEGHDR_MAGICLEN) != 0) {
		jerr(why, whylen, "bad segment header magic");
		return -1;
	}
	if (version < JOURNAL_VERSION_MIN || version > JOURNAL_VERSION) {
		jerr(why, whylen, "journal format version %u, this simqd "
		    "reads versions %u to %u", version, JOURNAL_VERSION_MIN,
		    JOURNAL_VERSION);
		return -2;
	}
	hseq = rbuf_u64(&r);
	*flags = rbuf_u32(&r);
	if (r.err || rbuf_left(&r) != 0) {
		jerr(why, whylen, "segment header of %zu bytes",
		    flen - FRAME_HDR);
		return -1;
	}
	if (hseq != seq) {
		jerr(why, whylen, "header says segment %016llx",
		    (unsigned long long)hseq);
		return -1;
	}
	return 0;
}

/*
 * Replays the records of a segment image after its header through fn.
 * Returns 0 when all of it is good; 1 at a bad record, with its offset in
 * *end and the reason in why; -1 when fn returned -1 for the record at
 * *end.  Pure: no I/O, so it is the same code whatever p points into.
 */
static int
seg_replay(const uint8_t *p, size_t n, journal_replay_fn fn, void *arg,
    size_t *end, uint64_t *nrec, char *why, size_t whylen)
{
	size_t	off = SEGHDR_SIZE, flen;
	uint8_t	type;

	for (; off < n; off += flen) {
		*end = off;
		if (frame_check(p + off, n - off, &flen, why, whylen) == -1)
			return 1;
		type = p[off + 8];
		if (type < 16) {
			jerr(why, whylen, "reserved record type %u", type);
			return 1;
		}
		if (fn != NULL && fn(arg, type, p + off + FRAME_HDR,
		    flen - FRAME_HDR) == -1)
			return -1;
		(*nrec)++;
	}
	*end = off;
	return 0;
}

/*
 * Writes all of p, retrying short writes and EINTR, and honouring the
 * journal_fail_after() allowance.  Returns 0, or -1 with errno set (part
 * of p may have been written).
 */
static int
jwrite(struct journal *j, int fd, const void *p, size_t n)
{
	const uint8_t	*q = p;
	size_t		 want;
	ssize_t		 r;

	while (n > 0) {
		want = n;
		if (j->fail_armed) {
			if (j->fail_left == 0) {
				errno = ENOSPC;
				return -1;
			}
			if (want > j->fail_left)
				want = (size_t)j->fail_left;
		}
		if ((r = write(fd, q, want)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (j->fail_armed)
			j->fail_left -= (uint64_t)r;
		q += r;
		n -= (size_t)r;
	}
	return 0;
}

/* fdatasync of the current segment.  Returns 0, or -1 with errno set. */
static int
jdatasync(struct journal *j)
{
	if (fdatasync(j->fd) == -1) {
		j->broken = 1;
		return -1;
	}
	j->st.fsyncs++;
	j->dirty = 0;
	return 0;
}

static int
jdirsync(struct journal *j)
{
	if (fsync(j->dirfd) == -1)
		return -1;
	j->st.fsyncs++;
	return 0;
}

/*
 * Starts segment seq as SEQ.seg.tmp holding its header.  Returns the file
 * descriptor, or -1 with errno set and no file left behind.
 */
static int
seg_begin(struct journal *j, uint64_t seq, uint32_t flags)
{
	struct buf	b;
	char		tmp[SEG_NAMELEN];
	int		fd, save;

	seg_name(tmp, seq, 1);
	fd = openat(j->dirfd, tmp, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	buf_init(&b);
	seghdr_put(&b, seq, flags);
	if (jwrite(j, fd, b.p, b.len) == -1)
		goto fail;
	buf_free(&b);
	return fd;

fail:
	save = errno;
	buf_free(&b);
	close(fd);
	unlinkat(j->dirfd, tmp, 0);
	errno = save;
	return -1;
}

/* Gives up on a segment from seg_begin(), keeping errno. */
static void
seg_abort(struct journal *j, uint64_t seq, int fd)
{
	char	tmp[SEG_NAMELEN];
	int	save = errno;

	seg_name(tmp, seq, 1);
	close(fd);
	unlinkat(j->dirfd, tmp, 0);
	errno = save;
}

/*
 * Makes segment seq durable and gives it its name: fsync, rename, fsync
 * the directory.  Returns 0, or -1 with errno set; then the final name is
 * gone again and the caller calls seg_abort().
 */
static int
seg_finish(struct journal *j, uint64_t seq, int fd)
{
	char	tmp[SEG_NAMELEN], name[SEG_NAMELEN];
	int	save;

	seg_name(tmp, seq, 1);
	seg_name(name, seq, 0);
	if (fsync(fd) == -1)
		return -1;
	j->st.fsyncs++;
	if (renameat(j->dirfd, tmp, j->dirfd, name) == -1)
		return -1;
	if (jdirsync(j) == -1) {
		save = errno;
		unlinkat(j->dirfd, name, 0);
		errno = save;
		return -1;
	}
	return 0;
}

/* Creates segment seq with just its header.  Returns its descriptor,
 * open for appending at the end of the header, or -1 with errno set. */
static int
seg_create(struct journal *j, uint64_t seq, uint32_t flags)
{
	int	fd;

	if ((fd = seg_begin(j, seq, flags)) == -1)
		return -1;
	if (seg_finish(j, seq, fd) == -1) {
		seg_abort(j, seq, fd);
		return -1;
	}
	return fd;
}

/*
 * Closes the current segment and starts the next.  The old one is synced
 * first whatever the policy: once a later segment exists, damage in it
 * would be mid-journal corruption rather than a torn tail.
 */
static int
journal_rotate(struct journal *j)
{
	int	fd;

	if (j->dirty && jdatasync(j) == -1)
		return -1;
	if ((fd = seg_create(j, j->seq + 1, 0)) == -1)
		return -1;
	close(j->fd);
	j->fd = fd;
	j->seq++;
	j->nseg++;
	j->older += j->size;
	j->size = SEGHDR_SIZE;
	return 0;
}

/* mkdir -p, fsyncing the parent of each directory it creates so the new
 * journal directory survives a crash.  Returns 0, or -1 with errno set. */
static int
mkdir_p(const char *path)
{
	char	 tmp[PATH_MAX], *p;
	size_t	 n = strlen(path);
	int	 fd, last;

	if (n == 0 || n >= sizeof tmp) {
		errno = n ? ENAMETOOLONG : ENOENT;
		return -1;
	}
	memcpy(tmp, path, n + 1);
	for (p = tmp + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		last = (*p == '\0');
		*p = '\0';
		if (mkdir(tmp, 0700) == 0) {
			/* tmp is the new directory: fsync the one above. */
			if ((p = strrchr(tmp, '/')) == NULL)
				fd = open(".", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
			else if (p == tmp)
				fd = open("/", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
			else {
				*p = '\0';
				fd = open(tmp, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
				*p = '/';
			}
			if (fd != -1) {
				fsync(fd);
				close(fd);
			}
			p = tmp + strlen(tmp);
		} else if (errno != EEXIST)
			return -1;
		if (last)
			return 0;
		*p = '/';
	}
}

static int
seq_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
seglist_free(struct seglist *sl)
{
	size_t	i;

	for (i = 0; i < sl->ntmp; i++)
		free(sl->tmp[i]);
	free(sl->tmp);
	free(sl->seq);
	free(sl->size);
	memset(sl, 0, sizeof *sl);
}

/* Lists the segments and leftover temporary files.  Returns 0, or -1 with
 * errno set. */
static int
seglist_read(struct journal *j, struct seglist *sl)
{
	DIR		*d;
	struct dirent	*de;
	size_t		 cap = 0, tcap = 0, len;
	uint64_t	 seq;
	void		*p;
	int		 fd, save;

	if ((fd = dup(j->dirfd)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	rewinddir(d);
	while ((errno = 0, de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len == 20 && strcmp(de->d_name + 16, ".seg") == 0 &&
		    seg_parse_seq(de->d_name, &seq) == 0) {
			if (sl->n == cap) {
				cap = cap ? cap * 2 : 16;
				if ((p = reallocarray(sl->seq, cap,
				    sizeof *sl->seq)) == NULL)
					goto fail;
				sl->seq = p;
			}
			sl->seq[sl->n++] = seq;
		} else if (len == 24 && strcmp(de->d_name + 16, ".seg.tmp") ==
		    0 && seg_parse_seq(de->d_name, &seq) == 0) {
			if (sl->ntmp == tcap) {
				tcap = tcap ? tcap * 2 : 4;
				if ((p = reallocarray(sl->tmp, tcap,
				    sizeof *sl->tmp)) == NULL)
					goto fail;
				sl->tmp = p;
			}
			if ((sl->tmp[sl->ntmp] = strdup(de->d_name)) == NULL)
				goto fail;
			sl->ntmp++;
		}
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	if (sl->n == 0)
		return 0;
	if ((sl->size = calloc(sl->n, sizeof *sl->size)) == NULL)
		return -1;
	qsort(sl->seq, sl->n, sizeof *sl->seq, seq_cmp);
	return 0;

fail:
	save = errno;
	closedir(d);
	errno = save;
	return -1;
}

/*
 * Reads the header of segment seq.  Returns as seghdr_check(), or -3 with
 * errno set when the file cannot be read.
 */
static int
seg_read_header(struct journal *j, uint64_t seq, uint32_t *flags, char *why,
    size_t whylen)
{
	uint8_t	hdr[SEGHDR_SIZE];
	char	name[SEG_NAMELEN];
	ssize_t	n;
	int	fd;

	seg_name(name, seq, 0);
	if ((fd = openat(j->dirfd, name, O_RDONLY|O_CLOEXEC)) == -1)
		return -3;
	while ((n = pread(fd, hdr, sizeof hdr, 0)) == -1 && errno == EINTR)
		;
	close(fd);
	if (n == -1)
		return -3;
	return seghdr_check(hdr, (size_t)n, seq, flags, why, whylen);
}

/*
 * Picks the segment replay starts at: the newest whose header has
 * SEG_SNAPSHOT, else the oldest.  Damaged headers are left for the replay
 * to find (if they matter).  Returns 0, or -1 with a message in err.
 */
static int
journal_find_start(struct journal *j, struct seglist *sl, size_t *start,
    char *err, size_t errlen)
{
	uint32_t	flags;
	size_t		i;
	char		why[160];
	int		r;

	*start = 0;
	for (i = sl->n; i-- > 0;) {
		r = seg_read_header(j, sl->seq[i], &flags, why, sizeof why);
		if (r == -3) {
			jerr(err, errlen, "journal: %s/%016llx.seg: %s", j->dir,
			    (unsigned long long)sl->seq[i], strerror(errno));
			return -1;
		}
		if (r == -2) {
			jerr(err, errlen, "journal: %s/%016llx.seg: %s", j->dir,
			    (unsigned long long)sl->seq[i], why);
			return -1;
		}
		if (r == 0 && (flags & SEG_SNAPSHOT)) {
			*start = i;
			return 0;
		}
	}
	return 0;
}

/* Is there a checksum-valid frame at p (n bytes left)?  Its total size
 * in *flen.  Quiet and cheap: called at every byte of a damaged region. */
static int
frame_ok(const uint8_t *p, size_t n, size_t *flen)
{
	uint32_t	len;

	if (n < FRAME_HDR)
		return 0;
	len = le32_get(p);
	if (len == 0 || len > JOURNAL_RECORD_MAX || len > n - 8)
		return 0;
	if (crc32c(crc32c(0, p, 4), p + 8, len) != le32_get(p + 4))
		return 0;
	*flen = 8 + (size_t)len;
	return 1;
}

/*
 * Calls fn for every checksum-valid record of the model (type >= 16) in
 * p[off..n): frame by frame, and across damage by trying every byte
 * offset.  Returns how many.
 */
static uint64_t
scan_image(const uint8_t *p, size_t n, size_t off, journal_replay_fn fn,
    void *arg)
{
	uint64_t	found = 0;
	size_t		flen;

	while (n >= FRAME_HDR && off <= n - FRAME_HDR) {
		if (!frame_ok(p + off, n - off, &flen)) {
			off++;
			continue;
		}
		if (p[off + 8] >= 16) {
			(void)fn(arg, p[off + 8], p + off + FRAME_HDR,
			    flen - FRAME_HDR);
			found++;
		}
		off += flen;
	}
	return found;
}

/* scan_image() of the file name in directory dfd from offset off.
 * Returns the records found, or -1 with errno set. */
static int64_t
scan_file(int dfd, const char *name, size_t off, journal_replay_fn fn,
    void *arg)
{
	struct stat	 sb;
	void		*map;
	uint64_t	 found = 0;
	int		 fd;

	if ((fd = openat(dfd, name, O_RDONLY|O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &sb) == -1) {
		close(fd);
		return -1;
	}
	if (sb.st_size > 0 && (size_t)sb.st_size > off) {
		map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE,
		    fd, 0);
		if (map == MAP_FAILED) {
			close(fd);
			return -1;
		}
		madvise(map, (size_t)sb.st_size, MADV_SEQUENTIAL);
		found = scan_image(map, (size_t)sb.st_size, off, fn, arg);
		munmap(map, (size_t)sb.st_size);
	}
	close(fd);
	return (int64_t)found;
}

/* Scans every *.seg file of the cut-* directories (earlier forced cuts).
 * Returns the records found. */
static uint64_t
scan_cut_dirs(struct journal *j, journal_replay_fn fn, void *arg)
{
	DIR		*d, *sd;
	struct dirent	*de, *se;
	uint64_t	 found = 0;
	int64_t		 n;
	int		 fd, sfd;
	size_t		 len;

	if ((fd = dup(j->dirfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, JOURNAL_CUT_PREFIX,
		    strlen(JOURNAL_CUT_PREFIX)) != 0)
			continue;
		if ((sfd = openat(j->dirfd, de->d_name,
		    O_RDONLY|O_DIRECTORY|O_CLOEXEC)) == -1)
			continue;
		if ((sd = fdopendir(sfd)) == NULL) {
			close(sfd);
			continue;
		}
		while ((se = readdir(sd)) != NULL) {
			len = strlen(se->d_name);
			if (len < 4 || strcmp(se->d_name + len - 4, ".seg") != 0)
				continue;
			if ((n = scan_file(sfd, se->d_name, 0, fn, arg)) > 0)
				found += (uint64_t)n;
		}
		closedir(sd);
	}
	closedir(d);
	return found;
}

/*
 * Shows opts->cutoff_fn what the replay did not apply: with a forced cut,
 * the rest of the cut segment and every segment after the cut; and, at
 * every open, the segments kept from earlier cuts.  Returns 0, or -1 with
 * a message in err when a cut-off segment cannot be read (starting would
 * risk handing out its ids again).
 */
static int
journal_scan_cutoff(struct journal *j, struct seglist *sl, struct plan *pl,
    journal_replay_fn fn, void *arg, char *err, size_t errlen)
{
	char		name[SEG_NAMELEN];
	uint64_t	found;
	int64_t		n;
	size_t		i;

	if (fn == NULL)
		return 0;
	found = scan_cut_dirs(j, fn, arg);
	if (pl->forced) {
		i = pl->cut ? pl->keep - 1 : pl->keep;
		for (; i < sl->n; i++) {
			seg_name(name, sl->seq[i], 0);
			n = scan_file(j->dirfd, name, pl->cut && i ==
			    pl->keep - 1 ? (size_t)pl->cut_len : 0, fn, arg);
			if (n == -1) {
				jerr(err, errlen, "journal: %s/%s: %s (it is "
				    "cut off, but the ids it holds must not "
				    "be reused)", j->dir, name, strerror(errno));
				return -1;
			}
			found += (uint64_t)n;
		}
	}
	if (found > 0)
		jreport(j, "journal %s: %llu records not replayed (cut off) "
		    "were read for the ids they name", j->dir,
		    (unsigned long long)found);
	return 0;
}

/*
 * Makes the directory a forced cut moves files to: cut-TIME, or cut-TIME-N
 * when that exists.  Returns its descriptor with its name in dname, or -1
 * with errno set.
 */
static int
cut_dir_make(struct journal *j, char *dname, size_t len)
{
	struct tm	tm;
	time_t		t = time(NULL);
	char		base[48];
	int		k, fd;

	gmtime_r(&t, &tm);
	strftime(base, sizeof base, JOURNAL_CUT_PREFIX "%Y%m%dT%H%M%SZ", &tm);
	for (k = 1;; k++) {
		if (k == 1)
			snprintf(dname, len, "%s", base);
		else
			snprintf(dname, len, "%s-%d", base, k);
		if (mkdirat(j->dirfd, dname, 0700) == 0)
			break;
		if (errno != EEXIST || k == 1000)
			return -1;
	}
	if ((fd = openat(j->dirfd, dname, O_RDONLY|O_DIRECTORY|O_CLOEXEC)) == -1)
		return -1;
	if (jdirsync(j) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Copies segment file name into directory to, durably.  Returns 0, or -1
 * with errno set. */
static int
copy_seg(struct journal *j, int to, const char *name)
{
	static char	buf[1 << 16];
	ssize_t		n;
	int		in, out, save;

	if ((in = openat(j->dirfd, name, O_RDONLY|O_CLOEXEC)) == -1)
		return -1;
	if ((out = openat(to, name, O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC,
	    0600)) == -1) {
		save = errno;
		close(in);
		errno = save;
		return -1;
	}
	while ((n = read(in, buf, sizeof buf)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || jwrite(j, out, buf, (size_t)n) == -1)
			goto fail;
	}
	if (fsync(out) == -1)
		goto fail;
	close(in);
	close(out);
	return 0;
fail:
	save = errno;
	close(in);
	close(out);
	errno = save;
	return -1;
}

/*
 * Reports corruption found at off in segment file name.  Without force,
 * returns -1 with the message for the operator in err; with force, records
 * the cut and returns 0.
 */
static int
journal_corrupt(struct journal *j, struct plan *pl, const char *name,
    uint64_t off, const char *why, int force, char *err, size_t errlen)
{
	jreport(j, "%s/%s: CORRUPT at offset %llu: %s", j->dir, name,
	    (unsigned long long)off, why);
	if (!force) {
		jerr(err, errlen, "journal: corrupt record in %s/%s at offset "
		    "%llu (%s); start with --force to cut the journal there, "
		    "losing everything after it", j->dir, name,
		    (unsigned long long)off, why);
		return -1;
	}
	pl->forced = 1;
	j->st.corrupt_at = off;
	if (j->readonly)
		jreport(j, "%s/%s: --force would cut the journal at offset "
		    "%llu", j->dir, name, (unsigned long long)off);
	else
		log_warn("journal: CORRUPT record in %s/%s at offset %llu "
		    "(%s): --force given, cutting the journal there; "
		    "everything after it is LOST", j->dir, name,
		    (unsigned long long)off, why);
	return 0;
}

/*
 * Replays segments [pl->start, sl->n) through fn and decides what to keep
 * (pl->keep, pl->cut).  Changes nothing on disk.  Returns 0, or -1 with a
 * message in err: corruption without force, a read error, fn failing.
 */
static int
journal_replay(struct journal *j, struct seglist *sl, struct plan *pl,
    int force, journal_replay_fn fn, void *arg, char *err, size_t errlen)
{
	struct stat	 sb;
	const uint8_t	*p;
	void		*map;
	char		 name[SEG_NAMELEN], why[160], why2[200];
	uint32_t	 flags;
	uint64_t	 nrec;
	size_t		 i, size, end = 0;
	int		 fd, r, last, follows = 0;

	pl->keep = pl->start;
	for (i = pl->start; i < sl->n; i++) {
		seg_name(name, sl->seq[i], 0);
		last = (i == sl->n - 1);
		if (i > pl->start && sl->seq[i] != sl->seq[i - 1] + 1) {
			snprintf(why, sizeof why, "segment %016llx is missing",
			    (unsigned long long)sl->seq[i - 1] + 1);
			if (journal_corrupt(j, pl, name, 0, why, force, err,
			    errlen) == -1)
				return -1;
			break;
		}

		if ((fd = openat(j->dirfd, name, O_RDONLY|O_CLOEXEC)) == -1 ||
		    fstat(fd, &sb) == -1) {
			jerr(err, errlen, "journal: %s/%s: %s", j->dir, name,
			    strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		size = (size_t)sb.st_size;
		map = NULL;
		if (size > 0) {
			map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (map == MAP_FAILED) {
				jerr(err, errlen, "journal: mmap %s/%s: %s",
				    j->dir, name, strerror(errno));
				close(fd);
				return -1;
			}
			madvise(map, size, MADV_SEQUENTIAL);
		}
		close(fd);
		p = map;

		r = seghdr_check(p, size, sl->seq[i], &flags, why, sizeof why);
		if (r == -2) {
			jerr(err, errlen, "journal: %s/%s: %s", j->dir, name,
			    why);
			goto fail;
		}
		if (r == -1) {
			if (map != NULL)
				munmap(map, size);
			if (journal_corrupt(j, pl, name, 0, why, force, err,
			    errlen) == -1)
				return -1;
			break;
		}

		nrec = 0;
		r = seg_replay(p, size, fn, arg, &end, &nrec, why, sizeof why);
		j->st.records += nrec;
		if (r == -1) {
			jerr(err, errlen, "journal: replay failed at the record "
			    "in %s/%s at offset %zu (type %u)", j->dir, name,
			    end, p[end + 8]);
			goto fail;
		}
		if (r == 1)
			follows = !last || frame_follows(p, size, end);
		if (map != NULL)
			munmap(map, size);

		pl->keep = i + 1;
		sl->size[i] = size;
		jreport(j, "%s/%s: %s%llu records, %zu bytes", j->dir, name,
		    (flags & SEG_SNAPSHOT) ? "snapshot, " : "",
		    (unsigned long long)nrec, r == 0 ? size : end);
		if (r == 0)
			continue;

		pl->cut = 1;
		pl->cut_len = end;
		sl->size[i] = end;
		if (!follows) {
			j->st.torn_bytes = size - end;
			jreport(j, "%s/%s: torn tail: %zu bytes at offset %zu "
			    "(%s)%s", j->dir, name, size - end, end, why,
			    j->readonly ? ", would be cut" : ", cut");
			break;
		}
		snprintf(why2, sizeof why2, "%s; %s", why, last ?
		    "a good record follows it" : "later segments follow it");
		if (journal_corrupt(j, pl, name, end, why2, force, err,
		    errlen) == -1)
			return -1;
		break;
	}
	return 0;

fail:
	if (map != NULL)
		munmap(map, size);
	return -1;
}

/*
 * Carries out the plan: removes the segments after a forced cut (newest
 * first, so a crash leaves a contiguous run), cuts the last kept segment,
 * removes obsolete segments and temporary files.  Returns 0, or -1 with a
 * message in err.
 */
static int
journal_apply(struct journal *j, struct seglist *sl, struct plan *pl,
    char *err, size_t errlen)
{
	char	name[SEG_NAMELEN], dname[64];
	size_t	i;
	int	fd, aside = -1, changed = 0;

	/* A forced cut moves what it leaves out aside, the cut segment's
	 * whole first (as a copy, since its start stays in use). */
	if (pl->forced) {
		if ((aside = cut_dir_make(j, dname, sizeof dname)) == -1) {
			jerr(err, errlen, "journal: mkdir %s/%s...: %s", j->dir,
			    JOURNAL_CUT_PREFIX, strerror(errno));
			return -1;
		}
		if (pl->cut) {
			seg_name(name, sl->seq[pl->keep - 1], 0);
			if (copy_seg(j, aside, name) == -1) {
				jerr(err, errlen, "journal: copy %s/%s to %s: "
				    "%s", j->dir, name, dname, strerror(errno));
				close(aside);
				return -1;
			}
			log_warn("journal: copied %s/%s as it was to %s/%s/, "
			    "before the forced cut", j->dir, name, j->dir,
			    dname);
		}
	}
	for (i = sl->n; i-- > pl->keep;) {
		seg_name(name, sl->seq[i], 0);
		if (renameat(j->dirfd, name, aside, name) == -1 &&
		    errno != ENOENT) {
			jerr(err, errlen, "journal: move %s/%s to %s: %s",
			    j->dir, name, dname, strerror(errno));
			close(aside);
			return -1;
		}
		log_warn("journal: moved %s/%s to %s/%s/, after the forced cut",
		    j->dir, name, j->dir, dname);
		changed = 1;
	}
	if (aside != -1 && fsync(aside) == -1) {
		jerr(err, errlen, "journal: fsync %s/%s: %s", j->dir, dname,
		    strerror(errno));
		close(aside);
		return -1;
	}
	if (changed && jdirsync(j) == -1) {
		jerr(err, errlen, "journal: fsync %s: %s", j->dir,
		    strerror(errno));
		if (aside != -1)
			close(aside);
		return -1;
	}

	if (pl->cut) {
		seg_name(name, sl->seq[pl->keep - 1], 0);
		if ((fd = openat(j->dirfd, name, O_WRONLY|O_CLOEXEC)) == -1 ||
		    ftruncate(fd, (off_t)pl->cut_len) == -1 ||
		    fsync(fd) == -1) {
			jerr(err, errlen, "journal: cut %s/%s: %s", j->dir,
			    name, strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		close(fd);
		j->st.fsyncs++;
		if (!pl->forced)
			log_warn("journal: torn tail in %s/%s: cut %llu bytes "
			    "at offset %llu", j->dir, name,
			    (unsigned long long)j->st.torn_bytes,
			    (unsigned long long)pl->cut_len);
	}

	/* Obsolete files are harmless: failing to remove them is logged
	 * and retried at the next start. */
	changed = 0;
	for (i = 0; i < pl->start; i++) {
		seg_name(name, sl->seq[i], 0);
		/* After a forced cut even the state before the snapshot may
		 * help the operator: aside too. */
		if (aside != -1 ? renameat(j->dirfd, name, aside, name) == -1 :
		    unlinkat(j->dirfd, name, 0) == -1) {
			if (errno != ENOENT)
				log_warn("journal: remove %s/%s: %s", j->dir,
				    name, strerror(errno));
		}
		changed = 1;
	}
	if (aside != -1) {
		if (pl->start > 0)
			(void)fsync(aside);
		close(aside);
	}
	for (i = 0; i < sl->ntmp; i++) {
		if (unlinkat(j->dirfd, sl->tmp[i], 0) == -1 && errno != ENOENT)
			log_warn("journal: remove %s/%s: %s", j->dir,
			    sl->tmp[i], strerror(errno));
		else
			log_info("journal: removed %s/%s, left by an "
			    "interrupted snapshot or rotation", j->dir,
			    sl->tmp[i]);
		changed = 1;
	}
	if (changed && jdirsync(j) == -1)
		log_warn("journal: fsync %s: %s", j->dir, strerror(errno));
	return 0;
}

/* Takes the journal's lock, trying for up to wait_ms.  Returns 0, or -1
 * with errno set (EWOULDBLOCK: another process holds it). */
static int
journal_lock(struct journal *j, unsigned wait_ms)
{
	struct timespec	ts = { 0, 10 * 1000 * 1000 };
	unsigned	waited = 0;
	int		said = 0;

	while (flock(j->dirfd, LOCK_EX|LOCK_NB) == -1) {
		if ((errno != EWOULDBLOCK && errno != EINTR) ||
		    waited >= wait_ms)
			return -1;
		if (!said++)
			log_info("journal: %s is locked; waiting up to %u ms "
			    "for it", j->dir, wait_ms);
		nanosleep(&ts, NULL);
		waited += 10;
	}
	return 0;
}

struct journal *
journal_open(const struct journal_opts *opts, journal_replay_fn fn,
    void *arg, char *err, size_t errlen)
{
	char			 name[SEG_NAMELEN];
	struct journal	*j;
	struct seglist	 sl;
	struct plan	 pl;
	uint64_t	 seq;
	uint32_t	 flags;
	size_t		 i;

	memset(&sl, 0, sizeof sl);
	memset(&pl, 0, sizeof pl);
	if ((j = calloc(1, sizeof *j)) == NULL) {
		jerr(err, errlen, "journal: %s", strerror(errno));
		return NULL;
	}
	j->dirfd = j->fd = -1;
	j->policy = opts->policy;
	j->seg_max = opts->segment_max ? opts->segment_max :
	    JOURNAL_SEGMENT_MAX;
	j->readonly = opts->readonly;
	j->report = opts->report;
	buf_init(&j->pending);

	if ((j->dir = strdup(opts->dir)) == NULL) {
		jerr(err, errlen, "journal: %s", strerror(errno));
		goto fail;
	}
	if (!j->readonly && mkdir_p(j->dir) == -1) {
		jerr(err, errlen, "journal: mkdir %s: %s", j->dir,
		    strerror(errno));
		goto fail;
	}
	if ((j->dirfd = open(j->dir, O_RDONLY|O_DIRECTORY|O_CLOEXEC)) == -1) {
		jerr(err, errlen, "journal: %s: %s", j->dir, strerror(errno));
		goto fail;
	}
	/* Two brokers appending to one journal would interleave records.
	 * A compaction child holds the lock too (journal_snapshot_start),
	 * and outlives a broker killed with -9 by the moment it takes the
	 * kernel to kill it in turn: a start waits that long. */
	if (!j->readonly && journal_lock(j, opts->lock_wait_ms) == -1) {
		if (errno == EWOULDBLOCK)
			jerr(err, errlen, "journal: %s is in use by another "
			    "simqd", j->dir);
		else
			jerr(err, errlen, "journal: lock %s: %s", j->dir,
			    strerror(errno));
		goto fail;
	}
	if (seglist_read(j, &sl) == -1) {
		jerr(err, errlen, "journal: read %s: %s", j->dir,
		    strerror(errno));
		goto fail;
	}
	if (journal_find_start(j, &sl, &pl.start, err, errlen) == -1)
		goto fail;
	for (i = 0; i < pl.start; i++)
		jreport(j, "%s/%016llx.seg: obsolete, older than the snapshot",
		    j->dir, (unsigned long long)sl.seq[i]);
	for (i = 0; i < sl.ntmp; i++)
		jreport(j, "%s/%s: leftover temporary file, ignored", j->dir,
		    sl.tmp[i]);
	if (journal_replay(j, &sl, &pl, opts->force, fn, arg, err,
	    errlen) == -1)
		goto fail;
	if (journal_scan_cutoff(j, &sl, &pl, opts->cutoff_fn, opts->cutoff_arg,
	    err, errlen) == -1)
		goto fail;

	j->nseg = pl.keep - pl.start;
	if (j->nseg > 0) {
		j->first = j->oldest = sl.seq[pl.start];
		j->seq = sl.seq[pl.keep - 1];
		for (i = pl.start; i < pl.keep - 1; i++)
			j->older += sl.size[i];
		j->size = sl.size[pl.keep - 1];
	}
	jreport(j, "journal %s: %llu segments, %llu records, %llu bytes%s",
	    j->dir, (unsigned long long)j->nseg,
	    (unsigned long long)j->st.records,
	    (unsigned long long)(j->older + j->size),
	    pl.forced ? ", CORRUPT (cut by --force)" :
	    j->st.torn_bytes ? ", torn tail" : ", ok");
	if (j->readonly)
		goto done;

	if (journal_apply(j, &sl, &pl, err, errlen) == -1)
		goto fail;
	/* A last segment that holds nothing but its header (the previous
	 * run appended nothing) takes this run's appends: restarts do not
	 * pile up empty files. */
	if (j->nseg > 0 && j->size == SEGHDR_SIZE) {
		seg_name(name, j->seq, 0);
		if ((j->fd = openat(j->dirfd, name, O_WRONLY|O_CLOEXEC)) != -1 &&
		    lseek(j->fd, 0, SEEK_END) == (off_t)SEGHDR_SIZE)
			goto done;
		if (j->fd != -1)
			close(j->fd);
		j->fd = -1;
	}
	/* An empty journal is a complete snapshot of an empty state. */
	if (j->nseg > 0) {
		seq = j->seq + 1;
		flags = 0;
	} else {
		seq = sl.n > 0 ? sl.seq[sl.n - 1] + 1 : 1;
		flags = SEG_SNAPSHOT;
	}
	if ((j->fd = seg_create(j, seq, flags)) == -1) {
		jerr(err, errlen, "journal: create %s/%016llx.seg: %s", j->dir,
		    (unsigned long long)seq, strerror(errno));
		goto fail;
	}
	if (j->nseg == 0)
		j->first = j->oldest = seq;
	j->older += j->size;
	j->seq = seq;
	j->size = SEGHDR_SIZE;
	j->nseg++;

done:
	seglist_free(&sl);
	return j;

fail:
	seglist_free(&sl);
	if (j->fd != -1)
		close(j->fd);
	if (j->dirfd != -1)
		close(j->dirfd);
	buf_free(&j->pending);
	free(j->dir);
	free(j);
	return NULL;
}

int
journal_close(struct journal *j)
{
	int	rv = 0, save = 0;

	if (j == NULL)
		return 0;
	journal_snapshot_cancel(j);
	if (j->pending.len > 0 && journal_commit(j) == -1) {
		rv = -1;
		save = errno;
	} else if (j->broken) {
		rv = -1;
		save = EIO;
	} else if (j->dirty && jdatasync(j) == -1) {
		rv = -1;
		save = errno;
	}
	if (j->fd != -1)
		close(j->fd);
	if (j->dirfd != -1)
		close(j->dirfd);
	buf_free(&j->pending);
	free(j->dir);
	free(j);
	if (rv == -1)
		errno = save;
	return rv;
}

/* Records of the journal's own types, or too large for any reader to
 * accept, are a bug in the caller: the journal would refuse them later. */
void
journal_append(struct journal *j, uint8_t type, const void *payload,
    size_t len)
{
	if (type < 16 || len >= JOURNAL_RECORD_MAX)
		fatal("journal: bad record appended (type %u, %zu bytes)",
		    type, len);
	frame_put(&j->pending, type, payload, len);
}

size_t
journal_pending(const struct journal *j)
{
	return j->pending.len;
}

/*
 * After a failed write the file may end in part of a frame, so the journal
 * refuses every later write (EIO): the caller exits, and the next start
 * cuts the partial frame as a torn tail.
 */
int
journal_commit(struct journal *j)
{
	if (j->pending.len == 0)
		return 0;
	if (j->readonly) {
		errno = EROFS;
		return -1;
	}
	if (j->broken) {
		errno = EIO;
		return -1;
	}
	if (j->size >= j->seg_max && journal_rotate(j) == -1)
		goto fail;
	if (jwrite(j, j->fd, j->pending.p, j->pending.len) == -1)
		goto fail;
	j->size += j->pending.len;
	j->dirty = 1;
	j->st.commits++;
	if (j->pending.cap > PENDING_KEEP)
		buf_free(&j->pending);
	else
		buf_reset(&j->pending);
	if (j->policy == FSYNC_ALWAYS && jdatasync(j) == -1)
		goto fail;
	return 0;

fail:
	j->broken = 1;
	return -1;
}

int
journal_sync(struct journal *j)
{
	if (j->broken) {
		errno = EIO;
		return -1;
	}
	if (!j->dirty)
		return 0;
	return jdatasync(j);
}

/* Writes the snapshot's buffered records.  Returns 0, or -1 with errno
 * set and the snapshot marked failed. */
static int
snap_flush(struct snapw *w)
{
	if (w->buf.len == 0)
		return 0;
	if (jwrite(w->j, w->fd, w->buf.p, w->buf.len) == -1) {
		w->err = errno;
		return -1;
	}
	/* In a compaction child, each chunk goes to the disk as soon as it
	 * is written, and the one before it must be there first: a final
	 * fsync of the whole snapshot would queue tens of megabytes ahead
	 * of the broker's own fdatasyncs. */
	if (w->trickle) {
		if (w->wb_start < w->size)
			(void)sync_file_range(w->fd, (off64_t)w->wb_start,
			    (off64_t)(w->size - w->wb_start),
			    SYNC_FILE_RANGE_WAIT_BEFORE |
			    SYNC_FILE_RANGE_WRITE |
			    SYNC_FILE_RANGE_WAIT_AFTER);
		(void)sync_file_range(w->fd, (off64_t)w->size,
		    (off64_t)w->buf.len, SYNC_FILE_RANGE_WRITE);
		w->wb_start = w->size;
	}
	w->size += w->buf.len;
	buf_reset(&w->buf);
	return 0;
}

int
journal_snap_append(struct snapw *w, uint8_t type, const void *payload,
    size_t len)
{
	if (w->err) {
		errno = w->err;
		return -1;
	}
	if (type < 16 || len >= JOURNAL_RECORD_MAX) {
		w->err = errno = EINVAL;
		return -1;
	}
	frame_put(&w->buf, type, payload, len);
	if (w->buf.len >= SNAP_CHUNK)
		return snap_flush(w);
	return 0;
}

/*
 * The snapshot becomes the journal's state the moment its rename is on
 * disk (seg_finish): before that a crash leaves a .tmp file that the next
 * start removes, after it the older segments are obsolete and their
 * removal here is only tidying (a crash before it is finished by the next
 * start).
 */
int
journal_snapshot(struct journal *j, journal_snapshot_fn fn, void *arg)
{
	struct snapw	w;
	char		name[SEG_NAMELEN];
	uint64_t	seq, s, first, last;
	int		save;

	if (j->readonly || j->broken || j->snap_pid != 0) {
		errno = j->readonly ? EROFS : j->broken ? EIO : EBUSY;
		return -1;
	}
	if (journal_commit(j) == -1)
		return -1;
	seq = j->seq + 1;
	memset(&w, 0, sizeof w);
	w.j = j;
	w.fd = -1;
	buf_init(&w.buf);
	if ((w.fd = seg_begin(j, seq, SEG_SNAPSHOT)) == -1)
		goto fail;
	w.size = SEGHDR_SIZE;
	errno = 0;
	if (fn(arg, &w) == -1 && w.err == 0)
		w.err = errno ? errno : EIO;
	if (w.err != 0) {
		errno = w.err;
		goto fail;
	}
	if (snap_flush(&w) == -1 || seg_finish(j, seq, w.fd) == -1)
		goto fail;
	buf_free(&w.buf);

	first = j->oldest;
	last = j->seq;
	close(j->fd);
	j->fd = w.fd;
	j->first = j->oldest = j->seq = seq;
	j->nseg = 1;
	j->older = 0;
	j->size = w.size;
	j->dirty = 0;
	j->st.snapshots++;
	for (s = first; s <= last; s++) {
		seg_name(name, s, 0);
		if (unlinkat(j->dirfd, name, 0) == -1 && errno != ENOENT)
			log_warn("journal: remove %s/%s: %s", j->dir, name,
			    strerror(errno));
	}
	return 0;

fail:
	save = errno;
	log_warn("journal: snapshot %s/%016llx.seg failed: %s", j->dir,
	    (unsigned long long)seq, strerror(save));
	if (w.fd != -1)
		seg_abort(j, seq, w.fd);
	buf_free(&w.buf);
	errno = save;
	return -1;
}

/*
 * Compaction in a child.  The switch-over is the rename of the child's
 * SEQ.seg.tmp over the placeholder SEQ.seg, an empty segment made for it
 * with the segment after it, SEQ+1, which takes the broker's appends from
 * the fork on.  The snapshot describes the state the records up to
 * segment SEQ-1 made, so either the placeholder or the snapshot sits
 * between those and SEQ+1, and a crash at any moment leaves one of two
 * journals: the old snapshot, every segment after it, the empty
 * placeholder and SEQ+1 onwards; or the new snapshot and SEQ+1 onwards
 * (and obsolete segments before it, which the next start removes).  A
 * leftover SEQ.seg.tmp is removed at the next start.
 *
 * The child's exit status says how far it got: 0, the snapshot is in
 * place and durable (the older segments removed, or they are obsolete);
 * SNAP_EXIT_UNSYNCED, it is in place but the directory's fsync failed;
 * otherwise an errno value, and it removed its temporary file.
 */
#define SNAP_EXIT_UNSYNCED	255

/* Writes the snapshot, switches over and removes the older segments;
 * in the child, whose memory is the parent's at the fork. */
static void __attribute__((noreturn))
snap_child(struct journal *j, struct snapw *w, journal_snapshot_fn fn,
    void *arg, uint64_t seq, pid_t parent, unsigned delay_ms)
{
	struct timespec	ts;
	char		tmp[SEG_NAMELEN], name[SEG_NAMELEN];
	uint64_t	s;
	int		e, lo, hi;

	/* Dies with the broker: no snapshot is switched in behind a
	 * broker that was restarted meanwhile, and the journal's lock
	 * (j->dirfd), which this process shares, is let go. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(ESRCH);
	(void)prctl(PR_SET_NAME, "simqd-snapshot");
	/* Background work: on a busy machine the broker's loop comes
	 * first. */
	(void)setpriority(PRIO_PROCESS, 0, 10);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	/* Nothing of the broker's but the directory and the new file:
	 * a listener held here would keep a restarted broker from
	 * listening. */
	lo = w->fd < j->dirfd ? w->fd : j->dirfd;
	hi = w->fd < j->dirfd ? j->dirfd : w->fd;
	(void)close_range(3, (unsigned)lo - 1, 0);
	(void)close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	(void)close_range((unsigned)hi + 1, ~0U, 0);

	seg_name(tmp, seq, 1);
	seg_name(name, seq, 0);
	w->trickle = 1;
	errno = 0;
	if (fn(arg, w) == -1 && w->err == 0)
		w->err = errno ? errno : EIO;
	if (w->err == 0)
		(void)snap_flush(w);
	/* The test hook (simqd --compact-child-delay): half the delay
	 * before the switch-over, half after it. */
	ts.tv_sec = delay_ms / 2000;
	ts.tv_nsec = (long)(delay_ms / 2 % 1000) * 1000000;
	if (delay_ms)
		nanosleep(&ts, NULL);
	if (w->err == 0 && fsync(w->fd) == -1)
		w->err = errno;
	if (w->err == 0 && renameat(j->dirfd, tmp, j->dirfd, name) == -1)
		w->err = errno;
	if (w->err != 0) {
		e = w->err;
		unlinkat(j->dirfd, tmp, 0);
		_exit(e > 0 && e < SNAP_EXIT_UNSYNCED ? e : EIO);
	}
	if (fsync(j->dirfd) == -1)
		_exit(SNAP_EXIT_UNSYNCED);
	if (delay_ms)
		nanosleep(&ts, NULL);
	/* Obsolete now: removing them is tidying, which the next start or
	 * compaction finishes if this does not. */
	for (s = j->oldest; s < seq; s++) {
		seg_name(name, s, 0);
		if (unlinkat(j->dirfd, name, 0) == -1 && errno != ENOENT)
			log_warn("journal: remove %s/%s: %s", j->dir, name,
			    strerror(errno));
	}
	_exit(0);
}

pid_t
journal_snapshot_start(struct journal *j, journal_snapshot_fn fn, void *arg,
    unsigned delay_ms)
{
	struct snapw	w;
	uint64_t	seq;
	pid_t		pid, self = getpid();

	if (j->readonly || j->broken || j->snap_pid != 0) {
		errno = j->readonly ? EROFS : j->broken ? EIO : EBUSY;
		return -1;
	}
	/* Everything the state holds is written before the fork, and only
	 * what is appended after it goes to the new segment.  Two
	 * rotations make the placeholder and that segment; a failure of
	 * the second leaves the placeholder as an ordinary segment. */
	if (journal_commit(j) == -1 || journal_rotate(j) == -1 ||
	    journal_rotate(j) == -1)
		return -1;
	seq = j->seq - 1;
	memset(&w, 0, sizeof w);
	w.j = j;
	buf_init(&w.buf);
	if ((w.fd = seg_begin(j, seq, SEG_SNAPSHOT)) == -1)
		return -1;
	w.size = SEGHDR_SIZE;
	if ((pid = fork()) == -1) {
		seg_abort(j, seq, w.fd);
		return -1;
	}
	if (pid == 0)
		snap_child(j, &w, fn, arg, seq, self, delay_ms);
	close(w.fd);
	j->snap_pid = pid;
	j->snap_seq = seq;
	j->snap_older = j->older;
	return pid;
}

pid_t
journal_snapshot_child(const struct journal *j)
{
	return j->snap_pid;
}

/*
 * The child has exited with status: takes its snapshot into the
 * accounts, or tidies up after it.  Returns 0, or -1 with errno set (the
 * child's error; EINTR when it was killed; EIO with the journal broken
 * when the switch-over could not be made durable).
 */
static int
snap_end(struct journal *j, int status, uint64_t *bytes)
{
	struct stat	sb;
	char		tmp[SEG_NAMELEN], name[SEG_NAMELEN];
	int		code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

	j->snap_pid = 0;
	seg_name(tmp, j->snap_seq, 1);
	seg_name(name, j->snap_seq, 0);
	if (code == SNAP_EXIT_UNSYNCED) {
		/* Either journal is whole, but which one a crash leaves is
		 * unknown: as after any failed fsync, no more writes. */
		j->broken = 1;
		errno = EIO;
		return -1;
	}
	if (code > 0) {
		errno = code;
		return -1;
	}
	if (code == -1) {
		/* Killed: before its switch-over if its file is still
		 * there. */
		if (fstatat(j->dirfd, tmp, &sb, 0) == 0 || errno != ENOENT) {
			unlinkat(j->dirfd, tmp, 0);
			errno = EINTR;
			return -1;
		}
	} else
		j->oldest = j->snap_seq;
	if (fstatat(j->dirfd, name, &sb, 0) == -1)
		sb.st_size = SEGHDR_SIZE;
	j->older = j->older - j->snap_older + (uint64_t)sb.st_size;
	j->first = j->snap_seq;
	j->nseg = j->seq - j->first + 1;
	j->st.snapshots++;
	*bytes = (uint64_t)sb.st_size;
	return 0;
}

int
journal_snapshot_poll(struct journal *j, uint64_t *bytes)
{
	pid_t	r;
	int	status;

	if (j->snap_pid == 0) {
		errno = ECHILD;
		return -1;
	}
	while ((r = waitpid(j->snap_pid, &status, WNOHANG)) == -1 &&
	    errno == EINTR)
		;
	if (r == 0)
		return 1;
	if (r == -1) {
		/* Not this process's child any more: as if killed. */
		status = SIGKILL;
	}
	return snap_end(j, status, bytes);
}

void
journal_snapshot_cancel(struct journal *j)
{
	uint64_t	bytes;
	int		status = SIGKILL;	/* if it cannot be waited for */
	pid_t		r;

	if (j->snap_pid == 0)
		return;
	kill(j->snap_pid, SIGKILL);
	while ((r = waitpid(j->snap_pid, &status, 0)) == -1 && errno == EINTR)
		;
	if (r == -1)
		status = SIGKILL;
	(void)snap_end(j, status, &bytes);
}

void
journal_stats(const struct journal *j, struct journal_stats *st)
{
	*st = j->st;
	st->segments = j->nseg;
	st->bytes = j->nseg > 0 ? j->older + j->size : 0;
}

void
journal_fail_after(struct journal *j, uint64_t bytes)
{
	j->fail_armed = bytes > 0;
	j->fail_left = bytes;
}
