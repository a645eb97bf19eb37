#!/bin/sh
# simq benchmark: files that travel with jobs.  Upload and download of a
# 1 GB file over loopback (build/rel/bench_blob: the code simq submit
# --file and simq-worker use, lib/xfer.c) against cp of the same file on
# the same disk, and the broker's RSS meanwhile.  Run by tests/bench/run.sh
# (make bench); it builds nothing.
#
# Targets (issue 10): each transfer within 2x the time of cp; the
# broker's RSS flat, under 64 MB above idle.  An upload is answered once
# the blob is checked and on disk (fdatasync'd), so it is set against cp
# followed by an fsync of the copy; a download ends when the file is
# written and its hash checked (not synced, as a worker's cache entry is
# not), so against cp alone.  The source file is read once first, so that
# every run starts from the page cache.
#
# Environment: SIMQ_BENCH_BLOB_MB (default 1024) the file's size;
# SIMQ_BENCH_BLOB_RUNS (default 3) how many times each is measured;
# SIMQ_BENCH_DIR (default /var/tmp) where the files go (a real disk).

cd "$(dirname "$0")/../.." || exit 2
SIMQD=$PWD/bin/simqd
BLOB=$PWD/build/rel/bench_blob
BENCH=$PWD/build/rel/bench_submit
for f in "$SIMQD" "$BLOB" "$BENCH"; do
	if [ ! -x "$f" ]; then
		echo "bench: $f is missing; run 'make bench'" >&2
		exit 2
	fi
done
MB=${SIMQ_BENCH_BLOB_MB:-1024}
parent=${SIMQ_BENCH_DIR:-/var/tmp}
T=$(mktemp -d "$parent/simq-blob.XXXXXX") || exit 2
pid=
sampler=
cleanup() {
	[ -n "$sampler" ] && kill "$sampler" 2>/dev/null
	if [ -n "$pid" ]; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench: FAILED: $*" >&2
	[ -f "$T/simqd.log" ] && tail -n 5 "$T/simqd.log" | sed 's/^/    /' >&2
	exit 1
}

kv() {
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

ms_since() {
	echo $((($(date +%s%N) - $1) / 1000000))
}

rss_kib() {
	sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status"
}

# sample FILE: the broker's VmRSS every 20 ms into FILE, until killed.
sample() {
	while :; do
		rss_kib >>"$1" 2>/dev/null || break
		sleep 0.02
	done
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b;
	    else print "inf" }'
}

verdict_ratio() {
	awk -v r="$1" -v t="$2" 'BEGIN { if (r + 0 <= t + 0) print "ok";
	    else printf "MISSED by %.0f%%\n", (r - t) * 100 / t }'
}

mbs() {
	awk -v mb="$MB" -v ms="$1" 'BEGIN { if (ms > 0)
	    printf "%.0f", mb * 1048576 / 1e6 / (ms / 1000); else print "-" }'
}

fstype=$(df -P -T "$T" | awk 'NR == 2 { print $2 }')
case $fstype in
tmpfs|ramfs)
	fail "$T is on $fstype; set SIMQ_BENCH_DIR to a directory on a disk" ;;
esac

echo "files that travel with jobs: a ${MB} MiB file, $T on $fstype"
head -c $((MB * 1048576)) /dev/urandom >"$T/src" || fail "making the file"
cat "$T/src" >/dev/null

median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# RUNS times: cp, and cp then fsync, of the same file on the same disk;
# then, on a fresh broker each time (a blob it holds is not sent
# again), the upload and the download.  The medians are shown.
RUNS=${SIMQ_BENCH_BLOB_RUNS:-3}
: >"$T/cp"; : >"$T/cps"; : >"$T/put"; : >"$T/get"; : >"$T/hash"; : >"$T/gcpu"
: >"$T/above"; : >"$T/idle"; : >"$T/peak"
k=0
while [ "$k" -lt "$RUNS" ]; do
	t0=$(date +%s%N)
	cp "$T/src" "$T/cp1" || fail "cp"
	ms_since "$t0" >>"$T/cp"
	rm -f "$T/cp1"
	t0=$(date +%s%N)
	cp "$T/src" "$T/cp2" && sync "$T/cp2" || fail "cp; sync"
	ms_since "$t0" >>"$T/cps"
	rm -f "$T/cp2"
	sync

	rm -rf "$T/data"
	port=$("$BENCH" port) || fail "no free port"
	t0=$(date +%s%N)
	"$SIMQD" -d "$T/data" -p "$port" >>"$T/simqd.log" 2>&1 &
	pid=$!
	"$BENCH" -p "$port" ready "$t0" 60 "$pid" >/dev/null ||
	    fail "starting simqd"
	sleep 0.2
	idle=$(rss_kib)
	: >"$T/rss"
	sample "$T/rss" &
	sampler=$!
	out=$("$BLOB" -p "$port" put "$T/src") || fail "upload"
	kv "$out" ms >>"$T/put"
	kv "$out" hash_ms >>"$T/hash"
	hex=$(kv "$out" hex)
	out=$("$BLOB" -p "$port" get "$hex" $((MB * 1048576)) "$T/got") ||
	    fail "download"
	kv "$out" ms >>"$T/get"
	kv "$out" cpu_ms >>"$T/gcpu"
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null
	sampler=
	cmp -s "$T/src" "$T/got" || fail "the file downloaded differs"
	rm -f "$T/got"
	peak=$(sort -n "$T/rss" | tail -n 1)
	echo $(((peak - idle) / 1024)) >>"$T/above"
	echo "$idle" >>"$T/idle"
	echo "$peak" >>"$T/peak"
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
	k=$((k + 1))
done
cp_ms=$(median <"$T/cp")
cps_ms=$(median <"$T/cps")
put_ms=$(median <"$T/put")
get_ms=$(median <"$T/get")
gcpu_ms=$(median <"$T/gcpu")
hash_ms=$(median <"$T/hash")
above=$(sort -n "$T/above" | tail -n 1)
idle=$(median <"$T/idle")
peak=$(sort -n "$T/peak" | tail -n 1)

printf '%-58s %12s  %-10s %s\n' "benchmark" "measured" "target" "verdict"
printf '%-58s %12s  %-10s %s\n' "---------" "--------" "------" "-------"
row() {
	printf '%-58s %12s  %-10s %s\n' "$1" "$2" "$3" "$4"
}
r=$(ratio "$put_ms" "$cps_ms")
row "6a upload ${MB} MiB, stored and synced, median of $RUNS (ms)" "$put_ms" \
    "<= 2x cp" "$(verdict_ratio "$r" 2): ${r}x cp+fsync ($cps_ms ms)"
row "   upload MB/s; simq's hashing pass before it (ms)" "$(mbs "$put_ms")" \
    "" "hash $hash_ms ms"
r=$(ratio "$get_ms" "$cp_ms")
row "6b download ${MB} MiB, hash checked, median of $RUNS (ms)" "$get_ms" "<= 2x cp" \
    "$(verdict_ratio "$r" 2): ${r}x cp ($cp_ms ms)"
row "   download MB/s; the downloader's CPU time (ms)" "$(mbs "$get_ms")" \
    "" "cpu $gcpu_ms ms"
row "6c broker RSS above idle during both, worst run (MiB)" "$above" "< 64" \
    "$(awk -v a="$above" 'BEGIN { print (a < 64) ? "ok" : "MISSED" }'):\
 idle $((idle / 1024)) MiB, peak $((peak / 1024)) MiB"
