/* ops_misc.c: the operations that do no I/O: nop, busy. */
#define _GNU_SOURCE
#include "ops_run.h"
#include "pool.h"

#include <errno.h>
#include <time.h>

void run_nop(Request *r) { r->result = 0; }

void run_busy(Request *r)
{
    lx_pool_not_storage();   /* a sleep: no reason for more threads */
    struct timespec ts = {(time_t)r->io.seconds,
                          (long)((r->io.seconds - (time_t)r->io.seconds) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
        ;
    r->result = 0;
}
