/* uring.c: the io_uring backend (see uring.h for who does what).
 *
 * A request here is pending (state LX_QUEUED, on one of nine priority
 * lists, under R.lock) until the ring thread hands it to the kernel
 * (LX_RUNNING, on the in-flight list), then finishes through the one sink
 * (completion.h) in batches: one lx_complete_many, so one eventfd write,
 * per batch of completions.  What the ring holds never exceeds the limit
 * max_parallel/min_parallel set, nor what the completion queue holds: the
 * kernel never has to keep a completion aside (the CQ overflow list). */
#define _GNU_SOURCE
#include "uring.h"
#include "inline.h"
#include "ops_run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

#define R lx_R

/* Nesting of polls in this thread that hold wake-ups (lx_uring_hold). */
static _Thread_local int hold_depth;
/* Requests polls have queued, held, since the ring thread last woke (lock
 * held). */
static unsigned long nheld;

/* ---- the ring thread: submits, waits, reaps ---- */

static struct io_uring_sqe *next_sqe(void)
{
    unsigned idx = R.sq_local_tail & *R.sq_mask;
    R.sq_array[idx] = idx;
    R.sq_local_tail++;
    R.cqes_due++;
    return &R.sqes[idx];
}

static unsigned sq_room(void) { return R.sq_entries - (R.sq_local_tail - LOAD(*R.sq_head)); }

/* Whether another entry may go in: room in the SQ, and a completion slot
 * for it that no earlier entry may claim. */
static int may_add(void) { return sq_room() > 0 && R.cqes_due < R.cq_entries; }

static int top_pending_pri(void)
{
    for (int p = LX_NPRI - 1; p >= 0; p--)
        if (__atomic_load_n(&R.pending[p].head, __ATOMIC_RELAXED))
            return p;
    return -1;
}


static lx_req *next_pending(void)
{
    for (int p = LX_NPRI - 1; p >= 0; p--)
        if (R.pending[p].head) {
            lx_req *req = R.pending[p].head;
            lx_list_unlink(&R.pending[p], req);
            STORE(R.npending, R.npending - 1);
            return req;
        }
    return NULL;
}

/* max_parallel bounds what runs on both backends together: a request the
 * threads run counts here too (IO::AIO's semantics: with max_parallel(1)
 * and one request running, nothing else starts).  Lock held. */
static int below_limit(void)
{
    return !R.stopping && R.ninflight + lx_pool_nrunning() < R.limit;
}

/* Priorities order what starts across both backends: when what is left of
 * the limit cannot take every request queued on the threads, a more urgent
 * one there goes first if a thread is free to start it (the ring looks
 * again within HELD_WAIT_NS).  Lock held, requests pending. */
static int yields_to_threads(void)
{
    unsigned long used = R.ninflight + lx_pool_nrunning(), waiting = lx_pool_nready();
    if (!waiting || R.limit > used + waiting)
        return 0;
    return lx_pool_top_pri() > top_pending_pri() && lx_pool_may_start();
}

int lx_ring_stream_reads;

/* Which fd fill() last asked is_stream about, and the answer: one syscall
 * per fd per pass, not per request (W5's 64 reads of one fd). */
typedef struct {
    int fd, stream;
} fd_kind;

/* A positioned read or write of a stream: io_uring ignores the offset of
 * a stream and reads or writes it, where pread(2)/pwrite(2) on a thread
 * fail with ESPIPE.  The same request must give the same result whichever
 * backend runs it, so the ring finishes it with ESPIPE, unrun.  (A stream
 * at the file position, offset -1, comes here knowingly: ring_takes.)
 * Asked in the ring thread, at the last moment before the kernel sees the
 * fd, as a worker's pread would find it then.  Lock held. */
static int refused_positioned(Request *r, fd_kind *seen)
{
    const lx_op *row = &lx_ops[r->op];
    if (!(row->caps & LX_CAP_POSITIONED) || (row->caps & LX_CAP_STEPS) || r->offset < 0)
        return 0;
    if (r->fd != seen->fd) {
        seen->fd = r->fd;
        seen->stream = lx_is_stream(r->fd);
        R.n_fd_checks++;
    }
    if (!seen->stream)
        return 0;
    r->result = -ESPIPE;
    r->base.run_ns = 0;
    __atomic_store_n(&r->ran, 1, __ATOMIC_RELEASE);   /* a real result, as pread's */
    R.n_refused++;
    return 1;
}

/* Fill submission entries: the wake-up read, cancels, then pending
 * requests by priority, while the limit and the queues allow.  Lock held. */
static void fill(void)
{
    lx_req *refused[BATCH], *current[BATCH];
    int nrefused = 0;
    fd_kind seen = {-1, 0};
    if (!R.wake_armed && may_add()) {
        struct io_uring_sqe *sqe = next_sqe();
        memset(sqe, 0, sizeof *sqe);
        sqe->opcode = IORING_OP_READ;
        sqe->fd = R.wake_fd;
        sqe->addr = (uint64_t)(uintptr_t)&R.wake_buf;
        sqe->len = sizeof R.wake_buf;
        sqe->user_data = WAKE_TAG;
        R.wake_armed = 1;
    }
    while (R.ncancel && may_add()) {
        struct io_uring_sqe *sqe = next_sqe();
        memset(sqe, 0, sizeof *sqe);
        sqe->opcode = IORING_OP_ASYNC_CANCEL;
        sqe->fd = -1;
        sqe->addr = (uint64_t)(uintptr_t)R.to_cancel[--R.ncancel];
        sqe->user_data = CANCEL_TAG;
    }
    while (R.npending && below_limit() && may_add() && !yields_to_threads()) {
        lx_req *req = next_pending();
        Request *r = REQ_OF(req);
        struct io_uring_sqe *sqe;
        if (refused_positioned(r, &seen)) {
            refused[nrefused++] = req;
            if (nrefused == BATCH) {
                lx_complete_many(refused, current, nrefused);
                nrefused = 0;
            }
            continue;
        }
        sqe = next_sqe();
        lx_ops[r->op].prep(r, sqe);
        sqe->user_data = (uint64_t)(uintptr_t)req;
        req->run_ns = lx_now_ns();
        STORE(req->state, LX_RUNNING);
        lx_list_append(&R.inflight, req);
        STORE(R.ninflight, R.ninflight + 1);
        R.n_started++;
    }
    if (nrefused)
        lx_complete_many(refused, current, nrefused);
}

/* Lock held: an ASYNC_CANCEL for req is to be sent (fill() sends it).
 * -1 if there is no memory to note it. */
static int queue_cancel(lx_req *req)
{
    if (R.ncancel == R.cancel_cap) {
        unsigned cap = R.cancel_cap ? 2 * R.cancel_cap : 64;
        lx_req **a = realloc(R.to_cancel, cap * sizeof *a);
        if (!a)
            return -1;
        R.to_cancel = a;
        R.cancel_cap = cap;
    }
    R.to_cancel[R.ncancel++] = req;
    return 0;
}

static void forget_cancel(lx_req *req)
{
    for (unsigned i = 0; i < R.ncancel; i++)
        if (R.to_cancel[i] == req) {
            R.to_cancel[i] = R.to_cancel[--R.ncancel];
            return;
        }
}

/* One completion of a request.  Returns the request if it finished, NULL
 * if it goes on (a next step submitted) or goes to the threads (*back). */
static lx_req *reaped(lx_req *req, int64_t res, lx_req **back)
{
    Request *r = REQ_OF(req);
    const lx_op *row = &lx_ops[r->op];
    int stopped = CANCELLED(r) || req->abandoned;
    if (row->caps & LX_CAP_STEPS) {
        if (stopped) {
            lx_ring_step_abort(r, (int)res);
            res = -ECANCELED;
        } else if (may_add()) {
            struct io_uring_sqe *sqe = &R.sqes[R.sq_local_tail & *R.sq_mask];
            if (lx_ring_step(r, (int)res, sqe)) {
                next_sqe();
                sqe->user_data = (uint64_t)(uintptr_t)req;
                return NULL;
            }
            res = r->result;
        } else {   /* cannot happen: the request's own slot is free again */
            lx_ring_step_abort(r, (int)res);
            res = -EAGAIN;
        }
    }
    forget_cancel(req);
    lx_list_unlink(&R.inflight, req);
    STORE(R.ninflight, R.ninflight - 1);
    if (req->abandoned)
        R.nabandoned--;
    /* A file the ring refuses (EOPNOTSUPP) goes to the threads, unseen. */
    if (res == -EOPNOTSUPP && !(row->caps & LX_CAP_STEPS) && !stopped) {
        __atomic_store_n(&r->on_ring, 0, __ATOMIC_RELAXED);   /* read unlocked: lx_backend_of */
        STORE(req->state, LX_NEW);
        *back = req;
        return NULL;
    }
    req->run_ns = lx_now_ns() - req->run_ns;
    R.n_kernel_ns += (unsigned long)req->run_ns;
    r->result = res;
    __atomic_store_n(&r->ran, !(res == -ECANCELED && stopped), __ATOMIC_RELEASE);
    return req;
}

/* Reap every completion there is; finish the requests in batches through
 * the sink.  Lock held (so a reinit's abandon sees each request either in
 * flight or finished).  Returns how many went to the threads (back[]). */
static int reap(lx_req **back)
{
    lx_req *done[BATCH], *current[BATCH];
    int nd = 0, nb = 0;
    unsigned head = *R.cq_head, tail = LOAD(*R.cq_tail);
    for (; head != tail; head++) {
        struct io_uring_cqe *cqe = &R.cqes[head & *R.cq_mask];
        uint64_t ud = cqe->user_data;
        lx_req *req, *fb = NULL;
        R.cqes_due--;
        if (ud == WAKE_TAG) {
            R.wake_armed = 0;
            continue;
        }
        if (ud == CANCEL_TAG)
            continue;
        if ((req = reaped((lx_req *)(uintptr_t)ud, cqe->res, &fb)))
            done[nd++] = req;
        if (fb)
            back[nb++] = fb;
        if (nd == BATCH) {
            R.n_reaped += (unsigned long)nd;   /* counted before the waiter can see them */
            R.n_sink++;
            lx_complete_many(done, current, nd);
            nd = 0;
        }
        if (nb == BATCH)
            break;   /* the caller hands these over, then comes back */
    }
    STORE(*R.cq_head, head);
    if (nd) {
        R.n_reaped += (unsigned long)nd;
        R.n_sink++;
        lx_complete_many(done, current, nd);
    }
    return nb;
}

/* The kernel runs what cannot complete inline (an open whose name is not
 * cached, every IOSQE_ASYNC open) on workers of the submitting thread, by
 * default at most 4 per CPU at once (io-wq's bounded workers): 8 here.
 * Requests in flight beyond that wait in the kernel's queue unseen, behind
 * whatever blocks those 8 (an open of a FIFO waits for a writer for ever),
 * where max_parallel promised they run.  So the cap is raised to
 * KERNEL_WORKERS_PER_CPU per CPU (at most the completion queue: never more
 * in flight): W8 (cold opens, 64 in flight, 2 CPUs) spent the same CPU
 * per file with 16 or 32 in all as with 8 (33-40 us, three alternating
 * rounds under load); with no cap but the CQ (30-45 alive) up to 1.3x as
 * much.  Workers start on demand and leave when idle.  Per
 * thread: only the ring thread, the one submitter, can set it.  Before
 * 5.15 (EINVAL) the default stays. */
#define KERNEL_WORKERS_PER_CPU 16

static void cap_kernel_workers(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned cap = (unsigned)(ncpu > 0 ? ncpu : 1) * KERNEL_WORKERS_PER_CPU;
    unsigned workers[2];   /* bounded; unbounded (0): left as is */
    if (cap > R.cq_entries)
        cap = R.cq_entries;
    workers[0] = cap;
    workers[1] = 0;
    if (sys_register(R.fd, IORING_REGISTER_IOWQ_MAX_WORKERS, workers, 2) == 0)
        STORE(R.kernel_workers, cap);
}

static void *ring_main(void *unused)
{
    lx_req *back[BATCH];
    pthread_setname_np(pthread_self(), "linuxaio-ring");   /* for top -H, perf, py-spy */
    if ((R.setup_flags & IORING_SETUP_R_DISABLED) && sys_register(R.fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
        abort();   /* a ring set up disabled that cannot be enabled: nothing could run */
    cap_kernel_workers();
    pthread_mutex_lock(&R.lock);
    for (;;) {
        unsigned to_submit, wait, overflowed;
        int rc, nb;
        struct io_uring_getevents_arg arg;
        struct __kernel_timespec ts = {0, HELD_WAIT_NS};
        /* Pending requests may be held back by the threads' share of the
         * limit (or by a more urgent request of theirs): the pool then
         * wakes this thread when its share changes (peer_room).  The flag
         * is published before fill() reads the pool's counts, so a change
         * fill() missed finds it set (the pool's fence pairs with this). */
        __atomic_store_n(&R.peer_wait, R.npending != 0, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        R.turn++;   /* what fill() prepares and this turn's reap finds back was done inline */
        fill();
        /* Held only by the ring's own limits: its completions wake it. */
        if (R.peer_wait && (!R.npending || R.stopping || !may_add() || R.ninflight >= R.limit))
            STORE(R.peer_wait, 0);
        STORE(*R.sq_tail, R.sq_local_tail);
        to_submit = R.sq_local_tail - LOAD(*R.sq_head);
        /* Sleep only with nothing else to do.  While a poll holds wake-ups,
         * sleep briefly: a request it queued must not wait for a completion
         * that may be long in coming. */
        wait = LOAD(*R.cq_tail) == *R.cq_head;   /* fill() sent all it could */
        /* The CQ overflowed after all (fill() keeps cqes_due within it, so
         * only a kernel that posts more than one completion per entry could
         * do it): the kernel kept the rest aside (IORING_FEAT_NODROP, which
         * setup requires) and hands them over on an enter with GETEVENTS.
         * Enter at once, without sleeping, then reap: nothing is lost. */
        overflowed = (LOAD(*R.sq_flags) & IORING_SQ_CQ_OVERFLOW) != 0;
        if (overflowed) {
            R.n_overflow_flushes++;
            wait = 0;
        }
        /* holders and held are also read and written outside the lock
         * (lx_uring_hold, lx_uring_kick): atomic accesses, or a data race */
        /* The threads wake it when their share changes (peer_room); a
         * long timed wait as a backstop, should a wake-up ever be missed. */
        R.asleep = !wait ? 0 : !(R.features & IORING_FEAT_EXT_ARG) ? 1 : LOAD(R.holders) ? 2 : R.peer_wait ? 3 : 1;
        if (R.asleep == 3)
            ts.tv_nsec = PEER_BACKSTOP_NS;
        pthread_mutex_unlock(&R.lock);
        /* what fill() started and the last reap finished: workers waiting
         * for the ring's share of the limit look again */
        lx_pool_peer_changed();
        memset(&arg, 0, sizeof arg);
        arg.ts = (uint64_t)(uintptr_t)&ts;
        if (!wait && !to_submit && !overflowed)
            rc = 0;   /* completions wait already, nothing to hand over */
        else if (R.asleep >= 2)
            rc = sys_enter(R.fd, to_submit, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
        else
            rc = sys_enter(R.fd, to_submit, wait, IORING_ENTER_GETEVENTS, NULL, 0);
        if (wait || to_submit || overflowed)
            R.n_enters++;
        if (to_submit)
            R.n_submit_enters++;
        if (rc > 0)
            R.n_submitted += (unsigned long)rc;
        if (rc < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY && errno != ETIME)
            usleep(1000);   /* should not happen: do not spin on it */
        pthread_mutex_lock(&R.lock);
        R.asleep = 0;
        R.woken = 0;
        nheld = 0;
        STORE(R.held, 0);
        nb = reap(back);
        if (R.ninflight <= R.nabandoned || R.stopping)
            pthread_cond_broadcast(&R.settled);
        if (nb) {
            STORE(R.nhanding, R.nhanding + (unsigned long)nb);
            pthread_mutex_unlock(&R.lock);
            lx_pool_submit_many(back, (unsigned long)nb);
            pthread_mutex_lock(&R.lock);
            STORE(R.nhanding, R.nhanding - (unsigned long)nb);
        }
    }
    return NULL;
}

/* Held requests go in at the poll's end, or once they are a quarter of
 * what is in the kernel (at least HOLD_MIN): a poll that hands out a long
 * batch of results (64 awaiting tasks, each queueing its next read) then
 * feeds the device a few batches as it goes, instead of leaving a drain's
 * worth of its queue idle until the drain ends. */
#define HOLD_MIN 8

/* Lock held; returns whether the caller must write the wake-up (unlocked).
 * held: how many requests a poll that holds wake-ups just queued (0: the
 * caller holds none). */
static int want_wake(unsigned long held)
{
    if (!R.asleep || R.woken)
        return 0;
    if (held && R.asleep == 2) {
        unsigned long cap = R.ninflight / 4;
        nheld += held;
        if (nheld < (cap > HOLD_MIN ? cap : HOLD_MIN)) {
            STORE(R.held, 1);   /* lx_uring_kick reads it unlocked */
            return 0;
        }
    }
    R.woken = 1;
    return 1;
}

static void write_wake(void)
{
    uint64_t one = 1;
    __atomic_add_fetch(&R.n_wakes, 1, __ATOMIC_RELAXED);
    (void)!write(R.wake_fd, &one, sizeof one);
}

/* ---- the pool's view of the ring (pool.h: lx_pool_peer) ---- */

static unsigned long peer_nrunning(void)
{
    unsigned long n = LOAD(R.ninflight), a = LOAD(R.nabandoned);
    return n > a ? n - a : 0;
}

static unsigned long peer_nready(void) { return LOAD(R.npending); }
static unsigned peer_limit(void) { return LOAD(R.limit); }
static int peer_top_pri(void) { return LOAD(R.npending) && !LOAD(R.stopping) ? top_pending_pri() : -1; }

/* The pool's share of the limit changed (a thread started or finished a
 * request, a queued one was cancelled): if pending requests here wait on
 * it, look again.  Called with or without the pool's lock (lock order:
 * the pool's, then the ring's); the caller's fence orders its count's
 * change before the load of peer_wait. */
static void peer_room(void)
{
    int wake = 0;
    if (!LOAD(R.peer_wait))
        return;
    pthread_mutex_lock(&R.lock);
    if (R.peer_wait && (wake = want_wake(0)))
        R.n_peer_wakes++;
    pthread_mutex_unlock(&R.lock);
    if (wake)
        write_wake();
}

static const lx_pool_peer_hooks peer_hooks = {peer_nrunning, peer_nready, peer_limit, peer_top_pri, peer_room};

/* With the GIL: the ring thread, started on first use (in a fork's child,
 * after a new ring is set up).  0 if the ring cannot be used. */
static int ring_ready(void)
{
    sigset_t all, old;
    int err;
    if (LOAD(R.thread_up))
        return 1;
    if (!R.up)
        return 0;
    if (R.refit && lx_ring_setup() < 0) {
        R.up = 0;
        return 0;
    }
    R.refit = 0;
    /* From now on ring requests count against the limit the pool applies. */
    __atomic_store_n(&lx_pool_peer, &peer_hooks, __ATOMIC_RELEASE);
    /* Signals go to Python's threads, never to the ring's. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&R.thread, NULL, ring_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        snprintf(R.reason, sizeof R.reason, "io_uring ring thread could not be started (%s); "
                 "requests run on threads", strerror(err));
        return 0;
    }
    pthread_detach(R.thread);
    STORE(R.thread_up, 1);
    return 1;
}

/* ---- routing (with the GIL): which backend runs a request ---- */

static int direct_aligned(const Request *r)
{
    uintptr_t addr = r->rare && r->rare->niov ? (uintptr_t)r->rare->iov[0].iov_base : (uintptr_t)r->data;
    int64_t len = r->rare && r->rare->niov ? (int64_t)r->rare->iov[0].iov_len : r->length;
    return ((addr | (uintptr_t)r->offset | (uintptr_t)len) & 511) == 0;
}

/* A cached read on the ring is copied by the ring thread, inline, one
 * after the other; a 1 MiB copy there is slower than on threads (W3: the
 * ring 0.5-0.85x, where two threads copy at once), so only reads up to
 * this size go to the ring for being buffered. */
#define SMALL_READ (64 * 1024)

/* Whether a read's fd is O_DIRECT (lx_fd_kind: one fcntl(2)), remembered
 * per fd number for the rest of a poll_cb or drain, where callbacks and
 * tasks submit the next reads of the same fds: the fcntl per request cost
 * W1's callbacks (4 KiB cached reads, ~1.3 us each) several percent
 * against the threads, and W5's (O_DIRECT) as much of the loop's time.  A
 * number closed and reused for another file within one poll would have
 * one read routed as the old file's was: on the ring or a thread, each
 * giving its right result.  Under the GIL. */
#define HINT_FDS 4096
static unsigned long kind_epoch[HINT_FDS];
static unsigned char kind_seen[HINT_FDS];
static _Thread_local int poll_depth;
static unsigned long poll_epoch;

static int poll_fd_kind(Request *r)
{
    int hinted = !r->fd_kind && poll_depth > 0 && r->fd >= 0 && r->fd < HINT_FDS;
    if (hinted && kind_epoch[r->fd] == poll_epoch)
        return r->fd_kind = kind_seen[r->fd];   /* for try_read too */
    lx_fd_kind(r);
    if (hinted) {
        kind_epoch[r->fd] = poll_epoch;
        kind_seen[r->fd] = r->fd_kind;
    }
    return r->fd_kind;
}

/* LINUXAIO_ENGINE=auto: where the ring measured faster (README's table). */
static int auto_takes(Request *r, unsigned caps)
{
    /* A small buffered read gains on the ring when it misses the page
     * cache (the device's queue depth), not when it hits: the ring thread
     * copies cached reads one after the other and hands each over through
     * the eventfd, where on the threads a poller with nothing to hand out
     * copies them itself (lx_pool_help) and an awaiter spins for its
     * worker.  W1 (4 KiB cached, 64 in flight, Intel Xeon 2 vCPU, 11
     * paired rounds): callbacks on the ring 0.61x the threads, awaits held
     * back by the inline budget 0.5-0.8x.  So it goes to the ring only if
     * its fd missed the cache lately: an inline try (inline.c) or the
     * worker's RWF_NOWAIT read (probe_cache, workers.c) marks it cold. */
    if ((caps & LX_CAP_SMALL) && lx_request_bytes(r) <= SMALL_READ) {
        /* (at the file position: a stream, sent here by _ring_stream_reads;
         * a stream has no page cache) */
        if (r->offset < 0 || !lx_inline_fd_warm(r->fd))
            return 1;
        if (lx_ops[r->op].try_now) {
            r->probe_cache = 1;   /* on the threads, unless O_DIRECT (below) */
            if (poll_fd_kind(r) == LX_FD_BUFFERED)
                return 0;
        } else if (!(r->delivery == DELIVER_FUTURE && lx_inline_enabled))
            return 1;   /* preadv: no probe to tell a miss, so as before */
    }
    if (!(caps & (LX_CAP_DIRECT | LX_CAP_SMALL)))
        return (caps & LX_CAP_ALWAYS) != 0;
    /* O_DIRECT wants the buffer, offset and length aligned (512 at least):
     * anything else is buffered I/O, and needs no fcntl(2) to tell. */
    if (!direct_aligned(r))
        return 0;
    return poll_fd_kind(r) == LX_FD_DIRECT;   /* asked once: an inline try may have */
}

static int ring_takes(Request *r)
{
    const lx_op *row = &lx_ops[r->op];
    r->probe_cache = 0;
    if (!row->prep || !R.up || !R.has_op[LX_RING_OPCODE(row->caps)])
        return 0;
    /* At the file position: on threads, where read(2) keeps the position
     * in step with other threads' reads (the ring's offset -1 would race
     * it).  A stream has no position (a pipe, a socket): the ring reads
     * one at -1 exactly as read(2), waiting for data in the kernel, not in
     * a worker; only with _ring_stream_reads(True), for now (programs and
     * tests occupy workers with pipe reads).  Writes: threads (a blocking
     * pipe write writes all, the ring's may stop short). */
    if ((row->caps & LX_CAP_POSITIONED) && r->offset < 0
        && (!lx_ring_stream_reads || !(row->caps & LX_CAP_SMALL) || (row->caps & LX_CAP_STEPS)))
        return 0;
    /* A read of nothing: pread(2) of a directory fails with EISDIR, the
     * ring's read (an iovec read) returns 0 (the threads answer as os) */
    if ((row->caps & LX_CAP_POSITIONED) && !(row->caps & LX_CAP_STEPS) && r->data && r->length == 0)
        return 0;
    /* a step machine knows its row's plain form only (slurp into a buffer,
     * or with flags: the threads) */
    if ((row->caps & LX_CAP_STEPS) && (r->has_view || r->flags || r->mode))
        return 0;
    if (R.mode == MODE_AUTO && !auto_takes(r, row->caps))
        return 0;
    /* max_parallel's limit taken by the threads and nothing here: the
     * threads' queue orders it by priority with what else waits there, and
     * starts it within the limit (the pool counts only its own). */
    if (!LOAD(R.ninflight) && lx_pool_nrunning() >= LOAD(R.limit))
        return 0;
    /* last: a syscall, for reads at the file position only */
    if ((row->caps & LX_CAP_POSITIONED) && r->offset < 0 && !lx_is_stream(r->fd))
        return 0;
    return ring_ready();
}

void lx_backend_submit(lx_req **reqs, unsigned long n)
{
    unsigned long i = 0;
    while (i < n) {
        unsigned long j = i;
        int ring;
        Request *r = REQ_OF(reqs[i]);
        ring = r->on_ring = (unsigned char)ring_takes(r);
        for (j = i + 1; j < n; j++) {
            Request *o = REQ_OF(reqs[j]);
            if ((o->on_ring = (unsigned char)ring_takes(o)) != ring)
                break;
        }
        (ring ? &lx_uring : &lx_workers)->submit(reqs + i, j - i);
        i = j;
    }
}

/* ---- the backend ---- */

static void submit(lx_req **reqs, unsigned long n)
{
    int wake;
    pthread_mutex_lock(&R.lock);
    for (unsigned long k = 0; k < n; k++) {
        STORE(reqs[k]->state, LX_QUEUED);
        lx_list_append(&R.pending[reqs[k]->pri - LX_PRI_MIN], reqs[k]);
    }
    STORE(R.npending, R.npending + n);
    wake = want_wake(hold_depth > 0 ? n : 0);
    pthread_mutex_unlock(&R.lock);
    if (wake)
        write_wake();
}

static void cancel(lx_req *req)
{
    int wake = 0, peer = 0;
    STORE(req->cancelled, 1);
    pthread_mutex_lock(&R.lock);
    if (LOAD(req->state) == LX_QUEUED) {
        lx_list_unlink(&R.pending[req->pri - LX_PRI_MIN], req);
        STORE(R.npending, R.npending - 1);
        lx_complete(req, NULL);   /* lock order: the ring's, then the sink's */
        peer = 1;
    } else if (LOAD(req->state) == LX_RUNNING) {
        if (queue_cancel(req) < 0)
            goto out;   /* it runs to its end, its result then undone */
        wake = want_wake(0);
    }
out:
    pthread_mutex_unlock(&R.lock);
    if (wake)
        write_wake();
    if (peer)
        lx_pool_peer_changed();   /* it no longer waits ahead of the threads' */
}

static unsigned long in_flight(void) { return LOAD(R.npending) + LOAD(R.ninflight); }

static int can_finish(void)
{
    unsigned long pending = LOAD(R.npending);
    if (LOAD(R.ninflight) > LOAD(R.nabandoned) || LOAD(R.nhanding))
        return 1;
    if (pending)
        return LOAD(R.limit) > 0 && !LOAD(R.stopping);
    return -1;
}

static int confirm_idle(void)
{
    int rc;
    pthread_mutex_lock(&R.lock);
    rc = R.npending || R.ninflight > R.nabandoned || R.nhanding;
    pthread_mutex_unlock(&R.lock);
    return rc;
}

/* The kernel's completions come through the ring thread: none is a spin away. */
static int quick_ok(void) { return 0; }
static int can_help(void) { return 0; }
static int help(int one_by_one) { return 0; }

static int linger(int64_t spin_ns)
{
    lx_uring_kick();
    return 0;
}

/* Cancel everything here: pending ones finish unrun, those in the kernel
 * get an ASYNC_CANCEL.  Lock held; returns whether to write a wake-up. */
static int cancel_all(void)
{
    lx_req *req;
    while ((req = next_pending())) {
        STORE(req->cancelled, 1);
        lx_complete(req, NULL);
    }
    for (req = R.inflight.head; req; req = req->next) {
        unsigned i;
        if (LOAD(req->cancelled) && !req->abandoned)
            continue;
        STORE(req->cancelled, 1);
        for (i = 0; i < R.ncancel && R.to_cancel[i] != req; i++)
            ;
        if (i == R.ncancel && queue_cancel(req) < 0)
            break;
    }
    return want_wake(0);
}

/* After cancelling (lock not held): wake the ring thread if wake says so
 * (it sends the ASYNC_CANCELs), then wait until nothing is in the kernel
 * but abandoned requests, or the time is up.  Returns how many are still
 * there. */
static unsigned wake_and_settle(int wake, int64_t timeout_ns)
{
    struct timespec until;
    unsigned left;
    if (wake)
        write_wake();
    pthread_mutex_lock(&R.lock);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ns / 1000000000;
    until.tv_nsec += timeout_ns % 1000000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (R.ninflight > R.nabandoned && R.thread_up)
        if (pthread_cond_timedwait(&R.settled, &R.lock, &until) == ETIMEDOUT)
            break;
    left = (unsigned)(R.ninflight - R.nabandoned);
    pthread_mutex_unlock(&R.lock);
    return left;
}

static unsigned stop(int64_t timeout_ns)
{
    int wake;
    pthread_mutex_lock(&R.lock);
    wake = cancel_all();
    pthread_mutex_unlock(&R.lock);
    return wake_and_settle(wake, timeout_ns);
}

/* What is still in the kernel after stop(): the kernel may write into its
 * buffers yet, so the engine keeps each until its completion comes (then
 * the sink puts it on the late list). */
static lx_req **abandon(long *n)
{
    lx_req **out = NULL;
    long k = 0;
    pthread_mutex_lock(&R.lock);
    if (R.ninflight > R.nabandoned) {
        if (!(out = malloc((R.ninflight - R.nabandoned) * sizeof *out))) {
            pthread_mutex_unlock(&R.lock);
            *n = -1;
            return NULL;
        }
        lx_completion_lock();
        for (lx_req *req = R.inflight.head; req; req = req->next)
            if (!req->abandoned) {
                req->abandoned = 1;
                STORE(req->cancelled, 1);
                out[k++] = req;
            }
        lx_completion_unlock();
        R.nabandoned += (unsigned long)k;
    }
    pthread_mutex_unlock(&R.lock);
    if (k)
        lx_pool_peer_changed();   /* abandoned ones no longer count against the limit */
    *n = k;
    return out;
}

/* Interpreter exit: nothing more starts; what is in the kernel is
 * cancelled and waited for (O_DIRECT reads write into buffers that must
 * outlive them); what was pending stays, as the threads' queue does. */
static unsigned shutdown(int64_t timeout_ns)
{
    int wake = 0;
    pthread_mutex_lock(&R.lock);
    STORE(R.stopping, 1);
    for (lx_req *req = R.inflight.head; req; req = req->next)
        if (!LOAD(req->cancelled)) {
            STORE(req->cancelled, 1);
            if (queue_cancel(req) < 0)
                break;
        }
    if (R.ncancel)
        wake = want_wake(0);
    pthread_mutex_unlock(&R.lock);
    lx_pool_peer_changed();   /* nothing here goes first now */
    return wake_and_settle(wake, timeout_ns);
}

/* ---- fork ---- */

static void before_fork(void) { pthread_mutex_lock(&R.lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&R.lock); }

static void after_fork_child(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);   /* as uring_setup.c's */
    pthread_mutex_init(&R.lock, &a);
    pthread_mutexattr_destroy(&a);
    pthread_cond_init(&R.settled, NULL);
}

void lx_ring_at_fork(void) { pthread_atfork(before_fork, after_fork_parent, after_fork_child); }

/* In the child: the ring thread is not here, the mappings neither
 * (MADV_DONTFORK); the fds are the parent's ring's.  Everything the parent
 * had here is handed back; a new ring is set up on first use. */
static lx_req *orphans(void)
{
    lx_req *list = NULL, *req;
    for (int p = 0; p < LX_NPRI; p++)
        while ((req = R.pending[p].head)) {
            lx_list_unlink(&R.pending[p], req);
            req->next = list;
            list = req;
        }
    while ((req = R.inflight.head)) {
        lx_list_unlink(&R.inflight, req);
        req->next = list;
        list = req;
    }
    R.npending = R.ninflight = R.nabandoned = R.nhanding = 0;
    R.ncancel = 0;
    R.cqes_due = 0;
    R.asleep = R.woken = R.held = R.holders = R.peer_wait = 0;
    nheld = 0;
    R.wake_armed = 0;
    hold_depth = 0;
    if (R.fd >= 0) {
        close(R.fd);
        close(R.wake_fd);
        R.fd = R.wake_fd = -1;
        R.sq_map = R.cq_map = NULL;   /* not mapped here */
        R.sqes = NULL;
        R.refit = 1;
    }
    R.thread_up = 0;
    R.kernel_workers = 0;   /* the new ring thread sets its own */
    return list;
}

const lx_backend lx_uring = LX_BACKEND_TABLE("uring");

/* ---- knobs and the poll's hold ---- */

unsigned long lx_uring_nready(void) { return LOAD(R.npending); }


void lx_uring_set_limit(unsigned n, int raise_only)
{
    int wake = 0;
    if (n > RING_ENTRIES)
        n = raise_only ? RING_ENTRIES : n;
    pthread_mutex_lock(&R.lock);
    if (raise_only ? n > R.limit : n < R.limit) {
        STORE(R.limit, n);
        if (raise_only && R.npending)
            wake = want_wake(0);
    }
    pthread_mutex_unlock(&R.lock);
    if (wake)
        write_wake();
    lx_pool_peer_changed();
}

void lx_uring_hold(int on)
{
    if (on) {
        if (poll_depth++ == 0)
            poll_epoch++;   /* under the GIL: a new poll, new hints */
    } else if (poll_depth > 0) {
        poll_depth--;
    }
    if (!R.thread_up || !(R.features & IORING_FEAT_EXT_ARG))
        return;
    if (on) {
        if (hold_depth++ == 0)
            __atomic_add_fetch(&R.holders, 1, __ATOMIC_ACQ_REL);
    } else if (hold_depth > 0 && --hold_depth == 0) {
        __atomic_sub_fetch(&R.holders, 1, __ATOMIC_ACQ_REL);
        lx_uring_kick();
    }
}

void lx_uring_kick(void)
{
    int wake = 0;
    if (!LOAD(R.held))
        return;
    pthread_mutex_lock(&R.lock);
    if (R.held) {
        STORE(R.held, 0);
        wake = want_wake(0);
    }
    pthread_mutex_unlock(&R.lock);
    if (wake)
        write_wake();
}

