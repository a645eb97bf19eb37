"""
Files that travel with jobs, end to end: simq submit --file/--collect,
a real simq-worker (its cache, the job's private directory, collecting)
and simq fetch, against a real simqd: machines that share no file system
(the client's folder is gone before the worker starts), kill -9 of the
broker during an upload and during a collect, a full store, a blob
corrupted on the broker's disk, patterns that match nothing, files over
--collect-max, and the input simq submit refuses before sending anything.
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from clientlib import Simq
from harness import check, eq, mount_tmpfs, wait_until
from workerlib import WorkerProc, wait_job


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def blobs(b):
    """Every complete blob in the broker's store: {hash: size}."""
    out = {}
    root = os.path.join(b.datadir, "blobs")
    if not os.path.isdir(root):
        return out
    for sub in os.listdir(root):
        if len(sub) != 2:
            continue
        for f in os.listdir(os.path.join(root, sub)):
            out[f] = os.path.getsize(os.path.join(root, sub, f))
    return out


def parts(b):
    d = os.path.join(b.datadir, "blobs", "tmp")
    return os.listdir(d) if os.path.isdir(d) else []


def random_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 4 << 20)
            f.write(os.urandom(n))
            left -= n
    return sha_file(path)


def partway(b, size):
    """Whether an upload is in progress and not yet half done."""
    for f in parts(b):
        try:
            n = os.path.getsize(os.path.join(b.datadir, "blobs", "tmp", f))
        except OSError:
            continue
        if 0 < n < size // 2:
            return True
    return False


def fetched(w, h):
    """How many times worker w fetched blob h from the broker."""
    return w.log().count("fetched blob %s" % h[:12])


def status_json(sq, jid):
    return sq("status", "--json", jid).json()["jobs"][0]


def test_files_array_shares_one_copy(ctx):
    """The issue's sweep: an array of 100 tasks sharing a 20 MB input, run
    by two workers on one node (one cache) in a directory the client's
    folder is not; the client's folder is removed before they start, so
    only the shipped copy can be read.  The store holds one copy of the
    input, the node fetched it once, each task's output comes back with
    simq fetch, and the jobs' directories are gone."""
    b = ctx.broker
    sq = Simq(ctx, b)
    here = ctx.mkdtemp("client")
    inp = os.path.join(here, "graph.bin")
    h = random_file(inp, 20 << 20)
    with open(os.path.join(here, "task.sh"), "w") as f:
        f.write("#!/bin/sh\n"
                "set -e\n"
                "test \"$PWD\" = \"$SIMQ_WORKDIR\"\n"
                "sha256sum graph.bin | cut -c1-64 > out.txt\n"
                "echo \"$SIMQ_ARRAY_INDEX\" >> out.txt\n")
    os.chmod(os.path.join(here, "task.sh"), 0o755)
    before = blobs(b)
    jid = sq.submit("--array", "1-100", "--file", inp, "--file",
                    os.path.join(here, "task.sh"), "--collect", "out.txt",
                    "--", "./task.sh", cwd=here)
    after = blobs(b)
    eq(sorted(set(after) - set(before)), sorted([h, sha_file(
        os.path.join(here, "task.sh"))]), "the store grew by two blobs")
    eq(after[h], 20 << 20, "one copy of the input")
    shutil.rmtree(here)
    node = ctx.mkdtemp("node")
    cache = os.path.join(node, "cache")
    w1 = WorkerProc(ctx, b, slots=3, args=["--cache-dir", cache])
    w2 = WorkerProc(ctx, b, slots=3, args=["--cache-dir", cache])
    c = b.client()
    wait_job(ctx, c, int(jid), timeout=90)
    st = status_json(sq, jid)
    eq(st["state"], "done", "the array: %r" % st)
    eq(fetched(w1, h) + fetched(w2, h), 1, "fetches of the input on the "
       "node (logs: %s / %s)" % (w1.log()[-600:], w2.log()[-600:]))
    eq(os.path.getsize(os.path.join(cache, h[:2], h)), 20 << 20,
       "the cache entry")
    # One copy of the input; the outputs are small and each its own.
    grown = {k: v for k, v in blobs(b).items() if k not in before}
    eq(sum(1 for v in grown.values() if v == 20 << 20), 1,
       "copies of the input in the store")
    check(len(grown) == 2 + 100, "100 outputs stored: %d blobs" % len(grown))
    out = ctx.mkdtemp("fetched")
    r = sq("fetch", "-o", out, jid).ok()
    eq(len(r.lines()), 100, "paths printed by fetch")
    for i in range(1, 101):
        with open(os.path.join(out, str(i), "out.txt")) as f:
            eq(f.read(), "%s\n%d\n" % (h, i), "task %d's output" % i)
    for w in (w1, w2):
        jobs = os.path.join(w.workdir, "jobs")
        eq(os.listdir(jobs), [], "job directories left in %s" % jobs)
    # status says what each task collected.
    t = status_json(sq, "%s_7" % jid)
    eq([f["name"] for f in t["collected"]], ["out.txt"], "task 7's outputs")
    eq(sorted(f["name"] for f in t["files"]), ["graph.bin", "task.sh"],
       "task 7's files")
    r = sq("status", "%s_7" % jid).ok()
    check("collected: out.txt" in r.out, r.out)


test_files_array_shares_one_copy.timeout = 180


def test_files_kill9_broker_during_upload(ctx):
    """kill -9 of simqd while simq submit sends a file: simq reconnects
    to the restarted broker, sends the file again (the partial upload is
    gone), submits, and the job reads the whole file."""
    b = ctx.broker
    sq = Simq(ctx, b)
    here = ctx.mkdtemp("client")
    big = os.path.join(here, "big.bin")
    size = 512 << 20
    h = random_file(big, size)
    p = subprocess.Popen([sq.path, "submit", "--file", big, "--", "sh", "-c",
                          "sha256sum big.bin"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=sq.env(), cwd=here)

    wait_until(lambda: partway(b, size) or p.poll() is not None,
               30 * ctx.slow, "an upload in progress", 0.002)
    check(p.poll() is None, "simq was still sending")
    b.kill9()
    time.sleep(0.3)
    b.start()
    out, err = p.communicate(timeout=120 * ctx.slow)
    eq(p.returncode, 0, "simq submit: %r" % err)
    check(b"reconnecting" in err, "says it lost the broker: %r" % err)
    jid = out.decode().strip()
    eq(blobs(b).get(h), size, "stored whole")
    WorkerProc(ctx, b, slots=1)
    c = b.client()
    eq(wait_job(ctx, c, int(jid), timeout=60)["state"], "done", "the job")
    r = sq("output", jid).ok()
    check(r.out.startswith(h), "the job read the whole file: %r" % r.out)


test_files_kill9_broker_during_upload.timeout = 240


def test_files_kill9_broker_during_collect(ctx):
    """kill -9 of simqd while the worker sends a collected file back: the
    worker's transfer reconnects and sends it again, the FINISH follows,
    and simq fetch gets the file the job wrote."""
    b = ctx.broker
    sq = Simq(ctx, b)
    jid = sq.submit("--collect", "res.bin", "--", "sh", "-c",
                    "head -c 536870912 /dev/urandom > res.bin && "
                    "sha256sum res.bin")
    w = WorkerProc(ctx, b, slots=1)
    wait_until(lambda: partway(b, 512 << 20), 60 * ctx.slow,
               "the collected file on its way", 0.002)
    b.kill9()
    time.sleep(0.3)
    b.start()
    c = b.client()
    eq(wait_job(ctx, c, int(jid), timeout=120)["state"], "done", "the job")
    h = sq("output", jid).ok().out.split()[0]
    out = ctx.mkdtemp("fetched")
    sq("fetch", "-o", out, jid).ok()
    eq(sha_file(os.path.join(out, "res.bin")), h, "the file fetched")
    check("collected res.bin" in w.log(), w.log()[-800:])


test_files_kill9_broker_during_collect.timeout = 300


class SlowLink:
    """A TCP relay on 127.0.0.1 to broker b that passes what its clients
    send at most rate bytes a second per connection (what comes back is
    not held): a worker behind it collects slowly, and still heartbeats.
    Stops when the test ends."""

    def __init__(self, ctx, b, rate):
        self.b = b
        self.rate = rate
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.socks = []
        self.stopping = False
        ctx.cleanups.append(self.stop)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopping:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.b.port))
            except OSError:
                c.close()
                continue
            self.socks += [c, u]
            threading.Thread(target=self.pump, args=(c, u, self.rate),
                             daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c, None),
                             daemon=True).start()

    def pump(self, src, dst, rate):
        piece = 16384 if rate is None else max(1, rate // 20)
        try:
            while True:
                d = src.recv(piece)
                if not d:
                    break
                dst.sendall(d)
                if rate is not None:
                    time.sleep(len(d) / rate)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        self.ls.close()
        for s in self.socks:
            s.close()


def test_files_timeout_during_collect(ctx):
    """The timeout covers the job's command: one that passes while a slow
    collect sends what the command made in time neither stops the collect
    nor fails the job (no timedout), and the file comes back whole.  A
    command that runs past its timeout still times out, and what it made
    is collected all the same."""
    b = ctx.broker
    sq = Simq(ctx, b)
    link = SlowLink(ctx, b, 1 << 20)
    WorkerProc(ctx, b, slots=2, server="127.0.0.1:%d" % link.port)
    # 4 MiB at 1 MiB/s: the collect takes some 4 s, past the 1 s timeout.
    jid = sq.submit("-t", "1s", "--collect", "res.bin", "--", "sh", "-c",
                    "head -c 4194304 /dev/urandom > res.bin && "
                    "sha256sum res.bin")
    c = b.client()
    st = wait_job(ctx, c, int(jid), timeout=120)
    eq((st["state"], st.get("exit"), st.get("timedout")), ("done", "0", None),
       "a job that ended in time, collected slowly: %r" % st)
    j = status_json(sq, jid)
    eq(j["timed_out"], False, "status --json: not timed out")
    check(st.int("ended") - st.int("started") < 1000,
          "the command ended within its timeout: %r" % st)
    h = sq("output", jid).ok().out.split()[0]
    out = ctx.mkdtemp("fetched")
    sq("fetch", "-o", out, jid).ok()
    eq(sha_file(os.path.join(out, "res.bin")), h, "the file collected")
    # A command that outlives its timeout: timed out, and still collected.
    jid = sq.submit("-t", "1s", "--collect", "part.txt", "--", "sh", "-c",
                    "echo so far > part.txt; sleep 30")
    st = wait_job(ctx, c, int(jid), timeout=60)
    eq((st["state"], st.get("timedout")), ("failed", "1"),
       "a command past its timeout: %r" % st)
    eq([f["name"] for f in status_json(sq, jid)["collected"]], ["part.txt"],
       "what it made is collected")


test_files_timeout_during_collect.timeout = 180


def test_files_store_full(ctx):
    """A store that cannot take the file: simq submit says so and nothing
    is queued."""
    b = ctx.start_broker(["--blob-max", "1M"])
    sq = Simq(ctx, b)
    here = ctx.mkdtemp("client")
    random_file(os.path.join(here, "in.bin"), 2 << 20)
    r = sq("submit", "--file", "in.bin", "--", "true", cwd=here)
    r.fails(2, "blob store full", "nothing was submitted")
    eq(b.client().stats().get("jobs"), "0", "jobs kept")
    eq(parts(b), [], "nothing half-written")
    eq(blobs(b), {}, "nothing stored")


def test_files_corrupt_blob_fails_the_attempt(ctx):
    """A blob damaged on the broker's disk: the worker's fetch is refused,
    the attempt fails saying why, the command never runs, and nothing
    enters the cache or the job's directory."""
    b = ctx.broker
    sq = Simq(ctx, b)
    here = ctx.mkdtemp("client")
    h = random_file(os.path.join(here, "in.bin"), 3 << 20)
    mark = os.path.join(ctx.mkdtemp("mark"), "ran")
    jid = sq.submit("--file", "in.bin", "--", "touch", mark, cwd=here)
    path = os.path.join(b.datadir, "blobs", h[:2], h)
    with open(path, "r+b") as f:
        f.seek(12345)
        byte = f.read(1)
        f.seek(12345)
        f.write(bytes([byte[0] ^ 1]))
    w = WorkerProc(ctx, b, slots=1)
    c = b.client()
    st = wait_job(ctx, c, int(jid), timeout=30)
    eq(st["state"], "failed", "the job")
    check("corrupt" in st.get("reason", "") and
          st.get("reason", "").startswith("files: in.bin"),
          "the reason: %r" % st.get("reason"))
    check(not os.path.exists(mark), "the command never ran")
    cache = os.path.join(w.workdir, "cache")
    check(not os.path.exists(os.path.join(cache, h[:2], h)),
          "nothing in the cache")
    eq(os.listdir(os.path.join(cache, "tmp")), [], "no partial download")
    eq(os.listdir(os.path.join(w.workdir, "jobs")), [], "no job directory")
    r = sq("status", "-l", jid)
    check("corrupt" in r.out and "never started" in r.out, r.out)


def test_files_collect_reports(ctx):
    """Patterns that match nothing, a file over --collect-max, a symbolic
    link and a directory: status (and --json) say what came back and what
    did not; the job is done all the same.  A collected file corrupted on
    the broker is refused by simq fetch, which writes nothing."""
    b = ctx.broker
    sq = Simq(ctx, b)
    jid = sq.submit("--collect", "*.png", "--collect", "big.dat",
                    "--collect", "small.txt", "--collect", "link",
                    "--collect", "d", "--", "sh", "-c",
                    "head -c 4096 /dev/zero > big.dat; echo hi > small.txt; "
                    "ln -s /etc/passwd link; mkdir -p d/e; echo z > d/e/z")
    WorkerProc(ctx, b, slots=1, args=["--collect-max", "1K"])
    c = b.client()
    eq(wait_job(ctx, c, int(jid), timeout=30)["state"], "done", "the job")
    st = status_json(sq, jid)
    eq(sorted(f["name"] for f in st["collected"]), ["d/e/z", "small.txt"],
       "collected")
    eq(st["unmatched"], ["*.png"], "patterns that matched nothing")
    errs = " | ".join(st["collect_errors"])
    check("big.dat: 4096 bytes, over the worker's --collect-max" in errs,
          errs)
    check("link: a symbolic link; not followed" in errs, errs)
    r = sq("status", jid).ok()
    check("nothing matched --collect '*.png'" in r.out, r.out)
    check("not collected: big.dat" in r.out, r.out)
    out = ctx.mkdtemp("fetched")
    r = sq("fetch", "-o", out, jid).ok()
    eq(sorted(r.lines()), sorted([os.path.join(out, "d/e/z"),
                                  os.path.join(out, "small.txt")]), "fetched")
    with open(os.path.join(out, "small.txt")) as f:
        eq(f.read(), "hi\n", "small.txt")
    # Damage small.txt's blob on the broker: fetch refuses it.
    h = [f["sha256"] for f in st["collected"] if f["name"] == "small.txt"][0]
    with open(os.path.join(b.datadir, "blobs", h[:2], h), "r+b") as f:
        f.write(b"H")
    out2 = ctx.mkdtemp("fetched2")
    r = sq("fetch", "-o", out2, jid)
    r.fails(2, "small.txt", "corrupt")
    check(not os.path.exists(os.path.join(out2, "small.txt")),
          "no corrupt file written")
    eq([f for f in os.listdir(out2) if f.startswith(".")], [],
       "no temporary file left")


def test_files_batch_one_upload(ctx):
    """--batch with --file: one upload for every command, each job sees
    the file under its name, in a directory of its own."""
    b = ctx.broker
    sq = Simq(ctx, b)
    here = ctx.mkdtemp("client")
    with open(os.path.join(here, "params.txt"), "w") as f:
        f.write("alpha\n")
    with open(os.path.join(here, "cmds"), "w") as f:
        for i in range(5):
            f.write("sh -c 'cat conf/p.txt; pwd; echo %d > o.txt'\n" % i)
    r = sq("submit", "--file", "params.txt:conf/p.txt", "--collect",
           "o.txt", "--batch", "cmds", cwd=here).ok()
    ids = r.lines()
    eq(len(ids), 5, "ids")
    eq(len(blobs(b)), 1, "one blob for the batch")
    WorkerProc(ctx, b, slots=2)
    c = b.client()
    dirs = set()
    for i, jid in enumerate(ids):
        eq(wait_job(ctx, c, int(jid), timeout=30)["state"], "done", jid)
        out = sq("output", jid).ok().out.splitlines()
        eq(out[0], "alpha", "the file's content")
        dirs.add(out[1])
        st = status_json(sq, jid)
        eq([f["name"] for f in st["collected"]], ["o.txt"], "collected")
    eq(len(dirs), 5, "a directory each: %r" % dirs)


def test_files_bad_input(ctx):
    """Bad --file and --collect input is refused before anything is sent:
    nothing is stored and nothing is queued."""
    b = ctx.broker
    sq = Simq(ctx, b)
    here = ctx.mkdtemp("client")
    os.mkdir(os.path.join(here, "d1"))
    os.mkdir(os.path.join(here, "d2"))
    os.mkdir(os.path.join(here, "empty"))
    for d in ("d1", "d2"):
        with open(os.path.join(here, d, "a.txt"), "w") as f:
            f.write(d)
    cases = [
        (["--file", "nope.txt"], ["nope.txt", "No such file"]),
        (["--file", "d1/a.txt:../a.txt"], ["bad name", ".."]),
        (["--file", "d1/a.txt:/etc/a"], ["bad name", "starts with /"]),
        (["--file", "d1/a.txt:x//y"], ["bad name"]),
        (["--file", "d1/a.txt", "--file", "d2/a.txt"],
         ["two files would be named 'a.txt'"]),
        (["--file", "d1", "--file", "d2:d1"],
         ["two files would be named 'd1/a.txt'"]),
        (["--file", "empty"], ["holds no regular file"]),
        (["--collect", "../out"], ["bad --collect", ".."]),
        (["--collect", "/tmp/x"], ["bad --collect", "starts with /"]),
        (["--file", "d1", "-C", here], ["-C and --file"]),
        (["--file", "d1/a.txt", "--", "./run.sh"],
         ["./run.sh is not among the --file names"]),
    ]
    for args, words in cases:
        if "--" not in args:
            args = args + ["--", "true"]
        sq("submit", *args, cwd=here).fails(2, *words)
    if os.getuid() != 0:
        secret = os.path.join(here, "secret")
        with open(secret, "w") as f:
            f.write("x")
        os.chmod(secret, 0)
        sq("submit", "--file", "secret", "--", "true",
           cwd=here).fails(2, "cannot be read")
    eq(blobs(b), {}, "nothing was sent")
    eq(b.client().stats().get("jobs"), "0", "nothing was queued")


def test_files_cache_lru(ctx):
    """--cache-max: the least recently used entries go first; an entry
    used again is kept, and one changed in place (through a job's hard
    link) is fetched again instead of being laid."""
    b = ctx.broker
    sq = Simq(ctx, b)
    here = ctx.mkdtemp("client")
    hs = [random_file(os.path.join(here, "f%d" % i), 1 << 20)
          for i in range(3)]
    w = WorkerProc(ctx, b, slots=1, args=["--cache-max", "2500K"])
    c = b.client()
    cache = os.path.join(w.workdir, "cache")

    def run(i, cmd="true"):
        jid = sq.submit("--file", "f%d" % i, "--", "sh", "-c", cmd, cwd=here)
        eq(wait_job(ctx, c, int(jid), timeout=30)["state"], "done",
           "job with f%d" % i)

    def cached():
        return sorted(h for h in hs if os.path.exists(
            os.path.join(cache, h[:2], h)))

    run(0)
    time.sleep(0.05)
    run(1)
    time.sleep(0.05)
    run(0)			# f0 used again: f1 is now the oldest
    time.sleep(0.05)
    run(2)			# room for two: f1 goes
    eq(cached(), sorted([hs[0], hs[2]]), "the cache after f0 f1 f0 f2")
    eq(fetched(w, hs[0]), 1, "f0 fetched once")
    # A job that makes its input writable and changes it: the entry no
    # longer matches, and the next job gets a fresh copy.
    run(2, "chmod u+w f2 && echo junk >> f2")
    run(2, "sha256sum f2 > /dev/stderr; test $(sha256sum f2 | cut -c1-64)"
        " = %s" % hs[2])
    eq(fetched(w, hs[2]), 2, "f2 fetched again after it was changed")
    check("was changed" in w.log(), w.log()[-600:])


def test_files_cache_disk_full(ctx):
    """A cache on a full disk: the attempt fails before its command runs,
    saying so, nothing half-written stays in the cache, and a job whose
    file fits runs on the same worker afterwards."""
    mnt, _ = mount_tmpfs(ctx, "2m")
    b = ctx.broker
    sq = Simq(ctx, b)
    here = ctx.mkdtemp("client")
    random_file(os.path.join(here, "big.bin"), 3 << 20)
    random_file(os.path.join(here, "small.bin"), 100 << 10)
    mark = os.path.join(ctx.mkdtemp("mark"), "ran")
    jid = sq.submit("--file", "big.bin", "--", "touch", mark, cwd=here)
    cache = os.path.join(mnt, "cache")
    w = WorkerProc(ctx, b, slots=1, args=["--cache-dir", cache])
    c = b.client()
    st = wait_job(ctx, c, int(jid), timeout=30)
    eq(st["state"], "failed", "the job")
    why = st.get("reason", "")
    check(why.startswith("files: big.bin: cache %s" % cache) and
          "No space left on device" in why, "the reason: %r" % why)
    check(not os.path.exists(mark), "the command never ran")
    eq(os.listdir(os.path.join(cache, "tmp")), [], "no partial download")
    jid = sq.submit("--file", "small.bin", "--", "cmp", "small.bin",
                    os.path.join(here, "small.bin"), cwd=here)
    eq(wait_job(ctx, c, int(jid), timeout=30)["state"], "done",
       "a job that fits, after")
    check(w.running(), "the worker goes on")


def test_files_fetch_keeps_heartbeats(ctx):
    """A fetch far longer than the worker's lease: the transfer runs
    beside the worker's event loop, on its own connection, so heartbeats
    go on, the lease holds, and the job runs once."""
    b = ctx.broker
    sq = Simq(ctx, b)
    here = ctx.mkdtemp("client")
    h = random_file(os.path.join(here, "in.bin"), 512 << 20)
    jid = sq.submit("--file", "in.bin", "--", "sh", "-c", "sha256sum in.bin",
                    cwd=here)
    w = WorkerProc(ctx, b, slots=1, lease=1000)
    c = b.client()
    t0 = time.monotonic()
    st = wait_job(ctx, c, int(jid), timeout=120)
    took = time.monotonic() - t0
    eq(st["state"], "done", "the job")
    eq(st.get("attempts"), "1", "attempts (a lost lease re-runs it)")
    check(sq("output", jid).ok().out.startswith(h), "the file laid whole")
    check("fetched blob %s" % h[:12] in w.log(), w.log()[-500:])
    check(took > 1.0, "the fetch took longer than the lease (%.1fs); "
          "the test shows nothing" % took)


test_files_fetch_keeps_heartbeats.timeout = 180


def test_files_sweep_after_kill9(ctx):
    """A worker and its shepherd killed with -9 (the shepherd cleans up
    after a worker that dies alone) while a job with files runs leave its
    directory; the next worker on that work directory removes it, and
    leaves alone the directory of a job another live worker runs."""
    b = ctx.broker
    sq = Simq(ctx, b)
    here = ctx.mkdtemp("client")
    with open(os.path.join(here, "in.txt"), "w") as f:
        f.write("x\n")
    jid = sq.submit("--file", "in.txt", "--", "sleep", "60", cwd=here)
    w1 = WorkerProc(ctx, b, slots=1)
    jobs = os.path.join(w1.workdir, "jobs")
    wait_until(lambda: os.path.isdir(jobs) and os.listdir(jobs),
               10 * ctx.slow, "the job's directory")
    left = os.listdir(jobs)
    shepherd = int(left[0].split(".")[2])
    os.kill(shepherd, signal.SIGKILL)
    w1.kill9()
    wait_until(lambda: not os.path.exists("/proc/%d" % shepherd),
               10 * ctx.slow, "the shepherd to go")
    eq(os.listdir(jobs), left, "the directory left behind")
    # Another worker on the same directories runs a job of its own.
    jid2 = sq.submit("--file", "in.txt", "--", "sleep", "60", cwd=here)
    c = b.client()
    c.request("CANCEL %s" % jid).expect_ok()
    w2 = WorkerProc(ctx, b, slots=1, args=["-w", w1.workdir])
    wait_until(lambda: len(os.listdir(jobs)) == 1 and
               os.listdir(jobs) != left, 10 * ctx.slow,
               "the old directory gone and the new job's there")
    check("removed 1 job directory" in w2.log(), w2.log()[-500:])
    mine = os.listdir(jobs)
    w3 = WorkerProc(ctx, b, slots=1, args=["-w", w1.workdir])
    w3.wait_registered(c)
    eq(os.listdir(jobs), mine, "a live worker's job directory stays")
    c.request("CANCEL %s" % jid2).expect_ok()
    wait_until(lambda: os.listdir(jobs) == [], 20 * ctx.slow,
               "the canceled job's directory removed")


def test_files_largest_submit_runs(ctx):
    """A SUBMIT near the 64 KiB line, of many file= words: its TAKE item
    (id=, attempt=, q=, timeout= more than the request) must still be a
    line a worker reads, or the job is accepted and never runs.  The
    broker names how many bytes too many; the largest SUBMIT it accepts
    runs on a real worker with all its files; one byte more is refused
    and changes nothing; a BATCH line and an array's widest index are
    held to the same bound."""
    from harness import enc
    b = ctx.broker
    c = b.client()
    data = b"x\n"
    h = hashlib.sha256(data).hexdigest()
    c.request("PUT %s %d 0 %d" % (h, len(data), len(data)),
              data).expect_ok("stored")
    files = ["file=" + enc("%s:%d:644:d/f%04d" % (h, len(data), i))
             for i in range(700)]

    def line(pad, head="SUBMIT", argv=("sh", "-c", "ls d | wc -l")):
        return " ".join([head] + files + ["env=" + enc("PAD=" + "p" * pad),
                                          "--"] + [enc(a) for a in argv])

    base = len(line(0))
    check(base < 65000, "the files leave room: %d" % base)
    # A request line that fits (65534 bytes and CR LF), whose item does
    # not.
    pad = 65534 - base
    r = c.request(line(pad))
    r.expect_err("bad-request")
    check("TAKE item would be" in r.line, r.line)
    over = int(r.words[r.words.index("fewer") - 1])
    check(0 < over < 200, "bytes over: %r" % r.line)
    before = c.stats()
    # One byte more than the largest: refused, nothing changes.
    c.request(line(pad - over + 1)).expect_err("bad-request")
    after = c.stats()
    eq((after["jobs"], after["next_id"]), (before["jobs"], before["next_id"]),
       "jobs after a refused submit")
    # The largest: accepted, and runs.
    jid = c.request(line(pad - over)).one_id()
    w = WorkerProc(ctx, b, slots=1)
    st = wait_job(ctx, c, jid, timeout=30)
    eq(st["state"], "done", "the largest job (worker log: %s)" %
       w.log()[-800:])
    from workerlib import output
    eq(output(c, jid), b"700\n", "its files were all there")
    check("longer than" not in w.log(), w.log()[-800:])
    # BATCH: the line is named, nothing is submitted.
    n = c.stats()["next_id"]
    args = ["echo", "a" * (65534 - 40)]
    body = ("echo small\n" + " ".join(enc(a) for a in args) +
            "\n").encode()
    r = c.request("BATCH %d" % len(body), body)
    r.expect_err("bad-body")
    check("line 2:" in r.line and "TAKE item" in r.line, r.line)
    eq(c.stats()["next_id"], n, "next id after a refused BATCH")
    # An array: {} becomes the index, and the widest one is counted.
    arg = "{}" * 12000
    one = "SUBMIT array=1-9 -- echo " + arg
    c.request(one).one_id()
    r = c.request("SUBMIT array=1-100000 -- echo " + arg)
    r.expect_err("bad-request")
    check("TAKE item would be" in r.line, r.line)
