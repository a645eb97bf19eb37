/*
 * codec.c: the fields journal records share (options, a command, an
 * array's spec, an attempt's result, strings), written with buf_put_* in
 * explicit little-endian or varints and read back with a bounds-checked
 * rbuf, never by copying structs.
 *
 * A reader never trusts a length: every count is checked against its
 * protocol limit before anything is allocated, and a malformed field sets
 * the rbuf's error flag, which the record's apply function checks once.
 * Strings come back as NUL-terminated copies (or NULL when empty, for
 * optional ones); a NUL inside one is an error.
 *
 * If you change a field: bump JOURNAL_VERSION in journal.h, keep decoding
 * the old layout, and update the fixtures in tests/unit/test_records.c.
 */
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

/* Whether o asks for more than one CPU, for GPUs or for memory. */
static int
opts_has_res(const struct jobopts *o)
{
	return o->cpus != 1 || o->gpus != 0 || o->mem != 0;
}

void
rec_put_opts(struct buf *b, const struct jobopts *o)
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
	/* Kinds other than "ok" came later: the count's top bit says that a
	 * byte of kind follows each dependency, so records without them
	 * keep their first layout. */
	/* Resources came later still: another bit of the count says that
	 * cpus, gpus and mem follow the dependencies, as varints; a job
	 * asking for none (one CPU) keeps the older layout.  Files came
	 * after them: a third bit says that the job's files and collect
	 * patterns follow the resources. */
	buf_put_u32(b, o->ndeps | (o->depkind != NULL ? DEPS_KINDED : 0) |
	    (opts_has_res(o) ? DEPS_RES : 0) |
	    (o->files != NULL ? DEPS_FILES : 0));
	for (i = 0; i < o->ndeps; i++) {
		buf_put_u64(b, o->deps[i].id);
		buf_put_u32(b, o->deps[i].index);
		if (o->depkind != NULL)
			buf_put_u8(b, o->depkind[i]);
	}
	if (opts_has_res(o)) {
		buf_put_uv(b, o->cpus);
		buf_put_uv(b, o->gpus);
		buf_put_uv(b, o->mem);
	}
	if (o->files != NULL)
		rec_put_files(b, o->files, 0);
}

/* Files (file= or got=): count, then each one's hash, size, mode and
 * name; then the patterns (collect= or nomatch=), and for a result the
 * notes (collerr=). */
void
rec_put_files(struct buf *b, const struct jobfiles *f, int result)
{
	uint32_t	i;

	buf_put_uv(b, f->nfiles);
	for (i = 0; i < f->nfiles; i++) {
		buf_put(b, f->files[i].hash, SIMQ_HASH_LEN);
		buf_put_uv(b, f->files[i].size);
		buf_put_uv(b, f->files[i].mode);
		rec_put_vstr0(b, f->files[i].name);
	}
	buf_put_uv(b, f->npat);
	for (i = 0; i < f->npat; i++)
		rec_put_vstr0(b, f->pat[i]);
	if (!result)
		return;
	buf_put_uv(b, f->nerr);
	for (i = 0; i < f->nerr; i++)
		rec_put_vstr0(b, f->err[i]);
}

/* Reads what rec_put_files wrote, checking every name and count as the
 * wire does, and takes a reference to each blob named.  NULL with the
 * error flag set if the field is malformed. */
struct jobfiles *
rec_get_files(struct rbuf *r, int result)
{
	struct jobfiles	*f = jobfiles_new();
	uint64_t	 n, i, v;
	const uint8_t	*h;
	const char	*why;
	char		*s;

	n = rbuf_uv(r);
	if (r->err || n > SIMQ_FILES_MAX || n > rbuf_left(r) / 36)
		goto bad;
	if (n > 0)
		f->files = xcalloc((size_t)n, sizeof *f->files);
	for (i = 0; i < n; i++) {
		struct jobfile *jf = &f->files[i];
		if ((h = rbuf_bytes(r, SIMQ_HASH_LEN)) == NULL)
			goto bad;
		memcpy(jf->hash, h, SIMQ_HASH_LEN);
		jf->size = rbuf_uv(r);
		v = rbuf_uv(r);
		s = rec_get_str(r, 0);
		if (s == NULL)
			goto bad;
		jf->name = s;
		f->nfiles++;
		if (r->err || jf->size > SIMQ_BLOB_SIZE_MAX || v > 0777 ||
		    proto_relpath_why(s, strlen(s)) != NULL)
			goto bad;
		jf->mode = (uint32_t)v;
	}
	n = rbuf_uv(r);
	if (r->err || n > SIMQ_COLLECT_MAX || n > rbuf_left(r))
		goto bad;
	if (n > 0)
		f->pat = xcalloc((size_t)n, sizeof *f->pat);
	for (i = 0; i < n; i++) {
		if ((s = rec_get_str(r, 0)) == NULL)
			goto bad;
		f->pat[f->npat++] = s;
		if ((why = proto_glob_why(s, strlen(s))) != NULL)
			goto bad;
	}
	if (result) {
		n = rbuf_uv(r);
		if (r->err || n > SIMQ_COLLERR_MAX || n > rbuf_left(r))
			goto bad;
		if (n > 0)
			f->err = xcalloc((size_t)n, sizeof *f->err);
		for (i = 0; i < n; i++) {
			if ((s = rec_get_str(r, 0)) == NULL)
				goto bad;
			f->err[f->nerr++] = s;
			if (strlen(s) > SIMQ_REASON_MAX)
				goto bad;
		}
	}
	if (r->err)
		goto bad;
	jobfiles_ref(f, 1);
	return f;
bad:
	r->err = 1;
	jobfiles_free(f);
	return NULL;
}

void
rec_put_cmd(struct buf *b, const struct cmd *c)
{
	buf_put_uv(b, c->argc);
	buf_put_vstr(b, c->data, c->len);
}

void
rec_put_spec(struct buf *b, const struct array_spec *s)
{
	buf_put_u32(b, s->first);
	buf_put_u32(b, s->last);
	buf_put_u32(b, s->step);
	buf_put_u32(b, s->maxrun);
}

void
rec_put_vstr0(struct buf *b, const char *s)
{
	buf_put_vstr(b, s, s ? strlen(s) : 0);
}

/* An attempt's result (FINISH records, snapshots), in varints. */
void
rec_put_result(struct buf *b, const struct result *r)
{
	buf_put_uv(b, r->started);
	buf_put_uv(b, r->ended);
	buf_put_uv(b, r->finished);
	buf_put_uv(b, (uint64_t)(r->exit + 1));		/* -1 is "unknown" */
	buf_put_uv(b, (uint64_t)r->sig);
	/* Bit 1 of timedout (which is 0 or 1) came later: the collected
	 * files follow the data. */
	buf_put_uv(b, r->timedout | (r->got != NULL ? RES_GOT : 0));
	buf_put_uv(b, r->utime);
	buf_put_uv(b, r->stime);
	buf_put_uv(b, r->maxrss);
	rec_put_vstr0(b, r->worker);
	rec_put_vstr0(b, r->host);
	rec_put_vstr0(b, r->outpath);
	rec_put_vstr0(b, r->reason);
	buf_put_uv(b, r->outlen);
	buf_put_uv(b, r->errlen);
	buf_put_uv(b, r->reslen);
	buf_put(b, r->data, (size_t)r->outlen + r->errlen + r->reslen);
	if (r->got != NULL)
		rec_put_files(b, r->got, 1);
}

char *
rec_get_str(struct rbuf *r, int optional)
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

struct cmd *
rec_get_cmd(struct rbuf *r)
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

struct jobopts *
rec_get_opts(struct rbuf *r)
{
	struct jobopts	*o = xcalloc(1, sizeof *o);
	size_t		 n;
	const char	*qn = rbuf_vstr(r, &n);
	uint32_t	 i;
	int		 kinded, res, files;

	o->refs = 1;
	if (qn == NULL || !proto_name_ok(qn, n) ||
	    (o->q = queue_get(qn, n, 1)) == NULL)
		r->err = 1;
	o->prio = rbuf_i64(r);
	o->timeout_ms = rbuf_u64(r);
	o->retries = rbuf_u32(r);
	o->name = rec_get_str(r, 1);
	o->cwd = rec_get_str(r, 1);
	o->output = rec_get_str(r, 1);
	o->nenv = rbuf_u32(r);
	if (o->nenv > SIMQ_ENV_MAX) {
		o->nenv = 0;
		r->err = 1;
	}
	if (o->nenv) {
		o->env = xcalloc(o->nenv, sizeof *o->env);
		for (i = 0; i < o->nenv; i++)
			if ((o->env[i] = rec_get_str(r, 0)) == NULL)
				o->env[i] = xstrdup("");
	}
	o->ndeps = rbuf_u32(r);
	kinded = (o->ndeps & DEPS_KINDED) != 0;
	res = (o->ndeps & DEPS_RES) != 0;
	files = (o->ndeps & DEPS_FILES) != 0;
	o->ndeps &= ~(DEPS_KINDED | DEPS_RES | DEPS_FILES);
	if (o->ndeps > SIMQ_DEPS_MAX || (kinded && o->ndeps == 0)) {
		o->ndeps = 0;
		r->err = 1;
	}
	if (o->ndeps) {
		o->deps = xcalloc(o->ndeps, sizeof *o->deps);
		if (kinded)
			o->depkind = xcalloc(o->ndeps, 1);
		for (i = 0; i < o->ndeps; i++) {
			o->deps[i].id = rbuf_u64(r);
			o->deps[i].index = rbuf_u32(r);
			if (kinded && (o->depkind[i] = rbuf_u8(r)) >=
			    SIMQ_DEP__COUNT)
				r->err = 1;
		}
	}
	o->cpus = 1;
	if (res) {
		uint64_t cpus = rbuf_uv(r), gpus = rbuf_uv(r), mem = rbuf_uv(r);
		if (cpus == 0 || cpus > SIMQ_CPUS_MAX || gpus > SIMQ_GPUS_MAX ||
		    mem > SIMQ_MEM_MAX || (cpus == 1 && gpus == 0 && mem == 0))
			r->err = 1;
		else {
			o->cpus = (uint32_t)cpus;
			o->gpus = (uint32_t)gpus;
			o->mem = mem;
		}
	}
	if (files && !r->err)
		o->files = rec_get_files(r, 0);
	return o;
}

int
rec_get_spec(struct rbuf *r, struct array_spec *s)
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

struct result *
rec_get_result(struct rbuf *r)
{
	struct result	*res = xcalloc(1, sizeof *res);
	const char	*p;
	size_t		 n;
	int		 got;

	res->started = rbuf_uv(r);
	res->ended = rbuf_uv(r);
	res->finished = rbuf_uv(r);
	res->exit = (int32_t)rbuf_uv(r) - 1;
	res->sig = (int32_t)rbuf_uv(r);
	res->timedout = (uint32_t)rbuf_uv(r);
	got = (res->timedout & RES_GOT) != 0;
	res->timedout &= ~RES_GOT;
	if (res->timedout > 1)
		r->err = 1;
	res->utime = rbuf_uv(r);
	res->stime = rbuf_uv(r);
	res->maxrss = rbuf_uv(r);
	res->worker = rec_get_str(r, 1);
	res->host = rec_get_str(r, 1);
	res->outpath = rec_get_str(r, 1);
	res->reason = rec_get_str(r, 1);
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
	if (got)
		res->got = rec_get_files(r, 1);
	return res;
}

/* Appends a built record to the journal and frees the buffer. */
void
journal_put(uint8_t type, struct buf *b)
{
	journal_append(B->journal, type, b->p, b->len);
	buf_free(b);
}
