/* future.c: a request awaited under asyncio is its own future.
 *
 * asyncio's Task accepts any object that speaks the Future protocol
 * (_asyncio_future_blocking, get_loop, add_done_callback, result, cancel).
 * A request bound to a loop speaks it, so an await costs no asyncio.Future,
 * and its completion wakes the task straight from the drain (in the task's
 * context, as the loop's Handle would) instead of through call_soon.
 *
 * States: pending until the engine delivers (done or failed) or the awaiter
 * cancels.  A result that arrives for a cancelled future is undone (an
 * opened fd is closed): nobody will ever see it. */
#include "future.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

static lx_future_hooks up;   /* the request layer's, from lx_future_add_to_type */

enum { FUT_PENDING = 0, FUT_DONE, FUT_FAILED, FUT_CANCELLED };

static PyObject *loop_type, *cancelled_error, *invalid_state_error;
static PyObject *last_loop;   /* a weak reference to the last object found to be a loop */
static PyObject *str_call_soon, *str_call_soon_threadsafe, *kw_context;

/* The last loop seen is remembered by a weak reference: a strong one kept
 * the last loop alive after asyncio.run() or uvloop.run() returned (with a
 * closed uvloop loop's pipes: an fd leak), until another loop came along.
 * A weak reference to a dead loop matches no new loop at the same address.
 * A loop that cannot be weakly referenced is simply not remembered. */
static int is_last_loop(PyObject *ref, PyObject *loop)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *obj;
    if (!ref || PyWeakref_GetRef(ref, &obj) <= 0)
        return 0;
    Py_DECREF(obj);   /* identity only: loop is alive, so obj is it or another */
    return obj == loop;
#else
    return ref && PyWeakref_GET_OBJECT(ref) == loop;
#endif
}

/* The loop a weak reference still points to (a new reference), or NULL. */
static PyObject *last_loop_alive(PyObject *ref)
{
    PyObject *obj;
    if (!ref)
        return NULL;
#if PY_VERSION_HEX >= 0x030D0000
    if (PyWeakref_GetRef(ref, &obj) <= 0) {
        PyErr_Clear();
        return NULL;
    }
    return obj;
#else
    obj = PyWeakref_GET_OBJECT(ref);
    return obj == Py_None ? NULL : Py_NewRef(obj);
#endif
}

static void remember_loop(PyObject **ref, PyObject *loop)
{
    PyObject *w = PyWeakref_NewRef(loop, NULL);
    if (!w)
        PyErr_Clear();
    Py_XSETREF(*ref, w);
}

int lx_future_bind(Request *r, PyObject *loop)
{
    int is_loop;
    if (!loop_type) {
        PyObject *asyncio = PyImport_ImportModule("asyncio");
        if (!asyncio)
            return -1;
        loop_type = PyObject_GetAttrString(asyncio, "AbstractEventLoop");
        cancelled_error = PyObject_GetAttrString(asyncio, "CancelledError");
        invalid_state_error = PyObject_GetAttrString(asyncio, "InvalidStateError");
        Py_DECREF(asyncio);
        if (!loop_type || !cancelled_error || !invalid_state_error)
            return -1;
    }
    /* The same loop, request after request: skip the ABC isinstance check. */
    if (!is_last_loop(last_loop, loop)) {
        if ((is_loop = PyObject_IsInstance(loop, loop_type)) <= 0)
            return is_loop;
        remember_loop(&last_loop, loop);
    }
    r->loop = Py_NewRef(loop);
    r->owner = PyThread_get_thread_ident();
    return 1;
}

/* Run one done callback now, in its context (the Task's wake-up enters
 * none itself: the loop's Handle would have).  While it runs (a task
 * stepped inline), nothing it calls may step another task inline: asyncio
 * refuses to enter a task inside another, and that task's wake-up is lost. */
static int call_in_context(PyObject *fn, PyObject *ctx, PyObject *arg)
{
    PyObject *res;
    int saved = lx_future_inline;
    if (ctx && ctx != Py_None && PyContext_Enter(ctx) < 0)
        return -1;
    lx_future_inline = 0;
    res = PyObject_CallOneArg(fn, arg);
    lx_future_inline = saved;
    if (ctx && ctx != Py_None)
        PyContext_Exit(ctx);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* Hand a done callback to the loop, to run in its own time and thread. */
static int schedule(Request *r, PyObject *how, PyObject *fn, PyObject *ctx)
{
    PyObject *res;
    if (ctx && ctx != Py_None) {
        PyObject *a[4] = {r->loop, fn, (PyObject *)r, ctx};
        res = PyObject_VectorcallMethod(how, a, 3, kw_context);
    } else {
        PyObject *a[3] = {r->loop, fn, (PyObject *)r};
        res = PyObject_VectorcallMethod(how, a, 3, NULL);
    }
    Py_XDECREF(res);
    return res ? 0 : -1;
}

_Thread_local int lx_future_inline;   /* set by a drain (poll.c) */

static PyObject *str_ready;

/* Nothing queued on the loop (asyncio's private _ready: callbacks to run
 * in this turn or the next).  Then a task resumed inline overtakes none. */
static int loop_has_nothing_queued(PyObject *loop)
{
    PyObject *ready = PyObject_GetAttr(loop, str_ready);
    Py_ssize_t n;
    if (!ready) {
        PyErr_Clear();
        return 0;
    }
    n = PyObject_Length(ready);
    Py_DECREF(ready);
    if (n < 0)
        PyErr_Clear();
    return n == 0;
}

/* The future is done: run (or schedule) every done callback once.  Inline
 * only where the loop runs I/O callbacks after the callbacks already queued
 * (asyncio's own loops); uvloop polls first, so there it goes through
 * call_soon, to keep a task from overtaking what was queued before. */
static int wake(Request *r, int now)
{
    PyObject *fn = r->waiter, *ctx = r->waiter_ctx, *more = r->rare ? r->rare->more_waiters : NULL;
    int rc = 0, mine = r->owner == PyThread_get_thread_ident();
    int here = now && mine && lx_future_inline
               && (lx_future_inline == LX_WAKE_HERE || !up.fresh(r) || loop_has_nothing_queued(r->loop));
    PyObject *how = mine ? str_call_soon : str_call_soon_threadsafe;
    r->waiter = r->waiter_ctx = NULL;
    if (more)
        r->rare->more_waiters = NULL;
    if (fn) {
        rc = here ? call_in_context(fn, ctx, (PyObject *)r) : schedule(r, how, fn, ctx);
        Py_DECREF(fn);
        Py_XDECREF(ctx);
    }
    if (more) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(more) && rc == 0; i++) {
            PyObject *pair = PyList_GET_ITEM(more, i);
            PyObject *f = PyTuple_GET_ITEM(pair, 0), *c = PyTuple_GET_ITEM(pair, 1);
            rc = here ? call_in_context(f, c, (PyObject *)r) : schedule(r, how, f, c);
        }
        Py_DECREF(more);
    }
    return rc;
}

static int settle_here(Request *r, PyObject *value, int failed)
{
    if (r->fut_state != FUT_PENDING) {   /* its awaiter has gone */
        up.undo(r);
        return 0;
    }
    r->fut_state = failed ? FUT_FAILED : FUT_DONE;
    r->outcome = Py_NewRef(value);
    return wake(r, 1);
}

int lx_future_settle(Request *r, PyObject *value, int failed)
{
    PyObject *settle, *res;
    if (r->owner == PyThread_get_thread_ident())
        return settle_here(r, value, failed);
    /* Drained by another thread: settle it in the loop's own thread, where
     * no cancellation can slip in between the result and the task. */
    if (!(settle = PyObject_GetAttrString((PyObject *)r, "_settle")))
        return -1;
    {
        PyObject *a[4] = {r->loop, settle, value, failed ? Py_True : Py_False};
        res = PyObject_VectorcallMethod(str_call_soon_threadsafe, a, 4, NULL);
    }
    Py_DECREF(settle);
    if (!res) {   /* that loop is closed: nobody will take the result */
        PyErr_Clear();
        up.undo(r);
        return 0;
    }
    Py_DECREF(res);
    return 0;
}

static PyObject *fut_settle_method(Request *r, PyObject *const *args, Py_ssize_t nargs)
{
    int rc, saved = lx_future_inline;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_settle(value, failed)");
        return NULL;
    }
    /* A callback of the loop's own (call_soon_threadsafe), not in a task:
     * it may wake the task inline, as a drain would. */
    lx_future_inline = 1;
    rc = settle_here(r, args[0], PyObject_IsTrue(args[1]));
    lx_future_inline = saved;
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* A quick await (see poll.c) that will not take its result after all:
 * the engine signals the result as usual, for a drain to deal with. */
static void end_quick(Request *r)
{
    if (r->quick) {
        r->quick = 0;
        up.abandon_quick(r);
    }
}

int lx_future_cancel(Request *r, PyObject *msg)
{
    if (r->fut_state != FUT_PENDING)
        return 0;
    r->fut_state = FUT_CANCELLED;
    Py_XSETREF(r->outcome, msg && msg != Py_None ? Py_NewRef(msg) : NULL);
    end_quick(r);   /* its awaiter will not take the result now */
    up.cancel(r);
    /* Never inline: cancel() is called from inside the awaiting task. */
    return wake(r, 0) < 0 ? -1 : 1;
}

void lx_future_clear(Request *r)
{
    Py_CLEAR(r->loop);
    Py_CLEAR(r->waiter);
    Py_CLEAR(r->waiter_ctx);
    if (r->rare)
        Py_CLEAR(r->rare->more_waiters);
    Py_CLEAR(r->outcome);
    if (r->fut_state != FUT_PENDING)
        r->fut_state = FUT_CANCELLED;   /* the one state that needs no outcome */
}

int lx_future_done(Request *r) { return r->fut_state != FUT_PENDING; }

void lx_future_done_inline(Request *r, PyObject *value)
{
    r->fut_state = FUT_DONE;
    r->outcome = value;
}
int lx_future_cancelled(Request *r) { return r->fut_state == FUT_CANCELLED; }

static PyObject *raise_cancelled(Request *r)
{
    PyObject *exc = r->outcome ? PyObject_CallOneArg(cancelled_error, r->outcome)
                               : PyObject_CallNoArgs(cancelled_error);
    if (exc) {
        PyErr_SetObject(cancelled_error, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

PyObject *lx_future_result(Request *r)
{
    if (!r->loop) {
        PyErr_SetString(PyExc_TypeError, "result(): this request is not bound to an event loop "
                                         "(its callback gets the result)");
        return NULL;
    }
    switch (r->fut_state) {
    case FUT_DONE:
        return Py_NewRef(r->outcome);
    case FUT_FAILED:
        PyErr_SetObject((PyObject *)Py_TYPE(r->outcome), r->outcome);
        return NULL;
    case FUT_CANCELLED:
        return raise_cancelled(r);
    default:
        PyErr_SetString(invalid_state_error ? invalid_state_error : PyExc_RuntimeError,
                        "Result is not set.");
        return NULL;
    }
}

static PyObject *fut_result_method(Request *r, PyObject *unused) { return lx_future_result(r); }

/* asyncio's gather asks a cancelled future it was given for the error to
 * hand on (an os twin's runner gives it the request itself). */
static PyObject *fut_make_cancelled_error(Request *r, PyObject *unused)
{
    return r->outcome ? PyObject_CallOneArg(cancelled_error, r->outcome)
                      : PyObject_CallNoArgs(cancelled_error);
}

static PyObject *fut_exception(Request *r, PyObject *unused)
{
    switch (r->fut_state) {
    case FUT_DONE:
        Py_RETURN_NONE;
    case FUT_FAILED:
        return Py_NewRef(r->outcome);
    case FUT_CANCELLED:
        return raise_cancelled(r);
    default:
        PyErr_SetString(invalid_state_error ? invalid_state_error : PyExc_RuntimeError,
                        "Exception is not set.");
        return NULL;
    }
}

static PyObject *fut_get_loop(Request *r, PyObject *unused)
{
    if (!r->loop) {
        PyErr_SetString(PyExc_RuntimeError, "this request is not bound to an event loop");
        return NULL;
    }
    return Py_NewRef(r->loop);
}

static PyObject *fut_add_done_callback(Request *r, PyObject *const *args, Py_ssize_t nargs,
                                       PyObject *kwnames)
{
    PyObject *fn, *ctx = Py_None;
    if (nargs != 1 || (kwnames && PyTuple_GET_SIZE(kwnames) > 1)) {
        PyErr_SetString(PyExc_TypeError, "add_done_callback(fn, *, context=None)");
        return NULL;
    }
    fn = args[0];
    if (kwnames && PyTuple_GET_SIZE(kwnames) == 1) {
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "context")) {
            PyErr_SetString(PyExc_TypeError, "add_done_callback(fn, *, context=None)");
            return NULL;
        }
        ctx = args[1];
    }
    if (!r->loop) {
        PyErr_SetString(PyExc_RuntimeError, "this request is not bound to an event loop");
        return NULL;
    }
    if (r->fut_state != FUT_PENDING) {
        if (schedule(r, str_call_soon, fn, ctx) < 0)
            return NULL;
    } else if (!r->waiter) {
        r->waiter = Py_NewRef(fn);
        r->waiter_ctx = Py_NewRef(ctx);
    } else {
        PyObject *pair = PyTuple_Pack(2, fn, ctx);
        lx_rare *x = pair ? lx_request_rare(r) : NULL;
        if (!x || (!x->more_waiters && !(x->more_waiters = PyList_New(0)))
            || PyList_Append(x->more_waiters, pair) < 0) {
            Py_XDECREF(pair);
            return NULL;
        }
        Py_DECREF(pair);
    }
    Py_RETURN_NONE;
}

/* A comparison runs __eq__, which may add or remove callbacks: what is
 * compared is held meanwhile, and removed only if it is still in place. */
static PyObject *fut_remove_done_callback(Request *r, PyObject *fn)
{
    Py_ssize_t removed = 0;
    PyObject *list;
    if (r->waiter) {
        PyObject *w = Py_NewRef(r->waiter);
        int eq = PyObject_RichCompareBool(w, fn, Py_EQ);
        if (eq > 0 && r->waiter == w) {
            Py_CLEAR(r->waiter);
            Py_CLEAR(r->waiter_ctx);
            removed++;
        }
        Py_DECREF(w);
        if (eq < 0)
            return NULL;
    }
    if (!r->rare || !(list = Py_XNewRef(r->rare->more_waiters)))
        return PyLong_FromSsize_t(removed);
    for (Py_ssize_t i = PyList_GET_SIZE(list) - 1; i >= 0; i--) {
        PyObject *pair;
        int eq;
        if (i >= PyList_GET_SIZE(list))
            continue;   /* shrunk by the last comparison */
        pair = Py_NewRef(PyList_GET_ITEM(list, i));
        eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(pair, 0), fn, Py_EQ);
        if (eq > 0 && list == r->rare->more_waiters && i < PyList_GET_SIZE(list)
            && PyList_GET_ITEM(list, i) == pair) {
            if (PySequence_DelItem(list, i) < 0)
                eq = -1;
            else
                removed++;
        }
        Py_DECREF(pair);
        if (eq < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    Py_DECREF(list);
    return PyLong_FromSsize_t(removed);
}

/* ---- the awaiter: `await request` ---- */

PyObject *lx_future_await(Request *r)
{
    if (!r->loop) {
        PyErr_SetString(PyExc_TypeError, "only a request bound to an event loop can be awaited "
                                         "(use linuxaio.os)");
        return NULL;
    }
    return Py_NewRef(r);
}

/* One step of `await r`: what the task gets (*done 0: a yield) or the
 * result (*done 1), or NULL with an exception set. */
static PyObject *step(Request *r, int *done)
{
    *done = 0;
    if (!r->yielded && r->fut_state == FUT_PENDING) {
        r->yielded = 1;
        if (up.quick_ok(r)) {
            /* A bare yield: the task is stepped again after one turn of
             * the loop, while a worker runs the request. */
            r->quick = 1;
            Py_RETURN_NONE;
        }
        r->blocking = 1;
        return Py_NewRef(r);   /* to the task, which waits on it */
    }
    if (r->quick) {
        r->quick = 0;
        if (r->fut_state == FUT_PENDING) {
            int taken = up.take(r);
            if (taken < 0)
                return NULL;
            if (!taken || r->fut_state == FUT_PENDING) {
                r->blocking = 1;
                return Py_NewRef(r);   /* not quick after all: wait on it */
            }
        }
    }
    *done = 1;
    return lx_future_result(r);
}

PyObject *lx_future_iternext(Request *r)
{
    PyObject *res;
    int done;
    if (!r->loop)
        return lx_future_await(r);
    if (!(res = step(r, &done)) || !done)
        return res;
    if (PyTuple_Check(res) || PyExceptionInstance_Check(res)) {
        /* PyErr_SetObject would take a tuple for the exception's args */
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, res);
        Py_DECREF(res);
        if (!stop)
            return NULL;
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    } else {
        PyErr_SetObject(PyExc_StopIteration, res);
        Py_DECREF(res);
    }
    return NULL;
}

/* The await's send without a StopIteration: the interpreter's SEND asks
 * am_send first, and a result returned here costs no exception object
 * (an await that completed inline is all this). */
PySendResult lx_future_am_send(Request *r, PyObject *arg, PyObject **result)
{
    int done;
    if (!r->loop) {
        *result = lx_future_await(r);
        return PYGEN_ERROR;
    }
    if (!(*result = step(r, &done)))
        return PYGEN_ERROR;
    return done ? PYGEN_RETURN : PYGEN_NEXT;
}

static PyObject *fut_send(Request *r, PyObject *value) { return lx_future_iternext(r); }

/* An exception thrown into the awaiting coroutine (CancelledError above
 * all) cancels the request before it propagates. */
static PyObject *fut_throw(Request *r, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *typ, *val, *tb;
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw(type[, value[, traceback]])");
        return NULL;
    }
    end_quick(r);
    if (r->loop && r->fut_state == FUT_PENDING)
        r->fut_state = FUT_CANCELLED;   /* a late result is undone */
    else if (r->fut_state == FUT_DONE)
        up.undo(r);   /* delivered, but the task will never take it */
    up.cancel(r);
    typ = args[0];
    val = nargs > 1 ? args[1] : Py_None;
    tb = nargs > 2 ? args[2] : Py_None;
    if (PyExceptionInstance_Check(typ)) {
        val = typ;
        typ = (PyObject *)Py_TYPE(typ);
    } else if (!PyExceptionClass_Check(typ)) {
        PyErr_SetString(PyExc_TypeError, "exceptions must be classes or instances deriving from BaseException");
        return NULL;
    }
    PyErr_SetObject(typ, val);
    if (tb != Py_None && PyTraceBack_Check(tb)) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        Py_XDECREF(etb);
        PyErr_Restore(et, ev, Py_NewRef(tb));
    }
    return NULL;
}

/* The awaiting coroutine was closed (a pending task destroyed, say). */
static PyObject *fut_close(Request *r, PyObject *unused)
{
    end_quick(r);
    Py_RETURN_NONE;
}

static PyObject *fut_get_blocking(Request *r, void *c)
{
    if (!r->loop)
        Py_RETURN_NONE;   /* not a future: asyncio.isfuture() says no */
    return PyBool_FromLong(r->blocking);
}

static int fut_set_blocking(Request *r, PyObject *v, void *c)
{
    int b = v ? PyObject_IsTrue(v) : 0;
    if (b < 0)
        return -1;
    r->blocking = (unsigned char)b;
    return 0;
}

static PyMethodDef future_methods[] = {
    {"result", (PyCFunction)fut_result_method, METH_NOARGS, "The result (asyncio.Future protocol)."},
    {"exception", (PyCFunction)fut_exception, METH_NOARGS, "The exception (asyncio.Future protocol)."},
    {"get_loop", (PyCFunction)fut_get_loop, METH_NOARGS, "The loop the request is bound to."},
    {"_make_cancelled_error", (PyCFunction)fut_make_cancelled_error, METH_NOARGS, NULL},
    {"add_done_callback", (PyCFunction)(void (*)(void))fut_add_done_callback,
     METH_FASTCALL | METH_KEYWORDS, "add_done_callback(fn, *, context=None)"},
    {"remove_done_callback", (PyCFunction)fut_remove_done_callback, METH_O, NULL},
    {"send", (PyCFunction)fut_send, METH_O, NULL},
    {"_settle", (PyCFunction)(void (*)(void))fut_settle_method, METH_FASTCALL, NULL},
    {"throw", (PyCFunction)(void (*)(void))fut_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)fut_close, METH_NOARGS,
     "close()\n--\n\nIterator protocol: the coroutine awaiting this request was closed.\n"
     "(Does not close a file; the request goes on.)"},
    {NULL}};

/* gather(..., return_exceptions=True) reads a cancelled child's message */
static PyObject *fut_get_cancel_message(Request *r, void *c)
{
    if (r->fut_state == FUT_CANCELLED && r->outcome)
        return Py_NewRef(r->outcome);
    Py_RETURN_NONE;
}

static PyGetSetDef future_getset[] = {
    {"_cancel_message", (getter)fut_get_cancel_message, NULL, NULL, NULL},
    {"_asyncio_future_blocking", (getter)fut_get_blocking, (setter)fut_set_blocking, NULL, NULL},
    {NULL}};

int lx_future_add_to_type(PyTypeObject *type, const lx_future_hooks *hooks)
{
    up = *hooks;
    if (!(str_call_soon = PyUnicode_InternFromString("call_soon"))
        || !(str_ready = PyUnicode_InternFromString("_ready"))
        || !(str_call_soon_threadsafe = PyUnicode_InternFromString("call_soon_threadsafe"))
        || !(kw_context = Py_BuildValue("(s)", "context")))
        return -1;
    return lx_type_add_methods(type, future_methods, future_getset);
}

/* ---- run(submit, *args): the awaitable for one request ----
 * The glue of _loop.py on the hot path, in C: every await of a linuxaio call
 * passes here, and a Python function with *args cost more than the
 * request's whole trip through the engine.  Under a running asyncio loop
 * the request is bound to it (submit(*args, loop)); the first request on a
 * loop calls on_new_loop(loop) (it watches the eventfd); without one,
 * elsewhere(submit, *args) decides (trio). */
static struct {
    PyObject *get_running_loop, *on_new_loop, *elsewhere;
    PyObject *last_loop;   /* a weak reference (is_last_loop: why not a strong one) */
    int last_is_base;      /* last_loop is an asyncio.BaseEventLoop */
    PyObject *base_loop_type, *str_thread_id;
    int get_running_loop_is_c;   /* the hook is _asyncio's own (future.c's holder read) */
    int fork_counted;            /* count_fork runs in a forked child */
} H;

/* Forks since import: a loop found before a fork is not the child's. */
static unsigned long forks;
static pid_t my_pid;   /* getpid(), as of the last fork */
static void count_fork(void)
{
    forks++;
    my_pid = getpid();
}

#if PY_VERSION_HEX < 0x030C0000
/* ---- the running loop as asyncio's C module keeps it (3.11) ----
 * asyncio's _get_running_loop (Modules/_asynciomodule.c, 3.11) reads a
 * holder from the thread state's dict, made anew by every
 * _set_running_loop (uvloop's run_forever calls it too), with the loop and
 * the pid it was set in; it calls getpid(2) every time, to tell a holder
 * inherited through fork().  Here the same holder is read and its pid
 * compared with the one remembered at the last fork: exact as asyncio's
 * answer, for asyncio and uvloop, in any thread, nested or replaced
 * loops alike, without the syscall.  The layout is checked once (the
 * type's name and size, and that the holder asyncio just answered from
 * holds the loop it answered); anything else turns this off. */
typedef struct {
    PyObject_HEAD
    PyObject *rl_loop;
    pid_t rl_pid;
} holder_layout;

static struct {
    int state;              /* 0 unchecked, 1 usable, -1 off */
    PyTypeObject *type;     /* asyncio's _RunningLoopHolder */
    PyObject *key;          /* "__asyncio_running_event_loop__" */
} RL;

/* The holder in this thread's state, borrowed, or NULL. */
static PyObject *holder_here(void)
{
    PyObject *d = PyThreadState_GetDict(), *h;
    if (!d || !(h = PyDict_GetItemWithError(d, RL.key))) {
        PyErr_Clear();
        return NULL;
    }
    return h;
}

/* asyncio answered `loop` (not None) just now, with no Python code run
 * since: the first time, check that the holder says the same. */
static void check_holder(PyObject *loop)
{
    PyObject *h;
    if (RL.state)
        return;
    RL.state = -1;
    if (!H.fork_counted)
        return;   /* a child would take its parent's holder for its own */
    if (!(RL.key = PyUnicode_InternFromString("__asyncio_running_event_loop__"))
        || !(h = holder_here())) {
        PyErr_Clear();
        return;
    }
    if (strcmp(Py_TYPE(h)->tp_name, "_RunningLoopHolder")
        || Py_TYPE(h)->tp_basicsize != (Py_ssize_t)sizeof(holder_layout)
        || ((holder_layout *)h)->rl_loop != loop || ((holder_layout *)h)->rl_pid != getpid())
        return;
    RL.type = Py_TYPE(h);
    if (!my_pid)
        my_pid = getpid();
    RL.state = 1;
}

/* 1: *loop is the running loop (a new reference; NULL for none), as
 * asyncio would say; 0: ask asyncio. */
static int holder_loop(PyObject **loop)
{
    PyObject *d, *h;
    if (RL.state != 1 || !H.get_running_loop_is_c || !(d = PyThreadState_GetDict()))
        return 0;
    if (!(h = PyDict_GetItemWithError(d, RL.key))) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        *loop = NULL;   /* no loop ever ran in this thread */
        return 1;
    }
    if (Py_TYPE(h) != RL.type)
        return 0;
    if (((holder_layout *)h)->rl_loop == Py_None || ((holder_layout *)h)->rl_pid != my_pid)
        *loop = NULL;
    else
        *loop = Py_NewRef(((holder_layout *)h)->rl_loop);
    return 1;
}
#endif

/* The running loop without asking asyncio, when it is the last one found.
 * asyncio's get_running_loop calls getpid(2) every time (3.11), which
 * costs as much here as a cached read's whole syscall.  A BaseEventLoop
 * runs in the thread whose id its run_forever keeps in _thread_id (None
 * once it stops), and no other loop can run in that thread meanwhile
 * (asyncio refuses to nest them): so last_loop is the running loop when
 * its _thread_id is this thread's and no fork happened since it was found.
 * A new reference, or NULL (ask asyncio). */
static PyObject *known_running_loop(void)
{
    static unsigned long forks_seen = (unsigned long)-1;
    PyObject *tid, *loop;
    int mine;
    if (forks_seen != forks) {   /* until asyncio finds a loop again */
        forks_seen = forks;
        H.last_is_base = 0;
    }
    if (!H.last_is_base || !(loop = last_loop_alive(H.last_loop)))
        return NULL;
    if (!(tid = PyObject_GetAttr(loop, H.str_thread_id))) {
        PyErr_Clear();
        Py_DECREF(loop);
        return NULL;
    }
    mine = PyLong_CheckExact(tid)
           && PyLong_AsUnsignedLongMask(tid) == PyThread_get_thread_ident();
    Py_DECREF(tid);
    if (!mine)
        Py_DECREF(loop);
    return mine ? loop : NULL;
}

/* A loop asyncio found running: remember whether the shortcut above holds
 * for it. */
static void note_loop(PyObject *loop)
{
    int is_base = 0;
    if (!H.base_loop_type) {
        PyObject *mod = PyImport_ImportModule("asyncio.base_events");
        if (mod) {
            H.base_loop_type = PyObject_GetAttrString(mod, "BaseEventLoop");
            Py_DECREF(mod);
        }
        if (!H.str_thread_id)
            H.str_thread_id = PyUnicode_InternFromString("_thread_id");
        if (!H.base_loop_type || !H.str_thread_id)
            PyErr_Clear();
        else
            H.fork_counted = pthread_atfork(NULL, NULL, count_fork) == 0;
    }
    if (H.base_loop_type && H.str_thread_id)
        is_base = PyObject_IsInstance(loop, H.base_loop_type);
    if (is_base < 0)
        PyErr_Clear();
    H.last_is_base = is_base > 0;
#if PY_VERSION_HEX < 0x030C0000
    if (H.get_running_loop_is_c)
        check_holder(loop);
#endif
}

/* The running asyncio loop of this thread (a new reference); NULL without
 * an exception: none (the elsewhere hook decides); NULL with one: error.
 * The first request on a loop calls on_new_loop(loop). */
PyObject *lx_running_loop(void)
{
    PyObject *loop;
    if (!H.get_running_loop) {
        PyErr_SetString(PyExc_RuntimeError, "linuxaio: loop hooks not set");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (holder_loop(&loop)) {
        if (!loop)
            return NULL;
        if (is_last_loop(H.last_loop, loop))
            return loop;
        Py_DECREF(loop);   /* a new loop: found the long way, once */
    }
#endif
    if ((loop = known_running_loop()))
        return loop;
    if (!(loop = PyObject_CallNoArgs(H.get_running_loop)))
        return NULL;
    if (loop == Py_None) {
        Py_DECREF(loop);
        return NULL;
    }
    if (!is_last_loop(H.last_loop, loop)) {
        PyObject *ok = PyObject_CallOneArg(H.on_new_loop, loop);
        if (!ok) {
            Py_DECREF(loop);
            return NULL;
        }
        Py_DECREF(ok);
        remember_loop(&H.last_loop, loop);
    }
    note_loop(loop);
    return loop;
}

PyObject *lx_set_loop_hooks(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_set_loop_hooks(get_running_loop, on_new_loop, elsewhere)");
        return NULL;
    }
    Py_XSETREF(H.get_running_loop, Py_NewRef(args[0]));
    Py_XSETREF(H.on_new_loop, Py_NewRef(args[1]));
    Py_XSETREF(H.elsewhere, Py_NewRef(args[2]));
    H.get_running_loop_is_c = PyCFunction_Check(args[0])
        && !strcmp(((PyCFunctionObject *)args[0])->m_ml->ml_name, "_get_running_loop");
    Py_CLEAR(H.last_loop);
    H.last_is_base = 0;
    Py_RETURN_NONE;
}

/* elsewhere(submit, *args): what a request is awaited with when no asyncio
 * loop runs in this thread (under trio: its coroutine, trio_fast.c). */
PyObject *lx_loop_elsewhere(PyObject *const *args, Py_ssize_t nargs)
{
    return PyObject_Vectorcall(H.elsewhere, args, (size_t)nargs, NULL);
}

#define RUN_MAX_ARGS 8

PyObject *lx_loop_run(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *stack[RUN_MAX_ARGS + 1], *loop, *res;
    if (nargs < 1 || nargs > RUN_MAX_ARGS) {
        PyErr_SetString(PyExc_TypeError, "_run(submit, *args): 0 to 7 arguments after submit");
        return NULL;
    }
    if (!(loop = lx_running_loop())) {
        if (PyErr_Occurred())
            return NULL;
        return lx_loop_elsewhere(args, nargs);
    }
    for (Py_ssize_t i = 1; i < nargs; i++)
        stack[i - 1] = args[i];
    stack[nargs - 1] = loop;
    res = PyObject_Vectorcall(args[0], stack, (size_t)nargs, NULL);
    Py_DECREF(loop);
    return res;
}
