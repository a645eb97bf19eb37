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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "simqd.h"
#include "json.h"
#include "log.h"

/* Requests are small GETs: their headers fit in this, and no body. */
#define HTTP_HEADERS_MAX	16384
#define HTTP_TIMEOUT_S		10

static struct evhttp	*http;

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

	if (proto_parse_id(ids, strlen(ids), &id) < 0 ||
	    (j = idmap_get(id.id, id.index)) == NULL)
		return -1;
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
	    "# TYPE simq_submitted_total counter\nsimq_submitted_total %llu\n"
	    "# TYPE simq_finished_total counter\nsimq_finished_total %llu\n"
	    "# TYPE simq_lost_total counter\nsimq_lost_total %llu\n"
	    "# TYPE simq_journal_bytes gauge\nsimq_journal_bytes %llu\n"
	    "# TYPE simq_journal_fsyncs_total counter\n"
	    "simq_journal_fsyncs_total %llu\n"
	    "# TYPE simq_journal_snapshots_total counter\n"
	    "simq_journal_snapshots_total %llu\n",
	    nworkers, connected, nconns,
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

static int
authorized(struct evhttp_request *req)
{
	const char	*h;
	const char	 bearer[] = "Bearer ";

	if (B->cfg.token == NULL)
		return 1;
	h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	if (h == NULL || strncmp(h, bearer, sizeof bearer - 1) != 0)
		return 0;
	h += sizeof bearer - 1;
	return token_equal(h, strlen(h), B->cfg.token, strlen(B->cfg.token));
}

static void
reply(struct evhttp_request *req, int code, const char *reason,
    const char *type, struct evbuffer *body)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

static void
http_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer	*o = evbuffer_new();
	const char	*path;
	struct evhttp_uri *uri;

	(void)arg;
	B->now = now_ms();
	if (o == NULL) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, NULL);
		return;
	}
	uri = evhttp_uri_parse(evhttp_request_get_uri(req));
	path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	if (!authorized(req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "WWW-Authenticate", "Bearer");
		evbuffer_add_printf(o, "a token is needed: send "
		    "\"Authorization: Bearer TOKEN\"\n");
		reply(req, 401, "Unauthorized", "text/plain", o);
	} else if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evbuffer_add_printf(o, "this view is read-only: GET only\n");
		reply(req, 405, "Method Not Allowed", "text/plain", o);
	} else if (path == NULL) {
		evbuffer_add_printf(o, "bad request\n");
		reply(req, 400, "Bad Request", "text/plain", o);
	} else if (strcmp(path, "/") == 0) {
		page_html(o);
		reply(req, 200, "OK", "text/html; charset=utf-8", o);
	} else if (strcmp(path, "/api/status") == 0) {
		page_status(o);
		reply(req, 200, "OK", "application/json", o);
	} else if (strcmp(path, "/metrics") == 0) {
		page_metrics(o);
		reply(req, 200, "OK", "text/plain; version=0.0.4", o);
	} else if (strncmp(path, "/api/jobs/", 10) == 0 &&
	    page_job(o, path + 10) == 0) {
		reply(req, 200, "OK", "application/json", o);
	} else {
		evbuffer_drain(o, evbuffer_get_length(o));
		evbuffer_add_printf(o, "not found: try /, /api/status, "
		    "/api/jobs/ID or /metrics\n");
		reply(req, 404, "Not Found", "text/plain", o);
	}
	if (uri != NULL)
		evhttp_uri_free(uri);
	evbuffer_free(o);
}

/* Serves the views on addr:port.  Returns 0, or -1 (logged). */
int
http_listen(const char *addr, int port)
{
	if ((http = evhttp_new(B->base)) == NULL)
		return -1;
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_max_headers_size(http, HTTP_HEADERS_MAX);
	evhttp_set_max_body_size(http, 0);
	evhttp_set_timeout(http, HTTP_TIMEOUT_S);
	evhttp_set_gencb(http, http_cb, NULL);
	if (evhttp_bind_socket_with_handle(http, addr, (uint16_t)port) ==
	    NULL) {
		log_warn("http: cannot listen on %s port %d", addr, port);
		evhttp_free(http);
		http = NULL;
		return -1;
	}
	log_info("http: status on http://%s:%d/", addr, port);
	return 0;
}

void
http_close(void)
{
	if (http != NULL)
		evhttp_free(http);
	http = NULL;
}
