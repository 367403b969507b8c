/* future.h: a request awaited under asyncio is its own future (future.c). */
#ifndef LINUXAIO_FUTURE_H
#define LINUXAIO_FUTURE_H

#include "request.h"

/* Bind r to an asyncio loop.  1 if loop is one, 0 if not, -1 on error. */
int lx_future_bind(Request *r, PyObject *loop);
/* The engine's result (or OSError when failed): wake the awaiting task. */
int lx_future_settle(Request *r, PyObject *value, int failed);
/* 1 if it was pending and is now cancelled, 0 if already done, -1 error. */
int lx_future_cancel(Request *r, PyObject *msg);
int lx_future_done(Request *r);
PyObject *lx_future_result(Request *r);
int lx_future_cancelled(Request *r);
PyObject *lx_future_await(Request *r);
PyObject *lx_future_iternext(Request *r);
/* tp_clear's part: drop the loop, the done callbacks and the outcome. */
void lx_future_clear(Request *r);
/* Add the Future protocol's methods to the request type. */
int lx_future_add_to_type(PyTypeObject *type);

/* _run(submit, *args) and _set_loop_hooks(get_running_loop, on_new_loop,
 * elsewhere): see future.c. */
PyObject *lx_loop_run(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *lx_set_loop_hooks(PyObject *m, PyObject *const *args, Py_ssize_t nargs);

/* Whether a task's wake-up may run inline: only in a loop's own drain
 * (a reader callback, never inside a task), and per thread. */
extern _Thread_local int lx_future_inline;

/* From module.c. */
int lx_request_fresh(Request *r);
void lx_undo_effect(Request *r);
void lx_request_cancel(Request *r);
/* A quick await (module.c): may r be awaited with one turn of the loop
 * and a spin for its result?  Then take it: 1 settled, 0 wait, -1 error. */
int lx_await_quick_ok(Request *r);
int lx_await_take(Request *r);

#endif
