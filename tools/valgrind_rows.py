"""Exercise issue 14's request types under valgrind: each one a few hundred
times, with results, errors, bad arguments refused at submission,
cancellations before they run, inside groups and through linuxaio.os.

    PYTHONMALLOC=malloc valgrind --leak-check=full --error-exitcode=1 \\
        --suppressions=/usr/lib/valgrind/python3.supp \\
        python tools/valgrind_rows.py [rounds]

(run from the source tree with the engine built in place and PYTHONPATH=src).
PYTHONMALLOC=malloc sends every Python object through malloc, so valgrind
sees a request's buffers and results; the script checks each value too, so a
wrong result fails it as well as a memory error does.  At the end it prints
the process's fd count and RSS, before and after the last half of the
rounds: a leak per request shows there even where valgrind cannot tell it
from CPython's own allocations.
"""
import asyncio
import errno
import fcntl
import mmap
import os
import stat
import sys
import tempfile
import termios

import linuxaio
from linuxaio import os as aos

PATTERN = bytes(range(256)) * 64


def drain():
    linuxaio.flush()


def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


class Checker:
    def __init__(self):
        self.calls = 0
        self.failures = []

    def expect(self, what, check):
        def cb(value):
            self.calls += 1
            try:
                ok = check(value)
            except Exception as e:      # noqa: BLE001 (a report, not a crash)
                ok = False
                value = (value, e)
            if not ok:
                self.failures.append((what, value))
        return cb

    def error(self, what, cls, err):
        return self.expect(what, lambda v: isinstance(v, cls) and v.errno == err)


def one_round(top, n, c):
    data = os.path.join(top, "data")
    tree = os.path.join(top, "tree")
    xfile = os.path.join(top, "x")
    missing = os.path.join(top, "missing")
    fd = os.open(data, os.O_RDWR)
    out = os.open(os.path.join(top, f"out{n}"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    r, w = os.pipe()
    m = mmap.mmap(fd, 0)
    ok0 = lambda v: v == 0   # noqa: E731
    ok = c.expect
    try:
        linuxaio.aio_seek(fd, 10, os.SEEK_SET, ok("seek", lambda v: v == 10))
        linuxaio.aio_seek(r, 0, os.SEEK_SET, c.error("seek pipe", OSError, errno.ESPIPE))
        linuxaio.aio_sendfile(out, fd, 0, 100, ok("sendfile", lambda v: v == 100))
        linuxaio.aio_sendfile(w, fd, 0, 100, ok("sendfile pipe", lambda v: v == 100))
        linuxaio.aio_copy_file_range(fd, 0, out, 200, 50, ok("cfr", lambda v: v == 50))
        linuxaio.aio_readahead(fd, 0, 4096, ok("readahead", ok0))
        linuxaio.aio_readahead(r, 0, 4096, c.error("readahead pipe", OSError, errno.EINVAL))
        linuxaio.aio_allocate(out, linuxaio.FALLOC_FL_KEEP_SIZE, 0, 8192, ok("allocate", ok0))
        linuxaio.aio_fadvise(fd, 0, 0, linuxaio.POSIX_FADV_NORMAL, ok("fadvise", ok0))
        buf = bytearray()
        linuxaio.aio_load(data, buf, ok("load", lambda v: v == len(PATTERN) and buf == PATTERN))
        linuxaio.aio_load(missing, bytearray(), c.error("load missing", FileNotFoundError, errno.ENOENT))
        linuxaio.aio_fiemap(fd, 0, None, 0, None, ok("fiemap", lambda v: isinstance(v, list)))
        linuxaio.aio_fiemap(fd, 0, None, 0, 1, ok("fiemap 1", lambda v: len(v) <= 1))
        linuxaio.aio_fiemap(r, 0, None, 0, None, ok("fiemap pipe", lambda v: isinstance(v, OSError)))
        linuxaio.aio_fcntl(fd, fcntl.F_GETFL, 0, ok("fcntl", lambda v: v == fcntl.fcntl(fd, fcntl.F_GETFL)))
        lock = bytearray(32)
        linuxaio.aio_fcntl(fd, fcntl.F_GETLK, lock, ok("fcntl buf", lambda v: isinstance(v, int)))
        linuxaio.aio_fcntl(fd, fcntl.F_GETLK, bytes(32), ok("fcntl bytes", lambda v: len(v) == 32))
        linuxaio.aio_ioctl(fd, termios.FIONREAD, b"\0" * 4, ok("ioctl", lambda v: len(v) == 4))
        linuxaio.aio_ioctl(r, linuxaio.FS_IOC_GETFLAGS, b"\0" * 8, ok("ioctl pipe", lambda v: isinstance(v, OSError)))
        linuxaio.aio_sync_file_range(fd, 0, 0, linuxaio.SYNC_FILE_RANGE_WRITE, ok("sfr", ok0))
        linuxaio.aio_pathsync(tree, ok("pathsync", ok0))
        linuxaio.aio_pathsync(missing, c.error("pathsync missing", FileNotFoundError, errno.ENOENT))
        linuxaio.aio_msync(m, 0, 4096, linuxaio.MS_ASYNC, ok("msync", ok0))
        linuxaio.aio_msync(m, 0, 4096, linuxaio.MS_ASYNC | linuxaio.MS_SYNC,
                           c.error("msync flags", OSError, errno.EINVAL))
        linuxaio.aio_mtouch(m, None, None, linuxaio.MT_MODIFY, ok("mtouch", ok0))
        linuxaio.aio_mlock(m, 0, 4096, ok("mlock", ok0))
        linuxaio.aio_statvfs(top, ok("statvfs", lambda v: v.f_fsid == os.statvfs(top).f_fsid))
        linuxaio.aio_statvfs(fd, ok("fstatvfs", lambda v: isinstance(v, os.statvfs_result)))
        linuxaio.aio_statvfs(missing, c.error("statvfs missing", FileNotFoundError, errno.ENOENT))
        linuxaio.aio_chown(data, None, -1, ok("chown", ok0))
        linuxaio.aio_chown(missing, None, None, c.error("chown missing", FileNotFoundError, errno.ENOENT))
        node = os.path.join(top, f"node{n}")
        linuxaio.aio_mknod(node, stat.S_IFIFO | 0o600, 0, ok("mknod", ok0))
        linuxaio.aio_mknod(data, stat.S_IFIFO | 0o600, 0, c.error("mknod exists", FileExistsError, errno.EEXIST))
        drain()
        linuxaio.aio_rename2(node, node + ".b", linuxaio.RENAME_NOREPLACE, ok("rename2", ok0))
        linuxaio.aio_rename2(missing, node, 0, c.error("rename2 missing", FileNotFoundError, errno.ENOENT))
        for flags in (0, 1, 2, 3, 4, 7):
            linuxaio.aio_readdirx(tree, flags, ok(f"readdirx {flags}", lambda v: len(v[0]) == 4))
        linuxaio.aio_readdirx(data, 0, c.error("readdirx file", NotADirectoryError, errno.ENOTDIR))
        linuxaio.aio_scandir(tree, 0, ok("scandir", lambda v: v[0] == ["sub"]))
        linuxaio.aio_scandir(missing, 4, c.error("scandir missing", FileNotFoundError, errno.ENOENT))
        name = f"user.a{n}"
        linuxaio.aio_setxattr(xfile, name, b"v" * 100, 0, ok("setxattr", ok0))
        drain()
        linuxaio.aio_getxattr(xfile, name, ok("getxattr", lambda v: v == b"v" * 100))
        linuxaio.aio_getxattr(xfile, "user.none", c.error("getxattr none", OSError, errno.ENODATA))
        linuxaio.aio_listxattr(xfile, ok("listxattr", lambda v: name in v))
        drain()
        linuxaio.aio_removexattr(xfile, name, ok("removexattr", ok0))
        linuxaio.aio_removexattr(xfile, "user.none", c.error("removexattr none", OSError, errno.ENODATA))
        wds = []
        linuxaio.aio_wd(tree, ok("wd", lambda v: wds.append(v) is None))
        linuxaio.aio_wd(missing, c.error("wd missing", FileNotFoundError, errno.ENOENT))
        drain()
        for wd in wds:
            linuxaio.aio_statvfs((wd, "sub"), ok("statvfs wd", lambda v: isinstance(v, os.statvfs_result)))
            linuxaio.aio_readdirx((wd, "."), 1, ok("readdirx wd", lambda v: len(v[0]) == 4))
            wd.close()        # still in use by the two requests: closes after them
        drain()
        os.read(r, 65536)

        # bad arguments: refused at submission, nothing queued
        for bad in (lambda: linuxaio.aio_seek("x", 0, 0), lambda: linuxaio.aio_load(data, b"ro"),
                    lambda: linuxaio.aio_msync(m, 0, 1 << 40, 0), lambda: linuxaio.aio_fiemap(fd, -1, None, 0, None),
                    lambda: linuxaio.aio_setxattr(xfile, name, 5, 0), lambda: linuxaio.aio_rename2(data, 5, 0),
                    lambda: linuxaio.aio_fcntl(fd, 0, bytes(2000)), lambda: linuxaio.aio_mtouch(bytes(10), 0, 1, linuxaio.MT_MODIFY)):
            try:
                bad()
            except (TypeError, ValueError, OverflowError):
                pass
            else:
                c.failures.append(("bad argument accepted", bad))
        assert linuxaio.nreqs() == 0

        # cancelled before running: the requests, their buffers and handles freed
        linuxaio.max_parallel(0)
        group = linuxaio.aio_group(c.expect("cancelled group", lambda v: False))
        never = c.expect("cancelled", lambda v: False)
        kids = [linuxaio.aio_load(data, bytearray(), never),
                linuxaio.aio_sendfile(out, fd, 0, 10, never),
                linuxaio.aio_fcntl(fd, fcntl.F_GETLK, bytearray(32), never),
                linuxaio.aio_mtouch(m, None, None, 0, never),
                linuxaio.aio_setxattr(xfile, "user.never", b"x" * 10, 0, never),
                linuxaio.aio_readdirx(tree, 7, never), linuxaio.aio_scandir(tree, 0, never),
                linuxaio.aio_wd(tree, never), linuxaio.aio_mknod(node + ".never", stat.S_IFIFO, 0, never),
                linuxaio.aio_fiemap(fd, 0, None, 0, None, never)]
        group.add(*kids[:5])
        group.cancel()
        for k in kids[5:]:
            k.cancel()
        linuxaio.min_parallel(4)      # max_parallel only lowers the limit, as IO::AIO's
        drain()

        # awaited twins, one cancelled
        async def twins():
            await aos.lseek(fd, 5, os.SEEK_SET)
            await aos.sendfile(out, fd, 0, 10)
            await aos.copy_file_range(fd, out, 10, 0, 0)
            await aos.posix_fallocate(out, 0, 100)
            await aos.fallocate(out, 0, 0, 100)
            await aos.posix_fadvise(fd, 0, 0, 0)
            await aos.statvfs(top)
            await aos.fstatvfs(fd)
            await aos.chown(data, -1, -1)
            await aos.fchown(fd, -1, -1)
            await aos.fchmod(fd, 0o600)
            await aos.access(data, os.R_OK)
            await aos.mkfifo(node + ".fifo")
            await aos.rename2(node + ".fifo", node + ".fifo2")
            await aos.setxattr(xfile, "user.t", b"t")
            await aos.getxattr(xfile, "user.t")
            await aos.listxattr(xfile)
            await aos.removexattr(xfile, "user.t")
            (await aos.wd(tree)).close()
            try:
                await aos.statvfs(missing)
            except FileNotFoundError:
                pass
            task = asyncio.ensure_future(aos.statvfs(top))
            await asyncio.sleep(0)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        asyncio.run(twins())
        for p in (node + ".b", node + ".fifo2"):
            os.unlink(p)
    finally:
        m.close()
        for f in (fd, out, r, w):
            os.close(f)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    c = Checker()
    with tempfile.TemporaryDirectory() as top:
        with open(os.path.join(top, "data"), "wb") as f:
            f.write(PATTERN)
        open(os.path.join(top, "x"), "wb").close()
        os.makedirs(os.path.join(top, "tree", "sub"))
        open(os.path.join(top, "tree", "f"), "wb").close()
        os.symlink("sub", os.path.join(top, "tree", "l"))
        os.mkfifo(os.path.join(top, "tree", "p"))
        half = rounds // 2
        for n in range(rounds):
            if n == half:
                fds0, rss0 = len(os.listdir("/proc/self/fd")), rss_kib()
            one_round(top, n, c)
        fds1, rss1 = len(os.listdir("/proc/self/fd")), rss_kib()
    print(f"{rounds} rounds, {c.calls} callbacks; fds {fds0} -> {fds1}; RSS {rss0} -> {rss1} KiB")
    if c.failures:
        for what, value in c.failures[:20]:
            print("FAILED", what, repr(value)[:200])
        sys.exit(2)
    if fds1 != fds0:
        print("fd leak")
        sys.exit(3)


if __name__ == "__main__":
    main()
