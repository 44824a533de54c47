//! LayerNorm's normalization over the last axis as one op, `(x - mean) / sqrt(var + epsilon)` per
//! row, instead of luminal's mean, subtract, square, mean and reciprocal square root: one pass over
//! the rows forward and one backward ([`NormalizeGradient`]), which recomputes each row's mean and
//! variance from `x` rather than keeping them. The weight and bias stay elementwise primitives,
//! which the fusion pass merges into the kernels around it.
use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::{
    input_values,
    last_axis::{last_axis_op, map_rows, rows_and_width},
};

/// `y[r, j] = (x[r, j] - mean_r) / sqrt(var_r + epsilon)`, with the biased variance, for `rows`
/// rows of `width` values. Input `x` (any view), output `[rows * width]`, contiguous.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    pub rows: usize,
    pub width: usize,
    pub epsilon: f32,
}

/// The gradient of [`Normalize`]: inputs `x` and the output's gradient `dy`, output
/// `dx = (dy - mean(dy) - y * mean(dy * y)) / sqrt(var + epsilon)` per row.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizeGradient {
    pub rows: usize,
    pub width: usize,
    pub epsilon: f32,
}

/// A row's mean and `1 / sqrt(var + epsilon)`.
pub fn row_statistics(x: &[f32], epsilon: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let variance = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (variance + epsilon).sqrt())
}

/// One row's normalization into `out`.
pub fn normalize_row(x: &[f32], epsilon: f32, out: &mut [f32]) {
    let (mean, inverse_std) = row_statistics(x, epsilon);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - mean) * inverse_std;
    }
}

/// One row's input gradient into `out`.
pub fn normalize_gradient_row(x: &[f32], dy: &[f32], epsilon: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let (mean, inverse_std) = row_statistics(x, epsilon);
    let (mut sum_dy, mut sum_dy_y) = (0.0f32, 0.0f32);
    for (&v, &d) in x.iter().zip(dy) {
        sum_dy += d;
        sum_dy_y += d * (v - mean) * inverse_std;
    }
    let (mean_dy, mean_dy_y) = (sum_dy / n, sum_dy_y / n);
    for ((o, &v), &d) in out.iter_mut().zip(x).zip(dy) {
        let y = (v - mean) * inverse_std;
        *o = (d - mean_dy - y * mean_dy_y) * inverse_std;
    }
}

impl Operator for Normalize {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let x = input_values(&inputs[0].0, &inputs[0].1);
        assert_eq!(x.len(), self.rows * self.width);
        let (width, epsilon) = (self.width, self.epsilon);
        vec![Tensor::new(map_rows(self.rows, width, |at, out| {
            normalize_row(&x[at..at + width], epsilon, out)
        }))]
    }
}

impl Operator for NormalizeGradient {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let x = input_values(&inputs[0].0, &inputs[0].1);
        let dy = input_values(&inputs[1].0, &inputs[1].1);
        let len = self.rows * self.width;
        assert_eq!((x.len(), dy.len()), (len, len));
        let (width, epsilon) = (self.width, self.epsilon);
        vec![Tensor::new(map_rows(self.rows, width, |at, out| {
            normalize_gradient_row(&x[at..at + width], &dy[at..at + width], epsilon, out)
        }))]
    }
}

/// `x` normalized over its last axis, by the [`Normalize`] op.
pub fn normalize_last_axis<S: Shape>(x: GraphTensor<S>, epsilon: f32) -> GraphTensor<S> {
    let (rows, width) = rows_and_width::<S>();
    last_axis_op(
        x,
        Normalize {
            rows,
            width,
            epsilon,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::last_axis::central_differences;
    use super::*;

    fn values(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919) % 101) as f32 / 7.0 - 6.0 + (i / 50) as f32)
            .collect()
    }

    #[test]
    fn the_op_equals_luminals_layer_norm() {
        let mut cx = Graph::new();
        let x = cx.tensor::<R3<5, 6, 48>>().set(values(5 * 6 * 48));
        let fused = normalize_last_axis(x, 1e-12).retrieve();
        let reference = x.layer_norm::<2, _>(1e-12).retrieve();
        cx.execute();
        for (a, b) in fused.data().iter().zip(reference.data()) {
            assert!((a - b).abs() <= 2e-5 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let width = 11;
        let epsilon = 1e-5;
        let x: Vec<f64> = values(width).iter().map(|&v| v as f64 / 2.0).collect();
        let dy: Vec<f64> = (0..width).map(|j| (j as f64 * 0.61).cos()).collect();
        // The directional derivative: L(x) = sum_j dy_j normalize(x)_j.
        let loss = |x: &[f64]| {
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let variance = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            x.iter()
                .zip(&dy)
                .map(|(v, d)| d * (v - mean) / (variance + epsilon as f64).sqrt())
                .sum::<f64>()
        };
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
        let mut dx = vec![0.0; width];
        normalize_gradient_row(&x32, &dy32, epsilon, &mut dx);
        let numeric = central_differences(loss, &x, 1e-5);
        for j in 0..width {
            assert!(
                (dx[j] as f64 - numeric[j]).abs() < 1e-4,
                "{j}: {} vs {}",
                dx[j],
                numeric[j]
            );
        }
    }

    #[test]
    fn the_gradient_op_runs_the_row_rule() {
        let mut cx = Graph::new();
        let (rows, width) = (90, 200);
        let (x_values, dy_values) = (values(rows * width), values(rows * width + 7)[7..].to_vec());
        let x = cx.tensor::<R2<90, 200>>().set(x_values.clone());
        let dy = cx.tensor::<R2<90, 200>>().set(dy_values.clone());
        let y = normalize_last_axis(x, 1e-12).retrieve();
        let dx = GraphTensor::<R2<90, 200>>::from_id(
            cx.add_op(NormalizeGradient {
                rows,
                width,
                epsilon: 1e-12,
            })
            .input(x.id, 0, x.shape)
            .input(dy.id, 0, dy.shape)
            .finish(),
            x.shape,
            x.graph_ref,
        )
        .retrieve();
        cx.execute();
        let (y, dx) = (y.data(), dx.data());
        for r in 0..rows {
            let at = r * width..(r + 1) * width;
            let mut expected_y = vec![0.0; width];
            normalize_row(&x_values[at.clone()], 1e-12, &mut expected_y);
            let mut expected_dx = vec![0.0; width];
            normalize_gradient_row(
                &x_values[at.clone()],
                &dy_values[at.clone()],
                1e-12,
                &mut expected_dx,
            );
            assert_eq!(&y[at.clone()], &expected_y[..]);
            assert_eq!(&dx[at], &expected_dx[..]);
        }
    }
}
