"""A read of nothing answers as os.pread does, whichever path runs it.

pread(2) of a directory fails with EISDIR even for 0 bytes, while a read
through an iovec (preadv2, which the inline try uses, and io_uring's read)
returns 0 without looking.  Found by test_os_props' random sequences under
trio: `await pread(dir_fd, 0, 0)` gave b''."""
import asyncio
import os

import pytest

import linuxaio
import linuxaio.os as aos

LOOPS = ["asyncio", "uvloop", "trio"]


def run_in(loop, afn, *args):
    if loop == "asyncio":
        return asyncio.run(afn(*args))
    if loop == "uvloop":
        return pytest.importorskip("uvloop").run(afn(*args))
    return pytest.importorskip("trio").run(afn, *args)


def outcome(fn, *args):
    try:
        return fn(*args)
    except OSError as e:
        return ("error", type(e).__name__, e.errno)


@pytest.fixture
def fds(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    opened = [os.open(tmp_path, os.O_RDONLY), os.open(f, os.O_RDONLY)]
    yield opened
    for fd in opened:
        os.close(fd)


@pytest.mark.parametrize("inline", [True, False])
@pytest.mark.parametrize("loop", LOOPS)
def test_awaited_pread_of_nothing_matches_os(loop, inline, fds):
    was = linuxaio.inline()
    linuxaio.inline(inline)
    try:
        for fd in fds:
            for off in (0, 1, 10):
                want = outcome(os.pread, fd, 0, off)

                async def one():
                    try:
                        return await aos.pread(fd, 0, off)
                    except OSError as e:
                        return ("error", type(e).__name__, e.errno)
                assert run_in(loop, one) == want, (fd, off)
    finally:
        linuxaio.inline(was)
    # the directory's answer is the point of the test
    assert outcome(os.pread, fds[0], 0, 0)[0] == "error"


def test_callback_read_of_nothing_matches_os(fds):
    got = {}
    buf = bytearray(1)
    for i, fd in enumerate(fds):   # (they may finish in either order)
        linuxaio.aio_read(fd, 0, 0, buf, 0, lambda r, i=i: got.__setitem__(i, r))
    linuxaio.flush()
    want = [outcome(os.pread, fd, 0, 0) for fd in fds]
    norm = [("error", type(r).__name__, r.errno) if isinstance(r, OSError) else r
            for _, r in sorted(got.items())]
    assert norm == [w if isinstance(w, tuple) else len(w) for w in want]
