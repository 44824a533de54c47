//! The sum of the squares of every element of a group of tensors as one op: the global gradient
//! norm reads each gradient once, instead of a reduction and an addition per tensor.
use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::input_values;
use crate::compile::cpu::{fill_in_chunks, thread_count};

/// luminal addresses an op's inputs with a `u8`.
pub const MAX_SUMMED: usize = 255;

/// `sum over tensors t, elements i of x_t[i]^2`: inputs up to [`MAX_SUMMED`] tensors of the
/// given lengths (any views), output one value.
#[derive(Debug, Clone, PartialEq)]
pub struct SumOfSquares {
    pub lengths: Vec<usize>,
}

impl SumOfSquares {
    pub fn new(lengths: Vec<usize>) -> Self {
        assert!(
            !lengths.is_empty() && lengths.len() <= MAX_SUMMED,
            "a sum of squares takes 1 to {MAX_SUMMED} tensors, not {}",
            lengths.len()
        );
        Self { lengths }
    }
}

/// Elements per partial sum.
const CHUNK: usize = 1 << 14;

impl Operator for SumOfSquares {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        assert_eq!(inputs.len(), self.lengths.len(), "one input per tensor");
        let mut total = 0f32;
        for ((input, view), &len) in inputs.iter().zip(&self.lengths) {
            let values = input_values(input, view);
            assert_eq!(values.len(), len, "a summed tensor's length");
            // Partial sums of fixed chunks, added in order: the same result on any thread count.
            let partials = fill_in_chunks(len.div_ceil(CHUNK), 1, thread_count(), |task, sum| {
                let chunk = &values[task * CHUNK..((task + 1) * CHUNK).min(len)];
                sum[0] = chunk.iter().map(|v| v * v).sum();
            });
            total += partials.iter().sum::<f32>();
        }
        vec![Tensor::new(vec![total])]
    }
}

/// The sum of squares of `tensors` (each with its length), added to their graph.
pub fn sum_of_squares(graph: &mut Graph, tensors: &[(NodeIndex, ShapeTracker)]) -> NodeIndex {
    let lengths = tensors
        .iter()
        .map(|(_, view)| {
            view.n_elements()
                .to_usize()
                .expect("dropbert graphs have static shapes")
        })
        .collect();
    let mut op = graph.add_op(SumOfSquares::new(lengths));
    for &(id, view) in tensors {
        op = op.input(id, 0, view);
    }
    op.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_square_of_every_tensor_and_view() {
        let mut cx = Graph::new();
        let a = cx
            .tensor::<R2<3, 2>>()
            .set(vec![1.0, -2.0, 3.0, 0.5, 0.0, 4.0]);
        let b = cx.tensor::<R1<40000>>().set(
            (0..40000)
                .map(|i| ((i % 7) as f32 - 3.0) / 8.0)
                .collect::<Vec<_>>(),
        );
        let transposed = a.permute::<R2<2, 3>, Axes2<1, 0>>();
        let id = sum_of_squares(
            &mut cx,
            &[(transposed.id, transposed.shape), (b.id, b.shape)],
        );
        let total = GraphTensor::<R0>::from_id(id, ShapeTracker::new(&[]), &mut cx).retrieve();
        cx.execute();
        let want_a = 1.0 + 4.0 + 9.0 + 0.25 + 16.0;
        let want_b: f64 = (0..40000)
            .map(|i| (((i % 7) as f64 - 3.0) / 8.0).powi(2))
            .sum();
        let got = total.data()[0] as f64;
        assert!(
            (got - (want_a + want_b)).abs() <= 1e-5 * (want_a + want_b),
            "{got} vs {}",
            want_a + want_b
        );
    }
}
