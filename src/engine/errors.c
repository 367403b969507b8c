/* errors.c: one place turns errno into the right OSError subclass. */
#include "engine.h"

#include <string.h>

PyObject *lx_oserror(int err, PyObject *filename, PyObject *filename2)
{
    /* OSError(errno, strerror, filename, winerror, filename2) picks the
     * subclass (FileNotFoundError...) from errno itself. */
    PyObject *args = Py_BuildValue("(isOOO)", err, strerror(err),
                                   filename ? filename : Py_None, Py_None,
                                   filename2 ? filename2 : Py_None);
    PyObject *exc;
    if (!args)
        return NULL;
    if (!filename2) {   /* fewer, so args, repr and str read as os's own */
        PyObject *fewer = PyTuple_GetSlice(args, 0, filename ? 3 : 2);
        Py_DECREF(args);
        if (!(args = fewer))
            return NULL;
    }
    exc = PyObject_Call(PyExc_OSError, args, NULL);
    Py_DECREF(args);
    return exc;
}

/* What a request gets that no worker could be started for (pool.h):
 * threading's error when it cannot start a thread. */
PyObject *lx_no_thread_error(int err)
{
    return PyObject_CallFunction(PyExc_RuntimeError, "ss", "can't start a worker thread", strerror(err));
}

