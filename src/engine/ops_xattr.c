/* ops_xattr.c: extended attributes (getxattr(2) and friends).
 *
 * Each takes an fd (the f* call) or a path, whose symlink is followed
 * unless AT_SYMLINK_NOFOLLOW is among the flags (the l* call).  Linux has
 * no *at() form before 6.13, so a path relative to a dir fd goes through
 * /proc/self/fd (lx_at_path).  The attribute's name is in path2 (args.c's
 * X letter). */
#define _GNU_SOURCE
#include "ops_run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/xattr.h>

#define NOFOLLOW(r) ((r)->flags & AT_SYMLINK_NOFOLLOW)

static const char *name_of(Request *r) { return path_of(r->path2); }

/* getxattr or listxattr (name NULL) into buf, by the request's fd or path. */
static ssize_t get_or_list(Request *r, const char *path, char *buf, size_t size)
{
    if (!path)
        return r->path2 ? fgetxattr(r->fd, name_of(r), buf, size) : flistxattr(r->fd, buf, size);
    if (r->path2)
        return NOFOLLOW(r) ? lgetxattr(path, name_of(r), buf, size) : getxattr(path, name_of(r), buf, size);
    return NOFOLLOW(r) ? llistxattr(path, buf, size) : listxattr(path, buf, size);
}

/* The value (or the list of names) into r->heap: its size first, then the
 * bytes, again if it grew in between (ERANGE). */
static void read_into_heap(Request *r)
{
    char *owned = NULL;
    const char *path = NULL;
    if (r->path && !(path = lx_at_path(r, &owned))) {
        r->result = -ENOMEM;
        return;
    }
    for (;;) {
        ssize_t size = get_or_list(r, path, NULL, 0), n;
        if (size < 0) {
            r->result = -errno;
            break;
        }
        free(r->heap);
        if (!(r->heap = malloc(size ? (size_t)size : 1))) {
            r->result = -ENOMEM;
            break;
        }
        n = get_or_list(r, path, r->heap, (size_t)size);
        if (n >= 0) {
            r->result = n;
            break;
        }
        if (errno != ERANGE) {
            r->result = -errno;
            break;
        }
    }
    if (r->result < 0) {
        free(r->heap);
        r->heap = NULL;
    }
    free(owned);
}

void run_getxattr(Request *r) { read_into_heap(r); }

void run_listxattr(Request *r) { read_into_heap(r); }

void run_setxattr(Request *r)
{
    int flags = r->flags & ~AT_SYMLINK_NOFOLLOW;   /* XATTR_CREATE, XATTR_REPLACE */
    char *owned;
    const char *path;
    if (!r->path) {
        SYSCALL_RESULT(r, fsetxattr(r->fd, name_of(r), r->data, (size_t)r->length, flags));
        return;
    }
    if (!(path = lx_at_path(r, &owned))) {
        r->result = -ENOMEM;
        return;
    }
    SYSCALL_RESULT(r, NOFOLLOW(r) ? lsetxattr(path, name_of(r), r->data, (size_t)r->length, flags)
                                  : setxattr(path, name_of(r), r->data, (size_t)r->length, flags));
    free(owned);
}

void run_removexattr(Request *r)
{
    char *owned;
    const char *path;
    if (!r->path) {
        SYSCALL_RESULT(r, fremovexattr(r->fd, name_of(r)));
        return;
    }
    if (!(path = lx_at_path(r, &owned))) {
        r->result = -ENOMEM;
        return;
    }
    SYSCALL_RESULT(r, NOFOLLOW(r) ? lremovexattr(path, name_of(r)) : removexattr(path, name_of(r)));
    free(owned);
}
