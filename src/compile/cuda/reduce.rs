//! luminal's sum and max reductions over strided views on the GPU, as warp-cooperative kernels
//! (see [`ReduceSource`]) in place of luminal_cuda's, which loop over the reduced axis in one
//! thread per output.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync, LaunchConfig};

use super::{
    bf16_operands::input_address,
    device_buffer::device_tensor,
    kernel::Kernel,
    reduce_source::{Launch, ReduceSource},
};

#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaReduce {
    source: ReduceSource,
    outputs: usize,
    launch: Launch,
    kernel: Kernel,
}

impl CudaReduce {
    pub fn new(source: &ReduceSource, device: &Arc<CudaDevice>) -> Self {
        Self {
            source: source.clone(),
            outputs: source.outputs(),
            launch: source.launch(),
            kernel: Kernel::compile(device, &source.source()),
        }
    }

    /// The same reduction reading its input in bf16.
    pub fn reading_bf16(&self) -> Self {
        Self::new(&self.source.reading_bf16(), &self.kernel.device)
    }

    pub fn reads_bf16(&self) -> bool {
        self.source.reads_bf16()
    }
}

impl Operator for CudaReduce {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let input = input_address(&inputs[0].0, self.source.reads_bf16(), "reduction");
        // Every output is written.
        let mut out =
            unsafe { self.kernel.device.alloc::<f32>(self.outputs) }.expect("GPU allocation");
        let config = LaunchConfig {
            grid_dim: (self.launch.blocks, 1, 1),
            block_dim: (self.launch.threads.0, self.launch.threads.1, 1),
            shared_mem_bytes: 0,
        };
        unsafe {
            self.kernel
                .function
                .clone()
                .launch(config, (&mut out, input))
        }
        .expect("reduction launch");
        vec![device_tensor(out)]
    }
}

/// Swaps each of luminal's `SumReduce` and `MaxReduce` over a strided view for a [`CudaReduce`];
/// those over padded views stay for luminal_cuda.
pub fn reduce_on_warps(graph: &mut Graph, device: &Arc<CudaDevice>) {
    let nodes: Vec<NodeIndex> = graph.graph.node_indices().collect();
    for node in nodes {
        if let Some(source) = ReduceSource::of_node(graph, node) {
            *graph.graph.node_weight_mut(node).expect("live node") =
                Box::new(CudaReduce::new(&source, device));
        }
    }
}
