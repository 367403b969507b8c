/* args_ctl.c: the argument letters of the fd-control and memory requests
 * (ops.h): R (an fcntl command or ioctl request), a (fcntl/ioctl's
 * argument), and the range inside M's buffer; args.c's parser calls them. */
#define _GNU_SOURCE
#include "ops.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* R: fcntl's command (a C int) or ioctl's request (an unsigned int in
 * fcntl.ioctl; its negative spelling is accepted, as there). */
int lx_parse_command(PyObject *o, unsigned *out)
{
    int overflow;
    long v;
    if (!PyLong_Check(o) && !PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "request must be an int, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    v = PyLong_AsLongAndOverflow(o, &overflow);
    if ((v == -1 && PyErr_Occurred()) || overflow || v < INT_MIN || v > (long)UINT_MAX) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_OverflowError, "request out of range for a C unsigned int");
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* a: fcntl/ioctl's argument, as the fcntl module takes it.  An int is
 * passed as is; bytes, str or a read-only buffer is copied (at most
 * LX_ARG_MAX bytes) into a zeroed LX_ARG_MAX-byte block the kernel may
 * write to, and the result is the copy out; a writable buffer is held and
 * filled in place (through such a block when it is that small, so that a
 * command writing more than the caller gave cannot overrun it). */
int lx_parse_ctl_arg(Request *r, PyObject *o)
{
    Py_buffer view;
    if (PyLong_Check(o) || (!PyObject_CheckBuffer(o) && !PyUnicode_Check(o) && PyIndex_Check(o))) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (overflow > 0) {   /* an unsigned long's upper half, as a pointer-sized argument */
            unsigned long long u = PyLong_AsUnsignedLongLong(o);
            if (u == (unsigned long long)-1 && PyErr_Occurred())
                return -1;
            v = (long long)u;
        } else if (overflow) {
            PyErr_SetString(PyExc_OverflowError, "arg out of range");
            return -1;
        }
        r->io.x.arg = v;
        r->io.x.argkind = LX_ARG_INT;
        return 0;
    }
    if (PyUnicode_Check(o)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s)
            return -1;
        view.buf = (void *)s;
        view.len = n;
        view.obj = NULL;
    } else if (PyObject_GetBuffer(o, &r->view, PyBUF_WRITABLE) == 0) {
        r->has_view = 1;
        r->data = r->view.buf;
        r->length = r->view.len;
        r->io.x.argkind = LX_ARG_INPLACE;
        return 0;
    } else {
        PyErr_Clear();
        if (PyObject_GetBuffer(o, &view, PyBUF_SIMPLE) < 0) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "arg must be an int or a bytes-like object, not %.100s",
                         Py_TYPE(o)->tp_name);
            return -1;
        }
    }
    if (view.len > LX_ARG_MAX) {
        if (view.obj)
            PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "arg too long (at most 1024 bytes)");
        return -1;
    }
    if (!(r->heap = calloc(1, LX_ARG_MAX))) {
        if (view.obj)
            PyBuffer_Release(&view);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(r->heap, view.buf, (size_t)view.len);
    r->length = view.len;
    r->io.x.argkind = LX_ARG_COPY;
    if (view.obj)
        PyBuffer_Release(&view);
    return 0;
}

/* M's range: the o and L letters that followed it, checked against the
 * buffer (ValueError when outside it, as IO::AIO's croak). */
int lx_memory_range(Request *r)
{
    int64_t off = r->offset < 0 ? 0 : r->offset, len;
    if (off > r->view.len) {
        PyErr_Format(PyExc_ValueError, "offset (%lld) is beyond the buffer's size (%zd)",
                     (long long)off, r->view.len);
        return -1;
    }
    len = r->length < 0 ? r->view.len - off : r->length;
    if (len > r->view.len - off) {
        PyErr_Format(PyExc_ValueError, "offset + length (%lld) exceeds the buffer's size (%zd)",
                     (long long)(off + len), r->view.len);
        return -1;
    }
    if (r->op == LX_OP_mtouch && (r->flags & LX_MT_MODIFY) && r->view.readonly) {
        PyErr_SetString(PyExc_TypeError, "mtouch with MT_MODIFY needs a writable buffer");
        return -1;
    }
    r->offset = off;
    r->data = (char *)r->view.buf + off;
    r->length = len;
    return 0;
}
