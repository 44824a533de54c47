//! Kernels that give each row of a `[rows, width]` buffer to one warp: its lanes stride the row
//! and combine their partial results with warp shuffles ([`WARP_REDUCTIONS`]). A row is read from
//! memory once and then from cache; the output is written once. Softmax and LayerNorm's
//! normalization run this way, forward and backward.
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

/// Rows (warps) per block.
const ROWS_PER_BLOCK: u32 = 8;

/// `warp_sum` and `warp_max`: the sum and max of a value over the warp's 32 lanes, in every lane.
pub const WARP_REDUCTIONS: &str = r#"
__device__ float warp_sum(float v) {
    for (int s = 16; s > 0; s >>= 1) v += __shfl_xor_sync(0xffffffffu, v, s);
    return v;
}
__device__ float warp_max(float v) {
    for (int s = 16; s > 0; s >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, s));
    return v;
}
"#;

/// A row kernel `dropbert_kernel(float *out, const float *in0, [const float *in1,] int rows)`,
/// each warp computing the row `(blockIdx.x * blockDim.x + threadIdx.x) / 32`; its inputs are
/// read as plain buffers.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaWarpRows {
    rows: usize,
    width: usize,
    kernel: Kernel,
    name: &'static str,
}

impl CudaWarpRows {
    pub fn new(
        rows: usize,
        width: usize,
        source: &str,
        name: &'static str,
        device: &Arc<CudaDevice>,
    ) -> Self {
        Self {
            rows,
            width,
            kernel: Kernel::compile(device, source),
            name,
        }
    }
}

impl Operator for CudaWarpRows {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let len = self.rows * self.width;
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
        let first = input_slice(&inputs[0].0, self.name);
        let launched = match inputs.get(1) {
            None => unsafe { function.launch(config, (&mut out, first, int(self.rows))) },
            Some((second, _)) => {
                let second = input_slice(second, self.name);
                unsafe { function.launch(config, (&mut out, first, second, int(self.rows))) }
            }
        };
        launched.unwrap_or_else(|e| panic!("{} launch: {e:?}", self.name));
        vec![device_tensor(out)]
    }
}
