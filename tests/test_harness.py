"""The suite's own guards (tests/conftest.py): a test past its time limit
fails, alone, and a hang past the backstop ends the run with every thread's
stack on the real stderr.  Twice CI's run ended silently partway (no
traceback, no summary, status 1): faulthandler's backstop wrote its dump
into pytest's capture of fd 2, lost as it ended the process; and a timed-out
hypothesis test went on shrinking and replaying, with no alarm left, until
that backstop fired.  Each case runs pytest in a child on a small test file
whose conftest is this suite's."""
import os
import subprocess
import sys

import pytest

from aio_helpers import LINUXAIO_HOME

HERE = os.path.dirname(os.path.abspath(__file__))

CONFTEST = f"""
import importlib.util, sys
sys.path.insert(0, {HERE!r})
spec = importlib.util.spec_from_file_location("suite_conftest", {os.path.join(HERE, "conftest.py")!r})
suite_conftest = sys.modules["suite_conftest"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite_conftest)
from suite_conftest import *   # noqa: F401,F403  (its hooks and fixtures)
"""


def run_pytest(tmp_path, test_source, timeout=120):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_case.py").write_text(test_source)
    env = dict(os.environ, PYTHONPATH=LINUXAIO_HOME + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "--rootdir", str(tmp_path), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


# Each runs a child pytest: seconds alone, past the default 30 s limit on a
# loaded machine (the child's own timeout is 120 s).
pytestmark = pytest.mark.aio_timeout(150)


def test_the_backstop_dumps_the_stacks_where_they_can_be_seen(tmp_path):
    # A test stuck where the alarm cannot reach it: the backstop (armed for
    # one second here) must show which test, on the real stderr, not in
    # pytest's capture file that the exit discards.
    proc = run_pytest(tmp_path, """
import time
import suite_conftest

def test_stuck_in_c_code():
    suite_conftest._arm_backstop(1)
    time.sleep(30)
""")
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Timeout" in proc.stderr, proc.stderr
    assert "test_stuck_in_c_code" in proc.stderr, proc.stderr


def test_a_timed_out_hypothesis_test_is_not_replayed(tmp_path):
    # hypothesis takes an Exception for a falsifying example, then shrinks
    # and replays it with no alarm left; the time-limit exception must end
    # the test at once, and the run must go on to the next test.
    calls = tmp_path / "calls"
    proc = run_pytest(tmp_path, f"""
import time
import pytest
from hypothesis import given, settings, strategies as st

@pytest.mark.aio_timeout(1)
@settings(max_examples=10_000, deadline=None, database=None)
@given(st.integers())
def test_slow_examples(x):
    with open({str(calls)!r}, "a") as f:
        f.write(f"{{time.monotonic()}}\\n")
    time.sleep(0.05)

def test_after():
    pass
""")
    assert "1 failed, 1 passed" in proc.stdout, (proc.stdout, proc.stderr)
    assert "AioTestTimeout" in proc.stdout
    stamps = [float(t) for t in calls.read_text().split()]
    # every example ran within the second the limit allows, plus the one
    # the alarm interrupted (none replayed after it)
    assert stamps[-1] - stamps[0] < 1.0 + 0.05 + 0.5, stamps[-5:]


def test_a_time_limit_hit_in_an_event_loop_callback_ends_the_test(tmp_path):
    # asyncio logs an exception raised in a callback (the engine's reader
    # callback, often, when the alarm comes) and goes on: the test ran on
    # until the backstop ended the run.
    proc = run_pytest(tmp_path, """
import asyncio, time
import pytest

@pytest.mark.aio_timeout(1)
def test_callbacks_keep_the_loop_busy():
    async def main():
        loop = asyncio.get_running_loop()
        def spin():                   # the loop is almost always in here
            t = time.monotonic()
            while time.monotonic() - t < 0.05:
                pass
            loop.call_soon(spin)
        loop.call_soon(spin)
        await asyncio.sleep(60)
    asyncio.run(main())

def test_after():
    pass
""")
    assert "1 failed, 1 passed" in proc.stdout, (proc.stdout, proc.stderr)
    # (the alarm lands in spin() all but always; in the loop's own code, the
    # exception itself ends run_until_complete())
    assert ("Event loop stopped before Future completed" in proc.stdout
            or "AioTestTimeout" in proc.stdout), proc.stdout


def test_a_swallowed_time_limit_still_fails_the_test(tmp_path):
    proc = run_pytest(tmp_path, """
import time
import pytest

@pytest.mark.aio_timeout(1)
def test_swallows_everything():
    try:
        time.sleep(5)
    except BaseException:
        pass
""")
    assert "1 passed, 1 error" in proc.stdout, (proc.stdout, proc.stderr)
    assert "exceeded its time limit (1 s)" in proc.stdout, proc.stdout
