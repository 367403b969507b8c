"""linuxaio.starlette.FileResponse closes a whole file at its end, before
the last body goes: the last send completes the response, Starlette then
cancels the task that sends the file (ASGI < 2.4: a task group beside a
disconnect listener), and a close still awaited there would take that
cancellation, a CancelledError whose traceback holds every frame of the
transfer in a reference cycle, per download (garbage the collector pays
for in the loop's turns: W10's sync scenario)."""
import asyncio
import gc
import os
import time

import pytest

pytest.importorskip("starlette")
from linuxaio import starlette as lx_starlette  # noqa: E402

uvloop = pytest.importorskip("uvloop")

CHUNK = 64 * 1024


def fds_on(path):
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                found.append(int(name))
        except OSError:
            pass
    return found


async def serve(response, scope):
    """A server's side of one response (ASGI 2.3, as uvicorn's): receive()
    answers http.disconnect once the response is complete (uvicorn's
    send of the last body marks it so, and returns without suspending);
    every body message notes the fds open on the file at its send."""
    complete = asyncio.Event()
    bodies = []

    async def receive():
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        await asyncio.sleep(0)      # a send may wait first (flow control), as uvicorn's
        if message["type"] == "http.response.body":
            bodies.append((message.get("body", b""), message.get("more_body", False), fds_on(response.path)))
            if not message.get("more_body", False):
                complete.set()
    await response(scope, receive, send)
    return bodies


def scope_of(headers=()):
    return {"type": "http", "method": "GET", "path": "/", "headers": list(headers),
            "asgi": {"spec_version": "2.3"}, "extensions": {}}


def run(loop_kind, coro):
    return uvloop.run(coro) if loop_kind == "uvloop" else asyncio.run(coro)


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@pytest.mark.parametrize("size", [3 * CHUNK + 100, 4 * CHUNK])
def test_the_file_closes_before_the_last_body(tmp_path, loop_kind, size):
    """The last body goes with the file closed, the others with it open;
    the bytes are the file's (a size that is a whole number of chunks ends
    with an empty read, which closes it)."""
    path = tmp_path / "f"
    data = os.urandom(size)
    path.write_bytes(data)

    async def main():
        return await serve(lx_starlette.FileResponse(path, stat_result=os.stat(path)), scope_of())
    bodies = run(loop_kind, main())
    assert b"".join(b for b, _, _ in bodies) == data
    assert [more for _, more, _ in bodies] == [True] * (len(bodies) - 1) + [False]
    assert all(len(fds) == 1 for _, _, fds in bodies[:-1])
    assert bodies[-1][2] == []
    assert fds_on(path) == []


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_no_cancellation_reaches_the_transfer(tmp_path, loop_kind):
    """No CancelledError is left whose traceback runs through this
    module's frames (the transfer's read or close) after 20 downloads."""
    path = tmp_path / "f"
    path.write_bytes(os.urandom(5 * CHUNK + 1))

    async def main():
        for _ in range(20):
            await serve(lx_starlette.FileResponse(path, stat_result=os.stat(path)), scope_of())

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run(loop_kind, main())
        gc.collect()
        ours = []
        for obj in gc.garbage:
            if isinstance(obj, asyncio.CancelledError):
                tb = obj.__traceback__
                while tb is not None:
                    if tb.tb_frame.f_code.co_filename == lx_starlette.__file__:
                        ours.append(obj)
                        break
                    tb = tb.tb_next
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert ours == []


def test_ranges_still_read_after_the_end(tmp_path):
    """Ranges seek and read again: their file is not closed at a short
    read (a suffix range, then a range at the start, in one multipart)."""
    path = tmp_path / "f"
    data = os.urandom(2 * CHUNK)
    path.write_bytes(data)

    async def main():
        response = lx_starlette.FileResponse(path, stat_result=os.stat(path))
        return await serve(response, scope_of([(b"range", b"bytes=-10,0-9")]))
    bodies = asyncio.run(main())
    body = b"".join(b for b, _, _ in bodies)
    assert data[-10:] in body and data[:10] in body
    # The close is shielded: the cancelled transfer (the task group's, after
    # the last send) leaves it running, so it may end just after the loop.
    deadline = time.monotonic() + 10
    while fds_on(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fds_on(path) == []


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_a_whole_file_goes_out_in_the_calling_task_with_no_watcher(tmp_path, loop_kind):
    """ASGI 2.3, sends that never wait: no task group, no listener task (a
    download's objects are what the collector walks), receive() never
    called; the bytes are the file's, in chunk_size bodies."""
    path = tmp_path / "f"
    path.write_bytes(os.urandom(3 * CHUNK + 7))
    tasks, bodies = [], []

    async def receive():
        raise AssertionError("no listener while sends do not wait")

    async def send(message):
        tasks.append(len(asyncio.all_tasks()))
        if message["type"] == "http.response.body":
            bodies.append(message["body"])

    async def main():
        await lx_starlette.FileResponse(path)(scope_of(), receive, send)

    run(loop_kind, main())
    assert set(tasks) == {1}
    assert [len(b) for b in bodies] == [CHUNK, CHUNK, CHUNK, 7]
    assert b"".join(bodies) == path.read_bytes()
    assert fds_on(path) == []


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_a_send_waiting_for_a_client_that_left_is_stopped(tmp_path, loop_kind):
    """A send that suspends starts the watcher; the disconnect it hears
    stops that send (not the task: the response returns normally and runs
    its background), and the file is closed."""
    path = tmp_path / "f"
    path.write_bytes(os.urandom(4 * CHUNK))
    gone = asyncio.Event()
    background, bodies = [], []

    async def receive():
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            if len(bodies) == 2:
                gone.set()
                await asyncio.Event().wait()     # for ever: the client is gone

    async def note():
        background.append(fds_on(path))

    async def main():
        from starlette.background import BackgroundTask
        await asyncio.wait_for(lx_starlette.FileResponse(path, background=BackgroundTask(note))(
            scope_of(), receive, send), 60)
        assert asyncio.current_task().cancelling() == 0

    run(loop_kind, main())
    assert len(bodies) == 2
    assert background == [[]]
    assert fds_on(path) == []


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_an_outer_cancellation_during_a_waiting_send_is_not_a_disconnect(tmp_path, loop_kind):
    """The task's own cancellation reaches the caller even when the client
    left too: the watcher's stop is taken only while the task is not being
    cancelled."""
    path = tmp_path / "f"
    path.write_bytes(os.urandom(4 * CHUNK))
    gone = asyncio.Event()

    async def receive():
        await gone.wait()
        return {"type": "http.disconnect"}

    async def main():
        task = asyncio.current_task()

        async def send(message):
            if message["type"] == "http.response.body":
                task.cancel()
                gone.set()
                await asyncio.Event().wait()

        with pytest.raises(asyncio.CancelledError):
            await lx_starlette.FileResponse(path)(scope_of(), receive, send)

    run(loop_kind, main())
    assert fds_on(path) == []
