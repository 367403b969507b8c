/* trio_fast.h: an await under trio that completes inline, in C
 * (trio_fast.c); _loop.py hands it trio's two checkpoint halves and its
 * engine path. */
#ifndef LINUXAIO_TRIO_FAST_H
#define LINUXAIO_TRIO_FAST_H

#include "engine.h"

extern PyMethodDef lx_trio_module_methods[];
int lx_trio_init(void);

#endif
