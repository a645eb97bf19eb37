/*
 * fit.c: resources.  A job asks for CPUs, GPUs and memory (its options);
 * a worker offers them (WORKER cpus= gpus= mem=) and says in each TAKE
 * what is free, and how long it has left (time=).  The broker hands it
 * only jobs that fit, still strictly by queue order and, within a queue,
 * by priority and age.
 *
 * The one idea: a queue keeps one heap per shape of job (a lane: the
 * same cpus, gpus, mem and timeout), so that the best job that fits is
 * the best of the tops of the lanes that fit, found without looking at
 * a single job below a top.  Shapes are few (a sweep has one), and only
 * lanes holding something are walked, so the common case, one lane, is
 * the plain heap it always was.
 *
 * Starvation: a large job at the head of a queue would wait for ever
 * behind a stream of small ones, each taking the CPUs that free up.  So
 * once the head of a queue (its best job, fitting or not) has been ready
 * for --reserve-after, a worker that could ever run it (its offer holds
 * it) takes nothing more, from that queue or the ones after it, until
 * the head fits its free resources; then it takes the head.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

/* No limit on anything. */
const struct fit fit_any = { UINT32_MAX, UINT32_MAX, UINT64_MAX, UINT64_MAX };

/* The jobs and arrays ready in q, in all its lanes. */
uint64_t
queue_nready(const struct queue *q)
{
	const struct lane	*l;
	uint64_t		 n = 0;

	for (l = q->lanes; l != NULL; l = l->next)
		n += l->ready.n;
	return n;
}

/* Returns q's lane for o's shape, making it. */
struct lane *
lane_get(struct queue *q, const struct jobopts *o)
{
	struct lane	*l;

	for (l = q->lanes; l != NULL; l = l->next)
		if (l->cpus == o->cpus && l->gpus == o->gpus &&
		    l->mem == o->mem && l->timeout_ms == o->timeout_ms)
			return l;
	l = xcalloc(1, sizeof *l);
	heap_init(&l->ready, ready_less);
	l->q = q;
	l->cpus = o->cpus;
	l->gpus = o->gpus;
	l->mem = o->mem;
	l->timeout_ms = o->timeout_ms;
	l->next = q->lanes;
	q->lanes = l;
	return l;
}

/* l got its first job: TAKE looks at it again. */
void
lane_busy(struct lane *l)
{
	l->active = 1;
	TAILQ_INSERT_TAIL(&l->q->active, l, aentry);
}

/* l is empty. */
void
lane_idle(struct lane *l)
{
	if (!l->active)
		return;
	l->active = 0;
	TAILQ_REMOVE(&l->q->active, l, aentry);
}

/* After replay: each lane's heap put in order. */
void
lanes_build(struct queue *q)
{
	struct lane	*l;

	for (l = q->lanes; l != NULL; l = l->next)
		heap_build(&l->ready);
}

void
lanes_free(struct queue *q)
{
	struct lane	*l;

	while ((l = q->lanes) != NULL) {
		q->lanes = l->next;
		heap_free(&l->ready);
		free(l);
	}
	TAILQ_INIT(&q->active);
}

/* A shape fits f: every resource within, and, for a worker with a time
 * limit, a timeout within the time left (a job without one does not
 * fit: nothing says it would end in time). */
static int
shape_fits(uint32_t cpus, uint32_t gpus, uint64_t mem, uint64_t timeout,
    const struct fit *f)
{
	return cpus <= f->cpus && gpus <= f->gpus && mem <= f->mem &&
	    (f->time == UINT64_MAX || (timeout != 0 && timeout <= f->time));
}

static int
lane_fits(const struct lane *l, const struct fit *f)
{
	return shape_fits(l->cpus, l->gpus, l->mem, l->timeout_ms, f);
}

int
fit_ok(const struct jobopts *o, const struct fit *f)
{
	return shape_fits(o->cpus, o->gpus, o->mem, o->timeout_ms, f);
}

/* out = f less what o takes (an unlimited resource stays so). */
void
fit_take(const struct fit *f, const struct jobopts *o, struct fit *out)
{
	*out = *f;
	if (out->cpus != UINT32_MAX)
		out->cpus -= o->cpus;
	if (out->gpus != UINT32_MAX)
		out->gpus -= o->gpus;
	if (out->mem != UINT64_MAX)
		out->mem -= o->mem;
}

/* Since when j has been ready: its submission, or the end of its delay
 * or backoff. */
static uint64_t
ready_since(const struct job *j)
{
	return j->due > j->submitted ? j->due : j->submitted;
}

/*
 * Pops the best ready job of q that fits free, materialising an array's
 * next task.  NULL when q is paused or nothing fits; then, or instead of
 * a smaller job, sets *reserved when the head of q has been ready for
 * --reserve-after and fits total (what the worker could ever give it):
 * the worker then takes nothing more now.  total may be NULL (no
 * reservation).
 */
struct job *
queue_take_fit(struct queue *q, const struct fit *free,
    const struct fit *total, int *reserved)
{
	struct lane	*l, *hl = NULL;
	struct job	*j, *best = NULL, *head = NULL;

	if (q->paused)
		return NULL;
	TAILQ_FOREACH(l, &q->active, aentry) {
		j = heap_top(&l->ready);
		if (head == NULL || ready_less(j, head)) {
			head = j;
			hl = l;
		}
		if (lane_fits(l, free) && (best == NULL || ready_less(j, best)))
			best = j;
	}
	if (head != NULL && best != head && total != NULL &&
	    B->now >= ready_since(head) + B->cfg.reserve_after_ms &&
	    lane_fits(hl, total)) {
		*reserved = 1;
		return NULL;
	}
	if (best == NULL)
		return NULL;
	/* Workers may be keeping room for this head: now it is gone, what
	 * they wait for (parked) is worth another look. */
	if (best == head && B->now >= ready_since(head) +
	    B->cfg.reserve_after_ms)
		B->want_dispatch = 1;
	if (best->kind != JK_ARRAY) {
		job_unheap(best);
		return best;
	}
	return job_materialise(best);
}

/* What w could ever give one job: its offer, and its time left now. */
void
fit_worker(const struct worker *w, struct fit *f)
{
	f->cpus = w->cpus;
	f->gpus = w->gpus;
	f->mem = w->mem;
	f->time = w->time_left;
	if (f->time != UINT64_MAX)
		f->time = B->now - w->time_at >= f->time ? 0 :
		    f->time - (B->now - w->time_at);
}

/* A job with options o is leased to w (sign 1), or no more (-1). */
void
fit_hold(struct worker *w, const struct jobopts *o, int sign)
{
	if (sign > 0) {
		w->held_cpus += o->cpus;
		w->held_gpus += o->gpus;
		w->held_mem += o->mem;
	} else {
		w->held_cpus -= o->cpus;
		w->held_gpus -= o->gpus;
		w->held_mem -= o->mem;
	}
}

static uint32_t
left32(uint32_t have, uint32_t held)
{
	return have == UINT32_MAX ? UINT32_MAX : have > held ? have - held : 0;
}

static uint64_t
left64(uint64_t have, uint64_t held)
{
	return have == UINT64_MAX ? UINT64_MAX : have > held ? have - held : 0;
}

/*
 * What w has free by the broker's count: its offer less what the jobs
 * leased to it ask for.  A TAKE's own words can be behind: a worker
 * sends its next TAKE before the reply to the one before has told it of
 * the jobs that reply leased, so the broker takes the smaller of both
 * (take_serve).  And a worker's words can be ahead of this count: a job
 * that ended there may not be reported yet; then the smaller is the
 * worker's, which is right too.
 */
void
fit_free(const struct worker *w, struct fit *f)
{
	f->cpus = left32(w->cpus, w->held_cpus);
	f->gpus = left32(w->gpus, w->held_gpus);
	f->mem = left64(w->mem, w->held_mem);
	f->time = UINT64_MAX;
}

/*
 * The same, with the jobs that a TAKE's ending= names (still leased to w,
 * their reports right behind the TAKE: their processes have ended) counted
 * as free: end holds what they ask for, at most what w holds.
 */
void
fit_free_ending(const struct worker *w, const struct fit *end, struct fit *f)
{
	f->cpus = left32(w->cpus, w->held_cpus > end->cpus ?
	    w->held_cpus - end->cpus : 0);
	f->gpus = left32(w->gpus, w->held_gpus > end->gpus ?
	    w->held_gpus - end->gpus : 0);
	f->mem = left64(w->mem, w->held_mem > end->mem ?
	    w->held_mem - end->mem : 0);
	f->time = UINT64_MAX;
}

/* Whether w serves queue name: its WORKER queues=, "default" if it did
 * not say (as EXPLAIN counts, explain.c). */
static int
serves(const struct worker *w, const char *name)
{
	const char	*s = w->queues, *comma;
	size_t		 len, n = strlen(name);

	if (s == NULL || *s == '\0')
		s = "default";
	for (;;) {
		comma = strchr(s, ',');
		len = comma ? (size_t)(comma - s) : strlen(s);
		if (len == n && memcmp(s, name, n) == 0)
			return 1;
		if (comma == NULL)
			return 0;
		s = comma + 1;
	}
}

static void
add_kind(char *kinds, size_t klen, const char *k)
{
	size_t	n = strlen(kinds);

	snprintf(kinds + n, klen - n, "%s%s", n ? "," : "", k);
}

/*
 * Whether a queued job with options o is one no connected worker could
 * ever run: then returns 1, with in kinds the resources no worker
 * serving its queue offers enough of ("cpus", "gpus", "mem", "time",
 * comma-separated; "combination" when each is offered but never all
 * by one worker), and in text a sentence saying so.  Returns 0 when some
 * worker could, and when no connected worker serves the queue at all.
 */
int
fit_why(const struct jobopts *o, char *kinds, size_t klen, char *text,
    size_t tlen)
{
	const struct worker	*w;
	struct fit		 f, max = { 0, 0, 0, 0 };
	int			 nconn = 0, nserve = 0;
	size_t			 n;

	kinds[0] = text[0] = '\0';
	TAILQ_FOREACH(w, &workers, entry) {
		if (w->conn == NULL)
			continue;
		nconn++;
		if (!serves(w, o->q->name))
			continue;
		nserve++;
		fit_worker(w, &f);
		if (fit_ok(o, &f))
			return 0;
		if (f.cpus > max.cpus)
			max.cpus = f.cpus;
		if (f.gpus > max.gpus)
			max.gpus = f.gpus;
		if (f.mem > max.mem)
			max.mem = f.mem;
		if (f.time > max.time)
			max.time = f.time;
	}
	/* No worker serving the queue at all is another matter, said
	 * elsewhere (EXPLAIN's no-worker, simq status's note): a job then
	 * waits for workers, not for resources. */
	if (nconn == 0 || nserve == 0)
		return 0;
	if (o->cpus > max.cpus)
		add_kind(kinds, klen, "cpus");
	if (o->gpus > max.gpus)
		add_kind(kinds, klen, "gpus");
	if (o->mem > max.mem)
		add_kind(kinds, klen, "mem");
	if (max.time != UINT64_MAX && (o->timeout_ms == 0 ||
	    o->timeout_ms > max.time))
		add_kind(kinds, klen, "time");
	if (kinds[0] == '\0')
		add_kind(kinds, klen, "combination");
	n = (size_t)snprintf(text, tlen, "no connected worker of queue %s "
	    "can run it: it needs cpus=%u gpus=%u", o->q->name, o->cpus,
	    o->gpus);
	if (n < tlen && o->mem)
		n += (size_t)snprintf(text + n, tlen - n, " mem=%llu",
		    (unsigned long long)o->mem);
	if (n < tlen && max.time != UINT64_MAX && o->timeout_ms)
		n += (size_t)snprintf(text + n, tlen - n, " timeout=%llums",
		    (unsigned long long)o->timeout_ms);
	else if (n < tlen && max.time != UINT64_MAX)
		n += (size_t)snprintf(text + n, tlen - n, " and has no "
		    "timeout");
	if (n < tlen)
		n += (size_t)snprintf(text + n, tlen - n, "; the largest "
		    "offer %s cpus=%u gpus=%u", nserve == 1 ? "is" : "are",
		    max.cpus, max.gpus);
	if (n < tlen && max.mem != UINT64_MAX)
		n += (size_t)snprintf(text + n, tlen - n, " mem=%llu",
		    (unsigned long long)max.mem);
	if (n < tlen && max.time != UINT64_MAX)
		n += (size_t)snprintf(text + n, tlen - n, " time=%llums",
		    (unsigned long long)max.time);
	if (strcmp(kinds, "combination") == 0 && n < tlen)
		snprintf(text + n, tlen - n, ", never all on one worker");
	return 1;
}
