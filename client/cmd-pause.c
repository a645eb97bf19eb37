/*
 * cmd-pause.c: simq pause and simq resume.  A paused queue keeps taking
 * jobs but hands none out; running jobs go on.  Both are journaled by the
 * broker, so a pause survives its restart.  Only a queue that exists (it
 * holds jobs, or is paused) can be paused: for a name the broker does not
 * know, the error lists the queues it does.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "simq.h"

static int	cmd_pause_exec(int, char **);
static void	no_such_queue(struct conn *, const char *) NORETURN;

const struct simq_cmd cmd_pause_entry = {
	"pause",
	"QUEUE",
	"stop handing out a queue's jobs (running ones go on)",
	"The queue keeps accepting jobs.  The queue must exist: a queue is\n"
	"made by the first job submitted to it, and forgotten once it holds\n"
	"no job (finished ones included) and is not paused.\n\n",
	cmd_pause_exec
};

const struct simq_cmd cmd_resume_entry = {
	"resume",
	"QUEUE",
	"hand out a paused queue's jobs again",
	"",
	cmd_pause_exec
};

static int
cmd_pause_exec(int argc, char **argv)
{
	const struct simq_cmd	*cmd;
	struct conn		*c;
	struct reply		*r;
	struct json		 j;
	struct buf		 b;
	int			 pause = strcmp(argv[0], "pause") == 0;

	cmd = pause ? &cmd_pause_entry : &cmd_resume_entry;
	if (simq_getopt(argc, argv, "", NULL, cmd) != -1)
		simq_usage(cmd);
	if (argc - optind != 1) {
		simq_usage_why(cmd, "%s needs one queue name", cmd->name);
	}
	if (!proto_name_ok(argv[optind], strlen(argv[optind])))
		die(EXIT_USAGE, "bad queue name '%s': use 1 to %d letters, "
		    "digits, '.', '_' or '-'", argv[optind], SIMQ_NAME_MAX);
	c = simq_connect(0);
	buf_init(&b);
	req_raw(&b, pause ? "PAUSE" : "RESUME");
	req_word(&b, argv[optind]);
	r = conn_request(c, &b);
	if (r->kind == REPLY_ERR && r->err == PERR_NOTFOUND) {
		reply_free(r);
		buf_free(&b);
		no_such_queue(c, argv[optind]);
	}
	if (r->kind != REPLY_OK)
		conn_die_reply(c, r, NULL);
	reply_free(r);
	if (cfg.json) {
		buf_reset(&b);
		json_init(&j, &b, 1);
		json_object(&j);
		json_key(&j, "queue");
		json_cstr(&j, argv[optind]);
		json_key(&j, "paused");
		json_bool(&j, pause);
		json_end(&j);
		json_finish(&j);
		simq_print_json(&b);
	}
	buf_free(&b);
	conn_close(c);
	return EXIT_OK;
}

/* The broker knows no queue called name: says which ones it knows.  What
 * the message is made of stays reachable (static) when die() exits. */
static void
no_such_queue(struct conn *c, const char *name)
{
	static struct reply	*r;
	static struct buf	 b;
	size_t			 i;
	const char		*q;

	r = conn_simple(c, "QUEUES");
	if (r->kind != REPLY_ITEMS)
		conn_die_reply(c, r, NULL);
	if (r->nitems == 0)
		die(EXIT_USAGE, "no queue %s: the broker has none (a queue is "
		    "made by the first job submitted to it)", name);
	buf_init(&b);
	for (i = 0; i < r->nitems; i++) {
		if ((q = item_get(&r->items[i], "name")) == NULL)
			continue;
		if (b.len > 0)
			buf_put(&b, ", ", 2);
		buf_put(&b, q, strlen(q));
	}
	buf_put_u8(&b, 0);
	die(EXIT_USAGE, "no queue %s; the queues are: %s", name, (char *)b.p);
}
