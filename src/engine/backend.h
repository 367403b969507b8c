/* backend.h: what runs requests, as the request layer sees it.
 *
 * A backend takes requests (lx_submit_fn), runs them by their row (ops.h)
 * and finishes each through the one completion sink (completion.h), with
 * its result or -errno in the request.  The thread pool (workers.c over
 * pool.c) is the first; an io_uring backend is to be the next.  The request
 * layer calls a backend through this table once per request (submit,
 * cancel); the checks that must hold for the whole engine (can anything
 * still finish? may an await spin?) ask every backend.
 *
 * Calls marked "no GIL" are made with it released: they may block. */
#ifndef LINUXAIO_BACKEND_H
#define LINUXAIO_BACKEND_H

#include "engine.h"

typedef struct {
    const char *name;
    /* Queue requests (state LX_NEW); one that cannot run (no thread
     * could be started) finishes at once through the sink, with error. */
    void (*submit)(lx_req **reqs, unsigned long n);
    /* Flag it cancelled; one not started finishes at once, unrun. */
    void (*cancel)(lx_req *req);
    /* Requests queued or running here (lock-free, approximate). */
    unsigned long (*in_flight)(void);
    /* Can what it holds still finish without more submissions?  1 yes, 0
     * it holds work it cannot run (why: stuck_why), -1 it holds nothing
     * (read lock-free, in the order requests move; see confirm_idle). */
    int (*can_finish)(void);
    const char *stuck_why;
    /* After can_finish() said -1 and the sink was empty: 1 if a request is
     * still on its way after all (read under the backend's lock). */
    int (*confirm_idle)(void);
    /* A request alone in flight: will something take it at once, so that
     * its awaiter may spin for the result instead of sleeping? */
    int (*quick_ok)(void);
    /* A poller with nothing to hand out may help (run requests that
     * cannot block, no GIL): can_help is the cheap test, help returns how
     * many it finished; one_by_one under a time limit. */
    int (*can_help)(void);
    int (*help)(int one_by_one);
    /* Spin up to spin_ns for a result of one of its requests (no GIL
     * needed: it is short).  1 if results wait. */
    int (*linger)(int64_t spin_ns);
    /* reinit (no GIL): cancel what is queued and wait up to timeout_ns for
     * what runs; then abandon what still runs (pool.h, lx_pool_abandon). */
    unsigned (*stop)(int64_t timeout_ns);
    lx_req **(*abandon)(long *n);
    /* Interpreter exit (no GIL): start nothing more, wait up to timeout_ns;
     * returns how many still run. */
    unsigned (*shutdown)(int64_t timeout_ns);
    /* After fork(), in the child: what the parent had here, to drop. */
    lx_req *(*orphans)(void);
} lx_backend;

/* A backend's table, from the functions of these names in the file that
 * defines it (static there), so that a member added to lx_backend is
 * written for every backend or the build fails (a table left without it
 * would hold NULL, found only when it is called).  Either backend holds
 * work it cannot run only under max_parallel(0). */
#define LX_BACKEND_TABLE(label) { \
    .name = (label), .submit = submit, .cancel = cancel, .in_flight = in_flight, \
    .can_finish = can_finish, .stuck_why = "max_parallel is 0", \
    .confirm_idle = confirm_idle, .quick_ok = quick_ok, .can_help = can_help, .help = help, \
    .linger = linger, .stop = stop, .abandon = abandon, .shutdown = shutdown, \
    .orphans = orphans, \
}

/* The thread pool (workers.c) and the io_uring ring (uring.c). */
extern const lx_backend lx_workers;
extern const lx_backend lx_uring;

/* Every backend, for the checks that ask them all. */
#define LX_NBACKENDS 2
extern const lx_backend *const lx_backends[LX_NBACKENDS];

/* Where a submitted request runs: decided as it is submitted.  The ring
 * thread may clear on_ring later (a file the ring refuses goes to the
 * threads) while the loop's thread asks: an atomic load (ThreadSanitizer). */
static inline const lx_backend *lx_backend_of(const Request *r)
{
    return __atomic_load_n(&r->on_ring, __ATOMIC_RELAXED) ? &lx_uring : &lx_workers;
}

/* Submit requests, each to the backend that takes it (uring.c decides:
 * the ring for a row with a ring prep whose request qualifies, else the
 * threads). */
void lx_backend_submit(lx_req **reqs, unsigned long n);

/* workers.c besides the table: set up the pool, the help knob, and whether
 * a submitted request is worth a poller's try (args.c then checks its
 * buffer). */
int lx_workers_init(void);
void lx_workers_set_help(int on);
int lx_workers_may_try(const Request *r);

#endif
