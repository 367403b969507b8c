/* uring_route.c: which backend runs a request (with the GIL), for
 * uring.c's ring and the threads. */
#define _GNU_SOURCE
#include "uring.h"
#include "inline.h"
#include "ops_run.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define R lx_R

/* ---- routing (with the GIL): which backend runs a request ---- */

static int direct_aligned(const Request *r)
{
    uintptr_t addr = r->rare && r->rare->niov ? (uintptr_t)r->rare->iov[0].iov_base : (uintptr_t)r->data;
    int64_t len = r->rare && r->rare->niov ? (int64_t)r->rare->iov[0].iov_len : r->length;
    return ((addr | (uintptr_t)r->offset | (uintptr_t)len) & 511) == 0;
}

/* A cached read on the ring is copied by the ring thread, inline, one
 * after the other; a 1 MiB copy there is slower than on threads (W3: the
 * ring 0.5-0.85x, where two threads copy at once), so only reads up to
 * this size go to the ring for being buffered. */
#define SMALL_READ (64 * 1024)

/* Whether a read's fd is O_DIRECT (lx_fd_kind: one fcntl(2)), remembered
 * per fd number for the rest of a poll_cb or drain, where callbacks and
 * tasks submit the next reads of the same fds: the fcntl per request cost
 * W1's callbacks (4 KiB cached reads, ~1.3 us each) several percent
 * against the threads, and W5's (O_DIRECT) as much of the loop's time.  A
 * number closed and reused for another file within one poll would have
 * one read routed as the old file's was: on the ring or a thread, each
 * giving its right result.  Under the GIL. */
#define HINT_FDS 4096
static unsigned long kind_epoch[HINT_FDS];
static unsigned char kind_seen[HINT_FDS];
unsigned long lx_poll_epoch;

static int poll_fd_kind(Request *r)
{
    int hinted = !r->fd_kind && lx_poll_depth > 0 && r->fd >= 0 && r->fd < HINT_FDS;
    if (hinted && kind_epoch[r->fd] == lx_poll_epoch)
        return r->fd_kind = kind_seen[r->fd];   /* for try_read too */
    lx_fd_kind(r);
    if (hinted) {
        kind_epoch[r->fd] = lx_poll_epoch;
        kind_seen[r->fd] = r->fd_kind;
    }
    return r->fd_kind;
}

/* LINUXAIO_ENGINE=auto: where the ring measured faster (README's table). */
static int auto_takes(Request *r, unsigned caps)
{
    /* A small buffered read gains on the ring when it misses the page
     * cache (the device's queue depth), not when it hits: the ring thread
     * copies cached reads one after the other and hands each over through
     * the eventfd, where on the threads a poller with nothing to hand out
     * copies them itself (lx_pool_help) and an awaiter spins for its
     * worker.  W1 (4 KiB cached, 64 in flight, Intel Xeon 2 vCPU, 11
     * paired rounds): callbacks on the ring 0.61x the threads, awaits held
     * back by the inline budget 0.5-0.8x.  So it goes to the ring only if
     * its fd missed the cache lately: an inline try (inline.c) or the
     * worker's RWF_NOWAIT read (probe_cache, workers.c) marks it cold. */
    if ((caps & LX_CAP_SMALL) && lx_request_bytes(r) <= SMALL_READ) {
        /* (at the file position: a stream, sent here by _ring_stream_reads;
         * a stream has no page cache) */
        if (r->offset < 0 || !lx_inline_fd_warm(r->fd))
            return 1;
        if (lx_ops[r->op].try_now) {
            r->probe_cache = 1;   /* on the threads, unless O_DIRECT (below) */
            if (poll_fd_kind(r) == LX_FD_BUFFERED)
                return 0;
        } else if (!(r->delivery == DELIVER_FUTURE && lx_inline_enabled))
            return 1;   /* preadv: no probe to tell a miss, so as before */
    }
    /* slurp: the ring, unless it would be the only request in flight.  A
     * lone slurp on the ring waits for two wake-ups, the ring thread's and
     * then the loop's: 65-90 us for a cached small file, one after the
     * other (Intel Xeon 2 vCPU), where a spinning worker and a quick await
     * (poll.c) take 8-10 us.  With others outstanding the ring keeps the
     * device's queue deep (W8, cold) and costs a cached file no more than
     * the threads (64 in flight, inline(False): ~196k vs ~205k files/s). */
    if (caps & LX_CAP_UNLESS_ALONE)
        return E.nreqs > 1;   /* counted already (under the GIL, as this) */
    if (!(caps & (LX_CAP_DIRECT | LX_CAP_SMALL)))
        return 0;
    /* O_DIRECT wants the buffer, offset and length aligned (512 at least):
     * anything else is buffered I/O, and needs no fcntl(2) to tell. */
    if (!direct_aligned(r))
        return 0;
    return poll_fd_kind(r) == LX_FD_DIRECT;   /* asked once: an inline try may have */
}

static int ring_takes(Request *r)
{
    const lx_op *row = &lx_ops[r->op];
    r->probe_cache = 0;
    if (!row->prep || !R.up || !R.has_op[LX_RING_OPCODE(row->caps)])
        return 0;
    /* At the file position: on threads, where read(2) keeps the position
     * in step with other threads' reads (the ring's offset -1 would race
     * it).  A stream has no position (a pipe, a socket): the ring reads
     * one at -1 exactly as read(2), waiting for data in the kernel, not in
     * a worker; only with _ring_stream_reads(True), for now (programs and
     * tests occupy workers with pipe reads).  Writes: threads (a blocking
     * pipe write writes all, the ring's may stop short). */
    if ((row->caps & LX_CAP_POSITIONED) && r->offset < 0
        && (!lx_ring_stream_reads || !(row->caps & LX_CAP_SMALL) || (row->caps & LX_CAP_STEPS)))
        return 0;
    /* A read of nothing: pread(2) of a directory fails with EISDIR, the
     * ring's read (an iovec read) returns 0 (the threads answer as os) */
    if ((row->caps & LX_CAP_POSITIONED) && !(row->caps & LX_CAP_STEPS) && r->data && r->length == 0)
        return 0;
    /* a step machine knows its row's plain form only (slurp into a buffer,
     * or with flags: the threads) */
    if ((row->caps & LX_CAP_STEPS) && (r->has_view || r->flags || r->mode))
        return 0;
    if (R.mode == MODE_AUTO && !auto_takes(r, row->caps))
        return 0;
    /* max_parallel's limit taken by the threads and nothing here: the
     * threads' queue orders it by priority with what else waits there, and
     * starts it within the limit (the pool counts only its own). */
    if (!LOAD(R.ninflight) && lx_pool_nrunning() >= LOAD(R.limit))
        return 0;
    /* last: a syscall, for reads at the file position only */
    if ((row->caps & LX_CAP_POSITIONED) && r->offset < 0 && !lx_is_stream(r->fd))
        return 0;
    return lx_ring_ready();
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
