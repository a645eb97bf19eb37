/*
 * explain.c: why a job is not running, or what it is doing (EXPLAIN).
 *
 * The reply is one "explain" item (the job's id and state), then one
 * "why" item per reason, each with a code for programs, keys for its
 * facts, and text= a sentence for people.  explain_reasons() is the one
 * place that decides the reasons: a new one (a resource request no
 * worker could ever fit, say) is one more check there, with its code in
 * proto/PROTOCOL.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "log.h"

/* Dependencies named one by one; the rest are counted. */
#define EXPLAIN_DEPS_MAX	32

struct explain {
	struct evbuffer	*o;
	int		 n;
};

/* Starts a reason: "why code=CODE". */
static void
why(struct explain *ex, const char *code)
{
	evbuffer_add_printf(ex->o, "why code=%s", code);
	ex->n++;
}

/* Ends a reason with its sentence. */
static void	why_text(struct explain *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void
why_text(struct explain *ex, const char *fmt, ...)
{
	va_list	ap;
	char	buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	reply_str(ex->o, "text", buf);
	evbuffer_add(ex->o, "\r\n", 2);
}

/* "in 2m13s (at 14:03:22)" for people: seconds from now. */
static const char *
until_text(char *buf, size_t len, uint64_t when)
{
	uint64_t	s = when > B->now ? (when - B->now + 999) / 1000 : 0;

	if (s >= 3600)
		snprintf(buf, len, "%lluh%02llum", (unsigned long long)(s /
		    3600), (unsigned long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
		    (unsigned long long)(s % 60));
	else
		snprintf(buf, len, "%llus", (unsigned long long)s);
	return buf;
}

/* How long ago `when` was, for people. */
static const char *
ago_text(char *buf, size_t len, uint64_t when)
{
	return until_text(buf, len, B->now + (B->now > when ? B->now - when :
	    0));
}

/* Whether w serves queue q (a worker that named none serves
 * "default"). */
static int
worker_serves_q(const struct worker *w, const char *q)
{
	const char	*s = w->queues != NULL && *w->queues ? w->queues :
			    "default", *e;
	size_t		 ql = strlen(q);

	for (;;) {
		e = strchr(s, ',');
		if ((e ? (size_t)(e - s) : strlen(s)) == ql &&
		    strncmp(s, q, ql) == 0)
			return 1;
		if (e == NULL)
			return 0;
		s = e + 1;
	}
}

/* The dependencies of job (or array) d that are not met. */
static void
deps_reasons(struct explain *ex, const struct job *d, const char *whose)
{
	const struct jobopts	*op = d->opts;
	char			 id[32];
	uint32_t		 i, shown = 0, left = 0;
	int			 kind, st;

	for (i = 0; i < op->ndeps; i++) {
		kind = op->depkind ? op->depkind[i] : SIMQ_DEP_OK;
		st = id_state(&op->deps[i]);
		if (st >= 0 && job_finished_state(st))
			continue;	/* ended: met (or it would have ended
					 * this job) */
		if (st < 0)
			continue;	/* forgotten: counts as done */
		if (shown++ >= EXPLAIN_DEPS_MAX) {
			left++;
			continue;
		}
		proto_format_id(id, op->deps[i].id, op->deps[i].index);
		why(ex, "dependency");
		reply_str(ex->o, "dep", id);
		reply_str(ex->o, "kind", proto_depkind_name(kind));
		reply_str(ex->o, "dep_state", proto_state_name(st));
		why_text(ex, "%swaiting on %s (%s), which is %s", whose, id,
		    kind == SIMQ_DEP_OK ? "to be done" : kind == SIMQ_DEP_ANY ?
		    "to end" : "to fail", proto_state_name(st));
	}
	if (left > 0) {
		why(ex, "dependency");
		reply_num(ex->o, "more", left);
		why_text(ex, "%sand %u more unfinished dependencies", whose,
		    left);
	}
}

/* What holds a job back in its queue: the queue, the array's cap, the
 * workers. */
static void
queue_reasons(struct explain *ex, const struct job *subject,
    const struct job *arr, int state)
{
	const struct queue	*q = subject->opts->q;
	const struct worker	*w;
	uint32_t		 serving = 0, busy = 0, free_slots = 0, slots;
	int			 capped = 0;

	if (q->paused) {
		why(ex, "paused");
		reply_str(ex->o, "q", q->name);
		why_text(ex, "queue %s is paused: simq resume %s", q->name,
		    q->name);
	}
	if (arr != NULL && arr->arr->spec.maxrun > 0 &&
	    arr->arr->running >= arr->arr->spec.maxrun && state == JS_QUEUED) {
		why(ex, "array-limit");
		reply_num(ex->o, "running", arr->arr->running);
		reply_num(ex->o, "max", arr->arr->spec.maxrun);
		why_text(ex, "its array runs at most %u tasks at once, and %u "
		    "run", arr->arr->spec.maxrun, arr->arr->running);
		capped = 1;
	}
	TAILQ_FOREACH(w, &workers, entry) {
		if (w->conn == NULL || !worker_serves_q(w, q->name))
			continue;
		serving++;
		slots = w->slots ? w->slots : 1;
		if (w->njobs >= slots)
			busy++;
		else
			free_slots += slots - w->njobs;
	}
	if (serving == 0) {
		why(ex, "no-worker");
		reply_str(ex->o, "q", q->name);
		why_text(ex, "no connected worker serves queue %s: start one "
		    "with simq-worker -q %s", q->name, q->name);
		return;
	}
	/* Resource requests (a job no worker could ever fit) add their
	 * reason here, beside these. */
	if (state != JS_QUEUED || q->paused || capped)
		return;
	if (busy == serving) {
		why(ex, "busy");
		reply_str(ex->o, "q", q->name);
		reply_num(ex->o, "workers", serving);
		reply_num(ex->o, "queued", q->count[JS_QUEUED]);
		why_text(ex, "all %u worker%s serving queue %s %s busy; %llu "
		    "job%s queued there", serving, serving == 1 ? "" : "s",
		    q->name, serving == 1 ? "is" : "are",
		    (unsigned long long)q->count[JS_QUEUED],
		    q->count[JS_QUEUED] == 1 ? "" : "s");
		return;
	}
	why(ex, "ready");
	reply_str(ex->o, "q", q->name);
	reply_num(ex->o, "free_slots", free_slots);
	why_text(ex, "ready: %u free slot%s on workers serving queue %s "
	    "will take it", free_slots, free_slots == 1 ? "" : "s",
	    q->name);
}

/*
 * The reasons for job j (NULL for a task no worker has taken: then arr
 * is its array and state its state).
 */
void
explain_reasons(struct explain *ex, const struct job *j,
    const struct simq_id *id, int state)
{
	const struct job	*arr, *subject;
	const struct result	*r;
	char			 d[32], ex_s[64];

	arr = j == NULL ? idmap_get(id->id, SIMQ_NOINDEX) : j->kind == JK_TASK ?
	    j->parent : j->kind == JK_ARRAY ? j : NULL;
	subject = j != NULL ? j : arr;
	r = j != NULL ? j->res : NULL;

	if (j != NULL && j->kind == JK_ARRAY) {
		const uint64_t *c = j->arr->count;
		why(ex, "array");
		reply_num(ex->o, "tasks", j->arr->ntasks);
		why_text(ex, "an array of %llu tasks: %llu waiting, %llu "
		    "queued, %llu running, %llu done, %llu failed, %llu "
		    "canceled; see simq status --tasks %llu",
		    (unsigned long long)j->arr->ntasks,
		    (unsigned long long)c[JS_WAITING],
		    (unsigned long long)c[JS_QUEUED],
		    (unsigned long long)c[JS_RUNNING],
		    (unsigned long long)c[JS_DONE],
		    (unsigned long long)c[JS_FAILED],
		    (unsigned long long)c[JS_CANCELED],
		    (unsigned long long)j->id);
		if (j->state == JS_WAITING && !job_finished_state(state)) {
			if (j->ndeps_left > 0)
				deps_reasons(ex, j, "its untaken tasks are ");
			if (j->due > B->now) {
				why(ex, "delayed");
				reply_num(ex->o, "until", j->due);
				why_text(ex, "its untaken tasks are delayed "
				    "for %s more", until_text(d, sizeof d,
				    j->due));
			}
		}
		if (!job_finished_state(state))
			queue_reasons(ex, j, NULL, JS_WAITING);
		return;
	}

	switch (state) {
	case JS_RUNNING: {
		const struct worker *w = j->run->w;
		why(ex, "running");
		reply_str(ex->o, "worker", w->name);
		reply_str(ex->o, "host", w->host);
		reply_num(ex->o, "since", j->run->started);
		reply_num(ex->o, "lease", j->due);
		reply_num(ex->o, "attempt", j->attempts);
		if (w->conn == NULL)
			why_text(ex, "held by worker %s since %s ago (attempt "
			    "%u); the worker is disconnected: the job is "
			    "queued again in %s unless it comes back",
			    w->name, ago_text(d, sizeof d,
			    j->run->started), j->attempts,
			    until_text(ex_s, sizeof ex_s, j->due));
		else
			why_text(ex, "running on worker %s%s%s for %s "
			    "(attempt %u)", w->name, w->host ? " on host " :
			    "", w->host ? w->host : "", ago_text(d, sizeof d,
			    j->run->started), j->attempts);
		return;
	}
	case JS_DONE:
	case JS_FAILED:
	case JS_CANCELED:
		why(ex, proto_state_name(state));
		if (r != NULL && r->exit >= 0)
			reply_num(ex->o, "exit", (uint64_t)r->exit);
		if (r != NULL && r->sig > 0)
			reply_num(ex->o, "signal", (uint64_t)r->sig);
		if (r != NULL && r->timedout)
			reply_num(ex->o, "timedout", 1);
		if (r != NULL && r->reason != NULL && *r->reason)
			reply_str(ex->o, "reason", r->reason);
		if (r != NULL && r->timedout)
			snprintf(ex_s, sizeof ex_s, "timed out");
		else if (r != NULL && r->sig > 0)
			snprintf(ex_s, sizeof ex_s, "killed by signal %d",
			    r->sig);
		else if (r != NULL && r->exit >= 0)
			snprintf(ex_s, sizeof ex_s, "exit status %d", r->exit);
		else
			ex_s[0] = '\0';
		/* A reason says how it ended better than the exit status
		 * (which it often repeats). */
		if (r != NULL && r->reason != NULL && *r->reason)
			why_text(ex, "%s: %s", proto_state_name(state),
			    r->reason);
		else
			why_text(ex, "%s%s%s", proto_state_name(state),
			    ex_s[0] ? ": " : "", ex_s);
		return;
	case JS_WAITING:
		/* Its own dependencies and delay, then its array's (the
		 * gate of every task). */
		if (j != NULL && j->kind != JK_TASK && j->ndeps_left > 0)
			deps_reasons(ex, j, "");
		if (arr != NULL && arr->ndeps_left > 0)
			deps_reasons(ex, arr, "its array is ");
		if (j != NULL && j->due > B->now) {
			int backoff = j->failures > 0 || (j->res != NULL &&
			    j->attempts > 0);
			why(ex, backoff ? "backoff" : "delayed");
			reply_num(ex->o, "until", j->due);
			if (backoff)
				why_text(ex, "backing off after %u failed "
				    "attempt%s: queued again in %s%s%s%s",
				    j->failures, j->failures == 1 ? "" : "s",
				    until_text(d, sizeof d, j->due),
				    r && r->reason ? " (last: " : "",
				    r && r->reason ? r->reason : "",
				    r && r->reason ? ")" : "");
			else
				why_text(ex, "delayed: queued in %s",
				    until_text(d, sizeof d, j->due));
		} else if (arr != NULL && arr->due > B->now &&
		    arr->state == JS_WAITING) {
			why(ex, "delayed");
			reply_num(ex->o, "until", arr->due);
			why_text(ex, "its array is delayed: queued in %s",
			    until_text(d, sizeof d, arr->due));
		}
		queue_reasons(ex, subject, arr, state);
		return;
	case JS_QUEUED:
		queue_reasons(ex, subject, arr, state);
		return;
	}
}

void
h_explain(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct simq_id	 id;
	struct explain	 ex;
	struct evbuffer	*items, *o;
	struct job	*j, *a;
	int		 st;

	if (proto_parse_id(r->args[0].p, r->args[0].len, &id) < 0) {
		conn_error(c, PERR_BADREQ, "bad job id '%.*s'",
		    (int)(r->args[0].len > 40 ? 40 : r->args[0].len),
		    r->args[0].p);
		return;
	}
	if ((j = lookup_id(&id)) != NULL)
		st = j->kind == JK_ARRAY ? job_array_state(j) : j->state;
	else if ((a = lookup_pending_task(&id, &st)) == NULL) {
		conn_error(c, PERR_NOTFOUND, "no job %.*s",
		    (int)r->args[0].len, r->args[0].p);
		return;
	}
	items = evbuffer_new();
	ex.o = items;
	ex.n = 0;
	explain_reasons(&ex, j, &id, st);
	o = conn_outbuf(c);
	evbuffer_add_printf(o, "ITEMS %d\r\nexplain", ex.n + 1);
	reply_id(o, "id", id.id, id.index);
	evbuffer_add_printf(o, " state=%s\r\n", proto_state_name(st));
	evbuffer_add_buffer(o, items);
	evbuffer_free(items);
	conn_reply_done(c);
}
