#!/usr/bin/env python3
"""operator.add on the workers, three ways: Executor.map, Executor.submit,
and RQ's spelling.  Needs a broker and a worker:

    simqd &  simq-worker -j 2 &
    python3 examples/add.py
"""

import operator

import simq

with simq.Executor() as ex:
    print(list(ex.map(operator.add, range(10), range(10, 20))))
    print(ex.submit(operator.add, 2, 3).result())

job = simq.Queue().enqueue(operator.add, "simq ", "for Python")
job.wait()
print(job.id, job.state, job.result())
