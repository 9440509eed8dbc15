/* The CPU backend: registers a forward and a backward for every op into a context. */
#ifndef HR_CPU_BACKEND_H
#define HR_CPU_BACKEND_H

#include "core/context.h"

void hr_cpu_register(hr_ctx *ctx);

#endif
