"""aio_group: IO::AIO's groups (add, limit, feed, result, cancel)."""
import gc
import os
import time
import weakref

import pytest

import linuxaio
from aio_helpers import Collector, is_cancelled, is_done, run_python


def in_child(code, timeout=60):
    """Run code in a fresh interpreter: a crash or a hang there fails the test
    (and leaves this process's engine alone).  Returns its output's words."""
    proc, _ = run_python(code, timeout=timeout)
    assert proc.returncode == 0, f"rc={proc.returncode} stdout={proc.stdout!r} stderr={proc.stderr!r}"
    return proc.stdout.split()


def test_group_callback_runs_after_all_children():
    order = []
    g = linuxaio.aio_group(lambda *a: order.append(("group",) + a))
    for i, secs in enumerate([0.08, 0.01, 0.05, 0.0]):
        g.add(linuxaio.aio_busy(secs, lambda v, i=i: order.append(i)))
    assert g.size == 4
    linuxaio.flush()
    assert sorted(order[:-1]) == [0, 1, 2, 3]
    assert order[-1] == ("group", None)      # exactly one argument, None by default
    assert is_done(g) and g.size == 0
    assert linuxaio.nreqs() == 0


def test_group_counts_in_nreqs():
    linuxaio.max_parallel(0)
    g = linuxaio.aio_group()
    g.add(linuxaio.aio_nop(), linuxaio.aio_nop())
    assert linuxaio.nreqs() == 3
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert linuxaio.nreqs() == 0


def test_group_result():
    got = Collector()
    g = linuxaio.aio_group(got)
    g.add(linuxaio.aio_nop())
    g.result({"answer": 42})
    g.result(("final", 7))        # the last value wins
    linuxaio.flush()
    assert got.calls == [(("final", 7),)]


def test_group_result_set_from_a_child_callback(datafile):
    got = Collector()
    g = linuxaio.aio_group(got)
    g.add(linuxaio.aio_stat(datafile[0], lambda st: g.result(st.st_size)))
    linuxaio.flush()
    assert got.values == [len(datafile[1])]


def test_empty_group_finishes_at_the_next_poll():
    got = Collector()
    linuxaio.aio_group(got)
    assert linuxaio.nreqs() == 1
    linuxaio.flush()
    assert got.values == [None]


def test_group_of_failures_still_finishes():
    got = []
    g = linuxaio.aio_group(lambda v: got.append("group"))
    for i in range(3):
        g.add(linuxaio.aio_stat(f"/no/such/{i}", got.append))
    linuxaio.flush()
    assert all(isinstance(e, FileNotFoundError) for e in got[:3])
    assert got[3] == "group"


def test_add_accepts_several_requests_and_requests_added_later():
    got = []
    linuxaio.max_parallel(0)
    g = linuxaio.aio_group(lambda v: got.append("group"))
    g.add(linuxaio.aio_nop(got.append), linuxaio.aio_nop(got.append))
    g.add()
    g.add(linuxaio.aio_nop(got.append))
    assert g.size == 3
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert got == [0, 0, 0, "group"]


def test_child_callback_can_add_to_its_group():
    got = []
    g = linuxaio.aio_group(lambda v: got.append("group"))

    def chain(v, n=[0]):
        got.append(n[0])
        n[0] += 1
        if n[0] < 5:
            g.add(linuxaio.aio_nop(chain))

    g.add(linuxaio.aio_nop(chain))
    linuxaio.flush()
    assert got == [0, 1, 2, 3, 4, "group"]


def test_a_cycle_through_a_groups_result_is_collected():
    class Box:
        pass
    g = linuxaio.aio_group()
    box = Box()
    box.group = g                       # the group -> box -> the group
    g.result(box)
    g.add(linuxaio.aio_nop())
    linuxaio.flush()
    assert is_done(g)
    alive = weakref.ref(box)
    del g, box
    gc.collect()
    assert alive() is None


# ------------------------------------------------------------ feed and limit

def test_feed_uses_limit_two_by_default():
    sizes = []
    items = list(range(10))
    got = []
    g = linuxaio.aio_group(lambda v: got.append("group"))

    def feeder(grp):
        assert grp is g
        sizes.append(grp.size)
        if items:
            i = items.pop(0)
            grp.add(linuxaio.aio_busy(0.002, lambda v, i=i: got.append(i)))

    g.feed(feeder)
    assert g.size == 2            # fed at once, up to the default limit of 2
    linuxaio.flush()
    assert sorted(got[:-1]) == list(range(10)) and got[-1] == "group"
    assert max(sizes) < 2          # only called while below the limit
    assert 1 <= max(sizes)


def test_feeder_removed_when_it_adds_nothing():
    calls = []
    items = list(range(6))
    got = []
    g = linuxaio.aio_group(lambda v: got.append("group"))

    def feeder(grp):
        calls.append(len(items))
        if items:
            grp.add(linuxaio.aio_nop(lambda v, i=items.pop(0): got.append(i)))

    g.feed(feeder)
    linuxaio.flush()
    assert got[-1] == "group" and sorted(got[:-1]) == list(range(6))
    # six calls that added one each, then exactly one that added none
    assert calls.count(0) == 1 and calls[-1] == 0
    assert len(calls) == 7


def test_feeder_that_adds_nothing_at_once_is_dropped():
    calls = []
    got = []
    g = linuxaio.aio_group(got.append)
    g.feed(lambda grp: calls.append(1))
    linuxaio.flush()
    assert calls == [1]
    assert got == [None]


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_never_more_than_limit_outstanding(limit):
    items = list(range(40))
    outstanding = [0]
    peak = [0]
    done = []
    g = linuxaio.aio_group(lambda v: done.append("group"))
    g.limit(limit)

    def finished(v, i):
        outstanding[0] -= 1
        done.append(i)

    def feeder(grp):
        assert grp.size < limit
        if items:
            i = items.pop(0)
            grp.add(linuxaio.aio_busy(0.001 * (i % 3), lambda v, i=i: finished(v, i)))
            outstanding[0] += 1
            peak[0] = max(peak[0], outstanding[0], grp.size)

    g.feed(feeder)
    linuxaio.flush()
    assert peak[0] == limit
    assert sorted(done[:-1]) == list(range(40)) and done[-1] == "group"


def test_feeder_adding_several_per_call():
    items = list(range(20))
    peak = [0]
    got = []
    g = linuxaio.aio_group(lambda v: got.append("group"))
    g.limit(4)

    def feeder(grp):
        for _ in range(2):
            if items:
                grp.add(linuxaio.aio_nop(lambda v, i=items.pop(0): got.append(i)))
        peak[0] = max(peak[0], grp.size)

    g.feed(feeder)
    linuxaio.flush()
    assert sorted(got[:-1]) == list(range(20)) and got[-1] == "group"
    assert peak[0] <= 5            # called at size 3 at most, adds 2


def test_limit_set_before_feed_is_kept():
    items = list(range(12))
    peak = [0]
    g = linuxaio.aio_group()
    g.limit(5)

    def feeder(grp):
        if items:
            items.pop()
            grp.add(linuxaio.aio_busy(0.005))
        peak[0] = max(peak[0], grp.size)

    g.feed(feeder)
    assert g.size == 5
    linuxaio.flush()
    assert peak[0] == 5 and not items


def test_limit_zero_before_a_feeder_lets_adds_through():
    """Without a feeder the limit is 0 and add() is not limited by it."""
    g = linuxaio.aio_group()
    linuxaio.max_parallel(0)
    g.add(*[linuxaio.aio_nop() for _ in range(10)])
    assert g.size == 10
    linuxaio.min_parallel(4)
    linuxaio.flush()


def test_raising_the_limit_feeds_more():
    items = list(range(10))
    g = linuxaio.aio_group()
    linuxaio.max_parallel(0)

    def feeder(grp):
        if items:
            items.pop()
            grp.add(linuxaio.aio_nop())

    g.feed(feeder)
    assert g.size == 2
    g.limit(6)
    assert g.size == 6
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert not items


def test_feed_none_removes_the_feeder():
    calls = []
    g = linuxaio.aio_group()
    linuxaio.max_parallel(0)

    def feeder(grp):
        calls.append(1)
        grp.add(linuxaio.aio_nop())

    g.feed(feeder)
    g.feed(None)
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert len(calls) == 2
    assert is_done(g)


def test_exception_in_feeder_propagates():
    g = linuxaio.aio_group()
    with pytest.raises(ZeroDivisionError):
        g.feed(lambda grp: 1 / 0)
    g.feed(None)
    linuxaio.flush()
    assert is_done(g)


FEEDER_RAISES = """
import linuxaio
calls = []
def feeder(g):
    calls.append(1)
    if len(calls) == 3:
        raise KeyError("feeder")
    g.add(linuxaio.aio_nop())
got = []
g = linuxaio.aio_group(got.append)
g.limit(1)
g.feed(feeder)          # one child now; the third call raises inside poll_cb
raised = 0
for _ in range(3):
    try:
        linuxaio.flush()
    except KeyError:
        raised += 1
print(raised, len(calls), got, linuxaio.nreqs())
"""


def test_a_raising_feeder_propagates_once_and_its_group_still_finishes():
    assert in_child(FEEDER_RAISES, timeout=20) == ["1", "3", "[None]", "0"]


FEEDER_FLUSHES = """
import linuxaio
calls = []
def feeder(g):
    calls.append(1)
    if len(calls) < 4:
        linuxaio.flush()    # the group itself cannot finish while it feeds
        g.add(linuxaio.aio_nop())
got = []
g = linuxaio.aio_group(got.append)
g.limit(1)
g.add(linuxaio.aio_busy(0.01))
g.feed(feeder)
errors = []
for _ in range(3):
    try:
        linuxaio.flush()
    except RuntimeError as e:
        errors.append(e)
print(len(errors), len(calls), got, linuxaio.nreqs())
"""


def test_a_feeder_that_flushes_propagates_once_and_its_group_still_finishes():
    assert in_child(FEEDER_FLUSHES, timeout=20) == ["1", "1", "[None]", "0"]


# ------------------------------------------------------------ cancel

def test_cancel_cancels_children_and_suppresses_all_callbacks(scratch):
    def fail(v):
        raise AssertionError(f"callback called with {v!r}")

    linuxaio.max_parallel(0)
    g = linuxaio.aio_group(fail)
    target = scratch / "never"
    kids = [linuxaio.aio_nop(fail), linuxaio.aio_open(target, os.O_CREAT | os.O_RDWR, 0o600, fail),
            linuxaio.aio_stat("/", fail)]
    g.add(*kids)
    g.cancel()
    assert is_cancelled(g) and all(is_cancelled(k) for k in kids)
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert not target.exists()
    assert is_done(g) and all(is_done(k) for k in kids)
    assert linuxaio.nreqs() == 0


def test_cancel_with_children_running(datafile):
    def fail(v):
        raise AssertionError("callback after cancel")

    base = len(os.listdir("/proc/self/fd"))
    g = linuxaio.aio_group(fail)
    g.add(*[linuxaio.aio_busy(0.1, fail) for _ in range(3)])
    g.add(linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, fail))
    time.sleep(0.02)
    g.cancel()
    linuxaio.flush()
    assert len(os.listdir("/proc/self/fd")) == base


def test_cancel_stops_the_feeder():
    calls = []
    g = linuxaio.aio_group(lambda v: calls.append("group"))

    def feeder(grp):
        calls.append("feed")
        grp.add(linuxaio.aio_busy(0.01))

    g.feed(feeder)
    g.cancel()
    linuxaio.flush()
    assert calls == ["feed", "feed"]


def test_cancel_empty_group():
    g = linuxaio.aio_group(lambda v: pytest.fail("group callback after cancel"))
    g.cancel()
    linuxaio.flush()
    assert is_done(g)


def test_requests_added_to_a_cancelled_group_are_cancelled():
    g = linuxaio.aio_group(lambda v: pytest.fail("group callback"))
    linuxaio.max_parallel(0)
    g.add(linuxaio.aio_nop())
    g.cancel()
    late = linuxaio.aio_nop(lambda v: pytest.fail("late child ran"))
    g.add(late)
    assert is_cancelled(late)
    linuxaio.min_parallel(4)
    linuxaio.flush()


def test_cancelling_a_child_does_not_cancel_the_group():
    got = []
    linuxaio.max_parallel(0)
    g = linuxaio.aio_group(lambda v: got.append("group"))
    a, b = linuxaio.aio_nop(got.append), linuxaio.aio_nop(got.append)
    g.add(a, b)
    a.cancel()
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert got == [0, "group"]


def test_cancel_after_group_finished_is_a_no_op():
    got = []
    g = linuxaio.aio_group(got.append)
    g.add(linuxaio.aio_nop())
    linuxaio.flush()
    g.cancel()
    linuxaio.flush()
    assert got == [None]


# ------------------------------------------------------------ nesting

def test_nested_groups():
    order = []
    outer = linuxaio.aio_group(lambda v: order.append(("outer", v)))
    inner = linuxaio.aio_group(lambda v: order.append(("inner", v)))
    inner.add(linuxaio.aio_busy(0.03, lambda v: order.append("inner-child")))
    inner.result("i")
    outer.add(inner, linuxaio.aio_nop(lambda v: order.append("outer-child")))
    outer.result("o")
    linuxaio.flush()
    assert order.index("inner-child") < order.index(("inner", "i")) < order.index(("outer", "o"))
    assert order[-1] == ("outer", "o")
    assert "outer-child" in order and len(order) == 4


def test_deeply_nested_groups():
    got = []
    groups = [linuxaio.aio_group(lambda v, i=i: got.append(i)) for i in range(20)]
    for parent, child in zip(groups, groups[1:]):
        parent.add(child)
    groups[-1].add(linuxaio.aio_nop())
    linuxaio.flush()
    assert got == list(range(19, -1, -1))


# A chain of nested groups, deep enough to overflow any recursion over it: in
# a thread with a small stack (1 MiB), so the depth stays cheap.
DEEP_CHAIN = """
import threading, time, linuxaio
DEPTH = 100_000
how = "%s"
out = []
def main():
    got = []
    linuxaio.max_parallel(0)
    groups = [linuxaio.aio_group(got.append) for _ in range(DEPTH)]
    t = time.thread_time()   # CPU time: a loaded machine adds wall time only
    if how == "bottom-up":
        for parent, child in zip(reversed(groups[:-1]), reversed(groups[1:])):
            parent.add(child)
    else:
        for parent, child in zip(groups, groups[1:]):
            parent.add(child)
    out.append(round(time.thread_time() - t, 1))
    groups[-1].add(linuxaio.aio_nop())
    if how == "cancel":
        groups[0].cancel()
    if how == "reinit":
        linuxaio.reinit()
        del groups[:]       # each group held its parent: freed in a cascade
        out.append("dropped")
    else:
        linuxaio.min_parallel(4)
        linuxaio.flush()
        out.append(len(got))
    out.append(linuxaio.nreqs())
threading.stack_size(1 << 20)
th = threading.Thread(target=main)
th.start()
th.join()
print(*out)
"""


@pytest.mark.parametrize("how", ["top-down", "bottom-up"])
def test_finishing_a_chain_of_100k_nested_groups_does_not_overflow_the_stack(how):
    built, finished, left = in_child(DEEP_CHAIN % how)
    assert (finished, left) == ("100000", "0")


def test_cancelling_a_chain_of_100k_nested_groups_does_not_overflow_the_stack():
    assert in_child(DEEP_CHAIN % "cancel")[1:] == ["0", "0"]   # no callback after a cancel


def test_dropping_a_chain_of_100k_nested_groups_does_not_overflow_the_stack():
    assert in_child(DEEP_CHAIN % "reinit")[1:] == ["dropped", "0"]


def test_building_a_chain_of_nested_groups_top_down_is_linear():
    """Each add used to walk every ancestor to look for a cycle: 100k adds
    took ~20 s; a request without children cannot close one.  (The
    building thread's CPU time: its wall time grows with the machine's load.)"""
    built = float(in_child(DEEP_CHAIN % "top-down")[0])
    assert built < 3.0


def test_cancel_outer_group_cancels_inner():
    fail = lambda v: pytest.fail("callback after cancel")  # noqa: E731
    linuxaio.max_parallel(0)
    outer = linuxaio.aio_group(fail)
    inner = linuxaio.aio_group(fail)
    kid = linuxaio.aio_nop(fail)
    inner.add(kid)
    outer.add(inner)
    outer.cancel()
    assert is_cancelled(inner) and is_cancelled(kid)
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert is_done(outer) and is_done(inner) and is_done(kid)


# ------------------------------------------------------------ refusals

def test_adding_a_finished_request_is_value_error():
    r = linuxaio.aio_nop()
    linuxaio.flush()
    g = linuxaio.aio_group()
    with pytest.raises(ValueError):
        g.add(r)
    assert g.size == 0
    linuxaio.flush()


def test_adding_to_a_finished_group_is_value_error():
    g = linuxaio.aio_group()
    linuxaio.flush()
    assert is_done(g)
    r = linuxaio.aio_nop()
    with pytest.raises(ValueError):
        g.add(r)
    with pytest.raises(ValueError):
        g.feed(lambda grp: None)
    linuxaio.flush()


def test_request_in_two_groups_is_value_error():
    linuxaio.max_parallel(0)
    g1, g2 = linuxaio.aio_group(), linuxaio.aio_group()
    r = linuxaio.aio_nop()
    g1.add(r)
    with pytest.raises(ValueError):
        g2.add(r)
    assert (g1.size, g2.size) == (1, 0)
    linuxaio.min_parallel(4)
    linuxaio.flush()


def test_group_cycle_is_value_error():
    linuxaio.max_parallel(0)
    a, b = linuxaio.aio_group(), linuxaio.aio_group()
    a.add(b)
    with pytest.raises(ValueError):
        b.add(a)
    linuxaio.min_parallel(4)
    linuxaio.flush()


def test_failed_add_adds_nothing():
    linuxaio.max_parallel(0)
    finished = linuxaio.aio_nop()
    finished.cancel()
    linuxaio.poll_cb()
    assert is_done(finished)
    g = linuxaio.aio_group()
    fresh = linuxaio.aio_nop()
    with pytest.raises(ValueError):
        g.add(fresh, finished)
    with pytest.raises(TypeError):
        g.add(fresh, "x")
    assert g.size == 0
    g.add(fresh)       # it was not half-added
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert is_done(g)


ADD_TWICE = """
import linuxaio
linuxaio.max_parallel(0)
g = linuxaio.aio_group()
r, other = linuxaio.aio_nop(), linuxaio.aio_nop()
for args in ((r, r), (other, r, other)):
    try:
        g.add(*args)
        print("added")
    except ValueError:
        print("refused", g.size)
g.add(r)
try:
    g.add(r)     # already in this group
except ValueError:
    print("refused", g.size)
g.cancel()       # spun for ever on a child linked to itself
linuxaio.min_parallel(4)
linuxaio.flush()
print(linuxaio.nreqs())
"""


def test_adding_a_request_twice_raises_and_leaves_the_group_unchanged():
    assert in_child(ADD_TWICE, timeout=20) == ["refused", "0", "refused", "0", "refused", "1", "0"]


# ------------------------------------------------------------ exceptions

def test_exception_in_group_callback_propagates():
    g = linuxaio.aio_group(lambda v: 1 / 0)
    g.add(linuxaio.aio_nop())
    with pytest.raises(ZeroDivisionError):
        linuxaio.flush()
    assert is_done(g)
    linuxaio.flush()
    assert linuxaio.nreqs() == 0


def test_exception_in_last_child_callback_still_finishes_the_group():
    got = []
    g = linuxaio.aio_group(lambda v: got.append("group"))

    def bad(v):
        raise KeyError("child")

    g.add(linuxaio.aio_nop(bad))
    with pytest.raises(KeyError):
        linuxaio.flush()
    linuxaio.flush()
    assert got == ["group"]
    assert is_done(g) and linuxaio.nreqs() == 0
