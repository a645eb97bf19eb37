"""A module whose import takes $SIMQ_TEST_SLOW_IMPORT seconds (on the
workers, not where the test submits)."""

import os
import time

time.sleep(float(os.environ.get("SIMQ_TEST_SLOW_IMPORT", "0")))


def f(x):
    return x
