/*
 * main.c: simqd, the simq broker.
 *
 * One process, one libevent loop.  The loop runs one pass at a time
 * (EVLOOP_ONCE); a pass runs whatever became ready, and between passes the
 * broker commits: one write() and one fdatasync() cover every change the
 * pass made, and only then do the pass's replies go out.  This is group
 * commit without threads: the more clients are busy, the more each fsync
 * covers.
 */
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "simqd.h"
#include "log.h"
#include "size.h"

static void
usage(FILE *f)
{
	fprintf(f,
"usage: simqd [-v] [-d DATADIR] [-l ADDR] [-p PORT] [--http PORT]\n"
"             [--fsync always|interval|none] [--fsync-interval MS]\n"
"             [--token-file FILE | --insecure] [--retention DURATION]\n"
"             [--lease DURATION] [--reconnect-grace DURATION] [--max-lost N]\n"
"             [--retry-backoff DURATION]\n"
"             [--retry-backoff-max DURATION] [--compact-min BYTES]\n"
"             [--segment-size BYTES] [--max-jobs N] [--input-max BYTES]\n"
"             [--stall-timeout DURATION] [--reserve-after DURATION]\n"
"             [--blob-max SIZE] [--blob-grace DURATION] [--force]\n"
"       simqd --check [-d DATADIR]\n"
"\n"
"  -d DATADIR            keep the journal here (default ./simq-data)\n"
"  -l ADDR               listen on ADDR (default 127.0.0.1)\n"
"  -p PORT               listen on PORT (default 7733)\n"
"  --http PORT           serve the dashboard and JSON API on ADDR:PORT\n"
"                        (/, /api/status, /api/jobs/ID, /metrics)\n"
"  --fsync POLICY        always (default): no reply before its fsync;\n"
"                        interval: fsync every --fsync-interval ms (100);\n"
"                        none: leave it to the kernel\n"
"  --token-file FILE     clients must send this token in HELLO\n"
"  --insecure            allow a non-loopback ADDR without a token\n"
"  --retention DURATION  forget finished jobs after this (default 7d)\n"
"  --lease DURATION      lease of workers that do not ask (default 30s)\n"
"  --reconnect-grace D   a worker whose connection ended and that is not\n"
"                        back within this loses its jobs (default 5s)\n"
"  --max-lost N          fail a job after its worker is lost N+1 times (5)\n"
"  --retry-backoff D     first retry delay, doubling (default 1s)\n"
"  --retry-backoff-max D longest retry delay (default 10m)\n"
"  --compact-min BYTES   do not compact a smaller journal (default 64M)\n"
"  --segment-size BYTES  start a new journal segment past this (64M)\n"
"  --max-jobs N          refuse new jobs (ERR limit) while N jobs, arrays\n"
"                        and started tasks are kept (default 10000000)\n"
"  --input-max BYTES     incomplete requests held, in all (default 256M)\n"
"  --stall-timeout D     close a connection that leaves a request half-sent\n"
"                        or its replies unread this long (default 30s)\n"
"  --reserve-after D     a job at the head of its queue that waited this\n"
"                        long is kept room for: workers that could run\n"
"                        it take nothing smaller until it fits (60s)\n"
"  --blob-max SIZE       bound the blob store (DATADIR/blobs): complete\n"
"                        blobs plus uploads in progress (default: none)\n"
"  --blob-grace D        keep a blob no kept job names, and an idle\n"
"                        upload, this long (default 1h)\n"
"  --force               start even if the journal is corrupt in the\n"
"                        middle, cutting it at the first bad record\n"
"                        (what is cut goes to DATADIR/journal/cut-*/)\n"
"  --check               check DATADIR's journal offline and exit\n"
"  -v                    log more\n");
}

/* 1 if every address addr resolves to is a loopback one. */
static int
is_loopback(const char *addr)
{
	struct addrinfo	 hints, *res, *ai;
	int		 lo = 1;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(addr, NULL, &hints, &res) != 0)
		return 0;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			struct sockaddr_in *s = (void *)ai->ai_addr;
			if ((ntohl(s->sin_addr.s_addr) >> 24) != 127)
				lo = 0;
		} else if (ai->ai_family == AF_INET6) {
			struct sockaddr_in6 *s = (void *)ai->ai_addr;
			if (!IN6_IS_ADDR_LOOPBACK(&s->sin6_addr))
				lo = 0;
		} else
			lo = 0;
	}
	freeaddrinfo(res);
	return lo;
}

/* Every worker and client holds a connection: allow as many as the hard
 * limit permits, not the usual 1024. */
static void
raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("setrlimit: %s", strerror(errno));
	}
}

/*
 * Takes the data directory's lock (path, open as fd), trying for up to
 * wait_ms.  A compaction child shares it from the fork until it closes
 * what it inherited, so a kill -9 of the broker just after a fork leaves
 * it held until the kernel has killed the child in turn: a start waits
 * that long, as for the journal's lock.  Returns 0, or -1 (another
 * process holds it, or flock failed).
 */
static int
lock_wait(int fd, const char *path, unsigned wait_ms)
{
	struct timespec	ts = { 0, 10 * 1000 * 1000 };
	unsigned	waited = 0;

	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) ||
		    waited >= wait_ms)
			return -1;
		if (waited == 0)
			log_info("%s is locked; waiting up to %u ms for it",
			    path, wait_ms);
		nanosleep(&ts, NULL);
		waited += 10;
	}
	return 0;
}

static void
sync_cb(evutil_socket_t fd, short ev, void *arg)
{
	if (journal_sync(B->journal) < 0)
		fatal("journal: fsync: %s", strerror(errno));
}

/* A compaction child exited: the pass that follows reaps it
 * (snapshot_maybe). */
static void
sigchld_cb(evutil_socket_t sig, short ev, void *arg)
{
}

static void
signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	log_info("got %s, shutting down", sig == SIGTERM ? "SIGTERM" :
	    "SIGINT");
	B->stopping = 1;
	event_base_loopbreak(B->base);
}

/* Between two loop passes: timers, parked replies, commit, replies. */
static void
pass_end(void)
{
	int	err;

	B->now = now_ms();
	net_run();
	timers_fire();
	cmd_serve_parked();
	epoch_reserve();
	/* Leases go now; every other reply after the commit (epoch.c). */
	net_flush_early();
	if (journal_pending(B->journal) > 0) {
		if (B->cfg.commit_delay_ms && B->pass_leases > 0) {
			/* Test hook: a window in which a lease is out and not
			 * on disk, for a kill -9 to land in. */
			struct timespec ts;
			ts.tv_sec = B->cfg.commit_delay_ms / 1000;
			ts.tv_nsec = (long)(B->cfg.commit_delay_ms % 1000) *
			    1000000;
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
		if (journal_commit(B->journal) < 0) {
			err = errno;
			log_warn("journal: write failed: %s", strerror(err));
			net_after_pass(1, err);
			/* The replies, ERR server first, are given a moment
			 * to reach their clients (net.c). */
			net_fatal_flush();
			fatal("journal: cannot write (%s); exiting so that a "
			    "restart recovers from what is on disk",
			    strerror(err));
		}
		epoch_committed();
	}
	blob_passed();
	net_after_pass(0, 0);
	timers_arm();
	snapshot_maybe();
}

static int
check_only(struct journal_opts *jo)
{
	struct journal	*j;
	struct queue	*q;
	char		 err[512];
	uint64_t	 total[JS__COUNT] = { 0 };
	int		 s;

	jo->readonly = 1;
	jo->report = stdout;
	B->replaying = 1;
	if ((j = journal_open(jo, rec_apply, NULL, err, sizeof err)) == NULL) {
		printf("FAILED: %s\n", err);
		return 1;
	}
	B->replaying = 0;
	B->journal = j;
	job_replay_done();
	TAILQ_FOREACH(q, &B->queues, entry)
		for (s = 0; s < JS__COUNT; s++)
			total[s] += q->count[s];
	printf("state: %llu records in the id map, %u queues, next id %llu\n",
	    (unsigned long long)B->njobs, B->nqueues,
	    (unsigned long long)B->next_id);
	for (s = 0; s < JS__COUNT; s++)
		printf("  %-9s %llu\n", proto_state_name(s),
		    (unsigned long long)total[s]);
	printf("OK\n");
	journal_close(j);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "fsync", required_argument, NULL, 'F' },
		{ "fsync-interval", required_argument, NULL, 'I' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "insecure", no_argument, NULL, 'N' },
		{ "http", required_argument, NULL, 'H' },
		{ "retention", required_argument, NULL, 'R' },
		{ "lease", required_argument, NULL, 'L' },
		{ "reconnect-grace", required_argument, NULL, 'g' },
		{ "max-lost", required_argument, NULL, 'M' },
		{ "retry-backoff", required_argument, NULL, 'b' },
		{ "retry-backoff-max", required_argument, NULL, 'B' },
		{ "compact-min", required_argument, NULL, 'c' },
		{ "segment-size", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ "max-jobs", required_argument, NULL, 'J' },
		{ "input-max", required_argument, NULL, 'i' },
		{ "stall-timeout", required_argument, NULL, 'S' },
		{ "reserve-after", required_argument, NULL, 'r' },
		{ "check", no_argument, NULL, 'C' },
		{ "fail-writes-after", required_argument, NULL, 'W' },
		{ "blob-max", required_argument, NULL, 'X' },
		{ "blob-grace", required_argument, NULL, 'G' },
		{ "compact-child-delay", required_argument, NULL, 'D' },
		{ "commit-delay", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct config		*cfg = &B->cfg;
	struct journal_opts	 jo;
	struct event		*sigterm, *sigint, *sigchld;
	struct timeval		 tv;
	char			 path[4096], err[512];
	uint64_t		 v, t0;
	int			 ch, check = 0, lockfd, i;

	log_init("simqd", LOG_STAMPED, 1);
	cfg->datadir = "simq-data";
	cfg->addr = "127.0.0.1";
	cfg->port = SIMQ_DEFAULT_PORT;
	cfg->fsync = FSYNC_ALWAYS;
	cfg->fsync_interval_ms = 100;
	cfg->retention_ms = UINT64_C(7) * 24 * 3600 * 1000;
	cfg->default_lease_ms = 30000;
	cfg->reconnect_grace_ms = 5000;
	cfg->max_lost = 5;
	cfg->backoff_base_ms = 1000;
	cfg->backoff_cap_ms = 600000;
	cfg->compact_min = (uint64_t)64 << 20;
	cfg->segment_max = JOURNAL_SEGMENT_MAX;
	cfg->max_jobs = 10000000;
	cfg->input_max = (uint64_t)256 << 20;
	cfg->stall_timeout_ms = 30000;
	cfg->reserve_after_ms = 60000;
	cfg->blob_max = 0;
	cfg->blob_grace_ms = 3600000;

	while ((ch = getopt_long(argc, argv, "d:l:p:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			cfg->datadir = optarg;
			break;
		case 'l':
			cfg->addr = optarg;
			break;
		case 'p':
			if (proto_parse_u64(optarg, strlen(optarg), 65535, &v) < 0
			    || v == 0)
				goto bad;
			cfg->port = (int)v;
			break;
		case 'v':
			log_verbosity = 2;	/* every debug line */
			break;
		case 'F':
			if (strcmp(optarg, "always") == 0)
				cfg->fsync = FSYNC_ALWAYS;
			else if (strcmp(optarg, "interval") == 0)
				cfg->fsync = FSYNC_INTERVAL;
			else if (strcmp(optarg, "none") == 0)
				cfg->fsync = FSYNC_NONE;
			else
				goto bad;
			break;
		case 'I':
			if (proto_parse_u64(optarg, strlen(optarg), 600000, &v) < 0
			    || v == 0)
				goto bad;
			cfg->fsync_interval_ms = (unsigned)v;
			break;
		case 'T':
			cfg->token_file = optarg;
			break;
		case 'H':
			if (proto_parse_u64(optarg, strlen(optarg), 65535, &v) < 0
			    || v == 0)
				goto bad;
			cfg->http_port = (int)v;
			break;
		case 'N':
			cfg->insecure = 1;
			break;
		case 'R':
			if (proto_parse_duration(optarg, &cfg->retention_ms) < 0)
				goto bad;
			break;
		case 'L':
			if (proto_parse_duration(optarg, &v) < 0 || v < 1000 ||
			    v > 3600000)
				goto bad;
			cfg->default_lease_ms = v;
			break;
		case 'g':
			if (proto_parse_duration(optarg, &v) < 0 || v < 100 ||
			    v > 3600000)
				goto bad;
			cfg->reconnect_grace_ms = v;
			break;
		case 'M':
			if (proto_parse_u64(optarg, strlen(optarg), 65535, &v) < 0)
				goto bad;
			cfg->max_lost = (uint32_t)v;
			break;
		case 'b':
			if (proto_parse_duration(optarg, &cfg->backoff_base_ms) < 0)
				goto bad;
			break;
		case 'B':
			if (proto_parse_duration(optarg, &cfg->backoff_cap_ms) < 0)
				goto bad;
			break;
		case 'c':
			if (parse_size(optarg, &cfg->compact_min) < 0)
				goto bad;
			break;
		case 's':
			if (parse_size(optarg, &cfg->segment_max) < 0 ||
			    cfg->segment_max < 4096)
				goto bad;
			break;
		case 'f':
			cfg->force = 1;
			break;
		case 'J':
			if (proto_parse_u64(optarg, strlen(optarg), SIMQ_ID_MAX,
			    &cfg->max_jobs) < 0 || cfg->max_jobs == 0)
				goto bad;
			break;
		case 'i':
			if (parse_size(optarg, &cfg->input_max) < 0 ||
			    cfg->input_max < (1u << 20))
				goto bad;
			break;
		case 'S':
			if (proto_parse_duration(optarg,
			    &cfg->stall_timeout_ms) < 0 ||
			    cfg->stall_timeout_ms < 100)
				goto bad;
			break;
		case 'r':
			if (proto_parse_duration(optarg,
			    &cfg->reserve_after_ms) < 0)
				goto bad;
			break;
		case 'C':
			check = 1;
			break;
		case 'W':
			if (parse_size(optarg, &cfg->fail_writes_after) < 0)
				goto bad;
			break;
		case 'X':
			if (parse_size(optarg, &cfg->blob_max) < 0)
				goto bad;
			break;
		case 'G':
			if (proto_parse_duration(optarg,
			    &cfg->blob_grace_ms) < 0)
				goto bad;
			break;
		case 'D':
			if (proto_parse_u64(optarg, strlen(optarg), 600000, &v) < 0)
				goto bad;
			cfg->compact_child_delay_ms = (unsigned)v;
			break;
		case 'E':
			if (proto_parse_u64(optarg, strlen(optarg), 600000, &v) < 0)
				goto bad;
			cfg->commit_delay_ms = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "simqd: unexpected argument '%s'\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}
	if (cfg->backoff_cap_ms < cfg->backoff_base_ms)
		cfg->backoff_cap_ms = cfg->backoff_base_ms;

	broker_init();
	B->now = B->started_at = now_ms();

	memset(&jo, 0, sizeof jo);
	snprintf(path, sizeof path, "%s/journal", cfg->datadir);
	jo.dir = path;
	jo.policy = cfg->fsync;
	jo.interval_ms = cfg->fsync_interval_ms;
	jo.segment_max = cfg->segment_max;
	jo.force = cfg->force;
	jo.cutoff_fn = rec_cutoff;
	jo.lock_wait_ms = 5000;
	if (check)
		return check_only(&jo);

	if (cfg->token_file != NULL &&
	    (cfg->token = token_read(cfg->token_file, err, sizeof err)) == NULL)
		fatal("%s", err);
	{
		/* A token others can read is no secret. */
		struct stat tst;
		if (cfg->token_file != NULL && stat(cfg->token_file, &tst) ==
		    0 && (tst.st_mode & 077) != 0)
			log_warn("warning: the token file %s can be read by "
			    "others (mode %03o): anyone on this host could "
			    "send jobs; chmod 600 %s", cfg->token_file,
			    (unsigned)(tst.st_mode & 0777), cfg->token_file);
	}
	if (cfg->token == NULL && !cfg->insecure && !is_loopback(cfg->addr))
		fatal("listening on %s needs --token-file FILE (or --insecure): "
		    "anyone who can reach it could run commands on the workers",
		    cfg->addr);

	if (mkdir(cfg->datadir, 0755) < 0 && errno != EEXIST)
		fatal("%s: %s", cfg->datadir, strerror(errno));
	snprintf(err, sizeof err, "%s/lock", cfg->datadir);
	if ((lockfd = open(err, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		fatal("%s: %s", err, strerror(errno));
	if (lock_wait(lockfd, err, jo.lock_wait_ms) < 0)
		fatal("%s is in use by another simqd", cfg->datadir);

	t0 = now_ms();
	B->replaying = 1;
	B->journal = journal_open(&jo, rec_apply, NULL, err, sizeof err);
	if (B->journal == NULL)
		fatal("%s", err);
	B->replaying = 0;
	job_replay_done();
	epoch_start();
	if (B->cutoff_ids)
		log_warn("journal: records that were not replayed name ids up "
		    "to %llu: the next id is %llu, so none is handed out twice",
		    (unsigned long long)B->next_id - 1,
		    (unsigned long long)B->next_id);
	if (cfg->fail_writes_after)
		journal_fail_after(B->journal, cfg->fail_writes_after);
	{
		struct journal_stats st;
		journal_stats(B->journal, &st);
		log_info("recovered %llu jobs and tasks from %llu records "
		    "(%llu bytes) in %llu ms; next id %llu",
		    (unsigned long long)B->njobs,
		    (unsigned long long)st.records,
		    (unsigned long long)st.bytes,
		    (unsigned long long)(now_ms() - t0),
		    (unsigned long long)B->next_id);
	}

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if ((B->base = event_base_new()) == NULL)
		fatal("event_base_new failed");
	timers_start();
	if (cfg->fsync == FSYNC_INTERVAL) {
		B->sync_ev = event_new(B->base, -1, EV_PERSIST, sync_cb, NULL);
		tv.tv_sec = cfg->fsync_interval_ms / 1000;
		tv.tv_usec = (suseconds_t)(cfg->fsync_interval_ms % 1000) * 1000;
		event_add(B->sync_ev, &tv);
	}
	sigterm = evsignal_new(B->base, SIGTERM, signal_cb, NULL);
	sigint = evsignal_new(B->base, SIGINT, signal_cb, NULL);
	sigchld = evsignal_new(B->base, SIGCHLD, sigchld_cb, NULL);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	event_add(sigchld, NULL);
	if (net_listen(cfg->addr, cfg->port, CONN_PROTO) < 0)
		fatal("cannot listen on %s port %d", cfg->addr, cfg->port);
	if (cfg->http_port && http_listen(cfg->addr, cfg->http_port) < 0)
		fatal("cannot serve HTTP on %s port %d", cfg->addr,
		    cfg->http_port);
	log_info("listening on %s port %d, data in %s, fsync %s", cfg->addr,
	    cfg->port, cfg->datadir, cfg->fsync == FSYNC_ALWAYS ? "always" :
	    cfg->fsync == FSYNC_INTERVAL ? "interval" : "none");

	job_expire(B->now);
	blob_start();
	B->want_dispatch = 1;
	pass_end();
	while (!B->stopping) {
		/* Requests left in the run queue: look at the sockets, but
		 * do not wait for them (NONBLOCK alone would loop for as
		 * long as some socket is readable). */
		if (event_base_loop(B->base, EVLOOP_ONCE |
		    (net_busy() ? EVLOOP_NONBLOCK : 0)) < 0)
			fatal("event loop failed");
		pass_end();
	}

	net_close_listeners();
	conns_free_all();
	blob_stop();
	follow_free_all();
	epoch_close();
	if (journal_close(B->journal) < 0)
		fatal("journal: closing: %s", strerror(errno));
#if SIMQ_LEAK_CHECKED
	/* Freeing millions of jobs one by one takes a second; only a leak
	 * checker needs to see it done. */
	broker_free();
#endif
	event_free(sigterm);
	event_free(sigint);
	event_free(sigchld);
	timers_stop();
	if (B->sync_ev != NULL)
		event_free(B->sync_ev);
	event_base_free(B->base);
	free(B->cfg.token);
	log_info("shut down cleanly");
	return 0;
bad:
	for (i = 0; longopts[i].name != NULL; i++)
		if (longopts[i].val == ch)
			break;
	if (longopts[i].name != NULL && strchr("dlpvh", ch) == NULL)
		fprintf(stderr, "simqd: bad value '%s' for --%s\n", optarg,
		    longopts[i].name);
	else
		fprintf(stderr, "simqd: bad value '%s' for -%c\n", optarg, ch);
	usage(stderr);
	return 2;
}
