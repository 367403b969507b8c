"""The engine's files: every one built, listed in the README, none too long."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "src/engine"


def test_setup_builds_every_c_file_and_depends_on_every_header():
    """setup.py globs the engine's directory, so a new family file is built
    without touching it; check that it still does."""
    text = (ROOT / "setup.py").read_text()
    assert 'sources=sorted(glob(ENGINE + "*.c"))' in text
    assert 'glob(ENGINE + "*.h")' in text and 'glob(ENGINE + "*.def")' in text


def test_the_readme_layout_names_every_engine_file():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    missing = [p.name for p in ENGINE.iterdir()
               if p.suffix in (".c", ".def") or p.name in ("engine.h", "backend.h")
               if f"src/engine/{p.name}" not in layout]
    assert not missing


def test_no_c_file_is_over_1000_lines():
    long = {p.name: n for p in ENGINE.iterdir()
            if (n := len(p.read_text().splitlines())) > 1000}
    assert not long


def test_pyproject_installs_every_subpackage():
    """A subpackage left out of pyproject's list is missing from an install
    (not from an in-place build): tests of it fail only after pip install."""
    import tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    src = ROOT / "src"
    found = {".".join(p.parent.relative_to(src).parts) for p in (src / "linuxaio").rglob("__init__.py")}
    assert found == listed
