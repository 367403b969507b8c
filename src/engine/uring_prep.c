/* uring_prep.c: each ring row's submission entry, over one helper; and the
 * steps of slurp (open, read until the end, close) as the ring runs them. */
#define _GNU_SOURCE
#include "ops_run.h"
#include "uring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* A read or write the kernel caps at this, as read(2) does (a short count). */
#define RW_MAX 0x7ffff000

static void prep_rw(struct io_uring_sqe *sqe, int opcode, int fd, const void *addr, uint64_t len,
                    uint64_t offset)
{
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = (uint8_t)opcode;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)addr;
    sqe->len = (uint32_t)(len > RW_MAX ? RW_MAX : len);
    sqe->off = offset;
}

void lx_prep_read(Request *r, void *sqe) { prep_rw(sqe, IORING_OP_READ, r->fd, r->data, r->length, r->offset); }
void lx_prep_write(Request *r, void *sqe) { prep_rw(sqe, IORING_OP_WRITE, r->fd, r->data, r->length, r->offset); }

/* preadv2/pwritev2's flags (RWF_*) are the entry's rw_flags. */
void lx_prep_readv(Request *r, void *sqe)
{
    prep_rw(sqe, IORING_OP_READV, r->fd, r->rare->iov, r->rare->niov, r->offset);
    ((struct io_uring_sqe *)sqe)->rw_flags = r->flags;
}

void lx_prep_writev(Request *r, void *sqe)
{
    prep_rw(sqe, IORING_OP_WRITEV, r->fd, r->rare->iov, r->rare->niov, r->offset);
    ((struct io_uring_sqe *)sqe)->rw_flags = r->flags;
}

/* Whether fd is a stream (a pipe, socket, FIFO, tty, eventfd...): one
 * whose pread(2) fails with ESPIPE (the kernel's FMODE_PREAD is off).  A
 * preadv(2) of no buffers checks exactly that and nothing else: it reads
 * nothing and calls no file system (a write-only fd says EBADF: not a
 * stream).  About 0.4 us here (a syscall), so callers ask once per fd. */
int lx_is_stream(int fd)
{
    return preadv(fd, NULL, 0, 0) < 0 && errno == ESPIPE;
}

/* ---- slurp: open, then reads until the length or the end, then close ---- */

/* Kept in the request's io.steps between steps (a slurp uses no other
 * part of io): bytes got, the buffer's size, the file's size (-1: not a
 * regular file), the fd, the stage. */
typedef struct {
    int64_t got, cap, size, fd, stage;
} slurp_state;
_Static_assert(sizeof(slurp_state) == sizeof(((Request *)0)->io.steps), "slurp's state is io.steps");
#define SLURP(r) ((slurp_state *)(void *)(r)->io.steps)

enum { SLURP_OPEN, SLURP_READ };

/* A name not in the dentry cache: io_uring first walks it inline, as far as
 * the cache goes (LOOKUP_CACHED), fails with EAGAIN, then hands the open to
 * its workers, who walk it again and read the disk.  In a cold tree (W8:
 * the caches dropped) every open pays that first walk in the ring thread,
 * for nothing: 2-2.5 us of its ~22 us per file (perf, AMD EPYC).  So opens
 * found cold often enough go to the workers at once (IOSQE_ASYNC), but for
 * one in COLD_OPEN_PROBE, tried inline as before to see the tree warm up.
 * Found cold: the completion came back in a later turn of the ring thread
 * than its own (an inline open completes while its turn submits).  The
 * sign is loose: a worker's open that finishes while the ring thread
 * waits in the turn that submitted it looks inline (15-18% of W8's cold
 * opens).  So a score: +1 per open found cold (up to 2 * COLD_OPENS), -
 * COLD_OPEN_INLINE per one found inline; COLD_OPENS and more sends opens
 * to the workers.  A cached tree (all inline) leaves it within a few
 * probes.  Which way an open goes changes its cost, never its result.
 * The stage's spare fields keep the turn and the way until opened() sets
 * them. */
#define COLD_OPEN_INLINE 4
void lx_prep_slurp(Request *r, void *sqe)
{
    slurp_state *s = SLURP(r);
    int async = lx_R.cold_opens >= COLD_OPENS && ++lx_R.open_seq % COLD_OPEN_PROBE != 0;
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->stage = SLURP_OPEN;
    s->size = (int64_t)lx_R.turn;
    s->cap = async;
    prep_rw(sqe, IORING_OP_OPENAT, r->dir_fd, path_of(r->path), 0, 0);
    ((struct io_uring_sqe *)sqe)->open_flags = O_RDONLY | O_CLOEXEC;
    if (async) {
        ((struct io_uring_sqe *)sqe)->flags |= IOSQE_ASYNC;
        lx_R.n_async_opens++;
    }
}

/* An open tried inline is back: score whether it was done there. */
static void note_open_turn(Request *r)
{
    slurp_state *s = SLURP(r);
    if (s->cap)
        return;   /* sent to the workers: says nothing of the cache */
    if (s->size == (int64_t)lx_R.turn)
        lx_R.cold_opens = lx_R.cold_opens > COLD_OPEN_INLINE ? lx_R.cold_opens - COLD_OPEN_INLINE : 0;
    else if (lx_R.cold_opens < 2 * COLD_OPENS)
        lx_R.cold_opens++;
}

static void read_more(Request *r, struct io_uring_sqe *sqe)
{
    slurp_state *s = SLURP(r);
    prep_rw(sqe, IORING_OP_READ, (int)s->fd, r->heap + s->got, (uint64_t)(s->cap - s->got),
            (uint64_t)(r->offset + s->got));
}

/* The end: the bytes so far, or the error (the buffer freed then). */
static int slurp_done(Request *r, int64_t result)
{
    slurp_state *s = SLURP(r);
    if (s->fd >= 0)
        close((int)s->fd);   /* read-only: a close that cannot block or fail usefully */
    s->fd = -1;
    if (result < 0) {
        free(r->heap);
        r->heap = NULL;
    }
    r->result = result;
    return 0;
}

void lx_ring_step_abort(Request *r, int res)
{
    if (SLURP(r)->stage == SLURP_OPEN && res >= 0)
        SLURP(r)->fd = res;   /* opened all the same: closed here */
    slurp_done(r, -ECANCELED);
}

/* The sizing is run_slurp's (ops_data.c): the length asked for, else what
 * fstat says is left plus one byte, to see the end in one read; a file that
 * grew meanwhile doubles the buffer. */
static int opened(Request *r, int fd, struct io_uring_sqe *sqe)
{
    slurp_state *s = SLURP(r);
    struct stat st;
    s->fd = fd;
    s->stage = SLURP_READ;
    /* fstat of an fd just opened: the inode is in memory, nothing blocks */
    if (fstat(fd, &st) < 0)
        return slurp_done(r, -errno);
    s->size = S_ISREG(st.st_mode) ? st.st_size : -1;
    if (r->length == 0) {   /* no read to fail on a directory: say so as read(2) would */
        if (S_ISDIR(st.st_mode))
            return slurp_done(r, -EISDIR);
        s->cap = 1;
    } else if (r->length > 0)
        s->cap = r->length;
    else
        s->cap = (st.st_size > r->offset ? st.st_size - r->offset : 0) + 1;
    if (s->cap < 1)
        s->cap = 1;
    if (!(r->heap = malloc((size_t)s->cap)))
        return slurp_done(r, -ENOMEM);
    if (r->length == 0)
        return slurp_done(r, 0);
    /* A FIFO (or a file its driver made a stream: trace_pipe, a FUSE
     * file opened FOPEN_STREAM, which report no size) fails with ESPIPE
     * on the threads (run_slurp's pread); io_uring would read it. */
    if ((!S_ISREG(st.st_mode) || st.st_size == 0) && lx_is_stream(fd))
        return slurp_done(r, -ESPIPE);
    read_more(r, sqe);
    return 1;
}

int lx_ring_step(Request *r, int res, struct io_uring_sqe *sqe)
{
    slurp_state *s = SLURP(r);
    if (s->stage == SLURP_OPEN) {
        note_open_turn(r);
        if (res < 0)
            return slurp_done(r, res);
        return opened(r, res, sqe);
    }
    if (res == -EINTR || res == -EAGAIN) {
        read_more(r, sqe);
        return 1;
    }
    if (res < 0)
        return slurp_done(r, res);
    if (res == 0)
        return slurp_done(r, s->got);
    s->got += res;
    if (r->length >= 0 && s->got >= r->length)
        return slurp_done(r, s->got);
    /* a regular file read to its size (as fstat saw it) is at its end: no
     * read more to see 0 (it would cost a round trip per file) */
    if (r->length < 0 && s->size >= 0 && s->got < s->cap && r->offset + s->got >= s->size)
        return slurp_done(r, s->got);
    if (s->got == s->cap) {   /* only when reading to the end: the file grew */
        char *nh = realloc(r->heap, (size_t)s->cap * 2);
        if (!nh)
            return slurp_done(r, -ENOMEM);
        r->heap = nh;
        s->cap *= 2;
    }
    read_more(r, sqe);
    return 1;
}
