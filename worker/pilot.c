/*
 * pilot.c: a worker with an end.  A pilot worker runs inside a batch
 * system's allocation (a Slurm job, a PBS job) or for a while on a
 * borrowed machine, and must be gone before its time is up:
 *
 *   --idle-timeout D   exit when there has been nothing to do for D
 *   --time-limit D     the worker ends D after it started (under Slurm,
 *                      by default, when its allocation ends: squeue's
 *                      "time left" for $SLURM_JOB_ID, read at start).
 *                      It takes only jobs whose --timeout fits before
 *                      its stop point (TAKE time=MS), drains when
 *                      nothing can fit any more, and at the stop point
 *                      stops what still runs and hands it back (RELEASE)
 *                      so that it re-runs elsewhere at once.
 *
 * The stop point is the end less a reserve: the grace a stopped job gets
 * between SIGTERM and SIGKILL, and a second for the RELEASE to reach the
 * broker; at most half the limit.  A parked TAKE carries a time= that is
 * only true when it was sent, so it waits at most a tenth of what is
 * left, and time= leaves that wait out: a job the broker hands over at
 * the end of the wait still fits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "simq-worker.h"

/* Below this much time left before the stop point nothing is taken any
 * more: the worker drains. */
#define PILOT_LAST_MS		2000
/* A parked TAKE's longest wait, as a fraction of what is left, and its
 * bounds. */
#define PILOT_WAIT_DIV		10
#define PILOT_WAIT_MIN_MS	200
#define PILOT_WAIT_MAX_MS	60000
/* Sent a job's grace, a RELEASE gets this long to reach the broker. */
#define PILOT_REPORT_MS		1000

static struct event	*stop_ev, *drain_ev, *idle_ev;
static uint64_t		 stop_at;	/* mono ms; 0: no time limit */
static int		 in_slurm;
static const char	*limit_from;

/*
 * Slurm's "time left" (squeue %L): [DAYS-][[HOURS:]MINUTES:]SECONDS, or
 * a word (UNLIMITED, NOT_SET, INVALID).  Returns 0 and ms, or -1.
 */
int
pilot_parse_left(const char *s, uint64_t *ms)
{
	uint64_t	days = 0, f[3] = { 0, 0, 0 }, v;
	int		n = 0, digits;
	const char	*p = s, *dash;

	if ((dash = strchr(s, '-')) != NULL) {
		for (v = 0; p < dash; p++) {
			if (*p < '0' || *p > '9' || v > 100000)
				return -1;
			v = v * 10 + (uint64_t)(*p - '0');
		}
		if (p == s)
			return -1;
		days = v;
		p = dash + 1;
	}
	for (;;) {
		if (n == 3)
			return -1;
		for (v = 0, digits = 0; *p >= '0' && *p <= '9'; p++, digits++)
			if ((v = v * 10 + (uint64_t)(*p - '0')) > 1000000)
				return -1;
		if (digits == 0)
			return -1;
		f[n++] = v;
		if (*p == '\0')
			break;
		if (*p++ != ':')
			return -1;
	}
	/* Right-aligned: the last field is seconds. */
	v = 0;
	if (n == 3)
		v = f[0] * 3600 + f[1] * 60 + f[2];
	else if (n == 2)
		v = f[0] * 60 + f[1];
	else
		v = f[0];
	*ms = (days * 86400 + v) * 1000;
	return 0;
}

/* What is left of the Slurm job we run in, from squeue.  Returns 0 and
 * ms, or -1 (logged). */
static int
slurm_left(const char *jobid, uint64_t *ms)
{
	char	 cmd[128], line[128];
	FILE	*f;
	size_t	 n;
	int	 st;

	if (strspn(jobid, "0123456789_") != strlen(jobid) || jobid[0] == '\0'
	    || strlen(jobid) > 40) {
		log_warn("SLURM_JOB_ID '%s' is not a job id; no time limit",
		    jobid);
		return -1;
	}
	snprintf(cmd, sizeof cmd, "squeue -h -j %s -o %%L 2>&1", jobid);
	if ((f = popen(cmd, "r")) == NULL) {
		log_warn("%s: %s; no time limit", cmd, strerror(errno));
		return -1;
	}
	line[0] = '\0';
	if (fgets(line, sizeof line, f) == NULL)
		line[0] = '\0';
	st = pclose(f);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	if (st != 0 || pilot_parse_left(line, ms) < 0) {
		if (strcmp(line, "UNLIMITED") == 0 ||
		    strcmp(line, "NOT_SET") == 0)
			log_info("Slurm job %s has no time limit", jobid);
		else
			log_warn("squeue -h -j %s -o %%L said '%s'; no time "
			    "limit (give --time-limit)", jobid, line);
		return -1;
	}
	return 0;
}

static uint64_t
left_ms(void)
{
	uint64_t	now = mono_ms();

	return stop_at > now ? stop_at - now : 0;
}

static void
stop_cb(evutil_socket_t fd, short ev, void *arg)
{
	log_info("time limit: %s; stopping %u running job%s and handing "
	    "them back", limit_from, W->nrunning, W->nrunning == 1 ? "" :
	    "s");
	pilot_stop();
}

static void
drain_cb(evutil_socket_t fd, short ev, void *arg)
{
	worker_poke();
}

static void
idle_cb(evutil_socket_t fd, short ev, void *arg)
{
	if (W->stopping || W->njobs > 0)
		return;
	log_info("idle for %llu ms; exiting",
	    (unsigned long long)W->cfg.idle_timeout_ms);
	W->stopping = 1;
	worker_poke();
}

void
pilot_init(void)
{
	struct config	*cfg = &W->cfg;
	const char	*jobid = getenv("SLURM_JOB_ID");
	struct timeval	 tv;
	uint64_t	 limit = 0, reserve;

	in_slurm = jobid != NULL && jobid[0] != '\0';
	if (cfg->time_limit_given) {
		limit = cfg->time_limit_ms;
		limit_from = "--time-limit";
	} else if (in_slurm && slurm_left(jobid, &limit) == 0) {
		limit_from = "the Slurm job's end";
		log_info("Slurm job %s ends in %llu s", jobid,
		    (unsigned long long)(limit / 1000));
	}
	if (cfg->idle_timeout_ms > 0)
		idle_ev = evtimer_new(W->base, idle_cb, NULL);
	if (limit == 0)
		return;
	reserve = cfg->grace_ms + PILOT_REPORT_MS;
	if (reserve > limit / 2)
		reserve = limit / 2;
	stop_at = mono_ms() + limit - reserve;
	stop_ev = evtimer_new(W->base, stop_cb, NULL);
	ms_to_tv(limit - reserve, &tv);
	evtimer_add(stop_ev, &tv);
	drain_ev = evtimer_new(W->base, drain_cb, NULL);
	ms_to_tv(limit - reserve > PILOT_LAST_MS ? limit - reserve -
	    PILOT_LAST_MS : 0, &tv);
	evtimer_add(drain_ev, &tv);
	log_info("time limit %llu ms (%s): jobs still running %llu ms "
	    "before the end are handed back", (unsigned long long)limit,
	    limit_from, (unsigned long long)reserve);
}

int
pilot_term_releases(void)
{
	return stop_at != 0 || in_slurm;
}

void
pilot_stop(void)
{
	if (stop_ev != NULL)
		evtimer_del(stop_ev);
	W->stopping = 2;
	job_stop_all();
	worker_poke();
}

int
pilot_draining(void)
{
	return stop_at != 0 && left_ms() < PILOT_LAST_MS;
}

uint64_t
pilot_wait(uint64_t wait_ms)
{
	uint64_t	w;

	if (stop_at == 0)
		return wait_ms;
	w = left_ms() / PILOT_WAIT_DIV;
	if (w < PILOT_WAIT_MIN_MS)
		w = PILOT_WAIT_MIN_MS;
	if (w > PILOT_WAIT_MAX_MS)
		w = PILOT_WAIT_MAX_MS;
	return w < wait_ms ? w : wait_ms;
}

uint64_t
pilot_take_time(uint64_t wait_ms)
{
	uint64_t	left;

	if (stop_at == 0)
		return 0;
	left = left_ms();
	return left > wait_ms + 1 ? left - wait_ms : 1;
}

void
pilot_idle(void)
{
	struct timeval	tv;
	int		idle;

	if (idle_ev == NULL)
		return;
	idle = !W->stopping && W->njobs == 0 && W->nrunning == 0;
	if (!idle)
		evtimer_del(idle_ev);
	else if (!evtimer_pending(idle_ev, NULL)) {
		ms_to_tv(W->cfg.idle_timeout_ms, &tv);
		evtimer_add(idle_ev, &tv);
	}
}

void
pilot_free(void)
{
	if (stop_ev != NULL)
		event_free(stop_ev);
	if (drain_ev != NULL)
		event_free(drain_ev);
	if (idle_ev != NULL)
		event_free(idle_ev);
	stop_ev = drain_ev = idle_ev = NULL;
}
