/*
 * http.c: the dashboard and the HTTP API of the broker (--http PORT).
 *
 *	/			the overview: queues, jobs and arrays (newest
 *				first, ?queue= &state= &page=), workers, a
 *				chart of jobs finished and failed a minute
 *	/jobs/ID		a job, task or array; an array's tasks,
 *				failed first (?state= &page=)
 *	/login			the form that lets a browser in (--token-file)
 *	/static/dash.css, /static/dash.js   the embedded assets
 *	/api/status		queues, workers, the per-minute counts, as JSON
 *	/api/jobs		the job list (?queue= &state= &page=)
 *	/api/jobs/ID		one job, task or array, the fields of
 *				`simq status --json`
 *	/api/jobs/ID/tasks	an array's tasks (?state= &page=)
 *	/metrics		counters and gauges, Prometheus text format
 *	POST /action		op=cancel|retry (id=) or pause|resume (queue=)
 *	POST /login, /logout
 *
 * The pages are whole HTML written here; dash.js, when it runs, fetches
 * the page's #live part again every few seconds and swaps it in, so an
 * open dashboard costs one paged request every few seconds and nothing
 * walks an array's tasks beyond the page it shows.
 *
 * Who may do what: without a token (--token-file) everyone who reaches
 * the port, as with the CLI.  With one, a request carries it as
 * "Authorization: Bearer TOKEN" (scripts), or a session cookie that
 * POST /login sets (browsers: HttpOnly, SameSite=Strict, Secure behind a
 * TLS proxy that says X-Forwarded-Proto: https).  A wrong token, in a
 * header or the login form, is slowed down like a wrong HELLO.
 * Actions are POSTs only, refused when the browser says the request is
 * cross-site (Sec-Fetch-Site, or an Origin that is not this Host), and a
 * form must carry the session's CSRF token (the broker's own one when
 * there is no login); Bearer requests need no CSRF token.  An action
 * changes the model as CANCEL, RETRY, PAUSE or RESUME do, so its answer
 * is released after the journal's commit, like a protocol reply.
 *
 * The connections are net.c's, of kind CONN_HTTP: they draw on the same
 * descriptor budget as the protocol's (a quarter of it at most), the
 * whole request (head and body) must arrive within ten seconds, and one
 * request is served per connection ("Connection: close").  A head must
 * fit HTTP_HEADERS_MAX, a POST's body HTTP_BODY_MAX, a query string
 * HTTP_QUERY_MAX.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/random.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "json.h"
#include "log.h"

#define HTTP_HEADERS_MAX	16384
#define HTTP_BODY_MAX		4096
#define HTTP_QUERY_MAX		1024
#define HTTP_PATH_MAX		256
/* Rows a page of jobs or tasks shows. */
#define PAGE_ROWS		50
/* Unmaterialised tasks looked at for one page of tasks in a state. */
#define PENDING_SCAN_MAX	10000
/* Output shown on a job's page: the last bytes of each stream. */
#define TAIL_BYTES		4096
/* Browser sessions kept; the oldest goes when a new one needs room. */
#define SESSIONS_MAX		64

/* The assets, generated from broker/dashboard/ (embed.sh). */
extern const char dash_css[], dash_js[];

struct session {
	char		sid[33];
	char		csrf[33];
	uint64_t	used;
};
static struct session	sessions[SESSIONS_MAX];
/* The CSRF token of forms when there is no token to log in with. */
static char		open_csrf[33];

enum { A_NONE, A_BAD, A_OPEN, A_BEARER, A_SESSION };

struct req {
	struct conn	*c;
	const char	*head;
	size_t		 hlen;
	int		 head_only, post;
	char		 path[HTTP_PATH_MAX];
	char		 query[HTTP_QUERY_MAX];
	const char	*body;
	size_t		 blen;
	int		 auth;
	struct session	*s;
	const char	*csrf;		/* forms' token, NULL: cannot act */
};

static void
random_hex(char *out, size_t n)
{
	unsigned char	b[32];
	size_t		i;

	if (n > sizeof b)
		n = sizeof b;
	if (getrandom(b, n, 0) != (ssize_t)n)
		fatal("http: no random bytes");
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Writes s for an HTML page. */
static void
html_strn(struct evbuffer *o, const char *s, size_t n)
{
	size_t	i;

	for (i = 0; s != NULL && i < n; i++) {
		switch (s[i]) {
		case '<': evbuffer_add(o, "&lt;", 4); break;
		case '>': evbuffer_add(o, "&gt;", 4); break;
		case '&': evbuffer_add(o, "&amp;", 5); break;
		case '"': evbuffer_add(o, "&quot;", 6); break;
		case '\'': evbuffer_add(o, "&#39;", 5); break;
		default: evbuffer_add(o, s + i, 1);
		}
	}
}

static void
html_str(struct evbuffer *o, const char *s)
{
	if (s != NULL)
		html_strn(o, s, strlen(s));
}

/* Writes s %-encoded for a URL's query. */
static void
url_str(struct evbuffer *o, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-_.~", ch) != NULL)
			evbuffer_add(o, s, 1);
		else
			evbuffer_add_printf(o, "%%%02X", ch);
	}
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * The value of name in a form or query string (a=1&b=2), decoded into
 * out; 1 if found, 0 if not, -1 if it is badly encoded or too long.
 */
static int
param(const char *qs, size_t len, const char *name, char *out, size_t cap)
{
	const char	*p = qs, *end = qs + len, *amp, *eq;
	size_t		 n = strlen(name), k;

	for (; p < end; p = amp + 1) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq == NULL || (size_t)(eq - p) != n ||
		    memcmp(p, name, n) != 0)
			continue;
		for (p = eq + 1, k = 0; p < amp; p++) {
			int ch = (unsigned char)*p;
			if (ch == '+')
				ch = ' ';
			else if (ch == '%') {
				int h, l;
				if (amp - p < 3 || (h = hexval(p[1])) < 0 ||
				    (l = hexval(p[2])) < 0)
					return -1;
				ch = h * 16 + l;
				p += 2;
			}
			if (ch == 0 || k + 1 >= cap)
				return -1;
			out[k++] = (char)ch;
		}
		out[k] = '\0';
		return 1;
	}
	return 0;
}

static int
qparam(const struct req *r, const char *name, char *out, size_t cap)
{
	return param(r->query, strlen(r->query), name, out, cap);
}

static void
iso8601(char *buf, size_t cap, uint64_t ms)
{
	time_t		t = (time_t)(ms / 1000);
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void
json_time(struct json *js, uint64_t ms)
{
	char		buf[40];
	time_t		t = (time_t)(ms / 1000);
	struct tm	tm;
	size_t		n;

	if (ms == 0) {
		json_null(js);
		return;
	}
	gmtime_r(&t, &tm);
	n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof buf - n, ".%03uZ", (unsigned)(ms % 1000));
	json_cstr(js, buf);
}

/*
 * The JSON views are written with lib/json.c, the writer of simq --json,
 * so both are valid JSON in UTF-8 whatever bytes a name holds, and have
 * the same shapes.
 */
static void
json_counts(struct json *js, const uint64_t *count)
{
	int	s;

	json_object(js);
	for (s = 0; s < JS__COUNT; s++) {
		json_key(js, proto_state_name(s));
		json_uint(js, count[s]);
	}
	json_end(js);
}

static void
json_running(struct json *js, const struct worker *w)
{
	const struct job	*j;
	char			 id[32];

	json_array(js);
	TAILQ_FOREACH(j, &w->jobs, run->wentry) {
		proto_format_id(id, j->id, j->index);
		json_cstr(js, id);
	}
	json_end(js);
}

/* Moves the document in b to o. */
static void
json_out(struct evbuffer *o, struct json *js, struct buf *b)
{
	json_finish(js);
	evbuffer_add(o, b->p, b->len);
	buf_free(b);
}

static void
page_status(struct evbuffer *o)
{
	uint64_t	 m = B->now / 60000, k;
	int		 i;
	struct queue	*q;
	struct worker	*w;
	struct buf	 b;
	struct json	 js;

	buf_init(&b);
	json_init(&js, &b, 0);
	json_object(&js);
	json_key(&js, "queues");
	json_object(&js);
	TAILQ_FOREACH(q, &B->queues, entry) {
		json_key(&js, q->name);
		json_counts(&js, q->count);
	}
	json_end(&js);
	json_key(&js, "paused");
	json_array(&js);
	TAILQ_FOREACH(q, &B->queues, entry)
		if (q->paused)
			json_cstr(&js, q->name);
	json_end(&js);
	json_key(&js, "workers");
	json_array(&js);
	TAILQ_FOREACH(w, &workers, entry) {
		json_object(&js);
		json_key(&js, "name");
		json_cstr(&js, w->name);
		json_key(&js, "host");
		json_cstr(&js, w->host);
		json_key(&js, "slots");
		json_uint(&js, w->slots);
		json_key(&js, "connected");
		json_bool(&js, w->conn != NULL);
		json_key(&js, "running");
		json_running(&js, w);
		json_end(&js);
	}
	json_end(&js);
	/* The chart's counts, oldest first: minutes with something. */
	json_key(&js, "minutes");
	json_array(&js);
	for (k = MINUTES; k-- > 0;) {
		i = (int)((m - k) % MINUTES);
		if (B->min_no[i] != m - k || B->min_done[i] +
		    B->min_failed[i] == 0)
			continue;
		json_object(&js);
		json_key(&js, "minute");
		json_time(&js, (m - k) * 60000);
		json_key(&js, "done");
		json_uint(&js, B->min_done[i]);
		json_key(&js, "failed");
		json_uint(&js, B->min_failed[i]);
		json_end(&js);
	}
	json_end(&js);
	json_end(&js);
	json_out(o, &js, &b);
}

/* The value of header name in the head (lines after the first), or NULL;
 * *len is its length without surrounding blanks. */
static const char *
header(const char *head, size_t hlen, const char *name, size_t *len)
{
	const char	*p = memchr(head, '\n', hlen), *end = head + hlen, *e;
	size_t		 n = strlen(name);

	while (p != NULL && ++p < end) {
		if ((e = memchr(p, '\n', (size_t)(end - p))) == NULL)
			e = end;
		if ((size_t)(e - p) > n && p[n] == ':' &&
		    strncasecmp(p, name, n) == 0) {
			p += n + 1;
			while (p < e && (*p == ' ' || *p == '\t'))
				p++;
			while (e > p && (e[-1] == '\r' || e[-1] == ' ' ||
			    e[-1] == '\t'))
				e--;
			*len = (size_t)(e - p);
			return p;
		}
		p = e;
	}
	return NULL;
}

/* B->jobs's head, named for TAILQ_FOREACH_REVERSE. */
TAILQ_HEAD(jobhead_, job);

/* What a job's page and document say, from the job or, for a task no
 * worker has taken, from a stand-in made of its array. */
static int
state_of(const struct job *j)
{
	return j->kind == JK_ARRAY ? job_array_state(j) : j->state;
}

static uint64_t
started_of(const struct job *j)
{
	return j->run ? j->run->started : j->res ? j->res->started : 0;
}

static uint64_t
finished_of(const struct job *j)
{
	return (j->kind == JK_ARRAY || job_finished(j)) && j->res ?
	    j->res->finished : 0;
}

/* How long it ran, or has run so far (an array: since its submission). */
static uint64_t
runtime_of(const struct job *j)
{
	uint64_t	start, end;

	if (j->kind == JK_ARRAY) {
		if (!job_finished_state(state_of(j)) && j->arr->running == 0)
			return 0;
		start = j->submitted;
		end = job_finished_state(state_of(j)) && j->res ?
		    j->res->finished : B->now;
	} else {
		if ((start = started_of(j)) == 0)
			return 0;
		end = j->run ? B->now : finished_of(j) ? finished_of(j) :
		    start;
	}
	return end > start ? end - start : 0;
}

/* Argument i of j's command ("{}" replaced by a task's index, or by its
 * line for an EACHLINE array) into b; returns the next argument's start. */
static const char *
arg_next(const struct job *j, const char *p, struct buf *b)
{
	char		 idx[16];
	size_t		 len = strlen(p), sublen;
	const char	*sub = idx;

	buf_reset(b);
	if (j->kind != JK_TASK || strstr(p, "{}") == NULL) {
		buf_put(b, p, len);
		return p + len + 1;
	}
	snprintf(idx, sizeof idx, "%u", j->index);
	sublen = strlen(idx);
	if (j->parent->arr->ent != NULL)
		sub = entries_get(j->parent->arr->ent, j->index, &sublen);
	for (; *p != '\0'; p++) {
		if (p[0] == '{' && p[1] == '}') {
			buf_put(b, sub, sublen);
			p++;
		} else
			buf_put_u8(b, (uint8_t)*p);
	}
	return p + 1;
}

static const struct cmd *
cmd_of(const struct job *j)
{
	return j->kind == JK_TASK ? j->parent->cmd : j->cmd;
}

/* A task with no record, as a job on the stack: its array's options and
 * command, the state STATUS gives it. */
static void
stand_in(struct job *t, struct job *a, uint32_t index, int st)
{
	memset(t, 0, sizeof *t);
	t->id = a->id;
	t->index = index;
	t->kind = JK_TASK;
	t->state = (uint8_t)st;
	t->parent = a;
	t->opts = a->opts;
	t->submitted = a->submitted;
}

/* The job, task or array an id names, or (into *tmp) a stand-in. */
static struct job *
find_job(const char *ids, size_t len, struct job *tmp)
{
	struct simq_id	 id;
	struct job	*j, *a;
	int		 st;

	if (proto_parse_id(ids, len, &id) < 0)
		return NULL;
	if ((j = idmap_get(id.id, id.index)) != NULL)
		return j;
	if ((a = lookup_pending_task(&id, &st)) == NULL)
		return NULL;
	stand_in(tmp, a, id.index, st);
	return tmp;
}

/* What the job asks for, and, for one with queued work no connected
 * worker could ever run, why: the keys of jobview_json's, the same
 * values as STATUS's cpus= gpus= mem= unfit= why=.  Only when full (one
 * job, not a list), for the reason costs the workers. */
static void
json_res(struct json *js, const struct job *j, int full)
{
	const struct jobopts	*op = j->opts;
	char			 kinds[64], text[512], *p, *tok;
	int			 queued = j->kind == JK_ARRAY ?
				    j->arr->count[JS_QUEUED] > 0 :
				    j->state == JS_QUEUED;

	json_key(js, "cpus");
	json_uint(js, op->cpus);
	json_key(js, "gpus");
	json_uint(js, op->gpus);
	json_key(js, "mem");
	if (op->mem)
		json_uint(js, op->mem);
	else
		json_null(js);
	if (!full || !queued || !fit_why(op, kinds, sizeof kinds, text,
	    sizeof text))
		kinds[0] = text[0] = '\0';
	json_key(js, "unfit");
	if (kinds[0] != '\0') {
		json_array(js);
		for (p = kinds; (tok = strsep(&p, ",")) != NULL;)
			json_cstr(js, tok);
		json_end(js);
	} else
		json_null(js);
	json_key(js, "why");
	json_cstr(js, text[0] != '\0' ? text : NULL);
}

/* One job, task or array with the fields of `simq status --json`; the
 * unfit reason only when full. */
static void
json_job(struct json *js, const struct job *j, int full)
{
	const struct result	*r = j->res;
	const struct jobopts	*op = j->opts;
	const struct cmd	*c = cmd_of(j);
	const char		*p;
	struct buf		 b;
	char			 id[32];
	uint64_t		 rt;
	uint32_t		 i;
	int			 st;

	proto_format_id(id, j->id, j->index);
	json_object(js);
	json_key(js, "id");
	json_cstr(js, id);
	json_key(js, "kind");
	json_cstr(js, j->kind == JK_ARRAY ? "array" : j->kind == JK_TASK ?
	    "task" : "job");
	json_key(js, "state");
	json_cstr(js, proto_state_name(state_of(j)));
	json_key(js, "queue");
	json_cstr(js, op->q->name);
	json_key(js, "priority");
	json_int(js, op->prio);
	json_key(js, "attempts");
	if (j->kind == JK_ARRAY)
		json_null(js);
	else
		json_uint(js, j->attempts);
	json_key(js, "retries");
	json_uint(js, op->retries);
	json_key(js, "exit_code");
	if (r != NULL && r->exit >= 0)
		json_uint(js, (uint64_t)r->exit);
	else
		json_null(js);
	json_key(js, "signal");
	if (r != NULL && r->sig > 0)
		json_uint(js, (uint64_t)r->sig);
	else
		json_null(js);
	json_key(js, "timed_out");
	json_bool(js, r != NULL && r->timedout);
	json_key(js, "name");
	json_cstr(js, op->name);
	json_key(js, "submitted");
	json_time(js, j->submitted);
	json_key(js, "started");
	json_time(js, started_of(j));
	json_key(js, "finished");
	json_time(js, finished_of(j));
	json_key(js, "runtime");
	if ((rt = runtime_of(j)) > 0 || (j->kind != JK_ARRAY &&
	    started_of(j)))
		json_millis(js, rt);
	else
		json_null(js);
	json_key(js, "worker");
	json_cstr(js, j->run ? j->run->w->name : r ? r->worker : NULL);
	json_key(js, "host");
	json_cstr(js, j->run ? j->run->w->host : r ? r->host : NULL);
	json_key(js, "reason");
	json_cstr(js, r && r->reason && *r->reason ? r->reason : NULL);
	json_key(js, "after");
	json_array(js);
	if (j->ndeps_left > 0)
		for (i = 0; i < op->ndeps; i++) {
			char d[48];
			int kd = op->depkind ? op->depkind[i] : SIMQ_DEP_OK;
			proto_format_id(id, op->deps[i].id, op->deps[i].index);
			snprintf(d, sizeof d, "%s%s%s", kd != SIMQ_DEP_OK ?
			    proto_depkind_name(kd) : "", kd != SIMQ_DEP_OK ?
			    ":" : "", id);
			json_cstr(js, d);
		}
	json_end(js);
	json_key(js, "due");
	json_time(js, j->state == JS_WAITING && j->due > B->now ? j->due : 0);
	json_key(js, "output_path");
	json_cstr(js, r ? r->outpath : NULL);
	json_key(js, "max_rss");
	if (r != NULL && r->maxrss)
		json_uint(js, r->maxrss * 1024);
	else
		json_null(js);
	json_key(js, "cpu_time");
	if (r != NULL && (r->utime || r->stime))
		json_millis(js, (r->utime + r->stime) / 1000);
	else
		json_null(js);
	json_res(js, j, full);
	if (j->kind == JK_ARRAY) {
		const struct array_spec *s = &j->arr->spec;
		char spec[64];
		json_key(js, "tasks");
		json_uint(js, j->arr->ntasks);
		json_key(js, "counts");
		json_object(js);
		for (st = 0; st < JS__COUNT; st++) {
			json_key(js, proto_state_name(st));
			json_uint(js, j->arr->count[st]);
		}
		json_end(js);
		json_key(js, "spec");
		if (s->maxrun)
			snprintf(spec, sizeof spec, "%u-%u:%u%%%u", s->first,
			    s->last, s->step, s->maxrun);
		else
			snprintf(spec, sizeof spec, "%u-%u:%u", s->first,
			    s->last, s->step);
		json_cstr(js, spec);
	} else if (j->kind == JK_TASK) {
		json_key(js, "array");
		proto_format_id(id, j->id, SIMQ_NOINDEX);
		json_cstr(js, id);
		json_key(js, "index");
		json_uint(js, j->index);
	}
	blob_json_job(js, j);	/* files, collect, collected, ... */
	json_key(js, "command");
	json_array(js);
	buf_init(&b);
	for (p = c->data, i = 0; i < c->argc; i++) {
		p = arg_next(j, p, &b);
		json_str(js, b.p, b.len);
	}
	buf_free(&b);
	json_end(js);
	json_end(js);
}

/*
 * The filters of a list: a queue (NULL: any) and a state (-1: any), from
 * the query; -1 when one is not a name the broker knows the form of.
 */
static int
filters(const struct req *r, char *queue, size_t qcap, int *state,
    uint64_t *page)
{
	char	v[64];
	int	n;

	*state = -1;
	*page = 0;
	queue[0] = '\0';
	if (qparam(r, "queue", queue, qcap) < 0 ||
	    (queue[0] != '\0' && !proto_name_ok(queue, strlen(queue))))
		return -1;
	if ((n = qparam(r, "state", v, sizeof v)) < 0)
		return -1;
	if (n > 0 && v[0] != '\0' &&
	    (*state = proto_state_lookup(v, strlen(v))) < 0)
		return -1;
	if ((n = qparam(r, "page", v, sizeof v)) < 0 || (n > 0 &&
	    proto_parse_u64(v, strlen(v), 1000000000, page) < 0))
		return -1;
	return 0;
}

/*
 * The jobs and arrays of one page, newest first: calls fn for each and
 * returns whether there are more.  The walk is over the top-level jobs
 * (an array is one), never an array's tasks.
 */
static int
jobs_page(const char *queue, int state, uint64_t page,
    void (*fn)(void *, const struct job *), void *arg)
{
	struct job	*j;
	uint64_t	 skip = page * PAGE_ROWS, n = 0;

	TAILQ_FOREACH_REVERSE(j, &B->jobs, jobhead_, entry) {
		if (queue[0] != '\0' && strcmp(j->opts->q->name, queue) != 0)
			continue;
		if (state >= 0 && state_of(j) != state)
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		if (n++ == PAGE_ROWS)
			return 1;
		fn(arg, j);
	}
	return 0;
}

/*
 * One page of an array's tasks: in state (or, with state -1, the failed
 * first, then the rest by index).  Tasks no worker has taken have no
 * record and are shown as stand-ins, found by position from the cursor
 * (at most PENDING_SCAN_MAX positions a request).  Returns whether there
 * may be more.
 */
static int
tasks_page(struct job *a, int state, uint64_t page,
    void (*fn)(void *, const struct job *), void *arg)
{
	struct array	*arr = a->arr;
	struct job	*t, tmp;
	uint64_t	 skip = page * PAGE_ROWS, n = 0, found, pos, scan;
	int		 pass, st;
	struct simq_id	 id;

	for (pass = state < 0 ? 0 : 1; pass < 2; pass++) {
		found = 0;
		TAILQ_FOREACH(t, &arr->tasks, entry) {
			int want = state >= 0 ? t->state == state :
			    pass == 0 ? t->state == JS_FAILED :
			    t->state != JS_FAILED;
			if (!want)
				continue;
			found++;
			if (skip > 0)
				skip--;
			else if (n++ == PAGE_ROWS)
				return 1;
			else
				fn(arg, t);
			/* Every failed task seen: the rest has none. */
			if (pass == 0 && found == arr->count[JS_FAILED])
				break;
		}
	}
	id.id = a->id;
	for (pos = arr->cursor, scan = 0; pos < arr->ntasks; pos++) {
		/* With no record past the cursor, [cursor, cut) and
		 * [cut, ntasks) are each in one state: a page's start is
		 * found by counting, not by walking. */
		if (skip > 0 && arr->nexc == 0 && arr->nexc_cut == 0 &&
		    (state < 0 || state == (pos < arr->cut ? a->state :
		    arr->cut_state))) {
			uint64_t end = pos < arr->cut ? arr->cut : arr->ntasks;
			uint64_t jump = end - pos < skip ? end - pos : skip;
			pos += jump;
			skip -= jump;
			if (pos >= arr->ntasks)
				break;
		}
		if (++scan > PENDING_SCAN_MAX)
			return 1;
		id.index = (uint32_t)(arr->spec.first + pos * arr->spec.step);
		if (lookup_pending_task(&id, &st) == NULL ||
		    idmap_get(id.id, id.index) != NULL)
			continue;
		if (state >= 0 && st != state) {
			/* [cursor, cut) are in the array's state, the rest in
			 * cut_state: skip to where state may be. */
			if (pos >= arr->cut)
				break;
			pos = arr->cut - 1;
			continue;
		}
		if (skip > 0) {
			skip--;
			continue;
		}
		if (n++ == PAGE_ROWS)
			return 1;
		stand_in(&tmp, a, id.index, st);
		fn(arg, &tmp);
	}
	return 0;
}

static void
json_one(void *arg, const struct job *j)
{
	json_job(arg, j, 0);
}

static void
page_metrics(struct evbuffer *o)
{
	struct journal_stats	 js;
	struct queue		*q;
	struct worker		*w;
	uint32_t		 connected = 0;
	int			 s;

	journal_stats(B->journal, &js);
	evbuffer_add_printf(o, "# HELP simq_jobs Jobs and array tasks kept, "
	    "by queue and state.\n# TYPE simq_jobs gauge\n");
	TAILQ_FOREACH(q, &B->queues, entry)
		for (s = 0; s < JS__COUNT; s++)
			evbuffer_add_printf(o, "simq_jobs{queue=\"%s\","
			    "state=\"%s\"} %llu\n", q->name,
			    proto_state_name(s),
			    (unsigned long long)q->count[s]);
	evbuffer_add_printf(o, "# HELP simq_queue_paused 1 if the queue is "
	    "paused.\n# TYPE simq_queue_paused gauge\n");
	TAILQ_FOREACH(q, &B->queues, entry)
		evbuffer_add_printf(o, "simq_queue_paused{queue=\"%s\"} %d\n",
		    q->name, q->paused);
	TAILQ_FOREACH(w, &workers, entry)
		connected += w->conn != NULL;
	evbuffer_add_printf(o,
	    "# TYPE simq_workers gauge\nsimq_workers %u\n"
	    "# TYPE simq_workers_connected gauge\nsimq_workers_connected %u\n"
	    "# TYPE simq_connections gauge\nsimq_connections %u\n"
	    "# TYPE simq_http_connections gauge\nsimq_http_connections %u\n"
	    "# HELP simq_input_bytes Bytes of requests not yet complete.\n"
	    "# TYPE simq_input_bytes gauge\nsimq_input_bytes %zu\n"
	    "# TYPE simq_submitted_total counter\nsimq_submitted_total %llu\n"
	    "# TYPE simq_finished_total counter\nsimq_finished_total %llu\n"
	    "# TYPE simq_lost_total counter\nsimq_lost_total %llu\n"
	    "# TYPE simq_journal_bytes gauge\nsimq_journal_bytes %llu\n"
	    "# TYPE simq_journal_fsyncs_total counter\n"
	    "simq_journal_fsyncs_total %llu\n"
	    "# TYPE simq_journal_snapshots_total counter\n"
	    "simq_journal_snapshots_total %llu\n",
	    nworkers, connected, nconns, nhttp, input_total,
	    (unsigned long long)B->nsubmitted,
	    (unsigned long long)B->nfinished, (unsigned long long)B->nlost,
	    (unsigned long long)js.bytes, (unsigned long long)js.fsyncs,
	    (unsigned long long)js.snapshots);
}

static void
page_top(struct evbuffer *o, const struct req *r, const char *title)
{
	evbuffer_add_printf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><meta name=\"viewport\" "
	    "content=\"width=device-width\"><title>");
	html_str(o, title);
	evbuffer_add_printf(o, " - simq</title><link rel=\"stylesheet\" "
	    "href=\"/static/dash.css\"></head><body><header>"
	    "<a href=\"/\">simq</a><span class=\"muted\">up since ");
	{
		char t[40];
		iso8601(t, sizeof t, B->started_at);
		html_str(o, t);
	}
	evbuffer_add_printf(o, "</span><span class=\"who\">");
	if (r->auth == A_SESSION)
		evbuffer_add_printf(o, "<form method=\"post\" "
		    "action=\"/logout\"><input type=\"hidden\" name=\"csrf\" "
		    "value=\"%s\"><button>log out</button></form>", r->csrf);
	else if (r->auth == A_OPEN)
		evbuffer_add_printf(o, "no token: open to all who reach "
		    "this port");
	evbuffer_add_printf(o, "</span></header><main>"
	    "<div id=\"msg\" class=\"msg\" role=\"status\"></div>");
}

static void
page_bottom(struct evbuffer *o)
{
	evbuffer_add_printf(o, "</main><script src=\"/static/dash.js\">"
	    "</script></body></html>\n");
}

/* A button that posts one action. */
static void
act_button(struct evbuffer *o, const struct req *r, const char *op,
    const char *key, const char *val, const char *back)
{
	if (r->csrf == NULL)
		return;
	evbuffer_add_printf(o, "<form class=\"act\" method=\"post\" "
	    "action=\"/action\"><input type=\"hidden\" name=\"csrf\" "
	    "value=\"%s\"><input type=\"hidden\" name=\"op\" value=\"%s\">"
	    "<input type=\"hidden\" name=\"%s\" value=\"", r->csrf, op, key);
	html_str(o, val);
	evbuffer_add_printf(o, "\"><input type=\"hidden\" name=\"back\" "
	    "value=\"");
	html_str(o, back);
	evbuffer_add_printf(o, "\"><button name=\"do\" value=\"%s\" "
	    "id=\"%s-", op, op);
	html_str(o, val);
	evbuffer_add_printf(o, "\">%s</button></form> ", op);
}

static void
state_span(struct evbuffer *o, int st)
{
	evbuffer_add_printf(o, "<span class=\"s-%s\">%s</span>",
	    proto_state_name(st), proto_state_name(st));
}

/* A bar of done, failed, canceled and running out of total: an SVG, so
 * the Content-Security-Policy needs no inline style. */
static void
progress(struct evbuffer *o, const uint64_t *count, uint64_t total)
{
	static const int	 shown[] = { JS_DONE, JS_FAILED, JS_CANCELED,
	    JS_RUNNING };
	size_t			 i;
	double			 x = 0, w;

	evbuffer_add_printf(o, "<svg class=\"bar\" viewBox=\"0 0 1000 10\" "
	    "preserveAspectRatio=\"none\"><rect class=\"bg\" width=\"1000\" "
	    "height=\"10\"/>");
	for (i = 0; total > 0 && i < sizeof shown / sizeof shown[0]; i++) {
		if (count[shown[i]] == 0)
			continue;
		w = 1000.0 * (double)count[shown[i]] / (double)total;
		evbuffer_add_printf(o, "<rect class=\"s-%s\" x=\"%.1f\" "
		    "width=\"%.1f\" height=\"10\"><title>%llu %s</title></rect>",
		    proto_state_name(shown[i]), x, w < 2 ? 2 : w,
		    (unsigned long long)count[shown[i]],
		    proto_state_name(shown[i]));
		x += w;
	}
	evbuffer_add_printf(o, "</svg>");
}

struct rows {
	struct evbuffer	*o;
	const struct req *r;
	int		 tasks;
};

static void
job_row(void *arg, const struct job *j)
{
	struct rows	*rw = arg;
	struct evbuffer	*o = rw->o;
	char		 id[32], t[40];
	int		 st = state_of(j);

	proto_format_id(id, j->id, j->index);
	evbuffer_add_printf(o, "<tr><td><a href=\"/jobs/%s\">%s</a></td><td>",
	    id, id);
	state_span(o, st);
	evbuffer_add_printf(o, "</td><td>");
	if (j->kind == JK_ARRAY) {
		progress(o, j->arr->count, j->arr->ntasks);
		evbuffer_add_printf(o, " %llu/%llu done",
		    (unsigned long long)j->arr->count[JS_DONE],
		    (unsigned long long)j->arr->ntasks);
		if (j->arr->count[JS_FAILED])
			evbuffer_add_printf(o, ", <span class=\"s-failed\">"
			    "%llu failed</span>",
			    (unsigned long long)j->arr->count[JS_FAILED]);
	} else if (j->res && (j->res->exit >= 0 || j->res->sig > 0)) {
		if (j->res->sig > 0)
			evbuffer_add_printf(o, "signal %d", j->res->sig);
		else
			evbuffer_add_printf(o, "exit %d", j->res->exit);
	}
	evbuffer_add_printf(o, "</td><td>");
	if (j->res && j->res->reason && job_finished_state(st))
		html_str(o, j->res->reason);
	evbuffer_add_printf(o, "</td>");
	if (!rw->tasks) {
		evbuffer_add_printf(o, "<td>");
		html_str(o, j->opts->q->name);
		evbuffer_add_printf(o, "</td><td>");
		html_str(o, j->opts->name);
		iso8601(t, sizeof t, j->submitted);
		evbuffer_add_printf(o, "</td><td>%s</td>", t);
	} else {
		evbuffer_add_printf(o, "<td class=\"n\">%u</td><td>",
		    j->attempts);
		html_str(o, j->run ? j->run->w->name : j->res ?
		    j->res->worker : "");
		evbuffer_add_printf(o, "</td>");
	}
	evbuffer_add_printf(o, "</tr>\n");
}

/* The links to the pages before and after; base ends in '?' or '&'. */
static void
pager(struct evbuffer *o, const char *base, uint64_t page, int more)
{
	evbuffer_add_printf(o, "<div class=\"pager\">");
	if (page > 0)
		evbuffer_add_printf(o, "<a href=\"%spage=%llu\">newer</a> ",
		    base, (unsigned long long)page - 1);
	evbuffer_add_printf(o, "page %llu", (unsigned long long)page + 1);
	if (more)
		evbuffer_add_printf(o, " <a href=\"%spage=%llu\" "
		    "rel=\"next\">more</a>", base,
		    (unsigned long long)page + 1);
	evbuffer_add_printf(o, "</div>");
}

static void
chart(struct evbuffer *o)
{
	uint64_t	m = B->now / 60000, k;
	uint32_t	max = 1, d, f;
	int		i;
	const int	w = 15, h = 80;

	for (k = 0; k < MINUTES; k++) {
		i = (int)((m - k) % MINUTES);
		if (B->min_no[i] == m - k && B->min_done[i] + B->min_failed[i] >
		    max)
			max = B->min_done[i] + B->min_failed[i];
	}
	evbuffer_add_printf(o, "<svg class=\"chart\" width=\"%d\" "
	    "height=\"%d\" role=\"img\" aria-label=\"jobs finished and failed "
	    "a minute\">", MINUTES * w + 40, h + 14);
	for (k = 0; k < MINUTES; k++) {
		int x = (int)(MINUTES - 1 - k) * w, hd, hf;
		i = (int)((m - k) % MINUTES);
		d = B->min_no[i] == m - k ? B->min_done[i] : 0;
		f = B->min_no[i] == m - k ? B->min_failed[i] : 0;
		hd = (int)((uint64_t)d * h / max);
		hf = (int)((uint64_t)f * h / max);
		evbuffer_add_printf(o, "<g><title>%llu min ago: %u done, %u "
		    "failed</title><rect class=\"d\" x=\"%d\" y=\"%d\" "
		    "width=\"%d\" height=\"%d\"/><rect class=\"f\" x=\"%d\" "
		    "y=\"%d\" width=\"%d\" height=\"%d\"/></g>",
		    (unsigned long long)k, d, f, x, h - hd - hf, w - 1, hd, x,
		    h - hf, w - 1, hf);
	}
	evbuffer_add_printf(o, "<text x=\"0\" y=\"%d\">60 min ago</text>"
	    "<text x=\"%d\" y=\"%d\">now</text><text x=\"%d\" y=\"10\">%u"
	    "</text></svg>", h + 12, MINUTES * w - 20, h + 12, MINUTES * w + 4,
	    max);
}

static void
page_overview(struct evbuffer *o, const struct req *r, const char *fq,
    int fs, uint64_t page)
{
	struct queue	*q;
	struct worker	*w;
	struct job	*j;
	struct rows	 rw = { o, r, 0 };
	struct evbuffer	*base = evbuffer_new();
	char		 id[32], t[40];
	int		 s, more;

	page_top(o, r, "dashboard");
	/* The filters stay out of #live: a refresh keeps a choice made. */
	evbuffer_add_printf(o, "<section><h2>Jobs and arrays</h2>"
	    "<form method=\"get\" action=\"/\">queue <select name=\"queue\">"
	    "<option value=\"\">any</option>");
	TAILQ_FOREACH(q, &B->queues, entry) {
		evbuffer_add_printf(o, "<option%s>", strcmp(fq, q->name) == 0 ?
		    " selected" : "");
		html_str(o, q->name);
		evbuffer_add_printf(o, "</option>");
	}
	evbuffer_add_printf(o, "</select> state <select name=\"state\">"
	    "<option value=\"\">any</option>");
	for (s = 0; s < JS__COUNT; s++)
		evbuffer_add_printf(o, "<option%s>%s</option>", s == fs ?
		    " selected" : "", proto_state_name(s));
	evbuffer_add_printf(o, "</select> <button>show</button></form>"
	    "</section><div id=\"live\"><section><table><tr><th>id</th>"
	    "<th>state</th><th>progress</th><th>reason</th><th>queue</th>"
	    "<th>name</th><th>submitted</th></tr>\n");
	more = jobs_page(fq, fs, page, job_row, &rw);
	evbuffer_add_printf(o, "</table>");
	evbuffer_add_printf(base, "/?queue=");
	url_str(base, fq);
	evbuffer_add_printf(base, "&amp;state=%s&amp;",
	    fs >= 0 ? proto_state_name(fs) : "");
	evbuffer_add(base, "", 1);
	pager(o, (const char *)evbuffer_pullup(base, -1), page, more);
	evbuffer_free(base);
	evbuffer_add_printf(o, "</section><section><h2>Queues</h2><table>"
	    "<tr><th>queue</th>");
	for (s = 0; s < JS__COUNT; s++)
		evbuffer_add_printf(o, "<th class=\"n\">%s</th>",
		    proto_state_name(s));
	evbuffer_add_printf(o, "<th></th></tr>\n");
	TAILQ_FOREACH(q, &B->queues, entry) {
		evbuffer_add_printf(o, "<tr><td>");
		html_str(o, q->name);
		if (q->paused)
			evbuffer_add_printf(o, " <b>(paused)</b>");
		evbuffer_add_printf(o, "</td>");
		for (s = 0; s < JS__COUNT; s++)
			evbuffer_add_printf(o, "<td class=\"n\">%llu</td>",
			    (unsigned long long)q->count[s]);
		evbuffer_add_printf(o, "<td>");
		act_button(o, r, q->paused ? "resume" : "pause", "queue",
		    q->name, "/");
		evbuffer_add_printf(o, "</td></tr>\n");
	}
	evbuffer_add_printf(o, "</table></section><section><h2>Finished a "
	    "minute <span class=\"muted\">(done green, failed red; since the "
	    "broker started)</span></h2>");
	chart(o);
	evbuffer_add_printf(o, "</section><section><h2>Workers</h2><table>"
	    "<tr><th>worker</th><th>host</th><th class=\"n\">slots</th>"
	    "<th>state</th><th>running (since)</th></tr>\n");
	TAILQ_FOREACH(w, &workers, entry) {
		evbuffer_add_printf(o, "<tr><td>");
		html_str(o, w->name);
		evbuffer_add_printf(o, "</td><td>");
		html_str(o, w->host);
		evbuffer_add_printf(o, "</td><td class=\"n\">%u</td><td>%s</td>"
		    "<td>", w->slots, w->conn ? "up" : "away");
		TAILQ_FOREACH(j, &w->jobs, run->wentry) {
			proto_format_id(id, j->id, j->index);
			iso8601(t, sizeof t, j->run->started);
			evbuffer_add_printf(o, "<a href=\"/jobs/%s\">%s</a> "
			    "<span class=\"muted\">(%s)</span><br>", id, id,
			    t);
		}
		evbuffer_add_printf(o, "</td></tr>\n");
	}
	evbuffer_add_printf(o, "</table></section></div>");
	page_bottom(o);
}

static void
kv(struct evbuffer *o, const char *k, const char *v)
{
	if (v == NULL || *v == '\0')
		return;
	evbuffer_add_printf(o, "<tr><th>%s</th><td>", k);
	html_str(o, v);
	evbuffer_add_printf(o, "</td></tr>\n");
}

static void
kv_time(struct evbuffer *o, const char *k, uint64_t ms)
{
	char	t[40];

	if (ms == 0)
		return;
	iso8601(t, sizeof t, ms);
	kv(o, k, t);
}

/* The last TAIL_BYTES of a stream. */
static void
tail(struct evbuffer *o, const char *what, const char *p, size_t len)
{
	size_t	off = len > TAIL_BYTES ? len - TAIL_BYTES : 0;

	evbuffer_add_printf(o, "<h2>%s%s</h2><pre id=\"%s\">", what,
	    off ? " (its end)" : "", what);
	html_strn(o, p + off, len - off);
	evbuffer_add_printf(o, "</pre>");
}

/* A job's files and what was collected from it, when it has any. */
static void
files_rows(struct evbuffer *o, const char *title, const struct jobfiles *f)
{
	uint32_t	i;

	if (f == NULL || f->nfiles == 0)
		return;
	evbuffer_add_printf(o, "<h2>%s</h2><table><tr><th>name</th>"
	    "<th class=\"n\">bytes</th><th>mode</th></tr>\n", title);
	for (i = 0; i < f->nfiles; i++) {
		evbuffer_add_printf(o, "<tr><td><code>");
		html_str(o, f->files[i].name);
		evbuffer_add_printf(o, "</code></td><td class=\"n\">%llu</td>"
		    "<td>%o</td></tr>\n",
		    (unsigned long long)f->files[i].size,
		    (unsigned)f->files[i].mode);
	}
	evbuffer_add_printf(o, "</table>");
}

static void
files_list(struct evbuffer *o, const char *title, char **v, uint32_t n)
{
	uint32_t	i;

	if (n == 0)
		return;
	evbuffer_add_printf(o, "<p>%s: ", title);
	for (i = 0; i < n; i++) {
		evbuffer_add_printf(o, "%s<code>", i ? ", " : "");
		html_str(o, v[i]);
		evbuffer_add_printf(o, "</code>");
	}
	evbuffer_add_printf(o, "</p>");
}

static void
files_section(struct evbuffer *o, const struct job *j)
{
	const struct jobfiles	*f = j->opts->files;
	const struct jobfiles	*g = j->kind != JK_ARRAY && j->res != NULL ?
				    j->res->got : NULL;

	if (f == NULL && g == NULL)
		return;
	evbuffer_add_printf(o, "<section id=\"files\">");
	files_rows(o, "Files", f);
	if (f != NULL)
		files_list(o, "collect", f->pat, f->npat);
	files_rows(o, "Collected", g);
	if (g != NULL) {
		files_list(o, "matched nothing", g->pat, g->npat);
		files_list(o, "not collected", g->err, g->nerr);
	}
	evbuffer_add_printf(o, "</section>");
}

/* The job page's rows for what a job asks for (nothing for one CPU, the
 * default, as STATUS leaves it out) and, while no connected worker could
 * ever run it, why it is stuck (as simq status -l). */
static void
res_rows(struct evbuffer *o, const struct job *j)
{
	const struct jobopts	*op = j->opts;
	char			 v[96], kinds[64], text[512];
	int			 n, queued = j->kind == JK_ARRAY ?
				    j->arr->count[JS_QUEUED] > 0 :
				    j->state == JS_QUEUED;

	if (op->cpus != 1 || op->gpus || op->mem) {
		n = snprintf(v, sizeof v, "cpus %u", op->cpus);
		if (op->gpus)
			n += snprintf(v + n, sizeof v - (size_t)n, ", gpus %u",
			    op->gpus);
		if (op->mem >= 1024 * 1024)
			snprintf(v + n, sizeof v - (size_t)n, ", mem %.1f MiB",
			    (double)op->mem / (1024 * 1024));
		else if (op->mem)
			snprintf(v + n, sizeof v - (size_t)n, ", mem %llu B",
			    (unsigned long long)op->mem);
		kv(o, "resources", v);
	}
	if (queued && fit_why(op, kinds, sizeof kinds, text, sizeof text)) {
		evbuffer_add_printf(o, "<tr><th>stuck</th><td id=\"stuck\" "
		    "class=\"s-failed\">");
		html_str(o, text);
		evbuffer_add_printf(o, " (short: ");
		html_str(o, kinds);
		evbuffer_add_printf(o, ")</td></tr>");
	}
}

static void
page_job(struct evbuffer *o, const struct req *r, struct job *j, int fs,
    uint64_t page)
{
	const struct result	*res = j->res;
	const struct cmd	*c = cmd_of(j);
	const char		*p;
	struct buf		 b;
	char			 id[32], v[64];
	uint32_t		 i;
	int			 st = state_of(j);

	proto_format_id(id, j->id, j->index);
	snprintf(v, sizeof v, "%s %s", j->kind == JK_ARRAY ? "array" :
	    j->kind == JK_TASK ? "task" : "job", id);
	page_top(o, r, v);
	evbuffer_add_printf(o, "<div id=\"live\"><section><h1>");
	html_str(o, v);
	evbuffer_add_printf(o, " ");
	state_span(o, st);
	evbuffer_add_printf(o, "</h1><div>");
	snprintf(v, sizeof v, "/jobs/%s", id);
	if (!job_finished_state(st))
		act_button(o, r, "cancel", "id", id, v);
	if (st == JS_FAILED || st == JS_CANCELED ||
	    (j->kind == JK_ARRAY && (j->arr->count[JS_FAILED] ||
	    j->arr->count[JS_CANCELED])))
		act_button(o, r, "retry", "id", id, v);
	evbuffer_add_printf(o, "</div><table class=\"kv\">\n");
	if (j->kind == JK_TASK) {
		proto_format_id(v, j->id, SIMQ_NOINDEX);
		evbuffer_add_printf(o, "<tr><th>array</th><td><a href=\"/jobs/"
		    "%s\">%s</a></td></tr>", v, v);
	}
	kv(o, "name", j->opts->name);
	kv(o, "queue", j->opts->q->name);
	evbuffer_add_printf(o, "<tr><th>command</th><td><code>");
	buf_init(&b);
	for (p = c->data, i = 0; i < c->argc; i++) {
		p = arg_next(j, p, &b);
		html_strn(o, (const char *)b.p, b.len);
		evbuffer_add_printf(o, " ");
	}
	buf_free(&b);
	evbuffer_add_printf(o, "</code></td></tr>\n");
	if (j->kind != JK_ARRAY) {
		snprintf(v, sizeof v, "%u of %u", j->attempts,
		    j->opts->retries + 1);
		kv(o, "attempts", v);
	}
	res_rows(o, j);
	kv_time(o, "submitted", j->submitted);
	kv_time(o, "started", started_of(j));
	kv_time(o, "finished", finished_of(j));
	if (runtime_of(j) > 0) {
		snprintf(v, sizeof v, "%.1f s", (double)runtime_of(j) / 1000);
		kv(o, "runtime", v);
	}
	kv(o, "worker", j->run ? j->run->w->name : res ? res->worker : NULL);
	kv(o, "host", j->run ? j->run->w->host : res ? res->host : NULL);
	if (res != NULL && j->kind != JK_ARRAY) {
		if (res->sig > 0)
			snprintf(v, sizeof v, "killed by signal %d%s", res->sig,
			    res->timedout ? " (timed out)" : "");
		else if (res->exit >= 0)
			snprintf(v, sizeof v, "%d", res->exit);
		else
			v[0] = '\0';
		kv(o, "exit status", v);
	}
	if (res != NULL && res->reason && *res->reason) {
		evbuffer_add_printf(o, "<tr><th>reason</th><td id=\"reason\" "
		    "class=\"s-failed\">");
		html_str(o, res->reason);
		evbuffer_add_printf(o, "</td></tr>");
	}
	if (res != NULL && res->maxrss) {
		snprintf(v, sizeof v, "%.1f MiB", (double)res->maxrss / 1024);
		kv(o, "peak memory", v);
	}
	if (res != NULL && (res->utime || res->stime)) {
		snprintf(v, sizeof v, "%.2f s", (double)(res->utime +
		    res->stime) / 1e6);
		kv(o, "CPU time", v);
	}
	kv(o, "output file", res ? res->outpath : NULL);
	if (j->state == JS_WAITING && j->due > B->now)
		kv_time(o, "delayed until", j->due);
	evbuffer_add_printf(o, "</table></section>");
	files_section(o, j);
	if (j->kind == JK_ARRAY) {
		struct rows rw = { o, r, 1 };
		int s, more;
		evbuffer_add_printf(o, "<section><h2>Tasks</h2>");
		progress(o, j->arr->count, j->arr->ntasks);
		evbuffer_add_printf(o, " ");
		for (s = 0; s < JS__COUNT; s++)
			if (j->arr->count[s])
				evbuffer_add_printf(o, "<a href=\"/jobs/%s?"
				    "state=%s\">%llu %s</a> ", id,
				    proto_state_name(s),
				    (unsigned long long)j->arr->count[s],
				    proto_state_name(s));
		evbuffer_add_printf(o, "<table><tr><th>task</th><th>state"
		    "</th><th>exit</th><th>reason</th><th class=\"n\">"
		    "attempts</th><th>worker</th></tr>\n");
		more = tasks_page(j, fs, page, job_row, &rw);
		evbuffer_add_printf(o, "</table>");
		snprintf(v, sizeof v, "/jobs/%s?state=%s&amp;", id,
		    fs >= 0 ? proto_state_name(fs) : "");
		pager(o, v, page, more);
		evbuffer_add_printf(o, "</section>");
	} else if (res != NULL && res->data != NULL) {
		evbuffer_add_printf(o, "<section>");
		tail(o, "stdout", res->data, res->outlen);
		tail(o, "stderr", res->data + res->outlen, res->errlen);
		if (res->reslen)
			tail(o, "result", res->data + res->outlen +
			    res->errlen, res->reslen);
		evbuffer_add_printf(o, "</section>");
	}
	evbuffer_add_printf(o, "</div>");
	page_bottom(o);
}

static void
page_login(struct evbuffer *o, const struct req *r, const char *why)
{
	page_top(o, r, "log in");
	evbuffer_add_printf(o, "<section><h1>Log in</h1><p>This broker "
	    "wants its token (the contents of its --token-file).%s%s</p>"
	    "<form method=\"post\" action=\"/login\"><input type=\"password\" "
	    "name=\"token\" id=\"token\" autocomplete=\"current-password\" "
	    "size=\"40\" autofocus> <button id=\"login\">log in</button>"
	    "</form><p class=\"muted\">Scripts send \"Authorization: Bearer "
	    "TOKEN\" instead.</p></section>", why ? " " : "", why ? why : "");
	page_bottom(o);
}

/* Writes the response and closes after it. */
static void
reply(struct conn *c, int code, const char *reason, const char *type,
    struct evbuffer *body, int head_only, const char *extra)
{
	struct evbuffer	*o = conn_outbuf(c);

	evbuffer_add_printf(o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
	    "Content-Security-Policy: default-src 'self'; "
	    "frame-ancestors 'none'\r\nReferrer-Policy: same-origin\r\n"
	    "Connection: close\r\n%s\r\n", code, reason, type,
	    evbuffer_get_length(body), extra ? extra : "");
	if (!head_only)
		evbuffer_add_buffer(o, body);
	conn_reply_done(c);
	conn_close(c);
}

static void
reply_text(struct conn *c, int code, const char *reason, const char *text)
{
	struct evbuffer	*o = evbuffer_new();

	if (o == NULL)
		fatal("http: out of memory");
	evbuffer_add_printf(o, "%s\n", text);
	reply(c, code, reason, "text/plain; charset=utf-8", o, 0, NULL);
	evbuffer_free(o);
}

/* The head did not arrive in time. */
void
http_timeout(struct conn *c)
{
	reply_text(c, 408, "Request Timeout", "the request took too long");
}

/* Whether the client wants JSON (dash.js's actions, scripts). */
static int
wants_json(const struct req *r)
{
	size_t		 n;
	const char	*h = header(r->head, r->hlen, "Accept", &n);

	return h != NULL && memmem(h, n, "application/json", 16) != NULL;
}

/* An answer to a POST: JSON {"ok":..,"message":..} or text. */
static void
reply_msg(struct req *r, int code, const char *reason, const char *msg)
{
	struct evbuffer	*o = evbuffer_new();
	struct buf	 b;
	struct json	 js;

	if (o == NULL)
		fatal("http: out of memory");
	if (wants_json(r)) {
		buf_init(&b);
		json_init(&js, &b, 0);
		json_object(&js);
		json_key(&js, "ok");
		json_bool(&js, code < 300);
		json_key(&js, "message");
		json_cstr(&js, msg);
		json_end(&js);
		json_out(o, &js, &b);
		reply(r->c, code, reason, "application/json", o, 0, NULL);
	} else {
		evbuffer_add_printf(o, "%s\n", msg);
		reply(r->c, code, reason, "text/plain; charset=utf-8", o, 0,
		    NULL);
	}
	evbuffer_free(o);
}

static struct session *
session_find(const char *sid, size_t n)
{
	int	i;

	if (n != 32)
		return NULL;
	for (i = 0; i < SESSIONS_MAX; i++)
		if (sessions[i].sid[0] != '\0' &&
		    token_equal(sid, n, sessions[i].sid, 32))
			return &sessions[i];
	return NULL;
}

static struct session *
session_new(void)
{
	struct session	*s = &sessions[0];
	int		 i;

	for (i = 1; i < SESSIONS_MAX; i++)
		if (sessions[i].used < s->used)
			s = &sessions[i];
	random_hex(s->sid, 16);
	random_hex(s->csrf, 16);
	s->used = B->now;
	return s;
}

/*
 * Whether the Host a browser sent is an address or "localhost", not some
 * other name: without a token, a name could be one an attacker's DNS
 * points at 127.0.0.1 after the page loaded (DNS rebinding), making its
 * page same-origin with the dashboard.
 */
static int
host_is_address(const struct req *r)
{
	const char	*h, *e;
	char		 name[64];
	unsigned char	 a[16];
	size_t		 n;

	if ((h = header(r->head, r->hlen, "Host", &n)) == NULL)
		return 1;	/* HTTP/1.0 without one: not a browser */
	if (n > 0 && h[0] == '[') {
		if ((e = memchr(h, ']', n)) == NULL)
			return 0;
		h++;
	} else if ((e = memrchr(h, ':', n)) == NULL)
		e = h + n;
	if ((size_t)(e - h) >= sizeof name)
		return 0;
	memcpy(name, h, (size_t)(e - h));
	name[e - h] = '\0';
	return strcasecmp(name, "localhost") == 0 ||
	    inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/* Who sends the request: sets r->auth, r->s and r->csrf. */
static void
authenticate(struct req *r)
{
	const char	 bearer[] = "Bearer ", *h, *p, *e;
	size_t		 n;

	r->s = NULL;
	r->csrf = NULL;
	if (B->cfg.token == NULL) {
		if (open_csrf[0] == '\0')
			random_hex(open_csrf, 16);
		r->auth = A_OPEN;
		r->csrf = open_csrf;
		return;
	}
	if ((h = header(r->head, r->hlen, "Authorization", &n)) != NULL) {
		r->auth = n > sizeof bearer - 1 &&
		    strncmp(h, bearer, sizeof bearer - 1) == 0 &&
		    token_equal(h + sizeof bearer - 1, n - (sizeof bearer - 1),
		    B->cfg.token, strlen(B->cfg.token)) ? A_BEARER : A_BAD;
		return;
	}
	r->auth = A_NONE;
	if ((h = header(r->head, r->hlen, "Cookie", &n)) == NULL)
		return;
	for (p = h; p < h + n; p = e + 1) {
		while (p < h + n && (*p == ' ' || *p == ';'))
			p++;
		if ((e = memchr(p, ';', (size_t)(h + n - p))) == NULL)
			e = h + n;
		if ((size_t)(e - p) > 13 && memcmp(p, "simq_session=", 13) == 0 &&
		    (r->s = session_find(p + 13, (size_t)(e - p - 13))) != NULL) {
			r->auth = A_SESSION;
			r->csrf = r->s->csrf;
			r->s->used = B->now;
			return;
		}
	}
}

/*
 * Whether a POST may be a forgery from another site: the browser says so
 * (Sec-Fetch-Site), or its Origin is not this Host; a session's or an
 * open broker's form must also carry its CSRF token.
 */
static const char *
forged(const struct req *r)
{
	const char	*h, *host;
	size_t		 n, hn;
	char		 v[64];

	if ((h = header(r->head, r->hlen, "Sec-Fetch-Site", &n)) != NULL &&
	    !(n == 11 && memcmp(h, "same-origin", 11) == 0) &&
	    !(n == 4 && memcmp(h, "none", 4) == 0))
		return "a cross-site request (Sec-Fetch-Site)";
	if ((h = header(r->head, r->hlen, "Origin", &n)) != NULL) {
		host = header(r->head, r->hlen, "Host", &hn);
		if (host == NULL || !((n == hn + 7 &&
		    memcmp(h, "http://", 7) == 0 && memcmp(h + 7, host, hn) ==
		    0) || (n == hn + 8 && memcmp(h, "https://", 8) == 0 &&
		    memcmp(h + 8, host, hn) == 0)))
			return "a cross-site request (Origin is not this host)";
	}
	if (r->auth == A_BEARER || strcmp(r->path, "/login") == 0)
		return NULL;
	if (r->csrf == NULL || param(r->body, r->blen, "csrf", v, sizeof v) <=
	    0 || !token_equal(v, strlen(v), r->csrf, strlen(r->csrf)))
		return "the form's CSRF token is missing or stale: reload the "
		    "page";
	return NULL;
}

/* A local path to go back to after an action, else dflt. */
static const char *
back_to(const struct req *r, char *buf, size_t cap, const char *dflt)
{
	if (param(r->body, r->blen, "back", buf, cap) > 0 && buf[0] == '/' &&
	    buf[1] != '/' && buf[1] != '\\' && strpbrk(buf, "\r\n") == NULL)
		return buf;
	return dflt;
}

static void
redirect(struct req *r, const char *to, const char *cookie)
{
	struct evbuffer	*o = evbuffer_new();
	char		 extra[512];

	if (o == NULL)
		fatal("http: out of memory");
	snprintf(extra, sizeof extra, "Location: %s\r\n%s", to,
	    cookie ? cookie : "");
	evbuffer_add_printf(o, "see %s\n", to);
	reply(r->c, 303, "See Other", "text/plain", o, 0, extra);
	evbuffer_free(o);
}

/* POST /action: as CANCEL, RETRY, PAUSE or RESUME of one id or queue. */
static void
do_action(struct req *r)
{
	char		 op[16], v[128], msg[256], back[256];
	struct simq_id	 id;
	struct job	*j, *a;
	struct queue	*q;
	uint64_t	 n = 0, nd = 0;
	int		 st, cancel;

	if (param(r->body, r->blen, "op", op, sizeof op) <= 0) {
		reply_msg(r, 400, "Bad Request", "say op=cancel, retry, pause "
		    "or resume");
		return;
	}
	if (strcmp(op, "pause") == 0 || strcmp(op, "resume") == 0) {
		if (param(r->body, r->blen, "queue", v, sizeof v) <= 0 ||
		    (q = queue_get(v, strlen(v), 0)) == NULL) {
			reply_msg(r, 404, "Not Found", "no such queue; nothing "
			    "was changed");
			return;
		}
		queue_pause(q, op[0] == 'p');
		snprintf(msg, sizeof msg, "queue %s %s", q->name,
		    op[0] == 'p' ? "paused" : "resumed");
		log_info("%s: http: %s", r->c->peer, msg);
		goto done;
	}
	if (strcmp(op, "cancel") != 0 && strcmp(op, "retry") != 0) {
		reply_msg(r, 400, "Bad Request", "say op=cancel, retry, pause "
		    "or resume");
		return;
	}
	cancel = op[0] == 'c';
	if (param(r->body, r->blen, "id", v, sizeof v) <= 0 ||
	    proto_parse_id(v, strlen(v), &id) < 0) {
		reply_msg(r, 400, "Bad Request", "bad job id; nothing was "
		    "changed");
		return;
	}
	if ((j = lookup_id(&id)) == NULL) {
		if ((a = lookup_pending_task(&id, &st)) == NULL) {
			reply_msg(r, 404, "Not Found", "no such job; nothing "
			    "was changed");
			return;
		}
		if (cancel != job_finished_state(st)) {
			if (B->njobs + 1 > B->cfg.max_jobs) {
				reply_msg(r, 503, "Service Unavailable",
				    "the broker keeps as many jobs as "
				    "--max-jobs allows; nothing was changed");
				return;
			}
			j = array_task(a, id.index);
		}
	}
	if (j != NULL)
		n = cancel ? job_cancel(j, "canceled") : job_retry(j, &nd);
	timers_arm();
	snprintf(msg, sizeof msg, "%s %s: %llu changed", op, v,
	    (unsigned long long)n);
	if (nd)
		snprintf(msg + strlen(msg), sizeof msg - strlen(msg),
		    ", %llu dependents re-queued", (unsigned long long)nd);
	log_info("%s: http: %s", r->c->peer, msg);
done:
	if (wants_json(r))
		reply_msg(r, 200, "OK", msg);
	else
		redirect(r, back_to(r, back, sizeof back, "/"), NULL);
}

static void
do_login(struct req *r)
{
	struct evbuffer	*o;
	struct session	*s;
	const char	*h;
	char		 tok[512], cookie[256];
	size_t		 n;
	int		 secure;

	if (B->cfg.token == NULL) {
		redirect(r, "/", NULL);
		return;
	}
	if (param(r->body, r->blen, "token", tok, sizeof tok) <= 0 ||
	    !token_equal(tok, strlen(tok), B->cfg.token,
	    strlen(B->cfg.token))) {
		o = evbuffer_new();
		if (o == NULL)
			fatal("http: out of memory");
		r->auth = A_NONE;
		r->csrf = NULL;
		page_login(o, r, "<b>That is not the token.</b>");
		reply(r->c, 401, "Unauthorized", "text/html; charset=utf-8", o,
		    0, NULL);
		evbuffer_free(o);
		conn_auth_failed(r->c);
		return;
	}
	s = session_new();
	h = header(r->head, r->hlen, "X-Forwarded-Proto", &n);
	secure = h != NULL && n == 5 && strncasecmp(h, "https", 5) == 0;
	snprintf(cookie, sizeof cookie, "Set-Cookie: simq_session=%s; Path=/; "
	    "HttpOnly; SameSite=Strict%s\r\n", s->sid, secure ? "; Secure" :
	    "");
	log_info("%s: http: logged in", r->c->peer);
	redirect(r, "/", cookie);
}

static void
do_logout(struct req *r)
{
	if (r->s != NULL)
		memset(r->s, 0, sizeof *r->s);
	redirect(r, "/login", "Set-Cookie: simq_session=; Path=/; HttpOnly; "
	    "SameSite=Strict; Max-Age=0\r\n");
}

static void
serve_get(struct req *r, struct evbuffer *o)
{
	struct job	 tmp, *j;
	const char	*sub = NULL, *ids;
	char		 fq[128];
	size_t		 idlen;
	uint64_t	 page;
	int		 fs, more;
	struct buf	 b;
	struct json	 js;

	if (filters(r, fq, sizeof fq, &fs, &page) < 0) {
		reply_text(r->c, 400, "Bad Request", "bad query: queue=NAME, "
		    "state=STATE, page=N");
		return;
	}
	if (strcmp(r->path, "/") == 0) {
		page_overview(o, r, fq, fs, page);
		reply(r->c, 200, "OK", "text/html; charset=utf-8", o,
		    r->head_only, NULL);
		return;
	}
	if (strcmp(r->path, "/api/status") == 0) {
		page_status(o);
		reply(r->c, 200, "OK", "application/json", o, r->head_only,
		    NULL);
		return;
	}
	if (strcmp(r->path, "/metrics") == 0) {
		page_metrics(o);
		reply(r->c, 200, "OK", "text/plain; version=0.0.4", o,
		    r->head_only, NULL);
		return;
	}
	if (strcmp(r->path, "/api/jobs") == 0) {
		buf_init(&b);
		json_init(&js, &b, 0);
		json_object(&js);
		json_key(&js, "jobs");
		json_array(&js);
		more = jobs_page(fq, fs, page, json_one, &js);
		json_end(&js);
		json_key(&js, "page");
		json_uint(&js, page);
		json_key(&js, "more");
		json_bool(&js, more);
		json_end(&js);
		json_out(o, &js, &b);
		reply(r->c, 200, "OK", "application/json", o, r->head_only,
		    NULL);
		return;
	}
	if (strncmp(r->path, "/api/jobs/", 10) == 0)
		ids = r->path + 10;
	else if (strncmp(r->path, "/jobs/", 6) == 0)
		ids = r->path + 6;
	else
		goto notfound;
	if ((sub = strchr(ids, '/')) != NULL) {
		if (ids[-2] != 's' || ids != r->path + 10 ||
		    strcmp(sub, "/tasks") != 0)
			goto notfound;
		idlen = (size_t)(sub - ids);
	} else
		idlen = strlen(ids);
	if ((j = find_job(ids, idlen, &tmp)) == NULL) {
		evbuffer_add_printf(o, "no job %.*s\n", (int)(idlen > 40 ? 40 :
		    idlen), ids);
		reply(r->c, 404, "Not Found", "text/plain; charset=utf-8", o,
		    r->head_only, NULL);
		return;
	}
	if (ids == r->path + 6) {
		page_job(o, r, j, fs, page);
		reply(r->c, 200, "OK", "text/html; charset=utf-8", o,
		    r->head_only, NULL);
		return;
	}
	if (sub != NULL && j->kind != JK_ARRAY) {
		evbuffer_add_printf(o, "job %.*s is not an array\n", (int)idlen,
		    ids);
		reply(r->c, 404, "Not Found", "text/plain; charset=utf-8", o,
		    r->head_only, NULL);
		return;
	}
	buf_init(&b);
	json_init(&js, &b, 0);
	if (sub != NULL) {
		json_object(&js);
		json_key(&js, "tasks");
		json_array(&js);
		more = tasks_page(j, fs, page, json_one, &js);
		json_end(&js);
		json_key(&js, "page");
		json_uint(&js, page);
		json_key(&js, "more");
		json_bool(&js, more);
		json_end(&js);
	} else
		json_job(&js, j, 1);
	json_out(o, &js, &b);
	reply(r->c, 200, "OK", "application/json", o, r->head_only, NULL);
	return;
notfound:
	evbuffer_add_printf(o, "not found: try /, /jobs/ID, /api/status, "
	    "/api/jobs, /api/jobs/ID, /api/jobs/ID/tasks or /metrics\n");
	reply(r->c, 404, "Not Found", "text/plain; charset=utf-8", o,
	    r->head_only, NULL);
}

/* Answers the request whose head is head[0..hlen), body[0..blen). */
static void
serve(struct conn *c, const char *head, size_t hlen, const char *body,
    size_t blen)
{
	struct evbuffer	*o = evbuffer_new();
	struct req	 r;
	const char	*sp1, *sp2, *eol, *qm, *why;
	size_t		 mlen, plen, tlen;
	int		 html, login;

	if (o == NULL)
		fatal("http: out of memory");
	memset(&r, 0, sizeof r);
	r.c = c;
	r.head = head;
	r.hlen = hlen;
	r.body = body;
	r.blen = blen;
	eol = memchr(head, '\n', hlen);
	sp1 = memchr(head, ' ', (size_t)(eol - head));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (sp1 == NULL || sp2 == NULL || (size_t)(eol - sp2) < 9 ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		reply_text(c, 400, "Bad Request", "bad request");
		goto out;
	}
	mlen = (size_t)(sp1 - head);
	r.head_only = mlen == 4 && memcmp(head, "HEAD", 4) == 0;
	r.post = mlen == 4 && memcmp(head, "POST", 4) == 0;
	tlen = (size_t)(sp2 - sp1 - 1);
	plen = (qm = memchr(sp1 + 1, '?', tlen)) ? (size_t)(qm - sp1 - 1) :
	    tlen;
	if (plen == 0 || sp1[1] != '/' || plen >= sizeof r.path) {
		reply_text(c, plen >= sizeof r.path ? 414 : 400, plen >=
		    sizeof r.path ? "URI Too Long" : "Bad Request",
		    "bad request path");
		goto out;
	}
	if (qm != NULL && tlen - plen - 1 >= sizeof r.query) {
		reply_text(c, 414, "URI Too Long", "the query string is too "
		    "long");
		goto out;
	}
	memcpy(r.path, sp1 + 1, plen);
	r.path[plen] = '\0';
	if (qm != NULL) {
		memcpy(r.query, qm + 1, tlen - plen - 1);
		r.query[tlen - plen - 1] = '\0';
	}
	if (!(mlen == 3 && memcmp(head, "GET", 3) == 0) && !r.head_only &&
	    !r.post) {
		evbuffer_add_printf(o, "GET, HEAD or POST only\n");
		reply(c, 405, "Method Not Allowed", "text/plain", o, 0,
		    "Allow: GET, HEAD, POST\r\n");
		goto out;
	}
	/* The assets and the way in need no token. */
	if (!r.post && strcmp(r.path, "/static/dash.css") == 0) {
		evbuffer_add(o, dash_css, strlen(dash_css));
		reply(c, 200, "OK", "text/css; charset=utf-8", o, r.head_only,
		    NULL);
		goto out;
	}
	if (!r.post && strcmp(r.path, "/static/dash.js") == 0) {
		evbuffer_add(o, dash_js, strlen(dash_js));
		reply(c, 200, "OK", "text/javascript; charset=utf-8", o,
		    r.head_only, NULL);
		goto out;
	}
	authenticate(&r);
	login = strcmp(r.path, "/login") == 0;
	if (r.auth == A_OPEN && !host_is_address(&r)) {
		reply_text(c, 421, "Misdirected Request", "without a token "
		    "(--token-file) the dashboard answers only to an address "
		    "or localhost, not to a name");
		goto out;
	}
	if (r.auth == A_BAD || (r.auth == A_NONE && !login)) {
		html = !r.post && strncmp(r.path, "/api/", 5) != 0 &&
		    strcmp(r.path, "/metrics") != 0;
		if (html)
			page_login(o, &r, NULL);
		else
			evbuffer_add_printf(o, "a token is needed: send "
			    "\"Authorization: Bearer TOKEN\", or log in at "
			    "/login\n");
		reply(c, 401, "Unauthorized", html ? "text/html; charset=utf-8"
		    : "text/plain", o, r.head_only,
		    "WWW-Authenticate: Bearer\r\n");
		/* A page's login form is not a guess; everything else
		 * without the token is, as before the dashboard. */
		if (r.auth == A_BAD || !html)
			conn_auth_failed(c);
		goto out;
	}
	if (r.post && (why = forged(&r)) != NULL) {
		reply_msg(&r, 403, "Forbidden", why);
		goto out;
	}
	if (login) {
		if (r.post)
			do_login(&r);
		else {
			page_login(o, &r, NULL);
			reply(c, 200, "OK", "text/html; charset=utf-8", o,
			    r.head_only, NULL);
		}
		goto out;
	}
	if (!r.post)
		serve_get(&r, o);
	else if (strcmp(r.path, "/action") == 0)
		do_action(&r);
	else if (strcmp(r.path, "/logout") == 0)
		do_logout(&r);
	else
		reply_msg(&r, 404, "Not Found", "POST /action, /login or "
		    "/logout");
out:
	evbuffer_free(o);
}

/* New bytes on an HTTP connection: answer once the head (and a POST's
 * body) is in. */
void
http_input(struct conn *c)
{
	size_t		 len = evbuffer_get_length(c->in), n, hlen, cl = 0;
	const char	*p, *end, *q = NULL, *h;
	char		 num[24];

	n = len < HTTP_HEADERS_MAX + HTTP_BODY_MAX ? len :
	    HTTP_HEADERS_MAX + HTTP_BODY_MAX;
	if (n == 0)
		return;
	p = (const char *)evbuffer_pullup(c->in, (ssize_t)n);
	/* The head ends at an empty line (CR LF or LF alone). */
	for (end = p; (end = memchr(end, '\n', n - (size_t)(end - p))) !=
	    NULL; end++) {
		q = end + 1;
		if (q < p + n && *q == '\n') {
			q += 1;
			break;
		}
		if (q + 1 < p + n && q[0] == '\r' && q[1] == '\n') {
			q += 2;
			break;
		}
	}
	if (end == NULL || (size_t)(q - p) > HTTP_HEADERS_MAX) {
		if (end != NULL || len >= HTTP_HEADERS_MAX)
			reply_text(c, 431, "Request Header Fields Too Large",
			    "the request's head is too long");
		else if (c->eof)
			conn_close(c);
		return;
	}
	hlen = (size_t)(q - p);
	if (n >= 5 && memcmp(p, "POST ", 5) == 0) {
		if (header(p, hlen, "Transfer-Encoding", &cl) != NULL) {
			reply_text(c, 501, "Not Implemented", "send the body "
			    "with a Content-Length");
			return;
		}
		if ((h = header(p, hlen, "Content-Length", &cl)) == NULL) {
			reply_text(c, 411, "Length Required", "a POST needs a "
			    "Content-Length");
			return;
		}
		if (cl == 0 || cl >= sizeof num) {
			cl = cl == 0 ? 0 : HTTP_BODY_MAX + 1;
		} else {
			uint64_t v;
			memcpy(num, h, cl);
			num[cl] = '\0';
			if (proto_parse_u64(num, cl, UINT64_MAX, &v) < 0) {
				reply_text(c, 400, "Bad Request", "bad "
				    "Content-Length");
				return;
			}
			cl = v > HTTP_BODY_MAX ? HTTP_BODY_MAX + 1 : (size_t)v;
		}
		if (cl > HTTP_BODY_MAX) {
			reply_text(c, 413, "Content Too Large", "a POST's body "
			    "is at most 4096 bytes");
			return;
		}
		if (n < hlen + cl) {
			if (c->eof)
				conn_close(c);
			return;		/* the rest of the body is coming */
		}
	}
	serve(c, p, hlen, p + hlen, cl);
}

/* Serves the views on addr:port.  Returns 0, or -1 (logged). */
int
http_listen(const char *addr, int port)
{
	if (net_listen(addr, port, CONN_HTTP) < 0) {
		log_warn("http: cannot listen on %s port %d", addr, port);
		return -1;
	}
	log_info("http: status on http://%s:%d/", addr, port);
	return 0;
}
