/*
 * net.c: the listening sockets and the client connections.
 *
 * A connection reads into an evbuffer and runs each complete request as
 * soon as it is framed.  Replies do not go to the socket directly: they
 * collect in the connection's pending buffer, and only after the loop
 * pass's journal commit (main.c) are they moved to the output buffer and
 * written.  So no client ever hears "OK" for a change the disk has not got.
 *
 * Back-pressure: a connection whose unsent replies pass OUT_HIGH stops
 * being read until they drain below OUT_LOW, so a client that pipelines
 * without reading cannot make the broker buffer without bound.
 *
 * A connection is never freed inside its own callback: it is marked dead
 * and freed after the pass.
 *
 * Limits, so that no client can stop or starve the broker (simqd(8),
 * LIMITS):
 *
 *   descriptors  protocol and HTTP connections together use at most
 *                RLIMIT_NOFILE minus FD_RESERVE (the journal's own files);
 *                HTTP ones at most a quarter of that.  A listener at its
 *                share stops accepting (connections wait in the backlog).
 *   input        requests not yet complete are held up to --input-max
 *                bytes in all; past it, a connection holding more than a
 *                line is answered ERR limit and closed.
 *   stalls       a request half-received, or replies left unread, for
 *                --stall-timeout without progress close the connection.
 *   one pass     requests run in turns, round-robin, within a budget per
 *                loop pass (net_run), so every client is served between
 *                another's requests and no pass is long.
 *   bad tokens   each failure from an address delays the next ERR auth
 *                from it (the connection is held, not the loop), and the
 *                log line is rate-limited.
 */
#include <sys/ioctl.h>
#include <sys/poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "simqd.h"
#include "log.h"

/* Unsent replies per connection: hundreds of status lines, or thousands
 * of acknowledgements.  Small, since every connection that does not read
 * may hold this much, and the broker spent the work of making it. */
#define OUT_HIGH	(64u << 10)
#define OUT_LOW		(16u << 10)

/* The kernel's send buffer per connection, fixed rather than grown up to
 * megabytes: what a client that never reads can make the broker produce
 * is OUT_HIGH plus this (the kernel doubles it).  Not smaller: a buffer of
 * one or two segments (loopback's are 64 KiB) makes every bulk reply wait
 * for the reader's delayed ACK, 40 ms a LIST page (simq list of 100,000
 * jobs: 4.5 s at 32 KiB, 0.3 s at 128 KiB).  150 clients that never read
 * hold 40 MB of send queues at 128 KiB, 275 MB when autotuned. */
#define SNDBUF		(128 << 10)

/* One read per event: large enough that a pipelining client's requests
 * arrive in few passes (each pass costs one fsync). */
#define READ_CHUNK	(256 * 1024)

/* Listening sockets: an address may resolve to IPv4 and IPv6, and there
 * are two services. */
#define LISTENERS_MAX	16

/*
 * Running requests: a read only buffers them and puts the connection on
 * the run queue; net_run(), between two loop passes, serves the queue in
 * turns of TURN_UNITS units (a request is one, a BATCH counts its jobs)
 * or TURN_OUT bytes of replies, round-robin, until it is empty or the
 * pass has done PASS_BUDGET units or PASS_OUT bytes of replies (a few
 * milliseconds).  What is left goes on in the next pass.  So a request
 * waits at most about one turn of every busy connection, however much
 * the others have sent, and a pass stays short.
 */
#define TURN_UNITS	1
#define TURN_OUT	(4u << 10)
#define PASS_BUDGET	SIMQ_BATCH_JOBS_MAX
#define PASS_OUT	(256u << 10)

/* Bytes read in one pass, all connections together: past it, each
 * readable connection gets a small read (READ_SMALL) only, so a crowd of
 * connections sending at once cannot make one pass copy hundreds of
 * megabytes, and a short request behind them is still read at once. */
#define PASS_READ	(1u << 20)
#define READ_SMALL	4096
static size_t		 pass_read;

/* A declared body past this is not swallowed: the connection is closed. */
#define SWALLOW_MAX	SIMQ_SWALLOW_MAX

/* An HTTP request's head must be complete this soon after the connect. */
#define HTTP_TIMEOUT_MS	10000

/* Descriptors kept back from connections for the broker's own files: the
 * journal's directory, its segment and the next one, a snapshot, the
 * listeners (32), and the uploads being written (blob.c, BLOB_FDS_MAX).
 * Connections may use the rest of RLIMIT_NOFILE. */
#define FD_RESERVE	(32 + BLOB_FDS_MAX)

struct connlist		conns = TAILQ_HEAD_INITIALIZER(conns);
static struct connlist	dirty = TAILQ_HEAD_INITIALIZER(dirty);
uint32_t		nconns;
uint32_t		nhttp;		/* of nconns, HTTP ones */
size_t			input_total;	/* bytes in every connection's in */

static struct listener {
	struct event	*ev;
	int		 kind;		/* CONN_PROTO, CONN_HTTP */
	int		 on;		/* ev is added */
}			 listeners[LISTENERS_MAX];
static int		 nlisteners;
static int		 fd_paused;	/* out of descriptors: wait a little */

static TAILQ_HEAD(, conn) runq = TAILQ_HEAD_INITIALIZER(runq);

static void	listeners_update(void);
static void	stall_arm(struct conn *, int progress);

static struct proto_req	 req;	/* big; one request at a time */

static void	conn_read_cb(evutil_socket_t, short, void *);
static void	conn_write_cb(evutil_socket_t, short, void *);
static void	conn_park_cb(evutil_socket_t, short, void *);
static int	conn_process(struct conn *, uint64_t, size_t);

static void
mark_dirty(struct conn *c)
{
	if (!c->dirty) {
		c->dirty = 1;
		TAILQ_INSERT_TAIL(&dirty, c, dentry);
	}
}

/* The buffer a handler writes a reply into; end it with
 * conn_reply_done(). */
struct evbuffer *
conn_outbuf(struct conn *c)
{
	mark_dirty(c);
	return c->pend;
}

void
conn_reply_done(struct conn *c)
{
	c->npend++;
}

/* The reply just done is a TAKE's whose leases may go before the commit
 * (epoch.c): it does, if every reply before it in this pass may too.
 * Returns 1 if it does. */
int
conn_reply_early(struct conn *c)
{
	if (c->nearly + 1 != c->npend || c->held)
		return 0;
	c->nearly++;
	c->early_len = evbuffer_get_length(c->pend);
	return 1;
}

/*
 * Before the pass's commit: the replies that may go before it (the
 * leading TAKE replies of each connection) go to their sockets now, so a
 * worker starts its job while the disk works.  Errors are left for
 * net_after_pass.
 */
void
net_flush_early(void)
{
	struct conn	*c;

	TAILQ_FOREACH(c, &dirty, dentry) {
		if (c->nearly == 0)
			continue;
		if (c->held || c->dead) {
			c->nearly = 0;
			continue;
		}
		evbuffer_remove_buffer(c->pend, c->out, c->early_len);
		c->npend -= c->nearly;
		c->nearly = 0;
		c->early_len = 0;
		if (evbuffer_write(c->out, c->fd) < 0 && errno != EAGAIN &&
		    errno != EINTR)
			continue;	/* net_after_pass sees it fail too */
	}
}

void
conn_reply(struct conn *c, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(conn_outbuf(c), fmt, ap);
	va_end(ap);
	evbuffer_add(c->pend, "\r\n", 2);
	conn_reply_done(c);
}

/*
 * An error reply is one line whatever its message quotes: a control byte
 * (CR, LF and NUL among them) in the message, say from a decoded value it
 * echoes, is written %XX as in a word, so it can never end the reply
 * early or start a second one.
 */
void
conn_error(struct conn *c, enum proto_err e, const char *fmt, ...)
{
	va_list		 ap;
	struct evbuffer	*o = conn_outbuf(c);
	char		 msg[1024];
	const unsigned char *p;
	int		 n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(msg, sizeof msg, "(no message)");
	evbuffer_add_printf(o, "ERR %s ", proto_err_name(e));
	for (p = (const unsigned char *)msg; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			evbuffer_add_printf(o, "%%%02X", *p);
		else
			evbuffer_add(o, p, 1);
	}
	evbuffer_add(o, "\r\n", 2);
	conn_reply_done(c);
}

static void
reading(struct conn *c, int on)
{
	if (on && !c->reading && !c->dead && !c->eof) {
		event_add(c->rev, NULL);
		c->reading = 1;
	} else if (!on && c->reading) {
		event_del(c->rev);
		c->reading = 0;
	}
}

/*
 * Wrong tokens.  Each address (without its port) has a count of recent
 * failures; the ERR auth reply to the next failure is held AUTH_DELAY_MS
 * doubled per failure, up to AUTH_DELAY_MAX_MS, and the connection closed
 * after it.  A quiet AUTH_FORGET_MS forgets the address.  The connection
 * is held, not the loop: the broker serves everyone else meanwhile.
 */
#define AUTH_ADDRS		256
#define AUTH_DELAY_MS		100
#define AUTH_DELAY_MAX_MS	10000
#define AUTH_FORGET_MS		60000
#define AUTH_LOG_MS		10000

static struct authfail {
	char		addr[64];
	uint32_t	fails;
	uint32_t	unlogged;	/* failures since the last log line */
	uint64_t	last;		/* last failure */
	uint64_t	logged;		/* last log line */
}			authfails[AUTH_ADDRS];

static struct authfail *
authfail_get(const char *addr)
{
	struct authfail	*a, *victim = NULL;
	int		 i;

	for (i = 0; i < AUTH_ADDRS; i++) {
		a = &authfails[i];
		if (a->fails > 0 && B->now >= a->last + AUTH_FORGET_MS)
			a->fails = 0;
		if (a->fails > 0 && strcmp(a->addr, addr) == 0)
			return a;
		/* A free slot, else the one that failed longest ago. */
		if (victim == NULL || (victim->fails > 0 &&
		    (a->fails == 0 || a->last < victim->last)))
			victim = a;
	}
	memset(victim, 0, sizeof *victim);
	snprintf(victim->addr, sizeof victim->addr, "%s", addr);
	return victim;
}

/* A wrong or missing token from c (its ERR reply is already made): hold
 * the reply, then close. */
void
conn_auth_failed(struct conn *c)
{
	static uint64_t	 last_any;
	struct authfail	*a = authfail_get(c->addr);
	struct timeval	 tv;
	uint64_t	 delay = 0;

	if (a->fails > 0) {
		delay = (uint64_t)AUTH_DELAY_MS << (a->fails > 8 ? 8 :
		    a->fails - 1);
		if (delay > AUTH_DELAY_MAX_MS)
			delay = AUTH_DELAY_MAX_MS;
	}
	a->fails++;
	a->unlogged++;
	a->last = B->now;
	/* One line per address per AUTH_LOG_MS, and one a second in all. */
	if ((a->logged == 0 || B->now >= a->logged + AUTH_LOG_MS) &&
	    B->now >= last_any + 1000) {
		log_warn("%s: wrong or missing token (%u time%s from %s since "
		    "the last such line; replies now delayed %llu ms)",
		    c->peer, a->unlogged, a->unlogged == 1 ? "" : "s", c->addr,
		    (unsigned long long)delay);
		a->unlogged = 0;
		a->logged = last_any = B->now;
	}
	conn_close(c);
	if (delay == 0)
		return;
	c->held = 1;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(c->hold_ev, &tv);
}

static void
conn_hold_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn	*c = arg;

	B->now = now_ms();
	c->held = 0;
	mark_dirty(c);
}

/* Puts c on the run queue (net_run) if it is not on it. */
static void
runq_add(struct conn *c)
{
	if (c->queued || c->dead || c->closing)
		return;
	c->queued = 1;
	TAILQ_INSERT_TAIL(&runq, c, rentry);
}

static void
runq_del(struct conn *c)
{
	if (c->queued) {
		TAILQ_REMOVE(&runq, c, rentry);
		c->queued = 0;
	}
}

/* 1 if requests wait in the run queue: the next loop pass must not
 * block. */
int
net_busy(void)
{
	return !TAILQ_EMPTY(&runq);
}

/* Closes after the replies already made are written. */
void
conn_close(struct conn *c)
{
	c->closing = 1;
	reading(c, 0);
	mark_dirty(c);
}

/* Drops up to n bytes of c's input, keeping input_total. */
static void
in_drain(struct conn *c, size_t n)
{
	size_t	len = evbuffer_get_length(c->in);

	if (n > len)
		n = len;
	evbuffer_drain(c->in, n);
	input_total -= n;
}

static void
conn_free(struct conn *c)
{
	TAILQ_REMOVE(&conns, c, entry);
	nconns--;
	if (c->dirty)
		TAILQ_REMOVE(&dirty, c, dentry);
	runq_del(c);
	cmd_unpark(c);
	blob_conn_free(c);
	if (c->worker != NULL) {
		log_info("worker %s disconnected (%u running, leases kept)",
		    c->worker->name, c->worker->njobs);
		worker_detach(c->worker);
	}
	if (c->kind == CONN_HTTP)
		nhttp--;
	input_total -= evbuffer_get_length(c->in);
	event_free(c->rev);
	event_free(c->wev);
	event_free(c->park_ev);
	event_free(c->stall_ev);
	event_free(c->hold_ev);
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	evbuffer_free(c->pend);
	free(c->line);
	close(c->fd);
	free(c);
	listeners_update();
}

/*
 * Out of file descriptors: the pending connection stays in the backlog and
 * the listener stays readable, so accepting again at once would spin.
 * Stop listening for a moment instead.  At the connections' share of the
 * descriptors, the listeners stop until a connection goes.
 */
#define ACCEPT_PAUSE_MS	100

static struct event	*resume_ev;

/* How many connections the descriptor limit allows. */
static uint32_t
conn_limit(void)
{
	static uint32_t	limit;
	struct rlimit	rl;

	if (limit == 0) {
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0 ||
		    rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > UINT32_MAX)
			limit = UINT32_MAX;
		else if (rl.rlim_cur > 2 * FD_RESERVE)
			limit = (uint32_t)rl.rlim_cur - FD_RESERVE;
		else
			limit = (uint32_t)rl.rlim_cur / 2;
	}
	return limit;
}

/* HTTP's share: a quarter, so that status pages never crowd out the
 * workers and clients. */
static uint32_t
http_limit(void)
{
	uint32_t	l = conn_limit() / 4;

	return l > 0 ? l : 1;
}

/* Turns each listener on or off by the budget it draws on. */
static void
listeners_update(void)
{
	static uint64_t	last_log;
	int		i, want, full = 0;

	for (i = 0; i < nlisteners; i++) {
		struct listener *l = &listeners[i];
		want = !fd_paused && nconns < conn_limit() &&
		    (l->kind != CONN_HTTP || nhttp < http_limit());
		if (!want && !fd_paused)
			full = 1;
		if (want && !l->on)
			event_add(l->ev, NULL);
		else if (!want && l->on)
			event_del(l->ev);
		l->on = want;
	}
	if (full && B->now >= last_log + 10000) {
		log_warn("connection limit reached (%u connections, %u of them "
		    "HTTP; limits %u and %u); new ones wait", nconns, nhttp,
		    conn_limit(), http_limit());
		last_log = B->now;
	}
}

static void
accept_resume(evutil_socket_t fd, short ev, void *arg)
{
	B->now = now_ms();
	fd_paused = 0;
	listeners_update();
}

static void
accept_pause(void)
{
	static uint64_t	last_log;
	struct timeval	tv = { 0, ACCEPT_PAUSE_MS * 1000 };

	if (B->now >= last_log + 10000) {
		log_warn("accept: out of file descriptors (%u connections, "
		    "%d kept for the journal); new connections wait", nconns,
		    FD_RESERVE);
		last_log = B->now;
	}
	fd_paused = 1;
	listeners_update();
	if (resume_ev == NULL)
		resume_ev = evtimer_new(B->base, accept_resume, NULL);
	evtimer_add(resume_ev, &tv);
}

static void	conn_stall_cb(evutil_socket_t, short, void *);
static void	conn_hold_cb(evutil_socket_t, short, void *);

/* Accepts one connection; 0 when there was none to accept now. */
static int
accept_one(evutil_socket_t lfd, int kind)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sl = sizeof ss;
	struct conn		*c;
	int			 fd, one = 1, sndbuf;
	char			 host[NI_MAXHOST], serv[NI_MAXSERV];

	if (nconns >= conn_limit() ||
	    (kind == CONN_HTTP && nhttp >= http_limit())) {
		listeners_update();
		return 0;
	}
	if ((fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
	    SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
		if (errno == EMFILE || errno == ENFILE)
			accept_pause();
		else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("accept: %s", strerror(errno));
		return errno == ECONNABORTED;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	sndbuf = SNDBUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->kind = kind;
	if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, serv,
	    sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
		snprintf(c->peer, sizeof c->peer, "%.50s:%.8s", host, serv);
		snprintf(c->addr, sizeof c->addr, "%.50s", host);
	} else {
		snprintf(c->peer, sizeof c->peer, "?");
		snprintf(c->addr, sizeof c->addr, "?");
	}
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->pend = evbuffer_new();
	c->rev = event_new(B->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->wev = event_new(B->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb,
	    c);
	c->park_ev = evtimer_new(B->base, conn_park_cb, c);
	c->stall_ev = evtimer_new(B->base, conn_stall_cb, c);
	c->hold_ev = evtimer_new(B->base, conn_hold_cb, c);
	if (c->in == NULL || c->out == NULL || c->pend == NULL ||
	    c->rev == NULL || c->wev == NULL || c->park_ev == NULL ||
	    c->stall_ev == NULL || c->hold_ev == NULL)
		fatal("connection: out of memory");
	proto_in_init(&c->pin);
	TAILQ_INSERT_TAIL(&conns, c, entry);
	nconns++;
	B->nconns++;
	if (kind == CONN_HTTP) {
		/* The whole head within HTTP_TIMEOUT_MS, trickled or not. */
		struct timeval tv = { HTTP_TIMEOUT_MS / 1000, 0 };
		nhttp++;
		evtimer_add(c->stall_ev, &tv);
	}
	listeners_update();
	reading(c, 1);
	log_debug("%s: connected%s", c->peer, kind == CONN_HTTP ? " (http)" :
	    "");
	return 1;
}

/* A burst of connections is taken in few passes, not one a pass: a
 * client connecting behind hundreds of others is not kept waiting. */
#define ACCEPT_BURST	64

static void
accept_cb(evutil_socket_t lfd, short ev, void *arg)
{
	int	i;

	B->now = now_ms();
	for (i = 0; i < ACCEPT_BURST; i++)
		if (!accept_one(lfd, (int)(intptr_t)arg))
			break;
}

/*
 * Reads up to READ_CHUNK bytes with one readv() into space reserved in the
 * input buffer.  (evbuffer_read() of libevent 2.1 reads at most 4 KiB a
 * call, whatever it is asked: a pipelining client's requests would then
 * trickle in a hundred per pass, and so per fsync.)  Returns like read().
 */
static ssize_t
conn_fill(struct conn *c)
{
	struct evbuffer_iovec	v[2];
	struct iovec		iov[2];
	ssize_t			n, left;
	size_t			want = pass_read < PASS_READ ? READ_CHUNK :
				    READ_SMALL;
	int			k, i, avail;

	/* Space for what has arrived, not always READ_CHUNK: a connection
	 * that sent a few bytes and stalled must not pin 256 KiB. */
	if (ioctl(c->fd, FIONREAD, &avail) == 0 && avail >= 0 &&
	    (size_t)avail < want)
		want = avail > 512 ? (size_t)avail : 512;
	if ((k = evbuffer_reserve_space(c->in, (ssize_t)want, v, 2)) <= 0)
		fatal("connection: out of memory");
	for (i = 0; i < k; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	if ((n = readv(c->fd, iov, k)) <= 0) {
		evbuffer_commit_space(c->in, v, 0);
		return n;
	}
	for (left = n, i = 0; i < k; i++) {
		if ((size_t)left < v[i].iov_len)
			v[i].iov_len = (size_t)left;
		left -= (ssize_t)v[i].iov_len;
	}
	evbuffer_commit_space(c->in, v, k);
	input_total += (size_t)n;
	pass_read += (size_t)n;
	return n;
}

/* The client has sent all it will and all of it has run: answer a parked
 * TAKE at once (a client that is gone must not be handed a job), and close
 * after the replies. */
static void
eof_done(struct conn *c)
{
	if (c->queued || c->closing || c->dead)
		return;
	if (c->parked == CMD_TAKE)
		cmd_interrupt(c);
	if (!c->parked)
		conn_close(c);
}

/* Input past --input-max: a connection holding more than a line is
 * refused (the line-sized requests of everyone else go on). */
static int
input_full(struct conn *c)
{
	static uint64_t	last_log;
	size_t		mine = evbuffer_get_length(c->in);

	if (input_total + READ_CHUNK <= B->cfg.input_max ||
	    mine <= SIMQ_LINE_MAX + 2)
		return 0;
	if (B->now >= last_log + 10000) {
		log_warn("%s: refused a request of more than %zu bytes: %zu "
		    "bytes of requests are held, the limit is %llu "
		    "(--input-max)", c->peer, mine, input_total,
		    (unsigned long long)B->cfg.input_max);
		last_log = B->now;
	}
	if (c->kind == CONN_PROTO)
		conn_error(c, PERR_LIMIT, "the broker holds %zu bytes of "
		    "incomplete requests (limit %llu); this one is refused, "
		    "try again later; closing", input_total,
		    (unsigned long long)B->cfg.input_max);
	conn_close(c);
	return 1;
}

/* 1 when c has enough buffered to run on without reading. */
static int
in_enough(const struct conn *c)
{
	size_t	len = evbuffer_get_length(c->in);

	return len >= READ_CHUNK && proto_in_want(&c->pin) <= len;
}

static void
conn_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn	*c = arg;
	ssize_t		 n;

	B->now = now_ms();
	if (input_full(c))
		return;
	if (in_enough(c)) {
		/* Read more once net_run() has taken some. */
		reading(c, 0);
		runq_add(c);
		return;
	}
	n = conn_fill(c);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR) {
			if (evbuffer_get_length(c->in) > 0)
				runq_add(c);
			return;
		}
		log_debug("%s: read: %s", c->peer, strerror(errno));
		c->dead = 1;
		reading(c, 0);
		mark_dirty(c);
		return;
	}
	if (n == 0) {
		/* The client is done sending; answer what it sent (after a
		 * parked reply, if one is pending), then close (eof_done). */
		c->eof = 1;
		reading(c, 0);
		runq_add(c);
		return;
	}
	stall_arm(c, 1);
	runq_add(c);
}

/* Between loop passes, before the commit: runs the queued connections'
 * requests in turns, within the pass's budget. */
void
net_run(void)
{
	struct conn	*c;
	uint64_t	 units = 0, w0;
	size_t		 out = 0, o0;
	int		 more;

	while ((c = TAILQ_FIRST(&runq)) != NULL && units < PASS_BUDGET &&
	    out < PASS_OUT) {
		runq_del(c);
		w0 = c->work;
		o0 = evbuffer_get_length(c->pend);
		more = conn_process(c, TURN_UNITS, TURN_OUT);
		units += c->work - w0 + 1;
		if (evbuffer_get_length(c->pend) > o0)
			out += evbuffer_get_length(c->pend) - o0;
		if (more)
			runq_add(c);
		else if (c->eof)
			eof_done(c);
	}
}

static void
conn_park_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn	*c = arg;

	B->now = now_ms();
	c->park_until = 0;	/* time is up: serve it as final */
}

/* Runs a line whose body has arrived. */
static void
run_line(struct conn *c, char *line, size_t len, char *body, size_t blen)
{
	enum proto_err	e;
	char		msg[256];

	if ((e = proto_req_parse(&req, line, len, msg, sizeof msg)) != PERR_NONE) {
		conn_error(c, e, "%s", msg);
		return;
	}
	cmd_dispatch(c, &req, body, blen);
}

/*
 * A request line: run it, or, if a body follows, keep a copy of the line
 * until the body is in.  An oversized body is left to the framer to
 * swallow; it then reports PERR_BODYSIZE, answered once.
 */
static void
on_line(struct conn *c, char *line, size_t len)
{
	const struct proto_cmdinfo	*ci;
	enum proto_err			 e;
	char				 msg[256];

	e = proto_req_parse(&req, line, len, msg, sizeof msg);
	if (e == PERR_BODYSIZE && req.bodylen > SWALLOW_MAX) {
		/* Far past every limit: swallowing it would take the client's
		 * word for gigabytes.  Say so now and close. */
		conn_error(c, e, "a body of %zu bytes announced; %s takes at "
		    "most %zu; closing", req.bodylen,
		    proto_cmd_info(req.cmd)->name,
		    proto_cmd_info(req.cmd)->bodymax);
		conn_close(c);
		return;
	}
	if (e == PERR_BODYSIZE) {
		proto_in_body(&c->pin, req.bodylen,
		    proto_cmd_info(req.cmd)->bodymax);
		return;
	}
	if (e != PERR_NONE) {
		conn_error(c, e, "%s", msg);
		return;
	}
	ci = proto_cmd_info(req.cmd);
	if (ci->body == PROTO_BODY_NONE) {
		cmd_dispatch(c, &req, NULL, 0);
		return;
	}
	if (req.cmd == CMD_PUT) {
		/* A blob's chunk is written as it arrives (put_feed), not
		 * held whole. */
		blob_put_begin(c, &req);
		c->put_left = req.bodylen;
		return;
	}
	free(c->line);
	c->line = xstrndup(line, len);
	c->linelen = len;
	proto_in_body(&c->pin, req.bodylen, ci->bodymax);
}

static const char *
frame_msg(enum proto_err e)
{
	switch (e) {
	case PERR_LINE:
		return "line longer than 65536 bytes; discarded";
	case PERR_BODYSIZE:
		return "body larger than the command allows; discarded";
	case PERR_BODY:
		return "body not followed by CR LF; input skipped to next line";
	default:
		return "malformed input";
	}
}

/*
 * The body of a PUT being streamed (blob.c): hands over what has arrived,
 * then checks its terminator; after a bad one, skips to the next LF as
 * the framer would.  Returns 0 when it needs more bytes.
 */
static int
put_feed(struct conn *c)
{
	struct evbuffer_iovec	 v;
	char			*p, *nl;
	size_t			 n;

	evbuffer_peek(c->in, -1, NULL, &v, 1);
	p = v.iov_base;
	n = v.iov_len;
	if (c->put_skip) {
		if ((nl = memchr(p, '\n', n)) != NULL) {
			n = (size_t)(nl - p) + 1;
			c->put_skip = 0;
		}
		in_drain(c, n);
		return 1;
	}
	if (c->put_left > 0) {
		if (n > c->put_left)
			n = (size_t)c->put_left;
		blob_put_data(c, p, n);
		in_drain(c, n);
		c->put_left -= n;
		return 1;
	}
	if (p[0] == '\n') {
		in_drain(c, 1);
		blob_put_end(c, 1);
		return 1;
	}
	if (p[0] == '\r') {
		if (evbuffer_get_length(c->in) < 2)
			return 0;
		p = (char *)evbuffer_pullup(c->in, 2);
		if (p[1] == '\n') {
			in_drain(c, 2);
			blob_put_end(c, 1);
			return 1;
		}
	}
	blob_put_end(c, 0);
	c->put_skip = 1;
	return 1;
}

/*
 * Frames and runs buffered requests until the input runs out, the output
 * is full, or this turn's share (quantum units, outq bytes of replies) is
 * used; returns 1 in the last case, with requests left to run.  A request
 * that parks (TAKE, WAIT) stays parked only while no further input is
 * buffered.
 */
static int
conn_process(struct conn *c, uint64_t quantum, size_t outq)
{
	struct evbuffer_iovec	 v;
	struct proto_word	 tok;
	enum proto_err		 err;
	enum proto_ev		 ev;
	size_t			 avail, want, n, used;
	size_t			 out0 = evbuffer_get_length(c->pend);
	uint64_t		 work0 = c->work;
	char			*p, msg[256];
	int			 retried, more = 0;

	if (c->kind == CONN_HTTP) {
		if (!c->dead && !c->closing)
			http_input(c);
		if (!c->closing && !c->dead)
			reading(c, 1);
		return 0;
	}
	while (!c->dead && !c->closing) {
		if (evbuffer_get_length(c->out) + evbuffer_get_length(c->pend) >=
		    OUT_HIGH) {
			reading(c, 0);
			stall_arm(c, 0);
			return 0;
		}
		if ((avail = evbuffer_get_length(c->in)) == 0)
			break;
		if (c->work - work0 >= quantum ||
		    evbuffer_get_length(c->pend) - out0 >= outq) {
			more = 1;	/* the next turn */
			break;
		}
		if (c->put != NULL || c->put_skip) {
			if (!put_feed(c))
				break;	/* wait for more bytes */
			continue;
		}
		/* More input ends a parked TAKE or WAIT: its reply goes first,
		 * with what there is, then the new request runs. */
		if (c->parked)
			cmd_interrupt(c);
		evbuffer_peek(c->in, -1, NULL, &v, 1);
		p = v.iov_base;
		n = v.iov_len;
		retried = 0;
again:
		ev = proto_in_next(&c->pin, p, n, &used, &tok, &err);
		if (ev == PROTO_NEED && used == 0) {
			want = proto_in_want(&c->pin);
			if (retried || n >= avail ||
			    (want > avail && want > SIMQ_LINE_MAX + 2))
				break;	/* wait for more bytes */
			n = want < avail ? want : avail;
			p = (char *)evbuffer_pullup(c->in, (ssize_t)n);
			retried = 1;
			goto again;
		}
		switch (ev) {
		case PROTO_LINE:
			c->work++;
			on_line(c, tok.p, tok.len);
			break;
		case PROTO_BODY:
			if (c->line != NULL) {
				run_line(c, c->line, c->linelen, tok.p,
				    tok.len);
				free(c->line);
				c->line = NULL;
			}
			break;
		case PROTO_ERR:
			free(c->line);
			c->line = NULL;
			snprintf(msg, sizeof msg, "%s", frame_msg(err));
			conn_error(c, err, "%s", msg);
			break;
		case PROTO_NEED:
			break;
		}
		in_drain(c, used);
	}
	/* A parked connection is read too: its next request ends the wait. */
	if (!c->closing && !c->dead && !in_enough(c))
		reading(c, 1);
	stall_arm(c, 0);
	return more;
}

/*
 * The stall timer runs while the connection owes a request's rest (bytes
 * of a request are buffered, or a body is being swallowed) or has replies
 * waiting to be read; progress either way restarts it.  An HTTP one's
 * first deadline is fixed at the connect.
 */
static void
stall_arm(struct conn *c, int progress)
{
	struct timeval	tv;
	uint64_t	ms = B->cfg.stall_timeout_ms;
	int		waiting;

	if (c->dead)
		return;
	if (c->kind == CONN_HTTP && !c->closing)
		return;		/* the head's deadline, from accept_cb */
	waiting = evbuffer_get_length(c->in) > 0 || c->line != NULL ||
	    c->put != NULL ||
	    proto_in_want(&c->pin) != SIMQ_LINE_MAX ||
	    evbuffer_get_length(c->out) > 0;
	if (!waiting) {
		evtimer_del(c->stall_ev);
		return;
	}
	if (!progress && evtimer_pending(c->stall_ev, NULL))
		return;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(c->stall_ev, &tv);
}

static void
conn_stall_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn	*c = arg;
	int		 unread = evbuffer_get_length(c->out) > 0;

	B->now = now_ms();
	log_info("%s: closed: %s for %llu ms", c->peer, unread ?
	    "replies not read" : c->kind == CONN_HTTP ?
	    "no complete HTTP request" : "a request left half-sent",
	    (unsigned long long)(c->kind == CONN_HTTP && !c->closing ?
	    HTTP_TIMEOUT_MS : B->cfg.stall_timeout_ms));
	if (unread || c->closing) {
		/* It does not read: nothing more can be said to it. */
		c->dead = 1;
		reading(c, 0);
		mark_dirty(c);
		return;
	}
	if (c->kind == CONN_HTTP)
		http_timeout(c);
	else
		conn_error(c, PERR_LIMIT, "request incomplete after %llu ms "
		    "without progress; closing",
		    (unsigned long long)B->cfg.stall_timeout_ms);
	conn_close(c);
	stall_arm(c, 1);
}

/* Takes a parked connection back: run what it has buffered, or close it
 * if the client is done. */
void
conn_resume(struct conn *c)
{
	if (evbuffer_get_length(c->in) > 0)
		runq_add(c);
	else if (c->eof)
		eof_done(c);
}

static void
conn_write_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn	*c = arg;
	int		 n;

	B->now = now_ms();
	if ((n = evbuffer_write(c->out, fd)) < 0 && errno != EAGAIN &&
	    errno != EINTR) {
		log_debug("%s: write: %s", c->peer, strerror(errno));
		c->dead = 1;
		mark_dirty(c);
		event_del(c->wev);
		return;
	}
	if (evbuffer_get_length(c->out) == 0) {
		event_del(c->wev);
		if (c->closing) {
			c->dead = 1;
			mark_dirty(c);
			return;
		}
	}
	stall_arm(c, n > 0);
	if (evbuffer_get_length(c->out) < OUT_LOW && !c->parked &&
	    !c->closing) {
		/* Throttled no more. */
		if (evbuffer_get_length(c->in) > 0 || c->eof)
			runq_add(c);
		else
			reading(c, 1);
	}
}

/*
 * After the pass's commit: hand every connection's replies to its socket.
 * If the commit failed, the replies of this pass are replaced by errors
 * (nothing they acknowledged is durable) and the broker exits after this.
 */
void
net_after_pass(int failed, int err)
{
	struct conn	*c;

	pass_read = 0;
	while ((c = TAILQ_FIRST(&dirty)) != NULL) {
		TAILQ_REMOVE(&dirty, c, dentry);
		c->dirty = 0;
		if (failed && c->npend > 0) {
			evbuffer_drain(c->pend, evbuffer_get_length(c->pend));
			while (c->npend-- > 0)
				evbuffer_add_printf(c->out, "ERR server journal "
				    "write failed: %s; the broker is exiting\r\n",
				    strerror(err));
		}
		c->npend = 0;
		c->nearly = 0;
		c->early_len = 0;
		c->work = 0;
		evbuffer_add_buffer(c->out, c->pend);
		/* A closing connection reads nothing more: what it has
		 * buffered is let go now, not when its replies are out. */
		if (c->closing)
			in_drain(c, SIZE_MAX);
		if (c->dead) {
			conn_free(c);
			continue;
		}
		if (c->held)
			continue;	/* conn_hold_cb lets it go */
		if (evbuffer_get_length(c->out) > 0) {
			if (evbuffer_write(c->out, c->fd) < 0 &&
			    errno != EAGAIN && errno != EINTR) {
				conn_free(c);
				continue;
			}
		}
		stall_arm(c, 0);
		if (evbuffer_get_length(c->out) > 0)
			event_add(c->wev, NULL);
		else if (c->closing) {
			conn_free(c);
			continue;
		}
		if (evbuffer_get_length(c->out) >= OUT_HIGH)
			reading(c, 0);
		else if (!c->closing && !c->parked &&
		    evbuffer_get_length(c->out) < OUT_LOW &&
		    evbuffer_get_length(c->in) > 0)
			runq_add(c);	/* throttled, and drained at once */
		else if (!c->reading && !c->closing && !c->eof &&
		    evbuffer_get_length(c->out) < OUT_LOW && !in_enough(c))
			reading(c, 1);
	}
}

/*
 * The broker is about to exit on a fatal error (main.c: a journal commit
 * failed) and net_after_pass(1, err) has put every connection's last
 * replies, its ERR server lines, in its output buffer.  Exiting at once
 * would lose them: what the socket has not taken is in user space, and a
 * socket closed with unread input is reset, which throws away what its
 * send queue still holds (a pipelining client always has more on the
 * way).  So, for FATAL_FLUSH_MS at most in all, each connection's output
 * is written as its socket takes it while its input is read and dropped
 * (the peer is not kept blocked, and the receive queue is empty at the
 * exit); once written, the socket is shut for writing and waited for
 * until its send queue is empty, every byte acknowledged by the peer.
 * Nothing is run and nothing is journaled; a peer that does not read
 * holds the exit FATAL_FLUSH_MS, no longer.  Replies still in a
 * connection's pending buffer (not committed) are never sent.
 */
#define FATAL_FLUSH_MS	2000
#define FATAL_POLL_MS	10	/* send queues are looked at this often */
#define FATAL_READS	64	/* of 16 KiB, per connection and look */

enum { FF_WRITE, FF_SENT, FF_DONE };

void
net_fatal_flush(void)
{
	struct conn	 *c, **cv;
	struct pollfd	 *pfd;
	char		  sink[16384];
	unsigned char	 *st, *rdeof;
	uint64_t	  deadline, now;
	size_t		  n = 0, i, live;
	ssize_t		  r;
	int		  outq, waiting, ms, k;

	/* A connection made now would only be reset at the exit. */
	net_close_listeners();
	cv = calloc(nconns + 1, sizeof *cv);
	pfd = calloc(nconns + 1, sizeof *pfd);
	st = calloc(nconns + 1, 1);
	rdeof = calloc(nconns + 1, 1);
	if (cv == NULL || pfd == NULL || st == NULL || rdeof == NULL)
		goto out;
	TAILQ_FOREACH(c, &conns, entry)
		if (!c->dead && n < nconns)
			cv[n++] = c;
	deadline = now_ms() + FATAL_FLUSH_MS;
	for (;;) {
		live = 0;
		waiting = 0;
		for (i = 0; i < n; i++) {
			c = cv[i];
			pfd[i].fd = -1;
			pfd[i].events = 0;
			/* A bounded read a look: a peer that sends as fast
			 * as this reads must not keep it past the deadline. */
			for (k = 0; k < FATAL_READS && st[i] != FF_DONE &&
			    !rdeof[i]; k++) {
				r = read(c->fd, sink, sizeof sink);
				if (r > 0 || (r < 0 && errno == EINTR))
					continue;
				if (r == 0)
					rdeof[i] = 1;
				else if (errno != EAGAIN)
					st[i] = FF_DONE;	/* reset */
				break;
			}
			while (st[i] == FF_WRITE &&
			    evbuffer_get_length(c->out) > 0) {
				r = evbuffer_write(c->out, c->fd);
				if (r > 0 || (r < 0 && errno == EINTR))
					continue;
				if (r < 0 && errno != EAGAIN)
					st[i] = FF_DONE;
				break;
			}
			if (st[i] == FF_WRITE &&
			    evbuffer_get_length(c->out) == 0) {
				shutdown(c->fd, SHUT_WR);
				st[i] = FF_SENT;
			}
			if (st[i] == FF_SENT && (ioctl(c->fd, SIOCOUTQ,
			    &outq) < 0 || outq <= 0))
				st[i] = FF_DONE;
			if (st[i] == FF_DONE)
				continue;
			live++;
			if (st[i] == FF_SENT) {
				/* Only time tells when the peer has acknowledged
				 * it all; its input is read on each look. */
				waiting = 1;
				continue;
			}
			pfd[i].fd = c->fd;
			pfd[i].events = POLLOUT | (rdeof[i] ? 0 : POLLIN);
		}
		if (live == 0 || (now = now_ms()) >= deadline)
			break;
		ms = deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline -
		    now);
		if (waiting && ms > FATAL_POLL_MS)
			ms = FATAL_POLL_MS;
		poll(pfd, (nfds_t)n, ms);
	}
	if (live > 0)
		log_warn("exiting with the replies of %zu connection%s not "
		    "all read by their clients", live, live == 1 ? "" : "s");
out:
	free(cv);
	free(pfd);
	free(st);
	free(rdeof);
}

/* Listens on addr:port (every address it resolves to) for kind
 * (CONN_PROTO, CONN_HTTP). */
int
net_listen(const char *addr, int port, int kind)
{
	struct addrinfo	 hints, *res, *ai;
	char		 serv[16];
	int		 fd, one = 1, rc, before = nlisteners;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(serv, sizeof serv, "%d", port);
	if ((rc = getaddrinfo(addr, serv, &hints, &res)) != 0) {
		log_warn("listen: %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL && nlisteners < LISTENERS_MAX;
	    ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, 1024) < 0) {
			log_warn("listen: %s port %d: %s", addr, port,
			    strerror(errno));
			close(fd);
			continue;
		}
		listeners[nlisteners].ev = event_new(B->base, fd,
		    EV_READ | EV_PERSIST, accept_cb, (void *)(intptr_t)kind);
		listeners[nlisteners].kind = kind;
		listeners[nlisteners].on = 0;
		nlisteners++;
	}
	freeaddrinfo(res);
	listeners_update();
	return nlisteners > before ? 0 : -1;
}

void
net_close_listeners(void)
{
	int	i;

	for (i = 0; i < nlisteners; i++) {
		close(event_get_fd(listeners[i].ev));
		event_free(listeners[i].ev);
	}
	nlisteners = 0;
	if (resume_ev != NULL) {
		event_free(resume_ev);
		resume_ev = NULL;
	}
}

/* At exit: flush what can be flushed without blocking, then free. */
void
conns_free_all(void)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&conns)) != NULL) {
		if (evbuffer_get_length(c->out) > 0)
			evbuffer_write(c->out, c->fd);
		conn_free(c);
	}
}
