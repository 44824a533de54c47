//! [`Softmax`] and [`SoftmaxGradient`] on the GPU: a warp per row, its lanes striding the row
//! (the row length is baked in), the row's max and sums reduced by warp shuffles. A row is read
//! from memory once and then from cache; the output is written once.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync, LaunchConfig};

use super::{
    device_buffer::{device_tensor, input_slice},
    kernel::{int, Kernel},
};
use crate::ops::{Softmax, SoftmaxGradient};

/// Rows (warps) per block.
const ROWS_PER_BLOCK: u32 = 8;

/// Each lane's warp and row, and the warp-wide sum and max.
const PRELUDE: &str = r#"
__device__ float warp_sum(float v) {
    for (int s = 16; s > 0; s >>= 1) v += __shfl_xor_sync(0xffffffffu, v, s);
    return v;
}
__device__ float warp_max(float v) {
    for (int s = 16; s > 0; s >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, s));
    return v;
}
"#;

pub(super) fn forward_source(row: usize) -> String {
    format!(
        r#"{PRELUDE}
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
        r#"{PRELUDE}
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

/// A softmax kernel (forward or gradient) over `rows` rows, reading its inputs as plain buffers.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaSoftmaxRows {
    rows: usize,
    row: usize,
    kernel: Kernel,
}

impl CudaSoftmaxRows {
    pub fn forward(op: &Softmax, device: &Arc<CudaDevice>) -> Self {
        Self {
            rows: op.rows,
            row: op.row,
            kernel: Kernel::compile(device, &forward_source(op.row)),
        }
    }

    pub fn gradient(op: &SoftmaxGradient, device: &Arc<CudaDevice>) -> Self {
        Self {
            rows: op.rows,
            row: op.row,
            kernel: Kernel::compile(device, &gradient_source(op.row)),
        }
    }
}

impl Operator for CudaSoftmaxRows {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let len = self.rows * self.row;
        // Every element is written.
        let mut out = unsafe { self.kernel.device.alloc::<f32>(len) }.expect("GPU allocation");
        let config = LaunchConfig {
            grid_dim: (
                u32::try_from(self.rows.div_ceil(ROWS_PER_BLOCK as usize)).expect("grid"),
                1,
                1,
            ),
            block_dim: (32 * ROWS_PER_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let function = self.kernel.function.clone();
        let first = input_slice(&inputs[0].0, "softmax input");
        let launched = match inputs.get(1) {
            None => unsafe { function.launch(config, (&mut out, first, int(self.rows))) },
            Some((dy, _)) => {
                let dy = input_slice(dy, "softmax gradient dy");
                unsafe { function.launch(config, (&mut out, first, dy, int(self.rows))) }
            }
        };
        launched.expect("softmax launch");
        vec![device_tensor(out)]
    }
}
