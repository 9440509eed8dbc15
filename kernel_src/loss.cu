// loss: softmax cross-entropy over integer targets, forward and backward, with the CPU reference's
// math (runtime/cpu/loss.h): per row i, lse_i = logsumexp(logits[i]) (row max subtracted first) and
// loss_i = lse_i - logits[i, target_i]; the loss is the mean over rows whose target is not
// ignore_index (0 when none counts). logits: (n, V); targets: (n) int64.
//
// The forward runs one block per row (a fixed reduction tree in shared memory), then one thread
// adds the per-row losses in increasing row order, as the CPU does: no atomics, bitwise
// repeatable. The backward reads dloss and the count from device memory, so a captured step never
// waits for the host. BLOCK (a power of two) is a template parameter for the tuner. The sums of a
// row's exponentials and of the row losses are kept in double even for float, as the CPU keeps
// them: a float sum of ~1 over 50k terms of ~1e-6 (a peaked row), or over 1e5 rows, loses ~1e-4.

#include "common.cuh"

// Reduces buf[0..BLOCK) into buf[0] by a fixed tree (max or sum). Every thread must call it.
template <typename T, int BLOCK, bool MAX> __device__ void hr_ce_tree(T *buf) {
    for (int stride = BLOCK / 2; stride > 0; stride /= 2) {
        __syncthreads();
        if (threadIdx.x < stride) {
            const T a = buf[threadIdx.x], b = buf[threadIdx.x + stride];
            buf[threadIdx.x] = MAX ? (b > a ? b : a) : a + b;
        }
    }
    __syncthreads();
}

// grid: n blocks; block: BLOCK threads. Writes lse (n) and row_loss (n): 0 for ignored rows.
// @tune hr_cross_entropy_rows<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256; require (ELEM + 8) * BLOCK <= SHARED
template <typename T, int BLOCK>
__global__ void __launch_bounds__(BLOCK) hr_cross_entropy_rows(hr_i64 n, hr_i64 V, const T *__restrict__ logits,
                                                               const hr_i64 *__restrict__ targets, hr_i64 ignore_index,
                                                               T *__restrict__ lse, T *__restrict__ row_loss) {
    __shared__ T buf[BLOCK];
    __shared__ double dbuf[BLOCK];
    const hr_i64 i = blockIdx.x;
    if (i >= n) return;
    const T *row = logits + i * V;
    const hr_i64 target = targets[i];
    if (target == ignore_index) { // uniform over the block
        if (threadIdx.x == 0) {
            lse[i] = T(0);
            row_loss[i] = T(0);
        }
        return;
    }
    T m = row[(hr_i64)threadIdx.x < V ? threadIdx.x : 0]; // V >= 1: a real element, no infinity needed
    for (hr_i64 v = threadIdx.x; v < V; v += BLOCK) m = row[v] > m ? row[v] : m;
    buf[threadIdx.x] = m;
    hr_ce_tree<T, BLOCK, true>(buf);
    const T mx = buf[0];
    __syncthreads();
    double s = 0;
    for (hr_i64 v = threadIdx.x; v < V; v += BLOCK) s += exp((double)(row[v] - mx));
    dbuf[threadIdx.x] = s;
    hr_ce_tree<double, BLOCK, false>(dbuf);
    if (threadIdx.x == 0) {
        const T l = mx + T(log(dbuf[0]));
        lse[i] = l;
        row_loss[i] = l - row[target];
    }
}

// One thread: loss = sum of row_loss over counted rows in row order / count; count written too.
template <typename T>
__global__ void hr_cross_entropy_mean(hr_i64 n, const hr_i64 *__restrict__ targets, hr_i64 ignore_index,
                                      const T *__restrict__ row_loss, T *__restrict__ loss, hr_i64 *__restrict__ count) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double s = 0;
    hr_i64 c = 0;
    for (hr_i64 i = 0; i < n; i++)
        if (targets[i] != ignore_index) {
            s += (double)row_loss[i];
            c++;
        }
    *loss = c ? T(s / (double)c) : T(0);
    *count = c;
}

// dlogits[i, v] += dloss / count * (exp(logits[i, v] - lse[i]) - [v == target_i]) for counted rows.
// grid-stride over n * V elements.
template <typename T>
__global__ void hr_cross_entropy_backward(hr_i64 n, hr_i64 V, const T *__restrict__ logits,
                                          const hr_i64 *__restrict__ targets, hr_i64 ignore_index,
                                          const T *__restrict__ lse, const hr_i64 *__restrict__ count,
                                          const T *__restrict__ dloss, T *__restrict__ dlogits) {
    const hr_i64 c = *count;
    if (c == 0) return;
    const T scale = *dloss / T(c);
    HR_GRID_STRIDE(e, n * V) {
        const hr_i64 i = e / V, v = e % V, target = targets[i];
        if (target == ignore_index) continue;
        const T p = hr_exp<T>(logits[e] - lse[i]);
        dlogits[e] += scale * (p - (v == target ? T(1) : T(0)));
    }
}
