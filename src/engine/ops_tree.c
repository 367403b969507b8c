/* ops_tree.c: a directory's listing with the lstat of every entry, in ONE
 * request (the tree tools' walk: linuxaio scan, linuxaio copy).
 *
 * A walk that totals or copies a tree needs the lstat of every entry; as
 * one request per entry, submitting and completing them costs the Python
 * thread more than the syscalls cost the workers.  Here a worker lists the
 * directory and fstatat(2)s each entry relative to the directory's fd.
 *
 * scandir_totals goes one step further for a scan that wants only totals:
 * the worker adds the entries up itself, and Python sees one small record
 * per subdirectory (and per hard-linked file), not a stat_result per entry
 * (about 5 us each in Python: most of a cached scan's time). */
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

/* One more record of namelen at the end of r->heap (r->result is the
 * bytes used): the record, or NULL (ENOMEM). */
static lx_total_rec *add_rec(Request *r, size_t *cap, size_t namelen, int kind, const char *name)
{
    lx_total_rec *rec = (lx_total_rec *)lx_heap_room(r, cap, LX_TOTAL_REC_SIZE(namelen));
    if (!rec)
        return NULL;
    memset(rec, 0, sizeof *rec);
    rec->kind = (uint8_t)kind;
    rec->namelen = (uint16_t)namelen;
    memcpy(rec->name, name, namelen + 1);
    r->result += LX_TOTAL_REC_SIZE(namelen);
    return rec;
}

static int total_entry(Request *r, int dfd, struct dirent64 *d, void *cap)
{
    struct stat st;
    lx_total_rec *rec;
    lx_tree_totals *t;
    if (fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        int err = errno;
        if (!(rec = add_rec(r, cap, strlen(d->d_name), LX_TOTAL_FAILED, d->d_name)))
            return -ENOMEM;
        rec->err = err;
        return 0;
    }
    t = (lx_tree_totals *)r->heap;     /* add_rec may move it */
    if (S_ISREG(st.st_mode)) {
        t->files++;
        t->apparent += st.st_size;
    } else if (S_ISDIR(st.st_mode))
        t->dirs++;
    else if (S_ISLNK(st.st_mode))
        t->symlinks++;
    else
        t->other++;
    if (S_ISDIR(st.st_mode)) {
        t->allocated += (int64_t)st.st_blocks * 512;
        if (!add_rec(r, cap, strlen(d->d_name), LX_TOTAL_SUBDIR, d->d_name))
            return -ENOMEM;
    } else if (st.st_nlink > 1) {
        /* du counts an inode once: Python keeps the set */
        if (!(rec = add_rec(r, cap, 0, LX_TOTAL_LINKED, "")))
            return -ENOMEM;
        rec->dev = st.st_dev;
        rec->ino = st.st_ino;
        rec->bytes = (int64_t)st.st_blocks * 512;
    } else
        t->allocated += (int64_t)st.st_blocks * 512;
    return 0;
}

void run_scandir_totals(Request *r)
{
    size_t cap = 0;
    r->result = 0;
    if (!lx_heap_room(r, &cap, sizeof(lx_tree_totals))) {
        r->result = -ENOMEM;
        return;
    }
    memset(r->heap, 0, sizeof(lx_tree_totals));
    r->result = sizeof(lx_tree_totals);
    lx_each_dirent(r, total_entry, &cap);
}
