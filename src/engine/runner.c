/* runner.c: the bound runners of the hot os twins.
 *
 * `await linuxaio.os.pread(fd, n, offset)` through an `async def` costs a
 * coroutine object, its frame, and one more send through it before the
 * request's own await: about as much as the cached read's syscall.  A
 * runner is what linuxaio.os.pread is instead: a C callable that, called
 * with exactly the positional arguments of the common form, does what
 * _run(submit, *args, *extra) does (future.c) and returns the request,
 * which is its own future under asyncio (awaitable, a
 * collections.abc.Coroutine for create_task and anyio, a Future for
 * gather and wait_for).  Any other form of call (keywords, defaults)
 * goes to the async def it wraps, which also lends the runner its name,
 * doc, signature and code flags: inspect.iscoroutinefunction stays True.
 * With no asyncio loop running (trio, or a coroutine made before
 * asyncio.run), it returns what _run's elsewhere hook makes: trio's C
 * coroutine (trio_fast.c), which starts nothing before its first step and
 * there takes the asyncio road if a loop runs by then.  Under trio the
 * async def's coroutine and frame cost ~0.15 us an await.
 *
 * Under asyncio the request is submitted at the call, not at the first
 * step of a coroutine, so a task cancelled before its first step has
 * already read (which nobody sees); a write or an open would have
 * happened.  So an operation with side effects (open, close) is bound
 * with at_call False: its runner serves trio alone, and under asyncio
 * calls the async def.  A guard (an attribute name) sends a call whose
 * first argument has it set, not None, to the async def too: a
 * linuxaio.Path with a limiter runs its stat under the limiter. */
#include "future.h"

#include <string.h>

#define RUNNER_MAX 6   /* positional arguments + extra ones */

typedef struct {
    PyObject_HEAD
    PyObject *func;      /* the async def: other calls, and its attributes */
    PyObject *submit;    /* the engine's row function */
    PyObject *extra;     /* a tuple of arguments after the caller's */
    Py_ssize_t npos;     /* the caller's positional arguments on the fast path */
    int at_call;         /* under asyncio, may it start at the call (no side effects)? */
    PyObject *guard;     /* an attribute of the first argument that, set and not
                            None, sends the call to func (a Path's limiter) */
    vectorcallfunc vectorcall;
} Runner;

/* The first argument asks for func's way (guard set, not None): 1, else 0;
 * -1 with an exception. */
static int guarded(Runner *self, PyObject *first)
{
    PyObject *v;
    int set;
    if (!self->guard)
        return 0;
    if (!(v = PyObject_GetAttr(first, self->guard))) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    set = v != Py_None;
    Py_DECREF(v);
    return set;
}

static PyObject *runner_vectorcall(Runner *self, PyObject *const *args, size_t nargsf,
                                   PyObject *kwnames)
{
    Py_ssize_t n = PyVectorcall_NARGS(nargsf), nx, i;
    PyObject *stack[RUNNER_MAX + 1], *loop, *res;
    int g = 0;
    /* other forms of call, and a guarded first argument: the async def */
    if (kwnames || n != self->npos || (n && (g = guarded(self, args[0])) > 0))
        return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    if (g < 0)
        return NULL;
    nx = PyTuple_GET_SIZE(self->extra);
    /* No asyncio loop: the elsewhere hook's awaitable, which looks again
     * when it first runs (asyncio.run(linuxaio.os.stat(p)) makes it before
     * the loop), as the async def's _run would. */
    if (!(loop = lx_running_loop())) {
        if (PyErr_Occurred())
            return NULL;
        stack[0] = self->submit;
        for (i = 0; i < n; i++)
            stack[1 + i] = args[i];
        for (i = 0; i < nx; i++)
            stack[1 + n + i] = PyTuple_GET_ITEM(self->extra, i);
        return lx_loop_elsewhere(stack, 1 + n + nx);
    }
    if (!self->at_call) {
        Py_DECREF(loop);
        return PyObject_Vectorcall(self->func, args, nargsf, NULL);
    }
    for (i = 0; i < n; i++)
        stack[i] = args[i];
    for (i = 0; i < nx; i++)
        stack[n + i] = PyTuple_GET_ITEM(self->extra, i);
    stack[n + nx] = loop;
    res = PyObject_Vectorcall(self->submit, stack, (size_t)(n + nx + 1), NULL);
    Py_DECREF(loop);
    return res;
}

/* _bind(func, submit, npos, extra=(), at_call=True, guard=None) */
PyObject *lx_bind_runner(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    Runner *r;
    Py_ssize_t npos;
    PyObject *extra = nargs > 3 ? args[3] : NULL;
    int at_call = nargs > 4 ? PyObject_IsTrue(args[4]) : 1;
    PyObject *guard = nargs > 5 && args[5] != Py_None ? args[5] : NULL;
    if (nargs < 3 || nargs > 6 || !PyCallable_Check(args[0]) || !PyCallable_Check(args[1])
        || (extra && !PyTuple_Check(extra)) || at_call < 0 || (guard && !PyUnicode_Check(guard))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_bind(func, submit, npos, extra=(), at_call=True, guard=None)");
        return NULL;
    }
    if ((npos = PyLong_AsSsize_t(args[2])) == -1 && PyErr_Occurred())
        return NULL;
    if (npos < 0 || npos + (extra ? PyTuple_GET_SIZE(extra) : 0) > RUNNER_MAX) {
        PyErr_SetString(PyExc_ValueError, "_bind: too many arguments");
        return NULL;
    }
    if (!(r = PyObject_GC_New(Runner, &lx_RunnerType)))
        return NULL;
    r->func = Py_NewRef(args[0]);
    r->submit = Py_NewRef(args[1]);
    r->extra = extra ? Py_NewRef(extra) : PyTuple_New(0);
    r->npos = npos;
    r->at_call = at_call;
    r->guard = guard ? Py_NewRef(guard) : NULL;
    r->vectorcall = (vectorcallfunc)runner_vectorcall;
    if (!r->extra) {
        Py_DECREF(r);
        return NULL;
    }
    PyObject_GC_Track(r);
    return (PyObject *)r;
}

static int runner_traverse(Runner *r, visitproc visit, void *arg)
{
    Py_VISIT(r->func);
    Py_VISIT(r->submit);
    Py_VISIT(r->extra);
    return 0;
}

static int runner_clear(Runner *r)
{
    Py_CLEAR(r->func);
    Py_CLEAR(r->submit);
    Py_CLEAR(r->extra);
    Py_CLEAR(r->guard);
    return 0;
}

static void runner_dealloc(Runner *r)
{
    PyObject_GC_UnTrack(r);
    runner_clear(r);
    PyObject_GC_Del(r);
}

/* What describes a function is the async def's: inspect.signature and
 * iscoroutinefunction (which reads __code__'s flags), help(), pickling by
 * name. */
static const char *const lent[] = {
    "__doc__", "__name__", "__qualname__", "__module__", "__code__", "__defaults__",
    "__kwdefaults__", "__annotations__", "__dict__", "__type_params__", NULL};

static PyObject *runner_getattro(Runner *r, PyObject *name)
{
    PyObject *res;
    if (PyUnicode_Check(name)) {
        if (!PyUnicode_CompareWithASCIIString(name, "__wrapped__"))
            return Py_NewRef(r->func);
        for (int i = 0; lent[i]; i++)
            if (!PyUnicode_CompareWithASCIIString(name, lent[i]))
                return PyObject_GetAttr(r->func, name);
    }
    if ((res = PyObject_GenericGetAttr((PyObject *)r, name)) || !PyErr_ExceptionMatches(PyExc_AttributeError))
        return res;
    PyErr_Clear();
    return PyObject_GetAttr(r->func, name);   /* _is_coroutine markers and the like */
}

/* A class attribute binds as a function does. */
static PyObject *runner_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (!obj || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static PyObject *runner_repr(Runner *r) { return PyObject_Repr(r->func); }

static PyObject *runner_reduce(Runner *r, PyObject *unused)
{
    return PyObject_GetAttrString(r->func, "__qualname__");   /* a global, by name */
}

static PyMethodDef runner_methods[] = {
    {"__reduce__", (PyCFunction)runner_reduce, METH_NOARGS, NULL},
    {NULL}};

PyTypeObject lx_RunnerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "linuxaio._engine.Runner",
    .tp_basicsize = sizeof(Runner),
    .tp_dealloc = (destructor)runner_dealloc,
    .tp_vectorcall_offset = offsetof(Runner, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_repr = (reprfunc)runner_repr,
    .tp_getattro = (getattrofunc)runner_getattro,
    .tp_descr_get = runner_descr_get,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_traverse = (traverseproc)runner_traverse,
    .tp_clear = (inquiry)runner_clear,
    .tp_doc = "An os twin's fast path: submit at the call, the request is the awaitable.",
    .tp_methods = runner_methods,
};
