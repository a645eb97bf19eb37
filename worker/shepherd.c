/*
 * shepherd.c: the process that watches over one job.
 *
 * The worker forks one shepherd per job.  The shepherd makes sure that no
 * process of the job outlives the job, whatever happens:
 *
 *   - It asks the kernel for a signal when the worker dies
 *     (PR_SET_PDEATHSIG), so a worker killed with -9 or by the OOM killer
 *     still takes its jobs with it: a job the broker will give to another
 *     node must not go on running here.
 *   - It is a child subreaper (PR_SET_CHILD_SUBREAPER): any process of the
 *     job whose parent dies is re-parented to the shepherd, not to init,
 *     even one that left the job's process group or session (a daemon's
 *     double fork).  So "every process of the job" is "every descendant of
 *     the shepherd", and the shepherd can always find and kill them.
 *   - It runs the job in a new session (so a new process group) and, when
 *     the job's process ends, is timed out, canceled, or the worker dies,
 *     it SIGKILLs the group, then every descendant left, and reaps them
 *     all before it reports.
 *   - It is in a session of its own, so a ^C or a kill of the worker's
 *     process group does not reach it before it can clean up.
 *
 * All signals stay blocked (fork() happened with them blocked) and the
 * shepherd takes them synchronously with sigwaitinfo(): no handler, no
 * race.  The worker talks to it by signal: SIGTERM means "pass SIGTERM
 * to the job's group" (a timeout, a cancel, a stop), SIGUSR1 means "kill
 * everything now" (the grace period is over); SIGHUP is the death signal.
 *
 * The job itself is started with vfork(): the shepherd is a copy of the
 * worker, and vfork costs the same whatever its size.  Because a vfork
 * child shares our memory, it leaves its errno and failed step in the
 * spawn record: that is how an exec failure is learned, with no pipe.
 *
 * The shepherd tells the worker what happened in fixed-size records on the
 * shared report pipe (SHEP_STARTED, then SHEP_DONE or SHEP_FAILED) and
 * exits.  It measures everything the worker needs: start and end times,
 * CPU time and peak memory of every process it reaped (getrusage
 * RUSAGE_CHILDREN), and the sizes of the output files.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "simq-worker.h"

extern char	**environ;

/* Shared with the vfork child: what it needs, and what went wrong. */
struct spawn {
	char		**argv;
	int		  outfd, errfd, infd;
	uint64_t	  mem_limit;
	uint64_t	  nofile_soft;
	sigset_t	  empty;
	volatile int	  err;		/* errno of the failed step */
	volatile int	  stage;
};

/* How long to wait for a child to die before looking for leftovers that
 * escaped the job's process group. */
#define REAP_WAIT_MS	50

static int	repfd = -1;

static void
send_msg(struct shep_msg *m)
{
	ssize_t	n;

	m->shepherd = (int32_t)getpid();
	do
		n = write(repfd, m, sizeof *m);
	while (n < 0 && errno == EINTR);
	/* A short or failed write means the worker is gone: nobody to
	 * tell. */
}

/*
 * The vfork child: only async-signal-safe calls, and nothing written to
 * memory but sp->err and sp->stage.
 */
static void __attribute__((noreturn))
spawn_child(struct spawn *sp)
{
	struct rlimit	rl;

	if (setsid() < 0 ||
	    dup2(sp->infd, 0) < 0 || dup2(sp->outfd, 1) < 0 ||
	    dup2(sp->errfd, 2) < 0)
		goto fail;
	if (sp->mem_limit) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)sp->mem_limit;
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			goto fail;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != (rlim_t)sp->nofile_soft) {
		rl.rlim_cur = (rlim_t)sp->nofile_soft;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigprocmask(SIG_SETMASK, &sp->empty, NULL);
	execvpe(sp->argv[0], sp->argv, environ);
	sp->err = errno;
	sp->stage = STAGE_EXEC;
	_exit(127);
fail:
	sp->err = errno;
	sp->stage = STAGE_FORK;
	_exit(127);
}

static pid_t
spawn_job(struct spawn *sp)
{
	pid_t	pid;

	if ((pid = vfork()) == 0)
		spawn_child(sp);
	return pid;
}

/* Is name=... (up to '=') in env[0..n)? */
static int
env_has(char **env, int n, const char *kv)
{
	size_t	klen = strcspn(kv, "=");
	int	i;

	for (i = 0; i < n; i++)
		if (strncmp(env[i], kv, klen) == 0 && env[i][klen] == '=')
			return 1;
	return 0;
}

static void
env_add(char **env, int *n, char *kv)
{
	if (!env_has(env, *n, kv))
		env[(*n)++] = kv;
}

/*
 * The job's environment: the variables simq sets win over the job's own
 * additions, which win over SIMQ_SERVER, which wins over the worker's
 * environment.
 */
static char **
build_env(struct wjob *j)
{
	char	**env, **e;
	int	  n = 0, nbase = 0, i;

	for (e = W->environ; *e != NULL; e++)
		nbase++;
	env = xcalloc((size_t)(nbase + j->nenv + 16), sizeof *env);
	env_add(env, &n, xprintf("SIMQ_JOB_ID=%s", j->id));
	env_add(env, &n, xprintf("SIMQ_QUEUE=%s", j->queue));
	env_add(env, &n, xprintf("SIMQ_ATTEMPT=%u", j->attempt));
	env_add(env, &n, xprintf("SIMQ_RESULT=%s", j->respath));
	env_add(env, &n, xprintf("SIMQ_WORKER=%s", W->cfg.name));
	if (j->sid.index != SIMQ_NOINDEX) {
		env_add(env, &n, xprintf("SIMQ_ARRAY_ID=%llu",
		    (unsigned long long)j->sid.id));
		env_add(env, &n, xprintf("SIMQ_ARRAY_INDEX=%u", j->sid.index));
	}
	if (j->name != NULL)
		env_add(env, &n, xprintf("SIMQ_JOB_NAME=%s", j->name));
	for (i = 0; i < j->nenv; i++)
		env_add(env, &n, j->env[i]);
	env_add(env, &n, xprintf("SIMQ_SERVER=%s", W->cfg.server));
	for (e = W->environ; *e != NULL; e++)
		env_add(env, &n, *e);
	env[n] = NULL;
	return env;
}

/* mkdir -p of path's parent directories.  Errors show up at open(). */
static void
make_parents(const char *path)
{
	char	buf[WPATH_MAX], *p;

	if (strlen(path) >= sizeof buf)
		return;
	strcpy(buf, path);
	for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(buf, 0777) < 0 && errno != EEXIST)
			return;
		*p = '/';
	}
}

static int
open_out(const char *path, int mkparents)
{
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY,
	    0666);
	if (fd < 0 && errno == ENOENT && mkparents) {
		make_parents(path);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		    O_NOCTTY, 0666);
	}
	return fd;
}

static void __attribute__((noreturn))
fail(int stage, int err, int which)
{
	struct shep_msg	m;

	memset(&m, 0, sizeof m);
	m.kind = SHEP_FAILED;
	m.stage = stage;
	m.err = err;
	m.failpath = which;
	send_msg(&m);
	_exit(0);
}

/* SIGKILLs every child of ours that /proc knows (the processes that
 * escaped the job's group and were re-parented to us).  Returns how many.
 * Without /proc/PID/task/TID/children on every kernel, this reads each
 * process's stat; it only runs when something outlived the group kill. */
static unsigned
kill_children(void)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[64], buf[512], *p;
	pid_t		 me = getpid(), pid;
	unsigned	 n = 0;
	int		 fd;
	ssize_t		 r;
	long		 ppid;

	if ((d = opendir("/proc")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = (pid_t)atol(de->d_name);
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		/* "pid (comm) state ppid ...": comm may hold anything. */
		if ((p = strrchr(buf, ')')) == NULL || p[1] == '\0')
			continue;
		if (sscanf(p + 2, "%*c %ld", &ppid) != 1 || ppid != me)
			continue;
		if (kill(pid, SIGKILL) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Kills the job's group and everything else below us, and reaps it all.
 * Returns the number of processes found alive besides the group. */
static unsigned
reap_all(pid_t pgid)
{
	struct timespec	ts;
	sigset_t	chld;
	unsigned	killed = 0;
	int		idle = 0, st;
	pid_t		r;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	ts.tv_sec = 0;
	ts.tv_nsec = REAP_WAIT_MS * 1000000L;
	kill(-pgid, SIGKILL);
	for (;;) {
		r = waitpid(-1, &st, WNOHANG);
		if (r > 0) {
			idle = 0;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;		/* ECHILD: nothing left */
		/* Someone is alive: the group is still dying, or a process
		 * left the group.  Wait a little, then look for them. */
		kill(-pgid, SIGKILL);
		if (idle++ > 0)
			killed += kill_children();
		(void)sigtimedwait(&chld, NULL, &ts);
	}
	return killed;
}

static int64_t
fd_size(int fd)
{
	struct stat	sb;

	return fstat(fd, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static int64_t
path_size(const char *path)
{
	struct stat	sb;

	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ?
	    (int64_t)sb.st_size : -1;
}

void
shepherd_main(struct wjob *j)
{
	struct shep_msg	 m;
	struct spawn	 sp;
	struct rusage	 ru;
	struct sigaction sa;
	sigset_t	 set;
	siginfo_t	 si;
	pid_t		 pid, r;
	int		 sig, st, have_status = 0, status = 0, lo, hi;
	uint64_t	 end = 0;

	/* Handlers inherited from the worker's event loop must never run
	 * here, and the job must start with default dispositions (SIGPIPE
	 * above all). */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);

	if (prctl(PR_SET_PDEATHSIG, SIGHUP) < 0 || getppid() != W->pid)
		_exit(1);	/* the worker is already gone */
	(void)setsid();
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);

	/* Keep only the report pipe and /dev/null. */
	lo = W->rep_wr < W->devnull ? W->rep_wr : W->devnull;
	hi = W->rep_wr < W->devnull ? W->devnull : W->rep_wr;
	if (lo > 3)
		close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0U, 0);
	repfd = W->rep_wr;

	memset(&sp, 0, sizeof sp);
	sp.argv = j->argv;
	sp.infd = W->devnull;
	sp.mem_limit = W->cfg.mem_limit;
	sp.nofile_soft = W->nofile_soft;
	sigemptyset(&sp.empty);

	if (j->cwd != NULL && chdir(j->cwd) < 0)
		fail(STAGE_CWD, errno, 0);
	if ((sp.outfd = open_out(j->outpath, j->output != NULL)) < 0)
		fail(STAGE_OUTPUT, errno, 0);
	if ((sp.errfd = open_out(j->errpath, j->output != NULL)) < 0)
		fail(STAGE_OUTPUT, errno, 1);
	(void)unlink(j->respath);
	environ = build_env(j);

	memset(&m, 0, sizeof m);
	m.start_ms = now_ms();
	if ((pid = spawn_job(&sp)) < 0)
		fail(STAGE_FORK, errno, 0);
	if (sp.stage != STAGE_NONE) {
		(void)waitpid(pid, &st, 0);
		fail(sp.stage, sp.err, 0);
	}
	m.kind = SHEP_STARTED;
	m.jobpid = (int32_t)pid;
	send_msg(&m);

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	while (!have_status) {
		if ((sig = sigwaitinfo(&set, &si)) < 0)
			continue;
		switch (sig) {
		case SIGTERM:
			kill(-pid, SIGTERM);
			break;
		case SIGUSR1:
		case SIGHUP:
			kill(-pid, SIGKILL);
			break;
		case SIGCHLD:
			while ((r = waitpid(-1, &st, WNOHANG)) > 0 ||
			    (r < 0 && errno == EINTR)) {
				if (r == pid) {
					status = st;
					have_status = 1;
					end = now_ms();
				}
			}
			break;
		}
	}

	/* The job's process is gone: so must everything it started. */
	m.killed = reap_all(pid);
	m.kind = SHEP_DONE;
	m.status = status;
	m.end_ms = end;
	if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
		m.utime_us = (uint64_t)ru.ru_utime.tv_sec * 1000000 +
		    (uint64_t)ru.ru_utime.tv_usec;
		m.stime_us = (uint64_t)ru.ru_stime.tv_sec * 1000000 +
		    (uint64_t)ru.ru_stime.tv_usec;
		m.maxrss_kib = (uint64_t)ru.ru_maxrss;
	}
	m.outsize = fd_size(sp.outfd);
	m.errsize = fd_size(sp.errfd);
	m.ressize = path_size(j->respath);
	send_msg(&m);
	_exit(0);
}
