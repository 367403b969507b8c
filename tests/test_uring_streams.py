"""Streams (pipes, sockets, FIFOs) give the same results and errors whichever
backend runs a request.

pread(2) and pwrite(2) of a stream fail with ESPIPE (the kernel's FMODE_PREAD
is off), and a worker thread runs exactly those.  io_uring ignores the offset
of a stream and reads or writes it, so the ring asks the fd first and
finishes such a request with ESPIPE, unrun: the bytes stay in the pipe.  A
read at the file position (offset None) of a stream reads it on either
backend.  The tests run on whichever engine this process has; one runs the
same script under LINUXAIO_ENGINE=threads and =uring and compares."""
import asyncio
import errno
import json
import os
import socket

import pytest

import linuxaio
import linuxaio._engine as _engine
from aio_helpers import run_python, wait_until

ring = linuxaio.engine() == "uring"
needs_ring = pytest.mark.skipif(
    not ring, reason="no io_uring ring in this process: %s" % linuxaio.engine_info()["reason"])


@pytest.fixture
def stream(tmp_path, request):
    """make(kind) -> (read fd, write fd) of a stream of that kind."""
    fds = []

    def make(kind):
        if kind == "pipe":
            r, w = os.pipe()
        elif kind == "packet-pipe":   # O_DIRECT (packet mode), which F_GETFL does not report
            r, w = os.pipe2(os.O_DIRECT)
        elif kind == "socket":
            a, b = socket.socketpair()
            r, w = a.detach(), b.detach()
        elif kind == "fifo":
            path = tmp_path / f"fifo{len(fds)}"
            os.mkfifo(path)
            r = os.open(path, os.O_RDWR)   # reader and writer: no open blocks
            w = os.open(path, os.O_WRONLY)
        else:
            raise AssertionError(kind)
        fds.extend((r, w))
        return r, w
    yield make
    for fd in fds:
        os.close(fd)


KINDS = ["pipe", "socket", "fifo", "packet-pipe"]


def espipe(got):
    return isinstance(got, OSError) and got.errno == errno.ESPIPE


def refused():
    return linuxaio.engine_info()["ring_stats"]["refused_streams"] if ring else 0


@pytest.mark.parametrize("kind", KINDS)
def test_positioned_read_of_a_stream_fails_with_espipe_and_reads_nothing(stream, kind):
    r, w = stream(kind)
    os.write(w, b"data")
    with pytest.raises(OSError) as ref:
        os.pread(r, 4, 0)   # what a worker gets
    assert ref.value.errno == errno.ESPIPE
    got = []
    buf = linuxaio.aligned_buffer(4096)
    linuxaio.aio_read(r, 0, 4096, buf, 0, got.append)
    linuxaio.flush()
    assert len(got) == 1 and espipe(got[0]), got
    assert os.read(r, 4096) == b"data"   # still in the stream


@pytest.mark.parametrize("kind", ["pipe", "socket", "fifo"])
def test_awaited_positioned_reads_of_a_stream_fail_with_espipe(stream, kind):
    r, w = stream(kind)
    os.write(w, b"abcdef")

    async def main():
        errs = []
        for call in (lambda: linuxaio.os.pread(r, 3, 0),
                     lambda: linuxaio.os.preadinto(r, bytearray(3), 5),
                     lambda: linuxaio.os.preadv(r, [bytearray(2), bytearray(2)], 0)):
            try:
                errs.append(await call())
            except OSError as e:
                errs.append(e)
        return errs
    errs = asyncio.run(main())
    assert all(espipe(e) for e in errs), errs
    assert os.read(r, 16) == b"abcdef"


@pytest.mark.parametrize("kind", KINDS)
def test_positioned_write_of_a_stream_fails_with_espipe_and_writes_nothing(stream, kind):
    r, w = stream(kind)
    with pytest.raises(OSError) as ref:
        os.pwrite(w, b"x", 0)
    assert ref.value.errno == errno.ESPIPE
    got = []
    buf = linuxaio.aligned_buffer(4096)
    buf[:5] = b"hello"
    linuxaio.aio_write(w, 0, 4096, buf, 0, got.append)
    linuxaio.flush()
    assert len(got) == 1 and espipe(got[0]), got
    os.set_blocking(r, False)
    with pytest.raises(BlockingIOError):
        os.read(r, 1)   # nothing was written


@pytest.mark.parametrize("kind", ["pipe", "socket", "fifo"])
def test_read_at_the_file_position_of_a_stream_reads_it(stream, kind):
    r, w = stream(kind)
    os.write(w, b"stream")
    got = []
    buf = bytearray(6)
    linuxaio.aio_read(r, None, 6, buf, 0, got.append)
    linuxaio.flush()
    assert got == [6] and buf == b"stream"


def test_a_batch_mixing_a_file_and_a_pipe_gives_each_its_own_result(stream, tmp_path):
    # The ring asks about an fd once per batch it hands over: alternating
    # fds must each get their own answer.
    r, w = stream("pipe")
    os.write(w, b"p" * 64)
    path = tmp_path / "f"
    data = os.urandom(64 * 512)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        linuxaio.min_parallel(64)
        big = bytearray(64 * 512)
        out = []
        for i in range(64):
            f = fd if i % 2 == 0 else r
            linuxaio.aio_read(f, i * 512, 512, big, i * 512, lambda res, i=i: out.append((i, res)))
        linuxaio.flush()
        out.sort(key=lambda t: t[0])
        for i, res in out:
            if i % 2 == 0:
                assert res == 512 and big[i * 512:(i + 1) * 512] == data[i * 512:(i + 1) * 512], i
            else:
                assert espipe(res), (i, res)
        assert len(out) == 64
        assert os.read(r, 100) == b"p" * 64
    finally:
        os.close(fd)


def test_slurp_of_a_fifo_fails_with_espipe(stream, tmp_path):
    r, w = stream("fifo")
    os.write(w, b"fifo data")
    path = str(tmp_path / "fifo0")
    got = []
    linuxaio.aio_slurp(path, 0, None, got.append)
    linuxaio.flush()
    assert len(got) == 1 and espipe(got[0]), got
    with pytest.raises(OSError) as e:
        asyncio.run(linuxaio.slurp(path))
    assert e.value.errno == errno.ESPIPE
    assert asyncio.run(linuxaio.slurp(path, length=0)) == b""   # no read, no error (as a worker's)
    assert os.read(r, 100) == b"fifo data"


@needs_ring
def test_the_ring_refuses_positioned_stream_reads_itself(stream):
    # Under uring every small read goes to the ring; under auto a small
    # read of an fd that has not missed the page cache runs on the threads
    # (a pipe has no cache to miss), whose pread fails the same way.
    r, w = stream("packet-pipe")
    on_ring = linuxaio.engine_info()["mode"] == "uring"
    before = linuxaio.engine_info()["ring_stats"]
    got = []
    linuxaio.aio_read(r, 0, 4096, linuxaio.aligned_buffer(4096), 0, got.append)
    linuxaio.flush()
    after = linuxaio.engine_info()["ring_stats"]
    assert len(got) == 1 and espipe(got[0])
    assert after["refused_streams"] - before["refused_streams"] == (1 if on_ring else 0)
    assert after["started"] == before["started"]   # never handed to the kernel


@needs_ring
def test_stream_reads_at_the_file_position_wait_on_the_ring_when_asked(stream):
    r, w = stream("pipe")
    was = _engine._ring_stream_reads(True)
    try:
        before = linuxaio.engine_info()["ring_stats"]["started"]
        got = []
        buf = bytearray(4)
        linuxaio.aio_read(r, None, 4, buf, 0, got.append)
        # the ring thread hands it to the kernel, where it waits for data
        wait_until(lambda: linuxaio.engine_info()["ring_stats"]["started"] - before == 1, 5,
                   "the ring to start the pipe read")
        linuxaio.poll_cb()
        assert got == [] and linuxaio.nreqs() == 1 and linuxaio.nready() == 0
        os.write(w, b"ring")
        linuxaio.flush()
        assert got == [4] and buf == b"ring"
    finally:
        _engine._ring_stream_reads(was)


def test_ring_stream_reads_switch():
    was = _engine._ring_stream_reads()
    assert was is False   # the default: reads at the file position run on threads
    assert _engine._ring_stream_reads(True) is False
    assert _engine._ring_stream_reads() is True
    assert _engine._ring_stream_reads(was) is True
    with pytest.raises(TypeError):
        _engine._ring_stream_reads(1, 2)


SAME_ON_BOTH = r"""
import asyncio, errno, json, os, socket, tempfile, linuxaio
out = {"engine": linuxaio.engine()}
def res(v):
    return ["OSError", v.errno] if isinstance(v, OSError) else v
r, w = os.pipe()
os.write(w, b"abcd")
got = []
linuxaio.aio_read(r, 0, 4, bytearray(4), 0, got.append)
linuxaio.aio_write(w, 0, 1, b"z", 0, got.append)
pr, pw = os.pipe2(os.O_DIRECT)
linuxaio.aio_read(pr, 0, 4096, linuxaio.aligned_buffer(4096), 0, got.append)
a, b = socket.socketpair()
b.send(b"s")
linuxaio.aio_read(a.fileno(), 4096, 1, bytearray(1), 0, got.append)
linuxaio.flush()
out["positioned"] = [res(g) for g in got]
got = []
buf = bytearray(4)
linuxaio.aio_read(r, None, 4, buf, 0, got.append)
linuxaio.flush()
out["at_position"] = [res(g) for g in got] + [bytes(buf).decode()]
d = tempfile.mkdtemp()
fifo = os.path.join(d, "f")
os.mkfifo(fifo)
keep = os.open(fifo, os.O_RDWR)
os.write(keep, b"x")
got = []
linuxaio.aio_slurp(fifo, 0, None, got.append)
linuxaio.flush()
out["slurp_fifo"] = [res(g) for g in got]
print(json.dumps(out))
"""


def test_the_same_script_gives_the_same_results_on_threads_and_on_the_ring():
    outs = {}
    for engine in ("threads", "uring"):
        proc, _ = run_python(SAME_ON_BOTH, timeout=60, env={"LINUXAIO_ENGINE": engine})
        if engine == "uring" and proc.returncode != 0 and "io_uring" in proc.stderr:
            pytest.skip("no io_uring ring here: " + proc.stderr.strip().splitlines()[-1])
        assert proc.returncode == 0, proc.stderr
        outs[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outs["threads"]["engine"] == "threads" and outs["uring"]["engine"] == "uring"
    del outs["threads"]["engine"], outs["uring"]["engine"]
    assert outs["threads"] == outs["uring"]
    assert outs["threads"]["positioned"] == [["OSError", errno.ESPIPE]] * 4
    assert outs["threads"]["at_position"] == [4, "abcd"]
    assert outs["threads"]["slurp_fifo"] == [["OSError", errno.ESPIPE]]
