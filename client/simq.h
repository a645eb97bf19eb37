/*
 * simq.h: the command-line client, simq(1).
 *
 * A plain blocking client: one TCP connection, requests written whole,
 * replies read with a small buffered reader.  Each subcommand is one file
 * (cmd-*.c) with one entry in main.c's table; what they share lives in
 * the modules below.  split.c, fmt.c, wire.c and util.c are pure (no
 * sockets, no globals of main.c) so tests/unit/test_client.c links them
 * alone.  Allocation, messages, the clock, the broker's address, the
 * token and the JSON writer are lib/'s, shared with simqd and
 * simq-worker.
 */
#ifndef SIMQ_CLIENT_H
#define SIMQ_CLIENT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "proto.h"

#include "clock.h"
#include "json.h"
#include "log.h"
#include "server.h"
#include "token.h"
#include "xmalloc.h"

/* Exit statuses, as in the brief. */
#define EXIT_OK		0	/* success */
#define EXIT_FAILED	1	/* the thing asked about failed */
#define EXIT_USAGE	2	/* usage or connection error */

#define PRINTFLIKE(a, b)	__attribute__((format(printf, a, b)))
#define NORETURN		__attribute__((noreturn))

/*
 * A subcommand: a table entry and one function (tmux's cmd_entry).
 * exec gets argv with argv[0] the subcommand's name and returns the exit
 * status.
 */
struct simq_cmd {
	const char	*name;
	const char	*args;		/* "[-q QUEUE] ... -- CMD [ARG...]" */
	const char	*summary;	/* one line for simq --help */
	const char	*help;		/* option lines for simq CMD --help */
	int		 (*exec)(int, char **);
};

/* Options every subcommand takes, set by simq_getopt(). */
struct simq_cfg {
	const char	*server;	/* -s HOST:PORT */
	const char	*token_file;	/* --token-file */
	int		 json;		/* --json */
	int		 colour;	/* stdout is a tty, NO_COLOR unset */
	int		 progress;	/* stderr is a terminal */
	int		 errcolour;	/* ... and NO_COLOR is unset */
	int		 utf8;		/* the locale speaks UTF-8 */
	int		 quiet;		/* wait -q: no bar, no summary */
};
extern struct simq_cfg	cfg;

/* Long option codes that have no short letter. */
enum {
	OPT_JSON = 256,
	OPT_TOKEN_FILE,
	OPT_CMD_BASE = 300	/* subcommands number theirs from here */
};

/* main.c */
struct option;
int	 simq_getopt(int, char **, const char *, const struct option *,
	    const struct simq_cmd *);
NORETURN void	simq_usage(const struct simq_cmd *);
NORETURN void	simq_usage_why(const struct simq_cmd *, const char *, ...)
		    PRINTFLIKE(2, 3);
struct conn	*simq_connect(int);
struct conn	*simq_reconnect(struct conn *, const char *);
int	 simq_print_json(struct buf *);
int	 simq_term_width(void);

/* util.c: "simq: MESSAGE" on stderr (log_warn), then exit.  Pure. */
NORETURN void	die(int, const char *, ...) PRINTFLIKE(2, 3);
void		error_say(const char *, ...) PRINTFLIKE(1, 2);
const char	*error_last(void);
/* util.c: "did you mean", and what --export ALL leaves out.  Pure. */
int		 edit_distance(const char *, const char *);
const char	*did_you_mean(const char *, const char *const *, size_t);
int		 export_skips(const char *);

/* main.c: the document a command prints with --json (lib/json.h). */
void	 simq_json_begin(struct json *, struct buf *);
void	 simq_json_print(struct json *, struct buf *);

/*
 * split.c: a strict shell-like word splitter for --batch files, and its
 * inverse for display.  Pure.
 */
struct split {
	const char	*p;		/* the text, not NUL-terminated */
	size_t		 len;
	size_t		 off;
	unsigned	 line;		/* the line at off */
	unsigned	 lineno;	/* first line of the last command */
	char		 err[160];	/* after -1: "line 3: ..." */
};
void	split_init(struct split *, const char *, size_t);
/* The next command: returns 1 and a NULL-terminated argv (the caller
 * frees it with split_free), 0 at the end of the text, or -1 with
 * sp->err set.  Blank and comment lines are skipped. */
int	split_next(struct split *, char ***, int *);
void	split_free(char **);
int	split_skip(struct split *);
/* argv as a shell would need it typed: plain words as they are, others
 * single-quoted.  Appends to b (no NUL). */
void	split_quote(struct buf *, char *const *, int);

/* fmt.c: numbers, durations, sizes and times for people.  Pure. */
#define FMT_MAX	64
const char	*fmt_duration(char *, uint64_t);	/* "2m13s" */
const char	*fmt_size(char *, uint64_t);		/* "1.2 GiB" */
const char	*fmt_time(char *, uint64_t, uint64_t);	/* "14:03:22" */
const char	*fmt_iso8601(char *, uint64_t);	/* "...T04:40:00.123Z" */
const char	*fmt_rate(char *, double);		/* "41.2/s" */
size_t		 fmt_width(const char *, size_t);	/* columns */
size_t		 fmt_clip(const char *, size_t, size_t);
struct tally {
	uint64_t	 total;
	uint64_t	 count[JS__COUNT];
};
void		 fmt_progress(struct buf *, const struct tally *, double, int,
		    int, int, uint64_t);

/*
 * wire.c: requests and replies of the protocol.  Pure: the bytes come from
 * conn.c.
 */
struct item_kv {
	const char	*key;
	const char	*val;		/* decoded, NUL-terminated */
	size_t		 vlen;
};
struct item {
	char		*line;		/* owned; the strings point into it */
	const char	*kind;		/* "job", "array", "missing", ... */
	int		 nkv;
	struct item_kv	*kv;
	int		 argc;		/* words after "--" */
	char		**argv;		/* decoded, NUL-terminated */
};
enum reply_kind {
	REPLY_OK,
	REPLY_ERR,
	REPLY_ITEMS,
	REPLY_DATA
};
struct reply {
	enum reply_kind	 kind;
	char		*line;		/* owned, without CR LF */
	int		 nwords;	/* words after OK */
	char		*words[8];	/* into line, NUL-terminated */
	enum proto_err	 err;		/* REPLY_ERR */
	const char	*errcode;	/* into line */
	const char	*errmsg;	/* into line: the sentence */
	size_t		 nitems;
	struct item	*items;
	char		*data;		/* REPLY_DATA, owned */
	size_t		 datalen;
};
/* Parses an item line (taking ownership of line).  Returns 0 or -1. */
int	 item_parse(struct item *, char *);
void	 item_clear(struct item *);
const char *item_get(const struct item *, const char *);
int	 item_u64(const struct item *, const char *, uint64_t *);
uint64_t item_num(const struct item *, const char *);	/* 0 if absent */
int	 item_is(const struct item *, const char *);
/* Parses a reply's first line (taking ownership).  Returns 0 or -1. */
int	 reply_parse_line(struct reply *, char *);
void	 reply_free(struct reply *);
/* Request building: words are encoded. */
void	 req_word(struct buf *, const char *);
void	 req_bytes(struct buf *, const void *, size_t);
void	 req_kv(struct buf *, const char *, const char *);
/* resources.c: --cpus, --gpus, --mem of simq submit. */
void	 submit_resource(struct buf *, const char *key, const char *arg);
void	 req_raw(struct buf *, const char *);
void	 req_end(struct buf *);

/* conn.c: one blocking connection to the broker. */
struct conn {
	int		 fd;
	char		*addr;		/* as the user gave it, for messages */
	char		*in;
	size_t		 inoff, inlen, incap;
	int		 timeout_ms;	/* per read */
	int		 soft;		/* on failure return, do not exit */
};
struct conn	*conn_open(const char *, const char *, int);
const char	*conn_error(void);
void		 conn_close(struct conn *);
int		 conn_send(struct conn *, const void *, size_t);
struct reply	*conn_read(struct conn *);
struct reply	*conn_request(struct conn *, struct buf *);
struct reply	*conn_simple(struct conn *, const char *);
NORETURN void	 conn_die_reply(struct conn *, const struct reply *,
		    const char *);

/* table.c: aligned columns for people. */
enum colour {
	C_NONE = 0,
	C_BOLD,
	C_DIM,
	C_RED,
	C_GREEN,
	C_YELLOW,
	C_BLUE,
	C_MAGENTA,
	C_CYAN
};
#define TABLE_RIGHT	0x1	/* right-aligned (numbers) */
#define TABLE_ELIDE	0x2	/* left out when every cell is empty or "-" */
#define TABLE_CLIP	0x4	/* clipped to the terminal's width */
#define TABLE_CUT	0x8	/* then cut, if the row is still too wide */
#define TABLE_DROP	0x10	/* then left out, if it still is */
struct table;
struct table	*table_new(void);
void		 table_col(struct table *, const char *, int);
void		 table_cell(struct table *, enum colour, const char *);
void		 table_cellf(struct table *, enum colour, const char *, ...)
		    PRINTFLIKE(3, 4);
void		 table_print(struct table *, FILE *);
void		 table_free(struct table *);
const char	*colour_on(enum colour);
const char	*colour_off(enum colour);

/* progress.c: the progress bar of simq wait, on stderr. */
#define PROGRESS_SAMPLES	32
struct progress {
	int		 shown;
	uint64_t	 start;
	uint64_t	 t[PROGRESS_SAMPLES];
	uint64_t	 fin[PROGRESS_SAMPLES];
	int		 nsamples, head;
};
void	progress_init(struct progress *);
void	progress_draw(struct progress *, const struct tally *, const char *);
void	progress_end(struct progress *);

/* jobview.c: a job, task or array item shown as JSON or as a row. */
enum colour	 state_colour(int);
int		 jobview_state(const struct item *);
int		 jobview_finished(const struct item *);
void		 jobview_json(struct json *, const struct item *);
/* How an item's key is written as a JSON field (jobview_fields). */
enum jfield_kind {
	JF_STR,		/* a string; null when absent or empty */
	JF_NUM,		/* a number, or null */
	JF_TIME,	/* RFC 3339 in UTC, or null */
	JF_LIST,	/* a comma-separated value as an array of strings */
	JF_WORDS,	/* each value of a repeated key, an array of strings */
	JF_FILES	/* each file word of a repeated key, an array of
			 * {name, size, mode, sha256} (fileview.c) */
};
struct jfield {
	const char		*name;		/* in the JSON */
	const char		*key;		/* in the item */
	enum jfield_kind	 kind;
};
void		 jobview_fields(struct json *, const struct item *,
		    const struct jfield *, size_t);
struct table	*jobview_table(void);
void		 jobview_row(struct table *, const struct item *, uint64_t);
void		 jobview_long(FILE *, const struct item *, uint64_t);
void		 jobview_tally(struct tally *, const struct item *);
const char	*jobview_exit(char *, const struct item *);
const char	*jobview_why(char *, size_t, const struct item *);
int		 jobview_never_ran(const struct item *);

/* cmd-eachline.c: simq submit --each-line; returns the array's id and
 * its number of tasks. */
uint64_t	 submit_each_line(struct conn *, const char *path,
		    const struct buf *opts, int argc, char **argv,
		    uint64_t *ntasks);

/* tasks.c: an array's tasks (simq status --tasks, simq wait). */
int		 tasks_walk(struct conn *, const char *, int, uint64_t,
		    void (*)(void *, const struct reply *, size_t), void *,
		    struct reply **);
int		 status_tasks(struct conn *, const char *, int);

/* waitfail.c: simq wait's failures, as they happen and at the end. */
struct waitfail;
struct waitfail	*waitfail_new(size_t);
void		 waitfail_free(struct waitfail *);
void		 waitfail_update(struct waitfail *, struct conn *,
		    const struct reply *, int);
void		 waitfail_report(struct conn *, const struct reply *);

/* follow.c: simq output -f. */
int		 output_follow(const char *, const char *, uint64_t);

/* The subcommands. */
extern const struct simq_cmd	cmd_submit_entry;
extern const struct simq_cmd	cmd_status_entry;
extern const struct simq_cmd	cmd_wait_entry;
extern const struct simq_cmd	cmd_output_entry;
extern const struct simq_cmd	cmd_result_entry;
extern const struct simq_cmd	cmd_cancel_entry;
extern const struct simq_cmd	cmd_retry_entry;
extern const struct simq_cmd	cmd_list_entry;
extern const struct simq_cmd	cmd_workers_entry;
extern const struct simq_cmd	cmd_queues_entry;
extern const struct simq_cmd	cmd_pause_entry;
extern const struct simq_cmd	cmd_resume_entry;
extern const struct simq_cmd	cmd_stats_entry;
extern const struct simq_cmd	cmd_explain_entry;
extern const struct simq_cmd	cmd_fetch_entry;

/* cmd-status.c, cmd-wait.c, cmd-queues.c, cmd-workers.c: shared. */

/* Ids per STATUS or WAIT request: each id is at most 31 bytes, so a
 * request stays well under SIMQ_LINE_MAX and SIMQ_WORDS_MAX. */
#define STATUS_CHUNK	1000

struct reply	*status_fetch(struct conn *, char **, int, int, uint64_t);
int		 status_missing(struct conn *, const struct reply *);
int		 wait_ids(struct conn **, char **, int, uint64_t,
		    struct reply **);
void		 status_print_jobs(const struct reply *, int);
void		 status_json_jobs(struct json *, const struct reply *);
int		 ids_check(char **, int);
void		 queues_print(const struct reply *);
void		 queues_json_map(struct json *, const struct reply *);
void		 queues_json(struct json *, const struct reply *);
void		 workers_print(const struct reply *, uint64_t);
void		 workers_json(struct json *, const struct reply *);
int		 workers_serve(const struct reply *, const char *);
char		*queue_unserved(const struct reply *, const char *);
void		 queue_warn_unserved(struct conn *, const char *);

/* files.c: the files that travel with a job (submit --file, --collect). */
struct sfile {
	char		*path;		/* here */
	char		*name;		/* in the job's directory */
	uint64_t	 size;
	unsigned	 mode;		/* 0644 or 0755 */
	char		 hex[65];	/* its SHA-256 */
};
struct sfiles {
	struct sfile	*f;
	size_t		 n;
	char		**collect;
	size_t		 ncollect;
};
void		 files_add(struct sfiles *, const char *);
void		 files_collect(struct sfiles *, const char *);
void		 files_ready(struct sfiles *);
void		 files_send(struct sfiles *);
struct xfer;
struct xfer	*files_xfer(void);
void		 files_words(const struct sfiles *, struct buf *);
const struct sfile *files_find(const struct sfiles *, const char *);
void		 files_free(struct sfiles *);

/* fileview.c: a job's files, collected outputs and unmatched patterns,
 * as status shows them. */
void		 fileview_long(FILE *, const struct item *);
void		 fileview_json(struct json *, const struct item *);
void		 fileview_json_files(struct json *, const struct item *,
		    const char *);
void		 fileview_notes(FILE *, const struct reply *);
int		 fileview_has(const struct item *);

#endif
