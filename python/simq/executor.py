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
from .client import FINISHED, Client, Job
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


def dumps_call(single, calls, by_value=None):
    """The pickled (single, [(fn, args, kwargs)...]): by reference with
    pickle where it can, by value with cloudpickle where it must (or
    always, by_value=True)."""
    need = by_value is True or any(not _by_reference(c[0]) for c in calls)
    if not need:
        try:
            return pickle.dumps((single, calls), protocol=4)
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
    return cp.dumps((single, calls), protocol=4)


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
    simq; pythonpath=() leaves $PYTHONPATH alone.

    by_value: None (default) sends functions by reference (module and
    qualified name) and by value with cloudpickle only those that need it
    (__main__, lambdas, closures); True always by value; False never.

    warm: True (default) lets the workers run the tasks through a warm
    runner (SIMQ_RUNNER=3 in their environment, simq-runner(7)): an
    interpreter per slot that has the imports done and forks a fresh
    process per task.  warm=False starts a new interpreter per task.

    Arguments and results travel pickled inside the job: a call must fit a
    request line (64 KiB, base64 after compression) and a result the
    broker's result limit (64 KiB), else PayloadTooLarge.
    """

    def __init__(self, queue=None, server=None, token=None, client=None,
                 priority=None, timeout=None, retries=None, env=None,
                 cwd=None, name=None, python=None, pythonpath=None,
                 by_value=None, warm=True, poll=0.2):
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
            pythonpath = [here] + [p for p in os.environ.get(
                "PYTHONPATH", "").split(os.pathsep) if p]
        env = dict(env or {})
        if pythonpath:
            env.setdefault("PYTHONPATH", os.pathsep.join(pythonpath))
        if warm:
            # The first 3 words of the task's command start its runner.
            env.setdefault("SIMQ_RUNNER", "3")
        self.warm = bool(warm)
        self._opts = dict(queue=queue, priority=priority, timeout=timeout,
                          retries=retries, env=env, cwd=cwd)
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
    def _line(self, single, calls):
        word = codec.encode_call(dumps_call(single, calls, self.by_value))
        fn = calls[0][0]
        name = self._name or getattr(fn, "__qualname__", None) or \
            type(fn).__name__
        try:
            return self._client._submit_line(
                [self.python, "-m", "simq.task", word], name=name,
                **self._opts)
        except PayloadTooLarge:
            raise PayloadTooLarge(
                "the pickled call of %s takes %d bytes; a task's call holds "
                "at most about %d until large arguments travel as blobs"
                % (name, len(word), _wire.LINE_MAX - 1024)) from None

    def _submit_groups(self, groups):
        """groups: [(single, [(fn, args, kwargs)...])]; returns a list of
        lists of futures, pipelining the submits."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after "
                                   "shutdown")
        lines = [self._line(s, c) for s, c in groups]
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

    # The watcher holds a WAIT on the oldest WINDOW pending jobs (they are
    # the likeliest to end first) and looks at all of them with STATUS
    # every SWEEP seconds, so that a job far down the list that ends
    # early is seen within that time.
    WINDOW = 128
    SWEEP = 1.0

    def _watch(self):
        delay = 0.005
        last_sweep = time.monotonic()
        while True:
            with self._lock:
                while not self._pending and not self._shutdown:
                    self._lock.wait()
                if not self._pending and self._shutdown:
                    return
                now = time.monotonic()
                sweep = now - last_sweep >= self.SWEEP
                if sweep or len(self._pending) <= self.WINDOW:
                    ids = list(self._pending)
                    last_sweep = now
                else:
                    ids = list(itertools.islice(self._pending, self.WINDOW))
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
            if done:
                self._resolve(done)
                delay = 0.005
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
