/*
 * bench_workers.c: many workers on one broker (tests/bench/workers.sh,
 * and a short run in the integration tests).
 *
 *   bench_workers -p PORT [-n WORKERS] [-j JOBS] [-k TAKE] [-b PID]
 *                 [-H HEARTBEAT-MS] [-t SECONDS]
 *
 * Connects WORKERS (default 1000) worker connections to the broker on
 * 127.0.0.1:PORT, each speaking the protocol as simq-worker does: WORKER,
 * then a TAKE of up to TAKE jobs (default 1) left waiting at the broker,
 * a FINISH for every job the moment it arrives (no process is run: this
 * measures the broker, not fork), the next TAKE right behind, and a
 * HEARTBEAT every HEARTBEAT-MS (default 1000, far more often than a
 * worker's third of a lease, to load the broker with them).  Meanwhile a
 * client connection asks STATUS of one job every 10 ms, as `simq status`
 * would, and times each answer.
 *
 * The run: the workers connect and register (the broker's resident
 * memory, with -b, before and after: memory per connected worker), the
 * JOBS (default 100000) jobs are submitted in BATCHes, every worker
 * sends its first TAKE, and the clock runs until the last FINISH is
 * answered.  One line of key=value words goes to stdout:
 *
 *   workers jobs secs rate (jobs/s dispatched and finished)
 *   status_n status_p50_us status_p99_us status_max_us
 *   hb_n hb_max_us (heartbeats answered, the slowest answer)
 *   drops (drop items: leases lost, which must not happen) errors
 *   rss_per_worker (bytes, with -b) broker_cpu_us_per_job (with -b)
 *
 * Resources (tests/bench/resources.sh): SIMQ_BENCH_WORKER_WORDS are
 * added to every WORKER ("cpus=4 mem=1073741824"), SIMQ_BENCH_TAKE_WORDS
 * to every TAKE, and SIMQ_BENCH_BATCH_OPTS are the options of the
 * BATCHes, several sets separated by '|' taking turns.
 *
 * Everything is bounded: loopback only, at most WORKERS_MAX connections,
 * and the run ends after -t SECONDS (default 120) with exit status 1.
 * The descriptor limit is raised to fit (the hard limit must allow it).
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define WORKERS_MAX	10000
#define JOBS_MAX	10000000
/* Requests one connection may have unanswered: a TAKE, the FINISHes of
 * its reply, the next TAKE and a heartbeat or two. */
#define PENDING_MAX	(SIMQ_TAKE_MAX + 8)
#define BATCH_JOBS	10000
#define STATUS_EVERY_MS	10
#define SAMPLES_MAX	1000000

enum kind { K_OK, K_TAKE, K_HB, K_STATUS };

struct pend {
	uint8_t		 kind;
	uint64_t	 sent;		/* ns */
};

struct wconn {
	int		 fd;
	int		 id;
	char		 in[65536];
	size_t		 inlen;
	char		*out;
	size_t		 outlen, outcap;
	struct pend	 q[PENDING_MAX];
	uint32_t	 qhead, qn;
	uint32_t	 items_left;	/* of the ITEMS reply being read */
	uint8_t		 items_kind;
	int		 registered;
	int		 take_out;	/* a TAKE is unanswered */
	uint64_t	 next_hb;	/* ns */
};

static struct wconn	*conns;
static int		 nworkers = 1000, take_max = 1, ep;
static uint64_t		 njobs = 100000, hb_ms = 1000;
static uint64_t		 finished, registered, drops, errors, hb_n, hb_max;
static uint64_t		*status_lat;
static uint64_t		 status_n;
static int		 port;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "bench_workers: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static int
dial(void)
{
	struct sockaddr_in	sin;
	int			s, one = 1;

	if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&sin, sizeof sin) < 0) {
		close(s);
		return -1;
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return s;
}

/* The control connection: blocking, one request at a time. */
static int	cfd = -1;
static char	cin[1 << 16];
static size_t	cinlen;

static void
ctl_send(const void *p, size_t n)
{
	const char	*s = p;
	ssize_t		 w;

	while (n > 0) {
		if ((w = write(cfd, s, n)) < 0) {
			if (errno == EINTR)
				continue;
			die("control connection: write: %s", strerror(errno));
		}
		s += w;
		n -= (size_t)w;
	}
}

static void
ctl_line(char *line, size_t max)
{
	char	*nl;
	ssize_t	 r;
	size_t	 n;

	for (;;) {
		if ((nl = memchr(cin, '\n', cinlen)) != NULL) {
			n = (size_t)(nl - cin) + 1;
			if (n >= max)
				die("control connection: long reply line");
			memcpy(line, cin, n);
			line[n - (n > 1 && cin[n - 2] == '\r' ? 2 : 1)] = '\0';
			memmove(cin, cin + n, cinlen - n);
			cinlen -= n;
			return;
		}
		if ((r = read(cfd, cin + cinlen, sizeof cin - cinlen)) <= 0)
			die("control connection: %s", r == 0 ? "closed" :
			    strerror(errno));
		cinlen += (size_t)r;
	}
}

/* Resident memory of pid, bytes (0 if unknown). */
static uint64_t
rss_of(int pid)
{
	char		 path[64], line[256];
	FILE		*f;
	unsigned long	 kb = 0;

	snprintf(path, sizeof path, "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/* CPU time of pid, microseconds. */
static uint64_t
cpu_of(int pid)
{
	char			 path[64], buf[2048], *p;
	FILE			*f;
	unsigned long long	 ut = 0, st = 0;
	size_t			 n;
	long			 hz = sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
	    "%llu", &ut, &st) != 2)
		return 0;
	return (ut + st) * 1000000 / (unsigned long long)hz;
}

static void
out_add(struct wconn *c, const char *s, size_t n)
{
	if (c->outlen + n > c->outcap) {
		c->outcap = (c->outlen + n) * 2;
		if ((c->out = realloc(c->out, c->outcap)) == NULL)
			die("out of memory");
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

static void
push(struct wconn *c, int kind, const char *req, size_t n)
{
	if (c->qn == PENDING_MAX)
		die("worker %d: too many requests unanswered", c->id);
	c->q[(c->qhead + c->qn) % PENDING_MAX].kind = (uint8_t)kind;
	c->q[(c->qhead + c->qn) % PENDING_MAX].sent = now_ns();
	c->qn++;
	out_add(c, req, n);
}

static const char	*take_words = "";

static void
send_take(struct wconn *c)
{
	char	req[512];
	int	n;

	n = snprintf(req, sizeof req, "TAKE %d 600000 default%s%s\r\n",
	    take_max, *take_words ? " " : "", take_words);
	push(c, K_TAKE, req, (size_t)n);
	c->take_out = 1;
}

static void
flush_out(struct wconn *c)
{
	struct epoll_event	ev;
	ssize_t			w;

	while (c->outlen > 0) {
		w = write(c->fd, c->out, c->outlen);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0)
			die("worker %d: write: %s", c->id, strerror(errno));
		memmove(c->out, c->out + w, c->outlen - (size_t)w);
		c->outlen -= (size_t)w;
	}
	ev.events = EPOLLIN | (c->outlen > 0 ? EPOLLOUT : 0);
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static const char *
word(const char *line, const char *key, size_t *len)
{
	size_t	 k = strlen(key);
	const char *p = line;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == line || p[-1] == ' ') && p[k] == '=') {
			p += k + 1;
			*len = strcspn(p, " ");
			return p;
		}
		p += k;
	}
	return NULL;
}

static void
on_item(struct wconn *c, char *line)
{
	const char	*id, *att;
	size_t		 il, al;
	char		 req[128];
	int		 n;

	if (strncmp(line, "drop ", 5) == 0) {
		drops++;
		return;
	}
	if (strncmp(line, "job ", 4) != 0 || c->items_kind != K_TAKE ||
	    (id = word(line, "id", &il)) == NULL ||
	    (att = word(line, "attempt", &al)) == NULL) {
		errors++;
		return;
	}
	n = snprintf(req, sizeof req, "FINISH %.*s %.*s exit=0 0\r\n\r\n",
	    (int)il, id, (int)al, att);
	push(c, K_OK, req, (size_t)n);
}

/* A reply line (or an item of one) for c. */
static void
on_line(struct wconn *c, char *line)
{
	struct pend	*p;
	uint64_t	 t, n;

	if (c->items_left > 0) {
		c->items_left--;
		on_item(c, line);
		goto done_items;
	}
	if (c->qn == 0) {
		errors++;
		return;
	}
	p = &c->q[c->qhead];
	t = now_ns() - p->sent;
	if (strncmp(line, "ERR", 3) == 0) {
		fprintf(stderr, "bench_workers: worker %d: %s\n", c->id, line);
		errors++;
		c->qhead = (c->qhead + 1) % PENDING_MAX;
		c->qn--;
		if (p->kind == K_TAKE)
			c->take_out = 0;
		return;
	}
	if (strncmp(line, "ITEMS ", 6) == 0) {
		n = strtoull(line + 6, NULL, 10);
		c->items_kind = p->kind;
		c->items_left = (uint32_t)n;
		if (p->kind == K_HB) {
			hb_n++;
			if (t > hb_max)
				hb_max = t;
		}
		if (n > 0)
			return;
		goto done_items;
	}
	/* OK: WORKER's or a FINISH's. */
	c->qhead = (c->qhead + 1) % PENDING_MAX;
	c->qn--;
	if (!c->registered) {
		c->registered = 1;
		registered++;
	} else
		finished++;
	return;
done_items:
	if (c->items_left > 0)
		return;
	/* The ITEMS reply is complete. */
	p = &c->q[c->qhead];
	c->qhead = (c->qhead + 1) % PENDING_MAX;
	c->qn--;
	if (p->kind == K_TAKE) {
		c->take_out = 0;
		if (finished < njobs)
			send_take(c);
	}
}

static void
on_readable(struct wconn *c)
{
	ssize_t	 r;
	char	*nl, *start;
	size_t	 n;

	for (;;) {
		r = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0)
			die("worker %d: the broker closed the connection%s%s",
			    c->id, r < 0 ? ": " : "", r < 0 ? strerror(errno) :
			    "");
		c->inlen += (size_t)r;
		start = c->in;
		while ((nl = memchr(start, '\n', c->inlen - (size_t)(start -
		    c->in))) != NULL) {
			*nl = '\0';
			if (nl > start && nl[-1] == '\r')
				nl[-1] = '\0';
			on_line(c, start);
			start = nl + 1;
		}
		n = c->inlen - (size_t)(start - c->in);
		memmove(c->in, start, n);
		c->inlen = n;
		if (c->inlen == sizeof c->in)
			die("worker %d: a reply line too long", c->id);
	}
	flush_out(c);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
raise_nofile(int need)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur >= (rlim_t)need)
		return;
	if (rl.rlim_max < (rlim_t)need)
		die("%d workers need %d descriptors; the hard limit is %llu",
		    nworkers, need, (unsigned long long)rl.rlim_max);
	rl.rlim_cur = (rlim_t)need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit: %s", strerror(errno));
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_workers -p PORT [-n WORKERS] [-j JOBS] "
	    "[-k TAKE] [-b BROKER-PID]\n"
	    "                     [-H HEARTBEAT-MS] [-t SECONDS]\n");
	exit(2);
}

static long
num(const char *s, long lo, long hi)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi)
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	struct epoll_event	 ev, evs[256];
	struct wconn		*c;
	uint64_t		 t0 = 0, t1, deadline, next_status, now, rss0 = 0;
	uint64_t		 rss1 = 0, cpu0 = 0, cpu1 = 0, status_id = 0;
	uint64_t		 status_sent = 0, left, first = 0;
	int			 ch, i, n, bpid = 0, secs = 120, sfd, status_out = 0;
	const char		*wwords, *bopts, *bo, *bar;
	int			 olen;
	char			 line[1024], *body;
	size_t			 blen;
	char			 sin[4096];
	size_t			 sinlen = 0;

	while ((ch = getopt(argc, argv, "p:n:j:k:b:H:t:")) != -1) {
		switch (ch) {
		case 'p': port = (int)num(optarg, 1, 65535); break;
		case 'n': nworkers = (int)num(optarg, 1, WORKERS_MAX); break;
		case 'j': njobs = (uint64_t)num(optarg, 1, JOBS_MAX); break;
		case 'k': take_max = (int)num(optarg, 1, SIMQ_TAKE_MAX); break;
		case 'b': bpid = (int)num(optarg, 1, 1 << 30); break;
		case 'H': hb_ms = (uint64_t)num(optarg, 10, 600000); break;
		case 't': secs = (int)num(optarg, 1, 3600); break;
		default: usage();
		}
	}
	if (port == 0 || optind != argc)
		usage();
	if (getenv("SIMQ_BENCH_TAKE_WORDS") != NULL)
		take_words = getenv("SIMQ_BENCH_TAKE_WORDS");
	if ((wwords = getenv("SIMQ_BENCH_WORKER_WORDS")) == NULL)
		wwords = "";
	bopts = bo = getenv("SIMQ_BENCH_BATCH_OPTS");
	raise_nofile(nworkers + 64);
	if ((cfd = dial()) < 0)
		die("cannot connect to 127.0.0.1:%d: %s", port, strerror(errno));
	deadline = now_ns() + (uint64_t)secs * 1000000000;
	if ((status_lat = calloc(SAMPLES_MAX, sizeof *status_lat)) == NULL ||
	    (conns = calloc((size_t)nworkers, sizeof *conns)) == NULL)
		die("out of memory");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1: %s", strerror(errno));
	if (bpid)
		rss0 = rss_of(bpid);

	/* The workers connect and register, each with a TAKE waiting. */
	for (i = 0; i < nworkers; i++) {
		c = &conns[i];
		c->id = i;
		if ((c->fd = dial()) < 0)
			die("worker %d: cannot connect: %s", i, strerror(errno));
		fcntl(c->fd, F_SETFL, O_NONBLOCK);
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
		n = snprintf(line, sizeof line, "WORKER bench%d slots=%d "
		    "lease=30000%s%s\r\n", i, take_max, *wwords ? " " : "",
		    wwords);
		push(c, K_OK, line, (size_t)n);
		c->next_hb = now_ns() + (uint64_t)(i % 1000) * hb_ms * 1000;
		flush_out(c);
	}
	while (registered < (uint64_t)nworkers) {
		if (now_ns() > deadline)
			die("only %llu of %d workers registered",
			    (unsigned long long)registered, nworkers);
		n = epoll_wait(ep, evs, 256, 100);
		for (i = 0; i < n; i++)
			on_readable(evs[i].data.ptr);
	}
	if (bpid) {
		usleep(200000);
		rss1 = rss_of(bpid);
	}

	/* The jobs, all queued before any worker asks. */
	if ((body = malloc(BATCH_JOBS * 5)) == NULL)
		die("out of memory");
	for (left = njobs; left > 0; ) {
		uint64_t k = left < BATCH_JOBS ? left : BATCH_JOBS;
		blen = 0;
		for (uint64_t j = 0; j < k; j++) {
			memcpy(body + blen, "true\n", 5);
			blen += 5;
		}
		if (bo != NULL && *bo == '\0')
			bo = bopts;
		bar = bo != NULL ? strchr(bo, '|') : NULL;
		olen = bo == NULL ? 0 : bar ? (int)(bar - bo) : (int)strlen(bo);
		n = snprintf(line, sizeof line, "BATCH %.*s%s%zu\r\n", olen,
		    bo ? bo : "", olen ? " " : "", blen);
		if (bo != NULL)
			bo = bar ? bar + 1 : "";
		ctl_send(line, (size_t)n);
		ctl_send(body, blen);
		ctl_send("\r\n", 2);
		ctl_line(line, sizeof line);
		if (strncmp(line, "OK ", 3) != 0)
			die("BATCH: %s", line);
		if (first == 0)
			first = strtoull(line + 3, NULL, 10);
		left -= k;
	}
	free(body);
	status_id = first;
	/* The STATUS prober: its own connection, in the loop. */
	if ((sfd = dial()) < 0)
		die("status connection: %s", strerror(errno));
	fcntl(sfd, F_SETFL, O_NONBLOCK);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

	if (bpid)
		cpu0 = cpu_of(bpid);
	t0 = now_ns();
	for (i = 0; i < nworkers; i++) {
		send_take(&conns[i]);
		flush_out(&conns[i]);
	}
	next_status = t0;
	while (finished < njobs) {
		now = now_ns();
		if (now > deadline)
			die("timed out: %llu of %llu jobs finished",
			    (unsigned long long)finished,
			    (unsigned long long)njobs);
		if (!status_out && now >= next_status) {
			n = snprintf(line, sizeof line, "STATUS %llu\r\n",
			    (unsigned long long)status_id);
			if (write(sfd, line, (size_t)n) != n)
				die("status connection: write failed");
			status_sent = now;
			status_out = 1;
			next_status = now + STATUS_EVERY_MS * 1000000;
		}
		/* Heartbeats that are due (a few hundred per pass at most). */
		for (i = 0; i < nworkers; i++) {
			c = &conns[i];
			if (c->next_hb > now)
				continue;
			push(c, K_HB, "HEARTBEAT\r\n", 11);
			c->next_hb = now + hb_ms * 1000000;
			flush_out(c);
		}
		n = epoll_wait(ep, evs, 256, 5);
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr != NULL) {
				c = evs[i].data.ptr;
				if (evs[i].events & EPOLLOUT)
					flush_out(c);
				if (evs[i].events & EPOLLIN)
					on_readable(c);
				continue;
			}
			/* The prober: "ITEMS 1" and its item. */
			ssize_t r = read(sfd, sin + sinlen, sizeof sin - sinlen);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				die("status connection closed");
			}
			sinlen += (size_t)r;
			{
				char *a = memchr(sin, '\n', sinlen), *b2;
				if (a == NULL || (b2 = memchr(a + 1, '\n',
				    sinlen - (size_t)(a + 1 - sin))) == NULL)
					continue;
				if (status_n < SAMPLES_MAX)
					status_lat[status_n++] = now_ns() -
					    status_sent;
				status_out = 0;
				sinlen -= (size_t)(b2 + 1 - sin);
				memmove(sin, b2 + 1, sinlen);
			}
		}
	}
	t1 = now_ns();
	if (bpid)
		cpu1 = cpu_of(bpid);
	qsort(status_lat, status_n, sizeof *status_lat, cmp_u64);
	printf("workers=%d jobs=%llu secs=%.3f rate=%.0f status_n=%llu "
	    "status_p50_us=%llu status_p99_us=%llu status_max_us=%llu "
	    "hb_n=%llu hb_max_us=%llu drops=%llu errors=%llu",
	    nworkers, (unsigned long long)njobs, (double)(t1 - t0) / 1e9,
	    (double)njobs * 1e9 / (double)(t1 - t0),
	    (unsigned long long)status_n,
	    (unsigned long long)(status_n ? status_lat[status_n / 2] / 1000 : 0),
	    (unsigned long long)(status_n ? status_lat[status_n * 99 / 100] /
	    1000 : 0),
	    (unsigned long long)(status_n ? status_lat[status_n - 1] / 1000 : 0),
	    (unsigned long long)hb_n, (unsigned long long)(hb_max / 1000),
	    (unsigned long long)drops, (unsigned long long)errors);
	if (bpid)
		printf(" rss_per_worker=%llu broker_cpu_us_per_job=%.1f",
		    (unsigned long long)(rss1 > rss0 ? (rss1 - rss0) /
		    (uint64_t)nworkers : 0),
		    (double)(cpu1 - cpu0) / (double)njobs);
	printf("\n");
	for (i = 0; i < nworkers; i++) {
		close(conns[i].fd);
		free(conns[i].out);
	}
	close(sfd);
	close(cfd);
	free(conns);
	free(status_lat);
	return errors || drops ? 1 : 0;
}
