/*
 * cmd-fetch.c: simq fetch, the files a job's --collect kept.
 *
 * STATUS says what a job collected (got=HASH:SIZE:MODE:NAME); each file
 * is downloaded (GET, xfer.c) into a temporary file next to where it
 * goes, its hash checked, and only then renamed into place: a file that
 * simq fetch wrote is the file the job wrote, and an interrupted fetch
 * leaves no half file under the real name.  The names are checked again
 * here (a relative path, no ..), so nothing is written outside DIR.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileword.h"
#include "simq.h"
#include "xfer.h"

static int	cmd_fetch_exec(int, char **);

const struct simq_cmd cmd_fetch_entry = {
	"fetch",
	"[-o DIR] ID...",
	"download the files a job collected (submit --collect)",
	"Writes each file a job's --collect kept into DIR under its name,\n"
	"checked against its SHA-256, and prints the path of each.  An\n"
	"array's tasks each get DIR/INDEX/.  A file already there is\n"
	"replaced.  Exits 1 if there was nothing to fetch (the job has not\n"
	"ended, or collected nothing).\n\n"
	"  -o, --output DIR        write into DIR (default: the current "
	"directory)\n",
	cmd_fetch_exec
};

static const struct option fetch_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ NULL, 0, NULL, 0 }
};

/* mkdir -p of path's parents, below (and with) the existing dir. */
static void
fetch_parents(const char *path)
{
	char	*buf = xstrdup(path), *p;

	for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(buf, 0777) < 0 && errno != EEXIST)
			die(EXIT_USAGE, "cannot make the directory %s (%s)",
			    buf, strerror(errno));
		*p = '/';
	}
	free(buf);
}

struct fetch {
	struct xfer	*x;
	const char	*dir;
	struct json	*j;
	unsigned	 nfiles;
	uint64_t	 bytes;
};

/* One file of job id into sub (DIR or DIR/INDEX). */
static void
fetch_one(struct fetch *fe, const char *id, const char *sub,
    const struct fileword *fw)
{
	char	*path, *tmp, *slash, sz[FMT_MAX];
	int	 fd, e;

	path = xprintf("%s/%s", sub, fw->name);
	fetch_parents(path);
	slash = strrchr(path, '/');
	tmp = xprintf("%.*s/.%s.simq-XXXXXX", (int)(slash - path), path,
	    slash + 1);
	if ((fd = mkstemp(tmp)) < 0)
		die(EXIT_USAGE, "cannot write into %.*s (%s)", (int)(slash -
		    path), path, strerror(errno));
	if (fe->x == NULL)
		fe->x = files_xfer();
	if (xfer_download(fe->x, fw->hex, fw->size, fd, NULL, NULL) < 0) {
		/* Freed here: nothing holds it once die() exits. */
		(void)unlink(tmp);
		free(tmp);
		die(EXIT_USAGE, "cannot fetch %s of job %s (%s): %s", fw->name,
		    id, fmt_size(sz, fw->size), fe->x->err);
	}
	if (fchmod(fd, fw->mode & ~(mode_t)0022) < 0 || close(fd) < 0 ||
	    rename(tmp, path) < 0) {
		e = errno;
		(void)unlink(tmp);
		free(tmp);
		die(EXIT_USAGE, "cannot write %s (%s)", path, strerror(e));
	}
	if (fe->j != NULL) {
		json_object(fe->j);
		json_key(fe->j, "id");
		json_cstr(fe->j, id);
		json_key(fe->j, "name");
		json_cstr(fe->j, fw->name);
		json_key(fe->j, "size");
		json_uint(fe->j, fw->size);
		json_key(fe->j, "path");
		json_cstr(fe->j, path);
		json_end(fe->j);
	} else
		printf("%s\n", path);
	fe->nfiles++;
	fe->bytes += fw->size;
	free(tmp);
	free(path);
}

/* A job's or task's collected files; returns how many it had. */
static int
fetch_item(struct fetch *fe, const struct item *it, const char *sub)
{
	struct fileword	 fw;
	const char	*id = item_get(it, "id");
	int		 k, n = 0;

	for (k = 0; k < it->nkv; k++) {
		if (strcmp(it->kv[k].key, "got") != 0)
			continue;
		if (fileword_parse(it->kv[k].val, &fw) < 0) {
			error_say("job %s: a collected file the broker "
			    "describes as '%.80s', which is not a file word; "
			    "left out", id, it->kv[k].val);
			continue;
		}
		fetch_one(fe, id, sub, &fw);
		n++;
	}
	for (k = 0; k < it->nkv; k++) {
		if (strcmp(it->kv[k].key, "nomatch") == 0)
			error_say("job %s: nothing matched --collect '%s'", id,
			    it->kv[k].val);
		else if (strcmp(it->kv[k].key, "collerr") == 0)
			error_say("job %s: not collected: %s", id,
			    it->kv[k].val);
	}
	return n;
}

/* The ids of an array's tasks, from its spec. */
static char **
fetch_task_ids(const struct item *arr, int *n)
{
	struct array_spec	 spec;
	const char		*s = item_get(arr, "spec");
	char			**ids;
	uint64_t		 k, count;
	int			 i = 0;

	if (s == NULL || proto_parse_array(s, strlen(s), &spec) < 0)
		die(EXIT_USAGE, "array %s: the broker sent no usable spec",
		    item_get(arr, "id"));
	count = proto_array_count(&spec);
	ids = xreallocarray(NULL, count ? count : 1, sizeof *ids);
	for (k = spec.first; k <= spec.last && (uint64_t)i < count;
	    k += spec.step) {
		ids[i++] = xprintf("%s_%llu", item_get(arr, "id"),
		    (unsigned long long)k);
		if (spec.step == 0)
			break;
	}
	*n = i;
	return ids;
}

static int
fetch_id(struct fetch *fe, struct conn *c, const char *id)
{
	struct reply	*r, *tasks;
	const struct item *it;
	char		**ids, *sub;
	int		 n, i, got = 0, unfinished = 0;

	r = status_fetch(c, (char **)&id, 1, -1, 0);
	it = &r->items[0];
	if (item_is(it, "missing")) {
		status_missing(c, r);
		reply_free(r);
		return -1;
	}
	if (item_is(it, "array")) {
		ids = fetch_task_ids(it, &n);
		tasks = status_fetch(c, ids, n, -1, 0);
		for (i = 0; i < n; i++) {
			const struct item *t = &tasks->items[i];
			const char *us;

			if (!item_is(t, "job"))
				continue;
			if (!jobview_finished(t)) {
				unfinished++;
				continue;
			}
			us = strchr(ids[i], '_');
			sub = xprintf("%s/%s", fe->dir, us + 1);
			got += fetch_item(fe, t, sub);
			free(sub);
		}
		for (i = 0; i < n; i++)
			free(ids[i]);
		free(ids);
		reply_free(tasks);
		if (unfinished > 0)
			error_say("array %s: %d task%s not finished yet; fetch "
			    "again when %s", id, unfinished, unfinished == 1 ?
			    " is" : "s are", unfinished == 1 ? "it has" :
			    "they have");
	} else if (!jobview_finished(it)) {
		error_say("job %s is %s: its files are collected when it "
		    "ends", id, item_get(it, "state"));
		unfinished = 1;
	} else
		got = fetch_item(fe, it, fe->dir);
	if (got == 0 && unfinished == 0)
		error_say("%s %s collected no files%s", item_is(it, "array") ?
		    "array" : "job", id, item_get(it, "collect") == NULL &&
		    !item_is(it, "array") ? " (it was submitted without "
		    "--collect)" : "");
	reply_free(r);
	return got;
}

static int
cmd_fetch_exec(int argc, char **argv)
{
	struct fetch	 fe;
	struct conn	*c;
	struct json	 j;
	struct buf	 b;
	struct stat	 st;
	int		 ch, i, total = 0, bad = 0, n;

	memset(&fe, 0, sizeof fe);
	fe.dir = ".";
	while ((ch = simq_getopt(argc, argv, "o:", fetch_opts,
	    &cmd_fetch_entry)) != -1) {
		switch (ch) {
		case 'o':
			if (*optarg == '\0')
				die(EXIT_USAGE, "-o needs a directory");
			fe.dir = optarg;
			break;
		default:
			simq_usage(&cmd_fetch_entry);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		simq_usage_why(&cmd_fetch_entry, "fetch needs a job id");
	ids_check(argv, argc);
	if (stat(fe.dir, &st) < 0) {
		if (errno != ENOENT || mkdir(fe.dir, 0777) < 0)
			die(EXIT_USAGE, "-o %s: %s", fe.dir, strerror(errno));
	} else if (!S_ISDIR(st.st_mode))
		die(EXIT_USAGE, "-o %s: not a directory", fe.dir);
	c = simq_connect(0);
	if (cfg.json) {
		simq_json_begin(&j, &b);
		json_key(&j, "files");
		json_array(&j);
		fe.j = &j;
	}
	for (i = 0; i < argc; i++) {
		if ((n = fetch_id(&fe, c, argv[i])) < 0)
			bad = 1;
		else
			total += n;
	}
	if (cfg.json) {
		json_end(&j);
		simq_json_print(&j, &b);
	}
	xfer_free(fe.x);
	conn_close(c);
	if (bad)
		return EXIT_USAGE;
	return total > 0 ? EXIT_OK : EXIT_FAILED;
}
