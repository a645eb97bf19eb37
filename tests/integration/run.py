#!/usr/bin/env python3
"""
run.py: runs the integration tests against a real simqd and prints TAP.

    python3 tests/integration/run.py --simqd bin/simqd [-k SUBSTRING]
    python3 tests/integration/run.py --simqd build/san/simqd --sanitized

Every function named test_* in tests/integration/test_*.py is one test.
It is called with a harness.Ctx; ctx.broker is a fresh simqd started on
first use, and a test may start its own.  Each test runs in a child
process in its own session and temp directory, with a wall-clock limit
(a test's `timeout` attribute, in seconds, else 60; tripled under
--sanitized): past it the whole process group, brokers included, is
killed and the test fails.  After each test, brokers still running are
stopped with SIGTERM (which must exit 0 and log a clean shutdown), and
under --sanitized their logs are searched for sanitizer reports.

A test may raise harness.Skip("why") to be reported as skipped.
Exit status: 0 if every test passed, 1 otherwise, 2 for usage errors.
"""

import argparse
import importlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

DEFAULT_TIMEOUT = 60


class Skip(Exception):
    pass


harness.Skip = Skip


def discover(substr=None):
    """[(file, name, timeout)] in file order, then definition order."""
    tests = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        mod = importlib.import_module(fn[:-3])
        funcs = [(f.__code__.co_firstlineno, n, f)
                 for n, f in vars(mod).items()
                 if n.startswith("test_") and inspect.isfunction(f)
                 and f.__module__ == mod.__name__]
        for _, n, f in sorted(funcs):
            full = "%s:%s" % (fn, n)
            if substr and not any(x in full for x in substr.split("|")):
                continue
            tests.append((fn, n, getattr(f, "timeout", DEFAULT_TIMEOUT)))
    return tests


def soft_timeout(signum, frame):
    raise harness.TestFailure("the test's wall-clock limit ran out here")


def child(args):
    """Runs one test; writes {"status": ..., "diag": [...]} to args.result.
    """
    res = {"status": "fail", "diag": []}
    mod = importlib.import_module(args.child_file[:-3])
    f = getattr(mod, args.child_name)
    ctx = harness.Ctx(args.simqd, args.sanitized, args.tmp)
    failed = False
    signal.signal(signal.SIGALRM, soft_timeout)
    signal.setitimer(signal.ITIMER_REAL, args.limit)
    try:
        f(ctx)
        res["status"] = "ok"
    except Skip as e:
        res["status"] = "skip"
        res["diag"].append(str(e))
    except Exception:
        failed = True
        res["diag"].append(traceback.format_exc().rstrip())
    # Leave time for the teardown.
    signal.setitimer(signal.ITIMER_REAL, 30 * ctx.slow)
    try:
        problems = ctx.teardown(failed)
    except Exception:
        problems = [traceback.format_exc().rstrip()]
    signal.setitimer(signal.ITIMER_REAL, 0)
    if problems:
        failed = True
        res["status"] = "fail"
        res["diag"] += problems
    if failed:
        for path, text in ctx.logs():
            lines = text.splitlines()
            res["diag"].append("--- %s (last %d of %d lines)\n%s" % (
                path, min(40, len(lines)), len(lines),
                "\n".join(lines[-40:])))
    with open(args.result, "w") as fh:
        json.dump(res, fh)
    return 0


def unmount_under(path):
    """Unmounts anything a killed test left mounted under path."""
    try:
        with open("/proc/mounts") as f:
            mounts = [l.split()[1] for l in f]
    except OSError:
        return
    for m in sorted(mounts, reverse=True):
        m = m.replace("\\040", " ")
        if m == path or m.startswith(path + "/"):
            subprocess.run(["umount", "-l", m], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


def run_one(args, fn, name, timeout):
    """Runs one test in a child; returns (status, diag lines, seconds)."""
    slow = 3 if args.sanitized else 1
    limit = timeout * slow
    tmp = tempfile.mkdtemp(prefix="simq-it-")
    result = os.path.join(tmp, "result.json")
    cmd = [sys.executable, os.path.abspath(__file__), "--simqd", args.simqd,
           "--child-file", fn, "--child-name", name, "--tmp", tmp,
           "--result", result, "--limit", str(limit)]
    if args.sanitized:
        cmd.append("--sanitized")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=limit + 45 * slow)
        hard = False
    except subprocess.TimeoutExpired:
        hard = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        out, _ = p.communicate()
    # Whatever the test left behind: its process group, mounts, files.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    secs = time.monotonic() - t0
    diag = []
    status = "fail"
    try:
        with open(result) as fh:
            r = json.load(fh)
        status = r["status"]
        diag = r["diag"]
    except (OSError, ValueError):
        if hard:
            diag.append("killed: the test ran past its limit of %ds" %
                        (limit + 45 * slow))
        else:
            diag.append("the test process exited %d without a result" %
                        p.returncode)
    text = out.decode("utf-8", "replace").strip()
    if text and status != "ok":
        diag.append("output of the test process:\n" + text[-4000:])
    unmount_under(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    return status, diag, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--simqd", required=True)
    ap.add_argument("--sanitized", action="store_true")
    ap.add_argument("-k", dest="substr", default=None,
                    help="run only tests whose file:name contains this "
                    "(A|B: either)")
    ap.add_argument("-v", action="store_true", help="print each duration")
    ap.add_argument("--child-file", help=argparse.SUPPRESS)
    ap.add_argument("--child-name", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_file:
        return child(args)
    if not os.access(args.simqd, os.X_OK):
        print("run.py: %s is not an executable" % args.simqd,
              file=sys.stderr)
        return 2
    args.simqd = os.path.abspath(args.simqd)
    tests = discover(args.substr)
    print("1..%d" % len(tests), flush=True)
    nfail = 0
    t0 = time.monotonic()
    for k, (fn, name, timeout) in enumerate(tests, 1):
        status, diag, secs = run_one(args, fn, name, timeout)
        if status == "ok":
            print("ok %d - %s:%s" % (k, fn, name))
        elif status == "skip":
            print("ok %d - %s:%s # SKIP %s" % (k, fn, name,
                                                " ".join(diag)[:200]))
            diag = []
        else:
            nfail += 1
            print("not ok %d - %s:%s" % (k, fn, name))
        for d in diag:
            for line in d.splitlines():
                print("# " + line)
        if args.v or status == "fail":
            print("# %s:%s took %.1fs" % (fn, name, secs))
        sys.stdout.flush()
    print("# %d tests, %d failed, %.0fs" % (len(tests), nfail,
                                             time.monotonic() - t0))
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
