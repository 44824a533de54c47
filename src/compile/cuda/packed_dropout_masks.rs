//! A dropout mask that only fused elementwise kernels read is drawn packed, one bit a value,
//! and each kernel turns its bit back into the mask's value (`scale` or 0) where it loads it. A
//! float32 mask costs 4 bytes a value to write, to keep for the backward pass and to read twice
//! (forward and backward); packed, it costs an eighth of a byte each time. The values the
//! kernels compute are the same bit for bit. Runs once the CUDA kernels are in place.
use std::collections::BTreeMap;

use luminal::{
    op::InputTensor,
    prelude::{
        petgraph::{visit::EdgeRef, Direction},
        *,
    },
};
use luminal_cudarc::driver::CudaSlice;

use super::{
    dropout_mask::CudaDropoutMask, elementwise_source::InputKind,
    fused_elementwise::CudaFusedElementwise,
};

/// Values a word of a packed mask holds.
pub const VALUES_PER_WORD: usize = 32;

/// A packed dropout mask on the device, as a luminal tensor's data: bit `v % 32` of word `v / 32`
/// is set where value `v` is kept.
#[derive(Debug, Clone)]
pub struct MaskBitsBuffer(pub CudaSlice<u32>);

impl Data for MaskBitsBuffer {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

pub fn mask_bits_tensor(words: CudaSlice<u32>) -> Tensor {
    Tensor {
        data: Box::new(MaskBitsBuffer(words)),
    }
}

/// The words of a packed mask input; panics where the input is not one.
pub fn mask_bits_input<'a>(input: &'a InputTensor<'a>, what: &str) -> &'a CudaSlice<u32> {
    &input
        .borrowed()
        .data
        .as_any()
        .downcast_ref::<MaskBitsBuffer>()
        .unwrap_or_else(|| panic!("{what}: the input is not a packed dropout mask"))
        .0
}

/// Packs every dropout mask whose readers are all fused elementwise kernels, and makes those
/// kernels read it so. Returns how many masks it packed.
pub fn pack_dropout_masks(graph: &mut Graph) -> usize {
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
    let mut packed = 0;
    for (mask, scale) in masks {
        let mut inputs_read: BTreeMap<NodeIndex, Vec<u8>> = BTreeMap::new();
        for edge in graph.graph.edges_directed(mask, Direction::Outgoing) {
            if let Some((input_order, _, _)) = edge.weight().as_data() {
                inputs_read
                    .entry(edge.target())
                    .or_default()
                    .push(input_order);
            }
        }
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
        packed += 1;
    }
    packed
}
