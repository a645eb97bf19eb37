/*
 * blob.c: the blob store, HAVE, PUT and GET.
 *
 * Files that travel with jobs are kept in DATADIR/blobs, named by the
 * SHA-256 of their bytes:
 *
 *   blobs/ab/abcdef...        complete blobs (64 hex digits), each checked
 *                             against its name and durable before the PUT
 *                             that completed it was answered
 *   blobs/tmp/abcdef....part  uploads in progress (removed at start-up)
 *   blobs/corrupt/abcdef...   blobs found damaged while served
 *
 * An upload belongs to its blob, not to a connection, so one cut with its
 * connection resumes on another (HAVE says how much is held); its digest
 * state goes along.  A PUT's body is written as it comes, in the pieces
 * net.c reads (the chunk is never held whole), and its pages handed to
 * the kernel's writeback every FLUSH_STEP bytes, so that the fdatasync
 * that makes the last chunk durable has little left to write and the
 * loop never waits for a whole file.  A GET's reply is the one chunk the
 * broker holds for a connection.
 *
 * Blob I/O never makes the broker exit (the journal's does): a failed
 * write removes the partial upload and answers with an error.
 *
 * What names a blob is counted in blobref.c; here a periodic sweep
 * removes the blobs no kept job has named for --blob-grace, once the
 * records that let go of them are committed, and the uploads left idle
 * as long.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "json.h"
#include "log.h"
#include "sha256.h"

/* Writeback is started every FLUSH_STEP bytes of an upload, after
 * waiting for the step before it: at most two steps are dirty. */
#define FLUSH_STEP	(8u << 20)

/* The send buffer of a connection that GETs (the kernel doubles it). */
#define GET_SNDBUF	(1 << 20)

/* A resumed GET hashes the bytes before its offset in reads this big,
 * one a request or a loop pass: about a millisecond. */
#define HASH_READ	(1u << 20)

struct upload {
	int		 fd;		/* open while a PUT writes, else -1 */
	uint64_t	 size;
	uint64_t	 held;
	uint64_t	 flushed;	/* writeback started up to here */
	uint64_t	 last;		/* the last PUT */
	struct conn	*writer;	/* a PUT of it is running */
	struct sha256	 sha;
};

/* A connection's GET of one blob: how far it has been hashed. */
struct blobget {
	uint8_t		 hash[SIMQ_HASH_LEN];
	uint64_t	 pos;		/* bytes hashed, from 0 */
	uint64_t	 off, max;	/* a parked GET (the last chunk) */
	struct sha256	 sha;
};

static char		*blobdir;	/* DATADIR/blobs */
static uint32_t		 nfds;		/* uploads' files open (BLOB_FDS_MAX) */
static uint64_t		 used, reserved, nstored;
static struct event	*sweep_ev;

static void
blob_path(char *p, size_t len, const uint8_t *h)
{
	char	hex[SIMQ_HASH_HEX + 1];

	proto_format_hash(hex, h);
	snprintf(p, len, "%s/%.2s/%s", blobdir, hex, hex);
}

static void
part_path(char *p, size_t len, const uint8_t *h)
{
	char	hex[SIMQ_HASH_HEX + 1];

	proto_format_hash(hex, h);
	snprintf(p, len, "%s/tmp/%s.part", blobdir, hex);
}

static int
fsync_dir(const char *path)
{
	int	fd, rc;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

void
blob_stats(uint64_t *n, uint64_t *u, uint64_t *r)
{
	*n = nstored;
	*u = used;
	*r = reserved;
}

/*
 * The start-up scan: uploads in progress are removed (a restart ends
 * them; the sender resumes from HAVE's 0), every complete blob is
 * counted, and one no kept job names starts its grace from its file's
 * time.  A blob a kept job names that is not on disk is logged: the
 * jobs that need it fail on their worker, saying so.
 */
static void
scan_tmp(void)
{
	char		 path[4096];
	struct dirent	*de;
	DIR		*d;
	int		 n = 0;

	snprintf(path, sizeof path, "%s/tmp", blobdir);
	if ((d = opendir(path)) == NULL)
		fatal("%s: %s", path, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/tmp/%s", blobdir, de->d_name);
		if (unlink(path) < 0)
			log_warn("%s: %s", path, strerror(errno));
		else
			n++;
	}
	closedir(d);
	if (n > 0)
		log_info("blobs: removed %d upload%s left unfinished", n,
		    n == 1 ? "" : "s");
}

static void
scan_dir(const char *sub)
{
	char		 path[4096];
	struct dirent	*de;
	struct stat	 st;
	struct blob	*b;
	uint8_t		 h[SIMQ_HASH_LEN];
	DIR		*d;

	snprintf(path, sizeof path, "%s/%s", blobdir, sub);
	if ((d = opendir(path)) == NULL) {
		log_warn("%s: %s", path, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/%s", blobdir, sub,
		    de->d_name);
		if (proto_parse_hash(de->d_name, strlen(de->d_name), h) != 0 ||
		    memcmp(de->d_name, sub, 2) != 0 || stat(path, &st) < 0 ||
		    !S_ISREG(st.st_mode)) {
			log_warn("blobs: %s is not a blob; left alone", path);
			continue;
		}
		b = blob_get(h);
		b->stored = 1;
		b->size = (uint64_t)st.st_size;
		used += b->size;
		nstored++;
		if (b->refs == 0) {
			b->idle_since = (uint64_t)st.st_mtim.tv_sec * 1000 +
			    (uint64_t)st.st_mtim.tv_nsec / 1000000;
			b->idle_pass = 0;
		}
	}
	closedir(d);
}

static void
report_missing(struct blob *b, void *arg)
{
	char	hex[SIMQ_HASH_HEX + 1];
	int	*n = arg;

	if (b->stored || b->refs == 0)
		return;
	proto_format_hash(hex, b->hash);
	if ((*n)++ < 20)
		log_warn("blobs: blob %s (%" PRIu64 " bytes), named by kept "
		    "jobs, is MISSING from %s: the jobs that need it will "
		    "fail; send it again (simq submit --file) to heal it",
		    hex, b->size, blobdir);
}

static void	sweep_cb(evutil_socket_t, short, void *);

void
blob_start(void)
{
	char		 path[4096];
	struct dirent	*de;
	struct timeval	 tv;
	DIR		*d;
	uint64_t	 v;
	int		 missing = 0;

	snprintf(path, sizeof path, "%s/blobs", B->cfg.datadir);
	blobdir = xstrdup(path);
	if (mkdir(blobdir, 0755) < 0 && errno != EEXIST)
		fatal("%s: %s", blobdir, strerror(errno));
	snprintf(path, sizeof path, "%s/tmp", blobdir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		fatal("%s: %s", path, strerror(errno));
	scan_tmp();
	if ((d = opendir(blobdir)) == NULL)
		fatal("%s: %s", blobdir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) == 2 &&
		    strspn(de->d_name, "0123456789abcdef") == 2)
			scan_dir(de->d_name);
	}
	closedir(d);
	blob_foreach(report_missing, &missing);
	if (missing > 20)
		log_warn("blobs: %d blobs named by kept jobs are missing",
		    missing);
	log_info("blobs: %" PRIu64 " stored, %" PRIu64 " bytes%s", nstored,
	    used, missing ? "; some are MISSING (above)" : "");

	/* Sweep a few times per grace, at least every minute. */
	v = B->cfg.blob_grace_ms / 4;
	v = v < 100 ? 100 : v > 60000 ? 60000 : v;
	tv.tv_sec = (time_t)(v / 1000);
	tv.tv_usec = (suseconds_t)(v % 1000) * 1000;
	if ((sweep_ev = event_new(B->base, -1, EV_PERSIST, sweep_cb,
	    NULL)) == NULL)
		fatal("event_new failed");
	event_add(sweep_ev, &tv);
}

void
blob_passed(void)
{
	blob_passes++;
}

/*
 * Uploads.
 */

/* An upload's file is open only while a PUT writes it, so that files
 * open for blobs stay within the descriptors net.c keeps back for them
 * (BLOB_FDS_MAX) however many uploads are in progress.  A GET opens its
 * blob for the request only. */
static void
upload_close(struct upload *up)
{
	if (up->fd < 0)
		return;
	close(up->fd);
	up->fd = -1;
	nfds--;
}

/* How many uploads may have their file open: BLOB_FDS_MAX, which net.c
 * keeps back from connections; with a descriptor limit so low that
 * net.c gives connections half of it instead, what the journal's 32
 * leave of the other half. */
static uint32_t
fds_cap(void)
{
	static uint32_t	 cap;
	struct rlimit	 rl;

	if (cap == 0) {
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0 ||
		    rl.rlim_cur == RLIM_INFINITY ||
		    rl.rlim_cur > 2 * (32 + BLOB_FDS_MAX))
			cap = BLOB_FDS_MAX;
		else if (rl.rlim_cur / 2 > 40)
			cap = (uint32_t)rl.rlim_cur / 2 - 32;
		else
			cap = 4;
	}
	return cap;
}

/* Ends an upload that will not complete: its partial file goes. */
static void
upload_abort(struct blob *b)
{
	struct upload	*up = b->up;
	char		 path[4096];

	part_path(path, sizeof path, b->hash);
	upload_close(up);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("%s: %s", path, strerror(errno));
	sha256_abandon(&up->sha);
	reserved -= up->size;
	free(up);
	b->up = NULL;
	blob_gc(b);
}

/* The answer to a failed write or sync of an upload: ENOSPC and EDQUOT
 * are the store being full; the upload is removed either way. */
static void
upload_failed(struct conn *c, struct blob *b, const char *what, int err)
{
	char	hex[SIMQ_HASH_HEX + 1];

	proto_format_hash(hex, b->hash);
	log_warn("blobs: upload of %s: %s: %s; removed", hex, what,
	    strerror(err));
	upload_abort(b);
	if (err == ENOSPC || err == EDQUOT)
		conn_error(c, PERR_LIMIT, "no space left for blobs (blob %s "
		    "not stored; nothing of it kept)", hex);
	else
		conn_error(c, PERR_SERVER, "blob %s: %s: %s (nothing of it "
		    "kept)", hex, what, strerror(err));
}

static int
write_all(int fd, const char *p, size_t n, uint64_t off)
{
	ssize_t	 w;

	while (n > 0) {
		if ((w = pwrite(fd, p, n, (off_t)off)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Hands what was written to the kernel's writeback, waiting first for
 * the step before, so the final fdatasync is short. */
static void
upload_flush(struct upload *up)
{
	if (up->held - up->flushed < FLUSH_STEP)
		return;
	if (up->flushed > 0)
		sync_file_range(up->fd, 0, (off_t)up->flushed,
		    SYNC_FILE_RANGE_WAIT_BEFORE);
	sync_file_range(up->fd, (off_t)up->flushed,
	    (off_t)(up->held - up->flushed), SYNC_FILE_RANGE_WRITE);
	up->flushed = up->held;
}

/* The last chunk is in: check, make durable, rename into place. */
static void
upload_complete(struct conn *c, struct blob *b)
{
	struct upload	*up = b->up;
	uint8_t		 got[SIMQ_HASH_LEN];
	char		 hex[SIMQ_HASH_HEX + 1], ghex[SIMQ_HASH_HEX + 1];
	char		 part[4096], path[4096], dir[4096];
	int		 newdir = 0;

	sha256_final(&up->sha, got);
	sha256_init(&up->sha);		/* upload_abort abandons one */
	proto_format_hash(hex, b->hash);
	if (memcmp(got, b->hash, SIMQ_HASH_LEN) != 0) {
		proto_format_hash(ghex, got);
		log_info("blobs: upload of %s: its %" PRIu64 " bytes hash to "
		    "%s; removed", hex, up->size, ghex);
		conn_error(c, PERR_BODY, "hash mismatch: the %" PRIu64
		    " bytes sent hash to %s, not %s; nothing kept", up->size,
		    ghex, hex);
		upload_abort(b);
		return;
	}
	if (fdatasync(up->fd) < 0) {
		upload_failed(c, b, "fdatasync", errno);
		return;
	}
	snprintf(dir, sizeof dir, "%s/%.2s", blobdir, hex);
	if (mkdir(dir, 0755) == 0)
		newdir = 1;
	else if (errno != EEXIST) {
		upload_failed(c, b, dir, errno);
		return;
	}
	part_path(part, sizeof part, b->hash);
	blob_path(path, sizeof path, b->hash);
	if (rename(part, path) < 0) {
		upload_failed(c, b, "rename", errno);
		return;
	}
	if (fsync_dir(dir) < 0 || (newdir && fsync_dir(blobdir) < 0)) {
		int err = errno;
		unlink(path);
		upload_failed(c, b, "fsync of its directory", err);
		return;
	}
	sha256_abandon(&up->sha);
	upload_close(up);
	reserved -= up->size;
	used += up->size;
	nstored++;
	b->size = up->size;
	b->stored = 1;
	free(up);
	b->up = NULL;
	if (b->refs == 0) {
		b->idle_since = B->now;
		b->idle_pass = blob_passes;
	}
	log_debug("blobs: stored %s (%" PRIu64 " bytes)", hex, b->size);
	conn_reply(c, "OK stored");
}

static int
arg_hash(struct conn *c, const struct proto_word *w, uint8_t *h)
{
	if (proto_parse_hash(w->p, w->len, h) == 0)
		return 0;
	conn_error(c, PERR_BADREQ, "'%.*s' is not a blob's hash (64 "
	    "lower-case hex digits)", (int)(w->len > 70 ? 70 : w->len), w->p);
	return -1;
}

void
h_have(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	static uint8_t	 h[SIMQ_FILES_MAX][SIMQ_HASH_LEN];
	struct evbuffer	*o;
	struct blob	*b;
	int		 i;

	for (i = 0; i < r->nargs; i++)
		if (arg_hash(c, &r->args[i], h[i]) < 0)
			return;
	o = conn_outbuf(c);
	evbuffer_add(o, "OK", 2);
	for (i = 0; i < r->nargs; i++) {
		b = blob_find(h[i]);
		if (b != NULL && b->stored)
			evbuffer_add(o, " yes", 4);
		else
			evbuffer_add_printf(o, " %" PRIu64,
			    b != NULL && b->up != NULL ? b->up->held : 0);
	}
	evbuffer_add(o, "\r\n", 2);
	conn_reply_done(c);
}

/*
 * A PUT runs as its body arrives (net.c hands it over in the pieces it
 * reads, never buffering the chunk): blob_put_begin checks the line,
 * blob_put_data writes and hashes each piece, blob_put_end replies once
 * the body and its terminator are in.  A PUT refused at its line still
 * has its body read (and dropped), and is answered after it, so replies
 * stay one per request, in order.  One connection at a time writes an
 * upload: a second PUT of it meanwhile is refused.
 */
struct blobput {
	struct blob	*b;		/* NULL when refused */
	uint64_t	 size;
	enum proto_err	 err;		/* the reply, when refused */
	char		 msg[256];
};

static void putmsg(struct blobput *, enum proto_err, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
putmsg(struct blobput *p, enum proto_err e, const char *fmt, ...)
{
	va_list	ap;

	if (p->err != PERR_NONE)
		return;		/* the first error is the one said */
	p->err = e;
	p->b = NULL;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof p->msg, fmt, ap);
	va_end(ap);
}

/* Ends an upload that failed while written: the partial goes, and the
 * PUT says why (ENOSPC and EDQUOT are the store being full). */
static void
put_failed(struct blobput *p, struct blob *b, const char *what, int err)
{
	char	hex[SIMQ_HASH_HEX + 1];

	proto_format_hash(hex, b->hash);
	log_warn("blobs: upload of %s: %s: %s; removed", hex, what,
	    strerror(err));
	if (b->up != NULL)
		upload_abort(b);
	if (err == ENOSPC || err == EDQUOT)
		putmsg(p, PERR_LIMIT, "no space left for blobs (blob %s not "
		    "stored; nothing of it kept)", hex);
	else
		putmsg(p, PERR_SERVER, "blob %s: %s: %s (nothing of it kept)",
		    hex, what, strerror(err));
}

void
blob_put_begin(struct conn *c, struct proto_req *r)
{
	struct blobput	*p = xcalloc(1, sizeof *p);
	uint8_t		 h[SIMQ_HASH_LEN];
	uint64_t	 size, off, blen = r->bodylen;
	struct blob	*b;
	struct upload	*up;
	char		 path[4096], hex[SIMQ_HASH_HEX + 1];
	int		 fd;

	c->put = p;
	if (B->cfg.token != NULL && !c->authed) {
		putmsg(p, PERR_AUTH, "send HELLO %d TOKEN first",
		    SIMQ_PROTO_VERSION);
		return;
	}
	if (proto_parse_hash(r->args[0].p, r->args[0].len, h) != 0) {
		putmsg(p, PERR_BADREQ, "'%.*s' is not a blob's hash (64 "
		    "lower-case hex digits)", (int)(r->args[0].len > 70 ? 70 :
		    r->args[0].len), r->args[0].p);
		return;
	}
	proto_format_hash(hex, h);
	if (arg_u64(&r->args[1], SIMQ_BLOB_SIZE_MAX, &size) < 0 ||
	    arg_u64(&r->args[2], SIMQ_BLOB_SIZE_MAX, &off) < 0) {
		putmsg(p, PERR_BADREQ, "SIZE and OFFSET are numbers of bytes; "
		    "usage: %s", proto_cmd_info(CMD_PUT)->usage);
		return;
	}
	b = blob_find(h);
	if (b != NULL && b->stored) {
		if (b->size != size)
			putmsg(p, PERR_BADREQ, "blob %s holds %" PRIu64
			    " bytes, not %" PRIu64, hex, b->size, size);
		return;		/* p->b NULL, no error: OK stored */
	}
	up = b != NULL ? b->up : NULL;
	if (up != NULL && up->size != size) {
		putmsg(p, PERR_BADREQ, "the upload of %s in progress is of %"
		    PRIu64 " bytes, not %" PRIu64 "; held %" PRIu64, hex,
		    up->size, size, up->held);
		return;
	}
	if (up != NULL && up->writer != NULL) {
		putmsg(p, PERR_STATE, "blob %s is being uploaded on another "
		    "connection; held %" PRIu64, hex, up->held);
		return;
	}
	if (off != (up != NULL ? up->held : 0)) {
		putmsg(p, PERR_BADREQ, "offset %" PRIu64 " is not where the "
		    "upload of %s stands; held %" PRIu64, off, hex,
		    up != NULL ? up->held : 0);
		return;
	}
	if (blen > size - off) {
		putmsg(p, PERR_BADREQ, "%" PRIu64 " bytes at offset %" PRIu64
		    " pass the blob's size %" PRIu64 "; held %" PRIu64, blen,
		    off, size, off);
		return;
	}
	if (nfds >= fds_cap()) {
		putmsg(p, PERR_LIMIT, "%u uploads are being written at once, "
		    "the most the broker allows; try again shortly (held %"
		    PRIu64 ")", fds_cap(), up != NULL ? up->held : 0);
		return;
	}
	if (up == NULL) {
		if (B->cfg.blob_max && (size > B->cfg.blob_max ||
		    used + reserved > B->cfg.blob_max - size)) {
			putmsg(p, PERR_LIMIT, "blob store full (%" PRIu64
			    " of %" PRIu64 " bytes used; this blob needs %"
			    PRIu64 "; simqd --blob-max)", used + reserved,
			    B->cfg.blob_max, size);
			return;
		}
		part_path(path, sizeof path, h);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0644)) < 0) {
			int err = errno;
			log_warn("blobs: %s: %s", path, strerror(err));
			if (err == ENOSPC || err == EDQUOT)
				putmsg(p, PERR_LIMIT, "no space left for blobs "
				    "(blob %s not stored)", hex);
			else
				putmsg(p, PERR_SERVER, "blob %s: %s", hex,
				    strerror(err));
			return;
		}
		b = blob_get(h);
		up = b->up = xcalloc(1, sizeof *up);
		up->fd = fd;
		up->size = size;
		sha256_init(&up->sha);
		reserved += size;
		nfds++;
	} else {
		part_path(path, sizeof path, h);
		if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
			log_warn("blobs: %s: %s", path, strerror(errno));
			putmsg(p, PERR_SERVER, "blob %s: %s", hex,
			    strerror(errno));
			return;
		}
		up->fd = fd;
		nfds++;
	}
	up->last = B->now;
	up->writer = c;
	p->b = b;
	p->size = size;
}

void
blob_put_data(struct conn *c, const char *d, size_t n)
{
	struct blobput	*p = c->put;
	struct blob	*b = p->b;
	struct upload	*up;

	if (b == NULL || n == 0)
		return;		/* refused, or already stored: dropped */
	up = b->up;
	if (write_all(up->fd, d, n, up->held) < 0) {
		up->writer = NULL;
		put_failed(p, b, "write", errno);
		return;
	}
	sha256_update(&up->sha, d, n);
	up->held += n;
	up->last = B->now;
	upload_flush(up);
}

/* The body and its terminator are in (term_ok: a CR LF or LF): the
 * reply. */
void
blob_put_end(struct conn *c, int term_ok)
{
	struct blobput	*p = c->put;
	struct blob	*b = p->b;

	c->put = NULL;
	if (b != NULL)
		b->up->writer = NULL;
	if (b != NULL && (!term_ok || p->err != PERR_NONE ||
	    b->up->held < b->up->size))
		upload_close(b->up);
	if (!term_ok)
		conn_error(c, PERR_BODY, "body not followed by CR LF; input "
		    "skipped to next line");
	else if (p->err != PERR_NONE)
		conn_error(c, p->err, "%s", p->msg);
	else if (b == NULL)
		conn_reply(c, "OK stored");
	else if (b->up->held == b->up->size)
		upload_complete(c, b);
	else
		conn_reply(c, "OK %" PRIu64, b->up->held);
	free(p);
}

/* A PUT whose body came whole (not through net.c's stream). */
void
h_put(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	r->bodylen = blen;
	blob_put_begin(c, r);
	blob_put_data(c, body, blen);
	blob_put_end(c, 1);
}

/*
 * Serving.
 */

static void
get_end(struct conn *c)
{
	struct blobget	*g = c->get;

	if (g == NULL)
		return;
	sha256_abandon(&g->sha);
	free(g);
	c->get = NULL;
}

void
blob_conn_free(struct conn *c)
{
	struct blobput	*p = c->put;

	get_end(c);
	if (p == NULL)
		return;
	/* Cut mid-body: what was written stays held, for a resume. */
	if (p->b != NULL && p->b->up != NULL) {
		p->b->up->writer = NULL;
		upload_close(p->b->up);
	}
	free(p);
	c->put = NULL;
}

/* A blob served does not hash to its name: it is moved aside and is no
 * longer stored. */
static void
corrupt(struct blob *b, const uint8_t *got)
{
	char	 hex[SIMQ_HASH_HEX + 1], ghex[SIMQ_HASH_HEX + 1];
	char	 path[4096], dst[4096];

	proto_format_hash(hex, b->hash);
	blob_path(path, sizeof path, b->hash);
	snprintf(dst, sizeof dst, "%s/corrupt", blobdir);
	if (mkdir(dst, 0755) < 0 && errno != EEXIST)
		log_warn("%s: %s", dst, strerror(errno));
	snprintf(dst, sizeof dst, "%s/corrupt/%s", blobdir, hex);
	if (got != NULL)
		proto_format_hash(ghex, got);
	log_warn("blobs: blob %s is CORRUPT on disk (%s); moved to %s, "
	    "never served whole; a new upload of it heals the store", hex,
	    got != NULL ? ghex : "shorter than its size", dst);
	if (rename(path, dst) < 0 && unlink(path) < 0)
		log_warn("%s: %s", path, strerror(errno));
	used -= b->size;
	nstored--;
	b->stored = 0;
	blob_gc(b);
}

/* Reads n bytes at off; -1 on error or a short file. */
static int
read_at(int fd, void *p, size_t n, uint64_t off)
{
	ssize_t	 k;
	char	*q = p;

	while (n > 0) {
		if ((k = pread(fd, q, n, (off_t)off)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0) {
			errno = 0;	/* shorter than its size */
			return -1;
		}
		q += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* A GET that cannot be answered from the blob's file: an I/O error
 * (errno set) is the broker's; a file shorter than its size (errno 0)
 * is corrupt. */
static void
get_failed(struct conn *c, struct blob *b, const char *hex)
{
	if (errno != 0) {
		log_warn("blobs: reading %s: %s", hex, strerror(errno));
		conn_error(c, PERR_SERVER, "blob %s: %s", hex, strerror(errno));
		get_end(c);
		return;
	}
	get_end(c);
	corrupt(b, NULL);
	conn_error(c, PERR_STATE, "blob %s is corrupt on the broker; send "
	    "it again", hex);
}

/* Hashes, from the file, the bytes from g->pos towards to: HASH_READ of
 * them at the most.  Returns 0, or -1 with errno set (0: a short file). */
static int
get_hash_step(struct blobget *g, int fd, uint64_t to)
{
	static char	*tmp;
	uint64_t	 k;

	if (tmp == NULL)
		tmp = xmalloc(HASH_READ);
	if (g->pos >= to)
		return 0;
	k = to - g->pos < HASH_READ ? to - g->pos : HASH_READ;
	if (read_at(fd, tmp, k, g->pos) < 0)
		return -1;
	sha256_update(&g->sha, tmp, k);
	g->pos += k;
	return 0;
}

/* Answers a GET of n bytes at off from fd; hashes them if the hash has
 * reached off, and checks the whole blob with its last byte.  Returns 0
 * with the reply sent (DATA, or the error for a corrupt blob), or -1 with
 * errno set and no reply (for get_failed). */
static int
get_send(struct conn *c, struct blob *b, int fd, uint64_t off, uint64_t n,
    const char *hex)
{
	struct blobget		*g = c->get;
	struct evbuffer		*o;
	struct evbuffer_iovec	 v;
	uint8_t			 got[SIMQ_HASH_LEN];

	o = evbuffer_new();
	if (o == NULL || evbuffer_reserve_space(o, (ssize_t)n, &v, 1) < 1)
		fatal("blobs: out of memory");
	if (read_at(fd, v.iov_base, n, off) < 0) {
		evbuffer_free(o);
		return -1;
	}
	v.iov_len = n;
	evbuffer_commit_space(o, &v, 1);
	if (g->pos == off) {
		sha256_update(&g->sha, v.iov_base, n);
		g->pos = off + n;
	}
	if (g->pos == b->size) {
		sha256_final(&g->sha, got);
		sha256_init(&g->sha);
		get_end(c);
		if (memcmp(got, b->hash, SIMQ_HASH_LEN) != 0) {
			evbuffer_free(o);
			corrupt(b, got);
			conn_error(c, PERR_STATE, "blob %s is corrupt on the "
			    "broker; send it again", hex);
			return 0;
		}
	}
	evbuffer_add_printf(conn_outbuf(c), "DATA %" PRIu64 "\r\n", n);
	evbuffer_add_buffer(c->pend, o);
	evbuffer_add(c->pend, "\r\n", 2);
	conn_reply_done(c);
	evbuffer_free(o);
	return 0;
}

/* Opens the blob's file; -1 with the reply sent. */
static int
get_open(struct conn *c, const struct blob *b, const char *hex)
{
	char	path[4096];
	int	fd;

	blob_path(path, sizeof path, b->hash);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_warn("blobs: %s: %s", path, strerror(errno));
		conn_error(c, PERR_SERVER, "blob %s: %s", hex, strerror(errno));
		get_end(c);
	}
	return fd;
}

/*
 * GET serves what it is asked at once, and its digest follows: hashed as
 * served when the GETs come in order from 0.  One that starts elsewhere (a
 * resumed download, on a new connection) leaves the bytes before it to be
 * hashed from the file, HASH_READ of them a GET: a chunk served meanwhile
 * is hashed later, from the file too.  Only the last chunk waits for the
 * hash, parked (cmd.c), HASH_READ a loop pass (~1 ms), so that it still
 * checks the whole blob and the loop never stalls for a whole prefix
 * (0.8 s a GB).  A request sent behind a parked GET ends the wait, and
 * the rest is hashed then, in one go.
 */
void
h_get(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	uint8_t			 h[SIMQ_HASH_LEN];
	char			 hex[SIMQ_HASH_HEX + 1];
	uint64_t		 off, max, n;
	struct blob		*b;
	struct blobget		*g;
	int			 fd, sndbuf;

	if (arg_hash(c, &r->args[0], h) < 0)
		return;
	if (arg_u64(&r->args[1], SIMQ_BLOB_SIZE_MAX, &off) < 0 ||
	    arg_u64(&r->args[2], SIMQ_CHUNK_MAX, &max) < 0 || max == 0) {
		conn_error(c, PERR_BADREQ, "OFFSET is a number of bytes, MAX "
		    "1 to %u; usage: %s", SIMQ_CHUNK_MAX,
		    proto_cmd_info(CMD_GET)->usage);
		return;
	}
	proto_format_hash(hex, h);
	if ((b = blob_find(h)) == NULL || !b->stored) {
		conn_error(c, PERR_NOTFOUND, "blob %s is not stored", hex);
		return;
	}
	if (off >= b->size) {
		conn_reply(c, "DATA 0\r\n");
		return;
	}
	n = b->size - off < max ? b->size - off : max;
	if ((g = c->get) != NULL && (memcmp(g->hash, h, SIMQ_HASH_LEN) != 0 ||
	    g->pos > off))
		get_end(c);
	if ((fd = get_open(c, b, hex)) < 0)
		return;
	if ((g = c->get) == NULL) {
		g = c->get = xcalloc(1, sizeof *g);
		memcpy(g->hash, h, SIMQ_HASH_LEN);
		sha256_init(&g->sha);
		/* net.c keeps a connection's send buffer small, as what a
		 * client that does not read makes the broker hold; here the
		 * broker holds the chunk anyway, and a small buffer behind a
		 * delayed ACK would cut a transfer to a trickle. */
		sndbuf = GET_SNDBUF;
		setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
		    sizeof sndbuf);
	}
	if (get_hash_step(g, fd, off) < 0)
		goto bad;
	if (g->pos < off && off + n == b->size) {
		g->off = off;
		g->max = max;
		close(fd);
		cmd_park(c, CMD_GET, 0, NULL);
		return;
	}
	if (get_send(c, b, fd, off, n, hex) < 0)
		goto bad;
	close(fd);
	return;
bad:
	close(fd);
	get_failed(c, b, hex);
}

/*
 * A parked GET of a blob's last chunk, once a loop pass (now: at once, a
 * request came behind it): hashes a step of what is before it, and answers
 * when the hash has reached it.  Returns 1 when it answered.
 */
int
blob_get_parked(struct conn *c, int now)
{
	struct blobget	*g = c->get;
	struct blob	*b;
	char		 hex[SIMQ_HASH_HEX + 1];
	uint64_t	 n;
	int		 fd;

	proto_format_hash(hex, g->hash);
	if ((b = blob_find(g->hash)) == NULL || !b->stored) {
		get_end(c);
		conn_error(c, PERR_NOTFOUND, "blob %s is not stored", hex);
		return 1;
	}
	if ((fd = get_open(c, b, hex)) < 0)
		return 1;
	do {
		if (get_hash_step(g, fd, g->off) < 0)
			goto bad;
	} while (now && g->pos < g->off);
	if (g->pos < g->off) {
		close(fd);
		return 0;
	}
	n = b->size - g->off < g->max ? b->size - g->off : g->max;
	if (get_send(c, b, fd, g->off, n, hex) < 0)
		goto bad;
	close(fd);
	return 1;
bad:
	close(fd);
	get_failed(c, b, hex);
	return 1;
}

/*
 * The sweep.
 */

struct sweep {
	int		 synced;
	uint64_t	 nblobs, bytes, nparts;
};

static void
sweep_one(struct blob *b, void *arg)
{
	struct sweep	*s = arg;
	char		 path[4096];

	if (b->up != NULL && b->up->writer == NULL &&
	    B->now >= b->up->last + B->cfg.blob_grace_ms) {
		s->nparts++;
		upload_abort(b);
		return;
	}
	if (!b->stored || b->refs > 0 || b->up != NULL ||
	    B->now < b->idle_since + B->cfg.blob_grace_ms ||
	    b->idle_pass >= blob_passes)
		return;
	/* The records that let go of it are written; with an fsync policy
	 * other than always, make sure they are on disk too. */
	if (!s->synced) {
		if (B->cfg.fsync != FSYNC_ALWAYS && journal_sync(B->journal) < 0)
			fatal("journal: fsync: %s", strerror(errno));
		s->synced = 1;
	}
	blob_path(path, sizeof path, b->hash);
	if (unlink(path) < 0 && errno != ENOENT) {
		log_warn("blobs: %s: %s", path, strerror(errno));
		return;
	}
	s->nblobs++;
	s->bytes += b->size;
	used -= b->size;
	nstored--;
	b->stored = 0;
	blob_gc(b);
}

static void
sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct sweep	 s = { 0, 0, 0, 0 };

	B->now = now_ms();
	blob_foreach(sweep_one, &s);
	if (s.nblobs > 0 || s.nparts > 0)
		log_info("blobs: removed %" PRIu64 " blob%s (%" PRIu64
		    " bytes) no kept job names, and %" PRIu64 " idle "
		    "upload%s", s.nblobs, s.nblobs == 1 ? "" : "s", s.bytes,
		    s.nparts, s.nparts == 1 ? "" : "s");
}

/* At exit: uploads in progress are let go (their partial files stay for
 * the next start-up to remove). */
static void
stop_one(struct blob *b, void *arg)
{
	struct upload	*up = b->up;

	if (up == NULL)
		return;
	upload_close(up);
	sha256_abandon(&up->sha);
	free(up);
	b->up = NULL;
}

void
blob_stop(void)
{
	blob_foreach(stop_one, NULL);
	if (sweep_ev != NULL)
		event_free(sweep_ev);
	sweep_ev = NULL;
	free(blobdir);
	blobdir = NULL;
}

/*
 * Job words the handlers check against the store.
 */

/* SUBMIT and BATCH: each file= names a blob stored complete, of the size
 * given.  Returns 0, or -1 with the error reply sent. */
int
blob_check_files(struct conn *c, const struct proto_jobopts *o)
{
	struct blob	*b;
	char		 hex[SIMQ_HASH_HEX + 1];
	int		 i;

	for (i = 0; i < o->nfiles; i++) {
		b = blob_find(o->files[i].hash);
		proto_format_hash(hex, o->files[i].hash);
		if (b == NULL || !b->stored) {
			conn_error(c, PERR_NOTFOUND, "blob %s is not stored: "
			    "send it first (file %.*s)", hex,
			    (int)(o->files[i].name.len > 100 ? 100 :
			    o->files[i].name.len), o->files[i].name.p);
			return -1;
		}
		if (b->size != o->files[i].size) {
			conn_error(c, PERR_BADREQ, "blob %s holds %" PRIu64
			    " bytes, not %" PRIu64 " (file %.*s)", hex, b->size,
			    o->files[i].size, (int)(o->files[i].name.len > 100 ?
			    100 : o->files[i].name.len), o->files[i].name.p);
			return -1;
		}
	}
	return 0;
}

static char **
strv_add(char **v, uint32_t *n, const char *s, size_t len)
{
	v = xreallocarray(v, (size_t)*n + 1, sizeof *v);
	v[(*n)++] = xstrndup(s, len);
	return v;
}

/*
 * A FINISH key of the files collected: got=HASH:SIZE:MODE:NAME (a blob
 * stored complete), nomatch=GLOB, collerr=REASON, each repeatable, into
 * res->got; a got= takes its blob's reference at once (result_free lets
 * it go).  Returns 0 when k is none of these, 1 when taken, -1 with the
 * error reply sent.
 */
int
blob_finish_key(struct conn *c, struct result *res,
    const struct proto_word *k, struct proto_word *v)
{
	struct jobfiles		*g;
	struct proto_file	 pf;
	struct jobfile		*jf;
	struct blob		*b;
	const char		*why = NULL;
	char			 hex[SIMQ_HASH_HEX + 1];
	long			 n;
	int			 key;

	if (proto_word_is(k, "got"))
		key = 0;
	else if (proto_word_is(k, "nomatch"))
		key = 1;
	else if (proto_word_is(k, "collerr"))
		key = 2;
	else
		return 0;
	if ((n = proto_decode(v->p, v->len)) < 0) {
		conn_error(c, PERR_BADREQ, "%.*s=: bad %%XX escape",
		    (int)k->len, k->p);
		return -1;
	}
	v->len = (size_t)n;
	if (res->got == NULL)
		res->got = jobfiles_new();
	g = res->got;
	switch (key) {
	case 0:
		if (g->nfiles == SIMQ_FILES_MAX)
			why = "more than 1000 files";
		else if ((why = proto_parse_file(v->p, v->len, &pf)) != NULL)
			break;
		else if ((b = blob_find(pf.hash)) == NULL || !b->stored) {
			proto_format_hash(hex, pf.hash);
			conn_error(c, PERR_NOTFOUND, "got=: blob %s is not "
			    "stored: send it first", hex);
			return -1;
		} else if (b->size != pf.size)
			why = "SIZE is not the blob's";
		if (why != NULL)
			break;
		g->files = xreallocarray(g->files, (size_t)g->nfiles + 1,
		    sizeof *g->files);
		jf = &g->files[g->nfiles++];
		memcpy(jf->hash, pf.hash, SIMQ_HASH_LEN);
		jf->size = pf.size;
		jf->mode = pf.mode;
		jf->name = xstrndup(pf.name.p, pf.name.len);
		blob_ref(jf);
		break;
	case 1:
		if (g->npat == SIMQ_COLLECT_MAX)
			why = "more than 64 patterns";
		else if ((why = proto_glob_why(v->p, v->len)) == NULL)
			g->pat = strv_add(g->pat, &g->npat, v->p, v->len);
		break;
	case 2:
		if (g->nerr == SIMQ_COLLERR_MAX)
			why = "more than 64 notes";
		else if (v->len == 0 || v->len > SIMQ_REASON_MAX ||
		    memchr(v->p, '\0', v->len) != NULL)
			why = "not a reason of 1 to 1024 bytes without a NUL";
		else
			g->err = strv_add(g->err, &g->nerr, v->p, v->len);
		break;
	}
	if (why != NULL) {
		conn_error(c, PERR_BADREQ, "%.*s=: %s", (int)k->len, k->p, why);
		return -1;
	}
	return 1;
}

/*
 * The HTTP API's fields (http.c's json_job): a job's files and what was
 * collected from its last attempt.
 */
static void
json_filelist(struct json *js, const char *key, const struct jobfiles *f)
{
	char		 hex[SIMQ_HASH_HEX + 1], mode[8];
	uint32_t	 i;

	json_key(js, key);
	json_array(js);
	for (i = 0; f != NULL && i < f->nfiles; i++) {
		json_object(js);
		json_key(js, "name");
		json_cstr(js, f->files[i].name);
		json_key(js, "size");
		json_uint(js, f->files[i].size);
		json_key(js, "mode");
		snprintf(mode, sizeof mode, "%o", (unsigned)f->files[i].mode);
		json_cstr(js, mode);
		json_key(js, "hash");
		proto_format_hash(hex, f->files[i].hash);
		json_cstr(js, hex);
		json_end(js);
	}
	json_end(js);
}

static void
json_strv(struct json *js, const char *key, char **v, uint32_t n)
{
	uint32_t	i;

	json_key(js, key);
	json_array(js);
	for (i = 0; i < n; i++)
		json_cstr(js, v[i]);
	json_end(js);
}

void
blob_json_job(struct json *js, const struct job *j)
{
	const struct jobfiles	*f = j->opts->files;
	const struct jobfiles	*g = j->kind != JK_ARRAY && j->res != NULL ?
				    j->res->got : NULL;

	json_filelist(js, "files", f);
	json_strv(js, "collect", f != NULL ? f->pat : NULL,
	    f != NULL ? f->npat : 0);
	json_filelist(js, "collected", g);
	json_strv(js, "nomatch", g != NULL ? g->pat : NULL,
	    g != NULL ? g->npat : 0);
	json_strv(js, "collect_errors", g != NULL ? g->err : NULL,
	    g != NULL ? g->nerr : 0);
}
