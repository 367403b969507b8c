/* inline.c: inline-first awaits.
 *
 * An await through the engine costs a suspension of the task and a turn of
 * the loop (2-3 us here, more than a cached read's syscall).  So an awaited
 * request whose row has a try (ops.def) is first tried in the caller's
 * thread, at submission: a read the page cache holds (preadv2 RWF_NOWAIT),
 * a stat or open of a path the dentry cache holds (openat2 RESOLVE_CACHED),
 * a small cached file's slurp.  A try fails rather than waits; what it
 * cannot finish goes to the engine exactly as before (a read that stopped
 * short hands over the rest).  Done inline, the request is a future that is
 * already done: the await returns without suspending the task.
 *
 * The budget.  An await that does not suspend gives the loop no turn, so a
 * task looping on cached reads would starve it, and a turn that steps many
 * such tasks would last as long as all their streaks.  As tokio's
 * cooperative budget, inline attempts are counted per loop turn: after
 * budget_ops of them, or budget_ns since the first, the awaits of this turn
 * are parked (below) until the loop has had its turn, which a callback
 * queued at the first attempt (call_soon) tells; that callback then runs
 * the parked awaits, oldest first, within the new turn's budget, and wakes
 * their tasks.  While several tasks complete inline, each task's streak is
 * also cut at SHARE_OPS, so all progress.  A loop turn thus spends at most
 * about budget_ns inline.
 *
 * trio needs no budget: every linuxaio call under trio is a checkpoint
 * (trio_fast.c: trio's cancel check, the try, trio's schedule point), so
 * a task yields at each. */
#define _GNU_SOURCE
#include "inline.h"
#include "ops_run.h"
#include "future.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

int lx_inline_enabled = 1;

/* A 64 KiB copy from the page cache costs 5-10 us of the loop's time here
 * (benchmarks/inline_calls.py measures it), about what an await through
 * the engine costs; larger reads gain nothing inline and hold the loop
 * (1 MiB: ~100 us).  They stay on the workers, in parallel. */
size_t lx_inline_max_bytes = 64 * 1024;

/* Measured with W4 (a 1 ms ticker beside 64 tasks of cached 4 KiB reads;
 * benchmarks/README.md): 200 us of inline work per turn, the drain's own
 * budget, keeps a turn well under a millisecond (a turn's CPU p99 with
 * the ticker's 1 ms: 1.41-1.45 ms asyncio, 1.21-1.24 ms uvloop, Intel Xeon),
 * and one await in 128 parked (a suspension and a wake-up, ~2 us) costs
 * a sequential reader about 2% of its time. */
static unsigned budget_ops = 128;
static int64_t budget_ns = 200 * 1000;
/* The clock is read at every CLOCK_EVERY-th attempt of a turn, not at each:
 * its vDSO read was 1.3% of W2s's perf samples (~20-30 ns an attempt),
 * and a turn overshoots budget_ns by at most CLOCK_EVERY - 1 attempts
 * (each at most a 64 KiB copy; a few us for W1's and W2's).  Paired
 * rounds show no change beyond their noise (W1, W2s: 0.96-1.06x). */
#define CLOCK_EVERY 4

static _Thread_local struct {
    unsigned n;            /* inline attempts in this loop turn */
    unsigned streak;       /* ... since the last await that yielded */
    unsigned streaks;      /* streaks in this turn: tasks that completed inline */
    int shared;            /* the last turn had several: each gets SHARE_OPS */
    int64_t first_ns;      /* when the first of them completed */
    int spent;             /* every await goes through the engine until turn_fn runs */
    int asked;             /* turn_fn is queued on the loop */
    PyObject *loop;        /* the loop counted (compared, not held) */
} B;   /* per thread: each thread runs its own loop (turn_fn runs in it) */

/* Fairness: while several tasks complete inline in one turn, a streak of
 * one task (completions with no yield between them) ends after SHARE_OPS,
 * so the task stepped first in every turn does not take the whole budget
 * each time (the others would get one completion a turn).  A task alone
 * keeps the whole budget: it yields once per BUDGET_OPS.  Each cut streak
 * is a park (a suspension and a wake-up, ~5,000 instructions: asyncio's
 * Task asks the future for four attributes and methods), so a share of 8
 * cost W1 (64 tasks) ~650 of its ~3,600 instructions per read; 32 costs
 * ~150.  The parked run oldest first, so all tasks still take turns; a
 * turn still spends at most the budget, so the loop's lag is unchanged. */
#define SHARE_OPS 32

/* ---- parked awaits ----
 * An await the budget refuses to run now is parked: its request stays
 * pending (no worker, no ring), its task suspends on it like on any
 * future, and the loop's next turn (turn_fn) runs the parked requests in
 * the order they came, each with a try counted by that turn's budget, and
 * wakes each task from there, as a drain does (no Handle per task).  What
 * the budget has no room for stays parked for the turn after.  So a task
 * yields at the cost of a suspension and a direct wake-up, instead of a
 * trip through the engine (a worker's wake-up, the eventfd, a drain), and
 * the tasks take turns in order: a parked task is run before any that
 * parks after it. */
static _Thread_local struct {
    Request **q;           /* a ring of requests (references), oldest at head */
    size_t head, n, cap;
} P;
static int (*resume_fn)(Request *r, int may_try);

void lx_inline_set_resume(int (*resume)(Request *r, int may_try)) { resume_fn = resume; }

static int park(Request *r)
{
    if (P.n == P.cap) {
        size_t cap = P.cap ? 2 * P.cap : 64;
        Request **q = PyMem_Malloc(cap * sizeof *q);
        if (!q) {
            PyErr_Clear();
            return 0;   /* it goes to the engine */
        }
        for (size_t i = 0; i < P.n; i++)
            q[i] = P.q[(P.head + i) % P.cap];
        PyMem_Free(P.q);
        P.q = q;
        P.head = 0;
        P.cap = cap;
    }
    P.q[(P.head + P.n++) % P.cap] = (Request *)Py_NewRef(r);
    r->parked = 1;
    return 1;
}

/* The oldest parked request (a reference), or NULL. */
static Request *unpark_head(void)
{
    while (P.n) {
        Request *r = P.q[P.head];
        P.head = (P.head + 1) % P.cap;
        P.n--;
        if (r)
            return r;   /* a cancelled one left a hole */
    }
    return NULL;
}

static Request *peek_head(void)
{
    while (P.n && !P.q[P.head]) {
        P.head = (P.head + 1) % P.cap;
        P.n--;
    }
    return P.n ? P.q[P.head] : NULL;
}

/* An empty queue lets its array go: a thread's queue (thread-local) would
 * otherwise outlive the thread (one malloc per turn that parks, against
 * a suspension per parked task). */
static void release_if_empty(void)
{
    if (!peek_head() && P.q) {
        PyMem_Free(P.q);
        P.q = NULL;
        P.head = P.cap = 0;
    }
}

void lx_inline_unpark(Request *r)
{
    for (size_t i = 0; i < P.n; i++) {
        Request **slot = &P.q[(P.head + i) % P.cap];
        if (*slot == r) {
            *slot = NULL;
            r->parked = 0;
            Py_DECREF(r);   /* the caller holds it too: it is being cancelled */
            release_if_empty();
            return;
        }
    }
}

/* Run (may_try) or hand to the engine the parked request r (a reference,
 * dropped here). */
static void resume(Request *r, int may_try)
{
    r->parked = 0;
    if (lx_future_done(r))
        ;   /* cancelled meanwhile: it never ran */
    else if (resume_fn(r, may_try && lx_inline_enabled) < 0)
        PyErr_WriteUnraisable((PyObject *)r);
    Py_DECREF(r);
}

/* In a forked child (the forking thread, the only one): the parent's parked
 * requests are dropped, as the engine drops its in-flight ones there (their
 * awaits never complete in the child).  Their references are left, not
 * released: no Python code may run inside fork(). */
static void drop_parked_in_child(void)
{
    P.head = P.n = 0;
}

/* Every parked request to the engine (its loop is no longer counted). */
static void flush_parked(void)
{
    Request *r;
    while ((r = unpark_head()))
        resume(r, 0);
    release_if_empty();
}

static unsigned long n_inline, n_yields;   /* for tests: _inline_stats() */

/* ---- which fds are O_DIRECT ----
 * A read is never tried on an O_DIRECT fd (RWF_NOWAIT there waits for the
 * device), and only fcntl(F_GETFL) tells: a syscall per read cost a
 * cached 4 KiB await about 0.07 of its 0.6 us here (a C loop: F_GETFL 73
 * ns, pread 164 ns; Intel Xeon).  So what it said of an fd number is
 * remembered until the loop's next turn (new_turn, any thread: all are
 * asked again), as the ring's routing remembers it for one poll (uring.c).
 * In W1 that is one fcntl per fd per turn (up to budget_ops reads) instead
 * of one per read.  The one case it gets wrong: a number closed and
 * reopened O_DIRECT (or set O_DIRECT by F_SETFL) within one turn, after an
 * awaited read of the old file: one read of the new one is tried with RWF_NOWAIT,
 * which gives the right bytes but may wait for the device once.  Under
 * the GIL. */
#define KIND_FDS 4096
static unsigned fd_kinds_turn = 1;
static unsigned kind_turn[KIND_FDS];
static unsigned char kind_said[KIND_FDS];

static int turn_fd_kind(Request *r)
{
    int fd = r->fd;
    /* only where a turn will come: an asyncio future, its turn asked for
     * (trio has no turns here: each of its reads asks) */
    if (r->fd_kind || fd < 0 || fd >= KIND_FDS || r->delivery != DELIVER_FUTURE
        || !B.asked || B.loop != r->loop)
        return lx_fd_kind(r);
    if (kind_turn[fd] == fd_kinds_turn)
        return r->fd_kind = kind_said[fd];
    kind_said[fd] = (unsigned char)lx_fd_kind(r);
    kind_turn[fd] = fd_kinds_turn;
    return r->fd_kind;
}
static PyObject *turn_fn;                  /* _inline_turn, queued with call_soon */
static PyObject *str_call_soon;

static void new_turn(void)
{
    fd_kinds_turn++;   /* what fcntl said of each fd, asked again (below) */
    B.shared = B.streaks > 1;
    B.n = B.streak = B.streaks = 0;
    B.spent = B.asked = 0;
}

static void ask_for_turn(Request *r);

/* May the parked r run in this turn?  Counts it as the first of its
 * task's streak.  The first of a turn always may. */
static int budget_resumes(Request *r)
{
    if (B.spent)
        return 0;
    if (B.n == 0) {
        B.first_ns = now_ns();
        if (!B.asked)
            ask_for_turn(r);
    } else if (B.n >= budget_ops
               || (B.n % CLOCK_EVERY == 0 && now_ns() - B.first_ns >= budget_ns)) {
        B.spent = B.asked;
        return 0;
    }
    B.n++;
    B.streak = 1;
    B.streaks++;
    return 1;
}

static PyObject *inline_turn(PyObject *m, PyObject *unused)
{
    size_t todo = P.n;   /* those parked before this turn: each task runs once */
    int saved = lx_future_inline;
    Request *r;
    new_turn();
    /* from a callback of the loop's own, not in a task: a task it wakes is
     * stepped here, as a drain does */
    lx_future_inline = LX_WAKE_HERE;
    while (todo-- && (r = peek_head())) {
        if (!lx_future_done(r) && r->loop == B.loop && !budget_resumes(r))
            break;   /* no room in this turn's budget: the next turn's */
        resume(unpark_head(), r->loop == B.loop);
    }
    lx_future_inline = saved;
    /* Some left: the next turn runs them (it was asked for by the first of
     * this turn); a loop that cannot be asked sends them to the engine. */
    if (P.n && !B.asked)
        flush_parked();
    release_if_empty();
    Py_RETURN_NONE;
}

/* The loop will say when it has had its turn: turn_fn, queued behind what
 * is ready now, runs on its next turn (asyncio and uvloop alike run, in one
 * turn, only the callbacks queued before it began). */
static void ask_for_turn(Request *r)
{
    PyObject *a[2] = {r->loop, turn_fn};
    PyObject *res = PyObject_VectorcallMethod(str_call_soon, a, 2, NULL);
    if (res) {
        Py_DECREF(res);
        B.asked = 1;
    } else
        PyErr_Clear();   /* a closed loop: no turn to wait for, no budget */
}

/* May r, a future of r->loop's, be tried inline in this turn?  Counts it. */
static int budget_allows(Request *r)
{
    if (B.loop != r->loop) {   /* another loop in this thread: start anew */
        flush_parked();
        B.loop = r->loop;
        new_turn();
        B.shared = 0;
    }
    if (B.spent)
        goto out;
    if (B.n == 0) {   /* the first in this turn */
        B.first_ns = now_ns();
        if (!B.asked)
            ask_for_turn(r);
    } else if (B.n >= budget_ops
               || (B.n % CLOCK_EVERY == 0 && now_ns() - B.first_ns >= budget_ns)) {
        B.spent = B.asked;   /* until turn_fn runs */
        goto out;
    }
    if (B.shared && B.streak >= SHARE_OPS)
        goto out;
    B.n++;
    if (B.streak++ == 0)
        B.streaks++;
    return 1;
out:
    n_yields++;
    B.streak = 0;   /* its await goes through the engine: the task yields */
    return 0;
}

/* ---- which file systems a name try may touch ---- */

/* Their getattr or open may ask a server (or a user-space daemon).  The
 * first ones answer a getattr from their cache under AT_STATX_DONT_SYNC
 * (ops_try.c); the others may not, so while one is mounted no stat is
 * tried inline at all. */
static const char *const dont_sync_kinds[] = {
    "nfs", "nfs4", "cifs", "smb3", "ceph", "fuse", "fuseblk", "virtiofs", NULL};
static const char *const remote_kinds[] = {
    "9p", "afs", "gfs2", "ocfs2", "lustre", "coda", "glusterfs", "autofs", "orangefs",
    "pvfs2", "beegfs", "gpfs", "ncpfs", "smbfs", "davfs", "vboxsf", "vmhgfs", NULL};

#define MAX_REMOTE 64
#define MOUNTS_REFRESH_NS (1000LL * 1000 * 1000)

/* The coarse clock (a tick's resolution, a few ms) for the mount table's
 * age: it is asked at every name try, and CLOCK_MONOTONIC's vDSO read
 * costs ~20 ns here (the coarse one a few). */
static int64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct {
    int64_t read_ns;          /* when /proc/self/mountinfo was last read; 0: never */
    int ok;                   /* it could be read */
    int nremote;              /* devices of the kinds above */
    int blind;                /* one of remote_kinds (or too many) is mounted */
    dev_t remote[MAX_REMOTE];
} M;

static int kind_in(const char *kind, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(kind, list[i]))
            return 1;
    return 0;
}

/* Reading /proc/self/mountinfo waits for no device: the kernel prints its
 * own table.  Once a second at most (a mount made since may be tried once
 * with its getattr, which the DONT_SYNC kinds answer from their cache). */
static void read_mounts(void)
{
    char line[4096];
    FILE *f = fopen("/proc/self/mountinfo", "re");
    M.read_ns = coarse_ns();
    M.nremote = 0;
    M.blind = 0;
    M.ok = f != NULL;
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        unsigned maj, min;
        char kind[64];
        const char *sep = strstr(line, " - ");
        int dont_sync;
        if (!sep || sscanf(line, "%*s %*s %u:%u", &maj, &min) != 2
            || sscanf(sep + 3, "%63s", kind) != 1)
            continue;
        dont_sync = kind_in(kind, dont_sync_kinds) || !strncmp(kind, "fuse.", 5);
        if (!dont_sync && !kind_in(kind, remote_kinds))
            continue;
        if (!dont_sync || M.nremote == MAX_REMOTE)
            M.blind = 1;
        else
            M.remote[M.nremote++] = makedev(maj, min);
    }
    fclose(f);
}

int lx_inline_mounts_ok(int what)
{
    if (!M.read_ns || coarse_ns() - M.read_ns > MOUNTS_REFRESH_NS)
        read_mounts();
    if (!M.ok || M.blind)
        return 0;
    /* an open calls the file system's own open: NFS and FUSE ask their
     * server, and which device a path is on is known only after it */
    return what == LX_MOUNTS_FOR_STAT || M.nremote == 0;
}

int lx_inline_no_remote(void) { return M.nremote == 0; }

int lx_inline_dev_ok(dev_t dev)
{
    for (int i = 0; i < M.nremote; i++)
        if (M.remote[i] == dev)
            return 0;
    return 1;
}

#ifndef AT_STATX_DONT_SYNC
#define AT_STATX_DONT_SYNC 0x4000
#endif

/* The attributes the kernel holds, without asking a server.  With no
 * network or FUSE file system mounted (lx_inline_no_remote) every getattr
 * is local: fstat(2), the kernel's fast road for an fd.  Otherwise the
 * device is asked first with statx(AT_STATX_DONT_SYNC), which a file
 * system that honours it (NFS, FUSE, CIFS, Ceph) answers from its cache:
 * such a device is refused (a cached answer is not os.stat's), a local one
 * gets its fstat.  (Not fstatat(fd, "", AT_EMPTY_PATH | DONT_SYNC): since
 * Linux 6.11 an empty path takes the fstat road, which drops the flag.)  A
 * mount of a kind that may ignore the flag (9p...) turns path tries off
 * altogether (inline.c).  -1: the worker's. */
int lx_inline_fstat(int fd, struct stat *st)
{
    struct statx sx;
    if (!lx_inline_no_remote()
        && (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &sx) < 0
            || !lx_inline_dev_ok(makedev(sx.stx_dev_major, sx.stx_dev_minor))))
        return -1;
    return fstat(fd, st);
}

/* ---- the attempt ---- */

/* ---- cold files ----
 * A RWF_NOWAIT read that misses the page cache may still start readahead
 * from the caller, and starting it may wait: ext4 maps the blocks first
 * and reads an uncached extent block synchronously (the cold-file test saw
 * the loop thread's block-I/O delay reach a third of its time), and the
 * bios wait for room in the device's queue.  So an fd whose read missed is
 * cold: its reads go straight to the engine.  It stays cold until COLD_NS
 * pass without a range found uncached (cachestat(2), which starts no I/O,
 * looks at each read's range), so a file that stays cold costs the loop
 * one miss, not one per read.  Marks are per fd number (a reused number
 * costs a cachestat a read for a while, no more). */
#define COLD_FDS 4096
/* 100 ms, not 1 s: a cached file whose pages the kernel evicts a few at a
 * time (reclaim of idle pages, which this machine runs) is cold only while
 * its reads keep finding them gone, then warm again soon (W1 awaits: with
 * 1 s, runs with such an eviction fell to 0.55x the plain loop from 0.75x;
 * with 100 ms, six runs 0.65-0.78x).  A cold file stays cold: each of its
 * reads finds its range uncached and extends the mark. */
#define COLD_NS (100LL * 1000 * 1000)
#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
/* Set under the GIL (an inline try's miss) and by worker threads without
 * it (lx_inline_mark_cold): relaxed atomics, a mark is a hint. */
static int64_t cold_until[COLD_FDS];
#define COLD_GET(fd) __atomic_load_n(&cold_until[fd], __ATOMIC_RELAXED)
#define COLD_SET(fd, v) __atomic_store_n(&cold_until[fd], (v), __ATOMIC_RELAXED)
static int no_cachestat;

struct lx_cachestat_range { uint64_t off, len; };
struct lx_cachestat { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };

static int range_cached(const Request *r)
{
    struct lx_cachestat_range range;
    struct lx_cachestat cs;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), first, last;
    if (no_cachestat || r->length == 0)
        return 0;
    range.off = (uint64_t)r->offset;
    range.len = (uint64_t)r->length;
    if (syscall(SYS_cachestat, r->fd, &range, &cs, 0) < 0) {
        if (errno == ENOSYS)
            no_cachestat = 1;   /* before 6.5: a cold fd is not tried at all */
        return 0;
    }
    first = range.off / page;
    last = (range.off + range.len - 1) / page;
    return cs.nr_cache >= last - first + 1;
}

int lx_inline_fd_warm(int fd)
{
    int64_t until;
    return fd >= 0 && fd < COLD_FDS && (!(until = COLD_GET(fd)) || now_ns() >= until);
}

void lx_inline_mark_cold(int fd)
{
    if (fd >= 0 && fd < COLD_FDS)
        COLD_SET(fd, now_ns() + COLD_NS);
}

/* One miss does not make a file cold: a RWF_NOWAIT read also fails on a
 * cached page locked for a moment (reclaim, DAMON's scan of idle pages,
 * which this machine runs) or on one page evicted from a file otherwise
 * cached.  Called cold, a warm fd's reads would all go to the engine, and
 * small ones to the ring, for COLD_NS (W1 awaits, 64 tasks on a cached
 * file: one run in two fell from ~0.7x to ~0.5x the plain loop, the ring
 * thread copying).  A second miss within MISS_WINDOW_NS makes it cold: a
 * cold file's next read misses at once.  (cachestat cannot tell: a miss
 * starts readahead, whose pages it counts at once.) */
#define MISS_WINDOW_NS (20LL * 1000 * 1000)
static int64_t last_miss[COLD_FDS];

void lx_inline_missed(const Request *r)
{
    int fd = r->fd;
    int64_t t = now_ns(), last;
    if (fd < 0 || fd >= COLD_FDS)
        return;
    last = __atomic_exchange_n(&last_miss[fd], t, __ATOMIC_RELAXED);
    if (last && t - last < MISS_WINDOW_NS)
        COLD_SET(fd, t + COLD_NS);
}

/* ---- names the dentry cache does not hold ----
 * In a cold tree (W8: 20,000 files opened once, the caches dropped) every
 * name try misses: an openat2(2) walk that fails with EAGAIN (or a read
 * that would wait), then the engine all the same, at 3-4 us of the loop's
 * time each.  After NAME_MISSES misses in a row, one name try in
 * NAME_PROBE is made, until one succeeds; a pause of NAME_WINDOW_NS
 * without a name request starts anew. */
#define NAME_MISSES 16
#define NAME_PROBE 8
#define NAME_WINDOW_NS (5 * 1000 * 1000)
static unsigned name_misses, name_skips;   /* under the GIL */
static int64_t name_miss_ns;

static int name_try_skipped(void)
{
    int64_t t;
    if (name_misses < NAME_MISSES)
        return 0;
    t = now_ns();
    if (t - name_miss_ns > NAME_WINDOW_NS) {
        name_misses = 0;
        return 0;
    }
    name_miss_ns = t;
    return ++name_skips % NAME_PROBE != 0;
}

static int attempt(Request *r);

int lx_inline_attempt(Request *r) { return attempt(r); }

int lx_inline_try(Request *r)
{
    /* A read: only positioned, small, into memory that is no file mapping
     * (whose copy could wait for the disk), and never O_DIRECT (try_read:
     * RWF_NOWAIT there still waits for the device). */
    if (r->data && (r->offset < 0 || !r->memory_only || (size_t)r->length > lx_inline_max_bytes))
        return 0;
    /* An O_DIRECT read is never tried (try_read refuses it), nor a name
     * in a cold tree (most of the time): told before the budget counts an
     * attempt, so such awaits spend none of it and ask the loop for no
     * turn.  The ring's routing reads the same fd_kind (one fcntl). */
    if ((r->data && lx_ops[r->op].try_now == try_read && turn_fd_kind(r) != LX_FD_BUFFERED)
        || (r->path && name_try_skipped())) {
        B.streak = 0;   /* its await goes through the engine: it yields */
        return 0;
    }
    /* Over the budget: parked for the next turn, or (that turn cannot be
     * asked for) through the engine; either way the task yields. */
    if (r->delivery == DELIVER_FUTURE && !budget_allows(r))
        return B.asked && r->owner == PyThread_get_thread_ident() && park(r) ? LX_TRY_PARKED : 0;
    return attempt(r);
}

static int attempt(Request *r)
{
    int rc;
    if (r->data && r->fd >= 0 && r->fd < COLD_FDS && COLD_GET(r->fd)) {
        int64_t t = now_ns();
        if (t >= COLD_GET(r->fd))
            COLD_SET(r->fd, 0);
        else {
            /* Not tried while cold, even a range cachestat finds cached: a
             * read that meets a readahead mark starts the next window from
             * the caller, which waits for the device's queue (W4c, 64 tasks
             * on an evicted file: the loop thread's block-I/O delay 80-140
             * ms in 2 s with such tries, 0 without).  cachestat only says
             * whether it is still cold. */
            if (!range_cached(r))
                COLD_SET(r->fd, t + COLD_NS);   /* still cold: it stays so */
            B.streak = 0;
            return 0;
        }
    }
    errno = 0;   /* what a refused try left, not an earlier call's */
    if ((rc = lx_ops[r->op].try_now(r)) <= 0) {
        if (r->path && errno == EAGAIN) {
            name_misses += name_misses < NAME_MISSES;
            name_miss_ns = now_ns();
        }
        /* missed (EAGAIN), or stopped short: the rest is not cached */
        if (r->data && r->fd >= 0 && r->fd < COLD_FDS && (rc < 0 || errno == EAGAIN))
            lx_inline_missed(r);
        B.streak = 0;   /* its await goes through the engine: it yields */
        return 0;   /* a read that stopped short: r->io.nowait_done says where */
    }
    n_inline++;
    if (r->path)
        name_misses = 0;
    return 1;
}

/* ---- the module's functions ---- */

static PyObject *inline_switch(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    int on;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "inline(flag=None)");
        return NULL;
    }
    if (nargs == 0 || args[0] == Py_None)
        return PyBool_FromLong(lx_inline_enabled);
    if ((on = PyObject_IsTrue(args[0])) < 0)
        return NULL;
    lx_inline_enabled = on;
    Py_RETURN_NONE;
}

/* Private, for benchmarks and tests: _inline_budget(ops, seconds, max_bytes)
 * sets them (None: unchanged) and returns the old ones. */
static PyObject *inline_budget(PyObject *m, PyObject *args)
{
    PyObject *ops = Py_None, *secs = Py_None, *maxb = Py_None;
    PyObject *old = Py_BuildValue("(Idn)", budget_ops, budget_ns / 1e9, (Py_ssize_t)lx_inline_max_bytes);
    if (!old || !PyArg_ParseTuple(args, "|OOO", &ops, &secs, &maxb))
        goto fail;
    if (ops != Py_None) {
        long n = PyLong_AsLong(ops);
        if (n == -1 && PyErr_Occurred())
            goto fail;
        if (n < 1 || n > 1000000) {
            PyErr_SetString(PyExc_ValueError, "ops must be within 1..1000000");
            goto fail;
        }
        budget_ops = (unsigned)n;
    }
    if (secs != Py_None) {
        double s = PyFloat_AsDouble(secs);
        if (s == -1.0 && PyErr_Occurred())
            goto fail;
        if (!(s >= 0 && s <= 10)) {
            PyErr_SetString(PyExc_ValueError, "seconds must be within 0..10");
            goto fail;
        }
        budget_ns = (int64_t)(s * 1e9);
    }
    if (maxb != Py_None) {
        Py_ssize_t n = PyLong_AsSsize_t(maxb);
        if (n == -1 && PyErr_Occurred())
            goto fail;
        if (n < 0 || n > (1 << 30)) {
            PyErr_SetString(PyExc_ValueError, "max_bytes must be within 0..1 GiB");
            goto fail;
        }
        lx_inline_max_bytes = (size_t)n;
    }
    return old;
fail:
    Py_XDECREF(old);
    return NULL;
}

/* For tests: may a stat, and an open, be tried inline (the mount table)? */
static PyObject *inline_mounts(PyObject *m, PyObject *unused)
{
    return Py_BuildValue("(OO)", lx_inline_mounts_ok(LX_MOUNTS_FOR_STAT) ? Py_True : Py_False,
                         lx_inline_mounts_ok(LX_MOUNTS_FOR_OPEN) ? Py_True : Py_False);
}

static PyObject *inline_stats(PyObject *m, PyObject *unused)
{
    return Py_BuildValue("(kk)", n_inline, n_yields);
}

static PyMethodDef turn_def = {"_inline_turn", (PyCFunction)inline_turn, METH_NOARGS,
                               "The loop had its turn: the inline budget starts anew."};

PyMethodDef lx_inline_module_methods[] = {
    {"inline", (PyCFunction)(void (*)(void))inline_switch, METH_FASTCALL,
     "inline(flag=None)\n--\n\n"
     "inline(False) turns inline-first awaits off for the whole process (every\n"
     "await then goes through the engine and yields), inline(True) back on\n"
     "(the default); inline() returns the current setting."},
    {"_inline_budget", (PyCFunction)inline_budget, METH_VARARGS, NULL},
    {"_inline_stats", (PyCFunction)inline_stats, METH_NOARGS, NULL},
    {"_inline_mounts", (PyCFunction)inline_mounts, METH_NOARGS, NULL},
    {NULL}};

int lx_inline_init(void)
{
    if (!(str_call_soon = PyUnicode_InternFromString("call_soon"))
        || !(turn_fn = PyCFunction_New(&turn_def, NULL)))
        return -1;
    if (pthread_atfork(NULL, NULL, drop_parked_in_child)) {
        PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
        return -1;
    }
    return 0;
}
