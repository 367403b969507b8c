"""A cancelled copy, at every stage a cancel can hit: no fd leaked (counted
in /proc/self/fd), and no partial destination where shutil would leave none.

aio_copy is ONE engine request (copy_file: open, create, data, metadata,
close): cancelled before it starts, it never runs and creates nothing; once
running it cannot be stopped half-way (a worker is in a syscall), so it
finishes, the whole copy stays and the callback is not called.  Stages
inside it are held deterministically with a FIFO as the destination (its
open waits for a reader; its data waits while the pipe is full).

The awaited copy (linuxaio.shutil.copy2/copyfile) is a wave of batches:
open the sources, open the destinations, copy_data (the data and all the
metadata, xattrs included, by one request), close.  Each stage's request is
held in the queue (max_parallel(0), inline attempts off) while the task is
cancelled there.  What is left is what shutil leaves when interrupted at
the same point: nothing before the destination's open; after it, the
destination (a cancel during copy_data waits for it: the whole copy)."""
import asyncio
import os
import select
import stat
import subprocess
import sys
import textwrap
import time

import pytest

import linuxaio
import linuxaio.shutil as ash

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINUXAIO_HOME = os.path.dirname(os.path.dirname(os.path.abspath(linuxaio.__file__)))


def nfds():
    return len(os.listdir("/proc/self/fd"))


def wait_taken():
    """Until no request waits in the queue: a worker has taken it."""
    deadline = time.monotonic() + 60
    while linuxaio.nready():
        assert time.monotonic() < deadline, "the request never started"
        time.sleep(0.001)


@pytest.fixture
def src(tmp_path):
    p = tmp_path / "src"
    p.write_bytes(os.urandom(1 << 20))       # more than a pipe holds
    os.chmod(p, 0o640)
    return p


def test_aio_copy_cancelled_before_it_starts_creates_nothing(tmp_path, src):
    before = nfds()
    got = []
    linuxaio.max_parallel(0)
    try:
        grp = linuxaio.aio_copy(str(src), str(tmp_path / "dst"), got.append)
        grp.cancel()
    finally:
        linuxaio.max_parallel(4)
    linuxaio.flush()
    assert got == [] and not os.path.lexists(tmp_path / "dst") and nfds() == before


def test_aio_copy_cancelled_after_the_source_open_leaks_nothing(tmp_path, src):
    """The worker has the source open and waits in the destination's open
    (a FIFO with no reader yet): cancelled there, the copy finishes once a
    reader comes, with all its data, and closes both fds itself."""
    fifo = tmp_path / "dst"
    os.mkfifo(fifo, 0o600)
    before = nfds()
    got = []
    grp = linuxaio.aio_copy(str(src), str(fifo), got.append)
    wait_taken()
    grp.cancel()
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    data = drain(reader)
    os.close(reader)
    linuxaio.flush()
    assert got == [] and nfds() == before
    assert data == src.read_bytes()            # the whole copy, never a part


def test_aio_copy_cancelled_during_the_data_copies_all_then_the_metadata(tmp_path, src):
    """The worker is in the data copy (the pipe is full): cancelled there,
    it finishes the data, then the metadata (the mode shows it ran), and
    closes its fds; the callback is not called."""
    fifo = tmp_path / "dst"
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    before = nfds()
    got = []
    grp = linuxaio.aio_copy(str(src), str(fifo), got.append)
    wait_taken()
    select.select([reader], [], [], 60)        # data arrived: the copy is under way
    grp.cancel()
    data = drain(reader)
    linuxaio.flush()
    os.close(reader)
    assert got == [] and nfds() == before - 1
    assert data == src.read_bytes()
    assert stat.S_IMODE(os.stat(fifo).st_mode) == 0o640      # the metadata step ran


def test_aio_copy_that_fails_mid_way_removes_its_destination(tmp_path, src):
    """A failure after the destination was created (the reader goes away:
    EPIPE) removes it, as IO::AIO documents."""
    fifo = tmp_path / "dst"
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    before = nfds()
    got = []
    linuxaio.aio_copy(str(src), str(fifo), got.append)
    wait_taken()
    select.select([reader], [], [], 60)
    os.close(reader)
    linuxaio.flush()
    assert len(got) == 1 and isinstance(got[0], BrokenPipeError)
    assert not os.path.lexists(fifo) and nfds() == before - 1


def drain(fd):
    out = []
    while True:
        select.select([fd], [], [], 60)
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            continue
        if not chunk:
            return b"".join(out)
        out.append(chunk)


# ---- the awaited copy (linuxaio.shutil), a stage at a time ----

STAGES = ["stat", "open_stat", "open", "copy_data"]


@pytest.mark.aio_timeout(120)      # a child interpreter: slow to start on a loaded machine
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("fn", ["copy2", "copyfile"])
def test_awaited_copy_cancelled_at_each_stage_leaks_no_fd(tmp_path, src, stage, fn):
    """Run in a child (it turns inline attempts off and holds the queue)."""
    code = textwrap.dedent("""
        import asyncio, os, sys
        sys.path.insert(0, sys.argv[1])
        import linuxaio, linuxaio.shutil as ash
        from linuxaio import _tree
        stage, fn, src, dst = sys.argv[2:6]
        linuxaio.inline(False)          # every request goes through the queue
        hit = []
        real_batch, real_to_end = _tree.batch, _tree._run_to_end

        def hold(name):
            if name == stage and not hit:
                hit.append(name)
                linuxaio.max_parallel(0)   # it stays queued while cancelled

        async def batch(name, args, *a, **kw):
            hold(name)
            return await real_batch(name, args, *a, **kw)

        async def to_end(submit, *args, **kw):
            hold(getattr(submit, "__name__", ""))
            return await real_to_end(submit, *args, **kw)
        _tree.batch, _tree._run_to_end = batch, to_end
        real_stat_many = ash._aos.stat_many

        async def stat_many(*a, **kw):
            hold("stat")
            return await real_stat_many(*a, **kw)
        ash._aos.stat_many = stat_many

        def nfds():
            return len(os.listdir("/proc/self/fd"))

        async def main():
            before = nfds()
            task = asyncio.ensure_future(getattr(ash, fn)(src, dst))
            while not hit:
                await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert linuxaio.nready() >= 1, "the stage's request is not queued"
            task.cancel()
            linuxaio.min_parallel(4)    # (max_parallel only lowers the limit)
            try:
                await task
                outcome = "finished"
            except asyncio.CancelledError:
                outcome = "cancelled"
            linuxaio.flush()
            size = os.path.getsize(dst) if os.path.exists(dst) else None
            print(outcome, before, nfds(), size)
        asyncio.run(main())
    """)
    dst = str(tmp_path / "dst")
    out = subprocess.run([sys.executable, "-c", code, LINUXAIO_HOME, stage, fn, str(src), dst],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    outcome, before, after, size = out.stdout.split()
    assert outcome == "cancelled"
    assert before == after, f"{int(after) - int(before)} fd(s) leaked"
    if stage in ("stat", "open_stat", "open"):
        # cancelled before the destination's open ran: nothing created, as
        # shutil interrupted before its open(dst, "wb")
        assert size == "None"
    else:
        # copy_data runs to its end (its fds are closed only then): the
        # whole copy, as shutil would have made had it not been interrupted
        assert int(size) == os.path.getsize(src)
        assert (tmp_path / "dst").read_bytes() == src.read_bytes()
