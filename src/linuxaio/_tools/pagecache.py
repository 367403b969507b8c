"""Reading files into the page cache and checking they are there, so that a
benchmark measures the library and not the disk."""
from __future__ import annotations

import mmap
import os

PAGE = mmap.PAGESIZE
_libc = None


def read_through(fd: int) -> None:
    """Read the file at fd from its position to the end (into the page cache)."""
    buf = bytearray(1 << 20)
    while os.readv(fd, [buf]):
        pass


def resident_pages(fd: int) -> tuple[int, int]:
    """(resident pages, total pages) of the file at fd in the page cache, by
    mincore(2) (through ctypes: the standard library has no binding for it).
    OSError if the file cannot be mapped or queried."""
    global _libc
    import ctypes

    size = os.fstat(fd).st_size
    if size == 0:
        return 0, 0
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        _libc = libc
    addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    try:
        npages = (size + PAGE - 1) // PAGE
        vec = (ctypes.c_ubyte * npages)()
        if _libc.mincore(addr, size, vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        # mincore's bytes: the low bit says resident, the others are reserved
        return bytes(vec).translate(_LOW_BIT).count(1), npages
    finally:
        _libc.munmap(addr, size)


_LOW_BIT = bytes(b & 1 for b in range(256))
