/*
 * files.c: the files that travel with a job (simq submit --file, and
 * --collect), from the paths given to the file= words of its SUBMIT.
 *
 * Everything that can be wrong with the input is found before anything
 * is sent: a path that is missing or cannot be read, a name that is not
 * a relative path inside the job's directory, two files under one name,
 * too many files.  Then each file is hashed (SHA-256: its name at the
 * broker), the broker is asked which it holds (HAVE), and only the
 * others are sent (xfer.c: a few chunks in flight, memory flat whatever
 * the size), over a connection of their own; the SUBMIT goes after, and
 * names them.  An array or a batch names the same blobs in every task,
 * so a file is sent once however many tasks read it.
 */
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileword.h"
#include "simq.h"
#include "xfer.h"

/* Files from this size on show their progress on a terminal. */
#define FILES_BAR_MIN		(64u << 20)

static void
files_push(struct sfiles *fs, const char *path, const char *name,
    const struct stat *st)
{
	char	why[160];

	if (fileword_name_check(name, why, sizeof why) < 0)
		die(EXIT_USAGE, "--file %s: bad name '%s': %s", path, name, why);
	if (access(path, R_OK) < 0)
		die(EXIT_USAGE, "--file %s: cannot be read (%s); nothing was "
		    "submitted", path, strerror(errno));
	fs->f = xreallocarray(fs->f, fs->n + 1, sizeof *fs->f);
	memset(&fs->f[fs->n], 0, sizeof fs->f[fs->n]);
	fs->f[fs->n].path = xstrdup(path);
	fs->f[fs->n].name = xstrdup(name);
	fs->f[fs->n].size = (uint64_t)st->st_size;
	fs->f[fs->n].mode = fileword_mode(st->st_mode);
	fs->n++;
	if (fs->n > SIMQ_FILES_MAX)
		die(EXIT_USAGE, "--file: more than %d files; a job carries at "
		    "most %d (pack a directory into an archive, and unpack it "
		    "in the job)", SIMQ_FILES_MAX, SIMQ_FILES_MAX);
}

/* Every regular file under dir, as name/relative/path.  Symbolic links
 * to files are followed; links to directories are not walked into. */
static void
files_walk(struct sfiles *fs, const char *dir, const char *name, int depth)
{
	struct dirent	**ents;
	struct stat	  st, lst;
	char		 *p, *nm;
	int		  n, i;

	if (depth > 64)
		die(EXIT_USAGE, "--file %s: directories nested more than 64 "
		    "deep", dir);
	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0)
		die(EXIT_USAGE, "--file %s: cannot be read (%s); nothing was "
		    "submitted", dir, strerror(errno));
	for (i = 0; i < n; i++) {
		if (strcmp(ents[i]->d_name, ".") == 0 ||
		    strcmp(ents[i]->d_name, "..") == 0) {
			free(ents[i]);
			continue;
		}
		p = xprintf("%s/%s", dir, ents[i]->d_name);
		nm = xprintf("%s/%s", name, ents[i]->d_name);
		if (lstat(p, &lst) < 0 || stat(p, &st) < 0)
			die(EXIT_USAGE, "--file %s: %s; nothing was submitted",
			    p, strerror(errno));
		if (S_ISDIR(st.st_mode) && !S_ISLNK(lst.st_mode))
			files_walk(fs, p, nm, depth + 1);
		else if (S_ISREG(st.st_mode))
			files_push(fs, p, nm, &st);
		else if (!S_ISDIR(st.st_mode))
			log_warn("--file %s: not a regular file; left out", p);
		else
			log_warn("--file %s: a link to a directory; left out",
			    p);
		free(p);
		free(nm);
		free(ents[i]);
	}
	free(ents);
}

/* The last part of a path, without trailing slashes. */
static char *
files_basename(const char *path)
{
	char	*s = xstrdup(path), *b;
	size_t	 n = strlen(s);

	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	b = strrchr(s, '/');
	b = xstrdup(b != NULL && b[1] != '\0' ? b + 1 : s);
	free(s);
	return b;
}

void
files_add(struct sfiles *fs, const char *spec)
{
	struct stat	 st;
	const char	*colon = strrchr(spec, ':');
	char		*path, *name, why[160];

	if (*spec == '\0')
		die(EXIT_USAGE, "--file needs a PATH (or PATH:NAME)");
	if (colon != NULL) {
		path = xstrndup(spec, (size_t)(colon - spec));
		name = xstrdup(colon + 1);
		if (*path == '\0')
			die(EXIT_USAGE, "--file %s: no path before the ':'",
			    spec);
		if (*name == '\0')
			die(EXIT_USAGE, "--file %s: no name after the ':'",
			    spec);
	} else {
		path = xstrdup(spec);
		name = files_basename(spec);
	}
	if (stat(path, &st) < 0)
		die(EXIT_USAGE, "--file %s: %s; nothing was submitted", path,
		    strerror(errno));
	if (fileword_name_check(name, why, sizeof why) < 0 ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		die(EXIT_USAGE, "--file %s: bad name '%s': %s%s", spec, name,
		    strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ?
		    "it is . or .." : why, colon != NULL ? "" :
		    " (give one with PATH:NAME)");
	if (S_ISDIR(st.st_mode)) {
		size_t before = fs->n;
		files_walk(fs, path, name, 0);
		if (fs->n == before)
			die(EXIT_USAGE, "--file %s: the directory holds no "
			    "regular file", path);
	} else if (S_ISREG(st.st_mode))
		files_push(fs, path, name, &st);
	else
		die(EXIT_USAGE, "--file %s: not a regular file or a directory",
		    path);
	free(path);
	free(name);
}

void
files_collect(struct sfiles *fs, const char *glob)
{
	char	why[160];

	if (fileword_glob_check(glob, why, sizeof why) < 0)
		die(EXIT_USAGE, "bad --collect '%s': %s", glob, why);
	if (fs->ncollect == SIMQ_COLLECT_MAX)
		die(EXIT_USAGE, "--collect given more than %d times; a job "
		    "has at most %d patterns", SIMQ_COLLECT_MAX,
		    SIMQ_COLLECT_MAX);
	fs->collect = xreallocarray(fs->collect, fs->ncollect + 1,
	    sizeof *fs->collect);
	fs->collect[fs->ncollect++] = xstrdup(glob);
}

static int
files_cmp_name(const void *a, const void *b)
{
	const struct sfile *x = a, *y = b;

	return strcmp(x->name, y->name);
}

const struct sfile *
files_find(const struct sfiles *fs, const char *name)
{
	size_t	i;

	for (i = 0; i < fs->n; i++)
		if (strcmp(fs->f[i].name, name) == 0)
			return &fs->f[i];
	return NULL;
}

/* A name that is also a directory of another ("a" and "a/b") cannot be
 * laid: say which. */
static void
files_check_names(struct sfiles *fs)
{
	size_t	i, k, n;

	if (fs->n == 0)
		return;
	qsort(fs->f, fs->n, sizeof *fs->f, files_cmp_name);
	for (i = 1; i < fs->n; i++)
		if (strcmp(fs->f[i - 1].name, fs->f[i].name) == 0)
			die(EXIT_USAGE, "--file: two files would be named "
			    "'%s' (%s and %s); give one another name with "
			    "PATH:NAME", fs->f[i].name, fs->f[i - 1].path,
			    fs->f[i].path);
	for (i = 0; i < fs->n; i++) {
		n = strlen(fs->f[i].name);
		for (k = i + 1; k < fs->n; k++) {
			if (strncmp(fs->f[k].name, fs->f[i].name, n) != 0)
				break;
			if (fs->f[k].name[n] == '/')
				die(EXIT_USAGE, "--file: '%s' (%s) would be "
				    "both a file and the directory of '%s' "
				    "(%s)", fs->f[i].name, fs->f[i].path,
				    fs->f[k].name, fs->f[k].path);
		}
	}
}

/* Progress of the file being hashed or sent, on a terminal. */
struct files_bar {
	const char	*verb;
	const char	*name;
	uint64_t	 last;
};

static void
files_bar_cb(void *arg, uint64_t done, uint64_t size)
{
	struct files_bar	*b = arg;
	char			 x[FMT_MAX], y[FMT_MAX];

	if (done != size && done - b->last < (8u << 20))
		return;
	b->last = done;
	fprintf(stderr, "\rsimq: %s %s: %s of %s\033[K", b->verb, b->name,
	    fmt_size(x, done), fmt_size(y, size));
	fflush(stderr);
}

static void
files_bar_end(void)
{
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
}

/* Hashes path, checking it is still the size it was. */
static void
files_hash_one(struct sfile *f)
{
	struct files_bar bar = { "hashing", f->name, 0 };
	struct sha256	 ctx;
	unsigned char	 d[SHA256_LEN];
	uint64_t	 n = 0;
	ssize_t		 r;
	char		*buf;
	int		 fd, show = cfg.progress && f->size >= FILES_BAR_MIN;

	if ((fd = open(f->path, O_RDONLY | O_CLOEXEC)) < 0)
		die(EXIT_USAGE, "--file %s: cannot be read (%s); nothing was "
		    "submitted", f->path, strerror(errno));
	buf = xmalloc(XFER_CHUNK);
	sha256_init(&ctx);
	for (;;) {
		r = read(fd, buf, XFER_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die(EXIT_USAGE, "--file %s: cannot be read (%s); "
			    "nothing was submitted", f->path, strerror(errno));
		if (r == 0)
			break;
		sha256_update(&ctx, buf, (size_t)r);
		n += (uint64_t)r;
		if (show)
			files_bar_cb(&bar, n, f->size > n ? f->size : n);
	}
	if (show)
		files_bar_end();
	sha256_final(&ctx, d);
	sha256_hex(d, f->hex);
	free(buf);
	close(fd);
	if (n != f->size)
		die(EXIT_USAGE, "--file %s: it changed while it was read (%llu "
		    "bytes, then %llu); nothing was submitted", f->path,
		    (unsigned long long)f->size, (unsigned long long)n);
}

void
files_ready(struct sfiles *fs)
{
	size_t	i;

	files_check_names(fs);
	for (i = 0; i < fs->n; i++)
		files_hash_one(&fs->f[i]);
}

static void
files_note(void *arg, const char *msg)
{
	log_warn("%s", msg);
}

/* A transfer connection to the broker the options name (simq submit's
 * uploads, simq fetch's downloads), saying its retries on stderr.  Dies
 * on a bad address or token file.  The caller frees it (xfer_free). */
struct xfer *
files_xfer(void)
{
	struct xfer	*x;
	char		*host, *port, *token, why[512];

	if (server_split(server_pick(cfg.server), &host, &port) < 0)
		die(EXIT_USAGE, "bad broker address '%s': %s",
		    server_pick(cfg.server), SERVER_FORMS);
	if (token_load(cfg.token_file, &token, why, sizeof why) < 0)
		die(EXIT_USAGE, "%s", why);
	x = xfer_new(host, port, token);
	x->note = files_note;
	free(host);
	free(port);
	free(token);
	return x;
}

/*
 * HAVE for every distinct blob, then PUT those the broker does not hold
 * complete.  Dies, saying that nothing was submitted, if the broker
 * refuses one (a full store) or cannot be reached for a minute.
 */
void
files_send(struct sfiles *fs)
{
	struct xfer	*x;
	char		(*hex)[SHA256_HEX_LEN + 1], a[FMT_MAX];
	int64_t		*held;
	size_t		 i, k, n = 0;
	int		 fd;

	if (fs->n == 0)
		return;
	x = files_xfer();
	hex = xreallocarray(NULL, fs->n, sizeof *hex);
	held = xreallocarray(NULL, fs->n, sizeof *held);
	for (i = 0; i < fs->n; i++) {
		for (k = 0; k < n; k++)
			if (strcmp(hex[k], fs->f[i].hex) == 0)
				break;
		if (k == n)
			memcpy(hex[n++], fs->f[i].hex, sizeof hex[0]);
	}
	if (xfer_have(x, (const char (*)[SHA256_HEX_LEN + 1])hex, n, held) < 0)
		die(EXIT_USAGE, "%s; nothing was submitted", x->err);
	for (k = 0; k < n; k++) {
		struct sfile	*f = NULL;
		struct files_bar bar;

		if (held[k] == XFER_STORED)
			continue;
		for (i = 0; i < fs->n; i++)
			if (strcmp(fs->f[i].hex, hex[k]) == 0) {
				f = &fs->f[i];
				break;
			}
		if ((fd = open(f->path, O_RDONLY | O_CLOEXEC)) < 0)
			die(EXIT_USAGE, "--file %s: cannot be read (%s); "
			    "nothing was submitted", f->path, strerror(errno));
		bar.verb = "sending";
		bar.name = f->name;
		bar.last = 0;
		if (xfer_upload(x, fd, f->hex, f->size, cfg.progress &&
		    f->size >= FILES_BAR_MIN ? files_bar_cb : NULL, &bar) < 0) {
			if (cfg.progress && f->size >= FILES_BAR_MIN)
				files_bar_end();
			die(EXIT_USAGE, "cannot send %s (%s, %s) to the broker: "
			    "%s; nothing was submitted", f->path, f->name,
			    fmt_size(a, f->size), x->err);
		}
		if (cfg.progress && f->size >= FILES_BAR_MIN)
			files_bar_end();
		close(fd);
	}
	free(hex);
	free(held);
	xfer_free(x);
}

/* The file= and collect= words of the job. */
void
files_words(const struct sfiles *fs, struct buf *opts)
{
	size_t	i;
	char	*v;

	for (i = 0; i < fs->n; i++) {
		v = xprintf("%s:%llu:%o:%s", fs->f[i].hex,
		    (unsigned long long)fs->f[i].size, fs->f[i].mode,
		    fs->f[i].name);
		req_kv(opts, "file", v);
		free(v);
	}
	for (i = 0; i < fs->ncollect; i++)
		req_kv(opts, "collect", fs->collect[i]);
}

void
files_free(struct sfiles *fs)
{
	size_t	i;

	for (i = 0; i < fs->n; i++) {
		free(fs->f[i].path);
		free(fs->f[i].name);
	}
	free(fs->f);
	for (i = 0; i < fs->ncollect; i++)
		free(fs->collect[i]);
	free(fs->collect);
	memset(fs, 0, sizeof *fs);
}
