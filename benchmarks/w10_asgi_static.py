"""W10: static files from an ASGI app, with wrk: stock Starlette vs linuxaio.

One uvicorn worker (--loop asyncio, then uvloop) serves a StaticFiles
directory three ways:

    stock      Starlette's own StaticFiles (anyio's thread pool per step)
    ours       linuxaio.starlette.StaticFiles (lookup and reads on the engine)
    pathsend   Starlette's own StaticFiles behind linuxaio.asgi.PathsendMiddleware

and nginx (one worker, sendfile on) serves the same directory as the bar.
The server runs pinned to one CPU and wrk to the other (taskset), so the
2-CPU machine measures the server.  wrk: 64 connections, files of 4 KiB,
50 KB and 1 MiB, and a Range mix (single ranges, a suffix range, a
two-part multipart, and whole files).  Reported: requests/s, p50/p99
latency, and the server's CPU-seconds per 10,000 requests (utime+stime
of the server process, from /proc).

Scenario 2 (--scenario sync): a plain synchronous `def` endpoint's p99
latency with four requests in flight (wrk -c4: closed-loop, so the
server's CPU is busy with them even "idle"), idle vs while 200 downloads
of the 1 MiB file run (a second wrk, -c200): Starlette runs both the
endpoint and the stock file I/O through the same 40-token thread limiter.
Each probe also reports the share of the server's CPU that other
processes took meanwhile (others_cpu): on a shared machine their slices
of a few ms set a p99 of a few seconds on their own.

    python benchmarks/w10_asgi_static.py --seconds 10
    python benchmarks/w10_asgi_static.py --scenario sync --seconds 10
    python benchmarks/w10_asgi_static.py --loops uvloop --variants stock,ours --files 4k --seconds 3

Needs: wrk and nginx (benchmarks/setup_peers.sh), uvicorn and starlette
(pip install linuxaio[starlette] uvicorn uvloop).  Prints one JSON line per
measurement and a table at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
SERVER_CPU, CLIENT_CPU = "0", "1"
# --nice N: the server and wrk run under `nice -n N` (a shared machine:
# at -20 the other sessions' work on the same CPUs takes far less of it)
NICE: list[str] = []
FILES = {"4k": 4096, "50k": 50_000, "1m": 1 << 20}

APP = textwrap.dedent("""
    import os
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles as StarlettesStaticFiles

    D, VARIANT = os.environ["W10_DIR"], os.environ["W10_VARIANT"]
    if os.environ.get("W10_PACE_NS"):      # --pace-ns: the body steps' budget per loop turn
        import linuxaio._pace
        linuxaio._pace.TURN_BUDGET_NS = int(os.environ["W10_PACE_NS"])
    if os.environ.get("W10_HANDOFF_NS"):   # --handoff-ns: the GIL hand-off's period (0: off)
        import linuxaio._pace
        linuxaio._pace.HANDOFF_NS = int(os.environ["W10_HANDOFF_NS"])
    if os.environ.get("W10_GC_FREEZE"):    # --gc-freeze: an opt-in of the application's, measured
        import gc
        gc.freeze()
    if os.environ.get("W10_GC_THRESHOLD"): # --gc-threshold: the application's, measured
        import gc
        gc.set_threshold(*map(int, os.environ["W10_GC_THRESHOLD"].split(",")))
    if VARIANT == "ours":
        from linuxaio.starlette import StaticFiles
        static = StaticFiles(directory=D)
    elif VARIANT == "pathsend":
        from linuxaio.asgi import PathsendMiddleware
        chunk = int(os.environ.get("W10_PATHSEND_CHUNK") or 0)   # --pathsend-chunk
        static = PathsendMiddleware(StarlettesStaticFiles(directory=D), **({"chunk_size": chunk} if chunk else {}))
    else:
        static = StarlettesStaticFiles(directory=D)

    def sync_endpoint(request):          # a plain def: Starlette runs it in its thread pool
        return PlainTextResponse("ok")

    routes = [Route("/sync", sync_endpoint), Mount("/static", static)]
    lifespan = None
    if os.environ.get("W10_LAG"):
        # --lag (diagnosis only: it costs the loop a wake-up per ms): a 1 ms
        # ticker records how late the loop runs it, in wall time and in the
        # loop thread's CPU time meanwhile (the work the loop did before
        # the tick: its turns' length, whatever else the CPU runs); GET
        # /lag answers the 99th percentile and worst of each since the last.
        import asyncio, contextlib, gc, time
        lags, cpus = [], []
        gcs = {0: [], 1: [], 2: []}     # the collections' CPU time, by generation

        def gc_timer(phase, info, t=[0.0]):
            if phase == "start":
                t[0] = time.thread_time()
            else:
                gcs[info["generation"]].append(time.thread_time() - t[0])

        gc.callbacks.append(gc_timer)

        async def ticker():
            if os.environ.get("W10_NO_TICKER"):   # --app-cpu: the rest of --lag, no ticker
                return
            while True:
                t, c = time.perf_counter(), time.thread_time()
                await asyncio.sleep(0.001)
                lags.append(time.perf_counter() - t - 0.001)
                cpus.append(time.thread_time() - c)

        @contextlib.asynccontextmanager
        async def lifespan(app):
            task = asyncio.get_running_loop().create_task(ticker())
            yield
            task.cancel()

        async def lag(request):
            out = [str(len(lags))]
            for xs in (lags, cpus):
                got = sorted(xs) or [0.0]
                xs.clear()
                out += [f"{got[int(len(got) * 0.99)] * 1e3:.3f}", f"{got[-1] * 1e3:.3f}"]
            for g in (0, 1, 2):       # collections, and the longest one's CPU ms
                out += [str(len(gcs[g])), f"{max(gcs[g], default=0.0) * 1e3:.3f}"]
                gcs[g].clear()
            got = sorted(sync_cpu) or [0.0]  # /sync's loop CPU in the app: p50, p99
            sync_cpu.clear()
            out += [f"{got[len(got) // 2] * 1e3:.3f}", f"{got[int(len(got) * 0.99)] * 1e3:.3f}"]
            return PlainTextResponse(" ".join(out))

        routes.append(Route("/lag", lag))
    app = Starlette(routes=routes, lifespan=lifespan)
    if os.environ.get("W10_LAG"):
        # Each /sync request's loop-thread CPU time from the app's call to
        # its response's start: its wall time on a machine the server has
        # to itself (other processes' preemption left out), the turns of
        # the loop it waited for included.
        sync_cpu = []
        inner_app = app

        async def app(scope, receive, send):
            if scope["type"] != "http" or scope["path"] != "/sync":
                return await inner_app(scope, receive, send)
            t0 = time.thread_time()

            async def timed_send(message):
                if message["type"] == "http.response.start":
                    sync_cpu.append(time.thread_time() - t0)
                await send(message)
            await inner_app(scope, receive, timed_send)
""")

# A Range mix: whole files and ranges of the 50 KB one, round robin per connection.
RANGE_LUA = textwrap.dedent("""
    local reqs = {
      {"/static/50k", "bytes=0-4095"},
      {"/static/50k", "bytes=10000-19999"},
      {"/static/50k", "bytes=-1000"},
      {"/static/50k", "bytes=0-99,40000-40999"},
      {"/static/4k", nil},
      {"/static/50k", nil},
    }
    local i = 0
    request = function()
      i = i % #reqs + 1
      local r = reqs[i]
      if r[2] then
        return wrk.format("GET", r[1], {["Range"] = r[2]})
      end
      return wrk.format("GET", r[1])
    end
""")

NGINX_CONF = textwrap.dedent("""
    worker_processes 1;
    daemon off;
    pid {tmp}/nginx.pid;
    error_log {tmp}/nginx-error.log;
    events {{ worker_connections 4096; }}
    http {{
        access_log off;
        sendfile on;
        tcp_nopush on;
        keepalive_requests 1000000;
        client_body_temp_path {tmp}/body;
        proxy_temp_path {tmp}/proxy;
        fastcgi_temp_path {tmp}/fastcgi;
        uwsgi_temp_path {tmp}/uwsgi;
        scgi_temp_path {tmp}/scgi;
        types {{ application/octet-stream bin; }}
        server {{
            listen 127.0.0.1:{port};
            location /static/ {{ alias {dir}/; }}
        }}
    }}
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, proc: subprocess.Popen, log: Path, path: str = "/static/4k") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if s.recv(12).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not come up")


def cpu_busy(cpu: str) -> float:
    """Seconds the CPU spent busy so far (/proc/stat: all but idle and iowait)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            ticks = list(map(int, line.split()[1:]))
            return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and its threads (anyio's workers included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(out: str) -> dict:
    def ms(label: str) -> float | None:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return round(float(m.group(1)) * _UNITS[m.group(2)], 3) if m else None

    reqs = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"requests": int(reqs.group(1)) if reqs else 0, "rps": float(rps.group(1)) if rps else 0.0,
            "p50_ms": ms("50%"), "p99_ms": ms("99%"),
            "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1).strip() if socket_errors else ""}


def wrk(url: str, seconds: float, connections: int, script: str | None = None,
        background: bool = False) -> subprocess.Popen | dict:
    cmd = NICE + ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    if script:
        cmd += ["-s", script]
    proc = subprocess.Popen(cmd + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if background:
        return proc
    out, _ = proc.communicate(timeout=seconds + 60)
    return parse_wrk(out)


class Server:
    def __init__(self, kind: str, loop: str, directory: Path, tmp: Path) -> None:
        self.port = free_port()
        if kind == "nginx":
            conf = tmp / "nginx.conf"
            conf.write_text(NGINX_CONF.format(tmp=tmp, port=self.port, dir=directory))
            cmd = NICE + ["taskset", "-c", SERVER_CPU, "nginx", "-c", str(conf), "-p", str(tmp)]
            env = None
        else:
            (tmp / "w10_app.py").write_text(APP)
            env = dict(os.environ, W10_DIR=str(directory), W10_VARIANT=kind,
                       PYTHONPATH=os.pathsep.join([str(SRC), str(tmp), os.environ.get("PYTHONPATH", "")]))
            cmd = NICE + ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "uvicorn", "--loop", loop,
                   "--workers", "1", "--port", str(self.port), "--log-level", "warning",
                   "--no-access-log", "w10_app:app"]
        # its log to a file: a pipe nobody reads would stop the server once full
        self.log_path = tmp / f"{kind}-{loop}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        wait_up(self.port, self.proc, self.log_path)

    @property
    def worker_pid(self) -> int:
        """nginx: its one worker process (the master only forks it)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        kids = children.read_text().split() if children.exists() else []
        return int(kids[0]) if kids else self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.worker_pid)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def make_files(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, size in FILES.items():
        p = directory / name
        if not p.exists() or p.stat().st_size != size:
            p.write_bytes(os.urandom(size))


def throughput(args, directory: Path, tmp: Path) -> list[dict]:
    rows = []
    lua = tmp / "ranges.lua"
    lua.write_text(RANGE_LUA)
    servers = [(v, loop) for loop in args.loops for v in args.variants]
    if args.nginx:
        servers.append(("nginx", "-"))
    for kind, loop in servers:
        server = Server(kind, loop, directory, tmp)
        try:
            for name in args.files + (["ranges"] if args.ranges else []):
                url = f"http://127.0.0.1:{server.port}/static/{'50k' if name == 'ranges' else name}"
                wrk(url, 1, args.connections, str(lua) if name == "ranges" else None)   # warm-up
                before = server.cpu()
                got = wrk(url, args.seconds, args.connections, str(lua) if name == "ranges" else None)
                cpu = server.cpu() - before
                row = {"server": kind, "loop": loop, "file": name, **got,
                       "cpu_s_per_10k": round(cpu / got["requests"] * 10_000, 3) if got["requests"] else None}
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            server.close()
    return rows


def http_get(port: int, path: str) -> str:
    """One GET's body (a short answer: /lag)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    return got.split(b"\r\n\r\n", 1)[1].decode()


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def probe(args, server: Server) -> dict:
    """The sync endpoint's latency for args.seconds (wrk -c4), and with
    --lag the loop's lateness meanwhile (the server's 1 ms ticker)."""
    if args.lag:
        http_get(server.port, "/lag")
    sched = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/schedstat")
    run0, wait0 = map(int, sched.read_text().split()[:2])
    cpu0, server0 = cpu_busy(SERVER_CPU), server.cpu()
    t0 = time.monotonic()
    got = wrk(f"http://127.0.0.1:{server.port}/sync", args.seconds, 4)
    run1, wait1 = map(int, sched.read_text().split()[:2])
    cpu1, server1 = cpu_busy(SERVER_CPU), server.cpu()
    # The loop thread's share of the time it ran, and of the time it was
    # ready but another task had the CPU: a loaded machine shows here.
    elapsed = (time.monotonic() - t0) * 1e9
    got.update(loop_ran=round((run1 - run0) / elapsed, 3), loop_runq_wait=round((wait1 - wait0) / elapsed, 3))
    # The share of the server's CPU that other processes took meanwhile
    # (its busy time less the server's own, threads included): other
    # sessions' work there delays requests by whole slices of the
    # scheduler (a few ms, even against nice -20), and sets a p99 of a few
    # seconds on its own; a probe with a few percent here measured the
    # machine, not the server.
    got["others_cpu"] = round(max(0.0, (cpu1 - cpu0) - (server1 - server0)) / (elapsed / 1e9), 3)
    if args.lag:
        n, p99, worst, cpu_p99, cpu_worst, *gc, app_cpu_p50, app_cpu_p99 = http_get(server.port, "/lag").split()
        got.update(lag_ticks=int(n), lag_p99_ms=float(p99), lag_max_ms=float(worst),
                   turn_cpu_p99_ms=float(cpu_p99), turn_cpu_max_ms=float(cpu_worst),
                   gc=[[int(gc[i]), float(gc[i + 1])] for i in range(0, len(gc), 2)],
                   app_cpu_p50_ms=float(app_cpu_p50), app_cpu_p99_ms=float(app_cpu_p99))
    return got


def sync_scenario(args, directory: Path, tmp: Path) -> list[dict]:
    """Idle and busy p99s of the sync endpoint, alternating, args.runs of
    each in one server; the medians decide (a p99 over a few seconds on a
    shared machine moves by 2x from run to run), the spread is reported."""
    rows = []
    if args.lag:
        os.environ["W10_LAG"] = "1"
    for loop in args.loops:
        for kind in args.variants:
            server = Server(kind, loop, directory, tmp)
            try:
                sync_url = f"http://127.0.0.1:{server.port}/sync"
                dl_url = f"http://127.0.0.1:{server.port}/static/1m"
                wrk(sync_url, 2, 4)                 # warm-up: the thread pool, the code paths
                wrk(dl_url, 2, 200)                 # and the download path, the page cache
                idle, busy, dl_rps = [], [], []
                for _ in range(args.runs):
                    idle.append(probe(args, server))
                    downloads = wrk(dl_url, args.seconds + 4, 200, background=True)
                    time.sleep(2)                   # the 200 connections open and busy
                    busy.append(probe(args, server))
                    out, _ = downloads.communicate(timeout=args.seconds + 60)
                    dl_rps.append(parse_wrk(out)["rps"])
                idle_p99 = [r["p99_ms"] for r in idle if r["p99_ms"]]
                busy_p99 = [r["p99_ms"] for r in busy if r["p99_ms"]]
                row = {"server": kind, "loop": loop, "runs": args.runs,
                       "sync_idle_p99_ms": round(median(idle_p99), 3) if idle_p99 else None,
                       "sync_busy_p99_ms": round(median(busy_p99), 3) if busy_p99 else None,
                       "idle_p99s": idle_p99, "busy_p99s": busy_p99,
                       "idle_p50s": [r["p50_ms"] for r in idle], "busy_p50s": [r["p50_ms"] for r in busy],
                       "sync_busy_rps": round(median([r["rps"] for r in busy]), 1),
                       "downloads_rps": round(median(dl_rps), 1)}
                row["ratio"] = (round(row["sync_busy_p99_ms"] / row["sync_idle_p99_ms"], 2)
                                if row["sync_idle_p99_ms"] and row["sync_busy_p99_ms"] else None)
                row["idle_others_cpu"] = [r["others_cpu"] for r in idle]
                row["busy_others_cpu"] = [r["others_cpu"] for r in busy]
                row["busy_loop_ran"] = [r["loop_ran"] for r in busy]
                row["busy_loop_runq_wait"] = [r["loop_runq_wait"] for r in busy]
                if args.lag:
                    row["idle_lag_p99_ms"] = [r.get("lag_p99_ms") for r in idle]
                    row["busy_lag_p99_ms"] = [r.get("lag_p99_ms") for r in busy]
                    row["busy_lag_max_ms"] = [r.get("lag_max_ms") for r in busy]
                    row["idle_turn_cpu_p99_ms"] = [r.get("turn_cpu_p99_ms") for r in idle]
                    row["busy_turn_cpu_p99_ms"] = [r.get("turn_cpu_p99_ms") for r in busy]
                    row["busy_turn_cpu_max_ms"] = [r.get("turn_cpu_max_ms") for r in busy]
                    # per busy probe: [collections, longest CPU ms] of generations 0, 1, 2
                    row["busy_gc"] = [r.get("gc") for r in busy]
                    # /sync's loop CPU in the app (ms), p99 per probe, and the
                    # ratio of the medians: the wall ratio of a quiet machine
                    row["idle_app_cpu_p99_ms"] = [r.get("app_cpu_p99_ms") for r in idle]
                    row["busy_app_cpu_p99_ms"] = [r.get("app_cpu_p99_ms") for r in busy]
                    row["idle_app_cpu_p50_ms"] = [r.get("app_cpu_p50_ms") for r in idle]
                    row["busy_app_cpu_p50_ms"] = [r.get("app_cpu_p50_ms") for r in busy]
                    i, b = median(row["idle_app_cpu_p99_ms"]), median(row["busy_app_cpu_p99_ms"])
                    row["app_cpu_ratio"] = round(b / i, 2) if i else None
                print(json.dumps(row), flush=True)
                rows.append(row)
            finally:
                server.close()
    return rows


def table(rows: list[dict], scenario: str) -> str:
    if scenario == "sync":
        lines = ["| server | loop | /sync p99 idle (ms): median [runs] | /sync p99 with 200 downloads (ms): median [runs] "
                 "| ratio of medians | downloads req/s | others' share of the server's CPU, idle / busy [runs] |",
                 "|---|---|---:|---:|---:|---:|---|"]
        for r in rows:
            spread = lambda xs: ", ".join(f"{x:g}" for x in xs)
            lines.append(f"| {r['server']} | {r['loop']} | {r['sync_idle_p99_ms']} [{spread(r['idle_p99s'])}] "
                         f"| {r['sync_busy_p99_ms']} [{spread(r['busy_p99s'])}] "
                         f"| {r['ratio']} | {r['downloads_rps']:.0f} "
                         f"| [{spread(r['idle_others_cpu'])}] / [{spread(r['busy_others_cpu'])}] |")
        if rows and "app_cpu_ratio" in rows[0]:
            lines += ["", "| server | loop | /sync loop CPU in the app, p99 idle (ms) [runs] | busy [runs] | ratio |",
                      "|---|---|---:|---:|---:|"]
            for r in rows:
                lines.append(f"| {r['server']} | {r['loop']} | [{spread(r['idle_app_cpu_p99_ms'])}] "
                             f"| [{spread(r['busy_app_cpu_p99_ms'])}] | {r['app_cpu_ratio']} |")
        return "\n".join(lines)
    stock = {(r["loop"], r["file"]): r["rps"] for r in rows if r["server"] == "stock"}
    lines = ["| server | loop | file | req/s | x stock | p50 ms | p99 ms | CPU-s / 10k req |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = stock.get((r["loop"], r["file"]))
        ratio = f"{r['rps'] / base:.2f}" if base and r["server"] not in ("stock", "nginx") else ""
        lines.append(f"| {r['server']} | {r['loop']} | {r['file']} | {r['rps']:.0f} | {ratio} | {r['p50_ms']} "
                     f"| {r['p99_ms']} | {r['cpu_s_per_10k']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", choices=["throughput", "sync"], default="throughput")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--loops", type=lambda s: s.split(","), default=["asyncio", "uvloop"])
    p.add_argument("--variants", type=lambda s: s.split(","), default=["stock", "ours", "pathsend"])
    p.add_argument("--files", type=lambda s: s.split(","), default=list(FILES))
    p.add_argument("--no-ranges", dest="ranges", action="store_false")
    p.add_argument("--no-nginx", dest="nginx", action="store_false")
    p.add_argument("--runs", type=int, default=3, help="--scenario sync: idle/busy pairs per server (medians)")
    p.add_argument("--pace-ns", type=int, default=None,
                   help="ours/pathsend: linuxaio._pace.TURN_BUDGET_NS (a huge value turns pacing off)")
    p.add_argument("--handoff-ns", type=int, default=None,
                   help="ours/pathsend: linuxaio._pace.HANDOFF_NS, the GIL hand-off's period (0: off)")
    p.add_argument("--gc-freeze", action="store_true",
                   help="the app calls gc.freeze() at import (an application's opt-in; measures the GC's share)")
    p.add_argument("--gc-threshold", default=None,
                   help="the app calls gc.set_threshold(*GC_THRESHOLD) at import, e.g. 100,10,10 "
                        "(an application's setting; measures the collections' share)")
    p.add_argument("--pathsend-chunk", type=int, default=None, help="PathsendMiddleware's chunk_size (default: its own)")
    p.add_argument("--nice", type=int, default=None, help="run the server and wrk under nice -n NICE")
    p.add_argument("--lag", action="store_true",
                   help="--scenario sync: also the loop's lateness (a 1 ms ticker in the server; diagnosis), "
                        "the collections and each /sync request's loop CPU in the app")
    p.add_argument("--app-cpu", action="store_true",
                   help="--scenario sync: --lag without its ticker (the collections and /sync's loop CPU only: "
                        "the ticker's wake-up per ms is work in the server being measured)")
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "linuxaio-bench-w10")
    args = p.parse_args()
    if args.app_cpu:
        args.lag = True
        os.environ["W10_NO_TICKER"] = "1"
    for tool in ("wrk", "taskset") + (("nginx",) if args.nginx and args.scenario == "throughput" else ()):
        if not shutil.which(tool) and not Path("/usr/sbin", tool).exists():
            sys.exit(f"W10 needs {tool}: bash benchmarks/setup_peers.sh")
    if args.pathsend_chunk:
        os.environ["W10_PATHSEND_CHUNK"] = str(args.pathsend_chunk)
    if args.nice is not None:
        NICE[:] = ["nice", "-n", str(args.nice)]
    if args.pace_ns is not None:
        os.environ["W10_PACE_NS"] = str(args.pace_ns)
    if args.handoff_ns is not None:
        os.environ["W10_HANDOFF_NS"] = str(args.handoff_ns)
    if args.gc_freeze:
        os.environ["W10_GC_FREEZE"] = "1"
    if args.gc_threshold:
        os.environ["W10_GC_THRESHOLD"] = args.gc_threshold
    make_files(args.dir / "static")
    with tempfile.TemporaryDirectory(prefix="w10-") as tmp:
        if args.scenario == "sync":
            rows = sync_scenario(args, args.dir / "static", Path(tmp))
        else:
            rows = throughput(args, args.dir / "static", Path(tmp))
    print()
    print(table(rows, args.scenario))


if __name__ == "__main__":
    main()
