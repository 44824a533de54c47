//! Attention's probabilities from its raw scores in one op: `dropout(softmax(scale * s + bias))`
//! row by row, instead of an elementwise pass for the scale and padding bias, a softmax, a dropout
//! mask and a multiply. The scores `s` are kept for the backward pass
//! ([`AttentionProbabilitiesGradient`]), which recomputes the softmax and redraws the mask from
//! the step's key: one row read forward and two backward, instead of keeping the probabilities
//! and a float mask and passing over them five times.
use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::{
    input_values, key_from_values,
    last_axis::{map_rows, rows_and_width},
    softmax_in_place, DropoutMask, RandomKey,
};

/// Where the rows of attention's scores come from and what is applied to them: `rows` rows of
/// `keys` scores, `rows_per_sequence` (heads times queries) of them per sequence, whose padding
/// bias row they share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionRows {
    pub rows: usize,
    pub rows_per_sequence: usize,
    pub keys: usize,
    pub scale: f32,
    /// The dropout of the probabilities, if any: its mask is the [`DropoutMask`] of this rate
    /// and stream over the `rows * keys` probabilities.
    pub dropout: Option<AttentionDropout>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionDropout {
    pub rate: f32,
    pub stream: u32,
}

impl AttentionRows {
    /// The scores, any view of `[rows * keys]` values.
    pub const SCORES: u8 = 0;
    /// The additive padding bias, `[rows / rows_per_sequence, keys]`.
    pub const BIAS: u8 = 1;

    pub fn len(&self) -> usize {
        self.rows * self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dropout mask over all the probabilities.
    pub fn mask(&self) -> Option<DropoutMask> {
        self.dropout.map(|dropout| DropoutMask {
            len: self.len(),
            rate: dropout.rate,
            stream: dropout.stream,
        })
    }

    /// The softmax of row `r` of `scale * scores + bias` into `out`.
    fn softmax_row(&self, r: usize, scores: &[f32], bias: &[f32], out: &mut [f32]) {
        let at = r * self.keys;
        let bias_at = (r / self.rows_per_sequence) * self.keys;
        let row = scores[at..at + self.keys]
            .iter()
            .zip(&bias[bias_at..bias_at + self.keys]);
        for (o, (&s, &b)) in out.iter_mut().zip(row) {
            *o = s * self.scale + b;
        }
        softmax_in_place(out);
    }

    /// The mask under the key input, or `None` without dropout.
    fn mask_values(
        &self,
        inputs: &[(InputTensor, ShapeTracker)],
        key_input: u8,
    ) -> Option<Vec<f32>> {
        let mask = self.mask()?;
        let (key, view) = &inputs[key_input as usize];
        let key = key_from_values(&input_values(key, view));
        Some(mask.values(key, crate::compile::cpu::thread_count()))
    }
}

/// `p = dropout(softmax(scale * s + bias))` over each row: inputs the scores, the bias and, with
/// dropout, the random key ([`AttentionProbabilities::KEY`]); output `[rows * keys]`, contiguous.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionProbabilities(pub AttentionRows);

/// The gradient of [`AttentionProbabilities`] with respect to the scores: inputs the scores, the
/// bias, the gradient `dp` of the probabilities and, with dropout, the key; output
/// `ds = scale * y * (g - sum_k g_k y_k)` per row, where `y` is the softmax and `g = dp * mask`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionProbabilitiesGradient(pub AttentionRows);

impl AttentionProbabilities {
    pub const KEY: u8 = 2;

    /// The input holding the random key, if the op draws a mask.
    pub fn key_input(&self) -> Option<u8> {
        self.0.dropout.map(|_| Self::KEY)
    }
}

impl AttentionProbabilitiesGradient {
    pub const PROBABILITIES_GRADIENT: u8 = 2;
    pub const KEY: u8 = 3;

    /// The input holding the random key, if the op draws a mask.
    pub fn key_input(&self) -> Option<u8> {
        self.0.dropout.map(|_| Self::KEY)
    }
}

impl Operator for AttentionProbabilities {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let rows = self.0;
        let scores = input_values(&inputs[0].0, &inputs[0].1);
        let bias = input_values(&inputs[1].0, &inputs[1].1);
        assert_eq!(scores.len(), rows.len());
        let mask = rows.mask_values(&inputs, Self::KEY);
        vec![Tensor::new(map_rows(rows.rows, rows.keys, |at, out| {
            rows.softmax_row(at / rows.keys, &scores, &bias, out);
            if let Some(mask) = &mask {
                for (p, m) in out.iter_mut().zip(&mask[at..]) {
                    *p *= m;
                }
            }
        }))]
    }
}

impl Operator for AttentionProbabilitiesGradient {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let rows = self.0;
        let scores = input_values(&inputs[0].0, &inputs[0].1);
        let bias = input_values(&inputs[1].0, &inputs[1].1);
        let (dp, view) = &inputs[Self::PROBABILITIES_GRADIENT as usize];
        let dp = input_values(dp, view);
        assert_eq!((scores.len(), dp.len()), (rows.len(), rows.len()));
        let mask = rows.mask_values(&inputs, Self::KEY);
        vec![Tensor::new(map_rows(rows.rows, rows.keys, |at, out| {
            // The softmax `y` in `out`, then `scale * y * (g - sum_k g_k y_k)` over it, as
            // `softmax_gradient_row` computes it.
            rows.softmax_row(at / rows.keys, &scores, &bias, out);
            let dp = &dp[at..at + rows.keys];
            let mask = mask.as_ref().map(|mask| &mask[at..at + rows.keys]);
            let g = |j: usize| match mask {
                Some(mask) => dp[j] * mask[j],
                None => dp[j],
            };
            let dot: f32 = out.iter().enumerate().map(|(j, y)| y * g(j)).sum();
            for (j, o) in out.iter_mut().enumerate() {
                *o = (*o * (g(j) - dot)) * rows.scale;
            }
        }))]
    }
}

/// `dropout(softmax(scale * scores + bias))` over the last axis of `[batch, heads, queries,
/// keys]` scores, the bias `[batch, keys]` broadcast over heads and queries; `dropout` is the
/// random key input with the rate and stream of the mask, or `None`.
pub fn attention_probabilities<B: Dimension, H: Dimension, Q: Dimension, K: Dimension>(
    scores: GraphTensor<(B, H, Q, K)>,
    bias: GraphTensor<(B, K)>,
    scale: f32,
    dropout: Option<(GraphTensor<RandomKey>, AttentionDropout)>,
) -> GraphTensor<(B, H, Q, K)> {
    let (rows, keys) = rows_and_width::<(B, H, Q, K)>();
    let (sequences, _) = rows_and_width::<(B, K)>();
    let op = AttentionProbabilities(AttentionRows {
        rows,
        rows_per_sequence: rows / sequences.max(1),
        keys,
        scale,
        dropout: dropout.map(|(_, dropout)| dropout),
    });
    let mut builder = scores
        .graph()
        .add_op(op)
        .input(scores.id, 0, scores.shape)
        .input(bias.id, 0, bias.shape);
    if let Some((key, _)) = dropout {
        builder = builder.input(key.id, 0, key.shape);
    }
    let id = builder.finish();
    GraphTensor::from_id(
        id,
        ShapeTracker::new(&<(B, H, Q, K)>::realized_shape()),
        scores.graph_ref,
    )
}

#[cfg(test)]
mod tests {
    use super::super::{dropout_mask, key_values, last_axis::central_differences};
    use super::*;

    const KEY: u64 = 0x5eed_0fd2_0b17;

    /// Scores with a spread of values, and a bias that pads out a few keys of each sequence.
    fn scores_and_bias(len: usize, sequences: usize, keys: usize) -> (Vec<f32>, Vec<f32>) {
        let scores = (0..len)
            .map(|i| ((i * 7919) % 101) as f32 / 7.0 - 7.0)
            .collect();
        let bias = (0..sequences * keys)
            .map(|i| {
                if i % keys >= keys - 1 - i / keys {
                    f32::MIN
                } else {
                    0.0
                }
            })
            .collect();
        (scores, bias)
    }

    fn fused_and_primitive_outputs(dropout: Option<AttentionDropout>) -> (Vec<f32>, Vec<f32>) {
        let mut cx = Graph::new();
        let (scores, bias) = scores_and_bias(2 * 3 * 5 * 33, 2, 33);
        let s = cx.tensor::<R4<2, 3, 5, 33>>().set(scores);
        let b = cx.tensor::<R2<2, 33>>().set(bias);
        let key = cx.tensor::<RandomKey>().set(key_values(KEY));
        let scale = 0.125;
        let fused = attention_probabilities(s, b, scale, dropout.map(|d| (key, d))).retrieve();
        let softmax = (s * scale + b.expand::<R4<2, 3, 5, 33>, Axes2<1, 2>>()).softmax::<3>();
        let reference = match dropout {
            Some(d) => softmax * dropout_mask::<R4<2, 3, 5, 33>>(key, d.rate, d.stream),
            None => softmax,
        }
        .retrieve();
        cx.execute();
        (fused.data(), reference.data())
    }

    #[test]
    fn the_op_equals_scale_bias_softmax_and_dropout_by_primitives() {
        for dropout in [
            None,
            Some(AttentionDropout {
                rate: 0.3,
                stream: 5,
            }),
        ] {
            let (fused, reference) = fused_and_primitive_outputs(dropout);
            let zeros = fused.iter().filter(|&&p| p == 0.0).count();
            // Padding zeroes one key of the first sequence and two of the second; dropout about
            // 30% of all values.
            let padded = 15 + 2 * 15;
            let least = if dropout.is_some() { 250 } else { padded };
            assert!(zeros >= least, "{zeros} zeros of {}", fused.len());
            for (a, b) in fused.iter().zip(&reference) {
                assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{a} vs {b}");
            }
        }
    }

    /// `L(s) = sum dp * mask * softmax(scale * s + bias)` in f64, with the mask given.
    fn directional_loss(
        rows: &AttentionRows,
        bias: &[f32],
        mask: &[f32],
        dp: &[f32],
    ) -> impl Fn(&[f64]) -> f64 {
        let (rows, bias, mask, dp) = (*rows, bias.to_vec(), mask.to_vec(), dp.to_vec());
        move |s: &[f64]| {
            let mut loss = 0.0;
            for r in 0..rows.rows {
                let at = r * rows.keys;
                let bias_at = (r / rows.rows_per_sequence) * rows.keys;
                let x: Vec<f64> = (0..rows.keys)
                    .map(|j| s[at + j] * rows.scale as f64 + bias[bias_at + j] as f64)
                    .collect();
                let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = x.iter().map(|v| (v - max).exp()).sum();
                for j in 0..rows.keys {
                    let p = (x[j] - max).exp() / sum;
                    loss += dp[at + j] as f64 * mask[at + j] as f64 * p;
                }
            }
            loss
        }
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let rows = AttentionRows {
            rows: 2 * 2 * 3,
            rows_per_sequence: 2 * 3,
            keys: 7,
            scale: 0.7,
            dropout: Some(AttentionDropout {
                rate: 0.25,
                stream: 2,
            }),
        };
        let (scores, bias) = scores_and_bias(rows.len(), 2, rows.keys);
        let scores: Vec<f32> = scores.iter().map(|s| s / 3.0).collect();
        let dp: Vec<f32> = (0..rows.len()).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut cx = Graph::new();
        let s = cx.tensor::<R1<84>>().set(scores.clone());
        let b = cx.tensor::<R1<14>>().set(bias.clone());
        let g = cx.tensor::<R1<84>>().set(dp.clone());
        let key = cx.tensor::<RandomKey>().set(key_values(KEY));
        let ds = cx
            .add_op(AttentionProbabilitiesGradient(rows))
            .input(s.id, 0, s.shape)
            .input(b.id, 0, b.shape)
            .input(g.id, 0, g.shape)
            .input(key.id, 0, key.shape)
            .finish();
        let ds = GraphTensor::<R1<84>>::from_id(ds, s.shape, s.graph_ref).retrieve();
        cx.execute();
        let mask = rows.mask().unwrap().values(KEY, 1);
        assert!(mask.contains(&0.0) && mask.contains(&(1.0 / 0.75)));
        let loss = directional_loss(&rows, &bias, &mask, &dp);
        let s64: Vec<f64> = scores.iter().map(|&v| v as f64).collect();
        let numeric = central_differences(loss, &s64, 1e-4);
        for (j, (a, n)) in ds.data().iter().zip(&numeric).enumerate() {
            assert!((*a as f64 - n).abs() < 1e-5, "{j}: {a} vs {n}");
        }
    }
}
