//! Who reads a node's results, for passes that change how a result is stored and must change
//! every reader with it.
use std::collections::BTreeMap;

use luminal::prelude::{
    petgraph::{visit::EdgeRef, Direction},
    *,
};

/// Whether `node`'s results are the program's outputs (retrieved or kept), which a pass must
/// leave as they are.
pub fn is_output(graph: &Graph, node: NodeIndex) -> bool {
    graph.no_delete.contains(&node) || graph.to_retrieve.contains(&node)
}

/// Each node that reads `node`'s results, with the inputs it reads them through.
pub fn readers(graph: &Graph, node: NodeIndex) -> BTreeMap<NodeIndex, Vec<u8>> {
    let mut readers: BTreeMap<NodeIndex, Vec<u8>> = BTreeMap::new();
    for edge in graph.graph.edges_directed(node, Direction::Outgoing) {
        if let Some((input_order, _, _)) = edge.weight().as_data() {
            readers.entry(edge.target()).or_default().push(input_order);
        }
    }
    readers
}

/// Each node that reads output `output` of `node`, with the inputs it reads it through.
pub fn readers_of_output(
    graph: &Graph,
    node: NodeIndex,
    output: u8,
) -> BTreeMap<NodeIndex, Vec<u8>> {
    let mut readers: BTreeMap<NodeIndex, Vec<u8>> = BTreeMap::new();
    for edge in graph.graph.edges_directed(node, Direction::Outgoing) {
        if let Some((input_order, from, _)) = edge.weight().as_data() {
            if from == output {
                readers.entry(edge.target()).or_default().push(input_order);
            }
        }
    }
    readers
}
