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
         "aiofiles": "aiofiles",
         # whole-tree work: linuxaio.shutil, IO::AIO's composites (groups)
         "shutil": "shutil", "aio_copy": "_composites", "aio_move": "_composites",
         "aio_rmtree": "_composites"}


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


async def slurp(path, offset: int = 0, length: int | None = None, *, into=None,
                direct: bool = False):
    """The bytes of a file (from offset, length of them or to the end).

    Plain, it is ONE engine request that opens, sizes, reads and closes the
    file.  into=buf reads into that writable buffer instead (at most
    len(buf) bytes) and returns the byte count, with no second copy;
    direct=True reads with O_DIRECT (aligned chunks; an unaligned buffer,
    offset or tail goes through an aligned bounce buffer).  Either way the
    range is read in chunks, several in flight at once (_slurp.py)."""
    if into is None and not direct:
        return await _run(_engine.aio_slurp, path, offset, length)
    from . import _slurp
    return await _slurp.slurp(path, offset, length, into=into, direct=direct)


# the common form, slurp(path), through a runner (os.py, runner.c)
slurp = _engine._bind(slurp, _engine.aio_slurp, 1, (0, None))


def aio_slurp(path, offset, length, callback=None, *, pri=0, into=None, direct=False):
    if into is None and not direct:
        return _engine.aio_slurp(path, offset, length, callback, pri=pri)
    from . import _slurp
    return _slurp.aio_slurp(path, offset, length, callback, pri=pri, into=into, direct=direct)


aio_slurp.__doc__ = (
    "aio_slurp(path, offset, length, callback=None, *, pri=0, into=None, direct=False)\n\n"
    + (_engine.aio_slurp.__doc__ or "").split("\n--\n\n", 1)[-1]
    + "\n\ninto=buf: read into that writable buffer; the callback gets the byte count."
    "\ndirect=True: read with O_DIRECT in aligned chunks.  With either, the request"
    "\nreturned is a group of the reads (several in flight), and cancel() cancels them.")


def aligned_buffer(size: int) -> "mmap.mmap":
    """A writable, page-aligned buffer of size bytes (an anonymous mmap).

    A bytearray's data sits 16 bytes past a page boundary; large kernel
    copies into page-aligned memory run about twice as fast here.  Private
    (mmap's default for -1 is MAP_SHARED): a forked child's reads into its
    copy must not land in the parent's."""
    import mmap
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)

__all__ = [name for name in dir(_engine) if name.startswith("aio_")] + [
    "Group", "Request", "PRI_MAX", "PRI_MIN", "flush", "idle_timeout", "max_idle",
    "max_blocking_parallel", "max_outstanding", "max_parallel", "max_poll_reqs", "max_poll_time", "min_parallel",
    "npending", "nready", "nreqs", "nthreads", "poll", "poll_cb", "poll_fileno", "poll_helps", "poll_wait",
    "reinit", "submit_many", "os", "slurp", "aligned_buffer", "WorkingDir", "dio_alignment",
]
__all__ += ["engine", "engine_info"]   # threads or io_uring (src/engine/uring_setup.c)
__all__.append("inline")   # inline-first awaits, on or off (src/engine/inline.c)
__all__.append("Path")
__all__ += ["open", "AsyncRawFile", "AsyncBufferedFile", "AsyncTextFile", "AsyncFile",
            "wrap_file"]
# the kernel's constants the requests take (SEEK_*, FALLOC_FL_*, MS_*...)
__all__ += [name for name in _engine.__all__ if name.isupper() and name not in __all__]
__all__ += ["shutil", "aio_copy", "aio_move", "aio_rmtree"]

# A forked child starts with a fresh engine: the parent's requests stay the
# parent's, and poll_fileno() keeps its number.
_os.register_at_fork(after_in_child=_engine._after_fork)

# At exit, requests not yet started are dropped without their callbacks;
# running ones get EXIT_GRACE seconds to finish, then the process exits anyway.
EXIT_GRACE = 1.0
_atexit.register(lambda: _engine._at_exit(EXIT_GRACE))
