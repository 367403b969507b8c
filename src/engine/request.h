/* request.h: a request as the extension sees it: a Python object that
 * carries the pool's part, the parsed arguments and the raw result.
 *
 * Workers read and write only plain C fields of it (never a refcount): the
 * engine owns a reference from submission to completion, and every buffer
 * and path it points into is pinned for that time. */
#ifndef LINUXAIO_REQUEST_H
#define LINUXAIO_REQUEST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include "pool.h"

typedef struct Request Request;
typedef struct Group Group;

/* What few requests need, allocated when one does (and freed with it), so
 * that a request, the collector's header included, stays within pymalloc's
 * 512 bytes (larger ones go to malloc, which costs each request more). */
typedef struct {
    PyObject *more_waiters;    /* done callbacks after the first: a list of (fn, context) */
    Py_buffer *views;          /* preadv/pwritev: the buffers held, niov of them; */
    struct iovec *iov;         /* in the same allocation */
    int niov;
} lx_rare;

struct Request {
    PyObject_HEAD
    lx_req base;
    unsigned char op;          /* row of the operation table */
    unsigned char ran;         /* the run function ran: result is real */
    unsigned char finished;    /* handed to its callback (or dropped) */
    unsigned char has_view;
    unsigned char delivery;    /* DELIVER_CALLBACK, _FUTURE or _SLOT (module.c) */
    unsigned char memory_only; /* data is not a file mapping (module.c) */
    int fd;
    int fd2;                   /* dir_fd for the *at() calls; AT_FDCWD by default */
    int flags;                 /* open(2) flags, AT_* flags and the like */
    unsigned mode;
    int64_t offset;            /* -1: at the fd's file position */
    int64_t length;
    char *data;                /* view.buf + dataoffset */
    int64_t result;            /* >= 0, or -errno */
    Py_buffer view;            /* the caller's buffer, held until completion */
    lx_rare *rare;             /* or NULL */
    PyObject *path, *path2;    /* bytes from os.fsencode(), NUL-free */
    PyObject *filename, *filename2;  /* as given, for OSError.filename */
    PyObject *callback;
    Py_ssize_t slot;           /* index in its batch's result list */
    /* Awaited under asyncio, the request is its own future (future.c). */
    PyObject *loop;            /* the loop it is bound to, or NULL */
    unsigned long owner;       /* the thread that runs that loop */
    PyObject *waiter, *waiter_ctx;  /* the first done callback, its context */
    PyObject *outcome;         /* result, exception, or cancel message */
    unsigned char fut_state, blocking, yielded;
    unsigned char quick;       /* awaited with a loop turn and a spin (future.c) */
    unsigned char in_drain;    /* submitted during drain number drain_serial */
    unsigned drain_serial;     /* the loop drains seen when it was submitted (module.c) */
    PyObject *value;           /* a result object allocated at submission */
    Group *group;              /* the group it belongs to (a reference) */
    Request *gprev, *gnext;    /* its siblings in that group */
    char *heap;                /* malloc'd by a worker (slurp); freed with the args */
    /* What a worker fills in, or reads besides the fields above.  Kept in
     * a union: a request must stay under pymalloc's 512-byte limit. */
    union {
        struct stat st;
        struct timespec times[2];  /* utimensat(2): atime, mtime */
        int64_t nowait_done;       /* a read: bytes its try_now got (ops.c) */
        double seconds;            /* aio_busy */
    } io;
};

/* pymalloc serves up to 512 bytes; the collector's header (16) comes first. */
_Static_assert(sizeof(Request) <= 496, "a Request must stay within pymalloc's 512 bytes");

/* r->rare, allocated if need be (NULL and MemoryError if that fails). */
static inline lx_rare *lx_request_rare(Request *r)
{
    if (!r->rare && !(r->rare = PyMem_Calloc(1, sizeof *r->rare)))
        PyErr_NoMemory();
    return r->rare;
}

#define REQ_OF(r) ((Request *)((char *)(r) - offsetof(Request, base)))

#endif
