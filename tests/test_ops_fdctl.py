"""The fd-control rows of issue 14: aio_fcntl, aio_ioctl (results as
fcntl.fcntl/fcntl.ioctl give them) and aio_fiemap (compared with a
FS_IOC_FIEMAP made through fcntl.ioctl)."""
import errno
import fcntl
import os
import struct
import subprocess
import sys
import tempfile
import termios

import pytest

import linuxaio

FLOCK = "hhqqi4x"      # struct flock on x86_64/aarch64: type, whence, start, len, pid


def call(fn, *args):
    got = []
    fn(*args, got.append)
    linuxaio.flush()
    assert len(got) == 1
    return got[0]


def outcome(fn, *args):
    try:
        return fn(*args)
    except OSError as e:
        return type(e), e.errno


def value_of(v):
    return (type(v), v.errno) if isinstance(v, OSError) else v


@pytest.fixture
def fd(tmp_path):
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"0123456789" * 1000)
    yield fd
    os.close(fd)


# ---- fcntl ----

def test_aio_fcntl_int_commands_as_fcntl(fd):
    assert call(linuxaio.aio_fcntl, fd, fcntl.F_GETFL, 0) == fcntl.fcntl(fd, fcntl.F_GETFL)
    assert call(linuxaio.aio_fcntl, fd, fcntl.F_SETFL, os.O_NONBLOCK) == 0
    assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
    assert call(linuxaio.aio_fcntl, fd, fcntl.F_GETFL, 0) == fcntl.fcntl(fd, fcntl.F_GETFL)
    assert call(linuxaio.aio_fcntl, fd, fcntl.F_GETFD, 0) == fcntl.fcntl(fd, fcntl.F_GETFD)
    new = call(linuxaio.aio_fcntl, fd, fcntl.F_DUPFD_CLOEXEC, 100)
    try:
        assert new >= 100 and os.path.samestat(os.fstat(new), os.fstat(fd))
    finally:
        os.close(new)


def test_aio_fcntl_bytes_and_str_come_back_as_fcntl_gives_them(fd):
    assert call(linuxaio.aio_fcntl, fd, fcntl.F_GETFL, b"abc") == fcntl.fcntl(fd, fcntl.F_GETFL, b"abc")
    assert call(linuxaio.aio_fcntl, fd, fcntl.F_GETFL, "abc") == fcntl.fcntl(fd, fcntl.F_GETFL, "abc")


def test_aio_fcntl_errors_as_fcntl(fd):
    for args in [(1 << 20, fcntl.F_GETFL, 0), (fd, 99999, 0), (fd, fcntl.F_SETLK, struct.pack(FLOCK, 99, 0, 0, 0, 0))]:
        got = call(linuxaio.aio_fcntl, *args)
        assert isinstance(got, OSError) and got.strerror and got.filename is None
        assert value_of(got) == outcome(fcntl.fcntl, *args)


def flock(kind, start=0, length=0):
    return struct.pack(FLOCK, kind, os.SEEK_SET, start, length, 0)


def test_aio_fcntl_ofd_locks_conflict_between_open_files(tmp_path, fd):
    """OFD locks belong to the open file: two opens in one process conflict."""
    other = os.open(tmp_path / "f", os.O_RDWR)
    try:
        assert call(linuxaio.aio_fcntl, fd, fcntl.F_OFD_SETLK, flock(fcntl.F_WRLCK, 0, 100)) \
            == flock(fcntl.F_WRLCK, 0, 100)
        # the other open file sees it, through fcntl and through aio_fcntl alike
        want = fcntl.fcntl(other, fcntl.F_OFD_GETLK, flock(fcntl.F_RDLCK, 10, 10))
        got = call(linuxaio.aio_fcntl, other, fcntl.F_OFD_GETLK, flock(fcntl.F_RDLCK, 10, 10))
        assert got == want
        kind, _, start, length, pid = struct.unpack(FLOCK, got)
        assert (kind, start, length, pid) == (fcntl.F_WRLCK, 0, 100, -1)
        # and cannot take a conflicting one
        err = call(linuxaio.aio_fcntl, other, fcntl.F_OFD_SETLK, flock(fcntl.F_WRLCK, 50, 1))
        assert isinstance(err, BlockingIOError) and err.errno == errno.EAGAIN
        # a writable buffer is filled in place; the callback gets the int
        buf = bytearray(flock(fcntl.F_WRLCK, 0, 0))
        assert call(linuxaio.aio_fcntl, other, fcntl.F_OFD_GETLK, buf) == 0
        assert struct.unpack(FLOCK, buf)[0] == fcntl.F_WRLCK
        # unlocked: free for the other
        assert isinstance(call(linuxaio.aio_fcntl, fd, fcntl.F_OFD_SETLK, flock(fcntl.F_UNLCK)), bytes)
        got = call(linuxaio.aio_fcntl, other, fcntl.F_OFD_GETLK, flock(fcntl.F_WRLCK))
        assert struct.unpack(FLOCK, got)[0] == fcntl.F_UNLCK
    finally:
        os.close(other)


def test_aio_fcntl_process_locks_seen_by_another_process(tmp_path, fd):
    """F_SETLK's lock, held by this process, blocks another process's F_SETLK."""
    assert isinstance(call(linuxaio.aio_fcntl, fd, fcntl.F_SETLK, flock(fcntl.F_WRLCK)), bytes)
    child = (
        "import errno, fcntl, os, struct, sys\n"
        f"fd = os.open({str(tmp_path / 'f')!r}, os.O_RDWR)\n"
        "try:\n"
        f"    fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack({FLOCK!r}, fcntl.F_WRLCK, 0, 0, 0, 0))\n"
        "    print('taken')\n"
        "except OSError as e:\n"
        "    print('refused' if e.errno in (errno.EAGAIN, errno.EACCES) else e)\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "refused", out.stderr
        # in this process, F_GETLK finds nothing in the way: the lock is ours
        got = call(linuxaio.aio_fcntl, fd, fcntl.F_GETLK, flock(fcntl.F_WRLCK))
        assert got == fcntl.fcntl(fd, fcntl.F_GETLK, flock(fcntl.F_WRLCK))
        assert struct.unpack(FLOCK, got)[0] == fcntl.F_UNLCK
    finally:
        fcntl.fcntl(fd, fcntl.F_SETLK, flock(fcntl.F_UNLCK))


# ---- ioctl ----

def test_aio_ioctl_fionread_fills_a_writable_buffer_small_or_large():
    r, w = os.pipe()
    try:
        os.write(w, b"12345")
        for size in (4, 8, 2048):          # 2048: past the copy block, used in place
            buf = bytearray(size)
            want = bytearray(size)
            assert call(linuxaio.aio_ioctl, r, termios.FIONREAD, buf) == fcntl.ioctl(r, termios.FIONREAD, want)
            assert buf == want and struct.unpack_from("i", buf)[0] == 5
        # bytes: copied in and out, as fcntl.ioctl
        assert call(linuxaio.aio_ioctl, r, termios.FIONREAD, b"\0" * 4) == \
            fcntl.ioctl(r, termios.FIONREAD, b"\0" * 4) == struct.pack("i", 5)
    finally:
        os.close(r)
        os.close(w)


def test_aio_ioctl_int_argument(fd):
    fcntl.fcntl(fd, fcntl.F_SETFD, 0)
    assert call(linuxaio.aio_ioctl, fd, termios.FIOCLEX, 0) == 0
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert call(linuxaio.aio_ioctl, fd, termios.FIONCLEX, 0) == 0
    assert not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC


@pytest.mark.parametrize("where", ["tmp", "shm"])
def test_aio_ioctl_fs_ioc_getflags_as_fcntl_ioctl(tmp_path, where):
    base = str(tmp_path) if where == "tmp" else "/dev/shm"
    if not os.path.isdir(base):
        pytest.skip("no /dev/shm here")
    with tempfile.NamedTemporaryFile(dir=base) as f:
        want = outcome(fcntl.ioctl, f.fileno(), linuxaio.FS_IOC_GETFLAGS, bytes(4))
        assert value_of(call(linuxaio.aio_ioctl, f, linuxaio.FS_IOC_GETFLAGS, bytes(4))) == want
        buf, want_buf = bytearray(8), bytearray(8)
        want = outcome(fcntl.ioctl, f.fileno(), linuxaio.FS_IOC_GETFLAGS, want_buf)
        assert value_of(call(linuxaio.aio_ioctl, f, linuxaio.FS_IOC_GETFLAGS, buf)) == want
        assert buf == want_buf


@pytest.mark.parametrize("where", ["tmp", "shm"])
def test_aio_ioctl_ficlone_as_fcntl_ioctl(tmp_path, where):
    """A reflink where the file system has them; its OSError where not
    (ext4, tmpfs: EOPNOTSUPP; across file systems: EXDEV)."""
    base = str(tmp_path) if where == "tmp" else "/dev/shm"
    if not os.path.isdir(base):
        pytest.skip("no /dev/shm here")
    with tempfile.TemporaryDirectory(dir=base) as d:
        src = os.open(os.path.join(d, "src"), os.O_RDWR | os.O_CREAT, 0o644)
        a = os.open(os.path.join(d, "a"), os.O_RDWR | os.O_CREAT, 0o644)
        b = os.open(os.path.join(d, "b"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(src, os.urandom(65536))
            want = outcome(fcntl.ioctl, a, linuxaio.FICLONE, src)
            got = value_of(call(linuxaio.aio_ioctl, b, linuxaio.FICLONE, src))
            assert got == want
            assert os.pread(a, 1 << 20, 0) == os.pread(b, 1 << 20, 0)
            if got != 0:
                assert got[1] in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY)
        finally:
            for x in (src, a, b):
                os.close(x)


def test_aio_ioctl_errors_as_fcntl_ioctl(fd):
    for args in [(fd, termios.TIOCGWINSZ, bytes(8)), (1 << 20, termios.FIONREAD, 0), (fd, 0xFFFFFFFF, 0)]:
        got = call(linuxaio.aio_ioctl, *args)
        assert isinstance(got, OSError) and got.strerror
        assert value_of(got) == outcome(fcntl.ioctl, *args)


# ---- fiemap ----

FIEMAP_HEAD = "=QQIIII"        # start, length, flags, mapped_extents, extent_count, reserved
FIEMAP_EXTENT = "=QQQ2QI3I"    # logical, physical, length, reserved64[2], flags, reserved[3]
FS_IOC_FIEMAP = 0xC020660B


def reference_fiemap(fd, start, length, flags, n):
    """FS_IOC_FIEMAP through fcntl.ioctl, one call of n extents."""
    head = struct.calcsize(FIEMAP_HEAD)
    size = struct.calcsize(FIEMAP_EXTENT)
    buf = bytearray(head + n * size + 8)
    struct.pack_into(FIEMAP_HEAD, buf, 0, start, length, flags, 0, n, 0)
    fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
    mapped = struct.unpack_from(FIEMAP_HEAD, buf)[3]
    out = []
    for i in range(mapped):
        e = struct.unpack_from(FIEMAP_EXTENT, buf, head + i * size)
        out.append((e[0], e[1], e[2], e[5]))
    return out


def sparse_file(path, pieces, gap=8192, piece=4096):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    for i in range(pieces):
        os.pwrite(fd, b"x" * piece, i * gap)
    os.fsync(fd)
    return fd


def test_fiemap_constants():
    assert linuxaio.FIEMAP_FLAG_SYNC == 1 and linuxaio.FIEMAP_FLAG_XATTR == 2
    assert linuxaio.FIEMAP_EXTENT_LAST == 1 and linuxaio.FIEMAP_EXTENT_UNKNOWN == 2
    assert linuxaio.FIEMAP_EXTENT_DELALLOC == 4 and linuxaio.FIEMAP_EXTENT_UNWRITTEN == 0x800
    assert linuxaio.FIEMAP_EXTENT_SHARED == 0x2000


def fiemap_or_skip(fd):
    try:
        reference_fiemap(fd, 0, 1 << 62, 0, 1)
    except OSError as e:
        pytest.skip(f"this file system has no FIEMAP ({e.strerror})")


def test_aio_fiemap_as_the_ioctl(tmp_path):
    fd = sparse_file(tmp_path / "f", 5)
    try:
        fiemap_or_skip(fd)
        want = reference_fiemap(fd, 0, 2 ** 64 - 1, linuxaio.FIEMAP_FLAG_SYNC, 100)
        assert len(want) == 5 and want[-1][3] & linuxaio.FIEMAP_EXTENT_LAST
        assert call(linuxaio.aio_fiemap, fd, 0, None, linuxaio.FIEMAP_FLAG_SYNC, None) == want
        # count: the first ones only; 0: none
        assert call(linuxaio.aio_fiemap, fd, 0, None, 0, 2) == want[:2]
        assert call(linuxaio.aio_fiemap, fd, 0, None, 0, 0) == []
        # a range: the extents that overlap it, as the ioctl reports them
        assert call(linuxaio.aio_fiemap, fd, 8192, 10000, 0, None) == \
            reference_fiemap(fd, 8192, 10000, 0, 100)
        # beyond the end: nothing
        assert call(linuxaio.aio_fiemap, fd, 1 << 30, None, 0, None) == []
    finally:
        os.close(fd)


def test_aio_fiemap_gathers_more_extents_than_one_call_takes(tmp_path):
    fd = sparse_file(tmp_path / "f", 600)
    try:
        fiemap_or_skip(fd)
        want = reference_fiemap(fd, 0, 2 ** 64 - 1, 0, 1000)
        assert len(want) == 600
        assert call(linuxaio.aio_fiemap, fd, 0, None, 0, None) == want
        assert call(linuxaio.aio_fiemap, fd, 0, None, 0, 300) == want[:300]
        assert call(linuxaio.aio_fiemap, fd, 0, None, 0, 599) == want[:599]
    finally:
        os.close(fd)


def test_aio_fiemap_on_tmpfs_gives_its_oserror():
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm (tmpfs) here")
    with tempfile.NamedTemporaryFile(dir="/dev/shm") as f:
        f.write(b"x" * 100)
        f.flush()
        try:
            reference_fiemap(f.fileno(), 0, 1 << 62, 0, 10)
            pytest.skip("this tmpfs has FIEMAP")
        except OSError as e:
            want = type(e), e.errno
        got = call(linuxaio.aio_fiemap, f, 0, None, 0, None)
        assert isinstance(got, OSError) and got.strerror
        assert value_of(got) == want
        got = call(linuxaio.aio_fiemap, f, 0, None, 0, 0)    # count 0 still asks
        assert value_of(got) == want


def test_aio_fiemap_bad_fd():
    got = call(linuxaio.aio_fiemap, 1 << 20, 0, None, 0, None)
    assert isinstance(got, OSError) and got.errno == errno.EBADF


# ---- bad arguments ----

BAD = [
    ("aio_fcntl", (0, "x", 0), TypeError),
    ("aio_fcntl", (0, 2 ** 40, 0), OverflowError),
    ("aio_fcntl", (0, 1, 1.5), TypeError),
    ("aio_fcntl", (0, 1, None), TypeError),
    ("aio_fcntl", (0, 1, b"x" * 1025), ValueError),
    ("aio_fcntl", (0, 1, "x" * 1025), ValueError),
    ("aio_fcntl", (0, 1, 2 ** 64), OverflowError),
    ("aio_fcntl", (-1, 1, 0), ValueError),
    ("aio_ioctl", ("x", 1, 0), TypeError),
    ("aio_ioctl", (0, -2 ** 31 - 1, 0), OverflowError),
    ("aio_ioctl", (0, 1, [1]), TypeError),
    ("aio_fiemap", (0, -1, None, 0, None), ValueError),
    ("aio_fiemap", (0, None, None, 0, None), TypeError),
    ("aio_fiemap", (0, 0, -1, 0, None), ValueError),
    ("aio_fiemap", (0, 0, None, "x", None), TypeError),
    ("aio_fiemap", (0, 0, None, 0, -1), ValueError),
    ("aio_fiemap", (0, 0, None, 0, "x"), TypeError),
]


@pytest.mark.parametrize("name,args,exc", BAD, ids=[f"{n}-{a!r}"[:60] for n, a, _ in BAD])
def test_bad_arguments_raise_at_submission(name, args, exc):
    before = linuxaio.nreqs()
    with pytest.raises(exc):
        getattr(linuxaio, name)(*args, None)
    assert linuxaio.nreqs() == before


def test_ioctl_request_takes_the_unsigned_spelling_and_the_negative_one():
    r, w = os.pipe()
    try:
        os.write(w, b"abc")
        neg = termios.FIONREAD - (1 << 32) if termios.FIONREAD >= 1 << 31 else None
        assert call(linuxaio.aio_ioctl, r, termios.FIONREAD, b"\0" * 4) == struct.pack("i", 3)
        if neg is not None:
            assert call(linuxaio.aio_ioctl, r, neg, b"\0" * 4) == struct.pack("i", 3)
        # FS_IOC_GETFLAGS is above 2**31: it must be accepted
        assert linuxaio.FS_IOC_GETFLAGS > 2 ** 31
        got = call(linuxaio.aio_ioctl, r, linuxaio.FS_IOC_GETFLAGS, bytes(4))
        assert value_of(got) == outcome(fcntl.ioctl, r, linuxaio.FS_IOC_GETFLAGS, bytes(4))
    finally:
        os.close(r)
        os.close(w)
