use std::collections::{HashMap, HashSet};

use luminal::{
    op::{self, ConstantValue, Operator},
    prelude::{
        petgraph::{visit::EdgeRef, Direction},
        *,
    },
};

use super::{
    elementwise_kernel::{FusedElementwise, Operand, Program, UnaryKind},
    elementwise_recompute::recompute_shared,
    strided_ops::BinaryKind,
    strided_view::{contiguous_strides, is_identity, StridedView},
};

/// The most inputs one fused kernel takes (luminal numbers an op's inputs with a `u8`).
const MAX_INPUTS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Unary(UnaryKind),
    Binary(BinaryKind),
    Copy,
}

fn kind_of(op: &dyn Operator) -> Option<Kind> {
    let any = op.as_any();
    Some(if any.is::<op::Exp2>() {
        Kind::Unary(UnaryKind::Exp2)
    } else if any.is::<op::Log2>() {
        Kind::Unary(UnaryKind::Log2)
    } else if any.is::<op::Sin>() {
        Kind::Unary(UnaryKind::Sin)
    } else if any.is::<op::Sqrt>() {
        Kind::Unary(UnaryKind::Sqrt)
    } else if any.is::<op::Recip>() {
        Kind::Unary(UnaryKind::Recip)
    } else if any.is::<op::Add>() {
        Kind::Binary(BinaryKind::Add)
    } else if any.is::<op::Mul>() {
        Kind::Binary(BinaryKind::Mul)
    } else if any.is::<op::Mod>() {
        Kind::Binary(BinaryKind::Mod)
    } else if any.is::<op::LessThan>() {
        Kind::Binary(BinaryKind::LessThan)
    } else if any.is::<op::Contiguous>() {
        Kind::Copy
    } else {
        return None;
    })
}

/// What the pass knows of one elementwise primitive.
#[derive(Debug, Clone)]
pub(super) struct Elementwise {
    pub kind: Kind,
    /// The shape its output buffer is contiguous in; `None` for a unary op of a buffer of
    /// unknown layout, which the kernels reading it recompute instead ("transparent").
    pub layout: Option<Vec<usize>>,
    pub sources: Vec<(NodeIndex, u8, ShapeTracker)>,
}

/// Merges chains of elementwise primitives (luminal's unary ops, binary ops on broadcast or
/// permuted views, contiguous copies) into [`FusedElementwise`] kernels: one loop each instead of
/// one pass over memory per primitive. A kernel covers ops of one iteration shape that read each
/// other element for element; what they read any other way is an input, and every member used
/// outside the kernel is one of its outputs.
#[derive(Debug, Default)]
pub struct ElementwiseFusionCompiler;

impl Compiler for ElementwiseFusionCompiler {
    fn compile<T: ToIdsMut>(&self, graph: &mut Graph, mut remap: T) {
        let referenced: HashSet<NodeIndex> = remap
            .to_ids_mut()
            .into_iter()
            .map(|id| *id)
            .chain(graph.no_delete.iter().copied())
            .chain(graph.to_retrieve.iter().copied())
            .collect();
        let Ok(order) = petgraph::algo::toposort(&graph.graph, None) else {
            return;
        };
        let mut infos = classify(graph, &order);
        let mut planner = Planner {
            graph,
            infos: &infos,
            referenced: &referenced,
            kernel_of: HashMap::new(),
            kernels: Vec::new(),
        };
        for &node in &order {
            planner.place(node);
        }
        let Planner {
            mut kernels,
            mut kernel_of,
            ..
        } = planner;
        let (mut orphans, mut removed, mut fused) = (Vec::new(), Vec::new(), Vec::new());
        recompute_shared(
            graph,
            &mut infos,
            &referenced,
            &mut kernels,
            &mut kernel_of,
            &mut orphans,
            &mut removed,
        );
        for members in kernels {
            fused.extend(rewrite(
                graph,
                &infos,
                &referenced,
                &members,
                &mut remap,
                &mut orphans,
                &mut removed,
            ));
        }
        for node in removed {
            graph.graph.remove_node(node);
        }
        remove_orphans(graph, &infos, &referenced, orphans);
        for node in fused {
            group_outgoing_edges(graph, node);
        }
    }
}

fn classify(graph: &Graph, order: &[NodeIndex]) -> HashMap<NodeIndex, Elementwise> {
    let mut infos: HashMap<NodeIndex, Elementwise> = HashMap::new();
    for &node in order {
        let Some(kind) = kind_of(graph.graph.node_weight(node).unwrap().as_ref()) else {
            continue;
        };
        let scheduled = graph
            .graph
            .edges_directed(node, Direction::Incoming)
            .any(|e| e.weight().is_schedule());
        if scheduled {
            continue;
        }
        let sources = graph.get_sources(node);
        let expected = match kind {
            Kind::Binary(_) => 2,
            _ => 1,
        };
        if sources.len() != expected {
            continue;
        }
        let layout = match kind {
            Kind::Unary(_) => infos
                .get(&sources[0].0)
                .and_then(|source| source.layout.clone()),
            _ => {
                let views: Option<Vec<StridedView>> = sources
                    .iter()
                    .map(|(_, _, view)| StridedView::of_sliced(view).map(|(v, _)| v))
                    .collect();
                let Some(views) = views else { continue };
                if views.iter().any(|v| v.sizes != views[0].sizes) {
                    continue;
                }
                Some(views[0].sizes.clone())
            }
        };
        infos.insert(
            node,
            Elementwise {
                kind,
                layout,
                sources,
            },
        );
    }
    infos
}

/// Whether `consumer` reads `source` element for element: the source's output is laid out in
/// the consumer's iteration shape and read in order (a unary op reads its input's buffer as is).
pub(super) fn reads_in_place(
    infos: &HashMap<NodeIndex, Elementwise>,
    consumer: &Elementwise,
    source: NodeIndex,
    view: &ShapeTracker,
) -> bool {
    let Some(layout) = infos.get(&source).and_then(|s| s.layout.as_ref()) else {
        return false;
    };
    match consumer.kind {
        Kind::Unary(_) => true,
        _ => {
            let shape = consumer.layout.as_ref().unwrap();
            layout == shape
                && StridedView::of_sliced(view)
                    .is_some_and(|(v, offset)| offset == 0 && is_identity(&v, shape))
        }
    }
}

/// The node whose buffer a read of `node` comes from once transparent unary ops are recomputed.
fn read_root(infos: &HashMap<NodeIndex, Elementwise>, mut node: NodeIndex) -> NodeIndex {
    while let Some(info) = infos.get(&node) {
        if info.layout.is_some() {
            break;
        }
        node = info.sources[0].0;
    }
    node
}

struct Planner<'a> {
    graph: &'a Graph,
    infos: &'a HashMap<NodeIndex, Elementwise>,
    referenced: &'a HashSet<NodeIndex>,
    kernel_of: HashMap<NodeIndex, usize>,
    kernels: Vec<Vec<NodeIndex>>,
}

impl Planner<'_> {
    /// Puts `node` (visited in topological order) into the first kernel of a source it reads in
    /// place that can take it, else into a kernel of its own.
    fn place(&mut self, node: NodeIndex) {
        let Some(info) = self.infos.get(&node) else {
            return;
        };
        if info.layout.is_none() {
            return;
        }
        let mut candidates: Vec<usize> = Vec::new();
        for (source, _, view) in &info.sources {
            if reads_in_place(self.infos, info, *source, view) {
                if let Some(&kernel) = self.kernel_of.get(source) {
                    if !candidates.contains(&kernel) {
                        candidates.push(kernel);
                    }
                }
            }
        }
        let mut joined = None;
        for candidate in candidates {
            match joined {
                None if self.can_join(node, info, candidate) => joined = Some(candidate),
                // A second kernel this op reads in place (as GELU's `x/2 * (1 + erf)` reads
                // two chains of `x`): one kernel for both where neither needs the other.
                Some(kernel) => {
                    self.try_merge(node, info, kernel, candidate);
                }
                None => {}
            }
        }
        let kernel = joined.unwrap_or_else(|| {
            self.kernels.push(Vec::new());
            self.kernels.len() - 1
        });
        self.kernels[kernel].push(node);
        self.kernel_of.insert(node, kernel);
    }

    fn can_join(&self, node: NodeIndex, info: &Elementwise, kernel: usize) -> bool {
        let members = &self.kernels[kernel];
        // An id kept outside must stay output 0 of its kernel: one such member per kernel.
        if self.referenced.contains(&node) && members.iter().any(|m| self.referenced.contains(m)) {
            return false;
        }
        for (source, _, view) in &info.sources {
            let in_kernel = self.kernel_of.get(source) == Some(&kernel);
            if in_kernel {
                if !reads_in_place(self.infos, info, *source, view) {
                    return false;
                }
                continue;
            }
            // Any other input must not depend on the kernel, or the fused graph has a cycle.
            if self.depends_on(read_root(self.infos, *source), kernel) {
                return false;
            }
        }
        true
    }

    /// Moves kernel `other` into `kernel` where the two are independent and `node` can still
    /// join the union.
    fn try_merge(&mut self, node: NodeIndex, info: &Elementwise, kernel: usize, other: usize) {
        let referenced =
            |members: &[NodeIndex]| members.iter().any(|m| self.referenced.contains(m));
        if referenced(&self.kernels[kernel]) && referenced(&self.kernels[other]) {
            return;
        }
        if self.kernel_depends_on(other, kernel) || self.kernel_depends_on(kernel, other) {
            return;
        }
        let moved = std::mem::take(&mut self.kernels[other]);
        let kept = self.kernels[kernel].len();
        for &member in &moved {
            self.kernel_of.insert(member, kernel);
        }
        self.kernels[kernel].extend(&moved);
        if !self.can_join(node, info, kernel) {
            self.kernels[kernel].truncate(kept);
            for &member in &moved {
                self.kernel_of.insert(member, other);
            }
            self.kernels[other] = moved;
        }
    }

    /// Whether any input of kernel `a` from outside it needs anything of kernel `b`.
    fn kernel_depends_on(&self, a: usize, b: usize) -> bool {
        self.kernels[a].iter().any(|member| {
            self.infos[member]
                .sources
                .iter()
                .filter(|(source, _, _)| self.kernel_of.get(source) != Some(&a))
                .any(|(source, _, _)| self.depends_on(read_root(self.infos, *source), b))
        })
    }

    /// Whether `node` needs anything of `kernel`, with every kernel formed so far counted as one
    /// node that needs all of its members' inputs.
    fn depends_on(&self, node: NodeIndex, kernel: usize) -> bool {
        let mut seen: HashSet<NodeIndex> = HashSet::new();
        let mut stack = vec![node];
        while let Some(current) = stack.pop() {
            if !seen.insert(current) {
                continue;
            }
            let group: &[NodeIndex] = match self.kernel_of.get(&current) {
                Some(&k) if k == kernel => return true,
                Some(&k) => &self.kernels[k],
                None => std::slice::from_ref(&current),
            };
            for &member in group {
                seen.insert(member);
                stack.extend(
                    self.graph
                        .graph
                        .edges_directed(member, Direction::Incoming)
                        .map(|e| e.source())
                        .filter(|s| !seen.contains(s)),
                );
            }
        }
        false
    }
}

/// Builds one kernel's program and replaces its members with it.
fn rewrite<T: ToIdsMut>(
    graph: &mut Graph,
    infos: &HashMap<NodeIndex, Elementwise>,
    referenced: &HashSet<NodeIndex>,
    members: &[NodeIndex],
    remap: &mut T,
    orphans: &mut Vec<NodeIndex>,
    removed: &mut Vec<NodeIndex>,
) -> Option<NodeIndex> {
    if members.is_empty() {
        return None;
    }
    let member_set: HashSet<NodeIndex> = members.iter().copied().collect();
    let shape = infos[&members[0]].layout.clone().unwrap();
    let mut builder = Builder {
        graph,
        infos,
        program: Program::default(),
        inputs: Vec::new(),
        reads: HashMap::new(),
    };
    let mut values: HashMap<NodeIndex, Operand> = HashMap::new();
    for &member in members {
        let info = &infos[&member];
        // Sources as they are now: earlier rewrites moved edges onto their kernels.
        let sources = builder.graph.get_sources(member);
        let mut operands = sources.iter().map(|(source, output, view)| {
            if member_set.contains(source) {
                values[source]
            } else if let Kind::Unary(_) = info.kind {
                // A unary op reads its input's buffer as it is, whatever its view.
                builder.read_buffer(*source, *output, view, &shape)
            } else {
                builder.read(*source, *output, view)
            }
        });
        let value = match info.kind {
            Kind::Unary(kind) => {
                let source = operands.next().unwrap();
                builder.program.unary(kind, source)
            }
            Kind::Binary(kind) => {
                let (a, b) = (operands.next().unwrap(), operands.next().unwrap());
                builder.program.binary(kind, a, b)
            }
            Kind::Copy => operands.next().unwrap(),
        };
        values.insert(member, value);
    }
    let Builder {
        mut program,
        inputs,
        ..
    } = builder;
    // A kernel of one op still pays: it runs on both cores, and reads sliced views.
    if inputs.len() > MAX_INPUTS {
        return None;
    }
    // Outputs: the member kept by id first, then every member read outside the kernel.
    let mut outputs: Vec<NodeIndex> = members
        .iter()
        .copied()
        .filter(|m| {
            referenced.contains(m)
                || graph
                    .graph
                    .edges_directed(*m, Direction::Outgoing)
                    .any(|e| !member_set.contains(&e.target()))
        })
        .collect();
    outputs.sort_by_key(|m| !referenced.contains(m));
    let registers: Vec<usize> = outputs
        .iter()
        .map(|m| program.materialized(values[m]))
        .collect();
    let kernel = FusedElementwise::new(&shape, program, &registers);
    let mut new = graph.add_op(kernel);
    for &(node, output, view) in &inputs {
        new = new.input(node, output, view);
    }
    let new = new.finish();
    for (index, &member) in outputs.iter().enumerate() {
        let moved: Vec<(NodeIndex, Dependency)> = graph
            .graph
            .edges_directed(member, Direction::Outgoing)
            .filter(|e| !member_set.contains(&e.target()))
            .map(|e| (e.target(), *e.weight()))
            .collect();
        for (target, weight) in moved {
            let weight = match weight {
                Dependency::Data {
                    input_order, shape, ..
                } => Dependency::Data {
                    input_order,
                    output_order: index as u8,
                    shape,
                },
                Dependency::Schedule => Dependency::Schedule,
            };
            graph.graph.add_edge(new, target, weight);
        }
        move_references(
            &mut *remap,
            &mut graph.no_delete,
            &mut graph.to_retrieve,
            member,
            new,
        );
    }
    // The members stay (edgeless) until every kernel is in, so that no new node reuses the index
    // of a node the plan still knows.
    for &member in members {
        orphans.extend(
            graph
                .graph
                .edges_directed(member, Direction::Incoming)
                .map(|e| e.source())
                .filter(|s| !member_set.contains(s)),
        );
        let edges: Vec<_> = graph
            .graph
            .edges_directed(member, Direction::Incoming)
            .chain(graph.graph.edges_directed(member, Direction::Outgoing))
            .map(|e| e.id())
            .collect();
        for edge in edges {
            graph.graph.remove_edge(edge);
        }
        removed.push(member);
    }
    Some(new)
}

/// Reorders `node`'s outgoing edges by output: luminal counts an output's consumers over runs of
/// consecutive edges, so interleaved outputs would be freed before their last consumer.
fn group_outgoing_edges(graph: &mut Graph, node: NodeIndex) {
    let mut edges: Vec<(NodeIndex, Dependency, _)> = graph
        .graph
        .edges_directed(node, Direction::Outgoing)
        .map(|e| (e.target(), *e.weight(), e.id()))
        .collect();
    for (_, _, id) in &edges {
        graph.graph.remove_edge(*id);
    }
    edges.sort_by_key(|(_, weight, _)| match weight {
        Dependency::Data { output_order, .. } => *output_order as i32,
        Dependency::Schedule => -1,
    });
    for (target, weight, _) in edges {
        graph.graph.add_edge(node, target, weight);
    }
}

struct Builder<'a> {
    graph: &'a Graph,
    infos: &'a HashMap<NodeIndex, Elementwise>,
    program: Program,
    inputs: Vec<(NodeIndex, u8, ShapeTracker)>,
    reads: HashMap<(NodeIndex, u8, Vec<usize>, usize), Operand>,
}

impl Builder<'_> {
    /// The buffer of output `output` of non-member `source` in its own order, laid out in
    /// `sizes`.
    fn read_buffer(
        &mut self,
        source: NodeIndex,
        output: u8,
        view: &ShapeTracker,
        sizes: &[usize],
    ) -> Operand {
        let strides = contiguous_strides(sizes);
        let index = self.input(source, output, view);
        self.program.load(index, strides, 0)
    }

    fn input(&mut self, source: NodeIndex, output: u8, view: &ShapeTracker) -> usize {
        self.inputs
            .iter()
            .position(|&(n, o, _)| n == source && o == output)
            .unwrap_or_else(|| {
                self.inputs.push((source, output, *view));
                self.inputs.len() - 1
            })
    }

    /// The value of output `output` of non-member `source` read through `view` (over the
    /// kernel's iteration shape).
    fn read(&mut self, source: NodeIndex, output: u8, view: &ShapeTracker) -> Operand {
        let (view_strides, offset) = StridedView::of_sliced(view).unwrap();
        let strides = view_strides.strides;
        let key = (source, output, strides.clone(), offset);
        if let Some(&value) = self.reads.get(&key) {
            return value;
        }
        let value = match self.infos.get(&source) {
            // A transparent unary op: its output buffer is its input's, transformed.
            Some(info) if info.layout.is_none() => {
                let Kind::Unary(kind) = info.kind else {
                    unreachable!("only unary ops have no layout")
                };
                let (input, input_output, _) = info.sources[0];
                let inner = self.read(input, input_output, view);
                self.program.unary(kind, inner)
            }
            _ => {
                let constant = self
                    .graph
                    .graph
                    .node_weight(source)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<op::Constant>()
                    .and_then(|c| match c.0 {
                        ConstantValue::Float(x) => Some(x),
                        ConstantValue::Expression(_) => None,
                    });
                if let Some(x) = constant {
                    Operand::Imm(x)
                } else {
                    let index = self.input(source, output, view);
                    self.program.load(index, strides, offset)
                }
            }
        };
        self.reads.insert(key, value);
        value
    }
}

/// Removes the transparent unary ops and constants that fused kernels made unused.
fn remove_orphans(
    graph: &mut Graph,
    infos: &HashMap<NodeIndex, Elementwise>,
    referenced: &HashSet<NodeIndex>,
    mut candidates: Vec<NodeIndex>,
) {
    while let Some(node) = candidates.pop() {
        let Some(weight) = graph.graph.node_weight(node) else {
            continue;
        };
        let removable = infos.get(&node).is_some_and(|i| i.layout.is_none())
            || weight.as_any().is::<op::Constant>();
        let unused = graph
            .graph
            .edges_directed(node, Direction::Outgoing)
            .next()
            .is_none();
        if removable && unused && !referenced.contains(&node) {
            candidates.extend(
                graph
                    .graph
                    .edges_directed(node, Direction::Incoming)
                    .map(|e| e.source()),
            );
            graph.graph.remove_node(node);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, Rng, SeedableRng};

    use super::*;
    use crate::nn::gelu;

    fn random(n: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-2.0..2.0)).collect()
    }

    /// Runs a graph built by `build` with and without the pass; returns both runs' outputs and
    /// the fused graph's number of kernels.
    fn compare(
        build: impl Fn(&mut Graph, &mut StdRng) -> Vec<GraphTensor<()>>,
    ) -> (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<usize>) {
        let run = |fuse: bool| {
            let mut rng = StdRng::seed_from_u64(7);
            let mut cx = Graph::new();
            let mut outputs = build(&mut cx, &mut rng);
            for output in &mut outputs {
                output.retrieve();
            }
            if fuse {
                cx.compile(
                    (GenericCompiler::default(), ElementwiseFusionCompiler),
                    &mut outputs,
                );
            } else {
                cx.compile(GenericCompiler::default(), &mut outputs);
            }
            cx.execute();
            let kernels = cx
                .graph
                .node_indices()
                .filter_map(|n| {
                    cx.graph
                        .node_weight(n)
                        .unwrap()
                        .as_any()
                        .downcast_ref::<FusedElementwise>()
                        .map(FusedElementwise::output_count)
                })
                .collect::<Vec<_>>();
            let values = outputs.iter().map(|o| o.data()).collect::<Vec<_>>();
            (values, kernels)
        };
        let (expected, _) = run(false);
        let (actual, kernels) = run(true);
        (expected, actual, kernels)
    }

    fn assert_close(expected: &[Vec<f32>], actual: &[Vec<f32>]) {
        for (e, a) in expected.iter().zip(actual) {
            assert_eq!(e.len(), a.len());
            for (x, y) in e.iter().zip(a) {
                let tolerance = 1e-5 * x.abs().max(1.0);
                assert!((x - y).abs() <= tolerance, "{x} vs {y}");
            }
        }
    }

    /// Erases a tensor's shape so that tests of several shapes share one output type.
    fn erased<S: Shape>(t: GraphTensor<S>) -> GraphTensor<()> {
        GraphTensor::from_id(t.id, t.shape, t.graph())
    }

    #[test]
    fn gelu_with_broadcast_bias_and_shared_intermediates_matches_unfused() {
        let (expected, actual, kernels) = compare(|cx, rng| {
            let x = cx.tensor::<R2<64, 300>>().set(random(64 * 300, rng));
            let bias = cx.tensor::<R1<300>>().set(random(300, rng));
            let shifted = x + bias.expand::<R2<64, 300>, _>();
            let activated = gelu(shifted);
            // `shifted` is read again outside the chain, so it is an output too.
            let reduced = (shifted * 2.0).sum_reduce::<R1<64>, _>();
            vec![erased(activated), erased(reduced)]
        });
        assert!(!kernels.is_empty());
        assert_close(&expected, &actual);
    }

    #[test]
    fn softmax_and_layer_norm_keep_their_reductions_between_kernels() {
        let (expected, actual, kernels) = compare(|cx, rng| {
            let x = cx.tensor::<R3<4, 16, 33>>().set(random(4 * 16 * 33, rng));
            let softmax = x.softmax::<2>();
            let normed = x.layer_norm::<2, _>(1e-5);
            vec![erased(softmax), erased(normed)]
        });
        assert!(kernels.len() >= 2);
        assert_close(&expected, &actual);
    }

    #[test]
    fn permuted_and_transparent_unary_reads_match_unfused() {
        let (expected, actual, kernels) = compare(|cx, rng| {
            let a = cx.tensor::<R2<24, 40>>().set(random(24 * 40, rng));
            let b = cx.tensor::<R2<40, 24>>().set(random(40 * 24, rng));
            // exp of an input is recomputed inside the kernel; b is read transposed.
            let mixed = (a.exp() * b.permute::<R2<24, 40>, _>()).abs().sqrt() + a.sin();
            let again = mixed.recip() * mixed - a;
            vec![erased(mixed), erased(again)]
        });
        assert!(!kernels.is_empty());
        assert_close(&expected, &actual);
    }

    #[test]
    fn outputs_read_by_later_kernels_stay_alive_for_every_consumer() {
        let (expected, actual, kernels) = compare(|cx, rng| {
            let x = cx.tensor::<R2<8, 8>>().set(random(64, rng));
            let a = x * 2.0;
            let b = a.exp();
            // A second kernel reads `a` transposed, after the reductions read `a` and `b`.
            let sum_a = a.sum_reduce::<R1<8>, Axis<1>>();
            let sum_b = b.sum_reduce::<R1<8>, Axis<1>>();
            let c = (a.permute::<R2<8, 8>, Axes2<1, 0>>() + 1.0) * 3.0;
            vec![erased(sum_a), erased(sum_b), erased(c)]
        });
        assert_eq!(kernels.len(), 2);
        assert_close(&expected, &actual);
    }

    #[test]
    fn values_read_after_a_reduction_are_recomputed_not_stored() {
        let (expected, actual, kernels) = compare(|cx, rng| {
            let x = cx.tensor::<R2<16, 32>>().set(random(16 * 32, rng));
            let a = x * 2.0;
            let shifted = (a + 1.0).sin();
            let e = a.exp();
            let total = e.sum_reduce::<R1<16>, Axis<1>>();
            // `shifted` is only read by a kernel that must wait for the reduction.
            let scaled = shifted * total.expand::<R2<16, 32>, Axis<1>>() * 0.5;
            vec![erased(scaled)]
        });
        // `shifted` is recomputed by the second kernel: the first stores only `e`.
        assert_eq!(kernels, vec![1, 1]);
        assert_close(&expected, &actual);
    }

    #[test]
    fn a_running_sum_read_all_along_is_stored_not_recomputed_in_every_reader() {
        // A Pre-LN encoder's residual gradient: each partial sum is read by a kernel that waits
        // for a reduction of it. Recomputing every partial sum in its reader would read all the
        // terms so far, again and again.
        let build = |cx: &mut Graph, rng: &mut StdRng| {
            let terms: Vec<_> = (0..8)
                .map(|_| cx.tensor::<R2<16, 32>>().set(random(16 * 32, rng)))
                .collect();
            let mut sum = terms[0];
            let mut outputs = Vec::new();
            for &term in &terms[1..] {
                sum += term;
                let total = sum.exp().sum_reduce::<R1<16>, Axis<1>>();
                outputs.push(erased(sum * total.expand::<R2<16, 32>, Axis<1>>()));
            }
            outputs
        };
        let (expected, actual, _) = compare(build);
        assert_close(&expected, &actual);
        let mut rng = StdRng::seed_from_u64(7);
        let mut cx = Graph::new();
        let mut outputs = build(&mut cx, &mut rng);
        for output in &mut outputs {
            output.retrieve();
        }
        cx.compile(
            (GenericCompiler::default(), ElementwiseFusionCompiler),
            &mut outputs,
        );
        let reads: Vec<usize> = cx
            .graph
            .node_indices()
            .filter(|&n| {
                let op = cx.graph.node_weight(n).unwrap().as_any();
                op.is::<FusedElementwise>()
            })
            .map(|n| cx.get_sources(n).len())
            .collect();
        // Stored partial sums: 23 inputs in all; recomputed in every reader it was 50.
        let total: usize = reads.iter().sum();
        assert!(
            total <= 30,
            "fused kernels read {total} inputs in all: {reads:?}"
        );
    }

    #[test]
    fn sliced_and_unit_axis_views_fuse() {
        let (expected, actual, kernels) = compare(|cx, rng| {
            let x = cx.tensor::<R3<1, 6, 8>>().set(random(48, rng));
            let table = cx.tensor::<R2<20, 8>>().set(random(160, rng));
            // Rows 3..9 of the table, broadcast over the unit axis, as position embeddings are.
            let rows = table
                .slice((
                    symbolic::Expression::from(3)..symbolic::Expression::from(9),
                    ..,
                ))
                .realize::<R2<6, 8>>()
                .expand::<R3<1, 6, 8>, _>();
            let summed = (x + rows).exp();
            let flat = summed.reshape::<R2<6, 8>>() * 3.0;
            vec![erased(flat)]
        });
        assert_eq!(kernels, vec![1]);
        assert_close(&expected, &actual);
    }

    #[test]
    fn large_kernels_split_between_threads_match_unfused() {
        let (expected, actual, kernels) = compare(|cx, rng| {
            let x = cx.tensor::<R2<128, 1024>>().set(random(128 * 1024, rng));
            let y = cx.tensor::<R2<128, 1>>().set(random(128, rng));
            let out = gelu(x * y.expand::<R3<128, 1, 1024>, _>().reshape::<R2<128, 1024>>());
            vec![erased(out)]
        });
        assert_eq!(kernels, vec![1]);
        assert_close(&expected, &actual);
    }
}
