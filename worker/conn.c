/*
 * conn.c: the one connection to the broker.
 *
 * Requests are pipelined: each request sent is appended to a queue of
 * expected replies, and replies, which come in order, are matched against
 * its head.  A TAKE parks at the broker until there are jobs; any request
 * we send after it ends the wait at once (the broker answers it with what
 * there is), so one connection gives both a low dispatch latency and
 * prompt reports: a result or a heartbeat never waits behind a TAKE.
 *
 * When the connection fails, running jobs go on.  We reconnect with
 * exponential backoff and jitter, register under the same name (the
 * broker keeps our leases for that long), heartbeat every job we hold,
 * and send again every report that was not answered.  A report the broker
 * had already recorded is refused as stale, which is harmless.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "simq-worker.h"

enum conn_state {
	C_DOWN,			/* waiting to retry */
	C_CONNECTING,
	C_REGISTERING,		/* HELLO and WORKER sent */
	C_READY
};

enum req_kind {
	R_HELLO,
	R_WORKER,
	R_TAKE,
	R_HEARTBEAT,
	R_REPORT,
	R_PING,
	R_PUSH
};

/* A request whose reply has not come yet. */
struct req {
	TAILQ_ENTRY(req)	 entry;
	enum req_kind		 kind;
	struct wjob		*job;		/* R_REPORT */
	uint32_t		 max;		/* R_TAKE */
	uint64_t		 wait;		/* R_TAKE */
	uint32_t		 got;		/* R_TAKE: jobs in the reply */
	int			 ending;	/* R_TAKE: it said ending= */
	uint64_t		 token;		/* R_PUSH: follow.c's */
};
TAILQ_HEAD(reqlist, req);

static struct bufferevent	*bev;
static enum conn_state		 cstate = C_DOWN;
static struct reqlist		 reqs = TAILQ_HEAD_INITIALIZER(reqs);
static struct proto_in		 pin;
static struct req		*items_req;	/* reading its ITEMS */
static uint64_t			 items_left;
static struct event		*retry_ev, *hb_ev, *giveup_ev;
static char			 last_why[160] = "no answer";
static uint64_t			 backoff = BACKOFF_FIRST_MS;
static int			 ever_registered, outage_logged;
static struct addrinfo		*ais, *ai_next;
static struct proto_word	 words[ITEM_WORDS_MAX];

static void	try_connect(void);

int
conn_registered(void)
{
	return cstate == C_READY;
}

static struct evbuffer *
outbuf(void)
{
	return bufferevent_get_output(bev);
}

static struct req *
req_push(enum req_kind kind)
{
	struct req	*r = xcalloc(1, sizeof *r);

	r->kind = kind;
	TAILQ_INSERT_TAIL(&reqs, r, entry);
	return r;
}

static void
retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	try_connect();
}

/*
 * --burst: a worker started for one batch must not wait forever for a
 * broker that is gone.  Once the broker has been out of reach for
 * --connect-timeout, it exits 3 (after its running jobs end: their
 * results might still get through).
 */
static void
giveup_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval	tv;

	if (cstate == C_READY)
		return;
	if (W->nrunning > 0) {
		ms_to_tv(1000, &tv);
		evtimer_add(giveup_ev, &tv);
		return;
	}
	log_warn("cannot reach the broker %s for %llu ms (%s); giving up "
	    "(--burst)%s", W->cfg.server,
	    (unsigned long long)W->cfg.connect_timeout_ms, last_why,
	    W->njobs ? "; the broker re-queues the jobs whose results were "
	    "not delivered when their leases run out" : "");
	worker_exit(3);
}

/* The broker is out of reach (not yet, or no more). */
static void
outage_begin(void)
{
	struct timeval	tv;

	if (!W->cfg.burst || evtimer_pending(giveup_ev, NULL))
		return;
	ms_to_tv(W->cfg.connect_timeout_ms, &tv);
	evtimer_add(giveup_ev, &tv);
}

static void
schedule_retry(void)
{
	struct timeval	tv;
	uint64_t	cap = BACKOFF_MAX_MS, d;

	if (W->lease_ms / 3 < cap)
		cap = W->lease_ms / 3;
	if (cap < BACKOFF_FIRST_MS)
		cap = BACKOFF_FIRST_MS;
	if (backoff > cap)
		backoff = cap;
	/* Full jitter in the upper half: workers that lost the same broker
	 * do not all come back in the same millisecond. */
	d = jitter(backoff / 2, backoff);
	backoff *= 2;
	cstate = C_DOWN;
	ms_to_tv(d, &tv);
	evtimer_add(retry_ev, &tv);
}

/* Drops the connection and everything in flight on it. */
static void
conn_lost(const char *why)
{
	struct req	*r;

	if (cstate == C_READY)
		log_warn("lost the connection to the broker %s (%s); "
		    "reconnecting, %u job%s running", W->cfg.server, why,
		    W->nrunning, W->nrunning == 1 ? "" : "s");
	if (bev != NULL) {
		bufferevent_free(bev);
		bev = NULL;
	}
	evtimer_del(hb_ev);
	outage_begin();
	items_req = NULL;
	items_left = 0;
	while ((r = TAILQ_FIRST(&reqs)) != NULL) {
		TAILQ_REMOVE(&reqs, r, entry);
		if (r->kind == R_TAKE) {
			W->asked -= r->max;
			W->ntakes--;
		} else if (r->kind == R_REPORT)
			job_report_answered(r->job, NULL, 0);
		else if (r->kind == R_PUSH)
			follow_answered(r->token, NULL, 0);
		free(r);
	}
	schedule_retry();
	worker_poke();
}

static void
send_worker(void)
{
	struct evbuffer	*o = outbuf();
	char		*tok, *host;

	if (W->cfg.token != NULL) {
		tok = xmalloc(PROTO_ENC_MAX(strlen(W->cfg.token)) + 1);
		proto_encode(tok, W->cfg.token, strlen(W->cfg.token));
		evbuffer_add_printf(o, "HELLO %d %s\r\n", SIMQ_PROTO_VERSION,
		    tok);
		free(tok);
	} else
		evbuffer_add_printf(o, "HELLO %d\r\n", SIMQ_PROTO_VERSION);
	req_push(R_HELLO);
	host = xmalloc(PROTO_ENC_MAX(strlen(W->cfg.hostname)) + 1);
	proto_encode(host, W->cfg.hostname, strlen(W->cfg.hostname));
	evbuffer_add_printf(o, "WORKER %s host=%s slots=%u pid=%d queues=%s "
	    "cpus=%u gpus=%u mem=%llu", W->cfg.name, host, W->cfg.slots,
	    (int)W->pid, W->cfg.queues, W->cfg.slots, W->cfg.ngpus,
	    (unsigned long long)W->cfg.mem);
	free(host);
	if (W->cfg.lease_ms)
		evbuffer_add_printf(o, " lease=%llu",
		    (unsigned long long)W->cfg.lease_ms);
	evbuffer_add(o, "\r\n", 2);
	req_push(R_WORKER);
	cstate = C_REGISTERING;
}

static void
event_cb(struct bufferevent *b, short what, void *arg)
{
	char	why[128];
	int	err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		freeaddrinfo(ais);
		ais = ai_next = NULL;
		log_debug("connected to %s", W->cfg.server);
		send_worker();
		return;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "closed by the broker");
	else
		snprintf(why, sizeof why, "%s", err ? strerror(err) :
		    "connection error");
	snprintf(last_why, sizeof last_why, "%s", why);
	if (cstate == C_CONNECTING) {
		if (!outage_logged && ai_next == NULL) {
			log_warn("cannot connect to the broker %s (%s); will "
			    "keep trying%s", W->cfg.server, why,
			    W->cfg.burst ? " (--burst: until "
			    "--connect-timeout)" : "");
			outage_logged = 1;
		} else
			log_debug("connect to %s: %s", W->cfg.server, why);
		bufferevent_free(bev);
		bev = NULL;
		try_connect();		/* the next address, or later */
		return;
	}
	conn_lost(why);
}

static void	read_cb(struct bufferevent *, void *);

/* Starts a connection to the next address; schedules a retry when there
 * is none left. */
static void
try_connect(void)
{
	struct addrinfo	 hints, *ai;
	int		 fd, on = 1, rc;
	int		 idle = 10, intvl = 5, cnt = 3;
	unsigned	 utimeout = 30000;

	if (ais == NULL) {
		memset(&hints, 0, sizeof hints);
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_family = AF_UNSPEC;
		if ((rc = getaddrinfo(W->cfg.host, W->cfg.port, &hints,
		    &ais)) != 0) {
			ais = NULL;
			snprintf(last_why, sizeof last_why, "cannot resolve "
			    "%s: %s", W->cfg.host, gai_strerror(rc));
			if (!outage_logged)
				log_warn("cannot resolve %s: %s; will keep "
				    "trying", W->cfg.host, gai_strerror(rc));
			outage_logged = 1;
			schedule_retry();
			return;
		}
		ai_next = ais;
	}
	while ((ai = ai_next) != NULL) {
		ai_next = ai->ai_next;
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		/* Replies are small and latency matters; and a broker
		 * host that vanished must not hold us for the kernel's
		 * quarter of an hour of retransmissions. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
		    sizeof intvl);
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &utimeout,
		    sizeof utimeout);
		bev = bufferevent_socket_new(W->base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			close(fd);
			continue;
		}
		bufferevent_setcb(bev, read_cb, NULL, event_cb, NULL);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		proto_in_init(&pin);
		cstate = C_CONNECTING;
		if (bufferevent_socket_connect(bev, ai->ai_addr,
		    (int)ai->ai_addrlen) == 0)
			return;
		/* Failed at once; event_cb may have run and moved on. */
		if (cstate != C_CONNECTING || bev == NULL)
			return;
		bufferevent_free(bev);
		bev = NULL;
	}
	freeaddrinfo(ais);
	ais = ai_next = NULL;
	schedule_retry();
}

static void
hb_cb(evutil_socket_t fd, short ev, void *arg)
{
	conn_heartbeat(0);
}

void
conn_start(void)
{
	retry_ev = evtimer_new(W->base, retry_cb, NULL);
	hb_ev = event_new(W->base, -1, EV_PERSIST, hb_cb, NULL);
	giveup_ev = evtimer_new(W->base, giveup_cb, NULL);
	outage_begin();
	try_connect();
}

void
conn_close(void)
{
	struct req	*r;

	if (bev != NULL)
		bufferevent_free(bev);
	bev = NULL;
	cstate = C_DOWN;
	while ((r = TAILQ_FIRST(&reqs)) != NULL) {
		TAILQ_REMOVE(&reqs, r, entry);
		free(r);
	}
	if (ais != NULL)
		freeaddrinfo(ais);
	ais = NULL;
	if (retry_ev != NULL)
		event_free(retry_ev);
	if (giveup_ev != NULL)
		event_free(giveup_ev);
	giveup_ev = NULL;
	if (hb_ev != NULL)
		event_free(hb_ev);
	retry_ev = hb_ev = NULL;
	follow_free_all();
}

/*
 * Requests.
 */

/* j has ended and its report is to go with the next conn_flush_reports:
 * its lease is still held at the broker. */
static int
report_due(const struct wjob *j)
{
	return j->state == WJ_ENDED && j->report != REP_NONE &&
	    !j->inflight && !j->held_back && !j->dropped;
}

/*
 * A TAKE sent right before reports (W->reports_next) names the leases
 * they end, ending=ID:ATTEMPT,...: the broker counts what those jobs
 * hold as free for this TAKE, as our own words do (their processes are
 * gone), and answers it at once.  The TAKE goes before the reports so
 * that its reply, leases alone, may leave before the broker's commit of
 * the reports, which it would otherwise wait behind (replies keep their
 * order).  Returns 1 if it named any.
 */
static int
take_ending(struct evbuffer *o)
{
	struct wjob	*j;
	int		 n = 0;

	if (!W->reports_next || W->no_ending)
		return 0;
	TAILQ_FOREACH(j, &W->jobs, entry) {
		if (!report_due(j))
			continue;
		evbuffer_add_printf(o, "%s%s:%u", n == 0 ? " ending=" : ",",
		    j->id, j->attempt);
		if (++n == SIMQ_TAKE_ENDING_MAX)
			break;
	}
	return n > 0;
}

void
conn_take(uint32_t max, uint32_t ahead, uint64_t wait_ms)
{
	struct req	*r;
	uint64_t	 tmax;
	int		 ending;

	if (cstate != C_READY)
		return;
	if (max > SIMQ_TAKE_MAX)
		max = SIMQ_TAKE_MAX;
	if (ahead > max)
		ahead = max;
	evbuffer_add_printf(outbuf(), "TAKE %u %llu %s", max,
	    (unsigned long long)wait_ms, W->cfg.queues);
	if (ahead > 0)
		evbuffer_add_printf(outbuf(), " ahead=%u", ahead);
	/* What is free: cpus= gpus= mem= (resources.c). */
	res_take_words(outbuf());
	/* Under a time limit: only jobs whose timeout fits (pilot.c). */
	if ((tmax = pilot_take_time()) > 0)
		evbuffer_add_printf(outbuf(), " time=%llu",
		    (unsigned long long)tmax);
	ending = take_ending(outbuf());
	evbuffer_add_printf(outbuf(), "\r\n");
	r = req_push(R_TAKE);
	r->max = max;
	r->wait = wait_ms;
	r->ending = ending;
	W->asked += max;
	W->ntakes++;
	log_debug("> TAKE %u %llu ahead=%u", max, (unsigned long long)wait_ms,
	    ahead);
}

/* PUSH: bytes of a followed job's output (follow.c); token comes back
 * with the answer. */
void
conn_push(const char *id, uint32_t attempt, int which, uint64_t off,
    const char *data, size_t len, uint64_t token)
{
	struct req	*r;

	if (cstate != C_READY)
		return;
	evbuffer_add_printf(outbuf(), "PUSH %s %u %s %llu %zu\r\n", id,
	    attempt, which ? "stderr" : "stdout", (unsigned long long)off,
	    len);
	evbuffer_add(outbuf(), data, len);
	evbuffer_add(outbuf(), "\r\n", 2);
	r = req_push(R_PUSH);
	r->token = token;
}

void
conn_ping(void)
{
	if (cstate != C_READY)
		return;
	evbuffer_add_printf(outbuf(), "PING\r\n");
	req_push(R_PING);
}

/* Lists every job the broker believes we hold: running ones and ended
 * ones whose report is not answered yet.  The first line also carries
 * the worker's output error (outerr=, empty when it has cleared) while
 * there is one or the broker has not heard that it cleared. */
void
conn_heartbeat(int all)
{
	struct evbuffer	*o;
	struct wjob	*j;
	char		*enc;
	size_t		 len;
	int		 n = 0, note = W->outerr != NULL || !W->outerr_told;

	if (cstate != C_READY || (W->njobs == 0 && !note && !all))
		return;
	o = outbuf();
	if (note) {
		len = W->outerr != NULL ? strlen(W->outerr) : 0;
		if (len > SIMQ_REASON_MAX)
			len = SIMQ_REASON_MAX;
		enc = xmalloc(PROTO_ENC_MAX(len) + 1);
		proto_encode(enc, W->outerr != NULL ? W->outerr : "", len);
		evbuffer_add_printf(o, "HEARTBEAT outerr=%s", enc);
		free(enc);
		W->outerr_told = 1;
		n = 1;
	}
	TAILQ_FOREACH(j, &W->jobs, entry) {
		if (j->dropped)
			continue;
		if (n == 0)
			evbuffer_add_printf(o, "HEARTBEAT");
		evbuffer_add_printf(o, " %s:%u", j->id, j->attempt);
		if (++n == HEARTBEAT_IDS_MAX) {
			evbuffer_add(o, "\r\n", 2);
			req_push(R_HEARTBEAT);
			n = 0;
		}
	}
	if (all) {
		/* The listing is complete: a job leased to us that it does
		 * not name (its TAKE reply was lost) goes back at once. */
		evbuffer_add_printf(o, n == 0 ? "HEARTBEAT all=1" : " all=1");
		n++;
	}
	if (n > 0) {
		evbuffer_add(o, "\r\n", 2);
		req_push(R_HEARTBEAT);
	}
}

void
conn_flush_reports(void)
{
	struct wjob	*j;
	struct req	*r;

	if (cstate != C_READY)
		return;
	TAILQ_FOREACH(j, &W->jobs, entry) {
		if (j->state != WJ_ENDED || j->report == REP_NONE ||
		    j->inflight)
			continue;
		follow_job_ended(j);	/* its output's last bytes first */
		if (report_put(outbuf(), j) < 0)
			continue;
		r = req_push(R_REPORT);
		r->job = j;
		j->inflight = 1;
	}
}

/*
 * Replies.
 */

static int
registered(const char *line, size_t len)
{
	struct timeval	tv;
	uint64_t	lease;
	const char	*sp = memchr(line, ' ', len);

	if (sp == NULL || proto_parse_u64(sp + 1, len - (size_t)(sp + 1 -
	    line), SIMQ_MS_MAX, &lease) < 0 || lease == 0) {
		log_warn("WORKER: unexpected reply '%.*s'", (int)len, line);
		return -1;
	}
	W->lease_ms = lease;
	cstate = C_READY;
	evtimer_del(giveup_ev);
	backoff = BACKOFF_FIRST_MS;
	outage_logged = 0;
	log_info("%s the broker %s as %s: %u slot%s, queues %s, lease %llu "
	    "ms%s", ever_registered ? "reconnected to" : "connected to",
	    W->cfg.server, W->cfg.name, W->cfg.slots,
	    W->cfg.slots == 1 ? "" : "s", W->cfg.queues,
	    (unsigned long long)lease, W->njobs ? "; resuming the jobs we "
	    "hold" : "");
	ever_registered = 1;
	/* A broker that restarted has forgotten our output error. */
	if (W->outerr != NULL)
		W->outerr_told = 0;
	/* A third of the lease: two heartbeats may be lost or late before
	 * the broker gives up on us. */
	ms_to_tv(lease / 3, &tv);
	evtimer_add(hb_ev, &tv);
	conn_heartbeat(1);
	conn_flush_reports();
	worker_poke();
	return 0;
}

/* A refused HELLO or WORKER: fatal before we ever worked (a wrong token,
 * a bad name), else logged and retried (the broker may come back right). */
static int
refused(const char *what, const char *line, size_t len)
{
	const char	*msg = memmem(line, len, "name ", 5);

	/* Another live worker has our name: running beside it would make
	 * the two take each other's jobs; say so and stop, whether or not
	 * we were registered before. */
	if (msg != NULL && memmem(line, len, " is in use by ", 14) != NULL) {
		log_warn("%.*s", (int)(len - (size_t)(msg - line)), msg);
		fprintf(stderr, "simq-worker: %.*s\n",
		    (int)(len - (size_t)(msg - line)), msg);
		exit(2);
	}
	if (!ever_registered) {
		log_warn("the broker %s refused %s: %.*s", W->cfg.server, what,
		    (int)len, line);
		fprintf(stderr, "simq-worker: the broker refused %s: %.*s\n",
		    what, (int)len, line);
		exit(2);
	}
	log_warn("the broker refused %s: %.*s; will retry", what, (int)len,
	    line);
	return -1;
}

/* An item line of the reply being read. */
static void
item(struct req *r, char *line, size_t len)
{
	int	n;

	if ((n = proto_split(line, len, words, ITEM_WORDS_MAX)) <= 0) {
		log_warn("an item line with too many words; ignored");
		return;
	}
	if (proto_word_is(&words[0], "drop"))
		job_drop_item(words, n);
	else if (proto_word_is(&words[0], "follow"))
		follow_item(words, n, 1);
	else if (proto_word_is(&words[0], "unfollow"))
		follow_item(words, n, 0);
	else if (proto_word_is(&words[0], "job") && r->kind == R_TAKE) {
		if (job_take_item(words, n) == 0)
			r->got++;
	} else
		log_debug("ignored item '%.*s'", (int)(len > 60 ? 60 : len),
		    line);
}

/* The reply to r is complete (ITEMS after their last item). */
static int
done(struct req *r, const char *line, size_t len)
{
	int	ok = len >= 2 && memcmp(line, "OK", 2) == 0 &&
	    (len == 2 || line[2] == ' ');
	int	items = len >= 5 && memcmp(line, "ITEMS", 5) == 0;
	int	rc = 0;

	TAILQ_REMOVE(&reqs, r, entry);
	switch (r->kind) {
	case R_HELLO:
		if (!ok)
			rc = refused("HELLO", line, len);
		break;
	case R_WORKER:
		rc = ok ? registered(line, len) : refused("WORKER", line, len);
		break;
	case R_TAKE:
		W->asked -= r->max;
		W->ntakes--;
		if (!items && r->ending && len > 15 &&
		    memcmp(line, "ERR bad-request", 15) == 0) {
			/* A broker older than ending=: TAKE behind the
			 * reports from now on, as before it. */
			log_info("the broker does not take TAKE ending=; "
			    "taking after the reports");
			W->no_ending = 1;
		} else if (!items) {
			log_warn("TAKE: %.*s", (int)len, line);
			worker_hold();
		} else if (r->wait == 0 && !r->ending)
			/* (An ending= TAKE was answered before the reports
			 * behind it could free a dependent: not empty.) */
			W->burst_empty = r->got == 0;
		log_debug("< TAKE: %u job%s", r->got, r->got == 1 ? "" : "s");
		worker_poke();
		break;
	case R_HEARTBEAT:
		if (!items)
			log_warn("HEARTBEAT: %.*s", (int)len, line);
		break;
	case R_REPORT:
		job_report_answered(r->job, line, len);
		worker_poke();
		break;
	case R_PING:
		break;
	case R_PUSH:
		follow_answered(r->token, line, len);
		break;
	}
	free(r);
	return rc;
}

/* One line from the broker.  Returns -1 to drop the connection. */
static int
reply_line(char *line, size_t len)
{
	struct req	*r;
	uint64_t	 n;

	if (items_req != NULL) {
		r = items_req;
		item(r, line, len);
		if (--items_left == 0) {
			items_req = NULL;
			return done(r, "ITEMS", 5);
		}
		return 0;
	}
	if ((r = TAILQ_FIRST(&reqs)) == NULL) {
		log_warn("a reply to no request: '%.*s'", (int)(len > 60 ? 60 :
		    len), line);
		return -1;
	}
	if (len > 6 && memcmp(line, "ITEMS ", 6) == 0) {
		if (proto_parse_u64(line + 6, len - 6, UINT32_MAX, &n) < 0) {
			log_warn("a malformed reply '%.*s'", (int)(len > 60 ?
			    60 : len), line);
			return -1;
		}
		if (n == 0)
			return done(r, line, len);
		items_req = r;
		items_left = n;
		return 0;
	}
	if ((len >= 2 && memcmp(line, "OK", 2) == 0) ||
	    (len >= 4 && memcmp(line, "ERR ", 4) == 0))
		return done(r, line, len);
	log_warn("an unexpected reply '%.*s'", (int)(len > 60 ? 60 : len),
	    line);
	return -1;
}

static void
read_cb(struct bufferevent *b, void *arg)
{
	struct evbuffer		*in = bufferevent_get_input(b);
	struct proto_word	 tok;
	enum proto_err		 err;
	enum proto_ev		 ev;
	size_t			 len, want, used;
	char			*p;

	while ((len = evbuffer_get_length(in)) > 0) {
		want = proto_in_want(&pin);
		if (len > want)
			len = want;
		if ((p = (char *)evbuffer_pullup(in, (ev_ssize_t)len)) == NULL)
			fatal("out of memory");
		ev = proto_in_next(&pin, p, len, &used, &tok, &err);
		switch (ev) {
		case PROTO_NEED:
			evbuffer_drain(in, used);
			if (used == 0)
				return;
			break;
		case PROTO_LINE:
			if (reply_line(tok.p, tok.len) < 0) {
				conn_lost("protocol error");
				return;
			}
			evbuffer_drain(in, used);
			break;
		case PROTO_ERR:
			/* A line longer than any reply may be: the framer
			 * skips it.  An item is lost; a reply is not one. */
			evbuffer_drain(in, used);
			if (items_req == NULL) {
				conn_lost("a reply line too long");
				return;
			}
			log_warn("an item line longer than %d bytes; ignored",
			    SIMQ_LINE_MAX);
			if (--items_left == 0) {
				struct req *r = items_req;
				items_req = NULL;
				if (done(r, "ITEMS", 5) < 0) {
					conn_lost("protocol error");
					return;
				}
			}
			break;
		case PROTO_BODY:
			conn_lost("protocol error");
			return;
		}
		if (bev != b)
			return;		/* replaced meanwhile */
	}
}
