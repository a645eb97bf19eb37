"""Functions the tests send by reference: the workers import this module
(its directory is on the tasks' $PYTHONPATH)."""

import os
import time


def add(a, b):
    return a + b


def square(x):
    return x * x


def slow_square(x, t):
    time.sleep(t)
    return x * x


def fails(x):
    raise ValueError("bad value %r" % (x,))


def sleep(t):
    time.sleep(t)
    return t


def attempt_after(t, pidfile):
    """Sleeps t seconds on the first attempt (and says its pid), returns
    the attempt number."""
    n = int(os.environ["SIMQ_ATTEMPT"])
    if n == 1:
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(t)
    return n


def hard_exit(code):
    os._exit(code)


def big(n):
    return os.urandom(n)


def env(k):
    return os.environ.get(k)


def noop():
    return None


def importable(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False
