/*
 * cmd-submit.c: simq submit, one job, one array, or a batch of commands.
 *
 * Every option is checked here, before connecting, so a typo is reported
 * with the flag's name and the form it wants, and nothing half-done
 * reaches the broker.  A batch file is split (split.c) completely before
 * anything is sent: a quoting error on line 900 submits nothing.  The
 * batch then goes in BATCH requests of at most SIMQ_BATCH_JOBS_MAX
 * commands and SIMQ_BATCH_MAX bytes each (the broker keeps each request
 * to a few milliseconds of work), whose "OK FIRST COUNT" replies give the
 * ids in order.
 */
#include <sys/stat.h>
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simq.h"

static int	cmd_submit_exec(int, char **);

const struct simq_cmd cmd_submit_entry = {
	"submit",
	"[-q QUEUE] [-p PRIO] [-t TIMEOUT] [-r RETRIES] [--after IDS]\n"
	"            [--array SPEC] [--delay D] [--name NAME] [-e K=V]... "
	"[-C DIR]\n"
	"            [--cpus N] [--gpus N] [--mem SIZE]\n"
	"            [-o PATTERN] [--export ALL|NONE|VAR,...] [--no-check] "
	"[--wait]\n"
	"            [--file PATH[:NAME]]... [--collect GLOB]... -- CMD [ARG...]\n"
	"       simq submit [OPTIONS] --batch FILE\n"
	"       simq submit [OPTIONS] --each-line FILE -- CMD [ARG...]",
	"submit a job, an array of jobs, or a batch of commands",
	"Prints the new job's id alone on stdout; with --batch, one id per\n"
	"command, in order.  The job runs CMD without a shell, in the current\n"
	"directory unless -C says otherwise, with this environment (see\n"
	"--export) over the worker's.  CMD, -C's directory and the batch's\n"
	"commands are checked here first.\n\n"
	"  -q, --queue QUEUE       the queue (default: default)\n"
	"  -p, --priority PRIO     larger runs first, may be negative "
	"(default: 0)\n"
	"  -t, --timeout D         kill the job after D (90, 45s, 30m, 2h, 1d, "
	"1h30m)\n"
	"  -r, --retries N         re-run a failed job up to N times "
	"(0-1000)\n"
	"      --after IDS         run when all these jobs are done "
	"(17,18,19_3);\n"
	"                          any:ID once ID finished however, failed:ID "
	"once\n"
	"                          it failed or was canceled (ok:ID: done)\n"
	"      --after-any IDS     as --after any:ID,...\n"
	"      --after-failed IDS  as --after failed:ID,...\n"
	"      --array SPEC        an array of tasks A-B[:STEP][%MAX]; each {} "
	"in the\n"
	"                          command becomes the task's index\n"
	"      --delay D           queue the job only after D\n"
	"      --name NAME         a label shown by status and list\n"
	"  -e, --env K=V           add to the job's environment (K alone: "
	"copy it\n"
	"                          from here); may repeat\n"
	"      --export WHAT       what of this environment the job gets: ALL "
	"(the\n"
	"                          default, or $SIMQ_EXPORT), NONE, or "
	"VAR,VAR=VALUE,...\n"
	"      --no-check          submit CMD and -C DIR even if they are not "
	"here\n"
	"  -C, --chdir DIR         run in DIR (default: the current "
	"directory)\n"
	"      --cpus N            each job needs N CPUs (default 1): it runs "
	"on a\n"
	"                          worker with N free, with SIMQ_CPUS and\n"
	"                          OMP_NUM_THREADS set to N\n"
	"      --gpus N            each job needs N GPUs (default 0), named in "
	"its\n"
	"                          CUDA_VISIBLE_DEVICES\n"
	"      --mem SIZE          each job needs SIZE of memory (512M, 4G), "
	"its\n"
	"                          limit on the worker\n"
	"  -o, --output PATTERN    keep full output on the worker at PATTERN "
	"(%A: id,\n"
	"                          %a: index)\n"
	"  -w, --wait              wait for the jobs, as simq wait does (status "
	"has\n"
	"                          no -w: its --watch is long only)\n"
	"  -b, --batch FILE        one command per line of FILE (- for "
	"stdin), split\n"
	"                          as a shell would split it\n"
	"  -f, --file PATH[:NAME]  send PATH (a file, or a directory and all "
	"under it)\n"
	"                          with the job, as NAME (default: its last "
	"part); the\n"
	"                          job then runs in a fresh directory of its "
	"own\n"
	"                          ($SIMQ_WORKDIR) holding these files; may "
	"repeat\n"
	"      --collect GLOB      after the job, keep the files of its "
	"directory that\n"
	"                          match (simq fetch gets them); may repeat\n"
	"      --each-line FILE    an array with a task per line of FILE (- for\n"
	"                          stdin); each {} becomes the line, also in\n"
	"                          $SIMQ_ENTRY\n",
	cmd_submit_exec
};

enum {
	OPT_AFTER = OPT_CMD_BASE,
	OPT_AFTER_ANY,
	OPT_AFTER_FAILED,
	OPT_ARRAY,
	OPT_DELAY,
	OPT_NAME,
	OPT_EXPORT,
	OPT_NO_CHECK,
	OPT_EACH_LINE,
	OPT_CPUS,
	OPT_GPUS,
	OPT_MEM,
	OPT_COLLECT,
};

static const struct option submit_opts[] = {
	{ "queue", required_argument, NULL, 'q' },
	{ "priority", required_argument, NULL, 'p' },
	{ "timeout", required_argument, NULL, 't' },
	{ "retries", required_argument, NULL, 'r' },
	{ "after", required_argument, NULL, OPT_AFTER },
	{ "after-any", required_argument, NULL, OPT_AFTER_ANY },
	{ "after-failed", required_argument, NULL, OPT_AFTER_FAILED },
	{ "array", required_argument, NULL, OPT_ARRAY },
	{ "delay", required_argument, NULL, OPT_DELAY },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "env", required_argument, NULL, 'e' },
	{ "chdir", required_argument, NULL, 'C' },
	{ "output", required_argument, NULL, 'o' },
	{ "wait", no_argument, NULL, 'w' },
	{ "batch", required_argument, NULL, 'b' },
	{ "export", required_argument, NULL, OPT_EXPORT },
	{ "no-check", no_argument, NULL, OPT_NO_CHECK },
	{ "each-line", required_argument, NULL, OPT_EACH_LINE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "gpus", required_argument, NULL, OPT_GPUS },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "file", required_argument, NULL, 'f' },
	{ "collect", required_argument, NULL, OPT_COLLECT },
	{ NULL, 0, NULL, 0 }
};

#define DURATION_FORMS	"use a duration like 90, 45s, 30m, 2h, 1d or 1h30m"

static uint64_t
submit_duration(const char *flag, const char *s)
{
	uint64_t	ms;

	if (proto_parse_duration(s, &ms) < 0)
		die(EXIT_USAGE, "bad %s '%s': " DURATION_FORMS, flag, s);
	return ms;
}

/*
 * Checks a list of --after (kind NULL: each id may say its own, ok:17,
 * any:18, failed:19_3), --after-any or --after-failed (kind "any" or
 * "failed"), and appends it to *list as after= wants it.  Returns the
 * number of ids.
 */
static int
submit_after(const char *flag, const char *kind, const char *s, char **list)
{
	struct simq_id	 id;
	const char	*p = s, *c, *colon, *k;
	size_t		 len;
	char		*tmp;
	int		 n = 0, i;

	for (;;) {
		c = strchr(p, ',');
		len = c ? (size_t)(c - p) : strlen(p);
		k = kind;
		if (kind == NULL && (colon = memchr(p, ':', len)) != NULL) {
			for (i = 0; i < SIMQ_DEP__COUNT; i++) {
				k = proto_depkind_name(i);
				if (strlen(k) == (size_t)(colon - p) &&
				    memcmp(p, k, strlen(k)) == 0)
					break;
			}
			if (i == SIMQ_DEP__COUNT)
				die(EXIT_USAGE, "bad %s '%s': a kind is ok, any "
				    "or failed, like ok:17,any:18", flag, s);
			len -= (size_t)(colon - p) + 1;
			p = colon + 1;
		}
		if (proto_parse_id(p, len, &id) < 0)
			die(EXIT_USAGE, "bad %s '%s': use job ids separated by "
			    "commas, like 17,18,19_3%s", flag, s, kind == NULL ?
			    " (each may start ok:, any: or failed:)" : "");
		tmp = xprintf("%s%s%s%s%.*s", *list ? *list : "",
		    *list ? "," : "", k && strcmp(k, "ok") != 0 ? k : "",
		    k && strcmp(k, "ok") != 0 ? ":" : "", (int)len, p);
		free(*list);
		*list = tmp;
		n++;
		if (c == NULL)
			return n;
		p = c + 1;
	}
}

/* -e K=V, or -e K to pass on K's value here. */
static char *
submit_env(const char *s)
{
	const char	*eq = strchr(s, '='), *v;
	char		*kv;

	if (eq == s || *s == '\0')
		die(EXIT_USAGE, "bad -e '%s': use NAME=VALUE, or NAME to pass "
		    "on its value here", s);
	if (strncmp(s, "SIMQ_TOKEN", 10) == 0 && (s[10] == '\0' ||
	    s[10] == '='))
		die(EXIT_USAGE, "-e SIMQ_TOKEN: the token would be stored in the "
		    "job's record, where anyone who can read the journal or "
		    "run simq status -l sees it; it is never sent with a job");
	if (eq != NULL)
		return xstrdup(s);
	if ((v = getenv(s)) == NULL)
		die(EXIT_USAGE, "-e %s: %s is not set here; use -e %s=VALUE", s,
		    s, s);
	kv = xprintf("%s=%s", s, v);
	return kv;
}

/*
 * The current directory as the shell shows it: $PWD when it names this
 * directory (it keeps the symbolic links the user went through, which
 * the workers are likelier to share than the paths they lead to), else
 * getcwd().  The caller frees.
 */
static char *
submit_cwd(void)
{
	const char	*pwd = getenv("PWD");
	struct stat	 a, b;
	char		*cwd;

	if (pwd != NULL && pwd[0] == '/' && stat(pwd, &a) == 0 &&
	    stat(".", &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return xstrdup(pwd);
	if ((cwd = getcwd(NULL, 0)) == NULL)
		die(EXIT_USAGE, "cannot tell the current directory (%s); use "
		    "-C DIR", strerror(errno));
	return cwd;
}

/* DIR made absolute against the current directory (not resolved: the
 * path is the worker's, which may see other links). */
static char *
submit_dir(const char *dir)
{
	char	*cwd, *abs;

	if (dir != NULL && dir[0] == '/')
		return xstrdup(dir);
	cwd = submit_cwd();
	if (dir == NULL || strcmp(dir, ".") == 0)
		return cwd;
	if (strncmp(dir, "./", 2) == 0)
		dir += 2;
	abs = xprintf("%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", dir);
	free(cwd);
	return abs;
}

extern char	**environ;

/* The environment a job gets: -e's, then --export's, names not repeated. */
struct submit_env {
	char		**kv;
	int		  n;
};

static int
env_has_name(const struct submit_env *e, const char *kv)
{
	size_t	len = strcspn(kv, "=");
	int	i;

	for (i = 0; i < e->n; i++)
		if (strncmp(e->kv[i], kv, len) == 0 && e->kv[i][len] == '=')
			return 1;
	return 0;
}

static void
env_push(struct submit_env *e, char *kv)
{
	if (env_has_name(e, kv)) {
		free(kv);
		return;
	}
	e->kv = xreallocarray(e->kv, (size_t)e->n + 1, sizeof *e->kv);
	e->kv[e->n++] = kv;
}

/*
 * --export WHAT: ALL (this environment, but for what export_skips()
 * leaves out), NONE, or a list of NAME (its value here) and NAME=VALUE,
 * which ALL may head ("ALL,OMP_NUM_THREADS=4").
 */
static void
submit_export(struct submit_env *e, const char *what)
{
	char	*list, *p, *tok, **ep;
	int	 all = 0, none = 0;

	if (*what == '\0')
		die(EXIT_USAGE, "--export needs ALL, NONE or a list of "
		    "variables like PYTHONPATH,OMP_NUM_THREADS=4");
	list = xstrdup(what);
	for (p = list; (tok = strsep(&p, ",")) != NULL;) {
		if (strcmp(tok, "ALL") == 0)
			all = 1;
		else if (strcmp(tok, "NONE") == 0)
			none = 1;
		else if (*tok == '\0' || *tok == '=')
			die(EXIT_USAGE, "bad --export '%s': use ALL, NONE or "
			    "VAR,VAR=VALUE,...", what);
		else
			env_push(e, submit_env(tok));
	}
	free(list);
	if (all && none)
		die(EXIT_USAGE, "bad --export '%s': ALL and NONE cannot both "
		    "be given", what);
	if (!all)
		return;
	for (ep = environ; *ep != NULL; ep++)
		if (strchr(*ep, '=') != NULL && **ep != '=' &&
		    !export_skips(*ep))
			env_push(e, xstrdup(*ep));
}

/*
 * Checks what can be checked here of a command that will run in dir: the
 * program exists and may be run, or is on PATH.  Returns NULL, or why
 * not (the caller frees).  A word with {} (an array's index) is not
 * checked.
 */
static char *
submit_check_cmd(const char *dir, const char *prog)
{
	struct stat	 st;
	const char	*path, *p, *e;
	char		*full;
	size_t		 len;

	if (strstr(prog, "{}") != NULL)
		return NULL;
	if (strchr(prog, '/') != NULL) {
		full = prog[0] == '/' ? xstrdup(prog) :
		    xprintf("%s/%s", dir, prog);
		if (stat(full, &st) < 0) {
			free(full);
			return xprintf("%s: %s%s%s%s", prog, strerror(errno),
			    prog[0] == '/' ? "" : " (in ", prog[0] == '/' ? "" :
			    dir, prog[0] == '/' ? "" : ")");
		}
		if (S_ISDIR(st.st_mode)) {
			free(full);
			return xprintf("%s is a directory, not a program",
			    prog);
		}
		if (access(full, X_OK) < 0) {
			free(full);
			return xprintf("%s cannot be run: it has no execute "
			    "permission (chmod +x %s)", prog, prog);
		}
		free(full);
		return NULL;
	}
	if ((path = getenv("PATH")) == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; ; p = e + 1) {
		e = strchr(p, ':');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		full = xprintf("%.*s/%s", (int)(len ? len : 1), len ? p : ".",
		    prog);
		if (stat(full, &st) == 0 && !S_ISDIR(st.st_mode) &&
		    access(full, X_OK) == 0) {
			free(full);
			return NULL;
		}
		free(full);
		if (e == NULL)
			break;
	}
	full = xprintf("%s/%s", dir, prog);
	if (stat(full, &st) == 0 && !S_ISDIR(st.st_mode)) {
		free(full);
		return xprintf("%s is not on PATH: did you mean ./%s?", prog,
		    prog);
	}
	free(full);
	return xprintf("%s: command not found on PATH", prog);
}

/* -C's directory must be one, here. */
static void
submit_check_dir(const char *dir, const char *given)
{
	struct stat	st;

	if (stat(dir, &st) < 0)
		die(EXIT_USAGE, "-C %s: %s; if it exists only on the workers, "
		    "add --no-check", given, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		die(EXIT_USAGE, "-C %s: not a directory", given);
}

/* The whole of FILE, or of stdin for "-". */
static void
submit_read(const char *path, struct buf *b)
{
	FILE	*f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	size_t	 n;

	if (f == NULL)
		die(EXIT_USAGE, "cannot read the batch file %s (%s)", path,
		    strerror(errno));
	do {
		buf_reserve(b, 65536);
		n = fread(b->p + b->len, 1, b->cap - b->len, f);
		b->len += n;
	} while (n > 0);
	if (ferror(f))
		die(EXIT_USAGE, "cannot read the batch file %s (%s)", path,
		    strerror(errno));
	if (f != stdin)
		fclose(f);
}

/* A batch's bodies: the commands encoded as lines, cut at
 * SIMQ_BATCH_MAX bytes or SIMQ_BATCH_JOBS_MAX commands. */
struct submit_batch {
	struct buf	*body;
	size_t		*count;		/* commands in each body */
	size_t		 nbodies;
	size_t		 total;
};

/* Errors in a batch file listed one per line before "and N more". */
#define SUBMIT_ERRORS_MAX	20

static void
submit_batch_error(const char *path, unsigned *nerr, const char *fmt, ...)
    PRINTFLIKE(3, 4);

static void
submit_batch_error(const char *path, unsigned *nerr, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	if (++*nerr > SUBMIT_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	log_warn("%s: %s", strcmp(path, "-") == 0 ? "stdin" : path,
	    s != NULL ? s : "?");
	free(s);
}

static void
submit_split(const char *path, struct submit_batch *sb, const char *dir,
    int check)
{
	struct split	 sp;
	struct buf	 text, line;
	char		**argv, *why, *last = NULL, *lastwhy = NULL;
	unsigned	  nerr = 0;
	int		  argc, r, i;

	buf_init(&text);
	submit_read(path, &text);
	buf_init(&line);
	split_init(&sp, (char *)text.p, text.len);
	memset(sb, 0, sizeof *sb);
	for (;;) {
		if ((r = split_next(&sp, &argv, &argc)) == 0)
			break;
		if (r < 0) {
			submit_batch_error(path, &nerr, "%s", sp.err);
			if (split_skip(&sp) < 0)
				break;
			continue;
		}
		if (check) {
			/* A sweep runs one program many times: check it
			 * once. */
			if (last == NULL || strcmp(last, argv[0]) != 0) {
				free(last);
				free(lastwhy);
				last = xstrdup(argv[0]);
				lastwhy = submit_check_cmd(dir, argv[0]);
			}
			if ((why = lastwhy) != NULL)
				submit_batch_error(path, &nerr, "line %u: %s",
				    sp.lineno, why);
		}
		buf_reset(&line);
		for (i = 0; i < argc; i++)
			req_word(&line, argv[i]);
		buf_put_u8(&line, '\n');
		split_free(argv);
		if (line.len > SIMQ_BATCH_MAX)
			die(EXIT_USAGE, "%s: line %u: the command is longer "
			    "than a batch may be (%u bytes)", path, sp.lineno,
			    SIMQ_BATCH_MAX);
		if (sb->nbodies == 0 || sb->body[sb->nbodies - 1].len +
		    line.len > SIMQ_BATCH_MAX ||
		    sb->count[sb->nbodies - 1] == SIMQ_BATCH_JOBS_MAX) {
			sb->body = xreallocarray(sb->body, sb->nbodies + 1,
			    sizeof *sb->body);
			sb->count = xreallocarray(sb->count, sb->nbodies + 1,
			    sizeof *sb->count);
			buf_init(&sb->body[sb->nbodies]);
			sb->count[sb->nbodies] = 0;
			sb->nbodies++;
		}
		buf_put(&sb->body[sb->nbodies - 1], line.p, line.len);
		sb->count[sb->nbodies - 1]++;
		sb->total++;
	}
	free(last);
	free(lastwhy);
	if (nerr > SUBMIT_ERRORS_MAX)
		log_warn("... and %u more errors", nerr - SUBMIT_ERRORS_MAX);
	if (nerr > 0)
		die(EXIT_USAGE, "nothing was submitted: %u bad line%s in %s%s",
		    nerr, nerr == 1 ? "" : "s", strcmp(path, "-") == 0 ?
		    "stdin" : path, check ? " (--no-check skips the check "
		    "of the programs)" : "");
	if (sb->total == 0)
		die(EXIT_USAGE, "%s holds no command: write one command per "
		    "line", strcmp(path, "-") == 0 ? "stdin" : path);
	buf_free(&line);
	buf_free(&text);
}

/* Batches from this size on show their upload on a terminal: below it,
 * sending takes no time a person would notice. */
#define SUBMIT_BAR_MIN		(4u << 20)
#define SUBMIT_BAR_STEP		(1u << 20)

/*
 * Sends a BATCH: its line in head, then the body, then reads the reply.
 * A large body goes a piece at a time with a bar on a terminal, then a
 * note while the broker stores the jobs (it answers once they are on
 * disk).
 */
static struct reply *
submit_send(struct conn *c, struct buf *head, const struct buf *body,
    size_t njobs)
{
	struct reply	*r;
	char		 a[FMT_MAX], b[FMT_MAX];
	size_t		 off, n;
	int		 bar = cfg.progress && body->len >= SUBMIT_BAR_MIN;

	buf_put(head, body->p, body->len);
	buf_put(head, "\r\n", 2);
	if (!bar) {
		conn_send(c, head->p, head->len);
		return conn_read(c);
	}
	for (off = 0; off < head->len; off += n) {
		n = head->len - off < SUBMIT_BAR_STEP ? head->len - off :
		    SUBMIT_BAR_STEP;
		conn_send(c, head->p + off, n);
		fprintf(stderr, "\rsimq: sending %zu jobs: %s of %s\033[K",
		    njobs, fmt_size(a, off + n), fmt_size(b, head->len));
		fflush(stderr);
	}
	fprintf(stderr, "\rsimq: sent %zu jobs (%s); the broker is storing "
	    "them\033[K", njobs, fmt_size(a, head->len));
	fflush(stderr);
	r = conn_read(c);
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	return r;
}

/* Appends the option words (already encoded) to a request. */
static void
submit_opts_put(struct buf *req, const struct buf *opts)
{
	if (opts->len == 0)
		return;
	buf_put_u8(req, ' ');
	buf_put(req, opts->p, opts->len);
}

static char *
submit_id(uint64_t id)
{
	char	buf[32];

	proto_format_id(buf, id, SIMQ_NOINDEX);
	return xstrdup(buf);
}

/*
 * The program check of a job with files: it runs in a fresh directory
 * holding only them, so a relative program must be one of them (and
 * executable); a program on PATH is checked as usual.
 */
static char *
submit_check_shipped(const struct sfiles *fs, const char *dir,
    const char *prog)
{
	const struct sfile	*f;
	const char		*name = prog;

	if (fs->n == 0 && fs->ncollect == 0)
		return submit_check_cmd(dir, prog);
	if (strchr(prog, '/') == NULL || prog[0] == '/' ||
	    strstr(prog, "{}") != NULL)
		return submit_check_cmd(dir, prog);
	while (strncmp(name, "./", 2) == 0)
		name += 2;
	if ((f = files_find(fs, name)) == NULL)
		return xprintf("%s is not among the --file names, and the job "
		    "runs in a fresh directory that holds only those", prog);
	if (!(f->mode & 0111))
		return xprintf("%s cannot be run: %s has no execute permission "
		    "(chmod +x %s)", prog, f->path, f->path);
	return NULL;
}

static int
cmd_submit_exec(int argc, char **argv)
{
	struct buf	 opts, req;
	struct submit_batch sb;
	struct array_spec spec;
	struct conn	*c;
	struct reply	*r, *final = NULL;
	struct json	 j;
	struct buf	 out;
	char		**ids = NULL, *dir = NULL, *tmp, *after = NULL;
	const char	*batch = NULL, *queue = "default", *export, *given = NULL;
	const char	*eachline = NULL;
	struct submit_env env = { NULL, 0 };
	struct sfiles	 files = { NULL, 0, NULL, 0 };
	size_t		 nids = 0, k, i;
	int64_t		 prio;
	uint64_t	 v, first, count;
	int		 ch, wait = 0, ndeps = 0, status = EXIT_OK;
	int		 has_array = 0, check = 1;

	if ((export = getenv("SIMQ_EXPORT")) == NULL || *export == '\0')
		export = "ALL";
	buf_init(&opts);
	while ((ch = simq_getopt(argc, argv, "+q:p:t:r:e:C:o:wb:f:", submit_opts,
	    &cmd_submit_entry)) != -1) {
		switch (ch) {
		case 'q':
			if (!proto_name_ok(optarg, strlen(optarg)))
				die(EXIT_USAGE, "bad queue name '%s': use 1 to "
				    "%d letters, digits, '.', '_' or '-'",
				    optarg, SIMQ_NAME_MAX);
			req_kv(&opts, "q", optarg);
			queue = optarg;
			break;
		case 'p':
			if (proto_parse_i64(optarg, strlen(optarg),
			    SIMQ_PRIO_MIN, SIMQ_PRIO_MAX, &prio) < 0)
				die(EXIT_USAGE, "bad --priority '%s': use a "
				    "whole number from %d to %d", optarg,
				    SIMQ_PRIO_MIN, SIMQ_PRIO_MAX);
			req_kv(&opts, "pri", optarg);
			break;
		case 't':
			tmp = xprintf("%llu", (unsigned long long)
			    submit_duration("--timeout", optarg));
			req_kv(&opts, "timeout", tmp);
			free(tmp);
			break;
		case OPT_DELAY:
			tmp = xprintf("%llu", (unsigned long long)
			    submit_duration("--delay", optarg));
			req_kv(&opts, "delay", tmp);
			free(tmp);
			break;
		case 'r':
			if (proto_parse_u64(optarg, strlen(optarg),
			    SIMQ_RETRIES_MAX, &v) < 0)
				die(EXIT_USAGE, "bad --retries '%s': use a "
				    "number from 0 to %d", optarg,
				    SIMQ_RETRIES_MAX);
			req_kv(&opts, "retries", optarg);
			break;
		case OPT_AFTER:
			ndeps += submit_after("--after", NULL, optarg, &after);
			break;
		case OPT_AFTER_ANY:
			ndeps += submit_after("--after-any", "any", optarg,
			    &after);
			break;
		case OPT_AFTER_FAILED:
			ndeps += submit_after("--after-failed", "failed", optarg,
			    &after);
			break;
		case OPT_ARRAY:
			if (proto_parse_array(optarg, strlen(optarg),
			    &spec) < 0)
				die(EXIT_USAGE, "bad --array spec '%s': use "
				    "A-B[:STEP][%%MAX]", optarg);
			req_kv(&opts, "array", optarg);
			has_array = 1;
			break;
		case OPT_NAME:
			if (*optarg == '\0')
				die(EXIT_USAGE, "--name needs a name");
			req_kv(&opts, "name", optarg);
			break;
		case 'e':
			env_push(&env, submit_env(optarg));
			break;
		case OPT_EXPORT:
			export = optarg;
			break;
		case OPT_NO_CHECK:
			check = 0;
			break;
		case OPT_CPUS:
		case OPT_GPUS:
		case OPT_MEM:
			submit_resource(&opts, ch == OPT_CPUS ? "cpus" :
			    ch == OPT_GPUS ? "gpus" : "mem", optarg);
			break;
		case 'C':
			free(dir);
			if (*optarg == '\0')
				die(EXIT_USAGE, "-C needs a directory");
			dir = submit_dir(optarg);
			given = optarg;
			break;
		case 'o':
			req_kv(&opts, "output", optarg);
			break;
		case 'w':
			wait = 1;
			break;
		case 'b':
			batch = optarg;
			break;
		case OPT_EACH_LINE:
			eachline = optarg;
			break;
		case 'f':
			files_add(&files, optarg);
			break;
		case OPT_COLLECT:
			files_collect(&files, optarg);
			break;
		default:
			simq_usage(&cmd_submit_entry);
		}
	}
	argc -= optind;
	argv += optind;
	if (ndeps > SIMQ_DEPS_MAX)
		die(EXIT_USAGE, "--after names %d jobs; at most %d", ndeps,
		    SIMQ_DEPS_MAX);
	if (env.n > SIMQ_ENV_MAX)
		die(EXIT_USAGE, "-e given %d times; at most %d", env.n,
		    SIMQ_ENV_MAX);
	submit_export(&env, export);
	if (env.n > SIMQ_ENV_MAX)
		die(EXIT_USAGE, "the job would get %d variables of this "
		    "environment, and a job carries at most %d: use --export "
		    "with the variables it needs (PATH,PYTHONPATH,...) or "
		    "--export NONE", env.n, SIMQ_ENV_MAX);
	for (i = 0; i < (size_t)env.n; i++) {
		req_kv(&opts, "env", env.kv[i]);
		free(env.kv[i]);
	}
	free(env.kv);
	if (batch != NULL && has_array)
		die(EXIT_USAGE, "--array and --batch cannot be used together: "
		    "an array runs one command many times, a batch many "
		    "commands once");
	if (batch != NULL && argc > 0)
		die(EXIT_USAGE, "give a command or --batch FILE, not both");
	if (eachline != NULL && (has_array || batch != NULL))
		die(EXIT_USAGE, "--each-line makes an array of its own: not "
		    "with --array or --batch");
	if (eachline != NULL && argc == 0)
		simq_usage_why(&cmd_submit_entry, "--each-line needs a command "
		    "(with {} for the line)");
	if (batch == NULL && argc == 0) {
		simq_usage_why(&cmd_submit_entry,
		    "submit needs a command (or --batch FILE)");
	}
	if (after != NULL) {
		req_kv(&opts, "after", after);
		free(after);
	}
	if (files.n > 0 || files.ncollect > 0) {
		/* The job runs in a fresh directory of its own. */
		if (dir != NULL)
			die(EXIT_USAGE, "-C and --file or --collect cannot be "
			    "used together: a job with files runs in a fresh "
			    "directory of its own on the worker ($SIMQ_WORKDIR)");
		files_ready(&files);
		files_words(&files, &opts);
		dir = submit_dir(NULL);
	} else if (dir == NULL) {
		dir = submit_dir(NULL);
		req_kv(&opts, "cwd", dir);
	} else {
		if (check)
			submit_check_dir(dir, given);
		req_kv(&opts, "cwd", dir);
	}
	if (check && batch == NULL && (tmp = submit_check_shipped(&files,
	    dir, argv[0])) != NULL)
		die(EXIT_USAGE, "%s; if it is there only on the workers, add "
		    "--no-check", tmp);

	buf_init(&req);
	if (batch != NULL) {
		submit_split(batch, &sb, dir, check && files.n == 0 &&
		    files.ncollect == 0);
		files_send(&files);
		c = simq_connect(0);
		ids = xreallocarray(NULL, sb.total, sizeof *ids);
		for (k = 0; k < sb.nbodies; k++) {
			buf_reset(&req);
			req_raw(&req, "BATCH");
			submit_opts_put(&req, &opts);
			tmp = xprintf("%zu", sb.body[k].len);
			req_raw(&req, tmp);
			free(tmp);
			if (req.len + 2 > SIMQ_LINE_MAX)
				die(EXIT_USAGE, "the options and environment "
				    "are too long: %zu bytes encoded, and a "
				    "request line holds at most %d; export less "
				    "(--export VAR,...)%s", req.len,
				    SIMQ_LINE_MAX - 2, files.n > 0 ? " or send "
				    "fewer files (an archive of them)" : "");
			req_end(&req);
			r = submit_send(c, &req, &sb.body[k], sb.total);
			if (r->kind != REPLY_OK)
				conn_die_reply(c, r, k > 0 ? "the broker "
				    "refused part of the batch (the parts "
				    "before it were submitted)" :
				    "the broker refused the batch");
			if (r->nwords != 2 ||
			    proto_parse_u64(r->words[0], strlen(r->words[0]),
			    SIMQ_ID_MAX, &first) < 0 ||
			    proto_parse_u64(r->words[1], strlen(r->words[1]),
			    SIMQ_ID_MAX, &count) < 0 || count != sb.count[k])
				die(EXIT_USAGE, "unexpected reply to BATCH: "
				    "'%.60s'", r->line);
			for (i = 0; i < count; i++)
				ids[nids++] = submit_id(first + i);
			reply_free(r);
			buf_free(&sb.body[k]);
		}
		free(sb.body);
		free(sb.count);
	} else if (eachline != NULL) {
		c = simq_connect(0);
		first = submit_each_line(c, eachline, &opts, argc, argv,
		    &count);
		ids = xmalloc(sizeof *ids);
		ids[nids++] = submit_id(first);
	} else {
		req_raw(&req, "SUBMIT");
		submit_opts_put(&req, &opts);
		req_raw(&req, "--");
		for (i = 0; i < (size_t)argc; i++)
			req_word(&req, argv[i]);
		if (req.len + 2 > SIMQ_LINE_MAX)
			die(EXIT_USAGE, "the command and its environment are "
			    "too long: %zu bytes encoded, and a request holds at "
			    "most %d; put the arguments in a file, or export "
			    "less (--export VAR,...)%s", req.len,
			    SIMQ_LINE_MAX - 2, files.n > 0 ? ", or send fewer "
			    "files (an archive of them)" : "");
		files_send(&files);
		c = simq_connect(0);
		r = conn_request(c, &req);
		if (r->kind != REPLY_OK)
			conn_die_reply(c, r, "the broker refused the job");
		if (r->nwords != 1 || proto_parse_u64(r->words[0],
		    strlen(r->words[0]), SIMQ_ID_MAX, &first) < 0)
			die(EXIT_USAGE, "unexpected reply to SUBMIT: '%.60s'",
			    r->line);
		reply_free(r);
		ids = xmalloc(sizeof *ids);
		ids[nids++] = submit_id(first);
	}
	buf_free(&req);
	buf_free(&opts);
	free(dir);
	files_free(&files);
	queue_warn_unserved(c, queue);

	if (!cfg.json) {
		for (i = 0; i < nids; i++)
			printf("%s\n", ids[i]);
		fflush(stdout);
	}
	if (wait)
		status = wait_ids(&c, ids, (int)nids, 0, &final);
	if (cfg.json) {
		buf_init(&out);
		json_init(&j, &out, 1);
		json_object(&j);
		if (batch == NULL) {
			json_key(&j, "id");
			json_cstr(&j, ids[0]);
		} else {
			json_key(&j, "ids");
			json_array(&j);
			for (i = 0; i < nids; i++)
				json_cstr(&j, ids[i]);
			json_end(&j);
		}
		if (final != NULL) {
			json_key(&j, "jobs");
			status_json_jobs(&j, final);
		}
		json_end(&j);
		json_finish(&j);
		simq_print_json(&out);
		buf_free(&out);
	}
	reply_free(final);
	for (i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	conn_close(c);
	return status;
}
