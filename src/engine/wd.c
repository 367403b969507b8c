/* wd.c: working-directory handles (IO::AIO's aio_wd).
 *
 * A WorkingDir is an open directory (O_PATH | O_DIRECTORY: search
 * permission is all it needs) that any path argument may be relative to,
 * given as (wd, relpath): args.c sets the request's dir fd for the *at()
 * calls and holds the handle.  It names the directory itself, not its
 * path, so a rename of the directory (or of any parent) does not disturb
 * requests made through it.
 *
 * Lifetime: close() only marks the handle closed (no new request may use
 * it, fileno() refuses); the fd itself is closed when the last request in
 * flight that uses it is released.  Everything here runs with the GIL, at
 * submission and at delivery, so a plain counter of users is enough: a
 * worker only ever sees the number, which stays open while it runs. */
#define _GNU_SOURCE
#include "ops_run.h"

#include <fcntl.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    int fd;                /* -1 once really closed */
    int closed;            /* close() was called: refused for new requests */
    Py_ssize_t users;      /* requests in flight holding it */
    PyObject *path;        /* what it was opened as (str or bytes) */
} WorkingDir;

static void really_close(WorkingDir *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
}

int lx_wd_acquire(PyObject *o, int *fd)
{
    WorkingDir *w = (WorkingDir *)o;
    if (!PyObject_TypeCheck(o, &lx_WorkingDirType)) {
        PyErr_Format(PyExc_TypeError, "a (wd, relpath) path needs a linuxaio.WorkingDir, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    if (w->closed || w->fd < 0) {
        PyErr_SetString(PyExc_ValueError, "the WorkingDir is closed");
        return -1;
    }
    w->users++;
    Py_INCREF(o);
    *fd = w->fd;
    return 0;
}

void lx_wd_release(PyObject *o)
{
    WorkingDir *w = (WorkingDir *)o;
    if (--w->users == 0 && w->closed)
        really_close(w);
    Py_DECREF(o);
}

static void wd_dealloc(WorkingDir *w)
{
    really_close(w);   /* no user left: each held a reference */
    Py_XDECREF(w->path);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyObject *wd_fileno(WorkingDir *w, PyObject *unused)
{
    if (w->closed) {
        PyErr_SetString(PyExc_ValueError, "the WorkingDir is closed");
        return NULL;
    }
    return PyLong_FromLong(w->fd);
}

static PyObject *wd_close(WorkingDir *w, PyObject *unused)
{
    w->closed = 1;
    if (w->users == 0)
        really_close(w);
    Py_RETURN_NONE;
}

static PyObject *wd_enter(WorkingDir *w, PyObject *unused) { return Py_NewRef(w); }

static PyObject *wd_exit(WorkingDir *w, PyObject *args) { return wd_close(w, NULL); }

static PyObject *wd_get_closed(WorkingDir *w, void *c) { return PyBool_FromLong(w->closed); }

static PyObject *wd_get_path(WorkingDir *w, void *c) { return Py_NewRef(w->path); }

static PyObject *wd_repr(WorkingDir *w)
{
    if (w->closed)
        return PyUnicode_FromFormat("<linuxaio.WorkingDir %R closed>", w->path);
    return PyUnicode_FromFormat("<linuxaio.WorkingDir %R fd=%d>", w->path, w->fd);
}

static PyMethodDef wd_methods[] = {
    {"fileno", (PyCFunction)wd_fileno, METH_NOARGS,
     "fileno()\n--\n\nThe directory's fd (O_PATH): ValueError once closed."},
    {"close", (PyCFunction)wd_close, METH_NOARGS,
     "close()\n--\n\nNo new request may use the handle; its fd closes when the requests\n"
     "still using it have finished."},
    {"__enter__", (PyCFunction)wd_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)wd_exit, METH_VARARGS, NULL},
    {NULL}};

static PyGetSetDef wd_getset[] = {
    {"path", (getter)wd_get_path, NULL, "The path it was opened as (relative ones joined to their wd's).", NULL},
    {"closed", (getter)wd_get_closed, NULL, "True once close() was called.", NULL},
    {NULL}};

PyTypeObject lx_WorkingDirType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "linuxaio.WorkingDir",
    .tp_basicsize = sizeof(WorkingDir),
    .tp_dealloc = (destructor)wd_dealloc,
    .tp_repr = (reprfunc)wd_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An open directory that paths given as (wd, relpath) are resolved against\n"
              "(aio_wd, linuxaio.os.wd).  A context manager; close() lets requests in\n"
              "flight finish with it.",
    .tp_methods = wd_methods,
    .tp_getset = wd_getset,
};

/* ---- the aio_wd row ---- */

void run_wd(Request *r)
{
    SYSCALL_RESULT(r, openat(r->dir_fd, path_of(r->path), O_PATH | O_DIRECTORY | O_CLOEXEC));
}

/* The handle's path: what was given, joined to its own wd's path when
 * relative to one (with os.path.join; a str and bytes mix stays as given). */
static PyObject *handle_path(Request *r)
{
    PyObject *parent = r->rare ? r->rare->wd[0] : NULL, *joined, *posixpath;
    if (!parent)
        return Py_NewRef(r->filename);
    posixpath = PyImport_ImportModule("posixpath");
    joined = posixpath ? PyObject_CallMethod(posixpath, "join", "OO", ((WorkingDir *)parent)->path,
                                             r->filename) : NULL;
    Py_XDECREF(posixpath);
    if (!joined) {
        PyErr_Clear();
        return Py_NewRef(r->filename);
    }
    return joined;
}

PyObject *lx_result_wd(Request *r)
{
    WorkingDir *w = PyObject_New(WorkingDir, &lx_WorkingDirType);
    if (!w) {
        close((int)r->result);
        return NULL;
    }
    w->fd = (int)r->result;
    w->closed = 0;
    w->users = 0;
    w->path = handle_path(r);
    return (PyObject *)w;
}
