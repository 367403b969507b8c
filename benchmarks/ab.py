"""A/B: two builds of linuxaio side by side in one sitting, as ratios.

    python benchmarks/ab.py --a /path/to/old/src --b src W1:linuxaio W1:linuxaio-asyncio \\
        W2s:linuxaio-stat W7:linuxaio-asyncio seq-stat --rounds 5

Each item is WORKLOAD:contender (run.py's workloads) or `seq-stat` (sequential
`await linuxaio.os.stat(p)` under asyncio, microseconds per await).  Every
round runs each item once per build, the two builds in alternating order, each
in a fresh process with PYTHONPATH set to that build's src directory (an
in-place build: `python setup.py build_ext --inplace`).  It prints the median
of each side and B/A: the issues' "within 5% of before" checks.

On a noisy machine (other jobs come and go) the medians of each side can be
moved by a burst that hit one side's runs more than the other's.  So each
round's two runs, back to back, also give one paired ratio B/A, and the
verdict is taken from the paired ratios: their median, with a distribution-free
~95% interval for it (order statistics of the binomial; 11 rounds or more
make one), against --within (5%): "B within 5% of A" when the interval's low
end is at or above 0.95, "B slower" when its high end is below, else
"undecided: more rounds".  The same build under two engines:

    python benchmarks/ab.py --a src --b src --a-env LINUXAIO_ENGINE=threads \
        --b-env LINUXAIO_ENGINE=auto --rounds 15 --seconds 1 \
        W1:linuxaio W1:linuxaio-asyncio W2s:linuxaio W3:linuxaio W4:linuxaio-asyncio
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import run  # noqa: E402

SEQ_STAT = """
import asyncio, os, sys, time
import linuxaio
from linuxaio import os as aos
p = sys.argv[1]
async def main(n):
    for _ in range(2000):
        await aos.stat(p)
    t0 = time.perf_counter()
    for _ in range(n):
        await aos.stat(p)
    return (time.perf_counter() - t0) / n * 1e6
print(asyncio.run(main(int(sys.argv[2]))))
"""


def measure(item: str, src: Path, a, extra_env: dict | None = None) -> float:
    env = dict(os.environ, PYTHONPATH=str(src.resolve()), **(extra_env or {}))
    if item == "seq-stat":
        proc = subprocess.run([sys.executable, "-c", SEQ_STAT, __file__, "100000"],
                              capture_output=True, text=True, env=env, timeout=120)
        return float(proc.stdout.strip().splitlines()[-1])
    wl, name = item.split(":")
    script, kind, _ = run.WORKLOADS[wl]
    if kind == "file":
        data = ["--file", str(common.big_file(a.size, a.dir))]
    elif kind == "lines":
        data = []
    else:
        data = ["--tree", str(common.small_tree(a.files, 1, a.dir))]
    cmd = [sys.executable, str(common.HERE / f"{script}.py"), "--contender", name,
           "--seconds", str(a.seconds), "--warmup", str(a.warmup), "--dir", str(a.dir), *data]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    out = common.last_json(proc.stdout)
    if "iops" not in out:
        raise SystemExit(f"{item} with {src}: {out} {proc.stderr[-500:]}")
    return out["iops"]


def median_interval(xs: list[float], conf: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median of xs: the order
    statistics (k, n-1-k) with the largest k whose binomial coverage is
    still >= conf.  (min, max) when there are too few values for it."""
    from math import comb
    v, n = sorted(xs), len(xs)
    best = None
    for k in range(n // 2):
        cover = 1 - 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n
        if cover < conf:
            break
        best = k + 1
    if best is None:
        return v[0], v[-1]
    return v[best - 1], v[n - best]


def verdict(ratios: list[float], within: float, lower_is_better: bool) -> str:
    """From paired B/A ratios (higher: B better, for IOPS)."""
    rs = [1 / r for r in ratios] if lower_is_better else ratios
    lo, hi = median_interval(rs)
    floor = 1 - within
    if lo >= floor:
        return f"B within {within:.0%} of A (or better)"
    if hi < floor:
        return f"B slower than A by more than {within:.0%}"
    return "undecided: more rounds"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("items", nargs="+", help="WORKLOAD:contender or seq-stat")
    p.add_argument("--a", type=Path, required=True, help="src directory of build A (before)")
    p.add_argument("--b", type=Path, required=True, help="src directory of build B (after)")
    p.add_argument("--a-env", action="append", default=[], metavar="K=V",
                   help="environment of side A's processes (e.g. LINUXAIO_INLINE=0: the "
                        "same build with inline-first awaits off)")
    p.add_argument("--b-env", action="append", default=[], metavar="K=V")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--size", type=common.parse_size, default=common.parse_size("256M"))
    p.add_argument("--files", type=int, default=20000)
    p.add_argument("--dir", type=Path, default=common.DATA_DIR)
    p.add_argument("--within", type=float, default=0.05,
                   help="the verdict's tolerance, from the paired ratios (default 0.05)")
    a = p.parse_args()
    cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
               if ln.startswith("model name"))
    print(f"cpu: {cpu} x {os.cpu_count()}; A={a.a}  B={a.b}")
    results = {}
    for item in a.items:
        runs = {"A": [], "B": []}
        for rnd in range(a.rounds):
            for side in (("A", "B") if rnd % 2 == 0 else ("B", "A")):
                env = dict(kv.split("=", 1) for kv in (a.a_env if side == "A" else a.b_env))
                runs[side].append(measure(item, a.a if side == "A" else a.b, a, env))
        ma, mb = statistics.median(runs["A"]), statistics.median(runs["B"])
        lower = item == "seq-stat"
        unit = "us/await (lower is better)" if lower else "IOPS"
        pairs = [b / a for a, b in zip(runs["A"], runs["B"])]   # each round's two runs
        lo, hi = median_interval(pairs)
        print(f"{item:>24}: A {ma:,.2f}  B {mb:,.2f}  B/A {mb / ma:.3f}  ({unit}; "
              f"A {min(runs['A']):,.1f}-{max(runs['A']):,.1f}, "
              f"B {min(runs['B']):,.1f}-{max(runs['B']):,.1f})", flush=True)
        print(f"{'':>24}  paired B/A: median {statistics.median(pairs):.3f}, ~95% interval "
              f"{lo:.3f}-{hi:.3f} over {len(pairs)} rounds: {verdict(pairs, a.within, lower)}",
              flush=True)
        results[item] = {"A": runs["A"], "B": runs["B"], "ratio": mb / ma,
                         "paired_median": statistics.median(pairs), "paired_interval": [lo, hi]}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
