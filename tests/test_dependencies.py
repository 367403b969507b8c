"""Dependencies run one way: no two modules of the package or of
benchmarks/ import each other, directly or around a loop."""
import ast
import re
import os

# The sources beside these tests (an installed linuxaio has no benchmarks/
# or engine sources next to it).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(REPO, "src")
PACKAGE = os.path.join(SRC, "linuxaio")
BENCHMARKS = os.path.join(REPO, "benchmarks")


def package_modules():
    """module name -> file, for linuxaio and its submodules."""
    found = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith((".py", ".so")):    # an extension module is a leaf
                rel = os.path.relpath(os.path.join(root, name.split(".")[0]), SRC)
                parts = rel.split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = os.path.join(root, name)
    # the engine, a leaf: built from src/engine/ (a clean tree has no .so)
    found.setdefault("linuxaio._engine", os.path.join(REPO, "src", "engine"))
    return found


def imports_of(path, module, is_package, known):
    """The known modules that path's import statements name."""
    with open(path) as f:
        tree = ast.parse(f.read())
    here = module.split(".") if is_package else module.split(".")[:-1]
    got = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = here[:len(here) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            # from X import a: the submodule X.a if there is one, else X
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                     for a in node.names]
        else:
            continue
        got.update(n for n in names if n in known and n != module)
    return got


def cycle(graph):
    """A list of modules that import each other around a loop, or None."""
    state = {}

    def visit(m, trail):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                return trail[trail.index(n):] + [n]
            if n not in state:
                found = visit(n, trail + [n])
                if found:
                    return found
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m, [m])
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    mods = package_modules()
    graph = {m: imports_of(p, m, p.endswith("__init__.py"), mods) if p.endswith(".py") else set()
             for m, p in mods.items()}
    assert graph["linuxaio.os"] == {"linuxaio._engine", "linuxaio._loop"}   # it sees imports
    assert cycle(graph) is None


def test_the_benchmarks_have_no_import_cycle():
    mods = {n[:-3]: os.path.join(BENCHMARKS, n)
            for n in os.listdir(BENCHMARKS) if n.endswith(".py")}
    graph = {m: imports_of(p, m, False, mods) for m, p in mods.items()}
    assert "common" in graph["w7_tree_walk"]
    assert cycle(graph) is None


def test_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


# ---- the engine's C files ----

ENGINE = os.path.join(REPO, "src", "engine")
# A function definition at the start of a line, not static: "type name(" with
# no ";" after it on that line (a declaration ends with one).
C_DEFINITION = re.compile(r"^(?!static\b)(?:[A-Za-z_][\w \*]*?[\s\*])(lx_\w+)\s*\([^;]*$", re.M)
C_CALL = re.compile(r"\b(lx_\w+)\s*\(")


def engine_calls():
    """file -> the other engine files whose functions it calls by name.
    Calls through a table of hooks (the future's, a backend's) are not
    calls by name: that is how a lower layer reaches a higher one."""
    sources = {}
    for name in sorted(os.listdir(ENGINE)):
        if name.endswith(".c"):
            with open(os.path.join(ENGINE, name)) as f:
                sources[name] = f.read()
    owner = {}
    for name, text in sources.items():
        for fn in C_DEFINITION.findall(text):
            owner[fn] = name
    return {name: {owner[fn] for fn in C_CALL.findall(text) if owner.get(fn, name) != name}
            for name, text in sources.items()}


def test_the_engine_files_call_each_other_one_way():
    graph = engine_calls()
    assert sum(len(v) for v in graph.values()) > 10, graph   # the scan finds calls
    assert cycle(graph) is None, cycle(graph)


def test_c_cycle_finder_finds_one():
    assert cycle({"a.c": {"b.c"}, "b.c": {"a.c"}}) == ["a.c", "b.c", "a.c"]
