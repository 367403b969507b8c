/* ops_dirs.c: directory reads (getdents64). */
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

/* Append one entry to the packed list in r->heap (size in *cap). */
static int pack_entry(Request *r, size_t *cap, const struct dirent64 *d, unsigned char target)
{
    size_t len = strlen(d->d_name), need = LX_ENTRY_SIZE(len);
    lx_packed_entry *e;
    if ((size_t)r->result + need > *cap) {
        size_t ncap = *cap ? *cap * 2 : 16384;
        char *nh;
        while (ncap < (size_t)r->result + need)
            ncap *= 2;
        if (!(nh = realloc(r->heap, ncap)))
            return -1;
        r->heap = nh;
        *cap = ncap;
    }
    e = (lx_packed_entry *)(r->heap + r->result);
    e->ino = d->d_ino;
    e->type = d->d_type;
    e->target = target;
    e->namelen = (uint16_t)len;
    memcpy(e->name, d->d_name, len + 1);
    r->result += need;
    return 0;
}

static unsigned char type_of_mode(mode_t m)
{
    return S_ISDIR(m) ? DT_DIR : S_ISREG(m) ? DT_REG : S_ISLNK(m) ? DT_LNK : S_ISFIFO(m) ? DT_FIFO
         : S_ISSOCK(m) ? DT_SOCK : S_ISCHR(m) ? DT_CHR : S_ISBLK(m) ? DT_BLK : DT_UNKNOWN;
}

/* getdents64(2) through the whole directory.  With LX_READDIR_TYPES, every
 * entry's type is known when it leaves the worker: a DT_UNKNOWN one is
 * lstat'ed, and a symlink's target is stat'ed, so is_dir() and friends
 * never need a syscall in the caller's thread. */
void run_readdir(Request *r)
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
            unsigned char target = d->d_type;
            off += d->d_reclen;
            if (d->d_name[0] == '.' && (!d->d_name[1] || (d->d_name[1] == '.' && !d->d_name[2])))
                continue;
            if (r->flags & LX_READDIR_TYPES) {
                struct stat st;
                if (d->d_type == DT_UNKNOWN && !fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW))
                    d->d_type = target = type_of_mode(st.st_mode);
                if (d->d_type == DT_LNK)
                    target = fstatat(dfd, d->d_name, &st, 0) ? DT_UNKNOWN : type_of_mode(st.st_mode);
            }
            if (pack_entry(r, &cap, d, target) < 0) {
                free(r->heap);
                r->heap = NULL;
                r->result = -ENOMEM;
                close(dfd);
                return;
            }
        }
    }
    close(dfd);
}
