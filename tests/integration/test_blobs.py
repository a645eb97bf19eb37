"""
Files that travel with jobs, the broker's side: the blob store in
DATADIR/blobs and HAVE, PUT and GET, spoken over real sockets to a real
simqd; the file=/collect= words of submits and the got=/nomatch=/collerr=
of FINISH; reference counts across restarts and retention; full stores,
full disks, kill -9 mid-upload and blobs corrupted on disk.
"""

import hashlib
import os
import shutil
import subprocess
import time

from harness import (Broker, ConnectionClosed, TestFailure, check, eq, enc,
                     submit_line, wait_until)

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
    c2 = b.client()
    eq(have(c2, h), [str(CHUNK)], "HAVE after the cut")
    eq(part_files(b), [h + ".part"], "the partial")
    r = c2.request("PUT %s %d 0 10" % (h, len(data)), data[:10])
    r.expect_err("bad-request")
    check(("held %d" % CHUNK) in r.line, "says what is held: %r" % r)
    eq(have(c2, h), [str(CHUNK)], "a wrong offset changes nothing")
    put(c2, data, offset=CHUNK).expect_ok("stored")
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
