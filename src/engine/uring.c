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
/* How long the ring thread sleeps while a poll holds its wake-up. */
#define HELD_WAIT_NS (1000 * 1000)

enum { MODE_AUTO, MODE_THREADS, MODE_URING };
static const char *const mode_names[] = {"auto", "threads", "uring"};

static struct {
    int mode;
    int up;                    /* a ring is set up (or, after fork, due to be) */
    int refit;                 /* after fork: set up a new one before use */
    char reason[640];          /* why no ring is in use ("" when one is) */
    const char *flags_used;    /* the setup flags that the kernel took */
    /* the ring (only the ring thread touches the queues once it runs) */
    int fd;
    unsigned setup_flags, features, sq_entries, cq_entries;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
    struct io_uring_sqe *sqes;
    void *sq_map, *cq_map;
    size_t sq_map_len, cq_map_len, sqe_map_len;
    unsigned sq_local_tail;
    unsigned char has_op[256];
    /* the ring thread */
    pthread_t thread;
    int thread_up;
    int wake_fd, wake_armed;
    uint64_t wake_buf;
    /* under lock */
    pthread_mutex_t lock;
    pthread_cond_t settled;    /* in-flight count fell (stop, shutdown wait on it) */
    int asleep;                /* 1: in the kernel until a completion; 2: for HELD_WAIT_NS */
    int woken, held;           /* a wake-up was written; one is held by a poll */
    int holders;               /* threads in a poll that hold wake-ups */
    lx_list pending[LX_NPRI];
    unsigned long npending, ninflight, nabandoned;
    lx_list inflight;
    lx_req **to_cancel;        /* in flight, cancelled, no ASYNC_CANCEL sent yet */
    unsigned ncancel, cancel_cap;
    unsigned cqes_due;         /* entries submitted whose completion is not reaped */
    unsigned limit;
    int stopping;              /* interpreter exit: nothing more starts */
} R = {.fd = -1, .wake_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER, .limit = DEFAULT_LIMIT};

/* Nesting of polls in this thread that hold wake-ups (lx_uring_hold). */
static _Thread_local int hold_depth;

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void *arg, size_t argsz)
{
    return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned nargs)
{
    return (int)syscall(__NR_io_uring_register, fd, op, arg, nargs);
}

/* ---- why there is no ring: one message per cause, each with its fix ---- */

static int read_sysctl(const char *path)
{
    FILE *f = fopen(path, "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static void explain(int err, const char *call)
{
    const char *fix = "LINUXAIO_ENGINE=threads runs everything on threads without trying";
    int disabled;
    switch (err) {
    case ENOSYS:
        snprintf(R.reason, sizeof R.reason,
                 "io_uring is not available: %s failed with ENOSYS (a kernel built without "
                 "CONFIG_IO_URING, older than 5.1, or a sandbox such as gVisor); fix: a kernel "
                 "with io_uring, or %s", call, fix);
        return;
    case EPERM:
        disabled = read_sysctl("/proc/sys/kernel/io_uring_disabled");
        if (disabled == 2)
            snprintf(R.reason, sizeof R.reason,
                     "io_uring is disabled by sysctl (kernel.io_uring_disabled = 2: %s gets EPERM); "
                     "fix: sysctl -w kernel.io_uring_disabled=0 (or 1 with kernel.io_uring_group), or %s",
                     call, fix);
        else if (disabled == 1)
            snprintf(R.reason, sizeof R.reason,
                     "io_uring is restricted by sysctl (kernel.io_uring_disabled = 1) to the group "
                     "kernel.io_uring_group, and this process is not in it (%s gets EPERM); fix: run "
                     "in that group (or with CAP_SYS_ADMIN), sysctl -w kernel.io_uring_disabled=0, or %s",
                     call, fix);
        else
            snprintf(R.reason, sizeof R.reason,
                     "io_uring is blocked by a seccomp filter (%s gets EPERM while "
                     "kernel.io_uring_disabled is 0 or absent: Docker's default profile does this); "
                     "fix: allow io_uring_setup, io_uring_enter and io_uring_register in the "
                     "sandbox's seccomp profile (docker run --security-opt seccomp=...), or %s",
                     call, fix);
        return;
    case ENOMEM:
        snprintf(R.reason, sizeof R.reason,
                 "io_uring ring could not be set up: %s failed with ENOMEM (before Linux 5.12 the "
                 "ring counts against the locked-memory limit, RLIMIT_MEMLOCK); fix: raise it "
                 "(ulimit -l 8192, or LimitMEMLOCK= under systemd), or %s", call, fix);
        return;
    default:
        snprintf(R.reason, sizeof R.reason, "io_uring ring could not be set up: %s failed: %s (errno %d); "
                 "fix: %s", call, strerror(err), err, fix);
    }
}

/* ---- setting the ring up ---- */

static void unmap_ring(void)
{
    if (R.sqes)
        munmap(R.sqes, R.sqe_map_len);
    if (R.cq_map && R.cq_map != R.sq_map)
        munmap(R.cq_map, R.cq_map_len);
    if (R.sq_map)
        munmap(R.sq_map, R.sq_map_len);
    R.sqes = NULL;
    R.sq_map = R.cq_map = NULL;
}

/* The flags tried, newest first: one the kernel does not know fails the
 * setup with EINVAL, and the next is tried.  Only the ring thread submits
 * and waits, so SINGLE_ISSUER holds and DEFER_TASKRUN's completion work
 * runs where it waits (6.1); R_DISABLED lets the ring thread, not the
 * importer, become its one issuer (5.10).  No SQPOLL: it keeps a CPU busy
 * (libuv 1.49 turned its ring off for that).  No COOP_TASKRUN without
 * DEFER_TASKRUN: the ring thread sleeps in io_uring_enter and must be
 * woken by task work.  And with none of these, a plain ring. */
static const struct {
    unsigned flags;
    const char *name;
} setups[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED
         | IORING_SETUP_SUBMIT_ALL, "SINGLE_ISSUER|DEFER_TASKRUN|R_DISABLED|SUBMIT_ALL"},
    {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
    {0, ""},
};

/* Set up the ring (no thread yet).  0, or -1 with R.reason set. */
static int ring_setup(void)
{
    struct io_uring_params p;
    struct io_uring_probe *probe;
    size_t probe_len = sizeof *probe + 256 * sizeof(struct io_uring_probe_op);
    int fd = -1, err = 0;
    unsigned i;

    for (i = 0; i < sizeof setups / sizeof *setups; i++) {
        memset(&p, 0, sizeof p);
        p.flags = setups[i].flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        p.cq_entries = 2 * RING_ENTRIES;
        if ((fd = sys_setup(RING_ENTRIES, &p)) >= 0)
            break;
        if ((err = errno) != EINVAL)
            break;
    }
    if (fd < 0) {
        explain(err, "io_uring_setup");
        return -1;
    }
    R.fd = fd;
    R.setup_flags = p.flags;
    R.flags_used = setups[i].name;
    R.features = p.features;
    R.sq_entries = p.sq_entries;
    R.cq_entries = p.cq_entries;
    if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_SUBMIT_STABLE)) {
        snprintf(R.reason, sizeof R.reason, "io_uring on this kernel is too old (no IORING_FEAT_NODROP "
                 "or SUBMIT_STABLE: Linux 5.5+ needed); fix: a newer kernel, or LINUXAIO_ENGINE=threads");
        goto fail;
    }
    R.sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    R.cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP)
        R.sq_map_len = R.cq_map_len = R.sq_map_len > R.cq_map_len ? R.sq_map_len : R.cq_map_len;
    R.sqe_map_len = p.sq_entries * sizeof(struct io_uring_sqe);
    R.sq_map = mmap(NULL, R.sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (R.sq_map == MAP_FAILED) {
        R.sq_map = NULL;
        goto fail_errno;
    }
    if (p.features & IORING_FEAT_SINGLE_MMAP)
        R.cq_map = R.sq_map;
    else if ((R.cq_map = mmap(NULL, R.cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                              IORING_OFF_CQ_RING)) == MAP_FAILED) {
        R.cq_map = NULL;
        goto fail_errno;
    }
    R.sqes = mmap(NULL, R.sqe_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (R.sqes == MAP_FAILED) {
        R.sqes = NULL;
        goto fail_errno;
    }
    /* A fork's child must never touch the parent's ring: it gets none of
     * these mappings, and sets up its own (lx_uring's orphans). */
    madvise(R.sq_map, R.sq_map_len, MADV_DONTFORK);
    if (R.cq_map != R.sq_map)
        madvise(R.cq_map, R.cq_map_len, MADV_DONTFORK);
    madvise(R.sqes, R.sqe_map_len, MADV_DONTFORK);
    R.sq_head = (unsigned *)((char *)R.sq_map + p.sq_off.head);
    R.sq_tail = (unsigned *)((char *)R.sq_map + p.sq_off.tail);
    R.sq_mask = (unsigned *)((char *)R.sq_map + p.sq_off.ring_mask);
    R.sq_array = (unsigned *)((char *)R.sq_map + p.sq_off.array);
    R.cq_head = (unsigned *)((char *)R.cq_map + p.cq_off.head);
    R.cq_tail = (unsigned *)((char *)R.cq_map + p.cq_off.tail);
    R.cq_mask = (unsigned *)((char *)R.cq_map + p.cq_off.ring_mask);
    R.cqes = (struct io_uring_cqe *)((char *)R.cq_map + p.cq_off.cqes);
    R.sq_local_tail = *R.sq_tail;

    /* Which operations this kernel has (5.6+): a row whose opcode is
     * missing runs on the threads. */
    if (!(probe = calloc(1, probe_len)))
        goto fail_errno;
    if (sys_register(fd, IORING_REGISTER_PROBE, probe, 256) < 0) {
        err = errno;
        free(probe);
        snprintf(R.reason, sizeof R.reason, "io_uring on this kernel is too old: IORING_REGISTER_PROBE "
                 "failed (%s; Linux 5.6+ needed); fix: a newer kernel, or LINUXAIO_ENGINE=threads",
                 strerror(err));
        goto fail;
    }
    memset(R.has_op, 0, sizeof R.has_op);
    for (i = 0; i < probe->ops_len && i < 256; i++)
        R.has_op[probe->ops[i].op] = (probe->ops[i].flags & IO_URING_OP_SUPPORTED) != 0;
    free(probe);
    if (!R.has_op[IORING_OP_READ] || !R.has_op[IORING_OP_ASYNC_CANCEL]) {
        snprintf(R.reason, sizeof R.reason, "io_uring on this kernel lacks IORING_OP_READ or "
                 "IORING_OP_ASYNC_CANCEL (Linux 5.6+ needed); fix: a newer kernel, or LINUXAIO_ENGINE=threads");
        goto fail;
    }
    if ((R.wake_fd = eventfd(0, EFD_CLOEXEC)) < 0)
        goto fail_errno;
    R.up = 1;
    R.reason[0] = 0;
    return 0;
fail_errno:
    explain(errno, "setting up the ring (mmap, eventfd)");
fail:
    unmap_ring();
    close(fd);
    R.fd = -1;
    return -1;
}

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

/* Fill submission entries: the wake-up read, cancels, then pending
 * requests by priority, while the limit and the queues allow.  Lock held. */
static void fill(void)
{
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
    while (R.npending && below_limit() && may_add()) {
        lx_req *req = next_pending();
        Request *r = REQ_OF(req);
        struct io_uring_sqe *sqe = next_sqe();
        lx_ops[r->op].prep(r, sqe);
        sqe->user_data = (uint64_t)(uintptr_t)req;
        req->run_ns = lx_now_ns();
        STORE(req->state, LX_RUNNING);
        lx_list_append(&R.inflight, req);
        STORE(R.ninflight, R.ninflight + 1);
    }
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
        r->on_ring = 0;
        STORE(req->state, LX_NEW);
        *back = req;
        return NULL;
    }
    req->run_ns = lx_now_ns() - req->run_ns;
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
            lx_complete_many(done, current, nd);
            nd = 0;
        }
        if (nb == BATCH)
            break;   /* the caller hands these over, then comes back */
    }
    STORE(*R.cq_head, head);
    if (nd)
        lx_complete_many(done, current, nd);
    return nb;
}

static void *ring_main(void *unused)
{
    lx_req *back[BATCH];
    if ((R.setup_flags & IORING_SETUP_R_DISABLED) && sys_register(R.fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
        abort();   /* a ring set up disabled that cannot be enabled: nothing could run */
    pthread_mutex_lock(&R.lock);
    for (;;) {
        unsigned to_submit, wait;
        int rc, nb;
        struct io_uring_getevents_arg arg;
        struct __kernel_timespec ts = {0, HELD_WAIT_NS};
        fill();
        STORE(*R.sq_tail, R.sq_local_tail);
        to_submit = R.sq_local_tail - LOAD(*R.sq_head);
        /* Sleep only with nothing else to do.  While a poll holds wake-ups,
         * sleep briefly: a request it queued must not wait for a completion
         * that may be long in coming. */
        wait = LOAD(*R.cq_tail) == *R.cq_head && !R.ncancel;
        /* Pending requests held back by the threads' share of the limit:
         * no completion here tells when a thread is done, so look again
         * soon (a timed wait needs EXT_ARG, 5.11; before, a wait for ever
         * that the next submission or completion ends). */
        R.asleep = !wait ? 0 : (R.holders || (R.npending && !R.stopping && R.limit)) && (R.features & IORING_FEAT_EXT_ARG) ? 2 : 1;
        pthread_mutex_unlock(&R.lock);
        memset(&arg, 0, sizeof arg);
        arg.ts = (uint64_t)(uintptr_t)&ts;
        if (R.asleep == 2)
            rc = sys_enter(R.fd, to_submit, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
        else
            rc = sys_enter(R.fd, to_submit, wait, IORING_ENTER_GETEVENTS, NULL, 0);
        if (rc < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY && errno != ETIME)
            usleep(1000);   /* should not happen: do not spin on it */
        pthread_mutex_lock(&R.lock);
        R.asleep = 0;
        R.woken = 0;
        R.held = 0;
        nb = reap(back);
        if (!R.ninflight || R.stopping)
            pthread_cond_broadcast(&R.settled);
        if (nb) {
            pthread_mutex_unlock(&R.lock);
            lx_pool_submit_many(back, (unsigned long)nb);
            pthread_mutex_lock(&R.lock);
        }
    }
    return NULL;
}

/* Lock held; returns whether the caller must write the wake-up (unlocked). */
static int want_wake(int may_hold)
{
    if (!R.asleep || R.woken)
        return 0;
    if (may_hold && R.asleep == 2) {
        R.held = 1;
        return 0;
    }
    R.woken = 1;
    return 1;
}

static void write_wake(void)
{
    uint64_t one = 1;
    (void)!write(R.wake_fd, &one, sizeof one);
}

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
    if (R.refit && ring_setup() < 0) {
        R.up = 0;
        return 0;
    }
    R.refit = 0;
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

static int ring_takes(Request *r)
{
    const lx_op *row = &lx_ops[r->op];
    if (!row->prep || !R.up || !R.has_op[LX_RING_OPCODE(row->caps)])
        return 0;
    if ((row->caps & LX_CAP_POSITIONED) && r->offset < 0)
        return 0;
    /* a step machine knows its row's plain form only (slurp into a buffer,
     * or with flags: the threads) */
    if ((row->caps & LX_CAP_STEPS) && (r->has_view || r->flags || r->mode))
        return 0;
    if (R.mode == MODE_AUTO) {
        if (row->caps & LX_CAP_DIRECT) {
            int fl;
            /* O_DIRECT wants the buffer, offset and length aligned (512 at
             * least): anything else is a buffered read, and needs no
             * fcntl(2) to tell (a cached read must not pay for it). */
            if (!direct_aligned(r))
                return 0;
            fl = fcntl(r->fd, F_GETFL);
            if (fl < 0 || !(fl & O_DIRECT))
                return 0;
        } else if (!(row->caps & LX_CAP_ALWAYS))
            return 0;
    }
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
    wake = want_wake(hold_depth > 0);
    pthread_mutex_unlock(&R.lock);
    if (wake)
        write_wake();
}

static void cancel(lx_req *req)
{
    int wake = 0;
    STORE(req->cancelled, 1);
    pthread_mutex_lock(&R.lock);
    if (LOAD(req->state) == LX_QUEUED) {
        lx_list_unlink(&R.pending[req->pri - LX_PRI_MIN], req);
        STORE(R.npending, R.npending - 1);
        lx_complete(req, NULL);   /* lock order: the ring's, then the sink's */
    } else if (LOAD(req->state) == LX_RUNNING) {
        if (R.ncancel == R.cancel_cap) {
            unsigned cap = R.cancel_cap ? 2 * R.cancel_cap : 64;
            lx_req **a = realloc(R.to_cancel, cap * sizeof *a);
            if (!a)
                goto out;   /* it runs to its end, its result then undone */
            R.to_cancel = a;
            R.cancel_cap = cap;
        }
        R.to_cancel[R.ncancel++] = req;
        wake = want_wake(0);
    }
out:
    pthread_mutex_unlock(&R.lock);
    if (wake)
        write_wake();
}

static unsigned long in_flight(void) { return LOAD(R.npending) + LOAD(R.ninflight); }

static int can_finish(void)
{
    unsigned long pending = LOAD(R.npending);
    if (LOAD(R.ninflight) > LOAD(R.nabandoned))
        return 1;
    if (pending)
        return LOAD(R.limit) > 0 && !LOAD(R.stopping);
    return -1;
}

static int confirm_idle(void)
{
    int rc;
    pthread_mutex_lock(&R.lock);
    rc = R.npending || R.ninflight > R.nabandoned;
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
        if (i == R.ncancel) {
            if (R.ncancel == R.cancel_cap) {
                unsigned cap = R.cancel_cap ? 2 * R.cancel_cap : 64;
                lx_req **a = realloc(R.to_cancel, cap * sizeof *a);
                if (!a)
                    break;
                R.to_cancel = a;
                R.cancel_cap = cap;
            }
            R.to_cancel[R.ncancel++] = req;
        }
    }
    return want_wake(0);
}

/* Wait (lock held) until nothing is in the kernel but abandoned requests,
 * or the time is up.  Returns how many are still there. */
static unsigned wait_settled(int64_t timeout_ns)
{
    struct timespec until;
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
    return (unsigned)(R.ninflight - R.nabandoned);
}

static unsigned stop(int64_t timeout_ns)
{
    unsigned left;
    int wake;
    pthread_mutex_lock(&R.lock);
    wake = cancel_all();
    pthread_mutex_unlock(&R.lock);
    if (wake)
        write_wake();
    pthread_mutex_lock(&R.lock);
    left = wait_settled(timeout_ns);
    pthread_mutex_unlock(&R.lock);
    return left;
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
    *n = k;
    return out;
}

/* Interpreter exit: nothing more starts; what is in the kernel is
 * cancelled and waited for (O_DIRECT reads write into buffers that must
 * outlive them); what was pending stays, as the threads' queue does. */
static unsigned shutdown(int64_t timeout_ns)
{
    unsigned left;
    int wake = 0;
    pthread_mutex_lock(&R.lock);
    STORE(R.stopping, 1);
    for (lx_req *req = R.inflight.head; req; req = req->next)
        if (!LOAD(req->cancelled)) {
            STORE(req->cancelled, 1);
            if (R.ncancel == R.cancel_cap) {
                unsigned cap = R.cancel_cap ? 2 * R.cancel_cap : 64;
                lx_req **a = realloc(R.to_cancel, cap * sizeof *a);
                if (!a)
                    break;
                R.to_cancel = a;
                R.cancel_cap = cap;
            }
            R.to_cancel[R.ncancel++] = req;
        }
    if (R.ncancel)
        wake = want_wake(0);
    pthread_mutex_unlock(&R.lock);
    if (wake)
        write_wake();
    pthread_mutex_lock(&R.lock);
    left = wait_settled(timeout_ns);
    pthread_mutex_unlock(&R.lock);
    return left;
}

/* ---- fork ---- */

static void before_fork(void) { pthread_mutex_lock(&R.lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&R.lock); }

static void after_fork_child(void)
{
    pthread_mutex_init(&R.lock, NULL);
    pthread_cond_init(&R.settled, NULL);
}

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
    R.npending = R.ninflight = R.nabandoned = 0;
    R.ncancel = 0;
    R.cqes_due = 0;
    R.asleep = R.woken = R.held = R.holders = 0;
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
    return list;
}

const lx_backend lx_uring = {
    .name = "uring",
    .submit = submit,
    .cancel = cancel,
    .in_flight = in_flight,
    .can_finish = can_finish,
    .stuck_why = "max_parallel is 0",
    .confirm_idle = confirm_idle,
    .quick_ok = quick_ok,
    .can_help = can_help,
    .help = help,
    .linger = linger,
    .stop = stop,
    .abandon = abandon,
    .shutdown = shutdown,
    .orphans = orphans,
};

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
}

void lx_uring_hold(int on)
{
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
        R.held = 0;
        wake = want_wake(0);
    }
    pthread_mutex_unlock(&R.lock);
    if (wake)
        write_wake();
}

/* ---- import, and what the module tells ---- */

int lx_uring_init(void)
{
    const char *env = getenv("LINUXAIO_ENGINE");
    pthread_condattr_t ca;
    for (int p = 0; p < LX_NPRI; p++)
        R.pending[p].head = R.pending[p].tail = NULL;
    pthread_condattr_init(&ca);
    pthread_cond_init(&R.settled, &ca);
    pthread_condattr_destroy(&ca);
    R.mode = MODE_AUTO;
    if (env && *env) {
        int m;
        for (m = 0; m < 3 && strcmp(env, mode_names[m]); m++)
            ;
        if (m == 3) {
            PyErr_Format(PyExc_ValueError, "LINUXAIO_ENGINE=%s: must be auto, threads or uring "
                         "(uring: io_uring, or an error saying why not)", env);
            return -1;
        }
        R.mode = m;
    }
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    if (R.mode == MODE_THREADS) {
        snprintf(R.reason, sizeof R.reason, "LINUXAIO_ENGINE=threads: io_uring is not used "
                 "(LINUXAIO_ENGINE=auto or uring to use it)");
        return 0;
    }
    if (ring_setup() == 0)
        return 0;
    if (R.mode == MODE_URING) {
        PyErr_Format(PyExc_OSError, "LINUXAIO_ENGINE=uring: %s", R.reason);
        return -1;
    }
    return 0;
}

static PyObject *engine(PyObject *m, PyObject *unused)
{
    return PyUnicode_FromString(R.up ? "uring" : "threads");
}

static PyObject *engine_info(PyObject *m, PyObject *unused)
{
    struct utsname u;
    PyObject *ops = PyList_New(0), *policy = PyDict_New(), *d = NULL;
    if (!ops || !policy)
        goto done;
    for (int i = 0; R.up && i < lx_nops; i++) {
        const lx_op *row = &lx_ops[i];
        const char *when;
        PyObject *name;
        int rc;
        if (!row->prep || !R.has_op[LX_RING_OPCODE(row->caps)])
            continue;
        if (R.mode == MODE_URING)
            when = "always";
        else if (row->caps & LX_CAP_DIRECT)
            when = "O_DIRECT fds";
        else if (row->caps & LX_CAP_ALWAYS)
            when = "always";
        else
            continue;
        if (!(name = PyUnicode_FromString(row->id)))
            goto done;
        {
            PyObject *w = PyUnicode_FromString(when);
            rc = !w || PyList_Append(ops, name) < 0 || PyDict_SetItemString(policy, row->id, w) < 0;
            Py_XDECREF(w);
        }
        Py_DECREF(name);
        if (rc)
            goto done;
    }
    if (uname(&u) < 0)
        strcpy(u.release, "unknown");
    d = Py_BuildValue("{s:s,s:O,s:O,s:s,s:s,s:s,s:I,s:I,s:k}",
                      "engine", R.up ? "uring" : "threads",
                      "ring_ops", ops,
                      "reason", Py_None,
                      "kernel", u.release,
                      "mode", mode_names[R.mode],
                      "ring_flags", R.up && R.flags_used ? R.flags_used : "",
                      "ring_entries", R.up ? R.sq_entries : 0,
                      "cq_entries", R.up ? R.cq_entries : 0,
                      "max_in_flight", (unsigned long)R.limit);
    if (d && !R.up) {
        PyObject *why = PyUnicode_FromString(R.reason[0] ? R.reason : "io_uring is not in use");
        if (!why || PyDict_SetItemString(d, "reason", why) < 0)
            Py_CLEAR(d);
        Py_XDECREF(why);
    }
    if (d && PyDict_SetItemString(d, "ring_policy", policy) < 0)
        Py_CLEAR(d);
done:
    Py_XDECREF(ops);
    Py_XDECREF(policy);
    return d;
}

PyMethodDef lx_uring_module_methods[] = {
    {"engine", (PyCFunction)engine, METH_NOARGS,
     "engine()\n--\n\n\"uring\" when an io_uring ring runs requests, else \"threads\"."},
    {"engine_info", (PyCFunction)engine_info, METH_NOARGS,
     "engine_info()\n--\n\nA dict: engine, ring_ops (operations sent to the ring), reason (why\n"
     "there is no ring: None when there is one), kernel, mode (LINUXAIO_ENGINE), and the ring's set-up."},
    {NULL}};
