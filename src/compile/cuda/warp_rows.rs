//! Reductions for kernels that give each row of a `[rows, width]` buffer to one warp
//! (`row_kernel::CudaRowKernel::warp_per_row`): its lanes stride the row and combine their
//! partial results with warp shuffles. Softmax and LayerNorm's normalization run this way,
//! forward and backward.

/// `group_sum` and `group_max`: the sum and max of a value over each group of `lanes` neighbouring
/// lanes (a power of two up to 32), in every lane of the group, for kernels that give a short row
/// a group of lanes; `warp_sum` and `warp_max`: the same over the warp's 32 lanes. Every lane of
/// the warp must call them.
pub const WARP_REDUCTIONS: &str = r#"
__device__ float group_sum(float v, int lanes) {
    for (int s = lanes >> 1; s > 0; s >>= 1) v += __shfl_xor_sync(0xffffffffu, v, s);
    return v;
}
__device__ float group_max(float v, int lanes) {
    for (int s = lanes >> 1; s > 0; s >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, s));
    return v;
}
__device__ float warp_sum(float v) { return group_sum(v, 32); }
__device__ float warp_max(float v) { return group_max(v, 32); }
"#;
