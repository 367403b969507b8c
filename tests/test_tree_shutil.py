"""linuxaio.shutil against shutil on generated trees: same resulting tree
(names, contents, modes, times to the ns where copy2 keeps them, hard
links, symlinks), same exceptions (shutil.Error and its list,
SameFileError, SpecialFileError, IsADirectoryError...)."""
import asyncio
import errno
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

import linuxaio
import linuxaio.shutil as ash
from tree_helpers import NON_UTF8, make_tree, make_wide_tree, snapshot, symlink_swap_race

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the package the tests import (the source tree's, or an installed one: CI's)
LINUXAIO_HOME = os.path.dirname(os.path.dirname(os.path.abspath(linuxaio.__file__)))



def read_file(path):
    with open(path, "rb") as f:
        return f.read()

def run(coro):
    return asyncio.run(coro)


async def _error_list(coro):
    try:
        await coro
    except shutil.Error as e:
        return e.args[0]
    return None


def _sync_error_list(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except shutil.Error as e:
        return e.args[0]
    return None


def _rebase(errors, old, new):
    return sorted((s, d.replace(old, new, 1), m.replace(old, new)) for s, d, m in errors)


@pytest.mark.parametrize("symlinks", [False, True])
def test_copytree_same_tree_and_errors_as_shutil(tmp_path, symlinks):
    src = make_tree(str(tmp_path / "src"))
    a, b = str(tmp_path / "by_shutil"), str(tmp_path / "by_linuxaio")
    exp = _sync_error_list(shutil.copytree, src, a, symlinks=symlinks)
    got = run(_error_list(ash.copytree(src, b, symlinks=symlinks)))
    assert exp is not None and got is not None     # the FIFO (and dangling/looping links)
    assert _rebase(got, b, a) == sorted(exp)
    assert snapshot(b) == snapshot(a)


def test_copytree_keeps_times_to_the_ns_and_modes(tmp_path):
    src = make_tree(str(tmp_path / "src"), fifo=False, loops=False)
    dst = str(tmp_path / "dst")
    got = run(_error_list(ash.copytree(src, dst, ignore_dangling_symlinks=True)))
    assert got is None
    for rel in ("dir/f5.dat", "dir/sub/deep", "dir/f4.dat", "dir/sub", NON_UTF8):
        s, d = os.stat(os.path.join(src, rel)), os.stat(os.path.join(dst, rel))
        assert s.st_mtime_ns == d.st_mtime_ns
        assert stat.S_IMODE(s.st_mode) == stat.S_IMODE(d.st_mode)
    # the atime is the source's once read (relatime may have moved it), as copy2's
    assert os.stat(os.path.join(dst, "dir/f5.dat")).st_atime_ns == \
        os.stat(os.path.join(src, "dir/f5.dat")).st_atime_ns


@pytest.mark.parametrize("fn", ["copy", "copyfile"])
def test_copytree_with_copy_or_copyfile_matches_shutil(tmp_path, fn):
    src = make_tree(str(tmp_path / "src"), fifo=False, loops=False)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    _sync_error_list(shutil.copytree, src, a, copy_function=getattr(shutil, fn))
    run(_error_list(ash.copytree(src, b, copy_function=getattr(ash, fn))))
    sa, sb = snapshot(a, times=False), snapshot(b, times=False)
    assert sa == sb


def test_copytree_custom_copy_function_ignore_and_dirs_exist_ok(tmp_path):
    src = make_tree(str(tmp_path / "src"), fifo=False, loops=False)
    calls = []

    async def my_copy(s, d):
        calls.append(s)
        await ash.copyfile(s, d)

    dst = str(tmp_path / "dst")
    ign = shutil.ignore_patterns("*.txt", "f1*")
    run(_error_list(ash.copytree(src, dst, ignore=ign, copy_function=my_copy,
                                 ignore_dangling_symlinks=True)))
    exp = str(tmp_path / "exp")
    shutil.copytree(src, exp, ignore=ign, copy_function=shutil.copyfile, ignore_dangling_symlinks=True)
    assert snapshot(dst, times=False)[0].keys() == snapshot(exp, times=False)[0].keys()
    assert calls and all(isinstance(c, str) for c in calls)
    with pytest.raises(FileExistsError):
        run(ash.copytree(src, dst))
    run(_error_list(ash.copytree(src, dst, dirs_exist_ok=True, ignore_dangling_symlinks=True)))
    assert os.path.exists(os.path.join(dst, "dir", "sub", "deep", "leaf.txt"))


def test_copytree_missing_source_raises_as_shutil(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        run(ash.copytree(str(tmp_path / "nope"), str(tmp_path / "d")))
    assert e.value.filename == str(tmp_path / "nope")
    assert not os.path.exists(tmp_path / "d")


@pytest.mark.aio_timeout(180)     # making 10,000 files takes 10 s on the loaded test VM
def test_copytree_of_10000_entries(tmp_path):
    src = make_wide_tree(str(tmp_path / "wide"), 10_000, 500)
    dst = str(tmp_path / "copy")
    assert run(ash.copytree(src, dst)) == dst
    assert snapshot(dst) == snapshot(src)


def test_copyfile_copy_copy2(tmp_path):
    src = tmp_path / "s"
    src.write_bytes(os.urandom(200_000))
    os.chmod(src, 0o640)
    os.utime(src, ns=(5_000_000_001, 6_000_000_002))
    assert run(ash.copyfile(src, tmp_path / "a")) == tmp_path / "a"
    assert (tmp_path / "a").read_bytes() == src.read_bytes()
    d = tmp_path / "d"
    d.mkdir()
    got = run(ash.copy(str(src), str(d)))
    assert got == os.path.join(str(d), "s")
    assert stat.S_IMODE(os.stat(got).st_mode) == 0o640
    got2 = run(ash.copy2(str(src), str(tmp_path / "b")))
    st = os.stat(got2)
    assert st.st_mtime_ns == 6_000_000_002 and stat.S_IMODE(st.st_mode) == 0o640


def test_copy_exceptions_match_shutil(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    with pytest.raises(shutil.SameFileError) as e:
        run(ash.copyfile(str(f), str(f)))
    with pytest.raises(shutil.SameFileError) as e2:
        shutil.copyfile(str(f), str(f))
    assert str(e.value) == str(e2.value)
    os.mkfifo(tmp_path / "p")
    with pytest.raises(shutil.SpecialFileError) as e:
        run(ash.copyfile(str(tmp_path / "p"), str(tmp_path / "q")))
    assert str(e.value) == f"`{tmp_path / 'p'}` is a named pipe"
    d = tmp_path / "dir"
    d.mkdir()
    with pytest.raises(IsADirectoryError):
        run(ash.copyfile(str(f), str(d)))
    with pytest.raises(IsADirectoryError):
        shutil.copyfile(str(f), str(d))
    with pytest.raises(FileNotFoundError) as e:
        run(ash.copyfile(str(f), str(tmp_path / "no" / "x")))
    assert e.value.filename == str(tmp_path / "no" / "x")
    with pytest.raises(IsADirectoryError):
        run(ash.copyfile(str(d), str(tmp_path / "z")))
    assert not os.path.exists(tmp_path / "z") or os.path.getsize(tmp_path / "z") == 0


def test_copystat_copymode(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"1")
    b.write_bytes(b"2")
    os.chmod(a, 0o604)
    os.utime(a, ns=(7_000_000_007, 8_000_000_008))
    run(ash.copymode(a, b))
    assert stat.S_IMODE(os.stat(b).st_mode) == 0o604
    os.chmod(b, 0o600)
    run(ash.copystat(a, b))
    st = os.stat(b)
    assert (st.st_atime_ns, st.st_mtime_ns, stat.S_IMODE(st.st_mode)) == (7_000_000_007, 8_000_000_008, 0o604)


def test_copyfileobj(tmp_path):
    data = os.urandom(300_000)
    (tmp_path / "a").write_bytes(data)

    async def go():
        async with linuxaio.open(tmp_path / "a", "rb") as fa, linuxaio.open(tmp_path / "b", "wb") as fb:
            await ash.copyfileobj(fa, fb, 65536)
    run(go())
    assert (tmp_path / "b").read_bytes() == data


def test_copy_data_row(tmp_path):
    import linuxaio.os as aos
    data = os.urandom(1 << 20)
    (tmp_path / "a").write_bytes(data)
    a = os.open(tmp_path / "a", os.O_RDONLY)
    b = os.open(tmp_path / "b", os.O_WRONLY | os.O_CREAT, 0o600)
    c = os.open(tmp_path / "c", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        n, how = run(aos.copy_data(a, b))
        assert n == len(data) and how in ("reflink", "copy_file_range", "sendfile", "read/write")
        os.lseek(a, 10, 0)
        assert run(aos.copy_data(a, c, 100)) [0] == 100
        with pytest.raises(ValueError):          # refused at submission
            run(aos.copy_data(a, -1))
        with pytest.raises(OSError) as e:
            run(aos.copy_data(a, 1 << 20))       # no such fd
        assert e.value.errno == errno.EBADF
    finally:
        for fd in (a, b, c):
            os.close(fd)
    assert (tmp_path / "b").read_bytes() == data
    assert (tmp_path / "c").read_bytes() == data[10:110]


def test_rmtree(tmp_path):
    src = make_tree(str(tmp_path / "t"))
    make_wide_tree(str(tmp_path / "t" / "wide"), 3000, 100)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"k")
    os.symlink(outside, tmp_path / "t" / "link-out")
    run(ash.rmtree(src))
    assert not os.path.lexists(src)
    assert (outside / "keep").read_bytes() == b"k"


def test_rmtree_errors_match_shutil(tmp_path):
    f = tmp_path / "file"
    f.write_bytes(b"")
    os.symlink(tmp_path, tmp_path / "sl")
    messages = []
    for fn in (shutil.rmtree, lambda p, **kw: run(ash.rmtree(p, **kw))):
        with pytest.raises(NotADirectoryError) as e1:
            fn(str(f))
        with pytest.raises(FileNotFoundError) as e2:
            fn(str(tmp_path / "none"))
        with pytest.raises(OSError) as e3:
            fn(str(tmp_path / "sl"))
        fn(str(tmp_path / "none"), ignore_errors=True)
        messages.append([(type(e.value), str(e.value)) for e in (e1, e2, e3)])
    assert messages[0] == messages[1]
    assert os.path.islink(tmp_path / "sl") and f.exists()
    seen = []
    run(ash.rmtree(str(tmp_path / "none"), onexc=lambda *a: seen.append(a)))
    assert seen[0][0] is os.lstat and seen[0][1] == str(tmp_path / "none")
    assert isinstance(seen[0][2], FileNotFoundError)
    seen = []
    run(ash.rmtree(str(tmp_path / "none"), onerror=lambda *a: seen.append(a)))
    assert seen[0][2][0] is FileNotFoundError


def test_rmtree_dir_fd(tmp_path):
    make_tree(str(tmp_path / "t"))
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        run(ash.rmtree("t", dir_fd=fd))
    finally:
        os.close(fd)
    assert not os.path.exists(tmp_path / "t")


@pytest.mark.aio_timeout(150)      # a swapper thread beside the removal: slow on a loaded machine
def test_rmtree_under_a_concurrent_symlink_swap_removes_nothing_outside(tmp_path):
    """Directories are swapped for symlinks to a victim directory while the
    removal runs: nothing in the victim may go."""
    symlink_swap_race(tmp_path, lambda top: run(ash.rmtree(top, ignore_errors=True)))


def test_move_and_disk_usage(tmp_path):
    src = make_tree(str(tmp_path / "src"), fifo=False)
    exp = snapshot(src)
    dst = str(tmp_path / "moved")
    assert run(ash.move(src, dst)) == dst
    assert snapshot(dst) == exp and not os.path.exists(src)
    # across filesystems: /dev/shm is a tmpfs
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat(tmp_path).st_dev:
        other = f"/dev/shm/linuxaio-move-{os.getpid()}"
        try:
            run(ash.move(dst, other))
            # as shutil.move across filesystems (copytree), hard links are not kept
            assert snapshot(other)[0] == exp[0] and not os.path.exists(dst)
            f = tmp_path / "single"
            f.write_bytes(b"one")
            run(ash.move(str(f), other + "/single"))
            assert not f.exists() and read_file(other + "/single") == b"one"
        finally:
            shutil.rmtree(other, ignore_errors=True)
    du = run(ash.disk_usage(str(tmp_path)))
    ref = shutil.disk_usage(str(tmp_path))
    assert du.total == ref.total and abs(du.used - ref.used) < (64 << 20)


UNPRIVILEGED = textwrap.dedent(r"""
    import asyncio, json, os, shutil, sys
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import linuxaio.shutil as ash
    from tree_helpers import make_tree, snapshot
    top = sys.argv[3]
    src = make_tree(os.path.join(top, "src"), fifo=False, loops=False)
    def lock(t):
        os.makedirs(os.path.join(t, "locked", "in"))
        open(os.path.join(t, "locked", "in", "x"), "w").close()
        open(os.path.join(t, "secret"), "w").close()
        os.chmod(os.path.join(t, "secret"), 0)
        os.chmod(os.path.join(t, "locked"), 0)
    lock(src)
    def errs(fn):
        try:
            fn()
        except shutil.Error as e:
            return sorted(e.args[0])
    async def mine(d):
        await ash.copytree(src, d)
    a, b = os.path.join(top, "a"), os.path.join(top, "b")
    e1 = errs(lambda: shutil.copytree(src, a))
    e2 = errs(lambda: asyncio.run(mine(b)))
    e2 = sorted((s, d.replace(b, a, 1), m) for s, d, m in e2 or [])
    same_tree = snapshot(a) == snapshot(b)
    # rmtree of a tree with a directory we cannot read
    lock(a)
    lock(b)
    r1, r2 = [], []
    shutil.rmtree(a, onexc=lambda f, p, e: r1.append((f.__name__, p.replace(a, "X"), type(e).__name__))) \
        if sys.version_info >= (3, 12) else None
    asyncio.run(ash.rmtree(b, onexc=lambda f, p, e: r2.append((f.__name__, p.replace(b, "X"), type(e).__name__))))
    print(json.dumps({"e1": e1, "e2": e2, "same": same_tree, "r1": sorted(r1), "r2": sorted(r2),
                      "py312": sys.version_info >= (3, 12)}))
""")


def test_unreadable_entries_as_an_unprivileged_user(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to nobody (setpriv)")
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) not installed")
    import json
    import tempfile
    probe = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            sys.executable, "-c", "pass"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"this interpreter does not start as nobody: {probe.stderr.strip()[:200]}")
    tmp_path = tempfile.mkdtemp(prefix="linuxaio-nobody-")    # pytest's are root's, 0700
    os.chmod(tmp_path, 0o777)
    try:
        _unprivileged(tmp_path, json)
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", tmp_path])
        shutil.rmtree(tmp_path)


def helpers_for_nobody(tmp_path):
    """tree_helpers.py where nobody can read it: the checkout may be in a
    0700 directory (mktemp -d)."""
    where = os.path.join(tmp_path, "helpers")
    os.mkdir(where)
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tree_helpers.py"), where)
    os.chmod(where, 0o755)
    return where


def _unprivileged(tmp_path, json):
    out = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          sys.executable, "-c", UNPRIVILEGED, LINUXAIO_HOME,
                          helpers_for_nobody(tmp_path), str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["e1"] and res["e1"] == [list(x) for x in res["e2"]]
    assert any("Permission denied" in m for _, _, m in res["e1"])
    assert res["same"]
    # the locked directory (mode 0) cannot be opened, so it and the top stay
    # (shutil's fd-based rmtree reports the same two: os.open, then os.rmdir)
    assert res["r2"] == [["open", "X/locked", "PermissionError"], ["rmdir", "X", "OSError"]]
    if res["py312"]:
        assert res["r1"] == res["r2"]


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.2])
def test_copytree_cancelled_leaks_no_fd(tmp_path, delay):
    src = make_wide_tree(str(tmp_path / "src"), 1500, 100)
    before = len(os.listdir("/proc/self/fd"))

    async def go():
        try:
            await asyncio.wait_for(ash.copytree(src, str(tmp_path / "dst")), delay)
        except (asyncio.TimeoutError, TimeoutError):
            return "cancelled"
        return "done"
    run(go())
    linuxaio.flush()
    assert len(os.listdir("/proc/self/fd")) == before


def test_copytree_and_walk_under_trio(tmp_path):
    trio = pytest.importorskip("trio")
    src = make_tree(str(tmp_path / "src"), fifo=False, loops=False)

    async def go():
        await ash.copytree(src, str(tmp_path / "dst"), ignore_dangling_symlinks=True)
        return [w async for w in linuxaio.os.walk(str(tmp_path / "dst"))]
    got = trio.run(go)
    assert sorted(got) == sorted(os.walk(str(tmp_path / "dst")))
    shutil.copytree(src, str(tmp_path / "exp"), ignore_dangling_symlinks=True)
    assert snapshot(str(tmp_path / "dst")) == snapshot(str(tmp_path / "exp"))
    trio.run(ash.rmtree, str(tmp_path / "dst"))
    assert not os.path.exists(tmp_path / "dst")


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.1])
def test_rmtree_cancelled_leaks_no_fd_and_can_finish(tmp_path, delay):
    top = make_wide_tree(str(tmp_path / "t"), 1500, 30)
    before = len(os.listdir("/proc/self/fd"))

    async def go():
        try:
            await asyncio.wait_for(ash.rmtree(top), delay)
        except (asyncio.TimeoutError, TimeoutError):
            pass
    run(go())
    linuxaio.flush()
    assert len(os.listdir("/proc/self/fd")) == before
    run(ash.rmtree(top, ignore_errors=True))
    assert not os.path.exists(top)
