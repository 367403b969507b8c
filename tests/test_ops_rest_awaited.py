"""Issue 14's data, sync, memory and fd-control requests awaited (the aio_
functions under asyncio, uvloop and trio, through linuxaio's loop glue), in
batches (submit_many), and cancelled before they run."""
import errno
import fcntl
import mmap
import os

import pytest

import linuxaio
from linuxaio import _engine
from async_helpers import HeldWorker, runner  # noqa: F401  (the fixture)


def test_every_request_awaited_gives_what_its_callback_gets(runner, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abcdefgh" * 1000)
    fd = os.open(path, os.O_RDWR)
    out = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o644)
    m = mmap.mmap(fd, 0)
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    run = linuxaio._run

    async def main(rt):
        data = bytearray()
        got = [
            await run(linuxaio.aio_sendfile, out, fd, 0, 100),
            await run(linuxaio.aio_copy_file_range, fd, 100, out, 100, 50),
            await run(linuxaio.aio_readahead, fd, 0, 8000),
            await run(linuxaio.aio_allocate, out, linuxaio.FALLOC_FL_KEEP_SIZE, 0, 8192),
            await run(linuxaio.aio_fadvise, fd, 0, 0, linuxaio.POSIX_FADV_NORMAL),
            await run(linuxaio.aio_load, str(path), data),
            await run(linuxaio.aio_fcntl, fd, fcntl.F_GETFL, 0),
            await run(linuxaio.aio_sync_file_range, fd, 0, 0, linuxaio.SYNC_FILE_RANGE_WRITE),
            await run(linuxaio.aio_syncfs, fd),
            await run(linuxaio.aio_pathsync, str(tmp_path)),
            await run(linuxaio.aio_msync, m, 3, 10, linuxaio.MS_ASYNC),
            await run(linuxaio.aio_mtouch, m, None, None, linuxaio.MT_MODIFY),
        ]
        extents = await run(linuxaio.aio_fiemap, fd, 0, None, linuxaio.FIEMAP_FLAG_SYNC, None)
        with pytest.raises(FileNotFoundError) as e:
            await run(linuxaio.aio_pathsync, str(tmp_path / "missing"))
        assert e.value.filename == str(tmp_path / "missing")
        with pytest.raises(OSError) as e:
            await run(linuxaio.aio_fcntl, 1 << 20, fcntl.F_GETFL, 0)
        assert e.value.errno == errno.EBADF
        return got, bytes(data), extents

    try:
        got, data, extents = runner.run(main)
    finally:
        m.close()
        os.close(fd)
        os.close(out)
    assert got == [100, 50, 0, 0, 0, 8000, flags, 0, 0, 0, 0, 0]
    assert data == b"abcdefgh" * 1000
    assert isinstance(extents, list) and all(len(e) == 4 for e in extents)
    assert (tmp_path / "out").read_bytes()[:150] == (b"abcdefgh" * 1000)[:150]


def test_submit_many_runs_a_batch_of_them(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10000)
    fd = os.open(path, os.O_RDONLY)
    try:
        got = []
        _engine.submit_many("aio_fadvise", [(fd, i * 100, 100, linuxaio.POSIX_FADV_WILLNEED)
                                            for i in range(20)] + [(fd, 0, 0, 99)], got.append)
        linuxaio.flush()
        values = got[0]
        assert values[:20] == [0] * 20
        assert isinstance(values[20], OSError) and values[20].errno == errno.EINVAL
    finally:
        os.close(fd)


def test_cancelled_before_it_runs_it_never_runs(tmp_path):
    """A sendfile and an allocate queued behind a held worker, cancelled:
    their callbacks never come and the files are untouched."""
    src = tmp_path / "src"
    src.write_bytes(b"y" * 5000)
    in_fd = os.open(src, os.O_RDONLY)
    out = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        got = []
        with HeldWorker(tmp_path) as held:
            reqs = [linuxaio.aio_sendfile(out, in_fd, 0, 5000, got.append),
                    linuxaio.aio_allocate(out, 0, 0, 1 << 20, got.append),
                    linuxaio.aio_load(str(src), bytearray(), got.append)]
            for r in reqs:
                r.cancel()
            held.release()
            linuxaio.flush()
        assert got == []
        assert os.fstat(out).st_size == 0
    finally:
        os.close(in_fd)
        os.close(out)
