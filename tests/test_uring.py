"""The io_uring backend: engine choice and its explanations, and requests on
the ring held to the same semantics as on the threads.

Tests that need a ring in this process skip (saying why) when the engine is
threads (LINUXAIO_ENGINE=threads, or a kernel without io_uring); those that
choose the engine run a child interpreter with LINUXAIO_ENGINE set."""
import asyncio
import errno
import mmap
import os
import random
import textwrap
import threading

import pytest

import linuxaio
from aio_helpers import fd_count, run_forked, run_python, wait_until

BLOCK = 4096
FILE_BLOCKS = 512          # 2 MiB test file


def ring_on():
    return linuxaio.engine() == "uring"


needs_ring = pytest.mark.skipif(
    not ring_on(), reason="no io_uring ring in this process: %s" % linuxaio.engine_info()["reason"])


def kernel_has_io_uring():
    proc, _ = run_python("import linuxaio; print(linuxaio.engine())", env={"LINUXAIO_ENGINE": "auto"})
    return proc.stdout.strip() == "uring"


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """A file on a file system that takes O_DIRECT (not tmpfs)."""
    path = tmp_path_factory.mktemp("ring") / "data.bin"
    data = os.urandom(FILE_BLOCKS * BLOCK)
    path.write_bytes(data)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
    except OSError as e:
        pytest.skip(f"the test directory's file system refuses O_DIRECT ({e})")
    return str(path), data


def direct_fd(path):
    return os.open(path, os.O_RDONLY | os.O_DIRECT)


# ---- engine(), engine_info(), LINUXAIO_ENGINE ----


def test_engine_info_has_the_documented_keys():
    info = linuxaio.engine_info()
    assert info["engine"] == linuxaio.engine() in ("uring", "threads")
    assert info["kernel"] == os.uname().release
    assert isinstance(info["ring_ops"], list)
    if info["engine"] == "uring":
        assert info["reason"] is None
        assert "preadinto" in info["ring_ops"] and "slurp" in info["ring_ops"]
    else:
        assert isinstance(info["reason"], str) and "io_uring" in info["reason"]
        assert info["ring_ops"] == []


def test_engine_threads_makes_no_ring_and_says_why():
    code = "import linuxaio; i = linuxaio.engine_info(); print(linuxaio.engine(), '|', i['reason'], '|', i['ring_ops'])"
    proc, _ = run_python(code, env={"LINUXAIO_ENGINE": "threads"})
    assert proc.returncode == 0, proc.stderr
    engine, reason, ops = (s.strip() for s in proc.stdout.split("|"))
    assert engine == "threads" and ops == "[]"
    assert "io_uring" in reason and "LINUXAIO_ENGINE=threads" in reason


def test_engine_threads_makes_no_io_uring_syscall():
    # a filter that kills the process on any io_uring syscall: threads must not make one
    code = SECCOMP + textwrap.dedent("""
        deny([425, 426, 427], None)
        import linuxaio, os
        fd = os.open('/proc/self/stat', os.O_RDONLY)
        linuxaio.aio_read(fd, 0, 10, bytearray(10), 0, print)
        linuxaio.flush()
        print('threads ok', linuxaio.engine())
        """)
    proc, _ = run_python(code, env={"LINUXAIO_ENGINE": "threads"})
    assert proc.returncode == 0 and "threads ok threads" in proc.stdout, proc.stderr


def test_bad_engine_value_fails_the_import():
    proc, _ = run_python("import linuxaio", env={"LINUXAIO_ENGINE": "fibers"})
    assert proc.returncode != 0
    assert "LINUXAIO_ENGINE=fibers" in proc.stderr and "auto, threads or uring" in proc.stderr


def test_engine_uring_is_strict_and_auto_uses_the_ring_where_the_kernel_has_one():
    if not kernel_has_io_uring():
        pytest.skip("this kernel gives no io_uring ring (see engine_info()['reason'])")
    proc, _ = run_python("import linuxaio; print(linuxaio.engine())", env={"LINUXAIO_ENGINE": "uring"})
    assert proc.returncode == 0 and proc.stdout.strip() == "uring", proc.stderr


# A seccomp filter in Python (ctypes, no root: PR_SET_NO_NEW_PRIVS first),
# installed in a child interpreter before linuxaio is imported.  deny(nrs,
# err) makes those syscalls fail with errno err (None: kill the process).
SECCOMP = textwrap.dedent("""
    import ctypes, struct
    def deny(nrs, err):
        libc = ctypes.CDLL(None, use_errno=True)
        LD_NR = 0x20          # BPF_LD | BPF_W | BPF_ABS, seccomp_data.nr at 0
        JEQ = 0x15            # BPF_JMP | BPF_JEQ | BPF_K
        RET = 0x06            # BPF_RET | BPF_K
        action = 0 if err is None else 0x00050000 | err   # KILL_THREAD, or ERRNO | err
        prog = [(LD_NR, 0, 0, 0)]
        for nr in nrs:
            prog.append((JEQ, 0, 1, nr))
            prog.append((RET, 0, 0, action))
        prog.append((RET, 0, 0, 0x7fff0000))             # ALLOW
        raw = b''.join(struct.pack('HBBI', *ins) for ins in prog)
        buf = ctypes.create_string_buffer(raw, len(raw))
        class fprog(ctypes.Structure):
            _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
        p = fprog(len(prog), ctypes.addressof(buf))
        assert libc.prctl(38, 1, 0, 0, 0) == 0                               # PR_SET_NO_NEW_PRIVS
        assert libc.prctl(22, 2, ctypes.byref(p), 0, 0) == 0, ctypes.get_errno()  # PR_SET_SECCOMP, FILTER
    """)

IO_URING_SETUP = 425       # the same number on every architecture (since 5.1)

REPORT = textwrap.dedent("""
    import linuxaio, os, tempfile
    i = linuxaio.engine_info()
    # the threads still serve every request
    with tempfile.NamedTemporaryFile() as f:
        f.write(b'hello'); f.flush()
        got = []
        linuxaio.aio_slurp(f.name, 0, None, got.append)
        linuxaio.flush()
    print(linuxaio.engine(), got[0], sep='|')
    print(i['reason'])
    """)


def io_uring_disabled():
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return int(f.read())
    except OSError:
        return 0


@pytest.mark.parametrize("err, words", [
    (errno.EPERM, ["seccomp", "io_uring_setup", "EPERM"]),
    (errno.ENOSYS, ["ENOSYS", "io_uring"]),
    (errno.ENOMEM, ["ENOMEM", "RLIMIT_MEMLOCK", "ulimit -l"]),
    (errno.EINVAL, ["io_uring_setup failed", "Invalid argument"]),
])
def test_refused_ring_auto_falls_back_to_threads_with_its_reason(err, words):
    if err == errno.EPERM and io_uring_disabled():
        pytest.skip("kernel.io_uring_disabled is set here: EPERM then means the sysctl, not seccomp")
    proc, _ = run_python(SECCOMP + f"deny([{IO_URING_SETUP}], {err})\n" + REPORT,
                         env={"LINUXAIO_ENGINE": "auto"})
    assert proc.returncode == 0, proc.stderr
    first, reason = proc.stdout.strip().split("\n")
    assert first == "threads|b'hello'"
    assert "io_uring" in reason and "fix:" in reason, reason
    for w in words:
        assert w in reason, (w, reason)


@pytest.mark.parametrize("err, words", [
    (errno.EPERM, ["seccomp", "io_uring"]),
    (errno.ENOSYS, ["ENOSYS", "io_uring"]),
])
def test_refused_ring_under_uring_fails_the_import_naming_cause_and_fix(err, words):
    if err == errno.EPERM and io_uring_disabled():
        pytest.skip("kernel.io_uring_disabled is set here: EPERM then means the sysctl, not seccomp")
    proc, _ = run_python(SECCOMP + f"deny([{IO_URING_SETUP}], {err})\nimport linuxaio\n",
                         env={"LINUXAIO_ENGINE": "uring"})
    assert proc.returncode != 0
    assert "OSError" in proc.stderr and "LINUXAIO_ENGINE=uring" in proc.stderr and "fix:" in proc.stderr
    for w in words:
        assert w in proc.stderr, (w, proc.stderr)


# ---- requests on the ring ----


@needs_ring
def test_direct_reads_go_to_the_ring_and_return_the_files_bytes(data_file):
    path, data = data_file
    fd = direct_fd(path)
    try:
        buf = linuxaio.aligned_buffer(4 * BLOCK)
        got = []
        linuxaio.aio_read(fd, 8 * BLOCK, 4 * BLOCK, buf, 0, got.append)
        linuxaio.flush()
        assert got == [4 * BLOCK]
        with open(path, "rb") as f:
            assert bytes(buf) == data[8 * BLOCK:12 * BLOCK] == os.pread(f.fileno(), 4 * BLOCK, 8 * BLOCK)
    finally:
        os.close(fd)


@needs_ring
def test_more_requests_than_the_completion_queue_holds(data_file):
    path, data = data_file
    n = 3 * linuxaio.engine_info()["cq_entries"]
    fd = direct_fd(path)
    linuxaio.min_parallel(256)   # as deep as the ring goes: the CQ bounds it, not the limit
    try:
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(64)]
        offsets = [random.randrange(FILE_BLOCKS) * BLOCK for _ in range(n)]
        results = {}
        for i, off in enumerate(offsets):
            b = bufs[i % 64]
            linuxaio.aio_read(fd, off, BLOCK, b, 0, lambda res, i=i, b=b: results.__setitem__(i, (res, b[:16])))
            if i % 64 == 63:
                linuxaio.flush()   # the 64 buffers are reused after each round
        linuxaio.flush()
        assert len(results) == n
        for i, off in enumerate(offsets):
            assert results[i] == (BLOCK, data[off:off + 16])
    finally:
        os.close(fd)


@needs_ring
def test_more_in_flight_at_once_than_the_completion_queue_holds(data_file):
    path, data = data_file
    n = 2 * linuxaio.engine_info()["cq_entries"] + 7
    fd = direct_fd(path)
    linuxaio.min_parallel(256)
    try:
        big = linuxaio.aligned_buffer(n * BLOCK)
        args = [(fd, (i % FILE_BLOCKS) * BLOCK, BLOCK, big, i * BLOCK) for i in range(n)]
        out = []
        linuxaio.submit_many("aio_read", args, out.append)
        assert linuxaio.nreqs() >= n
        linuxaio.flush()
        assert out == [[BLOCK] * n]
        for i in range(0, n, 97):
            off = (i % FILE_BLOCKS) * BLOCK
            assert big[i * BLOCK:(i + 1) * BLOCK] == data[off:off + BLOCK]
    finally:
        os.close(fd)


@needs_ring
def test_short_read_at_end_of_file(data_file):
    path, data = data_file
    size = len(data)
    fd = direct_fd(path)

    async def main():
        buf = linuxaio.aligned_buffer(4 * BLOCK)
        n = await linuxaio.os.preadinto(fd, buf, size - BLOCK)
        past = await linuxaio.os.preadinto(fd, buf, size + BLOCK)
        return n, bytes(buf[:BLOCK]), past
    try:
        n, head, past = asyncio.run(main())
        assert (n, past) == (BLOCK, 0)
        assert head == data[-BLOCK:]
    finally:
        os.close(fd)


@needs_ring
def test_page_cache_miss_through_the_ring_equals_os_pread(tmp_path):
    path = tmp_path / "cold.bin"
    data = os.urandom(300_000)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)   # clean pages leave the cache
        assert "slurp" in linuxaio.engine_info()["ring_ops"]
        got = asyncio.run(linuxaio.slurp(path, 1000, 200_000))
        assert got == os.pread(fd, 200_000, 1000) == data[1000:201_000]
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        assert asyncio.run(linuxaio.slurp(path)) == os.pread(fd, len(data) + 1, 0)
    finally:
        os.close(fd)


@needs_ring
def test_slurp_on_the_ring_reports_errors_as_os_does(tmp_path):
    async def main():
        with pytest.raises(FileNotFoundError):
            await linuxaio.slurp(tmp_path / "absent")
        with pytest.raises(IsADirectoryError):
            await linuxaio.slurp(tmp_path)
        with pytest.raises(IsADirectoryError):
            await linuxaio.slurp(tmp_path, 0, 0)
        (tmp_path / "empty").write_bytes(b"")
        assert await linuxaio.slurp(tmp_path / "empty") == b""
        assert (await linuxaio.slurp("/proc/self/stat")).startswith(str(os.getpid()).encode())
    asyncio.run(main())


@needs_ring
def test_max_parallel_zero_holds_ring_requests_and_cancel_before_start_never_runs(data_file):
    path, data = data_file
    fd = direct_fd(path)
    try:
        linuxaio.max_parallel(0)
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(6)]
        order = []
        reqs = [linuxaio.aio_read(fd, i * BLOCK, BLOCK, bufs[i], 0,
                                  lambda res, i=i: order.append(i), pri=i % 3 - 1) for i in range(6)]
        assert linuxaio.nready() == 6 and linuxaio.nreqs() == 6
        with pytest.raises(RuntimeError, match="max_parallel is 0"):
            linuxaio.poll_wait()
        assert reqs[4].cancel()
        linuxaio.poll_cb()
        assert linuxaio.nready() == 5 and order == []
        linuxaio.min_parallel(1)   # one at a time: priorities order what starts
        linuxaio.flush()
        assert order == [2, 5, 1, 0, 3]   # pri 1, then 0, then -1; in order within one
        assert all(bytes(bufs[i]) == data[i * BLOCK:(i + 1) * BLOCK] for i in order)
        assert bytes(bufs[4]) == bytes(BLOCK)   # never ran
    finally:
        os.close(fd)


@needs_ring
def test_groups_count_ring_requests(data_file):
    path, data = data_file
    fd = direct_fd(path)
    try:
        done = []
        g = linuxaio.aio_group(done.append)
        g.result("all read")
        seen = []
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(8)]
        for i in range(8):
            g.add(linuxaio.aio_read(fd, i * BLOCK, BLOCK, bufs[i], 0, seen.append))
        assert linuxaio.nreqs() >= 8
        linuxaio.flush()
        assert seen == [BLOCK] * 8 and done == ["all read"]
        assert linuxaio.nreqs() == 0
    finally:
        os.close(fd)


@needs_ring
def test_cancel_racing_completion_either_delivers_or_cancels(data_file):
    path, data = data_file
    fd = direct_fd(path)
    linuxaio.min_parallel(64)
    try:
        for rnd in range(20):
            bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(64)]
            got = {}
            reqs = [linuxaio.aio_read(fd, i * BLOCK, BLOCK, bufs[i], 0,
                                      lambda res, i=i: got.__setitem__(i, res)) for i in range(64)]
            for i in random.sample(range(64), 32):
                reqs[i].cancel()
            linuxaio.flush()
            for i, r in enumerate(reqs):
                if i in got:
                    assert got[i] == BLOCK and bytes(bufs[i]) == data[i * BLOCK:(i + 1) * BLOCK]
                else:
                    assert r.cancelled()
            assert linuxaio.nreqs() == 0
    finally:
        os.close(fd)


@needs_ring
def test_cancelled_slurps_leave_no_fd_open(tmp_path):
    paths = []
    for i in range(200):
        p = tmp_path / f"f{i}"
        p.write_bytes(os.urandom(3000 + i))
        paths.append(p)
    before = fd_count()
    got = []
    for rnd in range(5):
        reqs = [linuxaio.aio_slurp(p, 0, None, got.append) for p in paths]
        for r in reqs[rnd::3]:
            r.cancel()
        linuxaio.flush()
    assert linuxaio.nreqs() == 0
    wait_until(lambda: fd_count() == before, 5, "every slurp's fd closed")
    assert got and all(isinstance(b, bytes) for b in got)


@needs_ring
def test_a_submitting_thread_that_exits_before_its_requests_complete(data_file):
    path, data = data_file
    fd = direct_fd(path)
    linuxaio.min_parallel(64)
    try:
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(128)]
        got = {}

        def submitter(base):
            for i in range(base, base + 64):
                linuxaio.aio_read(fd, i * BLOCK, BLOCK, bufs[i], 0, lambda res, i=i: got.__setitem__(i, res))
        threads = [threading.Thread(target=submitter, args=(b,)) for b in (0, 64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()   # gone before most of their reads complete
        linuxaio.flush()
        assert got == {i: BLOCK for i in range(128)}
        assert all(bytes(bufs[i]) == data[i * BLOCK:(i + 1) * BLOCK] for i in range(128))
    finally:
        os.close(fd)


@needs_ring
def test_fork_with_ring_requests_in_flight(data_file):
    path, data = data_file
    fd = direct_fd(path)
    linuxaio.min_parallel(64)
    try:
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(64)]
        got = {}
        for i in range(64):
            linuxaio.aio_read(fd, i * BLOCK, BLOCK, bufs[i], 0, lambda res, i=i: got.__setitem__(i, res))

        def child():
            # a fresh engine with a ring of its own; none of the parent's requests
            if linuxaio.nreqs() != 0 or linuxaio.engine() != "uring":
                return 3
            b = asyncio.run(linuxaio.slurp(path, BLOCK, BLOCK))
            mine = linuxaio.aligned_buffer(BLOCK)
            n = asyncio.run(linuxaio.os.preadinto(fd, mine, 2 * BLOCK))
            ok = b == data[BLOCK:2 * BLOCK] and n == BLOCK and bytes(mine) == data[2 * BLOCK:3 * BLOCK]
            return 0 if ok and linuxaio.nreqs() == 0 else 4
        assert run_forked(child) == 0
        linuxaio.flush()
        assert got == {i: BLOCK for i in range(64)}
        assert all(bytes(bufs[i]) == data[i * BLOCK:(i + 1) * BLOCK] for i in range(64))
    finally:
        os.close(fd)


@needs_ring
def test_exit_with_direct_reads_in_flight(data_file):
    path, _ = data_file
    code = textwrap.dedent(f"""
        import linuxaio, os
        assert linuxaio.engine() == 'uring'
        fd = os.open({path!r}, os.O_RDONLY | os.O_DIRECT)
        bufs = [linuxaio.aligned_buffer(65536) for _ in range(200)]
        for i in range(200):
            linuxaio.aio_read(fd, (i % 32) * 65536, 65536, bufs[i], 0, print)
        print('leaving', linuxaio.nreqs())
        """)
    proc, elapsed = run_python(code, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("leaving 200")
    assert "Traceback" not in proc.stderr


@needs_ring
def test_reinit_with_ring_requests_queued_and_in_flight(data_file):
    path, data = data_file
    fd = direct_fd(path)
    try:
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(64)]
        got = []
        for i in range(64):
            linuxaio.aio_read(fd, i * BLOCK, BLOCK, bufs[i], 0, got.append)
        linuxaio.reinit()
        assert linuxaio.nreqs() == 0
        linuxaio.flush()
        assert got == []
        b = bytearray(10)
        n = asyncio.run(linuxaio.os.preadinto(fd, linuxaio.aligned_buffer(BLOCK), 0))
        assert n == BLOCK and b == bytearray(10)
    finally:
        os.close(fd)


@needs_ring
def test_writes_on_the_ring(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(bytes(8 * BLOCK))
    fd = os.open(path, os.O_RDWR | os.O_DIRECT)
    try:
        src = linuxaio.aligned_buffer(2 * BLOCK)
        src[:] = os.urandom(2 * BLOCK)

        async def main():
            n = await linuxaio.os.pwrite(fd, src, 3 * BLOCK)
            m = await linuxaio.os.pwritev(fd, [memoryview(src)[:BLOCK]], 6 * BLOCK)
            return n, m
        assert asyncio.run(main()) == (2 * BLOCK, BLOCK)
    finally:
        os.close(fd)
    disk = path.read_bytes()
    assert disk[3 * BLOCK:5 * BLOCK] == bytes(src) and disk[6 * BLOCK:7 * BLOCK] == bytes(src[:BLOCK])


def test_uring_engine_runs_buffered_reads_on_the_ring_too(tmp_path):
    if not kernel_has_io_uring():
        pytest.skip("this kernel gives no io_uring ring")
    path = tmp_path / "b.bin"
    path.write_bytes(b"0123456789" * 1000)
    code = textwrap.dedent(f"""
        import linuxaio, asyncio, os
        fd = os.open({str(path)!r}, os.O_RDONLY)
        async def main():
            b = bytearray(20)
            n = await linuxaio.os.preadinto(fd, b, 9995)
            data = await linuxaio.os.pread(fd, 7, 3)
            return n, bytes(b[:n]), data
        print(asyncio.run(main()), linuxaio.engine_info()['ring_policy']['preadinto'])
        """)
    proc, _ = run_python(code, env={"LINUXAIO_ENGINE": "uring"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(5, b'56789', b'3456789') always"


def test_auto_reads_cached_files_on_threads_and_a_cold_fds_on_the_ring(tmp_path):
    """auto: a small buffered read of a file in the page cache runs on the
    threads (a poller copies it itself); one page evicted from a cached file
    does not change that (one miss); two misses close together mark the fd
    cold (the workers' RWF_NOWAIT tries), and its next reads go to the ring."""
    if not kernel_has_io_uring():
        pytest.skip("this kernel gives no io_uring ring")
    path = tmp_path / "r.bin"
    path.write_bytes(os.urandom(256 * BLOCK))
    code = textwrap.dedent(f"""
        import linuxaio, os, time
        started = lambda: linuxaio.engine_info()["ring_stats"]["started"]
        data = open({str(path)!r}, "rb").read()          # in the page cache now
        fd = os.open({str(path)!r}, os.O_RDONLY)
        os.fsync(fd)                                     # dirty pages would stay in the cache
        def read_all(offsets):
            bufs = [bytearray(4096) for _ in offsets]
            got = []
            for off, b in zip(offsets, bufs):
                linuxaio.aio_read(fd, off, 4096, b, 0, got.append)
            linuxaio.flush()
            assert got == [4096] * len(offsets), got
            assert all(b == data[off:off + 4096] for off, b in zip(offsets, bufs))
        before = started()
        read_all([k * 4096 for k in range(64)])
        cached = started() - before
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)         # no readahead
        os.posix_fadvise(fd, 90 * 4096, 4096, os.POSIX_FADV_DONTNEED)   # one page leaves
        read_all([90 * 4096])                        # one miss: the fd stays warm
        before = started()
        read_all([k * 4096 for k in range(120, 136)])
        one_miss = started() - before
        time.sleep(0.1)                              # past the window of two misses
        for attempt in range(3):                     # a mark lasts 1 s: a stalled machine may outlast it
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)   # clean pages leave the cache
            read_all([100 * 4096, 101 * 4096])       # two misses on threads: the fd is cold
            before = started()
            read_all([k * 4096 for k in range(120, 136)])
            if started() - before == 16:
                break
        print(cached, one_miss, started() - before, linuxaio.engine_info()["ring_policy"]["pread"])
        """)
    proc, _ = run_python(code, env={"LINUXAIO_ENGINE": "auto"})
    assert proc.returncode == 0, proc.stderr
    cached, one_miss, cold, policy = proc.stdout.split(maxsplit=3)
    assert (cached, one_miss, cold) == ("0", "0", "16")
    assert "missed the page cache" in policy


def test_bench_engine_and_direct_options(tmp_path):
    path = tmp_path / "bench.dat"
    path.write_bytes(os.urandom(1 << 20))
    for engine in ("threads", "auto"):
        code = ("import sys, runpy; sys.argv = ['linuxaio', 'bench', '--engine', %r, '--direct', '--file', %r, "
                "'--seconds', '0.2', '--quiet']; runpy.run_module('linuxaio', run_name='__main__')"
                % (engine, str(path)))
        proc, _ = run_python(code, timeout=60, env={"LINUXAIO_ENGINE": "threads" if engine == "auto" else "auto"})
        assert proc.returncode == 0, proc.stderr
        want = "threads" if engine == "threads" else ("uring" if kernel_has_io_uring() else "threads")
        assert f"engine {want}, O_DIRECT" in proc.stdout, proc.stdout
        assert "ratio linuxaio / os.pread" in proc.stdout
    assert path.stat().st_size == 1 << 20


def test_a_file_the_ring_refuses_runs_on_the_threads():
    """RWF_NOWAIT on a /proc file: the ring says EOPNOTSUPP, the request goes to
    a worker thread (the only one this child starts), whose preadv2 gives the
    same answer os.preadv does."""
    if not kernel_has_io_uring():
        pytest.skip("this kernel gives no io_uring ring")
    code = textwrap.dedent("""
        import asyncio, os, linuxaio
        fd = os.open('/proc/self/stat', os.O_RDONLY)
        try:
            os.preadv(fd, [bytearray(100)], 0, os.RWF_NOWAIT)
            want = 'ok'
        except OSError as e:
            want = e.errno
        assert linuxaio.nthreads() == 0
        async def main():
            try:
                await linuxaio.os.preadv(fd, [bytearray(100)], 0, os.RWF_NOWAIT)
                return 'ok'
            except OSError as e:
                return e.errno
        got = asyncio.run(main())
        print(want, got, linuxaio.nthreads() >= 1, linuxaio.nreqs())
        """)
    proc, _ = run_python(code, env={"LINUXAIO_ENGINE": "uring"})
    assert proc.returncode == 0, proc.stderr
    want, got, on_threads, left = proc.stdout.split()
    assert want == got == str(errno.EOPNOTSUPP)
    assert on_threads == "True" and left == "0"
