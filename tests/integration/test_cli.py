"""
simqd's command line: usage errors exit 2 with a message; options that
are accepted have their effect; one broker per data directory; signals.
"""

import os
import signal
import socket
import time

from harness import Broker, check, eq, free_port, run_simqd, tail


def test_usage_errors_exit_2(ctx):
    d = ctx.mkdtemp("data")
    base = ["-d", os.path.join(d, "x"), "-p", str(free_port())]
    cases = [
        ["--bogus"],
        ["-Z"],
        ["--fsync", "sometimes"],
        ["--fsync", ""],
        ["--fsync"],
        ["-p", "0"],
        ["-p", "65536"],
        ["-p", "abc"],
        ["-p", "-1"],
        ["--lease", "500ms"],
        ["--lease", "2h"],
        ["--lease", "x"],
        ["--retention", "forever"],
        ["--retry-backoff", "1y"],
        ["--max-lost", "-1"],
        ["--max-lost", "65536"],
        ["--compact-min", "12Q"],
        ["--segment-size", "100"],
        ["--fsync-interval", "0"],
        ["unexpected-argument"],
    ]
    for extra in cases:
        rc, out = run_simqd(ctx, base + extra)
        if rc != 2:
            raise AssertionError("simqd %s: expected exit 2, got %d:\n%s" %
                                 (" ".join(extra), rc, tail(out)))
        check(out.strip(), "simqd %s: no message" % " ".join(extra))
        check("usage" in out.lower() or "simqd" in out,
              "simqd %s: the message should help:\n%s" %
              (" ".join(extra), out))
    rc, out = run_simqd(ctx, base + ["--fsync", "sometimes"])
    check("sometimes" in out or "fsync" in out,
          "a bad --fsync value should be named:\n%s" % out)
    # Nothing was created by the refused starts.
    check(not os.path.exists(os.path.join(d, "x")),
          "a usage error created the data directory")
    rc, out = run_simqd(ctx, ["--help"])
    eq(rc, 0, "--help exits 0")
    check("usage" in out.lower() and "--fsync" in out, "--help prints usage")


def test_fsync_policies(ctx):
    for pol in ("always", "interval", "none"):
        args = ["--fsync", pol]
        if pol == "interval":
            args += ["--fsync-interval", "50"]
        b = ctx.start_broker(args)
        c = b.client()
        eq(c.stats()["fsync"], pol, "STATS fsync")
        jid = c.submit(["x"])
        st = c.stats()
        if pol == "always":
            check(int(st["fsyncs"]) >= 1, "fsync always: %r" % st)
        if pol == "interval":
            time.sleep(0.3)
            check(int(c.stats()["fsyncs"]) >= 1, "interval: an fsync "
                  "within the interval: %r" % c.stats())
        c.close()
        b.stop()
        b.start()
        c = b.client()
        eq(c.status1(jid)["state"], "queued", "after a clean restart")
        c.close()
        b.stop()


def test_one_broker_per_data_dir(ctx):
    b = ctx.broker
    other = Broker(ctx, datadir=b.datadir)
    other.spawn()
    rc = other.wait_exit(20 * ctx.slow)
    check(rc != 0, "a second simqd on the same data directory started")
    check("in use" in other.current_log(), "the message should say the "
          "directory is in use:\n%s" % tail(other.current_log()))
    c = b.client()
    c.request("PING").expect_ok()


def test_port_in_use(ctx):
    b = ctx.broker
    other = Broker(ctx, port=b.port)
    other.spawn()
    rc = other.wait_exit(20 * ctx.slow)
    check(rc != 0, "a second simqd on the same port started")
    check("listen" in other.current_log(), "the message should say it "
          "cannot listen:\n%s" % tail(other.current_log()))


def test_sigint_and_sigterm_shut_down_cleanly(ctx):
    b = ctx.broker
    c = b.client()
    jid = c.submit(["x"])
    b.proc.send_signal(signal.SIGINT)
    rc = b.wait_exit(10 * ctx.slow)
    eq(rc, 0, "exit after SIGINT")
    check("shut down cleanly" in b.current_log(), "clean shutdown logged")
    b.start()
    c = b.client()
    eq(c.status1(jid)["state"], "queued", "after SIGINT")
    # SIGTERM while a client is in the middle of a body.
    d = b.client()
    d.send(b"BATCH 100\r\nhalf a body")
    time.sleep(0.2)
    t0 = time.monotonic()
    b.stop(timeout=5 * ctx.slow)
    check(time.monotonic() - t0 < 2 * ctx.slow, "SIGTERM was slow")
    b.start()
    c = b.client()
    eq(int(c.stats()["jobs"]), 1, "the half-sent batch did not count")


def test_check_on_fresh_and_missing_dirs(ctx):
    b = ctx.broker
    c = b.client()
    c.submit(["x"])
    c.close()
    b.stop()
    rc, out = b.run_check()
    eq(rc, 0, "--check on a good journal:\n%s" % out)
    check("OK" in out.split(), "--check says OK:\n%s" % out)
    check("queued    1" in out or "queued 1" in " ".join(out.split()),
          "--check counts the queued job:\n%s" % out)
    # While the broker runs, --check still works (read-only).
    b.start()
    rc, out = b.run_check()
    eq(rc, 0, "--check next to a running broker:\n%s" % out)
