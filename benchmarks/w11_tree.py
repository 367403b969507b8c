"""W11: whole-tree work on the 20,000-file tree (issue 15, section 6).

  W11c copytree:  linuxaio.shutil.copytree vs shutil.copytree vs `cp -a`,
                 and the `linuxaio copy` command vs `cp -a`
  W11r rmtree:    linuxaio.shutil.rmtree vs shutil.rmtree vs `rm -rf`
  W11s scan:      `python -m linuxaio scan --json` vs a Python script totalling
                 the tree with os.walk + os.lstat vs `du -s`, all timed as
                 commands (interpreter start included; the `linuxaio`
                 console script, its bytecode compiled first as an install
                 has it); cached, and cold (--cold: caches dropped before
                 each run, needs root)
  W11w walk:      async for in linuxaio.os.walk vs os.walk (in process)

Each figure is the best of --rounds runs; the ratio is peer time / linuxaio
time (above 1: linuxaio is faster).  The copies and the trees removed are
made beside the source tree (same filesystem), and removed afterwards.

python benchmarks/w11_tree.py [--files 20000] [--rounds 3] [--cold] [W11c W11r W11s W11w]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import common

PY_SCAN = r"""
import os, sys, stat
files = dirs = links = other = size = blocks = 0
seen = set()
for root in sys.argv[1:]:
    st = os.lstat(root)
    dirs += 1
    blocks += st.st_blocks
    for d, ds, fs in os.walk(root):
        for n in ds + fs:
            st = os.lstat(os.path.join(d, n))
            m = st.st_mode
            if stat.S_ISDIR(m): dirs += 1
            elif stat.S_ISREG(m): files += 1; size += st.st_size
            elif stat.S_ISLNK(m): links += 1
            else: other += 1
            if st.st_nlink > 1 and not stat.S_ISDIR(m):
                if (st.st_dev, st.st_ino) in seen: continue
                seen.add((st.st_dev, st.st_ino))
            blocks += st.st_blocks
print(files, dirs, links, other, size, blocks * 512)
"""


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def best(fn, rounds: int, setup=None, cleanup=None) -> float:
    times = []
    for _ in range(rounds):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if cleanup:
            cleanup()
    return min(times)


def fstype(path: Path) -> str:
    """The mount's type, as df -T says it (stat -f names ext4 "ext2/ext3":
    they share one magic number)."""
    out = subprocess.run(["df", "--output=fstype", str(path)], capture_output=True, text=True)
    lines = out.stdout.split()
    return lines[-1] if len(lines) > 1 else "?"


def row(name: str, t: float, ref: float) -> str:
    return f"  {name:42} {t * 1000:9.1f} ms   {ref / t:5.2f}x"


def w8c(tree: Path, rounds: int) -> None:
    import linuxaio.shutil as ash
    dst = tree.parent / (tree.name + "-w8copy")

    def clean():
        shutil.rmtree(dst, ignore_errors=True)
    clean()
    t_lx = best(lambda: asyncio.run(ash.copytree(str(tree), str(dst))), rounds, cleanup=clean)
    t_sh = best(lambda: shutil.copytree(str(tree), str(dst)), rounds, cleanup=clean)
    t_cp = best(lambda: subprocess.run(["cp", "-a", str(tree), str(dst)], check=True), rounds, cleanup=clean)
    # the command-line tool, as a command (interpreter start included)
    cmd = tool_command() + ["copy", "--quiet", str(tree), str(dst)]
    t_cli = best(lambda: subprocess.run(cmd, env=tool_env(), check=True, stdout=subprocess.DEVNULL),
                 rounds, cleanup=clean)
    print("W11c copytree (cached source)               time      ratio peer/linuxaio")
    print(row("linuxaio.shutil.copytree", t_lx, t_lx))
    print(row("shutil.copytree", t_sh, t_sh) + f"   linuxaio {t_sh / t_lx:.2f}x faster")
    print(row("cp -a", t_cp, t_cp) + f"   linuxaio {t_cp / t_lx:.2f}x faster")
    print(row("linuxaio copy (command)", t_cli, t_cli) + f"   cp -a / linuxaio copy: {t_cp / t_cli:.2f}x")


def w8r(tree: Path, rounds: int) -> None:
    import linuxaio.shutil as ash
    victim = tree.parent / (tree.name + "-w8rm")

    def make():
        shutil.rmtree(victim, ignore_errors=True)
        subprocess.run(["cp", "-a", str(tree), str(victim)], check=True)
    t_lx = best(lambda: asyncio.run(ash.rmtree(str(victim))), rounds, setup=make)
    t_sh = best(lambda: shutil.rmtree(str(victim)), rounds, setup=make)
    t_rm = best(lambda: subprocess.run(["rm", "-rf", str(victim)], check=True), rounds, setup=make)
    print("W11r rmtree (a fresh cp -a copy each run)")
    print(row("linuxaio.shutil.rmtree", t_lx, t_lx))
    print(row("shutil.rmtree", t_sh, t_sh) + f"   linuxaio {t_sh / t_lx:.2f}x faster")
    print(row("rm -rf", t_rm, t_rm) + f"   linuxaio {t_rm / t_lx:.2f}x faster")


def tool_env() -> dict:
    env = dict(os.environ)
    src = common.REPO / "src"
    env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def tool_command() -> list:
    """The `linuxaio` console script beside this interpreter (what a user
    runs; it imports the package PYTHONPATH names), else python -m linuxaio."""
    script = Path(sys.executable).with_name("linuxaio")
    return [str(script)] if script.exists() else [sys.executable, "-m", "linuxaio"]


def bytecode() -> None:
    """The package's bytecode written, as an installed package has it: with
    PYTHONDONTWRITEBYTECODE set, every run would compile it again."""
    import compileall
    compileall.compile_dir(str(common.REPO / "src" / "linuxaio"), quiet=1)


def w8s(tree: Path, rounds: int, cold: bool) -> None:
    env = tool_env()
    bytecode()
    cmds = {
        "linuxaio scan --json": tool_command() + ["scan", "--json", str(tree)],
        # the console script pip writes imports re (some 10 modules) first
        "python -m linuxaio scan --json": [sys.executable, "-m", "linuxaio", "scan", "--json", str(tree)],
        "python os.walk + os.lstat script": [sys.executable, "-c", PY_SCAN, str(tree)],
        "du -s": ["du", "-s", str(tree)],
    }
    for mode in (["cached", "cold"] if cold else ["cached"]):
        for cmd in cmds.values():
            subprocess.run(cmd, env=env, capture_output=True, check=True)   # warm (or check it runs)
        # rounds interleaved (one run of each command per round): a shared
        # machine's load drifts, and each command sees the same drift
        runs: dict = {name: [] for name in cmds}
        for _ in range(rounds):
            for name, cmd in cmds.items():
                runs[name].append(best(lambda: subprocess.run(cmd, env=env, capture_output=True, check=True),
                                       1, setup=drop_caches if mode == "cold" else None))
        times = {name: min(ts) for name, ts in runs.items()}
        ref = times["linuxaio scan --json"]
        print(f"W11s scan, as commands, {mode}")
        for name, t in times.items():
            print(row(name, t, t) + ("" if name == "linuxaio scan --json" else
                                     f"   linuxaio {t / ref:.2f}x faster"))


def w8w(tree: Path, rounds: int) -> None:
    import linuxaio.os as aos

    def plain():
        n = 0
        for _, d, f in os.walk(tree):
            n += len(d) + len(f)
        return n

    async def ours():
        n = 0
        async for _, d, f in aos.walk(str(tree)):
            n += len(d) + len(f)
        return n
    assert plain() == asyncio.run(ours())
    t_os = best(plain, rounds)
    t_lx = best(lambda: asyncio.run(ours()), rounds)
    print("W11w walk (in process, cached)")
    print(row("linuxaio.os.walk (asyncio)", t_lx, t_lx))
    print(row("os.walk", t_os, t_os) + f"   linuxaio {t_os / t_lx:.2f}x as fast")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workloads", nargs="*", default=["W11c", "W11r", "W11s", "W11w"])
    p.add_argument("--files", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cold", action="store_true", help="also W11s with caches dropped (root)")
    p.add_argument("--dir", default=None, help="test data directory")
    a = p.parse_args()
    sys.path.insert(0, str(common.REPO / "src"))
    tree = common.small_tree(a.files, 1, Path(a.dir) if a.dir else common.DATA_DIR)
    print(f"W11: tree {tree} ({a.files} files), filesystem {fstype(tree)}, best of {a.rounds}, "
          f"CPU: {os.cpu_count()} vCPU")
    common.warm(common.read_manifest(tree)[0])
    for w in a.workloads:
        if w == "W11c":
            w8c(tree, a.rounds)
        elif w == "W11r":
            w8r(tree, a.rounds)
        elif w == "W11s":
            w8s(tree, a.rounds, a.cold)
        elif w == "W11w":
            w8w(tree, a.rounds)


if __name__ == "__main__":
    main()
