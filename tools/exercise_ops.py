"""Exercise every operation row of the engine, for a memory checker.

    python tools/exercise_ops.py [ROUNDS]        (default 200)

Run it under valgrind (tools/valgrind.sh) or an ASan build: each row of
`_engine._op_table()` is called ROUNDS times through each of its faces with
valid arguments, with each bad argument value of tests/test_op_table.py
(refused at submission), cancelled at once (before it runs, usually) and
while the workers are busy (queued, then cancelled) and during its run
(cancelled a moment after submission), and in groups (submit_many, cancelled
or not).  Then the await path: linuxaio.os twins awaited under asyncio with
inline attempts on and off, and cancelled awaits.  The script checks only that
everything completes (flush returns, nreqs() ends at 0); the memory checker
does the rest.
"""
from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import linuxaio                                  # noqa: E402
from linuxaio import _engine                     # noqa: E402
import linuxaio.os as aos                        # noqa: E402
import test_op_table as T                        # noqa: E402  (valid and bad values)


def cleanup(row, value):
    """Close what an undoing row returned (an fd, or an fd first in a tuple)."""
    if row[T.UNDOES] and isinstance(value, (int, tuple)):
        fd = value if isinstance(value, int) else value[0]
        if isinstance(fd, int) and fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def args_for(name, letters, row, tmp, fd):
    args = T.valid_values(letters, row, tmp, fd)
    return args


def one_face(name, letters, row, tmp, fd, rounds):
    fn = getattr(_engine, name)
    got = []
    # valid arguments
    for _ in range(rounds):
        fn(*args_for(name, letters, row, tmp, fd), got.append)
    linuxaio.flush()
    # cancelled at once, and a little later (some during their run)
    reqs = []
    for i in range(rounds):
        r = fn(*args_for(name, letters, row, tmp, fd), got.append)
        if i % 2:
            r.cancel()
        else:
            reqs.append(r)
    for r in reqs:
        r.cancel()
    linuxaio.flush()
    # queued behind busy workers, then cancelled before they run
    busy = [_engine.aio_busy(0.01, None) for _ in range(8)]
    queued = [fn(*args_for(name, letters, row, tmp, fd), got.append) for _ in range(20)]
    for r in queued:
        r.cancel()
    linuxaio.flush()
    del busy
    # bad arguments, refused before anything is queued
    for i, c in enumerate(letters):
        for bad, exc in T.BAD[c]:
            args = args_for(name, letters, row, tmp, fd)
            if row[T.ID] == "close":
                os.close(args[0])
            args[i] = bad
            try:
                fn(*args, None)
            except exc:
                pass
            else:
                raise AssertionError((name, i, bad))
    # groups
    for k in range(max(1, rounds // 20)):
        many = []
        for _ in range(5):
            if row[T.ID] == "close":
                many.append((os.dup(fd),))
            else:
                many.append(tuple(args_for(name, letters, row, tmp, fd)))
        grp = _engine.submit_many(name, many, got.append)
        if k % 2:
            grp.cancel()
    linuxaio.flush()
    for v in got:
        if isinstance(v, list):
            for x in v:
                cleanup(row, x)
        else:
            cleanup(row, v)


def callbacks(rounds):
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fd = os.open(tmp / "scratch", os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, b"abcdefgh")
        for name, letters, row in T.FACES:
            if row[T.ID] in ("busy", "sync", "mlockall"):
                continue           # slow or global; a few rounds are enough
            one_face(name, letters, row, tmp, fd, rounds)
        for name, letters, row in T.FACES:
            if row[T.ID] in ("busy", "sync", "mlockall"):
                one_face(name, letters, row, tmp, fd, 3)
        workdirs(tmp, rounds)
        os.close(fd)


def workdirs(tmp, rounds):
    """Paths relative to a WorkingDir: the handle's count of users, and a
    close() while requests using it are queued or running."""
    got = []
    _engine.aio_wd(str(tmp), got.append)
    linuxaio.flush()
    wd = got.pop()
    for i in range(rounds):
        _engine.aio_stat((wd, "file"), got.append)
        r = _engine.aio_open((wd, "file"), os.O_RDONLY, 0, got.append)
        if i % 3 == 0:
            r.cancel()
        _engine.aio_wd((wd, "."), got.append)
    wd.close()
    try:
        _engine.aio_stat((wd, "file"), None)
    except ValueError:
        pass
    linuxaio.flush()
    for v in got:
        if isinstance(v, int):
            os.close(v)
        elif hasattr(v, "close") and not isinstance(v, BaseException):
            v.close()


async def awaits(rounds):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "f")
        with open(p, "wb") as f:
            f.write(b"x" * 100000)
        for mode in (True, False):
            linuxaio.inline(mode)
            for _ in range(rounds):
                fd = await aos.open(p, os.O_RDWR)
                await aos.pread(fd, 10, 0)
                await aos.read(fd, 100)
                buf = bytearray(16)
                await aos.preadinto(fd, buf, 0)
                await aos.pwrite(fd, b"abc", 0)
                await aos.fstat(fd)
                await aos.lseek(fd, 0, 0)
                await aos.close(fd)
                await aos.stat(p)
                await aos.lstat(p)
                await aos.access(p, os.R_OK)
                await aos.scandir(d)
                try:
                    await aos.stat(p + "-missing")
                except FileNotFoundError:
                    pass
                try:
                    await aos.open(p + "-missing", os.O_RDONLY)
                except FileNotFoundError:
                    pass
                await linuxaio.slurp(p)
            # cancelled awaits: before and during their run
            rfd = os.open(p, os.O_RDONLY)
            for i in range(rounds):
                t = asyncio.ensure_future(aos.pread(rfd, 10, 0))
                if i % 2:
                    await asyncio.sleep(0)
                t.cancel()
                try:
                    await t
                except asyncio.CancelledError:
                    pass
            os.close(rfd)
        linuxaio.inline(True)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print("engine:", linuxaio.engine(), flush=True)
    callbacks(rounds)
    asyncio.run(awaits(rounds))
    linuxaio.flush()
    assert linuxaio.nreqs() == 0, linuxaio.nreqs()
    print("ok", flush=True)


if __name__ == "__main__":
    main()
