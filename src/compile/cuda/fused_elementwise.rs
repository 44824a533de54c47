//! [`FusedElementwise`] on the GPU: the CPU's fusion pass plans the chains of elementwise
//! primitives, and each plan becomes one kernel of its own (see [`ElementwiseSource`]), instead of
//! a luminal_cuda kernel and a pass over memory per primitive.
use std::{ffi::c_void, sync::Arc};

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{
    CudaDevice, CudaSlice, DevicePtr, DeviceRepr, LaunchAsync, LaunchConfig,
};

use super::{
    bf16_operands::{bf16_tensor, input_address},
    bf16_rounding::Store,
    device_buffer::device_tensor,
    elementwise_source::{ElementwiseSource, InputKind},
    kernel::Kernel,
    packed_dropout_masks::mask_bits_input,
};
use crate::compile::cpu::FusedElementwise;

/// Threads per block.
const BLOCK: u32 = 256;
/// The most blocks launched: beyond, each thread takes several elements (the grid-stride loop).
const MAX_BLOCKS: usize = 1 << 16;

#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaFusedElementwise {
    source: ElementwiseSource,
    kernel: Kernel,
}

impl CudaFusedElementwise {
    /// The kernel for `op`, which reads `inputs` inputs.
    pub fn new(op: &FusedElementwise, inputs: usize, device: &Arc<CudaDevice>) -> Self {
        let source = ElementwiseSource::new(op, inputs);
        Self {
            kernel: Kernel::compile(device, &source.source()),
            source,
        }
    }

    /// The number of results (before any bf16 copies).
    pub fn results(&self) -> usize {
        self.source.output_count()
    }

    /// The same kernel storing its results as `stores` say (one per result).
    pub fn storing(&self, stores: Vec<Store>) -> Self {
        self.with_source(self.source.clone().with_stores(stores))
    }

    /// The same kernel reading `inputs` in bf16 too (any input can be).
    pub fn reading_bf16(&self, inputs: &[u8]) -> Self {
        self.with_source(self.source.clone().reading_bf16(inputs))
    }

    /// The same kernel reading each of `inputs` as its kind says.
    pub fn reading(&self, inputs: &[(usize, InputKind)]) -> Self {
        let source = inputs
            .iter()
            .fold(self.source.clone(), |source, &(input, kind)| {
                source.reading(input, kind)
            });
        self.with_source(source)
    }

    fn with_source(&self, source: ElementwiseSource) -> Self {
        Self {
            kernel: Kernel::compile(&self.kernel.device, &source.source()),
            source,
        }
    }
}

impl Operator for CudaFusedElementwise {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let device = &self.kernel.device;
        let len = self.source.len();
        let ins: Vec<u64> = inputs
            .iter()
            .zip(self.source.input_kinds())
            .map(|((input, _), kind)| address_of_kind(input, *kind))
            .collect();
        // Every element of every buffer is written.
        let outs: Vec<OutputBuffer> = self
            .source
            .output_buffers()
            .into_iter()
            .map(|(_, bf16)| OutputBuffer::new(device, bf16, len))
            .collect();
        if len > 0 {
            // The parameters point into `outs` and `ins`, which outlive the launch call (the
            // driver copies the parameters when the kernel is queued).
            let mut parameters: Vec<*mut c_void> = outs
                .iter()
                .map(OutputBuffer::parameter)
                .chain(ins.iter().map(|input| input.as_kernel_param()))
                .collect();
            let config = LaunchConfig {
                grid_dim: (blocks(len), 1, 1),
                block_dim: (BLOCK, 1, 1),
                shared_mem_bytes: 0,
            };
            unsafe { self.kernel.function.clone().launch(config, &mut parameters) }
                .expect("FusedElementwise launch");
        }
        outs.into_iter().map(OutputBuffer::tensor).collect()
    }
}

/// A buffer a kernel writes, of either type.
pub(super) enum OutputBuffer {
    Float(CudaSlice<f32>),
    Bf16(CudaSlice<u16>),
}

impl OutputBuffer {
    /// `len` values, to be written in full by the kernel.
    pub fn new(device: &Arc<CudaDevice>, bf16: bool, len: usize) -> Self {
        let allocated = unsafe {
            if bf16 {
                device.alloc::<u16>(len).map(OutputBuffer::Bf16)
            } else {
                device.alloc::<f32>(len).map(OutputBuffer::Float)
            }
        };
        allocated.expect("GPU allocation")
    }

    /// The kernel parameter pointing at the buffer's address (valid while `self` lives).
    pub fn parameter(&self) -> *mut c_void {
        match self {
            OutputBuffer::Float(buffer) => buffer.as_kernel_param(),
            OutputBuffer::Bf16(buffer) => buffer.as_kernel_param(),
        }
    }

    pub fn tensor(self) -> Tensor {
        match self {
            OutputBuffer::Float(buffer) => device_tensor(buffer),
            OutputBuffer::Bf16(buffer) => bf16_tensor(buffer),
        }
    }
}

/// The device address of an input held as `kind` says.
fn address_of_kind(input: &InputTensor<'_>, kind: InputKind) -> u64 {
    const WHAT: &str = "FusedElementwise";
    match kind {
        InputKind::MaskBits { .. } => *mask_bits_input(input, WHAT).device_ptr(),
        InputKind::Float | InputKind::Bf16 => input_address(input, kind == InputKind::Bf16, WHAT),
    }
}

fn blocks(len: usize) -> u32 {
    len.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS) as u32
}
