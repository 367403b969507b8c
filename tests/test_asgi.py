"""linuxaio.asgi.PathsendMiddleware, called directly as an ASGI app (no
server): what it advertises, how it cuts a file into bodies, and that the
file is closed however the transfer ends, under asyncio, uvloop and trio.
Through real servers (uvicorn, hypercorn): test_asgi_servers.py."""
import asyncio
import os

import pytest

from linuxaio.asgi import DEFAULT_CHUNK_SIZE, PathsendMiddleware

trio = pytest.importorskip("trio")
uvloop = pytest.importorskip("uvloop")

BACKENDS = ["asyncio", "uvloop", "trio"]


def run(backend, fn, *args):
    if backend == "trio":
        return trio.run(fn, *args)
    if backend == "uvloop":
        return uvloop.run(fn(*args))
    return asyncio.run(fn(*args))


async def sleep_forever(backend):
    if backend == "trio":
        await trio.sleep_forever()
    await asyncio.Event().wait()


def fds_on(path):
    """This process's fds open on path."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                found.append(int(name))
        except OSError:
            pass
    return found


def pathsend_app(path, seen=None):
    """A Starlette-style app: headers, then pathsend if offered (else a body)."""
    async def app(scope, receive, send):
        if seen is not None:
            seen.append(scope)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(os.path.getsize(path)).encode())]})
        if "http.response.pathsend" in scope.get("extensions", {}):
            await send({"type": "http.response.pathsend", "path": str(path)})
        else:
            await send({"type": "http.response.body", "body": b"app's own", "more_body": False})
    return app


def http_scope(**extra):
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
             "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"", "headers": []}
    scope.update(extra)
    return scope


async def quiet_receive():
    return {"type": "http.request", "body": b"", "more_body": False}


@pytest.fixture
def data(tmp_path):
    def make(size, name="f.bin"):
        p = tmp_path / name
        p.write_bytes(os.urandom(size))
        return p
    return make


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size,chunk", [(0, 10), (1, 10), (10, 10), (25, 10), (4096, 1000),
                                        (300_000, DEFAULT_CHUNK_SIZE)])
def test_the_file_goes_out_in_chunk_size_bodies(backend, size, chunk, data):
    path = data(size)
    sent = []

    async def send(message):
        sent.append(message)

    async def main():
        await PathsendMiddleware(pathsend_app(path), chunk_size=chunk)(http_scope(), quiet_receive, send)

    run(backend, main)
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert b"".join(m["body"] for m in bodies) == path.read_bytes()
    assert [len(m["body"]) for m in bodies[:-1]] == [chunk] * (len(bodies) - 1)
    assert 0 < len(bodies) == max(1, -(-size // chunk))
    assert [m["more_body"] for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert all(type(m["body"]) is bytes for m in bodies)      # ASGI: bytes, nothing else
    assert not any(m["type"] == "http.response.pathsend" for m in sent)
    assert fds_on(path) == []


def test_the_extension_is_advertised_where_the_server_lacks_it(data):
    path, seen = data(5), []
    server_scope = http_scope(extensions={"http.response.trailers": {}})
    asyncio.run(PathsendMiddleware(pathsend_app(path, seen))(server_scope, quiet_receive, _ignore))
    assert seen[0]["extensions"] == {"http.response.trailers": {}, "http.response.pathsend": {}}
    assert server_scope["extensions"] == {"http.response.trailers": {}}   # the server's own untouched


async def _ignore(message):
    pass


def test_a_server_with_pathsend_is_left_to_send_it(data):
    path, seen, sent = data(5), [], []
    scope = http_scope(extensions={"http.response.pathsend": {}})

    async def send(message):
        sent.append(message)

    asyncio.run(PathsendMiddleware(pathsend_app(path, seen))(scope, quiet_receive, send))
    assert seen == [scope]
    assert sent[-1] == {"type": "http.response.pathsend", "path": str(path)}


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
def test_other_scopes_pass_through(kind):
    seen = []

    async def app(scope, receive, send):
        seen.append(scope)

    scope = {"type": kind}
    asyncio.run(PathsendMiddleware(app)(scope, quiet_receive, _ignore))
    assert seen == [scope]


def test_other_messages_pass_through(data):
    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    async def send(message):
        sent.append(message)

    asyncio.run(PathsendMiddleware(app)(http_scope(), quiet_receive, send))
    assert sent == [{"type": "http.response.start", "status": 204, "headers": []},
                    {"type": "http.response.body", "body": b"x"}]


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                     ("64", TypeError), (True, TypeError)])
def test_bad_chunk_size_is_refused(bad, exc):
    with pytest.raises(exc):
        PathsendMiddleware(_ignore, chunk_size=bad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_missing_file_raises_its_oserror(backend, tmp_path):
    path = tmp_path / "gone"

    async def app(scope, receive, send):
        await send({"type": "http.response.pathsend", "path": str(path)})

    with pytest.raises(FileNotFoundError) as info:
        run(backend, PathsendMiddleware(app), http_scope(), quiet_receive, _ignore)
    assert info.value.filename == str(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_file_is_closed_when_send_fails(backend, data):
    path, calls = data(100), []
    error = OSError("client gone")

    async def send(message):
        if message["type"] == "http.response.body":
            calls.append(message)
            assert fds_on(path) != []          # open while it goes out
            raise error

    with pytest.raises(OSError) as info:
        run(backend, PathsendMiddleware(pathsend_app(path), chunk_size=10), http_scope(), quiet_receive, send)
    assert info.value is error
    assert len(calls) == 1
    assert fds_on(path) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_disconnect_stops_the_transfer_and_closes_the_file(backend, data):
    """uvicorn drops a vanished client's bodies without an error: only the
    http.disconnect from receive() tells."""
    path = data(1000)
    bodies, gone = [], []

    async def receive():
        if not gone:
            gone.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        while len(bodies) < 2:
            await (trio.sleep(0) if backend == "trio" else asyncio.sleep(0))
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.body":
            bodies.append(message)
            await (trio.sleep(0.01) if backend == "trio" else asyncio.sleep(0.01))

    async def app(scope, receive, send):
        assert (await receive())["type"] == "http.request"
        await pathsend_app(path)(scope, receive, send)
        # the app's next receive hears of the disconnect too
        assert (await receive())["type"] == "http.disconnect"

    run(backend, PathsendMiddleware(app, chunk_size=10), http_scope(), receive, send)
    assert 2 <= len(bodies) < 10      # of 100 chunks
    assert fds_on(path) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cancelled_transfer_closes_the_file(backend, data):
    path = data(1000)
    started = []

    async def send(message):
        if message["type"] == "http.response.body":
            started.append(message)
            await sleep_forever(backend)

    async def receive():
        await sleep_forever(backend)

    app = PathsendMiddleware(pathsend_app(path), chunk_size=10)

    async def main():
        if backend == "trio":
            with trio.move_on_after(0.3):
                await app(http_scope(), receive, send)
        else:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(app(http_scope(), receive, send), 0.3)
        # the shielded close has finished by the time the cancellation is seen
        assert fds_on(path) == []

    run(backend, main)
    assert len(started) == 1
    assert fds_on(path) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_transfers_at_once(backend, data):
    path = data(50_000)
    want = path.read_bytes()
    got = []

    async def one():
        parts = []

        async def send(message):
            if message["type"] == "http.response.body":
                parts.append(message["body"])

        await PathsendMiddleware(pathsend_app(path), chunk_size=4096)(http_scope(), quiet_receive, send)
        got.append(b"".join(parts))

    async def main():
        if backend == "trio":
            async with trio.open_nursery() as nursery:
                for _ in range(200):
                    nursery.start_soon(one)
        else:
            await asyncio.gather(*(one() for _ in range(200)))

    run(backend, main)
    assert len(got) == 200 and all(g == want for g in got)
    assert fds_on(path) == []


def test_import_linuxaio_never_imports_starlette_or_the_integrations():
    import subprocess
    import sys
    code = ("import sys, linuxaio, linuxaio.os, linuxaio.asgi; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('starlette', 'anyio', 'linuxaio.starlette')"
            " or m == 'linuxaio.starlette']; print(bad)")
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_no_watcher_while_sends_do_not_wait(backend, data):
    """The disconnect watcher (a task) starts only at a send that waits:
    a download whose sends return at once creates none."""
    path = data(10_000)
    tasks, got = [], []

    async def receive():
        raise AssertionError("no watcher while sends do not wait")

    async def send(message):
        tasks.append(len(asyncio.all_tasks()))
        if message["type"] == "http.response.body":
            got.append(message["body"])

    scope = http_scope(asgi={"version": "3.0", "spec_version": "2.3"})
    run(backend, PathsendMiddleware(pathsend_app(path), chunk_size=1000), scope, receive, send)
    assert set(tasks) == {1}
    assert b"".join(got) == path.read_bytes()


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_a_send_waiting_for_a_client_that_left_is_stopped(backend, data):
    path = data(10_000)
    bodies = []
    gone = asyncio.Event()

    async def receive():
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.body":
            bodies.append(message)
            gone.set()
            await asyncio.Event().wait()      # for ever

    async def main():
        await asyncio.wait_for(PathsendMiddleware(pathsend_app(path), chunk_size=1000)(
            http_scope(), receive, send), 60)

    run(backend, main)
    assert len(bodies) == 1
    assert fds_on(path) == []


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_a_silent_server_past_watch_after_still_hears_the_disconnect(backend, data, monkeypatch):
    """A server that drops a vanished client's bodies (uvicorn) never makes
    a send wait: past WATCH_AFTER bytes the watcher starts anyway, and the
    transfer stops at its next send after the watcher ran (the body steps
    yield the loop a turn at least every 100 us: _pace.py)."""
    import linuxaio.asgi
    monkeypatch.setattr(linuxaio.asgi, "WATCH_AFTER", 3000)
    path = data(1_000_000)
    bodies, heard_at = [], []

    async def receive():
        heard_at.append(len(bodies))
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.body":
            bodies.append(message)

    run(backend, PathsendMiddleware(pathsend_app(path), chunk_size=1000), http_scope(), receive, send)
    assert heard_at and heard_at[0] >= 3
    assert len(bodies) < 1000
    assert fds_on(path) == []
