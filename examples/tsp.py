#!/usr/bin/env python3
"""A naive travelling-salesman sweep: each task draws random tours of the
same cities and keeps its shortest; the best of all tasks wins.

    python3 examples/tsp.py [--cities 12] [--tasks 40] [--tours 20000]

The functions travel by reference: this file is imported on the workers
as the module `tsp` (its directory is put on the tasks' $PYTHONPATH).
"""

import argparse
import math
import os
import random
import sys


def cities(n, seed=1):
    rnd = random.Random(seed)
    return [(rnd.random(), rnd.random()) for _ in range(n)]


def length(pts, tour):
    return sum(math.dist(pts[tour[i - 1]], pts[tour[i]])
               for i in range(len(tour)))


def best_of_random_tours(n, ntours, seed):
    """The shortest of ntours random tours of the n cities."""
    pts = cities(n)
    rnd = random.Random(seed)
    tour = list(range(n))
    best = (math.inf, None)
    for _ in range(ntours):
        rnd.shuffle(tour)
        d = length(pts, tour)
        if d < best[0]:
            best = (d, tour[:])
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cities", type=int, default=12)
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--tours", type=int, default=20000)
    ap.add_argument("--queue", default=None)
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [here] + [p for p in os.environ.get("PYTHONPATH", "").split(
            os.pathsep) if p])
    sys.path.insert(0, here)
    import simq
    import tsp
    with simq.Executor(queue=a.queue) as ex:
        results = ex.map(tsp.best_of_random_tours, [a.cities] * a.tasks,
                         [a.tours] * a.tasks, range(a.tasks))
        d, tour = min(results)
    print("best of %d random tours of %d cities: %.4f  %s"
          % (a.tasks * a.tours, a.cities, d, tour))


if __name__ == "__main__":
    main()
