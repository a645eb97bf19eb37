#!/bin/sh
# 1,000 workers on one broker, against the targets in the brief ("How fast
# and how big"): at least 50,000 jobs/s dispatched to workers that finish
# at once, `simq status` (a STATUS request every 10 ms) answered in under
# 50 ms throughout, no heartbeat missed (no lease lost), and the broker's
# memory per connected worker.  build/rel/bench_workers speaks the
# protocol for all of them from one process (loopback only); see its
# header.  Under fsync always (the default) and none.
#
# Needs bin/simqd and build/rel/bench_workers; builds nothing.
# Environment: SIMQ_BENCH_WORKERS (default 1000), SIMQ_BENCH_WORKER_RUN_JOBS
# (default 200000) jobs per run, SIMQ_BENCH_DIR (default /var/tmp).

cd "$(dirname "$0")/../.." || exit 2
SIMQD=$PWD/bin/simqd
GEN=$PWD/build/rel/bench_workers
SPAWN=$PWD/build/rel/bench_spawn
for f in "$SIMQD" "$GEN" "$SPAWN"; do
	if [ ! -x "$f" ]; then
		echo "bench: $f is missing; run 'make bench'" >&2
		exit 2
	fi
done
NW=${SIMQ_BENCH_WORKERS:-1000}
NJ=${SIMQ_BENCH_WORKER_RUN_JOBS:-200000}
parent=${SIMQ_BENCH_DIR:-/var/tmp}
T=$(mktemp -d "$parent/simq-bench-workers.XXXXXX") || exit 2
bpid=
cleanup() {
	[ -n "$bpid" ] && kill -9 "$bpid" 2>/dev/null
	if [ "${SIMQ_BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The broker needs a descriptor per worker too.
ulimit -n "$(ulimit -H -n)" 2>/dev/null

kv() {
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
row() {
	printf '%-52s %12s  %-10s %s\n' "$1" "$2" "$3" "$4"
}
verdict() {	# VALUE OP TARGET
	awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		ok = op == ">=" ? v + 0 >= t + 0 : v + 0 < t + 0
		if (ok) print "ok"
		else printf "MISSED by %.0f%%\n", (op == ">=" ? t - v : v - t) * 100 / t }'
}

echo "1,000-worker benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null))"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for policy in always none; do
	port=$("$SPAWN" port) || exit 1
	"$SIMQD" -d "$T/$policy" -p "$port" --fsync "$policy" \
	    2>"$T/$policy.log" &
	bpid=$!
	"$SPAWN" -p "$port" -t 30 ping >/dev/null || { echo "bench: simqd did not start" >&2; exit 1; }
	echo "   fsync $policy: $NW workers, $NJ jobs ..."
	out=$("$GEN" -p "$port" -n "$NW" -j "$NJ" -b "$bpid") ||
	    { echo "bench: FAILED: $out" >&2; tail -n 5 "$T/$policy.log" >&2; exit 1; }
	kill -TERM "$bpid"; wait "$bpid"; bpid=
	rate=$(kv "$out" rate)
	smax=$(awk -v u="$(kv "$out" status_max_us)" 'BEGIN { printf "%.1f", u / 1000 }')
	sp99=$(awk -v u="$(kv "$out" status_p99_us)" 'BEGIN { printf "%.1f", u / 1000 }')
	sp50=$(awk -v u="$(kv "$out" status_p50_us)" 'BEGIN { printf "%.1f", u / 1000 }')
	row "4  jobs/s, $NW workers, fsync $policy" "$rate" ">= 50000" "$(verdict "$rate" ">=" 50000)"
	row "   STATUS every 10 ms: slowest answer (ms)" "$smax" "< 50" "$(verdict "$smax" "<" 50)"
	row "   STATUS p50 / p99 (ms)" "$sp50/$sp99" "" ""
	row "   heartbeats answered / slowest (ms) / leases lost" \
	    "$(kv "$out" hb_n)/$(($(kv "$out" hb_max_us) / 1000))/$(kv "$out" drops)" "" \
	    "$( [ "$(kv "$out" drops)" = 0 ] && echo ok || echo MISSED)"
	row "   broker memory per connected worker (bytes)" "$(kv "$out" rss_per_worker)" "" ""
	row "   broker CPU per job (us)" "$(kv "$out" broker_cpu_us_per_job)" "" ""
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
