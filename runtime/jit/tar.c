#include "jit/tar.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK 512

/* The header checksum: the sum of its bytes with the checksum field counted as spaces. */
static unsigned checksum(const unsigned char *h) {
    unsigned sum = 0;
    for (int i = 0; i < BLOCK; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum;
}

int hr_tar_add(FILE *f, const char *name, const void *data, size_t size, int64_t mtime) {
    unsigned char h[BLOCK] = {0};
    const unsigned long long max_field = 077777777777ULL; /* eleven octal digits: 8 GiB - 1 */
    if (strlen(name) >= 100 || (unsigned long long)size > max_field) return -1;
    unsigned long long when = mtime < 0 ? 0 : (unsigned long long)mtime;
    if (when > max_field) when = max_field;
    memcpy(h, name, strlen(name));
    memcpy(h + 100, "0000644", 8);                     /* mode */
    memcpy(h + 108, "0000000", 8);                     /* uid */
    memcpy(h + 116, "0000000", 8);                     /* gid */
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size & max_field);
    snprintf((char *)h + 136, 12, "%011llo", when & max_field);
    h[156] = '0';                                      /* a regular file */
    memcpy(h + 257, "ustar", 6);                       /* magic, NUL-terminated */
    memcpy(h + 263, "00", 2);                          /* version */
    snprintf((char *)h + 148, 8, "%06o", checksum(h)); /* six digits, NUL, then a space */
    h[155] = ' ';
    static const unsigned char zeros[BLOCK];
    size_t pad = (BLOCK - size % BLOCK) % BLOCK;
    if (fwrite(h, 1, BLOCK, f) != BLOCK || (size && fwrite(data, 1, size, f) != size) ||
        (pad && fwrite(zeros, 1, pad, f) != pad))
        return -1;
    return 0;
}

int hr_tar_finish(FILE *f) {
    static const unsigned char zeros[2 * BLOCK];
    return fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros ? 0 : -1;
}

/* An octal field (NUL- or space-terminated); -1 when it is not one. */
static long long octal(const unsigned char *p, int len) {
    long long v = 0;
    int i = 0, digits = 0;
    while (i < len && p[i] == ' ') i++;
    for (; i < len && p[i] >= '0' && p[i] <= '7'; i++, digits++) v = v * 8 + (p[i] - '0');
    if (!digits || (i < len && p[i] != '\0' && p[i] != ' ')) return -1;
    return v;
}

/* The next `size` bytes of f in a malloc'ed buffer, grown as they arrive: a header claiming gigabytes
 * costs no more memory than the archive holds. NULL when out of memory, or with *short_read set when
 * the file ends first. */
static unsigned char *read_member(FILE *f, size_t size, int *short_read) {
    size_t cap = size < (1 << 20) ? size : (1 << 20), got = 0;
    unsigned char *data = malloc(cap ? cap : 1);
    while (data && got < size) {
        if (got == cap) {
            cap = size - cap < cap ? size : 2 * cap;
            unsigned char *grown = realloc(data, cap);
            if (!grown) break;
            data = grown;
        }
        size_t n = fread(data + got, 1, cap - got, f);
        if (n == 0) {
            *short_read = 1;
            break;
        }
        got += n;
    }
    if (got < size) {
        free(data);
        return NULL;
    }
    return data;
}

int hr_tar_each(FILE *f, int (*fn)(const char *name, const void *data, size_t size, void *arg), void *arg, char *err,
                size_t err_size) {
    unsigned char h[BLOCK];
    int count = 0;
    for (;;) {
        size_t got = fread(h, 1, BLOCK, f);
        if (got == 0 && count == 0) {
            snprintf(err, err_size, "empty file, not a tar archive");
            return -1;
        }
        if (got != BLOCK && count == 0) {
            snprintf(err, err_size, "not a tar archive (%zu bytes, shorter than one header)", got);
            return -1;
        }
        if (got != BLOCK) {
            snprintf(err, err_size, "truncated archive (a header cut short after %d files)", count);
            return -1;
        }
        int zero = 1;
        for (int i = 0; i < BLOCK && zero; i++) zero = h[i] == 0;
        if (zero) return count; /* end of archive */
        long long stored = octal(h + 148, 8), size = octal(h + 124, 12);
        if (stored < 0 || (unsigned)stored != checksum(h) || size < 0) {
            snprintf(err, err_size, count ? "bad tar header after %d files" : "not a tar archive (bad header)", count);
            return -1;
        }
        char name[155 + 1 + 100 + 1]; /* ustar prefix, '/', name, NUL */
        size_t n = strnlen((const char *)h, 100);
        memcpy(name, h, n);
        name[n] = '\0';
        if (memcmp(h + 257, "ustar", 5) == 0 && h[345]) { /* ustar prefix: prefix/name */
            size_t p = strnlen((const char *)h + 345, 155);
            memmove(name + p + 1, name, n + 1);
            memcpy(name, h + 345, p);
            name[p] = '/';
        }
        size_t padded = ((size_t)size + BLOCK - 1) / BLOCK * BLOCK;
        int short_read = 0;
        unsigned char *data = read_member(f, padded, &short_read);
        if (!data) {
            if (short_read) snprintf(err, err_size, "truncated archive (member %s cut short)", name);
            else snprintf(err, err_size, "out of memory for a %lld-byte member", size);
            return -1;
        }
        int stop = 0;
        char type = (char)h[156];
        if (type == '0' || type == '\0') {
            count++;
            stop = fn(name, data, (size_t)size, arg);
        }
        free(data);
        if (stop) return count;
    }
}
