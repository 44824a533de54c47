//! `--matmul bf16`: GEMM operands are rounded to bf16 in memory before cuBLAS reads them, and the
//! product is accumulated and written in float32, as PyTorch's bf16 autocast does for a matmul.
//! cuBLAS's own bf16 mode for float32 operands (`CUBLAS_COMPUTE_32F_FAST_16BF`) ran no faster
//! than TF32 on an H200 (docs/perf.md, run 11): the tensor cores reach their bf16 rate only from
//! bf16 in memory. The weights (the master copies), activations and optimizer state stay float32;
//! only the copies GEMMs read are bf16.
//!
//! Each float32 tensor that GEMMs read is rounded once, by one [`CudaRoundToBf16`] node that all
//! those GEMMs read ([`share_rounded_operands`]): a layer's input feeds the query, key and value
//! products forward and their weight gradients backward, six reads of one rounded copy. Where
//! every reader of the float32 tensor is a GEMM, the float32 buffer is freed once rounded, and
//! only the half-size copy waits for the backward pass.
use std::{collections::HashMap, sync::Arc};

use luminal::{
    op::{InputTensor, Operator},
    prelude::{
        petgraph::{visit::EdgeRef, Direction},
        *,
    },
};
use luminal_cudarc::driver::{CudaDevice, CudaSlice, DeviceSlice, LaunchAsync};

use super::{
    bf16_rounding::SOURCE,
    contraction::CudaContraction,
    device_buffer::input_slice,
    kernel::{int, per_element, Kernel},
};

/// A bf16 buffer on the device (raw bits), as a luminal tensor's data.
#[derive(Debug, Clone)]
pub struct Bf16Buffer(pub CudaSlice<u16>);

impl Data for Bf16Buffer {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// The bf16 buffer of an op input; panics where the input is not one.
pub fn bf16_input<'a>(input: &'a InputTensor<'a>, what: &str) -> &'a CudaSlice<u16> {
    &input
        .borrowed()
        .data
        .as_any()
        .downcast_ref::<Bf16Buffer>()
        .unwrap_or_else(|| panic!("{what}: the input is not a bf16 buffer"))
        .0
}

/// A bf16 copy of the whole of its input's buffer, so that a GEMM's view of the input (offsets
/// and strides in elements) reads the copy as it would read the buffer.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaRoundToBf16 {
    kernel: Kernel,
}

impl CudaRoundToBf16 {
    pub fn new(device: &Arc<CudaDevice>) -> Self {
        Self {
            kernel: Kernel::compile(device, SOURCE),
        }
    }
}

impl Operator for CudaRoundToBf16 {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let buffer = input_slice(&inputs[0].0, "bf16 rounding");
        let len = buffer.len();
        // Every element is written.
        let mut rounded = unsafe { self.kernel.device.alloc::<u16>(len) }.expect("GPU allocation");
        let args = (&mut rounded, buffer, int(len));
        unsafe { self.kernel.function.clone().launch(per_element(len), args) }
            .expect("bf16 rounding launch");
        vec![Tensor {
            data: Box::new(Bf16Buffer(rounded)),
        }]
    }
}

/// Gives every GEMM that reads bf16 operands one [`CudaRoundToBf16`] node per float32 tensor it
/// reads, shared with every other such GEMM reading that tensor. Runs after the CUDA kernels are
/// in place.
pub fn share_rounded_operands(graph: &mut Graph, device: &Arc<CudaDevice>) {
    let readers: Vec<NodeIndex> = graph
        .graph
        .node_indices()
        .filter(|&node| {
            graph
                .graph
                .node_weight(node)
                .expect("live node")
                .as_any()
                .downcast_ref::<CudaContraction>()
                .is_some_and(CudaContraction::reads_bf16)
        })
        .collect();
    let mut rounded: HashMap<(NodeIndex, u8), NodeIndex> = HashMap::new();
    for reader in readers {
        let operands: Vec<_> = graph
            .graph
            .edges_directed(reader, Direction::Incoming)
            .filter_map(|edge| {
                let (input_order, output_order, view) = edge.weight().as_data()?;
                Some((edge.id(), edge.source(), input_order, output_order, view))
            })
            .collect();
        for (edge, source, input_order, output_order, view) in operands {
            let copy = *rounded.entry((source, output_order)).or_insert_with(|| {
                graph
                    .add_op(CudaRoundToBf16::new(device))
                    .input(source, output_order, view)
                    .finish()
            });
            graph.graph.remove_edge(edge);
            graph.graph.add_edge(
                copy,
                reader,
                Dependency::Data {
                    input_order,
                    output_order: 0,
                    shape: view,
                },
            );
        }
    }
}
