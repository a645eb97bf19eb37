"""Watching jobs and sweeps: a running job's output as it is written
(FOLLOW), an array's tasks page by page (TASKS), why a job is not running
(EXPLAIN), an array made of the lines of a file (EACHLINE), the
broker's counters (STATS), many jobs waited for in one request (WAIT) and
a job's collected files written to a directory, as `simq output -f`,
`simq status ID --tasks`, `simq explain`, `simq submit --each-line`,
`simq stats`, `simq wait ID...` and `simq fetch` do them.

The classes ClientWatching and JobWatching hold these calls; simq.Client
and simq.Job inherit them, so they are called as client.follow(id),
job.follow(), client.tasks(id), job.explain(), client.submit_each_line().
"""

import itertools
import os
import select
import socket
import time
from urllib.parse import unquote_to_bytes

from . import _wire
from ._wire import Connection, enc
from .errors import (BadState, BrokerUnreachable, ConnectionLost,
                     PayloadTooLarge, RequestError, UnknownJob)

FOLLOW_SLICE_MS = 10000     # how long one FOLLOW is held, as the CLI's
TAIL_MAX = 65536            # SIMQ_TAIL_MAX: the kept tail of each stream
TASKS_PAGE = 1000           # tasks a TASKS request asks for
TASKS_PAGE_MAX = 10000      # the most a TASKS request may ask for
EACHLINE_MAX = 32 << 20     # SIMQ_EACHLINE_MAX: the lines, newlines counted
ENTRY_MAX = 4096            # SIMQ_ENTRY_MAX: one line
INDEX_MAX = 4294967294      # SIMQ_INDEX_MAX: lines of one array
_LAST = 4096                # bytes of a stream kept to find them again

_STATES = ("waiting", "queued", "running", "done", "failed", "canceled")
_FINISHED = ("done", "failed", "canceled")
# Keys of EXPLAIN's "why" items that are names, even when all digits.
_TEXT_KEYS = {"code", "text", "dep", "q", "worker", "host", "kind",
              "dep_state", "unfit"}


def _jid(j):
    from .client import _id
    return _id(j)


def _word_bytes(w):
    """The bytes of one protocol word (fast: unquote's %XX is the
    protocol's)."""
    if w == "%":
        return b""
    return unquote_to_bytes(w.encode("utf-8", "surrogateescape"))


# ---------------------------------------------------------------------------
# FOLLOW

class Chunk(bytes):
    """Bytes of a job's output as they were written: a bytes object, with

    .stream   "stdout" or "stderr"
    .offset   where they are in the stream (the attempt's output file)
    .attempt  the attempt that wrote them (a retried job starts anew)
    .state    the job's state when the broker sent them
    .skipped  bytes missed just before these (0: none), because the
              follower read slower than the job wrote and the broker keeps
              only the last 128 KiB; None when unknown (see .tail)
    .tail     True when the stream was not kept while nobody read it and
              these are the job's kept tail (its last 64 KiB), of which
              some bytes may have been seen already or missed before
    .end      True for the last chunk of the stream (when it came with
              the job's end; the iterator's end is what says it ended)
    """

    def __new__(cls, data, stream, offset, attempt, state, skipped=0,
                tail=False, end=False):
        self = super().__new__(cls, data)
        self.stream = stream
        self.offset = offset
        self.attempt = attempt
        self.state = state
        self.skipped = skipped
        self.tail = tail
        self.end = end
        return self

    def __repr__(self):
        return "<simq.Chunk %s off=%d len=%d attempt=%d %s%s>" % (
            self.stream, self.offset, len(self), self.attempt, self.state,
            " end" if self.end else "")

    def __reduce__(self):
        return (Chunk, (bytes(self), self.stream, self.offset, self.attempt,
                        self.state, self.skipped, self.tail, self.end))


class _Stream:
    """What a follower knows of one stream: its own connection, and where
    it is (the next offset it wants, of which attempt)."""

    def __init__(self, client, name, offset, attempt):
        self.name = name
        self.conn = Connection(client.server, client.token,
                               timeout=client._conn.timeout)
        self.have_from = offset is not None
        self.offset = offset or 0
        self.attempt = attempt or 0
        self.last = b""            # the last bytes given, for a tail
        self.inflight = False
        self.ended = False
        self.started = False
        self.lost = None           # when its connection was lost, if it is
        self.losses = 0


class Follow:
    """An iterator of a job's output as it is written: simq.Chunk objects
    (bytes, with .stream, .offset, .attempt, ...), ending when the job has
    ended and the last byte is given.  b"".join(follow) is the output.

    Made by Client.follow(id) or Job.follow().  Each stream is asked for
    on a connection of its own (a FOLLOW is held at the broker until there
    are bytes), so the client's other requests do not wait behind it.
    When the broker goes away (a restart), the follower connects again
    for up to the client's `reconnect` seconds and asks from the byte
    offset it has reached: no byte is given twice, and none is lost that
    the job's worker still has.  .state is the job's state as last heard
    (its final state once the iterator is exhausted); .offset and .attempt
    where it is in its stream (stream="both": in stdout).

    close() (or a `with` block) ends it early.
    """

    def __init__(self, client, id, stream="stdout", offset=None,
                 attempt=None, start_timeout=None, wait=None):
        if stream == "both":
            names = ("stdout", "stderr")
        elif stream in ("stdout", "stderr"):
            names = (stream,)
        else:
            raise ValueError("stream must be 'stdout', 'stderr' or "
                             "'both', not %r" % (stream,))
        if offset is not None and (isinstance(offset, bool) or
                                   not isinstance(offset, int) or
                                   offset < 0):
            raise ValueError("offset must be a byte offset (an int >= 0)")
        if attempt is not None and (not isinstance(attempt, int) or
                                    attempt < 1):
            raise ValueError("attempt must be an int >= 1")
        self.client = client
        self.id = _jid(id)
        self.state = None
        self._wait = FOLLOW_SLICE_MS if wait is None else int(wait * 1000)
        t = client._conn.timeout
        if t is not None:      # a held request must end before the socket's
            self._wait = min(self._wait, int(t * 1000) - 1000)
        self._wait = max(self._wait, 50)     # held, not a busy loop
        self._start_deadline = None if start_timeout is None else \
            time.monotonic() + start_timeout
        self._start_timeout = start_timeout
        if offset is not None and attempt is None:
            attempt = self._attempt_now()
        self._streams = [_Stream(client, n, offset, attempt) for n in names]
        self._ready = []

    def __repr__(self):
        return "<simq.Follow %s %s>" % (self.id, "/".join(
            s.name for s in self._streams))

    @property
    def offset(self):
        return self._streams[0].offset

    @property
    def attempt(self):
        return self._streams[0].attempt

    def _attempt_now(self):
        """The attempt an offset given alone is of: the running or last
        attempt, or the next one of a job that has not started again."""
        info = self.client._status_items([self.id])[0]
        if info.kind == "missing":
            raise UnknownJob("not-found", "no job %s" % self.id)
        if info.kind == "array":
            raise BadState("bad-state", "%s is an array: follow one of its "
                           "tasks (%s_INDEX)" % (self.id, self.id))
        n = int(info.get("attempts") or 0)
        st = info.get("state")
        if st in ("running",) + _FINISHED:
            return max(n, 1)
        return n + 1

    def __iter__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Ends following (the broker stops asking the worker after a few
        seconds)."""
        for s in self._streams:
            s.conn.close()
            s.inflight = False
            s.ended = True

    def __del__(self):
        try:
            for s in self._streams:
                s.conn.close()
        except Exception:
            pass

    def __next__(self):
        while not self._ready:
            live = [s for s in self._streams if not s.ended]
            if not live:
                for s in self._streams:
                    s.conn.close()
                raise StopIteration
            self._step(live)
        return self._ready.pop(0)

    # -- one round ---------------------------------------------------------
    def _line(self, s):
        wait = self._wait
        if self._start_deadline is not None and not s.started:
            left = self._start_deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise TimeoutError(
                    "job %s did not start within %gs (it is %s); see "
                    "explain()" % (self.id, self._start_timeout,
                                   self.state or "not running"))
            wait = min(wait, int(left * 1000) + 1)
        line = "FOLLOW %s %s" % (enc(self.id), s.name)
        if s.have_from:
            line += " from=%d attempt=%d" % (s.offset, s.attempt)
        return line + " wait=%d" % wait

    def _send(self, s):
        """Sends s's next FOLLOW, connecting (again) as needed, for up to
        the client's reconnect seconds."""
        deadline, delay = None, 0.05
        while True:
            try:
                if s.conn.sock is None:
                    s.conn.connect()
                s.conn._send(Connection.frame(self._line(s)))
                s.inflight = True
                return
            except BrokerUnreachable:
                s.conn.close()
                if deadline is None:
                    deadline = time.monotonic() + (self.client.reconnect
                                                   or 0)
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _step(self, live):
        for s in live:
            if not s.inflight:
                self._send(s)
        socks = {s.conn.sock: s for s in live}
        if len(live) > 1:
            r, _, _ = select.select(list(socks), [], [],
                                    self._wait / 1000.0 + 30)
            if not r:
                return
            s = socks[r[0]]
        else:
            s = live[0]
        try:
            kind, words, items = self._read(s.conn)
        except (ConnectionLost, socket.timeout, OSError) as e:
            # The broker went away while holding the request: ask again,
            # from where we are, on a new connection (a broker that keeps
            # closing it is given up after the client's reconnect).
            s.conn.close()
            s.inflight = False
            now = time.monotonic()
            if s.lost is None:
                s.lost, s.losses = now, 0
            s.losses += 1
            if now - s.lost > (self.client.reconnect or 0):
                self.close()
                raise ConnectionLost("lost the connection to the broker at "
                                     "%s while following job %s, for %.0fs"
                                     % (self.client.server, self.id,
                                        now - s.lost)) from e
            if s.losses > 1:
                time.sleep(min(0.05 * 2 ** s.losses, 1.0))
            return
        s.inflight = False
        s.lost = None
        if kind == "ERR":
            self.close()
            self._raise(words)
        if kind != "ITEMS" or len(items) != 1 or items[0][0] != "chunk":
            self.close()
            raise RequestError("server", "unexpected reply to FOLLOW: %s %s"
                               % (kind, " ".join(words)))
        self._take(s, items[0][1])

    @staticmethod
    def _read(conn):
        """Reads one reply: (kind, words, [(item kind, {key: raw})])."""
        words = conn._line().split()
        if not words:
            raise ConnectionLost("an empty reply from the broker at %s"
                                 % conn.server)
        items = []
        if words[0] == "ITEMS":
            for _ in range(int(words[1])):
                w = conn._line().split()
                kv = {}
                for x in w[1:]:
                    k, eq, v = x.partition("=")
                    if eq:
                        kv[k] = v
                items.append((w[0] if w else "", kv))
        return words[0], words[1:], items

    def _raise(self, words):
        code = words[0] if words else "server"
        msg = " ".join(words[1:])
        if code == "bad-request" and "array" in msg:
            raise BadState("bad-state", "%s is an array: follow one of its "
                           "tasks (%s_INDEX)" % (self.id, self.id))
        if code == "not-found":
            raise UnknownJob(code, "no job %s" % self.id)
        self.client._raise_for(_wire.Reply("ERR", words), what=self.id)

    def _take(self, s, kv):
        def num(k):
            v = kv.get(k)
            return int(v) if v and v.isdigit() else 0
        st = _wire.dec(kv.get("state", ""))
        self.state = st
        if st == "running" or st in _FINISHED:
            s.started = True
        off, att, skipped = num("off"), num("attempt"), num("skipped")
        data = _word_bytes(kv.get("data", "%"))
        tail = "tail" in kv
        end = "end" in kv
        same = s.have_from and att == s.attempt
        if not data and not (same and st == "running"):
            # Nothing yet (a job not started, or the wait passed): where
            # we are stays where it is.
            if end:
                self._end(s)
            return
        if same:
            if tail:
                data, off, skipped, tail = self._trim_tail(s, data)
            elif off < s.offset:
                # Never back, never twice: what comes before where we
                # are was given already.
                cut = min(len(data), s.offset - off)
                data, off = data[cut:], off + cut
            elif off > s.offset and not skipped:
                skipped = off - s.offset
            s.offset = max(s.offset, off + len(data))
        else:
            # The first bytes, or another attempt's: from its start.
            s.last = b""
            s.offset = off + len(data)
        s.attempt = att
        s.have_from = True
        if data:
            s.last = (s.last + data)[-_LAST:]
            self._ready.append(Chunk(data, s.name, off, att, st, skipped,
                                     tail, end))
        if end:
            self._end(s)

    def _end(self, s):
        s.ended = True
        s.inflight = False
        s.conn.close()
        for c in reversed(self._ready):
            if c.stream == s.name:
                c.end = True
                break

    @staticmethod
    def _trim_tail(s, data):
        """A tail (the job's kept last 64 KiB) of the attempt we were
        reading, after the stream was lost: only what comes after the
        bytes already given.  Returns (data, offset, skipped, tail)."""
        if len(data) < TAIL_MAX:
            # The whole output: cut what was given.
            return data[s.offset:], s.offset, 0, False
        k = data.find(s.last) if s.last else -1
        if k >= 0:
            at = k + len(s.last)
            return data[at:], s.offset, 0, False
        return data, s.offset, None, True


# ---------------------------------------------------------------------------
# EXPLAIN

class Reason:
    """One reason of an Explanation: .code (dependency, delayed, backoff,
    paused, array-limit, no-worker, busy, unfit, resources, ready,
    running, done, failed, canceled, array, or one added later), .text
    (the broker's sentence) and .facts (the other keys: numbers as ints,
    e.g. {"dep": "17", "kind": "ok", "dep_state": "running"}).
    reason["dep"] reads a fact."""

    __slots__ = ("code", "text", "facts")

    def __init__(self, code, text, facts):
        self.code = code
        self.text = text
        self.facts = facts

    def __getitem__(self, k):
        return self.facts[k]

    def get(self, k, default=None):
        return self.facts.get(k, default)

    def as_dict(self):
        d = {"code": self.code, "text": self.text}
        d.update(self.facts)
        return d

    def __str__(self):
        return self.text or self.code

    def __repr__(self):
        return "<simq.Reason %s: %s>" % (self.code, self.text)


class Explanation:
    """Why a job, task or array is not running, or what it does: .id,
    .state and .reasons (a list of Reason), as `simq explain` says.
    str() is the readable form; as_dict() the form of `simq explain
    --json`; `"paused" in e` tests for a code; e.codes lists them."""

    def __init__(self, id, state, reasons):
        self.id = id
        self.state = state
        self.reasons = reasons

    @property
    def codes(self):
        return [r.code for r in self.reasons]

    def __contains__(self, code):
        return code in self.codes

    def __iter__(self):
        return iter(self.reasons)

    def __len__(self):
        return len(self.reasons)

    def reason(self, code):
        """The first reason of that code, or None."""
        for r in self.reasons:
            if r.code == code:
                return r
        return None

    def as_dict(self):
        return {"id": self.id, "state": self.state,
                "reasons": [r.as_dict() for r in self.reasons]}

    def __str__(self):
        return "\n".join(["%s is %s." % (self.id, self.state)] +
                         ["  - %s" % r for r in self.reasons])

    def __repr__(self):
        return "<simq.Explanation %s %s: %s>" % (self.id, self.state,
                                                 ", ".join(self.codes))


def _explanation(reply):
    items = reply.items or []
    if not items or items[0].kind != "explain":
        raise RequestError("server", "unexpected reply to EXPLAIN")
    reasons = []
    for it in items[1:]:
        if it.kind != "why":
            continue
        facts = {}
        for k, v in it.items():
            if k in ("code", "text"):
                continue
            facts[k] = int(v) if k not in _TEXT_KEYS and v.isdigit() \
                else v
        reasons.append(Reason(it.get("code"), it.get("text"), facts))
    return Explanation(items[0].get("id"), items[0].get("state"), reasons)


# ---------------------------------------------------------------------------
# EACHLINE

def _eachline_body(lines, what=None):
    """The lines of an EACHLINE body, each ended by a newline; returns
    (bytes, count).  lines: a path (str or os.PathLike), bytes (a file's
    content), or an iterable of str or bytes, one line each."""
    where = what or "the lines"
    if isinstance(lines, (str, os.PathLike)):
        with open(lines, "rb") as f:
            lines = f.read()
    if isinstance(lines, (bytes, bytearray, memoryview)):
        data = bytes(lines)
        lines = data.split(b"\n")
        if data.endswith(b"\n") or not data:
            lines.pop()
        from_file = True
    else:
        from_file = False
    out, n, size = [], 0, 0
    for line in lines:
        n += 1
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        elif not isinstance(line, (bytes, bytearray, memoryview)):
            raise TypeError("%s: line %d is a %s; give str or bytes"
                            % (where, n, type(line).__name__))
        line = bytes(line)
        if not from_file and line.endswith(b"\n"):
            line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if b"\n" in line:
            raise ValueError("%s: line %d holds a newline" % (where, n))
        if b"\0" in line:
            raise ValueError("%s: line %d holds a NUL byte, which no "
                             "argument can" % (where, n))
        if len(line) > ENTRY_MAX:
            raise ValueError("%s: line %d is %d bytes long; a line may be "
                             "at most %d" % (where, n, len(line), ENTRY_MAX))
        if n > INDEX_MAX:
            raise ValueError("%s: more than %d lines" % (where, INDEX_MAX))
        size += len(line) + 1
        if size > EACHLINE_MAX:
            raise PayloadTooLarge("%s: more than %d bytes (at line %d); "
                                  "split it into several submits"
                                  % (where, EACHLINE_MAX, n))
        out.append(line)
    if n == 0:
        raise ValueError("%s: nothing to submit" % (
            "%s has no lines" % what if what else "no lines given"))
    out.append(b"")
    return b"\n".join(out), n


# ---------------------------------------------------------------------------

class ClientWatching:
    """simq.Client's calls for watching (see simq.watch)."""

    def follow(self, id, stream="stdout", offset=None, attempt=None,
               start_timeout=None, wait=None):
        """A job's (or a task's) output as it is written: an iterator of
        simq.Chunk (bytes with .stream, .offset, .attempt, .state,
        .skipped, .tail, .end) that ends when the job has ended, as
        `simq output -f`.  stream: "stdout", "stderr" or "both" (chunks
        of the two interleaved as they come, each on its connection).
        offset: start at that byte of the stream (of `attempt`, default
        the job's current one), e.g. a Chunk's .offset + len(chunk) to go
        on where an earlier follower stopped; without it, a running job
        starts at what the broker has (its last 64 KiB) and a finished
        job gives its kept tail.  start_timeout: seconds to wait for a
        job that has not started (TimeoutError); wait: seconds one FOLLOW
        is held (10).  A broker restart is ridden out from the byte
        offset reached.  UnknownJob for an unknown id (when the first
        chunk is asked for), BadState for an array (follow a task)."""
        return Follow(self, id, stream=stream, offset=offset,
                      attempt=attempt, start_timeout=start_timeout,
                      wait=wait)

    def iter_tasks(self, array, state=None, failed_first=True,
                   page_size=TASKS_PAGE, limit=None):
        """The tasks of an array, as Jobs whose .info is their status,
        lazily, a page (TASKS request) at a time: the failed first (with
        state=None and failed_first), then the others, each part in the
        broker's order (the tasks a worker took, by index, then those not
        taken yet, by index); with state=, only the tasks in that state.
        limit: at most that many.  UnknownJob for an unknown id, BadState
        for a job or task that is not an array, ValueError for a bad
        state."""
        if state is not None and state not in _STATES:
            raise ValueError("bad state %r: use %s" % (state,
                                                       ", ".join(_STATES)))
        if isinstance(page_size, bool) or not isinstance(page_size, int) \
                or not 1 <= page_size <= TASKS_PAGE_MAX:
            raise ValueError("page_size must be 1 to %d" % TASKS_PAGE_MAX)
        aid = _jid(array)

        def walk():
            if state is None and failed_first:
                seen = set()
                for t in self._task_pages(aid, "failed", page_size):
                    seen.add(t.id)
                    yield t
                for t in self._task_pages(aid, None, page_size):
                    if t.id not in seen:
                        yield t
            else:
                yield from self._task_pages(aid, state, page_size)
        it = walk()
        return it if limit is None else itertools.islice(it, limit)

    def tasks(self, array, state=None, failed_first=True,
              page_size=TASKS_PAGE, limit=None):
        """The tasks of an array as a list of Jobs with their status in
        .info (.state, .exit_code, .reason, .info["attempts"], ...):
        failed first, then the rest; state= keeps one state.  As
        iter_tasks(), which gives them a page at a time."""
        return list(self.iter_tasks(array, state=state,
                                    failed_first=failed_first,
                                    page_size=page_size, limit=limit))

    def _task_pages(self, aid, state, page_size):
        from .client import Job
        cursor = None
        while True:
            line = "TASKS " + enc(aid)
            if state is not None:
                line += " state=" + state
            if cursor is not None:
                line += " from=" + enc(cursor)
            line += " limit=%d" % page_size
            r = self._requests([(line, None)], check=False)[0]
            if r.kind == "ERR":
                code = r.words[0] if r.words else ""
                msg = " ".join(r.words[1:])
                if code == "bad-request" and ("not an array" in msg or
                                              "is a task" in msg):
                    raise BadState("bad-state", "%s is not an array: "
                                   "tasks() lists an array's tasks" % aid)
                if code == "not-found":
                    raise UnknownJob(code, "no job %s" % aid)
                self._raise_for(r, what=aid)
            cursor = None
            for it in r.items:
                if it.kind == "more":
                    cursor = it.get("from")
                    continue
                t = Job(it.get("id"), client=self, _array=False)
                t._take(it)
                yield t
            if not cursor:
                return

    def explain(self, id):
        """Why a job, task or array is not running (or what it is
        doing), as the broker decides it: an Explanation with .state and
        .reasons (each a Reason: .code, .text, .facts); str() of it reads
        as `simq explain`.  UnknownJob for an unknown id."""
        i = _jid(id)
        r = self._requests([("EXPLAIN " + enc(i), None)], check=False)[0]
        if r.kind == "ERR" and r.words and r.words[0] == "not-found":
            raise UnknownJob("not-found", "no job %s" % i)
        self._raise_for(r, what=i)
        return _explanation(r)

    def submit_each_line(self, argv, lines, queue=None, priority=None,
                         timeout=None, retries=None, after=None,
                         delay=None, name=None, env=None, cwd=None,
                         output=None, cpus=None, gpus=None, mem=None,
                         files=None, collect=None):
        """Submits an array with one task per line, as `simq submit
        --each-line FILE`: task N (ID_N, from 1) runs argv with each `{}`
        argument (or part of one) replaced by line N, and finds the line
        in $SIMQ_ENTRY (and its index in $SIMQ_ARRAY_INDEX).  lines: a
        path (str or os.PathLike) whose every line is a task, an empty
        one too (a CR before a newline is not part of the line), bytes
        (such a file's content), or an iterable of str or bytes, one line
        each.  A line is at most 4096 bytes and holds no NUL; all of them
        at most 32 MiB.  Other options as submit() (no array=).  Returns
        the array's Job; ValueError (an empty list, a bad line) and
        PayloadTooLarge before anything is sent: nothing is submitted."""
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv is a list of words, not a string "
                            "(use ['sh', '-c', CMD] for a shell)")
        argv = [os.fspath(a) if hasattr(a, "__fspath__") else a
                for a in argv]
        argv = [a if isinstance(a, (str, bytes)) else str(a) for a in argv]
        if not argv:
            raise ValueError("argv needs at least one word (with {} for "
                             "the line)")
        what = os.fspath(lines) if isinstance(lines, (str, os.PathLike)) \
            else None
        body, n = _eachline_body(lines, what)
        head = (" ".join(enc(a) for a in argv) + "\n").encode(
            "utf-8", "surrogateescape")
        if len(head) + 1 > _wire.LINE_MAX:
            raise PayloadTooLarge("the command is too long: %d bytes "
                                  "encoded, and a line holds at most %d"
                                  % (len(head) - 1, _wire.LINE_MAX - 2))
        opts = self._submit_opts(queue=queue, priority=priority,
                                 timeout=timeout, retries=retries,
                                 after=after, delay=delay, name=name,
                                 env=env, cwd=cwd, output=output, cpus=cpus,
                                 gpus=gpus, mem=mem, files=files,
                                 collect=collect)
        line = " ".join(["EACHLINE"] + opts)
        body = head + body
        if len(line) + len(" %d" % len(body)) + 2 > _wire.LINE_MAX:
            raise PayloadTooLarge("the options and environment take %d "
                                  "bytes on the wire; a request line holds "
                                  "at most %d" % (len(line),
                                                  _wire.LINE_MAX))
        r = self._request(line, body)
        if len(r.words) != 2 or int(r.words[1]) != n:
            raise RequestError("server", "unexpected reply to EACHLINE: %s"
                               % " ".join(r.words))
        from .client import Job
        return Job(r.words[0], client=self, _array=True)

    def wait(self, *jobs, timeout=None):
        """Blocks until every job, task and array named (Jobs or ids) has
        finished, as `simq wait ID...`, with WAIT requests that name them
        all (no polling, one held request however many); returns their
        Jobs, in order, with .info, .state and .exit_code as they ended.
        TimeoutError when `timeout` seconds pass first, UnknownJob for an
        unknown id."""
        from .client import Job
        js = [j if isinstance(j, Job) else Job(_jid(j), client=self)
              for j in jobs]
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = list(js)
        while pending:
            if deadline is None:
                ms = _wire.WAIT_MAX_MS
            else:
                ms = min(_wire.WAIT_MAX_MS, max(0, int(
                    (deadline - time.monotonic()) * 1000)))
            items = self._status_items([j.id for j in pending], verb="WAIT",
                                       wait_ms=ms)
            for j, it in zip(pending, items):
                j._take(it)
            pending = [j for j in pending if not j.finished]
            if pending and deadline is not None and \
                    time.monotonic() >= deadline:
                raise TimeoutError("%d of %d jobs are not finished after "
                                   "%gs (%s)" % (
                                       len(pending), len(js), timeout,
                                       ", ".join("%s %s" % (
                                           j.id, j.info["state"])
                                           for j in pending[:5])))
        return js

    def stats(self):
        """The broker's counters, as `simq stats`: a dict (version,
        uptime in ms, jobs, workers, submitted, finished, followed,
        follow_bytes, blobs, ...), numbers as ints."""
        it = self._request("STATS").items[0]
        return {k: int(v) if v.isdigit() else v for k, v in it.items()}


class JobWatching:
    """simq.Job's calls for watching (see simq.watch)."""

    def follow(self, stream="stdout", offset=None, attempt=None,
               start_timeout=None, wait=None):
        """Its output as it is written: Client.follow(self.id, ...), an
        iterator of simq.Chunk that ends when the job ends."""
        return self.client.follow(self.id, stream=stream, offset=offset,
                                  attempt=attempt,
                                  start_timeout=start_timeout, wait=wait)

    def explain(self):
        """Why it is not running (or what it does): Client.explain()."""
        return self.client.explain(self.id)

    def tasks(self, state=None, failed_first=True, page_size=TASKS_PAGE,
              limit=None):
        """An array's tasks, as Jobs with their status in .info: the
        failed first, then the others (state=: only those), asked a page
        at a time (Client.tasks)."""
        return self.client.tasks(self.id, state=state,
                                 failed_first=failed_first,
                                 page_size=page_size, limit=limit)

    def iter_tasks(self, state=None, failed_first=True,
                   page_size=TASKS_PAGE, limit=None):
        """As tasks(), lazily, a page at a time."""
        return self.client.iter_tasks(self.id, state=state,
                                      failed_first=failed_first,
                                      page_size=page_size, limit=limit)

    def fetch_all(self, dir="."):
        """Writes the files its collect= patterns brought back into dir,
        as `simq fetch -o DIR ID`: each under its name, an array's tasks
        under DIR/INDEX/; each is downloaded (GET) into a temporary file
        beside its place, checked against its SHA-256, and only then
        renamed into place (a file already there is replaced), so an
        interrupted fetch leaves no half file under the real name.
        Returns the paths written.  BadState while the job (a task of
        the array) has not ended; ValueError for a name that would be
        written outside dir."""
        if self.is_array:
            ts = self._index_tasks()
            for t, it in zip(ts, self.client._status_items(
                    [t.id for t in ts])):
                t._take(it)
            places = [(os.path.join(dir, t.id.rsplit("_", 1)[1]), t)
                      for t in ts if t.info.get("got")]
            left = [t for t in ts if not t.finished]
        else:
            if self.info is None or not self.finished:
                self.refresh()
            places = [(dir, self)]
            left = [self] if not self.finished else []
        if left and not any(j.info.get("got") for _, j in places):
            raise BadState("bad-state", "job %s has not ended (%s): nothing "
                           "to fetch yet" % (left[0].id,
                                             left[0].info["state"]))
        paths = []
        for base, job in places:
            for name, blob in sorted(job.collected().items()):
                paths.append(_fetch_file(self.client, base, name, blob))
        return paths


def _fetch_file(client, base, name, blob):
    """Downloads blob into base/name by way of a temporary file."""
    import hashlib
    import tempfile
    parts = name.split("/")
    if not name or name.startswith("/") or ".." in parts or "" in parts:
        raise ValueError("collected file name %r would be written outside "
                         "%s" % (name, base))
    path = os.path.join(base, *parts)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".simq-fetch-", dir=os.path.dirname(
        path) or ".")
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            off = 0
            while off < blob.size:
                r = client._request("GET %s %d %d" % (blob.hash, off,
                                                      client.CHUNK))
                if not r.data:
                    break
                f.write(r.data)
                h.update(r.data)
                off += len(r.data)
        if off != blob.size or h.hexdigest() != blob.hash:
            raise RequestError("server", "the broker sent %d bytes for %s "
                               "that do not match its hash or size (%d)"
                               % (off, name, blob.size))
        os.chmod(tmp, (blob.mode or 0o644) & 0o777)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
