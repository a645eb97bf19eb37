/*
 * worker.c: workers, the leases they hold, and what they must drop.
 *
 * A worker is known by its name, not its connection: its jobs stay leased
 * to it while it is disconnected, until each lease runs out, so a worker
 * that reconnects in time picks up where it was.  A lease that runs out
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

/* The connection went away (the caller forgets its side); the leases
 * stay. */
void
worker_detach(struct worker *w)
{
	w->conn = NULL;
	w->seen = B->now;
	worker_gc(w);
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
