/*
 * job.c: the jobs this worker holds, from the TAKE item that brings one
 * to the reply that acknowledges its report.
 *
 * A job is in the table from the moment the broker leases it to us until
 * the broker has answered our report on it, so everything the broker
 * believes we hold is here: HEARTBEAT lists the table, and after a
 * reconnect the reports not yet answered are simply sent again.  Running
 * is delegated to the slots' shepherd processes (shepherd.c); the worker
 * hands a job over, may ask for a signal, and hears back when it is over.
 * The one idea: the worker never waits for anything but its event loop,
 * and a slot is free the moment the job's processes are gone, not when
 * the broker has heard of it.
 */
#include <sys/resource.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "simq-worker.h"

static int	job_ended(struct wjob *);

static struct wjob *
job_by_attempt(const struct simq_id *id, uint32_t attempt)
{
	struct wjob	*j;

	TAILQ_FOREACH(j, &W->jobs, entry)
		if (j->sid.id == id->id && j->sid.index == id->index &&
		    j->attempt == attempt)
			return j;
	return NULL;
}

static void
job_free(struct wjob *j)
{
	int	i;

	TAILQ_REMOVE(&W->jobs, j, entry);
	W->njobs--;
	if (j->timer != NULL)
		event_free(j->timer);
	for (i = 0; i < j->argc; i++)
		free(j->argv[i]);
	free(j->argv);
	for (i = 0; i < j->nenv; i++)
		free(j->env[i]);
	free(j->env);
	for (i = 0; i < j->nfiles; i++)
		free(j->files[i]);
	free(j->files);
	for (i = 0; i < j->ncollect; i++)
		free(j->collect[i]);
	free(j->collect);
	free(j->jobdir);
	free(j->filewords);
	free(j->queue);
	free(j->name);
	free(j->cwd);
	free(j->output);
	free(j->outpath);
	free(j->errpath);
	free(j->respath);
	free(j->reason);
	free(j->tail[0]);
	free(j->tail[1]);
	free(j->outerr);
	free(j);
}

void
job_release_ref(struct wjob *j)
{
	if (j->state == WJ_ENDED && !j->inflight && j->report == REP_NONE)
		job_free(j);
}

/* Decodes a word into a new string; NULL if it is malformed or holds a
 * NUL byte (which no C string, path or argument can carry). */
static char *
word_str(struct proto_word *w)
{
	long	n;

	if ((n = proto_decode(w->p, w->len)) < 0 ||
	    memchr(w->p, '\0', (size_t)n) != NULL)
		return NULL;
	return xstrndup(w->p, (size_t)n);
}

/* Sets j up to report a failure that happened before it could run. */
static void
job_fail_now(struct wjob *j, char *reason)
{
	j->state = WJ_ENDED;
	j->report = REP_FAIL;
	free(j->reason);
	j->reason = reason;
	log_warn("job %s attempt %u: %s", j->id, j->attempt, reason);
}

/*
 * Paths.
 */

/* A relative path is relative to the job's working directory, which is
 * relative to the worker's.  Returns a new string, or NULL if too long. */
static char *
path_abs(const char *base, const char *path)
{
	char	*s;

	if (path[0] == '/')
		s = xstrdup(path);
	else
		s = xprintf("%s/%s", base, path);
	if (strlen(s) >= WPATH_MAX) {
		free(s);
		return NULL;
	}
	return s;
}

/* Expands an output= pattern: %A array (or job) id, %a task index (empty
 * for a plain job), %j the job's id as printed, %t the attempt, %x the
 * job's name, %q its queue, %% a percent sign.  Other %-sequences stay as
 * they are.  Returns a new string. */
static char *
expand_output(const struct wjob *j)
{
	char		 buf[WPATH_MAX], num[32];
	const char	*p, *add;
	size_t		 n = 0, alen;

	for (p = j->output; *p != '\0'; p++) {
		add = NULL;
		if (*p == '%' && p[1] != '\0') {
			switch (p[1]) {
			case 'A':
				snprintf(num, sizeof num, "%llu",
				    (unsigned long long)j->sid.id);
				add = num;
				break;
			case 'a':
				num[0] = '\0';
				if (j->sid.index != SIMQ_NOINDEX)
					snprintf(num, sizeof num, "%u",
					    j->sid.index);
				add = num;
				break;
			case 'j':
				add = j->id;
				break;
			case 't':
				snprintf(num, sizeof num, "%u", j->attempt);
				add = num;
				break;
			case 'x':
				add = j->name != NULL ? j->name : "";
				break;
			case 'q':
				add = j->queue;
				break;
			case '%':
				add = "%";
				break;
			}
		}
		if (add != NULL) {
			p++;
			alen = strlen(add);
		} else {
			add = p;
			alen = 1;
		}
		if (n + alen >= sizeof buf)
			return NULL;
		memcpy(buf + n, add, alen);
		n += alen;
	}
	buf[n] = '\0';
	return xstrdup(buf);
}

/* Where the job runs, and where stdout, stderr and the result file go,
 * all absolute (a shepherd's own directory changes from job to job).
 * Returns 0, or -1 with j set up to fail. */
static int
job_paths(struct wjob *j)
{
	char	*abs, *exp;
	size_t	 len;

	if (j->cwd != NULL && j->cwd[0] != '/') {
		if ((abs = path_abs(W->cfg.cwd, j->cwd)) == NULL) {
			job_fail_now(j, xprintf("cwd %s: path too long",
			    j->cwd));
			return -1;
		}
		free(j->cwd);
		j->cwd = abs;
	}
	if (j->output == NULL) {
		j->outpath = xprintf("%s/%s.%u.out", W->cfg.workdir, j->id,
		    j->attempt);
		j->errpath = xprintf("%s/%s.%u.err", W->cfg.workdir, j->id,
		    j->attempt);
	} else {
		if ((exp = expand_output(j)) == NULL || exp[0] == '\0' ||
		    (j->outpath = path_abs(j->cwd != NULL ? j->cwd :
		    W->cfg.cwd, exp)) == NULL) {
			free(exp);
			job_fail_now(j, xprintf("output %s: bad pattern or path "
			    "too long", j->output));
			return -1;
		}
		free(exp);
		/* stderr goes next to stdout: x.out makes x.err, anything
		 * else gets .err appended. */
		len = strlen(j->outpath);
		if (len > 4 && strcmp(j->outpath + len - 4, ".out") == 0)
			j->errpath = xprintf("%.*s.err", (int)(len - 4),
			    j->outpath);
		else
			j->errpath = xprintf("%s.err", j->outpath);
	}
	j->respath = xprintf("%s/%s.%u.result", W->cfg.workdir, j->id,
	    j->attempt);
	return 0;
}

/*
 * Starting, signalling, ending.
 */

static void
job_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct wjob	*j = arg;
	struct timeval	 tv;

	if (j->state != WJ_RUNNING)
		return;
	if (!j->term_sent) {
		/* The job's own timeout. */
		log_info("job %s attempt %u: timed out after %llu ms; "
		    "sending SIGTERM", j->id, j->attempt,
		    (unsigned long long)j->timeout_ms);
		j->timedout = 1;
		j->timedout_ms = now_ms();
		slot_signal(j, SIGTERM);
		j->term_sent = 1;
		ms_to_tv(W->cfg.grace_ms, &tv);
		evtimer_add(j->timer, &tv);
	} else if (!j->kill_sent) {
		log_info("job %s attempt %u: still running %llu ms after "
		    "SIGTERM; killing it", j->id, j->attempt,
		    (unsigned long long)W->cfg.grace_ms);
		slot_signal(j, SIGKILL);
		j->kill_sent = 1;
	}
}

/* SIGTERM to the job's group now, SIGKILL after the grace period. */
static void
job_terminate(struct wjob *j)
{
	struct timeval	tv;

	if (j->state != WJ_RUNNING || j->term_sent)
		return;
	slot_signal(j, SIGTERM);
	j->term_sent = 1;
	if (j->timer == NULL)
		j->timer = evtimer_new(W->base, job_timer_cb, j);
	ms_to_tv(W->cfg.grace_ms, &tv);
	evtimer_add(j->timer, &tv);
}

static void
job_spawn(struct wjob *j)
{
	struct timeval	tv;

	res_claim(j);
	if (slot_run(j) < 0) {
		res_release(j);
		if (errno == E2BIG) {
			job_fail_now(j, xstrdup("the job's command and "
			    "environment are too large"));
			return;
		}
		/* Not the job's fault: hand it back, and take no more for
		 * a moment. */
		log_warn("job %s attempt %u: cannot start a shepherd: %s; "
		    "handing it back", j->id, j->attempt, strerror(errno));
		j->state = WJ_ENDED;
		j->report = REP_RELEASE;
		worker_hold();
		return;
	}
	j->state = WJ_RUNNING;
	W->nrunning++;
	if (j->timeout_ms > 0) {
		j->timer = evtimer_new(W->base, job_timer_cb, j);
		ms_to_tv(j->timeout_ms, &tv);
		evtimer_add(j->timer, &tv);
	}
	log_verbose("job %s attempt %u: started: %s%s", j->id, j->attempt,
	    j->argv[0], j->argc > 1 ? " ..." : "");
}

int
job_take_item(struct proto_word *w, int n)
{
	struct proto_word	 k, v;
	struct wjob		*j;
	uint64_t		 u;
	int			 i, dd = -1, have_id = 0, have_att = 0, bad = 0;
	int			 have_entry = 0;
	char			*s;

	j = xcalloc(1, sizeof *j);
	j->state = WJ_ENDED;		/* until it runs */
	j->cpus = 1;
	/* Room for what res_claim adds, and SIMQ_ENTRY (EACHLINE). */
	j->env = xcalloc(SIMQ_ENV_MAX + WJOB_ENV_EXTRA, sizeof *j->env);
	for (i = 1; i < n; i++) {
		if (proto_word_is(&w[i], "--")) {
			dd = i;
			break;
		}
		if (proto_kv(&w[i], &k, &v) < 0)
			continue;	/* ignore what we do not know */
		if (proto_word_is(&k, "id")) {
			if (proto_parse_id(v.p, v.len, &j->sid) == 0)
				have_id = 1;
		} else if (proto_word_is(&k, "attempt")) {
			if (proto_parse_u64(v.p, v.len, UINT32_MAX, &u) == 0) {
				j->attempt = (uint32_t)u;
				have_att = 1;
			}
		} else if (proto_word_is(&k, "timeout")) {
			if (proto_parse_u64(v.p, v.len, SIMQ_MS_MAX, &u) < 0)
				bad = 1;
			else
				j->timeout_ms = u;
		} else if (proto_word_is(&k, "entry")) {
			/* An EACHLINE task's line, empty or not. */
			if ((s = word_str(&v)) == NULL || have_entry) {
				free(s);
				bad = 1;
				continue;
			}
			j->env[j->nenv++] = xprintf("SIMQ_ENTRY=%s", s);
			have_entry = 1;
			free(s);
		} else if (proto_word_is(&k, "cpus")) {
			if (proto_parse_u64(v.p, v.len, SIMQ_CPUS_MAX, &u) < 0 ||
			    u == 0)
				bad = 1;
			else
				j->cpus = (uint32_t)u;
		} else if (proto_word_is(&k, "gpus")) {
			if (proto_parse_u64(v.p, v.len, SIMQ_GPUS_MAX, &u) < 0)
				bad = 1;
			else
				j->gpus = (uint32_t)u;
		} else if (proto_word_is(&k, "mem")) {
			if (proto_parse_u64(v.p, v.len, SIMQ_MEM_MAX, &u) < 0)
				bad = 1;
			else
				j->mem = u;
		} else if (proto_word_is(&k, "file") ||
		    proto_word_is(&k, "collect")) {
			/* Files that travel with the job (files.c). */
			if ((s = word_str(&v)) == NULL) {
				bad = 1;
				continue;
			}
			if (proto_word_is(&k, "file")) {
				if (j->nfiles >= SIMQ_FILES_MAX) {
					free(s);
					bad = 1;
					continue;
				}
				j->files = xreallocarray(j->files,
				    (size_t)j->nfiles + 1, sizeof *j->files);
				j->files[j->nfiles++] = s;
			} else {
				if (j->ncollect >= SIMQ_COLLECT_MAX) {
					free(s);
					bad = 1;
					continue;
				}
				j->collect = xreallocarray(j->collect,
				    (size_t)j->ncollect + 1,
				    sizeof *j->collect);
				j->collect[j->ncollect++] = s;
			}
		} else if (proto_word_is(&k, "q") ||
		    proto_word_is(&k, "name") || proto_word_is(&k, "cwd") ||
		    proto_word_is(&k, "output") || proto_word_is(&k, "env")) {
			if ((s = word_str(&v)) == NULL) {
				bad = 1;
				continue;
			}
			if (proto_word_is(&k, "env")) {
				if (strchr(s, '=') == NULL || s[0] == '=' ||
				    j->nenv >= SIMQ_ENV_MAX + have_entry) {
					free(s);
					bad = 1;
				} else
					j->env[j->nenv++] = s;
				continue;
			}
			if (s[0] == '\0') {	/* empty: not given */
				free(s);
				continue;
			}
			if (proto_word_is(&k, "q")) {
				free(j->queue);
				j->queue = s;
			} else if (proto_word_is(&k, "name")) {
				free(j->name);
				j->name = s;
			} else if (proto_word_is(&k, "cwd")) {
				free(j->cwd);
				j->cwd = s;
			} else {
				free(j->output);
				j->output = s;
			}
		}
	}
	if (!have_id || !have_att) {
		log_warn("TAKE: a job item without a valid id and attempt; "
		    "ignored");
		TAILQ_INSERT_TAIL(&W->jobs, j, entry);
		W->njobs++;
		job_free(j);
		return -1;
	}
	proto_format_id(j->id, j->sid.id, j->sid.index);
	if (j->queue == NULL)
		j->queue = xstrdup("default");
	j->argv = xcalloc((size_t)(dd < 0 ? 1 : n - dd), sizeof *j->argv);
	if (dd >= 0) {
		for (i = dd + 1; i < n; i++) {
			if ((s = word_str(&w[i])) == NULL) {
				bad = 1;
				break;
			}
			j->argv[j->argc++] = s;
		}
	}
	TAILQ_INSERT_TAIL(&W->jobs, j, entry);
	W->njobs++;

	if (W->stopping) {
		/* Leased to us on our way out: hand it straight back. */
		j->state = WJ_ENDED;
		j->report = REP_RELEASE;
	} else if (bad || j->argc == 0)
		job_fail_now(j, xstrdup("bad job item: malformed option, "
		    "argument or empty command"));
	else if (!res_could(j))
		job_fail_now(j, xprintf("it asks for cpus=%u gpus=%u mem=%llu; "
		    "this worker has cpus=%u gpus=%u mem=%llu", j->cpus,
		    j->gpus, (unsigned long long)j->mem, W->cfg.slots,
		    W->cfg.ngpus, (unsigned long long)W->cfg.mem));
	else if (job_paths(j) == 0) {
		if (W->nrunning < W->cfg.slots && res_fits(j, 1))
			job_spawn(j);
		else {
			j->state = WJ_HELD;	/* leased ahead */
			W->nheld++;
		}
	}
	if (j->state == WJ_ENDED)
		conn_flush_reports();
	return 0;
}

void
job_drop_item(struct proto_word *w, int n)
{
	struct proto_word	 k, v;
	struct simq_id		 id;
	struct wjob		*j;
	uint64_t		 att = 0;
	char			 reason[64] = "unknown";
	int			 i, have_id = 0;

	for (i = 1; i < n; i++) {
		if (proto_kv(&w[i], &k, &v) < 0)
			continue;
		if (proto_word_is(&k, "id"))
			have_id = proto_parse_id(v.p, v.len, &id) == 0;
		else if (proto_word_is(&k, "attempt"))
			(void)proto_parse_u64(v.p, v.len, UINT32_MAX, &att);
		else if (proto_word_is(&k, "reason"))
			snprintf(reason, sizeof reason, "%.*s",
			    (int)(v.len < 60 ? v.len : 60), v.p);
	}
	if (!have_id || (j = job_by_attempt(&id, (uint32_t)att)) == NULL ||
	    j->dropped)
		return;
	log_info("job %s attempt %u: the broker says stop (%s); %s", j->id,
	    j->attempt, reason, j->state == WJ_RUNNING ?
	    "terminating it, its result will be discarded" :
	    "discarding its result");
	j->dropped = 1;
	if (j->state == WJ_RUNNING) {
		job_terminate(j);
		return;
	}
	if (j->state == WJ_HELD) {
		W->nheld--;
		j->state = WJ_ENDED;
	}
	j->report = REP_NONE;
	job_release_ref(j);
}

/*
 * Strays: what is left of a job whose shepherd died.  Its processes were
 * re-parented to us (we are a subreaper); kill our children that are not
 * shepherds, again each time some were found, since their own children
 * come to us as they die.
 */
static struct event	*stray_ev;

static int
keep_shepherds(pid_t pid)
{
	return slot_is_shepherd(pid);
}

static void
strays_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval	tv = { 0, 50000 };

	if (util_kill_children(W->pid, keep_shepherds) > 0)
		evtimer_add(stray_ev, &tv);
}

static void
strays_sweep(void)
{
	if (stray_ev == NULL)
		stray_ev = evtimer_new(W->base, strays_cb, NULL);
	strays_cb(-1, 0, NULL);
}

void
job_reap(void)
{
	int	st;
	pid_t	pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0 ||
	    (pid < 0 && errno == EINTR)) {
		if (pid > 0)
			(void)slot_reaped(pid, st);	/* else a stray */
	}
}

static const char *
stage_name(int stage)
{
	switch (stage) {
	case STAGE_CWD:		return "cwd";
	case STAGE_OUTPUT:	return "output";
	case STAGE_FORK:	return "fork";
	case STAGE_EXEC:	return "exec";
	case STAGE_FILES:	return "files";
	}
	return "start";
}

/* The job's processes are gone: its slot is free. */
static int
job_ended(struct wjob *j)
{
	res_release(j);
	W->nrunning--;
	W->slot_freed = 1;
	j->state = WJ_ENDED;
	W->burst_empty = 0;	/* its end may have made others ready */
	if (j->timer != NULL)
		evtimer_del(j->timer);
	if (j->dropped) {
		log_verbose("job %s attempt %u: ended; result discarded",
		    j->id, j->attempt);
		j->report = REP_NONE;
		job_release_ref(j);
		return 1;
	}
	if (j->releasing) {
		log_verbose("job %s attempt %u: stopped; handing it back",
		    j->id, j->attempt);
		j->report = REP_RELEASE;
		return 1;
	}
	return 0;
}

/* What the worker tells the broker about its output files: the last
 * failure (s, taken over), or NULL once a job's output was written in
 * full.  Sent at once when it changes, then with every heartbeat. */
static void
job_note_outerr(char *s)
{
	if ((s == NULL && W->outerr == NULL) || (s != NULL &&
	    W->outerr != NULL && strcmp(s, W->outerr) == 0)) {
		free(s);
		return;
	}
	if (s == NULL)
		log_info("job output is written again");
	free(W->outerr);
	W->outerr = s;
	W->outerr_told = 0;
	conn_heartbeat(0);
}

/* The streams whose files could not be written: their tails, kept by
 * the shepherd, go in the report instead of the files' ends. */
static void
job_output_lost(struct wjob *j, const struct shep_msg *m, const char *tails)
{
	const char	*path;
	size_t		 off = 0;
	int		 i, first = -1;

	for (i = 0; i < 2; i++) {
		if (m->outerr[i] == 0)
			continue;
		if (first < 0)
			first = i;
		j->tail[i] = xmalloc(m->tail[i] + 1);
		memcpy(j->tail[i], tails + off, m->tail[i]);
		off += m->tail[i];
	}
	if (first < 0) {
		if (m->outsize > 0 || m->errsize > 0)
			job_note_outerr(NULL);
		return;
	}
	path = first == 0 ? j->outpath : j->errpath;
	j->outerr = xprintf("output %s: %s", path, strerror(m->outerr[first]));
	log_warn("job %s attempt %u: %s; the job went on, its output "
	    "there is incomplete, and the report carries its tail", j->id,
	    j->attempt, j->outerr);
	job_note_outerr(xstrdup(j->outerr));
}

/* A slot is free: the oldest job leased ahead starts there.  Returns 1
 * if one did. */
static int
job_run_held(void)
{
	struct wjob	*j;
	int		 n = 0;

	TAILQ_FOREACH(j, &W->jobs, entry) {
		if (W->nrunning >= W->cfg.slots)
			break;
		if (j->state != WJ_HELD)
			continue;
		/* In order: a large job held is not passed by smaller ones
		 * held after it. */
		if (!res_fits(j, 0))
			break;
		W->nheld--;
		j->state = WJ_ENDED;
		job_spawn(j);
		n++;
	}
	return n > 0;
}

/*
 * Reports and the TAKE behind them, after a job ended.  When a job leased
 * ahead took the slot at once, nothing waits for them but the broker's
 * record: they go at most REPORT_GROUP_MS later, with those of the jobs
 * ending meanwhile, so that one pass and one fsync at the broker cover
 * several (short jobs otherwise cost the broker an fsync each).
 */
static struct event	*group_ev;

/* The TAKE first, naming the leases the reports end (conn.c,
 * take_ending): its reply need not wait for their commit. */
static void
take_then_report(void)
{
	W->reports_next = 1;
	worker_poke();
	W->reports_next = 0;
	conn_flush_reports();
}

static void
group_cb(evutil_socket_t fd, short ev, void *arg)
{
	take_then_report();
}

static void
job_after_end(int started_held)
{
	struct timeval	tv;

	if (!started_held) {
		if (group_ev != NULL)
			evtimer_del(group_ev);
		take_then_report();
		return;
	}
	if (group_ev == NULL)
		group_ev = evtimer_new(W->base, group_cb, NULL);
	if (!evtimer_pending(group_ev, NULL)) {
		ms_to_tv(REPORT_GROUP_MS, &tv);
		evtimer_add(group_ev, &tv);
	}
}

void
job_release_held(void)
{
	struct wjob	*j;

	TAILQ_FOREACH(j, &W->jobs, entry) {
		if (j->state != WJ_HELD)
			continue;
		W->nheld--;
		j->state = WJ_ENDED;
		j->report = REP_RELEASE;
	}
	conn_flush_reports();
}

void
job_finished(struct wjob *j, const struct shep_msg *m, const char *tails)
{
	const char	*what, *text;

	j->msg = *m;
	W->short_jobs = m->end_ms >= m->start_ms &&
	    m->end_ms - m->start_ms < AHEAD_SHORT_MS;
	if (job_ended(j))
		goto out;
	if (m->kind == SHEP_LOST) {
		/* Its warm runner died with its end: not the job's doing. */
		log_warn("job %s attempt %u: its runner died with its exit "
		    "status; handing the job back as lost", j->id, j->attempt);
		j->report = REP_LOST;
		goto out;
	}
	text = tails + m->tail[0] + m->tail[1];
	if (m->kind == SHEP_FAILED && m->stage == STAGE_FILES) {
		job_fail_now(j, xprintf("files: %.*s", (int)m->textlen, text));
		goto out;
	}
	if (m->kind == SHEP_DONE && m->textlen > 0)
		j->filewords = xstrndup(text, m->textlen);
	if (m->kind == SHEP_FAILED) {
		what = m->stage == STAGE_CWD ? (j->cwd ? j->cwd : W->cfg.cwd) :
		    m->stage == STAGE_OUTPUT ? (m->failpath ? j->errpath :
		    j->outpath) : m->stage == STAGE_EXEC ? j->argv[0] : NULL;
		job_fail_now(j, what != NULL ? xprintf("%s %s: %s",
		    stage_name(m->stage), what, strerror(m->err)) :
		    xprintf("%s: %s", stage_name(m->stage), strerror(m->err)));
		goto out;
	}
	if (m->killed > 0)
		log_info("job %s attempt %u: killed %u process%s left behind",
		    j->id, j->attempt, m->killed, m->killed == 1 ? "" : "es");
	job_output_lost(j, m, tails);
	/* The timeout covers the command: one that fired after the command
	 * ended (during the collect, which runs on: shepherd.c, transfer)
	 * stopped nothing. */
	if (j->timedout && m->end_ms < j->timedout_ms) {
		log_info("job %s attempt %u: ended in time; its timeout passed "
		    "during the collect", j->id, j->attempt);
		j->timedout = 0;
	}
	if (WIFSIGNALED(m->status) && j->mem && slot_oom(j)) {
		j->oom = 1;
		log_warn("job %s attempt %u: killed for going past its "
		    "mem=%llu (its cgroup's memory.max)", j->id, j->attempt,
		    (unsigned long long)j->mem);
	}
	if (WIFSIGNALED(m->status))
		log_verbose("job %s attempt %u: killed by signal %d%s", j->id,
		    j->attempt, WTERMSIG(m->status), j->timedout ?
		    " (timed out)" : "");
	else
		log_verbose("job %s attempt %u: exit %d%s", j->id, j->attempt,
		    WEXITSTATUS(m->status), j->timedout ? " (timed out)" : "");
	j->report = REP_FINISH;
	pilot_job_ended(j);
out:
	job_after_end(job_run_held());
}

/*
 * A shepherd that dies before it reports was killed from outside (an
 * operator's kill, the OOM killer) or failed itself: nothing the job did
 * (the job runs in a session of its own and cannot signal it by accident).
 * So the attempt is handed back as lost, like the attempts of a worker
 * that dies, and the broker re-queues it within its --max-lost.
 */
void
job_shepherd_died(struct wjob *j, int status)
{
	/* Its job's processes came to us: finish its work. */
	strays_sweep();
	if (job_ended(j))
		goto out;
	if (WIFSIGNALED(status))
		log_warn("job %s attempt %u: its shepherd process was killed by "
		    "signal %d; handing the job back as lost", j->id,
		    j->attempt, WTERMSIG(status));
	else
		log_warn("job %s attempt %u: its shepherd process exited with "
		    "status %d; handing the job back as lost", j->id,
		    j->attempt, WEXITSTATUS(status));
	j->report = REP_LOST;
out:
	job_after_end(job_run_held());
}

void
job_report_answered(struct wjob *j, const char *reply, size_t len)
{
	int	n = (int)(len > 200 ? 200 : len);

	j->inflight = 0;
	if (reply == NULL) {
		/* Lost with the connection: it goes again after the
		 * reconnect, unless the job was dropped meanwhile. */
		job_release_ref(j);
		return;
	}
	if (len >= 2 && memcmp(reply, "OK", 2) == 0) {
		log_verbose("job %s attempt %u: reported; broker says %.*s",
		    j->id, j->attempt, n, reply);
		j->report = REP_NONE;
	} else if (len > 11 && memcmp(reply, "ERR server ", 11) == 0) {
		/* Not acknowledged: the broker exits and recovers; the
		 * report goes again after the reconnect. */
		log_warn("job %s attempt %u: the broker could not record the "
		    "report (%.*s); will send it again", j->id, j->attempt,
		    n, reply);
		return;
	} else {
		/* ERR stale (the attempt went to someone else), not-found
		 * (forgotten), or a refusal: nothing to retry. */
		log_info("job %s attempt %u: the broker refused the result "
		    "(%.*s); dropped", j->id, j->attempt, n, reply);
		j->report = REP_NONE;
	}
	job_release_ref(j);
}

void
job_stop_all(void)
{
	struct wjob	*j;

	TAILQ_FOREACH(j, &W->jobs, entry) {
		if (j->state != WJ_RUNNING || j->dropped)
			continue;
		j->releasing = 1;
		job_terminate(j);
	}
	job_release_held();
}

/* At exit: forgets every job. */
void
job_free_all(void)
{
	struct wjob	*j;

	while ((j = TAILQ_FIRST(&W->jobs)) != NULL)
		job_free(j);
	if (group_ev != NULL)
		event_free(group_ev);
	group_ev = NULL;
	if (stray_ev != NULL)
		event_free(stray_ev);
	stray_ev = NULL;
}
