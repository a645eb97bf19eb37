/*
 * job.c: the job model's state machine: a job (or a task) is submitted,
 * waits for its dependencies and delay, is queued, taken and leased,
 * and finishes, is retried after a backoff, re-queued when its worker is
 * lost, canceled or retried by hand, and forgotten after retention.
 *
 * Each exported function here is one state change.  It is called live by
 * a command handler or a timer, and again on replay by record.c with the
 * outcome the journal recorded; when live it appends that record itself,
 * so no change can reach memory without reaching the journal.
 * Consequences that follow from the state alone (a failed dependency
 * failing its dependents, an array finishing with its last task) are
 * derived, not journaled.  Arrays are array.c's, dependencies deps.c's.
 * Per-queue and per-array counts move with every change, so summaries
 * never walk the jobs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

static void	finish_unit(struct job *);

int
job_finished_state(int st)
{
	return st == JS_DONE || st == JS_FAILED || st == JS_CANCELED;
}

int
job_finished(const struct job *j)
{
	return job_finished_state(j->state);
}

uint64_t
backoff_ms(uint32_t failures)
{
	uint64_t	d = B->cfg.backoff_base_ms;

	while (failures-- > 1 && d < B->cfg.backoff_cap_ms)
		d *= 2;
	return d < B->cfg.backoff_cap_ms ? d : B->cfg.backoff_cap_ms;
}

/* Moves a job or task to a state, keeping the counts. */
void
job_set_state(struct job *j, int to)
{
	int	from = j->state;

	if (from == to)
		return;
	queue_count(j->opts->q, from, to, 1);
	if (j->kind == JK_TASK) {
		struct array *a = j->parent->arr;
		a->count[from]--;
		a->count[to]++;
		if (from == JS_RUNNING)
			a->running--;
		if (to == JS_RUNNING)
			a->running++;
	}
	j->state = to;
	j->pass = (uint8_t)B->pass;	/* changed in this pass (epoch.c) */
}

/* Creates one job, or an array when spec is given; takes a reference to
 * o and over c. */
static struct job *
job_new(uint64_t id, struct jobopts *o, struct cmd *c,
    const struct array_spec *spec, uint64_t submitted, uint64_t not_before)
{
	struct job	*j = xcalloc(1, sizeof *j);

	j->id = id;
	j->index = SIMQ_NOINDEX;
	o->refs++;
	j->opts = o;
	j->cmd = c;
	j->submitted = submitted;
	j->due = not_before;
	j->state = JS_WAITING;
	if (spec != NULL) {
		struct array *a = xcalloc(1, sizeof *a);
		a->spec = *spec;
		a->ntasks = proto_array_count(spec);
		a->cut = a->ntasks;
		TAILQ_INIT(&a->tasks);
		j->kind = JK_ARRAY;
		j->arr = a;
		a->count[JS_WAITING] = a->ntasks;
		queue_count(o->q, -1, JS_WAITING, a->ntasks);
	} else {
		j->kind = JK_JOB;
		queue_count(o->q, -1, JS_WAITING, 1);
	}
	idmap_put(j);
	TAILQ_INSERT_TAIL(&B->jobs, j, entry);
	if (id >= B->next_id)
		B->next_id = id + 1;
	B->nsubmitted++;
	if (o->ndeps)
		deps_resolve(j);
	else
		job_gate_check(j);	/* the common case, without a call */
	/* Its SUBMIT is its only record: its lease may go early (epoch.c). */
	j->pass = (uint8_t)(B->pass - 1);
	return j;
}

/*
 * SUBMIT and BATCH: creates count jobs with ids first, first + 1, ... from
 * cmds[0..count), or, when spec is given (count is then 1), one array.
 * Live, journals the submit first.  Each job takes its own reference to
 * o (the caller keeps its own) and takes over its command (not the cmds
 * array).  Dependencies are resolved now: ones already done count as
 * satisfied, one already failed or canceled fails the job.  Returns the
 * first job.
 */
struct job *
job_submit(uint64_t first, uint32_t count, struct jobopts *o,
    struct cmd **cmds, const struct array_spec *spec, uint64_t submitted,
    uint64_t not_before)
{
	struct job	*j = NULL, *j0 = NULL;
	uint32_t	 i;

	if (!B->replaying) {
		struct buf b;
		buf_init(&b);
		rec_submit(&b, first, count, o, cmds, spec, submitted,
		    not_before);
		journal_put(REC_SUBMIT, &b);
	}
	for (i = 0; i < count; i++) {
		j = job_new(first + i, o, cmds[i], spec, submitted, not_before);
		if (j0 == NULL)
			j0 = j;
	}
	return j0;
}

struct job *
job_submit_lines(uint64_t id, struct jobopts *o, struct cmd *c,
    const struct array_spec *spec, struct entries *e, uint64_t submitted,
    uint64_t not_before)
{
	struct job	*j;

	if (!B->replaying) {
		struct buf b;
		buf_init(&b);
		rec_submit_lines(&b, id, o, c, spec, e, submitted, not_before);
		journal_put(REC_SUBMIT, &b);
	}
	j = job_new(id, o, c, spec, submitted, not_before);
	j->arr->ent = e;
	return j;
}

/* The attempt of j is over: it leaves its worker. */
static void
run_end(struct job *j)
{
	struct run	*r = j->run;

	if (r == NULL)
		return;
	TAILQ_REMOVE(&r->w->jobs, j, run->wentry);
	r->w->njobs--;
	fit_hold(r->w, j->opts, -1);
	worker_gc(r->w);
	free(r);
	j->run = NULL;
	j->due = 0;		/* the lease's end: it has none now */
}

/* The state a unit's failure or cancel lands in, with a reason. */
static void
set_reason(struct job *j, const char *reason)
{
	if (j->res == NULL) {
		j->res = xcalloc(1, sizeof *j->res);
		j->res->exit = -1;
	}
	free(j->res->reason);
	j->res->reason = reason ? xstrdup(reason) : NULL;
}

/* Ends a job, task or whole array that never ran (or was canceled) in
 * state to, with a reason. */
void
job_end_now(struct job *j, int to, const char *reason)
{
	job_unheap(j);
	deps_unregister(j);
	if (j->kind == JK_ARRAY) {
		struct array *a = j->arr;
		struct job *t;
		TAILQ_FOREACH(t, &a->tasks, entry) {
			if (!job_finished(t)) {
				if (t->state == JS_RUNNING)
					worker_drop(t->run->w, t,
					    to == JS_CANCELED ? "canceled" :
					    "dependency-failed");
				job_end_now(t, to, reason);
			}
		}
		if (a->cut > a->cursor) {
			uint64_t n = a->cut - a->cursor - a->nexc;
			/* The rest has one state: a block cut off after part of
			 * it was canceled (job_cut) is canceled with it. */
			int bto = a->cut < a->ntasks ? a->cut_state : to;
			queue_count(j->opts->q, j->state, bto, n);
			a->count[j->state] -= n;
			a->count[bto] += n;
			a->cut = a->cursor;
			a->cut_state = bto;
			a->nexc_cut += a->nexc;
			a->nexc = 0;
			deps_notify_cut(j, bto);
		}
		set_reason(j, reason);
		array_check(j);
		return;
	}
	if (j->state == JS_RUNNING)
		run_end(j);
	set_reason(j, reason);
	job_set_state(j, to);
	finish_unit(j);
}

/* Called when a job or task reaches done, failed or canceled. */
static void
finish_unit(struct job *j)
{
	if (j->res == NULL) {
		j->res = xcalloc(1, sizeof *j->res);
		j->res->exit = -1;
	}
	j->res->finished = B->now;
	B->nfinished++;
	minute_count(j->state);
	B->want_wake = 1;
	if (j->kind == JK_TASK) {
		struct job *a = j->parent;
		deps_notify(a, j->index, j->state);
		array_check(a);
		array_requeue(a);
		return;
	}
	TAILQ_INSERT_TAIL(&B->finished, j, res->fentry);
	j->res->in_flist = 1;
	deps_notify(j, SIMQ_NOINDEX, j->state);
}

/* A waiting job, task or array becomes queued once its dependencies are
 * done and its delay is over. */
void
job_gate_check(struct job *j)
{
	if (job_finished(j) || j->ndeps_left > 0)
		return;
	if (j->kind == JK_ARRAY) {
		struct job *t;
		if (j->gate_open)
			return;
		if (j->due > B->now) {
			timer_set(j, j->due);
			return;
		}
		j->gate_open = 1;
		array_block_state(j, JS_QUEUED);
		array_requeue(j);
		/* Tasks retried alone before the gate opened. */
		TAILQ_FOREACH(t, &j->arr->tasks, entry)
			if (t->state == JS_WAITING)
				job_gate_check(t);
		return;
	}
	if (j->state != JS_WAITING)
		return;
	/* A task retried alone waits for its array's gate. */
	if (j->kind == JK_TASK && !j->parent->gate_open)
		return;
	if (j->due > B->now) {
		timer_set(j, j->due);
		return;
	}
	job_set_state(j, JS_QUEUED);
	queue_ready(j);
}

/*
 * Leases j to worker w as attempt number attempt, until lease_until.  Live,
 * journals the grant before the reply that carries the job can go out.
 */
void
job_lease(struct job *j, struct worker *w, uint32_t attempt, uint64_t started,
    uint64_t lease_until)
{
	struct run	*r = xcalloc(1, sizeof *r);

	if (!B->replaying) {
		r->early = lease_early_ok(j);
		B->pass_leases++;
	}
	job_unheap(j);
	r->w = w;
	r->started = started;
	j->run = r;
	{
		/* Numbers a crash may have forgotten stay skipped past this
		 * one (a re-attached attempt may be below the last). */
		uint64_t top = (uint64_t)j->attempts + j->skip;
		j->skip = top > attempt ? (uint16_t)(top - attempt) : 0;
	}
	j->attempts = attempt;
	TAILQ_INSERT_TAIL(&w->jobs, j, run->wentry);
	w->njobs++;
	fit_hold(w, j->opts, 1);
	job_set_state(j, JS_RUNNING);
	timer_set(j, lease_until);
	if (j->kind == JK_TASK)
		array_requeue(j->parent);
	if (!B->replaying) {
		struct buf b;
		buf_init(&b);
		rec_lease(&b, j, w->name, w->host ? w->host : "", w->lease_ms);
		journal_put(REC_LEASE, &b);
	}
}

/*
 * TAKE: leases the best ready job of q that fits free (fit.c) to w, as a
 * new attempt, for w's lease length.  Returns it, or NULL when q is
 * paused or has nothing that fits; *reserved is set when w is to take
 * nothing more now, kept for a job that has waited at the head of q
 * (queue_take_fit).
 */
struct job *
job_take(struct queue *q, struct worker *w, const struct fit *free,
    const struct fit *total, int *reserved)
{
	struct job	*j = queue_take_fit(q, free, total, reserved);

	if (j != NULL)
		job_lease(j, w, j->attempts + j->skip + 1, B->now,
		    B->now + w->lease_ms);
	return j;
}


void
result_free(struct result *r)
{
	if (r == NULL)
		return;
	free(r->worker);
	free(r->host);
	free(r->outpath);
	free(r->reason);
	free(r->data);
	jobfiles_ref(r->got, 0);
	jobfiles_free(r->got);
	free(r);
}

/*
 * The running attempt of j ended with result res (taken over), and the
 * job goes to state: done, failed, or waiting/queued for a retry after a
 * backoff ending at due.
 */
void
job_finish(struct job *j, struct result *res, int state, uint64_t due)
{
	job_unheap(j);
	run_end(j);
	if (j->res != NULL && j->res->in_flist)
		fatal("job %llu finished twice", (unsigned long long)j->id);
	result_free(j->res);
	j->res = res;
	if (state == JS_DONE || state == JS_FAILED) {
		job_set_state(j, state);
		if (!B->replaying) {
			struct buf b;
			buf_init(&b);
			rec_finish(&b, j);
			journal_put(REC_FINISH, &b);
		}
		finish_unit(j);
		return;
	}
	j->failures++;
	job_set_state(j, JS_WAITING);
	j->due = due;
	if (!B->replaying) {
		struct buf b;
		buf_init(&b);
		rec_finish(&b, j);
		journal_put(REC_FINISH, &b);
	}
	job_gate_check(j);
}

/*
 * The running attempt of j ended with res (taken over); ok says whether
 * it succeeded.  Decides what follows: done; a retry after a backoff while
 * the job has retries left; or failed, with a reason.
 */
void
job_end_attempt(struct job *j, struct result *res, int ok)
{
	uint64_t	due = 0;
	int		state;
	char		reason[64];

	res->finished = B->now;
	if (ok)
		state = JS_DONE;
	else if (j->failures < j->opts->retries) {
		state = JS_WAITING;
		due = B->now + backoff_ms(j->failures + 1u);
	} else
		state = JS_FAILED;
	if (!ok && res->reason == NULL) {
		if (res->timedout)
			snprintf(reason, sizeof reason, "timed out");
		else if (res->sig > 0)
			snprintf(reason, sizeof reason, "killed by signal %d",
			    res->sig);
		else
			snprintf(reason, sizeof reason, "exit status %d",
			    res->exit);
		res->reason = xstrdup(reason);
	}
	job_finish(j, res, state, due);
}

/* The lease of running j ended without a result: its worker was lost (it
 * is re-queued unless it has been lost too often) or released it. */
void
job_requeue(struct job *j, int lost, uint64_t due)
{
	char	reason[96];

	run_end(j);
	job_unheap(j);
	if (lost)
		j->lost++;
	if (!B->replaying) {
		struct buf b;
		buf_init(&b);
		rec_requeue(&b, j, lost, due);
		journal_put(REC_REQUEUE, &b);
	}
	if (lost) {
		B->nlost++;
		if (j->lost > B->cfg.max_lost) {
			snprintf(reason, sizeof reason, "its worker was lost %u "
			    "times%s", j->lost, lost == RQ_SHEPHERD_LOST ?
			    " (the last time its shepherd process died)" : "");
			set_reason(j, reason);
			job_set_state(j, JS_FAILED);
			finish_unit(j);
			return;
		}
		set_reason(j, lost == RQ_SHEPHERD_LOST ? "its shepherd "
		    "process died" : "its worker was lost");
	}
	job_set_state(j, JS_WAITING);
	j->due = due;
	job_gate_check(j);
}

/*
 * Cancels a job, a task or a whole array.  Returns the number of jobs and
 * tasks canceled (0 when already finished).
 */
uint64_t
job_cancel(struct job *j, const char *reason)
{
	uint64_t	before;

	if (j->kind == JK_ARRAY) {
		int st = job_array_state(j);
		if (st == JS_DONE || st == JS_FAILED || st == JS_CANCELED)
			return 0;
		before = j->arr->count[JS_CANCELED];
		if (!B->replaying) {
			struct buf b;
			buf_init(&b);
			rec_event(&b, j);
			journal_put(REC_CANCEL, &b);
		}
		job_end_now(j, JS_CANCELED, reason);
		return j->arr->count[JS_CANCELED] - before;
	}
	if (job_finished(j))
		return 0;
	if (!B->replaying) {
		struct buf b;
		buf_init(&b);
		rec_event(&b, j);
		journal_put(REC_CANCEL, &b);
	}
	if (j->state == JS_RUNNING)
		worker_drop(j->run->w, j, "canceled");
	job_end_now(j, JS_CANCELED, reason);
	return 1;
}

/*
 * Cancels the pending tasks of array aj, those no worker has taken, from
 * position pos on (array_cuttable must allow it), as a count: a range to
 * the end of a million-task array costs no record per task.  Returns how
 * many.
 */
uint64_t
job_cut(struct job *aj, uint64_t pos)
{
	struct array	*a = aj->arr;
	struct job	*t;
	uint64_t	 moved = 0, n;

	if (!array_cuttable(aj, pos))
		return 0;
	if (!B->replaying) {
		struct buf b;
		buf_init(&b);
		rec_cut(&b, aj, pos);
		journal_put(REC_CUT, &b);
	}
	/* Records made out of order there go from the block to the rest. */
	if (a->nexc > 0)
		TAILQ_FOREACH(t, &a->tasks, entry) {
			uint64_t p = array_pos(aj, t->index);
			if (p >= pos && p < a->cut)
				moved++;
		}
	n = a->cut - pos - moved;
	queue_count(aj->opts->q, aj->state, JS_CANCELED, n);
	a->count[aj->state] -= n;
	a->count[JS_CANCELED] += n;
	a->nexc -= moved;
	a->nexc_cut += moved;
	a->cut = pos;
	a->cut_state = JS_CANCELED;
	B->want_wake = 1;
	deps_notify_cut(aj, JS_CANCELED);
	array_requeue(aj);
	array_check(aj);
	return n;
}

/* Takes a finished job or array off the finished list (for a retry). */
static void
unfinish(struct job *j)
{
	if (j->res != NULL && j->res->in_flist) {
		TAILQ_REMOVE(&B->finished, j, res->fentry);
		j->res->in_flist = 0;
	}
	if (j->res != NULL)
		j->res->finished = 0;
	j->depfailed = 0;	/* if it fails again, it says why again */
}

static int
retry_unit(struct job *j)
{
	if (j->state != JS_FAILED && j->state != JS_CANCELED)
		return 0;
	if (j->kind == JK_JOB)
		unfinish(j);
	j->failures = 0;
	j->lost = 0;
	j->due = 0;
	j->depfailed = 0;
	job_set_state(j, JS_WAITING);
	if (j->kind == JK_JOB)
		deps_resolve(j);
	else
		job_gate_check(j);
	return 1;
}

static uint64_t	retry_one(struct job *);

/* Does a dependency of w of kind ok name j: j itself, a task of array j,
 * or, when j is a task, it or its array as a whole? */
static int
waits_on(const struct job *w, const struct job *j)
{
	uint32_t	i;

	for (i = 0; i < w->opts->ndeps; i++) {
		const struct simq_id *d = &w->opts->deps[i];
		if ((w->opts->depkind != NULL &&
		    w->opts->depkind[i] != SIMQ_DEP_OK) || d->id != j->id)
			continue;
		/* A task retried un-finishes its array too. */
		if (j->kind != JK_TASK || d->index == j->index ||
		    d->index == SIMQ_NOINDEX)
			return 1;
	}
	return 0;
}

/*
 * After j was retried: re-queues the jobs and arrays that failed because
 * j did (their dependency on it of kind ok), and theirs down the chain.
 * Follows from the RETRY of j and the state, so it is not journaled; on
 * replay the same walk finds the same ones.  Returns how many were
 * re-queued and are not failed again at once (by another dependency).
 * Walks every job once per one re-queued: a retry is rare, and a failed
 * chain short.
 */
static uint64_t
deps_retry(struct job *j)
{
	struct job	**todo = NULL, *w;
	size_t		  n = 0, cap = 0;
	uint64_t	  again = 0;

	for (;;) {
		TAILQ_FOREACH(w, &B->jobs, entry) {
			int st = w->kind == JK_ARRAY ? job_array_state(w) :
			    w->state;
			/* Canceled too: a block cut off with a canceled rest. */
			if (!w->depfailed || (st != JS_FAILED &&
			    st != JS_CANCELED) || !waits_on(w, j))
				continue;
			retry_one(w);
			st = w->kind == JK_ARRAY ? job_array_state(w) : w->state;
			if (st != JS_FAILED && st != JS_CANCELED)
				again++;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				todo = xreallocarray(todo, cap, sizeof *todo);
			}
			todo[n++] = w;
		}
		if (n == 0)
			break;
		j = todo[--n];
	}
	free(todo);
	return again;
}

/*
 * Re-queues a failed or canceled job or task, or an array's failed and
 * canceled tasks, with a fresh retry budget, and the dependents that
 * failed because it had (their number in *ndependents, if not NULL).
 * Returns how many jobs and tasks of j.
 */
uint64_t
job_retry(struct job *j, uint64_t *ndependents)
{
	uint64_t	n;

	if (j->kind != JK_ARRAY) {
		if (j->state != JS_FAILED && j->state != JS_CANCELED)
			return 0;
	} else {
		struct array *a = j->arr;
		if (a->count[JS_FAILED] + a->count[JS_CANCELED] == 0)
			return 0;
	}
	if (!B->replaying) {
		struct buf b;
		buf_init(&b);
		rec_event(&b, j);
		journal_put(REC_RETRY, &b);
	}
	n = retry_one(j);
	if (ndependents != NULL)
		*ndependents = deps_retry(j);
	else
		deps_retry(j);
	return n;
}

/* job_retry's change, not journaled. */
static uint64_t
retry_one(struct job *j)
{
	uint64_t	 n = 0;
	struct job	*t, *next;

	if (j->kind != JK_ARRAY) {
		if (j->state != JS_FAILED && j->state != JS_CANCELED)
			return 0;
	} else {
		struct array *a = j->arr;
		if (a->count[JS_FAILED] + a->count[JS_CANCELED] == 0)
			return 0;
	}
	if (j->kind != JK_ARRAY) {
		n = retry_unit(j);
		if (j->kind == JK_TASK) {
			struct job *a = j->parent;
			unfinish(a);
			/* Its array failed before its gate opened: it waits on
			 * the array's dependencies again, as a retried array. */
			if (!a->gate_open && a->ndeps_left == 0)
				deps_resolve(a);
			array_requeue(a);
		}
		return n;
	}
	struct array *a = j->arr;
	unfinish(j);
	for (t = TAILQ_FIRST(&a->tasks); t != NULL; t = next) {
		next = TAILQ_NEXT(t, entry);
		n += retry_unit(t);
	}
	if (a->cut < a->ntasks) {
		/* The block never materialised: back to the gate's state. */
		uint64_t k = a->ntasks - a->cut - a->nexc_cut;
		int to = j->gate_open ? JS_QUEUED : JS_WAITING;
		queue_count(j->opts->q, a->cut_state, to, k);
		a->count[a->cut_state] -= k;
		a->count[to] += k;
		a->cut = a->ntasks;
		a->nexc += a->nexc_cut;
		a->nexc_cut = 0;
		j->state = to;
		n += k;
		array_skip(j);
	}
	if (!j->gate_open && j->ndeps_left == 0)
		deps_resolve(j);
	array_requeue(j);
	return n;
}

/* The lease of running job j ran out: its worker is lost to it. */
static void
lease_expired(struct job *j)
{
	struct worker	*w = j->run->w;
	char		 id[32];

	proto_format_id(id, j->id, j->index);
	log_info("job %s: lease of worker %s ran out (attempt %u), re-queued",
	    id, w->name, j->attempts);
	/* A worker that let a lease run out may be frozen or cut off: it gets
	 * no new job until it speaks again, or its own waiting TAKE would
	 * take this one straight back. */
	w->suspect = 1;
	worker_drop(w, j, "lease-expired");
	job_requeue(j, RQ_WORKER_LOST, 0);
}

/* A timer of j came due (timer.c): a delay or backoff ended, or a lease
 * ran out. */
void
job_due(struct job *j)
{
	job_unheap(j);
	if (j->state == JS_RUNNING) {
		lease_expired(j);
		return;
	}
	j->due = 0;
	{
		/* A delay's end is not journaled: it does not hold back an
		 * early lease (epoch.c), unlike what was in this pass. */
		uint8_t pass = j->pass;
		job_gate_check(j);
		j->pass = pass;
	}
}

/* Frees a job or array (and its tasks) that is no longer referenced. */
static void
job_free(struct job *j)
{
	struct job	*t;

	job_unheap(j);
	idmap_del(j);
	if (j->kind == JK_ARRAY) {
		struct array *a = j->arr;
		int s;
		while ((t = TAILQ_FIRST(&a->tasks)) != NULL) {
			TAILQ_REMOVE(&a->tasks, t, entry);
			job_free(t);
		}
		for (s = 0; s < JS__COUNT; s++)
			if (a->count[s] && j->opts->q != NULL)
				queue_count(j->opts->q, s, -1, a->count[s]);
		entries_free(a->ent);
		free(a);
	} else if (j->kind == JK_JOB)
		queue_count(j->opts->q, j->state, -1, 1);
	while (j->dependents != NULL) {
		struct dep *d = j->dependents;
		j->dependents = d->next;
		free(d);
	}
	if (j->run != NULL)
		run_end(j);
	result_free(j->res);
	jobopts_unref(j->opts);
	free(j->cmd);
	free(j);
}

/* Forgets jobs and arrays that finished more than the retention ago. */
void
job_expire(uint64_t now)
{
	struct job	*j;
	struct queue	*q;

	while ((j = TAILQ_FIRST(&B->finished)) != NULL) {
		if (j->res->finished + B->cfg.retention_ms > now)
			break;
		TAILQ_REMOVE(&B->finished, j, res->fentry);
		j->res->in_flist = 0;
		TAILQ_REMOVE(&B->jobs, j, entry);
		q = j->opts->q;
		job_free(j);
		queue_gc(q);
	}
}

void
job_free_all(void)
{
	struct job	*j;

	jobopts_free_cache();
	while ((j = TAILQ_FIRST(&B->jobs)) != NULL) {
		TAILQ_REMOVE(&B->jobs, j, entry);
		if (j->res != NULL && j->res->in_flist)
			TAILQ_REMOVE(&B->finished, j, res->fentry);
		if (j->res != NULL)
			j->res->in_flist = 0;
		job_free(j);
	}
}
