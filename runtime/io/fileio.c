#define _XOPEN_SOURCE 700 /* realpath */
#include "io/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reading ---- */

int hr_map_file(hr_ctx *ctx, const char *path, hr_mapped_file *m) {
    *m = (hr_mapped_file){0};
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        return hr_error(ctx, "%s: %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hr_error(ctx, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            close(fd);
            return hr_error(ctx, "%s: cannot map the file: %s", path, strerror(err));
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd); /* the mapping stays valid without the descriptor */
    return 0;
}

void hr_unmap_file(hr_mapped_file *m) {
    if (m->data) munmap((void *)m->data, m->size);
    *m = (hr_mapped_file){0};
}

/* ---- writing all or nothing ---- */

#define TMP_SUFFIX ".tmp.XXXXXX"

void hr_atomic_abort(hr_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    free(af->tmp);
    free(af->path);
    *af = (hr_atomic_file){0};
}

/* Every failing call cleans up before returning, so callers only abort on errors of their own. */
static int fail(hr_ctx *ctx, hr_atomic_file *af, const char *path, int err) {
    hr_error(ctx, "cannot write '%s': %s", path, err ? strerror(err) : "short write");
    hr_atomic_abort(af);
    return -1;
}

/* mkstemp creates the file 0600; give it the mode a plain fopen would (0666 less the umask). The
 * umask can only be read by setting it, so it is put back at once. */
static void set_default_mode(int fd) {
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
}

static const char *file_kind(mode_t mode) {
    return S_ISDIR(mode) ? "a directory" : S_ISCHR(mode) ? "a character device" : S_ISBLK(mode) ? "a block device"
         : S_ISFIFO(mode) ? "a FIFO" : S_ISSOCK(mode) ? "a socket" : "not a regular file";
}

/* The file to write for `path`: path itself when nothing or a regular file is there, the regular
 * file a symbolic link leads to (the link stays a link), else NULL with the reason in why: anything
 * else there (a directory, a device, a FIFO, a socket) is never replaced by a regular file, and a
 * link leading nowhere is refused rather than replaced. */
static char *write_target(const char *path, char *why, size_t why_size) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return strdup(path);
        snprintf(why, why_size, "%s", strerror(errno));
        return NULL;
    }
    char *target = S_ISLNK(st.st_mode) ? realpath(path, NULL) : strdup(path);
    if (!target) {
        snprintf(why, why_size, "a symbolic link that leads nowhere (%s): not replaced", strerror(errno));
        return NULL;
    }
    if (stat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "it is %s%s, not a regular file: not replaced", file_kind(st.st_mode),
                 strcmp(target, path) ? " (through a symbolic link)" : "");
        free(target);
        return NULL;
    }
    return target;
}

int hr_atomic_open(hr_ctx *ctx, hr_atomic_file *af, const char *path) {
    *af = (hr_atomic_file){0};
    char why[512];
    if (!(af->path = write_target(path, why, sizeof why))) return hr_error(ctx, "cannot write '%s': %s", path, why);
    size_t len = strlen(af->path);
    char *tmp = malloc(len + sizeof TMP_SUFFIX);
    if (!tmp) {
        hr_atomic_abort(af);
        return hr_error(ctx, "cannot write '%s': out of memory", path);
    }
    path = af->path;
    memcpy(tmp, path, len);
    memcpy(tmp + len, TMP_SUFFIX, sizeof TMP_SUFFIX);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int err = errno;
        free(tmp); /* nothing was created: nothing to remove */
        return fail(ctx, af, path, err);
    }
    af->tmp = tmp;
    set_default_mode(fd);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        int err = errno;
        close(fd);
        return fail(ctx, af, path, err);
    }
    return 0;
}

int hr_atomic_write(hr_ctx *ctx, hr_atomic_file *af, const void *data, size_t n) {
    errno = 0;
    if (n && fwrite(data, 1, n, af->f) != n) return fail(ctx, af, af->path, errno);
    return 0;
}

int hr_atomic_write_at(hr_ctx *ctx, hr_atomic_file *af, int64_t offset, const void *data, size_t n) {
    errno = 0;
    if (fseeko(af->f, (off_t)offset, SEEK_SET) != 0 || fwrite(data, 1, n, af->f) != n ||
        fseeko(af->f, 0, SEEK_END) != 0)
        return fail(ctx, af, af->path, errno);
    return 0;
}

/* Makes the rename itself durable. Best effort: the file's bytes are already synced, and some file
 * systems refuse to sync a directory. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int hr_atomic_commit(hr_ctx *ctx, hr_atomic_file *af) {
    errno = 0;
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0) return fail(ctx, af, af->path, errno);
    FILE *f = af->f;
    af->f = NULL; /* fclose releases the stream even when it fails */
    if (fclose(f) != 0) return fail(ctx, af, af->path, errno);
    struct stat st; /* something other than a file may have appeared there since the open */
    if (lstat(af->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        hr_error(ctx, "cannot write '%s': it became %s while being written: not replaced", af->path,
                 S_ISLNK(st.st_mode) ? "a symbolic link" : file_kind(st.st_mode));
        hr_atomic_abort(af);
        return -1;
    }
    if (rename(af->tmp, af->path) != 0) return fail(ctx, af, af->path, errno);
    free(af->tmp);
    af->tmp = NULL;
    sync_parent_dir(af->path);
    hr_atomic_abort(af); /* frees the names; nothing left to remove */
    return 0;
}
