/* ops_tree.c: a directory's listing with the lstat of every entry, in ONE
 * request (the tree tools' walk: linuxaio scan, linuxaio copy).
 *
 * A walk that totals or copies a tree needs the lstat of every entry; as
 * one request per entry, submitting and completing them costs the Python
 * thread more than the syscalls cost the workers.  Here a worker lists the
 * directory and fstatat(2)s each entry relative to the directory's fd. */
#define _GNU_SOURCE
#include "ops_run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int grow(Request *r, size_t *cap, size_t need)
{
    if ((size_t)r->result + need > *cap) {
        size_t ncap = *cap ? *cap * 2 : 65536;
        char *nh;
        while (ncap < (size_t)r->result + need)
            ncap *= 2;
        if (!(nh = realloc(r->heap, ncap)))
            return -1;
        r->heap = nh;
        *cap = ncap;
    }
    return 0;
}

void run_scandir_stat(Request *r)
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
            size_t len, need;
            lx_stat_entry *e;
            off += d->d_reclen;
            if (d->d_name[0] == '.' && (!d->d_name[1] || (d->d_name[1] == '.' && !d->d_name[2])))
                continue;
            len = strlen(d->d_name);
            need = LX_STAT_ENTRY_SIZE(len);
            if (grow(r, &cap, need) < 0) {
                free(r->heap);
                r->heap = NULL;
                r->result = -ENOMEM;
                close(dfd);
                return;
            }
            e = (lx_stat_entry *)(r->heap + r->result);
            e->err = fstatat(dfd, d->d_name, &e->st, AT_SYMLINK_NOFOLLOW) ? errno : 0;
            e->type = d->d_type;
            e->namelen = (uint16_t)len;
            memcpy(e->name, d->d_name, len + 1);
            r->result += need;
        }
    }
    close(dfd);
}
