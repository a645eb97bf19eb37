"""
Security: loopback by default, a token for anything else (or an explicit
--insecure), and the HELLO handshake when a token is set.
"""

import os
import socket

from harness import Broker, Client, check, eq, free_port, run_simqd, tail


def listening_addrs(port):
    """Local addresses (hex, as in /proc/net/tcp*) listening on port."""
    out = []
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(fn).read().splitlines()[1:]
        except OSError:
            continue
        for l in lines:
            f = l.split()
            addr, p = f[1].split(":")
            if int(p, 16) == port and f[3] == "0A":     # LISTEN
                out.append(addr)
    return out


def test_loopback_by_default(ctx):
    b = ctx.broker
    addrs = listening_addrs(b.port)
    check(addrs, "nothing listens on port %d" % b.port)
    for a in addrs:
        check(a in ("0100007F", "00000000000000000000000001000000"),
              "the default listener must be loopback only, found %r" % addrs)


def test_any_address_needs_a_token(ctx):
    d = ctx.mkdtemp("data")
    port = free_port()
    rc, out = run_simqd(ctx, ["-d", d, "-p", str(port), "-l", "0.0.0.0"])
    check(rc != 0, "simqd -l 0.0.0.0 without a token started (exit %d)" % rc)
    check("--token-file" in out and "--insecure" in out,
          "the message should say what to do:\n%s" % out)
    eq(listening_addrs(port), [], "nothing may have listened")
    # --insecure allows it.
    b = Broker(ctx, ["--insecure"], listen="0.0.0.0").start()
    check("00000000" in listening_addrs(b.port), "listens on 0.0.0.0: %r" %
          listening_addrs(b.port))
    c = b.client()
    c.request("PING").expect_ok()
    c.submit(["x"])
    c.close()
    b.stop()
    # So does a token.
    tok = ctx.newfile("token")
    open(tok, "w").write("s3cret\n")
    b = Broker(ctx, ["--token-file", tok], listen="0.0.0.0").start()
    c = b.client()
    c.request("HELLO 1 s3cret").expect_ok("simq", "1")
    c.request("PING").expect_ok()


def test_token_handshake(ctx):
    tok = ctx.newfile("token")
    # Trailing newline and spaces are not part of the token; a space and
    # a % inside are, encoded on the wire.
    open(tok, "w").write("s3cret tok%x \n")
    wire = "s3cret%20tok%25x"
    b = ctx.start_broker(["--token-file", tok])
    c = b.client()
    # Before HELLO: PING and QUIT work, everything else is refused.
    c.request("PING").expect_ok()
    for line in ("SUBMIT -- x", "STATUS 1", "LIST", "STATS", "QUEUES",
                 "WORKERS", "WORKER w", "TAKE 1 0 default", "HEARTBEAT",
                 "CANCEL 1", "RETRY 1", "PAUSE q", "RESUME q", "WAIT 0 1",
                 "OUTPUT 1 stdout", "FAIL 1 1 x", "RELEASE 1 1"):
        c.request(line).expect_err("auth")
    c.request("BATCH 2", b"x\n").expect_err("auth")
    c.request("FINISH 1 1 exit=0 0", b"").expect_err("auth")
    # Protocol errors still come first and keep the connection.
    c.request("FOO").expect_err("unknown-command")
    c.request("PING").expect_ok()
    c.request("HELLO 7 %s" % wire).expect_err("version")
    c.request("PING").expect_ok()
    # The right token.
    c.request("HELLO 1 %s" % wire).expect_ok("simq", "1")
    jid = c.submit(["x"])
    eq(jid, 1, "the refused SUBMIT did not create a job")
    eq(c.status1(jid)["state"], "queued", "works after HELLO")
    # A wrong token: ERR auth, then the connection is closed.
    for bad in ("HELLO 1 wrong", "HELLO 1", "HELLO 1 s3cret",
                "HELLO 1 s3cret%20tok%25", "HELLO 1 s3cret%20tok%25xx",
                "HELLO 1 %"):
        d = b.client()
        d.send(Client.frame(bad) + b"PING\r\nSUBMIT -- sneaky\r\n")
        d.read_reply().expect_err("auth")
        check(d.at_eof(5), "%r: the connection must close after ERR auth"
              % bad)
        d.close()
    eq(len(c.request("LIST").expect_items()), 1, "nothing sneaked in")
    # A worker with the token.
    w = b.client()
    w.request("HELLO 1 %s" % wire).expect_ok("simq", "1")
    w.request("WORKER w").expect_ok()
    eq(len(w.request("TAKE 1 0 default").expect_items()), 1, "took the job")
    # QUIT before HELLO works.
    q = b.client()
    q.request("QUIT").expect_ok()
    check(q.at_eof(5), "QUIT closes")


def test_bad_token_files(ctx):
    d = ctx.mkdtemp("data")
    empty = ctx.newfile("empty")
    open(empty, "w").write(" \n")
    for args, word in ((["--token-file", empty], "empty"),
                       (["--token-file", os.path.join(d, "nope")], "nope")):
        rc, out = run_simqd(ctx, ["-d", d, "-p", str(free_port())] + args)
        check(rc != 0, "simqd %s started" % args)
        check(word in out, "the message should name the problem:\n%s" % out)


def test_which_addresses_count_as_loopback(ctx):
    for addr, ok in (("localhost", True), ("127.0.0.2", True),
                     ("::", False), ("0.0.0.0", False)):
        d = ctx.mkdtemp("data")
        if ok:
            host = addr if addr[0].isdigit() else "127.0.0.1"
            b = Broker(ctx, [], listen=addr, host=host).start()
            c = b.client()
            c.request("PING").expect_ok()
            c.close()
            b.stop()
        else:
            rc, out = run_simqd(ctx, ["-d", d, "-p", str(free_port()),
                                      "-l", addr])
            check(rc != 0 and "--token-file" in out,
                  "-l %s without a token: exit %d:\n%s" % (addr, rc, out))
