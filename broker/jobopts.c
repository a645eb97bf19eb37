/*
 * jobopts.c: what a job is given, apart from the state machine: its
 * options (struct jobopts, shared by every job of one SUBMIT or BATCH and
 * by consecutive submits with equal options) and its command line (struct
 * cmd, argv packed in one allocation).  Both are immutable once made.
 */
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

struct jobopts *
jobopts_new(const struct proto_jobopts *po, struct queue *q)
{
	struct jobopts	*o = xcalloc(1, sizeof *o);
	int		 i;

	o->refs = 1;
	o->q = q;
	o->prio = po->prio;
	o->timeout_ms = po->timeout_ms;
	o->retries = po->retries;
	o->cpus = po->cpus ? po->cpus : 1;
	o->gpus = po->gpus;
	o->mem = po->mem;
	if (po->name.len)
		o->name = xstrndup(po->name.p, po->name.len);
	if (po->cwd.len)
		o->cwd = xstrndup(po->cwd.p, po->cwd.len);
	if (po->output.len)
		o->output = xstrndup(po->output.p, po->output.len);
	o->nenv = po->nenv;
	if (o->nenv) {
		o->env = xcalloc(o->nenv, sizeof *o->env);
		for (i = 0; i < po->nenv; i++)
			o->env[i] = xstrndup(po->env[i].p, po->env[i].len);
	}
	o->ndeps = po->ndeps;
	if (o->ndeps) {
		o->deps = xcalloc(o->ndeps, sizeof *o->deps);
		memcpy(o->deps, po->deps, o->ndeps * sizeof *o->deps);
		for (i = 0; i < po->ndeps; i++)
			if (po->depkind[i] != SIMQ_DEP_OK)
				break;
		if (i < po->ndeps) {
			o->depkind = xmalloc(o->ndeps);
			memcpy(o->depkind, po->depkind, o->ndeps);
		}
	}
	if (po->nfiles > 0 || po->ncollect > 0) {
		struct jobfiles *f = o->files = jobfiles_new();
		if (po->nfiles > 0)
			f->files = xcalloc((size_t)po->nfiles,
			    sizeof *f->files);
		for (i = 0; i < po->nfiles; i++) {
			memcpy(f->files[i].hash, po->files[i].hash,
			    SIMQ_HASH_LEN);
			f->files[i].size = po->files[i].size;
			f->files[i].mode = po->files[i].mode;
			f->files[i].name = xstrndup(po->files[i].name.p,
			    po->files[i].name.len);
		}
		f->nfiles = (uint32_t)po->nfiles;
		if (po->ncollect > 0)
			f->pat = xcalloc((size_t)po->ncollect, sizeof *f->pat);
		for (i = 0; i < po->ncollect; i++)
			f->pat[i] = xstrndup(po->collect[i].p,
			    po->collect[i].len);
		f->npat = (uint32_t)po->ncollect;
		jobfiles_ref(f, 1);
	}
	return o;
}

void
jobopts_unref(struct jobopts *o)
{
	uint32_t	i;

	if (o == NULL || --o->refs > 0)
		return;
	free(o->name);
	free(o->cwd);
	free(o->output);
	for (i = 0; i < o->nenv; i++)
		free(o->env[i]);
	free(o->env);
	free(o->deps);
	free(o->depkind);
	jobfiles_ref(o->files, 0);
	jobfiles_free(o->files);
	free(o);
}

static int
streq0(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int
jobopts_equal(const struct jobopts *a, const struct jobopts *b)
{
	uint32_t	i;

	if (a->q != b->q || a->prio != b->prio ||
	    a->timeout_ms != b->timeout_ms || a->retries != b->retries ||
	    a->nenv != b->nenv || a->ndeps != b->ndeps ||
	    a->cpus != b->cpus || a->gpus != b->gpus || a->mem != b->mem ||
	    !streq0(a->name, b->name) || !streq0(a->cwd, b->cwd) ||
	    !streq0(a->output, b->output) || !jobfiles_equal(a->files, b->files))
		return 0;
	for (i = 0; i < a->nenv; i++)
		if (strcmp(a->env[i], b->env[i]) != 0)
			return 0;
	if ((a->depkind == NULL) != (b->depkind == NULL) ||
	    (a->depkind != NULL &&
	    memcmp(a->depkind, b->depkind, a->ndeps) != 0))
		return 0;
	return a->ndeps == 0 ||
	    memcmp(a->deps, b->deps, a->ndeps * sizeof *a->deps) == 0;
}

/*
 * Jobs submitted one by one usually carry the same options as the one
 * before; sharing them keeps a queued job near the size of a batched one.
 * Takes the caller's reference to o and returns a reference to o or to an
 * equal, older record.
 */
static struct jobopts	*last_opts;

struct jobopts *
jobopts_intern(struct jobopts *o)
{
	/* Not options with files: the cache's reference would keep their
	 * blobs named after the last job naming them is gone. */
	if (o->files != NULL)
		return o;
	if (last_opts != NULL && last_opts != o && jobopts_equal(last_opts, o)) {
		jobopts_unref(o);
		last_opts->refs++;
		return last_opts;
	}
	if (last_opts != o) {
		jobopts_unref(last_opts);
		last_opts = o;
		o->refs++;
	}
	return o;
}

/* Lets go of the shared record if it names q (a queue being forgotten:
 * no job uses it, so only the sharing cache still could). */
void
jobopts_forget_queue(const struct queue *q)
{
	if (last_opts != NULL && last_opts->q == q) {
		jobopts_unref(last_opts);
		last_opts = NULL;
	}
}

/* Lets go of the shared record (at exit). */
void
jobopts_free_cache(void)
{
	jobopts_unref(last_opts);
	last_opts = NULL;
}

/* A command from packed data: argc NUL-terminated strings.  The caller
 * has checked that data holds exactly argc of them. */
struct cmd *
cmd_new(const char *data, uint32_t len, uint32_t argc)
{
	struct cmd	*c = xmalloc(sizeof *c + len);

	c->len = len;
	c->argc = argc;
	memcpy(c->data, data, len);
	return c;
}

/* A command from encoded words; decodes them in place.  NULL if a word is
 * malformed or contains a NUL byte (an argv string cannot). */
struct cmd *
cmd_from_words(struct proto_word *w, int n)
{
	size_t		 len = 0;
	long		 d;
	int		 i;
	struct cmd	*c;
	char		*p;

	for (i = 0; i < n; i++) {
		if ((d = proto_decode(w[i].p, w[i].len)) < 0)
			return NULL;
		w[i].len = (size_t)d;
		if (memchr(w[i].p, '\0', w[i].len) != NULL)
			return NULL;
		len += w[i].len + 1;
	}
	c = xmalloc(sizeof *c + len);
	c->len = (uint32_t)len;
	c->argc = (uint32_t)n;
	p = c->data;
	for (i = 0; i < n; i++) {
		memcpy(p, w[i].p, w[i].len);
		p[w[i].len] = '\0';
		p += w[i].len + 1;
	}
	return c;
}
