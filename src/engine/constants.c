/* constants.c: the kernel's constants that the request types take, added
 * to the engine module (and so exported by linuxaio) under the kernel's
 * names.  A row's flags pass to the syscall as they are. */
#define _GNU_SOURCE
#include "ops.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/mman.h>

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

#define C(name) {#name, (long)(name)}

static const struct {
    const char *name;
    long value;
} constants[] = {
    /* aio_allocate, linuxaio.os.fallocate */
    C(FALLOC_FL_KEEP_SIZE), C(FALLOC_FL_PUNCH_HOLE), C(FALLOC_FL_ZERO_RANGE),
    C(FALLOC_FL_COLLAPSE_RANGE), C(FALLOC_FL_INSERT_RANGE), C(FALLOC_FL_UNSHARE_RANGE),
    /* aio_fiemap */
    C(FIEMAP_FLAG_SYNC), C(FIEMAP_FLAG_XATTR), C(FIEMAP_FLAG_CACHE),
    C(FIEMAP_EXTENT_LAST), C(FIEMAP_EXTENT_UNKNOWN), C(FIEMAP_EXTENT_DELALLOC),
    C(FIEMAP_EXTENT_ENCODED), C(FIEMAP_EXTENT_DATA_ENCRYPTED), C(FIEMAP_EXTENT_NOT_ALIGNED),
    C(FIEMAP_EXTENT_DATA_INLINE), C(FIEMAP_EXTENT_DATA_TAIL), C(FIEMAP_EXTENT_UNWRITTEN),
    C(FIEMAP_EXTENT_MERGED), C(FIEMAP_EXTENT_SHARED),
    /* aio_sync_file_range */
    C(SYNC_FILE_RANGE_WAIT_BEFORE), C(SYNC_FILE_RANGE_WRITE), C(SYNC_FILE_RANGE_WAIT_AFTER),
    /* aio_msync, aio_mtouch, aio_mlockall */
    C(MS_ASYNC), C(MS_SYNC), C(MS_INVALIDATE), {"MT_MODIFY", LX_MT_MODIFY},
    C(MCL_CURRENT), C(MCL_FUTURE), C(MCL_ONFAULT),
    /* aio_fadvise, linuxaio.os.posix_fadvise */
    C(POSIX_FADV_NORMAL), C(POSIX_FADV_SEQUENTIAL), C(POSIX_FADV_RANDOM),
    C(POSIX_FADV_NOREUSE), C(POSIX_FADV_WILLNEED), C(POSIX_FADV_DONTNEED),
    /* aio_ioctl's useful requests (fcntl's commands are the fcntl module's) */
    C(FICLONE), C(FICLONERANGE), C(FS_IOC_GETFLAGS), C(FS_IOC_SETFLAGS),
};

int lx_add_op_constants(PyObject *m)
{
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0)
            return -1;
    return 0;
}
