/*
 * cmd-status.c: simq status, what is queued, running, done and failed,
 * and where.
 *
 * Without ids it is the overview `rq info` gives, made precise: every
 * queue's count of jobs in each state (the broker keeps these counts as
 * jobs move, so this costs the number of queues, not of jobs) and every
 * worker with the jobs it runs.  With ids it shows those jobs and arrays,
 * as a table or, with -l, everything known of each.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simq.h"

static int	cmd_status_exec(int, char **);

const struct simq_cmd cmd_status_entry = {
	"status",
	"[-l] [--watch] [-i INTERVAL] [ID...] | ID --tasks [--state STATE]",
	"show queues and workers, or the state of jobs",
	"Without ids: each queue's count of jobs in each state, and the\n"
	"workers with what they run.  With ids: each job's or array's state,\n"
	"attempts, exit status, times and host; exits 1 if any of them failed\n"
	"or was canceled.\n\n"
	"  -l, --long              everything known of each job, a line per "
	"fact\n"
	"      --watch             refresh until interrupted (with ids: until "
	"all\n"
	"                          have finished); -w is submit's --wait, "
	"not this\n"
	"  -i, --interval D        refresh every D (default: 2s); implies "
	"--watch\n"
	"      --tasks             list the tasks of array ID: state, "
	"attempts,\n"
	"                          exit status and, for failed ones, the "
	"reason\n"
	"      --state STATE       with --tasks: only tasks in STATE (waiting,\n"
	"                          queued, running, done, failed, canceled)\n",
	cmd_status_exec
};

static const struct option status_opts[] = {
	{ "long", no_argument, NULL, 'l' },
	{ "watch", no_argument, NULL, 'w' },
	{ "interval", required_argument, NULL, 'i' },
	{ "tasks", no_argument, NULL, OPT_CMD_BASE },
	{ "state", required_argument, NULL, OPT_CMD_BASE + 1 },
	{ NULL, 0, NULL, 0 }
};

/* Dies for an id that is not one; returns n. */
int
ids_check(char **ids, int n)
{
	struct simq_id	id;
	int		i;

	for (i = 0; i < n; i++)
		if (proto_parse_id(ids[i], strlen(ids[i]), &id) < 0)
			die(EXIT_USAGE, "bad job id '%s': use a number like "
			    "17, or 17_5 for task 5 of array 17", ids[i]);
	return n;
}

/*
 * STATUS for every id, in chunks of STATUS_CHUNK, the items merged in the
 * order of ids.  Chunk wait_chunk (if >= 0) is asked with WAIT wait_ms
 * instead, and last: any request after a WAIT would end it early.
 * Returns NULL if the connection was lost (a soft one only).
 */
struct reply *
status_fetch(struct conn *c, char **ids, int n, int wait_chunk,
    uint64_t wait_ms)
{
	struct reply	*all, *r;
	struct buf	 b;
	int		 k, nchunks = (n + STATUS_CHUNK - 1) / STATUS_CHUNK, i;
	int		 from, to, step;
	char		 tmp[32];

	all = xcalloc(1, sizeof *all);
	all->kind = REPLY_ITEMS;
	all->line = xstrdup("ITEMS");
	/* Zeroed, so that reply_free() can free it partly filled. */
	all->items = xcalloc((size_t)(n > 0 ? n : 1), sizeof *all->items);
	all->nitems = (size_t)n;
	buf_init(&b);
	for (step = 0; step < nchunks; step++) {
		/* The WAIT chunk goes last. */
		if (wait_chunk < 0 || wait_chunk >= nchunks)
			k = step;
		else if (step < nchunks - 1)
			k = step < wait_chunk ? step : step + 1;
		else
			k = wait_chunk;
		from = k * STATUS_CHUNK;
		to = from + STATUS_CHUNK < n ? from + STATUS_CHUNK : n;
		buf_reset(&b);
		if (k == wait_chunk) {
			snprintf(tmp, sizeof tmp, "WAIT %llu",
			    (unsigned long long)wait_ms);
			req_raw(&b, tmp);
		} else
			req_raw(&b, "STATUS");
		for (i = from; i < to; i++)
			req_word(&b, ids[i]);
		if ((r = conn_request(c, &b)) == NULL) {
			reply_free(all);
			buf_free(&b);
			return NULL;
		}
		if (r->kind != REPLY_ITEMS)
			conn_die_reply(c, r, NULL);
		if (r->nitems != (size_t)(to - from))
			die(EXIT_USAGE, "the broker answered %zu items for %d "
			    "ids", r->nitems, to - from);
		memcpy(&all->items[from], r->items, r->nitems *
		    sizeof *r->items);
		r->nitems = 0;
		reply_free(r);
	}
	buf_free(&b);
	return all;
}

/* Why task ID_N is missing when ID is an array: N is not in its spec.
 * Writes the sentence to buf, or returns NULL. */
static const char *
status_why_no_task(struct conn *c, const char *id, char *buf, size_t len)
{
	struct simq_id		 sid;
	struct array_spec	 spec;
	struct reply		*r;
	struct buf		 b;
	const char		*s, *us = strchr(id, '_');
	char			 arr[32];
	uint64_t		 k;
	int			 n = 0;

	if (c == NULL || us == NULL || proto_parse_id(id, strlen(id),
	    &sid) < 0)
		return NULL;
	snprintf(arr, sizeof arr, "%.*s", (int)(us - id), id);
	buf_init(&b);
	req_raw(&b, "STATUS");
	req_raw(&b, arr);
	r = conn_request(c, &b);
	buf_free(&b);
	if (r == NULL || r->kind != REPLY_ITEMS || r->nitems != 1 ||
	    !item_is(&r->items[0], "array") ||
	    (s = item_get(&r->items[0], "spec")) == NULL ||
	    proto_parse_array(s, strlen(s), &spec) < 0) {
		reply_free(r);
		return NULL;
	}
	/* "1-10:3 (1, 4, 7, 10)": the first few indexes it has. */
	n = snprintf(buf, len, "array %s has no task %u: its spec is %s (", arr,
	    sid.index, s);
	for (k = spec.first; k <= spec.last && (size_t)n < len; k +=
	    spec.step) {
		if (k > spec.first + 4 * (uint64_t)spec.step) {
			n += snprintf(buf + n, len - (size_t)n, ", ...");
			break;
		}
		n += snprintf(buf + n, len - (size_t)n, "%s%llu", k ==
		    spec.first ? "" : ", ", (unsigned long long)k);
		if (spec.step == 0)
			break;
	}
	if ((size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ")");
	reply_free(r);
	return buf;
}

/* Says "no job ID" for each missing item; returns how many. */
int
status_missing(struct conn *c, const struct reply *r)
{
	char	why[256];
	size_t	i;
	int	n = 0;

	for (i = 0; i < r->nitems; i++) {
		if (!item_is(&r->items[i], "missing"))
			continue;
		if (status_why_no_task(c, item_get(&r->items[i], "id"), why,
		    sizeof why) != NULL)
			error_say("no job %s: %s", item_get(&r->items[i], "id"),
			    why);
		else
			error_say("no job %s", item_get(&r->items[i], "id"));
		n++;
	}
	return n;
}

void
status_print_jobs(const struct reply *r, int longform)
{
	struct table	*t;
	uint64_t	 now = now_ms();
	size_t		 i;
	int		 first = 1;

	if (longform) {
		for (i = 0; i < r->nitems; i++) {
			if (item_is(&r->items[i], "missing"))
				continue;
			if (!first)
				putchar('\n');
			jobview_long(stdout, &r->items[i], now);
			first = 0;
		}
		return;
	}
	t = jobview_table();
	for (i = 0; i < r->nitems; i++)
		if (!item_is(&r->items[i], "missing"))
			jobview_row(t, &r->items[i], now);
	table_print(t, stdout);
	table_free(t);
	/* A job no connected worker could ever run says so (unfit=). */
	for (i = 0; i < r->nitems; i++) {
		const char *why = item_get(&r->items[i], "why");
		if (why != NULL && *why != '\0')
			printf("%s %s is stuck: %s\n", item_is(&r->items[i],
			    "array") ? "array" : "job", item_get(&r->items[i],
			    "id"), why);
	}
}

/* A JSON array of the jobs (missing ones left out: they are errors). */
void
status_json_jobs(struct json *j, const struct reply *r)
{
	size_t	i;

	json_array(j);
	for (i = 0; i < r->nitems; i++)
		if (!item_is(&r->items[i], "missing"))
			jobview_json(j, &r->items[i]);
	json_end(j);
}

/* Under the queues: each queue with queued jobs that no connected worker
 * serves, for they would wait there with no word. */
static void
status_note_unserved_queues(const struct reply *q, const struct reply *w)
{
	const struct item	*it;
	char			*why;
	size_t			 i;

	for (i = 0; i < q->nitems; i++) {
		it = &q->items[i];
		if (item_num(it, "queued") == 0 ||
		    (why = queue_unserved(w, item_get(it, "name"))) == NULL)
			continue;
		printf("%sNote: %llu job%s queued in %s, but %s.%s\n",
		    colour_on(C_YELLOW), (unsigned long long)item_num(it,
		    "queued"), item_num(it, "queued") == 1 ? "" : "s",
		    item_get(it, "name"), why, colour_off(C_YELLOW));
		free(why);
	}
}

/* Under a table of jobs: the queued ones no connected worker serves. */
static void
status_note_unserved_jobs(struct conn *c, const struct reply *r)
{
	struct reply	*w = NULL;
	const char	*q, *done[16];
	char		*why;
	size_t		 i, k, ndone = 0;

	for (i = 0; i < r->nitems && ndone < 16; i++) {
		const struct item *it = &r->items[i];
		if ((q = item_get(it, "q")) == NULL ||
		    (jobview_state(it) != JS_QUEUED && !(item_is(it,
		    "array") && item_num(it, "queued") > 0)))
			continue;
		for (k = 0; k < ndone; k++)
			if (strcmp(done[k], q) == 0)
				break;
		if (k < ndone)
			continue;
		done[ndone++] = q;
		if (w == NULL && ((w = conn_simple(c, "WORKERS")) == NULL ||
		    w->kind != REPLY_ITEMS))
			break;
		if ((why = queue_unserved(w, q)) != NULL) {
			printf("%sNote: queued in %s, but %s.%s\n",
			    colour_on(C_YELLOW), q, why, colour_off(C_YELLOW));
			free(why);
		}
	}
	reply_free(w);
}

/* The overview: queues and workers, asked in one round trip. */
static void
status_overview(struct conn *c)
{
	struct reply	*q, *w;
	struct json	 j;
	struct buf	 b;

	buf_init(&b);
	req_raw(&b, "QUEUES");
	req_end(&b);
	req_raw(&b, "WORKERS");
	req_end(&b);
	conn_send(c, b.p, b.len);
	buf_free(&b);
	q = conn_read(c);
	w = conn_read(c);
	if (q->kind != REPLY_ITEMS)
		conn_die_reply(c, q, NULL);
	if (w->kind != REPLY_ITEMS)
		conn_die_reply(c, w, NULL);
	if (cfg.json) {
		simq_json_begin(&j, &b);
		queues_json(&j, q);
		json_key(&j, "workers");
		workers_json(&j, w);
		simq_json_print(&j, &b);
	} else {
		if (q->nitems == 0)
			printf("No queues yet: submit a job with "
			    "simq submit -- CMD [ARG...].\n");
		else {
			queues_print(q);
			status_note_unserved_queues(q, w);
		}
		putchar('\n');
		if (w->nitems == 0)
			printf("No workers: start one on each compute node "
			    "with simq-worker -s %s.\n", c->addr);
		else
			workers_print(w, now_ms());
	}
	reply_free(q);
	reply_free(w);
}

/* Shows the jobs; returns the exit status they call for. */
static int
status_jobs(struct conn *c, char **ids, int n, int longform, int *finished)
{
	struct reply	*r = status_fetch(c, ids, n, -1, 0);
	struct json	 j;
	struct buf	 b;
	size_t		 i;
	int		 status = EXIT_OK, st, missing;

	*finished = 1;
	for (i = 0; i < r->nitems; i++) {
		if (item_is(&r->items[i], "missing"))
			continue;
		st = jobview_state(&r->items[i]);
		if (st == JS_FAILED || st == JS_CANCELED)
			status = EXIT_FAILED;
		if (!jobview_finished(&r->items[i]))
			*finished = 0;
	}
	if (cfg.json) {
		simq_json_begin(&j, &b);
		json_key(&j, "jobs");
		status_json_jobs(&j, r);
		simq_json_print(&j, &b);
	} else {
		status_print_jobs(r, longform);
		if (!longform)
			fileview_notes(stdout, r);
		status_note_unserved_jobs(c, r);
	}
	if ((missing = status_missing(c, r)) > 0)
		status = EXIT_USAGE;
	reply_free(r);
	return status;
}

static int
cmd_status_exec(int argc, char **argv)
{
	struct conn	*c;
	uint64_t	 interval = 2000;
	char		 tbuf[FMT_MAX], dbuf[FMT_MAX];
	int		 ch, longform = 0, watch = 0, status = EXIT_OK, done;
	int		 tasks = 0, state = -1;

	while ((ch = simq_getopt(argc, argv, "li:", status_opts,
	    &cmd_status_entry)) != -1) {
		switch (ch) {
		case 'l':
			longform = 1;
			break;
		case 'w':
			watch = 1;
			break;
		case 'i':
			if (proto_parse_duration(optarg, &interval) < 0 ||
			    interval == 0)
				die(EXIT_USAGE, "bad --interval '%s': use a "
				    "duration like 1, 500ms, 5s or 1m", optarg);
			watch = 1;
			break;
		case OPT_CMD_BASE:
			tasks = 1;
			break;
		case OPT_CMD_BASE + 1:
			if ((state = proto_state_lookup(optarg,
			    strlen(optarg))) < 0)
				die(EXIT_USAGE, "bad --state '%s': use waiting, "
				    "queued, running, done, failed or canceled",
				    optarg);
			break;
		default:
			simq_usage(&cmd_status_entry);
		}
	}
	argc -= optind;
	argv += optind;
	ids_check(argv, argc);
	if (state >= 0 && !tasks)
		simq_usage_why(&cmd_status_entry, "--state is for --tasks: "
		    "simq status ID --tasks --state %s",
		    proto_state_name(state));
	if (tasks && argc != 1)
		simq_usage_why(&cmd_status_entry, "--tasks lists the tasks "
		    "of one array: simq status ID --tasks");
	if (tasks && (watch || longform))
		simq_usage_why(&cmd_status_entry, "--tasks cannot be used "
		    "with %s", watch ? "--watch" : "-l");
	if (tasks) {
		c = simq_connect(0);
		status = status_tasks(c, argv[0], state);
		conn_close(c);
		return status;
	}
	if (watch && cfg.json)
		die(EXIT_USAGE, "--watch and --json cannot be used together: "
		    "--json prints one document; run simq status --json "
		    "again instead");
	c = simq_connect(0);
	for (;;) {
		if (watch && isatty(STDOUT_FILENO)) {
			printf("\033[H\033[2J%sEvery %s: simq status%s  %s  "
			    "%s\n\n", colour_on(C_DIM), fmt_duration(dbuf,
			    interval), colour_off(C_DIM), c->addr,
			    fmt_time(tbuf, now_ms(), now_ms()));
		}
		done = 0;
		if (argc == 0)
			status_overview(c);
		else
			status = status_jobs(c, argv, argc, longform, &done);
		fflush(stdout);
		if (!watch || done || status == EXIT_USAGE)
			break;
		if (!isatty(STDOUT_FILENO))
			putchar('\n');
		sleep_ms(interval);
	}
	conn_close(c);
	return status;
}
