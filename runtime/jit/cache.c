#define _GNU_SOURCE
#include "jit/cache.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "io/fileio.h"
#include "jit/kernels.h"
#include "jit/sha256.h"
#include "jit/tar.h"

#define MAGIC "HRKCACHE"
#define HEADER_SIZE 60 /* magic 8, format u32, kind u32, image size u64, name length u32, sha256 32 */
#define MAX_HEADERS 32

/* ---- small file helpers ---- */

/* printf into dst; -1 when it did not fit (a path must never be used cut short). */
__attribute__((format(printf, 3, 4))) static int format_to(char *dst, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* mkdir -p; 0 when the directory exists afterwards. */
static int make_dirs(const char *path) {
    char buf[1024];
    if (format_to(buf, sizeof buf, "%s", path)) return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

#define MAX_ENTRY_BYTES ((off_t)1 << 30) /* far above any kernel image: a bigger "entry" is not one */

/* The whole file, or NULL (errno set). Only a regular file of a plausible size is read: anything else
 * in an entry's place (a FIFO would block the reader forever, a device would never end, a link may
 * lead anywhere) is opened without blocking or following and reported as EINVAL, so callers treat it
 * as a bad entry (cache verify deletes it, a load rebuilds it). */
static uint8_t *read_all(const char *path, size_t *size) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP) errno = EINVAL; /* a symbolic link */
        return NULL;
    }
    struct stat st;
    uint8_t *data = NULL;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > MAX_ENTRY_BYTES) {
        close(fd);
        errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    data = malloc(n + 1);
    while (data && got < n) {
        ssize_t r = read(fd, data + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { /* shrunk under us, or an I/O error */
            free(data);
            data = NULL;
            errno = r < 0 ? errno : EIO;
            break;
        }
        got += (size_t)r;
    }
    int e = errno;
    close(fd);
    errno = e;
    if (data) *size = n;
    return data;
}

/* This machine's name as temporary files carry it: no '.', '/' or '@' (they separate the fields). */
static void host_name(char *buf, size_t size) {
    if (gethostname(buf, size) != 0) snprintf(buf, size, "unknown");
    buf[size - 1] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '.' || *p == '/' || *p == '@') *p = '_';
    if (!buf[0]) snprintf(buf, size, "unknown");
}

/* Writes bytes to a unique temp file beside `path` (PATH.tmp.PID@HOST.RANDOM: who wrote it, so that a
 * sweep can tell a dead writer's leftover from a live write), syncs it and renames it over `path`.
 * (io/fileio's atomic writer does the same but reports through a runtime context, which the cache
 * has not.) */
static int write_atomic(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    char tmp[1200], host[64];
    static const char digits[] = "0123456789abcdef";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t r = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&ts;
    char suffix[17];
    for (int i = 0; i < 16; i++) suffix[i] = digits[(r >> (4 * i)) & 15];
    suffix[16] = '\0';
    host_name(host, sizeof host);
    if (format_to(tmp, sizeof tmp, "%s.tmp.%d@%s.%s", path, (int)getpid(), host, suffix)) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) return -1;
    int ok = (na == 0 || write(fd, a, na) == (ssize_t)na) && (nb == 0 || write(fd, b, nb) == (ssize_t)nb);
    ok = ok && fsync(fd) == 0; /* the bytes are on disk before the name points at them */
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp); /* best effort */
        return -1;
    }
    return 0;
}

/* ---- directory and identity ---- */

void hr_kernel_cache_default_dir(char *buf, size_t size) {
    const char *dir = getenv("HYBRIDRT_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (dir && dir[0]) snprintf(buf, size, "%s", dir);
    else if (xdg && xdg[0]) snprintf(buf, size, "%s/hybridrt", xdg);
    else if (home && home[0]) snprintf(buf, size, "%s/.cache/hybridrt", home);
    else snprintf(buf, size, "/tmp/hybridrt-cache-%d", (int)getuid());
}

int hr_kernel_cache_open(hr_kernel_cache *c, const char *dir, const hr_nvrtc *nvrtc, char *err, size_t err_size) {
    memset(c, 0, sizeof *c);
    char base[900];
    if (dir && dir[0]) snprintf(base, sizeof base, "%s", dir);
    else hr_kernel_cache_default_dir(base, sizeof base);
    if (!base[0]) {
        snprintf(err, err_size, "kernel cache: no directory");
        return -1;
    }
    if (format_to(c->dir, sizeof c->dir, "%s/v%d", base, HR_CACHE_FORMAT)) {
        snprintf(err, err_size, "kernel cache: the directory name is too long");
        return -1;
    }
    c->nvrtc = nvrtc;
    c->max_bytes = (int64_t)2 << 30;
    const char *cap = getenv("HYBRIDRT_CACHE_MAX_BYTES");
    if (cap && cap[0]) {
        char *end = NULL;
        long long v = strtoll(cap, &end, 10);
        if (end == cap || *end || v < 0) {
            snprintf(err, err_size, "HYBRIDRT_CACHE_MAX_BYTES=%s is not a byte count (0: no limit)", cap);
            return -1;
        }
        c->max_bytes = v;
    }
    c->writable = make_dirs(c->dir) == 0 && access(c->dir, W_OK) == 0;
    if (!c->writable)
        format_to(c->warning, sizeof c->warning,
                  "kernel cache %s is not writable (%s): kernels are compiled in memory and not kept", c->dir,
                  strerror(errno ? errno : EACCES));
    if (nvrtc) {
        /* nvrtcVersion gives major.minor only: the resolved file's name and size stand for the build
         * (two builds of one release differ in size; a cut-short name still identifies the library). */
        char real[PATH_MAX];
        const char *file = realpath(nvrtc->path, real) ? real : nvrtc->path;
        const char *slash = strrchr(file, '/');
        struct stat st;
        long long bytes = stat(file, &st) == 0 ? (long long)st.st_size : -1;
        format_to(c->nvrtc_id, sizeof c->nvrtc_id, "nvrtc %d.%d %s %lld bytes", nvrtc->major, nvrtc->minor,
                  slash ? slash + 1 : file, bytes);
    }
    return 0;
}

/* ---- keys ---- */

static void hash_field(hr_sha256 *s, const char *data, size_t size) {
    uint8_t len[8];
    hr_put_le64(len, size);
    hr_sha256_update(s, len, 8);
    hr_sha256_update(s, data, size);
}
static void hash_string(hr_sha256 *s, const char *str) { hash_field(s, str ? str : "", str ? strlen(str) : 0); }

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_ptx_target(const char *target) { return strncmp(target, "compute_", 8) == 0; }

int hr_kernel_cache_key(const hr_kernel_cache *c, const hr_kernel_spec *spec, char key[65], char *err,
                        size_t err_size) {
    if (!c->nvrtc_id[0]) {
        snprintf(err, err_size, "kernel cache: a key needs NVRTC's version (no NVRTC was given)");
        return -1;
    }
    size_t size = 0;
    char *src = hr_kernel_source(spec->template_file, &size, err, err_size);
    if (!src) return -1;
    hr_sha256 s;
    hr_sha256_init(&s);
    char format[32];
    snprintf(format, sizeof format, "hybridrt-kernel-cache/%d", HR_CACHE_FORMAT);
    hash_string(&s, format);
    hash_string(&s, spec->template_file);
    hash_field(&s, src, size);
    free(src);
    const char *headers[MAX_HEADERS];
    int n_headers = hr_kernel_header_names(headers, MAX_HEADERS);
    for (int i = 0; i < n_headers; i++) {
        char *h = hr_kernel_source(headers[i], &size, err, err_size);
        if (!h) return -1;
        hash_string(&s, headers[i]);
        hash_field(&s, h, size);
        free(h);
    }
    hash_string(&s, spec->name_expression);
    const char **sorted = malloc(sizeof(char *) * (size_t)(spec->n_options + 1));
    if (!sorted) {
        snprintf(err, err_size, "kernel cache: out of memory");
        return -1;
    }
    for (int i = 0; i < spec->n_options; i++) sorted[i] = spec->options[i];
    qsort(sorted, (size_t)spec->n_options, sizeof *sorted, compare_strings);
    for (int i = 0; i < spec->n_options; i++) hash_string(&s, sorted[i]);
    free(sorted);
    hash_string(&s, "--");
    hash_string(&s, spec->target);
    hash_string(&s, is_ptx_target(spec->target) ? "ptx" : "cubin");
    hash_string(&s, c->nvrtc_id);
    uint8_t digest[32];
    hr_sha256_final(&s, digest);
    hr_sha256_to_hex(digest, key);
    return 0;
}

/* ---- entries ---- */

static int entry_paths(const hr_kernel_cache *c, const char *key, char *sub, char *bin, char *json, char *lock,
                       size_t size) {
    return format_to(sub, size, "%s/%.2s", c->dir, key) || format_to(bin, size, "%s/%s.bin", sub, key) ||
                   format_to(json, size, "%s/%s.json", sub, key) || format_to(lock, size, "%s/%s.lock", sub, key)
               ? -1
               : 0;
}

/* Parses and verifies an entry's bytes; on success fills out (copies). */
static int parse_entry(const uint8_t *data, size_t size, hr_nvrtc_output *out, char *err, size_t err_size) {
    if (size < HEADER_SIZE || memcmp(data, MAGIC, 8) != 0) {
        snprintf(err, err_size, size < HEADER_SIZE ? "truncated (%zu bytes)" : "not a kernel cache entry (bad magic)",
                 size);
        return -1;
    }
    uint32_t format = hr_get_le32(data + 8), kind = hr_get_le32(data + 12), name_len = hr_get_le32(data + 24);
    uint64_t image_size = hr_get_le64(data + 16);
    if (format != HR_CACHE_FORMAT) {
        snprintf(err, err_size, "format version %u, this hybridrt reads %d", format, HR_CACHE_FORMAT);
        return -1;
    }
    /* the sizes against what follows the header, by subtraction: a sum of the fields could wrap around
     * 2^64 and pass (an image "size" of 2^64 - 1 would then be copied) */
    if (kind > 1 || name_len == 0 || image_size == 0 || name_len > size - HEADER_SIZE ||
        image_size != size - HEADER_SIZE - name_len) {
        snprintf(err, err_size, "truncated or inconsistent sizes (file %zu bytes, name %u, image %llu)", size, name_len,
                 (unsigned long long)image_size);
        return -1;
    }
    uint8_t digest[32];
    hr_sha256 s;
    hr_sha256_init(&s);
    hr_sha256_update(&s, data + HEADER_SIZE, size - HEADER_SIZE);
    hr_sha256_final(&s, digest);
    if (memcmp(digest, data + 28, 32) != 0) {
        snprintf(err, err_size, "checksum mismatch (corrupt)");
        return -1;
    }
    if (out) {
        memset(out, 0, sizeof *out);
        out->lowered_name = malloc(name_len + 1);
        out->image = malloc(image_size + 1);
        out->log = calloc(1, 1);
        if (!out->lowered_name || !out->image || !out->log) {
            hr_nvrtc_output_free(out);
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        memcpy(out->lowered_name, data + HEADER_SIZE, name_len);
        out->lowered_name[name_len] = '\0';
        memcpy(out->image, data + HEADER_SIZE + name_len, image_size);
        out->image[image_size] = '\0';
        out->size = image_size;
        out->is_ptx = kind == 1;
    }
    return 0;
}

int hr_kernel_cache_check_entry(const char *path, char *err, size_t err_size) {
    size_t size = 0;
    uint8_t *data = read_all(path, &size);
    if (!data) {
        snprintf(err, err_size, "cannot read: %s", strerror(errno));
        return -1;
    }
    int rc = parse_entry(data, size, NULL, err, err_size);
    free(data);
    return rc;
}

/* 1: loaded; 0: no entry; -1: an entry is there but bad (err says why). */
static int load_entry(const char *bin, hr_nvrtc_output *out, char *err, size_t err_size) {
    size_t size = 0;
    uint8_t *data = read_all(bin, &size);
    if (!data) {
        if (errno == ENOENT || errno == ENOTDIR) return 0;
        snprintf(err, err_size, "cannot read: %s", strerror(errno));
        return -1;
    }
    int rc = parse_entry(data, size, out, err, err_size);
    free(data);
    return rc == 0 ? 1 : -1;
}

static int store_entry(const char *bin, const char *json, const hr_kernel_spec *spec, const hr_kernel_cache *c,
                       const hr_nvrtc_output *out) {
    size_t name_len = strlen(out->lowered_name);
    size_t body = name_len + out->size;
    uint8_t *payload = malloc(body);
    if (!payload) return -1;
    memcpy(payload, out->lowered_name, name_len);
    memcpy(payload + name_len, out->image, out->size);
    uint8_t header[HEADER_SIZE];
    memcpy(header, MAGIC, 8);
    hr_put_le32(header + 8, HR_CACHE_FORMAT);
    hr_put_le32(header + 12, out->is_ptx ? 1 : 0);
    hr_put_le64(header + 16, out->size);
    hr_put_le32(header + 24, (uint32_t)name_len);
    hr_sha256 s;
    hr_sha256_init(&s);
    hr_sha256_update(&s, payload, body);
    hr_sha256_final(&s, header + 28);
    int rc = write_atomic(bin, header, HEADER_SIZE, payload, body);
    free(payload);
    if (rc) return -1;
    /* The manifest is for people and `cache list`; a failure to write it is not an error. */
    cJSON *m = cJSON_CreateObject();
    if (m) {
        cJSON_AddStringToObject(m, "template", spec->template_file);
        cJSON_AddStringToObject(m, "name_expression", spec->name_expression);
        cJSON_AddStringToObject(m, "lowered_name", out->lowered_name);
        cJSON_AddStringToObject(m, "target", spec->target);
        cJSON_AddStringToObject(m, "kind", out->is_ptx ? "ptx" : "cubin");
        cJSON *opts = cJSON_AddArrayToObject(m, "options");
        for (int i = 0; opts && i < spec->n_options; i++) cJSON_AddItemToArray(opts, cJSON_CreateString(spec->options[i]));
        cJSON_AddStringToObject(m, "nvrtc", c->nvrtc_id);
        cJSON_AddNumberToObject(m, "bytes", (double)out->size);
        cJSON_AddNumberToObject(m, "created", (double)time(NULL));
        char *text = cJSON_Print(m);
        if (text) write_atomic(json, text, strlen(text), "\n", 1);
        free(text);
        cJSON_Delete(m);
    }
    return 0;
}

int hr_kernel_compile(const hr_nvrtc *nvrtc, const hr_kernel_spec *spec, hr_nvrtc_output *out, char *err,
                      size_t err_size) {
    memset(out, 0, sizeof *out);
    size_t size = 0;
    char *src = hr_kernel_source(spec->template_file, &size, err, err_size);
    if (!src) return -1;
    const char *header_names[MAX_HEADERS];
    char *header_sources[MAX_HEADERS];
    int n_headers = hr_kernel_header_names(header_names, MAX_HEADERS), loaded = 0, rc = 0;
    for (; loaded < n_headers; loaded++)
        if (!(header_sources[loaded] = hr_kernel_source(header_names[loaded], &size, err, err_size))) {
            rc = -1;
            break;
        }
    if (!rc) {
        hr_nvrtc_job job = {.src = src, .src_name = spec->template_file, .name_expression = spec->name_expression,
                            .target = spec->target, .options = spec->options, .n_options = spec->n_options,
                            .header_sources = (const char *const *)header_sources, .header_names = header_names,
                            .n_headers = n_headers};
        rc = hr_nvrtc_compile(nvrtc, &job, out, err, err_size);
    }
    for (int i = 0; i < loaded; i++) free(header_sources[i]);
    free(src);
    return rc;
}

int hr_kernel_cache_get(hr_kernel_cache *c, const hr_kernel_spec *spec, hr_nvrtc_output *out, hr_cache_source *how,
                        char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    char key[65];
    if (hr_kernel_cache_key(c, spec, key, err, err_size)) return -1;
    char sub[1200], bin[1200], json[1200], lock_path[1200], why[512];
    if (entry_paths(c, key, sub, bin, json, lock_path, sizeof bin)) {
        snprintf(err, err_size, "kernel cache: the path of %s is too long", c->dir);
        return -1;
    }
    bool was_bad = false;
    int found = load_entry(bin, out, why, sizeof why);
    if (found == 1) {
        utime(bin, NULL); /* most recently used, for eviction; failing is harmless */
        c->hits++;
        *how = HR_CACHE_HIT;
        return 0;
    }
    if (found < 0) {
        was_bad = true;
        format_to(c->warning, sizeof c->warning, "kernel cache entry %s (%s, %s) was bad: %s; deleted, rebuilding", bin,
                  spec->name_expression, spec->target, why);
        unlink(bin);
    }
    if (!c->nvrtc) {
        snprintf(err, err_size, "%s for %s is not in the kernel cache %s and NVRTC is not available to compile it",
                 spec->name_expression, spec->target, c->dir);
        return -1;
    }
    int lock_fd = -1;
    if (c->writable && make_dirs(sub) == 0) {
        lock_fd = open(lock_path, O_RDWR | O_CREAT, 0666);
        if (lock_fd >= 0 && flock(lock_fd, LOCK_EX) != 0) {
            close(lock_fd);
            lock_fd = -1;
        }
        /* Another process may have compiled it while this one waited. */
        if (load_entry(bin, out, why, sizeof why) == 1) {
            if (lock_fd >= 0) close(lock_fd);
            c->hits++;
            *how = HR_CACHE_HIT;
            return 0;
        }
    }
    int rc = hr_kernel_compile(c->nvrtc, spec, out, err, err_size);
    if (rc == 0 && c->writable && store_entry(bin, json, spec, c, out) != 0)
        format_to(c->warning, sizeof c->warning, "kernel cache: could not store %s (%s); the kernel is used from memory",
                  bin, strerror(errno));
    if (lock_fd >= 0) close(lock_fd); /* releases the lock; the lock file stays (removing it would race) */
    if (rc) return -1;
    if (c->writable && c->max_bytes > 0) {
        int n = hr_kernel_cache_evict(c, c->max_bytes);
        if (n > 0) c->evicted += n;
    }
    if (was_bad) c->rebuilt++;
    else c->compiled++;
    *how = was_bad ? HR_CACHE_REBUILT : HR_CACHE_COMPILED;
    return 0;
}

int hr_kernel_cache_discard(hr_kernel_cache *c, const hr_kernel_spec *spec, const char *why) {
    char key[65], err[256], sub[1200], bin[1200], json[1200], lock_path[1200];
    if (hr_kernel_cache_key(c, spec, key, err, sizeof err) ||
        entry_paths(c, key, sub, bin, json, lock_path, sizeof bin))
        return -1;
    format_to(c->warning, sizeof c->warning, "kernel cache entry %s (%s, %s) was rejected: %s; deleted, rebuilding",
              bin, spec->name_expression, spec->target, why);
    unlink(bin); /* failing is harmless: the rebuilt entry replaces it by rename */
    return 0;
}

int hr_kernel_cache_each(const hr_kernel_cache *c,
                         int (*fn)(const char *bin, int64_t bytes, const char *manifest, void *arg), void *arg) {
    DIR *top = opendir(c->dir);
    if (!top) return errno == ENOENT ? 0 : -1;
    int count = 0, stop = 0;
    for (struct dirent *d; !stop && (d = readdir(top));) {
        if (strlen(d->d_name) != 2 || d->d_name[0] == '.') continue;
        char sub[1200];
        if (format_to(sub, sizeof sub, "%s/%s", c->dir, d->d_name)) continue;
        DIR *dir = opendir(sub);
        if (!dir) continue;
        for (struct dirent *e; !stop && (e = readdir(dir));) {
            size_t n = strlen(e->d_name);
            if (n != 68 || strcmp(e->d_name + 64, ".bin") != 0) continue;
            char bin[1300], json[1300];
            if (format_to(bin, sizeof bin, "%s/%s", sub, e->d_name) ||
                format_to(json, sizeof json, "%s/%.64s.json", sub, e->d_name))
                continue;
            struct stat st;
            if (stat(bin, &st) != 0) continue;
            count++;
            stop = fn(bin, (int64_t)st.st_size, json, arg);
        }
        closedir(dir);
    }
    closedir(top);
    return count;
}

/* ---- temporary files of writers that died ---- */

/* Whether the temporary file `name` (in a cache subdirectory, last modified `mtime`) was left by a
 * writer that is gone: one of this machine whose process no longer exists, or, for another machine's
 * (a shared cache) or an older name without the writer, one untouched for HR_CACHE_STALE_TEMP_S. */
static bool left_by_dead_writer(const char *name, time_t mtime, const char *host, time_t now) {
    const char *t = strstr(name, ".tmp.");
    if (!t) return false;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    size_t host_len = strlen(host);
    if (pid > 0 && *end == '@' && strncmp(end + 1, host, host_len) == 0 && end[1 + host_len] == '.')
        return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
    return now - mtime > HR_CACHE_STALE_TEMP_S;
}

int hr_kernel_cache_sweep_temps(const hr_kernel_cache *c, int64_t *bytes) {
    if (bytes) *bytes = 0;
    DIR *top = opendir(c->dir);
    if (!top) return errno == ENOENT ? 0 : -1;
    char host[64];
    host_name(host, sizeof host);
    time_t now = time(NULL);
    int removed = 0;
    for (struct dirent *d; (d = readdir(top));) {
        if (strlen(d->d_name) != 2 || d->d_name[0] == '.') continue;
        char sub[1200];
        if (format_to(sub, sizeof sub, "%s/%s", c->dir, d->d_name)) continue;
        DIR *dir = opendir(sub);
        if (!dir) continue;
        for (struct dirent *e; (e = readdir(dir));) {
            /* only what write_atomic makes: KEY.bin.tmp.* and KEY.json.tmp.* */
            if (strlen(e->d_name) < 64 + 9 || !strstr(e->d_name + 64, ".tmp.")) continue;
            char path[1300];
            struct stat st;
            if (format_to(path, sizeof path, "%s/%s", sub, e->d_name) || lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            if (!left_by_dead_writer(e->d_name, st.st_mtime, host, now) || unlink(path) != 0) continue;
            removed++;
            if (bytes) *bytes += (int64_t)st.st_size;
        }
        closedir(dir);
    }
    closedir(top);
    return removed;
}

/* ---- eviction ---- */

typedef struct {
    char path[1300];
    int64_t bytes;
    struct timespec used;
} lru_item;

typedef struct {
    lru_item *items;
    int n, cap;
    int64_t total;
} lru_list;

static int collect(const char *bin, int64_t bytes, const char *manifest, void *arg) {
    (void)manifest;
    lru_list *l = arg;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        lru_item *grown = realloc(l->items, sizeof *grown * (size_t)cap);
        if (!grown) return 1;
        l->items = grown;
        l->cap = cap;
    }
    struct stat st;
    if (stat(bin, &st) != 0) return 0;
    lru_item *it = &l->items[l->n++];
    snprintf(it->path, sizeof it->path, "%s", bin);
    it->bytes = bytes;
    it->used = st.st_mtim;
    l->total += bytes;
    return 0;
}

static int older_first(const void *a, const void *b) {
    const lru_item *x = a, *y = b;
    if (x->used.tv_sec != y->used.tv_sec) return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
    if (x->used.tv_nsec != y->used.tv_nsec) return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
    return strcmp(x->path, y->path);
}

int hr_kernel_cache_evict(hr_kernel_cache *c, int64_t max_bytes) {
    lru_list l = {0};
    if (hr_kernel_cache_each(c, collect, &l) < 0) {
        free(l.items);
        return -1;
    }
    int removed = 0;
    if (l.total > max_bytes) {
        qsort(l.items, (size_t)l.n, sizeof *l.items, older_first);
        for (int i = 0; i < l.n && l.total > max_bytes; i++) {
            if (unlink(l.items[i].path) != 0) continue; /* another process may have removed it */
            l.total -= l.items[i].bytes;
            removed++;
            size_t n = strlen(l.items[i].path);
            if (n > 4 && n + 1 < sizeof l.items[i].path) { /* X.bin -> X.json, one byte longer */
                strcpy(l.items[i].path + n - 4, ".json");
                unlink(l.items[i].path);
            }
        }
    }
    free(l.items);
    return removed;
}

/* ---- export / import ---- */

#define ARCHIVE_ROOT "hybridrt-kernels-v1"

typedef struct {
    FILE *f;
    int written, failed;
} export_state;

static int export_one(const char *bin, int64_t bytes, const char *manifest, void *arg) {
    (void)bytes;
    export_state *s = arg;
    size_t size = 0, msize = 0;
    uint8_t *data = read_all(bin, &size);
    char why[256], name[128];
    if (!data || parse_entry(data, size, NULL, why, sizeof why) != 0) { /* never ship a bad entry */
        free(data);
        return 0;
    }
    const char *file = strrchr(bin, '/');
    file = file ? file + 1 : bin; /* <key>.bin */
    snprintf(name, sizeof name, "%s/%.2s/%.68s", ARCHIVE_ROOT, file, file);
    struct stat st;
    int64_t mtime = stat(bin, &st) == 0 ? (int64_t)st.st_mtime : 0;
    if (hr_tar_add(s->f, name, data, size, mtime) != 0) s->failed = 1;
    free(data);
    uint8_t *m = read_all(manifest, &msize);
    if (m) {
        snprintf(name, sizeof name, "%s/%.2s/%.64s.json", ARCHIVE_ROOT, file, file);
        if (hr_tar_add(s->f, name, m, msize, mtime) != 0) s->failed = 1;
        free(m);
    }
    s->written++;
    return s->failed;
}

int hr_kernel_cache_export(const hr_kernel_cache *c, const char *path, char *err, size_t err_size) {
    char tmp[1100];
    if (format_to(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid())) {
        snprintf(err, err_size, "export: the path is too long");
        return -1;
    }
    export_state s = {.f = fopen(tmp, "wb")};
    if (!s.f) {
        snprintf(err, err_size, "export: cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    int n = hr_kernel_cache_each(c, export_one, &s);
    int ok = n >= 0 && !s.failed && hr_tar_finish(s.f) == 0;
    ok = fclose(s.f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, err_size, "export: writing %s failed: %s", path, n < 0 ? "cannot read the cache" : strerror(errno));
        unlink(tmp);
        return -1;
    }
    return s.written;
}

typedef struct {
    hr_kernel_cache *c;
    int installed, skipped, kept;
    char last_bin_key[65]; /* the key of the last entry installed or kept: its manifest may follow */
    char *err;
    size_t err_size;
} import_state;

static bool is_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static int import_one(const char *name, const void *data, size_t size, void *arg) {
    import_state *s = arg;
    /* Only ARCHIVE_ROOT/<kk>/<key>.bin|.json, with kk the key's first two digits: nothing else can be
     * written, so a crafted archive cannot reach outside the cache. */
    size_t root = strlen(ARCHIVE_ROOT), n = strlen(name);
    bool is_bin = n == root + 4 + 68 && strcmp(name + n - 4, ".bin") == 0;
    bool is_json = n == root + 4 + 69 && strcmp(name + n - 5, ".json") == 0;
    const char *sub = (is_bin || is_json) ? name + root + 1 : NULL, *key = sub ? sub + 3 : NULL;
    if (!sub || strncmp(name, ARCHIVE_ROOT "/", root + 1) != 0 || sub[2] != '/' || !is_hex(key, 64) ||
        memcmp(sub, key, 2) != 0) {
        s->skipped++;
        snprintf(s->err, s->err_size, "skipped %s: not a kernel cache member", name);
        return 0;
    }
    char dir[1200], path[1300], why[256];
    if (format_to(dir, sizeof dir, "%s/%.2s", s->c->dir, key) ||
        format_to(path, sizeof path, "%s/%.64s%s", dir, key, is_bin ? ".bin" : ".json"))
        return 1;
    if (is_json) {
        if (strncmp(s->last_bin_key, key, 64) == 0 && write_atomic(path, data, size, NULL, 0) != 0) s->skipped++;
        return 0;
    }
    s->last_bin_key[0] = '\0';
    if (parse_entry(data, size, NULL, why, sizeof why) != 0) {
        s->skipped++;
        snprintf(s->err, s->err_size, "skipped %s: %s", name, why);
        return 0;
    }
    hr_nvrtc_output existing;
    if (load_entry(path, &existing, why, sizeof why) == 1) { /* a valid entry is already there */
        hr_nvrtc_output_free(&existing);
        s->kept++;
        return 0;
    }
    if (make_dirs(dir) != 0 || write_atomic(path, data, size, NULL, 0) != 0) {
        s->skipped++;
        snprintf(s->err, s->err_size, "could not write %s: %s", path, strerror(errno));
        return 0;
    }
    memcpy(s->last_bin_key, key, 64);
    s->last_bin_key[64] = '\0';
    s->installed++;
    return 0;
}

int hr_kernel_cache_import(hr_kernel_cache *c, const char *path, int *skipped, char *err, size_t err_size) {
    *skipped = 0;
    if (!c->writable) {
        snprintf(err, err_size, "import: the cache %s is not writable", c->dir);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "import: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char note[512] = "";
    import_state s = {.c = c, .err = note, .err_size = sizeof note};
    char why[512];
    int n = hr_tar_each(f, import_one, &s, why, sizeof why);
    fclose(f);
    if (n < 0) {
        snprintf(err, err_size, "import: %s: %s (%d entries installed before)", path, why, s.installed);
        return -1;
    }
    *skipped = s.skipped;
    snprintf(err, err_size, "%s", note);
    return s.installed;
}
