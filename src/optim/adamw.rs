//! AdamW (Loshchilov & Hutter), exactly as `torch.optim.AdamW` computes it.
use serde::{Deserialize, Serialize};

use super::{
    flat::{broadcast, flat_len},
    step_scalars::StepScalars,
    update::{UpdateInputs, UpdateOutputs, UpdateRule},
};

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

impl UpdateRule for AdamW {
    fn betas(&self) -> (f64, f64) {
        (self.beta1, self.beta2)
    }

    fn update(&self, inputs: UpdateInputs, scalars: &StepScalars) -> UpdateOutputs {
        let len = flat_len(inputs.parameter);
        let lr = scalars.learning_rate;
        let mut parameter = inputs.parameter;
        if inputs.decays && self.weight_decay != 0.0 {
            let keep = -(lr * self.weight_decay as f32) + 1.0;
            parameter *= broadcast(keep, len);
        }
        let gradient = inputs.gradient;
        let exp_avg = inputs.exp_avg + (gradient - inputs.exp_avg) * (1.0 - self.beta1) as f32;
        let exp_avg_sq =
            inputs.exp_avg_sq * self.beta2 as f32 + gradient * gradient * (1.0 - self.beta2) as f32;
        let step_size = lr * scalars.bias_correction1.recip();
        let inverse_correction2_sqrt = scalars.bias_correction2.sqrt().recip();
        let denominator =
            exp_avg_sq.sqrt() * broadcast(inverse_correction2_sqrt, len) + self.epsilon as f32;
        let parameter = parameter - exp_avg * denominator.recip() * broadcast(step_size, len);
        UpdateOutputs {
            parameter,
            exp_avg,
            exp_avg_sq,
        }
    }
}
