/* results.c: GIL-side converters from what a worker left in a request to
 * the one Python value its callback or awaiting task gets. */
#include "ops.h"

#include <stdlib.h>

PyObject *lx_result_int(Request *r) { return PyLong_FromLongLong(r->result); }
PyObject *lx_result_zero(Request *r) { return PyLong_FromLong(0); }

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

static PyObject *stat_to_python(const struct stat *st)
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

PyObject *lx_result_stat(Request *r) { return stat_to_python(&r->io.st); }

/* The bytes object allocated at submission, cut to what was read.  We hold
 * its only reference, so _PyBytes_Resize may shrink it in place. */
PyObject *lx_result_bytes(Request *r)
{
    PyObject *b = r->value;
    r->value = NULL;
    if (PyBytes_GET_SIZE(b) != r->result && _PyBytes_Resize(&b, (Py_ssize_t)r->result) < 0)
        return NULL;
    return b;
}

/* A worker's malloc'd buffer (the size was known only there). */
PyObject *lx_result_malloced(Request *r)
{
    PyObject *b = PyBytes_FromStringAndSize(r->heap ? r->heap : "", (Py_ssize_t)r->result);
    free(r->heap);
    r->heap = NULL;
    return b;
}

/* A path the worker produced (readlink, realpath): str, or bytes when the
 * caller gave bytes, as os.readlink does. */
PyObject *lx_result_path(Request *r)
{
    PyObject *res = PyBytes_Check(r->filename)
        ? PyBytes_FromStringAndSize(r->heap, (Py_ssize_t)r->result)
        : PyUnicode_DecodeFSDefaultAndSize(r->heap, (Py_ssize_t)r->result);
    free(r->heap);
    r->heap = NULL;
    return res;
}

static PyObject *entry_name(Request *r, lx_packed_entry *e)
{
    return PyBytes_Check(r->filename) ? PyBytes_FromStringAndSize(e->name, e->namelen)
                                      : PyUnicode_DecodeFSDefaultAndSize(e->name, e->namelen);
}

/* readdir/listdir: the names.  scandir: (name, d_type, target d_type, inode). */
static PyObject *entries_to_python(Request *r, int names_only)
{
    PyObject *list = PyList_New(0);
    for (int64_t off = 0; list && off < r->result;) {
        lx_packed_entry *e = (lx_packed_entry *)(r->heap + off);
        PyObject *name = entry_name(r, e), *item = name;
        if (name && !names_only) {
            item = Py_BuildValue("(NiiK)", name, e->type, e->target, (unsigned long long)e->ino);
        }
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
        off += LX_ENTRY_SIZE(e->namelen);
    }
    free(r->heap);
    r->heap = NULL;
    return list;
}

PyObject *lx_result_names(Request *r) { return entries_to_python(r, 1); }
PyObject *lx_result_entries(Request *r) { return entries_to_python(r, 0); }

/* open_stat: (fd, os.stat_result) */
PyObject *lx_result_fd_stat(Request *r)
{
    PyObject *st = stat_to_python(&r->io.st);
    return st ? Py_BuildValue("(LN)", (long long)r->result, st) : NULL;
}

/* serve_lookup: (the resolved path, os.stat_result); the path as
 * lx_result_path gives it. */
PyObject *lx_result_path_stat(Request *r)
{
    PyObject *st = stat_to_python(&r->io.st);
    PyObject *path = st ? lx_result_path(r) : NULL;
    if (!path) {
        Py_XDECREF(st);
        return NULL;
    }
    return Py_BuildValue("(NN)", path, st);
}

int lx_results_init(void) { return find_stat_fields(); }
