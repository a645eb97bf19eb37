/*
 * heap.c: a binary heap of jobs, the structure behind every queue's ready
 * jobs and the broker's timers.
 *
 * Each job remembers its slot (job->hidx) and which heap holds it
 * (job->where), so removal (a cancel, a lease renewed) is O(log n) too,
 * and a job is in at most one heap at a time.
 */
#include <stdlib.h>

#include "simqd.h"
#include "log.h"

void
heap_init(struct heap *h, int (*less)(const struct job *, const struct job *))
{
	h->v = NULL;
	h->n = h->cap = 0;
	h->less = less;
}

void
heap_free(struct heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

static void
heap_set(struct heap *h, uint32_t i, struct job *j)
{
	h->v[i] = j;
	j->hidx = i;
}

static void
heap_up(struct heap *h, uint32_t i)
{
	struct job	*j = h->v[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!h->less(j, h->v[p]))
			break;
		heap_set(h, i, h->v[p]);
		i = p;
	}
	heap_set(h, i, j);
}

static void
heap_down(struct heap *h, uint32_t i)
{
	struct job	*j = h->v[i];

	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->less(h->v[c + 1], h->v[c]))
			c++;
		if (!h->less(h->v[c], j))
			break;
		heap_set(h, i, h->v[c]);
		i = c;
	}
	heap_set(h, i, j);
}

void
heap_push(struct heap *h, struct job *j)
{
	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		h->v = xreallocarray(h->v, cap, sizeof *h->v);
		h->cap = cap;
	}
	h->v[h->n] = j;
	j->hidx = h->n++;
	if (!B->replaying)
		heap_up(h, j->hidx);
}

struct job *
heap_top(const struct heap *h)
{
	return h->n ? h->v[0] : NULL;
}

void
heap_remove(struct heap *h, struct job *j)
{
	uint32_t	 i = j->hidx;
	struct job	*last;

	if (i >= h->n || h->v[i] != j)
		fatal("heap: job %llu not at its slot", (unsigned long long)j->id);
	last = h->v[--h->n];
	if (last != j) {
		heap_set(h, i, last);
		if (!B->replaying)
			heap_fix(h, last);
	}
	/* Give memory back when a big queue drains. */
	if (h->cap > 1024 && h->n < h->cap / 4) {
		struct job **v = realloc(h->v, (size_t)(h->cap / 2) * sizeof *v);
		if (v != NULL) {
			h->v = v;
			h->cap /= 2;
		}
	}
}

void
heap_fix(struct heap *h, struct job *j)
{
	uint32_t	i = j->hidx;

	if (B->replaying)
		return;
	if (i > 0 && h->less(j, h->v[(i - 1) / 2]))
		heap_up(h, i);
	else
		heap_down(h, i);
}

/*
 * While the journal is replayed, heaps are kept as plain arrays (push
 * appends, removal swaps the last into the hole) and ordered once at the
 * end with heap_build(): replaying a million submits and cancels then
 * costs no sifting at all.  Nothing reads a heap's order during replay.
 */
void
heap_build(struct heap *h)
{
	uint32_t	i;

	for (i = 0; i < h->n; i++)
		h->v[i]->hidx = i;
	for (i = h->n / 2; i-- > 0;)
		heap_down(h, i);
}
