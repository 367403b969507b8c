"""stdin, stdout, stderr and their _bytes forms: async files over whatever
object sys.stdin (sys.stdin.buffer...) is at each call, so that a program or
a test that replaces sys.stdout is followed.  Each object is adopted as
linuxaio.wrap_file adopts it (its fd on the engine; a replacement with no fd,
such as a test's capture object, in a worker thread) and the adoption is
kept while the object stays the same."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

from ..._file.base import AsyncFile
from ..._wrap import AsyncWrappedFile

__all__ = ["AsyncIndirectBufferedIOBase", "AsyncTextIndirectIOWrapper"]


class _Indirect(AsyncFile):
    def __init__(self, name: str, loop: Any, executor: Any, indirect: Callable[[], Any]) -> None:
        self._name = name
        self._indirect = indirect
        self._obj: Any = None
        self._async: Any = None

    def _current(self) -> AsyncWrappedFile:
        obj = self._indirect()
        if obj is not self._obj or self._async is None:
            self._obj, self._async = obj, AsyncWrappedFile(obj)
        return self._async

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._indirect(), name)

    def __repr__(self) -> str:
        return f"<linuxaio.aiofiles {type(self).__name__} of {self._name}>"

    async def read(self, size: int = -1) -> Any:
        return await self._current().read(size)

    async def read1(self, size: int = -1) -> Any:
        return await self._current().read1(size)

    async def readline(self, size: int = -1) -> Any:
        return await self._current().readline(size)

    async def readlines(self, hint: int = -1) -> list:
        return await self._current().readlines(hint)

    async def readinto(self, b: Any) -> int:
        return await self._current().readinto(b)

    async def write(self, b: Any) -> int:
        return await self._current().write(b)

    async def writelines(self, lines: Any) -> None:
        return await self._current().writelines(lines)

    async def flush(self) -> None:
        return await self._current().flush()

    async def seek(self, offset: int, whence: int = 0) -> int:
        return await self._current().seek(offset, whence)

    async def tell(self) -> int:
        return await self._current().tell()

    async def truncate(self, size: int | None = None) -> int:
        return await self._current().truncate(size)

    async def isatty(self) -> bool:
        return self._indirect().isatty()

    async def seekable(self) -> bool:
        return self._indirect().seekable()

    async def writable(self) -> bool:
        return self._indirect().writable()

    def fileno(self) -> int:
        return self._indirect().fileno()

    def readable(self) -> bool:
        return self._indirect().readable()

    @property
    def closed(self) -> bool:
        return self._indirect().closed

    @property
    def name(self) -> Any:
        return getattr(self._indirect(), "name", self._name)

    @property
    def mode(self) -> Any:
        return getattr(self._indirect(), "mode", None)

    async def close(self) -> None:
        await self._current().aclose()

    aclose = close


class AsyncIndirectBufferedIOBase(_Indirect):
    """sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer, as found at each call."""


class AsyncTextIndirectIOWrapper(_Indirect):
    """sys.stdin, sys.stdout, sys.stderr, as found at each call."""

    @property
    def encoding(self) -> Any:
        return self._indirect().encoding

    @property
    def errors(self) -> Any:
        return self._indirect().errors

    @property
    def newlines(self) -> Any:
        return self._indirect().newlines

    @property
    def line_buffering(self) -> Any:
        return self._indirect().line_buffering

    @property
    def buffer(self) -> Any:
        return self._indirect().buffer
