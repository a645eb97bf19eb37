/*
 * state.c: the broker's one state, B, made and let go as a whole.
 *
 * Everything the job model knows hangs off B (queues, jobs, the finished
 * list, the timer heap, the id map) or the few module lists it names
 * (workers).  A program that uses the model (simqd, the unit tests, the
 * fuzz targets) calls broker_init() once before replay and broker_free()
 * at the end.
 */
#include <string.h>

#include "simqd.h"

static struct broker	broker;
struct broker		*B = &broker;

/* An empty state: no queue, no job, the first id 1.  Keeps B->cfg. */
void
broker_init(void)
{
	TAILQ_INIT(&B->queues);
	TAILQ_INIT(&B->jobs);
	TAILQ_INIT(&B->finished);
	B->nqueues = 0;
	B->njobs = 0;
	heap_init(&B->timers, due_less);
	idmap_init();
	B->next_id = 1;
	B->replaying = 0;
	B->nreplayed = 0;
	B->want_dispatch = B->want_wake = 0;
	B->snapshot_bytes = 0;
	B->nsubmitted = B->nfinished = B->nlost = 0;
	B->epoch = B->id_limit = B->id_durable = 0;
	B->epoch_open = B->early_ok = 0;
	B->pass = B->pass_leases = 0;
	B->nearly = B->nreattached = 0;
	memset(B->min_no, 0, sizeof B->min_no);
}

/* A job or task just ended in state (live, not on replay): counted in
 * the current minute's slot of the ring. */
void
minute_count(int state)
{
	uint64_t	m = B->now / 60000;
	int		i = (int)(m % MINUTES);

	if (B->replaying || (state != JS_DONE && state != JS_FAILED))
		return;
	if (B->min_no[i] != m) {
		B->min_no[i] = m;
		B->min_done[i] = B->min_failed[i] = 0;
	}
	if (state == JS_DONE)
		B->min_done[i]++;
	else
		B->min_failed[i]++;
}

/* Frees every job, worker and queue. */
void
broker_free(void)
{
	job_free_all();
	worker_free_all();
	queues_free();
	blob_free_all();
	heap_free(&B->timers);
	idmap_free();
}
