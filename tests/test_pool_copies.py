"""The thread pool runs at most one large copy per CPU at once (pool.h).

A read or write of 256 KiB or more that is not O_DIRECT is a "copy": its run
is the CPU copying bytes, and more of them than CPUs only share the CPUs.
The copies beyond the limit wait queued; other requests behind them start;
while the requests block (a pipe, a cold file), copies start as any request.
Large reads of empty pipes hold the workers here (a pipe read returns what
was written, so each is released by a write).  Each test runs in a child
interpreter: a stall there is a timeout, not a hung suite.
"""
import textwrap

from aio_helpers import TEACH_BLOCKING, run_python

PRELUDE = """
import linuxaio, os, time
from linuxaio import _engine
MiB = 1 << 20
done = {}

def read_pipe(k, rfd, size=MiB):
    linuxaio.aio_read(rfd, None, size, bytearray(size), 0,
                      lambda res, k=k: done.__setitem__(k, res))

def wait(pred, what):
    deadline = time.monotonic() + 10
    while not pred():
        linuxaio.poll_cb()
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}: {done} "
                             f"nready={linuxaio.nready()} copies={_engine._copies()}")
        time.sleep(0.001)
"""


def run(body, env=None):
    proc, _ = run_python(PRELUDE + TEACH_BLOCKING + textwrap.dedent(body), timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout.split()


def test_the_copy_limit_is_the_cpus_this_process_may_use():
    out = run("""
        print(_engine._max_copies(), len(os.sched_getaffinity(0)))
        """)
    assert out[0] == out[1]


def test_copies_beyond_the_limit_wait_while_other_requests_pass_them():
    out = run("""
        _engine._max_copies(2)
        linuxaio.min_parallel(4)
        pipes = [os.pipe() for _ in range(3)]
        for k, (rfd, _) in enumerate(pipes):
            read_pipe(k, rfd)
        wait(lambda: _engine._copies()[0] == 2, "two copies running")
        # The third read's data is there; only the limit keeps it from running.
        os.write(pipes[2][1], b"third")
        linuxaio.aio_nop(lambda res: done.__setitem__("nop", res))
        wait(lambda: "nop" in done, "the nop, queued behind the third copy")
        # A worker took the nop, queued after the third read: it passed it over.
        print(2 in done, linuxaio.nready(), *_engine._copies())
        os.write(pipes[0][1], b"first")
        wait(lambda: 0 in done and 2 in done, "the first read, then the third")
        os.write(pipes[1][1], b"second")
        linuxaio.flush()
        # (a worker counts its copy out just after handing over the result)
        wait(lambda: _engine._copies()[0] == 0, "the copies counted out")
        print(done[0], done[1], done[2], *_engine._copies())
        """)
    assert out[:4] == ["False", "1", "2", "2"]      # third not run; 2 copies, peak 2
    assert out[4:] == ["5", "6", "5", "0", "2"]     # all read their bytes; peak stayed 2


def test_reads_below_256_kib_are_not_copies():
    out = run("""
        _engine._max_copies(1)
        linuxaio.min_parallel(4)
        pipes = [os.pipe() for _ in range(3)]
        for k, (rfd, _) in enumerate(pipes):
            read_pipe(k, rfd, size=256 * 1024 - 1)
        wait(lambda: linuxaio.nready() == 0, "all three reads running")
        print(*_engine._copies())
        for _, wfd in pipes:
            os.write(wfd, b"x")
        linuxaio.flush()
        print(sorted(done.values()))
        """)
    assert out == ["0", "0", "[1,", "1,", "1]"]


def test_copies_that_block_are_not_held_back():
    """A copy that waits (a cold file, here a pipe) leaves the CPU free: once
    the recent requests spent most of their time blocked, copies start as
    any request would, however many run."""
    out = run("""
        _engine._max_copies(1)
        linuxaio.min_parallel(4)
        teach(24, 0.003)   # reads of pipes fed a few ms later: requests block
        pipes = [os.pipe() for _ in range(3)]
        for k, (rfd, _) in enumerate(pipes):
            read_pipe(k, rfd)
        wait(lambda: linuxaio.nready() == 0, "all three copies running")
        print(*_engine._copies())
        for _, wfd in pipes:
            os.write(wfd, b"xy")
        linuxaio.flush()
        print(sorted(done.values()))
        """)
    assert out == ["3", "3", "[2,", "2,", "2]"]


def test_max_parallel_1_keeps_requests_in_order():
    """With one thread a copy never waits for a slot, so nothing passes it."""
    out = run("""
        linuxaio.max_parallel(1)
        rfd, wfd = os.pipe()
        order = []
        linuxaio.aio_read(rfd, None, MiB, bytearray(MiB), 0, lambda res: order.append("copy"))
        linuxaio.aio_nop(lambda res: order.append("nop"))
        os.write(wfd, b"x")
        linuxaio.flush()
        print(*order)
        """)
    assert out == ["copy", "nop"]


# ---- the eventfd, written after the result queue's lock is let go ----

def test_the_poll_fd_does_not_stay_readable_after_bursts():
    """Workers write the eventfd after letting the result queue's lock go; a
    poll that takes the results and settles before such a write lands must
    not leave the fd readable with nothing to take (a loop would wake for
    ever): at most one more poll clears it.  Many bursts of reads finishing
    on several workers at once, each drained by select + poll_cb."""
    out = run("""
        import select
        linuxaio.min_parallel(4)
        pfd = linuxaio.poll_fileno()
        fd = os.open(__import__("sys").executable, os.O_RDONLY)
        bufs = [bytearray(256 * 1024) for _ in range(4)]
        empty = left_readable = 0
        for burst in range(300):
            for b in bufs:
                linuxaio.aio_read(fd, 0, len(b), b, 0, None)
            while linuxaio.nreqs():
                select.select([pfd], [], [], 5)
                if not linuxaio.poll_cb():
                    empty += 1
            for _ in range(1000):   # a write on its way lands within moments
                if not select.select([pfd], [], [], 0)[0]:
                    break
                linuxaio.poll_cb()
                time.sleep(0.001)
            else:
                left_readable += 1
        # an empty wake needs a write that landed after a settle: one per read at most
        # (with a settle that left such a write unread, polls woke by the 100,000)
        print(left_readable, empty <= 300 * 4)
        """)
    assert out == ["0", "True"]


# ---- a copy's result may leave the poller's wake-up to the next result ----

def test_a_result_owed_a_wake_up_gets_it_though_the_next_copy_hangs():
    """A copy done while another copy waits for the workers leaves the
    eventfd unwritten: the next result writes it (pool.c, complete_copy).
    Should the next copies never end (here: a large read of a pipe nobody
    writes), a sleeping worker standing by writes it when it wakes.  Each
    round: a cached 32 MiB read, and once it runs a pipe read queued behind it
    (one copy at a time); select() on the poll fd alone must then see the
    file's result while the pipe read still waits.  Rounds go on until one
    left the wake-up owed (the file's read may end before the pipe's is
    queued)."""
    # The threads' behaviour: with LINUXAIO_ENGINE=uring the file's read
    # goes to the ring, where it is no copy (CI's uring run failed so).
    out = run("""
        import select, tempfile
        _engine._max_copies(1)
        linuxaio.min_parallel(4)
        linuxaio.max_blocking_parallel(4)   # no growth: the pipe reads do not count as blocking
        pfd = linuxaio.poll_fileno()
        size = 32 * MiB
        with tempfile.TemporaryFile() as f:
            f.write(os.urandom(size)); f.flush()
            fd = f.fileno()
            want = os.pread(fd, size, 0)   # cached
            # Three workers, held; two let go fall asleep while the third
            # stays held: in flight all along, so the sleepers stand by (armed).
            holds = [os.pipe() for _ in range(3)]
            for k, (rfd, _) in enumerate(holds):
                read_pipe(k, rfd, size=1)
            wait(lambda: linuxaio.nready() == 0, "the held reads running")
            for k in (1, 2):
                os.write(holds[k][1], b"x")
            wait(lambda: 1 in done and 2 in done, "two held reads let go")
            rounds = seen = 0
            while _engine._copies_owed() == 0 and rounds < 50:
                rounds += 1
                _engine._max_copies(1)   # the peak back to 0
                time.sleep(0.02)   # workers done spinning, asleep
                rfd, wfd = os.pipe()
                buf = bytearray(size)
                linuxaio.aio_read(fd, 0, size, buf, 0, lambda res: done.__setitem__("file", res))
                wait(lambda: _engine._copies()[1] == 1, "the file's read started")
                read_pipe("pipe", rfd)
                while "file" not in done:
                    if not select.select([pfd], [], [], 30)[0]:
                        raise SystemExit("the file's result never woke the poller")
                    linuxaio.poll_cb()
                seen += "pipe" not in done and done.pop("file") == size and buf == want
                os.write(wfd, b"x")
                wait(lambda: "pipe" in done, "the pipe read")
                done.pop("pipe")
                os.close(rfd); os.close(wfd)
            os.write(holds[0][1], b"x")
            linuxaio.flush()
        print(rounds == seen, _engine._copies_owed() > 0, done[0], rounds)
        """, env={"LINUXAIO_ENGINE": "threads"})
    assert out[:3] == ["True", "True", "1"]
