//! [`Softmax`] and [`SoftmaxGradient`] on the GPU as warp-per-row kernels ([`CudaRowKernel`]), the
//! row length baked in.
use std::sync::Arc;

use luminal_cudarc::driver::CudaDevice;

use super::{row_kernel::CudaRowKernel, warp_rows::WARP_REDUCTIONS};
use crate::ops::{Softmax, SoftmaxGradient};

pub(super) fn forward_source(row: usize) -> String {
    format!(
        r#"{WARP_REDUCTIONS}
extern "C" __global__ void dropbert_kernel(float *out, const float *x, int rows) {{
    int r = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (r >= rows) return;
    const float *in = x + (long long)r * {row};
    float *o = out + (long long)r * {row};
    float m = __int_as_float(0xff800000);
    for (int j = lane; j < {row}; j += 32) m = fmaxf(m, in[j]);
    m = warp_max(m);
    float sum = 0.0f;
    for (int j = lane; j < {row}; j += 32) sum += expf(in[j] - m);
    float inverse = 1.0f / warp_sum(sum);
    for (int j = lane; j < {row}; j += 32) o[j] = expf(in[j] - m) * inverse;
}}"#
    )
}

pub(super) fn gradient_source(row: usize) -> String {
    format!(
        r#"{WARP_REDUCTIONS}
extern "C" __global__ void dropbert_kernel(float *out, const float *y, const float *dy, int rows) {{
    int r = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (r >= rows) return;
    long long at = (long long)r * {row};
    float dot = 0.0f;
    for (int j = lane; j < {row}; j += 32) dot += y[at + j] * dy[at + j];
    dot = warp_sum(dot);
    for (int j = lane; j < {row}; j += 32) out[at + j] = y[at + j] * (dy[at + j] - dot);
}}"#
    )
}

pub fn cuda_softmax(op: &Softmax, device: &Arc<CudaDevice>) -> CudaRowKernel {
    CudaRowKernel::warp_per_row(op.rows, op.row, &forward_source(op.row), "Softmax", device)
}

pub fn cuda_softmax_gradient(op: &SoftmaxGradient, device: &Arc<CudaDevice>) -> CudaRowKernel {
    CudaRowKernel::warp_per_row(
        op.rows,
        op.row,
        &gradient_source(op.row),
        "SoftmaxGradient",
        device,
    )
}
