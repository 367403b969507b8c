/* workers.c: the thread-pool backend: pool.c's workers run a request's
 * row, and a poller with nothing to hand out helps with what cannot block. */
#define _GNU_SOURCE
#include "backend.h"
#include "inline.h"
#include "ops.h"
#include "ops_run.h"

#include <errno.h>
#include <stdio.h>
#include <sys/utsname.h>

/* What a poller may try itself (lx_pool_help): how large, how many. */
#define TRY_MAX_BYTES (64 * 1024)
#define HELP_MAX 4

/* poll_helps(): on unless the kernel is too old (lx_workers_init). */
static int help_on;

/* A try of a small read that the ring would take from a cold fd
 * (probe_cache, uring.c) missed the page cache (EAGAIN) or stopped short:
 * the fd's next small reads go to the ring for a while. */
static void note_probe(Request *r, int rc)
{
    if (rc <= 0 && (rc < 0 || errno == EAGAIN))
        lx_inline_missed(r);
    r->probe_cache = 0;   /* tried once */
}

static void run_request(lx_req *base)
{
    Request *r = REQ_OF(base);
    if (__atomic_load_n(&base->cancelled, __ATOMIC_ACQUIRE))
        return;
    /* A cached read costs the same with RWF_NOWAIT (one syscall); a miss
     * costs one more, against the device's ~100 us. */
    if (r->probe_cache) {
        int rc;
        errno = 0;
        if ((rc = lx_ops[r->op].try_now(r)) > 0) {
            __atomic_store_n(&r->ran, 1, __ATOMIC_RELEASE);
            return;
        }
        note_probe(r, rc);
    }
    lx_ops[r->op].run(r);
    __atomic_store_n(&r->ran, 1, __ATOMIC_RELEASE);   /* lx_undo_effect may race */
}

/* In a poller with nothing else to do (lx_pool_help): no GIL either. */
static int try_request(lx_req *base)
{
    Request *r = REQ_OF(base);
    int rc;
    if (__atomic_load_n(&base->cancelled, __ATOMIC_ACQUIRE))
        return 1;   /* finished unrun, as a worker would leave it */
    errno = 0;
    if ((rc = lx_ops[r->op].try_now(r)) > 0)
        __atomic_store_n(&r->ran, 1, __ATOMIC_RELEASE);
    else if (r->probe_cache)
        note_probe(r, rc);
    return rc;
}

/* Only positioned I/O is tried first: a try that stops short leaves the
 * rest to a worker, which a file position moved meanwhile would break.
 * Only small requests: a try must cost no more than the linger it
 * replaces (a 64 KiB copy from the page cache: a few microseconds).  (And
 * only into memory that is not a file mapping: args.c checks the buffer.)
 * Only reads: the other rows' tries are for inline awaits (inline.c). */
int lx_workers_may_try(const Request *r)
{
    return lx_ops[r->op].try_now && r->data && help_on && r->offset >= 0 && r->length <= TRY_MAX_BYTES;
}

void lx_workers_set_help(int on) { help_on = on; }

/* A copy (pool.h: at most one per CPU runs at once) moves this much or
 * more: 256 KiB from the page cache is ~50 us of copying here, longer
 * than a worker's wake-up (~25 us); smaller ones run as any request.  W3
 * (1 MiB cached reads, 4 in flight, Intel Xeon 2 vCPU): four workers
 * copying on two CPUs, each completion woke a sleeping worker and the
 * loop thread waited for the queue's lock held by a preempted one. */
#define COPY_MIN_BYTES (256 * 1024)

/* Not from an O_DIRECT fd (one fcntl(2), ~0.3 us against the ~50 us of
 * the copy): the device moves those bytes, and several wait for it at
 * once.  A copy that blocks all the same (a file not cached, a pipe)
 * counts as blocked and lifts the cap (pool.c). */
static int is_copy(Request *r)
{
    return (lx_ops[r->op].caps & LX_CAP_COPY) && lx_request_bytes(r) >= COPY_MIN_BYTES
           && lx_fd_kind(r) == LX_FD_BUFFERED;
}

static void submit(lx_req **reqs, unsigned long n)
{
    for (unsigned long k = 0; k < n; k++)
        reqs[k]->copy = is_copy(REQ_OF(reqs[k]));
    lx_pool_submit_many(reqs, n);
}
static void cancel(lx_req *req) { lx_pool_cancel(req); }
static unsigned long in_flight(void) { return lx_pool_nready() + lx_pool_nrunning(); }

/* Read in the order requests move (ready -> running -> results) so none
 * slips between: the caller reads the sink's count after this. */
static int can_finish(void)
{
    unsigned long ready = lx_pool_nready();
    unsigned long running = lx_pool_nrunning();
    if (running)
        return 1;
    if (ready)
        return lx_pool_max_threads() > 0;
    return -1;
}

/* One a helper is giving back (pool.h). */
static int confirm_idle(void) { return lx_pool_in_flight(); }

/* Alone in flight, so a running worker is one just done with an earlier
 * request: it spins for the next as soon as it is back. */
static int quick_ok(void)
{
    return lx_pool_nready() <= lx_pool_nspinning() + lx_pool_nrunning();
}

static int can_help(void) { return help_on && lx_pool_can_help(); }

/* Under a time limit (max_poll_time), one at a time between looks at the
 * clock. */
static int help(int one_by_one) { return lx_pool_help(one_by_one ? 1 : HELP_MAX); }

static unsigned shutdown(int64_t timeout_ns)
{
    lx_pool_set_max_threads(0);
    return lx_pool_stop(timeout_ns);
}

static int linger(int64_t spin_ns) { return lx_pool_linger(spin_ns); }
static unsigned stop(int64_t timeout_ns) { return lx_pool_stop(timeout_ns); }
static lx_req **abandon(long *n) { return lx_pool_abandon(n); }
static lx_req *orphans(void) { return lx_pool_orphans(); }

const lx_backend lx_workers = LX_BACKEND_TABLE("threads");

const lx_backend *const lx_backends[LX_NBACKENDS] = {&lx_workers, &lx_uring};

/* Before Linux 5.9, RWF_NOWAIT did not stop a read from starting readahead
 * I/O: a poller's try could wait to submit it.  Helping is off there. */
static int kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;
    if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return 0;
    return ma > major || (ma == major && mi >= minor);
}

int lx_workers_init(void)
{
    help_on = kernel_at_least(5, 9);
    return lx_pool_init(run_request, try_request);
}
