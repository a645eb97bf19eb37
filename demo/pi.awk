# One task of the demo's sweep (demo/demo.sh): a Monte Carlo estimate of
# pi.  It throws n random points at the unit square and counts those that
# fall inside the quarter circle, a fraction pi/4 of them.  Each task has
# its own seed, the array index simq puts in its command, and writes
# "HITS N" to the file named by $SIMQ_RESULT; `simq result` gathers them.
BEGIN {
	if (n == "")
		n = 100000
	srand(seed)
	hits = 0
	for (i = 0; i < n; i++) {
		x = rand()
		y = rand()
		if (x * x + y * y <= 1)
			hits++
	}
	out = ENVIRON["SIMQ_RESULT"]
	if (out == "")
		out = "/dev/stdout"
	printf "%d %d\n", hits, n > out
}
