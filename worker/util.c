/*
 * util.c: logging, allocation that aborts on failure, clocks, small
 * parsers, and killing the children of a process found in /proc.
 *
 * The worker logs to stderr, one timestamped line per event, like simqd.
 * Everything it allocates is small and internal (a job's strings, a
 * request record), so running out of memory is fatal: the shepherds see
 * the worker die and kill its jobs, and the broker re-queues them.
 */
#include <sys/time.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/util.h>

#include "simq-worker.h"

static void
vlog(const char *level, const char *fmt, va_list ap)
{
	struct timeval	tv;
	struct tm	tm;
	char		ts[32], line[2048];
	int		n;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
	n = snprintf(line, sizeof line, "%s.%03ld simq-worker %s: ", ts,
	    (long)tv.tv_usec / 1000, level);
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	/* One fputs of a whole line: lines of the worker and of its
	 * shepherds never interleave within a line. */
	fprintf(stderr, "%s\n", line);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog("info", fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog("warning", fmt, ap);
	va_end(ap);
}

/* -v: a line per job. */
void
log_verbose(const char *fmt, ...)
{
	va_list	ap;

	if (W->cfg.verbose < 1)
		return;
	va_start(ap, fmt);
	vlog("info", fmt, ap);
	va_end(ap);
}

/* -vv: the protocol. */
void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (W->cfg.verbose < 2)
		return;
	va_start(ap, fmt);
	vlog("debug", fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog("fatal", fmt, ap);
	va_end(ap);
	exit(1);
}

void *
xmalloc(size_t n)
{
	void	*p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("out of memory (%zu bytes)", n);
	return p;
}

void *
xcalloc(size_t n, size_t m)
{
	void	*p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		fatal("out of memory (%zu x %zu bytes)", n, m);
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* Returns a new string; the caller frees it. */
char *
xprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("out of memory");
	return s;
}

/* Wall-clock milliseconds: the times reported to the broker. */
uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Monotonic milliseconds: for holding off and backoff. */
uint64_t
mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
ms_to_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* Sizes like "512M", "4G", "1T" or plain bytes.  Returns 0, or -1. */
int
parse_size(const char *s, uint64_t *out)
{
	size_t		len = strlen(s);
	uint64_t	mul = 1, v;

	if (len > 1) {
		switch (s[len - 1]) {
		case 'K': case 'k': mul = UINT64_C(1) << 10; len--; break;
		case 'M': case 'm': mul = UINT64_C(1) << 20; len--; break;
		case 'G': case 'g': mul = UINT64_C(1) << 30; len--; break;
		case 'T': case 't': mul = UINT64_C(1) << 40; len--; break;
		}
	}
	if (proto_parse_u64(s, len, UINT64_MAX / mul, &v) < 0)
		return -1;
	*out = v * mul;
	return 0;
}

uint64_t
jitter(uint64_t lo, uint64_t hi)
{
	uint32_t	r;

	if (hi <= lo)
		return lo;
	evutil_secure_rng_get_bytes(&r, sizeof r);
	return lo + r % (hi - lo + 1);
}

/*
 * Looking for processes in /proc: the children of a process.  Without
 * /proc/PID/task/TID/children on every kernel, this reads each process's
 * stat; it only runs when something outlived a job's process group.
 */
int
util_kill_children(pid_t parent, int (*keep)(pid_t))
{
	DIR		*d;
	struct dirent	*de;
	char		 path[64], buf[512], *p;
	int		 fd, n = 0;
	ssize_t		 r;
	long		 ppid;
	pid_t		 pid;

	if ((d = opendir("/proc")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = (pid_t)atol(de->d_name);
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		/* "pid (comm) state ppid ...": comm may hold anything. */
		if ((p = strrchr(buf, ')')) == NULL || p[1] == '\0' ||
		    sscanf(p + 2, "%*c %ld", &ppid) != 1 || ppid != parent ||
		    (keep != NULL && keep(pid)))
			continue;
		if (kill(pid, SIGKILL) == 0)
			n++;
	}
	closedir(d);
	return n;
}
