/*
 * worker.c: workers, the leases they hold, and what they must drop.
 *
 * A worker is known by its name, not its connection: its jobs stay leased
 * to it while it is disconnected, until each lease runs out or, when its
 * connection ended, until --reconnect-grace passes, so a worker that
 * reconnects in time picks up where it was.  A lease that runs out
 * re-queues the job (the worker is "lost") and leaves a drop notice, so a
 * worker that comes back after all is told to stop the stale attempt.
 *
 * A worker record lives while it is connected or holds jobs.  Drop
 * notices are queued only for a connected worker; one that returns later
 * lists its jobs in HEARTBEAT and hears of stale ones then.
 */
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

struct workerlist	workers = TAILQ_HEAD_INITIALIZER(workers);
uint32_t		nworkers;

/* Drop notices kept per worker: a worker that never returns must not
 * make the broker grow without bound. */
#define DROPS_MAX	4096

struct worker *
worker_get(const char *name, int create)
{
	struct worker	*w;

	TAILQ_FOREACH(w, &workers, entry)
		if (strcmp(w->name, name) == 0)
			return w;
	if (!create)
		return NULL;
	w = xcalloc(1, sizeof *w);
	w->name = xstrdup(name);
	w->lease_ms = B->cfg.default_lease_ms;
	w->cpus = UINT32_MAX;	/* until it says (fit.c) */
	w->mem = w->time_left = UINT64_MAX;
	TAILQ_INIT(&w->jobs);
	TAILQ_INSERT_TAIL(&workers, w, entry);
	nworkers++;
	return w;
}

static void
worker_free(struct worker *w)
{
	struct drop	*d;

	TAILQ_REMOVE(&workers, w, entry);
	nworkers--;
	while ((d = w->drops) != NULL) {
		w->drops = d->next;
		free(d);
	}
	free(w->name);
	free(w->host);
	free(w->queues);
	free(w->outerr);
	free(w);
}

/*
 * Binds w to connection c (w->conn is only a handle here: the model never
 * looks inside a connection).  Returns the connection that held w before,
 * if another, which the caller closes; the caller also sets c's side of
 * the link.
 */
struct conn *
worker_attach(struct worker *w, struct conn *c)
{
	struct conn	*old = w->conn != c ? w->conn : NULL;

	w->conn = c;
	w->seen = B->now;
	return old;
}

/*
 * The connection went away (the caller forgets its side).  An ended
 * connection is news, unlike silence: the worker's process died or its
 * host went down, or it restarts.  So its leases are cut to
 * --reconnect-grace: a worker that comes back within it lists its jobs
 * and renews them, one that does not loses them then, not at the end of
 * a long lease.  (A silent worker still keeps them until the lease
 * ends.)  Not journaled: a restart grants fresh leases.
 */
void
worker_detach(struct worker *w)
{
	struct job	*j;
	uint64_t	 until = B->now + B->cfg.reconnect_grace_ms;

	w->conn = NULL;
	w->seen = B->now;
	w->confirming = 0;
	TAILQ_FOREACH(j, &w->jobs, run->wentry)
		if (j->due > until)
			timer_renew(j, until);
	if (w->njobs > 0)
		timers_arm();
	worker_gc(w);
}

/*
 * w registered again on a new connection: each job it holds is
 * unconfirmed until its first HEARTBEAT on this connection lists it (a
 * TAKE reply lost with the old connection may have leased jobs it never
 * received).
 */
void
worker_reattached(struct worker *w)
{
	struct job	*j;

	w->confirming = w->njobs > 0;
	TAILQ_FOREACH(j, &w->jobs, run->wentry)
		j->run->unconfirmed = 1;
}

/*
 * The worker's listing after its reconnect is complete (HEARTBEAT all=1):
 * every job it did not list was never received, and goes back to its
 * queue at once (released: it never ran).  Returns how many.
 */
int
worker_confirmed(struct worker *w)
{
	struct job	*j, *next;
	char		 id[32];
	int		 n = 0;

	if (!w->confirming)
		return 0;
	w->confirming = 0;
	for (j = TAILQ_FIRST(&w->jobs); j != NULL; j = next) {
		next = TAILQ_NEXT(j, run->wentry);
		if (!j->run->unconfirmed)
			continue;
		proto_format_id(id, j->id, j->index);
		log_info("job %s: worker %s does not hold attempt %u (the "
		    "reply that leased it was lost); re-queued", id, w->name,
		    j->attempts);
		job_requeue(j, RQ_RELEASED, 0);
		n++;
	}
	return n;
}

/* Forgets a worker that is disconnected and holds nothing. */
void
worker_gc(struct worker *w)
{
	if (w->conn == NULL && w->njobs == 0 && !B->replaying)
		worker_free(w);
}

/* Tells w, on its next TAKE or HEARTBEAT, to stop attempt j->attempts
 * of job j. */
void
worker_drop(struct worker *w, const struct job *j, const char *reason)
{
	struct drop	*d, **pp;
	int		 n = 0;

	/* A disconnected worker needs no notice: if it comes back, its
	 * HEARTBEAT lists the job and is answered with a drop then. */
	if (B->replaying || w->conn == NULL)
		return;
	for (pp = &w->drops; *pp != NULL; pp = &(*pp)->next)
		n++;
	if (n >= DROPS_MAX)
		return;
	d = xcalloc(1, sizeof *d);
	d->id = j->id;
	d->index = j->index;
	d->attempt = j->attempts;
	d->reason = reason;
	*pp = d;
	B->want_dispatch = 1;	/* a parked TAKE of w answers with it */
}

void
worker_free_all(void)
{
	struct worker	*w;

	while ((w = TAILQ_FIRST(&workers)) != NULL)
		worker_free(w);
}
