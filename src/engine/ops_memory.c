/* ops_memory.c: operations on the caller's memory (an mmap or any buffer,
 * held by the request): msync, mtouch, mlock, mlockall.  The range args.c
 * checked (r->data, r->length) is widened to whole pages where the kernel
 * wants page-aligned addresses, as IO::AIO does. */
#define _GNU_SOURCE
#include "ops_run.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static uintptr_t page_size(void)
{
    static uintptr_t size;   /* a benign race: every thread stores the same value */
    if (!size)
        size = (uintptr_t)sysconf(_SC_PAGESIZE);
    return size;
}

/* [*start, *start + *len): the pages that hold r's range (none for none). */
static void page_range(Request *r, void **start, size_t *len)
{
    uintptr_t ps = page_size(), a = (uintptr_t)r->data;
    uintptr_t lo = a & ~(ps - 1), hi = (a + (uintptr_t)r->length + ps - 1) & ~(ps - 1);
    *start = (void *)lo;
    *len = r->length ? hi - lo : 0;
}

void run_msync(Request *r)
{
    void *start;
    size_t len;
    page_range(r, &start, &len);
    SYSCALL_RESULT(r, msync(start, len, r->flags));
}

void run_mlock(Request *r)
{
    void *start;
    size_t len;
    page_range(r, &start, &len);
    SYSCALL_RESULT(r, mlock(start, len));
}

void run_mlockall(Request *r) { SYSCALL_RESULT(r, mlockall(r->flags)); }

/* Fault in each page of the range by reading one byte of it, within the
 * range only (the bytes around it may be no memory of the caller's).  With
 * MT_MODIFY the byte is written as well, by an atomic add of 0: a page
 * becomes dirty (a copy-on-write one, private) without changing a byte,
 * even one another thread writes meanwhile. */
void run_mtouch(Request *r)
{
    uintptr_t ps = page_size();
    char *p = r->data, *end = r->data + r->length;
    while (p < end) {
        if (r->flags & LX_MT_MODIFY)
            __atomic_fetch_add(p, 0, __ATOMIC_RELAXED);
        else
            (void)*(volatile char *)p;
        p = (char *)(((uintptr_t)p & ~(ps - 1)) + ps);
    }
    r->result = 0;
}
