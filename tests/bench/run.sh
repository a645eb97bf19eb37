#!/bin/sh
# simq benchmarks: durable submit rate, array acceptance, memory per job,
# recovery time, compaction and the loop's pause during it, each against
# its target in the brief, and the latency of following a job's output
# across network namespaces (follow_netns.sh)
# ("How fast and how big").  Run by `make bench`, which builds bin/simqd
# and build/rel/bench_submit first; this script builds nothing.
#
# Every broker runs on a free loopback port with its data in a temporary
# directory on a real disk (never tmpfs: fsync must cost what it costs),
# under SIMQ_BENCH_DIR (default /var/tmp).  The brokers are stopped and the
# directory removed at the end, also on failure or ^C; SIMQ_BENCH_KEEP=1
# keeps the directory (logs, journals) for a look.
#
# Environment: SIMQ_BENCH_JOBS (default 1000000) scales the 1M-job
# benchmarks, for a quick try.

cd "$(dirname "$0")/../.." || exit 2
SIMQD=$PWD/bin/simqd
BENCH=$PWD/build/rel/bench_submit
for f in "$SIMQD" "$BENCH"; do
	if [ ! -x "$f" ]; then
		echo "bench: $f is missing; run 'make bench'" >&2
		exit 2
	fi
done

N=${SIMQ_BENCH_JOBS:-1000000}
SUBMIT_N=$((N * 3 / 10))	# jobs per submit measurement
RUNS=3				# submit measurements per shape
BATCH_SIZE=1000
WINDOW=1000
ARRAY_N=1000000
ARRAY_REPEAT=7
RESTARTS=3

parent=${SIMQ_BENCH_DIR:-/var/tmp}
T=$(mktemp -d "$parent/simq-bench.XXXXXX") || exit 2
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	if [ "${SIMQ_BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RESULTS=$T/results
: >"$RESULTS"

fail() {
	echo "bench: FAILED: $*" >&2
	[ -n "$log" ] && [ -f "$log" ] && tail -n 5 "$log" | sed 's/^/    /' >&2
	exit 1
}

# kv LINE KEY: the value of KEY=... in a line of key=value words.
kv() {
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# median: of the numbers on stdin, one a line.
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# row METRIC VALUE TARGET VERDICT
row() {
	printf '%-58s %12s  %-10s %s\n' "$1" "$2" "$3" "$4${5:+ $5}" >>"$RESULTS"
}

# at_least VALUE TARGET / at_most VALUE TARGET: a verdict.
at_least() {
	awk -v v="$1" -v t="$2" 'BEGIN {
		if (v + 0 >= t + 0) print "ok";
		else printf "MISSED by %.0f%%\n", (t - v) * 100 / t }'
}
at_most() {
	awk -v v="$1" -v t="$2" 'BEGIN {
		if (v + 0 <= t + 0) print "ok";
		else printf "MISSED by %.0f%%\n", (v - t) * 100 / t }'
}

# start NAME ARGS...: starts a broker on DATADIR $T/NAME, log $T/NAME.log,
# on a fresh port; sets pid, port, log, ready_ms (from just before the
# fork to a PING answered).  The broker is this shell's child, so that
# stop can reap it.
start() {
	name=$1
	shift
	port=$("$BENCH" port) || fail "no free port"
	log=$T/$name.log
	t0=$(date +%s%N)
	"$SIMQD" -d "$T/$name" -p "$port" "$@" >>"$log" 2>&1 &
	pid=$!
	out=$("$BENCH" -p "$port" ready "$t0" 120 "$pid") ||
	    fail "starting simqd $*"
	ready_ms=$(kv "$out" ready_ms)
}

# stop [SIGNAL]: stops the broker, waits for it, sets stop_ms.
stop() {
	t0=$(date +%s%N)
	kill "-${1:-TERM}" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	stop_ms=$((($(date +%s%N) - t0) / 1000000))
	pid=
}

# bench ARGS...: runs bench_submit against the current broker.
bench() {
	"$BENCH" -p "$port" "$@" || fail "bench_submit $*"
}

# cpu_ticks: user + system clock ticks the broker has used.
cpu_ticks() {
	sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'
}

kib() {
	sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$pid/status"
}

# The last "recovered N jobs ... in M ms" line: sets rec_jobs, rec_ms.
recovered() {
	l=$(grep 'recovered [0-9]* jobs' "$log" | tail -n 1)
	rec_jobs=$(printf '%s\n' "$l" | sed -n 's/.*recovered \([0-9]*\) jobs.*/\1/p')
	rec_ms=$(printf '%s\n' "$l" | sed -n 's/.* in \([0-9]*\) ms.*/\1/p')
}

# The number of "compacted" lines in the log, and the last one's figures.
compactions() {
	grep -c 'compacted the journal' "$log"
}
compacted() {
	l=$(grep 'compacted the journal' "$log" | tail -n 1)
	cmp_bytes=$(printf '%s\n' "$l" | sed -n 's/.* to \([0-9]*\) bytes.*/\1/p')
	cmp_ms=$(printf '%s\n' "$l" | sed -n 's/.* in \([0-9]*\) ms.*/\1/p')
}

# restarts SIGNAL NAME ARGS...: RESTARTS times, stops the broker with
# SIGNAL and starts NAME again; sets the medians r_ready (fork to PING
# answered), r_rec (the log's "recovered ... in M ms"), r_hwm (VmHWM,
# KiB, just after) and r_stop (signal to exit, ms), and rec_jobs.
restarts() {
	sig=$1
	shift
	: >"$T/ready"; : >"$T/rec"; : >"$T/hwm"; : >"$T/stop"
	k=0
	while [ "$k" -lt "$RESTARTS" ]; do
		stop "$sig"
		echo "$stop_ms" >>"$T/stop"
		start "$@"
		recovered
		echo "$ready_ms" >>"$T/ready"
		echo "$rec_ms" >>"$T/rec"
		kib VmHWM >>"$T/hwm"
		k=$((k + 1))
	done
	r_ready=$(median <"$T/ready")
	r_rec=$(median <"$T/rec")
	r_hwm=$(median <"$T/hwm")
	r_stop=$(median <"$T/stop")
}

# restart_rows HOW: the detail rows of a restarts run.
restart_rows() {
	row "   median of $RESTARTS ($*); log's \"recovered .. in\" (ms)" \
	    "$r_rec" "" "journal $jb B"
	row "   stop: signal to exit (ms); VmHWM after restart (KiB)" \
	    "$r_stop" "" "HWM $r_hwm"
}

# compact_restart NAME ARGS...: SIGTERM, restart NAME with ARGS and
# --compact-min 1M, and wait a moment for a compaction (the first loop
# pass compacts if the journal is past the floor and twice the snapshot
# it started from); sets rec_jobs, rec_ms, cmp_bytes, cmp_ms (empty: no
# compaction).
compact_restart() {
	stop TERM
	n0=$(compactions)
	start "$@" --compact-min 1M
	recovered
	i=0
	while [ "$(compactions)" -eq "$n0" ] && [ "$i" -lt 40 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	cmp_bytes=
	cmp_ms=
	[ "$(compactions)" -gt "$n0" ] && compacted
}

# Bytes of the segment files in DATADIR/journal.
files_bytes() {
	cat "$T/$1"/journal/*.seg 2>/dev/null | wc -c | tr -d ' '
}

t_start=$(date +%s)

# ---------------------------------------------------------------------
# The machine.
fstype=$(df -P -T "$T" | awk 'NR == 2 { print $2 }')
case $fstype in
tmpfs|ramfs)
	fail "$T is on $fstype; set SIMQ_BENCH_DIR to a directory on a disk" ;;
esac
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
probe=$("$BENCH" fsync "$T" 300) || fail "fsync probe"
echo "simq benchmarks ($(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null))"
echo "machine: $(nproc) CPUs ($cpu), $mem, Linux $(uname -r)"
echo "disk: $T on $fstype; fdatasync of a 64-byte append:" \
    "$(kv "$probe" us_each) us ($(kv "$probe" per_sec)/s)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---------------------------------------------------------------------
# 1. Durable submits from one client, default options (fsync always).
# Each shape runs RUNS times on a fresh broker; the median run is shown.
# A fresh broker each, so one shape's compactions do not land on another.
# thru TITLE BENCH-ARGS...: one shape.
thru() {
	title=$1
	shift
	start thru
	s0=$(bench stats) || exit 1
	c0=$(cpu_ticks)
	total=0
	: >"$T/runs"
	k=0
	while [ "$k" -lt "$RUNS" ]; do
		out=$(bench -s $((k * 100000000 + 1)) "$@") || exit 1
		[ "$(kv "$out" errors)" = 0 ] || fail "errors in bench_submit $*"
		echo "$(kv "$out" rate) $out" >>"$T/runs"
		total=$((total + $(kv "$out" ok)))
		k=$((k + 1))
	done
	s1=$(bench stats) || exit 1
	c1=$(cpu_ticks)
	stop TERM
	rm -rf "$T/thru"
	cpu=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$total" \
	    'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
	out=$(sort -n "$T/runs" | sed -n "$(((RUNS + 1) / 2))p")
	gap=$(tr ' ' '\n' <"$T/runs" | sed -n 's/^max_gap_ms=//p' | sort -n |
	    tail -n 1)
	lo=$(sort -n "$T/runs" | head -n 1 | cut -d' ' -f1)
	hi=$(sort -n "$T/runs" | tail -n 1 | cut -d' ' -f1)
	row "$title (jobs/s)" "$(kv "$out" rate)" ">= 100000" \
	    "$(at_least "$(kv "$out" rate)" 100000)"
	row "   its jobs OK / fsyncs; min-max of $RUNS runs" \
	    "$(kv "$out" ok)/$(kv "$out" fsyncs)" "" \
	    "$(kv "$out" per_fsync) jobs/fsync; $lo-$hi"
	row "   compactions in the $RUNS runs; longest reply gap (ms)" \
	    "$(($(kv "$s1" snapshots) - $(kv "$s0" snapshots)))" "" \
	    "$gap ms; journal $(kv "$s1" journal_bytes) B"
	row "   broker CPU per job (us)" "$cpu" "" ""
}

echo "1. durable submits ..."
thru "1a pipelined SUBMIT, window $WINDOW" pipe "$SUBMIT_N" "$WINDOW"
thru "1a pipelined SUBMIT, window $((WINDOW * 10))" \
    pipe "$SUBMIT_N" $((WINDOW * 10))
thru "1b BATCH of $BATCH_SIZE, 1 in flight" \
    batch "$SUBMIT_N" "$BATCH_SIZE" 1
thru "1b BATCH of $BATCH_SIZE, 4 in flight" \
    batch "$SUBMIT_N" "$BATCH_SIZE" 4

# 2. An array of a million tasks.
echo "2. arrays ..."
start thru
out=$(bench array "$ARRAY_N" "$ARRAY_REPEAT") || exit 1
row "2  SUBMIT array=1-$ARRAY_N, median of $ARRAY_REPEAT (ms)" \
    "$(kv "$out" median_ms)" "< 100" "$(at_most "$(kv "$out" median_ms)" 100)"
row "   min / max (ms)" "$(kv "$out" min_ms)/$(kv "$out" max_ms)" "" ""
stop

# ---------------------------------------------------------------------
# 3. Memory per queued job, and 4a. recovery of a journal of single
# SUBMIT records.  No compaction here: the journal stays plain records.
echo "3. memory per queued job ..."
start mem --compact-min 1G
bench stats >/dev/null
rss0=$(kib VmRSS)
out=$(bench -c ./sim pipe "$N" "$WINDOW") || exit 1
[ "$(kv "$out" ok)" = "$N" ] || fail "memory: not all jobs were accepted"
rss1=$(kib VmRSS)
hwm=$(kib VmHWM)
per=$(awk -v a="$rss0" -v b="$rss1" -v n="$N" -v c="$(kv "$out" cmdbytes)" \
    'BEGIN { printf "%.0f", ((b - a) * 1024 - c) / n }')
row "3  RSS per queued job beyond its command (B)" "$per" "<= 256" \
    "$(at_most "$per" 256)"
row "   RSS before / after $N jobs; VmHWM (KiB)" "$rss0/$rss1" "" "HWM $hwm"
row "   command bytes per job (args with NULs)" \
    "$(awk -v c="$(kv "$out" cmdbytes)" -v n="$N" 'BEGIN { printf "%.1f", c / n }')" \
    "" "\"./sim N\""

echo "4. recovery ..."
jb=$(files_bytes mem)
restarts KILL mem --compact-min 1G
row "4a restart, $rec_jobs jobs in $N SUBMIT records (ms)" "$r_ready" \
    "< 2000" "$(at_most "$r_ready" 2000)"
restart_rows kill -9
stop

# ---------------------------------------------------------------------
# 4a. Recovery of BATCH records.
start big --compact-min 1G
out=$(bench -c ./sim batch "$N" "$BATCH_SIZE" 2) || exit 1
[ "$(kv "$out" ok)" = "$N" ] || fail "not all jobs were accepted"
jb=$(files_bytes big)
restarts KILL big --compact-min 1G
row "4a restart, $rec_jobs jobs in $((N / BATCH_SIZE)) BATCH records (ms)" \
    "$r_ready" "< 2000" "$(at_most "$r_ready" 2000)"
restart_rows kill -9
stop
rm -rf "$T/big"

# 5. Cancel everything, let it expire (--retention 1s), then restart with
# a small --compact-min.
echo "5. compaction of finished jobs ..."
start fin --compact-min 1G --retention 1s
out=$(bench -c ./sim batch "$N" "$BATCH_SIZE" 2) || exit 1
[ "$(kv "$out" ok)" = "$N" ] || fail "not all jobs were accepted"
out=$(bench cancel 1 "$N") || exit 1
i=0
while s=$(bench stats) && [ "$(kv "$s" jobs)" != 0 ] && [ "$i" -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ "$(kv "$s" jobs)" = 0 ] || fail "canceled jobs did not expire (--retention 1s)"
before=$(kv "$s" journal_bytes)
fbefore=$(files_bytes fin)
compact_restart fin --retention 1s
s=$(bench stats) || exit 1
after=$(kv "$s" journal_bytes)
row "5  journal, $N jobs canceled and expired (B)" "$before" "" \
    "files $fbefore B"
if [ -z "$cmp_ms" ]; then
	v="MISSED: no compaction"
elif [ "$after" -lt "$before" ]; then
	v="ok, $(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.1f%%", a * 100 / b }') of before"
else
	v="GREW by $(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.0f%%", (a - b) * 100 / b }')"
fi
row "   after a compaction at restart (B)" "$after" "< before" \
    "$v; files $(files_bytes fin) B"
kept=$(kv "$s" jobs)
row "   compaction (ms); expired jobs still there after it" "${cmp_ms:-none}" \
    "0 kept" "$(at_most "$kept" 0 | sed 's/MISSED by.*/MISSED/'): $kept kept" \
    "($rec_jobs replayed)"
stop
rm -rf "$T/fin"

# 4b. A million queued jobs compacted at a restart, then recovered from
# the snapshot.
start snap --compact-min 1G
out=$(bench -c ./sim batch "$N" "$BATCH_SIZE" 2) || exit 1
[ "$(kv "$out" ok)" = "$N" ] || fail "not all jobs were accepted"
jb=$(files_bytes snap)
compact_restart snap
[ -n "$cmp_ms" ] || fail "no compaction at restart with --compact-min 1M"
row "4b compaction of $N queued jobs (ms, in a child)" "$cmp_ms" \
    "" "journal $jb B -> $cmp_bytes B"
jb=$(files_bytes snap)
restarts TERM snap --compact-min 1G
row "4b restart from a snapshot of $rec_jobs jobs (ms)" "$r_ready" \
    "< 2000" "$(at_most "$r_ready" 2000)"
restart_rows SIGTERM
stop

# ---------------------------------------------------------------------
# 6. The loop's longest pause during a compaction of N live jobs.  A
# broker holding N queued jobs is restarted with --compact-min just above
# its journal; bench_submit stall then submits BATCHes of 1000 until the
# broker has compacted, while another connection times PINGs one after
# another throughout: the longest round trip is the loop's longest pause
# (and includes the fdatasync of a pass of submits).
echo "6. the loop's pause during a compaction ..."
start stall --compact-min 1G
out=$(bench -c ./sim batch "$N" "$BATCH_SIZE" 2) || exit 1
[ "$(kv "$out" ok)" = "$N" ] || fail "not all jobs were accepted"
jb=$(kv "$(bench stats)" journal_bytes)
stop TERM
start stall --compact-min $((jb + 200000))
rss=$(kib VmRSS)
pte=$(kib VmPTE)
out=$(bench stall "$BATCH_SIZE" 120) || exit 1
compacted
l=$(grep 'compacted the journal' "$log" | tail -n 1)
fork_ms=$(printf '%s\n' "$l" | sed -n 's/.*the loop paused \([0-9.]*\) ms.*/\1/p')
row "6  longest PING round trip, compaction of $N live jobs (ms)" \
    "$(kv "$out" max_ms)" "<= 10" "$(at_most "$(kv "$out" max_ms)" 10)"
row "   PING p99 / median (ms); PINGs; jobs submitted meanwhile" \
    "$(kv "$out" p99_ms)/$(kv "$out" p50_ms)" "" \
    "$(kv "$out" pings) PINGs; $(kv "$out" jobs) jobs"
row "   the loop's pause to fork the child (ms); the child's (ms)" \
    "${fork_ms:-none}" "" "child $cmp_ms ms; VmRSS $rss KiB, VmPTE $pte KiB"
stop
rm -rf "$T/stall"

# ---------------------------------------------------------------------
echo
printf '%-58s %12s  %-10s %s\n' "benchmark" "measured" "target" "verdict"
printf '%-58s %12s  %-10s %s\n' "---------" "--------" "------" "-------"
cat "$RESULTS"
probe=$("$BENCH" fsync "$T" 300) || fail "fsync probe"
echo
# Following a job's output across two hosts (network namespaces): skipped
# with a note where namespaces cannot be made.
SIMQ_BENCH_DIR=$parent sh tests/bench/follow_netns.sh || fail "follow latency"
echo
echo "fdatasync probe after: $(kv "$probe" us_each) us;" \
    "load average after: $(cut -d' ' -f1-3 /proc/loadavg);" \
    "total $(($(date +%s) - t_start)) s"

# 6. Files that travel with jobs: a 1 GB upload and download against cp.
echo
sh tests/bench/blob.sh || exit 1
