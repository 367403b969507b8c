"""Working-directory handles: aio_wd / linuxaio.os.wd, and (wd, relpath) as
every path argument of every request (the table walked face by face, each
compared with the same call on absolute paths), after the directory moved,
and while the handle is closed with requests still using it."""
import errno
import os
import stat as stat_mod

import pytest

import linuxaio
from linuxaio import _engine
from linuxaio import os as aos

from aio_helpers import wait_pending
from async_helpers import HeldWorker, runner  # noqa: F401 (fixture)

ROWS = _engine._op_table()
ID, AIO, AIO_ARGS, OS, OS_ARGS, FLAGS, TRIES, UNDOES, DOC = range(9)
PATH_FACES = [(name, letters, row)
              for row in ROWS
              for name, letters in ((row[AIO], row[AIO_ARGS]), (row[OS], row[OS_ARGS]))
              if name and set(letters) & set("pPx")]


def call(fn, *args):
    got = []
    fn(*args, got.append)
    linuxaio.flush()
    assert len(got) == 1
    return got[0]


def open_wd(path):
    wd = call(linuxaio.aio_wd, os.fspath(path))
    assert isinstance(wd, linuxaio.WorkingDir), wd
    return wd


def fd_target(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


# ---- the handle itself ----

def test_aio_wd_gives_an_open_directory_handle(tmp_path):
    wd = open_wd(tmp_path)
    try:
        fd = wd.fileno()
        assert os.path.samestat(os.fstat(fd), os.stat(tmp_path))
        assert fd_target(fd) == str(tmp_path)
        assert wd.path == str(tmp_path) and not wd.closed
        assert repr(wd) == f"<linuxaio.WorkingDir {str(tmp_path)!r} fd={fd}>"
        assert not os.get_inheritable(fd)
    finally:
        wd.close()
    assert wd.closed and repr(wd) == f"<linuxaio.WorkingDir {str(tmp_path)!r} closed>"
    with pytest.raises(ValueError):
        wd.fileno()
    wd.close()   # twice is fine


def test_wd_is_a_context_manager_that_closes(tmp_path):
    with open_wd(tmp_path) as wd:
        fd = wd.fileno()
        assert fd_target(fd) == str(tmp_path)
    assert wd.closed and fd_target(fd) != str(tmp_path)


def test_aio_wd_errors_are_oserrors(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    err = call(linuxaio.aio_wd, str(tmp_path / "missing"))
    assert type(err) is FileNotFoundError and err.filename == str(tmp_path / "missing")
    err = call(linuxaio.aio_wd, str(tmp_path / "file"))
    assert type(err) is NotADirectoryError and err.errno == errno.ENOTDIR


def test_aio_wd_relative_to_a_wd_joins_the_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    with open_wd(tmp_path) as top:
        with open_wd_rel(top, "sub") as sub:
            assert sub.path == str(tmp_path / "sub")
            assert os.path.samestat(os.fstat(sub.fileno()), os.stat(tmp_path / "sub"))


def open_wd_rel(wd, rel):
    got = call(linuxaio.aio_wd, (wd, rel))
    assert isinstance(got, linuxaio.WorkingDir), got
    return got


def test_a_cancelled_aio_wd_closes_its_fd(tmp_path):
    before = len(os.listdir("/proc/self/fd"))
    got = []
    req = linuxaio.aio_wd(str(tmp_path), got.append)
    wait_pending(1)
    req.cancel()
    linuxaio.flush()
    assert got == []
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_dropped_handle_closes_its_fd(tmp_path):
    wd = open_wd(tmp_path)
    fd = wd.fileno()
    del wd
    assert fd_target(fd) != str(tmp_path)


# ---- (wd, relpath) in every face of the table ----

def build_args(letters, row, path, fd):
    """Valid arguments for a face, every path made by path(name)."""
    values = []
    for c in letters:
        if c in "fk":
            values.append(fd)
        elif c == "F":
            values.append(os.dup(fd))
        elif c in "xp":
            values.append(path("other" if row[ID] in ("symlink",) else "file"))
        elif c == "P":
            values.append(path("other"))
        elif c in "DEtuLg":
            values.append(None)
        elif c == "X":
            values.append("user.linuxaio")
        elif c == "b":
            values.append(b"v")
        elif c == "M":
            values.append(stat_mod.S_IFIFO | 0o600)
        elif c in "isoOlde":
            values.append(0)
        elif c == "m":
            values.append(0o640)
        elif c in "nN":
            values.append(4)
        elif c in "wW":
            values.append(bytearray(8))
        elif c == "r":
            values.append(b"abcdefgh")
        elif c == "y":
            values.append(bytearray())
        else:
            raise AssertionError(f"no value for letter {c!r}")
    if row[ID] in ("mkdir", "mknod", "wd", "readdir", "readdirx", "scandir_split", "scandir",
                   "rmdir", "statvfs"):
        # rows whose path is better a new name or a directory
        values = [path("newdir") if v == path("file") and row[ID] in ("mkdir", "mknod")
                  else path("sub") if v == path("file") else v for v in values]
    return values


def setup_tree(top):
    top.mkdir()
    (top / "file").write_bytes(b"0123456789")
    (top / "sub").mkdir()
    (top / "sub" / "inner").write_bytes(b"")
    os.symlink("file", top / "link")
    return top


def outcome(value):
    """What to compare of a result: its kind and what does not depend on
    where the tree is (fds, inodes, times do)."""
    if isinstance(value, OSError):
        return ("error", type(value), value.errno)
    if isinstance(value, os.stat_result):
        return ("stat", stat_mod.S_IFMT(value.st_mode), value.st_size)
    if isinstance(value, os.statvfs_result):
        return ("statvfs", value.f_fsid)
    if isinstance(value, linuxaio.WorkingDir):
        value.close()
        return ("wd",)
    if isinstance(value, tuple) and value and isinstance(value[0], int):   # open_stat
        os.close(value[0])
        return ("fd", outcome(value[1]))
    if isinstance(value, str) and value.startswith("/"):   # realpath
        return ("path", os.path.basename(value))
    if isinstance(value, tuple):
        return ("tuple", tuple(sorted(x) if isinstance(x, list) else x for x in value))
    if isinstance(value, list):
        return ("list", sorted(repr(x[:2]) if isinstance(x, tuple) else x for x in value))
    return ("value", value)


def listing(top):
    return sorted((p.relative_to(top).as_posix(), stat_mod.S_IFMT(os.lstat(p).st_mode))
                  for p in top.rglob("*"))


@pytest.mark.parametrize("face", PATH_FACES, ids=lambda f: f[0])
def test_every_path_argument_takes_a_wd_and_relpath(face, tmp_path, monkeypatch):
    """The same call on (wd, name) from elsewhere and on absolute paths, in
    two identical trees: the same outcome, the same tree after."""
    name, letters, row = face
    fn = getattr(_engine, name)
    a, b = setup_tree(tmp_path / "a"), setup_tree(tmp_path / "b")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)   # where a relative path would go
    fd_a = os.open(a / "file", os.O_RDWR)
    fd_b = os.open(b / "file", os.O_RDWR)
    try:
        with open_wd(a) as wd:
            got = call(fn, *build_args(letters, row, lambda n: (wd, n), fd_a))
            if row[UNDOES] and isinstance(got, int):
                os.close(got)
            want = call(fn, *build_args(letters, row, lambda n: str(b / n), fd_b))
            if row[UNDOES] and isinstance(want, int):
                os.close(want)
        assert outcome(got) == outcome(want)
        assert listing(a) == listing(b)
        assert os.listdir(elsewhere) == []
        if isinstance(got, OSError):   # the relpath, as os names it for dir_fd calls
            assert got.filename in ("file", "other", "sub", "newdir")
    finally:
        os.close(fd_a)
        os.close(fd_b)


# ---- what a handle is good for ----

def test_the_handle_follows_its_directory_when_renamed(tmp_path):
    d = tmp_path / "before"
    d.mkdir()
    (d / "f").write_bytes(b"hello")
    with open_wd(d) as wd:
        os.rename(d, tmp_path / "after")
        moved = tmp_path / "after"
        st = call(linuxaio.aio_stat, (wd, "f"))
        assert os.path.samestat(st, os.stat(moved / "f"))
        assert call(linuxaio.aio_slurp, (wd, "f"), 0, None) == b"hello"
        assert call(linuxaio.aio_realpath, (wd, "f")) == str(moved / "f")
        assert call(linuxaio.aio_truncate, (wd, "f"), 2) == 0
        assert (moved / "f").read_bytes() == b"he"
        assert call(linuxaio.aio_mkdir, (wd, "new"), 0o755) == 0
        assert call(linuxaio.aio_rename, (wd, "new"), (wd, "newer")) == 0
        assert sorted(call(linuxaio.aio_readdir, (wd, "."))) == ["f", "newer"]
        assert call(linuxaio.aio_statvfs, (wd, "f")).f_fsid == os.statvfs(moved).f_fsid
        fd = call(linuxaio.aio_open, (wd, "created"), os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        assert (moved / "created").exists() and not (d / "created").exists()


def test_a_plain_relative_path_stays_relative_to_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "wd").mkdir()
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "f").write_bytes(b"cwd")
    (tmp_path / "wd" / "f").write_bytes(b"wd!")
    monkeypatch.chdir(tmp_path / "cwd")
    with open_wd(tmp_path / "wd") as wd:
        assert call(linuxaio.aio_slurp, "f", 0, None) == b"cwd"
        assert call(linuxaio.aio_slurp, (wd, "f"), 0, None) == b"wd!"
        # an absolute relpath ignores the handle, as openat(2) does
        assert call(linuxaio.aio_slurp, (wd, str(tmp_path / "cwd" / "f")), 0, None) == b"cwd"


def test_each_side_of_a_two_path_request_has_its_own_wd(tmp_path):
    for d in ("src", "dst"):
        (tmp_path / d).mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x")
    with open_wd(tmp_path / "src") as s, open_wd(tmp_path / "dst") as d:
        assert call(linuxaio.aio_link, (s, "f"), (d, "hard")) == 0
        assert call(linuxaio.aio_rename, (s, "f"), (d, "moved")) == 0
        assert call(linuxaio.aio_symlink, "moved", (d, "sym")) == 0
        assert call(linuxaio.aio_rename2, (d, "hard"), (s, "back"), linuxaio.RENAME_NOREPLACE) == 0
        # a symlink's target is text: given as a tuple, its relpath is stored as is
        assert call(linuxaio.aio_symlink, (s, "text"), (d, "sym2")) == 0
    assert sorted(os.listdir(tmp_path / "dst")) == ["moved", "sym", "sym2"]
    assert os.listdir(tmp_path / "src") == ["back"]
    assert os.readlink(tmp_path / "dst" / "sym") == "moved"
    assert os.readlink(tmp_path / "dst" / "sym2") == "text"


def test_a_bytes_relpath_gives_bytes_results(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    os.symlink("f", tmp_path / "l")
    with open_wd(tmp_path) as wd:
        assert sorted(call(linuxaio.aio_readdir, (wd, b"."))) == [b"f", b"l"]
        assert call(linuxaio.aio_readlink, (wd, b"l")) == b"f"
        err = call(linuxaio.aio_stat, (wd, b"missing"))
        assert isinstance(err, FileNotFoundError) and err.filename == b"missing"


# ---- closing a handle that requests still use ----

def test_close_with_requests_in_flight_keeps_the_fd_until_they_finish(tmp_path, tmp_path_factory):
    (tmp_path / "f").write_bytes(b"still here")
    wd = open_wd(tmp_path)
    fd = wd.fileno()
    got = []
    # the one worker held in a FIFO's open until release: the requests
    # below wait behind it however slow the machine
    with HeldWorker(tmp_path_factory.mktemp("held")) as held:
        linuxaio.aio_slurp((wd, "f"), 0, None, got.append)
        linuxaio.aio_stat((wd, "f"), got.append)
        linuxaio.aio_readdir((wd, "."), got.append)
        wd.close()
        assert wd.closed
        with pytest.raises(ValueError):
            wd.fileno()
        before = linuxaio.nreqs()
        with pytest.raises(ValueError):   # no new user
            linuxaio.aio_stat((wd, "f"), None)
        assert linuxaio.nreqs() == before
        assert fd_target(fd) == str(tmp_path)   # still open for the queued three
        held.release()
        linuxaio.flush()
    assert got[0] == b"still here" and isinstance(got[1], os.stat_result) and got[2] == ["f"]
    assert fd_target(fd) != str(tmp_path)   # closed with the last of them


def test_a_handle_dropped_with_requests_in_flight_stays_open_for_them(tmp_path, tmp_path_factory):
    (tmp_path / "f").write_bytes(b"abc")
    wd = open_wd(tmp_path)
    fd = wd.fileno()
    got = []
    with HeldWorker(tmp_path_factory.mktemp("held")) as held:
        linuxaio.aio_slurp((wd, "f"), 0, None, got.append)
        del wd   # the request holds it
        assert fd_target(fd) == str(tmp_path)
        held.release()
        linuxaio.flush()
    assert got == [b"abc"]
    assert fd_target(fd) != str(tmp_path)


# ---- bad tuples: refused at submission, nothing queued ----

@pytest.mark.parametrize("make,exc", [
    (lambda wd: (wd,), ValueError),
    (lambda wd: (wd, "f", "g"), ValueError),
    (lambda wd: (), ValueError),
    (lambda wd: ("/tmp", "f"), TypeError),
    (lambda wd: (wd.fileno(), "f"), TypeError),
    (lambda wd: (wd, None), TypeError),
    (lambda wd: (wd, (wd, "f")), TypeError),
    (lambda wd: (wd, 5), TypeError),
    (lambda wd: (wd, "a\0b"), ValueError),
], ids=["one", "three", "empty", "str-first", "fd-first", "none-rel", "nested", "int-rel", "nul"])
def test_bad_tuples_are_refused_and_nothing_is_queued(make, exc, tmp_path):
    with open_wd(tmp_path) as wd:
        before = linuxaio.nreqs()
        bad = make(wd)
        for fn, args in ((linuxaio.aio_stat, (bad,)), (linuxaio.aio_open, (bad, 0, 0)),
                         (linuxaio.aio_rename, (str(tmp_path / "x"), bad)),
                         (linuxaio.aio_getxattr, (bad, "user.x")), (_engine.stat, (bad, None, 0))):
            with pytest.raises(exc):
                fn(*args, None)
        assert linuxaio.nreqs() == before


def test_a_closed_handle_and_a_dir_fd_beside_a_handle_are_refused(tmp_path):
    wd = open_wd(tmp_path)
    dfd = os.open(tmp_path, os.O_RDONLY)
    try:
        before = linuxaio.nreqs()
        with pytest.raises(ValueError):
            _engine.stat((wd, "f"), dfd, 0, None)
        with pytest.raises(ValueError):
            _engine.rename("a", (wd, "b"), None, dfd, None)
        wd.close()
        with pytest.raises(ValueError):
            linuxaio.aio_stat((wd, "f"), None)
        with pytest.raises(ValueError):
            linuxaio.aio_rename((wd, "a"), "b", None)
        assert linuxaio.nreqs() == before
    finally:
        os.close(dfd)


# ---- awaited ----

def test_os_wd_and_relpaths_under_every_loop(runner, tmp_path):
    async def main(rt):
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "f").write_bytes(b"data")
        os.symlink("f", tmp_path / "d" / "l")
        wd = await aos.wd(tmp_path / "d")
        assert isinstance(wd, aos.WorkingDir) and wd.path == str(tmp_path / "d")
        with wd:
            os.rename(tmp_path / "d", tmp_path / "moved")
            assert (await aos.stat((wd, "f"))).st_size == 4
            assert (await aos.lstat((wd, "l"))).st_mode == os.lstat(tmp_path / "moved" / "l").st_mode
            assert sorted(await aos.listdir((wd, "."))) == ["f", "l"]
            entries = sorted(await aos.scandir((wd, ".")), key=lambda e: e.name)
            assert [e.name for e in entries] == ["f", "l"]
            assert entries[1].is_symlink() and entries[1].is_file()
            assert (await entries[0].stat()).st_size == 4
            fd = await aos.open((wd, "new"), os.O_CREAT | os.O_WRONLY, 0o644)
            await aos.write(fd, b"xyz")
            await aos.close(fd)
            assert (tmp_path / "moved" / "new").read_bytes() == b"xyz"
            await aos.rename((wd, "new"), (wd, "renamed"))
            assert await aos.access((wd, "renamed"), os.R_OK)
            assert await aos.readlink((wd, "l")) == "f"
            assert await aos.realpath((wd, "l")) == str(tmp_path / "moved" / "f")
            await aos.unlink((wd, "renamed"))
            inner = await aos.wd((wd, "."))
            with inner:
                assert (await aos.statvfs((inner, "f"))).f_fsid == os.statvfs(tmp_path).f_fsid
            with pytest.raises(FileNotFoundError) as info:
                await aos.stat((wd, "missing"))
            assert info.value.filename == "missing"
        with pytest.raises(ValueError):
            await aos.stat((wd, "f"))
    runner.run(main)


def test_linuxaio_open_takes_a_wd_and_relpath(runner, tmp_path):
    async def main(rt):
        (tmp_path / "d").mkdir()
        with await aos.wd(tmp_path / "d") as wd:
            os.rename(tmp_path / "d", tmp_path / "e")
            async with linuxaio.open((wd, "notes.txt"), "w", encoding="utf-8") as f:
                await f.write("line\n")
            async with linuxaio.open((wd, "notes.txt"), "rb") as f:
                assert await f.read() == b"line\n"
                assert f.name == (wd, "notes.txt")
            with pytest.raises(FileNotFoundError):
                await linuxaio.open((wd, "missing"), "rb")
        assert (tmp_path / "e" / "notes.txt").read_text() == "line\n"
    runner.run(main)


def test_a_call_refused_after_its_path_was_parsed_does_not_hold_the_handle(tmp_path):
    wd = open_wd(tmp_path)
    fd = wd.fileno()
    before = linuxaio.nreqs()
    with pytest.raises(TypeError):
        linuxaio.aio_open((wd, "f"), "not flags", 0, None)
    with pytest.raises(ValueError):
        linuxaio.aio_rename((wd, "a"), (wd, "b\0"), None)
    assert linuxaio.nreqs() == before
    wd.close()   # no user left: closed at once
    assert fd_target(fd) != str(tmp_path)
