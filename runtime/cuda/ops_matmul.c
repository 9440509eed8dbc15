/* matmul on the GPU: the CPU backend's gemm calls (cpu/backend.c), each through cuBLAS. */
#include <stdint.h>

#include "cuda/backend.h"

#define ATTR(i) (n->iattr[i])

static int matmul_forward(hr_ctx *ctx, hr_node *n) {
    int64_t ta = ATTR(0), tb = ATTR(1), batch = ATTR(2), m = ATTR(3), nn = ATTR(4), k = ATTR(5), shared_b = ATTR(6);
    return hr_cuda_gemm(ctx, n->in[0]->dtype, batch, (int)ta, (int)tb, m, nn, k, 1.0, hr_cuda_ptr(n->in[0]), m * k,
                        hr_cuda_ptr(n->in[1]), shared_b ? 0 : k * nn, 0.0, hr_cuda_ptr(n->out[0]), m * nn);
}

/* With C = op(A) op(B): dA = dC op(B)^T and dB = op(A)^T dC, written for each stored layout (the
 * CPU's four calls). */
static int matmul_backward(hr_ctx *ctx, hr_node *n) {
    int64_t ta = ATTR(0), tb = ATTR(1), batch = ATTR(2), m = ATTR(3), nn = ATTR(4), k = ATTR(5),
            sb = ATTR(6) ? 0 : k * nn;
    hr_dtype dt = n->in[0]->dtype;
    uint64_t A = hr_cuda_ptr(n->in[0]), B = hr_cuda_ptr(n->in[1]), dC = hr_cuda_ptr(hr_node_out_grad(n, 0)),
             dA = hr_cuda_ptr(hr_node_in_grad(n, 0)), dB = hr_cuda_ptr(hr_node_in_grad(n, 1));
    if (!dC) return 0;
    if (dA) {
        int rc = !ta ? hr_cuda_gemm(ctx, dt, batch, 0, !tb, m, k, nn, 1.0, dC, m * nn, B, sb, 1.0, dA, m * k)
                     : hr_cuda_gemm(ctx, dt, batch, (int)tb, 1, k, m, nn, 1.0, B, sb, dC, m * nn, 1.0, dA, m * k);
        if (rc) return -1;
    }
    if (dB) { /* a shared B (stride 0) accumulates over the batch */
        int rc = !tb ? hr_cuda_gemm(ctx, dt, batch, !ta, 0, k, nn, m, 1.0, A, m * k, dC, m * nn, 1.0, dB, sb)
                     : hr_cuda_gemm(ctx, dt, batch, 1, (int)ta, nn, k, m, 1.0, dC, m * nn, A, m * k, 1.0, dB, sb);
        if (rc) return -1;
    }
    return 0;
}

void hr_cuda_register_matmul(hr_ctx *ctx) {
    ctx->ops[HR_OP_MATMUL].forward[HR_DEVICE_CUDA] = matmul_forward;
    ctx->ops[HR_OP_MATMUL].backward[HR_DEVICE_CUDA] = matmul_backward;
}
