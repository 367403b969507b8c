/* results.c: GIL-side converters from what a worker left in a request to
 * the one Python value its callback or awaiting task gets. */
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
    PyObject *b;
    if (r->value && !r->heap)   /* a slurp's try read into its bytes (ops_try.c) */
        return lx_result_bytes(r);
    b = PyBytes_FromStringAndSize(r->heap ? r->heap : "", (Py_ssize_t)r->result);
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

/* An entry's name: str, or bytes when the caller gave bytes (as os.listdir). */
static PyObject *entry_name(Request *r, const char *name, uint16_t namelen)
{
    return PyBytes_Check(r->filename) ? PyBytes_FromStringAndSize(name, namelen)
                                      : PyUnicode_DecodeFSDefaultAndSize(name, namelen);
}

/* What each packed entry becomes. */
enum { NAMES, ENTRIES, DENTS };

/* NAMES: readdir/listdir's names.  ENTRIES: scandir's (name, d_type,
 * target d_type, inode).  DENTS: readdirx's (name, d_type, inode). */
static PyObject *entries_to_python(Request *r, int shape)
{
    PyObject *list = PyList_New(0);
    for (int64_t off = 0; list && off < r->result;) {
        lx_packed_entry *e = (lx_packed_entry *)(r->heap + off);
        PyObject *name = entry_name(r, e->name, e->namelen), *item = name;
        if (name && shape == ENTRIES)
            item = Py_BuildValue("(NiiK)", name, e->type, e->target, (unsigned long long)e->ino);
        else if (name && shape == DENTS)
            item = Py_BuildValue("(NiK)", name, e->type, (unsigned long long)e->ino);
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
        off += LX_ENTRY_SIZE(e->namelen);
    }
    free(r->heap);
    r->heap = NULL;
    return list;
}

PyObject *lx_result_names(Request *r) { return entries_to_python(r, NAMES); }
PyObject *lx_result_entries(Request *r) { return entries_to_python(r, ENTRIES); }

/* scandir_stat: (name, d_type, os.stat_result or the errno of its lstat) */
PyObject *lx_result_entries_stat(Request *r)
{
    PyObject *list = PyList_New(0);
    for (int64_t off = 0; list && off < r->result;) {
        lx_stat_entry *e = (lx_stat_entry *)(r->heap + off);
        PyObject *name = entry_name(r, e->name, e->namelen);
        PyObject *st = !name ? NULL : e->err ? PyLong_FromLong(e->err) : stat_to_python(&e->st);
        PyObject *item = st ? Py_BuildValue("(NiN)", name, e->type, st) : NULL;
        if (!st)
            Py_XDECREF(name);
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
        off += LX_STAT_ENTRY_SIZE(e->namelen);
    }
    free(r->heap);
    r->heap = NULL;
    return list;
}

/* scandir_totals: (files, dirs, symlinks, other, apparent bytes, allocated
 * bytes, [subdirectory names], [(st_dev, st_ino, allocated bytes) of each
 * hard-linked entry], [(name, errno) of each entry lstat failed on]); the
 * names bytes or str, as the path was. */
PyObject *lx_result_totals(Request *r)
{
    const lx_tree_totals *t = (const lx_tree_totals *)r->heap;
    PyObject *subdirs = PyList_New(0), *linked = PyList_New(0), *failed = PyList_New(0), *res = NULL;
    int as_bytes = PyBytes_Check(r->filename);
    if (!subdirs || !linked || !failed)
        goto out;
    for (int64_t off = sizeof *t; off < r->result;) {
        const lx_total_rec *e = (const lx_total_rec *)(r->heap + off);
        PyObject *item = NULL;
        int rc;
        if (e->kind == LX_TOTAL_LINKED)
            item = Py_BuildValue("(KKL)", (unsigned long long)e->dev, (unsigned long long)e->ino,
                                 (long long)e->bytes);
        else
            item = as_bytes ? PyBytes_FromStringAndSize(e->name, e->namelen)
                            : PyUnicode_DecodeFSDefaultAndSize(e->name, e->namelen);
        if (item && e->kind == LX_TOTAL_FAILED)
            item = Py_BuildValue("(Ni)", item, (int)e->err);
        if (!item)
            goto out;
        rc = PyList_Append(e->kind == LX_TOTAL_SUBDIR ? subdirs : e->kind == LX_TOTAL_LINKED ? linked : failed,
                           item);
        Py_DECREF(item);
        if (rc < 0)
            goto out;
        off += LX_TOTAL_REC_SIZE(e->namelen);
    }
    res = Py_BuildValue("(LLLLLLOOO)", (long long)t->files, (long long)t->dirs, (long long)t->symlinks,
                        (long long)t->other, (long long)t->apparent, (long long)t->allocated,
                        subdirs, linked, failed);
out:
    Py_XDECREF(subdirs);
    Py_XDECREF(linked);
    Py_XDECREF(failed);
    free(r->heap);
    r->heap = NULL;
    return res;
}

/* copy_data: (bytes copied, how: 1 reflink, 2 copy_file_range, 3 sendfile, 4 read/write) */
PyObject *lx_result_copied(Request *r) { return Py_BuildValue("(LI)", (long long)r->result, r->mode); }

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

/* ---- names, directories, xattrs (IO::AIO's rest) ---- */

/* os.access: the worker left 1 or 0. */
PyObject *lx_result_bool(Request *r) { return PyBool_FromLong(r->result != 0); }

/* os.statvfs_result, built as os.statvfs builds it: ten fields, then
 * f_fsid (a field by name only).  The type is looked up on first use. */
PyObject *lx_result_statvfs(Request *r)
{
    static PyTypeObject *type;
    static Py_ssize_t nfields;
    const struct statvfs *s = &r->io.vfs;
    PyObject *res, *v[11];
    if (!type) {
        PyObject *os = PyImport_ImportModule("os"), *n = NULL;
        PyTypeObject *t = os ? (PyTypeObject *)PyObject_GetAttrString(os, "statvfs_result") : NULL;
        Py_XDECREF(os);
        if (!t || !(n = PyObject_GetAttrString((PyObject *)t, "n_fields"))
            || (nfields = PyLong_AsSsize_t(n)) < 11) {
            Py_XDECREF(t);
            Py_XDECREF(n);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_SystemError, "os.statvfs_result has no f_fsid");
            return NULL;
        }
        Py_DECREF(n);
        type = t;
    }
    if (!(res = PyStructSequence_New(type)))
        return NULL;
    v[0] = PyLong_FromUnsignedLong(s->f_bsize);
    v[1] = PyLong_FromUnsignedLong(s->f_frsize);
    v[2] = PyLong_FromUnsignedLongLong(s->f_blocks);
    v[3] = PyLong_FromUnsignedLongLong(s->f_bfree);
    v[4] = PyLong_FromUnsignedLongLong(s->f_bavail);
    v[5] = PyLong_FromUnsignedLongLong(s->f_files);
    v[6] = PyLong_FromUnsignedLongLong(s->f_ffree);
    v[7] = PyLong_FromUnsignedLongLong(s->f_favail);
    v[8] = PyLong_FromUnsignedLong(s->f_flag);
    v[9] = PyLong_FromUnsignedLong(s->f_namemax);
    v[10] = PyLong_FromUnsignedLong(s->f_fsid);
    for (int i = 0; i < 11; i++)
        PyStructSequence_SET_ITEM(res, i, v[i]);
    for (Py_ssize_t i = 11; i < nfields; i++)
        PyStructSequence_SET_ITEM(res, i, Py_NewRef(Py_None));
    for (int i = 0; i < 11; i++)
        if (!v[i]) {
            Py_DECREF(res);
            return NULL;
        }
    return res;
}

/* aio_readdirx: (names, flags), or ((name, type, inode)..., flags) with
 * READDIR_DENTS; the worker left the flags, FOUND_UNKNOWN included. */
PyObject *lx_result_readdirx(Request *r)
{
    PyObject *list = entries_to_python(r, r->flags & LX_READDIR_DENTS ? DENTS : NAMES);
    return list ? Py_BuildValue("(Ni)", list, r->flags) : NULL;
}

/* aio_scandir: (dirs, nondirs), names in directory order. */
PyObject *lx_result_scandir(Request *r)
{
    PyObject *dirs = PyList_New(0), *nondirs = PyList_New(0), *res = NULL;
    int64_t off = 0;
    while (dirs && nondirs && off < r->result) {
        lx_packed_entry *e = (lx_packed_entry *)(r->heap + off);
        PyObject *name = entry_name(r, e->name, e->namelen);
        if (!name || PyList_Append(e->type == DT_DIR ? dirs : nondirs, name) < 0) {
            Py_XDECREF(name);
            goto done;
        }
        Py_DECREF(name);
        off += LX_ENTRY_SIZE(e->namelen);
    }
    if (dirs && nondirs)
        res = PyTuple_Pack(2, dirs, nondirs);
done:
    Py_XDECREF(dirs);
    Py_XDECREF(nondirs);
    free(r->heap);
    r->heap = NULL;
    return res;
}

/* listxattr: NUL-terminated names, as os.listxattr gives them (str). */
PyObject *lx_result_xattr_names(Request *r)
{
    PyObject *list = PyList_New(0);
    for (int64_t off = 0; list && off < r->result;) {
        size_t len = strnlen(r->heap + off, (size_t)(r->result - off));
        PyObject *name = PyUnicode_DecodeFSDefaultAndSize(r->heap + off, (Py_ssize_t)len);
        if (!name || PyList_Append(list, name) < 0)
            Py_CLEAR(list);
        Py_XDECREF(name);
        off += (int64_t)len + 1;
    }
    free(r->heap);
    r->heap = NULL;
    return list;
}

/* ---- the data, sync, memory and fd-control rows (issue 14) ---- */

/* aio_load: the worker's bytes moved into the caller's bytearray, resized
 * to fit (here, with the GIL: a worker never touches it).  A bytearray
 * exported meanwhile (a memoryview of it alive) cannot be resized: the
 * request then fails with that BufferError, which the callback gets as it
 * gets an OSError (and an awaiting task raises). */
PyObject *lx_result_load(Request *r)
{
    PyObject *ba = r->value;
    if (PyByteArray_Resize(ba, (Py_ssize_t)r->result) < 0) {
        PyObject *et, *ev, *tb;
        if (!PyErr_ExceptionMatches(PyExc_BufferError))
            return NULL;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        Py_XDECREF(et);
        Py_XDECREF(tb);
        r->result = -EBUSY;   /* failed: deliver() reads this after the conversion */
        return ev;
    }
    if (r->result)
        memcpy(PyByteArray_AS_STRING(ba), r->heap, (size_t)r->result);
    free(r->heap);
    r->heap = NULL;
    return PyLong_FromLongLong(r->result);
}

/* aio_fcntl/aio_ioctl: the int, or the copied argument as it came out. */
PyObject *lx_result_fdctl(Request *r)
{
    if (r->io.x.argkind == LX_ARG_COPY)
        return PyBytes_FromStringAndSize(r->heap, (Py_ssize_t)r->length);
    return PyLong_FromLongLong(r->result);
}

/* aio_fiemap: [(logical, physical, length, flags), ...] */
PyObject *lx_result_fiemap(Request *r)
{
    PyObject *list = PyList_New((Py_ssize_t)r->result);
    const uint64_t *e = (const uint64_t *)r->heap;
    for (int64_t i = 0; list && i < r->result; i++, e += 4) {
        PyObject *t = Py_BuildValue("(KKKK)", (unsigned long long)e[0], (unsigned long long)e[1],
                                    (unsigned long long)e[2], (unsigned long long)e[3]);
        if (!t)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    free(r->heap);
    r->heap = NULL;
    return list;
}
