/*
 * deps.c: dependencies ("after=[KIND:]ID,..."): a job, an array or one
 * task of an array that a job (or an array) waits on, until it is done
 * (kind ok), has finished however (any), or has failed or been canceled
 * (failed).
 *
 * A waiter registers on what it waits for, once per dependency that is
 * not already satisfied, and counts them (job->ndeps_left).  A task, with
 * a record or not yet materialised, is waited on through its array, with
 * the task's index: every task's end passes through its array
 * (finish_unit in job.c), and a task that has no record has nowhere else
 * to hold the list.  When the target ends, an end that meets the
 * dependency's kind releases the waiter; one that cannot fails it (ok:
 * the target failed or was canceled) or cancels it (failed: the target
 * was done, so what was to run after a failure is not needed), and so on
 * down the chain.  A waiter failed that way is marked (depfailed) so that
 * a retry of what failed can re-queue it (deps_retry).
 *
 * Nothing here is journaled: registering follows from a SUBMIT (or a
 * RETRY, or a restored snapshot), and releasing from the end of the
 * target, both of which are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

/* The position of task index in array a (its materialisation order). */
static uint64_t
task_pos(const struct job *a, uint32_t index)
{
	const struct array_spec	*s = &a->arr->spec;

	return index < s->first ? UINT64_MAX :
	    (uint64_t)(index - s->first) / s->step;
}

/*
 * What dependency d names, and where its waiters register: a job or an
 * array registers on itself, a task on its array.  Returns that job, or
 * NULL when it is gone (forgotten after its retention, so it was done);
 * sets *state to the state of what d names.
 */
static struct job *
dep_target(const struct simq_id *d, int *state)
{
	struct job	*t, *a;
	uint64_t	 pos;

	if (d->index == SIMQ_NOINDEX) {
		if ((t = idmap_get(d->id, SIMQ_NOINDEX)) == NULL)
			return NULL;
		*state = t->kind == JK_ARRAY ? job_array_state(t) : t->state;
		return t;
	}
	if ((a = idmap_get(d->id, SIMQ_NOINDEX)) == NULL || a->kind != JK_ARRAY)
		return NULL;
	if ((t = idmap_get(d->id, d->index)) != NULL)
		*state = t->state;
	else {
		/* Pending: in the array's block, or in its cut-off rest. */
		pos = task_pos(a, d->index);
		*state = pos < a->arr->cut ? a->state : a->arr->cut_state;
	}
	return a;
}

/* For a live SUBMIT: every dependency must exist.  Returns PERR_NONE, or
 * PERR_NOTFOUND with a message. */
int
job_deps_check(const struct jobopts *o, char *msg, size_t len)
{
	uint32_t	 i;
	struct job	*a;
	char		 id[32];

	for (i = 0; i < o->ndeps; i++) {
		const struct simq_id *d = &o->deps[i];
		proto_format_id(id, d->id, d->index);
		if (d->index == SIMQ_NOINDEX) {
			if (idmap_get(d->id, SIMQ_NOINDEX) == NULL)
				goto missing;
			continue;
		}
		if ((a = idmap_get(d->id, SIMQ_NOINDEX)) == NULL ||
		    a->kind != JK_ARRAY)
			goto missing;
		const struct array_spec *s = &a->arr->spec;
		if (d->index < s->first || d->index > s->last ||
		    (d->index - s->first) % s->step != 0)
			goto missing;
	}
	return PERR_NONE;
missing:
	snprintf(msg, len, "dependency %s does not exist", id);
	return PERR_NOTFOUND;
}

static void
dep_add(struct job *on, struct job *waiter, uint32_t index, int kind)
{
	struct dep	*d = xmalloc(sizeof *d);

	d->waiter = waiter;
	d->index = index;
	d->kind = (uint8_t)kind;
	d->next = on->dependents;
	on->dependents = d;
	waiter->ndeps_left++;
}

/* Drops every dependency registration of w (before a cancel or a failure
 * makes them moot). */
void
deps_unregister(struct job *w)
{
	uint32_t	 i;
	int		 st;

	if (w->ndeps_left == 0)
		return;
	for (i = 0; i < w->opts->ndeps; i++) {
		struct job *t = dep_target(&w->opts->deps[i], &st);
		struct dep **pp;
		if (t == NULL)
			continue;
		for (pp = &t->dependents; *pp != NULL;) {
			if ((*pp)->waiter == w) {
				struct dep *d = *pp;
				*pp = d->next;
				free(d);
				w->ndeps_left--;
			} else
				pp = &(*pp)->next;
		}
	}
	w->ndeps_left = 0;
}

/*
 * Failures spread down dependency chains through a worklist rather than
 * recursion: a chain of a hundred thousand jobs must not use a hundred
 * thousand stack frames.
 */
struct pending_fail {
	struct job	*j;
	int		 to;		/* JS_FAILED or JS_CANCELED */
	char		 reason[128];
};
static struct pending_fail	*pf;
static size_t			 npf, cappf;
static int			 draining;

static int
unit_finished(const struct job *j)
{
	if (j->kind == JK_ARRAY) {
		int st = job_array_state(j);
		return st == JS_DONE || st == JS_FAILED || st == JS_CANCELED;
	}
	return job_finished(j);
}

static void
fail_drain(void)
{
	struct pending_fail	p;

	if (draining)
		return;
	draining = 1;
	while (npf > 0) {
		p = pf[--npf];
		if (!unit_finished(p.j)) {
			p.j->depfailed = p.to == JS_FAILED;
			job_end_now(p.j, p.to, p.reason);
		}
	}
	draining = 0;
}

/* Does a target ending in state meet a dependency of kind? */
static int
dep_met(int kind, int state)
{
	switch (kind) {
	case SIMQ_DEP_ANY:
		return 1;
	case SIMQ_DEP_FAILED:
		return state != JS_DONE;
	default:
		return state == JS_DONE;
	}
}

/* What a dependency of kind that can no longer be met does to its
 * waiter, and why. */
static int
dep_unmet(int kind, const char *id, int state, char *reason, size_t len)
{
	if (kind == SIMQ_DEP_FAILED) {
		snprintf(reason, len, "dependency %s %s, and it was to run "
		    "after a failure (after-failed)", id,
		    proto_state_name(state));
		return JS_CANCELED;
	}
	snprintf(reason, len, "dependency %s %s", id, proto_state_name(state));
	return JS_FAILED;
}

/* Unlinks *pp and tells its waiter that what it waited on (named id)
 * ended in state. */
static void
release(struct dep **pp, const char *id, int state)
{
	struct dep	*d = *pp;
	struct job	*w = d->waiter;
	int		 kind = d->kind;

	*pp = d->next;
	free(d);
	w->ndeps_left--;
	if (dep_met(kind, state)) {
		job_gate_check(w);
		return;
	}
	if (npf == cappf) {
		cappf = cappf ? cappf * 2 : 64;
		pf = xreallocarray(pf, cappf, sizeof *pf);
	}
	pf[npf].j = w;
	pf[npf].to = dep_unmet(kind, id, state, pf[npf].reason,
	    sizeof pf[npf].reason);
	npf++;
}

/*
 * Tells the dependents of j waiting on index (SIMQ_NOINDEX: on j as a
 * whole; else on that task of array j) that it ended in state.
 */
void
deps_notify(struct job *j, uint32_t index, int state)
{
	struct dep	**pp;
	char		  id[32];

	proto_format_id(id, j->id, index);
	for (pp = &j->dependents; *pp != NULL;) {
		if ((*pp)->index == index)
			release(pp, id, state);
		else
			pp = &(*pp)->next;
	}
	fail_drain();
}

/*
 * Array j's block of pending tasks was cut off (canceled, or failed with
 * a dependency): tells those waiting on one of them, as deps_notify does
 * for a task that ends with a record.
 */
void
deps_notify_cut(struct job *j, int state)
{
	struct dep	**pp;
	char		  id[32];

	for (pp = &j->dependents; *pp != NULL;) {
		uint32_t index = (*pp)->index;
		if (index != SIMQ_NOINDEX && idmap_get(j->id, index) == NULL &&
		    task_pos(j, index) >= j->arr->cut) {
			proto_format_id(id, j->id, index);
			release(pp, id, state);
		} else
			pp = &(*pp)->next;
	}
	fail_drain();
}

/*
 * Registers j's dependencies (at submit, at retry, when restored).  Ones
 * already done count as satisfied; one already failed or canceled fails
 * j now.
 */
void
deps_resolve(struct job *j)
{
	uint32_t	 i;
	int		 st, kind, to;
	char		 reason[128], id[32];

	for (i = 0; i < j->opts->ndeps; i++) {
		const struct simq_id *d = &j->opts->deps[i];
		struct job *t = dep_target(d, &st);

		kind = j->opts->depkind ? j->opts->depkind[i] : SIMQ_DEP_OK;
		if (t == NULL)
			st = JS_DONE;	/* forgotten after retention: it was done */
		if (st == JS_DONE || st == JS_FAILED || st == JS_CANCELED) {
			if (dep_met(kind, st))
				continue;
			proto_format_id(id, d->id, d->index);
			to = dep_unmet(kind, id, st, reason, sizeof reason);
			/* Those registered already are dropped by job_end_now. */
			j->depfailed = to == JS_FAILED;
			job_end_now(j, to, reason);
			return;
		}
		dep_add(t, j, d->index, kind);
	}
	job_gate_check(j);
}
