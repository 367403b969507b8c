"""Starlette's ``FileResponse`` and ``StaticFiles`` with their file I/O on the
engine (``pip install linuxaio[starlette]``).

Drop-in subclasses: the same constructor parameters, headers, status codes,
ranges, conditional requests and errors as Starlette's own (its own tests of
them run against these, tests/starlette/).  What changes is where the file
system is touched.  Starlette sends the stat, the open, every chunk's read
and the close through anyio's thread pool, whose 40 tokens it shares with
every synchronous endpoint; here each is one engine request awaited on the
loop, and ``StaticFiles``'s lookup of a request's path (a realpath and a stat,
several lstats in all) is ONE request: ``openat2(RESOLVE_BENEATH)`` below the
served directory, an fstat, and the resolved name (ops_serve.c).  The kernel
refuses every ``..``, absolute symlink or symlink leading out of the
directory at each step of the walk, so a traversal cannot slip through a race
between checking a name and opening it.

Nothing here blocks the loop's thread: no stat, open or read happens on it.
``StaticFiles.lookup_path`` stays Starlette's synchronous method (a caller or
a subclass may use or replace it); a replaced one is honoured and run in a
worker thread, as Starlette runs it.

Works wherever the engine does: asyncio, uvloop, and trio (a server running
on trio, such as hypercorn, or anyio's trio backend).
"""
from __future__ import annotations

import errno
import os
import stat as _stat
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette import staticfiles as _staticfiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, Headers
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse as _FileResponse
from starlette.responses import RedirectResponse, Response

from . import _engine
from .asgi import _Connection, _send_or_stop
from ._loop import _asyncio_loop
from ._loop import run as _run
from ._loop import shielded as _shielded
from ._pace import pace as _pace

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import Receive, Scope, Send

__all__ = ["FileResponse", "StaticFiles"]

_e_stat, _e_open, _e_pread, _e_close = _engine.stat, _engine.open, _engine.pread, _engine.close
_e_slurp = _engine.aio_slurp
_e_serve_lookup, _e_realpath = _engine.serve_lookup, _engine.realpath

# openat2(2)'s resolve bits (linux/openat2.h; kernel ABI, fixed): stay below
# the directory, and no /proc magic links (which could name any open file).
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_BENEATH = _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS
# openat2 refused the walk: EXDEV, it would have left the directory (the
# answer is then Starlette's own realpath check: an absolute symlink that
# lands back inside is allowed there); EAGAIN, a rename or mount raced the
# walk (openat2(2)); ENOSYS, a kernel before 5.6, or EPERM, a seccomp filter
# that denies the newer syscall.
_ASK_STARLETTE = {errno.EXDEV, errno.EAGAIN, errno.ENOSYS, errno.EPERM}


class _EngineFile:
    """The file a response streams: reads at its own position, each one
    engine request (pread into a new bytes: a body must be bytes, and a
    server may keep the object queued after send() returns, so no buffer
    is reused).

    close_at_end: the first short read (the end of the file) closes it
    there, before the caller sends that last chunk.  The last body's send
    completes the response, and Starlette then cancels the task that sends
    the file (its task group, while a listener waits for the disconnect:
    the roads of ranges and trio's; the whole file goes without one);
    a close still awaited at that point takes the cancellation: a
    CancelledError and its traceback through every frame of the transfer,
    a reference cycle per download for the garbage collector (whose full
    collections, paid in the loop's turns, grew with them; W10's sync
    scenario).  Closed before the last send, the transfer ends without
    suspending again."""

    __slots__ = ("fd", "position", "closed", "close_at_end")

    def __init__(self, fd: int, close_at_end: bool = False) -> None:
        self.fd = fd
        self.position = 0
        self.closed = False
        self.close_at_end = close_at_end

    async def read(self, size: int) -> bytes:
        if self.closed:
            # closed at its end (or by aclose): never a pread of a number
            # the kernel may have given another file since
            return b""
        data = await _run(_e_pread, self.fd, size, self.position)
        self.position += len(data)
        if self.close_at_end and len(data) < size:
            await self.aclose()
        # What the caller does next, the send, is the costly part of a
        # body's step: at most a budget of steps a loop turn, so 200
        # downloads do not make every turn long (_pace.py).  After the
        # read, not before: a read that went to the engine wakes its task
        # in a later turn, outside any budget, and would send at once.
        wait = _pace()
        if wait is not None:
            await wait
        return data

    async def seek(self, position: int) -> int:
        self.position = position
        return position

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            # the close runs to its end even when the transfer is cancelled
            await _shielded(_e_close, self.fd)


async def open_file(path: str | os.PathLike[str]) -> _EngineFile:
    """Open path for reading on the engine (the hook FileResponse opens
    through; a test may wrap it to watch what is opened)."""
    return _EngineFile(await _run(_e_open, path, os.O_RDONLY, 0, None))


class FileResponse(_FileResponse):
    """Starlette's FileResponse, with its stat, open, reads and close on the
    engine.  Same parameters, same answers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.stat_result is not None:
            return await self._respond(scope, receive, send, self.stat_result)
        # Starlette stats the path on every call (in a thread); do it here
        # on the engine and hand the result to Starlette's own logic for
        # this call only, so a response object called again stats again.
        try:
            stat_result = await _run(_e_stat, self.path, None, 0)
        except FileNotFoundError:
            raise RuntimeError(f"File at path {self.path} does not exist.")
        if not _stat.S_ISREG(stat_result.st_mode):
            raise RuntimeError(f"File at path {self.path} is not a file.")
        self.set_stat_headers(stat_result)
        self.stat_result = stat_result
        try:
            await self._respond(scope, receive, send, stat_result)
        finally:
            self.stat_result = None

    async def _respond(self, scope: Scope, receive: Receive, send: Send, stat_result: os.stat_result) -> None:
        if not self._whole_file_get(scope):
            return await super().__call__(scope, receive, send)
        if stat_result.st_size < self.chunk_size:
            # Starlette's own answer here is one body (a read shorter than
            # chunk_size ends it), but it pays a task group listening for
            # the client's disconnect and four thread hops.  One request
            # (aio_slurp: open, read, close) gets the same bytes; a file
            # that grew to chunk_size since the stat takes Starlette's road.
            body = await _run(_e_slurp, self.path, 0, self.chunk_size)
            if len(body) < self.chunk_size:
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                if self.background is not None:
                    await self.background()
                return
        await self._send_whole_file(scope, receive, send)

    async def _send_whole_file(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Starlette's whole-file answer (_handle_simple's bytes, in
        chunk_size pieces), in the calling task.

        Under ASGI spec_version < 2.4 (uvicorn's: 2.3) Starlette opens a
        task group per response, the transfer in a task of its own beside
        a listener that awaits the client's disconnect and cancels it.
        Those ~30 objects live as long as the download and are the larger
        part of what the garbage collector walks with 200 downloads in
        flight (W10's sync scenario: a gen-1 collection, ~2.5 ms, every
        ~0.4 s).  The listener matters only while a send waits: one that
        returns at once lets the transfer see the disconnect itself (the
        server drops a vanished client's bodies, or raises OSError as 2.4
        asks).  So here (asyncio, uvloop) a watcher starts at the first
        send that suspends, and a send that waits is stopped when the
        client goes away (_send_or_stop); from 2.4 on, as in Starlette, no
        watcher."""
        spec = scope.get("asgi", {}).get("spec_version", "2.0")
        conn = None
        if tuple(map(int, spec.split("."))) < (2, 4):
            if _asyncio_loop() is None:
                # trio: a task waiting in trio cannot be stopped from
                # outside but through a cancel scope entered before the
                # send began; Starlette's task group does that.
                return await super().__call__(scope, receive, send)
            conn = _Connection(receive)
        # the response's start, the open and the first read: a body step (_pace.py)
        wait = _pace()
        if wait is not None:
            await wait
        try:
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            if not await _send_or_stop(send, start, conn):
                return await self._after_disconnect()
            file = await open_file(self.path)
            # read in order to its end: the file closes there (_EngineFile)
            file.close_at_end = True
            try:
                more_body = True
                while more_body:
                    chunk = await file.read(self.chunk_size)
                    more_body = len(chunk) == self.chunk_size
                    body = {"type": "http.response.body", "body": chunk, "more_body": more_body}
                    if not await _send_or_stop(send, body, conn):
                        break
            finally:
                await file.aclose()
        finally:
            if conn is not None:
                conn.unwatch()
        await self._after_disconnect()

    async def _after_disconnect(self) -> None:
        # Starlette runs the background task after a disconnect too
        if self.background is not None:
            await self.background()

    def _whole_file_get(self, scope: Scope) -> bool:
        """Whether Starlette would send the whole file as a plain body: an
        http GET (not HEAD: no body; not a websocket), no Range header to
        weigh (a 200 status only: another ignores Range), and no pathsend
        for the server to take."""
        if scope["type"] != "http" or scope["method"].upper() != "GET":
            return False
        if "http.response.pathsend" in scope.get("extensions", {}):
            return False
        return self.status_code != 200 or not any(k.lower() == b"range" for k, _ in scope.get("headers", ()))

    # Each road's first step (the response's start, the open, the first
    # read) is a body step too: paced like the chunks, or 200 downloads
    # starting at their rate put that step, unbudgeted, in the loop's turns
    # (_pace.py).

    async def _handle_simple(self, send: Send, send_header_only: bool, send_pathsend: bool) -> None:
        wait = _pace()
        if wait is not None:
            await wait
        # The whole file, read in order to its end: the file may close at
        # its end, before the last send (_EngineFile); ranges seek and
        # read again, so only this road.
        self._close_at_end = True
        try:
            await super()._handle_simple(send, send_header_only, send_pathsend)
        finally:
            self._close_at_end = False

    async def _handle_single_range(self, send: Send, start: int, end: int, file_size: int,
                                   send_header_only: bool) -> None:
        wait = _pace()
        if wait is not None:
            await wait
        await super()._handle_single_range(send, start, end, file_size, send_header_only)

    async def _handle_multiple_ranges(self, send: Send, ranges: list[tuple[int, int]], file_size: int,
                                      send_header_only: bool) -> None:
        wait = _pace()
        if wait is not None:
            await wait
        await super()._handle_multiple_ranges(send, ranges, file_size, send_header_only)

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[Any]:
        file = await open_file(self.path)
        file.close_at_end = getattr(self, "_close_at_end", False)
        try:
            yield file
        finally:
            await file.aclose()


_starlette_lookup_path = _staticfiles.StaticFiles.lookup_path


def _lookup_in(directory: Any, path: str, follow_symlink: bool) -> tuple[str, os.stat_result] | None:
    """One directory's answer to Starlette's lookup, by name, blocking (a
    worker thread's job): the checked full path and its stat, or None to
    try the next directory.  Raises what the stat raises otherwise."""
    joined = os.path.join(directory, path)
    if follow_symlink:
        full, base = os.path.abspath(joined), os.path.abspath(directory)
    else:
        full, base = os.path.realpath(joined), os.path.realpath(directory)
    if os.path.commonpath([full, base]) != str(base):
        return None
    try:
        return full, os.stat(full)
    except (FileNotFoundError, NotADirectoryError):
        return None


async def _abspath(path: Any) -> str:
    """os.path.abspath's answer off the loop's thread (blockbuster counts
    getcwd as blocking): a relative path asks the engine for the working
    directory (realpath of ".", which the kernel keeps canonical)."""
    path = os.fspath(path)
    if not os.path.isabs(path):
        path = os.path.join(await _run(_e_realpath, "."), path)
    return os.path.normpath(path)


class StaticFiles(_staticfiles.StaticFiles):
    """Starlette's StaticFiles, with the config check, each path lookup and
    the file's transfer on the engine.  Same parameters, same answers."""

    async def check_config(self) -> None:
        if self.directory is None:
            return
        try:
            st = await _run(_e_stat, self.directory, None, 0)
        except FileNotFoundError:
            raise RuntimeError(f"StaticFiles directory '{self.directory}' does not exist.")
        if not (_stat.S_ISDIR(st.st_mode) or _stat.S_ISLNK(st.st_mode)):
            raise RuntimeError(f"StaticFiles path '{self.directory}' is not a directory.")

    def _lookup_is_ours(self) -> bool:
        """Whether lookup_path is still Starlette's (then the engine may
        answer for it), not a subclass's, an instance's or a test's."""
        return "lookup_path" not in self.__dict__ and type(self).lookup_path is _starlette_lookup_path

    async def lookup_path_async(self, path: str) -> tuple[str, os.stat_result | None]:
        """lookup_path's answer without blocking: (full path, stat_result), or
        ("", None) where no directory has the file.  One engine request per
        directory tried; a name openat2 will not resolve beneath the
        directory is judged by Starlette's rule in a worker thread."""
        if path.startswith(("/", "\\")):
            return "", None
        for directory in self.all_directories:
            found: tuple[str, os.stat_result] | None
            if self.follow_symlink:
                # Symlinks may lead anywhere, so the kernel's walk has no
                # boundary to enforce: Starlette's lexical check, then a stat.
                full = await _abspath(os.path.join(directory, path))
                base = await _abspath(directory)
                if os.path.commonpath([full, base]) != str(base):
                    continue
                try:
                    found = full, await _run(_e_stat, full, None, 0)
                except (FileNotFoundError, NotADirectoryError):
                    continue
            else:
                try:
                    found = await _run(_e_serve_lookup, directory, path, _BENEATH)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                except OSError as exc:
                    if exc.errno not in _ASK_STARLETTE:
                        raise
                    found = await run_in_threadpool(_lookup_in, directory, path, False)
                    if found is None:
                        continue
            return found
        return "", None

    async def _lookup(self, path: str) -> tuple[str, os.stat_result | None]:
        if self._lookup_is_ours():
            return await self.lookup_path_async(path)
        return await run_in_threadpool(self.lookup_path, path)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405, headers={"Allow": "GET, HEAD"})
        # The lookup and the response's setup: a download's first step,
        # paced as its body's steps are (_pace.py).
        wait = _pace()
        if wait is not None:
            await wait
        try:
            full_path, stat_result = await self._lookup(path)
        except PermissionError:
            raise HTTPException(status_code=401)
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:     # no valid file has such a name
                raise HTTPException(status_code=404)
            raise exc
        except ValueError:                          # a NUL in the path
            raise HTTPException(status_code=404)

        if stat_result is not None and _stat.S_ISREG(stat_result.st_mode):
            return self.file_response(full_path, stat_result, scope)
        if stat_result is not None and _stat.S_ISDIR(stat_result.st_mode) and self.html:
            full_path, stat_result = await self._lookup(os.path.join(path, "index.html"))
            if stat_result is not None and _stat.S_ISREG(stat_result.st_mode):
                if not scope["path"].endswith("/"):
                    # a directory's URL ends in "/": its index's relative links need it
                    url = URL(scope=scope)
                    return RedirectResponse(url=url.replace(path=url.path + "/"))
                return self.file_response(full_path, stat_result, scope)
        if self.html:
            full_path, stat_result = await self._lookup("404.html")
            if stat_result is not None and _stat.S_ISREG(stat_result.st_mode):
                return FileResponse(full_path, stat_result=stat_result, status_code=404)
        raise HTTPException(status_code=404)

    def file_response(
        self,
        full_path: Any,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = FileResponse(full_path, status_code=status_code, stat_result=stat_result)
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return _staticfiles.NotModifiedResponse(response.headers)
        return response
