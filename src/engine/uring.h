/* uring.h: the io_uring backend (uring.c) and its rows' submission entries
 * (uring_prep.c).
 *
 * One ring per process, owned by one thread (the ring thread): it alone
 * fills submission entries, enters the kernel and reaps completions, so the
 * ring can be SINGLE_ISSUER with DEFER_TASKRUN, and no caller's thread ever
 * owns a request in the kernel (io_uring cancels the queued work of a task
 * that exits).  Callers only queue requests under the ring's lock and wake
 * the ring thread through an eventfd the ring itself reads. */
#ifndef LINUXAIO_URING_H
#define LINUXAIO_URING_H

#include "backend.h"
#include "ops.h"

#include <linux/io_uring.h>

/* Constants newer than the build machine's headers (Linux 6.1). */
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif

/* ops.h spells the opcodes its rows use without this header: they are ABI. */
_Static_assert(LX_RING_READ == IORING_OP_READ && LX_RING_WRITE == IORING_OP_WRITE
               && LX_RING_READV == IORING_OP_READV && LX_RING_WRITEV == IORING_OP_WRITEV
               && LX_RING_OPENAT == IORING_OP_OPENAT, "io_uring opcodes are ABI");

/* Import: LINUXAIO_ENGINE (auto, threads, uring) and the ring if wanted.
 * 0, or -1 with an exception set (uring asked for and refused, or a bad
 * value). */
int lx_uring_init(void);
/* engine(), engine_info(): added to the module. */
extern PyMethodDef lx_uring_module_methods[];
/* Requests queued on the ring, not yet in the kernel (nready()). */
unsigned long lx_uring_nready(void);
/* max_parallel/min_parallel reach the ring too: it never has more in the
 * kernel than the limit they set. */
void lx_uring_set_limit(unsigned n, int raise_only);
/* poll.c: while a poll hands out results, callbacks that submit only queue
 * (hold(1)); the ring thread is woken once, at hold(0), for all of them.
 * kick(): wake it now for what was held (before a poll blocks). */
void lx_uring_hold(int on);
void lx_uring_kick(void);

/* uring_prep.c: after a step's completion, prepare the next step of a
 * request that has several (LX_CAP_STEPS: slurp's open, read..., close).
 * Returns 1 if sqe was filled (the request stays in the kernel), 0 if the
 * request is finished (r->result set; r->ran if it took effect). */
int lx_ring_step(Request *r, int res, struct io_uring_sqe *sqe);
/* The request is cancelled or abandoned: let go of what its steps hold (an
 * fd, a buffer; res is the completion of the step in the kernel). */
void lx_ring_step_abort(Request *r, int res);

#endif
