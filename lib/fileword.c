/*
 * fileword.c: names of files that travel with jobs; see fileword.h.
 *
 * The rules are proto/files.c's, shared with the broker: these wrap them
 * with the sentences simq and simq-worker say.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileword.h"
#include "proto.h"
#include "xmalloc.h"

/* The sentence for what proto's rule said of s (w, NULL when it holds);
 * what is the word's subject, for the leading '/' ("a name is a path"). */
static int
check(const char *s, const char *w, const char *what, char *why, size_t len)
{
	if (w == NULL)
		return 0;
	if (*s == '/')
		snprintf(why, len, "it starts with /: %s relative to the job's "
		    "directory", what);
	else if (strstr(w, "..") != NULL)
		snprintf(why, len, "it has a .. part, which would leave the "
		    "job's directory");
	else	/* "empty", "longer than ...", "has an empty or . component" */
		snprintf(why, len, "it %s%s", strncmp(w, "has ", 4) == 0 ||
		    strncmp(w, "contains ", 9) == 0 ? "" : "is ", w);
	return -1;
}

int
fileword_name_check(const char *name, char *why, size_t len)
{
	return check(name, proto_relpath_why(name, strlen(name)),
	    "a name is a path", why, len);
}

int
fileword_glob_check(const char *glob, char *why, size_t len)
{
	return check(glob, proto_glob_why(glob, strlen(glob)),
	    "a pattern is", why, len);
}

int
fileword_parse(const char *v, struct fileword *fw)
{
	struct proto_file	 f;
	size_t			 len = strlen(v);
	char			*s = xstrndup(v, len);
	const char		*why = proto_parse_file(s, len, &f);

	if (why == NULL) {
		proto_format_hash(fw->hex, f.hash);
		fw->size = f.size;
		fw->mode = f.mode;
		fw->name = v + (f.name.p - s);
	}
	free(s);
	return why == NULL ? 0 : -1;
}

unsigned
fileword_mode(unsigned st_mode)
{
	return st_mode & 0111 ? 0755 : 0644;
}
