/* ops_sync.c: getting data to the device: fsync, fdatasync. */
#define _GNU_SOURCE
#include "ops_run.h"

#include <unistd.h>
#include <errno.h>

void run_fsync(Request *r) { SYSCALL_RESULT(r, fsync(r->fd)); }
void run_fdatasync(Request *r) { SYSCALL_RESULT(r, fdatasync(r->fd)); }
