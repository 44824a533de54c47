use luminal::{
    op::{InputTensor, Mul, Operator, SumReduce},
    prelude::{petgraph::Direction, *},
};

use super::strided_view::{contiguous_strides, StridedView};
use crate::ops::input_buffer;

/// One axis of a contraction with its stride in each operand and in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Axis {
    size: usize,
    a: usize,
    b: usize,
    out: usize,
}

/// `out = sum over one axis of a * b`, computed as a loop of strided GEMMs: the axis only `a`
/// reads is GEMM's M, the one only `b` reads is its N, the summed axis is its K, and every other
/// axis is an outer loop. Covers matmuls, batched attention matmuls and all their gradients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contraction {
    loops: Vec<Axis>,
    m: Axis,
    n: Axis,
    k: Axis,
    out_len: usize,
}

impl Contraction {
    /// Plans `sum over reduced of a * b` for operand views `a` and `b` of one logical shape;
    /// `None` where it is no contraction (the summed axis broadcast in an operand).
    fn plan(a: &StridedView, b: &StridedView, reduced: usize) -> Option<Self> {
        let sizes = &a.sizes;
        let out_sizes: Vec<usize> = sizes
            .iter()
            .enumerate()
            .filter(|&(axis, _)| axis != reduced)
            .map(|(_, &size)| size)
            .collect();
        let out_strides = contiguous_strides(&out_sizes);
        let k = Axis {
            size: sizes[reduced],
            a: a.strides[reduced],
            b: b.strides[reduced],
            out: 0,
        };
        if k.a == 0 || k.b == 0 {
            return None;
        }
        let axes: Vec<Axis> = (0..sizes.len())
            .filter(|&axis| axis != reduced)
            .zip(&out_strides)
            .map(|(axis, &out)| Axis {
                size: sizes[axis],
                a: a.strides[axis],
                b: b.strides[axis],
                out,
            })
            .filter(|axis| axis.size > 1)
            .collect();
        let axes = merge_adjacent(axes);
        let largest = |only_a: bool| {
            axes.iter()
                .enumerate()
                .filter(|(_, axis)| {
                    if only_a {
                        axis.a != 0 && axis.b == 0
                    } else {
                        axis.b != 0 && axis.a == 0
                    }
                })
                .max_by_key(|(_, axis)| axis.size)
                .map(|(index, _)| index)
        };
        let (m_index, n_index) = (largest(true), largest(false));
        let unit = Axis {
            size: 1,
            a: 0,
            b: 0,
            out: 0,
        };
        Some(Self {
            m: m_index.map_or(unit, |i| axes[i]),
            n: n_index.map_or(unit, |i| axes[i]),
            k,
            loops: axes
                .iter()
                .enumerate()
                .filter(|(index, _)| Some(*index) != m_index && Some(*index) != n_index)
                .map(|(_, axis)| *axis)
                .collect(),
            out_len: out_sizes.iter().product(),
        })
    }
}

/// Fuses neighbouring axes that are one axis in disguise (as `[batch, seq]` is in a linear layer).
fn merge_adjacent(axes: Vec<Axis>) -> Vec<Axis> {
    let mut merged: Vec<Axis> = Vec::with_capacity(axes.len());
    for axis in axes {
        if let Some(outer) = merged.last_mut() {
            let fits =
                |outer_stride: usize, inner_stride: usize| outer_stride == inner_stride * axis.size;
            if fits(outer.a, axis.a) && fits(outer.b, axis.b) && fits(outer.out, axis.out) {
                *outer = Axis {
                    size: outer.size * axis.size,
                    ..axis
                };
                continue;
            }
        }
        merged.push(axis);
    }
    merged
}

impl Operator for Contraction {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        // The operands' views are in the plan; read their buffers as they are.
        let (a, b) = (
            input_buffer(&inputs[0].0).as_ptr(),
            input_buffer(&inputs[1].0).as_ptr(),
        );
        let mut out = vec![0.0f32; self.out_len];
        let mut index = vec![0; self.loops.len()];
        let (mut a_offset, mut b_offset, mut out_offset) = (0usize, 0usize, 0usize);
        loop {
            // SAFETY: the plan's strides come from the operands' views, whose every index lies
            // inside their buffers, and from the output's contiguous shape.
            unsafe {
                matrixmultiply::sgemm(
                    self.m.size,
                    self.k.size,
                    self.n.size,
                    1.0,
                    a.add(a_offset),
                    self.m.a as isize,
                    self.k.a as isize,
                    b.add(b_offset),
                    self.k.b as isize,
                    self.n.b as isize,
                    0.0,
                    out.as_mut_ptr().add(out_offset),
                    self.m.out as isize,
                    self.n.out as isize,
                );
            }
            let mut axis = self.loops.len();
            loop {
                if axis == 0 {
                    return vec![Tensor::new(out)];
                }
                axis -= 1;
                let step = self.loops[axis];
                index[axis] += 1;
                a_offset += step.a;
                b_offset += step.b;
                out_offset += step.out;
                if index[axis] < step.size {
                    break;
                }
                a_offset -= step.a * step.size;
                b_offset -= step.b * step.size;
                out_offset -= step.out * step.size;
                index[axis] = 0;
            }
        }
    }
}

/// Replaces every `SumReduce(Mul(a, b))` whose product is used nowhere else with a
/// [`Contraction`], so that no broadcast product is ever materialised.
#[derive(Debug, Default)]
pub struct ContractionCompiler;

impl Compiler for ContractionCompiler {
    fn compile<T: ToIdsMut>(&self, graph: &mut Graph, mut remap: T) {
        let reduces: Vec<NodeIndex> = graph
            .graph
            .node_indices()
            .filter(|&node| {
                graph
                    .graph
                    .node_weight(node)
                    .unwrap()
                    .as_any()
                    .is::<SumReduce>()
            })
            .collect();
        for reduce in reduces {
            let axis = graph
                .graph
                .node_weight(reduce)
                .unwrap()
                .as_any()
                .downcast_ref::<SumReduce>()
                .unwrap()
                .0;
            let sources = graph.get_sources(reduce);
            let (product, _, product_view) = sources[0];
            let is_mul = graph
                .graph
                .node_weight(product)
                .unwrap()
                .as_any()
                .is::<Mul>();
            let used_once = graph
                .graph
                .edges_directed(product, Direction::Outgoing)
                .filter(|edge| !edge.weight().is_schedule())
                .count()
                == 1;
            // The reduce may read the product through a permutation (autograd puts gradients back
            // in buffer order that way); anything else keeps the generic ops.
            let permutation_only = !product_view.fake.iter().any(|&f| f)
                && !product_view.is_sliced()
                && !product_view.is_padded();
            if !is_mul || !used_once || !permutation_only || graph.no_delete.contains(&product) {
                continue;
            }
            let operands = graph.get_sources(product);
            let (Some(a), Some(b)) = (
                StridedView::of(&operands[0].2),
                StridedView::of(&operands[1].2),
            ) else {
                continue;
            };
            // The reduce must see the product's own axes (in some order), not a reshape of them.
            let same_axes = product_view.len() == a.sizes.len()
                && (0..a.sizes.len())
                    .all(|axis| product_view.dims[axis].to_usize() == Some(a.sizes[axis]));
            if !same_axes {
                continue;
            }
            let order: Vec<usize> = product_view.indexes.to_vec();
            let (a, b) = (a.permuted(&order), b.permuted(&order));
            let Some(contraction) = Contraction::plan(&a, &b, axis) else {
                continue;
            };
            let new = graph
                .add_op(contraction)
                .input(operands[0].0, operands[0].1, operands[0].2)
                .input(operands[1].0, operands[1].1, operands[1].2)
                .finish();
            move_outgoing_edge(reduce, new, &mut graph.graph);
            for old in [reduce, product] {
                move_references(
                    &mut remap,
                    &mut graph.no_delete,
                    &mut graph.to_retrieve,
                    old,
                    new,
                );
            }
            graph.graph.remove_node(reduce);
            graph.graph.remove_node(product);
        }
    }
}

/// One axis of a [`Contraction`]'s plan as `(size, stride in a, stride in b, stride in the
/// output)`, for backends that run the plan with their own GEMM.
pub type AxisStrides = (usize, usize, usize, usize);

impl Contraction {
    /// The outer loops, outermost first.
    pub fn loop_axes(&self) -> Vec<AxisStrides> {
        self.loops.iter().map(Axis::strides).collect()
    }

    /// GEMM's M, N and K axes (size 1, strides 0, where the contraction has none).
    pub fn gemm_axes(&self) -> [AxisStrides; 3] {
        [self.m.strides(), self.n.strides(), self.k.strides()]
    }

    pub fn out_len(&self) -> usize {
        self.out_len
    }
}

impl Axis {
    fn strides(&self) -> AxisStrides {
        (self.size, self.a, self.b, self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: sum over `reduced` of a * b through the views, by brute force.
    fn reference(
        a: &[f32],
        av: &StridedView,
        b: &[f32],
        bv: &StridedView,
        reduced: usize,
    ) -> Vec<f32> {
        let sizes = &av.sizes;
        let out_sizes: Vec<usize> = sizes
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != reduced)
            .map(|(_, &s)| s)
            .collect();
        let mut out = vec![0.0; out_sizes.iter().product()];
        let total: usize = sizes.iter().product();
        for flat in 0..total {
            let mut rest = flat;
            let mut index = vec![0; sizes.len()];
            for axis in (0..sizes.len()).rev() {
                index[axis] = rest % sizes[axis];
                rest /= sizes[axis];
            }
            let offset = |v: &StridedView| {
                index
                    .iter()
                    .zip(&v.strides)
                    .map(|(i, s)| i * s)
                    .sum::<usize>()
            };
            let mut out_index = 0;
            for (axis, &i) in index.iter().enumerate() {
                if axis != reduced {
                    out_index = out_index * sizes[axis] + i;
                }
            }
            out[out_index] += a[offset(av)] * b[offset(bv)];
        }
        out
    }

    fn run(contraction: &mut Contraction, a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
        let view = ShapeTracker::new(&[]);
        let out = contraction.process(vec![
            (InputTensor::Owned(Tensor::new(a)), view),
            (InputTensor::Owned(Tensor::new(b)), view),
        ]);
        out[0]
            .data
            .as_any()
            .downcast_ref::<Vec<f32>>()
            .unwrap()
            .clone()
    }

    #[test]
    fn batched_and_transposed_products_match_brute_force() {
        // [batch 2, m 3, n 4, k 5] with b transposed and a broadcast over n; every reduced axis.
        let a_view = StridedView {
            sizes: vec![2, 3, 4, 5],
            strides: vec![15, 5, 0, 1],
        };
        let b_view = StridedView {
            sizes: vec![2, 3, 4, 5],
            strides: vec![20, 0, 1, 4],
        };
        let a: Vec<f32> = (0..30).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..40).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut contraction = Contraction::plan(&a_view, &b_view, 3).unwrap();
        let expected = reference(&a, &a_view, &b, &b_view, 3);
        let actual = run(&mut contraction, a.clone(), b.clone());
        for (x, y) in actual.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        // Summing the batch axis (a weight gradient's shape of contraction).
        let mut contraction = Contraction::plan(&a_view, &b_view, 0).unwrap();
        let expected = reference(&a, &a_view, &b, &b_view, 0);
        let actual = run(&mut contraction, a, b);
        for (x, y) in actual.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn a_broadcast_summed_axis_is_no_contraction() {
        let a_view = StridedView {
            sizes: vec![3, 4],
            strides: vec![1, 0],
        };
        let b_view = StridedView {
            sizes: vec![3, 4],
            strides: vec![4, 1],
        };
        assert!(Contraction::plan(&a_view, &b_view, 1).is_none());
    }
}
