/*
 * snapshot.c: compaction.  The journal is rewritten as a snapshot of the
 * live state, one REC_JOB per job, array and materialised task, after
 * which the old segments are deleted (journal.c does the file dance).
 *
 * It runs when the journal has grown past twice its size after the last
 * snapshot and past a floor (--compact-min), so the journal stays within
 * about twice the live data and small brokers never bother.  It runs in
 * the loop, synchronously: a million live jobs take a fraction of a
 * second, during which requests wait.
 */
#include <errno.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

static uint64_t	base_bytes;	/* journal size after the last snapshot */
static uint32_t	gen;		/* snapshots written, to number options */
static uint64_t	retry_after;	/* after a failure, wait (ms clock) */

static int
put(struct snapw *w, uint8_t type, struct buf *b)
{
	int	rc = journal_snap_append(w, type, b->p, b->len);

	buf_reset(b);
	return rc;
}

/* Writes the whole live state through w.  Returns 0, or -1 with errno. */
int
snapshot_write(void *arg, struct snapw *w)
{
	struct buf	 b;
	struct queue	*q;
	struct job	*j, *t;
	uint32_t	 nopts;
	int		 rc = -1;

	(void)arg;
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
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

/* Compacts if the journal has outgrown the live state. */
void
snapshot_maybe(void)
{
	struct journal_stats	st;
	uint64_t		t0;

	journal_stats(B->journal, &st);
	/* After a restart the base is the snapshot found on disk. */
	if (base_bytes == 0)
		base_bytes = B->snapshot_bytes;
	if (st.bytes < B->cfg.compact_min || st.bytes < 2 * base_bytes ||
	    B->now < retry_after)
		return;
	t0 = now_ms();
	if (journal_snapshot(B->journal, snapshot_write, NULL) < 0) {
		log_warn("compaction failed: %s; journal kept as it is, "
		    "next try in a minute", strerror(errno));
		retry_after = B->now + 60000;
		return;
	}
	journal_stats(B->journal, &st);
	log_info("compacted the journal to %llu bytes in %llu ms",
	    (unsigned long long)st.bytes, (unsigned long long)(now_ms() - t0));
	base_bytes = st.bytes;
}
