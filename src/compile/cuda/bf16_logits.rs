//! `--matmul bf16`: the masked-LM logits in bf16, as PyTorch's autocast leaves the decoder's
//! output. The kernel that adds the decoder's bias stores the logits in bf16 where only the
//! cross-entropy kernels (loss, accuracy, gradient) read them, and those widen each logit to
//! float32 as they load it. The logits (`[predictions, logit width]`, the step's widest
//! activation) then cost half the bytes to write and to read three times. Runs after
//! `bf16_operands::share_rounded_operands`, keeping the stores it chose for other results.
use luminal::prelude::{
    petgraph::{visit::EdgeRef, Direction},
    *,
};

use super::{
    bf16_rounding::Store, fused_elementwise::CudaFusedElementwise, logit_rows::CudaLogitRows,
    readers::is_output,
};
use crate::runtime::MatmulPrecision;

pub fn logits_in_bf16(graph: &mut Graph) {
    if MatmulPrecision::selected() != MatmulPrecision::Bf16 {
        return;
    }
    let producers: Vec<NodeIndex> = graph
        .graph
        .node_indices()
        .filter(|&node| {
            graph
                .graph
                .node_weight(node)
                .expect("live node")
                .as_any()
                .is::<CudaFusedElementwise>()
                && !is_output(graph, node)
        })
        .collect();
    for producer in producers {
        let kernel = graph
            .graph
            .node_weight(producer)
            .expect("live node")
            .as_any()
            .downcast_ref::<CudaFusedElementwise>()
            .expect("a fused elementwise kernel")
            .clone();
        let mut stores = kernel.stores();
        let mut bf16_readers = Vec::new();
        for (output, store) in stores.iter_mut().enumerate() {
            let readers = logit_readers(graph, producer, output);
            if *store == Store::Float && !readers.is_empty() {
                *store = Store::Bf16;
                bf16_readers.extend(readers);
            }
        }
        if bf16_readers.is_empty() {
            continue;
        }
        *graph.graph.node_weight_mut(producer).expect("live node") =
            Box::new(kernel.storing(stores));
        for reader in bf16_readers {
            let weight = graph.graph.node_weight_mut(reader).expect("live node");
            let logits = weight
                .as_any()
                .downcast_ref::<CudaLogitRows>()
                .expect("a logit-rows kernel")
                .reading_bf16_logits();
            *weight = Box::new(logits);
        }
    }
}

/// The cross-entropy kernels that read `output` of `producer` as their logits, where those are
/// all its readers; else none.
fn logit_readers(graph: &Graph, producer: NodeIndex, output: usize) -> Vec<NodeIndex> {
    let mut readers = Vec::new();
    for edge in graph.graph.edges_directed(producer, Direction::Outgoing) {
        let Some((input_order, from, _)) = edge.weight().as_data() else {
            continue;
        };
        if from as usize != output {
            continue;
        }
        let reads_logits = input_order == 0
            && graph
                .graph
                .node_weight(edge.target())
                .expect("live node")
                .as_any()
                .is::<CudaLogitRows>();
        if !reads_logits {
            return Vec::new();
        }
        readers.push(edge.target());
    }
    readers
}
