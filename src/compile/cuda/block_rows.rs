//! Reductions for kernels that give each row of a `[rows, width]` buffer to one block of
//! [`BLOCK_THREADS`] threads, for rows too long for one warp (the masked-LM logits, a vocabulary
//! wide): the threads stride the row, then combine their partial results with warp shuffles and
//! across the block's warps through shared memory. Cross-entropy, its gradient and the accuracy
//! run this way (`logit_rows`).

/// Threads of a block that takes one row.
pub const BLOCK_THREADS: u32 = 256;

/// Block-wide reductions, each called once per kernel (their shared slots are not reused), by
/// every thread of the block, which all get the result; they use `warp_max` of
/// [`super::warp_rows::WARP_REDUCTIONS`].
/// - `block_max(v)`: the maximum over the block.
/// - `add_exponential(&m, &s, v)` keeps a thread's running maximum `m` (-inf for none yet) and
///   `s = sum exp(v - m)` over the values it has seen, rescaling `s` when the maximum rises, so
///   a row is read once; `block_exponential_sum(&m, &s)` merges them over the block.
pub const BLOCK_REDUCTIONS: &str = r#"
#define NEGATIVE_INFINITY __int_as_float(0xff800000)
__device__ float block_max(float v) {
    __shared__ float partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = warp_max(lane < (blockDim.x >> 5) ? partial[lane] : NEGATIVE_INFINITY);
        if (lane == 0) partial[0] = v;
    }
    __syncthreads();
    return partial[0];
}
__device__ void add_exponential(float *m, float *s, float v) {
    if (v > *m) {
        *s = *s * expf(*m - v) + 1.0f;
        *m = v;
    } else if (*m != NEGATIVE_INFINITY) {
        *s += expf(v - *m);
    }
}
// Four values at once: their loads are independent, so a thread has four in flight, which a row
// a block needs to approach the memory bandwidth (one at a time, a chain through m and s, the
// cross-entropy read 2.5 TB/s in run 36).
__device__ void add_exponentials4(float *m, float *s, float a, float b, float c, float d) {
    float top = fmaxf(fmaxf(*m, fmaxf(a, b)), fmaxf(c, d));
    if (top == NEGATIVE_INFINITY) return;
    *s = *s * expf(*m - top) + ((expf(a - top) + expf(b - top)) + (expf(c - top) + expf(d - top)));
    *m = top;
}
__device__ void merge_exponential_sums(float *m, float *s, float other_m, float other_s) {
    float top = fmaxf(*m, other_m);
    if (top == NEGATIVE_INFINITY) return;
    *s = *s * expf(*m - top) + other_s * expf(other_m - top);
    *m = top;
}
__device__ void warp_exponential_sum(float *m, float *s) {
    for (int k = 16; k > 0; k >>= 1) {
        float other_m = __shfl_xor_sync(0xffffffffu, *m, k);
        float other_s = __shfl_xor_sync(0xffffffffu, *s, k);
        merge_exponential_sums(m, s, other_m, other_s);
    }
}
__device__ void block_exponential_sum(float *m, float *s) {
    __shared__ float partial_m[32], partial_s[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    warp_exponential_sum(m, s);
    if (lane == 0) { partial_m[warp] = *m; partial_s[warp] = *s; }
    __syncthreads();
    if (warp == 0) {
        int used = lane < (blockDim.x >> 5);
        *m = used ? partial_m[lane] : NEGATIVE_INFINITY;
        *s = used ? partial_s[lane] : 0.0f;
        warp_exponential_sum(m, s);
        if (lane == 0) { partial_m[0] = *m; partial_s[0] = *s; }
    }
    __syncthreads();
    *m = partial_m[0];
    *s = partial_s[0];
}
"#;
