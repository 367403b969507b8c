"""slurp(into=..., direct=...) and aio_slurp's same keywords: the bytes
os.pread gives, in the caller's buffer or through O_DIRECT, read in chunks
several deep; errors, bad arguments, cancellation without a leaked fd."""
import errno
import gc
import os

import pytest

import linuxaio
from linuxaio import _slurp

from aio_helpers import wait_until
from async_helpers import fd_count, patterned, runner  # noqa: F401 (fixture)

SIZE = 2 * _slurp.CHUNK + 12_345     # three chunks, the last one unaligned


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    p = tmp_path_factory.mktemp("slurp") / "big.bin"
    data = patterned(SIZE)
    p.write_bytes(data)
    return p, data


def evict(path):
    """Out of the page cache: reads that wait for the device.  A cached read
    can complete in the very poll that starts it (the loop's own ring takes
    its completion at once), before a test looks at what is outstanding."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def direct_supported(path):
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        return True
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        return False


@pytest.fixture(params=[False, True], ids=["buffered", "direct"])
def direct(request, big):
    if request.param and not direct_supported(big[0]):
        pytest.skip("the file system refuses O_DIRECT")
    return request.param


RANGES = [(0, None), (1, None), (4096, None), (5000, 100_000), (0, 0), (SIZE - 1, None),
          (SIZE, None), (SIZE + 10, 5), (_slurp.CHUNK - 3, 10), (0, SIZE + 100)]


def test_slurp_direct_returns_the_bytes_os_pread_gives(runner, big, direct):
    path, data = big
    fd = os.open(path, os.O_RDONLY)

    async def main(rt):
        for off, n in RANGES:
            want = os.pread(fd, SIZE if n is None else n, off)
            assert await linuxaio.slurp(path, off, n, direct=direct) == want, (off, n)
    try:
        runner.run(main)
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", ["bytearray", "aligned", "memoryview+3"])
def test_slurp_into_fills_the_buffer_and_returns_the_count(runner, big, direct, kind):
    path, data = big

    def make(n):
        if kind == "bytearray":
            return bytearray(n)
        if kind == "aligned":
            return linuxaio.aligned_buffer(n)
        return memoryview(bytearray(n + 3))[3:]

    async def main(rt):
        for off, n in RANGES:
            want = data[off:] if n is None else data[off:off + n]
            buf = make(max(len(want), n or 0) + 5)
            got = await linuxaio.slurp(path, off, n, into=buf, direct=direct)
            assert got == len(want), (off, n)
            assert bytes(buf[:got]) == want
            assert not any(bytes(buf[got:]))   # nothing written past the data
    runner.run(main)


def test_slurp_into_a_smaller_buffer_reads_what_fits(runner, big, direct):
    path, data = big

    async def main(rt):
        buf = bytearray(_slurp.CHUNK + 777)
        assert await linuxaio.slurp(path, 10, into=buf, direct=direct) == len(buf)
        assert bytes(buf) == data[10:10 + len(buf)]
    runner.run(main)


def test_slurp_into_a_file_that_stat_calls_empty(runner):
    with open("/proc/self/cmdline", "rb") as f:
        want = f.read()

    async def main(rt):
        buf = bytearray(100_000)
        n = await linuxaio.slurp("/proc/self/cmdline", into=buf)
        assert bytes(buf[:n]) == want
    runner.run(main)


def test_slurp_bad_arguments_raise_before_anything_runs(runner, big):
    path, _ = big

    async def main(rt):
        with pytest.raises(TypeError):
            await linuxaio.slurp(path, into=b"read-only")
        with pytest.raises(ValueError):
            await linuxaio.slurp(path, 0, 100, into=bytearray(10))
        with pytest.raises(ValueError):
            await linuxaio.slurp(path, -1, direct=True)
        with pytest.raises(TypeError):
            await linuxaio.slurp(path, 1.5, direct=True)
        with pytest.raises(TypeError):
            await linuxaio.slurp(123.0, direct=True)
        assert linuxaio.nreqs() == 0
    runner.run(main)


def test_slurp_errors_are_those_of_open(runner, tmp_path, direct):
    async def main(rt):
        with pytest.raises(FileNotFoundError) as e:
            await linuxaio.slurp(tmp_path / "nope", into=bytearray(10), direct=direct)
        assert os.fspath(e.value.filename) == os.fspath(tmp_path / "nope")
        with pytest.raises(IsADirectoryError):
            await linuxaio.slurp(tmp_path, into=bytearray(10))
    before = fd_count()
    runner.run(main)
    assert fd_count() == before


def test_slurp_direct_where_o_direct_is_refused_says_so(runner):
    async def main(rt):
        with pytest.raises(OSError) as e:
            await linuxaio.slurp("/proc/self/status", direct=True)
        assert e.value.errno == errno.EINVAL and "O_DIRECT" in e.value.strerror
    runner.run(main)


def test_slurp_keeps_several_reads_in_flight(big):
    """With one worker, every chunk read is outstanding at once: nreqs()
    counts the group and its three reads after the poll whose open's
    callback queued them (nready() showed it on the threads, but the loop's
    ring starts what a poll queued at its end, before poll_cb returns).
    Seeing it races the worker (a descheduled caller may look only after it
    took the next chunk), so the largest count of a few slurps is what counts."""
    path, _ = big
    linuxaio.max_parallel(1)
    try:
        seen = 0
        for _ in range(5):
            got = []
            evict(path)
            linuxaio.aio_slurp(path, 0, None, got.append, into=bytearray(SIZE))
            while not got:
                linuxaio.poll_wait()
                linuxaio.poll_cb()
                seen = max(seen, linuxaio.nreqs() - 1)   # less the group
            assert got == [SIZE]
            if seen >= 3:
                break
        assert seen >= 3   # three chunks: all submitted before the first came back
    finally:
        linuxaio.min_parallel(4)


def test_aio_slurp_keeps_its_positional_signature(big):
    path, data = big
    got = []
    linuxaio.aio_slurp(path, 10, 20, got.append)
    linuxaio.aio_slurp(path, 10, 20, got.append, pri=1)
    linuxaio.flush()
    assert got == [data[10:30]] * 2


def test_aio_slurp_into_and_direct(big, direct):
    path, data = big
    got, got2 = [], []
    buf = bytearray(SIZE)
    grp = linuxaio.aio_slurp(path, 0, None, got.append, into=buf, direct=direct)
    linuxaio.aio_slurp(path, 3, 100_000, got2.append, direct=direct)
    linuxaio.flush()
    assert got == [SIZE] and bytes(buf) == data
    assert got2 == [data[3:100_003]]
    assert grp.done()


def test_aio_slurp_failure_reaches_the_callback(tmp_path, direct):
    got = []
    linuxaio.aio_slurp(tmp_path / "nope", 0, None, got.append, into=bytearray(1), direct=direct)
    linuxaio.flush()
    assert isinstance(got[0], FileNotFoundError)
    with pytest.raises(ValueError):
        linuxaio.aio_slurp(tmp_path / "nope", 0, 10, got.append, into=bytearray(1))
    assert linuxaio.nreqs() == 0


def test_cancelled_aio_slurp_leaves_no_fd_open(big, direct):
    path, _ = big
    before = fd_count()
    got = []
    linuxaio.max_parallel(1)
    evict(path)
    try:
        grp = linuxaio.aio_slurp(path, 0, None, got.append, into=bytearray(SIZE), direct=direct)
        while linuxaio.nreqs() < 4:   # the group and its 3 reads: the fd is open
            linuxaio.poll_wait()
            linuxaio.poll_cb()
        grp.cancel()
    finally:
        linuxaio.min_parallel(4)
    linuxaio.flush()
    del grp
    gc.collect()
    assert got == []
    wait_until(lambda: fd_count() == before, what="the slurp's fd to close")


def test_cancelled_slurp_task_leaves_no_fd_open(runner, big, direct, monkeypatch, engine_only):
    # engine_only: a cached chunk read would complete inline, never queued
    path, _ = big
    before = fd_count()
    monkeypatch.setattr(_slurp, "CHUNK", 4096)   # a long slurp: cancelled mid-way

    async def main(rt):
        linuxaio.max_parallel(1)
        try:
            out = await rt.cancel_task(
                lambda: linuxaio.slurp(path, into=bytearray(SIZE), direct=direct),
                # reads in flight (nreqs: a read on the ring or done inline is never
                # "ready" for long); under trio a request starts at its await: one at a time
                wait=lambda: linuxaio.nreqs() >= (1 if rt.name == "trio" else 2))
        finally:
            linuxaio.min_parallel(4)
        assert out.state == "cancelled"
        await rt.drained()
    runner.run(main)
    gc.collect()
    wait_until(lambda: fd_count() == before, what="the slurp's fd to close")
