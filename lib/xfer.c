/*
 * xfer.c: HAVE, PUT and GET over a blocking connection; see xfer.h.
 *
 * Every wait is bounded (SO_SNDTIMEO, poll on reads), so a broker that
 * stops answering is an error after timeout_ms, never a hang.  A
 * connection that fails (reset, closed, timed out) is opened again with
 * a short backoff for up to retry_ms, and the transfer resumes; an ERR
 * from the broker is final, except the "held N" of a PUT at the wrong
 * offset, which makes the upload ask HAVE again and go on from there.
 */
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "proto.h"
#include "xfer.h"
#include "xmalloc.h"

#define XFER_CONNECT_MS		5000
#define XFER_REPLY_MS		300000	/* the last PUT waits for an fsync */
#define XFER_RETRY_MS		60000
#define XFER_LINE_MAX		(64u << 10)

static void	xfer_fail(struct xfer *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static void
xfer_fail(struct xfer *x, int lost, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(x->err, sizeof x->err, fmt, ap);
	va_end(ap);
	x->lost = lost;
	x->code[0] = '\0';
}

static const char *
lc_strerror(int e)
{
	static char	buf[128];

	snprintf(buf, sizeof buf, "%s", strerror(e));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

struct xfer *
xfer_new(const char *host, const char *port, const char *token)
{
	struct xfer	*x = xcalloc(1, sizeof *x);

	x->host = xstrdup(host);
	x->port = xstrdup(port);
	x->token = token != NULL ? xstrdup(token) : NULL;
	x->addr = strchr(host, ':') != NULL ? xprintf("[%s]:%s", host, port) :
	    xprintf("%s:%s", host, port);
	x->fd = -1;
	x->timeout_ms = XFER_REPLY_MS;
	x->retry_ms = XFER_RETRY_MS;
	x->chunk = xmalloc(XFER_CHUNK);
	return x;
}

static void
xfer_disconnect(struct xfer *x)
{
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
	x->inoff = x->inlen = 0;
}

void
xfer_free(struct xfer *x)
{
	if (x == NULL)
		return;
	xfer_disconnect(x);
	free(x->host);
	free(x->port);
	if (x->token != NULL)
		explicit_bzero(x->token, strlen(x->token));
	free(x->token);
	free(x->addr);
	free(x->in);
	free(x->chunk);
	free(x);
}

static int
xfer_send(struct xfer *x, const void *p, size_t len, int more)
{
	const char	*s = p;
	ssize_t		 n;

	while (len > 0) {
		n = send(x->fd, s, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			xfer_fail(x, 1, "lost the connection to the broker at "
			    "%s (%s)", x->addr, errno == EAGAIN ? "no progress "
			    "for minutes" : lc_strerror(errno));
			return -1;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * sendfile(2) has no MSG_NOSIGNAL: a broker gone mid-chunk would kill
 * the program with SIGPIPE (simq does not ignore it: `simq ... | head`
 * should end quietly).  So SIGPIPE is blocked around the call, and one
 * it raised is taken back before it is unblocked: the error says it.
 */
static ssize_t
xfer_sendfile(int out, int in, off_t *off, size_t len)
{
	struct timespec	zero = { 0, 0 };
	sigset_t	pipe, old, pending;
	ssize_t		n;
	int		e;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigprocmask(SIG_BLOCK, &pipe, &old);
	n = sendfile(out, in, off, len);
	e = errno;
	if (!sigismember(&old, SIGPIPE) && sigpending(&pending) == 0 &&
	    sigismember(&pending, SIGPIPE))
		(void)sigtimedwait(&pipe, NULL, &zero);
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return n;
}

/* Sends len bytes of fd from off: sendfile where it works. */
static int
xfer_send_file(struct xfer *x, int fd, uint64_t off, size_t len)
{
	off_t	o = (off_t)off;
	ssize_t	n;
	size_t	left = len;

	while (left > 0) {
		n = xfer_sendfile(x->fd, fd, &o, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == ENOSYS))
			break;
		if (n < 0) {
			xfer_fail(x, 1, "lost the connection to the broker at "
			    "%s (%s)", x->addr, errno == EAGAIN ? "no progress "
			    "for minutes" : lc_strerror(errno));
			return -1;
		}
		if (n == 0) {
			xfer_fail(x, 0, "the file got shorter while it was "
			    "sent");
			return -1;
		}
		left -= (size_t)n;
	}
	while (left > 0) {
		size_t	want = left < XFER_CHUNK ? left : XFER_CHUNK;
		ssize_t	r = pread(fd, x->chunk, want, o);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			xfer_fail(x, 0, r < 0 ? "cannot read the file: %s" :
			    "the file got shorter while it was sent%s",
			    r < 0 ? strerror(errno) : "");
			return -1;
		}
		if (xfer_send(x, x->chunk, (size_t)r, 1) < 0)
			return -1;
		o += r;
		left -= (size_t)r;
	}
	return 0;
}

/* Reads more input (at least one byte) within timeout_ms. */
static int
xfer_fill(struct xfer *x)
{
	struct pollfd	pfd;
	ssize_t		n;
	int		r;

	if (x->inoff == x->inlen)
		x->inoff = x->inlen = 0;
	if (x->incap - x->inlen < 65536) {
		if (x->inoff > 0) {
			memmove(x->in, x->in + x->inoff, x->inlen - x->inoff);
			x->inlen -= x->inoff;
			x->inoff = 0;
		}
		if (x->incap - x->inlen < 65536) {
			x->incap = x->incap ? x->incap * 2 : 131072;
			x->in = xrealloc(x->in, x->incap);
		}
	}
	/* ACK at once: a broker that keeps a small send buffer (one
	 * loopback segment) otherwise waits for each delayed ACK. */
	r = 1;
	(void)setsockopt(x->fd, IPPROTO_TCP, TCP_QUICKACK, &r, sizeof r);
	pfd.fd = x->fd;
	pfd.events = POLLIN;
	while ((r = poll(&pfd, 1, x->timeout_ms)) < 0 && errno == EINTR)
		;
	if (r == 0) {
		xfer_fail(x, 1, "the broker at %s did not answer within %d s",
		    x->addr, x->timeout_ms / 1000);
		return -1;
	}
	while ((n = read(x->fd, x->in + x->inlen, x->incap - x->inlen)) < 0 &&
	    errno == EINTR)
		;
	if (n <= 0) {
		xfer_fail(x, 1, n < 0 ? "lost the connection to the broker at "
		    "%s (%s)" : "the broker at %s closed the connection%s",
		    x->addr, n < 0 ? lc_strerror(errno) : "");
		return -1;
	}
	x->inlen += (size_t)n;
	return 0;
}

/* The next reply line, NUL-terminated, without CR LF, in buf. */
static int
xfer_line(struct xfer *x, char *buf, size_t len)
{
	char	*nl;
	size_t	 n;

	for (;;) {
		nl = x->inlen > x->inoff ? memchr(x->in + x->inoff, '\n',
		    x->inlen - x->inoff) : NULL;
		if (nl != NULL)
			break;
		if (x->inlen - x->inoff > XFER_LINE_MAX) {
			xfer_fail(x, 1, "the broker at %s sent a line too long",
			    x->addr);
			return -1;
		}
		if (xfer_fill(x) < 0)
			return -1;
	}
	n = (size_t)(nl - (x->in + x->inoff));
	if (n > 0 && x->in[x->inoff + n - 1] == '\r')
		n--;
	if (n >= len)
		n = len - 1;
	memcpy(buf, x->in + x->inoff, n);
	buf[n] = '\0';
	x->inoff = (size_t)(nl - x->in) + 1;
	return 0;
}

/* An ERR line: says what the broker said, as a refusal. */
static void
xfer_refused(struct xfer *x, const char *line)
{
	const char	*code = line + 4, *msg;
	size_t		 clen;

	clen = strcspn(code, " ");
	msg = code[clen] == ' ' ? code + clen + 1 : "";
	xfer_fail(x, 0, "%s", *msg ? msg : "(no reason given)");
	snprintf(x->code, sizeof x->code, "%.*s", (int)clen, code);
}

static int
xfer_connect_once(struct xfer *x)
{
	struct addrinfo	 hints, *res, *ai;
	struct pollfd	 pfd;
	struct timeval	 tv;
	socklen_t	 sl;
	char		 line[1024], *hello, *enc;
	int		 fd = -1, e = 0, one = 1, gai, fl, n;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(x->host, x->port, &hints, &res)) != 0) {
		xfer_fail(x, 1, "cannot reach the broker at %s (%s)", x->addr,
		    gai_strerror(gai));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol)) < 0) {
			e = errno;
			continue;
		}
		fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			while ((n = poll(&pfd, 1, XFER_CONNECT_MS)) < 0 &&
			    errno == EINTR)
				;
			sl = sizeof e;
			if (n == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e,
			    &sl) == 0 && e == 0) {
				fcntl(fd, F_SETFL, fl);
				break;
			}
			if (n == 0)
				e = ETIMEDOUT;
		} else
			e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		xfer_fail(x, 1, "cannot reach the broker at %s (%s)", x->addr,
		    lc_strerror(e));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	tv.tv_sec = x->timeout_ms / 1000;
	tv.tv_usec = (x->timeout_ms % 1000) * 1000;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	x->fd = fd;
	x->inoff = x->inlen = 0;
	if (x->token != NULL) {
		enc = xmalloc(PROTO_ENC_MAX(strlen(x->token)) + 1);
		enc[proto_encode(enc, x->token, strlen(x->token))] = '\0';
		hello = xprintf("HELLO 1 %s\r\n", enc);
		free(enc);
	} else
		hello = xstrdup("HELLO 1\r\n");
	n = xfer_send(x, hello, strlen(hello), 0);
	explicit_bzero(hello, strlen(hello));
	free(hello);
	if (n < 0 || xfer_line(x, line, sizeof line) < 0) {
		xfer_disconnect(x);
		return -1;
	}
	if (strncmp(line, "OK", 2) != 0) {
		if (strncmp(line, "ERR ", 4) == 0)
			xfer_refused(x, line);
		else
			xfer_fail(x, 0, "unexpected reply to HELLO: '%.60s'",
			    line);
		xfer_disconnect(x);
		return -1;
	}
	return 0;
}

/*
 * Connected, or connects: after a loss, tries again with a short backoff
 * for up to retry_ms from *since (0: now is the start).  A refusal (a
 * wrong token) is final.
 */
static int
xfer_ensure(struct xfer *x, uint64_t *since)
{
	uint64_t	wait = 100, start;

	if (x->fd >= 0)
		return 0;
	if (*since == 0)
		*since = mono_ms();
	start = *since;
	for (;;) {
		if (xfer_connect_once(x) == 0) {
			*since = 0;
			return 0;
		}
		if (!x->lost || mono_ms() - start >= (uint64_t)x->retry_ms)
			return -1;
		sleep_ms(wait);
		if (wait < 1000)
			wait *= 2;
	}
}

/* After a failure: whether to reconnect and go on (a lost connection,
 * within retry_ms). */
static int
xfer_again(struct xfer *x, uint64_t *since)
{
	if (!x->lost)
		return 0;
	xfer_disconnect(x);
	if (*since == 0) {
		*since = mono_ms();
		if (x->note != NULL) {
			char	msg[900];

			snprintf(msg, sizeof msg, "%s; reconnecting for up to "
			    "%d s", x->err, x->retry_ms / 1000);
			x->note(x->note_arg, msg);
		}
	}
	x->reconnects++;
	return 1;
}

static int
xfer_have_once(struct xfer *x, const char (*hex)[SHA256_HEX_LEN + 1],
    size_t n, int64_t *held)
{
	char		 line[XFER_LINE_MAX], *p, *tok, *save;
	size_t		 i, k, m;
	uint64_t	 v;

	for (i = 0; i < n; i += m) {
		m = n - i < XFER_HAVE_MAX ? n - i : XFER_HAVE_MAX;
		p = line;
		p += sprintf(p, "HAVE");
		for (k = 0; k < m; k++)
			p += sprintf(p, " %s", hex[i + k]);
		p += sprintf(p, "\r\n");
		if (xfer_send(x, line, (size_t)(p - line), 0) < 0 ||
		    xfer_line(x, line, sizeof line) < 0)
			return -1;
		if (strncmp(line, "ERR ", 4) == 0) {
			xfer_refused(x, line);
			return -1;
		}
		if (strncmp(line, "OK", 2) != 0) {
			xfer_fail(x, 0, "unexpected reply to HAVE: '%.60s'",
			    line);
			return -1;
		}
		tok = strtok_r(line + 2, " ", &save);
		for (k = 0; k < m; k++, tok = strtok_r(NULL, " ", &save)) {
			if (tok != NULL && strcmp(tok, "yes") == 0)
				held[i + k] = XFER_STORED;
			else if (tok != NULL && proto_parse_u64(tok,
			    strlen(tok), INT64_MAX, &v) == 0)
				held[i + k] = (int64_t)v;
			else {
				xfer_fail(x, 0, "unexpected reply to HAVE: a "
				    "word missing or not a number");
				return -1;
			}
		}
	}
	return 0;
}

int
xfer_have(struct xfer *x, const char (*hex)[SHA256_HEX_LEN + 1], size_t n,
    int64_t *held)
{
	uint64_t	since = 0;

	for (;;) {
		if (xfer_ensure(x, &since) < 0)
			return -1;
		if (xfer_have_once(x, hex, n, held) == 0)
			return 0;
		if (!xfer_again(x, &since))
			return -1;
	}
}

/*
 * One pass of an upload from what the broker holds.  Returns 1 when the
 * blob is stored, 0 to ask HAVE again (the broker held another offset
 * than we thought), -1 on failure.
 */
static int
xfer_upload_pass(struct xfer *x, int fd, const char *hex, uint64_t size,
    xfer_progress_fn progress, void *arg, int64_t *from)
{
	const char	(*one)[SHA256_HEX_LEN + 1] =
	    (const char (*)[SHA256_HEX_LEN + 1])hex;
	char		 line[1024];
	int64_t		 held;
	uint64_t	 next, v;
	size_t		 n;
	int		 out = 0, stored = 0, again = 0, refused = 0;
	int		 sent_empty = 0;

	if (xfer_have_once(x, one, 1, &held) < 0)
		return -1;
	if (held == XFER_STORED) {
		if (progress != NULL)
			progress(arg, size, size);
		return 1;
	}
	if ((uint64_t)held > size) {
		xfer_fail(x, 0, "the broker holds %lld bytes of a blob of %llu",
		    (long long)held, (unsigned long long)size);
		return -1;
	}
	next = (uint64_t)held;
	*from = held;
	for (;;) {
		while (!refused && out < XFER_WINDOW && (next < size ||
		    (size == 0 && !sent_empty))) {
			n = size - next < XFER_CHUNK ? (size_t)(size - next) :
			    XFER_CHUNK;
			snprintf(line, sizeof line, "PUT %s %llu %llu %zu\r\n",
			    hex, (unsigned long long)size,
			    (unsigned long long)next, n);
			if (xfer_send(x, line, strlen(line), n > 0) < 0 ||
			    (n > 0 && xfer_send_file(x, fd, next, n) < 0) ||
			    xfer_send(x, "\r\n", 2, 0) < 0)
				return -1;
			next += n;
			out++;
			sent_empty = 1;
		}
		if (out == 0)
			break;
		if (xfer_line(x, line, sizeof line) < 0)
			return -1;
		out--;
		if (strcmp(line, "OK stored") == 0) {
			stored = 1;
			if (progress != NULL)
				progress(arg, size, size);
		} else if (strncmp(line, "OK ", 3) == 0 &&
		    proto_parse_u64(line + 3, strlen(line + 3), size, &v) == 0) {
			if (progress != NULL)
				progress(arg, v, size);
		} else if (strncmp(line, "ERR ", 4) == 0) {
			if (!refused) {
				xfer_refused(x, line);
				/* A PUT at an offset the broker does not
				 * hold: ask again where it is. */
				if (strcmp(x->code, "bad-request") == 0 &&
				    strstr(line, "held ") != NULL)
					again = 1;
			}
			refused = 1;
		} else {
			xfer_fail(x, 0, "unexpected reply to PUT: '%.60s'",
			    line);
			return -1;
		}
		if (stored && out == 0)
			break;
	}
	if (refused)
		return again ? 0 : -1;
	if (stored)
		return 1;
	xfer_fail(x, 0, "the broker did not say the blob was stored");
	return -1;
}

int
xfer_upload(struct xfer *x, int fd, const char *hex, uint64_t size,
    xfer_progress_fn progress, void *arg)
{
	uint64_t	since = 0;
	int64_t		from = -1, last = -1;
	int		r, rehave = 0;

	for (;;) {
		if (xfer_ensure(x, &since) < 0)
			return -1;
		r = xfer_upload_pass(x, fd, hex, size, progress, arg, &from);
		if (r == 1)
			return 0;
		/* Another upload of the same blob is under way (another
		 * client, or a worker collecting the same file): go on from
		 * where the broker is, while it gets somewhere. */
		if (r == 0 && from > last) {
			last = from;
			rehave = 0;
			continue;
		}
		if (r == 0 && ++rehave < 5)
			continue;
		if (r == 0 || !xfer_again(x, &since))
			return -1;
	}
}

/* Reads a DATA reply's n bytes into x->chunk. */
static int
xfer_data(struct xfer *x, size_t n)
{
	size_t	got = 0, have;
	char	crlf[8];

	while (got < n) {
		if (x->inlen == x->inoff && n - got >= 65536) {
			/* Straight into the chunk: one copy less. */
			ssize_t	r;
			int	one = 1;

			(void)setsockopt(x->fd, IPPROTO_TCP, TCP_QUICKACK,
			    &one, sizeof one);
			r = recv(x->fd, x->chunk + got, n - got, MSG_DONTWAIT);
			if (r > 0) {
				got += (size_t)r;
				continue;
			}
			if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				xfer_fail(x, 1, r == 0 ? "the broker at %s "
				    "closed the connection%s" : "lost the "
				    "connection to the broker at %s (%s)",
				    x->addr, r == 0 ? "" : lc_strerror(errno));
				return -1;
			}
		}
		if (x->inlen == x->inoff && xfer_fill(x) < 0)
			return -1;
		have = x->inlen - x->inoff;
		if (have > n - got)
			have = n - got;
		memcpy(x->chunk + got, x->in + x->inoff, have);
		x->inoff += have;
		got += have;
	}
	return xfer_line(x, crlf, sizeof crlf);
}

static int
xfer_pwrite(struct xfer *x, int fd, const char *p, size_t n, uint64_t off)
{
	ssize_t	w;

	while (n > 0) {
		w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			xfer_fail(x, 0, "cannot write the file: %s",
			    strerror(errno));
			snprintf(x->code, sizeof x->code, "%s", errno ==
			    ENOSPC || errno == EDQUOT ? "nospace" : "write");
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/*
 * One pass of a download from *done; the digest goes on in ctx.  GETs
 * are pipelined XFER_WINDOW deep; each is expected to answer all it was
 * asked for (the broker answers up to MAX): a shorter answer before the
 * end drops the GETs behind it and the pass goes on from there.
 */
static int
xfer_download_pass(struct xfer *x, const char *hex, uint64_t size, int fd,
    uint64_t *done, struct sha256 *ctx, xfer_progress_fn progress,
    void *arg)
{
	char		line[1024];
	uint64_t	next = *done, v, want, ask[XFER_WINDOW];
	int		out = 0, head = 0, asked_empty = 0, skip = 0;

	for (;;) {
		while (!skip && out < XFER_WINDOW && (next < size ||
		    (size == 0 && !asked_empty))) {
			snprintf(line, sizeof line, "GET %s %llu %u\r\n", hex,
			    (unsigned long long)next, XFER_CHUNK);
			if (xfer_send(x, line, strlen(line), 0) < 0)
				return -1;
			ask[(head + out) % XFER_WINDOW] = next;
			next += XFER_CHUNK;
			out++;
			asked_empty = 1;
		}
		if (out == 0)
			break;
		if (xfer_line(x, line, sizeof line) < 0)
			return -1;
		if (strncmp(line, "ERR ", 4) == 0) {
			xfer_refused(x, line);
			return -1;
		}
		if (strncmp(line, "DATA ", 5) != 0 || proto_parse_u64(line + 5,
		    strlen(line + 5), XFER_CHUNK, &v) < 0) {
			xfer_fail(x, 0, "unexpected reply to GET: '%.60s'",
			    line);
			return -1;
		}
		if (xfer_data(x, (size_t)v) < 0)
			return -1;
		out--;
		if (skip || ask[head] != *done) {
			head = (head + 1) % XFER_WINDOW;
			if (out == 0) {
				skip = 0;
				next = *done;
			}
			continue;
		}
		head = (head + 1) % XFER_WINDOW;
		want = size - *done < XFER_CHUNK ? size - *done : XFER_CHUNK;
		if (v == 0 && want > 0) {
			xfer_fail(x, 0, "the broker's copy is shorter (%llu "
			    "bytes) than its size (%llu)",
			    (unsigned long long)*done,
			    (unsigned long long)size);
			snprintf(x->code, sizeof x->code, "short");
			return -1;
		}
		if (v > want) {
			xfer_fail(x, 0, "the broker sent more bytes than the "
			    "blob's size (%llu)", (unsigned long long)size);
			return -1;
		}
		if (xfer_pwrite(x, fd, x->chunk, (size_t)v, *done) < 0)
			return -1;
		sha256_update(ctx, x->chunk, (size_t)v);
		*done += v;
		if (progress != NULL)
			progress(arg, *done, size);
		if (v < want && out > 0)
			skip = 1;	/* the GETs behind it are misaligned */
		else if (v < want)
			next = *done;
	}
	if (*done != size) {
		xfer_fail(x, 0, "the broker sent %llu bytes of %llu",
		    (unsigned long long)*done, (unsigned long long)size);
		return -1;
	}
	return 0;
}

int
xfer_download(struct xfer *x, const char *hex, uint64_t size, int fd,
    xfer_progress_fn progress, void *arg)
{
	struct sha256	ctx;
	unsigned char	d[SHA256_LEN];
	char		got[SHA256_HEX_LEN + 1];
	uint64_t	since = 0, done = 0;

	sha256_init(&ctx);
	for (;;) {
		if (xfer_ensure(x, &since) < 0)
			goto fail;
		if (xfer_download_pass(x, hex, size, fd, &done, &ctx, progress,
		    arg) == 0)
			break;
		if (!xfer_again(x, &since))
			goto fail;
	}
	sha256_final(&ctx, d);
	sha256_hex(d, got);
	if (strcmp(got, hex) != 0) {
		xfer_fail(x, 0, "blob %.12s is corrupt: the bytes received "
		    "hash to %.12s", hex, got);
		snprintf(x->code, sizeof x->code, "corrupt");
		return -1;
	}
	return 0;
fail:
	sha256_abandon(&ctx);
	return -1;
}
