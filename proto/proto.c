/*
 * proto.c: the small parsers every part of the protocol is built from:
 * numbers, durations, job ids, array specs, the %XX word encoding, word
 * splitting, and the names of error codes and job states.
 *
 * The one idea: every parser takes a pointer and a length, never relies
 * on a NUL, and either accepts the whole input or refuses it.  There is
 * exactly one way to write each value, so a value that parses formats back
 * to the same bytes, which the fuzz target checks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

static const char *const proto_err_names[PERR__COUNT] = {
	[PERR_NONE] = "none",
	[PERR_UNKNOWN] = "unknown-command",
	[PERR_BADREQ] = "bad-request",
	[PERR_LINE] = "line-too-long",
	[PERR_BODYSIZE] = "body-too-large",
	[PERR_BODY] = "bad-body",
	[PERR_NOTFOUND] = "not-found",
	[PERR_STATE] = "bad-state",
	[PERR_AUTH] = "auth",
	[PERR_VERSION] = "version",
	[PERR_STALE] = "stale",
	[PERR_LIMIT] = "limit",
	[PERR_SERVER] = "server",
};

static const char *const proto_state_names[JS__COUNT] = {
	[JS_WAITING] = "waiting",
	[JS_QUEUED] = "queued",
	[JS_RUNNING] = "running",
	[JS_DONE] = "done",
	[JS_FAILED] = "failed",
	[JS_CANCELED] = "canceled",
};

/*
 * An out-of-range code is a bug in the caller; it is named "server" so
 * that whatever reaches the wire is still a valid code of the right class.
 */
const char *
proto_err_name(enum proto_err e)
{
	if ((unsigned)e >= PERR__COUNT)
		return (proto_err_names[PERR_SERVER]);
	return (proto_err_names[e]);
}

int
proto_err_is_server(enum proto_err e)
{
	return (e == PERR_SERVER || (unsigned)e >= PERR__COUNT);
}

enum proto_err
proto_err_lookup(const char *s, size_t len)
{
	int	 i;

	for (i = PERR_NONE + 1; i < PERR__COUNT; i++) {
		if (strlen(proto_err_names[i]) == len &&
		    memcmp(proto_err_names[i], s, len) == 0)
			return (i);
	}
	return (PERR_NONE);
}

const char *
proto_state_name(enum job_state st)
{
	if ((unsigned)st >= JS__COUNT)
		return (NULL);
	return (proto_state_names[st]);
}

int
proto_state_lookup(const char *s, size_t len)
{
	int	 i;

	for (i = 0; i < JS__COUNT; i++) {
		if (strlen(proto_state_names[i]) == len &&
		    memcmp(proto_state_names[i], s, len) == 0)
			return (i);
	}
	return (-1);
}

/*
 * Numbers.
 */

int
proto_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t	 v = 0;
	unsigned	 d;
	size_t		 i;

	if (len == 0 || (s[0] == '0' && len > 1))
		return (-1);
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		d = s[i] - '0';
		/* v * 10 + d <= max, without overflowing. */
		if (v > max / 10 || (v == max / 10 && d > max % 10))
			return (-1);
		v = v * 10 + d;
	}
	*out = v;
	return (0);
}

int
proto_parse_i64(const char *s, size_t len, int64_t min, int64_t max,
    int64_t *out)
{
	uint64_t	 u, lim;
	int64_t		 v;

	if (min > max)
		return (-1);
	if (len > 0 && s[0] == '-') {
		if (min >= 0)
			return (-1);
		/* -min without overflow: INT64_MIN's magnitude is 2^63. */
		lim = (uint64_t)-(min + 1) + 1;
		if (proto_parse_u64(s + 1, len - 1, lim, &u) != 0 || u == 0)
			return (-1);
		v = -(int64_t)(u - 1) - 1;
		if (v > max)
			return (-1);
	} else {
		if (max < 0)
			return (-1);
		if (proto_parse_u64(s, len, (uint64_t)max, &u) != 0)
			return (-1);
		v = (int64_t)u;
		if (v < min)
			return (-1);
	}
	*out = v;
	return (0);
}

/*
 * Durations for people.  Terms are NUMBER UNIT with the units in
 * decreasing order, each at most once ("1h30m", not "30m1h" or "1m1m": a
 * repeated or reversed unit is more likely a typo than a wish).  Unlike
 * wire numbers, leading zeros are allowed ("1h05m").  A number without a
 * unit is seconds, and only allowed alone.
 */
static const struct {
	const char	*unit;
	uint64_t	 ms;
} proto_units[] = {
	{ "d", 24 * 3600 * 1000 },
	{ "h", 3600 * 1000 },
	{ "m", 60 * 1000 },
	{ "s", 1000 },
	{ "ms", 1 },
};
#define PROTO_NUNITS	(sizeof proto_units / sizeof proto_units[0])

int
proto_parse_duration(const char *s, uint64_t *ms)
{
	uint64_t	 total = 0, n, mult;
	size_t		 next = 0, u, ulen;
	const char	*p = s;
	int		 digits;

	if (*p == '\0')
		return (-1);
	while (*p != '\0') {
		n = 0;
		digits = 0;
		while (*p >= '0' && *p <= '9') {
			n = n * 10 + (*p - '0');
			if (n > SIMQ_MS_MAX)
				return (-1);
			p++;
			digits++;
		}
		if (digits == 0)
			return (-1);
		if (*p == '\0' && p - s == digits) {
			/* A bare number: seconds. */
			mult = 1000;
		} else {
			for (u = 0; u < PROTO_NUNITS; u++) {
				ulen = strlen(proto_units[u].unit);
				if (strncmp(p, proto_units[u].unit,
				    ulen) == 0 && (p[ulen] < 'a' ||
				    p[ulen] > 'z'))
					break;
			}
			if (u == PROTO_NUNITS || u < next)
				return (-1);
			next = u + 1;
			mult = proto_units[u].ms;
			p += strlen(proto_units[u].unit);
		}
		if (n > SIMQ_MS_MAX / mult || n * mult > SIMQ_MS_MAX - total)
			return (-1);
		total += n * mult;
	}
	*ms = total;
	return (0);
}

/*
 * Ids.
 */

int
proto_parse_id(const char *s, size_t len, struct simq_id *out)
{
	const char	*us;
	uint64_t	 id, idx;
	size_t		 idlen;

	us = memchr(s, '_', len);
	idlen = us != NULL ? (size_t)(us - s) : len;
	if (proto_parse_u64(s, idlen, SIMQ_ID_MAX, &id) != 0 || id == 0)
		return (-1);
	if (us == NULL)
		idx = SIMQ_NOINDEX;
	else if (proto_parse_u64(us + 1, len - idlen - 1, SIMQ_INDEX_MAX,
	    &idx) != 0)
		return (-1);
	out->id = id;
	out->index = (uint32_t)idx;
	return (0);
}

int
proto_parse_idrange(const char *s, size_t len, struct simq_idrange *out)
{
	const char	*us, *p, *end, *comma, *dash;
	uint64_t	 id, lo, hi;
	size_t		 n;
	int		 dashes = 0;

	if ((us = memchr(s, '_', len)) == NULL ||
	    proto_parse_u64(s, (size_t)(us - s), SIMQ_ID_MAX, &id) != 0 ||
	    id == 0)
		return (-1);
	p = us + 1;
	end = s + len;
	if (p < end && *p == '[') {
		if (end - p < 3 || end[-1] != ']')
			return (-1);
		p++;
		end--;
	}
	out->id = id;
	out->n = 0;
	while (p < end) {
		comma = memchr(p, ',', (size_t)(end - p));
		n = comma != NULL ? (size_t)(comma - p) : (size_t)(end - p);
		if (out->n == SIMQ_RANGE_PARTS)
			return (-1);
		if ((dash = memchr(p, '-', n)) != NULL) {
			dashes++;
			if (proto_parse_u64(p, (size_t)(dash - p),
			    SIMQ_INDEX_MAX, &lo) != 0 ||
			    proto_parse_u64(dash + 1, n - (size_t)(dash - p) - 1,
			    SIMQ_INDEX_MAX, &hi) != 0 || lo > hi)
				return (-1);
		} else if (proto_parse_u64(p, n, SIMQ_INDEX_MAX, &lo) != 0)
			return (-1);
		else
			hi = lo;
		out->lo[out->n] = (uint32_t)lo;
		out->hi[out->n] = (uint32_t)hi;
		out->n++;
		if (comma == NULL)
			break;
		p = comma + 1;
		if (p == end)
			return (-1);	/* a trailing comma */
	}
	/* "17_5" is an id, not a range; "17_[5]" is one. */
	if (out->n == 0 || (us[1] != '[' && dashes == 0))
		return (-1);
	return (0);
}

int
proto_format_id(char *buf, uint64_t id, uint32_t index)
{
	if (index == SIMQ_NOINDEX)
		return (snprintf(buf, 32, "%" PRIu64, id));
	return (snprintf(buf, 32, "%" PRIu64 "_%" PRIu32, id, index));
}

/*
 * Arrays: "A-B[:STEP][%MAXRUN]" or "A[:STEP][%MAXRUN]".  The parts are
 * cut from the right: '%' first, then ':', then '-'.
 */
int
proto_parse_array(const char *s, size_t len, struct array_spec *out)
{
	const char	*pct, *colon, *dash;
	uint64_t	 first, last, step = 1, maxrun = 0;
	size_t		 rlen = len;

	if ((pct = memchr(s, '%', len)) != NULL) {
		if (proto_parse_u64(pct + 1, len - (pct - s) - 1, UINT32_MAX,
		    &maxrun) != 0)
			return (-1);
		rlen = pct - s;
	}
	if ((colon = memchr(s, ':', rlen)) != NULL) {
		if (proto_parse_u64(colon + 1, rlen - (colon - s) - 1,
		    UINT32_MAX, &step) != 0 || step == 0)
			return (-1);
		rlen = colon - s;
	}
	if ((dash = memchr(s, '-', rlen)) != NULL) {
		if (proto_parse_u64(s, dash - s, SIMQ_INDEX_MAX, &first) != 0)
			return (-1);
		if (proto_parse_u64(dash + 1, rlen - (dash - s) - 1,
		    SIMQ_INDEX_MAX, &last) != 0 || last < first)
			return (-1);
	} else {
		if (proto_parse_u64(s, rlen, SIMQ_INDEX_MAX, &first) != 0)
			return (-1);
		last = first;
	}
	out->first = (uint32_t)first;
	out->last = (uint32_t)last;
	out->step = (uint32_t)step;
	out->maxrun = (uint32_t)maxrun;
	return (0);
}

uint64_t
proto_array_count(const struct array_spec *a)
{
	if (a->last < a->first || a->step == 0)
		return (1);
	return ((uint64_t)(a->last - a->first) / a->step + 1);
}

/*
 * Words.
 */

static const char proto_hex[] = "0123456789ABCDEF";

static int
proto_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	return (-1);
}

size_t
proto_encode(char *dst, const void *src, size_t len)
{
	const unsigned char	*s = src;
	size_t			 i, o = 0;

	if (len == 0) {
		dst[o++] = '%';
		dst[o] = '\0';
		return (o);
	}
	for (i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] == 0x7f || s[i] == '%') {
			dst[o++] = '%';
			dst[o++] = proto_hex[s[i] >> 4];
			dst[o++] = proto_hex[s[i] & 0xf];
		} else
			dst[o++] = s[i];
	}
	dst[o] = '\0';
	return (o);
}

long
proto_decode(char *w, size_t len)
{
	size_t	 i, o = 0;
	int	 hi, lo;

	if (len == 1 && w[0] == '%')
		return (0);
	for (i = 0; i < len; i++) {
		if (w[i] != '%') {
			w[o++] = w[i];
			continue;
		}
		if (len - i < 3)
			return (-1);
		if ((hi = proto_hexval((unsigned char)w[i + 1])) == -1 ||
		    (lo = proto_hexval((unsigned char)w[i + 2])) == -1)
			return (-1);
		w[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	return ((long)o);
}

int
proto_split(char *line, size_t len, struct proto_word *w, int max)
{
	size_t	 i = 0, start;
	int	 n = 0;

	for (;;) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len)
			return (n);
		if (n == max)
			return (-1);
		start = i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		w[n].p = line + start;
		w[n].len = i - start;
		n++;
	}
}

int
proto_kv(const struct proto_word *w, struct proto_word *key,
    struct proto_word *val)
{
	char	*eq;

	if ((eq = memchr(w->p, '=', w->len)) == NULL)
		return (-1);
	key->p = w->p;
	key->len = eq - w->p;
	val->p = eq + 1;
	val->len = w->len - key->len - 1;
	return (0);
}

int
proto_word_is(const struct proto_word *w, const char *s)
{
	return (strlen(s) == w->len && memcmp(w->p, s, w->len) == 0);
}

/*
 * Names: what may be shown in a table column and typed on a command line
 * without quoting.
 */
static int
proto_name_check(const char *s, size_t len, const char *extra)
{
	size_t	 i;
	int	 c;

	if (len == 0 || len > SIMQ_NAME_MAX)
		return (0);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
			continue;
		if (c != '\0' && extra != NULL && strchr(extra, c) != NULL)
			continue;
		return (0);
	}
	return (1);
}

int
proto_name_ok(const char *s, size_t len)
{
	return (proto_name_check(s, len, NULL));
}

int
proto_worker_name_ok(const char *s, size_t len)
{
	return (proto_name_check(s, len, ":@"));
}
