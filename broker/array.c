/*
 * array.c: arrays, one record for many tasks.
 *
 * An array's tasks are materialised, in index order, only when a worker
 * takes them; until then they are a count: the tasks [cursor, cut) are
 * the array's "block", in the array's own state (waiting until its gate
 * opens: dependencies done, delay over; then queued), and [cut, ntasks)
 * are those canceled or failed before they ever ran, in cut_state.  The
 * array sits in its queue's heap as one entry while its block has tasks
 * and its running limit (%N) allows one more, so a million-task array
 * costs one record and one heap slot.  Per-array counts by state move
 * with every task, so an array's state as a whole is a few comparisons.
 */
#include <stdlib.h>

#include "simqd.h"
#include "log.h"

/* An array's state, seen as a whole. */
int
job_array_state(const struct job *j)
{
	const struct array	*a = j->arr;
	const uint64_t		*c = a->count;

	if (c[JS_DONE] + c[JS_FAILED] + c[JS_CANCELED] == a->ntasks) {
		if (c[JS_FAILED])
			return JS_FAILED;
		if (c[JS_CANCELED])
			return JS_CANCELED;
		return JS_DONE;
	}
	if (c[JS_RUNNING])
		return JS_RUNNING;
	if (c[JS_QUEUED])
		return JS_QUEUED;
	return JS_WAITING;
}

/* An array belongs in its queue's heap while its gate is open, it has
 * tasks not yet materialised, and it is under its running limit. */
static int
array_eligible(const struct job *j)
{
	const struct array	*a = j->arr;

	return j->gate_open && a->cursor < a->cut &&
	    (a->spec.maxrun == 0 || a->running < a->spec.maxrun);
}

void
array_requeue(struct job *j)
{
	if (array_eligible(j)) {
		if (j->where != JH_READY)
			queue_ready(j);
	} else if (j->where == JH_READY)
		job_unheap(j);
}

/* Moves an array's block of unmaterialised pending tasks. */
void
array_block_state(struct job *j, int to)
{
	struct array	*a = j->arr;
	uint64_t	 n = a->cut - a->cursor;

	if (j->state != to && n) {
		queue_count(j->opts->q, j->state, to, n);
		a->count[j->state] -= n;
		a->count[to] += n;
	}
	j->state = to;
}

/* After a task changed: is the array now finished as a whole? */
void
array_check(struct job *j)
{
	int	st = job_array_state(j);

	if (st != JS_DONE && st != JS_FAILED && st != JS_CANCELED)
		return;
	if (j->res != NULL && j->res->in_flist)
		return;
	if (j->res == NULL) {
		j->res = xcalloc(1, sizeof *j->res);
		j->res->exit = -1;
	}
	job_unheap(j);
	/* Restored from a snapshot, an array keeps the time it finished. */
	if (j->res->finished == 0)
		j->res->finished = B->now;
	TAILQ_INSERT_TAIL(&B->finished, j, res->fentry);
	j->res->in_flist = 1;
	B->want_wake = 1;
	deps_notify(j, SIMQ_NOINDEX, st);
}

/* Makes the next task of an array real; it is queued, outside any heap. */
struct job *
job_materialise(struct job *aj)
{
	struct array	*a = aj->arr;
	struct job	*t;

	if (a->cursor >= a->cut)
		fatal("array %llu: nothing to materialise",
		    (unsigned long long)aj->id);
	t = xcalloc(1, sizeof *t);
	t->id = aj->id;
	t->index = (uint32_t)(a->spec.first + a->cursor * a->spec.step);
	t->kind = JK_TASK;
	t->state = aj->state;		/* the block's state: no count moves */
	t->opts = aj->opts;
	t->opts->refs++;
	t->parent = aj;
	t->submitted = aj->submitted;
	a->cursor++;
	TAILQ_INSERT_TAIL(&a->tasks, t, entry);
	idmap_put(t);
	if (t->state != JS_QUEUED)
		job_set_state(t, JS_QUEUED);
	return t;
}
