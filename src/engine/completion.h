/* completion.h: the one completion sink every backend feeds.
 *
 * A backend (the thread pool today, an io_uring reaper later) finishes a
 * request by leaving its result (>= 0 or -errno) in the request and calling
 * lx_complete(): the request joins the one result queue.  The queue is
 * signalled on one eventfd, written only when the queue goes from empty to
 * non-empty and read again when it is drained, so the fd is readable exactly
 * while results wait.
 *
 * Nothing here touches a Python object; the caller serialises calls that are
 * not marked "any thread" (the extension does so with the GIL).
 */
#ifndef LINUXAIO_COMPLETION_H
#define LINUXAIO_COMPLETION_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define LX_PRI_MIN (-4)
#define LX_PRI_MAX 4
#define LX_NPRI (LX_PRI_MAX - LX_PRI_MIN + 1)

enum lx_state {
    LX_NEW = 0,   /* not submitted yet */
    LX_QUEUED,    /* in a backend's queue */
    LX_RUNNING,   /* a worker (or a backend) has it */
    LX_DONE,      /* in the result queue */
    LX_TAKEN,     /* taken from the result queue by the caller */
};

/* What every backend and the sink know of a request. */
typedef struct lx_req lx_req;
struct lx_req {
    lx_req *next, *prev;     /* queue links, owned by whichever queue holds it */
    int state;               /* enum lx_state, changed under the queue lock, read lock-free (atomic) */
    int cancelled;           /* set by the submitter, read by workers (atomic) */
    int awaited;             /* under the result lock: see lx_expect */
    /* In the padding before run_ns: */
    signed char pri;
    unsigned char tryable : 1;  /* a poller may try it first (lx_pool_help) */
    /* A large copy through the CPU: the pool runs a few at once (pool.h).
     * A bit beside tryable: a byte more would grow every request by 8
     * (W1 awaits 0.88x).  Written at submission, read under the pool's lock. */
    unsigned char copy : 1;
    unsigned char abandoned; /* under the backend's lock and the result lock: see lx_pool_abandon */
    unsigned char error;     /* an errno (all < 256): it never ran, no worker could be started */
    int64_t run_ns;          /* how long the run function took */
};

typedef void (*lx_run_fn)(lx_req *req);

typedef struct {
    lx_req *head, *tail;
} lx_list;

static inline void lx_list_append(lx_list *l, lx_req *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
}

static inline void lx_list_prepend(lx_list *l, lx_req *r)
{
    r->prev = NULL;
    r->next = l->head;
    if (l->head)
        l->head->prev = r;
    else
        l->tail = r;
    l->head = r;
}

static inline void lx_list_unlink(lx_list *l, lx_req *r)
{
    if (r->prev) r->prev->next = r->next; else l->head = r->next;
    if (r->next) r->next->prev = r->prev; else l->tail = r->prev;
    r->next = r->prev = NULL;
}

static inline int64_t lx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The sink's state.  On cache lines of its own, apart from every backend's:
 * workers write the counters as they finish, a spinning poller and a
 * spinning awaiter read them in tight loops (see pool.c on what a shared
 * line cost). */
typedef struct {
    /* set up once (and in a fork's child) */
    _Alignas(64) int efd;
    lx_run_fn on_abandoned;
    /* the result queue: backends and the poller (under lock) */
    _Alignas(64) pthread_mutex_t lock;
    int efd_signalled;        /* eventfd holds a count, or will (efd_writers) */
    int efd_writers;          /* threads about to write it, the lock let go (atomic) */
    int efd_stale;            /* a write may land after the last read: read again */
    unsigned long nresults;   /* atomic reads outside the lock */
    lx_list results;
    lx_list late;             /* abandoned requests, back (lx_take_late) */
    unsigned long nlate;
} lx_sink_state;
extern lx_sink_state lx_sink;

/* Create the eventfd (0, or -1 with errno set).  Before any backend's
 * init: their fork handlers must run after the sink's lock is taken. */
int lx_completion_init(void);
int lx_completion_fileno(void);

/* Any thread: req is finished.  It goes on the result queue, or, if a
 * backend abandoned it (lx_pool_abandon), is undone (lx_on_abandoned's
 * function, without the lock) and put on the late list.  *current, the
 * backend's note of what it is running (NULL: none), is cleared under the
 * lock: a fork's child, which looks at both with every lock held, must not
 * find the request in both places. */
void lx_complete(lx_req *req, lx_req **current);
/* Several at once, under one lock; NULL entries are skipped.  Returns how
 * many went on the result queue (not the late list). */
int lx_complete_many(lx_req **reqs, lx_req **current, int n);
/* As lx_complete(), but a result that finds the queue empty does not
 * write the eventfd: the poller is not woken for it alone.  The next
 * result queued writes it (for both), or lx_signal_owed() does; the
 * caller makes sure one of them comes soon.  Returns 1 if the write is
 * owed so. */
int lx_complete_later(lx_req *req, lx_req **current);
/* Write the eventfd if results wait unsignalled (lx_complete_later's, or
 * the spinning submitter's of lx_expect(): a wake-up for nothing then). */
void lx_signal_owed(void);

/* Results waiting (lock-free). */
static inline unsigned long lx_nresults(void)
{
    return __atomic_load_n(&lx_sink.nresults, __ATOMIC_ACQUIRE);
}

/* Results wait with no eventfd write for them (lock-free; lx_signal_owed
 * writes it). */
static inline int lx_results_owed(void)
{
    return lx_nresults() && !__atomic_load_n(&lx_sink.efd_signalled, __ATOMIC_ACQUIRE);
}

/* Take up to max finished requests (0: all), oldest first, linked by next. */
lx_req *lx_take_results(unsigned long max, unsigned long *count);
/* After a poll: unsignal the eventfd if no result waits, so it is readable
 * exactly while results wait (between polls). */
void lx_settle_signal(void);
/* A ring whose completions the kernel signals on this eventfd itself
 * (IORING_REGISTER_EVENTFD, uring.c's loop ring): read what the kernel
 * wrote, unless results are signalled (their reader takes it too). */
void lx_sink_absorb(void);
/* The submitter will come and take this request itself (take_one): its
 * completion need not signal the eventfd.  unexpect() if it will not. */
void lx_expect(lx_req *req);
void lx_unexpect(lx_req *req);
/* Spin up to spin_ns for this one quick request to finish, then take it
 * out of the result queue (and end expect()).  1 if taken (the caller
 * handles it), 0 if not. */
int lx_take_one(lx_req *req, int64_t spin_ns);
/* Put back, in front, results that were taken but not handled. */
void lx_return_results(lx_req *first, unsigned long count);
/* Block until results are ready or timeout_ns passes (<0: forever).
 * Returns 1 when results are ready, 0 on timeout or when the kernel wrote
 * the eventfd (lx_sink_absorb: completions to take), -1 when a signal came.
 * Call without the GIL. */
int lx_wait_results(int64_t timeout_ns);

/* What to do, in the thread that finished it, with a request a backend
 * abandoned (no GIL: close an fd it opened, say). */
void lx_on_abandoned(lx_run_fn fn);
/* Abandoned requests that have come back since, linked by next (any
 * thread; the caller serialises it with the backend's abandon). */
lx_req *lx_take_late(void);
/* Held, no request completes: for a backend that decides a request's fate
 * atomically with its completion (abandon).  Lock order: a backend's own
 * lock first, then this one. */
void lx_completion_lock(void);
void lx_completion_unlock(void);

/* After fork(), in the child: what the parent had on the result queue and
 * the late list, linked by next, for the caller to drop; the sink starts
 * afresh with a new eventfd on the same fd number. */
lx_req *lx_completion_orphans(void);

#endif
