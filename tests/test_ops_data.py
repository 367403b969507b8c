"""The data rows of issue 14: aio_sendfile (and its read/write fallback),
aio_copy_file_range, aio_readahead, aio_allocate, aio_fadvise, aio_load, and
their linuxaio.os twins (sendfile, copy_file_range, posix_fallocate,
fallocate, posix_fadvise), each compared with os doing the same."""
import errno
import os
import socket

import pytest

import linuxaio
from linuxaio import os as aos
from async_helpers import runner  # noqa: F401  (the fixture)

DATA = bytes(range(256)) * 64 + b"tail"    # 16 KiB and a bit


def call(fn, *args):
    """The value a callback gets: the result, or the exception."""
    got = []
    fn(*args, got.append)
    linuxaio.flush()
    assert len(got) == 1
    return got[0]


def outcome(fn, *args, **kw):
    """A result, or (type, errno) of the OSError it raised."""
    try:
        return fn(*args, **kw)
    except OSError as e:
        return type(e), e.errno


def value_of(v):
    return (type(v), v.errno) if isinstance(v, OSError) else v


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "src"
    path.write_bytes(DATA)
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


def new_file(tmp_path, name, flags=0):
    return os.open(tmp_path / name, os.O_RDWR | os.O_CREAT | os.O_TRUNC | flags, 0o644)


def contents(fd):
    return os.pread(fd, 1 << 20, 0)


def test_constants_have_the_kernels_values():
    assert (linuxaio.FALLOC_FL_KEEP_SIZE, linuxaio.FALLOC_FL_PUNCH_HOLE, linuxaio.FALLOC_FL_COLLAPSE_RANGE,
            linuxaio.FALLOC_FL_ZERO_RANGE, linuxaio.FALLOC_FL_INSERT_RANGE) == (1, 2, 8, 0x10, 0x20)
    for name in ("POSIX_FADV_NORMAL", "POSIX_FADV_SEQUENTIAL", "POSIX_FADV_RANDOM",
                 "POSIX_FADV_NOREUSE", "POSIX_FADV_WILLNEED", "POSIX_FADV_DONTNEED"):
        assert getattr(linuxaio, name) == getattr(os, name)
        assert name in linuxaio.__all__


# ---- sendfile ----

SENDFILE_CASES = [(0, 100), (100, 5000), (16380, 100), (1 << 20, 10), (3, 0), (None, 300), (None, 1 << 20)]


@pytest.mark.parametrize("offset,length", SENDFILE_CASES)
def test_aio_sendfile_does_what_os_sendfile_does(tmp_path, src, offset, length):
    want_out, got_out = new_file(tmp_path, "want"), new_file(tmp_path, "got")
    src2 = os.open(tmp_path / "src", os.O_RDONLY)
    try:
        os.lseek(src, 7, os.SEEK_SET)
        os.lseek(src2, 7, os.SEEK_SET)
        want = os.sendfile(want_out, src, offset, length)
        got = call(linuxaio.aio_sendfile, got_out, src2, offset, length)
        assert got == want
        assert contents(got_out) == contents(want_out)
        # the in_fd's position moves only without an offset, as os's
        assert os.lseek(src2, 0, os.SEEK_CUR) == os.lseek(src, 0, os.SEEK_CUR)
        assert os.lseek(got_out, 0, os.SEEK_CUR) == os.lseek(want_out, 0, os.SEEK_CUR)
    finally:
        for fd in (want_out, got_out, src2):
            os.close(fd)


def test_aio_sendfile_copies_by_hand_from_a_socket_which_sendfile_refuses(tmp_path):
    a, b = socket.socketpair()
    out = new_file(tmp_path, "out")
    try:
        a.sendall(b"over a socket")
        with pytest.raises(OSError) as e:          # sendfile(2) itself refuses
            os.sendfile(out, b.fileno(), None, 13)
        assert e.value.errno == errno.EINVAL
        assert call(linuxaio.aio_sendfile, out, b, None, 13) == 13
        assert contents(out) == b"over a socket"
        # the os twin is os.sendfile: the same refusal
        a.sendall(b"again")
        got = call(linuxaio._engine.sendfile, out, b.fileno(), None, 5)
        assert isinstance(got, OSError) and got.errno == errno.EINVAL
    finally:
        a.close()
        b.close()
        os.close(out)


def test_aio_sendfile_to_an_append_only_file_appends(tmp_path, src):
    out = new_file(tmp_path, "out", os.O_APPEND)
    try:
        os.write(out, b"head:")
        assert call(linuxaio.aio_sendfile, out, src, 10, 20) == 20
        assert contents(out) == b"head:" + DATA[10:30]
    finally:
        os.close(out)


def test_aio_sendfile_fallback_at_the_file_position_moves_it(tmp_path, src):
    out = new_file(tmp_path, "out", os.O_APPEND)      # sendfile refuses O_APPEND: the copy runs
    try:
        os.lseek(src, 100, os.SEEK_SET)
        assert call(linuxaio.aio_sendfile, out, src, None, 50) == 50
        assert os.lseek(src, 0, os.SEEK_CUR) == 150
        assert call(linuxaio.aio_sendfile, out, src, None, 1 << 20) == len(DATA) - 150
        assert contents(out) == DATA[100:]
    finally:
        os.close(out)


def test_aio_sendfile_errors_are_oserrors(tmp_path, src):
    bad = call(linuxaio.aio_sendfile, 1 << 20, src, 0, 10)
    assert isinstance(bad, OSError) and bad.errno == errno.EBADF and bad.strerror
    assert bad.filename is None
    # a read-only out fd: sendfile says EBADF, which is no refusal to copy around
    ro = os.open(tmp_path / "src", os.O_RDONLY)
    try:
        err = call(linuxaio.aio_sendfile, ro, src, 0, 10)
        assert value_of(err) == outcome(os.sendfile, ro, src, 0, 10) == (OSError, errno.EBADF)
    finally:
        os.close(ro)


def test_os_sendfile_twin(runner, tmp_path, src):
    async def main(rt):
        results = []
        for offset, count in SENDFILE_CASES + [(-1, 10), (0, -1)]:
            want_out, got_out = new_file(tmp_path, "want"), new_file(tmp_path, "got")
            try:
                os.lseek(src, 0, os.SEEK_SET)
                want = outcome(os.sendfile, want_out, src, offset, count)
                os.lseek(src, 0, os.SEEK_SET)
                try:
                    got = await aos.sendfile(got_out, src, offset, count)
                except OSError as e:
                    got = type(e), e.errno
                results.append((got, want, contents(got_out), contents(want_out)))
            finally:
                os.close(want_out)
                os.close(got_out)
        return results

    for got, want, got_data, want_data in runner.run(main):
        assert got == want
        assert got_data == want_data


# ---- copy_file_range ----

CFR_CASES = [(0, 0, 100), (10, 50, 4000), (None, None, 300), (16000, None, 1000), (1 << 20, 0, 5)]


@pytest.mark.parametrize("in_off,out_off,length", CFR_CASES)
def test_aio_copy_file_range_does_what_os_does(tmp_path, src, in_off, out_off, length):
    want_out, got_out = new_file(tmp_path, "want"), new_file(tmp_path, "got")
    src2 = os.open(tmp_path / "src", os.O_RDONLY)
    try:
        for fd in (want_out, got_out):
            os.write(fd, b"x" * 20)
        want = os.copy_file_range(src, want_out, length, in_off, out_off)
        got = call(linuxaio.aio_copy_file_range, src2, in_off, got_out, out_off, length)
        assert got == want
        assert contents(got_out) == contents(want_out)
        assert os.lseek(src2, 0, os.SEEK_CUR) == os.lseek(src, 0, os.SEEK_CUR)
        assert os.lseek(got_out, 0, os.SEEK_CUR) == os.lseek(want_out, 0, os.SEEK_CUR)
    finally:
        for fd in (want_out, got_out, src2):
            os.close(fd)


def test_aio_copy_file_range_errors(tmp_path, src):
    r, w = os.pipe()
    out = new_file(tmp_path, "out")
    try:
        for args in [(src, 0, 1 << 20, 0, 10), (src, 0, r, None, 10)]:
            got = call(linuxaio.aio_copy_file_range, *args)
            want = outcome(os.copy_file_range, args[0], args[2], args[4], args[1], args[3])
            assert isinstance(got, OSError) and got.strerror
            assert value_of(got) == want
    finally:
        os.close(r)
        os.close(w)
        os.close(out)


def test_os_copy_file_range_twin(runner, tmp_path, src):
    async def main(rt):
        results = []
        for args, kw in [((100,), {}), ((50,), {"offset_src": 10}), ((50,), {"offset_dst": 3}),
                         ((40,), {"offset_src": 7, "offset_dst": 9}), ((10,), {"offset_src": -1}),
                         ((10,), {"offset_dst": -5})]:
            want_out, got_out = new_file(tmp_path, "want"), new_file(tmp_path, "got")
            try:
                os.lseek(src, 0, os.SEEK_SET)
                want = outcome(os.copy_file_range, src, want_out, *args, **kw)
                os.lseek(src, 0, os.SEEK_SET)
                try:
                    got = await aos.copy_file_range(src, got_out, *args, **kw)
                except OSError as e:
                    got = type(e), e.errno
                results.append((got, want, contents(got_out), contents(want_out)))
            finally:
                os.close(want_out)
                os.close(got_out)
        with pytest.raises(ValueError):
            await aos.copy_file_range(src, src, -1)
        with pytest.raises(TypeError):
            await aos.copy_file_range(src, src, "x")
        return results

    for got, want, got_data, want_data in runner.run(main):
        assert got == want
        assert got_data == want_data


# ---- readahead, fadvise ----

def test_aio_readahead(src):
    assert call(linuxaio.aio_readahead, src, 0, len(DATA)) == 0
    assert call(linuxaio.aio_readahead, src, 1 << 30, 10) == 0     # beyond the end: nothing
    r, w = os.pipe()
    try:
        got = call(linuxaio.aio_readahead, r, 0, 10)
        assert isinstance(got, OSError) and got.errno == errno.EINVAL
    finally:
        os.close(r)
        os.close(w)
    got = call(linuxaio.aio_readahead, 1 << 20, 0, 10)
    assert isinstance(got, OSError) and got.errno == errno.EBADF


FADVISE_CASES = [(0, 0, os.POSIX_FADV_WILLNEED), (100, 1000, os.POSIX_FADV_DONTNEED),
                 (0, 10, os.POSIX_FADV_SEQUENTIAL), (0, 0, os.POSIX_FADV_RANDOM),
                 (0, 0, os.POSIX_FADV_NORMAL), (0, 0, os.POSIX_FADV_NOREUSE), (0, 0, 99)]


@pytest.mark.parametrize("offset,length,advice", FADVISE_CASES)
def test_aio_fadvise_does_what_os_posix_fadvise_does(src, offset, length, advice):
    want = outcome(os.posix_fadvise, src, offset, length, advice)
    got = value_of(call(linuxaio.aio_fadvise, src, offset, length, advice))
    assert got == (0 if want is None else want)


def test_aio_fadvise_on_a_pipe_is_espipe():
    r, w = os.pipe()
    try:
        want = outcome(os.posix_fadvise, r, 0, 0, os.POSIX_FADV_NORMAL)
        assert value_of(call(linuxaio.aio_fadvise, r, 0, 0, os.POSIX_FADV_NORMAL)) == want
        assert want == (OSError, errno.ESPIPE) or want[1] == errno.ESPIPE
    finally:
        os.close(r)
        os.close(w)


def test_os_posix_fadvise_twin(runner, src):
    cases = FADVISE_CASES + [(-1, 10, 0), (0, -1, 0), (0, 0, 12345)]

    async def main(rt):
        out = []
        for args in cases:
            try:
                got = await aos.posix_fadvise(src, *args)
            except OSError as e:
                got = type(e), e.errno
            out.append((got, outcome(os.posix_fadvise, src, *args)))
        return out

    for got, want in runner.run(main):
        assert got == want


# ---- fallocate ----

def blocks(fd):
    return os.fstat(fd).st_blocks


def test_aio_allocate_mode_0_extends_as_posix_fallocate(tmp_path):
    a, b = new_file(tmp_path, "a"), new_file(tmp_path, "b")
    try:
        os.posix_fallocate(a, 0, 100000)
        assert call(linuxaio.aio_allocate, b, 0, 0, 100000) == 0
        assert os.fstat(b).st_size == os.fstat(a).st_size == 100000
        assert blocks(b) == blocks(a) > 0
        assert contents(b) == contents(a) == bytes(100000)
    finally:
        os.close(a)
        os.close(b)


def test_aio_allocate_keep_size_allocates_past_the_end(tmp_path):
    fd = new_file(tmp_path, "f")
    try:
        os.write(fd, b"abc")
        assert call(linuxaio.aio_allocate, fd, linuxaio.FALLOC_FL_KEEP_SIZE, 0, 1 << 20) == 0
        assert os.fstat(fd).st_size == 3
        assert blocks(fd) * 512 >= 1 << 20
    finally:
        os.close(fd)


def fs_supports(fd, mode, offset, length):
    """Whether this file system takes that fallocate mode (checked on a
    scratch fd beside it); the operation itself is compared below."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return libc.fallocate(fd, mode, offset, length) == 0 or ctypes.get_errno() != errno.EOPNOTSUPP


@pytest.mark.parametrize("where", ["tmp", "shm"])
def test_aio_allocate_punch_zero_collapse_insert(tmp_path, where):
    base = tmp_path if where == "tmp" else None
    if base is None:
        if not os.path.isdir("/dev/shm"):
            pytest.skip("no /dev/shm (tmpfs) here")
        import tempfile
        base_dir = tempfile.mkdtemp(dir="/dev/shm")
    else:
        base_dir = str(base)
    page = 4096
    data = os.urandom(8 * page)
    path = os.path.join(base_dir, "f")
    with open(path, "wb") as f:
        f.write(data)
    fd = os.open(path, os.O_RDWR)
    scratch = os.open(os.path.join(base_dir, "scratch"), os.O_RDWR | os.O_CREAT, 0o644)
    os.write(scratch, bytes(8 * page))
    try:
        expect = bytearray(data)
        FL = linuxaio
        steps = [
            (FL.FALLOC_FL_PUNCH_HOLE | FL.FALLOC_FL_KEEP_SIZE, page, 2 * page,
             lambda b: b.__setitem__(slice(page, 3 * page), bytes(2 * page))),
            (FL.FALLOC_FL_ZERO_RANGE, 10, 100, lambda b: b.__setitem__(slice(10, 110), bytes(100))),
            (FL.FALLOC_FL_COLLAPSE_RANGE, 4 * page, page, lambda b: b.__delitem__(slice(4 * page, 5 * page))),
            (FL.FALLOC_FL_INSERT_RANGE, page, page,
             lambda b: b.__setitem__(slice(page, page), bytes(page))),
        ]
        for mode, offset, length, model in steps:
            got = call(linuxaio.aio_allocate, fd, mode, offset, length)
            if not fs_supports(scratch, mode, offset, length):
                assert isinstance(got, OSError) and got.errno == errno.EOPNOTSUPP
                continue
            assert got == 0, (mode, got)
            model(expect)
            assert os.pread(fd, 1 << 20, 0) == bytes(expect), mode
        bad = call(linuxaio.aio_allocate, fd, 0, 0, 0)            # length 0: EINVAL
        assert isinstance(bad, OSError) and bad.errno == errno.EINVAL and bad.strerror
    finally:
        os.close(fd)
        os.close(scratch)
        if base is None:
            import shutil
            shutil.rmtree(base_dir)


def test_os_fallocate_twins(runner, tmp_path):
    cases = [(0, 1000), (4096, 100), (0, 0), (-1, 10), (0, -1)]

    async def main(rt):
        out = []
        for offset, length in cases:
            want_fd, got_fd = new_file(tmp_path, "want"), new_file(tmp_path, "got")
            try:
                want = outcome(os.posix_fallocate, want_fd, offset, length)
                try:
                    got = await aos.posix_fallocate(got_fd, offset, length)
                except OSError as e:
                    got = type(e), e.errno
                out.append((got, want, os.fstat(got_fd).st_size, os.fstat(want_fd).st_size))
                try:
                    got2 = await aos.fallocate(got_fd, linuxaio.FALLOC_FL_KEEP_SIZE, offset, length)
                except OSError as e:
                    got2 = type(e), e.errno
                out.append((got2, want, 0, 0))
            finally:
                os.close(want_fd)
                os.close(got_fd)
        with pytest.raises(TypeError):
            await aos.posix_fallocate("x", 0, 1)
        with pytest.raises(OverflowError):
            await aos.posix_fallocate(0, 2 ** 64, 1)
        return out

    for got, want, got_size, want_size in runner.run(main):
        assert got == want
        assert got_size == want_size


# ---- load ----

@pytest.mark.parametrize("initial", [b"", b"x" * 10, b"y" * 100000])
def test_aio_load_fills_and_resizes_the_bytearray(tmp_path, initial):
    path = tmp_path / "f"
    path.write_bytes(DATA)
    data = bytearray(initial)
    assert call(linuxaio.aio_load, str(path), data) == len(DATA)
    assert data == DATA


def test_aio_load_of_an_empty_file_and_a_proc_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    data = bytearray(b"old")
    assert call(linuxaio.aio_load, tmp_path / "empty", data) == 0
    assert data == b""
    data = bytearray()
    n = call(linuxaio.aio_load, b"/proc/self/status", data)   # st_size 0, read to the end
    assert n == len(data) > 0 and data.startswith(b"Name:")


def test_aio_load_errors_carry_the_filename(tmp_path):
    data = bytearray(b"keep")
    got = call(linuxaio.aio_load, tmp_path / "missing", data)
    assert isinstance(got, FileNotFoundError) and got.filename == str(tmp_path / "missing")
    assert data == b"keep"
    got = call(linuxaio.aio_load, str(tmp_path), data)
    assert isinstance(got, IsADirectoryError) and got.filename == str(tmp_path)


def test_aio_load_into_an_exported_bytearray_fails_with_buffererror(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(DATA)
    data = bytearray(3)
    got = []
    linuxaio.aio_load(path, data, got.append)
    view = memoryview(data)              # exported when the result arrives: no resize
    linuxaio.flush()
    view.release()
    assert len(got) == 1 and isinstance(got[0], BufferError)
    assert data == bytes(3)


def test_aio_load_awaited(runner, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(DATA)

    async def main(rt):
        data = bytearray()
        n = await linuxaio._run(linuxaio.aio_load, str(path), data)
        return n, bytes(data)

    assert runner.run(main) == (len(DATA), DATA)


# ---- bad arguments: raised at submission, nothing queued ----

BAD = [
    ("aio_sendfile", (1, 2, -1, 10), ValueError),
    ("aio_sendfile", (1, 2, 0, -1), ValueError),
    ("aio_sendfile", (1, "x", 0, 1), TypeError),
    ("aio_sendfile", (1, 2, 0, 2 ** 64), OverflowError),
    ("aio_copy_file_range", (1, 0, 2, -1, 10), ValueError),
    ("aio_copy_file_range", (1, 0, None, 0, 10), TypeError),
    ("aio_readahead", (1, None, 10), TypeError),
    ("aio_readahead", (1, 0, -1), ValueError),
    ("aio_allocate", (1, "x", 0, 1), TypeError),
    ("aio_allocate", (1, 2 ** 40, 0, 1), OverflowError),
    ("aio_allocate", (1, 0, -1, 1), ValueError),
    ("aio_fadvise", (1, 0, 0, 1.5), TypeError),
    ("aio_load", ("/etc/hostname", b"bytes"), TypeError),
    ("aio_load", ("/etc/hostname", memoryview(bytearray(4))), TypeError),
    ("aio_load", ("/etc/hostname", None), TypeError),
    ("aio_load", (None, bytearray()), TypeError),
    ("aio_load", ("a\0b", bytearray()), ValueError),
]


@pytest.mark.parametrize("name,args,exc", BAD, ids=[f"{n}-{a!r}" for n, a, _ in BAD])
def test_bad_arguments_raise_at_submission(name, args, exc):
    before = linuxaio.nreqs()
    with pytest.raises(exc):
        getattr(linuxaio, name)(*args, None)
    assert linuxaio.nreqs() == before
