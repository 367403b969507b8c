"""Pacing of file bodies per loop turn (asgi.py, starlette.py).

A download is a loop of steps: read a chunk (often inline, from the page
cache: no suspension), hand it to the server (a socket send, often no
suspension either).  Each step of each download in flight runs once per
turn of the loop, so with 200 downloads a turn lasts 200 steps (tens of
milliseconds of CPU), and a request that needs a few turns (a synchronous
endpoint: its task, the thread pool's answer, the response) waits that
many times as long.  The server is fair; its turns are just long.

So the steps of file bodies share a budget per turn of the loop: a step
goes on at once if it fits in what is left of TURN_BUDGET_NS since the
first step of this turn, by what a step has been costing (the time from
one step to the next within a turn, averaged); one that would not fit
waits (in arrival order) and a callback queued on the loop (it runs in
the next turn) lets go of as many waiting steps as fitted in the turn
before.  (Checking only whether the budget had passed let the last step
run past it: half a step a turn on average, a quarter of the budget with
64 KiB steps.)  Everything else on the loop gets its turn in between: a
turn holds about one budget of body steps.  Downloads still use the CPU
the rest leaves; they only stop crowding a turn.

One step is the least a turn can hold, and a 64 KiB step (~90 us) is near
the budget: with other work in every turn (W10: a synchronous endpoint's
requests, ~150 us a turn) the body steps were a third of each turn.  So
while the turns hold more than half a budget of other work, the steps get
half a budget a turn, and what a turn's steps took past it is a debt the
next turns pay: a turn whose budget is spent by it holds no step.  Steps
alone on the loop keep the whole budget and no debt.  (The steps' time in
a turn is reckoned as their number times a step's cost, once learnt.)

The GIL.  A synchronous endpoint runs in a worker thread (Starlette's
thread pool), which needs the GIL to start and again to hand its answer
back.  The loop thread, busy with downloads, lets go of the GIL only around
system calls (a socket send), for microseconds: the waiting thread is woken
each time, but rarely runs before the loop takes the GIL back, and each
such wake-up restarts its 5 ms wait before it may ask for a switch (CPython
forces one only when a whole switch interval passes without any).  Timed
in W10's sync scenario (server on one CPU): the worker's wait for the GIL
reached 3-7 ms at the 90th-99th percentile under uvloop.  So, at most once
per HANDOFF_NS of body steps, a step lets go of the GIL and of the CPU
(os.sched_yield(), which does both): a thread woken for the GIL on this
CPU takes it then (its wait at the 90th percentile fell to ~0.4 ms).
Only while the process has another Python thread (none: no one can wait
for the GIL): a yield hands the CPU to whatever else is runnable on it,
the engine's spinning workers too: in W10's throughput runs (no Python
thread beside the loop's), yields every 200 us cut the 1 MiB downloads'
rate under asyncio by a quarter to a third in two A/B pairs (a loaded
machine; uvloop's within the noise).  This is
no process-wide setting: sys.setswitchinterval is left alone.

asyncio and uvloop only: under trio every linuxaio call is already a
checkpoint, and trio's scheduler runs each ready task once a batch.
"""
from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from typing import Any

from ._loop import _asyncio_loop
from ._loop import asyncio_current_task as _asyncio_current_task

__all__ = ["pace", "TURN_BUDGET_NS", "HANDOFF_NS"]

# 100 us of body steps per turn: a step (a 64 KiB read and send, their
# Python) costs ~50 us here, so 2 steps a turn (3 before a step had to
# fit: the third ran to ~150 us).  A request that needs a
# few turns (a sync endpoint: five) waits for the body steps of each: in
# W10's sync scenario (Intel Xeon, 200 downloads) a budget of 1 ms kept the
# endpoint's p99 in the app at 8-12 ms of loop CPU, 100 us at 3.2-3.4 ms,
# 50 us no lower (the rest of a turn is other work); the throughput of
# 1 MiB downloads alone was within the noise of 1 ms's (asyncio 696 vs
# 701 req/s, uvloop 769 vs 691, 64 connections).
TURN_BUDGET_NS = 100_000

# While other work shares the loop's turns (more than OTHER_NS of a turn
# besides its body steps: the requests of a synchronous endpoint, say),
# body steps get SHARED_BUDGET_NS a turn, and a turn whose steps ran past
# it leaves the excess to the next turns, which then hold fewer steps or
# none.  A budget only bounds when steps may start: one step (a 64 KiB read
# and send, ~90 us) goes in every turn however small the budget, so with
# other work in each turn the body steps took a third of every turn.  Run
# alone, the downloads keep TURN_BUDGET_NS and no debt (a turn that holds
# nothing else costs little; skipping one would only slow them).  Both
# are half of TURN_BUDGET_NS (read at each turn).  Only once a step's cost
# is learnt (LEARNT samples): the turn's body time is reckoned from it.
SHARED_SHARE = 2        # SHARED_BUDGET_NS = OTHER_NS = TURN_BUDGET_NS // 2
LEARNT = 8

# At most one hand-off of the GIL (and the CPU) per 200 us of body steps;
# 0 turns hand-offs off.
HANDOFF_NS = 200_000

_clock = time.monotonic_ns
_current_task: Any = None       # asyncio.current_task, once a pacer exists
_sched_yield = os.sched_yield
_active_count = threading.active_count


class _Pacer:
    """One loop's budget: when this turn's first step went, how many went,
    and the steps waiting for a later turn."""

    # No reference to the loop: a WeakKeyDictionary's value that holds its
    # key keeps it alive for ever (as _loop.py's per-loop state).
    __slots__ = ("started", "last", "last_task", "cost", "went", "asked", "fit", "waiting", "back", "handed",
                 "turn_at", "budget", "debt", "samples")

    def __init__(self) -> None:
        self.started = 0        # when this turn's first step went
        self.last = 0           # when this turn's latest step went
        self.last_task = 0      # id() of the task it went in (the task
                                # itself would hold the loop: above)
        self.cost = 0           # a step's cost (ns), a running average
        self.went = 0           # steps that went in this turn
        self.asked = False      # _next_turn is queued on the loop
        self.fit = 1            # steps that went in the last turn that had any
        self.waiting: deque = deque()
        self.back: list = []    # let go, but this turn was spent: first in line again
        self.handed = 0         # when a step last let go of the GIL
        self.turn_at = 0        # when _next_turn last ran
        self.budget = TURN_BUDGET_NS    # this turn's
        self.debt = 0           # body time past the shared budgets of turns before
        self.samples = 0        # a step's cost measured so many times (up to LEARNT)

    def _spent(self, now: int) -> bool:
        """Whether a step from now would end past this turn's budget.

        A step's cost goes into the running average first: the time from
        the last step's start to this check, if this is the same task's
        next step in the same turn (its read came from the page cache and
        its send did not wait), whether this one goes or waits.  From
        another task the time holds other work (the end of a response,
        the next request's parsing...): not a step's cost, so a download
        of one step (a small file) measures nothing.  Counted at most a
        budget (a collection or a preemption in between).  The first step
        of a turn always goes."""
        if self.last:
            # (an id a task that ended passed on to a new one in this
            # turn: one sample of the wrong kind, a 1/8 weight)
            if id(_current_task()) == self.last_task:
                self.cost += (min(now - self.last, TURN_BUDGET_NS) - self.cost) >> 3
                if self.samples < LEARNT:
                    self.samples += 1
            self.last = self.last_task = 0
        if not self.went:
            return self.budget <= 0         # a turn that pays a debt
        return now - self.started + self.cost > self.budget

    def _went(self, now: int) -> None:
        if not self.went:
            self.started = now
        self.last = now
        self.last_task = id(_current_task())
        self.went += 1
        if HANDOFF_NS and now - self.handed >= HANDOFF_NS:
            self.handed = now
            if _active_count() > 1:
                # a thread waiting for the GIL on this CPU gets it now
                # (above); the time it takes is not the step's
                _sched_yield()
                self.last = _clock()

    def _ask(self, loop: Any) -> None:
        # queued behind what is ready now: it runs in the loop's next turn
        loop.call_soon(self._next_turn, loop)
        self.asked = True

    def step(self, loop: Any) -> Any:
        """None: go on now.  Else a coroutine to await first."""
        if not self.asked:
            self._ask(loop)
        now = _clock()
        if self._spent(now) or self.waiting or self.back:
            fut = loop.create_future()
            self.waiting.append(fut)
            return self._wait(loop, fut)
        self._went(now)
        return None

    async def _wait(self, loop: Any, fut: Any) -> None:
        while True:
            await fut
            now = _clock()
            if not self._spent(now):
                self._went(now)
                return
            # let go a turn too early (more fitted before): first in line
            fut = loop.create_future()
            self.back.append(fut)
            if not self.asked:
                self._ask(loop)

    def _next_turn(self, loop: Any) -> None:
        self.asked = False
        now = _clock()
        turn, self.turn_at = now - self.turn_at, now
        shared = TURN_BUDGET_NS // SHARED_SHARE
        if self.went:
            self.fit = self.went
            # the turn's body time by the steps' cost (the time between
            # them holds other work too)
            body = self.went * self.cost
            if self.samples >= LEARNT and turn - body > shared:
                self.debt = max(0, self.debt + body - shared)
                self.budget = shared - self.debt
            else:
                self.debt = 0
                self.budget = TURN_BUDGET_NS
        elif self.debt:
            # a turn without steps pays a budget of the debt
            self.debt = max(0, self.debt - shared)
            self.budget = shared - self.debt
        else:
            self.budget = TURN_BUDGET_NS
        self.started = self.went = self.last = self.last_task = 0
        if self.back:
            self.waiting.extendleft(reversed(self.back))
            self.back.clear()
        # Those let go run in the next turn and count there (each checks
        # the budget itself); a few more than fitted last time, so the
        # count follows the steps' cost up as well as down.
        let_go = 0
        want = self.fit + self.fit // 4 + 1 if self.budget > 0 else 0
        while self.waiting and let_go < want:
            fut = self.waiting.popleft()
            if not fut.done():          # a cancelled waiter takes no place
                fut.set_result(None)
                let_go += 1
        if self.waiting:
            self._ask(loop)


_pacers: "weakref.WeakKeyDictionary[Any, _Pacer]" = weakref.WeakKeyDictionary()


def pace() -> Any:
    """Before a body step: None to go on at once, or an awaitable to await
    first (this turn's budget is spent, or others wait already).  Always
    None outside asyncio/uvloop."""
    loop = _asyncio_loop()
    if loop is None:
        return None
    pacer = _pacers.get(loop)
    if pacer is None:
        global _current_task
        _current_task = _asyncio_current_task()
        pacer = _pacers[loop] = _Pacer()
    return pacer.step(loop)


async def paced() -> None:
    """await pace()'s answer, if any (the cheap way, in a hot loop: `w =
    pace()` then `if w is not None: await w` saves a coroutine per step)."""
    w = pace()
    if w is not None:
        await w
