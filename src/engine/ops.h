/* ops.h: the operation table, one row per operation (ops.def).
 *
 * Adding an operation is one line in ops.def and a run function in ops.c
 * (and a result converter in results.c if none fits).  Every row becomes
 * one module function per face it has: the callback API's (aio_X) and the
 * os twin's that linuxaio.os calls (control.c). */
#ifndef LINUXAIO_OPS_H
#define LINUXAIO_OPS_H

#include "engine.h"

/* One letter per positional argument, before the callback (args.c):
 *   f  fd: an int or an object with fileno()
 *   F  fd: an int only (close must not take a file object, whose
 *      number may be reused by the time the worker runs)
 *   k  fd for the os twins: an int only, negative ones left to the
 *      syscall (EBADF), as os does
 *   x  an fd (as f) or a path (as p)
 *   D  the first path's dir_fd for the *at() calls: as f, or None for
 *      the cwd
 *   E  the second path's dir_fd (rename, link, symlink: the
 *      destination's), as D
 *   t  times: None (now), or (atime_ns, mtime_ns)
 *   u  a time in seconds, or None (now): atime, then mtime (two at most)
 *   p  path: str, bytes or os.PathLike, without NUL
 *   P  a second path, as p (rename, link, symlink: the destination)
 *   i  int flags, or'ed into the row's preset flags
 *   m  mode (0..0o7777)
 *   s  seconds (>= 0)
 *   o  offset (>= 0), or None: at the file position
 *   l  a signed offset (lseek's: relative to its whence, may be negative)
 *   O  offset for the os twins: an int; a negative one fails with
 *      OSError(EINVAL), as os does
 *   n  length (>= 0)
 *   L  length (>= 0), or None: to the end
 *   N  length of a new bytes object the request reads into (its result);
 *      a negative one fails with OSError(EINVAL), as os.read
 *   w  writable buffer, then d
 *   r  readable buffer, then d
 *   d  the offset into the buffer just before (>= 0); d + n must fit in
 *      it, but a bytearray given to w is first grown to fit
 *   W  writable buffer: the whole of it
 *   b  readable buffer: the whole of it
 *   V  sequence of writable buffers (iovecs, at most IOV_MAX)
 *   v  sequence of readable buffers (iovecs, at most IOV_MAX)
 * lx_ops_init() refuses a row with any other letter, a w or r without its
 * d, a d without its buffer, or a third u: the import fails rather than a
 * call shifting its arguments. */
/* scandir: resolve unknown types and symlink targets (preset flag) */
#define LX_READDIR_TYPES 1

#define LX_ARG_LETTERS "fFkxDEtupPimsoOlnLNwrdWbVv"

/* A row's faces: the callback API's name and letters, and the os twin's. */
enum { FACE_AIO, FACE_OS, LX_NFACES };

typedef struct {
    const char *name;                 /* "aio_open", "open"; NULL: none */
    const char *args;                 /* its letters */
} lx_face;

typedef struct {
    const char *id;                   /* the row's own name: "preadinto" */
    lx_face face[LX_NFACES];
    int flags;                        /* preset flags: AT_SYMLINK_NOFOLLOW... */
    void (*run)(Request *r);          /* in a worker: no GIL, no objects */
    /* Optional: run it at once if that cannot block (a read the page cache
     * serves), in a polling thread that would otherwise wait (pool.c's
     * help).  1 if done, 0 to leave it untouched to run, -1 if started and
     * what is left must run. */
    int (*try_now)(Request *r);
    PyObject *(*result)(Request *r);  /* with the GIL: the callback's value */
    void (*undo)(Request *r);         /* a cancelled request's effect undone */
    /* Room for the io_uring backend: fill a submission entry for r (NULL:
     * the operation has none, a worker runs it), and what the ring may do
     * with it (LX_CAP_*, none yet). */
    void (*prep)(Request *r, void *sqe);
    unsigned caps;
    const char *doc;                  /* the aio face's docstring */
} lx_op;

/* The rows' ids: LX_OP_open... */
enum {
#define OP(id, aio, aio_args, os, os_args, flags, run, try_now, result, undo, prep, caps, doc) LX_OP_##id,
#include "ops.def"
#undef OP
    LX_NOPS
};
_Static_assert(LX_NOPS < OP_GROUP, "an op index is a byte, and OP_GROUP is not one");

extern const lx_op lx_ops[LX_NOPS];
#define lx_nops LX_NOPS

/* The row and face with that name: row index (face in *face), or -1. */
int lx_op_index(const char *name, int *face);
/* Check every row's letters, and look up what the result converters need
 * (os.stat_result).  0, or -1 with an exception set. */
int lx_ops_init(void);

/* Result converters (results.c): with the GIL, the callback's value. */
PyObject *lx_result_int(Request *r);
PyObject *lx_result_zero(Request *r);
PyObject *lx_result_stat(Request *r);
PyObject *lx_result_fd_stat(Request *r);
PyObject *lx_result_path_stat(Request *r);
PyObject *lx_result_bytes(Request *r);
PyObject *lx_result_malloced(Request *r);
PyObject *lx_result_path(Request *r);
PyObject *lx_result_names(Request *r);
PyObject *lx_result_entries(Request *r);
int lx_results_init(void);

/* Directory entries as a worker packs them (run_readdir) for results.c. */
typedef struct {
    uint64_t ino;
    unsigned char type, target;   /* DT_*; target: what a symlink points to */
    uint16_t namelen;
    char name[];
} lx_packed_entry;

#define LX_ENTRY_SIZE(namelen) ((sizeof(lx_packed_entry) + (namelen) + 1 + 7) & ~(size_t)7)

#endif
