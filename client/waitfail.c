/*
 * waitfail.c: simq wait's failures as they happen, and at the end the
 * first failed tasks with their reasons.
 *
 * Shown on a terminal (beside the progress bar) or with --failures; a
 * script's stderr otherwise keeps the one summary it always had.  An
 * array's failed tasks are asked with TASKS state=failed only when its
 * count of failures grew, and at most WAITFAIL_LIVE_MAX lines are
 * printed as they happen: a sweep where thousands fail says so in the
 * bar's counts, not in thousands of lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

/* Failures printed as they happen; the rest are counted by the bar. */
#define WAITFAIL_LIVE_MAX	20
/* Failed tasks listed with their reasons at the end, per array. */
#define WAITFAIL_REPORT_MAX	10

struct waitfail {
	size_t		 nitems;
	uint64_t	*failed;	/* per item: failures seen */
	char		**seen;		/* ids printed */
	size_t		 nseen;
	uint64_t	 nlive;
	int		 capped;
};

struct waitfail *
waitfail_new(size_t nitems)
{
	struct waitfail	*w = xcalloc(1, sizeof *w);

	w->nitems = nitems;
	w->failed = xcalloc(nitems > 0 ? nitems : 1, sizeof *w->failed);
	w->seen = xcalloc(WAITFAIL_LIVE_MAX, sizeof *w->seen);
	return w;
}

void
waitfail_free(struct waitfail *w)
{
	size_t	i;

	if (w == NULL)
		return;
	for (i = 0; i < w->nseen; i++)
		free(w->seen[i]);
	free(w->seen);
	free(w->failed);
	free(w);
}

static int
seen(const struct waitfail *w, const char *id)
{
	size_t	i;

	for (i = 0; i < w->nseen; i++)
		if (strcmp(w->seen[i], id) == 0)
			return 1;
	return 0;
}

/* One failure, above the bar. */
static void
say(struct waitfail *w, const struct item *it, int bar)
{
	char		why[512];
	const char	*id = item_get(it, "id");

	if (id == NULL || seen(w, id))
		return;
	if (w->nlive >= WAITFAIL_LIVE_MAX) {
		if (!w->capped)
			log_warn("%s... more failures are counted, not listed",
			    bar ? "\r\033[K" : "");
		w->capped = 1;
		return;
	}
	w->seen[w->nseen++] = xstrdup(id);
	w->nlive++;
	if (bar)
		fputs("\r\033[K", stderr);
	log_warn("%s %s: %s", id, item_get(it, "state"),
	    jobview_why(why, sizeof why, it));
}

struct live_arg {
	struct waitfail	*w;
	int		 bar;
};

static void
live_page(void *arg, const struct reply *r, size_t n)
{
	struct live_arg	*a = arg;
	size_t		 i;

	for (i = 0; i < n; i++)
		say(a->w, &r->items[i], a->bar);
}

/* After each status: the failures that are new since the last. */
void
waitfail_update(struct waitfail *w, struct conn *c, const struct reply *r,
    int bar)
{
	const struct item	*it;
	struct reply		*err;
	struct live_arg		 a = { w, bar };
	uint64_t		 nf;
	size_t			 i;
	int			 st;

	for (i = 0; i < r->nitems && i < w->nitems; i++) {
		it = &r->items[i];
		if (item_is(it, "array")) {
			nf = item_num(it, "failed");
			if (nf > w->failed[i] && !w->capped &&
			    tasks_walk(c, item_get(it, "id"), JS_FAILED,
			    2 * WAITFAIL_LIVE_MAX, live_page, &a, &err) < 0)
				reply_free(err);
			w->failed[i] = nf;
			continue;
		}
		st = jobview_state(it);
		if (st == JS_FAILED && w->failed[i] == 0) {
			w->failed[i] = 1;
			say(w, it, bar);
		}
	}
}

struct report_arg {
	uint64_t	 n;
};

static void
report_page(void *arg, const struct reply *r, size_t n)
{
	struct report_arg	*a = arg;
	char			 why[512];
	size_t			 i;

	for (i = 0; i < n; i++) {
		a->n++;
		log_warn("  %s: %s", item_get(&r->items[i], "id"),
		    jobview_why(why, sizeof why, &r->items[i]));
	}
}

/* At the end: each array's first failed tasks, with their reasons. */
void
waitfail_report(struct conn *c, const struct reply *r)
{
	const struct item	*it;
	struct reply		*err;
	struct report_arg	 a;
	uint64_t		 nf;
	size_t			 i;

	for (i = 0; i < r->nitems; i++) {
		it = &r->items[i];
		if (!item_is(it, "array") || (nf = item_num(it, "failed")) == 0)
			continue;
		log_warn("the first failed tasks of array %s:",
		    item_get(it, "id"));
		a.n = 0;
		if (tasks_walk(c, item_get(it, "id"), JS_FAILED,
		    WAITFAIL_REPORT_MAX, report_page, &a, &err) < 0)
			reply_free(err);
		if (nf > a.n)
			log_warn("  ... and %llu more: simq status %s --tasks "
			    "--state failed", (unsigned long long)(nf - a.n),
			    item_get(it, "id"));
	}
}
