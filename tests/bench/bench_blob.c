/*
 * bench_blob.c: one upload or one download of a blob, timed, through
 * the same code simq and simq-worker use (lib/xfer.c), for
 * tests/bench/blob.sh.
 *
 *   bench_blob -p PORT put FILE            hash FILE, upload it
 *   bench_blob -p PORT get HEX SIZE FILE   download HEX into FILE
 *
 * Each prints one line of key=value words: hex=, bytes=, hash_ms= (put:
 * the hashing pass, as simq submit makes it), ms= (the transfer, from
 * the first request to the last reply: for a put that includes the
 * broker's check and fsync of the whole blob), cpu_ms= (this process's
 * CPU time, user and system, over the same span: near ms= says the
 * transfer is bound by this side's CPU, not by waits), mb_s=.
 */
#include <sys/resource.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "proto.h"
#include "sha256.h"
#include "xfer.h"
#include "xmalloc.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: bench_blob [-p PORT] put FILE\n"
	    "       bench_blob [-p PORT] get HEX SIZE FILE\n");
	exit(2);
}

/* CPU time this process has used (user and system), in ms. */
static uint64_t
cpu_ms(void)
{
	struct rusage	ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	    (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

int
main(int argc, char **argv)
{
	struct xfer	*x;
	unsigned char	 d[SHA256_LEN];
	char		 hex[SHA256_HEX_LEN + 1], port[16] = "7733";
	uint64_t	 size, t0, t1, t2, c1, c2;
	int		 fd, ch;

	while ((ch = getopt(argc, argv, "p:")) != -1) {
		if (ch != 'p')
			usage();
		snprintf(port, sizeof port, "%s", optarg);
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		usage();
	x = xfer_new("127.0.0.1", port, getenv("SIMQ_TOKEN"));
	if (strcmp(argv[0], "put") == 0 && argc == 2) {
		if ((fd = open(argv[1], O_RDONLY)) < 0) {
			perror(argv[1]);
			return 1;
		}
		t0 = mono_ms();
		if (sha256_fd(fd, d, &size) < 0) {
			perror(argv[1]);
			return 1;
		}
		sha256_hex(d, hex);
		t1 = mono_ms();
		c1 = cpu_ms();
		if (xfer_upload(x, fd, hex, size, NULL, NULL) < 0) {
			fprintf(stderr, "bench_blob: put: %s\n", x->err);
			return 1;
		}
		t2 = mono_ms();
		c2 = cpu_ms();
	} else if (strcmp(argv[0], "get") == 0 && argc == 4) {
		snprintf(hex, sizeof hex, "%s", argv[1]);
		size = strtoull(argv[2], NULL, 10);
		if ((fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
			perror(argv[3]);
			return 1;
		}
		t0 = t1 = mono_ms();
		c1 = cpu_ms();
		if (xfer_download(x, hex, size, fd, NULL, NULL) < 0) {
			fprintf(stderr, "bench_blob: get: %s\n", x->err);
			return 1;
		}
		t2 = mono_ms();
		c2 = cpu_ms();
	} else
		usage();
	close(fd);
	printf("hex=%s bytes=%llu hash_ms=%llu ms=%llu cpu_ms=%llu mb_s=%.1f "
	    "reconnects=%llu\n", hex, (unsigned long long)size,
	    (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
	    (unsigned long long)(c2 - c1),
	    t2 > t1 ? (double)size / 1e3 / (double)(t2 - t1) : 0.0,
	    (unsigned long long)x->reconnects);
	xfer_free(x);
	return 0;
}
