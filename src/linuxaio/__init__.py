"""linuxaio: asynchronous file I/O for Python on Linux.

The seed API of Linux::AIO (``aio_open``, ``aio_read``... with callbacks,
``poll_fileno``/``poll_cb`` for any event loop) and IO::AIO's control
surface, on a C engine of worker threads that never hold the GIL.
"""
import atexit as _atexit
import os as _os

# The callback API and the control surface: _engine.__all__ is every public
# name of the engine but the os twins (linuxaio.os wraps those), so each
# aio_* row of its operation table (src/engine/ops.def) arrives here by itself.
from ._engine import *  # noqa: F401,F403
from . import _engine
from ._loop import run as _run

# os, Path and open load on first use: with their imports (pathlib, typing,
# codecs...) they would triple the cost of `import linuxaio` for a program
# that only uses the callback API.
_LAZY = {"os": "os", "Path": "_path", "open": "_file", "AsyncRawFile": "_file",
         "AsyncBufferedFile": "_file", "AsyncTextFile": "_file", "AsyncFile": "_file", "wrap_file": "_wrap",
         "aiofiles": "aiofiles"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'linuxaio' has no attribute '{name}'")
    import importlib
    value = importlib.import_module("linuxaio." + module)
    if name != module:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


async def slurp(path, offset: int = 0, length: int | None = None) -> bytes:
    """The bytes of a file (from offset, length of them or to the end), read by
    ONE engine request that opens, sizes, reads and closes it."""
    return await _run(_engine.aio_slurp, path, offset, length)


def aligned_buffer(size: int) -> "mmap.mmap":
    """A writable, page-aligned buffer of size bytes (an anonymous mmap).

    A bytearray's data sits 16 bytes past a page boundary; large kernel
    copies into page-aligned memory run about twice as fast here."""
    import mmap
    return mmap.mmap(-1, size)

__all__ = [name for name in dir(_engine) if name.startswith("aio_")] + [
    "Group", "Request", "PRI_MAX", "PRI_MIN", "flush", "idle_timeout", "max_idle",
    "max_outstanding", "max_parallel", "max_poll_reqs", "max_poll_time", "min_parallel",
    "npending", "nready", "nreqs", "nthreads", "poll", "poll_cb", "poll_fileno", "poll_helps", "poll_wait",
    "reinit", "submit_many", "os", "slurp", "aligned_buffer",
]
__all__.append("Path")
__all__ += ["open", "AsyncRawFile", "AsyncBufferedFile", "AsyncTextFile", "AsyncFile",
            "wrap_file"]

# A forked child starts with a fresh engine: the parent's requests stay the
# parent's, and poll_fileno() keeps its number.
_os.register_at_fork(after_in_child=_engine._after_fork)

# At exit, requests not yet started are dropped without their callbacks;
# running ones get EXIT_GRACE seconds to finish, then the process exits anyway.
EXIT_GRACE = 1.0
_atexit.register(lambda: _engine._at_exit(EXIT_GRACE))
