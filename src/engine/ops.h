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
 *   p  path: str, bytes or os.PathLike, without NUL; or (wd, relpath), a
 *      linuxaio.WorkingDir and a path relative to it (sets dir_fd)
 *   P  a second path, as p (rename, link, symlink: the destination; a
 *      (wd, relpath) sets dir_fd2)
 *   g  a user or group id (chown: uid, then gid; two at most): an int,
 *      None or -1 keeps it
 *   M  a whole mode, file type bits included (mknod: 0..0o177777)
 *   e  a device number (dev_t, >= 0), as os.makedev makes
 *   X  an extended attribute's name: str or bytes, without NUL
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
 *   G  a second fd, as f (sendfile's in_fd, copy_file_range's out_fd)
 *   K  a second fd for the os twins, as k
 *   j  offset (>= 0), no None (readahead, fallocate, fadvise...)
 *   q  a second offset (>= 0), or None: at the second fd's file position
 *   h  offset for the os twins: an int, or None (the file position:
 *      LX_AT_POS); a negative one is the syscall's to refuse, as in os
 *   H  the second offset for the os twins, as h
 *   S  length for the os twins: an int; a negative one fails with
 *      OSError(EINVAL), as O
 *   c  a count (>= 0), or None: all (fiemap's extents)
 *   R  an fcntl command or ioctl request: an int within -2**31..2**32-1
 *   a  fcntl/ioctl's argument: an int; bytes, str or a read-only buffer
 *      (at most 1024 bytes: copied in, and the result is a copy out); or
 *      a writable buffer, filled in place
 *   B  memory: any contiguous buffer (mmap, bytearray...), held; the o and
 *      L after it are a range inside it (None: 0, to the end)
 *   y  a bytearray the result is loaded into (resized to fit it)
 * lx_ops_init() refuses a row with any other letter, a w or r without its
 * d, a d without its buffer, or a third u: the import fails rather than a
 * call shifting its arguments. */
/* scandir: resolve unknown types and symlink targets (preset flag) */
#define LX_READDIR_TYPES 1

#define LX_ARG_LETTERS "fFkxDEtupPimsoOlnLNwrdWbVvgMeXGKjqhHScRaBy"

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
    /* The io_uring backend (uring.c): fill a submission entry for r (NULL:
     * the operation has none, a worker runs it), and when the ring takes it
     * (caps: its opcode, for the kernel's probe, and LX_CAP_*). */
    void (*prep)(Request *r, void *sqe);
    unsigned caps;
    const char *doc;                  /* the aio face's docstring */
} lx_op;

/* A row's ring caps: the io_uring opcode its prep uses (the kernel's probe
 * must have it; the numbers are ABI, checked against <linux/io_uring.h> in
 * uring.h) and when the ring takes a request of the row.  Under
 * LINUXAIO_ENGINE=uring every request of a row with a prep goes to the
 * ring; under auto only those its caps say gain (README: the ring table). */
#define LX_RING_READV 1
#define LX_RING_WRITEV 2
#define LX_RING_OPENAT 18
#define LX_RING_READ 22
#define LX_RING_WRITE 23
#define LX_RING_OPCODE(caps) ((caps) & 0xff)
#define LX_CAP_DIRECT 0x100      /* auto: when the fd is O_DIRECT */
#define LX_CAP_UNLESS_ALONE 0x200   /* auto: unless it would be the only request in flight */
#define LX_CAP_SMALL 0x1000      /* auto: up to 64 KiB; larger ones as LX_CAP_DIRECT */
#define LX_CAP_POSITIONED 0x400  /* only with an offset: never at the file position */
#define LX_CAP_STEPS 0x800       /* several steps, one submission each (lx_ring_step) */
/* Not the ring's: the row copies its bytes between memory and a file on
 * the CPU (a cached read or a buffered write); the threads cap how many
 * large ones run at once (workers.c). */
#define LX_CAP_COPY 0x2000

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
PyObject *lx_result_copied(Request *r);
PyObject *lx_result_entries_stat(Request *r);
PyObject *lx_result_totals(Request *r);
int lx_results_init(void);
/* names, directories, xattrs (results.c's last part; wd.c) */
PyObject *lx_result_bool(Request *r);
PyObject *lx_result_statvfs(Request *r);
PyObject *lx_result_readdirx(Request *r);
PyObject *lx_result_scandir(Request *r);
PyObject *lx_result_xattr_names(Request *r);
PyObject *lx_result_wd(Request *r);

/* aio_readdirx's flags: IO::AIO's (libeio's) values */
#define LX_READDIR_DENTS 0x01         /* (name, type, inode), not names */
#define LX_READDIR_DIRS_FIRST 0x02    /* directories, then likely ones, first */
#define LX_READDIR_STAT_ORDER 0x04    /* by inode: stat()ing each is fastest */
#define LX_READDIR_FOUND_UNKNOWN 0x80 /* out: some type was DT_UNKNOWN */

/* ---- the data, sync, memory and fd-control rows (issue 14) ---- */

/* h, H: None, the fd's file position (a negative offset is the kernel's
 * to refuse, as os leaves it). */
#define LX_AT_POS INT64_MIN

/* What a's argument became (r->io.x.argkind). */
enum { LX_ARG_INT, LX_ARG_COPY, LX_ARG_INPLACE };
/* fcntl.fcntl/ioctl's limit on a copied argument. */
#define LX_ARG_MAX 1024
/* aio_mtouch: write each page as well as read it (IO::AIO's MT_MODIFY). */
#define LX_MT_MODIFY 4

PyObject *lx_result_load(Request *r);
PyObject *lx_result_fdctl(Request *r);
PyObject *lx_result_fiemap(Request *r);
/* Their letters R, a and M's range (args_ctl.c, for args.c): 0, or -1
 * with an exception set. */
int lx_parse_command(PyObject *o, unsigned *out);
int lx_parse_ctl_arg(Request *r, PyObject *o);
int lx_memory_range(Request *r);
/* The kernel's constants the rows take, added to the module (constants.c). */
int lx_add_op_constants(PyObject *m);

/* Directory entries as a worker packs them (run_readdir) for results.c. */
typedef struct {
    uint64_t ino;
    unsigned char type, target;   /* DT_*; target: what a symlink points to */
    uint16_t namelen;
    char name[];
} lx_packed_entry;

/* scandir_stat's entries (ops_tree.c): each with its lstat, or the errno. */
typedef struct {
    struct stat st;
    int err;
    unsigned char type;
    uint16_t namelen;
    char name[];
} lx_stat_entry;

#define LX_STAT_ENTRY_SIZE(namelen) ((sizeof(lx_stat_entry) + (namelen) + 1 + 7) & ~(size_t)7)

/* scandir_totals (ops_tree.c): a directory's entries totalled by the
 * worker (linuxaio scan without --top/--ext): the sums first, then one
 * record per entry Python must still see: a subdirectory (to walk), a
 * hard-linked non-directory (its blocks count once per inode) or an entry
 * whose lstat failed. */
typedef struct {
    int64_t files, dirs, symlinks, other;
    int64_t apparent;              /* st_size of the regular files */
    int64_t allocated;             /* st_blocks * 512 of all but the hard-linked */
} lx_tree_totals;

enum { LX_TOTAL_SUBDIR, LX_TOTAL_LINKED, LX_TOTAL_FAILED };
typedef struct {
    uint64_t dev, ino;             /* LINKED */
    int64_t bytes;                 /* LINKED: st_blocks * 512 */
    int32_t err;                   /* FAILED: the errno */
    uint16_t namelen;
    uint8_t kind;
    char name[];
} lx_total_rec;

#define LX_TOTAL_REC_SIZE(namelen) ((sizeof(lx_total_rec) + (namelen) + 1 + 7) & ~(size_t)7)

#define LX_ENTRY_SIZE(namelen) ((sizeof(lx_packed_entry) + (namelen) + 1 + 7) & ~(size_t)7)

#endif
