/*
 * cmd-explain.c: simq explain, why a job is not running.
 *
 * The broker decides the reasons (EXPLAIN: broker/explain.c), each with
 * a code, its facts and a sentence; this prints the sentences, or, with
 * --json, the codes and facts.  So a reason added to the broker shows
 * here without a change to the client.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

static int	cmd_explain_exec(int, char **);

const struct simq_cmd cmd_explain_entry = {
	"explain",
	"ID",
	"say why a job is not running (or what it is doing)",
	"Says why job, task or array ID is not running: the dependencies it\n"
	"waits on and their states, a delay or a retry's backoff and when it\n"
	"ends, a paused queue, no connected worker serving its queue, every\n"
	"such worker busy, its array's cap on running tasks; or the worker\n"
	"running it and since when; or how it ended.  Exits 0, or 2 for an\n"
	"unknown id.\n",
	cmd_explain_exec
};

static const struct option explain_opts[] = {
	{ NULL, 0, NULL, 0 }
};

/* Keys of a "why" item that are facts (all but its code and text). */
static void
explain_json_item(struct json *j, const struct item *it)
{
	int	i;

	json_object(j);
	json_key(j, "code");
	json_cstr(j, item_get(it, "code"));
	json_key(j, "text");
	json_cstr(j, item_get(it, "text"));
	for (i = 0; i < it->nkv; i++) {
		const char *k = it->kv[i].key;
		uint64_t v;
		if (strcmp(k, "code") == 0 || strcmp(k, "text") == 0)
			continue;
		json_key(j, k);
		if (proto_parse_u64(it->kv[i].val, it->kv[i].vlen, UINT64_MAX,
		    &v) == 0 && strcmp(k, "dep") != 0)
			json_uint(j, v);
		else
			json_str(j, it->kv[i].val, it->kv[i].vlen);
	}
	json_end(j);
}

static int
cmd_explain_exec(int argc, char **argv)
{
	struct conn	*c;
	struct reply	*r;
	struct buf	 b;
	struct json	 j;
	size_t		 i;
	int		 ch;

	while ((ch = simq_getopt(argc, argv, "", explain_opts,
	    &cmd_explain_entry)) != -1)
		simq_usage(&cmd_explain_entry);
	if (argc - optind != 1)
		simq_usage_why(&cmd_explain_entry, "explain needs one job id");
	ids_check(argv + optind, 1);
	c = simq_connect(0);
	buf_init(&b);
	req_raw(&b, "EXPLAIN");
	req_word(&b, argv[optind]);
	r = conn_request(c, &b);
	buf_free(&b);
	if (r->kind == REPLY_ERR && r->err == PERR_NOTFOUND)
		die(EXIT_USAGE, "no job %s", argv[optind]);
	if (r->kind != REPLY_ITEMS || r->nitems < 1 ||
	    !item_is(&r->items[0], "explain"))
		conn_die_reply(c, r, NULL);
	if (cfg.json) {
		simq_json_begin(&j, &b);
		json_key(&j, "id");
		json_cstr(&j, item_get(&r->items[0], "id"));
		json_key(&j, "state");
		json_cstr(&j, item_get(&r->items[0], "state"));
		json_key(&j, "reasons");
		json_array(&j);
		for (i = 1; i < r->nitems; i++)
			if (item_is(&r->items[i], "why"))
				explain_json_item(&j, &r->items[i]);
		json_end(&j);
		simq_json_print(&j, &b);
	} else {
		printf("%s is %s%s%s.\n", item_get(&r->items[0], "id"),
		    colour_on(state_colour(jobview_state(&r->items[0]))),
		    item_get(&r->items[0], "state"),
		    colour_off(state_colour(jobview_state(&r->items[0]))));
		for (i = 1; i < r->nitems; i++)
			if (item_is(&r->items[i], "why") &&
			    item_get(&r->items[i], "text") != NULL)
				printf("  - %s\n", item_get(&r->items[i],
				    "text"));
	}
	reply_free(r);
	conn_close(c);
	return EXIT_OK;
}
