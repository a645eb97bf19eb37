/*
 * cmd-list.c: simq list, jobs and arrays in id order, filtered by queue
 * and state.  The broker answers LIST a page at a time; the client
 * follows the pages (after=LAST) until it has them all or --limit.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

/* Items per LIST request: the broker's default page. */
#define LIST_PAGE	1000

static int	cmd_list_exec(int, char **);

const struct simq_cmd cmd_list_entry = {
	"list",
	"[-q QUEUE] [--state STATE] [-n LIMIT]",
	"list jobs and arrays, oldest first",
	"Arrays are listed as one line each, with their tasks counted.\n\n"
	"  -q, --queue QUEUE       only jobs of QUEUE\n"
	"      --state STATE       only jobs in STATE: waiting, queued, "
	"running,\n"
	"                          done, failed or canceled\n"
	"  -n, --limit N           at most N jobs (default: all)\n",
	cmd_list_exec
};

enum {
	OPT_STATE = OPT_CMD_BASE,
};

static const struct option list_opts[] = {
	{ "queue", required_argument, NULL, 'q' },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "limit", required_argument, NULL, 'n' },
	{ NULL, 0, NULL, 0 }
};

static int
cmd_list_exec(int argc, char **argv)
{
	struct conn	*c;
	struct reply	*r;
	struct table	*t = NULL;
	struct json	 j;
	struct buf	 b, out;
	const char	*queue = NULL, *state = NULL, *last;
	char		 tmp[64], lastid[32];
	uint64_t	 limit = 0, got = 0, page, now = now_ms();
	size_t		 i;
	int		 ch;

	while ((ch = simq_getopt(argc, argv, "q:n:", list_opts,
	    &cmd_list_entry)) != -1) {
		switch (ch) {
		case 'q':
			if (!proto_name_ok(optarg, strlen(optarg)))
				die(EXIT_USAGE, "bad queue name '%s': use 1 to "
				    "%d letters, digits, '.', '_' or '-'",
				    optarg, SIMQ_NAME_MAX);
			queue = optarg;
			break;
		case OPT_STATE:
			if (proto_state_lookup(optarg, strlen(optarg)) < 0)
				die(EXIT_USAGE, "bad --state '%s': use "
				    "waiting, queued, running, done, failed "
				    "or canceled", optarg);
			state = optarg;
			break;
		case 'n':
			if (proto_parse_u64(optarg, strlen(optarg), UINT64_MAX,
			    &limit) < 0 || limit == 0)
				die(EXIT_USAGE, "bad --limit '%s': use a "
				    "number of jobs, 1 or more", optarg);
			break;
		default:
			simq_usage(&cmd_list_entry);
		}
	}
	if (optind != argc) {
		simq_usage_why(&cmd_list_entry, "list takes no ids; to see "
		    "given jobs, use simq status ID...");
	}
	c = simq_connect(0);
	buf_init(&out);
	if (cfg.json) {
		json_init(&j, &out, 1);
		json_object(&j);
		json_key(&j, "jobs");
		json_array(&j);
	} else
		t = jobview_table();
	buf_init(&b);
	last = NULL;
	for (;;) {
		page = LIST_PAGE;
		if (limit > 0 && limit - got < page)
			page = limit - got;
		buf_reset(&b);
		snprintf(tmp, sizeof tmp, "LIST limit=%llu",
		    (unsigned long long)page);
		req_raw(&b, tmp);
		if (queue != NULL)
			req_kv(&b, "q", queue);
		if (state != NULL)
			req_kv(&b, "state", state);
		if (last != NULL)
			req_kv(&b, "after", last);
		r = conn_request(c, &b);
		if (r->kind != REPLY_ITEMS)
			conn_die_reply(c, r, NULL);
		for (i = 0; i < r->nitems; i++) {
			if (cfg.json)
				jobview_json(&j, &r->items[i]);
			else
				jobview_row(t, &r->items[i], now);
		}
		got += r->nitems;
		if (r->nitems < page || (limit > 0 && got >= limit)) {
			reply_free(r);
			break;
		}
		snprintf(lastid, sizeof lastid, "%s",
		    item_get(&r->items[r->nitems - 1], "id"));
		last = lastid;
		reply_free(r);
	}
	buf_free(&b);
	if (cfg.json) {
		json_end(&j);
		json_end(&j);
		json_finish(&j);
		simq_print_json(&out);
	} else {
		table_print(t, stdout);
		table_free(t);
	}
	buf_free(&out);
	conn_close(c);
	return EXIT_OK;
}
