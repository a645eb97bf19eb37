/*
 * fileword.c: names of files that travel with jobs; see fileword.h.
 */
#include <stdio.h>
#include <string.h>

#include "fileword.h"
#include "proto.h"

/* Checks each '/'-separated part of s; dots: refuse "." and "..". */
static int
parts_check(const char *s, int dots, char *why, size_t len)
{
	const char	*p = s, *e;
	size_t		 n;

	for (;;) {
		e = strchr(p, '/');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n == 0) {
			snprintf(why, len, e == NULL ? "it ends with /" :
			    "it has an empty part (//)");
			return -1;
		}
		if (n > FILEWORD_PART_MAX) {
			snprintf(why, len, "a part of it is longer than %d "
			    "bytes", FILEWORD_PART_MAX);
			return -1;
		}
		if (n == 2 && memcmp(p, "..", 2) == 0) {
			snprintf(why, len, "it has a .. part, which would "
			    "leave the job's directory");
			return -1;
		}
		if (dots && n == 1 && *p == '.') {
			snprintf(why, len, "it has a . part");
			return -1;
		}
		if (e == NULL)
			return 0;
		p = e + 1;
	}
}

int
fileword_name_check(const char *name, char *why, size_t len)
{
	if (*name == '\0') {
		snprintf(why, len, "it is empty");
		return -1;
	}
	if (*name == '/') {
		snprintf(why, len, "it starts with /: a name is a path "
		    "relative to the job's directory");
		return -1;
	}
	if (strlen(name) > FILEWORD_NAME_MAX) {
		snprintf(why, len, "it is longer than %d bytes",
		    FILEWORD_NAME_MAX);
		return -1;
	}
	return parts_check(name, 1, why, len);
}

int
fileword_glob_check(const char *glob, char *why, size_t len)
{
	if (*glob == '\0') {
		snprintf(why, len, "it is empty");
		return -1;
	}
	if (*glob == '/') {
		snprintf(why, len, "it starts with /: a pattern is relative "
		    "to the job's directory");
		return -1;
	}
	if (strlen(glob) > FILEWORD_NAME_MAX) {
		snprintf(why, len, "it is longer than %d bytes",
		    FILEWORD_NAME_MAX);
		return -1;
	}
	return parts_check(glob, 0, why, len);
}

int
fileword_parse(const char *v, struct fileword *fw)
{
	unsigned char	 d[SHA256_LEN];
	const char	*c1, *c2, *c3;
	uint64_t	 u;
	char		 why[8];

	if ((c1 = strchr(v, ':')) == NULL || c1 - v != SHA256_HEX_LEN ||
	    (c2 = strchr(c1 + 1, ':')) == NULL ||
	    (c3 = strchr(c2 + 1, ':')) == NULL)
		return -1;
	memcpy(fw->hex, v, SHA256_HEX_LEN);
	fw->hex[SHA256_HEX_LEN] = '\0';
	if (sha256_parse_hex(fw->hex, d) < 0)
		return -1;
	sha256_hex(d, fw->hex);
	if (proto_parse_u64(c1 + 1, (size_t)(c2 - c1 - 1), INT64_MAX,
	    &fw->size) < 0)
		return -1;
	if (c3 - c2 - 1 < 1 || c3 - c2 - 1 > 4)
		return -1;
	for (u = 0, v = c2 + 1; v < c3; v++) {
		if (*v < '0' || *v > '7')
			return -1;
		u = u * 8 + (uint64_t)(*v - '0');
	}
	fw->mode = (unsigned)u & 07777;
	fw->name = c3 + 1;
	return fileword_name_check(fw->name, why, sizeof why);
}

unsigned
fileword_mode(unsigned st_mode)
{
	return st_mode & 0111 ? 0755 : 0644;
}
