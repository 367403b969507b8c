/* future.h: a request awaited under asyncio is its own future (future.c). */
#ifndef LINUXAIO_FUTURE_H
#define LINUXAIO_FUTURE_H

#include "engine.h"

/* Bind r to an asyncio loop.  1 if loop is one, 0 if not, -1 on error. */
int lx_future_bind(Request *r, PyObject *loop);
/* The engine's result (or OSError when failed): wake the awaiting task. */
int lx_future_settle(Request *r, PyObject *value, int failed);
/* 1 if it was pending and is now cancelled, 0 if already done, -1 error. */
int lx_future_cancel(Request *r, PyObject *msg);
int lx_future_done(Request *r);
/* Done in the caller's thread before any suspension (inline.c): value
 * (stolen) is the result, and the await returns it without yielding. */
void lx_future_done_inline(Request *r, PyObject *value);
PyObject *lx_future_result(Request *r);
int lx_future_cancelled(Request *r);
PyObject *lx_future_await(Request *r);
PyObject *lx_future_iternext(Request *r);
PySendResult lx_future_am_send(Request *r, PyObject *arg, PyObject **result);
/* tp_clear's part: drop the loop, the done callbacks and the outcome. */
void lx_future_clear(Request *r);
/* What the future needs of the request layer above it, handed over at
 * init: the future calls nothing up there directly. */
typedef struct {
    /* submitted outside a drain since the last one began (lx_stamp) */
    int (*fresh)(Request *r);
    /* close the fd it opened: its result will never be taken */
    void (*undo)(Request *r);
    /* cancel the request (and a group's children) in the engine */
    void (*cancel)(Request *r);
    /* A quick await: may r be awaited with one turn of the loop and a
     * spin for its result?  Then take it: 1 settled, 0 wait, -1 error.
     * Not taken after all: abandon_quick, and the result is signalled. */
    int (*quick_ok)(Request *r);
    int (*take)(Request *r);
    void (*abandon_quick)(Request *r);
} lx_future_hooks;

/* Add the Future protocol's methods to the request type; keep the hooks. */
int lx_future_add_to_type(PyTypeObject *type, const lx_future_hooks *hooks);

/* _run(submit, *args) and _set_loop_hooks(get_running_loop, on_new_loop,
 * elsewhere): see future.c. */
PyObject *lx_loop_run(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *lx_set_loop_hooks(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
/* This thread's running asyncio loop (a new reference, first request on it
 * announced to on_new_loop); NULL without an exception: none, NULL with
 * one: error. */
PyObject *lx_running_loop(void);
/* elsewhere(submit, *args): the awaitable of a request made while no
 * asyncio loop runs in this thread (lx_running_loop said none). */
PyObject *lx_loop_elsewhere(PyObject *const *args, Py_ssize_t nargs);
/* The bound runners of the os twins (runner.c). */
extern PyTypeObject lx_RunnerType;
PyObject *lx_bind_runner(PyObject *m, PyObject *const *args, Py_ssize_t nargs);

/* Whether a task's wake-up may run inline: only in a loop's own drain
 * (a reader callback, never inside a task), and per thread. */
extern _Thread_local int lx_future_inline;
/* lx_future_inline's value in the callback that runs parked awaits
 * (inline.c): a ready callback itself, so a task it wakes overtakes
 * nothing queued before it. */
#define LX_WAKE_HERE 2

#endif
