#include "core/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/context.h"
#include "core/graph.h"

void hr_device_mem_release(hr_device_mem *mem) {
    if (mem && --mem->refs == 0 && mem->close) mem->close(mem->state);
}

const char *hr_device_str(hr_device dev, char *buf, int bufsize) {
    if (dev.kind == HR_DEVICE_CPU) snprintf(buf, (size_t)bufsize, "cpu");
    else snprintf(buf, (size_t)bufsize, "cuda:%d", dev.index);
    return buf;
}

static hr_storage *host_storage(hr_ctx *ctx, int64_t nbytes, bool zero) {
    hr_storage *s = malloc(sizeof *s);
    /* aligned_alloc needs a size that is a multiple of the alignment */
    size_t rounded = (size_t)((nbytes + 63) / 64 * 64);
    void *data = s ? aligned_alloc(64, rounded ? rounded : 64) : NULL;
    if (!s || !data) {
        free(s);
        free(data);
        hr_error(ctx, "out of memory allocating %lld bytes", (long long)nbytes);
        return NULL;
    }
    if (zero) memset(data, 0, rounded ? rounded : 64);
    *s = (hr_storage){.refcount = 1, .device = {HR_DEVICE_CPU, 0}, .data = data, .nbytes = nbytes};
    return s;
}

/* The memory functions of dev, or NULL with an error naming what is missing. */
static hr_device_mem *device_mem(hr_ctx *ctx, hr_device dev) {
    char name[32];
    hr_device_mem *mem = dev.kind > HR_DEVICE_CPU && dev.kind < HR_DEVICE_KINDS ? ctx->devices[dev.kind] : NULL;
    if (!mem) {
        hr_error(ctx, "%s is not open in this process (select it first: hr.use_device)",
                 hr_device_str(dev, name, sizeof name));
        return NULL;
    }
    if (mem->index != dev.index) {
        hr_error(ctx, "%s: this process uses %s (one GPU per process)", hr_device_str(dev, name, sizeof name),
                 mem->name);
        return NULL;
    }
    return mem;
}

static hr_storage *storage_new(hr_ctx *ctx, hr_device dev, int64_t nbytes, bool zero) {
    if (dev.kind == HR_DEVICE_CPU) return host_storage(ctx, nbytes, zero);
    hr_device_mem *mem = device_mem(ctx, dev);
    if (!mem) return NULL;
    hr_storage *s = malloc(sizeof *s);
    void *data = NULL;
    if (!s) {
        hr_error(ctx, "out of memory allocating a storage header");
        return NULL;
    }
    if (mem->alloc(mem->state, nbytes, &data, ctx->err, sizeof ctx->err)) {
        free(s);
        return NULL;
    }
    if (zero && nbytes && mem->zero(mem->state, data, nbytes, ctx->err, sizeof ctx->err)) {
        mem->free(mem->state, data);
        free(s);
        return NULL;
    }
    mem->refs++;
    *s = (hr_storage){.refcount = 1, .device = dev, .mem = mem, .data = data, .nbytes = nbytes};
    return s;
}

static void storage_release(hr_storage *s) {
    if (s && --s->refcount == 0) {
        if (s->mem) {
            s->mem->free(s->mem->state, s->data);
            hr_device_mem_release(s->mem);
        } else {
            free(s->data);
        }
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

static hr_tensor *tensor_alloc(hr_ctx *ctx, hr_device dev, hr_dtype dt, int ndim, const int64_t *shape,
                               bool zero) {
    if (ndim < 0 || ndim > HR_MAX_DIMS) {
        hr_error(ctx, "a tensor has 0 to %d dimensions, got %d", HR_MAX_DIMS, ndim);
        return NULL;
    }
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) {
            hr_error(ctx, "dimension %d has negative size %lld", d + 1, (long long)shape[d]);
            return NULL;
        }
    /* 2^48 elements is far beyond any memory; refusing keeps every byte count inside int64 */
    if (!hr_checked_numel(ndim, shape, INT64_C(1) << 48, &numel)) {
        hr_error(ctx, "tensor too large: more than 2^48 elements");
        return NULL;
    }
    hr_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        hr_error(ctx, "out of memory allocating a tensor header");
        return NULL;
    }
    t->storage = storage_new(ctx, dev, numel * (int64_t)hr_dtype_size(dt), zero);
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

static const hr_device host = {HR_DEVICE_CPU, 0};

hr_tensor *hr_tensor_empty(hr_ctx *ctx, hr_dtype dt, int ndim, const int64_t *shape) {
    return tensor_alloc(ctx, host, dt, ndim, shape, false);
}
hr_tensor *hr_tensor_zeros(hr_ctx *ctx, hr_dtype dt, int ndim, const int64_t *shape) {
    return tensor_alloc(ctx, host, dt, ndim, shape, true);
}
hr_tensor *hr_tensor_empty_on(hr_ctx *ctx, hr_device dev, hr_dtype dt, int ndim, const int64_t *shape) {
    return tensor_alloc(ctx, dev, dt, ndim, shape, false);
}
hr_tensor *hr_tensor_zeros_on(hr_ctx *ctx, hr_device dev, hr_dtype dt, int ndim, const int64_t *shape) {
    return tensor_alloc(ctx, dev, dt, ndim, shape, true);
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

static void host_fill(hr_tensor *t, double v) {
    int64_t n = hr_tensor_numel(t);
    if (v == 0 && !signbit(v) && hr_tensor_is_contiguous(t)) { /* all-zero bits in every dtype */
        memset(hr_tensor_data(t), 0, (size_t)(n * (int64_t)hr_dtype_size(t->dtype)));
        hr_tensor_mark_written(t);
        return;
    }
    if (hr_tensor_is_contiguous(t) && t->dtype == HR_F32) {
        float *p = hr_tensor_data(t);
        for (int64_t i = 0; i < n; i++) p[i] = (float)v;
        hr_tensor_mark_written(t);
        return;
    }
    for (int64_t i = 0; i < n; i++) hr_tensor_set_flat(t, i, v);
}

static void host_copy(hr_tensor *dst, const hr_tensor *src) {
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

/* The storage elements a view reaches: [first, first + count). Strides are never negative. */
static void view_span(const hr_tensor *t, int64_t *first, int64_t *count) {
    int64_t last = t->offset;
    bool empty = false;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0) empty = true;
        else last += (t->shape[d] - 1) * t->stride[d];
    }
    *first = t->offset;
    *count = empty ? 0 : last - t->offset + 1;
}

/* A host mirror of a device view: the span of storage it reaches, copied to the host, and a header
 * with t's layout over it. With `fetch` false the bytes are not downloaded (the caller overwrites
 * every element, or the view is contiguous and will be fully written). */
static hr_tensor *host_mirror(hr_ctx *ctx, const hr_tensor *t, bool fetch) {
    int64_t first, count;
    view_span(t, &first, &count);
    int64_t es = (int64_t)hr_dtype_size(t->dtype);
    hr_tensor *m = hr_tensor_empty(ctx, t->dtype, 1, (int64_t[]){count});
    if (!m) return NULL;
    hr_device_mem *mem = t->storage->mem;
    if (fetch && count && mem->copy(mem->state, hr_tensor_data(m), true, (char *)t->storage->data + first * es, false,
                                    count * es, ctx->err, sizeof ctx->err)) {
        hr_tensor_release(m);
        return NULL;
    }
    m->ndim = t->ndim;
    memcpy(m->shape, t->shape, sizeof m->shape);
    memcpy(m->stride, t->stride, sizeof m->stride);
    m->offset = 0;
    return m;
}

/* Writes a host mirror made by host_mirror(t) back over t's span. */
static int store_mirror(hr_ctx *ctx, hr_tensor *t, const hr_tensor *m) {
    int64_t first, count;
    view_span(t, &first, &count);
    int64_t es = (int64_t)hr_dtype_size(t->dtype);
    hr_device_mem *mem = t->storage->mem;
    if (count && mem->copy(mem->state, (char *)t->storage->data + first * es, false, m->storage->data, true,
                           count * es, ctx->err, sizeof ctx->err))
        return -1;
    hr_tensor_mark_written(t);
    return 0;
}

int hr_tensor_fill(hr_ctx *ctx, hr_tensor *t, double v) {
    if (hr_tensor_on_host(t)) {
        host_fill(t, v);
        return 0;
    }
    hr_device_mem *mem = t->storage->mem;
    int64_t bytes = hr_tensor_numel(t) * (int64_t)hr_dtype_size(t->dtype);
    if (v == 0 && !signbit(v) && hr_tensor_is_contiguous(t)) { /* all-zero bits in every dtype */
        if (bytes && mem->zero(mem->state, hr_tensor_data(t), bytes, ctx->err, sizeof ctx->err)) return -1;
        hr_tensor_mark_written(t);
        return 0;
    }
    hr_tensor *m = host_mirror(ctx, t, !hr_tensor_is_contiguous(t));
    if (!m) return -1;
    host_fill(m, v);
    int rc = store_mirror(ctx, t, m);
    hr_tensor_release(m);
    return rc;
}

int hr_tensor_copy_into(hr_ctx *ctx, hr_tensor *dst, const hr_tensor *src) {
    bool dst_host = hr_tensor_on_host(dst), src_host = hr_tensor_on_host(src);
    if (dst_host && src_host) {
        host_copy(dst, src);
        return 0;
    }
    int64_t bytes = hr_tensor_numel(src) * (int64_t)hr_dtype_size(src->dtype);
    if (dst->dtype == src->dtype && hr_tensor_is_contiguous(dst) && hr_tensor_is_contiguous(src) &&
        (dst_host || src_host || hr_same_device(dst, src))) { /* one transfer */
        hr_device_mem *mem = dst_host ? src->storage->mem : dst->storage->mem;
        if (bytes && mem->copy(mem->state, hr_tensor_data(dst), dst_host, hr_tensor_data(src), src_host, bytes,
                               ctx->err, sizeof ctx->err))
            return -1;
        hr_tensor_mark_written(dst);
        return 0;
    }
    /* Anything else goes through host mirrors: strided views, dtype conversions. Slow but general:
     * initialisation and checkpoints use it, training steps do not. */
    hr_tensor *s = src_host ? (hr_tensor_retain((hr_tensor *)src), (hr_tensor *)src) : host_mirror(ctx, src, true);
    if (!s) return -1;
    int rc = 0;
    if (dst_host) {
        host_copy(dst, s);
    } else {
        hr_tensor *m = host_mirror(ctx, dst, !hr_tensor_is_contiguous(dst));
        if (!m) rc = -1;
        else {
            host_copy(m, s);
            rc = store_mirror(ctx, dst, m);
            hr_tensor_release(m);
        }
    }
    hr_tensor_release(s);
    return rc;
}

hr_tensor *hr_tensor_to(hr_ctx *ctx, const hr_tensor *t, hr_device dev) {
    hr_tensor *c = hr_tensor_empty_on(ctx, dev, t->dtype, t->ndim, t->shape);
    if (c && hr_tensor_copy_into(ctx, c, t)) {
        hr_tensor_release(c);
        return NULL;
    }
    return c;
}

hr_tensor *hr_tensor_host(hr_ctx *ctx, const hr_tensor *t) {
    if (hr_tensor_on_host(t)) {
        hr_tensor_retain((hr_tensor *)t);
        return (hr_tensor *)t;
    }
    return hr_tensor_to(ctx, t, host);
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
