//! LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning: Training BERT in 76
//! minutes"), as NVIDIA's and DeepSpeed's implementations compute it, without their built-in
//! clipping (use the optimizer's global clipping instead).
use luminal::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    flat::{broadcast, flat_len, is_positive, l2_norm},
    step_scalars::StepScalars,
    update::{NodeOutput, UpdateInputs, UpdateOutputs, UpdateRule},
};

/// Layer-wise adaptive moments. At step `t` (1-based), per parameter tensor `w`:
///
/// ```text
/// m = beta1 * m + (1 - beta1) * g
/// v = beta2 * v + (1 - beta2) * g * g
/// update = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon) + weight_decay * w
/// ratio = ||w|| / ||update||, or 1 where either norm is 0
/// w = w - lr * ratio * update
/// ```
///
/// Weight decay is added only for parameters that decay; the trust ratio applies to every tensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lamb {
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
}

impl Default for Lamb {
    /// The LAMB paper's BERT settings: betas (0.9, 0.999), epsilon 1e-6, weight decay 0.01.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-6,
            weight_decay: 0.01,
        }
    }
}

/// `||w|| / ||update||`, or 1 where either is 0, without a division by zero on any path.
pub fn trust_ratio(weight_norm: GraphTensor<R0>, update_norm: GraphTensor<R0>) -> GraphTensor<R0> {
    let update_nonzero = is_positive(update_norm);
    let both_nonzero = is_positive(weight_norm) * update_nonzero;
    // Where the update norm is 0 divide by 1 instead (that branch is then discarded).
    let safe_update_norm = update_norm + (-update_nonzero + 1.0);
    both_nonzero * weight_norm * safe_update_norm.recip() + (-both_nonzero + 1.0)
}

impl UpdateRule for Lamb {
    fn betas(&self) -> (f64, f64) {
        (self.beta1, self.beta2)
    }

    /// Per parameter, a subgraph of primitives: the trust ratio needs whole-tensor norms of the
    /// update before any element of the parameter can change.
    fn update_all(
        &self,
        inputs: &[UpdateInputs],
        gradient_scale: Option<GraphTensor<R0>>,
        scalars: &StepScalars,
    ) -> Vec<UpdateOutputs> {
        inputs
            .iter()
            .map(|&input| self.update(input, gradient_scale, scalars))
            .collect()
    }
}

impl Lamb {
    fn update(
        &self,
        inputs: UpdateInputs,
        gradient_scale: Option<GraphTensor<R0>>,
        scalars: &StepScalars,
    ) -> UpdateOutputs {
        let len = flat_len(inputs.parameter);
        let parameter = inputs.parameter;
        let gradient = match gradient_scale {
            Some(scale) => inputs.gradient * broadcast(scale, len),
            None => inputs.gradient,
        };
        let exp_avg = inputs.exp_avg * self.beta1 as f32 + gradient * (1.0 - self.beta1) as f32;
        let exp_avg_sq =
            inputs.exp_avg_sq * self.beta2 as f32 + gradient * gradient * (1.0 - self.beta2) as f32;
        let m_hat = exp_avg * broadcast(scalars.bias_correction1.recip(), len);
        let v_hat = exp_avg_sq * broadcast(scalars.bias_correction2.recip(), len);
        let mut update = m_hat * (v_hat.sqrt() + self.epsilon as f32).recip();
        if inputs.decays && self.weight_decay != 0.0 {
            update += parameter * self.weight_decay as f32;
        }
        let ratio = trust_ratio(l2_norm(parameter), l2_norm(update));
        let parameter = parameter - update * broadcast(scalars.learning_rate * ratio, len);
        UpdateOutputs {
            parameter: NodeOutput::of(parameter),
            exp_avg: NodeOutput::of(exp_avg),
            exp_avg_sq: NodeOutput::of(exp_avg_sq),
        }
    }
}
