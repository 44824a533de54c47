//! AdamW (Loshchilov & Hutter), exactly as `torch.optim.AdamW` computes it, fused over groups of
//! parameters ([`AdamWStep`]).
use luminal::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    flat::{flat_len, FlatTensor},
    step_scalars::StepScalars,
    update::{NodeOutput, UpdateInputs, UpdateOutputs, UpdateRule},
};
use crate::ops::{AdamWConstants, AdamWStep, MAX_GROUP};

/// Adam with decoupled weight decay. Hyper-parameters are f64 like PyTorch's Python floats; the
/// graph computes in f32, as PyTorch does for float32 parameters.
///
/// At step `t` (1-based) with learning rate `lr`, for parameter `p` and gradient `g`
/// (`torch.optim.adam._single_tensor_adam` with `decoupled_weight_decay=True`):
///
/// ```text
/// p = p * (1 - lr * weight_decay)          (only for parameters that decay)
/// m = m + (g - m) * (1 - beta1)            (exp_avg.lerp_(g, 1 - beta1))
/// v = v * beta2 + g * g * (1 - beta2)
/// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + epsilon)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
}

impl Default for AdamW {
    /// BERT's pretraining settings: betas (0.9, 0.999), epsilon 1e-6, weight decay 0.01.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-6,
            weight_decay: 0.01,
        }
    }
}

impl AdamW {
    fn constants(&self) -> AdamWConstants {
        AdamWConstants {
            one_minus_beta1: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            one_minus_beta2: (1.0 - self.beta2) as f32,
            epsilon: self.epsilon as f32,
            weight_decay: self.weight_decay as f32,
        }
    }
}

impl UpdateRule for AdamW {
    fn betas(&self) -> (f64, f64) {
        (self.beta1, self.beta2)
    }

    /// One [`AdamWStep`] op per [`MAX_GROUP`] parameters.
    fn update_all(
        &self,
        inputs: &[UpdateInputs],
        gradient_scale: Option<GraphTensor<R0>>,
        scalars: &StepScalars,
    ) -> Vec<UpdateOutputs> {
        let Some(first) = inputs.first() else {
            return Vec::new();
        };
        let graph = first.parameter.graph();
        let scale = gradient_scale.unwrap_or_else(|| graph.constant(1.0));
        let mut outputs = Vec::with_capacity(inputs.len());
        for group in inputs.chunks(MAX_GROUP) {
            let op = AdamWStep::new(
                self.constants(),
                group
                    .iter()
                    .map(|input| flat_len(input.parameter))
                    .collect(),
                group
                    .iter()
                    .map(|input| input.decays && self.weight_decay != 0.0)
                    .collect(),
            );
            let mut node = graph.add_op(op);
            for scalar in [
                scalars.learning_rate,
                scalars.bias_correction1,
                scalars.bias_correction2,
                scale,
            ] {
                node = node.input(scalar.id, 0, scalar.shape);
            }
            let roles: [fn(&UpdateInputs) -> FlatTensor; 4] = [
                |input| input.parameter,
                |input| input.gradient,
                |input| input.exp_avg,
                |input| input.exp_avg_sq,
            ];
            for role in roles {
                for tensor in group.iter().map(role) {
                    node = node.input(tensor.id, 0, tensor.shape);
                }
            }
            let node = node.finish();
            let output = |index: usize| NodeOutput {
                node,
                index: u8::try_from(index).expect("a group's outputs fit luminal's u8"),
            };
            let n = group.len();
            outputs.extend((0..n).map(|t| UpdateOutputs {
                parameter: output(t),
                exp_avg: output(n + t),
                exp_avg_sq: output(2 * n + t),
            }));
        }
        outputs
    }
}
