/*
 * main.c: simq-worker, the program that runs jobs on a compute node.
 *
 * One process, one libevent loop, no threads.  Signals arrive as events
 * (SIGCHLD reaps shepherds, SIGTERM and SIGINT drain and then stop); the
 * broker connection and the report pipe are events too.  Every callback
 * that changes something ends in worker_poke(), the one place that
 * decides what the worker does next: ask for as many jobs as it has free
 * slots (never polling: a TAKE parks at the broker until there is work),
 * end a parked TAKE when draining, or exit.  So the worker is idle, and
 * uses no CPU, whenever neither the broker nor a job has news.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "simq-worker.h"

/* Queues one worker serves: what the broker accepts in one TAKE. */
#define WORKER_QUEUES_MAX	64

/* Files that travel with jobs: the node's cache of them, and the
 * largest file a job's --collect sends back. */
#define CACHE_MAX_DEFAULT	(UINT64_C(10) << 30)
#define COLLECT_MAX_DEFAULT	(UINT64_C(1) << 30)

/* The default grace between SIGTERM and SIGKILL: long enough for a
 * simulation to write a checkpoint, short enough not to hold a slot. */
#define GRACE_DEFAULT_MS	10000

extern char		**environ;

static struct wstate	 wstate;
struct wstate		*W = &wstate;

static struct event	*hold_ev;
static int		 exiting, ping_sent;

static void
usage(FILE *f)
{
	fprintf(f,
"usage: simq-worker [-v] [-s HOST:PORT] [-q QUEUE[,QUEUE...]] [--cpus N]\n"
"                   [--gpus LIST|auto|none] [--mem SIZE]\n"
"                   [--burst] [--name NAME] [-w DIR] [-m SIZE]\n"
"                   [--grace DURATION] [--lease DURATION]\n"
"                   [--connect-timeout DURATION]\n"
"                   [--idle-timeout DURATION] [--time-limit DURATION]\n"
"                   [--token-file FILE] [--cache-dir DIR] [--cache-max SIZE]\n"
"                   [--jobs-dir DIR] [--collect-max SIZE]\n"
"\n"
"  -s HOST:PORT        the broker (default $SIMQ_SERVER, else\n"
"                      127.0.0.1:7733)\n"
"  -q QUEUE[,QUEUE...] serve these queues, strictly in this order\n"
"                      (default: default)\n"
"  -j N, --cpus N      offer N CPUs: run jobs whose --cpus add up to at\n"
"                      most N at once (default: the number of CPUs this\n"
"                      process may use)\n"
"  --gpus LIST|auto|none\n"
"                      offer these GPUs (\"0,1\", as CUDA_VISIBLE_DEVICES\n"
"                      names them); auto (default): CUDA_VISIBLE_DEVICES\n"
"                      if set, else what nvidia-smi -L lists, else none\n"
"  --mem SIZE          offer SIZE bytes of memory to jobs asking --mem;\n"
"                      each is limited to its own (cgroup v2 memory.max\n"
"                      where the worker may make cgroups, else RLIMIT_AS)\n"
"                      (default: the node's memory, MemTotal)\n"
"  --burst             exit when the queues are empty and no job runs\n"
"  --name NAME         register as NAME (default HOST:PID)\n"
"  -w, --workdir DIR   keep each job's stdout, stderr and result file\n"
"                      here (default $XDG_STATE_HOME/simq if set, else\n"
"                      /var/tmp/simq-USER)\n"
"  -m, --mem-limit SIZE\n"
"                      limit each job's address space (RLIMIT_AS) to\n"
"                      SIZE bytes; K, M, G, T suffixes (default: none)\n"
"  --grace DURATION    between SIGTERM and SIGKILL when a job is timed\n"
"                      out, canceled or stopped (default 10s)\n"
"  --lease DURATION    ask the broker for this lease (default: the\n"
"                      broker's)\n"
"  --connect-timeout DURATION\n"
"                      with --burst: exit 3 when the broker cannot be\n"
"                      reached for this long (default 30s)\n"
"  --idle-timeout DURATION\n"
"                      exit when there has been nothing to run for this\n"
"                      long (default: never)\n"
"  --time-limit DURATION\n"
"                      the worker ends this long after it starts: it\n"
"                      takes only jobs whose --timeout fits, and hands\n"
"                      back what still runs before the end (default: in\n"
"                      a Slurm job, the job's end; else none; 0: none)\n"
"  --token-file FILE   the broker's token (default $SIMQ_TOKEN)\n"
"  --cache-dir DIR     keep the files jobs are sent with here, shared by\n"
"                      the workers of the node (default WORKDIR/cache)\n"
"  --cache-max SIZE    at most this much of them, the least recently used\n"
"                      removed first (default 10G)\n"
"  --jobs-dir DIR      make each job with files a fresh directory here,\n"
"                      its $SIMQ_WORKDIR, removed after it (default\n"
"                      WORKDIR/jobs: on the cache's file system, its files\n"
"                      are hard links, not copies)\n"
"  --collect-max SIZE  send back no collected file larger than this\n"
"                      (default 1G)\n"
"  -v                  log each job; -vv also the protocol\n"
"  -h, --help          show this help\n"
"\n"
"SIGTERM or SIGINT drains (running jobs finish, no new ones start); a\n"
"second one stops the running jobs and hands them back to the broker.\n"
"Under a time limit or in a Slurm job, SIGTERM hands them back at once.\n");
}

static void __attribute__((noreturn, format(printf, 1, 2)))
bad_usage(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "simq-worker: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(stderr);
	exit(2);
}

static int
queues_ok(const char *s)
{
	const char	*p = s, *comma;
	int		 n = 0;

	for (;;) {
		comma = strchr(p, ',');
		if (!proto_name_ok(p, comma ? (size_t)(comma - p) : strlen(p)))
			return 0;
		if (++n > WORKER_QUEUES_MAX)
			return 0;
		if (comma == NULL)
			return 1;
		p = comma + 1;
	}
}

/* The CPUs this process may run on: in a Slurm allocation or under
 * taskset that is fewer than the machine has. */
static uint32_t
ncpus(void)
{
	cpu_set_t	set;
	long		n;

	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return (uint32_t)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (uint32_t)n : 1;
}

/* HOST:PID, with the host name cut to what a worker name allows. */
static char *
default_name(const char *host)
{
	char	buf[SIMQ_NAME_MAX + 1], pid[16];
	size_t	i, n, room;

	n = (size_t)snprintf(pid, sizeof pid, ":%d", (int)getpid());
	room = sizeof buf - 1 - n;
	for (i = 0; host[i] != '\0' && i < room; i++)
		buf[i] = proto_worker_name_ok(&host[i], 1) ? host[i] : '-';
	memcpy(buf + i, pid, n + 1);
	return xstrdup(buf);
}

/* mkdir -p, each directory it makes with mode (less the umask). */
static void
make_dirs(const char *path, mode_t mode)
{
	char	*buf = xstrdup(path), *p;

	for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		(void)mkdir(buf, mode);
		*p = '/';
	}
	free(buf);
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		fatal("work directory %s: %s", path, strerror(errno));
}

/*
 * The work directory without -w: on the node's own disk, where a job's
 * full output is meant to stay, and private to its user.
 * $XDG_STATE_HOME/simq when that is set (to an absolute path, as the XDG
 * spec asks), else /var/tmp/simq-USER: local, and kept across reboots,
 * unlike /tmp.  Never the current directory, where a worker started from
 * a source tree or a home directory would leave its files.  Returns a
 * new string.
 */
static char *
default_workdir(void)
{
	const char	*x = getenv("XDG_STATE_HOME");
	struct passwd	*pw;

	if (x != NULL && x[0] == '/')
		return xprintf("%s/simq", x);
	if ((pw = getpwuid(getuid())) != NULL && pw->pw_name[0] != '\0' &&
	    strchr(pw->pw_name, '/') == NULL)
		return xprintf("/var/tmp/simq-%s", pw->pw_name);
	return xprintf("/var/tmp/simq-%u", (unsigned)getuid());
}

/* The default directory must be a directory of this user's, not a link
 * and not another user's: /var/tmp is everyone's, and anyone may have
 * made /var/tmp/simq-USER first. */
static void
check_own_dir(const char *path)
{
	struct stat	st;

	if (lstat(path, &st) < 0)
		fatal("work directory %s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid())
		fatal("work directory %s is not a directory of this user's (a "
		    "link, or someone else's): remove it, or give -w DIR", path);
}

/* --cache-dir or --jobs-dir (given, else WORKDIR/sub), absolute.  They
 * are made when the first job with files comes (files.c): a worker that
 * never runs one leaves nothing there.  Returns a new string. */
static char *
dir_option(const char *given, const char *workdir, const char *cwd,
    const char *sub)
{
	if (given == NULL)
		return xprintf("%s/%s", workdir, sub);
	if (given[0] == '/')
		return xstrdup(given);
	return xprintf("%s/%s", cwd, given);
}

/* Jobs get /dev/null on stdin, and the files a shepherd opens must not
 * land on 0, 1 or 2: make sure those are open. */
static void
std_fds(void)
{
	int	fd;

	for (fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 &&
		    open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
			exit(1);
}

/* Each running job holds no descriptor here, but replies and reports do;
 * take what the hard limit allows and give jobs back the usual soft
 * limit. */
static void
setup_limits(void)
{
	struct rlimit	rl;

	W->nofile_soft = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		W->nofile_soft = (uint64_t)rl.rlim_cur;
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
}

static void
finish(int code)
{
	exiting = 1;
	W->exit_code = code;
	event_base_loopbreak(W->base);
}

void
worker_exit(int code)
{
	finish(code);
}

void
worker_hold(void)
{
	W->hold_until = mono_ms() + TAKE_HOLD_MS;
}

void
worker_poke(void)
{
	struct timeval	tv;
	uint32_t	used, room, busy, firm;
	int		stale;
	uint64_t	now, wait;

	if (exiting)
		return;
	if (!W->stopping && pilot_draining()) {
		log_info("time limit: too little time left for any job; "
		    "draining: %u job%s running", W->nrunning, W->nrunning ==
		    1 ? "" : "s");
		W->stopping = 1;
		job_release_held();
	}
	pilot_idle();
	if (W->asked == 0)
		ping_sent = 0;
	if (W->stopping && W->nrunning == 0 && W->asked == 0 &&
	    (W->njobs == 0 || (W->stopping >= 2 && !conn_registered()))) {
		if (W->njobs > 0)
			log_warn("exiting with %u report%s not delivered; the "
			    "broker re-queues those jobs when their leases run "
			    "out", W->njobs, W->njobs == 1 ? "" : "s");
		log_info("no jobs left; exiting");
		finish(0);
		return;
	}
	if (W->cfg.burst && !W->stopping && W->burst_empty &&
	    W->nrunning == 0 && W->asked == 0 && W->njobs == 0) {
		log_info("burst: the queues are empty and no job runs; "
		    "exiting");
		finish(0);
		return;
	}
	if (!conn_registered())
		return;
	if (W->stopping) {
		/* A parked TAKE could still bring jobs: end it now (they
		 * will be handed back). */
		if (W->asked > 0 && !ping_sent) {
			conn_ping();
			ping_sent = 1;
		}
		return;
	}
	/*
	 * A TAKE still unanswered will come back with what it got; a new
	 * one would end it (any request ends a parked TAKE), and its answer
	 * would prompt another: a ping-pong.  So ask again only when none
	 * is out, or when a slot has just been freed: then the TAKE goes
	 * out right behind the job's report, and the slot is not idle for a
	 * round trip.
	 */
	if (W->ntakes > 0 && !W->slot_freed)
		return;
	/* Free slots first; then, while jobs are short and none is free,
	 * SIMQ_AHEAD_PER_SLOT jobs per slot leased ahead (AHEAD_SHORT_MS). */
	busy = W->nrunning + W->nheld;
	used = busy + W->asked;
	room = W->cfg.slots * (W->short_jobs && !W->cfg.burst ?
	    1 + SIMQ_AHEAD_PER_SLOT : 1);
	/* A TAKE out there that says less is free than is now: the new
	 * one ends it, so count as if it were answered (resources.c). */
	stale = W->ntakes > 0 && res_stale();
	if (stale)
		used = busy;
	if (used >= room)
		return;
	firm = used < W->cfg.slots ? W->cfg.slots - used : 0;
	now = mono_ms();
	if (W->hold_until > now) {
		ms_to_tv(W->hold_until - now, &tv);
		evtimer_add(hold_ev, &tv);
		return;
	}
	if (W->cfg.burst && W->nrunning == 0) {
		if (W->burst_empty)
			return;		/* waiting for report answers */
		wait = 0;
	} else
		wait = TAKE_WAIT_MS;
	W->slot_freed = 0;
	conn_take(room - used, room - used - firm, wait);
}

static void
hold_cb(evutil_socket_t fd, short ev, void *arg)
{
	worker_poke();
}

static void
chld_cb(evutil_socket_t sig, short ev, void *arg)
{
	job_reap();
}

static void
stop_cb(evutil_socket_t sig, short ev, void *arg)
{
	const char	*name = sig == SIGTERM ? "SIGTERM" : "SIGINT";

	if (W->stopping == 0 && sig == SIGTERM && pilot_term_releases()) {
		/* A pilot's allocation is ending (Slurm sends SIGTERM at its
		 * end and on scancel, SIGKILL soon after): hand the jobs back
		 * now so that they re-run elsewhere at once. */
		log_info("got SIGTERM: stopping %u running job%s and handing "
		    "them back (send it again to exit at once)", W->nrunning,
		    W->nrunning == 1 ? "" : "s");
		pilot_stop();
		return;
	}
	W->stopping++;
	job_release_held();
	if (W->stopping == 1)
		log_info("got %s: draining: %u job%s running, taking no more "
		    "(send it again to stop them)", name, W->nrunning,
		    W->nrunning == 1 ? "" : "s");
	else if (W->stopping == 2) {
		log_info("got %s again: stopping %u running job%s and handing "
		    "them back", name, W->nrunning, W->nrunning == 1 ? "" :
		    "s");
		job_stop_all();
	} else {
		log_info("got %s a third time: exiting now; the running jobs "
		    "are killed", name);
		W->stopping = 2;
		finish(1);
		return;
	}
	worker_poke();
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "burst", no_argument, NULL, 'B' },
		{ "cpus", required_argument, NULL, 'j' },
		{ "gpus", required_argument, NULL, 'g' },
		{ "mem", required_argument, NULL, 'M' },
		{ "name", required_argument, NULL, 'N' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "mem-limit", required_argument, NULL, 'm' },
		{ "grace", required_argument, NULL, 'G' },
		{ "lease", required_argument, NULL, 'L' },
		{ "connect-timeout", required_argument, NULL, 'C' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "cache-dir", required_argument, NULL, 'D' },
		{ "cache-max", required_argument, NULL, 'X' },
		{ "jobs-dir", required_argument, NULL, 'J' },
		{ "collect-max", required_argument, NULL, 'K' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "time-limit", required_argument, NULL, 'Y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct config	*cfg = &W->cfg;
	struct event	*ev_term, *ev_int, *ev_chld;
	const char	*server = NULL, *token_file = NULL, *gpus = "auto";
	int		 mem_given = 0;
	char		*workdir = NULL, *cachedir = NULL, *jobsdir = NULL;
	char		 host[256], path[PATH_MAX], why[512];
	int		 ch;
	uint64_t	 v;

	log_init("simq-worker", LOG_STAMPED, 1);
	cfg->queues = "default";
	cfg->grace_ms = GRACE_DEFAULT_MS;
	cfg->connect_timeout_ms = 30000;
	cfg->cache_max = CACHE_MAX_DEFAULT;
	cfg->collect_max = COLLECT_MAX_DEFAULT;
	while ((ch = getopt_long(argc, argv, "s:q:j:w:m:vh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 's':
			server = optarg;
			break;
		case 'q':
			if (!queues_ok(optarg))
				bad_usage("bad queue list '%s': up to 64 names "
				    "of [A-Za-z0-9._-], comma-separated",
				    optarg);
			cfg->queues = optarg;
			break;
		case 'j':
			if (proto_parse_u64(optarg, strlen(optarg),
			    WORKER_SLOTS_MAX, &v) < 0 || v == 0)
				bad_usage("--cpus %s: give 1 to 4096 CPUs",
				    optarg);
			cfg->slots = (uint32_t)v;
			break;
		case 'g':
			gpus = optarg;
			break;
		case 'M':
			if (parse_size(optarg, &cfg->mem) < 0 ||
			    cfg->mem > SIMQ_MEM_MAX)
				bad_usage("--mem %s: give a size (like 512M or "
				    "64G), at most 1024T", optarg);
			mem_given = 1;
			break;
		case 'B':
			cfg->burst = 1;
			break;
		case 'N':
			if (!proto_worker_name_ok(optarg, strlen(optarg)))
				bad_usage("bad name '%s': use 1-128 of "
				    "[A-Za-z0-9._:@-]", optarg);
			cfg->name = xstrdup(optarg);
			break;
		case 'w':
			free(workdir);
			workdir = xstrdup(optarg);
			break;
		case 'm':
			if (parse_size(optarg, &cfg->mem_limit) < 0)
				bad_usage("bad size '%s' (like 512M or 4G)",
				    optarg);
			break;
		case 'G':
			if (proto_parse_duration(optarg, &cfg->grace_ms) < 0)
				bad_usage("bad duration '%s' (like 10s)",
				    optarg);
			break;
		case 'C':
			if (proto_parse_duration(optarg,
			    &cfg->connect_timeout_ms) < 0 ||
			    cfg->connect_timeout_ms == 0)
				bad_usage("bad duration '%s' (like 30s)",
				    optarg);
			break;
		case 'L':
			if (proto_parse_duration(optarg, &cfg->lease_ms) < 0 ||
			    cfg->lease_ms < 1000 || cfg->lease_ms > 3600000)
				bad_usage("bad lease '%s': 1s to 1h", optarg);
			break;
		case 'T':
			token_file = optarg;
			break;
		case 'D':
			free(cachedir);
			cachedir = xstrdup(optarg);
			break;
		case 'J':
			free(jobsdir);
			jobsdir = xstrdup(optarg);
			break;
		case 'X':
			if (parse_size(optarg, &cfg->cache_max) < 0 ||
			    cfg->cache_max == 0)
				bad_usage("bad --cache-max '%s' (like 10G)",
				    optarg);
			break;
		case 'K':
			if (parse_size(optarg, &cfg->collect_max) < 0)
				bad_usage("bad --collect-max '%s' (like 1G)",
				    optarg);
			break;
		case 'I':
			if (proto_parse_duration(optarg,
			    &cfg->idle_timeout_ms) < 0 ||
			    cfg->idle_timeout_ms == 0)
				bad_usage("bad duration '%s' (like 10m)",
				    optarg);
			break;
		case 'Y':
			if (proto_parse_duration(optarg,
			    &cfg->time_limit_ms) < 0)
				bad_usage("bad duration '%s' (like 2h, or 0)",
				    optarg);
			cfg->time_limit_given = 1;
			break;
		case 'v':
			cfg->verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	server = server_pick(server);
	if (server_split(server, &cfg->host, &cfg->port) < 0)
		bad_usage("bad broker address '%s': %s", server, SERVER_FORMS);
	cfg->server = xstrdup(server);
	if (token_load(token_file, &cfg->token, why, sizeof why) < 0) {
		fprintf(stderr, "simq-worker: %s\n", why);
		exit(2);
	}
	log_verbosity = cfg->verbose;
	if (cfg->slots == 0)
		cfg->slots = ncpus();
	if (res_gpus(gpus) < 0)
		bad_usage("--gpus %s: give auto, none, or a list like 0,1 "
		    "(at most %d)", gpus, SIMQ_GPUS_MAX);
	if (!mem_given && ((cfg->mem = res_node_mem()) == 0 ||
	    cfg->mem > SIMQ_MEM_MAX))
		cfg->mem = SIMQ_MEM_MAX;
	if (gethostname(host, sizeof host) < 0 || host[0] == '\0')
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	cfg->hostname = xstrdup(host);
	if (cfg->name == NULL)
		cfg->name = default_name(host);

	std_fds();
	W->pid = getpid();
	W->outerr_told = 1;		/* no output error to tell of */
	/* Until the broker says: what we ask for, or its usual default. */
	W->lease_ms = cfg->lease_ms ? cfg->lease_ms : 30000;
	W->environ = environ;
	TAILQ_INIT(&W->jobs);
	if (getcwd(path, sizeof path) == NULL)
		fatal("getcwd: %s", strerror(errno));
	cfg->cwd = xstrdup(path);
	if (workdir != NULL)
		make_dirs(workdir, 0777);
	else {
		workdir = default_workdir();
		make_dirs(workdir, 0700);
		check_own_dir(workdir);
	}
	if (realpath(workdir, path) == NULL)
		fatal("work directory %s: %s", workdir, strerror(errno));
	cfg->workdir = xstrdup(path);
	free(workdir);
	if (access(cfg->workdir, W_OK | X_OK) < 0)
		fatal("work directory %s: %s", cfg->workdir, strerror(errno));
	cfg->cache_dir = dir_option(cachedir, cfg->workdir, cfg->cwd, "cache");
	cfg->jobs_dir = dir_option(jobsdir, cfg->workdir, cfg->cwd, "jobs");
	free(cachedir);
	free(jobsdir);
	files_sweep();
	setup_limits();
	if (res_cgroup_init(why, sizeof why))
		log_info("job memory limits (--mem) are cgroup v2 memory.max");
	else
		log_info("job memory limits (--mem) are RLIMIT_AS, the address "
		    "space: no cgroup v2 memory controller here (%s)", why);
	if ((W->devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		fatal("/dev/null: %s", strerror(errno));
	/* What is left of a job whose shepherd died comes to us, not to
	 * init, so that we can still kill it. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGPIPE, SIG_IGN);

	if ((W->base = event_base_new()) == NULL)
		fatal("event_base_new failed");
	ev_term = evsignal_new(W->base, SIGTERM, stop_cb, NULL);
	ev_int = evsignal_new(W->base, SIGINT, stop_cb, NULL);
	ev_chld = evsignal_new(W->base, SIGCHLD, chld_cb, NULL);
	hold_ev = evtimer_new(W->base, hold_cb, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_chld, NULL);
	log_info("simq-worker %s starting: broker %s, queues %s, %u CPU%s, "
	    "%u GPU%s, %llu MiB, work directory %s%s", cfg->name, cfg->server,
	    cfg->queues, cfg->slots, cfg->slots == 1 ? "" : "s", cfg->ngpus,
	    cfg->ngpus == 1 ? "" : "s",
	    (unsigned long long)(cfg->mem >> 20), cfg->workdir,
	    cfg->burst ? ", burst" : "");
	slot_init();
	pilot_init();
	conn_start();

	if (event_base_dispatch(W->base) < 0)
		fatal("event loop failed");

	/* Closing their sockets makes the shepherds kill whatever still
	 * runs (nothing, unless we were told to exit at once) and exit. */
	slot_close_all();
	res_cgroup_cleanup();
	(void)res_gpus("none");
	conn_close();
	job_free_all();
	pilot_free();
	free(W->outerr);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_chld);
	event_free(hold_ev);
	event_base_free(W->base);
	close(W->devnull);
	free(cfg->host);
	free(cfg->port);
	free(cfg->server);
	free(cfg->name);
	free(cfg->hostname);
	free(cfg->cwd);
	free(cfg->workdir);
	free(cfg->cache_dir);
	free(cfg->jobs_dir);
	free(cfg->token);
	return W->exit_code;
}
