/*
 * cmd-stats.c: simq stats, the broker's counters: uptime, jobs, journal
 * size, fsyncs.  Every key STATS sends is shown, known or not, so a newer
 * broker's counters appear without a newer client.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "simq.h"

static int	cmd_stats_exec(int, char **);

const struct simq_cmd cmd_stats_entry = {
	"stats",
	"",
	"show the broker's counters",
	"",
	cmd_stats_exec
};

static int
cmd_stats_exec(int argc, char **argv)
{
	struct conn		*c;
	struct reply		*r;
	const struct item	*it;
	struct table		*t;
	struct json		 j;
	struct buf		 b;
	char			 f[FMT_MAX];
	uint64_t		 v;
	int			 i;

	if (simq_getopt(argc, argv, "", NULL, &cmd_stats_entry) != -1 ||
	    optind != argc)
		simq_usage(&cmd_stats_entry);
	c = simq_connect(0);
	r = conn_simple(c, "STATS");
	if (r->kind != REPLY_ITEMS || r->nitems != 1)
		conn_die_reply(c, r, NULL);
	it = &r->items[0];
	if (cfg.json) {
		simq_json_begin(&j, &b);
		json_key(&j, "server");
		json_cstr(&j, c->addr);
		for (i = 0; i < it->nkv; i++) {
			json_key(&j, it->kv[i].key);
			if (proto_parse_u64(it->kv[i].val, it->kv[i].vlen,
			    UINT64_MAX, &v) == 0)
				json_uint(&j, v);
			else
				json_str(&j, it->kv[i].val, it->kv[i].vlen);
		}
		simq_json_print(&j, &b);
	} else {
		t = table_new();
		table_col(t, "COUNTER", 0);
		table_col(t, "VALUE", 0);
		table_cell(t, C_NONE, "server");
		table_cell(t, C_NONE, c->addr);
		for (i = 0; i < it->nkv; i++) {
			table_cell(t, C_NONE, it->kv[i].key);
			if (strcmp(it->kv[i].key, "uptime") == 0 &&
			    item_u64(it, "uptime", &v) == 0)
				table_cell(t, C_NONE, fmt_duration(f, v));
			else if (strcmp(it->kv[i].key, "journal_bytes") == 0 &&
			    item_u64(it, "journal_bytes", &v) == 0)
				table_cell(t, C_NONE, fmt_size(f, v));
			else
				table_cell(t, C_NONE, it->kv[i].val);
		}
		table_print(t, stdout);
		table_free(t);
	}
	reply_free(r);
	conn_close(c);
	return EXIT_OK;
}
