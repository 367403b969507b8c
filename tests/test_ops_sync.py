"""The sync rows of issue 14: aio_sync (twin linuxaio.os.sync), aio_syncfs,
aio_sync_file_range, aio_pathsync."""
import ctypes
import errno
import os
import pathlib

import pytest

import linuxaio
from linuxaio import os as aos
from async_helpers import fd_count, runner  # noqa: F401  (the fixture)


def call(fn, *args):
    got = []
    fn(*args, got.append)
    linuxaio.flush()
    assert len(got) == 1
    return got[0]


def value_of(v):
    return (type(v), v.errno) if isinstance(v, OSError) else v


_libc = ctypes.CDLL(None, use_errno=True)


def libc_outcome(name, *args):
    """The same call made synchronously (os lacks these): 0, or (OSError type, errno)."""
    fn = getattr(_libc, name)
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint][:len(args)]
    if fn(*args) == 0:
        return 0
    e = ctypes.get_errno()
    return type(OSError(e, os.strerror(e))), e


@pytest.fixture
def fd(tmp_path):
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"x" * 100000)
    yield fd
    os.close(fd)


def test_constants_have_the_kernels_values():
    assert (linuxaio.SYNC_FILE_RANGE_WAIT_BEFORE, linuxaio.SYNC_FILE_RANGE_WRITE,
            linuxaio.SYNC_FILE_RANGE_WAIT_AFTER) == (1, 2, 4)


def test_aio_sync_and_its_twin(runner):
    assert call(linuxaio.aio_sync) == 0

    async def main(rt):
        return await aos.sync()

    assert runner.run(main) is None
    assert os.sync() is None


def test_aio_syncfs(fd):
    assert call(linuxaio.aio_syncfs, fd) == libc_outcome("syncfs", fd) == 0
    got = call(linuxaio.aio_syncfs, 1 << 20)
    assert isinstance(got, OSError) and got.errno == errno.EBADF and got.strerror
    assert value_of(got) == libc_outcome("syncfs", 1 << 20)


@pytest.mark.parametrize("offset,nbytes,flags", [
    (0, 0, 2), (0, 4096, 1 | 2 | 4), (50000, 0, 7), (1 << 40, 10, 2), (0, 0, 0), (0, 0, 8)])
def test_aio_sync_file_range_as_the_syscall(fd, offset, nbytes, flags):
    want = libc_outcome("sync_file_range", fd, offset, nbytes, flags)
    assert value_of(call(linuxaio.aio_sync_file_range, fd, offset, nbytes, flags)) == want


def test_aio_sync_file_range_on_a_pipe_is_espipe():
    r, w = os.pipe()
    try:
        got = call(linuxaio.aio_sync_file_range, r, 0, 0, linuxaio.SYNC_FILE_RANGE_WRITE)
        assert isinstance(got, OSError) and got.errno == errno.ESPIPE
    finally:
        os.close(r)
        os.close(w)


def test_aio_pathsync_a_file_and_a_directory(tmp_path):
    (tmp_path / "f").write_bytes(b"data")
    before = fd_count()
    assert call(linuxaio.aio_pathsync, str(tmp_path / "f")) == 0
    assert call(linuxaio.aio_pathsync, tmp_path) == 0                      # a directory, PathLike
    assert call(linuxaio.aio_pathsync, os.fsencode(tmp_path / "f")) == 0    # bytes
    assert fd_count() == before                                          # each fd closed


def test_aio_pathsync_makes_a_rename_durable_the_documented_way(tmp_path):
    (tmp_path / "new").write_bytes(b"v2")
    got = []
    linuxaio.aio_rename(str(tmp_path / "new"), str(tmp_path / "cur"),
                        lambda v: got.append(v) or linuxaio.aio_pathsync(tmp_path, got.append))
    linuxaio.flush()
    linuxaio.flush()
    assert got == [0, 0]
    assert (tmp_path / "cur").read_bytes() == b"v2"


def test_aio_pathsync_errors_carry_the_filename(tmp_path):
    missing = tmp_path / "missing"
    got = call(linuxaio.aio_pathsync, missing)
    assert isinstance(got, FileNotFoundError) and got.filename == str(missing) and got.strerror
    (tmp_path / "f").write_bytes(b"")
    got = call(linuxaio.aio_pathsync, pathlib.Path(tmp_path / "f" / "x"))
    assert isinstance(got, NotADirectoryError) and got.filename == str(tmp_path / "f" / "x")


BAD = [
    ("aio_syncfs", ("x",), TypeError),
    ("aio_syncfs", (-1,), ValueError),
    ("aio_sync_file_range", (0, -1, 0, 0), ValueError),
    ("aio_sync_file_range", (0, None, 0, 0), TypeError),
    ("aio_sync_file_range", (0, 0, -1, 0), ValueError),
    ("aio_sync_file_range", (0, 0, 0, 2 ** 40), OverflowError),
    ("aio_pathsync", (None,), TypeError),
    ("aio_pathsync", ("a\0b",), ValueError),
    ("aio_pathsync", (5,), TypeError),
]


@pytest.mark.parametrize("name,args,exc", BAD, ids=[f"{n}-{a!r}" for n, a, _ in BAD])
def test_bad_arguments_raise_at_submission(name, args, exc):
    before = linuxaio.nreqs()
    with pytest.raises(exc):
        getattr(linuxaio, name)(*args, None)
    assert linuxaio.nreqs() == before
