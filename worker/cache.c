/*
 * cache.c: the node's cache of blobs (--cache-dir, --cache-max).
 *
 * A blob is fetched from the broker once per node and kept here, so a
 * thousand tasks sharing an input move it across the network once.  The
 * layout, shared by every worker process of the node that is given the
 * same directory:
 *
 *   DIR/ab/<64 hex>     an entry: complete, its hash checked before it
 *                       was renamed here; mode 0444, its mtime set to
 *                       CACHE_MTIME so that a change through a hard link
 *                       (a job that made its input writable) shows
 *   DIR/tmp/            downloads in progress, one file per download
 *   DIR/locks/ab        256 lock files, one per first byte of the hash:
 *                       flock()ed while a blob of that byte is looked up,
 *                       fetched or laid, so two slots or two workers
 *                       wanting the same blob fetch it once (the second
 *                       waits, then finds it), and eviction never takes
 *                       an entry from under a job being laid out
 *
 * Eviction is LRU by last use: each use sets the entry's atime (by hand,
 * whatever the mount's atime policy), and a fetch that would pass
 * --cache-max first removes the entries used longest ago.  An entry in
 * use by a running job may go: its hard link keeps the inode alive.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "simq-worker.h"
#include "xfer.h"

/* The mtime of every entry: a file rewritten in place gets another. */
#define CACHE_MTIME	((time_t)1000000000)

struct centry {
	char		 name[SHA256_HEX_LEN + 1];
	uint64_t	 size;
	struct timespec	 used;
};

static void
cache_path(char *buf, size_t len, const char *hex)
{
	snprintf(buf, len, "%s/%.2s/%s", W->cfg.cache_dir, hex, hex);
}

/* Makes DIR (mkdir -p), DIR/00..ff, DIR/tmp and DIR/locks, the last
 * one last: once it is there, so is the rest.  Returns 0, or -1 with
 * why. */
int
cache_init(char **why)
{
	char	path[WPATH_MAX];
	int	i;

	snprintf(path, sizeof path, "%s/locks", W->cfg.cache_dir);
	if (access(path, F_OK) == 0)
		return 0;
	if (files_mkdirs(W->cfg.cache_dir) < 0) {
		int e = errno;
		snprintf(path, sizeof path, "%s", W->cfg.cache_dir);
		errno = e;
		goto fail;
	}
	for (i = 0; i < 257; i++) {
		if (i < 256)
			snprintf(path, sizeof path, "%s/%02x", W->cfg.cache_dir,
			    i);
		else
			snprintf(path, sizeof path, "%s/tmp", W->cfg.cache_dir);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			goto fail;
	}
	snprintf(path, sizeof path, "%s/locks", W->cfg.cache_dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		goto fail;
	return 0;
fail:
	*why = xprintf("cache %s: %s", path, strerror(errno));
	return -1;
}

/* The lock of hex's first byte: returns its descriptor, locked (how:
 * LOCK_EX, or LOCK_EX | LOCK_NB), or -1. */
static int
cache_lock(const char *hex, int how)
{
	char	path[WPATH_MAX];
	int	fd;

	snprintf(path, sizeof path, "%s/locks/%.2s", W->cfg.cache_dir, hex);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return -1;
	while (flock(fd, how) < 0) {
		if (errno == EINTR)
			continue;
		close(fd);
		return -1;
	}
	return fd;
}

static int
cache_cmp_used(const void *a, const void *b)
{
	const struct centry *x = a, *y = b;

	if (x->used.tv_sec != y->used.tv_sec)
		return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
	if (x->used.tv_nsec != y->used.tv_nsec)
		return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Every entry, with its size and last use.  Returns how many. */
static size_t
cache_list(struct centry **out, uint64_t *total)
{
	struct centry	*e = NULL;
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	char		 path[WPATH_MAX];
	size_t		 n = 0, cap = 0;
	int		 i;

	*total = 0;
	for (i = 0; i < 256; i++) {
		snprintf(path, sizeof path, "%s/%02x", W->cfg.cache_dir, i);
		if ((d = opendir(path)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (strlen(de->d_name) != SHA256_HEX_LEN ||
			    fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				e = xreallocarray(e, cap, sizeof *e);
			}
			memcpy(e[n].name, de->d_name, SHA256_HEX_LEN + 1);
			e[n].size = (uint64_t)st.st_size;
			e[n].used = st.st_atim;
			*total += e[n].size;
			n++;
		}
		closedir(d);
	}
	*out = e;
	return n;
}

/*
 * Makes room for need more bytes under --cache-max: removes the entries
 * used longest ago, skipping those whose lock another process holds
 * (held: the lock of the byte we hold ourselves, whose entries we may
 * take).  Returns the bytes removed.
 */
uint64_t
cache_evict(uint64_t need, const char *held)
{
	struct centry	*e;
	char		 path[WPATH_MAX];
	uint64_t	 total, freed = 0;
	size_t		 n, i;
	int		 fd;

	n = cache_list(&e, &total);
	if (total + need <= W->cfg.cache_max) {
		free(e);
		return 0;
	}
	qsort(e, n, sizeof *e, cache_cmp_used);
	for (i = 0; i < n && total + need > W->cfg.cache_max; i++) {
		int mine = held != NULL && strncmp(e[i].name, held, 2) == 0;

		if (!mine && (fd = cache_lock(e[i].name, LOCK_EX | LOCK_NB)) < 0)
			continue;
		cache_path(path, sizeof path, e[i].name);
		if (unlink(path) == 0) {
			total -= e[i].size;
			freed += e[i].size;
			log_verbose("cache: evicted %.12s (%llu bytes)",
			    e[i].name, (unsigned long long)e[i].size);
		}
		if (!mine)
			close(fd);
	}
	free(e);
	return freed;
}

/* Marks an entry used now (its atime), its mtime kept. */
static void
cache_touch(const char *path)
{
	struct timespec	ts[2];

	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_NOW;
	ts[1].tv_sec = CACHE_MTIME;
	ts[1].tv_nsec = 0;
	(void)utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

/* The entry as it was made: a regular file of size bytes, read-only, with
 * the cache's mtime. */
static int
cache_entry_ok(const char *path, uint64_t size, int *changed)
{
	struct stat	st;

	*changed = 0;
	if (lstat(path, &st) < 0)
		return 0;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size == size &&
	    st.st_mtim.tv_sec == CACHE_MTIME && (st.st_mode & 0222) == 0)
		return 1;
	*changed = 1;
	return 0;
}

/*
 * Downloads blob hex into a new entry.  Returns 0, or -1 with why (the
 * caller frees).
 */
static int
cache_fetch(struct xfer *x, const char *hex, uint64_t size,
    const char *path, const char *jobid, char **why)
{
	struct timespec	 ts[2];
	char		 tmp[WPATH_MAX], a[32];
	uint64_t	 t0 = mono_ms(), ms;
	int		 fd, e;

	cache_evict(size, hex);
	snprintf(tmp, sizeof tmp, "%s/tmp/%s.%d", W->cfg.cache_dir, hex,
	    (int)getpid());
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		*why = xprintf("cache %s: %s", W->cfg.cache_dir,
		    strerror(errno));
		return -1;
	}
	/* A full disk shows now, not after a gigabyte on the wire. */
	if (size > 0 && fallocate(fd, 0, 0, (off_t)size) < 0 &&
	    (errno == ENOSPC || errno == EDQUOT)) {
		e = errno;
		close(fd);
		(void)unlink(tmp);
		*why = xprintf("cache %s: %s (a blob of %llu bytes)",
		    W->cfg.cache_dir, strerror(e), (unsigned long long)size);
		return -1;
	}
	if (xfer_download(x, hex, size, fd, NULL, NULL) < 0) {
		close(fd);
		(void)unlink(tmp);
		if (strcmp(x->code, "nospace") == 0)
			*why = xprintf("cache %s: %s", W->cfg.cache_dir, x->err);
		else if (strcmp(x->code, "not-found") == 0)
			*why = xprintf("blob %s is not on the broker (%s)", hex,
			    x->err);
		else
			*why = xprintf("fetching blob %s: %s", hex, x->err);
		return -1;
	}
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_NOW;
	ts[1].tv_sec = CACHE_MTIME;
	ts[1].tv_nsec = 0;
	if (fchmod(fd, 0444) < 0 || futimens(fd, ts) < 0 || close(fd) < 0 ||
	    rename(tmp, path) < 0) {
		e = errno;
		(void)unlink(tmp);
		*why = xprintf("cache %s: %s", W->cfg.cache_dir, strerror(e));
		return -1;
	}
	ms = mono_ms() - t0;
	snprintf(a, sizeof a, "%.1f", ms ? (double)size / 1e3 / (double)ms :
	    0.0);
	log_info("job %s: fetched blob %.12s (%llu bytes) in %llu ms, %s "
	    "MB/s", jobid, hex, (unsigned long long)size,
	    (unsigned long long)ms, a);
	return 0;
}

/*
 * The cache entry of blob hex (size bytes), fetched first if the cache
 * lacks it: its path in path, and its lock's descriptor (the caller lays
 * the file, then closes it).  Returns the descriptor, or -1 with why.
 */
int
cache_get(struct xfer *x, const char *hex, uint64_t size, char *path,
    size_t len, const char *jobid, char **why)
{
	int	lock, changed;

	if ((lock = cache_lock(hex, LOCK_EX)) < 0) {
		*why = xprintf("cache %s: cannot lock: %s", W->cfg.cache_dir,
		    strerror(errno));
		return -1;
	}
	cache_path(path, len, hex);
	if (cache_entry_ok(path, size, &changed)) {
		cache_touch(path);
		log_verbose("job %s: blob %.12s from the cache", jobid, hex);
		return lock;
	}
	if (changed) {
		log_warn("cache: entry %s was changed (by a job, through a "
		    "hard link?); fetching it again", path);
		(void)unlink(path);
	}
	if (cache_fetch(x, hex, size, path, jobid, why) < 0) {
		close(lock);
		return -1;
	}
	return lock;
}
