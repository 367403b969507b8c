/* pool_state.h: the thread pool's tunables and state, private to pool.c
 * and pool_setup.c (apart from its code so that pool.c stays one screenful
 * of logic per concern).  Nothing else includes it. */
#ifndef LINUXAIO_POOL_STATE_H
#define LINUXAIO_POOL_STATE_H

#include "pool.h"

#include <pthread.h>
#include <stdint.h>

/* A request quicker than a sleeping thread's wake-up (~25 us here). */
#define QUICK_NS (20 * 1000)
/* How many quick requests each busy worker may have waiting for it before
 * another is woken: a few microseconds of work, less than one wake-up. */
#define QUICK_DEPTH 8
/* How soon the standby looks for work stuck behind a slow request. */
#define STANDBY_NS (1000 * 1000)
/* ... and how many times less often the other armed sleepers look. */
#define STANDBY_OTHERS 4

/* Growth beyond max_threads for requests that block (section "Threads for
 * what must block" of the README).  A request is measured (its thread's CPU
 * time and voluntary switches: a syscall, ~0.3 us here, on each side of
 * the run) only while the recent ones take SLOW_NS or more, so quick
 * cached requests pay nothing.
 * The pool counts as blocked while the recent requests spent BLOCKED_NS or
 * more off the CPU each, and most of their time: a cold open or read waits
 * for the device; a large read from the page cache is a copy, on the CPU. */
#define SLOW_NS (40 * 1000)
#define BLOCKED_NS (30 * 1000)

/* Workers are small: they run one syscall (or a few, for fused requests)
 * with PATH_MAX-sized buffers at most. */
#define WORKER_STACK (256 * 1024)

typedef struct lx_worker lx_worker;
struct lx_worker {
    lx_worker *next, *prev;   /* all workers */
    lx_worker *idle_next;     /* stack of sleeping workers */
    pthread_cond_t wake;
    int woken;                /* set by the waker before it signals */
    int armed;                /* counted in narmed (q_lock) */
    int running;              /* counted in nrunning (q_lock) */
    int abandoned;            /* by lx_pool_abandon: leave when back (q_lock) */
    int held;                 /* waits for the ring's share of the limit (q_lock) */
    lx_req *current;          /* what it runs now (for fork's orphans) */
};

/* A polling thread while it runs a request in lx_pool_help(). */
typedef struct lx_helper lx_helper;
#define HELP_BATCH 4
struct lx_helper {
    lx_helper *next;
    lx_req *current[HELP_BATCH];   /* as a worker's */
};

/* Grouped by who writes what, each group on cache lines of its own: the
 * submitter, a spinning worker and a spinning poller read some of these in
 * tight loops, and a line that unrelated writers share bounces between the
 * CPUs (measured: a 32-byte shift of this struct alone doubled the cost
 * of a sequential await). */
#define LINE _Alignas(64)
typedef struct {
    /* set up once or changed rarely (under q_lock) */
    lx_run_fn run;
    lx_try_fn try_run;
    int stopping;
    unsigned generation;      /* bumped when limits change: sleepers re-arm */
    unsigned nthreads, max_threads, max_idle;
    unsigned max_blocking;    /* thread cap while requests block (>= max_threads to grow) */
    unsigned ncpu;            /* CPUs this process may run on */
    unsigned max_copies;      /* copies (lx_req.copy) that may run at once */
    int64_t idle_timeout_ns, spin_ns;
    lx_worker workers;        /* list head (sentinel) */
    lx_worker abandoned;      /* workers lx_pool_abandon let go, still running */
    pthread_cond_t exited;    /* a worker left */

    /* the request queues: submitters and workers (under q_lock) */
    LINE pthread_mutex_t q_lock;
    unsigned long nready;     /* atomic reads outside the lock */
    unsigned nspinning;
    unsigned narmed;          /* sleepers that look for stuck work within STANDBY_NS */
    unsigned long npopped;    /* requests taken by workers (not helpers), ever */
    unsigned nheld;           /* workers held (atomic reads outside the lock: the ring) */
    unsigned long ncopies_ready;  /* copies queued (counted in nready too; atomic reads) */
    unsigned ncopies_running;     /* copies started, not finished (atomic reads) */
    unsigned copies_peak;         /* the most ncopies_running has been */
    lx_worker *idle;          /* sleeping workers, most recent first */
    lx_helper *helpers;       /* polling threads running a request now */
    lx_list queue[LX_NPRI];

    /* what a worker writes as it finishes a request */
    LINE unsigned long nrunning;
    int64_t service_ns;       /* recent run time of a request (moving average) */
    int64_t offcpu_ns;        /* recent time off the CPU of a request (moving average) */
    unsigned long nowed;      /* copies' results that left the poller's wake-up owed, ever */

    /* the result queue, on lines of its own too: completion.c */
} lx_pool_state;

/* The one pool (pool_setup.c), and its condition variables' set-up: on
 * CLOCK_MONOTONIC, which the timed waits use. */
/* Hidden: the pool's hot paths reach it directly, not through the GOT. */
extern __attribute__((visibility("hidden"))) lx_pool_state lx_pool_st;
void lx_pool_cond_init(pthread_cond_t *c);

#endif
