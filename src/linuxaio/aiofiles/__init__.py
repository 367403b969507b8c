"""linuxaio.aiofiles: aiofiles' public API on linuxaio's engine.

``import linuxaio.aiofiles as aiofiles`` is the whole migration from aiofiles
25.1: the same names (``open``, ``tempfile``, ``os``, ``os.path``, ``stdin``...
``threadpool.wrap``, ``os.wrap``), the same arguments and results, the file
objects' methods and attributes (``detach()`` and ``raw`` included).  Where
aiofiles runs each call in a thread pool, this package submits it to the
engine (linuxaio.open, linuxaio.os); only what has no fd behind it (an
io.StringIO given to wrap, an arbitrary function given to ``wrap``, sys.stdout
replaced by a test's capture object, a temporary directory's removal) goes to
a worker thread of the running loop.

What differs from aiofiles, and why: see the README ("Coming from aiofiles /
anyio").  In short: ``loop=`` and ``executor=`` are accepted and ignored (there
is no executor); the file objects are linuxaio's (subclasses of AsyncFile), so
they have no ``_file`` (aiofiles' private synchronous file); ``os.scandir``
gives an iterator, as aiofiles' does (linuxaio.os.scandir gives a list).
"""
from . import tempfile
from .threadpool import (
    open,
    stderr,
    stderr_bytes,
    stdin,
    stdin_bytes,
    stdout,
    stdout_bytes,
)

__all__ = [
    "open",
    "tempfile",
    "stdin",
    "stdout",
    "stderr",
    "stdin_bytes",
    "stdout_bytes",
    "stderr_bytes",
]
