/*
 * json.h: the one JSON writer (simq --json and simqd's HTTP views).
 *
 * It writes into a struct buf and places commas, colons and indentation
 * itself; the caller only says begin/end, key, value.  Strings are
 * escaped (control characters as \uXXXX, the short forms \n \t \r \b \f,
 * '"' and '\'); bytes that are not valid UTF-8 become U+FFFD, so the
 * output is always valid JSON in UTF-8, whatever bytes a job name holds.
 * An unbalanced sequence of calls is a bug and aborts.
 */
#ifndef SIMQ_LIB_JSON_H
#define SIMQ_LIB_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Nesting depth: simq's deepest document has 4 levels. */
#define JSON_DEPTH_MAX	32

struct json {
	struct buf	*out;
	int		 pretty;
	int		 depth;
	int		 want_value;		/* a key was just written */
	char		 kind[JSON_DEPTH_MAX];	/* '{' or '[' */
	unsigned char	 used[JSON_DEPTH_MAX];	/* 0: nothing in it yet */
};

/* pretty: newlines and two-space indents; else compact. */
void	json_init(struct json *, struct buf *, int pretty);
void	json_object(struct json *);
void	json_array(struct json *);
void	json_end(struct json *);		/* ends the innermost */
void	json_key(struct json *, const char *);
void	json_str(struct json *, const void *, size_t);
void	json_cstr(struct json *, const char *);	/* NULL: null */
void	json_int(struct json *, int64_t);
void	json_uint(struct json *, uint64_t);
void	json_millis(struct json *, uint64_t);	/* ms as seconds: 4.2 */
void	json_bool(struct json *, int);
void	json_null(struct json *);
void	json_finish(struct json *);		/* the final newline */
/* Appends s (len bytes) escaped, without quotes. */
void	json_escape(struct buf *, const void *, size_t);

#endif
