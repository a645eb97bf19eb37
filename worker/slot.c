/*
 * slot.c: the worker's slots, each run by a shepherd process.
 *
 * A slot's shepherd (shepherd.c) is forked the first time the slot is
 * used, and again only if it dies; it then runs the slot's jobs one after
 * another, so a job costs one vfork() and one exec(), not a fork of the
 * worker.  The worker and a shepherd exchange datagrams on a
 * SOCK_SEQPACKET socket pair: RUN (a job, numbered) and SIGNAL (send this
 * signal to job number seq's group) one way, one report per job the other
 * way.  The numbers make a late signal harmless: it names a job that is
 * over, and the shepherd ignores it.  A shepherd that dies is reaped on
 * SIGCHLD, and its job, if it had one, is handed back as lost: nothing
 * the job did made its shepherd die (job.c).
 */
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "simq-worker.h"

static struct slot	*slots;

static void	slot_read_cb(evutil_socket_t, short, void *);

void
slot_init(void)
{
	uint32_t	i;

	slots = xcalloc(W->cfg.slots, sizeof *slots);
	for (i = 0; i < W->cfg.slots; i++)
		slots[i].fd = -1;
}

/* Forks the shepherd of slot s.  Returns 0, or -1 with errno set. */
static int
slot_spawn(struct slot *s)
{
	sigset_t	all, old;
	int		sv[2], size = SHEP_MSG_MAX * 2, err;
	pid_t		pid;

	if (size < (int)SHEP_REPORT_MAX * 2)
		size = (int)SHEP_REPORT_MAX * 2;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	/* Fork with every signal blocked: the child must not run the
	 * event loop's handlers before it has reset them. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		shepherd_main(sv[1]);
	}
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		errno = err;
		return -1;
	}
	s->pid = pid;
	s->fd = sv[0];
	/* Its jobs' memory limits are its cgroup's (resources.c). */
	(void)res_cgroup_slot((uint32_t)(s - slots), pid);
	s->job = NULL;
	evutil_make_socket_nonblocking(s->fd);
	s->ev = event_new(W->base, s->fd, EV_READ | EV_PERSIST,
	    slot_read_cb, s);
	event_add(s->ev, NULL);
	log_debug("shepherd %d started", (int)pid);
	return 0;
}

static void
put_str(char *buf, size_t *n, const char *s)
{
	size_t	len = strlen(s) + 1;

	if (*n + len <= SHEP_MSG_MAX)
		memcpy(buf + *n, s, len);
	*n += len;
}

int
slot_run(struct wjob *j)
{
	static char		 buf[SHEP_MSG_MAX];
	struct slot		*s = NULL;
	struct shep_hdr		 h;
	size_t			 n = sizeof h;
	uint32_t		 i;
	int			 k;

	for (i = 0; i < W->cfg.slots; i++) {
		if (slots[i].pid > 0 && slots[i].fd >= 0 && slots[i].job == NULL) {
			s = &slots[i];
			break;
		}
	}
	if (s == NULL) {
		for (i = 0; i < W->cfg.slots && slots[i].pid > 0; i++)
			;
		if (i == W->cfg.slots) {
			errno = EAGAIN;		/* every slot is busy */
			return -1;
		}
		s = &slots[i];
		if (slot_spawn(s) < 0)
			return -1;
	}
	memset(&h, 0, sizeof h);
	h.type = SHEP_RUN;
	h.seq = ++s->seq;
	h.id = j->sid.id;
	h.index = j->sid.index;
	h.attempt = j->attempt;
	h.nargv = (uint32_t)j->argc;
	h.nenv = (uint32_t)j->nenv;
	h.pattern = j->output != NULL;
	/* A job's mem=: its slot's cgroup memory.max where there is one,
	 * else its address space (RLIMIT_AS). */
	if (res_cgroup_limit((uint32_t)(s - slots), j->mem) < 0)
		h.mem = j->mem;
	j->ooms = res_cgroup_ooms((uint32_t)(s - slots));
	h.nfiles = (uint32_t)j->nfiles;
	h.ncollect = (uint32_t)j->ncollect;
	put_str(buf, &n, j->id);
	put_str(buf, &n, j->queue);
	put_str(buf, &n, j->name ? j->name : "");
	put_str(buf, &n, j->cwd ? j->cwd : W->cfg.cwd);
	put_str(buf, &n, j->outpath);
	put_str(buf, &n, j->errpath);
	put_str(buf, &n, j->respath);
	for (k = 0; k < j->argc; k++)
		put_str(buf, &n, j->argv[k]);
	for (k = 0; k < j->nenv; k++)
		put_str(buf, &n, j->env[k]);
	for (k = 0; k < j->nfiles; k++)
		put_str(buf, &n, j->files[k]);
	for (k = 0; k < j->ncollect; k++)
		put_str(buf, &n, j->collect[k]);
	if (n > SHEP_MSG_MAX) {
		errno = E2BIG;
		return -1;
	}
	memcpy(buf, &h, sizeof h);
	if (send(s->fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
		return -1;	/* it died: SIGCHLD will tell */
	s->job = j;
	j->slot = s;
	j->slotno = (uint32_t)(s - slots);
	j->seq = h.seq;
	return 0;
}

/* Whether j's slot cgroup counted an OOM kill since j started. */
int
slot_oom(const struct wjob *j)
{
	return res_cgroup_ooms(j->slotno) > j->ooms;
}

void
slot_signal(struct wjob *j, int sig)
{
	struct shep_hdr	h;

	if (j->slot == NULL || j->slot->job != j || j->slot->fd < 0)
		return;
	memset(&h, 0, sizeof h);
	h.type = SHEP_SIGNAL;
	h.seq = j->seq;
	h.sig = sig;
	(void)send(j->slot->fd, &h, sizeof h, MSG_NOSIGNAL);
}

/* Its socket closed: the shepherd is dying; its pid is reaped later. */
static void
slot_gone(struct slot *s)
{
	if (s->fd < 0)
		return;
	event_free(s->ev);
	s->ev = NULL;
	close(s->fd);
	s->fd = -1;
}

static void
slot_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	static char	 buf[SHEP_REPORT_MAX];
	struct slot	*s = arg;
	struct shep_msg	 m;
	struct wjob	*j;
	ssize_t		 n;

	for (;;) {
		n = recv(s->fd, buf, sizeof buf, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			slot_gone(s);
			return;
		}
		if ((size_t)n >= sizeof m)
			memcpy(&m, buf, sizeof m);
		if ((size_t)n < sizeof m || m.tail[0] > SIMQ_TAIL_MAX ||
		    m.tail[1] > SIMQ_TAIL_MAX || m.textlen > SHEP_TEXT_MAX ||
		    (size_t)n != sizeof m + m.tail[0] + m.tail[1] +
		    m.textlen || (j = s->job) == NULL ||
		    m.seq != s->seq) {
			log_warn("shepherd %d: an unexpected report", (int)s->pid);
			continue;
		}
		s->job = NULL;
		j->slot = NULL;
		job_finished(j, &m, buf + sizeof m);
		/* One report per job: nothing more can be waiting but an
		 * end, which the next call sees (the event is level
		 * triggered), so no read just to hear EAGAIN. */
		return;
	}
}

/* A child of ours was reaped.  Returns 1 if it was a shepherd. */
int
slot_reaped(pid_t pid, int status)
{
	struct slot	*s;
	struct wjob	*j;
	uint32_t	 i;

	for (i = 0; i < W->cfg.slots; i++) {
		s = &slots[i];
		if (s->pid != pid)
			continue;
		/* Whatever it had written before it died comes first. */
		if (s->fd >= 0)
			slot_read_cb(s->fd, EV_READ, s);
		slot_gone(s);
		s->pid = 0;
		if ((j = s->job) != NULL) {
			s->job = NULL;
			j->slot = NULL;
			job_shepherd_died(j, status);
		}
		return 1;
	}
	return 0;
}

int
slot_is_shepherd(pid_t pid)
{
	uint32_t	i;

	for (i = 0; slots != NULL && i < W->cfg.slots; i++)
		if (slots[i].pid == pid)
			return 1;
	return 0;
}

/* At exit: closing the sockets tells the shepherds to go. */
void
slot_close_all(void)
{
	uint32_t	i;

	for (i = 0; slots != NULL && i < W->cfg.slots; i++)
		slot_gone(&slots[i]);
	free(slots);
	slots = NULL;
}

