use std::borrow::Cow;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::{input_values, last_axis::map_rows};
use crate::compile::cpu::{fill_in_chunks, thread_count};

/// Abramowitz-Stegun 7.1.26: erf(|x|) ~ 1 - t (A0 + t (A1 + ...)) exp(-x^2), t = 1 / (1 + P|x|),
/// absolute error below 1.5e-7. The CUDA kernels are generated from these constants.
pub const ERF_P: f32 = 0.327_591_1;
pub const ERF_A: [f32; 5] = [
    0.254_829_6,
    -0.284_496_74,
    1.421_413_8,
    -1.453_152_1,
    1.061_405_4,
];

/// erf by [`ERF_P`] and [`ERF_A`].
pub fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + ERF_P * x.abs());
    let polynomial =
        ((((ERF_A[4] * t + ERF_A[3]) * t + ERF_A[2]) * t + ERF_A[1]) * t + ERF_A[0]) * t;
    let magnitude = 1.0 - polynomial * (-x * x).exp();
    magnitude.copysign(x)
}

/// The exact GELU of Hugging Face BERT: `x/2 * (1 + erf(x/sqrt(2)))`.
pub fn gelu_value(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// d gelu / dx = Phi(x) + x phi(x), the normal CDF and density.
pub fn gelu_derivative(x: f32) -> f32 {
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    cdf + x * FRAC_1_SQRT_2PI * (-0.5 * x * x).exp()
}

/// GELU as one op (instead of the some twenty primitives of its erf): one pass forward, one
/// backward ([`GeluGradient`]), and only its input kept for the backward pass. Input `x` (any
/// view) and, where `bias_width` is given, a bias of that many values added along the last axis
/// first (`gelu(x + bias)`: the bias of the dense layer before it, added in the same pass rather
/// than in a pass of its own whose result would be kept). Output `[len]`, contiguous.
#[derive(Debug, Clone, PartialEq)]
pub struct Gelu {
    pub len: usize,
    pub bias_width: Option<usize>,
}

/// The gradient of [`Gelu`]: inputs `x`, the output's gradient `dy` and the bias if any, output
/// `dy * gelu'(x + bias)`, `[len]`; it is also the bias's gradient before the sum over rows.
#[derive(Debug, Clone, PartialEq)]
pub struct GeluGradient {
    pub len: usize,
    pub bias_width: Option<usize>,
}

impl Gelu {
    pub const BIAS: u8 = 1;
}

impl GeluGradient {
    pub const BIAS: u8 = 2;
}

/// The bias of a [`Gelu`] or [`GeluGradient`] (`None` without one) and its width.
fn bias_values<'a>(
    inputs: &'a [(InputTensor, ShapeTracker)],
    bias_input: u8,
    width: Option<usize>,
) -> Option<(Cow<'a, [f32]>, usize)> {
    width.map(|width| {
        let (bias, view) = &inputs[bias_input as usize];
        let bias = input_values(bias, view);
        assert_eq!(bias.len(), width, "the bias has one value per column");
        (bias, width)
    })
}

/// `f(i, x[i] + bias[i % width])` for every element, on the op's threads: row by row where there
/// is a bias (no division per element), else element by element.
fn map_biased(
    x: &[f32],
    bias: Option<(Cow<'_, [f32]>, usize)>,
    f: impl Fn(usize, f32) -> f32 + Sync,
) -> Vec<f32> {
    match bias {
        None => map_in_parallel(x.len(), |i| f(i, x[i])),
        Some((bias, width)) => map_rows(x.len() / width, width, |at, out| {
            for (j, (o, b)) in out.iter_mut().zip(bias.iter()).enumerate() {
                *o = f(at + j, x[at + j] + b);
            }
        }),
    }
}

/// Elements per task of the CPU kernels.
const CHUNK: usize = 1 << 14;

fn map_in_parallel(len: usize, f: impl Fn(usize) -> f32 + Sync) -> Vec<f32> {
    fill_in_chunks(len, CHUNK, thread_count(), |start, values| {
        for (offset, value) in values.iter_mut().enumerate() {
            *value = f(start + offset);
        }
    })
}

impl Operator for Gelu {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let x = input_values(&inputs[0].0, &inputs[0].1);
        assert_eq!(x.len(), self.len);
        let bias = bias_values(&inputs, Self::BIAS, self.bias_width);
        vec![Tensor::new(map_biased(&x, bias, |_, x| gelu_value(x)))]
    }
}

impl Operator for GeluGradient {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let x = input_values(&inputs[0].0, &inputs[0].1);
        let dy = input_values(&inputs[1].0, &inputs[1].1);
        assert_eq!((x.len(), dy.len()), (self.len, self.len));
        let bias = bias_values(&inputs, Self::BIAS, self.bias_width);
        vec![Tensor::new(map_biased(&x, bias, |i, x| {
            dy[i] * gelu_derivative(x)
        }))]
    }
}

/// GELU of `x`, by the [`Gelu`] op.
pub fn gelu<S: Shape>(x: GraphTensor<S>) -> GraphTensor<S> {
    let op = Gelu {
        len: element_count(&x.shape),
        bias_width: None,
    };
    let id = x.graph().add_op(op).input(x.id, 0, x.shape).finish();
    GraphTensor::from_id(id, ShapeTracker::new(&S::realized_shape()), x.graph_ref)
}

/// `gelu(x + bias)`, the bias along `x`'s last axis, by one [`Gelu`] op.
pub fn bias_gelu<B: Dimension, S: Dimension, W: Dimension>(
    x: GraphTensor<(B, S, W)>,
    bias: GraphTensor<(W,)>,
) -> GraphTensor<(B, S, W)> {
    let op = Gelu {
        len: element_count(&x.shape),
        bias_width: Some(element_count(&bias.shape)),
    };
    let id = x
        .graph()
        .add_op(op)
        .input(x.id, 0, x.shape)
        .input(bias.id, 0, bias.shape)
        .finish();
    GraphTensor::from_id(
        id,
        ShapeTracker::new(&<(B, S, W)>::realized_shape()),
        x.graph_ref,
    )
}

fn element_count(shape: &ShapeTracker) -> usize {
    shape
        .n_elements()
        .to_usize()
        .expect("dropbert graphs have static shapes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Maclaurin series, in f64: the reference for small and moderate |x|.
    fn erf_series(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_within_the_approximations_bound() {
        for i in -300..=300 {
            let x = i as f64 / 100.0;
            let error = (erf(x as f32) as f64 - erf_series(x)).abs();
            assert!(error < 3e-7, "erf({x}) off by {error}");
        }
        assert!(erf(0.0).abs() < 1e-7);
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-10.0), -1.0);
    }

    #[test]
    fn the_derivative_matches_finite_differences() {
        // Beyond |x| = 4 the series loses too many digits to cancellation for a difference.
        for i in -40..=40 {
            let x = i as f64 / 10.0;
            let gelu64 = |x: f64| 0.5 * x * (1.0 + erf_series(x / std::f64::consts::SQRT_2));
            let h = 1e-3;
            let numeric = (gelu64(x + h) - gelu64(x - h)) / (2.0 * h);
            let error = (gelu_derivative(x as f32) as f64 - numeric).abs();
            assert!(
                error < 2e-6,
                "gelu'({x}): {} vs {numeric}",
                gelu_derivative(x as f32)
            );
        }
    }

    #[test]
    fn the_ops_compute_gelu_and_its_gradient() {
        let mut cx = Graph::new();
        let values: Vec<f32> = (0..40_000)
            .map(|i| (i as f32 - 20_000.0) / 3_000.0)
            .collect();
        let upstream: Vec<f32> = (0..40_000)
            .map(|i| ((i * 7919) % 13) as f32 - 6.0)
            .collect();
        let x = cx.tensor::<R1<40_000>>().set(values.clone());
        let dy = cx.tensor::<R1<40_000>>().set(upstream.clone());
        let y = gelu(x).retrieve();
        let dx = GraphTensor::<R1<40_000>>::from_id(
            cx.add_op(GeluGradient {
                len: 40_000,
                bias_width: None,
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
        for i in 0..values.len() {
            assert_eq!(y[i], gelu_value(values[i]));
            assert_eq!(dx[i], upstream[i] * gelu_derivative(values[i]));
        }
    }

    #[test]
    fn the_biased_ops_add_the_bias_along_the_last_axis_first() {
        let mut cx = Graph::new();
        let values: Vec<f32> = (0..2 * 3 * 7).map(|i| (i as f32 - 20.0) / 6.0).collect();
        let bias_values: Vec<f32> = (0..7).map(|j| j as f32 * 0.3 - 1.0).collect();
        let upstream: Vec<f32> = (0..42).map(|i| ((i * 31) % 11) as f32 - 5.0).collect();
        let x = cx.tensor::<R3<2, 3, 7>>().set(values.clone());
        let bias = cx.tensor::<R1<7>>().set(bias_values.clone());
        let dy = cx.tensor::<R3<2, 3, 7>>().set(upstream.clone());
        let fused = bias_gelu(x, bias).retrieve();
        let separate = gelu(x + bias.expand::<R3<2, 3, 7>, _>()).retrieve();
        let dx = GraphTensor::<R3<2, 3, 7>>::from_id(
            cx.add_op(GeluGradient {
                len: 42,
                bias_width: Some(7),
            })
            .input(x.id, 0, x.shape)
            .input(dy.id, 0, dy.shape)
            .input(bias.id, 0, bias.shape)
            .finish(),
            x.shape,
            x.graph_ref,
        )
        .retrieve();
        cx.execute();
        assert_eq!(fused.data(), separate.data());
        for (i, dx) in dx.data().into_iter().enumerate() {
            let biased = values[i] + bias_values[i % 7];
            assert_eq!(dx, upstream[i] * gelu_derivative(biased));
        }
    }
}
