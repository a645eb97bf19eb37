"""simq.Queue: RQ's spelling, `Queue("sims").enqueue(f, *args)`."""

from .executor import Executor


class Queue:
    """A queue to enqueue Python calls on, RQ-style.

        q = simq.Queue("sims")
        job = q.enqueue(f, 1, 2)      # a simq.Job
        job.wait(); job.result()      # f(1, 2)

    Keyword arguments of Queue() are Executor's (server=, timeout=, ...).
    A thin layer: enqueue() is Executor.submit() and returns the future's
    Job, whose result() unpickles the return value (or raises the task's
    exception again).
    """

    def __init__(self, name="default", **kw):
        self.name = name
        self._ex = Executor(queue=name, **kw)

    def enqueue(self, f, *args, **kwargs):
        """Submits f(*args, **kwargs); returns its simq.Job."""
        return self._ex.submit(f, *args, **kwargs).job

    def close(self):
        self._ex.shutdown(wait=False)

    def __repr__(self):
        return "simq.Queue(%r)" % self.name
