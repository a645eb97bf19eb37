/*
 * cgsweep.c: the cgroups a killed worker left behind.
 *
 * A worker that can limit memory makes, below the cgroup it was started
 * in, a leaf for itself (simq-worker-PID) and one cgroup per slot
 * (simq-PID-slotN), and removes them when it exits (resources.c); a
 * kill -9 leaves them there, empty.  The next worker started in that
 * cgroup removes them.  The one idea that makes this safe: rmdir(2)
 * removes no cgroup that holds a process or a cgroup of its own, so the
 * sweep can only ever take what is truly empty; it also takes only the
 * names a worker makes, only for a PID that is no live process, and
 * never the caller's own.
 *
 * Plain libc, no worker state: the unit tests run it on a temporary
 * directory tree (tests/unit/test_cgsweep.c).
 */
#include <sys/types.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simq-worker.h"

/* Reads the decimal PID at *p (no sign, no leading zero), moving *p past
 * it.  Returns it, or 0 if there is none or it is out of range. */
static pid_t
pid_at(const char **p)
{
	const char	*s = *p;
	long		 v = 0;

	if (*s < '1' || *s > '9')
		return 0;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s++ - '0');
		if (v > INT_MAX)
			return 0;
	}
	*p = s;
	return (pid_t)v;
}

pid_t
cg_sweep_pid(const char *name)
{
	const char	*p;
	pid_t		 pid;

	if (strncmp(name, "simq-worker-", 12) == 0) {
		p = name + 12;
		pid = pid_at(&p);
		return *p == '\0' ? pid : 0;
	}
	if (strncmp(name, "simq-", 5) != 0)
		return 0;
	p = name + 5;
	if ((pid = pid_at(&p)) == 0 || strncmp(p, "-slot", 5) != 0)
		return 0;
	p += 5;
	if (*p == '0' && p[1] == '\0')
		return pid;
	if (pid_at(&p) == 0 || *p != '\0')
		return 0;
	return pid;
}

/* Whether pid is a live process (one we may not signal is live). */
static int
pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

int
cg_sweep(const char *base, pid_t self)
{
	DIR		*d;
	struct dirent	*e;
	char		 path[PATH_MAX];
	pid_t		 pid;
	int		 n = 0;

	if ((d = opendir(base)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
			continue;
		if ((pid = cg_sweep_pid(e->d_name)) == 0 || pid == self ||
		    pid_alive(pid))
			continue;
		if (snprintf(path, sizeof path, "%s/%s", base, e->d_name) >=
		    (int)sizeof path)
			continue;
		if (rmdir(path) == 0)
			n++;
	}
	closedir(d);
	return n;
}
