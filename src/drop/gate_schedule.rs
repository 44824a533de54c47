use std::collections::{HashMap, HashSet};

use luminal::{
    op::InputTensor,
    prelude::{
        petgraph::{
            self,
            visit::{EdgeRef, NodeIndexable},
            Direction,
        },
        *,
    },
};

use crate::ops::{GatedInputs, GATED_INPUTS};

/// An input edge of a gate op that is read only while its gate is in one state.
#[derive(Debug, Clone, Copy)]
struct GatedEdge {
    consumer: NodeIndex,
    input_order: u8,
    gate: NodeIndex,
    read_when_on: bool,
}

/// Runs a compiled program with some blocks gated off without computing them: the nodes whose
/// values reach the program's outputs only through edges a gate does not read this step (a
/// gated-off block's forward pass and its backward pass) are skipped, each holding an empty
/// placeholder value for the gate that receives it without reading it.
#[derive(Debug, Default)]
pub struct GateSchedule {
    edges: Vec<GatedEdge>,
    roots: Vec<NodeIndex>,
    skipped: HashMap<Vec<bool>, Vec<NodeIndex>>,
    /// The gate inputs, in the order of the gates passed to [`execute`](Self::execute).
    gates: Vec<NodeIndex>,
    /// The nodes that compute a value from inputs: those a step may skip. Graph inputs are never
    /// computed, and nodes that only order others (transfer barriers, which compute nothing)
    /// always run.
    computed: Vec<NodeIndex>,
    /// luminal's order of the program, with the values each node reads.
    order: ProgramOrder,
}

impl GateSchedule {
    /// Reads the gate ops of a compiled `graph`, whatever backend compiled them (each answers
    /// [`GATED_INPUTS`]); `gates` are its gate inputs, block by block.
    pub fn new(graph: &mut Graph, gates: Vec<NodeIndex>) -> Self {
        let mut edges = Vec::new();
        let nodes: Vec<NodeIndex> = graph.graph.node_indices().collect();
        for node in nodes {
            let op = graph.graph.node_weight_mut(node).expect("live node");
            let Some(gated) = op
                .custom(GATED_INPUTS, Box::new(()))
                .and_then(|answer| answer.downcast::<GatedInputs>().ok())
            else {
                continue;
            };
            let gate = graph.get_sources(node)[0].0;
            for (input_order, read_when_on) in *gated {
                edges.push(GatedEdge {
                    consumer: node,
                    input_order,
                    gate,
                    read_when_on,
                });
            }
        }
        // The program's outputs: what it retrieves or keeps. (Compilation removes the other
        // nodes nothing consumes; before it, they are dead code, not outputs.)
        let roots = graph
            .to_retrieve
            .iter()
            .chain(&graph.no_delete)
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let computed = graph
            .graph
            .node_indices()
            .filter(|&node| {
                let has_inputs = graph
                    .graph
                    .edges_directed(node, Direction::Incoming)
                    .next()
                    .is_some();
                let gives_values = graph
                    .graph
                    .edges_directed(node, Direction::Outgoing)
                    .any(|edge| edge.weight().as_data().is_some())
                    || graph.to_retrieve.contains(&node)
                    || graph.no_delete.contains(&node);
                has_inputs && gives_values
            })
            .collect();
        Self {
            edges,
            roots,
            skipped: HashMap::new(),
            gates,
            computed,
            order: program_order(graph),
        }
    }

    /// The nodes not computed when the gates are `on`.
    pub fn skipped_nodes(&mut self, graph: &Graph, on: &[bool]) -> &[NodeIndex] {
        assert_eq!(on.len(), self.gates.len(), "one state per gate");
        if !self.skipped.contains_key(on) {
            let skipped = self.find_skipped(graph, on);
            self.skipped.insert(on.to_vec(), skipped);
        }
        &self.skipped[on]
    }

    /// Runs before every step whose gates are new (most steps early in training), while the
    /// device waits: hence flat arrays rather than hash sets over the program's nodes.
    fn find_skipped(&self, graph: &Graph, on: &[bool]) -> Vec<NodeIndex> {
        assert_eq!(
            graph.graph.node_bound(),
            self.order.place.len(),
            "the graph changed after its gate schedule was made"
        );
        let state: HashMap<NodeIndex, bool> =
            self.gates.iter().copied().zip(on.iter().copied()).collect();
        // By node index: a bit per input order the node does not read this step.
        let mut unread = vec![0u64; self.order.place.len()];
        for edge in &self.edges {
            if state.get(&edge.gate).copied().unwrap_or(true) != edge.read_when_on {
                unread[edge.consumer.index()] |= 1 << edge.input_order;
            }
        }
        let mut needed = vec![false; self.order.place.len()];
        for root in &self.roots {
            needed[root.index()] = true;
        }
        let mut stack = self.roots.clone();
        while let Some(node) = stack.pop() {
            for source in self.order.sources_of(node) {
                if unread[node.index()] & (1 << source.input_order) != 0 {
                    continue;
                }
                let (source, _) = source.value;
                if !needed[source.index()] {
                    needed[source.index()] = true;
                    stack.push(source);
                }
            }
        }
        self.computed
            .iter()
            .copied()
            .filter(|node| !needed[node.index()])
            .collect()
    }

    /// Executes `graph` with the gates `on`, computing only what they need; gives the number of
    /// nodes skipped.
    ///
    /// luminal's own interpreter counts a value's readers over the whole program, so a value
    /// some skipped node also reads (a gated-off block's input, which its gate hands on) never
    /// reaches its last reader: that reader gets it borrowed and copies it. This interpreter
    /// runs luminal's order but counts only the readers that run, so the last one takes the
    /// value as luminal's does in a program without gates.
    pub fn execute(&mut self, graph: &mut Graph, on: &[bool]) -> usize {
        let skipped = self.skipped_nodes(graph, on).to_vec();
        let mut runs = vec![true; self.order.place.len()];
        for &node in &skipped {
            runs[node.index()] = false;
            // A gate op still receives the value of the branch it does not take.
            graph
                .tensors
                .insert((node, 0), Tensor::new(Vec::<f32>::new()));
        }
        // By value slot: how many of the nodes that run read it.
        let mut readers = vec![0usize; self.order.values];
        for (node, sources) in &self.order.nodes {
            if runs[node.index()] {
                for source in sources {
                    readers[source.slot] += 1;
                }
            }
        }
        let mut dimensions = Vec::new();
        for (node, sources) in &self.order.nodes {
            if !runs[node.index()] || graph.tensors.contains_key(&(*node, 0)) {
                continue;
            }
            // Taken first, so that the borrowed ones below borrow from a map no longer changed.
            let mut taken: Vec<Option<Tensor>> = sources
                .iter()
                .map(|source| {
                    (readers[source.slot] == 1 && !graph.no_delete.contains(&source.value.0))
                        .then(|| graph.tensors.remove(&source.value))
                        .flatten()
                })
                .collect();
            let inputs: Vec<(InputTensor, ShapeTracker)> = sources
                .iter()
                .zip(taken.iter_mut())
                .map(|(source, taken)| {
                    let mut view = source.view;
                    view.resolve_global_dyn_dims_stack(&graph.dyn_map, &mut dimensions);
                    let input = match taken.take() {
                        Some(tensor) => InputTensor::Owned(tensor),
                        None => InputTensor::Borrowed(
                            graph
                                .tensors
                                .get(&source.value)
                                .expect("a value is made before it is read"),
                        ),
                    };
                    (input, view)
                })
                .collect();
            let outputs = graph
                .graph
                .node_weight_mut(*node)
                .expect("live node")
                .process(inputs);
            for (output, tensor) in outputs.into_iter().enumerate() {
                graph.tensors.insert((*node, output as u8), tensor);
            }
            for source in sources {
                readers[source.slot] -= 1;
            }
        }
        graph.reset();
        skipped.len()
    }
}

/// A value a node reads as its input `input_order`: output `value.1` of node `value.0`,
/// numbered `slot` among the program's values, seen through `view`. Schedule dependencies are
/// not among them: they order nodes but carry no value.
#[derive(Debug)]
struct Source {
    input_order: u8,
    value: (NodeIndex, u8),
    slot: usize,
    view: ShapeTracker,
}

/// A program's nodes in luminal's order (its interpreter's), each with the values it reads, and
/// how many distinct values they read.
#[derive(Debug, Default)]
struct ProgramOrder {
    nodes: Vec<(NodeIndex, Vec<Source>)>,
    values: usize,
    /// By node index: the node's place in `nodes`.
    place: Vec<usize>,
}

impl ProgramOrder {
    fn sources_of(&self, node: NodeIndex) -> &[Source] {
        &self.nodes[self.place[node.index()]].1
    }
}

fn program_order(graph: &Graph) -> ProgramOrder {
    let mut slots: HashMap<(NodeIndex, u8), usize> = HashMap::new();
    let nodes = petgraph::algo::toposort(&graph.graph, None)
        .expect("a program has no cycles")
        .into_iter()
        .map(|node| {
            let mut sources: Vec<(u8, (NodeIndex, u8), ShapeTracker)> = graph
                .graph
                .edges_directed(node, Direction::Incoming)
                .filter_map(|edge| {
                    let (input_order, output_order, view) = edge.weight().as_data()?;
                    Some((input_order, (edge.source(), output_order), view))
                })
                .collect();
            sources.sort_by_key(|(input_order, _, _)| *input_order);
            let sources = sources
                .into_iter()
                .map(|(input_order, value, view)| {
                    let next = slots.len();
                    let slot = *slots.entry(value).or_insert(next);
                    Source {
                        input_order,
                        value,
                        slot,
                        view,
                    }
                })
                .collect();
            (node, sources)
        })
        .collect::<Vec<_>>();
    let mut place = vec![0; graph.graph.node_bound()];
    for (index, (node, _)) in nodes.iter().enumerate() {
        place[node.index()] = index;
    }
    ProgramOrder {
        nodes,
        values: slots.len(),
        place,
    }
}
