/* dio.h: direct I/O's alignment, and the OSError of a failed request. */
#ifndef LINUXAIO_DIO_H
#define LINUXAIO_DIO_H

#include "engine.h"

enum { LX_DIO_STATX = 1, LX_DIO_DEVICE, LX_DIO_DEFAULT };

typedef struct {
    unsigned mem;          /* the buffer's address: a multiple of this */
    unsigned offset;       /* the file offset and the length: of this */
    int source;            /* LX_DIO_*: who said so */
    int unsupported;       /* statx said the file has no direct I/O */
} lx_dio_align;

/* What direct I/O on path (relative to dirfd), or on dirfd itself when
 * path is NULL or empty, must be aligned to: statx(STATX_DIOALIGN), else
 * the logical block size of the device, else 4096.  No GIL needed.
 * 0, or -1 with errno set (statx failed). */
int lx_dio_alignment(int dirfd, const char *path, lx_dio_align *out);

/* The OSError for a request that failed (r->result < 0), with the GIL.  An
 * EINVAL from O_DIRECT says what is misaligned, or that the file system
 * refused O_DIRECT at open.  Every backend's failures come through here. */
PyObject *lx_request_error(Request *r);

/* Module functions: dio_alignment(fd_or_path), _buffer_address(buf). */
PyObject *lx_dio_alignment_py(PyObject *m, PyObject *arg);
PyObject *lx_buffer_address_py(PyObject *m, PyObject *arg);

#endif
