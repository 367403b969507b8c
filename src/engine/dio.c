/* dio.c: O_DIRECT that a Python user can get right.
 *
 * The alignment a file's direct I/O needs (dio_alignment()), and the one
 * place that explains an EINVAL from direct I/O: whichever backend ran the
 * request (a worker or the ring), its failure becomes an OSError in
 * lx_request_error(), on the GIL's side of the result path.  Only a failed
 * request pays for the diagnosis (an fcntl and a statx). */
#define _GNU_SOURCE
#include "ops.h"
#include "dio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Linux 6.1's uapi has these; older build machines' headers may not. */
#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

/* When neither the file system nor the device says: a page, which every
 * device's logical block size divides. */
#define DIO_FALLBACK 4096

/* The logical block size of the device that holds dev (major:minor), from
 * sysfs: a whole disk has queue/ itself, a partition's is its parent's. */
static unsigned sysfs_block_size(unsigned maj, unsigned min)
{
    static const char *const where[] = {"queue", "../queue"};
    for (int i = 0; i < 2; i++) {
        char path[96];
        unsigned v = 0;
        FILE *f;
        snprintf(path, sizeof path, "/sys/dev/block/%u:%u/%s/logical_block_size", maj, min, where[i]);
        if (!(f = fopen(path, "re")))
            continue;
        if (fscanf(f, "%u", &v) != 1)
            v = 0;
        fclose(f);
        if (v)
            return v;
    }
    return 0;
}

int lx_dio_alignment(int dirfd, const char *path, lx_dio_align *out)
{
    struct statx sx;
    int flags = path && *path ? 0 : AT_EMPTY_PATH;
    memset(out, 0, sizeof *out);
    if (statx(dirfd, path && *path ? path : "", flags, STATX_DIOALIGN | STATX_TYPE, &sx) < 0)
        return -1;
    if ((sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align) {
        out->mem = sx.stx_dio_mem_align;
        out->offset = sx.stx_dio_offset_align;
        out->source = LX_DIO_STATX;
        return 0;
    }
    if ((sx.stx_mask & STATX_DIOALIGN) && S_ISREG(sx.stx_mode))
        out->unsupported = 1;   /* the file system said: no direct I/O here */
    if (S_ISBLK(sx.stx_mode) && !path) {
        int size = 0;
        if (ioctl(dirfd, BLKSSZGET, &size) == 0 && size > 0)
            out->mem = out->offset = (unsigned)size;
    }
    if (!out->offset) {
        unsigned maj = S_ISBLK(sx.stx_mode) ? sx.stx_rdev_major : sx.stx_dev_major;
        unsigned min = S_ISBLK(sx.stx_mode) ? sx.stx_rdev_minor : sx.stx_dev_minor;
        out->mem = out->offset = sysfs_block_size(maj, min);
    }
    if (out->offset)
        out->source = LX_DIO_DEVICE;
    else {
        out->mem = out->offset = DIO_FALLBACK;
        out->source = LX_DIO_DEFAULT;
    }
    return 0;
}

/* ---- the diagnosis of a failed request ---- */

static PyObject *einval(Request *r, const char *msg)
{
    PyObject *args = Py_BuildValue(r->filename ? "(isO)" : "(is)", EINVAL, msg, r->filename);
    PyObject *exc;
    if (!args)
        return NULL;
    exc = PyObject_Call(PyExc_OSError, args, NULL);
    Py_DECREF(args);
    return exc;
}

/* Append "what 0x.. / n is not a multiple of align" for each misaligned
 * part; returns how many there were. */
static int note(char *msg, size_t cap, int n, const char *what, uint64_t v, int hex,
                unsigned align)
{
    size_t len = strlen(msg);
    if (!align || v % align == 0)
        return n;
    snprintf(msg + len, cap - len, hex ? "%s%s 0x%llx is not a multiple of %u" : "%s%s %llu is not a multiple of %u",
             n ? "; " : "", what, (unsigned long long)v, align);
    return n + 1;
}

static PyObject *misaligned_io(Request *r)
{
    lx_dio_align a;
    char msg[512] = "";
    int n = 0, fl = fcntl(r->fd, F_GETFL);
    if (fl < 0 || !(fl & O_DIRECT) || lx_dio_alignment(r->fd, NULL, &a) < 0)
        return NULL;
    if (r->rare && r->rare->iov) {
        for (int i = 0; i < r->rare->niov; i++) {
            char what[48];
            snprintf(what, sizeof what, "buffer %d's address", i);
            n = note(msg, sizeof msg, n, what, (uintptr_t)r->rare->iov[i].iov_base, 1, a.mem);
            snprintf(what, sizeof what, "buffer %d's length", i);
            n = note(msg, sizeof msg, n, what, r->rare->iov[i].iov_len, 0, a.offset);
        }
    } else if (r->data) {
        n = note(msg, sizeof msg, n, "buffer address", (uintptr_t)r->data, 1, a.mem);
        n = note(msg, sizeof msg, n, "length", (uint64_t)r->length, 0, a.offset);
    } else
        return NULL;
    if (r->offset >= 0)
        n = note(msg, sizeof msg, n, "offset", (uint64_t)r->offset, 0, a.offset);
    if (!n)
        return NULL;   /* aligned: EINVAL for another reason */
    {
        char full[700];
        snprintf(full, sizeof full,
                 "Invalid argument: O_DIRECT misalignment: %s (this file needs memory aligned to %u "
                 "and offsets and lengths to %u bytes; see linuxaio.dio_alignment())",
                 msg, a.mem, a.offset);
        return einval(r, full);
    }
}

static PyObject *refused_at_open(Request *r)
{
    lx_dio_align a;
    int said_no;
    if (!(r->flags & O_DIRECT) || !r->path)
        return NULL;
    said_no = lx_dio_alignment(r->dir_fd, PyBytes_AS_STRING(r->path), &a) == 0 && a.unsupported;
    return einval(r, said_no ? "Invalid argument: this file system does not support O_DIRECT "
                               "(direct I/O); open the file without it"
                             : "Invalid argument: O_DIRECT refused at open: the file system (or the "
                               "file: /proc, a device) probably does not support direct I/O; open "
                               "the file without it");
}

PyObject *lx_request_error(Request *r)
{
    int err = (int)-r->result;
    if (err == EINVAL) {
        PyObject *exc;
        const char *id = lx_ops[r->op].id;
        if (!strcmp(id, "open") || !strcmp(id, "open_stat"))
            exc = refused_at_open(r);
        else
            exc = r->fd >= 0 ? misaligned_io(r) : NULL;
        if (exc || PyErr_Occurred())
            return exc;
    }
    return lx_oserror(err, r->filename, r->filename2);
}

/* ---- dio_alignment(fd_or_path) ---- */

PyObject *lx_dio_alignment_py(PyObject *m, PyObject *arg)
{
    lx_dio_align a;
    int rc;
    if (PyLong_Check(arg) || PyObject_HasAttrString(arg, "fileno")) {
        int fd = PyObject_AsFileDescriptor(arg);
        if (fd < 0)
            return NULL;
        Py_BEGIN_ALLOW_THREADS
        rc = lx_dio_alignment(fd, NULL, &a);
        Py_END_ALLOW_THREADS
        if (rc < 0)
            return PyErr_SetFromErrno(PyExc_OSError);
    } else {
        PyObject *path;
        if (!PyUnicode_FSConverter(arg, &path))
            return NULL;
        Py_BEGIN_ALLOW_THREADS
        rc = lx_dio_alignment(AT_FDCWD, PyBytes_AS_STRING(path), &a);
        Py_END_ALLOW_THREADS
        Py_DECREF(path);
        if (rc < 0)
            return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, arg);
    }
    return Py_BuildValue("(II)", a.mem, a.offset);
}

PyObject *lx_buffer_address_py(PyObject *m, PyObject *arg)
{
    Py_buffer view;
    PyObject *res;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    res = PyLong_FromVoidPtr(view.buf);
    PyBuffer_Release(&view);
    return res;
}
