/* Autograd: launching op nodes, reverse-mode backward over the recorded nodes, and graph capture
 * (record a computation once, replay its forward every step without going back through Lua). */
#ifndef HR_GRAPH_H
#define HR_GRAPH_H

#include <stdbool.h>

#include "core/context.h"
#include "core/op.h"

/* A new node with one reference, or NULL (error set). */
hr_node *hr_node_new(hr_ctx *ctx, hr_op_id op);
void hr_node_release(hr_node *n);

/* Runs the node's forward on its device, then links its outputs for autograd (when grad is enabled
 * and an input requires grad) and appends it to the graph being captured. Consumes the caller's
 * reference to the node. On failure the node and its outputs are released and -1 is returned with
 * the error set, naming the op. */
int hr_node_launch(hr_ctx *ctx, hr_node *n);

/* d(root)/d(every tensor that requires grad), accumulated into each leaf's .grad. root must hold one
 * element. keep_graph_grads keeps the gradient buffers of intermediate tensors allocated (a captured
 * graph reuses them every step); otherwise they are freed when the backward finishes. */
int hr_backward(hr_ctx *ctx, hr_tensor *root, bool keep_graph_grads);

/* A captured computation: its nodes in execution order, with owned references to them and to
 * their outputs so that every buffer survives between replays. */
typedef struct hr_graph {
    hr_node **nodes;
    hr_tensor **outputs;        /* n_nodes * HR_NODE_MAX_OUT slots, NULL where absent */
    int n_nodes, capacity;
} hr_graph;

/* Starts recording every launched node. Fails if a capture is already running. */
int hr_capture_begin(hr_ctx *ctx);
/* Stops recording and hands the graph to the caller (free with hr_graph_free). */
hr_graph *hr_capture_end(hr_ctx *ctx);
/* Stops recording and drops what was recorded (used on errors). */
void hr_capture_abort(hr_ctx *ctx);
/* Re-runs every node's forward, in order, into the same output buffers. */
int hr_graph_forward(hr_ctx *ctx, hr_graph *g);
void hr_graph_free(hr_graph *g);

#endif
