/*
 * fileview.c: a job's files as status shows them.
 *
 * STATUS items carry them as repeated keys: file=HASH:SIZE:MODE:NAME
 * (what the job was sent with), collect=GLOB (what it asked back),
 * got=HASH:SIZE:MODE:NAME (what came back), nomatch=GLOB (a pattern
 * that matched nothing: not an error, but usually a typo or a job that
 * wrote elsewhere) and collerr=REASON (what could not be collected).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileword.h"
#include "simq.h"

/* Names shown on one line of the table's notes before "and N more". */
#define FILEVIEW_NAMES	8

int
fileview_has(const struct item *it)
{
	static const char *const keys[] = { "file", "collect", "got",
	    "nomatch", "collerr", NULL };
	int	i;

	for (i = 0; keys[i] != NULL; i++)
		if (item_get(it, keys[i]) != NULL)
			return 1;
	return 0;
}

/* "a.dat (20.0 MiB), b.py (1.2 KiB)" of the key's words, into b. */
static int
fileview_list(struct buf *b, const struct item *it, const char *key, int max)
{
	struct fileword	fw;
	char		sz[FMT_MAX], *s;
	int		k, n = 0;

	for (k = 0; k < it->nkv; k++) {
		if (strcmp(it->kv[k].key, key) != 0)
			continue;
		if (max > 0 && n == max) {
			int rest = 0, m;
			for (m = k; m < it->nkv; m++)
				rest += strcmp(it->kv[m].key, key) == 0;
			s = xprintf(", and %d more", rest);
			buf_put(b, s, strlen(s));
			free(s);
			break;
		}
		if (n++ > 0)
			buf_put(b, ", ", 2);
		if (fileword_parse(it->kv[k].val, &fw) < 0) {
			buf_put(b, "?", 1);
			continue;
		}
		s = xprintf("%s (%s)", fw.name, fmt_size(sz, fw.size));
		buf_put(b, s, strlen(s));
		free(s);
	}
	buf_put_u8(b, 0);
	return n;
}

static void
fileview_line(FILE *f, const char *label, const char *text)
{
	const char	*p;

	fprintf(f, "  %s%-10s%s ", colour_on(C_DIM), label, colour_off(C_DIM));
	for (p = text; *p != '\0'; p++)
		fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, f);
	fputc('\n', f);
}

/* The repeated key's values, one line each under label. */
static void
fileview_each(FILE *f, const struct item *it, const char *key,
    const char *label, const char *before)
{
	char	*s;
	int	 k, n = 0;

	for (k = 0; k < it->nkv; k++) {
		if (strcmp(it->kv[k].key, key) != 0)
			continue;
		s = xprintf("%s%s", before, it->kv[k].val);
		fileview_line(f, n++ ? "" : label, s);
		free(s);
	}
}

void
fileview_long(FILE *f, const struct item *it)
{
	struct buf	b;

	buf_init(&b);
	if (fileview_list(&b, it, "file", 0) > 0)
		fileview_line(f, "files", (char *)b.p);
	buf_reset(&b);
	fileview_each(f, it, "collect", "collect", "");
	if (fileview_list(&b, it, "got", 0) > 0)
		fileview_line(f, "collected", (char *)b.p);
	fileview_each(f, it, "nomatch", "no match", "");
	fileview_each(f, it, "collerr", "not kept", "");
	buf_free(&b);
}

/* One JSON array of the key's file words: [{name, size, mode,
 * sha256}]. */
void
fileview_json_files(struct json *j, const struct item *it, const char *key)
{
	struct fileword	fw;
	char		mode[8];
	int		k;

	json_array(j);
	for (k = 0; k < it->nkv; k++) {
		if (strcmp(it->kv[k].key, key) != 0 ||
		    fileword_parse(it->kv[k].val, &fw) < 0)
			continue;
		json_object(j);
		json_key(j, "name");
		json_cstr(j, fw.name);
		json_key(j, "size");
		json_uint(j, fw.size);
		json_key(j, "mode");
		snprintf(mode, sizeof mode, "%o", fw.mode);
		json_cstr(j, mode);
		json_key(j, "sha256");
		json_cstr(j, fw.hex);
		json_end(j);
	}
	json_end(j);
}

void
fileview_json(struct json *j, const struct item *it)
{
	static const struct jfield fields[] = {
		{ "files", "file", JF_FILES },
		{ "collect", "collect", JF_WORDS },
		{ "collected", "got", JF_FILES },
		{ "unmatched", "nomatch", JF_WORDS },
		{ "collect_errors", "collerr", JF_WORDS },
	};

	jobview_fields(j, it, fields, sizeof fields / sizeof fields[0]);
}

/* Under status's table: each job's files, what came back, and what did
 * not. */
void
fileview_notes(FILE *f, const struct reply *r)
{
	const struct item	*it;
	struct buf		 b;
	size_t			 i;
	int			 k;

	buf_init(&b);
	for (i = 0; i < r->nitems; i++) {
		it = &r->items[i];
		if (item_is(it, "missing") || !fileview_has(it))
			continue;
		buf_reset(&b);
		if (fileview_list(&b, it, "file", FILEVIEW_NAMES) > 0)
			fprintf(f, "%s files: %s\n", item_get(it, "id"),
			    (char *)b.p);
		buf_reset(&b);
		if (fileview_list(&b, it, "got", FILEVIEW_NAMES) > 0)
			fprintf(f, "%s collected: %s (simq fetch %s)\n",
			    item_get(it, "id"), (char *)b.p,
			    item_get(it, "id"));
		for (k = 0; k < it->nkv; k++) {
			if (strcmp(it->kv[k].key, "nomatch") == 0)
				fprintf(f, "%s%s: nothing matched --collect "
				    "'%s'%s\n", colour_on(C_YELLOW),
				    item_get(it, "id"), it->kv[k].val,
				    colour_off(C_YELLOW));
			else if (strcmp(it->kv[k].key, "collerr") == 0)
				fprintf(f, "%s%s: not collected: %s%s\n",
				    colour_on(C_YELLOW), item_get(it, "id"),
				    it->kv[k].val, colour_off(C_YELLOW));
		}
	}
	buf_free(&b);
}
