"""anyio compatibility of linuxaio's own API: limiter=, AsyncFile, wrap_file,
detach()/raw, and the Path methods anyio has (the vendored anyio suite in
tests/compat/anyio runs anyio's own tests; these check what it does not:
that a limiter bounds the requests, that adoption uses the fd, errors)."""
import asyncio
import io
import os
import pathlib
import socket

import pytest

import linuxaio
from linuxaio import Path


class CountingLimiter:
    """A limiter by acquire()/release() (no async with) that records how many
    tokens were out at once."""

    def __init__(self, capacity):
        self.sem = asyncio.Semaphore(capacity)
        self.out = self.most = self.acquired = 0

    async def acquire(self):
        await self.sem.acquire()
        self.out += 1
        self.acquired += 1
        self.most = max(self.most, self.out)
        await asyncio.sleep(0)      # let the other tasks pile up behind it

    def release(self):
        self.out -= 1
        self.sem.release()


def test_path_limiter_bounds_concurrent_requests(tmp_path):
    for i in range(20):
        (tmp_path / f"f{i}").write_bytes(b"x" * i)

    async def main():
        lim = CountingLimiter(2)
        base = Path(tmp_path, limiter=lim)
        sizes = await asyncio.gather(*((base / f"f{i}").read_bytes() for i in range(20)))
        assert [len(s) for s in sizes] == list(range(20))
        assert lim.most == 2 and lim.acquired == 20 and lim.out == 0
        # nested calls of one task (mkdir(parents=True) recurses on parents)
        # take one token, not one per level
        lim1 = CountingLimiter(1)
        await Path(tmp_path, limiter=lim1).joinpath("a/b/c").mkdir(parents=True)
        assert (tmp_path / "a/b/c").is_dir() and lim1.acquired == 1
        # stat and lstat (C runners for a path without a limiter) take a token
        lim2 = CountingLimiter(1)
        p = Path(tmp_path, limiter=lim2) / "f3"
        assert (await p.stat()).st_size == 3 and (await p.lstat()).st_size == 3
        assert (await p.stat(follow_symlinks=False)).st_size == 3
        assert lim2.acquired == 3 and lim2.out == 0
    asyncio.run(main())


def test_file_limiter_bounds_and_reads_back(tmp_path):
    p = tmp_path / "data"
    p.write_bytes(bytes(range(256)) * 64)

    async def main():
        lim = CountingLimiter(1)
        f = await linuxaio.open(p, "rb", buffering=0, limiter=lim)
        assert f.limiter is lim and isinstance(f, linuxaio.AsyncRawFile)
        chunks = await asyncio.gather(*(f.pread(256, i * 256) for i in range(16)))
        assert all(c == bytes(range(256)) for c in chunks)
        assert lim.most == 1 and lim.acquired >= 17      # the open, then each pread
        await f.aclose()
        assert lim.out == 0
        async with linuxaio.open(p, "rb") as g:
            assert g.limiter is None
    asyncio.run(main())


def test_limiter_rejects_non_limiters(tmp_path):
    with pytest.raises(TypeError):
        Path(tmp_path, limiter=3)
    with pytest.raises(TypeError):
        linuxaio.open(tmp_path / "x", limiter="no")
    with pytest.raises(TypeError):
        linuxaio.wrap_file(io.BytesIO(), limiter=object())


def test_limiter_under_trio(tmp_path):
    trio = pytest.importorskip("trio")
    (tmp_path / "f").write_text("hello")

    async def main():
        lim = trio.CapacityLimiter(1)
        p = Path(tmp_path, limiter=lim) / "f"
        assert p.limiter is lim
        assert await p.read_text() == "hello"
        found = [q async for q in Path(tmp_path, limiter=lim).glob("*")]
        assert found == [p] and found[0].limiter is lim
        assert lim.borrowed_tokens == 0
    trio.run(main)


def test_asyncfile_is_the_base_of_every_file(tmp_path):
    p = tmp_path / "f"
    p.write_text("a\nb\n")

    async def main():
        for mode, buffering in (("rb", 0), ("rb", -1), ("r", -1)):
            async with linuxaio.open(p, mode, buffering=buffering) as f:
                assert isinstance(f, linuxaio.AsyncFile)
                assert f.wrapped is None and f.limiter is None
        t = await linuxaio.open(p)
        with pytest.raises(io.UnsupportedOperation):
            await t.read1()          # text files have none, as io's
        await t.aclose()
    asyncio.run(main())


def test_buffered_detach_and_raw(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"0123456789")

    async def main():
        f = await linuxaio.open(p, "rb+")
        assert await f.read(3) == b"012"
        raw = f.raw
        assert isinstance(raw, linuxaio.AsyncRawFile) and raw.fileno() == f.fileno()
        await f.write(b"ab")                 # buffered, not yet written
        r = await f.detach()
        assert isinstance(r, linuxaio.AsyncRawFile)
        assert await r.tell() == 5          # the buffered file's position
        assert p.read_bytes() == b"012ab56789"    # the buffer went out first
        with pytest.raises(ValueError):
            await f.read()
        with pytest.raises(ValueError):
            await f.aclose()
        assert await r.read() == b"56789"
        await r.aclose()
    asyncio.run(main())


def test_text_detach_gives_the_buffer(tmp_path):
    p = tmp_path / "f"

    async def main():
        t = await linuxaio.open(p, "w", encoding="utf-8")
        await t.write("é")
        b = await t.detach()
        assert isinstance(b, linuxaio.AsyncBufferedFile) and p.read_bytes() == "é".encode()
        with pytest.raises(ValueError):
            await t.write("x")
        await b.write(b"!")
        await b.aclose()
        assert p.read_bytes() == "é!".encode()
    asyncio.run(main())


def test_wrap_file_uses_the_fd_and_writes_through(tmp_path, monkeypatch):
    p = tmp_path / "f"
    calls = []
    from linuxaio import _loop
    real = _loop.to_thread

    async def spy(func, *args):
        calls.append(getattr(func, "__name__", func))
        return await real(func, *args)
    monkeypatch.setattr(_loop, "to_thread", spy)

    async def main():
        with open(p, "w+", encoding="utf-8") as fp:
            w = linuxaio.wrap_file(fp)
            assert isinstance(w, linuxaio.AsyncFile) and w.wrapped is fp
            assert w.name == str(p) and w.mode == "w+"
            assert await w.write("line 1\n") == 7
            assert p.read_text() == "line 1\n"      # written through, no aclose
            await w.writelines(["line 2\n"])
            await w.seek(0)
            assert await w.readline() == "line 1\n"
            await w.aclose()
            assert fp.closed
        # only fp.flush (before adoption) and fp.close ran in a thread
        assert set(calls) <= {"flush", "close"}
    asyncio.run(main())


def test_wrap_file_without_fd_uses_a_thread():
    async def main():
        buf = io.BytesIO(b"abc\ndef\n")
        w = linuxaio.wrap_file(buf)
        assert await w.readline() == b"abc\n"
        assert [line async for line in w] == [b"def\n"]
        await w.write(b"xyz")
        assert buf.getvalue() == b"abc\ndef\nxyz"
        await w.aclose()
        assert buf.closed
    asyncio.run(main())


def test_wrap_file_of_a_socket_makefile():
    a, b = socket.socketpair()

    async def main():
        with a, b:
            w = linuxaio.wrap_file(a.makefile("rb"))
            b.sendall(b"ping\n")
            assert await w.readline() == b"ping\n"
            await w.aclose()
    asyncio.run(main())


def test_path_anyio_additions(tmp_path):
    import grp
    import pwd
    (tmp_path / "f").write_bytes(b"a\r\nb")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "missing")

    async def main():
        p = Path(tmp_path / "f")
        assert await p.owner() == pwd.getpwuid(os.stat(p).st_uid).pw_name
        assert await p.group() == grp.getgrgid(os.stat(p).st_gid).gr_name
        assert await Path(link).owner(follow_symlinks=False) == pwd.getpwuid(
            os.lstat(link).st_uid).pw_name
        with pytest.raises(FileNotFoundError):
            await Path(link).group()
        assert await p.read_text(newline="") == "a\r\nb"
        assert await p.read_text() == "a\nb"
        assert await p.samefile(tmp_path / "f")
        assert not await p.samefile(link.parent)
        assert await Path(".").resolve() == pathlib.Path(".").resolve()
    asyncio.run(main())


def test_glob_recurse_symlinks(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sib").mkdir()
    (tmp_path / "sib" / "x.txt").touch()
    (tmp_path / "sub" / "link").symlink_to(tmp_path / "sib")
    (tmp_path / "sib" / "loop").symlink_to(tmp_path / "sib")    # a loop: must end

    async def main():
        plain = [str(q.relative_to(tmp_path)) async for q in Path(tmp_path).glob("**/*.txt")]
        deep = [str(q.relative_to(tmp_path))
                async for q in Path(tmp_path).rglob("*.txt", recurse_symlinks=True)]
        assert plain == ["sib/x.txt"]
        assert "sub/link/x.txt" in deep and "sib/loop/x.txt" in deep
        assert all(len(d) < 4096 for d in deep)
    asyncio.run(main())


def test_blockbuster_sees_linuxaio(tmp_path):
    """The vendored anyio suite runs under blockbuster watching linuxaio: it
    does catch a blocking call made from linuxaio's code on the loop (a
    synchronous DirEntry.stat(), as os.DirEntry's), and passes the coroutines."""
    blockbuster = pytest.importorskip("blockbuster")
    (tmp_path / "f").touch()
    import linuxaio.aiofiles.os as aos

    async def main():
        with blockbuster.blockbuster_ctx("linuxaio"):
            assert await Path.cwd() == Path(os.getcwd())
            assert await Path(tmp_path / "f").samefile(tmp_path / "f")
            assert await Path("x").absolute() == Path(os.getcwd(), "x")
            entry = next(await aos.scandir(tmp_path))
            with pytest.raises(blockbuster.BlockingError):
                entry.stat()
    asyncio.run(main())
