/* pool.h: a priority thread pool that knows nothing of I/O.
 *
 * A request enters with lx_pool_submit(), waits in one of nine priority
 * queues, is run by a worker thread through the run function given to
 * lx_pool_init(), and leaves through the one completion sink
 * (completion.h), as every backend's requests do.
 *
 * Nothing here touches a Python object; the caller serialises calls that are
 * not marked "any thread" (the extension does so with the GIL).
 */
#ifndef LINUXAIO_POOL_H
#define LINUXAIO_POOL_H

#include "completion.h"

/* Run req only if that cannot block: 1 if it is done, 0 if it must go to a
 * worker untouched, -1 if it was started (part done) and a worker must
 * finish it: it is then run with lx_run_fn as usual. */
typedef int (*lx_try_fn)(lx_req *req);

/* After lx_completion_init().  Returns 0, or -1 with errno set. */
int lx_pool_init(lx_run_fn run, lx_try_fn try_run);

/* A request is queued, and a worker thread is started for it if need be.
 * Should none be running and none start (pthread_create fails: RLIMIT_NPROC,
 * threads-max), everything queued finishes at once, unrun, with error set
 * to the errno: nothing would ever run it. */
void lx_pool_submit(lx_req *req);
void lx_pool_submit_many(lx_req **reqs, unsigned long n);
/* 1 if the request was still queued: it is now in the result queue, unrun. */
int lx_pool_cancel(lx_req *req);

/* Spin up to spin_ns for a result while requests are in a worker's hands;
 * cheaper than a sleep/wake-up through the eventfd (see lx_pool_spin_ns). */
int lx_pool_linger(int64_t spin_ns);
/* A poller with nothing to hand out helps instead of waiting: it runs the
 * most urgent queued requests itself, up to max of them, while they are
 * tryable (see lx_try_fn) and more wait than spinning workers will take.
 * Returns how many it finished (on the result queue now); the others go
 * back in front.  lx_pool_can_help() is the cheap, lock-free test for
 * whether to call it.  Call without the GIL: the try does I/O. */
int lx_pool_can_help(void);
int lx_pool_help(int max);
/* Whether any request is queued, running or finished, read under the
 * queue lock: the lock-free counters can miss one that a helper is giving
 * back to the queue. */
int lx_pool_in_flight(void);

/* Counters; approximate when read without the caller's serialisation. */
unsigned long lx_pool_nready(void);    /* queued, not started */
unsigned long lx_pool_nrunning(void);  /* in a worker's hands */
/* For the ring (uring.c), read without locks: the most urgent priority
 * queued here (0..LX_NPRI-1, -1: none), whether a thread may start one more. */
int lx_pool_top_pri(void);
int lx_pool_may_start(void);

/* The ring's side of the limit both share (max_parallel), as the pool
 * sees it: hooks the ring sets before its first request (a lower layer
 * reaches a higher one through hooks), NULL while there is no ring.  All
 * read without locks: requests in the kernel, requests waiting, the limit,
 * the most urgent waiting priority (-1: none, or the ring stops). */
typedef struct {
    unsigned long (*nrunning)(void);
    unsigned long (*nready)(void);
    unsigned (*limit)(void);
    int (*top_pri)(void);
    /* The pool's share changed (a start, a finish, a cancelled queued
     * request): the peer looks again if it holds requests back for it.
     * Called after a seq_cst fence, with or without q_lock. */
    void (*room)(void);
} lx_pool_peer_hooks;
extern const lx_pool_peer_hooks *lx_pool_peer;
/* The peer's share changed (requests of its finished, started, or were
 * cancelled; its limit rose; it stops): workers waiting for it look again.
 * Any thread, without the peer's lock; after the change is stored. */
void lx_pool_peer_changed(void);
unsigned lx_pool_nthreads(void);
unsigned lx_pool_nspinning(void);      /* workers spinning for new work */
unsigned lx_pool_max_threads(void);

void lx_pool_min_threads(unsigned n);  /* raise the thread limit to >= n */
void lx_pool_set_max_threads(unsigned n); /* lower it to <= n, stopping extras */
void lx_pool_set_max_idle(unsigned n);
/* While the recent requests spent most of their time off the CPU (blocked
 * on a device: a cold open, stat or read), the pool may grow beyond the
 * thread limit up to n threads; the extra ones leave as soon as nothing
 * is queued.  n <= the thread limit: never. */
void lx_pool_set_max_blocking(unsigned n);
unsigned lx_pool_max_blocking(void);
/* Called by a run function, in a worker: the time this request spends off
 * the CPU is not a device's (aio_busy's sleep), so the pool does not grow
 * for it. */
void lx_pool_not_storage(void);
/* Requests marked copy (lx_req.copy: the backend's call, a large read or
 * write of cached data) spend their run on the CPU: more of them at once
 * than there are CPUs only share the CPUs, and each hand-off between them
 * costs wake-ups and caches.  At most n run at once (default: the CPUs this
 * process may run on, sched_getaffinity(2); at least 1); the others wait
 * queued, while other requests queued behind them may start.  Not while the
 * requests block (see lx_pool_set_max_blocking): copies that wait for a
 * device start as any request.  Returns the previous n. */
unsigned lx_pool_set_max_copies(unsigned n);
unsigned lx_pool_max_copies(void);
/* Copies running now, and the most that ever ran at once (for tests). */
unsigned lx_pool_ncopies_running(void);
unsigned lx_pool_copies_peak(void);
/* Copies whose result left the poller's wake-up to the next one, ever
 * (a copy done while another waits for the workers; see pool.c). */
unsigned long lx_pool_copies_owed(void);
void lx_pool_set_idle_timeout(double seconds);
void lx_pool_set_spin(int64_t ns);

/* Stop every worker: queued requests move to the result queue unrun and
 * marked cancelled.  Waits up to timeout_ns for running ones (call without
 * the GIL).  Returns the number of workers still running at the end. */
unsigned lx_pool_stop(int64_t timeout_ns);
/* After lx_pool_stop(): workers still running (blocked: an empty pipe, a
 * hung NFS server) are abandoned and the pool is ready for reuse.  Their
 * threads are no longer counted and exit when their request returns; the
 * requests (and those of polling threads in lx_pool_help) are flagged
 * abandoned and cancelled, and returned in a malloc'd array (*n of them,
 * the caller frees it; NULL with *n = 0 if none, or with *n = -1 if the
 * array could not be allocated: nothing was abandoned then).  The caller
 * keeps each alive, with every buffer it points into, until it comes back
 * from lx_take_late(): never on the result queue, and after the function
 * given to lx_on_abandoned() has run on it in the thread that finished it
 * (no GIL: to close an fd it opened, say).  Call without the GIL. */
lx_req **lx_pool_abandon(long *n);

/* After fork(), in the child: the workers are gone.  Every request the
 * parent had queued or running here (abandoned ones included) is handed
 * back, linked by next, for the caller to drop (and the sink's, by
 * lx_completion_orphans()); the pool starts afresh. */
lx_req *lx_pool_orphans(void);

#endif
