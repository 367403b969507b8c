/* ops_paths.c: operations on names: open, stat, unlink, mkdir, rename,
 * chmod, utime, links, realpath. */
#define _GNU_SOURCE
#include "ops_run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

const char *lx_at_path(Request *r, char **owned)
{
    const char *path = path_of(r->path);
    size_t n;
    *owned = NULL;
    if (r->dir_fd == AT_FDCWD || path[0] == '/')
        return path;
    n = strlen(path) + 32;
    if (!(*owned = malloc(n)))
        return NULL;
    snprintf(*owned, n, "/proc/self/fd/%d/%s", r->dir_fd, path);
    return *owned;
}

/* ---- undo ---- */

void undo_open(Request *r) { close((int)r->result); }

void run_open(Request *r)
{
    /* O_CLOEXEC as os.open does (PEP 446). */
    SYSCALL_RESULT(r, openat(r->dir_fd, path_of(r->path), r->flags | O_CLOEXEC, r->mode));
}

/* open + fstat in one pass: a file object needs both, and the fstat must
 * not block the caller's thread (NFS, FUSE). */
void run_open_stat(Request *r)
{
    run_open(r);
    if (r->result >= 0 && fstat((int)r->result, &r->io.st) < 0) {
        int err = errno;
        close((int)r->result);
        r->result = -err;
    }
}

void run_close(Request *r)
{
    /* close(2): the fd is gone even on EINTR; reporting it is all we do. */
    SYSCALL_RESULT(r, close(r->fd));
}

void run_stat(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, fstatat(r->dir_fd, path_of(r->path), &r->io.st, r->flags));
    else
        SYSCALL_RESULT(r, fstat(r->fd, &r->io.st));
}

void run_unlink(Request *r) { SYSCALL_RESULT(r, unlinkat(r->dir_fd, path_of(r->path), r->flags)); }

void run_mkdir(Request *r) { SYSCALL_RESULT(r, mkdirat(r->dir_fd, path_of(r->path), r->mode)); }

void run_rename(Request *r)
{
    SYSCALL_RESULT(r, renameat(r->dir_fd, path_of(r->path), r->dir_fd2, path_of(r->path2)));
}

void run_chmod(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, fchmodat(r->dir_fd, path_of(r->path), r->mode, r->flags));
    else
        SYSCALL_RESULT(r, fchmod(r->fd, r->mode));
}

void run_utime(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, utimensat(r->dir_fd, path_of(r->path), r->io.times, r->flags));
    else
        SYSCALL_RESULT(r, futimens(r->fd, r->io.times));
}

void run_symlink(Request *r)
{
    SYSCALL_RESULT(r, symlinkat(path_of(r->path), r->dir_fd2, path_of(r->path2)));
}

void run_link(Request *r)
{
    SYSCALL_RESULT(r, linkat(r->dir_fd, path_of(r->path), r->dir_fd2, path_of(r->path2), r->flags));
}

void run_readlink(Request *r)
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

void run_realpath(Request *r)
{
    char *owned;
    const char *path = lx_at_path(r, &owned);
    free(r->heap);
    r->heap = path ? realpath(path, NULL) : (errno = ENOMEM, NULL);
    r->result = r->heap ? (int64_t)strlen(r->heap) : -errno;
    free(owned);
}

/* ---- IO::AIO's rest: statvfs, chown, access, mknod, renameat2 ---- */

void run_statvfs(Request *r)
{
    int fd;
    if (!r->path) {
        SYSCALL_RESULT(r, fstatvfs(r->fd, &r->io.vfs));
        return;
    }
    if (r->dir_fd == AT_FDCWD) {
        SYSCALL_RESULT(r, statvfs(path_of(r->path), &r->io.vfs));
        return;
    }
    /* no statvfsat: an O_PATH fd of the path (fstatfs(2) takes one) */
    if ((fd = openat(r->dir_fd, path_of(r->path), O_PATH | O_CLOEXEC)) < 0) {
        r->result = -errno;
        return;
    }
    SYSCALL_RESULT(r, fstatvfs(fd, &r->io.vfs));
    close(fd);
}

void run_chown(Request *r)
{
    if (r->path)
        SYSCALL_RESULT(r, fchownat(r->dir_fd, path_of(r->path), r->io.owner.uid, r->io.owner.gid,
                                   r->flags));
    else
        SYSCALL_RESULT(r, fchown(r->fd, r->io.owner.uid, r->io.owner.gid));
}

/* os.access: True or False, never an error (glibc's faccessat uses
 * faccessat2(2), which honours AT_EACCESS and AT_SYMLINK_NOFOLLOW). */
void run_access(Request *r)
{
    r->result = faccessat(r->dir_fd, path_of(r->path), (int)r->mode, r->flags) == 0;
}

void run_mknod(Request *r)
{
    SYSCALL_RESULT(r, mknodat(r->dir_fd, path_of(r->path), r->mode, r->io.dev));
}

void run_rename2(Request *r)
{
    SYSCALL_RESULT(r, renameat2(r->dir_fd, path_of(r->path), r->dir_fd2, path_of(r->path2),
                                (unsigned)r->flags));
}
