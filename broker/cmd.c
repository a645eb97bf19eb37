/*
 * cmd.c: the command table's handlers.
 *
 * proto_req_parse() has already checked the verb and the argument count
 * against the shared table in proto/, so a handler starts from a request
 * of the right shape and only checks values.  Each handler answers with
 * exactly one reply.  A handler never writes to the socket: replies wait
 * in the connection's pending buffer until the pass's journal commit.
 *
 * TAKE and WAIT may park: their reply is held, without polling, until the
 * event they wait for or their deadline; the connection reads nothing more
 * meanwhile, so replies stay in order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "log.h"

struct connlist parked_conns = TAILQ_HEAD_INITIALIZER(parked_conns);

/* How a parked TAKE remembers its request. */
struct take_arg {
	uint32_t	 max;
	char		*queues;	/* "a,b,c" */
};

/* A parked WAIT's ids. */
struct wait_arg {
	int		 n;
	struct simq_id	 ids[];
};

/* Queues one TAKE may name: a worker's ordered list, not a catalogue. */
#define TAKE_QUEUES_MAX	64

/* LIST pages: enough for a screen or a script, bounded per reply. */
#define LIST_DEFAULT	1000
#define LIST_MAX	100000

/* WAIT's longest hold; clients loop for longer waits. */
#define WAIT_MAX_MS	3600000

/* Lease lengths a worker may ask for. */
#define LEASE_MIN_MS	1000
#define LEASE_MAX_MS	3600000

/*
 * Output helpers.
 */

/* Appends " key=" and s encoded as a word. */
static void
put_word(struct evbuffer *o, const char *key, const void *s, size_t len)
{
	static char	*tmp;
	static size_t	 cap;
	size_t		 n;

	if (cap < PROTO_ENC_MAX(len) + 1) {
		free(tmp);
		cap = PROTO_ENC_MAX(len) + 1;
		tmp = xmalloc(cap);
	}
	n = proto_encode(tmp, s, len);
	if (key != NULL)
		evbuffer_add_printf(o, " %s=", key);
	else
		evbuffer_add(o, " ", 1);
	evbuffer_add(o, tmp, n);
}

static void
put_str(struct evbuffer *o, const char *key, const char *s)
{
	if (s != NULL)
		put_word(o, key, s, strlen(s));
}

static void
put_num(struct evbuffer *o, const char *key, uint64_t v)
{
	evbuffer_add_printf(o, " %s=%llu", key, (unsigned long long)v);
}

/* Writes " -- ARG..." with, for a task, every "{}" replaced by its
 * index. */
static void
put_argv(struct evbuffer *o, const struct job *j)
{
	const struct cmd	*c = j->kind == JK_TASK ? j->parent->cmd : j->cmd;
	const char		*p = c->data, *q;
	char			 idx[16];
	uint32_t		 i;
	struct buf		 b;

	evbuffer_add(o, " --", 3);
	snprintf(idx, sizeof idx, "%u", j->index);
	buf_init(&b);
	for (i = 0; i < c->argc; i++) {
		size_t len = strlen(p);
		if (j->kind != JK_TASK || strstr(p, "{}") == NULL) {
			put_word(o, NULL, p, len);
		} else {
			buf_reset(&b);
			for (q = p; *q != '\0'; q++) {
				if (q[0] == '{' && q[1] == '}') {
					buf_put(&b, idx, strlen(idx));
					q++;
				} else
					buf_put_u8(&b, (uint8_t)*q);
			}
			put_word(o, NULL, b.p, b.len);
		}
		p += len + 1;
	}
	buf_free(&b);
}

static void
put_id(struct evbuffer *o, const char *key, uint64_t id, uint32_t index)
{
	char	buf[32];

	proto_format_id(buf, id, index);
	evbuffer_add_printf(o, " %s=%s", key, buf);
}

/* A "job" or "array" status item, without its line end. */
static void
put_status(struct evbuffer *o, const struct job *j)
{
	const struct jobopts	*op = j->opts;
	const struct result	*r = j->res;
	int			 s;

	if (j->kind == JK_ARRAY) {
		const struct array *a = j->arr;
		char spec[64];
		evbuffer_add_printf(o, "array");
		put_id(o, "id", j->id, SIMQ_NOINDEX);
		evbuffer_add_printf(o, " state=%s",
		    proto_state_name(job_array_state(j)));
		put_str(o, "q", op->q->name);
		evbuffer_add_printf(o, " pri=%lld", (long long)op->prio);
		put_num(o, "tasks", a->ntasks);
		for (s = 0; s < JS__COUNT; s++)
			put_num(o, proto_state_name(s), a->count[s]);
		if (a->spec.maxrun)
			snprintf(spec, sizeof spec, "%u-%u:%u%%%u",
			    a->spec.first, a->spec.last, a->spec.step,
			    a->spec.maxrun);
		else
			snprintf(spec, sizeof spec, "%u-%u:%u", a->spec.first,
			    a->spec.last, a->spec.step);
		put_str(o, "spec", spec);
	} else {
		evbuffer_add_printf(o, "job");
		put_id(o, "id", j->id, j->index);
		evbuffer_add_printf(o, " state=%s", proto_state_name(j->state));
		put_str(o, "q", op->q->name);
		evbuffer_add_printf(o, " pri=%lld", (long long)op->prio);
		put_num(o, "attempts", j->attempts);
	}
	put_num(o, "retries", op->retries);
	put_str(o, "name", op->name);
	put_num(o, "submitted", j->submitted);
	if (j->run != NULL) {
		put_num(o, "started", j->run->started);
		put_str(o, "worker", j->run->w->name);
		put_str(o, "host", j->run->w->host);
	}
	if (r != NULL) {
		if (j->run == NULL && r->started)
			put_num(o, "started", r->started);
		if ((j->kind == JK_ARRAY || job_finished(j)) && r->finished)
			put_num(o, "finished", r->finished);
		if (r->exit >= 0)
			put_num(o, "exit", (uint64_t)r->exit);
		if (r->sig > 0)
			put_num(o, "signal", (uint64_t)r->sig);
		if (r->timedout)
			put_num(o, "timedout", 1);
		if (j->run == NULL) {
			put_str(o, "worker", r->worker);
			put_str(o, "host", r->host);
		}
		put_str(o, "reason", r->reason);
		put_str(o, "outpath", r->outpath);
		if (r->maxrss)
			put_num(o, "maxrss", r->maxrss);
		if (r->utime || r->stime) {
			put_num(o, "utime", r->utime);
			put_num(o, "stime", r->stime);
		}
	}
	if (j->ndeps_left > 0 && op->ndeps > 0) {
		uint32_t i;
		evbuffer_add_printf(o, " after=");
		for (i = 0; i < op->ndeps; i++) {
			char id[32];
			proto_format_id(id, op->deps[i].id, op->deps[i].index);
			evbuffer_add_printf(o, "%s%s", i ? "," : "", id);
		}
	}
	if (j->state == JS_WAITING && j->due > B->now)
		put_num(o, "due", j->due);
	put_argv(o, j);
}

/* A job item for TAKE: everything the worker needs to run it. */
static void
put_take(struct evbuffer *o, const struct job *j)
{
	const struct jobopts	*op = j->opts;
	uint32_t		 i;

	evbuffer_add_printf(o, "job");
	put_id(o, "id", j->id, j->index);
	put_num(o, "attempt", j->attempts);
	put_str(o, "q", op->q->name);
	put_num(o, "timeout", op->timeout_ms);
	if (j->kind == JK_TASK)
		put_num(o, "index", j->index);
	put_str(o, "name", op->name);
	put_str(o, "cwd", op->cwd);
	put_str(o, "output", op->output);
	for (i = 0; i < op->nenv; i++)
		put_str(o, "env", op->env[i]);
	put_argv(o, j);
	evbuffer_add(o, "\r\n", 2);
}

/*
 * Argument helpers.
 */

static int
arg_u64(const struct proto_word *w, uint64_t max, uint64_t *v)
{
	return proto_parse_u64(w->p, w->len, max, v);
}

/* Parses ids into a new array; NULL (with an error reply sent) if one is
 * malformed. */
static struct simq_id *
parse_ids(struct conn *c, struct proto_word *w, int n)
{
	struct simq_id	*ids = xcalloc((size_t)n, sizeof *ids);
	int		 i;

	for (i = 0; i < n; i++) {
		if (proto_parse_id(w[i].p, w[i].len, &ids[i]) < 0) {
			conn_error(c, PERR_BADREQ, "bad job id '%.*s'",
			    (int)(w[i].len > 40 ? 40 : w[i].len), w[i].p);
			free(ids);
			return NULL;
		}
	}
	return ids;
}

static struct job *
lookup(const struct simq_id *id)
{
	return idmap_get(id->id, id->index);
}

/*
 * For a task id with no record yet: its array, if the index is one of the
 * array's tasks not yet materialised, and the state the task is in (that
 * of the array's pending block, or of its canceled or failed rest).
 */
static struct job *
lookup_pending_task(const struct simq_id *id, int *state)
{
	struct job		*a;
	const struct array	*arr;
	uint64_t		 pos;

	if (id->index == SIMQ_NOINDEX ||
	    (a = idmap_get(id->id, SIMQ_NOINDEX)) == NULL ||
	    a->kind != JK_ARRAY)
		return NULL;
	arr = a->arr;
	if (id->index < arr->spec.first || id->index > arr->spec.last ||
	    (id->index - arr->spec.first) % arr->spec.step != 0)
		return NULL;
	pos = (id->index - arr->spec.first) / arr->spec.step;
	if (pos < arr->cursor)
		return NULL;
	*state = pos < arr->cut ? a->state : arr->cut_state;
	return a;
}

/* The state of whatever id names, or -1 if nothing. */
static int
id_state(const struct simq_id *id)
{
	struct job	*j = lookup(id);
	int		 st;

	if (j != NULL)
		return j->kind == JK_ARRAY ? job_array_state(j) : j->state;
	if (lookup_pending_task(id, &st) != NULL)
		return st;
	return -1;
}

/* A status item for a task that has no record yet. */
static void
put_pending_task(struct evbuffer *o, const struct job *a,
    const struct simq_id *id, int state)
{
	evbuffer_add_printf(o, "job");
	put_id(o, "id", id->id, id->index);
	evbuffer_add_printf(o, " state=%s", proto_state_name(state));
	put_str(o, "q", a->opts->q->name);
	evbuffer_add_printf(o, " pri=%lld attempts=0", (long long)a->opts->prio);
	put_num(o, "retries", a->opts->retries);
	put_str(o, "name", a->opts->name);
	put_num(o, "submitted", a->submitted);
	{
		struct job t;
		memset(&t, 0, sizeof t);
		t.kind = JK_TASK;
		t.parent = (struct job *)a;
		t.index = id->index;
		put_argv(o, &t);
	}
}

/*
 * Session.
 */

static void
h_hello(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	uint64_t	v;

	if (arg_u64(&r->args[0], UINT32_MAX, &v) < 0 || v != SIMQ_PROTO_VERSION) {
		conn_error(c, PERR_VERSION, "this broker speaks version %d",
		    SIMQ_PROTO_VERSION);
		return;
	}
	if (B->cfg.token != NULL) {
		long n = r->nargs > 1 ? proto_decode(r->args[1].p,
		    r->args[1].len) : -1;
		if (n < 0 || !token_equal(r->args[1].p, (size_t)n, B->cfg.token,
		    strlen(B->cfg.token))) {
			log_warn("%s: wrong or missing token", c->peer);
			conn_error(c, PERR_AUTH, "wrong or missing token");
			c->closing = 1;
			return;
		}
	}
	c->authed = 1;
	conn_reply(c, "OK simq %d", SIMQ_PROTO_VERSION);
}

static void
h_ping(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	conn_reply(c, "OK");
}

static void
h_quit(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	conn_reply(c, "OK");
	c->closing = 1;
}

/*
 * Submitting.
 */

static struct proto_jobopts	jopts;	/* big: one, not on the stack */
static char			errmsg[256];

/* Parses and checks job options; sends the error reply on failure.  The
 * queue is not made yet (a refused request must change nothing): call
 * opts_queue() once everything else is checked. */
static struct jobopts *
opts_make(struct conn *c, struct proto_word *w, int n)
{
	struct jobopts	*o;
	enum proto_err	 e;

	if ((e = proto_jobopts_parse(&jopts, w, n, errmsg,
	    sizeof errmsg)) != PERR_NONE) {
		conn_error(c, e, "%s", errmsg);
		return NULL;
	}
	o = jobopts_new(&jopts, NULL);
	if ((e = job_deps_check(o, errmsg, sizeof errmsg)) != PERR_NONE) {
		conn_error(c, e, "%s", errmsg);
		jobopts_unref(o);
		return NULL;
	}
	return o;
}

/* Gives o its queue, creating it; NULL (with the reply sent, o released)
 * when the queue limit is reached. */
static struct jobopts *
opts_queue(struct conn *c, struct jobopts *o)
{
	if ((o->q = queue_get(jopts.queue.p, jopts.queue.len, 1)) == NULL) {
		conn_error(c, PERR_LIMIT, "too many queues (limit %d)",
		    SIMQ_QUEUES_MAX);
		jobopts_unref(o);
		return NULL;
	}
	return jobopts_intern(o);
}

static void
h_submit(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct jobopts	*o;
	struct cmd	*cmd;
	struct buf	 b;
	uint64_t	 id, nb;
	int		 i, dd = -1;

	for (i = 0; i < r->nargs; i++) {
		if (proto_word_is(&r->args[i], "--")) {
			dd = i;
			break;
		}
	}
	if (dd < 0 || dd == r->nargs - 1) {
		conn_error(c, PERR_BADREQ, "usage: %s",
		    proto_cmd_info(CMD_SUBMIT)->usage);
		return;
	}
	if ((o = opts_make(c, r->args, dd)) == NULL)
		return;
	if ((cmd = cmd_from_words(r->args + dd + 1, r->nargs - dd - 1)) == NULL) {
		conn_error(c, PERR_BADREQ, "malformed command argument");
		jobopts_unref(o);
		return;
	}
	if (B->next_id > SIMQ_ID_MAX) {
		conn_error(c, PERR_LIMIT, "job ids are exhausted");
		jobopts_unref(o);
		free(cmd);
		return;
	}
	if ((o = opts_queue(c, o)) == NULL) {
		free(cmd);
		return;
	}
	id = B->next_id;
	nb = jopts.delay_ms ? B->now + jopts.delay_ms : 0;
	buf_init(&b);
	rec_submit(&b, id, 1, o, &cmd, jopts.has_array ? &jopts.array : NULL,
	    B->now, nb);
	journal_put(REC_SUBMIT, &b);
	job_submit(id, o, cmd, jopts.has_array ? &jopts.array : NULL, B->now,
	    nb);
	conn_reply(c, "OK %llu", (unsigned long long)id);
}

static void
h_batch(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	static struct proto_word	 words[SIMQ_WORDS_MAX];
	struct jobopts			*o;
	struct cmd			**cmds = NULL;
	size_t				 n = 0, cap = 0, lineno = 0, i;
	char				*p = body, *end = body + blen, *nl;
	uint64_t			 first, nb;
	struct buf			 b;

	if ((o = opts_make(c, r->args, r->nargs)) == NULL)
		return;
	if (jopts.has_array) {
		conn_error(c, PERR_BADREQ, "array= is not allowed in BATCH");
		goto out;
	}
	for (; p < end; p = nl + 1) {
		size_t len;
		int nw;
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		len = (size_t)(nl - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if ((nw = proto_split(p, len, words, SIMQ_WORDS_MAX)) < 0) {
			conn_error(c, PERR_BODY, "line %zu: too many words",
			    lineno);
			goto out;
		}
		if (nw == 0)
			continue;	/* blank lines are skipped */
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			cmds = realloc(cmds, cap * sizeof *cmds);
			if (cmds == NULL)
				fatal("batch: out of memory");
		}
		if ((cmds[n] = cmd_from_words(words, nw)) == NULL) {
			conn_error(c, PERR_BODY, "line %zu: malformed argument",
			    lineno);
			goto out;
		}
		n++;
	}
	if (n == 0) {
		conn_error(c, PERR_BODY, "the batch holds no command");
		goto out;
	}
	if (B->next_id + n - 1 > SIMQ_ID_MAX) {
		conn_error(c, PERR_LIMIT, "job ids are exhausted");
		goto out;
	}
	if ((o = opts_queue(c, o)) == NULL)
		goto out;
	first = B->next_id;
	nb = jopts.delay_ms ? B->now + jopts.delay_ms : 0;
	buf_init(&b);
	rec_submit(&b, first, (uint32_t)n, o, cmds, NULL, B->now, nb);
	journal_put(REC_SUBMIT, &b);
	for (i = 0; i < n; i++) {
		o->refs++;
		job_submit(first + i, o, cmds[i], NULL, B->now, nb);
	}
	conn_reply(c, "OK %llu %zu", (unsigned long long)first, n);
	n = 0;		/* the jobs own the commands now */
out:
	for (i = 0; i < n; i++)
		free(cmds[i]);
	free(cmds);
	jobopts_unref(o);
}

/*
 * Working.
 */

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

static void
h_worker(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct proto_word	 k, v;
	struct worker		*w;
	uint64_t		 slots = 0, lease = B->cfg.default_lease_ms, pid = 0;
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
			if ((n = proto_decode(v.p, v.len)) <= 0 ||
			    n > SIMQ_NAME_MAX * 2)
				goto bad;
			free(host);
			host = xstrndup(v.p, (size_t)n);
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
	w->pid = (uint32_t)pid;
	w->lease_ms = lease;
	worker_attach(w, c);
	log_info("worker %s connected from %s (%u slots, %u running)", w->name,
	    c->peer, w->slots, w->njobs);
	conn_reply(c, "OK %llu", (unsigned long long)lease);
	return;
bad:
	free(host);
	free(queues);
	conn_error(c, PERR_BADREQ, "bad option '%.*s': use host=H slots=N "
	    "lease=MS pid=P queues=Q,Q", (int)(r->args[i].len > 40 ? 40 : r->args[i].len),
	    r->args[i].p);
}

/* Writes the worker's pending drops as items; returns how many.  They are
 * forgotten once written: the reply carries them. */
static int
put_drops(struct evbuffer *o, struct worker *w)
{
	struct drop	*d;
	int		 n = 0;

	while ((d = w->drops) != NULL) {
		w->drops = d->next;
		evbuffer_add_printf(o, "drop");
		put_id(o, "id", d->id, d->index);
		evbuffer_add_printf(o, " attempt=%u reason=%s\r\n", d->attempt,
		    d->reason);
		free(d);
		n++;
	}
	return n;
}

/*
 * Tries to answer a TAKE: drops first, then up to max jobs from the queues
 * in order.  Returns 1 if it replied, 0 if there was nothing (and final is
 * not set).
 */
static int
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
	uint32_t	 n = 0;
	int		 ndrops, i;
	const char	*s = t->queues, *comma;

	if (w == NULL) {	/* detached by a newer connection */
		conn_error(c, PERR_STATE, "this worker reconnected elsewhere");
		return 1;
	}
	while (n < t->max) {
		size_t len;
		struct queue *q;
		struct job *j;
		comma = strchr(s, ',');
		len = comma ? (size_t)(comma - s) : strlen(s);
		q = queue_get(s, len, 0);
		if (q != NULL && !q->paused) {
			while (n < t->max && (j = queue_take(q)) != NULL) {
				job_lease(j, w, j->attempts + 1, B->now,
				    B->now + w->lease_ms);
				got[n++] = j;
			}
		}
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	if (n == 0 && w->drops == NULL && !final)
		return 0;
	items = evbuffer_new();
	ndrops = put_drops(items, w);
	for (i = 0; i < (int)n; i++)
		put_take(items, got[i]);
	o = conn_outbuf(c);
	evbuffer_add_printf(o, "ITEMS %d\r\n", ndrops + (int)n);
	evbuffer_add_buffer(o, items);
	evbuffer_free(items);
	conn_reply_done(c);
	w->seen = B->now;
	return 1;
}

static void
park(struct conn *c, int cmd, uint64_t wait_ms, void *arg)
{
	struct timeval	tv;

	c->parked = cmd;
	c->park_arg = arg;
	c->park_until = B->now + wait_ms;
	tv.tv_sec = (time_t)(wait_ms / 1000);
	tv.tv_usec = (suseconds_t)(wait_ms % 1000) * 1000;
	evtimer_add(c->park_ev, &tv);
	TAILQ_INSERT_TAIL(&parked_conns, c, pentry);
}

static void
park_free(struct conn *c)
{
	if (c->parked == CMD_TAKE) {
		struct take_arg *t = c->park_arg;
		free(t->queues);
	}
	free(c->park_arg);
	c->park_arg = NULL;
}

/* Ends a park without a reply (the connection is going away). */
void
cmd_unpark(struct conn *c)
{
	if (!c->parked)
		return;
	TAILQ_REMOVE(&parked_conns, c, pentry);
	evtimer_del(c->park_ev);
	park_free(c);
	c->parked = 0;
}

static void
h_take(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct worker	*w;
	struct take_arg	*t;
	uint64_t	 max, wait;

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
	t = xcalloc(1, sizeof *t);
	t->max = (uint32_t)max;
	t->queues = xstrndup(r->args[2].p, r->args[2].len);
	if (take_serve(c, t, wait == 0)) {
		free(t->queues);
		free(t);
		return;
	}
	park(c, CMD_TAKE, wait, t);
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

static void
h_heartbeat(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct worker	*w;
	struct evbuffer	*items, *pend, *o;
	struct simq_id	 id;
	uint64_t	 att;
	struct job	*j;
	struct drop	*d;
	int		 i, n = 0, nd;

	if ((w = need_worker(c)) == NULL)
		return;
	for (i = 0; i < r->nargs; i++) {
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
		parse_held(&r->args[i], &id, &att);
		j = lookup(&id);
		if (j != NULL && j->state == JS_RUNNING && j->run->w == w &&
		    j->attempts == att) {
			j->due = B->now + w->lease_ms;
			heap_fix(&B->timers, j);
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
		put_id(items, "id", id.id, id.index);
		evbuffer_add_printf(items, " attempt=%llu reason=%s\r\n",
		    (unsigned long long)att, why);
		n++;
	}
	pend = evbuffer_new();
	nd = put_drops(pend, w);
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
	if ((j = lookup(&id)) == NULL || j->kind == JK_ARRAY) {
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

static void
h_finish(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct proto_word	 k, v;
	struct result		*res;
	struct job		*j;
	uint64_t		 val, out = 0, err = 0, pay = 0;
	int			 i, have_exit = 0, have_sig = 0;
	long			 n;

	if ((j = current_attempt(c, r)) == NULL)
		return;
	res = xcalloc(1, sizeof *res);
	res->exit = -1;
	for (i = 2; i < r->nargs; i++) {
		if (proto_kv(&r->args[i], &k, &v) < 0)
			goto bad;
		if (proto_word_is(&k, "outpath")) {
			if ((n = proto_decode(v.p, v.len)) < 0 ||
			    memchr(v.p, '\0', (size_t)n) != NULL)
				goto bad;
			free(res->outpath);
			res->outpath = n ? xstrndup(v.p, (size_t)n) : NULL;
			continue;
		}
		if (arg_u64(&v, UINT64_MAX, &val) < 0)
			goto bad;
		if (proto_word_is(&k, "exit") && val <= 255) {
			res->exit = (int32_t)val;
			have_exit = 1;
		} else if (proto_word_is(&k, "signal") && val > 0 && val < 128) {
			res->sig = (int32_t)val;
			have_sig = 1;
		} else if (proto_word_is(&k, "timedout") && val <= 1)
			res->timedout = (uint32_t)val;
		else if (proto_word_is(&k, "start"))
			res->started = val;
		else if (proto_word_is(&k, "end"))
			res->ended = val;
		else if (proto_word_is(&k, "utime"))
			res->utime = val;
		else if (proto_word_is(&k, "stime"))
			res->stime = val;
		else if (proto_word_is(&k, "maxrss"))
			res->maxrss = val;
		else if (proto_word_is(&k, "out") && val <= SIMQ_TAIL_MAX)
			out = val;
		else if (proto_word_is(&k, "err") && val <= SIMQ_TAIL_MAX)
			err = val;
		else if (proto_word_is(&k, "res") && val <= SIMQ_PAYLOAD_MAX)
			pay = val;
		else
			goto bad;
	}
	if (have_exit == have_sig) {
		conn_error(c, PERR_BADREQ, "give exactly one of exit=N and "
		    "signal=N");
		result_free(res);
		return;
	}
	if (out + err + pay != blen) {
		conn_error(c, PERR_BODY, "body is %zu bytes but out+err+res is "
		    "%llu", blen, (unsigned long long)(out + err + pay));
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
	attempt_end(c, j, res, have_exit && res->exit == 0 && !res->timedout);
	return;
bad:
	conn_error(c, PERR_BADREQ, "bad report value '%.*s'",
	    (int)(r->args[i].len > 40 ? 40 : r->args[i].len), r->args[i].p);
	result_free(res);
}

static void
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

static void
h_release(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct job	*j;

	if ((j = current_attempt(c, r)) == NULL)
		return;
	job_requeue(j, 0, 0);
	conn_reply(c, "OK %s", proto_state_name(j->state));
	timers_arm();
}

/*
 * Looking.
 */

static void
put_status_items(struct conn *c, struct simq_id *ids, int n)
{
	struct evbuffer	*o = conn_outbuf(c);
	struct job	*j;
	int		 i;

	evbuffer_add_printf(o, "ITEMS %d\r\n", n);
	for (i = 0; i < n; i++) {
		int st;
		struct job *a;
		if ((j = lookup(&ids[i])) != NULL)
			put_status(o, j);
		else if ((a = lookup_pending_task(&ids[i], &st)) != NULL)
			put_pending_task(o, a, &ids[i], st);
		else {
			evbuffer_add_printf(o, "missing");
			put_id(o, "id", ids[i].id, ids[i].index);
		}
		evbuffer_add(o, "\r\n", 2);
	}
	conn_reply_done(c);
}

static void
h_status(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct simq_id	*ids;

	if ((ids = parse_ids(c, r->args, r->nargs)) == NULL)
		return;
	put_status_items(c, ids, r->nargs);
	free(ids);
}

static int
all_finished(struct simq_id *ids, int n)
{
	int	i, st;

	for (i = 0; i < n; i++) {
		if ((st = id_state(&ids[i])) < 0)
			continue;	/* missing: nothing to wait for */
		if (st != JS_DONE && st != JS_FAILED && st != JS_CANCELED)
			return 0;
	}
	return 1;
}

static void
h_wait(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct simq_id	*ids;
	struct wait_arg	*w;
	uint64_t	 ms;
	int		 n = r->nargs - 1;

	if (arg_u64(&r->args[0], WAIT_MAX_MS, &ms) < 0) {
		conn_error(c, PERR_BADREQ, "TIMEOUT-MS must be 0-%d",
		    WAIT_MAX_MS);
		return;
	}
	if ((ids = parse_ids(c, r->args + 1, n)) == NULL)
		return;
	if (ms == 0 || all_finished(ids, n)) {
		put_status_items(c, ids, n);
		free(ids);
		return;
	}
	w = xmalloc(sizeof *w + (size_t)n * sizeof w->ids[0]);
	w->n = n;
	memcpy(w->ids, ids, (size_t)n * sizeof *ids);
	free(ids);
	park(c, CMD_WAIT, ms, w);
}

static void
h_list(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct proto_word	 k, v;
	struct queue		*q = NULL;
	struct evbuffer		*o, *items;
	struct job		*j;
	uint64_t		 after = 0, limit = LIST_DEFAULT, n = 0;
	int			 i, state = -1, st;

	for (i = 0; i < r->nargs; i++) {
		if (proto_kv(&r->args[i], &k, &v) < 0)
			goto bad;
		if (proto_word_is(&k, "q")) {
			if (!proto_name_ok(v.p, v.len))
				goto bad;
			if ((q = queue_get(v.p, v.len, 0)) == NULL) {
				conn_reply(c, "ITEMS 0");
				return;
			}
		} else if (proto_word_is(&k, "state")) {
			if ((state = proto_state_lookup(v.p, v.len)) < 0)
				goto bad;
		} else if (proto_word_is(&k, "after")) {
			if (arg_u64(&v, SIMQ_ID_MAX, &after) < 0)
				goto bad;
		} else if (proto_word_is(&k, "limit")) {
			if (arg_u64(&v, LIST_MAX, &limit) < 0 || limit == 0)
				goto bad;
		} else
			goto bad;
	}
	items = evbuffer_new();
	j = after ? idmap_get(after, SIMQ_NOINDEX) : NULL;
	j = j != NULL ? TAILQ_NEXT(j, entry) : TAILQ_FIRST(&B->jobs);
	for (; j != NULL && n < limit; j = TAILQ_NEXT(j, entry)) {
		if (j->id <= after)
			continue;
		if (q != NULL && j->opts->q != q)
			continue;
		st = j->kind == JK_ARRAY ? job_array_state(j) : j->state;
		if (state >= 0 && st != state)
			continue;
		put_status(items, j);
		evbuffer_add(items, "\r\n", 2);
		n++;
	}
	o = conn_outbuf(c);
	evbuffer_add_printf(o, "ITEMS %llu\r\n", (unsigned long long)n);
	evbuffer_add_buffer(o, items);
	evbuffer_free(items);
	conn_reply_done(c);
	return;
bad:
	conn_error(c, PERR_BADREQ, "bad option '%.*s': use q=QUEUE "
	    "state=STATE after=ID limit=N",
	    (int)(r->args[i].len > 40 ? 40 : r->args[i].len), r->args[i].p);
}

static void
h_queues(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct evbuffer	*o = conn_outbuf(c);
	struct queue	*q;
	int		 s;

	evbuffer_add_printf(o, "ITEMS %u\r\n", B->nqueues);
	TAILQ_FOREACH(q, &B->queues, entry) {
		evbuffer_add_printf(o, "queue");
		put_str(o, "name", q->name);
		put_num(o, "paused", (uint64_t)q->paused);
		for (s = 0; s < JS__COUNT; s++)
			put_num(o, proto_state_name(s), q->count[s]);
		evbuffer_add(o, "\r\n", 2);
	}
	conn_reply_done(c);
}

static void
h_workers(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct evbuffer	*o = conn_outbuf(c);
	struct worker	*w;
	struct job	*j;
	char		 id[32];

	evbuffer_add_printf(o, "ITEMS %u\r\n", nworkers);
	TAILQ_FOREACH(w, &workers, entry) {
		evbuffer_add_printf(o, "worker");
		put_str(o, "name", w->name);
		put_str(o, "host", w->host);
		put_num(o, "slots", w->slots);
		if (w->pid)
			put_num(o, "pid", w->pid);
		put_str(o, "queues", w->queues);
		put_num(o, "connected", w->conn != NULL);
		put_num(o, "lease", w->lease_ms);
		put_num(o, "seen", w->seen);
		put_num(o, "njobs", w->njobs);
		if (w->njobs) {
			int first = 1;
			evbuffer_add_printf(o, " running=");
			TAILQ_FOREACH(j, &w->jobs, run->wentry) {
				proto_format_id(id, j->id, j->index);
				evbuffer_add_printf(o, "%s%s:%u",
				    first ? "" : ",", id, j->attempts);
				first = 0;
			}
		}
		evbuffer_add(o, "\r\n", 2);
	}
	conn_reply_done(c);
}

static void
h_stats(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct evbuffer		*o = conn_outbuf(c);
	struct journal_stats	 js;
	static const char	*pol[] = { "always", "interval", "none" };

	journal_stats(B->journal, &js);
	evbuffer_add_printf(o, "ITEMS 1\r\nstats version=%d", SIMQ_PROTO_VERSION);
	put_num(o, "uptime", B->now - B->started_at);
	put_num(o, "next_id", B->next_id);
	put_num(o, "jobs", B->njobs);
	put_num(o, "queues", B->nqueues);
	put_num(o, "workers", nworkers);
	put_num(o, "connections", nconns);
	put_num(o, "submitted", B->nsubmitted);
	put_num(o, "finished", B->nfinished);
	put_num(o, "lost", B->nlost);
	put_num(o, "journal_bytes", js.bytes);
	put_num(o, "journal_segments", js.segments);
	put_num(o, "commits", js.commits);
	put_num(o, "fsyncs", js.fsyncs);
	put_num(o, "snapshots", js.snapshots);
	evbuffer_add_printf(o, " fsync=%s\r\n", pol[B->cfg.fsync]);
	conn_reply_done(c);
}

static void
h_output(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct simq_id	 id;
	struct job	*j;
	struct result	*res;
	struct evbuffer	*o;
	const char	*p;
	size_t		 len;

	if (proto_parse_id(r->args[0].p, r->args[0].len, &id) < 0) {
		conn_error(c, PERR_BADREQ, "bad job id");
		return;
	}
	if ((j = lookup(&id)) == NULL || j->kind == JK_ARRAY) {
		conn_error(c, PERR_NOTFOUND, "no job %.*s", (int)r->args[0].len,
		    r->args[0].p);
		return;
	}
	if ((res = j->res) == NULL || j->state == JS_RUNNING ||
	    (res->started == 0 && res->outlen + res->errlen + res->reslen == 0
	    && !job_finished(j))) {
		conn_error(c, PERR_STATE, "job %.*s has not finished",
		    (int)r->args[0].len, r->args[0].p);
		return;
	}
	if (proto_word_is(&r->args[1], "stdout")) {
		p = res->data;
		len = res->outlen;
	} else if (proto_word_is(&r->args[1], "stderr")) {
		p = res->data ? res->data + res->outlen : NULL;
		len = res->errlen;
	} else if (proto_word_is(&r->args[1], "result")) {
		p = res->data ? res->data + res->outlen + res->errlen : NULL;
		len = res->reslen;
	} else {
		conn_error(c, PERR_BADREQ, "say stdout, stderr or result");
		return;
	}
	o = conn_outbuf(c);
	evbuffer_add_printf(o, "DATA %zu\r\n", len);
	if (len)
		evbuffer_add(o, p, len);
	evbuffer_add(o, "\r\n", 2);
	conn_reply_done(c);
}

/*
 * Changing.
 */

static void
h_cancel_retry(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct simq_id	*ids;
	struct job	*j;
	uint64_t	 n = 0;
	int		 i;

	if ((ids = parse_ids(c, r->args, r->nargs)) == NULL)
		return;
	for (i = 0; i < r->nargs; i++) {
		char id[32];
		int st;
		if (lookup(&ids[i]) != NULL)
			continue;
		proto_format_id(id, ids[i].id, ids[i].index);
		if (lookup_pending_task(&ids[i], &st) != NULL)
			conn_error(c, PERR_STATE, "task %s has not started; "
			    "only started tasks, or the whole array, can be "
			    "changed; nothing was changed", id);
		else
			conn_error(c, PERR_NOTFOUND, "no job %s; nothing was "
			    "changed", id);
		free(ids);
		return;
	}
	for (i = 0; i < r->nargs; i++) {
		if ((j = lookup(&ids[i])) == NULL)
			continue;	/* gone with an earlier one's array */
		n += r->cmd == CMD_CANCEL ? job_cancel(j, "canceled") :
		    job_retry(j);
	}
	free(ids);
	conn_reply(c, "OK %llu", (unsigned long long)n);
	timers_arm();
}

static void
h_pause_resume(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct queue	*q;
	struct buf	 b;
	int		 pause = r->cmd == CMD_PAUSE;

	if (!proto_name_ok(r->args[0].p, r->args[0].len)) {
		conn_error(c, PERR_BADREQ, "bad queue name");
		return;
	}
	if ((q = queue_get(r->args[0].p, r->args[0].len, 1)) == NULL) {
		conn_error(c, PERR_LIMIT, "too many queues (limit %d)",
		    SIMQ_QUEUES_MAX);
		return;
	}
	if (q->paused != pause) {
		q->paused = pause;
		buf_init(&b);
		rec_queue(&b, q);
		journal_put(pause ? REC_PAUSE : REC_RESUME, &b);
		if (!pause)
			B->want_dispatch = 1;
	}
	conn_reply(c, "OK");
}

typedef void	(*handler_fn)(struct conn *, struct proto_req *, char *, size_t);

static const handler_fn handlers[CMD__COUNT] = {
	[CMD_HELLO] = h_hello,
	[CMD_PING] = h_ping,
	[CMD_QUIT] = h_quit,
	[CMD_SUBMIT] = h_submit,
	[CMD_BATCH] = h_batch,
	[CMD_WORKER] = h_worker,
	[CMD_TAKE] = h_take,
	[CMD_HEARTBEAT] = h_heartbeat,
	[CMD_FINISH] = h_finish,
	[CMD_FAIL] = h_fail,
	[CMD_RELEASE] = h_release,
	[CMD_STATUS] = h_status,
	[CMD_WAIT] = h_wait,
	[CMD_LIST] = h_list,
	[CMD_QUEUES] = h_queues,
	[CMD_WORKERS] = h_workers,
	[CMD_STATS] = h_stats,
	[CMD_OUTPUT] = h_output,
	[CMD_CANCEL] = h_cancel_retry,
	[CMD_RETRY] = h_cancel_retry,
	[CMD_PAUSE] = h_pause_resume,
	[CMD_RESUME] = h_pause_resume,
};

/* Runs a checked request.  body is writable (decoding is in place). */
void
cmd_dispatch(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	if (B->cfg.token != NULL && !c->authed && r->cmd != CMD_HELLO &&
	    r->cmd != CMD_PING && r->cmd != CMD_QUIT) {
		conn_error(c, PERR_AUTH, "send HELLO %d TOKEN first",
		    SIMQ_PROTO_VERSION);
		return;
	}
	if (handlers[r->cmd] == NULL)
		fatal("command %d has no handler", r->cmd);
	if (c->worker != NULL) {
		c->worker->suspect = 0;		/* it is alive */
		c->worker->seen = B->now;
	}
	handlers[r->cmd](c, r, body, blen);
}

/*
 * Answers a parked TAKE or WAIT if it can, or with what there is when
 * final.  Returns 1 when it replied (the connection is then unparked).
 */
static int
park_try(struct conn *c, int final)
{
	int	done;

	if (c->parked == CMD_TAKE)
		done = take_serve(c, c->park_arg, final);
	else {
		struct wait_arg *w = c->park_arg;
		done = final || all_finished(w->ids, w->n);
		if (done)
			put_status_items(c, w->ids, w->n);
	}
	if (done)
		cmd_unpark(c);
	return done;
}

/* After a pass: a parked reply that can go now goes, and the connection
 * runs what it has buffered since. */
static void
serve_one(struct conn *c, int final)
{
	if (!park_try(c, final))
		return;
	conn_resume(c);
	if (c->eof && !c->parked)
		conn_close(c);
}

/* The client sent another request: a parked reply ends now, with what
 * there is, so the request after it can run. */
void
cmd_interrupt(struct conn *c)
{
	if (c->parked)
		park_try(c, 1);
}

void
cmd_serve_parked(void)
{
	struct conn	*c, *next;
	int		 dispatch = B->want_dispatch, wake = B->want_wake;

	B->want_dispatch = B->want_wake = 0;
	for (c = TAILQ_FIRST(&parked_conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, pentry);
		if (c->dead || c->closing)
			continue;
		if (c->park_until <= B->now ||
		    (c->parked == CMD_TAKE && dispatch) ||
		    (c->parked == CMD_WAIT && wake))
			serve_one(c, c->park_until <= B->now);
	}
}
