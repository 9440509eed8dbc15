#include "core/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/graph.h"

static hr_storage *storage_new(hr_ctx *ctx, int64_t nbytes, bool zero) {
    hr_storage *s = malloc(sizeof *s);
    /* aligned_alloc needs a size that is a multiple of the alignment */
    size_t rounded = (size_t)((nbytes + 63) / 64 * 64);
    void *data = s ? aligned_alloc(64, rounded ? rounded : 64) : NULL;
    if (!s || !data) {
        free(s);
        hr_error(ctx, "out of memory allocating %lld bytes", (long long)nbytes);
        return NULL;
    }
    if (zero) memset(data, 0, rounded ? rounded : 64);
    *s = (hr_storage){.refcount = 1, .device = {HR_DEVICE_CPU, 0}, .data = data, .nbytes = nbytes};
    return s;
}

static void storage_release(hr_storage *s) {
    if (s && --s->refcount == 0) {
        free(s->data);
        free(s);
    }
}

void hr_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= shape[d];
    }
}

static hr_tensor *tensor_alloc(hr_ctx *ctx, hr_dtype dt, int ndim, const int64_t *shape, bool zero) {
    if (ndim < 0 || ndim > HR_MAX_DIMS) {
        hr_error(ctx, "a tensor has 0 to %d dimensions, got %d", HR_MAX_DIMS, ndim);
        return NULL;
    }
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) {
            hr_error(ctx, "dimension %d has negative size %lld", d + 1, (long long)shape[d]);
            return NULL;
        }
        /* 2^48 elements is far beyond any memory; refusing keeps every byte count inside int64 */
        if (shape[d] && numel > (INT64_C(1) << 48) / shape[d]) {
            hr_error(ctx, "tensor too large: more than 2^48 elements");
            return NULL;
        }
        numel *= shape[d];
    }
    hr_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        hr_error(ctx, "out of memory allocating a tensor header");
        return NULL;
    }
    t->storage = storage_new(ctx, numel * (int64_t)hr_dtype_size(dt), zero);
    if (!t->storage) {
        free(t);
        return NULL;
    }
    t->refcount = 1;
    t->dtype = dt;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    hr_contiguous_strides(ndim, shape, t->stride);
    return t;
}

hr_tensor *hr_tensor_empty(hr_ctx *ctx, hr_dtype dt, int ndim, const int64_t *shape) {
    return tensor_alloc(ctx, dt, ndim, shape, false);
}
hr_tensor *hr_tensor_zeros(hr_ctx *ctx, hr_dtype dt, int ndim, const int64_t *shape) {
    return tensor_alloc(ctx, dt, ndim, shape, true);
}

hr_tensor *hr_tensor_alias(hr_ctx *ctx, const hr_tensor *t) {
    hr_tensor *a = calloc(1, sizeof *a);
    if (!a) {
        hr_error(ctx, "out of memory allocating a tensor header");
        return NULL;
    }
    a->refcount = 1;
    a->dtype = t->dtype;
    a->ndim = t->ndim;
    memcpy(a->shape, t->shape, sizeof a->shape);
    memcpy(a->stride, t->stride, sizeof a->stride);
    a->offset = t->offset;
    a->storage = t->storage;
    t->storage->refcount++;
    return a;
}

void hr_tensor_retain(hr_tensor *t) {
    if (t) t->refcount++;
}

struct hr_node *hr_tensor_drop(hr_tensor *t) {
    if (!t || --t->refcount > 0) return NULL;
    hr_node *producer = t->grad_fn;
    if (producer && producer->out[t->grad_fn_output] == t) producer->out[t->grad_fn_output] = NULL;
    hr_tensor_release(t->grad); /* gradient buffers have no producer: no recursion here */
    storage_release(t->storage);
    free(t);
    return producer;
}

void hr_tensor_release(hr_tensor *t) { hr_node_release(hr_tensor_drop(t)); }

int64_t hr_tensor_numel(const hr_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

bool hr_tensor_is_contiguous(const hr_tensor *t) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != s) return false;
        s *= t->shape[d];
    }
    return true;
}

void *hr_tensor_data(const hr_tensor *t) {
    return (char *)t->storage->data + t->offset * (int64_t)hr_dtype_size(t->dtype);
}

int64_t hr_tensor_flat_to_offset(const hr_tensor *t, int64_t flat) {
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (flat % t->shape[d]) * t->stride[d];
        flat /= t->shape[d];
    }
    return off;
}

double hr_tensor_get_flat(const hr_tensor *t, int64_t flat) {
    return hr_dtype_get(t->dtype, hr_tensor_data(t), hr_tensor_flat_to_offset(t, flat));
}

void hr_tensor_set_flat(hr_tensor *t, int64_t flat, double v) {
    hr_dtype_set(t->dtype, hr_tensor_data(t), hr_tensor_flat_to_offset(t, flat), v);
    hr_tensor_mark_written(t);
}

void hr_tensor_fill(hr_tensor *t, double v) {
    int64_t n = hr_tensor_numel(t);
    if (hr_tensor_is_contiguous(t) && t->dtype == HR_F32) {
        float *p = hr_tensor_data(t);
        for (int64_t i = 0; i < n; i++) p[i] = (float)v;
        hr_tensor_mark_written(t);
        return;
    }
    for (int64_t i = 0; i < n; i++) hr_tensor_set_flat(t, i, v);
}

void hr_tensor_copy_into(hr_tensor *dst, const hr_tensor *src) {
    int64_t n = hr_tensor_numel(src);
    if (dst->dtype == src->dtype && hr_tensor_is_contiguous(dst) && hr_tensor_is_contiguous(src)) {
        memmove(hr_tensor_data(dst), hr_tensor_data(src), (size_t)(n * (int64_t)hr_dtype_size(src->dtype)));
        hr_tensor_mark_written(dst);
        return;
    }
    if (dst->dtype == src->dtype) { /* strided copy of raw elements: exact for every dtype */
        size_t es = hr_dtype_size(src->dtype);
        char *d = hr_tensor_data(dst);
        const char *s = hr_tensor_data(src);
        for (int64_t i = 0; i < n; i++)
            memcpy(d + hr_tensor_flat_to_offset(dst, i) * (int64_t)es,
                   s + hr_tensor_flat_to_offset(src, i) * (int64_t)es, es);
        hr_tensor_mark_written(dst);
        return;
    }
    for (int64_t i = 0; i < n; i++) hr_tensor_set_flat(dst, i, hr_tensor_get_flat(src, i));
}

const char *hr_shape_fmt(int ndim, const int64_t *shape, char *buf, int bufsize) {
    int used = snprintf(buf, (size_t)bufsize, "(");
    for (int d = 0; d < ndim && used < bufsize; d++)
        used += snprintf(buf + used, (size_t)(bufsize - used), d ? ", %lld" : "%lld", (long long)shape[d]);
    if (used < bufsize) snprintf(buf + used, (size_t)(bufsize - used), ")");
    return buf;
}

const char *hr_shape_str(const hr_tensor *t, char *buf, int bufsize) {
    return hr_shape_fmt(t->ndim, t->shape, buf, bufsize);
}

bool hr_same_shape(const hr_tensor *a, const hr_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}
