/* module.c: linuxaio._engine, the Python face of the pool.
 *
 * A request's road: aio_xxx() parses its arguments by the row's letters
 * (ops.h) into a Request, the pool runs it in a worker, poll_cb() turns the
 * raw result into one Python value (or one OSError) and calls the callback.
 * Everything here runs with the GIL; workers only see plain C fields. */
#define _GNU_SOURCE
#include "ops.h"
#include "future.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

/* The op index of groups, which never reach a worker. */
#define OP_GROUP 255

/* How a finished request reaches whoever waits for it. */
enum {
    DELIVER_CALLBACK,   /* callback(value) */
    DELIVER_FUTURE,     /* the request is an asyncio future (future.c) */
    DELIVER_SLOT,       /* a batch's result list, at slot */
};

struct Group {
    Request req;
    Request *children;         /* first child; linked by gnext/gprev */
    Py_ssize_t nchildren;
    Py_ssize_t nadded;         /* ever added: tells whether a feeder fed */
    Py_ssize_t limit;
    PyObject *feeder;
    PyObject *result;          /* what the group callback gets */
    PyObject *slots;           /* a batch's results, in submission order */
    unsigned char armed;       /* poll_cb has seen it once */
    unsigned char queued;      /* its event sits in the result queue */
    unsigned char batch_op;    /* a batch's (slots') operation */
    unsigned char feeding;     /* its feeder is running (group_feed) */
    Group *live_prev, *live_next;  /* unfinished groups, for reinit/fork */
};

static PyTypeObject RequestType, GroupType;
static void tell_awaiter(Request *r, PyObject *cb);
static void engine_cancelled(Request *r, PyObject *cb);

/* The pool sets it too, without the GIL (reinit's stop, lx_pool_abandon). */
#define CANCELLED(r) __atomic_load_n(&(r)->base.cancelled, __ATOMIC_RELAXED)

/* Engine state; every field is guarded by the GIL. */
static struct {
    Py_ssize_t nreqs;          /* submitted, not yet handed to poll_cb's callbacks */
    lx_req *hand;              /* taken from the pool, not yet handled */
    unsigned long in_hand;     /* how many */
    unsigned long max_poll_reqs;
    int64_t max_poll_time_ns;
    Py_ssize_t max_outstanding;
    int64_t linger_ns;         /* how long poll_cb spins for one more result */
    int help;                  /* poll_cb runs tryable requests (lx_pool_help) */
    int64_t quick_off_until;   /* a quick await's spin missed: none until then */
    int64_t op_ns[256];        /* recent run time of each operation (moving average) */
    Group live;                /* list head of unfinished groups */
} E;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- when a request was submitted, relative to a loop's drains ---- */

/* Per thread: each thread runs its own loop, and another thread's drains
 * say nothing about this one's turns. */
static _Thread_local struct {
    unsigned serial;           /* counts this thread's loop drains */
    unsigned draining;         /* one is running (nested: more) */
    unsigned long submitted;   /* requests submitted during the current one */
} D;

/* A loop's drain wakes awaiting tasks inline (future.c).  Two things must
 * still hold: every await gives the loop a turn, and a callback the task
 * scheduled (call_soon) before it awaited runs before the await returns.
 * Stamps tell the drain which requests it must not resume inline. */
static void stamp(Request *r, int counts)
{
    r->drain_serial = D.serial;
    r->in_drain = D.draining != 0;
    if (r->in_drain && counts)
        D.submitted++;
}

/* Submitted outside a drain since the last one began: perhaps earlier in
 * this same turn of the loop, whose call_soon callbacks run only on the
 * next turn.  Its task is woken through call_soon too. */
int lx_request_fresh(Request *r)
{
    return !r->in_drain && r->drain_serial + 1 >= D.serial;
}

/* ---- errors: one place turns errno into the right OSError subclass ---- */

static PyObject *lx_oserror(int err, PyObject *filename, PyObject *filename2)
{
    /* OSError(errno, strerror, filename, winerror, filename2) picks the
     * subclass (FileNotFoundError...) from errno itself. */
    PyObject *args = Py_BuildValue("(isOOO)", err, strerror(err),
                                   filename ? filename : Py_None, Py_None,
                                   filename2 ? filename2 : Py_None);
    PyObject *exc;
    if (!args)
        return NULL;
    if (!filename2) {   /* a 3-tuple, so str(exc) reads as os's own */
        PyObject *three = PyTuple_GetSlice(args, 0, 3);
        Py_DECREF(args);
        if (!(args = three))
            return NULL;
    }
    exc = PyObject_Call(PyExc_OSError, args, NULL);
    Py_DECREF(args);
    return exc;
}

/* ---- requests ---- */

static void release_args(Request *r)
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
    free(r->heap);
    r->heap = NULL;
    Py_CLEAR(r->path);
    Py_CLEAR(r->path2);
}

/* Never called for a request in flight: the engine holds a reference. */
static void request_dealloc(Request *r)
{
    PyObject_GC_UnTrack(r);
    /* the trashcan bounds the C stack when freeing one frees the next (a
     * chain of groups dropped by reinit, each holding its parent) */
    Py_TRASHCAN_BEGIN(r, request_dealloc)
    release_args(r);
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
    if (Py_TYPE(r) == &GroupType) {
        Group *g = (Group *)r;
        Py_XDECREF(g->feeder);
        Py_XDECREF(g->result);
        Py_XDECREF(g->slots);
    }
    Py_TYPE(r)->tp_free((PyObject *)r);
    Py_TRASHCAN_END
}

/* The collector sees the objects a request holds (only once it finished:
 * see set_finished).  Not the paths (bytes: no cycle passes through them)
 * nor a held buffer's exporter, released at completion.  Workers never
 * touch these fields. */
static int request_traverse(Request *r, visitproc visit, void *arg)
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
    if (Py_TYPE(r) == &GroupType) {
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
static int request_clear(Request *r)
{
    if (!r->finished)
        return 0;
    Py_CLEAR(r->filename);
    Py_CLEAR(r->filename2);
    Py_CLEAR(r->callback);
    lx_future_clear(r);
    Py_CLEAR(r->value);
    if (Py_TYPE(r) == &GroupType) {
        Group *g = (Group *)r;
        Py_CLEAR(g->feeder);
        Py_CLEAR(g->result);
        Py_CLEAR(g->slots);
    }
    return 0;
}

static Request *request_new(PyTypeObject *type, int op)
{
    Request *r = PyObject_GC_New(Request, type);
    if (!r)
        return NULL;
    memset((char *)r + sizeof(PyObject), 0, type->tp_basicsize - sizeof(PyObject));
    r->op = (unsigned char)op;
    r->fd = -1;
    r->fd2 = AT_FDCWD;
    r->offset = -1;
    if (op != OP_GROUP)
        r->flags = lx_ops[op].flags;
    return r;
}

/* The engine is done with r.  Only now does the collector track it: in
 * flight, the engine's reference keeps it alive whatever cycle it is in,
 * and a million queued requests would be traversed by every collection
 * (submitting cost a third more). */
static void set_finished(Request *r)
{
    r->finished = 1;
    if (!PyObject_GC_IsTracked((PyObject *)r))
        PyObject_GC_Track(r);
}

static void run_request(lx_req *base)
{
    Request *r = REQ_OF(base);
    if (__atomic_load_n(&base->cancelled, __ATOMIC_ACQUIRE))
        return;
    lx_ops[r->op].run(r);
    r->ran = 1;
}

/* Before Linux 5.9, RWF_NOWAIT did not stop a read from starting readahead
 * I/O: a poller's try could wait to submit it.  Helping is off there. */
static int kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;
    if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return 0;
    return ma > major || (ma == major && mi >= minor);
}

/* What a poller may try itself (lx_pool_help): how large, how many. */
#define TRY_MAX_BYTES (64 * 1024)
#define HELP_MAX 4

/* In a poller with nothing else to do (lx_pool_help): no GIL either. */
static int try_request(lx_req *base)
{
    Request *r = REQ_OF(base);
    int rc;
    if (__atomic_load_n(&base->cancelled, __ATOMIC_ACQUIRE))
        return 1;   /* finished unrun, as a worker would leave it */
    if ((rc = lx_ops[r->op].try_now(r)) > 0)
        r->ran = 1;
    return rc;
}

static void undo_slots(Group *g);

static void group_kick(Group *g);

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
    for (;;) {
        if (c->finished)
            ;   /* its callback is running, and it leaves the group after */
        else if (c->op != OP_GROUP)
            lx_pool_cancel(&c->base);
        else {
            Group *g = (Group *)c;
            g->req.base.cancelled = 1;
            undo_slots(g);   /* what its children delivered, nobody will take */
            if (g->children) {
                c = g->children;
                continue;
            }
            group_kick(g);   /* nothing to wait for: finish it */
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
static PyObject *request_get_name(Request *r, void *c)
{
    return PyUnicode_FromString(r->op == OP_GROUP ? "aio_group" : lx_ops[r->op].name);
}

static PyObject *request_repr(Request *r)
{
    const char *state = r->finished ? "done" : CANCELLED(r) ? "cancelled" : "pending";
    return PyUnicode_FromFormat("<linuxaio request %s %s>",
                                r->op == OP_GROUP ? "aio_group" : lx_ops[r->op].name, state);
}

static PyObject *request_undo(Request *r, PyObject *unused)
{
    lx_undo_effect(r);
    Py_RETURN_NONE;
}

/* A quick await driven from Python (trio's, in _loop.py): see
 * lx_await_quick_ok below. */
static PyObject *request_quick(Request *r, PyObject *unused)
{
    return PyBool_FromLong(!r->loop && lx_await_quick_ok(r));
}

static PyObject *request_take(Request *r, PyObject *unused)
{
    int taken = lx_await_take(r);
    return taken < 0 ? NULL : PyBool_FromLong(taken);
}

static PyObject *request_abandon(Request *r, PyObject *unused)
{
    lx_pool_unexpect(&r->base);
    Py_RETURN_NONE;
}

static PyMethodDef request_methods[] = {
    {"_quick", (PyCFunction)request_quick, METH_NOARGS,
     "Await this quick request with one turn of the loop: the engine will not signal its result."},
    {"_take", (PyCFunction)request_take, METH_NOARGS,
     "After _quick() and the turn: take the result (the callback runs now); False: wait as usual."},
    {"_abandon", (PyCFunction)request_abandon, METH_NOARGS,
     "After _quick(): it will not be taken after all; signal its result as usual."},
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

static PyAsyncMethods request_async = {.am_await = (unaryfunc)lx_future_await};

static PyTypeObject RequestType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "linuxaio.Request",
    .tp_basicsize = sizeof(Request),
    .tp_dealloc = (destructor)request_dealloc,
    .tp_repr = (reprfunc)request_repr,
    .tp_as_async = &request_async,
    .tp_iternext = (iternextfunc)lx_future_iternext,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)request_traverse,
    .tp_clear = (inquiry)request_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "An outstanding request, as returned by every aio_* function.",
    .tp_methods = request_methods,
    .tp_getset = request_getset,
};

/* ---- argument parsing, driven by a row's letters ---- */

/* The engine's own eventfd (poll_fileno()) is no fd for a request: closed,
 * the engine would write its counter into whatever file gets the number
 * next; read, it would lose wake-ups.  Given as an fd (any letter), it
 * becomes -1, which every syscall refuses with EBADF, as a closed fd. */
static int engine_fd = -1;

/* What the loop glue watches: a duplicate of poll_fileno(), the same
 * eventfd and so ready at the same times, under a number of its own.  A
 * program that watches poll_fileno() itself (add_reader, then remove_reader)
 * then leaves the glue's watch alone: loops key readers by number. */
static int loop_fd = -1;   /* refused as an fd, like engine_fd */

static inline int usable_fd(int fd)
{
    return fd == engine_fd || fd == loop_fd ? -1 : fd;
}

static int parse_fd(PyObject *o, int int_only, int *fd)
{
    if (int_only && !PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "fd must be an int, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    *fd = PyObject_AsFileDescriptor(o);   /* int or fileno(); ValueError if < 0 */
    return *fd < 0 ? -1 : 0;
}

static int parse_path(PyObject *o, PyObject **bytes, PyObject **given)
{
    if (o == Py_None) {
        PyErr_SetString(PyExc_TypeError, "path must be str, bytes or os.PathLike, not None");
        return -1;
    }
    /* OSError.filename: os.fspath() of the argument, as os reports it;
     * taken once (a PathLike's __fspath__ is Python code). */
    if (!(*given = PyOS_FSPath(o)))
        return -1;
    if (!PyUnicode_FSConverter(*given, bytes)) {   /* ValueError on an embedded NUL */
        Py_CLEAR(*given);
        return -1;
    }
    return 0;
}

static int parse_int64(PyObject *o, const char *what, int none_ok, int64_t *out)
{
    long long v;
    if (none_ok && o == Py_None) {
        *out = -1;
        return 0;
    }
    if (!PyLong_Check(o) && !PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0) {
        PyErr_Format(PyExc_ValueError, "%s must not be negative", what);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_os_fd(PyObject *o, int *fd)
{
    int overflow;
    long v;
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "'%.100s' object cannot be interpreted as an integer",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    v = PyLong_AsLongAndOverflow(o, &overflow);
    if ((v == -1 && PyErr_Occurred()) || overflow || v < INT_MIN || v > INT_MAX) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_OverflowError, "fd is out of range");
        return -1;
    }
    *fd = (int)v;
    return 0;
}

/* An offset or count for the os twins: what os does with a negative one
 * is fail with EINVAL (from the syscall, or os.read's own check). */
static int parse_os_count(PyObject *o, int64_t *out)
{
    long long v;
    if (!PyLong_Check(o) && !PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "an integer is required, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0) {
        errno = EINVAL;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    *out = v;
    return 0;
}

/* Whether a copy into this buffer can never wait for a disk: Python heap
 * memory (a bytearray or bytes, or a memoryview of one), or a mapping of
 * anonymous memory (an anonymous mmap).  A file mapping whose page is not
 * in memory would be read in by the copy (a poller's try must not do that,
 * ops.c).  A mapping is looked up once in /proc/self/maps and remembered
 * for its exporter while that object lives (a weak reference), with the
 * range of addresses the answer holds for. */
#define MAP_CACHE 1024          /* buffers remembered, by object address */
#define MAP_PROBES 4
#define LOOKUPS_BURST 64.0      /* then LOOKUPS_PER_S: a lookup costs ~0.15 ms */
#define LOOKUPS_PER_S 200.0
static struct {
    PyObject *ref;             /* weak reference to the exporter */
    uintptr_t lo, hi;
    int anon;
} map_cache[MAP_CACHE];
static double lookup_tokens = LOOKUPS_BURST;
static int64_t lookup_refill_ns;

/* The mapping holding addr: anonymous memory?  Sets [*lo, *hi). */
static int mapping_is_anonymous(uintptr_t addr, uintptr_t *lo, uintptr_t *hi)
{
    char line[512];
    int anon = 0;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        int path = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &a, &b, &path) < 2 || addr < a || addr >= b)
            continue;
        const char *name = path ? line + path : "";
        *lo = a;
        *hi = b;
        /* no file: private anonymous memory, the heap, a stack; shared
         * anonymous memory shows as /dev/zero, a memfd as /memfd: */
        anon = name[0] == '\n' || name[0] == '\0' || name[0] == '['
               || !strncmp(name, "/dev/zero ", 10) || !strncmp(name, "/memfd:", 7);
        break;
    }
    fclose(f);
    return anon;
}

/* A buffer object seen for the first time costs a lookup; a program that
 * makes a new mapping per request would pay one each time, so lookups are
 * rationed (a burst, then a steady rate) and a buffer not looked up is
 * simply not tried. */
static int lookup_allowed(void)
{
    int64_t t = now_ns();
    lookup_tokens += (double)(t - lookup_refill_ns) * 1e-9 * LOOKUPS_PER_S;
    if (lookup_tokens > LOOKUPS_BURST)
        lookup_tokens = LOOKUPS_BURST;
    lookup_refill_ns = t;
    if (lookup_tokens < 1.0)
        return 0;
    lookup_tokens -= 1.0;
    return 1;
}

static int memory_only_buffer(PyObject *obj, const char *data)
{
    uintptr_t addr = (uintptr_t)data, lo = 0, hi = 0;
    unsigned k;
    int anon;
    PyObject *ref;
    if (PyMemoryView_Check(obj) && PyMemoryView_GET_BASE(obj))
        obj = PyMemoryView_GET_BASE(obj);
    if (PyByteArray_Check(obj) || PyBytes_Check(obj))
        return 1;
    if (!PyType_SUPPORTS_WEAKREFS(Py_TYPE(obj)))
        return 0;
    k = (unsigned)((((uintptr_t)obj >> 4) * 0x9E3779B97F4A7C15ull) >> 54);   /* 10 bits */
    for (unsigned i = 0; i < MAP_PROBES; i++) {
        unsigned j = (k + i) % MAP_CACHE;
        if (map_cache[j].ref && PyWeakref_GetObject(map_cache[j].ref) == obj
            && addr >= map_cache[j].lo && addr < map_cache[j].hi)
            return map_cache[j].anon;
    }
    if (!lookup_allowed())
        return 0;
    anon = mapping_is_anonymous(addr, &lo, &hi);
    for (unsigned i = 0; i < MAP_PROBES; i++) {   /* a free slot, or one whose buffer died */
        unsigned j = (k + i) % MAP_CACHE;
        if (!map_cache[j].ref || PyWeakref_GetObject(map_cache[j].ref) == Py_None) {
            k = j;
            break;
        }
    }
    if (hi && (ref = PyWeakref_NewRef(obj, NULL))) {
        Py_XSETREF(map_cache[k].ref, ref);
        map_cache[k].lo = lo;
        map_cache[k].hi = hi;
        map_cache[k].anon = anon;
    }
    PyErr_Clear();
    return anon;
}

/* Hold the caller's buffer for the life of the request; check that
 * [doff, doff + length) lies inside it, growing a bytearray that reads
 * would overrun (as Linux::AIO grows its scalar). */
static int hold_buffer(Request *r, PyObject *obj, int writable, int64_t doff, int whole)
{
    int64_t need = doff + r->length;
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "data must be a bytes-like object, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (writable && PyByteArray_CheckExact(obj) && PyByteArray_GET_SIZE(obj) < need) {
        Py_ssize_t old = PyByteArray_GET_SIZE(obj);
        if (PyByteArray_Resize(obj, (Py_ssize_t)need) == 0)   /* short reads leave zeros */
            memset(PyByteArray_AS_STRING(obj) + old, 0, (size_t)(need - old));
        else {
            if (PyErr_ExceptionMatches(PyExc_BufferError)) {
                PyErr_Clear();
                PyErr_SetString(PyExc_ValueError,
                                "bytearray too small and cannot grow while it is exported");
            }
            return -1;
        }
    }
    if (PyObject_GetBuffer(obj, &r->view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
        if (PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, writable
                         ? "data must be a writable contiguous buffer, not %.100s"
                         : "data must be a contiguous buffer, not %.100s", Py_TYPE(obj)->tp_name);
        }
        return -1;
    }
    r->has_view = 1;
    if (whole)
        need = r->length = r->view.len;
    if (need > r->view.len) {
        PyErr_Format(PyExc_ValueError, "dataoffset + length (%lld) exceeds the buffer's size (%zd)",
                     (long long)need, r->view.len);
        return -1;
    }
    r->data = (char *)r->view.buf + doff;
    return 0;
}

/* utime: None is "now"; else (atime_ns, mtime_ns), as os.utime(ns=...). */
static int parse_times(PyObject *o, struct timespec *ts)
{
    if (o == Py_None) {
        ts[0].tv_sec = ts[1].tv_sec = 0;
        ts[0].tv_nsec = ts[1].tv_nsec = UTIME_NOW;
        return 0;
    }
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 2) {
        PyErr_SetString(PyExc_TypeError, "times must be None or a tuple (atime_ns, mtime_ns)");
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        PyObject *v = PyTuple_GET_ITEM(o, i);
        long long ns;
        if (!PyLong_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "times must be integers of nanoseconds");
            return -1;
        }
        ns = PyLong_AsLongLong(v);
        if (ns == -1 && PyErr_Occurred())
            return -1;
        ts[i].tv_sec = ns / 1000000000;
        ts[i].tv_nsec = ns % 1000000000;
        if (ts[i].tv_nsec < 0) {   /* floor, as os.utime does for times before 1970 */
            ts[i].tv_sec--;
            ts[i].tv_nsec += 1000000000;
        }
    }
    return 0;
}

static int parse_seconds_time(PyObject *o, struct timespec *ts)
{
    double s, whole;
    if (o == Py_None) {
        ts->tv_sec = 0;
        ts->tv_nsec = UTIME_NOW;
        return 0;
    }
    s = PyFloat_AsDouble(o);
    if (s == -1.0 && PyErr_Occurred())
        return -1;
    if (isnan(s)) {
        PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
        return -1;
    }
    whole = floor(s);
    /* A double out of time_t's range converts to anything (undefined): as
     * os.utime, refuse it. */
    if (!(whole >= -0x1p63 && whole < 0x1p63)) {
        PyErr_SetString(PyExc_OverflowError, "timestamp out of range for platform time_t");
        return -1;
    }
    ts->tv_sec = (time_t)whole;
    ts->tv_nsec = (long)((s - whole) * 1e9);
    return 0;
}

/* preadv/pwritev: hold every buffer of a sequence, as os.preadv does. */
static int hold_buffers(Request *r, PyObject *seq, int writable)
{
    /* A tuple of our own: a Python __buffer__ (3.12+) may change the list. */
    PyObject *fast = PySequence_Tuple(seq);
    Py_ssize_t n;
    lx_rare *x;
    if (!fast) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "buffers must be a sequence of bytes-like objects");
        }
        return -1;
    }
    n = PyTuple_GET_SIZE(fast);
    if (n > 1024) {   /* IOV_MAX */
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "at most 1024 buffers (IOV_MAX)");
        return -1;
    }
    if (!(x = lx_request_rare(r))) {
        Py_DECREF(fast);
        return -1;
    }
    /* the views, then the iovecs: one allocation */
    if (!(x->views = PyMem_Calloc(n ? n : 1, sizeof *x->views + sizeof *x->iov))) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    x->iov = (struct iovec *)(x->views + (n ? n : 1));
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyTuple_GET_ITEM(fast, i);
        if (PyObject_GetBuffer(o, &x->views[i], writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
            Py_DECREF(fast);   /* BufferError, as os.preadv raises */
            return -1;
        }
        x->niov = (int)i + 1;
        x->iov[i].iov_base = x->views[i].buf;
        x->iov[i].iov_len = x->views[i].len;
    }
    Py_DECREF(fast);
    return 0;
}

static int parse_args(Request *r, const char *spec, PyObject *const *args)
{
    int nu = 0;
    PyObject *buffer = NULL;
    int writable = 0;
    int64_t v;
    for (int i = 0; spec[i]; i++) {
        PyObject *o = args[i];
        switch (spec[i]) {
        case 'k':
            if (parse_os_fd(o, &r->fd) < 0)
                return -1;
            r->fd = usable_fd(r->fd);
            break;
        case 'f':
        case 'F':
            if (parse_fd(o, spec[i] == 'F', &r->fd) < 0)
                return -1;
            r->fd = usable_fd(r->fd);
            break;
        case 'x':
            /* str, bytes and os.PathLike first: looking for a fileno() they
             * lack would raise and clear an AttributeError on every call */
            if (!PyUnicode_Check(o) && !PyBytes_Check(o)
                && (PyLong_Check(o) || !PyObject_HasAttrString(o, "__fspath__"))) {
                if (parse_fd(o, 0, &r->fd) < 0 || !(r->filename = PyLong_FromLong(r->fd)))
                    return -1;
                r->fd = usable_fd(r->fd);
            } else if (parse_path(o, &r->path, &r->filename) < 0)
                return -1;
            break;
        case 'D':
            if (o != Py_None && parse_fd(o, 0, &r->fd2) < 0)
                return -1;
            r->fd2 = usable_fd(r->fd2);
            break;
        case 'E':
            r->fd = AT_FDCWD;
            if (o != Py_None && parse_fd(o, 0, &r->fd) < 0)
                return -1;
            r->fd = usable_fd(r->fd);
            break;
        case 't':
            if (parse_times(o, r->io.times) < 0)
                return -1;
            break;
        case 'u':   /* aio_utime: atime, then mtime, in seconds; None: now */
            if (parse_seconds_time(o, &r->io.times[nu++]) < 0)
                return -1;
            break;
        case 'p':
            if (parse_path(o, &r->path, &r->filename) < 0)
                return -1;
            break;
        case 'P':
            if (parse_path(o, &r->path2, &r->filename2) < 0)
                return -1;
            break;
        case 'i': {
            int overflow;
            long f;
            if (!PyLong_Check(o)) {
                PyErr_Format(PyExc_TypeError, "flags must be an int, not %.100s", Py_TYPE(o)->tp_name);
                return -1;
            }
            f = PyLong_AsLongAndOverflow(o, &overflow);
            if ((f == -1 && PyErr_Occurred()) || overflow || f < INT32_MIN || f > INT32_MAX) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_OverflowError, "flags out of range");
                return -1;
            }
            r->flags |= (int)f;
            break;
        }
        case 'm':
            if (parse_int64(o, "mode", 0, &v) < 0)
                return -1;
            if (v > 07777) {
                PyErr_SetString(PyExc_ValueError, "mode must be within 0..0o7777");
                return -1;
            }
            r->mode = (unsigned)v;
            break;
        case 's': {
            double s = PyFloat_AsDouble(o);
            if (s == -1.0 && PyErr_Occurred())
                return -1;
            if (!(s >= 0) || !isfinite(s)) {
                PyErr_SetString(PyExc_ValueError, "seconds must be a finite number >= 0");
                return -1;
            }
            if (s >= 0x1p63) {   /* the worker makes a time_t of it (ops.c) */
                PyErr_SetString(PyExc_OverflowError, "seconds out of range for platform time_t");
                return -1;
            }
            r->io.seconds = s;
            break;
        }
        case 'o':
            if (parse_int64(o, "offset", 1, &r->offset) < 0)
                return -1;
            break;
        case 'O':
            if (parse_os_count(o, &r->offset) < 0)
                return -1;
            break;
        case 'n':
        case 'N':
        case 'L':
            if (spec[i] == 'N' ? parse_os_count(o, &r->length) < 0
                               : parse_int64(o, "length", spec[i] == 'L', &r->length) < 0)
                return -1;
            if (r->length > PY_SSIZE_T_MAX) {
                PyErr_SetString(PyExc_OverflowError, "length too large");
                return -1;
            }
            if (spec[i] == 'N') {   /* read straight into the result */
                if (!(r->value = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)r->length)))
                    return -1;
                r->data = PyBytes_AS_STRING(r->value);
                r->memory_only = 1;
            }
            break;
        case 'W':
        case 'b':
            if (hold_buffer(r, o, spec[i] == 'W', 0, 1) < 0)
                return -1;
            break;
        case 'V':
        case 'v':
            if (hold_buffers(r, o, spec[i] == 'V') < 0)
                return -1;
            break;
        case 'w':
        case 'r':
            buffer = o;
            writable = spec[i] == 'w';
            break;
        case 'd':
            if (parse_int64(o, "dataoffset", 0, &v) < 0)
                return -1;
            if (v > PY_SSIZE_T_MAX - r->length) {
                PyErr_SetString(PyExc_OverflowError, "dataoffset too large");
                return -1;
            }
            /* after every other argument: the buffer check needs length */
            if (hold_buffer(r, buffer, writable, v, 0) < 0)
                return -1;
            break;
        }
    }
    /* Only positioned I/O is tried first: a try that stops short leaves the
     * rest to a worker, which a file position moved meanwhile would break.
     * Only small requests: a try must cost no more than the linger it
     * replaces (a 64 KiB copy from the page cache: a few microseconds).
     * Only into memory that is not a file mapping: the copy would read in a
     * page of one that is on disk. */
    if (lx_ops[r->op].try_now && E.help && r->offset >= 0 && r->length <= TRY_MAX_BYTES) {
        if (!r->memory_only && buffer)
            r->memory_only = memory_only_buffer(buffer, r->data);
        r->base.tryable = r->memory_only;
    }
    return 0;
}

/* A callable, None, or an asyncio loop: then the request is a future that
 * the awaiting task waits on (future.c). */
static int parse_callback(Request *r, PyObject *cb)
{
    if (cb != Py_None && !PyCallable_Check(cb)) {
        int is_loop = lx_future_bind(r, cb);
        if (is_loop < 0)
            return -1;
        if (!is_loop) {
            PyErr_Format(PyExc_TypeError, "callback must be callable or None, not %.100s",
                         Py_TYPE(cb)->tp_name);
            return -1;
        }
        r->delivery = DELIVER_FUTURE;
        return 0;
    }
    r->callback = cb == Py_None ? NULL : Py_NewRef(cb);
    return 0;
}

/* Parse the keywords every aio_* function takes: pri= and callback=. */
static int parse_common(const char *name, Py_ssize_t nspec, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames, PyObject **callback, int *pri)
{
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    *callback = Py_None;
    *pri = 0;
    if (nargs < nspec || nargs > nspec + 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd positional arguments and a callback (%zd given)",
                     name, nspec, nargs);
        return -1;
    }
    if (nargs == nspec + 1)
        *callback = args[nspec];
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k), *val = args[nargs + k];
        if (PyUnicode_CompareWithASCIIString(key, "pri") == 0) {
            long p = PyLong_AsLong(val);
            if (p == -1 && PyErr_Occurred())
                return -1;
            if (p < LX_PRI_MIN || p > LX_PRI_MAX) {
                PyErr_Format(PyExc_ValueError, "pri must be within %d..%d", LX_PRI_MIN, LX_PRI_MAX);
                return -1;
            }
            *pri = (int)p;
        } else if (PyUnicode_CompareWithASCIIString(key, "callback") == 0 && nargs == nspec) {
            *callback = val;
        } else {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", name, key);
            return -1;
        }
    }
    return 0;
}

/* Every row's function: self is the row number. */
static PyObject *submit(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    int op = (int)PyLong_AsLong(self);
    const lx_op *row = &lx_ops[op];
    PyObject *cb;
    int pri;
    Request *r;

    if (parse_common(row->name, (Py_ssize_t)strlen(row->args), args, nargs, kwnames, &cb, &pri) < 0)
        return NULL;
    if (!(r = request_new(&RequestType, op)))
        return NULL;
    /* The callback first: a refused call must leave the buffer ungrown. */
    if (parse_callback(r, cb) < 0 || parse_args(r, row->args, args) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    r->base.pri = (signed char)pri;
    stamp(r, 1);
    E.nreqs++;
    Py_INCREF(r);   /* the engine's reference, dropped at completion */
    lx_pool_submit(&r->base);
    return (PyObject *)r;
}

/* ---- groups ---- */

static void live_unlink(Group *g)
{
    if (g->live_next) {
        g->live_prev->live_next = g->live_next;
        g->live_next->live_prev = g->live_prev;
        g->live_next = g->live_prev = NULL;
    }
}

/* Have poll_cb look at the group again (to arm it, or finish it). */
static void group_kick(Group *g)
{
    if (!g->queued && !g->req.finished) {
        g->queued = 1;
        lx_pool_complete(&g->req.base);
    }
}

/* A batch nobody will take the results of (cancelled, dropped, or its
 * result not taken): undo what its delivered children did (close the fds
 * of opens), once.  A slot holds the result (an open_stat's: the fd first). */
static void undo_slots(Group *g)
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
        undo_slots((Group *)r);
    else if (r->ran && r->result >= 0 && lx_ops[r->op].undo) {
        r->ran = 0;   /* once */
        lx_ops[r->op].undo(r);
    }
}

/* Give one value (a result, or an OSError when failed) to whoever waits. */
static int hand_over(Request *r, PyObject *cb, PyObject *value, int failed)
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

/* Nothing left for the group to wait for: no child, and no feeder that may
 * add one (a cancelled group's is never called). */
static int group_idle(Group *g)
{
    return !g->nchildren && (!g->feeder || g->req.base.cancelled);
}

/* Take r out of its group's list; r's reference to the group passes to the
 * caller. */
static void unlink_child(Request *r)
{
    Group *g = r->group;
    if (r->gprev) r->gprev->gnext = r->gnext; else g->children = r->gnext;
    if (r->gnext) r->gnext->gprev = r->gprev;
    r->gnext = r->gprev = NULL;
    r->group = NULL;
    g->nchildren--;
}

/* The group is done: its callback gets the result.  The caller holds a
 * reference besides the engine's, dropped here. */
static int finish_group(Group *g)
{
    Request *r = &g->req;
    PyObject *cb = r->callback;
    int rc = 0;
    r->callback = NULL;
    set_finished(r);
    E.nreqs--;
    if (r->ran)
        E.op_ns[r->op] += (r->base.run_ns - E.op_ns[r->op]) / 8;
    live_unlink(g);
    Py_CLEAR(g->feeder);
    if ((cb || r->delivery != DELIVER_CALLBACK) && !r->base.cancelled) {
        PyObject *value = g->slots ? g->slots : g->result ? g->result : Py_None;
        rc = hand_over(r, cb, Py_NewRef(value), 0);
        Py_DECREF(value);
    } else if (r->base.cancelled)
        tell_awaiter(r, cb);
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
static int settle_up(Group *g)
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
        unlink_child(&g->req);   /* g's reference to parent is ours now */
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
static int leave_group(Request *r, int rc)
{
    Group *g = r->group;
    if (!g)
        return rc;
    unlink_child(r);
    return settle_up(g) < 0 ? -1 : rc;
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
        if (!PyObject_TypeCheck((PyObject *)r, &RequestType)) {
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
        r->group = (Group *)Py_NewRef(g);
        r->gnext = g->children;
        if (g->children)
            g->children->gprev = r;
        g->children = r;
        g->nchildren++;
        g->nadded++;
        if (g->req.base.cancelled)
            lx_request_cancel(r);
    }
    Py_RETURN_NONE;
}

static PyObject *group_after_change(Group *g)
{
    int rc = group_feed(g);
    if (g->armed && group_idle(g))
        group_kick(g);   /* finish it from poll_cb, where callbacks belong */
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

static PyTypeObject GroupType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "linuxaio.Group",
    .tp_basicsize = sizeof(Group),
    .tp_dealloc = (destructor)request_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)request_traverse,
    .tp_clear = (inquiry)request_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "A group of requests: its callback runs once every child has finished.",
    .tp_methods = group_methods,
    .tp_getset = group_getset,
    .tp_base = &RequestType,
};

static PyObject *aio_group(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *cb;
    int pri;
    Group *g;
    if (parse_common("aio_group", 0, args, nargs, kwnames, &cb, &pri) < 0)
        return NULL;
    if (!(g = (Group *)request_new(&GroupType, OP_GROUP)))
        return NULL;
    if (parse_callback(&g->req, cb) < 0) {
        Py_DECREF(g);
        return NULL;
    }
    g->req.base.pri = (signed char)pri;
    stamp(&g->req, 0);
    E.nreqs++;
    Py_INCREF(g);   /* the engine's reference */
    g->live_next = E.live.live_next;
    g->live_prev = &E.live;
    E.live.live_next->live_prev = g;
    E.live.live_next = g;
    group_kick(g);
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
    int pri, op;

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
    if ((size_t)len != strlen(utf8) || (op = lx_op_index(utf8)) < 0) {   /* "aio_nop\0..." too */
        PyErr_Format(PyExc_ValueError, "no operation named %R", name);
        return NULL;
    }
    nspec = (Py_ssize_t)strlen(lx_ops[op].args);
    if (parse_common("submit_many", 1, args + 1, nargs - 1, kwnames, &cb, &pri) < 0)
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
                             lx_ops[op].name, nspec, PyTuple_GET_SIZE(item));
                goto fail;
            }
            a = &PyTuple_GET_ITEM(item, 0);
        } else if (nspec != 1) {
            PyErr_Format(PyExc_TypeError, "%s needs a tuple of %zd arguments per request",
                         lx_ops[op].name, nspec);
            goto fail;
        }
        if (!(kids[made] = request_new(&RequestType, op)))
            goto fail;
        if (parse_args(kids[made], lx_ops[op].args, a) < 0) {
            made++;
            goto fail;
        }
    }
    if (!(g = (Group *)request_new(&GroupType, OP_GROUP)) || !(g->slots = PyList_New(n))
        || parse_callback(&g->req, cb) < 0)
        goto fail;
    g->batch_op = (unsigned char)op;
    for (Py_ssize_t i = 0; i < n; i++)
        PyList_SET_ITEM(g->slots, i, Py_NewRef(Py_None));
    stamp(&g->req, 0);   /* even an empty batch waits for the next drain */
    E.nreqs++;
    Py_INCREF(g);   /* the engine's reference */
    g->live_next = E.live.live_next;
    g->live_prev = &E.live;
    E.live.live_next->live_prev = g;
    E.live.live_next = g;
    for (Py_ssize_t i = 0; i < n; i++) {
        Request *r = kids[i];
        r->delivery = DELIVER_SLOT;
        r->slot = i;
        r->base.pri = (signed char)pri;
        stamp(r, 1);
        r->group = (Group *)Py_NewRef(g);
        r->gnext = g->children;
        if (g->children)
            g->children->gprev = r;
        g->children = r;
        g->nchildren++;
        g->nadded++;
        E.nreqs++;
        bases[i] = &r->base;   /* kids[i]'s reference becomes the engine's */
    }
    lx_pool_submit_many(bases, (unsigned long)n);
    group_kick(g);
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

/* ---- completion ---- */

/* What a request gets that no worker could be started for (pool.h):
 * threading's error when it cannot start a thread. */
static PyObject *no_thread_error(int err)
{
    return PyObject_CallFunction(PyExc_RuntimeError, "ss", "can't start a worker thread", strerror(err));
}

/* Hand one finished request to whoever waits.  -1 if that raised. */
static int deliver(Request *r)
{
    const lx_op *row = &lx_ops[r->op];
    PyObject *value = NULL, *cb = r->callback;
    int rc = 0, wanted = !CANCELLED(r) && (cb || r->delivery != DELIVER_CALLBACK);

    r->callback = NULL;
    set_finished(r);
    E.nreqs--;
    if (r->ran)
        E.op_ns[r->op] += (r->base.run_ns - E.op_ns[r->op]) / 8;
    if (!wanted) {
        lx_undo_effect(r);
        if (CANCELLED(r))
            engine_cancelled(r, cb);
    } else if (r->base.error)   /* never ran: no worker thread could be started */
        value = no_thread_error(r->base.error);
    else
        value = r->result < 0 ? lx_oserror((int)-r->result, r->filename, r->filename2)
                              : row->result(r);
    /* The buffer is free again before the callback, which may reuse it. */
    release_args(r);
    if (wanted)
        rc = hand_over(r, cb, value, r->result < 0 || r->base.error);
    Py_XDECREF(value);
    Py_XDECREF(cb);
    rc = leave_group(r, rc);
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
        return settle_up((Group *)Py_NewRef(g)) < 0 ? -1 : 0;
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
        /* alone in flight, so a running worker is one just done with an
         * earlier request: it spins for the next as soon as it is back */
        && lx_pool_nready() <= lx_pool_nspinning() + lx_pool_nrunning()
        && now_ns() >= E.quick_off_until) {
        lx_pool_expect(&r->base);   /* no eventfd wake-up for it */
        return 1;
    }
    return 0;
}

int lx_await_take(Request *r)
{
    int rc;
    if (r->finished)
        return 1;   /* a drain during the loop's turn got it first */
    if (!lx_pool_take_one(&r->base, QUICK_SPIN_NS)) {
        if (r->finished)
            return 1;
        E.quick_off_until = now_ns() + QUICK_BACKOFF_NS;
        return 0;
    }
    rc = handle(r);
    lx_pool_settle_signal();
    return rc < 0 ? -1 : 1;
}

/* Can anything still finish without more submissions?  Read in the order
 * requests move (ready -> running -> results) so none slips between. */
static int progress_possible(void)
{
    unsigned long ready = lx_pool_nready();
    unsigned long running = lx_pool_nrunning();
    if (lx_pool_nresults() || E.in_hand || running)
        return 1;
    if (ready)
        return lx_pool_max_threads() > 0;
    return lx_pool_in_flight();   /* one a helper is giving back (pool.h) */
}

static int check_progress(void)
{
    if (progress_possible())
        return 0;
    PyErr_Format(PyExc_RuntimeError,
                 "%zd requests outstanding but none can finish (max_parallel is %u)",
                 E.nreqs, lx_pool_max_threads());
    return -1;
}

/* Block, without the GIL, until results are ready or nothing is left.
 * Wakes up now and then to see signals and requests finished elsewhere.
 * Results in hand count as ready: a callback that waits (poll_wait, poll,
 * flush) while its poll_cb holds the rest of the batch would otherwise
 * wait for results that are never coming back to the pool. */
static int wait_results(void)
{
    while (E.nreqs > 0 && !lx_pool_nresults() && !E.in_hand) {
        int rc;
        if (check_progress() < 0)
            return -1;
        Py_BEGIN_ALLOW_THREADS
        rc = lx_pool_wait_results(100 * 1000000LL);
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
        serial = ++D.serial;
        D.draining++;
        D.submitted = 0;
    }
    drop_late();   /* abandoned by a reinit(), back since */
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
            if (!(E.hand = lx_pool_take_results(want, &E.in_hand))) {
                /* Results often follow within microseconds: rather than
                 * return to a trip through the eventfd and the poll, do a
                 * worker's job meanwhile if one cannot block, or spin for
                 * them.  A loop's drain does not help, and spins only for
                 * requests it did not submit itself: it may not hand out
                 * the results of those before the loop's next turn. */
                int64_t t;
                if (!done)
                    break;   /* none was ready: return at once */
                /* Only so long: while callbacks submit more, results (its
                 * own, when it helps) would never run out, and the caller
                 * (an event loop's reader callback) must get its turn. */
                t = now_ns();
                if (t - started > MORE_NS || (deadline && t >= deadline))
                    break;
                if (!for_loop && E.help && lx_pool_can_help()) {
                    int helped;
                    /* under max_poll_time, one at a time between looks at the clock */
                    int max = deadline ? 1 : HELP_MAX;
                    Py_BEGIN_ALLOW_THREADS
                    helped = lx_pool_help(max);
                    Py_END_ALLOW_THREADS
                    if (helped)
                        continue;
                }
                if (E.linger_ns
                    && (!for_loop || lx_pool_nready() + lx_pool_nrunning() > D.submitted)
                    && lx_pool_linger(E.linger_ns))
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
        lx_pool_return_results(E.hand, E.in_hand);
        E.hand = NULL;
        E.in_hand = 0;
    }
    lx_pool_settle_signal();
    if (for_loop)
        D.draining--;
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

/* The glue's trio waiter type (_loop.py): a callback that is a task. */
static PyObject *task_waiter_type;

/* A task still awaiting a dropped request would wait for ever: under
 * asyncio it gets CancelledError (its future is cancelled, woken through
 * its loop); under trio OSError(ECANCELED) (its waiter settles it in its
 * run's thread).  Harmless when the task itself cancelled: a cancelled
 * future stays so, an aborted trio waiter ignores it. */
static void tell_awaiter(Request *r, PyObject *cb)
{
    if (r->loop) {
        if (!lx_future_done(r) && lx_future_cancel(r, NULL) < 0)
            PyErr_Clear();   /* its loop is closed: nobody awaits any more */
    } else if (cb && (PyObject *)Py_TYPE(cb) == task_waiter_type) {
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
static void engine_cancelled(Request *r, PyObject *cb)
{
    Group *g = r->group;
    if (r->delivery != DELIVER_SLOT)
        tell_awaiter(r, cb);
    else if (!g->req.base.cancelled) {   /* its batch cannot be whole */
        if (g->req.loop) {
            if (lx_future_cancel(&g->req, NULL) < 0)
                PyErr_Clear();
        } else
            lx_request_cancel(&g->req);   /* its waiter is told as it finishes */
    }
}

static PyObject *set_task_waiter(PyObject *m, PyObject *type)
{
    Py_XSETREF(task_waiter_type, Py_NewRef(type));
    Py_RETURN_NONE;
}

/* Nobody will get its result: it is no longer outstanding.  Counted out
 * of nreqs here, once, so that requests other threads submit meanwhile
 * (reinit lets go of the GIL) stay counted. */
static void forget(Request *r)
{
    if (r->finished)
        return;
    set_finished(r);
    E.nreqs--;
    tell_awaiter(r, r->callback);
    Py_CLEAR(r->callback);
    if (r->group) {
        Group *g = r->group;
        if (r->gprev) r->gprev->gnext = r->gnext; else g->children = r->gnext;
        if (r->gnext) r->gnext->gprev = r->gprev;
        r->gnext = r->gprev = NULL;
        r->group = NULL;
        g->nchildren--;
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
    release_args(r);
    Py_DECREF(r);   /* the engine's reference */
}

/* In the thread that finished an abandoned request (pool.h): no GIL. */
static void undo_abandoned(lx_req *base)
{
    lx_undo_effect(REQ_OF(base));
}

static void drop_late(void)
{
    lx_req *list = lx_pool_take_late();
    while (list) {
        lx_req *next = list->next;
        drop(REQ_OF(list));
        list = next;
    }
}

static void drop_all(lx_req *list)
{
    lx_req *hand = E.hand;
    E.hand = NULL;
    while (hand) {   /* taken by a poll_cb that a callback of it interrupted */
        lx_req *next = hand->next;
        drop(REQ_OF(hand));
        hand = next;
    }
    while (list) {
        lx_req *next = list->next;
        drop(REQ_OF(list));
        list = next;
    }
    while (E.live.live_next != &E.live) {
        Group *g = E.live.live_next;
        live_unlink(g);
        if (!g->req.finished) {
            set_finished(&g->req);
            E.nreqs--;
        }
        undo_slots(g);
        tell_awaiter(&g->req, g->req.callback);
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
    lx_req **stuck;
    long nstuck;
    Py_BEGIN_ALLOW_THREADS
    lx_pool_stop(REINIT_GRACE_NS);
    /* Still running (an empty pipe, a hung NFS server): abandoned, so that
     * reinit() returns and fresh workers start.  Without memory for that,
     * wait as before. */
    while (!(stuck = lx_pool_abandon(&nstuck)) && nstuck < 0)
        lx_pool_stop(REINIT_GRACE_NS);
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
    drop_all(lx_pool_take_results(0, &n));
    drop_late();
    Py_RETURN_NONE;
}


static PyObject *loop_fileno(PyObject *m, PyObject *unused) { return PyLong_FromLong(loop_fd); }

static PyObject *after_fork(PyObject *m, PyObject *unused)
{
    /* the child's eventfd is new: the duplicate must follow it */
    if (dup3(lx_pool_fileno(), loop_fd, O_CLOEXEC) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    drop_all(lx_pool_orphans());
    E.nreqs = 0;   /* the parent's requests are nowhere here */
    Py_RETURN_NONE;
}

static PyObject *at_exit(PyObject *m, PyObject *timeout)
{
    double t = PyFloat_AsDouble(timeout);
    unsigned left;
    if (t == -1.0 && PyErr_Occurred())
        return NULL;
    /* EXIT_GRACE is the user's: out of range, or NaN, it must not make an
     * undefined int64_t.  Past 1e9 s is for ever anyway. */
    if (!(t >= 0))
        t = 0;
    else if (t > 1e9)
        t = 1e9;
    lx_pool_set_max_threads(0);
    Py_BEGIN_ALLOW_THREADS
    left = lx_pool_stop((int64_t)(t * 1e9));
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLong(left);
}

/* ---- counters and knobs ---- */

static PyObject *poll_fileno(PyObject *m, PyObject *u) { return PyLong_FromLong(lx_pool_fileno()); }
static PyObject *nreqs(PyObject *m, PyObject *u) { return PyLong_FromSsize_t(E.nreqs); }
static PyObject *nready(PyObject *m, PyObject *u) { return PyLong_FromUnsignedLong(lx_pool_nready()); }
static PyObject *npending(PyObject *m, PyObject *u)
{
    return PyLong_FromUnsignedLong(lx_pool_nresults() + E.in_hand);
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
THREAD_COUNT_KNOB(min_parallel, lx_pool_min_threads)
THREAD_COUNT_KNOB(max_parallel, lx_pool_set_max_threads)
THREAD_COUNT_KNOB(max_idle, lx_pool_set_max_idle)

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
    E.help = on;
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

#define NOARGS(name, doc) {#name, (PyCFunction)name, METH_NOARGS, doc}
#define ONEARG(name, doc) {#name, (PyCFunction)name, METH_O, doc}

static PyMethodDef control_methods[] = {
    NOARGS(poll_fileno, "poll_fileno()\n--\n\nThe eventfd that is readable while results wait for poll_cb()."),
    NOARGS(poll_cb, "poll_cb()\n--\n\nRun the callbacks of finished requests; return how many finished."),
    NOARGS(poll_wait, "poll_wait()\n--\n\nWait until some request has finished (returns at once if none is outstanding)."),
    NOARGS(poll, "poll()\n--\n\npoll_wait() then poll_cb()."),
    NOARGS(flush, "flush()\n--\n\nWait for and handle every outstanding request."),
    NOARGS(nreqs, "nreqs()\n--\n\nRequests submitted and not yet finished."),
    NOARGS(nready, "nready()\n--\n\nRequests queued and not yet started."),
    NOARGS(npending, "npending()\n--\n\nRequests executed and waiting for poll_cb()."),
    NOARGS(nthreads, "nthreads()\n--\n\nWorker threads running now."),
    NOARGS(reinit, "reinit()\n--\n\nAbandon every request (no callbacks run) and start afresh."),
    ONEARG(min_parallel, "min_parallel(n)\n--\n\nRaise the thread limit to at least n."),
    ONEARG(max_parallel, "max_parallel(n)\n--\n\nLower the thread limit to at most n, stopping extra threads."),
    ONEARG(max_idle, "max_idle(n)\n--\n\nIdle threads beyond n exit after idle_timeout seconds."),
    ONEARG(idle_timeout, "idle_timeout(seconds)\n--\n\nHow long an idle thread beyond max_idle waits before it exits."),
    ONEARG(max_poll_reqs, "max_poll_reqs(n)\n--\n\npoll_cb() handles at most n requests per call (0: no limit)."),
    ONEARG(max_poll_time, "max_poll_time(seconds)\n--\n\npoll_cb() returns after about that long (0: no limit)."),
    ONEARG(poll_helps, "poll_helps(flag)\n--\n\nWhether poll_cb() runs page-cache reads itself while the workers are busy (default True)."),
    ONEARG(max_outstanding, "max_outstanding(n)\n--\n\npoll_cb() blocks while nreqs() >= n (0: off)."),
    {"aio_group", (PyCFunction)(void (*)(void))aio_group, METH_FASTCALL | METH_KEYWORDS,
     "aio_group(callback=None, *, pri=0)\n--\n\nA group; its callback gets result() once every child finished."},
    {"submit_many", (PyCFunction)(void (*)(void))submit_many, METH_FASTCALL | METH_KEYWORDS,
     "submit_many(name, argument_tuples, callback=None, *, pri=0)\n--\n\n"
     "Queue one request of operation `name` per tuple of arguments, in one call; the\n"
     "returned group's callback gets the list of results in order (an OSError in the\n"
     "place of each that failed)."},
    {"_drain", (PyCFunction)(void (*)(void))drain, METH_FASTCALL,
     "poll_cb() for an event loop: only the results ready now, no waiting."},
    {"_after_fork", (PyCFunction)after_fork, METH_NOARGS, NULL},
    {"_loop_fileno", (PyCFunction)loop_fileno, METH_NOARGS,
     "The descriptor the loop glue watches: poll_fileno()'s eventfd under another number."},
    {"_run", (PyCFunction)(void (*)(void))lx_loop_run, METH_FASTCALL,
     "_run(submit, *args)\n--\n\nsubmit(*args, loop) under a running asyncio loop; else the hook's choice."},
    {"_set_loop_hooks", (PyCFunction)(void (*)(void))lx_set_loop_hooks, METH_FASTCALL, NULL},
    {"_set_task_waiter", (PyCFunction)set_task_waiter, METH_O, NULL},
    {"_at_exit", (PyCFunction)at_exit, METH_O, NULL},
    {"_set_spin", (PyCFunction)set_spin, METH_VARARGS, NULL},
    {NULL}};

static struct PyModuleDef engine_module = {
    PyModuleDef_HEAD_INIT, "linuxaio._engine",
    "The linuxaio engine: worker threads, request queues, completion on one eventfd.",
    -1, control_methods,
};

/* One PyMethodDef per table row, alive as long as the process. */
static PyMethodDef *row_methods;

PyMODINIT_FUNC PyInit__engine(void)
{
    PyObject *m;
    if (row_methods) {
        PyErr_SetString(PyExc_ImportError, "linuxaio._engine cannot be loaded twice");
        return NULL;
    }
    if (PyType_Ready(&RequestType) < 0 || lx_future_add_to_type(&RequestType) < 0
        || PyType_Ready(&GroupType) < 0 || lx_ops_init() < 0)
        return NULL;
    if (lx_pool_init(run_request, try_request) < 0
        || (loop_fd = fcntl(lx_pool_fileno(), F_DUPFD_CLOEXEC, 0)) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    lx_pool_on_abandoned(undo_abandoned);
    engine_fd = lx_pool_fileno();
    E.live.live_next = E.live.live_prev = &E.live;
    E.linger_ns = 20 * 1000;
    E.help = kernel_at_least(5, 9);
    if (!(m = PyModule_Create(&engine_module)))
        return NULL;
    row_methods = PyMem_Calloc(lx_nops, sizeof *row_methods);
    if (!row_methods)
        return PyErr_NoMemory();
    for (int i = 0; i < lx_nops; i++) {
        PyObject *self = PyLong_FromLong(i), *fn;
        row_methods[i] = (PyMethodDef){lx_ops[i].name, (PyCFunction)(void (*)(void))submit,
                                       METH_FASTCALL | METH_KEYWORDS, lx_ops[i].doc};
        fn = self ? PyCFunction_NewEx(&row_methods[i], self, PyModule_GetNameObject(m)) : NULL;
        Py_XDECREF(self);
        if (!fn || PyModule_AddObject(m, lx_ops[i].name, fn) < 0) {
            Py_XDECREF(fn);
            Py_DECREF(m);
            return NULL;
        }
    }
    if (PyModule_AddObjectRef(m, "Request", (PyObject *)&RequestType) < 0
        || PyModule_AddObjectRef(m, "Group", (PyObject *)&GroupType) < 0
        || PyModule_AddIntConstant(m, "PRI_MIN", LX_PRI_MIN) < 0
        || PyModule_AddIntConstant(m, "PRI_MAX", LX_PRI_MAX) < 0
        || PyModule_AddIntConstant(m, "AT_SYMLINK_NOFOLLOW", AT_SYMLINK_NOFOLLOW) < 0
        || PyModule_AddIntConstant(m, "AT_REMOVEDIR", AT_REMOVEDIR) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
