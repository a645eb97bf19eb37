"""simq.Client and simq.Job: a client of the simq protocol."""

import os
import re
import socket
import threading
import time

from . import _wire
from ._wire import Connection, enc, pick_server, pick_token
from .errors import (BadState, BrokerUnreachable, ConnectionLost,
                     RequestError, UnknownJob)
from .watch import ClientWatching, JobWatching

FINISHED = ("done", "failed", "canceled")
STATES = ("waiting", "queued", "running", "done", "failed", "canceled")

# Requests that may be sent again after a lost connection: they change
# nothing, or changing twice is the same as once.
_IDEMPOTENT = {"PING", "STATUS", "WAIT", "LIST", "QUEUES", "WORKERS",
               "STATS", "OUTPUT", "PAUSE", "RESUME", "CANCEL", "FOLLOW",
               "TASKS", "EXPLAIN"}

_UNITS = {"d": 86400000, "h": 3600000, "m": 60000, "s": 1000, "ms": 1}


def size_bytes(v):
    """Bytes of a size: an int, or a string such as "512M", "4G" (powers
    of 1024, as the CLI's --mem)."""
    if isinstance(v, bool):
        raise ValueError("bad size %r" % (v,))
    if isinstance(v, int):
        return v
    s = str(v).strip()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if s and s[-1].upper() in mult:
        n, m = s[:-1], mult[s[-1].upper()]
    else:
        n, m = s, 1
    if not n.isdigit():
        raise ValueError("bad size %r: use bytes or 512M, 4G" % (v,))
    return int(n) * m


def duration_ms(v, what="duration"):
    """Milliseconds of a duration: a number of seconds (int or float) or a
    string such as "90", "2h", "1h30m", "500ms" (the CLI's spelling)."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise TypeError("%s: a number of seconds or a string like '2h'"
                        % what)
    if isinstance(v, (int, float)):
        if v < 0:
            raise ValueError("%s must not be negative" % what)
        return int(round(v * 1000))
    if hasattr(v, "total_seconds"):
        return duration_ms(v.total_seconds(), what)
    s = str(v)
    if s.isdigit():
        return int(s) * 1000
    parts = re.findall(r"(\d+)(ms|d|h|m|s)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        raise ValueError("bad %s %r (like 90, 2h, 1h30m, 500ms)" % (what, v))
    return sum(int(a) * _UNITS[b] for a, b in parts)


def _cwd():
    """The current directory as the CLI sends it: $PWD when it names this
    directory, else getcwd()."""
    pwd = os.environ.get("PWD")
    if pwd and pwd.startswith("/"):
        try:
            if os.path.samestat(os.stat(pwd), os.stat(".")):
                return pwd
        except OSError:
            pass
    return os.getcwd()


def _id(j):
    if isinstance(j, Job):
        return j.id
    if isinstance(j, int):
        return str(j)
    return str(j)


def _num(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _array_spec(array):
    if array is None:
        return None
    if isinstance(array, range):
        if array.step <= 0 or len(array) == 0:
            raise ValueError("array= needs a non-empty increasing range")
        last = array[-1]
        s = "%d-%d" % (array.start, last)
        if array.step != 1:
            s += ":%d" % array.step
        return s
    if isinstance(array, int):
        return "1-%d" % array
    return str(array)


def parse_spec(spec):
    """The indices of an array spec A-B[:STEP][%MAX], as a range."""
    m = re.match(r"^(\d+)-(\d+)(?::(\d+))?(?:%(\d+))?$", spec)
    if not m:
        raise ValueError("bad array spec %r" % spec)
    a, b = int(m.group(1)), int(m.group(2))
    step = int(m.group(3) or 1)
    return range(a, b + 1, step)


class Client(ClientWatching):
    """A connection to a simq broker.

    server: "HOST:PORT" (also ":PORT", "HOST", "[V6]:PORT"); default
    $SIMQ_SERVER, else 127.0.0.1:7733.  token: default $SIMQ_TOKEN (or
    token_file=, read as `--token-file` reads it).  A lost connection is
    opened again on the next request; requests that change nothing (and
    CANCEL, PAUSE, RESUME) are sent again for up to `reconnect` seconds, a
    submit is never sent twice: it raises ConnectionLost when its reply was
    lost, since the broker may or may not have taken it.

    Raises BrokerUnreachable, TokenRefused, UnknownJob (a LookupError),
    BadState, LimitReached, RequestError.  Thread-safe (one lock).
    """

    def __init__(self, server=None, token=None, token_file=None,
                 timeout=None, reconnect=30.0):
        self.server = pick_server(server)
        _wire.split_server(self.server)       # a bad address fails now
        self.token = pick_token(token, token_file)
        self.reconnect = reconnect
        self._conn = Connection(self.server, self.token, timeout=timeout)
        self._lock = threading.RLock()

    def __repr__(self):
        return "simq.Client(%r)" % self.server

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        with self._lock:
            self._conn.close()

    # -- requests ----------------------------------------------------------
    def _requests(self, reqs, check=True):
        """Pipelines (line, body) requests; returns their replies."""
        retry_ok = all(l.split(None, 1)[0].upper() in _IDEMPOTENT
                       for l, _ in reqs)
        deadline = None
        delay = 0.05
        with self._lock:
            while True:
                c = self._conn
                if c.sock is not None and c.stale():
                    c.close()
                try:
                    replies = c.requests(reqs)
                    break
                except BrokerUnreachable as e:
                    if isinstance(e, ConnectionLost) and not retry_ok:
                        raise ConnectionLost(
                            "%s; the request may or may not have been "
                            "carried out" % e) from e
                    if deadline is None:
                        deadline = time.monotonic() + (self.reconnect or 0)
                    if time.monotonic() + delay > deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
        if check:
            for r in replies:
                self._raise_for(r)
        return replies

    def _raise_for(self, r, what=None):
        if r.kind == "ERR" and r.words and r.words[0] == "auth":
            from .errors import TokenRefused
            raise TokenRefused(
                "the broker at %s %s (%s); set SIMQ_TOKEN or token= to the "
                "broker's token" % (self.server, "refused the token" if
                                    self.token else "wants a token",
                                    " ".join(r.words[1:])))
        return r.raise_for(what)

    def _request(self, line, body=None, what=None):
        r = self._requests([(line, body)], check=False)[0]
        return self._raise_for(r, what)

    def ping(self):
        """True when the broker answers."""
        self._request("PING")
        return True

    # -- submitting --------------------------------------------------------
    def _submit_opts(self, queue=None, priority=None, timeout=None,
                     retries=None, after=None, delay=None, name=None,
                     env=None, cwd=None, array=None, output=None,
                     cpus=None, gpus=None, mem=None, files=None,
                     collect=None):
        o = []
        if cpus is not None:
            o.append("cpus=%d" % int(cpus))
        if gpus is not None:
            o.append("gpus=%d" % int(gpus))
        if mem is not None:
            o.append("mem=%d" % size_bytes(mem))
        if queue is not None:
            o.append("q=" + enc(queue))
        if priority is not None:
            o.append("pri=%d" % int(priority))
        if timeout is not None:
            o.append("timeout=%d" % duration_ms(timeout, "timeout"))
        if retries is not None:
            o.append("retries=%d" % int(retries))
        if delay is not None:
            o.append("delay=%d" % duration_ms(delay, "delay"))
        if after is not None:
            if isinstance(after, (str, int, Job)):
                after = [after]
            ids = [_id(a) for a in after]
            if ids:
                o.append("after=" + enc(",".join(ids)))
        if name is not None:
            o.append("name=" + enc(name))
        for k, v in (env or {}).items():
            if "=" in k or not k:
                raise ValueError("bad environment variable name %r" % k)
            o.append("env=" + enc("%s=%s" % (k, v)))
        o.append("cwd=" + enc(cwd if cwd is not None else _cwd()))
        if output is not None:
            o.append("output=" + enc(output))
        spec = _array_spec(array)
        if spec is not None:
            o.append("array=" + enc(spec))
        for f in self._file_words(files):
            o.append("file=" + enc(f))
        if isinstance(collect, str):
            collect = [collect]
        for g in collect or ():
            o.append("collect=" + enc(g))
        return o

    def _file_words(self, files):
        """file= values of files: a dict NAME -> bytes, a path (str or
        os.PathLike: its content) or a Blob; the content is stored at the
        broker first (once: put_blob asks HAVE)."""
        words = []
        for name, what in (files or {}).items():
            mode = 0o644
            if isinstance(what, Blob):
                b = what
            elif isinstance(what, (bytes, bytearray, memoryview)):
                b = self.put_blob(bytes(what))
            else:
                path = os.fspath(what)
                with open(path, "rb") as f:
                    b = self.put_blob(f.read())
                if os.stat(path).st_mode & 0o111:
                    mode = 0o755
            words.append("%s:%d:%o:%s" % (b.hash, b.size, b.mode or mode,
                                          name))
        return words

    # -- blobs ---------------------------------------------------------------
    CHUNK = 4 << 20               # SIMQ_CHUNK_MAX

    def put_blob(self, data):
        """Stores bytes at the broker as a blob (HAVE, then PUT in 4 MiB
        chunks from what the broker already holds); returns its Blob.
        Content the broker has is not sent again."""
        import hashlib
        data = memoryview(data).cast("B") if not isinstance(data, bytes) \
            else data
        h = hashlib.sha256(data).hexdigest()
        size = len(data)
        have = self._request("HAVE " + h).words[0]
        if have != "yes":
            off = int(have)
            if size == 0:
                self._request("PUT %s 0 0" % h, b"")
            while off < size:
                chunk = bytes(data[off:off + self.CHUNK])
                r = self._request("PUT %s %d %d" % (h, size, off), chunk)
                off += len(chunk)
                if r.words and r.words[0] == "stored":
                    break
        return Blob(h, size)

    def get_blob(self, blob, size=None):
        """The bytes of a stored blob (a Blob or its hash), read with GET
        in 4 MiB chunks; the broker checks them against the hash."""
        h = blob.hash if isinstance(blob, Blob) else str(blob)
        parts, off = [], 0
        while True:
            r = self._request("GET %s %d %d" % (h, off, self.CHUNK))
            if not r.data:
                break
            parts.append(r.data)
            off += len(r.data)
            if size is not None and off >= size:
                break
        return b"".join(parts)

    def _submit_line(self, argv, **opts):
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv is a list of words, not a string "
                            "(use ['sh', '-c', CMD] for a shell)")
        argv = [os.fspath(a) if not isinstance(a, (str, bytes)) and
                hasattr(a, "__fspath__") else a for a in argv]
        argv = [a if isinstance(a, (str, bytes)) else str(a) for a in argv]
        if not argv:
            raise ValueError("argv needs at least one word")
        line = " ".join(["SUBMIT"] + self._submit_opts(**opts) + ["--"] +
                        [enc(a) for a in argv])
        if len(line) + 2 > _wire.LINE_MAX:
            from .errors import PayloadTooLarge
            raise PayloadTooLarge(
                "the job's command and options take %d bytes on the wire; "
                "a request line holds at most %d" % (len(line) + 2,
                                                     _wire.LINE_MAX))
        return line

    def submit(self, argv, queue=None, priority=None, timeout=None,
               retries=None, after=None, delay=None, name=None, env=None,
               cwd=None, array=None, output=None, cpus=None, gpus=None,
               mem=None, files=None, collect=None):
        """Submits a command (a list of words, run without a shell) and
        returns its Job once the broker has made it durable.

        queue: the queue (default "default"); priority: larger runs first;
        timeout, delay: seconds or "2h"-style strings; retries: re-runs of
        a failed job; after: job ids or Jobs it waits for to be done
        ("any:ID" to end however, "failed:ID" to fail); name: a label;
        env: a dict added to its environment; cwd: its directory on the
        worker (default: this process's, as the CLI does); array: "1-100",
        "1-100:2%10", range(1, 101) or N (1-N) for an array of tasks, each
        `{}` argument being replaced by the task's index.  cpus, gpus: what
        each job needs (it runs where they are free, with SIMQ_CPUS,
        OMP_NUM_THREADS and CUDA_VISIBLE_DEVICES set); mem: bytes, or a
        string such as "512M" or "4G", also its limit on the worker.
        files: {NAME: bytes, path or Blob}: files the job runs with, in a
        fresh directory of its own ($SIMQ_WORKDIR, its working directory
        on the worker), stored at the broker first, once however many jobs
        name them; collect: shell patterns ("*.csv") of files of that
        directory that come back after the job (Job.collected()).
        """
        line = self._submit_line(argv, queue=queue, priority=priority,
                                 timeout=timeout, retries=retries,
                                 after=after, delay=delay, name=name, env=env,
                                 cwd=cwd, array=array, output=output,
                                 cpus=cpus, gpus=gpus, mem=mem,
                                 files=files, collect=collect)
        r = self._request(line)
        return Job(r.words[0], client=self, _array=array is not None)

    def submit_many(self, argvs, **opts):
        """Submits many jobs with the same options, pipelined in one go;
        returns their Jobs in order (each is a SUBMIT: array= allowed)."""
        lines = [self._submit_line(a, **opts) for a in argvs]
        replies = self._requests([(l, None) for l in lines])
        arr = opts.get("array") is not None
        return [Job(r.words[0], client=self, _array=arr) for r in replies]

    # -- looking -----------------------------------------------------------
    def job(self, id):
        """The Job of an id ("17", 17, "17_5"); UnknownJob if the broker
        does not know it (never was, or forgotten after its retention)."""
        j = Job(_id(id), client=self)
        j.refresh()
        return j

    def _status_items(self, ids, verb="STATUS", wait_ms=None):
        ids = [_id(i) for i in ids]
        out = []
        # Bounded by the words and the bytes of one line.
        chunk, size, reqs = [], 0, []
        for i in ids:
            if len(chunk) >= 4000 or size + len(i) + 1 > 60000:
                reqs.append(chunk)
                chunk, size = [], 0
            chunk.append(i)
            size += len(i) + 1
        if chunk:
            reqs.append(chunk)
        lines = []
        for n, c in enumerate(reqs):
            if verb == "WAIT" and n == len(reqs) - 1:
                lines.append(("WAIT %d %s" % (wait_ms, " ".join(c)), None))
            else:
                lines.append(("STATUS " + " ".join(c), None))
        for r in self._requests(lines):
            out.extend(r.items)
        return out

    def status(self, *ids):
        """Without ids: {"queues": {name: {state: count, "paused": bool}},
        "workers": [...]} like `simq status --json`.  With ids: a list of
        dicts, one per id (UnknownJob if one does not exist)."""
        if not ids:
            q, w = self._requests([("QUEUES", None), ("WORKERS", None)])
            queues = {}
            for it in q.items:
                d = {s: int(it.get(s, 0)) for s in STATES}
                d["paused"] = it.get("paused") == "1"
                queues[it.get("name")] = d
            return {"queues": queues,
                    "workers": [_worker(it) for it in w.items]}
        res = []
        for it in self._status_items(ids):
            if it.kind == "missing":
                raise UnknownJob("not-found", "no job %s" % it.get("id"))
            res.append(_jobdict(it))
        return res

    def workers(self):
        """The workers: a list of dicts with name, host, slots, running
        (ids of the jobs they run), connected, ..."""
        return [_worker(it) for it in self._request("WORKERS").items]

    def queues(self):
        """{queue name: {state: count, ..., "paused": bool}}."""
        return self.status()["queues"]

    LIST_PAGE = 1000

    def list(self, queue=None, state=None, limit=None, newest_first=False,
             name=None, since=None):
        """Jobs and arrays (as dicts) in id order, or the newest first,
        as `simq list`: all of them, asked LIST_PAGE at a time, or at
        most `limit`; only those of a queue, in a state, named `name` (a
        trailing * matches a prefix), or submitted in the last `since`
        (seconds or "2h")."""
        since_ms = None
        if since is not None:
            since_ms = int(time.time() * 1000) - duration_ms(since, "since")
        filtered = name is not None or since_ms is not None

        def wanted(d):
            if since_ms is not None and (d.get("submitted") or 0) < since_ms:
                return False
            if name is not None:
                n = d.get("name")
                if n is None or not (n.startswith(name[:-1])
                                     if name.endswith("*") else n == name):
                    return False
            return True
        out = []
        cursor = None
        while limit is None or len(out) < limit:
            n = self.LIST_PAGE
            if limit is not None and not filtered:
                n = min(n, limit - len(out))
            line = "LIST"
            if queue:
                line += " q=" + enc(queue)
            if state:
                line += " state=" + enc(state)
            if newest_first:
                line += " rev=1"
            if cursor is not None:
                line += (" before=" if newest_first else " after=") + cursor
            items = self._request(line + " limit=%d" % n).items
            older = False
            for it in items:
                d = _jobdict(it)
                if wanted(d):
                    out.append(d)
                elif newest_first and since_ms is not None and \
                        (d.get("submitted") or 0) < since_ms:
                    older = True       # older from here on
                    break
            if len(items) < n or older:
                break
            cursor = items[-1].get("id")
        return out if limit is None else out[:limit]

    # -- changing ----------------------------------------------------------
    def cancel(self, *ids, queue=None, state=None):
        """Cancels jobs, arrays, tasks or ranges of tasks ("17_[1-10]");
        running ones are killed by their worker.  With queue=, every
        unfinished job and task of that queue (state=: only those waiting,
        queued or running).  Returns how many were canceled."""
        ids = [_id(i) for i in ids]
        n = 0
        if queue is not None:
            line = "CANCEL q=" + enc(queue)
            if state is not None:
                line += " state=" + enc(state)
            n += int(self._request(line, what="queue %s" % queue).words[0])
        elif state is not None:
            raise ValueError("state= goes with queue=")
        if ids:
            n += int(self._request("CANCEL " + " ".join(enc(i) for i in ids),
                                   what=" ".join(ids)).words[0])
        return n

    def retry(self, *ids):
        """Re-queues failed or canceled jobs (an array: its failed and
        canceled tasks; tasks and ranges as cancel() takes them), and the
        jobs that had failed because of them; returns how many of the
        former."""
        ids = [_id(i) for i in ids]
        if not ids:
            return 0
        return int(self._request("RETRY " + " ".join(enc(i) for i in ids),
                                 what=" ".join(ids)).words[0])

    def pause(self, queue):
        """Stops handing out the queue's jobs (running ones go on)."""
        self._request("PAUSE " + enc(queue), what="queue %s" % queue)

    def resume(self, queue):
        self._request("RESUME " + enc(queue), what="queue %s" % queue)

    def output(self, id, stream="stdout"):
        """The kept tail of a finished job's stdout or stderr, or its
        result payload ("result"), as bytes."""
        return self._request("OUTPUT %s %s" % (_id(id), stream),
                             what=_id(id)).data


def _worker(it):
    d = dict(it)
    for k in ("slots", "pid", "lease", "seen", "njobs"):
        if k in d:
            d[k] = _num(d[k])
    d["connected"] = it.get("connected") == "1"
    run = it.get("running", "")
    d["running"] = [r.split(":")[0] for r in run.split(",") if r]
    return d


def _jobdict(it):
    d = dict(it)
    d["kind"] = it.kind
    for k in ("pri", "attempts", "retries", "submitted", "started",
              "finished", "exit", "signal", "maxrss", "utime", "stime",
              "tasks", "due", "cpus", "gpus", "mem") + STATES:
        if k in d and k != "state":
            d[k] = _num(d[k])
    d["exit_code"] = d.get("exit")
    d["timedout"] = it.get("timedout") == "1"
    multi = getattr(it, "multi", {})
    for k in ("got", "file", "collect", "nomatch", "collerr"):
        if k in multi:
            d[k] = list(multi[k])
    if it.argv is not None:
        d["argv"] = it.argv
    return d


class Blob:
    """A blob stored at the broker: .hash (SHA-256, hex), .size, and for a
    collected file .mode and .name."""

    __slots__ = ("hash", "size", "mode", "name")

    def __init__(self, hash, size, mode=None, name=None):
        self.hash = hash
        self.size = size
        self.mode = mode
        self.name = name

    @classmethod
    def parse(cls, word):
        """From HASH:SIZE:MODE:NAME (a got= or file= value)."""
        h, size, mode, name = word.split(":", 3)
        return cls(h, int(size), int(mode, 8), name)

    def __repr__(self):
        return "Blob(%r, %d%s)" % (self.hash, self.size, ", %r" % self.name
                                   if self.name else "")

    def __eq__(self, other):
        return isinstance(other, Blob) and (self.hash, self.size) == \
            (other.hash, other.size)

    def __hash__(self):
        return hash(self.hash)


class Job(JobWatching):
    """A job, an array or one task, by id.

    Job(id, client=None) needs no request; client.job(id) checks that the
    id exists.  .info holds the last STATUS (a dict); .state and
    .exit_code ask the broker again while the job is unfinished.
    """

    def __init__(self, id, client=None, _array=None):
        self.id = _id(id)
        self.client = client if client is not None else Client()
        self.info = None
        self._array = _array

    def __repr__(self):
        st = self.info["state"] if self.info else "?"
        return "<simq.Job %s %s>" % (self.id, st)

    def __eq__(self, other):
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def refresh(self):
        """Asks the broker for the job's status; returns self."""
        it = self.client._status_items([self.id])[0]
        self._take(it)
        return self

    def _take(self, it):
        if it.kind == "missing":
            raise UnknownJob("not-found", "no job %s" % self.id)
        self.info = _jobdict(it)
        self._array = it.kind == "array"

    @property
    def finished(self):
        return self.info is not None and self.info["state"] in FINISHED

    @property
    def state(self):
        """waiting, queued, running, done, failed or canceled."""
        if not self.finished:
            self.refresh()
        return self.info["state"]

    @property
    def exit_code(self):
        """The exit status, or None (not finished, or killed by a signal:
        see .info["signal"])."""
        if not self.finished:
            self.refresh()
        return self.info.get("exit")

    @property
    def reason(self):
        if not self.finished:
            self.refresh()
        return self.info.get("reason")

    @property
    def is_array(self):
        if self._array is None:
            self.refresh()
        return bool(self._array)

    def wait(self, timeout=None):
        """Blocks until the job (an array: all its tasks) has finished,
        with the protocol's WAIT (no polling); returns its state.  Raises
        TimeoutError when `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is None:
                ms = _wire.WAIT_MAX_MS
            else:
                ms = max(0, int((deadline - time.monotonic()) * 1000))
                ms = min(ms, _wire.WAIT_MAX_MS)
            it = self.client._status_items([self.id], verb="WAIT",
                                           wait_ms=ms)[0]
            self._take(it)
            if self.finished:
                return self.info["state"]
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("job %s is still %s after %gs"
                                   % (self.id, self.info["state"], timeout))

    def output(self, stderr=False):
        """The kept tail (64 KiB) of its stdout, or stderr, as bytes."""
        return self.client.output(self.id, "stderr" if stderr else "stdout")

    def result(self, raw=False):
        """Its result payload (what it wrote to $SIMQ_RESULT) as bytes.
        For a Python function task (simq.Executor), the function's return
        value, or the exception it raised is raised again (raw=True gives
        the bytes); a task that ended without a result raises
        simq.TaskFailed.  BadState while unfinished."""
        data = self.client.output(self.id, "result")
        if raw:
            return data
        from . import _task_codec
        if _task_codec.is_file_stub(data) is not None:
            data = _task_codec.full_result(data, self)
        if _task_codec.is_result(data):
            return _task_codec.unpack_result(data, self)[0]
        if self.info is None or not self.finished:
            self.refresh()
        if _task_codec.is_task(self.info.get("argv")):
            raise _task_codec.failure(self)
        return data

    def collected(self):
        """{NAME: Blob} of the files its collect= patterns brought back
        (its last attempt's), once it has finished."""
        if self.info is None or not self.finished:
            self.refresh()
        return {b.name: b for b in (Blob.parse(w) for w in
                                    self.info.get("got", []))}

    def fetch(self, name):
        """The bytes of the collected file NAME (GET from the broker)."""
        b = self.collected().get(name)
        if b is None:
            raise KeyError("job %s collected no file %r" % (self.id, name))
        return self.client.get_blob(b, b.size)

    def cancel(self):
        """Cancels it (a running job is killed); returns how many jobs and
        tasks were canceled."""
        return self.client.cancel(self.id)

    def retry(self):
        return self.client.retry(self.id)

    # -- arrays ------------------------------------------------------------
    def _indices(self):
        if self.info is None or "spec" not in self.info:
            self.refresh()
        if "spec" not in self.info:
            raise BadState("bad-state", "job %s is not an array" % self.id)
        return parse_spec(self.info["spec"])

    def _index_tasks(self):
        """An array's tasks, as Jobs without a status, in index order."""
        base = self.id.split("_")[0]
        return [Job("%s_%d" % (base, i), client=self.client)
                for i in self._indices()]

    def _task_status(self):
        ts = self._index_tasks()
        for t, it in zip(ts, self.client._status_items([t.id for t in ts])):
            t._take(it)
        return ts

    def results(self, raw=False):
        """Each task's result, in index order: as Job.result(), except that
        a task that is not done gives None."""
        ts = self._task_status()
        done = [t for t in ts if t.info["state"] == "done"]
        reps = self.client._requests(
            [("OUTPUT %s result" % t.id, None) for t in done])
        data = {t.id: r.data for t, r in zip(done, reps)}
        out = []
        from . import _task_codec
        for t in ts:
            d = data.get(t.id)
            if d is not None and not raw and _task_codec.is_result(d):
                d = _task_codec.unpack_result(d, t)[0]
            out.append(d)
        return out

    def failed(self):
        """An array's tasks that failed or were canceled, in index order,
        as Jobs (with .info: exit, signal, reason), asked with TASKS
        state=: a sweep's few failures cost a request or two."""
        ts = self.tasks(state="failed") + self.tasks(state="canceled")
        return sorted(ts, key=lambda t: int(t.id.rsplit("_", 1)[1]))
