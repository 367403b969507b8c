"""Regression tests for what the sanitizers and memory checkers found
(tools/sanitize.sh, tools/valgrind.sh, ThreadSanitizer: see the README's
"Checking the engine" notes).  Races found by ThreadSanitizer have no test
here: no ordinary test can see them; rerun TSan (tools/sanitize.sh notes)."""
import asyncio
import gc
import os
import weakref

import pytest

import linuxaio
import linuxaio.os as aos


def run_and_forget(run, inline):
    """Run one loop that awaits a few linuxaio calls; return a weak
    reference to that loop."""
    ref = []

    async def main():
        ref.append(weakref.ref(asyncio.get_running_loop()))
        await aos.stat(os.curdir)
        fd = await aos.open(os.curdir, os.O_RDONLY)
        await aos.close(fd)

    before = linuxaio.inline()
    linuxaio.inline(inline)
    try:
        run(main())
    finally:
        linuxaio.inline(before)
    return ref[0]


RUNS = [("asyncio", asyncio.run)]
try:
    import uvloop
    RUNS.append(("uvloop", uvloop.run))
except ImportError:   # pragma: no cover - uvloop is in the test extra
    pass


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "engine"])
@pytest.mark.parametrize("name,run", RUNS, ids=[n for n, _ in RUNS])
def test_a_finished_loop_is_not_kept_alive(name, run, inline):
    # future.c remembered the last loop by a strong reference (twice): the
    # last loop asyncio.run() or uvloop.run() made, with all it refers to,
    # stayed alive until another loop came along.
    ref = run_and_forget(run, inline)
    gc.collect()
    assert ref() is None, f"the {name} loop is still alive"


# twenty loops and full collections of a whole suite's heap: past the default
# 30 s under -X dev on a loaded machine (CI's 3.13 run)
@pytest.mark.aio_timeout(180)
def test_a_new_loop_at_a_dead_loops_address_is_still_set_up():
    # The weak reference must not match a new loop that happens to reuse a
    # dead one's address: each loop gets its own set-up (its eventfd reader).
    for _ in range(20):
        ref = run_and_forget(asyncio.run, False)
        gc.collect()
        assert ref() is None
    assert linuxaio.nreqs() == 0
