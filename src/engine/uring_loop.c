/* uring_loop.c: the loop's ring (see uring.h), beside the ring thread's
 * (uring.c), whose lock, pending lists, in-flight list and limit it shares. */
#define _GNU_SOURCE
#include "uring.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define R lx_R

lx_rq lx_L;
int lx_L_up, lx_L_tried;   /* under the GIL (set up), read anywhere */
/* This thread owns L when lx_l_owner == lx_L_gen (a fork's child starts anew). */
unsigned lx_L_gen = 1;
_Thread_local unsigned lx_l_owner;
/* Requests the owner's polls queued since its last flush. */
_Thread_local unsigned long lx_l_nheld;
/* Held while filling and entering L (lock order: this, then R.lock). */
pthread_mutex_t lx_L_enter = PTHREAD_MUTEX_INITIALIZER;

/* Requests L's owner queued in its current poll (on_ring 3), by
 * priority: in L at the poll's end (l_flush), where what L cannot take
 * then moves to R.pending, for the ring thread.  Counted in R.npending
 * too.  Under R.lock. */
lx_list lx_Lp[LX_NPRI];

/* ---- the loop's ring: flush and reap ---- */

/* Hand L what is queued: its cancels (any thread), and, in its owner, the
 * pending requests it takes; one io_uring_enter.  What L leaves pending
 * (a request it does not take goes first) the ring thread starts.  Lock
 * not held. */
void lx_loop_flush(void)
{
    unsigned to_submit;
    int wake = 0;
    pthread_mutex_lock(&lx_L_enter);
    pthread_mutex_lock(&R.lock);
    if (!lx_L_up) {
        pthread_mutex_unlock(&R.lock);
        pthread_mutex_unlock(&lx_L_enter);
        return;
    }
    if (lx_l_owner == lx_L_gen)
        lx_l_nheld = 0;
    lx_ring_fill(&lx_L, lx_l_owner == lx_L_gen);
    /* What L could not take now (the limit, the CQ, a more urgent request
     * of the ring thread's) waits for the ring thread, in order. */
    for (int p = 0; p < LX_NPRI; p++) {
        lx_req *req;
        while ((req = lx_Lp[p].head)) {
            lx_list_unlink(&lx_Lp[p], req);
            __atomic_store_n(&REQ_OF(req)->on_ring, 1, __ATOMIC_RELAXED);
            lx_list_append(&R.pending[p], req);
        }
    }
    STORE(*lx_L.sq_tail, lx_L.sq_local_tail);
    to_submit = lx_L.sq_local_tail - LOAD(*lx_L.sq_head);
    if (R.npending && lx_ring_below_limit())
        wake = lx_ring_want_wake(0);
    pthread_mutex_unlock(&R.lock);
    /* No GETEVENTS: the completions come without this thread waiting.
     * What the kernel did not take (an error) goes with the next flush. */
    if (to_submit && sys_enter(lx_L.fd, to_submit, 0, 0, NULL, 0) >= 0)
        __atomic_add_fetch(&R.n_loop_enters, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&lx_L_enter);
    if (wake)
        lx_ring_write_wake();
    lx_pool_peer_changed();
}

void lx_uring_reap(void)
{
    lx_req *back[BATCH];
    int nb, wake;
    if (!LOAD(lx_L_up) || LOAD(*lx_L.cq_tail) == LOAD(*lx_L.cq_head))
        return;
    do {
        pthread_mutex_lock(&R.lock);
        nb = lx_ring_reap_q(&lx_L, back);
        if (R.ninflight <= R.nabandoned || R.stopping)
            pthread_cond_broadcast(&R.settled);
        /* Room under the limit now: the owner's poll fills L at its end;
         * anyone else leaves what waits to the ring thread. */
        wake = R.npending && !(lx_l_owner == lx_L_gen && lx_poll_depth > 0) ? lx_ring_want_wake(0) : 0;
        if (nb)
            STORE(R.nhanding, R.nhanding + (unsigned long)nb);
        pthread_mutex_unlock(&R.lock);
        if (nb) {
            lx_pool_submit_many(back, (unsigned long)nb);
            pthread_mutex_lock(&R.lock);
            STORE(R.nhanding, R.nhanding - (unsigned long)nb);
            pthread_mutex_unlock(&R.lock);
        }
        if (wake)
            lx_ring_write_wake();
    } while (nb == BATCH);
    lx_pool_peer_changed();
}

void lx_uring_settle(int found_none)
{
    if (!LOAD(lx_L_up))
        return;
    /* The kernel writes the eventfd when L has requests in flight; a
     * write that comes just after their last completion was taken wakes
     * a poll that finds nothing, which reads it then (found_none). */
    if (LOAD(lx_L.cqes_due) || found_none)
        lx_sink_absorb();   /* first: what the kernel writes after it is seen below */
    lx_uring_reap();
}

/* Set up L, owned by this thread (under the GIL; tried once: if the
 * kernel refuses, the ring thread does it all). */
void lx_loop_adopt(void)
{
    lx_rq q;
    memset(&q, 0, sizeof q);
    lx_L_tried = 1;
    if (lx_loop_ring_setup(&q, lx_completion_fileno()) < 0)
        return;
    pthread_mutex_lock(&R.lock);
    lx_L = q;
    STORE(lx_L_up, 1);
    pthread_mutex_unlock(&R.lock);
    lx_l_owner = lx_L_gen;
}

/* A poll ends in this thread: if it owns L, what it queued goes in now. */
void lx_loop_end_poll(void)
{
    if (lx_loop_mine() && (lx_l_nheld || LOAD(R.npending) || LOAD(lx_L.sq_local_tail) != LOAD(*lx_L.sq_head)))
        lx_loop_flush();
}
