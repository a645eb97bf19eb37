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
	broker_init();
}

static void
state_free(void)
{
	broker_free();
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
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Submits a job as SUBMIT does (the handler's parsing, then the model's
 * entry point): opts is a space-separated option string, argv a command
 * line.  Returns the job. */
static struct job *
submit(const char *opts, const char *argv)
{
	static struct proto_jobopts	po;
	static struct proto_word	w[64], a[64];
	static char			ob[512], ab[512];
	char				msg[128];
	struct jobopts			*o;
	struct cmd			*c;
	struct job			*j;
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
	o = jobopts_intern(o);
	j = job_submit(id, 1, o, &c, po.has_array ? &po.array : NULL, B->now,
	    po.delay_ms ? B->now + po.delay_ms : 0);
	jobopts_unref(o);
	return j;
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

	int		 reserved = 0;

	return q != NULL ? job_take(q, w, &fit_any, NULL, &reserved) : NULL;
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

/* Moves the clock on and runs the timers that came due, as a loop pass
 * does. */
static void
advance(uint64_t ms)
{
	B->now += ms;
	timers_fire();
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

/* printf into a growing buffer. */
static void __attribute__((format(printf, 2, 3)))
say(struct buf *b, const char *fmt, ...)
{
	char	line[1024];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof line);
	buf_put(b, line, (size_t)n);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Bytes, escaped so that any difference shows. */
static void
say_bytes(struct buf *b, const char *key, const void *p, size_t n)
{
	const unsigned char	*s = p;
	size_t			 i;

	say(b, " %s=", key);
	if (p == NULL) {
		say(b, "(null)");
		return;
	}
	for (i = 0; i < n; i++)
		say(b, s[i] > ' ' && s[i] < 127 && s[i] != '\\' ? "%c" : "\\%02x",
		    s[i]);
}

static void
say_str(struct buf *b, const char *key, const char *s)
{
	say_bytes(b, key, s, s ? strlen(s) : 0);
}

static void
dump_opts(struct buf *b, const struct jobopts *o)
{
	uint32_t	i;

	say(b, " q=%s prio=%lld timeout=%llu retries=%u", o->q->name,
	    (long long)o->prio, (unsigned long long)o->timeout_ms, o->retries);
	say_str(b, "name", o->name);
	say_str(b, "cwd", o->cwd);
	say_str(b, "output", o->output);
	for (i = 0; i < o->nenv; i++)
		say_str(b, "env", o->env[i]);
	for (i = 0; i < o->ndeps; i++)
		say(b, " dep=%llu_%u:%d", (unsigned long long)o->deps[i].id,
		    o->deps[i].index, o->depkind ? o->depkind[i] : -1);
}

static void
dump_job(struct buf *b, const struct job *t)
{
	const struct result	*r = t->res;
	const struct dep	*d;
	unsigned		 ndeps = 0;
	int			 s;

	for (d = t->dependents; d != NULL; d = d->next)
		ndeps++;
	say(b, "job %llu_%u kind=%d state=%d att=%u fail=%u lost=%u "
	    "deps_left=%u dependents=%u gate=%d where=%d submitted=%llu "
	    "depfailed=%d",
	    (unsigned long long)t->id, t->index, t->kind,
	    t->kind == JK_ARRAY ? job_array_state(t) : t->state, t->attempts,
	    t->failures, t->lost, t->ndeps_left, ndeps, t->gate_open,
	    t->where, (unsigned long long)t->submitted, t->depfailed);
	/* A restart grants a running job a fresh lease, by design: the end
	 * of a lease is the one time not kept. */
	if (t->state != JS_RUNNING)
		say(b, " due=%llu", (unsigned long long)t->due);
	if (t->kind != JK_TASK) {
		dump_opts(b, t->opts);
		say(b, " argc=%u", t->cmd->argc);
		say_bytes(b, "argv", t->cmd->data, t->cmd->len);
	} else if (t->opts != t->parent->opts)
		say(b, " OPTS-NOT-THE-ARRAY'S");
	if (t->kind == JK_ARRAY) {
		const struct array *a = t->arr;
		say(b, " spec=%u-%u:%u%%%u ntasks=%llu cursor=%llu cut=%llu "
		    "cut_state=%d nexc=%llu/%llu running=%u counts",
		    a->spec.first, a->spec.last,
		    a->spec.step, a->spec.maxrun, (unsigned long long)a->ntasks,
		    (unsigned long long)a->cursor, (unsigned long long)a->cut,
		    a->cut_state, (unsigned long long)a->nexc,
		    (unsigned long long)a->nexc_cut, a->running);
		for (s = 0; s < JS__COUNT; s++)
			say(b, " %llu", (unsigned long long)a->count[s]);
	}
	if (t->run != NULL) {
		say(b, " run: worker=%s started=%llu lease=%llu",
		    t->run->w->name, (unsigned long long)t->run->started,
		    (unsigned long long)t->run->w->lease_ms);
		say_str(b, "host", t->run->w->host);
	}
	if (r != NULL) {
		say(b, " res: started=%llu ended=%llu finished=%llu exit=%d "
		    "sig=%d timedout=%u utime=%llu stime=%llu maxrss=%llu "
		    "listed=%d", (unsigned long long)r->started,
		    (unsigned long long)r->ended, (unsigned long long)r->finished,
		    r->exit, r->sig, r->timedout, (unsigned long long)r->utime,
		    (unsigned long long)r->stime, (unsigned long long)r->maxrss,
		    r->in_flist);
		say_str(b, "worker", r->worker);
		say_str(b, "host", r->host);
		say_str(b, "outpath", r->outpath);
		say_str(b, "reason", r->reason);
		say(b, " out=%u err=%u res=%u", r->outlen, r->errlen, r->reslen);
		say_bytes(b, "data", r->data,
		    (size_t)r->outlen + r->errlen + r->reslen);
	}
	say(b, "\n");
}

/*
 * A text dump of everything a restart must keep: queues, every job, array
 * and task with its options, command, times, result and payload, the
 * finished list's order (retention walks it), the heaps' sizes, the
 * workers holding leases, the next id.
 */
static char *
dump(void)
{
	struct buf	 b;
	struct queue	*q;
	struct job	*j, *t;
	struct worker	*w;
	int		 s;

	buf_init(&b);
	TAILQ_FOREACH(q, &B->queues, entry) {
		say(&b, "queue %s paused=%d ready=%u", q->name, q->paused,
		    (unsigned)queue_nready(q));
		for (s = 0; s < JS__COUNT; s++)
			say(&b, " %llu", (unsigned long long)q->count[s]);
		say(&b, "\n");
	}
	TAILQ_FOREACH(j, &B->jobs, entry) {
		dump_job(&b, j);
		if (j->kind == JK_ARRAY)
			TAILQ_FOREACH(t, &j->arr->tasks, entry)
				dump_job(&b, t);
	}
	/* Retention needs the finished list in finish order; among equal
	 * times the order is not state. */
	{
		uint64_t v[4096], last = 0;
		size_t n = 0, i;
		TAILQ_FOREACH(j, &B->finished, res->fentry) {
			assert_true(j->res->finished >= last);
			last = j->res->finished;
			assert_true(n < 4096);
			v[n++] = j->id;
		}
		qsort(v, n, sizeof *v, cmp_u64);
		say(&b, "finished:");
		for (i = 0; i < n; i++)
			say(&b, " %llu", (unsigned long long)v[i]);
	}
	say(&b, "\ntimers=%u\n", B->timers.n);
	TAILQ_FOREACH(w, &workers, entry) {
		if (w->njobs == 0)
			continue;	/* connected ones are not state */
		say(&b, "worker %s lease=%llu jobs=%u", w->name,
		    (unsigned long long)w->lease_ms, w->njobs);
		say_str(&b, "host", w->host);
		say(&b, "\n");
	}
	say(&b, "next %llu\n", (unsigned long long)B->next_id);
	buf_put_u8(&b, 0);
	return (char *)b.p;
}

/* Fails with the first line that differs, if any. */
static void
same_state(const char *before, const char *after)
{
	const char	*a = before, *b = after;
	size_t		 la, lb;

	while (*a != '\0' || *b != '\0') {
		la = strcspn(a, "\n");
		lb = strcspn(b, "\n");
		if (la != lb || memcmp(a, b, la) != 0)
			fail_msg("state differs after the restart:\n"
			    "live:     %.*s\nreplayed: %.*s", (int)la, a,
			    (int)lb, b);
		a += la + (a[la] != '\0');
		b += lb + (b[lb] != '\0');
	}
}

/* Commits, drops the state, replays the journal, compares. */
static void
check_replay(void)
{
	char	*before, *after;

	job_expire(B->now);		/* what the live sweep would do */
	before = dump();

	assert_int_equal(journal_commit(B->journal), 0);
	journal_close(B->journal);
	state_free();
	state_init();
	B->journal = open_journal();
	job_expire(B->now);		/* as simqd does after replay */
	after = dump();
	same_state(before, after);
	free(before);
	free(after);
}

/* Compacts, drops the state, replays the snapshot, compares. */
static void
check_snapshot(void)
{
	char	*before, *after;

	job_expire(B->now);
	before = dump();

	assert_int_equal(journal_snapshot(B->journal, snapshot_write, NULL), 0);
	journal_close(B->journal);
	state_free();
	state_init();
	B->journal = open_journal();
	job_expire(B->now);		/* as simqd does after replay */
	after = dump();
	same_state(before, after);
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
	queue_pause(q, 1);
	assert_null(take("x", w));
	check_replay();
	q = queue_get("x", 1, 0);
	assert_int_equal(q->paused, 1);
	w = worker("w");
	assert_null(take("x", w));		/* still paused */
	check_snapshot();
	q = queue_get("x", 1, 0);
	w = worker("w");
	assert_null(take("x", w));
	queue_pause(q, 0);
	assert_non_null(take("x", w));
	check_replay();
}

/* Replays the journal as a restart does, retention sweep included. */
static void
restart(void)
{
	assert_int_equal(journal_commit(B->journal), 0);
	journal_close(B->journal);
	state_free();
	state_init();
	B->journal = open_journal();
	job_expire(B->now);
}

/* A queue that holds nothing and is not paused is forgotten, live and
 * after a restart, so that names cannot pile up against the limit. */
static void
test_queue_forgotten(void **st)
{
	struct worker	*w = worker("w");
	struct queue	*q;

	(void)st;
	submit("q=tmp", "a");
	submit("q=kept", "b");
	end(take("tmp", w), 0);
	q = queue_get("tmp", 3, 0);
	queue_pause(q, 1);
	B->now += B->cfg.retention_ms;
	job_expire(B->now);
	assert_non_null(queue_get("tmp", 3, 0));	/* paused: kept */
	queue_pause(queue_get("tmp", 3, 0), 0);
	assert_null(queue_get("tmp", 3, 0));		/* empty: forgotten */
	assert_non_null(queue_get("kept", 4, 0));
	assert_int_equal(B->nqueues, 1);
	restart();
	assert_null(queue_get("tmp", 3, 0));
	assert_non_null(queue_get("kept", 4, 0));
	assert_int_equal(B->nqueues, 1);
	assert_int_equal(journal_snapshot(B->journal, snapshot_write, NULL), 0);
	restart();
	assert_null(queue_get("tmp", 3, 0));
	assert_int_equal(B->nqueues, 1);
	/* Forgotten with its jobs after retention, without a pause. */
	w = worker("w");
	end(take("kept", w), 0);
	B->now += B->cfg.retention_ms;
	job_expire(B->now);
	assert_int_equal(B->nqueues, 0);
	restart();
	assert_int_equal(B->nqueues, 0);
	/* A later submit makes it again, with fresh options. */
	assert_int_equal(submit("q=kept", "c")->state, JS_QUEUED);
	assert_int_equal(count("kept", JS_QUEUED), 1);
	check_replay();
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
	assert_int_equal(job_retry(a, NULL), 1);
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

/* A task that is running (so it has a record) when a job comes to
 * depend on it: its end must release the job, live and after a restart,
 * from the journal and from a snapshot. */
static void
test_dep_on_running_task(void **st)
{
	struct worker	*w = worker("w");
	struct job	*b, *t;

	(void)st;
	submit("array=1-4", "sim {}");
	t = take("default", w);			/* 1_1 runs */
	b = submit("after=1_1", "after-task");
	assert_int_equal(b->state, JS_WAITING);
	end(t, 0);
	assert_int_equal(b->state, JS_QUEUED);
	check_replay();
	check_snapshot();
	/* The same, with a restart between the submit and the task's end. */
	w = worker("w");
	t = take("default", w);			/* 1_2 */
	assert_int_equal(t->index, 2);
	b = submit("after=1_2", "after-task-2");
	check_replay();
	check_snapshot();
	t = get(1, 2);
	b = get(3, SIMQ_NOINDEX);
	assert_int_equal(b->state, JS_WAITING);
	end(t, 0);
	assert_int_equal(b->state, JS_QUEUED);
	check_replay();
}

static void
test_dep_on_task_fails_and_cancels(void **st)
{
	struct worker	*w = worker("w");
	struct job	*a, *b, *c, *d, *t;

	(void)st;
	a = submit("array=1-4", "sim {}");
	t = take("default", w);			/* 1_1 runs */
	b = submit("after=1_1", "b");
	c = submit("after=1_4", "c");		/* 1_4 has no record */
	d = submit("after=1_2", "d");
	end(t, 1);
	assert_int_equal(b->state, JS_FAILED);
	assert_string_equal(b->res->reason, "dependency 1_1 failed");
	assert_int_equal(c->state, JS_WAITING);
	t = take("default", w);			/* 1_2 */
	check_replay();
	a = get(1, SIMQ_NOINDEX);
	c = get(3, SIMQ_NOINDEX);
	d = get(4, SIMQ_NOINDEX);
	w = worker("w");
	assert_int_equal(job_cancel(a, "canceled"), 3);
	assert_int_equal(d->state, JS_FAILED);
	assert_string_equal(d->res->reason, "dependency 1_2 canceled");
	/* A pending task canceled with the rest of its array. */
	assert_int_equal(c->state, JS_FAILED);
	assert_string_equal(c->res->reason, "dependency 1_4 canceled");
	check_replay();
	check_snapshot();
	/* Depending on a task already canceled fails at once. */
	assert_int_equal(submit("after=1_3", "e")->state, JS_FAILED);
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
	assert_int_equal(job_retry(a, NULL), 100);
	assert_int_equal(count("default", JS_QUEUED), 100);
	check_replay();
	check_snapshot();
}

/* One task no worker has taken is canceled and retried alone, and the
 * end of the block cut off as a count: the array stays lazy, the cursor
 * skips the task, and a restart (journal or snapshot) gives it all back. */
static void
test_cancel_pending_task(void **st)
{
	struct worker	*w = worker("w");
	struct job	*a = submit("array=1-1000000", "x {}"), *t;
	int		 i;

	(void)st;
	assert_int_equal(job_cancel(array_task(a, 3), "canceled"), 1);
	assert_int_equal(B->njobs, 2);		/* the array and task 3 */
	assert_int_equal(count("default", JS_CANCELED), 1);
	assert_int_equal(count("default", JS_QUEUED), 999999);
	check_replay();
	check_snapshot();
	a = get(1, SIMQ_NOINDEX);
	w = worker("w");
	for (i = 1; i <= 3; i++) {
		t = take("default", w);
		assert_int_equal(t->index, i < 3 ? i : 4);	/* 3 skipped */
	}
	assert_int_equal(a->arr->cursor, 4);
	assert_int_equal(a->arr->nexc, 0);
	/* Retried alone, it runs. */
	assert_int_equal(job_retry(get(1, 3), NULL), 1);
	assert_int_equal(get(1, 3)->state, JS_QUEUED);
	/* The last 2,000 pending tasks as a count, one of them already
	 * canceled alone. */
	assert_int_equal(job_cancel(array_task(a, 999000), "canceled"), 1);
	assert_int_equal(job_cut(a, 998000), 1999);
	assert_int_equal(count("default", JS_CANCELED), 2000);
	assert_int_equal(B->njobs, 6);
	check_replay();
	check_snapshot();
	a = get(1, SIMQ_NOINDEX);
	/* One of the cut-off rest retried alone. */
	t = array_task(a, 999999);
	assert_int_equal(t->state, JS_CANCELED);
	assert_int_equal(job_retry(t, NULL), 1);
	assert_int_equal(count("default", JS_CANCELED), 1999);
	check_replay();
	check_snapshot();
	/* The whole array's retry brings back the rest, not twice. */
	a = get(1, SIMQ_NOINDEX);
	assert_int_equal(job_retry(a, NULL), 1999);
	assert_int_equal(count("default", JS_CANCELED), 0);
	assert_int_equal(count("default", JS_QUEUED) +
	    count("default", JS_RUNNING), 1000000);
	check_replay();
	check_snapshot();
}

/* A task of an array still waiting for its dependency, canceled and
 * retried alone: it waits for the array's gate too. */
static void
test_pending_task_waits_for_gate(void **st)
{
	struct worker	*w = worker("w");
	struct job	*d = submit("", "first"), *a, *t;

	(void)st;
	a = submit("after=1 array=1-5", "x {}");
	t = array_task(a, 2);
	assert_int_equal(job_cancel(t, "canceled"), 1);
	assert_int_equal(job_retry(t, NULL), 1);
	assert_int_equal(t->state, JS_WAITING);
	check_replay();
	check_snapshot();
	d = get(1, SIMQ_NOINDEX);
	t = get(2, 2);
	w = worker("w");
	end(take("default", w), 0);
	assert_int_equal(d->state, JS_DONE);
	assert_int_equal(t->state, JS_QUEUED);
	assert_int_equal(count("default", JS_QUEUED), 5);
	check_replay();
}

/* Slurm's kinds: after-ok, after-any, after-failed; a dependency that
 * can no longer be met fails (ok) or cancels (failed) its waiter. */
static void
test_dep_kinds(void **st)
{
	struct worker	*w = worker("w");
	struct job	*ok = submit("", "ok"), *bad = submit("", "bad");
	struct job	*j[6];

	(void)st;
	j[0] = submit("after=any:1", "a");
	j[1] = submit("after=failed:1", "b");
	j[2] = submit("after=ok:2", "c");
	j[3] = submit("after=any:2", "d");
	j[4] = submit("after=failed:2", "e");
	j[5] = submit("after=1,failed:2", "f");
	check_replay();
	check_snapshot();
	ok = get(1, SIMQ_NOINDEX);
	bad = get(2, SIMQ_NOINDEX);
	w = worker("w");
	end(take("default", w), 0);
	end(take("default", w), 1);
	assert_int_equal(ok->state, JS_DONE);
	assert_int_equal(bad->state, JS_FAILED);
	j[0] = get(3, SIMQ_NOINDEX);
	assert_int_equal(j[0]->state, JS_QUEUED);
	assert_int_equal(get(4, SIMQ_NOINDEX)->state, JS_CANCELED);
	assert_int_equal(get(5, SIMQ_NOINDEX)->state, JS_FAILED);
	assert_int_equal(get(6, SIMQ_NOINDEX)->state, JS_QUEUED);
	assert_int_equal(get(7, SIMQ_NOINDEX)->state, JS_QUEUED);
	assert_int_equal(get(8, SIMQ_NOINDEX)->state, JS_QUEUED);
	/* Submitted after the ends: decided at once, the same way. */
	assert_int_equal(submit("after=failed:1", "g")->state, JS_CANCELED);
	assert_int_equal(submit("after=any:2", "h")->state, JS_QUEUED);
	check_replay();
	check_snapshot();
}

/* RETRY of what failed re-queues the dependents that failed because of
 * it, down the chain, and not those failed by another dependency. */
static void
test_retry_requeues_dependents(void **st)
{
	struct worker	*w = worker("w");
	struct job	*a = submit("", "a"), *t;
	uint64_t	 n = 0;

	(void)st;
	submit("after=1", "b");
	submit("after=2", "c");
	submit("", "other");
	submit("after=1,4", "e");
	t = take("default", w);
	assert_ptr_equal(t, a);
	end(t, 1);
	t = take("default", w);			/* 4 */
	end(t, 1);
	assert_int_equal(count("default", JS_FAILED), 5);
	check_replay();
	check_snapshot();			/* depfailed is kept */
	a = get(1, SIMQ_NOINDEX);
	assert_int_equal(job_retry(a, &n), 1);
	assert_int_equal(n, 2);			/* 2 and 3; 5 fails again */
	assert_int_equal(get(2, SIMQ_NOINDEX)->state, JS_WAITING);
	assert_int_equal(get(3, SIMQ_NOINDEX)->state, JS_WAITING);
	assert_int_equal(get(5, SIMQ_NOINDEX)->state, JS_FAILED);
	check_replay();
	check_snapshot();
	/* An array's failed task retried alone re-queues what waited on the
	 * whole array. */
	{
		struct job *arr = submit("q=arr array=1-2", "x"), *g;
		w = worker("w");
		g = submit("after=6", "gather");
		end(take("arr", w), 0);		/* 1 */
		t = take("arr", w);
		assert_int_equal(t->id, 6);
		end(t, 1);
		assert_int_equal(g->state, JS_FAILED);
		assert_int_equal(job_retry(get(6, 2), &n), 1);
		assert_int_equal(n, 1);
		assert_int_equal(g->state, JS_WAITING);
		(void)arr;
		check_replay();
	}
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
		T(test_queue_forgotten),
		T(test_array_lazy_and_maxrun),
		T(test_array_million_is_one_record),
		T(test_array_finishes_and_fails),
		T(test_deps_chain_fails_transitively),
		T(test_deps_done_releases),
		T(test_dep_on_task),
		T(test_dep_on_running_task),
		T(test_dep_on_task_fails_and_cancels),
		T(test_retries_with_backoff),
		T(test_backoff_capped),
		T(test_delay),
		T(test_lease_expiry_and_fencing),
		T(test_lost_too_often_fails),
		T(test_release_keeps_retries),
		T(test_cancel),
		T(test_cancel_pending_task),
		T(test_pending_task_waits_for_gate),
		T(test_dep_kinds),
		T(test_retry_requeues_dependents),
		T(test_retention),
		T(test_retention_across_replay),
		T(test_replay_rejects_stale_finish),
#undef T
	};

	log_verbosity = 0;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
