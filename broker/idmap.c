/*
 * idmap.c: jobs and materialised tasks by (id, index).
 *
 * A chained hash table whose chains run through job->hnext, so a job costs
 * one pointer in the table and none elsewhere.  The table doubles when the
 * load passes one.
 */
#include <stdlib.h>

#include "simqd.h"
#include "log.h"

static struct job	**tab;
static uint64_t		  mask;		/* buckets - 1 */
static uint64_t		  count;

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

void
idmap_init(void)
{
	free(tab);
	mask = 1023;
	count = 0;
	tab = xcalloc(mask + 1, sizeof *tab);
}

static void
idmap_grow(void)
{
	uint64_t	  nmask = mask * 2 + 1, i;
	struct job	**ntab = calloc(nmask + 1, sizeof *ntab), *j, *next;

	if (ntab == NULL)
		return;		/* stay at a higher load rather than fail */
	for (i = 0; i <= mask; i++) {
		for (j = tab[i]; j != NULL; j = next) {
			uint64_t b = idhash(j->id, j->index) & nmask;
			next = j->hnext;
			j->hnext = ntab[b];
			ntab[b] = j;
		}
	}
	free(tab);
	tab = ntab;
	mask = nmask;
}

void
idmap_put(struct job *j)
{
	uint64_t	b;

	if (count > mask)
		idmap_grow();
	b = idhash(j->id, j->index) & mask;
	j->hnext = tab[b];
	tab[b] = j;
	count++;
	B->njobs = count;
}

void
idmap_del(struct job *j)
{
	struct job	**pp = &tab[idhash(j->id, j->index) & mask];

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
	for (j = tab[idhash(id, index) & mask]; j != NULL; j = j->hnext)
		if (j->id == id && j->index == index)
			return j;
	return NULL;
}
