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

/* Room for one more record of namelen at the end of r->heap (r->result is
 * the bytes used): the record, or NULL (ENOMEM). */
static lx_total_rec *add_rec(Request *r, size_t *cap, size_t namelen, int kind, const char *name)
{
    lx_total_rec *rec;
    if (grow(r, cap, LX_TOTAL_REC_SIZE(namelen)) < 0)
        return NULL;
    rec = (lx_total_rec *)(r->heap + r->result);
    memset(rec, 0, sizeof *rec);
    rec->kind = (uint8_t)kind;
    rec->namelen = (uint16_t)namelen;
    memcpy(rec->name, name, namelen + 1);
    r->result += LX_TOTAL_REC_SIZE(namelen);
    return rec;
}

void run_scandir_totals(Request *r)
{
    char buf[32768];
    size_t cap = 0;
    lx_tree_totals *t;
    int dfd = openat(r->dir_fd, path_of(r->path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        r->result = -errno;
        return;
    }
    r->result = 0;
    if (grow(r, &cap, sizeof *t) < 0)
        goto nomem;
    memset(r->heap, 0, sizeof *t);
    r->result = sizeof *t;
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
            struct stat st;
            lx_total_rec *rec;
            off += d->d_reclen;
            if (d->d_name[0] == '.' && (!d->d_name[1] || (d->d_name[1] == '.' && !d->d_name[2])))
                continue;
            if (fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                int err = errno;
                if (!(rec = add_rec(r, &cap, strlen(d->d_name), LX_TOTAL_FAILED, d->d_name)))
                    goto nomem;
                rec->err = err;
                continue;
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
                if (!add_rec(r, &cap, strlen(d->d_name), LX_TOTAL_SUBDIR, d->d_name))
                    goto nomem;
            } else if (st.st_nlink > 1) {
                /* du counts an inode once: Python keeps the set */
                if (!(rec = add_rec(r, &cap, 0, LX_TOTAL_LINKED, "")))
                    goto nomem;
                rec->dev = st.st_dev;
                rec->ino = st.st_ino;
                rec->bytes = (int64_t)st.st_blocks * 512;
            } else
                t->allocated += (int64_t)st.st_blocks * 512;
        }
    }
    close(dfd);
    return;
nomem:
    free(r->heap);
    r->heap = NULL;
    r->result = -ENOMEM;
    close(dfd);
}
