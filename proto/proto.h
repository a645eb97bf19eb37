/*
 * proto.h: the simq wire protocol as a pure library.
 *
 * Everything here works on bytes in memory: no sockets, no libevent, no
 * global state.  The broker, the worker and the client all use it, the unit
 * tests drive it directly, and the fuzz target feeds it random input.
 * proto/PROTOCOL.md is the specification; this header is its C face.
 *
 * Ownership: every parser here borrows its input.  Words, keys and values
 * point into the caller's line buffer and stay valid as long as that buffer
 * is neither freed nor changed.  Decoding (proto_decode) works in place and
 * only ever shrinks a word.
 */
#ifndef SIMQ_PROTO_H
#define SIMQ_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define SIMQ_PROTO_VERSION	1
#define SIMQ_DEFAULT_PORT	7733

/*
 * Limits.  Each carries the reason for its value.
 */

/* A request line holds one job's whole command.  Real sweeps use a few
 * hundred bytes; 64 KiB leaves room for long argument lists while bounding
 * what one connection can make the broker hold before a line is complete. */
#define SIMQ_LINE_MAX		65536

/* Words on one line: a command with thousands of arguments is a mistake. */
#define SIMQ_WORDS_MAX		4096

/* Queue, worker and job names: short identifiers shown in tables. */
#define SIMQ_NAME_MAX		128

/* A BATCH: the broker creates its jobs in one go, holding its loop, so
 * one request is kept to a few milliseconds of work (about 10,000 jobs;
 * 2 MiB leaves 200 bytes a command).  Clients cut bigger batches into
 * several BATCH requests. */
#define SIMQ_BATCH_MAX		(2u << 20)
#define SIMQ_BATCH_JOBS_MAX	10000

/* EACHLINE: an array with one task per line of a list, the lines stored
 * once with the array.  32 MiB holds a million lines of 30 bytes; storing
 * them is one copy and one scan, a few milliseconds.  A line is at most
 * SIMQ_ENTRY_MAX bytes: a task's item repeats it (for each {} and as
 * SIMQ_ENTRY), encoded (up to three bytes a byte), in one line of at most
 * SIMQ_LINE_MAX. */
#define SIMQ_EACHLINE_MAX	(32u << 20)
#define SIMQ_ENTRY_MAX		4096

/* A body over its command's limit is read and discarded, keeping the
 * connection in step, if it is at most this long; a longer one is not
 * read at all: the broker answers at once and closes the connection. */
#define SIMQ_SWALLOW_MAX	(64u << 20)

/* Output tails and result payloads kept per job.  The brief asks for the
 * last 64 KiB of each stream: enough to see an error, small enough that a
 * million finished jobs do not exhaust the broker. */
#define SIMQ_TAIL_MAX		65536
#define SIMQ_PAYLOAD_MAX	65536

/* A FINISH body is stdout tail + stderr tail + payload. */
#define SIMQ_FINISH_MAX		(2 * SIMQ_TAIL_MAX + SIMQ_PAYLOAD_MAX)

/* FAIL reasons and other free text: one line of explanation. */
#define SIMQ_REASON_MAX		1024

/* Jobs handed out by one TAKE: a worker asks for its free slots, and no
 * node has more than a few hundred cores. */
#define SIMQ_TAKE_MAX		1024
/* Jobs a worker may hold leased ahead (TAKE ahead=N) per slot: enough
 * to cover a round trip and an fsync behind short jobs, few enough that
 * a job waits behind little. */
#define SIMQ_AHEAD_PER_SLOT	3
/* Leases one TAKE's ending= may name (a few KiB of its line): the
 * reports of jobs ending together behind one TAKE. */
#define SIMQ_TAKE_ENDING_MAX	256

/* Following a running job's output (FOLLOW, PUSH): bytes one PUSH
 * body or one FOLLOW reply carries, as much as a kept tail. */
#define SIMQ_FOLLOW_CHUNK	65536

/* Queues: named by users, so a typo loop must not create millions. */
#define SIMQ_QUEUES_MAX		4096

/* Array indices: Slurm-like, non-negative, fit in 32 bits. */
#define SIMQ_INDEX_MAX		4294967294u

/* Ids: 63 bits so they survive any signed conversion in clients. */
#define SIMQ_ID_MAX		((UINT64_C(1) << 63) - 1)

/* Durations on the wire are milliseconds; ten years is "forever". */
#define SIMQ_MS_MAX		(UINT64_C(10) * 366 * 24 * 3600 * 1000)

/* Retries per job: backoff is capped, so more than this is a loop. */
#define SIMQ_RETRIES_MAX	1000

/* Priorities: larger runs first.  Signed so users can lower a job. */
#define SIMQ_PRIO_MIN		(-1000000000)
#define SIMQ_PRIO_MAX		1000000000

/* Dependencies named by one job. */
#define SIMQ_DEPS_MAX		1024

/* Environment additions for one job. */
#define SIMQ_ENV_MAX		256

/* Resources a job asks for and a worker offers (cpus=, gpus=, mem=).
 * CPUs as -j bounds a worker's slots (no node has more cores); GPUs: a
 * node holds a handful, and a worker names them in a 64-bit mask; memory
 * in bytes, up to 1 PiB. */
#define SIMQ_CPUS_MAX		4096
#define SIMQ_GPUS_MAX		64
#define SIMQ_MEM_MAX		(UINT64_C(1) << 50)
/* Files that travel with jobs.  A transfer moves at most one chunk per
 * request, so the broker holds at most one chunk per connection
 * whatever the file's size; 4 MiB is large enough that the per-request
 * cost vanishes next to the bytes, small enough that a few connections
 * at once stay far below --input-max. */
#define SIMQ_CHUNK_MAX		(4u << 20)
/* Files one job names (file=), collected files one FINISH names (got=),
 * and hashes one HAVE asks about.  A line of 64 KiB is the tighter bound
 * in practice: a file= word takes 80 bytes plus its name. */
#define SIMQ_FILES_MAX		1000
/* collect= patterns of one job, and nomatch= of one FINISH. */
#define SIMQ_COLLECT_MAX	64
/* collerr= notes of one FINISH: the rest are summed up by the worker. */
#define SIMQ_COLLERR_MAX	64
/* A file's size: below 2^53, so that it is exact in JSON (the HTTP API)
 * and in any client's double. */
#define SIMQ_BLOB_SIZE_MAX	((UINT64_C(1) << 53) - 1)
/* A file's NAME or a collect GLOB: a path on the worker. */
#define SIMQ_PATH_MAX		4096

/*
 * Error codes.  The first word after "ERR" on the wire; three classes as in
 * memcached: an unknown command, a client error (the request was wrong, and
 * says why), a server error (the request was fine, the broker could not
 * do it).
 */
enum proto_err {
	PERR_NONE = 0,
	PERR_UNKNOWN,		/* unknown-command */
	PERR_BADREQ,		/* bad-request: wrong arguments or options */
	PERR_LINE,		/* line-too-long */
	PERR_BODYSIZE,		/* body-too-large */
	PERR_BODY,		/* bad-body: body content or terminator wrong */
	PERR_NOTFOUND,		/* not-found */
	PERR_STATE,		/* bad-state: not allowed in the job's state */
	PERR_AUTH,		/* auth: HELLO with a token needed / wrong */
	PERR_VERSION,		/* version: protocol version not supported */
	PERR_STALE,		/* stale: attempt is not the current one */
	PERR_LIMIT,		/* limit: a broker-wide limit was reached */
	PERR_SERVER,		/* server: the broker failed (no memory, I/O) */
	PERR__COUNT
};

/* "bad-request" etc.; never NULL (PERR_NONE is "none", an out-of-range
 * code "server"). */
const char	*proto_err_name(enum proto_err);
/* 1 for the server class, 0 for client errors. */
int		 proto_err_is_server(enum proto_err);
/* Maps a code name back; PERR_NONE if unknown. */
enum proto_err	 proto_err_lookup(const char *, size_t);

/*
 * Numbers.  One strict parser: decimal digits only, no sign, no leading
 * '+', no spaces, no empty string, no leading zeros (except "0"), no
 * overflow, no trailing junk.  Returns 0, or -1 if s is not a number in
 * [0, max].
 */
int	proto_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);
/* The same, with one optional leading '-'; "-0" is refused. */
int	proto_parse_i64(const char *s, size_t len, int64_t min, int64_t max,
	    int64_t *out);

/* A duration for people: "90", "90s", "500ms", "10m", "2h", "3d", or a
 * sum of those without spaces ("1h30m"), units in decreasing order and
 * each at most once; leading zeros are allowed ("1h05m").  A bare number
 * is seconds.  s is NUL-terminated.  Returns 0 and milliseconds (at most
 * SIMQ_MS_MAX) in *ms, or -1.  Used by the client; the wire itself
 * carries plain milliseconds. */
int	proto_parse_duration(const char *s, uint64_t *ms);

/* A job id: "17" (a job or a whole array) or "17_5" (task 5 of array 17).
 * index is UINT32_MAX when there is no task part. */
#define SIMQ_NOINDEX	UINT32_MAX
struct simq_id {
	uint64_t	id;
	uint32_t	index;
};

/* The kinds of dependency, Slurm's: after=ID or after=ok:ID runs when ID
 * is done (afterok); after=any:ID when ID has finished whatever its end
 * (afterany); after=failed:ID when ID failed or was canceled
 * (afternotok). */
enum { SIMQ_DEP_OK, SIMQ_DEP_ANY, SIMQ_DEP_FAILED, SIMQ_DEP__COUNT };
/* "ok", "any", "failed". */
const char	*proto_depkind_name(int);
int	proto_parse_id(const char *s, size_t len, struct simq_id *out);
/* A range of tasks of one array, as CANCEL and RETRY take it: Slurm's
 * "17_[1-10]" or "17_[1,3,8-12]", or "17_1-10" without the brackets.
 * Each part is an index or LO-HI (LO <= HI), at most SIMQ_RANGE_PARTS.
 * Returns 0, or -1 when s is not one (a plain id is not). */
#define SIMQ_RANGE_PARTS	64
struct simq_idrange {
	uint64_t	id;
	int		n;
	uint32_t	lo[SIMQ_RANGE_PARTS];
	uint32_t	hi[SIMQ_RANGE_PARTS];
};
int	proto_parse_idrange(const char *s, size_t len, struct simq_idrange *);
/* Writes "17" or "17_5" and a NUL; buf needs 32 bytes.  Returns length. */
int	proto_format_id(char *buf, uint64_t id, uint32_t index);

/* An array spec "A-B[:STEP][%MAXRUN]" or "A[:...]" for one index.
 * A <= B <= SIMQ_INDEX_MAX, STEP >= 1, MAXRUN >= 0 (0: no limit). */
struct array_spec {
	uint32_t	first;
	uint32_t	last;
	uint32_t	step;
	uint32_t	maxrun;
};
int	 proto_parse_array(const char *s, size_t len, struct array_spec *out);
/* Number of tasks an array spec makes (>= 1). */
uint64_t proto_array_count(const struct array_spec *);

/*
 * Strings on the wire are words: no spaces, tabs, CR or LF.  A byte that
 * cannot appear literally is written %XX (two hex digits, either case).
 * The empty string is the lone word "%".  Any other byte, UTF-8
 * included, may appear as itself.
 */

/* Bytes needed to encode len bytes (worst case), excluding the NUL. */
#define PROTO_ENC_MAX(len)	((len) * 3 + 1)
/* Encodes src into dst (which has PROTO_ENC_MAX(len)+1 bytes); NUL
 * terminates and returns the encoded length. */
size_t	proto_encode(char *dst, const void *src, size_t len);
/* Decodes a word in place.  Returns the decoded length, or -1 for a
 * malformed escape ("%4", "%zz").  A lone "%" decodes to length 0.  The
 * result is not NUL-terminated unless the caller makes it so (decoding only
 * shrinks, so w[result] is always writable). */
long	proto_decode(char *w, size_t len);

/* A word: borrowed from the line. */
struct proto_word {
	char	*p;
	size_t	 len;
};

/* Splits a line (without its terminator) into words separated by runs of
 * spaces or tabs.  Returns the count, or -1 when there are more than max
 * words.  Does not modify the line. */
int	proto_split(char *line, size_t len, struct proto_word *w, int max);

/* For a "key=value" word: sets key/value (value may be empty) and returns
 * 0, or -1 if there is no '='.  The value is still encoded. */
int	proto_kv(const struct proto_word *w, struct proto_word *key,
	    struct proto_word *val);
/* 1 if the word equals the NUL-terminated s (case-sensitive). */
int	proto_word_is(const struct proto_word *w, const char *s);

/*
 * Framing of the input stream, incrementally.
 *
 * The caller keeps the received bytes in its own buffer and shows the
 * framer a contiguous prefix of them.  Each call reports one event and how
 * many bytes it consumed; the caller drains those and calls again.
 *
 *   PROTO_NEED  more bytes are needed; *used says how many were consumed
 *               (non-zero only while skipping).  Everything that could be
 *               done with these bytes is done: drain *used and call again
 *               when more bytes arrive.  The bytes left are then fewer
 *               than proto_in_want().
 *   PROTO_LINE  a request line: tok.p/tok.len, without CR LF.  If its
 *               command takes a body, call proto_in_body() before the next
 *               call.
 *   PROTO_BODY  a complete body: tok.p/tok.len, without its CR LF.
 *   PROTO_ERR   the input was wrong (*err says how).  Reply with the
 *               error and carry on; the framer discards what is left of
 *               the bad input itself (with PROTO_NEED and *used > 0 while
 *               it arrives).  One PROTO_ERR per bad request:
 *               PERR_LINE      reported as soon as SIMQ_LINE_MAX bytes
 *                              hold no LF; the rest of the line, up to
 *                              and including its LF, is skipped after.
 *               PERR_BODYSIZE  reported after the oversized body and its
 *                              terminator have been swallowed (see
 *                              proto_in_body); if the terminator is
 *                              wrong, input is also skipped to the next
 *                              LF, silently.
 *               PERR_BODY      the body is not followed by CR LF or LF;
 *                              reported at once, then input is skipped up
 *                              to and including the next LF.
 *
 * A line ends at LF; a CR right before it is dropped, so both nc's LF and
 * a strict client's CR LF work.  A line may hold SIMQ_LINE_MAX bytes with
 * its terminator.  A body must be followed by CR LF or LF.
 *
 * Between calls the caller drains exactly *used bytes and keeps the rest
 * (the framer remembers how far it has searched a partial line).  tok
 * points into buf and is valid until those bytes are drained.
 */
enum proto_ev {
	PROTO_NEED,
	PROTO_LINE,
	PROTO_BODY,
	PROTO_ERR,
};

struct proto_in {
	int		state;		/* private */
	size_t		want;		/* private: body bytes */
	size_t		skip;		/* private: bytes left to swallow */
};

void		proto_in_init(struct proto_in *);
enum proto_ev	proto_in_next(struct proto_in *, char *buf, size_t len,
		    size_t *used, struct proto_word *tok, enum proto_err *err);
/* The line just returned announced a body of n bytes; max is the largest
 * the command accepts.  If n <= max the next event is PROTO_BODY (or
 * PROTO_ERR PERR_BODY).  If n > max the body will be swallowed: the next
 * events are PROTO_NEED (with *used > 0) until n bytes and their
 * terminator have gone by, then PROTO_ERR with PERR_BODYSIZE. */
void		proto_in_body(struct proto_in *, size_t n, size_t max);
/* Contiguous bytes the caller must be able to show the next
 * proto_in_next call: the next event may need that many (SIMQ_LINE_MAX
 * for a line, the body length + 2 for a body, 1 or 2 while skipping;
 * never more than SIMQ_LINE_MAX + 2 or the body length + 2).  A capacity,
 * not a threshold: fewer bytes may do, so call whenever bytes arrive. */
size_t		proto_in_want(const struct proto_in *);

/*
 * Commands.  The table is shared by every program: it names each verb,
 * its arity and whether it takes a body, so a request is checked before
 * any handler runs.
 */
enum proto_cmd {
	CMD_NONE = 0,
	CMD_HELLO,
	CMD_PING,
	CMD_QUIT,
	CMD_SUBMIT,
	CMD_BATCH,
	CMD_WORKER,
	CMD_TAKE,
	CMD_HEARTBEAT,
	CMD_FINISH,
	CMD_FAIL,
	CMD_RELEASE,
	CMD_STATUS,
	CMD_WAIT,
	CMD_LIST,
	CMD_QUEUES,
	CMD_WORKERS,
	CMD_STATS,
	CMD_OUTPUT,
	CMD_CANCEL,
	CMD_RETRY,
	CMD_PAUSE,
	CMD_RESUME,
	CMD_FOLLOW,
	CMD_PUSH,
	CMD_TASKS,
	CMD_EXPLAIN,
	CMD_HAVE,
	CMD_PUT,
	CMD_GET,
	CMD_EACHLINE,
	CMD__COUNT
};

#define PROTO_BODY_NONE	0
#define PROTO_BODY_LAST	1	/* the last word is the body length */

struct proto_cmdinfo {
	const char	*name;		/* upper case, as on the wire */
	int		 minargs;	/* words after the verb, with the
					   body length word */
	int		 maxargs;	/* -1: up to SIMQ_WORDS_MAX */
	int		 body;		/* PROTO_BODY_* */
	size_t		 bodymax;
	const char	*usage;		/* "SUBMIT [OPTION=VALUE...] -- ARG..." */
};

const struct proto_cmdinfo *proto_cmd_info(enum proto_cmd);

/* A parsed request line. */
struct proto_req {
	enum proto_cmd		 cmd;
	int			 nargs;		/* words after the verb */
	struct proto_word	*args;		/* points into words[] */
	size_t			 bodylen;	/* if the command has a body */
	int			 nwords;
	struct proto_word	 words[SIMQ_WORDS_MAX];
};

/* Splits and checks a request line: known verb (any case), argument count
 * within the table's bounds, a valid body length within bodymax.  For a
 * command with a body, args excludes the length word.  Returns PERR_NONE,
 * or an error with a message in msg:
 *   PERR_UNKNOWN   unknown verb, or an empty line (nwords 0).
 *   PERR_BADREQ    too many words, wrong arity, a body length that is not
 *                  a number: no body follows (bodylen 0).
 *   PERR_BODYSIZE  all fine but the body length exceeds bodymax; bodylen
 *                  is the announced length.  Do not reply yet: call
 *                  proto_in_body(bodylen, bodymax); the framer swallows
 *                  the body and then returns PROTO_ERR PERR_BODYSIZE: reply
 *                  then (msg is the message to send). */
enum proto_err	proto_req_parse(struct proto_req *, char *line, size_t len,
		    char *msg, size_t msglen);

/*
 * Files that travel with jobs (PROTOCOL.md, "Files"): blobs are named by
 * the SHA-256 of their bytes, written as 64 lower-case hex digits.  A job
 * names its input files as file=HASH:SIZE:MODE:NAME words, its outputs
 * to collect as collect=GLOB; a FINISH names what was collected as
 * got=HASH:SIZE:MODE:NAME.
 */
#define SIMQ_HASH_LEN		32
#define SIMQ_HASH_HEX		64

struct proto_file {
	uint8_t			hash[SIMQ_HASH_LEN];
	uint64_t		size;		/* <= SIMQ_BLOB_SIZE_MAX */
	uint32_t		mode;		/* permission bits, <= 0777 */
	struct proto_word	name;		/* borrowed, decoded */
};

/* 64 hex digits, lower case only (one way to write each hash).  Returns
 * 0 with the digest, or -1. */
int	proto_parse_hash(const char *s, size_t len, uint8_t out[SIMQ_HASH_LEN]);
/* Writes 64 lower-case hex digits and a NUL. */
void	proto_format_hash(char out[SIMQ_HASH_HEX + 1],
	    const uint8_t h[SIMQ_HASH_LEN]);
/* A relative NAME: 1..SIMQ_PATH_MAX bytes, no NUL, not starting with
 * '/', no empty, "." or ".." component (so no "//" and no trailing '/').
 * Returns NULL when it is one, else why not (a static string). */
const char *proto_relpath_why(const char *s, size_t len);
/* A collect GLOB: 1..SIMQ_PATH_MAX bytes, no NUL, not starting with '/',
 * no ".." component.  NULL, or why not. */
const char *proto_glob_why(const char *s, size_t len);
/* A decoded HASH:SIZE:MODE:NAME (the value of file= or got=; NAME is the
 * rest after the third colon, so it may hold colons).  MODE is octal
 * without leading zeros, at most 777.  Fills f (f->name borrows s) and
 * returns NULL, or returns why not. */
const char *proto_parse_file(char *s, size_t len, struct proto_file *f);
/* Formats f as the (decoded) value HASH:SIZE:MODE:NAME into dst, which
 * has room for len bytes; returns the length it needs (snprintf's way). */
size_t	proto_format_file(char *dst, size_t len, const uint8_t *hash,
	    uint64_t size, uint32_t mode, const char *name, size_t namelen);
/* Among n files, the index of the first whose name repeats an earlier
 * one's, or -1 if all differ. */
int	proto_files_dup(const struct proto_file *, int n);

/*
 * Job options, shared by SUBMIT and BATCH: the words before "--" (SUBMIT)
 * or all argument words (BATCH).  Strings are decoded in place and
 * borrowed from the line.
 */
struct proto_jobopts {
	struct proto_word	queue;		/* q=, default "default" */
	int64_t			prio;		/* pri= */
	uint64_t		timeout_ms;	/* timeout=, 0: none */
	uint32_t		retries;	/* retries= */
	uint64_t		delay_ms;	/* delay= */
	uint32_t		cpus;		/* cpus=, 0: not given (1) */
	uint32_t		gpus;		/* gpus= */
	uint64_t		mem;		/* mem=, bytes, 0: none */
	struct proto_word	name;		/* name=, may be empty */
	struct proto_word	cwd;		/* cwd=, may be empty */
	struct proto_word	output;		/* output=, may be empty */
	int			has_array;
	struct array_spec	array;		/* array= (SUBMIT only) */
	int			ndeps;
	struct simq_id		deps[SIMQ_DEPS_MAX];	/* after=ID,ID */
	uint8_t			depkind[SIMQ_DEPS_MAX];	/* SIMQ_DEP_* */
	int			nenv;
	struct proto_word	env[SIMQ_ENV_MAX];	/* env=K=V, decoded */
	int			nfiles;
	struct proto_file	files[SIMQ_FILES_MAX];	/* file= */
	int			ncollect;
	struct proto_word	collect[SIMQ_COLLECT_MAX];	/* collect= */
};

/* Parses option words into o.  Values are decoded in place (the words'
 * bytes change); a decoded string holding a NUL is refused.  array= is
 * accepted here; BATCH must refuse has_array itself.  Returns PERR_NONE or
 * PERR_BADREQ with a message naming the bad option. */
enum proto_err	proto_jobopts_parse(struct proto_jobopts *o,
		    struct proto_word *w, int n, char *msg, size_t msglen);

/* A valid queue or worker name: 1..SIMQ_NAME_MAX bytes of [A-Za-z0-9._-]
 * (and, for worker names, ':' and '@' too). */
int	proto_name_ok(const char *s, size_t len);
int	proto_worker_name_ok(const char *s, size_t len);

/* Job states, as on the wire. */
enum job_state {
	JS_WAITING = 0,
	JS_QUEUED,
	JS_RUNNING,
	JS_DONE,
	JS_FAILED,
	JS_CANCELED,
	JS__COUNT
};
const char	*proto_state_name(enum job_state);
/* Returns the state, or -1. */
int		 proto_state_lookup(const char *, size_t);

#endif
