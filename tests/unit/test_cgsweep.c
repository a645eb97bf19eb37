/*
 * test_cgsweep.c: unit tests for the removal of the cgroups a killed
 * worker left (worker/cgsweep.c), run on a temporary directory tree: on
 * a cgroup v2 file system rmdir(2) refuses a populated cgroup as it
 * refuses a directory that holds a file here.  The rest (moving the
 * worker out of its leaf at exit) needs a cgroup v2 tree with the
 * memory controller delegated, and is not tested here.
 *
 * Linked with worker/cgsweep.c only.
 */
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "simq-worker.h"

static void
test_names(void **state)
{
	assert_int_equal(cg_sweep_pid("simq-worker-1234"), 1234);
	assert_int_equal(cg_sweep_pid("simq-77-slot0"), 77);
	assert_int_equal(cg_sweep_pid("simq-77-slot12"), 77);
	assert_int_equal(cg_sweep_pid("simq-worker-"), 0);
	assert_int_equal(cg_sweep_pid("simq-worker-0"), 0);
	assert_int_equal(cg_sweep_pid("simq-worker-012"), 0);
	assert_int_equal(cg_sweep_pid("simq-worker-12x"), 0);
	assert_int_equal(cg_sweep_pid("simq-worker-99999999999"), 0);
	assert_int_equal(cg_sweep_pid("simq-worker--1"), 0);
	assert_int_equal(cg_sweep_pid("simq-77-slot"), 0);
	assert_int_equal(cg_sweep_pid("simq-77-slot01"), 0);
	assert_int_equal(cg_sweep_pid("simq-77-slot1x"), 0);
	assert_int_equal(cg_sweep_pid("simq-77"), 0);
	assert_int_equal(cg_sweep_pid("simq--slot0"), 0);
	assert_int_equal(cg_sweep_pid("worker"), 0);
	assert_int_equal(cg_sweep_pid("system.slice"), 0);
}

/* A PID no process has: a child's, once it is reaped. */
static pid_t
dead_pid(void)
{
	pid_t	pid = fork();
	int	st;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return pid;
}

static void	path_of(char *, size_t, const char *, const char *, va_list)
		    __attribute__((format(printf, 4, 0)));
static void	mk(const char *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	there(const char *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static void
path_of(char *path, size_t size, const char *base, const char *fmt,
    va_list ap)
{
	char	name[256];

	vsnprintf(name, sizeof name, fmt, ap);
	snprintf(path, size, "%s/%s", base, name);
}

static void
mk(const char *base, const char *fmt, ...)
{
	char	path[512];
	va_list	ap;

	va_start(ap, fmt);
	path_of(path, sizeof path, base, fmt, ap);
	va_end(ap);
	assert_int_equal(mkdir(path, 0755), 0);
}

static int
there(const char *base, const char *fmt, ...)
{
	char		path[512];
	struct stat	sb;
	va_list		ap;

	va_start(ap, fmt);
	path_of(path, sizeof path, base, fmt, ap);
	va_end(ap);
	return stat(path, &sb) == 0;
}

static void
test_sweep(void **state)
{
	char	base[] = "/tmp/simq-cgsweep-XXXXXX", path[512];
	pid_t	dead = dead_pid(), live = getppid(), self = getpid();
	FILE	*f;

	assert_non_null(mkdtemp(base));
	/* A dead worker's leaf and slots: they go. */
	mk(base, "simq-worker-%d", dead);
	mk(base, "simq-%d-slot0", dead);
	mk(base, "simq-%d-slot1", dead);
	/* A live process's, ours, and other names: they stay. */
	mk(base, "simq-worker-%d", live);
	mk(base, "simq-%d-slot0", live);
	mk(base, "simq-worker-%d", self);
	mk(base, "simq-%d-slot0", self);
	mk(base, "worker%d", dead);
	mk(base, "simq-worker-%dx", dead);
	/* A dead worker's slot that is not empty (a cgroup still holding a
	 * process, or a cgroup below it): it stays. */
	mk(base, "simq-%d-slot2", dead);
	snprintf(path, sizeof path, "%s/simq-%d-slot2/held", base, dead);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);
	/* A file of that name is not a cgroup. */
	snprintf(path, sizeof path, "%s/simq-%d-slot3", base, dead);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);

	assert_int_equal(cg_sweep(base, self), 3);
	assert_false(there(base, "simq-worker-%d", dead));
	assert_false(there(base, "simq-%d-slot0", dead));
	assert_false(there(base, "simq-%d-slot1", dead));
	assert_true(there(base, "simq-worker-%d", live));
	assert_true(there(base, "simq-%d-slot0", live));
	assert_true(there(base, "simq-worker-%d", self));
	assert_true(there(base, "simq-%d-slot0", self));
	assert_true(there(base, "worker%d", dead));
	assert_true(there(base, "simq-worker-%dx", dead));
	assert_true(there(base, "simq-%d-slot2", dead));
	assert_true(there(base, "simq-%d-slot3", dead));
	/* Again: nothing more to remove. */
	assert_int_equal(cg_sweep(base, self), 0);
	/* A base that is not there: nothing. */
	assert_int_equal(cg_sweep("/nonexistent/simq-cgsweep", self), 0);

	snprintf(path, sizeof path, "rm -rf '%s'", base);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
