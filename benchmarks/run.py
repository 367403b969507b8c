"""Run the linuxaio benchmarks side by side and write benchmarks/results.md.

    python benchmarks/run.py [W1 W2s W2r W3 W4] [--quick] [--rounds N] [--contenders a,b]

Every contender runs in a fresh subprocess (`python wX.py --contender NAME`,
which may itself run perl or fio), after its own warm-up, on data that the
child has just read into the page cache and checked resident.  With several
rounds the contender order is rotated each round and the median run is shown.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

# name: (script module, data kind, title)
WORKLOADS = {
    "W1": ("w1_random_read", "file", "4 KiB reads at random aligned offsets, 64 in flight"),
    "W2s": ("w2s_stat", "tree", "stat of small files, 64 in flight"),
    "W2r": ("w2r_open_read_close", "tree", "open + read whole + close of small files, 64 in flight"),
    "W3": ("w3_seq_read", "file", "1 MiB sequential reads, 4 in flight"),
    "W4": ("w4_loop_lag", "file", "lag of a 1 ms ticker on the loop under W1 (64 tasks)"),
    "W2f": ("w2f_small_files", "tree", "async with open(p, 'rb') as f: await f.read() of small files, 64 in flight"),
    "W6": ("w6_lines", "lines", "line by line (async for) through a 10 MiB text file of 80-character lines"),
    "W7": ("w7_tree_walk", "tree", "tree walk: rglob(\"*\") + stat of small files"),
    "W2a": ("w2a_aiofiles_program", "tree", "an aiofiles program: read a file, write a file, 1,000 small files"),
}
BASELINE, REFERENCE = "plain", "ioaio"
CEILING = "fio"          # W3: issue 3 sets linuxaio's W3 target as a fraction of fio
PIP_PEERS = ("aiofiles", "aiofile", "caio", "anyio", "trio", "uvloop", "pyaio")


def cli():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workloads", nargs="*", metavar="W", help="W1 W2s W2r W3 W4 W2f W6 W7 (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="short runs on a smaller file: 2 s, 0.5 s warm-up, 256M, 1 round")
    p.add_argument("--seconds", type=float, help="timed run per contender (5; quick 2)")
    p.add_argument("--warmup", type=float, help="untimed warm-up per contender (1; quick 0.5)")
    p.add_argument("--size", help="big file size for W1/W3/W4 (1G; quick 256M)")
    p.add_argument("--files", type=int, default=20000, help="small files for W2s/W2r")
    p.add_argument("--rounds", type=int, help="runs per contender, median shown (3; quick 1)")
    p.add_argument("--contenders", help="comma-separated subset, e.g. plain,ioaio")
    p.add_argument("--dir", type=Path, default=common.DATA_DIR, help="test data directory")
    p.add_argument("--out", type=Path, default=common.HERE / "results.md")
    p.add_argument("--json", type=Path, default=common.HERE / "results.json")
    a = p.parse_args()
    q = a.quick
    a.seconds = a.seconds or (2.0 if q else 5.0)
    a.warmup = a.warmup if a.warmup is not None else (0.5 if q else 1.0)
    a.size = common.parse_size(a.size or ("256M" if q else "1G"))
    a.rounds = a.rounds or (1 if q else 3)
    names = {k.lower(): k for k in WORKLOADS}
    try:
        a.workloads = [names[w.lower()] for w in a.workloads] or list(WORKLOADS)
    except KeyError as e:
        p.error(f"unknown workload {e.args[0]}; choose from {' '.join(WORKLOADS)}")
    a.only = set(a.contenders.split(",")) if a.contenders else None
    return a


def sh(cmd) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=60).stdout.strip()
    except Exception:
        return ""


def environment() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    probe = ("import common\ntry:\n m = common.import_linuxaio()\n"
             " print(getattr(m, '__version__', '?'), m.__file__)\n"
             "except common.Skip as e:\n print(e)")
    peers = {}
    for name in PIP_PEERS:
        try:
            peers[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            peers[name] = "not installed"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "kernel": platform.release(),
        "cpu": f"{cpu} x {os.cpu_count()}",
        "loadavg at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": f"{platform.python_version()} ({sys.executable})",
        "linuxaio": sh(f"cd {shlex.quote(str(common.HERE))} && "
                       f"{shlex.quote(sys.executable)} -c {shlex.quote(probe)}"),
        "perl": sh("perl -e 'printf qq(%vd), $^V'") or "not installed",
        "IO::AIO": sh("perl -MIO::AIO -e 'print $IO::AIO::VERSION'") or "not installed",
        "fio": sh("fio --version") or "not installed",
        "pip peers": ", ".join(f"{k} {v}" for k, v in peers.items()),
    }


def run_child(script: str, name: str, data_args: list[str], a) -> dict:
    cmd = [sys.executable, str(common.HERE / f"{script}.py"), "--contender", name,
           "--seconds", str(a.seconds), "--warmup", str(a.warmup), "--dir", str(a.dir),
           *data_args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=180 + 4 * (a.seconds + a.warmup))
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    try:
        out = common.last_json(proc.stdout)
    except ValueError:
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        out = {"error": tail}
    if "error" in out:
        sys.stderr.write(proc.stderr)
    if warnings:
        out["warnings"] = warnings
    return out


def summarize(runs: dict[str, list[dict]]) -> list[dict]:
    """One row per contender: its median run (by IOPS; by p99 loop lag for W4's
    ticker runs), with the min-max IOPS of the rounds and the ratios."""
    rows = []
    for name, outs in runs.items():
        # iops 0 is a valid run for W4's idle-loop contenders (ticker only)
        good = [o for o in outs if o.get("iops") is not None]
        if not good:
            bad = outs[-1] if outs else {"skipped": "filtered out"}
            status = (f"skipped ({bad['skipped']})" if "skipped" in bad
                      else f"error: {bad.get('error', '?')}")
            rows.append({"contender": name, "status": status})
            continue
        key = "lag_p99_ms" if all("lag_p99_ms" in o for o in good) else "iops"
        med = statistics.median_low(o[key] for o in good)
        row = dict(next(o for o in good if o[key] == med), contender=name, status="ok",
                   runs=len(good), iops_min=min(o["iops"] for o in good),
                   iops_max=max(o["iops"] for o in good))
        if len(good) < len(outs):
            row["status"] = f"ok ({len(outs) - len(good)} runs failed)"
        rows.append(row)
    by = {r["contender"]: r.get("iops") for r in rows}
    for r in rows:
        for key, ref in (("vs_plain", BASELINE), ("vs_ioaio", REFERENCE), ("vs_fio", CEILING)):
            if r.get("iops") and by.get(ref):
                r[key] = r["iops"] / by[ref]
    return rows


def fmt(v, spec="{:,.0f}"):
    return "—" if v is None else spec.format(v)


def table(rows: list[dict]) -> str:
    lag = any("lag_p99_ms" in r for r in rows)      # W4: the ticker's lag columns
    vs_fio = any("vs_fio" in r for r in rows)       # W3
    cols = ["contender", "IOPS", "MB/s", "× plain", "× IO::AIO"] + (["× fio"] if vs_fio else [])
    cols += ["lag ms p50", "lag ms p99", "lag ms max", "ticks"] if lag else []
    cols += ["runs: IOPS min–max", "ops", "seconds", "resident % before/after", "threads"]
    head = ("| " + " | ".join(cols) + " |\n"
            "|---|" + "--:|" * (len(cols) - 1) + "\n")
    lines, notes = [], []
    for r in rows:
        if r.get("note"):
            notes.append(f"- `{r['contender']}`: {r['note']}")
        if "iops" not in r:
            lines.append(f"| {r['contender']} | {r['status']} |" + " |" * (len(cols) - 2))
            continue
        res = f"{fmt(r.get('resident_pct'), '{:g}')}/{fmt(r.get('resident_pct_after'), '{:g}')}"
        cells = [r["contender"], fmt(r["iops"]), fmt(r.get("mbps"), "{:,.1f}"),
                 fmt(r.get("vs_plain"), "{:.2f}x"), fmt(r.get("vs_ioaio"), "{:.2f}x")]
        if vs_fio:
            cells.append(fmt(r.get("vs_fio"), "{:.2f}x"))
        if lag:
            cells += [fmt(r.get(k), "{:.3f}") for k in ("lag_p50_ms", "lag_p99_ms", "lag_max_ms")]
            cells.append(fmt(r.get("ticks")))
        cells += [f"{r['runs']}: {fmt(r['iops_min'])}–{fmt(r['iops_max'])}", fmt(r["ops"]),
                  f"{r['seconds']:.2f}", res, fmt(r.get("threads") or r.get("jobs"))]
        lines.append("| " + " | ".join(cells) + " |")
    out = head + "\n".join(lines) + "\n"
    if notes:
        out += "\nHow each awaitable contender reads:\n" + "\n".join(notes) + "\n"
    return out


NOTES = """\
Notes:
- IOPS = completed operations per second of the timed run; MB/s = 10^6 bytes/s.
  W2s/W2r count one file as one operation (for W2r: open + read + close).
- × plain / × IO::AIO / × fio: IOPS ratio to the `plain` / `ioaio` / `fio`
  contender of the same workload (> 1 means faster).  Median run of the rounds shown.
- Each contender is a fresh process; its data was read fully and checked resident
  (mincore) just before it ran; "resident %" is that check before and after the run.
- `threads`: threads in the contender process at the end of the run (IO::AIO
  starts worker threads on demand, default settings); for fio, its job count.
- fio runs `--numjobs=2` psync processes (not 4 requests in flight), with
  `--invalidate=0` (fio drops the file's page cache by default) and
  `--ramp_time` = the warm-up.
- W2r `ioaio` chains aio_open -> aio_read -> aio_close, like `linuxaio` (not aio_load).
- `linuxaio` (no suffix) is the callback API; `linuxaio-<loop>` and the other
  awaitable contenders run `depth` tasks on one event loop (asyncio's default
  loop unless named), each awaiting one request at a time; W1's get the bytes
  back.  `linuxaio-batch*` count each pread_many call as 64 reads.
- W4: `ops`/IOPS are the W1 reads completed next to the ticker (× plain = the
  W1 throughput reached); lag = how late each `sleep(0.001)` of the ticker
  woke.  The idle* rows run the ticker alone (no reads).  With several rounds
  the run with the median p99 lag is shown.
"""


def markdown(env: dict, a, sections: list[tuple[str, str, list[dict]]]) -> str:
    out = ["# linuxaio benchmark results\n",
           f"`python benchmarks/run.py {' '.join(sys.argv[1:])}`\n",
           "| | |\n|---|---|"]
    out += [f"| {k} | {v} |" for k, v in env.items()]
    out += [f"| parameters | {a.seconds:g} s timed + {a.warmup:g} s warm-up per run, "
            f"{a.rounds} round(s), big file {a.size // common.MiB} MiB, "
            f"{a.files} small files |", ""]
    for wl, title, rows in sections:
        out += [f"## {wl}: {title}\n", table(rows)]
    out.append(NOTES)
    return "\n".join(out)


def main():
    a = cli()
    env = environment()
    for k, v in env.items():
        print(f"{k:>16}: {v}")
    sections, raw = [], {}
    for wl in a.workloads:
        script, kind, title = WORKLOADS[wl]
        if kind == "file":
            path = common.big_file(a.size, a.dir)
            title += f" (cached {a.size // common.MiB} MiB file)"
            data_args = ["--file", str(path)]
        elif kind == "lines":   # the script makes its own text file under --dir
            data_args = []
        else:
            path = common.small_tree(a.files, 1, a.dir)
            title = title.replace("small files", f"{a.files:,} small files (1–16 KiB)")
            data_args = ["--tree", str(path)]
        names = list(importlib.import_module(script).CONTENDERS)
        if a.only:
            names = [n for n in names if n in a.only]
        print(f"\n== {wl}: {title}")
        runs = {n: [] for n in names}
        for rnd in range(a.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)] if names else []
            for name in order:
                out = run_child(script, name, data_args, a)
                runs[name].append(out)
                shown = {k: out[k] for k in ("iops", "mbps", "lag_p99_ms", "resident_pct",
                                             "skipped", "error") if k in out}
                print(f"  round {rnd + 1} {name:>19}: {shown}", flush=True)
        rows = summarize(runs)
        print(table(rows))
        sections.append((wl, title, rows))
        raw[wl] = {"title": title, "runs": runs, "summary": rows}
    a.out.write_text(markdown(env, a, sections))
    a.json.write_text(json.dumps({"environment": env, "results": raw}, indent=1))
    print(f"wrote {a.out} and {a.json}")


if __name__ == "__main__":
    main()
