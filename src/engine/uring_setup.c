/* uring_setup.c: choosing the engine (LINUXAIO_ENGINE), setting the ring
 * up, and explaining why there is none: one message per cause, each naming
 * its fix; engine() and engine_info(). */
#define _GNU_SOURCE
#include "uring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#define R lx_R

static const char *const mode_names[] = {"auto", "threads", "uring"};

/* The lock spins a moment before it sleeps (as the sink's and the pool's
 * do): a submitter that finds the ring thread reaping gets it within
 * microseconds, where a sleep in the kernel cost a wake-up of each. */
lx_ring lx_R = {.q.fd = -1, .wake_fd = -1, .lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP, .limit = DEFAULT_LIMIT};

/* ---- why there is no ring: one message per cause, each with its fix ---- */

static int read_sysctl(const char *path)
{
    FILE *f = fopen(path, "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* The message for err from call, given kernel.io_uring_disabled (-1: the
 * sysctl is absent).  Pure, so that _uring_reason() can test every branch
 * without root or a changed sysctl. */
static void explain_as(char *out, size_t n, int err, const char *call, int disabled)
{
    const char *fix = "LINUXAIO_ENGINE=threads runs everything on threads without trying";
    switch (err) {
    case ENOSYS:
        snprintf(out, n,
                 "io_uring is not available: %s failed with ENOSYS (a kernel built without "
                 "CONFIG_IO_URING, older than 5.1, or a sandbox such as gVisor); fix: a kernel "
                 "with io_uring, or %s", call, fix);
        return;
    case EPERM:
        if (disabled == 2)
            snprintf(out, n,
                     "io_uring is disabled by sysctl (kernel.io_uring_disabled = 2: %s gets EPERM); "
                     "fix: sysctl -w kernel.io_uring_disabled=0 (or 1 with kernel.io_uring_group), or %s",
                     call, fix);
        else if (disabled == 1)
            snprintf(out, n,
                     "io_uring is restricted by sysctl (kernel.io_uring_disabled = 1) to the group "
                     "kernel.io_uring_group, and this process is not in it (%s gets EPERM); fix: run "
                     "in that group (or with CAP_SYS_ADMIN), sysctl -w kernel.io_uring_disabled=0, or %s",
                     call, fix);
        else
            snprintf(out, n,
                     "io_uring is blocked by a seccomp filter (%s gets EPERM while "
                     "kernel.io_uring_disabled is 0 or absent: Docker's default profile does this); "
                     "fix: allow io_uring_setup, io_uring_enter and io_uring_register in the "
                     "sandbox's seccomp profile (docker run --security-opt seccomp=...), or %s",
                     call, fix);
        return;
    case ENOMEM:
        snprintf(out, n,
                 "io_uring ring could not be set up: %s failed with ENOMEM (before Linux 5.12 the "
                 "ring counts against the locked-memory limit, RLIMIT_MEMLOCK); fix: raise it "
                 "(ulimit -l 8192, or LimitMEMLOCK= under systemd), or %s", call, fix);
        return;
    default:
        snprintf(out, n, "io_uring ring could not be set up: %s failed: %s (errno %d); "
                 "fix: %s", call, strerror(err), err, fix);
    }
}

static void explain(int err, const char *call)
{
    explain_as(R.reason, sizeof R.reason, err, call, err == EPERM ? read_sysctl("/proc/sys/kernel/io_uring_disabled") : -1);
}

/* ---- setting the ring up ---- */

void lx_rq_unmap(lx_rq *q)
{
    if (q->sqes)
        munmap(q->sqes, q->sqe_map_len);
    if (q->cq_map && q->cq_map != q->sq_map)
        munmap(q->cq_map, q->cq_map_len);
    if (q->sq_map)
        munmap(q->sq_map, q->sq_map_len);
    q->sqes = NULL;
    q->sq_map = q->cq_map = NULL;
}

static void unmap_ring(void) { lx_rq_unmap(&R.q); }

int lx_rq_map(lx_rq *q, int fd, const struct io_uring_params *p)
{
    q->fd = fd;
    q->setup_flags = p->flags;
    q->features = p->features;
    q->sq_entries = p->sq_entries;
    q->cq_entries = p->cq_entries;
    q->sq_map_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    q->cq_map_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    if (p->features & IORING_FEAT_SINGLE_MMAP)
        q->sq_map_len = q->cq_map_len = q->sq_map_len > q->cq_map_len ? q->sq_map_len : q->cq_map_len;
    q->sqe_map_len = p->sq_entries * sizeof(struct io_uring_sqe);
    q->sq_map = mmap(NULL, q->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (q->sq_map == MAP_FAILED) {
        q->sq_map = NULL;
        return -1;
    }
    if (p->features & IORING_FEAT_SINGLE_MMAP)
        q->cq_map = q->sq_map;
    else if ((q->cq_map = mmap(NULL, q->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                               IORING_OFF_CQ_RING)) == MAP_FAILED) {
        q->cq_map = NULL;
        lx_rq_unmap(q);
        return -1;
    }
    q->sqes = mmap(NULL, q->sqe_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (q->sqes == MAP_FAILED) {
        q->sqes = NULL;
        lx_rq_unmap(q);
        return -1;
    }
    /* A fork's child must never touch the parent's rings: it gets none of
     * these mappings, and sets up its own (lx_uring's orphans). */
    madvise(q->sq_map, q->sq_map_len, MADV_DONTFORK);
    if (q->cq_map != q->sq_map)
        madvise(q->cq_map, q->cq_map_len, MADV_DONTFORK);
    madvise(q->sqes, q->sqe_map_len, MADV_DONTFORK);
    q->sq_head = (unsigned *)((char *)q->sq_map + p->sq_off.head);
    q->sq_tail = (unsigned *)((char *)q->sq_map + p->sq_off.tail);
    q->sq_mask = (unsigned *)((char *)q->sq_map + p->sq_off.ring_mask);
    q->sq_array = (unsigned *)((char *)q->sq_map + p->sq_off.array);
    q->cq_head = (unsigned *)((char *)q->cq_map + p->cq_off.head);
    q->cq_tail = (unsigned *)((char *)q->cq_map + p->cq_off.tail);
    q->cq_mask = (unsigned *)((char *)q->cq_map + p->cq_off.ring_mask);
    q->cqes = (struct io_uring_cqe *)((char *)q->cq_map + p->cq_off.cqes);
    q->sq_flags = (unsigned *)((char *)q->sq_map + p->sq_off.flags);
    q->cq_overflow = (unsigned *)((char *)q->cq_map + p->cq_off.overflow);
    q->sq_local_tail = *q->sq_tail;
    return 0;
}

/* The flags tried, newest first: one the kernel does not know fails the
 * setup with EINVAL, and the next is tried.  Only the ring thread submits
 * and waits, so SINGLE_ISSUER holds and DEFER_TASKRUN's completion work
 * runs where it waits (6.1); R_DISABLED lets the ring thread, not the
 * importer, become its one issuer (5.10).  No SQPOLL: it keeps a CPU busy
 * (libuv 1.49 turned its ring off for that).  No COOP_TASKRUN without
 * DEFER_TASKRUN: the ring thread sleeps in io_uring_enter and must be
 * woken by task work.  And with none of these, a plain ring. */
static const struct {
    unsigned flags;
    const char *name;
} setups[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED
         | IORING_SETUP_SUBMIT_ALL, "SINGLE_ISSUER|DEFER_TASKRUN|R_DISABLED|SUBMIT_ALL"},
    {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
    {0, ""},
};

/* Set up the ring (no thread yet).  0, or -1 with R.reason set. */
int lx_ring_setup(void)
{
    struct io_uring_params p;
    struct io_uring_probe *probe;
    size_t probe_len = sizeof *probe + 256 * sizeof(struct io_uring_probe_op);
    int fd = -1, err = 0;
    unsigned i;

    for (i = 0; i < sizeof setups / sizeof *setups; i++) {
        memset(&p, 0, sizeof p);
        p.flags = setups[i].flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        p.cq_entries = 2 * RING_ENTRIES;
        if ((fd = sys_setup(RING_ENTRIES, &p)) >= 0)
            break;
        if ((err = errno) != EINVAL)
            break;
    }
    if (fd < 0) {
        explain(err, "io_uring_setup");
        return -1;
    }
    R.flags_used = setups[i].name;
    if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_SUBMIT_STABLE)) {
        snprintf(R.reason, sizeof R.reason, "io_uring on this kernel is too old (no IORING_FEAT_NODROP "
                 "or SUBMIT_STABLE: Linux 5.5+ needed); fix: a newer kernel, or LINUXAIO_ENGINE=threads");
        goto fail;
    }
    if (lx_rq_map(&R.q, fd, &p) < 0)
        goto fail_errno;

    /* Which operations this kernel has (5.6+): a row whose opcode is
     * missing runs on the threads. */
    if (!(probe = calloc(1, probe_len)))
        goto fail_errno;
    if (sys_register(fd, IORING_REGISTER_PROBE, probe, 256) < 0) {
        err = errno;
        free(probe);
        snprintf(R.reason, sizeof R.reason, "io_uring on this kernel is too old: IORING_REGISTER_PROBE "
                 "failed (%s; Linux 5.6+ needed); fix: a newer kernel, or LINUXAIO_ENGINE=threads",
                 strerror(err));
        goto fail;
    }
    memset(R.has_op, 0, sizeof R.has_op);
    for (i = 0; i < probe->ops_len && i < 256; i++)
        R.has_op[probe->ops[i].op] = (probe->ops[i].flags & IO_URING_OP_SUPPORTED) != 0;
    free(probe);
    if (!R.has_op[IORING_OP_READ] || !R.has_op[IORING_OP_ASYNC_CANCEL]) {
        snprintf(R.reason, sizeof R.reason, "io_uring on this kernel lacks IORING_OP_READ or "
                 "IORING_OP_ASYNC_CANCEL (Linux 5.6+ needed); fix: a newer kernel, or LINUXAIO_ENGINE=threads");
        goto fail;
    }
    if ((R.wake_fd = eventfd(0, EFD_CLOEXEC)) < 0)
        goto fail_errno;
    R.up = 1;
    R.reason[0] = 0;
    return 0;
fail_errno:
    explain(errno, "setting up the ring (mmap, eventfd)");
fail:
    unmap_ring();
    close(fd);
    R.q.fd = -1;
    return -1;
}

/* The loop's ring (uring.c: lx_L): set up by the thread that polls, which
 * submits to it and takes its completions.  No SINGLE_ISSUER (other
 * threads send cancels), no DEFER_TASKRUN and no COOP_TASKRUN: the
 * kernel's completion work for its reads then runs in the submitting
 * thread as soon as the completion comes (TWA_SIGNAL), whatever that
 * thread is doing, so the completion is in the CQ without anyone entering
 * the kernel, and the sink's eventfd (registered: the one the loop
 * watches) wakes the loop directly.  0, or -1 (errno): the ring thread
 * does it all, as before. */
int lx_loop_ring_setup(lx_rq *q, int efd)
{
    struct io_uring_params p;
    int fd = -1;
    for (unsigned flags = IORING_SETUP_SUBMIT_ALL;; flags = 0) {
        memset(&p, 0, sizeof p);
        p.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        p.cq_entries = 2 * RING_ENTRIES;
        if ((fd = sys_setup(RING_ENTRIES, &p)) >= 0 || errno != EINVAL || !flags)
            break;
    }
    if (fd < 0)
        return -1;
    if (lx_rq_map(q, fd, &p) < 0)
        goto fail;
    if (sys_register(fd, IORING_REGISTER_EVENTFD, &efd, 1) < 0) {
        lx_rq_unmap(q);
        goto fail;
    }
    q->cqes_due = 0;
    q->ncancel = 0;
    return 0;
fail:
    close(fd);
    q->fd = -1;
    return -1;
}

/* ---- import, and what the module tells ---- */

int lx_uring_init(void)
{
    const char *env = getenv("LINUXAIO_ENGINE");
    pthread_condattr_t ca;
    for (int p = 0; p < LX_NPRI; p++)
        R.pending[p].head = R.pending[p].tail = NULL;
    pthread_condattr_init(&ca);
    pthread_cond_init(&R.settled, &ca);
    pthread_condattr_destroy(&ca);
    R.mode = MODE_AUTO;
    if (env && *env) {
        int m;
        for (m = 0; m < 3 && strcmp(env, mode_names[m]); m++)
            ;
        if (m == 3) {
            PyErr_Format(PyExc_ValueError, "LINUXAIO_ENGINE=%s: must be auto, threads or uring "
                         "(uring: io_uring, or an error saying why not)", env);
            return -1;
        }
        R.mode = m;
    }
    lx_ring_at_fork();   /* after the sink's and the pool's: this lock is taken first */
    if (R.mode == MODE_THREADS) {
        snprintf(R.reason, sizeof R.reason, "LINUXAIO_ENGINE=threads: io_uring is not used "
                 "(LINUXAIO_ENGINE=auto or uring to use it)");
        return 0;
    }
    if (lx_ring_setup() == 0)
        return 0;
    if (R.mode == MODE_URING) {
        PyErr_Format(PyExc_OSError, "LINUXAIO_ENGINE=uring: %s", R.reason);
        return -1;
    }
    return 0;
}

static PyObject *engine(PyObject *m, PyObject *unused)
{
    return PyUnicode_FromString(R.up ? "uring" : "threads");
}

static PyObject *engine_info(PyObject *m, PyObject *unused)
{
    struct utsname u;
    PyObject *ops = PyList_New(0), *policy = PyDict_New(), *d = NULL;
    if (!ops || !policy)
        goto done;
    for (int i = 0; R.up && i < lx_nops; i++) {
        const lx_op *row = &lx_ops[i];
        const char *when;
        PyObject *name;
        int rc;
        if (!row->prep || !R.has_op[LX_RING_OPCODE(row->caps)])
            continue;
        if (R.mode == MODE_URING)
            when = "always";
        else if (row->caps & LX_CAP_SMALL)
            when = "up to 64 KiB from fds that missed the page cache lately, and O_DIRECT fds";
        else if (row->caps & LX_CAP_DIRECT)
            when = "O_DIRECT fds";
        else if (row->caps & LX_CAP_UNLESS_ALONE)
            when = "unless it would be the only request in flight";
        else
            continue;
        if (!(name = PyUnicode_FromString(row->id)))
            goto done;
        {
            PyObject *w = PyUnicode_FromString(when);
            rc = !w || PyList_Append(ops, name) < 0 || PyDict_SetItemString(policy, row->id, w) < 0;
            Py_XDECREF(w);
        }
        Py_DECREF(name);
        if (rc)
            goto done;
    }
    if (uname(&u) < 0)
        strcpy(u.release, "unknown");
    d = Py_BuildValue("{s:s,s:O,s:O,s:s,s:s,s:s,s:I,s:I,s:k,s:I}",
                      "engine", R.up ? "uring" : "threads",
                      "ring_ops", ops,
                      "reason", Py_None,
                      "kernel", u.release,
                      "mode", mode_names[R.mode],
                      "ring_flags", R.up && R.flags_used ? R.flags_used : "",
                      "ring_entries", R.up ? R.q.sq_entries : 0,
                      "cq_entries", R.up ? R.q.cq_entries : 0,
                      "max_in_flight", (unsigned long)R.limit,
                      "kernel_workers", R.up ? __atomic_load_n(&R.kernel_workers, __ATOMIC_ACQUIRE) : 0);
    if (d && !R.up) {
        PyObject *why = PyUnicode_FromString(R.reason[0] ? R.reason : "io_uring is not in use");
        if (!why || PyDict_SetItemString(d, "reason", why) < 0)
            Py_CLEAR(d);
        Py_XDECREF(why);
    }
    if (d && PyDict_SetItemString(d, "ring_policy", policy) < 0)
        Py_CLEAR(d);
    if (d) {
        /* The ring thread's counters, read without its lock (they only
         * grow): batching shows as submitted/enters and reaped/sink_batches. */
        PyObject *st = Py_BuildValue("{s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k}",
                                     "enters", __atomic_load_n(&R.n_enters, __ATOMIC_RELAXED)
                                                   + __atomic_load_n(&R.n_loop_enters, __ATOMIC_RELAXED),
                                     "loop_enters", __atomic_load_n(&R.n_loop_enters, __ATOMIC_RELAXED),
                                     "loop_started", __atomic_load_n(&R.n_loop_started, __ATOMIC_RELAXED),
                                     "loop_reaped", __atomic_load_n(&R.n_loop_reaped, __ATOMIC_RELAXED),
                                     "submit_enters", __atomic_load_n(&R.n_submit_enters, __ATOMIC_RELAXED)
                                                          + __atomic_load_n(&R.n_loop_enters, __ATOMIC_RELAXED),
                                     "submitted", __atomic_load_n(&R.n_submitted, __ATOMIC_RELAXED)
                                                      + __atomic_load_n(&R.n_loop_started, __ATOMIC_RELAXED),
                                     "started", __atomic_load_n(&R.n_started, __ATOMIC_RELAXED),
                                     "reaped", __atomic_load_n(&R.n_reaped, __ATOMIC_RELAXED),
                                     "sink_batches", __atomic_load_n(&R.n_sink, __ATOMIC_RELAXED),
                                     "cq_overflow", (unsigned long)(R.up && R.q.cq_overflow && !R.refit
                                                                    ? __atomic_load_n(R.q.cq_overflow, __ATOMIC_RELAXED) : 0),
                                     "overflow_flushes", __atomic_load_n(&R.n_overflow_flushes, __ATOMIC_RELAXED),
                                     "refused_streams", __atomic_load_n(&R.n_refused, __ATOMIC_RELAXED),
                                     "fd_checks", __atomic_load_n(&R.n_fd_checks, __ATOMIC_RELAXED),
                                     "peer_wakes", __atomic_load_n(&R.n_peer_wakes, __ATOMIC_RELAXED),
                                     "async_opens", __atomic_load_n(&R.n_async_opens, __ATOMIC_RELAXED),
                                     "wakes", __atomic_load_n(&R.n_wakes, __ATOMIC_RELAXED),
                                     "kernel_us", __atomic_load_n(&R.n_kernel_ns, __ATOMIC_RELAXED) / 1000);
        if (!st || PyDict_SetItemString(d, "ring_stats", st) < 0)
            Py_CLEAR(d);
        Py_XDECREF(st);
    }
done:
    Py_XDECREF(ops);
    Py_XDECREF(policy);
    return d;
}

/* _uring_reason(errno, disabled, call="io_uring_setup"): the message a
 * refused ring gets, as if kernel.io_uring_disabled were `disabled` (-1:
 * absent).  Private, for the tests. */
static PyObject *uring_reason(PyObject *m, PyObject *args)
{
    int err, disabled;
    const char *call = "io_uring_setup";
    char msg[sizeof R.reason];
    if (!PyArg_ParseTuple(args, "ii|s:_uring_reason", &err, &disabled, &call))
        return NULL;
    explain_as(msg, sizeof msg, err, call, disabled);
    return PyUnicode_FromString(msg);
}

/* _ring_stream_reads(flag=None): whether reads at the file position of a
 * stream go to the ring (see uring.h); returns the old setting.  Private,
 * for the tests. */
static PyObject *ring_stream_reads(PyObject *m, PyObject *args)
{
    PyObject *flag = Py_None, *old = lx_ring_stream_reads ? Py_True : Py_False;
    int on;
    if (!PyArg_ParseTuple(args, "|O:_ring_stream_reads", &flag))
        return NULL;
    if (flag != Py_None) {
        if ((on = PyObject_IsTrue(flag)) < 0)
            return NULL;
        lx_ring_stream_reads = on;
    }
    return Py_NewRef(old);
}

/* _ring_cold_opens(n=None): the score of slurp opens found uncached
 * (COLD_OPENS and more: opens go to the kernel's workers at once);
 * sets it when n is given (under the ring's lock: the ring thread writes
 * it too), returns the old one.  Private, for the tests. */
static PyObject *ring_cold_opens(PyObject *m, PyObject *args)
{
    int n = -1;
    unsigned old;
    if (!PyArg_ParseTuple(args, "|i:_ring_cold_opens", &n))
        return NULL;
    pthread_mutex_lock(&R.lock);
    old = R.cold_opens;
    if (n >= 0) {
        R.cold_opens = (unsigned)n;
        R.open_seq = 0;
    }
    pthread_mutex_unlock(&R.lock);
    return PyLong_FromUnsignedLong(old);
}

PyMethodDef lx_uring_module_methods[] = {
    {"_ring_cold_opens", ring_cold_opens, METH_VARARGS,
     "_ring_cold_opens(n=None)\n--\n\nPrivate (tests): the score of slurp opens whose name was not cached\n"
     "(from 16 on, opens skip the inline try); sets it to n if given; returns the old score."},
    {"_ring_stream_reads", ring_stream_reads, METH_VARARGS,
     "_ring_stream_reads(flag=None)\n--\n\nPrivate (tests): reads at the file position of a pipe or socket go to\n"
     "the ring too (True) or stay on threads (False, the default); returns the old setting."},
    {"_uring_reason", uring_reason, METH_VARARGS,
     "_uring_reason(errno, disabled, call='io_uring_setup')\n--\n\nPrivate (tests): the message a refused ring gets."},
    {"engine", (PyCFunction)engine, METH_NOARGS,
     "engine()\n--\n\n\"uring\" when an io_uring ring runs requests, else \"threads\"."},
    {"engine_info", (PyCFunction)engine_info, METH_NOARGS,
     "engine_info()\n--\n\nA dict: engine, ring_ops (operations sent to the ring), reason (why\n"
     "there is no ring: None when there is one), kernel, mode (LINUXAIO_ENGINE), and the ring's set-up."},
    {NULL}};
