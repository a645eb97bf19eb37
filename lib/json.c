/*
 * json.c: a small JSON writer, for simq --json and simqd's HTTP views.
 *
 * A document is valid whatever the broker holds: job names, reasons and
 * commands are arbitrary bytes, so every string goes through
 * json_escape(), which turns control characters into escapes and bytes
 * that are not valid UTF-8 into U+FFFD.  The writer
 * tracks nesting itself (a stack of '{' and '[' with a "used" flag each),
 * so callers never place commas; an unbalanced call sequence is a bug and
 * aborts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void
json_init(struct json *j, struct buf *out, int pretty)
{
	memset(j, 0, sizeof *j);
	j->out = out;
	j->pretty = pretty;
}

static void
json_put(struct json *j, const char *s)
{
	buf_put(j->out, s, strlen(s));
}

static void
json_newline(struct json *j)
{
	int	i;

	if (!j->pretty)
		return;
	buf_put_u8(j->out, '\n');
	for (i = 0; i < j->depth; i++)
		buf_put(j->out, "  ", 2);
}

/* Whatever must come before a value: nothing after a key or at the top,
 * else a comma and a new line inside an array. */
static void
json_before_value(struct json *j)
{
	if (j->want_value) {
		j->want_value = 0;
		return;
	}
	if (j->depth == 0)
		return;
	if (j->kind[j->depth - 1] != '[')
		abort();		/* a value in an object needs a key */
	if (j->used[j->depth - 1])
		buf_put_u8(j->out, ',');
	j->used[j->depth - 1] = 1;
	json_newline(j);
}

static void
json_open(struct json *j, char kind)
{
	json_before_value(j);
	if (j->depth == JSON_DEPTH_MAX)
		abort();
	buf_put_u8(j->out, (uint8_t)kind);
	j->kind[j->depth] = kind;
	j->used[j->depth] = 0;
	j->depth++;
}

void
json_object(struct json *j)
{
	json_open(j, '{');
}

void
json_array(struct json *j)
{
	json_open(j, '[');
}

void
json_end(struct json *j)
{
	int	used;
	char	kind;

	if (j->depth == 0 || j->want_value)
		abort();
	j->depth--;
	used = j->used[j->depth];
	kind = j->kind[j->depth];
	if (used)
		json_newline(j);
	buf_put_u8(j->out, kind == '{' ? '}' : ']');
}

void
json_key(struct json *j, const char *key)
{
	if (j->depth == 0 || j->kind[j->depth - 1] != '{' || j->want_value)
		abort();
	if (j->used[j->depth - 1])
		buf_put_u8(j->out, ',');
	j->used[j->depth - 1] = 1;
	json_newline(j);
	buf_put_u8(j->out, '"');
	json_escape(j->out, key, strlen(key));
	json_put(j, j->pretty ? "\": " : "\":");
	j->want_value = 1;
}

/*
 * The length of the valid UTF-8 sequence at p (at most n bytes), or 0.
 * Overlong forms, surrogates and code points past U+10FFFF are invalid,
 * as RFC 3629 says.  *cp gets the code point.
 */
static size_t
json_utf8(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t		len, i;
	uint32_t	c, min;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		c = p[0] & 0x1f;
		min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		c = p[0] & 0x0f;
		min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		c = p[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

void
json_escape(struct buf *b, const void *src, size_t len)
{
	const unsigned char	*p = src, *end = p + len;
	char			 esc[8];
	uint32_t		 cp;
	size_t			 n;

	while (p < end) {
		if (*p >= 0x80) {
			if ((n = json_utf8(p, (size_t)(end - p), &cp)) == 0) {
				buf_put(b, "\\ufffd", 6);
				p++;
			} else if (cp == 0x2028 || cp == 0x2029) {
				/* Valid JSON, but not valid JavaScript. */
				snprintf(esc, sizeof esc, "\\u%04x",
				    (unsigned)cp);
				buf_put(b, esc, 6);
				p += n;
			} else {
				buf_put(b, p, n);
				p += n;
			}
			continue;
		}
		switch (*p) {
		case '"':
			buf_put(b, "\\\"", 2);
			break;
		case '\\':
			buf_put(b, "\\\\", 2);
			break;
		case '\n':
			buf_put(b, "\\n", 2);
			break;
		case '\r':
			buf_put(b, "\\r", 2);
			break;
		case '\t':
			buf_put(b, "\\t", 2);
			break;
		case '\b':
			buf_put(b, "\\b", 2);
			break;
		case '\f':
			buf_put(b, "\\f", 2);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				snprintf(esc, sizeof esc, "\\u%04x", *p);
				buf_put(b, esc, 6);
			} else
				buf_put_u8(b, *p);
		}
		p++;
	}
}

void
json_str(struct json *j, const void *s, size_t len)
{
	json_before_value(j);
	buf_put_u8(j->out, '"');
	json_escape(j->out, s, len);
	buf_put_u8(j->out, '"');
}

void
json_cstr(struct json *j, const char *s)
{
	if (s == NULL)
		json_null(j);
	else
		json_str(j, s, strlen(s));
}

void
json_int(struct json *j, int64_t v)
{
	char	tmp[32];

	json_before_value(j);
	snprintf(tmp, sizeof tmp, "%" PRId64, v);
	json_put(j, tmp);
}

void
json_uint(struct json *j, uint64_t v)
{
	char	tmp[32];

	json_before_value(j);
	snprintf(tmp, sizeof tmp, "%" PRIu64, v);
	json_put(j, tmp);
}

/* Milliseconds written as seconds, exactly: 4200 is 4.2, 3000 is 3. */
void
json_millis(struct json *j, uint64_t ms)
{
	char	tmp[40];
	int	n;

	json_before_value(j);
	n = snprintf(tmp, sizeof tmp, "%" PRIu64, ms / 1000);
	if (ms % 1000 != 0) {
		n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%03u",
		    (unsigned)(ms % 1000));
		while (tmp[n - 1] == '0')
			tmp[--n] = '\0';
	}
	json_put(j, tmp);
}

void
json_bool(struct json *j, int v)
{
	json_before_value(j);
	json_put(j, v ? "true" : "false");
}

void
json_null(struct json *j)
{
	json_before_value(j);
	json_put(j, "null");
}

void
json_finish(struct json *j)
{
	if (j->depth != 0 || j->want_value)
		abort();
	buf_put_u8(j->out, '\n');
}
