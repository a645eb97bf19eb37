/*
 * blobref.c: the blobs the broker knows of, by hash, and how many kept
 * jobs name each.
 *
 * The count has no record of its own: a job's options (file=) take a
 * reference to each blob they name when they are made and let it go when
 * they are freed, and an attempt's result (got=) does the same, so the
 * count follows the kept jobs wherever they are made, live, from the
 * journal or from a snapshot, and a restart rebuilds it by replaying.
 * Options are shared by every job of a request (an array's by all its
 * tasks), so such a request counts once.  What is on disk (stored, the
 * uploads) is blob.c's; an entry that is neither stored, uploading nor
 * named is forgotten.
 */
#include <stdlib.h>
#include <string.h>

#include "simqd.h"

#define BLOB_BUCKETS	4096	/* grows by doubling past one per bucket */

static struct blob	**tab;
static size_t		  nbuckets, nblobs;
uint64_t		  blob_passes;

static size_t
bucket(const uint8_t *h)
{
	size_t	v;

	/* A SHA-256 is as good a hash of itself as any. */
	memcpy(&v, h, sizeof v);
	return v & (nbuckets - 1);
}

struct blob *
blob_find(const uint8_t *h)
{
	struct blob	*b;

	if (tab == NULL)
		return NULL;
	for (b = tab[bucket(h)]; b != NULL; b = b->next)
		if (memcmp(b->hash, h, SIMQ_HASH_LEN) == 0)
			return b;
	return NULL;
}

static void
grow(void)
{
	struct blob	**old = tab, *b, *next;
	size_t		  oldn = nbuckets, i;

	nbuckets = nbuckets ? nbuckets * 2 : BLOB_BUCKETS;
	tab = xcalloc(nbuckets, sizeof *tab);
	for (i = 0; i < oldn; i++)
		for (b = old[i]; b != NULL; b = next) {
			next = b->next;
			b->next = tab[bucket(b->hash)];
			tab[bucket(b->hash)] = b;
		}
	free(old);
}

struct blob *
blob_get(const uint8_t *h)
{
	struct blob	*b;

	if ((b = blob_find(h)) != NULL)
		return b;
	if (nblobs >= nbuckets)
		grow();
	b = xcalloc(1, sizeof *b);
	memcpy(b->hash, h, SIMQ_HASH_LEN);
	b->idle_since = B->now;
	b->idle_pass = blob_passes;
	b->next = tab[bucket(h)];
	tab[bucket(h)] = b;
	nblobs++;
	return b;
}

void
blob_gc(struct blob *b)
{
	struct blob	**pp;

	if (b->refs > 0 || b->stored || b->up != NULL)
		return;
	for (pp = &tab[bucket(b->hash)]; *pp != b; pp = &(*pp)->next)
		;
	*pp = b->next;
	nblobs--;
	free(b);
}

void
blob_ref(const struct jobfile *f)
{
	struct blob	*b = blob_get(f->hash);

	if (!b->stored && b->up == NULL)
		b->size = f->size;	/* missing: as the job names it */
	b->refs++;
}

/* The last reference gone: the grace starts now, and the blob may go
 * only once this pass (whose records end its jobs) is committed. */
void
blob_unref(const struct jobfile *f)
{
	struct blob	*b = blob_find(f->hash);

	if (b == NULL || b->refs == 0)
		return;
	if (--b->refs == 0) {
		b->idle_since = B->now;
		b->idle_pass = blob_passes;
		blob_gc(b);
	}
}

void
blob_foreach(void (*fn)(struct blob *, void *), void *arg)
{
	struct blob	*b, *next;
	size_t		 i;

	for (i = 0; i < nbuckets; i++)
		for (b = tab[i]; b != NULL; b = next) {
			next = b->next;
			fn(b, arg);
		}
}

void
blob_free_all(void)
{
	struct blob	*b, *next;
	size_t		 i;

	for (i = 0; i < nbuckets; i++)
		for (b = tab[i]; b != NULL; b = next) {
			next = b->next;
			free(b);
		}
	free(tab);
	tab = NULL;
	nbuckets = nblobs = 0;
}

struct jobfiles *
jobfiles_new(void)
{
	return xcalloc(1, sizeof(struct jobfiles));
}

void
jobfiles_free(struct jobfiles *f)
{
	uint32_t	i;

	if (f == NULL)
		return;
	for (i = 0; i < f->nfiles; i++)
		free(f->files[i].name);
	for (i = 0; i < f->npat; i++)
		free(f->pat[i]);
	for (i = 0; i < f->nerr; i++)
		free(f->err[i]);
	free(f->files);
	free(f->pat);
	free(f->err);
	free(f);
}

static int
strv_equal(char **a, char **b, uint32_t n)
{
	uint32_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return 1;
}

int
jobfiles_equal(const struct jobfiles *a, const struct jobfiles *b)
{
	uint32_t	i;

	if (a == NULL || b == NULL)
		return a == b;
	if (a->nfiles != b->nfiles || a->npat != b->npat || a->nerr != b->nerr)
		return 0;
	for (i = 0; i < a->nfiles; i++)
		if (memcmp(a->files[i].hash, b->files[i].hash,
		    SIMQ_HASH_LEN) != 0 || a->files[i].size != b->files[i].size ||
		    a->files[i].mode != b->files[i].mode ||
		    strcmp(a->files[i].name, b->files[i].name) != 0)
			return 0;
	return strv_equal(a->pat, b->pat, a->npat) &&
	    strv_equal(a->err, b->err, a->nerr);
}

/* Takes (up) or lets go of a reference to each blob f names. */
void
jobfiles_ref(const struct jobfiles *f, int up)
{
	uint32_t	i;

	if (f == NULL)
		return;
	for (i = 0; i < f->nfiles; i++) {
		if (up)
			blob_ref(&f->files[i]);
		else
			blob_unref(&f->files[i]);
	}
}
