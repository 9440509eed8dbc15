#include "core/graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hr_node *hr_node_new(hr_ctx *ctx, hr_op_id op) {
    hr_node *n = calloc(1, sizeof *n);
    if (!n) {
        hr_error(ctx, "%s: out of memory allocating a graph node", hr_op_name(op));
        return NULL;
    }
    n->refcount = 1;
    n->op = op;
    return n;
}

/* Frees without recursion: a graph can be a chain of 10^5 nodes and more (a Lua loop over time steps),
 * deeper than the C stack. Nodes that lose their last reference wait in a queue linked through their
 * own next_dead field, so freeing needs no memory. */
void hr_node_release(hr_node *n) {
    if (!n || --n->refcount > 0) return;
    n->next_dead = NULL;
    hr_node *queue = n;
    while (queue) {
        hr_node *dead = queue;
        queue = dead->next_dead;
        for (int i = 0; i < dead->n_in + HR_NODE_MAX_SAVED; i++) {
            hr_tensor *t = i < dead->n_in ? dead->in[i] : dead->saved[i - dead->n_in];
            hr_node *producer = hr_tensor_drop(t);
            if (producer && --producer->refcount == 0) {
                producer->next_dead = queue;
                queue = producer;
            }
        }
        free(dead);
    }
}

/* First non-finite value of a float tensor: returns "nan", "inf" or NULL (also when a device tensor
 * cannot be read back: the next op reports that error). */
static const char *non_finite(hr_ctx *ctx, const hr_tensor *t) {
    if (!t || (t->dtype != HR_F32 && t->dtype != HR_F64)) return NULL;
    hr_tensor *h = hr_tensor_host(ctx, t);
    if (!h) return NULL;
    const char *what = NULL;
    int64_t n = hr_tensor_numel(h);
    for (int64_t i = 0; i < n && !what; i++) {
        double v = hr_tensor_get_flat(h, i);
        if (isnan(v)) what = "nan";
        else if (isinf(v)) what = "inf";
    }
    hr_tensor_release(h);
    return what;
}

static int run_forward(hr_ctx *ctx, hr_node *n) {
    hr_device_kind dev = n->out[0] ? n->out[0]->storage->device.kind : HR_DEVICE_CPU;
    hr_op_fn fwd = ctx->ops[n->op].forward[dev];
    if (!fwd) return hr_error(ctx, "%s: no implementation on this device", hr_op_name(n->op));
    double t0 = ctx->profiling ? hr_now() : 0;
    if (fwd(ctx, n)) return -1;
    if (ctx->profiling) {
        ctx->op_time[n->op].fwd_s += hr_now() - t0;
        ctx->op_time[n->op].fwd_calls++;
    }
    for (int j = 0; j < n->n_out; j++) /* a view writes nothing: its output is its input's storage */
        if (n->out[j] && !(n->n_in && n->in[0] && n->out[j]->storage == n->in[0]->storage))
            hr_tensor_mark_written(n->out[j]);
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i]) n->in_version[i] = n->in[i]->storage->version;
    if (ctx->check_nan) {
        for (int j = 0; j < n->n_out; j++) {
            const char *bad = non_finite(ctx, n->out[j]);
            char shape[96];
            if (bad)
                return hr_error(ctx, "nan check: op '%s' produced %s in output %d, shape %s",
                                hr_op_name(n->op), bad, j + 1, hr_shape_str(n->out[j], shape, sizeof shape));
        }
    }
    return 0;
}

static int capture_append(hr_ctx *ctx, hr_node *n) {
    hr_graph *g = ctx->capture;
    if (g->n_nodes == g->capacity) {
        int cap = g->capacity ? 2 * g->capacity : 64;
        hr_node **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (nodes) g->nodes = nodes;
        hr_tensor **outs = realloc(g->outputs, (size_t)cap * HR_NODE_MAX_OUT * sizeof *outs);
        if (outs) g->outputs = outs;
        if (!nodes || !outs) return hr_error(ctx, "capture: out of memory recording node %d", g->n_nodes);
        g->capacity = cap;
    }
    n->refcount++;
    g->nodes[g->n_nodes] = n;
    for (int j = 0; j < HR_NODE_MAX_OUT; j++) {
        hr_tensor *o = j < n->n_out ? n->out[j] : NULL;
        hr_tensor_retain(o);
        g->outputs[g->n_nodes * HR_NODE_MAX_OUT + j] = o;
    }
    g->n_nodes++;
    return 0;
}

int hr_node_launch(hr_ctx *ctx, hr_node *n) {
    int rc = run_forward(ctx, n);
    if (rc == 0 && ctx->capture) rc = capture_append(ctx, n);
    if (rc) {
        for (int j = 0; j < n->n_out; j++) hr_tensor_release(n->out[j]);
        hr_node_release(n);
        return -1;
    }
    bool needs_grad = false;
    hr_device_kind dev = n->out[0] ? n->out[0]->storage->device.kind : HR_DEVICE_CPU;
    if (ctx->grad_enabled && ctx->ops[n->op].backward[dev])
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] && n->in[i]->requires_grad) needs_grad = true;
    if (needs_grad) {
        for (int j = 0; j < n->n_out; j++) {
            hr_tensor *o = n->out[j];
            if (!o || !hr_dtype_is_float(o->dtype)) continue;
            o->requires_grad = true;
            o->grad_fn = n;
            o->grad_fn_output = j;
            n->refcount++;
        }
    }
    hr_node_release(n); /* the caller's reference: outputs and the capture hold their own */
    return 0;
}

/* ---- backward ---- */

typedef struct {
    hr_node **items;
    int n, cap;
} node_list;

static int list_push(node_list *l, hr_node *n) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        hr_node **items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return -1;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = n;
    return 0;
}

/* Nodes reachable from root in topological order (producers first), by an iterative depth-first
 * search: a node is emitted once all the nodes producing its inputs have been emitted. A node is
 * marked seen by stamping it with this pass's number, so the walk is linear in the graph's size. */
static int topo_sort(hr_ctx *ctx, hr_node *root, node_list *order) {
    uint64_t pass = ++ctx->backward_passes;
    node_list stack = {0};
    root->visit = pass;
    int rc = list_push(&stack, root);
    while (!rc && stack.n) {
        hr_node *n = stack.items[stack.n - 1];
        bool pushed = false;
        for (int i = 0; i < n->n_in && !rc; i++) {
            hr_node *p = n->in[i] ? n->in[i]->grad_fn : NULL;
            if (p && p->visit != pass) {
                p->visit = pass;
                rc = list_push(&stack, p);
                pushed = true;
                break;
            }
        }
        if (!pushed && !rc) {
            stack.n--;
            rc = list_push(order, n);
        }
    }
    free(stack.items);
    return rc;
}

/* A zeroed gradient buffer for t: allocated on first use, cleared on later uses when `clear`. */
static int ensure_grad(hr_ctx *ctx, hr_tensor *t, bool clear) {
    if (!t->grad) {
        t->grad = hr_tensor_zeros_on(ctx, t->storage->device, t->dtype, t->ndim, t->shape);
        return t->grad ? 0 : -1;
    }
    if (clear) return hr_tensor_fill(ctx, t->grad, 0);
    return 0;
}

/* A view whose layout on its input's (contiguous) gradient is itself contiguous -- a reshape, or a
 * slice of leading rows -- can share that gradient: what its consumers add to the view's gradient
 * then lands in the input's directly, and the view's backward (a scatter-add) has nothing to do.
 * That saves a copy and the zeroing of one whole buffer per view. The loss itself keeps its own
 * gradient (backward sets it to 1, which must not overwrite a leaf's accumulated gradient). */
static bool view_grad_shareable(const hr_node *n, const hr_tensor *root) {
    const hr_tensor *in = n->in[0], *out = n->out[0];
    if (n->op != HR_OP_VIEW || !in || !out || out == root || !in->requires_grad || out->grad_fn != n) return false;
    int64_t stride[HR_MAX_DIMS];
    hr_contiguous_strides(out->ndim, out->shape, stride);
    for (int d = 0; d < out->ndim; d++) /* iattr: the view's strides on the input's contiguous layout */
        if (out->shape[d] > 1 && n->iattr[d] != stride[d]) return false;
    return true;
}

/* True when the view's gradient is the shared window of its input's gradient. */
static bool view_grad_is_shared(const hr_node *n) {
    const hr_tensor *g = n->out[0] ? n->out[0]->grad : NULL, *base = n->in[0] ? n->in[0]->grad : NULL;
    return g && base && g->storage == base->storage && g->offset == base->offset + n->iattr[HR_MAX_DIMS];
}

/* Makes (or keeps) the view's gradient a window of its input's: the input's gradient must exist
 * first (a leaf's is created here; an intermediate's was created, and cleared, at its producer). */
static int share_view_grad(hr_ctx *ctx, hr_node *n) {
    hr_tensor *in = n->in[0], *out = n->out[0];
    if (ensure_grad(ctx, in, false)) return -1;
    if (view_grad_is_shared(n)) return 0; /* a replayed graph keeps its windows */
    hr_tensor *g = hr_tensor_alias(ctx, in->grad);
    if (!g) return -1;
    g->ndim = out->ndim;
    memcpy(g->shape, out->shape, sizeof g->shape);
    hr_contiguous_strides(out->ndim, out->shape, g->stride);
    g->offset = in->grad->offset + n->iattr[HR_MAX_DIMS];
    hr_tensor_release(out->grad);
    out->grad = g;
    return 0;
}

int hr_backward(hr_ctx *ctx, hr_tensor *root, bool keep_graph_grads) {
    char shape[96];
    if (hr_tensor_numel(root) != 1)
        return hr_error(ctx, "backward: needs a scalar (one element), got shape %s",
                        hr_shape_str(root, shape, sizeof shape));
    if (!root->requires_grad)
        return hr_error(ctx, "backward: the tensor does not require grad (no parameter with "
                             "requires_grad reaches it, or it was computed under no_grad)");
    if (!root->grad_fn) { /* a leaf: d(root)/d(root) = 1 */
        if (ensure_grad(ctx, root, false)) return -1;
        if (hr_tensor_on_host(root->grad)) {
            hr_tensor_set_flat(root->grad, 0, hr_tensor_get_flat(root->grad, 0) + 1.0);
            return 0;
        }
        hr_tensor *h = hr_tensor_host(ctx, root->grad);
        if (!h) return -1;
        hr_tensor_set_flat(h, 0, hr_tensor_get_flat(h, 0) + 1.0);
        int rc = hr_tensor_copy_into(ctx, root->grad, h);
        hr_tensor_release(h);
        return rc;
    }
    node_list order = {0};
    if (topo_sort(ctx, root->grad_fn, &order)) {
        free(order.items);
        return hr_error(ctx, "backward: out of memory sorting the graph");
    }
    int rc = 0;
    /* Intermediate gradients start at zero; leaf gradients accumulate across backward calls. */
    double t_zero = ctx->profiling ? hr_now() : 0;
    for (int k = 0; k < order.n && !rc; k++) {
        hr_node *n = order.items[k];
        if (view_grad_shareable(n, root)) rc = share_view_grad(ctx, n);
        else
            for (int j = 0; j < n->n_out && !rc; j++)
                if (n->out[j] && n->out[j]->grad_fn == n) rc = ensure_grad(ctx, n->out[j], true);
        for (int i = 0; i < n->n_in && !rc; i++)
            if (n->in[i] && n->in[i]->requires_grad && !n->in[i]->grad_fn) rc = ensure_grad(ctx, n->in[i], false);
    }
    if (ctx->profiling) ctx->grad_zero_s += hr_now() - t_zero;
    if (!rc) rc = hr_tensor_fill(ctx, root->grad, 1.0);
    for (int k = order.n - 1; k >= 0 && !rc; k--) {
        hr_node *n = order.items[k];
        if (n->op == HR_OP_VIEW && view_grad_is_shared(n)) continue; /* its gradient already landed */
        hr_device_kind dev = n->out[0] ? n->out[0]->storage->device.kind : HR_DEVICE_CPU;
        hr_op_fn bwd = ctx->ops[n->op].backward[dev];
        if (!bwd) {
            rc = hr_error(ctx, "backward: op '%s' has no backward on this device", hr_op_name(n->op));
            break;
        }
        for (int i = 0; i < n->n_in && !rc; i++)
            if (n->in[i] && n->in[i]->storage->version != n->in_version[i])
                rc = hr_error(ctx, "backward: input %d of op '%s' was written in place after the forward read it, so "
                                   "its gradient would be computed from stale values; run the forward again "
                                   "(graph:forward()) after changing inputs", i + 1, hr_op_name(n->op));
        if (!rc) {
            double t0 = ctx->profiling ? hr_now() : 0;
            rc = bwd(ctx, n);
            if (ctx->profiling) {
                ctx->op_time[n->op].bwd_s += hr_now() - t0;
                ctx->op_time[n->op].bwd_calls++;
            }
        }
        for (int i = 0; i < n->n_in && !rc && ctx->check_nan; i++) {
            const char *bad = non_finite(ctx, hr_node_in_grad(n, i));
            if (bad)
                rc = hr_error(ctx, "nan check: backward of op '%s' produced %s in the gradient of input %d",
                              hr_op_name(n->op), bad, i + 1);
        }
    }
    if (!keep_graph_grads) {
        for (int k = 0; k < order.n; k++) {
            hr_node *n = order.items[k];
            for (int j = 0; j < n->n_out; j++) {
                hr_tensor *o = n->out[j];
                if (o && o->grad_fn == n && o != root) {
                    hr_tensor_release(o->grad);
                    o->grad = NULL;
                }
            }
        }
    }
    free(order.items);
    return rc;
}

/* ---- capture and replay ---- */

int hr_capture_begin(hr_ctx *ctx) {
    if (ctx->capture) return hr_error(ctx, "capture: a capture is already running (captures do not nest)");
    ctx->capture = calloc(1, sizeof *ctx->capture);
    return ctx->capture ? 0 : hr_error(ctx, "capture: out of memory");
}

hr_graph *hr_capture_end(hr_ctx *ctx) {
    hr_graph *g = ctx->capture;
    if (!g) hr_error(ctx, "capture: no capture is running");
    ctx->capture = NULL;
    return g;
}

void hr_capture_abort(hr_ctx *ctx) {
    hr_graph_free(ctx->capture);
    ctx->capture = NULL;
}

int hr_graph_forward(hr_ctx *ctx, hr_graph *g) {
    for (int k = 0; k < g->n_nodes; k++)
        if (run_forward(ctx, g->nodes[k])) return -1;
    return 0;
}

void hr_graph_free(hr_graph *g) {
    if (!g) return;
    for (int k = 0; k < g->n_nodes; k++) {
        for (int j = 0; j < HR_NODE_MAX_OUT; j++) hr_tensor_release(g->outputs[k * HR_NODE_MAX_OUT + j]);
        hr_node_release(g->nodes[k]);
    }
    free(g->nodes);
    free(g->outputs);
    free(g);
}
