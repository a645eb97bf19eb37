/*
 * report.c: the requests that end an attempt: FINISH, FAIL and RELEASE.
 *
 * A FINISH carries the last SIMQ_TAIL_MAX bytes of the job's stdout and
 * stderr and the first SIMQ_PAYLOAD_MAX bytes of its result file, read
 * from the files on disk each time the report is sent.  The job's files
 * are the record: nothing big stays in memory while a report waits for a
 * reconnect, and a report sent twice says the same thing twice.  The
 * body is read first and the line written after, so the lengths in the
 * line are always the lengths of what follows, even if a file changed.
 * The one exception: a stream whose file could not be written (a full
 * disk) has its tail in memory, kept by the shepherd, and the report
 * says why with outerr=.
 */
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "simq-worker.h"

/*
 * Appends up to max bytes of the file at path to body: the last ones
 * (tail) or the first ones.  size is what the shepherd saw (0: skip the
 * file without opening it, -1: no file).  Returns the bytes added.
 */
static size_t
file_part(struct evbuffer *body, const char *path, int64_t size,
    size_t max, int tail, int64_t *total)
{
	static char	 buf[65536];
	struct stat	 sb;
	off_t		 off = 0;
	size_t		 want, got = 0;
	ssize_t		 n;
	int		 fd;

	*total = 0;
	if (size <= 0)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return 0;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return 0;
	}
	*total = sb.st_size;
	want = (uint64_t)sb.st_size > max ? max : (size_t)sb.st_size;
	if (tail)
		off = sb.st_size - (off_t)want;
	if (want > sizeof buf)
		want = sizeof buf;
	while (got < want) {
		n = pread(fd, buf + got, want - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	evbuffer_add(body, buf, got);
	return got;
}

/* The tail of stdout (i 0) or stderr (1): from the file, or, when the
 * file could not be written, as the shepherd kept it. */
static size_t
stream_part(struct evbuffer *body, struct wjob *j, int i)
{
	const struct shep_msg	*m = &j->msg;
	int64_t			 total;

	if (m->outerr[i] != 0) {
		if (m->tail[i] > 0)
			evbuffer_add(body, j->tail[i], m->tail[i]);
		return m->tail[i];
	}
	return file_part(body, i ? j->errpath : j->outpath, i ? m->errsize :
	    m->outsize, SIMQ_TAIL_MAX, 1, &total);
}

static void
put_finish(struct evbuffer *out, struct wjob *j)
{
	const struct shep_msg	*m = &j->msg;
	struct evbuffer		*body = evbuffer_new();
	char			*enc;
	size_t			 outn, errn, resn;
	int64_t			 total;

	if (body == NULL)
		fatal("out of memory");
	outn = stream_part(body, j, 0);
	errn = stream_part(body, j, 1);
	resn = file_part(body, j->respath, m->ressize, SIMQ_PAYLOAD_MAX, 0,
	    &total);
	if (total > SIMQ_PAYLOAD_MAX)
		log_warn("job %s attempt %u: result file is %lld bytes; only "
		    "the first %d are kept", j->id, j->attempt,
		    (long long)total, SIMQ_PAYLOAD_MAX);

	evbuffer_add_printf(out, "FINISH %s %u", j->id, j->attempt);
	if (WIFSIGNALED(m->status))
		evbuffer_add_printf(out, " signal=%d", WTERMSIG(m->status));
	else
		evbuffer_add_printf(out, " exit=%d", WEXITSTATUS(m->status));
	if (j->timedout)
		evbuffer_add_printf(out, " timedout=1");
	if (j->oom)
		evbuffer_add_printf(out, " oom=1");
	evbuffer_add_printf(out, " start=%llu end=%llu utime=%llu stime=%llu "
	    "maxrss=%llu", (unsigned long long)m->start_ms,
	    (unsigned long long)m->end_ms, (unsigned long long)m->utime_us,
	    (unsigned long long)m->stime_us,
	    (unsigned long long)m->maxrss_kib);
	if (j->outerr != NULL) {
		size_t len = strlen(j->outerr);
		if (len > SIMQ_REASON_MAX)
			len = SIMQ_REASON_MAX;
		enc = xmalloc(PROTO_ENC_MAX(len) + 1);
		proto_encode(enc, j->outerr, len);
		evbuffer_add_printf(out, " outerr=%s", enc);
		free(enc);
	}
	/* The files collected (files.c), already encoded. */
	if (j->filewords != NULL)
		evbuffer_add_printf(out, " %s", j->filewords);
	enc = xmalloc(PROTO_ENC_MAX(strlen(j->outpath)) + 1);
	proto_encode(enc, j->outpath, strlen(j->outpath));
	evbuffer_add_printf(out, " outpath=%s out=%zu err=%zu res=%zu %zu\r\n",
	    enc, outn, errn, resn, outn + errn + resn);
	free(enc);
	evbuffer_add_buffer(out, body);
	evbuffer_add(out, "\r\n", 2);
	evbuffer_free(body);
}

int
report_put(struct evbuffer *out, struct wjob *j)
{
	char	*enc;
	size_t	 len;

	if (j->held_back)
		return -1;	/* pilot.c decides what it is */
	switch (j->report) {
	case REP_FINISH:
		put_finish(out, j);
		return 0;
	case REP_FAIL:
		len = strlen(j->reason);
		if (len > SIMQ_REASON_MAX)
			len = SIMQ_REASON_MAX;
		enc = xmalloc(PROTO_ENC_MAX(len) + 1);
		proto_encode(enc, j->reason, len);
		evbuffer_add_printf(out, "FAIL %s %u %s\r\n", j->id,
		    j->attempt, enc);
		free(enc);
		return 0;
	case REP_RELEASE:
		evbuffer_add_printf(out, "RELEASE %s %u\r\n", j->id,
		    j->attempt);
		return 0;
	case REP_LOST:
		evbuffer_add_printf(out, "RELEASE %s %u lost=1\r\n", j->id,
		    j->attempt);
		return 0;
	case REP_NONE:
		break;
	}
	return -1;
}
