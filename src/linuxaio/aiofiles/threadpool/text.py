"""The text file class of linuxaio.aiofiles (aiofiles.threadpool.text's
names): linuxaio's AsyncTextFile with aiofiles' surface: ``seekable()``,
``writable()`` and ``readable()`` are coroutines, ``detach()`` is synchronous
and gives the synchronous binary buffer (an io.Buffered* on the fd)."""
from __future__ import annotations

import io

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from ..._file.text import AsyncTextFile
from .binary import _hand_over

__all__ = ["AsyncTextIOWrapper", "AsyncTextIndirectIOWrapper"]


class AsyncTextIOWrapper(AsyncTextFile):
    """A text file (io.TextIOWrapper's wrapper in aiofiles)."""

    async def seekable(self) -> bool:
        return super().seekable()

    async def writable(self) -> bool:
        return super().writable()

    async def readable(self) -> bool:
        return super().readable()

    def detach(self) -> Any:  # type: ignore[override]
        """Write out pending text (in this thread, as aiofiles does) and hand
        the fd over as a synchronous buffered binary file at the buffer's
        position; text read ahead and not returned is lost, as with
        io.TextIOWrapper.detach.  This file is unusable afterwards."""
        b = self._b
        if b._closed:
            raise ValueError("underlying buffer has been detached" if self._detached
                             else "I/O operation on closed file.")
        raw = _hand_over(b)
        self._detach_prepare()
        if raw.readable() and raw.writable():
            return io.BufferedRandom(raw)
        return io.BufferedReader(raw) if raw.readable() else io.BufferedWriter(raw)


from ._indirect import AsyncTextIndirectIOWrapper  # noqa: E402
