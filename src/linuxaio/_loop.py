"""The event-loop glue: the only module that knows asyncio from trio.

``run(submit, *args)`` queues one engine request and waits for it in
whichever loop is running in this thread (asyncio, uvloop, or trio, found at
call time, so anyio works on both).  Each loop watches a duplicate of
``poll_fileno()`` (``_loop_fileno()``: the program may watch the original) and
drains what is ready; a result drained by another thread's loop is handed
to the loop that awaits it (call_soon_threadsafe, trio's token).

The rest of linuxaio asks this module, never which loop runs: run (await
one request), shielded (one a cancellation must not stop: a close),
submit_now (start one now, await it later), Parking (tasks waiting for a
file's lock), start_soon (a watcher beside a task: asgi.py's disconnect),
Resumed and finish (the rest of an await the watcher may stop).

Cancellation: the request is cancelled at once.  One not yet started never
runs; one that already ran has its effect undone where the engine can (an
opened fd is closed); a write or unlink that ran stays done.
"""
from __future__ import annotations

import sys
import _thread
import weakref

from . import _engine

TYPE_CHECKING = False
if TYPE_CHECKING:       # typing and asyncio cost import time; annotations only
    import asyncio
    from typing import Any, Callable

# asyncio costs ~20 ms to import and the callback API, trio and the command
# line never need it (the C _asyncio module imports it too), so until a
# program imports it no asyncio loop can be running: NoneType() is a C call
# that says so.  The first request after asyncio is imported installs its
# _get_running_loop (_hook_asyncio), so an await under asyncio costs no
# Python call.
_no_loop = _get_running_loop = type(None)

def _hook_asyncio() -> bool:
    """Install asyncio's _get_running_loop as the engine's hook once asyncio
    is imported; whether it now is."""
    global _get_running_loop
    # the C function, as asyncio.events re-exports it (a Python twin where
    # the _asyncio extension is missing)
    get = getattr(sys.modules.get("_asyncio"), "_get_running_loop", None) or \
        getattr(sys.modules.get("asyncio.events"), "_get_running_loop", None)
    if get is None:
        return False
    _get_running_loop = get
    _engine._set_loop_hooks(get, _state, _trio_wait)
    return True


def _asyncio_loop() -> Any:
    """The running asyncio loop, or None (trio, or no loop)."""
    loop = _get_running_loop()
    if loop is None and _get_running_loop is _no_loop and _hook_asyncio():
        loop = _get_running_loop()
    return loop


def asyncio_current_task() -> Any:
    """asyncio.current_task, for a caller that runs under an asyncio loop
    (asyncio is imported then; _pace.py asks which task a step is in)."""
    return sys.modules["asyncio"].current_task


def _trio_outside(submit: Callable[..., Any], *args: Any) -> Any:
    """A request made while no asyncio loop was found (the engine's
    elsewhere hook, _trio_wait, made trio's coroutine for it) and awaited
    outside a trio run: made before asyncio.run, or before asyncio's hook
    was installed (asyncio imported after linuxaio).  Under a running
    asyncio loop, that loop's awaitable for it (the request starts now);
    else None (no loop: the caller raises)."""
    if _asyncio_loop() is not None:
        return _engine._run(submit, *args)
    return None


class _LoopState:
    """What linuxaio keeps per asyncio loop."""

    # No reference to the loop: a WeakKeyDictionary's value that holds its
    # key keeps it alive for ever (every loop asyncio.run() made, kept).
    __slots__ = ("inline", "__weakref__")

    def __init__(self, loop: "asyncio.AbstractEventLoop") -> None:
        # asyncio's loops run reader callbacks after the callbacks already
        # queued, so a drain may wake tasks inline; uvloop polls first.
        self.inline = type(loop).__module__.startswith("asyncio")
        # A number of its own: a program's add_reader/remove_reader of
        # poll_fileno() (the README's callback style) must not touch it.
        loop.add_reader(_engine._loop_fileno(), _engine._drain, self.inline)


_states: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState]" = weakref.WeakKeyDictionary()


def _state(loop: asyncio.AbstractEventLoop) -> _LoopState:
    state = _states.get(loop)
    if state is None:
        state = _states[loop] = _LoopState(loop)
    return state


# run(submit, *args): queue submit(*args, <completion>) and return an
# awaitable for its result.  Under a running asyncio loop (_engine._run, in
# C: it is on every await's path) the request is bound to the loop and is
# its own future (future.c): the task waits on it, and a cancellation
# cancels the request.  Otherwise _trio_wait: trio, or an error.
run: Callable[..., Any] = _engine._run


# ---- what the rest of linuxaio asks of a loop, whichever runs ----

async def shielded(submit: Callable[..., Any], *args: Any) -> Any:
    """Await one engine request that a cancellation must not stop (a close:
    a cancelled close request would leave the fd open).  The caller still
    sees the cancellation, but the request runs to its end."""
    if _asyncio_loop() is not None:
        return await sys.modules["asyncio"].shield(run(submit, *args))
    import trio
    with trio.CancelScope(shield=True):
        return await run(submit, *args)


def submit_now(submit: Callable[..., Any], *args: Any) -> Any:
    """Queue an engine request now, to be awaited later (once; cancel() to
    drop it unawaited).

    Under asyncio/uvloop the request is its own future and starts at once.
    Under trio a request is submitted only when it is awaited, so there it
    starts at the await (no overlap, same results)."""
    if _asyncio_loop() is not None:
        return run(submit, *args)
    return _Deferred(submit, args)


class _Deferred:
    __slots__ = ("submit", "args")

    def __init__(self, submit: Callable[..., Any], args: tuple) -> None:
        self.submit, self.args = submit, args

    def __await__(self) -> Any:
        return run(self.submit, *self.args).__await__()

    def cancel(self) -> None:
        pass


class Parking:
    """Tasks parked until a holder lets them go (a file's lock), under
    whichever loop each runs: asyncio futures, or trio's parking lot."""

    __slots__ = ("_futs", "_lot")

    def __init__(self) -> None:
        self._futs: list = []
        self._lot: Any = None

    async def park(self) -> None:
        loop = _asyncio_loop()
        if loop is not None:
            fut = loop.create_future()
            self._futs.append(fut)
            await fut
        else:
            if self._lot is None:
                import trio
                self._lot = trio.lowlevel.ParkingLot()
            await self._lot.park()

    def unpark_all(self) -> None:
        futs, self._futs = self._futs, []
        for fut in futs:
            if not fut.done():
                fut.set_result(None)
        if self._lot is not None:
            self._lot.unpark_all()


def start_soon(fn: Callable[..., Any], *args: Any) -> Callable[[], None]:
    """Run ``await fn(*args)`` beside the caller, in whichever loop runs;
    returns a function that cancels it (a no-op once it ended).  What it
    raises is dropped (its caller polls for its effect instead): asyncio
    runs it as a task, trio as a system task in a cancel scope of its own
    (it may outlive no nursery of the caller's)."""
    loop = _asyncio_loop()
    if loop is not None:
        task = loop.create_task(_quietly(fn, args))
        return task.cancel
    import trio
    scope = trio.CancelScope()

    async def in_scope() -> None:
        with scope:
            await _quietly(fn, args)

    trio.lowlevel.spawn_system_task(in_scope)
    return scope.cancel


class Resumed:
    """The rest of an await whose first step the caller took itself
    (``it.send(None)`` answered ``first``): awaiting this yields first to
    the loop, then forwards what the loop sends or throws (PEP 380's
    expansion of ``yield from``), so the await goes on as if never split.

    stop() cancels it from outside (asyncio): the future it waits on is
    cancelled, so the await wakes with a CancelledError, as a cancelled
    task would, but the task is not cancelled (its cancel count and any
    cancel scope above are untouched).  A step that waits on no future (a
    bare yield) has CancelledError thrown in at its next step instead."""

    __slots__ = ("it", "waiting", "stopped", "pending")

    def __init__(self, it: Any, first: Any) -> None:
        self.it, self.waiting = it, first
        self.stopped = self.pending = False

    def stop(self) -> None:
        self.stopped = True
        cancel = getattr(self.waiting, "cancel", None)
        if cancel is None or not cancel():
            self.pending = True

    def __await__(self) -> Any:
        it = self.it
        while True:
            try:
                sent = yield self.waiting
            except GeneratorExit:
                it.close()
                raise
            except BaseException as exc:
                step, arg = it.throw, exc
            else:
                step, arg = it.send, sent
                if self.pending:
                    self.pending = False
                    step, arg = it.throw, sys.modules["asyncio"].CancelledError()
            try:
                self.waiting = step(arg)
            except StopIteration as stop:
                return stop.value


async def finish(rest: Resumed) -> bool:
    """Await rest to its end: True, or False where its stop() ended it
    (a CancelledError that is the stop's only while the task itself is
    not being cancelled: then it is the caller's)."""
    asyncio = sys.modules["asyncio"]     # a Resumed is asyncio's: imported
    try:
        await rest
    except asyncio.CancelledError:
        if not rest.stopped or asyncio.current_task().cancelling():
            raise
        return False
    return True


async def _quietly(fn: Callable[..., Any], args: tuple) -> None:
    try:
        await fn(*args)
    except Exception:
        pass


# ---- trio ----

class _TrioRun:
    """Per trio run: its token, its thread, and a drainer system task."""

    def __init__(self, trio: Any) -> None:
        import outcome

        self.trio = trio
        self.token = trio.lowlevel.current_trio_token()
        self.current_token = trio.lowlevel.current_trio_token
        self.owner = _thread.get_ident()
        self.reschedule = trio.lowlevel.reschedule
        self.current_task = trio.lowlevel.current_task
        self.wait = trio.lowlevel.wait_task_rescheduled
        self.checkpoint = trio.lowlevel.checkpoint
        self.aborted = trio.lowlevel.Abort.SUCCEEDED
        self.Value, self.Error = outcome.Value, outcome.Error
        trio.lowlevel.spawn_system_task(self._drain, name="linuxaio drainer")
        _engine._trio_drainers(1)

    async def _drain(self) -> None:
        lowlevel = self.trio.lowlevel
        wait_readable, pass_turn = lowlevel.wait_readable, lowlevel.cancel_shielded_checkpoint
        drain, npending, fd = _engine._drain, _engine.npending, _engine._loop_fileno()
        try:
            while True:
                # While results keep coming, a turn of the scheduler is cheaper
                # than registering the eventfd with epoll again.
                if npending():
                    await pass_turn()
                else:
                    await wait_readable(fd)
                drain()
        finally:
            # no drainer left: the next call done inline sets up its run
            _engine._trio_drainers(-1)


_trio_run_var: Any = None   # a trio RunVar holding this run's _TrioRun


def _trio_run() -> _TrioRun:
    global _trio_run_var
    trio = sys.modules.get("trio")
    if trio is None:
        raise RuntimeError("linuxaio: no running asyncio loop or trio run in this thread")
    if _trio_run_var is None:
        _trio_run_var = trio.lowlevel.RunVar("linuxaio")
    try:
        run = _trio_run_var.get(None)   # RuntimeError outside a trio run
    except RuntimeError:
        raise RuntimeError("linuxaio: no running asyncio loop or trio run in this thread") from None
    if run is None:
        run = _TrioRun(trio)
        _trio_run_var.set(run)
    return run


_NOTHING = object()
_TAKING, _WAITING, _ABORTED = 0, 1, 2
_get_ident = _thread.get_ident


class _TrioWaiter:
    """One trio task awaiting one request; the request's callback.

    state: _TAKING while the task will take the result itself (it is kept
    in got), _WAITING once the task sleeps until rescheduled, _ABORTED once
    cancelled (a result still on its way is undone: an fd is closed)."""

    __slots__ = ("run", "req", "task", "got", "state")

    def __init__(self, run: _TrioRun) -> None:
        self.run, self.got, self.state = run, _NOTHING, _TAKING

    def __call__(self, value: Any) -> None:
        run = self.run
        if _get_ident() == run.owner:
            self.settle(value)
        else:                # drained by another thread: settle in this run's own
            run.token.run_sync_soon(self.settle, value)

    def settle(self, value: Any) -> None:
        # Always in this run's thread, between task steps: never between
        # two lines of _trio_engine's body.
        state = self.state
        if state == _TAKING:
            self.got = value
        elif state == _ABORTED:
            self.req._undo()     # nobody takes it
        else:
            run = self.run
            run.reschedule(self.task, run.Error(value) if isinstance(value, BaseException)
                           else run.Value(value))

    def abort(self, raise_cancel: Any) -> Any:
        self.state = _ABORTED
        self.req.cancel()        # the callback is suppressed from now on
        return self.run.aborted


def _trio_setup() -> None:
    """Hand the C coroutine (_trio_call) trio's two halves of a checkpoint;
    start this run's drainer (_trio_call asks again while no run has one);
    raises, saying why, outside a trio run."""
    _trio_run()
    lowlevel = sys.modules["trio"].lowlevel
    msg = _trio_schedule_msg(lowlevel.cancel_shielded_checkpoint)
    _engine._set_trio_points(lowlevel.checkpoint_if_cancelled,
                             lowlevel.cancel_shielded_checkpoint,
                             msg, sys.modules["outcome"].Value if msg is not None else None,
                             _trio_run_context(lowlevel))


def _trio_schedule_msg(schedule_point: Any) -> Any:
    """What trio's cancel_shielded_checkpoint() yields to its runner, when
    its body is still `(await _async_yield(CancelShieldedCheckpoint)).unwrap()`
    (trio 0.22-0.35): _trio_call yields it itself, without the coroutine and
    the generator under it (~1,000 instructions of a 4-5k await), and takes
    the outcome.Value trio sends back without its unwrap() (it holds None;
    anything else is unwrapped).  None otherwise: the coroutine is awaited."""
    traps = sys.modules.get("trio._core._traps")
    msg = getattr(traps, "CancelShieldedCheckpoint", None)
    code = getattr(schedule_point, "__code__", None)
    if msg is None or code is None or set(code.co_names) != {
            "_async_yield", "CancelShieldedCheckpoint", "unwrap"}:
        return None
    return msg


def _trio_run_context(lowlevel: Any) -> Any:
    """trio's GLOBAL_RUN_CONTEXT when checkpoint_if_cancelled() and
    current_task() have their known bodies (trio 0.22-0.35: the current
    task is GLOBAL_RUN_CONTEXT.task; the check reads its _cancel_status,
    _runner and counts its _cancel_points): _trio_call then does that check
    itself, without the coroutine (~1,500 instructions of a ~35,000 call).
    None otherwise: the coroutine is awaited."""
    run = sys.modules.get("trio._core._run")
    ctx = getattr(run, "GLOBAL_RUN_CONTEXT", None)
    check = getattr(lowlevel.checkpoint_if_cancelled, "__code__", None)
    current = getattr(lowlevel.current_task, "__code__", None)
    if ctx is None or check is None or current is None or set(check.co_names) != {
            "current_task", "_cancel_status", "effectively_cancelled", "_runner", "main_task",
            "ki_pending", "_core", "checkpoint", "AssertionError", "_cancel_points"} \
            or set(current.co_names) != {"GLOBAL_RUN_CONTEXT", "task", "AttributeError",
                                         "RuntimeError"} \
            or getattr(run, "current_task", None) is not lowlevel.current_task:
        return None
    return ctx


_last_run: Any = None     # the _TrioRun found last (any thread's)
_new_waiter = object.__new__
_trio_submit = _engine._trio_submit


async def _trio_engine(req: Any, submit: Any = None, *args: Any) -> Any:
    """Await req (parsed by _trio_call, not completed inline) through the
    engine, or without req the request submit(*args, waiter) makes (a
    batch's): the task sleeps until the drainer wakes it."""
    global _last_run
    run = _last_run
    try:
        # The run's token says whether the last run found is this one, at a
        # fifth of the RunVar's cost (it raises outside a trio run).
        if run is None or run.current_token() is not run.token:
            run = _last_run = _trio_run()
    except RuntimeError:
        if req is None:
            aw = _trio_outside(submit, *args)
            if aw is not None:
                return await aw
        run = _last_run = _trio_run()   # raises, saying why
    # _TrioWaiter(run) without a Python __init__ call: half the cost
    w = _new_waiter(_TrioWaiter)
    w.run, w.got, w.state = run, _NOTHING, _TAKING
    if req is not None:
        w.req = req
        _trio_submit(req, w)
    else:
        req = w.req = submit(*args, w)
        got = w.got
        if got is not _NOTHING:     # done already
            if isinstance(got, BaseException):
                raise got
            return got
    # A quick request (see poll.c, lx_await_quick_ok): one checkpoint while a worker runs
    # it, then take the result here instead of sleeping until the drainer
    # wakes this task.
    if req._quick():
        try:
            await run.checkpoint()
        except BaseException:
            req._abandon()
            w.state = _ABORTED
            if w.got is not _NOTHING:
                req._undo()      # it finished, but nobody will take it
            else:
                req.cancel()
            raise
        if w.got is _NOTHING:
            req._take()
    got = w.got
    if got is not _NOTHING:
        if isinstance(got, BaseException):
            raise got
        return got
    w.task = run.current_task()
    w.state = _WAITING
    return await run.wait(w.abort)


_engine._set_trio_hooks(_trio_setup, _trio_engine, _trio_outside)
# _trio_wait(submit, *args): the coroutine that awaits one request under
# trio (C, trio_fast.c): trio's cancel check, an inline try, trio's
# schedule point; or, what the try cannot finish, _trio_engine.  It is the
# engine's hook for a request made with no asyncio loop found, asyncio's
# hook installed or not: awaited outside trio it asks _trio_outside, which
# installs asyncio's hook once asyncio is imported.
_trio_wait = _engine._trio_call


if not _hook_asyncio():
    _engine._set_loop_hooks(_get_running_loop, _state, _trio_wait)
# reinit() tells a trio task awaiting a request it drops: OSError(ECANCELED)
_engine._set_task_waiter(_TrioWaiter)


def run_main(coro: Any) -> Any:
    """Run a coroutine to completion on a fresh asyncio event loop: the
    command-line tools' main (copy, rm), which own their process."""
    import asyncio
    return asyncio.run(coro)


async def run_to_end(submit: Callable[..., Any], *args: Any,
                     undo: Callable[[Any], None] | None = None) -> Any:
    """Await one engine request (a batch) to its end even when cancelled:
    the caller sees the cancellation only once it has finished, so what
    the request uses (the fds of a copy) can then be released safely.
    undo(result) runs when the request succeeded but the caller was
    cancelled: what it made (the fds a batch of opens returns) is then
    nobody's but undo's."""
    if _asyncio_loop() is not None:
        asyncio = sys.modules["asyncio"]
        inner = asyncio.ensure_future(run(submit, *args))
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            while not inner.done():
                try:
                    await asyncio.shield(inner)
                except asyncio.CancelledError:
                    pass
            if undo is not None and not inner.cancelled() and inner.exception() is None:
                undo(inner.result())
            raise
    import trio
    with trio.CancelScope(shield=True):
        result = await run(submit, *args)
    try:
        await trio.lowlevel.checkpoint_if_cancelled()
    except BaseException:
        if undo is not None:
            undo(result)
        raise
    return result


async def to_thread(func: Callable[..., Any], *args: Any) -> Any:
    """Call func(*args) in a worker thread of the running loop (asyncio's
    default executor, trio's thread cache) and await its result.  For what
    the engine cannot do: a Python object with no fd behind it (io.BytesIO,
    a wrapped file of unknown kind)."""
    loop = _asyncio_loop()
    if loop is not None:
        if args:
            import functools
            func = functools.partial(func, *args)
        return await loop.run_in_executor(None, func)
    import trio
    return await trio.to_thread.run_sync(func, *args)
