"""O_DIRECT that a Python user can get right: dio_alignment(), and an EINVAL
from direct I/O that says what is misaligned (or that the file system refused
O_DIRECT at open), through the callback API and awaits alike."""
import errno
import mmap
import os

import pytest

import linuxaio
from linuxaio import os as aos

from async_helpers import patterned, runner  # noqa: F401 (fixture)


def direct_ok(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        if e.errno == errno.EINVAL:
            return False
        raise
    os.close(fd)
    return True


@pytest.fixture
def direct_file(tmp_path):
    """A 64 KiB file opened O_DIRECT (skips where the file system refuses it)."""
    p = tmp_path / "direct.bin"
    data = patterned(1 << 16)
    p.write_bytes(data)
    if not direct_ok(p):
        pytest.skip(f"the file system of {tmp_path} refuses O_DIRECT")
    fd = os.open(p, os.O_RDWR | os.O_DIRECT)
    yield fd, data
    os.close(fd)


def device_block_size(path):
    """The logical block size sysfs gives for the device holding path."""
    st = os.stat(path)
    base = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    for q in ("queue", "../queue"):
        try:
            with open(f"{base}/{q}/logical_block_size") as f:
                return int(f.read())
        except OSError:
            continue
    return None


def callback_outcome(submit, *args):
    got = []
    submit(*args, got.append)
    linuxaio.flush()
    return got[0]


# ---- dio_alignment ----

def test_dio_alignment_is_two_powers_of_two_that_a_direct_read_accepts(direct_file, tmp_path):
    fd, data = direct_file
    mem, off = linuxaio.dio_alignment(fd)
    for a in (mem, off):
        assert a >= 1 and a & (a - 1) == 0
    buf = linuxaio.aligned_buffer(off * 2)
    assert os.preadv(fd, [memoryview(buf)[:off]], off) == off
    assert bytes(buf[:off]) == data[off:2 * off]


def test_dio_alignment_of_a_path_is_that_of_its_fd(direct_file, tmp_path):
    fd, _ = direct_file
    assert linuxaio.dio_alignment(tmp_path / "direct.bin") == linuxaio.dio_alignment(fd)
    assert linuxaio.dio_alignment(str(tmp_path / "direct.bin").encode()) == linuxaio.dio_alignment(fd)
    with open(tmp_path / "direct.bin", "rb") as f:   # an object with fileno()
        assert linuxaio.dio_alignment(f) == linuxaio.dio_alignment(fd)


def test_dio_offset_alignment_is_at_most_the_device_block_size(direct_file, tmp_path):
    fd, _ = direct_file
    bs = device_block_size(tmp_path)
    if bs is None:
        pytest.skip("no block device behind the test directory")
    _, off = linuxaio.dio_alignment(fd)
    assert off <= max(bs, 4096) and bs % off == 0 or off % bs == 0


def test_dio_alignment_falls_back_to_4096_without_a_device():
    assert linuxaio.dio_alignment("/proc/self/status") == (4096, 4096)


def test_dio_alignment_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        linuxaio.dio_alignment(tmp_path / "nope")
    assert e.value.filename == tmp_path / "nope"
    with pytest.raises(TypeError):
        linuxaio.dio_alignment(1.5)
    with pytest.raises(OSError) as e:
        linuxaio.dio_alignment(10_000)   # not an open fd
    assert e.value.errno == errno.EBADF


# ---- what a misaligned request says ----

def test_misaligned_buffer_address_is_named(direct_file):
    fd, _ = direct_file
    mem, off = linuxaio.dio_alignment(fd)
    if mem == 1:
        pytest.skip("no memory alignment needed here")
    buf = linuxaio.aligned_buffer(2 * off)
    e = callback_outcome(linuxaio.aio_read, fd, 0, off, buf, 1)   # one byte past aligned
    if e == off:
        pytest.skip(f"the kernel took a buffer 1 byte off although statx asks for {mem}")
    assert isinstance(e, OSError) and e.errno == errno.EINVAL
    assert "buffer address" in e.strerror and f"multiple of {mem}" in e.strerror
    assert "offset" not in e.strerror.split("(")[0] and "length" not in e.strerror.split("(")[0]


def test_misaligned_offset_is_named(direct_file):
    fd, _ = direct_file
    _, off = linuxaio.dio_alignment(fd)
    buf = linuxaio.aligned_buffer(2 * off)
    e = callback_outcome(linuxaio.aio_read, fd, 100, off, buf, 0)
    assert isinstance(e, OSError) and e.errno == errno.EINVAL
    assert "offset 100 is not a multiple of" in e.strerror
    assert "buffer address" not in e.strerror


def test_misaligned_length_is_named_for_writes_too(direct_file):
    fd, data = direct_file
    _, off = linuxaio.dio_alignment(fd)
    buf = linuxaio.aligned_buffer(2 * off)
    e = callback_outcome(linuxaio.aio_write, fd, 0, 100, buf, 0)
    assert isinstance(e, OSError) and e.errno == errno.EINVAL
    assert "length 100 is not a multiple of" in e.strerror
    assert os.pread(os.open("/proc/self/fd/%d" % fd, os.O_RDONLY), 100, 0) == data[:100]


def test_each_misaligned_part_is_named(direct_file):
    fd, _ = direct_file
    mem, off = linuxaio.dio_alignment(fd)
    if off == 1:
        pytest.skip("no alignment needed here")
    buf = bytearray(3 * off)
    e = callback_outcome(linuxaio.aio_read, fd, 7, 9, buf, 1)
    assert isinstance(e, OSError) and e.errno == errno.EINVAL
    assert "length 9" in e.strerror and "offset 7" in e.strerror
    if mem > 1:
        assert "buffer address" in e.strerror   # a bytearray's data + 1: never aligned
    assert f"aligned to {mem}" in e.strerror and f"to {off} bytes" in e.strerror


def test_misaligned_iovec_is_named_when_awaited(runner, direct_file):
    fd, _ = direct_file
    _, off = linuxaio.dio_alignment(fd)
    buf = linuxaio.aligned_buffer(4 * off)

    async def main(rt):
        with pytest.raises(OSError) as e:
            await aos.preadv(fd, [memoryview(buf)[:off], memoryview(buf)[off:off + 10]], 0)
        assert e.value.errno == errno.EINVAL
        assert "buffer 1's length 10" in e.value.strerror
        with pytest.raises(OSError) as e:
            await aos.preadinto(fd, memoryview(buf)[:off], 3)
        assert "offset 3" in e.value.strerror
        # aligned: fine
        assert await aos.preadinto(fd, memoryview(buf)[:off], off) == off
    runner.run(main)


def test_aligned_direct_read_matches_os_pread(direct_file):
    fd, data = direct_file
    _, off = linuxaio.dio_alignment(fd)
    buf = linuxaio.aligned_buffer(4 * off)
    assert callback_outcome(linuxaio.aio_read, fd, off, 2 * off, buf, 0) == 2 * off
    assert bytes(buf[:2 * off]) == data[off:3 * off]


def test_short_direct_read_at_the_end_of_the_file(direct_file):
    fd, data = direct_file
    _, off = linuxaio.dio_alignment(fd)
    buf = linuxaio.aligned_buffer(4 * off)
    assert callback_outcome(linuxaio.aio_read, fd, len(data) - off, 4 * off, buf, 0) == off
    assert bytes(buf[:off]) == data[-off:]


def test_einval_without_o_direct_is_plain(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x" * 100)
    fd = os.open(p, os.O_RDONLY)
    try:
        e = callback_outcome(linuxaio.aio_seek, fd, -5, os.SEEK_SET)
        assert isinstance(e, OSError) and e.errno == errno.EINVAL
        assert e.strerror == os.strerror(errno.EINVAL)
    finally:
        os.close(fd)


def test_open_refused_for_o_direct_has_its_own_message(runner):
    path = "/proc/self/status"
    with pytest.raises(OSError) as want:
        os.open(path, os.O_RDONLY | os.O_DIRECT)
    assert want.value.errno == errno.EINVAL
    e = callback_outcome(linuxaio.aio_open, path, os.O_RDONLY | os.O_DIRECT, 0)
    assert isinstance(e, OSError) and e.errno == errno.EINVAL
    assert "O_DIRECT" in e.strerror and "at open" in e.strerror

    async def main(rt):
        with pytest.raises(OSError) as e:
            await aos.open(path, os.O_RDONLY | os.O_DIRECT)
        assert e.value.errno == errno.EINVAL and e.value.filename == path
        assert "does not support direct I/O" in e.value.strerror
    runner.run(main)


def test_aligned_buffer_is_page_aligned():
    buf = linuxaio.aligned_buffer(10)
    assert linuxaio._engine._buffer_address(buf) % mmap.PAGESIZE == 0
    assert len(buf) == 10


def test_aligned_buffer_is_private_to_a_forked_child():
    # mmap(-1, n) alone is MAP_SHARED: a child's reads into its copy of
    # a buffer would land in the parent's (CI saw a parent's O_DIRECT
    # reads change under it while its child read into the same buffers)
    buf = linuxaio.aligned_buffer(mmap.PAGESIZE)
    buf[:4] = b"mine"
    pid = os.fork()
    if pid == 0:
        buf[:4] = b"kids"
        os._exit(0 if bytes(buf[:4]) == b"kids" else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert bytes(buf[:4]) == b"mine"
