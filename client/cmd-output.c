/*
 * cmd-output.c: simq output and simq result, what a finished job left.
 *
 * The broker keeps the tail of each job's stdout and stderr and its result
 * payload (the file $SIMQ_RESULT); these commands print them as raw bytes,
 * so `simq result 17 > out.bin` is exact.  simq result also takes arrays:
 * it asks for every task's payload, pipelined a window at a time (no round
 * trip per task), and prints them in index order, one per line.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

/* OUTPUT requests in flight at once: enough to hide the round trip,
 * few enough that the replies (64 KiB each at most) never pile up. */
#define RESULT_WINDOW	256

static int	cmd_output_exec(int, char **);
static int	cmd_result_exec(int, char **);

const struct simq_cmd cmd_output_entry = {
	"output",
	"[-f [-t TIMEOUT]] [--stderr] ID",
	"print what a job wrote on stdout (or stderr), or follow it",
	"The broker keeps the last 64 KiB of each stream; the whole output is\n"
	"on the worker's disk if the job was submitted with -o PATTERN.\n"
	"With -f, prints a running job's output as it is written, from any\n"
	"host, until the job ends; exits 0 if it ended done, 1 if it failed\n"
	"or was canceled, 2 if it did not start within -t.  A lost broker is\n"
	"connected to again, as simq wait does, and the output goes on from\n"
	"where it was.\n\n"
	"  -f, --follow            follow the job's output until it ends\n"
	"  -t, --timeout D         with -f: give up if the job has not started\n"
	"                          within D (90, 45s, 30m, 2h, 1d)\n"
	"      --stderr            print the job's stderr instead\n",
	cmd_output_exec
};

const struct simq_cmd cmd_result_entry = {
	"result",
	"[--with-id] ID...",
	"print the result payloads of finished jobs or arrays",
	"A job's result is what it wrote to the file named by $SIMQ_RESULT\n"
	"(at most 64 KiB), printed as raw bytes.  For an array, or several\n"
	"ids, each task's result is printed in order, with a newline added\n"
	"after any that lacks one.  A task that failed or was canceled has no\n"
	"result: it is left out, and simq result exits 1 with a note on\n"
	"stderr naming it (--json gives each state, and what it left).\n\n"
	"      --with-id           start each line with the task's id and a "
	"tab\n",
	cmd_result_exec
};

enum {
	OPT_STDERR = OPT_CMD_BASE,
};

enum {
	OPT_WITH_ID = OPT_CMD_BASE + 1,
};

static const struct option result_opts[] = {
	{ "with-id", no_argument, NULL, OPT_WITH_ID },
	{ NULL, 0, NULL, 0 }
};

static const struct option output_opts[] = {
	{ "stderr", no_argument, NULL, OPT_STDERR },
	{ "follow", no_argument, NULL, 'f' },
	{ "timeout", required_argument, NULL, 't' },
	{ NULL, 0, NULL, 0 }
};

/* Explains an OUTPUT error for id and exits. */
static NORETURN void
output_fail(struct conn *c, const struct reply *r, const char *id)
{
	struct reply	*s;
	char		*ids[1];
	const char	*st;

	if (r->kind == REPLY_ERR && r->err == PERR_NOTFOUND) {
		ids[0] = (char *)id;
		s = status_fetch(c, ids, 1, -1, 0);
		if (s->nitems == 1 && item_is(&s->items[0], "array"))
			die(EXIT_USAGE, "%s is an array: ask for one of its "
			    "tasks, like %s_%s", id, id,
			    item_get(&s->items[0], "spec") ?
			    strtok(xstrdup(item_get(&s->items[0], "spec")),
			    "-:%") : "1");
		if (s->nitems == 1 && item_is(&s->items[0], "job"))
			die(EXIT_FAILED, "task %s has not run yet", id);
		die(EXIT_USAGE, "no job %s", id);
	}
	if (r->kind == REPLY_ERR && r->err == PERR_STATE) {
		ids[0] = (char *)id;
		s = status_fetch(c, ids, 1, -1, 0);
		st = s->nitems == 1 ? item_get(&s->items[0], "state") : NULL;
		die(EXIT_FAILED, "job %s has not finished (it is %s); what it "
		    "leaves is kept when it ends: simq wait %s", id,
		    st != NULL ? st : "not finished", id);
	}
	conn_die_reply(c, r, NULL);
}

/* An empty stream of a job whose command never started: say why there
 * is nothing, on stderr, rather than leave the user with nothing. */
static void
output_why_empty(struct conn *c, const char *id)
{
	struct reply	*s;
	char		*ids[1];

	ids[0] = (char *)id;
	s = status_fetch(c, ids, 1, -1, 0);
	if (s->nitems == 1 && jobview_never_ran(&s->items[0]))
		log_warn("job %s wrote nothing: its command never started "
		    "(%s)", id, item_get(&s->items[0], "reason"));
	reply_free(s);
}

static int
cmd_output_exec(int argc, char **argv)
{
	struct conn	*c;
	struct reply	*r;
	struct json	 j;
	struct buf	 b;
	const char	*stream = "stdout";
	uint64_t	 timeout = 0;
	int		 ch, follow = 0;

	while ((ch = simq_getopt(argc, argv, "ft:", output_opts,
	    &cmd_output_entry)) != -1) {
		switch (ch) {
		case OPT_STDERR:
			stream = "stderr";
			break;
		case 'f':
			follow = 1;
			break;
		case 't':
			if (proto_parse_duration(optarg, &timeout) < 0)
				die(EXIT_USAGE, "bad --timeout '%s': use a "
				    "duration like 90, 45s, 30m, 2h, 1d or "
				    "1h30m", optarg);
			break;
		default:
			simq_usage(&cmd_output_entry);
		}
	}
	if (argc - optind != 1) {
		simq_usage_why(&cmd_output_entry,
		    "output needs one job id");
	}
	ids_check(argv + optind, 1);
	if (timeout > 0 && !follow)
		simq_usage_why(&cmd_output_entry, "-t is for -f: how long to "
		    "wait for the job to start");
	if (follow && cfg.json)
		simq_usage_why(&cmd_output_entry, "-f prints the output as "
		    "it comes, as raw bytes; --json is for a finished job");
	if (follow)
		return output_follow(argv[optind], stream, timeout);
	c = simq_connect(0);
	buf_init(&b);
	req_raw(&b, "OUTPUT");
	req_word(&b, argv[optind]);
	req_raw(&b, stream);
	r = conn_request(c, &b);
	if (r->kind != REPLY_DATA)
		output_fail(c, r, argv[optind]);
	if (cfg.json) {
		buf_reset(&b);
		json_init(&j, &b, 1);
		json_object(&j);
		json_key(&j, "id");
		json_cstr(&j, argv[optind]);
		json_key(&j, "stream");
		json_cstr(&j, stream);
		json_key(&j, "data");
		json_str(&j, r->data, r->datalen);
		json_end(&j);
		json_finish(&j);
		simq_print_json(&b);
	} else
		fwrite(r->data, 1, r->datalen, stdout);
	if (r->datalen == 0)
		output_why_empty(c, argv[optind]);
	buf_free(&b);
	reply_free(r);
	conn_close(c);
	return EXIT_OK;
}

/* What simq result asks for: a job or task, or every task of an array. */
struct result_target {
	uint64_t		id;
	uint32_t		index;		/* SIMQ_NOINDEX: a job */
	struct array_spec	spec;		/* an array's tasks */
	int			array;
};

/* The id of the k-th task id of the targets, or 0 past the end. */
static int
result_next(struct result_target *t, int n, int *ti, uint64_t *pos,
    char *buf)
{
	uint64_t	 idx;

	while (*ti < n) {
		if (!t[*ti].array) {
			if (*pos == 0) {
				proto_format_id(buf, t[*ti].id, t[*ti].index);
				(*pos)++;
				return 1;
			}
		} else {
			idx = t[*ti].spec.first + *pos * t[*ti].spec.step;
			if (idx <= t[*ti].spec.last) {
				proto_format_id(buf, t[*ti].id,
				    (uint32_t)idx);
				(*pos)++;
				return 1;
			}
		}
		(*ti)++;
		*pos = 0;
	}
	return 0;
}

static int
cmd_result_exec(int argc, char **argv)
{
	struct conn		*c;
	struct reply		*s, *r;
	struct result_target	*t;
	struct json		 j;
	struct buf		 req, out;
	struct simq_id		 id;
	const char		*spec;
	char			 idbuf[32], (*window)[32];
	struct reply		**rs, *st;
	struct buf		 failed;
	uint64_t		 pos = 0, total = 0, missing = 0, nfailed = 0;
	int			 ch, i, ti = 0, nw, k, many, with_id = 0, bad;
	size_t			 off, e;

	while ((ch = simq_getopt(argc, argv, "", result_opts,
	    &cmd_result_entry)) != -1) {
		if (ch == OPT_WITH_ID)
			with_id = 1;
		else
			simq_usage(&cmd_result_entry);
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		simq_usage_why(&cmd_result_entry,
		    "result needs job ids");
	}
	ids_check(argv, argc);
	c = simq_connect(0);
	s = status_fetch(c, argv, argc, -1, 0);
	if (status_missing(c, s) > 0)
		exit(EXIT_USAGE);
	t = xcalloc((size_t)argc, sizeof *t);
	many = argc > 1;
	for (i = 0; i < argc; i++) {
		proto_parse_id(argv[i], strlen(argv[i]), &id);
		t[i].id = id.id;
		t[i].index = id.index;
		if (item_is(&s->items[i], "array")) {
			spec = item_get(&s->items[i], "spec");
			if (spec == NULL || proto_parse_array(spec,
			    strlen(spec), &t[i].spec) < 0)
				die(EXIT_USAGE, "the broker sent array %s "
				    "without a spec", argv[i]);
			t[i].array = 1;
			many = 1;
		}
	}
	reply_free(s);

	buf_init(&out);
	if (cfg.json) {
		json_init(&j, &out, 1);
		json_object(&j);
		json_key(&j, "results");
		json_array(&j);
	}
	window = xcalloc(RESULT_WINDOW, sizeof *window);
	rs = xcalloc(RESULT_WINDOW, sizeof *rs);
	buf_init(&failed);
	buf_init(&req);
	for (;;) {
		buf_reset(&req);
		for (nw = 0; nw < RESULT_WINDOW; nw++) {
			if (!result_next(t, argc, &ti, &pos, idbuf))
				break;
			memcpy(window[nw], idbuf, sizeof idbuf);
			req_raw(&req, "OUTPUT");
			req_raw(&req, idbuf);
			req_raw(&req, "result");
			req_end(&req);
		}
		if (nw == 0)
			break;
		/* Then the window's states: a failed job's result is none,
		 * whatever its file held. */
		req_raw(&req, "STATUS");
		for (k = 0; k < nw; k++)
			req_raw(&req, window[k]);
		req_end(&req);
		conn_send(c, req.p, req.len);
		for (k = 0; k < nw; k++)
			rs[k] = conn_read(c);
		st = conn_read(c);
		if (st->kind != REPLY_ITEMS || st->nitems != (size_t)nw)
			conn_die_reply(c, st, NULL);
		for (k = 0; k < nw; k++) {
			r = rs[k];
			total++;
			i = jobview_state(&st->items[k]);
			bad = i == JS_FAILED || i == JS_CANCELED;
			if (bad) {
				if (++nfailed <= 10) {
					if (failed.len > 0)
						buf_put(&failed, " ", 1);
					buf_put(&failed, window[k],
					    strlen(window[k]));
				}
			}
			if (r->kind != REPLY_DATA) {
				if (r->kind != REPLY_ERR || (r->err !=
				    PERR_STATE && r->err != PERR_NOTFOUND))
					conn_die_reply(c, r, NULL);
				if (!many && !bad)
					output_fail(c, r, window[k]);
				if (!many)
					die(EXIT_FAILED, "job %s %s: it has no "
					    "result; see simq status -l %s",
					    window[k], item_get(&st->items[k],
					    "state"), window[k]);
				if (!bad)
					missing++;
			}
			if (cfg.json) {
				json_object(&j);
				json_key(&j, "id");
				json_cstr(&j, window[k]);
				json_key(&j, "result");
				if (r->kind == REPLY_DATA)
					json_str(&j, r->data, r->datalen);
				else
					json_null(&j);
				json_key(&j, "state");
				json_cstr(&j, item_get(&st->items[k],
				    "state"));
				json_end(&j);
			} else if (r->kind == REPLY_DATA && !bad && with_id) {
				/* Every line of it tagged, as parallel --tag
				 * does. */
				for (off = 0; off < r->datalen; off = e) {
					for (e = off; e < r->datalen &&
					    r->data[e] != '\n'; e++)
						;
					if (e < r->datalen)
						e++;
					printf("%s\t", window[k]);
					fwrite(r->data + off, 1, e - off,
					    stdout);
				}
				if (r->datalen == 0)
					printf("%s\t", window[k]);
				if (r->datalen == 0 ||
				    r->data[r->datalen - 1] != '\n')
					putchar('\n');
			} else if (r->kind == REPLY_DATA && (!bad || !many)) {
				/* One job asked for: what it left, though it
				 * failed (the note says so). */
				fwrite(r->data, 1, r->datalen, stdout);
				if (many && r->datalen > 0 &&
				    r->data[r->datalen - 1] != '\n')
					putchar('\n');
			}
			reply_free(r);
		}
		reply_free(st);
	}
	free(rs);
	buf_free(&req);
	free(window);
	free(t);
	if (cfg.json) {
		json_end(&j);
		json_end(&j);
		json_finish(&j);
		simq_print_json(&out);
	}
	buf_free(&out);
	conn_close(c);
	buf_put_u8(&failed, 0);
	if (nfailed > 0 && !many) {
		error_say("job %s did not succeed, so this is not its result "
		    "(only what it left, if anything); see simq status -l %s",
		    (char *)failed.p, (char *)failed.p);
	} else if (nfailed > 0) {
		error_say("%llu of %llu have no result because they failed or "
		    "were canceled: %s%s", (unsigned long long)nfailed,
		    (unsigned long long)total, (char *)failed.p,
		    nfailed > 10 ? " ..." : "");
	}
	buf_free(&failed);
	if (missing > 0) {
		error_say("%llu of %llu have no result: not finished yet (or "
		    "never started)", (unsigned long long)missing,
		    (unsigned long long)total);
		return EXIT_FAILED;
	}
	return nfailed > 0 ? EXIT_FAILED : EXIT_OK;
}
