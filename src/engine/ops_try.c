/* ops_try.c: tries of name operations (stat, open, slurp) for an inline
 * await (inline.c): each runs in the caller's thread, the event loop's, so
 * each must fail rather than wait.  Same contract as try_read (ops_data.c):
 * 1 done (r->result set), 0 untouched (a worker runs it as usual).  An
 * error is never reported from here: the worker's run reports it, with
 * the same errno, so a try has no error path to get wrong.
 *
 * What makes a name operation safe without blocking:
 *   - the lookup: openat2(RESOLVE_CACHED) walks the dentry cache only and
 *     fails with EAGAIN where it would read a directory from disk (or ask
 *     a network file system to revalidate: that needs to leave RCU mode);
 *   - the file system: its getattr and open must be in memory.  NFS, FUSE,
 *     CIFS, Ceph, 9p... may ask a server; inline.c reads the mount table
 *     and refuses those devices (lx_inline_mounts_ok, lx_inline_dev_ok);
 *   - the file: opening a FIFO waits for a writer, a device may wait in
 *     its driver.  O_NONBLOCK makes the open itself return at once, and
 *     only a regular file or a directory is kept. */
#define _GNU_SOURCE
#include "ops_run.h"
#include "inline.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

static int cached_open(int dir_fd, const char *path, int flags)
{
    struct open_how how = {.flags = (unsigned)(flags | O_CLOEXEC), .resolve = RESOLVE_CACHED};
    return (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof how);
}

/* stat, lstat, fstat: an O_PATH open that touches no file system code
 * beyond the dentry cache, then the attributes of what it found. */
int try_stat(Request *r)
{
    int fd, rc;
    if (!lx_inline_mounts_ok(LX_MOUNTS_FOR_STAT))
        return 0;   /* a mount that may block a getattr is present */
    if (!r->path) {
        /* fstat: which device the fd is on is unknown until this returns;
         * lx_inline_mounts_ok said none of those mounted may block it */
        if (lx_inline_fstat(r->fd, &r->io.st) < 0)
            return 0;
        r->result = 0;
        return 1;
    }
    fd = cached_open(r->dir_fd, path_of(r->path),
                     O_PATH | ((r->flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0));
    if (fd < 0)
        return 0;   /* not cached (EAGAIN), or an error the worker reports */
    rc = lx_inline_fstat(fd, &r->io.st);
    lx_try_close(fd);
    if (rc < 0)
        return 0;
    r->result = 0;
    return 1;
}

/* An open that cannot wait: no O_CREAT/O_TRUNC/O_TMPFILE (they write),
 * a cached path, a local file system, a regular file or a directory.
 * r->io.st is the file's (open_stat's result needs it; here it also says
 * what was opened).  The fd keeps the O_NONBLOCK this open adds when
 * `keep_nonblock` (slurp: the fd never leaves the try, and O_NONBLOCK does
 * nothing to a regular file's reads: two fcntl calls saved); otherwise
 * the fd the caller gets has the flags asked for.  Returns the fd, or -1
 * when a worker must open it. */
static int open_cached_file(Request *r, int flags, int keep_nonblock)
{
    int fd;
    /* O_TMPFILE includes O_DIRECTORY's bit: test it whole */
    if ((flags & (O_CREAT | O_TRUNC)) || (flags & O_TMPFILE) == O_TMPFILE
        || !lx_inline_mounts_ok(LX_MOUNTS_FOR_OPEN))
        return -1;
    if ((fd = cached_open(r->dir_fd, path_of(r->path), flags | O_NONBLOCK)) < 0)
        return -1;
    if (fstat(fd, &r->io.st) < 0 || !(S_ISREG(r->io.st.st_mode) || S_ISDIR(r->io.st.st_mode))
        || !lx_inline_dev_ok(r->io.st.st_dev)) {
        lx_try_close(fd);   /* a FIFO, a device...: the worker opens it as asked */
        return -1;
    }
    /* O_NONBLOCK was ours: the fd the caller gets has the flags asked for.
     * F_SETFL sets only O_APPEND, O_NONBLOCK, O_DIRECT, O_NOATIME (and
     * O_ASYNC, only where it changes): the flags of the open, without
     * O_NONBLOCK, are the status the open would have left (no F_GETFL:
     * a syscall less, ~0.1 us of an inline open). */
    if (!keep_nonblock && !(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags) < 0) {
        lx_try_close(fd);
        return -1;
    }
    return fd;
}

/* open, open_stat */
int try_open(Request *r)
{
    int fd = open_cached_file(r, r->flags, 0);
    if (fd < 0)
        return 0;
    r->result = fd;
    return 1;
}

/* What a slurp's try reads into before it knows the file's size: grown
 * to the inline cap (+1) once, under the GIL, which the try holds from its
 * read to its copy.  A cap set above SCRATCH_MAX (for tests) tries no
 * slurp over it. */
#define SCRATCH_MAX (1024 * 1024)
static char *scratch;
static size_t scratch_size;

/* slurp: a small cached file opened, read and closed, in the syscalls of
 * os.open + os.read + os.close and no fstat (a fourth syscall was ~0.15
 * us of the ~1.2 us such a file costs here).  All or nothing: a read that
 * would wait hands the whole request to a worker (reading a few KiB again
 * costs less than a second code path to resume it).
 *
 * Without the size, the end of the file is told by the read: 0, or a
 * RWF_NOWAIT read that stopped within a page.  A read that finds a page
 * uncached stops at that page's start (the page cache copies whole
 * folios, which are whole pages at page-aligned offsets) or fails with
 * EAGAIN, so a stop anywhere else is the file's size.  A stop at a page
 * boundary proves nothing: the next read tells (0 at the end, EAGAIN if
 * uncached).  What is no regular file needs no fstat either: a directory
 * fails the read with EISDIR, a FIFO with ESPIPE (a positioned read), and
 * a file without RWF_NOWAIT (/proc, /sys, most devices) with EOPNOTSUPP:
 * the worker reads those as before.  A device that reads without end
 * (/dev/zero) fills the buffer: over the cap, a worker's.
 *
 * Where the bytes go: into a scratch buffer, then copied into a bytes
 * object of the size read.  Reading straight into a 16 KiB bytes and
 * shrinking it as os.read does saves that copy but costs malloc more: a
 * program holds the results (W2r's 64 tasks hold 64 of 1-16 KiB), and each
 * shrink leaves a free fragment that the next malloc must sort through.
 * With 64 results held, 16 KiB + shrink cost ~390 ns of malloc and copy
 * per file, the exact size + copy ~240 ns (a C loop, Intel Xeon); in W2r,
 * paired rounds over 11 rounds: asyncio 1.03x, uvloop 1.02x (medians). */
int try_slurp(Request *r)
{
    static long page;
    size_t cap = lx_inline_max_bytes < SCRATCH_MAX ? lx_inline_max_bytes : SCRATCH_MAX - 1;
    /* asked for length bytes (at most the cap): that many; else one byte
     * over the cap, which tells a file too big to be read here */
    int to_end = !(r->length >= 0 && (size_t)r->length <= cap), fd;
    int64_t room = to_end ? (int64_t)cap + 1 : r->length, got = 0;
    if (room == 0 || !lx_inline_mounts_ok(LX_MOUNTS_FOR_OPEN))
        return 0;   /* nothing to read tells no directory: the worker's; or a file
                       system whose open may ask a server is mounted */
    if (!page)
        page = sysconf(_SC_PAGESIZE);
    if ((size_t)room > scratch_size) {
        char *s = PyMem_RawRealloc(scratch, (size_t)room);
        if (!s)
            return 0;   /* the worker's malloc reports ENOMEM, if it must */
        scratch = s;
        scratch_size = (size_t)room;
    }
    if ((fd = cached_open(r->dir_fd, path_of(r->path), O_RDONLY | O_NONBLOCK)) < 0)
        return 0;
    /* O_NONBLOCK stays: the fd never leaves the try, and it does nothing
     * to a regular file's reads.  Every device is local: mounts_ok. */
    while (got < room) {
        struct iovec iov = {scratch + got, (size_t)(room - got)};
        ssize_t n = lx_try_preadv2(fd, &iov, 1, r->offset + got, RWF_NOWAIT);
        if (n < 0) {
            lx_try_close(fd);
            return 0;   /* not cached, or not a file this try reads */
        }
        got += n;
        if (n == 0 || ((r->offset + got) & (page - 1)) != 0)
            break;   /* the end (see above) */
    }
    lx_try_close(fd);
    if (to_end && got == room)
        return 0;   /* more than the cap: a worker's */
    if (!(r->value = PyBytes_FromStringAndSize(scratch, (Py_ssize_t)got))) {
        PyErr_Clear();
        return 0;   /* the worker's malloc reports ENOMEM, if it must */
    }
    r->result = got;   /* lx_result_malloced takes r->value */
    return 1;
}
