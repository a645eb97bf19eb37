/*
 * opts.c: the command table, the request line checker, and the job
 * options shared by SUBMIT and BATCH.
 *
 * The one idea: a request is checked against the table (verb, argument
 * count, body length) before any handler sees it, so handlers start from
 * a line whose shape is known and only check what their arguments mean.
 * The table is the single place that says what each verb looks like;
 * its usage strings are what PROTOCOL.md's headings say.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

/*
 * minargs and maxargs count every word after the verb, the body length
 * word included; -1 is "as many as fit on a line".
 */
static const struct proto_cmdinfo proto_cmds[CMD__COUNT] = {
	[CMD_NONE] = { NULL, 0, 0, PROTO_BODY_NONE, 0, NULL },
	[CMD_HELLO] = { "HELLO", 1, 2, PROTO_BODY_NONE, 0,
	    "HELLO VERSION [TOKEN]" },
	[CMD_PING] = { "PING", 0, 0, PROTO_BODY_NONE, 0, "PING" },
	[CMD_QUIT] = { "QUIT", 0, 0, PROTO_BODY_NONE, 0, "QUIT" },
	[CMD_SUBMIT] = { "SUBMIT", 2, -1, PROTO_BODY_NONE, 0,
	    "SUBMIT [OPTION=VALUE...] -- ARG..." },
	[CMD_BATCH] = { "BATCH", 1, -1, PROTO_BODY_LAST, SIMQ_BATCH_MAX,
	    "BATCH [OPTION=VALUE...] BYTES" },
	[CMD_WORKER] = { "WORKER", 1, 9, PROTO_BODY_NONE, 0,
	    "WORKER NAME [host=H] [slots=N] [lease=MS] [pid=P] "
	    "[queues=Q[,Q...]] [cpus=N] [gpus=N] [mem=BYTES]" },
	[CMD_TAKE] = { "TAKE", 3, 9, PROTO_BODY_NONE, 0,
	    "TAKE MAX WAIT-MS QUEUE[,QUEUE...] [ahead=N] [cpus=N] [gpus=N] "
	    "[mem=BYTES] [time=MS] [ending=ID:ATTEMPT[,...]]" },
	/* A worker lists what it runs: a few TAKEs' worth
	 * (SIMQ_TAKE_MAX * 4), but no more than a line's words. */
	[CMD_HEARTBEAT] = { "HEARTBEAT", 0, SIMQ_WORDS_MAX - 1,
	    PROTO_BODY_NONE, 0, "HEARTBEAT [ID:ATTEMPT...]" },
	[CMD_FINISH] = { "FINISH", 3, -1, PROTO_BODY_LAST, SIMQ_FINISH_MAX,
	    "FINISH ID ATTEMPT [KEY=VALUE...] BYTES" },
	[CMD_FAIL] = { "FAIL", 3, 3, PROTO_BODY_NONE, 0,
	    "FAIL ID ATTEMPT REASON" },
	[CMD_RELEASE] = { "RELEASE", 2, 3, PROTO_BODY_NONE, 0,
	    "RELEASE ID ATTEMPT [lost=1]" },
	[CMD_STATUS] = { "STATUS", 1, -1, PROTO_BODY_NONE, 0,
	    "STATUS ID..." },
	[CMD_WAIT] = { "WAIT", 2, -1, PROTO_BODY_NONE, 0,
	    "WAIT TIMEOUT-MS ID..." },
	[CMD_LIST] = { "LIST", 0, 4, PROTO_BODY_NONE, 0,
	    "LIST [q=QUEUE] [state=STATE] [after=ID] [limit=N]" },
	[CMD_QUEUES] = { "QUEUES", 0, 0, PROTO_BODY_NONE, 0, "QUEUES" },
	[CMD_WORKERS] = { "WORKERS", 0, 0, PROTO_BODY_NONE, 0, "WORKERS" },
	[CMD_STATS] = { "STATS", 0, 0, PROTO_BODY_NONE, 0, "STATS" },
	[CMD_OUTPUT] = { "OUTPUT", 2, 2, PROTO_BODY_NONE, 0,
	    "OUTPUT ID stdout|stderr|result" },
	[CMD_CANCEL] = { "CANCEL", 1, -1, PROTO_BODY_NONE, 0,
	    "CANCEL ID...|q=QUEUE [state=STATE]" },
	[CMD_RETRY] = { "RETRY", 1, -1, PROTO_BODY_NONE, 0, "RETRY ID..." },
	[CMD_PAUSE] = { "PAUSE", 1, 1, PROTO_BODY_NONE, 0, "PAUSE QUEUE" },
	[CMD_RESUME] = { "RESUME", 1, 1, PROTO_BODY_NONE, 0,
	    "RESUME QUEUE" },
	[CMD_FOLLOW] = { "FOLLOW", 2, 5, PROTO_BODY_NONE, 0,
	    "FOLLOW ID stdout|stderr [from=OFFSET] [attempt=N] [wait=MS]" },
	[CMD_PUSH] = { "PUSH", 5, 5, PROTO_BODY_LAST, SIMQ_FOLLOW_CHUNK,
	    "PUSH ID ATTEMPT stdout|stderr OFFSET BYTES" },
	[CMD_TASKS] = { "TASKS", 1, 4, PROTO_BODY_NONE, 0,
	    "TASKS ID [state=STATE] [from=CURSOR] [limit=N]" },
	[CMD_EXPLAIN] = { "EXPLAIN", 1, 1, PROTO_BODY_NONE, 0,
	    "EXPLAIN ID" },
	/* Blobs: a line of hashes; one chunk each way. */
	[CMD_HAVE] = { "HAVE", 1, SIMQ_FILES_MAX, PROTO_BODY_NONE, 0,
	    "HAVE HASH..." },
	[CMD_PUT] = { "PUT", 4, 4, PROTO_BODY_LAST, SIMQ_CHUNK_MAX,
	    "PUT HASH SIZE OFFSET BYTES" },
	[CMD_GET] = { "GET", 3, 3, PROTO_BODY_NONE, 0,
	    "GET HASH OFFSET MAX" },
	[CMD_EACHLINE] = { "EACHLINE", 1, -1, PROTO_BODY_LAST,
	    SIMQ_EACHLINE_MAX, "EACHLINE [OPTION=VALUE...] BYTES" },
};

/* Returns NULL for CMD_NONE and anything out of range. */
const struct proto_cmdinfo *
proto_cmd_info(enum proto_cmd cmd)
{
	if (cmd <= CMD_NONE || cmd >= CMD__COUNT)
		return (NULL);
	return (&proto_cmds[cmd]);
}

static void proto_msg(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
proto_msg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list	 ap;

	if (msg == NULL || msglen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

/*
 * Client bytes echoed in a message: a message goes back on one reply line,
 * so only short runs of printable ASCII are quoted; anything else is
 * shown as "...".  Returns what to print and its length in *n.
 */
#define PROTO_ECHO_MAX	40

static const char *
proto_echo(const struct proto_word *w, int *n)
{
	size_t	 i;

	*n = 3;
	if (w->len > PROTO_ECHO_MAX)
		return ("...");
	for (i = 0; i < w->len; i++) {
		if (w->p[i] <= 0x20 || w->p[i] >= 0x7f)
			return ("...");
	}
	*n = (int)w->len;
	return (w->p);
}

static enum proto_cmd
proto_cmd_lookup(const struct proto_word *w)
{
	const char	*name;
	size_t		 i;
	int		 c, cmd;

	for (cmd = CMD_NONE + 1; cmd < CMD__COUNT; cmd++) {
		name = proto_cmds[cmd].name;
		if (strlen(name) != w->len)
			continue;
		for (i = 0; i < w->len; i++) {
			c = (unsigned char)w->p[i];
			if (c >= 'a' && c <= 'z')
				c -= 'a' - 'A';
			if (c != name[i])
				break;
		}
		if (i == w->len)
			return (cmd);
	}
	return (CMD_NONE);
}

/*
 * Errors, and what the caller does with each:
 *
 *   PERR_UNKNOWN   no verb (an empty line: req->nwords is 0) or an
 *                  unknown one; req->cmd is CMD_NONE.  Reply.
 *   PERR_BADREQ    too many words, wrong argument count, or a body length
 *                  that is not a number.  Reply; no body is expected, and
 *                  req->bodylen is 0.
 *   PERR_BODYSIZE  the line is fine but announces a body larger than the
 *                  command's bodymax; req->bodylen is the announced length.
 *                  Do not reply yet: call proto_in_body(req->bodylen,
 *                  bodymax), and the framer swallows the body and then
 *                  returns PROTO_ERR with PERR_BODYSIZE; reply then.
 */
enum proto_err
proto_req_parse(struct proto_req *req, char *line, size_t len, char *msg,
    size_t msglen)
{
	const struct proto_cmdinfo	*ci;
	struct proto_word		*last;
	const char			*echo;
	uint64_t			 n;
	int				 nw, nargs, elen;

	req->cmd = CMD_NONE;
	req->nargs = 0;
	req->args = req->words + 1;
	req->bodylen = 0;
	req->nwords = 0;
	if (msg != NULL && msglen > 0)
		msg[0] = '\0';

	nw = proto_split(line, len, req->words, SIMQ_WORDS_MAX);
	req->nwords = nw < 0 ? SIMQ_WORDS_MAX : nw;
	if (req->nwords == 0) {
		proto_msg(msg, msglen, "empty line");
		return (PERR_UNKNOWN);
	}
	if ((req->cmd = proto_cmd_lookup(&req->words[0])) == CMD_NONE) {
		echo = proto_echo(&req->words[0], &elen);
		proto_msg(msg, msglen, "unknown command '%.*s'", elen, echo);
		return (PERR_UNKNOWN);
	}
	ci = &proto_cmds[req->cmd];
	if (nw < 0) {
		proto_msg(msg, msglen, "more than %d words on a line",
		    SIMQ_WORDS_MAX);
		return (PERR_BADREQ);
	}
	nargs = nw - 1;
	if (nargs < ci->minargs || (ci->maxargs >= 0 && nargs > ci->maxargs)) {
		proto_msg(msg, msglen, "wrong number of arguments; usage: %s",
		    ci->usage);
		return (PERR_BADREQ);
	}
	req->nargs = nargs;
	if (ci->body == PROTO_BODY_NONE)
		return (PERR_NONE);

	last = &req->words[nw - 1];
	req->nargs = nargs - 1;
	if (proto_parse_u64(last->p, last->len, SIZE_MAX, &n) != 0) {
		echo = proto_echo(last, &elen);
		proto_msg(msg, msglen, "bad body length '%.*s'; usage: %s",
		    elen, echo, ci->usage);
		return (PERR_BADREQ);
	}
	req->bodylen = n;
	if (n > ci->bodymax) {
		proto_msg(msg, msglen, "a %s body holds at most %zu bytes",
		    ci->name, ci->bodymax);
		return (PERR_BODYSIZE);
	}
	return (PERR_NONE);
}

/*
 * Job options.
 */

enum {
	OPT_Q,
	OPT_PRI,
	OPT_TIMEOUT,
	OPT_RETRIES,
	OPT_DELAY,
	OPT_NAME,
	OPT_CWD,
	OPT_OUTPUT,
	OPT_ARRAY,
	OPT_AFTER,
	OPT_ENV,
	OPT_CPUS,
	OPT_GPUS,
	OPT_MEM,
	OPT_FILE,
	OPT_COLLECT,
	OPT__COUNT
};

static const char *const proto_opt_names[OPT__COUNT] = {
	"q", "pri", "timeout", "retries", "delay", "name", "cwd", "output",
	"array", "after", "env", "cpus", "gpus", "mem", "file",
	"collect"
};

/* cwd= and output= become paths on the worker: PATH_MAX bounds them. */
#define PROTO_PATH_MAX	4096

static const char *depkinds[SIMQ_DEP__COUNT] = { "ok", "any", "failed" };

const char *
proto_depkind_name(int k)
{
	return k >= 0 && k < SIMQ_DEP__COUNT ? depkinds[k] : "?";
}

/* Parses the comma-separated [KIND:]IDs of after= into o->deps and
 * o->depkind. */
static int
proto_opt_after(struct proto_jobopts *o, char *s, size_t len)
{
	char	*comma, *colon;
	size_t	 n, kl;
	int	 k;

	for (;;) {
		comma = memchr(s, ',', len);
		n = comma != NULL ? (size_t)(comma - s) : len;
		if (o->ndeps == SIMQ_DEPS_MAX)
			return (-1);
		o->depkind[o->ndeps] = SIMQ_DEP_OK;
		if ((colon = memchr(s, ':', n)) != NULL) {
			kl = (size_t)(colon - s);
			for (k = 0; k < SIMQ_DEP__COUNT; k++)
				if (strlen(depkinds[k]) == kl &&
				    memcmp(s, depkinds[k], kl) == 0)
					break;
			if (k == SIMQ_DEP__COUNT)
				return (-1);
			o->depkind[o->ndeps] = (uint8_t)k;
			s += kl + 1;
			n -= kl + 1;
			len -= kl + 1;
		}
		if (proto_parse_id(s, n, &o->deps[o->ndeps]) != 0)
			return (-1);
		o->ndeps++;
		if (comma == NULL)
			return (0);
		s = comma + 1;
		len -= n + 1;
	}
}

/* 1 if the name of f[n] is one of f[0..n-1]'s. */
static int
name_repeats(const struct proto_file *f, int n)
{
	int	 i;

	for (i = 0; i < n; i++)
		if (f[i].name.len == f[n].name.len &&
		    memcmp(f[i].name.p, f[n].name.p, f[n].name.len) == 0)
			return 1;
	return 0;
}

static char proto_default_queue[] = "default";

enum proto_err
proto_jobopts_parse(struct proto_jobopts *o, struct proto_word *w, int n,
    char *msg, size_t msglen)
{
	struct proto_word	 key, val;
	const char		*why, *echo;
	unsigned		 seen = 0;
	uint64_t		 u;
	long			 dlen;
	int			 i, k, elen;

	memset(o, 0, sizeof *o);
	o->queue.p = proto_default_queue;
	o->queue.len = sizeof proto_default_queue - 1;
	if (msg != NULL && msglen > 0)
		msg[0] = '\0';

	for (i = 0; i < n; i++) {
		if (proto_kv(&w[i], &key, &val) != 0) {
			echo = proto_echo(&w[i], &elen);
			proto_msg(msg, msglen, "option '%.*s' is not KEY=VALUE",
			    elen, echo);
			return (PERR_BADREQ);
		}
		for (k = 0; k < OPT__COUNT; k++) {
			if (proto_word_is(&key, proto_opt_names[k]))
				break;
		}
		if (k == OPT__COUNT) {
			echo = proto_echo(&key, &elen);
			proto_msg(msg, msglen, "unknown option '%.*s'", elen,
			    echo);
			return (PERR_BADREQ);
		}
		if (k != OPT_ENV && k != OPT_FILE && k != OPT_COLLECT &&
		    (seen & (1u << k))) {
			proto_msg(msg, msglen, "option %s given twice",
			    proto_opt_names[k]);
			return (PERR_BADREQ);
		}
		seen |= 1u << k;
		if ((dlen = proto_decode(val.p, val.len)) < 0) {
			proto_msg(msg, msglen, "option %s: bad %%XX escape",
			    proto_opt_names[k]);
			return (PERR_BADREQ);
		}
		val.len = dlen;

		why = NULL;
		switch (k) {
		case OPT_Q:
			if (!proto_name_ok(val.p, val.len))
				why = "not a queue name ([A-Za-z0-9._-], "
				    "1-128 bytes)";
			o->queue = val;
			break;
		case OPT_PRI:
			if (proto_parse_i64(val.p, val.len, SIMQ_PRIO_MIN,
			    SIMQ_PRIO_MAX, &o->prio) != 0)
				why = "not a number in -1000000000..1000000000";
			break;
		case OPT_TIMEOUT:
		case OPT_DELAY:
			if (proto_parse_u64(val.p, val.len, SIMQ_MS_MAX, &u)
			    != 0)
				why = "not a number of milliseconds";
			else if (k == OPT_TIMEOUT)
				o->timeout_ms = u;
			else
				o->delay_ms = u;
			break;
		case OPT_RETRIES:
			if (proto_parse_u64(val.p, val.len, SIMQ_RETRIES_MAX,
			    &u) != 0)
				why = "not a number in 0..1000";
			else
				o->retries = (uint32_t)u;
			break;
		case OPT_NAME:
			if (val.len > SIMQ_NAME_MAX)
				why = "longer than 128 bytes";
			o->name = val;
			break;
		case OPT_CWD:
			if (val.len > PROTO_PATH_MAX)
				why = "longer than 4096 bytes";
			o->cwd = val;
			break;
		case OPT_OUTPUT:
			if (val.len > PROTO_PATH_MAX)
				why = "longer than 4096 bytes";
			o->output = val;
			break;
		case OPT_ARRAY:
			if (proto_parse_array(val.p, val.len, &o->array) != 0)
				why = "not A-B[:STEP][%MAXRUNNING]";
			o->has_array = 1;
			break;
		case OPT_AFTER:
			if (proto_opt_after(o, val.p, val.len) != 0)
				why = "not a list of at most 1024 job ids";
			break;
		case OPT_CPUS:
			if (proto_parse_u64(val.p, val.len, SIMQ_CPUS_MAX, &u)
			    != 0 || u == 0)
				why = "not a number in 1..4096";
			else
				o->cpus = (uint32_t)u;
			break;
		case OPT_GPUS:
			if (proto_parse_u64(val.p, val.len, SIMQ_GPUS_MAX, &u)
			    != 0)
				why = "not a number in 0..64";
			else
				o->gpus = (uint32_t)u;
			break;
		case OPT_MEM:
			if (proto_parse_u64(val.p, val.len, SIMQ_MEM_MAX, &u)
			    != 0)
				why = "not a number of bytes (at most 2^50)";
			else
				o->mem = u;
			break;
		case OPT_ENV:
			if (o->nenv == SIMQ_ENV_MAX)
				why = "more than 256 variables";
			else if (val.len == 0 || val.p[0] == '=' ||
			    memchr(val.p, '=', val.len) == NULL)
				why = "not NAME=VALUE";
			else
				o->env[o->nenv++] = val;
			break;
		case OPT_FILE:
			if (o->nfiles == SIMQ_FILES_MAX)
				why = "more than 1000 files";
			else if ((why = proto_parse_file(val.p, val.len,
			    &o->files[o->nfiles])) == NULL &&
			    name_repeats(o->files, o->nfiles))
				why = "a NAME given twice";
			else if (why == NULL)
				o->nfiles++;
			break;
		case OPT_COLLECT:
			if (o->ncollect == SIMQ_COLLECT_MAX)
				why = "more than 64 patterns";
			else if ((why = proto_glob_why(val.p, val.len)) == NULL)
				o->collect[o->ncollect++] = val;
			break;
		}
		/* Strings become C strings on the worker. */
		if (why == NULL && memchr(val.p, '\0', val.len) != NULL)
			why = "contains a NUL byte";
		if (why != NULL) {
			proto_msg(msg, msglen, "option %s: %s",
			    proto_opt_names[k], why);
			return (PERR_BADREQ);
		}
	}
	return (PERR_NONE);
}
