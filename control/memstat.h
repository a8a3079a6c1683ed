/* Allocator statistics of this process (jemalloc's mallctl when linked). */
#ifndef CONTROL_MEMSTAT_H
#define CONTROL_MEMSTAT_H

#include "cdproto.h"

void ctl_memstat(struct cd_memory *m);

#endif
