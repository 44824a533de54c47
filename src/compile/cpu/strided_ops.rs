use luminal::{
    op::{self, InputTensor, Operator},
    prelude::*,
};

use super::strided_view::{contiguous_strides, for_each_row, StridedView};
use crate::ops::input_buffer as buffer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    Add,
    Mul,
    Mod,
    LessThan,
}

impl BinaryKind {
    pub(crate) fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Mul => a * b,
            BinaryKind::Mod => a % b,
            BinaryKind::LessThan => (a < b) as u8 as f32,
        }
    }
}

/// A luminal binary primitive on views resolved to strides at compile time.
#[derive(Debug, Clone, PartialEq)]
pub struct StridedBinary {
    kind: BinaryKind,
    sizes: Vec<usize>,
    a_strides: Vec<usize>,
    b_strides: Vec<usize>,
}

impl Operator for StridedBinary {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let (a, b) = (buffer(&inputs[0].0), buffer(&inputs[1].0));
        let mut out = Vec::with_capacity(self.sizes.iter().product());
        let kind = self.kind;
        for_each_row(
            &self.sizes,
            &[&self.a_strides, &self.b_strides],
            |offsets, len, steps| {
                let (a_offset, b_offset) = (offsets[0], offsets[1]);
                match (steps[0], steps[1]) {
                    (1, 1) => out.extend(
                        a[a_offset..a_offset + len]
                            .iter()
                            .zip(&b[b_offset..b_offset + len])
                            .map(|(&x, &y)| kind.apply(x, y)),
                    ),
                    (1, 0) => {
                        let y = b[b_offset];
                        out.extend(
                            a[a_offset..a_offset + len]
                                .iter()
                                .map(|&x| kind.apply(x, y)),
                        )
                    }
                    (0, 1) => {
                        let x = a[a_offset];
                        out.extend(
                            b[b_offset..b_offset + len]
                                .iter()
                                .map(|&y| kind.apply(x, y)),
                        )
                    }
                    (a_step, b_step) => {
                        out.extend((0..len).map(|i| {
                            kind.apply(a[a_offset + i * a_step], b[b_offset + i * b_step])
                        }))
                    }
                }
            },
        );
        vec![Tensor::new(out)]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceKind {
    Sum,
    Max,
}

/// A luminal reduction (or, with no axis, a contiguous copy) on a view resolved to strides.
#[derive(Debug, Clone, PartialEq)]
pub struct StridedReduce {
    kind: ReduceKind,
    /// The kept axes' sizes and input strides, then the reduced axis last.
    sizes: Vec<usize>,
    strides: Vec<usize>,
}

impl Operator for StridedReduce {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let input = buffer(&inputs[0].0);
        let rank = self.sizes.len();
        let reduced_len = self.sizes[rank - 1];
        let reduced_stride = self.strides[rank - 1];
        let kept_sizes = &self.sizes[..rank - 1];
        let kind = self.kind;
        let contiguous_kept = self.strides[..rank - 1].iter().rposition(|&s| s == 1);
        if let (true, Some(inner)) = (reduced_stride != 1, contiguous_kept) {
            // Summing across rows of a row-major input (a bias gradient): walk the reduced axis
            // outermost and accumulate whole rows, reading memory in order. Same order of
            // additions per output as the loop below.
            let out_len = kept_sizes.iter().product();
            let mut out = vec![
                match kind {
                    ReduceKind::Sum => 0.0f32,
                    ReduceKind::Max => f32::NEG_INFINITY,
                };
                out_len
            ];
            // Iterate with the contiguous kept axis innermost.
            let order: Vec<usize> = (0..rank - 1)
                .filter(|&a| a != inner)
                .chain([inner])
                .collect();
            let out_strides = contiguous_strides(kept_sizes);
            let sizes: Vec<usize> = order.iter().map(|&a| kept_sizes[a]).collect();
            let in_strides: Vec<usize> = order.iter().map(|&a| self.strides[a]).collect();
            let out_strides: Vec<usize> = order.iter().map(|&a| out_strides[a]).collect();
            for step in 0..reduced_len {
                let base = step * reduced_stride;
                for_each_row(
                    &sizes,
                    &[&in_strides, &out_strides],
                    |offsets, len, steps| {
                        let row = &input[base + offsets[0]..base + offsets[0] + len];
                        let acc = &mut out[offsets[1]..];
                        let acc = acc.iter_mut().step_by(steps[1]);
                        match kind {
                            ReduceKind::Sum => acc.zip(row).for_each(|(o, x)| *o += x),
                            ReduceKind::Max => acc.zip(row).for_each(|(o, &x)| *o = o.max(x)),
                        }
                    },
                );
            }
            return vec![Tensor::new(out)];
        }
        if reduced_stride == 1 {
            return vec![Tensor::new(self.reduce_rows(input))];
        }
        let mut out = Vec::with_capacity(kept_sizes.iter().product());
        let reduce = |start: usize| {
            let values = (0..reduced_len).map(|i| input[start + i * reduced_stride]);
            match kind {
                ReduceKind::Sum => values.sum::<f32>(),
                ReduceKind::Max => values.fold(f32::NEG_INFINITY, f32::max),
            }
        };
        for_each_row(
            kept_sizes,
            &[&self.strides[..rank - 1]],
            |offsets, len, steps| {
                out.extend((0..len).map(|i| reduce(offsets[0] + i * steps[0])));
            },
        );
        vec![Tensor::new(out)]
    }
}

impl StridedReduce {
    /// The reduction over a contiguous axis (softmax's max and sum, the cross-entropy's over
    /// the vocabulary): eight lanes per row, rows split between the cores.
    fn reduce_rows(&self, input: &[f32]) -> Vec<f32> {
        let rank = self.sizes.len();
        let (kept_sizes, row_len) = (&self.sizes[..rank - 1], self.sizes[rank - 1]);
        let mut starts = Vec::with_capacity(kept_sizes.iter().product());
        for_each_row(
            kept_sizes,
            &[&self.strides[..rank - 1]],
            |offsets, len, steps| starts.extend((0..len).map(|i| offsets[0] + i * steps[0])),
        );
        let mut out = vec![0.0f32; starts.len()];
        let threads = if starts.len() * row_len >= 1 << 20 {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(starts.len()))
        } else {
            1
        };
        let chunk = starts.len().div_ceil(threads).max(1);
        let kind = self.kind;
        std::thread::scope(|scope| {
            for (outs, starts) in out.chunks_mut(chunk).zip(starts.chunks(chunk)) {
                scope.spawn(move || {
                    for (o, &start) in outs.iter_mut().zip(starts) {
                        *o = reduce_lanes(kind, &input[start..start + row_len]);
                    }
                });
            }
        });
        out
    }
}

/// Sum or maximum of `values` in eight partial results, so that the loop vectorises.
fn reduce_lanes(kind: ReduceKind, values: &[f32]) -> f32 {
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    match kind {
        ReduceKind::Sum => {
            let mut lanes = [0.0f32; 8];
            for chunk in chunks {
                for (lane, &x) in lanes.iter_mut().zip(chunk) {
                    *lane += x;
                }
            }
            lanes.iter().sum::<f32>() + tail.iter().sum::<f32>()
        }
        ReduceKind::Max => {
            let mut lanes = [f32::NEG_INFINITY; 8];
            for chunk in chunks {
                for (lane, &x) in lanes.iter_mut().zip(chunk) {
                    *lane = lane.max(x);
                }
            }
            lanes
                .iter()
                .chain(tail)
                .fold(f32::NEG_INFINITY, |m, &x| m.max(x))
        }
    }
}

/// A contiguous copy of a view resolved to strides.
#[derive(Debug, Clone, PartialEq)]
pub struct StridedCopy {
    sizes: Vec<usize>,
    strides: Vec<usize>,
}

impl Operator for StridedCopy {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let input = buffer(&inputs[0].0);
        let mut out = Vec::with_capacity(self.sizes.iter().product());
        for_each_row(&self.sizes, &[&self.strides], |offsets, len, steps| {
            if steps[0] == 1 {
                out.extend_from_slice(&input[offsets[0]..offsets[0] + len]);
            } else {
                out.extend((0..len).map(|i| input[offsets[0] + i * steps[0]]));
            }
        });
        vec![Tensor::new(out)]
    }
}

/// Swaps luminal's binary, reduce and contiguous primitives for their strided forms wherever
/// the input views have no slices or padding (those keep the generic, interpreted ops).
#[derive(Debug, Default)]
pub struct StridedOpsCompiler;

impl Compiler for StridedOpsCompiler {
    fn compile<T: ToIdsMut>(&self, graph: &mut Graph, _remap: T) {
        let nodes: Vec<NodeIndex> = graph.graph.node_indices().collect();
        for node in nodes {
            let sources = graph.get_sources(node);
            let views: Option<Vec<StridedView>> = sources
                .iter()
                .map(|(_, _, view)| StridedView::of(view))
                .collect();
            let Some(views) = views else { continue };
            let any = graph.graph.node_weight(node).unwrap().as_any();
            let binary = if any.is::<op::Add>() {
                Some(BinaryKind::Add)
            } else if any.is::<op::Mul>() {
                Some(BinaryKind::Mul)
            } else if any.is::<op::Mod>() {
                Some(BinaryKind::Mod)
            } else if any.is::<op::LessThan>() {
                Some(BinaryKind::LessThan)
            } else {
                None
            };
            let reduce = any
                .downcast_ref::<op::SumReduce>()
                .map(|r| (ReduceKind::Sum, r.0))
                .or_else(|| {
                    any.downcast_ref::<op::MaxReduce>()
                        .map(|r| (ReduceKind::Max, r.0))
                });
            let replacement: Box<dyn Operator> = if let Some(kind) = binary {
                Box::new(StridedBinary {
                    kind,
                    sizes: views[0].sizes.clone(),
                    a_strides: views[0].strides.clone(),
                    b_strides: views[1].strides.clone(),
                })
            } else if let Some((kind, axis)) = reduce {
                let view = &views[0];
                let order: Vec<usize> = (0..view.sizes.len())
                    .filter(|&a| a != axis)
                    .chain([axis])
                    .collect();
                Box::new(StridedReduce {
                    kind,
                    sizes: order.iter().map(|&a| view.sizes[a]).collect(),
                    strides: order.iter().map(|&a| view.strides[a]).collect(),
                })
            } else if any.is::<op::Contiguous>() {
                Box::new(StridedCopy {
                    sizes: views[0].sizes.clone(),
                    strides: views[0].strides.clone(),
                })
            } else {
                continue;
            };
            *graph.graph.node_weight_mut(node).unwrap() = replacement;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: &mut StridedReduce, input: Vec<f32>) -> Vec<f32> {
        let out = op.process(vec![(
            InputTensor::Owned(Tensor::new(input)),
            ShapeTracker::new(&[]),
        )]);
        out[0]
            .data
            .as_any()
            .downcast_ref::<Vec<f32>>()
            .unwrap()
            .clone()
    }

    #[test]
    fn reductions_along_rows_match_brute_force() {
        // [300, 4001] row-major, reduced over its rows (enough work for two threads).
        let input: Vec<f32> = (0..300 * 4001).map(|i| (i as f32 * 0.37).sin()).collect();
        for kind in [ReduceKind::Sum, ReduceKind::Max] {
            let mut op = StridedReduce {
                kind,
                sizes: vec![300, 4001],
                strides: vec![4001, 1],
            };
            let actual = run(&mut op, input.clone());
            for (row, &value) in actual.iter().enumerate() {
                let values = input[row * 4001..(row + 1) * 4001].iter().copied();
                let expected = match kind {
                    ReduceKind::Sum => values.map(f64::from).sum::<f64>() as f32,
                    ReduceKind::Max => values.fold(f32::NEG_INFINITY, f32::max),
                };
                assert!((value - expected).abs() <= 1e-4 * expected.abs().max(1.0));
            }
        }
    }

    #[test]
    fn reductions_across_rows_match_brute_force() {
        // [5, 6, 7] row-major, reduced over the middle axis: rows accumulate whole.
        let input: Vec<f32> = (0..210).map(|i| (i as f32 * 0.37).sin()).collect();
        for kind in [ReduceKind::Sum, ReduceKind::Max] {
            let mut op = StridedReduce {
                kind,
                sizes: vec![5, 7, 6],
                strides: vec![42, 1, 7],
            };
            let actual = run(&mut op, input.clone());
            // The same reduction with the kept axes swapped (outputs [7, 5]).
            let mut swapped = StridedReduce {
                kind,
                sizes: vec![7, 5, 6],
                strides: vec![1, 42, 7],
            };
            let transposed = run(&mut swapped, input.clone());
            for i in 0..5 {
                for k in 0..7 {
                    assert_eq!(transposed[k * 5 + i], actual[i * 7 + k]);
                }
            }
            for i in 0..5 {
                for k in 0..7 {
                    let values = (0..6).map(|j| input[i * 42 + j * 7 + k]);
                    let expected = match kind {
                        ReduceKind::Sum => values.sum::<f32>(),
                        ReduceKind::Max => values.fold(f32::NEG_INFINITY, f32::max),
                    };
                    assert_eq!(actual[i * 7 + k], expected);
                }
            }
        }
    }
}
