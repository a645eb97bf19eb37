/*
 * test_files.c: unit tests for the names of files that travel with jobs
 * (lib/fileword.c): what simq submit accepts as a --file NAME and a
 * --collect GLOB, the file words simq and simq-worker read back, and the
 * one mode a file travels with.  The blocking transfers (lib/xfer.c)
 * are tested against a real broker in tests/integration/test_files.py.
 *
 * Linked with lib/ and proto/ only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fileword.h"

static void
test_names(void **state)
{
	static const char *const good[] = { "a", "in.txt", "data/graph.bin",
	    "a/b/c/d.e", "with space", "colon:ok", ".hidden", "..x", "x..",
	    "a/.b", NULL };
	static const struct {
		const char	*name;
		const char	*why;
	} bad[] = {
		{ "", "empty" },
		{ "/etc/passwd", "starts with /" },
		{ "../x", ".." },
		{ "a/../../x", ".." },
		{ "a/..", ".." },
		{ "..", ".." },
		{ "a//b", "empty or ." },
		{ "a/", "empty or ." },
		{ "./a", "empty or ." },
		{ "a/./b", "empty or ." },
		{ NULL, NULL }
	};
	char	why[160], longname[SIMQ_PATH_MAX + 2];
	int	i;

	for (i = 0; good[i] != NULL; i++) {
		if (fileword_name_check(good[i], why, sizeof why) != 0)
			fail_msg("'%s' refused: %s", good[i], why);
	}
	for (i = 0; bad[i].name != NULL; i++) {
		if (fileword_name_check(bad[i].name, why, sizeof why) == 0)
			fail_msg("'%s' accepted", bad[i].name);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("'%s': '%s' does not say '%s'", bad[i].name,
			    why, bad[i].why);
	}
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(fileword_name_check(longname, why, sizeof why), -1);
	longname[SIMQ_PATH_MAX] = '\0';
	assert_int_equal(fileword_name_check(longname, why, sizeof why), 0);
}

static void
test_globs(void **state)
{
	char	why[160];

	assert_int_equal(fileword_glob_check("*.csv", why, sizeof why), 0);
	assert_int_equal(fileword_glob_check("out/*", why, sizeof why), 0);
	assert_int_equal(fileword_glob_check("./res/*.dat", why, sizeof why),
	    0);
	assert_int_equal(fileword_glob_check("a/../b", why, sizeof why), -1);
	assert_non_null(strstr(why, ".."));
	assert_int_equal(fileword_glob_check("/tmp/*", why, sizeof why), -1);
	assert_non_null(strstr(why, "starts with /"));
	assert_int_equal(fileword_glob_check("", why, sizeof why), -1);
	/* A glob may hold what a name may not: an empty or . part. */
	assert_int_equal(fileword_glob_check("a//*", why, sizeof why), 0);
	assert_int_equal(fileword_name_check("a//b", why, sizeof why), -1);
}

/* Each kind of refusal, word for word, for a name and for a glob: they
 * share one sentence maker but name their own subject. */
static void
test_check_sentences(void **state)
{
	static const struct {
		int		 glob;
		const char	*s;
		const char	*why;
	} t[] = {
		{ 0, "/etc/x", "it starts with /: a name is a path relative to "
		    "the job's directory" },
		{ 1, "/tmp/*", "it starts with /: a pattern is relative to the "
		    "job's directory" },
		{ 0, "a/..", "it has a .. part, which would leave the job's "
		    "directory" },
		{ 1, "../*", "it has a .. part, which would leave the job's "
		    "directory" },
		{ 0, "", "it is empty" },
		{ 1, "", "it is empty" },
		/* proto's phrase is a verb's: not "it is has ...". */
		{ 0, "a//b", "it has an empty or . component" },
		{ 0, NULL, NULL }
	};
	char	why[160], longname[SIMQ_PATH_MAX + 2];
	int	i, rc;

	for (i = 0; t[i].s != NULL; i++) {
		rc = t[i].glob ? fileword_glob_check(t[i].s, why, sizeof why) :
		    fileword_name_check(t[i].s, why, sizeof why);
		if (rc != -1 || strcmp(why, t[i].why) != 0)
			fail_msg("'%s' (%s): %d '%s', not '%s'", t[i].s,
			    t[i].glob ? "glob" : "name", rc, why, t[i].why);
	}
	memset(longname, '*', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(fileword_glob_check(longname, why, sizeof why), -1);
	assert_string_equal(why, "it is longer than 4096 bytes");
	/* A short buffer gets a cut sentence, never an overrun. */
	assert_int_equal(fileword_name_check("/x", why, 10), -1);
	assert_string_equal(why, "it starts");
}

static void
test_parse(void **state)
{
	static const char h[] =
	    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	struct fileword	fw;
	char		w[512];

	snprintf(w, sizeof w, "%s:4:644:data/a:b.txt", h);
	assert_int_equal(fileword_parse(w, &fw), 0);
	assert_string_equal(fw.hex, h);
	assert_int_equal(fw.size, 4);
	assert_int_equal(fw.mode, 0644);
	assert_string_equal(fw.name, "data/a:b.txt");
	assert_ptr_equal(fw.name, w + 64 + 7);
	snprintf(w, sizeof w, "%s:0:755:run.sh", h);
	assert_int_equal(fileword_parse(w, &fw), 0);
	assert_int_equal(fw.mode, 0755);
	assert_int_equal(fw.size, 0);
	/* What a worker must never lay, and malformed words. */
	snprintf(w, sizeof w, "%s:4:644:../x", h);
	assert_int_equal(fileword_parse(w, &fw), -1);
	snprintf(w, sizeof w, "%s:4:644:/etc/x", h);
	assert_int_equal(fileword_parse(w, &fw), -1);
	snprintf(w, sizeof w, "%s:4:0644:x", h);
	assert_int_equal(fileword_parse(w, &fw), -1);
	snprintf(w, sizeof w, "%s:4:1777:x", h);
	assert_int_equal(fileword_parse(w, &fw), -1);
	snprintf(w, sizeof w, "%s:04:644:x", h);
	assert_int_equal(fileword_parse(w, &fw), -1);
	snprintf(w, sizeof w, "%.63s:4:644:x", h);
	assert_int_equal(fileword_parse(w, &fw), -1);
	snprintf(w, sizeof w, "%s:4:644", h);
	assert_int_equal(fileword_parse(w, &fw), -1);
	snprintf(w, sizeof w, "9F86%s:4:644:x", h + 4);
	assert_int_equal(fileword_parse(w, &fw), -1);
}

static void
test_mode(void **state)
{
	assert_int_equal(fileword_mode(0100644), 0644);
	assert_int_equal(fileword_mode(0100600), 0644);
	assert_int_equal(fileword_mode(0100755), 0755);
	assert_int_equal(fileword_mode(0100700), 0755);
	assert_int_equal(fileword_mode(0100641), 0755);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_globs),
		cmocka_unit_test(test_check_sentences),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
