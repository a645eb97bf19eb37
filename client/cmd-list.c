/*
 * cmd-list.c: simq list, jobs and arrays newest first (or oldest first
 * with --reverse), filtered by queue, state, name and age.  The broker
 * answers LIST a page at a time; the client follows the pages
 * (before=LAST, or after=LAST) until it has them all or --limit.
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
	"[-q QUEUE] [--state STATE] [--name NAME] [--since D] [-n LIMIT] "
	"[-r]",
	"list jobs and arrays, newest first",
	"Arrays are listed as one line each, with their tasks counted.\n\n"
	"  -q, --queue QUEUE       only jobs of QUEUE\n"
	"      --state STATE       only jobs in STATE: waiting, queued, "
	"running,\n"
	"                          done, failed or canceled\n"
	"      --name NAME         only jobs named NAME (a trailing * matches "
	"any end)\n"
	"      --since D           only jobs submitted in the last D (1h, 2d)\n"
	"  -n, --limit N           at most N jobs, the newest (default: all)\n"
	"  -r, --reverse           oldest first\n",
	cmd_list_exec
};

enum {
	OPT_STATE = OPT_CMD_BASE,
	OPT_NAME,
	OPT_SINCE,
};

static const struct option list_opts[] = {
	{ "queue", required_argument, NULL, 'q' },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "limit", required_argument, NULL, 'n' },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "reverse", no_argument, NULL, 'r' },
	{ NULL, 0, NULL, 0 }
};

/* --name: the name, or a prefix with a trailing '*'. */
static int
list_name_match(const char *pat, const char *name)
{
	size_t	len = strlen(pat);

	if (name == NULL)
		return 0;
	if (len > 0 && pat[len - 1] == '*')
		return strncmp(pat, name, len - 1) == 0;
	return strcmp(pat, name) == 0;
}

static int
cmd_list_exec(int argc, char **argv)
{
	struct conn	*c;
	struct reply	*r;
	struct table	*t = NULL;
	struct json	 j;
	struct buf	 b, out;
	const char	*queue = NULL, *state = NULL, *last, *name = NULL;
	char		 tmp[64], lastid[32];
	uint64_t	 limit = 0, got = 0, page, now = now_ms(), since = 0;
	uint64_t	 sub, seen;
	size_t		 i;
	int		 ch, rev = 1, old = 0;

	while ((ch = simq_getopt(argc, argv, "q:n:r", list_opts,
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
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_SINCE:
			if (proto_parse_duration(optarg, &since) < 0 ||
			    since == 0)
				die(EXIT_USAGE, "bad --since '%s': use a "
				    "duration like 30m, 2h or 1d", optarg);
			since = now > since ? now - since : 1;
			break;
		case 'r':
			rev = 0;
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
		/* With filters of its own the client asks full pages. */
		page = LIST_PAGE;
		if (limit > 0 && limit - got < page && name == NULL &&
		    since == 0)
			page = limit - got;
		buf_reset(&b);
		snprintf(tmp, sizeof tmp, "LIST limit=%llu",
		    (unsigned long long)page);
		req_raw(&b, tmp);
		if (rev)
			req_raw(&b, "rev=1");
		if (queue != NULL)
			req_kv(&b, "q", queue);
		if (state != NULL)
			req_kv(&b, "state", state);
		if (last != NULL)
			req_kv(&b, rev ? "before" : "after", last);
		r = conn_request(c, &b);
		if (r->kind == REPLY_ERR && r->err == PERR_BADREQ && rev) {
			/* A broker from before rev=1. */
			die(EXIT_USAGE, "this broker cannot list newest first; "
			    "use simq list --reverse");
		}
		if (r->kind != REPLY_ITEMS)
			conn_die_reply(c, r, NULL);
		seen = 0;
		for (i = 0; i < r->nitems; i++) {
			const struct item *it = &r->items[i];
			sub = item_num(it, "submitted");
			if (since && sub < since) {
				if (rev)
					old = 1;	/* older from here */
				continue;
			}
			if (name != NULL && !list_name_match(name,
			    item_get(it, "name")))
				continue;
			if (limit > 0 && got + seen >= limit)
				break;
			seen++;
			if (cfg.json)
				jobview_json(&j, it);
			else
				jobview_row(t, it, now);
		}
		got += seen;
		if (r->nitems < page || old || (limit > 0 && got >= limit)) {
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
