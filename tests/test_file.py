"""linuxaio.open(): async file objects, checked against the builtin open() doing the same.

Every test body is one coroutine run under asyncio, uvloop and trio (the
``run`` fixture).  The builtin file object is the reference: results,
exceptions, text-mode tell() cookies and the bytes left on disk must agree.
"""
import asyncio
import contextlib
import gc
import io
import os
import random
import tempfile
import time

import pytest

import linuxaio
from linuxaio import _file

from async_helpers import HeldWorker

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

LOOPS = ["asyncio", "uvloop", "trio"]
NEWLINES = [None, "", "\n", "\r", "\r\n"]


def run_in(loop, afn, *args):
    if loop == "asyncio":
        return asyncio.run(afn(*args))
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run(afn(*args))
    trio = pytest.importorskip("trio")
    return trio.run(afn, *args)


@pytest.fixture(params=LOOPS)
def run(request):
    """run(afn, *args): afn(*args) under asyncio, uvloop or trio."""
    loop = request.param
    if loop != "asyncio":
        pytest.importorskip(loop)

    def runner(afn, *args):
        return run_in(loop, afn, *args)
    runner.loop = loop
    return runner


def in_asyncio():
    return asyncio._get_running_loop() is not None


async def sleep(seconds):
    if in_asyncio():
        await asyncio.sleep(seconds)
    else:
        import trio
        await trio.sleep(seconds)


async def drained(timeout=5.0):
    deadline = time.monotonic() + timeout
    while linuxaio.nreqs():
        assert time.monotonic() < deadline, "the engine did not drain"
        await sleep(0.002)


async def gather(*afns):
    if in_asyncio():
        return list(await asyncio.gather(*(f() for f in afns)))
    import trio
    out = [None] * len(afns)

    async def one(i, f):
        out[i] = await f()
    async with trio.open_nursery() as nursery:
        for i, f in enumerate(afns):
            nursery.start_soon(one, i, f)
    return out


async def cancel_when_queued(afn, release=lambda: None):
    """Start afn() in a task, cancel it once it has a request waiting in the
    engine's queue, call release() (what holds the queue), and wait for it:
    ("cancelled", None) or ("result", value)."""
    if in_asyncio():
        task = asyncio.ensure_future(afn())
        while not linuxaio.nready() and not task.done():
            await asyncio.sleep(0.001)
        task.cancel()
        release()
        try:
            return "result", await task
        except asyncio.CancelledError:
            return "cancelled", None
    import trio
    out = []
    scope = trio.CancelScope()

    async def child():
        with scope:
            out.append(("result", await afn()))
        if scope.cancelled_caught:
            out.append(("cancelled", None))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
        while not linuxaio.nready() and not out:
            await trio.sleep(0.001)
        scope.cancel()
        release()
    return out[0]


@contextlib.contextmanager
def blocked_engine():
    """One worker thread, blocked in open() of a FIFO until the HeldWorker
    it yields is released (cancel_when_queued does it, once it cancelled):
    the next request waits in the queue however slow the machine (an
    aio_busy's fixed time could run out first).  Inline-first awaits off
    meanwhile: a cached one would not wait."""
    linuxaio.inline(False)
    directory = tempfile.mkdtemp(prefix="linuxaio-held-")
    try:
        with HeldWorker(directory) as held:
            yield held
    finally:
        linuxaio.inline(True)
        linuxaio.min_parallel(4)
        linuxaio.max_parallel(4)
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def fd_points_to(fd, path):
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == os.path.realpath(path)
    except OSError:
        return False


def outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except Exception as e:      # noqa: BLE001 - compared with ours
        return "error", type(e)


async def aoutcome(fn, *args):
    try:
        return "ok", await fn(*args)
    except Exception as e:      # noqa: BLE001
        return "error", type(e)


def text_sample(nchars, seed, alphabet=None, line_ends=("\n", "\r\n", "\r")):
    """Text with multi-byte characters and lines of random lengths and ends."""
    rng = random.Random(seed)
    alphabet = alphabet or "abcdefghij klmnopqrstuvwxyz0123456789éüßçñ€中文日本語𝄞😀"
    out = []
    n = 0
    while n < nchars:
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        line += rng.choice(line_ends)
        out.append(line)
        n += len(line)
    return "".join(out)


# --------------------------------------------------------------- open()

BAD_ARGS = [
    dict(mode="rw"), dict(mode="rr"), dict(mode="rbt"), dict(mode="q"), dict(mode="rU"),
    dict(mode=""), dict(mode="+"), dict(mode="b"), dict(mode="bt"), dict(mode="r++"),
    dict(mode="rb", encoding="utf-8"), dict(mode="rb", errors="strict"),
    dict(mode="rb", newline=""), dict(mode="b", encoding="utf-8"),
    dict(mode="r", buffering=0), dict(mode="r", newline="x"), dict(mode="r", newline="\n\r"),
    dict(mode=1), dict(mode=None), dict(mode="r", newline=1), dict(mode="r", encoding=1),
    dict(mode="r", errors=1), dict(mode="r", buffering="x"), dict(mode="r", buffering=1.5),
    dict(mode="r", closefd=False), dict(mode="r", encoding="bogus-codec"),
    dict(mode="r", encoding="rot13"), dict(mode="r", encoding="hex"),
]


@pytest.mark.parametrize("kwargs", BAD_ARGS, ids=repr)
def test_bad_arguments_raise_like_the_builtin(tmp_path, kwargs):
    p = tmp_path / "f"
    p.write_bytes(b"data")
    with pytest.raises(Exception) as theirs:
        open(p, **kwargs).close()
    with pytest.raises(Exception) as ours:
        linuxaio.open(p, **kwargs)     # checked at the call, before any I/O
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("file", [1.5, None, [], object()], ids=repr)
def test_bad_file_argument(file):
    with pytest.raises(TypeError) as theirs:
        open(file)
    with pytest.raises(TypeError) as ours:
        linuxaio.open(file)
    assert str(ours.value) == str(theirs.value)


def test_binary_line_buffering_warns(tmp_path, run):
    p = tmp_path / "f"
    p.write_bytes(b"x")

    async def main():
        with pytest.warns(RuntimeWarning, match="line buffering"):
            opening = linuxaio.open(p, "rb", buffering=1)
        async with opening as f:
            assert await f.read() == b"x"
    run(main)


@pytest.mark.parametrize("mode,make,exc", [
    ("r", False, FileNotFoundError), ("rb", False, FileNotFoundError),
    ("x", True, FileExistsError), ("xb", True, FileExistsError),
    ("r", "dir", IsADirectoryError), ("rb", "dir", IsADirectoryError),
    ("w", "dir", IsADirectoryError), ("r+b", "dir", IsADirectoryError),
])
def test_open_errors_like_the_builtin(tmp_path, run, mode, make, exc):
    p = tmp_path / "f"
    if make == "dir":
        p.mkdir()
    elif make:
        p.write_bytes(b"")
    with pytest.raises(exc) as theirs:
        open(p, mode)

    async def main():
        before = len(os.listdir("/proc/self/fd"))
        with pytest.raises(exc) as ours:
            await linuxaio.open(p, mode)
        assert len(os.listdir("/proc/self/fd")) == before    # no fd left behind
        return ours.value
    ours = run(main)
    assert (ours.errno, ours.filename) == (theirs.value.errno, theirs.value.filename)


MODES = ["r", "rb", "r+", "r+b", "rb+", "w", "wb", "w+", "w+b", "a", "ab", "a+", "a+b",
         "x", "xb", "x+", "rt", "wt+"]


@pytest.mark.parametrize("mode", MODES)
def test_attributes_like_the_builtin(tmp_path, run, mode):
    p = tmp_path / "f"

    def fresh():
        if "x" in mode:
            p.unlink(missing_ok=True)
        else:
            p.write_bytes(b"one\ntwo\r\n")
    fresh()
    with open(p, mode) as g:
        want = dict(name=g.name, mode=g.mode, readable=g.readable(), writable=g.writable(),
                    seekable=g.seekable(), tell=g.tell(),
                    text=[getattr(g, a, None) for a in ("encoding", "errors", "newlines",
                                                        "line_buffering")])
    fresh()

    async def main():
        f = await linuxaio.open(p, mode)
        try:
            got = dict(name=f.name, mode=f.mode, readable=f.readable(), writable=f.writable(),
                       seekable=f.seekable(), tell=await f.tell(),
                       text=[getattr(f, a, None) for a in ("encoding", "errors", "newlines",
                                                           "line_buffering")])
            assert f.closed is False
            assert os.fstat(f.fileno()).st_ino == os.stat(p).st_ino
            assert await f.isatty() is False
            if "b" not in mode:
                assert f.buffer.fileno() == f.fileno()
            assert repr(str(p)) in repr(f) and repr(f.mode) in repr(f)
        finally:
            await f.aclose()
        assert f.closed is True
        await f.aclose()                        # closing twice is fine
        with pytest.raises(ValueError):
            f.fileno()
        return got
    assert run(main) == want


def test_await_and_async_with(tmp_path, run):
    p = tmp_path / "f"
    p.write_text("hello")

    async def main():
        f = await linuxaio.open(p)
        assert await f.read() == "hello"
        await f.close()                          # close is aclose
        assert f.closed
        async with linuxaio.open(p, "rb") as g:
            assert await g.read() == b"hello"
        assert g.closed
        async with await linuxaio.open(p, "rb") as h:   # a file is its own context manager
            assert await h.read(2) == b"he"
        assert h.closed
    run(main)


def test_fd_opener_and_closefd(tmp_path, run):
    p = tmp_path / "f"
    p.write_bytes(b"abc\ndef\n")
    calls = []

    def opener(path, flags):
        calls.append((path, flags))
        return os.open(path, flags)

    async def main():
        async with linuxaio.open(p, "rb", opener=opener) as f:
            assert await f.readline() == b"abc\n"
        assert calls and calls[0][0] == str(p) and calls[0][1] & os.O_CLOEXEC

        fd = os.open(p, os.O_RDONLY)
        async with linuxaio.open(fd, "rb", closefd=False) as f:
            assert f.name == fd
            assert await f.read() == b"abc\ndef\n"
        os.lseek(fd, 0, 0)                          # still open (and at its end)
        async with linuxaio.open(fd, "r") as f:     # closefd=True: closes it
            assert await f.read() == "abc\ndef\n"
        await drained()                 # (read-only: the close is not awaited)
        with pytest.raises(OSError):
            os.fstat(fd)

        async def async_opener(path, flags):
            return os.open(path, flags)
        async with linuxaio.open(p, "rb", opener=async_opener) as f:
            assert await f.read(3) == b"abc"
        with pytest.raises(ValueError, match="opener returned -1"):
            await linuxaio.open(p, opener=lambda path, flags: -1)
        with pytest.raises(TypeError, match="expected integer from opener"):
            await linuxaio.open(p, opener=lambda path, flags: "x")
    run(main)


# ------------------------------------------------------- binary, vs builtin

def binary_data(n, seed=1):
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        out += bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))) + b"\n"
    return bytes(out[:n])


@pytest.mark.parametrize("buffering", [-1, 0, 7, 4096])
def test_binary_reads_like_the_builtin(tmp_path, run, buffering):
    data = binary_data(300_000)          # bigger than any buffer
    p = tmp_path / "f"
    p.write_bytes(data)
    rng = random.Random(buffering)
    ops = []
    for _ in range(400):
        kind = rng.choice(["read", "readline", "readinto", "seek", "tell", "readlines", "big"])
        if kind == "read":
            ops.append(("read", rng.choice([0, 1, 5, 100, 4095, 4096, 4097, 70000])))
        elif kind == "readline":
            ops.append(("readline", rng.choice([-1, -1, 0, 3, 200])))
        elif kind == "readinto":
            ops.append(("readinto", rng.choice([1, 100, 5000, 100_000])))
        elif kind == "seek":
            whence = rng.choice([0, 1, 2])
            ops.append(("seek", rng.randint(-400_000, 400_000) if whence else rng.randint(0, 310_000),
                        whence))
        elif kind == "readlines":
            ops.append(("readlines", rng.choice([1, 500])))
        elif kind == "big":
            ops.append(("read", rng.choice([-1, None, 200_000])))
        else:
            ops.append(("tell",))
    g = open(p, "rb", buffering=buffering)
    want = []
    for op in ops:
        if op[0] == "readinto":
            buf = bytearray(op[1])
            want.append((outcome(g.readinto, buf), bytes(buf)))
        else:
            want.append(outcome(getattr(g, op[0]), *op[1:]))
    g.close()

    async def main():
        got = []
        async with linuxaio.open(p, "rb", buffering=buffering) as f:
            for op in ops:
                if op[0] == "readinto":
                    buf = bytearray(op[1])
                    got.append((await aoutcome(f.readinto, buf), bytes(buf)))
                else:
                    got.append(await aoutcome(getattr(f, op[0]), *op[1:]))
        return got
    got = run(main)
    for op, a, b in zip(ops, got, want):
        assert a == b, op


@pytest.mark.parametrize("buffering", [-1, 0, 16])
def test_binary_writes_like_the_builtin(tmp_path, run, buffering):
    base = binary_data(20_000, seed=2)
    ref, ours = tmp_path / "ref", tmp_path / "ours"
    rng = random.Random(buffering)
    ops = []
    for _ in range(300):
        kind = rng.choice(["write", "write", "seek", "read", "truncate", "flush", "tell",
                           "writelines", "big"])
        if kind == "write":
            ops.append(("write", rng.randbytes(rng.choice([0, 1, 10, 15, 16, 17, 300]))))
        elif kind == "big":
            ops.append(("write", rng.randbytes(rng.choice([70_000, 100]))))
        elif kind == "writelines":
            ops.append(("writelines", [rng.randbytes(3) + b"\n" for _ in range(3)]))
        elif kind == "seek":
            ops.append(("seek", rng.randint(0, 120_000), 0))
        elif kind == "read":
            ops.append(("read", rng.choice([1, 20, 5000])))
        elif kind == "truncate":
            ops.append(("truncate", rng.choice([None, rng.randint(0, 30_000)])))
        else:
            ops.append((kind,))
    for mode in ("r+b", "a+b", "wb", "ab"):
        for path in (ref, ours):
            path.write_bytes(base)
        want = []
        with open(ref, mode, buffering=buffering) as g:
            for op in ops:
                want.append(outcome(getattr(g, op[0]), *op[1:]))

        async def main():
            got = []
            async with linuxaio.open(ours, mode, buffering=buffering) as f:
                for op in ops:
                    got.append(await aoutcome(getattr(f, op[0]), *op[1:]))
            return got
        got = run(main)
        for op, a, b in zip(ops, got, want):
            assert a == b, (mode, op[0])
        assert ours.read_bytes() == ref.read_bytes(), mode


@pytest.mark.parametrize("mode", ["a+b", "ab", "r+b"])
def test_a_write_of_exactly_the_buffer_size_tells_like_the_builtin(tmp_path, run, mode):
    """3.13's builtin writes a piece of buffer_size bytes straight through
    (3.11 and 3.12 buffer it): under O_APPEND, tell() shows which."""
    for path in (tmp_path / "ref", tmp_path / "ours"):
        path.write_bytes(b"x" * 100)
    with open(tmp_path / "ref", mode, buffering=16) as g:
        g.seek(10)
        g.write(b"z" * 16)          # into the empty buffer, which it fills
        want = [g.tell()]
        g.write(b"w" * 3)
        want.append(g.tell())

    async def main():
        async with linuxaio.open(tmp_path / "ours", mode, buffering=16) as f:
            await f.seek(10)
            await f.write(b"z" * 16)
            got = [await f.tell()]
            await f.write(b"w" * 3)
            got.append(await f.tell())
        return got
    assert run(main) == want
    assert (tmp_path / "ours").read_bytes() == (tmp_path / "ref").read_bytes()


def test_read1_readinto1_peek(tmp_path, run):
    data = binary_data(200_000, seed=3)
    p = tmp_path / "f"
    p.write_bytes(data)

    async def main():
        async with linuxaio.open(p, "rb") as f:
            pos = 0
            sizes = [1, 7, -1, 100, 70_000, 65_536, 3, -1, 200_000, 5]
            for n in sizes:           # at most one raw read each, and what is there
                chunk = await f.read1(n)
                assert 0 < len(chunk) <= (f.buffer_size if n < 0 else n)
                assert chunk == data[pos:pos + len(chunk)]
                pos += len(chunk)
                assert await f.tell() == pos
                peeked = await f.peek()
                assert peeked and data[pos:].startswith(peeked)
                buf = bytearray(50)
                k = await f.readinto1(buf)
                assert 0 < k <= 50 and bytes(buf[:k]) == data[pos:pos + k]
                pos += k
            await f.seek(0, 2)
            assert await f.read1(10) == b"" and await f.peek() == b""
            assert await f.readinto1(bytearray(10)) == 0
    run(main)


def test_readinto_any_buffer(tmp_path, run):
    import array
    data = binary_data(100_000, seed=4)
    p = tmp_path / "f"
    p.write_bytes(data)

    async def main():
        for buffering in (-1, 0):
            async with linuxaio.open(p, "rb", buffering=buffering) as f:
                a = array.array("i", bytes(4000))
                assert await f.readinto(a) == 4000
                assert a.tobytes() == data[:4000]
                m = linuxaio.aligned_buffer(90_000)
                n = await f.readinto(m)       # a raw file may read less
                assert 0 < n <= 90_000 and m[:n] == data[4000:4000 + n]
                assert n == 90_000 or buffering == 0
                with pytest.raises(TypeError):
                    await f.readinto(b"immutable")
    run(main)


# ------------------------------------------------------------- text, reading

ENCODINGS = ["utf-8", "utf-16", "latin-1", "gb18030", "utf-8-sig"]


def encodable(text, encoding):
    return text.encode(encoding, "replace").decode(encoding, "replace") if encoding in (
        "latin-1",) else text


def assert_same_places(path, encoding, newline, ours, theirs, errors="strict"):
    """Our tell() cookies are the builtin's, or name the same places.

    The builtin may pick a later point with the same meaning (after a held-back
    \r, say): both cookies must then read the same with the builtin."""
    assert len(ours) == len(theirs)
    with open(path, encoding=encoding, newline=newline, errors=errors) as a, \
            open(path, encoding=encoding, newline=newline, errors=errors) as b:
        for c1, c2 in zip(ours, theirs):
            if c1 != c2:
                a.seek(c1)
                b.seek(c2)
                assert a.read(200) == b.read(200), (c1, c2)
                a.seek(c1)
                b.seek(c2)
                assert a.read() == b.read(), (c1, c2)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("newline", NEWLINES)
def test_text_lines_and_tells_like_the_builtin(tmp_path, run, encoding, newline):
    """Lines of a 150 KB file (longer than every buffer; multi-byte characters
    across buffer boundaries), a tell() before each, then seeks back to some
    of those cookies: all as the builtin does."""
    text = encodable(text_sample(60_000, seed=len(encoding) + len(newline or "N")), encoding)
    p = tmp_path / "f"
    p.write_bytes(text.encode(encoding))
    with open(p, encoding=encoding, newline=newline) as g:
        want = []
        while True:
            t = g.tell()
            line = g.readline()
            want.append((t, line))
            if not line:
                break
        targets = random.Random(5).sample(want, 40)
        reread = []
        for t, _ in targets:
            g.seek(t)
            reread.append((g.readline(), g.read(7), g.tell()))
        newlines = g.newlines

    async def main():
        async with linuxaio.open(p, encoding=encoding, newline=newline) as f:
            got = []
            while True:
                t = await f.tell()
                line = await f.readline()
                got.append((t, line))
                if not line:
                    break
            assert [line for _, line in got] == [line for _, line in want]
            assert_same_places(p, encoding, newline, [t for t, _ in got], [t for t, _ in want])
            for (t, _), expect in zip(targets, reread):
                await f.seek(t)
                assert (await f.readline(), await f.read(7), await f.tell()) == expect
            assert f.newlines == newlines
            await f.seek(0)
            assert [line async for line in f] == [line for _, line in want[:-1]]
    run(main)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-32", "gb18030"])
def test_text_read_sizes_and_tells_like_the_builtin(tmp_path, run, encoding):
    text = text_sample(30_000, seed=9)
    p = tmp_path / "f"
    p.write_bytes(text.encode(encoding))
    rng = random.Random(7)
    sizes = [rng.choice([0, 1, 2, 3, 17, 100, 8191, 8192, 9000]) for _ in range(200)]
    with open(p, encoding=encoding) as g:
        want = [(g.read(n), g.tell()) for n in sizes] + [(g.read(), g.tell())]

    async def main():
        async with linuxaio.open(p, encoding=encoding) as f:
            got = []
            for n in sizes:
                got.append((await f.read(n), await f.tell()))
            got.append((await f.read(), await f.tell()))
            return got
    assert run(main) == want


@pytest.mark.parametrize("errors", ["strict", "replace", "ignore", "surrogateescape",
                                    "backslashreplace"])
def test_text_decoding_errors_like_the_builtin(tmp_path, run, errors):
    good = text_sample(20_000, seed=11).encode("utf-8")
    bad = bytearray(good)
    rng = random.Random(3)
    for _ in range(40):   # stray bytes and truncated sequences, some at 8 KiB boundaries
        at = rng.choice([rng.randrange(len(bad)), 8191, 8192, 16383])
        bad[at:at] = rng.choice([b"\xff", b"\xe2\x82", b"\xc3", b"\xf0\x9d\x84"])
    p = tmp_path / "f"
    p.write_bytes(bytes(bad))

    def reference():
        with open(p, encoding="utf-8", errors=errors) as g:
            out = []
            while True:
                t = g.tell()
                line = g.readline()
                out.append((t, line))
                if not line:
                    return out, g.errors

    async def main():
        async with linuxaio.open(p, encoding="utf-8", errors=errors) as f:
            out = []
            while True:
                t = await f.tell()
                line = await f.readline()
                out.append((t, line))
                if not line:
                    return out, f.errors
    if errors == "strict":
        with pytest.raises(UnicodeDecodeError):
            reference()

        cut = good.index(b"\n", 20_000) + 5
        bad = good[:cut] + b"\xff" + good[cut:]      # past the first chunks
        p.write_bytes(bad)

        async def strict():
            async with linuxaio.open(p, encoding="utf-8") as f:
                lines = 0
                with pytest.raises(UnicodeDecodeError):
                    while True:
                        before = await f.tell()
                        if not await f.readline():
                            break
                        lines += 1
                # the failed readline took nothing: the position is where it was
                assert await f.tell() == before
                await f.seek(before)
                assert await f.buffer.read(4) == bytes(bad[before:before + 4])
                return lines
        assert run(strict) > 0
    else:
        got, got_errors = run(main)
        want, want_errors = reference()
        assert got_errors == want_errors
        assert [line for _, line in got] == [line for _, line in want]
        assert_same_places(p, "utf-8", None, [t for t, _ in got], [t for t, _ in want], errors)


@pytest.mark.parametrize("newline", NEWLINES)
def test_text_newline_edge_cases(tmp_path, run, newline):
    """\\r and \\r\\n split across chunk ends, a \\r at the very end, lone \\r's."""
    pieces = []
    for at in (8190, 8191, 8192, 8193, 16383, 16384, 65535, 65536, 65537):
        pieces.append("a" * (at - sum(map(len, pieces))) + "\r\n")
    body = "".join(pieces) + "x\r\ry\n\nz\r\n\r"
    p = tmp_path / "f"
    p.write_bytes(body.encode())
    with open(p, newline=newline) as g:
        want_lines = g.readlines()
        g.seek(0)
        want_tells = []
        while g.readline():
            want_tells.append(g.tell())
        g.seek(0)
        want_all = g.read()
        want_newlines = g.newlines

    async def main():
        async with linuxaio.open(p, newline=newline) as f:
            assert await f.readlines() == want_lines
            await f.seek(0)
            tells = []
            while await f.readline():
                tells.append(await f.tell())
            assert_same_places(p, None, newline, tells, want_tells)
            await f.seek(0)
            assert await f.read() == want_all
            assert f.newlines == want_newlines
            for t in want_tells[::3]:      # the builtin's cookies work here
                await f.seek(t)
                with open(p, newline=newline) as g:
                    g.seek(t)
                    assert await f.read(10) == g.read(10)
    run(main)


# ------------------------------------------------------------- text, writing

@pytest.mark.parametrize("encoding,errors", [
    ("utf-8", "strict"), ("utf-16", "strict"), ("utf-8-sig", "strict"), ("latin-1", "replace"),
    ("ascii", "xmlcharrefreplace"), ("ascii", "backslashreplace"), ("cp1252", "ignore"),
])
@pytest.mark.parametrize("newline", NEWLINES)
def test_text_writes_like_the_builtin(tmp_path, run, newline, encoding, errors):
    parts = ["plain", "line\n", "crlf\r\n", "cr\r", "é€😀\n", "\n\n", "x" * 70_000 + "\n", "end"]
    ref, ours = tmp_path / "ref", tmp_path / "ours"
    with open(ref, "w", encoding=encoding, errors=errors, newline=newline) as g:
        want_n = [g.write(s) for s in parts]
        g.writelines(["a\n", "b\r\n"])
    with open(ref, "a", encoding=encoding, errors=errors, newline=newline) as g:  # no 2nd BOM
        g.write("appended\n")

    async def main():
        async with linuxaio.open(ours, "w", encoding=encoding, errors=errors, newline=newline) as f:
            got_n = [await f.write(s) for s in parts]
            await f.writelines(["a\n", "b\r\n"])
        async with linuxaio.open(ours, "a", encoding=encoding, errors=errors, newline=newline) as f:
            await f.write("appended\n")
        return got_n
    assert run(main) == want_n
    assert ours.read_bytes() == ref.read_bytes()


def test_text_write_errors(tmp_path, run):
    async def main():
        async with linuxaio.open(tmp_path / "f", "w", encoding="ascii") as f:
            with pytest.raises(UnicodeEncodeError):
                await f.write("é")
            with pytest.raises(TypeError, match="must be str, not bytes"):
                await f.write(b"x")
            with pytest.raises(io.UnsupportedOperation, match="not readable"):
                await f.read()
            await f.write("ok")
        async with linuxaio.open(tmp_path / "f") as f:
            assert await f.read() == "ok"
            with pytest.raises(io.UnsupportedOperation, match="not writable"):
                await f.write("x")
            for args in [(1, 1), (1, 2)]:
                with pytest.raises(io.UnsupportedOperation):
                    await f.seek(*args)
            with pytest.raises(ValueError, match="negative seek position"):
                await f.seek(-1)
            with pytest.raises(ValueError, match="invalid whence"):
                await f.seek(0, 3)
            assert await f.seek(0, 2) == 2
            assert await f.seek(0, 1) == 2
    run(main)


def test_line_buffering(tmp_path, run):
    p = tmp_path / "f"

    async def main():
        async with linuxaio.open(p, "w", buffering=1) as f:
            assert f.line_buffering
            await f.write("partial")
            assert p.read_bytes() == b""
            await f.write(" line\nmore")
            assert p.read_bytes() == b"partial line\nmore"   # the whole buffer, as the builtin
        assert p.read_bytes() == b"partial line\nmore"
    run(main)


# ------------------------------------------ interleaved operations (hypothesis)

BIN_OPS = st.one_of(
    st.tuples(st.just("read"), st.integers(-1, 300)),
    st.tuples(st.just("read1"), st.integers(-1, 300)),
    st.tuples(st.just("readline"), st.integers(-1, 80)),
    st.tuples(st.just("readinto"), st.integers(0, 300)),
    st.tuples(st.just("readlines"), st.integers(-1, 100)),
    st.tuples(st.just("seek"), st.integers(-100, 1200), st.sampled_from([0, 1, 2])),
    st.tuples(st.just("tell")),
    st.tuples(st.just("write"), st.binary(max_size=120)),
    st.tuples(st.just("truncate"), st.one_of(st.none(), st.integers(0, 1200))),
    st.tuples(st.just("flush")),
)
LINEY_BYTES = st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r\n", b"\xff", b"0123456789"]),
                       max_size=150).map(b"".join)


def interleave_settings(loop):
    """Few fixed examples by default (the file's runtime); set
    LINUXAIO_HYPOTHESIS_EXAMPLES=N for N random ones."""
    n = int(os.environ.get("LINUXAIO_HYPOTHESIS_EXAMPLES", 0))
    return settings(max_examples=n or (60 if loop == "asyncio" else 20), deadline=None,
                    suppress_health_check=list(HealthCheck), derandomize=not n)


STRESS_TIMEOUT = pytest.mark.aio_timeout(3600 if os.environ.get("LINUXAIO_HYPOTHESIS_EXAMPLES") else 30)


@STRESS_TIMEOUT
@pytest.mark.parametrize("loop", LOOPS)
def test_binary_interleaved_ops_match_the_builtin(loop):
    if loop != "asyncio":
        pytest.importorskip(loop)

    @interleave_settings(loop)
    @given(content=LINEY_BYTES, ops=st.lists(BIN_OPS, max_size=30),
           buffering=st.sampled_from([-1, 0, 1 << 3, 64]), mode=st.sampled_from(["r+b", "a+b"]))
    def check(content, ops, buffering, mode):
        if buffering == 0:
            ops = [op for op in ops if op[0] != "read1"]   # FileIO has no read1
        with tempfile.TemporaryDirectory() as d:
            ref, ours = os.path.join(d, "ref"), os.path.join(d, "ours")
            for path in (ref, ours):
                with open(path, "wb") as w:
                    w.write(content)

            async def main():
                # The builtin runs in lockstep.  read1 may return any amount
                # (at most one raw read), so the builtin reads as much as ours got.
                with open(ref, mode, buffering=buffering) as g:
                    async with linuxaio.open(ours, mode, buffering=buffering) as f:
                        dirty = False
                        for op in ops:
                            if op[0] == "read1" and dirty:
                                g.flush()   # the builtin's read1 reads before it writes (3.11)
                            dirty = (op[0] == "write" and op[1] != b"") or (dirty and op[0] in (
                                "read1", "tell", "readinto", "read", "readline", "readlines"))
                            if op[0] == "read1":
                                got = await f.read1(op[1])
                                n = op[1] if op[1] >= 0 else f.buffer_size
                                assert len(got) <= n
                                assert got == (g.read(len(got)) if got else g.read1(n))
                            elif op[0] == "readinto":
                                buf, buf2 = bytearray(op[1]), bytearray(op[1])
                                assert (await aoutcome(f.readinto, buf), bytes(buf)) == \
                                    (outcome(g.readinto, buf2), bytes(buf2)), op
                            else:
                                assert await aoutcome(getattr(f, op[0]), *op[1:]) == \
                                    outcome(getattr(g, op[0]), *op[1:]), op
                            if op[0] == "write" and mode == "a+b":
                                # An O_APPEND write lands at the end wherever the
                                # position was; the builtin's position then stays
                                # where it believed the write went.  Go to the end.
                                await f.flush()
                                g.flush()
                                assert await f.seek(0, 2) == g.seek(0, 2)
                                dirty = False
            run_in(loop, main)
            with open(ref, "rb") as a, open(ours, "rb") as b:
                assert a.read() == b.read()
    check()


TEXT_ALPHABET = st.sampled_from(["a", "bc", "\n", "\r", "\r\n", "é", "€", "𝄞", "xyz "])


def text_ops(alphabet):
    return st.one_of(
        st.tuples(st.just("read"), st.integers(-1, 40)),
        st.tuples(st.just("readline"), st.integers(-1, 30)),
        st.tuples(st.just("readline"), st.just(-1)),
        st.tuples(st.just("tell")),
        st.tuples(st.just("seek_saved"), st.integers(0, 50)),
        st.tuples(st.just("seek"), st.just(0)),
        st.tuples(st.just("seek_end")),
        st.tuples(st.just("write"), st.lists(alphabet, max_size=8).map("".join)),
        st.tuples(st.just("flush")),
    )


async def same_position(path, encoding, newline, c1, c2):
    """Two cookies name the same place if the builtin reads the same from both."""
    with open(path, encoding=encoding, newline=newline) as a, \
            open(path, encoding=encoding, newline=newline) as b:
        a.seek(c1)
        b.seek(c2)
        return a.read() == b.read()


@STRESS_TIMEOUT
@pytest.mark.parametrize("loop", LOOPS)
def test_text_interleaved_ops_match_the_builtin(loop):
    if loop != "asyncio":
        pytest.importorskip(loop)

    @interleave_settings(loop)
    @given(data=st.data(), encoding=st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig"]),
           newline=st.sampled_from(NEWLINES))
    def check(data, encoding, newline):
        alphabet = TEXT_ALPHABET if encoding != "latin-1" else st.sampled_from(
            ["a", "bc", "\n", "\r", "\r\n", "é", "xyz "])
        content = data.draw(st.lists(alphabet, max_size=120).map("".join))
        ops = data.draw(st.lists(text_ops(alphabet), max_size=25))
        with tempfile.TemporaryDirectory() as d:
            ref, ours = os.path.join(d, "ref"), os.path.join(d, "ours")
            for path in (ref, ours):
                with open(path, "w", encoding=encoding, newline="") as w:
                    w.write(content)

            async def main():
                g = open(ref, "r+", encoding=encoding, newline=newline)
                saved = []   # (our cookie, the builtin's)
                dirty = False
                async with linuxaio.open(ours, "r+", encoding=encoding, newline=newline) as f:
                    for op in ops:
                        name = op[0]
                        if name == "tell":
                            a, b = await f.tell(), g.tell()
                            assert a == b or await same_position(ref, encoding, newline, a, b)
                            saved.append((a, b))
                        elif name == "seek_saved":
                            a, b = saved[op[1] % len(saved)] if saved else (0, 0)
                            assert await f.seek(a) == a and g.seek(b) == b
                        elif name == "seek_end":
                            assert await f.seek(0, 2) == g.seek(0, 2)
                        else:
                            if name in ("read", "readline") and dirty:
                                # The C builtin reads before writing out text still
                                # pending in it (read(n), readline; not read()); we
                                # write first, as _pyio does.  Make it write first.
                                g.flush()
                            got = await aoutcome(getattr(f, name), *op[1:])
                            want = outcome(getattr(g, name), *op[1:])
                            assert got == want, op
                            if want[0] == "error" and issubclass(want[1], UnicodeError):
                                # After a decoding error the builtin has lost the chunk;
                                # we have taken nothing (the same error comes again).
                                break
                        dirty = name == "write" or (dirty and name == "read" and op[1] == 0)
                    if not any(op[0] == "tell" for op in ops):
                        # (the builtin's tell() resets its decoder's record of
                        # the newlines seen when it works in the file's first
                        # chunk, then re-decodes as far as its search goes)
                        assert f.newlines == g.newlines
                g.close()
            run_in(loop, main)
            with open(ref, "rb") as a, open(ours, "rb") as b:
                assert a.read() == b.read()
    check()


# ------------------------------------------------------------ raw (buffering=0)

def test_unbuffered_like_fileio(tmp_path, run):
    p = tmp_path / "f"
    p.write_bytes(b"first\nsecond\nthird")

    async def main():
        async with linuxaio.open(p, "r+b", buffering=0) as f:
            assert type(f).__name__ == "AsyncRawFile" and f.mode == "rb+"
            assert await f.read(3) == b"fir"
            assert await f.readline() == b"st\n"
            assert await f.tell() == 6 == os.lseek(f.fileno(), 0, os.SEEK_CUR)
            assert await f.readlines() == [b"second\n", b"third"]
            assert await f.write(b"!!") == 2
            assert await f.seek(-2, 2) == 18
            assert await f.read() == b"!!"
            assert await f.truncate(5) == 5
            assert await f.seek(0) == 0
            assert [line async for line in f] == [b"first"]
    run(main)
    assert p.read_bytes() == b"first"


# ----------------------------------------- the kernel offset, shared fds, pipes

def test_kernel_offset_follows_the_file(tmp_path, run):
    """As with the builtin, the fd's offset is the file's position: a child
    writing to the same fd appends after what was flushed, and we after it."""
    p = tmp_path / "f"

    async def main():
        async with linuxaio.open(p, "w") as f:
            await f.write("header\n")
            await f.flush()
            os.write(f.fileno(), b"from a child\n")
            await f.write("footer\n")
    run(main)
    assert p.read_bytes() == b"header\nfrom a child\nfooter\n"


def test_pipe_is_not_seekable(run):
    async def main():
        r, w = os.pipe()
        async with linuxaio.open(w, "wb") as fw, linuxaio.open(r, "r") as fr:
            assert not fr.seekable() and not fw.seekable()
            await fw.write(b"line one\nline two\nrest")
            await fw.flush()
            assert await fr.readline() == "line one\n"
            with pytest.raises(io.UnsupportedOperation):
                await fr.tell()
            with pytest.raises(OSError):
                await fw.tell()
            await fw.aclose()
            assert [line async for line in fr] == ["line two\n", "rest"]
    run(main)


def test_append_mode_writes_at_the_end(tmp_path, run):
    p = tmp_path / "f"
    p.write_bytes(b"0123456789")

    async def main():
        async with linuxaio.open(p, "a+b") as f:
            assert await f.tell() == 10
            await f.seek(0)
            assert await f.read(3) == b"012"
            await f.write(b"AB")
            assert await f.tell() == 5       # still buffered: the builtin says 5 too
            await f.flush()
            assert await f.tell() == 12
            fd = os.open(p, os.O_WRONLY | os.O_APPEND)
            os.write(fd, b"x")
            os.close(fd)
            await f.write(b"CD")
            await f.flush()
            assert await f.tell() == 15
        async with linuxaio.open(p, "a") as f:
            await f.write("txt")
    run(main)
    assert p.read_bytes() == b"0123456789ABxCDtxt"


# ------------------------------------------------------- positional I/O

def test_pread_pwrite_leave_the_cursor_and_run_concurrently(tmp_path, run):
    data = binary_data(1 << 20, seed=8)
    p = tmp_path / "f"
    p.write_bytes(data)

    async def main():
        async with linuxaio.open(p, "r+b") as f:
            assert await f.read(10) == data[:10]
            offsets = [random.Random(1).randrange(len(data)) for _ in range(64)]
            got = await gather(*(lambda o=o: f.pread(4096, o) for o in offsets))
            assert got == [data[o:o + 4096] for o in offsets]
            buf = bytearray(100)
            assert await f.preadinto(buf, 500) == 100 and buf == data[500:600]
            assert await f.pwrite(b"XYZ", 20) == 3
            assert await f.pread(5, 19) == data[19:20] + b"XYZ" + data[23:24]
            assert await f.tell() == 10
            assert await f.read(5) == data[10:15]
        async with linuxaio.open(p, "r+") as t:        # text files too, in bytes
            assert await t.pread(3, 20) == b"XYZ"
            assert await t.pwrite(b"abc", 0) == 3
            assert await t.tell() == 0
    run(main)


# ------------------------------------------------ buffered lines cost nothing

def _patch_file_modules(monkeypatch, name, value):
    """Set name to value in every module of linuxaio._file that has it (the
    raw, buffered and text layers each hold their own reference)."""
    import sys
    mods = [m for n, m in sys.modules.items()
            if (n == "linuxaio._file" or n.startswith("linuxaio._file.")) and hasattr(m, name)]
    assert mods
    for m in mods:
        monkeypatch.setattr(m, name, value)


def test_a_buffered_line_costs_no_request_and_no_suspension(tmp_path, run, monkeypatch):
    p = tmp_path / "f"
    p.write_text("".join(f"line {i}\n" for i in range(5000)))
    p2 = tmp_path / "g"
    p2.write_bytes(p.read_bytes())
    calls = []
    real = _file._run

    def counting(submit, *args):
        calls.append(submit)
        return real(submit, *args)
    _patch_file_modules(monkeypatch, "_run", counting)

    async def main():
        for path, mode in ((p, "r"), (p2, "rb")):
            async with linuxaio.open(path, mode) as f:
                first = await f.readline()
                n = len(calls)
                # the next line is in the buffer: the coroutine ends at its first step
                coro = f.__anext__()
                with pytest.raises(StopIteration) as stop:
                    coro.send(None)
                assert stop.value.value == ("line 1\n" if mode == "r" else b"line 1\n")
                coro = f.readline()
                with pytest.raises(StopIteration) as stop2:
                    coro.send(None)
                lines = [first, stop.value.value, stop2.value.value] + [line async for line in f]
                assert len(lines) == 5000
                # 5000 lines, ~39 KB: at most a few refills
                assert len(calls) - n <= 3
    run(main)


def test_small_file_read_awaits_two_requests(tmp_path, run, monkeypatch):
    """open, then one read (the size is known from the open's fstat); the
    close of a read-only file goes to the engine unawaited."""
    p = tmp_path / "f"
    p.write_bytes(b"x" * 5000)
    calls = []
    closes = []
    real_run, real_close = _file._run, _file.base._e_close

    def counting(submit, *args):
        calls.append(submit)
        return real_run(submit, *args)

    def counting_close(fd, *args):
        closes.append(fd)
        return real_close(fd, *args)
    _patch_file_modules(monkeypatch, "_run", counting)
    _patch_file_modules(monkeypatch, "_e_close", counting_close)

    async def main():
        async with linuxaio.open(p, "rb") as f:
            assert await f.read() == b"x" * 5000
        async with linuxaio.open(p) as f:
            assert await f.read() == "x" * 5000
        await drained()
        return [fd_points_to(fd, p) for fd in closes]
    assert run(main) == [False, False]
    assert len(calls) == 4, calls


# ------------------------------------------------------------ concurrency

def test_tasks_sharing_a_file_take_turns(tmp_path, run):
    p = tmp_path / "f"
    lines = [f"{i:06d}\n" for i in range(30_000)]
    p.write_text("".join(lines))

    async def main():
        async with linuxaio.open(p, buffering=4096) as f:
            async def reader():
                got = []
                while True:
                    line = await f.readline()
                    if not line:
                        return got
                    got.append(line)
            results = await gather(*([reader] * 8))
        assert sorted(sum(results, [])) == lines

        async with linuxaio.open(p, "r+b", buffering=64) as f:   # writers interleave whole writes
            async def writer(k):
                for i in range(50):
                    await f.write(b"%d" % k * 10)
            await gather(*(lambda k=k: writer(k) for k in range(10)))
            await f.seek(0)
            data = await f.read(5000)
        assert all(data[i:i + 10] in {b"%d" % k * 10 for k in range(10)} for i in range(0, 5000, 10))
    run(main)


# ------------------------------------------------------------- cancellation

def test_aclose_cancelled_still_closes_the_fd(tmp_path, run):
    p = tmp_path / "f"

    async def main():
        f = await linuxaio.open(p, "wb")
        fd = f.fileno()
        await f.write(b"pending")                   # buffered
        with blocked_engine() as held:
            how, _ = await cancel_when_queued(f.aclose, held.release)
        await drained()
        assert f.closed
        assert not fd_points_to(fd, p)
        return how
    assert run(main) in ("cancelled", "result")


def test_aclose_cancelled_while_flushing(tmp_path, run):
    """The flush is what waits: cancelling it still closes the fd."""
    p = tmp_path / "f"

    async def main():
        f = await linuxaio.open(p, "wb", buffering=16)
        fd = f.fileno()
        await f.write(b"0123456789")
        with blocked_engine() as held:
            how, _ = await cancel_when_queued(f.aclose, held.release)
        await drained()
        assert f.closed and not fd_points_to(fd, p)
        return how
    assert run(main) == "cancelled"


def test_aclose_with_writes_pending_is_one_request(tmp_path, run, monkeypatch):
    """The last flush and the close go out together (write_close): one
    engine request, no write or close of their own, the bytes on disk, the
    fd closed."""
    p = tmp_path / "f"
    calls = []
    real_run = _file._run

    def counting(submit, *args):
        calls.append(submit)
        return real_run(submit, *args)
    _patch_file_modules(monkeypatch, "_run", counting)
    for name in ("_e_write_close", "_e_close"):
        def counted(*args, real=getattr(_file.base, name), name=name):
            calls.append(name)
            return real(*args)
        _patch_file_modules(monkeypatch, name, counted)

    async def main():
        f = await linuxaio.open(p, "wb")
        fd = f.fileno()
        await f.write(b"pending")
        n = len(calls)
        await f.aclose()
        assert f.closed and not fd_points_to(fd, p)
        return calls[n:]
    assert run(main) == ["_e_write_close"]
    assert p.read_bytes() == b"pending"


def test_aclose_write_error_is_raised_and_the_fd_closed(run):
    """/dev/full fails every write with ENOSPC: aclose() raises it (as the
    builtin's close() does) and the fd is closed all the same."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")

    async def main():
        f = await linuxaio.open("/dev/full", "wb")
        fd = f.fileno()
        await f.write(b"x" * 100)
        with pytest.raises(OSError) as err:
            await f.aclose()
        assert f.closed and not fd_points_to(fd, "/dev/full")
        return err.value.errno
    with pytest.raises(OSError) as builtin:
        with open("/dev/full", "wb") as g:
            g.write(b"x" * 100)
    assert run(main) == builtin.value.errno == 28


@pytest.mark.parametrize("mode", ["wb", "ab", "r+b", "w"])
def test_aclose_leaves_a_shared_offset_where_the_builtin_does(tmp_path, run, mode):
    """The fd given to open() was dup'ed: after the close, the dup's offset
    (the same open file description's) is the builtin's, and so are the bytes."""
    async def main(path, opener):
        path.write_bytes(b"0123456789")
        fd = os.open(path, os.O_RDWR | (os.O_APPEND if "a" in mode else 0))
        dup = os.dup(fd)
        try:
            if opener is open:
                with open(fd, mode) as f:
                    f.write(b"abc" if "b" in mode else "abc")
            else:
                f = await linuxaio.open(fd, mode)
                await f.write(b"abc" if "b" in mode else "abc")
                await f.aclose()
            return os.lseek(dup, 0, 1), path.read_bytes()
        finally:
            os.close(dup)

    async def builtin():
        return await main(tmp_path / "b", open)
    expected = asyncio.run(builtin())

    async def ours():
        return await main(tmp_path / "a", None)
    assert run(ours) == expected


def test_aclose_writes_pending_bytes_into_a_pipe(run):
    """Not seekable: the pending bytes go out with write(2), then the close
    (the reader sees them, then the end of the stream)."""
    async def main():
        r, w = os.pipe()
        try:
            f = await linuxaio.open(w, "wb")
            await f.write(b"through the pipe")
            await f.aclose()
            got = b""
            while True:
                chunk = os.read(r, 100)
                if not chunk:
                    return got
                got += chunk
        finally:
            os.close(r)
    assert run(main) == b"through the pipe"


def test_cancelled_read_leaves_the_position(tmp_path, run):
    data = binary_data(200_000, seed=12)
    p = tmp_path / "f"
    p.write_bytes(data)

    async def main():
        async with linuxaio.open(p, "rb") as f:
            assert await f.read(10) == data[:10]
            await f.seek(100_000)
            with blocked_engine() as held:
                how, _ = await cancel_when_queued(lambda: f.read(50_000), held.release)
            assert how == "cancelled"
            await drained()
            assert await f.tell() == 100_000
            assert await f.read(50_000) == data[100_000:150_000]
        async with linuxaio.open(p, "r", encoding="latin-1", newline="\n") as t:
            assert await t.readline() == data[:data.index(b"\n") + 1].decode("latin-1")
            pos = await t.tell()
            await t.seek(0, 2)
            await t.seek(pos)
            with blocked_engine() as held:
                how, _ = await cancel_when_queued(lambda: t.read(100_000), held.release)
            assert how == "cancelled"
            await drained()
            assert await t.tell() == pos
            assert await t.read(20) == data[pos:pos + 20].decode("latin-1")
    run(main)


def test_cancelled_open_leaks_nothing(tmp_path, run):
    p = tmp_path / "f"
    p.write_bytes(b"x")

    async def main():
        before = len(os.listdir("/proc/self/fd"))
        with blocked_engine() as held:
            how, _ = await cancel_when_queued(lambda: linuxaio.open(p, "rb"), held.release)
        assert how == "cancelled"
        await drained()
        assert len(os.listdir("/proc/self/fd")) == before
    run(main)


# ---------------------------------------------------------- never closed

def test_unclosed_file_warns_and_is_closed(tmp_path, run):
    p = tmp_path / "f"

    async def main():
        f = await linuxaio.open(p, "w")
        await f.write("unflushed")          # still in the buffer
        return f.fileno()
    with pytest.warns(ResourceWarning, match="unclosed file"):
        fd = run(main)
        gc.collect()
    assert not fd_points_to(fd, p)
    assert p.read_text() == "unflushed"   # flushed on the way out, as the builtin does

    async def binary():
        f = await linuxaio.open(p, "rb")
        return f.fileno()
    with pytest.warns(ResourceWarning, match="unclosed file"):
        fd = run(binary)
        gc.collect()
    assert not fd_points_to(fd, p)


def test_closed_file_raises_value_error(tmp_path, run):
    p = tmp_path / "f"
    p.write_text("abc\n")

    async def main():
        for mode in ("r+", "r+b", "rb"):
            f = await linuxaio.open(p, mode, buffering=0 if mode == "rb" else -1)
            await f.aclose()
            for name, args in [("read", ()), ("readline", ()), ("seek", (0,)), ("tell", ()),
                               ("flush", ()), ("truncate", ()), ("pread", (1, 0)),
                               ("write", ("x" if mode == "r+" else b"x",))]:
                with pytest.raises(ValueError):
                    await getattr(f, name)(*args)
            with pytest.raises(ValueError):
                f.readable()
            with pytest.raises(ValueError):
                async for _ in f:
                    pass
    run(main)


def test_open_and_read_to_the_end_never_fstat_on_the_loop_thread(tmp_path, run, monkeypatch):
    """An fstat can block (NFS, FUSE): open's and a later read-all's are
    engine requests."""
    p = tmp_path / "f"
    p.write_bytes(b"x" * 5000)
    calls = []
    real_fstat = os.fstat

    def spy(fd):
        calls.append(fd)
        return real_fstat(fd)

    async def main():
        monkeypatch.setattr(os, "fstat", spy)
        try:
            for buffering in (0, -1):
                async with linuxaio.open(p, "rb", buffering=buffering) as f:
                    assert await f.read() == b"x" * 5000
                    await f.seek(0)
                    assert await f.read() == b"x" * 5000     # the size is asked again
                fd = os.open(p, os.O_RDONLY)
                async with linuxaio.open(fd, "rb", buffering=buffering) as f:
                    assert await f.read() == b"x" * 5000
        finally:
            monkeypatch.setattr(os, "fstat", real_fstat)
    run(main)
    assert calls == []
