/*
 * simqd.h: the broker's one header: its data model and the prototypes of
 * its modules.
 *
 * simqd keeps every job in memory, owned by one thread running one
 * libevent loop, and every change in an append-only journal, so that a
 * restart rebuilds the same state.  Modules, the job model first (it
 * links alone: MODEL_SRC in the Makefile, used by the unit tests and the
 * record fuzz target):
 *
 *   state.c     B, the one state; broker_init and broker_free
 *   idmap.c     jobs and tasks by (id, index); what an id names
 *   heap.c      the binary heap of jobs behind queues and timers
 *   timer.c     job timers (delays, backoffs, leases) and the one
 *               libevent timer behind them; HEARTBEAT's lease renewal;
 *               the retention sweep
 *   queue.c     queues: ready heaps, counts, pause and resume, queues
 *               forgotten once they hold nothing
 *   fit.c       resources: a queue's lanes, one heap per job shape, and
 *               the best job that fits a worker's free resources
 *   jobopts.c   a job's options and command line, shared and immutable
 *   job.c       the state machine: submit, take and lease, finish,
 *               requeue, cancel, retry, timers due, retention
 *   array.c     arrays: one record, tasks materialised when taken
 *   entries.c   an EACHLINE array's lines, stored once for its tasks
 *   deps.c      dependencies: who waits on what, released or failed
 *   blobref.c   blobs by hash and how many kept jobs name each: taken
 *               and let go with a job's options and its results, so
 *               derived from the kept jobs, live and on replay
 *   worker.c    workers, their leases and the drops they must hear of
 *   codec.c     the fields journal records share
 *   record.c    each journal record and the function that replays it
 *   snapshot.c  compaction (by a forked child): the snapshot written
 *               and read back
 *   journal.c   the storage: segments, frames, group commit (journal.h)
 *   crc32c.c    checksums
 *
 * (allocation, logging, the clock and the token compare are lib/'s,
 * shared with simq-worker and simq),
 *
 * and the network side, which calls the model and never the other way:
 *
 *   main.c      options, start-up and replay, the loop and its passes
 *   net.c       listener and connections: framing, replies, back-pressure
 *   cmd.c       the command table, session commands, parked replies
 *   cmd_submit.c, cmd_worker.c, cmd_view.c, cmd_cancel.c
 *               the handlers, by subject
 *   reply.c     status, TAKE and drop items
 *   blob.c      the blob store in DATADIR/blobs: HAVE, PUT and GET, the
 *               start-up scan, the sweep of unreferenced blobs
 *   http.c      the read-only HTTP view
 *
 * The central rule: every change of state goes through a function of the
 * job model (job_submit, job_take, job_end_attempt, job_requeue,
 * job_cancel, job_retry, queue_pause, timer_renew, job_due, job_expire)
 * that is used both live and on replay.  Live (B->replaying clear), the
 * function appends a journal record describing the outcome, not the
 * decision that led to it; replay (record.c) decodes the record and calls
 * the same function, which then journals nothing.  What follows from the
 * state alone (a dependent failed with its dependency, an array finished
 * with its last task, a queue forgotten, a lease renewed: a restart grants
 * a fresh one) is derived, not journaled.  A new change goes into the
 * model, with its record next to its apply function in record.c and a
 * fixture in tests/unit/test_records.c; a handler only parses, checks and
 * replies.
 *
 * The life of a request, SUBMIT for one:
 *
 *   1. net.c reads bytes into the connection's buffer and frames a line
 *      (and a body, if the line declares one); proto/ parses it and
 *      checks the verb and the argument count (proto_req_parse).
 *   2. cmd_dispatch (cmd.c) runs the handler, h_submit (cmd_submit.c),
 *      which checks every value and refuses with one ERR reply before
 *      anything changes.
 *   3. The handler calls the model, job_submit (job.c): it appends a
 *      REC_SUBMIT to the journal's pending buffer and creates the job,
 *      whose dependencies (deps.c) and delay (timer.c) decide whether it
 *      is waiting or queued (queue.c).
 *   4. The handler writes its reply, "OK 42", into the connection's
 *      pending buffer: nothing reaches a socket yet.
 *   5. At the end of the loop pass (pass_end, main.c) due timers fire,
 *      parked TAKEs and WAITs are served (a queued job may go to a
 *      waiting worker, its lease journaled the same way), and the
 *      journal commits: one write and one fdatasync for every change of
 *      the pass.  Only then are the pass's replies released to their
 *      sockets (net_after_pass), so no client hears of a change a crash
 *      could lose.
 */
#ifndef SIMQD_H
#define SIMQD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "proto.h"
#include "buf.h"
#include "journal.h"

/* lib/: shared with simq-worker and simq. */
#include "clock.h"
#include "log.h"
#include "token.h"
#include "xmalloc.h"

/* Built with AddressSanitizer: free everything at exit for its leak
 * check. */
#if defined(__SANITIZE_ADDRESS__)
#define SIMQ_LEAK_CHECKED	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMQ_LEAK_CHECKED	1
#endif
#endif
#ifndef SIMQ_LEAK_CHECKED
#define SIMQ_LEAK_CHECKED	0
#endif

struct event_base;
struct evbuffer;
struct event;
struct conn;
struct worker;

/* Lease lengths a worker may ask for (WORKER lease=), and so the only
 * ones a record may carry. */
#define LEASE_MIN_MS	1000
#define LEASE_MAX_MS	3600000

/* Journal record types of the job model (journal.h reserves < 16). */
enum {
	REC_SUBMIT = 16,	/* one job, a batch, or an array */
	REC_LEASE,		/* a job taken by a worker */
	REC_FINISH,		/* an attempt's outcome */
	REC_REQUEUE,		/* lease lost or released */
	REC_CANCEL,
	REC_RETRY,
	REC_PAUSE,
	REC_RESUME,
	REC_NEXTID,		/* snapshot: the id counter */
	REC_JOB,		/* snapshot: one job's whole state */
	REC_OPTS,		/* snapshot: options shared by REC_JOBs */
	REC_CUT,		/* an array's pending tasks from one on canceled */
	REC_EPOCH,		/* a broker's start, ids reserved, a clean stop */
};

/* REC_EPOCH's kinds (record.c, epoch.c). */
enum {
	EPOCH_START,		/* a start after a clean stop: nothing forgotten */
	EPOCH_START_BUMP,	/* a start after a crash: attempts skip one */
	EPOCH_RESERVE,		/* ids below the limit may be in use */
	EPOCH_CLOSE,		/* a clean stop: every lease is on disk */
};

/* Ids reserved ahead by one REC_EPOCH: a lease may go out before its
 * SUBMIT is durable only for an id below the durable reservation. */
#define EPOCH_RESERVE_IDS	1024

/* A binary heap of jobs; each job knows its slot (job->hidx). */
struct heap {
	struct job	**v;
	uint32_t	  n;
	uint32_t	  cap;
	int		(*less)(const struct job *, const struct job *);
};

/*
 * A lane: the ready jobs and arrays of one queue that ask for the same
 * resources (cpus, gpus, mem) and have the same timeout, in one heap
 * (fit.c).  A queue's lanes live as long as the queue; those holding
 * something are also on its active list, which TAKE walks.
 */
struct lane {
	struct heap	 ready;
	struct queue	*q;
	uint32_t	 cpus, gpus;
	uint64_t	 mem, timeout_ms;
	int		 active;
	struct lane	*next;			/* all of q's lanes */
	TAILQ_ENTRY(lane) aentry;		/* q's active lanes */
};

struct queue {
	char		*name;
	int		 paused;
	struct lane	*lanes;			/* jobs and arrays to hand out */
	TAILQ_HEAD(, lane) active;		/* ...the lanes not empty */
	uint64_t	 count[JS__COUNT];	/* jobs + tasks by state */
	TAILQ_ENTRY(queue) entry;
};

/* Options shared by every job of one SUBMIT or BATCH; immutable. */
struct jobopts {
	uint32_t	 refs;
	struct queue	*q;
	int64_t		 prio;
	uint64_t	 timeout_ms;
	uint32_t	 retries;
	uint32_t	 nenv;
	uint32_t	 ndeps;
	uint32_t	 cpus;		/* at least 1 */
	uint32_t	 gpus;
	uint64_t	 mem;		/* bytes, 0: none asked */
	struct lane	*lane;		/* its heap, once it was ready */
	char		*name;		/* NULL when unset, like cwd, output */
	char		*cwd;
	char		*output;
	char		**env;		/* "K=V" */
	struct simq_id	*deps;
	uint8_t		*depkind;	/* SIMQ_DEP_* by dep; NULL: all "ok" */
	struct jobfiles	*files;		/* file=, collect=; NULL: none */
	uint32_t	 snapno;	/* number in the snapshot being written */
	uint32_t	 snapgen;	/* ...if it is the one of this number */
};

/* A file a job runs with (file=) or one collected from it (got=). */
struct jobfile {
	uint8_t		 hash[SIMQ_HASH_LEN];
	uint64_t	 size;
	uint32_t	 mode;
	char		*name;
};

/* The files of a job's options or of an attempt's result; immutable. */
struct jobfiles {
	uint32_t	 nfiles;	/* file= or got= */
	uint32_t	 npat;		/* collect= or nomatch= */
	uint32_t	 nerr;		/* collerr= (results only) */
	struct jobfile	*files;
	char		**pat;
	char		**err;
};

/* A command: argc NUL-terminated arguments packed one after another. */
struct cmd {
	uint32_t	len;		/* bytes of data */
	uint32_t	argc;
	char		data[];
};

/* What a running job needs beyond a queued one. */
struct run {
	struct worker		*w;
	uint64_t		 started;
	int			 unconfirmed;	/* leased before its worker's
						 * reconnect, not yet listed */
	int			 early;		/* its TAKE reply may go before
						 * the lease is durable */
	TAILQ_ENTRY(job)	 wentry;	/* in the worker's list */
};

/* The outcome of the last attempt, and when the job finished. */
struct result {
	uint64_t	 started;
	uint64_t	 ended;		/* the attempt's end, worker's clock */
	uint64_t	 finished;	/* broker's clock: retention starts */
	int32_t		 exit;		/* -1 when unknown */
	int32_t		 sig;
	uint32_t	 timedout;
	uint64_t	 utime, stime, maxrss;
	char		*worker;
	char		*host;
	char		*outpath;
	char		*reason;
	uint32_t	 outlen, errlen, reslen;
	char		*data;		/* out, err, payload */
	struct jobfiles	*got;		/* got=, nomatch=, collerr=; or NULL */
	TAILQ_ENTRY(job) fentry;	/* in the finished list */
	int		 in_flist;
};

/* A dependent waiting on a job, or on one task of an array. */
struct dep {
	struct job	*waiter;
	uint32_t	 index;		/* SIMQ_NOINDEX: the whole */
	uint8_t		 kind;		/* SIMQ_DEP_* */
	struct dep	*next;
};

struct array {
	struct array_spec spec;
	uint64_t	 ntasks;
	uint64_t	 cursor;	/* tasks [0, cursor) are materialised */
	uint64_t	 cut;		/* where the canceled rest begins, else
					 * ntasks */
	int		 cut_state;	/* where [cut, ntasks) is counted */
	uint64_t	 nexc;		/* tasks with a record in [cursor, cut) */
	uint64_t	 nexc_cut;	/* ...and in [cut, ntasks) */
	uint64_t	 count[JS__COUNT];	/* tasks by state */
	uint32_t	 running;
	TAILQ_HEAD(tasklist, job) tasks;	/* materialised, by index */
	struct entries	*ent;		/* EACHLINE's lines, else NULL */
};

/* An EACHLINE array's lines, stored once for all its tasks (entries.c):
 * task index i (1 to n) gets line i, data[off[i-1], off[i] - 1), each
 * line followed by its newline in data. */
struct entries {
	uint64_t	 n;
	uint32_t	*off;		/* n + 1 offsets */
	char		*data;
	size_t		 len;
};

enum job_kind { JK_JOB, JK_ARRAY, JK_TASK };

/* Where a job sits in a heap, if anywhere. */
enum { JH_NONE, JH_READY, JH_TIMER };

struct job {
	uint64_t	 id;
	uint32_t	 index;		/* task index or SIMQ_NOINDEX */
	uint32_t	 hidx;		/* slot in the heap named by where */
	uint8_t		 kind;
	uint8_t		 state;
	uint8_t		 where;
	uint8_t		 gate_open;	/* arrays: deps done, delay over */
	uint8_t		 depfailed;	/* failed because a dependency did */
	uint8_t		 pass;		/* B->pass when its state last changed
					 * (low bits; epoch.c) */
	uint16_t	 lost;		/* times its worker was lost */
	uint16_t	 failures;	/* failed attempts since last RETRY */
	uint16_t	 skip;		/* attempt numbers after attempts that
					 * a crash may have forgotten: the next
					 * is attempts + skip + 1 (epoch.c) */
	uint32_t	 attempts;	/* number of the latest attempt */
	uint32_t	 ndeps_left;
	uint64_t	 submitted;
	uint64_t	 due;		/* delay/backoff end, or lease end */
	struct jobopts	*opts;
	struct cmd	*cmd;
	union {
		struct array	*arr;	/* JK_ARRAY */
		struct job	*parent;/* JK_TASK */
	};
	struct run	*run;		/* while running */
	struct result	*res;		/* after an attempt ended */
	struct dep	*dependents;
	struct job	*hnext;		/* id map chain */
	TAILQ_ENTRY(job) entry;		/* all jobs by id, or array's tasks */
};

/* The broker-wide settings (from the command line). */
struct config {
	const char	*datadir;
	const char	*addr;
	int		 port;
	int		 http_port;	/* 0: no HTTP view */
	enum fsync_policy fsync;
	unsigned	 fsync_interval_ms;
	const char	*token_file;
	char		*token;
	int		 insecure;
	int		 force;
	uint64_t	 retention_ms;
	uint64_t	 backoff_base_ms;
	uint64_t	 backoff_cap_ms;
	uint32_t	 max_lost;
	uint64_t	 default_lease_ms;
	uint64_t	 reconnect_grace_ms;	/* after a connection ends */
	uint64_t	 segment_max;
	uint64_t	 compact_min;	/* don't compact below this size */
	uint64_t	 fail_writes_after;
	unsigned	 compact_child_delay_ms;	/* test hook */
	unsigned	 commit_delay_ms;	/* test hook: before writing a
						 * commit that holds a lease */
	uint64_t	 max_jobs;	/* records kept: jobs, arrays, tasks */
	uint64_t	 input_max;	/* bytes of incomplete requests, in all */
	uint64_t	 stall_timeout_ms;
	uint64_t	 reserve_after_ms;	/* a head job waits this long
						 * before workers keep for it */
	uint64_t	 blob_max;	/* complete + reserved; 0: no bound */
	uint64_t	 blob_grace_ms;	/* unreferenced blobs and idle uploads */
};

#define MINUTES	60

/* The broker. */
struct broker {
	struct config	 cfg;
	struct event_base *base;
	struct journal	*journal;
	int		 replaying;
	uint64_t	 nreplayed;	/* records applied by this replay */
	uint64_t	 next_id;
	int		 cutoff_ids;	/* next_id was raised by rec_cutoff() */
	uint64_t	 now;		/* ms, updated once per loop pass */
	TAILQ_HEAD(, queue) queues;
	uint32_t	 nqueues;
	TAILQ_HEAD(, job) jobs;		/* top-level jobs and arrays by id */
	TAILQ_HEAD(, job) finished;	/* by finish time, for retention */
	uint64_t	 njobs;		/* records in the id map */
	struct heap	 timers;	/* delays, backoffs, leases */
	struct event	*timer_ev;
	uint64_t	 timer_armed;	/* due time armed, or 0 */
	struct event	*sync_ev;	/* FSYNC_INTERVAL */
	struct event	*expire_ev;	/* retention sweep (timer.c) */
	uint64_t	 snapshot_bytes;/* replayed from the snapshot */
	int		 compacting;	/* a child writes a snapshot: every
					 * page written first since its fork
					 * is copied (snapshot.c) */
	int		 want_dispatch;	/* something became ready */
	int		 want_wake;	/* something finished */
	uint32_t	 idle_takes;	/* parked TAKEs with a free slot */
	/* Early leases (epoch.c). */
	uint64_t	 epoch;		/* this start's number */
	uint64_t	 id_limit;	/* ids below it reserved (journaled) */
	uint64_t	 id_durable;	/* ...by a commit that is durable */
	int		 epoch_open;	/* replay: a life not closed cleanly */
	int		 early_ok;	/* this start's epoch is durable */
	uint32_t	 pass;		/* commits so far; a job's pass */
	uint32_t	 pass_leases;	/* leases journaled in this pass */
	uint64_t	 nearly, nreattached;	/* leases sent early, re-attached */
	int		 stopping;
	uint64_t	 started_at;
	/* counters for STATS */
	uint64_t	 nsubmitted, nfinished, nlost, nconns;
	/* Jobs and tasks done and failed in each of the last MINUTES
	 * minutes, for the dashboard's chart: live only, not journaled, so
	 * a restart starts them at zero. */
	uint64_t	 min_no[MINUTES];	/* the minute a slot counts */
	uint32_t	 min_done[MINUTES], min_failed[MINUTES];
};

extern struct broker *B;

/* state.c: the one state. */
void		 broker_init(void);
void		 broker_free(void);
void		 minute_count(int state);

/* idmap.c: jobs by (id, index), and what an id names. */
void		 idmap_init(void);
void		 idmap_free(void);
void		 idmap_put(struct job *);
void		 idmap_del(struct job *);
struct job	*idmap_get(uint64_t id, uint32_t index);
struct job	*lookup_id(const struct simq_id *);
struct job	*lookup_pending_task(const struct simq_id *, int *state);
int		 id_state(const struct simq_id *);
int		 all_finished(struct simq_id *, int n);

/* heap.c */
void		 heap_init(struct heap *,
		    int (*)(const struct job *, const struct job *));
void		 heap_free(struct heap *);
void		 heap_push(struct heap *, struct job *);
struct job	*heap_top(const struct heap *);
void		 heap_remove(struct heap *, struct job *);
void		 heap_fix(struct heap *, struct job *);
void		 heap_build(struct heap *);

/* fit.c: lanes, and what fits a worker. */
struct fit {
	uint32_t	 cpus, gpus;	/* free; UINT32_MAX: no limit */
	uint64_t	 mem;		/* free bytes; UINT64_MAX: no limit */
	uint64_t	 time;		/* ms left; UINT64_MAX: no limit */
};
extern const struct fit fit_any;
uint64_t	 queue_nready(const struct queue *);
struct lane	*lane_get(struct queue *, const struct jobopts *);
void		 lane_busy(struct lane *);
void		 lane_idle(struct lane *);
void		 lanes_build(struct queue *);
void		 lanes_free(struct queue *);
int		 fit_ok(const struct jobopts *, const struct fit *);
void		 fit_take(const struct fit *, const struct jobopts *,
		    struct fit *);
struct job	*queue_take_fit(struct queue *, const struct fit *free,
		    const struct fit *total, int *reserved);
void		 fit_worker(const struct worker *, struct fit *);
void		 fit_hold(struct worker *, const struct jobopts *, int sign);
void		 fit_free(const struct worker *, struct fit *);
void		 fit_free_ending(const struct worker *, const struct fit *,
		    struct fit *);
int		 fit_why(const struct jobopts *, char *kinds, size_t,
		    char *text, size_t);

/* Takes a job out of whichever heap holds it, if any.  Inline, as
 * queue_ready below: both are on the path of every submit and take. */
static inline void
job_unheap(struct job *j)
{
	if (j->where == JH_READY) {
		struct lane *l = j->opts->lane;
		heap_remove(&l->ready, j);
		if (l->ready.n == 0)
			lane_idle(l);
	} else if (j->where == JH_TIMER)
		heap_remove(&B->timers, j);
	j->where = JH_NONE;
}

/* timer.c: job timers behind one libevent timer. */
int		 due_less(const struct job *, const struct job *);
void		 timer_set(struct job *, uint64_t due);
void		 timer_renew(struct job *, uint64_t until);
void		 timers_fire(void);
void		 timers_start(void);
void		 timers_stop(void);
void		 timers_arm(void);

/* queue.c */
int		 ready_less(const struct job *, const struct job *);
struct queue	*queue_get(const char *name, size_t len, int create);
void		 queue_count(struct queue *, int from, int to, uint64_t n);
void		 queue_pause(struct queue *, int paused);
void		 queue_gc(struct queue *);

/* Puts a job, task or array into its queue's heap. */
static inline void
queue_ready(struct job *j)
{
	job_unheap(j);
	if (j->opts->lane == NULL)
		j->opts->lane = lane_get(j->opts->q, j->opts);
	heap_push(&j->opts->lane->ready, j);
	if (!j->opts->lane->active)
		lane_busy(j->opts->lane);
	j->where = JH_READY;
	B->want_dispatch = 1;
}
void		 queues_free(void);

/* jobopts.c: options and commands. */
struct jobopts	*jobopts_new(const struct proto_jobopts *, struct queue *);
void		 jobopts_unref(struct jobopts *);
struct jobopts	*jobopts_intern(struct jobopts *);
void		 jobopts_forget_queue(const struct queue *);
void		 jobopts_free_cache(void);
struct cmd	*cmd_new(const char *data, uint32_t len, uint32_t argc);
struct cmd	*cmd_from_words(struct proto_word *, int n);

/* job.c: the job model's state changes, used live and on replay. */
struct job	*job_submit(uint64_t first, uint32_t count, struct jobopts *,
		    struct cmd **cmds, const struct array_spec *,
		    uint64_t submitted, uint64_t not_before);
/* EACHLINE: an array of spec (1 to e->n) whose task i gets line i of e;
 * takes over c and e. */
struct job	*job_submit_lines(uint64_t id, struct jobopts *, struct cmd *c,
		    const struct array_spec *, struct entries *e,
		    uint64_t submitted, uint64_t not_before);
struct job	*job_take(struct queue *, struct worker *, const struct fit *,
		    const struct fit *, int *reserved);
void		 job_lease(struct job *, struct worker *, uint32_t attempt,
		    uint64_t started, uint64_t lease_until);
void		 job_end_attempt(struct job *, struct result *, int ok);
void		 job_finish(struct job *, struct result *, int state,
		    uint64_t due);
/* Why a running job goes back: released, its worker lost, or its
 * shepherd (on the worker) lost; the last two count against --max-lost. */
enum requeue_why { RQ_RELEASED, RQ_WORKER_LOST, RQ_SHEPHERD_LOST };
void		 job_requeue(struct job *, int lost, uint64_t due);
uint64_t	 job_cancel(struct job *, const char *reason);
uint64_t	 job_retry(struct job *, uint64_t *ndependents);
uint64_t	 job_cut(struct job *arr, uint64_t pos);
void		 job_due(struct job *);
void		 job_expire(uint64_t now);
int		 job_restore(struct job *, const char *worker, const char *host,
		    uint64_t started, uint64_t lease_ms);	/* snapshot.c */
void		 job_replay_done(void);				/* record.c */
/* ...and what they share with the rest of the model. */
void		 job_set_state(struct job *, int);
void		 job_end_now(struct job *, int to, const char *reason);
void		 job_gate_check(struct job *);
int		 job_finished(const struct job *);
int		 job_finished_state(int);
void		 job_free_all(void);
void		 result_free(struct result *);
uint64_t	 backoff_ms(uint32_t failures);

/* epoch.c: leases sent before their record is durable. */
int		 epoch_begin(void);	/* after replay (the model's part) */
void		 epoch_start(void);	/* ...and its record, synced */
void		 epoch_reserve(void);	/* each pass, before its commit */
void		 epoch_committed(void);	/* ...after it */
void		 epoch_close(void);	/* a clean stop */
void		 epoch_bump(void);	/* live and on replay */
int		 lease_early_ok(const struct job *);
void		 job_reattach(struct job *, struct worker *, uint32_t);
void		 rec_epoch(struct buf *, int kind, uint64_t epoch,
		    uint64_t limit);
int		 apply_epoch(struct rbuf *);

/* array.c */
int		 job_array_state(const struct job *);
uint64_t	 array_pos(const struct job *arr, uint32_t index);
struct job	*job_materialise(struct job *arr);
struct job	*array_task(struct job *arr, uint32_t index);
void		 array_skip(struct job *arr);
int		 array_cuttable(const struct job *arr, uint64_t pos);
void		 array_requeue(struct job *);
void		 array_block_state(struct job *, int to);
void		 array_check(struct job *);

/* blobref.c: blobs by hash, with the count of what names them. */
struct upload;
struct blob {
	uint8_t		 hash[SIMQ_HASH_LEN];
	uint64_t	 size;		/* the file's, or as a job names it */
	uint64_t	 refs;		/* options and results naming it */
	int		 stored;	/* complete, checked, durable */
	uint64_t	 idle_since;	/* refs 0 (or the file's mtime) since */
	uint64_t	 idle_pass;	/* ...in the pass of this number */
	struct upload	*up;		/* an upload in progress (blob.c) */
	struct blob	*next;		/* hash chain */
};
extern uint64_t	 blob_passes;	/* loop passes committed (blob_passed) */
struct blob	*blob_find(const uint8_t *hash);
struct blob	*blob_get(const uint8_t *hash);	/* made if need be */
void		 blob_gc(struct blob *);	/* forgets it if nothing left */
void		 blob_ref(const struct jobfile *);
void		 blob_unref(const struct jobfile *);
void		 blob_foreach(void (*)(struct blob *, void *), void *);
void		 blob_free_all(void);
struct jobfiles	*jobfiles_new(void);
void		 jobfiles_free(struct jobfiles *);
int		 jobfiles_equal(const struct jobfiles *,
		    const struct jobfiles *);
void		 jobfiles_ref(const struct jobfiles *, int up);

/* blob.c: the store on disk and its commands.  Uploads being written
 * at once, each with its file open: net.c keeps that many descriptors
 * back from connections, with the journal's. */
#define BLOB_FDS_MAX	256
void		 blob_start(void);	/* after replay and the first expiry */
void		 blob_passed(void);	/* after each pass's commit */
void		 blob_conn_free(struct conn *);
int		 blob_get_parked(struct conn *, int now);
void		 blob_put_begin(struct conn *, struct proto_req *);
void		 blob_put_data(struct conn *, const char *, size_t);
void		 blob_put_end(struct conn *, int term_ok);
void		 blob_stop(void);
void		 blob_stats(uint64_t *nstored, uint64_t *used,
		    uint64_t *reserved);
int		 blob_check_files(struct conn *, const struct proto_jobopts *);
struct json;
void		 blob_json_job(struct json *, const struct job *);
int		 blob_finish_key(struct conn *, struct result *,
		    const struct proto_word *, struct proto_word *);

/* deps.c: dependencies. */
int		 job_deps_check(const struct jobopts *, char *msg, size_t);
void		 deps_resolve(struct job *);
void		 deps_unregister(struct job *);
void		 deps_notify(struct job *, uint32_t index, int state);
void		 deps_notify_cut(struct job *, int state);

/* codec.c: the fields records share. */
#define DEPS_KINDED	UINT32_C(0x80000000)	/* in an options' dep count */
#define DEPS_RES	UINT32_C(0x40000000)	/* ...resources follow */
#define DEPS_FILES	UINT32_C(0x20000000)	/* ...files follow the deps */
#define RES_GOT		2			/* in a result's timedout */
void		 rec_put_files(struct buf *, const struct jobfiles *, int);
struct jobfiles	*rec_get_files(struct rbuf *, int result);
void		 rec_put_opts(struct buf *, const struct jobopts *);
void		 rec_put_cmd(struct buf *, const struct cmd *);
void		 rec_put_spec(struct buf *, const struct array_spec *);
void		 rec_put_vstr0(struct buf *, const char *);
void		 rec_put_result(struct buf *, const struct result *);
char		*rec_get_str(struct rbuf *, int optional);
struct cmd	*rec_get_cmd(struct rbuf *);
struct jobopts	*rec_get_opts(struct rbuf *);
int		 rec_get_spec(struct rbuf *, struct array_spec *);
struct result	*rec_get_result(struct rbuf *);
void		 journal_put(uint8_t type, struct buf *);

/* record.c: the journal's records and their replay. */
void		 rec_submit(struct buf *, uint64_t first, uint32_t count,
		    const struct jobopts *, struct cmd **cmds,
		    const struct array_spec *, uint64_t submitted,
		    uint64_t not_before);
void		 rec_lease(struct buf *, const struct job *, const char *worker,
		    const char *host, uint64_t lease_ms);
void		 rec_finish(struct buf *, const struct job *);
void		 rec_requeue(struct buf *, const struct job *, int lost,
		    uint64_t due);
void		 rec_event(struct buf *, const struct job *);
void		 rec_cut(struct buf *, const struct job *, uint64_t pos);
void		 rec_queue(struct buf *, const struct queue *);
/* The journal's cutoff_fn: keeps next_id above the ids of records that
 * are not replayed. */
int		 rec_cutoff(void *, uint8_t, const uint8_t *, size_t);
int		 rec_apply(void *, uint8_t type, const uint8_t *, size_t);

/* entries.c: an EACHLINE array's lines. */
struct entries	*entries_parse(const char *, size_t, char *why, size_t);
void		 entries_free(struct entries *);
const char	*entries_get(const struct entries *, uint32_t index,
		    size_t *len);
size_t		 entries_maxlen(const struct entries *);
void		 rec_put_entries(struct buf *, const struct entries *);
struct entries	*rec_get_entries(struct rbuf *);
void		 rec_submit_lines(struct buf *, uint64_t id,
		    const struct jobopts *, const struct cmd *,
		    const struct array_spec *, const struct entries *,
		    uint64_t submitted, uint64_t not_before);

/* snapshot.c: compaction; the snapshot's records. */
typedef int	(*snapshot_put_fn)(void *, uint8_t type, const void *, size_t);
int		 snapshot_records(snapshot_put_fn, void *);
int		 snapshot_write(void *, struct snapw *);
void		 snapshot_maybe(void);
void		 rec_opts(struct buf *, uint32_t, const struct jobopts *);
void		 rec_job(struct buf *, const struct job *);
int		 snap_apply_nextid(struct rbuf *);
int		 snap_apply_opts(struct rbuf *);
int		 snap_apply_job(struct rbuf *);
void		 rec_replay_done(void);
void		 snap_end(void);
void		 snap_close(void);

/* worker.c */
struct worker {
	char		*name;
	char		*host;
	char		*queues;	/* as registered, "a,b", or NULL */
	uint32_t	 slots;
	uint32_t	 cpus, gpus;	/* offered (WORKER); UINT32_MAX: unsaid */
	uint64_t	 mem;		/* offered bytes; UINT64_MAX: unsaid */
	uint64_t	 time_left;	/* its last TAKE's time=, or UINT64_MAX */
	uint32_t	 held_cpus, held_gpus;	/* by the jobs leased to it */
	uint64_t	 held_mem;
	uint64_t	 time_at;	/* ...said then (B->now) */
	uint32_t	 pid;
	uint64_t	 lease_ms;
	uint64_t	 seen;
	int		 suspect;	/* lost a lease; silent since */
	int		 confirming;	/* reconnected: its list is awaited */
	char		*outerr;	/* its output error (HEARTBEAT), or NULL */
	struct conn	*conn;
	TAILQ_HEAD(, job) jobs;
	uint32_t	 njobs;
	struct drop	*drops;
	TAILQ_ENTRY(worker) entry;
};

struct drop {
	uint64_t	 id;
	uint32_t	 index;
	uint32_t	 attempt;
	const char	*reason;	/* static string */
	struct drop	*next;
};

extern TAILQ_HEAD(workerlist, worker) workers;
extern uint32_t nworkers;

struct worker	*worker_get(const char *name, int create);
struct conn	*worker_attach(struct worker *, struct conn *);
void		 worker_detach(struct worker *);
void		 worker_reattached(struct worker *);
int		 worker_confirmed(struct worker *);
void		 worker_drop(struct worker *, const struct job *,
		    const char *reason);
void		 worker_gc(struct worker *);
void		 worker_free_all(void);

/* cmd.c: the command table, dispatch, parked replies. */
void		 cmd_dispatch(struct conn *, struct proto_req *, char *,
		    size_t);
void		 cmd_serve_parked(void);
void		 cmd_unpark(struct conn *);
void		 cmd_interrupt(struct conn *);
void		 cmd_park(struct conn *, int cmd, uint64_t wait_ms, void *arg);
int		 arg_u64(const struct proto_word *, uint64_t max, uint64_t *);
struct simq_id	*parse_ids(struct conn *, struct proto_word *, int n);

/* How a parked TAKE remembers its request. */
struct take_arg {
	struct fit	 free;		/* cpus= gpus= mem= time= */
	uint32_t	 max;
	uint32_t	 ahead;		/* of max, for busy slots */
	int		 idle;		/* max > ahead: counted in idle_takes */
	uint32_t	 nending;	/* ending=: leases of w it names */
	struct fit	 ending;	/* what they ask for */
	char		*queues;	/* "a,b,c" */
};

/* A parked WAIT's ids. */
struct wait_arg {
	int		 n;
	struct simq_id	 ids[];
};

/* The handlers: cmd_submit.c, cmd_worker.c, cmd_view.c.  Each answers
 * with exactly one reply; body is writable (decoding is in place). */
#define HANDLER(name) void name(struct conn *, struct proto_req *, char *, \
	    size_t)
HANDLER(h_submit);
HANDLER(h_batch);
HANDLER(h_eachline);
HANDLER(h_cancel_retry);
HANDLER(h_pause_resume);
HANDLER(h_worker);
HANDLER(h_take);
HANDLER(h_heartbeat);
HANDLER(h_finish);
HANDLER(h_fail);
HANDLER(h_release);
HANDLER(h_status);
HANDLER(h_wait);
HANDLER(h_list);
HANDLER(h_queues);
HANDLER(h_workers);
HANDLER(h_stats);
HANDLER(h_output);
HANDLER(h_follow);
HANDLER(h_push);
HANDLER(h_tasks);
HANDLER(h_explain);
HANDLER(h_have);	/* blob.c */
HANDLER(h_put);
HANDLER(h_get);
#undef HANDLER
int		 take_serve(struct conn *, struct take_arg *, int final);

/* follow.c: a running job's output, followed (FOLLOW, PUSH). */
int		 follow_notes(struct evbuffer *, struct worker *);
int		 follow_pending(const struct worker *);
void		 follow_worker_reset(const struct worker *);
int		 follow_serve(struct conn *, int final);
int		 follow_woken(void);
void		 follow_poke(void);
void		 follow_stats(uint64_t *followed, uint64_t *bytes);
void		 follow_free_all(void);

/* explain.c: why a job is not running (EXPLAIN). */
struct explain;
void		 explain_reasons(struct explain *, const struct job *,
		    const struct simq_id *, int state);

/* reply.c: items. */
void		 reply_word(struct evbuffer *, const char *key, const void *,
		    size_t);
void		 reply_str(struct evbuffer *, const char *key, const char *);
void		 reply_num(struct evbuffer *, const char *key, uint64_t);
void		 reply_id(struct evbuffer *, const char *key, uint64_t id,
		    uint32_t index);
void		 reply_argv(struct evbuffer *, const struct job *);
void		 reply_status(struct evbuffer *, const struct job *);
void		 reply_status_full(struct evbuffer *, const struct job *, int);
void		 reply_pending_task(struct evbuffer *, const struct job *,
		    const struct simq_id *, int state);
void		 reply_take(struct evbuffer *, const struct job *);
size_t		 reply_take_len(const struct jobopts *, const char *, size_t,
		    const struct cmd *, uint64_t, uint32_t);
void		 reply_worker_res(struct evbuffer *, const struct worker *);
int		 reply_drops(struct evbuffer *, struct worker *);
void		 reply_status_items(struct conn *, struct simq_id *, int n);

/* net.c: listener and connections. */
enum { CONN_PROTO, CONN_HTTP };

struct conn {
	int			 fd;
	int			 kind;		/* CONN_PROTO, CONN_HTTP */
	struct event		*rev;
	struct event		*wev;
	struct evbuffer		*in;
	struct evbuffer		*out;		/* replies committed */
	struct evbuffer		*pend;		/* replies of this pass */
	uint32_t		 npend;		/* replies in pend */
	uint32_t		 nearly;	/* ...of them first, that may
						 * go before the commit */
	size_t			 early_len;	/* their bytes */
	struct proto_in		 pin;
	int			 authed;
	int			 closing;	/* close after flushing */
	int			 dead;		/* free on next pass */
	int			 reading;	/* rev is armed */
	int			 dirty;		/* in the dirty list */
	int			 eof;		/* the client sent all it will */
	char			 peer[64];
	char			 addr[64];	/* peer without the port */
	/* Limits (net.c). */
	struct event		*stall_ev;	/* no progress: close */
	struct event		*hold_ev;	/* a held reply's delay */
	int			 held;		/* replies wait for hold_ev */
	int			 queued;	/* in the run queue (net_run) */
	TAILQ_ENTRY(conn)	 rentry;
	uint64_t		 work;		/* units run, for the turns */
	/* A line whose body is still arriving. */
	char			*line;
	size_t			 linelen;
	/* A parked TAKE, WAIT or FOLLOW. */
	int			 parked;	/* CMD_TAKE, CMD_WAIT, CMD_FOLLOW
						 * or 0 */
	uint64_t		 park_until;
	struct event		*park_ev;
	void			*park_arg;
	struct worker		*worker;
	struct blobget		*get;		/* blob.c: a GET's check */
	struct blobput		*put;		/* blob.c: a PUT streaming */
	uint64_t		 put_left;	/* its body bytes to come */
	int			 put_skip;	/* bad terminator: skip a line */
	TAILQ_ENTRY(conn)	 entry;
	TAILQ_ENTRY(conn)	 dentry;	/* dirty list */
	TAILQ_ENTRY(conn)	 pentry;	/* parked list */
};

extern TAILQ_HEAD(connlist, conn) conns, parked_conns;
extern uint32_t nconns, nhttp;
extern size_t input_total;

int		 net_listen(const char *addr, int port, int kind);
void		 conn_auth_failed(struct conn *);
void		 net_run(void);
int		 net_busy(void);
void		 net_close_listeners(void);
void		 net_after_pass(int commit_failed, int err);
void		 net_fatal_flush(void);
void		 conn_reply(struct conn *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 conn_replyv(struct conn *, struct evbuffer *);
void		 conn_error(struct conn *, enum proto_err, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
struct evbuffer	*conn_outbuf(struct conn *);
void		 conn_reply_done(struct conn *);
int		 conn_reply_early(struct conn *);
void		 net_flush_early(void);
void		 conn_close(struct conn *);
void		 conn_resume(struct conn *);
void		 conns_free_all(void);

/* http.c */
int		 http_listen(const char *addr, int port);
void		 http_input(struct conn *);
void		 http_timeout(struct conn *);


#endif
