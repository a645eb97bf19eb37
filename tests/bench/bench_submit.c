/*
 * bench_submit.c: a fast simq client for the benchmarks (tests/bench/run.sh).
 *
 * One connection, one non-blocking socket, one poll() loop that keeps
 * WINDOW requests outstanding: it writes requests while fewer than WINDOW
 * replies are missing and reads replies as they come, so the broker always
 * has a full pass of work and group commit can show what it does.  Replies
 * are parsed minimally: every request used here has a one-line reply, "OK
 * ..." or "ERR ...".  Only OKs count.
 *
 * Every mode prints one line of key=value words on stdout for run.sh to
 * pick apart; diagnostics go to stderr.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

/* Stop generating requests while this much is unsent: enough to keep the
 * socket full, small enough to stay in cache. */
#define OUT_LOW		(1u << 20)

/* CANCEL takes at most SIMQ_WORDS_MAX words; stay below with room. */
#define CANCEL_IDS	(SIMQ_WORDS_MAX - 96)

struct client {
	int	 fd;
	char	*in;
	size_t	 inoff, inlen, incap;
	char	*out;
	size_t	 outoff, outlen, outcap;
};

enum mode { M_PIPE, M_BATCH, M_CANCEL };

/* One pipelined run: nreq requests, at most window outstanding. */
struct run {
	enum mode	 mode;
	uint64_t	 nreq;		/* requests to send */
	uint64_t	 window;
	uint64_t	 sent, done;	/* requests sent, replies read */
	uint64_t	 njobs;		/* jobs (or ids) in all requests */
	uint64_t	 per;		/* jobs per BATCH, ids per CANCEL */
	uint64_t	 next;		/* next seed, or next id to cancel */
	uint64_t	 lastid;	/* last id to cancel */
	const char	*prefix;	/* command words before the seed */
	uint64_t	 ok;		/* jobs acknowledged (or canceled) */
	uint64_t	 errors;
	uint64_t	 cmdbytes;	/* argument bytes with their NULs */
	double		 last;		/* when the last reply arrived */
	double		 maxgap;	/* longest wait for a reply, s */
	char		*body;		/* scratch for BATCH bodies */
	size_t		 bodycap;
};

static const char	*host = "127.0.0.1";
static int		 port = 7733;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list	ap;

	fputs("bench_submit: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL)
		die("out of memory");
	return p;
}

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
num(const char *s)
{
	char			*end;
	unsigned long long	 v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0')
		die("bad number '%s'", s);
	return v;
}

/* Connects once; returns the fd or -1 with errno set. */
static int
try_connect(void)
{
	struct sockaddr_in	sin;
	int			fd, one = 1;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		die("bad address %s", host);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void
client_init(struct client *c, int fd)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->incap = 1 << 20;
	c->in = xrealloc(NULL, c->incap);
	c->outcap = 4 << 20;
	c->out = xrealloc(NULL, c->outcap);
}

static void
client_open(struct client *c)
{
	int	fd;

	if ((fd = try_connect()) < 0)
		die("connect %s:%d: %s", host, port, strerror(errno));
	client_init(c, fd);
}

/* Room for n more bytes at the end of the output buffer. */
static char *
out_reserve(struct client *c, size_t n)
{
	if (c->outoff > 0 && c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (c->outlen + n > c->outcap && c->outoff > 0) {
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
	}
	if (c->outlen + n > c->outcap) {
		while (c->outlen + n > c->outcap)
			c->outcap *= 2;
		c->out = xrealloc(c->out, c->outcap);
	}
	return c->out + c->outlen;
}

static void
out_add(struct client *c, const void *p, size_t n)
{
	memcpy(out_reserve(c, n), p, n);
	c->outlen += n;
}

/* Writes what the socket takes now; dies on an error. */
static void
client_write(struct client *c)
{
	ssize_t	n;

	while (c->outoff < c->outlen) {
		n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			die("write: %s", strerror(errno));
		}
		c->outoff += (size_t)n;
	}
}

/* Reads what it can; returns the bytes read, 0 for none yet, or dies
 * (also on EOF). */
static size_t
client_read(struct client *c)
{
	ssize_t	n;
	size_t	total = 0;

	for (;;) {
		if (c->inoff > 0) {
			memmove(c->in, c->in + c->inoff, c->inlen - c->inoff);
			c->inlen -= c->inoff;
			c->inoff = 0;
		}
		if (c->inlen == c->incap) {
			c->incap *= 2;
			c->in = xrealloc(c->in, c->incap);
		}
		n = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return total;
			die("read: %s", strerror(errno));
		}
		if (n == 0)
			die("the broker closed the connection");
		c->inlen += (size_t)n;
		total += (size_t)n;
		if (c->inlen < c->incap)
			return total;
	}
}

/* The next complete reply line (without CR LF, NUL-terminated), or NULL. */
static char *
client_line(struct client *c)
{
	char	*p, *nl;

	p = c->in + c->inoff;
	if ((nl = memchr(p, '\n', c->inlen - c->inoff)) == NULL)
		return NULL;
	c->inoff = (size_t)(nl + 1 - c->in);
	if (nl > p && nl[-1] == '\r')
		nl--;
	*nl = '\0';
	return p;
}

/* Blocks until the output is sent and one line has arrived. */
static char *
client_wait_line(struct client *c)
{
	struct pollfd	 pfd;
	char		*l;

	for (;;) {
		client_write(c);
		if ((l = client_line(c)) != NULL)
			return l;
		pfd.fd = c->fd;
		pfd.events = POLLIN | (c->outoff < c->outlen ? POLLOUT : 0);
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
			client_read(c);
	}
}

/* Sends STATS and copies the stats item line into buf. */
static void
get_stats(struct client *c, char *buf, size_t len)
{
	char	*l;

	out_add(c, "STATS\n", 6);
	l = client_wait_line(c);
	if (strcmp(l, "ITEMS 1") != 0)
		die("STATS: unexpected reply '%s'", l);
	l = client_wait_line(c);
	snprintf(buf, len, "%s", l);
}

/* The value of " key=" in a stats line, or 0. */
static uint64_t
stat_val(const char *line, const char *key)
{
	char		 k[64];
	const char	*p;

	snprintf(k, sizeof k, " %s=", key);
	if ((p = strstr(line, k)) == NULL)
		return 0;
	return strtoull(p + strlen(k), NULL, 10);
}

/* Bytes a command "PREFIX SEED" takes as NUL-terminated arguments. */
static size_t
cmd_len(const char *prefix, uint64_t seed)
{
	char	b[32];

	return strlen(prefix) + 1 + (size_t)snprintf(b, sizeof b, "%llu",
	    (unsigned long long)seed) + 1;
}

/* Appends the next request of r to the output. */
static void
gen_request(struct client *c, struct run *r)
{
	char		*p;
	size_t		 len;
	uint64_t	 i, k;
	int		 m;

	switch (r->mode) {
	case M_PIPE:
		p = out_reserve(c, 64 + strlen(r->prefix));
		m = sprintf(p, "SUBMIT -- %s %llu\n", r->prefix,
		    (unsigned long long)r->next);
		r->cmdbytes += cmd_len(r->prefix, r->next);
		r->next++;
		c->outlen += (size_t)m;
		r->njobs++;
		break;
	case M_BATCH:
		k = r->per;
		len = 0;
		for (i = 0; i < k; i++) {
			if (len + 64 + strlen(r->prefix) > r->bodycap) {
				r->bodycap = r->bodycap ? r->bodycap * 2 : 65536;
				r->body = xrealloc(r->body, r->bodycap);
			}
			m = sprintf(r->body + len, "%s %llu\n", r->prefix,
			    (unsigned long long)r->next);
			len += (size_t)m;
			r->cmdbytes += cmd_len(r->prefix, r->next);
			r->next++;
		}
		p = out_reserve(c, 32);
		m = sprintf(p, "BATCH %zu\n", len);
		c->outlen += (size_t)m;
		out_add(c, r->body, len);
		out_add(c, "\r\n", 2);
		r->njobs += k;
		break;
	case M_CANCEL:
		out_add(c, "CANCEL", 6);
		for (i = 0; i < r->per && r->next <= r->lastid; i++) {
			p = out_reserve(c, 32);
			m = sprintf(p, " %llu", (unsigned long long)r->next++);
			c->outlen += (size_t)m;
			r->njobs++;
		}
		out_add(c, "\n", 1);
		break;
	}
	r->sent++;
}

/* Accounts one reply line. */
static void
on_reply(struct run *r, const char *l)
{
	unsigned long long	a, b;

	r->done++;
	if (strncmp(l, "OK", 2) != 0) {
		if (r->errors++ == 0)
			fprintf(stderr, "bench_submit: first error: %s\n", l);
		return;
	}
	switch (r->mode) {
	case M_PIPE:
		r->ok++;
		break;
	case M_BATCH:
		if (sscanf(l, "OK %llu %llu", &a, &b) == 2)
			r->ok += b;
		else
			r->errors++;
		break;
	case M_CANCEL:
		if (sscanf(l, "OK %llu", &a) == 1)
			r->ok += a;
		else
			r->errors++;
		break;
	}
}

/* Runs r to the end: every request sent and every reply read. */
static void
pump(struct client *c, struct run *r)
{
	struct pollfd	 pfd;
	char		*l;
	double		 t;

	r->last = now_s();
	while (r->done < r->nreq) {
		while (r->sent < r->nreq && r->sent - r->done < r->window &&
		    c->outlen - c->outoff < OUT_LOW)
			gen_request(c, r);
		client_write(c);
		pfd.fd = c->fd;
		pfd.events = POLLIN | (c->outoff < c->outlen ? POLLOUT : 0);
		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			if (client_read(c) > 0) {
				t = now_s();
				if (r->sent > r->done && t - r->last > r->maxgap)
					r->maxgap = t - r->last;
				r->last = t;
			}
			while ((l = client_line(c)) != NULL)
				on_reply(r, l);
		}
	}
}

/* pipe, batch and cancel: runs and prints the figures. */
static int
do_run(struct run *r)
{
	struct client	c;
	char		s0[4096], s1[4096];
	double		t0, t1, secs;
	uint64_t	fs, cm;

	client_open(&c);
	get_stats(&c, s0, sizeof s0);
	t0 = now_s();
	pump(&c, r);
	t1 = now_s();
	get_stats(&c, s1, sizeof s1);
	secs = t1 - t0;
	fs = stat_val(s1, "fsyncs") - stat_val(s0, "fsyncs");
	cm = stat_val(s1, "commits") - stat_val(s0, "commits");
	printf("requests=%llu window=%llu jobs=%llu ok=%llu errors=%llu "
	    "secs=%.3f rate=%.0f fsyncs=%llu commits=%llu per_fsync=%.1f "
	    "cmdbytes=%llu journal_bytes=%llu max_gap_ms=%.1f\n",
	    (unsigned long long)r->nreq, (unsigned long long)r->window,
	    (unsigned long long)r->njobs, (unsigned long long)r->ok,
	    (unsigned long long)r->errors, secs, (double)r->ok / secs,
	    (unsigned long long)fs, (unsigned long long)cm,
	    fs ? (double)r->ok / (double)fs : 0.0,
	    (unsigned long long)r->cmdbytes,
	    (unsigned long long)stat_val(s1, "journal_bytes"), r->maxgap * 1e3);
	close(c.fd);
	free(r->body);
	return r->errors ? 1 : 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* SUBMIT array=1-N, one at a time, each timed from the first byte sent
 * to the reply's last byte read. */
static int
do_array(uint64_t n, int repeat)
{
	struct client	 c;
	double		*t, t0;
	char		*l, req[128];
	int		 i, m, errors = 0;

	if (repeat < 1)
		die("repeat must be at least 1");
	t = xrealloc(NULL, (size_t)repeat * sizeof *t);
	client_open(&c);
	m = snprintf(req, sizeof req, "SUBMIT array=1-%llu -- ./sim {}\n",
	    (unsigned long long)n);
	for (i = 0; i < repeat; i++) {
		t0 = now_s();
		out_add(&c, req, (size_t)m);
		l = client_wait_line(&c);
		t[i] = now_s() - t0;
		if (strncmp(l, "OK ", 3) != 0) {
			fprintf(stderr, "bench_submit: array: %s\n", l);
			errors++;
		}
	}
	qsort(t, (size_t)repeat, sizeof *t, cmp_double);
	printf("tasks=%llu repeat=%d errors=%d min_ms=%.2f median_ms=%.2f "
	    "max_ms=%.2f\n", (unsigned long long)n, repeat, errors,
	    t[0] * 1e3, t[repeat / 2] * 1e3, t[repeat - 1] * 1e3);
	free(t);
	close(c.fd);
	return errors ? 1 : 0;
}

static int
do_stats(void)
{
	struct client	c;
	char		s[4096];

	client_open(&c);
	get_stats(&c, s, sizeof s);
	printf("%s\n", s);
	close(c.fd);
	return 0;
}

/* 1 if process pid has exited (gone, or a zombie nobody reaped yet). */
static int
exited(pid_t pid)
{
	char	path[64], buf[512], *p;
	FILE	*f;
	size_t	n;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] == '\0')
		return 0;
	return p[2] == 'Z' || p[2] == 'X';
}

/*
 * Waits until a broker that was started at t0ns (CLOCK_REALTIME, ns, as
 * `date +%s%N` prints it) answers a PING on a fresh connection, and prints
 * the time from t0 to the answer.  Gives up when pid exits or after
 * timeout seconds.
 */
static int
do_ready(const char *t0s, double timeout, pid_t pid)
{
	struct client	 c;
	struct timespec	 ts;
	double		 t0, tc, t1, start;
	char		*l;
	int		 fd, tries = 0;

	t0 = (double)num(t0s) / 1e9;
	start = now_s();
	for (;;) {
		if ((fd = try_connect()) >= 0)
			break;
		if (errno != ECONNREFUSED)
			die("connect: %s", strerror(errno));
		if (exited(pid))
			die("the broker (pid %ld) exited before listening",
			    (long)pid);
		if (now_s() - start > timeout)
			die("the broker did not listen within %.0f s", timeout);
		tries++;
		usleep(500);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	tc = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	client_init(&c, fd);
	out_add(&c, "PING\n", 5);
	l = client_wait_line(&c);
	clock_gettime(CLOCK_REALTIME, &ts);
	t1 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (strcmp(l, "OK") != 0)
		die("PING: unexpected reply '%s'", l);
	printf("ready_ms=%.1f connect_ms=%.1f tries=%d\n", (t1 - t0) * 1e3,
	    (tc - t0) * 1e3, tries);
	close(c.fd);
	return 0;
}

/*
 * stall SIZE TIMEOUT-S: the event loop's longest pause around a
 * compaction.  One connection sends PINGs one at a time and times each
 * round trip; another submits BATCHes of SIZE jobs, one at a time, each
 * followed by STATS, until STATS counts one snapshot more than at the
 * start (the broker compacts once its journal passes --compact-min);
 * then the PINGs go on for another half second.  Prints the round trips'
 * maximum, 99th percentile and median, and when the longest was, from
 * the first BATCH.
 */
static int
do_stall(uint64_t size, double timeout)
{
	struct client	 pc, sc;
	struct pollfd	 pfd[2];
	struct run	 r;
	char		 s[4096], *l;
	double		*rtt = NULL, t0, tping = 0, t, tdone = 0, tmax = 0, tmaxat = 0;
	size_t		 n = 0, cap = 0;
	uint64_t	 snaps0, batches = 0, jobs = 0;
	int		 phase = 0;	/* 0 BATCH out, 1 STATS out, 2 done */
	int		 items = -1;

	client_open(&pc);
	client_open(&sc);
	get_stats(&sc, s, sizeof s);
	snaps0 = stat_val(s, "snapshots");
	memset(&r, 0, sizeof r);
	r.mode = M_BATCH;
	r.per = size;
	r.prefix = "./sim --seed";
	r.next = 900000000;
	t0 = now_s();
	gen_request(&sc, &r);
	batches++;
	out_add(&pc, "PING\n", 5);
	tping = now_s();
	for (;;) {
		client_write(&pc);
		client_write(&sc);
		pfd[0].fd = pc.fd;
		pfd[0].events = POLLIN | (pc.outoff < pc.outlen ? POLLOUT : 0);
		pfd[1].fd = sc.fd;
		pfd[1].events = POLLIN | (sc.outoff < sc.outlen ? POLLOUT : 0);
		if (poll(pfd, 2, 100) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
			client_read(&pc);
		while ((l = client_line(&pc)) != NULL) {
			t = now_s();
			if (strcmp(l, "OK") != 0)
				die("PING: unexpected reply '%s'", l);
			if (n == cap) {
				cap = cap ? cap * 2 : 65536;
				rtt = xrealloc(rtt, cap * sizeof *rtt);
			}
			rtt[n] = t - tping;
			if (n == 0 || rtt[n] > tmax) {
				tmax = rtt[n];
				tmaxat = tping - t0;
			}
			n++;
			if (phase == 2 && t - tdone > 0.5)
				goto out;
			out_add(&pc, "PING\n", 5);
			tping = now_s();
		}
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
			client_read(&sc);
		while ((l = client_line(&sc)) != NULL) {
			if (phase == 0) {
				if (strncmp(l, "OK ", 3) != 0)
					die("BATCH: %s", l);
				jobs += size;
				out_add(&sc, "STATS\n", 6);
				phase = 1;
				items = -1;
			} else if (phase == 1 && items == -1) {
				if (strcmp(l, "ITEMS 1") != 0)
					die("STATS: unexpected reply '%s'", l);
				items = 1;
			} else if (phase == 1) {
				if (stat_val(l, "snapshots") > snaps0) {
					phase = 2;
					tdone = now_s();
				} else {
					gen_request(&sc, &r);
					batches++;
					phase = 0;
				}
			}
		}
		if (now_s() - t0 > timeout)
			die("no compaction within %.0f s (%llu jobs submitted)",
			    timeout, (unsigned long long)jobs);
	}
out:
	qsort(rtt, n, sizeof *rtt, cmp_double);
	printf("pings=%zu max_ms=%.2f p99_ms=%.2f p50_ms=%.3f max_at_s=%.2f "
	    "compacted_at_s=%.2f batches=%llu jobs=%llu\n", n,
	    rtt[n - 1] * 1e3, rtt[(n * 99) / 100] * 1e3, rtt[n / 2] * 1e3,
	    tmaxat, tdone - t0, (unsigned long long)batches,
	    (unsigned long long)jobs);
	free(rtt);
	free(r.body);
	close(pc.fd);
	close(sc.fd);
	return 0;
}

/* A free loopback port (the kernel's pick; free when this exits). */
static int
do_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		sl = sizeof sin;
	int			fd;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) < 0)
		die("port: %s", strerror(errno));
	printf("%d\n", ntohs(sin.sin_port));
	close(fd);
	return 0;
}

/* The disk's own fdatasync rate: n appends of 64 bytes, each synced, as
 * the journal does per loop pass. */
static int
do_fsync(const char *dir, int n)
{
	char	path[4096], rec[64];
	double	t0, secs;
	int	fd, i;

	if (n < 1)
		die("fsync: n must be at least 1");
	snprintf(path, sizeof path, "%s/fsync-probe", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		die("%s: %s", path, strerror(errno));
	memset(rec, 'x', sizeof rec);
	t0 = now_s();
	for (i = 0; i < n; i++) {
		if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec ||
		    fdatasync(fd) < 0)
			die("%s: %s", path, strerror(errno));
	}
	secs = now_s() - t0;
	close(fd);
	unlink(path);
	printf("fsyncs=%d secs=%.3f per_sec=%.0f us_each=%.1f\n", n, secs,
	    n / secs, secs * 1e6 / n);
	return 0;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
"usage: bench_submit [-p PORT] [-c PREFIX] [-s SEED] MODE ARGS\n"
"  pipe N WINDOW          N SUBMITs, WINDOW outstanding\n"
"  batch N SIZE [WINDOW]  N jobs in BATCHes of SIZE, WINDOW outstanding\n"
"  array N REPEAT         SUBMIT array=1-N, REPEAT times, one at a time\n"
"  cancel FIRST LAST      CANCEL the ids FIRST..LAST\n"
"  stats                  print the STATS item\n"
"  ready T0-NS TIMEOUT-S PID\n"
"                         time from T0 (date +%%s%%N) to a PING answered\n"
"  stall SIZE TIMEOUT-S    BATCHes of SIZE until a compaction, PINGs\n"
"                         timed throughout: the loop's longest pause\n"
"  port                   print a free loopback port\n"
"  fsync DIR N            time N small appends with fdatasync in DIR\n"
"Commands are \"PREFIX SEED\" (default \"./sim --seed\", seeds from 1).\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct run	 r;
	const char	*prefix = "./sim --seed";
	uint64_t	 seed = 1, n;
	int		 ch;

	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt(argc, argv, "+p:c:s:")) != -1) {
		switch (ch) {
		case 'p':
			port = (int)num(optarg);
			break;
		case 'c':
			prefix = optarg;
			break;
		case 's':
			seed = num(optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&r, 0, sizeof r);
	r.prefix = prefix;
	r.next = seed;
	if (strcmp(argv[0], "pipe") == 0 && argc == 3) {
		r.mode = M_PIPE;
		r.nreq = num(argv[1]);
		r.window = num(argv[2]);
		r.per = 1;
	} else if (strcmp(argv[0], "batch") == 0 && (argc == 3 || argc == 4)) {
		r.mode = M_BATCH;
		n = num(argv[1]);
		r.per = num(argv[2]);
		if (r.per == 0 || n % r.per != 0)
			die("batch: N must be a multiple of SIZE");
		r.nreq = n / r.per;
		r.window = argc == 4 ? num(argv[3]) : 1;
	} else if (strcmp(argv[0], "cancel") == 0 && argc == 3) {
		r.mode = M_CANCEL;
		r.next = num(argv[1]);
		r.lastid = num(argv[2]);
		if (r.lastid < r.next)
			die("cancel: LAST < FIRST");
		r.per = CANCEL_IDS;
		r.nreq = (r.lastid - r.next + CANCEL_IDS) / CANCEL_IDS;
		r.window = 16;
	} else if (strcmp(argv[0], "array") == 0 && argc == 3)
		return do_array(num(argv[1]), (int)num(argv[2]));
	else if (strcmp(argv[0], "stats") == 0 && argc == 1)
		return do_stats();
	else if (strcmp(argv[0], "ready") == 0 && argc == 4)
		return do_ready(argv[1], (double)num(argv[2]),
		    (pid_t)num(argv[3]));
	else if (strcmp(argv[0], "stall") == 0 && argc == 3)
		return do_stall(num(argv[1]), (double)num(argv[2]));
	else if (strcmp(argv[0], "port") == 0 && argc == 1)
		return do_port();
	else if (strcmp(argv[0], "fsync") == 0 && argc == 3)
		return do_fsync(argv[1], (int)num(argv[2]));
	else
		usage();
	if (r.window == 0)
		die("WINDOW must be at least 1");
	return do_run(&r);
}
