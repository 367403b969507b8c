"""IO::AIO's composites on the callback API: aio_copy, aio_move, aio_rmtree."""
import os
import stat


import pytest

import linuxaio
from tree_helpers import make_tree, symlink_swap_race



def read_file(path):
    with open(path, "rb") as f:
        return f.read()

def wait(fn, *args):
    got = []
    grp = fn(*args, got.append)
    linuxaio.flush()
    assert len(got) == 1
    return grp, got[0]


def test_aio_copy_data_then_mode_owner_times(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(os.urandom(3 << 20))
    os.chmod(src, 0o751)
    os.chown(src, 65534, 65534) if os.geteuid() == 0 else None
    os.utime(src, ns=(1_111_111_111, 2_222_222_222))
    _, res = wait(linuxaio.aio_copy, str(src), str(tmp_path / "dst"))
    assert res == 0
    s, d = os.stat(src), os.stat(tmp_path / "dst")
    assert (tmp_path / "dst").read_bytes() == src.read_bytes()
    assert stat.S_IMODE(d.st_mode) == 0o751 and d.st_mtime_ns == 2_222_222_222
    assert (d.st_uid, d.st_gid) == (s.st_uid, s.st_gid)


def test_aio_copy_failures_leave_nothing(tmp_path):
    (tmp_path / "d").mkdir()
    _, res = wait(linuxaio.aio_copy, str(tmp_path / "d"), str(tmp_path / "x"))
    assert isinstance(res, IsADirectoryError) and not os.path.exists(tmp_path / "x")
    _, res = wait(linuxaio.aio_copy, str(tmp_path / "none"), str(tmp_path / "x"))
    assert isinstance(res, FileNotFoundError) and not os.path.exists(tmp_path / "x")
    (tmp_path / "f").write_bytes(b"1")
    _, res = wait(linuxaio.aio_copy, str(tmp_path / "f"), str(tmp_path / "nodir" / "x"))
    assert isinstance(res, FileNotFoundError)


def test_aio_copy_cancel_cancels_the_group(tmp_path):
    (tmp_path / "f").write_bytes(b"1" * 1000)
    got = []
    linuxaio.max_parallel(0)          # nothing runs: the whole group is still queued
    try:
        grp = linuxaio.aio_copy(str(tmp_path / "f"), str(tmp_path / "g"), got.append)
        grp.cancel()
    finally:
        linuxaio.max_parallel(4)
    linuxaio.flush()
    assert got == [] and not os.path.exists(tmp_path / "g")


def test_aio_move_rename_and_across_filesystems(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")
    _, res = wait(linuxaio.aio_move, str(tmp_path / "a"), str(tmp_path / "b"))
    assert res == 0 and (tmp_path / "b").read_bytes() == b"abc" and not (tmp_path / "a").exists()
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat(tmp_path).st_dev:
        other = f"/dev/shm/linuxaio-aio-move-{os.getpid()}"
        try:
            os.utime(tmp_path / "b", ns=(5, 6_000_000_000))
            _, res = wait(linuxaio.aio_move, str(tmp_path / "b"), other)
            assert res == 0 and read_file(other) == b"abc"
            assert os.stat(other).st_mtime_ns == 6_000_000_000 and not (tmp_path / "b").exists()
        finally:
            if os.path.exists(other):
                os.unlink(other)
    _, res = wait(linuxaio.aio_move, str(tmp_path / "none"), str(tmp_path / "x"))
    assert isinstance(res, FileNotFoundError)


def test_aio_rmtree(tmp_path):
    top = make_tree(str(tmp_path / "t"))
    outside = tmp_path / "keep"
    outside.mkdir()
    (outside / "k").write_bytes(b"k")
    os.symlink(outside, os.path.join(top, "out"))
    _, res = wait(linuxaio.aio_rmtree, top)
    assert res == 0 and not os.path.lexists(top) and (outside / "k").exists()
    _, res = wait(linuxaio.aio_rmtree, str(tmp_path / "none"))
    assert isinstance(res, FileNotFoundError)
    (tmp_path / "file").write_bytes(b"")
    _, res = wait(linuxaio.aio_rmtree, str(tmp_path / "file"))
    assert res == 0 and not (tmp_path / "file").exists()


@pytest.mark.aio_timeout(150)      # a swapper thread beside the removal: slow on a loaded machine
def test_aio_rmtree_under_a_concurrent_symlink_swap_removes_nothing_outside(tmp_path):
    """Directories are swapped for symlinks to a victim directory while
    aio_rmtree runs: it works on directory fds (openat O_NOFOLLOW, checked
    against the listing; unlinkat relative to the parent's fd), so nothing
    in the victim may go."""
    symlink_swap_race(tmp_path, lambda top: wait(linuxaio.aio_rmtree, top))


def test_aio_rmtree_keeps_going_and_reports_the_first_failure(tmp_path):
    top = make_tree(str(tmp_path / "t"))
    os.symlink("/", os.path.join(top, "dir", "root-link"))
    _, res = wait(linuxaio.aio_rmtree, top)
    assert res == 0 and not os.path.lexists(top) and os.path.exists("/")
    _, res = wait(linuxaio.aio_rmtree, os.path.join(str(tmp_path), "t", "x"))
    assert isinstance(res, FileNotFoundError)


def test_aio_rmtree_cancelled_mid_way_leaks_no_fd(tmp_path):
    """Cancelled while it holds directories open: once its requests are
    back, the removal is let go and closes them; the rest of the tree
    stays (and can be removed afterwards)."""
    top = tmp_path / "t"
    for i in range(40):
        for k in range(3):
            (top / f"d{i}" / f"e{k}").mkdir(parents=True)
            (top / f"d{i}" / f"e{k}" / "f").write_bytes(b"")
    before = len(os.listdir("/proc/self/fd"))
    got = []
    grp = linuxaio.aio_rmtree(str(top), got.append)
    while len(os.listdir("/proc/self/fd")) <= before + 1:     # subdirectories open
        linuxaio.poll_wait()
        linuxaio.poll_cb()
    grp.cancel()
    linuxaio.flush()
    assert got == [] and len(os.listdir("/proc/self/fd")) == before
    assert top.exists()
    _, res = wait(linuxaio.aio_rmtree, str(top))
    assert res == 0 and not top.exists()


def test_copy_file_and_scandir_totals_rows(tmp_path):
    """The rows under aio_copy and linuxaio scan, through their os twins."""
    import asyncio
    src = tmp_path / "src"
    src.write_bytes(os.urandom(70_000))
    os.chmod(src, 0o604)
    os.utime(src, ns=(5, 6_000_000_007))
    n = asyncio.run(linuxaio.os.copy_file(str(src), str(tmp_path / "dst"), 1 | 4))
    st = os.stat(tmp_path / "dst")
    assert n == 70_000 and (tmp_path / "dst").read_bytes() == src.read_bytes()
    assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (0o604, 6_000_000_007)
    with pytest.raises(IsADirectoryError):
        asyncio.run(linuxaio.os.copy_file(str(tmp_path), str(tmp_path / "x")))
    assert not os.path.exists(tmp_path / "x")
    (tmp_path / "d").mkdir()
    os.link(src, tmp_path / "hard")
    os.symlink("src", tmp_path / "sl")
    files, dirs, links, other, apparent, allocated, subdirs, linked, failed = \
        asyncio.run(linuxaio.os.scandir_totals(str(tmp_path)))
    entries = [os.lstat(tmp_path / n) for n in os.listdir(tmp_path)]
    assert (files, dirs, links, other) == (3, 1, 1, 0)
    assert apparent == sum(s.st_size for s in entries if stat.S_ISREG(s.st_mode))
    assert subdirs == ["d"] and failed == []
    assert sorted(linked) == sorted((s.st_dev, s.st_ino, s.st_blocks * 512) for s in entries
                                    if stat.S_ISREG(s.st_mode) and s.st_nlink > 1)
    assert allocated == sum(s.st_blocks * 512 for s in entries
                            if stat.S_ISDIR(s.st_mode) or s.st_nlink == 1)
