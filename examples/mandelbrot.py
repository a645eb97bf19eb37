#!/usr/bin/env python3
"""The Mandelbrot set, 500x400 pixels, at most 1000 iterations a pixel,
computed in 40 chunks of 10 rows by simq.Executor.map (or, with --pool,
by multiprocessing.Pool(2) on this machine, to compare).

    python3 examples/mandelbrot.py [--pool] [-o mandelbrot.pgm]

The chunk function travels by reference: this file is imported on the
workers as the module `mandelbrot`.
"""

import argparse
import os
import sys
import time

WIDTH, HEIGHT, ITERATIONS, CHUNKS = 500, 400, 1000, 40
X0, X1, Y0, Y1 = -2.0, 1.0, -1.2, 1.2


def rows(first, count, width=WIDTH, height=HEIGHT, maxiter=ITERATIONS):
    """Iteration counts of rows first..first+count-1, as bytes (0-255)."""
    out = bytearray()
    for y in range(first, first + count):
        ci = Y0 + (Y1 - Y0) * y / (height - 1)
        for x in range(width):
            cr = X0 + (X1 - X0) * x / (width - 1)
            zr = zi = 0.0
            n = 0
            while n < maxiter and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
                n += 1
            out.append(255 if n == maxiter else n % 255)
    return bytes(out)


def chunks():
    step = HEIGHT // CHUNKS
    return list(range(0, HEIGHT, step)), [step] * CHUNKS


def with_simq(queue=None):
    import simq
    import mandelbrot
    with simq.Executor(queue=queue) as ex:
        return b"".join(ex.map(mandelbrot.rows, *chunks()))


def with_pool(n=2):
    import multiprocessing
    import mandelbrot
    with multiprocessing.Pool(n) as p:
        return b"".join(p.starmap(mandelbrot.rows, zip(*chunks())))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", action="store_true",
                    help="multiprocessing.Pool(2) instead of simq")
    ap.add_argument("--queue", default=None)
    ap.add_argument("-o", "--output", help="write the image (PGM)")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [here] + [p for p in os.environ.get("PYTHONPATH", "").split(
            os.pathsep) if p])
    sys.path.insert(0, here)
    t = time.monotonic()
    img = with_pool() if a.pool else with_simq(a.queue)
    dt = time.monotonic() - t
    print("%s: %dx%d, %d chunks, %d iterations: %.2f s"
          % ("multiprocessing.Pool(2)" if a.pool else "simq.Executor",
             WIDTH, HEIGHT, CHUNKS, ITERATIONS, dt))
    if a.output:
        with open(a.output, "wb") as f:
            f.write(b"P5 %d %d 255\n" % (WIDTH, HEIGHT) + img)


if __name__ == "__main__":
    main()
