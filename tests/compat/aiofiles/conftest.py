"""Run aiofiles 25.1.0's own tests (tests/, unchanged) against linuxaio.aiofiles.

The one swap: an import hook that makes `import aiofiles` (and every
aiofiles.* submodule) import linuxaio.aiofiles (linuxaio.aiofiles.*).  The
rest is what aiofiles' pyproject gives its tests: pytest-asyncio in auto mode
for these files (the asyncio mark on each module here: the rest of linuxaio's
suite runs in strict mode), run from the directory that holds tests/ (its
test_abspath resolves "./tests/..." from there).  Each test runs on asyncio,
on uvloop and, from Python 3.12, on asyncio with eager tasks.

Skipped, because their subject is aiofiles' private internals (listed with
the reasons in the README, "Coming from aiofiles / anyio"): see SKIPS.
test_access assumes it is not root: as root it runs in a child pytest with
the DAC capabilities dropped (setpriv), not skipped.
"""
import asyncio
import importlib
import importlib.abc
import importlib.util
import inspect
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
PEER = "aiofiles"
OURS = "linuxaio.aiofiles"


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """aiofiles[.x] -> linuxaio.aiofiles[.x]: the same module objects."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == PEER or fullname.startswith(PEER + "."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(OURS + spec.name[len(PEER):])

    def exec_module(self, module):
        pass


for _name in [n for n in sys.modules if n == PEER or n.startswith(PEER + ".")]:
    del sys.modules[_name]          # a real aiofiles imported earlier
sys.meta_path.insert(0, _Alias())

SKIPS = {
    "threadpool/test_concurrency.py::test_slow_file":
        "patches aiofiles.threadpool.sync_open, the builtin open its thread pool calls "
        "(linuxaio.aiofiles opens with an engine request: there is no such hook)",
    "threadpool/test_binary.py::test_simple_close_ctx_mgr_iter":
        "asserts on file._file, aiofiles' private synchronous file object (linuxaio's "
        "files are async all the way down: there is none)",
    "threadpool/test_binary.py::test_simple_close_ctx_mgr":
        "asserts on file._file, aiofiles' private synchronous file object",
    "threadpool/test_text.py::test_simple_close":
        "asserts on file._file, aiofiles' private synchronous file object",
}


def _skip_reason(item):
    rel = os.path.relpath(str(item.path), os.path.join(HERE, "tests"))
    return SKIPS.get(f"{rel}::{item.originalname}")


def _has_dac_override():
    """Whether this process may bypass file permissions (root's CAP_DAC_OVERRIDE)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 1))
    except OSError:
        pass
    return os.geteuid() == 0


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    """pytest-asyncio's auto mode for aiofiles' tests only: each coroutine
    test function here gets the asyncio mark before it becomes an item."""
    if str(collector.path).startswith(HERE) and inspect.iscoroutinefunction(obj):
        marks = list(getattr(obj, "pytestmark", []))
        if not any(m.name == "asyncio" for m in marks):
            obj.pytestmark = marks + [pytest.mark.asyncio.mark]


try:
    import pytest_asyncio  # noqa: F401  (the test extra has it; CI installs it)
except ImportError:
    # without pytest-asyncio these tests cannot run: say so, do not crash
    # the rest of the suite on the hook below
    collect_ignore_glob = ["tests/*"]
    pytest_asyncio = None


def _loop_factories(config, item):
    factories = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        pass
    else:
        factories["asyncio+uvloop"] = uvloop.new_event_loop
    if sys.version_info >= (3, 12):
        def eager():
            loop = asyncio.new_event_loop()
            loop.set_task_factory(asyncio.eager_task_factory)
            return loop
        factories["asyncio+eager"] = eager
    return factories


if pytest_asyncio is not None:
    pytest_asyncio_loop_factories = _loop_factories
else:
    def pytest_configure(config):
        import warnings
        warnings.warn("pytest-asyncio is not installed: aiofiles' vendored tests "
                      "(tests/compat/aiofiles) are not run")


# aiofiles' tests leave some of their own synchronous files and streams to
# the garbage collector (`open(filename).read()`, a client StreamWriter): under
# -W error (CI's 3.12 run) their ResourceWarnings would fail the tests.  Only
# those are ignored; an unclosed linuxaio file still warns ("<linuxaio....>").
UPSTREAM_LEAKS = [
    pytest.mark.filterwarnings(r"ignore:unclosed file <_io\.:ResourceWarning"),
    pytest.mark.filterwarnings(r"ignore:unclosed <StreamWriter:ResourceWarning"),
    pytest.mark.filterwarnings(r"ignore:unclosed <socket\.socket:ResourceWarning"),
    pytest.mark.filterwarnings(r"ignore:unclosed transport:ResourceWarning"),
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if not str(item.path).startswith(HERE):
            continue
        for mark in UPSTREAM_LEAKS:
            item.add_marker(mark)
        reason = _skip_reason(item)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"aiofiles' private internals: {reason}"))
        elif item.originalname == "test_access" and _has_dac_override():
            if os.environ.get("LINUXAIO_DAC_DROPPED"):
                item.add_marker(pytest.mark.xfail(
                    reason="setpriv left CAP_DAC_OVERRIDE in place", strict=True, run=False))
            else:
                item.runtest = _in_child_without_dac(item)
                # a child pytest: seconds alone, past the default 30 s
                # limit on a loaded machine (its own timeout is 120 s)
                item.add_marker(pytest.mark.aio_timeout(150))


def _in_child_without_dac(item):
    """Run the test in a child pytest whose bounding set lacks CAP_DAC_OVERRIDE
    and CAP_DAC_READ_SEARCH (so root's permission checks are a user's)."""
    def runtest():
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
               sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--rootdir", REPO, item.nodeid]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), LINUXAIO_DAC_DROPPED="1")
        proc = subprocess.run(cmd, cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or " passed" not in proc.stdout:
            pytest.fail(f"test_access without DAC capabilities failed:\n{proc.stdout}\n{proc.stderr}",
                        pytrace=False)
    return runtest


# aiofiles' test_os.py makes and renames files in tests/resources (its own
# directory): two runs at once (two Pythons) would trip over each other, and a
# run killed half-way leaves its files there.  A lock file makes concurrent
# runs take turns; what a killed run left is removed before the first test.
LEFTOVERS = ["test_file2.txt", "subdirectory", "empty_dir", "some_dir", "test_dir",
             "os_access_temp.txt", "os_access_temp"]


@pytest.fixture(scope="session")
def _aiofiles_resources():
    import fcntl
    import shutil
    if os.environ.get("LINUXAIO_DAC_DROPPED"):     # the child of a run holding the lock
        yield
        return
    with open(os.path.join(HERE, ".resources.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = os.path.join(HERE, "tests", "resources")
        for name in LEFTOVERS:
            path = os.path.join(res, name)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o755)
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
        yield


@pytest.fixture(autouse=True)
def _aiofiles_cwd(request, monkeypatch):
    if str(request.path).startswith(HERE):
        request.getfixturevalue("_aiofiles_resources")
        monkeypatch.chdir(HERE)
