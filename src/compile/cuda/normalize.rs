//! [`Normalize`] and [`NormalizeGradient`] on the GPU as warp-per-row kernels ([`CudaRowKernel`]),
//! the width and epsilon baked in.
use std::sync::Arc;

use luminal_cudarc::driver::CudaDevice;

use super::{row_kernel::CudaRowKernel, warp_rows::WARP_REDUCTIONS};
use crate::ops::{Normalize, NormalizeGradient};

/// Each row's mean and `1 / sqrt(var + epsilon)` into `mean` and `inverse_std`, as
/// `crate::ops::row_statistics` computes them (the variance from the deviations).
fn statistics(width: usize, epsilon: f32) -> String {
    format!(
        r#"{WARP_REDUCTIONS}
__device__ void row_statistics(const float *x, int lane, float *mean, float *inverse_std) {{
    float sum = 0.0f;
    for (int j = lane; j < {width}; j += 32) sum += x[j];
    float m = warp_sum(sum) / {width}.0f;
    float squares = 0.0f;
    for (int j = lane; j < {width}; j += 32) {{ float d = x[j] - m; squares += d * d; }}
    *mean = m;
    *inverse_std = 1.0f / sqrtf(warp_sum(squares) / {width}.0f + __uint_as_float(0x{epsilon:08x}u));
}}
"#,
        epsilon = epsilon.to_bits()
    )
}

pub(super) fn forward_source(width: usize, epsilon: f32) -> String {
    format!(
        r#"{statistics}
extern "C" __global__ void dropbert_kernel(float *out, const float *x, int rows) {{
    int r = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (r >= rows) return;
    long long at = (long long)r * {width};
    float mean, inverse_std;
    row_statistics(x + at, lane, &mean, &inverse_std);
    for (int j = lane; j < {width}; j += 32) out[at + j] = (x[at + j] - mean) * inverse_std;
}}"#,
        statistics = statistics(width, epsilon)
    )
}

pub(super) fn gradient_source(width: usize, epsilon: f32) -> String {
    format!(
        r#"{statistics}
extern "C" __global__ void dropbert_kernel(float *out, const float *x, const float *dy, int rows) {{
    int r = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (r >= rows) return;
    long long at = (long long)r * {width};
    float mean, inverse_std;
    row_statistics(x + at, lane, &mean, &inverse_std);
    float sum_dy = 0.0f, sum_dy_y = 0.0f;
    for (int j = lane; j < {width}; j += 32) {{
        float d = dy[at + j];
        sum_dy += d;
        sum_dy_y += d * (x[at + j] - mean) * inverse_std;
    }}
    float mean_dy = warp_sum(sum_dy) / {width}.0f, mean_dy_y = warp_sum(sum_dy_y) / {width}.0f;
    for (int j = lane; j < {width}; j += 32) {{
        float y = (x[at + j] - mean) * inverse_std;
        out[at + j] = (dy[at + j] - mean_dy - y * mean_dy_y) * inverse_std;
    }}
}}"#,
        statistics = statistics(width, epsilon)
    )
}

pub fn cuda_normalize(op: &Normalize, device: &Arc<CudaDevice>) -> CudaRowKernel {
    let source = forward_source(op.width, op.epsilon);
    CudaRowKernel::warp_per_row(op.rows, op.width, &source, "Normalize", device)
}

pub fn cuda_normalize_gradient(op: &NormalizeGradient, device: &Arc<CudaDevice>) -> CudaRowKernel {
    let source = gradient_source(op.width, op.epsilon);
    CudaRowKernel::warp_per_row(op.rows, op.width, &source, "NormalizeGradient", device)
}
