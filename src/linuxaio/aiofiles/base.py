"""What the rest of linuxaio.aiofiles shares: ``wrap`` (a synchronous function
made a coroutine function, as aiofiles.os.wrap), the awaitable context
manager that ``open`` and the temporary files return, and AsyncBase."""
from __future__ import annotations

import functools

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

from .. import _loop
from .._file.base import AsyncFile

__all__ = ["wrap", "AiofilesContextManager", "AsyncBase"]


def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
    """A coroutine function that calls func in a worker thread (aiofiles'
    ``wrap``: for a function linuxaio has no engine twin of).  ``executor=``
    (a concurrent.futures executor) is used under asyncio when given;
    ``loop=`` is ignored: the running loop is used."""
    @functools.wraps(func)
    async def run(*args: Any, loop: Any = None, executor: Any = None, **kwargs: Any) -> Any:
        call = functools.partial(func, *args, **kwargs)
        if executor is not None:
            running = _loop._asyncio_loop()
            if running is not None:
                return await running.run_in_executor(executor, call)
        return await _loop.to_thread(call)
    return run


# The base of every file object linuxaio.aiofiles gives: linuxaio's own.
AsyncBase = AsyncFile


class AiofilesContextManager:
    """What open() and the temporary files return: await it for the object,
    or ``async with`` it (closed on the way out).  ``_obj`` is the object
    once made (the name aiofiles gives it)."""

    __slots__ = ("_coro", "_obj")

    def __init__(self, coro: Any) -> None:
        self._coro = coro
        self._obj: Any = None

    def __await__(self):
        if self._obj is None:
            self._obj = yield from self._coro.__await__()
        return self._obj

    async def __aenter__(self) -> Any:
        if self._obj is None:    # as ``await self``, one generator fewer
            self._obj = await self._coro
        return self._obj

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        obj, self._obj = self._obj, None
        if obj is not None:
            # a named temporary file is deleted at the context's end, not at
            # close() (delete_on_close=False); others just close
            context_exit = getattr(obj, "_context_exit", None)
            await (context_exit() if context_exit is not None else obj.close())

    def close(self) -> None:
        """Drop the coroutine unawaited (no file was opened)."""
        self._coro.close()
