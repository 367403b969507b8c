"""linuxaio.starlette.StaticFiles's lookup on the engine (serve_lookup,
ops_serve.c) gives Starlette's own lookup_path answers, path by path, and
never a file outside the served directory; an overridden lookup_path is
the one used.  (Starlette's own tests of the classes: tests/starlette/.)"""
import asyncio
import errno
import os

import pytest

pytest.importorskip("starlette")

from starlette.exceptions import HTTPException  # noqa: E402
from starlette.staticfiles import StaticFiles as StarlettesStaticFiles  # noqa: E402

from linuxaio import _engine  # noqa: E402
from linuxaio._loop import run  # noqa: E402
from linuxaio.starlette import StaticFiles  # noqa: E402


@pytest.fixture
def tree(tmp_path):
    d = tmp_path / "static"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "a.txt").write_text("a")
    (d / "index.html").write_text("<p>index</p>")
    (tmp_path / "secret.txt").write_text("SECRET")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "o.txt").write_text("SECRET")
    os.symlink("sub/a.txt", d / "rel-in")
    os.symlink(d / "sub" / "a.txt", d / "abs-in")          # absolute, but lands inside
    os.symlink("../secret.txt", d / "rel-out")
    os.symlink(tmp_path / "secret.txt", d / "abs-out")
    os.symlink(tmp_path / "outside", d / "dir-out")
    os.symlink("sub", d / "dir-in")
    os.symlink("loop", d / "loop")
    return d


PATHS = [".", "sub", "sub/a.txt", "index.html", "rel-in", "abs-in", "rel-out", "abs-out",
         "dir-out/o.txt", "dir-in/a.txt", "../secret.txt", "sub/../../secret.txt", "missing",
         "sub/a.txt/x", "/etc/passwd", "\\\\server\\share", "..", "dir-out", "a" * 300]


def lookups(app, path):
    """(engine's answer, Starlette's): each (full path, st_ino) or the exception type."""
    def norm(answer):
        full, st = answer
        return full, st.st_ino if st else None

    try:
        ours = norm(asyncio.run(app.lookup_path_async(path)))
    except OSError as exc:
        ours = type(exc), exc.errno
    try:
        theirs = norm(StarlettesStaticFiles.lookup_path(app, path))
    except OSError as exc:
        theirs = type(exc), exc.errno
    return ours, theirs


@pytest.mark.parametrize("follow_symlink", [False, True])
@pytest.mark.parametrize("path", PATHS)
def test_the_engines_lookup_answers_as_starlettes(tree, path, follow_symlink):
    app = StaticFiles(directory=tree, follow_symlink=follow_symlink)
    ours, theirs = lookups(app, path)
    assert ours == theirs


@pytest.mark.parametrize("path", ["rel-out", "abs-out", "dir-out/o.txt", "../secret.txt",
                                  "sub/../../secret.txt", "/etc/passwd", "..", "../outside/o.txt"])
def test_nothing_outside_is_found_without_follow_symlink(tree, path):
    app = StaticFiles(directory=tree)
    assert asyncio.run(app.lookup_path_async(path)) == ("", None)


def test_several_directories_are_tried_in_order(tmp_path, tree):
    other = tmp_path / "other"
    other.mkdir()
    (other / "only-here.txt").write_text("x")
    (other / "index.html").write_text("shadowed")
    app = StaticFiles(directory=tree)
    app.all_directories.append(other)
    assert asyncio.run(app.lookup_path_async("only-here.txt"))[0] == str(other / "only-here.txt")
    assert asyncio.run(app.lookup_path_async("index.html"))[0] == str(tree / "index.html")


def get(app, path, method="GET"):
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [],
             "query_string": b""}
    return asyncio.run(app.get_response(app.get_path(scope), scope))


@pytest.mark.parametrize("url", ["/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt",
                                 "/rel-out", "/abs-out", "/dir-out/o.txt", "//etc/passwd"])
def test_traversals_are_404(tree, url):
    with pytest.raises(HTTPException) as info:
        get(StaticFiles(directory=tree), url)
    assert info.value.status_code == 404


def test_follow_symlink_serves_links_out_but_no_dotdot(tree):
    app = StaticFiles(directory=tree, follow_symlink=True)
    assert get(app, "/abs-out").status_code == 200
    with pytest.raises(HTTPException):
        get(app, "/../secret.txt")


def test_an_overridden_lookup_path_is_the_one_used(tree):
    calls = []

    class Mine(StaticFiles):
        def lookup_path(self, path):
            calls.append(path)
            return str(tree / "index.html"), os.stat(tree / "index.html")

    assert get(Mine(directory=tree), "/anything").path == str(tree / "index.html")
    assert calls == ["anything"]

    app = StaticFiles(directory=tree)
    app.lookup_path = lambda path: ("", None)            # an instance's own
    with pytest.raises(HTTPException):
        get(app, "/index.html")


def test_lookup_path_stays_starlettes_synchronous_method(tree):
    app = StaticFiles(directory=tree)
    full, st = app.lookup_path("sub/a.txt")
    assert full == str(tree / "sub" / "a.txt") and st.st_size == 1


def test_permission_and_long_names(tree):
    with pytest.raises(HTTPException) as info:
        get(StaticFiles(directory=tree), "/" + "a" * 5000)
    assert info.value.status_code == 404
    with pytest.raises(HTTPException) as info:
        get(StaticFiles(directory=tree), "/x\0y")
    assert info.value.status_code == 404


# ---- the engine row itself ----

def serve_lookup(directory, path, resolve):
    async def main():
        return await run(_engine.serve_lookup, directory, path, resolve)
    return asyncio.run(main())


def test_serve_lookup_resolves_beneath_and_stats(tree):
    full, st = serve_lookup(str(tree), "rel-in", 0x08)
    assert full == os.path.realpath(tree / "rel-in")
    assert (st.st_ino, st.st_size) == (os.stat(tree / "sub" / "a.txt").st_ino, 1)
    assert serve_lookup(os.fsencode(tree), b"sub", 0x08)[0] == os.fsencode(tree / "sub")


@pytest.mark.parametrize("path", ["rel-out", "abs-out", "../secret.txt", "/etc/passwd", "abs-in"])
def test_serve_lookup_refuses_to_leave_with_exdev(tree, path):
    with pytest.raises(OSError) as info:
        serve_lookup(str(tree), path, 0x08)
    assert info.value.errno == errno.EXDEV
    assert info.value.filename == str(tree)


def test_serve_lookup_errors(tree):
    with pytest.raises(FileNotFoundError):
        serve_lookup(str(tree), "missing", 0x08)
    with pytest.raises(FileNotFoundError):
        serve_lookup(str(tree / "nodir"), "x", 0x08)
    with pytest.raises(NotADirectoryError):
        serve_lookup(str(tree / "index.html"), "x", 0x08)
    with pytest.raises(OSError) as info:
        serve_lookup(str(tree), "loop", 0x08)
    assert info.value.errno == errno.ELOOP
    with pytest.raises(ValueError):
        serve_lookup(str(tree), "a\0b", 0x08)


# a child pytest (its own timeout 240 s): seconds alone, past the default
# 30 s limit on a loaded machine
@pytest.mark.aio_timeout(300)
def test_starlettes_401_test_passes_without_roots_powers():
    """tests/starlette's permission test cannot fail for root, which reads
    through any mode: run it in a child without CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH (capsh), where a mode is obeyed."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    if os.geteuid() != 0:
        pytest.skip("not root: tests/starlette runs the test itself")
    capsh = shutil.which("capsh") or "/usr/sbin/capsh"
    if not os.path.exists(capsh):
        pytest.skip("no capsh (libcap2-bin) to drop root's file-mode override")
    root = Path(__file__).resolve().parent.parent
    test = "tests/starlette/test_staticfiles.py::test_staticfiles_with_invalid_dir_permissions_returns_401"
    cmd = f"exec {sys.executable} -m pytest -q -p no:cacheprovider -p no:asyncio {test}"
    out = subprocess.run([capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", cmd],
                         cwd=root, capture_output=True, text=True, timeout=240)
    assert "2 passed" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]


# ---- serve_lookup's inline try (ops_serve.c): same answers, no thread hop ----

STAT_OK = _engine._inline_mounts()[0]


def serve_lookup_twice(directory, path, resolve):
    """Two lookups awaited in one task: the first warms the dentry cache,
    the second may be answered inline.  (answer or error, inline count)."""
    async def main():
        for _ in range(2):
            before = _engine._inline_stats()[0]
            try:
                got = await run(_engine.serve_lookup, directory, path, resolve)
            except OSError as exc:
                got = (type(exc), exc.errno, exc.filename)
        return got, _engine._inline_stats()[0] - before
    return asyncio.run(main())


@pytest.mark.parametrize("path", ["sub/a.txt", "rel-in", "abs-in", "rel-out", "abs-out", "dir-out/o.txt",
                                  "../secret.txt", "/etc/passwd", "missing", "sub/a.txt/x", "loop", "sub"])
def test_serve_lookup_inline_answers_as_a_worker_does(tree, path):
    _engine.inline(False)
    try:
        by_worker, _ = serve_lookup_twice(str(tree), path, 0x08 | 0x02)
    finally:
        _engine.inline(True)
    inline_answer, _ = serve_lookup_twice(str(tree), path, 0x08 | 0x02)
    assert inline_answer == by_worker


@pytest.mark.skipif(not STAT_OK, reason="a network or FUSE file system is mounted: lookups are not tried inline")
def test_a_cached_lookup_is_answered_inline(tree):
    (full, st), n_inline = serve_lookup_twice(str(tree), "sub/a.txt", 0x08 | 0x02)
    assert full == str(tree / "sub" / "a.txt") and st.st_size == 1
    assert n_inline == 1
