/* ops.c: what each request does in a worker, and what it gives back. */
#define _GNU_SOURCE
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/syscall.h>
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

static PyObject *result_stat(Request *r) { return lx_stat_to_python(&r->io.st); }

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

/* A path the worker produced (readlink, realpath): str, or bytes when the
 * caller gave bytes, as os.readlink does. */
static PyObject *result_path(Request *r)
{
    PyObject *res = PyBytes_Check(r->filename)
        ? PyBytes_FromStringAndSize(r->heap, (Py_ssize_t)r->result)
        : PyUnicode_DecodeFSDefaultAndSize(r->heap, (Py_ssize_t)r->result);
    free(r->heap);
    r->heap = NULL;
    return res;
}

/* Directory entries as the worker packed them (run_readdir). */
typedef struct {
    uint64_t ino;
    unsigned char type, target;   /* DT_*; target: what a symlink points to */
    uint16_t namelen;
    char name[];
} packed_entry;

#define ENTRY_SIZE(namelen) ((sizeof(packed_entry) + (namelen) + 1 + 7) & ~(size_t)7)

static PyObject *entry_name(Request *r, packed_entry *e)
{
    return PyBytes_Check(r->filename) ? PyBytes_FromStringAndSize(e->name, e->namelen)
                                      : PyUnicode_DecodeFSDefaultAndSize(e->name, e->namelen);
}

/* readdir/listdir: the names.  scandir: (name, d_type, target d_type, inode). */
static PyObject *entries_to_python(Request *r, int names_only)
{
    PyObject *list = PyList_New(0);
    for (int64_t off = 0; list && off < r->result;) {
        packed_entry *e = (packed_entry *)(r->heap + off);
        PyObject *name = entry_name(r, e), *item = name;
        if (name && !names_only) {
            item = Py_BuildValue("(NiiK)", name, e->type, e->target, (unsigned long long)e->ino);
        }
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
        off += ENTRY_SIZE(e->namelen);
    }
    free(r->heap);
    r->heap = NULL;
    return list;
}

static PyObject *result_names(Request *r) { return entries_to_python(r, 1); }
static PyObject *result_entries(Request *r) { return entries_to_python(r, 0); }

/* open_stat: (fd, os.stat_result) */
static PyObject *result_fd_stat(Request *r)
{
    PyObject *st = lx_stat_to_python(&r->io.st);
    return st ? Py_BuildValue("(LN)", (long long)r->result, st) : NULL;
}

/* ---- undo ---- */

static void undo_open(Request *r) { close((int)r->result); }

/* ---- runs (in a worker) ---- */

#define SYSCALL_RESULT(r, expr) do { \
        long long rv_ = (expr); \
        (r)->result = rv_ < 0 ? -errno : rv_; \
    } while (0)

static const char *path_of(PyObject *bytes) { return PyBytes_AS_STRING(bytes); }

#define READDIR_TYPES 1   /* scandir: resolve unknown types and symlink targets */

static void run_nop(Request *r) { r->result = 0; }

static void run_busy(Request *r)
{
    struct timespec ts = {(time_t)r->io.seconds,
                          (long)((r->io.seconds - (time_t)r->io.seconds) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
        ;
    r->result = 0;
}

static void run_open(Request *r)
{
    /* O_CLOEXEC as os.open does (PEP 446). */
    SYSCALL_RESULT(r, openat(r->fd2, path_of(r->path), r->flags | O_CLOEXEC, r->mode));
}

/* open + fstat in one pass: a file object needs both, and the fstat must
 * not block the caller's thread (NFS, FUSE). */
static void run_open_stat(Request *r)
{
    run_open(r);
    if (r->result >= 0 && fstat((int)r->result, &r->io.st) < 0) {
        int err = errno;
        close((int)r->result);
        r->result = -err;
    }
}

static void run_close(Request *r)
{
    /* close(2): the fd is gone even on EINTR; reporting it is all we do. */
    SYSCALL_RESULT(r, close(r->fd));
}

static void run_read(Request *r)
{
    int64_t done = r->io.nowait_done;   /* by try_read, which stopped short */
    if (r->offset < 0)
        SYSCALL_RESULT(r, read(r->fd, r->data, r->length));
    else
        SYSCALL_RESULT(r, pread(r->fd, r->data + done, r->length - done, r->offset + done));
    if (done)   /* as read(2) after a partial transfer: the bytes, not the error */
        r->result = r->result < 0 ? done : r->result + done;
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
    SYSCALL_RESULT(r, preadv2(r->fd, r->rare->iov, r->rare->niov, r->offset, r->flags));
}

static void run_pwritev(Request *r)
{
    SYSCALL_RESULT(r, pwritev2(r->fd, r->rare->iov, r->rare->niov, r->offset, r->flags));
}

static void run_stat(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, fstatat(r->fd2, path_of(r->path), &r->io.st, r->flags));
    else
        SYSCALL_RESULT(r, fstat(r->fd, &r->io.st));
}

static void run_unlink(Request *r) { SYSCALL_RESULT(r, unlinkat(r->fd2, path_of(r->path), r->flags)); }

static void run_truncate(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, truncate(path_of(r->path), r->offset));
    else
        SYSCALL_RESULT(r, ftruncate(r->fd, r->offset));
}

static void run_fsync(Request *r) { SYSCALL_RESULT(r, fsync(r->fd)); }
static void run_fdatasync(Request *r) { SYSCALL_RESULT(r, fdatasync(r->fd)); }

static void run_mkdir(Request *r) { SYSCALL_RESULT(r, mkdirat(r->fd2, path_of(r->path), r->mode)); }

static void run_rename(Request *r)
{
    SYSCALL_RESULT(r, renameat(r->fd2, path_of(r->path), r->fd, path_of(r->path2)));
}

static void run_chmod(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, fchmodat(r->fd2, path_of(r->path), r->mode, r->flags));
    else
        SYSCALL_RESULT(r, fchmod(r->fd, r->mode));
}

static void run_utime(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, utimensat(r->fd2, path_of(r->path), r->io.times, r->flags));
    else
        SYSCALL_RESULT(r, futimens(r->fd, r->io.times));
}

static void run_symlink(Request *r)
{
    SYSCALL_RESULT(r, symlinkat(path_of(r->path), r->fd2, path_of(r->path2)));
}

static void run_link(Request *r)
{
    SYSCALL_RESULT(r, linkat(r->fd2, path_of(r->path), r->fd, path_of(r->path2), r->flags));
}

static void run_readlink(Request *r)
{
    for (size_t size = 256;; size *= 2) {
        ssize_t n;
        free(r->heap);
        if (!(r->heap = malloc(size))) {
            r->result = -ENOMEM;
            return;
        }
        n = readlinkat(r->fd2, path_of(r->path), r->heap, size);
        if (n < 0) {
            r->result = -errno;
            return;
        }
        if ((size_t)n < size) {   /* else it may have been cut short */
            r->result = n;
            return;
        }
    }
}

static void run_realpath(Request *r)
{
    free(r->heap);
    r->heap = realpath(path_of(r->path), NULL);
    r->result = r->heap ? (int64_t)strlen(r->heap) : -errno;
}

/* Append one entry to the packed list in r->heap (size in *cap). */
static int pack_entry(Request *r, size_t *cap, const struct dirent64 *d, unsigned char target)
{
    size_t len = strlen(d->d_name), need = ENTRY_SIZE(len);
    packed_entry *e;
    if ((size_t)r->result + need > *cap) {
        size_t ncap = *cap ? *cap * 2 : 16384;
        char *nh;
        while (ncap < (size_t)r->result + need)
            ncap *= 2;
        if (!(nh = realloc(r->heap, ncap)))
            return -1;
        r->heap = nh;
        *cap = ncap;
    }
    e = (packed_entry *)(r->heap + r->result);
    e->ino = d->d_ino;
    e->type = d->d_type;
    e->target = target;
    e->namelen = (uint16_t)len;
    memcpy(e->name, d->d_name, len + 1);
    r->result += need;
    return 0;
}

static unsigned char type_of_mode(mode_t m)
{
    return S_ISDIR(m) ? DT_DIR : S_ISREG(m) ? DT_REG : S_ISLNK(m) ? DT_LNK : S_ISFIFO(m) ? DT_FIFO
         : S_ISSOCK(m) ? DT_SOCK : S_ISCHR(m) ? DT_CHR : S_ISBLK(m) ? DT_BLK : DT_UNKNOWN;
}

/* getdents64(2) through the whole directory.  With READDIR_TYPES, every
 * entry's type is known when it leaves the worker: a DT_UNKNOWN one is
 * lstat'ed, and a symlink's target is stat'ed, so is_dir() and friends
 * never need a syscall in the caller's thread. */
static void run_readdir(Request *r)
{
    char buf[32768];
    size_t cap = 0;
    int dfd = openat(r->fd2, path_of(r->path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        r->result = -errno;
        return;
    }
    r->result = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0) {
                free(r->heap);
                r->heap = NULL;
                r->result = -errno;
            }
            break;
        }
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            unsigned char target = d->d_type;
            off += d->d_reclen;
            if (d->d_name[0] == '.' && (!d->d_name[1] || (d->d_name[1] == '.' && !d->d_name[2])))
                continue;
            if (r->flags & READDIR_TYPES) {
                struct stat st;
                if (d->d_type == DT_UNKNOWN && !fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW))
                    d->d_type = target = type_of_mode(st.st_mode);
                if (d->d_type == DT_LNK)
                    target = fstatat(dfd, d->d_name, &st, 0) ? DT_UNKNOWN : type_of_mode(st.st_mode);
            }
            if (pack_entry(r, &cap, d, target) < 0) {
                free(r->heap);
                r->heap = NULL;
                r->result = -ENOMEM;
                close(dfd);
                return;
            }
        }
    }
    close(dfd);
}

/* Read [offset, offset + want) into r->heap, growing it; to the end of the
 * file when want < 0 (the size fstat gives is only a first guess: /proc
 * files say 0, and a file may grow meanwhile). */
static int slurp_into_heap(Request *r, int fd, int64_t want)
{
    struct stat st;
    size_t cap;
    int64_t got = 0;
    if (want == 0) {   /* no read to fail on a directory: say so as read(2) would */
        if (fstat(fd, &st) < 0)
            return -1;
        if (S_ISDIR(st.st_mode))
            return errno = EISDIR, -1;
        cap = 0;
    } else if (want > 0)
        cap = (size_t)want;
    else if (fstat(fd, &st) < 0)
        return -1;
    else   /* one more byte than the size, to see the end in one read */
        cap = (size_t)(st.st_size > r->offset ? st.st_size - r->offset : 0) + 1;
    if (cap < 1)
        cap = 1;
    if (!(r->heap = malloc(cap)))
        return errno = ENOMEM, -1;
    for (;;) {
        ssize_t n;
        if (want >= 0 && got >= want)
            break;
        if ((size_t)got == cap) {   /* only when reading to the end */
            char *nh = realloc(r->heap, cap * 2);
            if (!nh)
                return errno = ENOMEM, -1;
            r->heap = nh;
            cap *= 2;
        }
        n = pread(fd, r->heap + got, cap - got, r->offset + got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += n;
    }
    r->result = got;
    return 0;
}

/* open + read + close in one pass through a worker. */
static void run_slurp(Request *r)
{
    int fd = openat(r->fd2, path_of(r->path), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r->result = -errno;
        return;
    }
    if (slurp_into_heap(r, fd, r->length) < 0) {
        r->result = -errno;
        free(r->heap);
        r->heap = NULL;
    }
    close(fd);
}

/* ---- tries (in a polling thread: they must not block) ---- */

/* A positioned read, if the page cache holds it: RWF_NOWAIT fails with
 * EAGAIN rather than wait for the disk or a lock, and a file system that
 * cannot promise that refuses the flag (EOPNOTSUPP).  Not under O_DIRECT,
 * where it still waits for the device.  (The submitter marks a read
 * tryable only into memory that is no file mapping: args.c.)  A short
 * read means the end of the file, or that the rest is not cached: then a
 * worker reads the rest (run_read). */
static int try_read(Request *r)
{
    struct iovec iov = {r->data, (size_t)r->length};
    struct stat st;
    ssize_t n;
    int fl;
    if (r->offset < 0)
        return 0;
    fl = fcntl(r->fd, F_GETFL);
    if (fl < 0 || (fl & O_DIRECT))
        return 0;
    n = preadv2(r->fd, &iov, 1, r->offset, RWF_NOWAIT);
    if (n < 0)   /* would block, or an error the worker's pread will report */
        return 0;
    /* 0 is the end: what is not cached fails with EAGAIN instead */
    if (n == 0 || n == r->length
        || (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode) && r->offset + n >= st.st_size)) {
        r->result = n;
        return 1;
    }
    r->io.nowait_done = n;
    return -1;   /* started: the bytes so far are in the buffer */
}

/* ---- the table ----
 * The aio_* rows are the callback API (Linux::AIO's, then IO::AIO's); the
 * others serve linuxaio.os, which gives them the names and shapes of os. */

const lx_op lx_ops[] = {
    {"aio_nop", "", 0, run_nop, NULL, result_zero, NULL,
     "aio_nop(callback=None, *, pri=0)\n--\n\nPass through a worker; the callback gets 0."},
    {"aio_busy", "s", 0, run_busy, NULL, result_zero, NULL,
     "aio_busy(seconds, callback=None, *, pri=0)\n--\n\nKeep a worker busy for that long; the callback gets 0."},
    {"aio_open", "pim", 0, run_open, NULL, result_int, undo_open,
     "aio_open(path, flags, mode, callback=None, *, pri=0)\n--\n\n"
     "open(2); the callback gets the new fd (close-on-exec), an int."},
    {"aio_close", "F", 0, run_close, NULL, result_zero, NULL,
     "aio_close(fd, callback=None, *, pri=0)\n--\n\nclose(2) an int fd; the callback gets 0."},
    {"aio_read", "fonwd", 0, run_read, try_read, result_int, NULL,
     "aio_read(fd, offset, length, data, dataoffset, callback=None, *, pri=0)\n--\n\n"
     "Read length bytes at offset (None: at the file position) into data[dataoffset:];\n"
     "the callback gets the number of bytes read."},
    {"aio_write", "fonrd", 0, run_write, NULL, result_int, NULL,
     "aio_write(fd, offset, length, data, dataoffset, callback=None, *, pri=0)\n--\n\n"
     "Write data[dataoffset:dataoffset+length] at offset (None: at the file position);\n"
     "the callback gets the number of bytes written."},
    {"aio_stat", "x", 0, run_stat, NULL, result_stat, NULL,
     "aio_stat(fd_or_path, callback=None, *, pri=0)\n--\n\nstat(2)/fstat(2); the callback gets an os.stat_result."},
    {"aio_lstat", "x", AT_SYMLINK_NOFOLLOW, run_stat, NULL, result_stat, NULL,
     "aio_lstat(path, callback=None, *, pri=0)\n--\n\nlstat(2); the callback gets an os.stat_result."},
    {"aio_unlink", "p", 0, run_unlink, NULL, result_zero, NULL,
     "aio_unlink(path, callback=None, *, pri=0)\n--\n\nunlink(2); the callback gets 0."},
    {"aio_slurp", "poL", 0, run_slurp, NULL, result_malloced, NULL,
     "aio_slurp(path, offset, length, callback=None, *, pri=0)\n--\n\n"
     "Open, read length bytes at offset (None: to the end) and close, in one request;\n"
     "the callback gets the bytes."},
    {"aio_truncate", "xo", 0, run_truncate, NULL, result_zero, NULL,
     "aio_truncate(fd_or_path, length, callback=None, *, pri=0)\n--\n\n"
     "truncate(2)/ftruncate(2); the callback gets 0."},
    {"aio_fsync", "f", 0, run_fsync, NULL, result_zero, NULL,
     "aio_fsync(fd, callback=None, *, pri=0)\n--\n\nfsync(2); the callback gets 0."},
    {"aio_fdatasync", "f", 0, run_fdatasync, NULL, result_zero, NULL,
     "aio_fdatasync(fd, callback=None, *, pri=0)\n--\n\nfdatasync(2); the callback gets 0."},
    {"aio_mkdir", "pm", 0, run_mkdir, NULL, result_zero, NULL,
     "aio_mkdir(path, mode, callback=None, *, pri=0)\n--\n\nmkdir(2); the callback gets 0."},
    {"aio_rmdir", "p", AT_REMOVEDIR, run_unlink, NULL, result_zero, NULL,
     "aio_rmdir(path, callback=None, *, pri=0)\n--\n\nrmdir(2); the callback gets 0."},
    {"aio_rename", "pP", 0, run_rename, NULL, result_zero, NULL,
     "aio_rename(src, dst, callback=None, *, pri=0)\n--\n\nrename(2); the callback gets 0."},
    {"aio_chmod", "xm", 0, run_chmod, NULL, result_zero, NULL,
     "aio_chmod(fd_or_path, mode, callback=None, *, pri=0)\n--\n\nchmod(2)/fchmod(2); the callback gets 0."},
    {"aio_utime", "xuu", 0, run_utime, NULL, result_zero, NULL,
     "aio_utime(fd_or_path, atime, mtime, callback=None, *, pri=0)\n--\n\n"
     "Set the times (seconds, floats; None for both: now); the callback gets 0."},
    {"aio_readlink", "p", 0, run_readlink, NULL, result_path, NULL,
     "aio_readlink(path, callback=None, *, pri=0)\n--\n\nreadlink(2); the callback gets the target."},
    {"aio_symlink", "pP", 0, run_symlink, NULL, result_zero, NULL,
     "aio_symlink(target, linkpath, callback=None, *, pri=0)\n--\n\nsymlink(2); the callback gets 0."},
    {"aio_link", "pP", 0, run_link, NULL, result_zero, NULL,
     "aio_link(src, dst, callback=None, *, pri=0)\n--\n\nlink(2); the callback gets 0."},
    {"aio_realpath", "p", 0, run_realpath, NULL, result_path, NULL,
     "aio_realpath(path, callback=None, *, pri=0)\n--\n\nrealpath(3); the callback gets the canonical path."},
    {"aio_readdir", "p", 0, run_readdir, NULL, result_names, NULL,
     "aio_readdir(path, callback=None, *, pri=0)\n--\n\n"
     "The names in a directory (getdents64, without . and ..); the callback gets a list."},

    {"open", "pimD", 0, run_open, NULL, result_int, undo_open, NULL},
    {"open_stat", "pimD", 0, run_open_stat, NULL, result_fd_stat, undo_open, NULL},
    {"close", "k", 0, run_close, NULL, result_zero, NULL, NULL},
    {"read", "kN", 0, run_read, NULL, result_bytes, NULL, NULL},
    {"pread", "kNO", 0, run_read, try_read, result_bytes, NULL, NULL},
    {"readinto", "kW", 0, run_read, NULL, result_int, NULL, NULL},
    {"preadinto", "kWO", 0, run_read, try_read, result_int, NULL, NULL},
    {"preadv", "kVoi", 0, run_preadv, NULL, result_int, NULL, NULL},
    {"write", "kb", 0, run_write, NULL, result_int, NULL, NULL},
    {"pwrite", "kbO", 0, run_write, NULL, result_int, NULL, NULL},
    {"pwritev", "kvoi", 0, run_pwritev, NULL, result_int, NULL, NULL},
    {"stat", "xDi", 0, run_stat, NULL, result_stat, NULL, NULL},
    {"fstat", "k", 0, run_stat, NULL, result_stat, NULL, NULL},
    {"unlink", "pD", 0, run_unlink, NULL, result_zero, NULL, NULL},
    {"rmdir", "pD", AT_REMOVEDIR, run_unlink, NULL, result_zero, NULL, NULL},
    {"ftruncate", "kO", 0, run_truncate, NULL, result_zero, NULL, NULL},
    {"truncate", "xO", 0, run_truncate, NULL, result_zero, NULL, NULL},
    {"fsync", "f", 0, run_fsync, NULL, result_zero, NULL, NULL},
    {"fdatasync", "f", 0, run_fdatasync, NULL, result_zero, NULL, NULL},
    {"mkdir", "pmD", 0, run_mkdir, NULL, result_zero, NULL, NULL},
    {"rename", "pPDE", 0, run_rename, NULL, result_zero, NULL, NULL},
    {"chmod", "xmDi", 0, run_chmod, NULL, result_zero, NULL, NULL},
    {"utime", "xtDi", 0, run_utime, NULL, result_zero, NULL, NULL},
    {"readlink", "pD", 0, run_readlink, NULL, result_path, NULL, NULL},
    {"symlink", "pPD", 0, run_symlink, NULL, result_zero, NULL, NULL},
    {"link", "pPDEi", 0, run_link, NULL, result_zero, NULL, NULL},
    {"realpath", "p", 0, run_realpath, NULL, result_path, NULL, NULL},
    {"scandir", "p", READDIR_TYPES, run_readdir, NULL, result_entries, NULL, NULL},
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
