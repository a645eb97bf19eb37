"""simq.Executor: a concurrent.futures.Executor whose calls run as simq
jobs on the workers."""

import concurrent.futures as cf
import itertools
import os
import pickle
import sys
import threading
import time

from . import _task_codec as codec
from . import _wire
from .client import FINISHED, Client, Job, _cwd
from .errors import PayloadTooLarge, SimqError, TaskFailed


def _cloudpickle():
    try:
        import cloudpickle
    except ImportError:
        return None
    return cloudpickle


def _by_reference(fn):
    """True when pickle can name fn as module.qualname for another process
    to import."""
    mod = getattr(fn, "__module__", None)
    qn = getattr(fn, "__qualname__", None)
    if mod is None or qn is None:
        return True       # a builtin or a callable object: pickle decides
    if mod == "__main__" or "<lambda>" in qn or "<locals>" in qn:
        return False
    return True


def _big(a, n):
    """a is plainly n bytes or more (bytes, strings, arrays)."""
    if isinstance(a, (bytes, bytearray, str, memoryview)):
        return len(a) >= n
    nb = getattr(a, "nbytes", None)
    return isinstance(nb, int) and nb >= n


def _dumps(obj, cp, ref=None, protocol=4):
    """obj pickled by pickle (cp None) or cloudpickle; ref(o) gives the
    persistent id of an object that travels apart, or None."""
    import io
    if ref is None:
        return (cp.dumps if cp else pickle.dumps)(obj, protocol=protocol)
    base = cp.CloudPickler if cp else pickle.Pickler

    class P(base):
        def persistent_id(self, o):
            return ref(o)
    f = io.BytesIO()
    P(f, protocol=protocol).dump(obj)
    return f.getvalue()


def dumps_call(single, calls, by_value=None, ref=None):
    """The pickled (single, [(fn, args, kwargs)...]): by reference with
    pickle where it can, by value with cloudpickle where it must (or
    always, by_value=True).  ref: see _dumps."""
    need = by_value is True or any(not _by_reference(c[0]) for c in calls)
    if not need:
        try:
            return _dumps((single, calls), None, ref)
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            if by_value is False:
                raise
            need = e
    cp = _cloudpickle()
    if cp is None or by_value is False:
        fn = calls[0][0]
        raise TypeError(
            "%s cannot travel by reference (it is defined in __main__, is a "
            "lambda or a closure, or something it is called with does not "
            "pickle): define it in a module the workers can import, or "
            "install cloudpickle (Debian: python3-cloudpickle) to send it "
            "by value" % getattr(fn, "__qualname__", repr(fn)))
    return _dumps((single, calls), cp, ref)


class SimqFuture(cf.Future):
    """A Future of one call; .job is its simq.Job once submitted.
    cancel() of a future that has not started cancels its job on the
    broker."""

    def __init__(self, executor):
        super().__init__()
        self._executor = executor
        self.job = None

    def cancel(self):
        ok = super().cancel()
        if ok and self.job is not None:
            self._executor._cancel_jobs([self.job.id])
        return ok


class _Pending:
    __slots__ = ("job", "futures", "single")

    def __init__(self, job, futures, single):
        self.job = job
        self.futures = futures
        self.single = single


class Executor(cf.Executor):
    """Runs Python calls as simq jobs: `PYTHON -m simq.task CALL`.

    queue, priority, timeout (seconds or "2h"), retries, env, cwd, name:
    as for Client.submit, for every task.  server, token: as for Client
    (or client= an existing one).

    python: the interpreter the workers run (default sys.executable, right
    when the workers share this machine's software stack, as on a cluster
    with a shared file system; say "python3" to take the first on the
    workers' PATH).  pythonpath: directories put first on the task's
    sys.path through $PYTHONPATH (default: where this simq package lives,
    then this process's $PYTHONPATH), so that the workers import the same
    simq, and last the task's directory (cwd), where `python -m` looks
    first, for the tasks that run in a directory of their own (those with
    large arguments); pythonpath=() leaves $PYTHONPATH alone.

    by_value: None (default) sends functions by reference (module and
    qualified name) and by value with cloudpickle only those that need it
    (__main__, lambdas, closures); True always by value; False never.

    warm: True (default) lets the workers run the tasks through a warm
    runner (SIMQ_RUNNER=3 in their environment, simq-runner(7)): an
    interpreter per slot that has the imports done and forks a fresh
    process per task.  warm=False starts a new interpreter per task.

    Arguments and results travel pickled inside the job when they fit: a
    call in a request line (64 KiB, base64 after compression), a result in
    the broker's result limit (64 KiB).  An argument whose pickle takes
    blob_min bytes or more (default 16 KiB) in a call that does not fit
    travels as a blob instead, a file of the job: pickled and stored at
    the broker once per object however many tasks it is passed to (so
    change it in place and later tasks still get the first version).
    large_results=True has a result larger than 64 KiB come back as a
    collected file of the job (this gives every task a directory of its
    own on the worker, and a transfer after it); else such a result
    raises PayloadTooLarge.
    """

    def __init__(self, queue=None, server=None, token=None, client=None,
                 priority=None, timeout=None, retries=None, env=None,
                 cwd=None, name=None, python=None, pythonpath=None,
                 by_value=None, warm=True, large_results=False,
                 blob_min=16384, poll=0.2):
        self._client = client if client is not None else \
            Client(server=server, token=token)
        self._watch_client = Client(server=self._client.server,
                                    token=self._client.token,
                                    reconnect=self._client.reconnect)
        self.queue = queue
        self.python = python or sys.executable or "python3"
        if pythonpath is None:
            here = os.path.dirname(os.path.dirname(os.path.abspath(
                __file__)))
            # The task's directory last: `python -m` puts it first on
            # sys.path, but a task with files runs in one of its own.
            pythonpath = [here] + [p for p in os.environ.get(
                "PYTHONPATH", "").split(os.pathsep) if p] + [
                    os.path.abspath(cwd) if cwd is not None else
                    os.getcwd()]
        env = dict(env or {})
        if pythonpath:
            env.setdefault("PYTHONPATH", os.pathsep.join(pythonpath))
        if warm:
            # The first 3 words of the task's command start its runner.
            env.setdefault("SIMQ_RUNNER", "3")
        self.warm = bool(warm)
        if large_results:
            env.setdefault(codec.RESULT_FILE_ENV, codec.RESULT_FILE)
        self._opts = dict(queue=queue, priority=priority, timeout=timeout,
                          retries=retries, env=env, cwd=cwd)
        if large_results:
            self._opts["collect"] = [codec.RESULT_FILE]
        self.blob_min = blob_min
        self._blobs = {}             # id(arg) -> (arg, Blob, file name)
        self._heads = {}             # (name, cwd) -> a SUBMIT line's head
        self._blob_lock = threading.Lock()
        self._name = name
        self.by_value = by_value
        self.poll = poll
        self._pending = {}           # job id -> _Pending
        self._lock = threading.Condition()
        self._shutdown = False
        self._thread = None

    def __repr__(self):
        return "simq.Executor(queue=%r, server=%r)" % (
            self.queue, self._client.server)

    # -- submitting --------------------------------------------------------
    def _line(self, single, calls, cwd=None):
        """The SUBMIT line of a task; cwd: the directory to say when the
        executor has none of its own."""
        fn = calls[0][0]
        name = self._name or getattr(fn, "__qualname__", None) or \
            type(fn).__name__
        args = [a for _, ar, kw in calls for a in tuple(ar) +
                tuple(kw.values())]
        refs = {id(a): self._blobs[id(a)] for a in args
                if id(a) in self._blobs and self._blobs[id(a)][0] is a}
        word = None
        if not refs and any(_big(a, self.blob_min) for a in args):
            refs = self._share(args)      # without pickling it all first
        if not refs:
            word = codec.encode_call(dumps_call(single, calls,
                                                self.by_value))
            if len(word) > _wire.LINE_MAX - 4096:
                refs = self._share(args)
        if refs:
            word = codec.encode_call(dumps_call(
                single, calls, self.by_value,
                ref=lambda o: (codec.BLOB_TAG, refs[id(o)][2])
                if id(o) in refs and refs[id(o)][0] is o else None))
        opts = dict(self._opts)
        if opts.get("cwd") is None and cwd is not None:
            opts["cwd"] = cwd
        if refs:
            opts["files"] = {n: b for _, b, n in refs.values()}
        else:
            # The words before the call are those of the task before.
            key = (name, opts.get("cwd"))
            head = self._heads.get(key)
            if head is None:
                if len(self._heads) >= 64:
                    self._heads.clear()
                head = self._heads[key] = self._client._submit_line(
                    [self.python, "-m", "simq.task", "x"], name=name,
                    **opts)[:-1]
            line = head + _wire.enc(word)
            if len(line) + 2 <= _wire.LINE_MAX:
                return line
        try:
            return self._client._submit_line(
                [self.python, "-m", "simq.task", word], name=name, **opts)
        except PayloadTooLarge:
            raise PayloadTooLarge(
                "the pickled call of %s takes %d bytes; a task's call holds "
                "at most about %d, arguments of %d bytes or more travel as "
                "blobs" % (name, len(word), _wire.LINE_MAX - 1024,
                           self.blob_min)) from None

    def _share(self, args):
        """Stores the large ones of args as blobs (each object once);
        returns {id: (arg, Blob, name)} of those."""
        refs = {}
        cp = _cloudpickle() if self.by_value is not False else None
        for a in args:
            if id(a) in refs:
                continue
            e = self._blobs.get(id(a))
            if e is not None and e[0] is a:
                refs[id(a)] = e
                continue
            try:
                data = _dumps(a, None, protocol=5)
            except (pickle.PicklingError, AttributeError, TypeError):
                if cp is None:
                    continue
                data = _dumps(a, cp, protocol=5)
            if len(data) < self.blob_min:
                continue
            b = self._client.put_blob(data)
            entry = (a, b, codec.BLOB_NAME % b.hash[:24])
            with self._blob_lock:
                self._blobs[id(a)] = entry
            refs[id(a)] = entry
        return refs

    def _submit_groups(self, groups):
        """groups: [(single, [(fn, args, kwargs)...])]; returns a list of
        lists of futures, pipelining the submits."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after "
                                   "shutdown")
        cwd = _cwd() if self._opts.get("cwd") is None else None
        lines = [self._line(s, c, cwd) for s, c in groups]
        replies = self._client._requests([(l, None) for l in lines])
        out = []
        with self._lock:
            for (single, calls), r in zip(groups, replies):
                job = Job(r.words[0], client=self._client)
                futs = []
                for _ in calls:
                    f = SimqFuture(self)
                    f.job = job
                    futs.append(f)
                self._pending[job.id] = _Pending(job, futs, single)
                out.append(futs)
            self._start()
            self._lock.notify_all()
        return out

    def submit(self, fn, /, *args, **kwargs):
        """Schedules fn(*args, **kwargs) as a simq job; returns a Future."""
        return self._submit_groups([(True, [(fn, args, kwargs)])])[0][0]

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """Like concurrent.futures' map: results in order, lazily; each job
        runs `chunksize` calls.  The submits are pipelined."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1")
        end = None if timeout is None else time.monotonic() + timeout
        calls = [(fn, a, {}) for a in zip(*iterables)]
        groups = [(False, calls[i:i + chunksize])
                  for i in range(0, len(calls), chunksize)]
        futs = list(itertools.chain.from_iterable(
            self._submit_groups(groups))) if groups else []

        def results():
            try:
                futs.reverse()
                while futs:
                    f = futs.pop()
                    if end is None:
                        yield f.result()
                    else:
                        yield f.result(end - time.monotonic())
            finally:
                for f in futs:
                    f.cancel()
        return results()

    def _cancel_jobs(self, ids):
        try:
            self._client.cancel(*ids)
        except SimqError:
            pass   # finished meanwhile, or the broker is gone: nothing to do

    # -- watching ----------------------------------------------------------
    def _start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch,
                                            name="simq-executor",
                                            daemon=True)
            self._thread.start()

    # The watcher holds a WAIT on the oldest pending jobs (they are the
    # likeliest to end first) and looks at all of them with STATUS every
    # SWEEP seconds, so that a job far down the list that ends early is
    # seen within that time.  Each WAIT's reply holds the whole window,
    # which the broker writes and we read, item by item: the window is
    # twice as many jobs as ended during the last WAIT (they end at about
    # the same rate), from WINDOW_MIN to WINDOW_MAX.
    WINDOW_MIN = 8
    WINDOW_MAX = 64
    SWEEP = 1.0
    FIRST_WAIT = 0.005

    def _watch(self):
        delay = self.FIRST_WAIT
        window = self.WINDOW_MIN
        last_sweep = time.monotonic()
        while True:
            with self._lock:
                while not self._pending and not self._shutdown:
                    self._lock.wait()
                if not self._pending and self._shutdown:
                    return
                now = time.monotonic()
                sweep = now - last_sweep >= self.SWEEP
                if sweep or len(self._pending) <= window:
                    ids = list(self._pending)
                    last_sweep = now
                else:
                    ids = list(itertools.islice(self._pending, window))
            try:
                items = self._watch_client._status_items(
                    ids, verb="WAIT", wait_ms=int(delay * 1000))
            except SimqError as e:
                self._fail_all(e)
                return
            done = []
            for it in items:
                jid = it.get("id")
                p = self._pending.get(jid)
                if p is None:
                    continue
                st = it.get("state")
                if it.kind == "missing":
                    it = _wire.Item("job id=%s state=failed reason=%s" % (
                        _wire.enc(jid), _wire.enc(
                            "the broker no longer knows this job")))
                    st = "failed"
                if st == "running":
                    for f in p.futures:
                        if not f.running() and not f.done():
                            f.set_running_or_notify_cancel()
                if st in FINISHED:
                    p.job._take(it)
                    done.append(p)
            window = min(max(2 * len(done), self.WINDOW_MIN),
                         self.WINDOW_MAX)
            if done:
                self._resolve(done)
                delay = self.FIRST_WAIT
            else:
                delay = min(delay * 2, self.poll)

    def _resolve(self, done):
        ok = [p for p in done if p.job.info["state"] != "canceled"]
        try:
            reps = self._watch_client._requests(
                [("OUTPUT %s result" % p.job.id, None) for p in ok],
                check=False)
        except SimqError as e:
            reps = [None] * len(ok)
        data = {p.job.id: (r.data if r is not None and r.ok else None)
                for p, r in zip(ok, reps)}
        for p in ok:
            if codec.is_file_stub(data.get(p.job.id)) is not None:
                try:
                    data[p.job.id] = codec.full_result(
                        data[p.job.id], Job(p.job.id,
                                            client=self._watch_client))
                except SimqError:
                    data[p.job.id] = None
        for p in done:
            with self._lock:
                self._pending.pop(p.job.id, None)
            outs = codec.outcomes(data.get(p.job.id))
            if outs is None or len(outs[1]) != len(p.futures):
                e = codec.failure(p.job)
                outs = [None] * len(p.futures)
            else:
                outs = outs[1]
            for f, o in zip(p.futures, outs):
                if f.done():
                    continue
                if not f.running() and not f.set_running_or_notify_cancel():
                    continue
                if o is None:
                    f.set_exception(e)
                elif o[0] == "ok":
                    f.set_result(o[1])
                else:
                    o[1].__cause__ = codec.RemoteTraceback(o[2])
                    f.set_exception(o[1])

    def _fail_all(self, e):
        with self._lock:
            ps = list(self._pending.values())
            self._pending.clear()
        for p in ps:
            for f in p.futures:
                if not f.done() and (f.running() or
                                     f.set_running_or_notify_cancel()):
                    f.set_exception(e)

    # -- shutting down -----------------------------------------------------
    def shutdown(self, wait=True, *, cancel_futures=False):
        """Takes no more calls.  cancel_futures=True cancels the futures
        that have not started, and their jobs on the broker; wait=True
        blocks until the rest are done."""
        with self._lock:
            self._shutdown = True
            ps = list(self._pending.values())
            self._lock.notify_all()
        if cancel_futures:
            ids = []
            for p in ps:
                left = [f for f in p.futures if not f.done()]
                if left and all([cf.Future.cancel(f) for f in left]):
                    ids.append(p.job.id)
            if ids:
                self._cancel_jobs(ids)
        if wait:
            if self._thread is not None:
                self._thread.join()
            self._client.close()
            self._watch_client.close()
            with self._blob_lock:
                self._blobs.clear()
