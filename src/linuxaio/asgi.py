"""ASGI's ``http.response.pathsend`` for servers that lack it, on the engine.

An app may answer with ``{"type": "http.response.pathsend", "path": ...}``
after its ``http.response.start`` when the server lists that extension in
``scope["extensions"]``; Starlette's (so FastAPI's) ``FileResponse`` does so
for a whole-file answer.  Most servers (uvicorn, hypercorn) do not list it,
so the app reads the file itself, a thread hop per step.
``PathsendMiddleware`` lists it, and serves each such message: one engine
request opens and fstats the file, then each chunk is one engine read,
sent as ``http.response.body`` with ``more_body`` (a file shorter than a
chunk: one request opens, reads and closes it).  The app is unchanged::

    app = PathsendMiddleware(app)

The file is closed when the transfer ends, fails, is cancelled, or the
client goes away (``http.disconnect``: a watcher beside the transfer sees
it, since a server may drop a vanished client's bodies without an error;
it starts when a send waits, or past WATCH_AFTER bytes: _send_or_stop).
The chunks of all transfers share a budget per turn of the loop (_pace.py),
so many downloads do not make the loop's turns long for everything else.
No third-party package is needed; it runs under asyncio, uvloop and trio.
"""
from __future__ import annotations

import os
from typing import Any, Awaitable, Callable, MutableMapping

from . import _engine
from ._loop import Resumed as _Resumed
from ._loop import _asyncio_loop
from ._loop import finish as _finish
from ._loop import run as _run
from ._loop import shielded as _shielded
from ._loop import start_soon as _start_soon
from ._pace import pace as _pace

__all__ = ["PathsendMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PATHSEND = "http.response.pathsend"
_e_open_stat, _e_pread, _e_close = _engine.open_stat, _engine.pread, _engine.close
_e_slurp = _engine.aio_slurp

# 256 KiB: a quarter as many reads and sends as Starlette's 64 KiB for the
# same file, while a server's flow control (uvicorn pauses past 64 KiB
# unsent) keeps about one chunk per connection in memory.
DEFAULT_CHUNK_SIZE = 256 * 1024

# A transfer's disconnect watcher (a task awaiting receive()) starts at its
# first send that waits, or once this many body bytes went out: below it a
# client gone unseen costs at most 4 MiB of page-cache reads (~0.5 ms of
# CPU), and the watcher (a task, its coroutines and their cancellation at
# the end: ~20 objects the garbage collector walks while the download
# lasts) costs the transfers that need none nothing.
WATCH_AFTER = 4 << 20


class _Connection:
    """The client's side while a file goes out: whether it went away.

    A watcher task awaits receive() for the http.disconnect; the app's own
    receive() calls afterwards get that disconnect too.  on_disconnect, if
    set, is called when the watcher sees it (starlette.py cancels a send
    the transfer is blocked in)."""

    __slots__ = ("receive", "disconnected", "cancel_watch", "on_disconnect", "sent")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.disconnected = False
        self.sent = 0           # body bytes sent (_send_or_stop)
        self.cancel_watch: Callable[[], None] | None = None
        self.on_disconnect: Callable[[], None] | None = None

    async def app_receive(self) -> Message:
        if self.disconnected:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
        return message

    async def _watch(self) -> None:
        # Once the request's body is all in, ASGI's receive() waits for the
        # disconnect.  One that answers again at once (a test double's, a
        # broken server's) would make this loop spin: stop watching then.
        whole_bodies = 0
        while not self.disconnected:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if self.on_disconnect is not None:
                    self.on_disconnect()
            elif not message.get("more_body", False):
                whole_bodies += 1
                if whole_bodies > 1:
                    return

    def watch(self) -> None:
        if self.cancel_watch is None and not self.disconnected:
            self.cancel_watch = _start_soon(self._watch)

    def unwatch(self) -> None:
        if self.cancel_watch is not None:
            self.cancel_watch()
            self.cancel_watch = None


async def _send_or_stop(send: Send, message: Any, conn: _Connection | None) -> bool:
    """send(message); False if the client went away instead (asyncio
    and uvloop: _loop.Resumed).

    A send that completes without suspending needs no one watching: the
    transfer checks for the disconnect before its next send.  One that
    suspends may wait for ever on a client that vanished (a test's send
    does): from its first suspension on, a watcher awaits the disconnect
    (_Connection) and stops the send.  A server that drops a vanished
    client's bodies without an error (uvicorn) never suspends a send for
    it: past WATCH_AFTER bytes the watcher starts anyway, so such a
    client costs at most that much reading.  conn None (ASGI 2.4: the
    server raises on a disconnect): a plain send."""
    if conn is None:
        await send(message)
        return True
    if conn.disconnected:
        return False
    if _asyncio_loop() is None:
        # trio: a task waiting there can be stopped from outside only by a
        # cancel scope entered before the wait began, so the watcher runs
        # from the first send and the transfer checks between sends.
        conn.watch()
        await send(message)
        return not conn.disconnected
    conn.sent += len(message.get("body", b""))
    if conn.sent > WATCH_AFTER:
        conn.watch()
    it = send(message).__await__()
    try:
        first = it.send(None)
    except StopIteration:
        return True
    rest = _Resumed(it, first)
    conn.on_disconnect = rest.stop
    conn.watch()
    try:
        if not await _finish(rest):
            return False
    finally:
        conn.on_disconnect = None
    return not conn.disconnected


class PathsendMiddleware:
    """Serve ``http.response.pathsend`` for an ASGI app on the engine.

    ``chunk_size``: the bytes each read and each ``http.response.body``
    carries.  Where the server lists the extension itself, requests pass
    through untouched."""

    def __init__(self, app: ASGIApp, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool):
            raise TypeError(f"chunk_size must be an int, not {type(chunk_size).__name__}")
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.app = app
        self.chunk_size = chunk_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions") or {}
        if scope["type"] != "http" or _PATHSEND in extensions:
            return await self.app(scope, receive, send)
        scope = dict(scope)
        scope["extensions"] = {**extensions, _PATHSEND: {}}
        conn = _Connection(receive)

        async def send_or_serve(message: Message) -> None:
            if message["type"] == _PATHSEND:
                await self._send_file(message["path"], send, conn)
            else:
                await send(message)

        try:
            await self.app(scope, conn.app_receive, send_or_serve)
        finally:
            conn.unwatch()

    async def _send_file(self, path: Any, send: Send, conn: _Connection) -> None:
        # ASGI asks for an absolute path; the message is the app's word for
        # which file, so it is opened as given (no directory to stay in).
        # A file shorter than a chunk is one request: open, read, close.
        chunk = self.chunk_size
        first = await _run(_e_slurp, path, 0, chunk)
        if len(first) < chunk:
            # the first body's send is a body step too (_pace.py), paced
            # after the engine's requests as each chunk's is
            wait = _pace()
            if wait is not None:
                await wait
            await send({"type": "http.response.body", "body": first, "more_body": False})
            return
        fd, st = await _run(_e_open_stat, path, os.O_RDONLY, 0, None)
        try:
            # As much as the file had when opened: the app's content-length
            # came from its stat, and a server refuses a longer body.
            # The first chunk is the one already read.
            offset = len(first)
            left = max(0, st.st_size - offset)
            wait = _pace()
            if wait is not None:
                await wait
                if conn.disconnected:
                    return
            if not await _send_or_stop(send, {"type": "http.response.body", "body": first, "more_body": bool(left)}, conn):
                return
            if not left:
                return
            while left > chunk:
                data = await _run(_e_pread, fd, chunk, offset)
                if conn.disconnected:
                    return
                if not data:                 # the file shrank: end early
                    break
                offset += len(data)
                left -= len(data)
                # At most a budget of body steps (chiefly their sends) a
                # loop turn, so many downloads do not make every turn long
                # (_pace.py); after the read: one the engine did wakes this
                # task in a later turn, outside any budget.
                wait = _pace()
                if wait is not None:
                    await wait
                    if conn.disconnected:
                        return
                if not await _send_or_stop(send, {"type": "http.response.body", "body": data, "more_body": True}, conn):
                    return
            data = b""
            if left > 0 and not conn.disconnected:
                data = await _run(_e_pread, fd, left, offset)
                wait = _pace()
                if wait is not None:
                    await wait
            await _send_or_stop(send, {"type": "http.response.body", "body": data, "more_body": False}, conn)
        finally:
            conn.unwatch()
            await _shielded(_e_close, fd)
