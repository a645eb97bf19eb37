/*
 * timer.c: every job timer (a delay, a retry's backoff, a lease), behind
 * one libevent timer.
 *
 * Job timers live in one heap ordered by due time (B->timers); the single
 * libevent timer is armed at the earliest of them once per loop pass, so
 * a million delayed jobs cost one event, not a million.  A job is in the
 * timer heap or in its queue's ready heap, never both (job->where).
 *
 * What a timer coming due means is the job model's business (job_due);
 * this file only knows when.  The retention sweep (job_expire) is here
 * too: a second libevent timer, at a fixed period.
 */
#include <time.h>

#include <event2/event.h>

#include "simqd.h"
#include "log.h"

/* Earlier due time first; among equals, the lower id. */
int
due_less(const struct job *a, const struct job *b)
{
	if (a->due != b->due)
		return a->due < b->due;
	return a->id < b->id;
}


/* Sets j's timer to due (moving it out of any heap). */
void
timer_set(struct job *j, uint64_t due)
{
	job_unheap(j);
	j->due = due;
	heap_push(&B->timers, j);
	j->where = JH_TIMER;
}

/*
 * Moves the end of running j's lease to until (a HEARTBEAT).  Not
 * journaled, by design: a restarted broker grants every running job a
 * fresh lease from the moment it comes back (record.c, apply_lease), so
 * the renewal would change nothing that replay rebuilds.
 */
void
timer_renew(struct job *j, uint64_t until)
{
	if (j->state != JS_RUNNING || j->where != JH_TIMER)
		fatal("job %llu: renewing a lease it does not hold",
		    (unsigned long long)j->id);
	j->due = until;
	heap_fix(&B->timers, j);
}

/* Runs every job timer that is due at B->now. */
void
timers_fire(void)
{
	struct job	*j;

	while ((j = heap_top(&B->timers)) != NULL && j->due <= B->now)
		job_due(j);
}

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	B->now = now_ms();
	B->timer_armed = 0;
}

static void
sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
	B->now = now_ms();
	job_expire(B->now);
}

/* Makes the libevent timers, on B->base: the job timers' and the
 * retention sweep's. */
void
timers_start(void)
{
	struct timeval	tv;
	uint64_t	v;

	if ((B->timer_ev = evtimer_new(B->base, timer_cb, NULL)) == NULL ||
	    (B->expire_ev = event_new(B->base, -1, EV_PERSIST, sweep_cb,
	    NULL)) == NULL)
		fatal("evtimer_new failed");
	B->timer_armed = 0;
	/* Sweep a few times per retention period, at most once a minute:
	 * finished jobs outlive their retention by at most a quarter. */
	v = B->cfg.retention_ms / 4;
	v = v < 100 ? 100 : v > 60000 ? 60000 : v;
	tv.tv_sec = (time_t)(v / 1000);
	tv.tv_usec = (suseconds_t)(v % 1000) * 1000;
	event_add(B->expire_ev, &tv);
}

void
timers_stop(void)
{
	if (B->timer_ev != NULL)
		event_free(B->timer_ev);
	if (B->expire_ev != NULL)
		event_free(B->expire_ev);
	B->timer_ev = B->expire_ev = NULL;
	B->timer_armed = 0;
}

/* Arms the libevent timer at the earliest job timer (after a loop pass;
 * without a loop, as in the unit tests, it does nothing). */
void
timers_arm(void)
{
	struct job	*j = heap_top(&B->timers);
	struct timeval	 tv;
	uint64_t	 d;

	if (B->timer_ev == NULL)
		return;
	if (j == NULL) {
		if (B->timer_armed) {
			evtimer_del(B->timer_ev);
			B->timer_armed = 0;
		}
		return;
	}
	if (B->timer_armed == j->due)
		return;
	d = j->due > B->now ? j->due - B->now : 0;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	evtimer_add(B->timer_ev, &tv);
	B->timer_armed = j->due;
}
