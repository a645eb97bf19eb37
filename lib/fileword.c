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

int
fileword_name_check(const char *name, char *why, size_t len)
{
	const char	*w = proto_relpath_why(name, strlen(name));

	if (w == NULL)
		return 0;
	if (*name == '/')
		snprintf(why, len, "it starts with /: a name is a path "
		    "relative to the job's directory");
	else if (strstr(w, "..") != NULL)
		snprintf(why, len, "it has a .. part, which would leave the "
		    "job's directory");
	else
		snprintf(why, len, "it is %s", w);
	return -1;
}

int
fileword_glob_check(const char *glob, char *why, size_t len)
{
	const char	*w = proto_glob_why(glob, strlen(glob));

	if (w == NULL)
		return 0;
	if (*glob == '/')
		snprintf(why, len, "it starts with /: a pattern is relative "
		    "to the job's directory");
	else if (strstr(w, "..") != NULL)
		snprintf(why, len, "it has a .. part, which would leave the "
		    "job's directory");
	else
		snprintf(why, len, "it is %s", w);
	return -1;
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
