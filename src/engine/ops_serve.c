/* ops_serve.c: what a file server asks of the engine (linuxaio.starlette):
 * resolve a request's path under a served directory and stat it, in one
 * request. */
#define _GNU_SOURCE
#include "ops_run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437          /* the same number on every architecture (5.6) */
#endif
#include "inline.h"

/* openat2(2)'s RESOLVE_CACHED (5.12; an older kernel refuses it with
 * EINVAL: the try then leaves the lookup to a worker), by value: not in
 * every libc's headers. */
#define RESOLVE_CACHED_BIT 0x20

/* openat2(2)'s argument (linux/openat2.h, not in every libc's headers). */
struct lx_open_how {
    unsigned long long flags, mode, resolve;
};

/* serve_lookup(directory, path, resolve): open the directory (O_PATH),
 * openat2(its fd, path) with O_PATH and the caller's RESOLVE_* bits
 * (RESOLVE_BENEATH: no "..", absolute path or symlink may leave the
 * directory; the kernel checks each step, so no rename race lets it out),
 * fstat the result and read back the path the kernel resolved
 * (/proc/self/fd: what realpath(3) says, without its per-component
 * lstats).  The directory is opened afresh each time, as a server that
 * stats by name sees a directory replaced under it (a deploy's symlink
 * switch) at once, and no fd is held between requests.  Result: the
 * path's length, the path in heap, the stat in io.st; or -errno (EXDEV:
 * the path would have left the directory; ENOSYS: a kernel before 5.6). */
void run_serve_lookup(Request *r)
{
    int dir = openat(r->dir_fd, path_of(r->path), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        r->result = -errno;
        return;
    }
    struct lx_open_how how = {
        .flags = O_PATH | O_CLOEXEC, .mode = 0, .resolve = (unsigned)r->flags,
    };
    long fd = syscall(SYS_openat2, dir, path_of(r->path2), &how, sizeof how);
    int err = errno;
    close(dir);
    if (fd < 0) {
        r->result = -err;
        return;
    }
    /* fstat of an O_PATH fd: allowed since 3.6 */
    if (fstat((int)fd, &r->io.st) < 0) {
        r->result = -errno;
        close((int)fd);
        return;
    }
    char link[40];
    snprintf(link, sizeof link, "/proc/self/fd/%ld", fd);
    char *buf = malloc(PATH_MAX);
    ssize_t n = buf ? readlink(link, buf, PATH_MAX) : -1;
    err = buf ? errno : ENOMEM;
    close((int)fd);
    if (n < 0 || n >= PATH_MAX) {
        free(buf);
        r->result = n < 0 ? -err : -ENAMETOOLONG;
        return;
    }
    r->heap = buf;
    r->result = n;
}

/* serve_lookup's try, for an inline await (inline.c; contract of ops_try.c:
 * 1 done, 0 untouched, errors always left to the worker's run): the same
 * steps with RESOLVE_CACHED added to both walks (the dentry cache only:
 * EAGAIN where a directory would be read from disk), the attributes the
 * kernel holds, a local file system; /proc/self/fd's answer is in memory.
 * A static file server looks up the same few names all day: each lookup
 * then costs no thread hop. */
int try_serve_lookup(Request *r)
{
    struct lx_open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_CACHED_BIT};
    struct stat st;
    char link[40];
    long dir, fd;
    ssize_t n;
    if (!lx_inline_mounts_ok(LX_MOUNTS_FOR_STAT))
        return 0;   /* a mount that may block a getattr is present */
    if ((dir = syscall(SYS_openat2, r->dir_fd, path_of(r->path), &how, sizeof how)) < 0)
        return 0;
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = (unsigned)r->flags | RESOLVE_CACHED_BIT;
    fd = syscall(SYS_openat2, (int)dir, path_of(r->path2), &how, sizeof how);
    close((int)dir);
    if (fd < 0)
        return 0;
    if (lx_inline_fstat((int)fd, &st) < 0) {
        close((int)fd);
        return 0;
    }
    snprintf(link, sizeof link, "/proc/self/fd/%ld", fd);
    char *buf = malloc(PATH_MAX);
    n = buf ? readlink(link, buf, PATH_MAX) : -1;
    close((int)fd);
    if (n < 0 || n >= PATH_MAX) {
        free(buf);
        return 0;
    }
    r->io.st = st;
    r->heap = buf;
    r->result = n;
    return 1;
}
