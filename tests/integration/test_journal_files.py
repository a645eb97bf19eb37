"""
The journal's files as an operator meets them: a journal from a newer
simqd (refused, even with --force), leftovers and strangers in the
directory, empty and half-written segments, a damaged snapshot.
"""

import os
import re
import struct
import time

from harness import Broker, TestFailure, check, eq, tail
from test_durability import check_ok, list_jobs, segment_records


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _T[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def frame_crc_ok(data, off):
    n, crc = struct.unpack_from("<II", data, off)
    return crc32c(data[off + 8:off + 8 + n], crc32c(data[off:off + 4])) == \
        crc


def rewrite_header_version(path, version):
    """Sets the segment header's format version and fixes its checksum."""
    data = bytearray(open(path, "rb").read())
    n = struct.unpack_from("<I", data, 0)[0]
    check(data[8] == 1 and data[9:16] == b"SIMQJNL", "segment header")
    struct.pack_into("<I", data, 16, version)
    crc = crc32c(bytes(data[8:8 + n]), crc32c(bytes(data[0:4])))
    struct.pack_into("<I", data, 4, crc)
    open(path, "wb").write(bytes(data))


def make_journal(ctx, n=20, restarts=0):
    b = ctx.broker
    c = b.client()
    ids = [c.submit(["job", "j%d" % i]) for i in range(n)]
    c.close()
    for _ in range(restarts):
        b.restart()
    b.stop()
    return b, ids


def test_checksums_are_crc32c(ctx):
    """The harness's own CRC must match the journal's, or the tests that
    forge records below would test nothing."""
    b, ids = make_journal(ctx, 5)
    path = os.path.join(b.journal_dir(), b.segments()[-1])
    data = open(path, "rb").read()
    recs = segment_records(path)
    check(len(recs) >= 6, "records: %r" % recs)
    for off, ln, typ in recs:
        check(frame_crc_ok(data, off), "CRC-32C of the frame at %d" % off)


def journal_version():
    """JOURNAL_VERSION of this source tree (broker/journal.h)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "broker", "journal.h")) as f:
        for line in f:
            m = re.match(r"#define\s+JOURNAL_VERSION\s+(\d+)", line)
            if m:
                return int(m.group(1))
    raise TestFailure("no JOURNAL_VERSION in broker/journal.h")


def test_newer_journal_is_refused_even_with_force(ctx):
    b, ids = make_journal(ctx, 10)
    segs = b.segments()
    path = os.path.join(b.journal_dir(), segs[-1])
    rewrite_header_version(path, journal_version() + 1)
    saved = {s: open(os.path.join(b.journal_dir(), s), "rb").read()
             for s in segs}
    for extra in ([], ["--force"]):
        b.spawn(extra)
        rc = b.wait_exit(20 * ctx.slow)
        check(rc != 0, "simqd %s started on a journal from a newer version"
              % extra)
        log = b.current_log()
        check("version" in log.lower() or "newer" in log.lower(),
              "the message should say the journal is newer:\n%s" % tail(log))
        now = {s: open(os.path.join(b.journal_dir(), s), "rb").read()
               for s in b.segments()}
        eq(now, saved, "simqd %s changed the journal" % extra)
    rc, out = b.run_check()
    check(rc != 0, "--check must fail on a newer journal:\n%s" % out)


def test_leftovers_and_strangers_in_the_journal_dir(ctx):
    b, ids = make_journal(ctx, 10)
    jd = b.journal_dir()
    last = b.segments()[-1]
    seq = int(last[:16], 16)
    tmp = os.path.join(jd, "%016x.seg.tmp" % (seq + 5))
    open(tmp, "wb").write(b"half a snapshot")
    stranger = os.path.join(jd, "README")
    open(stranger, "w").write("hello")
    check_ok(b, "with leftovers")
    check(os.path.exists(tmp), "--check must not remove anything")
    b.start()
    c = b.client()
    eq(len(list_jobs(c)), 10, "jobs")
    check(not os.path.exists(tmp), "a *.seg.tmp leftover is removed")
    check(os.path.exists(stranger), "a file that is not the journal's is "
          "left alone")


def test_empty_and_headerless_last_segment(ctx):
    """Segments are born as *.seg.tmp with their header, so an empty or
    headerless *.seg is damage, not a crash: simqd may refuse it (naming
    --force), but --force must lose nothing before it."""
    b, ids = make_journal(ctx, 10)
    jd = b.journal_dir()
    n = 10
    for content in (b"", b"\x18\x00\x00"):
        seq = int(b.segments()[-1][:16], 16)
        path = os.path.join(jd, "%016x.seg" % (seq + 1))
        open(path, "wb").write(content)
        b.spawn()
        time.sleep(0.5 * ctx.slow)
        if not b.running():
            check("--force" in b.current_log(), "a refusal names --force:"
                  "\n%s" % tail(b.current_log()))
            b.start(["--force"])
        else:
            b.kill9()
            b.start()
        c = b.client()
        eq(len(list_jobs(c)), n, "jobs with a last segment of %d bytes" %
           len(content))
        c.submit(["job", "more"])
        n += 1
        c.close()
        b.stop()
    c = b.start().client()
    eq(len(list_jobs(c)), n, "jobs")
    check_ok(b, "at the end")


def test_damaged_snapshot_segment(ctx):
    b = ctx.start_broker(["--compact-min", "4K", "--segment-size", "4096"])
    c = b.client()
    ids = [c.submit(["job", "s%d" % i, "x" * 60]) for i in range(300)]
    c.close()
    b.stop()
    # Find the snapshot segment (flags bit 1 in its header).
    snap = None
    for s in b.segments():
        data = open(os.path.join(b.journal_dir(), s), "rb").read()
        if len(data) >= 32 and struct.unpack_from("<I", data, 28)[0] & 1:
            snap = s
    check(snap is not None, "no snapshot segment among %r (log:\n%s)" %
          (b.segments(), tail(b.log())))
    path = os.path.join(b.journal_dir(), snap)
    recs = segment_records(path)
    check(len(recs) > 10, "snapshot records")
    off, ln, _ = recs[len(recs) // 2]
    data = bytearray(open(path, "rb").read())
    data[off + ln - 2] ^= 0x01
    open(path, "wb").write(bytes(data))
    b.spawn()
    rc = b.wait_exit(20 * ctx.slow)
    check(rc != 0, "simqd started on a damaged snapshot")
    check("--force" in b.current_log(), "mentions --force:\n%s" %
          tail(b.current_log()))
    rc, out = b.run_check()
    check(rc != 0, "--check must fail:\n%s" % out)
    b.start(["--force"])
    c = b.client()
    n = len(list_jobs(c))
    check(0 < n < 300, "--force keeps what comes before the damage: %d of "
          "300 jobs" % n)
    c.submit(["job", "after"])
    c.close()
    b.restart()
    eq(len(list_jobs(b.client())), n + 1, "jobs after the forced start")


def snapshot_segments(b):
    out = []
    for s in b.segments():
        data = open(os.path.join(b.journal_dir(), s), "rb").read()
        if len(data) >= 32 and struct.unpack_from("<I", data, 28)[0] & 1:
            out.append(s)
    return out


def test_force_moves_the_cut_aside_and_never_reuses_ids(ctx):
    """A byte flipped in the middle of a snapshot segment that ten intact
    segments follow: --force keeps what comes before the damage, moves
    the later segments (and a copy of the damaged one) to journal/cut-*/
    rather than deleting them, and hands out no id that any of them
    names, then or after later restarts."""
    b = ctx.start_broker(["--compact-min", "4K", "--segment-size", "4096"])
    c = b.client()
    for i in range(300):
        c.submit(["job", "s%d" % i, "x" * 60])
    c.close()
    b.stop()
    snaps = snapshot_segments(b)
    check(snaps, "no snapshot segment among %r" % b.segments())
    snap = snaps[-1]
    # No more compaction: the later segments stay as written.
    b.args = ["--compact-min", "1G", "--segment-size", "4096"]
    c = b.start().client()
    acked = [int(c.submit(["job", "t%d" % i, "y" * 60])) for i in range(400)]
    c.close()
    b.stop()
    segs = b.segments()
    later = segs[segs.index(snap) + 1:]
    check(len(later) >= 10, "ten segments after the snapshot: %r" % segs)
    jdir = b.journal_dir()
    before = {s: open(os.path.join(jdir, s), "rb").read() for s in later}
    path = os.path.join(jdir, snap)
    recs = segment_records(path)
    off, ln, _ = recs[len(recs) // 2]
    data = bytearray(open(path, "rb").read())
    data[off + ln - 2] ^= 0x01
    open(path, "wb").write(bytes(data))
    damaged = bytes(data)

    rc, out = b.run_check()
    check(rc != 0, "--check must fail:\n%s" % out)
    b.start(["--force"])
    log = b.current_log()
    cuts = [d for d in os.listdir(jdir) if d.startswith("cut-")]
    eq(len(cuts), 1, "one cut-* directory in %s: %r" % (jdir, os.listdir(jdir)))
    cut = os.path.join(jdir, cuts[0])
    for s, blob in before.items():
        # (The new segment after the cut takes the first name again.)
        p = os.path.join(jdir, s)
        check(not os.path.exists(p) or open(p, "rb").read() != blob,
              "%s is no longer in the journal" % s)
        eq(open(os.path.join(cut, s), "rb").read(), blob,
           "%s moved aside intact" % s)
    eq(open(os.path.join(cut, snap), "rb").read(), damaged,
       "the damaged segment is kept, as it was")
    check("moved" in log and cuts[0] in log, "the log says where:\n%s" %
          tail(log))
    c = b.client()
    new = int(c.submit(["job", "after"]))
    check(new > max(acked), "after --force the next id is %d, but ids up "
          "to %d were acknowledged" % (new, max(acked)))
    c.close()
    # The ids stay used after plain restarts too (the cut segments are
    # read again), and after a kill -9.
    b.args = ["--compact-min", "4K", "--segment-size", "4096"]
    b.restart()
    c = b.client()
    new2 = int(c.submit(["job", "after2"]))
    check(new2 > new, "after a restart: id %d after %d" % (new2, new))
    c.close()
    b.kill9()
    c = b.start().client()
    new3 = int(c.submit(["job", "after3"]))
    check(new3 > new2, "after a kill -9: id %d after %d" % (new3, new2))
    eq(c.status1(str(new)).argv, ["job", "after"], "the job after the cut")
    c.close()
    rc, out = b.run_check()
    eq(rc, 0, "--check after the forced start:\n%s" % out)


test_force_moves_the_cut_aside_and_never_reuses_ids.timeout = 120
