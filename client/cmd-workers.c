/*
 * cmd-workers.c: simq workers, every worker the broker knows, with its
 * slots and the jobs it runs.  The table and the JSON are shared with simq
 * status.  A worker that lost its connection is listed (as "lost") while
 * it still holds leases: its jobs go back to their queues when the leases
 * run out.  A worker that cannot write its jobs' output files says so,
 * under the table.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

static int	cmd_workers_exec(int, char **);

const struct simq_cmd cmd_workers_entry = {
	"workers",
	"",
	"list the workers, their slots and the jobs they run",
	"",
	cmd_workers_exec
};

/* The running list "17:1,18_5:2" without attempts, spaced or as JSON. */
static void
workers_running(const struct item *it, struct buf *b, struct json *j)
{
	const char	*s = item_get(it, "running"), *p, *e, *colon;

	if (s == NULL)
		return;
	for (p = s; *p != '\0'; p = *e ? e + 1 : e) {
		if ((e = strchr(p, ',')) == NULL)
			e = p + strlen(p);
		colon = memchr(p, ':', (size_t)(e - p));
		if (colon == NULL)
			colon = e;
		if (j != NULL)
			json_str(j, p, (size_t)(colon - p));
		else {
			if (b->len > 0)
				buf_put_u8(b, ' ');
			buf_put(b, p, (size_t)(colon - p));
		}
	}
}

/* Whether the worker item serves queue q (no queues: "default"). */
static int
worker_serves(const struct item *it, const char *q)
{
	const char	*s = item_get(it, "queues"), *p, *e;
	size_t		 len = strlen(q);

	if (s == NULL || *s == '\0')
		return strcmp(q, "default") == 0;
	for (p = s; *p != '\0'; p = *e ? e + 1 : e) {
		if ((e = strchr(p, ',')) == NULL)
			e = p + strlen(p);
		if ((size_t)(e - p) == len && strncmp(p, q, len) == 0)
			return 1;
	}
	return 0;
}

/* Whether a connected worker of the WORKERS reply w serves queue q. */
int
workers_serve(const struct reply *w, const char *q)
{
	size_t	i;

	for (i = 0; i < w->nitems; i++)
		if (item_num(&w->items[i], "connected") &&
		    worker_serves(&w->items[i], q))
			return 1;
	return 0;
}

/* The queues connected workers serve, "a, b", into b (NUL-ended), and
 * the one nearest to q if q looks like a typo of it. */
static const char *
workers_queues(const struct reply *w, const char *q, struct buf *b)
{
	static char	 near[SIMQ_NAME_MAX + 1];
	const char	*names[256], *s, *p, *e, *m;
	char		*tmp;
	size_t		 i, n = 0, k;

	buf_reset(b);
	for (i = 0; i < w->nitems; i++) {
		if (!item_num(&w->items[i], "connected"))
			continue;
		s = item_get(&w->items[i], "queues");
		if (s == NULL || *s == '\0')
			s = "default";
		for (p = s; *p != '\0'; p = *e ? e + 1 : e) {
			if ((e = strchr(p, ',')) == NULL)
				e = p + strlen(p);
			tmp = xprintf("%.*s", (int)(e - p), p);
			for (k = 0; k < n; k++)
				if (strcmp(names[k], tmp) == 0)
					break;
			if (k < n || n == 256) {
				free(tmp);
				continue;
			}
			names[n++] = tmp;
			if (b->len > 0)
				buf_put(b, ", ", 2);
			buf_put(b, tmp, strlen(tmp));
		}
	}
	buf_put_u8(b, 0);
	m = did_you_mean(q, names, n);
	snprintf(near, sizeof near, "%s", m != NULL ? m : "");
	for (k = 0; k < n; k++)
		free((char *)names[k]);
	return *near ? near : NULL;
}

/* The sentence for a queue no connected worker serves, or NULL when
 * one does.  The caller frees. */
char *
queue_unserved(const struct reply *w, const char *q)
{
	struct buf	 b;
	const char	*near;
	char		*s;

	if (workers_serve(w, q))
		return NULL;
	buf_init(&b);
	near = workers_queues(w, q, &b);
	if (b.len <= 1)
		s = xprintf("no worker is connected to serve queue %s", q);
	else
		s = xprintf("no connected worker serves queue %s (they serve "
		    "%s%s%s%s)", q, (char *)b.p, near ? "; did you mean " : "",
		    near ? near : "", near ? "?" : "");
	buf_free(&b);
	return s;
}

/* After a submit: a warning on stderr when no connected worker serves
 * queue q, for the job would wait there with no word. */
void
queue_warn_unserved(struct conn *c, const char *q)
{
	struct reply	*r = conn_simple(c, "WORKERS");
	char		*s;

	if (r != NULL && r->kind == REPLY_ITEMS &&
	    (s = queue_unserved(r, q)) != NULL) {
		log_warn("warning: %s; the job waits until one does", s);
		free(s);
	}
	reply_free(r);
}

/* The key as a number, or null. */
static void
workers_json_num(struct json *j, const struct item *it, const char *key)
{
	uint64_t	v;

	if (item_u64(it, key, &v) == 0)
		json_uint(j, v);
	else
		json_null(j);
}

/* The offer, "16 cpus, 2 gpus, 64 GiB, 1h left", into b; "-" for none. */
static const char *
workers_offer(char *b, size_t len, const struct item *it)
{
	char		 m[FMT_MAX], t[FMT_MAX];
	uint64_t	 v;
	size_t		 n = 0;

	b[0] = '\0';
	if (item_u64(it, "cpus", &v) == 0)
		n += (size_t)snprintf(b + n, len - n, "%llu cpus",
		    (unsigned long long)v);
	if (n < len && item_u64(it, "gpus", &v) == 0 && (v > 0 || n > 0))
		n += (size_t)snprintf(b + n, len - n, "%s%llu gpus",
		    n ? ", " : "", (unsigned long long)v);
	if (n < len && item_u64(it, "mem", &v) == 0)
		n += (size_t)snprintf(b + n, len - n, "%s%s", n ? ", " : "",
		    fmt_size(m, v));
	if (n < len && item_u64(it, "time_left", &v) == 0)
		snprintf(b + n, len - n, "%s%s left", n ? ", " : "",
		    fmt_duration(t, v));
	if (b[0] == '\0')
		snprintf(b, len, "-");
	return b;
}

void
workers_print(const struct reply *r, uint64_t now)
{
	struct table		*t = table_new();
	const struct item	*it;
	struct buf		 b;
	uint64_t		 seen, busy = 0, slots = 0, lost = 0, held = 0;
	char			 d[FMT_MAX], offer[128];
	size_t			 i;
	int			 up;

	table_col(t, "WORKER", 0);
	table_col(t, "HOST", 0);
	table_col(t, "STATE", 0);
	table_col(t, "BUSY", TABLE_RIGHT);
	table_col(t, "QUEUES", 0);
	table_col(t, "OFFER", TABLE_ELIDE | TABLE_CUT);
	table_col(t, "SEEN", TABLE_RIGHT);
	table_col(t, "RUNNING", TABLE_CLIP);
	buf_init(&b);
	for (i = 0; i < r->nitems; i++) {
		it = &r->items[i];
		up = item_num(it, "connected") != 0;
		table_cell(t, C_NONE, item_get(it, "name"));
		table_cell(t, C_NONE, item_get(it, "host") ?
		    item_get(it, "host") : "-");
		table_cell(t, up ? C_GREEN : C_RED, up ? "up" : "lost");
		table_cellf(t, C_NONE, "%llu/%llu",
		    (unsigned long long)item_num(it, "njobs"),
		    (unsigned long long)item_num(it, "slots"));
		table_cell(t, C_NONE, item_get(it, "queues") &&
		    *item_get(it, "queues") ? item_get(it, "queues") :
		    "default");
		table_cell(t, C_NONE, workers_offer(offer, sizeof offer, it));
		seen = item_num(it, "seen");
		if (seen == 0)
			table_cell(t, C_NONE, "-");
		else if (up && item_num(it, "taking"))
			/* Idle, with a TAKE waiting at the broker: it is
			 * asking for work now, not hung. */
			table_cell(t, C_NONE, "now");
		else if (seen + 1000 >= now)
			table_cell(t, C_NONE, "now");
		else
			table_cellf(t, C_NONE, "%s ago",
			    fmt_duration(d, (now - seen) / 1000 * 1000));
		buf_reset(&b);
		workers_running(it, &b, NULL);
		buf_put_u8(&b, 0);
		table_cell(t, C_NONE, b.len > 1 ? (char *)b.p : "-");
		if (up) {
			busy += item_num(it, "njobs");
			slots += item_num(it, "slots");
		} else {
			held += item_num(it, "njobs");
			lost++;
		}
	}
	buf_free(&b);
	table_print(t, stdout);
	table_free(t);
	printf("%zu worker%s", r->nitems, r->nitems == 1 ? "" : "s");
	if (lost > 0)
		printf(" (%llu lost)", (unsigned long long)lost);
	printf(", %llu of %llu slots busy", (unsigned long long)busy,
	    (unsigned long long)slots);
	/* A lost worker's jobs are not in anyone's slots: they go back to
	 * their queues when their leases run out. */
	if (held > 0)
		printf(", %llu job%s held by lost workers until their leases "
		    "run out", (unsigned long long)held, held == 1 ? "" : "s");
	putchar('\n');
	/* A worker that could not write a job's output (a full disk):
	 * its jobs go on, but their files on that node are incomplete. */
	for (i = 0; i < r->nitems; i++) {
		const char *e = item_get(&r->items[i], "outerr");
		if (e != NULL && *e != '\0')
			printf("%sworker %s: cannot write job output: %s%s\n",
			    colour_on(C_RED), item_get(&r->items[i], "name"),
			    e, colour_off(C_RED));
	}
}

void
workers_json(struct json *j, const struct reply *r)
{
	const struct item	*it;
	const char		*s, *p, *e;
	char			 b[FMT_MAX];
	uint64_t		 v;
	size_t			 i;

	json_array(j);
	for (i = 0; i < r->nitems; i++) {
		it = &r->items[i];
		json_object(j);
		json_key(j, "name");
		json_cstr(j, item_get(it, "name"));
		json_key(j, "host");
		json_cstr(j, item_get(it, "host"));
		json_key(j, "slots");
		json_uint(j, item_num(it, "slots"));
		json_key(j, "pid");
		if (item_u64(it, "pid", &v) == 0)
			json_uint(j, v);
		else
			json_null(j);
		json_key(j, "queues");
		json_array(j);
		if ((s = item_get(it, "queues")) != NULL && *s != '\0') {
			for (p = s; *p != '\0'; p = *e ? e + 1 : e) {
				if ((e = strchr(p, ',')) == NULL)
					e = p + strlen(p);
				json_str(j, p, (size_t)(e - p));
			}
		}
		json_end(j);
		json_key(j, "connected");
		json_bool(j, item_num(it, "connected") != 0);
		json_key(j, "idle");
		json_bool(j, item_num(it, "taking") != 0);
		json_key(j, "lease");
		json_millis(j, item_num(it, "lease"));
		json_key(j, "last_seen");
		if (item_u64(it, "seen", &v) == 0 && v > 0)
			json_cstr(j, fmt_iso8601(b, v));
		else
			json_null(j);
		json_key(j, "output_error");
		if ((s = item_get(it, "outerr")) != NULL && *s != '\0')
			json_cstr(j, s);
		else
			json_null(j);
		/* Its offer: null where it set no limit (no cpus= or
		 * mem=, no TAKE time=). */
		json_key(j, "cpus");
		workers_json_num(j, it, "cpus");
		json_key(j, "gpus");
		json_uint(j, item_num(it, "gpus"));
		json_key(j, "mem");
		workers_json_num(j, it, "mem");
		json_key(j, "time_left");
		if (item_u64(it, "time_left", &v) == 0)
			json_millis(j, v);
		else
			json_null(j);
		json_key(j, "running");
		json_array(j);
		workers_running(it, NULL, j);
		json_end(j);
		json_end(j);
	}
	json_end(j);
}

static int
cmd_workers_exec(int argc, char **argv)
{
	struct conn	*c;
	struct reply	*r;
	struct json	 j;
	struct buf	 b;

	if (simq_getopt(argc, argv, "", NULL, &cmd_workers_entry) != -1 ||
	    optind != argc)
		simq_usage(&cmd_workers_entry);
	c = simq_connect(0);
	r = conn_simple(c, "WORKERS");
	if (r->kind != REPLY_ITEMS)
		conn_die_reply(c, r, NULL);
	if (cfg.json) {
		simq_json_begin(&j, &b);
		json_key(&j, "workers");
		workers_json(&j, r);
		simq_json_print(&j, &b);
	} else if (r->nitems == 0)
		printf("No workers: start one on each compute node with "
		    "simq-worker -s %s.\n", c->addr);
	else
		workers_print(r, now_ms());
	reply_free(r);
	conn_close(c);
	return EXIT_OK;
}
