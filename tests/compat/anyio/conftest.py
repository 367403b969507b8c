"""Run anyio 4.16.0's tests/test_fileio.py (unchanged) against linuxaio.

The swap: while pytest imports test_fileio.py, anyio's names ``Path``,
``open_file``, ``wrap_file`` and ``AsyncFile`` are linuxaio's ``Path``,
``open``, ``wrap_file`` and ``AsyncFile`` (the test module binds them at
import; anyio itself is restored at once, so anyio's own CapacityLimiter,
CancelScope and pytest plugin are the real ones).

From anyio's tests/conftest.py (MIT, see LICENSE here) comes what
test_fileio.py needs: the ``anyio_backend`` fixture's parameters (asyncio,
asyncio+uvloop, asyncio+eager from 3.12, trio) and the blockbuster fixture,
here watching linuxaio's modules: a blocking call made on the event loop's
thread from linuxaio's code fails the test.  anyio's pyproject runs its
tests in anyio's auto mode; here each coroutine test of test_fileio.py gets
the anyio mark (the rest of linuxaio's suite does not use the plugin).
"""
import asyncio
import inspect
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import uvloop
except ImportError:         # pragma: no cover
    uvloop = None

asyncio_params = [
    pytest.param(("asyncio", {"debug": True}), id="asyncio"),
    pytest.param(("asyncio", {"debug": True, "loop_factory": getattr(uvloop, "new_event_loop",
                                                                     None)}),
                 marks=[pytest.mark.skipif(uvloop is None, reason="uvloop not available")],
                 id="asyncio+uvloop"),
]
if sys.version_info >= (3, 12):
    def eager_task_loop_factory() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        return loop

    asyncio_params.append(
        pytest.param(("asyncio", {"debug": True, "loop_factory": eager_task_loop_factory}),
                     id="asyncio+eager"))
backend_params = asyncio_params + [pytest.param("trio", id="trio")]

SWAP = {"Path": "Path", "open_file": "open", "wrap_file": "wrap_file", "AsyncFile": "AsyncFile"}


def pytest_collectstart(collector):
    """Import test_fileio.py with linuxaio's names in anyio's place."""
    if type(collector) is pytest.Module and collector.path.name == "test_fileio.py" \
            and str(collector.path).startswith(HERE):
        import anyio
        import linuxaio
        saved = {name: getattr(anyio, name) for name in SWAP}
        try:
            for name, ours in SWAP.items():
                setattr(anyio, name, getattr(linuxaio, ours))
            collector.obj      # imports the module now
        finally:
            for name, value in saved.items():
                setattr(anyio, name, value)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    if str(collector.path).startswith(HERE) and inspect.iscoroutinefunction(obj):
        marks = list(getattr(obj, "pytestmark", []))
        if not any(m.name == "anyio" for m in marks):
            obj.pytestmark = marks + [pytest.mark.anyio.mark]


@pytest.fixture(params=backend_params)
def anyio_backend(request):
    return request.param


@pytest.fixture(autouse=True)
def blockbuster(request):
    """anyio's blockbuster fixture, watching linuxaio instead of anyio."""
    if not str(request.path).startswith(HERE):
        yield None
        return
    from blockbuster import blockbuster_ctx
    with blockbuster_ctx("linuxaio") as bb:
        yield bb
