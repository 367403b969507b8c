"""The command-line tools: linuxaio scan, copy, rm (output, exit codes on
success, partial failure and bad arguments; an interrupted copy re-run
with --update)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

import linuxaio

from tree_helpers import make_tree, snapshot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the package the tests import (the source tree's, or an installed one: CI's)
ENV = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(linuxaio.__file__))))



def read_file(path):
    with open(path, "rb") as f:
        return f.read()

def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "linuxaio", *map(str, args)], env=ENV,
                          capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture
def src(tmp_path):
    top = make_tree(str(tmp_path / "src"))
    if os.geteuid() == 0:
        os.chown(os.path.join(top, "dir", "f0.dat"), 65534, 65534)
        os.chown(os.path.join(top, "dir", "sub"), 65534, 65533)
        os.lchown(os.path.join(top, "link-to-file"), 65533, 65534)
    return top


def expected_totals(top):
    files = dirs = links = other = apparent = 0
    allocated, seen = 0, set()
    for p in [top] + [os.path.join(d, n) for d, ds, fs in os.walk(top) for n in ds + fs]:
        st = os.lstat(p)
        if os.path.isdir(p) and not os.path.islink(p):
            dirs += 1
        elif os.path.islink(p):
            links += 1
        elif os.path.isfile(p):
            files += 1
            apparent += st.st_size
        else:
            other += 1
        if st.st_nlink > 1 and not os.path.isdir(p):
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
        allocated += st.st_blocks * 512
    return dict(files=files, dirs=dirs, symlinks=links, other=other,
                apparent_bytes=apparent, allocated_bytes=allocated, errors=0)


def test_scan_json_matches_os_walk_and_du(src):
    out = cli("scan", "--json", "--top", "3", "--ext", src)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""                # no progress line: stderr is no terminal
    got = json.loads(out.stdout)
    exp = expected_totals(src)
    assert {k: got[k] for k in exp} == exp
    assert all(isinstance(got[k], int) for k in exp)
    if shutil.which("du"):
        du = subprocess.run(["du", "-s", "-B1", src], capture_output=True, text=True)
        assert int(du.stdout.split()[0]) == got["allocated_bytes"]
    assert [f["bytes"] for f in got["top_files"]] == sorted(
        (os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(src) for f in fs
         if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f))),
        reverse=True)[:3]
    assert got["top_dirs"][0]["path"] == src and got["extensions"][".dat"]["files"] == 8


def test_scan_text_and_errors(src, tmp_path):
    out = cli("scan", src)
    assert out.returncode == 0 and "files" in out.stdout and "allocated" in out.stdout
    out = cli("scan", "--json", src, tmp_path / "missing")
    assert out.returncode == 1
    assert json.loads(out.stdout)["errors"] == 1 and "could not be read" in out.stderr
    out = cli("scan")
    assert out.returncode == 2 and "usage" in out.stderr
    out = cli("scan", "--top", "x", src)
    assert out.returncode == 2


def test_help_explains_every_option():
    for tool, options in (("scan", ["--top", "--ext", "--json", "--quiet"]),
                          ("copy", ["--update", "--verify", "--no-reflink", "--quiet"]),
                          ("rm", ["--force", "--quiet"])):
        out = cli(tool, "--help")
        assert out.returncode == 0
        for o in options:
            assert o in out.stdout


def test_copy_keeps_everything(src, tmp_path):
    os.unlink(os.path.join(src, "dir2", "fifo"))
    dst = str(tmp_path / "dst")
    out = cli("copy", src, dst)
    assert out.returncode == 0, out.stderr
    assert "files" in out.stdout
    assert snapshot(dst) == snapshot(src)
    for rel in ("dir/f0.dat", "dir/sub", "link-to-file"):      # a file, a directory, a symlink
        st_s, st_d = os.lstat(os.path.join(src, rel)), os.lstat(os.path.join(dst, rel))
        assert (st_s.st_uid, st_s.st_gid) == (st_d.st_uid, st_d.st_gid), rel
    assert os.lstat(os.path.join(dst, "link-to-dir")).st_mtime_ns == \
        os.lstat(os.path.join(src, "link-to-dir")).st_mtime_ns
    # into an existing DST: DST itself is the copy (rsync -a SRC/ DST/), not DST/src
    out = cli("copy", "--update", "--verify", src, dst)
    assert out.returncode == 0, out.stderr
    assert "up to date" in out.stdout and not os.path.exists(os.path.join(dst, "src"))
    assert snapshot(dst) == snapshot(src)
    assert not [n for d, ds, fs in os.walk(dst) for n in ds + fs if n.startswith(".linuxaio-copy.")]


def test_copy_fifo_partial_failure_and_bad_usage(src, tmp_path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(src, "sock"))
    try:
        out = cli("copy", src, tmp_path / "dst")
    finally:
        sock.close()
    assert out.returncode == 1
    assert "1 entries failed" in out.stderr and "sock" in out.stderr
    assert os.path.exists(tmp_path / "dst" / "dir2" / "fifo")
    assert cli("copy", tmp_path / "missing", tmp_path / "x").returncode == 2
    assert cli("copy", src).returncode == 2
    assert cli("copy", src, os.path.join(src, "inside")).returncode == 2
    assert cli("copy", "--bogus", src, tmp_path / "y").returncode == 2


@pytest.mark.aio_timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_copy_rerun_with_update(tmp_path, sig):
    src = tmp_path / "src"
    for d in range(8):
        (src / f"d{d}").mkdir(parents=True)
        for i in range(12):
            (src / f"d{d}" / f"f{i}").write_bytes(bytes([i]) * ((i + 1) * 150_000))
    dst = tmp_path / "dst"
    p = subprocess.Popen([sys.executable, "-m", "linuxaio", "copy", "--no-reflink", str(src), str(dst)],
                         env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # interrupt once copying has begun
    deadline = time.monotonic() + 30
    while not os.path.exists(dst) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.005)
    time.sleep(0.05)
    p.send_signal(sig)
    p.communicate(timeout=60)
    # nothing half-written under a final name
    for d, _, fs in os.walk(dst):
        for f in fs:
            if not f.startswith(".linuxaio-copy."):
                rel = os.path.relpath(os.path.join(d, f), dst)
                assert (src / rel).read_bytes() == read_file(os.path.join(d, f))
    out = cli("copy", "--update", src, dst)
    assert out.returncode == 0, out.stderr
    assert snapshot(str(dst)) == snapshot(str(src))


def test_rm(src, tmp_path):
    out = cli("rm", src)
    assert out.returncode == 0 and not os.path.exists(src)
    out = cli("rm", tmp_path / "missing")
    assert out.returncode == 1 and "No such file" in out.stderr
    assert cli("rm", "-f", tmp_path / "missing").returncode == 0
    assert cli("rm").returncode == 2
    assert cli("rm", ".").returncode == 2


def test_progress_on_a_terminal_only(tmp_path):
    """A progress line goes to stderr when it is a terminal (a pty here)."""
    import pty
    import select
    top = tmp_path / "many"
    for d in range(10):
        (top / f"d{d}").mkdir(parents=True)
        for i in range(100):
            (top / f"d{d}" / f"f{i}").write_bytes(b"x" * 10)
    master, slave = pty.openpty()
    chunks = []
    try:
        env = dict(ENV, LINUXAIO_PROGRESS_INTERVAL="0")
        p = subprocess.Popen([sys.executable, "-m", "linuxaio", "copy", str(top), str(tmp_path / "c")],
                             env=env, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        slave = -1
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:      # read as it writes: a full pty would block it
            if select.select([master], [], [], 0.1)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            elif p.poll() is not None:
                break
        rc = p.wait(timeout=30)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    err = b"".join(chunks).decode(errors="replace")
    assert rc == 0
    assert "\r" in err and "files" in err and "/s" in err
    quiet = cli("copy", "--update", top, tmp_path / "c")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_scan_totals_alone_equal_the_detailed_walks(src, tmp_path):
    """Without --top/--ext the workers add the entries up (scandir_totals):
    the same totals as the per-entry walk (--ext) and as os.walk + lstat,
    hard links across directories counted once."""
    os.makedirs(os.path.join(src, "a", "b", "c"))
    for i in range(300):
        with open(os.path.join(src, "a", "b", f"g{i}"), "wb") as f:
            f.write(b"x" * i)
    os.link(os.path.join(src, "a", "b", "g299"), os.path.join(src, "a", "b", "c", "again"))
    os.link(os.path.join(src, "a", "b", "g299"), os.path.join(src, "again-at-top"))
    os.symlink("a", os.path.join(src, "a", "b", "c", "up"))
    plain = cli("scan", "--json", src)
    detailed = cli("scan", "--json", "--ext", src)
    assert plain.returncode == detailed.returncode == 0, plain.stderr + detailed.stderr
    exp = expected_totals(src)
    for out in (plain, detailed):
        got = json.loads(out.stdout)
        assert {k: got[k] for k in exp} == exp
    # two roots, one of them a file, one missing
    out = cli("scan", "--json", src, os.path.join(src, "sparse"), tmp_path / "missing")
    got = json.loads(out.stdout)
    assert out.returncode == 1 and got["errors"] == 1
    assert got["files"] == exp["files"] + 1 and got["dirs"] == exp["dirs"]


def test_scan_imports_only_what_it_needs(src):
    """A command timed against du: no asyncio, no argparse nor re for the
    plain `scan [--json] [--quiet] PATH...`, no shutil (argparse's help
    formatter wants it for the terminal's width), json (--json has its own
    writer), heapq (unless --top), nor the tree module."""
    code = ("import sys; from linuxaio.__main__ import main; rc = main(['scan', '--json', sys.argv[1]]); "
            "print(sorted(m for m in ('asyncio', 'shutil', 'json', 'heapq', 'typing', 'linuxaio._tree', "
            "'linuxaio.os', 'lzma', 'argparse', 're') if m in sys.modules), rc, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, src], env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert out.stderr.strip() == "[] 0", out.stderr
    assert json.loads(out.stdout)["files"] > 0


def test_scan_json_is_json_dumps_to_the_byte():
    """--json's writer (no json import at start) writes what json.dumps does."""
    import random
    from linuxaio._tools.scan import to_json
    rng = random.Random(5)
    alphabet = ['"', "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", " ", "~", "\x7f", "é",
                "\udcff", "\u2028", "\U0001f600", "a", "/", "."]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        value = {"paths": [text, "plain"], "files": rng.randrange(10 ** 12), "seconds": rng.random(),
                 "extensions": {text: {"files": 1, "bytes": 2}}, "top_files": [], text: -3}
        assert to_json(value) == json.dumps(value)


@pytest.mark.parametrize("argv", [
    ["scan", "a"], ["scan", "--json", "a", "b"], ["scan", "a", "b", "--quiet", "--json"],
    ["scan", "--quiet", "a", "--json"], ["scan", "--json", "--json", "a"],
    # argparse's own: anything else
    ["scan", "a", "--json", "b"], ["scan", "--top", "3", "a"], ["scan", "-h"], ["scan", "--json"],
    ["scan", "-x", "a"], ["scan", "a", "--", "b"], ["scan", ""], ["copy", "a", "b"], ["scan", "--ext", "a"],
])
def test_plain_scan_arguments_are_argparses(argv, capsys):
    """`scan [--json] [--quiet] PATH...` is parsed without argparse (its
    import is a cost of every start); the result is argparse's, and any
    other form is left to argparse."""
    import argparse
    from linuxaio import __main__ as cli_main
    from linuxaio._tools import scan
    plain = cli_main._plain_scan(argv)
    parser = argparse.ArgumentParser(prog="linuxaio")
    sub = parser.add_subparsers(dest="command")
    scan.add_parser(sub)
    try:
        expected = vars(parser.parse_args(argv))
    except SystemExit:
        expected = None
    capsys.readouterr()
    if plain is None:
        assert argv in (["scan", "a", "--json", "b"], ["scan", "--json"], ["scan", "--top", "3", "a"],
                        ["scan", "-h"], ["scan", "-x", "a"], ["scan", "a", "--", "b"], ["scan", ""],
                        ["copy", "a", "b"], ["scan", "--ext", "a"])
    else:
        assert {k: getattr(plain, k) for k in expected} == expected
