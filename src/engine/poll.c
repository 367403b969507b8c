/* poll.c: finished requests reach their callbacks and futures: poll_cb,
 * an event loop's drain, waiting (poll_wait, poll, flush), quick awaits;
 * and what reinit, fork and exit drop. */
#define _GNU_SOURCE
#include "ops.h"
#include "dio.h"
#include "future.h"
#include "backend.h"
#include "uring.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- completion ---- */

/* Hand one finished request to whoever waits.  -1 if that raised. */
static int deliver(Request *r)
{
    const lx_op *row = &lx_ops[r->op];
    PyObject *value = NULL, *cb = r->callback;
    int rc = 0, wanted = !CANCELLED(r) && (cb || r->delivery != DELIVER_CALLBACK);

    r->callback = NULL;
    lx_set_finished(r);
    E.nreqs--;
    if (r->ran)
        E.op_ns[r->op] += (r->base.run_ns - E.op_ns[r->op]) / 8;
    if (!wanted) {
        lx_undo_effect(r);
        if (CANCELLED(r))
            lx_engine_cancelled(r, cb);
    } else if (r->base.error)   /* never ran: no worker thread could be started */
        value = lx_no_thread_error(r->base.error);
    else
        value = r->result < 0 ? lx_request_error(r)
                              : row->result(r);
    /* The buffer is free again before the callback, which may reuse it. */
    lx_release_args(r);
    if (wanted)
        rc = lx_hand_over(r, cb, value, r->result < 0 || r->base.error);
    Py_XDECREF(value);
    Py_XDECREF(cb);
    rc = lx_leave_group(r, rc);
    Py_DECREF(r);   /* the engine's reference */
    return rc;
}

/* One entry from the result queue: a request, or a group's event.
 * Returns 1 when a request finished, 0 for an event, -1 on error. */
static int handle(Request *r)
{
    if (r->op == OP_GROUP) {
        Group *g = (Group *)r;
        g->queued = 0;
        g->armed = 1;
        return lx_settle_up((Group *)Py_NewRef(g)) < 0 ? -1 : 0;
    }
    return deliver(r) < 0 ? -1 : 1;
}

/* An await through the loop costs a suspension, a sleep in epoll and a
 * wake-up on the eventfd (10-15 us here): more than a quick request (a stat
 * of a cached inode) takes.  So when the request is the only one in flight
 * (one task awaiting one request at a time: with more, the loop has other
 * work to do meanwhile) and a spinning worker is there to take it, the
 * awaiting task instead gives the loop one turn (a bare yield: a poll
 * that does not sleep) while the worker runs the request, then takes the
 * result itself, spinning a little if it is not there yet.  Bounded by the
 * operation's recent run time (QUICK_OP), the spin (QUICK_SPIN), and a
 * pause after a spin that missed (QUICK_BACKOFF), during which awaits go
 * through the loop again. */
#define QUICK_OP_NS (20 * 1000)
#define QUICK_SPIN_NS (20 * 1000)
#define QUICK_BACKOFF_NS (1000 * 1000)

int lx_await_quick_ok(Request *r)
{
    if (__atomic_load_n(&r->base.state, __ATOMIC_RELAXED) >= LX_QUEUED && !r->finished && E.linger_ns
        && E.op_ns[r->op] < QUICK_OP_NS
        && E.nreqs == 1
        && lx_backend_of(r)->quick_ok()
        && now_ns() >= E.quick_off_until) {
        lx_expect(&r->base);   /* no eventfd wake-up for it */
        return 1;
    }
    return 0;
}

/* The eventfd is read once a poll is done with what it found: first the
 * sink's read (which may take a write the kernel made for a completion of
 * the loop's ring posted just now), then the ring's completions reaped, so
 * that every completion posted before that read is taken here and every
 * one posted after it writes the eventfd again.  The other order lost
 * wake-ups: a completion posted between the reap and the read left the
 * eventfd unreadable with a result in the ring (linuxaio bench --write on
 * the ring hung in select, 1 run in 5). */
static void settle(int found_none)
{
    lx_settle_signal();
    lx_uring_settle(found_none);
}

int lx_await_take(Request *r)
{
    int rc;
    if (r->finished)
        return 1;   /* a drain during the loop's turn got it first */
    if (!lx_take_one(&r->base, QUICK_SPIN_NS)) {
        if (r->finished)
            return 1;
        E.quick_off_until = now_ns() + QUICK_BACKOFF_NS;
        return 0;
    }
    rc = handle(r);
    settle(0);
    return rc < 0 ? -1 : 1;
}

/* Can anything still finish without more submissions?  Every backend is
 * asked before the sink is looked at: requests move from a backend to the
 * sink, so none slips between the reads. */
static int check_progress(void)
{
    const lx_backend *stuck = NULL;
    for (int i = 0; i < LX_NBACKENDS; i++) {
        int rc = lx_backends[i]->can_finish();
        if (rc > 0)
            return 0;
        if (rc == 0)
            stuck = lx_backends[i];
    }
    if (lx_nresults() || E.in_hand)
        return 0;
    for (int i = 0; !stuck && i < LX_NBACKENDS; i++)
        if (lx_backends[i]->confirm_idle())
            return 0;
    /* A backend that finishes in batches (the ring) counts a request out
     * before the sink has it; its confirm_idle waited for that batch. */
    if (lx_nresults() || E.in_hand)
        return 0;
    PyErr_Format(PyExc_RuntimeError, "%zd requests outstanding but none can finish (%s)",
                 E.nreqs, stuck ? stuck->stuck_why : "none in flight");
    return -1;
}

/* Block, without the GIL, until results are ready or nothing is left.
 * Wakes up now and then to see signals and requests finished elsewhere.
 * Results in hand count as ready: a callback that waits (poll_wait, poll,
 * flush) while its poll_cb holds the rest of the batch would otherwise
 * wait for results that are never coming back to the pool. */
static int wait_results(void)
{
    while (E.nreqs > 0 && !lx_nresults() && !E.in_hand) {
        int rc;
        if (check_progress() < 0)
            return -1;
        lx_uring_kick();   /* requests a callback queued must reach the kernel */
        lx_uring_settle(1);   /* the loop's ring's completions */
        if (lx_nresults())
            break;
        Py_BEGIN_ALLOW_THREADS
        rc = lx_wait_results(100 * 1000000LL);
        Py_END_ALLOW_THREADS
        /* A signal may have landed on another thread: Python runs handlers
         * in the main thread only when it checks, so check every time. */
        (void)rc;
        if (PyErr_CheckSignals() < 0)
            return -1;
    }
    return 0;
}

/* An event loop's drain runs awaiting tasks inline (future.c), which submit
 * more: without a bound it could go on for ever, and the loop must get its
 * turn (a 1 ms ticker on it should see well under 1 ms of lag). */
#define DRAIN_BUDGET_NS (200 * 1000)

/* Handle finished requests within max_poll_reqs/max_poll_time (for a
 * loop's drain, within DRAIN_BUDGET_NS at most, and never blocking).
 * Results taken from the pool wait in E.hand, which a callback that polls
 * again (even flush()) goes on with: nothing is stranded in a caller's frame.
 * A loop's drain stops at a request submitted during this same drain, so
 * every await yields to the loop at least once. */
/* How long a poll goes on waiting for, or helping to make, results beyond
 * those it found (see below). */
#define MORE_NS (1000 * 1000)
/* Results are taken a chunk at a time: taking marks each one, and a poll
 * that stops early (a drain's budget, max_poll_time) walks what it did not
 * handle back.  Taking them all made each drain cost as much as everything
 * waiting, and a long queue drained in many turns quadratic.  The chunk
 * starts small and doubles as the poll goes on: a drain that handles a few
 * touches few (a walk over a long queue misses the cache at every step). */
#define TAKE_FIRST 16
#define TAKE_CHUNK 256

static void drop_late(void);

/* No result ready, but some may follow within microseconds: ask the
 * backends to do a worker's job meanwhile if one cannot block (help), or
 * spin for them (linger).  A loop's drain does not help, and spins only for
 * requests it did not submit itself: it may not hand out the results of
 * those before the loop's next turn.  1 if results may wait now. */
static int help_or_linger(int for_loop, int one_by_one)
{
    for (int i = 0; i < LX_NBACKENDS; i++) {
        const lx_backend *b = lx_backends[i];
        if (!for_loop && b->can_help()) {
            int helped;
            Py_BEGIN_ALLOW_THREADS
            helped = b->help(one_by_one);
            Py_END_ALLOW_THREADS
            if (helped)
                return 1;
        }
        if (E.linger_ns && (!for_loop || b->in_flight() > lx_D.submitted) && b->linger(E.linger_ns))
            return 1;
    }
    return 0;
}

static PyObject *poll_results(int for_loop)
{
    int64_t started;
    unsigned long done = 0;
    int64_t budget = E.max_poll_time_ns;
    int64_t deadline;
    unsigned serial = 0;
    unsigned long chunk = TAKE_FIRST;
    int rc = 0;
    Py_ssize_t nreqs_at_call = E.nreqs;

    if (for_loop) {
        if (!budget || budget > DRAIN_BUDGET_NS)
            budget = DRAIN_BUDGET_NS;
        serial = ++lx_D.serial;
        lx_D.draining++;
        lx_D.submitted = 0;
    }
    drop_late();   /* abandoned by a reinit(), back since */
    lx_uring_hold(1);   /* what the callbacks submit enters the ring at once, at the end */
    lx_uring_reap();   /* the loop's ring's completions: into the sink */
    started = now_ns();
    deadline = budget ? started + budget : 0;
    for (;;) {
        lx_req *b;
        if (!E.hand) {
            /* Only requests outstanding at the call keep it blocked: those
             * its callbacks (or other threads) submit meanwhile would keep
             * it going for ever, so it returns after that many results. */
            unsigned long want = chunk;
            if (E.max_outstanding && E.nreqs >= E.max_outstanding && !for_loop
                && nreqs_at_call - (Py_ssize_t)done >= E.max_outstanding
                && (rc = wait_results()) < 0)
                break;
            if (E.max_poll_reqs) {
                if (done >= E.max_poll_reqs)
                    break;
                if (E.max_poll_reqs - done < want)
                    want = E.max_poll_reqs - done;
            }
            if (chunk < TAKE_CHUNK)
                chunk *= 2;
            if (!(E.hand = lx_take_results(want, &E.in_hand))) {
                /* Results often follow within microseconds: rather than
                 * return to a trip through the eventfd and the poll, help
                 * make them or spin for them (help_or_linger). */
                int64_t t;
                if (!done)
                    break;   /* none was ready: return at once */
                /* Only so long: while callbacks submit more, results (its
                 * own, when it helps) would never run out, and the caller
                 * (an event loop's reader callback) must get its turn. */
                t = now_ns();
                if (t - started > MORE_NS || (deadline && t >= deadline))
                    break;
                lx_uring_reap();   /* the loop's ring's, come meanwhile */
                if (lx_nresults())
                    continue;
                if (help_or_linger(for_loop, deadline != 0))
                    continue;
                break;
            }
        }
        b = E.hand;
        if (for_loop && REQ_OF(b)->in_drain && REQ_OF(b)->drain_serial == serial)
            break;   /* submitted by a task this drain resumed: next time */
        E.hand = b->next;
        E.in_hand--;
        if ((rc = handle(REQ_OF(b))) > 0)
            done++;
        if (rc < 0 || (deadline && now_ns() >= deadline)
            || (E.max_poll_reqs && done >= E.max_poll_reqs))
            break;
    }
    if (E.hand) {   /* back to the pool, in front, eventfd still readable */
        lx_return_results(E.hand, E.in_hand);
        E.hand = NULL;
        E.in_hand = 0;
    }
    settle(done == 0);
    lx_uring_hold(0);
    if (for_loop)
        lx_D.draining--;
    return rc < 0 ? NULL : PyLong_FromUnsignedLong(done);
}

/* A synchronous poll (poll_cb, poll, flush) wakes awaiting tasks through
 * their loop only: it may run inside a task, even one a drain stepped
 * inline, and asyncio cannot enter one task inside another. */
static PyObject *poll_cb(PyObject *m, PyObject *unused)
{
    int saved = lx_future_inline;
    PyObject *res;
    lx_future_inline = 0;
    res = poll_results(0);
    lx_future_inline = saved;
    return res;
}

/* _drain(inline=True): poll_cb for an event loop (see poll_results). */
static PyObject *drain(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    int saved = lx_future_inline, inline_ok = 1;
    PyObject *res;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "_drain(inline=True)");
        return NULL;
    }
    if (nargs == 1 && (inline_ok = PyObject_IsTrue(args[0])) < 0)
        return NULL;
    lx_future_inline = inline_ok;
    res = poll_results(1);
    lx_future_inline = saved;
    return res;
}

static PyObject *poll_wait(PyObject *m, PyObject *unused)
{
    if (wait_results() < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *poll(PyObject *m, PyObject *unused)
{
    if (wait_results() < 0)
        return NULL;
    return poll_cb(m, NULL);
}

static PyObject *flush(PyObject *m, PyObject *unused)
{
    while (E.nreqs > 0) {
        PyObject *n;
        if (wait_results() < 0 || !(n = poll_cb(m, NULL)))
            return NULL;
        Py_DECREF(n);
    }
    Py_RETURN_NONE;
}

/* ---- dropping: reinit and fork abandon what is in flight ---- */

/* Nobody will get its result: it is no longer outstanding.  Counted out
 * of nreqs here, once, so that requests other threads submit meanwhile
 * (reinit lets go of the GIL) stay counted. */
static void forget(Request *r)
{
    if (r->finished)
        return;
    lx_set_finished(r);
    E.nreqs--;
    lx_tell_awaiter(r, r->callback);
    Py_CLEAR(r->callback);
    if (r->group) {
        Group *g = r->group;
        lx_child_unlink(r);
        Py_DECREF(g);
    }
}

/* A request back from the pool for good, its result unwanted. */
static void drop(Request *r)
{
    if (r->op == OP_GROUP) {   /* groups go with the live list */
        ((Group *)r)->queued = 0;
        return;
    }
    lx_undo_effect(r);
    forget(r);
    lx_release_args(r);
    Py_DECREF(r);   /* the engine's reference */
}

/* In the thread that finished an abandoned request (pool.h): no GIL. */
void lx_undo_abandoned(lx_req *base)
{
    lx_undo_effect(REQ_OF(base));
}

static void drop_list(lx_req *list)
{
    while (list) {
        lx_req *next = list->next;
        drop(REQ_OF(list));
        list = next;
    }
}

/* While a reinit() is between abandoning requests and holding them (it
 * waits for the GIL), one that comes back must stay where it is: dropped
 * here, it could be freed under reinit(). */
static int reinits_running;

static void drop_late(void)
{
    if (!reinits_running)
        drop_list(lx_take_late());
}

static void drop_all(lx_req *list)
{
    lx_req *hand = E.hand;
    E.hand = NULL;
    drop_list(hand);   /* taken by a poll_cb that a callback of it interrupted */
    drop_list(list);
    while (E.live.live_next != &E.live) {
        Group *g = E.live.live_next;
        lx_live_unlink(g);
        if (!g->req.finished) {
            lx_set_finished(&g->req);
            E.nreqs--;
        }
        lx_undo_slots(g);
        lx_tell_awaiter(&g->req, g->req.callback);
        Py_CLEAR(g->req.callback);
        Py_CLEAR(g->feeder);
        Py_DECREF(g);
    }
    E.in_hand = 0;
}

/* How long reinit() lets running requests finish before it abandons them. */
#define REINIT_GRACE_NS (100 * 1000000LL)

static PyObject *reinit(PyObject *m, PyObject *unused)
{
    unsigned long n;
    reinits_running++;
    for (int b = 0; b < LX_NBACKENDS; b++) {
        const lx_backend *be = lx_backends[b];
        lx_req **stuck;
        long nstuck;
        Py_BEGIN_ALLOW_THREADS
        be->stop(REINIT_GRACE_NS);
        /* Still running (an empty pipe, a hung NFS server): abandoned, so
         * that reinit() returns and fresh workers start.  Without memory
         * for that, wait as before. */
        while (!(stuck = be->abandon(&nstuck)) && nstuck < 0)
            be->stop(REINIT_GRACE_NS);
        Py_END_ALLOW_THREADS
        /* The engine keeps its reference to each, and the buffers it writes
         * into, until it comes back (drop_late).  tell_awaiter() may let
         * another thread run, and a poll_cb() there drop one that came back:
         * hold each meanwhile. */
        for (long i = 0; i < nstuck; i++)
            Py_INCREF(REQ_OF(stuck[i]));
        for (long i = 0; i < nstuck; i++) {
            forget(REQ_OF(stuck[i]));
            Py_DECREF(REQ_OF(stuck[i]));
        }
        free(stuck);
    }
    reinits_running--;
    drop_all(lx_take_results(0, &n));
    drop_late();
    Py_RETURN_NONE;
}

static PyObject *loop_fileno(PyObject *m, PyObject *unused) { return PyLong_FromLong(lx_loop_fd); }

static PyObject *after_fork(PyObject *m, PyObject *unused)
{
    /* the child's eventfd is new: the duplicate must follow it */
    if (dup3(lx_completion_fileno(), lx_loop_fd, O_CLOEXEC) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    for (int i = 0; i < LX_NBACKENDS; i++)
        drop_list(lx_backends[i]->orphans());
    drop_all(lx_completion_orphans());
    E.nreqs = 0;   /* the parent's requests are nowhere here */
    Py_RETURN_NONE;
}

static PyObject *at_exit(PyObject *m, PyObject *timeout)
{
    double t = PyFloat_AsDouble(timeout);
    unsigned left = 0;
    if (t == -1.0 && PyErr_Occurred())
        return NULL;
    /* EXIT_GRACE is the user's: out of range, or NaN, it must not make an
     * undefined int64_t.  Past 1e9 s is for ever anyway. */
    if (!(t >= 0))
        t = 0;
    else if (t > 1e9)
        t = 1e9;
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < LX_NBACKENDS; i++)
        left += lx_backends[i]->shutdown((int64_t)(t * 1e9));
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLong(left);
}

/* A quick await driven from Python (trio's, in _loop.py): see
 * lx_await_quick_ok. */
static PyObject *request_quick(Request *r, PyObject *unused)
{
    return PyBool_FromLong(!r->loop && lx_await_quick_ok(r));
}

static PyObject *request_take(Request *r, PyObject *unused)
{
    int taken = lx_await_take(r);
    return taken < 0 ? NULL : PyBool_FromLong(taken);
}

/* The submitter will not take its result after all: signal it as usual. */
void lx_await_abandon(Request *r)
{
    lx_unexpect(&r->base);
}

static PyObject *request_abandon(Request *r, PyObject *unused)
{
    lx_await_abandon(r);
    Py_RETURN_NONE;
}

/* Added to the Request type at init. */
PyMethodDef lx_poll_request_methods[] = {
    {"_quick", (PyCFunction)request_quick, METH_NOARGS,
     "Await this quick request with one turn of the loop: the engine will not signal its result."},
    {"_take", (PyCFunction)request_take, METH_NOARGS,
     "After _quick() and the turn: take the result (the callback runs now); False: wait as usual."},
    {"_abandon", (PyCFunction)request_abandon, METH_NOARGS,
     "After _quick(): it will not be taken after all; signal its result as usual."},
    {NULL}};

#define NOARGS(name, doc) {#name, (PyCFunction)name, METH_NOARGS, doc}

PyMethodDef lx_poll_module_methods[] = {
    NOARGS(poll_cb, "poll_cb()\n--\n\nRun the callbacks of finished requests; return how many finished."),
    NOARGS(poll_wait, "poll_wait()\n--\n\nWait until some request has finished (returns at once if none is outstanding)."),
    NOARGS(poll, "poll()\n--\n\npoll_wait() then poll_cb()."),
    NOARGS(flush, "flush()\n--\n\nWait for and handle every outstanding request."),
    NOARGS(reinit, "reinit()\n--\n\nAbandon every request (no callbacks run) and start afresh."),
    {"_drain", (PyCFunction)(void (*)(void))drain, METH_FASTCALL,
     "poll_cb() for an event loop: only the results ready now, no waiting."},
    {"_after_fork", (PyCFunction)after_fork, METH_NOARGS, NULL},
    {"_loop_fileno", (PyCFunction)loop_fileno, METH_NOARGS,
     "The descriptor the loop glue watches: poll_fileno()'s eventfd under another number."},
    {"_at_exit", (PyCFunction)at_exit, METH_O, NULL},
    {NULL}};
