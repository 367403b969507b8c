"""Only _loop.py knows which event loop runs: no other module of the package
names asyncio, uvloop or trio in its code (its prose may)."""
import io
import os
import tokenize

import linuxaio

PACKAGE = os.path.dirname(os.path.abspath(linuxaio.__file__))
LOOP_NAMES = {"asyncio", "_asyncio", "uvloop", "trio", "anyio", "outcome"}


def names_in_code(path):
    with open(path, "rb") as f:
        tokens = tokenize.tokenize(io.BytesIO(f.read()).readline)
        return {t.string for t in tokens if t.type == tokenize.NAME}


def python_files():
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(root, name)


def test_only_the_loop_module_names_a_loop():
    offenders = {os.path.relpath(p, PACKAGE): sorted(names_in_code(p) & LOOP_NAMES)
                 for p in python_files() if os.path.basename(p) != "_loop.py"}
    assert {p: n for p, n in offenders.items() if n} == {}


def test_the_loop_module_does():
    assert {"asyncio", "trio"} <= names_in_code(os.path.join(PACKAGE, "_loop.py"))


def test_loops_that_are_gone_are_not_kept():
    """The per-loop state must not hold its loop: 50 asyncio.run() calls
    leave at most the last loop known (the engine's future hooks hold it)."""
    import asyncio
    import gc
    from linuxaio import _loop

    async def one():
        await linuxaio.os.stat(".")

    for _ in range(50):
        asyncio.run(one())
    gc.collect()
    assert len(_loop._states) <= 1
