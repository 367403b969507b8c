"""Extended attributes in linuxaio.shutil and `linuxaio copy`: copied by the
engine (copy_data's META_XATTRS flag, the copy_xattrs row), never by
os.listxattr/getxattr/setxattr on the loop's thread, with shutil.copystat's
results: the same attributes, the same errors passed over or raised."""
import asyncio
import os
import shutil

import pytest

import linuxaio
import linuxaio.shutil as ash
from linuxaio.__main__ import main as cli


def run(coro):
    return asyncio.run(coro)


def xattrs(path, follow_symlinks=True):
    return {n: os.getxattr(path, n, follow_symlinks=follow_symlinks)
            for n in sorted(os.listxattr(path, follow_symlinks=follow_symlinks))}


def _supported(path):
    try:
        os.setxattr(path, "user.linuxaio-probe", b"1")
        os.removexattr(path, "user.linuxaio-probe")
        return True
    except OSError:
        return False


def refuse_sync_xattr_calls(monkeypatch):
    """Any synchronous xattr call in this process fails the test (until
    monkeypatch.undo())."""
    def refuse(*a, **kw):
        raise AssertionError("a synchronous xattr call on the loop's thread")
    for name in ("listxattr", "getxattr", "setxattr"):
        monkeypatch.setattr(os, name, refuse)


@pytest.fixture
def with_xattrs(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"data" * 1000)
    if not _supported(src):
        pytest.skip(f"{tmp_path}'s filesystem has no user.* extended attributes")
    os.setxattr(src, "user.a", b"alpha")
    os.setxattr(src, "user.b", b"\x00\xff" * 700)     # larger than the first buffer
    os.setxattr(src, "user.empty", b"")
    return src


def test_copy2_copies_the_xattrs_through_the_engine(tmp_path, with_xattrs, monkeypatch):
    expected = xattrs(with_xattrs)
    shutil.copy2(with_xattrs, tmp_path / "by-shutil")
    assert xattrs(tmp_path / "by-shutil") == expected
    refuse_sync_xattr_calls(monkeypatch)
    run(ash.copy2(str(with_xattrs), str(tmp_path / "ours")))
    run(ash.copystat(str(with_xattrs), str(tmp_path / "by-shutil")))
    monkeypatch.undo()
    assert xattrs(tmp_path / "ours") == expected
    assert (tmp_path / "ours").read_bytes() == with_xattrs.read_bytes()


def test_copystat_copies_the_xattrs_through_the_engine(tmp_path, with_xattrs, monkeypatch):
    dst = tmp_path / "dst"
    dst.write_bytes(b"")
    refuse_sync_xattr_calls(monkeypatch)
    run(ash.copystat(str(with_xattrs), str(dst)))
    monkeypatch.undo()
    assert xattrs(dst) == xattrs(with_xattrs)


def test_copystat_result_equals_shutils(tmp_path, with_xattrs):
    (tmp_path / "a").write_bytes(b"")
    (tmp_path / "b").write_bytes(b"")
    shutil.copystat(with_xattrs, tmp_path / "a")
    run(ash.copystat(str(with_xattrs), str(tmp_path / "b")))
    assert xattrs(tmp_path / "b") == xattrs(tmp_path / "a") == xattrs(with_xattrs)


def test_copytree_copies_file_and_directory_xattrs_through_the_engine(tmp_path, with_xattrs, monkeypatch):
    top = tmp_path / "tree"
    (top / "sub").mkdir(parents=True)
    shutil.copy2(with_xattrs, top / "sub" / "f")
    os.setxattr(top / "sub", "user.dir", b"d")
    os.setxattr(top, "user.top", b"t")
    shutil.copytree(top, tmp_path / "by-shutil")
    refuse_sync_xattr_calls(monkeypatch)
    run(ash.copytree(str(top), str(tmp_path / "ours")))
    monkeypatch.undo()
    for rel in ("", "sub", "sub/f"):
        assert xattrs(tmp_path / "ours" / rel) == xattrs(tmp_path / "by-shutil" / rel) == xattrs(top / rel)


def test_cli_copy_copies_the_xattrs_through_the_engine(tmp_path, with_xattrs, monkeypatch, capsys):
    top = tmp_path / "tree"
    top.mkdir()
    shutil.copy2(with_xattrs, top / "f")
    refuse_sync_xattr_calls(monkeypatch)
    rc = cli(["copy", "--quiet", str(top), str(tmp_path / "copy")])
    monkeypatch.undo()
    assert rc == 0, capsys.readouterr()
    assert xattrs(tmp_path / "copy" / "f") == xattrs(with_xattrs)


def test_an_xattr_the_destination_cannot_take_raises_as_shutil(tmp_path):
    """A value too large for ext4 (ENOSPC) is no error shutil passes over:
    copystat and copy2 raise it, named by the destination."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm (tmpfs) to hold a large attribute")
    src = f"/dev/shm/linuxaio-xattr-{os.getpid()}"
    with open(src, "wb") as f:
        f.write(b"x")
    try:
        try:
            os.setxattr(src, "user.big", b"v" * 20000)
        except OSError as exc:
            pytest.skip(f"tmpfs takes no large user.* attribute here: {exc}")
        dst = tmp_path / "dst"
        dst.write_bytes(b"")
        try:
            shutil.copystat(src, dst)
        except OSError as exc:
            expected = exc
        else:
            pytest.skip(f"{tmp_path}'s filesystem takes a 20,000-byte attribute")
        with pytest.raises(OSError) as ours:
            run(ash.copystat(src, str(dst)))
        assert (ours.value.errno, ours.value.filename) == (expected.errno, expected.filename)
        with pytest.raises(OSError) as by_shutil:
            shutil.copy2(src, tmp_path / "d2")
        with pytest.raises(OSError) as ours2:
            run(ash.copy2(src, str(tmp_path / "d3")))
        assert ours2.value.errno == by_shutil.value.errno == expected.errno
        assert ours2.value.filename == str(tmp_path / "d3")
    finally:
        os.unlink(src)


def test_errors_shutil_passes_over_are_passed_over(tmp_path, with_xattrs):
    """user.* attributes are refused on a FIFO (EPERM): shutil.copystat goes
    on without them, and so does ours."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    shutil.copystat(with_xattrs, fifo)
    run(ash.copystat(str(with_xattrs), str(fifo)))
    assert xattrs(fifo) == {}
    # a symlink's own attributes (follow_symlinks=False): none to copy from
    # a symlink, and a copy to one sets nothing, as shutil
    os.symlink(with_xattrs, tmp_path / "l1")
    os.symlink(with_xattrs, tmp_path / "l2")
    run(ash.copystat(str(tmp_path / "l1"), str(tmp_path / "l2"), follow_symlinks=False))
    assert xattrs(tmp_path / "l2", follow_symlinks=False) == {}
    run(ash.copy2(str(tmp_path / "l1"), str(tmp_path / "l3"), follow_symlinks=False))
    assert os.readlink(tmp_path / "l3") == str(with_xattrs)


def test_copy_xattrs_row(tmp_path, with_xattrs):
    (tmp_path / "d").write_bytes(b"")
    run(linuxaio.os.copy_xattrs(str(with_xattrs), str(tmp_path / "d")))
    assert xattrs(tmp_path / "d") == xattrs(with_xattrs)
    with pytest.raises(FileNotFoundError):
        run(linuxaio.os.copy_xattrs(str(tmp_path / "none"), str(tmp_path / "d")))
    # a source on a filesystem without xattrs (procfs) copies nothing, no error
    before = xattrs(tmp_path / "d")
    run(linuxaio.os.copy_xattrs("/proc/self/status", str(tmp_path / "d")))
    assert xattrs(tmp_path / "d") == before


def test_copytree_of_symlinks_copies_their_own_xattrs(tmp_path):
    """copytree(symlinks=True) runs copystat(follow_symlinks=False) on each
    link: its own attributes (trusted.*: root only; user.* is refused on
    symlinks) are copied, as shutil does."""
    if os.geteuid() != 0:
        pytest.skip("a symlink's own attributes are trusted.* (root only)")
    top = tmp_path / "tree"
    top.mkdir()
    os.symlink("target", top / "link")
    try:
        os.setxattr(top / "link", "trusted.linuxaio", b"t", follow_symlinks=False)
    except OSError as exc:
        pytest.skip(f"no trusted.* attribute on a symlink here: {exc}")
    shutil.copytree(top, tmp_path / "by-shutil", symlinks=True)
    run(ash.copytree(str(top), str(tmp_path / "ours"), symlinks=True))
    expected = xattrs(top / "link", follow_symlinks=False)
    assert xattrs(tmp_path / "by-shutil" / "link", follow_symlinks=False) == expected
    assert xattrs(tmp_path / "ours" / "link", follow_symlinks=False) == expected
