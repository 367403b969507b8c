/* w8_uring_loop.c: W8's reference: open + read whole + close of every file
 * in a list, DEPTH files in flight, on one io_uring (raw syscalls), each
 * file a chain of three submissions (OPENAT, then READ of up to 64 KiB,
 * then CLOSE), submitted and reaped in batches by one thread.
 *
 *   cc -O2 -o w8_uring_loop w8_uring_loop.c
 *   ./w8_uring_loop LIST DEPTH     (LIST: one path per line)
 * Prints one JSON line: files, bytes, seconds, files_per_s. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BUF (64 * 1024)

static int ring_fd;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask, local_tail;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

static struct io_uring_sqe *sqe_get(void)
{
    unsigned i = local_tail++ & *sq_mask;
    sq_array[i] = i;
    memset(&sqes[i], 0, sizeof sqes[i]);
    return &sqes[i];
}

typedef struct {
    int stage, fd;
    char *buf;
} slot_t;

static char **paths;
static size_t npaths, next_path;
static long long nbytes, nfiles;

static int start(slot_t *s, unsigned idx)
{
    struct io_uring_sqe *e;
    if (next_path >= npaths)
        return 0;
    e = sqe_get();
    e->opcode = IORING_OP_OPENAT;
    e->fd = AT_FDCWD;
    e->addr = (uintptr_t)paths[next_path++];
    e->open_flags = O_RDONLY | O_CLOEXEC;
    e->user_data = idx;
    s->stage = 0;
    return 1;
}

int main(int argc, char **argv)
{
    struct io_uring_params p;
    unsigned depth, inflight = 0;
    slot_t *slots;
    FILE *f;
    char line[4096];
    size_t cap = 1024;
    struct timespec t0, t1;
    void *sq, *cq;

    if (argc != 3) {
        fprintf(stderr, "usage: %s LIST DEPTH\n", argv[0]);
        return 2;
    }
    depth = (unsigned)atoi(argv[2]);
    paths = malloc(cap * sizeof *paths);
    if (!(f = fopen(argv[1], "r")))
        return perror(argv[1]), 1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (npaths == cap)
            paths = realloc(paths, (cap *= 2) * sizeof *paths);
        paths[npaths++] = strdup(line);
    }
    fclose(f);

    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 4 * depth;
    if ((ring_fd = (int)syscall(__NR_io_uring_setup, 2 * depth, &p)) < 0)
        return perror("io_uring_setup"), 1;
    sq = mmap(0, p.sq_off.array + p.sq_entries * 4, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd,
              IORING_OFF_SQ_RING);
    cq = mmap(0, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_CQ_RING);
    sqes = mmap(0, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd,
                IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
        return perror("mmap"), 1;
    sq_tail = (unsigned *)((char *)sq + p.sq_off.tail);
    sq_mask = (unsigned *)((char *)sq + p.sq_off.ring_mask);
    sq_array = (unsigned *)((char *)sq + p.sq_off.array);
    cq_head = (unsigned *)((char *)cq + p.cq_off.head);
    cq_tail = (unsigned *)((char *)cq + p.cq_off.tail);
    cq_mask = (unsigned *)((char *)cq + p.cq_off.ring_mask);
    cqes = (struct io_uring_cqe *)((char *)cq + p.cq_off.cqes);
    local_tail = *sq_tail;

    slots = calloc(depth, sizeof *slots);
    for (unsigned i = 0; i < depth; i++)
        slots[i].buf = malloc(BUF);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < depth; i++)
        inflight += start(&slots[i], i);
    while (inflight) {
        unsigned head, tail, submit;
        __atomic_store_n(sq_tail, local_tail, __ATOMIC_RELEASE);
        submit = local_tail - *(unsigned *)((char *)sq + p.sq_off.head);
        if (syscall(__NR_io_uring_enter, ring_fd, submit, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0 && errno != EINTR)
            return perror("io_uring_enter"), 1;
        head = *cq_head;
        tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
        for (; head != tail; head++) {
            struct io_uring_cqe *c = &cqes[head & *cq_mask];
            unsigned idx = (unsigned)c->user_data;
            slot_t *s = &slots[idx];
            struct io_uring_sqe *e;
            if (c->res < 0) {
                fprintf(stderr, "stage %d: %s\n", s->stage, strerror(-c->res));
                return 1;
            }
            if (s->stage == 0) {
                s->fd = c->res;
                e = sqe_get();
                e->opcode = IORING_OP_READ;
                e->fd = s->fd;
                e->addr = (uintptr_t)s->buf;
                e->len = BUF;
                e->user_data = idx;
                s->stage = 1;
            } else if (s->stage == 1) {
                nbytes += c->res;
                e = sqe_get();
                e->opcode = IORING_OP_CLOSE;
                e->fd = s->fd;
                e->user_data = idx;
                s->stage = 2;
            } else {
                nfiles++;
                inflight--;
                inflight += start(s, idx);
            }
        }
        __atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    {
        double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("{\"files\": %lld, \"bytes\": %lld, \"seconds\": %.4f, \"files_per_s\": %.0f}\n", nfiles, nbytes,
               secs, nfiles / secs);
    }
    return 0;
}
