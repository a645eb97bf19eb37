/*
 * table.c: aligned columns, like ps(1) and squeue.
 *
 * Cells are collected first and printed at the end, when every column's
 * width is known.  Widths are counted in characters, not bytes, and
 * colour escapes are added only when printing, so they never upset the
 * alignment.  Columns marked TABLE_ELIDE disappear when they say nothing
 * (every cell empty or "-"), and one TABLE_CLIP column (the command) is
 * cut to fit a terminal instead of wrapping.  Control characters in cells
 * (a job name with a newline) are shown as '?', so no cell can move the
 * cursor.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simq.h"

#define TABLE_COLS_MAX	16

struct table_cell {
	char		*text;
	enum colour	 colour;
};

struct table_col {
	const char	*name;
	int		 flags;
	size_t		 width;
	int		 hidden;
};

struct table {
	int			 ncols;
	struct table_col	 col[TABLE_COLS_MAX];
	struct table_cell	*cells;
	size_t			 ncells, cap;
};

const char *
colour_on(enum colour c)
{
	static const char	*esc[] = {
		"", "\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[33m",
		"\033[34m", "\033[35m", "\033[36m"
	};

	if (!cfg.colour || c == C_NONE || (size_t)c >= sizeof esc /
	    sizeof esc[0])
		return "";
	return esc[c];
}

const char *
colour_off(enum colour c)
{
	return cfg.colour && c != C_NONE ? "\033[0m" : "";
}

struct table *
table_new(void)
{
	return xcalloc(1, sizeof (struct table));
}

void
table_col(struct table *t, const char *name, int flags)
{
	if (t->ncols == TABLE_COLS_MAX)
		abort();
	t->col[t->ncols].name = name;
	t->col[t->ncols].flags = flags;
	t->ncols++;
}

void
table_cell(struct table *t, enum colour c, const char *s)
{
	char	*p;

	if (t->ncells == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->cells = xreallocarray(t->cells, t->cap, sizeof *t->cells);
	}
	t->cells[t->ncells].text = xstrdup(s != NULL ? s : "");
	for (p = t->cells[t->ncells].text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	t->cells[t->ncells].colour = c;
	t->ncells++;
}

void
table_cellf(struct table *t, enum colour c, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die(EXIT_USAGE, "out of memory");
	va_end(ap);
	table_cell(t, c, s);
	free(s);
}

static void
table_pad(FILE *f, size_t n)
{
	while (n-- > 0)
		fputc(' ', f);
}

static void
table_put(FILE *f, const char *s, size_t len, size_t width, int right,
    int last, enum colour c)
{
	size_t	w = fmt_width(s, len);

	if (right && w < width)
		table_pad(f, width - w);
	fputs(colour_on(c), f);
	fwrite(s, 1, len, f);
	fputs(colour_off(c), f);
	if (!right && !last && w < width)
		table_pad(f, width - w);
}

/* What a clipped column keeps before other columns are cut or dropped,
 * and what a cut column keeps. */
#define TABLE_KEEP	24
#define TABLE_CUT_MIN	8

/* Narrows column col towards the width w of the table, to no less than
 * min (nor its heading). */
static void
table_shrink(struct table_col *col, size_t *total, size_t w, size_t min)
{
	size_t	over = *total - w, name = strlen(col->name), to;

	if (*total <= w)
		return;
	if (min < name)
		min = name;
	if (col->width <= min)
		return;
	to = col->width > over + min ? col->width - over : min;
	*total -= col->width - to;
	col->width = to;
}

void
table_print(struct table *t, FILE *f)
{
	size_t	 r, nrows, total = 0, w, len;
	int	 c, last = -1, clip = -1, first;
	const char *s;

	if (t->ncols == 0)
		return;
	nrows = t->ncells / (size_t)t->ncols;
	for (c = 0; c < t->ncols; c++) {
		t->col[c].width = fmt_width(t->col[c].name,
		    strlen(t->col[c].name));
		t->col[c].hidden = (t->col[c].flags & TABLE_ELIDE) != 0;
		for (r = 0; r < nrows; r++) {
			s = t->cells[r * (size_t)t->ncols + (size_t)c].text;
			if ((w = fmt_width(s, strlen(s))) > t->col[c].width)
				t->col[c].width = w;
			if (*s != '\0' && strcmp(s, "-") != 0)
				t->col[c].hidden = 0;
		}
		if (t->col[c].hidden)
			continue;
		last = c;
		total += t->col[c].width + (total ? 2 : 0);
		if (t->col[c].flags & TABLE_CLIP)
			clip = c;
	}
	/*
	 * On a terminal a row is one line: first the clipped column (the
	 * command) is cut to TABLE_KEEP, then the TABLE_CUT columns to
	 * TABLE_CUT_MIN, then TABLE_DROP columns are left out from the
	 * right, then the clipped column is cut to its least.
	 */
	if (isatty(fileno(f)) && (w = (size_t)simq_term_width()) < total) {
		if (clip >= 0)
			table_shrink(&t->col[clip], &total, w, TABLE_KEEP);
		for (c = 0; c < t->ncols && total > w; c++)
			if (!t->col[c].hidden && (t->col[c].flags & TABLE_CUT))
				table_shrink(&t->col[c], &total, w,
				    TABLE_CUT_MIN);
		for (c = t->ncols - 1; c >= 0 && total > w; c--) {
			if (t->col[c].hidden || !(t->col[c].flags &
			    TABLE_DROP))
				continue;
			t->col[c].hidden = 1;
			total -= t->col[c].width + 2;
		}
		if (clip >= 0)
			table_shrink(&t->col[clip], &total, w, 12);
		for (last = -1, c = 0; c < t->ncols; c++)
			if (!t->col[c].hidden)
				last = c;
	}
	for (r = 0; r <= nrows; r++) {
		first = 1;
		for (c = 0; c < t->ncols; c++) {
			struct table_cell *cell = NULL;
			if (t->col[c].hidden)
				continue;
			if (!first)
				fputs("  ", f);
			first = 0;
			if (r == 0)
				s = t->col[c].name;
			else {
				cell = &t->cells[(r - 1) * (size_t)t->ncols +
				    (size_t)c];
				s = cell->text;
			}
			len = strlen(s);
			if (r > 0 && fmt_width(s, len) > t->col[c].width) {
				len = fmt_clip(s, len, t->col[c].width - 1);
				table_put(f, s, len, 0, 0, 1, C_NONE);
				fputs(cfg.utf8 ? "\xe2\x80\xa6" : ">", f);
				if (c != last)
					table_pad(f, t->col[c].width -
					    fmt_width(s, len) - 1);
				continue;
			}
			table_put(f, s, len, t->col[c].width,
			    t->col[c].flags & TABLE_RIGHT, c == last,
			    r == 0 ? C_BOLD : cell->colour);
		}
		fputc('\n', f);
	}
}

void
table_free(struct table *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->ncells; i++)
		free(t->cells[i].text);
	free(t->cells);
	free(t);
}
