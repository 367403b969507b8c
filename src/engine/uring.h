/* uring.h: the io_uring backend (uring.c) and its rows' submission entries
 * (uring_prep.c).
 *
 * The ring thread's ring, one per process, owned by one thread (the ring
 * thread): it alone fills submission entries, enters the kernel and reaps
 * completions, so the ring can be SINGLE_ISSUER with DEFER_TASKRUN, and no
 * caller's thread owns a request in it (io_uring cancels the queued work
 * of a task that exits).  Callers only queue requests under the ring's
 * lock and wake the ring thread through an eventfd the ring itself reads.
 * Beside it, the loop's ring (uring_loop.c, below), which the thread that
 * polls fills itself. */
#ifndef LINUXAIO_URING_H
#define LINUXAIO_URING_H

#include "backend.h"
#include "ops.h"

#include <linux/io_uring.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Constants newer than the build machine's headers (Linux 6.1). */
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif

/* ops.h spells the opcodes its rows use without this header: they are ABI. */
_Static_assert(LX_RING_READ == IORING_OP_READ && LX_RING_WRITE == IORING_OP_WRITE
               && LX_RING_READV == IORING_OP_READV && LX_RING_WRITEV == IORING_OP_WRITEV
               && LX_RING_OPENAT == IORING_OP_OPENAT, "io_uring opcodes are ABI");

/* ---- the ring's state, shared by uring.c and uring_setup.c ---- */

/* Submission entries; the completion queue holds twice as many.  256 deep
 * covers what an NVMe device wants (32-256 reads in flight). */
#define RING_ENTRIES 256
/* In flight by default: the ring's own cost does not grow with depth as a
 * thread pool's does; max_parallel lowers it, min_parallel raises it. */
#define DEFAULT_LIMIT 128
/* Completions handed to the sink at once. */
#define BATCH 128
/* user_data of the ring's own entries: requests are pointers (aligned). */
#define WAKE_TAG 1
#define CANCEL_TAG 2
/* How long the ring thread sleeps while a poll holds its wake-up (the one
 * timed wait left: requests held back by the threads' share of the limit
 * are woken exactly, by the pool). */
#define HELD_WAIT_NS (1000 * 1000)
/* How long it sleeps at most while pending requests wait for the threads'
 * share of the limit: they wake it when it changes; this only bounds the
 * cost of a wake-up missed (none is known). */
#define PEER_BACKSTOP_NS (100 * 1000 * 1000)

enum { MODE_AUTO, MODE_THREADS, MODE_URING };

/* One ring's queues and mappings: the ring thread's (lx_R.q) and the
 * loop's (lx_L, uring.c). */
typedef struct {
    int fd;
    unsigned setup_flags, features, sq_entries, cq_entries;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    unsigned *sq_flags, *cq_overflow;   /* the kernel's: CQ_OVERFLOW flag, dropped count */
    struct io_uring_cqe *cqes;
    struct io_uring_sqe *sqes;
    void *sq_map, *cq_map;
    size_t sq_map_len, cq_map_len, sqe_map_len;
    unsigned sq_local_tail;    /* under lx_R.lock, as the rest below */
    unsigned cqes_due;         /* entries submitted whose completion is not reaped */
    lx_req **to_cancel;        /* in flight here, cancelled, no ASYNC_CANCEL sent yet */
    unsigned ncancel, cancel_cap;
} lx_rq;

/* Map a ring set up as p says (fd); 0, or -1 with errno (nothing left
 * mapped).  Unmap: lx_rq_unmap. */
int lx_rq_map(lx_rq *q, int fd, const struct io_uring_params *p);
void lx_rq_unmap(lx_rq *q);

typedef struct {
    int mode;
    int up;                    /* a ring is set up (or, after fork, due to be) */
    int refit;                 /* after fork: set up a new one before use */
    char reason[640];          /* why no ring is in use ("" when one is) */
    const char *flags_used;    /* the setup flags that the kernel took */
    /* the ring (only the ring thread touches its queues once it runs) */
    lx_rq q;
    unsigned char has_op[256];
    /* the ring thread */
    pthread_t thread;
    int thread_up;
    int wake_fd, wake_armed;
    uint64_t wake_buf;
    /* under lock */
    pthread_mutex_t lock;
    pthread_cond_t settled;    /* in-flight count fell (stop, shutdown wait on it) */
    int asleep;                /* 1: in the kernel until a completion or wake-up; 2: for HELD_WAIT_NS;
                                  3: for PEER_BACKSTOP_NS */
    int woken, held;           /* a wake-up was written; one is held by a poll */
    int holders;               /* threads in a poll that hold wake-ups */
    /* Pending requests may wait for the threads' share of the limit: the
     * pool wakes the ring when it changes (read by the pool unlocked). */
    int peer_wait;
    lx_list pending[LX_NPRI];
    unsigned long npending, ninflight, nabandoned;
    /* Requests on their way from the ring to the threads (EOPNOTSUPP), the
     * ring's lock released: in neither backend's counts, yet unfinished. */
    unsigned long nhanding;
    lx_list inflight;          /* both rings' */
    unsigned limit;
    int stopping;              /* interpreter exit: nothing more starts */
    /* Counters for engine_info() (the ring thread's, read racily): the
     * batching they show is what the tests check. */
    unsigned long n_enters;    /* io_uring_enter calls */
    unsigned long n_submit_enters;  /* of those, the ones that handed entries over */
    unsigned long n_submitted; /* entries the kernel took (requests, steps, cancels, wake-ups) */
    unsigned long n_started;   /* requests handed to the kernel */
    unsigned long n_reaped;    /* requests finished from the ring */
    unsigned long n_sink;      /* batches handed to the sink (at most one eventfd write each) */
    unsigned long n_fd_checks; /* of those fds: is it a stream (a syscall each) */
    unsigned long n_refused;   /* positioned reads and writes of streams finished with ESPIPE */
    unsigned long n_peer_wakes;    /* wake-ups written by the threads' side: room under the shared limit */
    unsigned long n_overflow_flushes;  /* waits that found the CQ overflowed (IORING_SQ_CQ_OVERFLOW) */
    unsigned long n_async_opens;   /* slurp opens sent straight to the kernel's workers (IOSQE_ASYNC) */
    unsigned long n_wakes;     /* wake-ups written to the ring thread (write_wake) */
    unsigned long n_kernel_ns; /* requests' time from their hand-over to their completion reaped, summed */
    /* The loop's ring (uring.c, lx_L): its enters (under its enter lock),
     * and of n_started and n_reaped, the requests it took (R.lock). */
    unsigned long n_loop_enters, n_loop_started, n_loop_reaped;
    /* Names not in the dentry cache (uring_prep.c): the ring thread's loop
     * turns (a completion reaped in the turn that submitted its entry was
     * done inline), and the score of slurp opens that were not. */
    unsigned long turn;
    unsigned cold_opens, open_seq;
    /* The cap the ring thread set on its kernel workers (bounded work:
     * opens...), 0 until it did or if the kernel refused (before 5.15);
     * engine_info()["kernel_workers"]. */
    unsigned kernel_workers;
} lx_ring;

/* The one ring (uring_setup.c defines it). */
extern lx_ring lx_R;

/* ---- the loop's ring (uring_loop.c) ----
 *
 * The ring thread's hand-offs cost W5 (64 O_DIRECT reads in flight) a
 * wake-up each way per batch: the loop writes an eventfd, the ring thread
 * wakes, submits; a completion wakes the ring thread, which writes the
 * sink's eventfd, and the loop wakes.  So the first thread that ends a
 * poll with ring requests queued (the event loop's, as a rule) sets up a
 * second ring, L, and from then on submits what its polls queue itself,
 * at the poll's end: no wake-up.  Its completions need nobody either: L
 * has no DEFER_TASKRUN, so the kernel posts them from this thread's own
 * task work (run on its next return from the kernel, which the kernel
 * forces), and L's registered eventfd is the sink's, the one the loop
 * watches.  Any thread takes L's completions (lx_uring_reap: memory only).
 * L takes positioned reads and writes only (no step machines, no
 * streams): those are what a deep queue is for, and what may simply run
 * again if the kernel cancels them because their submitter exited.
 * Everything else (pending lists, in-flight list, limit, priorities) is
 * the ring thread's, under R.lock: a request is pending, then in one ring
 * or the other (on_ring 1 or 2). */
extern lx_rq lx_L;
extern int lx_L_up, lx_L_tried;
extern unsigned lx_L_gen;
extern _Thread_local unsigned lx_l_owner;
extern _Thread_local unsigned long lx_l_nheld;
extern pthread_mutex_t lx_L_enter;
extern lx_list lx_Lp[LX_NPRI];
/* uring_loop.c: hand L its cancels and (in its owner) what is pending;
 * set it up, owned by this thread; a poll's end in this thread. */
void lx_loop_flush(void);
void lx_loop_adopt(void);
void lx_loop_end_poll(void);
/* uring.c, for uring_loop.c (lock held unless said): this thread owns L;
 * L takes the request; the ring a request in flight is in; fill q's
 * entries; reap q's completions (those for the threads in back);
 * the limit has room; the ring thread is to be woken (write it, lock
 * not held); the top priority pending, its next. */
int lx_loop_mine(void);
int lx_loop_takes(const Request *r);
lx_rq *lx_ring_q_of(lx_req *req);
void lx_ring_fill(lx_rq *q, int requests);
int lx_ring_reap_q(lx_rq *q, lx_req **back);
int lx_ring_below_limit(void);
int lx_ring_want_wake(unsigned long held);
void lx_ring_write_wake(void);
int lx_ring_top_pending_pri(void);
/* An ASYNC_CANCEL for req is to be sent (fill sends it); -1 without
 * memory.  Requests polls queued, held, since the ring thread woke. */
int lx_ring_queue_cancel(lx_req *req);
/* Another entry may go in q (SQ room, a CQ slot); the next of lx_Lp by
 * priority (take: unlinked). */
int lx_ring_may_add(lx_rq *q);
lx_req *lx_ring_lp_next(int take);
extern unsigned long lx_ring_nheld;
/* Held requests go in at the poll's end, or once they are a quarter of
 * what is in the kernel (at least HOLD_MIN): a poll that hands out a long
 * batch of results (64 awaiting tasks, each queueing its next read) then
 * feeds the device a few batches as it goes, instead of leaving a drain's
 * worth of its queue idle until the drain ends. */
#define HOLD_MIN 8
lx_req *lx_ring_next_pending(void);
/* This thread's nesting of polls (uring.c); which poll it is (a new one
 * in any thread: new routing hints, uring_route.c). */
extern _Thread_local int lx_poll_depth;
extern unsigned long lx_poll_epoch;
/* With the GIL: the ring thread runs (started on first use); 0 if the
 * ring cannot be used (uring.c). */
int lx_ring_ready(void);

static inline int sys_setup(unsigned entries, struct io_uring_params *p)
{
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static inline int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void *arg, size_t argsz)
{
    return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
}

static inline int sys_register(int fd, unsigned op, void *arg, unsigned nargs)
{
    return (int)syscall(__NR_io_uring_register, fd, op, arg, nargs);
}


/* Set up the ring (no thread yet).  0, or -1 with lx_R.reason set. */
int lx_ring_setup(void);
/* The loop's ring: see uring_setup.c.  efd: the eventfd its completions
 * write (the sink's). */
int lx_loop_ring_setup(lx_rq *q, int efd);
/* The fork handlers for the ring's lock (uring.c). */
void lx_ring_at_fork(void);

/* Import: LINUXAIO_ENGINE (auto, threads, uring) and the ring if wanted.
 * 0, or -1 with an exception set (uring asked for and refused, or a bad
 * value). */
int lx_uring_init(void);
/* engine(), engine_info(): added to the module. */
extern PyMethodDef lx_uring_module_methods[];
/* Requests queued on the ring, not yet in the kernel (nready()). */
unsigned long lx_uring_nready(void);
/* max_parallel/min_parallel reach the ring too: it never has more in the
 * kernel than the limit they set. */
void lx_uring_set_limit(unsigned n, int raise_only);
/* poll.c: while a poll hands out results, callbacks that submit only queue
 * (hold(1)); the ring thread is woken once, at hold(0), for all of them.
 * kick(): wake it now for what was held (before a poll blocks).  A poll
 * is also how long the routing trusts an fd it found buffered (uring.c). */
void lx_uring_hold(int on);
void lx_uring_kick(void);
/* The loop's ring (uring.c): take the completions it has (any thread, no
 * GIL needed; no syscall when there are none).  settle(): at a poll's end
 * or before it waits, read what the kernel wrote to the sink's eventfd
 * for it, then take what came meanwhile (found_none: the poll handled
 * nothing, woken perhaps by a late write of the kernel's). */
void lx_uring_reap(void);
void lx_uring_settle(int found_none);

/* fd is a stream: its pread(2) fails with ESPIPE (a pipe, a socket, a
 * FIFO, a tty, an eventfd), where io_uring would ignore the offset and read
 * it.  A syscall (~0.4 us). */
int lx_is_stream(int fd);

/* _ring_stream_reads(True): reads at the file position of a stream (a
 * pipe, a socket) go to the ring too (the tests hold requests in the
 * kernel with reads of empty pipes); off: on threads, as other reads at
 * the file position.  Under the GIL. */
extern int lx_ring_stream_reads;

/* uring_prep.c: after a step's completion, prepare the next step of a
 * request that has several (LX_CAP_STEPS: slurp's open, read..., close).
 * Returns 1 if sqe was filled (the request stays in the kernel), 0 if the
 * request is finished (r->result set; r->ran if it took effect). */
int lx_ring_step(Request *r, int res, struct io_uring_sqe *sqe);
/* Slurp opens go to the kernel's workers at once (IOSQE_ASYNC), one in
 * COLD_OPEN_PROBE excepted, while the score of opens found with their
 * name uncached is COLD_OPENS or more (uring_prep.c).  _ring_cold_opens(n)
 * sets the score (tests). */
#define COLD_OPENS 16
#define COLD_OPEN_PROBE 8
/* The request is cancelled or abandoned: let go of what its steps hold (an
 * fd, a buffer; res is the completion of the step in the kernel). */
void lx_ring_step_abort(Request *r, int res);

#endif
