#!/bin/sh
# Dispatch with resource matching against the same run without it.
#
# /bin/true jobs through one simq-worker -j NCPU (tests/bench/worker.sh's
# run 1), as jobs/s, in rounds that take turns so that a shared machine's
# noise hits every case alike:
#
#   plain       jobs that ask for nothing (one CPU): one lane per queue,
#               the worker still says cpus= gpus= mem= in every TAKE
#   shaped      jobs asking cpus=1 mem=64M: the worker counts memory too
#   mixed       batches in turn of plain jobs, mem=64M ones and ones with
#               a timeout: three lanes (shapes), each TAKE compares their
#               tops (all one-CPU, so that as many run at once)
#   baseline    plain jobs through the simqd and simq-worker in
#               SIMQ_BENCH_BASELINE (a directory with a build without
#               resource matching, e.g. main's bin/), when given
#
# Goal: plain, shaped and mixed within 10% of the baseline (or, without
# one, shaped and mixed within 10% of plain).  --fsync none by default
# (SIMQ_BENCH_FSYNC=always for the broker's default), so that the disk
# does not hide the broker's and the worker's own work.
#
# Then the broker alone, with build/rel/bench_workers (when built): its
# fake workers finish each job at once, so the rate is the broker's
# dispatch, with and without the words and shapes.
#
# Needs bin/simqd, bin/simq-worker and build/rel/bench_spawn.
# Environment: SIMQ_BENCH_RES_JOBS (default 5000) jobs a run,
# SIMQ_BENCH_RES_ROUNDS (default 3).

cd "$(dirname "$0")/../.." || exit 2
SPAWN=$PWD/build/rel/bench_spawn
[ -x "$SPAWN" ] && [ -x bin/simqd ] && [ -x bin/simq-worker ] || {
	echo "bench: run 'make bin/simqd bin/simq-worker" \
	    "build/rel/bench_spawn'" >&2
	exit 2
}
N=${SIMQ_BENCH_RES_JOBS:-5000}
ROUNDS=${SIMQ_BENCH_RES_ROUNDS:-3}
FSYNC=${SIMQ_BENCH_FSYNC:-none}
BASE=${SIMQ_BENCH_BASELINE:-}
NCPU=$(nproc)
T=$(mktemp -d "${SIMQ_BENCH_DIR:-/var/tmp}/simq-bench-res.XXXXXX") || exit 2
pids=
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench: FAILED: $*" >&2
	tail -n 5 "$T"/*.log >&2
	exit 1
}

# start NAME BINDIR: a broker and one worker; sets port_NAME.
start() {
	p=$("$SPAWN" port) || fail "no free port"
	"$2/simqd" -d "$T/$1-data" -p "$p" --fsync "$FSYNC" \
	    2>"$T/$1-simqd.log" &
	pids="$pids $!"
	"$SPAWN" -p "$p" -t 30 ping >/dev/null || fail "simqd did not start"
	"$2/simq-worker" -s "127.0.0.1:$p" -j "$NCPU" -w "$T/$1-work" \
	    --name bench 2>"$T/$1-worker.log" &
	pids="$pids $!"
	i=0
	until grep -q "connected to the broker" "$T/$1-worker.log" \
	    2>/dev/null; do
		i=$((i + 1))
		[ "$i" -gt 300 ] && fail "simq-worker did not connect"
		sleep 0.02
	done
	"$SPAWN" -p "$p" throughput "$NCPU" >/dev/null || fail "warm-up"
	eval "port_$1=$p"
}

# once CASE PORT OPTS: one run; appends its rate to $T/CASE.
once() {
	out=$(SIMQ_BENCH_BATCH_OPTS=$3 "$SPAWN" -p "$2" throughput "$N") ||
	    fail "$1"
	case "$out" in *failed=0*) ;; *) fail "$1: $out" ;; esac
	rate=$(printf '%s\n' "$out" | tr ' ' '\n' | sed -n 's/^rate=//p')
	echo "$rate" >>"$T/$1"
	printf '   %-9s %s jobs/s\n' "$1" "$rate"
}

mean() {
	awk '{ s += $1; n++ } END { if (n) printf "%.0f", s / n }' "$T/$1"
}

echo "resource matching: $N /bin/true jobs a run, $ROUNDS rounds, -j $NCPU," \
    "--fsync $FSYNC ($(git rev-parse --short HEAD 2>/dev/null))"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start new "$PWD/bin"
[ -n "$BASE" ] && start base "$BASE"
r=1
while [ "$r" -le "$ROUNDS" ]; do
	echo " round $r/$ROUNDS"
	# Each round in another order: what runs first is not always the
	# same case.
	for c in $(echo "baseline plain shaped mixed baseline plain shaped" |
	    cut -d' ' -f$(( (r - 1) % 4 + 1 ))-$(( (r - 1) % 4 + 4 ))); do
		case $c in
		baseline) [ -n "$BASE" ] && once baseline "$port_base" "" ;;
		plain) once plain "$port_new" "" ;;
		shaped) once shaped "$port_new" "cpus=1 mem=67108864" ;;
		mixed) once mixed "$port_new" \
		    "|mem=67108864|timeout=600000" ;;
		esac
	done
	r=$((r + 1))
done
for p in $pids; do kill -TERM "$p" 2>/dev/null; done
wait 2>/dev/null
pids=

# The broker alone: build/rel/bench_workers's workers finish each job
# the moment it arrives (no process), so this is dispatch and matching.
GEN=$PWD/build/rel/bench_workers
NW=${SIMQ_BENCH_RES_WORKERS:-50}
NJ=${SIMQ_BENCH_RES_BROKER_JOBS:-50000}
words="cpus=4 gpus=0 mem=68719476736"
# gen CASE BINDIR WORKER-WORDS TAKE-WORDS BATCH-OPTS: one run on a fresh
# broker; appends its rate to $T/b-CASE.
gen() {
	p=$("$SPAWN" port) || fail "no free port"
	"$2/simqd" -d "$T/g-data-$$-$p" -p "$p" --fsync "$FSYNC" \
	    2>"$T/g-simqd.log" &
	gp=$!
	"$SPAWN" -p "$p" -t 30 ping >/dev/null || fail "simqd did not start"
	out=$(SIMQ_BENCH_WORKER_WORDS=$3 SIMQ_BENCH_TAKE_WORDS=$4 \
	    SIMQ_BENCH_BATCH_OPTS=$5 "$GEN" -p "$p" -n "$NW" -k 4 -j "$NJ" \
	    -t 120) || fail "bench_workers $1: $out"
	kill -TERM "$gp"
	wait "$gp"
	rate=$(printf '%s\n' "$out" | tr ' ' '\n' | sed -n 's/^rate=//p')
	echo "$rate" >>"$T/b-$1"
	printf '   broker %-9s %s jobs/s\n' "$1" "$rate"
}
if [ -x "$GEN" ]; then
	echo " the broker alone: $NW workers taking 4 at a time, $NJ jobs a run"
	r=1
	while [ "$r" -le "$ROUNDS" ]; do
		[ -n "$BASE" ] && gen baseline "$BASE" "" "" ""
		gen plain "$PWD/bin" "" "" ""
		gen shaped "$PWD/bin" "$words" "$words" "cpus=1 mem=1048576"
		gen mixed "$PWD/bin" "$words" "$words" \
		    "|mem=1048576|timeout=600000"
		r=$((r + 1))
	done
fi

ref=plain
[ -n "$BASE" ] && ref=baseline
echo
printf '%-18s %10s %10s\n' case "jobs/s" "vs $ref"
for pre in "" b-; do
	[ -f "$T/${pre}$ref" ] || continue
	refm=$(mean "${pre}$ref")
	for c in baseline plain shaped mixed; do
		[ -f "$T/$pre$c" ] || continue
		m=$(mean "$pre$c")
		printf '%-18s %10s %9s%%\n' "${pre:+broker }$c" "$m" \
		    "$(awk -v m="$m" -v r="$refm" \
		    'BEGIN { printf "%+.1f", (m - r) * 100 / r }')"
	done
done
echo "goal: within 10% of $ref"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
