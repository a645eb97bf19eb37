#!/bin/sh
# Runs every test suite and prints one summary line, "N passed, N failed".
#
# Each suite speaks TAP ("ok N - name" / "not ok N - name"): the cmocka
# unit tests (optimised and under ASan+UBSan), the fuzz corpus replays,
# the integration tests against a real simqd (both builds), and the
# Python package's tests (python/tests).  A suite
# that crashes or prints no plan counts as one failure.
#
# The two integration runs (optimised and sanitized builds) take most of
# the time and share nothing (each test has its own broker, port and
# folder), so the sanitized one runs in the background beside the rest.
#
# Environment: SIMQ_TEST_QUICK=1 skips the sanitizer integration run;
# SIMQ_TEST_SERIAL=1 runs the suites one after another.

cd "$(dirname "$0")/.." || exit 2
log=build/test-log
mkdir -p "$log"
passed=0
failed=0

# run NAME CMD...: runs a TAP producer, echoes failures, adds to counts.
run() {
	name=$1
	shift
	"$@" >"$log/$name.tap" 2>"$log/$name.err"
	count "$name" $?
}

# start NAME CMD...: runs a TAP producer in the background (one at a
# time); finish NAME waits for it and counts it as run does.
start() {
	name=$1
	shift
	rm -f "$log/$name.rc"
	{ "$@" >"$log/$name.tap" 2>"$log/$name.err"; echo $? >"$log/$name.rc"; } &
	bg_pid=$!
}
finish() {
	wait "$bg_pid"
	count "$1" "$(cat "$log/$1.rc" 2>/dev/null || echo 1)"
}

# count NAME RC: the counts of a finished suite.
count() {
	name=$1
	rc=$2
	out="$log/$name.tap"
	p=$(grep -c '^ok ' "$out")
	f=$(grep -c '^not ok ' "$out")
	if ! grep -q '^1\.\.[0-9]' "$out" || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
		echo "FAIL $name: exited $rc without a complete TAP report" \
		    "(see $log/$name.err)"
		tail -n 20 "$log/$name.err" | sed 's/^/    /'
		f=$((f + 1))
	fi
	grep '^not ok ' "$out" | sed "s/^/FAIL $name: /"
	[ "$f" -gt 0 ] && tail -n 30 "$log/$name.err" | sed 's/^/    /'
	echo "$name: $p passed, $f failed"
	passed=$((passed + p))
	failed=$((failed + f))
}

# A fuzz corpus replay is one test.
fuzz() {
	name=$1
	shift
	if "$@" >"$log/$name.err" 2>&1; then
		printf '1..1\nok 1 - %s\n' "$name"
	else
		printf '1..1\nnot ok 1 - %s\n' "$name"
		cat "$log/$name.err" >&2
	fi
}

export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

san=
if [ -z "$SIMQ_TEST_QUICK" ]; then
	san="python3 tests/integration/run.py --simqd build/san/simqd --sanitized"
	[ -z "$SIMQ_TEST_SERIAL" ] && start integration-san $san
fi

for t in test_proto test_lib test_journal test_model test_records test_client \
    test_files test_cgsweep; do
	run "$t" "build/rel/$t"
	run "$t-san" "build/san/$t"
done
run fuzz_proto fuzz fuzz_proto build/san/fuzz_proto tests/fuzz/corpus/proto
run fuzz_journal fuzz fuzz_journal build/san/fuzz_journal tests/fuzz/corpus/journal
run fuzz_records fuzz fuzz_records build/san/fuzz_records tests/fuzz/corpus/records
run integration python3 tests/integration/run.py --simqd bin/simqd
# The Python package (python/), with Debian's interpreter when there is
# one: the python3 first on PATH may be a slow shim.
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
run python "$py" python/tests/run.py --bin bin
if [ -n "$san" ]; then
	if [ -z "$SIMQ_TEST_SERIAL" ]; then
		finish integration-san
	else
		run integration-san $san
	fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
