/* ops.c: the operation table (ops.def) and its checks.  The run functions
 * live in files by family: ops_misc.c, ops_paths.c, ops_data.c,
 * ops_dirs.c, ops_sync.c, ops_xattr.c, and wd.c for aio_wd (declared in
 * ops_run.h). */
#define _GNU_SOURCE
#include "ops_run.h"

#include <fcntl.h>   /* the preset flags in ops.def: AT_* */
#include <string.h>

/* ---- the table: ops.def, one row per operation ---- */

const lx_op lx_ops[LX_NOPS] = {
#define OP(id, aio, aio_args, os, os_args, flags, run, try_now, result, undo, prep, caps, doc) \
    [LX_OP_##id] = {#id, {{aio, aio_args}, {os, os_args}}, flags, run, try_now, result, undo, prep, caps, doc},
#include "ops.def"
#undef OP
};

int lx_op_index(const char *name, int *face)
{
    for (int i = 0; i < lx_nops; i++)
        for (int f = 0; f < LX_NFACES; f++)
            if (lx_ops[i].face[f].name && !strcmp(lx_ops[i].face[f].name, name)) {
                *face = f;
                return i;
            }
    return -1;
}

/* A face's letters must be ones args.c knows, in an order it can parse. */
static int check_letters(const lx_face *f)
{
    const char *a = f->args;
    int nu = 0, ng = 0;
    for (int i = 0; a[i]; i++) {
        const char *why = NULL;
        if (!strchr(LX_ARG_LETTERS, a[i]))
            why = "an unknown letter";
        else if ((a[i] == 'w' || a[i] == 'r') && a[i + 1] != 'd')
            why = "a buffer without its offset (d)";
        else if (a[i] == 'd' && (i == 0 || (a[i - 1] != 'w' && a[i - 1] != 'r')))
            why = "an offset (d) without its buffer";
        else if (a[i] == 'u' && ++nu > 2)
            why = "more than two times (u)";
        else if (a[i] == 'g' && ++ng > 2)
            why = "more than two ids (g)";
        if (why) {
            PyErr_Format(PyExc_SystemError, "linuxaio: operation %s, letters \"%s\": %s at %d",
                         f->name, a, why, i);
            return -1;
        }
    }
    return 0;
}

int lx_ops_init(void)
{
    for (int i = 0; i < lx_nops; i++) {
        if (!lx_ops[i].run || !lx_ops[i].result) {
            PyErr_Format(PyExc_SystemError, "linuxaio: operation %d has no run or result function", i);
            return -1;
        }
        for (int f = 0; f < LX_NFACES; f++)
            if (lx_ops[i].face[f].name && check_letters(&lx_ops[i].face[f]) < 0)
                return -1;
    }
    return lx_results_init();
}
