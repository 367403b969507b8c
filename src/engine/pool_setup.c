/* pool_setup.c: the thread pool's state, its set-up and its fork
 * handlers (pool.h; the pool's logic is pool.c's). */
#define _GNU_SOURCE
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool_state.h"

__attribute__((visibility("hidden"))) lx_pool_state lx_pool_st;
#define P lx_pool_st

void lx_pool_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* The locks are held for a few dozen instructions: a contender that spins
 * a moment gets them far sooner than one that sleeps in the kernel (a
 * futex wake-up across CPUs costs the waker a syscall and the sleeper tens
 * of microseconds). */
static void mutex_init_adaptive(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

static void init_state(void)
{
    memset(P.queue, 0, sizeof P.queue);
    P.nready = P.nrunning = P.ncopies_ready = 0;
    P.ncopies_running = 0;
    P.workers.next = P.workers.prev = &P.workers;
    P.abandoned.next = P.abandoned.prev = &P.abandoned;
    P.idle = NULL;
    P.helpers = NULL;
    P.nthreads = P.nspinning = P.narmed = 0;
    P.stopping = 0;
    mutex_init_adaptive(&P.q_lock);
    lx_pool_cond_init(&P.exited);
}

/* The sink's handlers (completion.c), registered first, take its lock
 * after this one and reset it before this child handler runs. */
static void before_fork(void) { pthread_mutex_lock(&P.q_lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&P.q_lock); }

static lx_req *orphans;

static void after_fork_child(void)
{
    lx_req *list = NULL, *r;
    lx_worker *w, *next;

    /* Everything the parent had in flight becomes an orphan of the child. */
    for (int i = 0; i < LX_NPRI; i++)
        while ((r = P.queue[i].head)) {
            lx_list_unlink(&P.queue[i], r);
            r->next = list;
            list = r;
        }
    for (w = P.workers.next; w != &P.workers; w = next) {
        next = w->next;
        if (w->current) {   /* running: finish() clears it with the result */
            w->current->next = list;
            list = w->current;
        }
        free(w);   /* its thread does not exist here */
    }
    for (w = P.abandoned.next; w != &P.abandoned; w = next) {
        next = w->next;
        if (w->current) {
            w->current->next = list;
            list = w->current;
        }
        free(w);
    }
    for (lx_helper *h = P.helpers; h; h = h->next)
        for (int k = 0; k < HELP_BATCH; k++)
            if (h->current[k]) {   /* on the stack of a thread not copied here */
                h->current[k]->next = list;
                list = h->current[k];
            }
    orphans = list;
    init_state();
}

lx_req *lx_pool_orphans(void)
{
    lx_req *list = orphans;
    orphans = NULL;
    return list;
}

int lx_pool_init(lx_run_fn run, lx_try_fn try_run)
{
    static int atfork_done;
    P.run = run;
    P.try_run = try_run;
    {
        cpu_set_t cpus;
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        P.ncpu = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? (unsigned)CPU_COUNT(&cpus)
                 : online > 0 ? (unsigned)online : 2;
    }
    init_state();
    P.max_threads = 4;
    P.max_copies = P.ncpu ? P.ncpu : 1;
    P.max_blocking = 32;
    P.max_idle = 4;
    P.idle_timeout_ns = 10LL * 1000000000;
    P.spin_ns = 50 * 1000;
    if (!atfork_done) {
        pthread_atfork(before_fork, after_fork_parent, after_fork_child);
        atfork_done = 1;
    }
    return 0;
}

