"""linuxaio._pace: the steps of file bodies share a budget per loop turn, so
many downloads do not make every turn of the loop long (W10's sync
scenario).  Deterministic: a fake clock that each step advances, and a
probe callback that counts the steps run between two of its turns."""
import asyncio
import os
import threading

import pytest

from linuxaio import _pace

uvloop = pytest.importorskip("uvloop")

LOOPS = ["asyncio", "uvloop"]
STEP_NS = 400_000          # what each step "costs" on the fake clock
BUDGET_NS = 1_000_000      # so 3 steps go in a turn (at 0, 0.4, 0.8 ms)


def run(loop_kind, coro):
    if loop_kind == "uvloop":
        return uvloop.run(coro)
    return asyncio.run(coro)


@pytest.fixture
def fake_clock(monkeypatch):
    now = [1_000_000_000]
    monkeypatch.setattr(_pace, "_clock", lambda: now[0])
    monkeypatch.setattr(_pace, "TURN_BUDGET_NS", BUDGET_NS)
    return now


async def steps_between_turns(clock, tasks, steps, probe_queue=True):
    """tasks x steps body steps that never suspend on their own; a probe
    that re-queues itself once a turn records the steps done at each of
    its turns.  Returns (the steps run between consecutive probe turns,
    each task's steps done when the first task finished)."""
    loop = asyncio.get_running_loop()
    done = [0] * tasks
    seen, at_first_end = [], []
    finished = asyncio.Event()

    def probe():
        seen.append(sum(done))
        if not finished.is_set():
            loop.call_soon(probe)

    async def body(i):
        for _ in range(steps):
            wait = _pace.pace()
            if wait is not None:
                await wait
            clock[0] += STEP_NS
            done[i] += 1
        if not at_first_end:
            at_first_end.append(list(done))

    loop.call_soon(probe)
    await asyncio.gather(*(body(i) for i in range(tasks)))
    finished.set()
    assert sum(done) == tasks * steps
    seen.append(sum(done))
    return [b - a for a, b in zip(seen, seen[1:])], at_first_end[0]


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_turn_holds_about_one_budget_of_steps(loop_kind, fake_clock):
    per_turn, _ = run(loop_kind, steps_between_turns(fake_clock, 30, 20))
    # One budget a turn: 3 steps; a probe's turn may see the end of one
    # turn and the start of the next, so at most two budgets between.
    assert max(per_turn) <= 6, per_turn
    assert len(per_turn) >= 600 // 6


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_without_the_budget_one_turn_runs_every_step(loop_kind, fake_clock, monkeypatch):
    # the same bodies with an unreachable budget: the check above can fail
    monkeypatch.setattr(_pace, "TURN_BUDGET_NS", 1 << 62)
    per_turn, _ = run(loop_kind, steps_between_turns(fake_clock, 30, 20))
    assert max(per_turn) == 600


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_step_that_would_end_past_the_budget_waits(loop_kind, fake_clock):
    # Steps of 0.4 ms, a budget of 1 ms: once a step's cost is learnt (a
    # few turns), a turn holds 2 steps (0-0.8 ms), not a third that would
    # run to 1.2 ms (checking only whether the budget had passed: 3).
    per_turn, _ = run(loop_kind, steps_between_turns(fake_clock, 30, 20))
    steady = per_turn[20:-5]
    assert max(steady) == 2, per_turn
    assert sum(steady) / len(steady) > 1.5, per_turn


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_only_a_tasks_own_next_step_measures_a_steps_cost(loop_kind, fake_clock):
    """Downloads of one step each (small files): the time from one task's
    step to another task's holds other work (the end of a response, the
    next request), not a step's cost, so nothing is learnt and a turn
    holds steps while the budget has not passed (0, 0.4 and 0.8 ms: 3),
    not 2 as with a learnt cost of 0.4 ms (the test above)."""
    per_turn, _ = run(loop_kind, steps_between_turns(fake_clock, 300, 1))
    steady = per_turn[5:-5]
    assert max(steady) == 3 and sum(steady) / len(steady) > 2.5, per_turn


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_the_steps_cost_is_measured_again_when_it_falls(loop_kind, fake_clock):
    """Steps of 0.9 ms (one fits a 1 ms budget) that become steps of 0.2
    ms: turns grow back to 5 steps.  The cost is measured at the next
    step's check, whether that step goes or waits: measured only when a
    second step went, a turn that holds one would never measure it again."""
    async def main():
        loop = asyncio.get_running_loop()
        done, seen = [0], []

        def probe():
            seen.append(done[0])
            if done[0] < 20 * 60:
                loop.call_soon(probe)

        async def body(i):
            for k in range(60):
                wait = _pace.pace()
                if wait is not None:
                    await wait
                fake_clock[0] += 900_000 if k < 20 else 200_000
                done[0] += 1
        loop.call_soon(probe)
        await asyncio.gather(*(body(i) for i in range(20)))
        return [b - a for a, b in zip(seen, seen[1:])]
    per_turn = run(loop_kind, main())
    assert max(per_turn[5:300]) <= 2, per_turn          # while steps cost 0.9 ms
    assert max(per_turn) >= 5, per_turn


async def steps_per_turn_beside(clock, step_ns, other_ns, tasks=20, steps=40):
    """Body steps of step_ns each, and other work of other_ns in every
    turn of the loop (a callback that re-queues itself, as a synchronous
    endpoint's requests would be): the steps run between its turns."""
    loop = asyncio.get_running_loop()
    done, seen = [0], []

    def other():
        clock[0] += other_ns
        seen.append(done[0])
        if done[0] < tasks * steps:
            loop.call_soon(other)

    async def body():
        for _ in range(steps):
            wait = _pace.pace()
            if wait is not None:
                await wait
            clock[0] += step_ns
            done[0] += 1
    loop.call_soon(other)
    await asyncio.gather(*(body() for _ in range(tasks)))
    return [b - a for a, b in zip(seen, seen[1:])]


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_with_other_work_in_each_turn_a_long_step_is_paid_by_later_turns(loop_kind, fake_clock):
    """Steps of 0.8 ms, other work of 1 ms a turn: the steps get half the
    budget (0.5 ms) a turn, and what a step takes past it is paid by the
    turns after, some of which hold no step: 5 steps in 8 turns, not one
    in every turn (a turn's first step always goes)."""
    per_turn = run(loop_kind, steps_per_turn_beside(fake_clock, 800_000, 1_000_000))
    steady = per_turn[30:-5]
    assert max(steady) == 1 and 0 in steady, per_turn
    assert 0.5 <= sum(steady) / len(steady) <= 0.75, per_turn


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_steps_alone_keep_the_whole_budget(loop_kind, fake_clock):
    """The same steps with no other work: every turn holds a step (a turn
    that holds nothing else costs little; skipping it would only slow the
    downloads)."""
    per_turn = run(loop_kind, steps_per_turn_beside(fake_clock, 800_000, 0))
    steady = per_turn[30:-5]
    assert min(steady) >= 1, per_turn


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_waiting_steps_go_in_arrival_order(loop_kind, fake_clock):
    # round robin: when the first body ends, every other one is near its
    # end too (the first went a budget ahead before anyone waited)
    _, at_first_end = run(loop_kind, steps_between_turns(fake_clock, 30, 20))
    assert min(at_first_end) >= 20 - 3 - 2, at_first_end


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_cancelled_waiter_holds_up_nobody(loop_kind, fake_clock):
    async def main():
        loop = asyncio.get_running_loop()
        done = []

        async def body(i):
            for _ in range(10):
                wait = _pace.pace()
                if wait is not None:
                    await wait
                fake_clock[0] += STEP_NS
            done.append(i)

        tasks = [loop.create_task(body(i)) for i in range(20)]
        for _ in range(3):
            await asyncio.sleep(0)
        for t in tasks[::2]:          # half of them, while they wait
            t.cancel()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        assert sorted(done) == list(range(1, 20, 2))
        assert all(isinstance(r, asyncio.CancelledError) for r in results[::2])
        # and a new step still goes (nothing left waiting for ever)
        fake_clock[0] += 10 * BUDGET_NS
        wait = _pace.pace()
        if wait is not None:
            await asyncio.wait_for(wait, 10)
    run(loop_kind, main())


def test_a_pacer_does_not_keep_its_loop(fake_clock):
    """A loop that ran body steps is freed when it ends: its pacer keeps
    nothing that holds it (the last step's task would: a task holds its
    loop, and the pacers are keyed by the loop, weakly)."""
    import gc

    async def steps(loop):
        for _ in range(2):
            w = _pace.pace()
            if w is not None:
                await w
            fake_clock[0] += STEP_NS
        # the loop ends with this turn: the pacer's callback queued in it
        # never runs (it would forget the turn's steps)
        loop.stop()

    for _ in range(10):
        loop = asyncio.new_event_loop()
        loop.create_task(steps(loop))
        loop.run_forever()
        loop.close()
        del loop
    gc.collect()
    assert len(_pace._pacers) <= 1


def test_no_pacing_outside_asyncio():
    assert _pace.pace() is None
    trio = pytest.importorskip("trio")

    async def main():
        return _pace.pace()
    assert trio.run(main) is None


def test_many_loops_each_have_their_own_budget(fake_clock):
    # a spent budget in one loop does not hold up a step in another
    async def spend():
        for _ in range(5):
            w = _pace.pace()
            if w is not None:
                await w
                return "waited"
            fake_clock[0] += STEP_NS
        return "never waited"

    async def one_step():
        return _pace.pace()

    async def main():
        got = await spend()
        other = []
        t = threading.Thread(target=lambda: other.append(asyncio.run(one_step())))
        t.start()
        t.join()
        return got, other
    got, other = asyncio.run(main())
    assert got == "waited" and other == [None]


# ---- the file responses take no thread-pool token ----

starlette = pytest.importorskip("starlette")
anyio = pytest.importorskip("anyio")


async def asgi_get(app, path):
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": [(b"host", b"x")], "server": ("x", 80)}
    got, sent = [], asyncio.Event()

    async def receive():
        if not sent.is_set():
            sent.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()     # the client stays

    async def send(message):
        got.append(message)
    await app(scope, receive, send)
    return got


@pytest.mark.parametrize("kind", ["ours", "pathsend"])
def test_downloads_take_no_thread_token_from_the_sync_endpoints(kind, tmp_path):
    """Starlette runs a plain def endpoint on anyio's thread limiter; our
    StaticFiles and the middleware's transfer must not need one of its
    tokens: with the only token held, a 1 MiB download still completes
    (and Starlette's own StaticFiles, for contrast, waits for it)."""
    from starlette.staticfiles import StaticFiles as StarlettesStaticFiles

    from linuxaio.asgi import PathsendMiddleware
    from linuxaio.starlette import StaticFiles

    data = os.urandom(1 << 20)
    (tmp_path / "big").write_bytes(data)
    if kind == "ours":
        app = StaticFiles(directory=tmp_path)
    else:
        # the stock app's lookup is Starlette's (a thread): ask for the
        # file by pathsend straight, as a FileResponse with a stat does
        from starlette.responses import FileResponse as StarlettesFileResponse

        async def stock(scope, receive, send):
            st = os.stat(tmp_path / "big")
            await StarlettesFileResponse(tmp_path / "big", stat_result=st)(scope, receive, send)
        app = PathsendMiddleware(stock)

    async def main():
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = 1
        release = threading.Event()
        holder = asyncio.get_running_loop().create_task(anyio.to_thread.run_sync(release.wait))
        while limiter.borrowed_tokens < 1:
            await asyncio.sleep(0.01)
        try:
            got = await asyncio.wait_for(asgi_get(app, "/big"), 60)
            body = b"".join(m.get("body", b"") for m in got if m["type"] == "http.response.body")
            assert got[0]["status"] == 200 and body == data
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(asgi_get(StarlettesStaticFiles(directory=tmp_path), "/big"), 0.5)
        finally:
            release.set()
            await holder
    asyncio.run(main())


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("kind", ["ours", "pathsend"])
def test_downloads_send_about_one_budget_of_chunks_a_turn(kind, loop_kind, tmp_path, fake_clock):
    """20 downloads of 10 chunks at once, each body send "costing" STEP_NS
    on the fake clock, and under our StaticFiles each response's start
    (a download's first step: its lookup, start, open and first read are
    paced too): between two turns of a probe, at most two budgets of
    them."""
    from starlette.responses import FileResponse as StarlettesFileResponse

    from linuxaio.asgi import PathsendMiddleware
    from linuxaio.starlette import StaticFiles

    chunk = 64 * 1024
    data = os.urandom(10 * chunk)
    (tmp_path / "f").write_bytes(data)
    if kind == "ours":
        app = StaticFiles(directory=tmp_path)
    else:
        st = os.stat(tmp_path / "f")

        async def stock(scope, receive, send):
            await StarlettesFileResponse(tmp_path / "f", stat_result=st)(scope, receive, send)
        app = PathsendMiddleware(stock, chunk_size=chunk)

    async def main():
        loop = asyncio.get_running_loop()
        sends, seen, bodies = [0], [], {}
        finished = asyncio.Event()

        def probe():
            seen.append(sends[0])
            if not finished.is_set():
                loop.call_soon(probe)

        async def download(i):
            scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
                     "method": "GET", "scheme": "http", "path": "/f", "raw_path": b"/f", "root_path": "",
                     "query_string": b"", "headers": [(b"host", b"x")], "server": ("x", 80)}
            got = bodies[i] = []

            async def receive():
                await asyncio.Event().wait()

            async def send(message):
                if message["type"] == "http.response.body" or kind == "ours":
                    fake_clock[0] += STEP_NS
                    sends[0] += 1
                if message["type"] == "http.response.body":
                    got.append(message["body"])
            await app(scope, receive, send)

        loop.call_soon(probe)
        await asyncio.wait_for(asyncio.gather(*(download(i) for i in range(20))), 120)
        finished.set()
        seen.append(sends[0])
        return [b - a for a, b in zip(seen, seen[1:])], bodies

    per_turn, bodies = run(loop_kind, main())
    assert all(b"".join(got) == data for got in bodies.values())
    # Starlette's loop ends on a short read: an 11th, empty, body; and
    # the start
    assert sum(per_turn) == 20 * (12 if kind == "ours" else 10)
    assert max(per_turn) <= 6, per_turn


def test_a_finished_loop_is_not_kept_alive():
    import gc
    import weakref

    async def main():
        for _ in range(3):
            w = _pace.pace()
            if w is not None:
                await w
        return weakref.ref(asyncio.get_running_loop())
    ref = asyncio.run(main())
    gc.collect()
    assert ref() is None      # a pacer holding its loop kept every loop asyncio.run() made


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("handoff_ns, yields", [(1_000_000, 4), (0, 0), (10**15, 0)])
def test_steps_hand_off_the_gil_once_per_period(loop_kind, fake_clock, monkeypatch, handoff_ns, yields):
    """A body step lets go of the GIL and the CPU (os.sched_yield) when
    HANDOFF_NS has passed since the last time, so a thread waiting for
    the GIL gets it: 10 steps of 0.4 ms on the fake clock yield at 0,
    1.2, 2.4 and 3.6 ms with a period of 1 ms; never with 0, nor with a
    period longer than the clock has run."""
    calls = []
    monkeypatch.setattr(_pace, "_sched_yield", lambda: calls.append(fake_clock[0]))
    monkeypatch.setattr(_pace, "_active_count", lambda: 2)    # a thread that may wait
    monkeypatch.setattr(_pace, "HANDOFF_NS", handoff_ns)

    async def main():
        await steps_between_turns(fake_clock, 1, 10)
    run(loop_kind, main())
    assert len(calls) == yields
    assert all(b - a >= handoff_ns for a, b in zip(calls, calls[1:]))



@pytest.mark.parametrize("loop_kind", LOOPS)
def test_no_hand_off_without_another_python_thread(loop_kind, fake_clock, monkeypatch):
    """With the loop's the only Python thread, nobody can wait for the
    GIL: the steps never yield the CPU."""
    calls = []
    monkeypatch.setattr(_pace, "_sched_yield", lambda: calls.append(fake_clock[0]))
    monkeypatch.setattr(_pace, "_active_count", lambda: 1)
    monkeypatch.setattr(_pace, "HANDOFF_NS", 1_000_000)

    async def main():
        await steps_between_turns(fake_clock, 1, 10)
    run(loop_kind, main())
    assert calls == []
