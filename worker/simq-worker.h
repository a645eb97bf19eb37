/*
 * simq-worker.h: the worker's one header.
 *
 * simq-worker runs on a compute node.  It holds one connection to the
 * broker, takes jobs while it has free slots, runs each under a shepherd
 * process, and reports each outcome.  Modules:
 *
 *   main.c      options, start-up, signals, and the one decision point
 *               (worker_poke): take more jobs, drain, or exit
 *   conn.c      the broker connection: connect with backoff, register,
 *               pipelined requests and their replies, heartbeats
 *   job.c       the job table: jobs from TAKE items, starting them,
 *               timeouts, drops, reaping, what to report
 *   resources.c what the worker offers (--cpus, --gpus, --mem), what its
 *               jobs hold, GPUs given out, memory limits (cgroup v2)
 *   slot.c      the slots, each with a shepherd process, and the
 *               datagrams the worker exchanges with them
 *   shepherd.c  the shepherd process: runs a slot's jobs, one at a time,
 *               and makes sure none of their processes outlives them
 *   runner.c    a shepherd's warm runner: an interpreter that forks each
 *               task of a job that asks for one (SIMQ_RUNNER=N)
 *   report.c    FINISH, FAIL and RELEASE requests, with output tails
 *   pilot.c     a worker with an end: --idle-timeout, --time-limit (or
 *               the Slurm allocation's), SIGTERM handing jobs back
 *   util.c      jitter, killing what a process left behind
 *   files.c     a job's private directory: its files laid in, its
 *               outputs collected (in a transfer child of the shepherd)
 *   cache.c     the node's cache of blobs, shared by its workers
 *   cgsweep.c   the cgroups a killed worker left behind, removed
 *
 * Logging, allocation, the clocks, sizes, the broker's address and the
 * token come from lib/, shared with simqd and simq.
 *
 * Ownership: the job table owns every struct wjob; a request waiting for
 * its reply points at its job, and a job is freed only when no request
 * points at it (inflight == 0).
 */
#ifndef SIMQ_WORKER_H
#define SIMQ_WORKER_H

#include <sys/queue.h>
#include <sys/types.h>
#include <stdint.h>

#include "proto.h"

#include "clock.h"
#include "log.h"
#include "server.h"
#include "size.h"
#include "token.h"
#include "xmalloc.h"

struct evbuffer;
struct event;
struct rusage;
struct event_base;
struct timeval;

/*
 * Limits, each with its reason.
 */

/* -j: slots of one worker.  Each running job holds a shepherd process and
 * an entry in the table; no node has this many cores. */
#define WORKER_SLOTS_MAX	4096

/* How long a TAKE may park at the broker.  Any request we send ends it
 * at once, so this is only how often an idle worker says hello. */
#define TAKE_WAIT_MS		600000

/* Jobs named by one HEARTBEAT line: about 30 bytes each keeps a line far
 * below SIMQ_LINE_MAX and SIMQ_WORDS_MAX; more jobs take more lines. */
#define HEARTBEAT_IDS_MAX	1000

/* Words in a reply's item line: a job item repeats its SUBMIT's words
 * (at most SIMQ_WORDS_MAX) and the broker adds a few keys. */
#define ITEM_WORDS_MAX		(SIMQ_WORDS_MAX + 64)

/* Reconnect backoff: the first retry comes quickly (a broker restart
 * takes about a second), later ones at most this far apart, and never
 * further apart than a third of the lease, so a broker that comes back
 * in time still sees our heartbeats before our leases run out; and a
 * broker that saw our connection end gets a few tries within its
 * --reconnect-grace (5 s by default) before it gives our jobs away. */
#define BACKOFF_FIRST_MS	100
#define BACKOFF_MAX_MS		2000

/* How long to hold off taking after a job could not be started (fork
 * failed, ERR to a TAKE): long enough not to spin, short enough that
 * a passing shortage of processes costs little. */
#define TAKE_HOLD_MS		1000
/* Leasing ahead: while every slot is busy the worker keeps up to
 * SIMQ_AHEAD_PER_SLOT more jobs per slot leased (TAKE ahead=N), so that
 * a slot that frees starts its next job at once instead of waiting for a
 * round trip and the broker's fsync.  Only while jobs are short (the
 * last one ran less than this), so that a job never waits long behind a
 * running one; and the broker grants them only while no other worker
 * waits idle. */
#define AHEAD_SHORT_MS		200
/* While jobs leased ahead keep the slots busy, reports wait this long to
 * go together (job.c). */
#define REPORT_GROUP_MS		1

/* Variables the worker adds to a job's own (SIMQ_ENV_MAX of them) in
 * its table entry and RUN datagram: res_claim's four and SIMQ_ENTRY,
 * with room for a few more. */
#define WJOB_ENV_EXTRA		8

/* Paths we build (work files, expanded output patterns). */
#define WPATH_MAX		4096

/*
 * The worker and its shepherds (shepherd.c) exchange datagrams on a
 * SOCK_SEQPACKET socket pair, one per slot.  Both ends are this program,
 * so the records are plain structs.
 */
enum shep_cmd {
	SHEP_RUN = 1,		/* a job: strings follow the header */
	SHEP_SIGNAL		/* send sig to job seq's process group */
};

struct shep_hdr {
	int32_t		type;		/* enum shep_cmd */
	int32_t		sig;		/* SHEP_SIGNAL: SIGTERM or SIGKILL */
	uint64_t	seq;		/* the job's number at this shepherd */
	/* SHEP_RUN: then NUL-terminated strings: id, queue, name, cwd,
	 * outpath, errpath, respath, nargv arguments, nenv K=V. */
	uint64_t	id;
	uint32_t	index;
	uint32_t	attempt;
	uint32_t	nargv;
	uint32_t	nenv;
	uint32_t	pattern;	/* outpath is from an output= pattern */
	/* Then nfiles file= values and ncollect collect= patterns. */
	uint32_t	nfiles;
	uint32_t	ncollect;
	uint32_t	pad;
	uint64_t	mem;		/* the job's RLIMIT_AS, 0: none */
};

enum shep_kind {
	SHEP_DONE = 1,		/* the job ended; status and usage follow */
	SHEP_FAILED,		/* the job could not start: stage, err */
	SHEP_LOST		/* its warm runner died with its end: lost */
};

enum shep_stage {
	STAGE_NONE = 0,
	STAGE_CWD,		/* chdir to the job's directory */
	STAGE_OUTPUT,		/* the output files' directory */
	STAGE_FORK,		/* pipes, vfork */
	STAGE_EXEC,		/* execvpe */
	STAGE_FILES		/* the job's files: the reason is the text */
};

/* A shepherd's report on job seq. */
struct shep_msg {
	uint64_t	seq;
	int32_t		kind;		/* enum shep_kind */
	int32_t		status;		/* wait status of the job's process */
	int32_t		err;		/* errno, for SHEP_FAILED */
	int32_t		stage;		/* enum shep_stage, for SHEP_FAILED */
	int32_t		failpath;	/* STAGE_OUTPUT: 0 stdout, 1 stderr */
	uint32_t	killed;		/* leftover processes killed at the end */
	/* Per stream (0 stdout, 1 stderr): the errno that stopped its file
	 * being written (0: all of it was written), and the bytes of its
	 * tail that follow this struct in the datagram, stdout's first.
	 * Only a stream whose file failed sends its tail: the file on disk
	 * is then incomplete, and the shepherd kept the tail in memory. */
	int32_t		outerr[2];
	uint32_t	tail[2];
	uint64_t	start_ms, end_ms;
	uint64_t	utime_us, stime_us, maxrss_kib;
	int64_t		outsize, errsize, ressize;	/* -1: no file */
	/* Bytes of text after the tails: for SHEP_DONE the got=, nomatch=
	 * and collerr= words of the FINISH (encoded), for STAGE_FILES the
	 * reason. */
	uint32_t	textlen;
	uint32_t	pad;
};

struct wjob;

/* The largest RUN datagram: a job's words come from one request line of
 * at most SIMQ_LINE_MAX bytes, plus its paths.  Both socket buffers are
 * made this big so that it always fits. */
#define SHEP_MSG_MAX		(SIMQ_LINE_MAX + 4 * WPATH_MAX + 4096)

/* The text of a report: the collected files' words, within a line. */
#define SHEP_TEXT_MAX		SIMQ_LINE_MAX

/* The largest report datagram: the struct, two tails and the text. */
#define SHEP_REPORT_MAX		(sizeof(struct shep_msg) + 2 * SIMQ_TAIL_MAX + \
				 SHEP_TEXT_MAX)

/* A slot: the worker's handle on its shepherd. */
struct slot {
	pid_t		 pid;		/* 0: none (yet, or any more) */
	int		 fd;		/* our end of its socket, -1: closed */
	struct event	*ev;
	struct wjob	*job;		/* running there; NULL: idle */
	uint64_t	 seq;		/* of the last job given to it */
};

/*
 * A job this worker holds: running, or ended with a report to deliver.
 */
enum wjob_state {
	WJ_HELD,		/* leased ahead: waits for a slot to free */
	WJ_RUNNING,		/* its shepherd is alive */
	WJ_ENDED		/* reaped; report (if any) not yet answered */
};

enum wjob_report {
	REP_NONE,		/* nothing to say (dropped) */
	REP_FINISH,
	REP_FAIL,
	REP_RELEASE,
	REP_LOST		/* RELEASE lost=1: its shepherd died */
};

struct wjob {
	TAILQ_ENTRY(wjob)	 entry;
	char			 id[32];	/* "17" or "17_5" */
	struct simq_id		 sid;
	uint32_t		 attempt;
	char			*queue;
	char			*name;		/* NULL: none */
	char			*cwd;		/* NULL: the worker's */
	char			*output;	/* output= pattern, NULL: none */
	uint64_t		 timeout_ms;	/* 0: none */
	uint32_t		 cpus, gpus;	/* it asks for (at least 1 CPU) */
	uint64_t		 mem;		/* bytes, 0: none asked */
	uint64_t		 gpumask;	/* its GPUs: indices in cfg.gpu */
	int			 claimed;	/* holds them (res_claim) */
	uint64_t		 ooms;		/* slot's OOM kills at its start */
	uint32_t		 slotno;	/* the slot it ran in */
	int			 oom;		/* the cgroup limit killed it */
	int			 argc;
	char			**argv;		/* NULL-terminated */
	int			 nenv;
	char			**env;		/* the job's K=V additions */
	int			 nfiles;
	char			**files;	/* file= values, decoded */
	int			 ncollect;
	char			**collect;	/* collect= patterns */
	char			*jobdir;	/* its private directory */
	char			*filewords;	/* got=... for the FINISH */

	/* Where its files go (absolute). */
	char			*outpath, *errpath, *respath;

	enum wjob_state		 state;
	struct slot		*slot;		/* running there */
	uint64_t		 seq;		/* its number there */
	struct event		*timer;		/* timeout, then grace */
	uint64_t		 timedout_ms;	/* when the timeout fired
						 * (now_ms) */
	unsigned		 timedout:1;	/* killed for its timeout */
	unsigned		 dropped:1;	/* the broker told us to stop */
	unsigned		 releasing:1;	/* stopped by us: hand back */
	unsigned		 term_sent:1;
	unsigned		 kill_sent:1;
	unsigned		 held_back:1;	/* report held (pilot.c) */

	struct shep_msg		 msg;		/* the shepherd's report */
	/* A stream whose file could not be written: its tail, as the
	 * shepherd kept it (msg.tail[i] bytes), else NULL. */
	char			*tail[2];
	char			*outerr;	/* "output PATH: why", or NULL */

	enum wjob_report	 report;
	char			*reason;	/* for REP_FAIL */
	int			 inflight;	/* requests naming it, unanswered */
};
TAILQ_HEAD(wjobs, wjob);

struct config {
	char		*host;		/* broker */
	char		*port;
	char		*server;	/* "host:port", for SIMQ_SERVER */
	char		*queues;	/* "a,b,c" */
	uint32_t	 slots;		/* --cpus, -j */
	char		*gpu[SIMQ_GPUS_MAX];	/* --gpus: as CUDA names them */
	uint32_t	 ngpus;
	uint64_t	 mem;		/* --mem: bytes offered */
	int		 burst;
	char		*name;
	char		*hostname;
	char		*workdir;	/* absolute */
	char		*cwd;		/* where we started, absolute */
	uint64_t	 mem_limit;	/* bytes of address space, 0: none */
	uint64_t	 lease_ms;	/* asked for; 0: the broker's default */
	uint64_t	 grace_ms;	/* SIGTERM to SIGKILL */
	uint64_t	 connect_timeout_ms;	/* --burst: give up after */
	char		*token;		/* NULL: none */
	int		 verbose;
	uint64_t	 idle_timeout_ms;	/* 0: none */
	uint64_t	 time_limit_ms;		/* with time_limit_given */
	int		 time_limit_given;	/* --time-limit (0: none) */
	char		*cache_dir;	/* --cache-dir, absolute */
	uint64_t	 cache_max;	/* --cache-max */
	char		*jobs_dir;	/* --jobs-dir, absolute */
	uint64_t	 collect_max;	/* --collect-max, per file */
};

struct wstate {
	struct event_base	*base;
	struct config		 cfg;
	struct wjobs		 jobs;
	uint32_t		 njobs;		/* in the table */
	uint32_t		 nrunning;	/* shepherds alive = slots used */
	uint32_t		 nheld;		/* WJ_HELD: leased ahead */
	int			 short_jobs;	/* the last job was short */
	uint32_t		 asked;		/* sum of MAX of unanswered TAKEs */
	uint32_t		 ntakes;	/* unanswered TAKEs */
	int			 slot_freed;	/* a job ended since the last TAKE */
	int			 reports_next;	/* a TAKE now is followed by the
						   reports due: it names them
						   (ending=, conn.c) */
	int			 no_ending;	/* the broker refused ending= */
	int			 stopping;	/* 0, 1 draining, 2 stopping */
	int			 burst_empty;	/* a TAKE 0-wait found nothing */
	int			 exit_code;
	int			 devnull;	/* /dev/null, for jobs' stdin */
	uint64_t		 hold_until;	/* no TAKE before (ms) */
	uint64_t		 lease_ms;	/* in force, from WORKER's reply */
	pid_t			 pid;
	uint64_t		 nofile_soft;	/* RLIMIT_NOFILE jobs get back */
	/* The last job output this worker could not write ("output PATH:
	 * why"), told to the broker with every HEARTBEAT until a later job's
	 * output is written in full; outerr_told: the broker has it. */
	char			*outerr;
	int			 outerr_told;
	char			**environ;	/* the base environment */
};

extern struct wstate	*W;

/* main.c */
/* Re-decides what to do: take jobs for free slots, end a parked TAKE
 * when draining, exit when there is nothing left.  Call after any change
 * of the table, the connection or the stopping state. */
void		 worker_poke(void);
/* Holds off taking for TAKE_HOLD_MS. */
void		 worker_hold(void);
/* Ends the event loop; the worker exits with code. */
void		 worker_exit(int code);

/* conn.c */
void		 conn_start(void);
int		 conn_registered(void);
/* Each sends one request (nothing when not registered). */
void		 conn_take(uint32_t max, uint32_t ahead, uint64_t wait_ms);
/* all: the first after registering, ending with all=1 (the listing
 * is complete), sent even when we hold nothing. */
void		 conn_heartbeat(int all);
void		 conn_ping(void);
/* PUSH of a followed job's output bytes (follow.c). */
void		 conn_push(const char *id, uint32_t attempt, int which,
		    uint64_t off, const char *data, size_t len, uint64_t token);
/* Sends every report not yet sent. */
void		 conn_flush_reports(void);
void		 conn_close(void);

/* job.c */
/* Parses a TAKE job item (words decoded in place) into a new job in the
 * table and starts it; logs and returns -1 for an item without a usable
 * id and attempt. */
int		 job_take_item(struct proto_word *w, int n);
/* A drop item: stop that attempt and forget its result. */
void		 job_drop_item(struct proto_word *w, int n);
/* SIGCHLD: reaps every exited child. */
void		 job_reap(void);
/* The shepherd's report on j; tails: the bytes after the struct. */
void		 job_finished(struct wjob *j, const struct shep_msg *m,
		    const char *tails);
/* j's shepherd died (wait status) before it reported. */
void		 job_shepherd_died(struct wjob *j, int status);
/* The answer to j's report: reply is "OK ..." or "ERR ..." (NULL when
 * the connection went away before it). */
void		 job_report_answered(struct wjob *j, const char *reply, size_t len);
/* Second SIGTERM: stop every running job and hand it back. */
void		 job_stop_all(void);
/* Hands back every job leased ahead (draining). */
void		 job_release_held(void);
/* Frees j if nothing refers to it any more. */
void		 job_release_ref(struct wjob *j);
void		 job_free_all(void);

/* resources.c */
int		 res_gpus(const char *spec);
uint64_t	 res_node_mem(void);
int		 res_fits(const struct wjob *, int behind_held);
int		 res_could(const struct wjob *);
void		 res_take_words(struct evbuffer *);
int		 res_stale(void);
void		 res_claim(struct wjob *);
void		 res_release(struct wjob *);
int		 res_cgroup_init(char *why, size_t);
int		 res_cgroup(void);
int		 res_cgroup_slot(uint32_t, pid_t);
int		 res_cgroup_limit(uint32_t, uint64_t mem);
uint64_t	 res_cgroup_ooms(uint32_t);
void		 res_cgroup_cleanup(void);

/* cgsweep.c: plain libc (unit-tested on a directory tree). */
/* The PID in a cgroup name a worker makes (simq-worker-PID,
 * simq-PID-slotN), or 0 for any other name. */
pid_t		 cg_sweep_pid(const char *name);
/* Removes the empty cgroups directly below base that a worker whose PID
 * is no live process (and not self) made.  Returns how many went. */
int		 cg_sweep(const char *base, pid_t self);

/* slot.c */
void		 slot_init(void);
/* Gives j to an idle slot's shepherd, forking one if needed.  Returns 0,
 * or -1 with errno set (E2BIG: the job does not fit in a datagram). */
int		 slot_run(struct wjob *j);
/* Whether the cgroup of j's slot killed something for its memory since
 * j started (resources.c). */
int		 slot_oom(const struct wjob *j);
/* Sends sig (SIGTERM or SIGKILL) to j's process group. */
void		 slot_signal(struct wjob *j, int sig);
/* A child was reaped: returns 1 if it was a shepherd (and deals with
 * its job). */
int		 slot_reaped(pid_t pid, int status);
/* 1 if pid is a shepherd not yet reaped. */
int		 slot_is_shepherd(pid_t pid);
/* Closes every shepherd's socket: they kill what runs and exit. */
void		 slot_close_all(void);

/* shepherd.c */
/* Runs in the child of fork(): becomes a shepherd serving the socket fd;
 * never returns. */
void		 shepherd_main(int fd) __attribute__((noreturn));

/* runner.c: in a shepherd.  runner_send gives the job to the slot's warm
 * runner (starting one), if the job asks for one; 0, or -1: run it as a
 * command.  env: the job's whole environment; in, out, err: its stdio. */
int		 runner_send(const struct wjob *j, char **env, int in, int out,
		    int err, int devnull);
/* The runner's socket while it has a task, else -1. */
int		 runner_fd(void);
enum runner_ev {
	RUNNER_NONE = 0,
	RUNNER_PID,		/* *pid: the task's process */
	RUNNER_EXIT,		/* the task ended: *status, *ru */
	RUNNER_COLD,		/* it did not start the task: run a command */
	RUNNER_KILLED,		/* killed before the task's pid came: *status */
	RUNNER_LOST		/* it died with the task's end */
};
/* What the runner said or what its death means; call until RUNNER_NONE
 * after its socket is readable or it was reaped. */
int		 runner_event(pid_t *pid, int *status, struct rusage *ru);
/* 1 if pid was the runner (now reaped). */
int		 runner_reaped(pid_t pid, int status);
/* 1 if the runner of the running task was reaped. */
int		 runner_gone(void);
/* Sends sig to the task's process group (pid 0: not known yet: the
 * runner is killed and the task counts as killed by sig). */
void		 runner_kill_task(pid_t pid, int sig);
/* 1 if pid is the (live) runner: a keep function for util_kill_children. */
int		 runner_keep(pid_t pid);
/* 1 if the runner is alive and our only child. */
int		 runner_alone(void);
/* follow.c: followed output, sent as it is written. */
/* A "follow" (on) or "unfollow" item from the broker. */
void		 follow_item(struct proto_word *w, int n, int on);
/* The answer to a PUSH (NULL: the connection went). */
void		 follow_answered(uint64_t token, const char *line, size_t len);
/* j ended: its followed output's last bytes go before its report. */
void		 follow_job_ended(struct wjob *j);
void		 follow_free_all(void);

/* report.c */
/* Appends j's report request (FINISH, FAIL or RELEASE) to out.  Returns
 * 0, or -1 if there is nothing to send. */
int		 report_put(struct evbuffer *out, struct wjob *j);

/* pilot.c */
/* Reads the time limit (--time-limit, else the Slurm job's) and sets up
 * the timers; after the event base exists. */
void		 pilot_init(void);
/* 1 when SIGTERM should stop the running jobs and hand them back at
 * once (a time limit is in force, or we run in a Slurm job). */
int		 pilot_term_releases(void);
/* Stops taking, stops the running jobs and hands them back. */
void		 pilot_stop(void);
/* 1 when too little time is left to take anything: drain. */
int		 pilot_draining(void);
/* The TAKE's time=: the longest job timeout that fits in what is left;
 * 0: no limit. */
uint64_t	 pilot_take_time(void);
/* j ended with REP_FINISH: in a pilot, a job killed by a SIGTERM that
 * the worker did not send holds its report a moment (pilot.c). */
void		 pilot_job_ended(struct wjob *j);
/* Arms or disarms --idle-timeout; from worker_poke(). */
void		 pilot_idle(void);
void		 pilot_free(void);
/* Slurm's "time left" ([D-][[H:]M:]S) in ms; 0, or -1 if it is not one. */
int		 pilot_parse_left(const char *s, uint64_t *ms);
/* cache.c */
struct xfer;
int	 cache_init(char **why);
uint64_t cache_evict(uint64_t need, const char *held);
int	 cache_get(struct xfer *, const char *hex, uint64_t size, char *path,
	    size_t len, const char *jobid, char **why);

/* files.c */
int	 files_fetch_child(const struct wjob *, const char *dir, int out);
int	 files_collect_child(const struct wjob *, const char *dir, int out);
char	*files_mkdir(const struct wjob *, char **why);
int	 files_mkdirs(const char *path);
void	 files_sweep(void);
void	 files_rmdir(const char *dir);

/* util.c */
/* Returns a random number in [lo, hi]. */
uint64_t jitter(uint64_t lo, uint64_t hi);
/* SIGKILLs every child of parent for which keep (if not NULL) says 0.
 * Returns how many. */
int	 util_kill_children(pid_t parent, int (*keep)(pid_t));

#endif
