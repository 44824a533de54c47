//! A dropout mask that only fused elementwise kernels read is drawn packed, one bit a value,
//! and each kernel turns its bit back into the mask's value (`scale` or 0) where it loads it. A
//! float32 mask costs 4 bytes a value to write, to keep for the backward pass and to read twice
//! (forward and backward); packed, it costs an eighth of a byte each time. The values the
//! kernels compute are the same bit for bit. Runs once the CUDA kernels are in place.
use luminal::{op::InputTensor, prelude::*};
use luminal_cudarc::driver::CudaSlice;

use super::{
    device_buffer::{raw_input, raw_tensor},
    dropout_mask::CudaDropoutMask,
    elementwise_source::InputKind,
    fused_elementwise::CudaFusedElementwise,
    readers::readers,
};

/// Values a word of a packed mask holds.
pub const VALUES_PER_WORD: usize = 32;

/// A packed dropout mask as a tensor: bit `v % 32` of word `v / 32` is set where value `v` is
/// kept.
pub fn mask_bits_tensor(words: CudaSlice<u32>) -> Tensor {
    raw_tensor(words)
}

/// The words of a packed mask input; panics where the input is not one.
pub fn mask_bits_input<'a>(input: &'a InputTensor<'a>, what: &str) -> &'a CudaSlice<u32> {
    raw_input(input, what, "a packed dropout mask")
}

/// Packs every dropout mask whose readers are all fused elementwise kernels, and makes those
/// kernels read it so.
pub fn pack_dropout_masks(graph: &mut Graph) {
    let masks: Vec<(NodeIndex, f32)> = graph
        .graph
        .node_indices()
        .filter(|node| !graph.no_delete.contains(node) && !graph.to_retrieve.contains(node))
        .filter_map(|node| {
            let op = graph.graph.node_weight(node).expect("live node").as_any();
            let mask = op.downcast_ref::<CudaDropoutMask>()?;
            Some((node, mask.op().scale()))
        })
        .collect();
    for (mask, scale) in masks {
        let inputs_read = readers(graph, mask);
        let all_fused = inputs_read.keys().all(|&reader| {
            graph
                .graph
                .node_weight(reader)
                .expect("live node")
                .as_any()
                .is::<CudaFusedElementwise>()
        });
        if inputs_read.is_empty() || !all_fused {
            continue;
        }
        for (reader, inputs) in inputs_read {
            let weight = graph.graph.node_weight_mut(reader).expect("live node");
            let fused = weight
                .as_any()
                .downcast_ref::<CudaFusedElementwise>()
                .expect("a fused elementwise kernel");
            let kind = InputKind::MaskBits { scale };
            let reading: Vec<(usize, InputKind)> =
                inputs.iter().map(|&input| (input as usize, kind)).collect();
            *weight = Box::new(fused.reading(&reading));
        }
        let weight = graph.graph.node_weight_mut(mask).expect("live node");
        let op = weight
            .as_any()
            .downcast_ref::<CudaDropoutMask>()
            .expect("a dropout mask");
        *weight = Box::new(op.packed());
    }
}
