/*
 * bench_spawn.c: the worker benchmarks' helper (tests/bench/worker.sh).
 *
 * The one idea: measure the machine and the worker in the same run, with
 * the same program, so the ratio means something on any machine.
 *
 *   ceiling N P [PROG]  the machine's ceiling: P processes, each a plain
 *                       loop of fork, exec PROG (default /bin/true) and
 *                       wait, N runs in all
 *   throughput N        submits N /bin/true jobs in BATCHes to an idle
 *                       worker and times them until the last is finished
 *   latency N PROG      N times, one at a time: submit "PROG stamp" to an
 *                       idle worker, wait until it is finished, and read
 *                       the wall-clock time the job printed as its first
 *                       act: submit to process start
 *   execlat N PROG [MS] the machine's part of that: N times, vfork and exec
 *                       "PROG stamp" and read the time it prints; with MS,
 *                       idle MS milliseconds before each, as latency is (a
 *                       start after a pause finds cold caches: on a small
 *                       VM that alone costs ~150 us)
 *   stamp               prints the wall-clock time in nanoseconds (the job
 *                       run by latency)
 *   port                prints a free loopback port
 *   ping                waits until the broker answers PING (-t seconds)
 *
 * Every mode prints one line of key=value words for worker.sh; errors go
 * to stderr with exit status 1.  The broker is 127.0.0.1, port -p.
 */
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

extern char	**environ;

/* Jobs per BATCH: a few round trips for the whole run, each body far
 * below SIMQ_BATCH_MAX. */
#define BATCH_SIZE	1000

/* Latency samples we keep. */
#define SAMPLES_MAX	100000

/* latency: the pause before each job, so that the worker is idle, its
 * TAKE parked at the broker. */
#define IDLE_MS		20

static int	port = SIMQ_DEFAULT_PORT;
static int	fd = -1;
static char	inbuf[1 << 20];
static size_t	inlen;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "bench_spawn: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static uint64_t
now_ns(clockid_t clk)
{
	struct timespec	ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static int
dial(void)
{
	struct sockaddr_in	sin;
	int			s, on = 1;

	if ((s = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket: %s", strerror(errno));
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&sin, sizeof sin) < 0) {
		close(s);
		return -1;
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	return s;
}

static void
send_all(const void *p, size_t n)
{
	const char	*c = p;
	ssize_t		 w;

	while (n > 0) {
		if ((w = write(fd, c, n)) < 0) {
			if (errno == EINTR)
				continue;
			die("write: %s", strerror(errno));
		}
		c += w;
		n -= (size_t)w;
	}
}

/* Reads one reply line (without CR LF) into line. */
static void
read_line(char *line, size_t max)
{
	char	*nl;
	ssize_t	 n;
	size_t	 len;

	while ((nl = memchr(inbuf, '\n', inlen)) == NULL) {
		if (inlen == sizeof inbuf)
			die("reply line too long");
		if ((n = read(fd, inbuf + inlen, sizeof inbuf - inlen)) <= 0)
			die("read: %s", n < 0 ? strerror(errno) : "EOF");
		inlen += (size_t)n;
	}
	len = (size_t)(nl - inbuf);
	if (len > 0 && inbuf[len - 1] == '\r')
		len--;
	if (len >= max)
		die("reply line too long");
	memcpy(line, inbuf, len);
	line[len] = '\0';
	inlen -= (size_t)(nl + 1 - inbuf);
	memmove(inbuf, nl + 1, inlen);
}

/* Reads n raw bytes (a DATA reply's) into p. */
static void
read_bytes(char *p, size_t n)
{
	ssize_t	r;
	size_t	take;

	while (n > 0) {
		if (inlen == 0) {
			if ((r = read(fd, inbuf, sizeof inbuf)) <= 0)
				die("read: %s", r < 0 ? strerror(errno) : "EOF");
			inlen = (size_t)r;
		}
		take = n < inlen ? n : inlen;
		memcpy(p, inbuf, take);
		memmove(inbuf, inbuf + take, inlen - take);
		inlen -= take;
		p += take;
		n -= take;
	}
}

static char	line[SIMQ_LINE_MAX];

/* Sends a request; returns its reply line (OK or ERR) in line, or dies on
 * ERR. */
static const char *
request(const char *req)
{
	send_all(req, strlen(req));
	read_line(line, sizeof line);
	if (strncmp(line, "ERR", 3) == 0)
		die("%.*s: %s", (int)strcspn(req, "\r\n"), req, line);
	return line;
}

/* The value of key in an item or reply line, as a number; 0 if absent. */
static uint64_t
kv(const char *s, const char *key)
{
	size_t		 klen = strlen(key);
	const char	*p = s;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == s || p[-1] == ' ') && p[klen] == '=')
			return strtoull(p + klen + 1, NULL, 10);
		p += klen;
	}
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The machine's ceiling: p forked runners, each spawning prog in a loop. */
static void
ceiling(uint64_t n, int p, const char *prog)
{
	char		*argv[] = { (char *)prog, NULL };
	uint64_t	 t0, each, i;
	pid_t		 pid, c;
	int		 k, st, bad = 0;

	t0 = now_ns(CLOCK_MONOTONIC);
	for (k = 0; k < p; k++) {
		each = n / (uint64_t)p + ((uint64_t)k < n % (uint64_t)p);
		if ((pid = fork()) < 0)
			die("fork: %s", strerror(errno));
		if (pid > 0)
			continue;
		for (i = 0; i < each; i++) {
			if ((c = fork()) < 0)
				_exit(1);
			if (c == 0) {
				execve(prog, argv, environ);
				_exit(127);
			}
			if (waitpid(c, &st, 0) < 0 || !WIFEXITED(st) ||
			    WEXITSTATUS(st) != 0)
				_exit(1);
		}
		_exit(0);
	}
	while ((pid = wait(&st)) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad = 1;
	if (bad)
		die("ceiling: %s failed", prog);
	t0 = now_ns(CLOCK_MONOTONIC) - t0;
	printf("runs=%llu procs=%d secs=%.3f rate=%.0f\n",
	    (unsigned long long)n, p, t0 / 1e9, n / (t0 / 1e9));
}

/* Counts of finished jobs over all queues. */
static uint64_t
finished(uint64_t *failed)
{
	uint64_t	n, i, done = 0;

	*failed = 0;
	request("QUEUES\r\n");
	if (strncmp(line, "ITEMS ", 6) != 0)
		die("QUEUES: %s", line);
	n = strtoull(line + 6, NULL, 10);
	for (i = 0; i < n; i++) {
		read_line(line, sizeof line);
		done += kv(line, "done");
		*failed += kv(line, "failed") + kv(line, "canceled");
	}
	return done + *failed;
}

static void
throughput(uint64_t n)
{
	static char	 body[BATCH_SIZE * 16];
	char		 head[512];
	uint64_t	 t0, t1, sent, k, i, before, failed, f0, got;
	size_t		 blen;

	/* SIMQ_BENCH_BATCH_OPTS: option words for the BATCHes ("cpus=2
	 * mem=1048576"), or several sets separated by '|', one per BATCH
	 * in turn: jobs of several shapes (tests/bench/resources.sh). */
	const char	*all = getenv("SIMQ_BENCH_BATCH_OPTS"), *o = all, *bar;
	int		 olen;

	before = finished(&f0);
	t0 = now_ns(CLOCK_MONOTONIC);
	for (sent = 0; sent < n; sent += k) {
		if (o != NULL && *o == '\0')
			o = all;
		bar = o != NULL ? strchr(o, '|') : NULL;
		olen = o == NULL ? 0 : bar ? (int)(bar - o) : (int)strlen(o);
		k = n - sent < BATCH_SIZE ? n - sent : BATCH_SIZE;
		blen = 0;
		for (i = 0; i < k; i++) {
			memcpy(body + blen, "/bin/true\n", 10);
			blen += 10;
		}
		snprintf(head, sizeof head, "BATCH %.*s%s%zu\r\n", olen,
		    o ? o : "", olen ? " " : "", blen);
		if (o != NULL)
			o = bar ? bar + 1 : "";
		send_all(head, strlen(head));
		send_all(body, blen);
		send_all("\r\n", 2);
		read_line(line, sizeof line);
		if (strncmp(line, "OK ", 3) != 0)
			die("BATCH: %s", line);
	}
	/* The worker is busy; a QUEUES every few ms costs the broker little
	 * next to the jobs it dispatches. */
	while ((got = finished(&failed) - before) < n) {
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
	t1 = now_ns(CLOCK_MONOTONIC) - t0;
	printf("jobs=%llu failed=%llu secs=%.3f rate=%.0f\n",
	    (unsigned long long)n, (unsigned long long)(failed - f0),
	    t1 / 1e9, n / (t1 / 1e9));
}

static void
report_lat(uint64_t *lat, uint64_t n)
{
	qsort(lat, n, sizeof lat[0], cmp_u64);
	printf("samples=%llu median_us=%.0f p99_us=%.0f min_us=%.0f "
	    "p10_us=%.0f max_us=%.0f\n", (unsigned long long)n,
	    lat[(n - 1) / 2] / 1e3, lat[(n * 99 + 99) / 100 - 1] / 1e3,
	    lat[0] / 1e3, lat[(n * 10 + 99) / 100 - 1] / 1e3,
	    lat[n - 1] / 1e3);
}

static void
latency(uint64_t n, const char *prog)
{
	static uint64_t	 lat[SAMPLES_MAX];
	char		 req[4096], out[64];
	uint64_t	 i, t0, stamp, id, len;
	struct timespec	 pause = { 0, IDLE_MS * 1000000L };

	if (n > SAMPLES_MAX)
		n = SAMPLES_MAX;
	for (i = 0; i < n; i++) {
		/* Let the worker go idle: its TAKE parked again. */
		nanosleep(&pause, NULL);
		snprintf(req, sizeof req, "SUBMIT -- %s stamp\r\n", prog);
		t0 = now_ns(CLOCK_REALTIME);
		request(req);
		if (sscanf(line, "OK %llu", (unsigned long long *)&id) != 1)
			die("SUBMIT: %s", line);
		snprintf(req, sizeof req, "WAIT 10000 %llu\r\n",
		    (unsigned long long)id);
		request(req);
		read_line(line, sizeof line);
		if (strstr(line, "state=done") == NULL)
			die("job %llu: %s", (unsigned long long)id, line);
		snprintf(req, sizeof req, "OUTPUT %llu stdout\r\n",
		    (unsigned long long)id);
		request(req);
		if (sscanf(line, "DATA %llu", (unsigned long long *)&len) != 1 ||
		    len + 2 > sizeof out)
			die("OUTPUT: %s", line);
		read_bytes(out, len + 2);
		out[len] = '\0';
		stamp = strtoull(out, NULL, 10);
		lat[i] = stamp > t0 ? stamp - t0 : 0;
	}
	report_lat(lat, n);
}

/* vfork and exec argv with stdout on fd. */
static pid_t
spawn_stamp(char **argv, int out)
{
	pid_t	pid;

	if ((pid = vfork()) == 0) {
		dup2(out, 1);
		execve(argv[0], argv, environ);
		_exit(127);
	}
	return pid;
}

/* Spawn to main() of "prog stamp", with nothing in between. */
static void
execlat(uint64_t n, const char *prog, long idle_ms)
{
	static uint64_t	 lat[SAMPLES_MAX];
	char		*argv[] = { (char *)prog, "stamp", NULL };
	char		 out[64];
	uint64_t	 i, t0, stamp;
	ssize_t		 r;
	size_t		 got;
	pid_t		 pid;
	int		 p[2], st;
	struct timespec	 pause = { idle_ms / 1000, idle_ms % 1000 * 1000000L };

	if (n > SAMPLES_MAX)
		n = SAMPLES_MAX;
	for (i = 0; i < n; i++) {
		if (idle_ms > 0)
			nanosleep(&pause, NULL);
		if (pipe(p) < 0)
			die("pipe: %s", strerror(errno));
		t0 = now_ns(CLOCK_REALTIME);
		pid = spawn_stamp(argv, p[1]);
		close(p[1]);
		got = 0;
		while ((r = read(p[0], out + got, sizeof out - 1 - got)) > 0)
			got += (size_t)r;
		close(p[0]);
		out[got] = '\0';
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || st != 0)
			die("execlat: %s failed", prog);
		stamp = strtoull(out, NULL, 10);
		lat[i] = stamp > t0 ? stamp - t0 : 0;
	}
	report_lat(lat, n);
}

static void
usage(void)
{
	fprintf(stderr,
"usage: bench_spawn [-p PORT] [-t SECS] MODE ARGS\n"
"  ceiling N P [PROG]   P processes fork, exec PROG and wait, N in all\n"
"  throughput N         N /bin/true jobs through the broker's workers\n"
"  latency N PROG       submit-to-start of \"PROG stamp\" jobs, one at a time\n"
"  execlat N PROG [MS]  vfork-to-start of \"PROG stamp\", no simq involved;\n"
"                       MS: idle that long before each start\n"
"  stamp                print CLOCK_REALTIME in ns\n"
"  port                 print a free loopback port\n"
"  ping                 wait until the broker answers (up to -t SECS)\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	sin;
	socklen_t		slen = sizeof sin;
	uint64_t		n, t0;
	int			ch, secs = 10, s;

	while ((ch = getopt(argc, argv, "p:t:")) != -1) {
		switch (ch) {
		case 'p':
			port = atoi(optarg);
			break;
		case 't':
			secs = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (strcmp(argv[0], "stamp") == 0) {
		/* The first thing the job does. */
		printf("%llu\n", (unsigned long long)now_ns(CLOCK_REALTIME));
		return 0;
	}
	if (strcmp(argv[0], "execlat") == 0 && (argc == 3 || argc == 4)) {
		execlat(strtoull(argv[1], NULL, 10), argv[2],
		    argc == 4 ? atol(argv[3]) : 0);
		return 0;
	}
	if (strcmp(argv[0], "ceiling") == 0 && (argc == 3 || argc == 4)) {
		ceiling(strtoull(argv[1], NULL, 10), atoi(argv[2]),
		    argc == 4 ? argv[3] : "/bin/true");
		return 0;
	}
	if (strcmp(argv[0], "port") == 0) {
		if ((s = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			die("socket: %s", strerror(errno));
		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(s, (struct sockaddr *)&sin, sizeof sin) < 0 ||
		    getsockname(s, (struct sockaddr *)&sin, &slen) < 0)
			die("bind: %s", strerror(errno));
		printf("%d\n", ntohs(sin.sin_port));
		close(s);
		return 0;
	}
	t0 = now_ns(CLOCK_MONOTONIC);
	while ((fd = dial()) < 0) {
		if (now_ns(CLOCK_MONOTONIC) - t0 > (uint64_t)secs * 1000000000)
			die("cannot connect to 127.0.0.1:%d", port);
		usleep(10000);
	}
	request("PING\r\n");
	if (strcmp(argv[0], "ping") == 0)
		printf("ok=1\n");
	else if (strcmp(argv[0], "throughput") == 0 && argc == 2) {
		if ((n = strtoull(argv[1], NULL, 10)) == 0)
			usage();
		throughput(n);
	} else if (strcmp(argv[0], "latency") == 0 && argc == 3) {
		if ((n = strtoull(argv[1], NULL, 10)) == 0)
			usage();
		latency(n, argv[2]);
	} else
		usage();
	return 0;
}
