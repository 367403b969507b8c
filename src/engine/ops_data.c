/* ops_data.c: operations on file data: reads, writes, truncate, seek,
 * sendfile, copy_file_range, readahead, fallocate, fadvise, load,
 * slurp, and the polling thread's try of a read. */
#define _GNU_SOURCE
#include "ops_run.h"
#include "inline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
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

/* write_close: the last flush of a buffered file and its close, one
 * request instead of two round trips (W2a: the close of a file truncated by
 * O_TRUNC is ext4's auto_da_alloc flush; the write before it need not be a
 * hand-off of its own).  The whole buffer goes out at the file position, as
 * the flush's loop of writes would put it; the fd is closed whatever
 * happened, as aclose() closes it after a failed flush.  The result: the
 * bytes written, or the first error (a write's before close's). */
void run_write_close(Request *r)
{
    int64_t done = 0;
    int err = 0;
    while (done < r->length) {
        ssize_t n = write(r->fd, r->data + done, (size_t)(r->length - done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {   /* 0: no progress possible, as the flush's EIO */
            err = n < 0 ? errno : EIO;
            break;
        }
        done += n;
    }
    /* close(2) releases the fd even when it fails (EINTR included) */
    if (close(r->fd) < 0 && !err)
        err = errno;
    r->result = err ? -err : done;
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

int lx_fd_kind(Request *r)
{
    if (!r->fd_kind) {
        int fl = fcntl(r->fd, F_GETFL);
        r->fd_kind = fl < 0 ? LX_FD_BAD : (fl & O_DIRECT) ? LX_FD_DIRECT : LX_FD_BUFFERED;
    }
    return r->fd_kind;
}

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
    if (r->offset < 0 || lx_fd_kind(r) != LX_FD_BUFFERED)
        return 0;
    /* A read of nothing: pread(2) itself, which never waits for 0 bytes
     * and fails on a directory (EISDIR: the worker's pread reports it),
     * where preadv2 of an empty iovec returns 0 without looking. */
    if (r->length == 0) {
        if (pread(r->fd, r->data, 0, r->offset) < 0)
            return 0;
        r->result = 0;
        return 1;
    }
    n = lx_try_preadv2(r->fd, &iov, 1, r->offset, RWF_NOWAIT);
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

/* ---- sendfile, copy_file_range, readahead, fallocate, fadvise, load ---- */

#define COPY_CHUNK (128 * 1024)

/* What sendfile(2) says when it cannot move data between this pair of fds
 * (a socket or a pipe as in_fd, an O_APPEND out_fd...): IO::AIO then copies
 * with read and write. */
static int sendfile_refused(int err)
{
    return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP || err == ENOTSOCK
           || err == EXDEV || err == ESPIPE;
}

/* Write all n bytes unless out_fd stops taking them: how many it took. */
static ssize_t write_all(int fd, const char *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(fd, buf + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;   /* a write that takes nothing and says no error */
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)k;
    }
    return (ssize_t)done;
}

/* sendfile's copy by hand: up to length bytes from in_fd (at *offset, or
 * at its file position, which moves as sendfile's would) to out_fd. */
static int64_t copy_by_read_write(int out_fd, int in_fd, const int64_t *offset, int64_t length)
{
    char *buf = malloc(length < COPY_CHUNK ? (size_t)(length ? length : 1) : COPY_CHUNK);
    off_t pos = offset ? *offset : lseek(in_fd, 0, SEEK_CUR);   /* -1: not seekable */
    int64_t done = 0;
    int err = 0;
    if (!buf)
        return -ENOMEM;
    while (done < length) {
        size_t want = length - done < COPY_CHUNK ? (size_t)(length - done) : COPY_CHUNK;
        ssize_t n = pos >= 0 ? pread(in_fd, buf, want, pos + done) : read(in_fd, buf, want);
        ssize_t w;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? errno : 0;
            break;
        }
        /* a pipe's or socket's bytes read and not written are lost, as
         * they would be for any reader that stops */
        w = write_all(out_fd, buf, (size_t)n);
        if (w < 0) {
            err = errno;
            break;
        }
        done += w;
        if (w < n)
            break;
    }
    free(buf);
    if (!offset && pos >= 0 && done)
        lseek(in_fd, pos + done, SEEK_SET);
    return done || !err ? done : -err;
}

/* Whether an offset says "at the file position": None, which the aio
 * face's letters make -1 (refusing negative offsets), and the os face's
 * LX_AT_POS (passing negative ones to the kernel). */
static int at_pos(const Request *r, int64_t off)
{
    return off == LX_AT_POS || (r->face == FACE_AIO && off < 0);
}

void run_sendfile(Request *r)
{
    off_t off = r->offset;
    ssize_t n = sendfile(r->fd, r->io.x.fd2, at_pos(r, r->offset) ? NULL : &off, (size_t)r->length);
    if (n >= 0) {
        r->result = n;
        return;
    }
    r->result = -errno;
    /* the os twin is os.sendfile: sendfile(2)'s answer, whatever it is */
    if (r->face == FACE_AIO && sendfile_refused(errno))
        r->result = copy_by_read_write(r->fd, r->io.x.fd2, r->offset < 0 ? NULL : &r->offset,
                                       r->length);
}

void run_copy_file_range(Request *r)
{
    loff_t in = r->offset, out = r->io.x.offset2;
    SYSCALL_RESULT(r, copy_file_range(r->fd, at_pos(r, r->offset) ? NULL : &in, r->io.x.fd2,
                                      at_pos(r, r->io.x.offset2) ? NULL : &out, (size_t)r->length, 0));
}

void run_readahead(Request *r) { SYSCALL_RESULT(r, readahead(r->fd, r->offset, (size_t)r->length)); }

void run_allocate(Request *r) { SYSCALL_RESULT(r, fallocate(r->fd, r->flags, r->offset, r->length)); }

/* posix_fallocate and posix_fadvise return the error instead of setting errno. */
void run_posix_fallocate(Request *r) { r->result = -posix_fallocate(r->fd, r->offset, r->length); }

void run_fadvise(Request *r) { r->result = -posix_fadvise(r->fd, r->offset, r->length, r->flags); }

/* aio_load: the whole file into r->heap; the result side moves it into the
 * caller's bytearray (resizing one needs the GIL: results.c). */
void run_load(Request *r)
{
    int fd = openat(r->dir_fd, path_of(r->path), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r->result = -errno;
        return;
    }
    r->offset = 0;
    if (slurp_into_heap(r, fd, -1) < 0) {
        r->result = -errno;
        free(r->heap);
        r->heap = NULL;
    }
    close(fd);
}
