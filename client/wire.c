/*
 * wire.c: the client's side of the protocol, on bytes in memory.
 *
 * Requests are built into a struct buf word by word, every string through
 * proto_encode(), so no argument can break the framing.  Replies are parsed
 * from lines conn.c has read: an item line is split and decoded in place
 * (decoding only shrinks a word, so every key, value and argument can be
 * NUL-terminated where it lies) and the item owns the line.  Unknown keys
 * are kept and ignored by callers, as PROTOCOL.md asks.
 */
#include <stdlib.h>
#include <string.h>

#include "simq.h"

/* Decodes w in place and NUL-terminates it; a malformed escape leaves the
 * word as it came.  Returns the length. */
static size_t
wire_decode(struct proto_word *w)
{
	long	n;

	if ((n = proto_decode(w->p, w->len)) < 0)
		n = (long)w->len;
	w->p[n] = '\0';
	return (size_t)n;
}

static int
wire_split(char *line, struct proto_word **wp)
{
	size_t	i, n = 1, len = strlen(line);

	for (i = 0; i < len; i++)
		if (line[i] == ' ' || line[i] == '\t')
			n++;
	*wp = xreallocarray(NULL, n, sizeof **wp);
	return proto_split(line, len, *wp, (int)n);
}

int
item_parse(struct item *it, char *line)
{
	struct proto_word	*w, k, v;
	int			 n, i, dd;

	memset(it, 0, sizeof *it);
	it->line = line;
	if ((n = wire_split(line, &w)) < 1) {
		free(w);
		it->kind = "";
		return -1;
	}
	for (dd = 1; dd < n; dd++)
		if (proto_word_is(&w[dd], "--"))
			break;
	it->kv = xreallocarray(NULL, (size_t)n, sizeof *it->kv);
	it->argv = xreallocarray(NULL, (size_t)(n > dd ? n - dd : 1),
	    sizeof *it->argv);
	for (i = 1; i < dd; i++) {
		if (proto_kv(&w[i], &k, &v) < 0)
			continue;
		k.p[k.len] = '\0';
		it->kv[it->nkv].key = k.p;
		it->kv[it->nkv].vlen = wire_decode(&v);
		it->kv[it->nkv].val = v.p;
		it->nkv++;
	}
	for (i = dd + 1; i < n; i++) {
		wire_decode(&w[i]);
		it->argv[it->argc++] = w[i].p;
	}
	it->argv[it->argc] = NULL;
	w[0].p[w[0].len] = '\0';
	it->kind = w[0].p;
	free(w);
	return 0;
}

void
item_clear(struct item *it)
{
	free(it->line);
	free(it->kv);
	free(it->argv);
	memset(it, 0, sizeof *it);
}

/* The value of key, or NULL.  A repeated key gives its first value. */
const char *
item_get(const struct item *it, const char *key)
{
	int	i;

	for (i = 0; i < it->nkv; i++)
		if (strcmp(it->kv[i].key, key) == 0)
			return it->kv[i].val;
	return NULL;
}

/* Returns 0 with the number in *v, or -1 if key is absent or not a
 * number. */
int
item_u64(const struct item *it, const char *key, uint64_t *v)
{
	const char	*s = item_get(it, key);

	if (s == NULL)
		return -1;
	return proto_parse_u64(s, strlen(s), UINT64_MAX, v);
}

uint64_t
item_num(const struct item *it, const char *key)
{
	uint64_t	v;

	return item_u64(it, key, &v) == 0 ? v : 0;
}

int
item_is(const struct item *it, const char *kind)
{
	return strcmp(it->kind, kind) == 0;
}

int
reply_parse_line(struct reply *r, char *line)
{
	struct proto_word	*w;
	uint64_t		 n;
	int			 nw, i;

	memset(r, 0, sizeof *r);
	r->line = line;
	if ((nw = wire_split(line, &w)) < 1)
		goto bad;
	if (proto_word_is(&w[0], "OK")) {
		r->kind = REPLY_OK;
		for (i = 1; i < nw && r->nwords < 8; i++) {
			w[i].p[w[i].len] = '\0';
			r->words[r->nwords++] = w[i].p;
		}
	} else if (proto_word_is(&w[0], "ERR") && nw >= 2) {
		r->kind = REPLY_ERR;
		r->err = proto_err_lookup(w[1].p, w[1].len);
		if (r->err == PERR_NONE)
			r->err = PERR_SERVER;
		r->errmsg = "";
		if (nw >= 3)
			r->errmsg = w[2].p;
		w[1].p[w[1].len] = '\0';
		r->errcode = w[1].p;
	} else if ((proto_word_is(&w[0], "ITEMS") ||
	    proto_word_is(&w[0], "DATA")) && nw == 2) {
		r->kind = proto_word_is(&w[0], "ITEMS") ? REPLY_ITEMS :
		    REPLY_DATA;
		if (proto_parse_u64(w[1].p, w[1].len, SIZE_MAX / 2, &n) < 0)
			goto bad;
		if (r->kind == REPLY_ITEMS)
			r->nitems = (size_t)n;
		else
			r->datalen = (size_t)n;
	} else
		goto bad;
	free(w);
	return 0;
bad:
	free(w);
	return -1;
}

void
reply_free(struct reply *r)
{
	size_t	i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nitems && r->items != NULL; i++)
		item_clear(&r->items[i]);
	free(r->items);
	free(r->data);
	free(r->line);
	free(r);
}

/*
 * Requests.  Each helper adds one word, with a space before it unless it
 * is the first.
 */

static void
req_sep(struct buf *b)
{
	if (b->len > 0 && b->p[b->len - 1] != '\n')
		buf_put_u8(b, ' ');
}

void
req_raw(struct buf *b, const char *s)
{
	req_sep(b);
	buf_put(b, s, strlen(s));
}

void
req_bytes(struct buf *b, const void *s, size_t len)
{
	req_sep(b);
	buf_reserve(b, PROTO_ENC_MAX(len) + 1);
	b->len += proto_encode((char *)b->p + b->len, s, len);
}

void
req_word(struct buf *b, const char *s)
{
	req_bytes(b, s, strlen(s));
}

void
req_kv(struct buf *b, const char *key, const char *val)
{
	size_t	len = strlen(val);

	req_sep(b);
	buf_put(b, key, strlen(key));
	buf_put_u8(b, '=');
	buf_reserve(b, PROTO_ENC_MAX(len) + 1);
	b->len += proto_encode((char *)b->p + b->len, val, len);
}

void
req_end(struct buf *b)
{
	buf_put(b, "\r\n", 2);
}
