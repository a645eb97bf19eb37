/*
 * test_client.c: unit tests for the pure parts of simq(1): the shell-like
 * splitter of --batch files and its inverse, the formatting of
 * durations, sizes, times and the progress bar, and the parsing of
 * replies and building of requests.  The JSON writer is lib/'s
 * (test_lib.c).
 *
 * Linked with client/{split,fmt,wire,util}.c, lib/ and proto/ only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "simq.h"

/* The tests run in UTC so times print the same everywhere. */

/*
 * split
 */

/* Splits text and returns every command joined as "a|b|c" lines, or the
 * error message prefixed with "ERR ". The caller frees. */
static char *
split_all(const char *text)
{
	struct split	 sp;
	struct buf	 out;
	char		**argv;
	int		  argc, r, i;

	buf_init(&out);
	split_init(&sp, text, strlen(text));
	while ((r = split_next(&sp, &argv, &argc)) == 1) {
		assert_non_null(argv);
		assert_null(argv[argc]);
		for (i = 0; i < argc; i++) {
			if (i > 0)
				buf_put_u8(&out, '|');
			buf_put(&out, argv[i], strlen(argv[i]));
		}
		buf_put_u8(&out, '\n');
		split_free(argv);
	}
	if (r < 0) {
		buf_reset(&out);
		buf_put(&out, "ERR ", 4);
		buf_put(&out, sp.err, strlen(sp.err));
	}
	buf_put_u8(&out, 0);
	return (char *)out.p;
}

static void
check_split(const char *text, const char *want)
{
	char	*got = split_all(text);

	assert_string_equal(got, want);
	free(got);
}

static void
test_split_words(void **state)
{
	check_split("", "");
	check_split("\n\n  \t\n", "");
	check_split("a", "a\n");
	check_split("./sim --seed 3\n", "./sim|--seed|3\n");
	check_split("  a \t b  \n\nc\n", "a|b\nc\n");
	check_split("a\r\nb\r\n", "a\nb\n");		/* CR LF files */
	check_split("a {} b{}c\n", "a|{}|b{}c\n");	/* no brace tricks */
	check_split("ls *.txt ~/x a=b\n", "ls|*.txt|~/x|a=b\n");
}

static void
test_split_quotes(void **state)
{
	check_split("echo 'a b' \"c d\"", "echo|a b|c d\n");
	check_split("echo ''", "echo|\n");		/* an empty argument */
	check_split("echo \"\" x", "echo||x\n");
	check_split("echo a'b'\"c\"d", "echo|abcd\n");
	check_split("echo 'it''s'", "echo|its\n");
	check_split("echo 'a\\b' '$x' '`y`' '|;&'", "echo|a\\b|$x|`y`||;&\n");
	check_split("echo \"a\\\"b\" \"c\\\\d\" \"e\\$f\" \"g\\`h\"",
	    "echo|a\"b|c\\d|e$f|g`h\n");
	/* In double quotes, other backslashes stay. */
	check_split("echo \"a\\nb\"", "echo|a\\nb\n");
	/* Quotes may span lines: the newline is part of the word. */
	check_split("echo 'a\nb'\nnext", "echo|a\nb\nnext\n");
	check_split("sh -c 'echo \"$1\"' sh x", "sh|-c|echo \"$1\"|sh|x\n");
	/* UTF-8 passes through. */
	check_split("echo h\xc3\xa9llo", "echo|h\xc3\xa9llo\n");
}

static void
test_split_escapes_comments(void **state)
{
	check_split("echo a\\ b", "echo|a b\n");
	check_split("echo \\'x\\\"", "echo|'x\"\n");
	check_split("echo \\|\\;\\$\\#", "echo||;$#\n");
	check_split("echo a \\\n  b\n", "echo|a|b\n");	/* continuation */
	check_split("echo a\\\nb", "echo|ab\n");
	check_split("echo a \\\r\n b", "echo|a|b\n");
	check_split("# a comment\necho a # trailing\n  # indented\n",
	    "echo|a\n");
	check_split("echo a#b '#c'", "echo|a#b|#c\n");	/* not a comment */
	check_split("#only", "");
}

static void
check_split_err(const char *text, const char *want, unsigned line)
{
	struct split	 sp;
	char		**argv;
	int		  argc, r;

	split_init(&sp, text, strlen(text));
	while ((r = split_next(&sp, &argv, &argc)) == 1)
		split_free(argv);
	assert_int_equal(r, -1);
	if (strstr(sp.err, want) == NULL)
		fail_msg("error '%s' does not contain '%s'", sp.err, want);
	assert_int_equal(sp.lineno, line);
}

static void
test_split_errors(void **state)
{
	check_split_err("echo 'abc", "line 1: unterminated ' quote", 1);
	check_split_err("ok\necho \"abc\nmore", "line 2: unterminated \" quote",
	    2);
	check_split_err("a\nb\nsim > out", "line 3: '>' is shell syntax", 3);
	check_split_err("a | b", "'|' is shell syntax", 1);
	check_split_err("a; b", "';'", 1);
	check_split_err("a && b", "'&'", 1);
	check_split_err("a < in", "'<'", 1);
	check_split_err("echo $HOME", "'$'", 1);
	check_split_err("echo `date`", "'`'", 1);
	check_split_err("(cd x)", "'('", 1);
	check_split_err("echo \"$HOME\"", "'$' inside double quotes", 1);
	check_split_err("FOO=1 ./sim", "'FOO=1' would set a variable", 1);
	check_split_err("\n\nA_B=2", "line 3: 'A_B=2' would set", 3);
	check_split_err("echo x\\", "a backslash ends the file", 1);
	/* A quoted assignment is just an argument. */
	check_split("'FOO=1' ./sim", "FOO=1|./sim\n");
	check_split("./sim FOO=1", "./sim|FOO=1\n");
}

static void
test_split_nul_and_limits(void **state)
{
	struct split	 sp;
	char		**argv;
	int		  argc;
	const char	  text[] = "echo a\0b\n";
	struct buf	  big;
	int		  i;

	split_init(&sp, text, sizeof text - 1);
	assert_int_equal(split_next(&sp, &argv, &argc), -1);
	assert_non_null(strstr(sp.err, "NUL"));

	/* SIMQ_WORDS_MAX arguments pass; one more does not. */
	buf_init(&big);
	for (i = 0; i < SIMQ_WORDS_MAX; i++)
		buf_put(&big, "x ", 2);
	split_init(&sp, (char *)big.p, big.len);
	assert_int_equal(split_next(&sp, &argv, &argc), 1);
	assert_int_equal(argc, SIMQ_WORDS_MAX);
	split_free(argv);
	buf_put(&big, "y", 1);
	split_init(&sp, (char *)big.p, big.len);
	assert_int_equal(split_next(&sp, &argv, &argc), -1);
	assert_non_null(strstr(sp.err, "more than"));
	buf_free(&big);
}

static void
test_split_line_numbers(void **state)
{
	struct split	 sp;
	char		**argv;
	int		  argc;
	const char	 *text = "# header\n\na\n'b\nc'\nd \\\ne\nf";
	unsigned	  want[] = { 3, 4, 6, 8 };
	int		  i;

	split_init(&sp, text, strlen(text));
	for (i = 0; i < 4; i++) {
		assert_int_equal(split_next(&sp, &argv, &argc), 1);
		assert_int_equal(sp.lineno, want[i]);
		split_free(argv);
	}
	assert_int_equal(split_next(&sp, &argv, &argc), 0);
}

/* After an error, split_skip() goes on at the next line, so every bad
 * line of a batch can be named. */
static void
test_split_skip(void **state)
{
	struct split	 sp;
	char		**argv;
	int		  argc;
	const char	 *text = "a |\nb\nc >x\nd\n";

	split_init(&sp, text, strlen(text));
	assert_int_equal(split_next(&sp, &argv, &argc), -1);
	assert_int_equal(sp.lineno, 1);
	assert_int_equal(split_skip(&sp), 0);
	assert_int_equal(split_next(&sp, &argv, &argc), 1);
	assert_string_equal(argv[0], "b");
	split_free(argv);
	assert_int_equal(split_next(&sp, &argv, &argc), -1);
	assert_int_equal(sp.lineno, 3);
	assert_int_equal(split_skip(&sp), 0);
	assert_int_equal(split_next(&sp, &argv, &argc), 1);
	assert_string_equal(argv[0], "d");
	assert_int_equal(sp.lineno, 4);
	split_free(argv);
	assert_int_equal(split_next(&sp, &argv, &argc), 0);
}

static void
test_did_you_mean(void **state)
{
	const char *cmds[] = { "submit", "status", "stats", "wait", "list" };
	const char *queues[] = { "default", "urgent" };

	assert_int_equal(edit_distance("sumbit", "submit"), 1);
	assert_int_equal(edit_distance("", "abc"), 3);
	assert_int_equal(edit_distance("kitten", "sitting"), 3);
	assert_string_equal(did_you_mean("sumbit", cmds, 5), "submit");
	assert_string_equal(did_you_mean("defualt", queues, 2), "default");
	assert_string_equal(did_you_mean("lsit", cmds, 5), "list");
	/* Two as near: no guess.  Too far: none. */
	assert_string_equal(did_you_mean("stat", cmds, 5), "stats");
	{
		const char *two[] = { "run1", "run2" };
		assert_null(did_you_mean("run", two, 2));
	}
	assert_null(did_you_mean("frobnicate", cmds, 5));
	assert_null(did_you_mean("submit", cmds, 5));
}

static void
test_export_skips(void **state)
{
	assert_true(export_skips("SIMQ_TOKEN=x"));
	assert_true(export_skips("SIMQ_SERVER=h:1"));
	assert_true(export_skips("DISPLAY=:0"));
	assert_true(export_skips("SSH_AUTH_SOCK=/tmp/x"));
	assert_true(export_skips("HOSTNAME=n1"));
	assert_true(export_skips("_=/usr/bin/simq"));
	assert_false(export_skips("PATH=/bin"));
	assert_false(export_skips("PYTHONPATH=/x"));
	assert_false(export_skips("OMP_NUM_THREADS=4"));
	assert_false(export_skips("HOSTTYPE=x86_64"));
	assert_false(export_skips("DISPLAYS=1"));
}

/* quote() then split() gives back the argv. */
static void
check_quote_roundtrip(char *const *argv, int argc, const char *want)
{
	struct buf	 b;
	struct split	 sp;
	char		**got;
	int		  n, i;

	buf_init(&b);
	split_quote(&b, argv, argc);
	buf_put_u8(&b, 0);
	if (want != NULL)
		assert_string_equal((char *)b.p, want);
	split_init(&sp, (char *)b.p, b.len - 1);
	assert_int_equal(split_next(&sp, &got, &n), 1);
	assert_int_equal(n, argc);
	for (i = 0; i < argc; i++)
		assert_string_equal(got[i], argv[i]);
	split_free(got);
	buf_free(&b);
}

static void
test_split_quote(void **state)
{
	char	*a[] = { "./sim", "--seed", "3" };
	char	*b[] = { "sh", "-c", "echo \"$1\" | wc -l; exit 3", "it's" };
	char	*c[] = { "x", "", "a b", "tab\there", "new\nline", "#c", "~" };
	char	*d[] = { "FOO=1", "a=b", "{}", "50%", "h\xc3\xa9" };

	check_quote_roundtrip(a, 3, "./sim --seed 3");
	check_quote_roundtrip(b, 4,
	    "sh -c 'echo \"$1\" | wc -l; exit 3' 'it'\\''s'");
	check_quote_roundtrip(c, 7, NULL);
	check_quote_roundtrip(d, 5, "'FOO=1' a=b {} 50% h\xc3\xa9");
}

/* b's bytes as a string. */
static char *
buf_text(struct buf *b)
{
	buf_put_u8(b, 0);
	return (char *)b->p;
}

/*
 * fmt
 */

static void
test_fmt_duration(void **state)
{
	static const struct {
		uint64_t	 ms;
		const char	*want;
	} t[] = {
		{ 0, "0s" }, { 1, "1ms" }, { 999, "999ms" }, { 1000, "1s" },
		{ 2000, "2s" }, { 4200, "4.2s" }, { 9999, "9.9s" },
		{ 10000, "10s" }, { 59999, "59s" }, { 60000, "1m00s" },
		{ 133000, "2m13s" }, { 3599000, "59m59s" },
		{ 3600000, "1h00m" }, { 5400000, "1h30m" },
		{ 86399000, "23h59m" }, { 86400000, "1d00h" },
		{ 90000000, "1d01h" }, { 3650ull * 86400000, "3650d00h" },
	};
	char	b[FMT_MAX];
	size_t	i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		assert_string_equal(fmt_duration(b, t[i].ms), t[i].want);
}

static void
test_fmt_size(void **state)
{
	static const struct {
		uint64_t	 n;
		const char	*want;
	} t[] = {
		{ 0, "0 B" }, { 1023, "1023 B" }, { 1024, "1.0 KiB" },
		{ 1536, "1.5 KiB" }, { 10240, "10 KiB" },
		{ 1048575, "1.0 MiB" }, { 1288490189, "1.2 GiB" },
		{ 123ull << 20, "123 MiB" }, { 5ull << 40, "5.0 TiB" },
		{ UINT64_MAX, "16 EiB" },
	};
	char	b[FMT_MAX];
	size_t	i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		assert_string_equal(fmt_size(b, t[i].n), t[i].want);
}

static void
test_fmt_times(void **state)
{
	char	b[FMT_MAX];
	/* 2026-11-21 04:40:00.123 UTC */
	uint64_t t = 1795236000123ull - 6 * 3600 * 1000;

	assert_string_equal(fmt_iso8601(b, 0), "1970-01-01T00:00:00.000Z");
	assert_string_equal(fmt_iso8601(b, 1763700004200ull),
	    "2025-11-21T04:40:04.200Z");
	/* Local time (TZ=UTC here): today the time, this year the date. */
	assert_string_equal(fmt_time(b, t, t + 1000), "22:40:00");
	assert_string_equal(fmt_time(b, t, t + 3 * 86400000ull),
	    "Nov 20 22:40");
	assert_string_equal(fmt_time(b, t, t + 400 * 86400000ull),
	    "2026-11-20");
	assert_string_equal(fmt_rate(b, 41.23), "41.2/s");
	assert_string_equal(fmt_rate(b, 1234), "1234/s");
	assert_string_equal(fmt_rate(b, 0.5), "30.0/min");
	assert_string_equal(fmt_rate(b, 0.001), "3.6/h");
}

static void
test_fmt_width(void **state)
{
	const char	*s = "h\xc3\xa9llo \xe2\x82\xac";

	assert_int_equal(fmt_width("abc", 3), 3);
	assert_int_equal(fmt_width(s, strlen(s)), 7);
	assert_int_equal(fmt_clip(s, strlen(s), 2), 3);	/* "h\xc3\xa9" */
	assert_int_equal(fmt_clip(s, strlen(s), 7), strlen(s));
	assert_int_equal(fmt_clip(s, strlen(s), 0), 0);
	assert_int_equal(fmt_clip(s, strlen(s), 6), 7);
}

static void
test_fmt_progress(void **state)
{
	struct tally	t;
	struct buf	b;

	memset(&t, 0, sizeof t);
	t.total = 100;
	t.count[JS_DONE] = 50;
	t.count[JS_FAILED] = 10;
	t.count[JS_RUNNING] = 20;
	t.count[JS_QUEUED] = 20;
	buf_init(&b);
	fmt_progress(&b, &t, 2.0, 80, 0, 0, 30000);
	assert_string_equal(buf_text(&b), "[#############xx>>>>>......]  "
	    "50/100 done  10 failed  20 running  2.0/s  ETA 20s");
	/* No rate yet; a narrow terminal gets no bar. */
	buf_reset(&b);
	fmt_progress(&b, &t, -1, 60, 0, 0, 0);
	assert_string_equal(buf_text(&b),
	    "50/100 done  10 failed  20 running  --/s  ETA --");
	/* Finished: how long it took; canceled ones are counted. */
	memset(&t, 0, sizeof t);
	t.total = 3;
	t.count[JS_DONE] = 2;
	t.count[JS_CANCELED] = 1;
	buf_reset(&b);
	fmt_progress(&b, &t, 1.0, 62, 0, 0, 65000);
	assert_string_equal(buf_text(&b),
	    "2/3 done  0 failed  1 canceled  0 running  1.0/s  took 1m05s");
	buf_free(&b);
}

/*
 * wire
 */

static void
test_wire_items(void **state)
{
	struct item	it;

	assert_int_equal(item_parse(&it, xstrdup("job id=17 state=done "
	    "q=sims name=a%20b%25 env=A=1 env=B=2 empty=% -- ./sim "
	    "--seed 3 %")), 0);
	assert_string_equal(it.kind, "job");
	assert_string_equal(item_get(&it, "id"), "17");
	assert_string_equal(item_get(&it, "name"), "a b%");
	assert_string_equal(item_get(&it, "env"), "A=1");	/* the first */
	assert_string_equal(item_get(&it, "empty"), "");
	assert_null(item_get(&it, "nope"));
	assert_int_equal(item_num(&it, "id"), 17);
	assert_int_equal(item_num(&it, "nope"), 0);
	assert_true(item_is(&it, "job"));
	assert_int_equal(it.argc, 4);
	assert_string_equal(it.argv[0], "./sim");
	assert_string_equal(it.argv[2], "3");
	assert_string_equal(it.argv[3], "");
	assert_null(it.argv[4]);
	item_clear(&it);

	/* No arguments, unknown words, a malformed escape kept as is. */
	assert_int_equal(item_parse(&it, xstrdup("queue name=default "
	    "junk paused=0 bad=%zz")), 0);
	assert_string_equal(item_get(&it, "name"), "default");
	assert_string_equal(item_get(&it, "bad"), "%zz");
	assert_int_equal(it.argc, 0);
	item_clear(&it);
}

static void
test_wire_replies(void **state)
{
	struct reply	r;

	assert_int_equal(reply_parse_line(&r, xstrdup("OK 19 3")), 0);
	assert_int_equal(r.kind, REPLY_OK);
	assert_int_equal(r.nwords, 2);
	assert_string_equal(r.words[0], "19");
	assert_string_equal(r.words[1], "3");
	free(r.line);

	assert_int_equal(reply_parse_line(&r, xstrdup("OK")), 0);
	assert_int_equal(r.nwords, 0);
	free(r.line);

	assert_int_equal(reply_parse_line(&r,
	    xstrdup("ERR not-found no job 99; nothing was changed")), 0);
	assert_int_equal(r.kind, REPLY_ERR);
	assert_int_equal(r.err, PERR_NOTFOUND);
	assert_string_equal(r.errcode, "not-found");
	assert_string_equal(r.errmsg, "no job 99; nothing was changed");
	free(r.line);

	assert_int_equal(reply_parse_line(&r, xstrdup("ERR weird-code x")), 0);
	assert_int_equal(r.err, PERR_SERVER);
	free(r.line);

	assert_int_equal(reply_parse_line(&r, xstrdup("ITEMS 12")), 0);
	assert_int_equal(r.kind, REPLY_ITEMS);
	assert_int_equal(r.nitems, 12);
	free(r.line);

	assert_int_equal(reply_parse_line(&r, xstrdup("DATA 0")), 0);
	assert_int_equal(r.kind, REPLY_DATA);
	assert_int_equal(r.datalen, 0);
	free(r.line);

	assert_int_equal(reply_parse_line(&r, xstrdup("ITEMS x")), -1);
	free(r.line);
	assert_int_equal(reply_parse_line(&r, xstrdup("ITEMS 01")), -1);
	free(r.line);
	assert_int_equal(reply_parse_line(&r, xstrdup("DATA")), -1);
	free(r.line);
	assert_int_equal(reply_parse_line(&r, xstrdup("HELLO")), -1);
	free(r.line);
	assert_int_equal(reply_parse_line(&r, xstrdup("")), -1);
	free(r.line);
}

static void
test_wire_requests(void **state)
{
	struct buf	b;

	buf_init(&b);
	req_raw(&b, "SUBMIT");
	req_kv(&b, "name", "a b");
	req_kv(&b, "env", "PATH=/bin:/usr/bin");
	req_kv(&b, "array", "1-10%2");
	req_raw(&b, "--");
	req_word(&b, "echo");
	req_word(&b, "");
	req_word(&b, "50%\t\r\n");
	req_end(&b);
	req_raw(&b, "PING");
	req_end(&b);
	assert_string_equal(buf_text(&b), "SUBMIT name=a%20b "
	    "env=PATH=/bin:/usr/bin array=1-10%252 -- echo % 50%25%09%0D%0A"
	    "\r\nPING\r\n");
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_words),
		cmocka_unit_test(test_split_quotes),
		cmocka_unit_test(test_split_escapes_comments),
		cmocka_unit_test(test_split_errors),
		cmocka_unit_test(test_split_nul_and_limits),
		cmocka_unit_test(test_split_line_numbers),
		cmocka_unit_test(test_split_skip),
		cmocka_unit_test(test_did_you_mean),
		cmocka_unit_test(test_export_skips),
		cmocka_unit_test(test_split_quote),
		cmocka_unit_test(test_fmt_duration),
		cmocka_unit_test(test_fmt_size),
		cmocka_unit_test(test_fmt_times),
		cmocka_unit_test(test_fmt_width),
		cmocka_unit_test(test_fmt_progress),
		cmocka_unit_test(test_wire_items),
		cmocka_unit_test(test_wire_replies),
		cmocka_unit_test(test_wire_requests),
	};

	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
