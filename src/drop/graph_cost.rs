use std::collections::HashSet;

use luminal::{
    op,
    prelude::{
        petgraph::{visit::EdgeRef, Direction},
        *,
    },
};

/// Matrix-multiply FLOPs counted off a graph before compilation, where every matmul (forward
/// or backward) is a `Mul` of two broadcast operands summed over the shared axis: 2 FLOPs per
/// element of the product. `skipped` nodes (blocks gated off) are not counted. The
/// independent check of [`StepCost`](super::StepCost).
pub fn counted_matmul_flops(graph: &Graph, skipped: &HashSet<NodeIndex>) -> f64 {
    graph
        .graph
        .node_indices()
        .filter(|node| !skipped.contains(node))
        .filter(|&node| {
            let weight = graph.graph.node_weight(node).expect("live node");
            weight.as_any().is::<op::SumReduce>()
        })
        .filter_map(|reduce| {
            let (product, _, _) = graph.get_sources(reduce)[0];
            let weight = graph.graph.node_weight(product).expect("live node");
            if !weight.as_any().is::<op::Mul>() {
                return None;
            }
            let operands = graph.get_sources(product);
            let broadcast = |view: &ShapeTracker| view.fake.iter().any(|&fake| fake);
            if !operands.iter().all(|(_, _, view)| broadcast(view)) {
                return None;
            }
            let elements = operands[0]
                .2
                .n_elements()
                .to_usize()
                .expect("static shapes");
            Some(2.0 * elements as f64)
        })
        .sum()
}

/// Bytes of the forward values the backward pass reads (float32), counted off a graph before
/// compilation: the activations a training step keeps from its forward pass. Nodes with index
/// `backward_start` or above are the backward pass; inputs and weights are not counted.
pub fn saved_activation_bytes(graph: &Graph, backward_start: usize) -> usize {
    let is_forward = |node: NodeIndex| node.index() < backward_start;
    graph
        .graph
        .node_indices()
        .filter(|&node| is_forward(node))
        .filter(|&node| {
            graph
                .graph
                .edges_directed(node, Direction::Incoming)
                .next()
                .is_some()
        })
        .filter_map(|node| {
            graph
                .graph
                .edges_directed(node, Direction::Outgoing)
                .filter(|edge| !is_forward(edge.target()))
                .filter_map(|edge| edge.weight().as_data())
                .map(|(_, _, view)| {
                    view.n_physical_elements()
                        .to_usize()
                        .expect("static shapes")
                })
                .max()
        })
        .sum::<usize>()
        * std::mem::size_of::<f32>()
}
