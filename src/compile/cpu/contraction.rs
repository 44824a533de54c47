use std::collections::HashSet;

use luminal::{
    op::{InputTensor, Mul, Operator, SumReduce},
    prelude::{
        petgraph::{visit::EdgeRef, Direction},
        *,
    },
};

use super::{
    parallel::{run_tasks, Shared},
    strided_view::{contiguous_strides, for_each_row, StridedView},
};
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
    /// The operand (0 for `a`, 1 for `b`) whose own sum over the summed axis is a second output
    /// (see `operand_sums`).
    operand_sum: Option<usize>,
}

impl Contraction {
    /// Plans `sum over reduced of a * b` for operand views `a` and `b` of one logical shape;
    /// `None` where it is no contraction (the summed axis broadcast in an operand).
    fn plan(a: &StridedView, b: &StridedView, reduced: usize) -> Option<Self> {
        Self::plan_summing(a, b, &[reduced])
    }

    /// Like [`plan`](Self::plan), summing over several axes, which must step through both
    /// operands as one axis (a weight gradient's batch and sequence axes).
    fn plan_summing(a: &StridedView, b: &StridedView, reduced: &[usize]) -> Option<Self> {
        let sizes = &a.sizes;
        let out_sizes: Vec<usize> = sizes
            .iter()
            .enumerate()
            .filter(|&(axis, _)| !reduced.contains(&axis))
            .map(|(_, &size)| size)
            .collect();
        let out_strides = contiguous_strides(&out_sizes);
        // The summed axes, innermost (smallest stride in `a`) first, merged into one.
        let mut summed: Vec<usize> = reduced.to_vec();
        summed.sort_by_key(|&axis| a.strides[axis]);
        let mut k = Axis {
            size: sizes[summed[0]],
            a: a.strides[summed[0]],
            b: b.strides[summed[0]],
            out: 0,
        };
        for &axis in &summed[1..] {
            if a.strides[axis] != k.a * k.size || b.strides[axis] != k.b * k.size {
                return None;
            }
            k.size *= sizes[axis];
        }
        if k.a == 0 || k.b == 0 {
            return None;
        }
        let axes: Vec<Axis> = (0..sizes.len())
            .filter(|&axis| !reduced.contains(&axis))
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
            operand_sum: None,
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

impl Contraction {
    /// The contraction without a GEMM shape (no axis only one operand reads): a sum of
    /// products per output, where a GEMM call per output would cost far more than its work.
    fn multiply_reduce(&self, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; self.out_len];
        let k = self.k;
        let sizes: Vec<usize> = self.loops.iter().map(|axis| axis.size).collect();
        let strides: [Vec<usize>; 3] = [
            self.loops.iter().map(|axis| axis.a).collect(),
            self.loops.iter().map(|axis| axis.b).collect(),
            self.loops.iter().map(|axis| axis.out).collect(),
        ];
        let strides = [&strides[0][..], &strides[1][..], &strides[2][..]];
        if k.a == 1 && k.b == 1 {
            // The summed axis is contiguous: one dot product per output.
            for_each_row(&sizes, &strides, |offsets, len, steps| {
                for i in 0..len {
                    let (a_at, b_at) = (offsets[0] + i * steps[0], offsets[1] + i * steps[1]);
                    out[offsets[2] + i * steps[2]] =
                        dot(&a[a_at..a_at + k.size], &b[b_at..b_at + k.size]);
                }
            });
        } else {
            // Walk the summed axis outermost so that the inner loop runs along the outputs.
            for step in 0..k.size {
                let (a_base, b_base) = (step * k.a, step * k.b);
                for_each_row(&sizes, &strides, |offsets, len, steps| {
                    for i in 0..len {
                        out[offsets[2] + i * steps[2]] += a[a_base + offsets[0] + i * steps[0]]
                            * b[b_base + offsets[1] + i * steps[1]];
                    }
                });
            }
        }
        out
    }
}

impl Contraction {
    /// Operand `operand`'s values (`x`) summed over the summed axis, one per output: the
    /// contraction's second output where [`operand_sum`](Self::operand_sum) is set.
    fn operand_sums(&self, x: &[f32], operand: usize) -> Vec<f32> {
        let stride = |axis: &Axis| axis.stride_in(operand);
        let mut out = vec![0.0f32; self.out_len];
        let sizes: Vec<usize> = self.loops.iter().map(|axis| axis.size).collect();
        let strides: [Vec<usize>; 2] = [
            self.loops.iter().map(stride).collect(),
            self.loops.iter().map(|axis| axis.out).collect(),
        ];
        let strides = [&strides[0][..], &strides[1][..]];
        let k_stride = stride(&self.k);
        for step in 0..self.k.size {
            let base = step * k_stride;
            for_each_row(&sizes, &strides, |offsets, len, steps| {
                for i in 0..len {
                    out[offsets[1] + i * steps[1]] += x[base + offsets[0] + i * steps[0]];
                }
            });
        }
        out
    }
}

/// A dot product in eight independent partial sums, so that it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut partial = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            partial[lane] += x[lane] * y[lane];
        }
    }
    partial.iter().sum::<f32>() + tail
}

impl Operator for Contraction {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        if self.m.size == 1 && self.n.size == 1 {
            let (a, b) = (input_buffer(&inputs[0].0), input_buffer(&inputs[1].0));
            let mut outputs = vec![Tensor::new(self.multiply_reduce(a, b))];
            if let Some(operand) = self.operand_sum {
                let x = [a, b][operand];
                outputs.push(Tensor::new(self.operand_sums(x, operand)));
            }
            return outputs;
        }
        assert!(
            self.operand_sum.is_none(),
            "operand sums are planned for column dots only"
        );
        // The operands' views are in the plan; read their buffers as they are.
        let (a, b) = (input_buffer(&inputs[0].0), input_buffer(&inputs[1].0));
        let mut out = vec![0.0f32; self.out_len];
        let gemms: usize = self.loops.iter().map(|axis| axis.size).product();
        // matrixmultiply runs a GEMM this small on one thread: split the batch of them instead.
        let small = self.m.size * self.k.size + self.k.size * self.n.size < SINGLE_THREADED_GEMM;
        let work = gemms * self.m.size * self.n.size * self.k.size;
        let threads = if small && gemms > 1 && work >= THREADING_WORK {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(gemms))
        } else {
            1
        };
        let (a, b, c) = (
            Shared(a.as_ptr()),
            Shared(b.as_ptr()),
            Shared(out.as_mut_ptr()),
        );
        let this = &*self;
        // SAFETY (of the writes through `c`): distinct loop indices write distinct outputs.
        run_tasks(gemms, threads, |gemm| {
            this.run_gemms(a, b, c, gemm..gemm + 1)
        });
        vec![Tensor::new(out)]
    }
}

/// Below this `m * k + k * n`, matrixmultiply uses one thread for a GEMM.
const SINGLE_THREADED_GEMM: usize = 1 << 15;
/// Multiply-adds below which a second thread costs more than it saves.
const THREADING_WORK: usize = 1 << 22;

impl Contraction {
    /// The GEMMs of flat loop indices `range`.
    fn run_gemms(
        &self,
        a: Shared<*const f32>,
        b: Shared<*const f32>,
        c: Shared<*mut f32>,
        range: std::ops::Range<usize>,
    ) {
        for flat in range {
            let (mut rest, mut a_offset, mut b_offset, mut out_offset) = (flat, 0, 0, 0);
            for axis in self.loops.iter().rev() {
                let index = rest % axis.size;
                rest /= axis.size;
                a_offset += index * axis.a;
                b_offset += index * axis.b;
                out_offset += index * axis.out;
            }
            // SAFETY: the plan's strides come from the operands' views, whose every index lies
            // inside their buffers, and from the output's contiguous shape; distinct loop indices
            // write distinct output elements.
            unsafe {
                matrixmultiply::sgemm(
                    self.m.size,
                    self.k.size,
                    self.n.size,
                    1.0,
                    a.0.add(a_offset),
                    self.m.a as isize,
                    self.k.a as isize,
                    b.0.add(b_offset),
                    self.k.b as isize,
                    self.n.b as isize,
                    0.0,
                    c.0.add(out_offset),
                    self.m.out as isize,
                    self.n.out as isize,
                );
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
        let referenced: HashSet<NodeIndex> = remap
            .to_ids_mut()
            .into_iter()
            .map(|id| *id)
            .chain(graph.no_delete.iter().copied())
            .chain(graph.to_retrieve.iter().copied())
            .collect();
        for reduce in reduces {
            // An earlier fold may have removed this reduce (and its index been reused).
            let Some(axis) = graph
                .graph
                .node_weight(reduce)
                .and_then(|op| op.as_any().downcast_ref::<SumReduce>())
                .map(|op| op.0)
            else {
                continue;
            };
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
            // A second sum right after (a weight gradient summed over sequence, then batch)
            // folds into the same contraction where the two axes merge.
            let kept: Vec<usize> = (0..a.sizes.len())
                .filter(|&i| i != axis)
                .map(|i| a.sizes[i])
                .collect();
            let folded =
                second_sum(graph, &referenced, reduce, &kept).and_then(|(outer, outer_axis)| {
                    let second = if outer_axis < axis {
                        outer_axis
                    } else {
                        outer_axis + 1
                    };
                    Contraction::plan_summing(&a, &b, &[axis, second]).map(|c| (outer, c))
                });
            let (last, contraction) = match folded {
                Some((outer, contraction)) => (Some(outer), contraction),
                None => match Contraction::plan(&a, &b, axis) {
                    Some(contraction) => (None, contraction),
                    None => continue,
                },
            };
            let new = graph
                .add_op(contraction)
                .input(operands[0].0, operands[0].1, operands[0].2)
                .input(operands[1].0, operands[1].1, operands[1].2)
                .finish();
            move_outgoing_edge(last.unwrap_or(reduce), new, &mut graph.graph);
            for old in [Some(reduce), Some(product), last].into_iter().flatten() {
                move_references(
                    &mut remap,
                    &mut graph.no_delete,
                    &mut graph.to_retrieve,
                    old,
                    new,
                );
                graph.graph.remove_node(old);
            }
        }
    }
}

/// The `SumReduce` that is `reduce`'s only use, reading its result (of `sizes`) as it is, and
/// its axis; `None` where there is none or `reduce`'s own result is needed elsewhere.
fn second_sum(
    graph: &Graph,
    referenced: &HashSet<NodeIndex>,
    reduce: NodeIndex,
    sizes: &[usize],
) -> Option<(NodeIndex, usize)> {
    let mut uses = graph.graph.edges_directed(reduce, Direction::Outgoing);
    let edge = uses.next()?;
    if uses.next().is_some() || referenced.contains(&reduce) {
        return None;
    }
    let Dependency::Data { shape: view, .. } = edge.weight() else {
        return None;
    };
    let plain = view.len() == sizes.len()
        && (0..sizes.len()).all(|axis| view.dims[axis].to_usize() == Some(sizes[axis]))
        && !view.fake.iter().any(|&f| f)
        && !view.is_sliced()
        && !view.is_padded()
        && view.indexes.iter().enumerate().all(|(i, &axis)| i == axis);
    let outer = edge.target();
    let axis = graph
        .graph
        .node_weight(outer)?
        .as_any()
        .downcast_ref::<SumReduce>()?
        .0;
    plain.then_some((outer, axis))
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

    /// Whether the contraction is column dot products: one sum of products per output, with
    /// fewer outputs than terms, over an outer axis both operands and the output step through
    /// by 1 (a LayerNorm weight's gradient: 768 features, each summed over every token).
    pub fn is_column_dot(&self) -> bool {
        is_column_dot(&self.loop_axes(), self.gemm_axes(), self.out_len)
    }

    /// Which operand's own sums are a second output, if any.
    pub fn operand_sum(&self) -> Option<usize> {
        self.operand_sum
    }

    /// The same column dots, also giving operand `operand`'s sums over the summed axis.
    pub fn with_operand_sum(&self, operand: usize) -> Self {
        assert!(
            self.is_column_dot(),
            "operand sums are planned for column dots only"
        );
        assert!(operand < 2, "a contraction has two operands");
        Self {
            operand_sum: Some(operand),
            ..self.clone()
        }
    }

    /// Operand `operand`'s `(size, stride)` of each output axis (in output order, size-1 axes
    /// left out) and of the summed axis.
    pub(crate) fn operand_layout(&self, operand: usize) -> (Vec<(usize, usize)>, (usize, usize)) {
        let mut outputs: Vec<&Axis> = self
            .loops
            .iter()
            .chain([&self.m, &self.n])
            .filter(|axis| axis.size > 1)
            .collect();
        outputs.sort_by_key(|axis| std::cmp::Reverse(axis.out));
        (
            outputs
                .iter()
                .map(|axis| (axis.size, axis.stride_in(operand)))
                .collect(),
            (self.k.size, self.k.stride_in(operand)),
        )
    }
}

/// See [`Contraction::is_column_dot`]; for a plan's loops and GEMM axes.
pub fn is_column_dot(loops: &[AxisStrides], [m, n, k]: [AxisStrides; 3], out_len: usize) -> bool {
    m.0 == 1
        && n.0 == 1
        && out_len < k.0
        && loops
            .iter()
            .any(|&(size, a, b, out)| size > 1 && a == 1 && b == 1 && out == 1)
}

impl Axis {
    fn strides(&self) -> AxisStrides {
        (self.size, self.a, self.b, self.out)
    }

    /// The axis's stride in operand `operand` (0 for `a`, 1 for `b`).
    fn stride_in(&self, operand: usize) -> usize {
        stride_in(self.strides(), operand)
    }
}

/// An axis's stride in operand `operand` (0 for `a`, 1 for `b`) of a plan's [`AxisStrides`].
pub fn stride_in((_, a, b, _): AxisStrides, operand: usize) -> usize {
    if operand == 0 {
        a
    } else {
        b
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
    fn products_without_a_gemm_shape_match_brute_force() {
        // Both operands read every axis: no GEMM M or N, only sums of products.
        let view = StridedView {
            sizes: vec![3, 4, 37],
            strides: vec![148, 37, 1],
        };
        let transposed = StridedView {
            sizes: vec![3, 4, 37],
            strides: vec![1, 3, 12],
        };
        let a: Vec<f32> = (0..444).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..444).map(|i| (i as f32 * 0.11).cos()).collect();
        for (bv, reduced) in [(&view, 2), (&view, 0), (&transposed, 2), (&transposed, 1)] {
            let mut contraction = Contraction::plan(&view, bv, reduced).unwrap();
            assert_eq!((contraction.m.size, contraction.n.size), (1, 1));
            let expected = reference(&a, &view, &b, bv, reduced);
            let actual = run(&mut contraction, a.clone(), b.clone());
            for (x, y) in actual.iter().zip(&expected) {
                assert!((x - y).abs() < 1e-5 * y.abs().max(1.0), "{x} vs {y}");
            }
        }
    }

    #[test]
    fn batches_of_small_gemms_split_between_threads_match_brute_force() {
        // Attention's shape of contraction: [batch 64, m 64, n 64, k 64], b transposed.
        let a_view = StridedView {
            sizes: vec![64, 64, 64, 64],
            strides: vec![4096, 64, 0, 1],
        };
        let b_view = StridedView {
            sizes: vec![64, 64, 64, 64],
            strides: vec![4096, 0, 1, 64],
        };
        let a: Vec<f32> = (0..262_144).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..262_144).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut contraction = Contraction::plan(&a_view, &b_view, 3).unwrap();
        assert!(contraction.m.size * contraction.k.size * 2 < SINGLE_THREADED_GEMM);
        let expected = reference(&a, &a_view, &b, &b_view, 3);
        let actual = run(&mut contraction, a, b);
        for (x, y) in actual.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-4 * y.abs().max(1.0), "{x} vs {y}");
        }
    }

    #[test]
    fn a_sum_over_sequence_then_batch_folds_into_one_contraction() {
        let run = |compile: bool| {
            let mut cx = Graph::new();
            let x = cx.tensor::<R3<4, 8, 5>>().set(
                (0..160)
                    .map(|i| (i as f32 * 0.37).sin())
                    .collect::<Vec<_>>(),
            );
            let dy = cx.tensor::<R3<4, 8, 6>>().set(
                (0..192)
                    .map(|i| (i as f32 * 0.11).cos())
                    .collect::<Vec<_>>(),
            );
            // A weight gradient: sum over batch and sequence of x[b, s, i] * dy[b, s, j].
            let product = x.expand::<R4<4, 8, 5, 6>, luminal::prelude::Axis<3>>()
                * dy.expand::<R4<4, 8, 5, 6>, luminal::prelude::Axis<2>>();
            let mut gradient = product
                .sum_reduce::<R3<4, 5, 6>, luminal::prelude::Axis<1>>()
                .sum_reduce::<R2<5, 6>, luminal::prelude::Axis<0>>()
                .retrieve();
            if compile {
                cx.compile(
                    (GenericCompiler::default(), ContractionCompiler),
                    &mut gradient,
                );
            } else {
                cx.compile(GenericCompiler::default(), &mut gradient);
            }
            let reduces = cx
                .graph
                .node_indices()
                .filter(|&n| cx.graph.node_weight(n).unwrap().as_any().is::<SumReduce>())
                .count();
            cx.execute();
            (gradient.data(), reduces)
        };
        let ((expected, _), (actual, reduces)) = (run(false), run(true));
        assert_eq!(reduces, 0);
        for (x, y) in actual.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-5 * y.abs().max(1.0), "{x} vs {y}");
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
