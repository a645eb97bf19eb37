/*
 * reply.c: how the broker writes what it knows: status, TAKE and drop
 * items.
 *
 * Items are lines of "key=value" words (values percent-encoded), then, for
 * a job, "--" and its arguments; an array's tasks get "{}" replaced by
 * their index here, when they are written, not when they are stored.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "log.h"

/* Appends " key=" and s encoded as a word. */
void
reply_word(struct evbuffer *o, const char *key, const void *s, size_t len)
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

void
reply_str(struct evbuffer *o, const char *key, const char *s)
{
	if (s != NULL)
		reply_word(o, key, s, strlen(s));
}

void
reply_num(struct evbuffer *o, const char *key, uint64_t v)
{
	evbuffer_add_printf(o, " %s=%llu", key, (unsigned long long)v);
}

/* Writes " -- ARG..." with, for a task, every "{}" replaced by its
 * index. */
void
reply_argv(struct evbuffer *o, const struct job *j)
{
	const struct cmd	*c = j->kind == JK_TASK ? j->parent->cmd : j->cmd;
	const char		*p = c->data, *q, *sub = NULL;
	char			 idx[16];
	uint32_t		 i;
	size_t			 sublen = 0;
	struct buf		 b;

	evbuffer_add(o, " --", 3);
	snprintf(idx, sizeof idx, "%u", j->index);
	/* An EACHLINE task: {} is its line. */
	if (j->kind == JK_TASK && j->parent->arr->ent != NULL)
		sub = entries_get(j->parent->arr->ent, j->index, &sublen);
	else {
		sub = idx;
		sublen = strlen(idx);
	}
	buf_init(&b);
	for (i = 0; i < c->argc; i++) {
		size_t len = strlen(p);
		if (j->kind != JK_TASK || strstr(p, "{}") == NULL) {
			reply_word(o, NULL, p, len);
		} else {
			buf_reset(&b);
			for (q = p; *q != '\0'; q++) {
				if (q[0] == '{' && q[1] == '}') {
					buf_put(&b, sub, sublen);
					q++;
				} else
					buf_put_u8(&b, (uint8_t)*q);
			}
			reply_word(o, NULL, b.p, b.len);
		}
		p += len + 1;
	}
	buf_free(&b);
}

void
reply_id(struct evbuffer *o, const char *key, uint64_t id, uint32_t index)
{
	char	buf[32];

	proto_format_id(buf, id, index);
	evbuffer_add_printf(o, " %s=%s", key, buf);
}

/* A job's files (file=, collect=) or an attempt's collected ones (got=,
 * nomatch=, collerr=), as words. */
static void
reply_files(struct evbuffer *o, const struct jobfiles *f, int result)
{
	static char	*tmp;
	uint32_t	 i;
	size_t		 n;

	if (f == NULL)
		return;
	if (tmp == NULL)
		tmp = xmalloc(SIMQ_PATH_MAX + 128);
	for (i = 0; i < f->nfiles; i++) {
		n = proto_format_file(tmp, SIMQ_PATH_MAX + 128,
		    f->files[i].hash, f->files[i].size, f->files[i].mode,
		    f->files[i].name, strlen(f->files[i].name));
		reply_word(o, result ? "got" : "file", tmp, n);
	}
	for (i = 0; i < f->npat; i++)
		reply_str(o, result ? "nomatch" : "collect", f->pat[i]);
	for (i = 0; i < f->nerr; i++)
		reply_str(o, "collerr", f->err[i]);
}

/* What STATUS adds to an item and LIST leaves out (the environment may
 * be the submitter's whole one): how the job runs. */
static void
reply_jobopts(struct evbuffer *o, const struct jobopts *op)
{
	uint32_t	i;

	reply_num(o, "timeout", op->timeout_ms);
	reply_str(o, "cwd", op->cwd);
	reply_str(o, "output", op->output);
	for (i = 0; i < op->nenv; i++)
		reply_str(o, "env", op->env[i]);
	reply_files(o, op->files, 0);
}

/* What a job asks for beyond one CPU. */
static void
reply_res(struct evbuffer *o, const struct jobopts *op)
{
	if (op->cpus != 1)
		reply_num(o, "cpus", op->cpus);
	if (op->gpus)
		reply_num(o, "gpus", op->gpus);
	if (op->mem)
		reply_num(o, "mem", op->mem);
}

/* A worker's offer (WORKER cpus= gpus= mem=) and time left (TAKE
 * time=), for WORKERS. */
void
reply_worker_res(struct evbuffer *o, const struct worker *w)
{
	struct fit	f;

	fit_worker(w, &f);
	if (f.cpus != UINT32_MAX)
		reply_num(o, "cpus", f.cpus);
	if (f.cpus != UINT32_MAX || f.gpus)
		reply_num(o, "gpus", f.gpus);
	if (f.mem != UINT64_MAX)
		reply_num(o, "mem", f.mem);
	if (f.time != UINT64_MAX)
		reply_num(o, "time_left", f.time);
}

/* unfit= and why= for a job with queued work that no connected worker
 * could ever run (fit_why). */
static void
reply_unfit(struct evbuffer *o, const struct job *j)
{
	char	kinds[64], text[512];

	if (fit_why(j->opts, kinds, sizeof kinds, text, sizeof text)) {
		reply_str(o, "unfit", kinds);
		reply_str(o, "why", text);
	}
}

/* A "job" or "array" status item, without its line end. */
void
reply_status(struct evbuffer *o, const struct job *j)
{
	reply_status_full(o, j, 0);
}

/* ... with its options too when full (STATUS, WAIT). */
void
reply_status_full(struct evbuffer *o, const struct job *j, int full)
{
	const struct jobopts	*op = j->opts;
	const struct result	*r = j->res;
	int			 s;

	if (j->kind == JK_ARRAY) {
		const struct array *a = j->arr;
		char spec[64];
		evbuffer_add_printf(o, "array");
		reply_id(o, "id", j->id, SIMQ_NOINDEX);
		evbuffer_add_printf(o, " state=%s",
		    proto_state_name(job_array_state(j)));
		reply_str(o, "q", op->q->name);
		evbuffer_add_printf(o, " pri=%lld", (long long)op->prio);
		reply_num(o, "tasks", a->ntasks);
		for (s = 0; s < JS__COUNT; s++)
			reply_num(o, proto_state_name(s), a->count[s]);
		if (a->spec.maxrun)
			snprintf(spec, sizeof spec, "%u-%u:%u%%%u",
			    a->spec.first, a->spec.last, a->spec.step,
			    a->spec.maxrun);
		else
			snprintf(spec, sizeof spec, "%u-%u:%u", a->spec.first,
			    a->spec.last, a->spec.step);
		reply_str(o, "spec", spec);
	} else {
		evbuffer_add_printf(o, "job");
		reply_id(o, "id", j->id, j->index);
		evbuffer_add_printf(o, " state=%s", proto_state_name(j->state));
		reply_str(o, "q", op->q->name);
		evbuffer_add_printf(o, " pri=%lld", (long long)op->prio);
		reply_num(o, "attempts", j->attempts);
	}
	reply_num(o, "retries", op->retries);
	reply_str(o, "name", op->name);
	reply_num(o, "submitted", j->submitted);
	if (j->run != NULL) {
		reply_num(o, "started", j->run->started);
		reply_str(o, "worker", j->run->w->name);
		reply_str(o, "host", j->run->w->host);
	}
	if (r != NULL) {
		if (j->run == NULL && r->started)
			reply_num(o, "started", r->started);
		if ((j->kind == JK_ARRAY || job_finished(j)) && r->finished)
			reply_num(o, "finished", r->finished);
		if (j->run == NULL && j->kind != JK_ARRAY && r->ended)
			reply_num(o, "ended", r->ended);
		if (r->exit >= 0)
			reply_num(o, "exit", (uint64_t)r->exit);
		if (r->sig > 0)
			reply_num(o, "signal", (uint64_t)r->sig);
		if (r->timedout)
			reply_num(o, "timedout", 1);
		if (j->run == NULL) {
			reply_str(o, "worker", r->worker);
			reply_str(o, "host", r->host);
		}
		reply_str(o, "reason", r->reason);
		reply_str(o, "outpath", r->outpath);
		if (r->maxrss)
			reply_num(o, "maxrss", r->maxrss);
		if (r->utime || r->stime) {
			reply_num(o, "utime", r->utime);
			reply_num(o, "stime", r->stime);
		}
	}
	if (j->ndeps_left > 0 && op->ndeps > 0) {
		uint32_t i;
		evbuffer_add_printf(o, " after=");
		for (i = 0; i < op->ndeps; i++) {
			char id[32];
			proto_format_id(id, op->deps[i].id, op->deps[i].index);
			evbuffer_add_printf(o, "%s%s%s%s", i ? "," : "",
			    op->depkind != NULL && op->depkind[i] != SIMQ_DEP_OK ?
			    proto_depkind_name(op->depkind[i]) : "",
			    op->depkind != NULL && op->depkind[i] != SIMQ_DEP_OK ?
			    ":" : "", id);
		}
	}
	if (j->state == JS_WAITING && j->due > B->now)
		reply_num(o, "due", j->due);
	reply_res(o, op);
	/* Not for LIST: it costs the workers, for each item. */
	if (full && (j->kind == JK_ARRAY ? j->arr->count[JS_QUEUED] > 0 :
	    j->state == JS_QUEUED))
		reply_unfit(o, j);
	if (full) {
		reply_jobopts(o, op);
		if (r != NULL && j->kind != JK_ARRAY)
			reply_files(o, r->got, 1);
	}
	reply_argv(o, j);
}

/* A job item for TAKE of j, whose queue is named q (qlen bytes). */
static void
take_item(struct evbuffer *o, const struct job *j, const char *q,
    size_t qlen)
{
	const struct jobopts	*op = j->opts;
	uint32_t		 i;

	evbuffer_add_printf(o, "job");
	reply_id(o, "id", j->id, j->index);
	reply_num(o, "attempt", j->attempts);
	reply_word(o, "q", q, qlen);
	reply_num(o, "timeout", op->timeout_ms);
	reply_res(o, op);
	if (j->kind == JK_TASK)
		reply_num(o, "index", j->index);
	if (j->kind == JK_TASK && j->parent->arr->ent != NULL) {
		/* Its line, for SIMQ_ENTRY; empty lines too. */
		size_t len;
		const char *e = entries_get(j->parent->arr->ent, j->index,
		    &len);
		reply_word(o, "entry", e, len);
	}
	reply_str(o, "name", op->name);
	reply_str(o, "cwd", op->cwd);
	reply_str(o, "output", op->output);
	for (i = 0; i < op->nenv; i++)
		reply_str(o, "env", op->env[i]);
	reply_files(o, op->files, 0);
	reply_argv(o, j);
	evbuffer_add(o, "\r\n", 2);
}

/* A job item for TAKE: everything the worker needs to run it. */
void
reply_take(struct evbuffer *o, const struct job *j)
{
	take_item(o, j, j->opts->q->name, strlen(j->opts->q->name));
}

/*
 * The bytes, CR LF included, of the longest TAKE item a job not made yet
 * can have: options op in the queue named q (qlen bytes; op->q may be
 * unset), command cmd, id id and, for a task of SUBMIT array=, its index
 * (else SIMQ_NOINDEX).  Only the attempt number changes over a job's
 * life: it is counted at its widest.  Not for EACHLINE's tasks (their
 * lines are bounded in cmd_submit.c).
 */
size_t
reply_take_len(const struct jobopts *op, const char *q, size_t qlen,
    const struct cmd *cmd, uint64_t id, uint32_t index)
{
	static struct evbuffer	*o;
	struct job		 j, parent;
	struct array		 arr;
	size_t			 n;

	if (o == NULL && (o = evbuffer_new()) == NULL)
		fatal("out of memory");
	memset(&j, 0, sizeof j);
	j.id = id;
	j.index = index;
	j.attempts = UINT32_MAX;
	j.opts = (struct jobopts *)op;
	if (index == SIMQ_NOINDEX) {
		j.kind = JK_JOB;
		j.cmd = (struct cmd *)cmd;
	} else {
		memset(&parent, 0, sizeof parent);
		memset(&arr, 0, sizeof arr);
		parent.kind = JK_ARRAY;
		parent.cmd = (struct cmd *)cmd;
		parent.arr = &arr;
		j.kind = JK_TASK;
		j.parent = &parent;
	}
	take_item(o, &j, q, qlen);
	n = evbuffer_get_length(o);
	evbuffer_drain(o, n);
	return n;
}

/* A status item for a task that has no record yet. */
void
reply_pending_task(struct evbuffer *o, const struct job *a,
    const struct simq_id *id, int state)
{
	evbuffer_add_printf(o, "job");
	reply_id(o, "id", id->id, id->index);
	evbuffer_add_printf(o, " state=%s", proto_state_name(state));
	reply_str(o, "q", a->opts->q->name);
	evbuffer_add_printf(o, " pri=%lld attempts=0", (long long)a->opts->prio);
	reply_num(o, "retries", a->opts->retries);
	reply_str(o, "name", a->opts->name);
	reply_num(o, "submitted", a->submitted);
	reply_res(o, a->opts);
	if (state == JS_QUEUED)
		reply_unfit(o, a);
	reply_jobopts(o, a->opts);
	{
		struct job t;
		memset(&t, 0, sizeof t);
		t.kind = JK_TASK;
		t.parent = (struct job *)a;
		t.index = id->index;
		reply_argv(o, &t);
	}
}

void
reply_status_items(struct conn *c, struct simq_id *ids, int n)
{
	struct evbuffer	*o = conn_outbuf(c);
	struct job	*j;
	int		 i;

	evbuffer_add_printf(o, "ITEMS %d\r\n", n);
	for (i = 0; i < n; i++) {
		int st;
		struct job *a;
		if ((j = lookup_id(&ids[i])) != NULL)
			reply_status_full(o, j, 1);
		else if ((a = lookup_pending_task(&ids[i], &st)) != NULL)
			reply_pending_task(o, a, &ids[i], st);
		else {
			evbuffer_add_printf(o, "missing");
			reply_id(o, "id", ids[i].id, ids[i].index);
		}
		evbuffer_add(o, "\r\n", 2);
	}
	conn_reply_done(c);
}

/* Writes the worker's pending drops as items; returns how many.  They are
 * forgotten once written: the reply carries them. */
int
reply_drops(struct evbuffer *o, struct worker *w)
{
	struct drop	*d;
	int		 n = 0;

	while ((d = w->drops) != NULL) {
		w->drops = d->next;
		evbuffer_add_printf(o, "drop");
		reply_id(o, "id", d->id, d->index);
		evbuffer_add_printf(o, " attempt=%u reason=%s\r\n", d->attempt,
		    d->reason);
		free(d);
		n++;
	}
	return n;
}
