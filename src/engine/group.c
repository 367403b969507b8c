/* group.c: groups (IO::AIO's: add, limit, feed, result), their finishing
 * walk up a chain of any depth, and submit_many's batches. */
#include "ops.h"
#include "future.h"
#include "backend.h"

#include <string.h>

/* Nothing left for the group to wait for: no child, and no feeder that may
 * add one (a cancelled group's is never called). */
static int group_idle(Group *g)
{
    return !g->nchildren && (!g->feeder || g->req.base.cancelled);
}

/* The group is done: its callback gets the result.  The caller holds a
 * reference besides the engine's, dropped here. */
static int finish_group(Group *g)
{
    Request *r = &g->req;
    PyObject *cb = r->callback;
    int rc = 0;
    r->callback = NULL;
    lx_set_finished(r);
    E.nreqs--;
    lx_live_unlink(g);
    Py_CLEAR(g->feeder);
    if ((cb || r->delivery != DELIVER_CALLBACK) && !r->base.cancelled) {
        PyObject *value = g->slots ? g->slots : g->result ? g->result : Py_None;
        rc = lx_hand_over(r, cb, Py_NewRef(value), 0);
        Py_DECREF(value);
    } else if (r->base.cancelled)
        lx_tell_awaiter(r, cb);
    Py_XDECREF(cb);
    Py_DECREF(r);   /* the engine's reference */
    return rc;
}

/* Call the feeder while the group holds fewer than limit requests; a call
 * that adds nothing removes it (IO::AIO's feed).  So does a call that
 * raises: kept, the feeder would hold the group open for ever (each poll
 * raising again, or none calling it).  A feeder that polls (flush) is not
 * called again from inside itself. */
static int group_feed(Group *g)
{
    int rc = 0;
    if (g->feeding)
        return 0;
    g->feeding = 1;
    Py_INCREF(g);
    while (g->feeder && !g->req.finished && !g->req.base.cancelled && g->nchildren < g->limit) {
        Py_ssize_t before = g->nadded;
        PyObject *feeder = Py_NewRef(g->feeder);
        PyObject *res = PyObject_CallOneArg(feeder, (PyObject *)g);
        if (!res && g->feeder == feeder)
            Py_CLEAR(g->feeder);
        Py_DECREF(feeder);
        if (!res) {
            rc = -1;
            break;
        }
        Py_DECREF(res);
        if (g->nadded == before)
            Py_CLEAR(g->feeder);
    }
    g->feeding = 0;
    Py_DECREF(g);
    return rc;
}

/* Of several errors the first propagates; the others are unraisable. */
static void keep_first_error(PyObject **et, PyObject **ev, PyObject **tb, PyObject *where)
{
    if (*et)
        PyErr_WriteUnraisable(where);
    else
        PyErr_Fetch(et, ev, tb);
}

/* The group lost a child, or poll_cb armed it: feed it, and once it has
 * nothing left to wait for, finish it and go on with its own group, which
 * may finish in turn.  A loop, not recursion: chains of nested groups may
 * be a million deep.  Takes over a reference to g.  An error already set
 * (the child's callback raised) comes first. */
int lx_settle_up(Group *g)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    for (;;) {
        Group *parent;
        if (group_feed(g) < 0)
            keep_first_error(&et, &ev, &tb, (PyObject *)g);
        if (!g->armed || !group_idle(g) || g->req.finished)
            break;
        if (finish_group(g) < 0)
            keep_first_error(&et, &ev, &tb, (PyObject *)g);
        if (!(parent = g->req.group))
            break;
        lx_child_unlink(&g->req);   /* g's reference to parent is ours now */
        Py_DECREF(g);
        g = parent;
    }
    Py_DECREF(g);
    if (!et)
        return 0;
    PyErr_Restore(et, ev, tb);
    return -1;
}

/* A finished child leaves its group; errors from both ends are kept. */
int lx_leave_group(Request *r, int rc)
{
    Group *g = r->group;
    if (!g)
        return rc;
    lx_child_unlink(r);
    return lx_settle_up(g) < 0 ? -1 : rc;
}

/* A request being checked by group_add: a group nobody can reach, so a
 * request given twice is found in the same pass.  (Not an object: no
 * collection, which would visit r->group, can run during the checks.) */
#define ADDING (&E.live)

static PyObject *group_add(Group *g, PyObject *args)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args), i;
    PyObject *bad = NULL;
    const char *why = NULL;
    if (g->req.finished) {
        PyErr_SetString(PyExc_ValueError, "cannot add to a finished group");
        return NULL;
    }
    /* Every argument is checked before anything changes.  Each one checked
     * is marked (r->group = ADDING) until the end of the checks, which run
     * no Python code: the marks are gone before an error is raised. */
    for (i = 0; i < n; i++) {
        Request *r = (Request *)PyTuple_GET_ITEM(args, i);
        if (!PyObject_TypeCheck((PyObject *)r, &lx_RequestType)) {
            bad = (PyObject *)r;
            break;
        }
        if (r->finished)
            why = "request already finished";
        else if (r->group == ADDING)
            why = "request given twice";
        else if (r->group)
            why = "request already belongs to a group";
        else if (r == &g->req)
            why = "a group cannot contain itself";
        else if (r->op == OP_GROUP && ((Group *)r)->nchildren) {
            /* only a group with children can be an ancestor of g: adding
             * fresh groups (a chain built top-down) walks nothing */
            for (Group *a = g->req.group; a && !why; a = a->req.group)
                if ((Request *)a == r)
                    why = "a group cannot contain itself";
        }
        if (why)
            break;
        r->group = ADDING;
    }
    if (bad || why) {
        while (i-- > 0)
            ((Request *)PyTuple_GET_ITEM(args, i))->group = NULL;
        if (bad)
            PyErr_Format(PyExc_TypeError, "can only add requests to a group, not %.100s",
                         Py_TYPE(bad)->tp_name);
        else
            PyErr_SetString(PyExc_ValueError, why);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        Request *r = (Request *)PyTuple_GET_ITEM(args, i);
        lx_child_link(g, r);
        if (g->req.base.cancelled)
            lx_request_cancel(r);
    }
    Py_RETURN_NONE;
}

static PyObject *group_after_change(Group *g)
{
    int rc = group_feed(g);
    if (g->armed && group_idle(g))
        lx_group_kick(g);   /* finish it from poll_cb, where callbacks belong */
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *group_limit(Group *g, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "limit must not be negative");
        return NULL;
    }
    g->limit = n;
    return group_after_change(g);
}

static PyObject *group_feed_method(Group *g, PyObject *fn)
{
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "feeder must be callable or None");
        return NULL;
    }
    if (g->req.finished) {
        PyErr_SetString(PyExc_ValueError, "cannot feed a finished group");
        return NULL;
    }
    Py_XSETREF(g->feeder, fn == Py_None ? NULL : Py_NewRef(fn));
    if (g->feeder && g->limit <= 0)
        g->limit = 2;
    return group_after_change(g);
}

/* result(value) sets what the group callback gets (IO::AIO's); result()
 * with no argument is asyncio's Future.result, for an awaited batch. */
static PyObject *group_result(Group *g, PyObject *args)
{
    PyObject *value;
    if (PyTuple_GET_SIZE(args) == 0)
        return lx_future_result(&g->req);
    if (!PyArg_ParseTuple(args, "O:result", &value))
        return NULL;
    Py_XSETREF(g->result, Py_NewRef(value));
    Py_RETURN_NONE;
}

static PyObject *group_get_size(Group *g, void *c) { return PyLong_FromSsize_t(g->nchildren); }

static PyMethodDef group_methods[] = {
    {"add", (PyCFunction)group_add, METH_VARARGS,
     "add(*requests)\n--\n\nMake outstanding requests children of this group."},
    {"limit", (PyCFunction)group_limit, METH_O,
     "limit(n)\n--\n\nCall the feeder while fewer than n children are outstanding."},
    {"feed", (PyCFunction)group_feed_method, METH_O,
     "feed(fn)\n--\n\nfn(group) is called to add requests while the group holds fewer\n"
     "than limit (2 unless set); a call that adds none removes the feeder."},
    {"result", (PyCFunction)group_result, METH_VARARGS,
     "result(value)\n--\n\nWhat the group's callback will get (None by default).\n"
     "Without an argument: the result of an awaited batch (asyncio.Future.result)."},
    {NULL}};

static PyGetSetDef group_getset[] = {
    {"size", (getter)group_get_size, NULL, "Children outstanding.", NULL},
    {NULL}};

PyTypeObject lx_GroupType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "linuxaio.Group",
    .tp_basicsize = sizeof(Group),
    .tp_dealloc = (destructor)lx_request_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)lx_request_traverse,
    .tp_clear = (inquiry)lx_request_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "A group of requests: its callback runs once every child has finished.",
    .tp_methods = group_methods,
    .tp_getset = group_getset,
    .tp_base = &lx_RequestType,
};

/* The engine takes a new group in: outstanding until it finishes. */
static void start_group(Group *g)
{
    lx_stamp(&g->req, 0);
    E.nreqs++;
    Py_INCREF(g);   /* the engine's reference */
    lx_live_link(g);
}

static PyObject *aio_group(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *cb;
    int pri;
    Group *g;
    if (lx_parse_common("aio_group", 0, args, nargs, kwnames, &cb, &pri) < 0)
        return NULL;
    if (!(g = (Group *)lx_request_new(&lx_GroupType, OP_GROUP, 0)))
        return NULL;
    if (lx_parse_callback(&g->req, cb) < 0) {
        Py_DECREF(g);
        return NULL;
    }
    g->req.base.pri = (signed char)pri;
    start_group(g);
    lx_group_kick(g);
    return (PyObject *)g;
}

/* submit_many(name, argument_tuples, callback, *, pri=0): one group whose
 * children are the rows' requests; its callback (or future) gets the list of
 * results in order, an OSError in the place of each that failed. */
static PyObject *submit_many(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *cb, *fast = NULL, *name;
    Request **kids = NULL;
    lx_req **bases = NULL;
    Py_ssize_t n = 0, made = 0, nspec, len;
    Group *g = NULL;
    const char *utf8;
    const lx_face *f;
    int pri, op, face;

    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "submit_many(name, argument_tuples, callback=None, *, pri=0)");
        return NULL;
    }
    name = args[0];
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_ValueError, "no operation named %R", name);
        return NULL;
    }
    if (!(utf8 = PyUnicode_AsUTF8AndSize(name, &len)))   /* a lone surrogate: UnicodeEncodeError */
        return NULL;
    if ((size_t)len != strlen(utf8) || (op = lx_op_index(utf8, &face)) < 0) {   /* "aio_nop\0..." too */
        PyErr_Format(PyExc_ValueError, "no operation named %R", name);
        return NULL;
    }
    f = &lx_ops[op].face[face];
    nspec = (Py_ssize_t)strlen(f->args);
    if (lx_parse_common("submit_many", 1, args + 1, nargs - 1, kwnames, &cb, &pri) < 0)
        return NULL;
    /* A tuple of our own: parsing runs Python code (__fspath__, __index__,
     * fileno()) that may clear or refill the caller's list, which would
     * free the argument tuples being parsed. */
    if (!(fast = PySequence_Tuple(args[1]))) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "argument_tuples must be a sequence");
        }
        return NULL;
    }
    n = PyTuple_GET_SIZE(fast);
    if (!(kids = PyMem_Calloc(n ? n : 1, sizeof *kids))
        || !(bases = PyMem_Calloc(n ? n : 1, sizeof *bases))) {
        PyErr_NoMemory();
        goto fail;
    }
    /* Parse every request before queueing any: a bad one queues nothing. */
    for (; made < n; made++) {
        PyObject *item = PyTuple_GET_ITEM(fast, made), *const *a = &item;
        if (PyTuple_Check(item)) {
            if (PyTuple_GET_SIZE(item) != nspec) {
                PyErr_Format(PyExc_TypeError, "%s takes %zd arguments per request, got %zd",
                             f->name, nspec, PyTuple_GET_SIZE(item));
                goto fail;
            }
            a = &PyTuple_GET_ITEM(item, 0);
        } else if (nspec != 1) {
            PyErr_Format(PyExc_TypeError, "%s needs a tuple of %zd arguments per request",
                         f->name, nspec);
            goto fail;
        }
        if (!(kids[made] = lx_request_new(&lx_RequestType, op, face)))
            goto fail;
        if (lx_parse_args(kids[made], f->args, a) < 0) {
            made++;
            goto fail;
        }
    }
    if (!(g = (Group *)lx_request_new(&lx_GroupType, OP_GROUP, 0)) || !(g->slots = PyList_New(n))
        || lx_parse_callback(&g->req, cb) < 0)
        goto fail;
    g->batch_op = (unsigned char)op;
    for (Py_ssize_t i = 0; i < n; i++)
        PyList_SET_ITEM(g->slots, i, Py_NewRef(Py_None));
    start_group(g);   /* even an empty batch waits for the next drain */
    for (Py_ssize_t i = 0; i < n; i++) {
        Request *r = kids[i];
        r->delivery = DELIVER_SLOT;
        r->slot = i;
        r->base.pri = (signed char)pri;
        lx_stamp(r, 1);
        lx_child_link(g, r);
        E.nreqs++;
        bases[i] = &r->base;   /* kids[i]'s reference becomes the engine's */
    }
    lx_backend_submit(bases, (unsigned long)n);
    lx_group_kick(g);
    PyMem_Free(kids);
    PyMem_Free(bases);
    Py_DECREF(fast);
    return (PyObject *)g;
fail:
    for (Py_ssize_t i = 0; kids && i < made; i++)
        Py_XDECREF(kids[i]);
    PyMem_Free(kids);
    PyMem_Free(bases);
    Py_XDECREF(fast);
    Py_XDECREF(g);
    return NULL;
}

PyMethodDef lx_group_module_methods[] = {
    {"aio_group", (PyCFunction)(void (*)(void))aio_group, METH_FASTCALL | METH_KEYWORDS,
     "aio_group(callback=None, *, pri=0)\n--\n\nA group; its callback gets result() once every child finished."},
    {"submit_many", (PyCFunction)(void (*)(void))submit_many, METH_FASTCALL | METH_KEYWORDS,
     "submit_many(name, argument_tuples, callback=None, *, pri=0)\n--\n\n"
     "Queue one request of operation `name` per tuple of arguments, in one call; the\n"
     "returned group's callback gets the list of results in order (an OSError in the\n"
     "place of each that failed)."},
    {NULL}};
