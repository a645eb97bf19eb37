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


# Warm runners: what a task can do to its process, and what the next task
# in the same slot sees.

STATE = "clean"
_hoard = []


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def parent():
    """(pid, command name) of this process's parent: a warm runner is
    the interpreter, a command job's parent the shepherd."""
    ppid = os.getppid()
    with open("/proc/%d/comm" % ppid) as f:
        return ppid, f.read().strip()


def leak(mb, nfd):
    """Keeps mb MiB and nfd descriptors, and changes module and process
    state, as a leaky task would."""
    global STATE
    _hoard.append(b"x" * (mb << 20))
    for _ in range(nfd):
        _hoard.append(os.open("/dev/null", os.O_RDONLY))
    STATE = "dirty"
    os.environ["SIMQ_TEST_LEAKED"] = "1"
    import json
    json.dumps = None
    return rss_kib()


def inspect():
    import json
    return {"state": STATE, "hoard": len(_hoard), "rss": rss_kib(),
            "fds": len(os.listdir("/proc/self/fd")),
            "env": os.environ.get("SIMQ_TEST_LEAKED"),
            "json": json.dumps is not None, "parent": parent()}


def segfault():
    import ctypes
    ctypes.string_at(0)


def where():
    """What a task's process looks like from inside."""
    return {"pid": os.getpid(), "pgrp": os.getpgrp(), "sid": os.getsid(0),
            "cwd": os.getcwd(), "job": os.environ.get("SIMQ_JOB_ID"),
            "result": os.environ.get("SIMQ_RESULT"),
            "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
            "stdin": os.readlink("/proc/self/fd/0"), "parent": parent()}


def chatty(seconds):
    """Writes to stdout and stderr and burns CPU for `seconds`."""
    import sys
    print("to stdout")
    print("to stderr", file=sys.stderr)
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return "chatted"


def child_and_sleep(pidfile, t):
    """Starts a child in the task's process group, says its pid, sleeps."""
    import subprocess
    p = subprocess.Popen(["sleep", "300"])
    with open(pidfile, "w") as f:
        f.write("%d %d\n" % (os.getpid(), p.pid))
    time.sleep(t)
    return t


def allocate(mb):
    return len(b"y" * (mb << 20))


def digest(data, i):
    import hashlib
    return hashlib.sha256(data).hexdigest(), i


def workdir_listing():
    return sorted(os.listdir(os.environ.get("SIMQ_WORKDIR") or "."))


def lazy_count(x):
    """counting.count, with counting imported by the function itself: the
    call names only this module."""
    import counting
    return counting.count(x)


def gc_state(change):
    """The garbage collector's settings as the task found them; then,
    with change, other ones, as a careless task would leave them."""
    import gc
    found = (gc.isenabled(), gc.get_threshold(), gc.get_debug())
    if change:
        gc.disable()
        gc.set_threshold(1, 1, 1)
        gc.set_debug(gc.DEBUG_SAVEALL)
    return found


def collect_faults():
    """The page faults of a full collection in this process."""
    import gc
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    gc.collect()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def environ(*names):
    return [os.environ.get(n) for n in names]


def value_of(module):
    """module.VALUE, the module imported by the function (from the job's
    own files, say), and the parent's pid."""
    import importlib
    return importlib.import_module(module).VALUE, os.getppid()
