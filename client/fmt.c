/*
 * fmt.c: numbers for people.
 *
 * Durations, sizes and times are shown the way a person reads them at a
 * glance, with at most two units or three significant digits ("2m13s",
 * "1h05m", "1.2 GiB", "14:03:22"), so table columns stay narrow.  JSON
 * output never uses these: it carries exact numbers.  Every function
 * writes into a caller's buffer of FMT_MAX bytes and returns it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "simq.h"

const char *
fmt_duration(char *buf, uint64_t ms)
{
	uint64_t	s = ms / 1000;

	if (ms == 0)
		snprintf(buf, FMT_MAX, "0s");
	else if (ms < 1000)
		snprintf(buf, FMT_MAX, "%" PRIu64 "ms", ms);
	else if (s < 10 && (ms % 1000) / 100 != 0)
		snprintf(buf, FMT_MAX, "%" PRIu64 ".%" PRIu64 "s", s,
		    (ms % 1000) / 100);
	else if (s < 60)
		snprintf(buf, FMT_MAX, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, FMT_MAX, "%" PRIu64 "m%02" PRIu64 "s", s / 60,
		    s % 60);
	else if (s < 86400)
		snprintf(buf, FMT_MAX, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
		    (s % 3600) / 60);
	else
		snprintf(buf, FMT_MAX, "%" PRIu64 "d%02" PRIu64 "h", s / 86400,
		    (s % 86400) / 3600);
	return buf;
}

const char *
fmt_size(char *buf, uint64_t bytes)
{
	static const char	*units[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
				    "EiB" };
	double			 v = (double)bytes;
	int			 u = -1;

	if (bytes < 1024) {
		snprintf(buf, FMT_MAX, "%" PRIu64 " B", bytes);
		return buf;
	}
	while (v >= 1023.5 && u < 5) {
		v /= 1024;
		u++;
	}
	if (v < 9.95)
		snprintf(buf, FMT_MAX, "%.1f %s", v, units[u]);
	else
		snprintf(buf, FMT_MAX, "%.0f %s", v, units[u]);
	return buf;
}

/* A time in local time, as short as it can be relative to now: the time
 * of day today, the date and minute this year, else the date. */
const char *
fmt_time(char *buf, uint64_t ms, uint64_t now)
{
	time_t		t = (time_t)(ms / 1000), n = (time_t)(now / 1000);
	struct tm	tm, tn;

	localtime_r(&t, &tm);
	localtime_r(&n, &tn);
	if (tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday)
		strftime(buf, FMT_MAX, "%H:%M:%S", &tm);
	else if (tm.tm_year == tn.tm_year)
		strftime(buf, FMT_MAX, "%b %d %H:%M", &tm);
	else
		strftime(buf, FMT_MAX, "%Y-%m-%d", &tm);
	return buf;
}

/* RFC 3339 in UTC with milliseconds: "2026-11-21T04:40:00.123Z". */
const char *
fmt_iso8601(char *buf, uint64_t ms)
{
	time_t		t = (time_t)(ms / 1000);
	struct tm	tm;
	size_t		n;

	gmtime_r(&t, &tm);
	n = strftime(buf, FMT_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, FMT_MAX - n, ".%03uZ", (unsigned)(ms % 1000));
	return buf;
}

const char *
fmt_rate(char *buf, double per_sec)
{
	if (per_sec >= 99.95)
		snprintf(buf, FMT_MAX, "%.0f/s", per_sec);
	else if (per_sec >= 0.95)
		snprintf(buf, FMT_MAX, "%.1f/s", per_sec);
	else if (per_sec * 60 >= 0.95)
		snprintf(buf, FMT_MAX, "%.1f/min", per_sec * 60);
	else
		snprintf(buf, FMT_MAX, "%.1f/h", per_sec * 3600);
	return buf;
}

/* Columns that len bytes of UTF-8 take on a terminal: one per character
 * (wide characters are rare in job tables and not worth a wcwidth). */
size_t
fmt_width(const char *s, size_t len)
{
	size_t	i, w = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			w++;
	return w;
}

/* The bytes of the longest prefix of s that fits in cols columns, cut
 * between characters. */
size_t
fmt_clip(const char *s, size_t len, size_t cols)
{
	size_t	i, w = 0;

	for (i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80) {
			if (w == cols)
				return i;
			w++;
		}
	}
	return len;
}

static uint64_t
fmt_finished(const struct tally *t)
{
	return t->count[JS_DONE] + t->count[JS_FAILED] + t->count[JS_CANCELED];
}

static void
fmt_bar(struct buf *b, const char *ch, const char *ascii, int n,
    const char *esc, int utf8, int colour)
{
	if (n <= 0)
		return;
	if (colour)
		buf_put(b, esc, strlen(esc));
	while (n-- > 0) {
		const char *s = utf8 ? ch : ascii;
		buf_put(b, s, strlen(s));
	}
	if (colour)
		buf_put(b, "\033[0m", 4);
}

/*
 * The line of the progress bar (see progress.c), at most width columns:
 *   [######x>>....]  612/1000 done  3 failed  20 running  41.2/s  ETA 9s
 * rate < 0: not known yet.  With utf8 the bar is drawn with block
 * characters, with colour in green, red and yellow.
 */
void
fmt_progress(struct buf *b, const struct tally *t, double rate, int width,
    int utf8, int colour, uint64_t elapsed)
{
	char		 text[256], r[FMT_MAX], eta[FMT_MAX];
	uint64_t	 fin = fmt_finished(t), total = t->total;
	uint64_t	 bad = t->count[JS_FAILED];
	int		 n, bw, nd, nf, nr;

	if (total == 0)
		total = 1;
	if (rate > 0 && fin < t->total)
		fmt_duration(eta, (uint64_t)((double)(t->total - fin) / rate *
		    1000) / 1000 * 1000);
	else if (fin >= t->total)
		fmt_duration(eta, elapsed / 1000 * 1000);
	else
		snprintf(eta, sizeof eta, "--");
	n = snprintf(text, sizeof text, "%llu/%llu done  %llu failed",
	    (unsigned long long)t->count[JS_DONE],
	    (unsigned long long)t->total, (unsigned long long)bad);
	if (t->count[JS_CANCELED] > 0)
		n += snprintf(text + n, sizeof text - (size_t)n,
		    "  %llu canceled",
		    (unsigned long long)t->count[JS_CANCELED]);
	n += snprintf(text + n, sizeof text - (size_t)n, "  %llu running  %s"
	    "  %s %s", (unsigned long long)t->count[JS_RUNNING],
	    rate >= 0 ? fmt_rate(r, rate) : "--/s",
	    fin >= t->total ? "took" : "ETA", eta);
	/* A bar of one width while the numbers change length. */
	bw = width - n - 4 >= 40 ? 40 : width - n - 4;
	if (bw >= 10) {
		nd = (int)(t->count[JS_DONE] * (uint64_t)bw / total);
		nf = (int)((t->count[JS_DONE] + bad + t->count[JS_CANCELED]) *
		    (uint64_t)bw / total) - nd;
		nr = (int)((fin + t->count[JS_RUNNING]) * (uint64_t)bw /
		    total) - nd - nf;
		buf_put_u8(b, '[');
		fmt_bar(b, "\xe2\x96\x88", "#", nd, "\033[32m", utf8, colour);
		fmt_bar(b, "\xe2\x96\x88", "x", nf, "\033[31m", utf8, colour);
		fmt_bar(b, "\xe2\x96\x92", ">", nr, "\033[33m", utf8,
		    colour);
		fmt_bar(b, "\xe2\x96\x91", ".", bw - nd - nf - nr, "\033[2m",
		    utf8, colour);
		buf_put(b, "]  ", 3);
	}
	if ((size_t)n > (size_t)(width > 0 ? width : 0))
		n = width > 0 ? width : 0;
	buf_put(b, text, (size_t)n);
}
