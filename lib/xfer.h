/*
 * xfer.h: moving blobs to and from the broker (HAVE, PUT, GET), over a
 * blocking connection of its own.
 *
 * Shared by simq (uploads at submit, simq fetch) and simq-worker (its
 * transfer processes, see worker/files.c).  A transfer never shares the
 * connection of the worker's event loop: a gigabyte on the wire must
 * not hold up a heartbeat or a TAKE.  Memory is one chunk, whatever the
 * size of the file: PUTs are read from the file as they are sent, a few
 * in flight (XFER_WINDOW), and GETs are written to the file and hashed
 * as they arrive.  A connection lost mid-transfer is opened again (for
 * up to retry_ms) and the transfer goes on from where the broker's HAVE
 * (upload) or the bytes written (download) say, so a broker restarted
 * after kill -9 costs a pause, not the transfer.
 */
#ifndef SIMQ_LIB_XFER_H
#define SIMQ_LIB_XFER_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

/* Bytes per PUT or GET (the protocol allows up to 4 MiB), and how many
 * are in flight at once. */
#define XFER_CHUNK		(1u << 20)
#define XFER_WINDOW		4

/* Hashes per HAVE line: 65 bytes each keeps a line far under 64 KiB. */
#define XFER_HAVE_MAX		500

/* What a HAVE answered for one hash. */
#define XFER_STORED		(-1)	/* held, complete */

typedef void	(*xfer_note_fn)(void *, const char *);
typedef void	(*xfer_progress_fn)(void *, uint64_t done, uint64_t size);

struct xfer {
	char		*host, *port, *token;
	char		*addr;			/* host:port, for messages */
	int		 fd;			/* -1: not connected */
	char		*in;
	size_t		 inoff, inlen, incap;
	int		 timeout_ms;		/* per reply */
	int		 retry_ms;		/* reconnecting, in all */
	char		*chunk;			/* XFER_CHUNK bytes */
	/* The last failure: a sentence, whether the connection was lost
	 * (1) or the broker refused (0), and its ERR code if it did. */
	char		 err[768];
	int		 lost;
	char		 code[32];
	xfer_note_fn	 note;			/* reconnecting: says so */
	void		*note_arg;
	uint64_t	 reconnects;
};

struct xfer	*xfer_new(const char *host, const char *port,
		    const char *token);
void		 xfer_free(struct xfer *);

/* Each returns 0, or -1 with x->err set. */

/* HAVE: held[i] is XFER_STORED, or the bytes of an upload in progress
 * (0: nothing). */
int	xfer_have(struct xfer *, const char (*hex)[SHA256_HEX_LEN + 1],
	    size_t n, int64_t *held);
/* Sends fd's bytes (from offset 0 of the file, size of them) as blob
 * hex, resuming after what the broker holds. */
int	xfer_upload(struct xfer *, int fd, const char *hex, uint64_t size,
	    xfer_progress_fn, void *);
/* Writes blob hex (size bytes) to fd from its offset 0, checking its
 * hash; a mismatch is an error ("corrupt") and fd then holds junk. */
int	xfer_download(struct xfer *, const char *hex, uint64_t size, int fd,
	    xfer_progress_fn, void *);

#endif
