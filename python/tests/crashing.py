"""A module whose import kills the process that imports it, when
$SIMQ_TEST_CRASH is set (on the workers, not where the test submits)."""

import os

if os.environ.get("SIMQ_TEST_CRASH"):
    os._exit(int(os.environ["SIMQ_TEST_CRASH"]))


def f(x):
    return x
