"""aio_seek / linuxaio.os.lseek: lseek(2), compared with os.lseek."""
import asyncio
import errno
import os

import pytest
import trio

import linuxaio
from linuxaio import os as aos

CASES = [(0, os.SEEK_SET), (100, os.SEEK_SET), (-10, os.SEEK_END), (5, os.SEEK_CUR),
         (-3, os.SEEK_CUR), (0, os.SEEK_END), (1 << 20, os.SEEK_SET), (-1, os.SEEK_SET),
         (0, 12345)]


@pytest.fixture
def fds(tmp_path):
    """Two fds on one 64 KiB file: one moved by os.lseek, one by linuxaio."""
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 256)
    a, b = os.open(path, os.O_RDONLY), os.open(path, os.O_RDONLY)
    yield a, b
    os.close(a)
    os.close(b)


def outcome(call):
    try:
        return call()
    except OSError as e:
        return type(e), e.errno


def test_constants_have_the_kernels_values():
    for name in ("SEEK_SET", "SEEK_CUR", "SEEK_END", "SEEK_DATA", "SEEK_HOLE"):
        assert getattr(linuxaio, name) == getattr(os, name)


def test_aio_seek_moves_the_position_as_os_lseek(fds):
    want_fd, got_fd = fds
    for offset, whence in CASES:
        want = outcome(lambda: os.lseek(want_fd, offset, whence))
        got = []
        linuxaio.aio_seek(got_fd, offset, whence, got.append)
        linuxaio.flush()
        value = got[0]
        if isinstance(value, OSError):
            assert value.filename is None
            value = type(value), value.errno
        assert value == want, (offset, whence)
        assert os.lseek(got_fd, 0, os.SEEK_CUR) == os.lseek(want_fd, 0, os.SEEK_CUR)


def test_aio_seek_takes_a_file_object(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    with open(path, "rb") as f:
        got = []
        linuxaio.aio_seek(f, -1, linuxaio.SEEK_END, got.append)
        linuxaio.flush()
        assert got == [99] and os.lseek(f.fileno(), 0, os.SEEK_CUR) == 99


def test_seek_data_and_hole_of_a_sparse_file(tmp_path):
    path = tmp_path / "sparse"
    with open(path, "wb") as f:
        f.seek(1 << 20)
        f.write(b"data")
    fd = os.open(path, os.O_RDONLY)
    try:
        for offset, whence in ((0, os.SEEK_DATA), (0, os.SEEK_HOLE), ((1 << 20) + 10, os.SEEK_DATA)):
            want = outcome(lambda: os.lseek(fd, offset, whence))
            got = []
            linuxaio.aio_seek(fd, offset, whence, got.append)
            linuxaio.flush()
            value = got[0]
            assert (value if not isinstance(value, OSError) else (type(value), value.errno)) == want
    finally:
        os.close(fd)


def test_seek_on_a_pipe_fails_with_espipe():
    r, w = os.pipe()
    try:
        got = []
        linuxaio.aio_seek(r, 0, os.SEEK_SET, got.append)
        linuxaio.flush()
        assert isinstance(got[0], OSError) and got[0].errno == errno.ESPIPE
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("bad", [("x", 0), (0, "x"), (1.5, 0), (2 ** 64, 0), (0, 2 ** 40)])
def test_bad_arguments_raise_at_submission(fds, bad):
    with pytest.raises((TypeError, OverflowError)):
        linuxaio.aio_seek(fds[0], *bad, None)
    assert linuxaio.nreqs() == 0


def _await_cases(lseek, want_fd, got_fd):
    async def main():
        out = []
        for offset, whence in CASES:
            want = outcome(lambda: os.lseek(want_fd, offset, whence))
            try:
                got = await lseek(got_fd, offset, whence)
            except OSError as e:
                got = type(e), e.errno
            out.append((got, want))
        return out
    return main


def test_os_lseek_under_asyncio(fds):
    for got, want in asyncio.run(_await_cases(aos.lseek, *fds)()):
        assert got == want


def test_os_lseek_under_trio(fds):
    for got, want in trio.run(_await_cases(aos.lseek, *fds)):
        assert got == want


def test_os_lseek_refuses_a_file_object_as_os_does(fds):
    with pytest.raises(TypeError):
        asyncio.run(aos.lseek(object(), 0, 0))


def test_an_error_without_a_filename_reads_as_os_s_own():
    try:
        os.lseek(999999, 0, 0)
    except OSError as e:
        want = e
    got = []
    linuxaio.aio_seek(999999, 0, 0, got.append)
    linuxaio.flush()
    assert (type(got[0]), got[0].args, str(got[0])) == (type(want), want.args, str(want))
