"""A no-op function for tests/bench/python.py, in a module that imports
nothing, so a task pays for the interpreter and simq.task alone."""


def noop(i):
    return i
