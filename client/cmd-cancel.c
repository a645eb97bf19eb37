/*
 * cmd-cancel.c: simq cancel and simq retry.
 *
 * Both are all-or-nothing at the broker: if one id does not exist,
 * nothing is changed, and the message says which.  Ids beyond one
 * request's worth go in several requests.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

static int	cmd_cancel_exec(int, char **);

const struct simq_cmd cmd_cancel_entry = {
	"cancel",
	"ID...",
	"cancel waiting, queued and running jobs, tasks or arrays",
	"A running job's worker kills its process group.  Jobs that depend on\n"
	"a canceled job fail.  Finished jobs are left alone.  Prints how many\n"
	"jobs and tasks were canceled.\n\n",
	cmd_cancel_exec
};

const struct simq_cmd cmd_retry_entry = {
	"retry",
	"ID...",
	"re-queue failed or canceled jobs, or an array's failed tasks",
	"For an array, only its failed and canceled tasks run again; those\n"
	"done stay done.  The retry budget (-r) is restored.  Prints how many\n"
	"jobs and tasks were re-queued.\n\n",
	cmd_cancel_exec
};

static int
cmd_cancel_exec(int argc, char **argv)
{
	const struct simq_cmd	*cmd;
	struct conn		*c;
	struct reply		*r;
	struct json		 j;
	struct buf		 b;
	uint64_t		 n, total = 0;
	int			 cancel = strcmp(argv[0], "cancel") == 0, i, k;

	cmd = cancel ? &cmd_cancel_entry : &cmd_retry_entry;
	if (simq_getopt(argc, argv, "", NULL, cmd) != -1)
		simq_usage(cmd);
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		log_warn("%s needs job ids", cmd->name);
		simq_usage(cmd);
	}
	ids_check(argv, argc);
	c = simq_connect(0);
	buf_init(&b);
	for (k = 0; k < argc; k += STATUS_CHUNK) {
		buf_reset(&b);
		req_raw(&b, cancel ? "CANCEL" : "RETRY");
		for (i = k; i < argc && i < k + STATUS_CHUNK; i++)
			req_word(&b, argv[i]);
		r = conn_request(c, &b);
		if (r->kind != REPLY_OK || r->nwords != 1 ||
		    proto_parse_u64(r->words[0], strlen(r->words[0]),
		    UINT64_MAX, &n) < 0)
			conn_die_reply(c, r, k > 0 ? "(the ids before it were "
			    "done)" : NULL);
		total += n;
		reply_free(r);
	}
	if (cfg.json) {
		buf_reset(&b);
		json_init(&j, &b, 1);
		json_object(&j);
		json_key(&j, cancel ? "canceled" : "requeued");
		json_uint(&j, total);
		json_end(&j);
		json_finish(&j);
		simq_print_json(&b);
	} else if (total == 0)
		printf("%s\n", cancel ? "Nothing to cancel: those jobs had "
		    "finished already." : "Nothing to retry: only failed or "
		    "canceled jobs and tasks are re-queued.");
	else
		printf("%s %llu job%s\n", cancel ? "canceled" : "re-queued",
		    (unsigned long long)total, total == 1 ? "" : "s");
	buf_free(&b);
	conn_close(c);
	return EXIT_OK;
}
