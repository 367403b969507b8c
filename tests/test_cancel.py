"""Request.cancel(): before start, while running, after completion, after delivery."""
import os
import threading
import time

import pytest

import linuxaio
from aio_helpers import Collector, fd_count, is_cancelled, is_done, wait_pending, wait_started, wait_until
from async_helpers import HeldWorker


def block_single_worker(directory):
    """One thread, blocked in open() of a FIFO until the returned
    HeldWorker's release(): whatever is submitted next waits in the queue
    however slow the machine (an aio_busy's fixed time could run out)."""
    linuxaio.max_parallel(1)
    wait_until(lambda: linuxaio.nthreads() <= 1, what="nthreads() <= 1")
    return HeldWorker(directory).__enter__()


# ------------------------------------------------------------ before start

@pytest.mark.parametrize("how", ["max_parallel_0", "busy_worker"])
def test_cancelled_queued_open_creates_nothing(scratch, how):
    target = scratch / "never"
    cb = Collector()
    held = None
    if how == "max_parallel_0":
        linuxaio.max_parallel(0)
    else:
        held = block_single_worker(scratch)
    try:
        req = linuxaio.aio_open(target, os.O_CREAT | os.O_WRONLY, 0o600, cb)
        assert linuxaio.nready() == 1
        req.cancel()
        assert is_cancelled(req) is True
    finally:
        if held is not None:
            held.release()
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert not target.exists()
    assert cb.calls == []
    assert is_done(req) is True
    assert linuxaio.nreqs() == 0


def test_cancelled_queued_unlink_and_write_do_nothing(scratch):
    victim = scratch / "victim"
    victim.write_bytes(b"keep")
    fd = os.open(victim, os.O_RDWR)
    try:
        cb = Collector()
        linuxaio.max_parallel(0)
        reqs = [linuxaio.aio_unlink(victim, cb),
                linuxaio.aio_write(fd, 0, 4, b"XXXX", 0, cb),
                linuxaio.aio_read(fd, 0, 4, bytearray(4), 0, cb),
                linuxaio.aio_stat(victim, cb)]
        for r in reqs:
            r.cancel()
        linuxaio.min_parallel(4)
        linuxaio.flush()
        assert cb.calls == []
        assert victim.read_bytes() == b"keep"
    finally:
        os.close(fd)


def test_cancelled_queued_close_leaves_the_fd_open(scratch):
    fd = os.open(scratch, os.O_RDONLY)
    try:
        linuxaio.max_parallel(0)
        linuxaio.aio_close(fd).cancel()
        linuxaio.min_parallel(4)
        linuxaio.flush()
        os.fstat(fd)
    finally:
        os.close(fd)


def test_cancel_before_start_frees_the_slot_at_once():
    """A cancelled queued request leaves the queue; the next poll_cb retires it."""
    linuxaio.max_parallel(0)
    reqs = [linuxaio.aio_nop() for _ in range(10)]
    assert linuxaio.nready() == 10
    for r in reqs[:4]:
        r.cancel()
    assert linuxaio.nready() == 6
    assert linuxaio.nreqs() == 10
    linuxaio.poll_cb()
    assert linuxaio.nreqs() == 6
    assert [is_done(r) for r in reqs] == [True] * 4 + [False] * 6
    for r in reqs[4:]:
        r.cancel()
    linuxaio.flush()      # nothing can run, but everything left was cancelled
    assert linuxaio.nreqs() == 0


def test_only_the_cancelled_request_is_skipped():
    cb = Collector()
    linuxaio.max_parallel(0)
    reqs = [linuxaio.aio_nop(lambda v, i=i: cb(i)) for i in range(20)]
    for r in reqs[::3]:
        r.cancel()
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert sorted(cb.values) == [i for i in range(20) if i % 3]


# ------------------------------------------------------------ while running

def test_cancel_while_running_suppresses_the_callback():
    cb = Collector()
    r, w = os.pipe()
    try:
        # a read of an empty pipe: running (in the kernel) until the pipe
        # gets data, however slow the machine (an aio_busy could end first)
        req = linuxaio.aio_read(r, None, 1, bytearray(1), 0, cb)
        wait_started()
        time.sleep(0.02)
        assert not is_done(req)
        req.cancel()
        assert is_cancelled(req)
        os.write(w, b"x")
        t0 = time.monotonic()
        linuxaio.flush()
        assert cb.calls == []
        assert is_done(req)
        assert time.monotonic() - t0 < 5
    finally:
        os.close(r)
        os.close(w)


def test_cancelled_running_open_closes_its_fd(scratch):
    """An open blocked in the kernel (a FIFO with no writer) is cancelled,
    then completes: its fd is closed, nobody sees it."""
    fifo = scratch / "fifo"
    os.mkfifo(fifo)
    cb = Collector()
    base = fd_count()
    req = linuxaio.aio_open(fifo, os.O_RDONLY, 0, cb)
    wfd = None
    try:
        wait_started()
        time.sleep(0.05)
        assert not is_done(req) and linuxaio.npending() == 0
        req.cancel()
        assert is_cancelled(req)
    finally:
        # always let the worker's open return, or the worker stays stuck
        wfd = os.open(fifo, os.O_WRONLY)
    try:
        linuxaio.flush()
    finally:
        os.close(wfd)
    assert cb.calls == []
    assert fd_count() == base


# ------------------------------------------------------------ after completion, before poll_cb

def test_cancelled_open_closes_its_fd(datafile):
    cb = Collector()
    base = fd_count()
    req = linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, cb)
    wait_pending(1)
    assert fd_count() == base + 1      # the worker's open happened
    req.cancel()
    assert is_cancelled(req) and not is_done(req)
    linuxaio.flush()
    assert is_done(req)
    assert cb.calls == []
    assert fd_count() == base


def test_cancel_after_completion_suppresses_callbacks_of_every_kind(datafile, rfd):
    cb = Collector()
    reqs = [linuxaio.aio_nop(cb), linuxaio.aio_stat(datafile[0], cb),
            linuxaio.aio_read(rfd, 0, 4, bytearray(4), 0, cb),
            linuxaio.aio_stat("/no/such/file", cb)]
    wait_pending(len(reqs))
    for r in reqs:
        r.cancel()
    assert linuxaio.poll_cb() == len(reqs)
    assert cb.calls == []
    assert linuxaio.nreqs() == 0


def test_cancelled_failed_open_closes_nothing(scratch):
    """An open that failed has no fd to close: the undo must not close -errno."""
    keep = os.open(scratch, os.O_RDONLY)
    try:
        req = linuxaio.aio_open(scratch / "missing", os.O_RDONLY, 0, None)
        wait_pending(1)
        req.cancel()
        linuxaio.flush()
        os.fstat(keep)
    finally:
        os.close(keep)


def test_cancel_from_a_callback_of_the_same_batch(datafile):
    """A callback cancels a sibling already finished in the same poll_cb batch."""
    got = []
    base = fd_count()
    opener = None

    def first(v):
        got.append("first")
        opener.cancel()

    linuxaio.max_parallel(1)
    linuxaio.aio_busy(0.05)
    linuxaio.aio_nop(first)
    opener = linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, got.append)
    wait_pending(3)
    linuxaio.poll_cb()
    linuxaio.flush()
    assert got == ["first"]
    assert fd_count() == base


# ------------------------------------------------------------ after delivery

def test_cancel_after_delivery_is_a_no_op(datafile):
    cb = Collector()
    req = linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, cb)
    linuxaio.flush()
    fd = cb.values[0]
    try:
        req.cancel()
        req.cancel()
        linuxaio.flush()
        assert is_done(req)
        assert len(cb.calls) == 1
        os.fstat(fd)     # still ours, still open
        assert linuxaio.nreqs() == 0
    finally:
        os.close(fd)


def test_cancel_twice_before_start():
    linuxaio.max_parallel(0)
    r = linuxaio.aio_nop(lambda v: pytest.fail("callback of a cancelled request"))
    r.cancel()
    r.cancel()
    linuxaio.poll_cb()
    r.cancel()
    assert linuxaio.nreqs() == 0 and linuxaio.nready() == 0


# ------------------------------------------------------------ no fd leaks

@pytest.mark.aio_timeout(60)
def test_no_fd_leak_over_many_open_close_and_cancel_cycles(datafile, scratch):
    base = fd_count()
    opened = []
    for cycle in range(300):
        stage = cycle % 5
        cb = Collector()
        if stage == 0:      # plain open then close
            linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, cb)
            linuxaio.flush()
            linuxaio.aio_close(cb.values[0], cb)
            linuxaio.flush()
            assert cb.values[1] == 0
        elif stage == 1:    # cancelled before start
            linuxaio.max_parallel(0)
            linuxaio.aio_open(scratch / f"c{cycle}", os.O_CREAT | os.O_RDWR, 0o600, cb).cancel()
            linuxaio.min_parallel(4)
            linuxaio.flush()
        elif stage == 2:    # cancelled after completion
            r = linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, cb)
            wait_pending(1)
            r.cancel()
            linuxaio.flush()
        elif stage == 3:    # cancelled at some random moment
            r = linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, cb)
            r.cancel()
            linuxaio.flush()
            opened += cb.values
        else:               # half of a batch cancelled
            reqs = [linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, cb) for _ in range(8)]
            for r in reqs[::2]:
                r.cancel()
            linuxaio.flush()
            assert len(cb.calls) == 4
            opened += cb.values
        for fd in opened:
            os.close(fd)
        opened.clear()
        if stage == 1:
            assert not (scratch / f"c{cycle}").exists()
    assert fd_count() == base


def test_no_fd_leak_when_cancelling_many_opens_in_flight(datafile):
    base = fd_count()
    for _ in range(20):
        reqs = [linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, lambda fd: pytest.fail("delivered"))
                for _ in range(50)]
        time.sleep(0.0005)
        for r in reqs:
            r.cancel()
        linuxaio.flush()
    assert fd_count() == base


def test_cancel_from_another_thread(datafile):
    base = fd_count()
    reqs = [linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, lambda fd: pytest.fail("delivered"))
            for _ in range(200)]
    t = threading.Thread(target=lambda: [r.cancel() for r in reqs])
    t.start()
    t.join(10)
    assert not t.is_alive()
    linuxaio.flush()
    assert fd_count() == base
