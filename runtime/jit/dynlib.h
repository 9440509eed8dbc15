/* Opening a shared library of the CUDA toolkit or driver at run time (dlopen), so that one binary
 * builds without CUDA and uses it where it is installed. */
#ifndef HR_JIT_DYNLIB_H
#define HR_JIT_DYNLIB_H

#include <stddef.h>

/* Opens the first loadable of `names` (sonames, newest first). When the environment variable
 * `env_var` is set, only the path it names is tried. Otherwise each name is tried through the
 * dynamic loader's search path, then in $CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64
 * and /usr/local/cuda/lib. On success returns the handle and writes the file actually loaded to
 * `path`; on failure returns NULL and writes why to `err` (every name tried, and the loader's message
 * for the first). */
void *hr_dl_open(const char *env_var, const char *const *names, char *path, size_t path_size, char *err,
                 size_t err_size);

/* The address of `symbol`, or NULL with "LABEL has no symbol SYMBOL" in `err`. */
void *hr_dl_sym(void *handle, const char *label, const char *symbol, char *err, size_t err_size);

/* Loads symbol NAME into the function-pointer field FIELD of *LIB (POSIX's idiom for converting
 * dlsym's object pointer); on a missing symbol sets `rc` to -1. */
#define HR_DL_LOAD(rc, handle, label, lib, field, name, err, err_size)                                  \
    do {                                                                                                \
        void *sym_ = (rc) ? NULL : hr_dl_sym((handle), (label), (name), (err), (err_size));             \
        if (sym_) *(void **)(&(lib)->field) = sym_;                                                     \
        else (rc) = -1;                                                                                 \
    } while (0)

#endif
