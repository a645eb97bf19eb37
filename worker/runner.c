/*
 * runner.c: warm runners, in the shepherd process.
 *
 * A job whose environment holds SIMQ_RUNNER=N (the Python executor sets
 * it) may run through a warm runner: a long-lived interpreter, started
 * from the first N words of the job's command, that forks a fresh process
 * per task.  The interpreter's start and its imports are paid once per
 * slot, yet each task is a process of its own, in a session of its own,
 * with its own output, limits, rusage and clean-up, exactly like a
 * command job: the shepherd still owns the task's fate (simq-runner(7)
 * and proto/PROTOCOL.md, "Warm runners", are the contract).
 *
 * Each shepherd keeps at most one runner, for the last key it served (the
 * N words, the working directory, the job's own environment additions);
 * a task with another key replaces it.  The runner is a child of the
 * shepherd in a session of its own; it dies with the shepherd
 * (PR_SET_PDEATHSIG) and exits when its socket closes.
 *
 * Shepherd and runner talk over a SOCK_SEQPACKET socket pair, at fd 3 of
 * the runner:
 *
 *   run      one datagram per task: "run", cwd, address-space limit,
 *            RLIMIT_NOFILE soft limit, argc, the argv, the K=V environment
 *            (each string NUL-terminated), with the task's stdin, stdout
 *            and stderr attached (SCM_RIGHTS);
 *   pid P    from the runner, as soon as it forked the task;
 *   exit S U T M   when it reaped it: wait status, user and system CPU
 *            (microseconds), peak RSS (KiB), from wait4();
 *   error E TEXT   it could not fork: the task runs as a command.
 *
 * What can go wrong, and what the task is told:
 *   - The runner cannot be started (exec fails), or dies before it said
 *     "pid" (its own imports crashed, it was killed): the task runs as a
 *     plain command, which meets the same trouble itself if the trouble
 *     was the task's (an import that crashes), and is told as usual.  A
 *     key whose runner died that way gets no runner again here.
 *   - The task is to be signalled (timeout, cancel, a dying worker)
 *     before its pid is known: the runner is killed and the task reported
 *     killed by that signal; the next task gets a new runner.
 *   - The runner dies while the task runs: the task was re-parented to
 *     the shepherd (a subreaper), which reaps it itself; a task whose end
 *     the runner took with it is handed back as lost.
 *   - The runner says something it should not, or closes its socket: it
 *     is killed, and the above applies.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simq-worker.h"

/* The runner's socket in the runner. */
#define RUNNER_FD		3

/* The largest message from a runner: "exit" and four numbers. */
#define RUNNER_MSG_MAX		256

/* Variables of one attempt, which a runner, serving many, does not get
 * at its start (each task gets its own). */
static const char *const per_task[] = {
	"SIMQ_JOB_ID=", "SIMQ_ATTEMPT=", "SIMQ_RESULT=", "SIMQ_ARRAY_ID=",
	"SIMQ_ARRAY_INDEX=", "SIMQ_JOB_NAME=", "SIMQ_QUEUE=", "SIMQ_WORKDIR=",
	NULL
};

static pid_t	 rpid;			/* the runner, 0: none */
static int	 rfd = -1;		/* our end of its socket */
static int	 rgone;			/* reaped while busy */
static char	*rkey;			/* what it was started for */
static size_t	 rkeylen;
static char	*badkey;		/* its runner died before a task */
static size_t	 badkeylen;

/* The task sent to it, until its end is known. */
static int	 busy;
static int	 started;		/* it said "pid" */
static pid_t	 tpid;
static int	 killsig;		/* signalled before its pid came */

/* N of SIMQ_RUNNER=N among the job's own variables, 0: none. */
static int
runner_words(const struct wjob *j)
{
	const char	*v;
	char		*end;
	long		 n;
	int		 i;

	for (i = 0; i < j->nenv; i++) {
		if (strncmp(j->env[i], "SIMQ_RUNNER=", 12) != 0)
			continue;
		v = j->env[i] + 12;
		n = strtol(v, &end, 10);
		if (end == v || *end != '\0' || n < 1 || n > j->argc)
			return 0;
		return (int)n;
	}
	return 0;
}

/* The key: the runner's words, the directory (a job with files runs in
 * a fresh one of its own: those all count as one), the job's variables. */
static char *
make_key(const struct wjob *j, int n, size_t *len)
{
	const char	*cwd = j->jobdir != NULL ? "\1jobdir" : j->cwd;
	size_t		 total = 0, off = 0, l;
	char		*k;
	int		 i;

	for (i = 0; i < n; i++)
		total += strlen(j->argv[i]) + 1;
	total += strlen(cwd) + 2;
	for (i = 0; i < j->nenv; i++)
		total += strlen(j->env[i]) + 1;
	k = xmalloc(total);
#define PUT(s) do { l = strlen(s) + 1; memcpy(k + off, (s), l); off += l; \
	} while (0)
	for (i = 0; i < n; i++)
		PUT(j->argv[i]);
	PUT("");
	PUT(cwd);
	for (i = 0; i < j->nenv; i++)
		PUT(j->env[i]);
#undef PUT
	*len = off;
	return k;
}

static int
is_per_task(const char *kv)
{
	int	i;

	for (i = 0; per_task[i] != NULL; i++)
		if (strncmp(kv, per_task[i], strlen(per_task[i])) == 0)
			return 1;
	return 0;
}

/* Ends the runner: closes its socket and, unless it is already reaped,
 * kills it.  Its pid is reaped where every child is (runner_reaped). */
static void
runner_drop(void)
{
	if (rfd >= 0)
		close(rfd);
	rfd = -1;
	if (rpid > 0 && !rgone)
		kill(rpid, SIGKILL);
}

/* Kills and reaps an idle runner whose key is not the next task's. */
static void
runner_retire(void)
{
	int	st;

	runner_drop();
	if (rpid > 0 && !rgone)
		while (waitpid(rpid, &st, 0) < 0 && errno == EINTR)
			;
	rpid = 0;
	rgone = 0;
	free(rkey);
	rkey = NULL;
}

/* Starts a runner for j: the first n words of its command, in its
 * directory (ours now), with env less the per-task variables.  Returns 0,
 * or -1 if it could not be started. */
static int
runner_start(const struct wjob *j, int n, char **env, int devnull)
{
	sigset_t		 empty;
	char			**argv, **renv;
	volatile int		 err = 0;
	int			 sv[2], size = SHEP_MSG_MAX * 2, i, m = 0;
	pid_t			 pid;

	for (i = 0; env[i] != NULL; i++)
		;
	renv = xcalloc((size_t)i + 2, sizeof *renv);
	for (i = 0; env[i] != NULL; i++)
		if (!is_per_task(env[i]) &&
		    strncmp(env[i], "SIMQ_RUNNER_FD=", 15) != 0)
			renv[m++] = env[i];
	renv[m++] = "SIMQ_RUNNER_FD=3";
	argv = xcalloc((size_t)n + 1, sizeof *argv);
	for (i = 0; i < n; i++)
		argv[i] = j->argv[i];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(renv);
		free(argv);
		return -1;
	}
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	sigemptyset(&empty);
	if ((pid = vfork()) == 0) {
		/* Only async-signal-safe calls here. */
		if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
		    dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
		    (sv[1] == RUNNER_FD ? fcntl(RUNNER_FD, F_SETFD, 0) :
		    dup2(sv[1], RUNNER_FD)) < 0) {
			err = errno;
			_exit(127);
		}
		sigprocmask(SIG_SETMASK, &empty, NULL);
		execvpe(argv[0], argv, renv);
		err = errno;
		_exit(127);
	}
	close(sv[1]);
	free(renv);
	free(argv);
	if (pid < 0 || err != 0) {
		if (pid > 0)
			(void)waitpid(pid, NULL, 0);
		close(sv[0]);
		return -1;
	}
	rpid = pid;
	rfd = sv[0];
	rgone = 0;
	return 0;
}

/* Appends s and its NUL to buf[0..SHEP_MSG_MAX). */
static int
put(char *buf, size_t *len, const char *s)
{
	size_t	l = strlen(s) + 1;

	if (*len + l > SHEP_MSG_MAX)
		return -1;
	memcpy(buf + *len, s, l);
	*len += l;
	return 0;
}

int
runner_send(const struct wjob *j, char **env, int in, int out, int errfd,
    int devnull)
{
	static char	 buf[SHEP_MSG_MAX];
	union {
		struct cmsghdr	h;
		char		b[CMSG_SPACE(3 * sizeof(int))];
	}		 cm;
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*c;
	char		*key, num[3][32];
	size_t		 keylen, len = 0;
	int		 n, i, fds[3] = { in, out, errfd };

	if ((n = runner_words(j)) == 0)
		return -1;
	key = make_key(j, n, &keylen);
	if (badkey != NULL && keylen == badkeylen &&
	    memcmp(key, badkey, keylen) == 0) {
		free(key);
		return -1;
	}
	if (rpid > 0 && (rgone || rfd < 0 || keylen != rkeylen ||
	    memcmp(key, rkey, keylen) != 0))
		runner_retire();
	if (rpid == 0) {
		if (runner_start(j, n, env, devnull) < 0) {
			free(key);
			return -1;
		}
		rkey = key;
		rkeylen = keylen;
	} else
		free(key);

	snprintf(num[0], sizeof num[0], "%" PRIu64, W->cfg.mem_limit);
	snprintf(num[1], sizeof num[1], "%" PRIu64, W->nofile_soft);
	snprintf(num[2], sizeof num[2], "%d", j->argc);
	if (put(buf, &len, "run") < 0 || put(buf, &len, j->cwd) < 0 ||
	    put(buf, &len, num[0]) < 0 || put(buf, &len, num[1]) < 0 ||
	    put(buf, &len, num[2]) < 0)
		return -1;
	for (i = 0; i < j->argc; i++)
		if (put(buf, &len, j->argv[i]) < 0)
			return -1;
	/* The variables of one attempt last: the rest is the same for every
	 * task of a runner, which a runner can compare as one string. */
	for (i = 0; env[i] != NULL; i++)
		if (!is_per_task(env[i]) && put(buf, &len, env[i]) < 0)
			return -1;
	for (i = 0; env[i] != NULL; i++)
		if (is_per_task(env[i]) && put(buf, &len, env[i]) < 0)
			return -1;
	iov.iov_base = buf;
	iov.iov_len = len;
	memset(&mh, 0, sizeof mh);
	memset(&cm, 0, sizeof cm);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.b;
	mh.msg_controllen = sizeof cm.b;
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof fds);
	memcpy(CMSG_DATA(c), fds, sizeof fds);
	if (sendmsg(rfd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len) {
		/* It died, or does not read: replace it next time. */
		runner_retire();
		return -1;
	}
	busy = 1;
	started = 0;
	tpid = 0;
	killsig = 0;
	return 0;
}

int
runner_fd(void)
{
	return busy ? rfd : -1;
}

/* The runner died before the task started, on its own: no runner for
 * this key in this shepherd any more. */
static void
mark_bad(pid_t pid)
{
	free(badkey);
	badkey = rkey;
	badkeylen = rkeylen;
	rkey = NULL;
	log_warn("the runner %s (pid %d) died before it started a task; "
	    "tasks of its kind run as commands in this slot", badkey,
	    (int)pid);
}

static int
parse_exit(const char *s, int *status, struct rusage *ru)
{
	long long	st;
	uint64_t	u, t, m;

	if (sscanf(s, "exit %lld %" SCNu64 " %" SCNu64 " %" SCNu64, &st,
	    &u, &t, &m) != 4 || st < 0 || st > 0xffff)
		return -1;
	memset(ru, 0, sizeof *ru);
	*status = (int)st;
	ru->ru_utime.tv_sec = (time_t)(u / 1000000);
	ru->ru_utime.tv_usec = (suseconds_t)(u % 1000000);
	ru->ru_stime.tv_sec = (time_t)(t / 1000000);
	ru->ru_stime.tv_usec = (suseconds_t)(t % 1000000);
	ru->ru_maxrss = (long)m;
	return 0;
}

int
runner_event(pid_t *pid, int *status, struct rusage *ru)
{
	char		buf[RUNNER_MSG_MAX + 1];
	long long	p;
	ssize_t		n;
	siginfo_t	si;
	pid_t		dead;

	while (busy && rfd >= 0) {
		n = recv(rfd, buf, RUNNER_MSG_MAX, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			runner_drop();		/* its end closed */
			break;
		}
		buf[n] = '\0';
		if (!started && sscanf(buf, "pid %lld", &p) == 1 && p > 1 &&
		    p != rpid && p <= INT32_MAX) {
			started = 1;
			*pid = tpid = (pid_t)p;
			/* Said before we killed the runner for a signal of
			 * the task's: the task has it now. */
			if (killsig)
				runner_kill_task(tpid, killsig);
			return RUNNER_PID;
		}
		if (started && strncmp(buf, "exit ", 5) == 0 &&
		    parse_exit(buf, status, ru) == 0) {
			busy = 0;
			return RUNNER_EXIT;
		}
		if (!started && strncmp(buf, "error ", 6) == 0) {
			log_warn("runner %d: %.*s; running the task as a "
			    "command", (int)rpid, (int)(n > 200 ? 200 : n), buf);
			busy = 0;
			return RUNNER_COLD;
		}
		log_warn("runner %d said what it should not (%.*s); killing it",
		    (int)rpid, (int)(n > 80 ? 80 : n), buf);
		runner_drop();
		break;
	}
	if (!busy || !rgone)
		return RUNNER_NONE;
	/* Reaped, with everything it said read. */
	dead = rpid;
	busy = 0;
	rpid = 0;
	rgone = 0;
	if (killsig) {
		free(rkey);
		rkey = NULL;
		*status = killsig;	/* as if the task died of it */
		return RUNNER_KILLED;
	}
	if (!started) {
		mark_bad(dead);
		return RUNNER_COLD;
	}
	free(rkey);
	rkey = NULL;
	/* Its task is ours now, unless it took its end with it. */
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)tpid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
	    errno == ECHILD) {
		log_warn("the runner died with the end of task %d", (int)tpid);
		return RUNNER_LOST;
	}
	return RUNNER_NONE;
}

int
runner_reaped(pid_t pid, int status)
{
	if (rpid == 0 || pid != rpid)
		return 0;
	if (WIFSIGNALED(status) && !(busy && killsig))
		log_warn("runner %d killed by signal %d", (int)pid,
		    WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_warn("runner %d exited with status %d", (int)pid,
		    WEXITSTATUS(status));
	if (rfd >= 0 && !busy) {
		close(rfd);
		rfd = -1;
	}
	if (busy) {
		rgone = 1;		/* runner_event says what it means */
		return 1;
	}
	rpid = 0;
	free(rkey);
	rkey = NULL;
	return 1;
}

int
runner_gone(void)
{
	return busy && rgone;
}

void
runner_kill_task(pid_t pid, int sig)
{
	if (pid > 0) {
		kill(-pid, sig);
		/* A task of a runner may not have made its session yet. */
		if (busy || started)
			kill(pid, sig);
		return;
	}
	if (busy && !started && rpid > 0 && !rgone) {
		if (killsig == 0)
			killsig = sig;
		kill(rpid, SIGKILL);
	}
}

int
runner_keep(pid_t pid)
{
	return rpid > 0 && pid == rpid && !rgone;
}

/* Our children, from /proc/self/task/TID/children: 1 if the runner is
 * the only one left, 0 if there are others, -1 if the kernel cannot
 * say. */
static int
children_file(void)
{
	char	path[64], buf[256], *p, *end;
	long	c;
	ssize_t	n;
	int	fd, others = 0;

	snprintf(path, sizeof path, "/proc/self/task/%d/children",
	    (int)getpid());
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	for (p = buf; *p != '\0'; p = end) {
		c = strtol(p, &end, 10);
		if (end == p)
			break;
		if ((pid_t)c != rpid)
			others++;
	}
	/* A long list: there are others. */
	return n == sizeof buf - 1 ? 0 : others == 0;
}

int
runner_alone(void)
{
	int	r;

	if (!runner_keep(rpid))
		return 0;
	if ((r = children_file()) >= 0)
		return r;
	/* Killing (or finding dead) no one else means no one else. */
	return util_kill_children(getpid(), runner_keep) == 0;
}
