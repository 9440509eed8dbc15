/* The op interface: every op has an id, a name, and per-backend forward and backward functions that
 * read a node (inputs, outputs, saved buffers, attributes). Core knows ops by id only; backends fill
 * in the functions (cpu/cpu_backend.c, later cuda/). */
#ifndef HR_OP_H
#define HR_OP_H

#include <stdint.h>

#include "core/tensor.h"

/* X(id, name): the op list. A new op is a line here, a constructor in core/ops.c and a backend
 * implementation. */
#define HR_OP_LIST(X)                                                                            \
    X(VIEW, "view") X(CONTIGUOUS, "contiguous") X(CAST, "cast") X(CONCAT, "concat")              \
    X(MATMUL, "matmul") X(ADD, "add") X(SUB, "sub") X(MUL, "mul") X(DIV, "div")                 \
    X(AFFINE, "affine") X(EXP, "exp") X(TANH, "tanh") X(SIGMOID, "sigmoid") X(SILU, "silu")       \
    X(GELU, "gelu") X(SOFTPLUS, "softplus") X(RELU, "relu") X(RELU_SQUARED, "relu_squared")      \
    X(SUM, "sum") X(MEAN, "mean") X(LAYER_NORM, "layer_norm") X(RMS_NORM, "rms_norm")             \
    X(GROUP_NORM, "group_norm") X(GATED_RMS_NORM, "gated_rms_norm") X(EMBEDDING, "embedding")     \
    X(TOKEN_SHIFT, "token_shift") X(CONV1D_CAUSAL, "conv1d_causal") X(WKV6, "wkv6")               \
    X(SSD_SCAN, "ssd_scan") X(CROSS_ENTROPY, "cross_entropy")

typedef enum {
#define HR_OP_ENUM(id, name) HR_OP_##id,
    HR_OP_LIST(HR_OP_ENUM)
#undef HR_OP_ENUM
    HR_OP_COUNT
} hr_op_id;

#define HR_NODE_MAX_IN 8
#define HR_NODE_MAX_OUT 2
#define HR_NODE_MAX_SAVED 3
#define HR_NODE_MAX_ATTR 8

/* One recorded application of an op. Inputs and saved buffers are owned references; outputs are
 * weak (each output owns a reference to its node through grad_fn, and clears its slot when freed). */
typedef struct hr_node {
    int refcount;
    hr_op_id op;
    int n_in, n_out;
    hr_tensor *in[HR_NODE_MAX_IN];        /* NULL for an absent optional input */
    uint64_t in_version[HR_NODE_MAX_IN];  /* each input's storage version when the forward read it */
    hr_tensor *out[HR_NODE_MAX_OUT];      /* NULL once that output has been freed */
    hr_tensor *saved[HR_NODE_MAX_SAVED];  /* op-owned buffers kept for the backward (norm stats, ...) */
    uint64_t visit;                       /* the backward pass that last reached this node */
    struct hr_node *next_dead;            /* the queue of nodes being freed (hr_node_release) */
    int64_t iattr[HR_NODE_MAX_ATTR];      /* op-specific integer attributes */
    double fattr[HR_NODE_MAX_ATTR];       /* op-specific real attributes */
} hr_node;

struct hr_ctx;
typedef int (*hr_op_fn)(struct hr_ctx *ctx, hr_node *node);

typedef struct {
    const char *name;
    hr_op_fn forward[HR_DEVICE_KINDS];
    hr_op_fn backward[HR_DEVICE_KINDS];   /* NULL: the op is not differentiable on that device */
} hr_op;

const char *hr_op_name(hr_op_id op);

/* Gradient buffer of node input i, or NULL when that input needs no gradient. */
static inline hr_tensor *hr_node_in_grad(const hr_node *n, int i) {
    return n->in[i] && n->in[i]->requires_grad ? n->in[i]->grad : NULL;
}
/* Gradient flowing into node output j, or NULL (output freed, or no gradient reached it). */
static inline hr_tensor *hr_node_out_grad(const hr_node *n, int j) {
    return n->out[j] ? n->out[j]->grad : NULL;
}

#endif
