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

/* Tries (a polling thread's: they must not block) and undos. */
int try_read(Request *r);
int try_stat(Request *r);   /* ops_try.c: for inline awaits (inline.c) */
int try_open(Request *r);
int try_slurp(Request *r);
void undo_open(Request *r);

#endif
