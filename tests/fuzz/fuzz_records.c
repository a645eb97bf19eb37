/*
 * fuzz_records.c: the job model's record decoders and the snapshot reader
 * on arbitrary records, linked with the model alone (no connection, no
 * handler, no journal file).
 *
 * The input is a sequence of records, each
 *
 *	u8  type	16 + type % 16 (the model's types and a few unknown)
 *	u16 len		little-endian, cut to what is left
 *	    payload	len bytes
 *
 * applied in order as journal replay applies them (rec_apply with
 * B->replaying set) until one is refused, as replay stops at the first.
 * Then replay ends (job_replay_done) and the state is checked:
 *
 *   - its invariants: every queue's counts are the sums over its jobs,
 *     tasks and arrays' pending blocks; each array's counts too;
 *   - a snapshot of it, read back into an empty state, gives a state
 *     whose snapshot is byte for byte the same;
 *   - freeing it leaks nothing (the sanitizers' leak check).
 *
 * Besides "no crash, no sanitizer report, no fatal()" (libFuzzer reports
 * an exit as a crash).
 *
 * FUZZ_RECORDS_VERBOSE=1, to look at one input: says which record was
 * refused, lists the jobs after replay, and writes the two snapshots to
 * snap1.bin and snap2.bin in the current directory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simqd.h"
#include "log.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

#define NOW	UINT64_C(1700000000000)

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_records: %s\n", what);
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	memset(&B->cfg, 0, sizeof B->cfg);
	B->cfg.retention_ms = 3600000;
	B->cfg.backoff_base_ms = 1000;
	B->cfg.backoff_cap_ms = 8000;
	B->cfg.max_lost = 3;
	B->cfg.default_lease_ms = 30000;
	return 0;
}

/*
 * The timers due now, as the broker's first pass after replay fires them:
 * a journal replayed keeps a job whose delay passed during the downtime
 * waiting with its timer due, a snapshot read back queues it at once.
 * Only delays and backoffs can be due (a lease is at least LEASE_MIN_MS
 * from now), and they journal nothing.
 */
static void
fire(void)
{
	struct job	*j = heap_top(&B->timers);

	if (j != NULL && j->due <= B->now && j->state == JS_RUNNING)
		fail("a lease is due as replay ends");
	timers_fire();
}

static void
debug_arrays(void)
{
	struct job	*j;
	uint32_t	 i;

	TAILQ_FOREACH(j, &B->jobs, entry) {
		fprintf(stderr, "job %llu kind %d state %d gate %d left %u "
		    "where %d due %llu ndeps %u:", (unsigned long long)j->id,
		    j->kind, j->state, j->gate_open, j->ndeps_left, j->where,
		    (unsigned long long)j->due, j->opts->ndeps);
		for (i = 0; i < j->opts->ndeps; i++)
			fprintf(stderr, " %llu_%u",
			    (unsigned long long)j->opts->deps[i].id,
			    j->opts->deps[i].index);
		fprintf(stderr, "\n");
	}
}

/* A snapshot kept in memory: records as type, u32 length, payload. */
static int
collect(void *arg, uint8_t type, const void *p, size_t len)
{
	struct buf	*b = arg;

	buf_put_u8(b, type);
	buf_put_u32(b, (uint32_t)len);
	buf_put(b, p, len);
	return 0;
}

/* Replays a collected snapshot; every record must be taken. */
static void
replay_snapshot(const struct buf *b)
{
	struct rbuf	r;
	uint8_t		type;
	uint32_t	len;
	const void	*p;

	rbuf_init(&r, b->p, b->len);
	B->replaying = 1;
	while (rbuf_left(&r) > 0) {
		type = rbuf_u8(&r);
		len = rbuf_u32(&r);
		if ((p = rbuf_bytes(&r, len)) == NULL)
			fail("snapshot buffer torn");
		if (rec_apply(NULL, type, p, len) != 0) {
			if (getenv("FUZZ_RECORDS_VERBOSE") != NULL)
				fprintf(stderr, "snapshot record type %u, %u "
				    "bytes, refused\n", type, len);
			fail("a record of our own snapshot was refused");
		}
	}
	B->replaying = 0;
	job_replay_done();
	fire();
}

/* The counts kept incrementally, recomputed from the jobs. */
static void
check_counts(void)
{
	struct queue	*q;
	struct job	*j, *t;
	uint64_t	*sum;
	uint32_t	 nq = 0, i;
	int		 s;

	TAILQ_FOREACH(q, &B->queues, entry)
		nq++;
	if (nq != B->nqueues)
		fail("nqueues is not the number of queues");
	sum = calloc((size_t)nq + 1, JS__COUNT * sizeof *sum);
	if (sum == NULL)
		fail("out of memory");
	TAILQ_FOREACH(j, &B->jobs, entry) {
		i = 0;
		TAILQ_FOREACH(q, &B->queues, entry) {
			if (q == j->opts->q)
				break;
			i++;
		}
		if (q == NULL)
			fail("a job's queue is not in the list");
		if (j->kind == JK_JOB) {
			sum[i * JS__COUNT + j->state]++;
			continue;
		}
		struct array *a = j->arr;
		uint64_t c[JS__COUNT] = { 0 };
		c[j->state] += a->cut - a->cursor;
		c[a->cut_state] += a->ntasks - a->cut;
		uint64_t ntask = 0;
		TAILQ_FOREACH(t, &a->tasks, entry) {
			c[t->state]++;
			ntask++;
		}
		if (ntask != a->cursor)
			fail("an array's materialised tasks are not its cursor");
		for (s = 0; s < JS__COUNT; s++) {
			if (c[s] != a->count[s])
				fail("an array's count is not its tasks'");
			sum[i * JS__COUNT + s] += c[s];
		}
	}
	i = 0;
	TAILQ_FOREACH(q, &B->queues, entry) {
		for (s = 0; s < JS__COUNT; s++)
			if (q->count[s] != sum[i * JS__COUNT + s])
				fail("a queue's count is not its jobs'");
		i++;
	}
	free(sum);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf	 snap1, snap2;
	size_t		 off = 0, len;
	uint8_t		 type;

	broker_init();
	B->now = NOW;
	B->replaying = 1;
	while (size - off >= 3) {
		type = (uint8_t)(16 + data[off] % 16);
		len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		off += 3;
		if (len > size - off)
			len = size - off;
		if (rec_apply(NULL, type, data + off, len) != 0) {
			if (getenv("FUZZ_RECORDS_VERBOSE") != NULL)
				fprintf(stderr, "record at %zu (type %u) "
				    "refused\n", off - 3, type);
			break;
		}
		off += len;
	}
	B->replaying = 0;
	job_replay_done();
	fire();
	check_counts();
	if (getenv("FUZZ_RECORDS_VERBOSE") != NULL)
		debug_arrays();

	buf_init(&snap1);
	buf_init(&snap2);
	if (snapshot_records(collect, &snap1) != 0)
		fail("snapshot failed");
	if (getenv("FUZZ_RECORDS_VERBOSE") != NULL) {
		FILE *o = fopen("snap1.bin", "wb");
		fwrite(snap1.p, 1, snap1.len, o);
		fclose(o);
	}
	broker_free();
	broker_init();
	B->now = NOW;
	replay_snapshot(&snap1);
	check_counts();
	if (snapshot_records(collect, &snap2) != 0)
		fail("second snapshot failed");
	if (snap1.len != snap2.len || memcmp(snap1.p, snap2.p, snap1.len) != 0) {
		if (getenv("FUZZ_RECORDS_VERBOSE") != NULL) {
			FILE *o = fopen("snap1.bin", "wb");
			fwrite(snap1.p, 1, snap1.len, o);
			fclose(o);
			o = fopen("snap2.bin", "wb");
			fwrite(snap2.p, 1, snap2.len, o);
			fclose(o);
		}
		fail("the state read from a snapshot does not write the same "
		    "snapshot");
	}
	buf_free(&snap1);
	buf_free(&snap2);
	broker_free();
	return 0;
}
