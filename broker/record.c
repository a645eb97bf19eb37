/*
 * record.c: the job model's journal records, each next to the function
 * that applies it on replay.
 *
 * A record states an outcome ("job 17 attempt 2 failed, retry at T"), so
 * replay applies it without asking the clock or re-running a decision:
 * each apply function decodes its record, checks that it fits the state,
 * and calls the same function of the job model that made the change live
 * (job.c, queue.c), which journals nothing while B->replaying is set.
 * The snapshot's records (REC_NEXTID, REC_OPTS, REC_JOB) are in
 * snapshot.c; the fields records share in codec.c.
 *
 * If you change a record: bump JOURNAL_VERSION in journal.h, keep decoding
 * the old layout, and update its fixture in tests/unit/test_records.c.
 */
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

void
rec_submit(struct buf *b, uint64_t first, uint32_t count,
    const struct jobopts *o, struct cmd **cmds, const struct array_spec *spec,
    uint64_t submitted, uint64_t not_before)
{
	uint32_t	i;

	buf_put_u64(b, first);
	buf_put_u32(b, count);
	buf_put_u64(b, submitted);
	buf_put_u64(b, not_before);
	rec_put_opts(b, o);
	buf_put_u8(b, spec != NULL);
	if (spec != NULL)
		rec_put_spec(b, spec);
	for (i = 0; i < count; i++)
		rec_put_cmd(b, cmds[i]);
}

/* An EACHLINE array: as an array's REC_SUBMIT, with 2 for its spec flag
 * and its lines after the command (journal version 4). */
void
rec_submit_lines(struct buf *b, uint64_t id, const struct jobopts *o,
    const struct cmd *c, const struct array_spec *spec,
    const struct entries *e, uint64_t submitted, uint64_t not_before)
{
	buf_put_u64(b, id);
	buf_put_u32(b, 1);
	buf_put_u64(b, submitted);
	buf_put_u64(b, not_before);
	rec_put_opts(b, o);
	buf_put_u8(b, 2);
	rec_put_spec(b, spec);
	rec_put_cmd(b, c);
	rec_put_entries(b, e);
}

static int
apply_submit(struct rbuf *r)
{
	static struct cmd	**cmds;
	static uint32_t		  cap;
	uint64_t		  first = rbuf_u64(r), submitted, not_before;
	uint32_t		  count = rbuf_u32(r), i, n = 0;
	struct jobopts		 *o;
	struct array_spec	  spec;
	struct entries		 *e = NULL;
	int			  has_spec, rc = -1;

	submitted = rbuf_u64(r);
	not_before = rbuf_u64(r);
	B->now = submitted;
	o = rec_get_opts(r);
	has_spec = rbuf_u8(r);
	/* Each command takes two bytes at least: a count larger than the
	 * record can hold is refused before anything is allocated for it. */
	if (r->err || submitted == 0 || count == 0 ||
	    count > rbuf_left(r) / 2 || first == 0 ||
	    first < B->next_id || first > SIMQ_ID_MAX - count + 1 ||
	    (has_spec && (count != 1 || rec_get_spec(r, &spec) < 0)))
		goto out;
	if (count > cap) {
		cmds = xreallocarray(cmds, count, sizeof *cmds);
		cap = count;
	}
	for (n = 0; n < count; n++)
		if ((cmds[n] = rec_get_cmd(r)) == NULL)
			goto out;
	if (has_spec == 2) {
		/* EACHLINE: one task per line, 1 to n. */
		if ((e = rec_get_entries(r)) == NULL || spec.first != 1 ||
		    spec.step != 1 || spec.last != e->n)
			goto out;
		o = jobopts_intern(o);
		job_submit_lines(first, o, cmds[0], &spec, e, submitted,
		    not_before);
		e = NULL;
		n = 0;
		rc = 0;
		goto out;
	}
	if (has_spec > 1)
		goto out;
	o = jobopts_intern(o);
	job_submit(first, count, o, cmds, has_spec ? &spec : NULL, submitted,
	    not_before);
	n = 0;		/* the jobs own the commands */
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(cmds[i]);
	entries_free(e);
	jobopts_unref(o);
	return rc;
}

/*
 * While a record is applied, B->now is the time the record happened, so
 * that what follows from it (a dependent failed, a job finished) gets the
 * same time as it did live; the clock of the running broker is kept here.
 * A time of 0 never happened live (and would read as "unset" where a
 * finish time is restored): a record that says so is refused.
 */
static uint64_t	real_now;

void
rec_lease(struct buf *b, const struct job *j, const char *worker,
    const char *host, uint64_t lease_ms)
{
	buf_put_u64(b, j->id);
	buf_put_u32(b, j->index);
	buf_put_u32(b, j->attempts);
	buf_put_vstr(b, worker, strlen(worker));
	buf_put_vstr(b, host, strlen(host));
	buf_put_u64(b, j->run->started);
	buf_put_u64(b, lease_ms);
}

/* The job a record names; materialises an array's next task when the
 * record is the lease that made it real. */
static struct job *
find(uint64_t id, uint32_t index, int materialise)
{
	struct job	*j = idmap_get(id, index), *a;

	if (j != NULL || index == SIMQ_NOINDEX || !materialise)
		return j;
	if ((a = idmap_get(id, SIMQ_NOINDEX)) == NULL || a->kind != JK_ARRAY)
		return NULL;
	/* Live, only an array whose dependencies are done hands out tasks. */
	if (a->ndeps_left != 0 || a->arr->cursor >= a->arr->cut ||
	    a->arr->spec.first + a->arr->cursor * a->arr->spec.step != index)
		return NULL;
	return job_materialise(a);
}

static int
apply_lease(struct rbuf *r)
{
	uint64_t	 id = rbuf_u64(r), started, lease_ms;
	uint32_t	 index = rbuf_u32(r), attempt = rbuf_u32(r);
	char		*wname = rec_get_str(r, 0), *host = rec_get_str(r, 1);
	struct job	*j;
	struct worker	*w;
	int		 rc = -1;

	started = rbuf_u64(r);
	lease_ms = rbuf_u64(r);
	if (r->err || wname == NULL || lease_ms < LEASE_MIN_MS ||
	    lease_ms > LEASE_MAX_MS || (j = find(id, index, 1)) == NULL ||
	    j->kind == JK_ARRAY || job_finished(j) || j->state == JS_RUNNING ||
	    j->ndeps_left != 0)
		goto out;
	if ((w = worker_get(wname, 1)) == NULL)
		goto out;
	if (host != NULL && (w->host == NULL || strcmp(w->host, host) != 0)) {
		free(w->host);
		w->host = xstrdup(host);
	}
	w->lease_ms = lease_ms;
	/* A job still waiting here may have been queued live by its delay's
	 * end, which is not journaled; one waiting on a dependency cannot
	 * have been taken.  A fresh lease from now: renewals were not
	 * journaled, and the worker needs time to find the restarted
	 * broker. */
	job_lease(j, w, attempt, started, real_now + lease_ms);
	rc = 0;
out:
	free(wname);
	free(host);
	return rc;
}

/* After job_finish moved j: its new state, backoff end and result. */
void
rec_finish(struct buf *b, const struct job *j)
{
	buf_put_u64(b, j->id);
	buf_put_u32(b, j->index);
	buf_put_u32(b, j->attempts);
	buf_put_u8(b, j->state);
	buf_put_u64(b, j->due);
	rec_put_result(b, j->res);
}

static int
apply_finish(struct rbuf *r)
{
	uint64_t	 id = rbuf_u64(r), due;
	uint32_t	 index = rbuf_u32(r), attempt = rbuf_u32(r);
	int		 state = rbuf_u8(r);
	struct result	*res;
	struct job	*j;

	due = rbuf_u64(r);
	res = rec_get_result(r);
	B->now = res->finished;
	if (r->err || B->now == 0 || (j = find(id, index, 0)) == NULL ||
	    j->kind == JK_ARRAY || j->state != JS_RUNNING ||
	    j->attempts != attempt || (state != JS_DONE &&
	    state != JS_FAILED && state != JS_WAITING)) {
		result_free(res);
		return -1;
	}
	job_finish(j, res, state, due);
	return 0;
}

void
rec_requeue(struct buf *b, const struct job *j, int lost, uint64_t due)
{
	buf_put_u64(b, j->id);
	buf_put_u32(b, j->index);
	buf_put_u32(b, j->attempts);
	buf_put_u8(b, (uint8_t)lost);	/* enum requeue_why */
	buf_put_u64(b, due);
	buf_put_u64(b, B->now);
}

static int
apply_requeue(struct rbuf *r)
{
	uint64_t	 id = rbuf_u64(r), due;
	uint32_t	 index = rbuf_u32(r), attempt = rbuf_u32(r);
	int		 lost = rbuf_u8(r);
	struct job	*j;

	due = rbuf_u64(r);
	B->now = rbuf_u64(r);
	if (r->err || B->now == 0 || lost > RQ_SHEPHERD_LOST ||
	    (j = find(id, index, 0)) == NULL || j->state != JS_RUNNING ||
	    j->attempts != attempt)
		return -1;
	job_requeue(j, lost, due);
	return 0;
}

/* CANCEL and RETRY: the job and when, so that retention and the times
 * of jobs failed along with it come out the same on replay. */
void
rec_event(struct buf *b, const struct job *j)
{
	buf_put_u64(b, j->id);
	buf_put_u32(b, j->index);
	buf_put_u64(b, B->now);
}

static int
apply_id(struct rbuf *r, int type)
{
	uint64_t	 id = rbuf_u64(r);
	uint32_t	 index = rbuf_u32(r);
	struct simq_id	 sid = { id, index };
	struct job	*j, *a;
	int		 st;

	B->now = rbuf_u64(r);
	if (r->err || B->now == 0)
		return -1;
	if ((j = find(id, index, 0)) == NULL) {
		/* A task no worker had taken: its record is made now, as it
		 * was live (array_task), if the change fits its state. */
		if ((a = lookup_pending_task(&sid, &st)) == NULL ||
		    (type == REC_CANCEL) != !job_finished_state(st))
			return -1;
		j = array_task(a, index);
	}
	if (type == REC_CANCEL)
		job_cancel(j, "canceled");
	else
		job_retry(j, NULL);
	return 0;
}

/* job_cut: the array, the first position canceled, and when. */
void
rec_cut(struct buf *b, const struct job *aj, uint64_t pos)
{
	buf_put_u64(b, aj->id);
	buf_put_u64(b, pos);
	buf_put_u64(b, B->now);
}

static int
apply_cut(struct rbuf *r)
{
	uint64_t	 id = rbuf_u64(r), pos = rbuf_u64(r);
	struct job	*a;

	B->now = rbuf_u64(r);
	if (r->err || B->now == 0 ||
	    (a = idmap_get(id, SIMQ_NOINDEX)) == NULL || a->kind != JK_ARRAY ||
	    !array_cuttable(a, pos))
		return -1;
	job_cut(a, pos);
	return 0;
}

void
rec_queue(struct buf *b, const struct queue *q)
{
	buf_put_vstr(b, q->name, strlen(q->name));
}

static int
apply_queue(struct rbuf *r, int paused)
{
	size_t		 n;
	const char	*name = rbuf_vstr(r, &n);
	struct queue	*q;

	/* Made if need be: a queue's first record may be its pause, in a
	 * snapshot or in a journal written before queues were forgotten.
	 * Replay's end forgets it again if it holds nothing. */
	if (name == NULL || !proto_name_ok(name, n) ||
	    (q = queue_get(name, n, 1)) == NULL)
		return -1;
	queue_pause(q, paused);
	return 0;
}

/*
 * The journal replay callback.  Returns 0, or -1 when a record cannot be
 * decoded or does not fit the state (journal_open then refuses to start,
 * naming the record).
 */
int
rec_apply(void *arg, uint8_t type, const uint8_t *p, size_t len)
{
	struct rbuf	r;
	int		rc;

	(void)arg;
	rbuf_init(&r, p, len);
	real_now = B->now;
	/* A snapshot's own records: REC_NEXTID, REC_PAUSE for its paused
	 * queues, REC_OPTS and REC_JOB; any other ends it. */
	if (type == REC_PAUSE)
		snap_end();
	else if (type != REC_JOB && type != REC_OPTS && type != REC_NEXTID)
		snap_close();
	switch (type) {
	case REC_SUBMIT:
		rc = apply_submit(&r);
		break;
	case REC_LEASE:
		rc = apply_lease(&r);
		break;
	case REC_FINISH:
		rc = apply_finish(&r);
		break;
	case REC_REQUEUE:
		rc = apply_requeue(&r);
		break;
	case REC_CANCEL:
	case REC_RETRY:
		rc = apply_id(&r, type);
		break;
	case REC_CUT:
		rc = apply_cut(&r);
		break;
	case REC_PAUSE:
	case REC_RESUME:
		rc = apply_queue(&r, type == REC_PAUSE);
		break;
	case REC_NEXTID:
		/* A snapshot begins a replay: only the first record may. */
		rc = B->nreplayed == 0 ? snap_apply_nextid(&r) : -1;
		break;
	case REC_OPTS:
		rc = snap_apply_opts(&r);
		break;
	case REC_JOB:
		rc = snap_apply_job(&r);
		break;
	case REC_EPOCH:
		rc = apply_epoch(&r);
		break;
	default:
		log_warn("journal: unknown record type %u", type);
		return -1;
	}
	B->now = real_now;
	B->nreplayed++;
	/* What the snapshot replayed weighs: the size of the live state, the
	 * base of the compaction rule (snapshot.c). */
	if (type == REC_JOB || type == REC_OPTS || type == REC_NEXTID)
		B->snapshot_bytes += len + JOURNAL_FRAME_HDR;
	if (rc == 0 && rbuf_left(&r) != 0)
		rc = -1;	/* trailing bytes: not the layout we wrote */
	return rc;
}

/*
 * The journal's cutoff callback: a record a forced cut left out (or kept
 * from an earlier cut) is not applied, but the ids it names may have been
 * acknowledged, so the id counter goes above them.  Only the leading id
 * of each record is read; a damaged record is not seen at all.
 */
int
rec_cutoff(void *arg, uint8_t type, const uint8_t *p, size_t len)
{
	struct rbuf	r;
	uint64_t	top = 0, v;
	uint32_t	count;

	(void)arg;
	rbuf_init(&r, p, len);
	switch (type) {
	case REC_SUBMIT:
		v = rbuf_u64(&r);
		count = rbuf_u32(&r);
		if (count > 0 && v <= SIMQ_ID_MAX - count)
			top = v + count - 1;
		break;
	case REC_LEASE:
	case REC_FINISH:
	case REC_REQUEUE:
	case REC_CANCEL:
	case REC_RETRY:
	case REC_CUT:
		top = rbuf_u64(&r);
		break;
	case REC_NEXTID:
		if ((v = rbuf_u64(&r)) > 0)
			top = v - 1;
		break;
	case REC_JOB:
		top = rbuf_uv(&r);
		break;
	case REC_EPOCH:
		/* A reservation: ids below its limit may have gone out. */
		(void)rbuf_u8(&r);
		(void)rbuf_u64(&r);
		if ((v = rbuf_u64(&r)) > 0)
			top = v - 1;
		break;
	}
	if (r.err || top == 0 || top >= SIMQ_ID_MAX)
		return 0;
	if (top >= B->next_id) {
		B->next_id = top + 1;
		B->cutoff_ids = 1;
	}
	return 0;
}

static int
finished_cmp(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a;
	const struct job *y = *(struct job *const *)b;

	if (x->res->finished != y->res->finished)
		return x->res->finished < y->res->finished ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * After replay: the heaps put in order, arrays back into their heaps or
 * onto the finished list,
 * and the finished list in finish order (a snapshot writes it in id order),
 * so retention can stop at the first job not yet due.
 */
void
job_replay_done(void)
{
	struct job	 *j, **v;
	struct queue	 *q, *nq;
	size_t		  n = 0, i;

	rec_replay_done();
	B->nreplayed = 0;
	TAILQ_FOREACH(q, &B->queues, entry)
		lanes_build(q);
	heap_build(&B->timers);
	TAILQ_FOREACH(j, &B->jobs, entry) {
		if (j->kind != JK_ARRAY)
			continue;
		array_requeue(j);
		array_check(j);
	}
	/* A journal names queues that may hold nothing any more. */
	for (q = TAILQ_FIRST(&B->queues); q != NULL; q = nq) {
		nq = TAILQ_NEXT(q, entry);
		queue_gc(q);
	}
	{
		/* Mostly in order already: records carry their times. */
		struct job *prev = NULL;
		int sorted = 1;
		TAILQ_FOREACH(j, &B->finished, res->fentry) {
			if (prev != NULL && finished_cmp(&prev, &j) > 0)
				sorted = 0;
			prev = j;
			n++;
		}
		if (n == 0 || sorted)
			return;
	}
	v = xcalloc(n, sizeof *v);
	i = 0;
	while ((j = TAILQ_FIRST(&B->finished)) != NULL) {
		TAILQ_REMOVE(&B->finished, j, res->fentry);
		v[i++] = j;
	}
	qsort(v, n, sizeof *v, finished_cmp);
	for (i = 0; i < n; i++)
		TAILQ_INSERT_TAIL(&B->finished, v[i], res->fentry);
	free(v);
}
