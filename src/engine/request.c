/* request.c: the Request type (new, dealloc, cancel, repr), submission of
 * one row's request, and what becomes of a finished one: its effect undone
 * or its value handed over to whoever waits. */
#define _GNU_SOURCE
#include "ops.h"
#include "future.h"
#include "backend.h"
#include "inline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

lx_engine lx_E;

/* The drains this thread's loop has run (engine.h). */
_Thread_local lx_drains lx_D;

/* Submitted outside a drain since the last one began: perhaps earlier in
 * this same turn of the loop, whose call_soon callbacks run only on the
 * next turn.  Its task is woken through call_soon too. */
int lx_request_fresh(Request *r)
{
    return !r->in_drain && r->drain_serial + 1 >= lx_D.serial;
}

/* ---- requests ---- */

void lx_release_args(Request *r)
{
    if (r->has_view) {
        r->has_view = 0;
        PyBuffer_Release(&r->view);
    }
    if (r->rare && r->rare->views) {
        lx_rare *x = r->rare;
        for (int i = 0; i < x->niov; i++)
            PyBuffer_Release(&x->views[i]);
        PyMem_Free(x->views);   /* and the iovecs after them */
        x->views = NULL;
        x->iov = NULL;
        x->niov = 0;
    }
    for (int i = 0; r->rare && i < 2; i++)
        if (r->rare->wd[i]) {   /* the worker is done with its fd */
            PyObject *wd = r->rare->wd[i];
            r->rare->wd[i] = NULL;
            lx_wd_release(wd);
        }
    free(r->heap);
    r->heap = NULL;
    Py_CLEAR(r->path);
    Py_CLEAR(r->path2);
}

/* Freed requests kept for the next ones (plain requests, not groups nor
 * subclasses): an await that completes inline allocates one and frees it
 * at once; reusing one skips the collector's allocation and free of a GC
 * object (its header linked and counted, pymalloc's pool): ~60 of the
 * ~2,950 instructions of a cached 4 KiB await pread (callgrind).  Under the GIL;
 * what is left here at exit is reachable, as any free list's. */
#define SPARE_MAX 64
static Request *spare[SPARE_MAX];
static int n_spare;

/* Never called for a request in flight: the engine holds a reference. */
void lx_request_dealloc(Request *r)
{
    PyObject_GC_UnTrack(r);
    /* the trashcan bounds the C stack when freeing one frees the next (a
     * chain of groups dropped by reinit, each holding its parent) */
    Py_TRASHCAN_BEGIN(r, lx_request_dealloc)
    lx_release_args(r);
    Py_XDECREF(r->filename);
    Py_XDECREF(r->filename2);
    Py_XDECREF(r->callback);
    Py_XDECREF(r->loop);
    Py_XDECREF(r->waiter);
    Py_XDECREF(r->waiter_ctx);
    if (r->rare) {
        Py_XDECREF(r->rare->more_waiters);
        PyMem_Free(r->rare);
    }
    Py_XDECREF(r->outcome);
    Py_XDECREF(r->value);
    Py_XDECREF(r->group);
    if (r->op == OP_GROUP) {
        Group *g = (Group *)r;
        Py_XDECREF(g->feeder);
        Py_XDECREF(g->result);
        Py_XDECREF(g->slots);
    }
    if (Py_TYPE(r) == &lx_RequestType && n_spare < SPARE_MAX)
        spare[n_spare++] = r;   /* untracked, as a new one */
    else
        Py_TYPE(r)->tp_free((PyObject *)r);
    Py_TRASHCAN_END
}

/* The collector sees the objects a request holds (only once it finished:
 * see lx_set_finished).  Not the paths (bytes: no cycle passes through them)
 * nor a held buffer's exporter, released at completion.  Workers never
 * touch these fields. */
int lx_request_traverse(Request *r, visitproc visit, void *arg)
{
    Py_VISIT(r->filename);
    Py_VISIT(r->filename2);
    Py_VISIT(r->callback);
    Py_VISIT(r->loop);
    Py_VISIT(r->waiter);
    Py_VISIT(r->waiter_ctx);
    if (r->rare)
        Py_VISIT(r->rare->more_waiters);
    Py_VISIT(r->outcome);
    Py_VISIT(r->value);
    Py_VISIT(r->group);
    if (r->op == OP_GROUP) {
        Group *g = (Group *)r;
        Py_VISIT(g->feeder);
        Py_VISIT(g->result);
        Py_VISIT(g->slots);
    }
    return 0;
}

/* Breaks a cycle through a finished request (a group whose result refers to
 * it, a failure whose traceback does).  An unfinished one is the engine's
 * and not even tracked: left alone all the same.  r->group stays (it is
 * NULL once finished, but in groups dropped by reinit): every cycle also
 * passes through a field cleared here, since groups only point up. */
int lx_request_clear(Request *r)
{
    if (!r->finished)
        return 0;
    Py_CLEAR(r->filename);
    Py_CLEAR(r->filename2);
    Py_CLEAR(r->callback);
    lx_future_clear(r);
    Py_CLEAR(r->value);
    if (r->op == OP_GROUP) {
        Group *g = (Group *)r;
        Py_CLEAR(g->feeder);
        Py_CLEAR(g->result);
        Py_CLEAR(g->slots);
    }
    return 0;
}

Request *lx_request_new(PyTypeObject *type, int op, int face)
{
    Request *r;
    if (type == &lx_RequestType && n_spare)
        r = (Request *)PyObject_Init((PyObject *)spare[--n_spare], type);
    else if (!(r = PyObject_GC_New(Request, type)))
        return NULL;
    memset((char *)r + sizeof(PyObject), 0, type->tp_basicsize - sizeof(PyObject));
    r->op = (unsigned char)op;
    r->face = (unsigned char)face;
    r->fd = -1;
    r->dir_fd = r->dir_fd2 = AT_FDCWD;
    r->offset = -1;
    if (op != OP_GROUP)
        r->flags = lx_ops[op].flags;
    return r;
}

/* The engine is done with r.  Only now does the collector track it: in
 * flight, the engine's reference keeps it alive whatever cycle it is in,
 * and a million queued requests would be traversed by every collection
 * (submitting cost a third more). */
void lx_set_finished(Request *r)
{
    r->finished = 1;
    if (!PyObject_GC_IsTracked((PyObject *)r))
        PyObject_GC_Track(r);
}

/* Cancel r and, for a group, everything under it: a walk down the children
 * and back up through their r->group, not recursion, since chains of nested
 * groups may be a million deep.  It runs no Python code, so the tree cannot
 * change under it: a cancelled group's feeder is never called again, and is
 * let go when the group finishes. */
void lx_request_cancel(Request *r)
{
    Request *c = r;
    if (r->finished)
        return;
    if (r->parked) {   /* never started: it never will */
        lx_inline_unpark(r);
        return;
    }
    for (;;) {
        if (c->finished)
            ;   /* its callback is running, and it leaves the group after */
        else if (c->op != OP_GROUP)
            lx_backend_of(c)->cancel(&c->base);
        else {
            Group *g = (Group *)c;
            g->req.base.cancelled = 1;
            lx_undo_slots(g);   /* what its children delivered, nobody will take */
            if (g->children) {
                c = g->children;
                continue;
            }
            lx_group_kick(g);   /* nothing to wait for: finish it */
        }
        while (c != r && !c->gnext)
            c = &c->group->req;
        if (c == r)
            break;
        c = c->gnext;
    }
}

/* cancel(msg=None): as asyncio.Future.cancel for a request bound to a loop;
 * otherwise True if the request had not finished. */
static PyObject *request_cancel(Request *r, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *msg = nargs ? args[0] : kwnames && PyTuple_GET_SIZE(kwnames) ? args[nargs] : NULL;
    int rc;
    if (nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) > 1) {
        PyErr_SetString(PyExc_TypeError, "cancel(msg=None)");
        return NULL;
    }
    if (r->loop) {
        if ((rc = lx_future_cancel(r, msg)) < 0)
            return NULL;
        return PyBool_FromLong(rc);
    }
    rc = !r->finished && !CANCELLED(r);
    lx_request_cancel(r);
    return PyBool_FromLong(rc);
}

static PyObject *request_done(Request *r, PyObject *unused)
{
    return PyBool_FromLong(r->loop ? lx_future_done(r) : r->finished);
}

static PyObject *request_cancelled(Request *r, PyObject *unused)
{
    return PyBool_FromLong(r->loop ? lx_future_cancelled(r) : CANCELLED(r));
}
static const char *request_name(Request *r)
{
    return r->op == OP_GROUP ? "aio_group" : lx_ops[r->op].face[r->face].name;
}

static PyObject *request_get_name(Request *r, void *c)
{
    return PyUnicode_FromString(request_name(r));
}

static PyObject *request_repr(Request *r)
{
    const char *state = r->finished ? "done" : CANCELLED(r) ? "cancelled" : "pending";
    return PyUnicode_FromFormat("<linuxaio request %s %s>", request_name(r), state);
}

static PyObject *request_undo(Request *r, PyObject *unused)
{
    lx_undo_effect(r);
    Py_RETURN_NONE;
}

static PyMethodDef request_methods[] = {
    {"_undo", (PyCFunction)request_undo, METH_NOARGS,
     "Undo the finished request's effect (close the fd it opened): its result was not taken."},
    {"cancel", (PyCFunction)(void (*)(void))request_cancel, METH_FASTCALL | METH_KEYWORDS,
     "cancel(msg=None)\n--\n\nA request not started never runs; one that ran has its callback\n"
     "suppressed and its effect undone where that is possible (an opened fd is closed).\n"
     "Returns True if this call cancelled it."},
    {"done", (PyCFunction)request_done, METH_NOARGS, "done()\n--\n\nTrue once the request has finished."},
    {"cancelled", (PyCFunction)request_cancelled, METH_NOARGS,
     "cancelled()\n--\n\nTrue once the request was cancelled."},
    {NULL}};

static PyGetSetDef request_getset[] = {
    {"name", (getter)request_get_name, NULL, "The operation's name.", NULL},
    {NULL}};

static PyAsyncMethods request_async = {.am_await = (unaryfunc)lx_future_await,
                                       .am_send = (sendfunc)lx_future_am_send};

PyTypeObject lx_RequestType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "linuxaio.Request",
    .tp_basicsize = sizeof(Request),
    .tp_dealloc = (destructor)lx_request_dealloc,
    .tp_repr = (reprfunc)request_repr,
    .tp_as_async = &request_async,
    .tp_iternext = (iternextfunc)lx_future_iternext,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)lx_request_traverse,
    .tp_clear = (inquiry)lx_request_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "An outstanding request, as returned by every aio_* function.",
    .tp_methods = request_methods,
    .tp_getset = request_getset,
};

/* ---- submission ---- */

/* The value of r, whose try (inline.c) completed it in this thread, at
 * submission or at its parked turn; NULL with the error set, its effect
 * (an fd it opened) undone. */
static PyObject *inline_result(Request *r)
{
    PyObject *value;
    __atomic_store_n(&r->ran, 1, __ATOMIC_RELEASE);   /* an fd it opened can be undone */
    value = lx_ops[r->op].result(r);
    lx_release_args(r);
    /* finished, but not tracked by the collector: a done future whose
     * result is a plain value is in no cycle */
    r->finished = 1;
    if (!value)
        lx_undo_effect(r);
    return value;
}

/* r completed in the caller's thread (inline.c): its awaiter gets the
 * result at once; the engine never saw it. */
static PyObject *finish_inline(Request *r)
{
    PyObject *cb = r->callback, *value = inline_result(r);
    if (!value) {
        Py_DECREF(r);
        return NULL;
    }
    if (r->delivery == DELIVER_FUTURE) {
        lx_future_done_inline(r, value);
        return (PyObject *)r;
    }
    /* a trio task's waiter: it takes the value before its task would sleep.
     * Here, in its run's thread and before the task could sleep, settling
     * it is storing the value (_loop.py, _TrioWaiter.settle: _TAKING), at
     * a quarter of the cost of calling it. */
    r->callback = NULL;
    {
        static PyObject *str_got;
        PyObject *res;
        if (!str_got && !(str_got = PyUnicode_InternFromString("got")))
            res = NULL;
        else if (PyObject_SetAttr(cb, str_got, value) == 0)
            res = Py_NewRef(Py_None);
        else
            res = NULL;
        Py_DECREF(cb);
        Py_DECREF(value);
        if (!res) {
            Py_DECREF(r);
            return NULL;
        }
        Py_DECREF(res);
    }
    return (PyObject *)r;
}

/* Into the engine: a worker or the ring runs it. */
static void to_engine(Request *r)
{
    lx_req *base = &r->base;
    lx_stamp(r, 1);
    E.nreqs++;
    Py_INCREF(r);   /* the engine's reference, dropped at completion */
    lx_backend_submit(&base, 1);
}

/* Every row's function, once per face: self is row * LX_NFACES + face. */
PyObject *lx_submit(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    long id = PyLong_AsLong(self);
    int op = (int)(id / LX_NFACES), face = (int)(id % LX_NFACES);
    const lx_face *f = &lx_ops[op].face[face];
    PyObject *cb;
    int pri;
    Request *r;

    if (lx_parse_common(f->name, (Py_ssize_t)strlen(f->args), args, nargs, kwnames, &cb, &pri) < 0)
        return NULL;
    if (!(r = lx_request_new(&lx_RequestType, op, face)))
        return NULL;
    /* The callback first: a refused call must leave the buffer ungrown. */
    if (lx_parse_callback(r, cb) < 0 || lx_parse_args(r, f->args, args) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    r->base.pri = (signed char)pri;
    /* An awaited request first tries to complete here (inline.c). */
    if (lx_inline_enabled && lx_ops[op].try_now
        && (r->delivery == DELIVER_FUTURE
            || (r->callback && (PyObject *)Py_TYPE(r->callback) == lx_task_waiter_type))) {
        int rc = lx_inline_try(r);
        if (rc == LX_TRY_PARKED)
            return (PyObject *)r;   /* the loop's next turn runs it (inline.c) */
        if (rc)
            return finish_inline(r);
    }
    to_engine(r);
    return (PyObject *)r;
}

/* A parked await's turn came (inline.c): its try (the budget counted
 * it), done there as at submission, or the engine as usual.  Its future
 * is settled here: the task waiting on it is woken. */
static int resume_parked(Request *r, int may_try)
{
    PyObject *value;
    int rc;
    if (!may_try || !lx_inline_attempt(r)) {
        to_engine(r);
        return 0;
    }
    value = inline_result(r);   /* NULL: the task gets the error (lx_hand_over) */
    rc = lx_hand_over(r, NULL, value, 0);
    Py_XDECREF(value);
    return rc;
}

void lx_request_init_resume(void) { lx_inline_set_resume(resume_parked); }

/* ---- what becomes of a finished request ---- */

/* Have poll_cb look at the group again (to arm it, or finish it). */
void lx_group_kick(Group *g)
{
    if (!g->queued && !g->req.finished) {
        g->queued = 1;
        lx_complete(&g->req.base, NULL);
    }
}

/* A batch nobody will take the results of (cancelled, dropped, or its
 * result not taken): undo what its delivered children did (close the fds
 * of opens), once.  A slot holds the result (an open_stat's: the fd first). */
void lx_undo_slots(Group *g)
{
    const lx_op *row = &lx_ops[g->batch_op];
    if (!g->slots || !row->undo)
        return;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(g->slots); i++) {
        PyObject *v = PyList_GET_ITEM(g->slots, i), *fd = v;
        if (PyTuple_Check(v) && PyTuple_GET_SIZE(v))
            fd = PyTuple_GET_ITEM(v, 0);
        if (PyLong_Check(fd)) {
            Request done;   /* undo needs only the raw result */
            done.result = PyLong_AsLongLong(fd);
            row->undo(&done);
            PyList_SetItem(g->slots, i, Py_NewRef(Py_None));
        }
    }
}

/* Undo what a request did when nobody will take its result. */
void lx_undo_effect(Request *r)
{
    if (r->op == OP_GROUP)
        lx_undo_slots((Group *)r);
    /* Claimed atomically: an abandoned request's worker (no GIL) and an
     * aborted waiter's _undo() may both get here, and an fd closed twice
     * may by then be somebody else's. */
    else if (lx_ops[r->op].undo && __atomic_exchange_n(&r->ran, 0, __ATOMIC_ACQ_REL)
             && r->result >= 0)
        lx_ops[r->op].undo(r);
}

/* Give one value (a result, or an OSError when failed) to whoever waits. */
int lx_hand_over(Request *r, PyObject *cb, PyObject *value, int failed)
{
    PyObject *res;
    if (!value) {
        PyObject *et, *ev, *tb;
        int rc;
        if (r->delivery != DELIVER_FUTURE)
            return -1;
        /* The result could not be made (MemoryError...): the awaiting task
         * gets that error rather than waiting for ever. */
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        rc = lx_future_settle(r, ev, 1);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
        return rc;
    }
    switch (r->delivery) {
    case DELIVER_FUTURE:
        return lx_future_settle(r, value, failed);
    case DELIVER_SLOT:
        return PyList_SetItem(r->group->slots, r->slot, Py_NewRef(value));
    default:
        res = PyObject_CallOneArg(cb, value);
        Py_XDECREF(res);
        return res ? 0 : -1;
    }
}

/* The glue's trio waiter type (_loop.py): a callback that is a task. */
PyObject *lx_task_waiter_type;

/* A task still awaiting a dropped request would wait for ever: under
 * asyncio it gets CancelledError (its future is cancelled, woken through
 * its loop); under trio OSError(ECANCELED) (its waiter settles it in its
 * run's thread).  Harmless when the task itself cancelled: a cancelled
 * future stays so, an aborted trio waiter ignores it. */
void lx_tell_awaiter(Request *r, PyObject *cb)
{
    if (r->loop) {
        if (!lx_future_done(r) && lx_future_cancel(r, NULL) < 0)
            PyErr_Clear();   /* its loop is closed: nobody awaits any more */
    } else if (cb && (PyObject *)Py_TYPE(cb) == lx_task_waiter_type) {
        PyObject *exc = lx_oserror(ECANCELED, r->filename, r->filename2);
        PyObject *res = exc ? PyObject_CallOneArg(cb, exc) : NULL;
        Py_XDECREF(exc);
        if (res)
            Py_DECREF(res);
        else
            PyErr_Clear();   /* its run is over: nobody awaits any more */
    }
}

/* A cancelled request was delivered.  The engine may have cancelled it
 * (reinit's stop, in another thread, while a drain here runs): a task
 * awaiting it, or the batch it belongs to, must hear so. */
void lx_engine_cancelled(Request *r, PyObject *cb)
{
    Group *g = r->group;
    if (r->delivery != DELIVER_SLOT)
        lx_tell_awaiter(r, cb);
    else if (!g->req.base.cancelled) {   /* its batch cannot be whole */
        if (g->req.loop) {
            if (lx_future_cancel(&g->req, NULL) < 0)
                PyErr_Clear();
        } else
            lx_request_cancel(&g->req);   /* its waiter is told as it finishes */
    }
}
