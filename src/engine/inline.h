/* inline.h: inline-first awaits (inline.c): an awaited request that can
 * complete without blocking completes in the caller's thread, before any
 * queueing. */
#ifndef LINUXAIO_INLINE_H
#define LINUXAIO_INLINE_H

#include "engine.h"

#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* linuxaio.inline(): on by default, for the whole process. */
extern int lx_inline_enabled;
/* The largest read tried inline (a copy costs the loop's time). */
extern size_t lx_inline_max_bytes;

/* Try r in the caller's thread: it is an awaited request (a future, or a
 * trio task's waiter) of a row with a try.  1 done (r->result is set, as a
 * worker would leave it), 0 submit it as usual (a read that stopped short
 * has its first bytes in place). */
int lx_inline_try(Request *r);
/* lx_inline_try's third answer: r is parked (see inline.c), its await
 * suspends the task until the loop's next turn runs it. */
#define LX_TRY_PARKED 2
/* The try alone, for a parked request whose turn came (the budget has
 * counted it): 1 done, 0 submit it. */
int lx_inline_attempt(Request *r);
/* Set by request.c: run a parked request now (may_try: try it first) or
 * hand it to the engine; its future is settled, or it is in flight. */
void lx_inline_set_resume(int (*resume)(Request *r, int may_try));
/* r, parked, was cancelled: out of the queue (it never ran). */
void lx_inline_unpark(Request *r);
/* fd's reads have not missed the page cache lately (uring.c: an awaited
 * read of a warm fd that reached the engine was most likely held back by
 * the budget, and is cached: a thread's quick await beats the ring). */
int lx_inline_fd_warm(int fd);
/* fd's read just missed the page cache (any thread, GIL or not): its
 * small reads go to the ring for a while (uring.c's routing). */
void lx_inline_mark_cold(int fd);
/* A try of r's read missed or stopped short: a second miss soon after makes
 * r->fd cold (any thread, no GIL needed). */
void lx_inline_missed(const Request *r);

/* The mount table says no file system is mounted whose getattr (for
 * stat) or open and getattr (for open) may ask a server. */
enum { LX_MOUNTS_FOR_STAT, LX_MOUNTS_FOR_OPEN };
int lx_inline_mounts_ok(int what);
/* None of the DONT_SYNC kinds is mounted either (after lx_inline_mounts_ok
 * said yes): every getattr is local. */
int lx_inline_no_remote(void);
/* dev is no such file system's. */
int lx_inline_dev_ok(dev_t dev);
/* fstat(2) of fd if its attributes are local (none asked of a server); -1:
 * the worker's. */
struct stat;
int lx_inline_fstat(int fd, struct stat *st);

/* The tries' preadv2 and close, straight to the kernel.  With the workers
 * running, glibc's wrappers of these cancellation points switch the
 * thread to asynchronous cancellation and back around the syscall: ~20 ns
 * each (Intel Xeon), ~4% of a cached 4 KiB read's await.  The loop thread
 * is never pthread_cancel's target. */
static inline ssize_t lx_try_preadv2(int fd, const struct iovec *iov, int n, off_t off, int flags)
{
    return syscall(SYS_preadv2, fd, iov, n, (long)off, 0L, flags);   /* offset: low, high */
}
static inline void lx_try_close(int fd) { syscall(SYS_close, fd); }

extern PyMethodDef lx_inline_module_methods[];
int lx_inline_init(void);

#endif
