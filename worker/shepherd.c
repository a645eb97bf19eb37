/*
 * shepherd.c: the process that runs a slot's jobs and watches over them.
 *
 * Each slot has a shepherd: a small process forked by the worker when the
 * slot is first used, which then runs that slot's jobs one after another.
 * It makes sure that no process of a job outlives the job, whatever
 * happens:
 *
 *   - It asks the kernel for SIGHUP when the worker dies
 *     (PR_SET_PDEATHSIG), and also sees its socket to the worker close,
 *     so a worker killed with -9 or by the OOM killer takes its jobs with
 *     it: a job the broker will give to another node must not go on
 *     running here.
 *   - It is a child subreaper (PR_SET_CHILD_SUBREAPER): a process of the
 *     job whose parent dies is re-parented to the shepherd, not to init,
 *     even one that left the job's process group or session (a daemon's
 *     double fork).  As it runs one job at a time, "every process of the
 *     job" is "every descendant of the shepherd", which it can always
 *     find, kill and reap.
 *   - It runs the job in a new session (so a new process group), and when
 *     the job's process ends, or the worker says so (a timeout, a cancel,
 *     a stop), or the worker dies, it SIGKILLs the group, then every
 *     descendant left, and reaps them all before it reports.
 *   - It is in a session of its own, so a ^C or a kill of the worker's
 *     process group reaches the worker, which decides, and not the jobs.
 *
 * It takes RUN and SIGNAL datagrams from the worker on its socket and
 * answers each RUN with one report (slot.c is the worker's side).
 *
 * The job's stdout and stderr are pipes that the shepherd copies into
 * the output files (with splice), creating each file when its first byte
 * arrives: a sweep of a million silent jobs does not leave two million
 * empty files, and creating files is what costs most on some file
 * systems.  Its measurements come from wait4() of every process it
 * reaps: start and end times, CPU time, peak memory, output sizes.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "simq-worker.h"

extern char	**environ;

/* How long to wait for a killed process to go before looking for ones
 * that escaped the job's group. */
#define REAP_WAIT_MS		50

/* One job as the shepherd sees it: strings point into the datagram. */
struct sjob {
	struct shep_hdr	 h;
	struct wjob	 j;		/* for build_env: borrowed strings */
	int		 pattern;
};

/* One output stream: the pipe and, once something came, the file. */
struct stream {
	int		 rd;		/* read end of the job's pipe, or -1 */
	int		 file;		/* -1 until the first byte */
	const char	*path;
	int		 mkparents;
	int64_t		 bytes;		/* written to the file */
	int		 lost;		/* the file could not be written... */
	int		 err;		/* ...for this reason (errno) */
	int		 nosplice;	/* splice() does not work here */
	char		*tail;		/* once lost: the last bytes */
	size_t		 tlen;
};

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

static int	ctl = -1;		/* the socket to the worker */
static int	sigfd = -1;
static int	orphaned;		/* the worker is gone */
static int	stdin_null;		/* our fd 0 is /dev/null, as a job's */
/* The next job's stdout and stderr pipes, made while we wait for it. */
static int	spare_po[2] = { -1, -1 }, spare_pe[2] = { -1, -1 };

/* Sends m, followed by the tails of the streams that have one, and by
 * text (the files' words or why they failed). */
static void
report(struct shep_msg *m, const struct stream *st, const char *text,
    size_t textlen)
{
	struct msghdr	mh;
	struct iovec	iov[4];
	int		i, n = 0;

	if (orphaned)
		return;
	iov[n].iov_base = m;
	iov[n++].iov_len = sizeof *m;
	for (i = 0; st != NULL && i < 2; i++) {
		m->tail[i] = 0;
		if (st[i].lost && st[i].tlen > 0) {
			m->tail[i] = (uint32_t)st[i].tlen;
			iov[n].iov_base = st[i].tail;
			iov[n++].iov_len = st[i].tlen;
		}
	}
	if (textlen > SHEP_TEXT_MAX)
		textlen = SHEP_TEXT_MAX;
	m->textlen = (uint32_t)textlen;
	if (textlen > 0) {
		iov[n].iov_base = (void *)text;
		iov[n++].iov_len = textlen;
	}
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = iov;
	mh.msg_iovlen = (size_t)n;
	if (sendmsg(ctl, &mh, MSG_NOSIGNAL) < 0 && errno == EMSGSIZE) {
		/* Cannot happen with the buffers slot.c asks for; still, the
		 * outcome matters more than the tails. */
		m->tail[0] = m->tail[1] = 0;
		m->textlen = 0;
		(void)send(ctl, m, sizeof *m, MSG_NOSIGNAL);
	}
}

/*
 * The vfork child: only async-signal-safe calls, and nothing written to
 * memory but sp->err and sp->stage.
 */
static void __attribute__((noreturn))
spawn_child(struct spawn *sp)
{
	struct rlimit	rl;

	if (setsid() < 0 || (sp->infd >= 0 && dup2(sp->infd, 0) < 0) ||
	    dup2(sp->outfd, 1) < 0 || dup2(sp->errfd, 2) < 0)
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
		if (env[i][0] == kv[0] && strncmp(env[i], kv, klen) == 0 &&
		    env[i][klen] == '=')
			return 1;
	return 0;
}

/* The worker's environment without repeated names (the first wins), made
 * once: it is the same for every job. */
static char	**base_env;
static int	  nbase_env;

static void
base_env_init(void)
{
	char	**e;
	int	  n = 0;

	for (e = W->environ; *e != NULL; e++)
		n++;
	base_env = xcalloc((size_t)n + 1, sizeof *base_env);
	for (e = W->environ; *e != NULL; e++)
		if (!env_has(base_env, nbase_env, *e))
			base_env[nbase_env++] = *e;
}

static void
env_add(char **env, int *n, char *kv)
{
	if (!env_has(env, *n, kv))
		env[(*n)++] = kv;
}

/*
 * The job's environment: the variables simq sets win over the job's own
 * additions, which win over SIMQ_SERVER and SIMQ_TOKEN, which win over the
 * worker's environment.  SIMQ_TOKEN is the worker's own token, given at
 * exec time so that a job can run simq against its broker: the secret is
 * never part of a job's record (see simq-worker(1) on trust).  The
 * strings simq makes are listed in mine[0..*nmine) for freeing.
 */
static char **
build_env(struct wjob *j, char **mine, int *nmine)
{
	char	**env;
	int	  n = 0, nfront, i, m = 0;

	if (base_env == NULL)
		base_env_init();
	env = xcalloc((size_t)(nbase_env + j->nenv + 16), sizeof *env);
	mine[m++] = xprintf("SIMQ_JOB_ID=%s", j->id);
	mine[m++] = xprintf("SIMQ_QUEUE=%s", j->queue);
	mine[m++] = xprintf("SIMQ_ATTEMPT=%u", j->attempt);
	mine[m++] = xprintf("SIMQ_RESULT=%s", j->respath);
	mine[m++] = xprintf("SIMQ_WORKER=%s", W->cfg.name);
	if (j->sid.index != SIMQ_NOINDEX) {
		mine[m++] = xprintf("SIMQ_ARRAY_ID=%llu",
		    (unsigned long long)j->sid.id);
		mine[m++] = xprintf("SIMQ_ARRAY_INDEX=%u", j->sid.index);
	}
	if (j->name != NULL)
		mine[m++] = xprintf("SIMQ_JOB_NAME=%s", j->name);
	if (j->jobdir != NULL)
		mine[m++] = xprintf("SIMQ_WORKDIR=%s", j->jobdir);
	for (i = 0; i < m; i++)
		env_add(env, &n, mine[i]);
	for (i = 0; i < j->nenv; i++)
		env_add(env, &n, j->env[i]);
	mine[m] = xprintf("SIMQ_SERVER=%s", W->cfg.server);
	env_add(env, &n, mine[m++]);
	if (W->cfg.token != NULL) {
		mine[m] = xprintf("SIMQ_TOKEN=%s", W->cfg.token);
		env_add(env, &n, mine[m++]);
	}
	/* The worker's own last: it has no repeats, so each of its names
	 * need only be looked for among those before it. */
	nfront = n;
	for (i = 0; i < nbase_env; i++)
		if (!env_has(env, nfront, base_env[i]))
			env[n++] = base_env[i];
	env[n] = NULL;
	*nmine = m;
	return env;
}

/* mkdir -p of path's parent directories. */
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

/* Can a file be created next to path?  Returns 0, or -1 with errno. */
static int
dir_writable(const char *path, int mkparents)
{
	char	buf[WPATH_MAX], *slash;

	if (strlen(path) >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, path);
	if ((slash = strrchr(buf, '/')) == NULL)
		return 0;
	*slash = '\0';
	if (buf[0] == '\0')
		strcpy(buf, "/");
	if (access(buf, W_OK | X_OK) == 0)
		return 0;
	if (errno == ENOENT && mkparents) {
		make_parents(path);
		return access(buf, W_OK | X_OK);
	}
	return -1;
}

/* Are a and b in the same directory (by their text)? */
static int
same_dir(const char *a, const char *b)
{
	const char	*sa = strrchr(a, '/'), *sb = strrchr(b, '/');

	return sa != NULL && sb != NULL && sa - a == sb - b &&
	    memcmp(a, b, (size_t)(sa - a)) == 0;
}

/* Keeps the last SIMQ_TAIL_MAX bytes of what went through the stream. */
static void
tail_add(struct stream *st, const char *p, size_t n)
{
	size_t	keep;

	if (n >= SIMQ_TAIL_MAX) {
		memcpy(st->tail, p + n - SIMQ_TAIL_MAX, SIMQ_TAIL_MAX);
		st->tlen = SIMQ_TAIL_MAX;
		return;
	}
	if (st->tlen + n > SIMQ_TAIL_MAX) {
		keep = SIMQ_TAIL_MAX - n;
		memmove(st->tail, st->tail + st->tlen - keep, keep);
		st->tlen = keep;
	}
	memcpy(st->tail + st->tlen, p, n);
	st->tlen += n;
}

/*
 * The stream's file cannot take more (err: a full disk, a quota, an I/O
 * error).  The job goes on: its output is still read, so that it never
 * meets a closed pipe (SIGPIPE), and from now on only its tail is kept,
 * in memory, for the report.  The tail begins with what the file already
 * holds; p[0..n) is what could not be written.
 */
static void
stream_lost(struct stream *st, int err, const char *p, size_t n)
{
	int64_t	want;
	ssize_t	got;

	st->lost = 1;
	st->err = err ? err : EIO;
	st->tail = xmalloc(SIMQ_TAIL_MAX);
	st->tlen = 0;
	if (st->file >= 0 && st->bytes > 0) {
		want = st->bytes > SIMQ_TAIL_MAX ? SIMQ_TAIL_MAX : st->bytes;
		got = pread(st->file, st->tail, (size_t)want, st->bytes - want);
		st->tlen = got > 0 ? (size_t)got : 0;
	}
	if (n > 0)
		tail_add(st, p, n);
}

/* Moves what the pipe holds into the stream's file, creating the file at
 * the first byte.  Returns 0 at end of file, 1 if the pipe is empty for
 * now. */
static int
stream_copy(struct stream *st)
{
	char	buf[65536];
	ssize_t	n, w, off;

	for (;;) {
		if (st->file >= 0 && !st->lost && !st->nosplice) {
			n = splice(st->rd, NULL, st->file, NULL, 1 << 20,
			    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				st->bytes += n;
				continue;
			}
			if (n == 0)
				return 0;
			if (errno == EAGAIN || errno == EINTR)
				return 1;
			if (errno == EINVAL)
				st->nosplice = 1;	/* not here: copy */
			else
				stream_lost(st, errno, NULL, 0);
			continue;
		}
		n = read(st->rd, buf, sizeof buf);
		if (n == 0)
			return 0;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 1 : 0;
		if (st->lost) {
			tail_add(st, buf, (size_t)n);
			continue;
		}
		if (st->file < 0) {
			st->file = open(st->path, O_RDWR | O_CREAT | O_TRUNC |
			    O_CLOEXEC | O_NOCTTY, 0666);
			if (st->file < 0 && errno == ENOENT && st->mkparents) {
				make_parents(st->path);
				st->file = open(st->path, O_RDWR | O_CREAT |
				    O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
			}
			if (st->file < 0 && errno == EACCES)
				st->file = open(st->path, O_WRONLY | O_CREAT |
				    O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
			if (st->file < 0) {
				stream_lost(st, errno, buf, (size_t)n);
				continue;
			}
		}
		for (off = 0; off < n; off += w) {
			w = write(st->file, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w <= 0)
				break;
			st->bytes += w;
		}
		if (off < n)
			stream_lost(st, w < 0 ? errno : ENOSPC, buf + off,
			    (size_t)(n - off));
	}
}

/* A job's stdout and stderr pipes, their read ends non-blocking.
 * Returns 0, or -1 with errno set (and nothing left open). */
static int
pipes_make(int *po, int *pe)
{
	int	err;

	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		err = errno;
		close(po[0]);
		close(po[1]);
		po[0] = po[1] = -1;
		errno = err;
		return -1;
	}
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	return 0;
}

/* Between jobs: the next job's pipes, so that its start does not wait
 * for them.  A failure here is tried again, and reported, at the start. */
static void
pipes_ready(void)
{
	if (spare_po[0] < 0)
		(void)pipes_make(spare_po, spare_pe);
}

static int
pipes_take(int *po, int *pe)
{
	if (spare_po[0] < 0)
		return pipes_make(po, pe);
	po[0] = spare_po[0];
	po[1] = spare_po[1];
	pe[0] = spare_pe[0];
	pe[1] = spare_pe[1];
	spare_po[0] = spare_po[1] = spare_pe[0] = spare_pe[1] = -1;
	return 0;
}

static void
account(struct shep_msg *m, const struct rusage *ru)
{
	m->utime_us += (uint64_t)ru->ru_utime.tv_sec * 1000000 +
	    (uint64_t)ru->ru_utime.tv_usec;
	m->stime_us += (uint64_t)ru->ru_stime.tv_sec * 1000000 +
	    (uint64_t)ru->ru_stime.tv_usec;
	if ((uint64_t)ru->ru_maxrss > m->maxrss_kib)
		m->maxrss_kib = (uint64_t)ru->ru_maxrss;
}

/* Kills the job's group and everything else below us, and reaps it all,
 * copying output meanwhile.  Returns the number of processes found
 * outside the group. */
static unsigned
reap_all(pid_t pgid, struct shep_msg *m, struct stream *st)
{
	struct rusage	ru;
	struct pollfd	pfd[3];
	unsigned	killed = 0;
	int		idle = 0, status, i, n;
	pid_t		r;

	if (pgid > 0)
		kill(-pgid, SIGKILL);
	for (;;) {
		r = wait4(-1, &status, WNOHANG, &ru);
		if (r > 0) {
			if (!runner_reaped(r, status))
				account(m, &ru);
			idle = 0;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || runner_alone())
			break;		/* nothing left (but a warm runner) */
		/* Someone is alive: the group is still dying, or a process
		 * left the group.  Wait a little, then look for them. */
		if (pgid > 0)
			kill(-pgid, SIGKILL);
		if (idle++ > 0)
			killed += (unsigned)util_kill_children(getpid(),
			    runner_keep);
		n = 0;
		pfd[n].fd = sigfd;
		pfd[n++].events = POLLIN;
		for (i = 0; i < 2; i++) {
			if (st[i].rd >= 0) {
				pfd[n].fd = st[i].rd;
				pfd[n++].events = POLLIN;
			}
		}
		(void)poll(pfd, (nfds_t)n, REAP_WAIT_MS);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo ssi;
			while (read(sigfd, &ssi, sizeof ssi) > 0)
				;
		}
		for (i = 0; i < 2; i++)
			if (st[i].rd >= 0 && stream_copy(&st[i]) == 0) {
				close(st[i].rd);
				st[i].rd = -1;
			}
	}
	return killed;
}

static int64_t
path_size(const char *path)
{
	struct stat	sb;

	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ?
	    (int64_t)sb.st_size : -1;
}

static void
fail_text(struct sjob *sj, int stage, int err, int which, const char *text)
{
	struct shep_msg	m;

	memset(&m, 0, sizeof m);
	m.kind = SHEP_FAILED;
	m.seq = sj->h.seq;
	m.stage = stage;
	m.err = err;
	m.failpath = which;
	report(&m, NULL, text, text != NULL ? strlen(text) : 0);
}

static void
fail(struct sjob *sj, int stage, int err, int which)
{
	fail_text(sj, stage, err, which, NULL);
}

/* Unpacks a RUN datagram.  Returns 0, or -1 if it is malformed. */
static int
unpack(struct sjob *sj, char *buf, size_t n)
{
	char	*p = buf + sizeof sj->h, *end = buf + n, *s[7];
	int	 i, na, ne, nf, nc;

	memcpy(&sj->h, buf, sizeof sj->h);
	memset(&sj->j, 0, sizeof sj->j);
	if (sj->h.nargv == 0 || sj->h.nargv > SIMQ_WORDS_MAX ||
	    sj->h.nenv > SIMQ_ENV_MAX + WJOB_ENV_EXTRA ||
	    sj->h.nfiles > SIMQ_FILES_MAX ||
	    sj->h.ncollect > SIMQ_COLLECT_MAX)
		return -1;
	na = (int)sj->h.nargv;
	ne = (int)sj->h.nenv;
	nf = (int)sj->h.nfiles;
	nc = (int)sj->h.ncollect;
	sj->j.argv = xcalloc((size_t)na + 1, sizeof *sj->j.argv);
	sj->j.env = xcalloc((size_t)ne + 1, sizeof *sj->j.env);
	sj->j.files = xcalloc((size_t)nf + 1, sizeof *sj->j.files);
	sj->j.collect = xcalloc((size_t)nc + 1, sizeof *sj->j.collect);
	for (i = 0; i < 7 + na + ne + nf + nc; i++) {
		char *z = memchr(p, '\0', (size_t)(end - p));
		if (z == NULL)
			return -1;
		if (i < 7)
			s[i] = p;
		else if (i < 7 + na)
			sj->j.argv[sj->j.argc++] = p;
		else if (i < 7 + na + ne)
			sj->j.env[sj->j.nenv++] = p;
		else if (i < 7 + na + ne + nf)
			sj->j.files[sj->j.nfiles++] = p;
		else
			sj->j.collect[sj->j.ncollect++] = p;
		p = z + 1;
	}
	snprintf(sj->j.id, sizeof sj->j.id, "%s", s[0]);
	sj->j.sid.id = sj->h.id;
	sj->j.sid.index = sj->h.index;
	sj->j.attempt = sj->h.attempt;
	sj->j.queue = s[1];
	sj->j.name = s[2][0] ? s[2] : NULL;
	sj->j.cwd = s[3];
	sj->j.outpath = s[4];
	sj->j.errpath = s[5];
	sj->j.respath = s[6];
	sj->pattern = sj->h.pattern != 0;
	return 0;
}

/* A SIGNAL datagram, or the worker's end closing, while a job runs. */
static void
control(pid_t pgid, uint64_t seq)
{
	struct shep_hdr	h;
	ssize_t		n;

	for (;;) {
		n = recv(ctl, &h, sizeof h, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			orphaned = 1;
			runner_kill_task(pgid, SIGKILL);
			return;
		}
		if ((size_t)n >= sizeof h && h.type == SHEP_SIGNAL &&
		    h.seq == seq && (h.sig == SIGTERM || h.sig == SIGKILL))
			runner_kill_task(pgid, h.sig);
	}
}

/* What the warm runner of the task said, or its death means.  Returns 0
 * (nothing to do), 1 (the task is over: m has its status), 2 (run it as
 * a command), 3 (lost). */
static int
warm_news(struct shep_msg *m, pid_t *pid, int *po1, int *pe1)
{
	struct rusage	ru;
	int		status = 0, k;

	while ((k = runner_event(pid, &status, &ru)) != RUNNER_NONE) {
		switch (k) {
		case RUNNER_PID:
			/* The task has them: the pipes end with it. */
			close(*po1);
			close(*pe1);
			*po1 = *pe1 = -1;
			break;
		case RUNNER_EXIT:
			account(m, &ru);
			/* FALLTHROUGH */
		case RUNNER_KILLED:
			m->status = status;
			m->end_ms = now_ms();
			return 1;
		case RUNNER_COLD:
			return 2;
		case RUNNER_LOST:
			return 3;
		}
	}
	return 0;
}

enum { TRANSFER_FETCH, TRANSFER_COLLECT };

/*
 * Runs a transfer (files.c) in a child process and waits for it, still
 * hearing the worker: during a fetch, a SIGNAL for the job kills the
 * transfer (a cancel or a timeout before the job even started), and the
 * worker's death kills it whatever it does.  A collect runs to its end
 * otherwise: the job is over, and what it made is worth keeping.  The
 * child's words (or why it failed) come back on a pipe, in *text.
 * Returns 0 (done), 1 (failed), or -SIG (killed for a SIGNAL).
 */
static int
transfer(struct sjob *sj, int kind, const char *dir, char **text,
    size_t *textlen)
{
	struct signalfd_siginfo	 ssi;
	struct shep_hdr		 h;
	struct pollfd		 pfd[3];
	char			*buf = xmalloc(SHEP_TEXT_MAX);
	size_t			 len = 0;
	ssize_t			 n;
	pid_t			 pid, me = getpid();
	int			 p[2], status = 0, reaped = 0, eof = 0;
	int			 killed = 0, rc;

	*text = NULL;
	*textlen = 0;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(buf);
		*text = xprintf("pipe: %s", strerror(errno));
		*textlen = strlen(*text);
		return 1;
	}
	if ((pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		free(buf);
		*text = xprintf("fork: %s", strerror(errno));
		*textlen = strlen(*text);
		return 1;
	}
	if (pid == 0) {
		close(p[0]);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != me)
			_exit(1);
		close(ctl);
		close(sigfd);
		signal(SIGPIPE, SIG_IGN);
		(void)prctl(PR_SET_NAME, kind == TRANSFER_FETCH ?
		    "simq-fetch" : "simq-collect");
		rc = kind == TRANSFER_FETCH ? files_fetch_child(&sj->j, dir,
		    p[1]) : files_collect_child(&sj->j, dir, p[1]);
		_exit(rc);
	}
	close(p[1]);
	while (!eof || !reaped) {
		pfd[0].fd = eof ? -1 : p[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = orphaned ? -1 : ctl;
		pfd[1].events = POLLIN;
		pfd[2].fd = sigfd;
		pfd[2].events = POLLIN;
		if (poll(pfd, 3, -1) < 0)
			continue;
		if (pfd[0].revents) {
			n = read(p[0], buf + len, SHEP_TEXT_MAX - len);
			if (n > 0)
				len += (size_t)n;
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				eof = 1;
			if (len == SHEP_TEXT_MAX)
				eof = 1;
		}
		if (pfd[1].revents) {
			n = recv(ctl, &h, sizeof h, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EINTR &&
			    errno != EAGAIN)) {
				orphaned = 1;
				kill(pid, SIGKILL);
			} else if (n >= (ssize_t)sizeof h && h.type ==
			    SHEP_SIGNAL && h.seq == sj->h.seq &&
			    kind == TRANSFER_FETCH && !killed) {
				kill(pid, SIGKILL);
				killed = h.sig;
			}
		}
		if (pfd[2].revents & POLLIN) {
			while (read(sigfd, &ssi, sizeof ssi) == sizeof ssi)
				if (ssi.ssi_signo == SIGHUP) {
					orphaned = 1;
					kill(pid, SIGKILL);
				}
		}
		if (!reaped && waitpid(pid, &status, WNOHANG) == pid)
			reaped = 1;
	}
	close(p[0]);
	*text = buf;
	*textlen = len;
	if (killed)
		return -killed;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (len == 0) {
		free(buf);
		*text = xprintf("the %s process %s %d", kind == TRANSFER_FETCH ?
		    "fetch" : "collect", WIFSIGNALED(status) ? "was killed by "
		    "signal" : "exited with", WIFSIGNALED(status) ?
		    WTERMSIG(status) : WEXITSTATUS(status));
		*textlen = strlen(*text);
	}
	return 1;
}

/*
 * A job with files: its directory, and its files laid there.  Returns 0
 * (j->cwd is the directory), or -1 after reporting.
 */
static int
run_files(struct sjob *sj, struct shep_msg *m)
{
	struct wjob	*j = &sj->j;
	char		*why = NULL, *text;
	size_t		 len;
	int		 r;

	if ((j->jobdir = files_mkdir(j, &why)) == NULL) {
		fail_text(sj, STAGE_FILES, 0, 0, why);
		free(why);
		return -1;
	}
	j->cwd = j->jobdir;
	if (j->nfiles == 0)
		return 0;
	m->start_ms = now_ms();
	if ((r = transfer(sj, TRANSFER_FETCH, j->jobdir, &text, &len)) == 0) {
		free(text);
		return 0;
	}
	if (r < 0) {
		/* Stopped before it started: as if killed at once. */
		m->kind = SHEP_DONE;
		m->status = -r;
		m->end_ms = now_ms();
		m->outsize = m->errsize = m->ressize = -1;
		report(m, NULL, NULL, 0);
	} else {
		text[len < SHEP_TEXT_MAX ? len : SHEP_TEXT_MAX - 1] = '\0';
		fail_text(sj, STAGE_FILES, 0, 0, text);
	}
	free(text);
	return -1;
}

static void
run(struct sjob *sj, int devnull)
{
	struct wjob		*j = &sj->j;
	struct shep_msg		 m;
	struct spawn		 sp;
	struct stream		 st[2];
	struct rusage		 ru;
	struct pollfd		 pfd[5];
	struct signalfd_siginfo	 ssi[8];
	char			*mine[16];
	char			**env = NULL, *text = NULL;
	size_t			 textlen = 0, k;
	ssize_t			 got;
	int			 po[2] = { -1, -1 }, pe[2] = { -1, -1 }, *wr;
	int			 nmine = 0, status = 0, done = 0, i, n;
	int			 warm, news = 0, alone = 0;
	pid_t			 pid = 0, r;

	memset(&m, 0, sizeof m);
	m.seq = sj->h.seq;
	if ((j->nfiles > 0 || j->ncollect > 0) && run_files(sj, &m) < 0)
		goto out;
	if (chdir(j->cwd) < 0) {
		fail(sj, STAGE_CWD, errno, 0);
		goto out;
	}
	if (dir_writable(j->outpath, sj->pattern) < 0) {
		fail(sj, STAGE_OUTPUT, errno, 0);
		goto out;
	}
	if (!same_dir(j->outpath, j->errpath) &&
	    dir_writable(j->errpath, sj->pattern) < 0) {
		fail(sj, STAGE_OUTPUT, errno, 1);
		goto out;
	}
	/* Files are made when written: take away an earlier attempt's. */
	if (sj->pattern) {
		(void)unlink(j->outpath);
		(void)unlink(j->errpath);
	}
	(void)unlink(j->respath);
	if (pipes_take(po, pe) < 0) {
		fail(sj, STAGE_FORK, errno, 0);
		goto out;
	}
	for (i = 0; i < 2; i++) {
		st[i].rd = i == 0 ? po[0] : pe[0];
		st[i].file = -1;
		st[i].path = i == 0 ? j->outpath : j->errpath;
		st[i].mkparents = sj->pattern;
		st[i].bytes = 0;
		st[i].lost = 0;
		st[i].err = 0;
		st[i].nosplice = 0;
		st[i].tail = NULL;
		st[i].tlen = 0;
	}
	env = build_env(j, mine, &nmine);

	memset(&sp, 0, sizeof sp);
	sp.argv = j->argv;
	sp.infd = stdin_null ? -1 : devnull;	/* -1: it is fd 0 already */
	sp.outfd = po[1];
	sp.errfd = pe[1];
	sp.mem_limit = W->cfg.mem_limit;
	if (sj->h.mem && (sp.mem_limit == 0 || sj->h.mem < sp.mem_limit))
		sp.mem_limit = sj->h.mem;	/* its mem= (resources.c) */
	sp.nofile_soft = W->nofile_soft;
	sigemptyset(&sp.empty);
	m.start_ms = now_ms();
	/* A job may ask for a warm runner (runner.c); else, or when the
	 * runner cannot start it, it runs as a command. */
	warm = runner_send(j, env, devnull, po[1], pe[1], devnull) == 0;
spawn:
	if (!warm) {
		environ = env;
		pid = spawn_job(&sp);
		environ = W->environ;
		/* The pipes' write ends stay open here until the job is
		 * reaped: its exit then wakes us once (SIGCHLD), not once
		 * per pipe reaching its end and again for the signal. */
		if (pid < 0 || sp.stage != STAGE_NONE) {
			if (pid > 0)
				(void)waitpid(pid, &status, 0);
			fail(sj, pid < 0 ? STAGE_FORK : sp.stage, pid < 0 ?
			    errno : sp.err, 0);
			goto out;
		}
	}

	while (!done) {
		n = 0;
		pfd[n].fd = sigfd;
		pfd[n++].events = POLLIN;
		pfd[n].fd = orphaned ? -1 : ctl;
		pfd[n++].events = POLLIN;
		for (i = 0; i < 2; i++) {
			pfd[n].fd = st[i].rd;	/* -1: ignored by poll */
			pfd[n++].events = POLLIN;
		}
		pfd[n].fd = warm ? runner_fd() : -1;
		pfd[n++].events = POLLIN;
		if (poll(pfd, (nfds_t)n, -1) < 0)
			continue;
		if (pfd[1].revents)
			control(pid, sj->h.seq);
		for (i = 0; i < 2; i++)
			if (st[i].rd >= 0 && pfd[2 + i].revents &&
			    stream_copy(&st[i]) == 0) {
				close(st[i].rd);
				st[i].rd = -1;
			}
		if (warm && pfd[4].revents &&
		    (news = warm_news(&m, &pid, &po[1], &pe[1])) != 0)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		/* All that is pending in one read: a short one says there
		 * is no more. */
		while ((got = read(sigfd, ssi, sizeof ssi)) > 0) {
			for (k = 0; k < (size_t)got / sizeof ssi[0]; k++)
				if (ssi[k].ssi_signo == SIGHUP) {
					orphaned = 1;	/* the worker died */
					runner_kill_task(pid, SIGKILL);
				}
			if ((size_t)got < sizeof ssi)
				break;
		}
		while ((r = wait4(-1, &status, WNOHANG, &ru)) > 0 ||
		    (r < 0 && errno == EINTR)) {
			if (r < 0 || runner_reaped(r, status))
				continue;
			account(&m, &ru);
			if (r == pid) {
				m.status = status;
				m.end_ms = now_ms();
				done = 1;
			}
		}
		/* No child at all: as every process of the job is below us
		 * (we are its subreaper), none is left. */
		alone = r < 0 && errno == ECHILD;
		if (!done && warm && runner_gone() &&
		    (news = warm_news(&m, &pid, &po[1], &pe[1])) != 0)
			break;
	}
	if (news == 2) {
		/* The runner did not start it: whatever it forked goes, and
		 * the job runs as a command. */
		(void)reap_all(0, &m, st);
		m.utime_us = m.stime_us = m.maxrss_kib = 0;
		warm = 0;
		news = 0;
		goto spawn;
	}

	/* The job's process is gone: so must everything it started. */
	if (!alone || warm)
		m.killed = reap_all(pid, &m, st);
	/* Every writer is dead: what is left in the pipes is the end of
	 * the output (a writer outside our tree could keep a pipe open:
	 * take what is there and stop). */
	for (i = 0; i < 2; i++) {
		wr = i == 0 ? &po[1] : &pe[1];
		if (*wr >= 0)
			close(*wr);
		*wr = -1;
		if (st[i].rd >= 0)
			(void)stream_copy(&st[i]);
	}
	m.kind = news == 3 ? SHEP_LOST : SHEP_DONE;
	m.outsize = st[0].file >= 0 ? st[0].bytes : -1;
	m.errsize = st[1].file >= 0 ? st[1].bytes : -1;
	for (i = 0; i < 2; i++)
		m.outerr[i] = st[i].lost ? st[i].err : 0;
	m.ressize = path_size(j->respath);
	/* Collected before the directory goes, and before the report: the
	 * FINISH names what the broker already holds. */
	if (j->jobdir != NULL) {
		if (j->ncollect > 0 && !orphaned && chdir("/") == 0)
			(void)transfer(sj, TRANSFER_COLLECT, j->jobdir, &text,
			    &textlen);
		files_rmdir(j->jobdir);
	}
	report(&m, st, text, textlen);
	for (i = 0; i < 2; i++) {
		if (st[i].file >= 0)
			close(st[i].file);
		if (st[i].rd >= 0)
			close(st[i].rd);
		free(st[i].tail);
	}
	po[0] = pe[0] = -1;
out:
	free(env);
	for (i = 0; i < nmine; i++)
		free(mine[i]);
	for (i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	if (j->jobdir != NULL) {
		if (chdir("/") == 0)
			files_rmdir(j->jobdir);
		free(j->jobdir);
		j->jobdir = NULL;
	}
	free(text);
}

void
shepherd_main(int fd)
{
	static char		 buf[SHEP_MSG_MAX];
	struct sigaction	 sa;
	struct sjob		 sj;
	struct pollfd		 pfd[2];
	struct signalfd_siginfo	 ssi;
	sigset_t		 set;
	int			 sig, lo, hi, status;
	ssize_t			 n;
	pid_t			 pid;

	/* Handlers inherited from the worker's event loop must never run
	 * here, and jobs must start with default dispositions (SIGPIPE
	 * above all). */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGHUP) < 0 || getppid() != W->pid)
		_exit(1);	/* the worker is already gone */
	(void)setsid();
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* Named apart in ps and top, and out of the way of "pkill
	 * simq-worker", which is meant for the worker. */
	(void)prctl(PR_SET_NAME, "simq-shepherd");

	/* Keep only our socket and /dev/null. */
	lo = fd < W->devnull ? fd : W->devnull;
	hi = fd < W->devnull ? W->devnull : fd;
	if (lo > 3)
		close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0U, 0);
	ctl = fd;
	/* Jobs' stdin is /dev/null: so is ours, once, instead of a dup2 in
	 * every job's start. */
	stdin_null = W->devnull != 0 && dup2(W->devnull, 0) == 0;

	/* Signals stay blocked (they were at fork) and come as reads. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	if ((sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		_exit(1);

	for (;;) {
		pipes_ready();
		pfd[0].fd = ctl;
		pfd[0].events = POLLIN;
		pfd[1].fd = sigfd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) < 0)
			continue;
		if (pfd[1].revents & POLLIN) {
			while (read(sigfd, &ssi, sizeof ssi) == sizeof ssi) {
				if (ssi.ssi_signo == SIGHUP)
					_exit(0);
				/* SIGCHLD between jobs: a late orphan, or
				 * the warm runner. */
				while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
					(void)runner_reaped(pid, status);
			}
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(ctl, buf, sizeof buf, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);	/* the worker closed its end */
		if ((size_t)n < sizeof sj.h)
			continue;
		memcpy(&sj.h, buf, sizeof sj.h);
		if (sj.h.type != SHEP_RUN)
			continue;	/* a signal for a job that is over */
		if (unpack(&sj, buf, (size_t)n) < 0)
			fail(&sj, STAGE_FORK, EINVAL, 0);
		else
			run(&sj, W->devnull);
		free(sj.j.argv);
		free(sj.j.env);
		free(sj.j.files);
		free(sj.j.collect);
		if (orphaned)
			_exit(0);
	}
}
