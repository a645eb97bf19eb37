/*
 * cmd.c: the command table, the session commands, and parked replies.
 *
 * proto_req_parse() has already checked the verb and the argument count
 * against the shared table in proto/, so a handler starts from a request
 * of the right shape and only checks values.  Each handler answers with
 * exactly one reply.  A handler never writes to the socket: replies wait
 * in the connection's pending buffer until the pass's journal commit.
 * The handlers live by subject: cmd_submit.c (submitting and changing
 * jobs), cmd_worker.c (what workers send), cmd_view.c (looking).
 *
 * TAKE and WAIT may park: their reply is held, without polling, until the
 * event they wait for, their deadline, or the client's next request.  So
 * may GET, for the last chunk of a resumed download: it hashes a step of
 * the blob each pass until it can answer (blob.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "log.h"

struct connlist parked_conns = TAILQ_HEAD_INITIALIZER(parked_conns);

static void
h_hello(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	uint64_t	v;

	if (arg_u64(&r->args[0], UINT32_MAX, &v) < 0 || v != SIMQ_PROTO_VERSION) {
		conn_error(c, PERR_VERSION, "this broker speaks version %d",
		    SIMQ_PROTO_VERSION);
		return;
	}
	if (B->cfg.token != NULL) {
		long n = r->nargs > 1 ? proto_decode(r->args[1].p,
		    r->args[1].len) : -1;
		if (n < 0 || !token_equal(r->args[1].p, (size_t)n, B->cfg.token,
		    strlen(B->cfg.token))) {
			conn_error(c, PERR_AUTH, "wrong or missing token");
			conn_auth_failed(c);	/* logs, delays, closes */
			return;
		}
	}
	c->authed = 1;
	conn_reply(c, "OK simq %d", SIMQ_PROTO_VERSION);
}

static void
h_ping(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	conn_reply(c, "OK");
}

static void
h_quit(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	conn_reply(c, "OK");
	c->closing = 1;
}

void
cmd_park(struct conn *c, int cmd, uint64_t wait_ms, void *arg)
{
	struct timeval	tv;

	c->parked = cmd;
	c->park_arg = arg;
	if (cmd == CMD_TAKE && ((struct take_arg *)arg)->idle)
		B->idle_takes++;
	c->park_until = B->now + wait_ms;
	tv.tv_sec = (time_t)(wait_ms / 1000);
	tv.tv_usec = (suseconds_t)(wait_ms % 1000) * 1000;
	evtimer_add(c->park_ev, &tv);
	TAILQ_INSERT_TAIL(&parked_conns, c, pentry);
}

static void
park_free(struct conn *c)
{
	if (c->parked == CMD_TAKE) {
		struct take_arg *t = c->park_arg;
		if (t->idle)
			B->idle_takes--;
		free(t->queues);
	}
	free(c->park_arg);
	c->park_arg = NULL;
}

/* Ends a park without a reply (the connection is going away). */
void
cmd_unpark(struct conn *c)
{
	if (!c->parked)
		return;
	TAILQ_REMOVE(&parked_conns, c, pentry);
	evtimer_del(c->park_ev);
	park_free(c);
	c->parked = 0;
}

typedef void	(*handler_fn)(struct conn *, struct proto_req *, char *, size_t);

static const handler_fn handlers[CMD__COUNT] = {
	[CMD_HELLO] = h_hello,
	[CMD_PING] = h_ping,
	[CMD_QUIT] = h_quit,
	[CMD_SUBMIT] = h_submit,
	[CMD_BATCH] = h_batch,
	[CMD_EACHLINE] = h_eachline,
	[CMD_WORKER] = h_worker,
	[CMD_TAKE] = h_take,
	[CMD_HEARTBEAT] = h_heartbeat,
	[CMD_FINISH] = h_finish,
	[CMD_FAIL] = h_fail,
	[CMD_RELEASE] = h_release,
	[CMD_STATUS] = h_status,
	[CMD_WAIT] = h_wait,
	[CMD_LIST] = h_list,
	[CMD_QUEUES] = h_queues,
	[CMD_WORKERS] = h_workers,
	[CMD_STATS] = h_stats,
	[CMD_OUTPUT] = h_output,
	[CMD_CANCEL] = h_cancel_retry,
	[CMD_RETRY] = h_cancel_retry,
	[CMD_PAUSE] = h_pause_resume,
	[CMD_RESUME] = h_pause_resume,
	[CMD_FOLLOW] = h_follow,
	[CMD_PUSH] = h_push,
	[CMD_TASKS] = h_tasks,
	[CMD_EXPLAIN] = h_explain,
	[CMD_HAVE] = h_have,
	[CMD_PUT] = h_put,
	[CMD_GET] = h_get,
};

/* Runs a checked request.  body is writable (decoding is in place). */
void
cmd_dispatch(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	if (B->cfg.token != NULL && !c->authed && r->cmd != CMD_HELLO &&
	    r->cmd != CMD_PING && r->cmd != CMD_QUIT) {
		conn_error(c, PERR_AUTH, "send HELLO %d TOKEN first",
		    SIMQ_PROTO_VERSION);
		return;
	}
	if (handlers[r->cmd] == NULL)
		fatal("command %d has no handler", r->cmd);
	if (c->worker != NULL) {
		c->worker->suspect = 0;		/* it is alive */
		c->worker->seen = B->now;
	}
	handlers[r->cmd](c, r, body, blen);
}

/*
 * Answers a parked TAKE or WAIT if it can, or with what there is when
 * final.  Returns 1 when it replied (the connection is then unparked).
 */
static int
park_try(struct conn *c, int final)
{
	int	done;

	if (c->parked == CMD_TAKE)
		done = take_serve(c, c->park_arg, final);
	else if (c->parked == CMD_GET) {
		/* A step a pass: the timer makes the next pass come. */
		static const struct timeval now;
		if (!(done = blob_get_parked(c, final)))
			evtimer_add(c->park_ev, &now);
	} else if (c->parked == CMD_FOLLOW)
		done = follow_serve(c, final);
	else {
		struct wait_arg *w = c->park_arg;
		done = final || all_finished(w->ids, w->n);
		if (done)
			reply_status_items(c, w->ids, w->n);
	}
	if (done)
		cmd_unpark(c);
	return done;
}

/* After a pass: a parked reply that can go now goes, and the connection
 * runs what it has buffered since. */
static void
serve_one(struct conn *c, int final)
{
	if (!park_try(c, final))
		return;
	conn_resume(c);		/* closes if the client is done */
}

/* The client sent another request: a parked reply ends now, with what
 * there is, so the request after it can run. */
void
cmd_interrupt(struct conn *c)
{
	if (c->parked)
		park_try(c, 1);
}

void
cmd_serve_parked(void)
{
	struct conn	*c, *next;
	int		 dispatch, wake, follow, round;

	/* A second round for what the first made happen (a job taken
	 * that a parked FOLLOW waits for, a follow its worker must hear):
	 * the loop may sleep after this pass. */
	for (round = 0; round < 2; round++) {
		dispatch = B->want_dispatch;
		wake = B->want_wake;
		follow = follow_woken();
		if (round > 0 && !dispatch && !wake && !follow)
			break;
		B->want_dispatch = B->want_wake = 0;
		for (c = TAILQ_FIRST(&parked_conns); c != NULL; c = next) {
			next = TAILQ_NEXT(c, pentry);
			if (c->dead || c->closing)
				continue;
			if (c->parked == CMD_GET) {
				if (round == 0)
					serve_one(c, 0);
			} else if (c->park_until <= B->now ||
			    (c->parked == CMD_TAKE && dispatch) ||
			    (c->parked == CMD_WAIT && wake) ||
			    (c->parked == CMD_FOLLOW && (dispatch || wake ||
			    follow)))
				serve_one(c, c->park_until <= B->now);
		}
	}
}

/* Request arguments every handler parses the same way. */
int
arg_u64(const struct proto_word *w, uint64_t max, uint64_t *v)
{
	return proto_parse_u64(w->p, w->len, max, v);
}

/* Parses ids into a new array; NULL (with an error reply sent) if one is
 * malformed. */
struct simq_id *
parse_ids(struct conn *c, struct proto_word *w, int n)
{
	struct simq_id	*ids = xcalloc((size_t)n, sizeof *ids);
	int		 i;

	for (i = 0; i < n; i++) {
		if (proto_parse_id(w[i].p, w[i].len, &ids[i]) < 0) {
			conn_error(c, PERR_BADREQ, "bad job id '%.*s'",
			    (int)(w[i].len > 40 ? 40 : w[i].len), w[i].p);
			free(ids);
			return NULL;
		}
	}
	return ids;
}
