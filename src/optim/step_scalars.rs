//! The few numbers that change from one update to the next, fed to the graph as tiny inputs.
use luminal::prelude::*;

/// Scalar graph inputs the host sets before every step: the scheduled learning rate and Adam's bias
/// corrections `1 - beta1^t`, `1 - beta2^t` for the 1-based update count `t`. Everything else an
/// update needs is either a constant of the graph or resident state.
#[derive(Clone, Copy)]
pub struct StepScalars {
    pub learning_rate: GraphTensor<R0>,
    pub bias_correction1: GraphTensor<R0>,
    pub bias_correction2: GraphTensor<R0>,
}

/// Host-side values of [`StepScalars`] for one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepScalarValues {
    pub learning_rate: f32,
    pub bias_correction1: f32,
    pub bias_correction2: f32,
}

impl StepScalarValues {
    /// The values for update `step` (0 for the first, which is Adam's `t = 1`) at `learning_rate`.
    /// The bias corrections are computed in f64, as PyTorch computes them in Python floats.
    /// `t` past 2^53 loses precision, far beyond any training run.
    pub fn new(learning_rate: f32, beta1: f64, beta2: f64, step: u64) -> Self {
        let t = (step + 1) as f64;
        Self {
            learning_rate,
            bias_correction1: (1.0 - beta1.powf(t)) as f32,
            bias_correction2: (1.0 - beta2.powf(t)) as f32,
        }
    }
}

impl StepScalars {
    /// Creates the three inputs on `graph` (named `optimizer.learning_rate`, ...).
    pub fn new(graph: &mut Graph) -> Self {
        Self {
            learning_rate: graph.named_tensor("optimizer.learning_rate"),
            bias_correction1: graph.named_tensor("optimizer.bias_correction1"),
            bias_correction2: graph.named_tensor("optimizer.bias_correction2"),
        }
    }

    /// Feeds one step's values; needed before every execution (inputs are consumed by it).
    pub fn set(&self, graph: &mut Graph, values: StepScalarValues) {
        for (tensor, value) in [
            (self.learning_rate, values.learning_rate),
            (self.bias_correction1, values.bias_correction1),
            (self.bias_correction2, values.bias_correction2),
        ] {
            graph.set_tensor(tensor.id, 0, Tensor::new(vec![value]));
        }
    }

    /// The node ids, for the remap list of `Graph::compile`.
    pub fn ids_mut(&mut self) -> [&mut NodeIndex; 3] {
        [
            &mut self.learning_rate.id,
            &mut self.bias_correction1.id,
            &mut self.bias_correction2.id,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::StepScalarValues;

    #[test]
    fn first_step_is_t_equals_one() {
        let values = StepScalarValues::new(0.5, 0.9, 0.999, 0);
        assert_eq!(values.learning_rate, 0.5);
        assert!((values.bias_correction1 - 0.1).abs() < 1e-7);
        assert!((values.bias_correction2 - 0.001).abs() < 1e-9);
        let later = StepScalarValues::new(0.5, 0.9, 0.999, 9);
        assert!((later.bias_correction1 - (1.0 - 0.9f64.powi(10)) as f32).abs() < 1e-7);
    }
}
