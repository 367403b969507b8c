"""The command line: python -m linuxaio bench.

Each run is a child interpreter with a time limit; the bench's runs are kept
short (--seconds 0.2) on a small file."""
import hashlib
import os
import pty
import subprocess
import sys

import pytest

from aio_helpers import LINUXAIO_HOME, run_python

FAST = ["--seconds", "0.2", "--qd", "4"]


def bench(*args, timeout=60):
    """python -m linuxaio bench ARGS in a child: its CompletedProcess."""
    code = ("import runpy, sys\n"
            f"sys.argv = ['linuxaio', 'bench'] + {list(args)!r}\n"
            "runpy.run_module('linuxaio', run_name='__main__', alter_sys=True)\n")
    proc, _ = run_python(code, timeout=timeout)
    return proc


def fingerprint(path):
    st = os.stat(path)
    with open(path, "rb") as f:
        return st.st_size, st.st_mtime_ns, hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def users_file(tmp_path):
    """A user's file, smaller than the default --size: 10000 bytes."""
    p = tmp_path / "mine.dat"
    p.write_bytes(bytes(range(256)) * 39 + b"x" * 16)
    return p


def assert_usage_error(proc):
    """argparse's refusal: exit status 2, one error line, no traceback."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("linuxaio bench: error: "), proc.stderr
    assert proc.stdout == ""


def test_bench_reads_a_given_file_as_it_is(users_file):
    before = fingerprint(users_file)
    proc = bench("--file", str(users_file), *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "(10000 bytes)" in proc.stdout
    assert fingerprint(users_file) == before


def test_bench_write_refuses_a_file_it_did_not_create(users_file):
    before = fingerprint(users_file)
    proc = bench("--file", str(users_file), "--write", *FAST)
    assert_usage_error(proc)
    assert "--overwrite" in proc.stderr
    assert fingerprint(users_file) == before


def test_bench_write_overwrite_keeps_the_files_size(users_file):
    proc = bench("--file", str(users_file), "--write", "--overwrite", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert os.path.getsize(users_file) == 10000


def test_bench_size_with_an_existing_file_is_refused(users_file):
    before = fingerprint(users_file)
    assert_usage_error(bench("--file", str(users_file), "--size", "1M", *FAST))
    assert fingerprint(users_file) == before


def test_bench_creates_a_missing_file_at_size_and_keeps_it(tmp_path):
    p = tmp_path / "new.dat"
    proc = bench("--file", str(p), "--size", "64k", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert os.path.getsize(p) == 65536


def test_bench_removes_its_temporary_file(tmp_path):
    proc = run_python("import runpy, sys\n"
                      "sys.argv = ['linuxaio', 'bench', '--size', '64k', '--seconds', '0.2']\n"
                      "runpy.run_module('linuxaio', run_name='__main__', alter_sys=True)\n",
                      timeout=60, env={"TMPDIR": str(tmp_path)})[0]
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args", [
    ["--bs", "0"], ["--size", "0"], ["--size", "4k", "--bs", "8k"], ["--qd", "0"],
    ["--qd", "-3"], ["--threads", "-1"], ["--threads", "100000"], ["--seconds", "0"],
    ["--seconds", "-1"], ["--seconds", "nan"], ["--seconds", "inf"], ["--bs", "-4k"],
    ["--size", "abc"], ["--bs", "1.5"], ["--qd", "x"], ["--qd", "1000000", "--bs", "1M"],
], ids=" ".join)
def test_bench_bad_values_are_usage_errors(tmp_path, args):
    proc = run_python("import runpy, sys\n"
                      f"sys.argv = ['linuxaio', 'bench'] + {args!r}\n"
                      "runpy.run_module('linuxaio', run_name='__main__', alter_sys=True)\n",
                      timeout=60, env={"TMPDIR": str(tmp_path)})[0]
    assert_usage_error(proc)
    assert os.listdir(tmp_path) == []       # refused before any file was made


def test_bench_bs_larger_than_the_given_file_is_a_usage_error(users_file):
    assert_usage_error(bench("--file", str(users_file), "--bs", "16k", *FAST))


def test_bench_a_directory_is_a_usage_error(tmp_path):
    assert_usage_error(bench("--file", str(tmp_path), *FAST))


def test_bench_shows_queue_latency_apart_from_call_latency(users_file):
    """linuxaio's latency includes the wait behind the requests in flight; the
    plain loop's is one call: not side by side in one table as if comparable."""
    out = bench("--file", str(users_file), *FAST).stdout.splitlines()
    header = next(line for line in out if "IOPS" in line)
    assert "p50" not in header and "p99" not in header
    lx = next(line for line in out if line.strip().startswith("linuxaio") and "p50" in line)
    plain = next(line for line in out if line.strip().startswith("os.pread") and "p50" in line)
    assert "queue" in lx and "submission to callback" in lx
    assert "one call" in plain
    assert any("not comparable" in line for line in out)


def test_bench_no_progress_line_when_stderr_is_not_a_terminal(users_file):
    proc = bench("--file", str(users_file), "--seconds", "1.2", "--qd", "4")
    assert proc.returncode == 0
    assert proc.stderr == ""


def test_bench_progress_line_on_a_terminal(users_file):
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=LINUXAIO_HOME + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        proc = subprocess.run([sys.executable, "-m", "linuxaio", "bench", "--file", str(users_file),
                               "--seconds", "1.2", "--qd", "4"], stdout=subprocess.PIPE,
                              stderr=slave, env=env, timeout=60)
        os.close(slave)
        slave = None
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:         # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 0
    assert b"\r  linuxaio:" in seen and b"IOPS" in seen


def test_bench_is_the_default_command_with_its_options(users_file):
    proc = run_python("import runpy, sys\n"
                      f"sys.argv = ['linuxaio', '--file', {str(users_file)!r}, '--seconds', '0.2']\n"
                      "runpy.run_module('linuxaio', run_name='__main__', alter_sys=True)\n",
                      timeout=60)[0]
    assert proc.returncode == 0, proc.stderr
    assert "(10000 bytes)" in proc.stdout


def test_bench_direct_reads_the_device(users_file):
    before = fingerprint(users_file)
    proc = bench("--file", str(users_file), "--direct", *FAST)
    if proc.returncode == 1 and "Invalid argument" in proc.stderr:
        pytest.skip("the file system refuses O_DIRECT")
    assert proc.returncode == 0, proc.stderr
    assert "O_DIRECT" in proc.stdout and "page cache:" not in proc.stdout
    assert fingerprint(users_file) == before


def test_bench_direct_with_a_misaligned_bs_is_a_usage_error(users_file):
    proc = bench("--file", str(users_file), "--direct", "--bs", "1000", *FAST)
    assert_usage_error(proc)
    assert "alignment" in proc.stderr
