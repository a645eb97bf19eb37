"""A module whose import is counted: each import appends a line to the
file named by $SIMQ_TEST_COUNTER (the warm-runner tests)."""

import os

with open(os.environ.get("SIMQ_TEST_COUNTER", os.devnull), "a") as _f:
    _f.write("%d\n" % os.getpid())
if os.environ.get("SIMQ_TEST_COUNTER"):
    print("counting imported")


def count(x):
    return x
