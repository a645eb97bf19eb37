/*
 * test_records.c: the journal's records, byte for byte.
 *
 * Each record type is encoded from a known state and compared with bytes
 * committed here, and the committed bytes are decoded (rec_apply, as
 * replay does) and the state they make is checked.  A change to a record
 * that is not a deliberate format change fails here; a deliberate one
 * bumps JOURNAL_VERSION (journal.h), keeps a reader for the old layout,
 * and adds the new bytes next to the old ones, which must still decode.
 *
 * SIMQ_FIXTURES_PRINT=1 prints the bytes each test encodes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "simqd.h"
#include "log.h"

#define NOW	UINT64_C(1700000000000)

static int
setup(void **st)
{
	(void)st;
	memset(&B->cfg, 0, sizeof B->cfg);
	B->cfg.retention_ms = 3600000;
	B->cfg.backoff_base_ms = 1000;
	B->cfg.backoff_cap_ms = 8000;
	B->cfg.max_lost = 2;
	B->cfg.default_lease_ms = 30000;
	broker_init();
	B->now = NOW;
	return 0;
}

static int
teardown(void **st)
{
	(void)st;
	broker_free();
	return 0;
}

/* Hex to bytes; the caller frees. */
static uint8_t *
unhex(const char *hex, size_t *len)
{
	size_t		 n = strlen(hex) / 2, i;
	uint8_t		*p = malloc(n ? n : 1);
	unsigned	 v;

	assert_int_equal(strlen(hex) % 2, 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		p[i] = (uint8_t)v;
	}
	*len = n;
	return p;
}

/* Compares what was encoded with the committed bytes. */
static void
same_bytes(const char *what, const struct buf *b, const char *hex)
{
	char	*got = malloc(b->len * 2 + 1);
	size_t	 i;

	for (i = 0; i < b->len; i++)
		snprintf(got + 2 * i, 3, "%02x", b->p[i]);
	got[2 * b->len] = '\0';
	if (getenv("SIMQ_FIXTURES_PRINT") != NULL) {
		printf("%s:\n\t\"%s\"\n", what, got);
		free(got);
		return;
	}
	if (strcmp(got, hex) != 0)
		fail_msg("%s: the record's bytes changed:\nwant %s\ngot  %s",
		    what, hex, got);
	free(got);
}

/* Applies committed bytes as replay does; returns rec_apply's verdict. */
static int
apply(uint8_t type, const char *hex)
{
	size_t	 len;
	uint8_t	*p = unhex(hex, &len);
	int	 rc;

	B->replaying = 1;
	rc = rec_apply(NULL, type, p, len);
	B->replaying = 0;
	free(p);
	return rc;
}

static struct jobopts *
opts(const char *s)
{
	static struct proto_jobopts	po;
	static struct proto_word	w[32];
	static char			line[512];
	char				msg[128];
	int				n;
	struct jobopts			*o;

	snprintf(line, sizeof line, "%s", s);
	n = proto_split(line, strlen(line), w, 32);
	assert_int_equal(proto_jobopts_parse(&po, w, n, msg, sizeof msg),
	    PERR_NONE);
	o = jobopts_new(&po, queue_get(po.queue.p, po.queue.len, 1));
	return o;
}

static struct cmd *
argv2(const char *a, const char *b)
{
	char	data[64];
	size_t	la = strlen(a) + 1, lb = strlen(b) + 1;

	memcpy(data, a, la);
	memcpy(data + la, b, lb);
	return cmd_new(data, (uint32_t)(la + lb), 2);
}

/* The committed bytes, one string per record. */

/* SUBMIT of job 7 with every option set, not before NOW + 5 s. */
static const char SUBMIT_JOB[] =
	"0700000000000000010000000068e5cf8b010000887be5cf8b0100000473696d"
	"73fdffffffffffffff60ea00000000000002000000056e206f6e65022f77052f"
	"6f2f256a02000000034b3d5602453d020000000300000000000000ffffffff04"
	"00000000000000050000000002096563686f0061206200";
/* SUBMIT of array 8, 1-9:2%3. */
static const char SUBMIT_ARRAY[] =
	"0800000000000000010000000068e5cf8b010000000000000000000003617272"
	"0000000000000000000000000000000000000000000000000000000000000001"
	"01000000090000000200000003000000020773696d007b7d00";
/* SUBMIT of a batch of two, 10 and 11. */
static const char SUBMIT_BATCH[] =
	"0a00000000000000020000000068e5cf8b010000000000000000000007646566"
	"61756c7400000000000000000000000000000000000000000000000000000000"
	"00000000020461003100020462003200";
/* LEASE of job 7, attempt 1, to w1 on h1 for 30 s. */
static const char LEASE[] =
	"0700000000000000ffffffff01000000027731026831707fe5cf8b0100003075"
	"000000000000";
/* FINISH of job 7 attempt 1: failed, with a whole result. */
static const char FINISH[] =
	"0700000000000000ffffffff01000000040000000000000000f0fe95ffbc31cc"
	"8a96ffbc31b08b96ffbc31040000b00922d5bb03027731026831042f6f2f370d"
	"657869742073746174757320330302016f7574657252";
/* REQUEUE of task 8_1, attempt 1, lost, due again at NOW + 1 s. */
static const char REQUEUE[] =
	"0800000000000000010000000100000001e86be5cf8b0100000068e5cf8b0100"
	"00";
/* CANCEL (and RETRY: the same bytes) of array 8. */
static const char EVENT[] =
	"0800000000000000ffffffff0068e5cf8b010000";
/* PAUSE (and RESUME) of queue sims. */
static const char QUEUE[] =
	"0473696d73";
/* A snapshot of the state the records above make: REC_NEXTID, REC_PAUSE,
 * REC_OPTS and REC_JOBs as type byte, u32 length, payload. */
static const char SNAPSHOT[] =
	"18080000000c000000000000001604000000036172721a50000000000473696d"
	"73fdffffffffffffff60ea00000000000002000000056e206f6e65022f77052f"
	"6f2f256a02000000034b3d5602453d020000000300000000000000ffffffff04"
	"00000000000000050000001958000000070000040400000180d095ffbc310000"
	"02096563686f0061206200f0fe95ffbc31cc8a96ffbc31b08b96ffbc31040000"
	"b00922d5bb03027731026831042f6f2f370d6578697420737461747573203303"
	"02016f75746572521a2400000001036172720000000000000000000000000000"
	"00000000000000000000000000000000001920000000080001010100000080d0"
	"95ffbc310001020773696d007b7d0001090203010500191e0000000802020202"
	"00000180d095ffbc310002773102683180d095ffbc31b0ea011a280000000207"
	"64656661756c7400000000000000000000000000000000000000000000000000"
	"00000000000019160000000a0000010000000080d095ffbc3100020204610031"
	"0019160000000b0000010000000080d095ffbc310002020462003200";

/* Records added since the first layout (the old bytes above still
 * decode). */

/* SUBMIT of job 12 after=3,any:4_5,failed:6: the dependency count's top
 * bit says a kind byte follows each. */
static const char SUBMIT_KINDS[] =
	"0c00000000000000010000000068e5cf8b010000000000000000000007646566"
	"61756c7400000000000000000000000000000000000000000000000000000003"
	"0000800300000000000000ffffffff0004000000000000000500000001060000"
	"0000000000ffffffff020002076563686f007800";
/* CUT of array 8 from position 2 on, at NOW. */
static const char CUT[] =
	"080000000000000002000000000000000068e5cf8b010000";
/* CANCEL of task 8_5, which no worker has taken (the EVENT layout). */
static const char EVENT_TASK[] =
	"0800000000000000050000000068e5cf8b010000";
/* A snapshot of: array 8 with task 8_5 canceled alone (a record past the
 * cursor), the rest from position 3 on cut off; job 12 failed because its
 * dependency did (REC_JOB flag 0x8). */
static const char SNAPSHOT_2[] =
	"18080000000c000000000000001a240000000003617272000000000000000000"
	"0000000000000000000000000000000000000000000019200000000800010101"
	"00000080d095ffbc310000020773696d007b7d0001090203000305192c000000"
	"080602050400000080d095ffbc3100000080d095ffbc31000000000000000000"
	"0863616e63656c65640000001a28000000010764656661756c74000000000000"
	"0000000000000000000000000000000000000000000000000019330000000a00"
	"00050400000080d095ffbc310001020461003100000080d095ffbc3100000000"
	"00000000000863616e63656c656400000019410000000b0000040c00000080d0"
	"95ffbc310001020462003200000080d095ffbc31000000000000000000166465"
	"70656e64656e63792031302063616e63656c6564000000";

/* Version 3: SUBMIT of job 13 asking for cpus=4 gpus=2 mem=1 MiB (the
 * dependency count's second bit says that three varints follow). */
static const char SUBMIT_RES[] =
	"0d00000000000000010000000068e5cf8b010000000000000000000007646566"
	"61756c7400000000000000000000000000000000000000000000000000000000"
	"0000400402808040000208747261696e007800";
/* The same with the resources flag but the defaults after it: refused,
 * one layout per meaning. */
static const char SUBMIT_RES_DEFAULTS[] =
	"0d00000000000000010000000068e5cf8b010000000000000000000007646566"
	"61756c7400000000000000000000000000000000000000000000000000000000"
	"000040010000000208747261696e007800";
/* A snapshot of job 13, queued: its options carry the resources. */
static const char SNAPSHOT_RES[] =
	"18080000000e000000000000001a2d000000000764656661756c740000000000"
	"0000000000000000000000000000000000000000000000000040040280804019"
	"1a0000000d0000010000000080d095ffbc3100000208747261696e007800";
/* EACHLINE: array 14, one task per line, the lines after the command
 * (journal version 4). */
static const char SUBMIT_LINES[] =
	"0e00000000000000010000000068e5cf8b0100000000000000000000056c696e"
	"6573000000000000000000000000000000000000000000000000000000000000"
	"00020100000003000000010000000000000002086563686f007b7d000312616c"
	"7068610a0a626574612067616d6d610a";
/* A snapshot of it, its first task taken: the lines with the array. */
static const char SNAPSHOT_LINES[] =
	"18080000000f000000000000001a2600000000056c696e657300000000000000"
	"00000000000000000000000000000000000000000000000019350000000e0001"
	"011100000080d095ffbc31000002086563686f007b7d00010301000103000312"
	"616c7068610a0a626574612067616d6d610a191c0000000e0202020200000180"
	"d095ffbc31000277310080d095ffbc31b0ea01";


/* Version 6: REC_EPOCH, kind, epoch, id limit.  A start after a crash
 * (kind 1) of epoch 2 reserving ids below 65543; a reservation (kind 2)
 * of epoch 2 up to 70000; a clean stop (kind 3) of epoch 2 at id 12. */
static const char EPOCH_BUMP_REC[] =
	"0102000000000000000700010000000000";
static const char EPOCH_RESERVE_REC[] =
	"0202000000000000007011010000000000";
static const char EPOCH_CLOSE_REC[] =
	"0302000000000000000c00000000000000";

static struct job *
make_job7(void)
{
	struct jobopts	*o = opts("q=sims pri=-3 timeout=60000 retries=2 "
			    "name=n%20one cwd=/w output=/o/%25j env=K=V env=E= "
			    "after=3,4_5");
	struct cmd	*c = argv2("echo", "a b");
	struct buf	 b;
	struct job	*j;

	B->next_id = 7;
	buf_init(&b);
	rec_submit(&b, 7, 1, o, &c, NULL, NOW, NOW + 5000);
	same_bytes("SUBMIT_JOB", &b, SUBMIT_JOB);
	buf_free(&b);
	B->replaying = 1;
	j = job_submit(7, 1, o, &c, NULL, NOW, NOW + 5000);
	B->replaying = 0;
	jobopts_unref(o);
	return j;
}

static void
test_submit(void **st)
{
	struct buf		 b;
	struct jobopts		*o;
	struct cmd		*c[2];
	struct array_spec	 spec = { 1, 9, 2, 3 };
	struct job		*j;

	(void)st;
	make_job7();
	o = opts("q=arr");
	c[0] = argv2("sim", "{}");
	buf_init(&b);
	rec_submit(&b, 8, 1, o, c, &spec, NOW, 0);
	same_bytes("SUBMIT_ARRAY", &b, SUBMIT_ARRAY);
	buf_reset(&b);
	free(c[0]);
	jobopts_unref(o);
	o = opts("");
	c[0] = argv2("a", "1");
	c[1] = argv2("b", "2");
	rec_submit(&b, 10, 2, o, c, NULL, NOW, 0);
	same_bytes("SUBMIT_BATCH", &b, SUBMIT_BATCH);
	buf_free(&b);
	free(c[0]);
	free(c[1]);
	jobopts_unref(o);
	broker_free();
	broker_init();

	/* The committed bytes make the same jobs. */
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_JOB), 0);
	j = idmap_get(7, SIMQ_NOINDEX);
	assert_non_null(j);
	assert_string_equal(j->opts->q->name, "sims");
	assert_int_equal(j->opts->prio, -3);
	assert_int_equal(j->opts->timeout_ms, 60000);
	assert_int_equal(j->opts->retries, 2);
	assert_string_equal(j->opts->name, "n one");
	assert_string_equal(j->opts->cwd, "/w");
	assert_string_equal(j->opts->output, "/o/%j");
	assert_int_equal(j->opts->nenv, 2);
	assert_string_equal(j->opts->env[0], "K=V");
	assert_string_equal(j->opts->env[1], "E=");
	assert_int_equal(j->opts->ndeps, 2);
	assert_int_equal(j->opts->deps[0].id, 3);
	assert_int_equal(j->opts->deps[0].index, SIMQ_NOINDEX);
	assert_int_equal(j->opts->deps[1].id, 4);
	assert_int_equal(j->opts->deps[1].index, 5);
	assert_int_equal(j->cmd->argc, 2);
	assert_memory_equal(j->cmd->data, "echo\0a b\0", 9);
	assert_int_equal(j->submitted, NOW);
	assert_int_equal(j->due, NOW + 5000);
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_ARRAY), 0);
	j = idmap_get(8, SIMQ_NOINDEX);
	assert_int_equal(j->kind, JK_ARRAY);
	assert_int_equal(j->arr->ntasks, 5);
	assert_int_equal(j->arr->spec.maxrun, 3);
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_BATCH), 0);
	assert_non_null(idmap_get(10, SIMQ_NOINDEX));
	assert_non_null(idmap_get(11, SIMQ_NOINDEX));
	assert_int_equal(B->next_id, 12);
	/* An id below the next one is refused: ids are never reused. */
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_JOB), -1);
}

/* Job 7 leased to w1 (built, not replayed). */
static struct job *
leased7(void)
{
	struct job	*j = make_job7();
	struct worker	*w = worker_get("w1", 1);
	struct buf	 b;

	w->host = strdup("h1");
	w->lease_ms = 30000;
	B->replaying = 1;
	job_lease(j, w, 1, NOW + 6000, NOW + 36000);
	B->replaying = 0;
	buf_init(&b);
	rec_lease(&b, j, "w1", "h1", 30000);
	same_bytes("LEASE", &b, LEASE);
	buf_free(&b);
	return j;
}

static struct result *
result(void)
{
	struct result	*r = calloc(1, sizeof *r);

	r->started = NOW + 6000;
	r->ended = NOW + 7500;
	r->finished = NOW + 7600;
	r->exit = 3;
	r->utime = 1200;
	r->stime = 34;
	r->maxrss = 56789;
	r->worker = strdup("w1");
	r->host = strdup("h1");
	r->outpath = strdup("/o/7");
	r->reason = strdup("exit status 3");
	r->outlen = 3;
	r->errlen = 2;
	r->reslen = 1;
	r->data = malloc(6);
	memcpy(r->data, "outerR", 6);
	return r;
}

static void
test_lease_finish(void **st)
{
	struct job	*j;
	struct buf	 b;

	(void)st;
	j = leased7();
	B->now = NOW + 7600;		/* when the broker heard of it */
	B->replaying = 1;
	job_finish(j, result(), JS_FAILED, 0);
	B->replaying = 0;
	B->now = NOW;
	buf_init(&b);
	rec_finish(&b, j);
	same_bytes("FINISH", &b, FINISH);
	buf_free(&b);
	broker_free();
	broker_init();

	assert_int_equal(apply(REC_SUBMIT, SUBMIT_JOB), 0);
	assert_int_equal(apply(REC_FINISH, FINISH), -1);	/* not running */
	assert_int_equal(apply(REC_LEASE, LEASE), 0);
	j = idmap_get(7, SIMQ_NOINDEX);
	assert_int_equal(j->state, JS_RUNNING);
	assert_int_equal(j->attempts, 1);
	assert_string_equal(j->run->w->name, "w1");
	assert_string_equal(j->run->w->host, "h1");
	assert_int_equal(j->run->started, NOW + 6000);
	assert_int_equal(j->run->w->lease_ms, 30000);
	assert_int_equal(apply(REC_FINISH, FINISH), 0);
	assert_int_equal(j->state, JS_FAILED);
	assert_int_equal(j->res->started, NOW + 6000);
	assert_int_equal(j->res->ended, NOW + 7500);
	assert_int_equal(j->res->finished, NOW + 7600);
	assert_int_equal(j->res->exit, 3);
	assert_int_equal(j->res->utime, 1200);
	assert_int_equal(j->res->stime, 34);
	assert_int_equal(j->res->maxrss, 56789);
	assert_string_equal(j->res->worker, "w1");
	assert_string_equal(j->res->outpath, "/o/7");
	assert_string_equal(j->res->reason, "exit status 3");
	assert_int_equal(j->res->outlen + j->res->errlen + j->res->reslen, 6);
	assert_memory_equal(j->res->data, "outerR", 6);
}

static void
test_requeue_event_queue(void **st)
{
	struct job	*a, *t;
	struct worker	*w;
	struct buf	 b;
	int		 reserved = 0;

	(void)st;
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_ARRAY), 0);
	a = idmap_get(8, SIMQ_NOINDEX);
	w = worker_get("w1", 1);
	B->replaying = 1;
	t = job_take(a->opts->q, w, &fit_any, NULL, &reserved);
	B->replaying = 0;
	assert_int_equal(t->index, 1);
	buf_init(&b);
	rec_requeue(&b, t, 1, NOW + 1000);
	same_bytes("REQUEUE", &b, REQUEUE);
	buf_reset(&b);
	rec_event(&b, a);
	same_bytes("EVENT", &b, EVENT);
	buf_reset(&b);
	rec_queue(&b, queue_get("arr", 3, 0));
	buf_free(&b);
	buf_init(&b);
	rec_queue(&b, queue_get("sims", 4, 1));
	same_bytes("QUEUE", &b, QUEUE);
	buf_free(&b);

	assert_int_equal(apply(REC_REQUEUE, REQUEUE), 0);
	assert_int_equal(t->state, JS_WAITING);
	assert_int_equal(t->lost, 1);
	assert_int_equal(t->due, NOW + 1000);
	assert_int_equal(apply(REC_CANCEL, EVENT), 0);
	assert_int_equal(job_array_state(a), JS_CANCELED);
	assert_int_equal(apply(REC_RETRY, EVENT), 0);
	assert_int_equal(a->arr->count[JS_CANCELED], 0);
	assert_int_equal(apply(REC_PAUSE, QUEUE), 0);
	assert_int_equal(queue_get("sims", 4, 0)->paused, 1);
	assert_int_equal(apply(REC_RESUME, QUEUE), 0);
	assert_int_equal(queue_get("sims", 4, 0)->paused, 0);
}

static int
collect(void *arg, uint8_t type, const void *p, size_t len)
{
	struct buf	*b = arg;

	buf_put_u8(b, type);
	buf_put_u32(b, (uint32_t)len);
	buf_put(b, p, len);
	return 0;
}

/* Replays a snapshot stream made by collect(). */
static void
replay_stream(const char *hex)
{
	size_t		 n;
	uint8_t		*p = unhex(hex, &n);
	struct rbuf	 r;

	rbuf_init(&r, p, n);
	B->replaying = 1;
	while (rbuf_left(&r) > 0) {
		uint8_t type = rbuf_u8(&r);
		uint32_t len = rbuf_u32(&r);
		const void *q = rbuf_bytes(&r, len);
		assert_non_null(q);
		assert_int_equal(rec_apply(NULL, type, q, len), 0);
	}
	B->replaying = 0;
	job_replay_done();
	free(p);
}

/* Records of files that travel with jobs (version 4): file= and collect=
 * behind bit 29 of the options' dependency count, got=, nomatch= and
 * collerr= behind bit 1 of a result's timedout.  The records above,
 * without them, keep their bytes. */
#define HA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define HB "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* SUBMIT of job 13 with two files and a collect pattern. */
static const char SUBMIT_FILES[] =
	"0d00000000000000010000000068e5cf8b010000000000000000000007646566"
	"61756c7400000000000000000000000000000000000000000000000000000000"
	"000020029f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15"
	"b0f00a0804a40306696e2e747874e3b0c44298fc1c149afbf4c8996fb92427ae"
	"41e4649b934ca495991b7852b85500ed030862696e2f7220756e01052a2e6373"
	"7600020c73680062696e2f7220756e00";
/* LEASE of job 13, attempt 1, to w1 on h1. */
static const char LEASE_FILES[] =
	"0d00000000000000ffffffff01000000027731026831707fe5cf8b0100003075"
	"000000000000";
/* FINISH of job 13 attempt 1: done, one file collected, one pattern
 * that matched nothing, one note. */
static const char FINISH_GOT[] =
	"0d00000000000000ffffffff01000000030000000000000000f0fe95ffbc31cc"
	"8a96ffbc31b08b96ffbc3101000200000002773100000000000001e3b0c44298"
	"fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855008003096f"
	"75742f722e63737601052a2e6c6f67011a6269672e62696e3a206c6172676572"
	"207468616e2031204d6942";
/* The snapshot of that state. */
static const char SNAPSHOT_3[] =
	"18080000000e000000000000001a86000000000764656661756c740000000000"
	"0000000000000000000000000000000000000000000000000020029f86d08188"
	"4c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0804a4030669"
	"6e2e747874e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca49599"
	"1b7852b85500ed030862696e2f7220756e01052a2e63737619900000000d0000"
	"030400000180d095ffbc310000020c73680062696e2f7220756e00f0fe95ffbc"
	"31cc8a96ffbc31b08b96ffbc3101000200000002773100000000000001e3b0c4"
	"4298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855008003"
	"096f75742f722e63737601052a2e6c6f67011a6269672e62696e3a206c617267"
	"6572207468616e2031204d6942";

static uint64_t
refs(const char *hex)
{
	uint8_t		 h[SIMQ_HASH_LEN];
	struct blob	*b;

	assert_int_equal(proto_parse_hash(hex, strlen(hex), h), 0);
	return (b = blob_find(h)) != NULL ? b->refs : 0;
}

static struct result *
result_got(void)
{
	struct result	*r = calloc(1, sizeof *r);
	struct jobfiles	*g = jobfiles_new();

	r->started = NOW + 6000;
	r->ended = NOW + 7500;
	r->finished = NOW + 7600;
	r->exit = 0;
	r->worker = strdup("w1");
	g->files = calloc(1, sizeof *g->files);
	assert_int_equal(proto_parse_hash(HB, 64, g->files[0].hash), 0);
	g->files[0].size = 0;
	g->files[0].mode = 0600;
	g->files[0].name = strdup("out/r.csv");
	g->nfiles = 1;
	g->pat = calloc(1, sizeof *g->pat);
	g->pat[g->npat++] = strdup("*.log");
	g->err = calloc(1, sizeof *g->err);
	g->err[g->nerr++] = strdup("big.bin: larger than 1 MiB");
	r->got = g;
	jobfiles_ref(g, 1);
	return r;
}

static void
test_files_records(void **st)
{
	struct jobopts	*o;
	struct cmd	*c;
	struct worker	*w;
	struct job	*j;
	struct buf	 b;

	(void)st;
	/* Encoded from a known state. */
	o = opts("file=" HA ":4:644:in.txt file=" HB ":0:755:bin/r%20un "
	    "collect=*.csv");
	assert_int_equal(refs(HA), 1);
	c = argv2("sh", "bin/r un");
	B->next_id = 13;
	buf_init(&b);
	rec_submit(&b, 13, 1, o, &c, NULL, NOW, 0);
	same_bytes("SUBMIT_FILES", &b, SUBMIT_FILES);
	buf_reset(&b);
	B->replaying = 1;
	j = job_submit(13, 1, o, &c, NULL, NOW, 0);
	B->replaying = 0;
	jobopts_unref(o);
	assert_int_equal(refs(HA), 1);
	w = worker_get("w1", 1);
	w->host = strdup("h1");
	w->lease_ms = 30000;
	B->replaying = 1;
	job_lease(j, w, 1, NOW + 6000, NOW + 36000);
	B->replaying = 0;
	rec_lease(&b, j, "w1", "h1", 30000);
	same_bytes("LEASE_FILES", &b, LEASE_FILES);
	buf_reset(&b);
	B->now = NOW + 7600;
	B->replaying = 1;
	job_finish(j, result_got(), JS_DONE, 0);
	B->replaying = 0;
	B->now = NOW;
	assert_int_equal(refs(HB), 2);	/* a file= and a got= */
	rec_finish(&b, j);
	same_bytes("FINISH_GOT", &b, FINISH_GOT);
	buf_reset(&b);
	assert_int_equal(snapshot_records(collect, &b), 0);
	same_bytes("SNAPSHOT_3", &b, SNAPSHOT_3);
	buf_free(&b);
	broker_free();
	broker_init();
	assert_int_equal(refs(HA), 0);

	/* Decoded, as replay does: the same state, the same counts. */
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_FILES), 0);
	j = idmap_get(13, SIMQ_NOINDEX);
	assert_non_null(j->opts->files);
	assert_int_equal(j->opts->files->nfiles, 2);
	assert_string_equal(j->opts->files->files[1].name, "bin/r un");
	assert_int_equal(j->opts->files->files[1].mode, 0755);
	assert_int_equal(j->opts->files->files[0].size, 4);
	assert_int_equal(j->opts->files->npat, 1);
	assert_string_equal(j->opts->files->pat[0], "*.csv");
	assert_int_equal(refs(HA), 1);
	assert_int_equal(apply(REC_LEASE, LEASE_FILES), 0);
	assert_int_equal(apply(REC_FINISH, FINISH_GOT), 0);
	assert_int_equal(j->state, JS_DONE);
	assert_non_null(j->res->got);
	assert_int_equal(j->res->got->nfiles, 1);
	assert_string_equal(j->res->got->files[0].name, "out/r.csv");
	assert_int_equal(j->res->got->files[0].mode, 0600);
	assert_string_equal(j->res->got->pat[0], "*.log");
	assert_string_equal(j->res->got->err[0], "big.bin: larger than 1 MiB");
	assert_int_equal(refs(HB), 2);
	/* Retention forgets the job: nothing names the blobs any more. */
	job_expire(NOW + 7600 + B->cfg.retention_ms);
	assert_int_equal(refs(HA), 0);
	assert_int_equal(refs(HB), 0);
	assert_null(idmap_get(13, SIMQ_NOINDEX));

	/* From the snapshot too, and back to the same bytes. */
	broker_free();
	broker_init();
	replay_stream(SNAPSHOT_3);
	j = idmap_get(13, SIMQ_NOINDEX);
	assert_int_equal(j->state, JS_DONE);
	assert_int_equal(j->opts->files->nfiles, 2);
	assert_int_equal(j->res->got->nfiles, 1);
	assert_int_equal(refs(HA), 1);
	assert_int_equal(refs(HB), 2);
	buf_init(&b);
	assert_int_equal(snapshot_records(collect, &b), 0);
	same_bytes("SNAPSHOT_3 (read back)", &b, SNAPSHOT_3);
	buf_free(&b);
}

/* A record whose file name would escape the job's directory, or whose
 * counts pass the protocol's limits, is refused, whatever wrote it. */
static void
test_files_records_bad(void **st)
{
	char	*bad = strdup(SUBMIT_FILES);
	char	*p;

	(void)st;
	/* "in.txt" is 06696e2e747874: make it "..%2Etxt" -> "../txt". */
	assert_non_null(p = strstr(bad, "06696e2e747874"));
	memcpy(p, "062e2e2f747874", 14);
	assert_int_equal(apply(REC_SUBMIT, bad), -1);
	assert_int_equal(refs(HA), 0);
	assert_int_equal(refs(HB), 0);
	free(bad);
}

static void
test_snapshot(void **st)
{
	struct job	*j, *a, *t;
	struct worker	*w;
	struct buf	 b;
	int		 reserved = 0;

	(void)st;
	/* A finished job with a result, an array with a running task, a
	 * waiting job, a paused queue. */
	j = leased7();
	B->now = NOW + 7600;		/* when the broker heard of it */
	B->replaying = 1;
	job_finish(j, result(), JS_FAILED, 0);
	B->replaying = 0;
	B->now = NOW;
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_ARRAY), 0);
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_BATCH), 0);
	a = idmap_get(8, SIMQ_NOINDEX);
	w = worker_get("w1", 1);
	B->replaying = 1;
	t = job_take(a->opts->q, w, &fit_any, NULL, &reserved);
	B->replaying = 0;
	assert_non_null(t);
	B->replaying = 1;
	queue_pause(queue_get("arr", 3, 0), 1);
	B->replaying = 0;
	buf_init(&b);
	assert_int_equal(snapshot_records(collect, &b), 0);
	same_bytes("SNAPSHOT", &b, SNAPSHOT);
	buf_free(&b);
	broker_free();
	broker_init();

	replay_stream(SNAPSHOT);
	j = idmap_get(7, SIMQ_NOINDEX);
	assert_int_equal(j->state, JS_FAILED);
	assert_memory_equal(j->res->data, "outerR", 6);
	assert_string_equal(j->opts->env[1], "E=");
	a = idmap_get(8, SIMQ_NOINDEX);
	assert_int_equal(a->arr->cursor, 1);
	t = idmap_get(8, 1);
	assert_int_equal(t->state, JS_RUNNING);
	assert_string_equal(t->run->w->name, "w1");
	assert_int_equal(queue_get("arr", 3, 0)->paused, 1);
	assert_int_equal(B->next_id, 12);
	buf_init(&b);
	assert_int_equal(snapshot_records(collect, &b), 0);
	same_bytes("SNAPSHOT (read back)", &b, SNAPSHOT);
	buf_free(&b);
}

static void
test_kinds_cut_pending(void **st)
{
	struct jobopts	*o;
	struct cmd	*c;
	struct job	*a, *t, *j;
	struct buf	 b;

	(void)st;
	o = opts("after=3,any:4_5,failed:6");
	c = argv2("echo", "x");
	buf_init(&b);
	rec_submit(&b, 12, 1, o, &c, NULL, NOW, 0);
	same_bytes("SUBMIT_KINDS", &b, SUBMIT_KINDS);
	free(c);
	jobopts_unref(o);
	buf_reset(&b);
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_ARRAY), 0);
	a = idmap_get(8, SIMQ_NOINDEX);
	rec_cut(&b, a, 2);
	same_bytes("CUT", &b, CUT);
	buf_reset(&b);
	B->replaying = 1;
	t = array_task(a, 5);
	B->replaying = 0;
	rec_event(&b, t);
	same_bytes("EVENT_TASK", &b, EVENT_TASK);
	buf_free(&b);
	broker_free();
	broker_init();

	/* The committed bytes make the same state. */
	B->next_id = 12;
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_KINDS), 0);
	j = idmap_get(12, SIMQ_NOINDEX);
	assert_int_equal(j->opts->ndeps, 3);
	assert_non_null(j->opts->depkind);
	assert_int_equal(j->opts->depkind[0], SIMQ_DEP_OK);
	assert_int_equal(j->opts->depkind[1], SIMQ_DEP_ANY);
	assert_int_equal(j->opts->deps[1].index, 5);
	assert_int_equal(j->opts->depkind[2], SIMQ_DEP_FAILED);
	/* Dependencies 3, 4_5 and 6 are gone (done): ok and any are met,
	 * failed never will be. */
	assert_int_equal(j->state, JS_CANCELED);
	broker_free();
	broker_init();
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_ARRAY), 0);
	a = idmap_get(8, SIMQ_NOINDEX);
	assert_int_equal(apply(REC_CANCEL, EVENT_TASK), 0);
	t = idmap_get(8, 5);
	assert_non_null(t);
	assert_int_equal(t->state, JS_CANCELED);
	assert_int_equal(a->arr->nexc, 1);
	assert_int_equal(apply(REC_CANCEL, EVENT_TASK), 0);	/* no-op */
	assert_int_equal(apply(REC_RETRY, EVENT_TASK), 0);
	assert_int_equal(t->state, JS_QUEUED);
	assert_int_equal(apply(REC_CUT, CUT), 0);
	assert_int_equal(a->arr->cut, 2);
	assert_int_equal(a->arr->count[JS_CANCELED], 2);	/* 7 and 9 */
	assert_int_equal(a->arr->nexc_cut, 1);
	assert_int_equal(apply(REC_CUT, CUT), -1);	/* does not fit */
	/* A pending task's RETRY that does not fit its state is refused. */
	assert_int_equal(apply(REC_RETRY, "0800000000000000030000000068e5cf8b"
	    "010000"), -1);
}

static void
test_snapshot_2(void **st)
{
	struct job	*a, *j;
	struct buf	 b;

	(void)st;
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_ARRAY), 0);
	a = idmap_get(8, SIMQ_NOINDEX);
	B->replaying = 1;
	job_cancel(array_task(a, 5), "canceled");
	job_cut(a, 3);
	B->replaying = 0;
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_BATCH), 0);
	j = idmap_get(10, SIMQ_NOINDEX);
	B->replaying = 1;
	job_cancel(j, "canceled");
	B->replaying = 0;
	j = idmap_get(11, SIMQ_NOINDEX);
	j->depfailed = 1;	/* as if it had failed with a dependency */
	B->replaying = 1;
	job_end_now(j, JS_FAILED, "dependency 10 canceled");
	B->replaying = 0;
	buf_init(&b);
	assert_int_equal(snapshot_records(collect, &b), 0);
	same_bytes("SNAPSHOT_2", &b, SNAPSHOT_2);
	buf_free(&b);
	broker_free();
	broker_init();

	replay_stream(SNAPSHOT_2);
	a = idmap_get(8, SIMQ_NOINDEX);
	assert_int_equal(a->arr->cursor, 0);
	assert_int_equal(a->arr->cut, 3);
	assert_int_equal(a->arr->nexc, 1);
	assert_int_equal(a->arr->count[JS_QUEUED], 2);
	assert_int_equal(a->arr->count[JS_CANCELED], 3);
	assert_int_equal(idmap_get(8, 5)->state, JS_CANCELED);
	assert_int_equal(idmap_get(11, SIMQ_NOINDEX)->depfailed, 1);
	assert_int_equal(idmap_get(10, SIMQ_NOINDEX)->depfailed, 0);
	buf_init(&b);
	assert_int_equal(snapshot_records(collect, &b), 0);
	same_bytes("SNAPSHOT_2 (read back)", &b, SNAPSHOT_2);
	buf_free(&b);
}

/* Resources in a job's options: encoded only when asked for, so the
 * older records above keep their bytes; decoded from the new layout and
 * kept through a snapshot. */
static void
test_resources(void **st)
{
	struct jobopts	*o = opts("cpus=4 gpus=2 mem=1048576");
	struct cmd	*c = argv2("train", "x");
	struct buf	 b;
	struct job	*j;

	(void)st;
	assert_int_equal(o->cpus, 4);
	B->next_id = 13;
	buf_init(&b);
	rec_submit(&b, 13, 1, o, &c, NULL, NOW, 0);
	same_bytes("SUBMIT_RES", &b, SUBMIT_RES);
	buf_free(&b);
	free(c);
	jobopts_unref(o);
	broker_free();
	broker_init();

	assert_int_equal(apply(REC_SUBMIT, SUBMIT_RES), 0);
	j = idmap_get(13, SIMQ_NOINDEX);
	assert_non_null(j);
	assert_int_equal(j->opts->cpus, 4);
	assert_int_equal(j->opts->gpus, 2);
	assert_int_equal(j->opts->mem, 1048576);
	assert_int_equal(j->state, JS_QUEUED);
	/* An older record means one CPU and nothing else. */
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_BATCH), -1);	/* ids */
	broker_free();
	broker_init();
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_BATCH), 0);
	j = idmap_get(10, SIMQ_NOINDEX);
	assert_int_equal(j->opts->cpus, 1);
	assert_int_equal(j->opts->gpus, 0);
	assert_int_equal(j->opts->mem, 0);
	broker_free();
	broker_init();

	assert_int_equal(apply(REC_SUBMIT, SUBMIT_RES), 0);
	buf_init(&b);
	assert_int_equal(snapshot_records(collect, &b), 0);
	same_bytes("SNAPSHOT_RES", &b, SNAPSHOT_RES);
	buf_free(&b);
	broker_free();
	broker_init();
	replay_stream(SNAPSHOT_RES);
	j = idmap_get(13, SIMQ_NOINDEX);
	assert_non_null(j);
	assert_int_equal(j->opts->cpus, 4);
	assert_int_equal(j->opts->gpus, 2);
	assert_int_equal(j->opts->mem, 1048576);
	broker_free();
	broker_init();
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_RES_DEFAULTS), -1);
}

/* The lines of an EACHLINE array: an empty one, one with a NUL refused,
 * the longest allowed, encoded in REC_SUBMIT and in the snapshot once,
 * read back the same; a record whose lines do not match its spec is
 * refused. */
static void
test_each_line(void **st)
{
	static const char	 lines[] = "alpha\n\nbeta gamma\n";
	struct jobopts		*o = opts("q=lines");
	struct cmd		*c = argv2("echo", "{}");
	struct array_spec	 spec = { 1, 3, 1, 0 };
	struct entries		*e;
	struct buf		 b;
	struct job		*a, *t;
	struct worker		*w;
	char			 why[160], *big;
	const char		*p;
	size_t			 len;
	int			 reserved = 0;

	(void)st;
	assert_null(entries_parse("a\nb", 3, why, sizeof why));
	assert_null(entries_parse("a\n\0b\n", 5, why, sizeof why));
	assert_string_equal(why, "line 2 holds a NUL byte");
	big = malloc(SIMQ_ENTRY_MAX + 2);
	memset(big, 'x', SIMQ_ENTRY_MAX + 1);
	big[SIMQ_ENTRY_MAX + 1] = '\n';
	assert_null(entries_parse(big, SIMQ_ENTRY_MAX + 2, why, sizeof why));
	big[SIMQ_ENTRY_MAX] = '\n';
	e = entries_parse(big, SIMQ_ENTRY_MAX + 1, why, sizeof why);
	assert_non_null(e);
	assert_int_equal(entries_maxlen(e), SIMQ_ENTRY_MAX);
	entries_free(e);
	free(big);

	e = entries_parse(lines, strlen(lines), why, sizeof why);
	assert_non_null(e);
	assert_int_equal(e->n, 3);
	B->next_id = 14;
	buf_init(&b);
	rec_submit_lines(&b, 14, o, c, &spec, e, NOW, 0);
	same_bytes("SUBMIT_LINES", &b, SUBMIT_LINES);
	/* Lines that do not make the spec's tasks: refused. */
	spec.last = 2;
	buf_reset(&b);
	rec_submit_lines(&b, 14, o, c, &spec, e, NOW, 0);
	B->replaying = 1;
	assert_int_equal(rec_apply(NULL, REC_SUBMIT, b.p, b.len), -1);
	B->replaying = 0;
	buf_free(&b);
	entries_free(e);
	free(c);
	jobopts_unref(o);
	broker_free();
	broker_init();

	assert_int_equal(apply(REC_SUBMIT, SUBMIT_LINES), 0);
	a = idmap_get(14, SIMQ_NOINDEX);
	assert_non_null(a);
	assert_int_equal(a->kind, JK_ARRAY);
	assert_int_equal(a->arr->ntasks, 3);
	assert_non_null(a->arr->ent);
	p = entries_get(a->arr->ent, 1, &len);
	assert_memory_equal(p, "alpha", len);
	assert_int_equal(len, 5);
	entries_get(a->arr->ent, 2, &len);
	assert_int_equal(len, 0);
	p = entries_get(a->arr->ent, 3, &len);
	assert_int_equal(len, 10);
	assert_memory_equal(p, "beta gamma", 10);

	w = worker_get("w1", 1);
	B->replaying = 1;
	t = job_take(a->opts->q, w, &fit_any, NULL, &reserved);
	B->replaying = 0;
	assert_non_null(t);
	assert_int_equal(t->index, 1);
	buf_init(&b);
	assert_int_equal(snapshot_records(collect, &b), 0);
	same_bytes("SNAPSHOT_LINES", &b, SNAPSHOT_LINES);
	buf_free(&b);
	broker_free();
	broker_init();
	replay_stream(SNAPSHOT_LINES);
	a = idmap_get(14, SIMQ_NOINDEX);
	assert_non_null(a);
	assert_non_null(a->arr->ent);
	assert_int_equal(a->arr->ent->n, 3);
	p = entries_get(a->arr->ent, 3, &len);
	assert_memory_equal(p, "beta gamma", 10);
	assert_int_equal(idmap_get(14, 1)->state, JS_RUNNING);
	buf_init(&b);
	assert_int_equal(snapshot_records(collect, &b), 0);
	same_bytes("SNAPSHOT_LINES (read back)", &b, SNAPSHOT_LINES);
	buf_free(&b);
}


/*
 * Early leases (epoch.c): a start after a crash moves the attempt counter
 * of every waiting or queued job on by one, each time, and leaves running
 * and finished ones alone; ids resume above every reservation, and a
 * clean stop lets the reservation go; a snapshot keeps both.
 */
static void
test_epoch(void **st)
{
	struct job	*j, *a, *t;
	struct worker	*w;
	struct buf	 b;
	int		 reserved = 0;

	(void)st;
	buf_init(&b);
	rec_epoch(&b, EPOCH_START_BUMP, 2, 65543);
	same_bytes("EPOCH_BUMP", &b, EPOCH_BUMP_REC);
	buf_reset(&b);
	rec_epoch(&b, EPOCH_RESERVE, 2, 70000);
	same_bytes("EPOCH_RESERVE", &b, EPOCH_RESERVE_REC);
	buf_reset(&b);
	rec_epoch(&b, EPOCH_CLOSE, 2, 12);
	same_bytes("EPOCH_CLOSE", &b, EPOCH_CLOSE_REC);
	buf_free(&b);

	/* Job 7 queued, array 8 with task 8_1 running, batch 10 and 11:
	 * 10 leased and re-queued (attempt 1, then queued). */
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_JOB), 0);
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_ARRAY), 0);
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_BATCH), 0);
	a = idmap_get(8, SIMQ_NOINDEX);
	w = worker_get("w1", 1);
	B->replaying = 1;
	t = job_take(a->opts->q, w, &fit_any, NULL, &reserved);
	B->replaying = 0;
	assert_non_null(t);
	assert_int_equal(t->attempts, 1);
	j = idmap_get(7, SIMQ_NOINDEX);
	assert_int_equal(j->attempts, 0);
	/* An epoch of another number is refused where it cannot be: a
	 * reservation or a stop before any start is fine (a snapshot's),
	 * a second start of one number is not. */
	assert_int_equal(apply(REC_EPOCH, EPOCH_BUMP_REC), 0);
	assert_int_equal(B->epoch, 2);
	assert_int_equal(B->id_limit, 65543);
	assert_int_equal(B->epoch_open, 1);
	assert_int_equal(apply(REC_EPOCH, EPOCH_BUMP_REC), -1);
	/* Queued: its next attempt skips one, its count is unchanged. */
	assert_int_equal(j->attempts, 0);
	assert_int_equal(j->skip, 1);
	assert_int_equal(t->attempts, 1);		/* running: kept */
	assert_int_equal(t->skip, 0);
	assert_int_equal(idmap_get(10, SIMQ_NOINDEX)->skip, 1);
	assert_int_equal(apply(REC_EPOCH, EPOCH_RESERVE_REC), 0);
	assert_int_equal(B->id_limit, 70000);
	/* The next start, live: ids resume above the reservation and the
	 * queued jobs skip another attempt. */
	assert_int_equal(epoch_begin(), EPOCH_START_BUMP);
	assert_int_equal(B->epoch, 3);
	assert_int_equal(B->next_id, 70000);
	assert_int_equal(B->id_limit, 70000 + EPOCH_RESERVE_IDS);
	assert_int_equal(j->attempts, 0);
	assert_int_equal(j->skip, 2);
	assert_int_equal(t->skip, 0);

	/* The worker that held the forgotten attempt 1 of job 7 comes back:
	 * it runs there with that attempt, and attempt 2, which the second
	 * crash may have forgotten too, stays skipped. */
	B->replaying = 1;
	job_reattach(j, w, 1);
	B->replaying = 0;
	assert_int_equal(j->state, JS_RUNNING);
	assert_int_equal(j->attempts, 1);
	assert_int_equal(j->skip, 1);
	assert_ptr_equal(j->run->w, w);
	B->replaying = 1;
	job_requeue(j, RQ_RELEASED, 0);
	assert_ptr_equal(job_take(j->opts->q, w, &fit_any, NULL, &reserved),
	    j);
	B->replaying = 0;
	assert_int_equal(j->attempts, 3);
	assert_int_equal(j->skip, 0);

	/* A snapshot keeps the skips and the reservation. */
	j = idmap_get(11, SIMQ_NOINDEX);
	assert_int_equal(j->skip, 2);
	buf_init(&b);
	assert_int_equal(snapshot_records(collect, &b), 0);
	{
		char *hex = malloc(b.len * 2 + 1);
		size_t i;
		for (i = 0; i < b.len; i++)
			snprintf(hex + 2 * i, 3, "%02x", b.p[i]);
		buf_free(&b);
		broker_free();
		broker_init();
		replay_stream(hex);
		free(hex);
	}
	assert_int_equal(idmap_get(11, SIMQ_NOINDEX)->skip, 2);
	assert_int_equal(idmap_get(11, SIMQ_NOINDEX)->attempts, 0);
	assert_int_equal(idmap_get(7, SIMQ_NOINDEX)->skip, 0);
	assert_int_equal(idmap_get(7, SIMQ_NOINDEX)->attempts, 3);
	assert_int_equal(B->id_limit, 70000 + EPOCH_RESERVE_IDS);
	assert_int_equal(B->epoch, 3);
	assert_int_equal(B->epoch_open, 1);
	assert_int_equal(epoch_begin(), EPOCH_START_BUMP);
	assert_int_equal(B->next_id, 70000 + EPOCH_RESERVE_IDS);
	assert_int_equal(idmap_get(11, SIMQ_NOINDEX)->skip, 3);
	assert_int_equal(idmap_get(7, SIMQ_NOINDEX)->skip, 0);	/* running */
	broker_free();
	broker_init();

	/* A clean stop: the next start skips nothing, and ids resume where
	 * they stopped. */
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_JOB), 0);
	assert_int_equal(apply(REC_EPOCH, EPOCH_BUMP_REC), 0);
	assert_int_equal(idmap_get(7, SIMQ_NOINDEX)->skip, 1);
	assert_int_equal(apply(REC_EPOCH, EPOCH_CLOSE_REC), 0);
	assert_int_equal(B->epoch_open, 0);
	assert_int_equal(epoch_begin(), EPOCH_START);
	assert_int_equal(B->next_id, 12);
	assert_int_equal(idmap_get(7, SIMQ_NOINDEX)->skip, 1);
	broker_free();
	broker_init();

	/* A journal without REC_EPOCH (version 5 and before: no lease went
	 * early) bumps nothing. */
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_JOB), 0);
	assert_int_equal(epoch_begin(), EPOCH_START);
	assert_int_equal(idmap_get(7, SIMQ_NOINDEX)->skip, 0);
	assert_int_equal(B->next_id, 8);
	broker_free();
	broker_init();

	/* A forced cut that leaves a reservation out still keeps the ids
	 * below it. */
	{
		size_t len;
		uint8_t *p = unhex(EPOCH_RESERVE_REC, &len);
		rec_cutoff(NULL, REC_EPOCH, p, len);
		free(p);
		assert_int_equal(B->next_id, 70000);
	}
}

/* Which leases may go before their commit (epoch.c). */
static void
test_lease_early_ok(void **st)
{
	struct job	*j, *a, *t;
	struct worker	*w;
	int		 reserved = 0;

	(void)st;
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_ARRAY), 0);
	assert_int_equal(apply(REC_SUBMIT, SUBMIT_BATCH), 0);
	j = idmap_get(10, SIMQ_NOINDEX);
	B->pass = 5;
	assert_int_equal(lease_early_ok(j), 0);	/* no start record yet */
	B->early_ok = 1;
	B->id_durable = 11;
	assert_int_equal(lease_early_ok(j), 1);
	assert_int_equal(lease_early_ok(idmap_get(11, SIMQ_NOINDEX)), 0);
	B->id_durable = 100;
	/* Requeued in this pass: its lease waits for the commit. */
	w = worker_get("w1", 1);
	B->replaying = 1;
	job_lease(j, w, 1, NOW, NOW + 30000);
	job_requeue(j, RQ_RELEASED, 0);
	B->replaying = 0;
	assert_int_equal(j->state, JS_QUEUED);
	assert_int_equal(lease_early_ok(j), 0);
	B->pass++;
	assert_int_equal(lease_early_ok(j), 1);
	/* An array's task, taken for the first time, is made by its lease:
	 * never early. */
	a = idmap_get(8, SIMQ_NOINDEX);
	B->replaying = 1;
	t = job_take(a->opts->q, w, &fit_any, NULL, &reserved);
	B->replaying = 0;
	assert_non_null(t);
	assert_ptr_equal(t->parent, a);
	t->attempts = 0;
	t->pass = (uint8_t)(B->pass - 1);
	assert_int_equal(lease_early_ok(t), 0);
	t->attempts = 1;
	assert_int_equal(lease_early_ok(t), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_submit),
		T(test_lease_finish),
		T(test_requeue_event_queue),
		T(test_snapshot),
		T(test_kinds_cut_pending),
		T(test_snapshot_2),
		T(test_resources),
		T(test_files_records),
		T(test_files_records_bad),
		T(test_each_line),
		T(test_epoch),
		T(test_lease_early_ok),
#undef T
	};

	log_verbosity = 0;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
