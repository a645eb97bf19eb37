/*
 * cmd-cancel.c: simq cancel and simq retry, of ids and ranges of tasks
 * (17_[1-10]), and simq cancel -q QUEUE [--state STATE].
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
	"ID...\n"
	"       simq cancel -q QUEUE [--state STATE]",
	"cancel waiting, queued and running jobs, tasks or arrays",
	"An ID is a job, an array, a task (17_5, taken by a worker or not), or\n"
	"a range of an array's tasks: 17_[1-10], 17_[1,3,8-12] or 17_1-10\n"
	"(quote the brackets from the shell).  A running job's worker kills its\n"
	"process group.  Jobs that depend on a canceled job fail (unless they\n"
	"run after any end, or after a failure).  Finished jobs are left\n"
	"alone.  Prints how many jobs and tasks were canceled.\n\n"
	"  -q, --queue QUEUE       cancel every job and task of QUEUE not "
	"finished\n"
	"      --state STATE       ...only those waiting, queued or running\n",
	cmd_cancel_exec
};

const struct simq_cmd cmd_retry_entry = {
	"retry",
	"ID...",
	"re-queue failed or canceled jobs, or an array's failed tasks",
	"An ID is a job, an array, a task or a range of tasks, as for cancel.\n"
	"For an array, only its failed and canceled tasks run again; those\n"
	"done stay done.  The retry budget (-r) is restored.  The jobs that\n"
	"failed because one of these had (--after) are re-queued too.  Prints\n"
	"how many jobs and tasks were re-queued, and how many dependents.\n\n",
	cmd_cancel_exec
};

enum { OPT_STATE = OPT_CMD_BASE };

static const struct option cancel_opts[] = {
	{ "queue", required_argument, NULL, 'q' },
	{ "state", required_argument, NULL, OPT_STATE },
	{ NULL, 0, NULL, 0 }
};

/* An id, or a range of tasks; dies on anything else. */
static void
ids_or_ranges_check(char **ids, int n)
{
	struct simq_id		id;
	struct simq_idrange	r;
	int			i;

	for (i = 0; i < n; i++)
		if (proto_parse_id(ids[i], strlen(ids[i]), &id) < 0 &&
		    proto_parse_idrange(ids[i], strlen(ids[i]), &r) < 0)
			die(EXIT_USAGE, "bad job id '%s': use a number like "
			    "17, 17_5 for task 5 of array 17, or 17_[1-10] for "
			    "its tasks 1 to 10", ids[i]);
}

static int
cmd_cancel_exec(int argc, char **argv)
{
	const struct simq_cmd	*cmd;
	struct conn		*c;
	struct reply		*r;
	struct json		 j;
	struct buf		 b;
	uint64_t		 n, total = 0, d, deps = 0;
	const char		*queue = NULL, *state = NULL;
	int			 cancel = strcmp(argv[0], "cancel") == 0, i, k, ch;
	int			 st;

	cmd = cancel ? &cmd_cancel_entry : &cmd_retry_entry;
	while ((ch = simq_getopt(argc, argv, cancel ? "q:" : "",
	    cancel ? cancel_opts : NULL, cmd)) != -1) {
		switch (ch) {
		case 'q':
			if (!proto_name_ok(optarg, strlen(optarg)))
				die(EXIT_USAGE, "bad queue name '%s': use 1 to "
				    "%d letters, digits, '.', '_' or '-'",
				    optarg, SIMQ_NAME_MAX);
			queue = optarg;
			break;
		case OPT_STATE:
			st = proto_state_lookup(optarg, strlen(optarg));
			if (st != JS_WAITING && st != JS_QUEUED &&
			    st != JS_RUNNING)
				die(EXIT_USAGE, "bad --state '%s': use waiting, "
				    "queued or running", optarg);
			state = optarg;
			break;
		default:
			simq_usage(cmd);
		}
	}
	argc -= optind;
	argv += optind;
	if (state != NULL && queue == NULL)
		die(EXIT_USAGE, "--state goes with -q QUEUE");
	if (queue != NULL && argc > 0)
		die(EXIT_USAGE, "cancel takes ids or -q QUEUE, not both");
	if (argc == 0 && queue == NULL)
		simq_usage_why(cmd, "%s needs job ids", cmd->name);
	ids_or_ranges_check(argv, argc);
	c = simq_connect(0);
	buf_init(&b);
	if (queue != NULL) {
		req_raw(&b, "CANCEL");
		req_kv(&b, "q", queue);
		if (state != NULL)
			req_kv(&b, "state", state);
		r = conn_request(c, &b);
		if (r->kind != REPLY_OK || r->nwords != 1 ||
		    proto_parse_u64(r->words[0], strlen(r->words[0]),
		    UINT64_MAX, &total) < 0)
			conn_die_reply(c, r, NULL);
		reply_free(r);
	}
	for (k = 0; k < argc; k += STATUS_CHUNK) {
		buf_reset(&b);
		req_raw(&b, cancel ? "CANCEL" : "RETRY");
		for (i = k; i < argc && i < k + STATUS_CHUNK; i++)
			req_word(&b, argv[i]);
		r = conn_request(c, &b);
		d = 0;
		if (r->kind != REPLY_OK || r->nwords < 1 || r->nwords > 2 ||
		    proto_parse_u64(r->words[0], strlen(r->words[0]),
		    UINT64_MAX, &n) < 0 || (r->nwords == 2 &&
		    proto_parse_u64(r->words[1], strlen(r->words[1]),
		    UINT64_MAX, &d) < 0))
			conn_die_reply(c, r, k > 0 ? "(the ids before it were "
			    "done)" : NULL);
		total += n;
		deps += d;
		reply_free(r);
	}
	if (cfg.json) {
		buf_reset(&b);
		json_init(&j, &b, 1);
		json_object(&j);
		json_key(&j, cancel ? "canceled" : "requeued");
		json_uint(&j, total);
		if (!cancel) {
			json_key(&j, "dependents");
			json_uint(&j, deps);
		}
		json_end(&j);
		json_finish(&j);
		simq_print_json(&b);
	} else if (total == 0)
		printf("%s\n", cancel ? "Nothing to cancel: those jobs had "
		    "finished already." : "Nothing to retry: only failed or "
		    "canceled jobs and tasks are re-queued.");
	else if (deps > 0)
		printf("re-queued %llu job%s; also re-queued %llu dependent%s\n",
		    (unsigned long long)total, total == 1 ? "" : "s",
		    (unsigned long long)deps, deps == 1 ? "" : "s");
	else
		printf("%s %llu job%s\n", cancel ? "canceled" : "re-queued",
		    (unsigned long long)total, total == 1 ? "" : "s");
	buf_free(&b);
	conn_close(c);
	return EXIT_OK;
}
