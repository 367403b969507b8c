/* ops_run.h: what the run files (ops_*.c, one per family) share, and the
 * declarations of every row's functions for the table in ops.c.
 *
 * A run function executes in a worker: no GIL, no Python objects (a path
 * is the bytes args.c made, read through path_of). */
#ifndef LINUXAIO_OPS_RUN_H
#define LINUXAIO_OPS_RUN_H

#include "ops.h"

#include <errno.h>

/* A syscall's return value, or -errno, as the request's result. */
#define SYSCALL_RESULT(r, expr) do { \
        long long rv_ = (expr); \
        (r)->result = rv_ < 0 ? -errno : rv_; \
    } while (0)

static inline const char *path_of(PyObject *bytes) { return PyBytes_AS_STRING(bytes); }

/* Every row's run function (the same one may serve several rows). */
#define OP(id, aio, aio_args, os, os_args, flags, run, try_now, result, undo, prep, caps, doc) \
    void run(Request *r);
#include "ops.def"
#undef OP

/* r's first path as a path a call without an *at() form can take: itself
 * if absolute or relative to the cwd, else /proc/self/fd/N/path through
 * its dir fd (a (wd, relpath) one: the kernel resolves that magic link to
 * the directory itself, wherever it was moved).  *owned is what to free();
 * NULL (ENOMEM) when that allocation fails.  ops_paths.c */
const char *lx_at_path(Request *r, char **owned);

/* Every entry of r's directory (its path, relative to its dir fd) but .
 * and .., as getdents64(2) lists them: per_entry is called on each with the
 * directory's fd (for an *at() call on the entry); it returns 0 to go on,
 * or -errno to stop with that result.  r->result is left as the caller set
 * it and per_entry moved it (the bytes packed in r->heap so far); on an
 * error (opening, reading, or per_entry's), r->heap is freed and r->result
 * is -errno.  ops_dirs.c, for every row that lists a directory. */
struct dirent64;
typedef int lx_dirent_fn(Request *r, int dfd, struct dirent64 *d, void *ctx);
void lx_each_dirent(Request *r, lx_dirent_fn *per_entry, void *ctx);
/* Room for need more bytes after the r->result bytes used in r->heap (*cap
 * allocated, doubling as it grows): where they go, or NULL (ENOMEM). */
char *lx_heap_room(Request *r, size_t *cap, size_t need);

/* Tries (a polling thread's: they must not block) and undos. */
int try_read(Request *r);
/* Whether a read's fd is O_DIRECT: one fcntl(2) per request, its answer
 * kept in r->fd_kind for the inline try and the ring's routing alike. */
enum { LX_FD_DIRECT = 1, LX_FD_BUFFERED, LX_FD_BAD };
int lx_fd_kind(Request *r);
int try_stat(Request *r);   /* ops_try.c: for inline awaits (inline.c) */
int try_open(Request *r);
int try_slurp(Request *r);
int try_serve_lookup(Request *r);   /* ops_serve.c */
void undo_open(Request *r);

/* Ring preps (uring_prep.c): fill an io_uring submission entry. */
void lx_prep_read(Request *r, void *sqe);
void lx_prep_write(Request *r, void *sqe);
void lx_prep_readv(Request *r, void *sqe);
void lx_prep_writev(Request *r, void *sqe);
void lx_prep_slurp(Request *r, void *sqe);

#endif
