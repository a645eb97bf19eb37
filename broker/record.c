/*
 * record.c: the job model's journal records, and replaying them.
 *
 * Every record is built with buf_put_* in explicit little-endian and read
 * back with a bounds-checked rbuf, never by copying structs.  A record
 * states an outcome ("job 17 attempt 2 failed, retry at T"), so replay
 * applies it without asking the clock or re-running a decision.
 *
 * If you change a record: bump JOURNAL_VERSION in journal.h, keep decoding
 * the old layout, and add a fixture to tests/unit/test_model.c.
 */
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

static void
put_opts(struct buf *b, const struct jobopts *o)
{
	uint32_t	i;

	buf_put_vstr(b, o->q->name, strlen(o->q->name));
	buf_put_i64(b, o->prio);
	buf_put_u64(b, o->timeout_ms);
	buf_put_u32(b, o->retries);
	buf_put_vstr(b, o->name, o->name ? strlen(o->name) : 0);
	buf_put_vstr(b, o->cwd, o->cwd ? strlen(o->cwd) : 0);
	buf_put_vstr(b, o->output, o->output ? strlen(o->output) : 0);
	buf_put_u32(b, o->nenv);
	for (i = 0; i < o->nenv; i++)
		buf_put_vstr(b, o->env[i], strlen(o->env[i]));
	buf_put_u32(b, o->ndeps);
	for (i = 0; i < o->ndeps; i++) {
		buf_put_u64(b, o->deps[i].id);
		buf_put_u32(b, o->deps[i].index);
	}
}

static void
put_cmd(struct buf *b, const struct cmd *c)
{
	buf_put_uv(b, c->argc);
	buf_put_vstr(b, c->data, c->len);
}

static void
put_spec(struct buf *b, const struct array_spec *s)
{
	buf_put_u32(b, s->first);
	buf_put_u32(b, s->last);
	buf_put_u32(b, s->step);
	buf_put_u32(b, s->maxrun);
}

void
rec_submit(struct buf *b, uint64_t first, uint32_t count,
    const struct jobopts *o, struct cmd **cmds, const struct array_spec *spec,
    uint64_t submitted, uint64_t not_before)
{
	uint32_t	i;

	buf_put_u64(b, first);
	buf_put_u32(b, count);
	buf_put_u64(b, submitted);
	buf_put_u64(b, not_before);
	put_opts(b, o);
	buf_put_u8(b, spec != NULL);
	if (spec != NULL)
		put_spec(b, spec);
	for (i = 0; i < count; i++)
		put_cmd(b, cmds[i]);
}

void
rec_lease(struct buf *b, const struct job *j, const char *worker,
    const char *host, uint64_t lease_ms)
{
	buf_put_u64(b, j->id);
	buf_put_u32(b, j->index);
	buf_put_u32(b, j->attempts);
	buf_put_vstr(b, worker, strlen(worker));
	buf_put_vstr(b, host, strlen(host));
	buf_put_u64(b, j->run->started);
	buf_put_u64(b, lease_ms);
}

static void	put_result(struct buf *, const struct result *);
static struct result *get_result(struct rbuf *);

/* After job_finish moved j: its new state, backoff end and result. */
void
rec_finish(struct buf *b, const struct job *j)
{
	buf_put_u64(b, j->id);
	buf_put_u32(b, j->index);
	buf_put_u32(b, j->attempts);
	buf_put_u8(b, j->state);
	buf_put_u64(b, j->due);
	put_result(b, j->res);
}

void
rec_requeue(struct buf *b, const struct job *j, int lost, uint64_t due)
{
	buf_put_u64(b, j->id);
	buf_put_u32(b, j->index);
	buf_put_u32(b, j->attempts);
	buf_put_u8(b, (uint8_t)lost);	/* enum requeue_why */
	buf_put_u64(b, due);
	buf_put_u64(b, B->now);
}

/* CANCEL and RETRY: the job and when, so that retention and the times
 * of jobs failed along with it come out the same on replay. */
void
rec_event(struct buf *b, const struct job *j)
{
	buf_put_u64(b, j->id);
	buf_put_u32(b, j->index);
	buf_put_u64(b, B->now);
}

void
rec_queue(struct buf *b, const struct queue *q)
{
	buf_put_vstr(b, q->name, strlen(q->name));
}

/*
 * Snapshot records.  A snapshot writes each distinct set of options once
 * (REC_OPTS, numbered from 0 in the order written) and then one REC_JOB
 * per job, array and task, referring to its options by number.  REC_JOB
 * uses varints throughout, so a queued job costs about 25 bytes plus its
 * command, not the 120 of fixed-width fields.
 */
void
rec_opts(struct buf *b, uint32_t no, const struct jobopts *o)
{
	buf_put_uv(b, no);
	put_opts(b, o);
}

static void
put_vstr0(struct buf *b, const char *s)
{
	buf_put_vstr(b, s, s ? strlen(s) : 0);
}

/* The result of a job in a snapshot, in varints. */
static void
put_result(struct buf *b, const struct result *r)
{
	buf_put_uv(b, r->started);
	buf_put_uv(b, r->ended);
	buf_put_uv(b, r->finished);
	buf_put_uv(b, (uint64_t)(r->exit + 1));		/* -1 is "unknown" */
	buf_put_uv(b, (uint64_t)r->sig);
	buf_put_uv(b, r->timedout);
	buf_put_uv(b, r->utime);
	buf_put_uv(b, r->stime);
	buf_put_uv(b, r->maxrss);
	put_vstr0(b, r->worker);
	put_vstr0(b, r->host);
	put_vstr0(b, r->outpath);
	put_vstr0(b, r->reason);
	buf_put_uv(b, r->outlen);
	buf_put_uv(b, r->errlen);
	buf_put_uv(b, r->reslen);
	buf_put(b, r->data, (size_t)r->outlen + r->errlen + r->reslen);
}

#define RJ_GATE		0x1
#define RJ_RUN		0x2
#define RJ_RES		0x4

/* One job, array or task with all its state; its options must have been
 * written (rec_opts) with number j->opts->snapno. */
void
rec_job(struct buf *b, const struct job *j)
{
	const struct cmd	*c = j->cmd;

	buf_put_uv(b, j->id);
	buf_put_uv(b, j->index == SIMQ_NOINDEX ? 0 : (uint64_t)j->index + 1);
	buf_put_u8(b, j->kind);
	buf_put_u8(b, j->state);
	buf_put_u8(b, (j->gate_open ? RJ_GATE : 0) |
	    (j->run != NULL ? RJ_RUN : 0) | (j->res != NULL ? RJ_RES : 0));
	buf_put_uv(b, j->lost);
	buf_put_uv(b, j->failures);
	buf_put_uv(b, j->attempts);
	buf_put_uv(b, j->submitted);
	buf_put_uv(b, j->due);
	if (j->kind != JK_TASK) {
		buf_put_uv(b, j->opts->snapno);
		put_cmd(b, c);
	}
	if (j->kind == JK_ARRAY) {
		const struct array *a = j->arr;
		buf_put_uv(b, a->spec.first);
		buf_put_uv(b, a->spec.last);
		buf_put_uv(b, a->spec.step);
		buf_put_uv(b, a->spec.maxrun);
		buf_put_uv(b, a->cursor);
		buf_put_uv(b, a->cut);
		buf_put_u8(b, (uint8_t)a->cut_state);
	}
	if (j->run != NULL) {
		put_vstr0(b, j->run->w->name);
		put_vstr0(b, j->run->w->host);
		buf_put_uv(b, j->run->started);
		buf_put_uv(b, j->run->w->lease_ms);
	}
	if (j->res != NULL)
		put_result(b, j->res);
}

/* Appends a built record to the journal and frees the buffer. */
void
journal_put(uint8_t type, struct buf *b)
{
	journal_append(B->journal, type, b->p, b->len);
	buf_free(b);
}

/*
 * Decoding.  Strings come back as NUL-terminated copies (or NULL when
 * empty, for optional ones).
 */
static char *
get_str(struct rbuf *r, int optional)
{
	size_t		 n;
	const char	*p = rbuf_vstr(r, &n);

	if (p == NULL || (optional && n == 0))
		return NULL;
	if (memchr(p, '\0', n) != NULL) {
		r->err = 1;
		return NULL;
	}
	return xstrndup(p, n);
}

static struct cmd *
get_cmd(struct rbuf *r)
{
	uint64_t	 argc = rbuf_uv(r);
	uint32_t	 k = 0;
	size_t		 n, i;
	const char	*p = rbuf_vstr(r, &n);

	if (p == NULL || n == 0 || n > UINT32_MAX)
		goto bad;
	for (i = 0; i < n; i++)
		if (p[i] == '\0')
			k++;
	if (argc == 0 || k != argc || p[n - 1] != '\0')
		goto bad;
	return cmd_new(p, (uint32_t)n, (uint32_t)argc);
bad:
	r->err = 1;
	return NULL;
}

static struct jobopts *
get_opts(struct rbuf *r)
{
	struct jobopts	*o = xcalloc(1, sizeof *o);
	size_t		 n;
	const char	*qn = rbuf_vstr(r, &n);
	uint32_t	 i;

	o->refs = 1;
	if (qn == NULL || !proto_name_ok(qn, n) ||
	    (o->q = queue_get(qn, n, 1)) == NULL)
		r->err = 1;
	o->prio = rbuf_i64(r);
	o->timeout_ms = rbuf_u64(r);
	o->retries = rbuf_u32(r);
	o->name = get_str(r, 1);
	o->cwd = get_str(r, 1);
	o->output = get_str(r, 1);
	o->nenv = rbuf_u32(r);
	if (o->nenv > SIMQ_ENV_MAX) {
		o->nenv = 0;
		r->err = 1;
	}
	if (o->nenv) {
		o->env = xcalloc(o->nenv, sizeof *o->env);
		for (i = 0; i < o->nenv; i++)
			if ((o->env[i] = get_str(r, 0)) == NULL)
				o->env[i] = xstrdup("");
	}
	o->ndeps = rbuf_u32(r);
	if (o->ndeps > SIMQ_DEPS_MAX) {
		o->ndeps = 0;
		r->err = 1;
	}
	if (o->ndeps) {
		o->deps = xcalloc(o->ndeps, sizeof *o->deps);
		for (i = 0; i < o->ndeps; i++) {
			o->deps[i].id = rbuf_u64(r);
			o->deps[i].index = rbuf_u32(r);
		}
	}
	return o;
}

static int
get_spec(struct rbuf *r, struct array_spec *s)
{
	s->first = rbuf_u32(r);
	s->last = rbuf_u32(r);
	s->step = rbuf_u32(r);
	s->maxrun = rbuf_u32(r);
	if (r->err || s->step == 0 || s->first > s->last ||
	    s->last > SIMQ_INDEX_MAX)
		return -1;
	return 0;
}

/* The job a record names; materialises an array's next task when the
 * record is the lease that made it real. */
static struct job *
find(uint64_t id, uint32_t index, int materialise)
{
	struct job	*j = idmap_get(id, index), *a;

	if (j != NULL || index == SIMQ_NOINDEX || !materialise)
		return j;
	if ((a = idmap_get(id, SIMQ_NOINDEX)) == NULL || a->kind != JK_ARRAY)
		return NULL;
	if (a->arr->cursor >= a->arr->cut ||
	    a->arr->spec.first + a->arr->cursor * a->arr->spec.step != index)
		return NULL;
	return job_materialise(a);
}

static int
apply_submit(struct rbuf *r)
{
	uint64_t		 first = rbuf_u64(r), submitted, not_before;
	uint32_t		 count = rbuf_u32(r), i;
	struct jobopts		*o;
	struct array_spec	 spec;
	int			 has_spec;

	submitted = rbuf_u64(r);
	not_before = rbuf_u64(r);
	B->now = submitted;
	o = get_opts(r);
	has_spec = rbuf_u8(r);
	if (r->err || count == 0 || first == 0 || first < B->next_id ||
	    (has_spec && (count != 1 || get_spec(r, &spec) < 0))) {
		jobopts_unref(o);
		return -1;
	}
	o = jobopts_intern(o);
	for (i = 0; i < count; i++) {
		struct cmd *c = get_cmd(r);
		if (c == NULL)
			break;
		o->refs++;
		job_submit(first + i, o, c, has_spec ? &spec : NULL, submitted,
		    not_before);
	}
	jobopts_unref(o);
	return r->err || i != count ? -1 : 0;
}

/*
 * While a record is applied, B->now is the time the record happened, so
 * that what follows from it (a dependent failed, a job finished) gets the
 * same time as it did live; the clock of the running broker is kept here.
 */
static uint64_t	real_now;

static int
apply_lease(struct rbuf *r)
{
	uint64_t	 id = rbuf_u64(r), started, lease_ms;
	uint32_t	 index = rbuf_u32(r), attempt = rbuf_u32(r);
	char		*wname = get_str(r, 0), *host = get_str(r, 1);
	struct job	*j;
	struct worker	*w;
	int		 rc = -1;

	started = rbuf_u64(r);
	lease_ms = rbuf_u64(r);
	if (r->err || wname == NULL || (j = find(id, index, 1)) == NULL ||
	    j->kind == JK_ARRAY || job_finished(j) || j->state == JS_RUNNING)
		goto out;
	if ((w = worker_get(wname, 1)) == NULL)
		goto out;
	if (host != NULL && (w->host == NULL || strcmp(w->host, host) != 0)) {
		free(w->host);
		w->host = xstrdup(host);
	}
	w->lease_ms = lease_ms;
	/* A fresh lease from now: renewals were not journaled, and the
	 * worker needs time to find the restarted broker. */
	job_lease(j, w, attempt, started, real_now + lease_ms);
	rc = 0;
out:
	free(wname);
	free(host);
	return rc;
}

static int
apply_finish(struct rbuf *r)
{
	uint64_t	 id = rbuf_u64(r), due;
	uint32_t	 index = rbuf_u32(r), attempt = rbuf_u32(r);
	int		 state = rbuf_u8(r);
	struct result	*res;
	struct job	*j;

	due = rbuf_u64(r);
	res = get_result(r);
	B->now = res->finished;
	if (r->err || (j = find(id, index, 0)) == NULL ||
	    j->kind == JK_ARRAY || j->state != JS_RUNNING ||
	    j->attempts != attempt || (state != JS_DONE &&
	    state != JS_FAILED && state != JS_WAITING)) {
		result_free(res);
		return -1;
	}
	job_finish(j, res, state, due);
	return 0;
}

static int
apply_requeue(struct rbuf *r)
{
	uint64_t	 id = rbuf_u64(r), due;
	uint32_t	 index = rbuf_u32(r), attempt = rbuf_u32(r);
	int		 lost = rbuf_u8(r);
	struct job	*j;

	due = rbuf_u64(r);
	B->now = rbuf_u64(r);
	if (r->err || (j = find(id, index, 0)) == NULL ||
	    j->state != JS_RUNNING || j->attempts != attempt)
		return -1;
	job_requeue(j, lost, due);
	return 0;
}

static int
apply_id(struct rbuf *r, int type)
{
	uint64_t	 id = rbuf_u64(r);
	uint32_t	 index = rbuf_u32(r);
	struct job	*j;

	B->now = rbuf_u64(r);
	if (r->err || (j = find(id, index, 0)) == NULL)
		return -1;
	if (type == REC_CANCEL)
		job_cancel(j, "canceled");
	else
		job_retry(j);
	return 0;
}

static int
apply_queue(struct rbuf *r, int paused)
{
	size_t		 n;
	const char	*name = rbuf_vstr(r, &n);
	struct queue	*q;

	if (name == NULL || !proto_name_ok(name, n) ||
	    (q = queue_get(name, n, 1)) == NULL)
		return -1;
	q->paused = paused;
	return 0;
}

/*
 * The options a snapshot numbered, while it is replayed.  They are let go
 * when replay ends (rec_replay_done); jobs hold their own references.
 */
static struct jobopts	**snapopts;
static uint32_t		  nsnapopts, capsnapopts;
static uint64_t		  snap_last_id;
static uint32_t		  snap_last_index;

static void
snapopts_clear(void)
{
	uint32_t	i;

	for (i = 0; i < nsnapopts; i++)
		jobopts_unref(snapopts[i]);
	free(snapopts);
	snapopts = NULL;
	nsnapopts = capsnapopts = 0;
}

void
rec_replay_done(void)
{
	snapopts_clear();
}

static int
apply_opts(struct rbuf *r)
{
	uint64_t	 no = rbuf_uv(r);
	struct jobopts	*o = get_opts(r);

	if (r->err || no != nsnapopts) {
		jobopts_unref(o);
		return -1;
	}
	if (nsnapopts == capsnapopts) {
		capsnapopts = capsnapopts ? capsnapopts * 2 : 64;
		snapopts = realloc(snapopts, capsnapopts * sizeof *snapopts);
		if (snapopts == NULL)
			fatal("replay: out of memory");
	}
	snapopts[nsnapopts++] = o;
	return 0;
}

static struct result *
get_result(struct rbuf *r)
{
	struct result	*res = xcalloc(1, sizeof *res);
	const char	*p;
	size_t		 n;

	res->started = rbuf_uv(r);
	res->ended = rbuf_uv(r);
	res->finished = rbuf_uv(r);
	res->exit = (int32_t)rbuf_uv(r) - 1;
	res->sig = (int32_t)rbuf_uv(r);
	res->timedout = (uint32_t)rbuf_uv(r);
	res->utime = rbuf_uv(r);
	res->stime = rbuf_uv(r);
	res->maxrss = rbuf_uv(r);
	res->worker = get_str(r, 1);
	res->host = get_str(r, 1);
	res->outpath = get_str(r, 1);
	res->reason = get_str(r, 1);
	res->outlen = (uint32_t)rbuf_uv(r);
	res->errlen = (uint32_t)rbuf_uv(r);
	res->reslen = (uint32_t)rbuf_uv(r);
	n = (size_t)res->outlen + res->errlen + res->reslen;
	if (r->err || res->outlen > SIMQ_TAIL_MAX ||
	    res->errlen > SIMQ_TAIL_MAX || res->reslen > SIMQ_PAYLOAD_MAX ||
	    (p = rbuf_bytes(r, n)) == NULL) {
		r->err = 1;
		res->outlen = res->errlen = res->reslen = 0;
		return res;
	}
	if (n) {
		res->data = xmalloc(n);
		memcpy(res->data, p, n);
	}
	return res;
}

/* Rebuilds one job, array or task from a snapshot record. */
static int
apply_job(struct rbuf *r)
{
	struct job	*j = xcalloc(1, sizeof *j), *a = NULL;
	int		 flags;
	uint64_t	 v;
	char		*wname = NULL, *host = NULL;
	uint64_t	 lease_ms = 0, started = 0;

	j->id = rbuf_uv(r);
	v = rbuf_uv(r);
	j->index = v == 0 || v > (uint64_t)SIMQ_INDEX_MAX + 1 ?
	    SIMQ_NOINDEX : (uint32_t)(v - 1);
	j->kind = rbuf_u8(r);
	j->state = rbuf_u8(r);
	flags = rbuf_u8(r);
	j->gate_open = (flags & RJ_GATE) != 0;
	j->lost = (uint16_t)rbuf_uv(r);
	j->failures = (uint16_t)rbuf_uv(r);
	j->attempts = (uint32_t)rbuf_uv(r);
	j->submitted = rbuf_uv(r);
	j->due = rbuf_uv(r);
	/* A snapshot lists jobs in id order, each array's tasks right after
	 * it in index order: checking that order is the duplicate check. */
	if (r->err || j->kind > JK_TASK || j->state >= JS__COUNT ||
	    j->id == 0 || j->id > SIMQ_ID_MAX ||
	    (j->kind == JK_TASK) != (j->index != SIMQ_NOINDEX))
		goto fail;
	if (j->kind == JK_TASK ? j->id != snap_last_id ||
	    (snap_last_index != SIMQ_NOINDEX && j->index <= snap_last_index) :
	    j->id <= snap_last_id)
		goto fail;
	if (j->kind == JK_TASK) {
		a = idmap_get(j->id, SIMQ_NOINDEX);
		if (a == NULL || a->kind != JK_ARRAY)
			goto fail;
		j->parent = a;
		j->opts = a->opts;
		a->opts->refs++;
	} else {
		v = rbuf_uv(r);
		if (r->err || v >= nsnapopts)
			goto fail;
		j->opts = snapopts[v];
		j->opts->refs++;
		if ((j->cmd = get_cmd(r)) == NULL)
			goto fail;
	}
	if (j->kind == JK_ARRAY) {
		struct array *arr = xcalloc(1, sizeof *arr);
		TAILQ_INIT(&arr->tasks);
		j->arr = arr;
		arr->spec.first = (uint32_t)rbuf_uv(r);
		arr->spec.last = (uint32_t)rbuf_uv(r);
		arr->spec.step = (uint32_t)rbuf_uv(r);
		arr->spec.maxrun = (uint32_t)rbuf_uv(r);
		arr->cursor = rbuf_uv(r);
		arr->cut = rbuf_uv(r);
		arr->cut_state = rbuf_u8(r);
		if (r->err || arr->spec.step == 0 ||
		    arr->spec.first > arr->spec.last ||
		    arr->spec.last > SIMQ_INDEX_MAX)
			goto fail;
		arr->ntasks = proto_array_count(&arr->spec);
		if (arr->cursor > arr->cut || arr->cut > arr->ntasks ||
		    arr->cut_state >= JS__COUNT)
			goto fail;
	}
	if (flags & RJ_RUN) {
		wname = get_str(r, 0);
		host = get_str(r, 1);
		started = rbuf_uv(r);
		lease_ms = rbuf_uv(r);
	}
	if (flags & RJ_RES)
		j->res = get_result(r);
	if (r->err || ((flags & RJ_RUN) != 0) != (j->state == JS_RUNNING) ||
	    ((flags & RJ_RUN) && (wname == NULL || j->kind == JK_ARRAY)))
		goto fail;
	if (job_restore(j, wname, host, started, lease_ms) < 0)
		goto fail;
	snap_last_id = j->id;
	snap_last_index = j->index;
	free(wname);
	free(host);
	return 0;
fail:
	free(wname);
	free(host);
	if (j->kind == JK_ARRAY)
		free(j->arr);
	jobopts_unref(j->opts);
	free(j->cmd);
	result_free(j->res);
	free(j);
	return -1;
}

/*
 * The journal replay callback.  Returns 0, or -1 when a record cannot be
 * decoded or does not fit the state (journal_open then refuses to start,
 * naming the record).
 */
int
rec_apply(void *arg, uint8_t type, const uint8_t *p, size_t len)
{
	struct rbuf	r;
	int		rc;

	(void)arg;
	rbuf_init(&r, p, len);
	real_now = B->now;
	switch (type) {
	case REC_SUBMIT:
		rc = apply_submit(&r);
		break;
	case REC_LEASE:
		rc = apply_lease(&r);
		break;
	case REC_FINISH:
		rc = apply_finish(&r);
		break;
	case REC_REQUEUE:
		rc = apply_requeue(&r);
		break;
	case REC_CANCEL:
	case REC_RETRY:
		rc = apply_id(&r, type);
		break;
	case REC_PAUSE:
	case REC_RESUME:
		rc = apply_queue(&r, type == REC_PAUSE);
		break;
	case REC_NEXTID: {
		/* A snapshot begins: its option numbers start afresh. */
		uint64_t n = rbuf_u64(&r);
		snapopts_clear();
		snap_last_id = 0;
		snap_last_index = SIMQ_NOINDEX;
		rc = r.err || n == 0 ? -1 : 0;
		if (rc == 0 && n > B->next_id)
			B->next_id = n;
		break;
	}
	case REC_OPTS:
		rc = apply_opts(&r);
		break;
	case REC_JOB:
		rc = apply_job(&r);
		break;
	default:
		log_warn("journal: unknown record type %u", type);
		return -1;
	}
	B->now = real_now;
	/* What the snapshot replayed weighs: the size of the live state, the
	 * base of the compaction rule (snapshot.c). */
	if (type == REC_JOB || type == REC_OPTS || type == REC_NEXTID)
		B->snapshot_bytes += len + JOURNAL_FRAME_HDR;
	if (rc == 0 && rbuf_left(&r) != 0)
		rc = -1;	/* trailing bytes: not the layout we wrote */
	return rc;
}

/*
 * The journal's cutoff callback: a record a forced cut left out (or kept
 * from an earlier cut) is not applied, but the ids it names may have been
 * acknowledged, so the id counter goes above them.  Only the leading id
 * of each record is read; a damaged record is not seen at all.
 */
int
rec_cutoff(void *arg, uint8_t type, const uint8_t *p, size_t len)
{
	struct rbuf	r;
	uint64_t	top = 0, v;
	uint32_t	count;

	(void)arg;
	rbuf_init(&r, p, len);
	switch (type) {
	case REC_SUBMIT:
		v = rbuf_u64(&r);
		count = rbuf_u32(&r);
		if (count > 0 && v <= SIMQ_ID_MAX - count)
			top = v + count - 1;
		break;
	case REC_LEASE:
	case REC_FINISH:
	case REC_REQUEUE:
	case REC_CANCEL:
	case REC_RETRY:
		top = rbuf_u64(&r);
		break;
	case REC_NEXTID:
		if ((v = rbuf_u64(&r)) > 0)
			top = v - 1;
		break;
	case REC_JOB:
		top = rbuf_uv(&r);
		break;
	}
	if (r.err || top == 0 || top >= SIMQ_ID_MAX)
		return 0;
	if (top >= B->next_id) {
		B->next_id = top + 1;
		B->cutoff_ids = 1;
	}
	return 0;
}
