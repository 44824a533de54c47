//! Softmax over the last axis as one op (attention's probabilities), instead of luminal's five
//! primitives (max, subtract, exp, sum, divide): one pass over the scores forward, one over the
//! probabilities and their gradient backward ([`SoftmaxGradient`]), and only the probabilities
//! kept for the backward pass.
use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::{
    input_values,
    last_axis::{last_axis_op, map_rows, rows_and_width},
};

/// `y[r, j] = exp(x[r, j] - max_k x[r, k]) / sum_k exp(x[r, k] - max_k x[r, k])` for `rows` rows
/// of `row` values. Input `x` (any view), output `[rows * row]`, contiguous.
#[derive(Debug, Clone, PartialEq)]
pub struct Softmax {
    pub rows: usize,
    pub row: usize,
}

/// The gradient of [`Softmax`]: inputs its output `y` and the output's gradient `dy`, output
/// `dx[r, j] = y[r, j] * (dy[r, j] - sum_k dy[r, k] y[r, k])`.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftmaxGradient {
    pub rows: usize,
    pub row: usize,
}

/// One row's softmax into `out`.
pub fn softmax_row(x: &[f32], out: &mut [f32]) {
    out.copy_from_slice(x);
    softmax_in_place(out);
}

/// One row's softmax, over the row itself.
pub fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inverse = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inverse;
    }
}

/// One row's softmax gradient into `out`.
pub fn softmax_gradient_row(y: &[f32], dy: &[f32], out: &mut [f32]) {
    let dot: f32 = y.iter().zip(dy).map(|(y, dy)| y * dy).sum();
    for ((o, &y), &dy) in out.iter_mut().zip(y).zip(dy) {
        *o = y * (dy - dot);
    }
}

impl Operator for Softmax {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let x = input_values(&inputs[0].0, &inputs[0].1);
        assert_eq!(x.len(), self.rows * self.row);
        let row = self.row;
        vec![Tensor::new(map_rows(self.rows, row, |at, out| {
            softmax_row(&x[at..at + row], out)
        }))]
    }
}

impl Operator for SoftmaxGradient {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let y = input_values(&inputs[0].0, &inputs[0].1);
        let dy = input_values(&inputs[1].0, &inputs[1].1);
        let len = self.rows * self.row;
        assert_eq!((y.len(), dy.len()), (len, len));
        let row = self.row;
        vec![Tensor::new(map_rows(self.rows, row, |at, out| {
            softmax_gradient_row(&y[at..at + row], &dy[at..at + row], out)
        }))]
    }
}

/// Softmax of `x` over its last axis, by the [`Softmax`] op.
pub fn softmax_last_axis<S: Shape>(x: GraphTensor<S>) -> GraphTensor<S> {
    let (rows, row) = rows_and_width::<S>();
    last_axis_op(x, Softmax { rows, row })
}

#[cfg(test)]
mod tests {
    use super::super::last_axis::central_differences;
    use super::*;

    fn scores(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919) % 101) as f32 / 9.0 - 5.0 + if i % 17 == 0 { -1e4 } else { 0.0 })
            .collect()
    }

    #[test]
    fn the_op_equals_luminals_softmax() {
        let mut cx = Graph::new();
        let values = scores(6 * 4 * 33);
        let x = cx.tensor::<R3<6, 4, 33>>().set(values);
        let fused = softmax_last_axis(x).retrieve();
        let reference = x.softmax::<2>().retrieve();
        cx.execute();
        for (a, b) in fused.data().iter().zip(reference.data()) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{a} vs {b}");
        }
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let row = 9;
        let x: Vec<f64> = scores(row).iter().map(|&v| v as f64 / 3.0).collect();
        let dy: Vec<f64> = (0..row).map(|j| (j as f64 * 0.37).sin()).collect();
        // The directional derivative: L(x) = sum_j dy_j softmax(x)_j.
        let loss = |x: &[f64]| {
            let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = x.iter().map(|v| (v - max).exp()).sum();
            x.iter()
                .zip(&dy)
                .map(|(v, d)| d * (v - max).exp() / sum)
                .sum::<f64>()
        };
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut y = vec![0.0; row];
        softmax_row(&x32, &mut y);
        let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
        let mut dx = vec![0.0; row];
        softmax_gradient_row(&y, &dy32, &mut dx);
        let numeric = central_differences(loss, &x, 1e-5);
        for j in 0..row {
            assert!(
                (dx[j] as f64 - numeric[j]).abs() < 1e-6,
                "{j}: {} vs {}",
                dx[j],
                numeric[j]
            );
        }
    }

    #[test]
    fn the_gradient_op_runs_the_row_rule() {
        let mut cx = Graph::new();
        let (rows, row) = (70, 300);
        let values = scores(rows * row);
        let upstream: Vec<f32> = (0..rows * row)
            .map(|i| ((i % 13) as f32 - 6.0) / 6.0)
            .collect();
        let x = cx.tensor::<R2<70, 300>>().set(values.clone());
        let dy = cx.tensor::<R2<70, 300>>().set(upstream.clone());
        let y = softmax_last_axis(x).retrieve();
        let dx = GraphTensor::<R2<70, 300>>::from_id(
            cx.add_op(SoftmaxGradient { rows, row })
                .input(y.id, 0, y.shape)
                .input(dy.id, 0, dy.shape)
                .finish(),
            x.shape,
            x.graph_ref,
        )
        .retrieve();
        cx.execute();
        let (y, dx) = (y.data(), dx.data());
        for r in 0..rows {
            let at = r * row..(r + 1) * row;
            let mut expected_y = vec![0.0; row];
            softmax_row(&values[at.clone()], &mut expected_y);
            let mut expected_dx = vec![0.0; row];
            softmax_gradient_row(&expected_y, &upstream[at.clone()], &mut expected_dx);
            assert_eq!(&y[at.clone()], &expected_y[..]);
            assert_eq!(&dx[at], &expected_dx[..]);
        }
    }
}
