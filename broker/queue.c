/*
 * queue.c: named queues, each a heap of ready jobs (heap.c), and the two
 * changes a queue itself goes through: pause and resume.
 *
 * A queue hands out its highest-priority job first and, among equals, the
 * oldest (smallest id).  An array sits in its queue's heap as one entry
 * for all its tasks not yet materialised, so a million-task array costs
 * one heap slot.
 *
 * Per-state counts are kept incrementally as jobs move, so a summary of all
 * queues costs O(queues), not O(jobs).  The counts also say when a queue is
 * no longer used: a queue that holds no job (finished ones included) and
 * is not paused is forgotten, so that names, typos included, cannot pile
 * up against the queue limit.  A queue is therefore made by the first job
 * submitted to it and by nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

/* Higher priority first, then lower id, then lower task index. */
int
ready_less(const struct job *a, const struct job *b)
{
	if (a->opts->prio != b->opts->prio)
		return a->opts->prio > b->opts->prio;
	if (a->id != b->id)
		return a->id < b->id;
	return a->index < b->index;
}

/*
 * Returns the queue called name, creating it when create is set (and the
 * limit allows).  NULL when it does not exist or cannot be made.
 */
struct queue *
queue_get(const char *name, size_t len, int create)
{
	struct queue	*q;

	TAILQ_FOREACH(q, &B->queues, entry) {
		if (strlen(q->name) == len && memcmp(q->name, name, len) == 0)
			return q;
	}
	/* Replay takes what live accepted: queues the journal names may
	 * have been forgotten live, after retention, since. */
	if (!create || (B->nqueues >= SIMQ_QUEUES_MAX && !B->replaying))
		return NULL;
	q = xcalloc(1, sizeof *q);
	q->name = xstrndup(name, len);
	TAILQ_INIT(&q->active);
	TAILQ_INSERT_TAIL(&B->queues, q, entry);
	B->nqueues++;
	return q;
}

/* Moves n units (jobs or tasks) of q from state from to state to; -1 for
 * "none" on either side (a new or a forgotten job). */
void
queue_count(struct queue *q, int from, int to, uint64_t n)
{
	if (from >= 0) {
		if (q->count[from] < n)
			fatal("queue %s: count of %s below zero", q->name,
			    proto_state_name(from));
		q->count[from] -= n;
	}
	if (to >= 0)
		q->count[to] += n;
}

void
queues_free(void)
{
	struct queue	*q;

	while ((q = TAILQ_FIRST(&B->queues)) != NULL) {
		TAILQ_REMOVE(&B->queues, q, entry);
		lanes_free(q);
		free(q->name);
		free(q);
	}
	B->nqueues = 0;
}

/* The number of jobs and tasks q holds, in any state. */
static uint64_t
queue_total(const struct queue *q)
{
	uint64_t	n = 0;
	int		s;

	for (s = 0; s < JS__COUNT; s++)
		n += q->count[s];
	return n;
}

static void
queue_free(struct queue *q)
{
	TAILQ_REMOVE(&B->queues, q, entry);
	B->nqueues--;
	lanes_free(q);
	free(q->name);
	free(q);
}

/*
 * Forgets q if it holds no job and is not paused.  Called where a queue
 * may become unused: a job forgotten after retention, a RESUME, the end of
 * replay (a journal may name queues that no longer hold anything).  Not
 * journaled: whether a queue exists follows from the jobs and pauses.
 */
void
queue_gc(struct queue *q)
{
	if (q == NULL || B->replaying || q->paused || queue_total(q) != 0)
		return;
	jobopts_forget_queue(q);
	queue_free(q);
}

/*
 * Pauses (paused = 1) or resumes q: a paused queue keeps its jobs but hands
 * none out.  Live, journals the change; replay calls it with the record's.
 * A resumed queue with nothing in it is forgotten.
 */
void
queue_pause(struct queue *q, int paused)
{
	if (q->paused == paused)
		return;
	q->paused = paused;
	if (!B->replaying) {
		struct buf b;
		buf_init(&b);
		rec_queue(&b, q);
		journal_put(paused ? REC_PAUSE : REC_RESUME, &b);
	}
	if (!paused) {
		B->want_dispatch = 1;
		queue_gc(q);
	}
}
