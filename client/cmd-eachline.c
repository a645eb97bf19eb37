/*
 * cmd-eachline.c: simq submit --each-line FILE -- CMD {}: an array with
 * one task per line of FILE, sent as one EACHLINE request whose body is
 * the command's words, then the lines as they are.  The broker stores the
 * lines once, with the array; each task gets its line for {} and as
 * SIMQ_ENTRY.  Every line is a task, an empty one too (its {} is empty),
 * so that task N is line N of the file; a CR before a line's newline (a
 * file from Windows) is not part of the line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

/* Reads path (- for stdin) into b as the body's lines: each ends with a
 * newline, none holds a NUL or is longer than SIMQ_ENTRY_MAX.  Returns
 * the number of lines. */
static uint64_t
eachline_read(const char *path, struct buf *b)
{
	FILE	*f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	uint64_t lineno = 0;

	if (f == NULL)
		die(EXIT_USAGE, "cannot read %s (%s)", path, strerror(errno));
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			n--;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (memchr(line, '\0', (size_t)n) != NULL)
			die(EXIT_USAGE, "%s: line %llu holds a NUL byte, which "
			    "no argument can", path,
			    (unsigned long long)lineno);
		if (n > SIMQ_ENTRY_MAX)
			die(EXIT_USAGE, "%s: line %llu is %zd bytes long; a line "
			    "may be at most %d", path,
			    (unsigned long long)lineno, n, SIMQ_ENTRY_MAX);
		if (lineno > SIMQ_INDEX_MAX)
			die(EXIT_USAGE, "%s: more than %u lines", path,
			    SIMQ_INDEX_MAX);
		buf_put(b, line, (size_t)n);
		buf_put_u8(b, '\n');
		if (b->len > SIMQ_EACHLINE_MAX)
			die(EXIT_USAGE, "%s: more than %u bytes (at line %llu); "
			    "split it into several submits", path,
			    SIMQ_EACHLINE_MAX, (unsigned long long)lineno);
	}
	if (ferror(f))
		die(EXIT_USAGE, "cannot read %s (%s)", path, strerror(errno));
	free(line);
	if (f != stdin)
		fclose(f);
	if (lineno == 0)
		die(EXIT_USAGE, "%s has no lines: nothing to submit", path);
	return lineno;
}

uint64_t
submit_each_line(struct conn *c, const char *path, const struct buf *opts,
    int argc, char **argv, uint64_t *ntasks)
{
	struct buf	 body, req;
	struct reply	*r;
	uint64_t	 id, n, count;
	size_t		 head;
	char		 num[32];
	int		 i;

	buf_init(&body);
	for (i = 0; i < argc; i++)
		req_word(&body, argv[i]);
	buf_put_u8(&body, '\n');
	head = body.len;
	n = eachline_read(path, &body);
	if (head + 2 > SIMQ_LINE_MAX)
		die(EXIT_USAGE, "the command is too long: %zu bytes encoded, "
		    "and a line holds at most %d", head, SIMQ_LINE_MAX - 2);
	buf_init(&req);
	req_raw(&req, "EACHLINE");
	if (opts->len > 0) {
		buf_put_u8(&req, ' ');
		buf_put(&req, opts->p, opts->len);
	}
	snprintf(num, sizeof num, "%zu", body.len);
	req_raw(&req, num);
	if (req.len + 2 > SIMQ_LINE_MAX)
		die(EXIT_USAGE, "the options and environment are too long: %zu "
		    "bytes encoded, and a request line holds at most %d; export "
		    "less (--export VAR,...)", req.len, SIMQ_LINE_MAX - 2);
	req_end(&req);
	buf_put(&req, body.p, body.len);
	buf_put(&req, "\r\n", 2);
	buf_free(&body);
	(void)conn_send(c, req.p, req.len);
	buf_free(&req);
	r = conn_read(c);
	if (r->kind != REPLY_OK)
		conn_die_reply(c, r, "the broker refused the array");
	if (r->nwords != 2 || proto_parse_u64(r->words[0],
	    strlen(r->words[0]), SIMQ_ID_MAX, &id) < 0 ||
	    proto_parse_u64(r->words[1], strlen(r->words[1]), UINT32_MAX,
	    &count) < 0 || count != n)
		die(EXIT_USAGE, "unexpected reply to EACHLINE: '%.60s'",
		    r->line);
	reply_free(r);
	*ntasks = n;
	return id;
}
