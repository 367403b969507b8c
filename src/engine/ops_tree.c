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
#include <string.h>
#include <sys/stat.h>

static int stat_entry(Request *r, int dfd, struct dirent64 *d, void *cap)
{
    size_t len = strlen(d->d_name), need = LX_STAT_ENTRY_SIZE(len);
    lx_stat_entry *e = (lx_stat_entry *)lx_heap_room(r, cap, need);
    if (!e)
        return -ENOMEM;
    e->err = fstatat(dfd, d->d_name, &e->st, AT_SYMLINK_NOFOLLOW) ? errno : 0;
    e->type = d->d_type;
    e->namelen = (uint16_t)len;
    memcpy(e->name, d->d_name, len + 1);
    r->result += need;
    return 0;
}

void run_scandir_stat(Request *r)
{
    size_t cap = 0;
    r->result = 0;
    lx_each_dirent(r, stat_entry, &cap);
}
