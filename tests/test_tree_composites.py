"""IO::AIO's composites on the callback API: aio_copy, aio_move, aio_rmtree."""
import os
import stat


import linuxaio
from tree_helpers import make_tree



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
