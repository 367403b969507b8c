"""The loop's ring (uring.c, lx_L): the thread that polls submits the reads
its callbacks and tasks queue itself, and any thread takes their
completions.  Each scenario runs in a fresh interpreter with
LINUXAIO_ENGINE=uring, so that which thread owns that ring is known (the
first that ends a poll with ring requests queued)."""
from __future__ import annotations

import os
import textwrap

import pytest

from aio_helpers import run_python
from test_uring import BLOCK, FILE_BLOCKS, data_file, kernel_has_io_uring  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(not kernel_has_io_uring(), reason="no io_uring in this kernel or sandbox")

# Reads chained from callbacks: each callback checks its block and starts
# the next read in its slot; `total` reads in all, `depth` in flight.
PRELUDE = """
import linuxaio, os, select, sys, threading
assert linuxaio.engine() == 'uring', linuxaio.engine_info()
path = {path!r}
data = open(path, 'rb').read()
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
BLOCK, NBLOCKS = {block}, {nblocks}
bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(64)]
state = dict(started=0, done=0, bad=0)

def start(slot, total):
    i = state['started']
    state['started'] += 1
    off = (i * 7919 % NBLOCKS) * BLOCK
    def cb(res, slot=slot, off=off):
        if res != BLOCK or bytes(bufs[slot]) != data[off:off + BLOCK]:
            state['bad'] += 1
        state['done'] += 1
        if state['started'] < total:
            start(slot, total)
    linuxaio.aio_read(fd, off, BLOCK, bufs[slot], 0, cb)

def loop_stats():
    st = linuxaio.engine_info()['ring_stats']
    return st['loop_started'], st['loop_reaped']
"""


def run(data_file, body, timeout=60):
    path, _ = data_file
    code = PRELUDE.format(path=path, block=BLOCK, nblocks=FILE_BLOCKS) + textwrap.dedent(body)
    proc, _ = run_python(code, timeout=timeout, env={"LINUXAIO_ENGINE": "uring"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_reads_callbacks_start_go_to_the_loops_ring_and_return_the_files_bytes(data_file):
    out = run(data_file, """
        for s in range(64):
            start(s, 2000)
        assert loop_stats() == (0, 0)   # nothing polled yet: the ring thread's
        linuxaio.flush()
        started, reaped = loop_stats()
        print(state['done'], state['bad'], started > 1000, reaped == started, linuxaio.nreqs())
        """)
    assert out.split() == ["2000", "0", "True", "True", "0"]


def test_a_loop_waiting_in_poll_wakes_for_the_loops_ring(data_file):
    # the sink's eventfd is registered with the loop's ring: poll() on
    # poll_fileno() wakes for its completions, with nobody else in between
    out = run(data_file, """
        p = select.poll()
        p.register(linuxaio.poll_fileno(), select.POLLIN)
        for s in range(64):
            start(s, 3000)
        while linuxaio.nreqs():
            if not p.poll(10000):
                print('no wake-up in 10 s'); break
            linuxaio.poll_cb()
        print(state['done'], state['bad'], loop_stats()[0] > 2000)
        """)
    assert out.split() == ["3000", "0", "True"]


def test_another_threads_flush_while_the_owner_blocks(data_file):
    # the owner (main thread) is blocked in join() while another thread
    # waits for the reads it submitted: the kernel posts their completions
    # from the owner's task work all the same, and the other thread takes them
    out = run(data_file, """
        for s in range(64):
            start(s, 64 + 64)
        linuxaio.poll_wait()
        linuxaio.poll_cb()   # its callbacks queue 64 more: into the loop's ring
        assert loop_stats()[0] > 0
        t = threading.Thread(target=linuxaio.flush)
        t.start()
        t.join(30)
        print(t.is_alive(), state['done'], state['bad'], linuxaio.nreqs())
        """)
    assert out.split() == ["False", "128", "0", "0"]


def test_the_owner_thread_exits_with_reads_in_flight(data_file):
    # a thread polls (it owns the loop's ring), its callbacks start reads,
    # and it exits before they complete: another thread gets them all
    out = run(data_file, """
        def owner():
            for s in range(64):
                start(s, 64 + 64)
            linuxaio.poll_wait()
            linuxaio.poll_cb()
        t = threading.Thread(target=owner)
        t.start()
        t.join()
        linuxaio.flush()
        print(state['done'], state['bad'], loop_stats()[0] > 0, linuxaio.nreqs())
        """)
    assert out.split() == ["128", "0", "True", "0"]


def test_cancel_on_the_loops_ring_delivers_or_cancels_each(data_file):
    out = run(data_file, """
        reqs, got = [], {}
        def first(res):
            for i in range(200):
                off = (i * 13 % NBLOCKS) * BLOCK
                buf = linuxaio.aligned_buffer(BLOCK)
                reqs.append(linuxaio.aio_read(fd, off, BLOCK, buf, 0, lambda r, i=i: got.__setitem__(i, r)))
            for r in reqs[::3]:
                r.cancel()   # queued: never runs, no callback
            linuxaio.poll_wait()
        linuxaio.aio_read(fd, 0, BLOCK, bufs[0], 0, first)
        linuxaio.poll_wait()
        linuxaio.poll_cb()
        for r in reqs[1::3]:
            r.cancel()   # in the loop's ring (or done): cancelled there, or delivered
        linuxaio.flush()
        never = [i for i in range(0, 200, 3) if i in got]
        wrong = [i for i, r in got.items() if r != BLOCK]
        print(len(never), len(wrong), all(i in got for i in range(2, 200, 3)), loop_stats()[0] > 0,
              linuxaio.nreqs())
        """)
    assert out.split() == ["0", "0", "True", "True", "0"]


def test_fork_with_reads_in_flight_on_the_loops_ring(data_file):
    out = run(data_file, """
        import asyncio
        for s in range(64):
            start(s, 64 + 64)
        linuxaio.poll_wait()
        linuxaio.poll_cb()
        assert loop_stats()[0] > 0
        pid = os.fork()
        if pid == 0:
            # a fresh engine: none of the parent's requests, rings of its own
            ok = linuxaio.nreqs() == 0
            for s in range(64):
                start(s, state['started'] + 64)
            linuxaio.poll_wait()
            linuxaio.poll_cb()
            linuxaio.flush()
            os._exit(0 if ok and state['bad'] == 0 and linuxaio.nreqs() == 0 else 3)
        linuxaio.flush()
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), state['done'], state['bad'])
        """)
    assert out.split() == ["0", "128", "0"]


def test_exit_with_direct_reads_in_flight_on_the_loops_ring(data_file):
    out = run(data_file, """
        for s in range(64):
            start(s, 10 ** 9)
        for _ in range(5):
            linuxaio.poll_wait()
            linuxaio.poll_cb()
        print('leaving', linuxaio.nreqs(), loop_stats()[0] > 0)
        """)
    assert out.split() == ["leaving", "64", "True"]


def test_max_parallel_bounds_the_loops_ring_too(data_file):
    out = run(data_file, """
        linuxaio.max_parallel(4)
        most = [0]
        def depth_cb(res):
            st = linuxaio.engine_info()['ring_stats']
            most[0] = max(most[0], st['started'] - st['reaped'])
            if state['started'] < 1000:
                state['started'] += 1
                linuxaio.aio_read(fd, (state['started'] % NBLOCKS) * BLOCK, BLOCK, bufs[0], 0, depth_cb)
        def first(res):   # in a poll: these go to the loop's ring, 4 at a time
            for s in range(64):
                state['started'] += 1
                linuxaio.aio_read(fd, s * BLOCK, BLOCK, bufs[0], 0, depth_cb)
        linuxaio.aio_read(fd, 0, BLOCK, bufs[0], 0, first)
        linuxaio.flush()
        print(most[0] <= 4, loop_stats()[0] > 0, linuxaio.nreqs(), state['started'])
        """)
    assert out.split() == ["True", "True", "0", "1000"]


def test_no_completion_is_left_without_its_wake_up(tmp_path):
    """Buffered writes chained from callbacks, 4 in flight, waited for with
    select() on poll_fileno(): every completion the kernel posts on the
    loop's ring must leave the fd readable until it is taken.  (The sink's
    read of the eventfd once came after the ring was reaped: a completion
    posted between the two was never seen, and `linuxaio bench --write`
    hung in select about one run in five.)"""
    path = tmp_path / "w.dat"
    path.write_bytes(os.urandom(10000))
    code = textwrap.dedent(f"""
        import linuxaio, mmap, os, random, select
        assert linuxaio.engine() == 'uring', linuxaio.engine_info()
        fd = os.open({str(path)!r}, os.O_RDWR)
        arena = mmap.mmap(-1, 4 * 4096)
        for rnd in range(3):
            left = 20000
            def slot(i):
                buf = memoryview(arena)[i * 4096:(i + 1) * 4096]
                def done(n):
                    global left
                    assert n == 4096, n
                    left -= 1
                    if left > 0:
                        linuxaio.aio_write(fd, random.randrange(2) * 4096, 4096, buf, 0, done)
                linuxaio.aio_write(fd, random.randrange(2) * 4096, 4096, buf, 0, done)
            for i in range(4):
                slot(i)
            while linuxaio.nreqs():
                r, _, _ = select.select([linuxaio.poll_fileno()], [], [], 10)
                assert r, f"round {{rnd}}: {{linuxaio.nreqs()}} requests and no wake-up in 10 s"
                linuxaio.poll_cb()
        print("ok")
    """)
    proc, _ = run_python(code, timeout=240, env={"LINUXAIO_ENGINE": "uring"})
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr
