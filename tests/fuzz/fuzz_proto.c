/*
 * fuzz_proto.c: the broker's request path on arbitrary client bytes.
 *
 * The input is what a client sends, with one expansion so that a small
 * input can make a line longer than SIMQ_LINE_MAX: the byte 0xFE followed
 * by a byte n (n > 0) stands for n * 512 more copies of the byte before it
 * ("\xFE\x80" after an 'x' is 64 KiB of 'x').  0xFE 0x00, or 0xFE at the
 * very end, is a literal 0xFE.  The stream is capped at STREAM_MAX.
 *
 * The stream is framed twice, as the broker would: once shown whole, once
 * arriving in chunks whose sizes come from a generator seeded by a hash of
 * the input (now and then a call is shown only part of what has arrived).
 * Every line goes through proto_req_parse, SUBMIT and BATCH options through
 * proto_jobopts_parse, every word through the decoder and the number, id,
 * array and duration parsers.
 *
 * Checked, besides "no crash, no sanitizer report" (abort() on failure):
 *   - *used never exceeds the bytes shown; after PROTO_NEED (with
 *     everything shown) fewer than proto_in_want() bytes are left, and
 *     want stays within SIMQ_LINE_MAX + 2 or the body length + 2;
 *   - events come in the order proto.h promises (a body, or its error,
 *     right after the line that announced it) and make progress;
 *   - both framings give the same events: chunking changes nothing;
 *   - a word that decodes re-encodes to something that decodes back, and
 *     a number, id or index that parses formats back to the same bytes;
 *   - parsed requests and options are within the table's and the
 *     header's bounds, and error messages are printable one-liners.
 * Under ASan the part of the buffer not yet "received" is poisoned, so a
 * read past what the framer was shown is caught.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Room for three too-long lines or one oversized FINISH body; small
 * enough that a stream of nothing but empty lines runs in a fraction of a
 * second, so the fuzzer keeps its pace. */
#define STREAM_MAX	(256u << 10)
#define EXPAND_BYTE	0xFE
#define EXPAND_UNIT	512

#define CHECK(x)	do {						\
	if (!(x)) {							\
		fprintf(stderr, "fuzz_proto: %s:%d: check failed: %s\n", \
		    __FILE__, __LINE__, #x);				\
		abort();						\
	}								\
} while (0)

/* What the next event must be. */
enum expect {
	EXP_LINE,	/* PROTO_LINE or PROTO_ERR PERR_LINE */
	EXP_BODY,	/* PROTO_BODY of bodylen bytes, or PERR_BODY */
	EXP_SWALLOW,	/* PROTO_ERR PERR_BODYSIZE */
};

struct run {
	struct proto_in	 in;
	enum expect	 expect;
	size_t		 bodylen;
	enum proto_cmd	 bodycmd;
	uint64_t	 digest;	/* of every event but PROTO_NEED */
	size_t		 events;
	size_t		 left;		/* bytes unconsumed at the end */
	int		 zero;		/* events in a row that used nothing */
};

/*
 * Private copies for the parsers, without a malloc per line or word: a
 * copy is placed so that it ends right where a poisoned guard begins, so a
 * parser reading past its length is still caught.  Copies longer than a
 * slot (words of a large body) are malloc'd.
 */
#define SLOT_SIZE	(SIMQ_LINE_MAX + 8)
#define SLOT_GUARD	64
enum { SLOT_LINE, SLOT_WORD, SLOT_CSTR, SLOT_ENC, SLOT__COUNT };
static _Alignas(64) char slots[SLOT__COUNT][SLOT_SIZE + SLOT_GUARD];
static int	slots_ready;

/* Returns a copy of p[0..len) (plus a NUL if nul); free with uncopy(). */
static char *
copy(int slot, const void *p, size_t len, int nul)
{
	char	*c;
	size_t	 n = len + (nul != 0);
	int	 i;

	if (!slots_ready) {
		for (i = 0; i < SLOT__COUNT; i++)
			ASAN_POISON_MEMORY_REGION(slots[i] + SLOT_SIZE,
			    SLOT_GUARD);
		slots_ready = 1;
	}
	if (n <= SLOT_SIZE)
		c = slots[slot] + SLOT_SIZE - n;
	else if ((c = malloc(n)) == NULL)
		abort();
	memcpy(c, p, len);
	if (nul)
		c[len] = '\0';
	return (c);
}

static void
uncopy(int slot, char *c)
{
	if (c < slots[slot] || c > slots[slot] + SLOT_SIZE)
		free(c);
}

static struct proto_req		 req;
static struct proto_jobopts	 jo;
static struct proto_word	 bwords[SIMQ_WORDS_MAX];

static uint64_t
fnv(uint64_t h, const void *p, size_t len)
{
	const uint8_t	*s = p;
	size_t		 i;

	for (i = 0; i < len; i++) {
		h ^= s[i];
		h *= UINT64_C(1099511628211);
	}
	return (h);
}

static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (*s);
}

/* Builds the stream from the input; the caller frees it. */
static uint8_t *
expand(const uint8_t *data, size_t size, size_t *lenp)
{
	uint8_t	*s;
	size_t	 i, o = 0, cap = size + 1, n;
	uint8_t	 prev = 'x';

	for (i = 0; i + 1 < size; i++) {
		if (data[i] == EXPAND_BYTE && data[i + 1] != 0) {
			cap += (size_t)data[i + 1] * EXPAND_UNIT;
			i++;
		}
	}
	if (cap > STREAM_MAX)
		cap = STREAM_MAX;
	if ((s = malloc(cap)) == NULL)
		abort();
	for (i = 0; i < size && o < cap; i++) {
		if (data[i] == EXPAND_BYTE && i + 1 < size) {
			n = (size_t)data[++i] * EXPAND_UNIT;
			if (n == 0) {
				s[o++] = prev = EXPAND_BYTE;
				continue;
			}
			if (n > cap - o)
				n = cap - o;
			memset(s + o, prev, n);
			o += n;
			continue;
		}
		s[o++] = prev = data[i];
	}
	*lenp = o;
	return (s);
}

/* A reply message: one line of printable ASCII. */
static void
check_msg(const char *msg, size_t size)
{
	size_t	 i;

	for (i = 0; i < size && msg[i] != '\0'; i++)
		CHECK(msg[i] >= 0x20 && msg[i] < 0x7f);
	CHECK(i < size);
}

/* Every parser on one word; w is the caller's to scribble on. */
static void
check_word(const char *w, size_t len)
{
	struct array_spec	 a;
	struct simq_id		 id;
	struct proto_word	 word, k, v;
	uint64_t		 u, ms;
	int64_t			 i;
	char			*c, *z, *enc, fmt[32];
	size_t			 n, elen;
	long			 d, d2;
	int			 st;

	/* Exactly len bytes, no NUL: the parsers must stop at len. */
	c = copy(SLOT_WORD, w, len, 0);

	if (proto_parse_u64(c, len, UINT64_MAX, &u) == 0) {
		n = (size_t)snprintf(fmt, sizeof fmt, "%" PRIu64, u);
		CHECK(n == len && memcmp(fmt, c, len) == 0);
		CHECK(proto_parse_u64(c, len, u, &u) == 0);
		if (u > 0)
			CHECK(proto_parse_u64(c, len, u - 1, &u) == -1);
	}
	if (proto_parse_i64(c, len, INT64_MIN, INT64_MAX, &i) == 0) {
		n = (size_t)snprintf(fmt, sizeof fmt, "%" PRId64, i);
		CHECK(n == len && memcmp(fmt, c, len) == 0);
	}
	if (proto_parse_id(c, len, &id) == 0) {
		CHECK(id.id >= 1 && id.id <= SIMQ_ID_MAX);
		CHECK(id.index <= SIMQ_INDEX_MAX || id.index == SIMQ_NOINDEX);
		n = (size_t)proto_format_id(fmt, id.id, id.index);
		CHECK(n == len && memcmp(fmt, c, len) == 0);
	}
	if (proto_parse_array(c, len, &a) == 0) {
		CHECK(a.first <= a.last && a.last <= SIMQ_INDEX_MAX);
		CHECK(a.step >= 1);
		n = (size_t)proto_array_count(&a);
		CHECK(n >= 1 && n <= (uint64_t)(a.last - a.first) + 1);
	}
	/* The duration parser takes a C string: only for words without a
	 * NUL, which would cut them short. */
	if (memchr(w, '\0', len) == NULL) {
		z = copy(SLOT_CSTR, w, len, 1);
		if (proto_parse_duration(z, &ms) == 0)
			CHECK(ms <= SIMQ_MS_MAX);
		uncopy(SLOT_CSTR, z);
	}
	if ((st = proto_state_lookup(c, len)) != -1)
		CHECK(strlen(proto_state_name(st)) == len);
	if (proto_err_lookup(c, len) != PERR_NONE)
		CHECK(strlen(proto_err_name(proto_err_lookup(c, len))) == len);
	if (proto_name_ok(c, len))
		CHECK(proto_worker_name_ok(c, len));
	word.p = c;
	word.len = len;
	if (proto_kv(&word, &k, &v) == 0) {
		CHECK(k.p == c && k.len + 1 + v.len == len);
		CHECK(memchr(k.p, '=', k.len) == NULL);
	}

	/* Decode, then encode and decode again: the same bytes. */
	d = proto_decode(c, len);
	if (d >= 0) {
		CHECK((size_t)d <= len);
		if (memchr(w, '%', len) == NULL)
			CHECK((size_t)d == len && memcmp(c, w, len) == 0);
		if (PROTO_ENC_MAX((size_t)d) + 1 <= SLOT_SIZE)
			enc = slots[SLOT_ENC] + SLOT_SIZE -
			    (PROTO_ENC_MAX((size_t)d) + 1);
		else if ((enc = malloc(PROTO_ENC_MAX((size_t)d) + 1)) == NULL)
			abort();
		elen = proto_encode(enc, c, (size_t)d);
		CHECK(elen <= PROTO_ENC_MAX((size_t)d) && enc[elen] == '\0');
		CHECK(elen > 0);
		for (n = 0; n < elen; n++)
			CHECK((uint8_t)enc[n] > 0x20 && enc[n] != 0x7f);
		d2 = proto_decode(enc, elen);
		CHECK(d2 == d && memcmp(enc, c, (size_t)d) == 0);
		uncopy(SLOT_ENC, enc);
	} else
		CHECK(memchr(w, '%', len) != NULL);
	uncopy(SLOT_WORD, c);
}

static void
check_jobopts(struct proto_word *w, int n)
{
	enum proto_err	 e;
	char		 msg[256];
	int		 i;

	e = proto_jobopts_parse(&jo, w, n, msg, sizeof msg);
	if (e != PERR_NONE) {
		CHECK(e == PERR_BADREQ);
		check_msg(msg, sizeof msg);
		CHECK(msg[0] != '\0');
		return;
	}
	CHECK(proto_name_ok(jo.queue.p, jo.queue.len));
	CHECK(jo.prio >= SIMQ_PRIO_MIN && jo.prio <= SIMQ_PRIO_MAX);
	CHECK(jo.timeout_ms <= SIMQ_MS_MAX && jo.delay_ms <= SIMQ_MS_MAX);
	CHECK(jo.retries <= SIMQ_RETRIES_MAX);
	CHECK(jo.name.len <= SIMQ_NAME_MAX);
	CHECK(memchr(jo.name.p == NULL ? "" : jo.name.p, '\0',
	    jo.name.len) == NULL);
	CHECK(jo.ndeps >= 0 && jo.ndeps <= SIMQ_DEPS_MAX);
	for (i = 0; i < jo.ndeps; i++)
		CHECK(jo.deps[i].id >= 1 && jo.deps[i].id <= SIMQ_ID_MAX);
	CHECK(jo.nenv >= 0 && jo.nenv <= SIMQ_ENV_MAX);
	for (i = 0; i < jo.nenv; i++) {
		CHECK(jo.env[i].len >= 2 && jo.env[i].p[0] != '=');
		CHECK(memchr(jo.env[i].p, '=', jo.env[i].len) != NULL);
		CHECK(memchr(jo.env[i].p, '\0', jo.env[i].len) == NULL);
	}
	if (jo.has_array)
		CHECK(proto_array_count(&jo.array) >= 1);
}

/*
 * A request line, as the broker handles it: parse, check, announce the
 * body.  line is a private copy of exactly len bytes.
 */
static void
on_line(struct run *r, char *line, size_t len, int deep)
{
	const struct proto_cmdinfo	*ci;
	enum proto_err			 e;
	char				 msg[256];
	int				 i, dd;

	e = proto_req_parse(&req, line, len, msg, sizeof msg);
	r->digest = fnv(r->digest, &e, sizeof e);
	if (deep && e != PERR_NONE) {
		check_msg(msg, sizeof msg);
		CHECK(e == PERR_NONE || proto_err_lookup(proto_err_name(e),
		    strlen(proto_err_name(e))) == e);
	}
	CHECK(req.nwords >= 0 && req.nwords <= SIMQ_WORDS_MAX);
	ci = proto_cmd_info(req.cmd);
	switch (e) {
	case PERR_NONE:
		CHECK(ci != NULL && msg[0] == '\0');
		CHECK(req.args == req.words + 1);
		CHECK(req.nwords == req.nargs + 1 +
		    (ci->body != PROTO_BODY_NONE));
		CHECK(req.nwords - 1 >= ci->minargs);
		CHECK(ci->maxargs < 0 || req.nwords - 1 <= ci->maxargs);
		if (ci->body != PROTO_BODY_NONE)
			CHECK(req.bodylen <= ci->bodymax);
		else
			CHECK(req.bodylen == 0);
		break;
	case PERR_BODYSIZE:
		CHECK(ci != NULL && ci->body != PROTO_BODY_NONE);
		CHECK(req.bodylen > ci->bodymax);
		break;
	case PERR_UNKNOWN:
		CHECK(req.cmd == CMD_NONE && req.bodylen == 0);
		break;
	case PERR_BADREQ:
		CHECK(ci != NULL && req.bodylen == 0);
		break;
	default:
		CHECK(!"unexpected error from proto_req_parse");
	}
	if (e != PERR_NONE)
		CHECK(msg[0] != '\0');
	for (i = 0; i < req.nwords; i++) {
		CHECK(req.words[i].p >= line && req.words[i].len > 0);
		CHECK(req.words[i].p + req.words[i].len <= line + len);
		CHECK(memchr(req.words[i].p, ' ', req.words[i].len) == NULL);
		CHECK(memchr(req.words[i].p, '\t', req.words[i].len) == NULL);
	}

	/* Announce the body as the broker does. */
	if (ci != NULL && ci->body != PROTO_BODY_NONE &&
	    (e == PERR_NONE || e == PERR_BODYSIZE)) {
		proto_in_body(&r->in, req.bodylen, ci->bodymax);
		r->expect = e == PERR_NONE ? EXP_BODY : EXP_SWALLOW;
		r->bodylen = req.bodylen;
		r->bodycmd = req.cmd;
	}
	if (!deep)
		return;

	for (i = 0; i < req.nwords; i++)
		check_word(req.words[i].p, req.words[i].len);
	if (e != PERR_NONE)
		return;
	if (req.cmd == CMD_SUBMIT) {
		for (dd = 0; dd < req.nargs; dd++) {
			if (proto_word_is(&req.args[dd], "--"))
				break;
		}
		check_jobopts(req.args, dd);
	} else if (req.cmd == CMD_BATCH)
		check_jobopts(req.args, req.nargs);
}

/* A body: for BATCH, lines of words. */
static void
on_body(char *body, size_t len)
{
	char	*p = body, *end = body + len, *lf;
	size_t	 n;
	int	 nw, i;

	while (p < end) {
		lf = memchr(p, '\n', end - p);
		n = lf != NULL ? (size_t)(lf - p) : (size_t)(end - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		nw = proto_split(p, n, bwords, SIMQ_WORDS_MAX);
		for (i = 0; i < nw; i++) {
			CHECK(bwords[i].p >= p && bwords[i].p < p + n);
			check_word(bwords[i].p, bwords[i].len);
		}
		if (lf == NULL)
			break;
		p = lf + 1;
	}
}

/*
 * One event: checks it against what was expected and records it.  tok
 * points into the caller's buffer; private copies are made for parsing.
 */
static void
on_event(struct run *r, enum proto_ev ev, enum proto_err err,
    const struct proto_word *tok, const char *buf, size_t used, int deep)
{
	char	*c;

	r->events++;
	r->digest = fnv(r->digest, &ev, sizeof ev);
	r->digest = fnv(r->digest, &err, sizeof err);
	r->zero = used == 0 ? r->zero + 1 : 0;
	CHECK(r->zero < 2);

	switch (r->expect) {
	case EXP_LINE:
		CHECK(ev == PROTO_LINE ||
		    (ev == PROTO_ERR && err == PERR_LINE));
		break;
	case EXP_BODY:
		CHECK(ev == PROTO_BODY ||
		    (ev == PROTO_ERR && err == PERR_BODY));
		break;
	case EXP_SWALLOW:
		CHECK(ev == PROTO_ERR && err == PERR_BODYSIZE);
		break;
	}
	r->expect = EXP_LINE;
	if (ev == PROTO_ERR) {
		CHECK(tok->len == 0);
		return;
	}
	CHECK(err == PERR_NONE);
	CHECK(tok->p >= buf && tok->p + tok->len <= buf + used);
	r->digest = fnv(r->digest, &tok->len, sizeof tok->len);
	r->digest = fnv(r->digest, tok->p, tok->len);
	c = copy(SLOT_LINE, tok->p, tok->len, 0);
	if (ev == PROTO_LINE) {
		CHECK(used > 0 && buf[used - 1] == '\n');
		CHECK(tok->len < SIMQ_LINE_MAX);
		CHECK(memchr(tok->p, '\n', tok->len) == NULL);
		CHECK(tok->p + tok->len == buf + used - 1 ||
		    (tok->p + tok->len == buf + used - 2 &&
		    buf[used - 2] == '\r'));
		on_line(r, c, tok->len, deep);
	} else {
		CHECK(tok->len == r->bodylen);
		CHECK(tok->p + tok->len < buf + used);
		if (deep && r->bodycmd == CMD_BATCH)
			on_body(c, tok->len);
	}
	uncopy(SLOT_LINE, c);
}

/*
 * Frames s[0..len), in a buffer of len + 1 bytes.  chunky: bytes arrive in
 * chunks drawn from seed, and some calls see only part of what has
 * arrived; else all is shown at once.  The buffer is the stream itself:
 * "arrival" unpoisons it, and the byte after the end is never readable.
 */
static void
frame(struct run *r, uint8_t *s, size_t len, int chunky, uint64_t seed,
    int deep)
{
	struct proto_word	 tok;
	enum proto_err		 err;
	enum proto_ev		 ev;
	size_t			 start = 0, end = 0, used, k, shown, want;
	uint64_t		 x;
	char			*buf = (char *)s;

	memset(r, 0, sizeof *r);
	r->digest = UINT64_C(14695981039346656037);
	proto_in_init(&r->in);
	ASAN_POISON_MEMORY_REGION(buf, len + 1);
	for (;;) {
		/* Arrival. */
		if (!chunky)
			k = len;
		else {
			x = rng_next(&seed);
			switch (x & 3) {
			case 0:
				k = 1;
				break;
			case 1:
				k = 1 + (x >> 8) % 16;
				break;
			case 2:
				k = 1 + (x >> 8) % 4096;
				break;
			default:
				k = 1 + (x >> 8) % (2 * SIMQ_LINE_MAX);
				break;
			}
		}
		if (k > len - end)
			k = len - end;
		ASAN_UNPOISON_MEMORY_REGION(buf + end, k);
		end += k;

		for (;;) {
			shown = end - start;
			if (chunky && (rng_next(&seed) & 7) == 0)
				shown = rng_next(&seed) % (shown + 1);
			ev = proto_in_next(&r->in, buf + start, shown, &used,
			    &tok, &err);
			CHECK(used <= shown);
			if (ev == PROTO_NEED) {
				CHECK(err == PERR_NONE);
				CHECK(tok.len == 0);
				start += used;
				want = proto_in_want(&r->in);
				CHECK(want <= SIMQ_LINE_MAX + 2 ||
				    (r->expect == EXP_BODY &&
				    want <= r->bodylen + 2));
				if (shown == end - start + used) {
					CHECK(end - start < want);
					break;
				}
				continue;
			}
			on_event(r, ev, err, &tok, buf + start, used, deep);
			start += used;
		}
		if (end == len)
			break;
	}
	r->left = end - start;
	ASAN_UNPOISON_MEMORY_REGION(buf, len + 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run	 one, chunks;
	uint8_t		*s, *t;
	size_t		 len;
	uint64_t	 seed;

	/* Each run gets its own buffer of exactly len + 1 bytes. */
	t = expand(data, size, &len);
	if ((s = malloc(len + 1)) == NULL)
		abort();
	memcpy(s, t, len);
	free(t);
	if ((t = malloc(len + 1)) == NULL)
		abort();
	memcpy(t, s, len);

	frame(&one, s, len, 0, 0, 1);
	seed = fnv(UINT64_C(14695981039346656037), data, size) | 1;
	frame(&chunks, t, len, 1, seed, 0);
	CHECK(one.events == chunks.events);
	CHECK(one.digest == chunks.digest);
	CHECK(one.left == chunks.left);
	CHECK(one.expect == chunks.expect);

	free(t);
	free(s);
	return (0);
}
