"""The temporary objects that are not plain files: AsyncSpooledTemporaryFile
and AsyncTemporaryDirectory (aiofiles.tempfile.temptypes' names)."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from ... import _loop
from ..._file.base import AsyncFile
from ..._wrap import AsyncWrappedFile

__all__ = ["AsyncSpooledTemporaryFile", "AsyncTemporaryDirectory"]


class AsyncSpooledTemporaryFile(AsyncFile):
    """A tempfile.SpooledTemporaryFile (``_file``, as aiofiles names it):
    while in memory its methods do no I/O and run at once; once rolled over
    (past max_size, or fileno()) the rollover runs in a worker thread and
    every later transfer goes to the engine (the file adopted as
    linuxaio.wrap_file adopts one)."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self._disk: Any = None        # the adopted file, once rolled over

    def _on_disk(self) -> Any:
        if self._disk is None and self._file._rolled:
            self._disk = AsyncWrappedFile(self._file._file)
        return self._disk

    async def rollover(self) -> None:
        if not self._file._rolled:
            await _loop.to_thread(self._file.rollover)

    async def _check(self) -> None:
        f = self._file
        if not f._rolled and f._max_size and f._file.tell() > f._max_size:
            await self.rollover()

    async def write(self, s: Any) -> int:
        disk = self._on_disk()
        if disk is not None:
            return await disk.write(s)
        n = self._file._file.write(s)
        await self._check()
        return n

    async def writelines(self, iterable: Any) -> None:
        disk = self._on_disk()
        if disk is not None:
            return await disk.writelines(iterable)
        self._file._file.writelines(iterable)
        await self._check()

    async def _do(self, name: str, *args: Any) -> Any:
        disk = self._on_disk()
        if disk is not None:
            return await getattr(disk, name)(*args)
        return getattr(self._file, name)(*args)

    async def read(self, size: int = -1) -> Any:
        return await self._do("read", size)

    async def readline(self, size: int = -1) -> Any:
        return await self._do("readline", size)

    async def readlines(self, hint: int = -1) -> list:
        return await self._do("readlines", hint)

    async def seek(self, offset: int, whence: int = 0) -> int:
        return await self._do("seek", offset, whence)

    async def tell(self) -> int:
        return await self._do("tell")

    async def truncate(self, size: int | None = None) -> int:
        return await self._do("truncate", size)

    async def flush(self) -> None:
        return await self._do("flush")

    async def isatty(self) -> bool:
        return self._file.isatty()

    async def fileno(self) -> int:
        await self.rollover()
        return self._file.fileno()

    async def close(self) -> None:
        disk, self._disk = self._on_disk(), None
        if disk is not None:
            await disk.aclose()
        self._file.close()

    aclose = close

    @property
    def closed(self) -> bool:
        return self._file.closed

    @property
    def encoding(self) -> Any:
        return self._file.encoding

    @property
    def mode(self) -> Any:
        return self._file.mode

    @property
    def name(self) -> Any:
        return self._file.name

    @property
    def newlines(self) -> Any:
        disk = self._disk
        if disk is not None and disk._inner is not None:
            return disk._inner.newlines
        return self._file.newlines


class AsyncTemporaryDirectory:
    """A temporary directory: ``name``, and ``cleanup()``/``close()`` that
    remove it with all it holds (linuxaio.shutil.rmtree where linuxaio has
    it, else shutil.rmtree in a worker thread)."""

    def __init__(self, name: Any) -> None:
        self.name = name
        self._done = False

    def __repr__(self) -> str:
        return f"<AsyncTemporaryDirectory {self.name!r}>"

    async def cleanup(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            from ... import shutil as _ashutil   # type: ignore[attr-defined]
            rmtree = _ashutil.rmtree
        except (ImportError, AttributeError):
            import shutil
            await _loop.to_thread(shutil.rmtree, self.name, True)
            return
        try:
            await rmtree(self.name)
        except FileNotFoundError:
            pass

    async def close(self) -> None:
        await self.cleanup()
