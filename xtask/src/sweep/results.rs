//! One row per point: what it cost and what it reached, next to its preset's baseline.

use serde::Serialize;

use super::execute::PointRun;
use super::grid::{TargetLoss, AUTO_TARGET_FACTOR};
use super::method::{kind_name, MethodKind};
use super::metrics::CurvePoint;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointResult {
    pub point: String,
    pub preset: String,
    pub method: &'static str,
    /// `layer=1 kept_ratio=0.5 ...`; empty for the baseline.
    pub method_parameters: String,
    pub configuration: Option<String>,
    pub parameters: Option<u64>,
    pub flops_per_step: Option<f64>,
    pub flops_per_step_full: Option<f64>,
    pub activation_bytes: Option<u64>,
    /// Baseline FLOPs per step / this point's.
    pub flop_ratio: Option<f64>,
    pub median_step_seconds: Option<f64>,
    /// Mean step seconds after the first step (see `RunLog::mean_step_seconds`).
    pub mean_step_seconds: Option<f64>,
    pub median_tokens_per_second: Option<f64>,
    /// Baseline mean step seconds / this point's.
    pub speedup: Option<f64>,
    /// Seconds in training steps.
    pub wall_seconds: Option<f64>,
    /// The whole pretrain process, graph compilation and validation included.
    pub run_seconds: Option<f64>,
    pub final_step: Option<u64>,
    pub final_loss: Option<f64>,
    pub final_accuracy: Option<f64>,
    pub target_loss: Option<f64>,
    pub step_to_target: Option<u64>,
    pub seconds_to_target: Option<f64>,
    pub flops_to_target: Option<f64>,
    pub build_seconds: Option<f64>,
    /// "ok" or "failed".
    pub status: &'static str,
    pub error: Option<String>,
    pub binary: Option<String>,
    pub validation: Vec<CurvePoint>,
}

/// The rows, in the points' order; each point is compared with the first successful baseline of
/// its preset (without one, FLOPs come from the point's own undropped count, and the measured
/// speedup and an "auto" target stay empty).
pub fn compute(runs: &[PointRun], target: TargetLoss) -> Vec<PointResult> {
    let rows: Vec<PointResult> = runs.iter().map(own_row).collect();
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            let baseline = runs
                .iter()
                .zip(&rows)
                .find(|(run, row)| {
                    run.point.preset.name == runs[index].point.preset.name
                        && run.point.method.kind == MethodKind::Baseline
                        && row.status == "ok"
                })
                .map(|(_, row)| row);
            compare(row.clone(), &runs[index], baseline, target)
        })
        .collect()
}

/// What a point says about itself.
fn own_row(run: &PointRun) -> PointResult {
    let info = &run.info;
    let flops_per_step = run.log.flops_per_step(info.flops_per_step);
    let last = run.log.final_validation();
    let has_steps = !run.log.train.is_empty();
    PointResult {
        point: run.point.name.clone(),
        preset: run.point.preset.name.clone(),
        method: kind_name(run.point.method.kind),
        method_parameters: run.point.method.parameters(),
        configuration: info.configuration.clone(),
        parameters: info.parameters,
        flops_per_step,
        flops_per_step_full: info.flops_per_step_full,
        activation_bytes: info.activation_bytes,
        flop_ratio: None,
        median_step_seconds: run.log.median_step_seconds(),
        mean_step_seconds: run.log.mean_step_seconds(),
        median_tokens_per_second: run.log.median_tokens_per_second(),
        speedup: None,
        wall_seconds: has_steps.then(|| run.log.train_seconds()),
        run_seconds: run.run_seconds,
        final_step: last.map(|v| v.step),
        final_loss: last.map(|v| v.loss),
        final_accuracy: last.map(|v| v.accuracy),
        target_loss: None,
        step_to_target: None,
        seconds_to_target: None,
        flops_to_target: None,
        build_seconds: run.build_seconds,
        status: if run.error.is_none() { "ok" } else { "failed" },
        error: run.error.clone(),
        binary: run.binary.as_ref().map(|p| p.display().to_string()),
        validation: run.log.curve(info.flops_per_step),
    }
}

fn compare(
    mut row: PointResult,
    run: &PointRun,
    baseline: Option<&PointResult>,
    target: TargetLoss,
) -> PointResult {
    let baseline_flops = baseline
        .and_then(|b| b.flops_per_step)
        .or(row.flops_per_step_full);
    row.flop_ratio = ratio(baseline_flops, row.flops_per_step);
    row.speedup = ratio(
        baseline.and_then(|b| b.mean_step_seconds),
        row.mean_step_seconds,
    );
    row.target_loss = match target {
        TargetLoss::Fixed(loss) => Some(loss),
        TargetLoss::Auto => baseline
            .and_then(|b| b.final_loss)
            .map(|loss| loss * AUTO_TARGET_FACTOR),
    };
    if let Some(target) = row.target_loss {
        if let Some(reached) = run.log.reach(target, run.info.flops_per_step) {
            row.step_to_target = Some(reached.step);
            row.seconds_to_target = Some(reached.seconds);
            row.flops_to_target = reached.flops;
        }
    }
    row
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    }
}

/// Synthetic runs of the default grid's four points, for the tests of what reads results.
#[cfg(test)]
pub fn sample() -> Vec<PointResult> {
    compute(&tests::sample_runs(), TargetLoss::Auto)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::sweep::grid::{Grid, DEFAULT_GRID};
    use crate::sweep::info::Info;
    use crate::sweep::metrics::RunLog;
    use crate::sweep::point::points;

    /// A metrics.jsonl of 4 steps of `seconds` and `flops` each, validating at 0, 2 and 4 with
    /// the given losses.
    fn metrics(seconds: f64, flops: Option<f64>, losses: [f64; 3]) -> RunLog {
        let mut text = String::new();
        for step in 0..=4u64 {
            if step > 0 {
                let flops = flops
                    .map(|f| format!(r#","flops":{f}"#))
                    .unwrap_or_default();
                text += &format!(
                    r#"{{"event":"train","step":{step},"loss":8.0,"tokens_per_second":{},"step_seconds":{seconds}{flops}}}"#,
                    2048.0 / seconds
                );
                text += "\n";
            }
            if step % 2 == 0 {
                text += &format!(
                    r#"{{"event":"validation","step":{step},"loss":{},"accuracy":0.1,"predictions":9}}"#,
                    losses[step as usize / 2]
                );
                text += "\n";
            }
        }
        RunLog::parse(&text).unwrap()
    }

    pub fn sample_runs() -> Vec<PointRun> {
        let grid = Grid::parse(DEFAULT_GRID, std::path::Path::new("/g")).unwrap();
        let run = |index: usize, log: RunLog, info: Info, error: Option<&str>| PointRun {
            point: points(&grid)[index].clone(),
            dir: "/out".into(),
            binary: None,
            build_seconds: Some(10.0),
            info,
            log,
            run_seconds: Some(30.0),
            error: error.map(str::to_owned),
        };
        let info = |flops: f64| Info {
            parameters: Some(1_000),
            flops_per_step: Some(flops),
            flops_per_step_full: Some(4e9),
            ..Info::default()
        };
        vec![
            run(0, metrics(2.0, Some(4e9), [9.0, 7.5, 7.0]), info(4e9), None),
            run(
                1,
                metrics(1.25, Some(2.5e9), [9.0, 7.6, 7.1]),
                info(2.5e9),
                None,
            ),
            // No per-step FLOPs logged: the static count stands in.
            run(2, metrics(1.6, None, [9.0, 7.1, 7.3]), info(4e9), None),
            run(
                3,
                RunLog::default(),
                Info::default(),
                Some("build: no rules expected `{`"),
            ),
        ]
    }

    #[test]
    fn compares_each_point_with_the_baseline() {
        let rows = sample();
        let [baseline, token, layer, both] = &rows[..] else {
            panic!("four rows")
        };
        assert_eq!(baseline.method, "baseline");
        assert_eq!(baseline.flop_ratio, Some(1.0));
        assert_eq!(baseline.speedup, Some(1.0));
        assert_eq!(baseline.wall_seconds, Some(8.0));
        assert_eq!(baseline.final_loss, Some(7.0));
        // auto target = 7.0 x 1.02 = 7.14: the baseline reaches it at step 4 only.
        let target = 7.0 * AUTO_TARGET_FACTOR;
        assert_eq!(baseline.target_loss, Some(target));
        assert_eq!(baseline.step_to_target, Some(4));
        assert_eq!(baseline.seconds_to_target, Some(8.0));
        assert_eq!(baseline.flops_to_target, Some(16e9));

        assert_eq!(token.method_parameters, "layer=1 kept_ratio=0.5");
        assert_eq!(token.flop_ratio, Some(1.6));
        assert_eq!(token.speedup, Some(1.6));
        assert_eq!(token.step_to_target, Some(4));
        assert_eq!(token.seconds_to_target, Some(5.0));
        assert_eq!(token.flops_to_target, Some(10e9));

        assert_eq!(layer.flop_ratio, Some(1.0));
        assert!((layer.speedup.unwrap() - 1.25).abs() < 1e-12);
        assert_eq!(layer.step_to_target, Some(2));
        assert_eq!(layer.seconds_to_target, Some(3.2));
        assert_eq!(layer.flops_to_target, Some(8e9));
        assert_eq!(layer.validation.len(), 3);

        assert_eq!(both.status, "failed");
        assert_eq!(both.error.as_deref(), Some("build: no rules expected `{`"));
        assert_eq!(
            (both.speedup, both.flop_ratio, both.final_loss),
            (None, None, None)
        );
        assert_eq!(both.target_loss, Some(target));
        assert_eq!(both.seconds_to_target, None);
    }

    #[test]
    fn without_a_baseline_flops_compare_with_the_undropped_count() {
        let runs: Vec<PointRun> = sample_runs().into_iter().skip(1).collect();
        let rows = compute(&runs, TargetLoss::Auto);
        assert_eq!(rows[0].flop_ratio, Some(1.6));
        assert_eq!(rows[0].speedup, None);
        assert_eq!(rows[0].target_loss, None);
        let rows = compute(&runs, TargetLoss::Fixed(7.6));
        assert_eq!(rows[0].target_loss, Some(7.6));
        assert_eq!(rows[0].step_to_target, Some(2));
        assert_eq!(rows[0].seconds_to_target, Some(2.5));
    }
}
