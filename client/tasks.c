/*
 * tasks.c: an array's tasks, page by page (simq status ID --tasks), and
 * the first failed tasks of arrays (simq wait).
 *
 * The broker answers TASKS a page at a time, ending a page that is not
 * the last with a "more" item whose cursor asks for the next: a
 * million-task array is a stream of short requests, printed as they
 * come, one aligned table per page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

/* Tasks per TASKS request. */
#define TASKS_PAGE	1000

/*
 * Calls fn for each task of array id in state (-1: any), at most max
 * (0: all), page by page; fn gets each page's reply and the items that
 * are tasks.  Returns 0, or -1 after an ERR (r is then that reply, for
 * the caller to explain, and not freed; NULL if a soft connection was
 * lost).
 */
int
tasks_walk(struct conn *c, const char *id, int state, uint64_t max,
    void (*fn)(void *, const struct reply *, size_t), void *arg,
    struct reply **err)
{
	struct reply	*r;
	struct buf	 b;
	char		 tmp[64], cursor[64] = "";
	uint64_t	 got = 0, limit;
	size_t		 n;

	buf_init(&b);
	for (;;) {
		limit = TASKS_PAGE;
		if (max > 0 && max - got < limit)
			limit = max - got;
		buf_reset(&b);
		req_raw(&b, "TASKS");
		req_word(&b, id);
		if (state >= 0)
			req_kv(&b, "state", proto_state_name(state));
		if (cursor[0] != '\0')
			req_kv(&b, "from", cursor);
		snprintf(tmp, sizeof tmp, "limit=%llu",
		    (unsigned long long)limit);
		req_raw(&b, tmp);
		r = conn_request(c, &b);
		if (r == NULL || r->kind == REPLY_ERR) {	/* NULL: a soft
								 * connection
								 * lost */
			buf_free(&b);
			*err = r;
			return -1;
		}
		if (r->kind != REPLY_ITEMS)
			conn_die_reply(c, r, NULL);
		n = r->nitems;
		cursor[0] = '\0';
		if (n > 0 && item_is(&r->items[n - 1], "more")) {
			snprintf(cursor, sizeof cursor, "%s",
			    item_get(&r->items[n - 1], "from") ?
			    item_get(&r->items[n - 1], "from") : "");
			n--;
		}
		if (n > 0)
			fn(arg, r, n);
		got += n;
		reply_free(r);
		if (cursor[0] == '\0' || (max > 0 && got >= max))
			break;
	}
	buf_free(&b);
	return 0;
}

struct tasks_out {
	struct json	*json;
	uint64_t	 n;
	uint64_t	 failed;
};

static void
tasks_page(void *arg, const struct reply *r, size_t n)
{
	struct tasks_out	*o = arg;
	struct table		*t;
	const struct item	*it;
	char			 b[FMT_MAX], why[512];
	uint64_t		 now = now_ms(), v;
	size_t			 i;
	int			 st;

	if (o->json != NULL) {
		for (i = 0; i < n; i++)
			jobview_json(o->json, &r->items[i]);
		o->n += n;
		return;
	}
	t = table_new();
	table_col(t, "TASK", 0);
	table_col(t, "STATE", 0);
	table_col(t, "ATTEMPTS", TABLE_RIGHT);
	table_col(t, "EXIT", TABLE_ELIDE);
	table_col(t, "WORKER", TABLE_ELIDE | TABLE_CUT);
	table_col(t, "ELAPSED", TABLE_RIGHT | TABLE_ELIDE);
	table_col(t, "REASON", TABLE_ELIDE | TABLE_CLIP);
	for (i = 0; i < n; i++) {
		it = &r->items[i];
		st = jobview_state(it);
		table_cell(t, C_NONE, item_get(it, "id"));
		table_cell(t, state_colour(st), item_get(it, "state"));
		table_cellf(t, C_NONE, "%llu", (unsigned long long)
		    item_num(it, "attempts"));
		table_cell(t, st == JS_FAILED ? C_RED : C_NONE,
		    jobview_exit(b, it));
		table_cell(t, C_NONE, item_get(it, "worker") ?
		    item_get(it, "worker") : "-");
		if (item_u64(it, "started", &v) == 0 && v > 0) {
			uint64_t e = 0;
			if (st == JS_RUNNING)
				e = now > v ? now - v : 0;
			else if (item_u64(it, "ended", &e) == 0 && e >= v)
				e -= v;
			else if (item_u64(it, "finished", &e) == 0 && e >= v)
				e -= v;
			else
				e = 0;
			table_cell(t, C_NONE, fmt_duration(b, e));
		} else
			table_cell(t, C_NONE, "-");
		if (st == JS_FAILED || st == JS_CANCELED) {
			o->failed++;
			table_cell(t, C_NONE, jobview_why(why, sizeof why, it));
		} else
			table_cell(t, C_NONE, item_get(it, "reason") &&
			    *item_get(it, "reason") ? item_get(it, "reason") :
			    "-");
	}
	table_print(t, stdout);
	table_free(t);
	fflush(stdout);
	o->n += n;
}

/* Explains an ERR to TASKS and exits. */
static NORETURN void
tasks_fail(struct conn *c, struct reply *r, const char *id)
{
	if (r->err == PERR_NOTFOUND)
		die(EXIT_USAGE, "no job %s", id);
	if (r->err == PERR_BADREQ)
		die(EXIT_USAGE, "%s: --tasks lists an array's tasks", r->errmsg);
	conn_die_reply(c, r, NULL);
}

/* simq status ID --tasks [--state STATE]: returns the exit status. */
int
status_tasks(struct conn *c, const char *id, int state)
{
	struct tasks_out	 o;
	struct reply		*err;
	struct json		 j;
	struct buf		 b;

	memset(&o, 0, sizeof o);
	if (cfg.json) {
		simq_json_begin(&j, &b);
		json_key(&j, "array");
		json_cstr(&j, id);
		json_key(&j, "state");
		if (state >= 0)
			json_cstr(&j, proto_state_name(state));
		else
			json_null(&j);
		json_key(&j, "tasks");
		json_array(&j);
		o.json = &j;
	}
	if (tasks_walk(c, id, state, 0, tasks_page, &o, &err) < 0 &&
	    err != NULL)
		tasks_fail(c, err, id);
	if (cfg.json) {
		json_end(&j);
		simq_json_print(&j, &b);
	} else if (o.n == 0)
		printf("No task of array %s is %s.\n", id, state >= 0 ?
		    proto_state_name(state) : "known");
	return o.failed > 0 ? EXIT_FAILED : EXIT_OK;
}
