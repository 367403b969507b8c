/* ops_sync.c: getting data to the device: fsync, fdatasync, sync, syncfs,
 * sync_file_range, and pathsync (fsync by name: a directory too, which is
 * how a rename in it is made durable). */
#define _GNU_SOURCE
#include "ops_run.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

void run_fsync(Request *r) { SYSCALL_RESULT(r, fsync(r->fd)); }
void run_fdatasync(Request *r) { SYSCALL_RESULT(r, fdatasync(r->fd)); }

void run_sync(Request *r)
{
    sync();
    r->result = 0;
}

void run_syncfs(Request *r) { SYSCALL_RESULT(r, syncfs(r->fd)); }

void run_sync_file_range(Request *r)
{
    SYSCALL_RESULT(r, sync_file_range(r->fd, r->offset, r->length, (unsigned)r->flags));
}

void run_pathsync(Request *r)
{
    /* O_RDONLY opens a directory as well as a file; fsync needs no more */
    int fd = openat(r->dir_fd, path_of(r->path), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        r->result = -errno;
        return;
    }
    SYSCALL_RESULT(r, fsync(fd));
    close(fd);
}
