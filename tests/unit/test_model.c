/*
 * test_model.c: the job model (queues, arrays, dependencies, retries,
 * leases, cancel, retry) driven directly, with a real journal in a
 * temporary directory; and the property that matters most: replaying the
 * journal, or a snapshot of it, rebuilds exactly the state that was live.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "simqd.h"
#include "log.h"

static char	 dir[64];
static char	 jdir[128];

static struct journal *
open_journal(void)
{
	struct journal_opts	jo;
	char			err[256];
	struct journal		*j;

	memset(&jo, 0, sizeof jo);
	jo.dir = jdir;
	jo.policy = FSYNC_NONE;
	B->replaying = 1;
	j = journal_open(&jo, rec_apply, NULL, err, sizeof err);
	B->replaying = 0;
	if (j == NULL)
		fail_msg("journal_open: %s", err);
	job_replay_done();
	return j;
}

static void
state_init(void)
{
	TAILQ_INIT(&B->queues);
	TAILQ_INIT(&B->jobs);
	TAILQ_INIT(&B->finished);
	heap_init(&B->timers, due_less);
	idmap_init();
	B->nqueues = 0;
	B->next_id = 1;
}

static void
state_free(void)
{
	job_free_all();
	worker_free_all();
	queues_free();
	heap_free(&B->timers);
}

static int
setup(void **st)
{
	(void)st;
	snprintf(dir, sizeof dir, "/tmp/simq-model-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(jdir, sizeof jdir, "%s/journal", dir);
	memset(&B->cfg, 0, sizeof B->cfg);
	B->cfg.retention_ms = 3600000;
	B->cfg.backoff_base_ms = 1000;
	B->cfg.backoff_cap_ms = 8000;
	B->cfg.max_lost = 2;
	B->cfg.default_lease_ms = 30000;
	B->now = 1000000;
	B->base = event_base_new();
	B->timer_ev = evtimer_new(B->base, (event_callback_fn)abort, NULL);
	B->timer_armed = 0;
	state_init();
	B->journal = open_journal();
	return 0;
}

static int
teardown(void **st)
{
	char	cmd[160];

	(void)st;
	if (B->journal != NULL)
		journal_close(B->journal);
	B->journal = NULL;
	state_free();
	event_free(B->timer_ev);
	event_base_free(B->base);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Submits a job as SUBMIT does: opts is a space-separated option string,
 * argv a command line.  Returns the job. */
static struct job *
submit(const char *opts, const char *argv)
{
	static struct proto_jobopts	po;
	static struct proto_word	w[64], a[64];
	static char			ob[512], ab[512];
	char				msg[128];
	struct jobopts			*o;
	struct cmd			*c;
	struct buf			 b;
	uint64_t			 id = B->next_id;
	int				 nw, na;

	snprintf(ob, sizeof ob, "%s", opts);
	snprintf(ab, sizeof ab, "%s", argv);
	nw = proto_split(ob, strlen(ob), w, 64);
	na = proto_split(ab, strlen(ab), a, 64);
	assert_int_equal(proto_jobopts_parse(&po, w, nw, msg, sizeof msg),
	    PERR_NONE);
	o = jobopts_new(&po, queue_get(po.queue.p, po.queue.len, 1));
	assert_int_equal(job_deps_check(o, msg, sizeof msg), PERR_NONE);
	c = cmd_from_words(a, na);
	assert_non_null(c);
	buf_init(&b);
	rec_submit(&b, id, 1, o, &c, po.has_array ? &po.array : NULL, B->now,
	    po.delay_ms ? B->now + po.delay_ms : 0);
	journal_put(REC_SUBMIT, &b);
	return job_submit(id, o, c, po.has_array ? &po.array : NULL, B->now,
	    po.delay_ms ? B->now + po.delay_ms : 0);
}

/* A connected worker (a disconnected one with no jobs is forgotten). */
static struct worker *
worker(const char *name)
{
	static struct conn	 fake;
	struct worker		*w = worker_get(name, 1);

	w->lease_ms = 30000;
	w->conn = &fake;
	return w;
}

/* Takes the next job of queue qn for w, as TAKE does; NULL if none. */
static struct job *
take(const char *qn, struct worker *w)
{
	struct queue	*q = queue_get(qn, strlen(qn), 0);
	struct job	*j;

	if (q == NULL || q->paused || (j = queue_take(q)) == NULL)
		return NULL;
	job_lease(j, w, j->attempts + 1, B->now, B->now + w->lease_ms);
	return j;
}

static void
end(struct job *j, int exitcode)
{
	struct result	*r = calloc(1, sizeof *r);

	r->exit = exitcode;
	r->started = B->now;
	r->ended = B->now;
	job_end_attempt(j, r, exitcode == 0);
}

static void
advance(uint64_t ms)
{
	struct job	*j;

	B->now += ms;
	while ((j = heap_top(&B->timers)) != NULL && j->due <= B->now)
		job_due(j);
}

static uint64_t
count(const char *qn, int state)
{
	struct queue	*q = queue_get(qn, strlen(qn), 0);

	return q ? q->count[state] : 0;
}

static struct job *
get(uint64_t id, uint32_t index)
{
	return idmap_get(id, index);
}

/* A text dump of everything replay must rebuild. */
static char *
dump(void)
{
	struct buf	 b;
	struct queue	*q;
	struct job	*j, *t;
	char		 line[512];
	int		 s;

	buf_init(&b);
	TAILQ_FOREACH(q, &B->queues, entry) {
		snprintf(line, sizeof line, "queue %s paused=%d", q->name,
		    q->paused);
		buf_put(&b, line, strlen(line));
		for (s = 0; s < JS__COUNT; s++) {
			snprintf(line, sizeof line, " %llu",
			    (unsigned long long)q->count[s]);
			buf_put(&b, line, strlen(line));
		}
		buf_put(&b, "\n", 1);
	}
	TAILQ_FOREACH(j, &B->jobs, entry) {
		for (t = j; t != NULL; t = t == j ? (j->kind == JK_ARRAY ?
		    TAILQ_FIRST(&j->arr->tasks) : NULL) : TAILQ_NEXT(t, entry)) {
			snprintf(line, sizeof line, "job %llu_%u kind=%d state=%d "
			    "att=%u fail=%u lost=%u deps=%u w=%s reason=%s "
			    "exit=%d\n", (unsigned long long)t->id, t->index,
			    t->kind, t->kind == JK_ARRAY ? job_array_state(t) :
			    t->state, t->attempts, t->failures, t->lost,
			    t->ndeps_left, t->run ? t->run->w->name : "-",
			    t->res && t->res->reason ? t->res->reason : "-",
			    t->res ? t->res->exit : -2);
			buf_put(&b, line, strlen(line));
		}
	}
	snprintf(line, sizeof line, "next %llu\n",
	    (unsigned long long)B->next_id);
	buf_put(&b, line, strlen(line));
	buf_put_u8(&b, 0);
	return (char *)b.p;
}

/* Commits, drops the state, replays the journal, compares. */
static void
check_replay(void)
{
	char	*before = dump(), *after;

	assert_int_equal(journal_commit(B->journal), 0);
	journal_close(B->journal);
	state_free();
	state_init();
	B->journal = open_journal();
	after = dump();
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/* Compacts, drops the state, replays the snapshot, compares. */
static void
check_snapshot(void)
{
	char	*before = dump(), *after;

	assert_int_equal(journal_snapshot(B->journal, snapshot_write, NULL), 0);
	journal_close(B->journal);
	state_free();
	state_init();
	B->journal = open_journal();
	after = dump();
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void
test_priority_then_fifo(void **st)
{
	struct worker	*w = worker("w");
	struct job	*a = submit("", "a"), *b = submit("pri=5", "b");
	struct job	*c = submit("pri=5", "c"), *d = submit("pri=-1", "d");
	struct job	*e = submit("", "e");

	(void)st;
	assert_ptr_equal(take("default", w), b);
	assert_ptr_equal(take("default", w), c);
	assert_ptr_equal(take("default", w), a);
	assert_ptr_equal(take("default", w), e);
	assert_ptr_equal(take("default", w), d);
	assert_null(take("default", w));
	assert_int_equal(count("default", JS_RUNNING), 5);
	assert_int_equal(count("default", JS_QUEUED), 0);
	check_replay();
}

static void
test_queue_pause(void **st)
{
	struct worker	*w = worker("w");
	struct queue	*q;

	(void)st;
	submit("q=x", "a");
	q = queue_get("x", 1, 0);
	q->paused = 1;
	assert_null(take("x", w));
	q->paused = 0;
	assert_non_null(take("x", w));
}

static void
test_array_lazy_and_maxrun(void **st)
{
	struct worker	*w = worker("w");
	struct job	*a = submit("array=1-9:2%252", "sim {}"), *t1, *t3;

	(void)st;
	assert_int_equal(a->kind, JK_ARRAY);
	assert_int_equal(a->arr->ntasks, 5);
	assert_int_equal(count("default", JS_QUEUED), 5);
	assert_null(get(a->id, 1));		/* not materialised yet */
	t1 = take("default", w);
	t3 = take("default", w);
	assert_int_equal(t1->index, 1);
	assert_int_equal(t3->index, 3);
	assert_null(take("default", w));	/* %2: two at most */
	assert_int_equal(count("default", JS_RUNNING), 2);
	end(t1, 0);
	t1 = take("default", w);
	assert_non_null(t1);
	assert_int_equal(t1->index, 5);
	assert_int_equal(job_array_state(a), JS_RUNNING);
	check_replay();
	check_snapshot();
}

static void
test_array_million_is_one_record(void **st)
{
	struct job	*a;

	(void)st;
	a = submit("array=1-1000000", "sim {}");
	assert_int_equal(count("default", JS_QUEUED), 1000000);
	assert_int_equal(B->njobs, 1);		/* one record, no tasks */
	assert_int_equal(a->arr->cursor, 0);
}

static void
test_array_finishes_and_fails(void **st)
{
	struct worker	*w = worker("w");
	struct job	*a = submit("array=1-3", "x"), *dep, *t;

	(void)st;
	dep = submit("after=1", "after-array");
	assert_int_equal(dep->state, JS_WAITING);
	t = take("default", w);
	end(t, 0);
	t = take("default", w);
	end(t, 3);
	assert_int_equal(dep->state, JS_WAITING);
	t = take("default", w);
	end(t, 0);
	assert_int_equal(job_array_state(a), JS_FAILED);
	assert_int_equal(dep->state, JS_FAILED);
	assert_string_equal(dep->res->reason, "dependency 1 failed");
	check_replay();
	a = get(1, SIMQ_NOINDEX);
	w = worker("w");
	/* RETRY re-queues only the failed task. */
	assert_int_equal(job_retry(a), 1);
	assert_int_equal(job_array_state(a), JS_QUEUED);
	t = take("default", w);
	assert_int_equal(t->index, 2);
	assert_int_equal(t->attempts, 2);
	end(t, 0);
	assert_int_equal(job_array_state(a), JS_DONE);
	check_replay();
	check_snapshot();
}

static void
test_deps_chain_fails_transitively(void **st)
{
	struct worker	*w = worker("w");
	struct job	*a = submit("", "a"), *b, *c, *d, *t;

	(void)st;
	b = submit("after=1", "b");
	c = submit("after=2", "c");
	d = submit("after=1,3", "d");
	assert_int_equal(b->state, JS_WAITING);
	assert_int_equal(d->ndeps_left, 2);
	t = take("default", w);
	assert_ptr_equal(t, a);
	assert_null(take("default", w));	/* the rest wait */
	end(t, 1);
	assert_int_equal(a->state, JS_FAILED);
	assert_int_equal(b->state, JS_FAILED);
	assert_int_equal(c->state, JS_FAILED);
	assert_int_equal(d->state, JS_FAILED);
	assert_string_equal(c->res->reason, "dependency 2 failed");
	assert_int_equal(count("default", JS_FAILED), 4);
	check_replay();
}

static void
test_deps_done_releases(void **st)
{
	struct worker	*w = worker("w");
	struct job	*a = submit("", "a"), *b, *t;

	(void)st;
	b = submit("after=1", "b");
	t = take("default", w);
	end(t, 0);
	assert_int_equal(a->state, JS_DONE);
	assert_int_equal(b->state, JS_QUEUED);
	assert_ptr_equal(take("default", w), b);
	/* A dependency already done at submit counts as satisfied. */
	assert_int_equal(submit("after=1", "c")->state, JS_QUEUED);
	check_replay();
}

static void
test_dep_on_task(void **st)
{
	struct worker	*w = worker("w");
	struct job	*b, *t;

	(void)st;
	submit("array=1-3", "x");
	b = submit("after=1_2", "b");
	assert_int_equal(b->state, JS_WAITING);
	t = take("default", w);			/* 1_1 */
	end(t, 0);
	assert_int_equal(b->state, JS_WAITING);
	t = take("default", w);			/* 1_2 */
	assert_int_equal(t->index, 2);
	check_replay();
	t = get(1, 2);
	b = get(2, SIMQ_NOINDEX);
	end(t, 0);
	assert_int_equal(b->state, JS_QUEUED);
	check_replay();
}

static void
test_retries_with_backoff(void **st)
{
	struct worker	*w = worker("w");
	struct job	*j = submit("retries=2", "flaky"), *t;

	(void)st;
	t = take("default", w);
	end(t, 1);
	assert_int_equal(j->state, JS_WAITING);
	assert_int_equal(j->due, B->now + 1000);	/* first backoff */
	assert_null(take("default", w));
	advance(999);
	assert_null(take("default", w));
	advance(1);
	t = take("default", w);
	assert_ptr_equal(t, j);
	assert_int_equal(j->attempts, 2);
	end(t, 1);
	assert_int_equal(j->due, B->now + 2000);	/* doubled */
	check_replay();
	j = get(1, SIMQ_NOINDEX);
	w = worker("w");
	advance(2000);
	t = take("default", w);
	end(t, 1);
	assert_int_equal(j->state, JS_FAILED);	/* out of retries */
	assert_string_equal(j->res->reason, "exit status 1");
	assert_int_equal(j->attempts, 3);
	check_replay();
}

static void
test_backoff_capped(void **st)
{
	(void)st;
	assert_int_equal(backoff_ms(1), 1000);
	assert_int_equal(backoff_ms(2), 2000);
	assert_int_equal(backoff_ms(4), 8000);
	assert_int_equal(backoff_ms(30), 8000);
}

static void
test_delay(void **st)
{
	struct worker	*w = worker("w");
	struct job	*j = submit("delay=5000", "later");

	(void)st;
	assert_int_equal(j->state, JS_WAITING);
	assert_null(take("default", w));
	advance(5000);
	assert_int_equal(j->state, JS_QUEUED);
	assert_ptr_equal(take("default", w), j);
}

static void
test_lease_expiry_and_fencing(void **st)
{
	struct worker	*w1 = worker("w1"), *w2 = worker("w2");
	struct job	*j = submit("", "long"), *t;

	(void)st;
	t = take("default", w1);
	assert_int_equal(t->attempts, 1);
	advance(29999);
	assert_int_equal(j->state, JS_RUNNING);
	advance(1);				/* lease ran out */
	assert_int_equal(j->state, JS_QUEUED);
	assert_int_equal(j->lost, 1);
	assert_non_null(w1->drops);		/* w1 will be told */
	assert_int_equal(w1->drops->attempt, 1);
	t = take("default", w2);
	assert_int_equal(t->attempts, 2);	/* a new attempt number */
	check_replay();
	j = get(1, SIMQ_NOINDEX);
	assert_int_equal(j->state, JS_RUNNING);
	assert_int_equal(j->attempts, 2);
	assert_string_equal(j->run->w->name, "w2");
}

static void
test_lost_too_often_fails(void **st)
{
	struct worker	*w = worker("w");
	struct job	*j = submit("", "x");
	int		 i;

	(void)st;
	for (i = 0; i < 3; i++) {
		assert_non_null(take("default", w));
		advance(30000);
	}
	assert_int_equal(j->state, JS_FAILED);	/* max_lost is 2 */
	assert_int_equal(j->lost, 3);
	check_replay();
}

static void
test_release_keeps_retries(void **st)
{
	struct worker	*w = worker("w");
	struct job	*j = submit("", "x"), *t;

	(void)st;
	t = take("default", w);
	job_requeue(t, 0, 0);
	assert_int_equal(j->state, JS_QUEUED);
	assert_int_equal(j->lost, 0);
	assert_int_equal(j->failures, 0);
	t = take("default", w);
	assert_int_equal(t->attempts, 2);
	check_replay();
}

static void
test_cancel(void **st)
{
	struct worker	*w = worker("w");
	struct job	*q = submit("", "queued"), *r = submit("", "run"), *d;
	struct job	*a, *t;

	(void)st;
	d = submit("after=1", "dependent");
	t = take("default", w);
	assert_ptr_equal(t, q);
	assert_int_equal(job_cancel(r, "canceled"), 1);
	assert_int_equal(job_cancel(q, "canceled"), 1);	/* running */
	assert_int_equal(q->state, JS_CANCELED);
	assert_non_null(w->drops);
	assert_int_equal(d->state, JS_FAILED);
	assert_int_equal(job_cancel(q, "canceled"), 0);	/* finished */
	a = submit("array=1-100", "x");
	t = take("default", w);
	assert_int_equal(job_cancel(a, "canceled"), 100);
	assert_int_equal(job_array_state(a), JS_CANCELED);
	assert_int_equal(count("default", JS_CANCELED), 102);
	check_replay();
	a = get(4, SIMQ_NOINDEX);
	assert_int_equal(job_retry(a), 100);
	assert_int_equal(count("default", JS_QUEUED), 100);
	check_replay();
	check_snapshot();
}

static void
test_retention(void **st)
{
	struct worker	*w = worker("w");
	struct job	*t;

	(void)st;
	submit("", "a");
	submit("", "b");
	t = take("default", w);
	end(t, 0);
	job_expire(B->now + B->cfg.retention_ms - 1);
	assert_non_null(get(1, SIMQ_NOINDEX));
	job_expire(B->now + B->cfg.retention_ms);
	assert_null(get(1, SIMQ_NOINDEX));
	assert_non_null(get(2, SIMQ_NOINDEX));
	assert_int_equal(count("default", JS_DONE), 0);
	/* A dependency forgotten after retention was done: satisfied. */
	check_snapshot();
	assert_int_equal(B->next_id, 3);	/* ids are never reused */
}

/* Retention counts from when a job finished, not from the last restart:
 * the journal records when a cancel or a failure happened. */
static void
test_retention_across_replay(void **st)
{
	struct worker	*w = worker("w");
	struct job	*t;

	(void)st;
	submit("", "a");
	submit("after=1", "b");
	submit("", "c");
	t = take("default", w);
	end(t, 1);			/* 1 fails, 2 fails with it */
	job_cancel(get(3, SIMQ_NOINDEX), "canceled");
	B->now += B->cfg.retention_ms;
	check_replay();
	job_expire(B->now);
	assert_null(get(1, SIMQ_NOINDEX));
	assert_null(get(2, SIMQ_NOINDEX));
	assert_null(get(3, SIMQ_NOINDEX));
	assert_int_equal(B->njobs, 0);
}

static void
test_replay_rejects_stale_finish(void **st)
{
	struct buf	b;
	struct worker	*w = worker("w");
	struct job	*t;

	(void)st;
	submit("", "a");
	t = take("default", w);
	/* A FINISH record for attempt 7 of a job on attempt 1 does not fit
	 * the state: replay must refuse it, not apply it. */
	buf_init(&b);
	buf_put_u64(&b, t->id);
	buf_put_u32(&b, t->index);
	buf_put_u32(&b, 7);
	buf_put_u8(&b, JS_DONE);
	buf_put_u64(&b, 0);
	assert_int_equal(rec_apply(NULL, REC_FINISH, b.p, b.len), -1);
	assert_int_equal(t->state, JS_RUNNING);
	/* Truncated records are refused too, at every length. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(rec_apply(NULL, REC_FINISH, b.p, n), -1);
	assert_int_equal(rec_apply(NULL, 99, b.p, b.len), -1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_priority_then_fifo),
		T(test_queue_pause),
		T(test_array_lazy_and_maxrun),
		T(test_array_million_is_one_record),
		T(test_array_finishes_and_fails),
		T(test_deps_chain_fails_transitively),
		T(test_deps_done_releases),
		T(test_dep_on_task),
		T(test_retries_with_backoff),
		T(test_backoff_capped),
		T(test_delay),
		T(test_lease_expiry_and_fencing),
		T(test_lost_too_often_fails),
		T(test_release_keeps_retries),
		T(test_cancel),
		T(test_retention),
		T(test_retention_across_replay),
		T(test_replay_rejects_stale_finish),
#undef T
	};

	log_verbosity = 0;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
