"""The operation table (src/engine/ops.def), walked row by row.

Every row is one operation with up to two faces: the callback API's
(aio_X, exported by linuxaio) and the os twin's (what linuxaio.os calls).
Each face must be exported, typed in _engine.pyi, documented (README for the
aio faces, linuxaio.os for the twins), must run with valid arguments, and
must refuse every kind of bad argument its letters say it refuses, queueing
nothing.
"""
import ast
import importlib.util
import os
import re
from pathlib import Path

import pytest

import linuxaio
from linuxaio import _engine
import linuxaio.os as aos

ROOT = Path(__file__).resolve().parent.parent
ROWS = _engine._op_table()
ID, AIO, AIO_ARGS, OS, OS_ARGS, FLAGS, TRIES, UNDOES, DOC = range(9)

AIO_FACES = [(row[AIO], row[AIO_ARGS], row) for row in ROWS if row[AIO]]
OS_FACES = [(row[OS], row[OS_ARGS], row) for row in ROWS if row[OS]]
FACES = AIO_FACES + OS_FACES


def face_id(face):
    return face[0]


def stub_functions():
    tree = ast.parse((ROOT / "src/linuxaio/_engine.pyi").read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_row_and_face_names_are_unique():
    ids = [row[ID] for row in ROWS]
    names = [name for name, _, _ in FACES]
    assert len(set(ids)) == len(ids)
    assert len(set(names)) == len(names)
    assert all(name.startswith("aio_") for name, _, _ in AIO_FACES)
    assert not any(name.startswith("aio_") for name, _, _ in OS_FACES)


def test_every_row_has_a_face():
    assert all(row[AIO] or row[OS] for row in ROWS)


@pytest.mark.parametrize("face", FACES, ids=face_id)
def test_every_face_is_a_module_function(face):
    name, letters, row = face
    fn = getattr(_engine, name)
    assert callable(fn)
    if row[AIO] == name:
        assert fn.__doc__ and fn.__text_signature__ is not None


@pytest.mark.parametrize("face", AIO_FACES, ids=face_id)
def test_every_aio_face_is_exported_by_linuxaio(face):
    name = face[0]
    if name in PYTHON_FACES:   # a Python function that calls the row for its plain form
        assert getattr(linuxaio, name).__doc__.startswith(name + "(")
        return
    assert getattr(linuxaio, name) is getattr(_engine, name)


# aio_slurp(..., into=, direct=) drives a chain of rows (_slurp.py): its plain
# form, without them, is the row itself.
PYTHON_FACES = {"aio_slurp"}


def test_linuxaio_exports_no_aio_function_the_table_lacks():
    # aio_group, and IO::AIO's composites (groups of rows' requests, linuxaio._composites)
    table = {name for name, _, _ in AIO_FACES} | {"aio_group", "aio_copy", "aio_move", "aio_rmtree"}
    assert {n for n in dir(linuxaio) if n.startswith("aio_")} == table


@pytest.mark.parametrize("face", FACES, ids=face_id)
def test_every_face_has_a_stub(face):
    name, letters, row = face
    stub = stub_functions()[name]
    if row[AIO] == name:
        positional = [a.arg for a in stub.args.args]
        assert positional[-1] == "callback"
        assert len(positional) - 1 == len(letters)
        assert [a.arg for a in stub.args.kwonlyargs] == ["pri"]
    else:
        assert stub.args.vararg is not None


def test_the_stub_is_written_from_the_table():
    spec = importlib.util.spec_from_file_location("engine_stub", ROOT / "tools/engine_stub.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = (ROOT / "src/linuxaio/_engine.pyi").read_text()
    assert tool.rewritten(text) == text, "run python tools/engine_stub.py"


def test_the_stub_has_no_face_the_table_lacks():
    table = {name for name, _, _ in FACES}
    stubbed = {n for n in stub_functions() if n.startswith("aio_")} - {"aio_group"}
    assert stubbed <= table


@pytest.mark.parametrize("face", AIO_FACES, ids=face_id)
def test_every_aio_face_is_in_the_readme(face):
    name, letters, _ = face
    readme = (ROOT / "README.md").read_text()
    assert f"`{name}" in readme
    # where the README's table shows its arguments, they are the row's
    for m in re.finditer(r"`%s\(([^)]*)\)`" % name, readme):
        params = [p.strip() for p in m.group(1).split(",") if p.strip()]
        assert params[-1] == "callback"
        assert len(params) - 1 == len(letters), m.group(0)


@pytest.mark.parametrize("face", OS_FACES, ids=face_id)
def test_every_os_face_has_its_twin(face):
    """What linuxaio.os offers under the same name, or (open_stat, the fused
    open + fstat; serve_lookup, StaticFiles's resolve + stat) what the
    package calls it for."""
    name = face[0]
    if name in ("open_stat", "serve_lookup", "write_close"):
        sources = "".join(p.read_text() for p in (ROOT / "src/linuxaio").rglob("*.py"))
        assert f"_engine.{name}" in sources
    else:
        assert callable(getattr(aos, name))


def test_every_letter_is_documented():
    doc = (ROOT / "src/engine/ops.h").read_text()
    letters = set("".join(letters for _, letters, _ in FACES))
    documented = set(re.findall(r"^ \*   ([A-Za-z])  ", doc, re.M))
    assert letters <= documented, letters - documented


# ---- calling every face ----

def valid_values(letters, row, tmp_path, fd):
    """One valid value per letter: the call must be accepted and run."""
    target = tmp_path / "file"
    target.write_bytes(b"0123456789")
    values = []
    for c in letters:
        if c == "f":
            values.append(fd)
        elif c in "Fk":
            values.append(os.dup(fd) if row[ID] in ("close", "write_close") else fd)
        elif c in "xp":
            values.append(str(target))
        elif c == "P":
            values.append(str(tmp_path / "other"))
        elif c in "DEtuL":
            values.append(None)
        elif c in "isoOld":
            values.append(0)
        elif c == "m":
            values.append(0o644)
        elif c in "nN":
            values.append(4)
        elif c in "wW":
            values.append(bytearray(8))
        elif c in "rb":
            values.append(b"abcdefgh")
        elif c == "V":
            values.append([bytearray(4)])
        elif c == "v":
            values.append([b"ab"])
        elif c == "g":
            values.append(None)
        elif c == "M":
            values.append(0o10644)
        elif c == "e":
            values.append(0)
        elif c == "X":
            values.append("user.linuxaio")
        elif c in "GK":
            values.append(fd)
        elif c in "jSa":
            values.append(0)
        elif c in "qhHc":
            values.append(None)
        elif c == "R":
            values.append(3)    # F_GETFL; for an ioctl, a request the file refuses
        elif c == "B":
            values.append(bytearray(8))
        elif c == "y":
            values.append(bytearray())
        else:
            raise AssertionError(f"no valid value for letter {c!r}")
    return values


@pytest.fixture
def scratch_fd(tmp_path):
    fd = os.open(tmp_path / "scratch", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"abcdefgh")
    yield fd
    os.close(fd)


@pytest.mark.parametrize("face", FACES, ids=face_id)
def test_every_face_runs_with_valid_arguments(face, tmp_path, scratch_fd):
    name, letters, row = face
    got = []
    req = getattr(_engine, name)(*valid_values(letters, row, tmp_path, scratch_fd), got.append)
    assert req.name == name
    linuxaio.flush()
    assert len(got) == 1
    assert not isinstance(got[0], BaseException) or isinstance(got[0], OSError), got[0]
    if row[UNDOES] and isinstance(got[0], (int, tuple)):
        os.close(got[0] if isinstance(got[0], int) else got[0][0])


# What each letter refuses, and with what, before anything is queued.
BAD = {
    "f": [("x", TypeError), (-1, ValueError)],
    "F": [("x", TypeError), (1.5, TypeError)],
    "k": [("x", TypeError), (2 ** 40, OverflowError)],
    "x": [(None, TypeError), ("a\0b", ValueError), ((1, "a"), TypeError), (("a",), ValueError)],
    "D": [("x", TypeError)],
    "E": [("x", TypeError)],
    "t": [(5, TypeError), ((1,), TypeError)],
    "u": [("x", TypeError), (float("nan"), ValueError)],
    "p": [(None, TypeError), ("a\0b", ValueError), ((1, "a"), TypeError), (("a",), ValueError)],
    "P": [(None, TypeError), ("a\0b", ValueError), ((1, "a"), TypeError), (("a",), ValueError)],
    "i": [("x", TypeError), (2 ** 40, OverflowError)],
    "m": [("x", TypeError), (-1, ValueError), (0o10000, ValueError)],
    "s": [("x", TypeError), (-1, ValueError)],
    "o": [("x", TypeError), (-1, ValueError)],
    "O": [("x", TypeError), (-1, OSError)],
    "l": [("x", TypeError), (1.5, TypeError), (2 ** 64, OverflowError)],
    "n": [("x", TypeError), (-1, ValueError)],
    "L": [("x", TypeError), (-1, ValueError)],
    "N": [("x", TypeError), (-1, OSError)],
    "w": [(5, TypeError), (b"read-only", TypeError)],
    "r": [(5, TypeError)],
    "d": [("x", TypeError), (-1, ValueError)],
    "W": [(5, TypeError), (b"read-only", TypeError)],
    "b": [(5, TypeError)],
    "V": [(5, TypeError), ([b"read-only"], BufferError)],
    "v": [(5, TypeError), ([5], TypeError)],
    "g": [("x", TypeError), (1.5, TypeError), (-2, OverflowError), (2 ** 32, OverflowError)],
    "M": [("x", TypeError), (-1, ValueError), (0o200000, ValueError)],
    "e": [("x", TypeError), (-1, OverflowError), (2 ** 64, OverflowError)],
    "X": [(None, TypeError), (5, TypeError), ("a\0b", ValueError)],
    "G": [("x", TypeError), (-1, ValueError)],
    "K": [("x", TypeError), (2 ** 40, OverflowError)],
    "j": [("x", TypeError), (None, TypeError), (-1, ValueError)],
    "q": [("x", TypeError), (-1, ValueError)],
    "h": [("x", TypeError), (2 ** 64, OverflowError)],
    "H": [("x", TypeError), (2 ** 64, OverflowError)],
    "S": [("x", TypeError), (-1, OSError), (2 ** 64, OverflowError)],
    "c": [("x", TypeError), (-1, ValueError)],
    "R": [("x", TypeError), (2 ** 40, OverflowError), (-2 ** 31 - 1, OverflowError)],
    "a": [(1.5, TypeError), (None, TypeError), (b"x" * 1025, ValueError), (2 ** 64, OverflowError)],
    "B": [(5, TypeError)],
    "y": [(b"abc", TypeError), (memoryview(bytearray(3)), TypeError)],
}

BAD_CASES = [(name, i, bad, exc)
             for name, letters, _ in FACES
             for i, c in enumerate(letters)
             for bad, exc in BAD[c]]


def test_every_letter_has_bad_values():
    used = set("".join(letters for _, letters, _ in FACES))
    assert used <= set(BAD)


@pytest.mark.parametrize("name,i,bad,exc", BAD_CASES,
                         ids=[f"{n}-{i}-{b!r}" for n, i, b, _ in BAD_CASES])
def test_every_face_refuses_bad_arguments(name, i, bad, exc, tmp_path, scratch_fd):
    letters, row = next((l, r) for n, l, r in FACES if n == name)
    args = valid_values(letters, row, tmp_path, scratch_fd)
    if row[ID] in ("close", "write_close"):   # the dup it would have closed
        os.close(args[0])
    args[i] = bad
    before = linuxaio.nreqs()
    with pytest.raises(exc):
        getattr(_engine, name)(*args, None)
    assert linuxaio.nreqs() == before


@pytest.mark.parametrize("face", FACES, ids=face_id)
def test_every_face_refuses_a_wrong_call(face, tmp_path, scratch_fd):
    name, letters, row = face
    fn = getattr(_engine, name)
    args = valid_values(letters, row, tmp_path, scratch_fd)
    if row[ID] in ("close", "write_close"):
        os.close(args[0])
        args[0] = -1
    before = linuxaio.nreqs()
    with pytest.raises(TypeError):
        fn(*args, None, None)            # one positional too many
    if letters:
        with pytest.raises(TypeError):
            fn(*args[:-1])               # one too few
    with pytest.raises(TypeError):
        fn(*args, 5)                     # not a callback
    with pytest.raises(ValueError):
        fn(*args, None, pri=linuxaio.PRI_MAX + 1)
    with pytest.raises(TypeError):
        fn(*args, None, nope=1)
    assert linuxaio.nreqs() == before


@pytest.mark.parametrize("face", FACES, ids=face_id)
def test_submit_many_knows_every_face(face, tmp_path, scratch_fd):
    name, letters, row = face
    if row[ID] == "close":
        args = [os.dup(scratch_fd)]
    else:
        args = valid_values(letters, row, tmp_path, scratch_fd)
    got = []
    grp = _engine.submit_many(name, [tuple(args)], got.append)
    linuxaio.flush()
    assert grp.done() and len(got) == 1 and len(got[0]) == 1
    value = got[0][0]
    assert not isinstance(value, BaseException) or isinstance(value, OSError), value
    if row[UNDOES] and isinstance(value, (int, tuple)):
        os.close(value if isinstance(value, int) else value[0])


# ---- two-path rows: each path has its own dir fd ----

def test_aio_rename_link_and_symlink_take_a_relative_destination_from_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").write_bytes(b"x")
    got = []
    linuxaio.aio_rename("a", "b", got.append)
    linuxaio.flush()
    linuxaio.aio_link("b", "c", got.append)
    linuxaio.aio_symlink("b", "d", got.append)
    linuxaio.flush()
    assert got == [0, 0, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "c", "d"]


def test_os_twins_resolve_each_path_against_its_own_dir_fd(tmp_path):
    src_dir, dst_dir = tmp_path / "src", tmp_path / "dst"
    src_dir.mkdir()
    dst_dir.mkdir()
    (src_dir / "f").write_bytes(b"x")
    sfd = os.open(src_dir, os.O_RDONLY | os.O_DIRECTORY)
    dfd = os.open(dst_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        got = []
        _engine.link("f", "g", sfd, dfd, 0, got.append)
        linuxaio.flush()
        _engine.rename("f", "h", sfd, dfd, got.append)
        linuxaio.flush()
        _engine.symlink("h", "s", dfd, got.append)
        linuxaio.flush()
        assert got == [0, 0, 0]
        assert sorted(p.name for p in dst_dir.iterdir()) == ["g", "h", "s"]
        assert os.readlink(dst_dir / "s") == "h"
    finally:
        os.close(sfd)
        os.close(dfd)


# ---- the README's one table of request types ----

def readme_request_table():
    """The rows of the table under "## Request types": (function, twin) cells."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Request types\n")
    end = readme.index("\n## ", start + 1)
    rows = []
    for line in readme[start:end].splitlines():
        if not line.startswith("| ") or line.startswith(("| ---", "| function")):
            continue
        cells = [c.strip() for c in line.strip()[1:-1].split("|")]
        assert len(cells) == 3, line
        if cells[0].startswith("**"):   # a family's heading
            continue
        rows.append((cells[0], cells[2]))
    return rows


def names_in(cell):
    """The names a cell gives in backquotes: `x`, `x(...)`."""
    return set(re.findall(r"`([a-z_0-9]+)[`(]", cell))


def twins_in(cell):
    """The functions a twin cell names, leaving out its remarks in
    parentheses (their backquoted words are arguments: `dir_fd`...)."""
    return names_in(re.sub(r" \((?:[^()`]|`[^`]*`)*\)", "", cell))


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row[ID])
def test_every_row_of_the_engine_is_a_row_of_the_readme_table(row):
    """A new ops.def row without its README row fails here: some row of the
    one table names its aio_ function in the first column and its os twin
    in the last, or says "-" for the face the engine row lacks."""
    table = readme_request_table()
    matches = []
    for function, twin in table:
        if row[AIO]:
            if row[AIO] not in names_in(function):
                continue
        elif function != "-":
            continue
        if row[OS] and row[OS] not in twins_in(twin):
            continue
        matches.append((function, twin))
    assert matches, (row[AIO], row[OS])


def test_the_readme_table_names_no_aio_function_the_engine_lacks():
    table = readme_request_table()
    named = set().union(*(names_in(function) for function, _ in table))
    assert named == {row[AIO] for row in ROWS if row[AIO]}
    # each aio_ function has one row of its own
    firsts = [sorted(names_in(function)) for function, _ in table if function != "-"]
    assert all(len(names) == 1 for names in firsts)
    assert len(firsts) == len(named)


def test_the_readme_table_twins_are_linuxaio_os_functions():
    """Every name in the twin column is something linuxaio.os offers (or the
    package's own open_stat / slurp, or serve_lookup, which linuxaio.starlette
    calls), so the column cannot name a twin that does not exist."""
    for _, twin in readme_request_table():
        for name in twins_in(twin):
            if name in ("open_stat", "serve_lookup", "write_close"):
                continue
            assert callable(getattr(aos, name, None)) or callable(getattr(linuxaio, name, None)), name
