/*
 * pilot.c: a worker with an end.  A pilot worker runs inside a batch
 * system's allocation (a Slurm job, a PBS job) or for a while on a
 * borrowed machine, and must be gone before its time is up:
 *
 *   --idle-timeout D   exit when there has been nothing to do for D
 *   --time-limit D     the worker ends D after it started (under Slurm,
 *                      by default, when its allocation ends: squeue's
 *                      "time left" for $SLURM_JOB_ID, read at start).
 *                      It takes only jobs whose --timeout fits in the
 *                      time left (TAKE time=MS: the broker counts it
 *                      down from the TAKE), stops taking shortly before
 *                      its stop point, and there stops what still runs
 *                      and hands it back (RELEASE) so that it re-runs
 *                      elsewhere at once; then it exits.
 *
 * The stop point is the end less a reserve: the grace a stopped job gets
 * between SIGTERM and SIGKILL, and a second for the RELEASE to reach the
 * broker; at most half the limit.  A job whose timeout fits before the
 * end is taken even if it would run past the stop point: most jobs end
 * well within their timeout, and one that does not is handed back.
 */
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "simq-worker.h"

/* Below this much time left before the stop point nothing is taken any
 * more: the worker drains. */
#define PILOT_LAST_MS		2000
/* A job's report, or a RELEASE after a job's grace, gets this long to
 * reach the broker before the end. */
#define PILOT_REPORT_MS		1000
/* A job killed by a SIGTERM the worker did not send holds its report
 * this long, for the worker's own SIGTERM to come. */
#define PILOT_TERM_WAIT_MS	1000

static struct event	*stop_ev, *drain_ev, *idle_ev, *held_ev;
static uint64_t		 stop_at;	/* mono ms; 0: no time limit */
static uint64_t		 end_at;	/* mono ms: the worker's end */
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

/* squeue gets this long: it retries for a minute when it cannot reach
 * slurmctld or read its config, and the worker must not hang there. */
#define SQUEUE_TIMEOUT_MS	5000

/* Runs squeue -h -j JOBID -o %L; its first line into buf.  Returns its
 * wait status, or -1 (with why in buf) when it could not run or took too
 * long (then it is killed). */
static int
run_squeue(const char *jobid, char *buf, size_t len)
{
	struct pollfd	 pfd;
	uint64_t	 deadline = mono_ms() + SQUEUE_TIMEOUT_MS, now;
	size_t		 n = 0;
	ssize_t		 r;
	pid_t		 pid;
	int		 p[2], st, timedout = 0;

	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(buf, len, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		snprintf(buf, len, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		sigset_t	none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0 ||
		    dup2(W->devnull, 0) < 0)
			_exit(127);
		execlp("squeue", "squeue", "-h", "-j", jobid, "-o", "%L",
		    (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	for (;;) {
		now = mono_ms();
		if (now >= deadline) {
			timedout = 1;
			break;
		}
		if ((r = poll(&pfd, 1, (int)(deadline - now))) <= 0) {
			if (r == 0 || errno == EINTR)
				continue;
			break;
		}
		if ((r = read(p[0], buf + n, len - 1 - n)) <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			break;
		}
		if ((n += (size_t)r) == len - 1)
			break;
	}
	close(p[0]);
	if (timedout)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	buf[n] = '\0';
	if (timedout) {
		snprintf(buf, len, "no answer within %d s", SQUEUE_TIMEOUT_MS /
		    1000);
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && n == 0) {
		snprintf(buf, len, "cannot run squeue");
		return -1;
	}
	return st;
}

/* What is left of the Slurm job we run in, from squeue's "time left".
 * Returns 0 and ms, or -1 (logged). */
static int
slurm_left(const char *jobid, uint64_t *ms)
{
	char	 line[256], *nl;
	int	 st;

	if (strspn(jobid, "0123456789") != strlen(jobid) || strlen(jobid) > 20) {
		log_warn("SLURM_JOB_ID '%s' is not a job id; no time limit",
		    jobid);
		return -1;
	}
	st = run_squeue(jobid, line, sizeof line);
	if ((nl = strchr(line, '\n')) != NULL)
		*nl = '\0';
	if (st == 0 && pilot_parse_left(line, ms) == 0)
		return 0;
	if (st == 0 && (strcmp(line, "UNLIMITED") == 0 ||
	    strcmp(line, "NOT_SET") == 0))
		log_info("Slurm job %s has no time limit", jobid);
	else
		log_warn("squeue -h -j %s -o %%L: %s; no time limit (give "
		    "--time-limit)", jobid, line[0] != '\0' ? line :
		    "no answer");
	return -1;
}

static uint64_t
left_ms(uint64_t until)
{
	uint64_t	now = mono_ms();

	return until > now ? until - now : 0;
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
	end_at = mono_ms() + limit;
	stop_at = end_at - reserve;
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

/*
 * A batch system that ends an allocation signals every process of it
 * (Slurm with proctrack/cgroup or linuxproc): the jobs get SIGTERM too,
 * and one may die of it before the worker has heard its own.  Its report
 * then waits a moment: if the worker's SIGTERM comes, the job is handed
 * back like the others instead of failing by a signal it did not earn;
 * if not, the job was killed by someone else, and its end is reported as
 * it was.
 */
static void
held_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct wjob	*j;

	TAILQ_FOREACH(j, &W->jobs, entry)
		j->held_back = 0;
	conn_flush_reports();
	worker_poke();
}

void
pilot_job_ended(struct wjob *j)
{
	struct timeval	tv;

	if (!pilot_term_releases() || W->stopping >= 2 || j->term_sent ||
	    !WIFSIGNALED(j->msg.status) || WTERMSIG(j->msg.status) != SIGTERM)
		return;
	log_info("job %s attempt %u: killed by a SIGTERM from outside; "
	    "holding its report for %d ms in case the allocation is ending",
	    j->id, j->attempt, PILOT_TERM_WAIT_MS);
	j->held_back = 1;
	if (held_ev == NULL)
		held_ev = evtimer_new(W->base, held_cb, NULL);
	if (!evtimer_pending(held_ev, NULL)) {
		ms_to_tv(PILOT_TERM_WAIT_MS, &tv);
		evtimer_add(held_ev, &tv);
	}
}

void
pilot_stop(void)
{
	struct wjob	*j;

	if (stop_ev != NULL)
		evtimer_del(stop_ev);
	W->stopping = 2;
	TAILQ_FOREACH(j, &W->jobs, entry) {
		if (!j->held_back)
			continue;
		log_info("job %s attempt %u: it was the allocation ending; "
		    "handing it back", j->id, j->attempt);
		j->held_back = 0;
		j->report = REP_RELEASE;
	}
	job_stop_all();
	worker_poke();
}

int
pilot_draining(void)
{
	return stop_at != 0 && left_ms(stop_at) < PILOT_LAST_MS;
}

uint64_t
pilot_take_time(void)
{
	uint64_t	left;

	if (stop_at == 0)
		return 0;
	left = left_ms(end_at);
	return left > PILOT_REPORT_MS + 1 ? left - PILOT_REPORT_MS : 1;
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
	if (held_ev != NULL)
		event_free(held_ev);
	stop_ev = drain_ev = idle_ev = held_ev = NULL;
}
