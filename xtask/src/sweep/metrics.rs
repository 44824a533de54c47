//! A point's `metrics.jsonl`, as the model binary's `pretrain` writes it, and what a sweep reads
//! from it: step times, FLOPs, the validation curve and when it reached a target loss.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct TrainEvent {
    pub step: u64,
    pub step_seconds: f64,
    pub tokens_per_second: f64,
    /// This step's matmul FLOPs; `None` where the binary does not log them.
    pub flops: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ValidationEvent {
    pub step: u64,
    pub loss: f64,
    pub accuracy: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLog {
    pub train: Vec<TrainEvent>,
    pub validation: Vec<ValidationEvent>,
}

/// A validation event with the training time and FLOPs spent before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    pub step: u64,
    pub seconds: f64,
    pub flops: Option<f64>,
    pub loss: f64,
    pub accuracy: f64,
}

impl RunLog {
    /// Parses JSON lines; events other than train and validation are skipped.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut log = Self::default();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = || format!("metrics.jsonl line {}", index + 1);
            let event: Value = serde_json::from_str(line).map_err(|e| format!("{}: {e}", at()))?;
            let number = |key: &str| {
                event[key]
                    .as_f64()
                    .ok_or_else(|| format!("{}: no number `{key}`", at()))
            };
            let step = || {
                event["step"]
                    .as_u64()
                    .ok_or_else(|| format!("{}: no step", at()))
            };
            match event["event"].as_str() {
                Some("train") => log.train.push(TrainEvent {
                    step: step()?,
                    step_seconds: number("step_seconds")?,
                    tokens_per_second: number("tokens_per_second")?,
                    flops: event["flops"].as_f64(),
                }),
                Some("validation") => log.validation.push(ValidationEvent {
                    step: step()?,
                    loss: number("loss")?,
                    accuracy: number("accuracy")?,
                }),
                _ => {}
            }
        }
        Ok(log)
    }

    pub fn median_step_seconds(&self) -> Option<f64> {
        median(self.train.iter().map(|e| e.step_seconds).collect())
    }

    /// The mean step time after the first step (which also pays one-time costs); the first alone
    /// where it is the only one. A mean, like the FLOPs per step: layer dropping changes the work
    /// from step to step, and its throughput is the mean's.
    pub fn mean_step_seconds(&self) -> Option<f64> {
        let steps: Vec<f64> = self.train.iter().map(|e| e.step_seconds).collect();
        let counted = if steps.len() > 1 {
            &steps[1..]
        } else {
            &steps[..]
        };
        (!counted.is_empty()).then(|| counted.iter().sum::<f64>() / counted.len() as f64)
    }

    pub fn median_tokens_per_second(&self) -> Option<f64> {
        median(self.train.iter().map(|e| e.tokens_per_second).collect())
    }

    /// Time spent in training steps (not compiling, not validating).
    pub fn train_seconds(&self) -> f64 {
        self.train.iter().map(|e| e.step_seconds).sum()
    }

    /// Mean FLOPs of the logged steps; `fallback` (the binary's static count) where steps carry
    /// none.
    pub fn flops_per_step(&self, fallback: Option<f64>) -> Option<f64> {
        let logged: Vec<f64> = self.train.iter().filter_map(|e| e.flops).collect();
        if logged.is_empty() || logged.len() < self.train.len() {
            return fallback;
        }
        Some(logged.iter().sum::<f64>() / logged.len() as f64)
    }

    pub fn final_validation(&self) -> Option<&ValidationEvent> {
        self.validation.iter().max_by_key(|e| e.step)
    }

    /// Each validation with the step seconds and FLOPs summed over the steps up to it.
    pub fn curve(&self, fallback_flops: Option<f64>) -> Vec<CurvePoint> {
        self.validation
            .iter()
            .map(|v| {
                let steps = self.train.iter().filter(|e| e.step <= v.step);
                let seconds = steps.clone().map(|e| e.step_seconds).sum();
                let flops = steps
                    .map(|e| e.flops.or(fallback_flops))
                    .sum::<Option<f64>>();
                CurvePoint {
                    step: v.step,
                    seconds,
                    flops,
                    loss: v.loss,
                    accuracy: v.accuracy,
                }
            })
            .collect()
    }

    /// The first validation at or below `target`.
    pub fn reach(&self, target: f64, fallback_flops: Option<f64>) -> Option<CurvePoint> {
        let mut curve = self.curve(fallback_flops);
        curve.sort_by_key(|p| p.step);
        curve.into_iter().find(|p| p.loss <= target)
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four steps of 1, 2, 3, 10 seconds; validation at 0, 2 and 4.
    const LOG: &str = r#"{"event":"validation","step":0,"loss":9.0,"accuracy":0.0,"predictions":10}
{"event":"train","step":1,"loss":9.0,"learning_rate":0.001,"grad_norm":1.0,"tokens_per_second":100.0,"step_seconds":1.0,"flops":1e9}
{"event":"train","step":2,"loss":8.5,"learning_rate":0.001,"grad_norm":1.0,"tokens_per_second":50.0,"step_seconds":2.0,"flops":1e9}
{"event":"validation","step":2,"loss":8.0,"accuracy":0.1,"predictions":10}
{"event":"train","step":3,"loss":8.0,"learning_rate":0.001,"grad_norm":1.0,"tokens_per_second":33.0,"step_seconds":3.0,"flops":3e9}
{"event":"train","step":4,"loss":7.5,"learning_rate":0.001,"grad_norm":1.0,"tokens_per_second":10.0,"step_seconds":10.0,"flops":3e9}
{"event":"checkpoint","path":"final"}

{"event":"validation","step":4,"loss":7.0,"accuracy":0.2,"predictions":10}
"#;

    #[test]
    fn reads_train_and_validation_events() {
        let log = RunLog::parse(LOG).unwrap();
        assert_eq!(log.train.len(), 4);
        assert_eq!(log.validation.len(), 3);
        assert_eq!(log.median_step_seconds(), Some(2.5));
        assert_eq!(log.mean_step_seconds(), Some(5.0));
        assert_eq!(RunLog::default().mean_step_seconds(), None);
        assert_eq!(log.median_tokens_per_second(), Some(41.5));
        assert_eq!(log.train_seconds(), 16.0);
        assert_eq!(log.flops_per_step(Some(5.0)), Some(2e9));
        let last = log.final_validation().unwrap();
        assert_eq!((last.step, last.loss, last.accuracy), (4, 7.0, 0.2));
    }

    #[test]
    fn time_and_flops_to_a_target_count_the_steps_before_it() {
        let log = RunLog::parse(LOG).unwrap();
        let reached = log.reach(8.0, None).unwrap();
        assert_eq!((reached.step, reached.seconds), (2, 3.0));
        assert_eq!(reached.flops, Some(2e9));
        let reached = log.reach(7.2, None).unwrap();
        assert_eq!(
            (reached.step, reached.seconds, reached.flops),
            (4, 16.0, Some(8e9))
        );
        assert_eq!(log.reach(9.5, None).unwrap().seconds, 0.0);
        assert_eq!(log.reach(6.9, None), None);
    }

    #[test]
    fn flops_fall_back_to_the_static_count() {
        let without: String = LOG
            .lines()
            .map(|line| {
                line.replace(r#","flops":1e9"#, "")
                    .replace(r#","flops":3e9"#, "")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let log = RunLog::parse(&without).unwrap();
        assert_eq!(log.flops_per_step(Some(5.0)), Some(5.0));
        assert_eq!(log.flops_per_step(None), None);
        assert_eq!(log.reach(7.0, Some(5.0)).unwrap().flops, Some(20.0));
        assert_eq!(log.reach(7.0, None).unwrap().flops, None);
    }

    #[test]
    fn a_broken_line_is_named() {
        let error = RunLog::parse("{\"event\":\"train\",\"step\":1}\n").unwrap_err();
        assert_eq!(error, "metrics.jsonl line 1: no number `step_seconds`");
        let error = RunLog::parse("\n{oops").unwrap_err();
        assert!(error.starts_with("metrics.jsonl line 2: "), "{error}");
    }
}
