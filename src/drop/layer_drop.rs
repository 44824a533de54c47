use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{config::LayerDropDims, DropbertError, Result};

/// Progressive layer dropping's keep schedule: the `[layer_drop]` section of `run.toml`
/// (defaults from the compiled configuration).
///
/// `theta(t) = (1 - theta_bar) * exp(-gamma * t) + theta_bar` after `t` steps; block `i`
/// (0-based) of `L` is kept with probability `p_i(t) = 1 - (i + 1) / L * (1 - theta(t))`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerDropSchedule {
    pub theta_bar: f32,
    pub gamma: f32,
}

impl From<LayerDropDims> for LayerDropSchedule {
    fn from(dims: LayerDropDims) -> Self {
        Self {
            theta_bar: dims.theta_bar,
            gamma: dims.gamma,
        }
    }
}

/// The gates of one step and the scale of each kept block's sub-layer outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct StepGates {
    pub on: Vec<bool>,
    pub scales: Vec<f32>,
}

impl StepGates {
    /// Every block on, unscaled: inference, and the plain Pre-LN model.
    pub fn all_on(layers: usize) -> Self {
        Self {
            on: vec![true; layers],
            scales: vec![1.0; layers],
        }
    }

    pub fn blocks_run(&self) -> usize {
        self.on.iter().filter(|&&on| on).count()
    }
}

impl LayerDropSchedule {
    pub fn check(&self) -> Result<()> {
        let valid = self.theta_bar > 0.0 && self.theta_bar <= 1.0 && self.gamma >= 0.0;
        if !valid {
            return Err(DropbertError::InvalidInput(format!(
                "[layer_drop] theta_bar = {} must lie in (0, 1] and gamma = {} must not be negative",
                self.theta_bar, self.gamma
            )));
        }
        Ok(())
    }

    pub fn theta(&self, step: u64) -> f64 {
        let theta_bar = self.theta_bar as f64;
        (1.0 - theta_bar) * (-(self.gamma as f64) * step as f64).exp() + theta_bar
    }

    /// `p_i(t)` of every block.
    pub fn keep_probabilities(&self, step: u64, layers: usize) -> Vec<f64> {
        let drop = 1.0 - self.theta(step);
        (0..layers)
            .map(|i| 1.0 - (i + 1) as f64 / layers as f64 * drop)
            .collect()
    }

    /// The gates given (for a reproduced step) with the scales of step `step`.
    pub fn fixed_gates(&self, step: u64, on: Vec<bool>) -> StepGates {
        let scales = self
            .keep_probabilities(step, on.len())
            .into_iter()
            .map(|p| (1.0 / p) as f32)
            .collect();
        StepGates { on, scales }
    }

    /// Step `step`'s gates, each drawn from Bernoulli(`p_i(step)`) by a generator seeded by the
    /// run's seed and the step, so that a resumed run draws what an uninterrupted one would.
    pub fn sample(&self, seed: u64, step: u64, layers: usize) -> StepGates {
        let mut rng = ChaCha8Rng::seed_from_u64(crate::nn::step_key(seed, step));
        rng.set_stream(GATE_STREAM);
        let on = self
            .keep_probabilities(step, layers)
            .into_iter()
            .map(|p| rng.gen::<f64>() < p)
            .collect();
        self.fixed_gates(step, on)
    }
}

/// The ChaCha stream the gates are drawn from (token dropping's scores use stream 2; dropout
/// masks are drawn in the graph, by Philox).
const GATE_STREAM: u64 = 1;
