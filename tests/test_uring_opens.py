"""Slurp's open on the ring in a cold tree: once opens keep coming back
from the kernel's workers (their names were not in the dentry cache), the
ring sends them there at once (IOSQE_ASYNC) instead of walking each name
inline first, with one open in 8 still tried inline to notice the tree
warm up.  Which way an open goes changes its cost, never its result: these
tests drive the score (_engine._ring_cold_opens) so that the worker path
runs deterministically on a cached tmp tree, and compare every result with
the synchronous os calls.

Needs a ring in this process (skips, saying why, on the threads)."""
import asyncio
import errno
import os
import time

import pytest

import linuxaio
from linuxaio import _engine
from aio_helpers import fd_count, run_forked, wait_started, wait_until

COLD_OPENS = 16        # uring.h: from this score on, opens go to the workers
COLD_OPEN_PROBE = 8    # one open in 8 is tried inline all the same
COLD_OPEN_INLINE = 4   # uring_prep.c: what an open found inline takes off the score

needs_ring = pytest.mark.skipif(
    linuxaio.engine() != "uring",
    reason="no io_uring ring in this process: %s" % linuxaio.engine_info()["reason"])
pytestmark = needs_ring


def async_opens():
    return linuxaio.engine_info()["ring_stats"]["async_opens"]


@pytest.fixture
def score():
    """Set the cold score for a test; the old one is back afterwards."""
    old = _engine._ring_cold_opens()
    yield _engine._ring_cold_opens
    _engine._ring_cold_opens(old)


def small_tree(root, n):
    paths = []
    for i in range(n):
        p = root / f"f{i:03}"
        p.write_bytes(os.urandom(1 + 997 * i % 16384))
        paths.append(p)
    return paths


def slurp_one(path, *args):
    """One slurp through the ring, and its result.  Under LINUXAIO_ENGINE=auto
    a slurp that would be alone in flight goes to the threads (a lone slurp
    waits for two wake-ups on the ring: uring_route.c), so a read of an empty
    pipe keeps a worker busy meanwhile."""
    got = []
    rfd, wfd = os.pipe()
    try:
        linuxaio.aio_read(rfd, None, 1, bytearray(1), 0, None)
        wait_started()   # the read blocks in a worker: the slurp has company
        linuxaio.aio_slurp(path, *(args or (0, None)), got.append)
        while not got:
            linuxaio.poll_wait()
            linuxaio.poll_cb()
    finally:
        os.write(wfd, b"x")
        linuxaio.flush()
        os.close(rfd)
        os.close(wfd)
    return got[0]


def test_a_cold_score_sends_opens_to_the_workers_with_the_same_bytes(tmp_path, score):
    paths = small_tree(tmp_path, 24)
    score(2 * COLD_OPENS)
    before = async_opens()
    for p in paths:   # one at a time: each open is scored before the next is prepared
        assert slurp_one(p) == p.read_bytes()
    sent = async_opens() - before
    # 1 in COLD_OPEN_PROBE tried inline; the probes found the names cached,
    # each taking COLD_OPEN_INLINE off: 32 - 3 * 4 = 20, still >= 16
    assert sent == len(paths) - len(paths) // COLD_OPEN_PROBE
    assert COLD_OPENS <= score() < 2 * COLD_OPENS


def test_opens_found_inline_end_the_cold_score(tmp_path, score):
    paths = small_tree(tmp_path, 40)
    score(COLD_OPENS)
    before = async_opens()
    for p in paths:
        assert slurp_one(p) == p.read_bytes()
    # the first probe (the 8th open) was done inline: below COLD_OPENS from
    # then on, every open tried inline, each found so
    assert async_opens() - before == COLD_OPEN_PROBE - 1
    assert score() == 0


def test_below_the_threshold_no_open_goes_to_the_workers(tmp_path, score):
    paths = small_tree(tmp_path, 20)
    score(COLD_OPENS - 1)
    before = async_opens()
    for p in paths:
        assert slurp_one(p) == p.read_bytes()
    assert async_opens() == before


def test_opens_sent_to_the_workers_report_errors_as_os_does(tmp_path, score):
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "file").write_bytes(b"x" * 5000)
    (tmp_path / "dir").mkdir()
    cases = {
        "absent": (tmp_path / "absent", FileNotFoundError, errno.ENOENT),
        "under a file": (tmp_path / "file" / "x", NotADirectoryError, errno.ENOTDIR),
        "directory": (tmp_path / "dir", IsADirectoryError, errno.EISDIR),
    }
    for name, (path, exc, err) in cases.items():
        score(2 * COLD_OPENS)
        before = async_opens()
        got = slurp_one(path)
        assert async_opens() == before + 1, name
        assert isinstance(got, exc) and got.errno == err, (name, got)
        with pytest.raises(exc):
            with open(path, "rb") as f:
                f.read()
    score(2 * COLD_OPENS)
    assert slurp_one(tmp_path / "empty") == b""
    assert slurp_one(tmp_path / "file", 1000, 300) == b"x" * 300
    assert slurp_one("/proc/self/stat").startswith(str(os.getpid()).encode())


def test_awaited_slurps_through_the_workers(tmp_path, score, engine_only):
    paths = small_tree(tmp_path, 64)
    score(2 * COLD_OPENS)
    before = async_opens()

    async def main():
        return await asyncio.gather(*(linuxaio.slurp(p) for p in paths))
    got = asyncio.run(main())
    assert got == [p.read_bytes() for p in paths]
    # inline tries off (engine_only): every slurp reached the ring, the
    # first of them prepared at score 32 (7 in 8 to the workers)
    assert async_opens() > before


def test_cancelled_slurps_with_opens_at_the_workers_leave_no_fd_open(tmp_path, score):
    paths = small_tree(tmp_path, 150)
    before_fds = fd_count()
    got = []
    sent = async_opens()
    for rnd in range(4):
        score(2 * COLD_OPENS)
        reqs = [linuxaio.aio_slurp(p, 0, None, got.append) for p in paths]
        for r in reqs[rnd::2]:
            r.cancel()
        linuxaio.flush()
    assert async_opens() > sent
    assert linuxaio.nreqs() == 0
    wait_until(lambda: fd_count() == before_fds, 5, "every slurp's fd closed")
    contents = {p.read_bytes() for p in paths}
    assert got and all(b in contents for b in got)


def test_a_forked_child_slurps_with_the_score_it_inherited(tmp_path, score):
    paths = small_tree(tmp_path, 30)
    score(2 * COLD_OPENS)
    got = {}
    for p in paths:   # in flight across the fork
        linuxaio.aio_slurp(p, 0, None, lambda data, p=p: got.__setitem__(p, data))

    def child():
        before = async_opens()
        for p in paths[:10]:
            if slurp_one(p) != p.read_bytes():
                return 1
        return 0 if async_opens() > before else 2
    assert run_forked(child) == 0
    linuxaio.flush()
    assert got == {p: p.read_bytes() for p in paths}


@pytest.mark.skipif(linuxaio.engine_info().get("mode") != "auto",
                    reason="LINUXAIO_ENGINE=uring sends every slurp to the ring")
def test_auto_sends_a_lone_slurp_to_the_threads_and_one_with_company_to_the_ring(tmp_path):
    """A slurp alone in flight waits for two wake-ups on the ring (the ring
    thread's, then the loop's: 65-90 us for a cached small file here) where
    a spinning worker takes a few us; with others in flight the ring keeps
    the device's queue deep.  So under auto a lone slurp runs on the threads,
    and the ring takes it when something else is in flight."""
    assert linuxaio.engine_info()["ring_policy"]["slurp"] == "unless it would be the only request in flight"
    paths = small_tree(tmp_path, 8)
    started = lambda: linuxaio.engine_info()["ring_stats"]["started"]
    linuxaio.flush()
    before = started()
    for p in paths:   # one at a time, nothing else in flight
        got = []
        linuxaio.aio_slurp(p, 0, None, got.append)
        linuxaio.flush()
        assert got == [p.read_bytes()]
    assert started() == before
    for p in paths:   # a pipe read keeps a worker busy meanwhile
        assert slurp_one(p) == p.read_bytes()
    assert started() - before >= len(paths)   # (a slurp on the ring may take several entries)

    async def main():   # awaited with inline tries off: the same
        linuxaio.inline(False)
        try:
            for p in paths:
                assert await linuxaio.slurp(p) == p.read_bytes()
        finally:
            linuxaio.inline(True)
    before = started()
    asyncio.run(main())
    assert started() == before


def test_cold_score_private_setter_returns_the_old_score(score):
    score(5)
    assert score(7) == 5
    assert score() == 7
    assert score(-1) == 7 and score() == 7   # negative: read only
    with pytest.raises(TypeError):
        score("3")


# ---- the kernel's workers: 16 per CPU, not io-wq's 4 ----

KERNEL_WORKERS_PER_CPU = 16


def kernel_workers():
    assert slurp_one("/proc/self/stat")   # the ring thread is up: it sets the cap
    return linuxaio.engine_info()["kernel_workers"]


needs_cap = pytest.mark.skipif(
    "linuxaio.engine() == 'uring' and not kernel_workers()", reason="the kernel refused IORING_REGISTER_IOWQ_MAX_WORKERS (before 5.15)")


@needs_cap
def test_the_ring_raises_its_kernel_workers_cap():
    info = linuxaio.engine_info()
    assert info["kernel_workers"] == min(KERNEL_WORKERS_PER_CPU * os.sysconf("SC_NPROCESSORS_ONLN"),
                                         info["cq_entries"])


def release_fifos(fifos, done, timeout=30):
    """Open a writer for each FIFO whose reader waits in open, until every
    slurp of them is back: a worker may reach a FIFO's open only later
    (a writer's O_NONBLOCK open fails with ENXIO while no reader waits)."""
    writers, released = [], set()
    deadline = time.monotonic() + timeout
    try:
        while not done():
            for f in fifos:
                if f not in released:
                    try:
                        writers.append(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
                        released.add(f)
                    except OSError as e:
                        if e.errno != errno.ENXIO:
                            raise
            linuxaio.poll_cb()
            if time.monotonic() > deadline:
                raise AssertionError("the FIFOs' slurps did not all come back")
            time.sleep(0.002)
    finally:
        for w in writers:
            os.close(w)


@needs_cap
def test_opens_blocked_in_workers_do_not_hold_back_other_opens(tmp_path, score):
    """io-wq's default is 4 workers per CPU: more FIFO opens than that, each
    waiting for a writer, would leave an open sent to the workers after them
    waiting in the kernel's queue for ever (the ring raises the cap to 16
    per CPU: more than that many blocked opens still block the rest)."""
    n = 4 * os.sysconf("SC_NPROCESSORS_ONLN") + 2
    if n + 4 > linuxaio.engine_info()["ring_entries"]:
        pytest.skip(f"{n} blocked opens: more than the ring's limit can take")
    linuxaio.min_parallel(n + 4)   # all in flight at once (conftest restores the limits)
    assert linuxaio.engine_info()["max_in_flight"] >= n + 1
    fifos = []
    for i in range(n):
        os.mkfifo(tmp_path / f"fifo{i}")
        fifos.append(tmp_path / f"fifo{i}")
    regular = tmp_path / "regular"
    regular.write_bytes(b"r" * 3000)
    fifo_got, got = [], []
    try:
        score(2 * COLD_OPENS)
        for f in fifos:   # 7 in 8 wait in a worker's open for a writer
            linuxaio.aio_slurp(f, 0, None, fifo_got.append)
        # all handed to the kernel before the score is set again: one the
        # ring thread prepared after it would move the 1-in-8 probe onto
        # the regular file's open (a loaded machine did)
        wait_until(lambda: linuxaio.nready() == 0, 30, "the FIFOs' opens to be handed to the kernel")
        score(2 * COLD_OPENS)   # the next open goes to the workers too
        before = async_opens()
        linuxaio.aio_slurp(regular, 0, None, got.append)
        # without workers to spare it would wait for ever: the bound is generous
        wait_until(lambda: linuxaio.poll_cb() >= 0 and got, 30, "the regular file's slurp finished")
        assert got == [regular.read_bytes()]
        assert async_opens() > before
        assert len(fifo_got) < n   # the FIFOs' opens still wait (probes failed fast)
    finally:
        release_fifos(fifos, lambda: len(fifo_got) == n)
        linuxaio.flush()
    assert len(fifo_got) == n
    assert all(isinstance(e, OSError) and e.errno == errno.ESPIPE for e in fifo_got)
