"""Random sequences of file operations through linuxaio, checked against the
same sequence run synchronously with os on a second scratch directory.

Operations are submitted in small batches and flushed; the ops of one batch
touch distinct files, so any order of execution inside a batch is equivalent
to the synchronous order."""
import os
import stat
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import linuxaio

NAMES = ["a", "b", "c", "dir", "missing/x"]
FLAGS = [
    os.O_RDONLY,
    os.O_RDWR,
    os.O_WRONLY | os.O_CREAT,
    os.O_RDWR | os.O_CREAT,
    os.O_RDWR | os.O_CREAT | os.O_TRUNC,
    os.O_RDWR | os.O_CREAT | os.O_EXCL,
    os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    os.O_RDWR | os.O_APPEND,
]
MAX_SLOTS = 8
slot = st.integers(0, MAX_SLOTS - 1)
offset = st.one_of(st.none(), st.integers(0, 300))

OPEN = st.tuples(st.just("open"), st.sampled_from(NAMES), st.sampled_from(FLAGS),
                st.sampled_from([0o600, 0o644, 0o444]))
WRITE = st.tuples(st.just("write"), slot, offset, st.binary(max_size=64), st.integers(0, 8))
READ = st.tuples(st.just("read"), slot, offset, st.integers(0, 100))
STRATEGIES = {
    "open": OPEN,
    "write": WRITE,
    "read": READ,
    "close": st.tuples(st.just("close"), slot),
    "stat": st.tuples(st.just("stat"), st.sampled_from(NAMES)),
    "lstat": st.tuples(st.just("lstat"), st.sampled_from(NAMES)),
    "fstat": st.tuples(st.just("fstat"), slot),
    "unlink": st.tuples(st.just("unlink"), st.sampled_from(NAMES)),
}
# weighted towards what keeps files open and busy
WEIGHTS = {"open": 3, "write": 5, "read": 5, "close": 2, "stat": 1, "lstat": 1, "fstat": 1, "unlink": 1}
OPS = st.sampled_from([k for k, w in WEIGHTS.items() for _ in range(w)]).flatmap(STRATEGIES.__getitem__)
# each op with: "flush before it" and a priority for the engine
PROGRAM = st.lists(st.tuples(OPS, st.booleans(), st.integers(-4, 4)), min_size=10, max_size=40)
# what both scratch directories hold at the start
INITIAL = {"a": bytes(range(256)) * 2, "b": b""}


def norm_stat(st_):
    return ("stat", stat.S_IFMT(st_.st_mode), stat.S_IMODE(st_.st_mode), st_.st_size, st_.st_nlink)


def outcome(value):
    """What is compared: an error's errno (and class), or the value."""
    if isinstance(value, OSError):
        return ("error", type(value).__name__, value.errno)
    if isinstance(value, os.stat_result):
        return norm_stat(value)
    return ("ok", value)


def run_sync(fn):
    try:
        return outcome(fn())
    except OSError as e:
        return outcome(e)


class Model:
    def __init__(self, sync_root, aio_root):
        self.sroot, self.aroot = sync_root, aio_root
        for root in (sync_root, aio_root):
            os.mkdir(os.path.join(root, "dir"))
            for name, content in INITIAL.items():
                with open(os.path.join(root, name), "wb") as f:
                    f.write(content)
        self.slots = []          # [name, sync fd, aio fd]
        self.batch = []          # Pending entries
        self.batch_names = set()
        self.nopening = 0
        self.log = []

    # -- batching -------------------------------------------------------------

    def flush(self):
        linuxaio.flush()
        assert linuxaio.nreqs() == 0
        for p in self.batch:
            assert len(p.got) == 1, (p.desc, p.got)
            actual = outcome(p.convert(p.got[0]))
            self.log.append((p.desc, p.expect, actual))
            assert actual == p.expect, f"{p.desc}: os gave {p.expect}, linuxaio gave {actual}\n" + \
                "\n".join(map(str, self.log[-15:]))
        for p in self.batch:       # slot changes take effect between batches
            if p.after:
                p.after(p.got[0])
        self.batch.clear()
        self.batch_names.clear()
        self.nopening = 0

    def _resolve(self, op):
        """The slot entry an op works on and the names it touches."""
        if op[0] in ("close", "write", "read", "fstat"):
            if not self.slots:
                return None, None
            entry = self.slots[op[1] % len(self.slots)]
            return entry, {entry[0]}
        return None, {op[1]}

    def add(self, desc, expect, got, convert=lambda v: v, after=None):
        self.batch.append(Pending(desc, expect, got, convert, after))

    def step(self, op, flush_first, pri):
        kind = op[0]
        entry, names = self._resolve(op)
        if flush_first or (names and names & self.batch_names):
            self.flush()                        # may change the slots:
            entry, names = self._resolve(op)    # resolve again
        if names is None:
            return
        if kind == "open" and len(self.slots) + self.nopening >= MAX_SLOTS:
            return
        self.batch_names |= names
        got = []
        desc = (op, entry and entry[0])
        if kind == "open":
            _, name, flags, mode = op
            self.nopening += 1
            sync = run_sync(lambda: os.open(os.path.join(self.sroot, name), flags, mode))
            linuxaio.aio_open(os.path.join(self.aroot, name), flags, mode, got.append, pri=pri)

            def after(value, sync=sync, name=name):
                self.slots.append([name, sync[1], value])
            # the fd numbers differ between the worlds: compare success only
            self.add(desc, ("ok", "fd") if sync[0] == "ok" else sync, got,
                     convert=lambda v: v if isinstance(v, OSError) else "fd",
                     after=after if sync[0] == "ok" else self._close_leftover)
        elif kind == "close":
            sync = run_sync(lambda: os.close(entry[1]))
            linuxaio.aio_close(entry[2], got.append, pri=pri)
            self.add(desc, ("ok", 0) if sync == ("ok", None) else sync, got,
                     after=lambda v, entry=entry: self.slots.remove(entry))
        elif kind == "write":
            _, _, off, data, doff = op
            doff = min(doff, len(data))
            chunk = data[doff:]
            if off is None:
                sync = run_sync(lambda: os.write(entry[1], chunk))
            else:
                sync = run_sync(lambda: os.pwrite(entry[1], chunk, off))
            linuxaio.aio_write(entry[2], off, len(chunk), data, doff, got.append, pri=pri)
            self.add(desc, sync, got)
        elif kind == "read":
            _, _, off, length = op
            if off is None:
                sync = run_sync(lambda: os.read(entry[1], length))
            else:
                sync = run_sync(lambda: os.pread(entry[1], length, off))
            buf = bytearray(length)
            linuxaio.aio_read(entry[2], off, length, buf, 0, got.append, pri=pri)
            self.add(desc, sync, got,
                     convert=lambda v, buf=buf: v if isinstance(v, OSError) else bytes(buf[:v]))
        elif kind in ("stat", "lstat"):
            fn = os.stat if kind == "stat" else os.lstat
            aio = linuxaio.aio_stat if kind == "stat" else linuxaio.aio_lstat
            sync = run_sync(lambda: fn(os.path.join(self.sroot, op[1])))
            aio(os.path.join(self.aroot, op[1]), got.append, pri=pri)
            self.add(desc, sync, got)
        elif kind == "fstat":
            sync = run_sync(lambda: os.fstat(entry[1]))
            linuxaio.aio_stat(entry[2], got.append, pri=pri)
            self.add(desc, sync, got)
        elif kind == "unlink":
            sync = run_sync(lambda: os.unlink(os.path.join(self.sroot, op[1])))
            linuxaio.aio_unlink(os.path.join(self.aroot, op[1]), got.append, pri=pri)
            self.add(desc, ("ok", 0) if sync == ("ok", None) else sync, got)
        else:
            raise AssertionError(kind)

    @staticmethod
    def _close_leftover(value):
        if not isinstance(value, OSError):   # only reached after a mismatch
            os.close(value)

    # -- the end ---------------------------------------------------------------

    def finish(self):
        self.flush()
        results = []
        for name, sfd, afd in self.slots:
            os.close(sfd)
            linuxaio.aio_close(afd, results.append)
        linuxaio.flush()
        assert results == [0] * len(self.slots)
        self.slots.clear()
        for name in NAMES:
            sp, ap = os.path.join(self.sroot, name), os.path.join(self.aroot, name)
            assert os.path.lexists(sp) == os.path.lexists(ap), name
            if os.path.isfile(sp):
                with open(sp, "rb") as f1, open(ap, "rb") as f2:
                    assert f1.read() == f2.read(), f"contents of {name} differ"
                assert norm_stat(os.stat(sp)) == norm_stat(os.stat(ap))
        assert sorted(os.listdir(self.sroot)) == sorted(os.listdir(self.aroot))


class Pending:
    def __init__(self, desc, expect, got, convert, after):
        self.desc, self.expect, self.got, self.convert, self.after = desc, expect, got, convert, after


@pytest.mark.aio_timeout(150)
@settings(max_examples=50, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(program=PROGRAM)
def test_random_operation_sequences_match_os(program):
    with tempfile.TemporaryDirectory() as sroot, tempfile.TemporaryDirectory() as aroot:
        model = Model(sroot, aroot)
        try:
            model.step(("open", "a", os.O_RDWR, 0), False, 0)
            model.step(("open", "b", os.O_RDWR | os.O_APPEND, 0), False, 0)
            model.flush()
            assert len(model.slots) == 2
            for op, flush_first, pri in program:
                model.step(op, flush_first, pri)
            model.finish()
        finally:
            linuxaio.flush()
            for name, sfd, afd in model.slots:
                for fd in (sfd, afd):
                    try:
                        os.close(fd)
                    except OSError:
                        pass


@pytest.mark.aio_timeout(60)
@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=5000), chunks=st.lists(st.integers(1, 700), min_size=1, max_size=12),
       pris=st.lists(st.integers(-4, 4), min_size=12, max_size=12))
def test_chunked_parallel_writes_then_reads_reassemble_the_data(data, chunks, pris):
    """Many writes to one file at distinct offsets, in flight at once, then
    reads of the same pieces: the file equals what os would write."""
    with tempfile.TemporaryDirectory() as root:
        path = os.path.join(root, "f")
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            pieces, pos, i = [], 0, 0
            while pos < len(data):
                n = chunks[i % len(chunks)]
                pieces.append((pos, min(n, len(data) - pos)))
                pos += n
                i += 1
            got = []
            view = memoryview(data)
            for j, (off, n) in enumerate(pieces):
                linuxaio.aio_write(fd, off, n, view, off, got.append, pri=pris[j % 12])
            linuxaio.flush()
            assert sorted(got) == sorted(n for _, n in pieces)
            assert os.pread(fd, len(data) + 10, 0) == data
            buf = bytearray(len(data))
            got.clear()
            for j, (off, n) in enumerate(pieces):
                linuxaio.aio_read(fd, off, n, buf, off, got.append, pri=pris[-1 - j % 12])
            linuxaio.flush()
            assert bytes(buf) == data
        finally:
            os.close(fd)
