/*
 * cmd_cancel.c: CANCEL and RETRY, of jobs, arrays, tasks (taken by a
 * worker or not) and ranges of an array's tasks, and CANCEL q=QUEUE
 * [state=STATE], which empties a queue.
 *
 * All or nothing: every id is checked before anything changes, and the
 * reply says how many jobs and tasks changed (RETRY: and how many
 * dependents that had failed because of them were re-queued too).  The
 * changes are the model's (job_cancel, job_retry, job_cut; array_task
 * gives a task no worker has taken its record first).
 */
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

/* A range's tasks that would each get a record: beyond this, refused (a
 * range to the end of an array, or the whole array, costs none). */
#define RANGE_RECORDS_MAX	100000

struct target {
	struct simq_id		id;
	int			range;
	struct simq_idrange	r;
};

/* The positions of part k of range r in array a: [*plo, *phi]; 0 when
 * none of its indices is one of a's. */
static int
part_pos(const struct job *a, const struct simq_idrange *r, int k,
    uint64_t *plo, uint64_t *phi)
{
	const struct array_spec	*s = &a->arr->spec;
	uint32_t		 lo = r->lo[k], hi = r->hi[k];

	if (hi > s->last)
		hi = s->last;
	if (hi < s->first || lo > hi)
		return 0;
	*plo = lo <= s->first ? 0 :
	    ((uint64_t)(lo - s->first) + s->step - 1) / s->step;
	*phi = (uint64_t)(hi - s->first) / s->step;
	return *plo <= *phi;
}

/* Where in part [plo, phi] a CANCEL cuts off the rest as a count, or
 * phi + 1 when it does not. */
static uint64_t
cut_from(const struct job *a, uint64_t plo, uint64_t phi)
{
	uint64_t	cp = plo > a->arr->cursor ? plo : a->arr->cursor;

	return phi + 1 >= a->arr->cut && array_cuttable(a, cp) ? cp : phi + 1;
}

/* Checks one word; 0, or -1 after an error reply. */
static int
check_word(struct conn *c, int cancel, const struct proto_word *w,
    struct target *t, uint64_t *records)
{
	struct job	*a;
	uint64_t	 plo, phi, end;
	char		 id[32];
	int		 k, st, any = 0;

	if (proto_parse_id(w->p, w->len, &t->id) == 0) {
		t->range = 0;
		if (lookup_id(&t->id) != NULL)
			return 0;
		if (lookup_pending_task(&t->id, &st) != NULL) {
			*records += 1;	/* at most: array_task */
			return 0;
		}
		proto_format_id(id, t->id.id, t->id.index);
		conn_error(c, PERR_NOTFOUND, "no job %s; nothing was changed",
		    id);
		return -1;
	}
	if (proto_parse_idrange(w->p, w->len, &t->r) < 0) {
		conn_error(c, PERR_BADREQ, "bad job id '%.*s'",
		    (int)(w->len > 40 ? 40 : w->len), w->p);
		return -1;
	}
	t->range = 1;
	if ((a = idmap_get(t->r.id, SIMQ_NOINDEX)) == NULL ||
	    a->kind != JK_ARRAY) {
		conn_error(c, PERR_NOTFOUND, "no array %llu; nothing was "
		    "changed", (unsigned long long)t->r.id);
		return -1;
	}
	for (k = 0; k < t->r.n; k++) {
		if (!part_pos(a, &t->r, k, &plo, &phi))
			continue;
		any = 1;
		end = cancel ? cut_from(a, plo, phi) : phi + 1;
		if (plo < a->arr->cursor)
			plo = a->arr->cursor;
		if (end > plo)
			*records += end - plo;
	}
	if (!any) {
		conn_error(c, PERR_NOTFOUND, "array %llu has no task in "
		    "%.*s; nothing was changed", (unsigned long long)t->r.id,
		    (int)(w->len > 60 ? 60 : w->len), w->p);
		return -1;
	}
	return 0;
}

/* CANCEL or RETRY of one id. */
static uint64_t
act_id(int cancel, const struct simq_id *id, uint64_t *ndeps)
{
	struct job	*j = lookup_id(id), *a;
	uint64_t	 d = 0, n;
	int		 st;

	if (j == NULL) {
		if ((a = lookup_pending_task(id, &st)) == NULL ||
		    cancel == job_finished_state(st))
			return 0;	/* nothing to change */
		j = array_task(a, id->index);
	}
	if (cancel)
		return job_cancel(j, "canceled");
	n = job_retry(j, &d);
	*ndeps += d;
	return n;
}

static uint64_t
act_range(int cancel, const struct simq_idrange *r, uint64_t *ndeps)
{
	struct job	*a = idmap_get(r->id, SIMQ_NOINDEX);
	const struct array_spec *s = &a->arr->spec;
	struct simq_id	 id = { r->id, 0 };
	uint64_t	 n = 0, plo, phi, p, end;
	int		 k;

	for (k = 0; k < r->n; k++) {
		if (!part_pos(a, r, k, &plo, &phi))
			continue;
		end = phi + 1;
		if (cancel && (end = cut_from(a, plo, phi)) <= phi) {
			struct job *t;
			n += job_cut(a, end);
			/* Those past the cut that have a record already. */
			TAILQ_FOREACH(t, &a->arr->tasks, entry) {
				p = array_pos(a, t->index);
				if (p >= end && p <= phi)
					n += job_cancel(t, "canceled");
			}
		}
		for (p = plo; p < end; p++) {
			id.index = (uint32_t)(s->first + p * s->step);
			n += act_id(cancel, &id, ndeps);
		}
	}
	return n;
}

/* CANCEL q=QUEUE [state=STATE]: its jobs and tasks not finished, or those
 * in STATE (waiting, queued or running). */
static void
cancel_queue(struct conn *c, struct proto_req *r)
{
	struct queue	*q;
	struct job	*j, *t;
	uint64_t	 n = 0;
	int		 state = -1;

	if (r->nargs > 2 || r->args[0].len < 3 ||
	    !proto_name_ok(r->args[0].p + 2, r->args[0].len - 2) ||
	    (r->nargs == 2 && (r->args[1].len < 7 ||
	    memcmp(r->args[1].p, "state=", 6) != 0 ||
	    ((state = proto_state_lookup(r->args[1].p + 6,
	    r->args[1].len - 6)) != JS_WAITING && state != JS_QUEUED &&
	    state != JS_RUNNING)))) {
		conn_error(c, PERR_BADREQ, "use CANCEL q=QUEUE "
		    "[state=waiting|queued|running]");
		return;
	}
	if ((q = queue_get(r->args[0].p + 2, r->args[0].len - 2, 0)) == NULL) {
		conn_error(c, PERR_NOTFOUND, "no queue %.*s",
		    (int)r->args[0].len - 2, r->args[0].p + 2);
		return;
	}
	TAILQ_FOREACH(j, &B->jobs, entry) {
		if (j->opts->q != q)
			continue;
		if (j->kind == JK_JOB) {
			if (state < 0 || j->state == state)
				n += job_cancel(j, "canceled");
			continue;
		}
		if (state < 0) {
			n += job_cancel(j, "canceled");
			continue;
		}
		TAILQ_FOREACH(t, &j->arr->tasks, entry)
			if (t->state == state)
				n += job_cancel(t, "canceled");
		if (j->state == state && array_cuttable(j, j->arr->cursor))
			n += job_cut(j, j->arr->cursor);
	}
	conn_reply(c, "OK %llu", (unsigned long long)n);
	timers_arm();
}

void
h_cancel_retry(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct target	*t;
	uint64_t	 n = 0, ndeps = 0, records = 0;
	int		 i, cancel = r->cmd == CMD_CANCEL;

	(void)body;
	(void)blen;
	if (cancel && r->args[0].len >= 2 && memcmp(r->args[0].p, "q=", 2) == 0) {
		cancel_queue(c, r);
		return;
	}
	t = xcalloc((size_t)r->nargs, sizeof *t);
	for (i = 0; i < r->nargs; i++)
		if (check_word(c, cancel, &r->args[i], &t[i], &records) < 0)
			goto out;
	if (records > RANGE_RECORDS_MAX) {
		conn_error(c, PERR_LIMIT, "those ranges name %llu tasks no "
		    "worker has taken, more than %d at once; a range to the "
		    "end of the array, or the whole array, has no such limit; "
		    "nothing was changed", (unsigned long long)records,
		    RANGE_RECORDS_MAX);
		goto out;
	}
	/* Each task changed alone gets a record, as a submitted job does. */
	if (records > 0 && B->njobs + records > B->cfg.max_jobs) {
		conn_error(c, PERR_LIMIT, "the broker keeps %llu jobs and its "
		    "limit (--max-jobs) is %llu: the %llu tasks changed alone "
		    "would each need one; cancel the whole array, or a range to "
		    "its end; nothing was changed",
		    (unsigned long long)B->njobs,
		    (unsigned long long)B->cfg.max_jobs,
		    (unsigned long long)records);
		goto out;
	}
	c->work += records;	/* its share of a turn (net.c) */
	for (i = 0; i < r->nargs; i++)
		n += t[i].range ? act_range(cancel, &t[i].r, &ndeps) :
		    act_id(cancel, &t[i].id, &ndeps);
	/* RETRY's second word only when dependents were re-queued: a
	 * client that knows one word keeps working for everything else. */
	if (ndeps == 0)
		conn_reply(c, "OK %llu", (unsigned long long)n);
	else
		conn_reply(c, "OK %llu %llu", (unsigned long long)n,
		    (unsigned long long)ndeps);
	timers_arm();
out:
	free(t);
}
