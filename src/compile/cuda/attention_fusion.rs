//! `--matmul bf16`: finds each attention of at most 128 queries and keys in the graph and puts
//! it on the fused kernels (`fused_attention`). Forward, attention is three nodes: the scores'
//! product `s = q kᵀ`, [`AttentionProbabilities`] `p` and the context's product `p v`. Backward
//! (where the graph trains), five more: `dp = do vᵀ`, [`AttentionProbabilitiesGradient`] `ds`,
//! and the products `ds k`, `dsᵀ q` and `pᵀ do`. The forward nodes become one
//! `CudaFusedAttention` and the backward ones one `CudaFusedAttentionGradient`, whose three
//! outputs the readers of the three gradients' products read instead. An attention whose nodes
//! feed anything else, or whose layouts the kernels do not take, stays as it is. The pass is
//! plain graph work, so its tests run it on the CPU with a reference of the fused ops in place of
//! the kernels.
use super::{
    attention_shape::{AttentionShape, OperandLayout, MAX_SEQUENCE},
    readers::{is_output, readers},
};
use crate::compile::cpu::{stride_in, AxisStrides, Contraction};
use crate::ops::{AttentionProbabilities, AttentionProbabilitiesGradient};
use luminal::{
    op::Operator,
    prelude::{
        petgraph::{visit::EdgeRef, Direction},
        *,
    },
};

/// An input edge: its source node, the source's output and the view it is read through.
#[derive(Debug, Clone, Copy)]
struct Input {
    source: NodeIndex,
    output: u8,
    view: ShapeTracker,
}

/// A `[batch, head, row, dim]` operand of attention, with where it is read from.
#[derive(Debug, Clone, Copy)]
struct Operand {
    input: Input,
    layout: OperandLayout,
}

/// The nodes of one attention and what the fused kernels need of them.
struct Attention {
    shape: AttentionShape,
    query: Operand,
    key: Operand,
    value: Operand,
    context: OutputLayout,
    bias: Input,
    random_key: Option<Input>,
    /// The scores' product, the probabilities and the context's product.
    forward: [NodeIndex; 3],
    backward: Option<Backward>,
}

struct Backward {
    context_gradient: Operand,
    /// `dp`'s product and the scores' gradient: read by nothing else.
    inner: [NodeIndex; 2],
    /// The products of the query's, key's and value's gradients, in the fused op's output order,
    /// with where each writes.
    gradients: [(NodeIndex, OutputLayout); 3],
}

/// The fused ops of one attention. Forward inputs: queries, keys, values, the padding bias and,
/// with dropout, the random key; output the context `[batch, heads, queries, head_dim]` and,
/// where `mask_for_backward` (dropout, and a backward op to read it), the dropout mask in a form
/// of the backend's choosing. Backward inputs: queries, keys, values, the context's gradient, the
/// bias and, with dropout, that mask; outputs the gradients of the queries, keys and values, each
/// `[batch, heads, rows, head_dim]`. Layouts come inputs first, then outputs.
pub trait FusedAttentionOps {
    fn forward(
        &self,
        shape: &AttentionShape,
        layouts: [OperandLayout; 4],
        mask_for_backward: bool,
    ) -> Box<dyn Operator>;
    fn backward(&self, shape: &AttentionShape, layouts: [OperandLayout; 7]) -> Box<dyn Operator>;
}

/// Puts every attention the fused ops take on them; returns how many (forward and backward
/// each counted once).
pub fn fuse_attention(graph: &mut Graph, ops: &impl FusedAttentionOps) -> (usize, usize) {
    let probabilities: Vec<NodeIndex> = graph
        .graph
        .node_indices()
        .filter(|&node| op_of::<AttentionProbabilities>(graph, node).is_some())
        .collect();
    let (mut forward, mut backward) = (0, 0);
    for node in probabilities {
        if let Some(attention) = find(graph, node) {
            forward += 1;
            backward += usize::from(attention.backward.is_some());
            rewrite(graph, attention, ops);
        }
    }
    (forward, backward)
}

fn op_of<T: 'static>(graph: &Graph, node: NodeIndex) -> Option<&T> {
    graph.graph.node_weight(node)?.as_any().downcast_ref::<T>()
}

/// The edge into `node` at input `order`.
fn input(graph: &Graph, node: NodeIndex, order: u8) -> Option<Input> {
    graph
        .graph
        .edges_directed(node, Direction::Incoming)
        .find_map(|edge| {
            let (input_order, output, view) = edge.weight().as_data()?;
            (input_order == order).then_some(Input {
                source: edge.source(),
                output,
                view,
            })
        })
}

/// The nodes that read `node`, a pair for each input through which one reads it.
fn reads_of(graph: &Graph, node: NodeIndex) -> Vec<(NodeIndex, u8)> {
    readers(graph, node)
        .into_iter()
        .flat_map(|(reader, inputs)| inputs.into_iter().map(move |input| (reader, input)))
        .collect()
}

/// A product of attention read as loops over batch and head around a GEMM: each axis's
/// `(size, stride in a, stride in b, stride in the output)`.
struct Product {
    batch: AxisStrides,
    head: AxisStrides,
    /// The free axis of each operand (GEMM's M and N).
    free: [AxisStrides; 2],
    summed: AxisStrides,
}

impl Product {
    fn of(graph: &Graph, node: NodeIndex) -> Option<Self> {
        let contraction = op_of::<Contraction>(graph, node)?;
        if contraction.operand_sum().is_some() {
            return None;
        }
        let [batch, head]: [AxisStrides; 2] = contraction.loop_axes().try_into().ok()?;
        let [m, n, k] = contraction.gemm_axes();
        Some(Self {
            batch,
            head,
            free: [m, n],
            summed: k,
        })
    }

    /// Operand `operand` as `[batch, head, row, dim]`: its row axis is its free axis where the
    /// product sums over the head dimension (`dim_summed`), else the summed axis. `None` where
    /// the head dimension is not contiguous or a row not 16-byte aligned.
    fn operand(&self, operand: usize, dim_summed: bool, input: Input) -> Option<Operand> {
        let (row, dim) = if dim_summed {
            (self.free[operand], self.summed)
        } else {
            (self.summed, self.free[operand])
        };
        let layout = OperandLayout {
            batch: stride_in(self.batch, operand),
            head: stride_in(self.head, operand),
            row: stride_in(row, operand),
        };
        let aligned = [layout.batch, layout.head, layout.row]
            .iter()
            .all(|stride| stride.is_multiple_of(8));
        (stride_in(dim, operand) == 1 && aligned).then_some(Operand { input, layout })
    }

    /// The output as `[batch, head, row, dim]`, rows the free axis of operand `rows_from` and
    /// the head dimension the other's: `None` unless the head dimension is contiguous, every
    /// row starts at an even element (values are stored in pairs) and the output fills its
    /// buffer.
    fn output(&self, rows_from: usize) -> Option<OutputLayout> {
        let (rows, dim) = (self.free[rows_from], self.free[1 - rows_from]);
        let layout = OperandLayout {
            batch: self.batch.3,
            head: self.head.3,
            row: rows.3,
        };
        let mut axes = [self.batch, self.head, rows, dim].map(|axis| (axis.0, axis.3));
        axes.sort_by_key(|&(_, stride)| stride);
        let mut dense = 1;
        for (size, stride) in axes {
            if stride != dense {
                return None;
            }
            dense *= size;
        }
        let even = [layout.batch, layout.head, layout.row]
            .iter()
            .all(|stride| stride % 2 == 0);
        (dim.3 == 1 && even).then_some(OutputLayout(layout))
    }
}

/// Where a fused op writes a `[batch, head, row, dim]` result in its buffer (which the result
/// fills): the layout of the product it replaces, so that its readers read it as they did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OutputLayout(OperandLayout);

/// A product of attention's probabilities (or their gradient) `p`, read through input
/// `p_input`, by a `[batch, head, row, dim]` operand: `p other` where it sums over the keys
/// (`p`'s contiguous axis), `pᵀ other` where over the queries. Returns the other operand, the
/// output's layout and whether the sum is over the keys.
fn product_with_probabilities(
    graph: &Graph,
    node: NodeIndex,
    p_input: u8,
    keys: usize,
) -> Option<(Operand, OutputLayout, bool)> {
    let product = Product::of(graph, node)?;
    let p = usize::from(p_input);
    if p > 1 {
        return None;
    }
    let other = 1 - p;
    let over_keys = match stride_in(product.summed, p) {
        1 => true,
        stride if stride == keys => false,
        _ => return None,
    };
    let output = product.output(p)?;
    let operand = product.operand(other, false, input(graph, node, other as u8)?)?;
    Some((operand, output, over_keys))
}

/// The attention around probabilities node `node`, if the fused kernels take it.
fn find(graph: &Graph, node: NodeIndex) -> Option<Attention> {
    let rows = op_of::<AttentionProbabilities>(graph, node)?.0;
    let scores = input(graph, node, 0)?;
    let bias = input(graph, node, 1)?;
    let random_key = match AttentionProbabilities(rows).key_input() {
        Some(order) => Some(input(graph, node, order)?),
        None => None,
    };
    // The scores' product: [batch, heads, queries, keys], keys contiguous.
    let product = Product::of(graph, scores.source)?;
    let keys_operand = if product.free[1].3 == 1 { 1 } else { 0 };
    let (query_axis, key_axis) = (product.free[1 - keys_operand], product.free[keys_operand]);
    let (batch, heads, queries, keys, head_dim) = (
        product.batch.0,
        product.head.0,
        query_axis.0,
        key_axis.0,
        product.summed.0,
    );
    let fits = key_axis.3 == 1
        && query_axis.3 == keys
        && product.head.3 == queries * keys
        && product.batch.3 == heads * queries * keys
        && rows.keys == keys
        && rows.rows == batch * heads * queries
        && rows.rows_per_sequence == heads * queries
        && head_dim.is_multiple_of(16)
        && head_dim <= 64
        && queries <= MAX_SEQUENCE
        && keys <= MAX_SEQUENCE;
    if !fits {
        return None;
    }
    let query = product.operand(
        1 - keys_operand,
        true,
        input(graph, scores.source, (1 - keys_operand) as u8)?,
    )?;
    let key = product.operand(
        keys_operand,
        true,
        input(graph, scores.source, keys_operand as u8)?,
    )?;
    // Who reads the probabilities: the context's product and, training, the values' gradient.
    let mut context = None;
    let mut value_gradient = None;
    for (reader, order) in reads_of(graph, node) {
        let (operand, output, over_keys) = product_with_probabilities(graph, reader, order, keys)?;
        match (over_keys, context, value_gradient) {
            (true, None, _) => context = Some((reader, operand, output)),
            (false, _, None) => value_gradient = Some((reader, operand, output)),
            _ => return None,
        }
    }
    let (context, value, context_layout) = context?;
    // The scores are read by the probabilities and, training, their gradient.
    let mut gradient = None;
    for (reader, order) in reads_of(graph, scores.source) {
        if reader == node && order == 0 {
            continue;
        }
        let reads_scores = order == 0
            && op_of::<AttentionProbabilitiesGradient>(graph, reader).is_some_and(|g| g.0 == rows)
            && gradient.is_none();
        if !reads_scores {
            return None;
        }
        gradient = Some(reader);
    }
    let shape = AttentionShape {
        batch,
        heads,
        queries,
        keys,
        head_dim,
        scale: rows.scale,
        mask: rows.mask(),
    };
    let backward = match (gradient, value_gradient) {
        (None, None) => None,
        (Some(gradient), Some(value_gradient)) => {
            Some(find_backward(graph, gradient, value_gradient, keys)?)
        }
        _ => return None,
    };
    let attention = Attention {
        shape,
        query,
        key,
        value,
        context: context_layout,
        bias,
        random_key,
        forward: [scores.source, node, context],
        backward,
    };
    let replaced = attention.replaced_nodes();
    (!replaced.iter().any(|&node| is_output(graph, node))).then_some(attention)
}

impl Attention {
    /// Every node the fused ops replace.
    fn replaced_nodes(&self) -> Vec<NodeIndex> {
        let mut nodes = self.forward.to_vec();
        if let Some(backward) = &self.backward {
            nodes.extend(backward.inner);
            nodes.extend(backward.gradients.map(|(node, _)| node));
        }
        nodes
    }
}

/// The backward nodes around the scores' gradient `gradient`, given the values' gradient's
/// product, with the context's gradient it reads and where it writes.
fn find_backward(
    graph: &Graph,
    gradient: NodeIndex,
    (value_gradient, context_gradient, value_layout): (NodeIndex, Operand, OutputLayout),
    keys: usize,
) -> Option<Backward> {
    // `dp = do vᵀ`, read only by the scores' gradient.
    let dp = input(
        graph,
        gradient,
        AttentionProbabilitiesGradient::PROBABILITIES_GRADIENT,
    )?;
    if op_of::<Contraction>(graph, dp.source).is_none() || reads_of(graph, dp.source).len() != 1 {
        return None;
    }
    let (mut query_gradient, mut key_gradient) = (None, None);
    for (reader, order) in reads_of(graph, gradient) {
        let (_, output, over_keys) = product_with_probabilities(graph, reader, order, keys)?;
        match (over_keys, query_gradient, key_gradient) {
            (true, None, _) => query_gradient = Some((reader, output)),
            (false, _, None) => key_gradient = Some((reader, output)),
            _ => return None,
        }
    }
    Some(Backward {
        context_gradient,
        inner: [dp.source, gradient],
        gradients: [
            query_gradient?,
            key_gradient?,
            (value_gradient, value_layout),
        ],
    })
}

/// Moves every reader of `from`'s output to output `output` of `to`.
fn move_readers(graph: &mut Graph, from: NodeIndex, to: NodeIndex, output: u8) {
    let edges: Vec<_> = graph
        .graph
        .edges_directed(from, Direction::Outgoing)
        .map(|edge| (edge.id(), edge.target(), *edge.weight()))
        .collect();
    for (id, target, weight) in edges {
        graph.graph.remove_edge(id);
        let moved = match weight {
            Dependency::Data {
                input_order, shape, ..
            } => Dependency::Data {
                input_order,
                output_order: output,
                shape,
            },
            schedule => schedule,
        };
        graph.graph.add_edge(to, target, moved);
    }
}

/// Removes `nodes`, then whatever only they read (a copy of the bias made for one of them).
fn remove_with_unread_inputs(graph: &mut Graph, nodes: &[NodeIndex]) {
    let mut removing: Vec<NodeIndex> = nodes.to_vec();
    while let Some(node) = removing.pop() {
        if !graph.graph.contains_node(node) {
            continue;
        }
        let sources: Vec<NodeIndex> = graph
            .graph
            .edges_directed(node, Direction::Incoming)
            .map(|edge| edge.source())
            .collect();
        graph.graph.remove_node(node);
        for source in sources {
            let unread = graph
                .graph
                .edges_directed(source, Direction::Outgoing)
                .next()
                .is_none();
            let computed = graph
                .graph
                .edges_directed(source, Direction::Incoming)
                .next()
                .is_some();
            if unread && computed && !is_output(graph, source) {
                removing.push(source);
            }
        }
    }
}

/// A node of `op` reading `inputs` in order.
fn add_node(graph: &mut Graph, op: Box<dyn Operator>, inputs: &[Input]) -> NodeIndex {
    let node = graph.graph.add_node(op);
    for (order, input) in inputs.iter().enumerate() {
        graph.graph.add_edge(
            input.source,
            node,
            Dependency::Data {
                input_order: u8::try_from(order).expect("a few inputs"),
                output_order: input.output,
                shape: input.view,
            },
        );
    }
    node
}

fn rewrite(graph: &mut Graph, attention: Attention, ops: &impl FusedAttentionOps) {
    let replaced = attention.replaced_nodes();
    let Attention {
        shape,
        query,
        key,
        value,
        context,
        bias,
        random_key,
        forward,
        backward,
    } = attention;
    let operands = [query, key, value];
    let [q, k, v] = operands.map(|operand| operand.layout);
    let mask_for_backward = backward.is_some() && shape.mask.is_some();
    let fused = ops.forward(&shape, [q, k, v, context.0], mask_for_backward);
    let inputs: Vec<Input> = operands
        .iter()
        .map(|operand| operand.input)
        .chain([bias])
        .chain(random_key)
        .collect();
    let fused = add_node(graph, fused, &inputs);
    move_readers(graph, forward[2], fused, 0);
    if let Some(backward) = backward {
        let operands = [query, key, value, backward.context_gradient];
        let dout = backward.context_gradient.layout;
        let [dq, dk, dv] = backward.gradients.map(|(_, output)| output.0);
        let gradient = ops.backward(&shape, [q, k, v, dout, dq, dk, dv]);
        // The forward op's mask, as it hands it on.
        let mask = Input {
            source: fused,
            output: 1,
            view: ShapeTracker::new(&[]),
        };
        let inputs: Vec<Input> = operands
            .iter()
            .map(|operand| operand.input)
            .chain([bias])
            .chain(mask_for_backward.then_some(mask))
            .collect();
        let gradient = add_node(graph, gradient, &inputs);
        for (output, &(product, _)) in backward.gradients.iter().enumerate() {
            move_readers(graph, product, gradient, output as u8);
        }
    }
    remove_with_unread_inputs(graph, &replaced);
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use luminal::{op::InputTensor, prelude::*};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    use super::*;
    use crate::{
        autograd::{add_backward, TensorRef},
        compile::cpu::{ContractionCompiler, ElementwiseFusionCompiler, OperandSumsCompiler},
        nn::{attention_mask_bias, ParameterInit, ParameterRef},
        ops::{
            attention_probabilities, input_buffer, input_values, key_from_values, key_values,
            AttentionDropout, RandomKey,
        },
    };

    /// Fused attention computed plainly on the CPU from the operands' layouts, as the kernels
    /// compute it.
    #[derive(Debug, Clone, LuminalEqFalse)]
    struct ReferenceAttention {
        shape: AttentionShape,
        layouts: Vec<OperandLayout>,
        /// The forward op hands the backward one its mask's values (output 1).
        mask_out: bool,
    }

    struct Reference;

    impl FusedAttentionOps for Reference {
        fn forward(
            &self,
            shape: &AttentionShape,
            layouts: [OperandLayout; 4],
            mask_for_backward: bool,
        ) -> Box<dyn Operator> {
            Box::new(ReferenceAttention {
                shape: shape.clone(),
                layouts: layouts.to_vec(),
                mask_out: mask_for_backward,
            })
        }

        fn backward(
            &self,
            shape: &AttentionShape,
            layouts: [OperandLayout; 7],
        ) -> Box<dyn Operator> {
            Box::new(ReferenceAttention {
                shape: shape.clone(),
                layouts: layouts.to_vec(),
                mask_out: false,
            })
        }
    }

    impl Operator for ReferenceAttention {
        fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
            let s = &self.shape;
            let (sq, sk, d) = (s.queries, s.keys, s.head_dim);
            let backward = self.layouts.len() == 7;
            let operands = if backward { 4 } else { 3 };
            // Where element (b, h, row, dim) of output `o` goes.
            let out_at = |o: usize, b: usize, h: usize, row: usize, dim: usize| {
                let l = self.layouts[operands + o];
                b * l.batch + h * l.head + row * l.row + dim
            };
            let bias = input_values(&inputs[operands].0, &inputs[operands].1);
            let mask: Option<Vec<f32>> = s.mask.as_ref().map(|mask| {
                let (input, view) = &inputs[operands + 1];
                if backward {
                    input_buffer(input).to_vec()
                } else {
                    mask.values(key_from_values(&input_values(input, view)), 1)
                }
            });
            // Element (b, h, row, dim) of operand `o`.
            let at = |o: usize, b: usize, h: usize, row: usize, dim: usize| {
                let l = self.layouts[o];
                input_buffer(&inputs[o].0)[b * l.batch + h * l.head + row * l.row + dim]
            };
            let mut outs = if backward {
                vec![
                    vec![0.0; s.batch * s.heads * sq * d],
                    vec![0.0; s.batch * s.heads * sk * d],
                    vec![0.0; s.batch * s.heads * sk * d],
                ]
            } else {
                vec![vec![0.0; s.batch * s.heads * sq * d]]
            };
            for b in 0..s.batch {
                for h in 0..s.heads {
                    let bh = b * s.heads + h;
                    for i in 0..sq {
                        let row = bh * sq + i;
                        let mut y: Vec<f32> = (0..sk)
                            .map(|j| {
                                let dot: f32 =
                                    (0..d).map(|e| at(0, b, h, i, e) * at(1, b, h, j, e)).sum();
                                dot * s.scale + bias[b * sk + j]
                            })
                            .collect();
                        let max = y.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                        y.iter_mut().for_each(|v| *v = (*v - max).exp());
                        let sum: f32 = y.iter().sum();
                        y.iter_mut().for_each(|v| *v /= sum);
                        let m: Vec<f32> = (0..sk)
                            .map(|j| mask.as_ref().map_or(1.0, |mask| mask[row * sk + j]))
                            .collect();
                        if !backward {
                            for e in 0..d {
                                outs[0][out_at(0, b, h, i, e)] =
                                    (0..sk).map(|j| y[j] * m[j] * at(2, b, h, j, e)).sum();
                            }
                            continue;
                        }
                        let g: Vec<f32> = (0..sk)
                            .map(|j| {
                                m[j] * (0..d)
                                    .map(|e| at(3, b, h, i, e) * at(2, b, h, j, e))
                                    .sum::<f32>()
                            })
                            .collect();
                        let dot: f32 = (0..sk).map(|j| g[j] * y[j]).sum();
                        for j in 0..sk {
                            let ds = s.scale * y[j] * (g[j] - dot);
                            for e in 0..d {
                                outs[0][out_at(0, b, h, i, e)] += ds * at(1, b, h, j, e);
                                outs[1][out_at(1, b, h, j, e)] += ds * at(0, b, h, i, e);
                                outs[2][out_at(2, b, h, j, e)] += y[j] * m[j] * at(3, b, h, i, e);
                            }
                        }
                    }
                }
            }
            if self.mask_out {
                outs.push(mask.expect("a mask to hand on"));
            }
            outs.into_iter().map(Tensor::new).collect()
        }
    }

    /// The fusion pass with the reference ops, where `on`, counting what it fused.
    struct FuseWithReference {
        on: bool,
        counts: Cell<(usize, usize)>,
    }

    impl Compiler for &FuseWithReference {
        fn compile<T: ToIdsMut>(&self, graph: &mut Graph, _: T) {
            if self.on {
                self.counts.set(fuse_attention(graph, &Reference));
            }
        }
    }

    const B: usize = 2;
    const HIDDEN: usize = 32;

    fn random(n: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// One attention of 2 heads of 16 dimensions over 2 sequences of `S` tokens (the second
    /// padded after 11), its queries, keys and values projected from three inputs, trained
    /// against random weights of its context: the loss and the inputs' gradients, computed as
    /// the graph has them or with attention fused (only the loss where not `train`); and how many
    /// attentions were fused.
    fn attention_step<const S: usize>(
        dropout: bool,
        fused: bool,
        train: bool,
    ) -> (Vec<Vec<f32>>, (usize, usize)) {
        let mut rng = StdRng::seed_from_u64(11);
        let mut cx = Graph::new();
        let inputs: Vec<GraphTensor<R3<B, S, HIDDEN>>> = ["q", "k", "v"]
            .iter()
            .map(|name| cx.named_tensor(name).set(random(B * S * HIDDEN, &mut rng)))
            .collect();
        let projected: Vec<GraphTensor<R3<B, S, HIDDEN>>> = inputs
            .iter()
            .map(|x| {
                let w = cx
                    .tensor::<R2<HIDDEN, HIDDEN>>()
                    .set(random(HIDDEN * HIDDEN, &mut rng));
                x.matmul(w)
            })
            .collect();
        let padding: Vec<f32> = (0..B * S)
            .map(|i| if i >= S + 11 { 0.0 } else { 1.0 })
            .collect();
        let bias = attention_mask_bias(cx.tensor::<R2<B, S>>().set(padding));
        let q = projected[0]
            .reshape::<R4<B, S, 2, 16>>()
            .permute::<R4<B, 2, S, 16>, Axes4<0, 2, 1, 3>>();
        let k = projected[1]
            .reshape::<R4<B, S, 2, 16>>()
            .permute::<R4<B, 2, 16, S>, Axes4<0, 2, 3, 1>>();
        let v = projected[2]
            .reshape::<R4<B, S, 2, 16>>()
            .permute::<R4<B, 2, S, 16>, Axes4<0, 2, 1, 3>>();
        let key = cx.tensor::<RandomKey>().set(key_values(5));
        let drop = dropout.then_some((
            key,
            AttentionDropout {
                rate: 0.25,
                stream: 3,
            },
        ));
        let context = attention_probabilities(q.matmul(k), bias, 0.25, drop)
            .matmul(v)
            .permute::<R4<B, S, 2, 16>, Axes4<0, 2, 1, 3>>()
            .reshape::<R3<B, S, HIDDEN>>();
        let weights = cx
            .tensor::<R3<B, S, HIDDEN>>()
            .set(random(B * S * HIDDEN, &mut rng));
        let loss = (context * weights).sum_reduce::<R0, _>();
        let parameters: Vec<ParameterRef> = inputs
            .iter()
            .zip(["q", "k", "v"])
            .map(|(x, name)| ParameterRef {
                name: name.into(),
                id: x.id,
                shape: vec![B, S, HIDDEN],
                init: ParameterInit::Zeros,
            })
            .collect();
        for x in &inputs {
            cx.keep_tensors(x.id);
        }
        let gradients = if train {
            add_backward(&mut cx, TensorRef::of(loss), &parameters, &[]).unwrap()
        } else {
            Vec::new()
        };
        let mut outputs: Vec<NodeIndex> = [loss.id]
            .into_iter()
            .chain(gradients.iter().map(|g| g.tensor.id))
            .collect();
        cx.retrieve_tensors(outputs.clone());
        let fusion = FuseWithReference {
            on: fused,
            counts: Cell::new((0, 0)),
        };
        cx.compile(
            (
                GenericCompiler::default(),
                ContractionCompiler,
                OperandSumsCompiler,
                ElementwiseFusionCompiler,
                &fusion,
            ),
            outputs.iter_mut().collect::<Vec<_>>(),
        );
        let counts = fusion.counts.get();
        cx.execute();
        let results = outputs
            .iter()
            .zip(
                [None]
                    .into_iter()
                    .chain(gradients.iter().map(|g| Some(g.tensor.view))),
            )
            .map(|(&id, view)| {
                let tensor = cx.get_tensor_ref(id, 0).unwrap();
                let data = tensor.data.as_any().downcast_ref::<Vec<f32>>().unwrap();
                match view {
                    Some(view) => {
                        let input = InputTensor::Borrowed(tensor);
                        input_values(&input, &view).into_owned()
                    }
                    None => data.clone(),
                }
            })
            .collect();
        (results, counts)
    }

    #[test]
    fn a_fused_attention_computes_what_its_nodes_did() {
        for dropout in [false, true] {
            let (expected, _) = attention_step::<16>(dropout, false, true);
            let (actual, counts) = attention_step::<16>(dropout, true, true);
            assert_eq!(
                counts,
                (1, 1),
                "one attention, forward and backward, with dropout {dropout}"
            );
            for (e, a) in expected.iter().zip(&actual) {
                assert_eq!(e.len(), a.len());
                let scale = e.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (x, y) in e.iter().zip(a) {
                    assert!(
                        (x - y).abs() <= 1e-5 * scale.max(1.0),
                        "{x} vs {y} (dropout {dropout})"
                    );
                }
            }
        }
    }

    #[test]
    fn an_attention_longer_than_the_kernels_take_keeps_its_nodes() {
        let (_, counts) = attention_step::<{ MAX_SEQUENCE + 16 }>(true, true, true);
        assert_eq!(counts, (0, 0));
    }

    #[test]
    fn an_attention_without_a_backward_pass_fuses_its_forward() {
        let (expected, _) = attention_step::<16>(true, false, false);
        let (actual, counts) = attention_step::<16>(true, true, false);
        assert_eq!(counts, (1, 0));
        assert!((expected[0][0] - actual[0][0]).abs() <= 1e-5 * expected[0][0].abs().max(1.0));
    }

    /// The context's product at BERT-base's 128 tokens as the graph plans it: `a` the values
    /// `[batch, key, head, dim]`, `b` the probabilities `[batch, head, query, key]`, the output
    /// token-major `[batch, query, head, dim]` (axes: size, stride in a, in b, in the output).
    fn context_product() -> Product {
        Product {
            batch: (256, 128 * 768, 12 * 128 * 128, 128 * 768),
            head: (12, 64, 128 * 128, 64),
            free: [(64, 1, 0, 1), (128, 0, 128, 768)],
            summed: (128, 768, 1, 0),
        }
    }

    fn input() -> Input {
        Input {
            source: NodeIndex::new(0),
            output: 0,
            view: ShapeTracker::new(&[]),
        }
    }

    #[test]
    fn a_products_layouts_are_read_off_its_strides() {
        let product = context_product();
        // The values, summed over their rows (the keys).
        let values = product
            .operand(0, false, input())
            .expect("the values' layout");
        assert_eq!(
            values.layout,
            OperandLayout {
                batch: 128 * 768,
                head: 64,
                row: 768
            }
        );
        // The output's rows are the probabilities' free axis (the queries).
        let context = product.output(1).expect("the context's layout");
        assert_eq!(
            context.0,
            OperandLayout {
                batch: 128 * 768,
                head: 64,
                row: 768
            }
        );
    }

    #[test]
    fn layouts_the_kernels_cannot_take_are_refused() {
        // Rows 772 values apart are not 16-byte aligned.
        let mut unaligned = context_product();
        unaligned.summed.1 = 772;
        assert!(unaligned.operand(0, false, input()).is_none());
        // A head dimension that is not contiguous.
        let mut strided = context_product();
        strided.free[0].1 = 2;
        assert!(strided.operand(0, false, input()).is_none());
        // An output that leaves gaps in its buffer (rows 800 values apart).
        let mut gapped = context_product();
        gapped.free[1].3 = 800;
        assert!(gapped.output(1).is_none());
        // An output whose head dimension is not contiguous.
        let mut transposed = context_product();
        transposed.free[0].3 = 128;
        transposed.free[1].3 = 1;
        assert!(transposed.output(1).is_none());
    }
}
