/*
 * util.c: how simq stops with a message.
 *
 * Messages follow one rule: one line on stderr, "simq: what was wrong;
 * what to do" (lib/log.c writes it, flushing stdout first so that what
 * was already printed comes before it).  Allocation, which exits on
 * failure, and the clocks are lib/'s.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

/* The last error said, for the JSON document of a failed --json
 * command. */
static char	last_error[1024];

const char *
error_last(void)
{
	return last_error[0] != '\0' ? last_error : NULL;
}

static void __attribute__((format(printf, 1, 0)))
error_vsay(const char *fmt, va_list ap)
{
	va_list	cp;

	va_copy(cp, ap);
	vsnprintf(last_error, sizeof last_error, fmt, cp);
	va_end(cp);
	log_vwarn(fmt, ap);
}

/* Prints "simq: MESSAGE", as an error a failure's JSON document gives. */
void
error_say(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	error_vsay(fmt, ap);
	va_end(ap);
}

/* Prints "simq: MESSAGE" and exits with status. */
void
die(int status, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	error_vsay(fmt, ap);
	va_end(ap);
	exit(status);
}

/*
 * The edit distance of a and b, counting a swap of two neighbours as one
 * edit ("sumbit" is 1 from "submit"), capped at 9.  For "did you mean".
 */
int
edit_distance(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b), i, k;
	int	d[17][17], v;

	if (la > 16 || lb > 16)
		return 9;
	for (i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (k = 0; k <= lb; k++)
		d[0][k] = (int)k;
	for (i = 1; i <= la; i++) {
		for (k = 1; k <= lb; k++) {
			v = d[i - 1][k - 1] + (a[i - 1] != b[k - 1]);
			if (d[i - 1][k] + 1 < v)
				v = d[i - 1][k] + 1;
			if (d[i][k - 1] + 1 < v)
				v = d[i][k - 1] + 1;
			if (i > 1 && k > 1 && a[i - 1] == b[k - 2] &&
			    a[i - 2] == b[k - 1] && d[i - 2][k - 2] + 1 < v)
				v = d[i - 2][k - 2] + 1;
			d[i][k] = v;
		}
	}
	return d[la][lb] > 9 ? 9 : d[la][lb];
}

/* The one candidate nearest to word, if it is near enough to be a typo
 * of it (2 edits, 1 for short words) and no other is as near; or
 * NULL. */
const char *
did_you_mean(const char *word, const char *const *cands, size_t n)
{
	const char	*best = NULL;
	int		 bd = 99, d, max = strlen(word) <= 4 ? 1 : 2;
	size_t		 i, ties = 0;

	for (i = 0; i < n; i++) {
		if (cands[i] == NULL || strcmp(cands[i], word) == 0)
			continue;
		d = edit_distance(word, cands[i]);
		if (d < bd) {
			bd = d;
			best = cands[i];
			ties = 0;
		} else if (d == bd && strcmp(cands[i], best) != 0)
			ties++;
	}
	return bd <= max && ties == 0 ? best : NULL;
}

/*
 * Whether --export ALL leaves the variable kv ("NAME=VALUE") out of a job:
 * simq's own (SIMQ_TOKEN is a secret that would be stored in the job's
 * record; the worker sets SIMQ_SERVER, SIMQ_JOB_ID and the rest itself),
 * and what describes this host, terminal or login session rather than
 * the job, which on a worker would be wrong or a leak.
 */
int
export_skips(const char *kv)
{
	static const char *const names[] = {
		"HOSTNAME", "HOST", "PWD", "OLDPWD", "SHLVL", "_",
		"DISPLAY", "XAUTHORITY", "WINDOWID", "TERM", "TERMCAP",
		"COLUMNS", "LINES", "TMUX", "TMUX_PANE", "STY", "WINDOW",
		"XDG_RUNTIME_DIR", "XDG_SESSION_ID", "XDG_SESSION_TYPE",
		"XDG_SESSION_CLASS", "XDG_VTNR", "XDG_SEAT",
		"DBUS_SESSION_BUS_ADDRESS", "KRB5CCNAME", "MAIL",
		NULL
	};
	static const char *const prefixes[] = { "SIMQ_", "SSH_", NULL };
	size_t	len, i;
	const char *eq = strchr(kv, '=');

	len = eq != NULL ? (size_t)(eq - kv) : strlen(kv);
	for (i = 0; names[i] != NULL; i++)
		if (strlen(names[i]) == len && strncmp(kv, names[i], len) == 0)
			return 1;
	for (i = 0; prefixes[i] != NULL; i++)
		if (strncmp(kv, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}
