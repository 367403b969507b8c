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
#include "pool.h"

typedef struct Request Request;
typedef struct Group Group;

struct Request {
    PyObject_HEAD
    lx_req base;
    unsigned char op;          /* row of the operation table */
    unsigned char ran;         /* the run function ran: result is real */
    unsigned char finished;    /* handed to its callback (or dropped) */
    unsigned char has_view;
    int fd, fd2;
    int flags;                 /* open(2) flags and the like */
    unsigned mode;
    int64_t offset;            /* -1: at the fd's file position */
    int64_t length;
    char *data;                /* view.buf + dataoffset */
    double seconds;
    int64_t result;            /* >= 0, or -errno */
    Py_buffer view;            /* the caller's buffer, held until completion */
    PyObject *path, *path2;    /* bytes from os.fsencode(), NUL-free */
    PyObject *filename, *filename2;  /* as given, for OSError.filename */
    PyObject *callback;
    PyObject *value;           /* a result object allocated at submission */
    Group *group;              /* the group it belongs to (a reference) */
    Request *gprev, *gnext;    /* its siblings in that group */
    union {
        struct stat st;
        void *ptr;
    } out;
};

#define REQ_OF(r) ((Request *)((char *)(r) - offsetof(Request, base)))

#endif
