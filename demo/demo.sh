#!/bin/sh
# demo.sh: what `make demo` runs.  A whole simq installation in a
# temporary directory: a broker and two workers on a free port, a real
# sweep (a Monte Carlo estimate of pi over 200 array tasks, each an awk
# script writing its count to $SIMQ_RESULT), the progress bar, the status,
# the results gathered with `simq result`, then everything shut down and
# removed.  Needs bin/simqd, bin/simq-worker and bin/simq (make), and
# nothing else than sh and awk.
#
# Environment: DEMO_TASKS (200), DEMO_POINTS (points per task, 500000),
# DEMO_SLOTS (jobs per worker: the number of cores).

root=$(cd "$(dirname "$0")/.." && pwd) || exit 2
tasks=${DEMO_TASKS:-200}
points=${DEMO_POINTS:-500000}
slots=${DEMO_SLOTS:-$(nproc 2>/dev/null || echo 2)}

for p in simqd simq-worker simq; do
	if [ ! -x "$root/bin/$p" ]; then
		echo "demo: $root/bin/$p is not built; run make first" >&2
		exit 2
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/simq-demo.XXXXXX") || exit 2
broker=
workers=

# Shuts everything down: the workers drain (they have nothing left), the
# broker stops cleanly; then the directory goes.
cleanup() {
	trap - EXIT INT TERM
	for pid in $workers; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in $workers; do
		wait "$pid" 2>/dev/null
	done
	if [ -n "$broker" ]; then
		kill -TERM "$broker" 2>/dev/null
		wait "$broker" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "demo: $*" >&2
	for f in "$tmp"/*.log; do
		[ -f "$f" ] || continue
		echo "--- $f" >&2
		tail -n 20 "$f" >&2
	done
	exit 1
}

simq() {
	"$root/bin/simq" "$@"
}

# Shows a command as in a terminal session, then runs it.
run() {
	printf '\n$ %s\n' "$*"
	"$@"
}

# The broker, on a free port: try random ones until one listens.
try=0
while :; do
	try=$((try + 1))
	[ $try -le 20 ] || fail "could not start simqd on a free port"
	port=$(awk -v s="$$$try" \
	    'BEGIN { srand(s); print 20000 + int(rand() * 40000) }')
	"$root/bin/simqd" -d "$tmp/data" -p "$port" 2>>"$tmp/simqd.log" &
	broker=$!
	i=0
	up=
	while [ $i -lt 100 ]; do
		if SIMQ_SERVER=127.0.0.1:$port simq queues >/dev/null 2>&1; then
			up=1
			break
		fi
		kill -0 "$broker" 2>/dev/null || break
		sleep 0.05
		i=$((i + 1))
	done
	[ -n "$up" ] && break
	kill "$broker" 2>/dev/null
	wait "$broker" 2>/dev/null
	broker=
done
export SIMQ_SERVER=127.0.0.1:$port
unset SIMQ_TOKEN

echo "simq demo: a broker on $SIMQ_SERVER and two workers of $slots slots," \
    "in $tmp"
for w in 1 2; do
	mkdir "$tmp/w$w"
	"$root/bin/simq-worker" -j "$slots" --name "worker$w" -w "$tmp/w$w" \
	    2>>"$tmp/worker$w.log" &
	workers="$workers $!"
done
i=0
until [ "$(simq workers 2>/dev/null | grep -c ' up ')" -ge 2 ]; do
	i=$((i + 1))
	[ $i -le 200 ] || fail "the workers did not connect"
	sleep 0.05
done

# The sweep runs in $tmp: jobs run where they were submitted.
cd "$tmp" || fail "cannot enter $tmp"
cp "$root/demo/pi.awk" "$tmp/pi.awk"
echo
echo "Estimate pi with $tasks tasks of $points random points each:"
printf '\n$ simq submit --array 1-%s --name pi -- %s\n' "$tasks" \
    "awk -v seed={} -v n=$points -f pi.awk"
id=$(simq submit --array "1-$tasks" --name pi -- \
    awk -v seed={} -v n="$points" -f pi.awk) || fail "submit failed"
echo "$id"
run simq status
run simq wait -t 10m "$id" || fail "the sweep did not finish"
run simq status "$id"
run simq workers

printf '\n$ simq result %s | awk ...\n' "$id"
simq result "$id" | awk '
	{ hits += $1; n += $2 }
	END {
		if (NR == 0 || n == 0)
			exit 1
		pi = 4 * hits / n
		printf "pi is about %.5f (%d tasks, %d points; off by %.5f)\n",
		    pi, NR, n, pi - 3.14159265358979
	}' || fail "no results"
echo
echo "simq demo: done; shutting down."
