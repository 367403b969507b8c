"""linuxaio.os, slurp, aligned_buffer and the batch calls, under asyncio,
uvloop and trio, each result and each error compared with what os gives."""
import array
import ctypes
import fcntl
import mmap
import os
import pathlib
import stat as stat_mod

import pytest

import linuxaio
from linuxaio import os as aos

from aio_helpers import run_python, stat_fields
from async_helpers import HeldWorker, fd_count, patterned, runner  # noqa: F401 (fixture)

PAGESIZE = mmap.PAGESIZE


def os_outcome(fn, *args, **kwargs):
    """('ok', value) or the OSError fn raised."""
    try:
        return ("ok", fn(*args, **kwargs))
    except OSError as e:
        return e


async def aos_outcome(afn, *args, **kwargs):
    try:
        return ("ok", await afn(*args, **kwargs))
    except OSError as e:
        return e


def error_shape(e):
    return (type(e), e.errno, e.strerror, e.filename, e.filename2, str(e))


def assert_same(got, want):
    """Same value, or an OSError of the same class with the same fields."""
    if isinstance(want, OSError):
        assert isinstance(got, OSError), f"expected {want!r}, got {got!r}"
        assert error_shape(got) == error_shape(want)
    else:
        assert got == want


@pytest.fixture
def data_path(tmp_path):
    data = patterned(200_003)
    p = tmp_path / "data.bin"
    p.write_bytes(data)
    return p, data


# ---- open / close ----

def test_open_creates_a_file_like_os_open(runner, scratch):
    async def main(rt):
        p = str(scratch / "new")
        old = os.umask(0o022)
        try:
            fd = await aos.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o664)
        finally:
            os.umask(old)
        try:
            assert isinstance(fd, int) and fd >= 0
            st = os.fstat(fd)
            assert stat_mod.S_ISREG(st.st_mode)
            assert stat_mod.S_IMODE(st.st_mode) == 0o644
            assert not os.get_inheritable(fd), "os.open makes non-inheritable fds (PEP 446)"
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            assert os.write(fd, b"abc") == 3
        finally:
            assert await aos.close(fd) is None
        with pytest.raises(OSError):
            os.fstat(fd)
        assert pathlib.Path(p).read_bytes() == b"abc"
    runner.run(main)


def test_open_default_mode_is_0o777_less_umask(runner, scratch):
    async def main(rt):
        old = os.umask(0o027)
        try:
            fd = await aos.open(scratch / "m", os.O_CREAT | os.O_WRONLY)
        finally:
            os.umask(old)
        await aos.close(fd)
        assert stat_mod.S_IMODE(os.stat(scratch / "m").st_mode) == 0o750
    runner.run(main)


def test_open_reads_the_same_bytes_as_os_for_every_path_type(runner, data_path):
    p, data = data_path

    async def main(rt):
        for path in (str(p), os.fsencode(p), p):
            fd = await aos.open(path, os.O_RDONLY)
            try:
                assert os.pread(fd, len(data) + 10, 0) == data
            finally:
                await aos.close(fd)
    runner.run(main)


def test_open_errors_are_the_errors_of_os_open(runner, scratch):
    f = scratch / "file"
    f.write_bytes(b"x")
    d = scratch / "dir"
    d.mkdir()
    cases = [
        (str(scratch / "missing"), os.O_RDONLY),
        (os.fsencode(scratch / "missing"), os.O_RDONLY),
        (str(f), os.O_CREAT | os.O_EXCL | os.O_WRONLY),        # FileExistsError
        (str(d), os.O_WRONLY),                                   # IsADirectoryError
        (str(f / "below"), os.O_RDONLY),                         # NotADirectoryError
        (str(f), os.O_RDONLY | os.O_DIRECTORY),                  # NotADirectoryError
        ("", os.O_RDONLY),
    ]

    async def main(rt):
        for path, flags in cases:
            want = os_outcome(os.open, path, flags)
            got = await aos_outcome(aos.open, path, flags)
            assert isinstance(want, OSError), path
            assert_same(got, want)
    runner.run(main)


def test_open_error_filename_of_a_pathlike_is_what_os_gives(runner, scratch):
    """os.open(Path(...)) reports the path as a str in .filename (and str(e))."""
    missing = scratch / "missing"

    async def main(rt):
        want = os_outcome(os.open, missing, os.O_RDONLY)
        got = await aos_outcome(aos.open, missing, os.O_RDONLY)
        assert_same(got, want)
    runner.run(main)


def test_open_relative_to_dir_fd(runner, scratch):
    (scratch / "rel").write_bytes(b"relative")
    dfd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)

    async def main(rt):
        fd = await aos.open("rel", os.O_RDONLY, dir_fd=dfd)
        try:
            assert os.read(fd, 100) == b"relative"
        finally:
            await aos.close(fd)
        fd = await aos.open("made", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=dfd)
        await aos.close(fd)
        assert (scratch / "made").exists()
        assert_same(await aos_outcome(aos.open, "nope", os.O_RDONLY, dir_fd=dfd),
                    os_outcome(os.open, "nope", os.O_RDONLY, dir_fd=dfd))
    try:
        runner.run(main)
    finally:
        os.close(dfd)


def test_close_errors_are_those_of_os_close(runner, scratch):
    async def main(rt):
        fd = os.open(scratch, os.O_RDONLY)
        await aos.close(fd)
        assert_same(await aos_outcome(aos.close, fd), os_outcome(os.close, fd))
    runner.run(main)


# ---- reads and writes ----

def test_read_follows_and_moves_the_file_position(runner, data_path):
    p, data = data_path

    async def main(rt):
        afd, ofd = os.open(p, os.O_RDONLY), os.open(p, os.O_RDONLY)
        try:
            for n in (0, 1, 7, 4096, 65536, 100_000, 50_000, 10, 10):
                got = await aos.read(afd, n)
                assert got == os.read(ofd, n)
                assert os.lseek(afd, 0, os.SEEK_CUR) == os.lseek(ofd, 0, os.SEEK_CUR)
            assert await aos.read(afd, 10) == b""
            os.lseek(afd, 5, os.SEEK_SET)
            assert await aos.read(afd, 3) == data[5:8]
        finally:
            os.close(afd)
            os.close(ofd)
    runner.run(main)


def test_pread_matches_os_pread_and_leaves_the_position(runner, data_path):
    p, data = data_path
    size = len(data)
    cases = [(0, 0), (1, 0), (100, 3), (4096, 4096), (65536, 12345), (size, 0),
             (size + 100, 0), (10, size - 3), (10, size), (10, size + 1000), (0, size + 5),
             (300_000, 1)]

    async def main(rt):
        fd = os.open(p, os.O_RDONLY)
        try:
            os.lseek(fd, 17, os.SEEK_SET)
            for n, off in cases:
                got = await aos.pread(fd, n, off)
                assert type(got) is bytes
                assert got == os.pread(fd, n, off) == data[off:off + n], (n, off)
            assert os.lseek(fd, 0, os.SEEK_CUR) == 17
        finally:
            os.close(fd)
    runner.run(main)


def test_read_and_pread_errors_are_those_of_os(runner, scratch, data_path):
    p, _ = data_path

    async def main(rt):
        wfd = os.open(scratch / "w", os.O_CREAT | os.O_WRONLY)
        dfd = os.open(scratch, os.O_RDONLY)
        closed = os.open(p, os.O_RDONLY)
        os.close(closed)
        try:
            for fd in (wfd, dfd, closed):
                assert_same(await aos_outcome(aos.pread, fd, 10, 0), os_outcome(os.pread, fd, 10, 0))
                assert_same(await aos_outcome(aos.read, fd, 10), os_outcome(os.read, fd, 10))
        finally:
            os.close(wfd)
            os.close(dfd)
    runner.run(main)


def test_write_follows_the_position_and_append_mode(runner, scratch):
    async def main(rt):
        a, o = scratch / "a", scratch / "o"
        afd = os.open(a, os.O_CREAT | os.O_RDWR)
        ofd = os.open(o, os.O_CREAT | os.O_RDWR)
        try:
            for chunk in (b"hello", b"", bytearray(b" world"), memoryview(b"0123456789")[2:6],
                          patterned(70_000)):
                n = await aos.write(afd, chunk)
                assert n == os.write(ofd, chunk) == len(chunk)
                assert os.lseek(afd, 0, os.SEEK_CUR) == os.lseek(ofd, 0, os.SEEK_CUR)
        finally:
            os.close(afd)
            os.close(ofd)
        assert a.read_bytes() == o.read_bytes()
        afd = os.open(a, os.O_WRONLY | os.O_APPEND)
        try:
            os.lseek(afd, 0, os.SEEK_SET)
            assert await aos.write(afd, b"TAIL") == 4
        finally:
            os.close(afd)
        assert a.read_bytes() == o.read_bytes() + b"TAIL"
    runner.run(main)


def test_pwrite_matches_os_pwrite(runner, scratch):
    writes = [(b"abc", 0), (b"XY", 1), (b"far", 10_000), (b"", 50), (patterned(9000, 3), 4090),
              (bytearray(b"ba"), 2), (memoryview(b"memview"), 20_000)]

    async def main(rt):
        a, o = scratch / "a", scratch / "o"
        afd = os.open(a, os.O_CREAT | os.O_RDWR)
        ofd = os.open(o, os.O_CREAT | os.O_RDWR)
        try:
            for data, off in writes:
                assert await aos.pwrite(afd, data, off) == os.pwrite(ofd, data, off) == len(data)
            assert os.lseek(afd, 0, os.SEEK_CUR) == 0
            ro = os.open(a, os.O_RDONLY)
            try:
                assert_same(await aos_outcome(aos.pwrite, ro, b"x", 0), os_outcome(os.pwrite, ro, b"x", 0))
                assert_same(await aos_outcome(aos.write, ro, b"x"), os_outcome(os.write, ro, b"x"))
            finally:
                os.close(ro)
        finally:
            os.close(afd)
            os.close(ofd)
        assert a.read_bytes() == o.read_bytes()
    runner.run(main)


def test_negative_offsets_and_lengths_raise_what_os_raises(runner, data_path):
    """os.pread(fd, 3, -1), os.pwrite(fd, b"x", -1), os.read(fd, -1): OSError
    EINVAL; os.close(-1), os.fstat(-1): OSError EBADF."""
    p, _ = data_path

    async def main(rt):
        fd = os.open(p, os.O_RDWR)
        try:
            for afn, fn, args in [(aos.pread, os.pread, (fd, 3, -1)),
                                  (aos.pwrite, os.pwrite, (fd, b"x", -1)),
                                  (aos.read, os.read, (fd, -1)),
                                  (aos.close, os.close, (-1,)),
                                  (aos.fstat, os.fstat, (-1,))]:
                want = os_outcome(fn, *args)
                try:
                    got = await aos_outcome(afn, *args)
                except Exception as e:   # noqa: BLE001 - reported below
                    got = e
                assert isinstance(want, OSError)
                assert type(got) is type(want) and got.errno == want.errno, (fn.__name__, got)
        finally:
            os.close(fd)
    runner.run(main)


def test_readinto_and_preadinto_fill_any_writable_buffer(runner, data_path):
    p, data = data_path

    async def main(rt):
        fd = os.open(p, os.O_RDONLY)
        try:
            ba = bytearray(1000)
            assert await aos.preadinto(fd, ba, 5) == 1000
            assert ba == data[5:1005]
            big = bytearray(300)
            view = memoryview(big)[100:200]
            assert await aos.preadinto(fd, view, 70_000) == 100
            assert big[100:200] == data[70_000:70_100] and big[:100] == bytes(100)
            arr = array.array("i", bytes(64))
            assert await aos.preadinto(fd, arr, 8) == 64
            assert arr.tobytes() == data[8:72]
            buf = linuxaio.aligned_buffer(3 * PAGESIZE)
            assert await aos.preadinto(fd, buf, 4096) == 3 * PAGESIZE
            assert buf[:] == data[4096:4096 + 3 * PAGESIZE]
            tail = bytearray(100)
            assert await aos.preadinto(fd, tail, len(data) - 30) == 30
            assert tail[:30] == data[-30:]
            assert await aos.preadinto(fd, bytearray(10), len(data) + 5) == 0
            assert await aos.preadinto(fd, bytearray(0), 0) == 0
            # readinto: at the position, moving it
            os.lseek(fd, 1000, os.SEEK_SET)
            ba = bytearray(500)
            assert await aos.readinto(fd, ba) == 500
            assert ba == data[1000:1500]
            assert os.lseek(fd, 0, os.SEEK_CUR) == 1500
            assert await aos.readinto(fd, memoryview(ba)[:7]) == 7
            assert ba[:7] == data[1500:1507]
            with pytest.raises(TypeError):
                await aos.preadinto(fd, b"read-only", 0)
            with pytest.raises(TypeError):
                await aos.readinto(fd, b"read-only")
        finally:
            os.close(fd)
    runner.run(main)


def test_readv_preadv_pwritev_match_os(runner, scratch, data_path):
    p, data = data_path

    async def main(rt):
        fd = os.open(p, os.O_RDONLY)
        try:
            mine = [bytearray(3), bytearray(0), bytearray(5000), memoryview(bytearray(10))]
            ref = [bytearray(3), bytearray(0), bytearray(5000), bytearray(10)]
            assert await aos.preadv(fd, mine, 123) == os.preadv(fd, ref, 123) == 5013
            assert [bytes(b) for b in mine] == [bytes(b) for b in ref]
            tail = [bytearray(20), bytearray(20)]
            assert await aos.preadv(fd, tail, len(data) - 25) == 25
            assert bytes(tail[0] + tail[1][:5]) == data[-25:]
            assert await aos.preadv(fd, [bytearray(4)], len(data)) == 0
            # readv: at the position, moving it
            os.lseek(fd, 50, os.SEEK_SET)
            mine = [bytearray(7), bytearray(9)]
            assert await aos.readv(fd, mine) == 16
            assert bytes(mine[0] + mine[1]) == data[50:66]
            assert os.lseek(fd, 0, os.SEEK_CUR) == 66
        finally:
            os.close(fd)
        a, o = scratch / "a", scratch / "o"
        afd = os.open(a, os.O_CREAT | os.O_RDWR)
        ofd = os.open(o, os.O_CREAT | os.O_RDWR)
        try:
            for bufs, off in [([b"ab", bytearray(b"cd"), memoryview(b"efg")], 0),
                              ([b"far"], 9000), ([], 3), ([patterned(70_000)], 100)]:
                assert await aos.pwritev(afd, bufs, off) == os.pwritev(ofd, bufs, off)
        finally:
            os.close(afd)
            os.close(ofd)
        assert a.read_bytes() == o.read_bytes()
    runner.run(main)


def test_readv_into_a_read_only_buffer_raises_what_os_raises(runner, data_path):
    """os.readv(fd, [b"ab"]) raises BufferError ("Object is not writable.")."""
    p, _ = data_path

    async def main(rt):
        fd = os.open(p, os.O_RDONLY)
        try:
            want = got = None
            try:
                os.preadv(fd, [b"ab"], 0)
            except Exception as e:   # noqa: BLE001
                want = e
            try:
                await aos.preadv(fd, [b"ab"], 0)
            except Exception as e:   # noqa: BLE001
                got = e
            assert type(got) is type(want), (got, want)
        finally:
            os.close(fd)
    runner.run(main)


# ---- stat ----

def test_stat_lstat_fstat_match_os(runner, scratch, data_path):
    p, _ = data_path
    link = scratch / "link"
    os.symlink(p, link)
    dlink = scratch / "dangling"
    os.symlink(scratch / "nowhere", dlink)
    dfd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)

    async def main(rt):
        for path in (str(p), os.fsencode(p), p, str(scratch), str(link), link):
            assert stat_fields(await aos.stat(path)) == stat_fields(os.stat(path))
            assert stat_fields(await aos.lstat(path)) == stat_fields(os.lstat(path))
            assert stat_fields(await aos.stat(path, follow_symlinks=False)) == \
                stat_fields(os.stat(path, follow_symlinks=False))
        st = await aos.stat(link)
        assert isinstance(st, os.stat_result)
        assert stat_mod.S_ISREG(st.st_mode)
        assert stat_mod.S_ISLNK((await aos.lstat(link)).st_mode)
        assert stat_mod.S_ISLNK((await aos.lstat(dlink)).st_mode)
        assert stat_fields(await aos.stat("data.bin", dir_fd=dfd)) == stat_fields(os.stat("data.bin", dir_fd=dfd))
        assert stat_fields(await aos.lstat("link", dir_fd=dfd)) == stat_fields(os.lstat("link", dir_fd=dfd))
        fd = os.open(p, os.O_RDONLY)
        try:
            assert stat_fields(await aos.fstat(fd)) == stat_fields(os.fstat(fd))
            assert stat_fields(await aos.stat(fd)) == stat_fields(os.stat(fd))
        finally:
            os.close(fd)
    try:
        runner.run(main)
    finally:
        os.close(dfd)


def test_stat_errors_are_those_of_os(runner, scratch, data_path):
    p, _ = data_path
    dlink = scratch / "dangling"
    os.symlink(scratch / "nowhere", dlink)
    loop = scratch / "loop"
    os.symlink(loop, loop)

    async def main(rt):
        for path in (str(scratch / "missing"), os.fsencode(scratch / "missing"), str(p) + "/below",
                     str(dlink), str(loop), ""):
            want = os_outcome(os.stat, path)
            assert isinstance(want, OSError), path
            assert_same(await aos_outcome(aos.stat, path), want)
        assert_same(await aos_outcome(aos.lstat, str(scratch / "missing")),
                    os_outcome(os.lstat, str(scratch / "missing")))
        closed = os.open(p, os.O_RDONLY)
        os.close(closed)
        assert_same(await aos_outcome(aos.fstat, closed), os_outcome(os.fstat, closed))
        assert_same(await aos_outcome(aos.stat, "x", dir_fd=closed),
                    os_outcome(os.stat, "x", dir_fd=closed))
    runner.run(main)


def test_stat_of_a_bad_fd_names_the_fd_as_os_does(runner, data_path):
    """os.stat(fd) of a closed fd raises OSError(EBADF) with filename=fd."""
    p, _ = data_path

    async def main(rt):
        closed = os.open(p, os.O_RDONLY)
        os.close(closed)
        assert_same(await aos_outcome(aos.stat, closed), os_outcome(os.stat, closed))
    runner.run(main)


def test_stat_error_filename_of_a_pathlike_is_what_os_gives(runner, scratch):
    missing = scratch / "missing"

    async def main(rt):
        assert_same(await aos_outcome(aos.stat, missing), os_outcome(os.stat, missing))
        assert_same(await aos_outcome(aos.unlink, missing), os_outcome(os.unlink, missing))
    runner.run(main)


# ---- unlink ----

def test_unlink_and_remove_match_os(runner, scratch):
    (scratch / "a").write_bytes(b"1")
    (scratch / "b").write_bytes(b"2")
    (scratch / "c").write_bytes(b"3")
    (scratch / "d").mkdir()
    os.symlink(scratch / "a", scratch / "ln")
    dfd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)

    async def main(rt):
        assert await aos.unlink(str(scratch / "a")) is None
        assert not (scratch / "a").exists()
        assert await aos.remove(os.fsencode(scratch / "b")) is None
        assert not (scratch / "b").exists()
        assert await aos.unlink("c", dir_fd=dfd) is None
        assert not (scratch / "c").exists()
        await aos.unlink(scratch / "ln")          # the link, not its (gone) target
        assert not os.path.lexists(scratch / "ln")
        for path in (str(scratch / "a"), str(scratch / "d"), os.fsencode(scratch / "zz")):
            want = os_outcome(os.unlink, path)
            assert isinstance(want, OSError)
            assert_same(await aos_outcome(aos.unlink, path), want)
            assert_same(await aos_outcome(aos.remove, path), want)
        assert_same(await aos_outcome(aos.unlink, "zz", dir_fd=dfd), os_outcome(os.unlink, "zz", dir_fd=dfd))
        assert (scratch / "d").is_dir()
    try:
        runner.run(main)
    finally:
        os.close(dfd)


# ---- slurp ----

def test_slurp_returns_the_bytes_of_the_file(runner, scratch, data_path, tmp_path):
    p, data = data_path
    (scratch / "empty").write_bytes(b"")
    big = patterned(3 * 1024 * 1024 + 5, seed=9)
    (scratch / "big").write_bytes(big)

    async def main(rt):
        for path in (str(p), os.fsencode(p), p):
            got = await linuxaio.slurp(path)
            assert type(got) is bytes and got == data
        assert await linuxaio.slurp(p, 100) == data[100:]
        assert await linuxaio.slurp(p, 100, 50) == data[100:150]
        assert await linuxaio.slurp(p, length=7) == data[:7]
        assert await linuxaio.slurp(p, len(data) - 3, 100) == data[-3:]
        assert await linuxaio.slurp(p, len(data)) == b""
        assert await linuxaio.slurp(p, len(data) + 100) == b""
        assert await linuxaio.slurp(p, 0, 0) == b""
        assert await linuxaio.slurp(scratch / "empty") == b""
        assert await linuxaio.slurp(scratch / "big") == big
    before = fd_count(tmp_path)
    runner.run(main)
    assert fd_count(tmp_path) == before


def test_slurp_reads_to_the_end_of_files_that_stat_calls_empty(runner):
    """procfs files have st_size 0; open().read() (and Path.read_bytes, which
    slurp is to serve) read them to their end."""
    with open("/proc/self/cmdline", "rb") as f:
        want = f.read()
    assert want and os.stat("/proc/self/cmdline").st_size == 0

    async def main(rt):
        assert await linuxaio.slurp("/proc/self/cmdline") == want
    runner.run(main)


def test_slurp_errors_are_those_of_opening_and_reading(runner, scratch, data_path, tmp_path):
    p, _ = data_path

    async def main(rt):
        for path in (str(scratch / "missing"), os.fsencode(scratch / "missing"), str(p) + "/x"):
            assert_same(await aos_outcome(linuxaio.slurp, path), os_outcome(os.open, path, os.O_RDONLY))
        e = await aos_outcome(linuxaio.slurp, str(scratch))
        assert isinstance(e, IsADirectoryError) and e.filename == str(scratch)
    before = fd_count(tmp_path)
    runner.run(main)
    assert fd_count(tmp_path) == before


def test_slurp_is_one_engine_request(runner, data_path, tmp_path):
    p, data = data_path

    async def main(rt):
        seen = []

        async def watch():
            await rt.sleep(0.05)
            seen.append(linuxaio.nreqs())
            held.release()

        # the one worker held in a FIFO's open until watch() has looked (an
        # aio_busy's fixed time could run out first on a loaded machine)
        with HeldWorker(tmp_path) as held:    # the held open is one of them
            got, _ = await rt.gather(lambda: linuxaio.slurp(p), watch)
        assert got == data
        assert seen == [2]
        await rt.drained()
    runner.run(main)


# ---- aligned_buffer ----

@pytest.mark.parametrize("size", [1, 100, PAGESIZE, PAGESIZE + 1, 1 << 20])
def test_aligned_buffer_is_page_aligned_and_writable(size):
    buf = linuxaio.aligned_buffer(size)
    assert len(buf) == size
    address = ctypes.addressof((ctypes.c_char * size).from_buffer(buf))
    assert address % PAGESIZE == 0
    view = memoryview(buf)
    assert not view.readonly
    view[-1] = 0xCD
    view[0] = 0xAB
    assert buf[0] == 0xAB and (size == 1 or buf[size - 1] == 0xCD)
    view.release()


def test_aligned_buffer_takes_reads(runner, data_path):
    p, data = data_path

    async def main(rt):
        fd = os.open(p, os.O_RDONLY)
        try:
            buf = linuxaio.aligned_buffer(65536)
            assert await aos.preadinto(fd, buf, 1) == 65536
            assert buf[:] == data[1:65537]
            bufs = [linuxaio.aligned_buffer(PAGESIZE) for _ in range(3)]
            assert await aos.preadv(fd, bufs, 0) == 3 * PAGESIZE
            assert b"".join(b[:] for b in bufs) == data[:3 * PAGESIZE]
        finally:
            os.close(fd)
    runner.run(main)


# ---- batches ----

def test_pread_many_matches_os_pread_in_order(runner, data_path):
    p, data = data_path
    size = len(data)
    reqs = [(4096, (i * 7919) % size) for i in range(300)] + [(10, size), (10, size - 4), (0, 0), (size + 9, 0)]

    async def main(rt):
        fd = os.open(p, os.O_RDONLY)
        try:
            got = await aos.pread_many(fd, reqs)
            assert got == [os.pread(fd, n, off) for n, off in reqs]
            assert await aos.pread_many(fd, []) == []
            assert await aos.pread_many(fd, ((5, i) for i in range(3))) == [data[i:i + 5] for i in range(3)]
        finally:
            os.close(fd)
    runner.run(main)


def test_pread_many_raises_the_error_of_os_pread(runner, scratch, data_path):
    p, _ = data_path

    async def main(rt):
        wfd = os.open(scratch / "w", os.O_CREAT | os.O_WRONLY)
        try:
            assert_same(await aos_outcome(aos.pread_many, wfd, [(1, 0), (2, 0)]),
                        os_outcome(os.pread, wfd, 1, 0))
        finally:
            os.close(wfd)
        closed = os.open(p, os.O_RDONLY)
        os.close(closed)
        assert_same(await aos_outcome(aos.pread_many, closed, [(1, 0)]), os_outcome(os.pread, closed, 1, 0))
    runner.run(main)


def test_stat_many_matches_os_stat_in_order(runner, scratch, data_path):
    p, _ = data_path
    names = []
    for i in range(50):
        f = scratch / f"f{i}"
        f.write_bytes(b"x" * i)
        names.append(f)
    paths = [str(n) for n in names] + [os.fsencode(p), str(scratch)]

    async def main(rt):
        got = await aos.stat_many(paths)
        assert [stat_fields(s) for s in got] == [stat_fields(os.stat(x)) for x in paths]
        assert await aos.stat_many([]) == []
        assert [s.st_size for s in await aos.stat_many(str(n) for n in names[:3])] == [0, 1, 2]
    runner.run(main)


def test_stat_many_errors(runner, scratch, data_path):
    p, _ = data_path
    missing = str(scratch / "missing")
    paths = [str(p), missing, str(p) + "/below", str(scratch)]

    async def main(rt):
        assert_same(await aos_outcome(aos.stat_many, paths), os_outcome(os.stat, missing))
        got = await aos.stat_many(paths, return_exceptions=True)
        assert len(got) == 4
        assert stat_fields(got[0]) == stat_fields(os.stat(p))
        assert_same(got[1], os_outcome(os.stat, missing))
        assert_same(got[2], os_outcome(os.stat, paths[2]))
        assert stat_fields(got[3]) == stat_fields(os.stat(scratch))
    runner.run(main)


# ---- outside a loop, and anyio ----

def test_awaiting_outside_any_loop_raises_runtime_error(data_path):
    p, _ = data_path
    coro = aos.stat(p)
    with pytest.raises(RuntimeError):
        coro.send(None)
    coro.close()
    assert linuxaio.nreqs() == 0


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_on_either_backend(backend, data_path):
    anyio = pytest.importorskip("anyio", reason="anyio code must work on both backends")
    if backend == "trio":
        pytest.importorskip("trio", reason="anyio's trio backend")
    p, data = data_path

    async def main():
        fd = await aos.open(p, os.O_RDONLY)
        try:
            results = {}

            async def one(i):
                results[i] = await aos.pread(fd, 100, i * 100)

            async with anyio.create_task_group() as tg:
                for i in range(200):
                    tg.start_soon(one, i)
            assert all(results[i] == data[i * 100:i * 100 + 100] for i in range(200))
            with anyio.move_on_after(5):
                assert (await aos.stat(p)).st_size == len(data)
        finally:
            await aos.close(fd)

    anyio.run(main, backend=backend)


# ---- ftruncate, truncate, fsync, fdatasync ----

def test_truncate_and_sync_match_os(runner, scratch):
    p = scratch / "trunc"
    p.write_bytes(b"x" * 100)

    async def main(rt):
        fd = os.open(p, os.O_RDWR)
        try:
            assert await aos.ftruncate(fd, 10) is None
            assert os.fstat(fd).st_size == 10
            assert await aos.truncate(p, 3) is None
            assert os.stat(p).st_size == 3
            assert await aos.truncate(fd, 7) is None          # os.truncate takes an fd too
            assert os.stat(p).st_size == 7
            assert await aos.fsync(fd) is None and await aos.fdatasync(fd) is None
            for afn, fn, args in [(aos.ftruncate, os.ftruncate, (fd, -1)),
                                  (aos.truncate, os.truncate, (scratch / "missing", 0)),
                                  (aos.fsync, os.fsync, (999_999,))]:
                try:
                    fn(*args)
                except OSError as e:
                    want = e
                try:
                    await afn(*args)
                except OSError as e:
                    got = e
                assert type(got) is type(want) and got.errno == want.errno
                assert got.filename == want.filename, (got, want)
        finally:
            os.close(fd)
    runner.run(main)


# ---- a synchronous poll inside a task ----

SYNC_POLL_IN_A_TASK = r"""
import asyncio, os, sys, time, linuxaio
from linuxaio import os as aos
how, loop_name = sys.argv[1], sys.argv[2]

async def other():
    return (await aos.stat("/")).st_ino

async def poller():
    while linuxaio.npending() < 1:      # the other task's result is ready
        time.sleep(0.001)
    getattr(linuxaio, how)()            # and is delivered here, inside this task

async def main():
    await aos.stat("/")                 # the loop watches the engine
    linuxaio.max_parallel(1)
    linuxaio.aio_busy(0.02)             # the other task's request waits behind it
    t = asyncio.ensure_future(other())
    await asyncio.sleep(0)              # t awaits its request
    await asyncio.ensure_future(poller())
    print(await asyncio.wait_for(t, 5) == os.stat("/").st_ino)

if loop_name == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
@pytest.mark.parametrize("how", ["poll_cb", "flush"])
def test_sync_poll_inside_a_task_wakes_other_tasks_through_their_loop(how, loop_name):
    """poll_cb() or flush() called synchronously inside a task delivers the
    result another task awaits: that task is woken through its loop (asyncio
    cannot step one task inside another), and gets its result."""
    if loop_name == "uvloop":
        pytest.importorskip("uvloop")
    code = SYNC_POLL_IN_A_TASK.replace("sys.argv[1], sys.argv[2]", f"{how!r}, {loop_name!r}")
    proc, _ = run_python(code, timeout=15)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True"], proc.stdout


# ---- many results waiting ----

MANY_AWAITED_STATS = r"""
import asyncio, gc, time, linuxaio
from linuxaio import os as aos

async def gather_stats(n):
    await aos.stat("/")
    linuxaio.max_poll_time(20e-6)       # many short drains, as under a long queue
    t0 = time.process_time()            # CPU time: the machine may be busy
    await asyncio.gather(*[aos.stat("/") for _ in range(n)])
    return time.process_time() - t0

gc.disable()                            # the engine's cost, not the collector's
small, big = [], []
for _ in range(3):
    small.append(asyncio.run(gather_stats(4000)))
    big.append(asyncio.run(gather_stats(16000)))
print(min(big) / min(small))
"""


def test_gather_of_awaited_stats_takes_time_linear_in_their_number():
    """asyncio.gather of many awaited stats: the loop's drains take the waiting
    results a chunk at a time, so 4x the stats take about 4x as long (each
    drain took and walked back every waiting result: quadratic, 16x).  The
    bound leaves room for a loaded machine (6.07 was seen under load 9)."""
    proc, _ = run_python(MANY_AWAITED_STATS, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) < 10, proc.stdout


# ---- the callback style and linuxaio.os on one loop ----

README_SNIPPET_AND_AWAITS = r"""
import asyncio, os, sys, linuxaio
from linuxaio import os as aos
loop_name = sys.argv[1]

async def snippet():                    # README's asyncio example, as written
    loop = asyncio.get_running_loop()
    loop.add_reader(linuxaio.poll_fileno(), linuxaio.poll_cb)
    done = loop.create_future()
    linuxaio.aio_stat("/", done.set_result)
    ino = (await done).st_ino
    loop.remove_reader(linuxaio.poll_fileno())
    return ino

async def awaited():
    linuxaio.max_parallel(1)
    linuxaio.aio_busy(0.02)             # no quick await: the loop must see the result
    ino = (await asyncio.wait_for(aos.stat("/"), 5)).st_ino
    linuxaio.max_parallel(4)
    return ino

async def main():
    want = os.stat("/").st_ino
    got = [await awaited(), await snippet(), await awaited()]   # os first, then the snippet
    print(got == [want] * 3)

async def main_snippet_first():
    want = os.stat("/").st_ino
    got = [await snippet(), await awaited(), await snippet(), await awaited()]
    print(got == [want] * 4)

for m in (main, main_snippet_first):
    if loop_name == "uvloop":
        import uvloop
        uvloop.run(m())
    else:
        asyncio.run(m())
"""


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_readme_add_reader_snippet_and_awaits_share_a_loop(loop_name):
    """The README's add_reader(poll_fileno(), poll_cb) ... remove_reader
    snippet on a loop that linuxaio.os uses too, in either order: removing
    the program's reader leaves linuxaio.os's watch (its own descriptor), and
    later awaits still complete."""
    if loop_name == "uvloop":
        pytest.importorskip("uvloop")
    proc, _ = run_python(README_SNIPPET_AND_AWAITS.replace("sys.argv[1]", repr(loop_name)),
                         timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"], proc.stdout


TRIO_WAITING_ON_POLL_FILENO = r"""
import os, trio, linuxaio
from linuxaio import os as aos

async def main():
    got = []
    async def callback_style():
        done = trio.Event()
        linuxaio.aio_stat("/", lambda st: (got.append(st.st_ino), done.set()))
        while not done.is_set():
            await trio.lowlevel.wait_readable(linuxaio.poll_fileno())
            linuxaio.poll_cb()
    with trio.fail_after(5):
        got.append((await aos.stat("/")).st_ino)
        async with trio.open_nursery() as n:
            n.start_soon(callback_style)
            linuxaio.max_parallel(1)
            linuxaio.aio_busy(0.02)
            got.append((await aos.stat("/")).st_ino)
    print(got == [os.stat("/").st_ino] * 3)

trio.run(main)
"""


def test_trio_task_waiting_on_poll_fileno_and_awaits_share_a_run():
    """Under trio, a task of the callback style waiting for poll_fileno() to
    be readable, while other tasks await linuxaio.os: trio allows one waiter
    per descriptor, and linuxaio.os waits on one of its own."""
    pytest.importorskip("trio")
    proc, _ = run_python(TRIO_WAITING_ON_POLL_FILENO, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True"], proc.stdout


# ---- the Future protocol's remove_done_callback, against code that changes the callbacks ----

REMOVE_DONE_CALLBACK = """
import asyncio, linuxaio
loop = asyncio.new_event_loop()
linuxaio.max_parallel(0)            # the request stays pending
r = linuxaio.aio_nop(loop)
fns = [(lambda f, i=i: ran.append(i)) for i in range(200)]
ran = []
for f in fns:
    r.add_done_callback(f)

class RemovesAll:
    calls = 0
    def __eq__(self, other):        # called for each callback compared
        RemovesAll.calls += 1
        if RemovesAll.calls == 2:   # the first in the list, after the first callback
            for f in fns:
                r.remove_done_callback(f)
            junk = [(object(), object()) for _ in range(1000)]   # reuses freed memory
        return False
    __hash__ = object.__hash__

print(r.remove_done_callback(RemovesAll()), RemovesAll.calls)

class Replaces:
    def __eq__(self, other):        # removes the callback being compared, adds another
        r.remove_done_callback(fns[0])
        r.add_done_callback(fns[1])
        return True
    __hash__ = object.__hash__

r.add_done_callback(fns[0])
print(r.remove_done_callback(Replaces()))
r.cancel()
loop.run_until_complete(asyncio.sleep(0))
print(ran)
linuxaio.min_parallel(4)
linuxaio.flush()
print(linuxaio.nreqs())
"""


def test_remove_done_callback_survives_an_eq_that_removes_or_replaces_callbacks():
    """Each comparison may run __eq__, which may change the callbacks: the
    compared one is held meanwhile, the index checked again after, and only
    the callback that compared equal is removed."""
    proc, _ = run_python(REMOVE_DONE_CALLBACK, timeout=20)
    assert proc.returncode == 0, proc.stderr
    # all removed at the second comparison: no more comparisons, none counted;
    # the replacement was not the callback compared, so it stays and runs
    assert proc.stdout.split("\n")[:4] == ["0 2", "0", "[1]", "0"], proc.stdout
