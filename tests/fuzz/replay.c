/*
 * replay.c: runs a libFuzzer target without libFuzzer.
 *
 * Linked with any fuzz target, it calls LLVMFuzzerTestOneInput once for
 * every file named on the command line or found in a directory named there
 * (recursively; names starting with '.' are skipped), in sorted order so
 * runs are repeatable.  This is how `make check` replays the corpora with
 * the sanitizers on, on machines without clang.  A target that finds a bad
 * input aborts, so replay's exit status is the verdict.  If the target
 * defines LLVMFuzzerInitialize, it is called first, as libFuzzer would.
 *
 * Exit status: 0 when every input ran, 1 if a path could not be read.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***) __attribute__((weak));

static unsigned long	replay_count;

/* Reads a whole file into a buffer of exactly its size (so the
 * sanitizers see a read past its end).  Returns 0, or -1 with a message
 * printed.  The caller frees *out. */
static int
replay_read(const char *path, uint8_t **out, size_t *lenp)
{
	FILE	*f;
	uint8_t	*p = NULL, *np;
	size_t	 len = 0, cap = 0, n;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return (-1);
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((np = realloc(p, cap)) == NULL)
				goto fail;
			p = np;
		}
		n = fread(p + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f))
		goto fail;
	fclose(f);
	/* Exact size; one byte even for an empty file (malloc(0) may be
	 * NULL), which the target is not told about. */
	if ((np = malloc(len ? len : 1)) == NULL) {
		free(p);
		fprintf(stderr, "replay: %s: out of memory\n", path);
		return (-1);
	}
	memcpy(np, p, len);
	free(p);
	*out = np;
	*lenp = len;
	return (0);

fail:
	fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
	free(p);
	fclose(f);
	return (-1);
}

static int
replay_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

static int replay_path(const char *);

/* Replays every entry of a directory, sorted by name. */
static int
replay_dir(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		**names = NULL, **nn, *path;
	size_t		 n = 0, cap = 0, i;
	int		 rc = 0;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return (-1);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nn = realloc(names, cap * sizeof *names)) == NULL)
				abort();
			names = nn;
		}
		if ((names[n++] = strdup(de->d_name)) == NULL)
			abort();
	}
	closedir(d);
	qsort(names, n, sizeof *names, replay_cmp);
	for (i = 0; i < n; i++) {
		if (asprintf(&path, "%s/%s", dir, names[i]) == -1)
			abort();
		if (replay_path(path) != 0)
			rc = -1;
		free(path);
		free(names[i]);
	}
	free(names);
	return (rc);
}

static int
replay_path(const char *path)
{
	struct stat	 st;
	uint8_t		*data;
	size_t		 len;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return (-1);
	}
	if (S_ISDIR(st.st_mode))
		return (replay_dir(path));
	if (replay_read(path, &data, &len) != 0)
		return (-1);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	replay_count++;
	return (0);
}

int
main(int argc, char **argv)
{
	int	 i, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return (1);
	}
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		/* libFuzzer's own flags may be passed along: skip them. */
		if (argv[i][0] == '-')
			continue;
		if (replay_path(argv[i]) != 0)
			rc = 1;
	}
	printf("fuzz replay: %lu inputs\n", replay_count);
	return (rc);
}
