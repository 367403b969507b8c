"""IO::AIO's requests on names: statvfs, chown, access, fchmod, mknod, mkfifo
and rename2, through the callback API (aio_X) and their linuxaio.os twins
under asyncio, uvloop and trio, each compared with os doing the same."""
import os
import stat as stat_mod

import pytest

import linuxaio
from linuxaio import os as aos

from async_helpers import runner  # noqa: F401 (fixture)


def call(fn, *args):
    """Submit through the callback API, wait, and return what the callback got."""
    got = []
    fn(*args, got.append)
    linuxaio.flush()
    assert len(got) == 1
    return got[0]


def error_shape(e):
    return (type(e), e.errno, e.strerror, e.filename, e.filename2)


def os_error(fn, *args, **kwargs):
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)
    return info.value


def assert_refused(fn, args, exc):
    before = linuxaio.nreqs()
    with pytest.raises(exc):
        fn(*args, None)
    assert linuxaio.nreqs() == before


STABLE_VFS = ("f_bsize", "f_frsize", "f_blocks", "f_files", "f_flag", "f_namemax", "f_fsid")


def same_fs(got, want):
    """Two statvfs results of one file system (free counts move meanwhile)."""
    assert type(got) is os.statvfs_result
    assert [getattr(got, f) for f in STABLE_VFS] == [getattr(want, f) for f in STABLE_VFS]
    assert len(got) == len(want) == 10


# ---- statvfs ----

def test_aio_statvfs_of_a_path_and_an_fd_is_os_statvfs(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    same_fs(call(linuxaio.aio_statvfs, str(tmp_path / "f")), os.statvfs(tmp_path / "f"))
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        same_fs(call(linuxaio.aio_statvfs, fd), os.fstatvfs(fd))
    finally:
        os.close(fd)
    same_fs(call(linuxaio.aio_statvfs, "/proc"), os.statvfs("/proc"))


def test_aio_statvfs_result_equals_os_on_a_quiet_file_system():
    # /proc's counts do not move: the whole result, f_fsid included, is equal
    got = call(linuxaio.aio_statvfs, "/proc")
    assert got == os.statvfs("/proc") and got.f_fsid == os.statvfs("/proc").f_fsid


def test_aio_statvfs_error_is_os_error(tmp_path):
    missing = str(tmp_path / "missing")
    assert error_shape(call(linuxaio.aio_statvfs, missing)) == error_shape(os_error(os.statvfs, missing))


def test_statvfs_twins(runner, tmp_path):
    async def main(rt):
        same_fs(await aos.statvfs(tmp_path), os.statvfs(tmp_path))
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            same_fs(await aos.fstatvfs(fd), os.fstatvfs(fd))
            same_fs(await aos.statvfs(fd), os.statvfs(fd))
        finally:
            os.close(fd)
        with pytest.raises(FileNotFoundError) as info:
            await aos.statvfs(tmp_path / "missing")
        assert info.value.filename == str(tmp_path / "missing")
    runner.run(main)


# ---- chown, fchown, lchown ----

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")


@needs_root
def test_aio_chown_sets_and_keeps_ids(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x")
    assert call(linuxaio.aio_chown, str(p), 1234, 5678) == 0
    assert (p.stat().st_uid, p.stat().st_gid) == (1234, 5678)
    assert call(linuxaio.aio_chown, str(p), None, 42) == 0
    assert (p.stat().st_uid, p.stat().st_gid) == (1234, 42)
    assert call(linuxaio.aio_chown, str(p), 7, -1) == 0
    assert (p.stat().st_uid, p.stat().st_gid) == (7, 42)
    fd = os.open(p, os.O_RDONLY)
    try:
        assert call(linuxaio.aio_chown, fd, 8, None) == 0
        assert (os.fstat(fd).st_uid, os.fstat(fd).st_gid) == (8, 42)
    finally:
        os.close(fd)


def test_aio_chown_error_is_os_error(tmp_path):
    missing = str(tmp_path / "missing")
    assert error_shape(call(linuxaio.aio_chown, missing, -1, -1)) == \
        error_shape(os_error(os.chown, missing, -1, -1))


def test_aio_chown_refuses_bad_ids(tmp_path):
    p = str(tmp_path)
    for bad, exc in (("0", TypeError), (1.0, TypeError), (-2, OverflowError), (2 ** 32 - 1, OverflowError)):
        assert_refused(linuxaio.aio_chown, (p, bad, 0), exc)
        assert_refused(linuxaio.aio_chown, (p, 0, bad), exc)


@needs_root
def test_chown_twins(runner, tmp_path):
    async def main(rt):
        p = tmp_path / "f"
        p.write_bytes(b"x")
        os.symlink("f", tmp_path / "link")
        await aos.chown(p, 11, 12)
        assert (p.stat().st_uid, p.stat().st_gid) == (11, 12)
        await aos.chown(p, -1, 13)
        assert (p.stat().st_uid, p.stat().st_gid) == (11, 13)
        await aos.lchown(tmp_path / "link", 21, 22)
        assert (os.lstat(tmp_path / "link").st_uid, p.stat().st_uid) == (21, 11)
        await aos.chown(tmp_path / "link", 31, 32, follow_symlinks=False)
        assert os.lstat(tmp_path / "link").st_gid == 32 and p.stat().st_gid == 13
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        fd = os.open(p, os.O_RDONLY)
        try:
            await aos.chown("f", 41, 42, dir_fd=dfd)
            assert (p.stat().st_uid, p.stat().st_gid) == (41, 42)
            await aos.fchown(fd, 51, -1)
            assert (os.fstat(fd).st_uid, os.fstat(fd).st_gid) == (51, 42)
            await aos.chown(fd, 61, 62)
            assert os.fstat(fd).st_uid == 61
            with pytest.raises(ValueError):
                await aos.chown(fd, 1, 1, follow_symlinks=False)
        finally:
            os.close(fd)
            os.close(dfd)
        with pytest.raises(TypeError):   # as os.chown: no None
            await aos.chown(p, None, 1)
        with pytest.raises(FileNotFoundError) as info:
            await aos.chown(tmp_path / "missing", 1, 1)
        assert error_shape(info.value) == error_shape(os_error(os.chown, tmp_path / "missing", 1, 1))
    runner.run(main)


# ---- fchmod, access ----

def test_fchmod_twin(runner, tmp_path):
    async def main(rt):
        p = tmp_path / "f"
        p.write_bytes(b"x")
        fd = os.open(p, os.O_RDONLY)
        try:
            await aos.fchmod(fd, 0o640)
            assert stat_mod.S_IMODE(p.stat().st_mode) == 0o640
        finally:
            os.close(fd)
        with pytest.raises(OSError) as info:
            await aos.fchmod(fd, 0o600)
        assert error_shape(info.value) == error_shape(os_error(os.fchmod, fd, 0o600))
    runner.run(main)


def test_access_twin_answers_as_os_access(runner, tmp_path):
    async def main(rt):
        f = tmp_path / "f"
        f.write_bytes(b"x")
        f.chmod(0o644)
        x = tmp_path / "x"
        x.write_bytes(b"x")
        x.chmod(0o755)
        os.symlink("nowhere", tmp_path / "dangling")
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            cases = [
                ((f, os.F_OK), {}), ((f, os.R_OK | os.W_OK), {}), ((f, os.X_OK), {}),
                ((x, os.X_OK), {}), ((tmp_path / "missing", os.F_OK), {}),
                ((tmp_path / "dangling", os.F_OK), {}),
                ((tmp_path / "dangling", os.F_OK), {"follow_symlinks": False}),
                (("f", os.R_OK), {"dir_fd": dfd}), (("x", os.X_OK), {"dir_fd": dfd, "effective_ids": True}),
                ((f, os.X_OK), {"effective_ids": True}), ((f, 8), {}),
            ]
            for args, kwargs in cases:
                got = await aos.access(*args, **kwargs)
                assert got is os.access(*args, **kwargs), (args, kwargs)
        finally:
            os.close(dfd)
    runner.run(main)


def test_access_refuses_bad_arguments_before_queueing(tmp_path):
    before = linuxaio.nreqs()
    from linuxaio import _engine
    with pytest.raises(TypeError):
        _engine.access(None, 0, None, 0, None)
    with pytest.raises(TypeError):
        _engine.access(str(tmp_path), "r", None, 0, None)
    assert linuxaio.nreqs() == before


# ---- mknod, mkfifo ----

def test_aio_mknod_makes_a_fifo_and_a_regular_file(tmp_path):
    assert call(linuxaio.aio_mknod, str(tmp_path / "fifo"), stat_mod.S_IFIFO | 0o640, 0) == 0
    st = os.lstat(tmp_path / "fifo")
    assert stat_mod.S_ISFIFO(st.st_mode) and stat_mod.S_IMODE(st.st_mode) == 0o640 & ~current_umask()
    assert call(linuxaio.aio_mknod, str(tmp_path / "reg"), stat_mod.S_IFREG | 0o600, 0) == 0
    assert stat_mod.S_ISREG(os.lstat(tmp_path / "reg").st_mode)
    err = call(linuxaio.aio_mknod, str(tmp_path / "reg"), stat_mod.S_IFIFO | 0o600, 0)
    want = os_error(os.mknod, str(tmp_path / "reg"), stat_mod.S_IFIFO | 0o600)
    # the callback API names the path (os.mknod does not; its twin does as os)
    assert error_shape(err)[:3] == error_shape(want)[:3] and err.filename == str(tmp_path / "reg")


@needs_root
def test_aio_mknod_makes_a_device_node(tmp_path):
    dev = os.makedev(1, 3)   # /dev/null's numbers
    try:
        os.mknod(tmp_path / "ref", stat_mod.S_IFCHR | 0o600, dev)
    except PermissionError:
        pytest.skip("this container may not make device nodes (no CAP_MKNOD)")
    assert call(linuxaio.aio_mknod, str(tmp_path / "null"), stat_mod.S_IFCHR | 0o600, dev) == 0
    st = os.lstat(tmp_path / "null")
    assert stat_mod.S_ISCHR(st.st_mode) and st.st_rdev == dev == os.lstat(tmp_path / "ref").st_rdev


def current_umask():
    old = os.umask(0)
    os.umask(old)
    return old


def test_aio_mknod_refuses_bad_arguments(tmp_path):
    p = str(tmp_path / "n")
    assert_refused(linuxaio.aio_mknod, (p, -1, 0), ValueError)
    assert_refused(linuxaio.aio_mknod, (p, 0o200000, 0), ValueError)
    assert_refused(linuxaio.aio_mknod, (p, "0", 0), TypeError)
    assert_refused(linuxaio.aio_mknod, (p, 0o10600, -1), OverflowError)
    assert_refused(linuxaio.aio_mknod, (p, 0o10600, 1.5), TypeError)
    assert_refused(linuxaio.aio_mknod, (None, 0o10600, 0), TypeError)
    assert not os.path.exists(p)


def test_mknod_and_mkfifo_twins(runner, tmp_path):
    async def main(rt):
        await aos.mkfifo(tmp_path / "fifo")
        await aos.mkfifo(tmp_path / "fifo2", 0o600)
        os.mkfifo(tmp_path / "ref")
        assert os.lstat(tmp_path / "fifo").st_mode == os.lstat(tmp_path / "ref").st_mode
        assert stat_mod.S_IMODE(os.lstat(tmp_path / "fifo2").st_mode) == 0o600 & ~current_umask()
        await aos.mknod(tmp_path / "reg")           # defaults: a regular file, 0o600
        os.mknod(tmp_path / "reg_ref")
        assert os.lstat(tmp_path / "reg").st_mode == os.lstat(tmp_path / "reg_ref").st_mode
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            await aos.mknod("at", stat_mod.S_IFIFO | 0o644, dir_fd=dfd)
            await aos.mkfifo("at2", dir_fd=dfd)
        finally:
            os.close(dfd)
        assert stat_mod.S_ISFIFO(os.lstat(tmp_path / "at").st_mode)
        assert stat_mod.S_ISFIFO(os.lstat(tmp_path / "at2").st_mode)
        with pytest.raises(FileExistsError) as info:
            await aos.mkfifo(tmp_path / "fifo")
        assert error_shape(info.value) == error_shape(os_error(os.mkfifo, tmp_path / "fifo"))
    runner.run(main)


# ---- rename2 ----

def test_rename_flags_are_the_kernels():
    assert (linuxaio.RENAME_NOREPLACE, linuxaio.RENAME_EXCHANGE, linuxaio.RENAME_WHITEOUT) == (1, 2, 4)


def test_aio_rename2_noreplace_and_exchange(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    err = call(linuxaio.aio_rename2, str(a), str(b), linuxaio.RENAME_NOREPLACE)
    assert isinstance(err, FileExistsError)
    assert (err.errno, err.filename, err.filename2) == (17, str(a), str(b))
    assert (a.read_bytes(), b.read_bytes()) == (b"A", b"B")
    assert call(linuxaio.aio_rename2, str(a), str(b), linuxaio.RENAME_EXCHANGE) == 0
    assert (a.read_bytes(), b.read_bytes()) == (b"B", b"A")
    assert call(linuxaio.aio_rename2, str(a), str(tmp_path / "c"), linuxaio.RENAME_NOREPLACE) == 0
    assert not a.exists() and (tmp_path / "c").read_bytes() == b"B"
    assert call(linuxaio.aio_rename2, str(b), str(tmp_path / "c"), 0) == 0   # 0: rename(2)
    assert (tmp_path / "c").read_bytes() == b"A" and not b.exists()


def test_aio_rename2_refuses_bad_arguments(tmp_path):
    assert_refused(linuxaio.aio_rename2, (str(tmp_path / "a"), str(tmp_path / "b"), "1"), TypeError)
    assert_refused(linuxaio.aio_rename2, (str(tmp_path / "a"), str(tmp_path / "b"), 2 ** 40), OverflowError)
    assert_refused(linuxaio.aio_rename2, (str(tmp_path / "a"), None, 0), TypeError)


def test_rename2_twin(runner, tmp_path):
    async def main(rt):
        (tmp_path / "x").write_bytes(b"X")
        (tmp_path / "y").write_bytes(b"Y")
        await aos.rename2(tmp_path / "x", tmp_path / "y", linuxaio.RENAME_EXCHANGE)
        assert (tmp_path / "x").read_bytes() == b"Y"
        with pytest.raises(FileExistsError):
            await aos.rename2(tmp_path / "x", tmp_path / "y", linuxaio.RENAME_NOREPLACE)
        sub = tmp_path / "sub"
        sub.mkdir()
        s, d = os.open(tmp_path, os.O_RDONLY), os.open(sub, os.O_RDONLY)
        try:
            await aos.rename2("x", "z", src_dir_fd=s, dst_dir_fd=d)
        finally:
            os.close(s)
            os.close(d)
        assert (sub / "z").read_bytes() == b"Y"
        await aos.rename2(tmp_path / "y", tmp_path / "w")   # flags=0: a plain rename
        assert (tmp_path / "w").read_bytes() == b"X"
        await aos.replace(tmp_path / "w", sub / "z")
        assert (sub / "z").read_bytes() == b"X"
    runner.run(main)
