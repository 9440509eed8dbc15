#define _GNU_SOURCE
#include "jit/dynlib.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The file behind a handle, as the loader resolved it. */
static void loaded_path(void *handle, const char *fallback, char *path, size_t path_size) {
    struct link_map *map = NULL;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && map->l_name[0])
        snprintf(path, path_size, "%s", map->l_name);
    else snprintf(path, path_size, "%s", fallback);
}

void *hr_dl_open(const char *env_var, const char *const *names, char *path, size_t path_size, char *err,
                 size_t err_size) {
    char first_error[512] = "";
    const char *forced = env_var ? getenv(env_var) : NULL;
    if (forced && forced[0]) {
        void *h = dlopen(forced, RTLD_NOW | RTLD_LOCAL);
        if (h) {
            loaded_path(h, forced, path, path_size);
            return h;
        }
        snprintf(err, err_size, "%s=%s cannot be loaded: %s", env_var, forced, dlerror());
        return NULL;
    }
    const char *dirs[] = {getenv("CUDA_HOME"), getenv("CUDA_PATH"), "/usr/local/cuda", NULL};
    const char *subdirs[] = {"lib64", "lib"};
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h && !first_error[0]) snprintf(first_error, sizeof first_error, "%s", dlerror());
        for (int d = 0; !h && d < 3; d++) {
            if (!dirs[d] || !dirs[d][0]) continue;
            for (int s = 0; !h && s < 2; s++) {
                char candidate[1024];
                snprintf(candidate, sizeof candidate, "%s/%s/%s", dirs[d], subdirs[s], names[i]);
                h = dlopen(candidate, RTLD_NOW | RTLD_LOCAL);
            }
        }
        if (h) {
            loaded_path(h, names[i], path, path_size);
            return h;
        }
    }
    size_t used = (size_t)snprintf(err, err_size, "none of");
    for (int i = 0; names[i] && used < err_size; i++)
        used += (size_t)snprintf(err + used, err_size - used, " %s", names[i]);
    if (used < err_size)
        snprintf(err + used, err_size - used, " could be loaded (%s)%s", first_error,
                 env_var ? "; set the library's path in " : "");
    if (env_var && strlen(err) + strlen(env_var) + 1 < err_size) strcat(err, env_var);
    return NULL;
}

void *hr_dl_sym(void *handle, const char *label, const char *symbol, char *err, size_t err_size) {
    void *p = dlsym(handle, symbol);
    if (!p) snprintf(err, err_size, "%s has no symbol %s (too old a version?)", label, symbol);
    return p;
}
