"""linuxaio._tools: the command line's helpers that benchmarks/ shares."""
import importlib.util
import os

import pytest

from linuxaio._tools import pagecache
from linuxaio._tools.sizes import parse_size



@pytest.mark.parametrize("text, want", [("4096", 4096), ("4k", 4096), ("64KiB", 65536),
                                        ("1.5M", 3 << 19), ("1G", 1 << 30), (" 256m ", 256 << 20),
                                        ("0", 0)])
def test_parse_size(text, want):
    assert parse_size(text) == want


@pytest.mark.parametrize("text", ["", "x", "1.5", "4q", "inf", "nan", "1e400k"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_a_file_just_read_is_resident(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(os.urandom(5 * pagecache.PAGE + 1))
    fd = os.open(p, os.O_RDONLY)
    try:
        pagecache.read_through(fd)
        assert pagecache.resident_pages(fd) == (6, 6)
    finally:
        os.close(fd)


def test_an_empty_file_has_no_pages(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"")
    fd = os.open(p, os.O_RDONLY)
    try:
        assert pagecache.resident_pages(fd) == (0, 0)
    finally:
        os.close(fd)


def test_benchmarks_use_these_helpers():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(repo, "benchmarks", "common.py")
    spec = importlib.util.spec_from_file_location("bench_common_under_test", path)
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    assert common.parse_size("64k") == 65536
    assert common.parse_size.__code__.co_filename.endswith(
        os.path.join("linuxaio", "_tools", "sizes.py"))
    assert common._pagecache.resident_pages.__code__.co_filename.endswith(
        os.path.join("linuxaio", "_tools", "pagecache.py"))
