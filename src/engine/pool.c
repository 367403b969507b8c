/* pool.c: the priority thread pool (see pool.h). */
#define _GNU_SOURCE
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

#include "pool_state.h"

#define P lx_pool_st

#define now_ns lx_now_ns

static __thread int not_storage;   /* lx_pool_not_storage() in this request */

void lx_pool_not_storage(void) { not_storage = 1; }

/* This thread's CPU time and its voluntary context switches (it slept:
 * on a device, a lock, a pipe), in one getrusage(RUSAGE_THREAD).  A thread
 * that only waited for a CPU (an overloaded machine) was switched out
 * involuntarily: that is not "blocked", and more threads would not help. */
typedef struct {
    int64_t cpu_ns;
    long nvcsw;
} thread_usage;

static thread_usage usage_now(void)
{
    struct rusage ru;
    thread_usage u = {0, 0};
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        u.cpu_ns = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
                   + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
        u.nvcsw = ru.ru_nvcsw;
    }
    return u;
}

/* The recent requests waited (for a device, a lock, a server) more than
 * they ran.  Not with a limit of one thread (one request at a time, in
 * order) or none. */
static int blocked(void)
{
    int64_t off = LOAD(P.offcpu_ns);
    return P.max_threads > 1 && off >= BLOCKED_NS && 2 * off >= LOAD(P.service_ns);
}

/* How many threads may run now: max_threads, or up to max_blocking while
 * the requests block. */
static unsigned thread_limit(void)
{
    return P.max_blocking > P.max_threads && blocked() ? P.max_blocking : P.max_threads;
}

/* Whether one more copy (lx_req.copy) may start: fewer than max_copies
 * run, or the requests block, and copies too wait for a device then. */
static int copy_may_start(void)
{
    return LOAD(P.ncopies_running) < P.max_copies || blocked();
}

/* Queued requests a worker may start now: all but the copies beyond the
 * slots left.  Read without q_lock (a spinner's look), approximate. */
static unsigned long startable(void)
{
    unsigned long ready = LOAD(P.nready), copies = LOAD(P.ncopies_ready), held = 0;
    if (copies && !blocked()) {
        unsigned running = LOAD(P.ncopies_running);
        unsigned long room = running < P.max_copies ? P.max_copies - running : 0;
        held = copies > room ? copies - room : 0;
    }
    return ready > held ? ready - held : 0;
}

static struct timespec deadline_ts(int64_t deadline)
{
    struct timespec ts = {deadline / 1000000000, deadline % 1000000000};
    return ts;
}

/* Only quick requests are worth a poller's spin: a long one (a 1 MiB read)
 * would leave it spinning on a CPU a worker could use. */
int lx_pool_linger(int64_t spin_ns)
{
    int64_t deadline = 0;
    if (LOAD(P.service_ns) >= QUICK_NS)
        return 0;
    for (unsigned i = 0;; i++) {
        if (lx_nresults())
            return 1;
        if (!LOAD(P.nready) && !LOAD(P.nrunning))
            return 0;
        if ((i & 31) == 0) {
            int64_t t = now_ns();
            if (!deadline)
                deadline = t + spin_ns;
            else if (t >= deadline)
                return 0;
        }
        __builtin_ia32_pause();
    }
}

/* ---- workers ---- */

/* The queue's side of a request's counts (nready: its caller's). */
static void queue_put(lx_req *r, int in_front)
{
    lx_list *q = &P.queue[r->pri - LX_PRI_MIN];
    if (in_front)
        lx_list_prepend(q, r);
    else
        lx_list_append(q, r);
    if (r->copy)
        STORE(P.ncopies_ready, P.ncopies_ready + 1);
}

static lx_req *queue_take(lx_req *r)
{
    lx_list_unlink(&P.queue[r->pri - LX_PRI_MIN], r);
    if (r->copy)
        STORE(P.ncopies_ready, P.ncopies_ready - 1);
    return r;
}

/* Take the most urgent queued request.  The caller moves it on and only
 * then lowers nready: lock-free readers look at nready, nrunning, nresults
 * in that order, and must always find a request in flight in one of them. */
static lx_req *pop_any(void)
{
    for (int i = LX_NPRI - 1; i >= 0; i--)
        if (P.queue[i].head) {
            P.npopped++;
            return queue_take(P.queue[i].head);
        }
    return NULL;
}

/* A worker's pop: the most urgent request that may start.  With every copy
 * slot taken, the first request that is no copy goes first (the scan passes
 * over copies only, which wait for a running one to finish). */
static lx_req *pop_ready(void)
{
    if (copy_may_start())
        return pop_any();
    if (P.ncopies_ready == P.nready)
        return NULL;
    for (int i = LX_NPRI - 1; i >= 0; i--)
        for (lx_req *r = P.queue[i].head; r; r = r->next)
            if (!r->copy) {
                P.npopped++;
                return queue_take(r);
            }
    return NULL;
}

static void idle_remove(lx_worker *w)
{
    for (lx_worker **p = &P.idle; *p; p = &(*p)->idle_next)
        if (*p == w) {
            *p = w->idle_next;
            return;
        }
}

/* Spin briefly for new work before sleeping: a hand-off to a spinning
 * thread costs ~0.1 us here, a futex wake-up across CPUs ~25 us.  Only one
 * worker spins at a time, so the spinners never crowd out the caller's own
 * thread on a small machine.  Called and returns with q_lock held. */
static int spin_for_work(void)
{
    int64_t deadline;
    if (P.nspinning || P.spin_ns <= 0)
        return 0;
    STORE(P.nspinning, P.nspinning + 1);
    deadline = now_ns() + P.spin_ns;
    do {
        pthread_mutex_unlock(&P.q_lock);
        for (unsigned i = 1; !startable() && !LOAD(P.stopping); i++) {
            __builtin_ia32_pause();
            /* Yield now and then: should the spinner share a CPU with the
             * thread that submits, that thread runs instead of waiting out
             * the spin (a wake-up tends to land a worker on its CPU). */
            if ((i & 63) == 0) {
                if (now_ns() >= deadline)
                    break;
                sched_yield();
            }
        }
        pthread_mutex_lock(&P.q_lock);
        /* Another worker may have taken it: spin on while time is left. */
    } while (!startable() && !P.stopping && now_ns() < deadline);
    if (startable())
        return 1;   /* still counted as spinning until it has popped */
    STORE(P.nspinning, P.nspinning - 1);
    return 0;
}

/* max_parallel(n) bounds what runs on both backends together: while the
 * ring has requests in the kernel, they count here too, against the limit
 * both share (lx_uring_limit: max_parallel's n, or the ring's default).
 * How many more may start here (q_lock held); with nothing on the ring,
 * the pool's own limits (its threads) govern alone. */
const lx_pool_peer_hooks *lx_pool_peer;

static unsigned long ring_room(void)
{
    const lx_pool_peer_hooks *peer = LOAD(lx_pool_peer);
    unsigned long ring = peer ? peer->nrunning() : 0, limit;
    if (!ring)
        return (unsigned long)-1;
    limit = peer->limit();
    return limit > P.nrunning + ring ? limit - (P.nrunning + ring) : 0;
}

/* The most urgent priority queued here (0..LX_NPRI-1), or -1. */
static int top_pri(void)
{
    for (int i = LX_NPRI - 1; i >= 0; i--)
        if (__atomic_load_n(&P.queue[i].head, __ATOMIC_RELAXED))
            return i;
    return -1;
}

/* Priorities order what starts across both backends: when what is left of
 * the shared limit cannot take every request pending on the ring, a more
 * urgent one there goes first (the ring thread starts it within a moment).
 * q_lock held, work queued here. */
static int defers_to_ring(void)
{
    const lx_pool_peer_hooks *peer = LOAD(lx_pool_peer);
    unsigned long waiting = peer ? peer->nready() : 0, used, limit;
    if (!waiting)
        return 0;
    used = P.nrunning + peer->nrunning();
    limit = peer->limit();
    if (limit > used + waiting)
        return 0;
    return peer->top_pri() > top_pri();
}

/* This pool's share of the shared limit changed (nrunning or nready):
 * the ring, if it holds requests back for it, looks again now.  The fence
 * orders the count's store before the ring's flag's load (the ring
 * publishes its flag, fences, then reads these counts). */
static void tell_peer(void)
{
    const lx_pool_peer_hooks *peer = LOAD(lx_pool_peer);
    if (peer) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        peer->room();
    }
}

int lx_pool_top_pri(void) { return LOAD(P.nready) ? top_pri() : -1; }

int lx_pool_may_start(void) { return LOAD(P.nrunning) < thread_limit() && !LOAD(P.stopping); }

/* Work waits here, but the ring holds the rest of the limit (or a more
 * urgent request of its own waits): sleep until the ring's share changes,
 * which the ring tells (lx_pool_peer_changed), as this pool tells it the
 * other way round (tell_peer).  nheld is published before the condition is
 * looked at again, so a change the look misses finds it set (the ring
 * fences between its change and its load of nheld).  q_lock held. */
static int worker_should_exit(lx_worker *self);
#define RING_BACKSTOP_NS (100 * 1000 * 1000)

static void wait_ring_room(lx_worker *self)
{
    self->held = 1;
    STORE(P.nheld, P.nheld + 1);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (P.nready && !worker_should_exit(self) && (!ring_room() || defers_to_ring())) {
        /* a long backstop only, should a wake-up ever be missed */
        struct timespec ts = deadline_ts(now_ns() + RING_BACKSTOP_NS);
        pthread_cond_timedwait(&self->wake, &P.q_lock, &ts);
    }
    self->held = 0;
    STORE(P.nheld, P.nheld - 1);
}

/* Wake the workers that wait for the ring.  q_lock held. */
static void wake_held(void)
{
    for (lx_worker *w = P.workers.next; w != &P.workers; w = w->next)
        if (w->held)
            pthread_cond_signal(&w->wake);
}

void lx_pool_peer_changed(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);   /* the ring's change before this load */
    if (!LOAD(P.nheld))
        return;
    pthread_mutex_lock(&P.q_lock);
    wake_held();
    pthread_mutex_unlock(&P.q_lock);
}

static int worker_should_exit(lx_worker *self)
{
    return P.stopping || P.nthreads > thread_limit() || self->abandoned;
}

/* Sleep in the idle stack until a submitter picks this worker.  Returns 0
 * to look for work again, 1 to take work as the standby (see below), -1 to
 * exit (idle too long, or told to go).
 * While requests are in flight a sleeper is "armed": it wakes every
 * STANDBY_NS to take work that dispatch() left queued behind a request
 * that turned out slow.  One that fell asleep with nothing in flight sleeps
 * long, and dispatch() does not count on it. */
static void disarm(lx_worker *w)   /* q_lock held */
{
    if (w->armed) {
        w->armed = 0;
        STORE(P.narmed, P.narmed - 1);
    }
}

static int sleep_idle(lx_worker *self)
{
    int64_t idle_since = now_ns();
    self->woken = 0;
    self->idle_next = P.idle;
    P.idle = self;
    for (;;) {
        int64_t now = now_ns(), deadline = idle_since + P.idle_timeout_ns;
        unsigned generation = P.generation;
        struct timespec ts;
        int rc = 0;
        unsigned long popped = P.npopped;
        /* Armed while anything is in flight, even near the idle deadline:
         * dispatch() may leave work to it.  The first armed looks every
         * STANDBY_NS, the others less often, in case it is taken for
         * work: each look is a wake-up, which on CPUs that all copy takes
         * one from a copy (W3: two sleepers' looks were ~3% of the reads). */
        if (P.nready || P.nrunning) {
            int64_t standby = P.narmed ? STANDBY_NS * STANDBY_OTHERS : STANDBY_NS;
            if (deadline > now + standby)
                deadline = now + standby;
            self->armed = 1;
            STORE(P.narmed, P.narmed + 1);
        }
        ts = deadline_ts(deadline);
        while (!self->woken && !P.stopping && P.nthreads <= P.max_threads && rc != ETIMEDOUT
               && generation == P.generation)
            rc = pthread_cond_timedwait(&self->wake, &P.q_lock, &ts);
        disarm(self);   /* unless the waker did, as it took it off the stack */
        /* A result may wait for this standby's wake-up (complete_copy):
         * its eventfd is written without q_lock, which the woken poller
         * may want at once (a waker finds woken set all the same). */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (lx_results_owed()) {   /* q_lock let go only for a write to make */
            pthread_mutex_unlock(&P.q_lock);
            lx_signal_owed();
            pthread_mutex_lock(&P.q_lock);
        }
        if (self->woken)
            return 0;
        /* Woken for another reason (new limits, the timeout) while work
         * waits: dispatch() may have left that work to this sleeper, as
         * the armed standby, and must find it done as if by the standby. */
        if (P.stopping || P.nthreads > P.max_threads || generation != P.generation) {
            idle_remove(self);
            return P.nready && !P.stopping;
        }
        /* Work waits and nobody took any since we slept: the others are
         * stuck.  Never leave (idle timeout) with work queued either. */
        if (startable() && (P.npopped == popped || now_ns() - idle_since >= P.idle_timeout_ns)) {
            idle_remove(self);
            return 1;
        }
        if (now_ns() - idle_since >= P.idle_timeout_ns) {
            unsigned nidle = 0;
            idle_remove(self);
            for (lx_worker *w = P.idle; w; w = w->idle_next)
                nidle++;
            /* Idle too long: leave if enough others stay idle. */
            if (nidle >= P.max_idle)
                return -1;
            idle_since = now_ns();
            self->idle_next = P.idle;
            P.idle = self;
        }
    }
}

static void dispatch(void);
static void wake_for_stuck_work(void);

/* A copy is done and another waits for the workers: the CPUs are busy
 * copying, and the poller woken now would take one of them from a copy
 * (W3, 1 MiB cached reads on 2 vCPUs: ~0.6 wake-ups per read, each ~40 us
 * of the loop thread's time, mostly the switches).  Its result waits
 * instead for the next one, which comes within a copy's time, and the
 * poller takes both at one wake-up.  Not while requests block, and only
 * with an armed sleeper standing by: it writes what is owed whenever it
 * wakes (within STANDBY_NS, or STANDBY_OTHERS times that should the first
 * be taken for work), should the copies running never end (a pipe
 * nobody writes).  The fences pair with sleep_idle()'s: a sleeper that
 * disarmed before the result was queued is seen here, one that disarms
 * after sees the result. */
static void complete_copy(lx_worker *self, lx_req *req)
{
    if (!LOAD(P.ncopies_ready) || !LOAD(P.narmed) || blocked()) {
        lx_complete(req, &self->current);
        return;
    }
    if (lx_complete_later(req, &self->current)) {
        __atomic_add_fetch(&P.nowed, 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (!LOAD(P.narmed))
            lx_signal_owed();
    }
}

static void *worker_main(void *arg)
{
    lx_worker *self = arg;

    int spun = 0;   /* counted in nspinning until the pop that ends it */
    int standby = 0;   /* woke to take work the others are stuck behind */

    pthread_mutex_lock(&P.q_lock);
    for (;;) {
        int held = P.nready && !worker_should_exit(self) && (!ring_room() || defers_to_ring());
        lx_req *req = worker_should_exit(self) || held ? NULL : pop_ready();
        int took_over = standby;
        standby = 0;
        if (spun) {
            spun = 0;
            STORE(P.nspinning, P.nspinning - 1);
        }
        if (req) {
            int64_t started = now_ns(), took, off = 0;
            thread_usage before = {0, 0};
            int measure = P.max_blocking > P.max_threads && P.service_ns >= SLOW_NS;
            int copy = req->copy;   /* req may be gone once complete */
            if (copy) {
                STORE(P.ncopies_running, P.ncopies_running + 1);
                if (P.ncopies_running > P.copies_peak)
                    STORE(P.copies_peak, P.ncopies_running);
            }
            STORE(req->state, LX_RUNNING);
            self->current = req;
            self->running = 1;
            STORE(P.nrunning, P.nrunning + 1);
            STORE(P.nready, P.nready - 1);
            /* dispatch() left the queued work to the running workers and
             * the standby, and the running ones turned out stuck: the rest
             * needs a worker each, not the one dispatch() would wake. */
            if (took_over)
                wake_for_stuck_work();
            pthread_mutex_unlock(&P.q_lock);
            tell_peer();   /* one fewer waits here: the ring may yield no longer */
            not_storage = 0;
            if (measure)
                before = usage_now();
            P.run(req);
            took = req->run_ns = now_ns() - started;
            /* Time off the CPU, if the request slept at all.  Unmeasured
             * (quick) and not-storage requests count as on the CPU. */
            if (measure && !not_storage) {
                thread_usage after = usage_now();
                off = after.nvcsw > before.nvcsw ? took - (after.cpu_ns - before.cpu_ns) : 0;
            }
            /* Counted as running until it is on the result queue, so a
             * lingering poll_cb never sees "nothing in flight" too early. */
            if (copy)
                complete_copy(self, req);
            else
                lx_complete(req, &self->current);
            pthread_mutex_lock(&P.q_lock);
            if (!self->abandoned) {   /* else no longer counted: lx_pool_abandon */
                STORE(P.service_ns, P.service_ns + (took - P.service_ns) / 8);
                STORE(P.offcpu_ns, P.offcpu_ns + (off - P.offcpu_ns) / 8);
                STORE(P.nrunning, P.nrunning - 1);
                if (copy)
                    STORE(P.ncopies_running, P.ncopies_running - 1);
            }
            self->running = 0;
            /* The slot this copy leaves: this worker takes the next copy
             * itself (no wake-up), unless another request is ahead of it. */
            if (copy && startable() > P.nspinning + 1)
                wake_for_stuck_work();
            if (P.nheld)
                wake_held();   /* should this one leave, another takes the slot */
            tell_peer();   /* a slot of the shared limit is free */
            continue;
        }
        if (held) {
            wait_ring_room(self);
            continue;
        }
        /* Beyond max_threads (grown for blocking requests): gone as soon as
         * there is nothing to take. */
        if (worker_should_exit(self) || P.nthreads > P.max_threads)
            break;
        if (spin_for_work()) {
            spun = 1;
            continue;
        }
        if ((standby = sleep_idle(self)) < 0)
            break;
    }
    idle_remove(self);
    self->prev->next = self->next;   /* from P.workers, or P.abandoned */
    self->next->prev = self->prev;
    if (!self->abandoned) {
        STORE(P.nthreads, P.nthreads - 1);
        pthread_cond_broadcast(&P.exited);
        /* A spinner or standby told to go had work counted on it. */
        if (P.nready && !P.stopping)
            wake_for_stuck_work();
    }
    pthread_mutex_unlock(&P.q_lock);
    pthread_cond_destroy(&self->wake);
    free(self);
    return NULL;
}

/* Called with q_lock held. */
static int start_worker(void)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    int rc;
    lx_worker *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    lx_pool_cond_init(&w->wake);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, WORKER_STACK);
    /* Workers take no signals: Python handles them in the main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&tid, &attr, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc) {
        pthread_cond_destroy(&w->wake);
        free(w);
        errno = rc;
        return -1;
    }
    w->next = P.workers.next;
    w->prev = &P.workers;
    P.workers.next->prev = w;
    P.workers.next = w;
    STORE(P.nthreads, P.nthreads + 1);
    return 0;
}

/* No worker runs and none could be started: nothing would ever take what
 * is queued, and whoever waits for it would wait for ever.  It finishes
 * now, unrun, with the error (as threading raises when it cannot start a
 * thread).  q_lock held. */
static void fail_queued(int err)
{
    lx_req *r;
    while ((r = pop_any())) {
        r->error = err;
        lx_complete(r, NULL);
        STORE(P.nready, P.nready - 1);
    }
}

/* Make sure somebody takes the newest queued request.  q_lock held.
 * Waking a sleeping worker costs the submitter a syscall and the wakee
 * ~25 us; a request that takes less than that is served sooner by a worker
 * that is already running and comes back for it.  So no one is woken for
 * work that the spinning workers take one each, and while requests are
 * quick, none for work the running workers can absorb (a few each, or
 * whatever there is once they fill the CPUs), provided an armed sleeper
 * stands by in case one of them turns out slow (a read of an empty pipe,
 * or a burst of slow requests queued behind the one spinner). */
/* The sleeper on top of the stack (the most recent: its cache is warm)
 * takes the next request.  It no longer counts as armed from now on, though
 * it is yet to run: dispatch() must not count on it as a standby for other
 * work, since the request it takes may block it too.  q_lock held. */
static void wake_one(void)
{
    lx_worker *w = P.idle;
    P.idle = w->idle_next;
    disarm(w);
    w->woken = 1;
    pthread_cond_signal(&w->wake);
}

static void dispatch(void)
{
    unsigned long ready = startable();   /* copies beyond their slots wait for a running one */
    if (P.nspinning >= ready)
        return;
    if (P.idle) {
        if (P.service_ns < QUICK_NS && P.narmed
            && (ready <= QUICK_DEPTH * (P.nspinning + P.nrunning)
                || P.nspinning + P.nrunning >= P.ncpu))
            return;
        wake_one();
        return;
    }
    /* On failure the running workers get to it, if there are any. */
    if (P.nthreads < thread_limit() && !P.stopping && start_worker() < 0 && !P.nthreads)
        fail_queued(errno);
}

/* The standby found queued work that nobody took for STANDBY_NS: every
 * other waiting request gets a sleeper of its own (or a new thread, within
 * the limit), whatever dispatch() decided at submission.  Each of those
 * decisions counted on someone who may now be stuck too.  q_lock held. */
static void wake_for_stuck_work(void)
{
    unsigned long ready = startable(), want = ready > P.nspinning ? ready - P.nspinning : 0;
    for (; want && P.idle; want--)
        wake_one();
    for (; want && P.nthreads < thread_limit() && !P.stopping; want--)
        if (start_worker() < 0)
            break;
}

void lx_pool_submit(lx_req *req)
{
    lx_pool_submit_many(&req, 1);
}

void lx_pool_submit_many(lx_req **reqs, unsigned long n)
{
    /* One lock for the lot; wake-ups as each would need them. */
    pthread_mutex_lock(&P.q_lock);
    for (unsigned long k = 0; k < n; k++) {
        lx_req *req = reqs[k];
        STORE(req->state, LX_QUEUED);
        queue_put(req, 0);
        STORE(P.nready, P.nready + 1);
        dispatch();
    }
    if (P.nheld)
        wake_held();   /* a more urgent one may no longer defer to the ring */
    pthread_mutex_unlock(&P.q_lock);
}

int lx_pool_cancel(lx_req *req)
{
    int was_queued;
    STORE(req->cancelled, 1);
    pthread_mutex_lock(&P.q_lock);
    was_queued = LOAD(req->state) == LX_QUEUED;
    if (was_queued) {
        queue_take(req);
        lx_complete(req, NULL);   /* lock order: q_lock, then the sink's */
        STORE(P.nready, P.nready - 1);
    }
    pthread_mutex_unlock(&P.q_lock);
    if (was_queued)
        tell_peer();
    return was_queued;
}

/* ---- the poller helps ---- */

int lx_pool_can_help(void)
{
    return P.try_run && LOAD(P.max_threads) > 1 && LOAD(P.nready) > LOAD(P.nspinning);
}

/* While the workers are busy, a poller waiting for their results spins on
 * a CPU of its own: running a request that cannot block there instead (a
 * read from the page cache) puts that CPU to work too.  Not with a limit of
 * one thread: whoever sets it may count on one request at a time, in order.
 * The most urgent request or none, so priorities hold. */
int lx_pool_help(int max)
{
    lx_helper self = {NULL, {NULL}};
    lx_req *batch[HELP_BATCH];
    int started[HELP_BATCH];
    int n = 0, ndone = 0, limit = 0;

    /* A few at a time, for fewer trips through the locks, but at most half
     * of what the spinning workers leave: the running ones come back soon. */
    pthread_mutex_lock(&P.q_lock);
    if (P.try_run && P.max_threads > 1 && !P.stopping && P.nready > P.nspinning)
        limit = (int)((P.nready - P.nspinning + 1) / 2);
    if (limit && ring_room() < (unsigned long)limit)
        limit = (int)ring_room();
    if (limit && defers_to_ring())
        limit = 0;
    while (n < limit && n < HELP_BATCH && n < max) {
        lx_req *req = NULL;
        for (int i = LX_NPRI - 1; i >= 0 && !req; i--)
            req = P.queue[i].head;
        if (!req || !req->tryable || req->copy)
            break;
        /* Not counted in npopped: a helper taking work must not hide from
         * the standby that the workers are stuck (help takes only the
         * urgent end of the queue, and only while it is tryable). */
        lx_list_unlink(&P.queue[req->pri - LX_PRI_MIN], req);   /* never a copy */
        STORE(req->state, LX_RUNNING);
        self.current[n] = batch[n] = req;
        n++;
        STORE(P.nrunning, P.nrunning + 1);
        STORE(P.nready, P.nready - 1);
    }
    if (!n) {
        pthread_mutex_unlock(&P.q_lock);
        return 0;
    }
    self.next = P.helpers;
    P.helpers = &self;
    pthread_mutex_unlock(&P.q_lock);

    for (int k = 0; k < n; k++) {
        int64_t t0 = now_ns();
        int rc = P.try_run(batch[k]);
        if (rc > 0) {
            batch[k]->run_ns = now_ns() - t0;
        } else {
            batch[k]->tryable = 0;   /* for a worker, and never tried again */
            started[k] = rc < 0;
            batch[k] = NULL;
        }
    }
    ndone = lx_complete_many(batch, self.current, n);   /* one abandoned meanwhile goes late */

    pthread_mutex_lock(&P.q_lock);
    for (lx_helper **h = &P.helpers; *h; h = &(*h)->next)
        if (*h == &self) {
            *h = self.next;
            break;
        }
    /* Back in front for a worker, in their order.  This one move goes
     * backwards (running -> ready): lock-free readers of the counters may
     * miss the request meanwhile, hence lx_pool_in_flight().  One cancelled
     * meanwhile finishes now instead; one that a try started (a read that
     * stopped short) stays "running" for cancel(), which only flags it. */
    for (int k = n - 1; k >= 0; k--) {
        lx_req *req = self.current[k];
        if (!req)
            continue;
        if (req->abandoned) {
            lx_complete(req, &self.current[k]);   /* to the late list */
            continue;
        }
        if (LOAD(req->cancelled)) {
            lx_complete(req, NULL);
            continue;
        }
        STORE(req->state, started[k] ? LX_RUNNING : LX_QUEUED);
        queue_put(req, 1);
        STORE(P.nready, P.nready + 1);
        dispatch();
    }
    STORE(P.nrunning, P.nrunning - n);
    if (P.stopping)
        pthread_cond_broadcast(&P.exited);
    if (P.nheld)
        wake_held();
    pthread_mutex_unlock(&P.q_lock);
    tell_peer();
    return ndone;
}

int lx_pool_in_flight(void)
{
    int any;
    pthread_mutex_lock(&P.q_lock);   /* no move between ready and running now */
    any = P.nready || P.nrunning || lx_nresults();
    pthread_mutex_unlock(&P.q_lock);
    return any;
}

/* ---- limits and counters ---- */

unsigned long lx_pool_nready(void) { return LOAD(P.nready); }
unsigned long lx_pool_nrunning(void) { return LOAD(P.nrunning); }
unsigned lx_pool_nthreads(void) { return LOAD(P.nthreads); }
unsigned lx_pool_nspinning(void) { return LOAD(P.nspinning); }
unsigned lx_pool_max_threads(void) { return LOAD(P.max_threads); }

static void limits_changed(void)
{
    /* Wake everyone: extras notice they must go, the rest go back to sleep
     * with the new timeout.  Then start threads for work that waits. */
    P.generation++;
    for (lx_worker *w = P.workers.next; w != &P.workers; w = w->next)
        pthread_cond_signal(&w->wake);
    while (P.nready > P.nthreads && P.nthreads < P.max_threads && !P.stopping)
        if (start_worker())
            break;
    if (P.nready && !P.nthreads && P.max_threads && !P.stopping && start_worker() < 0)
        fail_queued(errno);
    tell_peer();   /* whether a thread may start changed: the ring may yield no longer */
}

void lx_pool_min_threads(unsigned n)
{
    pthread_mutex_lock(&P.q_lock);
    if (P.max_threads < n)
        STORE(P.max_threads, n);
    limits_changed();
    pthread_mutex_unlock(&P.q_lock);
}

void lx_pool_set_max_threads(unsigned n)
{
    pthread_mutex_lock(&P.q_lock);
    if (P.max_threads > n)
        STORE(P.max_threads, n);
    limits_changed();
    pthread_mutex_unlock(&P.q_lock);
}

void lx_pool_set_max_blocking(unsigned n)
{
    pthread_mutex_lock(&P.q_lock);
    P.max_blocking = n;
    pthread_mutex_unlock(&P.q_lock);
}

unsigned lx_pool_max_blocking(void) { return LOAD(P.max_blocking); }

unsigned lx_pool_set_max_copies(unsigned n)
{
    unsigned was;
    pthread_mutex_lock(&P.q_lock);
    was = P.max_copies;
    P.max_copies = n ? n : 1;
    STORE(P.copies_peak, P.ncopies_running);
    limits_changed();   /* copies that may start now find workers */
    pthread_mutex_unlock(&P.q_lock);
    return was;
}

unsigned lx_pool_max_copies(void) { return LOAD(P.max_copies); }
unsigned lx_pool_ncopies_running(void) { return LOAD(P.ncopies_running); }
unsigned lx_pool_copies_peak(void) { return LOAD(P.copies_peak); }
unsigned long lx_pool_copies_owed(void) { return LOAD(P.nowed); }

void lx_pool_set_max_idle(unsigned n)
{
    pthread_mutex_lock(&P.q_lock);
    P.max_idle = n;
    pthread_mutex_unlock(&P.q_lock);
}

void lx_pool_set_idle_timeout(double seconds)
{
    pthread_mutex_lock(&P.q_lock);
    P.idle_timeout_ns = (int64_t)(seconds * 1e9);
    limits_changed();   /* sleepers re-arm with the new timeout */
    pthread_mutex_unlock(&P.q_lock);
}

void lx_pool_set_spin(int64_t ns)
{
    pthread_mutex_lock(&P.q_lock);
    P.spin_ns = ns;
    pthread_mutex_unlock(&P.q_lock);
}

static void cancel_queued(void)   /* q_lock held */
{
    lx_req *r;
    while ((r = pop_any())) {
        STORE(r->cancelled, 1);
        lx_complete(r, NULL);
        STORE(P.nready, P.nready - 1);
    }
}

unsigned lx_pool_stop(int64_t timeout_ns)
{
    struct timespec ts = deadline_ts(now_ns() + timeout_ns);
    unsigned left;

    pthread_mutex_lock(&P.q_lock);
    STORE(P.stopping, 1);
    cancel_queued();
    for (lx_worker *w = P.workers.next; w != &P.workers; w = w->next)
        pthread_cond_signal(&w->wake);
    while ((P.nthreads || P.helpers)
           && pthread_cond_timedwait(&P.exited, &P.q_lock, &ts) != ETIMEDOUT)
        ;
    cancel_queued();   /* what a helper gave back meanwhile */
    left = P.nthreads;
    if (!left)
        STORE(P.stopping, 0);   /* ready for reuse (reinit) */
    pthread_mutex_unlock(&P.q_lock);
    tell_peer();   /* nothing queued here now */
    return left;
}

static void mark_abandoned(lx_req *req, lx_req **out, long *n)   /* both locks held */
{
    req->abandoned = 1;
    STORE(req->cancelled, 1);
    out[(*n)++] = req;
}

lx_req **lx_pool_abandon(long *n)
{
    lx_req **out;
    unsigned long cap;
    lx_worker *w;

    pthread_mutex_lock(&P.q_lock);
    *n = 0;
    cap = P.nthreads;
    for (lx_helper *h = P.helpers; h; h = h->next)
        cap += HELP_BATCH;
    if (!cap) {
        STORE(P.stopping, 0);
        if (P.nready)   /* submitted since the stop, which started no worker */
            limits_changed();
        pthread_mutex_unlock(&P.q_lock);
        return NULL;
    }
    if (!(out = malloc(cap * sizeof *out))) {
        *n = -1;
        pthread_mutex_unlock(&P.q_lock);
        return NULL;
    }
    lx_completion_lock();
    /* Workers move to a list of their own (fork's child still finds their
     * requests), uncounted; they leave once their request is back. */
    while ((w = P.workers.next) != &P.workers) {
        w->prev->next = w->next;
        w->next->prev = w->prev;
        w->next = P.abandoned.next;
        w->prev = &P.abandoned;
        P.abandoned.next->prev = w;
        P.abandoned.next = w;
        w->abandoned = 1;
        idle_remove(w);
        w->woken = 1;
        pthread_cond_signal(&w->wake);
        STORE(P.nthreads, P.nthreads - 1);
        if (w->running) {
            STORE(P.nrunning, P.nrunning - 1);
            if (w->current && w->current->copy)
                STORE(P.ncopies_running, P.ncopies_running - 1);
        }
        if (w->current)
            mark_abandoned(w->current, out, n);
    }
    /* A poller's tries cannot block for long, but one may still be busy:
     * what it holds must not reach the new queues either. */
    for (lx_helper *h = P.helpers; h; h = h->next)
        for (int k = 0; k < HELP_BATCH; k++)
            if (h->current[k] && !h->current[k]->abandoned)
                mark_abandoned(h->current[k], out, n);
    lx_completion_unlock();
    STORE(P.stopping, 0);
    if (P.nready)   /* submitted since the stop, which started no worker */
        limits_changed();
    pthread_mutex_unlock(&P.q_lock);
    tell_peer();   /* the abandoned ones no longer count against the limit */
    if (!*n) {
        free(out);
        out = NULL;
    }
    return out;
}
