//! Attention in one kernel forward and one backward (`--matmul bf16`, sequences of at most 128
//! tokens): the scores, their softmax and dropout, and the context, without writing the scores or
//! the probabilities; backward, the probabilities recomputed from the queries and keys (the
//! dropout mask's bits handed on by the forward kernel, 64 a lane), and the gradients of the
//! queries, keys and values from one block per sequence and head. They replace the six products
//! and two probability kernels that `attention_fusion` finds. The kernels' text is in
//! `fused_attention_source`.
use std::{ffi::c_void, sync::Arc};

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{
    sys::CUfunction_attribute_enum, CudaDevice, DevicePtr, DeviceRepr, LaunchAsync, LaunchConfig,
};

use super::{
    attention_fusion::FusedAttentionOps,
    attention_shape::{AttentionShape, OperandLayout, FORWARD_WARPS},
    bf16_operands::input_addresses,
    device_buffer::{raw_input, raw_tensor},
    dropout_mask::philox_key_of,
    fused_attention_source::{backward_source, forward_source},
    fused_elementwise::OutputBuffer,
    kernel::Kernel,
};

/// The forward kernel's inputs: queries, keys and values (bf16), the padding bias `[batch, keys]`
/// (float32) and, with dropout, the random key (read on the host).
pub mod forward_input {
    pub const QUERY: u8 = 0;
    pub const KEY: u8 = 1;
    pub const VALUE: u8 = 2;
    pub const BIAS: u8 = 3;
    pub const RANDOM_KEY: u8 = 4;
}

/// The backward kernel's inputs: queries, keys, values and the context's gradient (bf16), the
/// padding bias and, with dropout, the mask bits the forward kernel wrote (its output 1).
pub mod backward_input {
    pub const QUERY: u8 = 0;
    pub const KEY: u8 = 1;
    pub const VALUE: u8 = 2;
    pub const CONTEXT_GRADIENT: u8 = 3;
    pub const BIAS: u8 = 4;
    pub const KEEP_BITS: u8 = 5;
}

/// The context of attention, `[batch, heads, queries, head_dim]` laid out as its last layout
/// says; with `keep_bits` and dropout, also the mask's bits for the backward kernel (output 1).
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaFusedAttention {
    shape: AttentionShape,
    layouts: [OperandLayout; 4],
    bf16_output: bool,
    keep_bits: bool,
    kernel: Kernel,
}

impl CudaFusedAttention {
    pub fn new(
        shape: AttentionShape,
        layouts: [OperandLayout; 4],
        bf16_output: bool,
        keep_bits: bool,
        device: &Arc<CudaDevice>,
    ) -> Self {
        let keep_bits = keep_bits && shape.mask.is_some();
        let source = forward_source(&shape, layouts, bf16_output, keep_bits);
        Self {
            kernel: Kernel::compile_for_tensor_cores(device, &source),
            shape,
            layouts,
            bf16_output,
            keep_bits,
        }
    }

    /// The same kernel writing its context in bf16.
    pub fn writing_bf16(&self) -> Self {
        let (shape, layouts) = (self.shape.clone(), self.layouts);
        Self::new(shape, layouts, true, self.keep_bits, &self.kernel.device)
    }

    pub fn writes_bf16(&self) -> bool {
        self.bf16_output
    }

    /// The inputs read in bf16.
    pub fn bf16_inputs() -> &'static [u8] {
        use forward_input::*;
        &[QUERY, KEY, VALUE]
    }
}

impl Operator for CudaFusedAttention {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let s = &self.shape;
        let [key0, key1] = s.mask.as_ref().map_or([0, 0], |_| {
            philox_key_of(&inputs[usize::from(forward_input::RANDOM_KEY)].0)
        });
        let out = OutputBuffer::new(
            &self.kernel.device,
            self.bf16_output,
            s.batch * s.heads * s.queries * s.head_dim,
        );
        let read = usize::from(forward_input::BIAS) + 1;
        let ins = input_addresses(&inputs[..read], Self::bf16_inputs(), "FusedAttention");
        let keep = self.keep_bits.then(|| {
            // Every word is written.
            unsafe { self.kernel.device.alloc::<u64>(s.keep_words()) }.expect("GPU allocation")
        });
        let mut parameters: Vec<*mut c_void> = [out.parameter()]
            .into_iter()
            .chain(keep.iter().map(|keep| keep.as_kernel_param()))
            .chain(ins.iter().map(|input| input.as_kernel_param()))
            .chain([key0.as_kernel_param(), key1.as_kernel_param()])
            .collect();
        let config = LaunchConfig {
            grid_dim: (u32::try_from(s.forward_blocks()).expect("grid"), 1, 1),
            block_dim: (32 * FORWARD_WARPS as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        unsafe { self.kernel.function.clone().launch(config, &mut parameters) }
            .expect("FusedAttention launch");
        [out.tensor()]
            .into_iter()
            .chain(keep.map(raw_tensor))
            .collect()
    }
}

/// The gradients of attention's queries, keys and values (outputs 0, 1 and 2), each
/// `[batch, heads, rows, head_dim]` laid out as its layout (the last three) says.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaFusedAttentionGradient {
    shape: AttentionShape,
    layouts: [OperandLayout; 7],
    bf16_outputs: [bool; 3],
    kernel: Kernel,
}

impl CudaFusedAttentionGradient {
    pub fn new(
        shape: AttentionShape,
        layouts: [OperandLayout; 7],
        bf16_outputs: [bool; 3],
        device: &Arc<CudaDevice>,
    ) -> Self {
        let source = backward_source(&shape, layouts, bf16_outputs);
        let kernel = Kernel::compile_for_tensor_cores(device, &source);
        let bytes = i32::try_from(shape.backward_shared_bytes()).expect("shared memory");
        kernel
            .function
            .set_attribute(
                CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes,
            )
            .expect("the fused attention gradient's shared memory");
        Self {
            shape,
            layouts,
            bf16_outputs,
            kernel,
        }
    }

    /// The same kernel writing output `output` in bf16.
    pub fn writing_bf16(&self, output: usize) -> Self {
        let mut outputs = self.bf16_outputs;
        outputs[output] = true;
        Self::new(
            self.shape.clone(),
            self.layouts,
            outputs,
            &self.kernel.device,
        )
    }

    pub fn writes_bf16(&self, output: usize) -> bool {
        self.bf16_outputs[output]
    }

    /// The inputs read in bf16.
    pub fn bf16_inputs() -> &'static [u8] {
        use backward_input::*;
        &[QUERY, KEY, VALUE, CONTEXT_GRADIENT]
    }
}

impl Operator for CudaFusedAttentionGradient {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let s = &self.shape;
        let device = &self.kernel.device;
        let per_head = [s.queries, s.keys, s.keys];
        let outs: Vec<OutputBuffer> = per_head
            .iter()
            .zip(self.bf16_outputs)
            .map(|(&rows, bf16)| {
                OutputBuffer::new(device, bf16, s.batch * s.heads * rows * s.head_dim)
            })
            .collect();
        let read = usize::from(backward_input::BIAS) + 1;
        let ins = input_addresses(
            &inputs[..read],
            Self::bf16_inputs(),
            "FusedAttentionGradient",
        );
        let keep = s.mask.as_ref().map(|_| {
            let bits = raw_input::<u64>(
                &inputs[usize::from(backward_input::KEEP_BITS)].0,
                "FusedAttentionGradient",
                "the forward kernel's mask bits",
            );
            *bits.device_ptr()
        });
        let mut parameters: Vec<*mut c_void> = outs
            .iter()
            .map(OutputBuffer::parameter)
            .chain(ins.iter().map(|input| input.as_kernel_param()))
            .chain(keep.iter().map(|keep| keep.as_kernel_param()))
            .collect();
        let config = LaunchConfig {
            grid_dim: (u32::try_from(s.batch * s.heads).expect("grid"), 1, 1),
            block_dim: (32 * s.backward_warps() as u32, 1, 1),
            shared_mem_bytes: u32::try_from(s.backward_shared_bytes()).expect("shared memory"),
        };
        unsafe { self.kernel.function.clone().launch(config, &mut parameters) }
            .expect("FusedAttentionGradient launch");
        outs.into_iter().map(OutputBuffer::tensor).collect()
    }
}

/// The fused attention kernels of one device.
pub struct CudaFusedAttentionOps<'a>(pub &'a Arc<CudaDevice>);

impl FusedAttentionOps for CudaFusedAttentionOps<'_> {
    fn forward(
        &self,
        shape: &AttentionShape,
        layouts: [OperandLayout; 4],
        mask_for_backward: bool,
    ) -> Box<dyn Operator> {
        let (shape, device) = (shape.clone(), self.0);
        Box::new(CudaFusedAttention::new(
            shape,
            layouts,
            false,
            mask_for_backward,
            device,
        ))
    }

    fn backward(&self, shape: &AttentionShape, layouts: [OperandLayout; 7]) -> Box<dyn Operator> {
        Box::new(CudaFusedAttentionGradient::new(
            shape.clone(),
            layouts,
            [false; 3],
            self.0,
        ))
    }
}
