/*
 * cmd-pause.c: simq pause and simq resume.  A paused queue keeps taking
 * jobs but hands none out; running jobs go on.  Both are journaled by the
 * broker, so a pause survives its restart.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "simq.h"

static int	cmd_pause_exec(int, char **);

const struct simq_cmd cmd_pause_entry = {
	"pause",
	"QUEUE",
	"stop handing out a queue's jobs (running ones go on)",
	"The queue keeps accepting jobs.  A queue that does not exist yet is\n"
	"made, paused, so jobs can be submitted before workers may start "
	"them.\n\n",
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
		log_warn("%s needs one queue name", cmd->name);
		simq_usage(cmd);
	}
	if (!proto_name_ok(argv[optind], strlen(argv[optind])))
		die(EXIT_USAGE, "bad queue name '%s': use 1 to %d letters, "
		    "digits, '.', '_' or '-'", argv[optind], SIMQ_NAME_MAX);
	c = simq_connect(0);
	buf_init(&b);
	req_raw(&b, pause ? "PAUSE" : "RESUME");
	req_word(&b, argv[optind]);
	r = conn_request(c, &b);
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
