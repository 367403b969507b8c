"""Hypothesis: random sequences of linuxaio.os calls in one scratch
directory do what the same os calls do in another (the reference)."""
import os
import stat as stat_mod
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import linuxaio
from linuxaio import os as aos

from async_helpers import RUNNER_NAMES, fd_count, make_runner

NAMES = ["a", "b", "c", "dir", "dir/x"]
FLAGS = [
    os.O_RDONLY,
    os.O_WRONLY | os.O_CREAT,
    os.O_RDWR | os.O_CREAT,
    os.O_RDWR | os.O_CREAT | os.O_EXCL,
    os.O_RDWR | os.O_TRUNC,
    os.O_WRONLY | os.O_APPEND | os.O_CREAT,
    os.O_RDONLY | os.O_DIRECTORY,
]

names = st.sampled_from(NAMES)
handles = st.integers(0, 7)          # which open handle (modulo how many are open)
offsets = st.integers(0, 300)
sizes = st.integers(0, 120)
datas = st.binary(max_size=100)

opens = st.tuples(st.just("open"), names, st.sampled_from(FLAGS), st.sampled_from([0o600, 0o644, 0o755]))
ops = st.one_of(
    opens, opens, opens,       # weighted: most calls need an open fd
    st.tuples(st.just("close"), handles),
    st.tuples(st.just("write"), handles, datas),
    st.tuples(st.just("pwrite"), handles, datas, offsets),
    st.tuples(st.just("pwritev"), handles, st.lists(datas, max_size=3), offsets),
    st.tuples(st.just("read"), handles, sizes),
    st.tuples(st.just("pread"), handles, sizes, offsets),
    st.tuples(st.just("preadinto"), handles, sizes, offsets),
    st.tuples(st.just("readinto"), handles, sizes),
    st.tuples(st.just("preadv"), handles, st.lists(sizes, max_size=3), offsets),
    st.tuples(st.just("pread_many"), handles, st.lists(st.tuples(sizes, offsets), max_size=5)),
    st.tuples(st.just("concurrent_pread"), handles, st.lists(st.tuples(sizes, offsets), min_size=1, max_size=8)),
    st.tuples(st.just("stat"), names),
    st.tuples(st.just("lstat"), names),
    st.tuples(st.just("fstat"), handles),
    st.tuples(st.just("stat_many"), st.lists(names, max_size=4)),
    st.tuples(st.just("unlink"), names),
    st.tuples(st.just("slurp"), names, offsets, st.none() | sizes),
)


def stat_view(st_):
    """What must agree between the two directories (not inode numbers or times)."""
    return ("stat", stat_mod.S_IFMT(st_.st_mode), stat_mod.S_IMODE(st_.st_mode), st_.st_size, st_.st_nlink)


class Model:
    """Runs each op through linuxaio.os in `mine` and through os in `ref`."""

    def __init__(self, rt, mine, ref):
        self.rt, self.mine, self.ref = rt, mine, ref
        self.handles = []       # [(my fd, reference fd, name)]
        self.log = []

    def norm(self, outcome, root):
        """Comparable form of a result or an error (paths made relative)."""
        if isinstance(outcome, OSError):
            fn = outcome.filename
            if isinstance(fn, str) and fn.startswith(root):
                fn = fn[len(root):]
            return ("error", type(outcome).__name__, outcome.errno, fn)
        if isinstance(outcome, os.stat_result):
            return stat_view(outcome)
        if isinstance(outcome, list):
            return [self.norm(x, root) for x in outcome]
        return outcome

    async def run(self, op):
        kind = op[0]
        if kind in ("open", "stat", "lstat", "stat_many", "unlink", "slurp"):
            h = None
        else:
            if not self.handles:
                return
            h = self.handles[op[1] % len(self.handles)]
        try:
            mine = await self.run_mine(op, h)
        except OSError as e:
            mine = e
        try:
            ref = self.run_ref(op, h)
        except OSError as e:
            ref = e
        if kind == "open":
            if not isinstance(mine, OSError) and not isinstance(ref, OSError):
                self.handles.append((mine, ref, op[1]))
                mine = ref = "fd"
            elif not isinstance(mine, OSError):
                os.close(mine)
            elif not isinstance(ref, OSError):
                os.close(ref)
        if kind == "close" and not isinstance(mine, OSError):
            self.handles.remove(h)
        got, want = self.norm(mine, self.mine + "/"), self.norm(ref, self.ref + "/")
        self.log.append((op, got))
        assert got == want, f"{op}: linuxaio.os gave {got!r}, os gave {want!r}\nafter {self.log[:-1]}"

    async def run_mine(self, op, h):
        kind, root = op[0], self.mine
        fd = h[0] if h else None
        if kind == "open":
            return await aos.open(os.path.join(root, op[1]), op[2], op[3])
        if kind == "close":
            return await aos.close(fd)
        if kind == "write":
            return await aos.write(fd, op[2])
        if kind == "pwrite":
            return await aos.pwrite(fd, op[2], op[3])
        if kind == "pwritev":
            return await aos.pwritev(fd, op[2], op[3])
        if kind == "read":
            return await aos.read(fd, op[2])
        if kind == "pread":
            return await aos.pread(fd, op[2], op[3])
        if kind == "preadinto":
            buf = bytearray(op[2])
            n = await aos.preadinto(fd, buf, op[3])
            return n, bytes(buf[:n])
        if kind == "readinto":
            buf = bytearray(op[2])
            n = await aos.readinto(fd, buf)
            return n, bytes(buf[:n])
        if kind == "preadv":
            bufs = [bytearray(n) for n in op[2]]
            n = await aos.preadv(fd, bufs, op[3])
            return n, b"".join(bufs)[:n]
        if kind == "pread_many":
            return await aos.pread_many(fd, op[2])
        if kind == "concurrent_pread":     # each in its own task; each outcome kept
            async def one(n, off):
                try:
                    return await aos.pread(fd, n, off)
                except OSError as e:
                    return e
            return await self.rt.gather(*[lambda n=n, off=off: one(n, off) for n, off in op[2]])
        if kind == "stat":
            return await aos.stat(os.path.join(root, op[1]))
        if kind == "lstat":
            return await aos.lstat(os.path.join(root, op[1]))
        if kind == "fstat":
            return await aos.fstat(fd)
        if kind == "stat_many":
            return await aos.stat_many([os.path.join(root, n) for n in op[1]], return_exceptions=True)
        if kind == "unlink":
            return await aos.unlink(os.path.join(root, op[1]))
        if kind == "slurp":
            return await linuxaio.slurp(os.path.join(root, op[1]), op[2], op[3])
        raise AssertionError(kind)

    def run_ref(self, op, h):
        kind, root = op[0], self.ref
        fd = h[1] if h else None
        if kind == "open":
            return os.open(os.path.join(root, op[1]), op[2], op[3])
        if kind == "close":
            return os.close(fd)
        if kind == "write":
            return os.write(fd, op[2])
        if kind == "pwrite":
            return os.pwrite(fd, op[2], op[3])
        if kind == "pwritev":
            return os.pwritev(fd, op[2], op[3])
        if kind == "read":
            return os.read(fd, op[2])
        if kind == "pread":
            return os.pread(fd, op[2], op[3])
        # preadinto/readinto are pread(2)/read(2) into the caller's buffer
        # (preadv/readv differ at size 0: they return 0 where a directory's
        # read(2) fails with EISDIR)
        if kind == "preadinto":
            data = os.pread(fd, op[2], op[3])
            return len(data), data
        if kind == "readinto":
            data = os.read(fd, op[2])
            return len(data), data
        if kind == "preadv":
            bufs = [bytearray(n) for n in op[2]]
            n = os.preadv(fd, bufs, op[3])
            return n, b"".join(bufs)[:n]
        if kind == "pread_many":
            return [os.pread(fd, n, off) for n, off in op[2]]
        if kind == "concurrent_pread":
            out = []
            for n, off in op[2]:
                try:
                    out.append(os.pread(fd, n, off))
                except OSError as e:
                    out.append(e)
            return out
        if kind == "stat":
            return os.stat(os.path.join(root, op[1]))
        if kind == "lstat":
            return os.lstat(os.path.join(root, op[1]))
        if kind == "fstat":
            return os.fstat(fd)
        if kind == "stat_many":
            out = []
            for n in op[1]:
                try:
                    out.append(os.stat(os.path.join(root, n)))
                except OSError as e:
                    out.append(e)
            return out
        if kind == "unlink":
            return os.unlink(os.path.join(root, op[1]))
        if kind == "slurp":
            path = os.path.join(root, op[1])
            with open(path, "rb") as f:
                f.seek(op[2])
                try:
                    return f.read() if op[3] is None else f.read(op[3])
                except OSError as e:       # as slurp reports it: with the path
                    raise type(e)(e.errno, e.strerror, path) from None
        raise AssertionError(kind)

    def close_all(self):
        for mine, ref, _ in self.handles:
            os.close(mine)
            os.close(ref)
        self.handles = []


def tree(root):
    """Every file under root with its bytes (directories as None)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            out[os.path.join(rel, d)] = None
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[os.path.join(rel, f)] = fh.read()
    return out


@pytest.mark.parametrize("name", RUNNER_NAMES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(ops, min_size=1, max_size=40))
def test_random_call_sequences_match_os(name, sequence):
    rt = make_runner(name)
    with tempfile.TemporaryDirectory() as mine, tempfile.TemporaryDirectory() as ref:
        for root in (mine, ref):
            os.mkdir(os.path.join(root, "dir"))
            with open(os.path.join(root, "a"), "wb") as f:
                f.write(bytes(range(256)))
        model = Model(rt, mine, ref)

        async def main(rt):
            before = fd_count(mine) + fd_count(ref)
            try:
                for op in sequence:
                    await model.run(op)
            finally:
                model.close_all()
            assert fd_count(mine) + fd_count(ref) == before
        rt.run(main)
        assert linuxaio.nreqs() == 0
        assert tree(mine) == tree(ref)
