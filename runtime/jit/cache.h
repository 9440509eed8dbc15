/* The on-disk kernel cache: compiled images (cubin or PTX) keyed by a SHA-256 of everything that
 * decides their bytes, so a process that finds its kernels there starts with no NVRTC call at all.
 *
 * Layout (docs/cache.md): DIR/v1/<key[0:2]>/<key>.bin (the entry), <key>.json (a readable manifest),
 * <key>.lock (the advisory lock taken while compiling a miss). DIR is HYBRIDRT_CACHE_DIR, else
 * $XDG_CACHE_HOME/hybridrt, else ~/.cache/hybridrt.
 *
 * Safe to share: entries are written to a unique temp file and renamed; each carries a magic, the
 * format version and a SHA-256 of its contents, checked on every load (a bad entry is reported,
 * deleted and rebuilt); a miss is compiled under an exclusive lock and re-checked after taking it,
 * so concurrent processes compile each kernel once; a read-only directory still works (compiles in
 * memory, and says so once). Cleanup failures are never fatal. */
#ifndef HR_JIT_CACHE_H
#define HR_JIT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "jit/nvrtc.h"

#define HR_CACHE_FORMAT 1

/* One kernel to build. */
typedef struct hr_kernel_spec {
    const char *template_file;   /* a file of kernel_src/, e.g. "fill.cu" */
    const char *name_expression; /* "hr_fill<float>" */
    const char *target;          /* "sm_90", "sm_90a" (cubin) or "compute_90" (PTX) */
    const char *const *options;  /* extra NVRTC options, any order (the key sorts them) */
    int n_options;
} hr_kernel_spec;

/* Compiles one kernel in memory, past the cache: its template and the headers of kernel_src/ through
 * nvrtc. Returns 0, or -1 with err (NVRTC's log in out->log when the compile itself failed). */
int hr_kernel_compile(const hr_nvrtc *nvrtc, const hr_kernel_spec *spec, hr_nvrtc_output *out, char *err,
                      size_t err_size);

typedef struct hr_kernel_cache {
    char dir[1024];              /* DIR/v1 */
    bool writable;               /* false: compile in memory only */
    const hr_nvrtc *nvrtc;       /* compiles misses; NULL: lookups only */
    char nvrtc_id[256];          /* NVRTC's version and library file, part of every key */
    int64_t max_bytes;           /* size cap (HYBRIDRT_CACHE_MAX_BYTES, default 2 GiB); 0: none */
    int hits, compiled, rebuilt, evicted; /* this process's counts */
    char warning[1200];          /* a non-fatal problem to report once (read-only dir, a bad entry) */
} hr_kernel_cache;

/* dir: NULL for the default. nvrtc: the library compiling misses, or NULL (then a miss is an error).
 * Creates the directory when it can. Returns 0, or -1 with err (no usable path at all). */
int hr_kernel_cache_open(hr_kernel_cache *c, const char *dir, const hr_nvrtc *nvrtc, char *err, size_t err_size);

/* The default cache directory (without the v1 suffix) into buf. */
void hr_kernel_cache_default_dir(char *buf, size_t size);

/* The key of a kernel: 64 hex digits. Needs the template's source (and its headers'). */
int hr_kernel_cache_key(const hr_kernel_cache *c, const hr_kernel_spec *spec, char key[65], char *err,
                        size_t err_size);

typedef enum { HR_CACHE_HIT, HR_CACHE_COMPILED, HR_CACHE_REBUILT } hr_cache_source;

/* The compiled kernel: from the cache, or compiled (and stored) on a miss. out->log is empty on a
 * hit. Returns 0, or -1 with err (the compile failed: NVRTC's log in err). When something was wrong
 * but recovered (a corrupt entry rebuilt, a read-only directory), c->warning says what. */
int hr_kernel_cache_get(hr_kernel_cache *c, const hr_kernel_spec *spec, hr_nvrtc_output *out, hr_cache_source *how,
                        char *err, size_t err_size);

/* Deletes the entry of spec after something outside the cache rejected it (the driver could not load
 * the image: an invalid image, a PTX version it does not know), saying why in c->warning; the next get
 * rebuilds it. Returns 0, or -1 when its path cannot be formed. */
int hr_kernel_cache_discard(hr_kernel_cache *c, const hr_kernel_spec *spec, const char *why);

/* Checks one entry file (magic, version, sizes, checksum). Returns 0, or -1 with what is wrong. */
int hr_kernel_cache_check_entry(const char *path, char *err, size_t err_size);

/* Walks every entry: calls fn(path of the .bin, its size in bytes, its manifest path, arg) for each;
 * fn returns non-zero to stop. Returns the number of entries visited, or -1 when the directory
 * cannot be read. */
int hr_kernel_cache_each(const hr_kernel_cache *c, int (*fn)(const char *bin, int64_t bytes, const char *manifest,
                                                            void *arg),
                         void *arg);

/* A temporary entry file whose writer cannot be asked (another machine's, in a shared cache) is
 * taken for a dead writer's after this long untouched: a write takes milliseconds. */
#define HR_CACHE_STALE_TEMP_S 3600

/* Deletes the temporary files (KEY.bin.tmp.*, KEY.json.tmp.*) that writers killed mid-write left:
 * this machine's whose process is gone, others once HR_CACHE_STALE_TEMP_S old. Entries are never
 * touched. Returns the number deleted (their bytes in *bytes, when given), or -1 when the
 * directory cannot be read. */
int hr_kernel_cache_sweep_temps(const hr_kernel_cache *c, int64_t *bytes);

/* Deletes least-recently-used entries (by modification time: a hit refreshes it) until the cache
 * holds at most max_bytes. Returns the number deleted, or -1 when the directory cannot be read. */
int hr_kernel_cache_evict(hr_kernel_cache *c, int64_t max_bytes);

/* Writes every valid entry (and its manifest) to a tar archive at `path`, atomically. Returns the
 * number of entries written, or -1 with err. */
int hr_kernel_cache_export(const hr_kernel_cache *c, const char *path, char *err, size_t err_size);

/* Installs the entries of an archive written by hr_kernel_cache_export: each is verified first; a
 * bad or foreign member is skipped and counted in *skipped (its name in err when err is the only
 * problem); entries already present are kept. Returns the number installed, or -1 with err (no
 * archive, not a tar file, a read-only cache). */
int hr_kernel_cache_import(hr_kernel_cache *c, const char *path, int *skipped, char *err, size_t err_size);

#endif
