"""linuxaio.aiofiles: what aiofiles' own suite (tests/compat/aiofiles) does not
check: that the engine does the I/O (no thread), results against the
synchronous os/os.path, errors, the temporary files' cleanup."""
import asyncio
import io
import os
import stat

import pytest

import linuxaio.aiofiles as aiofiles
import linuxaio.aiofiles.os  # noqa: F401  (aiofiles.os, as aiofiles users import it)
import linuxaio.aiofiles.os.path as aiopath
from linuxaio import _loop
from linuxaio.aiofiles import tempfile as atempfile
from linuxaio.aiofiles.threadpool import wrap


@pytest.fixture
def no_threads(monkeypatch):
    """Fail if anything goes to a worker thread."""
    async def refuse(func, *args):
        raise AssertionError(f"{func!r} went to a thread")
    monkeypatch.setattr(_loop, "to_thread", refuse)


def test_open_read_write_on_the_engine(tmp_path, no_threads):
    p = tmp_path / "f.txt"

    async def main():
        async with aiofiles.open(p, "w", encoding="utf-8") as f:
            assert await f.write("héllo\nworld\n") == 12
            assert await f.seekable() is True and await f.writable() is True
        async with aiofiles.open(p, "rb") as f:
            assert f.readable() is True and await f.read() == "héllo\nworld\n".encode()
        f = await aiofiles.open(p, encoding="utf-8", loop=None, executor=None)
        assert [line async for line in f] == ["héllo\n", "world\n"]
        await f.close()
        assert f.closed
    asyncio.run(main())


def test_open_errors_match_the_builtin(tmp_path):
    async def main():
        with pytest.raises(FileNotFoundError) as exc:
            await aiofiles.open(tmp_path / "missing")
        assert exc.value.errno == 2 and exc.value.filename == str(tmp_path / "missing")
        with pytest.raises(ValueError):
            aiofiles.open(tmp_path / "x", "rw")      # checked at once, nothing opened
        assert not (tmp_path / "x").exists()
    asyncio.run(main())


def test_sync_detach_gives_the_sync_raw_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"0123456789")

    async def main():
        f = await aiofiles.open(p, "rb")
        assert await f.read(2) == b"01"
        assert isinstance(f.raw, io.FileIO) and f.raw.fileno() == f.fileno()
        raw = f.detach()
        assert isinstance(raw, io.FileIO) and raw.read() == b"23456789"
        raw.close()
        with pytest.raises(ValueError):
            await f.close()
    asyncio.run(main())


def test_os_functions_match_os(tmp_path, no_threads):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_bytes(b"12345")
    os.symlink(tmp_path / "f", tmp_path / "l")

    async def main():
        aos = aiofiles.os
        st = await aos.stat(tmp_path / "f")
        assert (st.st_ino, st.st_size) == (os.stat(tmp_path / "f").st_ino, 5)
        assert sorted(await aos.listdir(tmp_path)) == sorted(os.listdir(tmp_path))
        it = await aos.scandir(tmp_path)
        assert iter(it) is it and not isinstance(it, list)
        with it:
            entries = {e.name: e for e in it}
        with os.scandir(tmp_path) as sync:
            for e in sync:
                ours = entries[e.name]
                assert ours.path == e.path and ours.inode() == e.inode()
                assert ours.is_dir() == e.is_dir() and ours.is_file() == e.is_file()
                assert ours.is_symlink() == e.is_symlink()
        assert entries["f"].stat().st_size == 5          # synchronous, as os.DirEntry's
        assert await aos.getcwd() == os.getcwd()
        assert await aos.readlink(tmp_path / "l") == str(tmp_path / "f")
        await aos.rename(tmp_path / "f", tmp_path / "g")
        await aos.replace(tmp_path / "g", tmp_path / "f")
        await aos.mkdir(tmp_path / "e")
        await aos.rmdir(tmp_path / "e")
        await aos.link(tmp_path / "f", tmp_path / "h")
        assert os.stat(tmp_path / "h").st_nlink == 2
        await aos.unlink(tmp_path / "h")
        await aos.remove(tmp_path / "l")
        with pytest.raises(FileNotFoundError):
            await aos.scandir(tmp_path / "nope")
    asyncio.run(main())


def test_os_path_matches_os_path(tmp_path, no_threads, monkeypatch):
    (tmp_path / "f").write_bytes(b"123")
    os.symlink(tmp_path / "f", tmp_path / "l")
    os.symlink(tmp_path / "nope", tmp_path / "broken")
    monkeypatch.chdir(tmp_path)
    names = ["f", "l", "broken", "nope", ".", "/", "/proc", b"f"]

    async def main():
        for name in names:
            for fn in ("exists", "isfile", "isdir", "islink", "ismount"):
                assert await getattr(aiopath, fn)(name) == getattr(os.path, fn)(name), (fn, name)
            assert await aiopath.abspath(name) == os.path.abspath(name)
        for fn in ("getsize", "getatime", "getmtime", "getctime"):
            assert await getattr(aiopath, fn)("f") == getattr(os.path, fn)("f")
            with pytest.raises(FileNotFoundError):
                await getattr(aiopath, fn)("nope")
        assert await aiopath.samefile("f", "l") and not await aiopath.samefile("f", ".")
        with open("f") as a, open("l") as b:
            assert await aiopath.sameopenfile(a.fileno(), b.fileno())
    asyncio.run(main())


def test_os_wrap_runs_in_a_thread():
    import threading

    async def main():
        where = aiofiles.os.wrap(lambda x: (threading.get_ident(), x * 2))
        ident, value = await where(21)
        assert value == 42 and ident != threading.get_ident()
    asyncio.run(main())


def test_threadpool_wrap(tmp_path):
    with pytest.raises(TypeError):
        wrap("not a file")

    async def main():
        with open(tmp_path / "f", "wb") as fp:
            f = wrap(fp)
            await f.write(b"abc")
        assert (tmp_path / "f").read_bytes() == b"abc"
    asyncio.run(main())


def test_temporary_files(tmp_path, no_threads):
    async def main():
        async with atempfile.TemporaryFile(dir=tmp_path) as f:
            await f.write(b"data")
            await f.seek(0)
            assert await f.read() == b"data"
            assert isinstance(f.name, int) and stat.S_ISREG(os.fstat(f.fileno()).st_mode)
            assert os.listdir(tmp_path) == []          # no name in the directory
        async with atempfile.NamedTemporaryFile("w+", dir=tmp_path, prefix="p", suffix=".s") as f:
            name = f.name
            assert os.path.basename(name).startswith("p") and name.endswith(".s")
            assert stat.S_IMODE(os.stat(name).st_mode) == 0o600
            await f.write("text")
        assert not os.path.exists(name)
        f = await atempfile.NamedTemporaryFile(dir=tmp_path, delete=False)
        await f.close()
        assert os.path.exists(f.name)
        os.unlink(f.name)
    asyncio.run(main())


def test_temporary_directory(tmp_path):
    """Made on the engine; removed by linuxaio.shutil.rmtree where linuxaio
    has it, else in a thread."""
    async def main():
        async with atempfile.TemporaryDirectory(dir=tmp_path) as d:
            assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
            os.mkdir(os.path.join(d, "sub"))
            open(os.path.join(d, "sub", "x"), "w").close()
        assert not os.path.exists(d)
    asyncio.run(main())


def test_spooled_temporary_file_rolls_over(tmp_path):
    async def main():
        async with atempfile.SpooledTemporaryFile(max_size=4, dir=tmp_path) as f:
            await f.write(b"abc")
            assert not f._file._rolled
            await f.write(b"defg")
            assert f._file._rolled
            await f.write(b"h")
            await f.seek(0)
            assert await f.read() == b"abcdefgh"
            assert isinstance(await f.fileno(), int)
    asyncio.run(main())


def test_stdio_follow_sys_stdout(capsys):
    async def main():
        await aiofiles.stdout.write("out")
        await aiofiles.stderr_bytes.write(b"err")
    asyncio.run(main())
    out, err = capsys.readouterr()
    assert (out, err) == ("out", "err")
