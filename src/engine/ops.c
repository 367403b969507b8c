/* ops.c: what each operation does in a worker (no GIL, no Python
 * objects), a poller's tries, the undo of an effect, and the table. */
#define _GNU_SOURCE
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    struct timespec ts = {(time_t)r->io.seconds,
                          (long)((r->io.seconds - (time_t)r->io.seconds) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
        ;
    r->result = 0;
}

static void run_open(Request *r)
{
    /* O_CLOEXEC as os.open does (PEP 446). */
    SYSCALL_RESULT(r, openat(r->dir_fd, path_of(r->path), r->flags | O_CLOEXEC, r->mode));
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
        SYSCALL_RESULT(r, fstatat(r->dir_fd, path_of(r->path), &r->io.st, r->flags));
    else
        SYSCALL_RESULT(r, fstat(r->fd, &r->io.st));
}

static void run_unlink(Request *r) { SYSCALL_RESULT(r, unlinkat(r->dir_fd, path_of(r->path), r->flags)); }

static void run_truncate(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, truncate(path_of(r->path), r->offset));
    else
        SYSCALL_RESULT(r, ftruncate(r->fd, r->offset));
}

static void run_seek(Request *r)
{
    off_t pos = lseek(r->fd, r->offset, r->flags);
    r->result = pos < 0 ? -errno : pos;
}

static void run_fsync(Request *r) { SYSCALL_RESULT(r, fsync(r->fd)); }
static void run_fdatasync(Request *r) { SYSCALL_RESULT(r, fdatasync(r->fd)); }

static void run_mkdir(Request *r) { SYSCALL_RESULT(r, mkdirat(r->dir_fd, path_of(r->path), r->mode)); }

static void run_rename(Request *r)
{
    SYSCALL_RESULT(r, renameat(r->dir_fd, path_of(r->path), r->dir_fd2, path_of(r->path2)));
}

static void run_chmod(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, fchmodat(r->dir_fd, path_of(r->path), r->mode, r->flags));
    else
        SYSCALL_RESULT(r, fchmod(r->fd, r->mode));
}

static void run_utime(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, utimensat(r->dir_fd, path_of(r->path), r->io.times, r->flags));
    else
        SYSCALL_RESULT(r, futimens(r->fd, r->io.times));
}

static void run_symlink(Request *r)
{
    SYSCALL_RESULT(r, symlinkat(path_of(r->path), r->dir_fd2, path_of(r->path2)));
}

static void run_link(Request *r)
{
    SYSCALL_RESULT(r, linkat(r->dir_fd, path_of(r->path), r->dir_fd2, path_of(r->path2), r->flags));
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
        n = readlinkat(r->dir_fd, path_of(r->path), r->heap, size);
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
    size_t len = strlen(d->d_name), need = LX_ENTRY_SIZE(len);
    lx_packed_entry *e;
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
    e = (lx_packed_entry *)(r->heap + r->result);
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

/* getdents64(2) through the whole directory.  With LX_READDIR_TYPES, every
 * entry's type is known when it leaves the worker: a DT_UNKNOWN one is
 * lstat'ed, and a symlink's target is stat'ed, so is_dir() and friends
 * never need a syscall in the caller's thread. */
static void run_readdir(Request *r)
{
    char buf[32768];
    size_t cap = 0;
    int dfd = openat(r->dir_fd, path_of(r->path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
            if (r->flags & LX_READDIR_TYPES) {
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
    int fd = openat(r->dir_fd, path_of(r->path), O_RDONLY | O_CLOEXEC);
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

/* ---- the table: ops.def, one row per operation ---- */

const lx_op lx_ops[LX_NOPS] = {
#define OP(id, aio, aio_args, os, os_args, flags, run, try_now, result, undo, prep, caps, doc) \
    [LX_OP_##id] = {#id, {{aio, aio_args}, {os, os_args}}, flags, run, try_now, result, undo, prep, caps, doc},
#include "ops.def"
#undef OP
};

int lx_op_index(const char *name, int *face)
{
    for (int i = 0; i < lx_nops; i++)
        for (int f = 0; f < LX_NFACES; f++)
            if (lx_ops[i].face[f].name && !strcmp(lx_ops[i].face[f].name, name)) {
                *face = f;
                return i;
            }
    return -1;
}

/* A face's letters must be ones args.c knows, in an order it can parse. */
static int check_letters(const lx_face *f)
{
    const char *a = f->args;
    int nu = 0;
    for (int i = 0; a[i]; i++) {
        const char *why = NULL;
        if (!strchr(LX_ARG_LETTERS, a[i]))
            why = "an unknown letter";
        else if ((a[i] == 'w' || a[i] == 'r') && a[i + 1] != 'd')
            why = "a buffer without its offset (d)";
        else if (a[i] == 'd' && (i == 0 || (a[i - 1] != 'w' && a[i - 1] != 'r')))
            why = "an offset (d) without its buffer";
        else if (a[i] == 'u' && ++nu > 2)
            why = "more than two times (u)";
        if (why) {
            PyErr_Format(PyExc_SystemError, "linuxaio: operation %s, letters \"%s\": %s at %d",
                         f->name, a, why, i);
            return -1;
        }
    }
    return 0;
}

int lx_ops_init(void)
{
    for (int i = 0; i < lx_nops; i++) {
        if (!lx_ops[i].run || !lx_ops[i].result) {
            PyErr_Format(PyExc_SystemError, "linuxaio: operation %d has no run or result function", i);
            return -1;
        }
        for (int f = 0; f < LX_NFACES; f++)
            if (lx_ops[i].face[f].name && check_letters(&lx_ops[i].face[f]) < 0)
                return -1;
    }
    return lx_results_init();
}
