/*
 * cmd_view.c: the commands that look: STATUS, WAIT, LIST, QUEUES,
 * WORKERS, STATS, OUTPUT.  None changes anything.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "log.h"

/* LIST pages: enough for a screen or a script, bounded per reply. */
#define LIST_DEFAULT	1000
#define LIST_MAX	100000

/* B->jobs' head type has no name; TAILQ_PREV and TAILQ_LAST need one of
 * the same layout. */
TAILQ_HEAD(jobq_any, job);

/* WAIT's longest hold; clients loop for longer waits. */
#define WAIT_MAX_MS	3600000

void
h_status(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct simq_id	*ids;

	if ((ids = parse_ids(c, r->args, r->nargs)) == NULL)
		return;
	reply_status_items(c, ids, r->nargs);
	free(ids);
}

void
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
		reply_status_items(c, ids, n);
		free(ids);
		return;
	}
	w = xmalloc(sizeof *w + (size_t)n * sizeof w->ids[0]);
	w->n = n;
	memcpy(w->ids, ids, (size_t)n * sizeof *ids);
	free(ids);
	cmd_park(c, CMD_WAIT, ms, w);
}

void
h_list(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct proto_word	 k, v;
	struct queue		*q = NULL;
	struct evbuffer		*o, *items;
	struct job		*j;
	uint64_t		 after = 0, before = 0, limit = LIST_DEFAULT;
	uint64_t		 n = 0, rev = 0;
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
		} else if (proto_word_is(&k, "before")) {
			if (arg_u64(&v, SIMQ_ID_MAX, &before) < 0)
				goto bad;
		} else if (proto_word_is(&k, "rev")) {
			if (arg_u64(&v, 1, &rev) < 0)
				goto bad;
		} else if (proto_word_is(&k, "limit")) {
			if (arg_u64(&v, LIST_MAX, &limit) < 0 || limit == 0)
				goto bad;
		} else
			goto bad;
	}
	items = evbuffer_new();
	if (rev) {
		/* Newest first: from the end, below before= when given. */
		j = before ? idmap_get(before, SIMQ_NOINDEX) : NULL;
		j = j != NULL ? TAILQ_PREV(j, jobq_any, entry) :
		    TAILQ_LAST(&B->jobs, jobq_any);
	} else {
		j = after ? idmap_get(after, SIMQ_NOINDEX) : NULL;
		j = j != NULL ? TAILQ_NEXT(j, entry) : TAILQ_FIRST(&B->jobs);
	}
	for (; j != NULL && n < limit; j = rev ? TAILQ_PREV(j, jobq_any, entry) :
	    TAILQ_NEXT(j, entry)) {
		if (j->id <= after || (before && j->id >= before))
			continue;
		if (q != NULL && j->opts->q != q)
			continue;
		st = j->kind == JK_ARRAY ? job_array_state(j) : j->state;
		if (state >= 0 && st != state)
			continue;
		reply_status(items, j);
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
	    "state=STATE after=ID before=ID rev=1 limit=N",
	    (int)(r->args[i].len > 40 ? 40 : r->args[i].len), r->args[i].p);
}

void
h_queues(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct evbuffer	*o = conn_outbuf(c);
	struct queue	*q;
	int		 s;

	evbuffer_add_printf(o, "ITEMS %u\r\n", B->nqueues);
	TAILQ_FOREACH(q, &B->queues, entry) {
		evbuffer_add_printf(o, "queue");
		reply_str(o, "name", q->name);
		reply_num(o, "paused", (uint64_t)q->paused);
		for (s = 0; s < JS__COUNT; s++)
			reply_num(o, proto_state_name(s), q->count[s]);
		evbuffer_add(o, "\r\n", 2);
	}
	conn_reply_done(c);
}

void
h_workers(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct evbuffer	*o = conn_outbuf(c);
	struct worker	*w;
	struct job	*j;
	char		 id[32];

	evbuffer_add_printf(o, "ITEMS %u\r\n", nworkers);
	TAILQ_FOREACH(w, &workers, entry) {
		evbuffer_add_printf(o, "worker");
		reply_str(o, "name", w->name);
		reply_str(o, "host", w->host);
		reply_num(o, "slots", w->slots);
		if (w->pid)
			reply_num(o, "pid", w->pid);
		reply_str(o, "queues", w->queues);
		reply_num(o, "connected", w->conn != NULL);
		reply_num(o, "lease", w->lease_ms);
		reply_num(o, "seen", w->seen);
		reply_num(o, "njobs", w->njobs);
		if (w->conn != NULL && w->conn->parked == CMD_TAKE)
			reply_num(o, "taking", 1);
		reply_str(o, "outerr", w->outerr);
		reply_worker_res(o, w);
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

void
h_stats(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct evbuffer		*o = conn_outbuf(c);
	struct journal_stats	 js;
	static const char	*pol[] = { "always", "interval", "none" };
	uint64_t		 followed, fbytes;

	journal_stats(B->journal, &js);
	evbuffer_add_printf(o, "ITEMS 1\r\nstats version=%d", SIMQ_PROTO_VERSION);
	reply_num(o, "uptime", B->now - B->started_at);
	reply_num(o, "next_id", B->next_id);
	reply_num(o, "jobs", B->njobs);
	reply_num(o, "queues", B->nqueues);
	reply_num(o, "workers", nworkers);
	reply_num(o, "connections", nconns);
	reply_num(o, "submitted", B->nsubmitted);
	reply_num(o, "finished", B->nfinished);
	reply_num(o, "lost", B->nlost);
	reply_num(o, "journal_bytes", js.bytes);
	reply_num(o, "journal_segments", js.segments);
	reply_num(o, "commits", js.commits);
	reply_num(o, "fsyncs", js.fsyncs);
	reply_num(o, "snapshots", js.snapshots);
	follow_stats(&followed, &fbytes);
	reply_num(o, "followed", followed);
	reply_num(o, "follow_bytes", fbytes);
	{
		uint64_t nb, used, resv;
		blob_stats(&nb, &used, &resv);
		reply_num(o, "blobs", nb);
		reply_num(o, "blob_bytes", used);
		reply_num(o, "blob_reserved", resv);
	}
	evbuffer_add_printf(o, " fsync=%s", pol[B->cfg.fsync]);
	reply_num(o, "epoch", B->epoch);
	reply_num(o, "early_leases", B->nearly);
	reply_num(o, "reattached", B->nreattached);
	evbuffer_add(o, "\r\n", 2);
	conn_reply_done(c);
}

void
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
	if ((j = lookup_id(&id)) == NULL || j->kind == JK_ARRAY) {
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
