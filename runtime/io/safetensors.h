/* safetensors files: named tensors plus string metadata, the format of Hugging Face checkpoints.
 *
 *   u64 (little-endian) N | N bytes of JSON header, space-padded | data
 *
 * The header maps each name to {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
 * (byte offsets into the data, which follows the header) and "__metadata__" to string pairs.
 * Data is little-endian and row-major. Our dtypes map to F32, F64, BF16, I32, I64 and U8.
 * See docs/checkpoints.md. */
#ifndef HR_IO_SAFETENSORS_H
#define HR_IO_SAFETENSORS_H

#include "core/context.h"
#include "core/tensor.h"

#define HR_SAFETENSORS_MAX_HEADER 100000000 /* bytes of JSON; a longer header is refused (as upstream) */

/* Writes the n tensors (any strides, CPU) under their names, and the metadata pairs, to path.
 * Tensors and metadata are sorted by name, so the same input gives the same bytes whatever its order.
 * Names must be unique, non-empty and not "__metadata__"; metadata keys unique.
 * The write is atomic (a temporary file renamed over path): on failure path is left as it was.
 * Returns 0, or -1 with the context's error set. */
int hr_safetensors_save(hr_ctx *ctx, const char *path, int n, const char *const *names,
                        hr_tensor *const *tensors, int n_meta, const char *const *meta_keys,
                        const char *const *meta_values);

/* What hr_safetensors_load returns. It owns everything it points to: the name and metadata strings,
 * and one reference to each tensor (fresh, contiguous, CPU). hr_safetensors_free releases them all;
 * to keep a tensor beyond it, retain it, or take it and set its slot to NULL. */
typedef struct {
    int n;                   /* tensors, sorted by name */
    char **names;            /* (n) */
    hr_tensor **tensors;     /* (n) owned references */
    int n_meta;              /* metadata pairs, sorted by key */
    char **meta_keys;        /* (n_meta) */
    char **meta_values;      /* (n_meta) */
} hr_safetensors;

/* Reads and validates the whole file. Returns NULL with the context's error naming the file and the
 * problem (truncated, bad JSON, unknown dtype, sizes that disagree, overlapping data, ...). */
hr_safetensors *hr_safetensors_load(hr_ctx *ctx, const char *path);
void hr_safetensors_free(hr_safetensors *st);

/* "F32" for HR_F32, ...; hr_safetensors_dtype_parse returns -1 for a name we do not support. */
const char *hr_safetensors_dtype_name(hr_dtype dt);
int hr_safetensors_dtype_parse(const char *name, hr_dtype *out);

#endif
