//! Learning-rate schedules, as Hugging Face `transformers` defines them.
use serde::{Deserialize, Serialize};

/// How the learning rate moves over training. `step` counts updates from 0: the first update uses
/// `learning_rate(peak, 0)`, exactly as a `transformers` `LambdaLR` scheduler stepped after each
/// `optimizer.step()` does (so a warm-up's first update has learning rate 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LearningRateSchedule {
    /// `get_constant_schedule`: always the peak.
    Constant,
    /// `get_linear_schedule_with_warmup`: from 0 up to the peak over `warmup_steps`, then down to 0
    /// at `total_steps`, and 0 after it.
    LinearWarmupLinearDecay { warmup_steps: u64, total_steps: u64 },
    /// `get_cosine_schedule_with_warmup` (half a cosine period, `num_cycles = 0.5`): linear warm-up,
    /// then `peak * (1 + cos(pi * progress)) / 2`, clamped at 0.
    LinearWarmupCosine { warmup_steps: u64, total_steps: u64 },
}

impl LearningRateSchedule {
    /// The learning rate of update `step` (0 for the first) for a peak learning rate `peak`.
    pub fn learning_rate(&self, peak: f32, step: u64) -> f32 {
        (peak as f64 * self.multiplier(step)) as f32
    }

    /// The factor applied to the peak learning rate at `step`: the `lr_lambda` of the Hugging Face
    /// schedule, in f64 as Python computes it.
    pub fn multiplier(&self, step: u64) -> f64 {
        match *self {
            LearningRateSchedule::Constant => 1.0,
            LearningRateSchedule::LinearWarmupLinearDecay {
                warmup_steps,
                total_steps,
            } => match warmup(step, warmup_steps) {
                Some(factor) => factor,
                None => {
                    let remaining = total_steps as f64 - step as f64;
                    let span = total_steps.saturating_sub(warmup_steps).max(1) as f64;
                    (remaining / span).max(0.0)
                }
            },
            LearningRateSchedule::LinearWarmupCosine {
                warmup_steps,
                total_steps,
            } => match warmup(step, warmup_steps) {
                Some(factor) => factor,
                None => {
                    let span = total_steps.saturating_sub(warmup_steps).max(1) as f64;
                    let progress = (step - warmup_steps) as f64 / span;
                    // num_cycles = 0.5: cos(pi * 0.5 * 2 * progress).
                    (0.5 * (1.0 + (std::f64::consts::PI * 0.5 * 2.0 * progress).cos())).max(0.0)
                }
            },
        }
    }
}

/// The warm-up factor `step / max(1, warmup_steps)` while `step < warmup_steps`.
fn warmup(step: u64, warmup_steps: u64) -> Option<f64> {
    (step < warmup_steps).then(|| step as f64 / warmup_steps.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_warmup_then_decay() {
        let schedule = LearningRateSchedule::LinearWarmupLinearDecay {
            warmup_steps: 2,
            total_steps: 5,
        };
        let lrs: Vec<f64> = (0..7).map(|s| schedule.multiplier(s)).collect();
        assert_eq!(lrs, [0.0, 0.5, 1.0, 2.0 / 3.0, 1.0 / 3.0, 0.0, 0.0]);
    }

    #[test]
    fn cosine_reaches_zero_at_the_end() {
        let schedule = LearningRateSchedule::LinearWarmupCosine {
            warmup_steps: 0,
            total_steps: 4,
        };
        assert_eq!(schedule.multiplier(0), 1.0);
        assert!((schedule.multiplier(2) - 0.5).abs() < 1e-15);
        assert!(schedule.multiplier(4) < 1e-15);
        // Past the end the cosine comes back up, as in transformers.
        assert!(schedule.multiplier(6) > 0.4);
    }

    #[test]
    fn serializes_with_a_kind_tag() {
        let schedule = LearningRateSchedule::LinearWarmupLinearDecay {
            warmup_steps: 10,
            total_steps: 100,
        };
        let text = serde_json::to_string(&schedule).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"linear_warmup_linear_decay","warmup_steps":10,"total_steps":100}"#
        );
        assert_eq!(
            serde_json::from_str::<LearningRateSchedule>(&text).unwrap(),
            schedule
        );
        assert_eq!(
            serde_json::to_string(&LearningRateSchedule::Constant).unwrap(),
            r#"{"kind":"constant"}"#
        );
    }
}
