//! Building and running one point: its folder holds `config.json`, `run.toml`, `pretrain.log`
//! and the run's output (`run/metrics.jsonl`, checkpoints).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::grid::RunSettings;
use super::info::Info;
use super::metrics::RunLog;
use super::point::Point;
use super::Backend;
use crate::build_model;

/// What building and running a point gave; `error` says where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRun {
    pub point: Point,
    pub dir: PathBuf,
    pub binary: Option<PathBuf>,
    pub build_seconds: Option<f64>,
    pub info: Info,
    pub log: RunLog,
    /// The whole `pretrain` process, compiling its graph and validating included.
    pub run_seconds: Option<f64>,
    pub error: Option<String>,
}

pub struct Settings<'a> {
    pub run: &'a RunSettings,
    pub steps: Option<u64>,
    pub backend: Backend,
}

pub fn execute(point: &Point, dir: &Path, settings: &Settings) -> PointRun {
    let mut result = PointRun {
        point: point.clone(),
        dir: dir.to_owned(),
        binary: None,
        build_seconds: None,
        info: Info::default(),
        log: RunLog::default(),
        run_seconds: None,
        error: None,
    };
    if let Err(error) = build_and_run(&mut result, settings) {
        result.error = Some(error);
    }
    result
}

fn build_and_run(result: &mut PointRun, settings: &Settings) -> Result<(), String> {
    let dir = result.dir.clone();
    let point = &result.point;
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let config_json = dir.join("config.json");
    write(&config_json, &point.config_json())?;
    let run_toml = dir.join("run.toml");
    write(&run_toml, &point.run_toml(settings.run, settings.steps))?;

    let args = point.build_args(config_json, settings.backend == Backend::Cuda)?;
    let started = Instant::now();
    let binary = build_model::run(&args);
    result.build_seconds = Some(started.elapsed().as_secs_f64());
    let binary = binary.map_err(|e| format!("build: {e}"))?;
    result.info = Info::of(&binary);
    result.binary = Some(binary.clone());

    // metrics.jsonl appends: a rerun into the same folder starts from nothing.
    let out = dir.join("run");
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .map_err(|e| format!("cannot remove {}: {e}", out.display()))?;
    }
    let log_path = dir.join("pretrain.log");
    let log_file = File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_file_too = log_file
        .try_clone()
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let started = Instant::now();
    let status = Command::new(&binary)
        .arg("pretrain")
        .arg("--config")
        .arg(&run_toml)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .args(["--backend", settings.backend.name()])
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_file_too))
        .status()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    result.run_seconds = Some(started.elapsed().as_secs_f64());

    // A failed run's metrics so far still count.
    let metrics = out.join("metrics.jsonl");
    if metrics.exists() {
        let text = std::fs::read_to_string(&metrics)
            .map_err(|e| format!("cannot read {}: {e}", metrics.display()))?;
        result.log = RunLog::parse(&text)?;
    }
    if !status.success() {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(format!("run: {}", failure_line(&log, &status.to_string())));
    }
    if result.log.final_validation().is_none() {
        return Err(format!("run: no validation in {}", metrics.display()));
    }
    Ok(())
}

/// The binary's own `error: ...` line, else a panic's message, else the last line it printed,
/// else the exit status.
fn failure_line(log: &str, status: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let error = lines.iter().rev().find_map(|l| l.strip_prefix("error: "));
    let panic = || {
        let at = lines.iter().position(|l| l.contains("panicked at"))?;
        Some(lines[at..(at + 2).min(lines.len())].join(" "))
    };
    error
        .map(str::to_owned)
        .or_else(panic)
        .or(lines.last().map(|l| l.to_string()))
        .map(|l| format!("{l} ({status})"))
        .unwrap_or_else(|| status.to_owned())
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_told_by_the_binarys_error_line() {
        let log = "loading corpus\nerror: run.toml: unknown field `layer_drop`\n\n";
        assert_eq!(
            failure_line(log, "exit status: 1"),
            "run.toml: unknown field `layer_drop` (exit status: 1)"
        );
        let panic =
            "thread 'main' panicked at src/a.rs:1:2:\nindex out of bounds\nnote: backtrace\n";
        assert_eq!(
            failure_line(panic, "exit status: 101"),
            "thread 'main' panicked at src/a.rs:1:2: index out of bounds (exit status: 101)"
        );
        assert_eq!(failure_line("killed\n", "signal: 9"), "killed (signal: 9)");
        assert_eq!(failure_line("", "signal: 9"), "signal: 9");
    }
}
