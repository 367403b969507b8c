"""Every bad argument is refused at submission, and nothing is queued."""
import array
import math
import mmap
import os

import pytest

import linuxaio
from aio_helpers import run_python

ERRORS = (TypeError, ValueError, OverflowError)


class Ctx:
    """What the cases need: a good path, a good fd, a file object."""

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "file")
        with open(self.path, "wb") as f:
            f.write(b"x" * 100)
        self.fd = os.open(self.path, os.O_RDWR)
        self.file = open(self.path, "rb")
        self.closed_file = open(self.path, "rb")
        self.closed_file.close()
        self.mmap = mmap.mmap(-1, 16)

    def close(self):
        os.close(self.fd)
        self.file.close()
        self.mmap.close()


@pytest.fixture
def ctx(tmp_path):
    c = Ctx(tmp_path)
    yield c
    c.close()


class FilenoReturns:
    def __init__(self, v):
        self.v = v

    def fileno(self):
        return self.v


class FilenoRaises:
    def fileno(self):
        raise ValueError("no fd here")


def rd(c, fd=None, offset=0, length=10, data=None, doff=0, **kw):
    return linuxaio.aio_read(c.fd if fd is None else fd, offset, length,
                             bytearray(20) if data is None else data, doff, None, **kw)


def wr(c, fd=None, offset=0, length=10, data=None, doff=0, **kw):
    return linuxaio.aio_write(c.fd if fd is None else fd, offset, length,
                              b"y" * 20 if data is None else data, doff, None, **kw)


CASES = [
    # lengths and offsets
    ("read_negative_length", lambda c: rd(c, length=-1), ValueError),
    ("write_negative_length", lambda c: wr(c, length=-1), ValueError),
    ("read_negative_offset", lambda c: rd(c, offset=-1), ValueError),
    ("write_negative_offset", lambda c: wr(c, offset=-5), ValueError),
    ("read_negative_dataoffset", lambda c: rd(c, doff=-1), ValueError),
    ("write_negative_dataoffset", lambda c: wr(c, doff=-1), ValueError),
    ("read_float_offset", lambda c: rd(c, offset=1.0), TypeError),
    ("read_str_length", lambda c: rd(c, length="10"), TypeError),
    ("write_float_length", lambda c: wr(c, length=2.5), TypeError),
    ("read_none_length", lambda c: rd(c, length=None), TypeError),
    ("read_none_dataoffset", lambda c: rd(c, doff=None), TypeError),
    ("read_huge_offset", lambda c: rd(c, offset=2 ** 64), OverflowError),
    ("write_huge_length", lambda c: wr(c, length=2 ** 64), OverflowError),
    ("read_huge_dataoffset", lambda c: rd(c, doff=2 ** 70), OverflowError),
    ("read_dataoffset_plus_length_overflows", lambda c: rd(c, length=10, doff=2 ** 63 - 5),
     (OverflowError, ValueError)),
    # buffers
    ("read_into_bytes", lambda c: rd(c, data=b"z" * 20), TypeError),
    ("read_into_readonly_memoryview", lambda c: rd(c, data=memoryview(b"z" * 20)), TypeError),
    ("read_into_readonly_memoryview_of_bytearray",
     lambda c: rd(c, data=memoryview(bytearray(20)).toreadonly()), TypeError),
    ("read_into_str", lambda c: rd(c, data="z" * 20), TypeError),
    ("read_into_list", lambda c: rd(c, data=[0] * 20), TypeError),
    ("read_into_none", lambda c: linuxaio.aio_read(c.fd, 0, 10, None, 0, None), TypeError),
    ("read_into_int", lambda c: rd(c, data=20), TypeError),
    ("write_from_str", lambda c: wr(c, data="y" * 20), TypeError),
    ("write_from_none", lambda c: linuxaio.aio_write(c.fd, 0, 1, None, 0, None), TypeError),
    ("write_from_list", lambda c: wr(c, data=[1, 2, 3]), TypeError),
    ("read_memoryview_too_small", lambda c: rd(c, length=30, data=memoryview(bytearray(20))), ValueError),
    ("read_memoryview_doff_too_far", lambda c: rd(c, length=10, data=memoryview(bytearray(20)), doff=11),
     ValueError),
    ("read_array_too_small", lambda c: rd(c, length=21, data=array.array("B", bytes(20))), ValueError),
    ("read_mmap_too_small", lambda c: rd(c, length=17, data=c.mmap), ValueError),
    ("read_huge_length_into_small_memoryview",
     lambda c: rd(c, length=2 ** 62, data=memoryview(bytearray(20))), (ValueError, OverflowError)),
    ("read_bytearray_exported_cannot_grow",
     lambda c: (lambda b: (memoryview(b), rd(c, length=50, data=b)))(bytearray(20)), ValueError),
    ("write_beyond_bytes", lambda c: wr(c, length=21, data=b"y" * 20), ValueError),
    ("write_doff_beyond_bytes", lambda c: wr(c, length=5, data=b"y" * 20, doff=16), ValueError),
    ("write_beyond_bytearray", lambda c: wr(c, length=21, data=bytearray(20)), ValueError),
    # paths
    ("open_none_path", lambda c: linuxaio.aio_open(None, os.O_RDONLY, 0, None), TypeError),
    ("stat_none_path", lambda c: linuxaio.aio_stat(None, None), TypeError),
    ("lstat_none_path", lambda c: linuxaio.aio_lstat(None, None), TypeError),
    ("unlink_none_path", lambda c: linuxaio.aio_unlink(None, None), TypeError),
    ("open_int_path", lambda c: linuxaio.aio_open(3, os.O_RDONLY, 0, None), TypeError),
    ("unlink_int_path", lambda c: linuxaio.aio_unlink(3, None), TypeError),
    ("open_list_path", lambda c: linuxaio.aio_open(["a"], os.O_RDONLY, 0, None), TypeError),
    ("stat_float", lambda c: linuxaio.aio_stat(1.5, None), TypeError),
    ("lstat_list", lambda c: linuxaio.aio_lstat([c.path], None), TypeError),
    ("unlink_bytearray_path", lambda c: linuxaio.aio_unlink(bytearray(b"/tmp/x"), None), TypeError),
    ("open_nul_in_str", lambda c: linuxaio.aio_open(c.path + "\0x", os.O_RDONLY, 0, None), ValueError),
    ("open_nul_in_bytes", lambda c: linuxaio.aio_open(os.fsencode(c.path) + b"\0", os.O_RDONLY, 0, None),
     ValueError),
    ("stat_nul", lambda c: linuxaio.aio_stat("a\0b", None), ValueError),
    ("lstat_nul", lambda c: linuxaio.aio_lstat(b"a\0b", None), ValueError),
    ("unlink_nul", lambda c: linuxaio.aio_unlink("a\0b", None), ValueError),
    # fds
    ("read_str_fd", lambda c: rd(c, fd="3"), TypeError),
    ("read_none_fd", lambda c: linuxaio.aio_read(None, 0, 1, bytearray(1), 0, None), TypeError),
    ("read_float_fd", lambda c: rd(c, fd=float(c.fd)), TypeError),
    ("write_float_fd", lambda c: wr(c, fd=3.0), TypeError),
    ("stat_float_fd", lambda c: linuxaio.aio_stat(float(c.fd), None), TypeError),
    ("close_float_fd", lambda c: linuxaio.aio_close(float(c.fd), None), TypeError),
    ("close_str_fd", lambda c: linuxaio.aio_close(str(c.fd), None), TypeError),
    ("close_none_fd", lambda c: linuxaio.aio_close(None, None), TypeError),
    ("close_file_object", lambda c: linuxaio.aio_close(c.file, None), TypeError),
    ("close_fileno_object", lambda c: linuxaio.aio_close(FilenoReturns(c.fd), None), TypeError),
    ("read_negative_fd", lambda c: rd(c, fd=-1), ValueError),
    ("stat_negative_fd", lambda c: linuxaio.aio_stat(-1, None), ValueError),
    ("close_negative_fd", lambda c: linuxaio.aio_close(-1, None), ValueError),
    ("read_huge_fd", lambda c: rd(c, fd=2 ** 40), OverflowError),
    ("close_huge_fd", lambda c: linuxaio.aio_close(2 ** 40, None), OverflowError),
    ("read_fileno_returns_str", lambda c: rd(c, fd=FilenoReturns("3")), TypeError),
    ("read_fileno_returns_negative", lambda c: rd(c, fd=FilenoReturns(-2)), ValueError),
    ("stat_fileno_returns_float", lambda c: linuxaio.aio_stat(FilenoReturns(3.0), None), TypeError),
    ("read_fileno_raises", lambda c: rd(c, fd=FilenoRaises()), ValueError),
    ("read_closed_file", lambda c: rd(c, fd=c.closed_file), ValueError),
    ("stat_closed_file", lambda c: linuxaio.aio_stat(c.closed_file, None), ValueError),
    # flags, mode, seconds
    ("open_str_flags", lambda c: linuxaio.aio_open(c.path, "r", 0, None), TypeError),
    ("open_float_flags", lambda c: linuxaio.aio_open(c.path, 0.0, 0, None), TypeError),
    ("open_none_flags", lambda c: linuxaio.aio_open(c.path, None, 0, None), TypeError),
    ("open_huge_flags", lambda c: linuxaio.aio_open(c.path, 2 ** 40, 0, None), OverflowError),
    ("open_negative_mode", lambda c: linuxaio.aio_open(c.path, os.O_RDONLY, -1, None), ValueError),
    ("open_mode_too_big", lambda c: linuxaio.aio_open(c.path, os.O_RDONLY, 0o10000, None), ValueError),
    ("open_str_mode", lambda c: linuxaio.aio_open(c.path, os.O_RDONLY, "644", None), TypeError),
    ("open_float_mode", lambda c: linuxaio.aio_open(c.path, os.O_RDONLY, 0.5, None), TypeError),
    ("busy_negative", lambda c: linuxaio.aio_busy(-0.1, None), ValueError),
    ("busy_nan", lambda c: linuxaio.aio_busy(math.nan, None), ValueError),
    ("busy_inf", lambda c: linuxaio.aio_busy(math.inf, None), ValueError),
    ("busy_longer_than_time_t", lambda c: linuxaio.aio_busy(1e300, None), OverflowError),
    ("utime_after_time_t", lambda c: linuxaio.aio_utime(c.path, 1e19, 1e19, None), OverflowError),
    ("utime_before_time_t", lambda c: linuxaio.aio_utime(c.path, 0.0, -1e19, None), OverflowError),
    ("utime_inf", lambda c: linuxaio.aio_utime(c.path, math.inf, 0.0, None), OverflowError),
    ("utime_nan", lambda c: linuxaio.aio_utime(c.path, 0.0, math.nan, None), ValueError),
    ("busy_str", lambda c: linuxaio.aio_busy("1", None), TypeError),
    ("busy_none", lambda c: linuxaio.aio_busy(None, None), TypeError),
    # arity and keywords
    ("nop_too_many", lambda c: linuxaio.aio_nop(None, None), TypeError),
    ("busy_too_few", lambda c: linuxaio.aio_busy(), TypeError),
    ("open_too_few", lambda c: linuxaio.aio_open(c.path, os.O_RDONLY), TypeError),
    ("open_too_many", lambda c: linuxaio.aio_open(c.path, os.O_RDONLY, 0, None, None), TypeError),
    ("close_too_few", lambda c: linuxaio.aio_close(), TypeError),
    ("read_too_few", lambda c: linuxaio.aio_read(c.fd, 0, 10, bytearray(10)), TypeError),
    ("read_too_many", lambda c: linuxaio.aio_read(c.fd, 0, 10, bytearray(10), 0, None, 0), TypeError),
    ("write_too_many", lambda c: linuxaio.aio_write(c.fd, 0, 1, b"x", 0, None, None), TypeError),
    ("stat_too_many", lambda c: linuxaio.aio_stat(c.path, None, None), TypeError),
    ("stat_too_few", lambda c: linuxaio.aio_stat(), TypeError),
    ("lstat_too_many", lambda c: linuxaio.aio_lstat(c.path, None, 1), TypeError),
    ("unlink_too_few", lambda c: linuxaio.aio_unlink(), TypeError),
    ("group_too_many", lambda c: linuxaio.aio_group(None, None), TypeError),
    ("nop_unknown_keyword", lambda c: linuxaio.aio_nop(priority=1), TypeError),
    ("stat_unknown_keyword", lambda c: linuxaio.aio_stat(c.path, cb=print), TypeError),
    ("group_unknown_keyword", lambda c: linuxaio.aio_group(foo=1), TypeError),
    ("read_keyword_for_positional", lambda c: linuxaio.aio_read(c.fd, 0, 10, bytearray(10), dataoffset=0),
     TypeError),
    ("callback_twice", lambda c: linuxaio.aio_nop(print, callback=print), TypeError),
    ("open_callback_twice", lambda c: linuxaio.aio_open(c.path, 0, 0, print, callback=print), TypeError),
    # callbacks
    ("nop_int_callback", lambda c: linuxaio.aio_nop(1), TypeError),
    ("nop_str_callback_keyword", lambda c: linuxaio.aio_nop(callback="print"), TypeError),
    ("busy_callback", lambda c: linuxaio.aio_busy(0, 0), TypeError),
    ("open_callback", lambda c: linuxaio.aio_open(c.path, os.O_RDONLY, 0, "cb"), TypeError),
    ("close_callback", lambda c: linuxaio.aio_close(c.fd, 1.5), TypeError),
    ("read_callback", lambda c: linuxaio.aio_read(c.fd, 0, 10, bytearray(10), 0, [print]), TypeError),
    ("write_callback", lambda c: linuxaio.aio_write(c.fd, 0, 1, b"x", 0, object()), TypeError),
    ("stat_callback", lambda c: linuxaio.aio_stat(c.path, 0), TypeError),
    ("lstat_callback", lambda c: linuxaio.aio_lstat(c.path, True), TypeError),
    ("unlink_callback", lambda c: linuxaio.aio_unlink(c.path, b"cb"), TypeError),
    ("group_callback", lambda c: linuxaio.aio_group(42), TypeError),
    # pri
    ("pri_too_high", lambda c: linuxaio.aio_nop(None, pri=5), ValueError),
    ("pri_too_low", lambda c: linuxaio.aio_nop(pri=-5), ValueError),
    ("pri_far_too_high", lambda c: linuxaio.aio_stat(c.path, pri=2 ** 31), (ValueError, OverflowError)),
    ("pri_huge", lambda c: linuxaio.aio_nop(pri=2 ** 80), OverflowError),
    ("pri_str", lambda c: linuxaio.aio_nop(pri="1"), TypeError),
    ("pri_float", lambda c: linuxaio.aio_nop(pri=1.0), TypeError),
    ("pri_none", lambda c: linuxaio.aio_nop(pri=None), TypeError),
    ("read_bad_pri", lambda c: rd(c, pri=9), ValueError),
    ("open_bad_pri", lambda c: linuxaio.aio_open(c.path, 0, 0, None, pri=-9), ValueError),
    ("group_bad_pri", lambda c: linuxaio.aio_group(pri=7), ValueError),
]


def _counters():
    return linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_argument_is_refused_and_nothing_is_queued(ctx, case):
    _, call, exc = case
    linuxaio.max_parallel(0)    # anything that slipped through would show in nready()
    before = _counters()
    with pytest.raises(exc):
        call(ctx)
    assert _counters() == before
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert linuxaio.nreqs() == 0


def test_refused_requests_never_run(tmp_path):
    """A request refused for its callback does not run anyway."""
    target = tmp_path / "never"
    with pytest.raises(TypeError):
        linuxaio.aio_open(target, os.O_CREAT | os.O_WRONLY, 0o600, 12)
    with pytest.raises(ValueError):
        linuxaio.aio_open(target, os.O_CREAT | os.O_WRONLY, 0o600, None, pri=99)
    victim = tmp_path / "keep"
    victim.write_bytes(b"x")
    with pytest.raises(TypeError):
        linuxaio.aio_unlink(victim, "not callable")
    linuxaio.flush()
    assert not target.exists() and victim.exists()


def test_refused_read_leaves_the_bytearray_alone(ctx):
    """A read refused at submission has no effect, not even growing the buffer."""
    buf = bytearray(b"abc")
    with pytest.raises(TypeError):
        linuxaio.aio_read(ctx.fd, 0, 50, buf, 0, "not callable")
    assert buf == bytearray(b"abc")


def test_refused_arguments_release_buffers(ctx):
    """After a refusal no buffer stays pinned (the bytearray can still grow)."""
    buf = bytearray(20)
    with pytest.raises(ValueError):
        linuxaio.aio_read(ctx.fd, 0, 10, buf, 0, None, pri=100)
    with pytest.raises(TypeError):
        linuxaio.aio_read(ctx.fd, 0, 10, buf, 0, 5)
    with pytest.raises(ValueError):
        linuxaio.aio_write(ctx.fd, 0, 30, buf, 0, None)
    buf.extend(b"more")    # BufferError if a view leaked
    assert len(buf) == 24


GROUP_CASES = [
    ("limit_negative", lambda g: g.limit(-1), ValueError),
    ("limit_str", lambda g: g.limit("2"), TypeError),
    ("limit_none", lambda g: g.limit(None), TypeError),
    ("feed_not_callable", lambda g: g.feed(3), TypeError),
    ("add_int", lambda g: g.add(1), TypeError),
    ("add_none", lambda g: g.add(None), TypeError),
    ("add_itself", lambda g: g.add(g), ValueError),
    ("add_no_keywords", lambda g: g.add(req=linuxaio.aio_nop()), TypeError),
    ("result_two_args", lambda g: g.result(1, 2), TypeError),
]


@pytest.mark.parametrize("case", GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_bad_group_arguments(case):
    _, call, exc = case
    got = []
    linuxaio.max_parallel(0)
    g = linuxaio.aio_group(got.append)
    keep = linuxaio.aio_nop()
    g.add(keep)
    with pytest.raises(exc):
        call(g)
    assert g.size == 1
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert got == [None]


CONTROL_CASES = [
    ("min_parallel_negative", lambda: linuxaio.min_parallel(-1), ValueError),
    ("min_parallel_absurd", lambda: linuxaio.min_parallel(10 ** 9), (ValueError, OverflowError)),
    ("min_parallel_str", lambda: linuxaio.min_parallel("4"), TypeError),
    ("max_parallel_negative", lambda: linuxaio.max_parallel(-1), ValueError),
    ("max_parallel_float", lambda: linuxaio.max_parallel(1.5), TypeError),
    ("max_idle_negative", lambda: linuxaio.max_idle(-1), ValueError),
    ("idle_timeout_negative", lambda: linuxaio.idle_timeout(-1), ValueError),
    ("idle_timeout_nan", lambda: linuxaio.idle_timeout(math.nan), ValueError),
    ("idle_timeout_str", lambda: linuxaio.idle_timeout("1"), TypeError),
    ("max_poll_reqs_negative", lambda: linuxaio.max_poll_reqs(-1), ValueError),
    ("max_poll_time_negative", lambda: linuxaio.max_poll_time(-0.5), ValueError),
    ("max_poll_time_nan", lambda: linuxaio.max_poll_time(math.nan), ValueError),
    ("idle_timeout_inf", lambda: linuxaio.idle_timeout(math.inf), ValueError),
    ("idle_timeout_huge", lambda: linuxaio.idle_timeout(1e300), ValueError),
    ("max_poll_time_inf", lambda: linuxaio.max_poll_time(math.inf), ValueError),
    ("max_poll_time_huge", lambda: linuxaio.max_poll_time(1e300), ValueError),
    ("spin_huge", lambda: linuxaio._engine._set_spin(1e300, 0.0), ValueError),
    ("spin_nan", lambda: linuxaio._engine._set_spin(0.0, math.nan), ValueError),
    ("max_outstanding_negative", lambda: linuxaio.max_outstanding(-1), ValueError),
    ("max_outstanding_str", lambda: linuxaio.max_outstanding("1"), TypeError),
    ("poll_cb_args", lambda: linuxaio.poll_cb(1), TypeError),
    ("nreqs_args", lambda: linuxaio.nreqs(1), TypeError),
]


@pytest.mark.parametrize("case", CONTROL_CASES, ids=[c[0] for c in CONTROL_CASES])
def test_bad_control_arguments(case):
    _, call, exc = case
    with pytest.raises(exc):
        call()
    got = []
    linuxaio.aio_nop(got.append)
    linuxaio.flush()
    assert got == [0]


# ------------------------------------------------------------ submit_many

def _in_child(code, timeout=30):
    """Run code in a fresh interpreter: a crash or a hang there fails the test."""
    proc, _ = run_python(code, timeout=timeout)
    assert proc.returncode == 0, f"rc={proc.returncode} stdout={proc.stdout!r} stderr={proc.stderr!r}"
    return proc.stdout.split()


def test_submit_many_with_an_unencodable_op_name_raises():
    out = _in_child("""
import linuxaio
for name in ("\\udc80", "aio_nop\\udc80"):
    try:
        linuxaio.submit_many(name, [])
    except ValueError:   # UnicodeEncodeError is one
        print("refused")
print(linuxaio.nreqs())
""")
    assert out == ["refused", "refused", "0"]


def test_submit_many_with_a_nul_in_the_op_name_raises():
    with pytest.raises(ValueError):
        linuxaio.submit_many("aio_nop\0tail", [()])
    assert linuxaio.nreqs() == 0


MUTATED_BATCH = """
import gc, os, linuxaio

class Clears:
    # Python code run while submit_many parses the batch: it empties (or
    # refills) the list, freeing the tuples that are being parsed.
    def __init__(self, lst, how):
        self.lst, self.how = lst, how
    def _mutate(self):
        if self.how == "clear":
            self.lst.clear()
        else:
            self.lst[:] = [(bytearray(64),) for _ in range(len(self.lst))]
        gc.collect()
        [bytes(48) for _ in range(1000)]   # reuse the freed memory
    def __fspath__(self):
        self._mutate()
        return "/"
    def __index__(self):
        self._mutate()
        return 0
    def fileno(self):
        self._mutate()
        return 0

ok = 0
for how in ("clear", "replace"):
    for op, make in (("aio_stat", lambda o: (o,)),
                     ("aio_read", lambda o: (0, o, 4, bytearray(8), 0)),
                     ("aio_fsync", lambda o: (o,))):
        lst = []
        lst += [make(Clears(lst, how))] + [make("/" if op == "aio_stat" else 0) for _ in range(20)]
        if op == "aio_read":
            lst[1:] = [(0, 0, 4, bytearray(8) + b"x" * i, 0) for i in range(20)]
        try:
            linuxaio.submit_many(op, lst, None)
        except (TypeError, ValueError, OSError):
            pass
        linuxaio.flush()
        ok += 1
print(ok, linuxaio.nreqs())
"""


def test_submit_many_survives_a_batch_that_argument_code_clears_or_replaces():
    assert _in_child(MUTATED_BATCH) == ["6", "0"]


def test_utime_in_range_still_sets_the_time(ctx):
    """The range check leaves every representable time alone (before 1970 too)."""
    for t in (-1.5, 0.0, 2.0 ** 32 + 0.25):
        got = []
        linuxaio.aio_utime(ctx.path, t, t, got.append)
        linuxaio.flush()
        assert got == [0] and os.stat(ctx.path).st_mtime == t


def test_exit_grace_out_of_range_still_waits_for_running_requests():
    """EXIT_GRACE becomes a number of nanoseconds: 1e300 must not wrap to
    "no grace at all"; it waits for the running request, as a long grace does."""
    from aio_helpers import run_python
    code = ("import linuxaio\n"
            "linuxaio.EXIT_GRACE = 1e300\n"
            "linuxaio.aio_busy(0.3, print)\n"
            "import time; time.sleep(0.05)\n")
    proc, elapsed = run_python(code, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert elapsed >= 0.3


# ------------------------------------------------------------ the engine's eventfd

def _efd_cases(c):
    efd = linuxaio.poll_fileno()

    class Wraps:
        def fileno(self):
            return efd
    from linuxaio import _engine
    return [
        ("aio_close", lambda cb: linuxaio.aio_close(efd, cb)),
        ("aio_close_loop_fd", lambda cb: linuxaio.aio_close(_engine._loop_fileno(), cb)),
        ("aio_read", lambda cb: linuxaio.aio_read(efd, None, 8, bytearray(8), 0, cb)),
        ("aio_read_fileno", lambda cb: linuxaio.aio_read(Wraps(), None, 8, bytearray(8), 0, cb)),
        ("aio_write", lambda cb: linuxaio.aio_write(efd, None, 8, b"\1" * 8, 0, cb)),
        ("aio_stat", lambda cb: linuxaio.aio_stat(efd, cb)),
        ("aio_fsync", lambda cb: linuxaio.aio_fsync(efd, cb)),
        ("aio_chmod", lambda cb: linuxaio.aio_chmod(efd, 0o600, cb)),
        ("aio_truncate", lambda cb: linuxaio.aio_truncate(efd, 0, cb)),
        ("close", lambda cb: _engine.close(efd, cb)),
        ("read", lambda cb: _engine.read(efd, 8, cb)),
        ("write", lambda cb: _engine.write(efd, b"\1" * 8, cb)),
        ("fstat", lambda cb: _engine.fstat(efd, cb)),
        ("stat_dir_fd", lambda cb: _engine.stat("x", efd, 0, cb)),
        ("open_dir_fd", lambda cb: _engine.open("x", os.O_RDONLY, 0, efd, cb)),
    ]


EFD_NAMES = [n for n, _ in _efd_cases(None)]


@pytest.mark.parametrize("name", EFD_NAMES)
def test_engine_eventfd_as_an_fd_fails_with_ebadf(name):
    call = dict(_efd_cases(None))[name]
    efd = linuxaio.poll_fileno()
    got = []
    call(got.append)
    linuxaio.flush()
    assert len(got) == 1 and isinstance(got[0], OSError) and got[0].errno == 9, got
    os.fstat(efd)                          # still open, still the engine's
    # and still working: a result wakes it, and it is quiet once handled
    linuxaio.aio_nop(got.append)
    linuxaio.poll_wait()
    import select
    assert select.select([efd], [], [], 1)[0]
    linuxaio.poll_cb()
    assert not select.select([efd], [], [], 0)[0]


def test_engine_eventfd_refused_by_file_objects():
    import asyncio

    async def main():
        with pytest.raises(OSError) as exc:
            await linuxaio.open(linuxaio.poll_fileno(), "rb", closefd=False)
        return exc.value.errno
    assert asyncio.run(main()) == 9
