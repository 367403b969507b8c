"""aio_readdirx's flags and aio_scandir's split, on a tree of directories,
files, symlinks, a FIFO and a socket, checked against os.listdir and
os.lstat; and IO::AIO's own readdir/scandir scenario (t/05_readdir.t:
every name of the directory, once, split or not), as behaviour tests."""
import os
import socket
import stat as stat_mod

import pytest

import linuxaio
from linuxaio._loop import run as aio_run

from async_helpers import runner  # noqa: F401 (fixture)

DENTS, DIRS_FIRST, STAT_ORDER, FOUND_UNKNOWN = (
    linuxaio.READDIR_DENTS, linuxaio.READDIR_DIRS_FIRST, linuxaio.READDIR_STAT_ORDER,
    linuxaio.READDIR_FOUND_UNKNOWN)


def call(fn, *args):
    got = []
    fn(*args, got.append)
    linuxaio.flush()
    assert len(got) == 1
    return got[0]


def dt_of(path):
    """The DT_* type of what path is itself (lstat)."""
    m = os.lstat(path).st_mode
    for test, dt in ((stat_mod.S_ISDIR, linuxaio.DT_DIR), (stat_mod.S_ISREG, linuxaio.DT_REG),
                     (stat_mod.S_ISLNK, linuxaio.DT_LNK), (stat_mod.S_ISFIFO, linuxaio.DT_FIFO),
                     (stat_mod.S_ISSOCK, linuxaio.DT_SOCK), (stat_mod.S_ISCHR, linuxaio.DT_CHR),
                     (stat_mod.S_ISBLK, linuxaio.DT_BLK)):
        if test(m):
            return dt
    return linuxaio.DT_UNKNOWN


@pytest.fixture
def tree(tmp_path):
    """Directories, files (with and without dots), symlinks to a file, to a
    directory and to nothing, a FIFO and a listening socket's path."""
    top = tmp_path / "top"
    top.mkdir()
    for d in ("dir_a", "b", "dir.with.dots", ".hidden_dir"):
        (top / d).mkdir()
    for f in ("file.txt", "README", ".hidden", "z.tar.gz"):
        (top / f).write_bytes(b"x")
    os.symlink("file.txt", top / "link_to_file")
    os.symlink("dir_a", top / "link_to_dir")
    os.symlink("nowhere", top / "dangling")
    os.mkfifo(top / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(top / "sock"))
    yield top
    sock.close()


def test_readdir_constants_are_io_aios():
    assert (DENTS, DIRS_FIRST, STAT_ORDER, FOUND_UNKNOWN) == (1, 2, 4, 0x80)
    assert [linuxaio.DT_UNKNOWN, linuxaio.DT_FIFO, linuxaio.DT_CHR, linuxaio.DT_DIR, linuxaio.DT_BLK,
            linuxaio.DT_REG, linuxaio.DT_LNK, linuxaio.DT_SOCK, linuxaio.DT_WHT] == \
        [0, 1, 2, 4, 6, 8, 10, 12, 14]


def test_readdirx_without_flags_gives_the_names(tree):
    names, flags = call(linuxaio.aio_readdirx, str(tree), 0)
    assert sorted(names) == sorted(os.listdir(tree))
    assert all(isinstance(n, str) for n in names)
    assert flags & ~FOUND_UNKNOWN == 0


def test_readdirx_dents_gives_name_type_and_inode_of_every_entry(tree):
    entries, flags = call(linuxaio.aio_readdirx, str(tree), DENTS)
    assert sorted(e[0] for e in entries) == sorted(os.listdir(tree))
    unknown = False
    for name, dtype, ino in entries:
        assert ino == os.lstat(tree / name).st_ino
        if dtype == linuxaio.DT_UNKNOWN:   # a file system may not say
            unknown = True
        else:
            assert dtype == dt_of(tree / name), name
    assert bool(flags & FOUND_UNKNOWN) == unknown
    assert flags & ~FOUND_UNKNOWN == DENTS
    types = {name: dtype for name, dtype, _ in entries}
    if not unknown:   # ext4, tmpfs, btrfs, xfs all say
        assert types["fifo"] == linuxaio.DT_FIFO and types["sock"] == linuxaio.DT_SOCK
        assert types["link_to_dir"] == linuxaio.DT_LNK and types["dir_a"] == linuxaio.DT_DIR


def test_readdirx_stat_order_sorts_by_inode(tree):
    entries, flags = call(linuxaio.aio_readdirx, str(tree), DENTS | STAT_ORDER)
    inodes = [ino for _, _, ino in entries]
    assert inodes == sorted(inodes)
    assert sorted(e[0] for e in entries) == sorted(os.listdir(tree))
    assert flags & ~FOUND_UNKNOWN == DENTS | STAT_ORDER
    names, _ = call(linuxaio.aio_readdirx, str(tree), STAT_ORDER)
    assert names == [name for name, _, _ in entries]


def test_readdirx_dirs_first_puts_directories_first(tree):
    entries, flags = call(linuxaio.aio_readdirx, str(tree), DENTS | DIRS_FIRST)
    types = [t for _, t, _ in entries]
    ndirs = sum(t == linuxaio.DT_DIR for t in types)
    assert ndirs == 4
    assert all(t == linuxaio.DT_DIR for t in types[:ndirs])
    assert sorted(n for n, _, _ in entries[:ndirs]) == sorted(
        n for n in os.listdir(tree) if dt_of(tree / n) == linuxaio.DT_DIR)
    # each class in stat order
    dir_inodes = [ino for _, _, ino in entries[:ndirs]]
    assert dir_inodes == sorted(dir_inodes)
    if not flags & FOUND_UNKNOWN:
        rest = [ino for _, _, ino in entries[ndirs:]]
        assert rest == sorted(rest)
    names, _ = call(linuxaio.aio_readdirx, str(tree), DIRS_FIRST)
    assert names == [name for name, _, _ in entries]


def test_readdirx_stat_order_wins_over_dirs_first(tree):
    entries, _ = call(linuxaio.aio_readdirx, str(tree), DENTS | DIRS_FIRST | STAT_ORDER)
    inodes = [ino for _, _, ino in entries]
    assert inodes == sorted(inodes)


def test_readdirx_found_unknown_given_in_is_not_echoed(tree):
    entries, flags = call(linuxaio.aio_readdirx, str(tree), DENTS | FOUND_UNKNOWN)
    assert bool(flags & FOUND_UNKNOWN) == any(t == linuxaio.DT_UNKNOWN for _, t, _ in entries)


def test_readdirx_of_a_bytes_path_gives_bytes_names(tree):
    names, _ = call(linuxaio.aio_readdirx, os.fsencode(tree), 0)
    assert sorted(names) == sorted(os.listdir(os.fsencode(tree)))
    entries, _ = call(linuxaio.aio_readdirx, os.fsencode(tree), DENTS)
    assert all(isinstance(n, bytes) for n, _, _ in entries)


def test_readdirx_of_an_empty_and_of_a_large_directory(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert call(linuxaio.aio_readdirx, str(empty), DENTS | DIRS_FIRST) == ([], DENTS | DIRS_FIRST)
    big = tmp_path / "big"
    big.mkdir()
    for i in range(3000):   # several getdents64 buffers
        if i % 10 == 0:
            (big / f"d{i:05d}").mkdir()
        else:
            (big / f"f{i:05d}.dat").write_bytes(b"")
    entries, _ = call(linuxaio.aio_readdirx, str(big), DENTS | DIRS_FIRST)
    assert sorted(n for n, _, _ in entries) == sorted(os.listdir(big))
    assert [n[0] for n, _, _ in entries[:300]] == ["d"] * 300
    assert all(n.startswith("f") for n, _, _ in entries[300:])


def test_readdirx_errors_are_oserrors_with_the_path(tree):
    for path, exc in ((tree / "missing", FileNotFoundError), (tree / "file.txt", NotADirectoryError)):
        err = call(linuxaio.aio_readdirx, str(path), 0)
        assert type(err) is exc and err.filename == str(path) and err.strerror


def test_readdirx_refuses_bad_arguments(tree):
    before = linuxaio.nreqs()
    for args, exc in (((None, 0), TypeError), ((str(tree), "1"), TypeError),
                      ((str(tree), 2 ** 40), OverflowError), (("a\0b", 0), ValueError)):
        with pytest.raises(exc):
            linuxaio.aio_readdirx(*args, None)
    assert linuxaio.nreqs() == before


def test_readdirx_awaited(runner, tree):
    async def main(rt):
        entries, flags = await aio_run(linuxaio.aio_readdirx, tree, DENTS | STAT_ORDER)
        assert sorted(n for n, _, _ in entries) == sorted(os.listdir(tree))
        dirs, nondirs = await aio_run(linuxaio.aio_scandir, tree, 0)
        assert sorted(dirs + nondirs) == sorted(os.listdir(tree))
    runner.run(main)


# ---- aio_scandir ----

def test_scandir_splits_directories_from_the_rest(tree):
    dirs, nondirs = call(linuxaio.aio_scandir, str(tree), 0)
    assert sorted(dirs) == sorted(["dir_a", "b", "dir.with.dots", ".hidden_dir"])
    # a symlink, even to a directory, is a non-directory (IO::AIO's rule)
    assert sorted(nondirs) == sorted(["file.txt", "README", ".hidden", "z.tar.gz", "link_to_file",
                                      "link_to_dir", "dangling", "fifo", "sock"])


def test_scandir_names_match_os_for_any_maxreq(tree):
    want = {n for n in os.listdir(tree) if stat_mod.S_ISDIR(os.lstat(tree / n).st_mode)}
    for maxreq in (0, 1, 4, 1000):
        dirs, nondirs = call(linuxaio.aio_scandir, str(tree), maxreq)
        assert set(dirs) == want
        assert set(nondirs) == set(os.listdir(tree)) - want


def test_scandir_errors_and_bad_arguments(tree):
    err = call(linuxaio.aio_scandir, str(tree / "missing"), 0)
    assert isinstance(err, FileNotFoundError) and err.filename == str(tree / "missing")
    before = linuxaio.nreqs()
    for args, exc in (((str(tree), -1), ValueError), ((str(tree), "0"), TypeError), ((None, 0), TypeError)):
        with pytest.raises(exc):
            linuxaio.aio_scandir(*args, None)
    assert linuxaio.nreqs() == before


# IO::AIO's t/05_readdir.t, as behaviour: readdir and scandir of "." name
# every entry opendir/readdir sees (but . and ..), each once.

def test_io_aio_scenario_readdir_of_the_cwd_names_every_entry(tree, monkeypatch):
    monkeypatch.chdir(tree)
    names = call(linuxaio.aio_readdir, ".")
    assert "." not in names and ".." not in names
    assert len(names) == len(set(names))
    assert set(names) == set(os.listdir("."))


def test_io_aio_scenario_scandir_of_the_cwd_names_every_entry_once(tree, monkeypatch):
    monkeypatch.chdir(tree)
    dirs, nondirs = call(linuxaio.aio_scandir, ".", 0)
    every = dirs + nondirs
    assert len(every) == len(set(every)) and not set(dirs) & set(nondirs)
    assert set(every) == set(os.listdir("."))
    assert linuxaio.nreqs() == 0
