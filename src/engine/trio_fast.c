/* trio_fast.c: an await under trio that completes inline, in C.
 *
 * Every trio call is a checkpoint: a cancel point and a schedule point.
 * trio's checkpoint() is the schedule point first (a trip through its
 * scheduler: ~30,000 instructions, most of a cached read's await) and the
 * cancel check after.  The two halves are public too, and trio's own
 * sockets use them around a call that may complete at once: the cancel
 * check (checkpoint_if_cancelled: no suspension unless cancelled) before
 * the call, so a cancelled call never starts, and the schedule point
 * (cancel_shielded_checkpoint: no cancel) after it, so one that completed
 * returns its result.  A call that completed inline has thus happened, as
 * a sync call, and is never followed by Cancelled; trio's own
 * assert_checkpoints() counts it as a checkpoint.
 *
 * What _loop.py's coroutine did around them (find the run, make a waiter
 * object, a second Request layer) cost ~12,000 instructions more than
 * checkpoint + os.pread (callgrind, Python 3.11).  Here a TrioCall object
 * is the coroutine: it awaits the cancel check, parses the arguments into a
 * Request, tries it inline (inline.c; trio needs no budget: each call
 * yields at its schedule point), awaits the schedule point and returns the
 * value.  What the try cannot finish (EAGAIN, a row with no try, inline
 * off) goes on, as the same Request (a read that stopped short keeps its
 * first bytes), to _loop.py's engine path, whose coroutine it awaits.
 *
 * It awaits the three coroutines it is handed as `await` does (it forwards
 * what trio sends, and what they yield), so it knows nothing of trio but
 * that the hooks are coroutine functions. */
#define _GNU_SOURCE
#include "ops.h"
#include "backend.h"
#include "inline.h"
#include "trio_fast.h"

#include <string.h>

#define MAX_ARGS 8

static struct {
    PyObject *cancel_point;    /* trio.lowlevel.checkpoint_if_cancelled */
    PyObject *schedule_point;  /* trio.lowlevel.cancel_shielded_checkpoint */
    PyObject *schedule_msg;    /* what that coroutine yields to trio's runner, or NULL */
    PyObject *run_context;     /* trio's GLOBAL_RUN_CONTEXT, for the cancel check here, or NULL */
    PyTypeObject *value_type;  /* outcome.Value: what trio sends back after schedule_msg */
    PyObject *engine;          /* _loop._trio_engine(req): the engine path */
    PyObject *setup;           /* _loop._trio_setup(): sets the points, or raises */
    PyObject *outside;         /* _loop._trio_outside(submit, *args): awaited outside trio */
    long drainers;             /* trio runs' drainer tasks alive (_loop.py counts them) */
} T;

enum { START, CANCEL_POINT, SCHEDULE_POINT, SCHEDULE_YIELDED, ENGINE, DONE };

typedef struct {
    PyObject_HEAD
    PyObject *submit;
    PyObject *args[MAX_ARGS];
    Py_ssize_t nargs;
    PyObject *inner;     /* the coroutine awaited now */
    Request *req;        /* parsed; done inline until the schedule point passed */
    PyObject *value;     /* its result, returned after the schedule point */
    int stage;
    int tryable;         /* its row has an inline try, and tries are on */
} TrioCall;

static PyTypeObject TrioCallType;
static PyObject *str_unwrap, *str_task, *str_cancel_status, *str_effectively_cancelled,
    *str_runner, *str_main_task, *str_ki_pending, *str_cancel_points, *one;

/* ---- the row behind a submit function ---- */

/* submit is a row's os face (control.c: lx_submit, self its number). */
static int row_of(PyObject *submit, int *op, int *face)
{
    long id;
    if (!PyCFunction_Check(submit) || PyCFunction_GET_FUNCTION(submit) != (PyCFunction)(void (*)(void))lx_submit
        || !PyCFunction_GET_SELF(submit) || !PyLong_CheckExact(PyCFunction_GET_SELF(submit))) {
        PyErr_Format(PyExc_TypeError, "_trio_call: not an engine row: %.100R", submit);
        return -1;
    }
    id = PyLong_AsLong(PyCFunction_GET_SELF(submit));
    *op = (int)(id / LX_NFACES);
    *face = (int)(id % LX_NFACES);
    return 0;
}

/* The Request of the call, parsed as lx_submit parses it, not submitted. */
static Request *parse(TrioCall *c)
{
    int op, face, pri;
    PyObject *cb;
    const lx_face *f;
    Py_ssize_t nspec;
    Request *r;
    if (row_of(c->submit, &op, &face) < 0)
        return NULL;
    f = &lx_ops[op].face[face];
    nspec = (Py_ssize_t)strlen(f->args);
    if (lx_parse_common(f->name, nspec, c->args, c->nargs, NULL, &cb, &pri) < 0)
        return NULL;
    if (c->nargs != nspec) {   /* the callback is the engine path's waiter */
        PyErr_Format(PyExc_TypeError, "%s() takes %zd positional arguments (%zd given)",
                     f->name, nspec, c->nargs);
        return NULL;
    }
    if (!(r = lx_request_new(&lx_RequestType, op, face)))
        return NULL;
    if (lx_parse_args(r, f->args, c->args) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

/* r completed here: its value, as the completion would have made it.  An
 * effect whose value could not be made (MemoryError) is undone. */
static PyObject *inline_value(Request *r)
{
    PyObject *value;
    __atomic_store_n(&r->ran, 1, __ATOMIC_RELEASE);   /* an fd it opened can be undone */
    value = lx_ops[r->op].result(r);
    lx_release_args(r);
    r->finished = 1;
    if (!value)
        lx_undo_effect(r);
    return value;
}

/* ---- trio's cancel check, without its coroutine ----
 * checkpoint_if_cancelled() is an async def: a coroutine object, a frame,
 * a call of current_task() and a send through them, ~1,500 instructions
 * of a ~35,000 call.  Its body (checked by _loop._trio_points: its names
 * and current_task's are the known ones) is done here: the current task
 * (GLOBAL_RUN_CONTEXT.task; none: not in a trio run, RuntimeError as
 * current_task() says), and unless its cancel status is effectively
 * cancelled or a KeyboardInterrupt is pending for the main task, its
 * _cancel_points counted.  Cancelled: the coroutine is awaited after all
 * (its checkpoint raises Cancelled).
 * 1: not cancelled, counted; 0: await the coroutine; -1: an error. */
static int cancel_check_here(void)
{
    PyObject *task, *v, *runner = NULL, *n, *n1;
    int stop;
    if (!(task = PyObject_GetAttr(T.run_context, str_task))) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        PyErr_SetString(PyExc_RuntimeError, "must be called from async context");
        return -1;
    }
    if (!(v = PyObject_GetAttr(task, str_cancel_status)))
        goto error;
    n = PyObject_GetAttr(v, str_effectively_cancelled);
    Py_DECREF(v);
    if (!n || (stop = PyObject_IsTrue(n)) < 0) {
        Py_XDECREF(n);
        goto error;
    }
    Py_DECREF(n);
    if (!stop) {
        if (!(runner = PyObject_GetAttr(task, str_runner)) || !(v = PyObject_GetAttr(runner, str_main_task)))
            goto error;
        Py_DECREF(v);   /* compared, not used */
        if (v == task) {
            if (!(n = PyObject_GetAttr(runner, str_ki_pending)) || (stop = PyObject_IsTrue(n)) < 0) {
                Py_XDECREF(n);
                goto error;
            }
            Py_DECREF(n);
        }
        Py_CLEAR(runner);
    }
    if (stop) {
        Py_DECREF(task);
        return 0;
    }
    if (!(n = PyObject_GetAttr(task, str_cancel_points)))
        goto error;
    n1 = PyNumber_Add(n, one);
    Py_DECREF(n);
    if (!n1 || PyObject_SetAttr(task, str_cancel_points, n1) < 0) {
        Py_XDECREF(n1);
        goto error;
    }
    Py_DECREF(n1);
    Py_DECREF(task);
    return 1;
error:
    Py_XDECREF(runner);
    Py_DECREF(task);
    return -1;
}

/* ---- the coroutine ---- */

/* One step of an inner coroutine, as PyIter_Send, for throw() too. */
static PySendResult inner_result(PyObject *res, PyObject **out)
{
    if (res) {
        *out = res;
        return PYGEN_NEXT;
    }
    if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        *out = ev ? Py_NewRef(((PyStopIterationObject *)ev)->value) : Py_NewRef(Py_None);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
        return PYGEN_RETURN;
    }
    *out = NULL;
    return PYGEN_ERROR;
}

/* Start awaiting fn(arg or nothing): as `await fn()` does, up to its first
 * suspension or its end. */
static PySendResult await_new(TrioCall *c, PyObject *fn, PyObject *arg, int stage, PyObject **out)
{
    PySendResult rc;
    PyObject *coro = arg ? PyObject_CallOneArg(fn, arg) : PyObject_CallNoArgs(fn);
    if (!coro) {
        *out = NULL;
        return PYGEN_ERROR;
    }
    rc = PyIter_Send(coro, Py_None, out);
    if (rc == PYGEN_NEXT) {
        c->inner = coro;
        c->stage = stage;
    } else
        Py_DECREF(coro);
    return rc;
}

static int set_up(void)
{
    PyObject *ok = PyObject_CallNoArgs(T.setup);
    Py_XDECREF(ok);
    return ok ? 0 : -1;
}

static void finish(TrioCall *c)
{
    c->stage = DONE;
    Py_CLEAR(c->inner);
    Py_CLEAR(c->value);
    Py_CLEAR(c->req);
}

/* An inline result that will never be taken: undone (an fd closed). */
static void drop_inline(TrioCall *c)
{
    if (c->req && c->value)
        lx_undo_effect(c->req);
    finish(c);
}

/* Awaited where trio's checkpoint halves raised RuntimeError: not in a trio
 * run.  Made with no asyncio loop running (linuxaio.os.stat(p) before
 * asyncio.run, or with asyncio imported after linuxaio), it may be awaited
 * under one now: outside(submit, *args) is then that loop's awaitable (the
 * request starts now, as an async def's _run would start it), awaited as
 * the engine stage; else None, and the error says no loop runs. */
static PySendResult outside_trio(TrioCall *c, PyObject **out)
{
    PyObject *et, *ev, *tb, *aw, *stack[MAX_ARGS + 1];
    unaryfunc await_of;
    PySendResult rc;
    *out = NULL;
    c->stage = ENGINE;   /* what its errors are now */
    if (!PyErr_ExceptionMatches(PyExc_RuntimeError))
        return PYGEN_ERROR;
    PyErr_Fetch(&et, &ev, &tb);
    stack[0] = c->submit;
    for (Py_ssize_t i = 0; i < c->nargs; i++)
        stack[1 + i] = c->args[i];
    aw = PyObject_Vectorcall(T.outside, stack, (size_t)c->nargs + 1, NULL);
    if (aw == Py_None) {
        Py_DECREF(aw);
        if (set_up() < 0) {   /* says why, as the engine path would */
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(tb);
        } else
            PyErr_Restore(et, ev, tb);
        return PYGEN_ERROR;
    }
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
    if (!aw)
        return PYGEN_ERROR;
    await_of = Py_TYPE(aw)->tp_as_async ? Py_TYPE(aw)->tp_as_async->am_await : NULL;
    if (!await_of) {
        PyErr_Format(PyExc_TypeError, "_trio_call: %.100R is not awaitable", aw);
        Py_DECREF(aw);
        return PYGEN_ERROR;
    }
    c->inner = await_of(aw);
    Py_DECREF(aw);
    if (!c->inner)
        return PYGEN_ERROR;
    rc = PyIter_Send(c->inner, Py_None, out);
    if (rc != PYGEN_NEXT)
        Py_CLEAR(c->inner);
    return rc;
}

/* The stages after rc, the end of the stage's inner coroutine (or START). */
static PySendResult advance(TrioCall *c, PySendResult rc, PyObject **out)
{
    for (;;) {
        if (rc == PYGEN_NEXT)
            return rc;
        if (rc == PYGEN_ERROR) {
            if (c->stage == CANCEL_POINT && PyErr_ExceptionMatches(PyExc_RuntimeError)) {
                Py_CLEAR(c->inner);
                rc = outside_trio(c, out);   /* not in a trio run */
                continue;
            }
            drop_inline(c);
            return rc;
        }
        /* PYGEN_RETURN: the stage's coroutine ended with *out */
        switch (c->stage) {
        case START: {
            int op, face;
            Py_DECREF(*out);
            if (row_of(c->submit, &op, &face) < 0)
                goto fail;
            c->tryable = lx_inline_enabled && lx_ops[op].try_now;
            /* A request nobody awaits (a read-only file's close) is drained
             * by a trio run's drainer task (any run's: the completion queue
             * is the process's), which setup starts.  The engine path finds
             * its run (and starts its drainer) itself; a call that may be
             * done inline sets one up while no run has one. */
            if ((!T.cancel_point || (c->tryable && T.drainers <= 0)) && set_up() < 0) {
                rc = outside_trio(c, out);   /* not in a trio run */
                continue;
            }
            /* The cancel check before anything is submitted, the engine's
             * road too: a request submitted in a cancelled scope may start
             * before its cancel (an open(O_CREAT) would create the file). */
            c->stage = CANCEL_POINT;   /* what its errors are */
            if (T.run_context) {
                int ok = cancel_check_here();
                if (ok != 0) {   /* as if the coroutine ended, or raised */
                    *out = ok > 0 ? Py_NewRef(Py_None) : NULL;
                    rc = ok > 0 ? PYGEN_RETURN : PYGEN_ERROR;
                    continue;
                }
            }
            rc = await_new(c, T.cancel_point, NULL, CANCEL_POINT, out);
            continue;
        }
        case CANCEL_POINT:   /* not cancelled: try it */
            Py_CLEAR(c->inner);
            Py_DECREF(*out);
            if (!(c->req = parse(c)))
                goto fail;
            if (!c->tryable || !lx_inline_enabled || !lx_inline_try(c->req))
                goto engine;
            if (!(c->value = inline_value(c->req)))
                goto fail;
            if (T.schedule_msg) {   /* the schedule point's own yield */
                c->stage = SCHEDULE_YIELDED;
                *out = Py_NewRef(T.schedule_msg);
                return PYGEN_NEXT;
            }
            rc = await_new(c, T.schedule_point, NULL, SCHEDULE_POINT, out);
            c->stage = SCHEDULE_POINT;
            continue;
        case SCHEDULE_POINT:
            Py_DECREF(*out);
            *out = c->value;
            c->value = NULL;
            finish(c);
            return PYGEN_RETURN;
        case ENGINE:
            finish(c);
            return PYGEN_RETURN;
        default:
            PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
            *out = NULL;
            return PYGEN_ERROR;
        }
engine:
        {
            PyObject *req = (PyObject *)c->req;
            c->req = NULL;   /* the engine path's now (it undoes what it must) */
            c->stage = ENGINE;
            rc = await_new(c, T.engine, req, ENGINE, out);
            Py_DECREF(req);
            continue;
        }
fail:
        *out = NULL;
        drop_inline(c);
        return PYGEN_ERROR;
    }
}

/* Back from the schedule point's yield: trio sends the task an outcome
 * (Value(None)), which the coroutine would unwrap.  A Value holds nothing
 * to raise, and nobody sees the outcome again: its unwrap() (two Python
 * calls, ~1,500 instructions) is left out; anything else is unwrapped. */
static PySendResult scheduled(TrioCall *c, PyObject *outcome, PyObject **out)
{
    if (Py_TYPE(outcome) != T.value_type) {
        PyObject *none = PyObject_CallMethodNoArgs(outcome, str_unwrap);
        if (!none) {
            drop_inline(c);
            *out = NULL;
            return PYGEN_ERROR;
        }
        Py_DECREF(none);
    }
    *out = c->value;
    c->value = NULL;
    finish(c);
    return PYGEN_RETURN;
}

static PySendResult call_am_send(TrioCall *c, PyObject *arg, PyObject **out)
{
    if (c->inner)
        return advance(c, PyIter_Send(c->inner, arg, out), out);
    if (c->stage == SCHEDULE_YIELDED)
        return scheduled(c, arg, out);
    if (c->stage == START) {
        *out = Py_NewRef(Py_None);
        return advance(c, PYGEN_RETURN, out);
    }
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    *out = NULL;
    return PYGEN_ERROR;
}

/* What `send` and `next` give the interpreters whose SEND calls the
 * method (3.12 and later): the value at the end as StopIteration. */
static PyObject *as_iternext(PySendResult rc, PyObject *res)
{
    PyObject *stop;
    if (rc != PYGEN_RETURN)
        return res;
    if (res == Py_None) {
        Py_DECREF(res);
        PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
    /* PyErr_SetObject would take a tuple for the exception's args */
    stop = PyObject_CallOneArg(PyExc_StopIteration, res);
    Py_DECREF(res);
    if (stop) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return NULL;
}

static PyObject *call_iternext(TrioCall *c)
{
    PyObject *res;
    PySendResult rc = call_am_send(c, Py_None, &res);
    return as_iternext(rc, res);
}

static PyObject *call_send(TrioCall *c, PyObject *arg)
{
    PyObject *res;
    PySendResult rc = call_am_send(c, arg, &res);
    return as_iternext(rc, res);
}

/* trio never throws into a task (it sends outcomes); a throw reaches the
 * coroutine awaited now, as `await` passes it, or ends an unstarted call. */
static PyObject *call_throw(TrioCall *c, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *res;
    PySendResult rc;
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw(type[, value[, traceback]])");
        return NULL;
    }
    if (!c->inner) {
        PyObject *typ = args[0], *val = nargs > 1 ? args[1] : NULL;
        drop_inline(c);   /* at the schedule point's yield: a result never taken */
        if (PyExceptionInstance_Check(typ))
            PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
        else if (PyExceptionClass_Check(typ))
            PyErr_SetObject(typ, val && val != Py_None ? val : NULL);
        else
            PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
        return NULL;
    }
    {
        PyObject *meth = PyObject_GetAttrString(c->inner, "throw");
        res = meth ? PyObject_Vectorcall(meth, args, (size_t)nargs, NULL) : NULL;
        Py_XDECREF(meth);
    }
    rc = inner_result(res, &res);
    if (rc != PYGEN_NEXT) {
        Py_CLEAR(c->inner);
        if (rc == PYGEN_ERROR && c->stage == CANCEL_POINT)
            c->stage = DONE;   /* not the "no trio run" check: a thrown error */
    }
    return as_iternext(advance(c, rc, &res), res);
}

static PyObject *call_close(TrioCall *c, PyObject *unused)
{
    PyObject *inner = c->inner, *res = NULL;
    c->inner = NULL;
    if (inner) {
        res = PyObject_CallMethod(inner, "close", NULL);
        Py_DECREF(inner);
    }
    drop_inline(c);
    if (inner && !res)
        return NULL;
    Py_XDECREF(res);
    Py_RETURN_NONE;
}

static PyObject *call_await(TrioCall *c) { return Py_NewRef(c); }

static int call_traverse(TrioCall *c, visitproc visit, void *arg)
{
    Py_VISIT(c->submit);
    for (Py_ssize_t i = 0; i < c->nargs; i++)
        Py_VISIT(c->args[i]);
    Py_VISIT(c->inner);
    Py_VISIT(c->value);
    Py_VISIT(c->req);
    return 0;
}

static int call_clear(TrioCall *c)
{
    Py_CLEAR(c->submit);
    for (Py_ssize_t i = 0; i < c->nargs; i++)
        Py_CLEAR(c->args[i]);
    c->nargs = 0;
    Py_CLEAR(c->inner);
    Py_CLEAR(c->value);
    Py_CLEAR(c->req);
    return 0;
}

static void call_dealloc(TrioCall *c)
{
    PyObject_GC_UnTrack(c);
    if (c->req && c->value)
        lx_undo_effect(c->req);   /* done inline, never taken */
    call_clear(c);
    PyObject_GC_Del(c);
}

static PyMethodDef call_methods[] = {
    {"send", (PyCFunction)call_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))call_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)call_close, METH_NOARGS, NULL},
    {NULL}};

static PyAsyncMethods call_async = {.am_await = (unaryfunc)call_await,
                                    .am_send = (sendfunc)call_am_send};

static PyTypeObject TrioCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "linuxaio._TrioCall",
    .tp_basicsize = sizeof(TrioCall),
    .tp_dealloc = (destructor)call_dealloc,
    .tp_as_async = &call_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)call_iternext,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)call_traverse,
    .tp_clear = (inquiry)call_clear,
    .tp_methods = call_methods,
    .tp_doc = "One linuxaio call awaited under trio (a coroutine).",
};

/* ---- the module's functions ---- */

/* _trio_call(submit, *args): the coroutine awaiting one request under trio. */
static PyObject *trio_call(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    TrioCall *c;
    if (nargs < 1 || nargs > MAX_ARGS + 1) {
        PyErr_SetString(PyExc_TypeError, "_trio_call(submit, *args): 0 to 8 arguments after submit");
        return NULL;
    }
    if (!T.setup) {
        PyErr_SetString(PyExc_RuntimeError, "linuxaio: trio hooks not set");
        return NULL;
    }
    if (!PyCFunction_Check(args[0])
        || PyCFunction_GET_FUNCTION(args[0]) != (PyCFunction)(void (*)(void))lx_submit) {
        /* not a row (submit_many, a group): engine(None, submit, *args) */
        PyObject *stack[MAX_ARGS + 2];
        stack[0] = Py_None;
        for (Py_ssize_t i = 0; i < nargs; i++)
            stack[i + 1] = args[i];
        return PyObject_Vectorcall(T.engine, stack, (size_t)nargs + 1, NULL);
    }
    if (!(c = PyObject_GC_New(TrioCall, &TrioCallType)))
        return NULL;
    c->submit = Py_NewRef(args[0]);
    c->nargs = nargs - 1;
    for (Py_ssize_t i = 1; i < nargs; i++)
        c->args[i - 1] = Py_NewRef(args[i]);
    c->inner = c->value = NULL;
    c->req = NULL;
    c->stage = START;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

/* _set_trio_hooks(setup, engine, outside): setup() finds trio (or raises)
 * and calls _set_trio_points; engine(req) is the coroutine awaiting req
 * through the engine (it submits it: _trio_submit), engine(None, submit,
 * *args) the one awaiting what submit(*args, waiter) makes (a batch);
 * outside(submit, *args): see outside_trio. */
static PyObject *set_trio_hooks(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_set_trio_hooks(setup, engine, outside)");
        return NULL;
    }
    Py_XSETREF(T.setup, Py_NewRef(args[0]));
    Py_XSETREF(T.engine, Py_NewRef(args[1]));
    Py_XSETREF(T.outside, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

/* _set_trio_points(cancel_point, schedule_point, schedule_msg=None,
 * value_type=None, run_context=None): trio's two halves; what the second
 * yields to trio's runner and the outcome type it gets back (None:
 * unknown, the coroutine is awaited); trio's run context, when the first
 * half may be done here (cancel_check_here; None: it is awaited). */
static PyObject *set_trio_points(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *msg = nargs > 2 ? args[2] : Py_None, *vt = nargs > 3 ? args[3] : Py_None;
    PyObject *ctx = nargs > 4 ? args[4] : Py_None;
    if (nargs < 2 || nargs > 5 || (msg != Py_None && !PyType_Check(vt))) {
        PyErr_SetString(PyExc_TypeError, "_set_trio_points(cancel_point, schedule_point, "
                                         "schedule_msg=None, value_type=None, run_context=None)");
        return NULL;
    }
    Py_XSETREF(T.cancel_point, Py_NewRef(args[0]));
    Py_XSETREF(T.schedule_point, Py_NewRef(args[1]));
    Py_CLEAR(T.schedule_msg);
    Py_CLEAR(T.value_type);
    Py_CLEAR(T.run_context);
    if (msg != Py_None) {
        T.schedule_msg = Py_NewRef(msg);
        T.value_type = (PyTypeObject *)Py_NewRef(vt);
    }
    if (ctx != Py_None)
        T.run_context = Py_NewRef(ctx);
    Py_RETURN_NONE;
}

/* _trio_submit(req, waiter): submit a request _trio_call parsed (and
 * perhaps tried), with its waiter as its callback; no second try. */
static PyObject *trio_submit(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    Request *r;
    lx_req *base;
    if (nargs != 2 || Py_TYPE(args[0]) != &lx_RequestType) {
        PyErr_SetString(PyExc_TypeError, "_trio_submit(req, waiter)");
        return NULL;
    }
    r = (Request *)args[0];
    if (r->callback || r->finished || r->delivery != DELIVER_CALLBACK || r->op == OP_GROUP) {
        PyErr_SetString(PyExc_ValueError, "_trio_submit: the request was submitted already");
        return NULL;
    }
    r->callback = Py_NewRef(args[1]);
    lx_stamp(r, 1);
    E.nreqs++;
    Py_INCREF(r);   /* the engine's reference, dropped at completion */
    base = &r->base;
    lx_backend_submit(&base, 1);
    Py_RETURN_NONE;
}

/* _trio_drainers(delta): a run's drainer was made (1) or ended (-1). */
static PyObject *trio_drainers(PyObject *m, PyObject *delta)
{
    long d = PyLong_AsLong(delta);
    if (d == -1 && PyErr_Occurred())
        return NULL;
    T.drainers += d;
    Py_RETURN_NONE;
}

PyMethodDef lx_trio_module_methods[] = {
    {"_trio_drainers", (PyCFunction)trio_drainers, METH_O, NULL},
    {"_trio_call", (PyCFunction)(void (*)(void))trio_call, METH_FASTCALL, NULL},
    {"_set_trio_hooks", (PyCFunction)(void (*)(void))set_trio_hooks, METH_FASTCALL, NULL},
    {"_set_trio_points", (PyCFunction)(void (*)(void))set_trio_points, METH_FASTCALL, NULL},
    {"_trio_submit", (PyCFunction)(void (*)(void))trio_submit, METH_FASTCALL, NULL},
    {NULL}};

int lx_trio_init(void)
{
    if (!(str_unwrap = PyUnicode_InternFromString("unwrap"))
        || !(str_task = PyUnicode_InternFromString("task"))
        || !(str_cancel_status = PyUnicode_InternFromString("_cancel_status"))
        || !(str_effectively_cancelled = PyUnicode_InternFromString("effectively_cancelled"))
        || !(str_runner = PyUnicode_InternFromString("_runner"))
        || !(str_main_task = PyUnicode_InternFromString("main_task"))
        || !(str_ki_pending = PyUnicode_InternFromString("ki_pending"))
        || !(str_cancel_points = PyUnicode_InternFromString("_cancel_points"))
        || !(one = PyLong_FromLong(1)))
        return -1;
    return PyType_Ready(&TrioCallType);
}
