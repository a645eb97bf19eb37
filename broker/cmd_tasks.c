/*
 * cmd_tasks.c: TASKS, an array's tasks a page at a time.
 *
 * Tasks a worker has taken (and those canceled or retried alone) have
 * records, in the array's list by index; the rest are positions past
 * the array's cursor, all in one of two states, and are written as
 * STATUS writes them, from the array.  A page lists the first in index
 * order, then the second, and ends, when there is more, with a "more"
 * item whose from= cursor the client sends back for the next page.  A
 * request looks at no more than TASKS_SCAN_MAX tasks, so a state that
 * is rare in a million-task array costs several short requests, not
 * one long one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "log.h"

#define TASKS_LIMIT_DEFAULT	1000
#define TASKS_LIMIT_MAX		10000
#define TASKS_SCAN_MAX		100000

static void
more(struct evbuffer *o, char phase, uint64_t at)
{
	evbuffer_add_printf(o, "more from=%c%llu\r\n", phase,
	    (unsigned long long)at);
}

void
h_tasks(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct proto_word	 k, v;
	struct simq_id		 id;
	struct job		*a, *t, *t0;
	struct array		*arr;
	struct evbuffer		*items, *o;
	uint64_t		 limit = TASKS_LIMIT_DEFAULT, at = 0, n = 0;
	uint64_t		 scan = 0, pos, end;
	char			 phase = 'm';
	int			 i, state = -1, st, have_at = 0, more_at = 0;

	if (proto_parse_id(r->args[0].p, r->args[0].len, &id) < 0) {
		conn_error(c, PERR_BADREQ, "bad job id '%.*s'",
		    (int)(r->args[0].len > 40 ? 40 : r->args[0].len),
		    r->args[0].p);
		return;
	}
	for (i = 1; i < r->nargs; i++) {
		if (proto_kv(&r->args[i], &k, &v) < 0)
			goto bad;
		if (proto_word_is(&k, "state")) {
			if ((state = proto_state_lookup(v.p, v.len)) < 0) {
				conn_error(c, PERR_BADREQ, "bad state '%.*s': "
				    "use waiting, queued, running, done, "
				    "failed or canceled", (int)(v.len > 40 ?
				    40 : v.len), v.p);
				return;
			}
		} else if (proto_word_is(&k, "limit")) {
			if (arg_u64(&v, TASKS_LIMIT_MAX, &limit) < 0 ||
			    limit == 0)
				goto bad;
		} else if (proto_word_is(&k, "from")) {
			if (v.len < 2 || (v.p[0] != 'm' && v.p[0] != 'p') ||
			    proto_parse_u64(v.p + 1, v.len - 1, UINT64_MAX,
			    &at) < 0)
				goto bad;
			phase = v.p[0];
			have_at = 1;
		} else
			goto bad;
	}
	if (id.index != SIMQ_NOINDEX || (a = idmap_get(id.id,
	    SIMQ_NOINDEX)) == NULL) {
		if (lookup_id(&id) != NULL || lookup_pending_task(&id, &st))
			conn_error(c, PERR_BADREQ, "%.*s is a task, not an "
			    "array", (int)r->args[0].len, r->args[0].p);
		else
			conn_error(c, PERR_NOTFOUND, "no job %.*s",
			    (int)r->args[0].len, r->args[0].p);
		return;
	}
	if (a->kind != JK_ARRAY) {
		conn_error(c, PERR_BADREQ, "job %.*s is not an array",
		    (int)r->args[0].len, r->args[0].p);
		return;
	}
	arr = a->arr;
	items = evbuffer_new();
	if (phase == 'm') {
		t = TAILQ_FIRST(&arr->tasks);
		if (have_at) {
			/* Just after the last one listed, found by id. */
			t0 = at <= UINT32_MAX ? idmap_get(a->id,
			    (uint32_t)at) : NULL;
			if (t0 != NULL && t0->kind == JK_TASK &&
			    t0->parent == a)
				t = TAILQ_NEXT(t0, entry);
			else
				while (t != NULL && t->index <= at)
					t = TAILQ_NEXT(t, entry);
		}
		for (; t != NULL; t = TAILQ_NEXT(t, entry)) {
			if (++scan > TASKS_SCAN_MAX || n == limit) {
				more(items, 'm', t == TAILQ_FIRST(&arr->tasks) ?
				    0 : TAILQ_PREV(t, tasklist, entry)->index);
				more_at = 1;
				break;
			}
			if (state >= 0 && t->state != state)
				continue;
			reply_status(items, t);
			evbuffer_add(items, "\r\n", 2);
			n++;
		}
		at = arr->cursor;
	} else if (at < arr->cursor)
		at = arr->cursor;
	for (pos = at; !more_at && pos < arr->ntasks; pos++) {
		st = pos < arr->cut ? a->state : arr->cut_state;
		if (state >= 0 && st != state) {
			/* [cursor, cut) are in one state, the rest in
			 * another: skip to where state may be. */
			end = pos < arr->cut ? arr->cut : arr->ntasks;
			pos = end - 1;
			continue;
		}
		id.index = (uint32_t)(arr->spec.first + pos * arr->spec.step);
		if (++scan > TASKS_SCAN_MAX || n == limit) {
			more(items, 'p', pos);
			more_at = 1;
			break;
		}
		if ((arr->nexc > 0 || arr->nexc_cut > 0) &&
		    idmap_get(id.id, id.index) != NULL)
			continue;	/* listed with the records */
		reply_pending_task(items, a, &id, st);
		evbuffer_add(items, "\r\n", 2);
		n++;
	}
	o = conn_outbuf(c);
	evbuffer_add_printf(o, "ITEMS %llu\r\n", (unsigned long long)(n +
	    (uint64_t)more_at));
	evbuffer_add_buffer(o, items);
	evbuffer_free(items);
	conn_reply_done(c);
	return;
bad:
	conn_error(c, PERR_BADREQ, "bad '%.*s': use state=STATE from=CURSOR "
	    "limit=N (at most %d)", (int)(r->args[i].len > 40 ? 40 :
	    r->args[i].len), r->args[i].p, TASKS_LIMIT_MAX);
}
