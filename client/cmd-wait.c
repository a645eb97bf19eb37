/*
 * cmd-wait.c: simq wait, block until jobs have finished.
 *
 * The broker holds a WAIT until every id has finished or its timeout
 * passes, so waiting costs no polling: the client asks WAIT in a loop,
 * with a short timeout (a second) when it has a progress bar to redraw
 * and a long one otherwise.  Ids beyond one request's worth are asked with
 * STATUS, and the WAIT goes to the first chunk still unfinished.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

/* How long one WAIT may be held: with a bar, its refresh period; without,
 * long enough to be cheap and short enough to notice a dead broker. */
#define WAIT_SLICE_BAR_MS	1000
#define WAIT_SLICE_MS		30000

/* Failures listed one by one after a wait before "and N more". */
#define WAIT_REPORT_MAX		10

static int	cmd_wait_exec(int, char **);

const struct simq_cmd cmd_wait_entry = {
	"wait",
	"[-q] [-t TIMEOUT] [--failures] ID...",
	"wait until jobs have finished; exit 1 if any failed",
	"Waits until every job, task and array named has finished.  Exits 0\n"
	"when all are done, 1 when any failed or was canceled, 2 on a timeout\n"
	"or an unknown id.  On a terminal, shows a progress bar on stderr;\n"
	"elsewhere, prints one line on stderr when the wait ends.  Either\n"
	"notes jobs queued where no connected worker serves them.  On a\n"
	"terminal, failures are shown as they happen, and at the end the\n"
	"first failed tasks of each array with their reasons.\n\n"
	"      --failures          show failures so even when stderr is not a\n"
	"                          terminal\n"
	"  -q, --quiet             no progress bar, no summary line\n"
	"  -t, --timeout D         give up after D (90, 45s, 30m, 2h, 1d)\n",
	cmd_wait_exec
};

static const struct option wait_opts[] = {
	{ "quiet", no_argument, NULL, 'q' },
	{ "timeout", required_argument, NULL, 't' },
	{ "failures", no_argument, NULL, OPT_CMD_BASE },
	{ NULL, 0, NULL, 0 }
};

/* --failures: list failures as on a terminal. */
static int	show_failures;

/* Says which jobs failed, on stderr, after a wait. */
static void
wait_report(const struct reply *r)
{
	const struct item	*it;
	const char		*why;
	char			 b[FMT_MAX], wb[512];
	size_t			 i, n = 0;
	int			 st;

	for (i = 0; i < r->nitems; i++) {
		it = &r->items[i];
		st = jobview_state(it);
		if (st != JS_FAILED && st != JS_CANCELED &&
		    !(item_is(it, "array") && (item_num(it, "failed") ||
		    item_num(it, "canceled"))))
			continue;
		if (++n > WAIT_REPORT_MAX)
			continue;
		if (item_is(it, "array")) {
			snprintf(b, sizeof b, ", %llu canceled",
			    (unsigned long long)item_num(it, "canceled"));
			log_warn("array %s: %llu of %llu tasks failed%s; see "
			    "simq status -l %s, or simq retry %s",
			    item_get(it, "id"), (unsigned long long)
			    item_num(it, "failed"), (unsigned long long)
			    item_num(it, "tasks"), item_num(it, "canceled") ?
			    b : "", item_get(it, "id"), item_get(it, "id"));
			continue;
		}
		why = jobview_why(wb, sizeof wb, it);
		if (jobview_never_ran(it))
			log_warn("job %s %s (%s): its command never started, "
			    "so it wrote no output; see simq status -l %s",
			    item_get(it, "id"), proto_state_name(st), why,
			    item_get(it, "id"));
		else
			log_warn("job %s %s (%s); see simq status -l %s and "
			    "simq output --stderr %s", item_get(it, "id"),
			    proto_state_name(st), why, item_get(it, "id"),
			    item_get(it, "id"));
	}
	if (n > WAIT_REPORT_MAX)
		log_warn("... and %zu more failed", n - WAIT_REPORT_MAX);
}

/* How often a wait asks which queues the workers serve. */
#define WAIT_WORKERS_MS		5000

/*
 * The note for jobs that wait in a queue no connected worker serves
 * ("no worker serves queue defualt"), or NULL; asks WORKERS.  The caller
 * frees.  Said once on stderr too when there is no bar to show it.
 */
static char *
wait_unserved(struct conn *c, const struct reply *r, int *told)
{
	struct reply	*w;
	const char	*q, *first = NULL;
	char		*s = NULL, *long_s;
	size_t		 i;

	for (i = 0; i < r->nitems; i++) {
		const struct item *it = &r->items[i];
		if (jobview_state(it) != JS_QUEUED &&
		    !(item_is(it, "array") && item_num(it, "queued") > 0))
			continue;
		if ((q = item_get(it, "q")) == NULL)
			continue;
		first = q;
		break;
	}
	if (first == NULL)
		return NULL;
	if ((w = conn_simple(c, "WORKERS")) == NULL)
		return NULL;
	if (w->kind == REPLY_ITEMS) {
		for (i = 0; i < r->nitems && s == NULL; i++) {
			const struct item *it = &r->items[i];
			if ((q = item_get(it, "q")) == NULL ||
			    (jobview_state(it) != JS_QUEUED &&
			    !(item_is(it, "array") &&
			    item_num(it, "queued") > 0)))
				continue;
			if (!workers_serve(w, q)) {
				s = xprintf("no worker serves queue %s", q);
				if (!*told && !cfg.progress && !cfg.quiet &&
				    (long_s = queue_unserved(w, q)) != NULL) {
					log_warn("warning: %s; its jobs wait "
					    "until one does", long_s);
					free(long_s);
					*told = 1;
				}
			}
		}
	}
	reply_free(w);
	return s;
}

/* Off a terminal, the line a batch log gets when the wait ends. */
static void
wait_summary(const struct tally *t, uint64_t ms)
{
	char	d[FMT_MAX];

	if (cfg.progress || cfg.quiet)
		return;
	log_warn("%llu of %llu done, %llu failed%s%.0llu%s in %s",
	    (unsigned long long)t->count[JS_DONE], (unsigned long long)t->total,
	    (unsigned long long)t->count[JS_FAILED],
	    t->count[JS_CANCELED] ? ", " : "",
	    (unsigned long long)t->count[JS_CANCELED],
	    t->count[JS_CANCELED] ? " canceled" : "",
	    fmt_duration(d, ms / 1000 * 1000));
}

/*
 * Waits until every id has finished, or timeout_ms (0: no limit) has
 * passed.  A lost connection is made again (simq_reconnect), so a broker
 * restart does not end the wait; *cp is then the new connection.
 * Returns EXIT_OK (all done), EXIT_FAILED (some failed or were
 * canceled) or EXIT_USAGE (an unknown id, or the timeout; said on
 * stderr).  *final gets the last status of every id (the caller frees
 * it).
 */
int
wait_ids(struct conn **cp, char **ids, int n, uint64_t timeout_ms,
    struct reply **final)
{
	struct conn	*c = *cp;
	struct progress	 p;
	struct tally	 t;
	struct reply	*r = NULL;
	struct waitfail	*wf = NULL;
	uint64_t	 start = mono_ms(), slice = 0, now, asked = 0;
	size_t		 i;
	int		 wait_chunk = -1, status = EXIT_OK, st, bar, told = 0;
	char		 d[FMT_MAX], *note = NULL;

	bar = cfg.progress;
	if (!cfg.quiet && (cfg.progress || show_failures))
		wf = waitfail_new((size_t)n);
	progress_init(&p);
	c->soft = 1;
	for (;;) {
		reply_free(r);
		r = status_fetch(c, ids, n, wait_chunk, slice);
		if (r == NULL) {
			progress_end(&p);
			c = *cp = simq_reconnect(c, "still waiting");
			wait_chunk = -1;
			slice = 0;
			continue;
		}
		if (status_missing(c, r) > 0) {
			progress_end(&p);
			c->soft = 0;
			*final = r;
			free(note);
			waitfail_free(wf);
			return EXIT_USAGE;
		}
		memset(&t, 0, sizeof t);
		wait_chunk = -1;
		for (i = 0; i < r->nitems; i++) {
			jobview_tally(&t, &r->items[i]);
			if (wait_chunk < 0 && !jobview_finished(&r->items[i]))
				wait_chunk = (int)(i / STATUS_CHUNK);
		}
		if (wait_chunk >= 0 && (asked == 0 ||
		    mono_ms() - asked >= WAIT_WORKERS_MS)) {
			free(note);
			note = wait_unserved(c, r, &told);
			asked = mono_ms();
		}
		if (wf != NULL)
			waitfail_update(wf, c, r, bar && p.shown);
		if (bar)
			progress_draw(&p, &t, wait_chunk >= 0 ? note : NULL);
		if (wait_chunk < 0)
			break;
		now = mono_ms();
		slice = bar ? WAIT_SLICE_BAR_MS : WAIT_SLICE_MS;
		if (timeout_ms > 0) {
			if (now - start >= timeout_ms) {
				progress_end(&p);
				c->soft = 0;
				*final = r;
				error_say("gave up after %s: %llu of %llu not "
				    "finished yet", fmt_duration(d, timeout_ms),
				    (unsigned long long)(t.total -
				    t.count[JS_DONE] - t.count[JS_FAILED] -
				    t.count[JS_CANCELED]),
				    (unsigned long long)t.total);
				free(note);
				waitfail_free(wf);
				return EXIT_USAGE;
			}
			if (slice > timeout_ms - (now - start))
				slice = timeout_ms - (now - start);
		}
	}
	progress_end(&p);
	free(note);
	c->soft = 0;
	wait_summary(&t, mono_ms() - start);
	for (i = 0; i < r->nitems; i++) {
		st = jobview_state(&r->items[i]);
		if (st == JS_FAILED || st == JS_CANCELED)
			status = EXIT_FAILED;
	}
	if (status != EXIT_OK)
		wait_report(r);
	if (status != EXIT_OK && wf != NULL)
		waitfail_report(c, r);
	waitfail_free(wf);
	*final = r;
	return status;
}

static int
cmd_wait_exec(int argc, char **argv)
{
	struct conn	*c;
	struct reply	*r = NULL;
	struct json	 j;
	struct buf	 b;
	uint64_t	 timeout = 0;
	int		 ch, status;

	while ((ch = simq_getopt(argc, argv, "qt:", wait_opts,
	    &cmd_wait_entry)) != -1) {
		switch (ch) {
		case 'q':
			cfg.progress = 0;
			cfg.quiet = 1;
			break;
		case OPT_CMD_BASE:
			show_failures = 1;
			break;
		case 't':
			if (proto_parse_duration(optarg, &timeout) < 0)
				die(EXIT_USAGE, "bad --timeout '%s': use a "
				    "duration like 90, 45s, 30m, 2h, 1d or "
				    "1h30m", optarg);
			break;
		default:
			simq_usage(&cmd_wait_entry);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		simq_usage_why(&cmd_wait_entry,
		    "wait needs the ids of the jobs to wait for");
	}
	ids_check(argv, argc);
	c = simq_connect(0);
	status = wait_ids(&c, argv, argc, timeout, &r);
	if (cfg.json) {
		simq_json_begin(&j, &b);
		json_key(&j, "jobs");
		status_json_jobs(&j, r);
		simq_json_print(&j, &b);
	}
	reply_free(r);
	conn_close(c);
	return status;
}
