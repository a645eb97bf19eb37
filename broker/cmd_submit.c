/*
 * cmd_submit.c: SUBMIT and BATCH, and the commands that change jobs and
 * queues: CANCEL, RETRY, PAUSE, RESUME.
 *
 * A request is checked whole before anything changes: options,
 * dependencies, arguments, and only then is the queue made, the record
 * journaled and the jobs created, so a refused request changes nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "log.h"

static struct proto_jobopts	jopts;	/* big: one, not on the stack */
static char			errmsg[256];

/* Parses and checks job options; sends the error reply on failure.  The
 * queue is not made yet (a refused request must change nothing): call
 * opts_queue() once everything else is checked. */
static struct jobopts *
opts_make(struct conn *c, struct proto_word *w, int n)
{
	struct jobopts	*o;
	enum proto_err	 e;

	if ((e = proto_jobopts_parse(&jopts, w, n, errmsg,
	    sizeof errmsg)) != PERR_NONE) {
		conn_error(c, e, "%s", errmsg);
		return NULL;
	}
	if (blob_check_files(c, &jopts) < 0)
		return NULL;
	o = jobopts_new(&jopts, NULL);
	if ((e = job_deps_check(o, errmsg, sizeof errmsg)) != PERR_NONE) {
		conn_error(c, e, "%s", errmsg);
		jobopts_unref(o);
		return NULL;
	}
	return o;
}

/* Gives o its queue, creating it; NULL (with the reply sent, o released)
 * when the queue limit is reached. */
static struct jobopts *
opts_queue(struct conn *c, struct jobopts *o)
{
	if ((o->q = queue_get(jopts.queue.p, jopts.queue.len, 1)) == NULL) {
		conn_error(c, PERR_LIMIT, "too many queues (limit %d)",
		    SIMQ_QUEUES_MAX);
		jobopts_unref(o);
		return NULL;
	}
	return jobopts_intern(o);
}

/*
 * A job whose TAKE item a worker could not read would be accepted and
 * never run: leased, dropped by the worker, leased again.  A worker reads
 * lines of SIMQ_LINE_MAX bytes, CR LF included (proto_in_next), and an
 * item holds more than the request did (id=, attempt=, q=, timeout=, an
 * array's index for each {}), so a request that fits a line may make an
 * item that does not.  Returns 0, or -1 with the error sent (line: the
 * BATCH line, else 0).  Words are no limit: an item has at most a dozen
 * more than its request's SIMQ_WORDS_MAX, and a worker takes
 * SIMQ_WORDS_MAX + 64.
 */
static int
item_check(struct conn *c, const struct jobopts *o, const struct cmd *cmd,
    uint64_t id, uint32_t index, size_t line)
{
	size_t	n;

	n = reply_take_len(o, jopts.queue.p, jopts.queue.len, cmd, id, index);
	if (n <= SIMQ_LINE_MAX)
		return 0;
	if (line == 0)
		conn_error(c, PERR_BADREQ, "the job's TAKE item would be %zu "
		    "bytes, over the %d a worker reads: %zu fewer bytes of "
		    "options or arguments", n, SIMQ_LINE_MAX,
		    n - SIMQ_LINE_MAX);
	else
		conn_error(c, PERR_BODY, "line %zu: the job's TAKE item would "
		    "be %zu bytes, over the %d a worker reads: %zu fewer bytes "
		    "of options or arguments", line, n, SIMQ_LINE_MAX,
		    n - SIMQ_LINE_MAX);
	return -1;
}

/* The largest index of an array, whose task has the longest item. */
static uint32_t
array_last(const struct array_spec *a)
{
	return a->first + a->step * (uint32_t)(proto_array_count(a) - 1);
}

void
h_submit(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct jobopts	*o;
	struct cmd	*cmd;
	uint64_t	 id, nb;
	int		 i, dd = -1;

	for (i = 0; i < r->nargs; i++) {
		if (proto_word_is(&r->args[i], "--")) {
			dd = i;
			break;
		}
	}
	if (dd < 0 || dd == r->nargs - 1) {
		conn_error(c, PERR_BADREQ, "usage: %s",
		    proto_cmd_info(CMD_SUBMIT)->usage);
		return;
	}
	if ((o = opts_make(c, r->args, dd)) == NULL)
		return;
	if ((cmd = cmd_from_words(r->args + dd + 1, r->nargs - dd - 1)) == NULL) {
		conn_error(c, PERR_BADREQ, "malformed command argument");
		jobopts_unref(o);
		return;
	}
	if (B->next_id > SIMQ_ID_MAX) {
		conn_error(c, PERR_LIMIT, "job ids are exhausted");
		jobopts_unref(o);
		free(cmd);
		return;
	}
	if (item_check(c, o, cmd, B->next_id, jopts.has_array ?
	    array_last(&jopts.array) : SIMQ_NOINDEX, 0) < 0) {
		jobopts_unref(o);
		free(cmd);
		return;
	}
	if (B->njobs >= B->cfg.max_jobs) {
		conn_error(c, PERR_LIMIT, "the broker keeps %llu jobs, its "
		    "limit (--max-jobs); wait for some to finish and expire",
		    (unsigned long long)B->njobs);
		jobopts_unref(o);
		free(cmd);
		return;
	}
	if ((o = opts_queue(c, o)) == NULL) {
		free(cmd);
		return;
	}
	id = B->next_id;
	nb = jopts.delay_ms ? B->now + jopts.delay_ms : 0;
	job_submit(id, 1, o, &cmd, jopts.has_array ? &jopts.array : NULL,
	    B->now, nb);
	jobopts_unref(o);
	conn_reply(c, "OK %llu", (unsigned long long)id);
}

void
h_batch(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	static struct proto_word	 words[SIMQ_WORDS_MAX];
	struct jobopts			*o;
	struct cmd			**cmds = NULL;
	static const struct cmd		 nocmd;
	size_t				 n = 0, cap = 0, lineno = 0, i, base;
	char				*p = body, *end = body + blen, *nl;
	uint64_t			 first, nb;

	if ((o = opts_make(c, r->args, r->nargs)) == NULL)
		return;
	if (jopts.has_array) {
		conn_error(c, PERR_BADREQ, "array= is not allowed in BATCH");
		goto out;
	}
	/* Most commands are far below a line: their item is bounded without
	 * writing it, from the options' item with no command (an argument
	 * encodes to 3 bytes a byte at most, plus its space). */
	base = reply_take_len(o, jopts.queue.p, jopts.queue.len, &nocmd,
	    B->next_id + SIMQ_BATCH_JOBS_MAX, SIMQ_NOINDEX);
	for (; p < end; p = nl + 1) {
		size_t len;
		int nw;
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		len = (size_t)(nl - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if ((nw = proto_split(p, len, words, SIMQ_WORDS_MAX)) < 0) {
			conn_error(c, PERR_BODY, "line %zu: too many words",
			    lineno);
			goto out;
		}
		if (nw == 0)
			continue;	/* blank lines are skipped */
		if (n == SIMQ_BATCH_JOBS_MAX) {
			conn_error(c, PERR_BODY, "more than %d commands; send "
			    "the rest in another BATCH", SIMQ_BATCH_JOBS_MAX);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			cmds = xreallocarray(cmds, cap, sizeof *cmds);
		}
		if ((cmds[n] = cmd_from_words(words, nw)) == NULL) {
			conn_error(c, PERR_BODY, "line %zu: malformed argument",
			    lineno);
			goto out;
		}
		n++;
		if (base + 3 * (size_t)cmds[n - 1]->len + cmds[n - 1]->argc >
		    SIMQ_LINE_MAX && item_check(c, o, cmds[n - 1],
		    B->next_id + n - 1, SIMQ_NOINDEX, lineno) < 0)
			goto out;
	}
	if (n == 0) {
		conn_error(c, PERR_BODY, "the batch holds no command");
		goto out;
	}
	if (B->next_id + n - 1 > SIMQ_ID_MAX) {
		conn_error(c, PERR_LIMIT, "job ids are exhausted");
		goto out;
	}
	c->work += n;		/* its share of a turn (net.c) */
	if (B->njobs + n > B->cfg.max_jobs) {
		conn_error(c, PERR_LIMIT, "the broker keeps %llu jobs and its "
		    "limit (--max-jobs) is %llu: %zu more do not fit",
		    (unsigned long long)B->njobs,
		    (unsigned long long)B->cfg.max_jobs, n);
		goto out;
	}
	if ((o = opts_queue(c, o)) == NULL)
		goto out;
	first = B->next_id;
	nb = jopts.delay_ms ? B->now + jopts.delay_ms : 0;
	job_submit(first, (uint32_t)n, o, cmds, NULL, B->now, nb);
	conn_reply(c, "OK %llu %zu", (unsigned long long)first, n);
	n = 0;		/* the jobs own the commands now */
out:
	for (i = 0; i < n; i++)
		free(cmds[i]);
	free(cmds);
	jobopts_unref(o);
}

/* PAUSE and RESUME name a queue that exists: one that holds jobs, or is
 * paused.  A typo must not make a queue (it would stay for ever). */
void
h_pause_resume(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	struct queue	*q;

	if (!proto_name_ok(r->args[0].p, r->args[0].len)) {
		conn_error(c, PERR_BADREQ, "bad queue name");
		return;
	}
	if ((q = queue_get(r->args[0].p, r->args[0].len, 0)) == NULL) {
		conn_error(c, PERR_NOTFOUND, "no queue %.*s",
		    (int)r->args[0].len, r->args[0].p);
		return;
	}
	queue_pause(q, r->cmd == CMD_PAUSE);
	conn_reply(c, "OK");
}

/*
 * EACHLINE: one array, a task per line of the body after the first (which
 * holds the command's words); the lines are stored once, with the array
 * (entries.c).  A task's item carries its line for each {} and as entry=,
 * encoded: the longest line must leave the item within a line.
 */
void
h_eachline(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	static struct proto_word	 words[SIMQ_WORDS_MAX];
	struct jobopts			*o;
	struct cmd			*cmd = NULL;
	struct entries			*e = NULL;
	struct array_spec		 spec;
	char				*nl, why[160];
	size_t				 len, item, nbraces = 0, i;
	uint64_t			 id, nb;
	int				 nw;

	if ((o = opts_make(c, r->args, r->nargs)) == NULL)
		return;
	if (jopts.has_array) {
		conn_error(c, PERR_BADREQ, "array= is not allowed in EACHLINE: "
		    "its lines make the array");
		goto out;
	}
	if ((nl = memchr(body, '\n', blen)) == NULL) {
		conn_error(c, PERR_BODY, "the body holds no command line");
		goto out;
	}
	len = (size_t)(nl - body);
	if (len > 0 && body[len - 1] == '\r')
		len--;
	if (len > SIMQ_LINE_MAX || (nw = proto_split(body, len, words,
	    SIMQ_WORDS_MAX)) <= 0 ||
	    (cmd = cmd_from_words(words, nw)) == NULL) {
		conn_error(c, PERR_BODY, "the first line must hold the "
		    "command's words");
		goto out;
	}
	if ((e = entries_parse(nl + 1, blen - (size_t)(nl + 1 - body), why,
	    sizeof why)) == NULL) {
		conn_error(c, PERR_BODY, "%s", why);
		goto out;
	}
	/* The item: the options as sent, the command encoded, and the
	 * longest line encoded once for each {} and once as entry=. */
	for (i = 0; i + 1 < cmd->len; i++)
		if (cmd->data[i] == '{' && cmd->data[i + 1] == '}')
			nbraces++;
	item = 512 + 3 * (size_t)cmd->len + 3 * entries_maxlen(e) *
	    (nbraces + 1);
	for (i = 0; i < (size_t)r->nargs; i++)
		item += r->args[i].len + 1;
	if (item > SIMQ_LINE_MAX) {
		conn_error(c, PERR_BODY, "the longest line (%zu bytes), in the "
		    "command's %zu {} and as SIMQ_ENTRY, would make a job item "
		    "of up to %zu bytes, over %d: use fewer {} or shorter lines",
		    entries_maxlen(e), nbraces, item, SIMQ_LINE_MAX);
		goto out;
	}
	if (B->next_id > SIMQ_ID_MAX) {
		conn_error(c, PERR_LIMIT, "job ids are exhausted");
		goto out;
	}
	if (B->njobs >= B->cfg.max_jobs) {
		conn_error(c, PERR_LIMIT, "the broker keeps %llu jobs, its "
		    "limit (--max-jobs); wait for some to finish and expire",
		    (unsigned long long)B->njobs);
		goto out;
	}
	if ((o = opts_queue(c, o)) == NULL) {
		o = NULL;
		goto out;
	}
	c->work += 1 + e->n / SIMQ_BATCH_JOBS_MAX;	/* its share (net.c) */
	memset(&spec, 0, sizeof spec);
	spec.first = 1;
	spec.last = (uint32_t)e->n;
	spec.step = 1;
	id = B->next_id;
	nb = jopts.delay_ms ? B->now + jopts.delay_ms : 0;
	job_submit_lines(id, o, cmd, &spec, e, B->now, nb);
	cmd = NULL;
	e = NULL;
	conn_reply(c, "OK %llu %llu", (unsigned long long)id,
	    (unsigned long long)spec.last);
out:
	free(cmd);
	entries_free(e);
	jobopts_unref(o);
}
