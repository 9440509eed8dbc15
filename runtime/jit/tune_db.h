/* The tuning database: what `hybridrt tune` measured on one GPU model and architecture, one text file
 * per (GPU, arch), human-readable and diffable (docs/tuning.md):
 *
 *   hybridrt-tuning 1
 *   gpu NVIDIA H100 80GB HBM3
 *   arch sm_90
 *   driver 12.8
 *   nvrtc 13.0
 *   date 2026-11-30
 *   record hr_group_norm_forward src 3fa2c1d04b5e6f70 dtype f32 head 0 shape rows=4096,C=128 knob BLOCK times 64:0.0123 128:0.0101 256:0.0110
 *
 * A record is keyed by the kernel, a hash of its template's source (an edited kernel's records no
 * longer match and are ignored), the dtype, the head size (0 where none) and the shape class
 * (named dims); it holds the time in milliseconds of every value of the knob tried, so a new value
 * in a space is measured alone and the best is always recomputed. Files are searched in the user's
 * cache directory, then in the project's cache/tuned/. */
#ifndef HR_JIT_TUNE_DB_H
#define HR_JIT_TUNE_DB_H

#include <stddef.h>
#include <stdint.h>

#define HR_TUNE_FORMAT 1
#define HR_TUNE_MAX_DIMS 6
#define HR_TUNE_MAX_TIMES 16

typedef struct hr_tune_record {
    char kernel[64];
    char src[17];                               /* 16 hex digits of the template source's SHA-256 */
    char dtype[8];                              /* "f32", "f64" */
    int head;                                   /* 32, 64, 128, or 0 */
    char dim_names[HR_TUNE_MAX_DIMS][16];       /* the shape class: "rows", "C", ... */
    int64_t dims[HR_TUNE_MAX_DIMS];
    int n_dims;
    char knob[16];                              /* "BLOCK" */
    int values[HR_TUNE_MAX_TIMES];              /* each value tried ... */
    double ms[HR_TUNE_MAX_TIMES];               /* ... and its median time */
    int n_times;
} hr_tune_record;

typedef struct hr_tune_db {
    char gpu[256], arch[32], driver[32], nvrtc[64], date[32];
    hr_tune_record *records;                    /* owned */
    int n, cap;
    char path[1024];                            /* the file it was read from, or "" */
} hr_tune_db;

void hr_tune_db_init(hr_tune_db *db, const char *gpu, const char *arch);
void hr_tune_db_free(hr_tune_db *db);

/* Reads a database file. A line that does not parse is skipped and counted, with the first such
 * problem in warn (file:line: what); the header must name the format. Returns the records read, or
 * -1 with warn saying why nothing could be used (no file, not a tuning database). */
int hr_tune_db_load(hr_tune_db *db, const char *path, char *warn, size_t warn_size);

/* Writes db to path atomically (temp file and rename), records sorted. 0, or -1 with err. */
int hr_tune_db_save(const hr_tune_db *db, const char *path, char *err, size_t err_size);

/* Adds r, or merges it into the record with its key: its times replace those of the same values,
 * other values' times stay. 0, or -1 when out of memory. */
int hr_tune_db_put(hr_tune_db *db, const hr_tune_record *r);

/* Merges every record of src into db (hr_tune_db_put each). */
int hr_tune_db_merge(hr_tune_db *db, const hr_tune_db *src);

/* The record for (kernel, src, dtype, head) whose shape class is nearest to dims (the same dim names;
 * distance: the sum over dims of |log2 a - log2 b|), or NULL. *exact says whether it is the shape
 * itself. */
const hr_tune_record *hr_tune_db_lookup(const hr_tune_db *db, const char *kernel, const char *src, const char *dtype,
                                        int head, const char *const *dim_names, const int64_t *dims, int n_dims,
                                        int *exact);

/* The value with the smallest time (the first on ties), or -1 for a record with no times. */
int hr_tune_record_best(const hr_tune_record *r);

/* The file name of a GPU's database: "NVIDIA_H100_80GB_HBM3-sm_90.tune" (anything but letters,
 * digits, '.', '-' becomes '_'). */
void hr_tune_db_filename(const char *gpu, const char *arch, char *out, size_t size);

/* The 16-hex-digit hash of a template's source and the headers it may include (records of an edited
 * kernel stop matching). -1 with err when a source cannot be read. */
int hr_tune_source_hash(const char *template_file, char out[17], char *err, size_t err_size);

#endif
