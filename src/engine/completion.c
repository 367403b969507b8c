/* completion.c: the result queue and its eventfd (see completion.h). */
#define _GNU_SOURCE
#include "completion.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

lx_sink_state lx_sink;
#define S lx_sink

/* The eventfd is written after the lock is let go: the write wakes the
 * poller, which on a busy machine may take this thread's CPU at once, and
 * then waited for the lock this thread still held (W3, 1 MiB reads on 2
 * vCPUs: a quarter of the loop thread's wake-ups were such a futex wait,
 * and the worker was switched out twice per result).  Lock held: 1 if the
 * caller must write_signal() once it let the lock go. */
static int signal_results(void)
{
    if (S.efd_signalled)
        return 0;
    STORE(S.efd_signalled, 1);
    __atomic_add_fetch(&S.efd_writers, 1, __ATOMIC_RELAXED);
    return 1;
}

static void write_signal(int must)   /* lock not held */
{
    if (must) {
        uint64_t one = 1;
        /* Cannot fail short of a bad fd: the counter never nears its max. */
        (void)!write(S.efd, &one, sizeof one);
        __atomic_sub_fetch(&S.efd_writers, 1, __ATOMIC_RELEASE);
    }
}

/* Put req on the result queue.  Once it is there it may be taken and freed
 * at any moment, so the backend forgets it first (*current). */
static void enqueue(lx_req *req, lx_req **current)   /* lock held */
{
    if (current)
        *current = NULL;
    STORE(req->state, LX_DONE);
    lx_list_append(&S.results, req);
    STORE(S.nresults, S.nresults + 1);
}

static int queue_result(lx_req *req, lx_req **current)   /* lock held; signal_results() */
{
    /* Not for a result whose submitter spins to take it (its spin will see
     * it, or finds it here when the spin ends, and signals then). */
    int awaited = req->awaited;
    enqueue(req, current);
    return !awaited && signal_results();
}

/* An abandoned request is back: undo its effect here (an fd it opened is
 * closed at once, no GIL needed), then leave it for lx_take_late(), away
 * from the result queue, whose eventfd and counters belong to what was
 * submitted since.  Lock held, dropped meanwhile: nobody else looks at the
 * request until it is on the late list. */
static void finish_late(lx_req *req, lx_req **current)
{
    pthread_mutex_unlock(&S.lock);
    if (S.on_abandoned)
        S.on_abandoned(req);
    pthread_mutex_lock(&S.lock);
    if (current)
        *current = NULL;
    lx_list_append(&S.late, req);
    STORE(S.nlate, S.nlate + 1);
}

void lx_complete(lx_req *req, lx_req **current)
{
    int must = 0;
    pthread_mutex_lock(&S.lock);
    if (req->abandoned)
        finish_late(req, current);
    else
        must = queue_result(req, current);
    pthread_mutex_unlock(&S.lock);
    write_signal(must);
}

int lx_complete_later(lx_req *req, lx_req **current)
{
    int must = 0, owed = 0;
    pthread_mutex_lock(&S.lock);
    if (req->abandoned)
        finish_late(req, current);
    else if (S.nresults || S.efd_signalled || req->awaited) {
        must = queue_result(req, current);
    } else {
        enqueue(req, current);
        owed = 1;
    }
    pthread_mutex_unlock(&S.lock);
    write_signal(must);
    return owed;
}

void lx_signal_owed(void)
{
    int must = 0;
    if (!lx_results_owed())
        return;
    pthread_mutex_lock(&S.lock);
    if (S.nresults)
        must = signal_results();
    pthread_mutex_unlock(&S.lock);
    write_signal(must);
}

int lx_complete_many(lx_req **reqs, lx_req **current, int n)
{
    int queued = 0, must = 0;
    pthread_mutex_lock(&S.lock);
    for (int k = 0; k < n; k++)
        if (reqs[k] && reqs[k]->abandoned)   /* by a reinit meanwhile */
            finish_late(reqs[k], &current[k]);
        else if (reqs[k]) {
            must |= queue_result(reqs[k], &current[k]);
            queued++;
        }
    pthread_mutex_unlock(&S.lock);
    write_signal(must);
    return queued;
}

lx_req *lx_take_results(unsigned long max, unsigned long *count)
{
    lx_req *first, *last;
    unsigned long n;

    if (!LOAD(S.nresults)) {
        *count = 0;
        return NULL;
    }
    pthread_mutex_lock(&S.lock);
    first = S.results.head;
    if (!max || max >= S.nresults) {
        n = S.nresults;
        last = S.results.tail;
    } else {
        n = max;
        last = first;
        for (unsigned long i = 1; i < n; i++)
            last = last->next;
    }
    if (first) {
        for (lx_req *r = first; r != last; r = r->next)
            STORE(r->state, LX_TAKEN);
        STORE(last->state, LX_TAKEN);
        S.results.head = last->next;
        if (last->next)
            last->next->prev = NULL;
        else
            S.results.tail = NULL;
        last->next = NULL;
    }
    STORE(S.nresults, S.nresults - n);
    pthread_mutex_unlock(&S.lock);
    *count = n;
    return first;
}

void lx_settle_signal(void)
{
    /* Called when a poll is over, not each time the queue runs dry inside
     * it: while results keep coming, the eventfd stays written, and workers
     * and poller make no write(2)/read(2) pair per result. */
    if ((!LOAD(S.efd_signalled) && !LOAD(S.efd_stale)) || LOAD(S.nresults))
        return;
    pthread_mutex_lock(&S.lock);
    if (!S.nresults && (S.efd_signalled || S.efd_stale)) {
        uint64_t v;
        STORE(S.efd_signalled, 0);
        /* A write still on its way (write_signal) lands after this read,
         * for a result already taken: the next settle reads it too, or
         * the eventfd would stay readable, unsignalled, and a poll wake
         * for ever. */
        STORE(S.efd_stale, __atomic_load_n(&S.efd_writers, __ATOMIC_ACQUIRE) > 0);
        (void)!read(S.efd, &v, sizeof v);
    }
    pthread_mutex_unlock(&S.lock);
}

void lx_sink_absorb(void)
{
    pthread_mutex_lock(&S.lock);
    if (!S.efd_signalled) {
        uint64_t v;
        (void)!read(S.efd, &v, sizeof v);
    }
    pthread_mutex_unlock(&S.lock);
}

void lx_return_results(lx_req *first, unsigned long count)
{
    lx_req *last;
    int must;
    if (!first)
        return;
    pthread_mutex_lock(&S.lock);
    for (last = first;; last = last->next) {
        STORE(last->state, LX_DONE);
        if (!last->next)
            break;
    }
    last->next = S.results.head;
    if (S.results.head)
        S.results.head->prev = last;
    else
        S.results.tail = last;
    first->prev = NULL;
    S.results.head = first;
    STORE(S.nresults, S.nresults + count);
    must = signal_results();
    pthread_mutex_unlock(&S.lock);
    write_signal(must);
}

void lx_expect(lx_req *req)
{
    pthread_mutex_lock(&S.lock);
    req->awaited = 1;
    pthread_mutex_unlock(&S.lock);
}

void lx_unexpect(lx_req *req)
{
    int must = 0;
    pthread_mutex_lock(&S.lock);
    req->awaited = 0;
    if (LOAD(req->state) == LX_DONE)   /* it came in unsignalled */
        must = signal_results();
    pthread_mutex_unlock(&S.lock);
    write_signal(must);
}

int lx_take_one(lx_req *req, int64_t spin_ns)
{
    int64_t deadline = 0;
    int taken = 0;
    for (unsigned i = 0; LOAD(req->state) < LX_DONE; i++) {
        if ((i & 31) == 0) {
            int64_t t = lx_now_ns();
            if (!deadline)
                deadline = t + spin_ns;
            else if (t >= deadline)
                break;
            /* Still not started: the worker that should take it may share
             * this CPU, and gets it only if we yield. */
            if (i && LOAD(req->state) == LX_QUEUED)
                sched_yield();
        }
        __builtin_ia32_pause();
    }
    pthread_mutex_lock(&S.lock);
    req->awaited = 0;
    if (LOAD(req->state) == LX_DONE) {   /* not taken by a poll meanwhile */
        lx_list_unlink(&S.results, req);
        STORE(S.nresults, S.nresults - 1);
        STORE(req->state, LX_TAKEN);
        taken = 1;
    }
    pthread_mutex_unlock(&S.lock);
    return taken;
}

int lx_wait_results(int64_t timeout_ns)
{
    struct pollfd pfd = {.fd = S.efd, .events = POLLIN};
    int64_t deadline = timeout_ns < 0 ? 0 : lx_now_ns() + timeout_ns;
    for (;;) {
        int ms = -1;
        if (LOAD(S.nresults))
            return 1;
        if (timeout_ns >= 0) {
            int64_t left = deadline - lx_now_ns();
            if (left <= 0)
                return 0;
            ms = (int)((left + 999999) / 1000000);
        }
        if (poll(&pfd, 1, ms) < 0)
            return errno == EINTR ? -1 : 0;   /* let the caller see signals */
        /* Readable without results: a ring's completions, written by the
         * kernel (lx_sink_absorb), for the caller to take. */
        if (!LOAD(S.nresults) && !LOAD(S.efd_signalled))
            return 0;
    }
}

void lx_on_abandoned(lx_run_fn fn)
{
    S.on_abandoned = fn;
}

lx_req *lx_take_late(void)
{
    lx_req *list;
    if (!LOAD(S.nlate))
        return NULL;
    pthread_mutex_lock(&S.lock);
    list = S.late.head;
    S.late.head = S.late.tail = NULL;
    STORE(S.nlate, 0);
    pthread_mutex_unlock(&S.lock);
    return list;
}

void lx_completion_lock(void) { pthread_mutex_lock(&S.lock); }
void lx_completion_unlock(void) { pthread_mutex_unlock(&S.lock); }

/* ---- set-up and fork ---- */

static int new_eventfd_at(int fd)
{
    int nfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (nfd < 0)
        return -1;
    if (fd >= 0 && nfd != fd) {
        /* Keep the number: poll_fileno() is the same for the life of the
         * process, so loops that watch it need not be told. */
        if (dup3(nfd, fd, O_CLOEXEC) < 0) {
            close(nfd);
            return -1;
        }
        close(nfd);
        nfd = fd;
    }
    return nfd;
}

/* The locks are held for a few dozen instructions: a contender that spins
 * a moment gets them far sooner than one that sleeps in the kernel (pool.c
 * uses the same for its queue lock). */
static void init_state(void)
{
    pthread_mutexattr_t a;
    S.results.head = S.results.tail = NULL;
    S.nresults = 0;
    S.late.head = S.late.tail = NULL;
    S.nlate = 0;
    S.efd_signalled = S.efd_writers = S.efd_stale = 0;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&S.lock, &a);
    pthread_mutexattr_destroy(&a);
}

/* Handlers registered before any backend's: fork's prepare handlers run in
 * reverse order of registration, so a backend's lock is taken before this
 * one (the lock order), and the child's handlers in order. */
static void before_fork(void) { pthread_mutex_lock(&S.lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&S.lock); }

static lx_req *orphans;

static void after_fork_child(void)
{
    lx_req *list = S.results.head, *r;
    while ((r = S.late.head)) {
        lx_list_unlink(&S.late, r);
        r->next = list;
        list = r;
    }
    orphans = list;
    init_state();
    S.efd = new_eventfd_at(S.efd);
}

lx_req *lx_completion_orphans(void)
{
    lx_req *list = orphans;
    orphans = NULL;
    return list;
}

int lx_completion_init(void)
{
    static int atfork_done;
    init_state();
    S.efd = new_eventfd_at(-1);
    if (S.efd < 0)
        return -1;
    if (!atfork_done) {
        pthread_atfork(before_fork, after_fork_parent, after_fork_child);
        atfork_done = 1;
    }
    return 0;
}

int lx_completion_fileno(void) { return S.efd; }
