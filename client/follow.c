/*
 * follow.c: simq output -f, a running job's output as it is written.
 *
 * The client asks FOLLOW in a loop, each time from the offset it has
 * shown; the broker holds each request until there are new bytes, the
 * job ends, or the request's wait passes, so following costs no polling
 * (proto/PROTOCOL.md, FOLLOW).  The bytes go to stdout as they come;
 * what the client missed (it read slower than the job wrote) is said on
 * stderr, with how much.
 *
 * A lost broker is connected to again, as simq wait does, and asked from
 * the same offset: a restarted broker has that job's stream again as soon
 * as its worker is back, or, if the job ended meanwhile, only its kept
 * tail (the last SIMQ_TAIL_MAX bytes), in which the client finds where it
 * was (follow_tail), so no byte is shown twice or lost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simq.h"

/* How long one FOLLOW may be held: short enough to notice a dead
 * broker, long enough to be cheap. */
#define FOLLOW_SLICE_MS		10000

/* The last bytes shown, looked for in a kept tail: enough that output
 * repeating itself rarely matches too early. */
#define FOLLOW_LAST		4096

/* What the follower has shown last. */
struct shown {
	char	 last[FOLLOW_LAST];
	size_t	 len;
};

static void
write_all(const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if ((w = write(STDOUT_FILENO, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE)
				exit(EXIT_OK);
			die(EXIT_USAGE, "writing the output: %s",
			    strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
}

static void
shown_add(struct shown *sh, const char *p, size_t n)
{
	if (n >= FOLLOW_LAST) {
		memcpy(sh->last, p + n - FOLLOW_LAST, FOLLOW_LAST);
		sh->len = FOLLOW_LAST;
		return;
	}
	if (sh->len + n > FOLLOW_LAST) {
		memmove(sh->last, sh->last + sh->len + n - FOLLOW_LAST,
		    FOLLOW_LAST - n);
		sh->len = FOLLOW_LAST - n;
	}
	memcpy(sh->last + sh->len, p, n);
	sh->len += n;
}

/*
 * A tail=1 chunk (the kept tail of an ended job, data and len, when the
 * broker had no stream of it left: it restarted, or forgot it) for a
 * follower that has shown from bytes of the same attempt.  Returns how
 * many of its first bytes were shown already: a tail shorter than
 * SIMQ_TAIL_MAX is the whole stream, so from of them; else those up to
 * where the last bytes shown are found in it (the first place: output
 * that repeats itself may then repeat, none is lost).  Returns -1 if
 * they are not found.
 */
static ssize_t
follow_tail(const struct shown *sh, uint64_t from, const char *data,
    size_t len)
{
	const char	*hit;

	if (len < SIMQ_TAIL_MAX)
		return from <= len ? (ssize_t)from : -1;
	if (sh->len == 0 || (hit = memmem(data, len, sh->last,
	    sh->len)) == NULL)
		return -1;
	return (ssize_t)(hit - data + sh->len);
}

/*
 * Follows stream ("stdout" or "stderr") of job id until it ends.
 * start_ms (0: no limit) bounds the wait for a job that has not
 * started.  Returns the exit status: 0 when the job ended done, 1 when
 * it failed or was canceled, 2 (said on stderr) when it did not start in
 * time.  A lost broker is waited for as simq wait does (simq_reconnect).
 */
int
output_follow(const char *id, const char *stream, uint64_t start_ms)
{
	struct conn		*c;
	struct reply		*r;
	const struct item	*it;
	struct buf		 b;
	struct shown		 sh;
	const char		*st_s, *data;
	char			 tmp[64], d[FMT_MAX];
	uint64_t		 t0 = mono_ms(), from = 0, off, len, skipped;
	uint64_t		 att, attempt = 0, wait, now;
	size_t			 i;
	ssize_t			 seen;
	int			 have_from = 0, started = 0, st, shown = 0;

	c = simq_connect(0);
	c->soft = 1;
	sh.len = 0;
	buf_init(&b);
	for (;;) {
		wait = FOLLOW_SLICE_MS;
		now = mono_ms();
		if (start_ms > 0 && !started) {
			if (now - t0 >= start_ms)
				break;
			if (wait > start_ms - (now - t0))
				wait = start_ms - (now - t0);
		}
		buf_reset(&b);
		req_raw(&b, "FOLLOW");
		req_word(&b, id);
		req_raw(&b, stream);
		if (have_from) {
			snprintf(tmp, sizeof tmp, "from=%llu attempt=%llu",
			    (unsigned long long)from,
			    (unsigned long long)attempt);
			req_raw(&b, tmp);
		}
		snprintf(tmp, sizeof tmp, "wait=%llu", (unsigned long long)wait);
		req_raw(&b, tmp);
		if ((r = conn_request(c, &b)) == NULL) {
			c = simq_reconnect(c, "following on");
			continue;
		}
		if (r->kind == REPLY_ERR && r->err == PERR_NOTFOUND)
			die(EXIT_USAGE, "no job %s", id);
		if (r->kind == REPLY_ERR && r->err == PERR_BADREQ)
			die(EXIT_USAGE, "%s", r->errmsg);
		if (r->kind != REPLY_ITEMS || r->nitems != 1 ||
		    !item_is(&r->items[0], "chunk"))
			conn_die_reply(c, r, NULL);
		it = &r->items[0];
		st_s = item_get(it, "state");
		st = st_s != NULL ? proto_state_lookup(st_s, strlen(st_s)) : -1;
		off = item_num(it, "off");
		len = item_num(it, "len");
		att = item_num(it, "attempt");
		skipped = item_num(it, "skipped");
		data = NULL;
		for (i = 0; i < (size_t)it->nkv; i++)
			if (strcmp(it->kv[i].key, "data") == 0) {
				data = it->kv[i].val;
				len = it->kv[i].vlen;
			}
		if (st == JS_RUNNING)
			started = 1;
		/* Only bytes fix where the client is: before the first, the
		 * broker starts it at what it has (the running job's last
		 * 64 KiB), with no word of a skip. */
		if (len > 0 || (have_from && st == JS_RUNNING &&
		    att == attempt)) {
			if (shown && have_from && att != attempt)
				log_warn("job %s: attempt %llu; its %s follows",
				    id, (unsigned long long)att, stream);
			seen = -1;
			if (item_get(it, "tail") != NULL && have_from &&
			    att == attempt &&
			    (seen = follow_tail(&sh, from, data, len)) >= 0) {
				data += seen;
				len -= (size_t)seen;
				off += (uint64_t)seen;
			}
			if (item_get(it, "tail") != NULL && shown && seen < 0)
				log_warn("job %s: its %s was not kept while it "
				    "was not read; its last %s follow (bytes "
				    "before them may be missing or repeated)",
				    id, stream, fmt_size(d, len));
			if (skipped > 0)
				log_warn("job %s: %s skipped %s that came "
				    "faster than they were read", id, stream,
				    fmt_size(d, skipped));
			if (len > 0) {
				write_all(data, len);
				shown_add(&sh, data, len);
				shown = 1;
			}
			from = off + len;
			attempt = att;
			have_from = 1;
		}
		if (item_get(it, "end") != NULL) {
			reply_free(r);
			buf_free(&b);
			conn_close(c);
			if (len == 0 && !shown && st != JS_DONE)
				log_warn("job %s %s", id, st_s ? st_s : "ended");
			return st == JS_DONE ? EXIT_OK : EXIT_FAILED;
		}
		reply_free(r);
	}
	buf_free(&b);
	conn_close(c);
	error_say("job %s did not start within %s; see simq explain %s", id,
	    fmt_duration(d, start_ms), id);
	return EXIT_USAGE;
}
