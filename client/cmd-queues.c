/*
 * cmd-queues.c: simq queues, every queue with its count of jobs in each
 * state.  The table and the JSON are shared with simq status.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "simq.h"

static int	cmd_queues_exec(int, char **);

const struct simq_cmd cmd_queues_entry = {
	"queues",
	"",
	"list the queues with their count of jobs in each state",
	"",
	cmd_queues_exec
};

void
queues_print(const struct reply *r)
{
	struct table		*t = table_new();
	const struct item	*it;
	size_t			 i;
	uint64_t		 v;
	int			 st, paused;
	enum colour		 c;

	table_col(t, "QUEUE", 0);
	table_col(t, "STATE", 0);
	for (st = 0; st < JS__COUNT; st++)
		table_col(t, st == JS_WAITING ? "WAITING" : st == JS_QUEUED ?
		    "QUEUED" : st == JS_RUNNING ? "RUNNING" : st == JS_DONE ?
		    "DONE" : st == JS_FAILED ? "FAILED" : "CANCELED",
		    TABLE_RIGHT);
	for (i = 0; i < r->nitems; i++) {
		it = &r->items[i];
		paused = item_num(it, "paused") != 0;
		table_cell(t, C_NONE, item_get(it, "name"));
		table_cell(t, paused ? C_YELLOW : C_NONE, paused ? "paused" :
		    "active");
		for (st = 0; st < JS__COUNT; st++) {
			v = item_num(it, proto_state_name(st));
			c = v == 0 ? C_DIM : st == JS_FAILED ? C_RED :
			    st == JS_RUNNING ? C_YELLOW : C_NONE;
			table_cellf(t, c, "%llu", (unsigned long long)v);
		}
	}
	table_print(t, stdout);
	table_free(t);
}

static void
queues_json_counts(struct json *j, const struct item *it)
{
	int	st;

	json_object(j);
	for (st = 0; st < JS__COUNT; st++) {
		json_key(j, proto_state_name(st));
		json_uint(j, item_num(it, proto_state_name(st)));
	}
	json_end(j);
}

/* {"default": {"waiting": 0, ...}, ...}: name to counts by state. */
void
queues_json_map(struct json *j, const struct reply *r)
{
	size_t	i;

	json_object(j);
	for (i = 0; i < r->nitems; i++) {
		json_key(j, item_get(&r->items[i], "name") ?
		    item_get(&r->items[i], "name") : "");
		queues_json_counts(j, &r->items[i]);
	}
	json_end(j);
}

/* "queues" and "paused" of a JSON document, the same in simq status
 * --json and simq queues --json: {"queues": {NAME: COUNTS, ...},
 * "paused": [NAME, ...]}. */
void
queues_json(struct json *j, const struct reply *r)
{
	size_t	i;

	json_key(j, "queues");
	queues_json_map(j, r);
	json_key(j, "paused");
	json_array(j);
	for (i = 0; i < r->nitems; i++)
		if (item_num(&r->items[i], "paused"))
			json_cstr(j, item_get(&r->items[i], "name"));
	json_end(j);
}

static int
cmd_queues_exec(int argc, char **argv)
{
	struct conn	*c;
	struct reply	*r;
	struct json	 j;
	struct buf	 b;

	if (simq_getopt(argc, argv, "", NULL, &cmd_queues_entry) != -1 ||
	    optind != argc)
		simq_usage(&cmd_queues_entry);
	c = simq_connect(0);
	r = conn_simple(c, "QUEUES");
	if (r->kind != REPLY_ITEMS)
		conn_die_reply(c, r, NULL);
	if (cfg.json) {
		simq_json_begin(&j, &b);
		queues_json(&j, r);
		simq_json_print(&j, &b);
	} else
		queues_print(r);
	reply_free(r);
	conn_close(c);
	return EXIT_OK;
}
