/*
 * test_proto.c: unit tests for proto/: numbers, durations, ids, arrays,
 * the word encoding, the framer, the command table and job options.
 *
 * The framer tests play the broker with feed(): the stream arrives in
 * chunks of a chosen size into a buffer the way a connection's input
 * buffer fills, every event but PROTO_NEED is recorded, and the invariants
 * every caller relies on (*used within the bytes shown, fewer than
 * proto_in_want() bytes left after PROTO_NEED) are checked on every call.
 * The same stream fed a byte at a time and in one piece must give the same
 * events.  Under ASan, the unused part of the buffer is poisoned, so a
 * read past what the framer was shown fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sanitizer/asan_interface.h>

#include "proto.h"

/*
 * Helpers.
 */

static int
u64(const char *s, uint64_t max, uint64_t *out)
{
	return (proto_parse_u64(s, strlen(s), max, out));
}

static int
i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	return (proto_parse_i64(s, strlen(s), min, max, out));
}

static int
id(const char *s, struct simq_id *out)
{
	return (proto_parse_id(s, strlen(s), out));
}

static int
arr(const char *s, struct array_spec *a)
{
	return (proto_parse_array(s, strlen(s), a));
}

/* A string of n copies of c, then tail; the caller frees it. */
static char *
repeat(int c, size_t n, const char *tail, size_t *lenp)
{
	size_t	 tl = strlen(tail);
	char	*s;

	s = malloc(n + tl + 1);
	assert_non_null(s);
	memset(s, c, n);
	memcpy(s + n, tail, tl + 1);
	if (lenp != NULL)
		*lenp = n + tl;
	return (s);
}

/*
 * The broker's side of the framer.
 */

#define REC_MAX		32
/* Room for one maximal line or one maximal FINISH body. */
#define FEED_CAP	(SIMQ_FINISH_MAX + 2)

struct rec {
	enum proto_ev	 ev;
	enum proto_err	 err;		/* ERR: the framer's; LINE: the
					   parser's */
	char		*tok;
	size_t		 len;
	size_t		 bodylen;	/* LINE: the announced body */
};

struct run {
	struct rec	 r[REC_MAX];
	int		 n;
	size_t		 left;		/* bytes held at the end */
	size_t		 maxheld;	/* most bytes held after a NEED */
	int		 skips;		/* NEEDs that consumed bytes */
};

/* Under ASan, makes buf[0..cap] unreadable except buf[start..end). */
static void
poison(char *buf, size_t cap, size_t start, size_t end)
{
	ASAN_UNPOISON_MEMORY_REGION(buf, cap + 1);
	ASAN_POISON_MEMORY_REGION(buf, start);
	ASAN_POISON_MEMORY_REGION(buf + end, cap + 1 - end);
}

/*
 * Feeds s[0..len) in chunks of chunk bytes (0: all at once, into a buffer
 * of exactly len bytes) and records the events in run.  Lines are parsed
 * with proto_req_parse and their bodies announced as the broker does.
 */
static void
feed(struct run *run, const char *s, size_t len, size_t chunk)
{
	static struct proto_req		 req;
	const struct proto_cmdinfo	*ci;
	struct proto_in			 in;
	struct proto_word		 tok;
	enum proto_err			 err;
	enum proto_ev			 ev;
	struct rec			*r;
	size_t				 cap, start = 0, end = 0, off = 0;
	size_t				 used, k;
	char				*buf, msg[256];
	int				 zero = 0;

	memset(run, 0, sizeof *run);
	/* One byte more than cap, poisoned, so malloc(0) is avoided and a
	 * read one past the end is still caught. */
	cap = chunk == 0 ? len : FEED_CAP;
	buf = malloc(cap + 1);
	assert_non_null(buf);
	proto_in_init(&in);
	for (;;) {
		/* Receive: compact, then append what fits. */
		ASAN_UNPOISON_MEMORY_REGION(buf, cap + 1);
		if (start > 0) {
			memmove(buf, buf + start, end - start);
			end -= start;
			start = 0;
		}
		k = chunk == 0 ? len - off : chunk;
		if (k > len - off)
			k = len - off;
		if (k > cap - end)
			k = cap - end;
		memcpy(buf + end, s + off, k);
		end += k;
		off += k;
		poison(buf, cap, start, end);

		for (;;) {
			ev = proto_in_next(&in, buf + start, end - start, &used,
			    &tok, &err);
			assert_true(used <= end - start);
			if (ev == PROTO_NEED) {
				assert_int_equal(err, PERR_NONE);
				if (used > 0)
					run->skips++;
				start += used;
				poison(buf, cap, start, end);
				assert_true(end - start < proto_in_want(&in));
				if (end - start > run->maxheld)
					run->maxheld = end - start;
				break;
			}
			/* Progress: no two events in a row without bytes. */
			zero = used == 0 ? zero + 1 : 0;
			assert_true(zero < 2);
			assert_true(run->n < REC_MAX);
			r = &run->r[run->n++];
			r->ev = ev;
			r->err = err;
			r->len = tok.len;
			r->tok = malloc(tok.len + 1);
			assert_non_null(r->tok);
			if (ev == PROTO_LINE || ev == PROTO_BODY) {
				assert_true(tok.p >= buf + start);
				assert_true(tok.p + tok.len <= buf + start +
				    used);
				memcpy(r->tok, tok.p, tok.len);
			} else
				assert_int_not_equal(err, PERR_NONE);
			r->tok[tok.len] = '\0';
			if (ev == PROTO_LINE) {
				r->err = proto_req_parse(&req, r->tok, r->len,
				    msg, sizeof msg);
				r->bodylen = req.bodylen;
				ci = proto_cmd_info(req.cmd);
				if (ci != NULL && ci->body != PROTO_BODY_NONE &&
				    (r->err == PERR_NONE ||
				    r->err == PERR_BODYSIZE))
					proto_in_body(&in, req.bodylen,
					    ci->bodymax);
			}
			start += used;
			poison(buf, cap, start, end);
		}
		if (off == len)
			break;
		assert_true(k > 0);
	}
	run->left = end - start;
	ASAN_UNPOISON_MEMORY_REGION(buf, cap + 1);
	free(buf);
}

static void
run_free(struct run *run)
{
	int	 i;

	for (i = 0; i < run->n; i++)
		free(run->r[i].tok);
	run->n = 0;
}

static void
assert_line(const struct run *run, int i, const char *s, enum proto_err e)
{
	assert_true(i < run->n);
	assert_int_equal(run->r[i].ev, PROTO_LINE);
	assert_int_equal(run->r[i].len, strlen(s));
	assert_string_equal(run->r[i].tok, s);
	assert_int_equal(run->r[i].err, e);
}

static void
assert_err(const struct run *run, int i, enum proto_err e)
{
	assert_true(i < run->n);
	assert_int_equal(run->r[i].ev, PROTO_ERR);
	assert_int_equal(run->r[i].err, e);
}

static void
assert_body(const struct run *run, int i, const char *s, size_t len)
{
	assert_true(i < run->n);
	assert_int_equal(run->r[i].ev, PROTO_BODY);
	assert_int_equal(run->r[i].len, len);
	assert_memory_equal(run->r[i].tok, s, len);
}

/* Feeds in one piece and a byte at a time: both must give these events. */
static void
assert_same_runs(const char *s, size_t len, struct run *one,
    struct run *bytes)
{
	int	 i;

	feed(one, s, len, 0);
	feed(bytes, s, len, 1);
	assert_int_equal(one->n, bytes->n);
	for (i = 0; i < one->n; i++) {
		assert_int_equal(one->r[i].ev, bytes->r[i].ev);
		assert_int_equal(one->r[i].err, bytes->r[i].err);
		assert_int_equal(one->r[i].len, bytes->r[i].len);
		assert_memory_equal(one->r[i].tok, bytes->r[i].tok,
		    one->r[i].len);
	}
	assert_int_equal(one->left, bytes->left);
}

/*
 * Numbers.
 */

static void
test_u64_good(void **state)
{
	uint64_t	 v;

	assert_int_equal(u64("0", 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(u64("42", 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(u64("100", 100, &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(u64("18446744073709551615", UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(u64("0", 0, &v), 0);
	assert_int_equal(u64("9", 9, &v), 0);
	assert_int_equal(v, 9);
	/* The length counts, not a NUL. */
	assert_int_equal(proto_parse_u64("1234", 2, 100, &v), 0);
	assert_int_equal(v, 12);
}

static void
test_u64_empty(void **state)
{
	uint64_t	 v = 7;

	assert_int_equal(u64("", UINT64_MAX, &v), -1);
	assert_int_equal(proto_parse_u64("5", 0, UINT64_MAX, &v), -1);
	assert_int_equal(v, 7);
}

static void
test_u64_sign(void **state)
{
	uint64_t	 v;

	assert_int_equal(u64("+1", UINT64_MAX, &v), -1);
	assert_int_equal(u64("-1", UINT64_MAX, &v), -1);
	assert_int_equal(u64("-0", UINT64_MAX, &v), -1);
	assert_int_equal(u64("+", UINT64_MAX, &v), -1);
}

static void
test_u64_leading_zeros(void **state)
{
	uint64_t	 v;

	assert_int_equal(u64("00", UINT64_MAX, &v), -1);
	assert_int_equal(u64("01", UINT64_MAX, &v), -1);
	assert_int_equal(u64("007", UINT64_MAX, &v), -1);
	assert_int_equal(u64("10", UINT64_MAX, &v), 0);
	assert_int_equal(v, 10);
}

static void
test_u64_overflow(void **state)
{
	uint64_t	 v;

	/* 2^64, and far beyond. */
	assert_int_equal(u64("18446744073709551616", UINT64_MAX, &v), -1);
	assert_int_equal(u64("18446744073709551620", UINT64_MAX, &v), -1);
	assert_int_equal(u64("99999999999999999999", UINT64_MAX, &v), -1);
	assert_int_equal(u64("184467440737095516150", UINT64_MAX, &v), -1);
	assert_int_equal(u64("100000000000000000000000000000", UINT64_MAX,
	    &v), -1);
}

static void
test_u64_over_max(void **state)
{
	uint64_t	 v;

	assert_int_equal(u64("101", 100, &v), -1);
	assert_int_equal(u64("110", 100, &v), -1);
	assert_int_equal(u64("1000", 100, &v), -1);
	assert_int_equal(u64("1", 0, &v), -1);
	assert_int_equal(u64("10", 9, &v), -1);
	assert_int_equal(u64("9223372036854775808", INT64_MAX, &v), -1);
	assert_int_equal(u64("9223372036854775807", INT64_MAX, &v), 0);
}

static void
test_u64_junk(void **state)
{
	static const char *const bad[] = {
		"12a", "a12", "1 ", " 1", "1.0", "0x10", "1e3", "1,000",
		"１", "\t1", "1\n", "1_000",
	};
	uint64_t	 v;
	size_t		 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(u64(bad[i], UINT64_MAX, &v), -1);
	/* A NUL inside the length is junk too. */
	assert_int_equal(proto_parse_u64("1\0", 2, UINT64_MAX, &v), -1);
}

static void
test_i64_good(void **state)
{
	int64_t	 v;

	assert_int_equal(i64("-5", -10, 10, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(i64("0", -10, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(i64("10", -10, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(i64("-10", -10, 10, &v), 0);
	assert_int_equal(v, -10);
	assert_int_equal(i64("-9223372036854775808", INT64_MIN, INT64_MAX,
	    &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(i64("9223372036854775807", INT64_MIN, INT64_MAX,
	    &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(i64("-7", -10, -5, &v), 0);
	assert_int_equal(v, -7);
}

static void
test_i64_bad(void **state)
{
	int64_t	 v;

	assert_int_equal(i64("-0", -10, 10, &v), -1);
	assert_int_equal(i64("-", -10, 10, &v), -1);
	assert_int_equal(i64("", -10, 10, &v), -1);
	assert_int_equal(i64("--1", -10, 10, &v), -1);
	assert_int_equal(i64("+1", -10, 10, &v), -1);
	assert_int_equal(i64("-01", -10, 10, &v), -1);
	assert_int_equal(i64("01", -10, 10, &v), -1);
	assert_int_equal(i64(" -1", -10, 10, &v), -1);
	assert_int_equal(i64("-1x", -10, 10, &v), -1);
	assert_int_equal(i64("-11", -10, 10, &v), -1);
	assert_int_equal(i64("11", -10, 10, &v), -1);
	assert_int_equal(i64("-1", 0, 10, &v), -1);
	assert_int_equal(i64("0", 1, 10, &v), -1);
	assert_int_equal(i64("-4", -10, -5, &v), -1);
	assert_int_equal(i64("5", -10, -5, &v), -1);
	assert_int_equal(i64("-9223372036854775809", INT64_MIN, INT64_MAX,
	    &v), -1);
	assert_int_equal(i64("9223372036854775808", INT64_MIN, INT64_MAX,
	    &v), -1);
	assert_int_equal(i64("-18446744073709551616", INT64_MIN, INT64_MAX,
	    &v), -1);
}

/*
 * Durations.
 */

static void
test_duration_good(void **state)
{
	static const struct {
		const char	*s;
		uint64_t	 ms;
	} t[] = {
		{ "0", 0 },
		{ "90", 90000 },
		{ "90s", 90000 },
		{ "500ms", 500 },
		{ "0ms", 0 },
		{ "10m", 600000 },
		{ "2h", 7200000 },
		{ "3d", 259200000 },
		{ "1h30m", 5400000 },
		{ "1h05m", 3900000 },
		{ "1m5s", 65000 },
		{ "1s5ms", 1005 },
		{ "1d2h3m4s5ms", 93784005 },
		{ "3660d", SIMQ_MS_MAX },
		{ "316224000", SIMQ_MS_MAX },
		{ "316224000000ms", SIMQ_MS_MAX },
	};
	uint64_t	 ms;
	size_t		 i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		ms = 12345;
		assert_int_equal(proto_parse_duration(t[i].s, &ms), 0);
		assert_true(ms == t[i].ms);
	}
}

static void
test_duration_bad(void **state)
{
	static const char *const bad[] = {
		"", "s", "ms", "h", "1x", "1 ", " 1", "1h 30m", "1h1h",
		"30m1h", "1s1m", "1ms1s", "1.5h", "-1", "+1", "1h30",
		"1hh", "1H", "1msx", "1mss", "1sm", "3661d", "3660d1ms",
		"316224001", "316224000001ms", "316224000001",
		"99999999999999999999999s", "18446744073709551616ms",
	};
	uint64_t	 ms = 77;
	size_t		 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (proto_parse_duration(bad[i], &ms) != -1)
			fail_msg("duration \"%s\" accepted", bad[i]);
	}
	assert_true(ms == 77);
}

/*
 * Ids and arrays.
 */

static void
test_id_good(void **state)
{
	struct simq_id	 v;

	assert_int_equal(id("17", &v), 0);
	assert_true(v.id == 17 && v.index == SIMQ_NOINDEX);
	assert_int_equal(id("17_5", &v), 0);
	assert_true(v.id == 17 && v.index == 5);
	assert_int_equal(id("1_0", &v), 0);
	assert_true(v.id == 1 && v.index == 0);
	assert_int_equal(id("9223372036854775807_4294967294", &v), 0);
	assert_true(v.id == SIMQ_ID_MAX && v.index == SIMQ_INDEX_MAX);
}

static void
test_id_bad(void **state)
{
	static const char *const bad[] = {
		"", "0", "0_1", "017", "17_05", "_5", "17_", "17__5",
		"17_5_6", "-1", "17x", "17_-1", "17 ", "17:1",
		"9223372036854775808", "17_4294967295", "17_99999999999",
	};
	struct simq_id	 v;
	size_t		 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (id(bad[i], &v) != -1)
			fail_msg("id \"%s\" accepted", bad[i]);
	}
}

static void
test_id_format(void **state)
{
	struct simq_id	 v;
	char		 buf[32];

	assert_int_equal(proto_format_id(buf, 17, SIMQ_NOINDEX), 2);
	assert_string_equal(buf, "17");
	assert_int_equal(proto_format_id(buf, 17, 5), 4);
	assert_string_equal(buf, "17_5");
	assert_int_equal(proto_format_id(buf, SIMQ_ID_MAX, SIMQ_INDEX_MAX),
	    30);
	assert_string_equal(buf, "9223372036854775807_4294967294");
	assert_int_equal(id(buf, &v), 0);
	assert_true(v.id == SIMQ_ID_MAX && v.index == SIMQ_INDEX_MAX);
}

static void
test_array_good(void **state)
{
	struct array_spec	 a;

	assert_int_equal(arr("1-1000", &a), 0);
	assert_true(a.first == 1 && a.last == 1000 && a.step == 1 &&
	    a.maxrun == 0);
	assert_true(proto_array_count(&a) == 1000);
	assert_int_equal(arr("0-10:2", &a), 0);
	assert_true(a.first == 0 && a.last == 10 && a.step == 2);
	assert_true(proto_array_count(&a) == 6);
	assert_int_equal(arr("1-10:3%2", &a), 0);
	assert_true(a.step == 3 && a.maxrun == 2);
	assert_true(proto_array_count(&a) == 4);
	assert_int_equal(arr("1-10%5", &a), 0);
	assert_true(a.step == 1 && a.maxrun == 5);
	assert_int_equal(arr("5", &a), 0);
	assert_true(a.first == 5 && a.last == 5);
	assert_true(proto_array_count(&a) == 1);
	assert_int_equal(arr("7:2", &a), 0);
	assert_true(a.first == 7 && a.last == 7 && a.step == 2);
	assert_int_equal(arr("3-3", &a), 0);
	assert_true(proto_array_count(&a) == 1);
	assert_int_equal(arr("0-4294967294", &a), 0);
	assert_true(proto_array_count(&a) == UINT64_C(4294967295));
	assert_int_equal(arr("0-4294967294:4294967295", &a), 0);
	assert_true(proto_array_count(&a) == 1);
}

static void
test_array_bad(void **state)
{
	static const char *const bad[] = {
		"", "-", "1-", "-5", "5-1", "1-10:0", "1-10:", "1-10%",
		"1-10%x", "1-4294967295", "4294967295", "a-b", "1-10:2:3",
		"1-2-3", "1-10%2%3", " 1-2", "01-2", "1-02", "1-10:2%3x",
		"1-10:-1", "1--2", "%3", ":2",
	};
	struct array_spec	 a;
	size_t			 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (arr(bad[i], &a) != -1)
			fail_msg("array \"%s\" accepted", bad[i]);
	}
}

/*
 * Words.
 */

static void
check_encode(const char *src, size_t len, const char *want)
{
	char	 dst[256];
	size_t	 n;

	n = proto_encode(dst, src, len);
	assert_int_equal(n, strlen(want));
	assert_string_equal(dst, want);
	assert_true(n <= PROTO_ENC_MAX(len));
}

static void
test_encode_examples(void **state)
{
	check_encode("hello world", 11, "hello%20world");
	check_encode("50%", 3, "50%25");
	check_encode("", 0, "%");
	check_encode("\x7f", 1, "%7F");
	check_encode("\t\r\n\x01", 4, "%09%0D%0A%01");
	check_encode("\0", 1, "%00");
	check_encode("\xc3\xa9t\xc3\xa9", 5, "\xc3\xa9t\xc3\xa9");
	check_encode("a=b,c:d", 7, "a=b,c:d");
	check_encode("\xff", 1, "\xff");
}

static void
test_encode_all_bytes(void **state)
{
	unsigned char	 src[256];
	char		 enc[PROTO_ENC_MAX(256) + 1];
	size_t		 i, n;
	long		 d;

	for (i = 0; i < 256; i++)
		src[i] = (unsigned char)i;
	n = proto_encode(enc, src, sizeof src);
	assert_true(n <= PROTO_ENC_MAX(sizeof src));
	assert_int_equal(strlen(enc), n);
	/* 33 bytes <= 0x20, 0x7f and '%' are escaped: 35 * 3 + 221. */
	assert_int_equal(n, 35 * 3 + 221);
	for (i = 0; i < n; i++) {
		assert_true((unsigned char)enc[i] > 0x20);
		assert_true((unsigned char)enc[i] != 0x7f);
	}
	d = proto_decode(enc, n);
	assert_int_equal(d, 256);
	assert_memory_equal(enc, src, 256);
}

static void
test_encode_each_byte(void **state)
{
	char	 enc[8];
	size_t	 n;
	long	 d;
	int	 c;

	for (c = 0; c < 256; c++) {
		unsigned char	 b = (unsigned char)c;

		n = proto_encode(enc, &b, 1);
		if (c <= 0x20 || c == 0x7f || c == '%')
			assert_int_equal(n, 3);
		else
			assert_int_equal(n, 1);
		d = proto_decode(enc, n);
		assert_int_equal(d, 1);
		assert_int_equal((unsigned char)enc[0], c);
	}
}

static void
test_encode_empty(void **state)
{
	char	 enc[4];
	long	 d;

	assert_int_equal(proto_encode(enc, "", 0), 1);
	assert_string_equal(enc, "%");
	d = proto_decode(enc, 1);
	assert_int_equal(d, 0);
}

static void
test_decode_good(void **state)
{
	char	 w[32];

	strcpy(w, "hello%20world");
	assert_int_equal(proto_decode(w, strlen(w)), 11);
	assert_memory_equal(w, "hello world", 11);
	strcpy(w, "%2f%2F%7e");
	assert_int_equal(proto_decode(w, strlen(w)), 3);
	assert_memory_equal(w, "//~", 3);
	strcpy(w, "50%25");
	assert_int_equal(proto_decode(w, strlen(w)), 3);
	assert_memory_equal(w, "50%", 3);
	strcpy(w, "%00");
	assert_int_equal(proto_decode(w, 3), 1);
	assert_int_equal(w[0], '\0');
	strcpy(w, "plain");
	assert_int_equal(proto_decode(w, 5), 5);
	assert_memory_equal(w, "plain", 5);
	assert_int_equal(proto_decode(w, 0), 0);
}

static void
test_decode_bad(void **state)
{
	static const char *const bad[] = {
		"%4", "%zz", "%g0", "%0g", "a%", "%%", "%%41", "ab%2",
		"%%%", "% 1", "%-1", "%+1",
	};
	char	 w[16];
	size_t	 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		strcpy(w, bad[i]);
		if (proto_decode(w, strlen(w)) != -1)
			fail_msg("decode \"%s\" accepted", bad[i]);
	}
	/* The length bounds the escape: the '1' is not part of it. */
	strcpy(w, "%41");
	assert_int_equal(proto_decode(w, 2), -1);
}

static void
test_split(void **state)
{
	struct proto_word	 w[8];
	char			 line[] = "  SUBMIT\tq=a \t -- ./sim  ";
	char			 copy[sizeof line];

	memcpy(copy, line, sizeof line);
	assert_int_equal(proto_split(line, strlen(line), w, 8), 4);
	assert_memory_equal(line, copy, sizeof line);
	assert_true(proto_word_is(&w[0], "SUBMIT"));
	assert_true(w[0].p == line + 2);
	assert_true(proto_word_is(&w[1], "q=a"));
	assert_true(proto_word_is(&w[2], "--"));
	assert_true(proto_word_is(&w[3], "./sim"));
	assert_int_equal(proto_split(line, 0, w, 8), 0);
	assert_int_equal(proto_split(line, 2, w, 8), 0);
	/* The length bounds the words. */
	assert_int_equal(proto_split(line, 5, w, 8), 1);
	assert_true(proto_word_is(&w[0], "SUB"));
}

static void
test_split_max(void **state)
{
	struct proto_word	 w[3];
	char			 line[] = "a b c";
	char			 line4[] = "a b c d";

	assert_int_equal(proto_split(line, strlen(line), w, 3), 3);
	assert_int_equal(proto_split(line4, strlen(line4), w, 3), -1);
	assert_int_equal(proto_split(line, strlen(line), w, 2), -1);
	assert_int_equal(proto_split(line, strlen(line), w, 0), -1);
	assert_int_equal(proto_split(line, 0, w, 0), 0);
}

static void
test_kv(void **state)
{
	char			 s[] = "env=PATH=/bin";
	char			 e[] = "=b";
	char			 v[] = "a=";
	char			 n[] = "ab";
	struct proto_word	 w, k, val;

	w.p = s;
	w.len = strlen(s);
	assert_int_equal(proto_kv(&w, &k, &val), 0);
	assert_true(proto_word_is(&k, "env"));
	assert_true(proto_word_is(&val, "PATH=/bin"));
	w.p = e;
	w.len = 2;
	assert_int_equal(proto_kv(&w, &k, &val), 0);
	assert_int_equal(k.len, 0);
	assert_true(proto_word_is(&val, "b"));
	w.p = v;
	w.len = 2;
	assert_int_equal(proto_kv(&w, &k, &val), 0);
	assert_true(proto_word_is(&k, "a"));
	assert_int_equal(val.len, 0);
	w.p = n;
	w.len = 2;
	assert_int_equal(proto_kv(&w, &k, &val), -1);
	/* '=' beyond the word's length does not count. */
	w.p = s;
	w.len = 3;
	assert_int_equal(proto_kv(&w, &k, &val), -1);
}

static void
test_word_is(void **state)
{
	char			 s[] = "PINGX";
	struct proto_word	 w = { s, 4 };

	assert_true(proto_word_is(&w, "PING"));
	assert_false(proto_word_is(&w, "PIN"));
	assert_false(proto_word_is(&w, "PINGX"));
	assert_false(proto_word_is(&w, "ping"));
	w.len = 0;
	assert_true(proto_word_is(&w, ""));
}

/*
 * Names.
 */

static void
test_err_names(void **state)
{
	static const char *const names[PERR__COUNT] = {
		NULL, "unknown-command", "bad-request", "line-too-long",
		"body-too-large", "bad-body", "not-found", "bad-state",
		"auth", "version", "stale", "limit", "server",
	};
	int	 e;

	for (e = PERR_NONE + 1; e < PERR__COUNT; e++) {
		assert_string_equal(proto_err_name(e), names[e]);
		assert_int_equal(proto_err_lookup(names[e], strlen(names[e])),
		    e);
		assert_int_equal(proto_err_is_server(e), e == PERR_SERVER);
	}
	assert_non_null(proto_err_name(PERR_NONE));
	assert_string_equal(proto_err_name(PERR__COUNT), "server");
	assert_int_equal(proto_err_lookup("bad", 3), PERR_NONE);
	assert_int_equal(proto_err_lookup("bad-requests", 12), PERR_NONE);
	assert_int_equal(proto_err_lookup("AUTH", 4), PERR_NONE);
	assert_int_equal(proto_err_lookup("", 0), PERR_NONE);
	assert_int_equal(proto_err_lookup("stalex", 5), PERR_STALE);
}

static void
test_state_names(void **state)
{
	static const char *const names[] = {
		"waiting", "queued", "running", "done", "failed", "canceled",
	};
	int	 s;

	for (s = 0; s < JS__COUNT; s++) {
		assert_string_equal(proto_state_name(s), names[s]);
		assert_int_equal(proto_state_lookup(names[s],
		    strlen(names[s])), s);
	}
	assert_null(proto_state_name(JS__COUNT));
	assert_int_equal(proto_state_lookup("Done", 4), -1);
	assert_int_equal(proto_state_lookup("cancelled", 9), -1);
	assert_int_equal(proto_state_lookup("", 0), -1);
}

static void
test_name_ok(void **state)
{
	char	*s;

	assert_true(proto_name_ok("default", 7));
	assert_true(proto_name_ok("a.b-c_D9", 8));
	assert_false(proto_name_ok("", 0));
	assert_false(proto_name_ok("a b", 3));
	assert_false(proto_name_ok("a/b", 3));
	assert_false(proto_name_ok("a:b", 3));
	assert_false(proto_name_ok("a@b", 3));
	assert_false(proto_name_ok("a\0b", 3));
	assert_false(proto_name_ok("\xc3\xa9", 2));
	assert_true(proto_worker_name_ok("node7:4211", 10));
	assert_true(proto_worker_name_ok("w@node7", 7));
	assert_false(proto_worker_name_ok("w node", 6));
	assert_false(proto_worker_name_ok("", 0));
	assert_false(proto_worker_name_ok("a\0", 2));
	s = repeat('x', SIMQ_NAME_MAX, "", NULL);
	assert_true(proto_name_ok(s, SIMQ_NAME_MAX));
	assert_true(proto_worker_name_ok(s, SIMQ_NAME_MAX));
	free(s);
	s = repeat('x', SIMQ_NAME_MAX + 1, "", NULL);
	assert_false(proto_name_ok(s, SIMQ_NAME_MAX + 1));
	assert_false(proto_worker_name_ok(s, SIMQ_NAME_MAX + 1));
	free(s);
}

/*
 * Framing.
 */

static void
test_frame_lines(void **state)
{
	static const char	 s[] = "PING\nQUIT\r\nHELLO 1\npi\rng\n";
	struct run		 one, bytes;

	assert_same_runs(s, strlen(s), &one, &bytes);
	assert_int_equal(one.n, 4);
	assert_line(&one, 0, "PING", PERR_NONE);
	assert_line(&one, 1, "QUIT", PERR_NONE);
	assert_line(&one, 2, "HELLO 1", PERR_NONE);
	/* A CR not right before the LF is part of the line. */
	assert_line(&one, 3, "pi\rng", PERR_UNKNOWN);
	assert_int_equal(one.left, 0);
	run_free(&one);
	run_free(&bytes);
}

static void
test_frame_empty_lines(void **state)
{
	static const char	 s[] = "\n\r\n\r\r\nPING\n";
	struct run		 one, bytes;

	assert_same_runs(s, strlen(s), &one, &bytes);
	assert_int_equal(one.n, 4);
	assert_line(&one, 0, "", PERR_UNKNOWN);
	assert_line(&one, 1, "", PERR_UNKNOWN);
	assert_line(&one, 2, "\r", PERR_UNKNOWN);
	assert_line(&one, 3, "PING", PERR_NONE);
	run_free(&one);
	run_free(&bytes);
}

static void
test_frame_no_terminator(void **state)
{
	struct proto_in		 in;
	struct proto_word	 tok;
	enum proto_err		 err;
	size_t			 used;
	char			 buf[] = "PING\n";

	proto_in_init(&in);
	assert_int_equal(proto_in_next(&in, buf, 0, &used, &tok, &err),
	    PROTO_NEED);
	assert_int_equal(used, 0);
	assert_int_equal(proto_in_next(&in, buf, 4, &used, &tok, &err),
	    PROTO_NEED);
	assert_int_equal(used, 0);
	assert_int_equal(proto_in_want(&in), SIMQ_LINE_MAX);
	/* Shown again with no more bytes: still nothing. */
	assert_int_equal(proto_in_next(&in, buf, 4, &used, &tok, &err),
	    PROTO_NEED);
	assert_int_equal(proto_in_next(&in, buf, 5, &used, &tok, &err),
	    PROTO_LINE);
	assert_int_equal(used, 5);
	assert_true(tok.p == buf && tok.len == 4);
	assert_int_equal(err, PERR_NONE);
}

static void
test_frame_unterminated_long(void **state)
{
	struct proto_in		 in;
	struct proto_word	 tok;
	enum proto_err		 err;
	size_t			 used;
	char			*s;

	/* SIMQ_LINE_MAX - 1 bytes could still end in an LF: wait. */
	s = repeat('x', SIMQ_LINE_MAX, "", NULL);
	proto_in_init(&in);
	assert_int_equal(proto_in_next(&in, s, SIMQ_LINE_MAX - 1, &used, &tok,
	    &err), PROTO_NEED);
	assert_int_equal(used, 0);
	/* SIMQ_LINE_MAX bytes without an LF cannot: an error at once. */
	assert_int_equal(proto_in_next(&in, s, SIMQ_LINE_MAX, &used, &tok,
	    &err), PROTO_ERR);
	assert_int_equal(err, PERR_LINE);
	assert_int_equal(used, SIMQ_LINE_MAX);
	free(s);
}

/* A valid HELLO line of exactly n bytes before its terminator. */
static char *
long_line(size_t n, const char *term, const char *after, size_t *lenp)
{
	char	*s;
	size_t	 tl = strlen(term), al = strlen(after);

	s = malloc(n + tl + al + 1);
	assert_non_null(s);
	memcpy(s, "HELLO 1 ", 8);
	memset(s + 8, 'x', n - 8);
	memcpy(s + n, term, tl);
	memcpy(s + n + tl, after, al + 1);
	*lenp = n + tl + al;
	return (s);
}

/* A line of n bytes with terminator term, then "PING\r\n". */
static void
check_long_line(size_t n, const char *term, size_t chunk, int fits)
{
	struct run	 r;
	size_t		 len;
	char		*s;

	s = long_line(n, term, "PING\r\n", &len);
	feed(&r, s, len, chunk);
	assert_int_equal(r.n, 2);
	if (fits) {
		assert_int_equal(r.r[0].ev, PROTO_LINE);
		assert_int_equal(r.r[0].len, n);
		assert_memory_equal(r.r[0].tok, s, n);
		assert_int_equal(r.r[0].err, PERR_NONE);
	} else
		assert_err(&r, 0, PERR_LINE);
	assert_line(&r, 1, "PING", PERR_NONE);
	assert_int_equal(r.left, 0);
	assert_true(r.maxheld < SIMQ_LINE_MAX);
	if (chunk == 1 && !fits)
		assert_true(r.skips > 0);
	run_free(&r);
	free(s);
}

static void
test_frame_limit_lf_whole(void **state)
{
	check_long_line(SIMQ_LINE_MAX - 1, "\n", 0, 1);
}

static void
test_frame_limit_lf_bytes(void **state)
{
	check_long_line(SIMQ_LINE_MAX - 1, "\n", 1, 1);
}

static void
test_frame_limit_crlf_whole(void **state)
{
	check_long_line(SIMQ_LINE_MAX - 2, "\r\n", 0, 1);
}

static void
test_frame_limit_crlf_bytes(void **state)
{
	check_long_line(SIMQ_LINE_MAX - 2, "\r\n", 1, 1);
}

static void
test_frame_over_lf_whole(void **state)
{
	check_long_line(SIMQ_LINE_MAX, "\n", 0, 0);
}

static void
test_frame_over_lf_bytes(void **state)
{
	check_long_line(SIMQ_LINE_MAX, "\n", 1, 0);
}

static void
test_frame_over_crlf_whole(void **state)
{
	check_long_line(SIMQ_LINE_MAX - 1, "\r\n", 0, 0);
}

static void
test_frame_over_crlf_bytes(void **state)
{
	check_long_line(SIMQ_LINE_MAX - 1, "\r\n", 1, 0);
}

static void
test_frame_far_over(void **state)
{
	/* Three times the limit, in several chunk sizes: one error. */
	check_long_line(3 * SIMQ_LINE_MAX + 17, "\r\n", 0, 0);
	check_long_line(3 * SIMQ_LINE_MAX + 17, "\r\n", 1000, 0);
	check_long_line(3 * SIMQ_LINE_MAX + 17, "\n", 65537, 0);
	check_long_line(3 * SIMQ_LINE_MAX + 17, "\n", 3, 0);
}

static void
test_frame_skip_consumes(void **state)
{
	struct proto_in		 in;
	struct proto_word	 tok;
	enum proto_err		 err;
	size_t			 used;
	char			*s;
	char			 more[] = "xxxx";
	char			 end[] = "x\nPING\n";

	s = repeat('x', SIMQ_LINE_MAX, "", NULL);
	proto_in_init(&in);
	assert_int_equal(proto_in_next(&in, s, SIMQ_LINE_MAX, &used, &tok,
	    &err), PROTO_ERR);
	free(s);
	/* The rest of the line is consumed as it comes, never held. */
	assert_int_equal(proto_in_next(&in, more, 4, &used, &tok, &err),
	    PROTO_NEED);
	assert_int_equal(used, 4);
	assert_int_equal(proto_in_want(&in), 1);
	/* And the line after it comes out of the same call. */
	assert_int_equal(proto_in_next(&in, end, 7, &used, &tok, &err),
	    PROTO_LINE);
	assert_int_equal(used, 7);
	assert_true(tok.p == end + 2 && tok.len == 4);
}

static void
test_frame_body(void **state)
{
	static const char	 s[] = "BATCH 5\r\nhello\r\nPING\r\n";
	struct run		 one, bytes;

	assert_same_runs(s, strlen(s), &one, &bytes);
	assert_int_equal(one.n, 3);
	assert_line(&one, 0, "BATCH 5", PERR_NONE);
	assert_int_equal(one.r[0].bodylen, 5);
	assert_body(&one, 1, "hello", 5);
	assert_line(&one, 2, "PING", PERR_NONE);
	run_free(&one);
	run_free(&bytes);
}

static void
test_frame_body_lf(void **state)
{
	static const char	 s[] = "BATCH 5\nhello\nPING\n";
	struct run		 one, bytes;

	assert_same_runs(s, strlen(s), &one, &bytes);
	assert_int_equal(one.n, 3);
	assert_body(&one, 1, "hello", 5);
	assert_line(&one, 2, "PING", PERR_NONE);
	run_free(&one);
	run_free(&bytes);
}

static void
test_frame_body_binary(void **state)
{
	static const char	 s[] =
	    "FINISH 1 1 out=8 8\r\n\r\n\0\n\r\xff\n\r\r\nPING\n";
	struct run		 one, bytes;

	assert_same_runs(s, sizeof s - 1, &one, &bytes);
	assert_int_equal(one.n, 3);
	assert_line(&one, 0, "FINISH 1 1 out=8 8", PERR_NONE);
	assert_body(&one, 1, "\r\n\0\n\r\xff\n\r", 8);
	assert_line(&one, 2, "PING", PERR_NONE);
	run_free(&one);
	run_free(&bytes);
}

static void
test_frame_body_empty(void **state)
{
	static const char	 s[] = "BATCH 0\r\n\r\nBATCH 0\n\nPING\n";
	struct run		 one, bytes;

	assert_same_runs(s, strlen(s), &one, &bytes);
	assert_int_equal(one.n, 5);
	assert_body(&one, 1, "", 0);
	assert_body(&one, 3, "", 0);
	assert_line(&one, 4, "PING", PERR_NONE);
	run_free(&one);
	run_free(&bytes);
}

static void
test_frame_body_truncated(void **state)
{
	struct proto_in		 in;
	struct proto_word	 tok;
	enum proto_err		 err;
	size_t			 used, i;
	char			 buf[] = "hello\r\n";

	proto_in_init(&in);
	proto_in_body(&in, 5, 10);
	assert_int_equal(proto_in_want(&in), 7);
	/* Every proper prefix of body and terminator: wait, keep all. */
	for (i = 0; i < 7; i++) {
		assert_int_equal(proto_in_next(&in, buf, i, &used, &tok, &err),
		    PROTO_NEED);
		assert_int_equal(used, 0);
		assert_true(i < proto_in_want(&in));
	}
	assert_int_equal(proto_in_next(&in, buf, 7, &used, &tok, &err),
	    PROTO_BODY);
	assert_int_equal(used, 7);
	assert_true(tok.p == buf && tok.len == 5);
	assert_int_equal(proto_in_want(&in), SIMQ_LINE_MAX);
}

static void
test_frame_body_bad_term(void **state)
{
	/* The body is "hello"; "PING\n" right after it is no terminator,
	 * and is skipped with it. */
	static const char	 s[] = "BATCH 5\nhelloPING\nQUIT\n";
	struct run		 one, bytes;

	assert_same_runs(s, strlen(s), &one, &bytes);
	assert_int_equal(one.n, 3);
	assert_line(&one, 0, "BATCH 5", PERR_NONE);
	assert_err(&one, 1, PERR_BODY);
	assert_line(&one, 2, "QUIT", PERR_NONE);
	run_free(&one);
	run_free(&bytes);
}

static void
test_frame_body_bad_cr(void **state)
{
	static const char	 s[] = "BATCH 5\r\nhello\rX\nQUIT\r\n";
	struct run		 one, bytes;

	assert_same_runs(s, strlen(s), &one, &bytes);
	assert_int_equal(one.n, 3);
	assert_err(&one, 1, PERR_BODY);
	assert_line(&one, 2, "QUIT", PERR_NONE);
	run_free(&one);
	run_free(&bytes);
}

static void
test_frame_body_bad_term_empty(void **state)
{
	/* A zero-length body followed by a line: the error consumes
	 * nothing but the framer still moves on. */
	static const char	 s[] = "BATCH 0\nPING\nQUIT\n";
	struct run		 one, bytes;

	assert_same_runs(s, strlen(s), &one, &bytes);
	assert_int_equal(one.n, 3);
	assert_err(&one, 1, PERR_BODY);
	assert_line(&one, 2, "QUIT", PERR_NONE);
	run_free(&one);
	run_free(&bytes);
}

static void
test_frame_body_length_bad(void **state)
{
	static const char	 s[] =
	    "BATCH abc\r\nPING\r\nBATCH 05\nBATCH -1\nBATCH 1e3\n"
	    "BATCH 99999999999999999999999\nQUIT\n";
	struct run		 one, bytes;
	int			 i;

	assert_same_runs(s, strlen(s), &one, &bytes);
	assert_int_equal(one.n, 7);
	assert_line(&one, 0, "BATCH abc", PERR_BADREQ);
	assert_line(&one, 1, "PING", PERR_NONE);
	for (i = 2; i < 6; i++) {
		assert_int_equal(one.r[i].err, PERR_BADREQ);
		assert_int_equal(one.r[i].bodylen, 0);
	}
	assert_line(&one, 6, "QUIT", PERR_NONE);
	run_free(&one);
	run_free(&bytes);
}

static void
test_frame_oversized_direct(void **state)
{
	struct proto_in		 in;
	struct proto_word	 tok;
	enum proto_err		 err;
	size_t			 used;
	char			 buf[] = "0123456789\r\nPING\n";

	proto_in_init(&in);
	proto_in_body(&in, 10, 5);
	assert_int_equal(proto_in_next(&in, buf, 3, &used, &tok, &err),
	    PROTO_NEED);
	assert_int_equal(used, 3);
	assert_int_equal(proto_in_next(&in, buf + 3, 8, &used, &tok, &err),
	    PROTO_NEED);
	assert_int_equal(used, 7);
	/* The CR alone cannot tell: it is kept. */
	assert_int_equal(proto_in_want(&in), 2);
	assert_int_equal(proto_in_next(&in, buf + 10, 1, &used, &tok, &err),
	    PROTO_NEED);
	assert_int_equal(used, 0);
	assert_int_equal(proto_in_next(&in, buf + 10, 7, &used, &tok, &err),
	    PROTO_ERR);
	assert_int_equal(err, PERR_BODYSIZE);
	assert_int_equal(used, 2);
	assert_int_equal(proto_in_next(&in, buf + 12, 5, &used, &tok, &err),
	    PROTO_LINE);
	assert_true(tok.len == 4 && memcmp(tok.p, "PING", 4) == 0);
}

static void
test_frame_oversized_bad_term(void **state)
{
	struct proto_in		 in;
	struct proto_word	 tok;
	enum proto_err		 err;
	size_t			 used;
	char			 buf[] = "abcZZZ\nPING\n";

	proto_in_init(&in);
	proto_in_body(&in, 3, 2);
	assert_int_equal(proto_in_next(&in, buf, 12, &used, &tok, &err),
	    PROTO_ERR);
	assert_int_equal(err, PERR_BODYSIZE);
	assert_int_equal(used, 3);
	/* One error; the junk up to the LF goes silently. */
	assert_int_equal(proto_in_next(&in, buf + 3, 9, &used, &tok, &err),
	    PROTO_LINE);
	assert_int_equal(used, 9);
	assert_true(tok.len == 4 && memcmp(tok.p, "PING", 4) == 0);
}

static void
check_oversized_finish(size_t chunk)
{
	static const char	 head[] =
	    "FINISH 1 1 out=0 err=0 res=0 196609\r\n";
	struct run		 r;
	size_t			 hl = strlen(head), n = SIMQ_FINISH_MAX + 1;
	size_t			 len;
	char			*s;

	len = hl + n + 2 + 6;
	s = malloc(len + 1);
	assert_non_null(s);
	memcpy(s, head, hl);
	memset(s + hl, '\n', n);
	memcpy(s + hl + n, "\r\nPING\r\n", 9);
	feed(&r, s, len, chunk);
	assert_int_equal(r.n, 3);
	assert_line(&r, 0, "FINISH 1 1 out=0 err=0 res=0 196609",
	    PERR_BODYSIZE);
	assert_int_equal(r.r[0].bodylen, n);
	assert_err(&r, 1, PERR_BODYSIZE);
	assert_line(&r, 2, "PING", PERR_NONE);
	assert_int_equal(r.left, 0);
	if (chunk != 0) {
		/* Swallowed as it came: never more held than part of a
		 * line. */
		assert_true(r.maxheld < hl);
		assert_true(r.skips > 0);
	}
	run_free(&r);
	free(s);
}

static void
test_frame_oversized_whole(void **state)
{
	check_oversized_finish(0);
}

static void
test_frame_oversized_chunks(void **state)
{
	check_oversized_finish(1000);
	check_oversized_finish(4096);
}

static void
test_frame_oversized_bytes(void **state)
{
	check_oversized_finish(1);
}

static void
test_frame_body_at_limit(void **state)
{
	static const char	 head[] = "FINISH 1 1 196608\n";
	struct run		 r;
	size_t			 hl = strlen(head), n = SIMQ_FINISH_MAX;
	size_t			 len;
	char			*s;

	len = hl + n + 1 + 5;
	s = malloc(len + 1);
	assert_non_null(s);
	memcpy(s, head, hl);
	memset(s + hl, 'b', n);
	memcpy(s + hl + n, "\nPING\n", 7);
	feed(&r, s, len, 1000);
	assert_int_equal(r.n, 3);
	assert_line(&r, 0, "FINISH 1 1 196608", PERR_NONE);
	assert_int_equal(r.r[1].ev, PROTO_BODY);
	assert_int_equal(r.r[1].len, n);
	assert_line(&r, 2, "PING", PERR_NONE);
	run_free(&r);
	free(s);
}

static void
test_frame_body_want_overflow(void **state)
{
	struct proto_in		 in;
	struct proto_word	 tok;
	enum proto_err		 err;
	size_t			 used;
	char			 buf[] = "abc";

	/* A length whose n + 2 would wrap is swallowed, never held. */
	proto_in_init(&in);
	proto_in_body(&in, SIZE_MAX, SIZE_MAX);
	assert_int_equal(proto_in_want(&in), 1);
	assert_int_equal(proto_in_next(&in, buf, 3, &used, &tok, &err),
	    PROTO_NEED);
	assert_int_equal(used, 3);
}

/*
 * Requests.
 */

static struct proto_req	 req;
static char		 msg[512];

static enum proto_err
parse(const char *s)
{
	static char	 line[SIMQ_LINE_MAX];

	strcpy(line, s);
	return (proto_req_parse(&req, line, strlen(line), msg, sizeof msg));
}

static void
test_cmd_table(void **state)
{
	const struct proto_cmdinfo	*ci, *cj;
	int				 c, d;

	assert_null(proto_cmd_info(CMD_NONE));
	assert_null(proto_cmd_info(CMD__COUNT));
	for (c = CMD_NONE + 1; c < CMD__COUNT; c++) {
		ci = proto_cmd_info(c);
		assert_non_null(ci);
		assert_non_null(ci->name);
		assert_non_null(ci->usage);
		assert_true(strncmp(ci->usage, ci->name,
		    strlen(ci->name)) == 0);
		assert_true(ci->minargs >= 0);
		assert_true(ci->maxargs == -1 || ci->maxargs >= ci->minargs);
		if (ci->body != PROTO_BODY_NONE)
			assert_true(ci->bodymax > 0 && ci->minargs >= 1);
		else
			assert_int_equal(ci->bodymax, 0);
		for (d = CMD_NONE + 1; d < c; d++) {
			cj = proto_cmd_info(d);
			assert_true(strcmp(ci->name, cj->name) != 0);
		}
	}
	assert_int_equal(proto_cmd_info(CMD_BATCH)->bodymax, SIMQ_BATCH_MAX);
	assert_int_equal(proto_cmd_info(CMD_FINISH)->bodymax,
	    SIMQ_FINISH_MAX);
}

static void
test_req_verbs(void **state)
{
	assert_int_equal(parse("PING"), PERR_NONE);
	assert_int_equal(req.cmd, CMD_PING);
	assert_int_equal(parse("ping"), PERR_NONE);
	assert_int_equal(req.cmd, CMD_PING);
	assert_int_equal(parse("\t PiNg  "), PERR_NONE);
	assert_int_equal(req.cmd, CMD_PING);
	assert_int_equal(parse("heartbeat 17:1"), PERR_NONE);
	assert_int_equal(req.cmd, CMD_HEARTBEAT);
	assert_int_equal(req.nargs, 1);
	assert_true(proto_word_is(&req.args[0], "17:1"));
	/* Only the verb ignores case. */
	assert_int_equal(parse("pause Sims"), PERR_NONE);
	assert_true(proto_word_is(&req.args[0], "Sims"));
}

static void
test_req_unknown(void **state)
{
	assert_int_equal(parse("FROB 1 2"), PERR_UNKNOWN);
	assert_int_equal(req.cmd, CMD_NONE);
	assert_non_null(strstr(msg, "FROB"));
	assert_int_equal(parse("PINGX"), PERR_UNKNOWN);
	assert_int_equal(parse("PIN"), PERR_UNKNOWN);
	assert_int_equal(parse("P\xc3\x8fNG"), PERR_UNKNOWN);
	/* Bytes not fit to echo are not echoed. */
	assert_int_equal(parse("\x01\x02"), PERR_UNKNOWN);
	assert_null(strchr(msg, '\x01'));
	assert_int_equal(parse(""), PERR_UNKNOWN);
	assert_int_equal(req.nwords, 0);
	assert_int_equal(parse(" \t "), PERR_UNKNOWN);
	assert_int_equal(req.nwords, 0);
}

/* The line "VERB" and n arguments: "1", or "0" for a body length. */
static enum proto_err
parse_n(const struct proto_cmdinfo *ci, int n)
{
	static char	 line[SIMQ_LINE_MAX];
	size_t		 o;
	int		 k;

	o = (size_t)sprintf(line, "%s", ci->name);
	for (k = 0; k < n; k++)
		o += (size_t)sprintf(line + o, k == n - 1 &&
		    ci->body != PROTO_BODY_NONE ? " 0" : " 1");
	return (proto_req_parse(&req, line, o, msg, sizeof msg));
}

static void
test_req_arity(void **state)
{
	const struct proto_cmdinfo	*ci;
	int				 c, i, n, tries[5];

	for (c = CMD_NONE + 1; c < CMD__COUNT; c++) {
		ci = proto_cmd_info(c);
		tries[0] = ci->minargs - 1;
		tries[1] = ci->minargs;
		tries[2] = ci->minargs + 1;
		tries[3] = ci->maxargs >= 0 ? ci->maxargs : ci->minargs + 3;
		tries[4] = ci->maxargs >= 0 ? ci->maxargs + 1 : -1;
		for (i = 0; i < 5; i++) {
			if ((n = tries[i]) < 0)
				continue;
			if (n < ci->minargs || (ci->maxargs >= 0 &&
			    n > ci->maxargs)) {
				if (parse_n(ci, n) != PERR_BADREQ)
					fail_msg("%s with %d args accepted",
					    ci->name, n);
				if (n + 1 <= SIMQ_WORDS_MAX)
					assert_non_null(strstr(msg, ci->usage));
			} else {
				if (parse_n(ci, n) != PERR_NONE)
					fail_msg("%s with %d args: %s",
					    ci->name, n, msg);
				assert_int_equal(req.cmd, c);
				assert_int_equal(req.nargs, n -
				    (ci->body != PROTO_BODY_NONE));
				assert_int_equal(req.nwords, n + 1);
			}
		}
	}
}

static void
test_req_arity_examples(void **state)
{
	assert_int_equal(parse("HELLO"), PERR_BADREQ);
	assert_int_equal(parse("HELLO 1 tok extra"), PERR_BADREQ);
	assert_int_equal(parse("PING now"), PERR_BADREQ);
	assert_int_equal(parse("SUBMIT --"), PERR_BADREQ);
	assert_int_equal(parse("SUBMIT -- ./sim"), PERR_NONE);
	assert_int_equal(parse("TAKE 4 10000"), PERR_BADREQ);
	assert_int_equal(parse("TAKE 4 10000 a ahead=2"), PERR_NONE);
	assert_int_equal(parse("TAKE 4 10000 a ahead=2 cpus=4 gpus=1 "
	    "mem=1024 time=60000"), PERR_NONE);
	assert_int_equal(parse("TAKE 4 10000 a ahead=2 cpus=4 gpus=1 "
	    "mem=1024 time=60000 ending=17:1,18_5:2"), PERR_NONE);
	assert_int_equal(parse("TAKE 4 10000 a ahead=2 cpus=4 gpus=1 "
	    "mem=1024 time=60000 ending=17:1 x=1"), PERR_BADREQ);
	assert_int_equal(parse("FINISH 17 6"), PERR_BADREQ);
	assert_int_equal(req.bodylen, 0);
	assert_int_equal(parse("OUTPUT 17"), PERR_BADREQ);
	assert_int_equal(parse("LIST q=a state=done after=1 limit=2 x"),
	    PERR_BADREQ);
	assert_int_equal(parse("STATUS"), PERR_BADREQ);
	assert_int_equal(parse("WAIT 1000"), PERR_BADREQ);
	assert_int_equal(parse("WORKER"), PERR_BADREQ);
	assert_int_equal(parse("WORKER n host=h slots=1 lease=1000 pid=1 "
	    "queues=a,b"), PERR_NONE);
	assert_int_equal(parse("WORKER n host=h slots=1 lease=1000 pid=1 "
	    "queues=a,b cpus=4 gpus=2 mem=1024"), PERR_NONE);
	assert_int_equal(parse("WORKER n a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 "
	    "i=9"), PERR_BADREQ);
}

static void
test_req_body(void **state)
{
	assert_int_equal(parse("BATCH q=sims 36"), PERR_NONE);
	assert_int_equal(req.cmd, CMD_BATCH);
	assert_int_equal(req.bodylen, 36);
	assert_int_equal(req.nargs, 1);
	assert_true(proto_word_is(&req.args[0], "q=sims"));
	assert_int_equal(parse("FINISH 17 1 exit=0 out=6 err=0 res=0 6"),
	    PERR_NONE);
	assert_int_equal(req.bodylen, 6);
	assert_int_equal(req.nargs, 6);
	assert_true(proto_word_is(&req.args[0], "17"));
	assert_true(proto_word_is(&req.args[5], "res=0"));
	assert_int_equal(parse("BATCH 2097152"), PERR_NONE);
	assert_int_equal(req.bodylen, SIMQ_BATCH_MAX);
	assert_int_equal(parse("FINISH 1 1 196608"), PERR_NONE);
	/* A body command's non-body words carry no length. */
	assert_int_equal(parse("SUBMIT -- 5"), PERR_NONE);
	assert_int_equal(req.bodylen, 0);
}

static void
test_req_body_length_bad(void **state)
{
	static const char *const bad[] = {
		"BATCH x", "BATCH -1", "BATCH 01", "BATCH 1.5", "BATCH +3",
		"BATCH 18446744073709551616", "BATCH q=a", "FINISH 1 1 6x",
	};
	size_t	 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (parse(bad[i]) != PERR_BADREQ)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(req.bodylen, 0);
		assert_non_null(strstr(msg, "body length"));
	}
}

static void
test_req_body_too_large(void **state)
{
	assert_int_equal(parse("BATCH 2097153"), PERR_BODYSIZE);
	assert_int_equal(req.cmd, CMD_BATCH);
	assert_int_equal(req.bodylen, SIMQ_BATCH_MAX + 1);
	assert_int_equal(parse("FINISH 1 1 196609"), PERR_BODYSIZE);
	assert_int_equal(req.bodylen, SIMQ_FINISH_MAX + 1);
	assert_int_equal(parse("BATCH 18446744073709551615"), PERR_BODYSIZE);
	assert_true(req.bodylen == SIZE_MAX);
	assert_non_null(strstr(msg, "at most"));
}

static void
test_req_words_max(void **state)
{
	static char	 line[SIMQ_LINE_MAX];
	size_t		 n;
	int		 i;

	n = (size_t)sprintf(line, "STATUS");
	for (i = 0; i < SIMQ_WORDS_MAX - 1; i++)
		n += (size_t)sprintf(line + n, " 1");
	assert_int_equal(proto_req_parse(&req, line, n, msg, sizeof msg),
	    PERR_NONE);
	assert_int_equal(req.nargs, SIMQ_WORDS_MAX - 1);
	n += (size_t)sprintf(line + n, " 1");
	assert_int_equal(proto_req_parse(&req, line, n, msg, sizeof msg),
	    PERR_BADREQ);
	assert_int_equal(req.cmd, CMD_STATUS);
	memcpy(line, "FROBNI", 6);
	assert_int_equal(proto_req_parse(&req, line, n, msg, sizeof msg),
	    PERR_UNKNOWN);
}

static void
test_req_msg_bounds(void **state)
{
	char	 line[] = "TAKE 1";
	char	 small[8];

	memset(small, 'z', sizeof small);
	assert_int_equal(proto_req_parse(&req, line, strlen(line), small,
	    sizeof small), PERR_BADREQ);
	assert_int_equal(strlen(small), sizeof small - 1);
	assert_int_equal(proto_req_parse(&req, line, strlen(line), NULL, 0),
	    PERR_BADREQ);
}

/*
 * Job options.
 */

static struct proto_jobopts	 jo;

/* Parses the options in s (space-separated words). */
static enum proto_err
opts(const char *s)
{
	static char		 line[SIMQ_LINE_MAX];
	static struct proto_word w[SIMQ_WORDS_MAX];
	int			 n;

	strcpy(line, s);
	n = proto_split(line, strlen(line), w, SIMQ_WORDS_MAX);
	assert_true(n >= 0);
	return (proto_jobopts_parse(&jo, w, n, msg, sizeof msg));
}

static void
assert_opts_bad(const char *s, const char *name)
{
	if (opts(s) != PERR_BADREQ)
		fail_msg("options \"%s\" accepted", s);
	if (strstr(msg, name) == NULL)
		fail_msg("options \"%s\": \"%s\" does not name %s", s, msg,
		    name);
}

static void
test_opts_defaults(void **state)
{
	assert_int_equal(opts(""), PERR_NONE);
	assert_true(proto_word_is(&jo.queue, "default"));
	assert_true(jo.prio == 0 && jo.timeout_ms == 0 && jo.retries == 0 &&
	    jo.delay_ms == 0);
	assert_int_equal(jo.name.len, 0);
	assert_int_equal(jo.cwd.len, 0);
	assert_int_equal(jo.output.len, 0);
	assert_int_equal(jo.has_array, 0);
	assert_int_equal(jo.ndeps, 0);
	assert_int_equal(jo.nenv, 0);
}

static void
test_opts_all_keys(void **state)
{
	assert_int_equal(opts("q=sims pri=-5 timeout=7200000 retries=3 "
	    "delay=1000 name=my%20job cwd=/data output=/tmp/%25A.out "
	    "array=1-10:2%253 after=17,18_5 env=A=1 "
	    "env=PATH=/bin:/usr/bin"), PERR_NONE);
	assert_true(proto_word_is(&jo.queue, "sims"));
	assert_true(jo.prio == -5);
	assert_true(jo.timeout_ms == 7200000);
	assert_true(jo.retries == 3);
	assert_true(jo.delay_ms == 1000);
	assert_true(proto_word_is(&jo.name, "my job"));
	assert_true(proto_word_is(&jo.cwd, "/data"));
	assert_true(proto_word_is(&jo.output, "/tmp/%A.out"));
	assert_int_equal(jo.has_array, 1);
	assert_true(jo.array.first == 1 && jo.array.last == 10 &&
	    jo.array.step == 2 && jo.array.maxrun == 3);
	assert_int_equal(jo.ndeps, 2);
	assert_true(jo.deps[0].id == 17 && jo.deps[0].index == SIMQ_NOINDEX);
	assert_true(jo.deps[1].id == 18 && jo.deps[1].index == 5);
	assert_int_equal(jo.nenv, 2);
	assert_true(proto_word_is(&jo.env[0], "A=1"));
	assert_true(proto_word_is(&jo.env[1], "PATH=/bin:/usr/bin"));
}

static void
test_opts_bounds(void **state)
{
	assert_int_equal(opts("pri=-1000000000 retries=1000 "
	    "timeout=316224000000 delay=0"), PERR_NONE);
	assert_true(jo.prio == SIMQ_PRIO_MIN);
	assert_true(jo.retries == SIMQ_RETRIES_MAX);
	assert_true(jo.timeout_ms == SIMQ_MS_MAX);
	assert_int_equal(opts("pri=1000000000 delay=316224000000"),
	    PERR_NONE);
	assert_true(jo.prio == SIMQ_PRIO_MAX);
	assert_true(jo.delay_ms == SIMQ_MS_MAX);
}

static void
test_opts_strings(void **state)
{
	/* Empty strings, and encoded '=' inside env. */
	assert_int_equal(opts("name=% cwd=% output=% env=A%3Db env=B="),
	    PERR_NONE);
	assert_int_equal(jo.name.len, 0);
	assert_int_equal(jo.cwd.len, 0);
	assert_int_equal(jo.output.len, 0);
	assert_true(proto_word_is(&jo.env[0], "A=b"));
	assert_true(proto_word_is(&jo.env[1], "B="));
	assert_int_equal(opts("name=\xc3\xa9t\xc3\xa9"), PERR_NONE);
	assert_int_equal(jo.name.len, 5);
}

static void
test_opts_not_kv(void **state)
{
	assert_opts_bad("sims", "sims");
	assert_opts_bad("q=a ./sim", "./sim");
}

static void
test_opts_unknown(void **state)
{
	assert_opts_bad("foo=1", "foo");
	assert_opts_bad("Q=a", "Q");
	assert_opts_bad("=a", "unknown option");
	assert_opts_bad("queue=a", "queue");
}

static void
test_opts_duplicate(void **state)
{
	static const char *const dup[] = {
		"q=a q=b", "pri=1 pri=2", "timeout=1 timeout=1",
		"retries=1 retries=2", "delay=1 delay=2", "name=a name=b",
		"cwd=/ cwd=/", "output=a output=b", "array=1 array=2",
		"after=1 after=2",
	};
	char	 key[16];
	size_t	 i;

	for (i = 0; i < sizeof dup / sizeof dup[0]; i++) {
		snprintf(key, sizeof key, "%.*s", (int)strcspn(dup[i], "="),
		    dup[i]);
		assert_opts_bad(dup[i], key);
		assert_non_null(strstr(msg, "twice"));
	}
}

static void
test_opts_bad_numbers(void **state)
{
	assert_opts_bad("pri=1000000001", "pri");
	assert_opts_bad("pri=-1000000001", "pri");
	assert_opts_bad("pri=abc", "pri");
	assert_opts_bad("pri=%", "pri");
	assert_opts_bad("pri=+1", "pri");
	assert_opts_bad("pri=-0", "pri");
	assert_opts_bad("pri=01", "pri");
	assert_opts_bad("timeout=-1", "timeout");
	assert_opts_bad("timeout=316224000001", "timeout");
	assert_opts_bad("timeout=1s", "timeout");
	assert_opts_bad("timeout=18446744073709551616", "timeout");
	assert_opts_bad("retries=1001", "retries");
	assert_opts_bad("retries=-1", "retries");
	assert_opts_bad("retries=4294967297", "retries");
	assert_opts_bad("delay=x", "delay");
	assert_opts_bad("delay=%20", "delay");
}

static void
test_opts_bad_queue(void **state)
{
	char	*s;

	assert_opts_bad("q=%", "q");
	assert_opts_bad("q=a%20b", "q");
	assert_opts_bad("q=a/b", "q");
	assert_opts_bad("q=node:1", "q");
	s = repeat('x', SIMQ_NAME_MAX + 2, "", NULL);
	memcpy(s, "q=", 2);
	assert_int_equal(opts(s), PERR_NONE);
	assert_int_equal(jo.queue.len, SIMQ_NAME_MAX);
	free(s);
	s = repeat('x', SIMQ_NAME_MAX + 3, "", NULL);
	memcpy(s, "q=", 2);
	assert_opts_bad(s, "q");
	free(s);
}

static void
test_opts_bad_strings(void **state)
{
	char	*s;

	s = repeat('x', 5 + SIMQ_NAME_MAX, "", NULL);
	memcpy(s, "name=", 5);
	assert_int_equal(opts(s), PERR_NONE);
	free(s);
	s = repeat('x', 5 + SIMQ_NAME_MAX + 1, "", NULL);
	memcpy(s, "name=", 5);
	assert_opts_bad(s, "name");
	free(s);
	s = repeat('x', 4 + 4097, "", NULL);
	memcpy(s, "cwd=", 4);
	assert_opts_bad(s, "cwd");
	free(s);
	s = repeat('x', 7 + 4097, "", NULL);
	memcpy(s, "output=", 7);
	assert_opts_bad(s, "output");
	free(s);
	assert_opts_bad("name=%zz", "name");
	assert_opts_bad("cwd=/a%2", "cwd");
	assert_opts_bad("cwd=/a%00b", "cwd");
	assert_opts_bad("env=A=%00", "env");
	assert_opts_bad("output=%00", "output");
}

static void
test_opts_bad_array(void **state)
{
	assert_opts_bad("array=5-1", "array");
	assert_opts_bad("array=1-10:0", "array");
	assert_opts_bad("array=x", "array");
	assert_opts_bad("array=%", "array");
	/* A raw '%' is an escape on the wire: "%3" is a bad one. */
	assert_opts_bad("array=1-10%3", "array");
}

static void
test_opts_bad_after(void **state)
{
	assert_opts_bad("after=%", "after");
	assert_opts_bad("after=17,", "after");
	assert_opts_bad("after=,17", "after");
	assert_opts_bad("after=17,,18", "after");
	assert_opts_bad("after=0", "after");
	assert_opts_bad("after=17_x", "after");
	assert_opts_bad("after=a", "after");
	assert_opts_bad("after=17%2018", "after");
	assert_opts_bad("after=bogus:17", "after");
	assert_opts_bad("after=any:", "after");
	assert_opts_bad("after=:17", "after");
	assert_opts_bad("after=any:failed:17", "after");
	assert_opts_bad("after=OK:17", "after");
}

static void
test_opts_after_kinds(void **state)
{
	assert_int_equal(opts("after=17,ok:18,any:19_3,failed:20"), PERR_NONE);
	assert_int_equal(jo.ndeps, 4);
	assert_int_equal(jo.depkind[0], SIMQ_DEP_OK);
	assert_int_equal(jo.depkind[1], SIMQ_DEP_OK);
	assert_int_equal(jo.depkind[2], SIMQ_DEP_ANY);
	assert_true(jo.deps[2].id == 19 && jo.deps[2].index == 3);
	assert_int_equal(jo.depkind[3], SIMQ_DEP_FAILED);
	assert_true(jo.deps[3].id == 20);
	assert_string_equal(proto_depkind_name(SIMQ_DEP_ANY), "any");
}

static void
test_idrange(void **state)
{
	struct simq_idrange	r;
	const char		*bad[] = { "17", "17_5", "17_[", "17_[]",
	    "17_[1-]", "17_[-3]", "17_[3-1]", "17_[1,]", "17_[,1]", "17_1-",
	    "17_[1-3", "17_1-3]", "0_[1-3]", "_[1-3]", "17_[a]", "17_1,2",
	    "17_[1-2-3]", "17_[4294967295]" };
	size_t			 i;

	assert_int_equal(proto_parse_idrange("17_[1-10,12,20-30]", 18, &r), 0);
	assert_true(r.id == 17 && r.n == 3);
	assert_true(r.lo[0] == 1 && r.hi[0] == 10);
	assert_true(r.lo[1] == 12 && r.hi[1] == 12);
	assert_true(r.lo[2] == 20 && r.hi[2] == 30);
	assert_int_equal(proto_parse_idrange("17_[5]", 6, &r), 0);
	assert_true(r.n == 1 && r.lo[0] == 5 && r.hi[0] == 5);
	assert_int_equal(proto_parse_idrange("17_1-10", 7, &r), 0);
	assert_true(r.n == 1 && r.lo[0] == 1 && r.hi[0] == 10);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (proto_parse_idrange(bad[i], strlen(bad[i]), &r) == 0)
			fail_msg("range \"%s\" accepted", bad[i]);
}

static void
check_after_count(int n, enum proto_err want)
{
	char	*s;
	size_t	 o;
	int	 i;

	s = malloc(6 + (size_t)n * 6 + 1);
	assert_non_null(s);
	o = (size_t)sprintf(s, "after=");
	for (i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, "%s%d", i ? "," : "", i + 1);
	if (want == PERR_NONE) {
		assert_int_equal(opts(s), PERR_NONE);
		assert_int_equal(jo.ndeps, n);
		assert_true(jo.deps[n - 1].id == (uint64_t)n);
	} else
		assert_opts_bad(s, "after");
	free(s);
}

static void
test_opts_after_max(void **state)
{
	check_after_count(SIMQ_DEPS_MAX, PERR_NONE);
	check_after_count(SIMQ_DEPS_MAX + 1, PERR_BADREQ);
}

static void
test_opts_bad_env(void **state)
{
	assert_opts_bad("env=FOO", "env");
	assert_opts_bad("env==x", "env");
	assert_opts_bad("env=%", "env");
	assert_opts_bad("env=%3Dx", "env");
	assert_opts_bad("env=A=1 env=B", "env");
}

static void
check_env_count(int n, enum proto_err want)
{
	char	*s;
	size_t	 o = 0;
	int	 i;

	s = malloc((size_t)n * 16 + 1);
	assert_non_null(s);
	s[0] = '\0';
	for (i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, "%senv=V%d=1", i ? " " : "", i);
	if (want == PERR_NONE) {
		assert_int_equal(opts(s), PERR_NONE);
		assert_int_equal(jo.nenv, n);
	} else
		assert_opts_bad(s, "env");
	free(s);
}

/*
 * Files that travel with jobs: hashes, names, globs, file= values, and
 * the job options that carry them.
 */

#define H64 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static void
test_hash_words(void **state)
{
	uint8_t	 h[SIMQ_HASH_LEN];
	char	 hex[SIMQ_HASH_HEX + 1];

	assert_int_equal(proto_parse_hash(H64, strlen(H64), h), 0);
	assert_int_equal(h[0], 0x9f);
	assert_int_equal(h[31], 0x08);
	proto_format_hash(hex, h);
	assert_string_equal(hex, H64);
	/* One spelling: upper case, short, long, non-hex are refused. */
	assert_int_equal(proto_parse_hash("9F86d081884c7d659a2feaa0c55ad015"
	    "a3bf4f1b2b0b822cd15d6c15b0f00a08", 64, h), -1);
	assert_int_equal(proto_parse_hash(H64, 63, h), -1);
	assert_int_equal(proto_parse_hash(H64 "0", 65, h), -1);
	assert_int_equal(proto_parse_hash("g f86d081884c7d659a2feaa0c55ad015"
	    "a3bf4f1b2b0b822cd15d6c15b0f00a08", 64, h), -1);
	assert_int_equal(proto_parse_hash("", 0, h), -1);
}

static void
test_relpath(void **state)
{
	static const char *const good[] = {
		"a", "a.txt", "dir/a", "a/b/c.bin", "..a", "a..", ".hidden",
		"a/.b", "with space", "col:on", "x/...",
	};
	static const char *const bad[] = {
		"", "/", "/etc/passwd", "..", "../a", "a/..", "a/../b", ".",
		"./a", "a/.", "a//b", "a/", "//a",
	};
	char	*longp;
	size_t	 i, n;

	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		if (proto_relpath_why(good[i], strlen(good[i])) != NULL)
			fail_msg("name \"%s\" refused", good[i]);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (proto_relpath_why(bad[i], strlen(bad[i])) == NULL)
			fail_msg("name \"%s\" accepted", bad[i]);
	assert_non_null(proto_relpath_why("a\0b", 3));
	longp = repeat('a', SIMQ_PATH_MAX, "", &n);
	assert_null(proto_relpath_why(longp, n));
	free(longp);
	longp = repeat('a', SIMQ_PATH_MAX + 1, "", &n);
	assert_non_null(proto_relpath_why(longp, n));
	free(longp);
}

static void
test_glob(void **state)
{
	assert_null(proto_glob_why("*.csv", 5));
	assert_null(proto_glob_why("out/*", 5));
	assert_null(proto_glob_why("./x", 3));
	assert_null(proto_glob_why("a//b", 4));
	assert_non_null(proto_glob_why("", 0));
	assert_non_null(proto_glob_why("/tmp/*", 6));
	assert_non_null(proto_glob_why("../*", 4));
	assert_non_null(proto_glob_why("a/../*", 6));
	assert_non_null(proto_glob_why("a/..", 4));
	assert_non_null(proto_glob_why("a\0", 2));
}

/* Parses a file= value given as a C string (decoded). */
static const char *
file(const char *s, struct proto_file *f)
{
	static char	buf[SIMQ_PATH_MAX + 256];

	strcpy(buf, s);
	return proto_parse_file(buf, strlen(buf), f);
}

static void
test_file_value(void **state)
{
	struct proto_file	 f;
	char			 out[SIMQ_PATH_MAX + 256];
	size_t			 n;

	assert_null(file(H64 ":4:644:data/in.txt", &f));
	assert_int_equal(f.hash[0], 0x9f);
	assert_int_equal(f.size, 4);
	assert_int_equal(f.mode, 0644);
	assert_true(proto_word_is(&f.name, "data/in.txt"));
	/* The name is what follows the third colon. */
	assert_null(file(H64 ":0:755:a:b:c", &f));
	assert_int_equal(f.size, 0);
	assert_int_equal(f.mode, 0755);
	assert_true(proto_word_is(&f.name, "a:b:c"));
	assert_null(file(H64 ":9007199254740991:0:x", &f));
	assert_int_equal(f.size, SIMQ_BLOB_SIZE_MAX);
	assert_int_equal(f.mode, 0);
	/* Formatting gives the same bytes back. */
	n = proto_format_file(out, sizeof out, f.hash, 4, 0644, "a:b", 3);
	assert_int_equal(n, strlen(H64 ":4:644:a:b"));
	assert_string_equal(out, H64 ":4:644:a:b");

	assert_non_null(file("", &f));
	assert_non_null(file(H64, &f));
	assert_non_null(file(H64 ":4:644", &f));
	assert_non_null(file(H64 ":4:644:", &f));
	assert_non_null(file(H64 ":4:644:/abs", &f));
	assert_non_null(file(H64 ":4:644:../up", &f));
	assert_non_null(file(H64 ":4:644:a/./b", &f));
	assert_non_null(file(H64 ":04:644:x", &f));
	assert_non_null(file(H64 ":-4:644:x", &f));
	assert_non_null(file(H64 "::644:x", &f));
	assert_non_null(file(H64 ":9007199254740992:644:x", &f));
	assert_non_null(file(H64 ":4:0644:x", &f));
	assert_non_null(file(H64 ":4:1000:x", &f));
	assert_non_null(file(H64 ":4:648:x", &f));
	assert_non_null(file(H64 ":4::x", &f));
	assert_non_null(file("9F86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd1"
	    "5d6c15b0f00a08:4:644:x", &f));
	assert_non_null(file("abc:4:644:x", &f));
}

static void
test_files_dup(void **state)
{
	struct proto_file	 f[3];

	memset(f, 0, sizeof f);
	f[0].name.p = "a";
	f[0].name.len = 1;
	f[1].name.p = "ab";
	f[1].name.len = 2;
	f[2].name.p = "ab";
	f[2].name.len = 2;
	assert_int_equal(proto_files_dup(f, 2), -1);
	assert_int_equal(proto_files_dup(f, 3), 2);
}

static void
test_opts_files(void **state)
{
	assert_int_equal(opts("file=" H64 ":4:644:in.txt "
	    "file=" H64 ":4:755:bin/run%20me collect=*.csv collect=out/*"),
	    PERR_NONE);
	assert_int_equal(jo.nfiles, 2);
	assert_true(proto_word_is(&jo.files[0].name, "in.txt"));
	assert_int_equal(jo.files[1].mode, 0755);
	assert_true(proto_word_is(&jo.files[1].name, "bin/run me"));
	assert_int_equal(jo.ncollect, 2);
	assert_true(proto_word_is(&jo.collect[0], "*.csv"));
	assert_true(proto_word_is(&jo.collect[1], "out/*"));
	/* The name decodes with the word: %2F is a '/', checked after. */
	assert_int_equal(opts("file=" H64 ":4:644:a%2Fb"), PERR_NONE);
	assert_true(proto_word_is(&jo.files[0].name, "a/b"));

	assert_opts_bad("file=" H64 ":4:644:a file=" H64 ":5:644:a", "file");
	assert_opts_bad("file=" H64 ":4:644:..", "file");
	assert_opts_bad("file=" H64 ":4:644:%2Fetc%2Fpasswd", "file");
	assert_opts_bad("file=" H64 ":4:644:a%00b", "file");
	assert_opts_bad("file=" H64 ":4:644", "file");
	assert_opts_bad("collect=../*", "collect");
	assert_opts_bad("collect=/tmp/x", "collect");
	assert_opts_bad("collect=%", "collect");
	assert_int_equal(opts(""), PERR_NONE);
	assert_int_equal(jo.nfiles, 0);
	assert_int_equal(jo.ncollect, 0);
}

static void
test_opts_files_max(void **state)
{
	static char	 line[SIMQ_LINE_MAX * 2];
	static struct proto_word w[SIMQ_WORDS_MAX];
	size_t		 len = 0;
	int		 i, n;

	/* 1000 files parse (the line is made here, past the wire's bound:
	 * the limit is the parser's own); a 1001st is refused. */
	for (i = 0; i <= SIMQ_FILES_MAX; i++)
		len += (size_t)sprintf(line + len, "%sfile=" H64 ":1:644:f%d",
		    i ? " " : "", i);
	n = proto_split(line, len, w, SIMQ_WORDS_MAX);
	assert_int_equal(n, SIMQ_FILES_MAX + 1);
	assert_int_equal(proto_jobopts_parse(&jo, w, n - 1, msg, sizeof msg),
	    PERR_NONE);
	assert_int_equal(jo.nfiles, SIMQ_FILES_MAX);
	n = proto_split(line, len, w, SIMQ_WORDS_MAX);
	assert_int_equal(proto_jobopts_parse(&jo, w, n, msg, sizeof msg),
	    PERR_BADREQ);
	assert_non_null(strstr(msg, "1000"));
	len = 0;
	for (i = 0; i <= SIMQ_COLLECT_MAX; i++)
		len += (size_t)sprintf(line + len, "%scollect=p%d",
		    i ? " " : "", i);
	n = proto_split(line, len, w, SIMQ_WORDS_MAX);
	assert_int_equal(proto_jobopts_parse(&jo, w, n, msg, sizeof msg),
	    PERR_BADREQ);
	assert_non_null(strstr(msg, "64"));
}

static void
test_req_blob_verbs(void **state)
{
	static char	 line[256];

	strcpy(line, "have " H64);
	assert_int_equal(proto_req_parse(&req, line, strlen(line), msg,
	    sizeof msg), PERR_NONE);
	assert_int_equal(req.cmd, CMD_HAVE);
	strcpy(line, "PUT " H64 " 10 0 10");
	assert_int_equal(proto_req_parse(&req, line, strlen(line), msg,
	    sizeof msg), PERR_NONE);
	assert_int_equal(req.cmd, CMD_PUT);
	assert_int_equal(req.nargs, 3);
	assert_int_equal(req.bodylen, 10);
	sprintf(line, "PUT " H64 " 10 0 %u", SIMQ_CHUNK_MAX + 1);
	assert_int_equal(proto_req_parse(&req, line, strlen(line), msg,
	    sizeof msg), PERR_BODYSIZE);
	strcpy(line, "GET " H64 " 0 4194304");
	assert_int_equal(proto_req_parse(&req, line, strlen(line), msg,
	    sizeof msg), PERR_NONE);
	assert_int_equal(req.cmd, CMD_GET);
	strcpy(line, "GET " H64 " 0");
	assert_int_equal(proto_req_parse(&req, line, strlen(line), msg,
	    sizeof msg), PERR_BADREQ);
	strcpy(line, "HAVE");
	assert_int_equal(proto_req_parse(&req, line, strlen(line), msg,
	    sizeof msg), PERR_BADREQ);
}

static void
test_opts_env_max(void **state)
{
	check_env_count(SIMQ_ENV_MAX, PERR_NONE);
	check_env_count(SIMQ_ENV_MAX + 1, PERR_BADREQ);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u64_good),
		cmocka_unit_test(test_u64_empty),
		cmocka_unit_test(test_u64_sign),
		cmocka_unit_test(test_u64_leading_zeros),
		cmocka_unit_test(test_u64_overflow),
		cmocka_unit_test(test_u64_over_max),
		cmocka_unit_test(test_u64_junk),
		cmocka_unit_test(test_i64_good),
		cmocka_unit_test(test_i64_bad),
		cmocka_unit_test(test_duration_good),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_id_good),
		cmocka_unit_test(test_id_bad),
		cmocka_unit_test(test_id_format),
		cmocka_unit_test(test_array_good),
		cmocka_unit_test(test_array_bad),
		cmocka_unit_test(test_encode_examples),
		cmocka_unit_test(test_encode_all_bytes),
		cmocka_unit_test(test_encode_each_byte),
		cmocka_unit_test(test_encode_empty),
		cmocka_unit_test(test_decode_good),
		cmocka_unit_test(test_decode_bad),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_split_max),
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_word_is),
		cmocka_unit_test(test_err_names),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_frame_lines),
		cmocka_unit_test(test_frame_empty_lines),
		cmocka_unit_test(test_frame_no_terminator),
		cmocka_unit_test(test_frame_unterminated_long),
		cmocka_unit_test(test_frame_limit_lf_whole),
		cmocka_unit_test(test_frame_limit_lf_bytes),
		cmocka_unit_test(test_frame_limit_crlf_whole),
		cmocka_unit_test(test_frame_limit_crlf_bytes),
		cmocka_unit_test(test_frame_over_lf_whole),
		cmocka_unit_test(test_frame_over_lf_bytes),
		cmocka_unit_test(test_frame_over_crlf_whole),
		cmocka_unit_test(test_frame_over_crlf_bytes),
		cmocka_unit_test(test_frame_far_over),
		cmocka_unit_test(test_frame_skip_consumes),
		cmocka_unit_test(test_frame_body),
		cmocka_unit_test(test_frame_body_lf),
		cmocka_unit_test(test_frame_body_binary),
		cmocka_unit_test(test_frame_body_empty),
		cmocka_unit_test(test_frame_body_truncated),
		cmocka_unit_test(test_frame_body_bad_term),
		cmocka_unit_test(test_frame_body_bad_cr),
		cmocka_unit_test(test_frame_body_bad_term_empty),
		cmocka_unit_test(test_frame_body_length_bad),
		cmocka_unit_test(test_frame_oversized_direct),
		cmocka_unit_test(test_frame_oversized_bad_term),
		cmocka_unit_test(test_frame_oversized_whole),
		cmocka_unit_test(test_frame_oversized_chunks),
		cmocka_unit_test(test_frame_oversized_bytes),
		cmocka_unit_test(test_frame_body_at_limit),
		cmocka_unit_test(test_frame_body_want_overflow),
		cmocka_unit_test(test_cmd_table),
		cmocka_unit_test(test_req_verbs),
		cmocka_unit_test(test_req_unknown),
		cmocka_unit_test(test_req_arity),
		cmocka_unit_test(test_req_arity_examples),
		cmocka_unit_test(test_req_body),
		cmocka_unit_test(test_req_body_length_bad),
		cmocka_unit_test(test_req_body_too_large),
		cmocka_unit_test(test_req_words_max),
		cmocka_unit_test(test_req_msg_bounds),
		cmocka_unit_test(test_opts_defaults),
		cmocka_unit_test(test_opts_all_keys),
		cmocka_unit_test(test_opts_bounds),
		cmocka_unit_test(test_opts_strings),
		cmocka_unit_test(test_opts_not_kv),
		cmocka_unit_test(test_opts_unknown),
		cmocka_unit_test(test_opts_duplicate),
		cmocka_unit_test(test_opts_bad_numbers),
		cmocka_unit_test(test_opts_bad_queue),
		cmocka_unit_test(test_opts_bad_strings),
		cmocka_unit_test(test_opts_bad_array),
		cmocka_unit_test(test_opts_bad_after),
		cmocka_unit_test(test_opts_after_kinds),
		cmocka_unit_test(test_idrange),
		cmocka_unit_test(test_opts_after_max),
		cmocka_unit_test(test_opts_bad_env),
		cmocka_unit_test(test_opts_env_max),
		cmocka_unit_test(test_hash_words),
		cmocka_unit_test(test_relpath),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_file_value),
		cmocka_unit_test(test_files_dup),
		cmocka_unit_test(test_opts_files),
		cmocka_unit_test(test_opts_files_max),
		cmocka_unit_test(test_req_blob_verbs),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
