/*
 * follow.c: the output of jobs someone follows, sent to the broker as it
 * is written (simq output -f).
 *
 * The broker says "follow" (in a TAKE or HEARTBEAT reply) for a job
 * attempt's stdout or stderr, and "unfollow" when nobody follows it any
 * more.  Meanwhile the worker reads the new bytes of the job's output
 * file (the shepherd writes it; inotify says when it grew, a slow timer
 * covers a file not made yet) and PUSHes them, one chunk at a time,
 * each after the broker answered the one before, so a fast job never
 * makes the worker buffer: what the broker would not keep (more than
 * FOLLOW_BEHIND behind) is skipped, and the broker tells the follower.
 * A job nobody follows is never read.  When the job ends, what is left
 * of the file goes before its report, so a follower sees it all.
 */
#include <sys/inotify.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simq-worker.h"

/* The most the worker lags behind the file: the broker keeps this much
 * of a followed stream (broker/follow.c, FOLLOW_RING), so older bytes
 * would be thrown away there anyway. */
#define FOLLOW_BEHIND		(2u * SIMQ_FOLLOW_CHUNK)
/* Where following starts in a file that already holds output: its last
 * bytes, as many as the broker keeps of a finished job. */
#define FOLLOW_START		SIMQ_TAIL_MAX
/* How often a followed file is looked at without inotify's word: a file
 * not created yet (its first byte makes it), or no inotify. */
#define FOLLOW_POLL_MS		100

struct wfollow {
	TAILQ_ENTRY(wfollow)	 entry;
	struct simq_id		 sid;
	uint32_t		 attempt;
	int			 which;		/* 0 stdout, 1 stderr */
	int			 fd;		/* the file, once it exists */
	int			 wd;		/* its inotify watch, or -1 */
	int			 started;	/* sent is known */
	uint64_t		 sent;		/* bytes acknowledged */
	uint64_t		 token;		/* of the PUSH in flight, 0: none */
	size_t			 pending;	/* its bytes */
};

static TAILQ_HEAD(, wfollow)	 follows = TAILQ_HEAD_INITIALIZER(follows);
static int			 ino = -1;
static struct event		*ino_ev, *poll_ev;
static uint64_t			 next_token = 1;

static struct wjob *
job_of(const struct wfollow *f)
{
	struct wjob	*j;

	TAILQ_FOREACH(j, &W->jobs, entry)
		if (j->sid.id == f->sid.id && j->sid.index == f->sid.index &&
		    j->attempt == f->attempt)
			return j;
	return NULL;
}

static void
follow_free(struct wfollow *f)
{
	TAILQ_REMOVE(&follows, f, entry);
	if (f->wd >= 0 && ino >= 0)
		inotify_rm_watch(ino, f->wd);
	if (f->fd >= 0)
		close(f->fd);
	free(f);
	if (TAILQ_EMPTY(&follows) && poll_ev != NULL)
		evtimer_del(poll_ev);
}

/* Reads up to max bytes of f's file from off into buf; -1 if the file
 * is not there (yet). */
static ssize_t
file_read(struct wfollow *f, const struct wjob *j, char *buf, size_t max,
    uint64_t *offp)
{
	struct stat	st;
	uint64_t	off = *offp;
	ssize_t		n;

	if (f->fd < 0) {
		const char *path = f->which ? j->errpath : j->outpath;
		if (path == NULL || (f->fd = open(path, O_RDONLY | O_CLOEXEC |
		    O_NOCTTY)) < 0)
			return -1;
		if (ino >= 0)
			f->wd = inotify_add_watch(ino, path, IN_MODIFY);
	}
	if (fstat(f->fd, &st) < 0)
		return -1;
	if (!f->started) {
		f->sent = (uint64_t)st.st_size > FOLLOW_START ?
		    (uint64_t)st.st_size - FOLLOW_START : 0;
		f->started = 1;
		off = f->sent;
	}
	if ((uint64_t)st.st_size < off)
		return 0;		/* truncated: nothing new */
	if ((uint64_t)st.st_size - off > FOLLOW_BEHIND)
		off = (uint64_t)st.st_size - FOLLOW_BEHIND;	/* skip */
	*offp = off;
	if ((uint64_t)st.st_size - off < max)
		max = (size_t)((uint64_t)st.st_size - off);
	if (max == 0)
		return 0;
	while ((n = pread(f->fd, buf, max, (off_t)off)) < 0 && errno == EINTR)
		;
	return n;
}

/* Sends f's new bytes, if any and none are in flight. */
static void
follow_check(struct wfollow *f)
{
	static char	 buf[SIMQ_FOLLOW_CHUNK];
	struct wjob	*j;
	uint64_t	 off;
	ssize_t		 n;

	if (f->token != 0 || !conn_registered())
		return;
	if ((j = job_of(f)) == NULL || j->dropped) {
		follow_free(f);
		return;
	}
	if (j->state != WJ_RUNNING)
		return;		/* not started yet, or its end is sent */
	off = f->sent;
	if ((n = file_read(f, j, buf, sizeof buf, &off)) <= 0)
		return;
	f->sent = off;
	f->token = next_token++;
	f->pending = (size_t)n;
	conn_push(j->id, j->attempt, f->which, off, buf, (size_t)n, f->token);
}

static void
check_all(void)
{
	struct wfollow	*f, *next;

	for (f = TAILQ_FIRST(&follows); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		follow_check(f);
	}
}

static void
ino_cb(evutil_socket_t fd, short ev, void *arg)
{
	char	buf[4096] __attribute__((aligned(8)));

	while (read(ino, buf, sizeof buf) > 0)
		;
	check_all();
}

static void
poll_cb(evutil_socket_t fd, short ev, void *arg)
{
	check_all();
}

/* A "follow" or "unfollow" item from the broker. */
void
follow_item(struct proto_word *w, int n, int on)
{
	struct proto_word	 k, v;
	struct simq_id		 id;
	struct wfollow		*f;
	struct timeval		 tv;
	uint64_t		 att = 0;
	int			 i, have_id = 0, which = -1;

	for (i = 1; i < n; i++) {
		if (proto_kv(&w[i], &k, &v) < 0)
			continue;
		if (proto_word_is(&k, "id"))
			have_id = proto_parse_id(v.p, v.len, &id) == 0;
		else if (proto_word_is(&k, "attempt"))
			(void)proto_parse_u64(v.p, v.len, UINT32_MAX, &att);
		else if (proto_word_is(&k, "stream"))
			which = proto_word_is(&v, "stdout") ? 0 :
			    proto_word_is(&v, "stderr") ? 1 : -1;
	}
	if (!have_id || which < 0)
		return;
	TAILQ_FOREACH(f, &follows, entry)
		if (f->sid.id == id.id && f->sid.index == id.index &&
		    f->attempt == att && f->which == which)
			break;
	if (!on) {
		if (f != NULL) {
			log_verbose("job %llu: %s no longer followed",
			    (unsigned long long)id.id, which ? "stderr" :
			    "stdout");
			follow_free(f);
		}
		return;
	}
	if (f == NULL) {
		f = xcalloc(1, sizeof *f);
		f->sid = id;
		f->attempt = (uint32_t)att;
		f->which = which;
		f->fd = -1;
		f->wd = -1;
		TAILQ_INSERT_TAIL(&follows, f, entry);
		log_verbose("job %llu: %s followed", (unsigned long long)id.id,
		    which ? "stderr" : "stdout");
	}
	if (ino < 0 && ino_ev == NULL) {
		if ((ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) >= 0)
			ino_ev = event_new(W->base, ino, EV_READ | EV_PERSIST,
			    ino_cb, NULL);
		else
			ino_ev = event_new(W->base, -1, 0, poll_cb, NULL);
		if (ino >= 0)
			event_add(ino_ev, NULL);
		poll_ev = event_new(W->base, -1, EV_PERSIST, poll_cb, NULL);
	}
	if (!evtimer_pending(poll_ev, NULL)) {
		ms_to_tv(FOLLOW_POLL_MS, &tv);
		evtimer_add(poll_ev, &tv);
	}
	follow_check(f);
}

/* The broker's answer to PUSH token: "OK 1" (go on), "OK 0" (nobody
 * follows), else a refusal; NULL when the connection went. */
void
follow_answered(uint64_t token, const char *line, size_t len)
{
	struct wfollow	*f;

	if (token == 0)
		return;		/* a job's last bytes: nothing to do */
	TAILQ_FOREACH(f, &follows, entry)
		if (f->token == token)
			break;
	if (f == NULL)
		return;
	f->token = 0;
	if (line == NULL)
		return;			/* sent again after the reconnect */
	if (len == 4 && memcmp(line, "OK 1", 4) == 0) {
		f->sent += f->pending;
		f->pending = 0;
		follow_check(f);
		return;
	}
	log_verbose("job %llu: %s no longer followed (%.*s)",
	    (unsigned long long)f->sid.id, f->which ? "stderr" : "stdout",
	    (int)(len > 60 ? 60 : len), line);
	follow_free(f);
}

/* j ended and its report goes now: what is left of its followed files
 * goes first (pipelined), and following it ends. */
void
follow_job_ended(struct wjob *j)
{
	static char	 buf[SIMQ_FOLLOW_CHUNK];
	struct wfollow	*f, *next;
	uint64_t	 off;
	ssize_t		 n;

	for (f = TAILQ_FIRST(&follows); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		if (f->sid.id != j->sid.id || f->sid.index != j->sid.index ||
		    f->attempt != j->attempt)
			continue;
		/* A chunk in flight is sent again from its start: the
		 * broker drops what it already has. */
		off = f->sent;
		while ((n = file_read(f, j, buf, sizeof buf, &off)) > 0) {
			conn_push(j->id, j->attempt, f->which, off, buf,
			    (size_t)n, 0);
			off += (uint64_t)n;
		}
		follow_free(f);
	}
}

void
follow_free_all(void)
{
	while (!TAILQ_EMPTY(&follows))
		follow_free(TAILQ_FIRST(&follows));
	if (ino_ev != NULL)
		event_free(ino_ev);
	if (poll_ev != NULL)
		event_free(poll_ev);
	ino_ev = poll_ev = NULL;
	if (ino >= 0)
		close(ino);
	ino = -1;
}
