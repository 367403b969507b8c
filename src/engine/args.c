/* args.c: argument parsing, driven by a row's letters (ops.h): fds, paths,
 * integers, times, and the caller's buffers, held for the request's life. */
#define _GNU_SOURCE
#include "ops.h"
#include "future.h"
#include "backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The engine's own eventfd (poll_fileno()) is no fd for a request: closed,
 * the engine would write its counter into whatever file gets the number
 * next; read, it would lose wake-ups.  Given as an fd (any letter), it
 * becomes -1, which every syscall refuses with EBADF, as a closed fd. */
int lx_engine_fd = -1;

/* What the loop glue watches: a duplicate of poll_fileno(), the same
 * eventfd and so ready at the same times, under a number of its own.  A
 * program that watches poll_fileno() itself (add_reader, then remove_reader)
 * then leaves the glue's watch alone: loops key readers by number. */
int lx_loop_fd = -1;   /* refused as an fd, like lx_engine_fd */

static inline int usable_fd(int fd)
{
    return fd == lx_engine_fd || fd == lx_loop_fd ? -1 : fd;
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

PyObject *lx_path_type;

/* os.fspath(o).  A linuxaio.Path (that class exactly: a subclass may
 * override __fspath__ or __str__) keeps its string in pathlib's _str once
 * made, which os.fspath returns (str() caches it there): read without the
 * two Python calls, ~0.3 us of a cached stat's await. */
static PyObject *fspath(PyObject *o)
{
    static PyObject *name;
    if (lx_path_type && (PyObject *)Py_TYPE(o) == lx_path_type
        && (name || (name = PyUnicode_InternFromString("_str")))) {
        PyObject *s = PyObject_GetAttr(o, name);
        if (s && PyUnicode_CheckExact(s))
            return s;
        Py_XDECREF(s);
        PyErr_Clear();   /* not made yet: os.fspath makes it */
    }
    return PyOS_FSPath(o);
}

/* Every path argument comes here: the first (p, x) or the second (P) of a
 * request.  Each path has its own dir fd (dir_fd, dir_fd2: the letters D
 * and E), which a working-directory handle given as (wd, relpath) sets,
 * here and nowhere else: every row's run uses the *at() calls (or, where
 * Linux has none, resolves through the dir fd: ops_paths.c's at_path), so
 * every path of every row takes one.  The request holds the handle until
 * it is released (request.c), which keeps its fd open even if the handle
 * is closed meanwhile (wd.c). */
static int parse_path(Request *r, PyObject *o, int second)
{
    PyObject **bytes = second ? &r->path2 : &r->path;
    PyObject **given = second ? &r->filename2 : &r->filename;
    if (PyTuple_Check(o)) {
        lx_rare *x;
        int fd;
        if (PyTuple_GET_SIZE(o) != 2) {
            PyErr_Format(PyExc_ValueError, "a path tuple must be (wd, relpath), not %zd items",
                         PyTuple_GET_SIZE(o));
            return -1;
        }
        if (PyTuple_Check(PyTuple_GET_ITEM(o, 1))) {
            PyErr_SetString(PyExc_TypeError, "relpath of (wd, relpath) must be str, bytes or os.PathLike");
            return -1;
        }
        if (!(x = lx_request_rare(r)) || lx_wd_acquire(PyTuple_GET_ITEM(o, 0), &fd) < 0)
            return -1;
        x->wd[second] = PyTuple_GET_ITEM(o, 0);   /* held: released with the args */
        *(second ? &r->dir_fd2 : &r->dir_fd) = fd;
        o = PyTuple_GET_ITEM(o, 1);
    }
    if (o == Py_None) {
        PyErr_SetString(PyExc_TypeError, "path must be str, bytes or os.PathLike, not None");
        return -1;
    }
    /* OSError.filename: os.fspath() of the argument, as os reports it;
     * taken once (a PathLike's __fspath__ is Python code). */
    if (!(*given = fspath(o)))
        return -1;
    if (!PyUnicode_FSConverter(*given, bytes)) {   /* ValueError on an embedded NUL */
        Py_CLEAR(*given);
        return -1;
    }
    return 0;
}

/* X: an extended attribute's name (str or bytes, no NUL), kept in path2,
 * which no xattr row uses for a path; not an OSError's filename. */
static int parse_xattr_name(Request *r, PyObject *o)
{
    if (!PyUnicode_Check(o) && !PyBytes_Check(o)) {
        PyErr_Format(PyExc_TypeError, "attribute must be str or bytes, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    return PyUnicode_FSConverter(o, &r->path2) ? 0 : -1;
}

/* g: a user or group id for chown; None or -1 keeps it ((uid_t)-1). */
static int parse_id(PyObject *o, unsigned *id)
{
    long long v;
    if (o == Py_None) {
        *id = (unsigned)-1;
        return 0;
    }
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "uid and gid must be int or None, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < -1 || v >= (long long)(unsigned)-1) {
        PyErr_SetString(PyExc_OverflowError, "uid or gid out of range");
        return -1;
    }
    *id = (unsigned)v;
    return 0;
}

/* e: a device number (dev_t: 64 bits, unsigned), as os.makedev makes. */
static int parse_device(PyObject *o, dev_t *dev)
{
    unsigned long long v;
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "device must be an int, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    v = PyLong_AsUnsignedLongLong(o);   /* OverflowError when negative or too big */
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *dev = (dev_t)v;
    return 0;
}

/* D, E: a path's dir fd, or None for the cwd (AT_FDCWD, as preset). */
static int parse_dir_fd(PyObject *o, int *dir_fd)
{
    if (o != Py_None && parse_fd(o, 0, dir_fd) < 0)
        return -1;
    *dir_fd = usable_fd(*dir_fd);
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

/* What a weak reference points to, for a comparison only (NULL once it
 * died).  3.13 deprecates PyWeakref_GetObject's borrowed reference. */
static PyObject *weak_target(PyObject *ref)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *o;
    if (PyWeakref_GetRef(ref, &o) <= 0)
        return NULL;
    Py_DECREF(o);   /* alive through other references: only compared */
    return o;
#else
    PyObject *o = PyWeakref_GetObject(ref);
    return o == Py_None ? NULL : o;
#endif
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
        if (map_cache[j].ref && weak_target(map_cache[j].ref) == obj
            && addr >= map_cache[j].lo && addr < map_cache[j].hi)
            return map_cache[j].anon;
    }
    if (!lookup_allowed())
        return 0;
    anon = mapping_is_anonymous(addr, &lo, &hi);
    for (unsigned i = 0; i < MAP_PROBES; i++) {   /* a free slot, or one whose buffer died */
        unsigned j = (k + i) % MAP_CACHE;
        if (!map_cache[j].ref || !weak_target(map_cache[j].ref)) {
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

int lx_parse_args(Request *r, const char *spec, PyObject *const *args)
{
    int nu = 0, ng = 0;
    PyObject *buffer = NULL;
    int writable = 0, memory = 0;
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
            if (!PyUnicode_Check(o) && !PyBytes_Check(o) && !PyTuple_Check(o)
                && (PyObject *)Py_TYPE(o) != lx_path_type
                && (PyLong_Check(o) || !PyObject_HasAttrString(o, "__fspath__"))) {
                if (parse_fd(o, 0, &r->fd) < 0 || !(r->filename = PyLong_FromLong(r->fd)))
                    return -1;
                r->fd = usable_fd(r->fd);
            } else if (parse_path(r, o, 0) < 0)
                return -1;
            break;
        case 'D':
        case 'E':
            if (o != Py_None && r->rare && r->rare->wd[spec[i] == 'E']) {
                PyErr_SetString(PyExc_ValueError, "a (wd, relpath) path takes no dir_fd");
                return -1;
            }
            if (parse_dir_fd(o, spec[i] == 'D' ? &r->dir_fd : &r->dir_fd2) < 0)
                return -1;
            break;
        case 'g':   /* chown: uid, then gid */
            if (parse_id(o, ng++ ? &r->io.owner.gid : &r->io.owner.uid) < 0)
                return -1;
            break;
        case 'M':
            if (parse_int64(o, "mode", 0, &v) < 0)
                return -1;
            if (v > 0177777) {
                PyErr_SetString(PyExc_ValueError, "mode must be within 0..0o177777");
                return -1;
            }
            r->mode = (unsigned)v;
            break;
        case 'e':
            if (parse_device(o, &r->io.dev) < 0)
                return -1;
            break;
        case 'X':
            if (parse_xattr_name(r, o) < 0)
                return -1;
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
            if (parse_path(r, o, 0) < 0)
                return -1;
            break;
        case 'P':
            if (parse_path(r, o, 1) < 0)
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
        case 'l':
            if (!PyLong_Check(o) && !PyIndex_Check(o)) {
                PyErr_Format(PyExc_TypeError, "an integer is required, not %.100s", Py_TYPE(o)->tp_name);
                return -1;
            }
            if ((r->offset = PyLong_AsLongLong(o)) == -1 && PyErr_Occurred())
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
            buffer = o;   /* for the test of the memory below */
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
        case 'G':
        case 'K':
            if ((spec[i] == 'G' ? parse_fd(o, 0, &r->io.x.fd2) : parse_os_fd(o, &r->io.x.fd2)) < 0)
                return -1;
            r->io.x.fd2 = usable_fd(r->io.x.fd2);
            break;
        case 'j':
            if (parse_int64(o, "offset", 0, &r->offset) < 0)
                return -1;
            break;
        case 'q':
            if (parse_int64(o, "offset", 1, &r->io.x.offset2) < 0)
                return -1;
            break;
        case 'h':
        case 'H': {
            /* a negative one goes to the syscall, whose error os reports */
            int64_t *off = spec[i] == 'h' ? &r->offset : &r->io.x.offset2;
            if (o == Py_None)
                *off = LX_AT_POS;
            else if (!PyLong_Check(o) && !PyIndex_Check(o)) {
                PyErr_Format(PyExc_TypeError, "an integer is required, not %.100s", Py_TYPE(o)->tp_name);
                return -1;
            } else if ((*off = PyLong_AsLongLong(o)) == -1 && PyErr_Occurred())
                return -1;
            else if (*off == LX_AT_POS) {
                PyErr_SetString(PyExc_OverflowError, "offset out of range");
                return -1;
            }
            break;
        }
        case 'S':
            if (parse_os_count(o, &r->length) < 0)
                return -1;
            break;
        case 'c':
            if (parse_int64(o, "count", 1, &r->io.x.count) < 0)
                return -1;
            break;
        case 'R':
            if (lx_parse_command(o, &r->io.x.cmd) < 0)
                return -1;
            break;
        case 'a':
            if (lx_parse_ctl_arg(r, o) < 0)
                return -1;
            break;
        case 'B':
            if (PyObject_GetBuffer(o, &r->view, PyBUF_WRITABLE) < 0) {
                /* read-only memory (bytes, an ACCESS_READ mmap) serves all
                 * but a modifying mtouch (lx_memory_range checks it) */
                PyErr_Clear();
                if (PyObject_GetBuffer(o, &r->view, PyBUF_SIMPLE) < 0) {
                    if (PyErr_ExceptionMatches(PyExc_BufferError)) {
                        PyErr_Clear();
                        PyErr_Format(PyExc_TypeError, "buffer must be a contiguous buffer, not %.100s",
                                     Py_TYPE(o)->tp_name);
                    }
                    return -1;
                }
            }
            r->has_view = 1;
            memory = 1;
            break;
        case 'y':
            if (!PyByteArray_Check(o)) {
                PyErr_Format(PyExc_TypeError, "data must be a bytearray, not %.100s", Py_TYPE(o)->tp_name);
                return -1;
            }
            Py_XSETREF(r->value, Py_NewRef(o));
            break;
        default:   /* lx_ops_init() refused it at import */
            PyErr_Format(PyExc_SystemError, "unknown argument letter '%c'", spec[i]);
            return -1;
        }
    }
    if (memory && lx_memory_range(r) < 0)
        return -1;
    /* Worth a poller's try (the backend's policy: workers.c): only into
     * memory that is not a file mapping, whose copy could wait for a disk. */
    if (lx_workers_may_try(r)) {
        if (!r->memory_only && buffer)
            r->memory_only = memory_only_buffer(buffer, r->data);
        r->base.tryable = r->memory_only;
    } else if (lx_ops[r->op].try_now && buffer && r->offset >= 0 && r->length <= 64 * 1024)
        r->memory_only = memory_only_buffer(buffer, r->data);   /* an inline try's test too */
    return 0;
}

/* A callable, None, or an asyncio loop: then the request is a future that
 * the awaiting task waits on (future.c). */
int lx_parse_callback(Request *r, PyObject *cb)
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
int lx_parse_common(const char *name, Py_ssize_t nspec, PyObject *const *args, Py_ssize_t nargs,
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

