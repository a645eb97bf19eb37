/*
 * array.c: arrays, one record for many tasks.
 *
 * An array's tasks are materialised, in index order, only when a worker
 * takes them; until then they are a count: the tasks [cursor, cut) are
 * the array's "block", in the array's own state (waiting until its gate
 * opens: dependencies done, delay over; then queued), and [cut, ntasks)
 * are those canceled or failed before they ever ran, in cut_state.
 *
 * One task no worker has taken can be canceled or retried alone
 * (array_task): it gets its record out of order, and the cursor skips it
 * when it gets there, so the rest stays a count; nexc and nexc_cut count
 * those records, which the block and the rest do not.  The list of an
 * array's tasks is kept in index order (a snapshot writes it so).  The
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

/* The position of task index in array aj (its materialisation order), or
 * UINT64_MAX when the index is not one of the array's. */
uint64_t
array_pos(const struct job *aj, uint32_t index)
{
	const struct array_spec	*s = &aj->arr->spec;

	if (index < s->first || index > s->last ||
	    (index - s->first) % s->step != 0)
		return UINT64_MAX;
	return (uint64_t)(index - s->first) / s->step;
}

static uint32_t
index_at(const struct array *a, uint64_t pos)
{
	return (uint32_t)(a->spec.first + pos * a->spec.step);
}

/* Moves the cursor past tasks that have their record already. */
void
array_skip(struct job *aj)
{
	struct array	*a = aj->arr;

	while (a->nexc > 0 && a->cursor < a->cut &&
	    idmap_get(aj->id, index_at(a, a->cursor)) != NULL) {
		a->cursor++;
		a->nexc--;
	}
}

/* Puts task t into its array's list, in index order: at the end, unless
 * tasks made out of order are there. */
static void
tasks_insert(struct array *a, struct job *t)
{
	struct job	*p = TAILQ_LAST(&a->tasks, tasklist);

	while (p != NULL && p->index > t->index)
		p = TAILQ_PREV(p, tasklist, entry);
	if (p == NULL)
		TAILQ_INSERT_HEAD(&a->tasks, t, entry);
	else
		TAILQ_INSERT_AFTER(&a->tasks, p, t, entry);
}

/* A task record of array aj with index, in state, outside any heap. */
static struct job *
task_new(struct job *aj, uint32_t index, int state)
{
	struct job	*t = xcalloc(1, sizeof *t);

	t->id = aj->id;
	t->index = index;
	t->kind = JK_TASK;
	t->state = (uint8_t)state;
	t->opts = aj->opts;
	t->opts->refs++;
	t->parent = aj;
	t->submitted = aj->submitted;
	tasks_insert(aj->arr, t);
	idmap_put(t);
	return t;
}

/*
 * The record of task index of array aj, which has none (no worker took
 * it), made out of order so that a cancel or a retry can change it alone.
 * It is in the state it was counted in (the block's, or the rest's), so no
 * count moves, and nothing is journaled: the CANCEL or RETRY of the task
 * that follows is, and its replay makes the record the same way.
 */
struct job *
array_task(struct job *aj, uint32_t index)
{
	struct array	*a = aj->arr;
	uint64_t	 pos = array_pos(aj, index);
	struct job	*t;

	if (pos == UINT64_MAX || pos < a->cursor ||
	    idmap_get(aj->id, index) != NULL)
		fatal("array %llu: task %u is not pending",
		    (unsigned long long)aj->id, index);
	if (pos < a->cut) {
		t = task_new(aj, index, aj->state);
		a->nexc++;
		array_skip(aj);
	} else {
		t = task_new(aj, index, a->cut_state);
		a->nexc_cut++;
	}
	return t;
}

/* May the pending tasks of aj from position pos on be canceled as a
 * count (job_cut)?  When pos is in the block and the rest, if any, is
 * canceled already. */
int
array_cuttable(const struct job *aj, uint64_t pos)
{
	const struct array	*a = aj->arr;

	return pos >= a->cursor && pos < a->cut &&
	    (a->cut == a->ntasks || a->cut_state == JS_CANCELED);
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
	uint64_t	 n = a->cut - a->cursor - a->nexc;

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
	/* The block's state: no count moves. */
	t = task_new(aj, index_at(a, a->cursor), aj->state);
	a->cursor++;
	array_skip(aj);
	if (t->state != JS_QUEUED)
		job_set_state(t, JS_QUEUED);
	return t;
}
