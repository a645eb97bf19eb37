/*
 * cmd_worker.c: what workers send: WORKER, TAKE, HEARTBEAT, FINISH, FAIL,
 * RELEASE.
 *
 * Taking is leasing: a job handed out in a TAKE reply is running, with a
 * new attempt number, before the reply exists, and the lease is journaled
 * in the same commit.  Reports are fenced by attempt: only the worker
 * holding the current attempt may end it.  A TAKE's ahead=N jobs, for a
 * worker's busy slots, go only while no other worker waits with a free
 * slot (B->idle_takes), at most SIMQ_AHEAD_PER_SLOT per slot.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "log.h"

/* Queues one TAKE may name: a worker's ordered list, not a catalogue. */
#define TAKE_QUEUES_MAX	64

static int	parse_held(const struct proto_word *, struct simq_id *,
		    uint64_t *);

static struct worker *
need_worker(struct conn *c)
{
	if (c->worker == NULL)
		conn_error(c, PERR_STATE, "send WORKER NAME first");
	return c->worker;
}

/* Checks a TAKE's queue list: comma-separated valid names. */
static int
queues_ok(const char *s, size_t len)
{
	size_t	i = 0, start = 0;
	int	n = 0;

	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == ',') {
			if (!proto_name_ok(s + start, i - start) ||
			    ++n > TAKE_QUEUES_MAX)
				return 0;
			start = i + 1;
		}
	}
	return 1;
}

/*
 * Whether w's name is held by another live worker, so that a newcomer
 * registering it (from host, with pid) must be refused rather than take
 * it over: two workers started with one --name would otherwise detach
 * each other for ever.  The name is free for the newcomer when w has no
 * connection or its connection is going (closed by the client, failed);
 * when the newcomer is the same process, host and pid alike (it lost its
 * connection and came back while this end still has it, half-open); and
 * when the connection has been silent for longer than w's lease (a live
 * worker sends HEARTBEAT every third of it: this one is gone or frozen).
 */
static int
worker_in_use(const struct worker *w, const char *host, uint32_t pid)
{
	const struct conn	*o = w->conn;

	if (o == NULL || o->eof || o->closing || o->dead)
		return 0;
	if (pid == w->pid && (host == NULL ? w->host == NULL :
	    w->host != NULL && strcmp(host, w->host) == 0))
		return 0;
	return B->now < w->seen + w->lease_ms;
}

void
h_worker(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct proto_word	 k, v;
	struct worker		*w;
	struct conn		*old;
	uint64_t		 slots = 0, lease = B->cfg.default_lease_ms, pid = 0;
	uint64_t		 cpus = UINT32_MAX, gpus = 0, mem = UINT64_MAX;
	char			*host = NULL, *queues = NULL, name[SIMQ_NAME_MAX + 1];
	int			 i;
	long			 n;

	if (!proto_worker_name_ok(r->args[0].p, r->args[0].len)) {
		conn_error(c, PERR_BADREQ, "bad worker name: use 1-%d of "
		    "[A-Za-z0-9._:@-]", SIMQ_NAME_MAX);
		return;
	}
	for (i = 1; i < r->nargs; i++) {
		if (proto_kv(&r->args[i], &k, &v) < 0)
			goto bad;
		if (proto_word_is(&k, "host")) {
			/* Decoded in a copy, so an error quotes the word. */
			free(host);
			host = xstrndup(v.p, v.len);
			if ((n = proto_decode(host, v.len)) <= 0 ||
			    n > SIMQ_NAME_MAX * 2 ||
			    memchr(host, '\0', (size_t)n) != NULL)
				goto bad;
			host[n] = '\0';
		} else if (proto_word_is(&k, "slots")) {
			if (arg_u64(&v, 1000000, &slots) < 0)
				goto bad;
		} else if (proto_word_is(&k, "lease")) {
			if (arg_u64(&v, LEASE_MAX_MS, &lease) < 0 ||
			    lease < LEASE_MIN_MS)
				goto bad;
		} else if (proto_word_is(&k, "pid")) {
			if (arg_u64(&v, UINT32_MAX, &pid) < 0)
				goto bad;
		} else if (proto_word_is(&k, "cpus")) {
			if (arg_u64(&v, SIMQ_CPUS_MAX, &cpus) < 0 || cpus == 0)
				goto bad;
		} else if (proto_word_is(&k, "gpus")) {
			if (arg_u64(&v, SIMQ_GPUS_MAX, &gpus) < 0)
				goto bad;
		} else if (proto_word_is(&k, "mem")) {
			if (arg_u64(&v, SIMQ_MEM_MAX, &mem) < 0)
				goto bad;
		} else if (proto_word_is(&k, "queues")) {
			if (!queues_ok(v.p, v.len))
				goto bad;
			free(queues);
			queues = xstrndup(v.p, v.len);
		} else
			goto bad;
	}
	memcpy(name, r->args[0].p, r->args[0].len);
	name[r->args[0].len] = '\0';
	if ((w = worker_get(name, 0)) != NULL && w->conn != c &&
	    worker_in_use(w, host, (uint32_t)pid)) {
		static uint64_t last_log;
		if (B->now >= last_log + 1000) {	/* a loop must not flood */
			log_warn("%s: refused WORKER %s (pid %llu on host %s): "
			    "the name is in use by pid %u on host %s, "
			    "connected from %s", c->peer, name,
			    (unsigned long long)pid, host ? host : "?", w->pid,
			    w->host ? w->host : "?", w->conn->peer);
			last_log = B->now;
		}
		conn_error(c, PERR_STATE, "name %s is in use by pid %u on "
		    "host %s", name, w->pid, w->host ? w->host : "?");
		free(host);
		free(queues);
		return;
	}
	w = worker_get(name, 1);
	if (c->worker != NULL && c->worker != w)
		worker_detach(c->worker);	/* renamed itself */
	if (host != NULL) {
		free(w->host);
		w->host = host;
		host = NULL;
	}
	free(w->queues);
	w->queues = queues;
	w->slots = (uint32_t)slots;
	w->cpus = (uint32_t)cpus;
	w->gpus = (uint32_t)gpus;
	w->mem = mem;
	w->time_left = UINT64_MAX;
	w->pid = (uint32_t)pid;
	w->lease_ms = lease;
	if ((old = worker_attach(w, c)) != NULL) {
		log_info("worker %s: reconnected from %s, detaching %s",
		    w->name, c->peer, old->peer);
		old->worker = NULL;
		conn_close(old);
	}
	if (c->worker != w) {
		worker_reattached(w);	/* a new connection */
		follow_worker_reset(w);
	}
	c->worker = w;
	log_info("worker %s connected from %s (%u slots, %u running)", w->name,
	    c->peer, w->slots, w->njobs);
	conn_reply(c, "OK %llu", (unsigned long long)lease);
	return;
bad:
	free(host);
	free(queues);
	conn_error(c, PERR_BADREQ, "bad option '%.*s': use host=H slots=N "
	    "lease=MS pid=P queues=Q,Q cpus=N gpus=N mem=BYTES",
	    (int)(r->args[i].len > 40 ? 40 : r->args[i].len), r->args[i].p);
}

/*
 * Tries to answer a TAKE: drops first, then up to max jobs from the queues
 * in order.  Returns 1 if it replied, 0 if there was nothing (and final is
 * not set).
 */
int
take_serve(struct conn *c, struct take_arg *t, int final)
{
	/* A client that has closed its side will never run a job, and a
	 * worker that lost a lease and has said nothing since may be frozen:
	 * neither gets one (only its drops). */
	if (c->eof || (c->worker != NULL && c->worker->suspect))
		t->max = 0;
	struct worker	*w = c->worker;
	struct job	*got[SIMQ_TAKE_MAX];
	struct evbuffer	*o, *items;
	uint32_t	 n = 0, limit = t->max, firm;
	int		 ndrops, i, reserved = 0;
	struct fit	 free, total;
	const char	*s = t->queues, *comma;

	if (w == NULL) {	/* detached by a newer connection */
		conn_error(c, PERR_STATE, "this worker reconnected elsewhere");
		return 1;
	}
	/* Jobs asked for ahead (ahead=K: for slots that are busy) go only
	 * while no other worker waits with a free slot, and a worker holds
	 * at most SIMQ_AHEAD_PER_SLOT ahead per slot: a job never waits behind a running
	 * one while a slot elsewhere could start it. */
	if (t->ahead > 0) {
		uint32_t cap = (1 + SIMQ_AHEAD_PER_SLOT) *
		    (w->slots ? w->slots : 1);
		uint32_t held = w->njobs - t->nending;	/* ending: not held */
		uint32_t room = held < cap ? cap - held : 0;

		if (B->idle_takes > (uint32_t)(c->parked == CMD_TAKE &&
		    t->idle))
			room = 0;
		limit = t->max - t->ahead + (room < t->ahead ? room : t->ahead);
	}
	/* The first max - ahead jobs fit what is free now; those ahead,
	 * for busy slots, what the worker could ever give one job, and it
	 * holds them until that is free (fit.c). */
	fit_worker(w, &total);	/* its time left now, this TAKE's time= */
	if (t->nending > 0)
		fit_free_ending(w, &t->ending, &free);
	else
		fit_free(w, &free);
	if (t->free.cpus < free.cpus)
		free.cpus = t->free.cpus;
	if (t->free.gpus < free.gpus)
		free.gpus = t->free.gpus;
	if (t->free.mem < free.mem)
		free.mem = t->free.mem;
	free.time = total.time;
	firm = t->max - t->ahead;
	while (n < limit && !reserved) {
		size_t len;
		struct queue *q;
		struct job *j;
		comma = strchr(s, ',');
		len = comma ? (size_t)(comma - s) : strlen(s);
		if ((q = queue_get(s, len, 0)) != NULL)
			while (n < limit && !reserved && (j = job_take(q, w,
			    n < firm ? &free : &total, &total,
			    &reserved)) != NULL) {
				if (n < firm)
					fit_take(&free, j->opts, &free);
				got[n++] = j;
			}
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	if (n == 0 && w->drops == NULL && !follow_pending(w) && !final)
		return 0;
	items = evbuffer_new();
	ndrops = reply_drops(items, w);
	ndrops += follow_notes(items, w);
	if (n > 0)
		follow_poke();	/* a FOLLOW may wait for one of these */
	for (i = 0; i < (int)n; i++)
		reply_take(items, got[i]);
	o = conn_outbuf(c);
	evbuffer_add_printf(o, "ITEMS %d\r\n", ndrops + (int)n);
	evbuffer_add_buffer(o, items);
	evbuffer_free(items);
	conn_reply_done(c);
	/* Leases alone may go before their commit (epoch.c); a drop is the
	 * outcome of a change, which waits for it. */
	for (i = 0; i < (int)n && got[i]->run->early; i++)
		;
	if (ndrops == 0 && i == (int)n && conn_reply_early(c))
		B->nearly += n;
	w->seen = B->now;
	return 1;
}

/*
 * TAKE's ending=ID:ATTEMPT[,ID:ATTEMPT...]: leases whose processes have
 * ended on the worker, whose FINISH, FAIL or RELEASE follows this TAKE on
 * the connection.  Sums into end what those still leased to w under that
 * attempt ask for (each counted once; any other is left out: it holds
 * nothing of w's) and their number into *n.  -1 for a malformed list.
 */
static int
ending_parse(struct worker *w, const struct proto_word *v, uint32_t *n,
    struct fit *end)
{
	struct job		*got[SIMQ_TAKE_ENDING_MAX], *j;
	struct proto_word	 one;
	struct simq_id		 id;
	uint64_t		 att;
	size_t			 i = 0, start = 0;
	int			 ngot = 0, nlisted = 0, k;

	for (i = 0; i <= v->len; i++) {
		if (i < v->len && v->p[i] != ',')
			continue;
		one.p = v->p + start;
		one.len = i - start;
		start = i + 1;
		if (++nlisted > SIMQ_TAKE_ENDING_MAX ||
		    parse_held(&one, &id, &att) < 0)
			return -1;
		if ((j = lookup_id(&id)) == NULL || j->kind == JK_ARRAY ||
		    j->state != JS_RUNNING || j->run->w != w ||
		    j->attempts != att)
			continue;
		for (k = 0; k < ngot && got[k] != j; k++)
			;
		if (k < ngot)
			continue;
		got[ngot++] = j;
		end->cpus += j->opts->cpus;
		end->gpus += j->opts->gpus;
		end->mem += j->opts->mem;
	}
	*n = (uint32_t)ngot;
	return 0;
}

void
h_take(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct worker	*w;
	struct take_arg	*t;
	struct proto_word k, v;
	uint64_t	 max, wait, ahead = 0, u;
	struct fit	 f, ending = { 0, 0, 0, 0 };
	uint32_t	 nending = 0;
	unsigned	 seen = 0;
	int		 i;

	if ((w = need_worker(c)) == NULL)
		return;
	if (arg_u64(&r->args[0], SIMQ_TAKE_MAX, &max) < 0 || max == 0) {
		conn_error(c, PERR_BADREQ, "MAX must be 1-%d", SIMQ_TAKE_MAX);
		return;
	}
	if (arg_u64(&r->args[1], SIMQ_MS_MAX, &wait) < 0) {
		conn_error(c, PERR_BADREQ, "bad WAIT-MS");
		return;
	}
	if (!queues_ok(r->args[2].p, r->args[2].len)) {
		conn_error(c, PERR_BADREQ, "bad queue list: up to %d names of "
		    "[A-Za-z0-9._-], comma-separated", TAKE_QUEUES_MAX);
		return;
	}
	/* Without cpus=, mem= or time= a worker is not limited by them;
	 * without gpus= it has none. */
	f.cpus = UINT32_MAX;
	f.gpus = 0;
	f.mem = f.time = UINT64_MAX;
	for (i = 3; i < r->nargs; i++) {
		if (proto_kv(&r->args[i], &k, &v) < 0)
			goto bad;
		if (proto_word_is(&k, "ahead") && !(seen & 1)) {
			if (arg_u64(&v, max, &ahead) < 0)
				goto bad;
			seen |= 1;
		} else if (proto_word_is(&k, "cpus") && !(seen & 2)) {
			if (arg_u64(&v, SIMQ_CPUS_MAX, &u) < 0)
				goto bad;
			f.cpus = (uint32_t)u;
			seen |= 2;
		} else if (proto_word_is(&k, "gpus") && !(seen & 4)) {
			if (arg_u64(&v, SIMQ_GPUS_MAX, &u) < 0)
				goto bad;
			f.gpus = (uint32_t)u;
			seen |= 4;
		} else if (proto_word_is(&k, "mem") && !(seen & 8)) {
			if (arg_u64(&v, SIMQ_MEM_MAX, &f.mem) < 0)
				goto bad;
			seen |= 8;
		} else if (proto_word_is(&k, "time") && !(seen & 16)) {
			if (arg_u64(&v, SIMQ_MS_MAX, &f.time) < 0)
				goto bad;
			seen |= 16;
		} else if (proto_word_is(&k, "ending") && !(seen & 32)) {
			if (ending_parse(w, &v, &nending, &ending) < 0)
				goto bad;
			seen |= 32;
		} else
			goto bad;
	}
	/* What the worker has left, for STATUS's reasons (fit_why). */
	w->time_left = f.time;
	w->time_at = B->now;
	t = xcalloc(1, sizeof *t);
	t->free = f;
	t->max = (uint32_t)max;
	t->ahead = (uint32_t)ahead;
	t->idle = t->max > t->ahead;
	t->queues = xstrndup(r->args[2].p, r->args[2].len);
	t->nending = nending;
	t->ending = ending;
	/* A TAKE with ending= is answered at once: the leases it names are
	 * vouched for now, by the reports right behind it, not later. */
	if (take_serve(c, t, wait == 0 || (seen & 32))) {
		free(t->queues);
		free(t);
		return;
	}
	cmd_park(c, CMD_TAKE, wait, t);
	return;
bad:
	conn_error(c, PERR_BADREQ, "bad '%.*s': use ahead=N (N at most MAX), "
	    "cpus=N, gpus=N, mem=BYTES, time=MS, ending=ID:ATTEMPT[,...] (at "
	    "most %d), each at most once",
	    (int)(r->args[i].len > 40 ? 40 : r->args[i].len), r->args[i].p,
	    SIMQ_TAKE_ENDING_MAX);
}

/* Parses "ID:ATTEMPT". */
static int
parse_held(const struct proto_word *w, struct simq_id *id, uint64_t *attempt)
{
	const char	*colon = memchr(w->p, ':', w->len);

	if (colon == NULL)
		return -1;
	if (proto_parse_id(w->p, (size_t)(colon - w->p), id) < 0)
		return -1;
	return proto_parse_u64(colon + 1, w->len - (size_t)(colon - w->p) - 1,
	    UINT32_MAX, attempt);
}

/*
 * HEARTBEAT's outerr=REASON: the worker's last failure to write a job's
 * output (empty: it has cleared), shown by WORKERS.  Returns 0 for such a
 * word (and, with w, records it), -1 for anything else.
 */
static int
heartbeat_note(const struct proto_word *word, struct worker *w)
{
	struct proto_word	k, v, tmp = *word;
	char			buf[PROTO_ENC_MAX(SIMQ_REASON_MAX) + 1];
	long			n;

	if (memchr(word->p, '=', word->len) == NULL ||
	    proto_kv(&tmp, &k, &v) < 0)
		return -1;
	if (proto_word_is(&k, "all") && v.len == 1 && v.p[0] == '1')
		return 0;	/* h_heartbeat's */
	if (!proto_word_is(&k, "outerr") ||
	    v.len > PROTO_ENC_MAX(SIMQ_REASON_MAX))
		return -1;
	memcpy(buf, v.p, v.len);
	if ((n = proto_decode(buf, v.len)) < 0 || n > SIMQ_REASON_MAX ||
	    memchr(buf, '\0', (size_t)n) != NULL)
		return -1;
	if (w == NULL)
		return 0;
	if (n == 0 && w->outerr != NULL)
		log_info("worker %s: job output is written again", w->name);
	else if (n > 0 && (w->outerr == NULL || strlen(w->outerr) !=
	    (size_t)n || memcmp(w->outerr, buf, (size_t)n) != 0))
		log_warn("worker %s: %.*s", w->name, (int)n, buf);
	free(w->outerr);
	w->outerr = n ? xstrndup(buf, (size_t)n) : NULL;
	return 0;
}

void
h_heartbeat(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct worker	*w;
	struct evbuffer	*items, *pend, *o;
	struct simq_id	 id;
	uint64_t	 att;
	struct job	*j;
	struct drop	*d;
	int		 i, n = 0, nd, all = 0;

	if ((w = need_worker(c)) == NULL)
		return;
	for (i = 0; i < r->nargs; i++) {
		if (heartbeat_note(&r->args[i], NULL) == 0)
			continue;
		if (parse_held(&r->args[i], &id, &att) < 0) {
			conn_error(c, PERR_BADREQ, "bad ID:ATTEMPT '%.*s'",
			    (int)(r->args[i].len > 40 ? 40 : r->args[i].len),
			    r->args[i].p);
			return;
		}
	}
	items = evbuffer_new();
	for (i = 0; i < r->nargs; i++) {
		const char *why;
		if (r->args[i].len == 5 && memcmp(r->args[i].p, "all=1", 5) == 0) {
			all = 1;
			continue;
		}
		if (heartbeat_note(&r->args[i], w) == 0)
			continue;
		parse_held(&r->args[i], &id, &att);
		j = lookup_id(&id);
		if (j != NULL && j->state == JS_RUNNING && j->run->w == w &&
		    j->attempts == att) {
			timer_renew(j, B->now + w->lease_ms);
			j->run->unconfirmed = 0;
			continue;
		}
		/* A lease a crash forgot (epoch.c): the job runs here. */
		if (j != NULL && j->kind != JK_ARRAY && j->state == JS_QUEUED &&
		    att > j->attempts && att <= (uint64_t)j->attempts +
		    j->skip) {
			job_reattach(j, w, (uint32_t)att);
			continue;
		}
		/* Already among the pending drops? Then it is said there. */
		for (d = w->drops; d != NULL; d = d->next)
			if (d->id == id.id && d->index == id.index &&
			    d->attempt == att)
				break;
		if (d != NULL)
			continue;
		why = j == NULL ? "unknown" : j->state == JS_CANCELED ?
		    "canceled" : "stale";
		evbuffer_add_printf(items, "drop");
		reply_id(items, "id", id.id, id.index);
		evbuffer_add_printf(items, " attempt=%llu reason=%s\r\n",
		    (unsigned long long)att, why);
		n++;
	}
	/* all=1: this line ends a listing of every job the worker holds. */
	if (all && worker_confirmed(w) > 0)
		timers_arm();
	pend = evbuffer_new();
	nd = reply_drops(pend, w);
	nd += follow_notes(pend, w);
	o = conn_outbuf(c);
	evbuffer_add_printf(o, "ITEMS %d\r\n", n + nd);
	evbuffer_add_buffer(o, pend);
	evbuffer_add_buffer(o, items);
	evbuffer_free(pend);
	evbuffer_free(items);
	conn_reply_done(c);
	w->seen = B->now;
	timers_arm();
}

/* The running attempt named by args[0] and args[1], if it is this
 * worker's current one; else replies with the error and returns NULL. */
static struct job *
current_attempt(struct conn *c, struct proto_req *r)
{
	struct simq_id	 id;
	uint64_t	 att;
	struct job	*j;

	if (need_worker(c) == NULL)
		return NULL;
	if (proto_parse_id(r->args[0].p, r->args[0].len, &id) < 0 ||
	    arg_u64(&r->args[1], UINT32_MAX, &att) < 0) {
		conn_error(c, PERR_BADREQ, "usage: %s",
		    proto_cmd_info(r->cmd)->usage);
		return NULL;
	}
	if ((j = lookup_id(&id)) == NULL || j->kind == JK_ARRAY) {
		conn_error(c, PERR_NOTFOUND, "no job %.*s",
		    (int)r->args[0].len, r->args[0].p);
		return NULL;
	}
	if (j->state != JS_RUNNING || j->run->w != c->worker ||
	    j->attempts != att) {
		conn_error(c, PERR_STALE, "attempt %llu is not the current "
		    "attempt of this worker (job is %s, attempt %u)",
		    (unsigned long long)att, proto_state_name(j->state),
		    j->attempts);
		return NULL;
	}
	return j;
}

/* Ends the running attempt of j with res and replies with its state. */
static void
attempt_end(struct conn *c, struct job *j, struct result *res, int ok)
{
	if (res->worker == NULL)
		res->worker = xstrdup(c->worker->name);
	if (res->host == NULL && c->worker->host != NULL)
		res->host = xstrdup(c->worker->host);
	job_end_attempt(j, res, ok);
	conn_reply(c, "OK %s", proto_state_name(j->state));
	timers_arm();
}

/*
 * The reason kept with an attempt whose output file could not be written
 * on the worker (outerr, taken over): the job was not stopped for it, so
 * a successful attempt is still done and keeps outerr as its note; a
 * failed one says why it failed first, as job_end_attempt() would.
 */
static char *
finish_note(const struct result *res, int ok, char *outerr)
{
	size_t	 n;
	char	*s;

	if (ok)
		return outerr;
	n = strlen(outerr) + 64;
	s = xmalloc(n);
	if (res->timedout)
		snprintf(s, n, "timed out; %s", outerr);
	else if (res->sig > 0)
		snprintf(s, n, "killed by signal %d; %s", res->sig, outerr);
	else
		snprintf(s, n, "exit status %d; %s", res->exit, outerr);
	free(outerr);
	return s;
}

/* The keys of a FINISH report, each allowed once. */
static const char *const finish_keys[] = {
	"outpath", "exit", "signal", "timedout", "start", "end", "utime",
	"stime", "maxrss", "out", "err", "res", "outerr", "oom", NULL
};

/* Largest values a report may give: times are ms since the epoch up to
 * the end of year 9999; CPU times (us) up to ten years; maxrss (KiB) up to
 * 1 PiB; signals are Linux's 1-64. */
#define REPORT_TIME_MAX		UINT64_C(253402300799999)
#define REPORT_CPU_MAX		(SIMQ_MS_MAX * 1000)
#define REPORT_RSS_MAX		(UINT64_C(1) << 40)
#define REPORT_SIG_MAX		64

void
h_finish(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct proto_word	 k, v;
	struct result		*res;
	struct job		*j;
	uint64_t		 val, out = 0, err = 0, pay = 0;
	int			 i, key, have_exit = 0, have_sig = 0, ok, oom = 0;
	unsigned		 seen = 0;
	long			 n;
	char			*path, *outerr = NULL;

	if ((j = current_attempt(c, r)) == NULL)
		return;
	res = xcalloc(1, sizeof *res);
	res->exit = -1;
	for (i = 2; i < r->nargs; i++) {
		if (proto_kv(&r->args[i], &k, &v) < 0)
			goto bad;
		for (key = 0; finish_keys[key] != NULL; key++)
			if (proto_word_is(&k, finish_keys[key]))
				break;
		if (finish_keys[key] == NULL) {
			/* got=, nomatch=, collerr=: repeatable (blob.c). */
			int taken = blob_finish_key(c, res, &k, &v);
			if (taken == 0)
				goto bad;
			if (taken < 0) {
				free(outerr);
				result_free(res);
				return;
			}
			continue;
		}
		if (seen & (1u << key)) {
			conn_error(c, PERR_BADREQ, "%s= given twice",
			    finish_keys[key]);
			free(outerr);
			result_free(res);
			return;
		}
		seen |= 1u << key;
		if (proto_word_is(&k, "outpath")) {
			/* Decoded in a copy: the word stays as sent, for the
			 * error message. */
			path = xstrndup(v.p, v.len);
			if ((n = proto_decode(path, v.len)) < 0 ||
			    memchr(path, '\0', (size_t)n) != NULL) {
				free(path);
				goto bad;
			}
			path[n] = '\0';
			if (n == 0) {
				free(path);
				path = NULL;
			}
			res->outpath = path;
			continue;
		}
		if (proto_word_is(&k, "outerr")) {
			/* In a copy too. */
			outerr = xstrndup(v.p, v.len);
			if ((n = proto_decode(outerr, v.len)) < 0 ||
			    n > SIMQ_REASON_MAX ||
			    memchr(outerr, '\0', (size_t)n) != NULL)
				goto bad;
			outerr[n] = '\0';
			if (n == 0) {
				free(outerr);
				outerr = NULL;
			}
			continue;
		}
		if (arg_u64(&v, UINT64_MAX, &val) < 0)
			goto bad;
		if (proto_word_is(&k, "exit") && val <= 255) {
			res->exit = (int32_t)val;
			have_exit = 1;
		} else if (proto_word_is(&k, "signal") && val > 0 &&
		    val <= REPORT_SIG_MAX) {
			res->sig = (int32_t)val;
			have_sig = 1;
		} else if (proto_word_is(&k, "timedout") && val <= 1)
			res->timedout = (uint32_t)val;
		else if (proto_word_is(&k, "start") && val > 0 &&
		    val <= REPORT_TIME_MAX)
			res->started = val;
		else if (proto_word_is(&k, "end") && val > 0 &&
		    val <= REPORT_TIME_MAX)
			res->ended = val;
		else if (proto_word_is(&k, "utime") && val <= REPORT_CPU_MAX)
			res->utime = val;
		else if (proto_word_is(&k, "stime") && val <= REPORT_CPU_MAX)
			res->stime = val;
		else if (proto_word_is(&k, "maxrss") && val <= REPORT_RSS_MAX)
			res->maxrss = val;
		else if (proto_word_is(&k, "out") && val <= SIMQ_TAIL_MAX)
			out = val;
		else if (proto_word_is(&k, "err") && val <= SIMQ_TAIL_MAX)
			err = val;
		else if (proto_word_is(&k, "res") && val <= SIMQ_PAYLOAD_MAX)
			pay = val;
		else if (proto_word_is(&k, "oom") && val <= 1)
			oom = (int)val;
		else
			goto bad;
	}
	if (have_exit == have_sig) {
		conn_error(c, PERR_BADREQ, "give exactly one of exit=N and "
		    "signal=N");
		free(outerr);
		result_free(res);
		return;
	}
	if (res->started && res->ended && res->started > res->ended) {
		conn_error(c, PERR_BADREQ, "start=%llu is after end=%llu",
		    (unsigned long long)res->started,
		    (unsigned long long)res->ended);
		free(outerr);
		result_free(res);
		return;
	}
	if (out + err + pay != blen) {
		conn_error(c, PERR_BODY, "body is %zu bytes but out+err+res is "
		    "%llu", blen, (unsigned long long)(out + err + pay));
		free(outerr);
		result_free(res);
		return;
	}
	/* Times the worker did not give: the lease's start, and now. */
	if (res->started == 0)
		res->started = j->run->started;
	if (res->ended == 0)
		res->ended = B->now;
	res->outlen = (uint32_t)out;
	res->errlen = (uint32_t)err;
	res->reslen = (uint32_t)pay;
	if (blen) {
		res->data = xmalloc(blen);
		memcpy(res->data, body, blen);
	}
	ok = have_exit && res->exit == 0 && !res->timedout;
	if (oom) {
		/* The worker's cgroup limit (memory.max) killed it. */
		char *m = xprintf("its memory went past its mem=%llu bytes",
		    (unsigned long long)j->opts->mem);
		if (outerr != NULL) {
			char *t = xprintf("%s; %s", m, outerr);
			free(m);
			free(outerr);
			m = t;
		}
		outerr = m;
	}
	if (outerr != NULL)
		res->reason = finish_note(res, ok, outerr);
	attempt_end(c, j, res, ok);
	return;
bad:
	conn_error(c, PERR_BADREQ, "bad report value '%.*s'",
	    (int)(r->args[i].len > 40 ? 40 : r->args[i].len), r->args[i].p);
	free(outerr);
	result_free(res);
}

void
h_fail(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct result	*res;
	struct job	*j;
	long		 n;

	if ((j = current_attempt(c, r)) == NULL)
		return;
	if ((n = proto_decode(r->args[2].p, r->args[2].len)) < 0 ||
	    n > SIMQ_REASON_MAX || memchr(r->args[2].p, '\0', (size_t)n)) {
		conn_error(c, PERR_BADREQ, "bad REASON (an encoded word of at "
		    "most %d bytes)", SIMQ_REASON_MAX);
		return;
	}
	res = xcalloc(1, sizeof *res);
	res->exit = -1;
	res->started = j->run->started;
	res->ended = B->now;
	res->reason = xstrndup(r->args[2].p, (size_t)n);
	attempt_end(c, j, res, 0);
}

void
h_release(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct proto_word	 k, v;
	struct job		*j;
	uint64_t		 lost = 0;

	if (r->nargs > 2 && (proto_kv(&r->args[2], &k, &v) < 0 ||
	    !proto_word_is(&k, "lost") || arg_u64(&v, 1, &lost) < 0)) {
		conn_error(c, PERR_BADREQ, "usage: %s",
		    proto_cmd_info(r->cmd)->usage);
		return;
	}
	if ((j = current_attempt(c, r)) == NULL)
		return;
	/* lost=1: the worker lost the job's shepherd process, which counts
	 * like losing the worker. */
	job_requeue(j, lost ? RQ_SHEPHERD_LOST : RQ_RELEASED, 0);
	conn_reply(c, "OK %s", proto_state_name(j->state));
	timers_arm();
}
