"""``limiter=``: bound how many of one object's requests run at once.

anyio's ``Path``, ``open_file`` and ``wrap_file`` take a ``CapacityLimiter``;
linuxaio's do too.  A limiter is anything usable as ``async with limiter:``
(anyio's and trio's CapacityLimiter, asyncio.Semaphore) or with ``await
limiter.acquire()`` / ``limiter.release()``.  A token is held while a request
of that object is in the engine (or in a worker thread).

A task already holding a token of a limiter does not take a second one (a
method that calls another of the same object, or of a path derived from it,
would otherwise fail: anyio's CapacityLimiter refuses a borrower twice, and
a semaphore would deadlock at capacity 1).  Which limiters the current task
holds is a context variable: per task under asyncio and trio.
"""
from __future__ import annotations

import contextvars
import functools

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Awaitable, Callable

_held: contextvars.ContextVar[frozenset] = contextvars.ContextVar(
    "linuxaio_limiters_held", default=frozenset())


def check(limiter: Any) -> Any:
    """The limiter argument, checked at once: None or a usable limiter."""
    if limiter is None:
        return None
    if hasattr(limiter, "__aenter__") and hasattr(limiter, "__aexit__"):
        return limiter
    if hasattr(limiter, "acquire") and hasattr(limiter, "release"):
        return limiter
    raise TypeError(f"limiter must be a CapacityLimiter (async with, or acquire/release), "
                    f"not {type(limiter).__name__}")


async def run_limited(limiter: Any, coro_fn: Callable[..., Awaitable[Any]], *args: Any,
                      **kwargs: Any) -> Any:
    """await coro_fn(*args, **kwargs) holding one of limiter's tokens."""
    held = _held.get()
    if id(limiter) in held:
        return await coro_fn(*args, **kwargs)
    if hasattr(limiter, "__aenter__"):
        async with limiter:
            token = _held.set(held | {id(limiter)})
            try:
                return await coro_fn(*args, **kwargs)
            finally:
                _held.reset(token)
    await limiter.acquire()
    try:
        token = _held.set(held | {id(limiter)})
        try:
            return await coro_fn(*args, **kwargs)
        finally:
            _held.reset(token)
    finally:
        limiter.release()


def limited_method(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A coroutine method run under self.limiter (unlimited when it is None)."""
    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        limiter = getattr(self, "_limiter", None)
        if limiter is None:
            return await method(self, *args, **kwargs)
        return await run_limited(limiter, method, self, *args, **kwargs)
    return wrapper

