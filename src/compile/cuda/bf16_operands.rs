//! `--matmul bf16`: each GEMM's operands are rounded to bf16 in memory before cuBLAS reads them,
//! and the product is accumulated and written in float32, as PyTorch's bf16 autocast does for
//! a matmul. cuBLAS's own bf16 mode for float32 operands (`CUBLAS_COMPUTE_32F_FAST_16BF`) ran no
//! faster than TF32 on an H200 (docs/perf.md, run 11): the tensor cores reach their bf16 rate only
//! from bf16 in memory. The weights (the master copies), activations and optimizer state stay
//! float32; only the copies a GEMM reads are bf16.
use std::sync::Arc;

use luminal_cudarc::driver::{CudaDevice, CudaSlice, DeviceSlice, LaunchAsync};

use super::{
    bf16_rounding::SOURCE,
    kernel::{int, per_element, Kernel},
};

/// The rounding kernel, compiled once per device.
#[derive(Debug, Clone)]
pub struct Bf16Rounding {
    kernel: Kernel,
}

impl Bf16Rounding {
    pub fn new(device: &Arc<CudaDevice>) -> Self {
        Self {
            kernel: Kernel::compile(device, SOURCE),
        }
    }

    /// A bf16 copy of the whole of `buffer`, so that an operand's view (offsets and strides in
    /// elements) reads the copy as it reads the buffer.
    pub fn round(&self, buffer: &CudaSlice<f32>) -> CudaSlice<u16> {
        let len = buffer.len();
        // Every element is written.
        let mut rounded = unsafe { self.kernel.device.alloc::<u16>(len) }.expect("GPU allocation");
        let args = (&mut rounded, buffer, int(len));
        unsafe { self.kernel.function.clone().launch(per_element(len), args) }
            .expect("bf16 rounding launch");
        rounded
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nvrtc_compiles_the_kernel() {
        super::super::kernel::ptx(super::SOURCE);
    }
}
