use std::collections::{HashMap, HashSet};

use luminal::{
    op::{self, Operator},
    prelude::{
        petgraph::{visit::EdgeRef, Direction},
        *,
    },
};

use super::{
    elementwise_fusion::{reads_in_place, Elementwise, Kind},
    elementwise_kernel::UnaryKind,
    strided_ops::BinaryKind,
};

/// The most ops recomputed for one value: beyond it, storing and reloading costs less.
const MAX_RECOMPUTED: usize = 64;

/// Lets kernels recompute the values they read element for element from another kernel instead
/// of that kernel storing them: the backward pass reads many intermediates of a forward chain
/// (GELU's erf has two dozen), and each stored one costs a full write and read of memory, where
/// recomputing costs a few arithmetic steps per element.
///
/// For every member whose every use outside its kernel is such a read from a member of another
/// kernel, the part of its kernel it is computed from is cloned into each reading kernel; members
/// left unused are dropped (their edges now, their nodes with the other removed nodes).
pub(super) fn recompute_shared(
    graph: &mut Graph,
    infos: &mut HashMap<NodeIndex, Elementwise>,
    referenced: &HashSet<NodeIndex>,
    kernels: &mut [Vec<NodeIndex>],
    kernel_of: &mut HashMap<NodeIndex, usize>,
    orphans: &mut Vec<NodeIndex>,
    removed: &mut Vec<NodeIndex>,
) {
    // Clones already made, per (reading kernel, original member); and how many clones each
    // kernel received, which go first in its member order.
    let mut clones: HashMap<(usize, NodeIndex), NodeIndex> = HashMap::new();
    let mut cloned_into: Vec<usize> = vec![0; kernels.len()];
    for kernel in 0..kernels.len() {
        for member in kernels[kernel].clone() {
            if referenced.contains(&member) {
                continue;
            }
            let uses: Vec<_> = graph
                .graph
                .edges_directed(member, Direction::Outgoing)
                .filter(|e| kernel_of.get(&e.target()) != Some(&kernel))
                .map(|e| (e.id(), e.target(), *e.weight()))
                .collect();
            let recomputable = !uses.is_empty()
                && uses.iter().all(|(_, target, weight)| match weight {
                    Dependency::Data { shape, .. } => {
                        kernel_of.contains_key(target)
                            && reads_in_place(infos, &infos[target], member, shape)
                    }
                    Dependency::Schedule => false,
                });
            if !recomputable {
                continue;
            }
            let part = computed_from(infos, &kernels[kernel], kernel_of, kernel, member);
            let readers: HashSet<usize> = uses
                .iter()
                .map(|(_, target, _)| kernel_of[target])
                .collect();
            if part.len() > MAX_RECOMPUTED || !cheaper_recomputed(infos, &part, readers.len()) {
                continue;
            }
            for (edge, target, weight) in uses {
                let reader = kernel_of[&target];
                for &original in &part {
                    if clones.contains_key(&(reader, original)) {
                        continue;
                    }
                    let info = infos[&original].clone();
                    let sources: Vec<(NodeIndex, u8, ShapeTracker)> = info
                        .sources
                        .iter()
                        .map(
                            |&(source, output, view)| match clones.get(&(reader, source)) {
                                Some(&clone) if part.contains(&source) => (clone, 0, view),
                                _ => (source, output, view),
                            },
                        )
                        .collect();
                    let clone = graph.graph.add_node(new_op(info.kind));
                    for (input, &(source, output, view)) in sources.iter().enumerate() {
                        graph.graph.add_edge(
                            source,
                            clone,
                            Dependency::Data {
                                input_order: input as u8,
                                output_order: output,
                                shape: view,
                            },
                        );
                    }
                    infos.insert(clone, Elementwise { sources, ..info });
                    kernel_of.insert(clone, reader);
                    kernels[reader].insert(cloned_into[reader], clone);
                    cloned_into[reader] += 1;
                    clones.insert((reader, original), clone);
                }
                graph.graph.remove_edge(edge);
                graph
                    .graph
                    .add_edge(clones[&(reader, member)], target, weight);
                if let Some(info) = infos.get_mut(&target) {
                    for source in &mut info.sources {
                        if source.0 == member {
                            source.0 = clones[&(reader, member)];
                        }
                    }
                }
            }
        }
    }
    // Drop members nothing reads any more, last first so that chains go whole.
    for members in kernels.iter_mut() {
        let mut index = members.len();
        while index > 0 {
            index -= 1;
            let member = members[index];
            let unused = graph
                .graph
                .edges_directed(member, Direction::Outgoing)
                .next()
                .is_none();
            if unused && !referenced.contains(&member) {
                let incoming: Vec<_> = graph
                    .graph
                    .edges_directed(member, Direction::Incoming)
                    .map(|e| (e.id(), e.source()))
                    .collect();
                for (edge, source) in incoming {
                    graph.graph.remove_edge(edge);
                    orphans.push(source);
                }
                members.remove(index);
                kernel_of.remove(&member);
                removed.push(member);
            }
        }
    }
}

/// Whether `readers` kernels recomputing `part` read less memory than storing its value: storing
/// writes it once and each reader reads it once, where recomputing reads each of the part's
/// full-size inputs once per reader (broadcast inputs, such as a row's mean, are small beside
/// them). Without this bound, a chain of sums read all along, as a Pre-LN encoder's residual
/// gradient is, would be recomputed whole in every reader: L kernels reading up to L inputs each.
fn cheaper_recomputed(
    infos: &HashMap<NodeIndex, Elementwise>,
    part: &[NodeIndex],
    readers: usize,
) -> bool {
    let full_size_inputs: HashSet<(NodeIndex, u8)> = part
        .iter()
        .flat_map(|member| &infos[member].sources)
        .filter(|(source, _, view)| !part.contains(source) && !view.fake.iter().any(|&fake| fake))
        .map(|&(source, output, _)| (source, output))
        .collect();
    full_size_inputs.len() * readers <= 1 + readers
}

/// `member` and every member of `kernel` it is computed from, in the kernel's order.
fn computed_from(
    infos: &HashMap<NodeIndex, Elementwise>,
    members: &[NodeIndex],
    kernel_of: &HashMap<NodeIndex, usize>,
    kernel: usize,
    member: NodeIndex,
) -> Vec<NodeIndex> {
    let mut needed: HashSet<NodeIndex> = HashSet::from([member]);
    let mut stack = vec![member];
    while let Some(node) = stack.pop() {
        for (source, _, _) in &infos[&node].sources {
            if kernel_of.get(source) == Some(&kernel) && needed.insert(*source) {
                stack.push(*source);
            }
        }
    }
    members
        .iter()
        .copied()
        .filter(|m| needed.contains(m))
        .collect()
}

fn new_op(kind: Kind) -> Box<dyn Operator> {
    match kind {
        Kind::Unary(UnaryKind::Exp2) => Box::new(op::Exp2),
        Kind::Unary(UnaryKind::Log2) => Box::new(op::Log2),
        Kind::Unary(UnaryKind::Sin) => Box::new(op::Sin),
        Kind::Unary(UnaryKind::Sqrt) => Box::new(op::Sqrt),
        Kind::Unary(UnaryKind::Recip) => Box::new(op::Recip),
        Kind::Binary(BinaryKind::Add) => Box::new(op::Add),
        Kind::Binary(BinaryKind::Mul) => Box::new(op::Mul),
        Kind::Binary(BinaryKind::Mod) => Box::new(op::Mod),
        Kind::Binary(BinaryKind::LessThan) => Box::new(op::LessThan),
        Kind::Copy => Box::new(op::Contiguous),
    }
}
