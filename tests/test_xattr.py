"""Extended attributes: aio_getxattr/setxattr/listxattr/removexattr and their
linuxaio.os twins, compared with os's, on the test directory's file system
(user.* attributes; skipped, saying why, where the file system refuses them)."""
import errno
import os

import pytest

import linuxaio
from linuxaio import os as aos

from async_helpers import runner  # noqa: F401 (fixture)


def call(fn, *args):
    got = []
    fn(*args, got.append)
    linuxaio.flush()
    assert len(got) == 1
    return got[0]


def error_shape(e):
    return (type(e), e.errno, e.strerror, e.filename, e.filename2)


@pytest.fixture
def xfile(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"data")
    try:
        os.setxattr(p, "user.probe", b"1")
        os.removexattr(p, "user.probe")
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            pytest.skip(f"the test directory's file system refuses user xattrs ({e.strerror})")
        raise
    return p


def test_xattr_constants_are_the_kernels():
    assert (linuxaio.XATTR_CREATE, linuxaio.XATTR_REPLACE) == (os.XATTR_CREATE, os.XATTR_REPLACE)


def test_aio_setxattr_then_getxattr_listxattr_removexattr(xfile):
    p = str(xfile)
    assert call(linuxaio.aio_setxattr, p, "user.colour", b"blue", 0) == 0
    assert os.getxattr(p, "user.colour") == b"blue"
    assert call(linuxaio.aio_getxattr, p, "user.colour") == b"blue"
    assert call(linuxaio.aio_setxattr, p, b"user.empty", b"", 0) == 0
    assert call(linuxaio.aio_getxattr, p, "user.empty") == b""
    big = bytes(range(250)) * 8   # 2,000 bytes (ext4 fits ~4 KiB per file): sized, then read
    assert call(linuxaio.aio_setxattr, p, "user.big", memoryview(big), 0) == 0
    assert call(linuxaio.aio_getxattr, p, "user.big") == big
    names = call(linuxaio.aio_listxattr, p)
    assert sorted(names) == sorted(os.listxattr(p))
    assert {"user.colour", "user.empty", "user.big"} <= set(names)
    assert all(isinstance(n, str) for n in names)
    assert call(linuxaio.aio_removexattr, p, "user.colour") == 0
    assert "user.colour" not in os.listxattr(p)


def test_aio_setxattr_create_and_replace(xfile):
    p = str(xfile)
    err = call(linuxaio.aio_setxattr, p, "user.k", b"v", linuxaio.XATTR_REPLACE)
    assert isinstance(err, OSError) and err.errno == errno.ENODATA and err.filename == p
    assert call(linuxaio.aio_setxattr, p, "user.k", b"v1", linuxaio.XATTR_CREATE) == 0
    err = call(linuxaio.aio_setxattr, p, "user.k", b"v2", linuxaio.XATTR_CREATE)
    assert isinstance(err, FileExistsError)
    assert call(linuxaio.aio_setxattr, p, "user.k", b"v3", linuxaio.XATTR_REPLACE) == 0
    assert os.getxattr(p, "user.k") == b"v3"


def test_aio_xattrs_on_an_fd(xfile):
    fd = os.open(xfile, os.O_RDONLY)
    try:
        assert call(linuxaio.aio_setxattr, fd, "user.fd", b"yes", 0) == 0
        assert call(linuxaio.aio_getxattr, fd, "user.fd") == os.getxattr(fd, "user.fd") == b"yes"
        assert sorted(call(linuxaio.aio_listxattr, fd)) == sorted(os.listxattr(fd))
        assert call(linuxaio.aio_removexattr, fd, "user.fd") == 0
        err = call(linuxaio.aio_getxattr, fd, "user.fd")
        assert isinstance(err, OSError) and err.errno == errno.ENODATA and err.filename == fd
    finally:
        os.close(fd)


def test_aio_xattr_errors_are_os_errors(xfile, tmp_path):
    missing = str(tmp_path / "missing")
    pairs = [
        (call(linuxaio.aio_getxattr, missing, "user.x"), lambda: os.getxattr(missing, "user.x")),
        (call(linuxaio.aio_getxattr, str(xfile), "user.none"), lambda: os.getxattr(xfile, "user.none")),
        (call(linuxaio.aio_listxattr, missing), lambda: os.listxattr(missing)),
        (call(linuxaio.aio_removexattr, str(xfile), "user.none"), lambda: os.removexattr(xfile, "user.none")),
        (call(linuxaio.aio_setxattr, missing, "user.x", b"", 0), lambda: os.setxattr(missing, "user.x", b"")),
    ]
    for got, do in pairs:
        with pytest.raises(OSError) as info:
            do()
        want = info.value
        assert isinstance(got, OSError)
        assert (type(got), got.errno, got.strerror) == (type(want), want.errno, want.strerror)
        assert os.fspath(got.filename) == os.fspath(want.filename)


def test_aio_xattrs_refuse_bad_arguments(xfile):
    p = str(xfile)
    before = linuxaio.nreqs()
    cases = [
        (linuxaio.aio_getxattr, (p, None), TypeError),
        (linuxaio.aio_getxattr, (p, 5), TypeError),
        (linuxaio.aio_getxattr, (p, "user.a\0b"), ValueError),
        (linuxaio.aio_getxattr, (None, "user.a"), TypeError),
        (linuxaio.aio_setxattr, (p, "user.a", "str, not bytes", 0), TypeError),
        (linuxaio.aio_setxattr, (p, "user.a", b"v", "0"), TypeError),
        (linuxaio.aio_setxattr, (p, "user.a", b"v", 2 ** 40), OverflowError),
        (linuxaio.aio_listxattr, (-1,), ValueError),
        (linuxaio.aio_removexattr, (p, b"user.\0"), ValueError),
    ]
    for fn, args, exc in cases:
        with pytest.raises(exc):
            fn(*args, None)
    assert linuxaio.nreqs() == before
    assert os.listxattr(p) == []


def test_xattr_twins(runner, xfile, tmp_path):
    async def main(rt):
        await aos.setxattr(xfile, "user.a", b"1")
        assert await aos.getxattr(xfile, "user.a") == os.getxattr(xfile, "user.a") == b"1"
        await aos.setxattr(xfile, "user.a", b"2", os.XATTR_REPLACE)
        assert os.getxattr(xfile, "user.a") == b"2"
        with pytest.raises(FileExistsError) as info:
            await aos.setxattr(xfile, "user.a", b"3", os.XATTR_CREATE)
        with pytest.raises(FileExistsError) as want:
            os.setxattr(xfile, "user.a", b"3", os.XATTR_CREATE)
        assert error_shape(info.value) == error_shape(want.value)
        assert sorted(await aos.listxattr(xfile)) == sorted(os.listxattr(xfile))
        old = os.getcwd()
        os.chdir(tmp_path)
        try:   # path=None: the current directory, as os.listxattr()
            assert sorted(await aos.listxattr()) == sorted(os.listxattr())
        finally:
            os.chdir(old)
        # a symlink: followed, or not
        link = tmp_path / "link"
        os.symlink("f", link)
        assert await aos.getxattr(link, "user.a") == b"2"
        with pytest.raises(OSError) as info:
            await aos.getxattr(link, "user.a", follow_symlinks=False)
        with pytest.raises(OSError) as want:
            os.getxattr(link, "user.a", follow_symlinks=False)
        assert error_shape(info.value) == error_shape(want.value)
        assert await aos.listxattr(link, follow_symlinks=False) == os.listxattr(link, follow_symlinks=False)
        await aos.removexattr(xfile, "user.a")
        with pytest.raises(OSError) as info:
            await aos.removexattr(xfile, "user.a")
        with pytest.raises(OSError) as want:
            os.removexattr(xfile, "user.a")
        assert error_shape(info.value) == error_shape(want.value)
        fd = os.open(xfile, os.O_RDONLY)
        try:
            await aos.setxattr(fd, "user.fd", b"x")
            assert await aos.getxattr(fd, "user.fd") == b"x"
            with pytest.raises(ValueError):
                await aos.getxattr(fd, "user.fd", follow_symlinks=False)
        finally:
            os.close(fd)
    runner.run(main)
