//! The launcher of the row kernels, `dropbert_kernel(float *out, const float *in0, ..., int rows)`:
//! each row of `[rows, width]` inputs is taken by one warp (rows of hundreds: softmax, LayerNorm's
//! normalization; see `warp_rows::WARP_REDUCTIONS`). A row is read from memory once and then from
//! cache. The inputs are read as plain buffers; the output is written in full. (Rows a vocabulary
//! long take a block each: `logit_rows`.)
use std::{ffi::c_void, sync::Arc};

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, DeviceRepr, LaunchAsync, LaunchConfig};

use super::{
    device_buffer::{device_tensor, input_slice},
    kernel::{int, Kernel},
};

/// Rows a block takes when a warp takes a row.
const WARP_ROWS_PER_BLOCK: u32 = 8;

#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaRowKernel {
    rows: usize,
    /// Values written in all.
    out_len: usize,
    kernel: Kernel,
    name: &'static str,
}

impl CudaRowKernel {
    /// A warp a row (the row `(blockIdx.x * blockDim.x + threadIdx.x) / 32`), writing `width`
    /// values a row.
    pub fn warp_per_row(
        rows: usize,
        width: usize,
        source: &str,
        name: &'static str,
        device: &Arc<CudaDevice>,
    ) -> Self {
        Self {
            rows,
            out_len: rows * width,
            kernel: Kernel::compile(device, source),
            name,
        }
    }
}

impl Operator for CudaRowKernel {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        // Every element is written.
        let out = unsafe { self.kernel.device.alloc::<f32>(self.out_len) }.expect("GPU allocation");
        let ins: Vec<_> = inputs
            .iter()
            .map(|(input, _)| input_slice(input, self.name))
            .collect();
        let rows = int(self.rows);
        // The parameters point into `out`, `ins` and `rows`, which outlive the launch call.
        let mut parameters: Vec<*mut c_void> = [(&out).as_kernel_param()]
            .into_iter()
            .chain(ins.iter().map(|input| input.as_kernel_param()))
            .chain([rows.as_kernel_param()])
            .collect();
        let config = LaunchConfig {
            grid_dim: (
                u32::try_from(self.rows.div_ceil(WARP_ROWS_PER_BLOCK as usize))
                    .expect("grid")
                    .max(1),
                1,
                1,
            ),
            block_dim: (32 * WARP_ROWS_PER_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        unsafe { self.kernel.function.clone().launch(config, &mut parameters) }
            .unwrap_or_else(|e| panic!("{} launch: {e:?}", self.name));
        vec![device_tensor(out)]
    }
}
