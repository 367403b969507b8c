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
 * the nanosecond, in that order, so the times are the last thing touched.
 * LX_COPY_META_XATTRS copies the extended attributes too, after the owner
 * (a chown drops security.capability) and before the mode (setting a
 * user.* attribute needs write permission on the file), with the errors
 * shutil.copystat passes over passed over here.
 *
 * copy_xattrs(src, dst, flags): the extended attributes alone, by path
 * (shutil.copystat, copytree's directories; AT_SYMLINK_NOFOLLOW: the
 * symlinks' own), in one request instead of a list, get and set each.
 *
 * copy_file(src, dst, flags): IO::AIO's aio_copy in one request: open src
 * (a regular file, else EISDIR or EINVAL), create dst 0200, copy_data,
 * the metadata flags asks for, close both; dst is removed if any of it
 * fails.  The fds never leave the worker, so a cancelled aio_copy cannot
 * leak them: one not started does nothing, one running finishes. */
#define _GNU_SOURCE
#include "ops_run.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

enum { LX_COPY_BY_NONE, LX_COPY_BY_CLONE, LX_COPY_BY_RANGE, LX_COPY_BY_SENDFILE, LX_COPY_BY_RW };
#define LX_COPY_META_MODE 1
#define LX_COPY_META_OWNER 2
#define LX_COPY_META_TIMES 4
#define LX_COPY_NO_CLONE 8
#define LX_COPY_META_XATTRS 16
/* EACCES from a get or set is passed over too (shutil's, from 3.12 on) */
#define LX_XATTR_IGNORE_EACCES 32

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

/* ---- extended attributes ---- */

/* One end of an xattr copy: an fd, or a path (and whether its symlink is
 * the one meant). */
typedef struct {
    int fd;
    const char *path;
    int nofollow;
} xattr_end;

static ssize_t x_list(const xattr_end *e, char *buf, size_t n)
{
    if (!e->path)
        return flistxattr(e->fd, buf, n);
    return e->nofollow ? llistxattr(e->path, buf, n) : listxattr(e->path, buf, n);
}

static ssize_t x_get(const xattr_end *e, const char *name, char *buf, size_t n)
{
    if (!e->path)
        return fgetxattr(e->fd, name, buf, n);
    return e->nofollow ? lgetxattr(e->path, name, buf, n) : getxattr(e->path, name, buf, n);
}

static int x_set(const xattr_end *e, const char *name, const char *v, size_t n)
{
    if (!e->path)
        return fsetxattr(e->fd, name, v, n, 0);
    return e->nofollow ? lsetxattr(e->path, name, v, n, 0) : setxattr(e->path, name, v, n, 0);
}

/* The names (name NULL) or one value into *buf, *cap bytes (0: none yet),
 * grown as needed: its size, or -errno. */
static ssize_t x_fetch(const xattr_end *e, const char *name, char **buf, size_t *cap)
{
    for (;;) {
        ssize_t n;
        char *nb;
        if (*cap) {
            n = name ? x_get(e, name, *buf, *cap) : x_list(e, *buf, *cap);
            if (n >= 0)
                return n;
            if (errno != ERANGE)
                return -errno;
        }
        /* sized first, or grown since it was: room to spare */
        n = name ? x_get(e, name, NULL, 0) : x_list(e, NULL, 0);
        if (n < 0)
            return -errno;
        if (!(nb = realloc(*buf, (size_t)n + 4096)))
            return -ENOMEM;
        *buf = nb;
        *cap = (size_t)n + 4096;
    }
}

/* shutil._copyxattr: a list that fails with ENOTSUP, ENODATA or EINVAL
 * means none; a get or set that fails with EPERM, ENOTSUP, ENODATA or
 * EINVAL (and EACCES, if flags says so) skips that attribute.  0 or
 * -errno. */
static int copy_xattrs(const xattr_end *in, const xattr_end *out, int flags)
{
    char small[256], *names = small, *value = NULL;
    size_t ncap = 0, vcap = 0;
    /* most files have none: one syscall into the stack for them */
    ssize_t n = x_list(in, small, sizeof small);
    int rc = 0;
    if (n < 0)
        n = -errno;
    if (n == -ERANGE) {
        names = NULL;       /* x_fetch grows its buffer with realloc */
        n = x_fetch(in, NULL, &names, &ncap);
    }
    if (n < 0) {
        rc = n == -ENOTSUP || n == -ENODATA || n == -EINVAL ? 0 : (int)n;
        goto out;
    }
    for (ssize_t off = 0; off < n;) {
        const char *name = names + off;
        ssize_t v;
        int err = 0;
        off += (ssize_t)strlen(name) + 1;
        v = x_fetch(in, name, &value, &vcap);
        if (v < 0)
            err = (int)-v;
        else if (x_set(out, name, value, (size_t)v) < 0)
            err = errno;
        if (err && !(err == EPERM || err == ENOTSUP || err == ENODATA || err == EINVAL
                     || (err == EACCES && (flags & LX_XATTR_IGNORE_EACCES)))) {
            rc = -err;
            break;
        }
    }
out:
    if (names != small)
        free(names);
    free(value);
    return rc;
}

/* ---- metadata ---- */

/* st's owner (EPERM passed over), xattrs, mode and times onto out, as
 * flags asks: 0 or -errno. */
static int apply_meta(int in, const struct stat *st, int out, int flags)
{
    if ((flags & LX_COPY_META_OWNER) && fchown(out, st->st_uid, st->st_gid) < 0 && errno != EPERM)
        return -errno;
    if (flags & LX_COPY_META_XATTRS) {
        xattr_end from = {in, NULL, 0}, to = {out, NULL, 0};
        int rc = copy_xattrs(&from, &to, flags);
        if (rc < 0)
            return rc;
    }
    /* after chown: it clears set-user-ID and set-group-ID bits */
    if ((flags & LX_COPY_META_MODE) && fchmod(out, st->st_mode & 07777) < 0)
        return -errno;
    if (flags & LX_COPY_META_TIMES) {
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
        if (futimens(out, ts) < 0)
            return -errno;
    }
    return 0;
}

#define LX_COPY_META_ALL (LX_COPY_META_MODE | LX_COPY_META_OWNER | LX_COPY_META_TIMES | LX_COPY_META_XATTRS)

void run_copy_data(Request *r)
{
    int in = r->fd, out = r->dir_fd;   /* the row's letters: k (in), D (out) */
    struct stat st;
    int64_t n;
    int rc;
    r->mode = LX_COPY_BY_NONE;
    if (out < 0) {                     /* None: AT_FDCWD is no fd to write to */
        r->result = -EBADF;
        return;
    }
    n = copy_data(r, in, out, r->length);
    if (n < 0 || !(r->flags & LX_COPY_META_ALL)) {
        r->result = n;
        return;
    }
    if (fstat(in, &st) < 0) {
        r->result = -errno;
        return;
    }
    rc = apply_meta(in, &st, out, r->flags);
    r->result = rc < 0 ? rc : n;
}

/* path, or /proc/self/fd/N/path for one relative to a dir fd (Linux has no
 * *at() xattr calls before 6.13): what to free() in *owned. */
static const char *at_path(int dir_fd, const char *path, char **owned)
{
    size_t n;
    *owned = NULL;
    if (dir_fd == AT_FDCWD || path[0] == '/')
        return path;
    n = strlen(path) + 32;
    if (!(*owned = malloc(n)))
        return NULL;
    snprintf(*owned, n, "/proc/self/fd/%d/%s", dir_fd, path);
    return *owned;
}

void run_copy_xattrs(Request *r)
{
    char *own1, *own2;
    int nofollow = (r->flags & AT_SYMLINK_NOFOLLOW) != 0;
    xattr_end in = {-1, at_path(r->dir_fd, path_of(r->path), &own1), nofollow};
    xattr_end out = {-1, at_path(r->dir_fd2, path_of(r->path2), &own2), nofollow};
    r->result = !in.path || !out.path ? -ENOMEM : copy_xattrs(&in, &out, r->flags);
    free(own1);
    free(own2);
}

void run_copy_file(Request *r)
{
    const char *dst = path_of(r->path2);
    struct stat st;
    int64_t n;
    int in, out, rc = 0;
    r->mode = LX_COPY_BY_NONE;
    in = openat(r->dir_fd, path_of(r->path), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (in < 0) {
        r->result = -errno;
        return;
    }
    if (fstat(in, &st) < 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))     /* regular files only, as IO::AIO's */
        rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    if (rc < 0) {
        r->result = rc;
        close(in);
        return;
    }
    out = openat(r->dir_fd2, dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0200);
    if (out < 0) {
        r->result = -errno;
        close(in);
        return;
    }
    n = copy_data(r, in, out, -1);
    if (n >= 0)
        rc = apply_meta(in, &st, out, r->flags);
    close(in);
    if (close(out) < 0 && n >= 0 && !rc)
        rc = -errno;    /* a write-back error (NFS) shows at close */
    if (n < 0 || rc < 0) {
        r->result = n < 0 ? n : rc;
        unlinkat(r->dir_fd2, dst, 0);   /* removed if anything fails (IO::AIO) */
        return;
    }
    r->result = n;
}
