/*
 * split.c: split a --batch file into commands, as a shell would, strictly.
 *
 * One command per line, words split like sh(1) splits them: blanks
 * separate words; single quotes keep everything literally; double quotes
 * keep everything but \\ \" \$ \` and backslash-newline; an unquoted
 * backslash keeps the next character; backslash-newline joins lines; '#'
 * at the start of a word begins a comment.  simq runs commands without a
 * shell, so what only a shell would do (pipes, redirections, ';', '&',
 * '$' expansions, backquotes, a leading VAR=value) is refused with the line
 * number rather than passed on as a strange argument: a sweep of a
 * thousand jobs that all fail the same way is worse than an error now.
 * Globs and '~' are not shell syntax errors and are passed literally.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simq.h"

/* Characters that mean something only to a shell, outside quotes. */
#define SPLIT_META	"|&;<>()$`"

struct split_cmd {
	char		**v;
	int		  n, cap;
	struct buf	  w;		/* the word being built */
	int		  inword;
	int		  quoted;	/* the word has quotes or escapes */
};

void
split_init(struct split *sp, const char *p, size_t len)
{
	memset(sp, 0, sizeof *sp);
	sp->p = p;
	sp->len = len;
	sp->line = sp->lineno = 1;
}

void
split_free(char **v)
{
	char	**p;

	if (v == NULL)
		return;
	for (p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

static int	split_fail(struct split *, struct split_cmd *, unsigned,
		    const char *, ...) PRINTFLIKE(4, 5);

/* Sets sp->err to "line N: " and the message, frees the partial command,
 * and returns -1. */
static int
split_fail(struct split *sp, struct split_cmd *c, unsigned line,
    const char *fmt, ...)
{
	va_list	ap;
	int	n;

	sp->lineno = line;
	n = snprintf(sp->err, sizeof sp->err, "line %u: ", line);
	va_start(ap, fmt);
	vsnprintf(sp->err + n, sizeof sp->err - (size_t)n, fmt, ap);
	va_end(ap);
	if (c->v != NULL) {
		c->v[c->n] = NULL;
		split_free(c->v);
	}
	buf_free(&c->w);
	return -1;
}

/* 1 if s (a word as typed, unquoted) looks like a shell assignment. */
static int
split_assignment(const char *s)
{
	const char	*p = s;

	if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') ||
	    (*p >= 'a' && *p <= 'z')))
		return 0;
	for (p++; *p != '\0' && *p != '='; p++) {
		if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return 0;
	}
	return *p == '=';
}

/* Ends the current word, if any.  Returns 0, -1 for too many words, or
 * -2 for a first word that a shell would take as an assignment. */
static int
split_word_end(struct split_cmd *c)
{
	if (!c->inword)
		return 0;
	if (c->n == 0 && !c->quoted) {
		buf_put_u8(&c->w, 0);
		c->w.len--;
		if (split_assignment((char *)c->w.p))
			return -2;
	}
	if (c->n + 2 > c->cap) {
		c->cap = c->cap ? c->cap * 2 : 8;
		c->v = xreallocarray(c->v, (size_t)c->cap, sizeof *c->v);
	}
	c->v[c->n++] = xstrndup((char *)c->w.p, c->w.len);
	buf_reset(&c->w);
	c->inword = 0;
	c->quoted = 0;
	return c->n > SIMQ_WORDS_MAX ? -1 : 0;
}

int
split_next(struct split *sp, char ***argvp, int *argcp)
{
	struct split_cmd	 c;
	const char		*p = sp->p;
	size_t			 len = sp->len, off = sp->off, q;
	unsigned		 line, open;
	int			 r;
	char			 ch, nx, tmp[2] = { 0, 0 };

	memset(&c, 0, sizeof c);
	buf_init(&c.w);
	line = sp->line;
	while (off < len) {
		ch = p[off];
		if (ch == '\0')
			return split_fail(sp, &c, line, "a NUL byte");
		if (!c.inword && ch == '#') {
			while (off < len && p[off] != '\n')
				off++;
			continue;
		}
		if (ch == ' ' || ch == '\t' || ch == '\r') {
			if ((r = split_word_end(&c)) < 0)
				goto badword;
			off++;
			continue;
		}
		if (ch == '\n') {
			if ((r = split_word_end(&c)) < 0)
				goto badword;
			off++;
			line++;
			if (c.n > 0)
				goto done;
			continue;
		}
		if (c.n == 0 && !c.inword)
			sp->lineno = line;
		if (ch == '\\') {
			if (off + 1 == len)
				return split_fail(sp, &c, line, "a backslash "
				    "ends the file");
			nx = p[off + 1];
			if (nx == '\n') {
				off += 2;
				line++;
				continue;
			}
			if (nx == '\r' && off + 2 < len && p[off + 2] == '\n') {
				off += 3;
				line++;
				continue;
			}
			if (nx == '\0')
				return split_fail(sp, &c, line, "a NUL byte");
			buf_put_u8(&c.w, (uint8_t)nx);
			c.inword = c.quoted = 1;
			off += 2;
			continue;
		}
		if (ch == '\'') {
			open = line;
			for (q = off + 1; q < len && p[q] != '\''; q++) {
				if (p[q] == '\n')
					line++;
				if (p[q] == '\0')
					return split_fail(sp, &c, line,
					    "a NUL byte");
			}
			if (q == len)
				return split_fail(sp, &c, open, "unterminated "
				    "%s quote", "'");
			buf_put(&c.w, p + off + 1, q - off - 1);
			c.inword = c.quoted = 1;
			off = q + 1;
			continue;
		}
		if (ch == '"') {
			open = line;
			c.inword = c.quoted = 1;
			for (off++;; off++) {
				if (off == len)
					return split_fail(sp, &c, open,
					    "unterminated %s quote", "\"");
				ch = p[off];
				if (ch == '"')
					break;
				if (ch == '\\' && off + 1 < len) {
					nx = p[off + 1];
					if (nx == '\n') {
						off++;
						line++;
						continue;
					}
					if (strchr("$`\"\\", nx) != NULL &&
					    nx != '\0') {
						buf_put_u8(&c.w, (uint8_t)nx);
						off++;
						continue;
					}
				}
				if (ch == '$' || ch == '`') {
					tmp[0] = ch;
					return split_fail(sp, &c, line, "'%s' "
					    "inside double quotes needs a "
					    "shell: use single quotes, or "
					    "write sh -c '...'", tmp);
				}
				if (ch == '\0')
					return split_fail(sp, &c, line,
					    "a NUL byte");
				if (ch == '\n')
					line++;
				buf_put_u8(&c.w, (uint8_t)ch);
			}
			off++;
			continue;
		}
		if (strchr(SPLIT_META, ch) != NULL) {
			tmp[0] = ch;
			return split_fail(sp, &c, line, "'%s' is shell syntax, "
			    "and simq runs commands without a shell: quote "
			    "it, or write sh -c '...'", tmp);
		}
		buf_put_u8(&c.w, (uint8_t)ch);
		c.inword = 1;
		off++;
	}
	if ((r = split_word_end(&c)) < 0)
		goto badword;
	if (c.n == 0) {
		buf_free(&c.w);
		sp->off = off;
		sp->line = line;
		return 0;
	}
done:
	buf_free(&c.w);
	c.v[c.n] = NULL;
	*argvp = c.v;
	*argcp = c.n;
	sp->off = off;
	sp->line = line;
	return 1;
badword:
	if (r == -2)
		return split_fail(sp, &c, sp->lineno, "'%s' would set a "
		    "variable in a shell: use simq submit -e NAME=VALUE",
		    (char *)c.w.p);
	return split_fail(sp, &c, sp->lineno, "more than %d arguments",
	    SIMQ_WORDS_MAX);
}

/* 1 if the byte needs no quoting anywhere in a word. */
static int
split_plain(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || strchr("_-+=/.,:@%{}", ch) != NULL ||
	    ch >= 0x80;
}

void
split_quote(struct buf *b, char *const *argv, int argc)
{
	const char	*s, *p;
	int		 i, plain;

	for (i = 0; i < argc; i++) {
		s = argv[i];
		if (i > 0)
			buf_put_u8(b, ' ');
		plain = *s != '\0';
		for (p = s; *p != '\0' && plain; p++)
			plain = split_plain((unsigned char)*p);
		if (i == 0 && strchr(s, '=') != NULL)
			plain = 0;
		if (plain) {
			buf_put(b, s, strlen(s));
			continue;
		}
		buf_put_u8(b, '\'');
		for (p = s; *p != '\0'; p++) {
			if (*p == '\'')
				buf_put(b, "'\\''", 4);
			else
				buf_put_u8(b, (uint8_t)*p);
		}
		buf_put_u8(b, '\'');
	}
}

/* After split_next() returned -1: goes on from the line after the one
 * the error is on, so that a caller can report every bad line.  Returns
 * 0, or -1 at the end of the text. */
int
split_skip(struct split *sp)
{
	while (sp->off < sp->len && sp->line <= sp->lineno) {
		if (sp->p[sp->off] == '\n')
			sp->line++;
		sp->off++;
	}
	return sp->off < sp->len ? 0 : -1;
}
