"""The memory rows of issue 14: aio_msync, aio_mtouch, aio_mlock,
aio_mlockall, on mmaps and other buffers (held until done), compared with
the same calls made synchronously."""
import ctypes
import errno
import mmap
import os

import pytest

import linuxaio
from aio_helpers import run_python

PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)


def call(fn, *args):
    got = []
    fn(*args, got.append)
    linuxaio.flush()
    assert len(got) == 1
    return got[0]


def value_of(v):
    return (type(v), v.errno) if isinstance(v, OSError) else v


def address(buf):
    """The address of a writable buffer's first byte."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def libc_outcome(name, *args):
    fn = getattr(_libc, name)
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int][:len(args)]
    if fn(*args) == 0:
        return 0
    e = ctypes.get_errno()
    return type(OSError(e, os.strerror(e))), e


def resident_pages(m):
    """mincore(2): how many pages of the mapping are in memory."""
    n = (len(m) + PAGE - 1) // PAGE
    vec = (ctypes.c_ubyte * n)()
    _libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    assert _libc.mincore(ctypes.c_void_p(address(m)), len(m), vec) == 0
    return sum(v & 1 for v in vec)


def vm_locked_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmLck:"):
                return int(line.split()[1])
    raise AssertionError("no VmLck")


@pytest.fixture
def mapped(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(os.urandom(16 * PAGE))
    fd = os.open(path, os.O_RDWR)
    m = mmap.mmap(fd, 0)
    yield fd, m
    m.close()
    os.close(fd)


def test_constants_have_the_kernels_values():
    assert (linuxaio.MS_ASYNC, linuxaio.MS_SYNC, linuxaio.MS_INVALIDATE) == \
        (mmap.MS_ASYNC if hasattr(mmap, "MS_ASYNC") else 1, 4, 2)
    assert (linuxaio.MCL_CURRENT, linuxaio.MCL_FUTURE, linuxaio.MCL_ONFAULT) == (1, 2, 4)
    assert isinstance(linuxaio.MT_MODIFY, int) and linuxaio.MT_MODIFY


# ---- msync ----

@pytest.mark.parametrize("offset,length,flags", [
    (0, None, 4), (None, None, 1), (5, 100, 4), (PAGE + 7, 3 * PAGE, 4 | 2), (0, 0, 4),
    (0, None, 1 | 4), (0, None, 99)])
def test_aio_msync_as_msync_of_the_pages(mapped, offset, length, flags):
    fd, m = mapped
    m[10:20] = b"0123456789"
    off = offset or 0
    n = len(m) - off if length is None else length
    start = address(m) + off
    lo = start & ~(PAGE - 1)
    want = libc_outcome("msync", lo, (start + n - lo + PAGE - 1) & ~(PAGE - 1) if n else 0, flags)
    assert value_of(call(linuxaio.aio_msync, m, offset, length, flags)) == want
    assert os.pread(fd, 10, 10) == b"0123456789"


def test_aio_msync_of_memory_no_file_backs(mapped):
    anon = mmap.mmap(-1, 4 * PAGE)
    try:
        assert value_of(call(linuxaio.aio_msync, anon, 0, None, linuxaio.MS_SYNC)) == \
            libc_outcome("msync", address(anon), len(anon), linuxaio.MS_SYNC)
    finally:
        anon.close()


def test_aio_msync_holds_the_mmap_until_done(mapped):
    fd, m = mapped
    got = []
    linuxaio.aio_msync(m, 0, None, linuxaio.MS_SYNC, got.append)
    with pytest.raises(BufferError):
        m.close()                       # the request holds its buffer
    linuxaio.flush()
    assert got == [0]
    m2 = mmap.mmap(fd, 0)
    m2.close()                          # and lets go of it once done


# ---- mtouch ----

def test_aio_mtouch_faults_pages_in(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(os.urandom(64 * PAGE))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)                                    # clean pages: DONTNEED drops them
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        m = mmap.mmap(fd, 0, access=mmap.ACCESS_COPY)   # writable for ctypes, never written
        try:
            before = resident_pages(m)
            assert call(linuxaio.aio_mtouch, m, 0, None, 0) == 0
            if before == 64:
                pytest.skip("the page cache kept the file's pages: nothing to fault in")
            assert resident_pages(m) == 64
        finally:
            m.close()
    finally:
        os.close(fd)


def test_aio_mtouch_modify_dirties_without_changing_a_byte(tmp_path):
    """A sparse file's pages get blocks once written through the mapping;
    reading them does not; the bytes stay what they were."""
    path = tmp_path / "sparse"
    with open(path, "wb") as f:
        f.truncate(32 * PAGE)
    fd = os.open(path, os.O_RDWR)
    m = mmap.mmap(fd, 0)
    try:
        assert call(linuxaio.aio_mtouch, m, None, None, 0) == 0
        m.flush()
        assert os.fstat(fd).st_blocks == 0
        assert call(linuxaio.aio_mtouch, m, 3, 8 * PAGE, linuxaio.MT_MODIFY) == 0
        m.flush()
        assert os.fstat(fd).st_blocks * 512 >= 8 * PAGE
        assert m[:] == bytes(32 * PAGE)
    finally:
        m.close()
        os.close(fd)


def test_aio_mtouch_modify_keeps_the_data(mapped):
    fd, m = mapped
    before = bytes(m)
    assert call(linuxaio.aio_mtouch, m, 1, len(m) - 2, linuxaio.MT_MODIFY) == 0
    assert bytes(m) == before == os.pread(fd, len(m), 0)


def test_aio_mtouch_any_buffer():
    data = bytearray(os.urandom(3 * PAGE + 5))
    keep = bytes(data)
    assert call(linuxaio.aio_mtouch, data, 0, None, linuxaio.MT_MODIFY) == 0
    assert call(linuxaio.aio_mtouch, b"read only is fine to read", 0, None, 0) == 0
    assert data == keep


def test_aio_mtouch_modify_refuses_read_only_memory(mapped):
    fd, _ = mapped
    ro = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    try:
        before = linuxaio.nreqs()
        for buf in (ro, b"bytes", memoryview(bytearray(10)).toreadonly()):
            with pytest.raises(TypeError):
                linuxaio.aio_mtouch(buf, 0, None, linuxaio.MT_MODIFY, None)
        assert linuxaio.nreqs() == before
        assert call(linuxaio.aio_mtouch, ro, 0, None, 0) == 0
    finally:
        ro.close()


# ---- mlock, mlockall ----

# AddressSanitizer's interceptors make mlock and mlockall no-ops that return 0.
under_asan = pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                                reason="ASan turns mlock/mlockall into no-ops (tools/sanitize.sh)")


@under_asan
def test_aio_mlock_locks_the_pages(mapped):
    fd, m = mapped
    anon = mmap.mmap(-1, 64 * PAGE)
    try:
        before = vm_locked_kb()
        got = call(linuxaio.aio_mlock, anon, PAGE + 1, 10 * PAGE)   # widened: 11 pages
        want = libc_outcome("mlock", address(anon) + PAGE, 11 * PAGE)
        if want != 0:
            assert value_of(got) == want        # RLIMIT_MEMLOCK: its OSError, as mlock's
            return
        assert got == 0
        assert vm_locked_kb() - before == 11 * PAGE // 1024
        _libc.munlock(ctypes.c_void_p(address(anon)), ctypes.c_size_t(len(anon)))
    finally:
        anon.close()


def test_aio_mlock_errors(mapped):
    _, m = mapped
    got = call(linuxaio.aio_mlock, m, 0, None)
    assert got == 0 or (isinstance(got, OSError) and got.errno in (errno.ENOMEM, errno.EPERM, errno.EAGAIN))
    _libc.munlock(ctypes.c_void_p(address(m)), ctypes.c_size_t(len(m)))


@under_asan
def test_aio_mlockall_in_a_child():
    """mlockall locks the whole process: tried in a child interpreter."""
    code = (
        "import linuxaio, sys\n"
        "got = []\n"
        "linuxaio.aio_mlockall(0, got.append)\n"
        "linuxaio.aio_mlockall(linuxaio.MCL_CURRENT, got.append)\n"
        "linuxaio.flush()\n"
        "lck = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmLck:')][0]\n"
        "print(type(got[0]).__name__, getattr(got[0], 'errno', None), repr(got[1]), lck > 0)\n"
    )
    proc, _ = run_python(code, timeout=60)
    assert proc.returncode == 0, proc.stderr
    first, err, second, locked = proc.stdout.split()
    assert (first, int(err)) == ("OSError", errno.EINVAL)
    if second == "0":
        assert locked == "True"
    else:   # not allowed here (RLIMIT_MEMLOCK): an OSError, not a crash
        assert "Error" in second


# ---- bad arguments ----

def bad_cases():
    ba = bytearray(100)
    return [
        ("aio_msync", (5, 0, None, 0), TypeError),
        ("aio_msync", (ba, -1, None, 0), ValueError),
        ("aio_msync", (ba, 101, None, 0), ValueError),
        ("aio_msync", (ba, 50, 51, 0), ValueError),
        ("aio_msync", (ba, 0, -1, 0), ValueError),
        ("aio_msync", (ba, 0, None, "x"), TypeError),
        ("aio_mtouch", (ba, 0, 101, 0), ValueError),
        ("aio_mtouch", ("str", 0, None, 0), TypeError),
        ("aio_mlock", (ba, 0, 200), ValueError),
        ("aio_mlock", (None, 0, None), TypeError),
        ("aio_mlockall", ("x",), TypeError),
        ("aio_mlockall", (2 ** 40,), OverflowError),
    ]


@pytest.mark.parametrize("case", range(len(bad_cases())))
def test_bad_arguments_raise_at_submission(case):
    name, args, exc = bad_cases()[case]
    before = linuxaio.nreqs()
    with pytest.raises(exc):
        getattr(linuxaio, name)(*args, None)
    assert linuxaio.nreqs() == before
    # and the buffer is not left exported
    if isinstance(args[0], bytearray):
        args[0].append(1)


def test_range_at_the_end_of_the_buffer_is_fine():
    ba = bytearray(100)
    assert call(linuxaio.aio_mtouch, ba, 100, None, 0) == 0      # empty, at the end
    assert call(linuxaio.aio_mtouch, ba, 0, 100, linuxaio.MT_MODIFY) == 0
