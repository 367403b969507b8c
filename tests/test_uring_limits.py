"""The io_uring ring and the thread pool under one max_parallel, the ring's
batching (few io_uring_enter calls, completions to the sink in batches), a
burst far beyond the completion queue, and the message for each cause of a
refused ring.

Tests that need a ring in this process skip (saying why) when the engine is
threads (LINUXAIO_ENGINE=threads, or a kernel without io_uring).

To hold a ring request in the kernel for as long as a test wants, it reads
an empty pipe at the file position (offset None), with _ring_stream_reads on
(the `pipes` fixture): a stream has no position, so the ring then takes such
a read and the kernel waits for data (a positioned read of a pipe fails with
ESPIPE, as pread(2) does, whichever backend runs it); the test writes to the
pipe to let it finish.  A kernel that does not hold it makes those tests
skip, saying so."""
import errno
import os
import time

import pytest

import linuxaio
import linuxaio._engine as _engine
from aio_helpers import wait_until
from async_helpers import open_fifo_writer_briefly

BLOCK = 4096


def ring_on():
    return linuxaio.engine() == "uring"


needs_ring = pytest.mark.skipif(
    not ring_on(), reason="no io_uring ring in this process: %s" % linuxaio.engine_info()["reason"])


def stats():
    return linuxaio.engine_info()["ring_stats"]


@pytest.fixture
def data_file(tmp_path):
    """A file on a file system that takes O_DIRECT (not tmpfs)."""
    path = tmp_path / "data.bin"
    data = os.urandom(256 * BLOCK)
    path.write_bytes(data)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
    except OSError as e:
        pytest.skip(f"the test directory's file system refuses O_DIRECT ({e})")
    return str(path), data


@pytest.fixture
def pipes():
    """Pipes to read on the ring: reads of them at the file position go to
    the ring (the threads otherwise) while the test runs."""
    made = []
    was = _engine._ring_stream_reads(True)

    def make(n):
        for _ in range(n):
            made.append(os.pipe())
        return made[-n:]
    yield make
    for r, w in made:
        try:
            os.write(w, b"!" * 8)   # let any read still in the ring finish
        except OSError:
            pass
    linuxaio.flush()
    _engine._ring_stream_reads(was)
    for r, w in made:
        os.close(r)
        os.close(w)


def hold_on_ring(pipe_pairs, got, tag="ring"):
    """Start a read of each empty pipe on the ring; wait until the ring has
    them in the kernel.  Skips if the ring does not hold them there."""
    started = stats()["started"]
    bufs = []
    for i, (r, w) in enumerate(pipe_pairs):
        b = bytearray(8)
        bufs.append(b)
        linuxaio.aio_read(r, None, 8, b, 0, lambda res, i=i: got.append((tag, i, res)))
    try:
        wait_until(lambda: stats()["started"] - started >= len(pipe_pairs), 5, "the ring to start the pipe reads")
    except AssertionError:
        pytest.skip("this ring does not take a read of a pipe into the kernel")
    linuxaio.poll_cb()
    if got:
        pytest.skip(f"io_uring here does not wait on an empty pipe ({got})")
    return bufs


class RingHeld:
    """Reads of empty pipes that the ring holds in the kernel: each takes a
    slot of max_parallel until release(i) writes to its pipe; its callback
    appends ("ring", i, result) to got (a list the test's other callbacks
    share, so that got shows the order of everything)."""

    def __init__(self, pairs, got):
        self.pairs, self.got = pairs, got

    def release(self, i=0, data=b"x"):
        os.write(self.pairs[i][1], data)


@pytest.fixture
def ring_held(pipes):
    """ring_held(n=1): start n reads held by the ring (skipping, saying why,
    where this ring does not hold them); a RingHeld."""
    def hold(n=1):
        held = RingHeld(pipes(n), [])
        hold_on_ring(held.pairs, held.got)
        return held
    return hold


def poll_for(seconds, got, until=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        linuxaio.poll_cb()
        if until is not None and until():
            return
        time.sleep(0.005)


# ---- max_parallel bounds both backends together ----


@needs_ring
def test_max_parallel_counts_ring_requests_against_the_threads(ring_held):
    linuxaio.max_parallel(2)
    held = ring_held(2)
    got = held.got
    # The limit is taken by the ring: a request for the threads waits.
    linuxaio.aio_nop(lambda res: got.append(("nop", res)))
    linuxaio.aio_busy(0, lambda res: got.append(("busy", res)))
    poll_for(0.3, got)
    assert got == [] and linuxaio.nreqs() == 4
    # One ring read finishes: one slot frees, and the threads take it.
    held.release(0, b"a")
    poll_for(5, got, lambda: len(got) >= 3)
    assert got[0] == ("ring", 0, 1)
    assert sorted(got[1:]) == [("busy", 0), ("nop", 0)]
    held.release(1, b"b")
    linuxaio.flush()
    assert got[-1] == ("ring", 1, 1) and linuxaio.nreqs() == 0


@needs_ring
def test_max_parallel_holds_a_threads_request_while_one_ring_request_runs(ring_held):
    linuxaio.max_parallel(1)
    held = ring_held()
    got = held.got
    for _ in range(3):
        linuxaio.aio_nop(lambda res: got.append(("nop", res)))
    poll_for(0.3, got)
    assert got == [] and linuxaio.nready() == 3
    held.release()
    linuxaio.flush()
    assert got == [("ring", 0, 1)] + [("nop", 0)] * 3


@needs_ring
def test_max_parallel_holds_ring_requests_while_the_threads_run(data_file, tmp_path):
    path, data = data_file
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    fifos = []
    try:
        linuxaio.max_parallel(2)
        # No growth for requests that block (test_pool_workers): the held
        # opens block, and the limit grown for them would let the reads in.
        linuxaio.max_blocking_parallel(0)
        got = []

        def opened(res):
            if isinstance(res, int):
                os.close(res)
            got.append("busy")
        # Both threads held in open() of a FIFO (never on the ring) until
        # the test lets them go: an aio_busy's fixed time could run out
        # before the checks below on a loaded machine.
        for k in range(2):
            fifos.append(str(tmp_path / f"held-{k}.fifo"))
            os.mkfifo(fifos[-1])
            linuxaio.aio_open(fifos[-1], os.O_RDONLY, 0, opened)
        wait_until(lambda: linuxaio.nready() == 0, 5, "both held opens to start")
        started = stats()["started"]
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(4)]
        for i, b in enumerate(bufs):
            linuxaio.aio_read(fd, i * BLOCK, BLOCK, b, 0,
                              lambda res, i=i: got.append(("read", i, res, got.count("busy"))))
        time.sleep(0.1)
        linuxaio.poll_cb()
        assert got == [] and stats()["started"] == started   # nothing handed to the kernel
        for fifo in fifos:
            open_fifo_writer_briefly(fifo)
        fifos = []
        linuxaio.flush()
        # A read starts only once a held open has finished (a slot of two is free).
        assert got[0] == "busy" and got.count("busy") == 2
        reads = sorted(g for g in got if g != "busy")
        assert [r[:3] for r in reads] == [("read", i, BLOCK) for i in range(4)]
        assert all(r[3] >= 1 for r in reads), got
        assert all(bytes(b) == data[i * BLOCK:(i + 1) * BLOCK] for i, b in enumerate(bufs))
    finally:
        for fifo in fifos:
            open_fifo_writer_briefly(fifo)
        os.close(fd)


@needs_ring
def test_ring_requests_held_by_the_threads_are_woken_by_them_not_polled(ring_held, data_file, tmp_path):
    # The limit (2) is taken by a pipe read on the ring and a thread held in
    # open() of a FIFO: a read queued on the ring waits.  Meanwhile the ring
    # thread sleeps in the kernel, with no timed look now and then (a 1 ms
    # poll would be hundreds of io_uring_enter calls), and the thread
    # finishing wakes it.  (The thread is held for as long as the test
    # wants: an aio_busy's fixed time could end before the checks below on
    # a loaded machine.)
    path, data = data_file
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    fifo = str(tmp_path / "held.fifo")
    os.mkfifo(fifo)
    held_open = True
    try:
        linuxaio.max_parallel(2)
        linuxaio.max_blocking_parallel(0)   # no extra slot for the blocked open
        held = ring_held()
        got = held.got

        def opened(res):
            if isinstance(res, int):
                os.close(res)
            got.append("busy")
        linuxaio.aio_open(fifo, os.O_RDONLY, 0, opened)
        wait_until(lambda: linuxaio.nready() == 0, 5, "the held open to start")
        buf = linuxaio.aligned_buffer(BLOCK)
        linuxaio.aio_read(fd, 0, BLOCK, buf, 0, lambda res: got.append(("read", res)))
        assert linuxaio.nready() == 1
        time.sleep(0.05)   # the ring thread looks, finds no room, sleeps
        before = stats()
        time.sleep(0.2)
        mid = stats()
        assert got == [] and mid["started"] == before["started"]
        assert mid["enters"] - before["enters"] <= 5, (before, mid)
        open_fifo_writer_briefly(fifo)
        held_open = False
        poll_for(5, got, lambda: len(got) >= 2)
        after = stats()
        assert got == ["busy", ("read", BLOCK)] and bytes(buf) == data[:BLOCK]
        assert after["peer_wakes"] > mid["peer_wakes"]
        held.release()
        linuxaio.flush()
    finally:
        if held_open:
            open_fifo_writer_briefly(fifo)
        os.close(fd)


@needs_ring
def test_max_parallel_zero_holds_threads_and_ring_alike(data_file):
    path, data = data_file
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        linuxaio.max_parallel(0)
        got = []
        buf = linuxaio.aligned_buffer(BLOCK)
        started = stats()["started"]
        linuxaio.aio_read(fd, 0, BLOCK, buf, 0, lambda res: got.append(("read", res)))
        linuxaio.aio_nop(lambda res: got.append(("nop", res)))
        time.sleep(0.1)
        linuxaio.poll_cb()
        assert got == [] and linuxaio.nready() == 2 and stats()["started"] == started
        linuxaio.min_parallel(1)
        linuxaio.flush()
        assert sorted(got) == [("nop", 0), ("read", BLOCK)]
        assert bytes(buf) == data[:BLOCK]
    finally:
        os.close(fd)


@needs_ring
def test_priorities_order_what_starts_across_the_ring_and_the_threads(ring_held, data_file):
    path, data = data_file
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        linuxaio.max_parallel(1)
        held = ring_held()
        got = held.got
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(3)]
        started = stats()["started"]
        # While the ring holds the one slot: low-priority reads wait on the
        # ring, urgent requests on the threads (and one in between).
        for i, b in enumerate(bufs):
            linuxaio.aio_read(fd, i * BLOCK, BLOCK, b, 0, lambda res, i=i: got.append(("read", i)), pri=-2)
        linuxaio.aio_nop(lambda res: got.append(("nop", 4)), pri=4)
        linuxaio.aio_nop(lambda res: got.append(("nop", 3)), pri=3)
        linuxaio.aio_nop(lambda res: got.append(("nop", -4)), pri=-4)
        poll_for(0.2, got)
        assert got == [] and linuxaio.nready() == 6
        assert stats()["started"] == started   # the reads wait on the ring, unstarted
        held.release()
        linuxaio.flush()
        assert got == [("ring", 0, 1), ("nop", 4), ("nop", 3), ("read", 0), ("read", 1), ("read", 2),
                       ("nop", -4)], got
        assert all(bytes(b) == data[i * BLOCK:(i + 1) * BLOCK] for i, b in enumerate(bufs))
    finally:
        os.close(fd)


@needs_ring
def test_priorities_urgent_ring_requests_start_before_queued_threads_work(ring_held, data_file):
    path, data = data_file
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        linuxaio.max_parallel(1)
        held = ring_held()
        got = held.got
        linuxaio.aio_nop(lambda res: got.append(("nop", -3)), pri=-3)
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(2)]
        for i, b in enumerate(bufs):
            linuxaio.aio_read(fd, i * BLOCK, BLOCK, b, 0, lambda res, i=i: got.append(("read", i)), pri=2)
        poll_for(0.2, got)
        assert got == []
        held.release()
        linuxaio.flush()
        assert got == [("ring", 0, 1), ("read", 0), ("read", 1), ("nop", -3)], got
    finally:
        os.close(fd)


# ---- batching ----


@needs_ring
def test_a_batch_of_disk_reads_enters_the_kernel_in_few_calls(data_file):
    path, data = data_file
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    n = 256
    try:
        linuxaio.min_parallel(256)
        big = linuxaio.aligned_buffer(n * BLOCK)
        before = stats()
        out = []
        linuxaio.submit_many("aio_read", [(fd, (i % 256) * BLOCK, BLOCK, big, i * BLOCK) for i in range(n)],
                             out.append)
        linuxaio.flush()
        after = stats()
        assert out == [[BLOCK] * n]
        assert big[:] == b"".join(data[(i % 256) * BLOCK:(i % 256 + 1) * BLOCK] for i in range(n))
        submitted = after["submitted"] - before["submitted"]
        started = after["started"] - before["started"]
        reaped = after["reaped"] - before["reaped"]
        assert started == n and reaped == n
        assert submitted >= n
        # Many entries per io_uring_enter that hands some over (one per
        # request would be 256).  The waits for completions, and how the
        # completions reach the sink, are the next test's: here they follow
        # the device (its completions trickle in one by one on a busy disk:
        # 113 enters and 111 sink batches for 256 reads seen under load).
        submits = after["submit_enters"] - before["submit_enters"]
        assert 1 <= submits <= n // 16, (submits, submitted)
    finally:
        os.close(fd)


@needs_ring
def test_a_batch_completing_at_once_takes_few_enters_and_reaches_the_sink_in_batches(pipes):
    # Reads of one empty pipe, held in the kernel until one write gives
    # each its 8 bytes: all complete within that write, whatever the
    # machine's speed, so what is counted is the ring's batching alone
    # (reads of a disk complete as the device pleases).  At the file
    # position (None): a positioned read of a pipe fails with ESPIPE at
    # once, and this test then skipped, every time.  128: all in flight at
    # once (the ring's wake-up read takes one of its 256 places).
    n = 128
    linuxaio.min_parallel(256)
    [(r, w)] = pipes(1)
    try:
        bufs = [bytearray(8) for _ in range(n)]
        out = []
        before = stats()
        linuxaio.submit_many("aio_read", [(r, None, 8, b, 0) for b in bufs], out.append)
        try:
            wait_until(lambda: stats()["started"] - before["started"] >= n, 5, "the ring to start the pipe reads")
        except AssertionError:
            pytest.skip("this ring does not take a read of a pipe into the kernel")
        linuxaio.poll_cb()
        if out:
            pytest.skip(f"io_uring here does not wait on an empty pipe ({out})")
        os.write(w, b"".join(i.to_bytes(8, "little") for i in range(n)))
        linuxaio.flush()
        after = stats()
        assert out == [[8] * n]
        # each read took one 8-byte piece of the write, no two the same one
        assert sorted(int.from_bytes(b, "little") for b in bufs) == list(range(n))
        enters = after["enters"] - before["enters"]
        submitted = after["submitted"] - before["submitted"]
        reaped = after["reaped"] - before["reaped"]
        batches = after["sink_batches"] - before["sink_batches"]
        assert after["started"] - before["started"] == n and reaped == n
        submits = after["submit_enters"] - before["submit_enters"]
        assert 1 <= submits <= n // 16, (submits, submitted)
        # Many entries per io_uring_enter, the waits for completions counted
        # too (one per request would be >= n; seen: 16 for 256).
        assert submitted / enters >= 4, (enters, submitted)
        # Completions reach the sink (one eventfd write at most each) in
        # batches (seen: 14 for the 256).
        assert batches <= n // 4, (batches, reaped)
    finally:
        os.write(w, b"!" * 8 * n)   # any read still in the ring finishes
        linuxaio.flush()


@needs_ring
def test_requests_submitted_from_callbacks_are_batched_too(pipes):
    # Reads of empty pipes: no completion wakes the ring thread while the
    # callback queues them, so what is measured is the hold alone (reads of
    # a fast disk completing during the fan-out made the count depend on
    # the device's latency against the interpreter's speed).
    linuxaio.min_parallel(256)
    pp = pipes(64)
    got = []
    bufs = [bytearray(8) for _ in pp]

    def fan_out(res):
        for i, ((r, w), b) in enumerate(zip(pp, bufs)):
            linuxaio.aio_read(r, None, 8, b, 0, lambda res, i=i: got.append((i, res)))
    before = stats()
    linuxaio.aio_nop(fan_out)
    try:
        wait_until(lambda: (linuxaio.poll_cb(), stats()["started"] - before["started"] >= 64)[1], 5,
                   "the ring to start the pipe reads")
    except AssertionError:
        pytest.skip("this ring does not take a read of a pipe into the kernel")
    for i, (r, w) in enumerate(pp):
        os.write(w, bytes([i]) * 8)
    linuxaio.flush()
    assert sorted(got) == [(i, 8) for i in range(64)]
    assert all(b == bytes([i]) * 8 for i, b in enumerate(bufs))
    # (counted once the enters that handed them over have returned, which
    # the reads' completions made them do)
    after = stats()
    submits = after["submit_enters"] - before["submit_enters"]
    submitted = after["submitted"] - before["submitted"]
    assert after["started"] - before["started"] == 64
    # queued while a poll hands out results: handed over a batch at a time
    # (a wake-up per request would be one enter each, 64)
    assert 1 <= submits <= 32 and submitted / submits >= 2, (submits, submitted)


# ---- far more than the completion queue holds ----


@needs_ring
@pytest.mark.aio_timeout(120)
def test_ten_thousand_reads_at_once_complete_with_the_right_bytes(tmp_path):
    cq = linuxaio.engine_info()["cq_entries"]
    n = 10_000
    assert n > 10 * cq
    path = tmp_path / "f.bin"
    data = os.urandom(1024 * BLOCK)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        linuxaio.min_parallel(256)   # as deep as the ring goes
        big = bytearray(n * BLOCK)
        offs = [(i * 7919 % 1024) * BLOCK for i in range(n)]
        before = stats()
        out = []
        linuxaio.submit_many("aio_read", [(fd, off, BLOCK, big, i * BLOCK) for i, off in enumerate(offs)],
                             out.append)
        linuxaio.flush()
        after = stats()
        assert out == [[BLOCK] * n]
        mv = memoryview(big)
        for i, off in enumerate(offs):
            if mv[i * BLOCK:(i + 1) * BLOCK] != data[off:off + BLOCK]:
                raise AssertionError(f"read {i} (offset {off}) returned the wrong bytes")
        if linuxaio.engine_info()["mode"] == "uring" or after["started"] > before["started"]:
            # Those on the ring never overflowed the CQ (the kernel's count).
            assert after["cq_overflow"] == 0
    finally:
        os.close(fd)


# ---- why there is no ring: every message ----


@pytest.mark.parametrize("err, disabled, words", [
    (errno.EPERM, 2, ["io_uring", "disabled by sysctl", "io_uring_disabled = 2", "sysctl -w kernel.io_uring_disabled=0",
                      "LINUXAIO_ENGINE=threads"]),
    (errno.EPERM, 1, ["io_uring", "io_uring_disabled = 1", "io_uring_group", "CAP_SYS_ADMIN",
                      "LINUXAIO_ENGINE=threads"]),
    (errno.EPERM, 0, ["io_uring", "seccomp", "Docker", "LINUXAIO_ENGINE=threads"]),
    (errno.EPERM, -1, ["io_uring", "seccomp", "absent"]),
    (errno.ENOSYS, -1, ["io_uring", "ENOSYS", "CONFIG_IO_URING"]),
    (errno.ENOMEM, -1, ["io_uring", "ENOMEM", "RLIMIT_MEMLOCK", "ulimit -l"]),
    (errno.EINVAL, -1, ["io_uring", "failed", os.strerror(errno.EINVAL), "errno %d" % errno.EINVAL]),
])
def test_each_cause_of_a_refused_ring_has_its_own_message(err, disabled, words):
    msg = _engine._uring_reason(err, disabled)
    assert "fix:" in msg and "io_uring_setup" in msg
    for w in words:
        assert w in msg, (w, msg)
    others = {_engine._uring_reason(e, d) for e, d in [(errno.EPERM, 2), (errno.EPERM, 1), (errno.EPERM, 0),
                                                       (errno.ENOSYS, -1), (errno.ENOMEM, -1)]}
    assert len(others) == 5   # each cause apart


def test_the_sysctl_value_only_matters_for_eperm():
    for err in (errno.ENOSYS, errno.ENOMEM, errno.EINVAL):
        assert _engine._uring_reason(err, 2) == _engine._uring_reason(err, 0)
    assert "mmap" in _engine._uring_reason(errno.EMFILE, -1, "setting up the ring (mmap, eventfd)")


def test_uring_reason_bad_arguments():
    with pytest.raises(TypeError):
        _engine._uring_reason("EPERM", 1)
    with pytest.raises(TypeError):
        _engine._uring_reason(errno.EPERM)


# ---- slurp(into=, direct=True): its chunk reads go to the ring ----


@needs_ring
def test_direct_slurp_reads_its_chunks_on_the_ring(tmp_path):
    import asyncio
    from linuxaio import _slurp
    path = tmp_path / "big.bin"
    data = os.urandom(3 * _slurp.CHUNK + 12345)   # an unaligned tail too
    path.write_bytes(data)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
    except OSError as e:
        pytest.skip(f"the test directory's file system refuses O_DIRECT ({e})")
    buf = linuxaio.aligned_buffer(len(data) + BLOCK)
    before = stats()
    n = asyncio.run(linuxaio.slurp(str(path), into=buf, direct=True))
    after = stats()
    assert n == len(data) and buf[:n] == data
    # 3 whole chunks and the tail (one aligned block): at least 4 reads on the ring
    assert after["started"] - before["started"] >= 4
    got = []
    before = stats()
    linuxaio.aio_slurp(str(path), 0, None, got.append, into=buf, direct=True)
    linuxaio.flush()
    assert got == [len(data)] and buf[:len(data)] == data
    assert stats()["started"] - before["started"] >= 4
