"""What Starlette's own test suite gives the tests vendored here.

Starlette's tests live in a package named ``tests`` with ``tests/types.py``
and ``tests/statics/`` beside them (test_staticfiles serves
``packages=["tests"]`` and the relative directory ``tests/statics``); ours
are not a package, so a stand-in ``tests`` module points at this directory.
The fixtures are Starlette's conftest's (tests/conftest.py of the 1.10.0
sdist, BSD-3-Clause, see test_staticfiles.py): ``test_client_factory`` for
the backend anyio's plugin parametrizes (asyncio and trio), and blockbuster,
which fails a test when a blocking call (os.stat, open, a file's read) runs
on the event loop's thread; here it watches linuxaio too, not only starlette.
"""
from __future__ import annotations

import functools
import importlib.machinery
import os
import sys
import types
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

import starlette_client_types  # noqa: E402  (beside this file)

_tests = types.ModuleType("tests")
_tests.__spec__ = importlib.machinery.ModuleSpec(
    "tests", None, origin=str(HERE / "__init__.py"), is_package=True)
_tests.__path__ = [str(HERE)]
_tests.types = starlette_client_types
if "tests" not in sys.modules:
    sys.modules["tests"] = _tests
    sys.modules["tests.types"] = starlette_client_types

from blockbuster import BlockBuster  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402


@pytest.fixture(autouse=True)
def blockbuster():
    bb = BlockBuster(["starlette", "linuxaio"])
    bb.functions["os.stat"].can_block_in("/mimetypes.py", "init")
    bb.functions["os.stat"].can_block_in("<frozen linecache>", {"checkcache", "updatecache"})
    bb.functions["io.BufferedReader.read"].can_block_in("/starlette/testclient.py", "receive")
    bb.activate()
    try:
        yield
    finally:
        bb.deactivate()


@pytest.fixture(autouse=True)
def _in_a_directory_with_tests_statics(tmp_path_factory, monkeypatch):
    """test_staticfiles_relative_directory_symlinks serves "tests/statics"
    relative to the working directory (Starlette's repository root)."""
    root = tmp_path_factory.mktemp("cwd")
    os.symlink(HERE, root / "tests")
    monkeypatch.chdir(root)


@pytest.fixture
def test_client_factory(anyio_backend_name, anyio_backend_options):
    return functools.partial(TestClient, backend=anyio_backend_name,
                             backend_options=anyio_backend_options)


def ignores_file_modes():
    """Whether this process reads through any file mode (root's
    CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH in its effective set)."""
    with open("/proc/self/status") as f:
        caps = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(caps & 0b110)


def pytest_collection_modifyitems(items):
    # Starlette's own test of the 401 changes a directory's mode; root reads
    # through any mode, so it fails there for Starlette's own StaticFiles
    # too.  It runs without those capabilities: tests/test_starlette_lookup.py
    # runs it so when this suite runs as root.
    if ignores_file_modes():
        for item in items:
            if "test_staticfiles_with_invalid_dir_permissions_returns_401" in item.nodeid:
                item.add_marker(pytest.mark.skip(
                    reason="root ignores file modes (CAP_DAC_OVERRIDE): run without it by test_starlette_lookup.py"))
