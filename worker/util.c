/*
 * util.c: random jitter, and killing the children of a process found in
 * /proc.
 *
 * Logging, allocation, the clocks and the size parser are lib/'s.
 * Everything the worker allocates is small and internal (a job's
 * strings, a request record), so running out of memory is fatal
 * (lib/xmalloc.c): the shepherds see the worker die and kill its jobs,
 * and the broker re-queues them.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/util.h>

#include "simq-worker.h"

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
