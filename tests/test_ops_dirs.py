"""The rows that list a directory share one getdents64 loop (ops_dirs.c's
lx_each_dirent): each of them, on a directory larger than one getdents64
buffer (32 KiB) and than the first packed list (16 KiB), gives every name
once, as os does; and each fails the same way on a missing directory and
on a file."""
import asyncio
import errno
import os

import pytest

import linuxaio
from linuxaio import os as aos

NFILES = 2500     # ~30-byte names: several getdents64 buffers, a heap grown several times


def called(fn, *args):
    got = []
    fn(*args, got.append)
    linuxaio.flush()
    assert len(got) == 1
    return got[0]


def every_listing(path):
    """The names each directory-listing row gives for path (or its error)."""
    def names_of(result):
        return result if isinstance(result, BaseException) else sorted(result)

    def awaited(coro):
        try:
            return asyncio.run(coro)
        except OSError as exc:
            return exc

    rx = called(linuxaio.aio_readdirx, path, 0)
    sc = called(linuxaio.aio_scandir, path, 0)
    return {
        "aio_readdir": names_of(called(linuxaio.aio_readdir, path)),
        "aio_readdirx": rx if isinstance(rx, BaseException) else sorted(rx[0]),
        "aio_scandir": sc if isinstance(sc, BaseException) else sorted(sc[0] + sc[1]),
        "os.listdir": names_of(awaited(aos.listdir(path))),
        "os.scandir": names_of(awaited(_scandir_names(path))),
        "scandir_stat": names_of(awaited(_stat_names(path))),
    }


async def _scandir_names(path):
    return [e.name for e in await aos.scandir(path)]


async def _stat_names(path):
    return [name for name, _, _ in await aos.scandir_stat(path)]


@pytest.fixture
def big_dir(tmp_path):
    d = tmp_path / "big"
    d.mkdir()
    for i in range(NFILES):
        if i % 25 == 0:
            (d / f"subdirectory-{i:06d}").mkdir()
        else:
            (d / f"a-file-with-a-longer-name-{i:06d}.dat").write_bytes(b"")
    return str(d)


def test_every_listing_row_gives_every_name_of_a_large_directory_once(big_dir):
    want = sorted(os.listdir(big_dir))
    assert len(want) == NFILES
    for row, names in every_listing(big_dir).items():
        assert names == want, row


def test_scandir_stat_of_a_large_directory_matches_lstat(big_dir):
    got = asyncio.run(aos.scandir_stat(big_dir))
    assert len(got) == NFILES
    for name, _, st in got[::97]:
        want = os.lstat(os.path.join(big_dir, name))
        assert (st.st_ino, st.st_mode, st.st_size) == (want.st_ino, want.st_mode, want.st_size)


@pytest.mark.parametrize("what, exc, code", [("missing", FileNotFoundError, errno.ENOENT),
                                             ("a-file", NotADirectoryError, errno.ENOTDIR)])
def test_every_listing_row_fails_alike_on_what_is_no_directory(tmp_path, what, exc, code):
    (tmp_path / "a-file").write_bytes(b"x")
    path = str(tmp_path / what)
    for row, err in every_listing(path).items():
        assert type(err) is exc and err.errno == code, (row, err)
        assert err.filename == path and err.strerror, (row, err)
    assert linuxaio.nreqs() == 0
