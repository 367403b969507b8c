"""IO::AIO's own test scenarios, as behaviour tests of linuxaio.

IO::AIO's t/ directory checks: a stat of a directory, a file and an open
handle (01), a read into a buffer at an offset against sysread (02), errors
(03: a file in a missing directory, unlinking a missing file, a symlink with
an odd target, unlink and rmdir), a fork with requests in flight (04: the
child gets a working engine of its own, the parent's requests complete in the
parent), readdir and scandir against the directory's real contents (05), and
a feeder with a limit (07).  The same scenarios are written here (our own
tests, not a translation) over every request type issue 14 added: each one
inside a group and fed by a feeder, a group cancelled before they ran, each
one's error as the right OSError subclass, a fork in the middle of them, and
their linuxaio.os twins under asyncio, uvloop and trio.

Last, READDIR_DIRS_FIRST's guess at which entries of unknown type are
directories, on a file system whose getdents64 reports DT_UNKNOWN (ext2
without its filetype feature, loop-mounted: root, a loop device and mke2fs
needed, else the test says why it skips).
"""
import errno
import fcntl
import itertools
import mmap
import os
import shutil
import stat
import subprocess
import termios

import pytest

import linuxaio
from linuxaio import os as aos

from aio_helpers import Collector, is_cancelled, is_done, run_forked, wait_until
from async_helpers import HeldWorker, runner  # noqa: F401  (the fixture)

PATTERN = bytes(range(256)) * 256          # 64 KiB, every offset distinct mod 256


def call(fn, *args):
    got = Collector()
    fn(*args, got)
    linuxaio.flush()
    assert len(got.calls) == 1
    return got.values[0]


def error_shape(e):
    return (type(e), e.errno, e.strerror, e.filename, e.filename2)


def os_error(fn, *args):
    """The OSError os (or fcntl) raises for the same call."""
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value


# ------------------------------------------------------------ the world

class World:
    """A directory with a data file, a small tree (directory, file, symlink to
    a directory, FIFO), an mmap of the data file, and fresh names and fds on
    demand, so that the same request type can run many times at once."""

    def __init__(self, top):
        self.top = top
        self.data = top / "data"
        self.data.write_bytes(PATTERN)
        self.tree = top / "tree"
        (self.tree / "sub").mkdir(parents=True)
        (self.tree / "file.txt").write_bytes(b"x")
        os.symlink("sub", self.tree / "link")
        os.mkfifo(self.tree / "fifo")
        self.xfile = top / "xattrs"
        self.xfile.write_bytes(b"x")
        self.fds = []
        self.maps = []
        self.numbers = itertools.count()
        self.fd = self.open(self.data, os.O_RDWR)
        self.map = mmap.mmap(self.fd, 0)
        self.maps.append(self.map)
        try:
            os.setxattr(self.xfile, "user.probe", b"1")
            self.xattrs = True
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
            self.xattrs = False

    def open(self, path, flags, mode=0o644):
        fd = os.open(path, flags, mode)
        self.fds.append(fd)
        return fd

    def fresh(self, stem):
        return self.top / f"{stem}-{next(self.numbers)}"

    def pipe(self):
        r, w = os.pipe()
        self.fds += [r, w]
        return r, w

    def close(self):
        for m in self.maps:
            m.close()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


# One case per request type of issue 14: make(w) gives the aio_ function, its
# arguments and a check of the value the callback got (compared with os,
# fcntl or mmap doing the same), and `undone(w)` says the request never ran
# (for the cancelled group), where that can be seen.

class Case:
    def __init__(self, name, make):
        self.name = name
        self.make = make


def _seek(w):
    fd = w.open(w.data, os.O_RDONLY)

    def check(v):
        assert v == 1000 == os.lseek(fd, 0, os.SEEK_CUR)
    return linuxaio.aio_seek, (fd, 1000, os.SEEK_SET), check, lambda: os.lseek(fd, 0, os.SEEK_CUR) == 0


def _sendfile(w):
    target = w.fresh("sent")
    out = w.open(target, os.O_RDWR | os.O_CREAT)

    def check(v):
        assert v == 1000 and target.read_bytes() == PATTERN[10:1010]
    return linuxaio.aio_sendfile, (out, w.fd, 10, 1000), check, lambda: target.read_bytes() == b""


def _copy_file_range(w):
    target = w.fresh("copied")
    out = w.open(target, os.O_RDWR | os.O_CREAT)

    def check(v):
        assert v == 500 and target.read_bytes() == b"\0" * 7 + PATTERN[5:505]
    return (linuxaio.aio_copy_file_range, (w.fd, 5, out, 7, 500), check,
            lambda: target.read_bytes() == b"")


def _readahead(w):
    return linuxaio.aio_readahead, (w.fd, 0, 8192), lambda v: v == 0 or pytest.fail(v), None


def _allocate(w):
    target = w.fresh("allocated")
    fd = w.open(target, os.O_RDWR | os.O_CREAT)

    def check(v):
        assert v == 0 and os.fstat(fd).st_size == 8192
    return linuxaio.aio_allocate, (fd, 0, 0, 8192), check, lambda: os.fstat(fd).st_size == 0


def _fadvise(w):
    def check(v):
        assert v == 0
    return linuxaio.aio_fadvise, (w.fd, 0, 0, linuxaio.POSIX_FADV_SEQUENTIAL), check, None


def _load(w):
    buf = bytearray(b"old")

    def check(v):
        assert v == len(PATTERN) and buf == PATTERN
    return linuxaio.aio_load, (str(w.data), buf), check, lambda: buf == b"old"


def _fiemap(w):
    def check(v):
        assert isinstance(v, list) and v and all(len(e) == 4 for e in v)
        assert v[-1][3] & linuxaio.FIEMAP_EXTENT_LAST
        assert sum(e[2] for e in v) >= len(PATTERN)
    return linuxaio.aio_fiemap, (w.fd, 0, None, linuxaio.FIEMAP_FLAG_SYNC, None), check, None


def _fcntl(w):
    def check(v):
        assert v == fcntl.fcntl(w.fd, fcntl.F_GETFL)
    return linuxaio.aio_fcntl, (w.fd, fcntl.F_GETFL, 0), check, None


def _ioctl(w):
    fd = w.open(w.data, os.O_RDONLY)
    os.lseek(fd, 100, os.SEEK_SET)

    def check(v):       # FIONREAD on a regular file: the bytes after the position
        assert v == fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4)
        assert int.from_bytes(v, "little") == len(PATTERN) - 100
    return linuxaio.aio_ioctl, (fd, termios.FIONREAD, b"\0" * 4), check, None


def _sync_file_range(w):
    return (linuxaio.aio_sync_file_range, (w.fd, 0, 0, linuxaio.SYNC_FILE_RANGE_WRITE),
            lambda v: v == 0 or pytest.fail(v), None)


def _pathsync(w):
    return linuxaio.aio_pathsync, (str(w.tree),), lambda v: v == 0 or pytest.fail(v), None


def _msync(w):
    return linuxaio.aio_msync, (w.map, 0, 4096, linuxaio.MS_ASYNC), lambda v: v == 0 or pytest.fail(v), None


def _mtouch(w):
    def check(v):
        assert v == 0 and w.map[:] == PATTERN      # MT_MODIFY leaves the bytes as they were
    return linuxaio.aio_mtouch, (w.map, None, None, linuxaio.MT_MODIFY), check, None


def _mlock(w):
    m = mmap.mmap(-1, 8192)
    w.maps.append(m)
    return linuxaio.aio_mlock, (m, 0, None), lambda v: v == 0 or pytest.fail(v), None


def _statvfs(w):
    def check(v):
        mine = os.statvfs(w.top)
        assert isinstance(v, os.statvfs_result)
        assert (v.f_bsize, v.f_frsize, v.f_blocks, v.f_files, v.f_fsid, v.f_namemax) == (
            mine.f_bsize, mine.f_frsize, mine.f_blocks, mine.f_files, mine.f_fsid, mine.f_namemax)
    return linuxaio.aio_statvfs, (str(w.top),), check, None


def _chown(w):
    target = w.fresh("owned")
    target.write_bytes(b"")
    before = os.stat(target)

    def check(v):
        after = os.stat(target)
        assert v == 0 and (after.st_uid, after.st_gid) == (os.getuid(), os.getgid())
        assert after.st_ctime_ns >= before.st_ctime_ns
    return linuxaio.aio_chown, (str(target), os.getuid(), None), check, None


def _mknod(w):
    target = w.fresh("fifo")

    def check(v):
        assert v == 0 and stat.S_ISFIFO(os.lstat(target).st_mode)
    return (linuxaio.aio_mknod, (str(target), stat.S_IFIFO | 0o600, 0), check,
            lambda: not os.path.lexists(target))


def _rename2(w):
    src, dst = w.fresh("from"), w.fresh("to")
    src.write_bytes(b"moved")

    def check(v):
        assert v == 0 and not src.exists() and dst.read_bytes() == b"moved"
    return (linuxaio.aio_rename2, (str(src), str(dst), linuxaio.RENAME_NOREPLACE), check,
            lambda: src.exists() and not dst.exists())


def _readdirx(w):
    def check(v):
        entries, flags = v
        assert flags & ~linuxaio.READDIR_FOUND_UNKNOWN == linuxaio.READDIR_DENTS
        assert {(n, i) for n, _, i in entries} == {(e.name, e.inode()) for e in os.scandir(w.tree)}
    return linuxaio.aio_readdirx, (str(w.tree), linuxaio.READDIR_DENTS), check, None


def _scandir(w):
    def check(v):
        dirs, nondirs = v
        assert sorted(dirs) == ["sub"]          # the symlink to sub is a non-directory
        assert sorted(nondirs) == ["fifo", "file.txt", "link"]
    return linuxaio.aio_scandir, (str(w.tree), 0), check, None


def _getxattr(w):
    return (linuxaio.aio_getxattr, (str(w.xfile), "user.probe"),
            lambda v: v == os.getxattr(w.xfile, "user.probe") == b"1" or pytest.fail(v), None)


def _setxattr(w):
    name = f"user.set{next(w.numbers)}"

    def check(v):
        assert v == 0 and os.getxattr(w.xfile, name) == b"value"
    return (linuxaio.aio_setxattr, (str(w.xfile), name, b"value", linuxaio.XATTR_CREATE), check,
            lambda: name not in os.listxattr(w.xfile))


def _listxattr(w):
    def check(v):
        assert "user.probe" in v and set(v) <= set(os.listxattr(w.xfile)) | set(v)
    return linuxaio.aio_listxattr, (str(w.xfile),), check, None


def _removexattr(w):
    name = f"user.gone{next(w.numbers)}"
    os.setxattr(w.xfile, name, b"")

    def check(v):
        assert v == 0 and name not in os.listxattr(w.xfile)
    return (linuxaio.aio_removexattr, (str(w.xfile), name), check,
            lambda: name in os.listxattr(w.xfile))


def _wd(w):
    def check(v):
        assert isinstance(v, linuxaio.WorkingDir) and v.path == str(w.tree)
        assert os.path.samestat(os.fstat(v.fileno()), os.stat(w.tree))
        v.close()
    return linuxaio.aio_wd, (str(w.tree),), check, None


CASES = [Case(f.__name__[1:], f) for f in (
    _seek, _sendfile, _copy_file_range, _readahead, _allocate, _fadvise, _load, _fiemap,
    _fcntl, _ioctl, _sync_file_range, _pathsync, _msync, _mtouch, _mlock, _statvfs, _chown,
    _mknod, _rename2, _readdirx, _scandir, _getxattr, _setxattr, _listxattr, _removexattr, _wd)]
XATTR_CASES = {"getxattr", "setxattr", "listxattr", "removexattr"}


def cases_for(w):
    return [c for c in CASES if w.xattrs or c.name not in XATTR_CASES]


def test_the_cases_cover_every_new_row():
    """Every request type issue 14 added is in CASES, except the three that
    act on the whole system: sync and syncfs (once, in a group, below) and
    mlockall (in a group in a forked child, below)."""
    new = {"seek", "sendfile", "copy_file_range", "readahead", "allocate", "fadvise", "load",
           "fiemap", "fcntl", "ioctl", "sync_file_range", "pathsync", "msync", "mtouch", "mlock",
           "statvfs", "chown", "mknod", "rename2", "readdirx", "scandir", "getxattr", "setxattr",
           "listxattr", "removexattr", "wd"}
    assert {c.name for c in CASES} == new
    for c in CASES:
        assert hasattr(linuxaio, f"aio_{c.name}")


# ------------------------------------------------------------ 01, 02, 03, 05: the basics

def test_stat_of_a_directory_a_file_and_an_open_fd(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    os.symlink("f", tmp_path / "l")
    assert stat.S_ISDIR(call(linuxaio.aio_stat, str(tmp_path)).st_mode)
    by_path = call(linuxaio.aio_stat, str(f))
    assert stat.S_ISREG(by_path.st_mode) and by_path == os.stat(f)
    assert stat.S_ISREG(call(linuxaio.aio_stat, str(tmp_path / "l")).st_mode)   # followed
    assert stat.S_ISLNK(call(linuxaio.aio_lstat, str(tmp_path / "l")).st_mode)
    with open(f, "rb") as fobj:
        dup = os.dup(fobj.fileno())
        assert call(linuxaio.aio_stat, dup) == by_path                        # same inode
        assert call(linuxaio.aio_close, dup) == 0
    with pytest.raises(OSError):
        os.fstat(dup)


def test_read_into_a_buffer_at_an_offset_equals_pread(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(PATTERN)
    fd = call(linuxaio.aio_open, str(f), os.O_RDONLY, 0)
    try:
        buf = bytearray(b"-" * 5)
        assert call(linuxaio.aio_read, fd, 7, 15, buf, 3) == 15
        assert buf == b"---" + os.pread(fd, 15, 7)            # grown to fit, head kept
        os.lseek(fd, 7, os.SEEK_SET)
        mv = memoryview(bytearray(20))
        assert call(linuxaio.aio_read, fd, None, 15, mv, 5) == 15   # at the position
        assert bytes(mv[5:]) == os.pread(fd, 15, 7) and os.lseek(fd, 0, os.SEEK_CUR) == 22
    finally:
        os.close(fd)


def test_errors_as_ioaio_checks_them(tmp_path):
    missing_dir = tmp_path / "some_dir"
    some_file = missing_dir / "some_file"
    e = call(linuxaio.aio_open, str(some_file), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0)
    assert error_shape(e) == error_shape(os_error(os.open, str(some_file), os.O_RDWR | os.O_CREAT))
    missing_dir.mkdir()
    fd = call(linuxaio.aio_open, str(some_file), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    assert isinstance(fd, int) and some_file.exists()
    os.close(fd)
    e = call(linuxaio.aio_unlink, str(missing_dir / "notfound.txt"))
    assert isinstance(e, FileNotFoundError) and e.errno == errno.ENOENT
    assert e.filename == str(missing_dir / "notfound.txt")
    ro = os.open(some_file, os.O_RDONLY)                   # a write to a read-only fd
    try:
        e = call(linuxaio.aio_write, ro, 0, 10, b"foobarbaz.", 0)
        assert e.errno == errno.EBADF and isinstance(e, OSError)
    finally:
        os.close(ro)
    link = missing_dir / "some_link"
    assert call(linuxaio.aio_symlink, "\\test\\", str(link)) == 0
    assert os.readlink(link) == "\\test\\" == call(linuxaio.aio_readlink, str(link))
    assert call(linuxaio.aio_unlink, str(link)) == 0
    assert call(linuxaio.aio_unlink, str(some_file)) == 0
    e = call(linuxaio.aio_rmdir, str(tmp_path))            # not empty
    assert isinstance(e, OSError) and e.errno == errno.ENOTEMPTY
    assert call(linuxaio.aio_rmdir, str(missing_dir)) == 0 and not missing_dir.exists()


def test_readdir_readdirx_and_scandir_see_the_directory_os_sees(world):
    names = set(os.listdir(world.tree))
    assert set(call(linuxaio.aio_readdir, str(world.tree))) == names
    entries, _ = call(linuxaio.aio_readdirx, str(world.tree), 0)
    assert set(entries) == names and len(entries) == len(names)
    dirs, nondirs = call(linuxaio.aio_scandir, str(world.tree), 0)
    assert set(dirs) | set(nondirs) == names and not set(dirs) & set(nondirs)
    assert set(dirs) == {e.name for e in os.scandir(world.tree) if e.is_dir(follow_symlinks=False)}


# ------------------------------------------------------------ groups and feeders

def test_every_new_row_in_one_group(world):
    """All the new request types in one group: each child's callback gets its
    value, and the group's callback runs once, after all of them."""
    order = []
    group = linuxaio.aio_group(lambda v: order.append("group"))
    checks = {}
    for case in cases_for(world):
        fn, args, check, _ = case.make(world)
        checks[case.name] = check
        group.add(fn(*args, lambda v, name=case.name: order.append((name, v))))
    assert group.size == len(checks)
    linuxaio.flush()
    assert order[-1] == "group" and len(order) == len(checks) + 1
    for name, value in order[:-1]:
        assert not isinstance(value, BaseException), (name, value)
        checks[name](value)
    assert is_done(group) and linuxaio.nreqs() == 0


@pytest.mark.parametrize("limit", [1, 4])
def test_a_feeder_feeds_the_new_rows_within_its_limit(world, limit):
    """As IO::AIO's feeder test: the feeder is called while the group has
    fewer than `limit` requests, with priorities varying, until it has added
    everything (three rounds of every new request type); then the group
    finishes after every child."""
    todo = [c for _ in range(3) for c in cases_for(world)]
    fed, peak, done, results = [0], [0], [], []
    group = linuxaio.aio_group(lambda v: done.append("group"))
    group.limit(limit)

    def feeder(grp):
        assert grp.size < limit
        if not todo:
            return
        case = todo.pop(0)
        fn, args, check, _ = case.make(world)
        fed[0] += 1

        def finished(v, case=case, check=check):
            results.append((case.name, v, check))
        grp.add(fn(*args, finished, pri=fed[0] % 9 - 4))
        peak[0] = max(peak[0], grp.size)

    group.feed(feeder)
    assert fed[0] == limit and not results          # fed at once, nothing run yet
    linuxaio.flush()
    assert fed[0] == 3 * len(cases_for(world)) and len(results) == fed[0]
    assert peak[0] == limit and done == ["group"]
    for name, value, check in results:
        assert not isinstance(value, BaseException), (name, value)
        check(value)


def test_cancelling_a_group_cancels_its_queued_new_rows(world):
    """Nothing runs: no callback, no side effect (no FIFO made, no rename, no
    attribute set, nothing sent...)."""
    def fail(v):
        raise AssertionError(f"callback after cancel: {v!r}")

    undone = []
    linuxaio.max_parallel(0)                 # queued, never started
    group = linuxaio.aio_group(fail)
    kids = []
    for case in cases_for(world):
        fn, args, _, never_ran = case.make(world)
        kids.append(fn(*args, fail))
        if never_ran:
            undone.append((case.name, never_ran))
    group.add(*kids)
    assert linuxaio.nready() == len(kids)
    group.cancel()
    assert is_cancelled(group) and all(is_cancelled(k) for k in kids)
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert all(is_done(k) for k in kids) and linuxaio.nreqs() == 0
    assert {n for n, _ in undone} >= {"seek", "sendfile", "copy_file_range", "allocate", "load",
                                      "mknod", "rename2"}
    for name, never_ran in undone:
        assert never_ran(), name


def test_cancelling_a_fed_group_stops_its_feeder_and_its_requests(world):
    calls = []
    group = linuxaio.aio_group(lambda v: calls.append("group"))
    with HeldWorker(world.top) as held:
        def feeder(grp):
            case = CASES[len(calls) % len(CASES)]
            if case.name in XATTR_CASES and not world.xattrs:
                case = CASES[0]
            fn, args, _, _ = case.make(world)
            calls.append(case.name)
            grp.add(fn(*args, lambda v: calls.append(("ran", v))))
        group.limit(3)
        group.feed(feeder)
        assert len(calls) == 3 and linuxaio.nready() == 3
        group.cancel()
        held.release()
        linuxaio.flush()
    assert len(calls) == 3                    # no callback, no more feeding, no group callback
    assert linuxaio.nreqs() == 0


def test_sync_and_syncfs_in_a_group(world):
    """The two whole-system sync requests (slow on a busy machine, so once)."""
    got = Collector()
    group = linuxaio.aio_group(lambda v: got("group"))
    group.add(linuxaio.aio_sync(got), linuxaio.aio_syncfs(world.fd, got))
    linuxaio.flush()
    assert got.values == [0, 0, "group"]


# ------------------------------------------------------------ errors

def _error_cases(w):
    """(name, submit, the os / fcntl / mmap call failing the same way or None,
    the expected errno when there is no such call)."""
    missing = str(w.top / "missing")
    r, _ = w.pipe()
    ro = w.open(w.data, os.O_RDONLY)
    existing = str(w.tree / "file.txt")
    fiemap_arg = bytearray(32)
    yield ("seek", lambda cb: linuxaio.aio_seek(r, 0, os.SEEK_SET, cb),
           lambda: os.lseek(r, 0, os.SEEK_SET), None)
    yield ("seek_data", lambda cb: linuxaio.aio_seek(ro, len(PATTERN) + 1, os.SEEK_DATA, cb),
           lambda: os.lseek(ro, len(PATTERN) + 1, os.SEEK_DATA), None)
    yield ("sendfile", lambda cb: linuxaio.aio_sendfile(ro, w.fd, 0, 10, cb),
           lambda: os.sendfile(ro, w.fd, 0, 10), None)
    yield ("copy_file_range", lambda cb: linuxaio.aio_copy_file_range(w.fd, 0, ro, 0, 10, cb),
           lambda: os.copy_file_range(w.fd, ro, 10, 0, 0), None)
    yield ("readahead", lambda cb: linuxaio.aio_readahead(r, 0, 10, cb), None, errno.EINVAL)
    yield ("allocate", lambda cb: linuxaio.aio_allocate(ro, 0, 0, 10, cb),
           lambda: os.posix_fallocate(ro, 0, 10), None)
    yield ("fadvise", lambda cb: linuxaio.aio_fadvise(r, 0, 0, 0, cb),
           lambda: os.posix_fadvise(r, 0, 0, 0), None)
    yield ("load", lambda cb: linuxaio.aio_load(missing, bytearray(), cb),
           lambda: open(missing, "rb"), None)
    yield ("fiemap", lambda cb: linuxaio.aio_fiemap(r, 0, None, 0, None, cb),
           lambda: fcntl.ioctl(r, 0xC020660B, fiemap_arg), None)
    yield ("fcntl", lambda cb: linuxaio.aio_fcntl(r + 1000, fcntl.F_GETFL, 0, cb),
           lambda: fcntl.fcntl(r + 1000, fcntl.F_GETFL), None)
    yield ("ioctl", lambda cb: linuxaio.aio_ioctl(r, linuxaio.FS_IOC_GETFLAGS, b"\0" * 8, cb),
           lambda: fcntl.ioctl(r, linuxaio.FS_IOC_GETFLAGS, b"\0" * 8), None)
    yield ("sync_file_range", lambda cb: linuxaio.aio_sync_file_range(r, 0, 0, 0, cb),
           None, errno.ESPIPE)
    yield ("pathsync", lambda cb: linuxaio.aio_pathsync(missing, cb),
           lambda: os.open(missing, os.O_RDONLY), None)
    yield ("msync", lambda cb: linuxaio.aio_msync(w.map, 0, 4096, linuxaio.MS_ASYNC | linuxaio.MS_SYNC, cb),
           None, errno.EINVAL)
    yield ("statvfs", lambda cb: linuxaio.aio_statvfs(missing, cb), lambda: os.statvfs(missing), None)
    yield ("chown", lambda cb: linuxaio.aio_chown(missing, -1, -1, cb),
           lambda: os.chown(missing, -1, -1), None)
    yield ("mknod", lambda cb: linuxaio.aio_mknod(existing, stat.S_IFIFO | 0o600, 0, cb),
           lambda: os.mknod(existing, stat.S_IFIFO | 0o600), None)
    yield ("rename2", lambda cb: linuxaio.aio_rename2(missing, existing, 0, cb),
           lambda: os.rename(missing, existing), None)
    yield ("readdirx", lambda cb: linuxaio.aio_readdirx(existing, 0, cb),
           lambda: os.listdir(existing), None)
    yield ("scandir", lambda cb: linuxaio.aio_scandir(missing, 0, cb),
           lambda: os.listdir(missing), None)
    yield ("wd", lambda cb: linuxaio.aio_wd(existing, cb),
           lambda: os.open(existing, os.O_RDONLY | os.O_DIRECTORY), None)
    if w.xattrs:
        x = str(w.xfile)
        yield ("getxattr", lambda cb: linuxaio.aio_getxattr(x, "user.none", cb),
               lambda: os.getxattr(x, "user.none"), None)
        yield ("setxattr", lambda cb: linuxaio.aio_setxattr(x, "user.none", b"", linuxaio.XATTR_REPLACE, cb),
               lambda: os.setxattr(x, "user.none", b"", os.XATTR_REPLACE), None)
        yield ("listxattr", lambda cb: linuxaio.aio_listxattr(missing, cb),
               lambda: os.listxattr(missing), None)
        yield ("removexattr", lambda cb: linuxaio.aio_removexattr(x, "user.none", cb),
               lambda: os.removexattr(x, "user.none"), None)


def test_each_new_rows_error_is_the_os_error_os_gives(world):
    """Every error is the OSError subclass os raises for the same call, with
    its errno and strerror, and the path as filename (none for an fd)."""
    seen = set()
    for name, submit, os_call, expected_errno in _error_cases(world):
        e = call(submit)
        assert isinstance(e, OSError), (name, e)
        if os_call is not None:
            want = os_error(os_call)
            assert (type(e), e.errno, e.strerror) == (type(want), want.errno, want.strerror), name
            if want.filename is not None and not isinstance(want.filename, int):
                assert e.filename == want.filename, name
        else:
            assert e.errno == expected_errno and type(e) is OSError, name
            assert e.strerror == os.strerror(expected_errno) and e.filename is None, name
        seen.add(name)
    assert {"seek", "sendfile", "load", "fiemap", "rename2", "scandir", "wd"} <= seen


def test_errors_in_a_group_reach_each_child_and_the_group_still_finishes(world):
    got = []
    group = linuxaio.aio_group(lambda v: got.append("group"))
    names = []
    for name, submit, _, _ in _error_cases(world):
        names.append(name)
        group.add(submit(lambda v, name=name: got.append((name, v))))
    linuxaio.flush()
    assert got[-1] == "group" and sorted(n for n, _ in got[:-1]) == sorted(names)
    assert all(isinstance(v, OSError) for _, v in got[:-1])


def test_a_missing_path_under_a_wd_is_reported_relative_to_it(world):
    with call(linuxaio.aio_wd, str(world.tree)) as wd:
        e = call(linuxaio.aio_statvfs, (wd, "nothing"))
        assert isinstance(e, FileNotFoundError) and e.filename == "nothing"
        e = call(linuxaio.aio_readdirx, (wd, "file.txt"), 0)
        assert isinstance(e, NotADirectoryError) and e.filename == "file.txt"
        assert sorted(call(linuxaio.aio_scandir, (wd, "."), 0)[0]) == ["sub"]


# ------------------------------------------------------------ fork (04)

@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # fork with threads (3.12+)
def test_fork_in_the_middle_of_new_requests(world):
    """The parent has every new request type queued behind a held worker (and
    that worker's request running) when it forks.  The child starts with an
    empty engine, runs every new request type itself and sees none of the
    parent's callbacks; the parent's requests then complete in the parent."""
    parent = []
    checks = {}
    with HeldWorker(world.top) as held:
        for case in cases_for(world):
            fn, args, check, _ = case.make(world)
            checks[case.name] = check
            fn(*args, lambda v, name=case.name: parent.append((name, v)))
        assert linuxaio.nready() == len(checks)

        def child():
            code = 0
            if linuxaio.nreqs() or linuxaio.nready() or linuxaio.npending():
                code |= 1
            linuxaio.min_parallel(2)
            mine = []
            for case in cases_for(world):
                fn, args, check, _ = case.make(world)
                fn(*args, lambda v, check=check, name=case.name: mine.append((name, v, check)))
            linuxaio.flush()
            if len(mine) != len(checks):
                code |= 2
            for name, v, check in mine:
                try:
                    check(v)
                except BaseException:
                    import traceback
                    traceback.print_exc()
                    code |= 4
            if parent:
                code |= 8
            if linuxaio.nreqs():
                code |= 16
            return code

        assert run_forked(child, timeout=60) == 0
        assert not parent                 # still queued behind the held worker
        held.release()
        linuxaio.flush()
    assert sorted(n for n, _ in parent) == sorted(checks)
    for name, v in parent:
        assert not isinstance(v, BaseException), (name, v)
        checks[name](v)


# ------------------------------------------------------------ the os twins, awaited

def test_the_new_os_twins_give_what_os_gives(runner, world):
    """The linuxaio.os twins of the new rows, awaited together (as a group
    would be), each compared with os doing the same."""
    src = world.fresh("twin-src")
    src.write_bytes(b"s")
    dst = world.fresh("twin-dst")
    owned = world.fresh("twin-owned")       # not src: the rename runs alongside
    owned.write_bytes(b"")
    fifo, node = world.fresh("twin-fifo"), world.fresh("twin-node")
    sent = world.open(world.fresh("twin-sent"), os.O_RDWR | os.O_CREAT)
    copied = world.open(world.fresh("twin-copied"), os.O_RDWR | os.O_CREAT)
    grown = world.open(world.fresh("twin-grown"), os.O_RDWR | os.O_CREAT)
    seeker = world.open(world.data, os.O_RDONLY)

    async def main(rt):
        return await rt.gather(
            lambda: aos.lseek(seeker, -10, os.SEEK_END),
            lambda: aos.sendfile(sent, world.fd, 0, 100),
            lambda: aos.copy_file_range(world.fd, copied, 100, 0, 0),
            lambda: aos.posix_fallocate(grown, 0, 4096),
            lambda: aos.posix_fadvise(world.fd, 0, 0, os.POSIX_FADV_RANDOM),
            lambda: aos.statvfs(world.top),
            lambda: aos.fstatvfs(world.fd),
            lambda: aos.chown(owned, -1, os.getgid()),
            lambda: aos.access(owned, os.R_OK),
            lambda: aos.mkfifo(fifo, 0o600),
            lambda: aos.mknod(node, stat.S_IFREG | 0o600),
            lambda: aos.rename2(src, dst, linuxaio.RENAME_NOREPLACE),
        )

    got = runner.run(main)
    assert got[0] == len(PATTERN) - 10 == os.lseek(seeker, 0, os.SEEK_CUR)
    assert got[1:3] == [100, 100]
    assert os.pread(sent, 200, 0) == PATTERN[:100] == os.pread(copied, 200, 0)
    assert got[3:5] == [None, None] and os.fstat(grown).st_size == 4096
    assert got[5].f_fsid == os.statvfs(world.top).f_fsid == got[6].f_fsid
    assert got[7] is None and got[8] is True
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISREG(os.lstat(node).st_mode)
    assert got[9:] == [None, None, None] and dst.read_bytes() == b"s" and not src.exists()


def test_the_new_os_twins_raise_what_os_raises(runner, world):
    missing = world.top / "missing"
    existing = world.tree / "file.txt"
    r, _ = world.pipe()
    ro = world.open(world.data, os.O_RDONLY)
    calls = [
        ("lseek", (r, 0, os.SEEK_SET)), ("sendfile", (ro, world.fd, 0, 10)),
        ("copy_file_range", (world.fd, ro, 10)), ("posix_fallocate", (ro, 0, 10)),
        ("posix_fadvise", (r, 0, 0, 0)), ("statvfs", (missing,)), ("chown", (missing, -1, -1)),
        ("lchown", (missing, -1, -1)), ("mkfifo", (existing,)), ("mknod", (existing,)),
        ("fchmod", (r + 1000, 0o600)), ("fstatvfs", (r + 1000,)),
    ]
    if world.xattrs:
        calls += [("getxattr", (world.xfile, "user.none")), ("removexattr", (world.xfile, "user.none")),
                  ("listxattr", (missing,))]

    async def main(rt):
        out = []
        for name, args in calls:
            try:
                await getattr(aos, name)(*args)
            except OSError as e:
                out.append(e)
            else:
                out.append(None)
        return out

    for (name, args), e in zip(calls, runner.run(main)):
        want = os_error(getattr(os, name), *args)
        assert e is not None, name
        assert error_shape(e) == error_shape(want), name


def test_cancelling_the_awaiting_task_cancels_the_new_twins(runner, world):
    """A task awaiting new twins (queued behind a held worker) cancelled: none
    of them ever runs."""
    fifo = world.fresh("never-fifo")
    src, dst = world.fresh("never-src"), world.fresh("never-dst")
    src.write_bytes(b"")
    grown = world.open(world.fresh("never-grown"), os.O_RDWR | os.O_CREAT)

    async def main(rt):
        outs = []
        with HeldWorker(world.top) as held:
            for request in (lambda: aos.mkfifo(fifo), lambda: aos.rename2(src, dst),
                            lambda: aos.posix_fallocate(grown, 0, 4096)):
                before = linuxaio.nready()
                outs.append(await rt.cancel_task(request, wait=lambda: linuxaio.nready() > before))
            held.release()
        await rt.drained()
        return outs

    assert [out.state for out in runner.run(main)] == ["cancelled"] * 3
    assert not os.path.lexists(fifo) and src.exists() and not dst.exists()
    assert os.fstat(grown).st_size == 0


# ------------------------------------------------------------ DT_UNKNOWN: DIRS_FIRST's guess

@pytest.fixture
def unknown_types_fs(tmp_path):
    """An ext2 file system made without the filetype feature, loop-mounted:
    its getdents64 says DT_UNKNOWN for every entry."""
    mke2fs = shutil.which("mke2fs") or "/usr/sbin/mke2fs"
    if os.geteuid() != 0:
        pytest.skip("mounting a file system image needs root")
    if not os.path.exists(mke2fs):
        pytest.skip("no mke2fs (e2fsprogs) to make an ext2 image")
    image, mnt = tmp_path / "ext2.img", tmp_path / "mnt"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(4 << 20)
    subprocess.run([mke2fs, "-q", "-F", "-t", "ext2", "-O", "^filetype", str(image)],
                   check=True, capture_output=True, timeout=60)
    proc = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.skip(f"cannot loop-mount an ext2 image here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=60)


@pytest.mark.aio_timeout(120)
def test_dirs_first_guesses_directories_where_types_are_unknown(unknown_types_fs):
    top = unknown_types_fs
    for d in ("d1", "subdir", "a-longer-directory"):
        (top / d).mkdir()
    for f in ("x", "notes.txt", ".profile", "Makefile", "f2", "archive.tar.gz"):
        (top / f).write_bytes(b"")
    os.symlink("d1", top / "ln")
    os.mkfifo(top / "pipe")
    entries, flags = call(linuxaio.aio_readdirx, str(top), linuxaio.READDIR_DENTS)
    if not any(t == linuxaio.DT_UNKNOWN for _, t, _ in entries):
        pytest.skip("this kernel's ext2 reports the types even without the filetype feature")
    assert {t for _, t, _ in entries} == {linuxaio.DT_UNKNOWN}
    assert flags == linuxaio.READDIR_DENTS | linuxaio.READDIR_FOUND_UNKNOWN
    inode = {n: i for n, _, i in entries}

    # The rule the README states: no dot after the first character looks like
    # a directory, the shorter the likelier (up to 3, up to 8, longer
    # characters); the rest after them; each class by inode.
    def rank(name):
        if "." not in name[1:]:
            return (1 if len(name) <= 3 else 2 if len(name) <= 8 else 3, inode[name])
        return (4, inode[name])
    want = sorted(inode, key=rank)
    entries, flags = call(linuxaio.aio_readdirx, str(top),
                          linuxaio.READDIR_DENTS | linuxaio.READDIR_DIRS_FIRST)
    assert [n for n, _, _ in entries] == want
    assert flags & linuxaio.READDIR_FOUND_UNKNOWN
    # the likely directories come first: the short no-dot names, lost+found
    # and "a-longer-directory" (10+ characters) after "subdir", files with
    # extensions last
    assert want.index("d1") < want.index("subdir") < want.index("a-longer-directory")
    assert set(want[-2:]) == {"notes.txt", "archive.tar.gz"}
    names, _ = call(linuxaio.aio_readdirx, str(top), linuxaio.READDIR_DIRS_FIRST)
    assert names == want
    by_inode, _ = call(linuxaio.aio_readdirx, str(top),
                       linuxaio.READDIR_DIRS_FIRST | linuxaio.READDIR_STAT_ORDER)
    assert by_inode == sorted(inode, key=inode.get)
    # aio_scandir stats what getdents64 left unknown: the real split
    dirs, nondirs = call(linuxaio.aio_scandir, str(top), 0)
    assert sorted(dirs) == sorted(["d1", "subdir", "a-longer-directory", "lost+found"])
    assert sorted(nondirs) == sorted(["x", "notes.txt", ".profile", "Makefile", "f2",
                                      "archive.tar.gz", "ln", "pipe"])


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan turns mlock/mlockall into no-ops (tools/sanitize.sh)")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # fork with threads (3.12+)
def test_mlockall_in_a_group_in_a_forked_child():
    """aio_mlockall locks the whole process, so it runs in a fork's child (a
    fresh engine, as IO::AIO's fork test has it), in a group with the other
    memory requests; the child's locked memory (VmLck) shows it ran."""
    def locked_kib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmLck:"))

    def child():
        got = []
        m = mmap.mmap(-1, 1 << 16)
        group = linuxaio.aio_group(lambda v: got.append("group"))
        group.add(linuxaio.aio_mlockall(linuxaio.MCL_CURRENT, got.append),
                  linuxaio.aio_mtouch(m, None, None, linuxaio.MT_MODIFY, got.append),
                  linuxaio.aio_msync(m, 0, None, linuxaio.MS_ASYNC, got.append))
        linuxaio.flush()
        if got[-1:] != ["group"] or sorted(got[:-1]) != [0, 0, 0]:
            print("got", got)
            return 1
        return 0 if locked_kib() >= 64 else 2

    before = locked_kib()
    assert run_forked(child, timeout=60) == 0
    assert locked_kib() == before          # the parent is not locked
