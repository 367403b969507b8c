/* engine.h: the Request and Group structs, the engine's state, and the
 * internal API between the C files.
 *
 * A request as the extension sees it: a Python object that carries the
 * pool's part, the parsed arguments and the raw result.  Workers read and
 * write only plain C fields of it (never a refcount): the engine owns a
 * reference from submission to completion, and every buffer and path it
 * points into is pinned for that time.
 *
 * The files, each calling only those below it:
 *   control.c     knobs and module init: hands each layer what it needs
 *   poll.c        poll_cb, drain, wait, flush, quick awaits; reinit, fork, exit
 *   group.c       groups, feeders, submit_many
 *   request.c     the Request type, submission, cancel, undo, hand-over
 *   args.c        the letter parser, buffers, times, paths, (wd, relpath)
 *   wd.c          working-directory handles: the WorkingDir type
 *   future.c      asyncio's Future protocol (reaches up only through hooks)
 *   errors.c      errno -> OSError
 *   workers.c     the thread-pool backend (backend.h), with the help policy
 *   ops.c         the run functions and the table (ops.def); results.c
 *   pool.c        the thread pool, which knows nothing of I/O
 *   completion.c  the result queue and its eventfd, fed by every backend
 * Everything but the run functions, pool.c and completion.c runs with the
 * GIL. */
#ifndef LINUXAIO_ENGINE_H
#define LINUXAIO_ENGINE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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
    /* The WorkingDir each path was given relative to, as (wd, relpath):
     * held, and its fd kept open, until the request is released (wd.c). */
    PyObject *wd[2];
} lx_rare;

struct Request {
    PyObject_HEAD
    lx_req base;
    unsigned char op;          /* row of the operation table */
    unsigned char face;        /* which of its names it was called by (ops.h) */
    unsigned char ran;         /* the run function ran: result is real */
    unsigned char finished;    /* handed to its callback (or dropped) */
    unsigned char has_view;
    unsigned char delivery;    /* DELIVER_CALLBACK, _FUTURE or _SLOT */
    unsigned char memory_only; /* data is not a file mapping (args.c) */
    unsigned char on_ring;     /* the io_uring backend runs it (uring.c's routing): 1 the ring thread's ring, 2 the loop's ring, 3 queued for it by its owner */
    int fd;
    int dir_fd;                /* path's dir for the *at() calls; AT_FDCWD by default */
    int dir_fd2;               /* path2's (rename, link); AT_FDCWD by default */
    int flags;                 /* open(2) flags, AT_* flags and the like */
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
    unsigned char parked;      /* waits in inline.c's queue for the loop's next turn */
    unsigned char fd_kind;     /* a read's fd, asked once (lx_fd_kind): 0 not yet, LX_FD_* */
    unsigned char probe_cache; /* a small read the ring would take were its fd cold (uring.c):
                                  the worker reads with RWF_NOWAIT first, and a miss marks the fd */
    unsigned drain_serial;     /* the loop drains seen when it was submitted (stamp) */
    unsigned mode;             /* an argument, here in what was padding */
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
        struct statvfs vfs;        /* statvfs(2) */
        struct { uid_t uid; gid_t gid; } owner;  /* chown: (uid_t)-1 keeps one */
        dev_t dev;                 /* mknod */
        struct {                   /* the data/sync/memory/fd-control rows */
            int64_t offset2;       /* q, H: the second offset; -1: the fd's position */
            int64_t count;         /* c: how many (fiemap's extents); -1: all */
            int64_t arg;           /* a: fcntl/ioctl's int argument */
            unsigned cmd;          /* R: fcntl's command, ioctl's request */
            int fd2;               /* G, K: the second fd (sendfile's in_fd...) */
            unsigned char argkind; /* a: LX_ARG_INT, LX_ARG_COPY, LX_ARG_INPLACE */
        } x;
        int64_t steps[5];          /* a request the ring runs in steps (uring_prep.c) */
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

/* The bytes a data request moves: its length, or its buffers' (preadv). */
static inline int64_t lx_request_bytes(const Request *r)
{
    int64_t n = 0;
    if (!(r->rare && r->rare->niov))
        return r->length;
    for (int i = 0; i < r->rare->niov; i++)
        n += (int64_t)r->rare->iov[i].iov_len;
    return n;
}

/* The op index of groups, which never reach a worker. */
#define OP_GROUP 255

/* How a finished request reaches whoever waits for it. */
enum {
    DELIVER_CALLBACK,   /* callback(value) */
    DELIVER_FUTURE,     /* the request is an asyncio future (future.c) */
    DELIVER_SLOT,       /* a batch's result list, at slot */
};

struct Group {
    Request req;
    Request *children;         /* first child; linked by gnext/gprev */
    Py_ssize_t nchildren;
    Py_ssize_t nadded;         /* ever added: tells whether a feeder fed */
    Py_ssize_t limit;
    PyObject *feeder;
    PyObject *result;          /* what the group callback gets */
    PyObject *slots;           /* a batch's results, in submission order */
    unsigned char armed;       /* poll_cb has seen it once */
    unsigned char queued;      /* its event sits in the result queue */
    unsigned char batch_op;    /* a batch's (slots') operation */
    unsigned char feeding;     /* its feeder is running (group_feed) */
    Group *live_prev, *live_next;  /* unfinished groups, for reinit/fork */
};

/* The pool sets it too, without the GIL (reinit's stop, lx_pool_abandon). */
#define CANCELLED(r) __atomic_load_n(&(r)->base.cancelled, __ATOMIC_RELAXED)

/* Engine state; every field is guarded by the GIL. */
typedef struct {
    Py_ssize_t nreqs;          /* submitted, not yet handed to poll_cb's callbacks */
    lx_req *hand;              /* taken from the pool, not yet handled */
    unsigned long in_hand;     /* how many */
    unsigned long max_poll_reqs;
    int64_t max_poll_time_ns;
    Py_ssize_t max_outstanding;
    int64_t linger_ns;         /* how long poll_cb spins for one more result */
    int64_t quick_off_until;   /* a quick await's spin missed: none until then */
    int64_t op_ns[256];        /* recent run time of each operation (moving average) */
    Group live;                /* list head of unfinished groups */
} lx_engine;
extern lx_engine lx_E;
#define E lx_E

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- when a request was submitted, relative to a loop's drains ---- */

/* Per thread: each thread runs its own loop, and another thread's drains
 * say nothing about this one's turns. */
typedef struct {
    unsigned serial;           /* counts this thread's loop drains */
    unsigned draining;         /* one is running (nested: more) */
    unsigned long submitted;   /* requests submitted during the current one */
} lx_drains;
extern _Thread_local lx_drains lx_D;

/* A loop's drain wakes awaiting tasks inline (future.c).  Two things must
 * still hold: every await gives the loop a turn, and a callback the task
 * scheduled (call_soon) before it awaited runs before the await returns.
 * Stamps tell the drain which requests it must not resume inline. */
static inline void lx_stamp(Request *r, int counts)
{
    r->drain_serial = lx_D.serial;
    r->in_drain = lx_D.draining != 0;
    if (r->in_drain && counts)
        lx_D.submitted++;
}

/* ---- the lists a group keeps ---- */

static inline void lx_child_link(Group *g, Request *r)
{
    r->group = (Group *)Py_NewRef(g);
    r->gnext = g->children;
    if (g->children)
        g->children->gprev = r;
    g->children = r;
    g->nchildren++;
    g->nadded++;
}

/* Take r out of its group's list; r's reference to the group passes to the
 * caller. */
static inline void lx_child_unlink(Request *r)
{
    Group *g = r->group;
    if (r->gprev) r->gprev->gnext = r->gnext; else g->children = r->gnext;
    if (r->gnext) r->gnext->gprev = r->gprev;
    r->gnext = r->gprev = NULL;
    r->group = NULL;
    g->nchildren--;
}

/* A new group joins the unfinished ones (reinit and fork drop them). */
static inline void lx_live_link(Group *g)
{
    g->live_next = E.live.live_next;
    g->live_prev = &E.live;
    E.live.live_next->live_prev = g;
    E.live.live_next = g;
}

static inline void lx_live_unlink(Group *g)
{
    if (g->live_next) {
        g->live_prev->live_next = g->live_next;
        g->live_next->live_prev = g->live_prev;
        g->live_next = g->live_prev = NULL;
    }
}

/* Add methods (and getsets: either may be NULL) to a readied type: each
 * layer adds its own to the Request type (future.c's protocol, poll.c's
 * quick awaits), so the type's file needs to call none of them. */
static inline int lx_type_add_methods(PyTypeObject *type, PyMethodDef *methods, PyGetSetDef *getset)
{
    for (PyMethodDef *m = methods; m && m->ml_name; m++) {
        PyObject *d = PyDescr_NewMethod(type, m);
        if (!d || PyDict_SetItemString(type->tp_dict, m->ml_name, d) < 0) {
            Py_XDECREF(d);
            return -1;
        }
        Py_DECREF(d);
    }
    for (PyGetSetDef *g = getset; g && g->name; g++) {
        PyObject *d = PyDescr_NewGetSet(type, g);
        if (!d || PyDict_SetItemString(type->tp_dict, g->name, d) < 0) {
            Py_XDECREF(d);
            return -1;
        }
        Py_DECREF(d);
    }
    PyType_Modified(type);
    return 0;
}

/* ---- errors.c ---- */

/* OSError (the subclass errno picks), with filename and filename2 (or NULL). */
PyObject *lx_oserror(int err, PyObject *filename, PyObject *filename2);
/* What a request gets that no worker could be started for (pool.h). */
PyObject *lx_no_thread_error(int err);

/* ---- args.c ---- */

/* The engine's own eventfd (poll_fileno()) and the loop glue's duplicate
 * of it: refused as an fd for a request (control.c sets them). */
extern int lx_engine_fd, lx_loop_fd;
/* Parse a row's arguments by its letters (ops.h) into r. */
int lx_parse_args(Request *r, const char *spec, PyObject *const *args);
/* A callable, None, or an asyncio loop (r becomes a future). */
int lx_parse_callback(Request *r, PyObject *cb);
/* The positional count and the keywords every aio_* function takes. */
int lx_parse_common(const char *name, Py_ssize_t nspec, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames, PyObject **callback, int *pri);

/* ---- wd.c: working-directory handles ---- */

extern PyTypeObject lx_WorkingDirType;
/* A path given as (wd, relpath): the handle's fd, held for a request (it
 * stays open, even if closed meanwhile, until lx_wd_release).  -1 with
 * TypeError (not a WorkingDir) or ValueError (closed). */
int lx_wd_acquire(PyObject *wd, int *fd);
void lx_wd_release(PyObject *wd);

/* ---- request.c ---- */

extern PyTypeObject lx_RequestType;
/* The glue's trio waiter type (_loop.py): a callback that is a task. */
extern PyObject *lx_task_waiter_type;
/* linuxaio.Path (args.c reads its path string without a Python call). */
extern PyObject *lx_path_type;
Request *lx_request_new(PyTypeObject *type, int op, int face);
/* The type's slots, shared by the Group type. */
void lx_request_dealloc(Request *r);
int lx_request_traverse(Request *r, visitproc visit, void *arg);
int lx_request_clear(Request *r);
/* Every row's module function: self is the row number. */
PyObject *lx_submit(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
/* Hands inline.c the way to run a parked await (request.c). */
void lx_request_init_resume(void);
void lx_set_finished(Request *r);
void lx_release_args(Request *r);
int lx_request_fresh(Request *r);
void lx_request_cancel(Request *r);
void lx_undo_effect(Request *r);
void lx_undo_slots(Group *g);
void lx_group_kick(Group *g);
int lx_hand_over(Request *r, PyObject *cb, PyObject *value, int failed);
void lx_tell_awaiter(Request *r, PyObject *cb);
void lx_engine_cancelled(Request *r, PyObject *cb);

/* ---- group.c ---- */

extern PyTypeObject lx_GroupType;
extern PyMethodDef lx_group_module_methods[];
/* The group lost a child, or poll_cb armed it: feed it, finish it... */
int lx_settle_up(Group *g);
int lx_leave_group(Request *r, int rc);

/* ---- poll.c ---- */

extern PyMethodDef lx_poll_module_methods[];
extern PyMethodDef lx_poll_request_methods[];
int lx_await_quick_ok(Request *r);
int lx_await_take(Request *r);
void lx_await_abandon(Request *r);
void lx_undo_abandoned(lx_req *base);

#endif
