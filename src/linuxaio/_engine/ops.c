/* ops.c: what each request does in a worker, and what it gives back. */
#define _GNU_SOURCE
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- results (with the GIL) ---- */

static PyObject *result_int(Request *r) { return PyLong_FromLongLong(r->result); }
static PyObject *result_zero(Request *r) { return PyLong_FromLong(0); }

/* os.stat_result is a struct sequence; its hidden fields (float times,
 * nanosecond times, st_blksize...) have no public index, so find each by
 * name once, from a stat_result built out of 0..n-1. */
static PyTypeObject *stat_result_type;
enum { ST_MODE, ST_INO, ST_DEV, ST_NLINK, ST_UID, ST_GID, ST_SIZE,
       ST_ATIME_INT, ST_MTIME_INT, ST_CTIME_INT,
       ST_ATIME, ST_MTIME, ST_CTIME, ST_ATIME_NS, ST_MTIME_NS, ST_CTIME_NS,
       ST_BLKSIZE, ST_BLOCKS, ST_RDEV, ST_NFIELDS };
static const char *const stat_names[ST_NFIELDS] = {
    "st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size",
    NULL, NULL, NULL,
    "st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns",
    "st_blksize", "st_blocks", "st_rdev"};
static Py_ssize_t stat_index[ST_NFIELDS];
static Py_ssize_t stat_nfields;

static int find_stat_fields(void)
{
    PyObject *os = NULL, *args = NULL, *sample = NULL, *n = NULL;
    int rc = -1;
    if (!(os = PyImport_ImportModule("os")))
        goto done;
    stat_result_type = (PyTypeObject *)PyObject_GetAttrString(os, "stat_result");
    if (!stat_result_type || !(n = PyObject_GetAttrString((PyObject *)stat_result_type, "n_fields")))
        goto done;
    stat_nfields = PyLong_AsSsize_t(n);
    if (stat_nfields < 0 || !(args = PyTuple_New(stat_nfields)))
        goto done;
    for (Py_ssize_t i = 0; i < stat_nfields; i++)
        PyTuple_SET_ITEM(args, i, PyLong_FromSsize_t(i));
    if (!(sample = PyObject_CallOneArg((PyObject *)stat_result_type, args)))
        goto done;
    for (int f = 0; f < ST_NFIELDS; f++) {
        PyObject *v;
        if (!stat_names[f]) {   /* the integer times sit at 7, 8, 9 */
            stat_index[f] = 7 + (f - ST_ATIME_INT);
            continue;
        }
        if (!(v = PyObject_GetAttrString(sample, stat_names[f])))
            goto done;
        stat_index[f] = PyLong_AsSsize_t(v);
        Py_DECREF(v);
    }
    rc = 0;
done:
    Py_XDECREF(os);
    Py_XDECREF(args);
    Py_XDECREF(sample);
    Py_XDECREF(n);
    return rc;
}

static PyObject *uid_object(unsigned long id)
{
    /* As os.stat: (uid_t)-1 reads back as -1. */
    if (id == (unsigned long)(uid_t)-1)
        return PyLong_FromLong(-1);
    return PyLong_FromUnsignedLong(id);
}

static PyObject *ns_object(time_t sec, long nsec)
{
    return PyLong_FromLongLong((long long)sec * 1000000000LL + nsec);
}

PyObject *lx_stat_to_python(const struct stat *st)
{
    PyObject *v[ST_NFIELDS];
    PyObject *res = PyStructSequence_New(stat_result_type);
    if (!res)
        return NULL;
    v[ST_MODE] = PyLong_FromLong((long)st->st_mode);
    v[ST_INO] = PyLong_FromUnsignedLongLong(st->st_ino);
    v[ST_DEV] = PyLong_FromUnsignedLongLong(st->st_dev);
    v[ST_NLINK] = PyLong_FromLong((long)st->st_nlink);
    v[ST_UID] = uid_object(st->st_uid);
    v[ST_GID] = uid_object(st->st_gid);
    v[ST_SIZE] = PyLong_FromLongLong(st->st_size);
    v[ST_ATIME_INT] = PyLong_FromLongLong(st->st_atim.tv_sec);
    v[ST_MTIME_INT] = PyLong_FromLongLong(st->st_mtim.tv_sec);
    v[ST_CTIME_INT] = PyLong_FromLongLong(st->st_ctim.tv_sec);
    /* The same double arithmetic as os.stat, so the floats compare equal. */
    v[ST_ATIME] = PyFloat_FromDouble(st->st_atim.tv_sec + st->st_atim.tv_nsec * 1e-9);
    v[ST_MTIME] = PyFloat_FromDouble(st->st_mtim.tv_sec + st->st_mtim.tv_nsec * 1e-9);
    v[ST_CTIME] = PyFloat_FromDouble(st->st_ctim.tv_sec + st->st_ctim.tv_nsec * 1e-9);
    v[ST_ATIME_NS] = ns_object(st->st_atim.tv_sec, st->st_atim.tv_nsec);
    v[ST_MTIME_NS] = ns_object(st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
    v[ST_CTIME_NS] = ns_object(st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
    v[ST_BLKSIZE] = PyLong_FromLong((long)st->st_blksize);
    v[ST_BLOCKS] = PyLong_FromLong((long)st->st_blocks);
    v[ST_RDEV] = PyLong_FromUnsignedLongLong(st->st_rdev);
    for (int f = 0; f < ST_NFIELDS; f++)
        PyStructSequence_SET_ITEM(res, stat_index[f], v[f]);
    for (int f = 0; f < ST_NFIELDS; f++)
        if (!v[f]) {
            Py_DECREF(res);
            return NULL;
        }
    /* Fields this Python has and we do not fill stay None. */
    for (Py_ssize_t i = 0; i < stat_nfields; i++)
        if (!PyStructSequence_GET_ITEM(res, i))
            PyStructSequence_SET_ITEM(res, i, Py_NewRef(Py_None));
    return res;
}

static PyObject *result_stat(Request *r) { return lx_stat_to_python(&r->out.st); }

/* The bytes object allocated at submission, cut to what was read.  We hold
 * its only reference, so _PyBytes_Resize may shrink it in place. */
static PyObject *result_bytes(Request *r)
{
    PyObject *b = r->value;
    r->value = NULL;
    if (PyBytes_GET_SIZE(b) != r->result && _PyBytes_Resize(&b, (Py_ssize_t)r->result) < 0)
        return NULL;
    return b;
}

/* A worker's malloc'd buffer (the size was known only there). */
static PyObject *result_malloced(Request *r)
{
    PyObject *b = PyBytes_FromStringAndSize(r->heap ? r->heap : "", (Py_ssize_t)r->result);
    free(r->heap);
    r->heap = NULL;
    return b;
}

/* ---- undo ---- */

static void undo_open(Request *r) { close((int)r->result); }

/* ---- runs (in a worker) ---- */

#define SYSCALL_RESULT(r, expr) do { \
        long long rv_ = (expr); \
        (r)->result = rv_ < 0 ? -errno : rv_; \
    } while (0)

static const char *path_of(PyObject *bytes) { return PyBytes_AS_STRING(bytes); }

static void run_nop(Request *r) { r->result = 0; }

static void run_busy(Request *r)
{
    struct timespec ts = {(time_t)r->seconds,
                          (long)((r->seconds - (time_t)r->seconds) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
        ;
    r->result = 0;
}

static void run_open(Request *r)
{
    /* O_CLOEXEC as os.open does (PEP 446). */
    SYSCALL_RESULT(r, openat(r->fd2, path_of(r->path), r->flags | O_CLOEXEC, r->mode));
}

static void run_close(Request *r)
{
    /* close(2): the fd is gone even on EINTR; reporting it is all we do. */
    SYSCALL_RESULT(r, close(r->fd));
}

static void run_read(Request *r)
{
    if (r->offset < 0)
        SYSCALL_RESULT(r, read(r->fd, r->data, r->length));
    else
        SYSCALL_RESULT(r, pread(r->fd, r->data, r->length, r->offset));
}

static void run_write(Request *r)
{
    if (r->offset < 0)
        SYSCALL_RESULT(r, write(r->fd, r->data, r->length));
    else
        SYSCALL_RESULT(r, pwrite(r->fd, r->data, r->length, r->offset));
}

static void run_preadv(Request *r)
{
    SYSCALL_RESULT(r, preadv2(r->fd, r->iov, r->niov, r->offset, r->flags));
}

static void run_pwritev(Request *r)
{
    SYSCALL_RESULT(r, pwritev2(r->fd, r->iov, r->niov, r->offset, r->flags));
}

static void run_stat(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, fstatat(r->fd2, path_of(r->path), &r->out.st, r->flags));
    else
        SYSCALL_RESULT(r, fstat(r->fd, &r->out.st));
}

static void run_unlink(Request *r) { SYSCALL_RESULT(r, unlinkat(r->fd2, path_of(r->path), r->flags)); }

/* open + fstat + read + close in one pass through a worker. */
static void run_slurp(Request *r)
{
    struct stat st;
    int64_t want = r->length, got = 0;
    int fd = openat(r->fd2, path_of(r->path), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r->result = -errno;
        return;
    }
    if (want < 0) {   /* to the end: the size now, plus whatever grows meanwhile */
        if (fstat(fd, &st) < 0)
            goto fail;
        want = st.st_size > r->offset ? st.st_size - r->offset : 0;
    }
    if (!(r->heap = malloc(want ? want : 1))) {
        errno = ENOMEM;
        goto fail;
    }
    while (got < want) {
        ssize_t n = pread(fd, r->heap + got, want - got, r->offset + got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        got += n;
    }
    close(fd);
    r->result = got;
    return;
fail:
    r->result = -errno;
    free(r->heap);
    r->heap = NULL;
    close(fd);
}

/* ---- the table ----
 * The aio_* rows are the callback API (Linux::AIO's, then IO::AIO's); the
 * others serve linuxaio.os, which gives them the names and shapes of os. */

const lx_op lx_ops[] = {
    {"aio_nop", "", 0, run_nop, result_zero, NULL,
     "aio_nop(callback=None, *, pri=0)\n--\n\nPass through a worker; the callback gets 0."},
    {"aio_busy", "s", 0, run_busy, result_zero, NULL,
     "aio_busy(seconds, callback=None, *, pri=0)\n--\n\nKeep a worker busy for that long; the callback gets 0."},
    {"aio_open", "pim", 0, run_open, result_int, undo_open,
     "aio_open(path, flags, mode, callback=None, *, pri=0)\n--\n\n"
     "open(2); the callback gets the new fd (close-on-exec), an int."},
    {"aio_close", "F", 0, run_close, result_zero, NULL,
     "aio_close(fd, callback=None, *, pri=0)\n--\n\nclose(2) an int fd; the callback gets 0."},
    {"aio_read", "fonwd", 0, run_read, result_int, NULL,
     "aio_read(fd, offset, length, data, dataoffset, callback=None, *, pri=0)\n--\n\n"
     "Read length bytes at offset (None: at the file position) into data[dataoffset:];\n"
     "the callback gets the number of bytes read."},
    {"aio_write", "fonrd", 0, run_write, result_int, NULL,
     "aio_write(fd, offset, length, data, dataoffset, callback=None, *, pri=0)\n--\n\n"
     "Write data[dataoffset:dataoffset+length] at offset (None: at the file position);\n"
     "the callback gets the number of bytes written."},
    {"aio_stat", "x", 0, run_stat, result_stat, NULL,
     "aio_stat(fd_or_path, callback=None, *, pri=0)\n--\n\nstat(2)/fstat(2); the callback gets an os.stat_result."},
    {"aio_lstat", "x", AT_SYMLINK_NOFOLLOW, run_stat, result_stat, NULL,
     "aio_lstat(path, callback=None, *, pri=0)\n--\n\nlstat(2); the callback gets an os.stat_result."},
    {"aio_unlink", "p", 0, run_unlink, result_zero, NULL,
     "aio_unlink(path, callback=None, *, pri=0)\n--\n\nunlink(2); the callback gets 0."},
    {"aio_slurp", "poL", 0, run_slurp, result_malloced, NULL,
     "aio_slurp(path, offset, length, callback=None, *, pri=0)\n--\n\n"
     "Open, read length bytes at offset (None: to the end) and close, in one request;\n"
     "the callback gets the bytes."},

    {"open", "pimD", 0, run_open, result_int, undo_open, NULL},
    {"read", "fN", 0, run_read, result_bytes, NULL, NULL},
    {"pread", "fNo", 0, run_read, result_bytes, NULL, NULL},
    {"readinto", "fW", 0, run_read, result_int, NULL, NULL},
    {"preadinto", "fWo", 0, run_read, result_int, NULL, NULL},
    {"preadv", "fVoi", 0, run_preadv, result_int, NULL, NULL},
    {"write", "fb", 0, run_write, result_int, NULL, NULL},
    {"pwrite", "fbo", 0, run_write, result_int, NULL, NULL},
    {"pwritev", "fvoi", 0, run_pwritev, result_int, NULL, NULL},
    {"stat", "xDi", 0, run_stat, result_stat, NULL, NULL},
    {"unlink", "pD", 0, run_unlink, result_zero, NULL, NULL},
};
const int lx_nops = sizeof lx_ops / sizeof lx_ops[0];

int lx_op_index(const char *name)
{
    for (int i = 0; i < lx_nops; i++)
        if (!strcmp(lx_ops[i].name, name))
            return i;
    return -1;
}

int lx_ops_init(void) { return find_stat_fields(); }
