/* Tensors: a reference-counted storage plus a view (dtype, shape, strides, offset) and the autograd
 * fields. Ownership: every hr_tensor and hr_storage is reference counted; whoever holds a pointer
 * holds one reference and gives it back with hr_tensor_release / hr_storage_release. */
#ifndef HR_TENSOR_H
#define HR_TENSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/device.h"
#include "core/dtype.h"

#define HR_MAX_DIMS 4

typedef enum { HR_DEVICE_CPU, HR_DEVICE_CUDA, HR_DEVICE_KINDS } hr_device_kind;

typedef struct {
    hr_device_kind kind;
    int index;
} hr_device;

typedef struct hr_storage {
    int refcount;
    hr_device device;
    hr_device_mem *mem; /* the device's memory functions (a reference); NULL on the host */
    void *data;       /* 64-byte aligned on the host; a device address (CUdeviceptr) on a GPU */
    int64_t nbytes;
    uint64_t version; /* bumped by every write; autograd checks that saved inputs are unchanged */
} hr_storage;

struct hr_node;
struct hr_ctx;

typedef struct hr_tensor {
    int refcount;
    hr_dtype dtype;
    int ndim;                       /* 0 (a scalar) to HR_MAX_DIMS */
    int64_t shape[HR_MAX_DIMS];
    int64_t stride[HR_MAX_DIMS];    /* in elements */
    int64_t offset;                 /* in elements, into storage */
    hr_storage *storage;            /* owned reference */
    /* autograd */
    bool requires_grad;             /* a parameter, or computed from one with grad enabled */
    struct hr_tensor *grad;         /* owned; contiguous, same shape and dtype; NULL until needed */
    struct hr_node *grad_fn;        /* owned reference to the producing node; NULL for leaves */
    int grad_fn_output;             /* which output of grad_fn this tensor is */
} hr_tensor;

/* Creation. Each returns a new tensor with one reference, or NULL with the context's error set
 * (bad shape, size overflow, out of memory). Contents of hr_tensor_empty are undefined. */
hr_tensor *hr_tensor_empty(struct hr_ctx *ctx, hr_dtype dt, int ndim, const int64_t *shape);
hr_tensor *hr_tensor_zeros(struct hr_ctx *ctx, hr_dtype dt, int ndim, const int64_t *shape);
/* The same on a device: the host, or one whose backend the context has opened (hr_ctx.devices). */
hr_tensor *hr_tensor_empty_on(struct hr_ctx *ctx, hr_device dev, hr_dtype dt, int ndim, const int64_t *shape);
hr_tensor *hr_tensor_zeros_on(struct hr_ctx *ctx, hr_device dev, hr_dtype dt, int ndim, const int64_t *shape);
/* A contiguous copy of t on dev, outside autograd (always a new storage). */
hr_tensor *hr_tensor_to(struct hr_ctx *ctx, const hr_tensor *t, hr_device dev);
/* t itself (one more reference) when it is on the host, else a host copy: for code that reads
 * elements (printing, saving, item). */
hr_tensor *hr_tensor_host(struct hr_ctx *ctx, const hr_tensor *t);

/* A new header over t's storage with t's layout, outside autograd (no grad, no grad_fn). */
hr_tensor *hr_tensor_alias(struct hr_ctx *ctx, const hr_tensor *t);

void hr_tensor_retain(hr_tensor *t);
void hr_tensor_release(hr_tensor *t);
/* Drops one reference. When it was the last, frees t and hands the caller the reference t held on
 * its producing node (or NULL) to release: graph.c frees long chains of nodes iteratively this way. */
struct hr_node *hr_tensor_drop(hr_tensor *t);

int64_t hr_tensor_numel(const hr_tensor *t);
bool hr_tensor_is_contiguous(const hr_tensor *t);
/* Pointer to element 0 of the view (storage data + offset). */
void *hr_tensor_data(const hr_tensor *t);
static inline bool hr_tensor_on_host(const hr_tensor *t) { return t->storage->device.kind == HR_DEVICE_CPU; }
static inline bool hr_same_device(const hr_tensor *a, const hr_tensor *b) {
    return a->storage->device.kind == b->storage->device.kind && a->storage->device.index == b->storage->device.index;
}
/* "cpu" or "cuda:0" into buf. */
const char *hr_device_str(hr_device dev, char *buf, int bufsize);

/* Element access: host tensors only (a device tensor goes through hr_tensor_host first). */
/* Element at a flat row-major logical index, honouring strides. */
int64_t hr_tensor_flat_to_offset(const hr_tensor *t, int64_t flat);
double hr_tensor_get_flat(const hr_tensor *t, int64_t flat);
void hr_tensor_set_flat(hr_tensor *t, int64_t flat, double v);
/* Every element set to v, on any device. Returns 0, or -1 with the context's error. */
int hr_tensor_fill(struct hr_ctx *ctx, hr_tensor *t, double v);
/* Records a write into t's storage. hr_tensor_set_flat, hr_tensor_fill and hr_tensor_copy_into call
 * it; code that writes a tensor's data directly must call it too. */
static inline void hr_tensor_mark_written(hr_tensor *t) { t->storage->version++; }
/* Copies src into dst (same shape; any strides; converts dtypes; any devices). Returns 0, or -1 with
 * the context's error. */
int hr_tensor_copy_into(struct hr_ctx *ctx, hr_tensor *dst, const hr_tensor *src);

/* "(2, 3, 4)" into buf: a tensor's shape, or any shape. */
const char *hr_shape_str(const hr_tensor *t, char *buf, int bufsize);
const char *hr_shape_fmt(int ndim, const int64_t *shape, char *buf, int bufsize);
bool hr_same_shape(const hr_tensor *a, const hr_tensor *b);
void hr_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);

#endif
