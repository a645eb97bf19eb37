/*
 * snapshot.c: compaction, and the snapshot's records, written and read
 * here together.  The journal is rewritten as a snapshot of the live
 * state (REC_NEXTID, REC_PAUSE per paused queue, then REC_OPTS and one
 * REC_JOB per job, array and materialised task), after which the old
 * segments are deleted (journal.c does the file dance).  Reading a
 * REC_JOB rebuilds the job and hands it to job_restore() (job.c), which
 * puts it into the state.
 *
 * It runs when the journal has grown past twice its size after the last
 * snapshot and past a floor (--compact-min), so the journal stays within
 * about twice the live data and small brokers never bother.  It runs in
 * a child process (journal_snapshot_start), which writes the state as it
 * was at the fork from its copy-on-write image while the loop goes on
 * appending to a new segment: the loop pauses only for the fork and two
 * new segments, a few milliseconds with a million live jobs where
 * writing the snapshot itself takes a tenth of a second.  The child's
 * exit (SIGCHLD wakes the loop, main.c) is reaped here, at the end of a
 * pass.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simqd.h"
#include "log.h"

static uint64_t	base_bytes;	/* journal size after the last snapshot */
static uint32_t	gen;		/* snapshots written, to number options */
static uint64_t	retry_after;	/* after a failure, wait (ms clock) */
static uint64_t	child_t0;	/* when the child was started (ms) */
static uint64_t	child_pause_us;	/* the loop's pause to start it */

struct snapout {
	snapshot_put_fn	 fn;
	void		*arg;
};

static int
put(struct snapout *w, uint8_t type, struct buf *b)
{
	int	rc = w->fn(w->arg, type, b->p, b->len);

	buf_reset(b);
	return rc;
}

/*
 * Hands the whole live state, record by record, to fn (the journal's
 * snapshot writer, or a test's).  Returns 0, or -1 when fn failed (then
 * with fn's errno).
 */
int
snapshot_records(snapshot_put_fn fn, void *fnarg)
{
	struct snapout	 out = { fn, fnarg }, *w = &out;
	struct buf	 b;
	struct queue	*q;
	struct job	*j, *t;
	uint32_t	 nopts;
	int		 rc = -1;

	buf_init(&b);
	buf_put_u64(&b, B->next_id);
	if (put(w, REC_NEXTID, &b) < 0)
		goto out;
	TAILQ_FOREACH(q, &B->queues, entry) {
		if (!q->paused)
			continue;
		rec_queue(&b, q);
		if (put(w, REC_PAUSE, &b) < 0)
			goto out;
	}
	gen++;
	nopts = 0;
	TAILQ_FOREACH(j, &B->jobs, entry) {
		struct jobopts *o = j->opts;
		if (o->snapgen != gen) {
			o->snapgen = gen;
			o->snapno = nopts++;
			rec_opts(&b, o->snapno, o);
			if (put(w, REC_OPTS, &b) < 0)
				goto out;
		}
		rec_job(&b, j);
		if (put(w, REC_JOB, &b) < 0)
			goto out;
		if (j->kind != JK_ARRAY)
			continue;
		TAILQ_FOREACH(t, &j->arr->tasks, entry) {
			rec_job(&b, t);
			if (put(w, REC_JOB, &b) < 0)
				goto out;
		}
	}
	/* The ids reserved for early leases (epoch.c), which the records the
	 * snapshot replaces held: ends the snapshot. */
	if (B->epoch > 0) {
		rec_epoch(&b, EPOCH_RESERVE, B->epoch, B->id_limit);
		if (put(w, REC_EPOCH, &b) < 0)
			goto out;
	}
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

static int
journal_put_fn(void *w, uint8_t type, const void *p, size_t len)
{
	return journal_snap_append(w, type, p, len);
}

/* The journal's snapshot callback: the live state through w.  Returns 0,
 * or -1 with errno. */
int
snapshot_write(void *arg, struct snapw *w)
{
	return snapshot_records(journal_put_fn, w);
}

static uint64_t
mono_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* A compaction failed with err: the old segments stay in use, and the
 * next try is a minute later.  Unless a failed fsync broke the journal
 * (journal_sync says so): that is fatal, as any failed fsync. */
static void
compaction_failed(int err)
{
	if (journal_sync(B->journal) < 0)
		fatal("journal: compaction: %s; exiting so that a restart "
		    "recovers from what is on disk", strerror(err));
	log_warn("compaction failed: %s; journal kept as it is, next try in "
	    "a minute", strerror(err));
	retry_after = B->now + 60000;
}

/* The compaction child, if any, has exited: its outcome. */
static void
snapshot_reap(void)
{
	struct journal_stats	st;
	uint64_t		bytes = 0;
	int			r;

	if ((r = journal_snapshot_poll(B->journal, &bytes)) == 1)
		return;
	B->compacting = 0;
	if (r < 0) {
		compaction_failed(errno);
		return;
	}
	journal_stats(B->journal, &st);
	log_info("compacted the journal to %llu bytes in %llu ms (a snapshot "
	    "of %llu bytes, written by a child; the loop paused %llu.%03llu "
	    "ms to start it)", (unsigned long long)st.bytes,
	    (unsigned long long)(mono_ms() - child_t0),
	    (unsigned long long)bytes,
	    (unsigned long long)(child_pause_us / 1000),
	    (unsigned long long)(child_pause_us % 1000));
	base_bytes = bytes;
}

/* Compacts if the journal has outgrown the live state; reaps the child
 * that does it. */
void
snapshot_maybe(void)
{
	struct journal_stats	st;
	uint64_t		t0;
	pid_t			pid;

	if (journal_snapshot_child(B->journal) != 0) {
		snapshot_reap();
		return;
	}
	journal_stats(B->journal, &st);
	/* After a restart the base is the snapshot found on disk. */
	if (base_bytes == 0)
		base_bytes = B->snapshot_bytes;
	if (st.bytes < B->cfg.compact_min || st.bytes < 2 * base_bytes ||
	    B->now < retry_after)
		return;
	t0 = mono_us();
	child_t0 = mono_ms();
	pid = journal_snapshot_start(B->journal, snapshot_write, NULL,
	    B->cfg.compact_child_delay_ms);
	child_pause_us = mono_us() - t0;
	if (pid < 0) {
		compaction_failed(errno);
		return;
	}
	B->compacting = 1;
	log_info("compacting the journal (%llu bytes): child %ld writes a "
	    "snapshot of %llu jobs and tasks", (unsigned long long)st.bytes,
	    (long)pid, (unsigned long long)B->njobs);
}

/*
 * Snapshot records.  A snapshot writes each distinct set of options once
 * (REC_OPTS, numbered from 0 in the order written) and then one REC_JOB
 * per job, array and task, referring to its options by number.  REC_JOB
 * uses varints throughout, so a queued job costs about 25 bytes plus its
 * command, not the 120 of fixed-width fields.
 */
void
rec_opts(struct buf *b, uint32_t no, const struct jobopts *o)
{
	buf_put_uv(b, no);
	rec_put_opts(b, o);
}

#define RJ_GATE		0x1
#define RJ_RUN		0x2
#define RJ_RES		0x4
#define RJ_DEPFAILED	0x8	/* failed because a dependency did */
#define RJ_SKIP		0x20	/* attempts a crash may have forgotten
				 * follow attempts (epoch.c; version 6) */
#define RJ_LINES	0x10	/* an EACHLINE array: its lines follow
				 * (journal version 4) */

/* One job, array or task with all its state; its options must have been
 * written (rec_opts) with number j->opts->snapno. */
void
rec_job(struct buf *b, const struct job *j)
{
	const struct cmd	*c = j->cmd;

	buf_put_uv(b, j->id);
	buf_put_uv(b, j->index == SIMQ_NOINDEX ? 0 : (uint64_t)j->index + 1);
	buf_put_u8(b, j->kind);
	buf_put_u8(b, j->state);
	buf_put_u8(b, (j->gate_open ? RJ_GATE : 0) |
	    (j->run != NULL ? RJ_RUN : 0) | (j->res != NULL ? RJ_RES : 0) |
	    (j->depfailed ? RJ_DEPFAILED : 0) |
	    (j->kind == JK_ARRAY && j->arr->ent != NULL ? RJ_LINES : 0) |
	    (j->skip ? RJ_SKIP : 0));
	buf_put_uv(b, j->lost);
	buf_put_uv(b, j->failures);
	buf_put_uv(b, j->attempts);
	if (j->skip)
		buf_put_uv(b, j->skip);
	buf_put_uv(b, j->submitted);
	/* A running job's due time is its lease's end, which a restart
	 * grants afresh (job_restore): not state, so not written. */
	buf_put_uv(b, j->state == JS_RUNNING ? 0 : j->due);
	if (j->kind != JK_TASK) {
		buf_put_uv(b, j->opts->snapno);
		rec_put_cmd(b, c);
	}
	if (j->kind == JK_ARRAY) {
		const struct array *a = j->arr;
		buf_put_uv(b, a->spec.first);
		buf_put_uv(b, a->spec.last);
		buf_put_uv(b, a->spec.step);
		buf_put_uv(b, a->spec.maxrun);
		buf_put_uv(b, a->cursor);
		buf_put_uv(b, a->cut);
		buf_put_u8(b, (uint8_t)a->cut_state);
		if (a->ent != NULL)
			rec_put_entries(b, a->ent);
	}
	if (j->run != NULL) {
		rec_put_vstr0(b, j->run->w->name);
		rec_put_vstr0(b, j->run->w->host);
		buf_put_uv(b, j->run->started);
		buf_put_uv(b, j->run->w->lease_ms);
	}
	if (j->res != NULL)
		rec_put_result(b, j->res);
}

/*
 * The options a snapshot numbered, while it is replayed.  They are let go
 * when replay ends (rec_replay_done); jobs hold their own references.
 */
static struct jobopts	**snapopts;
static uint32_t		  nsnapopts, capsnapopts;
static uint64_t		  snap_last_id;
static uint32_t		  snap_last_index;
/* The array whose tasks are being read, and how many have been: they are
 * [0, cursor), all of them, in order, right after it. */
static struct job	 *snap_arr;
static uint64_t		  snap_seen;
/* A snapshot's records are read only between its REC_NEXTID, the first
 * record of a replay, and the first record that is not the snapshot's. */
static int		  snap_open;

/*
 * The records of the snapshot's last array are over (another job comes,
 * or a record that is not the snapshot's, or replay's end).  It should
 * have had all its started tasks; a snapshot cut short (with --force, at
 * a damaged record) may lack some: they go back to the array's block,
 * counted with it, and run again.  Then the array's gate, which its
 * tasks' states decide.
 */
void
snap_end(void)
{
	struct job	*a = snap_arr;
	uint64_t	 miss;
	int		 st;

	snap_arr = NULL;
	if (a == NULL)
		return;
	if (snap_seen != a->arr->cursor) {
		miss = a->arr->cursor - snap_seen;
		log_warn("journal: the snapshot has %llu of the %llu started "
		    "tasks of array %llu; the other %llu will run again",
		    (unsigned long long)snap_seen,
		    (unsigned long long)a->arr->cursor,
		    (unsigned long long)a->id, (unsigned long long)miss);
		a->arr->cursor = snap_seen;
		a->arr->count[a->state] += miss;
		queue_count(a->opts->q, -1, a->state, miss);
	}
	/* An array whose gate has not opened waits for its dependencies and
	 * its delay, unless it is over as a whole (canceled, or failed with
	 * a dependency, before it opened): then, as live, for nothing, and a
	 * RETRY resolves it again. */
	st = job_array_state(a);
	if (!a->gate_open && st != JS_DONE && st != JS_FAILED &&
	    st != JS_CANCELED)
		deps_resolve(a);
}

static void
snapopts_clear(void)
{
	uint32_t	i;

	for (i = 0; i < nsnapopts; i++)
		jobopts_unref(snapopts[i]);
	free(snapopts);
	snapopts = NULL;
	nsnapopts = capsnapopts = 0;
}

/* A record that is not the snapshot's: the snapshot is over. */
void
snap_close(void)
{
	snap_end();
	snap_open = 0;
}

/* Replay is over: the snapshot's numbering is let go. */
void
rec_replay_done(void)
{
	snap_close();
	snapopts_clear();
}

/* REC_NEXTID: a snapshot begins; its option numbers start afresh. */
int
snap_apply_nextid(struct rbuf *r)
{
	uint64_t	n = rbuf_u64(r);

	snapopts_clear();
	snap_last_id = 0;
	snap_last_index = SIMQ_NOINDEX;
	snap_end();
	if (r->err || n == 0 || n > SIMQ_ID_MAX + 1)
		return -1;
	if (n > B->next_id)
		B->next_id = n;
	snap_open = 1;
	return 0;
}

int
snap_apply_opts(struct rbuf *r)
{
	uint64_t	 no = rbuf_uv(r);
	struct jobopts	*o;

	if (!snap_open)
		return -1;
	o = rec_get_opts(r);
	if (r->err || no != nsnapopts) {
		jobopts_unref(o);
		return -1;
	}
	if (nsnapopts == capsnapopts) {
		capsnapopts = capsnapopts ? capsnapopts * 2 : 64;
		snapopts = xreallocarray(snapopts, capsnapopts,
		    sizeof *snapopts);
	}
	snapopts[nsnapopts++] = o;
	return 0;
}

/* Rebuilds one job, array or task from a snapshot record. */
int
snap_apply_job(struct rbuf *r)
{
	struct job	*j = xcalloc(1, sizeof *j), *a = NULL;
	int		 flags;
	uint64_t	 v;
	char		*wname = NULL, *host = NULL;
	uint64_t	 lease_ms = 0, started = 0;

	if (!snap_open) {
		free(j);
		return -1;
	}
	j->id = rbuf_uv(r);
	v = rbuf_uv(r);
	j->index = v == 0 || v > (uint64_t)SIMQ_INDEX_MAX + 1 ?
	    SIMQ_NOINDEX : (uint32_t)(v - 1);
	j->kind = rbuf_u8(r);
	j->state = rbuf_u8(r);
	flags = rbuf_u8(r);
	j->gate_open = (flags & RJ_GATE) != 0;
	j->depfailed = (flags & RJ_DEPFAILED) != 0;
	j->lost = (uint16_t)rbuf_uv(r);
	j->failures = (uint16_t)rbuf_uv(r);
	j->attempts = (uint32_t)rbuf_uv(r);
	if (flags & RJ_SKIP) {
		v = rbuf_uv(r);
		if (v == 0 || v > UINT16_MAX)
			r->err = 1;
		j->skip = (uint16_t)v;
	}
	j->submitted = rbuf_uv(r);
	j->due = rbuf_uv(r);
	/* A snapshot lists jobs in id order, each array's tasks right after
	 * it in index order: checking that order is the duplicate check. */
	if (r->err || j->kind > JK_TASK || j->state >= JS__COUNT ||
	    j->id == 0 || j->id > SIMQ_ID_MAX ||
	    (j->kind == JK_TASK) != (j->index != SIMQ_NOINDEX))
		goto fail;
	if (j->kind == JK_TASK ? j->id != snap_last_id ||
	    (snap_last_index != SIMQ_NOINDEX && j->index <= snap_last_index) :
	    j->id <= snap_last_id)
		goto fail;
	if (j->kind == JK_TASK) {
		uint64_t pos;
		a = idmap_get(j->id, SIMQ_NOINDEX);
		if (a == NULL || a != snap_arr ||
		    (pos = array_pos(a, j->index)) == UINT64_MAX)
			goto fail;
		/* Materialised in order, each in turn; then those made out
		 * of order (array_task), past the cursor. */
		if (pos < a->arr->cursor ? pos != snap_seen :
		    snap_seen != a->arr->cursor)
			goto fail;
		j->parent = a;
		j->opts = a->opts;
		a->opts->refs++;
	} else {
		snap_end();
		v = rbuf_uv(r);
		if (r->err || v >= nsnapopts)
			goto fail;
		j->opts = snapopts[v];
		j->opts->refs++;
		if ((j->cmd = rec_get_cmd(r)) == NULL)
			goto fail;
	}
	if (j->kind == JK_ARRAY) {
		struct array *arr = xcalloc(1, sizeof *arr);
		TAILQ_INIT(&arr->tasks);
		j->arr = arr;
		arr->spec.first = (uint32_t)rbuf_uv(r);
		arr->spec.last = (uint32_t)rbuf_uv(r);
		arr->spec.step = (uint32_t)rbuf_uv(r);
		arr->spec.maxrun = (uint32_t)rbuf_uv(r);
		arr->cursor = rbuf_uv(r);
		arr->cut = rbuf_uv(r);
		arr->cut_state = rbuf_u8(r);
		if (r->err || arr->spec.step == 0 ||
		    arr->spec.first > arr->spec.last ||
		    arr->spec.last > SIMQ_INDEX_MAX)
			goto fail;
		arr->ntasks = proto_array_count(&arr->spec);
		if (arr->cursor > arr->cut || arr->cut > arr->ntasks ||
		    arr->cut_state >= JS__COUNT)
			goto fail;
		if ((flags & RJ_LINES) && ((arr->ent = rec_get_entries(r)) ==
		    NULL || arr->spec.first != 1 || arr->spec.step != 1 ||
		    arr->ent->n != arr->ntasks))
			goto fail;
	} else if (flags & RJ_LINES)
		goto fail;
	if (flags & RJ_RUN) {
		wname = rec_get_str(r, 0);
		host = rec_get_str(r, 1);
		started = rbuf_uv(r);
		lease_ms = rbuf_uv(r);
	}
	if (flags & RJ_RES)
		j->res = rec_get_result(r);
	if (r->err || ((flags & RJ_RUN) != 0) != (j->state == JS_RUNNING) ||
	    ((flags & RJ_RUN) && (wname == NULL || j->kind == JK_ARRAY ||
	    lease_ms < LEASE_MIN_MS || lease_ms > LEASE_MAX_MS)))
		goto fail;
	if (job_restore(j, wname, host, started, lease_ms) < 0)
		goto fail;
	snap_last_id = j->id;
	snap_last_index = j->index;
	if (j->kind == JK_TASK) {
		if (array_pos(j->parent, j->index) < j->parent->arr->cursor)
			snap_seen++;
	} else {
		snap_arr = j->kind == JK_ARRAY ? j : NULL;
		snap_seen = 0;
	}
	free(wname);
	free(host);
	return 0;
fail:
	free(wname);
	free(host);
	if (j->kind == JK_ARRAY && j->arr != NULL) {
		entries_free(j->arr->ent);
		free(j->arr);
	}
	jobopts_unref(j->opts);
	free(j->cmd);
	result_free(j->res);
	free(j);
	return -1;
}

/*
 * Puts a job rebuilt from a snapshot record (record.c filled in its fields)
 * into the state: map, lists, counts, heaps, dependencies, its worker.
 * Returns 0, or -1 when the record does not fit (a task outside its
 * array's materialised range).
 */
int
job_restore(struct job *j, const char *wname, const char *host,
    uint64_t started, uint64_t lease_ms)
{
	struct queue	*q = j->opts->q;
	struct worker	*w;

	/* What can refuse the record is checked before anything changes:
	 * under --force, replay keeps the state built before a bad record,
	 * which must not hold half of this one. */
	if (j->kind == JK_TASK) {
		/* Past the cursor too: one made out of order (array_task),
		 * in any state since. */
		if (array_pos(j->parent, j->index) == UINT64_MAX)
			return -1;
	}
	if (j->kind == JK_ARRAY) {
		/* The block waits for its gate or is queued; what was cut off
		 * was canceled or failed. */
		if (j->state != (j->gate_open ? JS_QUEUED : JS_WAITING) ||
		    (j->arr->cut < j->arr->ntasks &&
		    j->arr->cut_state != JS_CANCELED &&
		    j->arr->cut_state != JS_FAILED))
			return -1;
	} else if (job_finished(j) && j->res == NULL)
		return -1;
	if (j->kind == JK_TASK) {
		struct array *a = j->parent->arr;
		uint64_t pos = array_pos(j->parent, j->index);
		if (pos >= a->cursor) {
			/* Counted with the block or the rest: it is not. */
			int rs = pos < a->cut ? j->parent->state : a->cut_state;
			a->count[rs]--;
			queue_count(q, rs, -1, 1);
			if (pos < a->cut)
				a->nexc++;
			else
				a->nexc_cut++;
		}
		TAILQ_INSERT_TAIL(&a->tasks, j, entry);
		a->count[j->state]++;
		if (j->state == JS_RUNNING)
			a->running++;
		queue_count(q, -1, j->state, 1);
	} else if (j->kind == JK_ARRAY) {
		struct array *a = j->arr;
		a->count[j->state] += a->cut - a->cursor;
		queue_count(q, -1, j->state, a->cut - a->cursor);
		a->count[a->cut_state] += a->ntasks - a->cut;
		queue_count(q, -1, a->cut_state, a->ntasks - a->cut);
		TAILQ_INSERT_TAIL(&B->jobs, j, entry);
	} else {
		queue_count(q, -1, j->state, 1);
		TAILQ_INSERT_TAIL(&B->jobs, j, entry);
	}
	idmap_put(j);
	if (j->id >= B->next_id)
		B->next_id = j->id + 1;
	if (j->kind == JK_ARRAY) {
		/* Its gate, once its tasks are read: snap_end. */
		return 0;	/* heap and finished list: job_replay_done */
	}
	switch (j->state) {
	case JS_RUNNING:
		w = worker_get(wname, 1);	/* never NULL when made */
		if (host != NULL && w->host == NULL)
			w->host = xstrdup(host);
		w->lease_ms = lease_ms;
		j->run = xcalloc(1, sizeof *j->run);
		j->run->w = w;
		j->run->started = started;
		TAILQ_INSERT_TAIL(&w->jobs, j, run->wentry);
		w->njobs++;
		fit_hold(w, j->opts, 1);
		timer_set(j, B->now + lease_ms);
		break;
	case JS_WAITING:
		if (j->kind == JK_JOB && j->failures == 0 && j->lost == 0)
			deps_resolve(j);
		else
			job_gate_check(j);
		break;
	case JS_QUEUED:
		queue_ready(j);
		break;
	default:
		if (j->kind == JK_JOB) {
			TAILQ_INSERT_TAIL(&B->finished, j, res->fentry);
			j->res->in_flist = 1;
		}
		break;
	}
	return 0;
}
