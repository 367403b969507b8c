/* control.c: counters, knobs, and module init, which hands the lower
 * layers what they need of the upper ones (the future's hooks, the sink's
 * undo of an abandoned request) and turns every face of every row of the
 * operation table into a module function. */
#define _GNU_SOURCE
#include "ops.h"
#include "future.h"
#include "backend.h"
#include "uring.h"
#include "dio.h"
#include "inline.h"
#include "trio_fast.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

static PyObject *poll_fileno(PyObject *m, PyObject *u) { return PyLong_FromLong(lx_completion_fileno()); }
static PyObject *nreqs(PyObject *m, PyObject *u) { return PyLong_FromSsize_t(E.nreqs); }
static PyObject *nready(PyObject *m, PyObject *u)
{
    return PyLong_FromUnsignedLong(lx_pool_nready() + lx_uring_nready());
}
static PyObject *npending(PyObject *m, PyObject *u)
{
    return PyLong_FromUnsignedLong(lx_nresults() + E.in_hand);
}
static PyObject *nthreads(PyObject *m, PyObject *u) { return PyLong_FromUnsignedLong(lx_pool_nthreads()); }

static int count_arg(PyObject *arg, const char *what, unsigned long max, unsigned long *out)
{
    long long v = PyLong_AsLongLong(arg);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || (unsigned long long)v > max) {
        PyErr_Format(PyExc_ValueError, "%s must be within 0..%lu", what, max);
        return -1;
    }
    *out = (unsigned long)v;
    return 0;
}

static int seconds_arg(PyObject *arg, const char *what, double *out)
{
    double s = PyFloat_AsDouble(arg);
    if (s == -1.0 && PyErr_Occurred())
        return -1;
    if (!(s >= 0) || s > 1e9) {
        PyErr_Format(PyExc_ValueError, "%s must be a number of seconds >= 0", what);
        return -1;
    }
    *out = s;
    return 0;
}

/* Thread counts stay small: each thread is a kernel task. */
#define MAX_THREADS 4096

/* min_parallel, max_parallel, max_idle: a thread count for the pool. */
#define THREAD_COUNT_KNOB(name, set)                                  \
    static PyObject *name(PyObject *m, PyObject *arg)                 \
    {                                                                 \
        unsigned long n;                                              \
        if (count_arg(arg, "nthreads", MAX_THREADS, &n) < 0)          \
            return NULL;                                              \
        set((unsigned)n);                                             \
        Py_RETURN_NONE;                                               \
    }
/* The ring's limit on what it has in the kernel follows them. */
static void raise_parallel(unsigned n) { lx_pool_min_threads(n); lx_uring_set_limit(n, 1); }
static void lower_parallel(unsigned n) { lx_pool_set_max_threads(n); lx_uring_set_limit(n, 0); }
THREAD_COUNT_KNOB(min_parallel, raise_parallel)
THREAD_COUNT_KNOB(max_parallel, lower_parallel)
THREAD_COUNT_KNOB(max_idle, lx_pool_set_max_idle)
THREAD_COUNT_KNOB(max_blocking_parallel, lx_pool_set_max_blocking)

static PyObject *idle_timeout(PyObject *m, PyObject *arg)
{
    double s;
    if (seconds_arg(arg, "idle_timeout", &s) < 0)
        return NULL;
    lx_pool_set_idle_timeout(s);
    Py_RETURN_NONE;
}

static PyObject *max_poll_reqs(PyObject *m, PyObject *arg)
{
    unsigned long n;
    if (count_arg(arg, "max_poll_reqs", ULONG_MAX >> 1, &n) < 0)
        return NULL;
    E.max_poll_reqs = n;
    Py_RETURN_NONE;
}

static PyObject *max_poll_time(PyObject *m, PyObject *arg)
{
    double s;
    if (seconds_arg(arg, "max_poll_time", &s) < 0)
        return NULL;
    E.max_poll_time_ns = (int64_t)(s * 1e9);
    Py_RETURN_NONE;
}

static PyObject *max_outstanding(PyObject *m, PyObject *arg)
{
    unsigned long n;
    if (count_arg(arg, "max_outstanding", PY_SSIZE_T_MAX, &n) < 0)
        return NULL;
    E.max_outstanding = (Py_ssize_t)n;
    Py_RETURN_NONE;
}

static PyObject *poll_helps(PyObject *m, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    lx_workers_set_help(on);
    Py_RETURN_NONE;
}

/* Private: the spin budgets, for benchmarks and tests. */
static PyObject *set_spin(PyObject *m, PyObject *args)
{
    double worker_s, linger_s;
    if (!PyArg_ParseTuple(args, "dd", &worker_s, &linger_s))
        return NULL;
    if (!(worker_s >= 0 && worker_s <= 1e9 && linger_s >= 0 && linger_s <= 1e9)) {
        PyErr_SetString(PyExc_ValueError, "spins must be seconds within 0..1e9");
        return NULL;
    }
    lx_pool_set_spin((int64_t)(worker_s * 1e9));
    E.linger_ns = (int64_t)(linger_s * 1e9);
    Py_RETURN_NONE;
}

/* Private, for tests and measurements: how many large copies run at once
 * (pool.h; default the CPUs), returning the previous limit (None: only
 * read it); _copies(): (running now, the most at once since the limit was
 * last set); _copies_owed(): copies whose result left the poller's wake-up
 * to the next result, ever. */
static PyObject *max_copies(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long n;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "_max_copies([n])");
        return NULL;
    }
    if (!nargs || args[0] == Py_None)
        return PyLong_FromUnsignedLong(lx_pool_max_copies());
    if (count_arg(args[0], "_max_copies", MAX_THREADS, &n) < 0)
        return NULL;
    if (!n) {
        PyErr_SetString(PyExc_ValueError, "_max_copies must be within 1..4096");
        return NULL;
    }
    return PyLong_FromUnsignedLong(lx_pool_set_max_copies((unsigned)n));
}

static PyObject *copies(PyObject *m, PyObject *unused)
{
    return Py_BuildValue("(II)", lx_pool_ncopies_running(), lx_pool_copies_peak());
}

static PyObject *copies_owed(PyObject *m, PyObject *unused)
{
    return PyLong_FromUnsignedLong(lx_pool_copies_owed());
}

static PyObject *set_task_waiter(PyObject *m, PyObject *type)
{
    Py_XSETREF(lx_task_waiter_type, Py_NewRef(type));
    Py_RETURN_NONE;
}

static PyObject *set_path_type(PyObject *m, PyObject *type)
{
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "_set_path_type(type)");
        return NULL;
    }
    Py_XSETREF(lx_path_type, Py_NewRef(type));
    Py_RETURN_NONE;
}

static PyObject *str_or_none(const char *s) { return s ? PyUnicode_FromString(s) : Py_NewRef(Py_None); }

/* _op_table(): the rows, for the tests that check them against the
 * exports, the stub and the README: (id, aio name, its letters, os name,
 * its letters, preset flags, has a try, has an undo, doc). */
static PyObject *op_table(PyObject *m, PyObject *unused)
{
    PyObject *t = PyTuple_New(lx_nops);
    for (int i = 0; t && i < lx_nops; i++) {
        const lx_op *row = &lx_ops[i];
        PyObject *item = Py_BuildValue("(sNNNNiOON)", row->id,
                                       str_or_none(row->face[FACE_AIO].name), str_or_none(row->face[FACE_AIO].args),
                                       str_or_none(row->face[FACE_OS].name), str_or_none(row->face[FACE_OS].args),
                                       row->flags, row->try_now ? Py_True : Py_False,
                                       row->undo ? Py_True : Py_False, str_or_none(row->doc));
        if (!item)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, i, item);
    }
    return t;
}

#define NOARGS(name, doc) {#name, (PyCFunction)name, METH_NOARGS, doc}
#define ONEARG(name, doc) {#name, (PyCFunction)name, METH_O, doc}

static PyMethodDef control_methods[] = {
    NOARGS(poll_fileno, "poll_fileno()\n--\n\nThe eventfd that is readable while results wait for poll_cb()."),
    NOARGS(nreqs, "nreqs()\n--\n\nRequests submitted and not yet finished."),
    NOARGS(nready, "nready()\n--\n\nRequests queued and not yet started."),
    NOARGS(npending, "npending()\n--\n\nRequests executed and waiting for poll_cb()."),
    NOARGS(nthreads, "nthreads()\n--\n\nWorker threads running now."),
    ONEARG(min_parallel, "min_parallel(n)\n--\n\nRaise the thread limit to at least n."),
    ONEARG(max_parallel, "max_parallel(n)\n--\n\nLower the thread limit to at most n, stopping extra threads."),
    {"dio_alignment", (PyCFunction)lx_dio_alignment_py, METH_O,
     "dio_alignment(fd_or_path)\n--\n\n(memory alignment, offset and length alignment) that O_DIRECT I/O\n"
     "on the file needs: statx(STATX_DIOALIGN), else the device's logical block size, else 4096."},
    {"_buffer_address", (PyCFunction)lx_buffer_address_py, METH_O, NULL},
    ONEARG(max_blocking_parallel, "max_blocking_parallel(n)\n--\n\nWhile requests block on the device (most of their time off the CPU),\n"
           "the pool may grow beyond the thread limit up to n threads (default 32; n <= the\n"
           "limit: never); the extra threads leave when nothing is queued."),
    ONEARG(max_idle, "max_idle(n)\n--\n\nIdle threads beyond n exit after idle_timeout seconds."),
    ONEARG(idle_timeout, "idle_timeout(seconds)\n--\n\nHow long an idle thread beyond max_idle waits before it exits."),
    ONEARG(max_poll_reqs, "max_poll_reqs(n)\n--\n\npoll_cb() handles at most n requests per call (0: no limit)."),
    ONEARG(max_poll_time, "max_poll_time(seconds)\n--\n\npoll_cb() returns after about that long (0: no limit)."),
    ONEARG(poll_helps, "poll_helps(flag)\n--\n\nWhether poll_cb() runs page-cache reads itself while the workers are busy (default True)."),
    ONEARG(max_outstanding, "max_outstanding(n)\n--\n\npoll_cb() blocks while nreqs() >= n (0: off)."),
    {"_run", (PyCFunction)(void (*)(void))lx_loop_run, METH_FASTCALL,
     "_run(submit, *args)\n--\n\nsubmit(*args, loop) under a running asyncio loop; else the hook's choice."},
    {"_set_loop_hooks", (PyCFunction)(void (*)(void))lx_set_loop_hooks, METH_FASTCALL, NULL},
    {"_bind", (PyCFunction)(void (*)(void))lx_bind_runner, METH_FASTCALL,
     "_bind(func, submit, npos, extra=(), at_call=True, guard=None)\n--\n\nAn os twin's runner (runner.c): called with npos positional arguments,\n"
     "_run(submit, *args, *extra); otherwise func(...)."},
    {"_set_task_waiter", (PyCFunction)set_task_waiter, METH_O, NULL},
    {"_set_path_type", (PyCFunction)set_path_type, METH_O, NULL},
    {"_set_spin", (PyCFunction)set_spin, METH_VARARGS, NULL},
    {"_max_copies", (PyCFunction)(void (*)(void))max_copies, METH_FASTCALL, NULL},
    {"_copies", (PyCFunction)copies, METH_NOARGS, NULL},
    {"_copies_owed", (PyCFunction)copies_owed, METH_NOARGS, NULL},
    {"_op_table", (PyCFunction)op_table, METH_NOARGS, NULL},
    {NULL}};

static struct PyModuleDef engine_module = {
    PyModuleDef_HEAD_INIT, "linuxaio._engine",
    "The linuxaio engine: worker threads, request queues, completion on one eventfd.",
    -1, control_methods,
};

/* One PyMethodDef per table row, alive as long as the process. */
static PyMethodDef *row_methods;

/* The future reaches the request layer only through these. */
static const lx_future_hooks future_hooks = {
    .fresh = lx_request_fresh,
    .undo = lx_undo_effect,
    .cancel = lx_request_cancel,
    .quick_ok = lx_await_quick_ok,
    .take = lx_await_take,
    .abandon_quick = lx_await_abandon,
};

/* A module function per face of every row (lx_submit). */
static int add_rows(PyObject *m)
{
    PyObject *modname = PyModule_GetNameObject(m);
    int rc = -1;
    if (!modname)
        return -1;
    if (!(row_methods = PyMem_Calloc(lx_nops * LX_NFACES, sizeof *row_methods))) {
        PyErr_NoMemory();
        goto done;
    }
    for (int i = 0; i < lx_nops * LX_NFACES; i++) {
        const lx_op *row = &lx_ops[i / LX_NFACES];
        const lx_face *f = &row->face[i % LX_NFACES];
        PyObject *self, *fn;
        if (!f->name)
            continue;
        row_methods[i] = (PyMethodDef){f->name, (PyCFunction)(void (*)(void))lx_submit,
                                       METH_FASTCALL | METH_KEYWORDS,
                                       i % LX_NFACES == FACE_AIO ? row->doc : NULL};
        self = PyLong_FromLong(i);
        fn = self ? PyCFunction_NewEx(&row_methods[i], self, modname) : NULL;
        Py_XDECREF(self);
        if (!fn || PyModule_AddObject(m, f->name, fn) < 0) {
            Py_XDECREF(fn);
            goto done;
        }
    }
    rc = 0;
done:
    Py_DECREF(modname);
    return rc;
}

/* The constants of the names, directories and xattrs rows, with the
 * kernel's names (READDIR_*: IO::AIO's), and the WorkingDir type. */
static const struct { const char *name; long value; } name_constants[] = {
    {"RENAME_NOREPLACE", RENAME_NOREPLACE}, {"RENAME_EXCHANGE", RENAME_EXCHANGE},
    {"RENAME_WHITEOUT", RENAME_WHITEOUT},
    {"READDIR_DENTS", LX_READDIR_DENTS}, {"READDIR_DIRS_FIRST", LX_READDIR_DIRS_FIRST},
    {"READDIR_STAT_ORDER", LX_READDIR_STAT_ORDER}, {"READDIR_FOUND_UNKNOWN", LX_READDIR_FOUND_UNKNOWN},
    {"DT_UNKNOWN", DT_UNKNOWN}, {"DT_FIFO", DT_FIFO}, {"DT_CHR", DT_CHR}, {"DT_DIR", DT_DIR},
    {"DT_BLK", DT_BLK}, {"DT_REG", DT_REG}, {"DT_LNK", DT_LNK}, {"DT_SOCK", DT_SOCK},
    {"DT_WHT", DT_WHT},
    {"XATTR_CREATE", XATTR_CREATE}, {"XATTR_REPLACE", XATTR_REPLACE},
};

static int add_names(PyObject *m)
{
    for (size_t i = 0; i < sizeof name_constants / sizeof *name_constants; i++)
        if (PyModule_AddIntConstant(m, name_constants[i].name, name_constants[i].value) < 0)
            return -1;
    if (PyType_Ready(&lx_WorkingDirType) < 0)
        return -1;
    return PyModule_AddObjectRef(m, "WorkingDir", (PyObject *)&lx_WorkingDirType);
}

/* __all__, what linuxaio re-exports (from ._engine import *): every public
 * name but the os twins, which linuxaio.os wraps, and the AT_* flags. */
static int add_all(PyObject *m)
{
    PyObject *all = PyList_New(0), *key, *value;
    Py_ssize_t pos = 0;
    if (!all)
        return -1;
    while (PyDict_Next(PyModule_GetDict(m), &pos, &key, &value)) {
        const char *name = PyUnicode_AsUTF8(key);
        int face;
        if (!name)
            goto fail;
        if (name[0] == '_' || !strncmp(name, "AT_", 3)
            || (lx_op_index(name, &face) >= 0 && face == FACE_OS))
            continue;
        if (PyList_Append(all, key) < 0)
            goto fail;
    }
    if (PyList_Sort(all) < 0 || PyModule_AddObject(m, "__all__", all) < 0)
        goto fail;
    return 0;
fail:
    Py_DECREF(all);
    return -1;
}

PyMODINIT_FUNC PyInit__engine(void)
{
    PyObject *m;
    if (row_methods) {
        PyErr_SetString(PyExc_ImportError, "linuxaio._engine cannot be loaded twice");
        return NULL;
    }
    if (PyType_Ready(&lx_RequestType) < 0 || lx_future_add_to_type(&lx_RequestType, &future_hooks) < 0
        || lx_type_add_methods(&lx_RequestType, lx_poll_request_methods, NULL) < 0
        || PyType_Ready(&lx_GroupType) < 0 || PyType_Ready(&lx_RunnerType) < 0 || lx_ops_init() < 0
        || lx_inline_init() < 0 || lx_trio_init() < 0)
        return NULL;
    lx_request_init_resume();
    if (lx_completion_init() < 0 || lx_workers_init() < 0
        || (lx_loop_fd = fcntl(lx_completion_fileno(), F_DUPFD_CLOEXEC, 0)) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (lx_uring_init() < 0)
        return NULL;
    lx_on_abandoned(lx_undo_abandoned);
    lx_engine_fd = lx_completion_fileno();
    E.live.live_next = E.live.live_prev = &E.live;
    E.linger_ns = 20 * 1000;
    if (!(m = PyModule_Create(&engine_module)))
        return NULL;
    if (PyModule_AddFunctions(m, lx_poll_module_methods) < 0
        || PyModule_AddFunctions(m, lx_uring_module_methods) < 0
        || PyModule_AddFunctions(m, lx_group_module_methods) < 0
        || PyModule_AddFunctions(m, lx_inline_module_methods) < 0
        || PyModule_AddFunctions(m, lx_trio_module_methods) < 0 || add_rows(m) < 0
        || PyModule_AddObjectRef(m, "Request", (PyObject *)&lx_RequestType) < 0
        || PyModule_AddObjectRef(m, "Group", (PyObject *)&lx_GroupType) < 0
        || PyModule_AddIntConstant(m, "PRI_MIN", LX_PRI_MIN) < 0
        || PyModule_AddIntConstant(m, "PRI_MAX", LX_PRI_MAX) < 0
        || PyModule_AddIntConstant(m, "AT_SYMLINK_NOFOLLOW", AT_SYMLINK_NOFOLLOW) < 0
        || PyModule_AddIntConstant(m, "AT_REMOVEDIR", AT_REMOVEDIR) < 0
        || PyModule_AddIntConstant(m, "SEEK_SET", SEEK_SET) < 0
        || PyModule_AddIntConstant(m, "SEEK_CUR", SEEK_CUR) < 0
        || PyModule_AddIntConstant(m, "SEEK_END", SEEK_END) < 0
        || PyModule_AddIntConstant(m, "SEEK_DATA", SEEK_DATA) < 0
        || PyModule_AddIntConstant(m, "SEEK_HOLE", SEEK_HOLE) < 0
        || add_names(m) < 0 || lx_add_op_constants(m) < 0 || add_all(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
