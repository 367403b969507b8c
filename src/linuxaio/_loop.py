"""The event-loop glue: the only module that knows asyncio from trio.

``run(submit, *args)`` queues one engine request and waits for it in
whichever loop is running in this thread (asyncio, uvloop, or trio, found at
call time, so anyio works on both).  Each loop watches ``poll_fileno()`` and
drains what is ready; a result drained by another thread's loop is handed
to the loop that awaits it (call_soon_threadsafe, trio's token).

Cancellation: the request is cancelled at once.  One not yet started never
runs; one that already ran has its effect undone where the engine can (an
opened fd is closed); a write or unlink that ran stays done.
"""
from __future__ import annotations

import asyncio
import sys
import threading
import weakref
from typing import Any, Callable

from . import _engine

_get_running_loop = asyncio._get_running_loop   # C; None outside a loop
_watched: "weakref.WeakSet[asyncio.AbstractEventLoop]" = weakref.WeakSet()
_last_watched: Any = None


def _watch(loop: asyncio.AbstractEventLoop) -> None:
    """Have this loop drain completions whenever the eventfd is readable."""
    global _last_watched
    if loop not in _watched:
        loop.add_reader(_engine.poll_fileno(), _engine._drain)
        _watched.add(loop)
    _last_watched = loop


def run(submit: Callable[..., Any], *args: Any) -> Any:
    """Queue submit(*args, <completion>) and return an awaitable for its result."""
    loop = _get_running_loop()
    if loop is not None:
        if loop is not _last_watched:
            _watch(loop)
        # Bound to the loop, the request is its own future (future.c): the
        # task waits on it, and a cancellation cancels the request.
        return submit(*args, loop)
    return _trio_wait(submit, args)


# ---- trio ----

_trio_drainers: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()


async def _trio_drain() -> None:
    import trio

    fd = _engine.poll_fileno()
    while True:
        await trio.lowlevel.wait_readable(fd)
        _engine.poll_cb()


def _trio_watch(trio: Any) -> None:
    """One drainer system task per trio run."""
    token = trio.lowlevel.current_trio_token()
    if token not in _trio_drainers:
        _trio_drainers[token] = True
        trio.lowlevel.spawn_system_task(_trio_drain, name="linuxaio drainer")


async def _trio_wait(submit: Callable[..., Any], args: tuple) -> Any:
    trio = sys.modules.get("trio")
    if trio is None:
        raise RuntimeError("linuxaio: no running asyncio loop or trio run in this thread")
    try:
        task = trio.lowlevel.current_task()
    except RuntimeError:
        raise RuntimeError("linuxaio: no running asyncio loop or trio run in this thread") from None
    import outcome

    _trio_watch(trio)
    token = trio.lowlevel.current_trio_token()
    owner = threading.get_ident()
    reschedule = trio.lowlevel.reschedule

    aborted = False

    def wake(result: Any) -> None:
        if not aborted:
            reschedule(task, result)

    def done(value: Any) -> None:
        result = outcome.Error(value) if isinstance(value, BaseException) else outcome.Value(value)
        if threading.get_ident() == owner:
            reschedule(task, result)
        else:                # drained by another thread: wake the task in its own
            token.run_sync_soon(wake, result)

    req = submit(*args, done)

    def abort(raise_cancel: Any) -> Any:
        nonlocal aborted
        aborted = True
        req.cancel()         # the callback is suppressed from now on
        return trio.lowlevel.Abort.SUCCEEDED

    return await trio.lowlevel.wait_task_rescheduled(abort)
