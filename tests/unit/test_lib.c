/*
 * test_lib.c: unit tests for lib/, what simqd, simq-worker and simq
 * share: logging, allocation and its one way out, the clocks, sizes, the
 * broker's address, the token, and the JSON writer.
 *
 * Linked with lib/ and proto/ only.  What ends in exit() (fatal, out of
 * memory) or writes to stderr runs in a child process whose stderr is a
 * pipe, so the test sees the status and the exact line.
 */
#include <sys/time.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "clock.h"
#include "json.h"
#include "log.h"
#include "server.h"
#include "sha256.h"
#include "size.h"
#include "token.h"
#include "xmalloc.h"

/* Under AddressSanitizer a failed allocation returns NULL, as malloc
 * does, instead of ending the test: the out-of-memory path is tested. */
const char	*__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

/*
 * Running code in a child.
 */

struct child {
	int	 status;	/* exit status, or 128 + signal */
	char	 err[8192];	/* what it wrote on stderr */
	size_t	 errlen;
};

/* Runs fn(arg) in a child with stderr on a pipe; it exits 0 if fn
 * returns. */
static void
run_child(struct child *c, void (*fn)(void *), void *arg)
{
	int	 p[2], st;
	pid_t	 pid;
	ssize_t	 r;

	memset(c, 0, sizeof *c);
	assert_int_equal(pipe(p), 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		close(p[1]);
		fn(arg);
		_exit(0);
	}
	close(p[1]);
	while ((r = read(p[0], c->err + c->errlen,
	    sizeof c->err - 1 - c->errlen)) > 0 ||
	    (r < 0 && errno == EINTR))
		if (r > 0)
			c->errlen += (size_t)r;
	close(p[0]);
	c->err[c->errlen] = '\0';
	assert_int_equal(waitpid(pid, &st, 0), pid);
	c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * log
 */

static void
log_some(void *arg)
{
	const char	*style = arg;

	log_init("prog", strcmp(style, "plain") == 0 ? LOG_PLAIN :
	    LOG_STAMPED, 3);
	log_warn("w %d", 1);
	log_info("i %s", "x");
	log_verbose("v0");
	log_debug("d0");
	log_verbosity = 1;
	log_verbose("v1");
	log_debug("d1");
	log_verbosity = 2;
	log_debug("d2");
	errno = EIO;
	log_info("errno kept");
	if (errno != EIO)
		_exit(9);
	fatal("f %s", "end");
}

/* Replaces the digits of each line's timestamp (its first 23 bytes)
 * with 'N'. */
static char *
stamps(char *s)
{
	char	*line, *p;

	for (line = s; *line != '\0'; line = p + 1) {
		for (p = line; *p != '\n' && *p != '\0'; p++)
			if (p - line < 23 && *p >= '0' && *p <= '9')
				*p = 'N';
		if (*p == '\0')
			break;
	}
	return s;
}

static void
test_log_lines(void **state)
{
	struct child	c;

	run_child(&c, log_some, "plain");
	assert_int_equal(c.status, 3);
	assert_string_equal(c.err, "prog: w 1\nprog: i x\nprog: v1\n"
	    "prog: d2\nprog: errno kept\nprog: f end\n");

	run_child(&c, log_some, "stamped");
	assert_int_equal(c.status, 3);
	assert_string_equal(stamps(c.err),
	    "NNNN-NN-NN NN:NN:NN.NNN prog warning: w 1\n"
	    "NNNN-NN-NN NN:NN:NN.NNN prog info: i x\n"
	    "NNNN-NN-NN NN:NN:NN.NNN prog info: v1\n"
	    "NNNN-NN-NN NN:NN:NN.NNN prog debug: d2\n"
	    "NNNN-NN-NN NN:NN:NN.NNN prog info: errno kept\n"
	    "NNNN-NN-NN NN:NN:NN.NNN prog fatal: f end\n");
}

static void
log_long(void *arg)
{
	char	*s = xmalloc(10000);

	(void)arg;
	memset(s, 'a', 9999);
	s[9999] = '\0';
	log_init("prog", LOG_PLAIN, 1);
	log_warn("%s", s);
	log_warn("after");
	free(s);
}

static void
test_log_long_line_is_cut(void **state)
{
	struct child	 c;
	char		*nl;

	run_child(&c, log_long, NULL);
	assert_int_equal(c.status, 0);
	nl = strchr(c.err, '\n');
	assert_non_null(nl);
	/* One line of 4095 bytes with its newline, ending in "...". */
	assert_int_equal(nl - c.err + 1, 4095);
	assert_memory_equal(nl - 3, "...", 3);
	assert_memory_equal(c.err, "prog: aaa", 9);
	assert_string_equal(nl + 1, "prog: after\n");
}

/*
 * xmalloc
 */

static void
oom_malloc(void *arg)
{
	log_init("prog", LOG_STAMPED, 1);
	(void)xmalloc(SIZE_MAX / 2);
}

static void
oom_calloc(void *arg)
{
	log_init("simq", LOG_PLAIN, 2);
	(void)xcalloc(SIZE_MAX / 8, 16);
}

static void
oom_reallocarray(void *arg)
{
	log_init("simq", LOG_PLAIN, 2);
	(void)xreallocarray(NULL, SIZE_MAX / 4, 8);
}

static void
oom_buf(void *arg)
{
	struct buf	b;

	log_init("simq", LOG_PLAIN, 2);
	buf_init(&b);
	buf_put_u8(&b, 1);
	buf_reserve(&b, SIZE_MAX / 2);
}

static void
test_xmalloc(void **state)
{
	struct child	 c;
	char		*s, *p;
	char		 want[128];
	int		*v;

	p = xmalloc(0);
	free(p);
	v = xcalloc(0, 0);
	free(v);
	v = xcalloc(4, sizeof *v);
	assert_int_equal(v[0] | v[1] | v[2] | v[3], 0);
	v = xreallocarray(v, 1000, sizeof *v);
	v[999] = 7;
	free(v);
	s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = xstrndup("a\0b", 3);	/* n bytes, NUL or not */
	assert_memory_equal(s, "a\0b\0", 4);
	free(s);
	s = xstrdup("");
	assert_string_equal(s, "");
	free(s);
	s = xprintf("%s-%d", "x", 42);
	assert_string_equal(s, "x-42");
	free(s);

	/* Every way out of memory ends the same way: logged, then exit. */
	run_child(&c, oom_malloc, NULL);
	assert_int_equal(c.status, 1);
	snprintf(want, sizeof want, " prog fatal: out of memory (%zu bytes)\n",
	    SIZE_MAX / 2);
	assert_non_null(strstr(c.err, want));
	run_child(&c, oom_calloc, NULL);
	assert_int_equal(c.status, 2);
	snprintf(want, sizeof want, "simq: out of memory (%zu bytes)\n",
	    SIZE_MAX);
	assert_string_equal(c.err, want);
	run_child(&c, oom_reallocarray, NULL);
	assert_int_equal(c.status, 2);
	assert_string_equal(c.err, want);
	/* proto/'s buffers too. */
	run_child(&c, oom_buf, NULL);
	assert_int_equal(c.status, 2);
	assert_non_null(strstr(c.err, "simq: out of memory ("));
}

/*
 * clock
 */

static void
test_clock(void **state)
{
	struct timeval	tv;
	struct timespec	ts0, ts1;
	uint64_t	t0, t1, m0, m1;

	/* Bracketed by CLOCK_REALTIME itself: time(2) reads a coarse clock
	 * that can lag a tick behind, so it cannot bound now_ms() above. */
	clock_gettime(CLOCK_REALTIME, &ts0);
	t0 = now_ms();
	clock_gettime(CLOCK_REALTIME, &ts1);
	assert_true(t0 >= (uint64_t)ts0.tv_sec * 1000 + ts0.tv_nsec / 1000000);
	assert_true(t0 <= (uint64_t)ts1.tv_sec * 1000 + ts1.tv_nsec / 1000000);
	m0 = mono_ms();
	sleep_ms(30);
	m1 = mono_ms();
	t1 = now_ms();
	assert_true(m1 - m0 >= 30);
	assert_true(m1 - m0 < 5000);
	assert_true(t1 >= t0);
	ms_to_tv(61005, &tv);
	assert_int_equal(tv.tv_sec, 61);
	assert_int_equal(tv.tv_usec, 5000);
	ms_to_tv(0, &tv);
	assert_int_equal(tv.tv_sec + tv.tv_usec, 0);
}

/*
 * size
 */

static void
test_parse_size(void **state)
{
	static const struct {
		const char	*s;
		int		 ok;
		uint64_t	 v;
	} t[] = {
		{ "0", 1, 0 }, { "4096", 1, 4096 }, { "1k", 1, 1024 },
		{ "512K", 1, 512 << 10 }, { "64M", 1, 64 << 20 },
		{ "4G", 1, UINT64_C(4) << 30 }, { "1T", 1, UINT64_C(1) << 40 },
		{ "2t", 1, UINT64_C(2) << 40 },
		{ "18446744073709551615", 1, UINT64_MAX },
		{ "16777216T", 0, 0 }, { "16777215T", 1,
		    UINT64_C(16777215) << 40 },
		{ "", 0, 0 }, { "K", 0, 0 }, { "-1", 0, 0 }, { "1.5G", 0, 0 },
		{ "1P", 0, 0 }, { " 1", 0, 0 }, { "1 ", 0, 0 }, { "1KB", 0, 0 },
		{ "+1", 0, 0 }, { "18446744073709551616", 0, 0 },
	};
	uint64_t	v;
	size_t		i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		v = 12345;
		if (t[i].ok) {
			if (parse_size(t[i].s, &v) != 0)
				fail_msg("parse_size(\"%s\") failed", t[i].s);
			assert_int_equal(v, t[i].v);
		} else if (parse_size(t[i].s, &v) != -1)
			fail_msg("parse_size(\"%s\") took it", t[i].s);
	}
}

/*
 * server
 */

static void
test_server_split(void **state)
{
	static const struct {
		const char	*in;
		const char	*host;		/* NULL: refused */
		const char	*port;
	} t[] = {
		{ "example.org:7000", "example.org", "7000" },
		{ "example.org", "example.org", "7733" },
		{ ":7000", "127.0.0.1", "7000" },
		{ "10.0.0.1:1", "10.0.0.1", "1" },
		{ "h:65535", "h", "65535" },
		{ "[::1]:7000", "::1", "7000" },
		{ "[::1]", "::1", "7733" },
		{ "::1", "::1", "7733" },
		{ "fe80::1:2", "fe80::1:2", "7733" },
		{ "", NULL, NULL },
		{ "h:", NULL, NULL },
		{ ":", NULL, NULL },
		{ "h:0", NULL, NULL },
		{ "h:65536", NULL, NULL },
		{ "h:-1", NULL, NULL },
		{ "h:+1", NULL, NULL },
		{ "h:7x", NULL, NULL },
		{ "[]", NULL, NULL },
		{ "[]:7000", NULL, NULL },
		{ "[::1", NULL, NULL },
		{ "[::1]7000", NULL, NULL },
		{ "[::1]:", NULL, NULL },
	};
	char	*host, *port;
	size_t	 i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		host = port = NULL;
		if (t[i].host == NULL) {
			if (server_split(t[i].in, &host, &port) != -1)
				fail_msg("server_split(\"%s\") took it",
				    t[i].in);
			assert_null(host);
			continue;
		}
		if (server_split(t[i].in, &host, &port) != 0)
			fail_msg("server_split(\"%s\") failed", t[i].in);
		assert_string_equal(host, t[i].host);
		assert_string_equal(port, t[i].port);
		free(host);
		free(port);
	}
}

static void
test_server_pick(void **state)
{
	unsetenv("SIMQ_SERVER");
	assert_string_equal(SIMQ_DEFAULT_SERVER, "127.0.0.1:7733");
	assert_string_equal(server_pick(NULL), SIMQ_DEFAULT_SERVER);
	assert_string_equal(server_pick(""), SIMQ_DEFAULT_SERVER);
	assert_string_equal(server_pick("h:1"), "h:1");
	setenv("SIMQ_SERVER", "", 1);
	assert_string_equal(server_pick(NULL), SIMQ_DEFAULT_SERVER);
	setenv("SIMQ_SERVER", ":9", 1);
	assert_string_equal(server_pick(NULL), ":9");
	assert_string_equal(server_pick(""), ":9");
	assert_string_equal(server_pick("h:1"), "h:1");
	unsetenv("SIMQ_SERVER");
}

/*
 * token
 */

static char	tokdir[] = "/tmp/simq-test-lib-XXXXXX";

/* Writes len bytes of s to a file in tokdir; returns its path. */
static const char *
tokfile(const void *s, size_t len)
{
	static char	 path[64];
	FILE		*f;

	snprintf(path, sizeof path, "%s/token", tokdir);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(s, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Reads a token from a file holding s; returns the token, or the
 * message as "ERR ...". */
static char *
tokread(const void *s, size_t len)
{
	char	 why[256], *t;

	why[0] = '\0';
	if ((t = token_read(tokfile(s, len), why, sizeof why)) != NULL) {
		assert_string_equal(why, "");
		return t;
	}
	assert_true(strstr(why, tokdir) != NULL);	/* names the file */
	return xprintf("ERR %s", strstr(why, "/token ") + 7);
}

#define CHECK_TOKEN(lit, want) do {					\
	char *t_ = tokread(lit, sizeof lit - 1);			\
	assert_string_equal(t_, want);					\
	free(t_);							\
} while (0)

static void
test_token_read(void **state)
{
	char	*big, why[256], missing[64], *t;
	size_t	 n = 4 * TOKEN_MAX + 1;

	assert_non_null(mkdtemp(tokdir));
	CHECK_TOKEN("s3cret", "s3cret");
	CHECK_TOKEN("s3cret\n", "s3cret");
	/* Trailing whitespace of any kind is not the token's; inside it is. */
	CHECK_TOKEN("s3cret\t", "s3cret");
	CHECK_TOKEN("s3 cr\tet \r\n\t \n\n", "s3 cr\tet");
	CHECK_TOKEN("\ts3cret", "\ts3cret");
	CHECK_TOKEN("", "ERR is empty");
	CHECK_TOKEN(" \t\r\n", "ERR is empty");
	CHECK_TOKEN("a\0b", "ERR holds a NUL byte");

	/* TOKEN_MAX bytes are a token; one more is refused, not cut. */
	big = xmalloc(n + 1);
	memset(big, 'x', n);
	t = tokread(big, TOKEN_MAX);
	assert_int_equal(strlen(t), TOKEN_MAX);
	free(t);
	t = tokread(big, TOKEN_MAX + 1);
	assert_non_null(strstr(t, "ERR is too long"));
	free(t);
	/* ... however much trailing space follows. */
	memset(big + 10, '\n', n - 10);
	t = tokread(big, 4 * TOKEN_MAX);
	assert_string_equal(t, "xxxxxxxxxx");
	free(t);
	t = tokread(big, n);
	assert_non_null(strstr(t, "ERR is too long"));
	free(t);
	free(big);

	snprintf(missing, sizeof missing, "%s/none", tokdir);
	assert_null(token_read(missing, why, sizeof why));
	assert_non_null(strstr(why, "cannot read the token file"));
	assert_non_null(strstr(why, missing));
	unlink(tokfile("", 0));
	assert_int_equal(rmdir(tokdir), 0);
}

static void
test_token_load(void **state)
{
	char	*t, why[256];

	unsetenv("SIMQ_TOKEN");
	assert_int_equal(token_load(NULL, &t, why, sizeof why), 0);
	assert_null(t);
	setenv("SIMQ_TOKEN", "", 1);
	assert_int_equal(token_load(NULL, &t, why, sizeof why), 0);
	assert_null(t);
	setenv("SIMQ_TOKEN", "env tok\t", 1);
	assert_int_equal(token_load(NULL, &t, why, sizeof why), 0);
	assert_string_equal(t, "env tok\t");	/* as it is */
	free(t);
	/* A file wins over the environment; a bad one is an error. */
	assert_int_equal(token_load("/nonexistent/token", &t, why,
	    sizeof why), -1);
	assert_null(t);
	assert_non_null(strstr(why, "/nonexistent/token"));
	unsetenv("SIMQ_TOKEN");
}

static void
test_token_equal(void **state)
{
	assert_true(token_equal("abc", 3, "abc", 3));
	assert_false(token_equal("abd", 3, "abc", 3));
	assert_false(token_equal("ab", 2, "abc", 3));
	assert_false(token_equal("abcd", 4, "abc", 3));
	assert_false(token_equal("", 0, "abc", 3));
	assert_false(token_equal("", 0, "", 0));	/* never empty */
	assert_false(token_equal("x", 1, "", 0));
	assert_true(token_equal("a\0b", 3, "a\0b", 3));
	assert_false(token_equal("a\0b", 3, "a\0c", 3));
}

/*
 * json
 */

static char *
buf_text(struct buf *b)
{
	buf_put_u8(b, 0);
	return (char *)b->p;
}

static void
test_json_shapes(void **state)
{
	struct buf	b;
	struct json	j;

	buf_init(&b);
	json_init(&j, &b, 0);
	json_object(&j);
	json_key(&j, "id");
	json_cstr(&j, "17");
	json_key(&j, "n");
	json_int(&j, -5);
	json_key(&j, "u");
	json_uint(&j, UINT64_MAX);
	json_key(&j, "t");
	json_bool(&j, 1);
	json_key(&j, "f");
	json_bool(&j, 0);
	json_key(&j, "z");
	json_cstr(&j, NULL);
	json_key(&j, "a");
	json_array(&j);
	json_uint(&j, 1);
	json_array(&j);
	json_end(&j);
	json_object(&j);
	json_end(&j);
	json_null(&j);
	json_end(&j);
	json_key(&j, "e");
	json_object(&j);
	json_end(&j);
	json_end(&j);
	json_finish(&j);
	assert_string_equal(buf_text(&b), "{\"id\":\"17\",\"n\":-5,"
	    "\"u\":18446744073709551615,\"t\":true,\"f\":false,\"z\":null,"
	    "\"a\":[1,[],{},null],\"e\":{}}\n");

	buf_reset(&b);
	json_init(&j, &b, 1);
	json_object(&j);
	json_key(&j, "a");
	json_array(&j);
	json_uint(&j, 1);
	json_uint(&j, 2);
	json_end(&j);
	json_key(&j, "e");
	json_array(&j);
	json_end(&j);
	json_end(&j);
	json_finish(&j);
	assert_string_equal(buf_text(&b),
	    "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"e\": []\n}\n");
	buf_free(&b);
}

static void
check_escape(const char *in, size_t len, const char *want)
{
	struct buf	b;

	buf_init(&b);
	json_escape(&b, in, len);
	assert_string_equal(buf_text(&b), want);
	buf_free(&b);
}

static void
test_json_escapes(void **state)
{
	check_escape("plain", 5, "plain");
	check_escape("a\"b\\c/d", 7, "a\\\"b\\\\c/d");
	check_escape("\n\r\t\b\f", 5, "\\n\\r\\t\\b\\f");
	check_escape("\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f");
	check_escape("a\0b", 3, "a\\u0000b");
	check_escape("", 0, "");
	/* Valid UTF-8 of every length passes as it is. */
	check_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
	    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	/* U+2028 and U+2029 are escaped for JavaScript's sake. */
	check_escape("\xe2\x80\xa8\xe2\x80\xa9", 6, "\\u2028\\u2029");
}

static void
test_json_invalid_utf8(void **state)
{
	check_escape("\x80", 1, "\\ufffd");			/* lone cont. */
	check_escape("a\xffz", 3, "a\\ufffdz");
	check_escape("\xc0\xaf", 2, "\\ufffd\\ufffd");		/* overlong */
	check_escape("\xe0\x80\xaf", 3, "\\ufffd\\ufffd\\ufffd");
	/* A surrogate, U+D800. */
	check_escape("\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd");
	check_escape("\xf4\x90\x80\x80", 4,
	    "\\ufffd\\ufffd\\ufffd\\ufffd");			/* > 10FFFF */
	check_escape("\xf5\x80", 2, "\\ufffd\\ufffd");
	check_escape("\xe2\x82", 2, "\\ufffd\\ufffd");		/* truncated */
	check_escape("\xe2\x82x", 3, "\\ufffd\\ufffdx");
	check_escape("\xc3", 1, "\\ufffd");
	check_escape("ok\xc3\xa9\x80", 5, "ok\xc3\xa9\\ufffd");
}

static void
test_json_millis(void **state)
{
	static const struct {
		uint64_t	 ms;
		const char	*want;
	} t[] = {
		{ 0, "0" }, { 1, "0.001" }, { 10, "0.01" }, { 4200, "4.2" },
		{ 3000, "3" }, { 61005, "61.005" }, { 999, "0.999" },
	};
	struct buf	b;
	struct json	j;
	size_t		i;

	buf_init(&b);
	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		buf_reset(&b);
		json_init(&j, &b, 0);
		json_millis(&j, t[i].ms);
		assert_string_equal(buf_text(&b), t[i].want);
	}
	buf_free(&b);
}

/* The FIPS 180-2 vectors, the hex forms, and a file read in pieces. */
static void
test_sha256(void **state)
{
	unsigned char d[SHA256_LEN], e[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1], path[] = "/tmp/simq-sha-XXXXXX";
	struct sha256 h;
	uint64_t size;
	char *big;
	int fd;

	(void)state;
	sha256_buf("", 0, d);
	sha256_hex(d, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
	sha256_buf("abc", 3, d);
	sha256_hex(d, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");

	/* A million 'a's, fed in uneven pieces and as a file. */
	big = xmalloc(1000000);
	memset(big, 'a', 1000000);
	sha256_init(&h);
	sha256_update(&h, big, 1);
	sha256_update(&h, big, 99999);
	sha256_update(&h, big, 0);
	sha256_update(&h, big, 900000);
	sha256_final(&h, d);
	sha256_hex(d, hex);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67"
	    "f1809a48a497200e046d39ccc7112cd0");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, big, 1000000), 1000000);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sha256_fd(fd, e, &size), 0);
	assert_int_equal(size, 1000000);
	assert_memory_equal(d, e, SHA256_LEN);
	close(fd);
	unlink(path);
	free(big);

	/* Parsing: either case, exactly 64 digits. */
	assert_int_equal(sha256_parse_hex("CDC76E5C9914FB9281A1C7E284D73E67"
	    "F1809A48A497200E046D39CCC7112CD0", e), 0);
	assert_memory_equal(d, e, SHA256_LEN);
	assert_int_equal(sha256_parse_hex("cdc76e5c9914fb9281a1c7e284d73e67"
	    "f1809a48a497200e046d39ccc7112cd", e), -1);
	assert_int_equal(sha256_parse_hex("cdc76e5c9914fb9281a1c7e284d73e67"
	    "f1809a48a497200e046d39ccc7112cd00", e), -1);
	assert_int_equal(sha256_parse_hex("cdc76e5c9914fb9281a1c7e284d73e67"
	    "f1809a48a497200e046d39ccc7112cdg", e), -1);
	assert_int_equal(sha256_parse_hex("", e), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_lines),
		cmocka_unit_test(test_log_long_line_is_cut),
		cmocka_unit_test(test_xmalloc),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_server_split),
		cmocka_unit_test(test_server_pick),
		cmocka_unit_test(test_token_read),
		cmocka_unit_test(test_token_load),
		cmocka_unit_test(test_token_equal),
		cmocka_unit_test(test_json_shapes),
		cmocka_unit_test(test_json_escapes),
		cmocka_unit_test(test_json_invalid_utf8),
		cmocka_unit_test(test_json_millis),
		cmocka_unit_test(test_sha256),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
