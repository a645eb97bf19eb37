"""
Files that travel with jobs, the broker's side: the blob store in
DATADIR/blobs and HAVE, PUT and GET, spoken over real sockets to a real
simqd; the file=/collect= words of submits and the got=/nomatch=/collerr=
of FINISH; reference counts across restarts and retention; full stores,
full disks, kill -9 mid-upload and blobs corrupted on disk.
"""

import hashlib
import os
import select
import shutil
import time

from harness import (Broker, ConnectionClosed, TestFailure, check, eq, enc,
                     mount_tmpfs, submit_line, wait_until)

CHUNK = 4 << 20


def sha(data):
    return hashlib.sha256(data).hexdigest()


def blob_file(b, h):
    return os.path.join(b.datadir, "blobs", h[:2], h)


def part_files(b):
    d = os.path.join(b.datadir, "blobs", "tmp")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def stored(b):
    """Every complete blob on disk: {hash: size}."""
    out = {}
    root = os.path.join(b.datadir, "blobs")
    for sub in sorted(os.listdir(root)):
        if len(sub) != 2:
            continue
        for f in os.listdir(os.path.join(root, sub)):
            out[f] = os.path.getsize(os.path.join(root, sub, f))
    return out


def have(c, *hashes):
    return c.request("HAVE " + " ".join(hashes)).expect_ok().words


def put(c, data, chunk=CHUNK, offset=0, h=None, size=None):
    """Uploads data from offset in chunks; returns the last reply."""
    h = h or sha(data)
    size = len(data) if size is None else size
    r = None
    off = offset
    while True:
        n = min(chunk, len(data) - off)
        r = c.request("PUT %s %d %d %d" % (h, size, off, n),
                      data[off:off + n])
        if r.kind != "OK" or r.words == ["stored"]:
            return r
        off += n
        eq(r.words, [str(off)], "bytes held after a chunk")


def get_all(c, h, chunk=CHUNK):
    out = bytearray()
    while True:
        r = c.request("GET %s %d %d" % (h, len(out), chunk))
        if r.kind != "DATA":
            return r
        if not r.data:
            return bytes(out)
        out += r.data


def fw(h, size, name, mode="644"):
    return "file=" + enc("%s:%d:%s:%s" % (h, size, mode, name))


# ---------------------------------------------------------------------------
# HAVE, PUT, GET

def test_blob_upload_dedup_get(ctx):
    """A blob uploaded in chunks is stored once under its hash, readable
    back whole; a second PUT of the same content stores nothing new."""
    b = ctx.broker
    c = b.client()
    data = os.urandom(3 * CHUNK + 12345)
    h = sha(data)
    eq(have(c, h), ["0"], "HAVE before")
    put(c, data).expect_ok("stored")
    eq(have(c, h), ["yes"], "HAVE after")
    eq(stored(b), {h: len(data)}, "the store")
    eq(part_files(b), [], "no partial left")
    st = os.stat(blob_file(b, h))
    # The same content again: answered at once, nothing written.
    c.request("PUT %s %d 0 5" % (h, len(data)), data[:5]).expect_ok(
        "stored")
    eq(put(c, data).words, ["stored"], "a second full upload")
    eq(os.stat(blob_file(b, h)).st_ino, st.st_ino, "the same file")
    eq(stored(b), {h: len(data)}, "the store after the second PUT")
    st = c.stats()
    eq((st["blobs"], st["blob_bytes"], st["blob_reserved"]),
       ("1", str(len(data)), "0"), "STATS")
    got = get_all(c, h)
    check(isinstance(got, bytes), "GET failed: %r" % (got,))
    check(got == data, "GET gave other bytes back")
    # Past the end, and an unknown blob.
    eq(c.request("GET %s %d 10" % (h, len(data))).data, b"", "past end")
    c.request("GET %s 0 10" % sha(b"nope")).expect_err("not-found")
    # The empty blob.
    e = sha(b"")
    c.request("PUT %s 0 0 0" % e, b"").expect_ok("stored")
    eq(have(c, e, h, sha(b"x")), ["yes", "yes", "0"], "HAVE of three")


def test_blob_resume_after_cut(ctx):
    """An upload cut with its connection resumes on another from what HAVE
    says; a PUT at another offset is refused and changes nothing."""
    b = ctx.broker
    data = os.urandom(2 * CHUNK + 777)
    h = sha(data)
    c = b.client()
    c.request("PUT %s %d 0 %d" % (h, len(data), CHUNK),
              data[:CHUNK]).expect_ok(CHUNK)
    # Half of the second chunk, then the connection is cut.
    c.send(("PUT %s %d %d %d\r\n" % (h, len(data), CHUNK, CHUNK)).encode()
           + data[CHUNK:CHUNK + CHUNK // 2])
    time.sleep(0.2)
    c.close()
    # What arrived of the cut chunk is kept: the broker writes a body as
    # it comes.
    held = CHUNK + CHUNK // 2
    c2 = b.client()
    wait_until(lambda: have(c2, h) == [str(held)], 10, "HAVE after the cut")
    eq(part_files(b), [h + ".part"], "the partial")
    r = c2.request("PUT %s %d 0 10" % (h, len(data)), data[:10])
    r.expect_err("bad-request")
    check(("held %d" % held) in r.line, "says what is held: %r" % r)
    eq(have(c2, h), [str(held)], "a wrong offset changes nothing")
    # A second connection may not write into an upload being written.
    c.close()
    c3 = b.client()
    c3.send(("PUT %s %d %d %d\r\n" % (h, len(data), held, 100)).encode()
            + data[held:held + 50])
    time.sleep(0.2)
    r = c2.request("PUT %s %d %d 10" % (h, len(data), held),
                   data[held:held + 10])
    r.expect_err("bad-state")
    c3.send(data[held + 50:held + 100] + b"\r\n")
    eq(c3.read_reply().words, [str(held + 100)], "the first writer goes on")
    put(c2, data, offset=held + 100).expect_ok("stored")
    check(get_all(c2, h) == data, "the resumed blob reads back whole")


def test_blob_hash_mismatch(ctx):
    """Content that does not hash to its name is refused when its last
    chunk arrives, and nothing of it stays."""
    b = ctx.broker
    c = b.client()
    data = os.urandom(CHUNK + 100)
    h = sha(data + b"x")
    r = put(c, data, h=h)
    r.expect_err("bad-body")
    check("mismatch" in r.line, "says why: %r" % r)
    eq(have(c, h), ["0"], "HAVE after a mismatch")
    eq(part_files(b), [], "no partial left")
    eq(stored(b), {}, "nothing stored")
    c.request("PING").expect_ok()


def test_blob_bad_requests(ctx):
    c = ctx.broker.client()
    h = sha(b"abc")
    c.request("PUT %s 3 0 4" % h, b"abcd").expect_err("bad-request")
    c.request("PUT %s 3 1 1" % h, b"b").expect_err("bad-request")
    c.request("PUT %s 3 0 1" % h.upper(), b"a").expect_err("bad-request")
    c.request("HAVE abc").expect_err("bad-request")
    c.request("GET %s 0 0" % h).expect_err("bad-request")
    c.request("GET %s 0 %d" % (h, CHUNK + 1)).expect_err("bad-request")
    r = c.request("PUT %s 3 0 %d" % (h, CHUNK + 1), b"a" * (CHUNK + 1))
    r.expect_err("body-too-large")
    # An upload in progress of another size is not mixed with this one.
    c.request("PUT %s 3 0 1" % h, b"a").expect_ok(1)
    c.request("PUT %s 4 1 1" % h, b"b").expect_err("bad-request")
    c.request("PUT %s 3 1 2" % h, b"bc").expect_ok("stored")
    # A body not followed by CR LF: bad-body, the rest of the line is
    # skipped, nothing of it is stored, the next request runs.
    d = sha(b"xyz")
    c.send(("PUT %s 3 0 3\r\nxyzJUNK junk\r\nPING\r\n" % d).encode())
    c.read_reply().expect_err("bad-body")
    c.read_reply().expect_ok()
    eq(have(c, d), ["3"], "the bytes before the bad terminator are held")
    c.request("PUT %s 3 3 0" % d, b"").expect_ok("stored")


def test_blob_token_needed(ctx):
    tok = os.path.join(ctx.mkdtemp("tok"), "token")
    with open(tok, "w") as f:
        f.write("s3cret\n")
    os.chmod(tok, 0o600)
    b = Broker(ctx, args=["--token-file", tok]).start()
    c = b.client()
    h = sha(b"abc")
    c.request("HAVE " + h).expect_err("auth")
    c.request("PUT %s 3 0 3" % h, b"abc").expect_err("auth")
    c.request("GET %s 0 3" % h).expect_err("auth")
    eq(stored(b), {}, "nothing stored without the token")
    c.request("HELLO 1 s3cret").expect_ok()
    c.request("PUT %s 3 0 3" % h, b"abc").expect_ok("stored")


def test_blob_store_full(ctx):
    """--blob-max bounds complete blobs plus reservations: a PUT that
    does not fit is refused at once, nothing half-written stays, and
    the broker goes on."""
    b = Broker(ctx, args=["--blob-max", "10M"]).start()
    c = b.client()
    a = os.urandom(6 << 20)
    put(c, a).expect_ok("stored")
    big = os.urandom(5 << 20)
    r = c.request("PUT %s %d 0 %d" % (sha(big), len(big), CHUNK),
                  big[:CHUNK])
    r.expect_err("limit")
    check("full" in r.line and "10485760" in r.line, "says so: %r" % r)
    eq(part_files(b), [], "no partial")
    eq(stored(b), {sha(a): len(a)}, "the store")
    # A reservation counts: a 3 MiB upload in progress leaves 1 MiB.
    m = os.urandom(3 << 20)
    c.request("PUT %s %d 0 100" % (sha(m), len(m)), m[:100]).expect_ok(100)
    s = os.urandom(2 << 20)
    c.request("PUT %s %d 0 10" % (sha(s), len(s)), s[:10]).expect_err(
        "limit")
    c.request("PUT %s %d 100 %d" % (sha(m), len(m), len(m) - 100),
              m[100:]).expect_ok("stored")
    c.request("PING").expect_ok()
    eq(sorted(stored(b)), sorted([sha(a), sha(m)]), "the store at the end")


# ---------------------------------------------------------------------------
# Job words

def test_blob_submit_needs_stored_blob(ctx):
    """A submit naming a blob not stored complete is refused and submits
    nothing; one naming stored blobs carries file= and collect= to the
    worker's TAKE and to STATUS; BATCH and arrays too."""
    b = ctx.broker
    c = b.client()
    data = b"print('hi')\n"
    h = sha(data)
    line = submit_line(["python3", "run.py"]).replace(
        "SUBMIT", "SUBMIT " + fw(h, len(data), "run.py"), 1)
    r = c.request(line)
    r.expect_err("not-found")
    check(h in r.line and "send it first" in r.line, "says which: %r" % r)
    # Half uploaded is not stored.
    c.request("PUT %s %d 0 3" % (h, len(data)), data[:3]).expect_ok(3)
    c.request(line).expect_err("not-found")
    eq(c.request("LIST").expect_items(), [], "nothing submitted")
    c.request("PUT %s %d 3 %d" % (h, len(data), len(data) - 3),
              data[3:]).expect_ok("stored")
    # The wrong size is refused too.
    c.request(line.replace(":%d:" % len(data), ":%d:" % (len(data) + 1))) \
        .expect_err("bad-request")
    # Bad names never get as far as the store.
    for bad in ("../x", "/etc/x", "a//b", "."):
        c.request("SUBMIT " + fw(h, len(data), bad) + " -- true") \
            .expect_err("bad-request")
    c.request("SUBMIT %s %s -- true" % (fw(h, len(data), "a"),
              fw(h, len(data), "a"))).expect_err("bad-request")
    c.request("SUBMIT collect=../x -- true").expect_err("bad-request")
    jid = c.request(line.replace("SUBMIT ", "SUBMIT collect=%2A.csv "
                    "collect=out/%2A ", 1)).one_id()
    st = c.status1(jid)
    eq(st.multi.get("file"), ["%s:%d:644:run.py" % (h, len(data))],
       "STATUS file=")
    eq(st.multi.get("collect"), ["*.csv", "out/*"], "STATUS collect=")
    w = b.worker("w1")
    job = w.take1()
    eq(job.multi.get("file"), ["%s:%d:644:run.py" % (h, len(data))],
       "TAKE file=")
    eq(job.multi.get("collect"), ["*.csv", "out/*"], "TAKE collect=")
    # An array: its tasks carry the array's files.
    aid = c.request("SUBMIT array=1-3 %s -- sh run.py {}" %
                    fw(h, len(data), "run.py")).one_id()
    t = w.take1()
    eq(t["id"], "%d_1" % aid, "a task")
    eq(t.multi.get("file"), ["%s:%d:644:run.py" % (h, len(data))],
       "a task's file=")
    eq(c.status1("%d_3" % aid).multi.get("file"),
       ["%s:%d:644:run.py" % (h, len(data))], "an untaken task's file=")
    # A batch: every job.
    body = b"a 1\nb 2\n"
    r = c.request("BATCH %s collect=x %d" % (fw(h, len(data), "in/r.py",
                  "755"), len(body)), body)
    r.expect_ok()
    first = int(r.words[0])
    for k in range(2):
        st = c.status1(first + k)
        eq(st.multi.get("file"), ["%s:%d:755:in/r.py" % (h, len(data))],
           "a batch job's file=")
        eq(st.multi.get("collect"), ["x"], "a batch job's collect=")
    c.request("BATCH %s 4" % fw(sha(b"no"), 2, "x"), b"a 1\n") \
        .expect_err("not-found")


def test_blob_finish_collected(ctx):
    """got=, nomatch= and collerr= of a FINISH are kept with the job and
    shown by STATUS; a got= naming a blob the broker does not hold is
    refused and changes nothing; all of it survives a restart."""
    b = ctx.broker
    c = b.client()
    jid = c.request("SUBMIT collect=%2A.csv collect=%2A.png -- true") \
        .one_id()
    w = b.worker("w1")
    job = w.take1()
    out = b"a,b\n1,2\n"
    ho = sha(out)
    got = enc("%s:%d:644:res/out.csv" % (ho, len(out)))
    w.finish_job(job, got=got).expect_err("not-found")
    eq(c.status1(jid)["state"], "running", "a refused FINISH changes "
       "nothing")
    put(c, out).expect_ok("stored")
    w.finish_job(job, got=got + " nomatch=%2A.png collerr=" +
                 enc("big.csv: larger than --collect-max (1 MiB)")) \
        .expect_ok("done")
    want = {"got": ["%s:%d:644:res/out.csv" % (ho, len(out))],
            "nomatch": ["*.png"],
            "collerr": ["big.csv: larger than --collect-max (1 MiB)"]}

    def check_status(what):
        st = c.status1(jid)
        eq(st["state"], "done", what + ": state")
        for k, v in want.items():
            eq(st.multi.get(k), v, what + ": " + k)
    check_status("live")
    b.restart()
    c = b.client()
    check_status("after a restart")
    b.kill9()
    b.start()
    c = b.client()
    check_status("after kill -9")
    check(c.request("GET %s 0 100" % ho).data == out, "the output reads "
          "back")


def test_blob_finish_bad_keys(ctx):
    b = ctx.broker
    c = b.client()
    c.request("SUBMIT -- true").one_id()
    w = b.worker("w1")
    job = w.take1()
    for kw in ({"got": "xyz"}, {"got": enc("%s:0:644:../x" % sha(b""))},
               {"nomatch": enc("/abs")}, {"collerr": "%"}):
        w.finish_job(job, **kw).expect_err("bad-request")
    w.finish_job(job).expect_ok("done")


# ---------------------------------------------------------------------------
# Failures: a full disk, kill -9 mid-upload, corruption on disk

def test_blob_enospc_tmpfs(ctx):
    """A disk that fills while a blob is written: ERR limit, the partial
    is removed, and the broker goes on (its journal still works)."""
    mnt, umount = mount_tmpfs(ctx, "8m")
    b = Broker(ctx, datadir=os.path.join(mnt, "d"),
               args=["--segment-size", "256K"]).start()
    c = b.client()
    data = os.urandom(12 << 20)
    r = put(c, data)
    r.expect_err("limit")
    check("no space left for blobs" in r.line, "says so: %r" % r)
    eq(part_files(b), [], "the partial is removed")
    eq(have(c, sha(data)), ["0"], "nothing held")
    check(b.running(), "the broker goes on")
    small = os.urandom(100000)
    put(c, small).expect_ok("stored")
    jid = c.request("SUBMIT %s -- true" % fw(sha(small), len(small), "s")) \
        .one_id()
    eq(c.status1(jid)["state"], "queued", "a submit after the full disk")
    b.stop()
    umount()


test_blob_enospc_tmpfs.timeout = 120


def test_blob_kill9_mid_upload(ctx):
    """kill -9 of simqd during an upload: at the restart the partial is
    gone (HAVE says 0, blobs/tmp is empty), the blobs stored before and
    the jobs naming them are intact, and the upload starts again."""
    b = ctx.broker
    c = b.client()
    keep = os.urandom(CHUNK + 5000)
    put(c, keep).expect_ok("stored")
    jid = c.request("SUBMIT %s -- cat k" % fw(sha(keep), len(keep), "k")) \
        .one_id()
    big = os.urandom(3 * CHUNK)
    hb = sha(big)
    c.request("PUT %s %d 0 %d" % (hb, len(big), CHUNK),
              big[:CHUNK]).expect_ok(CHUNK)
    c.send(("PUT %s %d %d %d\r\n" % (hb, len(big), CHUNK, CHUNK)).encode() +
           big[CHUNK:CHUNK + 1000])
    time.sleep(0.2)
    eq(part_files(b), [hb + ".part"], "the partial before the kill")
    b.kill9()
    b.start()
    c = b.client()
    eq(part_files(b), [], "no partial after the restart")
    eq(have(c, hb, sha(keep)), ["0", "yes"], "HAVE after the restart")
    check(get_all(c, sha(keep)) == keep, "the stored blob reads back")
    eq(c.status1(jid).multi.get("file"),
       ["%s:%d:644:k" % (sha(keep), len(keep))], "the job's file")
    put(c, big).expect_ok("stored")
    check("removed 1 upload left unfinished" in b.current_log(),
          "the log says so")


def test_blob_corrupt_on_disk(ctx):
    """A blob damaged on the broker's disk is detected when served: the
    chunk that would complete it is withheld, the file is moved to
    blobs/corrupt/, the blob is no longer stored, and a new upload heals
    it.  A one-chunk blob is never served at all."""
    b = ctx.broker
    c = b.client()
    data = os.urandom(2 * CHUNK + 99)
    h = sha(data)
    put(c, data).expect_ok("stored")
    small = b"tiny but precious\n"
    hs = sha(small)
    put(c, small).expect_ok("stored")
    for hh, off in ((h, CHUNK + 17), (hs, 3)):
        with open(blob_file(b, hh), "r+b") as f:
            f.seek(off)
            byte = f.read(1)
            f.seek(off)
            f.write(bytes([byte[0] ^ 0x40]))
    got = bytearray()
    r = None
    while True:
        r = c.request("GET %s %d %d" % (h, len(got), CHUNK))
        if r.kind != "DATA":
            break
        got += r.data
        check(len(got) < len(data), "served whole while corrupt")
    r.expect_err("bad-state")
    check("corrupt" in r.line, "says so: %r" % r)
    eq(len(got), 2 * CHUNK, "served up to the last chunk only")
    r = c.request("GET %s 0 %d" % (hs, CHUNK))
    r.expect_err("bad-state")
    eq(have(c, h, hs), ["0", "0"], "no longer stored")
    corrupt = os.path.join(b.datadir, "blobs", "corrupt")
    eq(sorted(os.listdir(corrupt)), sorted([h, hs]), "moved aside")
    check(not os.path.exists(blob_file(b, h)), "not in its place")
    c.request("GET %s 0 10" % h).expect_err("not-found")
    # A submit naming it is refused now; a new upload heals the store.
    c.request("SUBMIT %s -- true" % fw(h, len(data), "d")) \
        .expect_err("not-found")
    put(c, data).expect_ok("stored")
    check(get_all(c, h) == data, "the healed blob reads back whole")
    # A resumed GET (on a new connection, from the middle) still checks
    # the whole blob before its end.
    with open(blob_file(b, h), "r+b") as f:
        f.seek(5)
        f.write(b"\x00\x01")
    c2 = b.client()
    r = c2.request("GET %s %d %d" % (h, 2 * CHUNK, CHUNK))
    r.expect_err("bad-state")
    check("blob %s is CORRUPT" % h in b.current_log(), "logged")


# ---------------------------------------------------------------------------
# Reference counts, retention, restarts

def test_blob_refcount_retention(ctx):
    """A blob no kept job names is removed after --blob-grace; one a kept
    job names is never removed, across restarts; when its last job is
    forgotten after its retention, it goes too."""
    b = Broker(ctx, args=["--retention", "1s", "--blob-grace", "1s"]).start()
    c = b.client()
    A, B_, C = (os.urandom(1000 + i) for i in range(3))
    for d in (A, B_, C):
        put(c, d).expect_ok("stored")
    ha, hb, hc = sha(A), sha(B_), sha(C)
    # j1 names A and B and will finish; j2 names A and stays queued in a
    # paused queue; an array names B once for all its tasks.
    j1 = c.request("SUBMIT q=run %s %s -- true" % (fw(ha, len(A), "a"),
                   fw(hb, len(B_), "b"))).one_id()
    j2 = c.request("SUBMIT q=held %s -- true" % fw(ha, len(A), "a")) \
        .one_id()
    c.request("PAUSE held").expect_ok()
    w = b.worker("w1")
    job = w.take1(queues="run")
    eq(job["id"], str(j1), "j1 taken")
    w.finish_job(job).expect_ok("done")
    # C, named by nothing, goes after the grace; B after j1's retention
    # and then the grace; A stays.
    wait_until(lambda: hc not in stored(b) and hb not in stored(b), 15,
               "C and B removed")
    eq(have(c, ha, hb, hc), ["yes", "0", "0"], "HAVE after the sweep")
    eq(c.status1(j1)["kind"] if False else
       c.request("STATUS %d" % j1).expect_items(1)[0].kind, "missing",
       "j1 forgotten")
    time.sleep(1.5)
    eq(list(stored(b)), [ha], "A stays while j2 is kept")
    # Across a restart (and a kill -9): still named, still there.
    b.restart()
    time.sleep(1.5)
    b.kill9()
    b.start()
    time.sleep(1.5)
    c = b.client()
    eq(have(c, ha), ["yes"], "A after restarts")
    check(get_all(c, ha) == A, "A reads back")
    # j2's end lets A go.
    c.request("CANCEL %d" % j2).expect_ok("1")
    wait_until(lambda: ha not in stored(b), 15, "A removed after j2")
    eq(stored(b), {}, "the store is empty")
    check("no kept job names" in b.log(), "the sweep logs")


test_blob_refcount_retention.timeout = 90


def test_blob_grace_for_upload(ctx):
    """An uploaded blob waits the grace for the submit naming it, also
    across a restart (from its file's time), then is kept by that job;
    an orphan found at start-up is not kept for ever."""
    b = Broker(ctx, args=["--blob-grace", "3s"]).start()
    c = b.client()
    a, o = os.urandom(5000), os.urandom(6000)
    put(c, a).expect_ok("stored")
    put(c, o).expect_ok("stored")
    b.restart()
    c = b.client()
    eq(have(c, sha(a), sha(o)), ["yes", "yes"], "both within the grace")
    jid = c.request("SUBMIT q=p %s -- true" % fw(sha(a), len(a), "a")) \
        .one_id()
    wait_until(lambda: sha(o) not in stored(b), 15, "the orphan removed")
    time.sleep(3.5)
    eq(have(c, sha(a)), ["yes"], "the named one is kept")
    eq(c.status1(jid)["state"], "queued", "its job")
    # An orphan left on disk by an older broker (say, one whose job was
    # forgotten just before a crash) goes too: by its mtime.
    b.stop()
    x = os.urandom(100)
    hx = sha(x)
    os.makedirs(os.path.dirname(blob_file(b, hx)), exist_ok=True)
    with open(blob_file(b, hx), "wb") as f:
        f.write(x)
    old = time.time() - 3600
    os.utime(blob_file(b, hx), (old, old))
    b.start()
    c = b.client()
    wait_until(lambda: hx not in stored(b), 15, "an old orphan removed")
    eq(have(c, sha(a)), ["yes"], "the named one still kept")


test_blob_grace_for_upload.timeout = 90


def test_blob_missing_at_startup(ctx):
    """A blob a kept job names that is gone from disk at start-up is
    logged loudly; the broker starts, and a new upload heals it."""
    b = ctx.broker
    c = b.client()
    d = os.urandom(3000)
    put(c, d).expect_ok("stored")
    c.request("SUBMIT %s -- true" % fw(sha(d), len(d), "d")).one_id()
    b.stop()
    os.unlink(blob_file(b, sha(d)))
    b.start()
    check("MISSING" in b.current_log() and sha(d) in b.current_log(),
          "the log names the missing blob")
    c = b.client()
    eq(have(c, sha(d)), ["0"], "HAVE of a missing blob")
    put(c, d).expect_ok("stored")


# ---------------------------------------------------------------------------
# Views

def test_blob_http_views(ctx):
    """/api/jobs/ID and the dashboard's job page show a job's files and
    what was collected from it."""
    import json
    import urllib.request
    from harness import free_port
    hp = free_port()
    b = Broker(ctx, args=["--http", str(hp)]).start()
    c = b.client()
    inp = b"x" * 1234
    out = b"y" * 56
    put(c, inp).expect_ok("stored")
    put(c, out).expect_ok("stored")
    jid = c.request("SUBMIT %s collect=%%2A.out collect=%%2A.png -- true" %
                    fw(sha(inp), len(inp), "data/in <1>.txt")).one_id()
    w = b.worker("w1")
    w.finish_job(w.take1(), got=enc("%s:%d:600:r.out" % (sha(out),
                 len(out))) + " nomatch=%2A.png collerr=" +
                 enc("big.out: too large")).expect_ok("done")

    def fetch(path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (hp, path),
                                    timeout=10) as r:
            return r.read().decode()
    j = json.loads(fetch("/api/jobs/%d" % jid))
    eq(j["files"], [{"name": "data/in <1>.txt", "size": 1234,
                     "mode": "644", "hash": sha(inp)}], "files")
    eq(j["collect"], ["*.out", "*.png"], "collect")
    eq(j["collected"], [{"name": "r.out", "size": 56, "mode": "600",
                         "hash": sha(out)}], "collected")
    eq(j["nomatch"], ["*.png"], "nomatch")
    eq(j["collect_errors"], ["big.out: too large"], "collect_errors")
    page = fetch("/jobs/%d" % jid)
    for s in ("data/in &lt;1&gt;.txt", "1234", "r.out", "matched nothing",
              "big.out: too large"):
        check(s in page, "the job page shows %r" % s)
    j = json.loads(fetch("/api/jobs/%d" % c.submit(["true"])))
    eq((j["files"], j["collected"]), ([], []), "a job without files")


def test_blob_idle_upload_removed(ctx):
    """An upload left without a chunk for the grace is removed (and its
    reservation let go); one that goes on is not."""
    b = Broker(ctx, args=["--blob-grace", "1s", "--blob-max", "3M"]).start()
    c = b.client()
    idle, busy = os.urandom(2 << 20), os.urandom(1 << 20)
    hi, hb = sha(idle), sha(busy)
    c.request("PUT %s %d 0 1000" % (hi, len(idle)), idle[:1000]) \
        .expect_ok(1000)
    off = 0
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        c.request("PUT %s %d %d 1000" % (hb, len(busy), off),
                  busy[off:off + 1000]).expect_ok(off + 1000)
        off += 1000
        time.sleep(0.1)
    eq(have(c, hi, hb), ["0", str(off)], "the idle upload is gone")
    eq(part_files(b), [hb + ".part"], "its partial file too")
    eq(c.stats()["blob_reserved"], str(len(busy)), "its reservation too")
    c.request("PUT %s %d %d %d" % (hb, len(busy), off, len(busy) - off),
              busy[off:]).expect_ok("stored")
    put(c, idle).expect_ok("stored")


def test_blob_uploads_cannot_exhaust_descriptors(ctx):
    """Uploads being written keep their file open; past the share of
    descriptors kept for them a PUT is refused with ERR limit, and the
    journal can still open segment after segment."""
    b = Broker(ctx, ["--segment-size", "4096"], nofile=120).start()
    cap = 120 // 2 - 32         # the journal's 32 of the other half
    blobs = [os.urandom(100000) for _ in range(cap + 1)]
    conns = []
    for d in blobs[:cap]:
        c = b.client()
        c.send(("PUT %s %d 0 %d\r\n" % (sha(d), len(d), len(d))).encode() +
               d[:1000])
        conns.append(c)
    c = b.client()
    wait_until(lambda: have(c, *[sha(d) for d in blobs[:cap]]) ==
               ["1000"] * cap, 10, "every upload started")
    last = blobs[cap]
    r = c.request("PUT %s %d 0 %d" % (sha(last), len(last), len(last)),
                  last)
    r.expect_err("limit")
    check("at once" in r.line, "says why: %r" % r)
    eq(have(c, sha(last)), ["0"], "nothing of the refused one")
    for i in range(100):
        c.submit(["x" * 60, str(i)])
    check(len(b.segments()) > 3, "segments: %r" % b.segments())
    for k, d in zip(conns, blobs[:cap]):
        k.send(d[1000:] + b"\r\n")
        k.read_reply().expect_ok("stored")
    put(c, last).expect_ok("stored")
    check(b.running(), "simqd runs")


def test_blob_words_survive_compaction(ctx):
    """A job's files and collected outputs go into the snapshot: after
    compactions and a kill -9 the job still names its blobs, which are
    kept."""
    b = Broker(ctx, ["--segment-size", "4096", "--compact-min", "8K",
                     "--blob-grace", "1s"]).start()
    c = b.client()
    d, o = os.urandom(5000), os.urandom(700)
    put(c, d).expect_ok("stored")
    put(c, o).expect_ok("stored")
    jid = c.request("SUBMIT %s collect=%%2A.out -- true" %
                    fw(sha(d), len(d), "in/d")).one_id()
    w = b.worker("w1")
    w.finish_job(w.take1(), got=enc("%s:%d:644:r.out" % (sha(o), len(o)))) \
        .expect_ok("done")
    for i in range(400):
        c.submit(["filler", "x" * 100, str(i)])
    wait_until(lambda: int(c.stats()["snapshots"]) >= 1, 30,
               "a compaction")
    b.kill9()
    b.start()
    c = b.client()
    st = c.status1(jid)
    eq(st.multi.get("file"), ["%s:%d:644:in/d" % (sha(d), len(d))],
       "file= after compaction and kill -9")
    eq(st.multi.get("got"), ["%s:%d:644:r.out" % (sha(o), len(o))],
       "got= after compaction and kill -9")
    time.sleep(1.5)
    eq(have(c, sha(d), sha(o)), ["yes", "yes"], "both kept")


def test_blob_words_with_resources(ctx):
    """Files and resources in the same options record (both behind flags
    of its dependency count) read back together after a restart."""
    b = ctx.broker
    c = b.client()
    d = os.urandom(321)
    put(c, d).expect_ok("stored")
    jid = c.request("SUBMIT cpus=2 mem=1000000 after=%d %s collect=o -- "
                    "true" % (c.submit(["true"]), fw(sha(d), len(d), "f"))) \
        .one_id()
    before = c.status1(jid)
    b.kill9()
    b.start()
    c = b.client()
    st = c.status1(jid)
    for k in ("cpus", "mem", "file", "collect", "after"):
        eq(st.multi.get(k), before.multi.get(k), "%s after a restart" % k)
    eq(st.multi.get("file"), ["%s:%d:644:f" % (sha(d), len(d))], "file=")


def test_blob_resumed_get_does_not_stall(ctx):
    """A download of a 256 MiB blob resumed near its end, on a new
    connection: the broker must hash the 252 MiB before it to check the
    whole blob, and did it in one go (0.2 s and more of a stalled loop:
    0.8 s a GB).  Now it hashes a MiB a loop pass while the chunks are
    served, and only the last one waits, so a PING on another connection
    answers meanwhile within 100 ms: a step is a millisecond, the rest is
    this machine's load.  (The hashing is libcrypto's, not instrumented:
    the bound is not scaled for a sanitized build.)  The bytes served are
    right, requests pipelined behind them come after, and a byte damaged
    deep in the prefix is still caught at the end."""
    b = ctx.broker
    c = b.client()
    piece = os.urandom(1 << 20)
    data = b"".join(bytes([i]) + piece[1:] for i in range(256))
    h = sha(data)
    put(c, data).expect_ok("stored")
    probe = b.client()
    for off, chunks in ((len(data) - CHUNK, 1), (len(data) - 3 * CHUNK, 3)):
        g = b.client()
        g.send(b"".join(("GET %s %d %d\r\n" % (h, off + i * CHUNK, CHUNK))
                        .encode() for i in range(chunks)))
        lat = []
        replies = []
        t0 = time.monotonic()
        while len(replies) < chunks:
            if len(g.buf) > g.pos or \
                    select.select([g.sock], [], [], 0.001)[0]:
                replies.append(g.read_reply())
                continue
            p0 = time.monotonic()
            probe.request("PING").expect_ok()
            lat.append(time.monotonic() - p0)
            check(time.monotonic() - t0 < 30, "the GET did not answer")
        total = time.monotonic() - t0
        check(lat, "PINGs sent while the GET hashed")
        for i, r in enumerate(replies):
            eq(r.kind, "DATA", "chunk %d: %r" % (i, r))
            check(r.data == data[off + i * CHUNK:off + (i + 1) * CHUNK],
                  "chunk %d's bytes" % i)
        g.request("PING").expect_ok()
        check(max(lat) < 0.1, "a PING waited %.0f ms while a resumed GET "
              "hashed its prefix (%d PINGs, %.2f s)" % (
                  max(lat) * 1000, len(lat), total))
        g.close()
    # Behind the last chunk, a pipelined request: answered after it.
    g = b.client()
    g.send(("GET %s %d %d\r\nPING\r\n" % (h, len(data) - CHUNK, CHUNK))
           .encode())
    r = g.read_reply()
    check(r.kind == "DATA" and r.data == data[-CHUNK:], "the last chunk")
    g.read_reply().expect_ok()
    # Damage deep in the prefix: the resumed GET's end is refused.
    with open(blob_file(b, h), "r+b") as f:
        f.seek(100 << 20)
        f.write(b"\xff")
    g = b.client()
    g.settimeout(30 * ctx.slow)
    r = g.request("GET %s %d %d" % (h, len(data) - CHUNK, CHUNK))
    r.expect_err("bad-state")
    check("corrupt" in r.line, r.line)
    eq(have(c, h), ["0"], "no longer stored")


test_blob_resumed_get_does_not_stall.timeout = 120


def test_blob_kept_when_the_record_ending_its_last_job_fails(ctx):
    """A blob is never unlinked before the record that ends its last job
    is durable.  The CANCEL of the one job naming it is made to fail its
    journal write (--fail-writes-after: the broker exits, as it must),
    with a --retention of 0 and a grace of 10 ms for blobs no kept job
    names, so that nothing but the order of things keeps the blob: the
    next start has the job still queued and the blob on disk, whole.  A
    CANCEL that is written lets it go."""
    args = ["--retention", "0", "--blob-grace", "10ms"]
    b = Broker(ctx, args=args).start()
    c = b.client()
    data = os.urandom(100000)
    h = sha(data)
    put(c, data).expect_ok("stored")
    jid = c.request("SUBMIT %s -- true" % fw(h, len(data), "in")).one_id()
    c.close()
    b.stop()
    b.args = args + ["--fail-writes-after", "1"]
    b.start()
    c = b.client()
    c.request("CANCEL %d" % jid).expect_err("server")
    rc = b.wait_exit(20 * ctx.slow)
    check(rc != 0, "the broker exits after a failed write: %r" % rc)
    eq(stored(b), {h: len(data)}, "the blob after the failed commit")
    b.args = args
    b.start()
    c = b.client()
    eq(c.status1(jid)["state"], "queued", "the job, its cancel lost")
    time.sleep(1.5)
    eq(have(c, h), ["yes"], "HAVE after the restart")
    check(get_all(c, h) == data, "the blob reads back whole")
    c.request("CANCEL %d" % jid).expect_ok("1")
    wait_until(lambda: h not in stored(b), 10 * ctx.slow,
               "the blob removed once the cancel is durable")
