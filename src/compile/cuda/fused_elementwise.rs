//! [`FusedElementwise`] on the GPU: the CPU's fusion pass plans the chains of elementwise
//! primitives, and each plan becomes one kernel of its own (see [`ElementwiseSource`]), instead of
//! a luminal_cuda kernel and a pass over memory per primitive.
use std::{ffi::c_void, sync::Arc};

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, CudaSlice, DeviceRepr, LaunchAsync, LaunchConfig};

use super::{
    device_buffer::{device_tensor, input_slice},
    elementwise_source::ElementwiseSource,
    kernel::Kernel,
};
use crate::compile::cpu::FusedElementwise;

/// Threads per block.
const BLOCK: u32 = 256;
/// The most blocks launched: beyond, each thread takes several elements (the grid-stride loop).
const MAX_BLOCKS: usize = 1 << 16;

#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaFusedElementwise {
    len: usize,
    outputs: usize,
    kernel: Kernel,
}

impl CudaFusedElementwise {
    /// The kernel for `op`, which reads `inputs` inputs.
    pub fn new(op: &FusedElementwise, inputs: usize, device: &Arc<CudaDevice>) -> Self {
        let source = ElementwiseSource::new(op, inputs);
        Self {
            len: source.len(),
            outputs: source.output_count(),
            kernel: Kernel::compile(device, &source.source()),
        }
    }
}

impl Operator for CudaFusedElementwise {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let device = &self.kernel.device;
        let ins: Vec<&CudaSlice<f32>> = inputs
            .iter()
            .map(|(input, _)| input_slice(input, "FusedElementwise"))
            .collect();
        let outs: Vec<CudaSlice<f32>> = (0..self.outputs)
            // Every element is written.
            .map(|_| unsafe { device.alloc::<f32>(self.len) }.expect("GPU allocation"))
            .collect();
        if self.len > 0 {
            // The parameters point into `outs` and `ins`, which outlive the launch call (the
            // driver copies the parameters when the kernel is queued).
            let mut parameters: Vec<*mut c_void> = outs
                .iter()
                .map(|out| out.as_kernel_param())
                .chain(ins.iter().map(|input| input.as_kernel_param()))
                .collect();
            let config = LaunchConfig {
                grid_dim: (blocks(self.len), 1, 1),
                block_dim: (BLOCK, 1, 1),
                shared_mem_bytes: 0,
            };
            unsafe { self.kernel.function.clone().launch(config, &mut parameters) }
                .expect("FusedElementwise launch");
        }
        outs.into_iter().map(device_tensor).collect()
    }
}

fn blocks(len: usize) -> u32 {
    len.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS) as u32
}
