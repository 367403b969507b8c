"""The seed's API (Linux::AIO): every function against the synchronous os calls."""
import array
import asyncio
import errno
import gc
import mmap
import os
import select
import stat
import time

import pytest

import linuxaio
from aio_helpers import Collector, is_cancelled, is_done, stat_fields, wait_pending


def run1(submit):
    """Submit one request with a collecting callback, flush, return its value."""
    cb = Collector()
    req = submit(cb)
    linuxaio.flush()
    assert len(cb.calls) == 1, cb.calls
    assert len(cb.calls[0]) == 1
    assert is_done(req)
    return cb.values[0]


class FilenoObject:
    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd


# ---------------------------------------------------------------- nop, busy

def test_nop_passes_zero():
    assert run1(lambda cb: linuxaio.aio_nop(cb)) == 0


def test_busy_passes_zero_and_keeps_a_worker_busy():
    t0 = time.monotonic()
    assert run1(lambda cb: linuxaio.aio_busy(0.1, cb)) == 0
    assert time.monotonic() - t0 >= 0.09


def test_busy_accepts_int_seconds():
    assert run1(lambda cb: linuxaio.aio_busy(0, cb)) == 0


# ---------------------------------------------------------------- open/close

def test_open_gives_an_int_fd_on_the_file(datafile):
    path, _ = datafile
    fd = run1(lambda cb: linuxaio.aio_open(str(path), os.O_RDONLY, 0, cb))
    try:
        assert type(fd) is int and fd >= 0
        assert os.fstat(fd).st_ino == os.stat(path).st_ino
        assert os.pread(fd, 16, 0) == path.read_bytes()[:16]
        assert os.get_inheritable(fd) is False   # like os.open
    finally:
        os.close(fd)


def test_open_creates_with_mode_like_os_open(scratch):
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
    fd = run1(lambda cb: linuxaio.aio_open(str(scratch / "a"), flags, 0o640, cb))
    os.close(fd)
    os.close(os.open(scratch / "b", flags, 0o640))
    assert os.stat(scratch / "a").st_mode == os.stat(scratch / "b").st_mode


def test_open_honours_flags(scratch):
    p = scratch / "f"
    p.write_bytes(b"0123456789")
    fd = run1(lambda cb: linuxaio.aio_open(p, os.O_WRONLY | os.O_TRUNC, 0, cb))
    os.close(fd)
    assert p.read_bytes() == b""
    fd = run1(lambda cb: linuxaio.aio_open(p, os.O_WRONLY | os.O_APPEND, 0, cb))
    os.write(fd, b"xy")
    os.write(fd, b"z")
    os.close(fd)
    assert p.read_bytes() == b"xyz"


def test_close_passes_zero_and_closes(datafile):
    fd = os.open(datafile[0], os.O_RDONLY)
    assert run1(lambda cb: linuxaio.aio_close(fd, cb)) == 0
    with pytest.raises(OSError) as ei:
        os.fstat(fd)
    assert ei.value.errno == errno.EBADF


def test_close_of_a_closed_fd_gives_ebadf(datafile):
    fd = os.open(datafile[0], os.O_RDONLY)
    os.close(fd)
    err = run1(lambda cb: linuxaio.aio_close(fd, cb))
    assert type(err) is OSError and err.errno == errno.EBADF


def test_close_refuses_file_objects(datafile):
    with open(datafile[0], "rb") as f:
        n = linuxaio.nreqs()
        with pytest.raises(TypeError):
            linuxaio.aio_close(f, None)
        with pytest.raises(TypeError):
            linuxaio.aio_close(FilenoObject(f.fileno()), None)
        assert linuxaio.nreqs() == n
        os.fstat(f.fileno())   # still open


# ---------------------------------------------------------------- read

def _expect(data, offset, length):
    return data[offset:offset + length]


@pytest.mark.parametrize("kind", ["bytearray", "memoryview", "mmap", "array_B", "array_i",
                                  "memoryview_slice"])
def test_read_into_any_writable_buffer(rfd, datafile, kind):
    data = datafile[1]
    size = 8192
    if kind == "bytearray":
        buf = bytearray(size)
        raw = lambda: bytes(buf)
    elif kind == "memoryview":
        base = bytearray(size)
        buf = memoryview(base)
        raw = lambda: bytes(base)
    elif kind == "memoryview_slice":
        base = bytearray(size + 100)
        buf = memoryview(base)[100:]
        raw = lambda: bytes(base[100:])
    elif kind == "mmap":
        buf = mmap.mmap(-1, size)
        raw = lambda: buf[:]
    elif kind == "array_B":
        buf = array.array("B", bytes(size))
        raw = lambda: buf.tobytes()
    else:
        buf = array.array("i", [0]) * (size // 4)
        raw = lambda: buf.tobytes()
    n = run1(lambda cb: linuxaio.aio_read(rfd, 1000, 4000, buf, 96, cb))
    assert n == 4000
    got = raw()
    assert len(got) == size
    assert got[96:4096] == os.pread(rfd, 4000, 1000) == _expect(data, 1000, 4000)
    assert got[:96] == bytes(96) and got[4096:] == bytes(size - 4096)
    if kind == "mmap":
        buf.close()


def test_read_whole_file_matches_pread(rfd, datafile):
    buf = bytearray(len(datafile[1]))
    assert run1(lambda cb: linuxaio.aio_read(rfd, 0, len(buf), buf, 0, cb)) == len(buf)
    assert bytes(buf) == datafile[1]


def test_read_grows_a_bytearray_that_is_too_small(rfd, datafile):
    buf = bytearray(b"abc")
    n = run1(lambda cb: linuxaio.aio_read(rfd, 10, 20, buf, 5, cb))
    assert n == 20
    assert len(buf) == 25
    assert buf[:3] == b"abc"
    assert buf[5:] == datafile[1][10:30]


def test_grown_bytearray_padding_is_zeroed(rfd, datafile):
    """Bytes a grown bytearray gains outside what was read are zero, never
    leftover heap memory (the callback sees the whole buffer)."""
    bad = []
    for i in range(200):
        junk = [b"\xa5" * (n + 40) for n in range(16, 600, 8)]   # dirty the heap
        del junk
        buf = bytearray()
        size = 16 + (i % 64) * 8
        n = run1(lambda cb: linuxaio.aio_read(rfd, 0, 8, buf, size, cb))
        assert n == 8 and len(buf) == size + 8
        assert buf[size:] == datafile[1][:8]
        if buf[:size] != bytes(size):
            bad.append(bytes(buf[:size]))
    assert not bad, f"{len(bad)}/200 grown bytearrays held garbage, e.g. {bad[0][:32]!r}"


def test_short_read_at_eof_padding_is_zeroed(scratch):
    p = scratch / "short"
    p.write_bytes(b"1234")
    fd = os.open(p, os.O_RDONLY)
    try:
        bad = 0
        for _ in range(100):
            junk = [b"\x5a" * n for n in range(16, 300, 8)]
            del junk
            buf = bytearray()
            assert run1(lambda cb: linuxaio.aio_read(fd, 0, 100, buf, 0, cb)) == 4
            assert len(buf) == 100 and buf[:4] == b"1234"
            bad += buf[4:] != bytes(96)
        assert bad == 0, f"{bad}/100 short reads left garbage in the grown bytearray"
    finally:
        os.close(fd)


def test_read_past_eof_gives_zero(rfd, datafile):
    buf = bytearray(10)
    assert run1(lambda cb: linuxaio.aio_read(rfd, len(datafile[1]) + 5, 10, buf, 0, cb)) == 0
    assert buf == bytearray(10)


def test_short_read_gives_count(rfd, datafile):
    size = len(datafile[1])
    buf = bytearray(100)
    assert run1(lambda cb: linuxaio.aio_read(rfd, size - 30, 100, buf, 0, cb)) == 30
    assert bytes(buf[:30]) == datafile[1][-30:]


def test_zero_length_read(rfd):
    buf = bytearray(4)
    assert run1(lambda cb: linuxaio.aio_read(rfd, 0, 0, buf, 4, cb)) == 0


def test_read_offset_none_uses_and_moves_the_file_position(rfd, datafile):
    os.lseek(rfd, 300, os.SEEK_SET)
    buf = bytearray(50)
    assert run1(lambda cb: linuxaio.aio_read(rfd, None, 50, buf, 0, cb)) == 50
    assert bytes(buf) == datafile[1][300:350]
    assert os.lseek(rfd, 0, os.SEEK_CUR) == 350
    assert run1(lambda cb: linuxaio.aio_read(rfd, None, 50, buf, 0, cb)) == 50
    assert bytes(buf) == datafile[1][350:400]


def test_read_at_offset_leaves_the_file_position(rfd):
    os.lseek(rfd, 123, os.SEEK_SET)
    buf = bytearray(50)
    run1(lambda cb: linuxaio.aio_read(rfd, 0, 50, buf, 0, cb))
    assert os.lseek(rfd, 0, os.SEEK_CUR) == 123


def test_read_holds_the_buffer_until_completion(rfd, datafile):
    """A bytearray a pending read writes into cannot be resized (it is pinned);
    it is free again by the time the callback runs."""
    linuxaio.max_parallel(0)
    buf = bytearray(16)
    seen = []

    def cb(n):
        buf.extend(b"!")          # released before the callback
        seen.append(n)

    linuxaio.aio_read(rfd, 0, 16, buf, 0, cb)
    with pytest.raises(BufferError):
        buf.extend(b"x")
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert seen == [16]
    assert bytes(buf) == datafile[1][:16] + b"!"


def test_read_keeps_buffer_alive_without_other_references(rfd, datafile):
    got = []
    for _ in range(50):
        base = bytearray(4096)
        mv = memoryview(base)
        linuxaio.aio_read(rfd, 0, 4000, mv[10:], 0, got.append)
        del base, mv
    gc.collect()
    linuxaio.flush()
    assert got == [4000] * 50


# ---------------------------------------------------------------- write

@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "array", "mmap"])
def test_write_from_any_buffer(scratch, kind):
    payload = bytes(range(256)) * 4
    if kind == "bytes":
        src = payload
    elif kind == "bytearray":
        src = bytearray(payload)
    elif kind == "memoryview":
        src = memoryview(payload)
    elif kind == "array":
        src = array.array("B", payload)
    else:
        src = mmap.mmap(-1, len(payload))
        src[:] = payload
    p = scratch / "w"
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        assert run1(lambda cb: linuxaio.aio_write(fd, 10, 500, src, 7, cb)) == 500
        assert os.pread(fd, 1000, 0) == bytes(10) + payload[7:507]
    finally:
        os.close(fd)
        if kind == "mmap":
            src.close()


def test_write_offset_none_uses_and_moves_the_file_position(scratch):
    p = scratch / "w"
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"abcdef")
        os.lseek(fd, 2, os.SEEK_SET)
        assert run1(lambda cb: linuxaio.aio_write(fd, None, 3, b"XYZ", 0, cb)) == 3
        assert os.lseek(fd, 0, os.SEEK_CUR) == 5
        assert run1(lambda cb: linuxaio.aio_write(fd, None, 3, b"123", 0, cb)) == 3
        assert p.read_bytes() == b"abXYZ123"
    finally:
        os.close(fd)


def test_write_at_offset_leaves_the_file_position(scratch):
    fd = os.open(scratch / "w", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        assert run1(lambda cb: linuxaio.aio_write(fd, 100, 2, b"hi", 0, cb)) == 2
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
        assert os.fstat(fd).st_size == 102
    finally:
        os.close(fd)


def test_write_to_read_only_fd_gives_ebadf(rfd):
    err = run1(lambda cb: linuxaio.aio_write(rfd, 0, 1, b"x", 0, cb))
    assert type(err) is OSError and err.errno == errno.EBADF


def test_then_read_back_matches(scratch):
    """Write through the engine, read back through the engine and os."""
    payload = os.urandom(20000)
    fd = os.open(scratch / "rw", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        assert run1(lambda cb: linuxaio.aio_write(fd, 0, len(payload), payload, 0, cb)) == 20000
        buf = bytearray(20000)
        assert run1(lambda cb: linuxaio.aio_read(fd, 0, 20000, buf, 0, cb)) == 20000
        assert bytes(buf) == payload == os.pread(fd, 20000, 0)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- stat, lstat

@pytest.mark.parametrize("form", ["str", "bytes", "pathlib"])
def test_stat_of_path_equals_os_stat(datafile, form):
    path = datafile[0]
    arg = {"str": str(path), "bytes": os.fsencode(path), "pathlib": path}[form]
    st = run1(lambda cb: linuxaio.aio_stat(arg, cb))
    assert isinstance(st, os.stat_result)
    assert stat_fields(st) == stat_fields(os.stat(path))
    assert tuple(st) == tuple(os.stat(path))
    assert st == os.stat(path)


def test_stat_of_fd_and_of_file_object_equal_os_fstat(datafile):
    with open(datafile[0], "rb") as f:
        fd = f.fileno()
        expect = stat_fields(os.fstat(fd))
        assert stat_fields(run1(lambda cb: linuxaio.aio_stat(fd, cb))) == expect
        assert stat_fields(run1(lambda cb: linuxaio.aio_stat(f, cb))) == expect
        assert stat_fields(run1(lambda cb: linuxaio.aio_stat(FilenoObject(fd), cb))) == expect


def test_stat_of_directory_and_device():
    for p in ("/", "/dev/null", "/proc/self"):
        assert stat_fields(run1(lambda cb: linuxaio.aio_stat(p, cb))) == stat_fields(os.stat(p))


def test_stat_nanosecond_times(scratch):
    p = scratch / "t"
    p.write_bytes(b"x")
    os.utime(p, ns=(1_234_567_891_987_654_321, 1_500_000_000_000_000_007))
    st = run1(lambda cb: linuxaio.aio_stat(p, cb))
    assert st.st_atime_ns == 1_234_567_891_987_654_321
    assert st.st_mtime_ns == 1_500_000_000_000_000_007
    assert st.st_mtime == os.stat(p).st_mtime
    assert st[stat.ST_MTIME] == 1_500_000_000


def test_stat_follows_and_lstat_does_not_follow_symlinks(datafile, scratch):
    link = scratch / "link"
    link.symlink_to(datafile[0])
    # lstat first: following the link (stat) touches the link's atime
    lst = run1(lambda cb: linuxaio.aio_lstat(link, cb))
    assert stat_fields(lst) == stat_fields(os.lstat(link))
    st = run1(lambda cb: linuxaio.aio_stat(link, cb))
    assert stat_fields(st) == stat_fields(os.stat(link))
    assert stat.S_ISLNK(lst.st_mode) and stat.S_ISREG(st.st_mode)


@pytest.mark.parametrize("form", ["str", "bytes", "pathlib"])
def test_lstat_equals_os_lstat(datafile, form):
    path = datafile[0]
    arg = {"str": str(path), "bytes": os.fsencode(path), "pathlib": path}[form]
    assert stat_fields(run1(lambda cb: linuxaio.aio_lstat(arg, cb))) == stat_fields(os.lstat(path))


def test_dangling_symlink(scratch):
    link = scratch / "dangling"
    link.symlink_to(scratch / "nowhere")
    err = run1(lambda cb: linuxaio.aio_stat(link, cb))
    assert isinstance(err, FileNotFoundError)
    assert err.filename is link or err.filename == os.fspath(link)
    assert stat_fields(run1(lambda cb: linuxaio.aio_lstat(link, cb))) == stat_fields(os.lstat(link))


# ---------------------------------------------------------------- unlink

@pytest.mark.parametrize("form", ["str", "bytes", "pathlib"])
def test_unlink_passes_zero_and_removes(scratch, form):
    p = scratch / "gone"
    p.write_bytes(b"x")
    arg = {"str": str(p), "bytes": os.fsencode(p), "pathlib": p}[form]
    assert run1(lambda cb: linuxaio.aio_unlink(arg, cb)) == 0
    assert not p.exists()


def test_unlink_of_symlink_removes_the_link_only(datafile, scratch):
    link = scratch / "l"
    link.symlink_to(datafile[0])
    assert run1(lambda cb: linuxaio.aio_unlink(link, cb)) == 0
    assert not os.path.lexists(link) and datafile[0].exists()


# ---------------------------------------------------------------- errors

def _os_error(fn):
    try:
        fn()
    except OSError as e:
        return e
    raise AssertionError("the os call did not fail")


@pytest.fixture
def tree(scratch):
    (scratch / "file").write_bytes(b"x")
    (scratch / "dir").mkdir()
    return scratch


ERROR_CASES = [
    # (id, aio submit(path, cb), os equivalent(path), relative path)
    ("open_missing", lambda p, cb: linuxaio.aio_open(p, os.O_RDONLY, 0, cb),
     lambda p: os.open(p, os.O_RDONLY), "missing"),
    ("open_excl_existing", lambda p, cb: linuxaio.aio_open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600, cb),
     lambda p: os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "file"),
    ("open_dir_for_writing", lambda p, cb: linuxaio.aio_open(p, os.O_WRONLY, 0, cb),
     lambda p: os.open(p, os.O_WRONLY), "dir"),
    ("open_through_a_file", lambda p, cb: linuxaio.aio_open(p, os.O_RDONLY, 0, cb),
     lambda p: os.open(p, os.O_RDONLY), "file/x"),
    ("open_directory_flag_on_file", lambda p, cb: linuxaio.aio_open(p, os.O_RDONLY | os.O_DIRECTORY, 0, cb),
     lambda p: os.open(p, os.O_RDONLY | os.O_DIRECTORY), "file"),
    ("stat_missing", lambda p, cb: linuxaio.aio_stat(p, cb), os.stat, "missing"),
    ("stat_through_a_file", lambda p, cb: linuxaio.aio_stat(p, cb), os.stat, "file/x"),
    ("lstat_missing", lambda p, cb: linuxaio.aio_lstat(p, cb), os.lstat, "missing/deeper"),
    ("unlink_missing", lambda p, cb: linuxaio.aio_unlink(p, cb), os.unlink, "missing"),
    ("unlink_dir", lambda p, cb: linuxaio.aio_unlink(p, cb), os.unlink, "dir"),
    ("unlink_name_too_long", lambda p, cb: linuxaio.aio_unlink(p, cb), os.unlink, "n" * 300),
]


@pytest.mark.parametrize("form", ["str", "bytes", "pathlib"])
@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_failure_gives_the_oserror_os_would_raise(tree, case, form):
    _, submit, sync, rel = case
    path = tree / rel
    arg = {"str": str(path), "bytes": os.fsencode(path), "pathlib": path}[form]
    expected = _os_error(lambda: sync(arg))
    err = run1(lambda cb: submit(arg, cb))
    assert isinstance(err, OSError)
    assert type(err) is type(expected)
    assert err.errno == expected.errno
    assert err.strerror == expected.strerror == os.strerror(err.errno)
    # the path as given, or as os reports it (a PathLike's fspath)
    assert err.filename is arg or err.filename == expected.filename
    assert err.args == expected.args
    if err.filename == expected.filename:
        assert str(err) == str(expected)


def test_read_error_on_a_directory_fd(scratch):
    fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
    try:
        err = run1(lambda cb: linuxaio.aio_read(fd, 0, 10, bytearray(10), 0, cb))
        assert isinstance(err, IsADirectoryError) and err.errno == errno.EISDIR
        assert err.strerror == os.strerror(errno.EISDIR)
    finally:
        os.close(fd)


def test_read_error_on_a_write_only_fd(scratch):
    fd = os.open(scratch / "wo", os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        err = run1(lambda cb: linuxaio.aio_read(fd, 0, 10, bytearray(10), 0, cb))
        assert type(err) is OSError and err.errno == errno.EBADF
    finally:
        os.close(fd)


def test_permission_error_subclass(scratch):
    expected = _os_error(lambda: os.unlink("/proc/version"))   # EPERM, even for root
    err = run1(lambda cb: linuxaio.aio_unlink("/proc/version", cb))
    assert isinstance(err, PermissionError)
    assert (err.errno, err.strerror, err.filename) == (expected.errno, expected.strerror, "/proc/version")
    if os.geteuid() != 0:   # root is never denied by file modes
        p = scratch / "locked"
        p.write_bytes(b"x")
        p.chmod(0)
        err = run1(lambda cb: linuxaio.aio_open(p, os.O_RDONLY, 0, cb))
        assert isinstance(err, PermissionError)
        assert err.filename is p or err.filename == os.fspath(p)


# ---------------------------------------------------------------- callbacks

def _all_ops(path, fd, buf):
    return [
        lambda cb: linuxaio.aio_nop(cb),
        lambda cb: linuxaio.aio_busy(0.001, cb),
        lambda cb: linuxaio.aio_stat(path, cb),
        lambda cb: linuxaio.aio_lstat(path, cb),
        lambda cb: linuxaio.aio_stat(fd, cb),
        lambda cb: linuxaio.aio_read(fd, 0, 10, buf, 0, cb),
        lambda cb: linuxaio.aio_open(path, os.O_RDONLY, 0, cb),
        lambda cb: linuxaio.aio_stat(path + "-missing", cb),
        lambda cb: linuxaio.aio_unlink(path + "-missing", cb),
    ]


def test_every_callback_gets_exactly_one_argument(datafile, rfd):
    cb = Collector()
    reqs = [op(cb) for op in _all_ops(str(datafile[0]), rfd, bytearray(10))]
    linuxaio.flush()
    assert len(cb.calls) == len(reqs)
    assert all(len(args) == 1 for args in cb.calls)
    for v in cb.values:
        if type(v) is int and v > 2 and v != 10:
            os.close(v)   # the fd from aio_open


def test_callback_may_be_none_or_omitted(datafile, rfd):
    ops = _all_ops(str(datafile[0]), rfd, bytearray(10))
    before = os.listdir("/proc/self/fd")
    n = linuxaio.nreqs()
    reqs = [op(None) for op in ops]
    reqs += [linuxaio.aio_nop(), linuxaio.aio_busy(0), linuxaio.aio_stat("/")]
    assert linuxaio.nreqs() == n + len(reqs)
    linuxaio.flush()
    assert linuxaio.nreqs() == 0
    assert all(is_done(r) for r in reqs)
    # the fd opened with no callback to receive it is still a real fd; close it
    for fd in set(os.listdir("/proc/self/fd")) - set(before):
        try:
            os.close(int(fd))
        except OSError:
            pass


def test_callback_keyword(datafile):
    a, b, c = Collector(), Collector(), Collector()
    linuxaio.aio_nop(callback=a)
    linuxaio.aio_stat(datafile[0], callback=b)
    linuxaio.aio_busy(0, callback=c, pri=2)
    linuxaio.flush()
    assert a.calls == [(0,)] and c.calls == [(0,)]
    assert stat_fields(b.values[0]) == stat_fields(os.stat(datafile[0]))


@pytest.mark.parametrize("pri", range(linuxaio.PRI_MIN, linuxaio.PRI_MAX + 1))
def test_every_function_takes_pri(datafile, rfd, pri):
    assert (linuxaio.PRI_MIN, linuxaio.PRI_MAX) == (-4, 4)
    cb = Collector()
    path = str(datafile[0])
    reqs = [
        linuxaio.aio_nop(cb, pri=pri),
        linuxaio.aio_busy(0, cb, pri=pri),
        linuxaio.aio_stat(path, cb, pri=pri),
        linuxaio.aio_lstat(path, cb, pri=pri),
        linuxaio.aio_read(rfd, 0, 1, bytearray(1), 0, cb, pri=pri),
        linuxaio.aio_write(rfd, 0, 1, b"x", 0, cb, pri=pri),
        linuxaio.aio_unlink(path + ".nope", cb, pri=pri),
        linuxaio.aio_group(cb, pri=pri),
    ]
    opened = Collector()
    linuxaio.aio_open(path, os.O_RDONLY, 0, opened, pri=pri)
    linuxaio.flush()
    assert len(cb.calls) == len(reqs)
    fd = opened.values[0]
    linuxaio.aio_close(fd, cb, pri=pri)
    linuxaio.flush()
    assert cb.values[-1] == 0


def test_request_objects(datafile):
    linuxaio.max_parallel(0)
    r = linuxaio.aio_stat(datafile[0], None)
    assert isinstance(r, linuxaio.Request)
    assert r.name == "aio_stat"
    assert is_done(r) is False and is_cancelled(r) is False
    assert "aio_stat" in repr(r)
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert is_done(r) is True and is_cancelled(r) is False
    names = {linuxaio.aio_nop().name, linuxaio.aio_busy(0).name, linuxaio.aio_unlink("/nonexistent/x").name}
    assert names == {"aio_nop", "aio_busy", "aio_unlink"}
    g = linuxaio.aio_group()
    assert isinstance(g, linuxaio.Group) and isinstance(g, linuxaio.Request)
    assert g.name == "aio_group"
    linuxaio.flush()


# ---------------------------------------------------------------- fds with fileno()

def test_fd_arguments_accept_objects_with_fileno(datafile, scratch):
    data = datafile[1]
    with open(datafile[0], "rb") as f:
        buf = bytearray(10)
        assert run1(lambda cb: linuxaio.aio_read(f, 5, 10, buf, 0, cb)) == 10
        assert bytes(buf) == data[5:15]
        buf2 = bytearray(10)
        assert run1(lambda cb: linuxaio.aio_read(FilenoObject(f.fileno()), 6, 10, buf2, 0, cb)) == 10
        assert bytes(buf2) == data[6:16]
        assert stat_fields(run1(lambda cb: linuxaio.aio_lstat(f, cb))) == stat_fields(os.fstat(f.fileno()))
    with open(scratch / "w", "wb") as f:
        assert run1(lambda cb: linuxaio.aio_write(f, 0, 3, b"abc", 0, cb)) == 3
        assert run1(lambda cb: linuxaio.aio_write(FilenoObject(f.fileno()), 3, 2, b"de", 0, cb)) == 2
    assert (scratch / "w").read_bytes() == b"abcde"


# ---------------------------------------------------------------- the poll interface

def test_poll_fileno_is_constant():
    fd = linuxaio.poll_fileno()
    assert isinstance(fd, int) and fd >= 0
    for _ in range(3):
        linuxaio.aio_nop()
        linuxaio.flush()
        assert linuxaio.poll_fileno() == fd
    os.fstat(fd)


def _readable(fd, timeout=0.0):
    return bool(select.select([fd], [], [], timeout)[0])


def test_poll_fileno_readable_exactly_while_results_wait():
    fd = linuxaio.poll_fileno()
    assert not _readable(fd)
    linuxaio.aio_nop()
    assert _readable(fd, 5.0)
    assert _readable(fd)       # still readable: nothing consumed it
    assert linuxaio.poll_cb() == 1
    assert not _readable(fd)


def test_poll_cb_returns_zero_at_once_with_nothing_ready():
    assert linuxaio.poll_cb() == 0
    r, w = os.pipe()
    try:
        # held in the kernel until the pipe gets data: a poll_cb that
        # waited for it would wait until the test's alarm (the failure;
        # no time bound here, which a loaded machine could break)
        linuxaio.aio_read(r, None, 1, bytearray(1), 0, None)
        for _ in range(5):
            assert linuxaio.poll_cb() == 0
        assert linuxaio.nreqs() == 1
    finally:
        os.write(w, b"x")
        linuxaio.flush()
        os.close(r)
        os.close(w)


def test_poll_cb_returns_how_many_finished():
    got = []
    for _ in range(25):
        linuxaio.aio_nop(got.append)
    wait_pending(25)
    assert linuxaio.poll_cb() == 25
    assert got == [0] * 25 and linuxaio.nreqs() == 0


def test_select_driven_loop_as_the_seed_documents(datafile, rfd):
    """select() on poll_fileno(), then poll_cb(), until nreqs() is 0."""
    data = datafile[1]
    results = {}
    for i in range(64):
        buf = bytearray(512)
        linuxaio.aio_read(rfd, i * 1000, 512, buf, 0,
                          lambda n, i=i, buf=buf: results.__setitem__(i, (n, bytes(buf))))
    linuxaio.aio_stat(datafile[0], lambda st: results.__setitem__("stat", st))
    total = 0
    deadline = time.monotonic() + 10
    while linuxaio.nreqs():
        assert time.monotonic() < deadline
        r, _, _ = select.select([linuxaio.poll_fileno()], [], [], 1.0)
        if r:
            total += linuxaio.poll_cb()
    assert total == 65
    for i in range(64):
        assert results[i] == (512, data[i * 1000:i * 1000 + 512])
    # The reads of the same file run beside the stat and may move st_atime
    # (relatime) after it was taken: compare every field but the access times.
    def without_atime(st):
        return [f for f in stat_fields(st) if not f[0].startswith("st_atime")]
    assert without_atime(results["stat"]) == without_atime(os.stat(datafile[0]))


def test_asyncio_add_reader_drives_callbacks(datafile):
    """The README's asyncio loop: add_reader(poll_fileno(), poll_cb)."""
    data = datafile[1]

    async def main():
        loop = asyncio.get_running_loop()
        loop.add_reader(linuxaio.poll_fileno(), linuxaio.poll_cb)
        try:
            def call(submit):
                fut = loop.create_future()
                submit(lambda v: fut.done() or fut.set_result(v))
                return fut

            fd = await call(lambda cb: linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, cb))
            buf = bytearray(1000)
            n = await call(lambda cb: linuxaio.aio_read(fd, 77, 1000, buf, 0, cb))
            st = await call(lambda cb: linuxaio.aio_stat(fd, cb))
            rc = await call(lambda cb: linuxaio.aio_close(fd, cb))
            many = await asyncio.gather(*(call(lambda cb: linuxaio.aio_nop(cb)) for _ in range(100)))
            return n, bytes(buf), st, rc, many
        finally:
            loop.remove_reader(linuxaio.poll_fileno())

    n, got, st, rc, many = asyncio.run(asyncio.wait_for(main(), 10))
    assert n == 1000 and got == data[77:1077]
    assert st.st_size == len(data)
    assert rc == 0 and many == [0] * 100


# ---------------------------------------------------------------- exceptions in callbacks

class Boom(Exception):
    pass


def test_exception_in_callback_propagates_and_the_rest_come_next_poll():
    got = []

    def bad(v):
        got.append("bad")
        raise Boom

    for i in range(7):
        linuxaio.aio_nop(bad if i == 1 else got.append)
    wait_pending(7)
    with pytest.raises(Boom):
        linuxaio.poll_cb()
    assert got[-1] == "bad"          # poll_cb stopped right at the exception
    handled = len(got)
    assert linuxaio.nreqs() == 7 - handled
    assert linuxaio.npending() == 7 - handled
    if handled < 7:
        assert _readable(linuxaio.poll_fileno())   # still signalled: no re-arming needed
    assert linuxaio.poll_cb() == 7 - handled
    assert sorted(got, key=str) == [0] * 6 + ["bad"]
    assert linuxaio.nreqs() == 0 and linuxaio.npending() == 0
    assert not _readable(linuxaio.poll_fileno())


def test_exception_in_callback_propagates_out_of_flush_and_engine_stays_usable():
    got = []

    def bad(v):
        raise Boom("from callback")

    for i in range(10):
        linuxaio.aio_nop(bad if i == 3 else got.append)
    with pytest.raises(Boom):
        linuxaio.flush()
    linuxaio.flush()
    assert got == [0] * 9
    assert linuxaio.nreqs() == 0
    got.clear()
    linuxaio.aio_nop(got.append)
    linuxaio.flush()
    assert got == [0]


def test_every_callback_raising():
    for _ in range(20):
        linuxaio.aio_nop(lambda v: 1 / 0)
    raised = 0
    for _ in range(40):
        try:
            linuxaio.flush()
            break
        except ZeroDivisionError:
            raised += 1
    assert raised == 20
    assert linuxaio.nreqs() == 0 and linuxaio.npending() == 0


def test_nreqs_counts_outstanding():
    assert linuxaio.nreqs() == 0
    reqs = [linuxaio.aio_busy(0.05) for _ in range(5)]
    assert linuxaio.nreqs() == 5
    linuxaio.flush()
    assert linuxaio.nreqs() == 0
    assert all(is_done(r) for r in reqs)


def test_min_parallel_accepts_and_keeps_working():
    linuxaio.min_parallel(1)
    linuxaio.min_parallel(2)
    got = []
    linuxaio.aio_nop(got.append)
    linuxaio.flush()
    assert got == [0]


def test_truncate_and_sync_requests(scratch):
    p = scratch / "t"
    p.write_bytes(b"x" * 50)
    fd = os.open(p, os.O_RDWR)
    try:
        assert run1(lambda cb: linuxaio.aio_truncate(p, 5, cb)) == 0
        assert os.stat(p).st_size == 5
        assert run1(lambda cb: linuxaio.aio_truncate(fd, 9, cb)) == 0
        assert os.fstat(fd).st_size == 9
        assert run1(lambda cb: linuxaio.aio_fsync(fd, cb)) == 0
        assert run1(lambda cb: linuxaio.aio_fdatasync(fd, cb)) == 0
        err = run1(lambda cb: linuxaio.aio_truncate(scratch / "missing", 0, cb))
        assert isinstance(err, FileNotFoundError) and err.filename == str(scratch / "missing")
    finally:
        os.close(fd)
