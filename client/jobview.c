/*
 * jobview.c: one job, task or array as people and programs see it.
 *
 * status, list and wait all show STATUS items, so the mapping from wire
 * keys to JSON fields and table cells lives here once.  JSON fields are
 * stable and typed: every field is present on every job (null when not
 * known), so a script never has to test for a missing key; times are
 * RFC 3339 in UTC; durations are seconds; sizes are bytes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

enum colour
state_colour(int st)
{
	switch (st) {
	case JS_WAITING:
		return C_DIM;
	case JS_QUEUED:
		return C_BLUE;
	case JS_RUNNING:
		return C_YELLOW;
	case JS_DONE:
		return C_GREEN;
	case JS_FAILED:
		return C_RED;
	case JS_CANCELED:
		return C_MAGENTA;
	}
	return C_NONE;
}

int
jobview_state(const struct item *it)
{
	const char	*s = item_get(it, "state");

	return s != NULL ? proto_state_lookup(s, strlen(s)) : -1;
}

int
jobview_finished(const struct item *it)
{
	int	st = jobview_state(it);

	return st == JS_DONE || st == JS_FAILED || st == JS_CANCELED;
}

static const char *
jobview_signame(int sig)
{
	static const struct {
		int		 sig;
		const char	*name;
	} names[] = {
		{ SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" },
		{ SIGQUIT, "SIGQUIT" }, { SIGILL, "SIGILL" },
		{ SIGABRT, "SIGABRT" }, { SIGBUS, "SIGBUS" },
		{ SIGFPE, "SIGFPE" }, { SIGKILL, "SIGKILL" },
		{ SIGSEGV, "SIGSEGV" }, { SIGPIPE, "SIGPIPE" },
		{ SIGALRM, "SIGALRM" }, { SIGTERM, "SIGTERM" },
		{ SIGUSR1, "SIGUSR1" }, { SIGUSR2, "SIGUSR2" },
		{ SIGXCPU, "SIGXCPU" }, { SIGXFSZ, "SIGXFSZ" },
	};
	size_t	i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].sig == sig)
			return names[i].name;
	return NULL;
}

/* "0", "1", "SIGKILL", "timeout" or "-". */
const char *
jobview_exit(char *buf, const struct item *it)
{
	uint64_t	 v;
	const char	*s;

	if (item_get(it, "timedout") != NULL)
		snprintf(buf, FMT_MAX, "timeout");
	else if (item_u64(it, "signal", &v) == 0) {
		if ((s = jobview_signame((int)v)) != NULL)
			snprintf(buf, FMT_MAX, "%s", s);
		else
			snprintf(buf, FMT_MAX, "signal %llu",
			    (unsigned long long)v);
	} else if (item_u64(it, "exit", &v) == 0)
		snprintf(buf, FMT_MAX, "%llu", (unsigned long long)v);
	else
		snprintf(buf, FMT_MAX, "-");
	return buf;
}

/* Why a finished job failed, for people: its reason, or how it ended,
 * with the limit a timed-out job ran into. */
const char *
jobview_why(char *buf, size_t len, const struct item *it)
{
	const char	*why = item_get(it, "reason");
	char		 e[FMT_MAX], d[FMT_MAX];
	uint64_t	 v;

	if (item_get(it, "timedout") != NULL) {
		if (item_u64(it, "timeout", &v) == 0 && v > 0)
			snprintf(buf, len, "timed out: it ran longer than its "
			    "limit of %s (submit -t)", fmt_duration(d, v));
		else
			snprintf(buf, len, "timed out");
	} else if (why != NULL && *why != '\0')
		snprintf(buf, len, "%s", why);
	else if (jobview_state(it) == JS_CANCELED)
		snprintf(buf, len, "canceled");
	else
		snprintf(buf, len, "exit %s", jobview_exit(e, it));
	return buf;
}

/* Whether the job failed before its command ran (the worker could not
 * enter its directory, open its output or run the program): then it
 * wrote nothing, and its stderr is empty.  The worker's reasons start
 * with the stage that failed. */
int
jobview_never_ran(const struct item *it)
{
	static const char *const stages[] = { "exec ", "exec:", "cwd ",
	    "cwd:", "output ", "output:", "fork", "files ", "files:",
	    NULL };
	const char	*why = item_get(it, "reason");
	int		 i;

	if (why == NULL || item_get(it, "exit") != NULL ||
	    item_get(it, "signal") != NULL)
		return 0;
	for (i = 0; stages[i] != NULL; i++)
		if (strncmp(why, stages[i], strlen(stages[i])) == 0)
			return 1;
	return 0;
}

/* Where the worker put the job's stderr: next to its stdout, x.out
 * making x.err (as simq-worker does), into b; or NULL. */
static const char *
jobview_errpath(const struct item *it, char *b, size_t len)
{
	const char	*o = item_get(it, "outpath");
	size_t		 n;

	if (o == NULL || *o == '\0')
		return NULL;
	n = strlen(o);
	if (n > 4 && strcmp(o + n - 4, ".out") == 0)
		snprintf(b, len, "%.*s.err", (int)(n - 4), o);
	else
		snprintf(b, len, "%s.err", o);
	return b;
}

/* The key as a time, or null. */
static void
jobview_json_time(struct json *j, const struct item *it, const char *key)
{
	char		b[FMT_MAX];
	uint64_t	v;

	if (item_u64(it, key, &v) == 0 && v > 0)
		json_cstr(j, fmt_iso8601(b, v));
	else
		json_null(j);
}

static void
jobview_json_num(struct json *j, const struct item *it, const char *key)
{
	uint64_t	v;

	if (item_u64(it, key, &v) == 0)
		json_uint(j, v);
	else
		json_null(j);
}

/* A string field, null when absent or empty. */
static void
jobview_json_str(struct json *j, const struct item *it, const char *key)
{
	const char	*s = item_get(it, key);

	json_cstr(j, s != NULL && *s != '\0' ? s : NULL);
}

/* The comma-separated words of s as an array of strings. */
static void
jobview_json_list(struct json *j, const char *s)
{
	char	*list, *p, *tok;

	json_array(j);
	if (s != NULL && *s != '\0') {
		list = xstrdup(s);
		for (p = list; (tok = strsep(&p, ",")) != NULL;)
			json_cstr(j, tok);
		free(list);
	}
	json_end(j);
}

/* Writes the n fields, in order, of item it. */
void
jobview_fields(struct json *j, const struct item *it,
    const struct jfield *f, size_t n)
{
	size_t	i;
	int	k;

	for (i = 0; i < n; i++) {
		json_key(j, f[i].name);
		switch (f[i].kind) {
		case JF_STR:
			jobview_json_str(j, it, f[i].key);
			break;
		case JF_NUM:
			jobview_json_num(j, it, f[i].key);
			break;
		case JF_TIME:
			jobview_json_time(j, it, f[i].key);
			break;
		case JF_LIST:
			jobview_json_list(j, item_get(it, f[i].key));
			break;
		case JF_WORDS:
			json_array(j);
			for (k = 0; k < it->nkv; k++)
				if (strcmp(it->kv[k].key, f[i].key) == 0)
					json_cstr(j, it->kv[k].val);
			json_end(j);
			break;
		case JF_FILES:
			fileview_json_files(j, it, f[i].key);
			break;
		}
	}
}

/* How long it ran (or has run so far), or 0 if it has not started.  An
 * array runs from its submission to the end of its last task. */
static uint64_t
jobview_runtime(const struct item *it, uint64_t now)
{
	uint64_t	start, end;
	int		array = item_is(it, "array");

	if (item_u64(it, array ? "submitted" : "started", &start) < 0 ||
	    start == 0)
		return 0;
	if (array && (item_num(it, "running") > 0 || jobview_finished(it)))
		end = jobview_finished(it) ? item_num(it, "finished") : now;
	else if (array)
		return 0;
	else if (item_u64(it, "finished", &end) < 0 || end < start)
		end = jobview_state(it) == JS_RUNNING ? now : start;
	return end > start ? end - start : 0;
}

void
jobview_json(struct json *j, const struct item *it)
{
	static const struct jfield head[] = {
		{ "state", "state", JF_STR },
		{ "queue", "q", JF_STR },
	}, ending[] = {
		{ "retries", "retries", JF_NUM },
		{ "exit_code", "exit", JF_NUM },
		{ "signal", "signal", JF_NUM },
	}, times[] = {
		{ "name", "name", JF_STR },
		{ "submitted", "submitted", JF_TIME },
		{ "started", "started", JF_TIME },
		{ "finished", "finished", JF_TIME },
	}, where[] = {
		{ "worker", "worker", JF_STR },
		{ "host", "host", JF_STR },
		{ "reason", "reason", JF_STR },
		{ "after", "after", JF_LIST },
		{ "due", "due", JF_TIME },
		{ "output_path", "outpath", JF_STR },
	}, how[] = {
		{ "output_pattern", "output", JF_STR },
		{ "cwd", "cwd", JF_STR },
	};
	const char	*id = item_get(it, "id"), *s, *us;
	int		 array = item_is(it, "array"), st, i;
	int64_t		 pri;
	uint64_t	 v, u, now = now_ms();

	json_object(j);
	json_key(j, "id");
	json_cstr(j, id != NULL ? id : "");
	json_key(j, "kind");
	us = id != NULL ? strchr(id, '_') : NULL;
	json_cstr(j, array ? "array" : us != NULL ? "task" : "job");
	jobview_fields(j, it, head, sizeof head / sizeof head[0]);
	json_key(j, "priority");
	s = item_get(it, "pri");
	if (s != NULL && proto_parse_i64(s, strlen(s), INT64_MIN + 1,
	    INT64_MAX, &pri) == 0)
		json_int(j, pri);
	else
		json_null(j);
	json_key(j, "attempts");
	if (array)
		json_null(j);
	else
		json_uint(j, item_num(it, "attempts"));
	jobview_fields(j, it, ending, sizeof ending / sizeof ending[0]);
	json_key(j, "timed_out");
	json_bool(j, item_get(it, "timedout") != NULL);
	jobview_fields(j, it, times, sizeof times / sizeof times[0]);
	json_key(j, "runtime");
	if ((v = jobview_runtime(it, now)) > 0 || (!array &&
	    item_get(it, "started")))
		json_millis(j, v);
	else
		json_null(j);
	jobview_fields(j, it, where, sizeof where / sizeof where[0]);
	{
		char	 eb[4096];
		int	 k;

		json_key(j, "stderr_path");
		json_cstr(j, jobview_errpath(it, eb, sizeof eb));
		jobview_fields(j, it, how, sizeof how / sizeof how[0]);
		json_key(j, "timeout");
		if (item_u64(it, "timeout", &v) == 0 && v > 0)
			json_millis(j, v);
		else
			json_null(j);
		json_key(j, "env");
		json_object(j);
		for (k = 0; k < it->nkv; k++) {
			const char *kv = it->kv[k].val, *eq;
			if (strcmp(it->kv[k].key, "env") != 0 ||
			    (eq = strchr(kv, '=')) == NULL)
				continue;
			{
				char *kn = xstrndup(kv, (size_t)(eq - kv));
				json_key(j, kn);
				free(kn);
			}
			json_str(j, eq + 1, it->kv[k].vlen -
			    (size_t)(eq + 1 - kv));
		}
		json_end(j);
	}
	json_key(j, "max_rss");
	if (item_u64(it, "maxrss", &v) == 0)
		json_uint(j, v * 1024);
	else
		json_null(j);
	json_key(j, "cpu_time");
	if (item_u64(it, "utime", &v) == 0 && item_u64(it, "stime", &u) == 0)
		json_millis(j, (v + u) / 1000);
	else
		json_null(j);
	/* What it asks for (the broker leaves out one CPU, no GPU and no
	 * memory) and, in STATUS and WAIT, why no worker could run it: the
	 * keys and values of the dashboard's /api/jobs/ID. */
	json_key(j, "cpus");
	json_uint(j, item_u64(it, "cpus", &v) == 0 ? v : 1);
	json_key(j, "gpus");
	json_uint(j, item_u64(it, "gpus", &v) == 0 ? v : 0);
	json_key(j, "mem");
	jobview_json_num(j, it, "mem");
	json_key(j, "unfit");
	if ((s = item_get(it, "unfit")) != NULL && *s != '\0')
		jobview_json_list(j, s);
	else
		json_null(j);
	json_key(j, "why");
	jobview_json_str(j, it, "why");
	if (array) {
		json_key(j, "tasks");
		json_uint(j, item_num(it, "tasks"));
		json_key(j, "counts");
		json_object(j);
		for (st = 0; st < JS__COUNT; st++) {
			json_key(j, proto_state_name(st));
			json_uint(j, item_num(it, proto_state_name(st)));
		}
		json_end(j);
		json_key(j, "spec");
		jobview_json_str(j, it, "spec");
	} else if (us != NULL) {
		json_key(j, "array");
		json_str(j, id, (size_t)(us - id));
		json_key(j, "index");
		if (proto_parse_u64(us + 1, strlen(us + 1), UINT32_MAX,
		    &v) == 0)
			json_uint(j, v);
		else
			json_null(j);
	}
	fileview_json(j, it);
	json_key(j, "command");
	json_array(j);
	for (i = 0; i < it->argc; i++)
		json_cstr(j, it->argv[i]);
	json_end(j);
	json_end(j);
}

struct table *
jobview_table(void)
{
	struct table	*t = table_new();

	table_col(t, "ID", 0);
	table_col(t, "STATE", 0);
	table_col(t, "TASKS", TABLE_ELIDE | TABLE_CUT | TABLE_DROP);
	table_col(t, "ATTEMPTS", TABLE_RIGHT | TABLE_ELIDE);
	table_col(t, "EXIT", TABLE_ELIDE);
	table_col(t, "QUEUE", TABLE_CUT);
	table_col(t, "NAME", TABLE_ELIDE | TABLE_CUT | TABLE_DROP);
	table_col(t, "WORKER", TABLE_ELIDE | TABLE_CUT);
	table_col(t, "STARTED", TABLE_ELIDE | TABLE_DROP);
	table_col(t, "ELAPSED", TABLE_RIGHT | TABLE_ELIDE);
	table_col(t, "COMMAND", TABLE_CLIP);
	return t;
}

/* "12/1000 done, 3 failed, 20 running". */
static void
jobview_tasks(char *buf, size_t len, const struct item *it)
{
	uint64_t	f = item_num(it, "failed"), r = item_num(it, "running");
	uint64_t	c = item_num(it, "canceled");
	int		n;

	n = snprintf(buf, len, "%llu/%llu done",
	    (unsigned long long)item_num(it, "done"),
	    (unsigned long long)item_num(it, "tasks"));
	if (f > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, ", %llu failed",
		    (unsigned long long)f);
	if (c > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, ", %llu canceled",
		    (unsigned long long)c);
	if (r > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ", %llu running",
		    (unsigned long long)r);
}

void
jobview_row(struct table *t, const struct item *it, uint64_t now)
{
	char		 b[FMT_MAX], tasks[160];
	const char	*s;
	uint64_t	 v;
	int		 st = jobview_state(it), array = item_is(it, "array");
	struct buf	 cmd;

	table_cell(t, C_NONE, item_get(it, "id"));
	table_cell(t, state_colour(st), item_get(it, "state"));
	if (array) {
		jobview_tasks(tasks, sizeof tasks, it);
		table_cell(t, C_NONE, tasks);
		table_cell(t, C_NONE, "-");
		table_cell(t, C_NONE, "-");
	} else {
		table_cell(t, C_NONE, "-");
		table_cellf(t, C_NONE, "%llu",
		    (unsigned long long)item_num(it, "attempts"));
		jobview_exit(b, it);
		table_cell(t, strcmp(b, "0") == 0 ? C_NONE : strcmp(b, "-") ==
		    0 ? C_NONE : C_RED, b);
	}
	table_cell(t, C_NONE, item_get(it, "q"));
	s = item_get(it, "name");
	table_cell(t, C_NONE, s != NULL && *s != '\0' ? s : "-");
	/* The worker's name says which of a host's workers ran it; the
	 * host is the fallback of a broker that sent none. */
	if ((s = item_get(it, "worker")) == NULL || *s == '\0')
		s = item_get(it, "host");
	table_cell(t, C_NONE, s != NULL && *s != '\0' ? s : "-");
	if (item_u64(it, "started", &v) == 0 && v > 0)
		table_cell(t, C_NONE, fmt_time(b, v, now));
	else
		table_cell(t, C_NONE, "-");
	if ((v = jobview_runtime(it, now)) > 0)
		table_cell(t, C_NONE, fmt_duration(b, v));
	else
		table_cell(t, C_NONE, "-");
	buf_init(&cmd);
	split_quote(&cmd, it->argv, it->argc);
	buf_put_u8(&cmd, 0);
	table_cell(t, C_DIM, (char *)cmd.p);
	buf_free(&cmd);
}

static void
jobview_line(FILE *f, const char *label, const char *fmt, ...)
    PRINTFLIKE(3, 4);

static void
jobview_line(FILE *f, const char *label, const char *fmt, ...)
{
	va_list	 ap;
	char	*s, *p;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die(EXIT_USAGE, "out of memory");
	va_end(ap);
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(f, "  %s%-10s%s %s\n", colour_on(C_DIM), label,
	    colour_off(C_DIM), s);
	free(s);
}

/* What the job asks for beyond one CPU, and, when no connected worker
 * could ever run it, why (STATUS unfit= why=). */
static void
jobview_res(FILE *f, const struct item *it)
{
	const char	*c = item_get(it, "cpus"), *g = item_get(it, "gpus");
	const char	*why = item_get(it, "why");
	char		 b[FMT_MAX];
	uint64_t	 v;

	if (c != NULL || g != NULL || item_get(it, "mem") != NULL) {
		if (item_u64(it, "mem", &v) == 0)
			fmt_size(b, v);
		else
			snprintf(b, sizeof b, "-");
		jobview_line(f, "resources", "cpus %s, gpus %s, mem %s",
		    c ? c : "1", g ? g : "0", b);
	}
	if (why != NULL && *why != '\0')
		jobview_line(f, "stuck", "%s (short: %s)", why,
		    item_get(it, "unfit") ? item_get(it, "unfit") : "?");
}

/* Everything known of one job, a line per fact, like scontrol show job. */
void
jobview_long(FILE *f, const struct item *it, uint64_t now)
{
	char		 b[FMT_MAX], b2[FMT_MAX], tasks[160];
	const char	*s, *w, *h;
	uint64_t	 v, u;
	int		 st = jobview_state(it), array = item_is(it, "array");
	struct buf	 cmd;

	fprintf(f, "%s%s %s%s  %s%s%s\n", colour_on(C_BOLD), array ? "array" :
	    "job", item_get(it, "id"), colour_off(C_BOLD), colour_on(
	    state_colour(st)), item_get(it, "state"), colour_off(
	    state_colour(st)));
	buf_init(&cmd);
	split_quote(&cmd, it->argv, it->argc);
	buf_put_u8(&cmd, 0);
	jobview_line(f, "command", "%s", (char *)cmd.p);
	buf_free(&cmd);
	if ((s = item_get(it, "name")) != NULL && *s != '\0')
		jobview_line(f, "name", "%s", s);
	jobview_line(f, "queue", "%s, priority %s", item_get(it, "q"),
	    item_get(it, "pri") ? item_get(it, "pri") : "0");
	if (array) {
		jobview_tasks(tasks, sizeof tasks, it);
		jobview_line(f, "tasks", "%s (spec %s)", tasks,
		    item_get(it, "spec") ? item_get(it, "spec") : "?");
	} else
		jobview_line(f, "attempts", "%llu (retries allowed: %llu)",
		    (unsigned long long)item_num(it, "attempts"),
		    (unsigned long long)item_num(it, "retries"));
	if ((s = item_get(it, "after")) != NULL)
		jobview_line(f, "after", "%s (not all done yet)", s);
	jobview_res(f, it);
	if (item_u64(it, "due", &v) == 0 && v > 0)
		jobview_line(f, "due", "%s (in %s)", fmt_time(b, v, now),
		    fmt_duration(b2, v > now ? v - now : 0));
	if (item_u64(it, "submitted", &v) == 0)
		jobview_line(f, "submitted", "%s", fmt_time(b, v, now));
	if (item_u64(it, "started", &v) == 0 && v > 0) {
		w = item_get(it, "worker");
		h = item_get(it, "host");
		jobview_line(f, "started", "%s on %s (worker %s)",
		    fmt_time(b, v, now), h && *h ? h : "?", w && *w ? w : "?");
	}
	if (item_u64(it, "finished", &v) == 0 && v > 0)
		jobview_line(f, "finished", "%s", fmt_time(b, v, now));
	if ((v = jobview_runtime(it, now)) > 0)
		jobview_line(f, "elapsed", "%s", fmt_duration(b, v));
	if (!array && jobview_finished(it))
		jobview_line(f, "exit", "%s", jobview_exit(b, it));
	if (item_get(it, "timedout") != NULL) {
		char why[256];
		jobview_line(f, "reason", "%s", jobview_why(why, sizeof why,
		    it));
	} else if ((s = item_get(it, "reason")) != NULL && *s != '\0')
		jobview_line(f, "reason", "%s%s", s, jobview_never_ran(it) ?
		    " (the command never started, so it wrote no output)" :
		    "");
	if ((s = item_get(it, "cwd")) != NULL && *s != '\0')
		jobview_line(f, "directory", "%s", s);
	if (item_u64(it, "timeout", &v) == 0)
		jobview_line(f, "timeout", "%s", v > 0 ? fmt_duration(b, v) :
		    "none");
	{
		int k, nenv = 0;
		for (k = 0; k < it->nkv; k++)
			if (strcmp(it->kv[k].key, "env") == 0)
				jobview_line(f, nenv++ ? "" : "env", "%s",
				    it->kv[k].val);
	}
	if ((s = item_get(it, "output")) != NULL && *s != '\0')
		jobview_line(f, "-o", "%s", s);
	if (item_u64(it, "utime", &v) == 0 && item_u64(it, "stime", &u) == 0)
		jobview_line(f, "cpu", "%s user, %s system", fmt_duration(b,
		    v / 1000), fmt_duration(b2, u / 1000));
	if (item_u64(it, "maxrss", &v) == 0)
		jobview_line(f, "memory", "%s peak", fmt_size(b, v * 1024));
	if ((s = item_get(it, "outpath")) != NULL && *s != '\0') {
		char eb[4096];
		jobview_line(f, "stdout", "%s (on %s)", s, (h = item_get(it,
		    "host")) != NULL && *h ? h : "its worker");
		jobview_line(f, "stderr", "%s", jobview_errpath(it, eb,
		    sizeof eb));
	}
	fileview_long(f, it);
}

/* Adds the item's tasks (1 for a job) to the tally, by state. */
void
jobview_tally(struct tally *t, const struct item *it)
{
	int	st;

	if (item_is(it, "array")) {
		t->total += item_num(it, "tasks");
		for (st = 0; st < JS__COUNT; st++)
			t->count[st] += item_num(it, proto_state_name(st));
		return;
	}
	if (!item_is(it, "job"))
		return;
	t->total++;
	if ((st = jobview_state(it)) >= 0)
		t->count[st]++;
}
