/*
 * idmap.c: jobs and materialised tasks by (id, index), and what an id
 * names: a job, an array, a task with a record, or a task of an array
 * that has none yet (a "pending" task, part of the array's count).
 *
 * A chained hash table whose chains run through job->hnext, so a job costs
 * one pointer in the table and none elsewhere.  The table doubles when the
 * load passes one, incrementally: the old table's buckets move to the new
 * one a few at each insertion (none while a compaction child shares the
 * pages), and until the last has moved a lookup looks in whichever table
 * holds its bucket.  Rehashing a million jobs at
 * once would hold the loop for tens of milliseconds (and, during a
 * compaction, copy every page of them from the snapshot's child).
 */
#include <stdlib.h>

#include "simqd.h"
#include "log.h"

/* Old buckets moved to the new table at each insertion: the move is over
 * long before the new table fills. */
#define IDMAP_STEP	16

static struct job	**tab;
static uint64_t		  mask;		/* buckets - 1 */
static uint64_t		  count;
/* While the table grows: the old one, and how many of its buckets have
 * moved; otab's bucket b is in tab once b < moved. */
static struct job	**otab;
static uint64_t		  omask;
static uint64_t		  moved;

/*
 * Consecutive ids go to consecutive buckets: jobs are created, replayed
 * and mostly looked up in id order, so the table is walked like an array
 * instead of being hit at random (a cache and TLB miss per job).  Tasks
 * of one array share its id; their index is mixed in to spread them.
 */
static uint64_t
idhash(uint64_t id, uint32_t index)
{
	if (index == SIMQ_NOINDEX)
		return id;
	return id ^ ((uint64_t)index + 1) * UINT64_C(0x9E3779B97F4A7C15);
}

/* The chain hash h lives in. */
static struct job **
idmap_slot(uint64_t h)
{
	if (otab != NULL && (h & omask) >= moved)
		return &otab[h & omask];
	return &tab[h & mask];
}

void
idmap_free(void)
{
	free(tab);
	free(otab);
	tab = otab = NULL;
	mask = omask = count = moved = 0;
}

void
idmap_init(void)
{
	idmap_free();
	mask = 1023;
	tab = xcalloc(mask + 1, sizeof *tab);
}

/* Moves up to n buckets of the old table into the new one. */
static void
idmap_move(uint64_t n)
{
	struct job	*j, *next;
	uint64_t	 b;

	for (; otab != NULL && n > 0; n--) {
		for (j = otab[moved]; j != NULL; j = next) {
			b = idhash(j->id, j->index) & mask;
			next = j->hnext;
			j->hnext = tab[b];
			tab[b] = j;
		}
		otab[moved] = NULL;
		if (++moved > omask) {
			free(otab);
			otab = NULL;
		}
	}
}

/* Starts doubling the table. */
static void
idmap_grow(void)
{
	struct job	**ntab = calloc(mask * 2 + 2, sizeof *ntab);

	if (ntab == NULL)
		return;		/* stay at a higher load rather than fail */
	otab = tab;
	omask = mask;
	moved = 0;
	tab = ntab;
	mask = mask * 2 + 1;
}

void
idmap_put(struct job *j)
{
	struct job	**pp;

	/* Moving buckets rewrites old jobs, whose pages a compaction child
	 * shares: while one runs, the move waits (the old table's chains
	 * grow a little meanwhile). */
	if (otab != NULL) {
		if (!B->compacting)
			idmap_move(IDMAP_STEP);
	} else if (count > mask) {
		idmap_grow();
		idmap_move(IDMAP_STEP);
	}
	pp = idmap_slot(idhash(j->id, j->index));
	j->hnext = *pp;
	*pp = j;
	count++;
	B->njobs = count;
}

void
idmap_del(struct job *j)
{
	struct job	**pp = idmap_slot(idhash(j->id, j->index));

	for (; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == j) {
			*pp = j->hnext;
			count--;
			B->njobs = count;
			return;
		}
	}
	fatal("idmap: job %llu not in the map", (unsigned long long)j->id);
}

struct job *
idmap_get(uint64_t id, uint32_t index)
{
	struct job	*j;

	if (tab == NULL)
		return NULL;
	for (j = *idmap_slot(idhash(id, index)); j != NULL; j = j->hnext)
		if (j->id == id && j->index == index)
			return j;
	return NULL;
}

struct job *
lookup_id(const struct simq_id *id)
{
	return idmap_get(id->id, id->index);
}

/*
 * For a task id with no record yet: its array, if the index is one of the
 * array's tasks not yet materialised, and the state the task is in (that
 * of the array's pending block, or of its canceled or failed rest).
 */
struct job *
lookup_pending_task(const struct simq_id *id, int *state)
{
	struct job		*a;
	const struct array	*arr;
	uint64_t		 pos;

	if (id->index == SIMQ_NOINDEX ||
	    (a = idmap_get(id->id, SIMQ_NOINDEX)) == NULL ||
	    a->kind != JK_ARRAY)
		return NULL;
	arr = a->arr;
	if (id->index < arr->spec.first || id->index > arr->spec.last ||
	    (id->index - arr->spec.first) % arr->spec.step != 0)
		return NULL;
	pos = (id->index - arr->spec.first) / arr->spec.step;
	if (pos < arr->cursor)
		return NULL;
	*state = pos < arr->cut ? a->state : arr->cut_state;
	return a;
}

/* The state of whatever id names, or -1 if nothing. */
int
id_state(const struct simq_id *id)
{
	struct job	*j = lookup_id(id);
	int		 st;

	if (j != NULL)
		return j->kind == JK_ARRAY ? job_array_state(j) : j->state;
	if (lookup_pending_task(id, &st) != NULL)
		return st;
	return -1;
}

int
all_finished(struct simq_id *ids, int n)
{
	int	i, st;

	for (i = 0; i < n; i++) {
		if ((st = id_state(&ids[i])) < 0)
			continue;	/* missing: nothing to wait for */
		if (st != JS_DONE && st != JS_FAILED && st != JS_CANCELED)
			return 0;
	}
	return 1;
}
