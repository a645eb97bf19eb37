/*
 * follow.c: a running job's output, followed as it is written (FOLLOW,
 * PUSH).
 *
 * The broker keeps nothing of a running job's output until someone asks.
 * A client's FOLLOW makes a stream (one job attempt, stdout or stderr)
 * and parks until it has bytes; the job's worker hears "follow" in the
 * reply to its parked TAKE (which ends at once for it) or its next
 * HEARTBEAT, and from then on PUSHes the new bytes of the job's output
 * file, a chunk at a time, each after the broker answered the one
 * before.  When no follower has asked for FOLLOW_LINGER_MS the worker
 * hears "unfollow" and stops; so a job nobody follows costs nothing.
 *
 * Memory is bounded whatever the job writes and however slowly its
 * followers read: a stream is a ring of FOLLOW_RING bytes (the newest;
 * a follower that fell behind skips ahead and is told how much it
 * missed), there are at most FOLLOW_STREAMS_MAX streams, and a follower
 * gets at most SIMQ_FOLLOW_CHUNK bytes per request (a follower that
 * does not read has one reply outstanding, under the connection's
 * back-pressure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "log.h"

/* Bytes of one stream kept: two chunks, so that a follower one reply
 * behind a fast job still reads on without a gap. */
#define FOLLOW_RING		(2u * SIMQ_FOLLOW_CHUNK)
/* Streams at once: 256 rings of 128 KiB is 32 MiB at worst. */
#define FOLLOW_STREAMS_MAX	256
/* A stream nobody asked for this long is unfollowed (a follower asks
 * again as soon as it has shown a reply). */
#define FOLLOW_LINGER_MS	3000
/* An ended stream is kept this long after its end or its last request,
 * for a follower still reading it (or fewer, when new streams need the
 * room). */
#define FOLLOW_KEEP_MS		60000
#define FOLLOW_TICK_MS		500
/* How long a FOLLOW parks when it does not say. */
#define FOLLOW_WAIT_MS		10000

struct fstream {
	TAILQ_ENTRY(fstream)	 entry;
	uint64_t		 id;
	uint32_t		 index;
	uint32_t		 attempt;
	int			 which;		/* 0 stdout, 1 stderr */
	char			*wname;		/* the worker running it */
	char			*ring;
	uint64_t		 start, end;	/* offsets of the ring's bytes */
	int			 have;		/* the worker sent something */
	int			 want;		/* followed */
	int			 told;		/* what the worker last heard */
	uint64_t		 asked;		/* a follower's last request */
	uint64_t		 ended;		/* when it was seen ended, or 0 */
};

static TAILQ_HEAD(, fstream)	 streams = TAILQ_HEAD_INITIALIZER(streams);
static uint32_t			 nstreams;
static struct event		*tick_ev;
static uint64_t			 bytes_in;	/* PUSHed by workers */
static int			 follow_wake;	/* a parked FOLLOW may go */

/* A parked FOLLOW. */
struct follow_arg {
	struct simq_id	 id;
	int		 which;
	int		 have_from;
	uint64_t	 from;
	uint32_t	 attempt;	/* of from; 0: none */
};

static const char *const stream_names[2] = { "stdout", "stderr" };

static int
stream_word(const struct proto_word *w)
{
	if (proto_word_is(w, "stdout"))
		return 0;
	if (proto_word_is(w, "stderr"))
		return 1;
	return -1;
}

static struct fstream *
stream_find(uint64_t id, uint32_t index, uint32_t attempt, int which)
{
	struct fstream	*s;

	TAILQ_FOREACH(s, &streams, entry)
		if (s->id == id && s->index == index && s->attempt == attempt &&
		    s->which == which)
			return s;
	return NULL;
}

static void
stream_free(struct fstream *s)
{
	TAILQ_REMOVE(&streams, s, entry);
	nstreams--;
	free(s->wname);
	free(s->ring);
	free(s);
}

/* The worker of w's name has something to hear: end its parked TAKE. */
static void
worker_wake(void)
{
	B->want_dispatch = 1;
}

static void	tick_cb(evutil_socket_t, short, void *);
static int	stream_live(const struct fstream *);

/* The stream of running job j's current attempt, made if need be (an
 * ended stream makes room at the limit); NULL at the limit. */
static struct fstream *
stream_get(const struct job *j, int which)
{
	struct fstream	*s, *old = NULL;
	struct timeval	 tv;

	if ((s = stream_find(j->id, j->index, j->attempts, which)) != NULL) {
		if (!s->want) {		/* unfollowed, and asked for again */
			s->want = 1;
			worker_wake();
		}
		return s;
	}
	if (nstreams >= FOLLOW_STREAMS_MAX) {
		TAILQ_FOREACH(s, &streams, entry)
			if (!stream_live(s) && (old == NULL ||
			    s->asked < old->asked))
				old = s;
		if (old == NULL)
			return NULL;
		stream_free(old);
	}
	s = xcalloc(1, sizeof *s);
	s->id = j->id;
	s->index = j->index;
	s->attempt = j->attempts;
	s->which = which;
	s->wname = xstrdup(j->run->w->name);
	s->ring = xmalloc(FOLLOW_RING);
	s->want = 1;
	s->asked = B->now;
	TAILQ_INSERT_TAIL(&streams, s, entry);
	nstreams++;
	log_debug("job %llu: %s followed", (unsigned long long)j->id,
	    stream_names[which]);
	worker_wake();
	if (tick_ev == NULL)
		tick_ev = event_new(B->base, -1, EV_PERSIST, tick_cb, NULL);
	if (!evtimer_pending(tick_ev, NULL)) {
		tv.tv_sec = 0;
		tv.tv_usec = FOLLOW_TICK_MS * 1000;
		evtimer_add(tick_ev, &tv);
	}
	return s;
}

/* Whether s's attempt is still running on its worker. */
static int
stream_live(const struct fstream *s)
{
	struct job	*j = idmap_get(s->id, s->index);

	return j != NULL && j->state == JS_RUNNING && j->attempts == s->attempt;
}

static void
ring_put(struct fstream *s, uint64_t off, const char *p, size_t len)
{
	size_t	at, n;

	if (!s->have || off > s->end) {
		/* The first bytes, or the worker skipped ahead. */
		s->start = s->end = off;
		s->have = 1;
	}
	if (off < s->end) {
		if (off + len <= s->end)
			return;
		p += s->end - off;
		len -= (size_t)(s->end - off);
	}
	if (len > FOLLOW_RING) {
		p += len - FOLLOW_RING;
		s->end += len - FOLLOW_RING;
		s->start = s->end;
		len = FOLLOW_RING;
	}
	while (len > 0) {
		at = (size_t)(s->end % FOLLOW_RING);
		n = FOLLOW_RING - at < len ? FOLLOW_RING - at : len;
		memcpy(s->ring + at, p, n);
		s->end += n;
		p += n;
		len -= n;
	}
	if (s->end - s->start > FOLLOW_RING)
		s->start = s->end - FOLLOW_RING;
}

/*
 * The notes for worker w: "follow" for each stream of its jobs that is
 * followed and it has not heard of, "unfollow" for one it follows that
 * nobody follows now.  Appends the items to o and returns how many.
 */
int
follow_notes(struct evbuffer *o, struct worker *w)
{
	struct fstream	*s;
	int		 n = 0;

	TAILQ_FOREACH(s, &streams, entry) {
		if (s->want == s->told || strcmp(s->wname, w->name) != 0)
			continue;
		evbuffer_add_printf(o, "%s", s->want ? "follow" : "unfollow");
		reply_id(o, "id", s->id, s->index);
		evbuffer_add_printf(o, " attempt=%u stream=%s\r\n", s->attempt,
		    stream_names[s->which]);
		s->told = s->want;
		n++;
	}
	return n;
}

int
follow_pending(const struct worker *w)
{
	struct fstream	*s;

	TAILQ_FOREACH(s, &streams, entry)
		if (s->want != s->told && strcmp(s->wname, w->name) == 0)
			return 1;
	return 0;
}

/* A worker connected anew: it has forgotten what it was told. */
void
follow_worker_reset(const struct worker *w)
{
	struct fstream	*s;

	TAILQ_FOREACH(s, &streams, entry)
		if (strcmp(s->wname, w->name) == 0)
			s->told = 0;
}

/* Unfollows what nobody asked for lately, forgets what ended. */
static void
tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct fstream	*s, *next;
	struct conn	*c;

	B->now = now_ms();
	TAILQ_FOREACH(c, &parked_conns, pentry) {
		struct follow_arg *a = c->park_arg;
		if (c->parked != CMD_FOLLOW)
			continue;
		TAILQ_FOREACH(s, &streams, entry)
			if (s->id == a->id.id && s->index == a->id.index &&
			    s->which == a->which)
				s->asked = B->now;
	}
	for (s = TAILQ_FIRST(&streams); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (!stream_live(s)) {
			/* Ended: kept for followers still catching up. */
			if (s->ended == 0)
				s->ended = B->now;
			if (B->now >= s->asked + FOLLOW_KEEP_MS &&
			    B->now >= s->ended + FOLLOW_KEEP_MS)
				stream_free(s);
			continue;
		}
		if (B->now < s->asked + FOLLOW_LINGER_MS)
			continue;
		{
			if (s->want) {
				s->want = 0;
				log_debug("job %llu: %s unfollowed",
				    (unsigned long long)s->id,
				    stream_names[s->which]);
				worker_wake();
			}
			if (s->told)
				continue;	/* until the worker hears */
		}
		stream_free(s);
	}
	if (nstreams == 0)
		evtimer_del(tick_ev);
}

/* The chunk item of a FOLLOW reply. */
static void
chunk_reply(struct conn *c, const struct job *j, uint32_t attempt, int state,
    uint64_t off, uint64_t skipped, const char *p, size_t len, int end)
{
	struct evbuffer	*o = conn_outbuf(c);

	evbuffer_add_printf(o, "ITEMS 1\r\nchunk");
	reply_id(o, "id", j->id, j->index);
	evbuffer_add_printf(o, " attempt=%u state=%s off=%llu len=%zu",
	    attempt, proto_state_name(state), (unsigned long long)off, len);
	if (skipped)
		reply_num(o, "skipped", skipped);
	if (end)
		evbuffer_add_printf(o, " end=1");
	reply_word(o, "data", p != NULL ? p : "", len);
	evbuffer_add(o, "\r\n", 2);
	conn_reply_done(c);
}

/* Replies with what s holds from the follower's offset on. */
static void
chunk_from_ring(struct conn *c, const struct job *j, struct fstream *s,
    struct follow_arg *a, int state, int end)
{
	static char	 buf[SIMQ_FOLLOW_CHUNK];
	uint64_t	 from = s->start, skipped = 0;
	size_t		 len, at, n, got = 0;

	if (a->have_from && a->attempt == s->attempt) {
		from = a->from;
		if (from < s->start) {
			skipped = s->start - from;
			from = s->start;
		}
		if (from > s->end)
			from = s->end;
	}
	len = s->end - from > SIMQ_FOLLOW_CHUNK ? SIMQ_FOLLOW_CHUNK :
	    (size_t)(s->end - from);
	while (got < len) {
		at = (size_t)((from + got) % FOLLOW_RING);
		n = FOLLOW_RING - at < len - got ? FOLLOW_RING - at : len - got;
		memcpy(buf + got, s->ring + at, n);
		got += n;
	}
	chunk_reply(c, j, s->attempt, state, from, skipped, buf, len,
	    end && from + len == s->end);
}

/*
 * A finished job whose stream was not followed to its end (the follower
 * fell so far behind that nobody followed it for a while, or it was
 * forgotten): the tail the broker keeps of every job.  Where the last
 * bytes the stream kept are found in the tail, only what comes after
 * them is sent, so the follower sees no byte twice; else the whole tail,
 * marked tail=1 (some bytes before it may be missing, or repeated).
 */
static void
tail_reply(struct conn *c, const struct job *j, struct follow_arg *a,
    const struct fstream *s)
{
	static char	 last[4096];
	const struct result *r = j->res;
	const char	*p = NULL, *hit;
	size_t		 len = 0, k, at, n, got;
	struct evbuffer	*o;

	if (r != NULL && r->data != NULL) {
		p = a->which ? r->data + r->outlen : r->data;
		len = a->which ? r->errlen : r->outlen;
	}
	if (!a->have_from) {
		chunk_reply(c, j, j->attempts, j->state, 0, 0, p, len, 1);
		return;
	}
	if (s != NULL && s->have && s->end > s->start && len > 0) {
		k = s->end - s->start < sizeof last ? (size_t)(s->end -
		    s->start) : sizeof last;
		for (got = 0; got < k; got += n) {
			at = (size_t)((s->end - k + got) % FOLLOW_RING);
			n = FOLLOW_RING - at < k - got ? FOLLOW_RING - at :
			    k - got;
			memcpy(last + got, s->ring + at, n);
		}
		if ((hit = memmem(p, len, last, k)) != NULL) {
			/* Output that repeats itself may match earlier
			 * than where the follower is: then bytes repeat,
			 * none is lost. */
			at = (size_t)(hit - p) + k;
			chunk_reply(c, j, s->attempt, j->state, s->end, 0,
			    p + at, len - at, 1);
			return;
		}
	}
	o = conn_outbuf(c);
	evbuffer_add_printf(o, "ITEMS 1\r\nchunk");
	reply_id(o, "id", j->id, j->index);
	evbuffer_add_printf(o, " attempt=%u state=%s off=0 len=%zu tail=1 "
	    "end=1", j->attempts, proto_state_name(j->state), len);
	reply_word(o, "data", p != NULL ? p : "", len);
	evbuffer_add(o, "\r\n", 2);
	conn_reply_done(c);
}

/*
 * Answers a FOLLOW if it can (or, final, with what there is).  Returns
 * 1 when it replied.
 */
static int
follow_try(struct conn *c, struct follow_arg *a, int final)
{
	struct job	*j = lookup_id(&a->id), *arr;
	struct fstream	*s;
	int		 st;

	if (j == NULL) {
		if ((arr = lookup_pending_task(&a->id, &st)) != NULL) {
			if (!final)
				return 0;	/* waits to be taken */
			{
				struct job t;
				memset(&t, 0, sizeof t);
				t.id = a->id.id;
				t.index = a->id.index;
				chunk_reply(c, &t, 0, st, 0, 0, NULL, 0,
				    job_finished_state(st));
			}
			return 1;
		}
		conn_error(c, PERR_NOTFOUND, "no job %llu",
		    (unsigned long long)a->id.id);
		return 1;
	}
	if (j->state == JS_RUNNING) {
		if (a->have_from && a->attempt != j->attempts)
			a->have_from = 0;	/* a new attempt: from its start */
		if ((s = stream_get(j, a->which)) == NULL) {
			conn_error(c, PERR_LIMIT, "%d outputs are followed "
			    "already; try again later", FOLLOW_STREAMS_MAX);
			return 1;
		}
		s->asked = B->now;
		if (s->have && (!a->have_from || a->from < s->end)) {
			chunk_from_ring(c, j, s, a, JS_RUNNING, 0);
			return 1;
		}
		if (!final)
			return 0;
		chunk_reply(c, j, j->attempts, JS_RUNNING, s->have ? s->end :
		    0, 0, NULL, 0, 0);
		return 1;
	}
	/* Not running: what the ended attempt's stream still holds... */
	s = stream_find(j->id, j->index, a->have_from ? a->attempt :
	    j->attempts, a->which);
	if (s != NULL && s->have && (!a->have_from || a->from < s->end)) {
		chunk_from_ring(c, j, s, a, j->state, job_finished(j) &&
		    s->want);
		return 1;
	}
	if (!job_finished(j)) {
		/* Waiting or queued (again): park until it runs. */
		if (!final)
			return 0;
		chunk_reply(c, j, j->attempts, j->state, 0, 0, NULL, 0, 0);
		return 1;
	}
	/* ...else, finished: a stream followed to the end has said all;
	 * else the kept tail, less what the follower has already seen. */
	if (s != NULL && s->want && s->have) {
		chunk_reply(c, j, s->attempt, j->state, s->end, 0, NULL, 0, 1);
		return 1;
	}
	tail_reply(c, j, a, s);
	return 1;
}

int
follow_serve(struct conn *c, int final)
{
	return follow_try(c, c->park_arg, final);
}

/* Whether a parked FOLLOW should be looked at in this pass. */
int
follow_woken(void)
{
	int	w = follow_wake;

	follow_wake = 0;
	return w;
}

/* A job changed hands or ended: followers may have something to hear. */
void
follow_poke(void)
{
	if (nstreams > 0 || !TAILQ_EMPTY(&parked_conns))
		follow_wake = 1;
}

void
h_follow(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct follow_arg	*a;
	struct proto_word	 k, v;
	uint64_t		 wait = FOLLOW_WAIT_MS, n;
	int			 i;

	a = xcalloc(1, sizeof *a);
	if (proto_parse_id(r->args[0].p, r->args[0].len, &a->id) < 0) {
		conn_error(c, PERR_BADREQ, "bad job id '%.*s'",
		    (int)(r->args[0].len > 40 ? 40 : r->args[0].len),
		    r->args[0].p);
		free(a);
		return;
	}
	if ((a->which = stream_word(&r->args[1])) < 0) {
		conn_error(c, PERR_BADREQ, "say stdout or stderr");
		free(a);
		return;
	}
	for (i = 2; i < r->nargs; i++) {
		if (proto_kv(&r->args[i], &k, &v) < 0)
			goto bad;
		if (proto_word_is(&k, "from")) {
			if (arg_u64(&v, UINT64_MAX / 2, &a->from) < 0)
				goto bad;
			a->have_from = 1;
		} else if (proto_word_is(&k, "attempt")) {
			if (arg_u64(&v, UINT32_MAX, &n) < 0)
				goto bad;
			a->attempt = (uint32_t)n;
		} else if (proto_word_is(&k, "wait")) {
			if (arg_u64(&v, SIMQ_MS_MAX, &wait) < 0)
				goto bad;
		} else
			goto bad;
	}
	if (a->id.index == SIMQ_NOINDEX && idmap_get(a->id.id,
	    SIMQ_NOINDEX) != NULL && idmap_get(a->id.id,
	    SIMQ_NOINDEX)->kind == JK_ARRAY) {
		conn_error(c, PERR_BADREQ, "%llu is an array: follow one of "
		    "its tasks", (unsigned long long)a->id.id);
		free(a);
		return;
	}
	if (follow_try(c, a, wait == 0)) {
		free(a);
		return;
	}
	cmd_park(c, CMD_FOLLOW, wait, a);
	return;
bad:
	conn_error(c, PERR_BADREQ, "bad '%.*s': use from=OFFSET attempt=N "
	    "wait=MS", (int)(r->args[i].len > 40 ? 40 : r->args[i].len),
	    r->args[i].p);
	free(a);
}

void
h_push(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct simq_id	 id;
	struct fstream	*s;
	uint64_t	 att, off;
	int		 which;

	if (c->worker == NULL) {
		conn_error(c, PERR_STATE, "send WORKER NAME first");
		return;
	}
	if (proto_parse_id(r->args[0].p, r->args[0].len, &id) < 0 ||
	    arg_u64(&r->args[1], UINT32_MAX, &att) < 0 ||
	    (which = stream_word(&r->args[2])) < 0 ||
	    arg_u64(&r->args[3], UINT64_MAX / 2, &off) < 0) {
		conn_error(c, PERR_BADREQ, "usage: %s",
		    proto_cmd_info(r->cmd)->usage);
		return;
	}
	bytes_in += blen;
	s = stream_find(id.id, id.index, (uint32_t)att, which);
	if (s == NULL || !s->want || strcmp(s->wname, c->worker->name) != 0) {
		conn_reply(c, "OK 0");		/* nobody follows it */
		return;
	}
	ring_put(s, off, body, blen);
	follow_wake = 1;
	conn_reply(c, "OK 1");
}

/* For STATS. */
void
follow_stats(uint64_t *followed, uint64_t *bytes)
{
	struct fstream	*s;

	*followed = 0;
	TAILQ_FOREACH(s, &streams, entry)
		if (s->want && stream_live(s))
			(*followed)++;
	*bytes = bytes_in;
}

void
follow_free_all(void)
{
	while (!TAILQ_EMPTY(&streams))
		stream_free(TAILQ_FIRST(&streams));
	if (tick_ev != NULL)
		event_free(tick_ev);
	tick_ev = NULL;
}
