#!/bin/sh
# Follow latency across hosts: how long from a job writing a line to
# `simq output -f` showing it, with the worker and the client in two
# network namespaces (two "hosts") and the broker in the root namespace
# between them, each reached over its own veth pair with 10.77.x.y
# addresses that exist only here.  Also the broker's cost of the
# follower: its CPU time and RSS while the line stream is followed, and
# the bytes workers sent (STATS follow_bytes).
#
#   sh tests/bench/follow_netns.sh        (run.sh runs it last)
#
# Needs root and `ip netns`; elsewhere it says SKIPPED and why, and exits
# 0.  SIMQ_FOLLOW_LINES (default 500) lines, one every 20 ms.

cd "$(dirname "$0")/../.." || exit 2
BIN=$PWD/bin
LINES=${SIMQ_FOLLOW_LINES:-500}
NSW=simqbench-w$$
NSC=simqbench-c$$
VW=sqw$$
VC=sqc$$
ADDR=10.77.1.1
PORT=17733

skip() {
	echo "follow latency across network namespaces: SKIPPED ($*)"
	exit 0
}

for f in simqd simq-worker simq; do
	[ -x "$BIN/$f" ] || { echo "follow bench: $BIN/$f is missing; run make" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || skip "needs root for ip netns"
command -v ip >/dev/null 2>&1 || skip "no ip(8)"
ip netns add "$NSW" 2>/dev/null || skip "ip netns add is not allowed here"

T=$(mktemp -d "${SIMQ_BENCH_DIR:-/var/tmp}/simq-follow.XXXXXX") || exit 2
bpid=
wpid=
cleanup() {
	[ -n "$wpid" ] && kill "$wpid" 2>/dev/null
	[ -n "$bpid" ] && kill "$bpid" 2>/dev/null
	sleep 0.3
	[ -n "$wpid" ] && kill -9 "$wpid" 2>/dev/null
	[ -n "$bpid" ] && kill -9 "$bpid" 2>/dev/null
	ip link del "$VW"a 2>/dev/null
	ip link del "$VC"a 2>/dev/null
	ip netns del "$NSW" 2>/dev/null
	ip netns del "$NSC" 2>/dev/null
	if [ "${SIMQ_BENCH_KEEP:-0}" = 1 ]; then
		echo "follow bench: kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NSC" || exit 1
# root 10.77.1.1 <-> worker's 10.77.1.2; root 10.77.2.1 <-> client's 10.77.2.2
ip link add "$VW"a type veth peer name "$VW"b || exit 1
ip link add "$VC"a type veth peer name "$VC"b || exit 1
ip link set "$VW"b netns "$NSW"
ip link set "$VC"b netns "$NSC"
ip addr add 10.77.1.1/24 dev "$VW"a
ip addr add 10.77.2.1/24 dev "$VC"a
ip link set "$VW"a up
ip link set "$VC"a up
ip -n "$NSW" addr add 10.77.1.2/24 dev "$VW"b
ip -n "$NSC" addr add 10.77.2.2/24 dev "$VC"b
ip -n "$NSW" link set "$VW"b up
ip -n "$NSC" link set "$VC"b up
ip -n "$NSW" link set lo up
ip -n "$NSC" link set lo up
ip -n "$NSC" route add 10.77.1.0/24 via 10.77.2.1

"$BIN/simqd" -d "$T/data" -l "$ADDR" -p "$PORT" --insecure \
    >"$T/simqd.log" 2>&1 &
bpid=$!
i=0
until ip netns exec "$NSC" "$BIN/simq" -s "$ADDR:$PORT" stats >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "follow bench: FAILED: no broker" >&2; tail -5 "$T/simqd.log" >&2; exit 1; }
	sleep 0.05
done
ip netns exec "$NSW" "$BIN/simq-worker" -s "$ADDR:$PORT" -j 2 -w "$T/work" \
    --name benchw >"$T/worker.log" 2>&1 &
wpid=$!
SIMQ="ip netns exec $NSC $BIN/simq -s $ADDR:$PORT"
i=0
until $SIMQ workers 2>/dev/null | grep -q benchw; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "follow bench: FAILED: no worker" >&2; exit 1; }
	sleep 0.05
done

# The job writes its clock (CLOCK_MONOTONIC, one clock for every
# namespace of a host) every 20 ms; the reader subtracts it from its own
# when the line arrives.
cat >"$T/job.py" <<EOF
import sys, time
time.sleep(1.0)
for i in range($LINES):
    sys.stdout.write("%d %d\n" % (i, time.monotonic_ns()))
    sys.stdout.flush()
    time.sleep(0.02)
EOF
cat >"$T/reader.py" <<'EOF'
import sys, time
lat = []
for line in sys.stdin.buffer:
    now = time.monotonic_ns()
    w = line.split()
    if len(w) == 2:
        lat.append((now - int(w[1])) / 1e6)
lat.sort()
if not lat:
    print("n=0")
    sys.exit(1)
def q(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))]
print("n=%d p50=%.3f p99=%.3f max=%.3f" % (len(lat), q(0.5), q(0.99), lat[-1]))
EOF
cpu() {
	awk '{ print $14 + $15 }' "/proc/$bpid/stat"
}
rss() {
	awk '/^VmRSS/ { print $2 }' "/proc/$bpid/status"
}
jid=$($SIMQ submit --no-check -- python3 "$T/job.py") || exit 1
rss0=$(rss)
cpu0=$(cpu)
t0=$(date +%s%N)
out=$($SIMQ output -f "$jid" | python3 "$T/reader.py")
t1=$(date +%s%N)
cpu1=$(cpu)
rss1=$(rss)
fb=$($SIMQ stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["follow_bytes"])')
hz=$(getconf CLK_TCK)
wall_ms=$(( (t1 - t0) / 1000000 ))
cpu_ms=$(( (cpu1 - cpu0) * 1000 / hz ))
echo "follow latency, job write -> simq output -f, worker and client in two"
echo "network namespaces, broker between them ($LINES lines, one per 20 ms):"
echo "  $out (ms)"
echo "  broker CPU while followed: ${cpu_ms} ms in ${wall_ms} ms;" \
    "RSS ${rss0} -> ${rss1} KiB; bytes pushed by the worker: $fb"
