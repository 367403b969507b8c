"""linuxaio.os.walk/fwalk/makedirs/removedirs/renames and linuxaio.Path's
walk/copy/copy_into/move/move_into/rmtree, against os and pathlib."""
import asyncio
import os
import pathlib

import pytest

import linuxaio
import linuxaio.os as aos
from tree_helpers import make_tree, make_wide_tree, snapshot


def run(coro):
    return asyncio.run(coro)


async def collect(it):
    return [x async for x in it]


def per_dir(results):
    return {r[0]: (sorted(r[1]), sorted(r[2])) for r in results}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    top = make_tree(str(tmp_path_factory.mktemp("walk") / "t"))   # read only: shared
    make_wide_tree(os.path.join(top, "wide"), 1200, 100)
    return top


@pytest.mark.parametrize("topdown", [True, False])
@pytest.mark.parametrize("followlinks", [False, True])
def test_walk_equals_os_walk(tree, topdown, followlinks):
    exp = list(os.walk(tree, topdown=topdown, followlinks=followlinks))
    got = run(collect(aos.walk(tree, topdown=topdown, followlinks=followlinks)))
    assert per_dir(got) == per_dir(exp)
    assert sorted(r[0] for r in got) == sorted(r[0] for r in exp)
    # an order os.walk could give: parents before children (topdown) or after
    pos = {r[0]: i for i, r in enumerate(got)}
    for path in pos:
        parent = os.path.dirname(path)
        if parent in pos and path != tree:
            assert (pos[parent] < pos[path]) == topdown


def test_walk_bytes_and_pathlike(tree):
    exp = per_dir(os.walk(os.fsencode(tree)))
    assert per_dir(run(collect(aos.walk(os.fsencode(tree))))) == exp
    assert per_dir(run(collect(aos.walk(pathlib.Path(tree))))) == per_dir(os.walk(tree))


def test_walk_topdown_pruning(tree):
    async def go():
        seen = []
        async for dirpath, dirnames, filenames in aos.walk(tree):
            seen.append(dirpath)
            dirnames[:] = [d for d in dirnames if d != "wide"]
        return seen
    seen = run(go())
    assert not any("/wide" in s for s in seen)
    exp = []
    for dirpath, dirnames, _ in os.walk(tree):
        exp.append(dirpath)
        dirnames[:] = [d for d in dirnames if d != "wide"]
    assert sorted(seen) == sorted(exp)


def test_walk_onerror(tmp_path):
    errors = []
    got = run(collect(aos.walk(str(tmp_path / "missing"), onerror=errors.append)))
    assert got == [] and isinstance(errors[0], FileNotFoundError)
    assert errors[0].filename == str(tmp_path / "missing")


def test_fwalk_equals_os_fwalk(tree):
    for topdown in (True, False):
        exp = [(p, sorted(d), sorted(f)) for p, d, f, _ in os.fwalk(tree, topdown=topdown)]

        async def go():
            out = []
            async for p, d, f, fd in aos.fwalk(tree, topdown=topdown):
                assert os.path.samestat(os.fstat(fd), os.stat(p))
                out.append((p, sorted(d), sorted(f)))
            return out
        got = run(go())
        assert sorted(got) == sorted(exp)


def test_makedirs_removedirs_renames(tmp_path):
    p = str(tmp_path / "a" / "b" / "c")
    run(aos.makedirs(p, 0o750))
    assert os.path.isdir(p) and (os.stat(p).st_mode & 0o777) == 0o750 & ~_umask()
    with pytest.raises(FileExistsError):
        run(aos.makedirs(p))
    run(aos.makedirs(p, exist_ok=True))
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(FileExistsError):
        run(aos.makedirs(str(tmp_path / "f"), exist_ok=True))
    (tmp_path / "a" / "b" / "c" / "x").write_bytes(b"1")
    run(aos.renames(str(tmp_path / "a" / "b" / "c" / "x"), str(tmp_path / "n1" / "n2" / "y")))
    assert (tmp_path / "n1" / "n2" / "y").read_bytes() == b"1"
    assert not (tmp_path / "a").exists()      # the emptied parents were pruned
    os.unlink(tmp_path / "n1" / "n2" / "y")
    run(aos.removedirs(str(tmp_path / "n1" / "n2")))
    assert not (tmp_path / "n1").exists() and tmp_path.exists()


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def _pathlib_walk(top, **kw):
    """pathlib 3.12's Path.walk, or the same by hand on 3.11."""
    if hasattr(pathlib.Path, "walk"):
        return [(str(p), d, f) for p, d, f in pathlib.Path(top).walk(**kw)]
    follow = kw.get("follow_symlinks", False)
    out = []
    for p, d, f in os.walk(top, followlinks=follow):
        ds = [x for x in d if follow or not os.path.islink(os.path.join(p, x))]
        fs = f + [x for x in d if x not in ds]
        out.append((p, ds, fs))
        d[:] = ds
    return out


@pytest.mark.parametrize("follow", [False, True])
def test_path_walk(tree, follow):
    got = run(collect(linuxaio.Path(tree).walk(follow_symlinks=follow)))
    assert all(isinstance(p, linuxaio.Path) for p, _, _ in got)
    got = [(str(p), d, f) for p, d, f in got]
    assert per_dir(got) == per_dir(_pathlib_walk(tree, follow_symlinks=follow))
    up = run(collect(linuxaio.Path(tree).walk(top_down=False)))
    assert str(up[-1][0]) == tree


def test_path_copy_move_rmtree(tmp_path):
    src = linuxaio.Path(make_tree(str(tmp_path / "src"), fifo=False, loops=False))
    exp = snapshot(str(src), times=False)
    c = run(src.copy(tmp_path / "c", follow_symlinks=False, preserve_metadata=True))
    assert isinstance(c, linuxaio.Path) and snapshot(str(c), times=False)[0] == exp[0]
    into = run((src / "dir" / "f1.dat").copy_into(tmp_path))
    assert str(into) == str(tmp_path / "f1.dat") and (tmp_path / "f1.dat").stat().st_size == 1
    m = run(c.move(tmp_path / "m"))
    assert str(m) == str(tmp_path / "m") and not os.path.exists(tmp_path / "c")
    (tmp_path / "box").mkdir()
    mi = run(m.move_into(tmp_path / "box"))
    assert str(mi) == str(tmp_path / "box" / "m")
    assert snapshot(str(mi), times=False)[0] == exp[0]
    run(linuxaio.Path(tmp_path / "box").rmtree())
    assert not os.path.exists(tmp_path / "box")
    errs = []
    run(linuxaio.Path(tmp_path / "nothing").rmtree(on_error=errs.append))
    assert isinstance(errs[0], FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        run(linuxaio.Path(tmp_path / "nothing").rmtree())
    run(linuxaio.Path(tmp_path / "nothing").rmtree(ignore_errors=True))


def test_scandir_stat_and_scandir_at_match_os(tree):
    got = run(aos.scandir_stat(tree))
    assert sorted(n for n, _, _ in got) == sorted(os.listdir(tree))
    for name, dtype, st in got:
        assert st == os.lstat(os.path.join(tree, name))
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        rel = run(aos.scandir_stat("dir", dir_fd=fd))
        raw = run(aos.scandir_at(".", dir_fd=fd))
    finally:
        os.close(fd)
    assert sorted(n for n, _, _ in rel) == sorted(os.listdir(os.path.join(tree, "dir")))
    assert sorted((n, ino) for n, _, _, ino in raw) == sorted(
        (e.name, e.inode()) for e in os.scandir(tree))
    assert all(isinstance(n, bytes) for n, _, _ in run(aos.scandir_stat(os.fsencode(tree))))
    with pytest.raises(NotADirectoryError):
        run(aos.scandir_stat(os.path.join(tree, "sparse")))
