/*
 * resources.c: what this worker offers (--cpus, --gpus, --mem), what its
 * jobs hold of it, and what it tells the broker is free.
 *
 * The one idea: the worker, not the broker, knows which GPU a job gets.
 * The broker counts (TAKE cpus= gpus= mem= say how much is free); the
 * worker gives each job, when it starts, the lowest-numbered GPUs no
 * running job holds, names exactly those in its CUDA_VISIBLE_DEVICES,
 * and takes them back when it ends, so two jobs never share one.  A
 * TAKE says what is free of what the worker knows of: a reply still on
 * its way may lease more, which the broker counts itself (fit.c takes
 * the smaller of both), and a job that does not fit when it arrives
 * waits, held, until it does.  Jobs held are kept room for: a TAKE does
 * not offer what they will need, and they start in the order they came.
 *
 * Memory: a job's mem= is enforced with a cgroup v2 memory.max where
 * the worker may make cgroups (res_cgroup_init), else with RLIMIT_AS
 * (its address space), which makes an allocation past it fail instead.
 */
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "simq-worker.h"

static uint32_t	used_cpus;
static uint64_t	gpus_busy;		/* mask of indices into cfg.gpu */
static uint64_t	used_mem;

/* cgroup v2: the directory our slots' cgroups go in, or NULL; our own
 * leaf there; whether we turned the memory controller on in it. */
static char	*cg_base;
static char	*cg_leaf;
static int	 cg_turned_on;

static int
popcount64(uint64_t m)
{
	return __builtin_popcountll(m);
}

/* Adds the GPU named s (as CUDA_VISIBLE_DEVICES names one: an index or
 * a UUID).  Returns 0, or -1 if there are too many or s is bad. */
static int
gpu_add(const char *s, size_t n)
{
	size_t	i;

	if (n == 0 || n > 128 || W->cfg.ngpus >= SIMQ_GPUS_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (!(s[i] == '-' || s[i] == '_' || s[i] == ':' ||
		    (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		    s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return -1;
	W->cfg.gpu[W->cfg.ngpus++] = xstrndup(s, n);
	return 0;
}

/* A comma-separated list: "0,1", "GPU-5c3e...". */
static int
gpu_list(const char *s)
{
	const char	*comma;

	if (*s == '\0')
		return 0;
	for (;;) {
		comma = strchr(s, ',');
		if (gpu_add(s, comma ? (size_t)(comma - s) : strlen(s)) < 0)
			return -1;
		if (comma == NULL)
			return 0;
		s = comma + 1;
	}
}

/* `nvidia-smi -L`, when it is on the PATH: one "GPU N: ..." line per
 * GPU. */
static void
gpu_nvidia_smi(void)
{
	FILE	*f;
	char	 line[512];
	unsigned n;

	if ((f = popen("command -v nvidia-smi >/dev/null 2>&1 && "
	    "nvidia-smi -L 2>/dev/null", "r")) == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		char idx[16];
		if (sscanf(line, "GPU %u:", &n) != 1)
			continue;
		snprintf(idx, sizeof idx, "%u", n);
		if (gpu_add(idx, strlen(idx)) < 0)
			break;
	}
	(void)pclose(f);
}

/*
 * --gpus: "auto" (CUDA_VISIBLE_DEVICES if set, else what nvidia-smi -L
 * lists, else none), "none", or a list.  Returns 0, or -1 for a bad one.
 */
int
res_gpus(const char *spec)
{
	const char	*env;
	uint32_t	 i;

	for (i = 0; i < W->cfg.ngpus; i++)
		free(W->cfg.gpu[i]);
	W->cfg.ngpus = 0;
	if (strcmp(spec, "none") == 0)
		return 0;
	if (strcmp(spec, "auto") != 0)
		return gpu_list(spec);
	if ((env = getenv("CUDA_VISIBLE_DEVICES")) != NULL) {
		/* What CUDA itself would see: nothing for Slurm's
		 * "NoDevFiles", and only the devices before an invalid
		 * index such as "-1". */
		char *list = xstrdup(env), *p;
		if ((p = strstr(list, ",-")) != NULL)
			*p = '\0';
		if (strcmp(list, "NoDevFiles") == 0 || list[0] == '-' ||
		    gpu_list(list) < 0) {
			for (i = 0; i < W->cfg.ngpus; i++)
				free(W->cfg.gpu[i]);
			W->cfg.ngpus = 0;
		}
		free(list);
		return 0;
	}
	gpu_nvidia_smi();
	return 0;
}

/* The node's memory (MemTotal), or 0 when it cannot be read. */
uint64_t
res_node_mem(void)
{
	FILE			*f = fopen("/proc/meminfo", "r");
	char			 line[256];
	unsigned long long	 kib = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return (uint64_t)kib * 1024;
}

/* What jobs leased ahead and still held will need. */
static void
held_needs(uint32_t *cpus, uint32_t *gpus, uint64_t *mem)
{
	struct wjob	*j;

	*cpus = *gpus = 0;
	*mem = 0;
	TAILQ_FOREACH(j, &W->jobs, entry) {
		if (j->state != WJ_HELD)
			continue;
		*cpus += j->cpus;
		*gpus += j->gpus;
		*mem += j->mem;
	}
}

static uint32_t
sub32(uint32_t a, uint32_t b)
{
	return a > b ? a - b : 0;
}

static uint64_t
sub64(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* Free now: the offer less what running jobs hold. */
static void
res_free(uint32_t *cpus, uint32_t *gpus, uint64_t *mem)
{
	*cpus = sub32(W->cfg.slots, used_cpus);
	*gpus = sub32(W->cfg.ngpus, (uint32_t)popcount64(gpus_busy));
	*mem = sub64(W->cfg.mem, used_mem);
}

/* Whether j can start now; behind_held: and leave what the jobs held
 * need (j is not one of them). */
int
res_fits(const struct wjob *j, int behind_held)
{
	uint32_t	cpus, gpus, hc = 0, hg = 0;
	uint64_t	mem, hm = 0;

	res_free(&cpus, &gpus, &mem);
	if (behind_held)
		held_needs(&hc, &hg, &hm);
	return j->cpus + hc <= cpus && j->gpus + hg <= gpus &&
	    j->mem + hm <= mem;
}

/* Whether j could ever run here (a job leased ahead that asks for more
 * than the worker has is failed rather than held for ever). */
int
res_could(const struct wjob *j)
{
	return j->cpus <= W->cfg.slots && j->gpus <= W->cfg.ngpus &&
	    j->mem <= W->cfg.mem;
}

/* What the last TAKE said was free. */
static uint32_t	said_cpus, said_gpus;
static uint64_t	said_mem;

/* What a TAKE says is free: free and not kept for jobs held. */
static void
res_offer(uint32_t *cpus, uint32_t *gpus, uint64_t *mem)
{
	uint32_t	hc, hg;
	uint64_t	hm;

	res_free(cpus, gpus, mem);
	held_needs(&hc, &hg, &hm);
	*cpus = sub32(*cpus, hc);
	*gpus = sub32(*gpus, hg);
	*mem = sub64(*mem, hm);
}

/* The words of a TAKE. */
void
res_take_words(struct evbuffer *o)
{
	res_offer(&said_cpus, &said_gpus, &said_mem);
	evbuffer_add_printf(o, " cpus=%u gpus=%u mem=%llu", said_cpus,
	    said_gpus, (unsigned long long)said_mem);
}

/*
 * Whether more is free than the last TAKE said.  A TAKE waiting at the
 * broker with such words would never get a job that needs what has
 * freed since (a 2-CPU job, once a second CPU is free): main.c then
 * sends a new one, which ends the old.
 */
int
res_stale(void)
{
	uint32_t	cpus, gpus;
	uint64_t	mem;

	res_offer(&cpus, &gpus, &mem);
	return cpus > said_cpus || gpus > said_gpus || mem > said_mem;
}

/* Adds "K=V" to j's environment additions, at the front (it wins over
 * the job's own) or at the back (the job's own wins). */
static void
env_put(struct wjob *j, char *kv, int front)
{
	if (front) {
		memmove(j->env + 1, j->env, (size_t)j->nenv * sizeof *j->env);
		j->env[0] = kv;
	} else
		j->env[j->nenv] = kv;
	j->nenv++;
}

static int
env_given(const struct wjob *j, const char *name)
{
	size_t	n = strlen(name);
	int	i;

	for (i = 0; i < j->nenv; i++)
		if (strncmp(j->env[i], name, n) == 0 && j->env[i][n] == '=')
			return 1;
	return 0;
}

/*
 * j starts: it takes its CPUs, memory and the lowest free GPUs, and its
 * environment says so: SIMQ_CPUS, CUDA_VISIBLE_DEVICES (exactly its
 * GPUs, empty for none: it must not use another job's) and
 * OMP_NUM_THREADS unless the job sets it.  j->env has room for these
 * three (job.c).
 */
void
res_claim(struct wjob *j)
{
	char		 list[SIMQ_GPUS_MAX * 130 + 1];
	size_t		 n = 0;
	uint32_t	 i, k = 0;

	list[0] = '\0';
	j->gpumask = 0;
	for (i = 0; i < W->cfg.ngpus && k < j->gpus; i++) {
		if (gpus_busy & (UINT64_C(1) << i))
			continue;
		j->gpumask |= UINT64_C(1) << i;
		n += (size_t)snprintf(list + n, sizeof list - n, "%s%s",
		    k ? "," : "", W->cfg.gpu[i]);
		k++;
	}
	gpus_busy |= j->gpumask;
	used_cpus += j->cpus;
	used_mem += j->mem;
	j->claimed = 1;
	if (!env_given(j, "OMP_NUM_THREADS"))
		env_put(j, xprintf("OMP_NUM_THREADS=%u", j->cpus), 0);
	env_put(j, xprintf("CUDA_VISIBLE_DEVICES=%s", list), 1);
	env_put(j, xprintf("SIMQ_CPUS=%u", j->cpus), 1);
	if (j->gpus)
		env_put(j, xprintf("SIMQ_GPUS=%s", list), 1);
}

/* j's processes are gone: what it held is free. */
void
res_release(struct wjob *j)
{
	if (!j->claimed)
		return;
	j->claimed = 0;
	gpus_busy &= ~j->gpumask;
	j->gpumask = 0;
	used_cpus -= j->cpus;
	used_mem -= j->mem;
}

/*
 * cgroup v2.  A job's memory limit needs a cgroup of its own with the
 * memory controller, which the kernel allows only below a cgroup that
 * holds no process: so the worker moves itself into a leaf ("worker")
 * of the cgroup it was started in, turns the memory controller on for
 * that cgroup's children, and makes one cgroup per slot beside its own
 * ("simq-PID-slot0", ...), into which each slot's shepherd goes;
 * memory.max is set there before each job.  This works where the worker owns its
 * cgroup (a systemd unit with Delegate=yes, a container, a Slurm job
 * with cgroup v2 delegation); elsewhere nothing is changed and the
 * fallback is RLIMIT_AS.  At exit the worker removes what it made
 * (res_cgroup_cleanup); what a kill -9 left, the next worker started
 * there removes (cgsweep.c).
 */

static int
write_file(const char *path, const char *s)
{
	int	fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t	n;
	int	err;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	err = errno;
	close(fd);
	errno = err;
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* The cgroup2 mount point, from /proc/self/mountinfo. */
static char *
cgroup2_mount(void)
{
	FILE	*f = fopen("/proc/self/mountinfo", "r");
	char	 line[4096], mnt[PATH_MAX], *dash;
	char	*res = NULL;

	if (f == NULL)
		return NULL;
	while (fgets(line, sizeof line, f) != NULL) {
		if ((dash = strstr(line, " - cgroup2 ")) == NULL)
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			res = xstrdup(mnt);
			break;
		}
	}
	fclose(f);
	return res;
}

/* Our cgroup v2 path ("0::/a/b"), from /proc/self/cgroup. */
static char *
cgroup2_self(void)
{
	FILE	*f = fopen("/proc/self/cgroup", "r");
	char	 line[4096], *res = NULL;
	size_t	 n;

	if (f == NULL)
		return NULL;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		n = strcspn(line + 3, "\n");
		res = xstrndup(line + 3, n);
		break;
	}
	fclose(f);
	return res;
}

static int
has_word(const char *path, const char *word)
{
	FILE	*f = fopen(path, "r");
	char	 buf[1024], *tok, *save;
	int	 found = 0;

	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof buf, f) != NULL)
		for (tok = strtok_r(buf, " \n", &save); tok != NULL;
		    tok = strtok_r(NULL, " \n", &save))
			if (strcmp(tok, word) == 0)
				found = 1;
	fclose(f);
	return found;
}

/*
 * Sets up the cgroups, if it can.  Returns 1 when memory limits will be
 * cgroup v2 ones, 0 when they fall back to RLIMIT_AS; why says why not.
 */
int
res_cgroup_init(char *why, size_t whylen)
{
	char	*mnt = NULL, *self = NULL, *base = NULL, *leaf = NULL;
	char	 pid[32], path[PATH_MAX];
	int	 ok = 0, n;

	if ((mnt = cgroup2_mount()) == NULL) {
		snprintf(why, whylen, "no cgroup v2 file system is mounted");
		goto out;
	}
	if ((self = cgroup2_self()) == NULL) {
		snprintf(why, whylen, "this process is in no cgroup v2");
		goto out;
	}
	base = xprintf("%s%s", mnt, strcmp(self, "/") == 0 ? "" : self);
	snprintf(path, sizeof path, "%s/cgroup.controllers", base);
	if (!has_word(path, "memory")) {
		snprintf(why, whylen, "the memory controller is not available "
		    "in %s (cgroup v1 holds it, or it is not delegated)", base);
		goto out;
	}
	if ((n = cg_sweep(base, getpid())) > 0)
		log_info("removed %d empty cgroup%s left in %s by workers that "
		    "were killed", n, n == 1 ? "" : "s", base);
	leaf = xprintf("%s/simq-worker-%d", base, (int)getpid());
	if (mkdir(leaf, 0755) < 0 && errno != EEXIST) {
		snprintf(why, whylen, "cannot make %s: %s", leaf,
		    strerror(errno));
		goto out;
	}
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	snprintf(path, sizeof path, "%s/cgroup.procs", leaf);
	if (write_file(path, pid) < 0) {
		snprintf(why, whylen, "cannot move into %s: %s", leaf,
		    strerror(errno));
		(void)rmdir(leaf);
		goto out;
	}
	snprintf(path, sizeof path, "%s/cgroup.subtree_control", base);
	if (!has_word(path, "memory")) {
		if (write_file(path, "+memory") < 0) {
			snprintf(why, whylen, "cannot enable the memory "
			    "controller in %s: %s (other processes share the "
			    "cgroup)", base, strerror(errno));
			snprintf(path, sizeof path, "%s/cgroup.procs", base);
			(void)write_file(path, pid);
			(void)rmdir(leaf);
			goto out;
		}
		cg_turned_on = 1;
	}
	cg_base = base;
	cg_leaf = leaf;
	base = leaf = NULL;
	ok = 1;
out:
	free(mnt);
	free(self);
	free(base);
	free(leaf);
	return ok;
}

/* Whether memory limits are cgroup ones. */
int
res_cgroup(void)
{
	return cg_base != NULL;
}

/* The shepherd pid of slot i goes into the slot's cgroup.  Returns 0,
 * or -1 (logged; the slot's jobs then get RLIMIT_AS). */
int
res_cgroup_slot(uint32_t i, pid_t pid)
{
	char	path[PATH_MAX], s[32];

	if (cg_base == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/simq-%d-slot%u", cg_base,
	    (int)W->pid, i);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		goto fail;
	snprintf(path, sizeof path, "%s/simq-%d-slot%u/cgroup.procs", cg_base,
	    (int)W->pid, i);
	snprintf(s, sizeof s, "%d", (int)pid);
	if (write_file(path, s) < 0)
		goto fail;
	return 0;
fail:
	log_warn("cgroup %s: %s", path, strerror(errno));
	return -1;
}

/* Before slot i runs a job: its memory.max (0: none).  Returns 0, or
 * -1. */
int
res_cgroup_limit(uint32_t i, uint64_t mem)
{
	char	path[PATH_MAX], s[32];

	if (cg_base == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/simq-%d-slot%u/memory.max", cg_base,
	    (int)W->pid, i);
	if (mem)
		snprintf(s, sizeof s, "%llu", (unsigned long long)mem);
	else
		snprintf(s, sizeof s, "max");
	if (write_file(path, s) < 0) {
		log_warn("cgroup %s: %s", path, strerror(errno));
		return -1;
	}
	/* No swap either: past its memory the job is killed, not slowed. */
	snprintf(path, sizeof path, "%s/simq-%d-slot%u/memory.swap.max", cg_base,
	    (int)W->pid, i);
	(void)write_file(path, mem ? "0" : "max");
	return 0;
}

/* The OOM kills counted in slot i's cgroup so far (memory.events). */
uint64_t
res_cgroup_ooms(uint32_t i)
{
	char			 path[PATH_MAX], line[256];
	FILE			*f;
	unsigned long long	 n = 0, v;

	if (cg_base == NULL)
		return 0;
	snprintf(path, sizeof path, "%s/simq-%d-slot%u/memory.events", cg_base,
	    (int)W->pid, i);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "oom_kill %llu", &v) == 1)
			n = v;
	fclose(f);
	return n;
}

/* How long the exit waits for the shepherds to leave their cgroups:
 * their sockets are closed and they exit at once, unless a job's
 * processes must be killed first. */
#define CG_RMDIR_WAIT_MS	2000

/* Removes the cgroup path, waiting while processes are still leaving it.
 * Returns 0, or -1 with errno set. */
static int
cg_rmdir(const char *path)
{
	uint64_t	since = mono_ms();

	while (rmdir(path) < 0) {
		if (errno != EBUSY || mono_ms() - since >= CG_RMDIR_WAIT_MS)
			return errno == ENOENT ? 0 : -1;
		sleep_ms(10);
	}
	return 0;
}

/* Whether base holds no cgroup but our leaf. */
static int
cg_alone(void)
{
	DIR		*d;
	struct dirent	*e;
	char		*name = strrchr(cg_leaf, '/') + 1;
	int		 alone = 1;

	if ((d = opendir(cg_base)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0 &&
		    strcmp(e->d_name, name) != 0)
			alone = 0;
	closedir(d);
	return alone;
}

/*
 * Our leaf goes too, which needs the worker out of it first: back in the
 * cgroup it was started in.  That cgroup may hold a process only with
 * no controller on for its children (unless it is the root), so the
 * memory controller is turned off again if we turned it on and no other
 * cgroup is below it; else the leaf stays, empty once we exit, for the
 * next worker started here to remove.
 */
static void
cg_leave(void)
{
	char	path[PATH_MAX], pid[32];

	snprintf(pid, sizeof pid, "%d", (int)getpid());
	snprintf(path, sizeof path, "%s/cgroup.procs", cg_base);
	if (write_file(path, pid) < 0) {
		if (errno != EBUSY || !cg_turned_on || !cg_alone())
			goto stays;
		snprintf(path, sizeof path, "%s/cgroup.subtree_control",
		    cg_base);
		if (write_file(path, "-memory") < 0)
			goto stays;
		snprintf(path, sizeof path, "%s/cgroup.procs", cg_base);
		if (write_file(path, pid) < 0)
			goto stays;
	}
	if (cg_rmdir(cg_leaf) < 0)
		log_warn("cgroup %s: %s", cg_leaf, strerror(errno));
	return;
stays:
	log_verbose("cgroup %s stays (%s), empty once this worker exits: the "
	    "next worker started in %s removes it", cg_leaf, strerror(errno),
	    cg_base);
}

/* At exit: the slots' cgroups go (their shepherds are exiting), then
 * our leaf. */
void
res_cgroup_cleanup(void)
{
	char		path[PATH_MAX];
	uint32_t	i;

	if (cg_base == NULL)
		return;
	for (i = 0; i < W->cfg.slots; i++) {
		snprintf(path, sizeof path, "%s/simq-%d-slot%u", cg_base,
		    (int)W->pid, i);
		if (cg_rmdir(path) < 0)
			log_warn("cgroup %s: %s", path, strerror(errno));
	}
	cg_leave();
	free(cg_base);
	free(cg_leaf);
	cg_base = cg_leaf = NULL;
}
