/* ops_dirs.c: directory reads (getdents64): the one loop over a
 * directory's entries (lx_each_dirent: these rows' and ops_tree.c's),
 * readdir, os.scandir's, and IO::AIO's readdirx (sorted as its flags ask)
 * and scandir (split in directories and the rest). */
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

char *lx_heap_room(Request *r, size_t *cap, size_t need)
{
    size_t used = (size_t)r->result;
    if (used + need > *cap) {
        size_t ncap = *cap ? *cap * 2 : 16384;
        char *nh;
        while (ncap < used + need)
            ncap *= 2;
        if (!(nh = realloc(r->heap, ncap)))
            return NULL;
        r->heap = nh;
        *cap = ncap;
    }
    return r->heap + used;
}

static int is_dot_or_dotdot(const char *name)
{
    return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

void lx_each_dirent(Request *r, lx_dirent_fn *per_entry, void *ctx)
{
    char buf[32768];
    int rc = 0;
    int dfd = openat(r->dir_fd, path_of(r->path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        rc = -errno;
    while (!rc) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        for (long off = 0; off < n && !rc;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            if (!is_dot_or_dotdot(d->d_name))
                rc = per_entry(r, dfd, d, ctx);
        }
    }
    if (dfd >= 0)
        close(dfd);
    if (rc < 0) {
        free(r->heap);
        r->heap = NULL;
        r->result = rc;
    }
}

/* Append one entry to the packed list in r->heap (size in *cap). */
static int pack_entry(Request *r, size_t *cap, const struct dirent64 *d, unsigned char target)
{
    size_t len = strlen(d->d_name), need = LX_ENTRY_SIZE(len);
    lx_packed_entry *e = (lx_packed_entry *)lx_heap_room(r, cap, need);
    if (!e)
        return -ENOMEM;
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

/* What read_dir finds out beyond getdents64's d_type. */
enum {
    RESOLVE_UNKNOWN = 1,   /* lstat a DT_UNKNOWN entry */
    RESOLVE_TARGETS = 2,   /* stat a symlink's target */
};

typedef struct {
    size_t cap;
    int resolve;   /* RESOLVE_* */
} listing;

static int list_entry(Request *r, int dfd, struct dirent64 *d, void *ctx)
{
    listing *l = ctx;
    unsigned char target = d->d_type;
    if (l->resolve) {
        struct stat st;
        if (d->d_type == DT_UNKNOWN && !fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW))
            d->d_type = target = type_of_mode(st.st_mode);
        if (d->d_type == DT_LNK && (l->resolve & RESOLVE_TARGETS))
            target = fstatat(dfd, d->d_name, &st, 0) ? DT_UNKNOWN : type_of_mode(st.st_mode);
    }
    return pack_entry(r, &l->cap, d, target);
}

/* The whole directory, packed into r->heap (size in r->result).  With
 * RESOLVE_*, every entry's type is known when it leaves the worker, so
 * os.DirEntry's is_dir() and friends never need a syscall in the caller's
 * thread. */
static void read_dir(Request *r, int resolve)
{
    listing l = {0, resolve};
    r->result = 0;
    lx_each_dirent(r, list_entry, &l);
}

void run_readdir(Request *r)
{
    read_dir(r, r->flags & LX_READDIR_TYPES ? RESOLVE_UNKNOWN | RESOLVE_TARGETS : 0);
}

/* ---- readdirx: IO::AIO's orders ---- */

typedef struct {
    lx_packed_entry *e;
    unsigned score;
} sort_item;

/* How soon an entry comes under READDIR_DIRS_FIRST: directories (0), then
 * entries of unknown type that look like directories, the shorter names
 * first (1-3: no dot but a leading one, as file names mostly have an
 * extension), then the rest (4). */
static unsigned dir_score(const lx_packed_entry *e)
{
    if (e->type == DT_DIR)
        return 0;
    if (e->type == DT_UNKNOWN && !strchr(e->name + 1, '.'))
        return e->namelen <= 3 ? 1 : e->namelen <= 8 ? 2 : 3;
    return 4;
}

static int by_score_then_inode(const void *a, const void *b)
{
    const sort_item *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return x->e->ino < y->e->ino ? -1 : x->e->ino > y->e->ino;
}

/* Reorder the packed entries in r->heap: by inode alone (STAT_ORDER), or
 * directories first and each class by inode (DIRS_FIRST).  Sets
 * READDIR_FOUND_UNKNOWN in r->flags when some type was unknown. */
static int sort_entries(Request *r)
{
    size_t n = 0, k = 0;
    sort_item *items;
    char *sorted;
    int64_t off, out = 0;
    int order = r->flags & (LX_READDIR_STAT_ORDER | LX_READDIR_DIRS_FIRST);
    r->flags &= ~LX_READDIR_FOUND_UNKNOWN;
    for (off = 0; off < r->result; n++) {
        lx_packed_entry *e = (lx_packed_entry *)(r->heap + off);
        if (e->type == DT_UNKNOWN)
            r->flags |= LX_READDIR_FOUND_UNKNOWN;
        off += LX_ENTRY_SIZE(e->namelen);
    }
    if (!order || n < 2)
        return 0;
    if (!(items = malloc(n * sizeof *items)) || !(sorted = malloc((size_t)r->result))) {
        free(items);
        return -1;
    }
    for (off = 0; off < r->result; k++) {
        items[k].e = (lx_packed_entry *)(r->heap + off);
        items[k].score = order & LX_READDIR_STAT_ORDER ? 0 : dir_score(items[k].e);
        off += LX_ENTRY_SIZE(items[k].e->namelen);
    }
    qsort(items, n, sizeof *items, by_score_then_inode);
    for (k = 0; k < n; k++) {
        size_t size = LX_ENTRY_SIZE(items[k].e->namelen);
        memcpy(sorted + out, items[k].e, size);
        out += size;
    }
    free(items);
    free(r->heap);
    r->heap = sorted;
    return 0;
}

void run_readdirx(Request *r)
{
    read_dir(r, 0);
    if (r->result >= 0 && sort_entries(r) < 0) {
        free(r->heap);
        r->heap = NULL;
        r->result = -ENOMEM;
    }
}

/* aio_scandir: one request; what getdents64 leaves unknown is lstat'ed
 * here (a symlink to a directory stays a symlink: a non-directory, as in
 * IO::AIO).  results.c splits the entries. */
void run_scandir(Request *r) { read_dir(r, RESOLVE_UNKNOWN); }
