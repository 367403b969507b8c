/* ops.h: the operation table, one row per request type.
 *
 * Adding an operation is one row here and a run function in ops.c; the
 * extension turns every row into a module function (control.c). */
#ifndef LINUXAIO_OPS_H
#define LINUXAIO_OPS_H

#include "engine.h"

typedef struct {
    const char *name;                 /* the Python name: "aio_open" */
    /* One letter per positional argument, before the callback:
     *   f  fd: an int or an object with fileno()
     *   F  fd: an int only (close must not take a file object, whose
     *      number may be reused by the time the worker runs)
     *   k  fd for the os twins: an int only, negative ones left to the
     *      syscall (EBADF), as os does
     *   x  an fd (as f) or a path (as p)
     *   D  dir_fd for the *at() calls: as f, or None for the cwd
     *   E  a second dir_fd (rename, link: the destination's)
     *   t  times: None (now), or (atime_ns, mtime_ns)
     *   u  a time in seconds, or None (now): atime, then mtime
     *   p  path (str, bytes, os.PathLike), then P for a second one
     *   i  int flags (or'ed into the row's preset flags)
     *   m  mode (0..0o7777)         s  seconds (>= 0)
     *   o  offset (>= 0, or None: at the file position)
     *   n  length (>= 0)            L  length, or None: to the end
     *   N  length of a new bytes object the request reads into (its result)
     *   w  writable buffer, r  readable buffer; either is followed by
     *   d  the offset into that buffer (>= 0); d + n must fit in it, but a
     *      bytearray given to w is first grown to fit
     *   W  writable buffer, b  readable buffer: the whole of it
     *   V  sequence of writable buffers, v  of readable ones (iovecs) */
    const char *args;
    int flags;                        /* preset flags: AT_SYMLINK_NOFOLLOW... */
    void (*run)(Request *r);          /* in a worker: no GIL, no objects */
    /* Optional: run it at once if that cannot block (a read the page cache
     * serves), in a polling thread that would otherwise wait (pool.c's
     * help).  1 if done, 0 to leave it untouched to run, -1 if started and
     * what is left must run. */
    int (*try_now)(Request *r);
    PyObject *(*result)(Request *r);  /* with the GIL: the callback's value */
    void (*undo)(Request *r);         /* a cancelled request's effect undone */
    const char *doc;
} lx_op;

extern const lx_op lx_ops[];
extern const int lx_nops;

/* Index of the row with that name, or -1. */
int lx_op_index(const char *name);
/* Look up what the result converters need (os.stat_result).  0 or -1. */
int lx_ops_init(void);

#endif
