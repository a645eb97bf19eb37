"""
harness.py: runs a real simqd and speaks the simq protocol to it.

Used by the integration tests (tests/integration/test_*.py), which run.py
runs one per child process.  Everything here has a timeout: a socket read,
a wait for a process, a wait for a condition.  Nothing may hang.

    Broker      one simqd: start on a free loopback port in a temp data dir,
                wait until it accepts, stop (SIGTERM, checked) or kill -9,
                restart on the same data dir, --check.
    Client      one connection: send raw bytes or a request line (+ body),
                read replies of the four shapes, pipeline many requests.
    Reply, Item parsed replies; items are dicts with .kind and .argv.
    Ctx         what a test function gets: the options of the run, a temp
                directory factory, brokers it started (stopped and checked
                for sanitizer reports after the test).
"""

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

# Patterns that mean a sanitizer found something.
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:",
                      "LeakSanitizer", "ERROR: UndefinedBehaviorSanitizer")


class TestFailure(AssertionError):
    pass


def check(cond, msg="check failed"):
    """assert that survives python -O and says what went wrong."""
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what="value"):
    if got != want:
        if isinstance(got, list) and isinstance(want, list) and \
                len(got) + len(want) > 6:
            extra = [x for x in got if x not in want]
            lacking = [x for x in want if x not in got]
            raise TestFailure("%s: lists differ (%d vs %d expected); "
                              "unexpected: %r; missing: %r" %
                              (what, len(got), len(want), extra[:5],
                               lacking[:5]))
        raise TestFailure("%s: expected %r, got %r" % (what, want, got))


def wait_until(cond, timeout, what="condition", interval=0.01):
    """Polls cond() until it is true; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %.1fs waiting for %s" %
                              (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Words

_LITERAL = set(range(0x21, 0x7f)) - {ord("%")}
_LITERAL |= set(range(0x80, 0x100))


def enc(s):
    """Encodes a str or bytes as a protocol word (str)."""
    if isinstance(s, str):
        s = s.encode("utf-8", "surrogateescape")
    if len(s) == 0:
        return "%"
    out = []
    for b in s:
        if b in _LITERAL:
            out.append(bytes([b]))
        else:
            out.append(b"%%%02X" % b)
    return b"".join(out).decode("utf-8", "surrogateescape")


def dec_bytes(w):
    """Decodes a word (str or bytes) to bytes; raises ValueError."""
    if isinstance(w, str):
        w = w.encode("utf-8", "surrogateescape")
    if w == b"%":
        return b""
    out = bytearray()
    i = 0
    while i < len(w):
        c = w[i]
        if c == 0x25:
            h = w[i + 1:i + 3]
            if len(h) != 2:
                raise ValueError("bad escape in %r" % w)
            out.append(int(h, 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def dec(w):
    return dec_bytes(w).decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------
# Replies

class Item(dict):
    """One item line: kind, key=value pairs (decoded; a repeated key keeps
    every value in .multi[key]), and argv after '--' (decoded)."""

    def __init__(self, line):
        super().__init__()
        self.line = line
        words = line.split(" ")
        self.kind = words[0]
        self.argv = None
        self.multi = {}
        for i, w in enumerate(words[1:], 1):
            if w == "--":
                self.argv = [dec(a) for a in words[i + 1:]]
                break
            if "=" not in w:
                raise TestFailure("item word without '=': %r in %r" %
                                  (w, line))
            k, v = w.split("=", 1)
            v = dec(v)
            self.multi.setdefault(k, []).append(v)
            self[k] = v

    def int(self, k, default=None):
        return int(self[k]) if k in self else default

    def __repr__(self):
        return "Item(%r)" % self.line


class Reply:
    """A reply: .kind is OK, ERR, ITEMS or DATA."""

    def __init__(self, line, items=None, data=None):
        self.line = line
        w = line.split(" ")
        self.kind = w[0]
        self.words = w[1:]
        self.items = items
        self.data = data
        self.code = w[1] if self.kind == "ERR" and len(w) > 1 else None

    @property
    def ok(self):
        return self.kind in ("OK", "ITEMS", "DATA")

    def __repr__(self):
        s = self.line
        if self.items:
            s += " | " + " | ".join(i.line for i in self.items[:5])
            if len(self.items) > 5:
                s += " | ..."
        if self.data is not None:
            s += " | %r" % self.data[:80]
        return "<%s>" % s

    # Assertions that name the reply when they fail.
    def expect_ok(self, *words):
        if self.kind != "OK" or (words and tuple(self.words) != tuple(
                str(x) for x in words)):
            raise TestFailure("expected OK %s, got %r" %
                              (" ".join(map(str, words)), self))
        return self

    def expect_err(self, code):
        if self.kind != "ERR" or self.code != code:
            raise TestFailure("expected ERR %s, got %r" % (code, self))
        check(len(self.words) >= 2, "ERR without a message: %r" % self)
        return self

    def expect_items(self, n=None):
        if self.kind != "ITEMS" or (n is not None and len(self.items) != n):
            raise TestFailure("expected ITEMS %s, got %r" %
                              ("" if n is None else n, self))
        return self.items

    def one_id(self):
        """The id of an 'OK ID' reply, as an int."""
        if self.kind != "OK" or len(self.words) != 1 or \
                not self.words[0].isdigit():
            raise TestFailure("expected OK ID, got %r" % self)
        return int(self.words[0])


class ConnectionClosed(TestFailure):
    pass


class Client:
    """One connection to a broker."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, hello=False):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        if hello:
            self.request("HELLO 1").expect_ok("simq", "1")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def settimeout(self, t):
        self.timeout = t
        self.sock.settimeout(t)

    # Sending.
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        self.sock.sendall(data)

    @staticmethod
    def frame(line, body=None):
        """The bytes of a request: line LF, or line (ending in the body
        length) CR LF body CR LF."""
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        if body is None:
            return line + b"\r\n"
        if isinstance(body, str):
            body = body.encode("utf-8", "surrogateescape")
        return line + b"\r\n" + body + b"\r\n"

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    # Receiving.
    def _fill(self):
        if self.pos > 65536 and self.pos > len(self.buf) // 2:
            del self.buf[:self.pos]
            self.pos = 0
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TestFailure("no reply within %.1fs (socket timeout)" %
                              self.timeout)
        if not chunk:
            raise ConnectionClosed("connection closed by the broker")
        self.buf += chunk

    def readline(self):
        """One CR LF terminated line, without its terminator (str)."""
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 1
                if not line.endswith(b"\r"):
                    raise TestFailure("reply line not ended by CR LF: %r" %
                                      line)
                return line[:-1].decode("utf-8", "surrogateescape")
            self._fill()

    def readexact(self, n):
        while len(self.buf) - self.pos < n:
            self._fill()
        b = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return b

    def read_reply(self):
        line = self.readline()
        kind = line.split(" ", 1)[0]
        if kind == "OK" or kind == "ERR":
            if kind == "ERR":
                check(re.match(r"^ERR [a-z-]+ \S", line),
                      "malformed ERR line: %r" % line)
            return Reply(line)
        if kind == "ITEMS":
            m = re.match(r"^ITEMS (0|[1-9][0-9]*)$", line)
            check(m, "malformed ITEMS line: %r" % line)
            items = [Item(self.readline()) for _ in range(int(m.group(1)))]
            return Reply(line, items=items)
        if kind == "DATA":
            m = re.match(r"^DATA (0|[1-9][0-9]*)$", line)
            check(m, "malformed DATA line: %r" % line)
            data = self.readexact(int(m.group(1)))
            eq(self.readexact(2), b"\r\n", "terminator after DATA bytes")
            return Reply(line, data=data)
        raise TestFailure("reply of unknown shape: %r" % line)

    def at_eof(self, timeout=5.0):
        """True if the broker closed the connection (and sent nothing
        more) within timeout."""
        if len(self.buf) > self.pos:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(4096)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            try:
                self.sock.settimeout(old)
            except OSError:
                pass
        if chunk:
            self.buf += chunk
            return False
        return True

    def request(self, line, body=None):
        self.send(self.frame(line, body))
        return self.read_reply()

    # Shortcuts.
    def submit(self, argv, **opts):
        """SUBMIT with options (values encoded) and argv; returns the id."""
        return self.request(submit_line(argv, **opts)).one_id()

    def status(self, *ids):
        return self.request("STATUS " + " ".join(map(str, ids))) \
            .expect_items(len(ids))

    def status1(self, jid):
        return self.status(jid)[0]

    def stats(self):
        return self.request("STATS").expect_items(1)[0]

    def pipeline(self, frames, reader=None):
        """Sends every frame (bytes) from a thread while reading as many
        replies here; returns the replies in order."""
        err = []

        def sender():
            try:
                for i in range(0, len(frames), 256):
                    self.sock.sendall(b"".join(frames[i:i + 256]))
            except Exception as e:  # reported below
                err.append(e)

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        replies = []
        try:
            for _ in frames:
                replies.append(self.read_reply())
        finally:
            t.join(self.timeout)
        if err:
            raise TestFailure("sending the pipeline failed: %r" % err[0])
        return replies


def submit_line(argv, **opts):
    parts = ["SUBMIT"]
    for k, v in opts.items():
        if isinstance(v, (list, tuple)):
            for x in v:
                parts.append("%s=%s" % (k, enc(str(x))))
        else:
            parts.append("%s=%s" % (k, enc(str(v))))
    parts.append("--")
    parts += [enc(a) for a in argv]
    return " ".join(parts)


class Worker(Client):
    """A connection registered as a worker."""

    def __init__(self, port, name, lease=None, timeout=10.0, **kw):
        super().__init__(port, timeout=timeout)
        self.name = name
        line = "WORKER " + name
        if lease is not None:
            line += " lease=%d" % lease
        for k, v in kw.items():
            line += " %s=%s" % (k, enc(str(v)))
        r = self.request(line)
        r.expect_ok()
        self.lease = int(r.words[0])

    def take(self, n=1, wait=0, queues="default"):
        """Returns (jobs, drops): job and drop items of one TAKE."""
        r = self.request("TAKE %d %d %s" % (n, wait, queues))
        items = r.expect_items()
        jobs = [i for i in items if i.kind == "job"]
        drops = [i for i in items if i.kind == "drop"]
        check(len(jobs) + len(drops) == len(items),
              "TAKE item of unknown kind: %r" % r)
        for d in drops:
            check(items.index(d) < min([items.index(j) for j in jobs] +
                                       [len(items)]),
                  "drop items must come before jobs: %r" % r)
        return jobs, drops

    def take1(self, wait=0, queues="default"):
        jobs, drops = self.take(1, wait, queues)
        eq(len(jobs), 1, "jobs from TAKE 1")
        return jobs[0]

    def heartbeat(self, *held):
        """held: (id, attempt) pairs or job items. Returns drop items."""
        words = []
        for h in held:
            if isinstance(h, Item):
                words.append("%s:%s" % (h["id"], h["attempt"]))
            else:
                words.append("%s:%s" % h)
        r = self.request(" ".join(["HEARTBEAT"] + words))
        items = r.expect_items()
        for i in items:
            eq(i.kind, "drop", "HEARTBEAT item kind")
        return items

    def finish(self, jid, attempt, exit=0, out=b"", err=b"", res=b"",
               signal_=None, **kw):
        body = bytes(out) + bytes(err) + bytes(res)
        line = "FINISH %s %s" % (jid, attempt)
        if signal_ is not None:
            line += " signal=%d" % signal_
        else:
            line += " exit=%d" % exit
        for k, v in kw.items():
            line += " %s=%s" % (k, v)
        line += " out=%d err=%d res=%d %d" % (len(out), len(err), len(res),
                                              len(body))
        return self.request(line, body)

    def finish_job(self, item, exit=0, **kw):
        return self.finish(item["id"], item["attempt"], exit=exit, **kw)


# ---------------------------------------------------------------------------
# The broker process

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


class Broker:
    """One simqd.  The log (stderr of every start) accumulates in .logpath.
    """

    def __init__(self, ctx, args=(), datadir=None, host="127.0.0.1",
                 listen=None, port=None, nofile=None):
        self.ctx = ctx
        self.simqd = ctx.simqd
        self.args = list(args)
        self.datadir = datadir or os.path.join(ctx.mkdtemp("data"), "d")
        self.logpath = ctx.newfile("simqd.log")
        self.host = host
        self.listen = listen
        self.port = port or free_port()
        self.nofile = nofile    # RLIMIT_NOFILE for simqd, if set
        self.proc = None
        self.starts = 0
        self.logpos = 0		# where the current start's log begins
        ctx.brokers.append(self)

    # Process control.
    def cmdline(self, extra=()):
        cmd = [self.simqd, "-d", self.datadir, "-p", str(self.port)]
        if self.listen is not None:
            cmd += ["-l", self.listen]
        return cmd + self.args + list(extra)

    def spawn(self, extra=()):
        """Starts simqd without waiting for it."""
        check(self.proc is None or self.proc.poll() is not None,
              "broker already running")
        self.logpos = os.path.getsize(self.logpath) if \
            os.path.exists(self.logpath) else 0
        with open(self.logpath, "ab") as lf:
            lf.write(("=== start %d: %s\n" % (self.starts, " ".join(
                self.cmdline(extra)))).encode())
            lf.flush()
            pre = None
            if self.nofile is not None:
                import resource
                n = self.nofile

                def pre():
                    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
            self.proc = subprocess.Popen(
                self.cmdline(extra), stdin=subprocess.DEVNULL, stdout=lf,
                stderr=lf, env=sanitizer_env(), preexec_fn=pre)
        self.starts += 1
        return self.proc

    def start(self, extra=(), timeout=None):
        """Starts simqd and waits until it accepts connections.  If the
        port was taken meanwhile, tries another.

        A connection that succeeds is not enough: after a kill -9 of the
        broker, its compaction child, if it had not yet closed what it
        inherited at the fork, still holds the old listening socket until
        it dies, and the kernel completes connections into that socket's
        backlog which its exit then resets.  So this start's own
        "listening on" line must be in the log first: simqd writes it once
        its bind succeeded, which it cannot while another socket listens
        on the port."""
        timeout = timeout or 15 * self.ctx.slow
        for attempt in range(5):
            self.spawn(extra)
            deadline = time.monotonic() + timeout
            while True:
                rc = self.proc.poll()
                if rc is not None:
                    log = self.current_log()
                    if "cannot listen" in log and "in use" in log.lower() \
                            and attempt < 4:
                        self.port = free_port()
                        break
                    raise TestFailure("simqd exited %d at start:\n%s" %
                                      (rc, tail(log)))
                if self.listening(log=self.current_log()):
                    try:
                        s = socket.create_connection((self.host, self.port),
                                                     timeout=1)
                        s.close()
                        return self
                    except OSError:
                        pass
                if time.monotonic() > deadline:
                    self.kill9()
                    raise TestFailure("simqd did not accept connections "
                                      "within %.0fs:\n%s" %
                                      (timeout, tail(self.current_log())))
                time.sleep(0.01)
        raise TestFailure("could not find a free port")

    def listening(self, log=None):
        """True if this start's log says simqd listens on its port."""
        if log is None:
            log = self.current_log()
        return re.search(r"listening on \S+ port %d," % self.port,
                         log) is not None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def wait_exit(self, timeout=None):
        timeout = timeout or 20 * self.ctx.slow
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise TestFailure("simqd did not exit within %.0fs" % timeout)

    def stop(self, timeout=None):
        """SIGTERM; asserts a prompt exit 0 and a clean shutdown log."""
        check(self.running(), "stop: simqd is not running (exit %r)" %
              (self.proc.poll() if self.proc else None))
        self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        log = self.current_log()
        if rc != 0 or "shut down cleanly" not in log:
            raise TestFailure("simqd did not shut down cleanly (exit %d):\n%s"
                              % (rc, tail(log)))
        self.check_sanitizer()
        return rc

    def kill9(self):
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)

    def restart(self, extra=()):
        if self.running():
            self.stop()
        return self.start(extra)

    def run_check(self, datadir=None, timeout=None):
        """simqd --check; returns (exit code, output)."""
        p = subprocess.run([self.simqd, "--check", "-d",
                            datadir or self.datadir],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout or 30 * self.ctx.slow,
                           env=sanitizer_env())
        out = p.stdout.decode("utf-8", "replace")
        self.ctx.extra_logs.append(("simqd --check", out))
        return p.returncode, out

    # Logs.
    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def current_log(self):
        with open(self.logpath, "rb") as f:
            f.seek(self.logpos)
            return f.read().decode("utf-8", "replace")

    def sanitizer_findings(self):
        return sanitizer_findings(self.log())

    def check_sanitizer(self):
        if self.ctx.sanitized:
            f = self.sanitizer_findings()
            if f:
                raise TestFailure("sanitizer report in simqd's log:\n" +
                                  tail(f, 60))

    # Connections.
    def client(self, **kw):
        return self.ctx.track(Client(self.port, host=self.host,
                                     timeout=self.ctx.io_timeout, **kw))

    def worker(self, name, lease=None, **kw):
        return self.ctx.track(Worker(self.port, name, lease=lease,
                                     timeout=self.ctx.io_timeout, **kw))

    def journal_dir(self):
        return os.path.join(self.datadir, "journal")

    def segments(self):
        d = self.journal_dir()
        return sorted(f for f in os.listdir(d) if f.endswith(".seg"))

    def journal_size(self):
        d = self.journal_dir()
        return sum(os.path.getsize(os.path.join(d, f))
                   for f in self.segments())


def sanitizer_findings(log):
    lines = log.splitlines()
    for i, l in enumerate(lines):
        if any(p in l for p in SANITIZER_PATTERNS):
            return "\n".join(lines[max(0, i - 3):])
    return ""


def tail(s, n=25):
    return "\n".join(s.splitlines()[-n:])


def run_simqd(ctx, args, timeout=None):
    """Runs simqd with args to its end (for usage errors and --check);
    returns (exit code, stdout+stderr)."""
    try:
        p = subprocess.run([ctx.simqd] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           timeout=timeout or 20 * ctx.slow,
                           env=sanitizer_env())
    except subprocess.TimeoutExpired:
        raise TestFailure("simqd %s did not exit" % " ".join(args))
    out = p.stdout.decode("utf-8", "replace")
    if ctx.sanitized:
        f = sanitizer_findings(out)
        if f:
            raise TestFailure("sanitizer report from simqd %s:\n%s" %
                              (" ".join(args), tail(f, 60)))
    return p.returncode, out


def mount_tmpfs(ctx, size):
    """A tmpfs of size ("2m") on a fresh directory, for the tests of a
    full disk.  Returns (its path, a function that unmounts it early);
    the end of the test unmounts it otherwise.  Skips the test without
    root, or where mount fails (Skip is run.py's, set on this module)."""
    if os.geteuid() != 0:
        raise Skip("needs root to mount a tmpfs")
    mnt = ctx.mkdtemp("tmpfs")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size,
                        "tmpfs", mnt], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise Skip("mount -t tmpfs failed: %s" % p.stdout.decode().strip())
    mounted = [True]

    def umount():
        if mounted[0]:
            subprocess.run(["umount", "-l", mnt])
            mounted[0] = False
    ctx.cleanups.append(umount)
    return mnt, umount


# ---------------------------------------------------------------------------
# Per-test context

class Ctx:
    """What a test gets.  ctx.broker starts a default broker on first use.
    """

    def __init__(self, simqd, sanitized, tmpbase):
        self.simqd = os.path.abspath(simqd)
        self.sanitized = sanitized
        self.slow = 3 if sanitized else 1
        self.io_timeout = 10.0 * self.slow
        self.tmpbase = tmpbase
        self.brokers = []
        self.clients = []
        self.extra_logs = []
        self.cleanups = []
        self._broker = None

    def mkdtemp(self, prefix="t"):
        return tempfile.mkdtemp(prefix=prefix + "-", dir=self.tmpbase)

    def newfile(self, name):
        d = self.mkdtemp("f")
        return os.path.join(d, name)

    def track(self, c):
        self.clients.append(c)
        return c

    @property
    def broker(self):
        if self._broker is None:
            self._broker = Broker(self).start()
        return self._broker

    def start_broker(self, args=(), **kw):
        return Broker(self, args, **kw).start()

    def teardown(self, failed):
        """Closes clients, stops brokers still running with SIGTERM
        (checking a clean exit unless the test failed already), and checks
        every broker's log for sanitizer reports.  Returns a list of
        problems."""
        problems = []
        for c in self.clients:
            c.close()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:
                problems.append("cleanup: %r" % e)
        for b in self.brokers:
            if b.running():
                if failed:
                    b.kill9()
                else:
                    try:
                        b.stop()
                    except TestFailure as e:
                        problems.append("at teardown: %s" % e)
                        b.kill9()
        if self.sanitized:
            for b in self.brokers:
                try:
                    f = b.sanitizer_findings()
                except OSError:
                    continue
                if f and not any(f[:200] in p for p in problems):
                    problems.append("sanitizer report in %s:\n%s" %
                                    (b.logpath, tail(f, 60)))
        return problems

    def logs(self):
        """Every broker's log, for diagnostics."""
        out = []
        for b in self.brokers:
            try:
                out.append((b.logpath, b.log()))
            except OSError:
                pass
        return out + self.extra_logs


def ids_of_list(client, **filters):
    """Every item of LIST, following pages."""
    items = []
    after = 0
    while True:
        line = "LIST limit=100000"
        for k, v in filters.items():
            line += " %s=%s" % (k, v)
        if after:
            line += " after=%d" % after
        got = client.request(line).expect_items()
        items += got
        if len(got) < 100000:
            return items
        after = int(got[-1]["id"])


def proc_cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


STATES = ("waiting", "queued", "running", "done", "failed", "canceled")


def _counts(client):
    """(QUEUES counts, LIST counts), from LIST and QUEUES sent together
    so that both see the same moment (no timer fires between them)."""
    client.send(b"LIST limit=100000\r\nQUEUES\r\n")
    items = client.read_reply().expect_items()
    queues = client.read_reply().expect_items()
    if len(items) == 100000:
        items = ids_of_list(client)
    want = {}
    for it in items:
        q = want.setdefault(it["q"], dict.fromkeys(STATES, 0))
        if it.kind == "array":
            for s in STATES:
                q[s] += int(it[s])
            check(sum(int(it[s]) for s in STATES) == int(it["tasks"]),
                  "an array's counts do not add up: %r" % it)
        else:
            q[it["state"]] += 1
    got = {}
    for q in queues:
        counts = {s: int(q[s]) for s in STATES}
        if any(counts.values()):
            got[q["name"]] = counts
    want = {k: v for k, v in want.items() if any(v.values())}
    return got, want


def check_counts(client, what=""):
    """QUEUES' counts must equal what LIST shows, queue by queue and state
    by state (arrays count their tasks).  Asked up to three times, in case
    a timer moved a job between the two replies."""
    for attempt in range(3):
        got, want = _counts(client)
        if got == want:
            return
        time.sleep(0.05)
    raise TestFailure("%s: QUEUES counts %r differ from LIST's %r" %
                      (what, got, want))
