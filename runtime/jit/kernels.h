/* The kernel templates this binary carries (kernel_src/, embedded at build time) and the kernels
 * each one instantiates. */
#ifndef HR_JIT_KERNELS_H
#define HR_JIT_KERNELS_H

#include <stddef.h>

/* A copy of kernel_src/NAME (NUL-terminated, the caller frees it): read from HYBRIDRT_KERNEL_SRC/NAME
 * when that variable names a folder, else the copy in the binary. NULL with err when there is no such
 * template or it cannot be read. */
char *hr_kernel_source(const char *name, size_t *size, char *err, size_t err_size);

/* The names of the headers (*.cuh) templates may include, in name order, at most `max`. Returns the
 * count. Their text comes from hr_kernel_source like any template. */
int hr_kernel_header_names(const char **names, int max);

/* One template and its instantiations. A name expression containing "%d" is instantiated once per
 * head size (32, 64, 128 or those asked for); the others once. */
typedef struct hr_kernel_template {
    const char *file;
    const char *const *name_expressions; /* NULL-terminated */
} hr_kernel_template;

extern const hr_kernel_template hr_kernel_templates[];
extern const int hr_kernel_template_count;

#endif
