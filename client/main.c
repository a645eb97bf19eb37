/*
 * main.c: simq, the command line of the simq job queue.
 *
 * A table of subcommands, as in tmux: each is one entry (name, usage,
 * help, function) in its own cmd-*.c file.  main() takes the options every
 * subcommand shares (-s, --token-file, --json), finds the subcommand by
 * name or unique prefix, and runs it; the subcommand parses the rest with
 * simq_getopt(), which accepts the shared options there too, so
 * `simq status --json` and `simq --json status` mean the same.
 */
#include <sys/ioctl.h>
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simq.h"

struct simq_cfg	cfg;

static const struct simq_cmd *const simq_cmds[] = {
	&cmd_submit_entry,
	&cmd_status_entry,
	&cmd_wait_entry,
	&cmd_output_entry,
	&cmd_result_entry,
	&cmd_fetch_entry,
	&cmd_cancel_entry,
	&cmd_retry_entry,
	&cmd_list_entry,
	&cmd_workers_entry,
	&cmd_queues_entry,
	&cmd_pause_entry,
	&cmd_resume_entry,
	&cmd_stats_entry,
	&cmd_explain_entry,
	NULL
};

static const char simq_common_help[] =
"  -s, --server HOST:PORT  the broker (default $SIMQ_SERVER, or "
    SIMQ_DEFAULT_SERVER ")\n"
"      --token-file FILE   send the token in FILE (default $SIMQ_TOKEN)\n"
"      --json              print one JSON document on stdout\n"
"  -h, --help              print this help\n";

static const struct option simq_common_opts[] = {
	{ "server", required_argument, NULL, 's' },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
};
#define SIMQ_NCOMMON	(sizeof simq_common_opts / sizeof simq_common_opts[0])

static NORETURN void
simq_main_usage(FILE *f, int status)
{
	const struct simq_cmd *const	*c;

	fprintf(f, "usage: simq [-s HOST:PORT] [--token-file FILE] [--json] "
	    "COMMAND [ARG...]\n\n");
	fprintf(f, "Submit jobs to a simq broker and follow them.\n\n");
	fprintf(f, "commands:\n");
	for (c = simq_cmds; *c != NULL; c++)
		fprintf(f, "  %-9s %s\n", (*c)->name, (*c)->summary);
	fprintf(f, "\noptions (before or after the command):\n%s",
	    simq_common_help);
	fprintf(f, "\nRun 'simq COMMAND --help' for a command's options; "
	    "see simq(1).\n");
	exit(status);
}

/* The synopsis of cmd on one line (the help text's spans lines). */
static char *
simq_synopsis(const struct simq_cmd *cmd)
{
	const char	*a = cmd->args, *nl;

	/* Only the first form, and only its first line: "...". */
	if ((nl = strchr(a, '\n')) != NULL)
		return xprintf("simq %s %.*s ...", cmd->name, (int)(nl - a), a);
	return xprintf("simq %s%s%s", cmd->name, *a ? " " : "", a);
}

/*
 * A usage error in a subcommand: one line on stderr, what was wrong (if
 * why is not NULL), the synopsis and where the options are; exit 2.
 */
void
simq_usage_why(const struct simq_cmd *cmd, const char *fmt, ...)
{
	char	*syn = simq_synopsis(cmd), *why = NULL;
	va_list	 ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		if (vasprintf(&why, fmt, ap) < 0)
			why = NULL;
		va_end(ap);
	}

	if (why != NULL)
		error_say("%s; usage: %s (see simq %s --help)", why, syn,
		    cmd->name);
	else
		error_say("usage: %s (see simq %s --help)", syn, cmd->name);
	free(syn);
	free(why);
	exit(EXIT_USAGE);
}

void
simq_usage(const struct simq_cmd *cmd)
{
	simq_usage_why(cmd, NULL);
}

static NORETURN void
simq_help(const struct simq_cmd *cmd)
{
	size_t	len = cmd->help != NULL ? strlen(cmd->help) : 0;

	printf("usage: simq %s%s%s\n\n%c%s.\n\n", cmd->name,
	    *cmd->args ? " " : "", cmd->args,
	    toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
	if (len > 0) {
		printf("%s", cmd->help);
		if (len < 2 || strcmp(cmd->help + len - 2, "\n\n") != 0)
			putchar('\n');
	}
	printf("%s", simq_common_help);
	exit(EXIT_OK);
}

/* Handles a shared option; 1 if ch was one. */
static int
simq_common(int ch, const struct simq_cmd *cmd)
{
	switch (ch) {
	case 's':
		cfg.server = optarg;
		return 1;
	case OPT_TOKEN_FILE:
		cfg.token_file = optarg;
		return 1;
	case OPT_JSON:
		cfg.json = 1;
		return 1;
	case 'h':
		if (cmd == NULL)
			simq_main_usage(stdout, EXIT_OK);
		simq_help(cmd);
	}
	return 0;
}

/* The long options getopt knows now, for "did you mean". */
static const struct option	*simq_all_opts;

/* Reports an option getopt refused (opterr is off: we say it better). */
static NORETURN void
simq_bad_option(int ch, char **argv, const struct simq_cmd *cmd)
{
	const char	*name = cmd != NULL ? cmd->name : NULL;
	const char	*opt = argv[optind - 1], *eq, *near;
	char		 shortopt[3] = { '-', (char)optopt, '\0' };
	char		*why, *typed, *hint = NULL;
	const char	*longs[64];
	size_t		 n = 0;
	int		 len;

	/* A long option is named as typed (without "=value"); a short one
	 * by its letter, which may sit in a cluster like -lx. */
	if (opt != NULL && strncmp(opt, "--", 2) == 0) {
		eq = strchr(opt, '=');
		len = eq != NULL ? (int)(eq - opt) : (int)strlen(opt);
		if (ch == ':')
			why = xprintf("option '%.*s' needs a value", len, opt);
		else if (eq != NULL && optopt != 0)
			why = xprintf("option '%.*s' takes no value", len, opt);
		else {
			typed = xprintf("%.*s", len - 2, opt + 2);
			while (n < 64 && simq_all_opts != NULL &&
			    simq_all_opts[n].name != NULL) {
				longs[n] = simq_all_opts[n].name;
				n++;
			}
			if ((near = did_you_mean(typed, longs, n)) != NULL)
				hint = xprintf(" (did you mean --%s?)", near);
			why = xprintf("unknown option '%.*s'%s", len, opt,
			    hint != NULL ? hint : "");
			free(typed);
			free(hint);
		}
	} else if (ch == ':')
		why = xprintf("option '%s' needs a value", shortopt);
	else
		why = xprintf("unknown option '%s'", shortopt);
	if (name != NULL)
		simq_usage_why(cmd, "%s", why);
	die(EXIT_USAGE, "%s; run simq --help for the options", why);
}

/*
 * getopt_long for a subcommand, with the shared options added: returns the
 * next option that is the subcommand's own, or -1.  Shared options, help
 * and errors are handled here.  optstring may start with '+' to stop at
 * the first argument (submit's command).
 */
int
simq_getopt(int argc, char **argv, const char *optstring,
    const struct option *longopts, const struct simq_cmd *cmd)
{
	static const struct simq_cmd	*built;
	static struct option		*all;
	static char			*shorts;
	size_t				 n = 0, i;
	int				 ch, plus;

	if (built != cmd) {
		while (longopts != NULL && longopts[n].name != NULL)
			n++;
		free(all);
		all = xcalloc(n + SIMQ_NCOMMON + 1, sizeof *all);
		for (i = 0; i < n; i++)
			all[i] = longopts[i];
		for (i = 0; i < SIMQ_NCOMMON; i++)
			all[n + i] = simq_common_opts[i];
		free(shorts);
		plus = optstring[0] == '+';
		shorts = xprintf("%s:%ss:h", plus ? "+" : "",
		    optstring + plus);
		built = cmd;
	}
	simq_all_opts = all;
	opterr = 0;
	for (;;) {
		ch = getopt_long(argc, argv, shorts, all, NULL);
		if (ch == '?' || ch == ':')
			simq_bad_option(ch, argv, cmd);
		if (ch == -1 || !simq_common(ch, cmd))
			return ch;
	}
}

int
simq_term_width(void)
{
	struct winsize	 ws;
	const char	*s;
	int		 fd;

	for (fd = 1; fd <= 2; fd++)
		if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
			return ws.ws_col;
	if ((s = getenv("COLUMNS")) != NULL && atoi(s) > 0)
		return atoi(s);
	return 80;
}

/* Connects as the shared options and the environment say; see
 * conn_open() for soft. */
struct conn *
simq_connect(int soft)
{
	struct conn	*c;
	char		*token, why[512];

	if (token_load(cfg.token_file, &token, why, sizeof why) < 0)
		die(EXIT_USAGE, "%s", why);
	c = conn_open(server_pick(cfg.server), token, soft);
	free(token);
	return c;
}

/* How long simq wait and simq output -f try to get a lost broker back:
 * a restart takes seconds, an upgrade or a reboot of its host minutes,
 * and a sweep left to run overnight should not lose its waiter to
 * either. */
#define RECONNECT_MS		(10 * 60 * 1000)
#define RECONNECT_PAUSE_MAX	10000

/*
 * The soft connection c was lost (a request returned NULL): says so,
 * closes it and connects again, after a second and then at most every
 * ten, for RECONNECT_MS.  doing ("still waiting") ends the line said on
 * success.  Returns the new connection, soft too; exits 2 if the broker
 * does not come back.
 */
struct conn *
simq_reconnect(struct conn *c, const char *doing)
{
	struct conn	*nc;
	uint64_t	 since = mono_ms(), pause = 1000;
	char		 d[FMT_MAX];

	log_warn("%s; trying again for up to %s", conn_error(),
	    fmt_duration(d, RECONNECT_MS));
	conn_close(c);
	for (;;) {
		sleep_ms(pause);
		if ((nc = simq_connect(1)) != NULL) {
			nc->soft = 1;
			log_warn("reconnected to the broker at %s; %s",
			    nc->addr, doing);
			return nc;
		}
		if (mono_ms() - since >= RECONNECT_MS)
			die(EXIT_USAGE, "%s; gave up after trying for %s",
			    conn_error(), fmt_duration(d, RECONNECT_MS));
		pause = pause * 2 > RECONNECT_PAUSE_MAX ?
		    RECONNECT_PAUSE_MAX : pause * 2;
	}
}

/* Whether the command's JSON document is out. */
static int	json_printed;

int
simq_print_json(struct buf *b)
{
	fwrite(b->p, 1, b->len, stdout);
	json_printed = 1;
	return 0;
}

/*
 * With --json, a command that fails before its document is out prints
 * one anyway, {"error": {"message": ..., "exit_status": N}}, so that a
 * script always gets one JSON document on stdout (the message is on
 * stderr too).
 */
static void
simq_json_on_exit(int status, void *arg)
{
	struct json	j;
	struct buf	b;

	if (!cfg.json || json_printed || status == EXIT_OK)
		return;
	simq_json_begin(&j, &b);
	json_key(&j, "error");
	json_object(&j);
	json_key(&j, "message");
	json_cstr(&j, error_last() != NULL ? error_last() : "failed");
	json_key(&j, "exit_status");
	json_uint(&j, (uint64_t)status);
	json_end(&j);
	simq_json_print(&j, &b);
	fflush(stdout);
}

/* Starts the one JSON document a command prints: an object, built in b. */
void
simq_json_begin(struct json *j, struct buf *b)
{
	buf_init(b);
	json_init(j, b, 1);
	json_object(j);
}

/* Closes the object simq_json_begin() opened, prints the document and
 * frees b. */
void
simq_json_print(struct json *j, struct buf *b)
{
	json_end(j);
	json_finish(j);
	simq_print_json(b);
	buf_free(b);
}

static void
simq_init_cfg(void)
{
	const char	*nc = getenv("NO_COLOR"), *term = getenv("TERM");
	const char	*cs;
	int		 plain;

	plain = (nc != NULL && *nc != '\0') ||
	    (term != NULL && strcmp(term, "dumb") == 0);
	cfg.colour = isatty(STDOUT_FILENO) && !plain;
	cfg.progress = isatty(STDERR_FILENO);
	cfg.errcolour = cfg.progress && !plain;
	setlocale(LC_CTYPE, "");
	cs = nl_langinfo(CODESET);
	cfg.utf8 = cs != NULL && (strcmp(cs, "UTF-8") == 0 ||
	    strcmp(cs, "utf8") == 0);
}

static const struct simq_cmd *
simq_find(const char *name)
{
	const struct simq_cmd *const	*c;
	const struct simq_cmd		*found = NULL;
	size_t				 len = strlen(name);
	int				 n = 0;

	for (c = simq_cmds; *c != NULL; c++) {
		if (strcmp((*c)->name, name) == 0)
			return *c;
		if (strncmp((*c)->name, name, len) == 0) {
			found = *c;
			n++;
		}
	}
	if (n == 1)
		return found;
	if (n > 1) {
		struct buf	b;

		buf_init(&b);
		for (c = simq_cmds; *c != NULL; c++) {
			if (strncmp((*c)->name, name, len) != 0)
				continue;
			n--;
			if (b.len > 0)
				buf_put(&b, n > 0 ? ", " : " or ", n > 0 ?
				    2 : 4);
			buf_put(&b, (*c)->name, strlen((*c)->name));
		}
		buf_put_u8(&b, 0);
		die(EXIT_USAGE, "'%s' is ambiguous: it could be %s", name,
		    (char *)b.p);
	}
	{
		const char	*names[32], *near;
		size_t		 k = 0;

		for (c = simq_cmds; *c != NULL && k < 32; c++)
			names[k++] = (*c)->name;
		if ((near = did_you_mean(name, names, k)) != NULL)
			die(EXIT_USAGE, "unknown command '%s': did you mean "
			    "%s?", name, near);
	}
	die(EXIT_USAGE, "unknown command '%s'; run simq --help for the list",
	    name);
}

int
main(int argc, char **argv)
{
	const struct simq_cmd	*cmd;
	struct option		 opts[SIMQ_NCOMMON + 1];
	int			 ch, status;

	log_init("simq", LOG_PLAIN, EXIT_USAGE);
	simq_init_cfg();
	on_exit(simq_json_on_exit, NULL);
	memcpy(opts, simq_common_opts, sizeof simq_common_opts);
	memset(&opts[SIMQ_NCOMMON], 0, sizeof opts[0]);
	opterr = 0;
	simq_all_opts = opts;
	while ((ch = getopt_long(argc, argv, "+:s:h", opts, NULL)) != -1) {
		if (ch == '?' || ch == ':')
			simq_bad_option(ch, argv, NULL);
		simq_common(ch, NULL);
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		simq_main_usage(stderr, EXIT_USAGE);
	if (strcmp(argv[0], "help") == 0) {
		if (argc < 2)
			simq_main_usage(stdout, EXIT_OK);
		simq_help(simq_find(argv[1]));
	}
	cmd = simq_find(argv[0]);
	optind = 0;	/* glibc: start afresh, argv[0] is the command */
	status = cmd->exec(argc, argv);
	if (fflush(stdout) != 0 || ferror(stdout))
		die(EXIT_USAGE, "cannot write to standard output");
	exit(status);
}
