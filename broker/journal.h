/*
 * journal.h: the broker's append-only, checksummed journal.
 *
 * The journal knows records, not jobs: a record is a type byte and an
 * opaque payload.  The job model (record.c) gives the payloads meaning.
 *
 * On disk, DATADIR/journal/ holds segment files named %016llx.seg in
 * sequence order.  Each record is framed as
 *
 *	u32 len		length of type + payload (>= 1), little-endian
 *	u32 crc		CRC-32C of the 4 len bytes, the type and the payload
 *	u8  type
 *	    payload	len - 1 bytes
 *
 * Every segment begins with a REC_SEGHDR record (magic "SIMQJNL", format
 * version, the segment's sequence number, a flags word).  A segment whose
 * header has SEG_SNAPSHOT set holds a complete snapshot of the live state
 * followed by ordinary records (none, when a child wrote it:
 * journal_snapshot_start): replay starts at the newest such segment and
 * older segments are obsolete.  An empty segment may be the placeholder a
 * child's snapshot did not replace.
 *
 * Group commit: journal_append() only copies into memory.  The broker calls
 * journal_commit() once per event-loop pass, before any reply of that pass
 * is sent: one write() and, under FSYNC_ALWAYS, one fdatasync() cover every
 * change of the pass.
 *
 * If you change the framing or the segment header: bump JOURNAL_VERSION,
 * keep the reader for the old version, and add a fixture to the tests.
 */
#ifndef SIMQ_JOURNAL_H
#define SIMQ_JOURNAL_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Version 2 added, to the job model's records: dependency kinds in a
 * job's options, the REC_CUT record, and a flag in REC_JOB; version 1's
 * records decode unchanged, so both are read.  A simqd that reads only
 * version 1 refuses a version 2 journal by its header, not at its first
 * new record.
 *
 * Version 3 added a job's resources (cpus, gpus, mem) to its options,
 * behind a flag in the dependency count: version 1 and 2 records decode
 * unchanged.
 *
 * Version 4 added the files that travel with jobs: file= and collect=
 * in a job's options (after its resources), got=, nomatch= and collerr=
 * in an attempt's result, each behind a flag, so versions 1 to 3 decode
 * as before.
 *
 * Version 5 added EACHLINE arrays: their lines after the command in
 * REC_SUBMIT (spec flag 2) and in the array's REC_JOB (flag RJ_LINES).
 * Older records decode unchanged.
 *
 * Version 6 added leases sent before their record is durable (epoch.c):
 * the REC_EPOCH record (a start, ids reserved ahead, a clean stop) and
 * the flag RJ_FORGOT in REC_JOB.  Older records decode unchanged.
 */
#define JOURNAL_VERSION		6
#define JOURNAL_VERSION_MIN	1	/* the oldest this simqd reads */

/* Record types below 16 belong to the journal itself. */
#define REC_SEGHDR		1

#define SEG_SNAPSHOT		0x1

/* Where a forced cut puts what it leaves out: DIR/cut-YYYYMMDDTHHMMSSZ,
 * with -2, -3... when that exists. */
#define JOURNAL_CUT_PREFIX	"cut-"

/* Bytes of a frame before its payload: len, crc, type. */
#define JOURNAL_FRAME_HDR	9

/* A record's payload is bounded so a corrupt length cannot make replay
 * allocate gigabytes: the largest legitimate record is a BATCH of
 * SIMQ_BATCH_MAX bytes of commands plus its options. */
#define JOURNAL_RECORD_MAX	((uint32_t)128 << 20)

/* A segment is closed and a new one started beyond this size, so that
 * compaction can drop whole files. */
#define JOURNAL_SEGMENT_MAX	((uint64_t)64 << 20)

enum fsync_policy {
	FSYNC_ALWAYS,		/* fdatasync before every reply (default) */
	FSYNC_INTERVAL,		/* at most one fdatasync per interval */
	FSYNC_NONE,		/* leave it to the kernel */
};

/* Called for each good record in order during journal_open().  payload
 * is valid only during the call.  Returns 0, or -1 to stop the replay
 * (journal_open then fails). */
typedef int	(*journal_replay_fn)(void *arg, uint8_t type,
		    const uint8_t *payload, size_t len);

struct journal_opts {
	const char		*dir;		/* DATADIR/journal, created if missing */
	enum fsync_policy	 policy;
	unsigned		 interval_ms;	/* for FSYNC_INTERVAL */
	uint64_t		 segment_max;	/* 0: JOURNAL_SEGMENT_MAX */
	int			 force;		/* cut at mid-journal corruption */
	int			 readonly;	/* --check: never modify files */
	FILE			*report;	/* where --check prints, or NULL */
	/* Called, after the replay, for every checksum-valid record that is
	 * not replayed because a forced cut left it out: the rest of the cut
	 * segment, the segments after it, and the segments of earlier cuts
	 * kept in cut-* directories.  The broker keeps its id counter above
	 * every id they name.  Its return value is ignored.  May be NULL. */
	journal_replay_fn	 cutoff_fn;
	void			*cutoff_arg;
	/* How long to wait for the journal's lock when another process
	 * holds it (a compaction child of a broker that just died holds it
	 * until the kernel has killed it too); 0: fail at once. */
	unsigned		 lock_wait_ms;
};


/* Statistics of the last replay and of the files now. */
struct journal_stats {
	uint64_t	segments;	/* files in use */
	uint64_t	bytes;		/* their total size */
	uint64_t	records;	/* replayed */
	uint64_t	torn_bytes;	/* cut from the tail at open */
	uint64_t	corrupt_at;	/* offset of forced cut, or 0 */
	uint64_t	commits;	/* journal_commit() calls that wrote */
	uint64_t	fsyncs;
	uint64_t	snapshots;	/* compactions done since open */
};

struct journal;

/*
 * Opens (creating if needed) the journal and replays it through fn.
 *
 * Replay starts at the newest snapshot segment (or the oldest segment if
 * none is a snapshot).  A torn tail in the last segment (a partial or
 * checksum-failing record with no good record after it) is cut off with
 * ftruncate and logged.  A bad record anywhere else, or followed by a good
 * record, is corruption: journal_open fails with a message unless
 * opts->force, in which case the journal is cut at the bad record and the
 * cut is logged.  Nothing a forced cut leaves out is deleted: the later
 * segments, a copy of the cut segment as it was, and the obsolete ones
 * are moved to a new directory DIR/cut-YYYYMMDDTHHMMSSZ (JOURNAL_CUT_PREFIX),
 * and opts->cutoff_fn sees every record they hold.  Otherwise obsolete
 * segments and leftover temporary files are removed.  With opts->readonly nothing is changed
 * on disk and the findings are printed to opts->report.
 *
 * Returns the journal, ready to append to a new segment, or NULL with a
 * message in err.
 */
struct journal	*journal_open(const struct journal_opts *, journal_replay_fn,
		    void *arg, char *err, size_t errlen);
/* Commits what is pending (fsync whatever the policy) and closes. */
int		 journal_close(struct journal *);

/* Appends one record to the pending buffer; no I/O.  payload may be NULL
 * when len is 0. */
void		 journal_append(struct journal *, uint8_t type,
		    const void *payload, size_t len);
/* Bytes appended but not yet written. */
size_t		 journal_pending(const struct journal *);

/*
 * Writes everything pending with one write() (rotating to a new segment
 * first when the current one is full) and, under FSYNC_ALWAYS, calls
 * fdatasync().  Returns 0, or -1 with errno set; the broker treats -1 as
 * fatal, because memory now holds changes the disk does not.
 */
int		 journal_commit(struct journal *);
/* For FSYNC_INTERVAL: fdatasync if anything was written since the last
 * one.  Returns 0, or -1 with errno set (fatal). */
int		 journal_sync(struct journal *);

/*
 * Compaction.  journal_snapshot() commits what is pending, then writes a
 * new segment (as a temporary file) whose header has SEG_SNAPSHOT, lets fn
 * fill it with records describing the whole live state via
 * journal_snap_append(), fsyncs it, renames it into place, fsyncs the
 * directory, removes every older segment, and appends from then on to the
 * new segment.  On failure (disk full, say) the temporary file is removed,
 * the old segments stay in use, and -1 is returned with errno set: not
 * fatal, since nothing durable was lost.
 */
struct snapw;
typedef int	(*journal_snapshot_fn)(void *arg, struct snapw *);
int		 journal_snapshot(struct journal *, journal_snapshot_fn, void *arg);

/*
 * Compaction in a child process, so that the caller's loop goes on.
 * journal_snapshot_start() commits what is pending and starts two
 * segments: SEQ, an empty placeholder, and SEQ+1, which takes every
 * append from then on.  Then it forks.  The child runs fn on its
 * copy-on-write image of the caller's memory, writing SEQ.seg.tmp (a
 * snapshot segment); fsyncs it; renames it over the placeholder (the
 * switch-over, atomic); fsyncs the directory; removes the segments
 * before SEQ, now obsolete, and exits.  It dies with its parent
 * (PR_SET_PDEATHSIG) and keeps nothing of the parent's open files but
 * the journal directory, whose lock it shares.  A crash or kill -9 of
 * either at any moment leaves either the old snapshot with every
 * segment after it (the placeholder empty) or the new snapshot with
 * SEQ+1 onwards.
 *
 * Returns the child's pid, or -1 with errno set (EBUSY: a child is
 * still at work).  delay_ms is a test hook: the child pauses half of it
 * before its switch-over and half after.
 *
 * The caller watches for SIGCHLD and calls journal_snapshot_poll(): 1
 * while the child runs; 0 once it has switched over, with the new
 * snapshot's size in *bytes; -1 with errno set when it failed (its
 * errno; EINTR if it was killed): the old segments stay in use, which is
 * not fatal, unless the directory's fsync failed after the switch-over:
 * then the journal is broken (EIO) like after any failed fsync.
 * journal_close() kills a child still at work.
 */
pid_t		 journal_snapshot_start(struct journal *, journal_snapshot_fn,
		    void *arg, unsigned delay_ms);
pid_t		 journal_snapshot_child(const struct journal *);
int		 journal_snapshot_poll(struct journal *, uint64_t *bytes);
void		 journal_snapshot_cancel(struct journal *);
/* Returns 0, or -1 with errno set (the snapshot is then abandoned). */
int		 journal_snap_append(struct snapw *, uint8_t type,
		    const void *payload, size_t len);

void		 journal_stats(const struct journal *, struct journal_stats *);

/* Test hook: make writes fail with ENOSPC once this many more bytes have
 * been written (0: never).  Used by the failure tests through simqd's
 * hidden --fail-writes-after option, next to the real full-disk test. */
void		 journal_fail_after(struct journal *, uint64_t bytes);

/* CRC-32C (Castagnoli), as used in the frames: in hardware where the CPU
 * has it, else crc32c_portable(), which gives the same values. */
uint32_t	 crc32c(uint32_t crc, const void *, size_t);
uint32_t	 crc32c_portable(uint32_t crc, const void *, size_t);

#endif
