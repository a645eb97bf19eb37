/*
 * http.c: a read-only view of the broker over HTTP (--http PORT).
 *
 *	/		a status page for a browser: queues and workers
 *	/api/status	the same as JSON, shaped like `simq status --json`
 *	/api/jobs/ID	one job, task or array as JSON
 *	/metrics	counters and gauges in the Prometheus text format
 *
 * It changes nothing, so it never touches the journal and needs no
 * commit: a request is answered within the loop pass that reads it.  With
 * a token (--token-file), every request must carry it as
 * "Authorization: Bearer TOKEN".
 *
 * The connections are net.c's, of kind CONN_HTTP: they draw on the same
 * descriptor budget as the protocol's (a quarter of it at most), their
 * head must arrive within ten seconds, and a wrong token is slowed down
 * like a wrong HELLO.  One request per connection (HTTP/1.1 with
 * "Connection: close"): a GET or HEAD whose head fits HTTP_HEADERS_MAX;
 * a body is never read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "json.h"
#include "log.h"

/* Requests are small GETs: their headers fit in this, and no body. */
#define HTTP_HEADERS_MAX	16384

/* Writes s for an HTML page. */
static void
html_str(struct evbuffer *o, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '<': evbuffer_add_printf(o, "&lt;"); break;
		case '>': evbuffer_add_printf(o, "&gt;"); break;
		case '&': evbuffer_add_printf(o, "&amp;"); break;
		case '"': evbuffer_add_printf(o, "&quot;"); break;
		default: evbuffer_add(o, s, 1);
		}
	}
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
	json_end(&js);
	json_out(o, &js, &b);
}

/* One job, task or array, with the fields `simq status --json` has. */
static int
page_job(struct evbuffer *o, const char *ids)
{
	struct simq_id	 id;
	struct job	*j;
	struct result	*r;
	struct buf	 b;
	struct json	 js;
	char		 idbuf[32];
	int		 st;

	if (proto_parse_id(ids, strlen(ids), &id) < 0)
		return -1;
	if ((j = idmap_get(id.id, id.index)) == NULL) {
		/* A task no worker has taken yet has no record: it is in its
		 * array's state, as STATUS says. */
		if ((j = lookup_pending_task(&id, &st)) == NULL)
			return -1;
		proto_format_id(idbuf, id.id, id.index);
		buf_init(&b);
		json_init(&js, &b, 0);
		json_object(&js);
		json_key(&js, "id");
		json_cstr(&js, idbuf);
		json_key(&js, "kind");
		json_cstr(&js, "task");
		json_key(&js, "state");
		json_cstr(&js, proto_state_name(st));
		json_key(&js, "queue");
		json_cstr(&js, j->opts->q->name);
		json_key(&js, "priority");
		json_int(&js, j->opts->prio);
		json_key(&js, "attempts");
		json_uint(&js, 0);
		json_key(&js, "exit_code");
		json_null(&js);
		json_key(&js, "signal");
		json_null(&js);
		json_key(&js, "name");
		json_cstr(&js, j->opts->name);
		json_key(&js, "reason");
		json_null(&js);
		json_key(&js, "worker");
		json_null(&js);
		json_end(&js);
		json_out(o, &js, &b);
		return 0;
	}
	r = j->res;
	st = j->kind == JK_ARRAY ? job_array_state(j) : j->state;
	proto_format_id(idbuf, j->id, j->index);
	buf_init(&b);
	json_init(&js, &b, 0);
	json_object(&js);
	json_key(&js, "id");
	json_cstr(&js, idbuf);
	json_key(&js, "kind");
	json_cstr(&js, j->kind == JK_ARRAY ? "array" : j->kind == JK_TASK ?
	    "task" : "job");
	json_key(&js, "state");
	json_cstr(&js, proto_state_name(st));
	json_key(&js, "queue");
	json_cstr(&js, j->opts->q->name);
	json_key(&js, "priority");
	json_int(&js, j->opts->prio);
	json_key(&js, "attempts");
	json_uint(&js, j->attempts);
	json_key(&js, "exit_code");
	if (r != NULL && r->exit >= 0 && j->kind != JK_ARRAY)
		json_int(&js, r->exit);
	else
		json_null(&js);
	json_key(&js, "signal");
	if (r != NULL && r->sig > 0)
		json_int(&js, r->sig);
	else
		json_null(&js);
	json_key(&js, "name");
	json_cstr(&js, j->opts->name);
	json_key(&js, "reason");
	json_cstr(&js, r ? r->reason : NULL);
	json_key(&js, "worker");
	json_cstr(&js, j->run ? j->run->w->name : r ? r->worker : NULL);
	if (j->kind == JK_ARRAY) {
		json_key(&js, "tasks");
		json_uint(&js, j->arr->ntasks);
		json_key(&js, "counts");
		json_counts(&js, j->arr->count);
	}
	json_end(&js);
	json_out(o, &js, &b);
	return 0;
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
page_html(struct evbuffer *o)
{
	struct queue	*q;
	struct worker	*w;
	struct job	*j;
	char		 id[32];
	int		 s;

	evbuffer_add_printf(o, "<!DOCTYPE html>\n<html><head>"
	    "<meta charset=\"utf-8\"><meta http-equiv=\"refresh\" "
	    "content=\"5\"><title>simq</title><style>"
	    "body{font-family:sans-serif;margin:2em}"
	    "table{border-collapse:collapse;margin-bottom:2em}"
	    "td,th{padding:.2em .8em;border-bottom:1px solid #ddd;"
	    "text-align:right}td:first-child,th:first-child{text-align:left}"
	    "</style></head><body><h1>simq</h1><h2>Queues</h2><table><tr>"
	    "<th>queue</th>");
	for (s = 0; s < JS__COUNT; s++)
		evbuffer_add_printf(o, "<th>%s</th>", proto_state_name(s));
	evbuffer_add_printf(o, "</tr>\n");
	TAILQ_FOREACH(q, &B->queues, entry) {
		evbuffer_add_printf(o, "<tr><td>");
		html_str(o, q->name);
		if (q->paused)
			evbuffer_add_printf(o, " (paused)");
		evbuffer_add_printf(o, "</td>");
		for (s = 0; s < JS__COUNT; s++)
			evbuffer_add_printf(o, "<td>%llu</td>",
			    (unsigned long long)q->count[s]);
		evbuffer_add_printf(o, "</tr>\n");
	}
	evbuffer_add_printf(o, "</table><h2>Workers</h2><table><tr>"
	    "<th>worker</th><th>host</th><th>slots</th><th>state</th>"
	    "<th>running</th></tr>\n");
	TAILQ_FOREACH(w, &workers, entry) {
		evbuffer_add_printf(o, "<tr><td>");
		html_str(o, w->name);
		evbuffer_add_printf(o, "</td><td>");
		html_str(o, w->host ? w->host : "");
		evbuffer_add_printf(o, "</td><td>%u</td><td>%s</td><td>",
		    w->slots, w->conn ? "up" : "away");
		TAILQ_FOREACH(j, &w->jobs, run->wentry) {
			proto_format_id(id, j->id, j->index);
			evbuffer_add_printf(o, "%s ", id);
		}
		evbuffer_add_printf(o, "</td></tr>\n");
	}
	evbuffer_add_printf(o, "</table></body></html>\n");
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

static int
authorized(const char *head, size_t hlen)
{
	const char	*h;
	const char	 bearer[] = "Bearer ";
	size_t		 n;

	if (B->cfg.token == NULL)
		return 1;
	h = header(head, hlen, "Authorization", &n);
	if (h == NULL || n < sizeof bearer - 1 ||
	    strncmp(h, bearer, sizeof bearer - 1) != 0)
		return 0;
	h += sizeof bearer - 1;
	n -= sizeof bearer - 1;
	return token_equal(h, n, B->cfg.token, strlen(B->cfg.token));
}

/* Writes the response and closes after it. */
static void
reply(struct conn *c, int code, const char *reason, const char *type,
    struct evbuffer *body, int head_only, const char *extra)
{
	struct evbuffer	*o = conn_outbuf(c);

	evbuffer_add_printf(o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n"
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
	reply(c, code, reason, "text/plain", o, 0, NULL);
	evbuffer_free(o);
}

/* The head did not arrive in time. */
void
http_timeout(struct conn *c)
{
	reply_text(c, 408, "Request Timeout", "the request took too long");
}

/* Answers the request whose head is head[0..hlen). */
static void
serve(struct conn *c, const char *head, size_t hlen)
{
	struct evbuffer	*o = evbuffer_new();
	const char	*sp1, *sp2, *eol;
	char		 path[1024];
	size_t		 mlen, plen;
	int		 head_only;

	if (o == NULL)
		fatal("http: out of memory");
	eol = memchr(head, '\n', hlen);
	sp1 = memchr(head, ' ', (size_t)(eol - head));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (sp1 == NULL || sp2 == NULL || (size_t)(eol - sp2) < 9 ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		reply_text(c, 400, "Bad Request", "bad request");
		goto out;
	}
	mlen = (size_t)(sp1 - head);
	head_only = mlen == 4 && memcmp(head, "HEAD", 4) == 0;
	/* The path, without a query. */
	plen = (size_t)(sp2 - sp1 - 1);
	if (memchr(sp1 + 1, '?', plen) != NULL)
		plen = (size_t)((const char *)memchr(sp1 + 1, '?', plen) -
		    (sp1 + 1));
	if (plen == 0 || plen >= sizeof path || sp1[1] != '/') {
		reply_text(c, 400, "Bad Request", "bad request");
		goto out;
	}
	memcpy(path, sp1 + 1, plen);
	path[plen] = '\0';
	if (!authorized(head, hlen)) {
		evbuffer_add_printf(o, "a token is needed: send "
		    "\"Authorization: Bearer TOKEN\"\n");
		reply(c, 401, "Unauthorized", "text/plain", o, head_only,
		    "WWW-Authenticate: Bearer\r\n");
		conn_auth_failed(c);
	} else if (!(mlen == 3 && memcmp(head, "GET", 3) == 0) &&
	    !head_only) {
		evbuffer_add_printf(o, "this view is read-only: GET only\n");
		reply(c, 405, "Method Not Allowed", "text/plain", o, 0,
		    "Allow: GET, HEAD\r\n");
	} else if (strcmp(path, "/") == 0) {
		page_html(o);
		reply(c, 200, "OK", "text/html; charset=utf-8", o, head_only,
		    NULL);
	} else if (strcmp(path, "/api/status") == 0) {
		page_status(o);
		reply(c, 200, "OK", "application/json", o, head_only, NULL);
	} else if (strcmp(path, "/metrics") == 0) {
		page_metrics(o);
		reply(c, 200, "OK", "text/plain; version=0.0.4", o, head_only,
		    NULL);
	} else if (strncmp(path, "/api/jobs/", 10) == 0 &&
	    page_job(o, path + 10) == 0) {
		reply(c, 200, "OK", "application/json", o, head_only, NULL);
	} else {
		evbuffer_drain(o, evbuffer_get_length(o));
		evbuffer_add_printf(o, "not found: try /, /api/status, "
		    "/api/jobs/ID or /metrics\n");
		reply(c, 404, "Not Found", "text/plain", o, head_only, NULL);
	}
out:
	evbuffer_free(o);
}

/* New bytes on an HTTP connection: answer once the head is in. */
void
http_input(struct conn *c)
{
	size_t		 len = evbuffer_get_length(c->in), n;
	const char	*p, *end;

	n = len < HTTP_HEADERS_MAX ? len : HTTP_HEADERS_MAX;
	if (n == 0)
		return;
	p = (const char *)evbuffer_pullup(c->in, (ssize_t)n);
	/* The head ends at an empty line (CR LF or LF alone). */
	for (end = p; (end = memchr(end, '\n', n - (size_t)(end - p))) !=
	    NULL; end++) {
		const char *q = end + 1;
		if (q < p + n && *q == '\n') {
			serve(c, p, (size_t)(q - p));
			return;
		}
		if (q + 1 < p + n && q[0] == '\r' && q[1] == '\n') {
			serve(c, p, (size_t)(q - p));
			return;
		}
	}
	if (len >= HTTP_HEADERS_MAX)
		reply_text(c, 431, "Request Header Fields Too Large",
		    "the request's head is too long");
	else if (c->eof)
		conn_close(c);
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
