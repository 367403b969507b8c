/* ops_data.c: operations on file data: reads, writes, truncate, seek,
 * slurp, and the polling thread's try of a read. */
#define _GNU_SOURCE
#include "ops_run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

void run_read(Request *r)
{
    int64_t done = r->io.nowait_done;   /* by try_read, which stopped short */
    if (r->offset < 0)
        SYSCALL_RESULT(r, read(r->fd, r->data, r->length));
    else
        SYSCALL_RESULT(r, pread(r->fd, r->data + done, r->length - done, r->offset + done));
    if (done)   /* as read(2) after a partial transfer: the bytes, not the error */
        r->result = r->result < 0 ? done : r->result + done;
}

void run_write(Request *r)
{
    if (r->offset < 0)
        SYSCALL_RESULT(r, write(r->fd, r->data, r->length));
    else
        SYSCALL_RESULT(r, pwrite(r->fd, r->data, r->length, r->offset));
}

void run_preadv(Request *r)
{
    SYSCALL_RESULT(r, preadv2(r->fd, r->rare->iov, r->rare->niov, r->offset, r->flags));
}

void run_pwritev(Request *r)
{
    SYSCALL_RESULT(r, pwritev2(r->fd, r->rare->iov, r->rare->niov, r->offset, r->flags));
}

void run_truncate(Request *r)
{
    if (r->path) {   /* no truncateat: through the dir fd of a (wd, relpath) */
        char *owned;
        const char *path = lx_at_path(r, &owned);
        SYSCALL_RESULT(r, path ? truncate(path, r->offset) : (errno = ENOMEM, -1));
        free(owned);
    } else
        SYSCALL_RESULT(r, ftruncate(r->fd, r->offset));
}

void run_seek(Request *r)
{
    off_t pos = lseek(r->fd, r->offset, r->flags);
    r->result = pos < 0 ? -errno : pos;
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
void run_slurp(Request *r)
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
int try_read(Request *r)
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
