//! A sum that a column-dot contraction already reads, as a second output of that contraction.
//! LayerNorm's backward pass sums the output's gradient `dy` over every token twice: times
//! `x_hat` for the weight's gradient (a column dot), and alone for the bias's. Done together,
//! `dy` is read once: at BERT-base, 100 MB less a LayerNorm at 256 x 128.
//!
//! A sum is matched by what it adds up, not by how the graph spells it: autograd reads `dy`
//! through one view for the product and through another (permuted, summed in two steps) for the
//! bias, so both sides are brought to the same form, the `(size, buffer stride)` of each output
//! axis in output order and of each summed axis, with size-1 axes dropped and neighbouring axes
//! that are one axis in disguise merged.
use luminal::{
    op::{Contiguous, SumReduce},
    prelude::{
        petgraph::{visit::EdgeRef, Direction},
        symbolic::Expression,
        *,
    },
};

use super::{contraction::Contraction, strided_view::StridedView};

/// Moves each sum (one `SumReduce`, or two in a row) of a column-dot operand over the
/// contraction's summed axis into that contraction. Runs after [`super::ContractionCompiler`].
#[derive(Debug, Default)]
pub struct OperandSumsCompiler;

impl Compiler for OperandSumsCompiler {
    fn compile<T: ToIdsMut>(&self, graph: &mut Graph, mut remap: T) {
        let referenced: Vec<NodeIndex> = remap.to_ids_mut().into_iter().map(|id| *id).collect();
        let contractions: Vec<NodeIndex> = graph
            .graph
            .node_indices()
            .filter(|&node| {
                graph
                    .graph
                    .node_weight(node)
                    .and_then(|op| op.as_any().downcast_ref::<Contraction>())
                    .is_some_and(|c| c.is_column_dot() && c.operand_sum().is_none())
            })
            .collect();
        for contraction in contractions {
            let op = graph
                .graph
                .node_weight(contraction)
                .expect("live node")
                .as_any()
                .downcast_ref::<Contraction>()
                .expect("a contraction")
                .clone();
            let operands = graph.get_sources(contraction);
            let found = (0..2).find_map(|operand| {
                let (source, output, _) = operands[operand];
                let layout = normalized(op.operand_layout(operand));
                sum_chains(graph, source, output)
                    .into_iter()
                    .find(|chain| {
                        chain.layout == layout
                            && !chain.nodes[..chain.nodes.len() - 1].iter().any(|node| {
                                referenced.contains(node)
                                    || graph.no_delete.contains(node)
                                    || graph.to_retrieve.contains(node)
                            })
                    })
                    .map(|chain| (operand, chain))
            });
            let Some((operand, chain)) = found else {
                continue;
            };
            // The chain's last node stays, as a copy of the contraction's second output, so that
            // whatever names it (a retrieved or kept gradient) still does.
            let (&last, earlier) = chain.nodes.split_last().expect("a chain has a sum");
            let input = graph
                .graph
                .edges_directed(last, Direction::Incoming)
                .find_map(|edge| edge.weight().as_data().map(|data| (edge.id(), data)));
            let Some((edge, (_, _, view))) = input else {
                continue;
            };
            let axis = sum_axis(graph, last).expect("the chain ends in a sum");
            let Some(mut dims) = view
                .shape()
                .iter()
                .map(|size| size.to_usize().map(Expression::from))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            dims.remove(axis);
            *graph.graph.node_weight_mut(contraction).expect("live node") =
                Box::new(op.with_operand_sum(operand));
            graph.graph.remove_edge(edge);
            graph.graph.add_edge(
                contraction,
                last,
                Dependency::Data {
                    input_order: 0,
                    output_order: 1,
                    shape: ShapeTracker::new(&dims),
                },
            );
            *graph.graph.node_weight_mut(last).expect("live node") = Box::new(Contiguous);
            for &node in earlier {
                graph.graph.remove_node(node);
            }
        }
    }
}

/// Output axes and summed axes as `(size, buffer stride)`, normalized (see the module's comment).
type Layout = (Vec<(usize, usize)>, Vec<(usize, usize)>);

/// A sum of a node's output: its `SumReduce` nodes in order, and what it adds up.
struct SumChain {
    nodes: Vec<NodeIndex>,
    layout: Layout,
}

/// The sums of `source`'s `output`: each `SumReduce` reading it through a plain strided view,
/// alone, or followed by a second `SumReduce` that is its only reader and reads it as it is.
fn sum_chains(graph: &Graph, source: NodeIndex, output: u8) -> Vec<SumChain> {
    let mut chains = Vec::new();
    for edge in graph.graph.edges_directed(source, Direction::Outgoing) {
        let Some((_, from, view)) = edge.weight().as_data() else {
            continue;
        };
        let first = edge.target();
        let (Some(axis), Some(strided)) = (sum_axis(graph, first), StridedView::of(&view)) else {
            continue;
        };
        if from != output {
            continue;
        }
        let mut kept: Vec<(usize, usize)> =
            strided.sizes.into_iter().zip(strided.strides).collect();
        let mut summed = vec![kept.remove(axis)];
        let mut nodes = vec![first];
        if let Some((second, second_axis)) = only_plain_sum_reader(graph, first, kept.len()) {
            summed.push(kept.remove(second_axis));
            nodes.push(second);
        }
        chains.push(SumChain {
            nodes,
            layout: (merge_outputs(kept), merge_summed(summed)),
        });
    }
    chains
}

/// The axis `node` sums over, where it is a `SumReduce`.
fn sum_axis(graph: &Graph, node: NodeIndex) -> Option<usize> {
    graph
        .graph
        .node_weight(node)?
        .as_any()
        .downcast_ref::<SumReduce>()
        .map(|op| op.0)
}

/// The `SumReduce` that is `node`'s only reader, reading its `rank`-axis result as it is, with
/// its axis.
fn only_plain_sum_reader(
    graph: &Graph,
    node: NodeIndex,
    rank: usize,
) -> Option<(NodeIndex, usize)> {
    let mut uses = graph.graph.edges_directed(node, Direction::Outgoing);
    let edge = uses.next()?;
    if uses.next().is_some() {
        return None;
    }
    let (_, _, view) = edge.weight().as_data()?;
    let plain =
        view.len() == rank && !view.is_sliced() && !view.is_padded() && view.is_contiguous();
    let axis = sum_axis(graph, edge.target())?;
    plain.then_some((edge.target(), axis))
}

/// A contraction operand's layout, normalized.
fn normalized((outputs, summed): (Vec<(usize, usize)>, (usize, usize))) -> Layout {
    (merge_outputs(outputs), merge_summed(vec![summed]))
}

/// Output axes in output order, size-1 axes dropped, an axis merged into the one before it
/// where the two step through the buffer as one.
fn merge_outputs(axes: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (size, stride) in axes.into_iter().filter(|&(size, _)| size > 1) {
        match merged.last_mut() {
            Some(outer) if outer.1 == stride * size => *outer = (outer.0 * size, stride),
            _ => merged.push((size, stride)),
        }
    }
    merged
}

/// Summed axes in any order: size-1 axes dropped, sorted by stride, merged where one continues
/// the other.
fn merge_summed(mut axes: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    axes.retain(|&(size, _)| size > 1);
    axes.sort_by_key(|&(_, stride)| stride);
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (size, stride) in axes {
        match merged.last_mut() {
            Some(inner) if stride == inner.1 * inner.0 => inner.0 *= size,
            _ => merged.push((size, stride)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        autograd::{add_backward, TensorRef},
        compile::cpu::DropbertCpuCompiler,
        nn::{LayerNorm, Parameters},
    };

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i + seed) * 7919) % 97) as f32 / 48.0 - 1.0)
            .collect()
    }

    fn operand_sums(graph: &Graph) -> usize {
        graph
            .graph
            .node_weights()
            .filter_map(|op| op.as_any().downcast_ref::<Contraction>())
            .filter(|c| c.operand_sum().is_some())
            .count()
    }

    /// A product summed over two axes (more terms than outputs: column dots), and its operand
    /// summed over the same elements through
    /// the same view, through a permuted view in the other order, and over another axis.
    #[test]
    fn an_operand_summed_as_the_column_dots_sum_becomes_their_second_output() {
        let mut cx = Graph::new();
        let (g_values, x_values) = (values(8 * 6 * 40, 1), values(8 * 6 * 40, 2));
        let g = cx.tensor::<R3<8, 6, 40>>().set(g_values.clone());
        let x = cx.tensor::<R3<8, 6, 40>>().set(x_values.clone());
        let mut dots = (g * x)
            .sum_reduce::<_, Axis<1>>()
            .sum_reduce::<R1<40>, Axis<0>>()
            .retrieve();
        let mut same = g
            .sum_reduce::<_, Axis<1>>()
            .sum_reduce::<R1<40>, Axis<0>>()
            .retrieve();
        // luminal 0.2.0's `GraphTensor::sum_reduce` keeps its input's permutation in the result's
        // view, so a permutation that moves the kept axis reads the result out of order
        // (autograd's own sums give a plain view); this one swaps only the two summed axes.
        let mut permuted = g
            .permute::<R3<6, 8, 40>, Axes3<1, 0, 2>>()
            .sum_reduce::<_, Axis<0>>()
            .sum_reduce::<R1<40>, Axis<0>>()
            .retrieve();
        let mut other_axis = g.sum_reduce::<R2<8, 6>, Axis<2>>().retrieve();
        cx.compile(
            <DropbertCpuCompiler>::default(),
            (&mut dots, &mut same, &mut permuted, &mut other_axis),
        );
        assert_eq!(operand_sums(&cx), 1, "one sum moves into the column dots");
        cx.execute();
        let mut expected_dots = vec![0.0f32; 40];
        let mut expected_sums = vec![0.0f32; 40];
        for (i, (g, x)) in g_values.iter().zip(&x_values).enumerate() {
            expected_dots[i % 40] += g * x;
            expected_sums[i % 40] += g;
        }
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-4);
        assert!(close(&dots.data(), &expected_dots));
        assert!(close(&same.data(), &expected_sums));
        assert!(close(&permuted.data(), &expected_sums));
        let expected_rows: Vec<f32> = g_values.chunks(40).map(|row| row.iter().sum()).collect();
        assert!(close(&other_axis.data(), &expected_rows));
    }

    /// LayerNorm's backward pass as autograd builds it: the bias's gradient (a sum of the
    /// output's gradient) joins the weight's (a column dot), and both stay right.
    #[test]
    fn a_layer_norms_bias_gradient_joins_its_weights() {
        let mut cx = Graph::new();
        let layer_norm = LayerNorm::<Const<40>>::new(&mut cx, 1e-5);
        layer_norm.weight.set(values(40, 3));
        layer_norm.bias.set(values(40, 4));
        let x_values = values(8 * 10 * 40, 5);
        let w_values = values(8 * 10 * 40, 6);
        let x = cx.tensor::<R3<8, 10, 40>>().set(x_values.clone());
        let w = cx.tensor::<R3<8, 10, 40>>().set(w_values.clone());
        let loss = (layer_norm.forward(x) * w)
            .sum_reduce::<_, Axis<2>>()
            .sum_reduce::<_, Axis<1>>()
            .sum_reduce::<R0, Axis<0>>();
        let parameters = layer_norm.parameters("");
        let gradients = add_backward(&mut cx, TensorRef::of(loss), &parameters, &[]).unwrap();
        let mut outputs: Vec<GraphTensor<R1<40>>> = gradients
            .iter()
            .map(|g| g.tensor.typed::<R1<40>>(&mut cx).retrieve())
            .collect();
        cx.compile(<DropbertCpuCompiler>::default(), &mut outputs);
        assert_eq!(operand_sums(&cx), 1);
        cx.execute();
        // dweight = sum over rows of w * x_hat, dbias = sum over rows of w.
        let (mut dweight, mut dbias) = (vec![0.0f64; 40], vec![0.0f64; 40]);
        for (row, w_row) in x_values.chunks(40).zip(w_values.chunks(40)) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / 40.0;
            let variance = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 40.0;
            for j in 0..40 {
                let x_hat = (row[j] as f64 - mean) / (variance + 1e-5).sqrt();
                dweight[j] += w_row[j] as f64 * x_hat;
                dbias[j] += w_row[j] as f64;
            }
        }
        let by_name = |name: &str| {
            let at = parameters.iter().position(|p| p.name == name).unwrap();
            outputs[at].data()
        };
        for (name, expected) in [("weight", dweight), ("bias", dbias)] {
            for (j, (&got, want)) in by_name(name).iter().zip(&expected).enumerate() {
                assert!(
                    (got as f64 - want).abs() < 1e-4,
                    "{name}[{j}]: {got} vs {want}"
                );
            }
        }
    }
}
