/* ops_fdctl.c: control requests on an fd: fcntl, ioctl, and FIEMAP (the
 * extents of a file, gathered over as many ioctls as it takes). */
#define _GNU_SOURCE
#include "ops_run.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* Run one fcntl or ioctl with r's argument (args.c's letter a): an int as
 * is; a copy in r->heap (LX_ARG_MAX bytes, zeroed past the caller's); the
 * caller's writable buffer itself, through a block of LX_ARG_MAX bytes when
 * it is smaller, as the fcntl module does, so that a command writing more
 * than the caller gave overruns nothing. */
static void run_ctl(Request *r, int is_ioctl)
{
    char block[LX_ARG_MAX];
    void *p;
    long rv;
    if (r->io.x.argkind == LX_ARG_INT) {
        rv = is_ioctl ? ioctl(r->fd, (unsigned long)r->io.x.cmd, (unsigned long)r->io.x.arg)
                      : fcntl(r->fd, (int)r->io.x.cmd, (long)r->io.x.arg);
        r->result = rv < 0 ? -errno : rv;
        return;
    }
    if (r->io.x.argkind == LX_ARG_COPY)
        p = r->heap;
    else if (r->length <= LX_ARG_MAX) {
        memcpy(block, r->data, (size_t)r->length);
        memset(block + r->length, 0, LX_ARG_MAX - (size_t)r->length);
        p = block;
    } else
        p = r->data;
    rv = is_ioctl ? ioctl(r->fd, (unsigned long)r->io.x.cmd, p) : fcntl(r->fd, (int)r->io.x.cmd, p);
    r->result = rv < 0 ? -errno : rv;
    if (rv >= 0 && p == block)
        memcpy(r->data, block, (size_t)r->length);
}

void run_fcntl(Request *r) { run_ctl(r, 0); }
void run_ioctl(Request *r) { run_ctl(r, 1); }

#define FIEMAP_BATCH 256   /* extents per ioctl */

/* Extents as results.c reads them: logical, physical, length, flags. */
typedef uint64_t lx_extent[4];

void run_fiemap(Request *r)
{
    uint64_t start = (uint64_t)r->offset, end;
    int64_t want = r->io.x.count, got = 0, cap = 0;
    struct fiemap *fm = malloc(sizeof *fm + FIEMAP_BATCH * sizeof(struct fiemap_extent));
    if (!fm) {
        r->result = -ENOMEM;
        return;
    }
    end = r->length < 0 || (uint64_t)r->length > FIEMAP_MAX_OFFSET - start
        ? FIEMAP_MAX_OFFSET : start + (uint64_t)r->length;
    for (;;) {
        unsigned n = FIEMAP_BATCH, mapped;
        struct fiemap_extent *last;
        if (want >= 0 && want - got < n)
            n = (unsigned)(want - got);   /* 0: one call all the same, for its errors */
        /* the extents too: the kernel fills them, but a checker that does not
         * know FS_IOC_FIEMAP (valgrind 3.19) takes only the 32-byte header
         * its _IOWR number declares as written, and flags every extent read */
        memset(fm, 0, sizeof *fm + n * sizeof(struct fiemap_extent));
        fm->fm_start = start;
        fm->fm_length = end - start;
        fm->fm_flags = (uint32_t)r->flags;
        fm->fm_extent_count = n;
        if (ioctl(r->fd, FS_IOC_FIEMAP, fm) < 0) {
            r->result = -errno;
            goto fail;
        }
        mapped = n ? fm->fm_mapped_extents : 0;
        if (got + mapped > cap) {
            int64_t ncap = cap ? cap * 2 : mapped;
            char *nh;
            if (ncap < got + mapped)
                ncap = got + mapped;
            if (!(nh = realloc(r->heap, (size_t)ncap * sizeof(lx_extent)))) {
                r->result = -ENOMEM;
                goto fail;
            }
            r->heap = nh;
            cap = ncap;
        }
        for (unsigned i = 0; i < mapped; i++) {
            uint64_t *e = ((lx_extent *)r->heap)[got + i];
            e[0] = fm->fm_extents[i].fe_logical;
            e[1] = fm->fm_extents[i].fe_physical;
            e[2] = fm->fm_extents[i].fe_length;
            e[3] = fm->fm_extents[i].fe_flags;
        }
        got += mapped;
        if (mapped == 0 || mapped < n || (want >= 0 && got >= want))
            break;
        last = &fm->fm_extents[mapped - 1];
        if (last->fe_flags & FIEMAP_EXTENT_LAST)
            break;
        /* the next call starts where the last extent ends */
        if (last->fe_logical + last->fe_length <= start || last->fe_logical + last->fe_length >= end)
            break;
        start = last->fe_logical + last->fe_length;
    }
    free(fm);
    r->result = got;
    return;
fail:
    free(fm);
    free(r->heap);
    r->heap = NULL;
}
