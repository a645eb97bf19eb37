/*
 * epoch.c: leases sent before their record is durable.
 *
 * A TAKE reply that leases jobs may leave before the commit that holds
 * its lease records (and the SUBMIT of a job submitted in the same pass)
 * reaches the disk: the worker starts the job while the broker still
 * waits for fdatasync.  Every other reply still waits for its commit
 * (net.c: conn_reply_early, net_flush_early).  A crash in that window
 * forgets a lease the worker holds; what keeps that harmless:
 *
 *   ids      A REC_EPOCH(EPOCH_RESERVE) reserves the ids below a limit
 *            ahead of use; a lease goes early only for an id below a
 *            reservation that is durable, and recovery starts the id
 *            counter at the limit, so an id that went out in a lease whose
 *            SUBMIT was lost is never given to another job.
 *
 *   attempts A lease goes early only if nothing else about its job was
 *            journaled in the same pass (job->pass: no requeue, retry or
 *            release of a dependency just before it) and never for an
 *            array task's first attempt (the lease is what makes the task
 *            real).  So at a crash each job has at most one forgotten
 *            attempt, attempts + skip + 1, and its durable state is
 *            waiting or queued.  The next start journals
 *            REC_EPOCH(EPOCH_START_BUMP), synced before any early lease,
 *            and it and its replay add one to the skip of every waiting
 *            or queued job (epoch_bump): its next attempt number passes
 *            over the forgotten one, across any number of crashes, while
 *            its count of attempts stays what is on disk.  A start after
 *            a clean stop (REC_EPOCH(EPOCH_CLOSE) last: every lease was
 *            durable) bumps nothing.
 *
 *   workers  A worker that comes back holding a forgotten lease lists it
 *            in HEARTBEAT: a job still queued whose attempt is one of the
 *            skipped numbers is re-attached (journaled as its lease); any
 *            other (an unknown id, a stale attempt) is answered with a
 *            drop, and the worker kills the job and reports nothing.
 *
 * A journal older than version 6 has no REC_EPOCH: its broker never sent
 * a lease early, so its first start here bumps nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

void
rec_epoch(struct buf *b, int kind, uint64_t epoch, uint64_t limit)
{
	buf_put_u8(b, (uint8_t)kind);
	buf_put_u64(b, epoch);
	buf_put_u64(b, limit);
}

static void
bump_unit(struct job *j)
{
	if (j->state != JS_WAITING && j->state != JS_QUEUED)
		return;
	if (j->skip == UINT16_MAX) {
		/* So many starts without a lease: the skipped numbers are
		 * given up for good. */
		j->attempts += j->skip;
		j->skip = 0;
	}
	j->skip++;
}

/* A start after a crash: every waiting or queued job's next attempt skips
 * the one a lost commit may have handed out.  (Snapshots keep skip.) */
void
epoch_bump(void)
{
	struct job	*j, *t;

	TAILQ_FOREACH(j, &B->jobs, entry) {
		if (j->kind != JK_ARRAY) {
			bump_unit(j);
			continue;
		}
		TAILQ_FOREACH(t, &j->arr->tasks, entry)
			bump_unit(t);
	}
}

int
apply_epoch(struct rbuf *r)
{
	int		kind = rbuf_u8(r);
	uint64_t	epoch = rbuf_u64(r), limit = rbuf_u64(r);

	/* A start begins a new epoch; a reservation (also the one that ends
	 * a snapshot) and a stop belong to the latest. */
	if (r->err || kind > EPOCH_CLOSE || limit == 0 ||
	    limit > SIMQ_ID_MAX + 1 || epoch == 0 || epoch < B->epoch ||
	    ((kind == EPOCH_START || kind == EPOCH_START_BUMP) &&
	    epoch == B->epoch))
		return -1;
	switch (kind) {
	case EPOCH_START_BUMP:
		epoch_bump();
		/* FALLTHROUGH */
	case EPOCH_START:
	case EPOCH_RESERVE:
		if (limit > B->id_limit)
			B->id_limit = limit;
		B->epoch_open = 1;
		break;
	case EPOCH_CLOSE:
		/* Every lease of that life was durable: its reservation is
		 * let go down to the ids it used. */
		B->id_limit = limit;
		B->epoch_open = 0;
		break;
	}
	B->epoch = epoch;
	return 0;
}

static void
put_epoch(int kind, uint64_t limit)
{
	struct buf	b;

	buf_init(&b);
	rec_epoch(&b, kind, B->epoch, limit);
	journal_put(REC_EPOCH, &b);
}

/*
 * After replay: ids start above every reservation, and, when the last
 * life did not stop cleanly, every waiting or queued job's next attempt
 * skips one.  Returns the kind of this start's REC_EPOCH, which reserves
 * ids up to B->id_limit.
 */
int
epoch_begin(void)
{
	int	bump = B->epoch_open;

	if (B->id_limit > B->next_id)
		B->next_id = B->id_limit;
	B->epoch++;
	if (bump)
		epoch_bump();
	B->id_limit = B->next_id + EPOCH_RESERVE_IDS;
	if (B->id_limit > SIMQ_ID_MAX + 1)
		B->id_limit = SIMQ_ID_MAX + 1;
	B->epoch_open = 1;
	return bump ? EPOCH_START_BUMP : EPOCH_START;
}

/*
 * After replay, before the broker listens: epoch_begin, and this start's
 * REC_EPOCH written and synced, so no lease goes early before it is
 * durable.
 */
void
epoch_start(void)
{
	int	kind = epoch_begin();

	if (kind == EPOCH_START_BUMP)
		log_info("journal: the last run did not stop cleanly: ids "
		    "resume at %llu and the next attempt of every queued job "
		    "skips one (epoch %llu)", (unsigned long long)B->next_id,
		    (unsigned long long)B->epoch);
	put_epoch(kind, B->id_limit);
	if (journal_commit(B->journal) < 0 || journal_sync(B->journal) < 0)
		fatal("journal: cannot write the start record: %s",
		    strerror(errno));
	B->id_durable = B->id_limit;
	B->early_ok = 1;
	B->pass++;
}

/* Each pass before its commit: reserves ids ahead while half of the
 * reservation is left, so that submits rarely outrun it. */
void
epoch_reserve(void)
{
	uint64_t	limit;

	if (!B->early_ok || B->next_id + EPOCH_RESERVE_IDS / 2 <= B->id_limit ||
	    B->id_limit > SIMQ_ID_MAX)
		return;
	limit = B->next_id + EPOCH_RESERVE_IDS;
	if (limit > SIMQ_ID_MAX + 1)
		limit = SIMQ_ID_MAX + 1;
	B->id_limit = limit;
	put_epoch(EPOCH_RESERVE, limit);
}

/* The pass's commit is on disk (as the fsync policy has it). */
void
epoch_committed(void)
{
	B->id_durable = B->id_limit;
	B->pass++;
	B->pass_leases = 0;
}

/* A clean stop: every lease is committed with the rest; the next start
 * needs to skip nothing, and ids resume where they stopped. */
void
epoch_close(void)
{
	if (B->early_ok)
		put_epoch(EPOCH_CLOSE, B->next_id);
}

/*
 * Whether the lease being made of j (not yet applied) may go out before
 * its commit: this start's epoch is durable, j's id is reserved durably,
 * nothing else about j was journaled in this pass, and j is not an array
 * task leased for the first time.
 */
int
lease_early_ok(const struct job *j)
{
	return B->early_ok && j->id < B->id_durable &&
	    j->pass != (uint8_t)B->pass &&
	    !(j->kind == JK_TASK && j->attempts == 0);
}

/*
 * A worker holds attempt of queued job j, which a crash made the broker
 * forget (one of the numbers j->skip passes over): j runs there, as if the
 * lease had been durable.  Journaled as its lease.
 */
void
job_reattach(struct job *j, struct worker *w, uint32_t attempt)
{
	char	id[32];

	proto_format_id(id, j->id, j->index);
	log_info("job %s: worker %s holds attempt %u, which a crash lost "
	    "before it was on disk; re-attached", id, w->name, attempt);
	job_lease(j, w, attempt, B->now, B->now + w->lease_ms);
	B->nreattached++;
}
