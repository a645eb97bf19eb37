/*
 * files.c: a job's private directory, the files laid into it, and the
 * files collected from it.
 *
 * A job with file= or collect= words runs in a fresh directory of its
 * own under --jobs-dir ($SIMQ_WORKDIR, its cwd), removed after it.  The
 * transfers are blocking code run in a child of the slot's shepherd
 * (shepherd.c, transfer()): the worker's event loop, and with it the
 * heartbeats and TAKEs of every other slot, never waits for a byte of a
 * file, and the shepherd still hears a cancel or a timeout meanwhile
 * (it kills the child).  Each child opens its own connection to the
 * broker (xfer.c), so a transfer never queues behind the worker's
 * requests or they behind it.
 *
 * Laying a file: a reflink (FICLONE: a copy that costs nothing, on
 * btrfs or XFS), else a hard link to the cache entry (read-only: the
 * job sees its input as mode 0444; an executable one is copied instead,
 * to keep its own mode), else a copy.
 *
 * Collecting: after the job's processes are all gone, each pattern is
 * expanded in the directory (glob(3)); a match that is a directory is
 * walked.  Only regular files are taken, and no symbolic link is
 * followed, on the way or at the end (a job cannot make the worker send
 * /etc/shadow).  Each file is hashed, sent (HAVE, then PUT of what the
 * broker lacks) and named in the FINISH as got=; a pattern that matched
 * nothing is nomatch=, and what was not taken (too big for
 * --collect-max, a link, unreadable, refused by the broker) collerr=.
 */
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fileword.h"
#include "simq-worker.h"
#include "xfer.h"

/* The got=/nomatch=/collerr= words of one FINISH, encoded: the FINISH
 * line holds them and its other keys within SIMQ_LINE_MAX. */
#define FILES_WORDS_MAX		(SIMQ_LINE_MAX - 8 * WPATH_MAX)

static struct xfer *
files_xfer(void)
{
	return xfer_new(W->cfg.host, W->cfg.port, W->cfg.token);
}

/* mkdir -p of the directories of name below dir. */
static int
files_parents(const char *dir, const char *name)
{
	char	path[WPATH_MAX], *p;
	size_t	off = strlen(dir) + 1;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >=
	    (int)sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = path + off; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

/* Copies src to the new file dst. */
static int
files_copy(int sfd, int dfd)
{
	char	buf[65536];
	ssize_t	n, w, off;

	for (;;) {
		n = copy_file_range(sfd, NULL, dfd, NULL, 1 << 30, 0);
		if (n > 0)
			continue;
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return -1;
		break;
	}
	while ((n = read(sfd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		for (off = 0; off < n; off += w)
			if ((w = write(dfd, buf + off, (size_t)(n - off))) < 0)
				return -1;
	}
	return 0;
}

/* Lays the cache entry at src as dst: reflink, hard link, copy.
 * Returns 0, or -1 with errno. */
static int
files_lay(const char *src, const char *dst, unsigned mode, const char **how)
{
	int	sfd, dfd, e;

	if ((sfd = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if ((dfd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) < 0) {
		e = errno;
		close(sfd);
		errno = e;
		return -1;
	}
	if (ioctl(dfd, FICLONE, sfd) == 0) {
		*how = "reflink";
		goto done;
	}
	if (!(mode & 0111)) {
		close(dfd);
		(void)unlink(dst);
		if (link(src, dst) == 0) {
			*how = "hard link";
			close(sfd);
			return 0;
		}
		if ((dfd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0600)) < 0) {
			e = errno;
			close(sfd);
			errno = e;
			return -1;
		}
	}
	*how = "copy";
	if (files_copy(sfd, dfd) < 0) {
		e = errno;
		close(sfd);
		close(dfd);
		errno = e;
		return -1;
	}
done:
	close(sfd);
	if (fchmod(dfd, mode) < 0 || close(dfd) < 0)
		return -1;
	return 0;
}

/* Writes all of s to fd (the pipe to the shepherd). */
static void
files_say(int fd, const char *s, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, s, len)) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += n;
		len -= (size_t)n;
	}
}

/*
 * In the transfer child: every file= of j from the cache (fetched into
 * it first where needed) into dir.  Returns the child's exit status: 0,
 * or 1 with the reason written to out.
 */
int
files_fetch_child(const struct wjob *j, const char *dir, int out)
{
	struct xfer	*x = NULL;
	struct fileword	 fw;
	char		 src[WPATH_MAX], dst[WPATH_MAX], *why = NULL;
	const char	*how = "?";
	int		 i, lock;

	if (cache_init(&why) < 0)
		goto fail;
	for (i = 0; i < j->nfiles; i++) {
		if (fileword_parse(j->files[i], &fw) < 0) {
			why = xprintf("bad file word '%.100s'", j->files[i]);
			goto fail;
		}
		if (x == NULL)
			x = files_xfer();
		if ((lock = cache_get(x, fw.hex, fw.size, src, sizeof src,
		    j->id, &why)) < 0) {
			char *w = xprintf("%s: %s", fw.name, why);
			free(why);
			why = w;
			goto fail;
		}
		snprintf(dst, sizeof dst, "%s/%s", dir, fw.name);
		if (files_parents(dir, fw.name) < 0 ||
		    files_lay(src, dst, fw.mode, &how) < 0) {
			why = xprintf("%s: cannot lay it in %s: %s", fw.name,
			    dir, strerror(errno));
			close(lock);
			goto fail;
		}
		close(lock);
		log_debug("job %s: %s laid by %s", j->id, fw.name, how);
	}
	xfer_free(x);
	return 0;
fail:
	files_say(out, why, strlen(why));
	free(why);
	xfer_free(x);
	return 1;
}

/*
 * Collecting.
 */
struct collect {
	const struct wjob	*j;
	struct xfer		*x;
	struct buf		 words;
	char			**names;	/* collected, for duplicates */
	int			 nnames;
	int			 nerr;		/* collerr= written */
	int			 nerr_more;	/* and left unsaid */
	int			 full;		/* no room for more words */
};

/* Appends key=VAL, encoded; a collerr= is cut to SIMQ_REASON_MAX. */
static void
collect_word(struct collect *c, const char *key, const char *val)
{
	size_t	len = strlen(val);

	if (strcmp(key, "collerr") == 0 && len > SIMQ_REASON_MAX)
		len = SIMQ_REASON_MAX;
	buf_reserve(&c->words, strlen(key) + 2 + PROTO_ENC_MAX(len));
	if (c->words.len > 0)
		buf_put_u8(&c->words, ' ');
	buf_put(&c->words, key, strlen(key));
	buf_put_u8(&c->words, '=');
	c->words.len += proto_encode((char *)c->words.p + c->words.len, val,
	    len);
}

static void collect_err(struct collect *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
collect_err(struct collect *c, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	if (c->nerr >= SIMQ_COLLERR_MAX - 1 || c->full) {
		c->nerr_more++;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		return;
	log_info("job %s attempt %u: not collected: %s", c->j->id,
	    c->j->attempt, s);
	collect_word(c, "collerr", s);
	free(s);
	c->nerr++;
}

/* One regular file (name relative to the job's directory, our cwd). */
static void
collect_file(struct collect *c, const char *name)
{
	struct sha256	 ctx;
	struct stat	 st;
	unsigned char	 d[SHA256_LEN];
	char		 hex[SHA256_HEX_LEN + 1], *v, buf[65536], why[160];
	ssize_t		 n;
	uint64_t	 got = 0;
	int		 fd, i;

	for (i = 0; i < c->nnames; i++)
		if (strcmp(c->names[i], name) == 0)
			return;		/* matched by two patterns */
	if (fileword_name_check(name, why, sizeof why) < 0) {
		collect_err(c, "%s: %s", name, why);
		return;
	}
	if (c->nnames >= SIMQ_FILES_MAX || c->full) {
		collect_err(c, "%s: more than %d files to collect", name,
		    SIMQ_FILES_MAX);
		return;
	}
	if ((fd = open(name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK)) < 0) {
		collect_err(c, "%s: cannot be read: %s", name, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		collect_err(c, "%s: not a regular file", name);
		return;
	}
	if ((uint64_t)st.st_size > W->cfg.collect_max) {
		close(fd);
		collect_err(c, "%s: %llu bytes, over the worker's "
		    "--collect-max of %llu", name,
		    (unsigned long long)st.st_size,
		    (unsigned long long)W->cfg.collect_max);
		return;
	}
	sha256_init(&ctx);
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		sha256_update(&ctx, buf, (size_t)n);
		got += (uint64_t)n;
	}
	sha256_final(&ctx, d);
	sha256_hex(d, hex);
	if (n < 0 || got != (uint64_t)st.st_size) {
		close(fd);
		collect_err(c, "%s: cannot be read: %s", name, n < 0 ?
		    strerror(errno) : "it changed while it was read");
		return;
	}
	if (c->x == NULL)
		c->x = files_xfer();
	if (xfer_upload(c->x, fd, hex, got, NULL, NULL) < 0) {
		close(fd);
		collect_err(c, "%s: the broker did not take it: %s", name,
		    c->x->err);
		return;
	}
	close(fd);
	v = xprintf("%s:%llu:%o:%s", hex, (unsigned long long)got,
	    fileword_mode(st.st_mode), name);
	if (c->words.len + PROTO_ENC_MAX(strlen(v)) + 8 > FILES_WORDS_MAX) {
		c->full = 1;
		c->nerr_more++;
		free(v);
		return;
	}
	collect_word(c, "got", v);
	free(v);
	c->names = xreallocarray(c->names, (size_t)c->nnames + 1,
	    sizeof *c->names);
	c->names[c->nnames++] = xstrdup(name);
	log_verbose("job %s attempt %u: collected %s (%llu bytes)", c->j->id,
	    c->j->attempt, name, (unsigned long long)got);
}

/* A match: a file, or a directory walked for its files; never a link. */
static void
collect_path(struct collect *c, const char *name, int depth)
{
	struct dirent	**ents;
	struct stat	  st;
	char		 *p, *sub;
	int		  n, i;

	/* No part of the way may be a link (glob(3) follows them). */
	p = xstrdup(name);
	for (sub = strchr(p, '/'); sub != NULL; sub = strchr(sub + 1, '/')) {
		*sub = '\0';
		if (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
			collect_err(c, "%s: %s is a symbolic link or not a "
			    "directory; not followed", name, p);
			free(p);
			return;
		}
		*sub = '/';
	}
	free(p);
	if (lstat(name, &st) < 0) {
		collect_err(c, "%s: %s", name, strerror(errno));
		return;
	}
	if (S_ISLNK(st.st_mode)) {
		collect_err(c, "%s: a symbolic link; not followed", name);
		return;
	}
	if (S_ISREG(st.st_mode)) {
		collect_file(c, name);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		collect_err(c, "%s: not a regular file", name);
		return;
	}
	if (depth > 64) {
		collect_err(c, "%s: directories nested too deep", name);
		return;
	}
	if ((n = scandir(name, &ents, NULL, alphasort)) < 0) {
		collect_err(c, "%s: cannot be read: %s", name, strerror(errno));
		return;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(ents[i]->d_name, ".") != 0 &&
		    strcmp(ents[i]->d_name, "..") != 0) {
			sub = xprintf("%s/%s", name, ents[i]->d_name);
			collect_path(c, sub, depth + 1);
			free(sub);
		}
		free(ents[i]);
	}
	free(ents);
}

/* The names glob(3) gives back start with "./" if the pattern did. */
static const char *
collect_rel(const char *s)
{
	while (s[0] == '.' && s[1] == '/')
		s += 2;
	return s;
}

/*
 * In the transfer child, after the job: collects into the broker and
 * writes the FINISH words to out.  Returns 0 (what could not be
 * collected is said in collerr= words: the job's outcome stays).
 */
int
files_collect_child(const struct wjob *j, const char *dir, int out)
{
	struct collect	c;
	glob_t		g;
	size_t		i;
	int		k, r;
	char		*s;

	memset(&c, 0, sizeof c);
	c.j = j;
	buf_init(&c.words);
	if (chdir(dir) < 0) {
		collect_err(&c, "the job's directory %s: %s", dir,
		    strerror(errno));
		goto done;
	}
	for (k = 0; k < j->ncollect; k++) {
		memset(&g, 0, sizeof g);
		r = glob(j->collect[k], GLOB_NOSORT, NULL, &g);
		if (r == GLOB_NOMATCH || (r == 0 && g.gl_pathc == 0)) {
			log_info("job %s attempt %u: nothing matched --collect "
			    "%s", j->id, j->attempt, j->collect[k]);
			collect_word(&c, "nomatch", j->collect[k]);
		} else if (r != 0)
			collect_err(&c, "%s: %s", j->collect[k], r ==
			    GLOB_NOSPACE ? "out of memory" : "a directory "
			    "could not be read");
		else
			for (i = 0; i < g.gl_pathc; i++)
				collect_path(&c, collect_rel(g.gl_pathv[i]), 0);
		globfree(&g);
	}
done:
	if (c.nerr_more > 0) {
		s = xprintf("and %d more file%s not collected", c.nerr_more,
		    c.nerr_more == 1 ? "" : "s");
		collect_word(&c, "collerr", s);
		free(s);
	}
	files_say(out, (char *)c.words.p, c.words.len);
	for (k = 0; k < c.nnames; k++)
		free(c.names[k]);
	free(c.names);
	buf_free(&c.words);
	xfer_free(c.x);
	return 0;
}

/*
 * The job's directory: a fresh one under --jobs-dir, named after the
 * attempt and the shepherd that runs it (ID.ATTEMPT.PID.RANDOM, so that
 * files_sweep() knows one whose shepherd is gone).  Returns it (the
 * caller frees), or NULL with why.
 */
char *
files_mkdir(const struct wjob *j, char **why)
{
	char	*dir = xprintf("%s/%s.%u.%d.XXXXXX", W->cfg.jobs_dir, j->id,
	    j->attempt, (int)getpid());

	if (files_mkdirs(W->cfg.jobs_dir) < 0 || mkdtemp(dir) == NULL) {
		*why = xprintf("the job's directory under %s: %s",
		    W->cfg.jobs_dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

/* The pid in NAME.PID or NAME.PID.RANDOM (the last or the one before
 * the last dot-separated part), or 0. */
static pid_t
files_name_pid(const char *name, int before_last)
{
	const char	*p = strrchr(name, '.'), *q;
	long		 v;
	char		*end;

	if (p == NULL)
		return 0;
	if (before_last) {
		for (q = p - 1; q > name && *q != '.'; q--)
			;
		if (q <= name)
			return 0;
		p = q;
	}
	v = strtol(p + 1, &end, 10);
	if (end == p + 1 || (*end != '\0' && *end != '.') || v <= 1)
		return 0;
	return (pid_t)v;
}

/*
 * At start-up: what a worker killed with -9 left behind, the
 * directories of its jobs and its downloads in progress, whose process
 * is gone.  Those of other live workers on the node are left alone.
 */
void
files_sweep(void)
{
	struct dirent	*de;
	DIR		*d;
	char		 path[WPATH_MAX];
	pid_t		 pid;
	int		 k, n = 0;

	for (k = 0; k < 2; k++) {
		if (k == 0)
			snprintf(path, sizeof path, "%s", W->cfg.jobs_dir);
		else
			snprintf(path, sizeof path, "%s/tmp", W->cfg.cache_dir);
		if ((d = opendir(path)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' || (pid = files_name_pid(
			    de->d_name, k == 0)) == 0 ||
			    kill(pid, 0) == 0 || errno != ESRCH)
				continue;
			if (k == 0) {
				snprintf(path, sizeof path, "%s/%s",
				    W->cfg.jobs_dir, de->d_name);
				files_rmdir(path);
			} else {
				snprintf(path, sizeof path, "%s/tmp/%s",
				    W->cfg.cache_dir, de->d_name);
				(void)unlink(path);
			}
			n++;
		}
		closedir(d);
	}
	if (n > 0)
		log_info("removed %d job director%s and downloads left by "
		    "processes that are gone", n, n == 1 ? "y" : "ies");
}

/* mkdir -p path (each directory made private, mode 0700).  Returns 0,
 * or -1 with errno. */
int
files_mkdirs(const char *path)
{
	char	buf[WPATH_MAX], *p;

	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Opens up each directory (a job may have made one read-only), before
 * its contents are read. */
static int
files_open_up(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	if (flag == FTW_D || flag == FTW_DNR)
		(void)chmod(path, 0700);
	return 0;
}

static int
files_rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	if (flag == FTW_DP || flag == FTW_D || flag == FTW_DNR)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

/* rm -rf, never following a link. */
void
files_rmdir(const char *dir)
{
	(void)nftw(dir, files_open_up, 16, FTW_PHYS);
	(void)nftw(dir, files_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (access(dir, F_OK) == 0)
		log_warn("could not remove the job directory %s entirely",
		    dir);
}
