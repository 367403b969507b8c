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
/* Nesting of polls in this thread (any engine state). */
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
    if (cap > R.q.cq_entries)
        cap = R.q.cq_entries;
    workers[0] = cap;
    workers[1] = 0;
    if (sys_register(R.q.fd, IORING_REGISTER_IOWQ_MAX_WORKERS, workers, 2) == 0)
        STORE(R.kernel_workers, cap);
}

static void *ring_main(void *unused)
{
    lx_req *back[BATCH];
    pthread_setname_np(pthread_self(), "linuxaio-ring");   /* for top -H, perf, py-spy */
    if ((R.q.setup_flags & IORING_SETUP_R_DISABLED) && sys_register(R.q.fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
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
         * is published before lx_ring_fill() reads the pool's counts, so a change
         * lx_ring_fill() missed finds it set (the pool's fence pairs with this). */
        __atomic_store_n(&R.peer_wait, R.npending != 0, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        R.turn++;   /* what lx_ring_fill() prepares and this turn's reap finds back was done inline */
        lx_ring_fill(&R.q, 1);
        /* Held only by the ring's own limits: its completions wake it. */
        if (R.peer_wait && (!R.npending || R.stopping || !lx_ring_may_add(&R.q) || R.ninflight >= R.limit))
            STORE(R.peer_wait, 0);
        STORE(*R.q.sq_tail, R.q.sq_local_tail);
        to_submit = R.q.sq_local_tail - LOAD(*R.q.sq_head);
        /* Sleep only with nothing else to do.  While a poll holds wake-ups,
         * sleep briefly: a request it queued must not wait for a completion
         * that may be long in coming. */
        wait = LOAD(*R.q.cq_tail) == *R.q.cq_head;   /* lx_ring_fill() sent all it could */
        /* The CQ overflowed after all (lx_ring_fill() keeps cqes_due within it, so
         * only a kernel that posts more than one completion per entry could
         * do it): the kernel kept the rest aside (IORING_FEAT_NODROP, which
         * setup requires) and hands them over on an enter with GETEVENTS.
         * Enter at once, without sleeping, then reap: nothing is lost. */
        overflowed = (LOAD(*R.q.sq_flags) & IORING_SQ_CQ_OVERFLOW) != 0;
        if (overflowed) {
            R.n_overflow_flushes++;
            wait = 0;
        }
        /* holders and held are also read and written outside the lock
         * (lx_uring_hold, lx_uring_kick): atomic accesses, or a data race */
        /* The threads wake it when their share changes (peer_room); a
         * long timed wait as a backstop, should a wake-up ever be missed. */
        R.asleep = !wait ? 0 : !(R.q.features & IORING_FEAT_EXT_ARG) ? 1 : LOAD(R.holders) ? 2 : R.peer_wait ? 3 : 1;
        if (R.asleep == 3)
            ts.tv_nsec = PEER_BACKSTOP_NS;
        pthread_mutex_unlock(&R.lock);
        /* what lx_ring_fill() started and the last reap finished: workers waiting
         * for the ring's share of the limit look again */
        lx_pool_peer_changed();
        memset(&arg, 0, sizeof arg);
        arg.ts = (uint64_t)(uintptr_t)&ts;
        if (!wait && !to_submit && !overflowed)
            rc = 0;   /* completions wait already, nothing to hand over */
        else if (R.asleep >= 2)
            rc = sys_enter(R.q.fd, to_submit, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
        else
            rc = sys_enter(R.q.fd, to_submit, wait, IORING_ENTER_GETEVENTS, NULL, 0);
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
        lx_ring_nheld = 0;
        STORE(R.held, 0);
        nb = lx_ring_reap_q(&R.q, back);
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

/* ---- the pool's view of the ring (pool.h: lx_pool_peer) ---- */

static unsigned long peer_nrunning(void)
{
    unsigned long n = LOAD(R.ninflight), a = LOAD(R.nabandoned);
    return n > a ? n - a : 0;
}

static unsigned long peer_nready(void) { return LOAD(R.npending); }
static unsigned peer_limit(void) { return LOAD(R.limit); }
static int peer_top_pri(void) { return LOAD(R.npending) && !LOAD(R.stopping) ? lx_ring_top_pending_pri() : -1; }

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
    if (R.peer_wait && (wake = lx_ring_want_wake(0)))
        R.n_peer_wakes++;
    pthread_mutex_unlock(&R.lock);
    if (wake)
        lx_ring_write_wake();
}

static const lx_pool_peer_hooks peer_hooks = {peer_nrunning, peer_nready, peer_limit, peer_top_pri, peer_room};

/* With the GIL: the ring thread, started on first use (in a fork's child,
 * after a new ring is set up).  0 if the ring cannot be used. */
int lx_ring_ready(void)
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

/* ---- the backend ---- */

/* The loop's ring's owner enters the kernel once its poll queued this
 * many (a syscall, no wake-up): the device is fed as the poll goes on.
 * W5 (Intel Xeon 2 vCPU, one sitting, 4 paired rounds, fio io_uring
 * 112k-122k IOPS): every 2, callbacks 1.03x fio and awaits 1.00x; every
 * max(8, a quarter of what is in flight), as the ring thread's hold, 0.96x
 * and 0.95x; only at the poll's end 0.85x and 0.78x. */
#define LOOP_FLUSH 2

static void submit(lx_req **reqs, unsigned long n)
{
    int wake = 0, flush = 0, mine = lx_poll_depth > 0 && lx_loop_mine();
    pthread_mutex_lock(&R.lock);
    for (unsigned long k = 0; k < n; k++) {
        Request *r = REQ_OF(reqs[k]);
        STORE(reqs[k]->state, LX_QUEUED);
        if (mine && lx_loop_takes(r)) {
            __atomic_store_n(&r->on_ring, 3, __ATOMIC_RELAXED);
            lx_list_append(&lx_Lp[reqs[k]->pri - LX_PRI_MIN], reqs[k]);
        } else {
            lx_list_append(&R.pending[reqs[k]->pri - LX_PRI_MIN], reqs[k]);
        }
    }
    STORE(R.npending, R.npending + n);
    if (mine) {
        /* L's owner in a poll: in every LOOP_FLUSH queued, and at the
         * poll's end */
        lx_l_nheld += n;
        flush = lx_l_nheld >= LOOP_FLUSH;
    } else {
        wake = lx_ring_want_wake(hold_depth > 0 ? n : 0);
    }
    pthread_mutex_unlock(&R.lock);
    if (wake)
        lx_ring_write_wake();
    if (flush)
        lx_loop_flush();
}

static void cancel(lx_req *req)
{
    int wake = 0, peer = 0, on_l = 0;
    STORE(req->cancelled, 1);
    pthread_mutex_lock(&R.lock);
    if (LOAD(req->state) == LX_QUEUED) {
        int lp = __atomic_load_n(&REQ_OF(req)->on_ring, __ATOMIC_RELAXED) == 3;
        lx_list_unlink(&(lp ? lx_Lp : R.pending)[req->pri - LX_PRI_MIN], req);
        STORE(R.npending, R.npending - 1);
        lx_complete(req, NULL);   /* lock order: the ring's, then the sink's */
        peer = 1;
    } else if (LOAD(req->state) == LX_RUNNING) {
        if (lx_ring_queue_cancel(req) < 0)
            goto out;   /* it runs to its end, its result then undone */
        if (!(on_l = lx_ring_q_of(req) == &lx_L))
            wake = lx_ring_want_wake(0);
    }
out:
    pthread_mutex_unlock(&R.lock);
    if (wake)
        lx_ring_write_wake();
    if (on_l)
        lx_loop_flush();   /* the ASYNC_CANCEL goes in from here: any thread may */
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
    lx_uring_reap();
    return 0;
}

/* Cancel everything here: pending ones finish unrun, those in the kernel
 * get an ASYNC_CANCEL.  Lock held; returns whether to write a wake-up. */
static int cancel_all(void)
{
    lx_req *req;
    while ((req = lx_ring_next_pending()) || (req = lx_ring_lp_next(1))) {
        STORE(req->cancelled, 1);
        lx_complete(req, NULL);
    }
    for (req = R.inflight.head; req; req = req->next) {
        unsigned i;
        if (LOAD(req->cancelled) && !req->abandoned)
            continue;
        STORE(req->cancelled, 1);
        lx_rq *q = lx_ring_q_of(req);
        for (i = 0; i < q->ncancel && q->to_cancel[i] != req; i++)
            ;
        if (i == q->ncancel && lx_ring_queue_cancel(req) < 0)
            break;
    }
    return lx_ring_want_wake(0);
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
        lx_ring_write_wake();
    if (LOAD(lx_L_up))
        lx_loop_flush();   /* L's ASYNC_CANCELs */
    pthread_mutex_lock(&R.lock);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ns / 1000000000;
    until.tv_nsec += timeout_ns % 1000000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (R.ninflight > R.nabandoned && R.thread_up) {
        if (lx_L_up && lx_L.cqes_due) {
            /* Nobody else may be taking L's completions: take them here,
             * looking every millisecond. */
            struct timespec now;
            int64_t left_ns;
            pthread_mutex_unlock(&R.lock);
            lx_uring_reap();
            pthread_mutex_lock(&R.lock);
            if (R.ninflight <= R.nabandoned)
                break;
            clock_gettime(CLOCK_REALTIME, &now);
            left_ns = (until.tv_sec - now.tv_sec) * 1000000000LL + (until.tv_nsec - now.tv_nsec);
            if (left_ns <= 0)
                break;
            if (left_ns > 1000000)
                left_ns = 1000000;
            now.tv_nsec += left_ns;
            if (now.tv_nsec >= 1000000000) {
                now.tv_sec++;
                now.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&R.settled, &R.lock, &now);
            continue;
        }
        if (pthread_cond_timedwait(&R.settled, &R.lock, &until) == ETIMEDOUT)
            break;
    }
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
            if (lx_ring_queue_cancel(req) < 0)
                break;
        }
    if (R.q.ncancel)
        wake = lx_ring_want_wake(0);   /* L's: wake_and_settle */
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
    pthread_mutex_init(&lx_L_enter, NULL);
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
        while ((req = R.pending[p].head) || (req = lx_Lp[p].head)) {
            lx_list_unlink(req == R.pending[p].head ? &R.pending[p] : &lx_Lp[p], req);
            req->next = list;
            list = req;
        }
    while ((req = R.inflight.head)) {
        lx_list_unlink(&R.inflight, req);
        req->next = list;
        list = req;
    }
    R.npending = R.ninflight = R.nabandoned = R.nhanding = 0;
    R.q.ncancel = 0;
    R.q.cqes_due = 0;
    R.asleep = R.woken = R.held = R.holders = R.peer_wait = 0;
    lx_ring_nheld = 0;
    R.wake_armed = 0;
    hold_depth = 0;
    if (R.q.fd >= 0) {
        close(R.q.fd);
        close(R.wake_fd);
        R.q.fd = R.wake_fd = -1;
        R.q.sq_map = R.q.cq_map = NULL;   /* not mapped here */
        R.q.sqes = NULL;
        R.refit = 1;
    }
    if (lx_L_up) {   /* the parent's loop ring: not mapped here either */
        close(lx_L.fd);
        memset(&lx_L, 0, sizeof lx_L);
        lx_L.fd = -1;
        lx_L_up = 0;
    }
    lx_L.ncancel = 0;
    lx_L.cqes_due = 0;
    lx_L_tried = 0;
    lx_L_gen++;   /* nobody owns a loop ring here; the first poller sets one up */
    lx_l_nheld = 0;
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
            wake = lx_ring_want_wake(0);
    }
    pthread_mutex_unlock(&R.lock);
    if (wake)
        lx_ring_write_wake();
    lx_pool_peer_changed();
}

void lx_uring_hold(int on)
{
    if (on) {
        if (lx_poll_depth++ == 0) {
            lx_poll_epoch++;   /* under the GIL: a new poll, new hints */
            /* The first thread to poll once the ring is in use owns L. */
            if (!lx_L_tried && LOAD(R.thread_up))
                lx_loop_adopt();
        }
    } else if (lx_poll_depth > 0 && --lx_poll_depth == 0) {
        lx_loop_end_poll();
    }
    if (!R.thread_up || !(R.q.features & IORING_FEAT_EXT_ARG))
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
    if (lx_loop_mine() && lx_l_nheld)
        lx_loop_flush();
    if (!LOAD(R.held))
        return;
    pthread_mutex_lock(&R.lock);
    if (R.held) {
        STORE(R.held, 0);
        wake = lx_ring_want_wake(0);
    }
    pthread_mutex_unlock(&R.lock);
    if (wake)
        lx_ring_write_wake();
}

