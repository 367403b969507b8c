"""PathsendMiddleware and linuxaio.starlette through real servers: uvicorn
(asyncio and uvloop) and hypercorn on trio, each in a child process on a
socket this test made.  What comes out is compared byte for byte with
Starlette's own StaticFiles through the same server; a client that goes
away mid-download must leave no fd open in the server; a thousand
downloads at once must all complete; no request path may reach a file
outside the served directory."""
import asyncio
import hashlib
import http.client
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

import linuxaio  # noqa: E402

# the servers import the linuxaio this test does (the worktree's, or CI's install)
PACKAGE_ROOT = Path(linuxaio.__file__).resolve().parent.parent
SIZES = {"empty": 0, "one": 1, "page": 4096, "mib": 1 << 20, "big": 100 << 20}

APP = textwrap.dedent("""
    import os
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles as StarlettesStaticFiles
    from linuxaio.asgi import PathsendMiddleware
    from linuxaio.starlette import StaticFiles

    D = os.environ["SERVED_DIR"]
    app = Starlette(routes=[
        Mount("/stock", StarlettesStaticFiles(directory=D)),
        Mount("/ours", StaticFiles(directory=D)),
        Mount("/pathsend", PathsendMiddleware(StarlettesStaticFiles(directory=D))),
        Mount("/both", PathsendMiddleware(StaticFiles(directory=D))),
    ])
""")

SERVERS = {
    "uvicorn-asyncio": ["-m", "uvicorn", "--loop", "asyncio", "--fd", "{fd}", "app:app"],
    "uvicorn-uvloop": ["-m", "uvicorn", "--loop", "uvloop", "--fd", "{fd}", "app:app"],
    # --backlog: hypercorn listen()s again on the socket it is given, with
    # its default 100; a thousand clients connecting at once to a server
    # slowed by the machine's load (or ASan) then overflowed it, and the
    # kernel reset connections (dmesg: "Possible SYN flooding").
    # --keep-alive: hypercorn closes a connection whose request it has not
    # read within 5 s of taking it; so slowed, it did so to some of the
    # thousand, their requests unread (the kernel then resets them).
    "hypercorn-trio": ["-m", "hypercorn", "-k", "trio", "-w", "0", "--backlog", "2048",
                       "--keep-alive", "600", "--bind", "fd://{fd}", "app:app"],
}


class Server:
    def __init__(self, kind, served, workdir):
        self.kind = kind
        self.stock_answers = {}
        if kind.startswith("hypercorn"):
            pytest.importorskip("hypercorn")
            pytest.importorskip("trio")
        if kind.endswith("uvloop"):
            pytest.importorskip("uvloop")
        (workdir / "app.py").write_text(APP)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(2048)
        self.port = self.sock.getsockname()[1]
        fd = self.sock.fileno()
        env = dict(os.environ, SERVED_DIR=str(served),
                   PYTHONPATH=os.pathsep.join([str(PACKAGE_ROOT), str(workdir), os.environ.get("PYTHONPATH", "")]))
        args = [a.format(fd=fd) for a in SERVERS[kind]]
        # the server's log to a file: a pipe nobody reads would stop it once full
        self.log = open(workdir / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, *args], cwd=workdir, env=env, pass_fds=[fd],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.get("/stock/one")
                break
            except (OSError, http.client.HTTPException):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start: {(workdir / 'server.log').read_text()[-2000:]}")
                time.sleep(0.1)

    def get(self, path, headers=None):
        """(status, headers as sent, sha256 and length of the body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            digest, n = hashlib.sha256(), 0
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                n += len(chunk)
            return resp.status, resp.getheaders(), digest.hexdigest(), n
        finally:
            conn.close()

    def stock(self, name):
        """Starlette's own answer for /name, asked once per server."""
        if name not in self.stock_answers:
            self.stock_answers[name] = self.get(f"/stock/{name}")
        return self.stock_answers[name]

    def fds_on(self, path):
        found = []
        for name in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                if os.readlink(f"/proc/{self.proc.pid}/fd/{name}") == str(path):
                    found.append(name)
            except OSError:
                pass
        return found

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.sock.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("served")
    for name, size in SIZES.items():
        with open(d / name, "wb") as f:
            left = size
            while left:
                f.write(os.urandom(min(left, 1 << 20)))
                left -= min(left, 1 << 20)
    (d / "sub").mkdir()
    (d / "sub" / "page.html").write_text("<p>inside</p>")
    # what must never be served: beside the directory, and links to it
    (d.parent / "secret.txt").write_text("SECRET")
    os.symlink(d.parent / "secret.txt", d / "abs-link-out")
    os.symlink("../secret.txt", d / "rel-link-out")
    os.symlink("sub/page.html", d / "link-in")
    return d


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request, served, tmp_path_factory):
    s = Server(request.param, served, tmp_path_factory.mktemp("app"))
    yield s
    s.close()


def without_date(headers):
    return [(k, v) for k, v in headers if k.lower() != "date"]


@pytest.mark.aio_timeout(300)
@pytest.mark.parametrize("name", list(SIZES))
@pytest.mark.parametrize("route", ["ours", "pathsend", "both"])
def test_bodies_and_headers_equal_starlettes_own(server, served, name, route):
    want = server.stock(name)
    got = server.get(f"/{route}/{name}")
    assert want[0] == 200 and want[3] == SIZES[name]
    assert want[2] == hashlib.sha256((served / name).read_bytes()).hexdigest()
    # byte for byte: the status, every header in its order (but the server's
    # clock, Date), the body
    assert (got[0], without_date(got[1]), got[2], got[3]) == (want[0], without_date(want[1]), want[2], want[3])


@pytest.mark.parametrize("headers", [{"Range": "bytes=0-99"}, {"Range": "bytes=5-10,4000-"},
                                     {"Range": "bytes=99999-"}, {"If-None-Match": "*"}])
def test_ranges_and_conditionals_equal_starlettes_own(server, headers):
    want, got = server.get("/stock/page", headers), server.get("/ours/page", headers)
    if "5-10" in headers.get("Range", ""):
        # multipart: a random boundary each time; same status and length
        assert (got[0], got[3]) == (want[0], want[3]) == (206, want[3])
    else:
        assert (got[0], without_date(got[1]), got[2]) == (want[0], without_date(want[1]), want[2])


@pytest.mark.aio_timeout(120)
@pytest.mark.parametrize("route", ["pathsend", "both", "ours"])
def test_a_client_gone_after_the_first_chunk_leaves_no_fd_open(server, served, route):
    big = served / "big"
    s = socket.create_connection(("127.0.0.1", server.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(f"GET /{route}/big HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = b""
    while len(got) < 300_000:
        got += s.recv(65536)
    # mid-download: the server holds the file open (so the check below can fail)
    assert server.fds_on(big) != []
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")   # RST
    s.close()
    wait_until_closed(server, big)


def wait_until_closed(server, path):
    """The server's fds on path are all closed within a minute (a body's
    last bytes reach the client just before the server closes its file)."""
    deadline = time.monotonic() + 60
    while server.fds_on(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.fds_on(path) == []


@pytest.mark.aio_timeout(300)
@pytest.mark.parametrize("route", ["pathsend", "ours"])
def test_a_thousand_concurrent_downloads_complete(server, served, route, tmp_path):
    if server.kind == "hypercorn-trio":
        # A server of its own: hypercorn's trio worker, once it has served the
        # other tests (clients reset mid-body), answered this one slowly.
        # (Starlette's own StaticFiles there: 0 of 1,000 in a minute; not run.)
        server = Server(server.kind, served, tmp_path)
        try:
            return thousand_downloads(server, served, route)
        finally:
            server.close()
    thousand_downloads(server, served, route)


def thousand_downloads(server, served, route):
    page = (served / "page").read_bytes()

    async def one(path, expect):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
        writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return head.startswith(b"HTTP/1.1 200") and body == expect

    async def main():
        return await asyncio.gather(*(one(f"/{route}/page", page) for _ in range(1000)))

    results = asyncio.run(asyncio.wait_for(main(), 240))
    assert sum(results) == 1000
    wait_until_closed(server, served / "page")


TRAVERSALS = ["/ours/../secret.txt", "/ours/%2e%2e/secret.txt", "/ours/%2E%2E/secret.txt",
              "/ours/..%2fsecret.txt", "/ours/sub/..%2f..%2fsecret.txt", "/ours//etc/passwd",
              "/ours/%2fetc%2fpasswd", "/ours/abs-link-out", "/ours/rel-link-out",
              "/ours/sub/../../secret.txt", "/ours/%2e%2e%2fsecret.txt"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_reaches_outside_the_directory(server, path):
    for route in ("/ours", "/both", "/pathsend", "/stock"):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(f"GET {route + path[len('/ours'):]} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        assert b"SECRET" not in data and b"root:" not in data, (route, path, data[:200])


def test_a_symlink_inside_the_directory_is_served(server):
    assert server.get("/ours/link-in")[0] == 200 == server.get("/stock/link-in")[0]
    assert server.get("/ours/link-in")[2] == server.get("/stock/link-in")[2]
