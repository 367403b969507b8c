/* uring_loop.c: the rings' queues (filling entries, reaping completions,
 * waking the ring thread: uring.c's ring thread calls these) and the
 * loop's ring (see uring.h), which shares the ring thread's lock, pending
 * lists, in-flight list and limit. */
#define _GNU_SOURCE
#include "uring.h"
#include "ops_run.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define R lx_R

_Thread_local int lx_poll_depth;

lx_rq *lx_ring_q_of(lx_req *req)
{
    return __atomic_load_n(&REQ_OF(req)->on_ring, __ATOMIC_RELAXED) == 2 ? &lx_L : &R.q;
}

int lx_loop_mine(void) { return LOAD(lx_L_up) && lx_l_owner == lx_L_gen; }

/* A request L may take (see above). */
int lx_loop_takes(const Request *r)
{
    unsigned caps = lx_ops[r->op].caps;
    return (caps & LX_CAP_POSITIONED) && !(caps & LX_CAP_STEPS) && r->offset >= 0;
}
/* Requests polls have queued, held, since the ring thread last woke (lock
 * held). */
unsigned long lx_ring_nheld;

/* ---- the ring thread: submits, waits, reaps ---- */

static struct io_uring_sqe *next_sqe(lx_rq *q)
{
    unsigned idx = q->sq_local_tail & *q->sq_mask;
    q->sq_array[idx] = idx;
    q->sq_local_tail++;
    q->cqes_due++;
    return &q->sqes[idx];
}

static unsigned sq_room(lx_rq *q) { return q->sq_entries - (q->sq_local_tail - LOAD(*q->sq_head)); }

/* Whether another entry may go in: room in the SQ, and a completion slot
 * for it that no earlier entry may claim. */
int lx_ring_may_add(lx_rq *q) { return sq_room(q) > 0 && q->cqes_due < q->cq_entries; }

lx_req *lx_ring_lp_next(int take)
{
    for (int p = LX_NPRI - 1; p >= 0; p--)
        if (lx_Lp[p].head) {
            lx_req *req = lx_Lp[p].head;
            if (take) {
                lx_list_unlink(&lx_Lp[p], req);
                STORE(R.npending, R.npending - 1);
            }
            return req;
        }
    return NULL;
}

int lx_ring_top_pending_pri(void)
{
    for (int p = LX_NPRI - 1; p >= 0; p--)
        if (__atomic_load_n(&R.pending[p].head, __ATOMIC_RELAXED))
            return p;
    return -1;
}


lx_req *lx_ring_next_pending(void)
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
int lx_ring_below_limit(void)
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
    return lx_pool_top_pri() > lx_ring_top_pending_pri() && lx_pool_may_start();
}

int lx_ring_stream_reads;

/* Which fd lx_ring_fill() last asked is_stream about, and the answer: one syscall
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

/* Fill submission entries of ring q: the wake-up read (the ring
 * thread's), cancels, then pending requests by priority (if requests),
 * while the limit and the queues allow; L stops at one it does not take,
 * which goes first on the ring thread's.  Lock held. */
void lx_ring_fill(lx_rq *q, int requests)
{
    lx_req *refused[BATCH], *current[BATCH];
    int nrefused = 0;
    fd_kind seen = {-1, 0};
    if (q == &R.q && !R.wake_armed && lx_ring_may_add(q)) {
        struct io_uring_sqe *sqe = next_sqe(q);
        memset(sqe, 0, sizeof *sqe);
        sqe->opcode = IORING_OP_READ;
        sqe->fd = R.wake_fd;
        sqe->addr = (uint64_t)(uintptr_t)&R.wake_buf;
        sqe->len = sizeof R.wake_buf;
        sqe->user_data = WAKE_TAG;
        R.wake_armed = 1;
    }
    while (q->ncancel && lx_ring_may_add(q)) {
        struct io_uring_sqe *sqe = next_sqe(q);
        memset(sqe, 0, sizeof *sqe);
        sqe->opcode = IORING_OP_ASYNC_CANCEL;
        sqe->fd = -1;
        sqe->addr = (uint64_t)(uintptr_t)q->to_cancel[--q->ncancel];
        sqe->user_data = CANCEL_TAG;
    }
    while (requests && R.npending && lx_ring_below_limit() && lx_ring_may_add(q) && !yields_to_threads()) {
        lx_req *req;
        Request *r;
        struct io_uring_sqe *sqe;
        if (q == &lx_L) {
            /* the owner's by priority, or one of the ring thread's that L
             * takes if it comes first */
            int pr = lx_ring_top_pending_pri();
            if ((req = lx_ring_lp_next(0)) && req->pri - LX_PRI_MIN >= pr)
                req = lx_ring_lp_next(1);
            else if (pr >= 0 && lx_loop_takes(REQ_OF(R.pending[pr].head)))
                req = lx_ring_next_pending();
            else
                break;
        } else if (!(req = lx_ring_next_pending())) {
            break;
        }
        r = REQ_OF(req);
        if (refused_positioned(r, &seen)) {
            refused[nrefused++] = req;
            if (nrefused == BATCH) {
                lx_complete_many(refused, current, nrefused);
                nrefused = 0;
            }
            continue;
        }
        sqe = next_sqe(q);
        lx_ops[r->op].prep(r, sqe);
        sqe->user_data = (uint64_t)(uintptr_t)req;
        if (q == &lx_L) {
            __atomic_store_n(&r->on_ring, 2, __ATOMIC_RELAXED);   /* read unlocked: q_of, lx_backend_of */
            R.n_loop_started++;
        }
        req->run_ns = lx_now_ns();
        STORE(req->state, LX_RUNNING);
        lx_list_append(&R.inflight, req);
        STORE(R.ninflight, R.ninflight + 1);
        R.n_started++;
    }
    if (nrefused)
        lx_complete_many(refused, current, nrefused);
}

/* Lock held: an ASYNC_CANCEL for req is to be sent (lx_ring_fill() sends it).
 * -1 if there is no memory to note it. */
int lx_ring_queue_cancel(lx_req *req)
{
    lx_rq *q = lx_ring_q_of(req);
    if (q->ncancel == q->cancel_cap) {
        unsigned cap = q->cancel_cap ? 2 * q->cancel_cap : 64;
        lx_req **a = realloc(q->to_cancel, cap * sizeof *a);
        if (!a)
            return -1;
        q->to_cancel = a;
        q->cancel_cap = cap;
    }
    q->to_cancel[q->ncancel++] = req;
    return 0;
}

static void forget_cancel(lx_req *req)
{
    lx_rq *q = lx_ring_q_of(req);
    for (unsigned i = 0; i < q->ncancel; i++)
        if (q->to_cancel[i] == req) {
            q->to_cancel[i] = q->to_cancel[--q->ncancel];
            return;
        }
}

/* One completion of a request.  Returns the request if it finished, NULL
 * if it goes on (a next step submitted) or goes to the threads (*back). */
static lx_req *reaped(lx_rq *q, lx_req *req, int64_t res, lx_req **back)
{
    Request *r = REQ_OF(req);
    const lx_op *row = &lx_ops[r->op];
    int stopped = CANCELLED(r) || req->abandoned;
    if (q == &lx_L && res == -ECANCELED && !stopped) {
        /* Not ours: the kernel cancelled it as L's owner thread exited
         * (the reads it had sent to its io-wq workers).  A positioned
         * read or write, not started or to be done again: pending again,
         * first in its priority, for the ring thread. */
        forget_cancel(req);
        lx_list_unlink(&R.inflight, req);
        STORE(R.ninflight, R.ninflight - 1);
        __atomic_store_n(&r->on_ring, 1, __ATOMIC_RELAXED);
        STORE(req->state, LX_QUEUED);
        lx_list_prepend(&R.pending[req->pri - LX_PRI_MIN], req);
        STORE(R.npending, R.npending + 1);
        return NULL;
    }
    if (row->caps & LX_CAP_STEPS) {
        if (stopped) {
            lx_ring_step_abort(r, (int)res);
            res = -ECANCELED;
        } else if (lx_ring_may_add(q)) {
            struct io_uring_sqe *sqe = &q->sqes[q->sq_local_tail & *q->sq_mask];
            if (lx_ring_step(r, (int)res, sqe)) {
                next_sqe(q);
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
int lx_ring_reap_q(lx_rq *q, lx_req **back)
{
    lx_req *done[BATCH], *current[BATCH];
    int nd = 0, nb = 0;
    unsigned head = *q->cq_head, tail = LOAD(*q->cq_tail);
    for (; head != tail; head++) {
        struct io_uring_cqe *cqe = &q->cqes[head & *q->cq_mask];
        uint64_t ud = cqe->user_data;
        lx_req *req, *fb = NULL;
        q->cqes_due--;
        if (ud == WAKE_TAG) {
            R.wake_armed = 0;
            continue;
        }
        if (ud == CANCEL_TAG)
            continue;
        if ((req = reaped(q, (lx_req *)(uintptr_t)ud, cqe->res, &fb)))
            done[nd++] = req;
        if (fb)
            back[nb++] = fb;
        if (nd == BATCH) {
            R.n_reaped += (unsigned long)nd;   /* counted before the waiter can see them */
            if (q == &lx_L)
                R.n_loop_reaped += (unsigned long)nd;
            R.n_sink++;
            lx_complete_many(done, current, nd);
            nd = 0;
        }
        if (nb == BATCH)
            break;   /* the caller hands these over, then comes back */
    }
    STORE(*q->cq_head, head);
    if (nd) {
        R.n_reaped += (unsigned long)nd;
        if (q == &lx_L)
            R.n_loop_reaped += (unsigned long)nd;
        R.n_sink++;
        lx_complete_many(done, current, nd);
    }
    return nb;
}

/* Held requests go in at the poll's end, or once they are a quarter of
 * what is in the kernel (at least HOLD_MIN): a poll that hands out a long
 * batch of results (64 awaiting tasks, each queueing its next read) then
 * feeds the device a few batches as it goes, instead of leaving a drain's
 * worth of its queue idle until the drain ends. */

/* Lock held; returns whether the caller must write the wake-up (unlocked).
 * held: how many requests a poll that holds wake-ups just queued (0: the
 * caller holds none). */
int lx_ring_want_wake(unsigned long held)
{
    if (!R.asleep || R.woken)
        return 0;
    if (held && R.asleep == 2) {
        unsigned long cap = R.ninflight / 4;
        lx_ring_nheld += held;
        if (lx_ring_nheld < (cap > HOLD_MIN ? cap : HOLD_MIN)) {
            STORE(R.held, 1);   /* lx_uring_kick reads it unlocked */
            return 0;
        }
    }
    R.woken = 1;
    return 1;
}

void lx_ring_write_wake(void)
{
    uint64_t one = 1;
    __atomic_add_fetch(&R.n_wakes, 1, __ATOMIC_RELAXED);
    (void)!write(R.wake_fd, &one, sizeof one);
}


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
