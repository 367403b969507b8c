/* ops_copy.c: the data of a file moved inside the kernel, in one request.
 *
 * copy_data(in_fd, out_fd, length, flags): a worker moves the whole of it
 * (the tree tools' copy of one file is this one request, not a loop of
 * reads and writes through Python).  It tries, in order: FICLONE (a
 * reflink: no data moves at all, where the filesystem shares extents),
 * copy_file_range(2) (in the kernel, offloaded by NFS/CIFS/XFS...),
 * sendfile(2), then read/write through a buffer.  Each step that fails
 * with "not supported here" (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP...) before
 * any byte moved falls through to the next.  Both fds' offsets are used
 * and advanced, as for a plain loop of read/write.
 *
 * The result is the number of bytes copied; r->mode says how (LX_COPY_BY_*,
 * the converter makes it (bytes, how)).  With LX_COPY_META_* flags the
 * metadata of in_fd (its fstat) is applied to out_fd afterwards: mode,
 * owner (EPERM ignored: an unprivileged copy keeps its own owner), times to
 * the nanosecond, in that order, so the times are the last thing touched. */
#define _GNU_SOURCE
#include "ops_run.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

enum { LX_COPY_BY_NONE, LX_COPY_BY_CLONE, LX_COPY_BY_RANGE, LX_COPY_BY_SENDFILE, LX_COPY_BY_RW };
#define LX_COPY_META_MODE 1
#define LX_COPY_META_OWNER 2
#define LX_COPY_META_TIMES 4
#define LX_COPY_NO_CLONE 8

#define CHUNK ((size_t)1 << 30)   /* per copy_file_range/sendfile call */

static int unsupported(int err)
{
    return err == EXDEV || err == EINVAL || err == ENOSYS || err == EOPNOTSUPP
        || err == ENOTSUP || err == ETXTBSY || err == EBADF || err == EPERM;
}

/* The data: bytes copied (>= 0) or -errno. */
static int64_t copy_data(Request *r, int in, int out, int64_t length)
{
    int64_t done = 0;
    ssize_t n;
    char *buf;
    /* A reflink shares the whole file: only for a copy to the end, from
     * the start, into an empty file (the tree tools' case). */
    if (length < 0 && !(r->flags & LX_COPY_NO_CLONE)
        && lseek(in, 0, SEEK_CUR) == 0 && lseek(out, 0, SEEK_END) == 0) {
        if (ioctl(out, FICLONE, in) == 0) {
            struct stat st;
            r->mode = LX_COPY_BY_CLONE;
            if (fstat(in, &st) < 0)
                return -errno;
            /* the fds' offsets as a copy loop would leave them */
            lseek(in, st.st_size, SEEK_SET);
            lseek(out, st.st_size, SEEK_SET);
            return st.st_size;
        }
    }
    r->mode = LX_COPY_BY_RANGE;
    for (;;) {
        size_t want = length < 0 || length - done > (int64_t)CHUNK ? CHUNK : (size_t)(length - done);
        if (!want)
            return done;
        n = copy_file_range(in, NULL, out, NULL, want, 0);
        if (n > 0) {
            done += n;
            continue;
        }
        if (n == 0) {
            /* 0 at the end of the file, but also from some filesystems
             * (procfs, sysfs) that do not support it: go on with sendfile
             * if nothing moved, whose 0 is a real end */
            if (done)
                return done;
            break;
        }
        if (errno == EINTR)
            continue;
        if (done || !unsupported(errno))
            return -errno;
        break;
    }
    r->mode = LX_COPY_BY_SENDFILE;
    for (;;) {
        size_t want = length < 0 || length - done > (int64_t)CHUNK ? CHUNK : (size_t)(length - done);
        if (!want)
            return done;
        n = sendfile(out, in, NULL, want);
        if (n > 0) {
            done += n;
            continue;
        }
        if (n == 0)
            return done;
        if (errno == EINTR)
            continue;
        if (done || !unsupported(errno))
            return -errno;
        break;
    }
    r->mode = LX_COPY_BY_RW;
    if (!(buf = malloc(1 << 20)))
        return -ENOMEM;
    for (;;) {
        size_t want = length < 0 || length - done > (1 << 20) ? (1 << 20) : (size_t)(length - done);
        ssize_t w = 0;
        if (!want)
            break;
        n = read(in, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                done = -errno;
            break;
        }
        while (w < n) {
            ssize_t k = write(out, buf + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                free(buf);
                return -errno;
            }
            w += k;
        }
        done += n;
    }
    free(buf);
    return done;
}

void run_copy_data(Request *r)
{
    int in = r->fd, out = r->dir_fd;   /* the row's letters: k (in), D (out) */
    int meta = r->flags & (LX_COPY_META_MODE | LX_COPY_META_OWNER | LX_COPY_META_TIMES);
    struct stat st;
    int64_t n;
    r->mode = LX_COPY_BY_NONE;
    if (out < 0) {                     /* None: AT_FDCWD is no fd to write to */
        r->result = -EBADF;
        return;
    }
    n = copy_data(r, in, out, r->length);
    if (n < 0 || !meta) {
        r->result = n;
        return;
    }
    if (fstat(in, &st) < 0) {
        r->result = -errno;
        return;
    }
    if ((meta & LX_COPY_META_OWNER) && fchown(out, st.st_uid, st.st_gid) < 0 && errno != EPERM) {
        r->result = -errno;
        return;
    }
    /* after chown: it clears set-user-ID and set-group-ID bits */
    if ((meta & LX_COPY_META_MODE) && fchmod(out, st.st_mode & 07777) < 0) {
        r->result = -errno;
        return;
    }
    if (meta & LX_COPY_META_TIMES) {
        struct timespec ts[2] = {st.st_atim, st.st_mtim};
        if (futimens(out, ts) < 0) {
            r->result = -errno;
            return;
        }
    }
    r->result = n;
}
