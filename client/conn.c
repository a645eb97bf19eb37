/*
 * conn.c: one blocking connection to the broker.
 *
 * The client asks, waits for the answer, and prints it, so plain blocking
 * sockets do: requests are written whole, replies are read through a small
 * buffer, and every wait is bounded by poll() so a broker that stops
 * answering is reported instead of hanging a script forever.  Any failure
 * to reach or talk to the broker ends the program with status 2 and one
 * line that says where it tried and what to check.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simq.h"

/* Connecting to a live host on a LAN takes milliseconds; a host that is
 * down never answers, and a script should learn that in seconds. */
#define CONN_CONNECT_MS		5000

/* A reply the broker sends at once; WAIT adds its own wait on top.  A
 * million-job BATCH is acknowledged after one fsync, well within this. */
#define CONN_REPLY_MS		120000

/* The longest reply line accepted: an item holds one job's command
 * (at most a 64 KiB request line, encoded again) and its keys. */
#define CONN_LINE_MAX		(4u << 20)

/* The open connection: the program exits through die() with it open, and
 * this keeps it reachable for LeakSanitizer at that moment. */
static struct conn	*conn_live;

/* Why the connection failed, for a caller that reconnects. */
static char		 conn_why[512];

static int	conn_lost(int, const char *, ...) PRINTFLIKE(2, 3);

/*
 * The connection failed, or could not be made.  Soft (a caller that
 * reconnects, like simq wait): remembers why and returns -1.  Else says
 * why and exits 2.
 */
static int
conn_lost(int soft, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(conn_why, sizeof conn_why, fmt, ap);
	va_end(ap);
	if (!soft)
		die(EXIT_USAGE, "%s", conn_why);
	return -1;
}

const char *
conn_error(void)
{
	return conn_why;
}

/* strerror() in lower case, to sit inside a sentence. */
static const char *
conn_strerror(int e)
{
	static char	buf[128];

	snprintf(buf, sizeof buf, "%s", strerror(e));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

/* Connects within CONN_CONNECT_MS.  Returns the socket, or -1 with
 * errno set. */
static int
conn_connect_one(const struct addrinfo *ai)
{
	struct pollfd	pfd;
	socklen_t	len;
	int		fd, fl, e, n;

	if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	    ai->ai_protocol)) < 0)
		return -1;
	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		while ((n = poll(&pfd, 1, CONN_CONNECT_MS)) < 0 &&
		    errno == EINTR)
			;
		if (n == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		len = sizeof e;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			goto fail;
		if (e != 0) {
			errno = e;
			goto fail;
		}
	}
	fcntl(fd, F_SETFL, fl);
	n = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &n, sizeof n);
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/*
 * Connects to addr and opens a session with HELLO (and the token, if
 * any).  On failure prints why and exits 2; but with soft, a broker that
 * cannot be reached (not a bad address or a refused token) makes it
 * return NULL, and conn_error() says why.
 */
struct conn *
conn_open(const char *addr, const char *token, int soft)
{
	struct addrinfo	 hints, *res, *ai;
	struct conn	*c;
	struct reply	*r;
	struct buf	 b;
	char		*host, *port;
	int		 fd = -1, e = 0, gai;

	if (server_split(addr, &host, &port) < 0)
		die(EXIT_USAGE, "bad broker address '%s': %s", addr,
		    SERVER_FORMS);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0) {
		free(host);
		free(port);
		conn_lost(soft, "cannot reach the broker at %s (%s); check -s "
		    "or SIMQ_SERVER", addr, gai_strerror(gai));
		return NULL;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		if ((fd = conn_connect_one(ai)) < 0)
			e = errno;
	freeaddrinfo(res);
	free(host);
	free(port);
	if (fd < 0) {
		if (e == ETIMEDOUT)
			conn_lost(soft, "cannot reach the broker at %s (no "
			    "answer within %ds); is the host up and the port "
			    "open?", addr, CONN_CONNECT_MS / 1000);
		else
			conn_lost(soft, "cannot reach the broker at %s (%s); "
			    "is simqd running?", addr, conn_strerror(e));
		return NULL;
	}
	c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->addr = xstrdup(addr);
	c->timeout_ms = CONN_REPLY_MS;
	c->soft = soft;
	conn_live = c;

	buf_init(&b);
	req_raw(&b, "HELLO 1");
	if (token != NULL)
		req_word(&b, token);
	r = conn_request(c, &b);
	buf_free(&b);
	if (r == NULL) {
		conn_close(c);
		return NULL;
	}
	if (r->kind == REPLY_ERR && (r->err == PERR_AUTH ||
	    r->err == PERR_VERSION)) {
		char msg[256];
		enum proto_err code = r->err;
		snprintf(msg, sizeof msg, "%s", r->errmsg);
		reply_free(r);
		conn_close(c);
		if (code == PERR_AUTH)
			die(EXIT_USAGE, "the broker at %s refused the token "
			    "(%s); set SIMQ_TOKEN or --token-file to the token "
			    "simqd was started with", addr, msg);
		die(EXIT_USAGE, "the broker at %s does not speak this simq's "
		    "protocol (%s); use simq and simqd of the same release",
		    addr, msg);
	}
	if (r->kind != REPLY_OK)
		conn_die_reply(c, r, NULL);
	reply_free(r);
	return c;
}

void
conn_close(struct conn *c)
{
	if (c == NULL)
		return;
	if (conn_live == c)
		conn_live = NULL;
	close(c->fd);
	free(c->in);
	free(c->addr);
	free(c);
}

/* Returns 0, or -1 if the connection was lost (soft only). */
int
conn_send(struct conn *c, const void *p, size_t len)
{
	const char	*s = p;
	ssize_t		 n;

	while (len > 0) {
		/* MSG_NOSIGNAL: a broker that went away is an error to
		 * report, not a SIGPIPE. */
		if ((n = send(c->fd, s, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return conn_lost(c->soft, "lost the connection to the "
			    "broker at %s (%s)", c->addr, conn_strerror(errno));
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads more bytes into the buffer, waiting at most the reply timeout.
 * Returns 0, or -1 if the connection was lost (soft only). */
static int
conn_fill(struct conn *c, size_t want)
{
	struct pollfd	pfd;
	ssize_t		n;
	int		r;

	if (c->inoff > 0 && c->inoff == c->inlen)
		c->inoff = c->inlen = 0;
	if (c->incap - c->inlen < want) {
		if (c->inoff > 0) {
			memmove(c->in, c->in + c->inoff, c->inlen - c->inoff);
			c->inlen -= c->inoff;
			c->inoff = 0;
		}
		while (c->incap - c->inlen < want)
			c->incap = c->incap ? c->incap * 2 : 65536;
		c->in = xrealloc(c->in, c->incap);
	}
	pfd.fd = c->fd;
	pfd.events = POLLIN;
	while ((r = poll(&pfd, 1, c->timeout_ms)) < 0 && errno == EINTR)
		;
	if (r == 0) {
		char d[FMT_MAX];
		return conn_lost(c->soft, "the broker at %s did not answer "
		    "within %s", c->addr, fmt_duration(d,
		    (uint64_t)c->timeout_ms));
	}
	while ((n = read(c->fd, c->in + c->inlen, c->incap - c->inlen)) < 0 &&
	    errno == EINTR)
		;
	if (n < 0)
		return conn_lost(c->soft, "lost the connection to the broker "
		    "at %s (%s)", c->addr, conn_strerror(errno));
	if (n == 0)
		return conn_lost(c->soft, "the broker at %s closed the "
		    "connection", c->addr);
	c->inlen += (size_t)n;
	return 0;
}

/* One line, without its CR LF, in a new NUL-terminated string; NULL if
 * the connection was lost (soft only). */
static char *
conn_line(struct conn *c)
{
	char	*nl, *start;
	size_t	 len;

	for (;;) {
		nl = c->in == NULL ? NULL : memchr(c->in + c->inoff, '\n',
		    c->inlen - c->inoff);
		if (nl != NULL)
			break;
		if (c->inlen - c->inoff > CONN_LINE_MAX)
			die(EXIT_USAGE, "the broker at %s sent a line longer "
			    "than %u bytes", c->addr, CONN_LINE_MAX);
		if (conn_fill(c, 4096) < 0)
			return NULL;
	}
	start = c->in + c->inoff;
	len = (size_t)(nl - start);
	c->inoff += len + 1;
	if (len > 0 && start[len - 1] == '\r')
		len--;
	return xstrndup(start, len);
}

/* The next reply; NULL if the connection was lost (soft only).  The
 * caller frees it with reply_free(). */
struct reply *
conn_read(struct conn *c)
{
	struct reply	*r;
	char		*line;
	size_t		 i, have, nparsed = 0;

	if ((line = conn_line(c)) == NULL)
		return NULL;
	r = xcalloc(1, sizeof *r);
	if (reply_parse_line(r, line) < 0)
		die(EXIT_USAGE, "the broker at %s sent a reply this simq does "
		    "not understand: '%.60s'", c->addr, line);
	if (r->kind == REPLY_ITEMS) {
		r->items = xreallocarray(NULL, r->nitems ? r->nitems : 1,
		    sizeof *r->items);
		for (i = 0; i < r->nitems; i++) {
			if ((line = conn_line(c)) == NULL)
				goto lost;
			item_parse(&r->items[i], line);
			nparsed++;
		}
	} else if (r->kind == REPLY_DATA) {
		r->data = xmalloc(r->datalen + 1);
		for (i = 0; i < r->datalen; i += have) {
			if (c->inlen == c->inoff && conn_fill(c, 65536) < 0)
				goto lost;
			have = c->inlen - c->inoff;
			if (have > r->datalen - i)
				have = r->datalen - i;
			memcpy(r->data + i, c->in + c->inoff, have);
			c->inoff += have;
		}
		r->data[r->datalen] = '\0';
		/* The CR LF after the bytes. */
		if ((line = conn_line(c)) == NULL)
			goto lost;
		free(line);
	}
	return r;
lost:
	r->nitems = nparsed;	/* the items to free */
	reply_free(r);
	return NULL;
}

/* Sends the request in b (ended with req_end here) and reads its
 * reply; NULL if the connection was lost (soft only). */
struct reply *
conn_request(struct conn *c, struct buf *b)
{
	req_end(b);
	if (conn_send(c, b->p, b->len) < 0)
		return NULL;
	return conn_read(c);
}

struct reply *
conn_simple(struct conn *c, const char *line)
{
	struct buf	 b;
	struct reply	*r;

	buf_init(&b);
	req_raw(&b, line);
	r = conn_request(c, &b);
	buf_free(&b);
	return r;
}

/* An error reply the caller has no better words for: says what the
 * broker said, and exits 2. */
void
conn_die_reply(struct conn *c, const struct reply *r, const char *what)
{
	if (r->kind != REPLY_ERR)
		die(EXIT_USAGE, "unexpected reply from the broker at %s: "
		    "'%.60s'", c->addr, r->line);
	if (r->err == PERR_SERVER)
		die(EXIT_USAGE, "the broker at %s failed: %s; it restarts from "
		    "its journal, try again", c->addr, r->errmsg);
	if (what != NULL)
		die(EXIT_USAGE, "%s: %s", what, r->errmsg);
	die(EXIT_USAGE, "%s", r->errmsg);
}
